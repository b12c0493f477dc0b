// Hugging Face checkpoint <-> GGUF: float type conversion bit for bit as ggml, llama.cpp's
// type policy, the golden round trip (every golden F32 master exported as a Hugging Face
// checkpoint and converted back must give the same file, byte for byte), conversions compared
// with files llama-quantize made (F16, BF16, MXFP4_MOE), and typed errors for bad checkpoints.
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCommand } from '../../src/cli/convert.js';
import { GGMLType } from '../../src/core/dtypes.js';
import { bf16ToF32, f16ToF32, f32ToBF16, f32ToF16 } from '../../src/core/fp16.js';
import { GGUFFile, type GGUFKV } from '../../src/formats/gguf/index.js';
import { type SafetensorsTensorInput, writeSafetensors, writeShardedSafetensors } from '../../src/formats/safetensors/index.js';
import { refTypeKernels } from '../../src/kernels/ref/types.js';
import { convertFloatTensor, quantizeQ8_0, toFloat32 } from '../../src/weights/convert-types.js';
import { ConvertError, convertHuggingFaceToGGUF, outputTypeFor } from '../../src/weights/hf/convert.js';
import { exportGGUFToHuggingFace } from '../../src/weights/hf/export.js';
import { GOLDEN_MODELS, type GoldenModel, goldenF32, goldenF32Problem, goldenPath, HAVE_GOLDEN, REPO_ROOT, skipGolden } from '../helpers/golden.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sy-hf-convert-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const readF32 = (file: string) => new Float32Array(new Uint8Array(readFileSync(file)).buffer);

// ---- float types --------------------------------------------------------------------------

