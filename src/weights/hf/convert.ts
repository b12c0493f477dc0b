/**
 * Hugging Face checkpoint folder -> GGUF file: config.json gives the architecture metadata
 * (weights/hf/config.ts), tokenizer.json the vocabulary (tokenizer/), and every safetensors
 * tensor is mapped through the table in tensor-map.ts, transformed (transforms.ts), converted
 * to the output type with llama.cpp's policy (convert-types.ts) and streamed into the file
 * tensor by tensor, so memory stays bounded by one output tensor (one expert stack).
 *
 * Reference: llama.cpp d32676d77 convert_hf_to_gguf.py and conversion/base.py
 * (`ModelBase.prepare_tensors`: which tensors stay F32, the Q8_0 -> F16 fallback, ignored
 * tensors) and the per-model classes in conversion/*.py.
 */
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { GGMLType } from '../../core/dtypes.js';
import { SwitchyardError } from '../../core/errors.js';
import { type GGUFKV, type GGUFWriteTensor, kv, writeGGUF } from '../../formats/gguf/index.js';
import { SafetensorsCheckpoint, type SafetensorsTensorInfo } from '../../formats/safetensors/index.js';
import { ggufTokenizerMetadataFromHuggingFace, type JsonObject } from '../../tokenizer/index.js';
import {
  type ConvertTargetType,
  CONVERT_TARGET_TYPES,
  convertFloatTensor,
  findNonFinite,
  type FloatElements,
  floatElementsOf,
  ggmlTypeOfTarget,
  Q8_0_BLOCK,
  type SourceFloatType,
  toFloat32,
} from '../convert-types.js';
import { type DerivedTensor, ggufMetadataFromHuggingFaceConfig, ropeTensorsFromHuggingFaceConfig } from './config.js';
import {
  type ArchitectureTensorMap,
  formatTensorName,
  IGNORED_EVERYWHERE,
  isBlockRule,
  isPerExpertRule,
  matchTensorName,
  SUPPORTED_HF_ARCHITECTURES,
  type TensorRule,
  tensorMapForHuggingFace,
} from './tensor-map.js';
import { ConvertError, type Elements, type Shape, TRANSFORMS, type TensorValue, type TransformParams } from './transforms.js';

export { ConvertError } from './transforms.js';

export interface ConvertProgress {
  /** Tensors written so far, of `totalTensors`. */
  readonly tensors: number;
  readonly totalTensors: number;
  /** Data bytes written so far, of `totalBytes`. */
  readonly bytes: number;
  readonly totalBytes: number;
  /** The tensor just written. */
  readonly name: string;
  /** Its group: 'global' or 'blk.N'. */
  readonly group: string;
}

export interface ConvertOptions {
  /**
   * Output type of the weight matrices (norms, biases, vectors and routers stay F32).
   * 'auto' (the default) decides as convert_hf_to_gguf.py does: the first matrix stored in BF16
   * or F16 gives bf16 or f16; an all-F32 checkpoint gives f16.
   */
  readonly type?: ConvertTargetType | 'auto';
  /** `general.name`; default: config.json `_name_or_path` (its last part), else the folder name. */
  readonly name?: string;
  readonly onProgress?: (p: ConvertProgress) => void;
}

export interface ConvertResult {
  readonly outFile: string;
  readonly architecture: string;
  readonly tensors: number;
  /** Tensor data bytes. */
  readonly bytes: number;
  /** Tensors per GGML type name. */
  readonly typeCounts: Readonly<Record<string, number>>;
  /** Checkpoint tensors deliberately left out (rotary caches, tied lm_head, MTP layers). */
  readonly ignored: readonly string[];
  /** Things a user should know (no tokenizer.json, ...). */
  readonly warnings: readonly string[];
}

/** llama.cpp's LLAMA_FTYPE for each output type (general.file_type). */
const FILE_TYPE: Record<ConvertTargetType, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };

// ---- config.json -----------------------------------------------------------------------------

type Json = Record<string, unknown>;

