/**
 * Named tensor transforms between Hugging Face checkpoint layouts and GGUF layouts, for the
 * cases where a rename is not enough. Each transform has a forward (HF -> GGUF) and an inverse
 * (GGUF -> HF, used by export), and a shape function so a GGUF header can be planned before any
 * data is read. Transforms only move elements (MXFP4 repacking moves nibbles), so they work on
 * float32 values and on raw F16/BF16 patterns alike, and the inverse of a forward gives the
 * input back bit for bit.
 *
 * Shapes are outermost first (a matrix is [rows, cols] = [out, in]), as in safetensors and as
 * Switchyard writes GGUF shapes (GGUF's `ne` reversed).
 *
 * Reference: llama.cpp d32676d77 conversion/*.py (`LlamaModel.permute`, the per-model
 * `modify_tensors`: expert stacking, DeepSeek-V2 `kv_b_proj` split, Granite-MoE `input_linear`,
 * gpt-oss `gate_up_proj` and MXFP4 repacking). Each transform names the line it mirrors.
 */
import { GGMLType } from '../../core/dtypes.js';
import { SwitchyardError } from '../../core/errors.js';

/** A conversion failure: the message names the folder or file, the tensor and what is wrong. */
export class ConvertError extends SwitchyardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CONVERT', message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

export type Shape = readonly number[];
/** Tensor elements: float32 values (or their bit patterns), raw 16-bit float patterns, or bytes (MXFP4 blocks and scales). */
export type Elements = Float32Array | Uint32Array | Uint16Array | Uint8Array;

export interface TensorValue {
  readonly shape: Shape;
  readonly data: Elements;
}

/** Hyper-parameters some transforms need (from config.json). */
export interface TransformParams {
  /** Query heads (num_attention_heads). */
  readonly heads?: number;
  /** Key/value heads (num_key_value_heads). */
  readonly headsKv?: number;
  /** DeepSeek MLA: per-head width of the non-rotary key part (qk_nope_head_dim). */
  readonly qkNopeHeadDim?: number;
  /** DeepSeek MLA: per-head value width (v_head_dim). */
  readonly vHeadDim?: number;
}

export interface Transform {
  /** What it does, and the reference line it mirrors. */
  readonly summary: string;
  /** Set when the GGUF outputs are raw data of this GGML type instead of floats (MXFP4). */
  readonly rawGGUFType?: number;
  /** GGUF shapes of the outputs from the HF input shapes; throws (a plain Error) when they do not fit. */
  ggufShapes(hf: readonly Shape[], p: TransformParams): Shape[];
  forward(hf: readonly TensorValue[], p: TransformParams): TensorValue[];
  /** HF shapes of the inputs from the GGUF output shapes. */
  hfShapes(gguf: readonly Shape[], p: TransformParams): Shape[];
  inverse(gguf: readonly TensorValue[], p: TransformParams): TensorValue[];
}

const count = (s: Shape) => s.reduce((a, b) => a * b, 1);
const sameShape = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);
const fmt = (s: Shape) => `[${s.join(', ')}]`;

function fail(message: string): never {
  throw new Error(message);
}

/** A new array of the same kind as `like`. */
function alloc(like: Elements, n: number): Elements {
  if (like instanceof Uint32Array) return new Uint32Array(n);
  if (like instanceof Float32Array) return new Float32Array(n);
  if (like instanceof Uint16Array) return new Uint16Array(n);
  return new Uint8Array(n);
}

/**
 * Runs a transform on the bit patterns of float32 data: element moves through JS numbers would
 * quiet signalling NaNs, so float32 arrays are handled as Uint32Array views and given back as
 * Float32Array views of the result.
 */
