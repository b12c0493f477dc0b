/**
 * Differentiable ops on the tape (src/train/tape.ts): each op's forward and backward side by
 * side, as in karpathy/llm.c. Forward passes use the inference kernels; backward passes the
 * training kernels (gemm, rmsNormBackward, swigluBackward, attentionBackward, crossEntropy,
 * scatterAddRows, rowDot, scaleRows). Every backward ADDS into its inputs' gradients, so a
 * Var used twice receives both contributions. Each op's gradient is checked against central
 * finite differences in test/train/ops-grad.test.ts.
 *
 * Shape legend: T tokens, C input features, R output features, V vocabulary, H / Hkv heads,
 * Dh head dim, S key positions.
 */
import { GGMLType } from '../core/dtypes.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { AttentionParams, RopeParams } from '../kernels/backend.js';
import type { Tape, Var } from './tape.js';

function fail(op: string, msg: string): never {
  throw new InvalidArgumentError(`${op}: ${msg}`);
}

const shapeStr = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** A [n] tensor of ones from the step arena (for row sums as gemm with a ones vector). */
function ones(t: Tape, n: number): Tensor {
  const o = t.alloc([1, n]);
  o.f32().fill(1);
  return o;
}

/** x viewed as 2-D [rows, cols]. */
const as2d = (x: Tensor): Tensor => x.reshape([x.rows, x.cols]);

/**
 * out [N, C] = table [V, C] rows ids [N] (I32).
 * d table[ids[n]] += d out[n] (repeated ids accumulate).
 */
export function embedding(t: Tape, table: Var, ids: Tensor): Var {
  if (ids.type !== GGMLType.I32) fail('embedding', `ids must be I32, got ${ids}`);
  const out = t.alloc([ids.numel, table.value.cols]);
  t.backend.getRows(out, table.value, ids.reshape([ids.numel]));
  return t.record(out, [table], (g) => {
    t.backend.scatterAddRows(t.grad(table), g, ids.reshape([ids.numel]), null);
  });
}

/**
 * y [..., R] = x [..., C] · wᵀ for w [R, C] (leading dims of x folded into T).
 * dx [T, C] += dy [T, R] · w;  dw [R, C] += dyᵀ · x.
 */
export function linear(t: Tape, x: Var, w: Var): Var {
  const [R, C] = w.shape;
  if (w.shape.length !== 2 || x.value.cols !== C) fail('linear', `x ${shapeStr(x.shape)} does not match w ${shapeStr(w.shape)} ([R, C])`);
  const T = x.value.rows;
  const out = t.alloc([...x.shape.slice(0, -1), R]);
  t.backend.gemm(as2d(out), as2d(x.value), w.value, { transB: true });
  return t.record(out, [x, w], (g) => {
    const g2 = as2d(g); // [T, R]
    if (x.requiresGrad) {
      const { grad, beta } = t.gradTarget(x);
      t.backend.gemm(grad.reshape([T, C]), g2, w.value, { beta });
    }
    if (w.requiresGrad) {
      const { grad, beta } = t.gradTarget(w);
      t.backend.gemm(grad, g2, as2d(x.value), { transA: true, beta });
    }
  });
}

/**
 * y = x / rms(x) ⊙ w per row of x [..., C], rms(x) = sqrt(mean(x²) + eps); w [C] or null.
 * dx = (dy ⊙ w - x̂ · mean(dy ⊙ w ⊙ x̂)) / rms(x) with x̂ = x / rms(x);  dw += Σ_rows dy ⊙ x̂.
 */
export function rmsNorm(t: Tape, x: Var, w: Var | null, eps: number): Var {
  const out = t.alloc(x.shape);
  const x2 = as2d(x.value);
  t.backend.rmsNorm(as2d(out), x2, w ? w.value : null, eps);
  return t.record(out, w ? [x, w] : [x], (g) => {
    const dx = t.alloc(x2.shape);
    const dw = w?.requiresGrad ? t.grad(w) : null;
    t.backend.rmsNormBackward(dx, as2d(g), x2, w ? w.value : null, eps, dw);
    t.addGrad(x, dx, true);
  });
}

/**
 * Rotary embedding of x [T, H, Dh] at positions [T]: y = R(θ_pos) x, a rotation of each pair.
 * dx = R(θ_pos)ᵀ dy = R(-θ_pos) dy: rope at negated positions (θ is linear in the position,
 * also under YaRN's ramp, and mscale multiplies cos and sin alike).
 */