async function readJson(file: string, what: string, required: boolean): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !required) return undefined;
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : String(e);
    throw new ConvertError(`${file}: cannot read the ${what} (${why})`, { cause: e });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConvertError(`${file}: the ${what} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConvertError(`${file}: the ${what} must be a JSON object`);
  }
  return value as Json;
}

function configInt(config: Json, file: string, keys: readonly string[], required: boolean): number | undefined {
  for (const key of keys) {
    const v = config[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new ConvertError(`${file}: '${key}' is ${JSON.stringify(v)}, expected a non-negative integer`);
    }
    return v;
  }
  if (required) throw new ConvertError(`${file}: '${keys[0]}' is missing (needed to map the tensors)`);
  return undefined;
}

/** What the tensor transforms and the planner need from config.json. */
export interface CheckpointShape {
  readonly layers: number;
  /** hidden_size, when the config says: the token embedding must have it as its width. */
  readonly hidden?: number;
  /** Experts per MoE layer, when the config says. */
  readonly experts?: number;
  readonly tied: boolean;
  readonly params: TransformParams;
}

export function checkpointShapeFromConfig(config: Json, file = 'config.json'): CheckpointShape {
  const heads = configInt(config, file, ['num_attention_heads', 'n_head'], false);
  const headsKv = configInt(config, file, ['num_key_value_heads', 'n_head_kv'], false);
  const qkNopeHeadDim = configInt(config, file, ['qk_nope_head_dim'], false);
  const vHeadDim = configInt(config, file, ['v_head_dim'], false);
  const experts = configInt(config, file, ['num_local_experts', 'num_experts', 'n_routed_experts'], false);
  const hidden = configInt(config, file, ['hidden_size', 'n_embd'], false);
  return {
    layers: configInt(config, file, ['num_hidden_layers', 'n_layer'], true) as number,
    ...(hidden ? { hidden } : {}),
    ...(experts ? { experts } : {}),
    tied: config.tie_word_embeddings === true,
    params: {
      ...(heads ? { heads } : {}),
      ...(headsKv ? { headsKv } : {}),
      ...(qkNopeHeadDim ? { qkNopeHeadDim } : {}),
      ...(vHeadDim ? { vHeadDim } : {}),
    },
  };
}

// ---- planning: checkpoint tensors -> GGUF tensors ------------------------------------------

/** One application of a rule: a block (or the globals) and its checkpoint tensors. */
export interface RuleApplication {
  readonly rule: TensorRule;
  readonly bid?: number;
  /** Checkpoint tensor names, one list per `rule.hf` pattern (one name per expert for {xid}). */
  readonly inputs: readonly (readonly string[])[];
  /** GGUF names and shapes of the outputs. */
  readonly outputs: readonly { name: string; shape: Shape }[];
}

export interface TensorPlan {
  readonly applications: readonly RuleApplication[];
  readonly ignored: readonly string[];
}

interface Found {
  rule: TensorRule;
  hfIndex: number;
  bid?: number;
  xid?: number;
}

function locate(map: ArchitectureTensorMap, name: string): Found | 'ignored' | undefined {
  for (const pattern of [...IGNORED_EVERYWHERE, ...(map.ignored ?? [])]) {
    if (matchTensorName(pattern, name)) return 'ignored';
  }
  for (const rule of map.rules) {
    for (let i = 0; i < rule.hf.length; i++) {
      const m = matchTensorName(rule.hf[i] as string, name);
      if (m) return { rule, hfIndex: i, ...m };
    }
  }
  return undefined;
}

const listSome = (names: readonly string[], n = 5) =>
  names.slice(0, n).join(', ') + (names.length > n ? ` and ${names.length - n} more` : '');

/**
 * Maps every checkpoint tensor to a rule and checks the groups are complete and their shapes fit
 * the transforms; the result lists the GGUF tensors in file order. `where` names the checkpoint
 * in errors.
 */
export function planTensors(
  map: ArchitectureTensorMap,
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  shape: CheckpointShape,
  where: string,
): TensorPlan {
  // rule -> block key -> per pattern -> xid -> name
  const groups = new Map<TensorRule, Map<number, Map<number, Map<number, string>>>>();
  const ignored: string[] = [];
  const unmapped: string[] = [];
  const GLOBAL = -1;
  for (const name of tensors.keys()) {
    const found = locate(map, name);
    if (found === 'ignored') {
      ignored.push(name);
      continue;
    }
    if (!found) {
      unmapped.push(name);
      continue;
    }
    if (found.bid !== undefined && found.bid >= shape.layers) {
      if (map.ignoreLayersPastCount) {
        ignored.push(name);
        continue;
      }
      throw new ConvertError(
        `${where}: tensor '${name}' is in layer ${found.bid}, but config.json says num_hidden_layers = ${shape.layers}`,
      );
    }
    if (name === 'lm_head.weight' && shape.tied) {
      ignored.push(name); // tied: llama.cpp uses token_embd as the output matrix
      continue;
    }
    let byBlock = groups.get(found.rule);
    if (!byBlock) groups.set(found.rule, (byBlock = new Map()));
    const key = found.bid ?? GLOBAL;
    let byPattern = byBlock.get(key);
    if (!byPattern) byBlock.set(key, (byPattern = new Map()));
    let byExpert = byPattern.get(found.hfIndex);
    if (!byExpert) byPattern.set(found.hfIndex, (byExpert = new Map()));
    byExpert.set(found.xid ?? 0, name);
  }
  if (unmapped.length) {
    const fp8 = unmapped.some((n) => n.endsWith('_scale_inv'))
      ? ' This looks like an FP8 block-quantized checkpoint (weight_scale_inv): convert it to BF16 first.'
      : '';
    throw new ConvertError(
      `${where}: ${unmapped.length} tensor${unmapped.length > 1 ? 's' : ''} with no place in a '${map.architecture}' GGUF: ` +
        `${listSome(unmapped)} (the Hugging Face -> GGUF table, src/weights/hf/tensor-map.ts, does not know ` +
        `${unmapped.length > 1 ? 'them' : 'it'}; is config.json's architecture right?)${fp8}`,
    );
  }

  const applications: RuleApplication[] = [];
  const produced = new Map<string, TensorRule>();
  const apply = (rule: TensorRule, bid: number | undefined) => {
    const byPattern = groups.get(rule)?.get(bid ?? GLOBAL);
    if (!byPattern) return;
    const inputs: string[][] = [];
    for (let i = 0; i < rule.hf.length; i++) {
      const byExpert = byPattern.get(i);
      const pattern = rule.hf[i] as string;
      if (!byExpert) {
        const have = [...byPattern.values()].flatMap((m) => [...m.values()]);
        throw new ConvertError(
          `${where}: '${formatTensorName(pattern, bid, 0)}' is missing (it goes with ${listSome(have, 2)}; ` +
            'is a shard missing or incomplete?)',
        );
      }
      if (!pattern.includes('{xid}')) {
        inputs.push([byExpert.get(0) as string]);
        continue;
      }
      const n = shape.experts ?? Math.max(...byExpert.keys()) + 1;
      const present = [...byExpert.keys()].filter((x) => x < n).length;
      if (present < n) {
        // name the first few missing ones (n comes from config.json: never a list of n names)
        const missing: string[] = [];
        for (let x = 0; x < n && missing.length < 5; x++) if (!byExpert.has(x)) missing.push(formatTensorName(pattern, bid, x));
        const more = n - present - missing.length;
        throw new ConvertError(
          `${where}: layer ${bid} lacks ${n - present} of ${n} experts: ${missing.join(', ')}${more > 0 ? ` and ${more} more` : ''}`,
        );
      }
      const extra = [...byExpert.keys()].filter((x) => x >= n);
      if (extra.length) {
        throw new ConvertError(
          `${where}: layer ${bid} has expert ${extra[0]} ('${formatTensorName(pattern, bid, extra[0])}'), ` +
            `but config.json says there are ${n} experts`,
        );
      }
      inputs.push(Array.from({ length: n }, (_, x) => byExpert.get(x) as string));
    }
    const inShapes = isPerExpertRule(rule)
      ? (inputs[0] as string[]).map((n) => tensors.get(n)!.shape)
      : inputs.map((names) => tensors.get(names[0] as string)!.shape);
    const transform = TRANSFORMS[rule.transform ?? 'rename'];
    let outShapes: Shape[];
    try {
      outShapes = transform.ggufShapes(inShapes, shape.params);
    } catch (e) {
      throw new ConvertError(
        `${where}: tensor${inputs.flat().length > 1 ? 's' : ''} ${listSome(inputs.flat(), 3)}: ` +
          `unexpected shape for ${rule.transform ?? 'rename'} -> ${rule.gguf.map((g) => formatTensorName(g, bid)).join(', ')}: ` +
          `${(e as Error).message}`,
        { cause: e },
      );
    }
    const outputs = rule.gguf.map((g, i) => ({ name: formatTensorName(g, bid), shape: outShapes[i] as Shape }));
    for (const o of outputs) {
      const other = produced.get(o.name);
      if (other) {
        throw new ConvertError(
          `${where}: '${o.name}' would come both from ${other.hf.join(' + ')} and from ${rule.hf.join(' + ')} ` +
            '(the checkpoint holds two layouts of the same weights)',
        );
      }
      produced.set(o.name, rule);
    }
    applications.push({ rule, ...(bid !== undefined ? { bid } : {}), inputs, outputs });
  };
  for (const rule of map.rules) if (!isBlockRule(rule)) apply(rule, undefined);
  for (let bid = 0; bid < shape.layers; bid++) {
    const before = applications.length;
    for (const rule of map.rules) if (isBlockRule(rule)) apply(rule, bid);
    if (applications.length === before) {
      throw new ConvertError(
        `${where}: layer ${bid} has no tensors, but config.json says num_hidden_layers = ${shape.layers} (is a shard missing?)`,
      );
    }
  }
  const embedding = applications.flatMap((a) => a.outputs).find((o) => o.name === 'token_embd.weight');
  if (!embedding) throw new ConvertError(`${where}: no token embedding (model.embed_tokens.weight) in the checkpoint`);
  if (shape.hidden !== undefined && embedding.shape[embedding.shape.length - 1] !== shape.hidden) {
    throw new ConvertError(
      `${where}: the token embedding is [${embedding.shape.join(', ')}] but config.json says hidden_size = ${shape.hidden} ` +
        '(does config.json belong to these weights?)',
    );
  }
  return { applications, ignored };
}

