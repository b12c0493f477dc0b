// The Hugging Face -> GGUF tensor table and its named transforms.
// Each transform: a hand-worked example derived from the Python reference (llama.cpp d32676d77
// conversion/*.py, quoted in transforms.ts) and inverse(forward(x)) == x bit for bit, on float32
// values and on raw 16-bit patterns. MXFP4 repacking is checked against ggml's dequantization
// (the reference kernels and the golden MXFP4 blocks of test/fixtures/quants).
// The table is checked against every golden model's tensor list (shipped GGUF headers).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GGMLType } from '../../src/core/dtypes.js';
import { GGUFFile } from '../../src/formats/gguf/index.js';
import { refTypeKernels } from '../../src/kernels/ref/types.js';
import {
  formatTensorName,
  isBlockRule,
  matchTensorName,
  SUPPORTED_HF_ARCHITECTURES,
  TENSOR_MAPS,
  tensorMapForGGUF,
  tensorMapForHuggingFace,
} from '../../src/weights/hf/tensor-map.js';
import { type Elements, type TensorValue, TRANSFORMS, type TransformParams } from '../../src/weights/hf/transforms.js';
import { GOLDEN_MODELS, goldenPath, REPO_ROOT, skipGolden } from '../helpers/golden.js';

const f32 = (...v: number[]) => Float32Array.from(v);
const iota = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => i * scale);
const t = (shape: number[], data: Elements): TensorValue => ({ shape, data });

function roundTrip(name: keyof typeof TRANSFORMS, inputs: TensorValue[], p: TransformParams = {}) {
  const tr = TRANSFORMS[name];
  const out = tr.forward(inputs, p);
  expect(out.map((o) => [...o.shape])).toEqual(tr.ggufShapes(inputs.map((i) => i.shape), p).map((s) => [...s]));
  const back = tr.inverse(out, p);
  expect(back.map((b) => [...b.shape])).toEqual(inputs.map((i) => [...i.shape]));
  expect(tr.hfShapes(out.map((o) => o.shape), p).map((s) => [...s])).toEqual(inputs.map((i) => [...i.shape]));
  back.forEach((b, i) => {
    const want = inputs[i]!.data;
    expect(b.data.constructor).toBe(want.constructor);
    expect(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)).toEqual(
      Buffer.from(want.buffer, want.byteOffset, want.byteLength),
    );
  });
  return out;
}

/** Deterministic pseudo-random values, including raw 16-bit patterns (NaN patterns too). */
function rand(n: number, seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  return {
    f32: Float32Array.from({ length: n }, () => next() / 2 ** 31 - 1),
    /** float32 from random bit patterns: NaNs (signalling ones too), infinities, subnormals */
    bits: new Float32Array(Uint32Array.from({ length: n }, () => next()).buffer),
    u16: Uint16Array.from({ length: n }, () => next() >>> 16),
    u8: Uint8Array.from({ length: n }, () => next() >>> 24),
  };
}