describe('convert-types: F16, BF16 and Q8_0 bit for bit as ggml', () => {
  // The golden quant rows (llama.cpp d32676d77): source values and the blocks llama.cpp made.
  const fixtures = path.join(REPO_ROOT, 'test/fixtures');
  const full = HAVE_GOLDEN && (() => {
    try {
      readFileSync(goldenPath('quants', 'Q8_0.source.f32'));
      return true;
    } catch {
      return false;
    }
  })();
  const source = full ? readF32(goldenPath('quants', 'Q8_0.source.f32')) : readF32(path.join(fixtures, 'hf-convert/quant-source.16rows.f32'));
  const blocks = (type: string) =>
    new Uint8Array(readFileSync(full ? goldenPath('quants', `${type}.blocks.bin`) : path.join(fixtures, `quants/${type}.blocks.bin`)));

  it(`reproduces llama.cpp's F16, BF16 and Q8_0 blocks from the source rows (${full ? 64 : 16} rows)`, () => {
    for (const [type, id] of [['F16', GGMLType.F16], ['BF16', GGMLType.BF16], ['Q8_0', GGMLType.Q8_0]] as const) {
      expect(bytesOf(convertFloatTensor(source, 'F32', id)).equals(blocks(type)), type).toBe(true);
    }
    if (full) {
      const first16 = readF32(path.join(fixtures, 'hf-convert/quant-source.16rows.f32'));
      expect(bytesOf(source.subarray(0, first16.length)).equals(bytesOf(first16))).toBe(true);
    }
  });

  it('F16 and BF16 rounding equals core/fp16.ts on edge cases and random bit patterns', () => {
    const edge = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e9, -1e9, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-10, Infinity, -Infinity, NaN];
    const ties = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24 * 1.5, 2 ** -24 * 2.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8];
    const values = new Float32Array([...edge, ...ties, ...ties.map((v) => -v)]);
    const bits = new Uint32Array(4096);
    let s = 7;
    for (let i = 0; i < bits.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      bits[i] = s;
    }
    const all = new Float32Array([...values, ...new Float32Array(bits.buffer)]);
    const f16 = new Uint16Array(convertFloatTensor(all, 'F32', GGMLType.F16).slice().buffer);
    const bf16 = new Uint16Array(convertFloatTensor(all, 'F32', GGMLType.BF16).slice().buffer);
    const wrong: string[] = [];
    for (let i = 0; i < all.length; i++) {
      if (f16[i] !== f32ToF16(all[i] as number)) wrong.push(`f16 of ${all[i]}`);
      if (bf16[i] !== f32ToBF16(all[i] as number)) wrong.push(`bf16 of ${all[i]}`);
    }
    expect(wrong).toEqual([]);
    // ggml_compute_fp32_to_bf16: a NaN becomes a quiet NaN with its sign and top payload bits
    const nan = new Float32Array(new Uint32Array([0x7f800001, 0xff812345]).buffer);
    expect([...new Uint16Array(convertFloatTensor(nan, 'F32', GGMLType.BF16).slice().buffer)]).toEqual([0x7fc0, 0xffc1]);
  });

  it('widens all 65536 F16 and BF16 patterns exactly (NaN payloads kept) and converts between them', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = toFloat32(all, 'F16');
    const fb = new Uint32Array(f.buffer);
    const b = new Uint32Array(toFloat32(all, 'BF16').buffer);
    const back = new Uint16Array(convertFloatTensor(f, 'F32', GGMLType.F16).slice().buffer);
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const want = f16ToF32(h);
      if (Number.isNaN(want)) {
        // F16C keeps the payload: sign, all-ones exponent, the 10 mantissa bits shifted up by 13
        if (fb[h]! >>> 13 !== (((h & 0x8000) << 3) | 0x3fc00 | (h & 0x3ff))) wrong.push(`f16 NaN ${h}`);
      } else {
        if (!Object.is(f[h], want)) wrong.push(`f16 ${h}`);
        if (back[h] !== h) wrong.push(`f16 ${h} -> f32 -> f16`); // F16 -> F32 -> F16 is the identity
      }
      if (b[h] !== (h << 16) >>> 0) wrong.push(`bf16 ${h}`);
    }
    // BF16 <-> F16 (a lookup table) as core/fp16.ts rounds the widened value
    const bf16ToF16 = new Uint16Array(convertFloatTensor(all, 'BF16', GGMLType.F16).slice().buffer);
    const f16ToBF16 = new Uint16Array(convertFloatTensor(all, 'F16', GGMLType.BF16).slice().buffer);
    for (let h = 0; h < 65536; h++) {
      if (bf16ToF16[h] !== f32ToF16(bf16ToF32(h))) wrong.push(`bf16 ${h} -> f16`);
      if (!Number.isNaN(f16ToF32(h)) && f16ToBF16[h] !== f32ToBF16(f16ToF32(h))) wrong.push(`f16 ${h} -> bf16`);
    }
    expect(wrong).toEqual([]);
    // same-type conversions copy the bits
    expect(bytesOf(convertFloatTensor(all, 'F16', GGMLType.F16))).toEqual(bytesOf(all));
  });

  it('Q8_0 rounds halves away from zero (roundf), in float32', () => {
    // amax 127 -> d = 1: codes are roundf(x): 63.5 -> 64, -63.5 -> -64, 0.5 -> 1, -0.5 -> -1, -2.5 -> -3
    const x = new Float32Array(32);
    x.set([127, 63.5, -63.5, 0.5, -0.5, -2.5, 2.4999998]);
    const q = quantizeQ8_0(x);
    expect([...q.subarray(0, 2)]).toEqual([0x00, 0x3c]); // f16 1.0
    expect([...new Int8Array(q.buffer, 2, 7)]).toEqual([127, 64, -64, 1, -1, -3, 2]);
    // an all-zero block: d = 0, codes 0
    expect([...quantizeQ8_0(new Float32Array(32))]).toEqual(new Array(34).fill(0));
    expect(() => quantizeQ8_0(new Float32Array(31))).toThrow(/multiple of 32/);
    // dequantize(quantize(x)) through the reference kernels: within d/2 plus d's f16 rounding (127 d 2^-11)
    const y = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37) * 3);
    const back = new Float32Array(256);
    refTypeKernels(GGMLType.Q8_0).dequantize(quantizeQ8_0(y), 0, back, 0, 256);
    const worst = Math.max(...Array.from(y, (v, i) => Math.abs((back[i] as number) - v)));
    expect(worst).toBeLessThanOrEqual((3 / 127) * (0.5 + 127 / 2048));
  });
});