// ---- output types ---------------------------------------------------------------------------

/**
 * The GGUF type of one output tensor. As convert_hf_to_gguf.py (ModelBase.prepare_tensors) and
 * llama-quantize (tensor_allows_quantization): vectors, norms, biases and anything not named
 * `.weight`, and the routers (`ffn_gate_inp`, `ffn_gate_inp_shexp`) stay F32; Q8_0 falls back
 * to F16 when the rows are not a whole number of 32-element blocks.
 */
export function outputTypeFor(name: string, shape: Shape, target: number): number {
  if (target === GGMLType.F32) return GGMLType.F32;
  const keepF32 =
    shape.length <= 1 ||
    name.endsWith('_norm.weight') ||
    !name.endsWith('.weight') ||
    /(^|\.)ffn_gate_inp(_shexp)?\.weight$/.test(name);
  if (keepF32) return GGMLType.F32;
  if (target === GGMLType.Q8_0 && (shape[shape.length - 1] as number) % Q8_0_BLOCK !== 0) return GGMLType.F16;
  return target;
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

async function readElements(ckpt: SafetensorsCheckpoint, info: SafetensorsTensorInfo): Promise<Elements> {
  const bytes = await ckpt.read(info.name);
  if (info.dtype === 'U8') return bytes;
  return floatElementsOf(bytes, info.dtype as SourceFloatType);
}

/** The element type a rule's inputs are handled in: their common float type, F32 when mixed, U8 for MXFP4. */
function ruleSourceType(app: RuleApplication, infos: ReadonlyMap<string, SafetensorsTensorInfo>, where: string): string {
  const raw = TRANSFORMS[app.rule.transform ?? 'rename'].rawGGUFType !== undefined;
  const types = new Set<string>();
  for (const name of app.inputs.flat()) {
    const dtype = (infos.get(name) as SafetensorsTensorInfo).dtype;
    const ok = raw ? dtype === 'U8' : FLOAT_DTYPES.has(dtype);
    if (!ok) {
      throw new ConvertError(
        `${where}: tensor '${name}' is ${dtype}; ${raw ? 'MXFP4 blocks and scales must be U8' : 'only F32, F16 and BF16 weights can be converted'}` +
          (dtype.startsWith('F8') ? ' (FP8 checkpoints: convert them to BF16 first)' : ''),
      );
    }
    types.add(dtype);
  }
  if (raw) return 'U8';
  return types.size === 1 ? ([...types][0] as string) : 'F32';
}

// ---- the converter ---------------------------------------------------------------------------

export interface PlannedOutput {
  name: string;
  shape: Shape;
  type: number;
  group: string;
  data: GGUFWriteTensor['data'];
}

/** A checkpoint mapped onto a GGUF file: metadata and tensors (read on demand), nothing written. */
export interface ConversionPlan {
  readonly folder: string;
  /** GGUF `general.architecture`. */
  readonly architecture: string;
  readonly metadata: readonly GGUFKV[];
  /** GGUF tensors in file order, each with its output type and a function producing its data. */
  readonly tensors: readonly PlannedOutput[];
  /** Checkpoint tensors deliberately left out (rotary caches, tied lm_head, MTP layers). */
  readonly ignored: readonly string[];
  readonly warnings: readonly string[];
  /** Closes the checkpoint's files. */
  close(): Promise<void>;
}

/**
 * Maps a Hugging Face checkpoint folder (config.json + safetensors [+ tokenizer.json]) onto a GGUF
 * file without reading tensor data: what `convert` writes and what `inspect` shows.
 */
export async function planConversion(folder: string, options: Omit<ConvertOptions, 'onProgress'> = {}): Promise<ConversionPlan> {
  const dir = path.resolve(folder);
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat?.isDirectory()) {
    throw new ConvertError(`${dir}: not a folder (expected a Hugging Face checkpoint folder with config.json)`);
  }
  const configFile = path.join(dir, 'config.json');
  const config = (await readJson(configFile, 'model configuration', true)) as Json;
  const archs = config.architectures;
  const hfArch = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : undefined;
  if (!hfArch) throw new ConvertError(`${configFile}: 'architectures' is missing (expected e.g. ["LlamaForCausalLM"])`);
  const map = tensorMapForHuggingFace(hfArch);
  if (!map) {
    throw new ConvertError(
      `${configFile}: architecture '${hfArch}' is not supported (supported: ${SUPPORTED_HF_ARCHITECTURES.join(', ')})`,
    );
  }
  const shape = checkpointShapeFromConfig(config, configFile);
  const warnings: string[] = [];

  // config.json errors (HFConfigError) already name the file and the field
  const archMetadata = ggufMetadataFromHuggingFaceConfig(config, { file: configFile });
  const derived = ropeTensorsFromHuggingFaceConfig(config, { file: configFile });
  const tokenizerFile = path.join(dir, 'tokenizer.json');
  const tokenizerJson = await readJson(tokenizerFile, 'tokenizer', false);
  const tokenizerConfig = await readJson(path.join(dir, 'tokenizer_config.json'), 'tokenizer configuration', false);
  let tokenizerMetadata: GGUFKV[] = [];
  if (tokenizerJson) {
    // SentencePiece vocabularies keep their piece scores and types in tokenizer.model
    const sentencePieceModel = await readFile(path.join(dir, 'tokenizer.model')).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw new ConvertError(`${path.join(dir, 'tokenizer.model')}: cannot read it (${e.code ?? e.message})`, { cause: e });
    });
    // TokenizerError messages name the file and the field
    tokenizerMetadata = ggufTokenizerMetadataFromHuggingFace(tokenizerJson, tokenizerConfig ?? {}, {
      source: tokenizerFile,
      modelConfig: config as JsonObject,
      ...(sentencePieceModel ? { sentencePieceModel: new Uint8Array(sentencePieceModel) } : {}),
    });
  } else {
    warnings.push(`${dir} has no tokenizer.json: the GGUF file has no vocabulary (llama.cpp cannot run it)`);
  }

  let ckpt: SafetensorsCheckpoint;
  try {
    ckpt = await SafetensorsCheckpoint.open(dir);
  } catch (e) {
    if (e instanceof SwitchyardError) throw new ConvertError(`${dir}: cannot open the checkpoint: ${e.message}`, { cause: e });
    throw e;
  }
  try {
    const plan = planTensors(map, ckpt.tensors, shape, dir);
    const infos = ckpt.tensors;
    const target: ConvertTargetType = options.type === undefined || options.type === 'auto' ? autoType(infos) : options.type;
    if (!CONVERT_TARGET_TYPES.includes(target)) {
      throw new ConvertError(`unknown output type '${target}' (choose one of ${CONVERT_TARGET_TYPES.join(', ')}, auto)`);
    }
    const targetType = ggmlTypeOfTarget(target);

    const outputs: PlannedOutput[] = [];
    const globals = plan.applications.filter((a) => a.bid === undefined).length;
    plan.applications.forEach((app, index) => {
      // tensors computed from config.json (LongRoPE factors, rope_freqs) follow the global ones
      if (index === globals) outputs.push(...derived.map(derivedOutput));
      const sourceType = ruleSourceType(app, infos, dir);
      const transform = TRANSFORMS[app.rule.transform ?? 'rename'];
      const group = app.bid === undefined ? 'global' : `blk.${app.bid}`;
      const types = app.outputs.map((o) => transform.rawGGUFType ?? outputTypeFor(o.name, o.shape, targetType));
      if (app.rule.transform === 'stackExperts') {
        const o = app.outputs[0] as (typeof app.outputs)[number];
        const data = () => stackedExperts(ckpt, infos, app, sourceType, types, dir);
        outputs.push({ name: o.name, shape: o.shape, type: types[0] as number, group, data });
        return;
      }
      // A rule with several outputs runs once; its other outputs wait here until written (next).
      let pending: Promise<Uint8Array[]> | undefined;
      const run = (): Promise<Uint8Array[]> => {
        pending ??= produce(ckpt, infos, app, sourceType, types, shape.params, dir);
        return pending;
      };
      app.outputs.forEach((o, i) => {
        outputs.push({
          name: o.name,
          shape: o.shape,
          type: types[i] as number,
          group,
          data: async () => {
            const all = await run();
            const bytes = all[i] as Uint8Array;
            all[i] = new Uint8Array(0); // release as soon as written
            return bytes;
          },
        });
      });
    });
    if (globals === plan.applications.length) outputs.push(...derived.map(derivedOutput));

    const metadata = assembleMetadata(archMetadata, tokenizerMetadata, {
      name: options.name ?? defaultName(config, dir),
      fileType: FILE_TYPE[target],
    });
    return { folder: dir, architecture: map.architecture, metadata, tensors: outputs, ignored: plan.ignored, warnings, close: () => ckpt.close() };
  } catch (e) {
    await ckpt.close();
    throw e;
  }
}

