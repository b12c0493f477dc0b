/**
 * Reverse-mode automatic differentiation over the kernel backend ("a tape"): every
 * differentiable op (src/train/ops.ts) computes its value with kernels and records a closure
 * that, given the gradient of its output, adds the gradients of its inputs. backward() replays
 * the closures in reverse order of recording (a valid reverse topological order, since an op
 * is recorded after its inputs exist). Reference: Griewank & Walther, "Evaluating
 * Derivatives" (2008), ch. 3; the structure follows micrograd / llm.c's forward/backward pairs.
 *
 * Memory: every intermediate value and gradient lives in one arena per tape (the "step
 * arena"), freed at once by reset(). Parameters keep their persistent value and grad tensors
 * (src/train/params.ts), so backward() accumulates into them across steps until zeroGrads().
 */
import { GGMLType } from '../core/dtypes.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Arena, Heap } from '../core/heap.js';
import { allocTensor, type Tensor } from '../core/tensor.js';
import type { KernelBackend } from '../kernels/backend.js';
import type { Parameter } from './params.js';

/** A node: a value (F32 tensor) and, through the tape, its gradient. */
export class Var {
  /** @internal The gradient tensor once allocated (a parameter's persistent grad from the start). */
  gradTensor: Tensor | null;

  /** @internal Use Tape.constant / param / record. */
  constructor(
    readonly value: Tensor,
    readonly requiresGrad: boolean,
    grad: Tensor | null,
    /** @internal A reshape shares the gradient of this Var (views of one buffer). */
    readonly base: Var | null = null,
  ) {
    this.gradTensor = grad;
  }

  get shape(): readonly number[] {
    return this.value.shape;
  }
}

interface Node {
  out: Var;
  backward: (g: Tensor) => void;
}

let tapeIds = 0;

export class Tape {
  private readonly arena: Arena;
  private nodes: Node[] = [];
  // Gradients of intermediates are consumed (adopted, scaled in place) during backward: once only.
  private replayed = false;

  constructor(
    readonly backend: KernelBackend,
    readonly heap: Heap,
  ) {
    this.arena = heap.arena(`train.tape${tapeIds++}`);
  }

  /** F32 (or other type) scratch tensor from this step's arena (freed by reset()); contents undefined. */
  alloc(shape: readonly number[], type: number = GGMLType.F32): Tensor {
    return allocTensor(this.arena, type, shape, 'tape');
  }

  /** As alloc, zero-filled. */
  zeros(shape: readonly number[]): Tensor {
    const t = this.alloc(shape);
    t.f32().fill(0);
    return t;
  }

  /** An input without gradient. */
  constant(t: Tensor): Var {
    return new Var(t, false, null);
  }

  /** A parameter: value and grad are its persistent tensors; backward() accumulates into grad. */
  param(p: Parameter): Var {
    return new Var(p.value, true, p.grad);
  }

  /**
   * A new op result. backward(gradOfOut) must add (accumulate) into each input's tape.grad(input)
   * for inputs with requiresGrad. Ops are replayed in reverse order of record(). When no input
   * requires a gradient, nothing is recorded and the result is a constant.
   */
  record(value: Tensor, inputs: readonly Var[], backward: (g: Tensor) => void): Var {
    if (value.type !== GGMLType.F32) throw new InvalidArgumentError(`tape: op results must be F32, got ${value}`);
    const requiresGrad = inputs.some((v) => v.requiresGrad);
    const out = new Var(value, requiresGrad, null);
    if (requiresGrad) this.nodes.push({ out, backward });
    return out;
  }

  /**
   * A Var with another shape over the same value, whose gradient is the same buffer viewed
   * with that shape (so nothing is recorded: contributions land in x's gradient directly).
   */
  view(x: Var, shape: readonly number[]): Var {
    const value = x.value.reshape(shape);
    return new Var(value, x.requiresGrad, null, x.base ?? x);
  }

  /** The gradient tensor of v (allocated zero-filled on first use; for params, the persistent grad). */
  grad(v: Var): Tensor {
    if (v.base) return this.grad(v.base).reshape(v.shape);
    if (!v.gradTensor) v.gradTensor = this.zeros(v.shape);
    return v.gradTensor;
  }

  /** True once some op has written v's gradient (ops may skip work for untouched outputs). */
  hasGrad(v: Var): boolean {
    return (v.base ?? v).gradTensor !== null;
  }

  /**
   * grad(v) += t (t has v's element count). With `owned` (t is tape scratch that nothing else
   * reads or writes afterwards), a Var without a gradient yet adopts t as its gradient: no
   * zero-fill, no add. An op's own output gradient may be passed as owned to at most one input.
   */
  addGrad(v: Var, t: Tensor, owned = false): void {
    if (!v.requiresGrad) return;
    const base = v.base ?? v;
    if (!base.gradTensor) {
      if (owned) {
        base.gradTensor = t.reshape(base.shape);
        return;
      }
      const g = this.alloc(base.shape);
      g.f32().set(t.f32());
      base.gradTensor = g;
      return;
    }
    const g = this.grad(v);
    this.backend.add(g, g, t.reshape(g.shape));
  }

  /** grad(v) += t, leaving t untouched (addGrad without adoption). */
  accumulate(v: Var, t: Tensor): void {
    this.addGrad(v, t, false);
  }

  /**
   * v's gradient as the destination of a kernel that can accumulate (gemm's beta): beta 1 adds
   * into the existing gradient; beta 0 means a fresh, uninitialised tensor that the kernel must
   * overwrite completely.
   */
  gradTarget(v: Var): { grad: Tensor; beta: 0 | 1 } {
    const base = v.base ?? v;
    if (base.gradTensor) return { grad: this.grad(v), beta: 1 };
    base.gradTensor = this.alloc(base.shape);
    return { grad: this.grad(v), beta: 0 };
  }

  /** Runs backward from a scalar (numel 1) loss with d loss = seed (default 1). */
  backward(loss: Var, seed = 1): void {
    if (this.replayed) throw new InvalidArgumentError('tape.backward: this graph was already replayed; call reset() and record a new one');
    if (loss.value.numel !== 1) {
      throw new InvalidArgumentError(`tape.backward: the loss must have one element, got shape [${loss.shape.join(', ')}]`);
    }
    if (!loss.requiresGrad) throw new InvalidArgumentError('tape.backward: the loss does not depend on any parameter');
    const g = this.grad(loss);
    g.f32()[0] += seed;
    this.replayed = true;
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      // An output nobody used (no gradient ever written) contributes nothing.
      if (n.out.gradTensor) n.backward(n.out.gradTensor);
    }
  }

  /** Forget every node and free the step arena (params keep their grads). */
  reset(): void {
    this.nodes = [];
    this.replayed = false;
    this.arena.reset();
  }

  /** Bytes the step arena holds now (for reports). */
  get usedBytes(): number {
    return this.arena.usedBytes;
  }
}