describe("output types: llama.cpp's policy", () => {
  it('keeps vectors, norms, biases and routers in F32; Q8_0 rows not a multiple of 32 fall back to F16', () => {
    const F16 = GGMLType.F16;
    expect(outputTypeFor('blk.0.attn_q.weight', [256, 64], F16)).toBe(F16);
    expect(outputTypeFor('token_embd.weight', [32000, 64], F16)).toBe(F16);
    expect(outputTypeFor('blk.0.ffn_gate_exps.weight', [8, 256, 64], F16)).toBe(F16);
    expect(outputTypeFor('blk.0.attn_norm.weight', [64], F16)).toBe(GGMLType.F32);
    expect(outputTypeFor('blk.0.attn_q_a_norm.weight', [96], F16)).toBe(GGMLType.F32);
    expect(outputTypeFor('blk.0.ffn_gate_inp.weight', [16, 64], F16)).toBe(GGMLType.F32);
    expect(outputTypeFor('blk.0.ffn_gate_inp_shexp.weight', [64], F16)).toBe(GGMLType.F32);
    expect(outputTypeFor('blk.0.ffn_gate_exps.bias', [16, 256], F16)).toBe(GGMLType.F32);
    expect(outputTypeFor('blk.0.attn_sinks.weight', [4], F16)).toBe(GGMLType.F32);
    expect(outputTypeFor('blk.0.attn_q.weight', [256, 64], GGMLType.Q8_0)).toBe(GGMLType.Q8_0);
    expect(outputTypeFor('blk.0.attn_q.weight', [256, 48], GGMLType.Q8_0)).toBe(F16);
    expect(outputTypeFor('blk.0.attn_q.weight', [256, 48], GGMLType.F32)).toBe(GGMLType.F32);
  });

  it.skipIf(!HAVE_GOLDEN)('matches the F32 tensors of every golden llama-quantize variant', async () => {
    for (const model of GOLDEN_MODELS) {
      const json = JSON.parse(readFileSync(goldenPath(model, `${model}-Q4_K_M.json`), 'utf8')) as { tensor_types: Record<string, string> };
      const file = await GGUFFile.open(goldenPath(model, `${model}-Q4_K_M.gguf`));
      for (const [name, type] of Object.entries(json.tensor_types)) {
        const kept = outputTypeFor(name, file.tensor(name).shape, GGMLType.F16) === GGMLType.F32;
        expect(kept, `${model} ${name}`).toBe(type === 'F32');
      }
      await file.close();
    }
  });
});

// ---- golden round trip ----------------------------------------------------------------------

/** A comparable rendering of a metadata entry. */
function entryText(e: GGUFKV): string {
  return JSON.stringify(e, (_, v) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (ArrayBuffer.isView(v)) return { [v.constructor.name]: Array.from(v as unknown as ArrayLike<number | bigint>, (x) => String(x)) };
    return v;
  });
}