/** Converts a Hugging Face checkpoint folder (config.json + safetensors [+ tokenizer.json]) to a GGUF file. */
export async function convertHuggingFaceToGGUF(folder: string, outFile: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const plan = await planConversion(folder, options);
  try {
    const outputs = plan.tensors;
    const typeCounts: Record<string, number> = {};
    for (const o of [...outputs].sort((a, b) => a.type - b.type)) {
      const typeName = Object.entries(GGMLType).find(([, id]) => id === o.type)?.[0] ?? String(o.type);
      typeCounts[typeName] = (typeCounts[typeName] ?? 0) + 1;
    }
    let bytes = 0;
    try {
      await writeGGUF(
        outFile,
        { metadata: plan.metadata, tensors: outputs.map(({ name, shape: s, type, data }) => ({ name, shape: s, type, data })) },
        {
          onProgress: (p) => {
            bytes = p.bytes;
            options.onProgress?.({ ...p, group: outputs[p.tensors - 1]?.group ?? '' });
          },
        },
      );
    } catch (e) {
      if (e instanceof SwitchyardError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new ConvertError(`${path.resolve(outFile)}: cannot write the GGUF file (${code ?? (e as Error).message})`, { cause: e });
    }
    return {
      outFile: path.resolve(outFile),
      architecture: plan.architecture,
      tensors: outputs.length,
      bytes,
      typeCounts,
      ignored: plan.ignored,
      warnings: plan.warnings,
    };
  } finally {
    await plan.close();
  }
}

function derivedOutput(t: DerivedTensor): PlannedOutput {
  return {
    name: t.name,
    shape: [t.values.length],
    type: GGMLType.F32,
    group: 'global',
    data: async () => new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength),
  };
}

