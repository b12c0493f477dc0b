/**
 * GGUF file -> Hugging Face checkpoint folder: config.json (weights/hf/config.ts),
 * tokenizer.json + tokenizer_config.json (tokenizer/), and the tensors under their Hugging Face
 * names through the inverse transforms of tensor-map.ts, in model.safetensors or in shards with
 * model.safetensors.index.json. F32, F16 and BF16 tensors keep their type; MXFP4 experts of
 * gpt-oss become MXFP4 blocks and scales as the released checkpoints store them; other
 * quantized types are dequantized to F32 (with the reference kernels, exactly as llama.cpp).
 *
 * Used by the golden round-trip tests (export, convert back, compare) and as a feature.
 * Reference: the same as convert.ts, read backwards.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { dtypeInfo, GGMLType } from '../../core/dtypes.js';
import { GGUFFile, type GGUFTensorInfo } from '../../formats/gguf/index.js';
import {
  SAFETENSORS_INDEX_NAME,
  SAFETENSORS_SINGLE_NAME,
  type SafetensorsDType,
  type SafetensorsTensorInput,
  writeSafetensors,
} from '../../formats/safetensors/index.js';
import { refTypeKernels } from '../../kernels/ref/types.js';
import { huggingFaceTokenizerFromGGUF } from '../../tokenizer/index.js';
import { toFloat32 } from '../convert-types.js';
import { huggingFaceConfigFromGGUF } from './config.js';
import { checkpointShapeFromConfig } from './convert.js';
import { formatTensorName, isBlockRule, type TensorRule, tensorMapForGGUF } from './tensor-map.js';
import { ConvertError, type Elements, type Shape, TRANSFORMS, type TensorValue, type TransformParams } from './transforms.js';

export interface ExportOptions {
  /**
   * Split the tensors into shards of at most this many data bytes, with model.safetensors.index.json
   * (a larger tensor gets a shard of its own). Shards are written one at a time, so memory holds one
   * shard; without this option everything goes into model.safetensors, built in memory.
   */
  readonly maxShardBytes?: number;
}

export interface ExportResult {
  readonly folder: string;
  /** Every file written. */
  readonly files: readonly string[];
  readonly tensors: number;
  /** The config.json written. */
  readonly config: Record<string, unknown>;
}

/** GGUF tensors the exporter turns into config.json fields rather than checkpoint tensors. */
const CONFIG_TENSORS = new Set(['rope_factors_long.weight', 'rope_factors_short.weight']);

const SAFETENSORS_DTYPE: Partial<Record<number, SafetensorsDType>> = {
  [GGMLType.F32]: 'F32',
  [GGMLType.F16]: 'F16',
  [GGMLType.BF16]: 'BF16',
};

/** A GGUF tensor's elements: floats as stored (F32 values, F16/BF16 patterns), MXFP4 raw when asked, others dequantized. */
function decode(info: GGUFTensorInfo, bytes: Uint8Array, raw: boolean): { data: Elements; dtype: SafetensorsDType } {
  const dtype = SAFETENSORS_DTYPE[info.type];
  if (raw) return { data: bytes, dtype: 'U8' };
  if (dtype === 'F32') return { data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), dtype };
  if (dtype) return { data: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2), dtype };
  const n = info.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let kernels: ReturnType<typeof refTypeKernels>;
  try {
    kernels = refTypeKernels(info.type);
  } catch (e) {
    throw new ConvertError(`${info.file}: tensor '${info.name}' is ${dtypeInfo(info.type).name}, which Switchyard cannot dequantize`, {
      cause: e,
    });
  }
  kernels.dequantize(bytes, 0, out, 0, n);
  return { data: out, dtype: 'F32' };
}

function floats(d: { data: Elements; dtype: SafetensorsDType }): Float32Array {
  return d.dtype === 'F32' ? (d.data as Float32Array) : toFloat32(d.data as Uint16Array, d.dtype as 'F16' | 'BF16');
}

interface Planned {
  rule: TensorRule;
  bid?: number;
  gguf: GGUFTensorInfo[];
}