function onBits(t: Transform): Transform {
  const toBits = (v: TensorValue): TensorValue =>
    v.data instanceof Float32Array ? { shape: v.shape, data: new Uint32Array(v.data.buffer, v.data.byteOffset, v.data.length) } : v;
  const toFloats = (v: TensorValue, was: boolean): TensorValue =>
    was && v.data instanceof Uint32Array ? { shape: v.shape, data: new Float32Array(v.data.buffer, v.data.byteOffset, v.data.length) } : v;
  const wrap =
    (fn: (x: readonly TensorValue[], p: TransformParams) => TensorValue[]) =>
    (x: readonly TensorValue[], p: TransformParams): TensorValue[] => {
      const floats = x.some((v) => v.data instanceof Float32Array);
      return fn(x.map(toBits), p).map((v) => toFloats(v, floats));
    };
  return { ...t, forward: wrap(t.forward), inverse: wrap(t.inverse) };
}

function need(p: TransformParams, key: keyof TransformParams, transform: string): number {
  const v = p[key];
  if (v === undefined || !Number.isInteger(v) || v <= 0) {
    fail(`${transform} needs ${key} from config.json (got ${v})`);
  }
  return v;
}

function expectCount<T>(items: readonly T[], n: number, what: string): void {
  if (items.length !== n) fail(`expected ${n} ${what}, got ${items.length}`);
}

// ---- rename ------------------------------------------------------------------------------

const rename: Transform = {
  summary: 'same data under the GGUF name',
  ggufShapes: (hf) => [hf[0] as Shape],
  forward: (hf) => [hf[0] as TensorValue],
  hfShapes: (g) => [g[0] as Shape],
  inverse: (g) => [g[0] as TensorValue],
};

// ---- rotary row permutation (llama family) ----------------------------------------------

/**
 * HF llama checkpoints store each head's rows as two rotary halves [x_0..x_{d/2-1}, x_{d/2}..];
 * llama.cpp's RoPE (NORM) rotates adjacent pairs, so GGUF rows are interleaved:
 * GGUF row h*d + 2i + j = HF row h*d + j*d/2 + i. Reference (conversion/llama.py):
 *   weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2)
 * Works on weights [R, C] and biases [R] alike (a "row" is everything after the first dimension).
 */
function permuteRows(src: TensorValue, heads: number, inverse: boolean): TensorValue {
  const rows = src.shape[0] as number;
  if (rows % (heads * 2) !== 0) {
    fail(`${rows} rows do not split into ${heads} heads of an even size (rotary halves)`);
  }
  const headDim = rows / heads;
  const half = headDim / 2;
  const rowLen = count(src.shape.slice(1));
  const out = alloc(src.data, src.data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const gguf = h * headDim + 2 * i + j;
        const hf = h * headDim + j * half + i;
        const [from, to] = inverse ? [gguf, hf] : [hf, gguf];
        out.set(src.data.subarray(from * rowLen, (from + 1) * rowLen), to * rowLen);
      }
    }
  }
  return { shape: src.shape, data: out };
}

function permuteTransform(key: 'heads' | 'headsKv', name: string): Transform {
  const heads = (p: TransformParams) =>
    key === 'headsKv' ? (p.headsKv ?? need(p, 'heads', name)) : need(p, 'heads', name);
  const check = (s: Shape, p: TransformParams) => {
    const h = heads(p);
    if ((s[0] as number) % (2 * h) !== 0) fail(`${fmt(s)}: the first dimension must be ${h} heads of an even size`);
    return [s];
  };
  return {
    summary: `rotary halves -> interleaved pairs, per ${key === 'heads' ? 'query' : 'key/value'} head (LlamaModel.permute)`,
    ggufShapes: (hf, p) => check(hf[0] as Shape, p),
    forward: (hf, p) => [permuteRows(hf[0] as TensorValue, heads(p), false)],
    hfShapes: (g, p) => check(g[0] as Shape, p),
    inverse: (g, p) => [permuteRows(g[0] as TensorValue, heads(p), true)],
  };
}

// ---- squeeze -------------------------------------------------------------------------------