export function rope(t: Tape, x: Var, positions: Tensor, p: RopeParams): Var {
  const out = t.alloc(x.shape);
  t.backend.rope(out, x.value, positions, p);
  return t.record(out, [x], (g) => {
    const neg = t.alloc(positions.shape, GGMLType.I32);
    const src = positions.i32();
    const dst = neg.i32();
    for (let i = 0; i < src.length; i++) dst[i] = -src[i]; // [T]: per token, not per element
    const dx = t.alloc(x.shape);
    t.backend.rope(dx, g, neg, p);
    t.addGrad(x, dx, true);
  });
}

/**
 * Causal attention out [T, H, Dv] = softmax(scale · q kᵀ + mask) v for q [T, H, Dk], k [S, Hkv, Dk],
 * v [S, Hkv, Dv] (F32). dq, dk, dv by attentionBackward (which recomputes the probabilities P):
 * dv = Pᵀ dout; dP = dout vᵀ; dS = P ⊙ (dP - rowsum(dP ⊙ P)); dq = scale · dS k; dk = scale · dSᵀ q.
 */
export function attention(t: Tape, q: Var, k: Var, v: Var, p: AttentionParams): Var {
  if (p.sinks) fail('attention', 'attention sinks have no backward (train without sinks)');
  const [T, H] = q.shape;
  const out = t.alloc([T, H, v.shape[2]]);
  t.backend.attention(out, q.value, k.value, v.value, p);
  return t.record(out, [q, k, v], (g) => {
    const dq = t.alloc(q.shape);
    const dk = t.alloc(k.shape);
    const dv = t.alloc(v.shape);
    t.backend.attentionBackward(dq, dk, dv, g, q.value, k.value, v.value, p);
    t.addGrad(q, dq, true);
    t.addGrad(k, dk, true);
    t.addGrad(v, dv, true);
  });
}

/**
 * y = silu(gate) ⊙ up, silu(g) = g · σ(g).
 * dgate = dy ⊙ up ⊙ σ(g) (1 + g (1 - σ(g)));  dup = dy ⊙ silu(gate).
 */
export function swiglu(t: Tape, gate: Var, up: Var): Var {
  const out = t.alloc(gate.shape);
  t.backend.swiglu(out, gate.value, up.value);
  return t.record(out, [gate, up], (g) => {
    const dgate = t.alloc(gate.shape);
    const dup = t.alloc(up.shape);
    t.backend.swigluBackward(dgate, dup, g, gate.value, up.value);
    t.addGrad(gate, dgate, true);
    t.addGrad(up, dup, true);
  });
}

/** Σ over the rows of g [R, C] into dst [C] (gemm with a ones row; beta 1 accumulates). */
function sumRowsInto(t: Tape, dst: Tensor, beta: 0 | 1, g: Tensor): void {
  const g2 = as2d(g);
  t.backend.gemm(dst.reshape([1, g2.cols]), ones(t, g2.rows), g2, { beta });
}

/** True when b is a's shape; false when b is one row [C] broadcast over a's rows. */
function broadcastKind(op: string, a: Var, b: Var): boolean {
  if (a.value.numel === b.value.numel && a.value.cols === b.value.cols) return true;
  if (b.value.numel === b.value.cols && b.value.cols === a.value.cols) return false;
  return fail(op, `b ${shapeStr(b.shape)} must have a's shape ${shapeStr(a.shape)} or be one row [${a.value.cols}]`);
}

/**
 * out = a + b (b: a's shape, or one row [C] broadcast over a's rows).
 * da += dy;  db += dy (or Σ_rows dy when broadcast).
 */
export function add(t: Tape, a: Var, b: Var): Var {
  const same = broadcastKind('add', a, b);
  const out = t.alloc(a.shape);
  t.backend.add(as2d(out), as2d(a.value), same ? as2d(b.value) : b.value.reshape([b.value.cols]));
  return t.record(out, [a, b], (g) => {
    // g is this op's own gradient, read by nobody after this: one input may adopt it.
    if (same) t.addGrad(b, g, !a.requiresGrad);
    else if (b.requiresGrad) {
      const { grad, beta } = t.gradTarget(b);
      sumRowsInto(t, grad, beta, g);
    }
    t.addGrad(a, g, true);
  });
}

/**
 * out = a ⊙ b (broadcast as add).
 * da += dy ⊙ b;  db += dy ⊙ a (summed over rows when broadcast).
 */
