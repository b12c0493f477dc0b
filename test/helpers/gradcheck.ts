/**
 * Gradient checks: the tape's analytic gradient of a scalar L = Σ f(inputs) ⊙ P (P a fixed
 * random projection, so every output element matters) against central finite differences
 * (L(x + h) - L(x - h)) / 2h, the forward run in float32 by the backend under test and the
 * difference taken in float64. Reference: Goodfellow et al., "Deep Learning" §11.5 (gradient checking).
 */
import { GGMLType } from '../../src/core/dtypes.js';
import type { Heap } from '../../src/core/heap.js';
import { allocTensor, type Tensor } from '../../src/core/tensor.js';
import type { KernelBackend } from '../../src/kernels/backend.js';
import { mul, sum } from '../../src/train/ops.js';
import { Tape, type Var } from '../../src/train/tape.js';
import { rng } from './backends.js';

export interface GradInput {
  name: string;
  shape: readonly number[];
  /** Initial values (default: uniform in [-scale, scale]). */
  values?: ArrayLike<number>;
  scale?: number;
  /** An input without gradient (not checked). */
  constant?: boolean;
}

export interface GradCheckOptions {
  backend: KernelBackend;
  heap: Heap;
  inputs: readonly GradInput[];
  /** Builds the function on the tape from the input Vars (in order); any output shape. */
  build: (t: Tape, xs: Var[]) => Var;
  /** Finite-difference step (default 1e-2). */
  h?: number;
  /** Elements checked per input (a deterministic sample; default all up to 64). */
  samples?: number;
  seed?: number;
}

export interface GradCheckResult {
  /** Worst |analytic - numeric| / max(|analytic|, |numeric|, floor) over checked elements (floor: see below). */
  maxRelErr: number;
  worst: string;
  checked: number;
  /** The loss at the unperturbed inputs. */
  loss: number;
}

let checks = 0;

export function gradcheck(o: GradCheckOptions): GradCheckResult {
  const arena = o.heap.arena(`gradcheck${checks++}`);
  const r = rng(o.seed ?? 7);
  const xs: { value: Tensor; grad: Tensor; input: GradInput }[] = o.inputs.map((input) => {
    const value = allocTensor(arena, GGMLType.F32, input.shape);
    const grad = allocTensor(arena, GGMLType.F32, input.shape);
    const s = input.scale ?? 1;
    const a = value.f32();
    for (let i = 0; i < a.length; i++) a[i] = input.values ? input.values[i] : r(-s, s);
    grad.f32().fill(0);
    return { value, grad, input };
  });
  const tape = new Tape(o.backend, o.heap);
  let projection: Tensor | null = null;
  const forward = (withGrad: boolean): number => {
    const vars = xs.map((x) => (x.input.constant ? tape.constant(x.value) : tape.param({ name: x.input.name, shape: x.input.shape, value: x.value, grad: x.grad })));
    const y = o.build(tape, vars);
    if (!projection) {
      projection = allocTensor(arena, GGMLType.F32, y.shape);
      const p = projection.f32();
      for (let i = 0; i < p.length; i++) p[i] = r(-1, 1);
    }
    const loss = y.value.numel === 1 ? y : sum(tape, mul(tape, y, tape.constant(projection.reshape(y.shape))));
    const value = loss.value.f32()[0];
    if (withGrad) tape.backward(loss);
    tape.reset();
    return value;
  };
  const loss = forward(true);
  const h = o.h ?? 1e-2;
  let maxRelErr = 0;
  let worst = '';
  let checked = 0;
  for (const x of xs) {
    if (x.input.constant) continue;
    const v = x.value.f32();
    const g = Float32Array.from(x.grad.f32());
    let gmax = 0;
    for (const e of g) gmax = Math.max(gmax, Math.abs(e));
    // Below this a gradient is lost in the float32 forward's rounding (a few hundred ulps of
    // the loss over the step) or negligible next to the largest one.
    const floor = Math.max(1e-2 * gmax, (1000 * 2 ** -24 * Math.max(1, Math.abs(loss))) / (2 * h));
    const n = v.length;
    const count = Math.min(n, o.samples ?? 64);
    for (let s = 0; s < count; s++) {
      const i = count === n ? s : Math.floor((s * n) / count + r(0, n / count)) % n;
      const old = v[i];
      x.value.f32()[i] = old + h;
      const hi = x.value.f32()[i]; // the step actually taken in float32
      const up = forward(false);
      x.value.f32()[i] = old - h;
      const lo = x.value.f32()[i];
      const down = forward(false);
      x.value.f32()[i] = old;
      const numeric = (up - down) / (hi - lo);
      const err = Math.abs(g[i] - numeric) / Math.max(Math.abs(g[i]), Math.abs(numeric), floor);
      checked++;
      if (err > maxRelErr) {
        maxRelErr = err;
        worst = `${x.input.name}[${i}]: analytic ${g[i]}, numeric ${numeric}`;
      }
    }
  }
  arena.reset();
  return { maxRelErr, worst, checked, loss };
}