/** [1, D] -> [D]: Qwen2-MoE's shared_expert_gate is a one-row linear layer; GGUF stores a vector. */
const squeeze: Transform = {
  summary: '[1, D] -> [D] (Qwen2-MoE shared_expert_gate -> ffn_gate_inp_shexp)',
  ggufShapes: (hf) => {
    const s = hf[0] as Shape;
    if (s.length !== 2 || s[0] !== 1) fail(`expected a [1, D] tensor, got ${fmt(s)}`);
    return [[s[1] as number]];
  },
  forward: (hf) => [{ shape: squeeze.ggufShapes([hf[0]!.shape], {})[0]!, data: hf[0]!.data }],
  hfShapes: (g) => {
    const s = g[0] as Shape;
    if (s.length !== 1) fail(`expected a vector, got ${fmt(s)}`);
    return [[1, s[0] as number]];
  },
  inverse: (g) => [{ shape: [1, g[0]!.shape[0] as number], data: g[0]!.data }],
};

// ---- expert stacking -----------------------------------------------------------------------

/**
 * E per-expert matrices [R, C] (HF `experts.{xid}.*`, in expert order) -> one [E, R, C] tensor
 * (GGUF `ffn_*_exps`, ne [C, R, E]). Reference: the `torch.stack(datas, dim=0)` of every MoE
 * model's modify_tensors.
 */
const stackExperts: Transform = {
  summary: 'per-expert [R, C] matrices -> one [E, R, C] tensor (torch.stack(datas, dim=0))',
  ggufShapes: (hf) => {
    if (hf.length === 0) fail('no experts');
    const first = hf[0] as Shape;
    hf.forEach((s, i) => {
      if (!sameShape(s, first)) fail(`expert ${i} has shape ${fmt(s)}, expert 0 has ${fmt(first)}`);
    });
    return [[hf.length, ...first]];
  },
  forward: (hf) => {
    const [shape] = stackExperts.ggufShapes(
      hf.map((t) => t.shape),
      {},
    );
    const per = count(hf[0]!.shape);
    const out = alloc(hf[0]!.data, per * hf.length);
    for (let i = 0; i < hf.length; i++) out.set(hf[i]!.data, i * per);
    return [{ shape: shape as Shape, data: out }];
  },
  hfShapes: (g) => {
    const s = g[0] as Shape;
    if (s.length < 2) fail(`expected a stacked [E, ...] tensor, got ${fmt(s)}`);
    return Array.from({ length: s[0] as number }, () => s.slice(1));
  },
  inverse: (g) => {
    const t = g[0] as TensorValue;
    const e = t.shape[0] as number;
    const inner = t.shape.slice(1);
    const per = count(inner);
    return Array.from({ length: e }, (_, i) => ({ shape: inner, data: t.data.slice(i * per, (i + 1) * per) }));
  },
};

// ---- splitting fused gate/up projections -----------------------------------------------------

/**
 * [..., 2F, D] -> gate [..., F, D] (first half of the rows) and up [..., F, D] (second half).
 * Reference: GraniteMoeModel `data_torch.split(ffn_dim, dim=-2)` of `input_linear`, and
 * Qwen2MoeModel's split of fused `mlp.experts.gate_up_proj`.
 */
const splitGateUp: Transform = {
  summary: '[..., 2F, D] -> gate = first F rows, up = last F rows (split(ffn_dim, dim=-2))',
  ggufShapes: (hf) => {
    const s = hf[0] as Shape;
    const rows = s[s.length - 2];
    if (s.length < 2 || rows === undefined || rows % 2 !== 0) fail(`expected [..., 2F, D], got ${fmt(s)}`);
    const half = [...s.slice(0, -2), rows / 2, s[s.length - 1] as number];
    return [half, half];
  },
  forward: (hf) => {
    const t = hf[0] as TensorValue;
    const [half] = splitGateUp.ggufShapes([t.shape], {});
    const outer = count(t.shape.slice(0, -2));
    const block = count((half as Shape).slice(-2));
    const gate = alloc(t.data, outer * block);
    const up = alloc(t.data, outer * block);
    for (let o = 0; o < outer; o++) {
      gate.set(t.data.subarray(2 * o * block, (2 * o + 1) * block), o * block);
      up.set(t.data.subarray((2 * o + 1) * block, (2 * o + 2) * block), o * block);
    }
    return [
      { shape: half as Shape, data: gate },
      { shape: half as Shape, data: up },
    ];
  },
  hfShapes: (g) => {
    const [a, b] = g as [Shape, Shape];
    if (!sameShape(a, b) || a.length < 2) fail(`gate ${fmt(a)} and up ${fmt(b)} must have the same shape`);
    return [[...a.slice(0, -2), 2 * (a[a.length - 2] as number), a[a.length - 1] as number]];
  },
  inverse: (g) => {
    const [gate, up] = g as [TensorValue, TensorValue];
    const [shape] = splitGateUp.hfShapes([gate.shape, up.shape], {});
    const block = count(gate.shape.slice(-2));
    const outer = count(gate.shape.slice(0, -2));
    const out = alloc(gate.data, 2 * outer * block);
    for (let o = 0; o < outer; o++) {
      out.set(gate.data.subarray(o * block, (o + 1) * block), 2 * o * block);
      out.set(up.data.subarray(o * block, (o + 1) * block), (2 * o + 1) * block);
    }
    return [{ shape: shape as Shape, data: out }];
  },
};