describe('transforms: hand-worked examples and exact inverses', () => {
  it('permuteQ / permuteK: rotary halves -> interleaved pairs (LlamaModel.permute)', () => {
    // 2 heads of 4 rows, 1 column: reshape(2, 2, 2, 1).swapaxes(1, 2) -> rows 0,2,1,3 | 4,6,5,7
    const q = roundTrip('permuteQ', [t([8, 1], iota(8))], { heads: 2 });
    expect([...q[0]!.data]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    // k uses the kv head count: 1 head of 8 rows -> 0,4,1,5,2,6,3,7; 2 columns move together
    const k = roundTrip('permuteK', [t([8, 2], iota(16))], { heads: 4, headsKv: 1 });
    expect([...k[0]!.data]).toEqual([0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15]);
    // a bias [R] permutes like a one-column weight
    expect([...roundTrip('permuteQ', [t([8], iota(8))], { heads: 2 })[0]!.data]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    // permuteK without num_key_value_heads uses the query head count, as the reference does
    expect([...TRANSFORMS.permuteK.forward([t([8], iota(8))], { heads: 2 })[0]!.data]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    const r = rand(64 * 32, 1);
    roundTrip('permuteQ', [t([64, 32], r.bits)], { heads: 4 });
    roundTrip('permuteK', [t([64, 32], r.u16)], { heads: 8, headsKv: 2 });
    expect(() => TRANSFORMS.permuteQ.ggufShapes([[6, 4]], { heads: 2 })).toThrow(/2 heads of an even size/);
    expect(() => TRANSFORMS.permuteQ.ggufShapes([[8, 4]], {})).toThrow(/needs heads/);
  });

  it('rename: the same data', () => {
    const x = t([2, 3], iota(6));
    expect(roundTrip('rename', [x])[0]).toBe(x);
  });

  it('squeeze: [1, D] <-> [D]', () => {
    const out = roundTrip('squeeze', [t([1, 4], f32(1, 2, 3, 4))]);
    expect(out[0]!.shape).toEqual([4]);
    expect(() => TRANSFORMS.squeeze.ggufShapes([[2, 4]], {})).toThrow(/\[1, D\]/);
  });

  it('stackExperts: E x [R, C] -> [E, R, C] in expert order (torch.stack(dim=0))', () => {
    const out = roundTrip('stackExperts', [t([2, 2], f32(1, 2, 3, 4)), t([2, 2], f32(5, 6, 7, 8)), t([2, 2], f32(9, 10, 11, 12))]);
    expect(out[0]!.shape).toEqual([3, 2, 2]);
    expect([...out[0]!.data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(() => TRANSFORMS.stackExperts.ggufShapes([[2, 2], [2, 3]], {})).toThrow(/expert 1 has shape \[2, 3\]/);
    const r = rand(16 * 8 * 4, 2);
    roundTrip('stackExperts', [0, 1, 2, 3].map((x) => t([16, 8], r.u16.slice(x * 128, (x + 1) * 128))));
  });

  it('splitGateUp: [E, 2F, D] -> first F rows (gate), last F rows (up) per expert (split(ffn_dim, dim=-2))', () => {
    // 2 experts, 2F = 4 rows of D = 2: expert 0 rows r0..r3 = [0,1],[2,3],[4,5],[6,7]
    const [gate, up] = roundTrip('splitGateUp', [t([2, 4, 2], iota(16))]);
    expect(gate!.shape).toEqual([2, 2, 2]);
    expect([...gate!.data]).toEqual([0, 1, 2, 3, 8, 9, 10, 11]);
    expect([...up!.data]).toEqual([4, 5, 6, 7, 12, 13, 14, 15]);
    // a dense [2F, D] works too
    const [g2, u2] = roundTrip('splitGateUp', [t([4, 1], iota(4))]);
    expect([...g2!.data, ...u2!.data]).toEqual([0, 1, 2, 3]);
    expect(() => TRANSFORMS.splitGateUp.ggufShapes([[2, 3, 2]], {})).toThrow(/2F/);
  });

  it('gptOssGateUp: [E, D, 2F] interleaved columns -> gate/up [E, F, D] (transpose, then ::2 / 1::2)', () => {
    // one expert, D = 2, 2F = 4: W[d][c] = 10 d + c; transposed row c = [c, 10 + c]
    const [gate, up] = roundTrip('gptOssGateUp', [t([1, 2, 4], f32(0, 1, 2, 3, 10, 11, 12, 13))]);
    expect(gate!.shape).toEqual([1, 2, 2]);
    expect([...gate!.data]).toEqual([0, 10, 2, 12]);
    expect([...up!.data]).toEqual([1, 11, 3, 13]);
    const r = rand(3 * 8 * 12, 3);
    roundTrip('gptOssGateUp', [t([3, 8, 12], r.bits)]);
    roundTrip('gptOssGateUp', [t([3, 8, 12], r.u16)]);
  });

  it('gptOssGateUpBias: [E, 2F] -> even / odd columns', () => {
    const [gate, up] = roundTrip('gptOssGateUpBias', [t([2, 4], iota(8))]);
    expect([...gate!.data]).toEqual([0, 2, 4, 6]);
    expect([...up!.data]).toEqual([1, 3, 5, 7]);
    roundTrip('gptOssGateUpBias', [t([16, 64], rand(16 * 64, 9).bits)]);
  });

  it('transposeExperts: gpt-oss down_proj [E, in, out] -> [E, out, in]', () => {
    const [d] = roundTrip('transposeExperts', [t([1, 2, 3], f32(1, 2, 3, 4, 5, 6))]);
    expect(d!.shape).toEqual([1, 3, 2]);
    expect([...d!.data]).toEqual([1, 4, 2, 5, 3, 6]);
    roundTrip('transposeExperts', [t([4, 16, 24], rand(4 * 16 * 24, 10).bits)]);
  });

  it('splitKvB: DeepSeek kv_b_proj -> attn_k_b (transposed per head) and attn_v_b', () => {
    // H = 2, nope = 2, v = 1, kv_lora = 3; row h*3 + r, column c holds 100 h + 10 r + c:
    // per head rows [k0, k1, v0]; k_b[h][c][r] = 100 h + 10 r + c; v_b[h][0][c] = 100 h + 20 + c
    const p = { heads: 2, qkNopeHeadDim: 2, vHeadDim: 1 };
    const w = Float32Array.from({ length: 18 }, (_, i) => 100 * Math.floor(i / 9) + 10 * (Math.floor(i / 3) % 3) + (i % 3));
    const [kb, vb] = roundTrip('splitKvB', [t([6, 3], w)], p);
    expect(kb!.shape).toEqual([2, 3, 2]);
    expect([...kb!.data]).toEqual([0, 10, 1, 11, 2, 12, 100, 110, 101, 111, 102, 112]);
    expect(vb!.shape).toEqual([2, 1, 3]);
    expect([...vb!.data]).toEqual([20, 21, 22, 120, 121, 122]);
    // the golden shapes: deepseek2_lite kv_lora 64, nope 32, v 32, 8 heads -> ne [32, 64, 8] / [64, 32, 8]
    expect(TRANSFORMS.splitKvB.ggufShapes([[8 * 64, 64]], { heads: 8, qkNopeHeadDim: 32, vHeadDim: 32 })).toEqual([
      [8, 64, 32],
      [8, 32, 64],
    ]);
    expect(() => TRANSFORMS.splitKvB.ggufShapes([[7, 3]], p)).toThrow(/2 heads \* \(2 \+ 1\)/);
    const r = rand(4 * 96 * 16, 4);
    roundTrip('splitKvB', [t([4 * 96, 16], r.u16)], { heads: 4, qkNopeHeadDim: 32, vHeadDim: 64 });
    roundTrip('splitKvB', [t([4 * 96, 16], r.bits)], { heads: 4, qkNopeHeadDim: 32, vHeadDim: 64 });
  });
});

// ---- MXFP4 ------------------------------------------------------------------------------------

/** transformers' MXFP4 dequantization (integrations/mxfp4.py convert_moe_packed_tensors): lo nibble first, FP4 table * 2^(e-127). */
const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];
function hfDequant(blocks: Uint8Array, scales: Uint8Array): Float32Array {
  const out = new Float32Array(scales.length * 32);
  for (let b = 0; b < scales.length; b++) {
    const scale = 2 ** ((scales[b] as number) - 127);
    for (let j = 0; j < 16; j++) {
      const byte = blocks[b * 16 + j] as number;
      out[b * 32 + 2 * j] = (FP4[byte & 15] as number) * scale;
      out[b * 32 + 2 * j + 1] = (FP4[byte >> 4] as number) * scale;
    }
  }
  return out;
}

/** ggml decodes code 8 as +0 (kvalues_mxfp4 is int8), transformers as -0: compare zeros unsigned. */
const unsignedZeros = (a: Float32Array) => Float32Array.from(a, (v) => (v === 0 ? 0 : v));

function ggmlDequant(bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  refTypeKernels(GGMLType.MXFP4).dequantize(bytes, 0, out, 0, n);
  return out;
}

describe('transforms: gpt-oss MXFP4 repacking', () => {
  it('a hand-made block: codes 0..15 then 15..0 at exponent 128', () => {
    // elements 2j, 2j+1 in byte j: element k has code k for k < 16, 31 - k after
    const codes = Array.from({ length: 32 }, (_, k) => (k < 16 ? k : 31 - k));
    const blocks = Uint8Array.from({ length: 16 }, (_, j) => codes[2 * j]! | (codes[2 * j + 1]! << 4));
    const [g] = roundTrip('mxfp4Experts', [t([1, 1, 1, 16], blocks), t([1, 1, 1], Uint8Array.of(128))]);
    expect(g!.shape).toEqual([1, 1, 32]);
    // ggml block: e, then qs[j] = code j | code (j+16) << 4
    expect([...g!.data]).toEqual([128, ...Array.from({ length: 16 }, (_, j) => codes[j]! | (codes[j + 16]! << 4))]);
    expect(ggmlDequant(g!.data as Uint8Array, 32)).toEqual(unsignedZeros(hfDequant(blocks, Uint8Array.of(128))));
  });

  it('random experts: ggml dequantization of the repacked blocks equals transformers dequantization', () => {
    const e = 2;
    const rows = 6;
    const nb = 3; // C = 96
    const r = rand(e * rows * nb * 16, 5);
    const scales = Uint8Array.from({ length: e * rows * nb }, (_, i) => 118 + (i % 17));
    const [g] = roundTrip('mxfp4Experts', [t([e, rows, nb, 16], r.u8), t([e, rows, nb], scales)]);
    expect(g!.shape).toEqual([e, rows, nb * 32]);
    expect(ggmlDequant(g!.data as Uint8Array, e * rows * nb * 32)).toEqual(unsignedZeros(hfDequant(r.u8, scales)));

    // gate_up: even rows are gate, odd rows up
    const [gate, up] = roundTrip('mxfp4GateUp', [t([e, rows, nb, 16], r.u8), t([e, rows, nb], scales)]);
    const full = unsignedZeros(hfDequant(r.u8, scales));
    const rowsOf = (parity: number) => {
      const out: number[] = [];
      for (let x = 0; x < e; x++) {
        for (let row = parity; row < rows; row += 2) out.push(...full.subarray((x * rows + row) * 96, (x * rows + row + 1) * 96));
      }
      return out;
    };
    expect([...ggmlDequant(gate!.data as Uint8Array, (e * rows * 96) / 2)]).toEqual(rowsOf(0));
    expect([...ggmlDequant(up!.data as Uint8Array, (e * rows * 96) / 2)]).toEqual(rowsOf(1));
  });

  it('the golden MXFP4 blocks (llama.cpp) turned into checkpoint blocks dequantize, as transformers does, to the golden values', () => {
    const dir = path.join(REPO_ROOT, 'test/fixtures/quants');
    const ggml = new Uint8Array(readFileSync(path.join(dir, 'MXFP4.blocks.bin')));
    const want = new Float32Array(new Uint8Array(readFileSync(path.join(dir, 'MXFP4.dequant.f32'))).buffer);
    const rows = 16;
    const [blocks, scales] = TRANSFORMS.mxfp4Experts.inverse([t([1, rows, 256], ggml)], {});
    expect(blocks!.shape).toEqual([1, rows, 8, 16]);
    const got = unsignedZeros(hfDequant(blocks!.data as Uint8Array, scales!.data as Uint8Array));
    expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
  });
});

// ---- the table ----------------------------------------------------------------------------------

describe('tensor table', () => {
  it('every rule names known transforms, GGUF names with {bid} iff HF names have it, {xid} only for stacks', () => {
    for (const map of TENSOR_MAPS) {
      for (const rule of map.rules) {
        const where = `${map.architecture}: ${rule.hf.join(' + ')}`;
        expect(TRANSFORMS[rule.transform ?? 'rename'], where).toBeDefined();
        const block = isBlockRule(rule);
        for (const h of rule.hf) expect(h.includes('{bid}'), where).toBe(block);
        for (const g of rule.gguf) expect(g.includes('{xid}'), where).toBe(false);
        const xid = rule.hf.some((h) => h.includes('{xid}'));
        expect(xid, where).toBe(rule.transform === 'stackExperts');
      }
      // a checkpoint name belongs to one rule only
      const hf = map.rules.flatMap((r) => r.hf);
      expect(new Set(hf).size, map.architecture).toBe(hf.length);
    }
  });

  it('looks architectures up both ways', () => {
    expect(tensorMapForHuggingFace('MixtralForCausalLM')?.architecture).toBe('llama');
    expect(tensorMapForHuggingFace('DeepseekV3ForCausalLM')?.architecture).toBe('deepseek2');
    expect(tensorMapForHuggingFace('GptOssForCausalLM')?.architecture).toBe('gpt-oss');
    expect(tensorMapForHuggingFace('BertModel')).toBeUndefined();
    expect(tensorMapForGGUF('phimoe')?.hfArchitectures).toEqual(['PhiMoEForCausalLM']);
    expect(SUPPORTED_HF_ARCHITECTURES).toContain('GraniteMoeForCausalLM');
  });

  it('formats and matches name patterns', () => {
    const p = 'model.layers.{bid}.block_sparse_moe.experts.{xid}.w1.weight';
    expect(formatTensorName(p, 3, 7)).toBe('model.layers.3.block_sparse_moe.experts.7.w1.weight');
    expect(matchTensorName(p, 'model.layers.12.block_sparse_moe.experts.0.w1.weight')).toEqual({ bid: 12, xid: 0 });
    expect(matchTensorName(p, 'model.layers.12.block_sparse_moe.experts.0.w1.weightx')).toBeUndefined();
    expect(matchTensorName(p, 'model.layers.01.block_sparse_moe.experts.0.w1.weight')).toBeUndefined();
    expect(matchTensorName('model.norm.weight', 'model.norm.weight')).toEqual({});
    expect(matchTensorName('model.norm.weight', 'modelXnorm.weight')).toBeUndefined(); // dots are literal
    expect(() => formatTensorName(p, 1)).toThrow(/expert index/);
  });

  describe.skipIf(skipGolden('tensor table vs golden tensor lists'))('against the golden models', () => {
    it.each(GOLDEN_MODELS)('%s: every GGUF tensor comes from a rule (or from config.json)', async (model) => {
      const file = await GGUFFile.open(goldenPath(model, `${model}-Q4_K_M.gguf`));
      try {
        const map = tensorMapForGGUF(file.metadata.architecture)!;
        expect(map).toBeDefined();
        const layers = file.metadata.archInt('block_count');
        const producible = new Set<string>();
        for (const rule of map.rules) {
          for (const g of rule.gguf) {
            for (const bid of isBlockRule(rule) ? Array.from({ length: layers }, (_, i) => i) : [undefined]) {
              producible.add(formatTensorName(g, bid));
            }
          }
        }
        for (const name of file.tensors.keys()) {
          if (name.startsWith('rope_factors_')) continue; // phimoe LongRoPE: from config.json
          expect(producible.has(name), `${model}: ${name}`).toBe(true);
        }
      } finally {
        await file.close();
      }
    });
  });
});

// ---- against the reference expressions ----------------------------------------------------------

describe('transforms: the reference expressions (numpy twins of conversion/*.py, committed fixture)', () => {
  // test/fixtures/hf-convert/make-transform-fixtures.py wrote these from the quoted llama.cpp lines
  const fixture = JSON.parse(readFileSync(path.join(REPO_ROOT, 'test/fixtures/hf-convert/transforms.json'), 'utf8')) as {
    cases: {
      transform: keyof typeof TRANSFORMS;
      params: TransformParams;
      inputs: { shape: number[]; dtype: string; data: number[] }[];
      outputs: { shape: number[]; dtype: string; data: number[] }[];
    }[];
  };
  const array = (a: { dtype: string; data: number[] }) => (a.dtype === 'uint8' ? Uint8Array.from(a.data) : Float32Array.from(a.data));

  it.each(fixture.cases.map((c, i) => [`${i}: ${c.transform}`, c] as const))('%s', (_, c) => {
    const tr = TRANSFORMS[c.transform];
    const out = roundTrip(
      c.transform,
      c.inputs.map((a) => t(a.shape, array(a))),
      c.params,
    );
    expect(out.length).toBe(c.outputs.length);
    out.forEach((o, i) => {
      const want = c.outputs[i]!;
      // MXFP4: the reference gives bytes [E, R, blocks * 17]; our shape counts elements [E, R, C]
      const shape = tr.rawGGUFType === GGMLType.MXFP4 ? [...want.shape.slice(0, -1), (want.shape.at(-1)! / 17) * 32] : want.shape;
      expect([...o.shape]).toEqual(shape);
      expect([...o.data]).toEqual(want.data);
    });
  });
});