/** Every difference between two GGUF files, in words (empty when they are the same). */
async function differences(a: string, b: string): Promise<string[]> {
  const fa = await GGUFFile.open(a);
  const fb = await GGUFFile.open(b);
  try {
    const out: string[] = [];
    const ea = new Map(fa.metadata.entries.map((e) => [e.key, entryText(e)]));
    const eb = new Map(fb.metadata.entries.map((e) => [e.key, entryText(e)]));
    for (const [k, v] of ea) if (eb.get(k) !== v) out.push(`metadata ${k}: ${eb.has(k) ? 'differs' : 'missing'}`);
    for (const k of eb.keys()) if (!ea.has(k)) out.push(`metadata ${k}: extra`);
    if (out.length === 0 && fa.metadata.keys().join() !== fb.metadata.keys().join()) out.push('metadata order differs');
    const ta = [...fa.tensors.values()];
    const tb = [...fb.tensors.values()];
    if (ta.map((t) => t.name).join() !== tb.map((t) => t.name).join()) out.push('tensor names or order differ');
    for (const t of ta) {
      const u = fb.tensors.get(t.name);
      if (!u) continue;
      if (u.type !== t.type || u.shape.join() !== t.shape.join()) out.push(`${t.name}: type/shape ${u.type} [${u.shape}] vs ${t.type} [${t.shape}]`);
      else if (!bytesOf(await fa.read(t.name)).equals(bytesOf(await fb.read(t.name)))) out.push(`${t.name}: data differs`);
    }
    return out;
  } finally {
    await fa.close();
    await fb.close();
  }
}

async function dropTokenizer(folder: string): Promise<void> {
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'tokenizer.model']) await fs.rm(path.join(folder, f), { force: true });
}

const goldenSkip = skipGolden('Hugging Face round trip of the golden models');

describe.skipIf(goldenSkip)('golden round trip: GGUF -> Hugging Face checkpoint -> GGUF', () => {
  const identical: string[] = [];
  afterAll(() => console.log(`golden HF round trip: ${identical.length} of ${GOLDEN_MODELS.length} models byte-identical after export + convert (${identical.join(', ')})`));
  /** The F32 master (regenerated with gen_models.py when missing), or a skip saying why not. */
  const master = (model: GoldenModel, skip: (note?: string) => void): string | undefined => {
    const f = goldenF32(model);
    if (!f) skip(`no F32 master for ${model}: ${goldenF32Problem()}`);
    return f;
  };

  it.for(GOLDEN_MODELS)('%s: export, convert back with type f32: the same file, byte for byte', async (model, { skip }) => {
    const src = master(model, skip);
    if (!src) return;
    const folder = path.join(tmp, `rt-${model}`);
    // mixtral goes through a sharded checkpoint (model-0000i-of-0000n + index)
    const exported = await exportGGUFToHuggingFace(src, folder, model === 'mixtral' ? { maxShardBytes: 3_000_000 } : {});
    if (model === 'mixtral') {
      expect(exported.files.filter((f) => f.endsWith('.safetensors')).length).toBeGreaterThan(2);
      expect(exported.files.some((f) => f.endsWith('model.safetensors.index.json'))).toBe(true);
    }
    const out = path.join(tmp, `rt-${model}.gguf`);
    const result = await convertHuggingFaceToGGUF(folder, out, { type: 'f32' });
    expect(result.warnings).toEqual([]);
    // the whole file first; the list of differences says what went wrong when it is not equal
    if (!readFileSync(out).equals(readFileSync(src))) {
      expect(await differences(out, src)).toEqual([]);
      expect.fail('the files differ (outside metadata and tensor data: in the layout)');
    }
    identical.push(model);
    await fs.rm(out);
  });

  it.for(['F16', 'BF16'] as const)('llama_dense with type %s: every tensor as llama-quantize made it', async (variant, { skip }) => {
    const src = master('llama_dense', skip);
    if (!src) return;
    // the round trip above exported this folder already
    const folder = path.join(tmp, 'rt-llama_dense');
    if (!(await fs.stat(path.join(folder, 'config.json')).catch(() => undefined))) await exportGGUFToHuggingFace(src, folder);
    const out = path.join(tmp, `llama_dense-${variant}.gguf`);
    await convertHuggingFaceToGGUF(folder, out, { type: variant.toLowerCase() as 'f16' | 'bf16' });
    const golden = goldenPath('llama_dense', `llama_dense-${variant}.gguf`);
    // llama-quantize writes general.file_type and quantization_version last; the tensors must agree
    const diff = (await differences(out, golden)).filter((d) => !d.startsWith('metadata') && d !== 'tensor names or order differ');
    expect(diff).toEqual([]);
    const a = await GGUFFile.open(out);
    expect(a.metadata.int('general.file_type')).toBe(variant === 'F16' ? 1 : 32);
    expect([...a.tensors.values()].filter((t) => t.type !== GGMLType.F32).length).toBe(15);
    await a.close();
  });

  it('gpt_oss MXFP4_MOE (llama-quantize): export keeps MXFP4 experts as checkpoint blocks; converting with q8_0 gives every tensor back', async () => {
    const golden = goldenPath('gpt_oss', 'gpt_oss-MXFP4_MOE.gguf');
    const folder = path.join(tmp, 'gpt_oss-mxfp4');
    const exported = await exportGGUFToHuggingFace(golden, folder);
    expect(exported.config.quantization_config).toMatchObject({ quant_method: 'mxfp4' });
    await dropTokenizer(folder); // tensors only: the vocabulary's round trip is tested above
    const out = path.join(tmp, 'gpt_oss-mxfp4.gguf');
    const result = await convertHuggingFaceToGGUF(folder, out, { type: 'q8_0' });
    expect(result.typeCounts).toEqual({ F32: 25, MXFP4: 6, Q8_0: 10 });
    const diff = (await differences(out, golden)).filter((d) => !d.startsWith('metadata') && d !== 'tensor names or order differ');
    expect(diff).toEqual([]);
  });

  it('mixtral Q4_K_M: export dequantizes K-quants exactly (as the f32math references)', async () => {
    const golden = goldenPath('mixtral', 'mixtral-Q4_K_M.gguf');
    const folder = path.join(tmp, 'mixtral-q4km');
    await exportGGUFToHuggingFace(golden, folder);
    await dropTokenizer(folder);
    const out = path.join(tmp, 'mixtral-q4km.gguf');
    await convertHuggingFaceToGGUF(folder, out, { type: 'f32' });
    const a = await GGUFFile.open(out);
    const g = await GGUFFile.open(golden);
    for (const t of g.tensors.values()) {
      const n = t.shape.reduce((x, y) => x * y, 1);
      const want = new Float32Array(n);
      refTypeKernels(t.type).dequantize(await g.read(t.name), 0, want, 0, n);
      expect(bytesOf(await a.read(t.name)).equals(bytesOf(want)), t.name).toBe(true);
    }
    await a.close();
    await g.close();
  });
});