/** Swaps the last two dimensions. */
function transposeLast2(t: TensorValue): TensorValue {
  const s = t.shape;
  const r = s[s.length - 2] as number;
  const c = s[s.length - 1] as number;
  const outer = count(s.slice(0, -2));
  const out = alloc(t.data, t.data.length);
  const src = t.data;
  for (let o = 0; o < outer; o++) {
    const base = o * r * c;
    for (let i = 0; i < r; i++) {
      for (let j = 0; j < c; j++) out[base + j * r + i] = src[base + i * c + j] as number;
    }
  }
  return { shape: [...s.slice(0, -2), c, r], data: out };
}

/**
 * gpt-oss BF16 checkpoints store experts as [E, in, out] with gate and up interleaved in the
 * output columns (column 2i = gate_i, 2i+1 = up_i). Reference (conversion/gpt_oss.py):
 *   data_torch = data_torch.transpose(-1, -2)
 *   gate_proj_weight, up_proj_weight = data_torch[:, ::2, :], data_torch[:, 1::2, :]
 */
const gptOssGateUp: Transform = {
  summary: '[E, D, 2F] (columns gate/up interleaved) -> gate, up [E, F, D] (transpose, then even/odd rows)',
  ggufShapes: (hf) => {
    const s = hf[0] as Shape;
    if (s.length !== 3 || (s[2] as number) % 2 !== 0) fail(`expected [E, D, 2F], got ${fmt(s)}`);
    const half = [s[0] as number, (s[2] as number) / 2, s[1] as number];
    return [half, half];
  },
  forward: (hf) => {
    const t = transposeLast2(hf[0] as TensorValue); // [E, 2F, D]
    const [e, f2, d] = t.shape as [number, number, number];
    const gate = alloc(t.data, (e * f2 * d) / 2);
    const up = alloc(t.data, (e * f2 * d) / 2);
    for (let x = 0; x < e; x++) {
      for (let r = 0; r < f2; r++) {
        const dest = r % 2 === 0 ? gate : up;
        const row = t.data.subarray((x * f2 + r) * d, (x * f2 + r + 1) * d);
        dest.set(row, (x * (f2 / 2) + (r >> 1)) * d);
      }
    }
    const half = [e, f2 / 2, d];
    return [
      { shape: half, data: gate },
      { shape: half, data: up },
    ];
  },
  hfShapes: (g) => {
    const [a, b] = g as [Shape, Shape];
    if (!sameShape(a, b) || a.length !== 3) fail(`gate ${fmt(a)} and up ${fmt(b)} must be equal [E, F, D]`);
    return [[a[0] as number, a[2] as number, 2 * (a[1] as number)]];
  },
  inverse: (g) => {
    const [gate, up] = g as [TensorValue, TensorValue];
    const [e, f, d] = gate.shape as [number, number, number];
    const fused = alloc(gate.data, 2 * e * f * d); // [E, 2F, D]
    for (let x = 0; x < e; x++) {
      for (let r = 0; r < f; r++) {
        const at = (x * f + r) * d;
        fused.set(gate.data.subarray(at, at + d), (x * 2 * f + 2 * r) * d);
        fused.set(up.data.subarray(at, at + d), (x * 2 * f + 2 * r + 1) * d);
      }
    }
    return [transposeLast2({ shape: [e, 2 * f, d], data: fused })];
  },
};