/** Which rule reads which GGUF tensors (the first rule accepting their type wins). */
function planExport(file: GGUFFile, rules: readonly TensorRule[], layers: number): Planned[] {
  const used = new Set<string>();
  const planned: Planned[] = [];
  const tryRule = (rule: TensorRule, bid: number | undefined) => {
    const names = rule.gguf.map((g) => formatTensorName(g, bid));
    if (names.some((n) => used.has(n))) return;
    const present = names.map((n) => file.tensors.get(n));
    if (present.every((t) => t === undefined)) return;
    const raw = TRANSFORMS[rule.transform ?? 'rename'].rawGGUFType;
    if (raw !== undefined && !present.every((t) => t?.type === raw)) return; // a float alternative follows
    const missing = names.filter((_, i) => present[i] === undefined);
    if (missing.length) {
      throw new ConvertError(
        `${file.path}: '${missing[0]}' is missing; it goes with ${names.filter((n) => !missing.includes(n)).join(', ')}`,
      );
    }
    for (const n of names) used.add(n);
    planned.push({ rule, ...(bid !== undefined ? { bid } : {}), gguf: present as GGUFTensorInfo[] });
  };
  for (const rule of rules) if (!isBlockRule(rule)) tryRule(rule, undefined);
  for (let bid = 0; bid < layers; bid++) for (const rule of rules) if (isBlockRule(rule)) tryRule(rule, bid);
  const left = [...file.tensors.keys()].filter((n) => !used.has(n) && !CONFIG_TENSORS.has(n));
  if (left.length) {
    throw new ConvertError(
      `${file.path}: ${left.length} tensor(s) have no Hugging Face name for '${file.metadata.architecture}': ` +
        `${left.slice(0, 5).join(', ')}${left.length > 5 ? ', ...' : ''}`,
    );
  }
  return planned;
}

const ELEMENT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, U8: 1 };

/** The checkpoint element type of a rule's tensors: the GGUF float type, F32 when mixed or quantized, U8 for MXFP4 kept raw. */
function hfDType(p: Planned): SafetensorsDType {
  if (TRANSFORMS[p.rule.transform ?? 'rename'].rawGGUFType !== undefined) return 'U8';
  const types = new Set(p.gguf.map((t) => SAFETENSORS_DTYPE[t.type] ?? 'F32'));
  return types.size === 1 ? ([...types][0] as SafetensorsDType) : 'F32';
}