// ---- errors ---------------------------------------------------------------------------------

/** A tiny Llama checkpoint: 2 layers, hidden 8, 2 heads of 4 (1 kv head), FFN 16, vocab 8. */
function tinyLlama(): { config: Record<string, unknown>; tensors: SafetensorsTensorInput[] } {
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 8,
    hidden_size: 8,
    intermediate_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
  };
  let seed = 1;
  const t = (name: string, shape: number[]): SafetensorsTensorInput => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32 - 0.5;
    });
    return { name, dtype: 'F32', shape, data: new Uint8Array(data.buffer) };
  };
  const tensors = [t('model.embed_tokens.weight', [8, 8]), t('model.norm.weight', [8]), t('lm_head.weight', [8, 8])];
  for (let i = 0; i < 2; i++) {
    const L = `model.layers.${i}.`;
    tensors.push(
      t(`${L}input_layernorm.weight`, [8]),
      t(`${L}self_attn.q_proj.weight`, [8, 8]),
      t(`${L}self_attn.k_proj.weight`, [4, 8]),
      t(`${L}self_attn.v_proj.weight`, [4, 8]),
      t(`${L}self_attn.o_proj.weight`, [8, 8]),
      t(`${L}post_attention_layernorm.weight`, [8]),
      t(`${L}mlp.gate_proj.weight`, [16, 8]),
      t(`${L}mlp.up_proj.weight`, [16, 8]),
      t(`${L}mlp.down_proj.weight`, [8, 16]),
      t(`${L}self_attn.rotary_emb.inv_freq`, [2]),
    );
  }
  return { config, tensors };
}