/** gpt-oss `gate_up_proj_bias` [E, 2F] -> gate = even columns, up = odd columns ([..., ::2], [..., 1::2]). */
const gptOssGateUpBias: Transform = {
  summary: '[E, 2F] -> gate = even columns, up = odd columns (data_torch[..., ::2], [..., 1::2])',
  ggufShapes: (hf) => {
    const s = hf[0] as Shape;
    if (s.length !== 2 || (s[1] as number) % 2 !== 0) fail(`expected [E, 2F], got ${fmt(s)}`);
    const half = [s[0] as number, (s[1] as number) / 2];
    return [half, half];
  },
  forward: (hf) => {
    const t = hf[0] as TensorValue;
    const [e, f2] = t.shape as [number, number];
    const gate = alloc(t.data, (e * f2) / 2);
    const up = alloc(t.data, (e * f2) / 2);
    for (let i = 0; i < (e * f2) / 2; i++) {
      gate[i] = t.data[2 * i] as number;
      up[i] = t.data[2 * i + 1] as number;
    }
    return [
      { shape: [e, f2 / 2], data: gate },
      { shape: [e, f2 / 2], data: up },
    ];
  },
  hfShapes: (g) => {
    const [a, b] = g as [Shape, Shape];
    if (!sameShape(a, b) || a.length !== 2) fail(`gate ${fmt(a)} and up ${fmt(b)} must be equal [E, F]`);
    return [[a[0] as number, 2 * (a[1] as number)]];
  },
  inverse: (g) => {
    const [gate, up] = g as [TensorValue, TensorValue];
    const out = alloc(gate.data, 2 * gate.data.length);
    for (let i = 0; i < gate.data.length; i++) {
      out[2 * i] = gate.data[i] as number;
      out[2 * i + 1] = up.data[i] as number;
    }
    return [{ shape: [gate.shape[0] as number, 2 * (gate.shape[1] as number)], data: out }];
  },
};

/** gpt-oss `down_proj` [E, F, D] ([E, in, out]) -> [E, D, F] (data_torch.transpose(-1, -2)). */
const transposeExperts: Transform = {
  summary: '[E, in, out] -> [E, out, in] (data_torch.transpose(-1, -2))',
  ggufShapes: (hf) => {
    const s = hf[0] as Shape;
    if (s.length !== 3) fail(`expected [E, in, out], got ${fmt(s)}`);
    return [[s[0] as number, s[2] as number, s[1] as number]];
  },
  forward: (hf) => [transposeLast2(hf[0] as TensorValue)],
  hfShapes: (g) => transposeExperts.ggufShapes(g, {}),
  inverse: (g) => [transposeLast2(g[0] as TensorValue)],
};

// ---- DeepSeek MLA: kv_b_proj -> attn_k_b, attn_v_b ------------------------------------------

/**
 * kv_b_proj [H * (nope + v), kv_lora] holds, per head, nope key rows then v value rows.
 * GGUF keeps them apart for the absorbed MLA form: attn_k_b [H, kv_lora, nope] (each head's key
 * block transposed) and attn_v_b [H, v, kv_lora]. Reference (conversion/deepseek.py):
 *   kv_b = data_torch.view(n_head_kv, v_head_dim + qk_nope_head_dim, data_torch.shape[-1])
 *   k_b, v_b = torch.split(kv_b, [qk_nope_head_dim, v_head_dim], dim=1)
 *   k_b = k_b.transpose(1, 2)
 * (n_head_kv there is config.num_key_value_heads, which equals num_attention_heads in
 * DeepSeek-V2/V3 configs; the head count is checked against the tensor's rows here.)
 */