/** convert_hf_to_gguf.py's `--outtype auto` (ModelBase.__init__, LlamaFileType.GUESSED). */
function autoType(infos: ReadonlyMap<string, SafetensorsTensorInfo>): ConvertTargetType {
  for (const t of infos.values()) {
    if (t.shape.length < 2) continue;
    if (t.dtype === 'BF16') return 'bf16';
    if (t.dtype === 'F16') return 'f16';
  }
  return 'f16';
}

function defaultName(config: Json, dir: string): string {
  const nameOrPath = config._name_or_path;
  if (typeof nameOrPath === 'string' && nameOrPath.trim() !== '') {
    return nameOrPath.replace(/[\\/]+$/, '').split(/[\\/]/).pop() as string;
  }
  return path.basename(dir);
}

/**
 * general.architecture first, then the general.* keys a converter owns (in the order of the
 * golden files: type, name, file_type, quantization_version), then the architecture's keys,
 * then the tokenizer's.
 */
function assembleMetadata(
  arch: readonly GGUFKV[],
  tokenizer: readonly GGUFKV[],
  general: { name: string; fileType: number },
): GGUFKV[] {
  const own = new Set(['general.type', 'general.name', 'general.file_type', 'general.quantization_version']);
  const archKey = arch.find((e) => e.key === 'general.architecture');
  if (!archKey) throw new ConvertError('the configuration gave no general.architecture (a bug in weights/hf/config.ts)');
  const out: GGUFKV[] = [
    archKey,
    kv.string('general.type', 'model'),
    kv.string('general.name', general.name),
    kv.u32('general.file_type', general.fileType),
    kv.u32('general.quantization_version', 2), // GGML_QNT_VERSION
  ];
  const seen = new Set(out.map((e) => e.key));
  for (const e of [...arch, ...tokenizer]) {
    if (own.has(e.key) || seen.has(e.key)) continue;
    seen.add(e.key);
    out.push(e);
  }
  return out;
}