/** Names, shapes, types and sizes of the checkpoint tensors a rule gives, without reading data. */
function hfLayout(p: Planned, params: TransformParams, where: string) {
  const transform = TRANSFORMS[p.rule.transform ?? 'rename'];
  let shapes: Shape[];
  try {
    shapes = transform.hfShapes(
      p.gguf.map((t) => t.shape),
      params,
    );
  } catch (e) {
    throw new ConvertError(`${where}: ${p.gguf.map((t) => t.name).join(', ')}: ${p.rule.transform} cannot be undone: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const names = p.rule.hf.flatMap((pattern) =>
    pattern.includes('{xid}') ? shapes.map((_, x) => formatTensorName(pattern, p.bid, x)) : [formatTensorName(pattern, p.bid)],
  );
  const dtype = hfDType(p);
  return shapes.map((shape, i) => ({
    name: names[i] as string,
    shape,
    dtype,
    bytes: shape.reduce((a, b) => a * b, 1) * (ELEMENT_BYTES[dtype] as number),
  }));
}

/** Shards as transformers/huggingface_hub fill them: in order, a new one when the next tensor would overflow. */
function assignShards<T extends { bytes: number }>(tensors: readonly T[], maxShardBytes: number | undefined): T[][] {
  if (maxShardBytes === undefined) return [[...tensors]];
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes < 1) {
    throw new ConvertError(`maxShardBytes is ${maxShardBytes}, expected a positive integer`);
  }
  const shards: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const t of tensors) {
    if (current.length > 0 && size + t.bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += t.bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/** Reads a rule's GGUF tensors and undoes its transform. */
async function runInverse(file: GGUFFile, p: Planned, params: TransformParams): Promise<TensorValue[]> {
  const transform = TRANSFORMS[p.rule.transform ?? 'rename'];
  const raw = transform.rawGGUFType !== undefined;
  const decoded = await Promise.all(p.gguf.map(async (t) => decode(t, await file.read(t.name), raw)));
  const dtype = hfDType(p);
  const values: TensorValue[] = decoded.map((d, i) => ({
    shape: (p.gguf[i] as GGUFTensorInfo).shape,
    data: dtype === 'F32' && d.dtype !== 'F32' ? floats(d) : d.data,
  }));
  try {
    return transform.inverse(values, params);
  } catch (e) {
    throw new ConvertError(`${file.path}: ${p.gguf.map((t) => t.name).join(', ')}: ${p.rule.transform} cannot be undone: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** The config.json: weights/hf/config.ts, plus the tensor facts it is given and the name. */
async function exportConfig(file: GGUFFile): Promise<Record<string, unknown>> {
  const long = file.tensors.get('rope_factors_long.weight');
  const short = file.tensors.get('rope_factors_short.weight');
  const values = async (t: GGUFTensorInfo) => floats(decode(t, await file.read(t.name), false));
  const ropeFactors = long && short ? { long: await values(long), short: await values(short) } : undefined;
  const config: Record<string, unknown> = {
    ...huggingFaceConfigFromGGUF(file.metadata, { tensorNames: file.tensors.keys(), ...(ropeFactors ? { ropeFactors } : {}) }),
  };
  // the converter names its output after _name_or_path: general.name survives the trip
  const name = file.metadata.string('general.name', '');
  if (name && config._name_or_path === undefined) config._name_or_path = name;
  if (config.torch_dtype === undefined) {
    const weight = [...file.tensors.values()].find((t) => t.shape.length >= 2);
    const dtype = weight ? SAFETENSORS_DTYPE[weight.type] : undefined;
    config.torch_dtype = dtype === 'F16' ? 'float16' : dtype === 'BF16' ? 'bfloat16' : 'float32';
  }
  return config;
}

/** Writes a GGUF model out as a Hugging Face checkpoint folder. */
export async function exportGGUFToHuggingFace(
  ggufPath: string,
  folder: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const file = await GGUFFile.open(ggufPath);
  try {
    const arch = file.metadata.architecture;
    const map = tensorMapForGGUF(arch);
    if (!map) throw new ConvertError(`${ggufPath}: architecture '${arch}' cannot be exported to Hugging Face`);
    // metadata errors (GGUFMetadataError, TokenizerError) already name the file and the key
    const config = await exportConfig(file);
    const tokenizer = file.metadata.has('tokenizer.ggml.model') ? huggingFaceTokenizerFromGGUF(file.metadata) : undefined;
    const shape = checkpointShapeFromConfig(config, `config.json made from ${ggufPath}`);
    const planned = planExport(file, map.rules, shape.layers);

    // Every checkpoint tensor's name, type and size first, so shards can be assigned before any
    // data is read; then shard by shard, so memory holds one shard (plus a rule straddling two).
    const layout = planned.map((p) => hfLayout(p, shape.params, ggufPath));
    const all = layout.flatMap((l, app) => l.map((t, index) => ({ ...t, app, index })));
    if (all.some((t) => t.dtype === 'U8') && config.quantization_config === undefined) {
      // as the released gpt-oss checkpoints say it (transformers' Mxfp4Config)
      config.quantization_config = {
        quant_method: 'mxfp4',
        modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'],
      };
    }
    const shards = assignShards(all, options.maxShardBytes);
    const out = path.resolve(folder);
    await mkdir(out, { recursive: true });
    const files: string[] = [];
    const meta = { format: 'pt' }; // transformers refuses safetensors without it
    const width = Math.max(5, String(shards.length).length);
    const shardName = (i: number) =>
      options.maxShardBytes === undefined
        ? SAFETENSORS_SINGLE_NAME
        : `model-${String(i + 1).padStart(width, '0')}-of-${String(shards.length).padStart(width, '0')}.safetensors`;
    const weightMap: Record<string, string> = {};
    let cached: { app: number; tensors: TensorValue[] } | undefined;
    for (let i = 0; i < shards.length; i++) {
      const tensors: SafetensorsTensorInput[] = [];
      for (const t of shards[i] as typeof all) {
        if (cached?.app !== t.app) cached = { app: t.app, tensors: await runInverse(file, planned[t.app] as Planned, shape.params) };
        const data = (cached.tensors[t.index] as TensorValue).data;
        tensors.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
        weightMap[t.name] = shardName(i);
      }
      const target = path.join(out, shardName(i));
      await writeSafetensors(target, tensors, meta);
      files.push(target);
    }
    if (options.maxShardBytes !== undefined) {
      // transformers' index: json.dumps(index, indent=2, sort_keys=True)
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      const totalSize = all.reduce((n, t) => n + t.bytes, 0);
      const index = path.join(out, SAFETENSORS_INDEX_NAME);
      await writeFile(index, `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sorted }, null, 2)}\n`);
      files.push(index);
    }
    const writeJson = async (name: string, value: unknown) => {
      const p2 = path.join(out, name);
      await writeFile(p2, `${JSON.stringify(value, null, 2)}\n`);
      files.push(p2);
    };
    await writeJson('config.json', config);
    if (tokenizer) {
      await writeJson('tokenizer.json', tokenizer.tokenizerJson);
      await writeJson('tokenizer_config.json', tokenizer.tokenizerConfig);
      if (tokenizer.sentencePieceModel) {
        const model = path.join(out, 'tokenizer.model');
        await writeFile(model, tokenizer.sentencePieceModel);
        files.push(model);
      }
    }
    return { folder: out, files, tensors: all.length, config };
  } finally {
    await file.close();
  }
}