const splitKvB: Transform = {
  summary: 'kv_b_proj [H*(nope+v), kv_lora] -> attn_k_b [H, kv_lora, nope] (transposed per head), attn_v_b [H, v, kv_lora]',
  ggufShapes: (hf, p) => {
    const s = hf[0] as Shape;
    const h = need(p, 'heads', 'splitKvB');
    const nope = need(p, 'qkNopeHeadDim', 'splitKvB');
    const v = need(p, 'vHeadDim', 'splitKvB');
    if (s.length !== 2 || s[0] !== h * (nope + v)) {
      fail(`expected [${h} heads * (${nope} + ${v}), kv_lora_rank], got ${fmt(s)}`);
    }
    const lora = s[1] as number;
    return [
      [h, lora, nope],
      [h, v, lora],
    ];
  },
  forward: (hf, p) => {
    const t = hf[0] as TensorValue;
    const [kShape, vShape] = splitKvB.ggufShapes([t.shape], p) as [Shape, Shape];
    const [h, lora, nope] = kShape as [number, number, number];
    const v = vShape[1] as number;
    const k = alloc(t.data, h * lora * nope);
    const vb = alloc(t.data, h * v * lora);
    for (let head = 0; head < h; head++) {
      const base = head * (nope + v) * lora;
      for (let r = 0; r < nope; r++) {
        for (let c = 0; c < lora; c++) k[head * lora * nope + c * nope + r] = t.data[base + r * lora + c] as number;
      }
      vb.set(t.data.subarray(base + nope * lora, base + (nope + v) * lora), head * v * lora);
    }
    return [
      { shape: kShape, data: k },
      { shape: vShape, data: vb },
    ];
  },
  hfShapes: (g, p) => {
    const [k, v] = g as [Shape, Shape];
    if (k.length !== 3 || v.length !== 3 || k[0] !== v[0] || k[1] !== v[2]) {
      fail(`attn_k_b ${fmt(k)} and attn_v_b ${fmt(v)} do not fit [H, kv_lora, nope] and [H, v, kv_lora]`);
    }
    if (p.heads !== undefined && p.heads !== k[0]) fail(`attn_k_b has ${k[0]} heads, config.json says ${p.heads}`);
    return [[(k[0] as number) * ((k[2] as number) + (v[1] as number)), k[1] as number]];
  },
  inverse: (g, p) => {
    const [k, vb] = g as [TensorValue, TensorValue];
    const [shape] = splitKvB.hfShapes([k.shape, vb.shape], p);
    const [h, lora, nope] = k.shape as [number, number, number];
    const v = vb.shape[1] as number;
    const out = alloc(k.data, h * (nope + v) * lora);
    for (let head = 0; head < h; head++) {
      const base = head * (nope + v) * lora;
      for (let r = 0; r < nope; r++) {
        for (let c = 0; c < lora; c++) out[base + r * lora + c] = k.data[head * lora * nope + c * nope + r] as number;
      }
      out.set(vb.data.subarray(head * v * lora, (head + 1) * v * lora), base + nope * lora);
    }
    return [{ shape: shape as Shape, data: out }];
  },
};

// ---- gpt-oss MXFP4 experts -----------------------------------------------------------------

/**
 * MXFP4 as gpt-oss checkpoints store it: `*_blocks` [E, R, C/32, 16] bytes, byte j holding the
 * 4-bit codes of elements 2j (low nibble) and 2j+1 (high nibble), and `*_scales` [E, R, C/32]
 * E8M0 exponents. ggml's block_mxfp4 is { e, qs[16] } with qs[j] = element j (low nibble) |
 * element j+16 (high nibble); the codes and the exponent byte mean the same values
 * (kvalues_mxfp4 with GGML_E8M0_TO_FP32_HALF == the FP4 table with 2^(e-127)). Reference:
 * GptOssModel.repack_mxfp4 / transform_nibble_layout.
 */