/** Reading a rule's inputs (NaN/Inf refused, mixed floats widened) and typing its outputs. */
function ruleIO(
  ckpt: SafetensorsCheckpoint,
  infos: ReadonlyMap<string, SafetensorsTensorInfo>,
  app: RuleApplication,
  sourceType: string,
  types: readonly number[],
) {
  const transform = TRANSFORMS[app.rule.transform ?? 'rename'];
  const load = async (name: string): Promise<Elements> => {
    const info = infos.get(name) as SafetensorsTensorInfo;
    const el = await readElements(ckpt, info);
    if (info.dtype !== 'U8') {
      const bad = findNonFinite(el as FloatElements, info.dtype as SourceFloatType);
      if (bad.count) {
        throw new ConvertError(
          `${info.file}: tensor '${name}' has ${bad.count} NaN or infinite value${bad.count === 1 ? '' : 's'} (first at element ${bad.first}); the checkpoint is damaged`,
        );
      }
    }
    // mixed float types within a rule: everything in float32
    if (sourceType === 'F32' && info.dtype !== 'F32') return toFloat32(el as FloatElements, info.dtype as SourceFloatType);
    return el;
  };
  const finish = (el: Elements, i: number): Uint8Array => {
    if (transform.rawGGUFType !== undefined) return el as Uint8Array;
    return convertFloatTensor(el as FloatElements, sourceType as SourceFloatType, types[i] as number);
  };
  const wrap = (e: unknown, where: string): Error => {
    if (e instanceof SwitchyardError) return e;
    return new ConvertError(
      `${where}: converting ${app.inputs.flat().slice(0, 3).join(', ')} to ${app.outputs.map((o) => o.name).join(', ')}: ${(e as Error).message}`,
      { cause: e },
    );
  };
  return { transform, load, finish, wrap };
}

