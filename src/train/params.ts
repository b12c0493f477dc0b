/**
 * Trainable parameters. A ParameterStore keeps every parameter's values in one contiguous
 * F32 allocation, and likewise the gradients and AdamW's two moments, so the optimizer,
 * gradient clipping and zeroing are each one kernel call over a flat buffer; each Parameter
 * is a view into those buffers. Order of parameters = order of the specs (checkpoints and
 * initialisation depend on it).
 */
import { GGMLType } from '../core/dtypes.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Heap } from '../core/heap.js';
import { Tensor } from '../core/tensor.js';
import type { Rng } from './rng.js';

export interface Parameter {
  readonly name: string;
  readonly shape: readonly number[];
  readonly value: Tensor;
  readonly grad: Tensor;
}

export type Init = { kind: 'normal'; std: number } | { kind: 'ones' } | { kind: 'zeros' };

export interface ParameterSpec {
  name: string;
  shape: readonly number[];
  init: Init;
}

/** A parameter with its views into the optimizer moments (used by optim.ts and checkpoint.ts). */
export interface StoredParameter extends Parameter {
  /** Element offset in the flat buffers. */
  readonly offset: number;
  readonly m: Tensor;
  readonly v: Tensor;
}

export class ParameterStore {
  readonly list: readonly StoredParameter[];
  /** Total elements (= scalar parameters). */
  readonly count: number;
  /** Flat [count] views over every parameter, gradient, AdamW first and second moment. */
  readonly values: Tensor;
  readonly grads: Tensor;
  readonly m: Tensor;
  readonly v: Tensor;
  private readonly byName = new Map<string, StoredParameter>();

  constructor(
    readonly heap: Heap,
    specs: readonly ParameterSpec[],
    rng: Rng,
  ) {
    let count = 0;
    const names = new Set<string>();
    for (const s of specs) {
      if (names.has(s.name)) throw new InvalidArgumentError(`parameter '${s.name}' is declared twice`);
      if (s.shape.length === 0 || !s.shape.every((d) => Number.isInteger(d) && d > 0)) {
        throw new InvalidArgumentError(`parameter '${s.name}' has a bad shape [${s.shape.join(', ')}]`);
      }
      names.add(s.name);
      count += s.shape.reduce((a, b) => a * b, 1);
    }
    this.count = count;
    const arena = heap.arena('train.params');
    const flat = (purpose: string): Tensor => {
      const a = arena.alloc(count * 4, purpose);
      return new Tensor(heap, a.offset, GGMLType.F32, [count], a);
    };
    this.values = flat('parameter values');
    this.grads = flat('parameter gradients');
    this.m = flat('AdamW first moments');
    this.v = flat('AdamW second moments');
    this.grads.f32().fill(0);
    this.m.f32().fill(0);
    this.v.f32().fill(0);

    const list: StoredParameter[] = [];
    let offset = 0;
    for (const s of specs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const view = (t: Tensor): Tensor => new Tensor(heap, t.offset + offset * 4, GGMLType.F32, [...s.shape]);
      const p: StoredParameter = {
        name: s.name,
        shape: [...s.shape],
        offset,
        value: view(this.values),
        grad: view(this.grads),
        m: view(this.m),
        v: view(this.v),
      };
      initialise(p.value.f32(), s.init, rng, s.name);
      list.push(p);
      this.byName.set(s.name, p);
      offset += n;
    }
    this.list = list;
  }

  get(name: string): StoredParameter {
    const p = this.byName.get(name);
    if (!p) throw new InvalidArgumentError(`no parameter named '${name}'`);
    return p;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  zeroGrads(): void {
    this.grads.f32().fill(0);
  }
}

function initialise(a: Float32Array, init: Init, rng: Rng, name: string): void {
  switch (init.kind) {
    case 'zeros':
      a.fill(0);
      return;
    case 'ones':
      a.fill(1);
      return;
    case 'normal':
      if (!(init.std >= 0)) throw new InvalidArgumentError(`parameter '${name}': init std must be >= 0, got ${init.std}`);
      for (let i = 0; i < a.length; i++) a[i] = rng.normal() * init.std;
      return;
  }
}