async function writeCheckpoint(name: string, config: unknown, tensors: SafetensorsTensorInput[], shardBytes?: number): Promise<string> {
  const folder = path.join(tmp, name);
  await fs.mkdir(folder, { recursive: true });
  if (config !== undefined) await fs.writeFile(path.join(folder, 'config.json'), JSON.stringify(config));
  if (shardBytes) await writeShardedSafetensors(folder, tensors, { maxShardBytes: shardBytes });
  else await writeSafetensors(path.join(folder, 'model.safetensors'), tensors);
  return folder;
}

async function convertError(folder: string): Promise<ConvertError | Error> {
  try {
    await convertHuggingFaceToGGUF(folder, path.join(tmp, 'never.gguf'), { type: 'f16' });
  } catch (e) {
    return e as Error;
  }
  throw new Error(`converting ${folder} did not fail`);
}

describe('convert: a small checkpoint and typed errors', () => {
  it('converts a tiny Llama with f16: q/k permuted, rotary caches left out, no tokenizer warned about', async () => {
    const { config, tensors } = tinyLlama();
    const folder = await writeCheckpoint('tiny', config, tensors);
    const out = path.join(tmp, 'tiny.gguf');
    const r = await convertHuggingFaceToGGUF(folder, out, {});
    expect(r.architecture).toBe('llama');
    expect(r.tensors).toBe(3 + 2 * 9);
    expect(r.typeCounts).toEqual({ F32: 5, F16: 16 }); // 'auto' on an F32 checkpoint: f16 (as convert_hf_to_gguf.py)
    expect(r.ignored).toEqual(['model.layers.0.self_attn.rotary_emb.inv_freq', 'model.layers.1.self_attn.rotary_emb.inv_freq']);
    expect(r.warnings[0]).toMatch(/no tokenizer\.json/);
    const f = await GGUFFile.open(out);
    expect(f.metadata.string('general.name')).toBe('tiny');
    expect(f.metadata.int('general.file_type')).toBe(1);
    // k_proj [4, 8], one kv head of 4: rows 0, 2, 1, 3
    const k = new Float32Array((tensors.find((t) => t.name === 'model.layers.0.self_attn.k_proj.weight')!.data.slice()).buffer);
    const got = new Uint16Array((await f.read('blk.0.attn_k.weight')).slice().buffer);
    const rows = [0, 2, 1, 3];
    for (let r2 = 0; r2 < 4; r2++) {
      for (let c = 0; c < 8; c++) expect(got[r2 * 8 + c]).toBe(f32ToF16(k[(rows[r2] as number) * 8 + c] as number));
    }
    await f.close();
  });

  it('names a missing config.json, bad JSON, an unknown architecture', async () => {
    const { config, tensors } = tinyLlama();
    const noConfig = await writeCheckpoint('no-config', undefined, tensors);
    let e = await convertError(noConfig);
    expect(e).toBeInstanceOf(ConvertError);
    expect(e.message).toMatch(/no-config[/\\]config\.json: cannot read the model configuration \(it does not exist\)/);
    await fs.writeFile(path.join(noConfig, 'config.json'), '{"architectures": [');
    e = await convertError(noConfig);
    expect(e.message).toMatch(/config\.json: the model configuration is not valid JSON/);
    const unknown = await writeCheckpoint('unknown-arch', { ...config, architectures: ['BertModel'] }, tensors);
    e = await convertError(unknown);
    expect((e as ConvertError).code).toBe('E_CONVERT');
    expect(e.message).toMatch(/architecture 'BertModel' is not supported \(supported: LlamaForCausalLM, .*PhiMoEForCausalLM\)/);
    e = await convertError(path.join(tmp, 'nowhere'));
    expect(e.message).toMatch(/not a folder/);
  });

  it('names a tensor holding NaN or infinity', async () => {
    const { config, tensors } = tinyLlama();
    const bad = tensors.map((t) => {
      if (t.name !== 'model.layers.1.mlp.down_proj.weight') return t;
      const data = new Float32Array(t.data.slice().buffer);
      data[5] = Number.NaN;
      data[9] = Number.POSITIVE_INFINITY;
      return { ...t, data: new Uint8Array(data.buffer) };
    });
    const e = await convertError(await writeCheckpoint('nan', config, bad));
    expect(e).toBeInstanceOf(ConvertError);
    expect(e.message).toMatch(
      /model\.safetensors: tensor 'model\.layers\.1\.mlp\.down_proj\.weight' has 2 NaN or infinite values \(first at element 5\); the checkpoint is damaged/,
    );
  });

  it('names an unmapped tensor', async () => {
    const { config, tensors } = tinyLlama();
    const extra = { ...tensors[0]!, name: 'model.layers.0.self_attn.mystery.weight' };
    const e = await convertError(await writeCheckpoint('unmapped', config, [...tensors, extra]));
    expect(e).toBeInstanceOf(ConvertError);
    expect(e.message).toMatch(/1 tensor with no place in a 'llama' GGUF: model\.layers\.0\.self_attn\.mystery\.weight/);
  });

  it('names a shape that does not fit: q_proj rows for 2 heads, experts of different shapes', async () => {
    const { config, tensors } = tinyLlama();
    const bad = tensors.map((t) =>
      t.name === 'model.layers.1.self_attn.q_proj.weight' ? { ...t, shape: [6, 8], data: t.data.slice(0, 6 * 8 * 4) } : t,
    );
    let e = await convertError(await writeCheckpoint('bad-shape', config, bad));
    expect(e).toBeInstanceOf(ConvertError);
    expect(e.message).toMatch(/model\.layers\.1\.self_attn\.q_proj\.weight: unexpected shape for permuteQ -> blk\.1\.attn_q\.weight: \[6, 8\]/);

    // a Mixtral layer whose expert 1 is wider than expert 0
    const moe = { ...config, architectures: ['MixtralForCausalLM'], num_local_experts: 2, num_experts_per_tok: 1 };
    const experts: SafetensorsTensorInput[] = tensors.filter((t) => !t.name.includes('.mlp.'));
    for (let i = 0; i < 2; i++) {
      experts.push({ ...tensors[0]!, name: `model.layers.${i}.block_sparse_moe.gate.weight`, shape: [2, 8], data: new Uint8Array(64) });
      for (const [w, shape] of [['w1', [16, 8]], ['w3', [16, 8]], ['w2', [8, 16]]] as const) {
        for (let x = 0; x < 2; x++) {
          const s = i === 1 && w === 'w1' && x === 1 ? [17, 8] : [...shape];
          experts.push({ name: `model.layers.${i}.block_sparse_moe.experts.${x}.${w}.weight`, dtype: 'F32', shape: s, data: new Uint8Array(4 * s[0]! * s[1]!) });
        }
      }
    }
    e = await convertError(await writeCheckpoint('bad-expert', moe, experts));
    expect(e.message).toMatch(/expert 1 has shape \[17, 8\], expert 0 has \[16, 8\]/);

    // and a missing expert
    const missing = experts.filter((t) => t.name !== 'model.layers.0.block_sparse_moe.experts.1.w2.weight');
    e = await convertError(await writeCheckpoint('missing-expert', moe, missing));
    expect(e.message).toMatch(/layer 0 lacks 1 of 2 experts: model\.layers\.0\.block_sparse_moe\.experts\.1\.w2\.weight/);
  });

  it('names a missing shard, a layer past num_hidden_layers, an FP8 tensor', async () => {
    const { config, tensors } = tinyLlama();
    const sharded = await writeCheckpoint('missing-shard', config, tensors, 600);
    const shards = (await fs.readdir(sharded)).filter((f) => f.endsWith('.safetensors')).sort();
    expect(shards.length).toBeGreaterThan(2);
    await fs.rm(path.join(sharded, shards[1]!));
    let e = await convertError(sharded);
    expect(e).toBeInstanceOf(ConvertError);
    expect(e.message).toContain(shards[1]!);

    const extraLayer = [...tensors, { ...tensors[3]!, name: 'model.layers.2.input_layernorm.weight' }];
    e = await convertError(await writeCheckpoint('extra-layer', config, extraLayer));
    expect(e.message).toMatch(/'model\.layers\.2\.input_layernorm\.weight' is in layer 2, but config\.json says num_hidden_layers = 2/);

    const fp8 = tensors.map((t) => (t.name === 'model.layers.0.mlp.up_proj.weight' ? { ...t, dtype: 'F8_E4M3' as const, data: t.data.slice(0, 128) } : t));
    e = await convertError(await writeCheckpoint('fp8', config, fp8));
    expect(e.message).toMatch(/'model\.layers\.0\.mlp\.up_proj\.weight' is F8_E4M3; only F32, F16 and BF16 weights can be converted \(FP8 checkpoints: convert them to BF16 first\)/);
  });

  it('names a missing layer, a missing token embedding, a config.json that does not fit the weights', async () => {
    const { config, tensors } = tinyLlama();
    let e = await convertError(await writeCheckpoint('no-layer', config, tensors.filter((t) => !t.name.startsWith('model.layers.1.'))));
    expect(e.message).toMatch(/layer 1 has no tensors, but config\.json says num_hidden_layers = 2/);
    e = await convertError(await writeCheckpoint('no-embed', config, tensors.filter((t) => t.name !== 'model.embed_tokens.weight')));
    expect(e.message).toMatch(/no token embedding/);
    e = await convertError(await writeCheckpoint('wrong-width', { ...config, hidden_size: 16 }, tensors));
    expect(e.message).toMatch(/the token embedding is \[8, 8\] but config\.json says hidden_size = 16/);
  });
});