function hfBlocksToGGML(blocks: Uint8Array, scales: Uint8Array, nBlocks: number): Uint8Array {
  const out = new Uint8Array(nBlocks * 17);
  const codes = new Uint8Array(32);
  for (let b = 0; b < nBlocks; b++) {
    const src = b * 16;
    for (let j = 0; j < 16; j++) {
      const byte = blocks[src + j] as number;
      codes[2 * j] = byte & 15;
      codes[2 * j + 1] = byte >> 4;
    }
    const o = b * 17;
    out[o] = scales[b] as number;
    for (let j = 0; j < 16; j++) out[o + 1 + j] = (codes[j] as number) | ((codes[j + 16] as number) << 4);
  }
  return out;
}

function ggmlBlocksToHF(ggml: Uint8Array, nBlocks: number): { blocks: Uint8Array; scales: Uint8Array } {
  const blocks = new Uint8Array(nBlocks * 16);
  const scales = new Uint8Array(nBlocks);
  const codes = new Uint8Array(32);
  for (let b = 0; b < nBlocks; b++) {
    const o = b * 17;
    scales[b] = ggml[o] as number;
    for (let j = 0; j < 16; j++) {
      const byte = ggml[o + 1 + j] as number;
      codes[j] = byte & 15;
      codes[j + 16] = byte >> 4;
    }
    for (let j = 0; j < 16; j++) blocks[b * 16 + j] = (codes[2 * j] as number) | ((codes[2 * j + 1] as number) << 4);
  }
  return { blocks, scales };
}

function checkMxfp4(blocks: Shape, scales: Shape): [number, number, number] {
  if (blocks.length !== 4 || blocks[3] !== 16 || scales.length !== 3 || !sameShape(blocks.slice(0, 3), scales)) {
    fail(`MXFP4 blocks ${fmt(blocks)} and scales ${fmt(scales)} must be [E, R, C/32, 16] and [E, R, C/32]`);
  }
  return [blocks[0] as number, blocks[1] as number, (blocks[2] as number) * 32];
}

function asBytes(t: TensorValue, what: string): Uint8Array {
  if (!(t.data instanceof Uint8Array)) fail(`${what} must be U8 bytes`);
  return t.data;
}

/** MXFP4 `*_blocks` + `*_scales` [E, R, ...] -> one GGUF MXFP4 tensor [E, R, C] (gpt-oss down_proj). */
const mxfp4Experts: Transform = {
  summary: 'MXFP4 blocks [E, R, C/32, 16] + scales [E, R, C/32] -> GGUF MXFP4 [E, R, C] (repack_mxfp4)',
  rawGGUFType: GGMLType.MXFP4,
  ggufShapes: (hf) => {
    expectCount(hf, 2, 'tensors (blocks, scales)');
    return [checkMxfp4(hf[0] as Shape, hf[1] as Shape)];
  },
  forward: (hf) => {
    const [shape] = mxfp4Experts.ggufShapes(
      hf.map((t) => t.shape),
      {},
    );
    const n = count((hf[1] as TensorValue).shape);
    return [{ shape: shape as Shape, data: hfBlocksToGGML(asBytes(hf[0]!, 'blocks'), asBytes(hf[1]!, 'scales'), n) }];
  },
  hfShapes: (g) => {
    const [e, r, c] = g[0] as [number, number, number];
    return [
      [e, r, c / 32, 16],
      [e, r, c / 32],
    ];
  },
  inverse: (g) => {
    const t = g[0] as TensorValue;
    const [blocksShape, scalesShape] = mxfp4Experts.hfShapes([t.shape], {});
    const { blocks, scales } = ggmlBlocksToHF(asBytes(t, 'MXFP4 data'), count(scalesShape as Shape));
    return [
      { shape: blocksShape as Shape, data: blocks },
      { shape: scalesShape as Shape, data: scales },
    ];
  },
};

/** Selects rows of every expert: even (parity 0) or odd (parity 1); rowLen elements per row. */
function everyOtherRow(data: Uint8Array, experts: number, rows: number, rowLen: number, parity: number): Uint8Array {
  const out = new Uint8Array((experts * rows * rowLen) / 2);
  for (let x = 0; x < experts; x++) {
    for (let r = parity; r < rows; r += 2) {
      const from = (x * rows + r) * rowLen;
      out.set(data.subarray(from, from + rowLen), (x * (rows / 2) + (r >> 1)) * rowLen);
    }
  }
  return out;
}