/** Reads a rule's checkpoint tensors, transforms them and converts each output to its GGUF type. */
async function produce(
  ckpt: SafetensorsCheckpoint,
  infos: ReadonlyMap<string, SafetensorsTensorInfo>,
  app: RuleApplication,
  sourceType: string,
  types: readonly number[],
  params: TransformParams,
  where: string,
): Promise<Uint8Array[]> {
  const { transform, load, finish, wrap } = ruleIO(ckpt, infos, app, sourceType, types);
  try {
    const inputs: TensorValue[] = [];
    for (const names of app.inputs) {
      for (const name of names) inputs.push({ shape: (infos.get(name) as SafetensorsTensorInfo).shape, data: await load(name) });
    }
    return transform.forward(inputs, params).map((t, i) => finish(t.data, i));
  } catch (e) {
    throw wrap(e, where);
  }
}

/**
 * A stackExperts rule, one expert at a time: the writer streams each expert as it is converted,
 * so memory holds one expert, never the stack (a large model's stack passes 4 GiB).
 */
async function* stackedExperts(
  ckpt: SafetensorsCheckpoint,
  infos: ReadonlyMap<string, SafetensorsTensorInfo>,
  app: RuleApplication,
  sourceType: string,
  types: readonly number[],
  where: string,
): AsyncGenerator<Uint8Array> {
  const { load, finish, wrap } = ruleIO(ckpt, infos, app, sourceType, types);
  for (const name of app.inputs[0] as readonly string[]) {
    let bytes: Uint8Array;
    try {
      bytes = finish(await load(name), 0);
    } catch (e) {
      throw wrap(e, where);
    }
    yield bytes;
  }
}