// ---- the command ------------------------------------------------------------------------------

describe('switchyard convert (command handler)', () => {
  const capture = (tty: boolean) => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s), isTTY: tty, columns: 80 } },
    };
  };

  it('prints a line per tensor group when stderr is not a terminal, and a summary', async () => {
    const { config, tensors } = tinyLlama();
    const folder = await writeCheckpoint('cli', config, tensors);
    const c = capture(false);
    await convertCommand(folder, path.join(tmp, 'cli.gguf'), { type: 'q8_0' }, c.io);
    expect(c.err.join('')).toMatch(/^converted global: 3 tensors, .*\nconverted blk\.0: 9 tensors, .*\nconverted blk\.1: 9 tensors, .*\n$/);
    const summary = c.out.join('');
    expect(summary).toMatch(/wrote .*cli\.gguf: llama, 21 tensors \(5 F32, 16 F16\)/); // rows of 8 and 16 fall back to F16
    expect(summary).toMatch(/left out 2 tensors on purpose: model\.layers\.0\.self_attn\.rotary_emb\.inv_freq/);
    expect(summary).toMatch(/warning: .* has no tokenizer\.json/);
  });

  it('draws a progress bar on a terminal; refuses an unknown --type', async () => {
    const { config, tensors } = tinyLlama();
    const folder = await writeCheckpoint('cli-tty', config, tensors);
    const c = capture(true);
    await convertCommand(folder, path.join(tmp, 'cli-tty.gguf'), { type: 'f32' }, c.io);
    const err = c.err.join('');
    expect(err).toMatch(/\r\[#{30}\] 100% 21\/21 tensors/);
    expect(err.endsWith('\n')).toBe(true);
    await expect(convertCommand(folder, path.join(tmp, 'x.gguf'), { type: 'q4_0' }, c.io)).rejects.toThrow(
      /--type: unknown output type 'q4_0' \(choose one of f32, f16, bf16, q8_0, auto\)/,
    );
  });
});