export function mul(t: Tape, a: Var, b: Var): Var {
  const same = broadcastKind('mul', a, b);
  const bv = same ? as2d(b.value) : b.value.reshape([b.value.cols]);
  const out = t.alloc(a.shape);
  t.backend.mul(as2d(out), as2d(a.value), bv);
  return t.record(out, [a, b], (g) => {
    if (b.requiresGrad) {
      const gb = t.alloc(a.shape);
      t.backend.mul(as2d(gb), as2d(g), as2d(a.value));
      if (same) t.addGrad(b, gb, true);
      else {
        const { grad, beta } = t.gradTarget(b);
        sumRowsInto(t, grad, beta, gb);
      }
    }
    if (a.requiresGrad) {
      const ga = t.alloc(a.shape);
      t.backend.mul(as2d(ga), as2d(g), bv);
      t.addGrad(a, ga, true);
    }
  });
}

/** out = a · s (s a number).  da += s · dy. */
export function scale(t: Tape, a: Var, s: number): Var {
  const out = t.alloc(a.shape);
  t.backend.scale(out, a.value, s);
  return t.record(out, [a], (g) => {
    const ga = t.alloc(a.shape);
    t.backend.scale(ga, g, s);
    t.addGrad(a, ga, true);
  });
}

/** The same values with another shape (a view); its gradient is a view of x's gradient. */
export function reshape(t: Tape, x: Var, shape: readonly number[]): Var {
  return t.view(x, shape);
}

/**
 * Row-wise softmax y of x [R, C].
 * dx = y ⊙ (dy - rowsum(dy ⊙ y)).
 */
export function softmax(t: Tape, x: Var): Var {
  const out = t.alloc(x.shape);
  t.backend.softmax(as2d(out), as2d(x.value));
  return t.record(out, [x], (g) => {
    const y = as2d(out);
    const s = t.alloc([y.rows]);
    t.backend.rowDot(s, as2d(g), y); // s[r] = Σ dy ⊙ y
    const dx = t.alloc(y.shape);
    t.backend.scaleRows(dx, y, s); // y · s[r]
    t.backend.scale(dx, dx, -1);
    const yg = t.alloc(y.shape);
    t.backend.mul(yg, y, as2d(g));
    t.backend.add(dx, dx, yg);
    t.addGrad(x, dx, true);
  });
}

/** Σ of every element of x, as a [1] Var.  dx += dy (broadcast). */
export function sum(t: Tape, x: Var): Var {
  const n = x.value.numel;
  const out = t.alloc([1]);
  t.backend.rowDot(out, x.value.reshape([1, n]), ones(t, n));
  return t.record(out, [x], (g) => {
    const dx = t.alloc(x.shape);
    dx.f32().fill(g.f32()[0]);
    t.addGrad(x, dx, true);
  });
}

/** Mean of every element of x, as a [1] Var.  dx += dy / n. */
export function mean(t: Tape, x: Var): Var {
  return scale(t, sum(t, x), 1 / x.value.numel);
}

/**
 * Mean softmax cross-entropy of logits [T, V] against targets [T] I32 (negative = ignored),
 * as a [1] Var: (1/n) Σ_t (logsumexp(logits[t]) - logits[t, target[t]]) over the n counted rows
 * (0 when none is). d logits[t] = dy · (softmax(logits[t]) - onehot(target[t])) / n.
 * The kernel writes the gradient with the forward (scale 1/n); backward multiplies by dy.
 */
export function crossEntropy(t: Tape, logits: Var, targets: Tensor): Var {
  const l2 = as2d(logits.value);
  const T = l2.rows;
  if (targets.type !== GGMLType.I32 || targets.numel !== T) fail('crossEntropy', `targets must be I32 [${T}], got ${targets}`);
  const tg = targets.i32();
  let n = 0;
  for (let i = 0; i < T; i++) if (tg[i] >= 0) n++; // [T] only
  const rowLoss = t.alloc([T]);
  const dlogits = t.alloc(l2.shape); // not aliased to the logits: their value stays readable
  t.backend.crossEntropy(rowLoss, dlogits, l2, targets.reshape([T]), n ? 1 / n : 0);
  const out = t.alloc([1]);
  t.backend.rowDot(out, rowLoss.reshape([1, T]), ones(t, T));
  out.f32()[0] = n ? out.f32()[0] / n : 0;
  return t.record(out, [logits], (g) => {
    const dy = g.f32()[0];
    if (dy !== 1) t.backend.scale(dlogits, dlogits, dy);
    t.addGrad(logits, dlogits, true);
  });
}