function interleaveRows(even: Uint8Array, odd: Uint8Array, experts: number, half: number, rowLen: number): Uint8Array {
  const out = new Uint8Array(2 * even.length);
  for (let x = 0; x < experts; x++) {
    for (let r = 0; r < half; r++) {
      const from = (x * half + r) * rowLen;
      out.set(even.subarray(from, from + rowLen), (x * 2 * half + 2 * r) * rowLen);
      out.set(odd.subarray(from, from + rowLen), (x * 2 * half + 2 * r + 1) * rowLen);
    }
  }
  return out;
}

/** MXFP4 `gate_up_proj_blocks/_scales` [E, 2F, ...] (gate/up rows interleaved) -> gate, up MXFP4 [E, F, D]. */
const mxfp4GateUp: Transform = {
  summary: 'MXFP4 gate_up blocks/scales [E, 2F, ...] -> gate = even rows, up = odd rows, GGUF MXFP4 [E, F, D]',
  rawGGUFType: GGMLType.MXFP4,
  ggufShapes: (hf) => {
    expectCount(hf, 2, 'tensors (blocks, scales)');
    const [e, r2, c] = checkMxfp4(hf[0] as Shape, hf[1] as Shape);
    if (r2 % 2 !== 0) fail(`gate_up rows ${r2} must be even`);
    return [
      [e, r2 / 2, c],
      [e, r2 / 2, c],
    ];
  },
  forward: (hf) => {
    const [shape] = mxfp4GateUp.ggufShapes(
      hf.map((t) => t.shape),
      {},
    );
    const [e, f, c] = shape as [number, number, number];
    const blocks = asBytes(hf[0]!, 'blocks');
    const scales = asBytes(hf[1]!, 'scales');
    const nb = c / 32;
    const out = (parity: number) =>
      hfBlocksToGGML(everyOtherRow(blocks, e, 2 * f, nb * 16, parity), everyOtherRow(scales, e, 2 * f, nb, parity), e * f * nb);
    return [
      { shape: shape as Shape, data: out(0) },
      { shape: shape as Shape, data: out(1) },
    ];
  },
  hfShapes: (g) => {
    const [e, f, c] = g[0] as [number, number, number];
    return [
      [e, 2 * f, c / 32, 16],
      [e, 2 * f, c / 32],
    ];
  },
  inverse: (g) => {
    const [gate, up] = g as [TensorValue, TensorValue];
    const [e, f, c] = gate.shape as [number, number, number];
    const nb = c / 32;
    const a = ggmlBlocksToHF(asBytes(gate, 'gate MXFP4 data'), e * f * nb);
    const b = ggmlBlocksToHF(asBytes(up, 'up MXFP4 data'), e * f * nb);
    const [blocksShape, scalesShape] = mxfp4GateUp.hfShapes([gate.shape], {});
    return [
      { shape: blocksShape as Shape, data: interleaveRows(a.blocks, b.blocks, e, f, nb * 16) },
      { shape: scalesShape as Shape, data: interleaveRows(a.scales, b.scales, e, f, nb) },
    ];
  },
};

/** Every named transform; the tensor-map table refers to them by these names. */
export const TRANSFORMS = {
  rename,
  permuteQ: onBits(permuteTransform('heads', 'permuteQ')),
  permuteK: onBits(permuteTransform('headsKv', 'permuteK')),
  squeeze,
  stackExperts,
  splitGateUp,
  gptOssGateUp: onBits(gptOssGateUp),
  gptOssGateUpBias: onBits(gptOssGateUpBias),
  transposeExperts: onBits(transposeExperts),
  splitKvB: onBits(splitKvB),
  mxfp4Experts,
  mxfp4GateUp,
} as const satisfies Record<string, Transform>;

export type TransformName = keyof typeof TRANSFORMS;
