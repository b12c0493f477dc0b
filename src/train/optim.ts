/**
 * The optimizer side of training: AdamW with decoupled weight decay (Loshchilov & Hutter,
 * "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2; bias-corrected moments
 * as in Kingma & Ba, "Adam", 2015), global gradient-norm clipping (Pascanu et al., "On the
 * difficulty of training recurrent neural networks", 2013), and a linear warm-up then cosine
 * learning-rate schedule (Loshchilov & Hutter, "SGDR", 2017; the GPT-3 / llm.c recipe).
 *
 * All of it runs over the ParameterStore's flat buffers: one kernel call per run of
 * neighbouring parameters that share a weight-decay setting.
 */
import { GGMLType } from '../core/dtypes.js';
import { InvalidArgumentError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { KernelBackend } from '../kernels/backend.js';
import type { Parameter, ParameterStore } from './params.js';

export interface AdamWOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.95 (llm.c / GPT-3; PyTorch's default is 0.999). */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay; default 0. */
  weightDecay?: number;
  /** Which parameters decay (default all); e.g. `(p) => p.shape.length >= 2` spares norms and biases. */
  decay?: (p: Parameter) => boolean;
}

/** A contiguous element range of the flat buffers with one weight-decay setting. */
interface Group {
  offset: number;
  count: number;
  decay: boolean;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Optimizer steps taken so far (the next step() uses steps + 1 for bias correction). Checkpoints save it. */
  steps = 0;
  private readonly groups: Group[] = [];

  constructor(
    readonly backend: KernelBackend,
    readonly store: ParameterStore,
    opts: AdamWOptions = {},
  ) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.95;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    for (const [k, v] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(v >= 0 && v < 1)) throw new InvalidArgumentError(`AdamW ${k} must be in [0, 1), got ${v}`);
    }
    if (!(this.eps > 0)) throw new InvalidArgumentError(`AdamW eps must be > 0, got ${this.eps}`);
    if (!(this.weightDecay >= 0)) throw new InvalidArgumentError(`AdamW weightDecay must be >= 0, got ${this.weightDecay}`);
    let offset = 0;
    for (const p of store.list) {
      const n = p.value.numel;
      const decay = this.weightDecay > 0 && (opts.decay ? opts.decay(p) : true);
      const last = this.groups[this.groups.length - 1];
      if (last && last.decay === decay) last.count += n;
      else this.groups.push({ offset, count: n, decay });
      offset += n;
    }
  }

  /** One update of every parameter from its gradient at learning rate lr. */
  step(lr: number): void {
    if (!Number.isFinite(lr) || lr < 0) throw new InvalidArgumentError(`AdamW learning rate must be a finite number >= 0, got ${lr}`);
    this.steps++;
    const s = this.store;
    for (const g of this.groups) {
      const view = (t: Tensor): Tensor => new Tensor(t.heap, t.offset + g.offset * 4, GGMLType.F32, [g.count]);
      this.backend.adamw(view(s.values), view(s.grads), view(s.m), view(s.v), {
        lr,
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        weightDecay: g.decay ? this.weightDecay : 0,
        step: this.steps,
      });
    }
  }
}

/**
 * Scales every gradient by maxNorm / ‖g‖ when the global L2 norm ‖g‖ exceeds maxNorm.
 * Returns ‖g‖ before clipping (for logs).
 */
export function clipGradNorm(backend: KernelBackend, store: ParameterStore, maxNorm: number): number {
  if (!(maxNorm > 0)) throw new InvalidArgumentError(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = Math.sqrt(backend.sumSquares(store.grads));
  if (norm > maxNorm) backend.scale(store.grads, store.grads, maxNorm / norm);
  return norm;
}

export interface LrScheduleOptions {
  /** Learning rate at the end of warm-up. */
  peak: number;
  /** Steps of linear warm-up: step s < warmupSteps gets peak · (s + 1) / warmupSteps. */
  warmupSteps: number;
  /** The cosine reaches peak · minRatio at step totalSteps - 1 and stays there. */
  totalSteps: number;
  /** Final learning rate as a fraction of the peak (default 0.1). */
  minRatio?: number;
}

/** lr(step) for 0-based optimizer steps: linear warm-up, then cosine decay to peak · minRatio. */
export function lrSchedule(o: LrScheduleOptions): (step: number) => number {
  const minRatio = o.minRatio ?? 0.1;
  if (!(o.peak >= 0) || !Number.isFinite(o.peak)) throw new InvalidArgumentError(`lrSchedule: peak must be a finite number >= 0, got ${o.peak}`);
  if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0) throw new InvalidArgumentError(`lrSchedule: warmupSteps must be an integer >= 0, got ${o.warmupSteps}`);
  if (!Number.isInteger(o.totalSteps) || o.totalSteps < 1) throw new InvalidArgumentError(`lrSchedule: totalSteps must be an integer >= 1, got ${o.totalSteps}`);
  if (!(minRatio >= 0 && minRatio <= 1)) throw new InvalidArgumentError(`lrSchedule: minRatio must be in [0, 1], got ${minRatio}`);
  const min = o.peak * minRatio;
  const decaySteps = o.totalSteps - 1 - o.warmupSteps;
  return (step: number) => {
    if (step < o.warmupSteps) return (o.peak * (step + 1)) / o.warmupSteps;
    if (decaySteps <= 0) return o.peak;
    const progress = Math.min(1, (step - o.warmupSteps) / decaySteps);
    return min + (o.peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
