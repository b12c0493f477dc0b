/**
 * Training configuration: the JSON file `switchyard train --config` reads, validated field by
 * field so a typo names the field instead of training the wrong model for an hour. A recipe
 * (recipes/*.json) is one of these files plus the command that ran it.
 *
 * The model is a Qwen3-MoE-shaped decoder (RMSNorm, per-head q/k RMSNorm, RoPE NEOX, SwiGLU
 * experts, tied embeddings), so exported weights run in Switchyard and llama.cpp as `qwen3moe`
 * (or `qwen3` for the dense baseline). Reference: llama.cpp src/models/qwen3moe.cpp.
 */
import { readFileSync } from 'node:fs';
import { SwitchyardError } from '../core/errors.js';

export class TrainConfigError extends SwitchyardError {
  constructor(message: string) {
    super('E_TRAIN_CONFIG', message);
  }
}

export type RouterKind =
  | 'softmax-topk'
  | 'softmax-after-topk'
  | 'sigmoid-bias'
  | 'top-p'
  | 'null-experts'
  | 'moe-plus-plus';

export interface RouterSpec {
  kind: RouterKind;
  /** softmax-topk: renormalise the selected weights to sum to 1 (Qwen3-MoE: true). */
  normalize?: boolean;
  /** top-p: cumulative probability threshold. */
  p?: number;
  /** sigmoid-bias: bias update speed u (DeepSeek-V3: 0.001). */
  biasUpdateRate?: number;
  /** null-experts / moe-plus-plus: extra experts that compute nothing (or copy / a constant). */
  nullExperts?: number;
  zeroExperts?: number;
  copyExperts?: number;
  constantExperts?: number;
}

export interface BalanceSpec {
  /** Switch load-balancing loss coefficient (Fedus et al. 2021: 0.01). */
  switch?: number;
  /** Router z-loss coefficient (Zoph et al. 2022: 0.001). */
  zLoss?: number;
  /** Count expert frequencies over the global batch (all accumulation steps), Qiu et al. 2025. */
  globalBatch?: boolean;
  /** top-p routing's entropy loss coefficient (Huang et al. 2024: 1e-4). */
  entropy?: number;
}

export type FFNSpec =
  | {
      kind: 'moe';
      experts: number;
      topK: number;
      /** Hidden size of one routed expert. */
      expertDim: number;
      /** Hidden size of the always-on shared expert (0 = none). */
      sharedDim?: number;
      router: RouterSpec;
      balance?: BalanceSpec;
    }
  | { kind: 'dense'; hiddenDim: number };

export interface ModelSpec {
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  contextLength: number;
  ropeTheta: number;
  normEps: number;
  /** Standard deviation of the normal initialisation of matrices (output projections are scaled by 1/sqrt(2·layers)). */
  initStd: number;
  ffn: FFNSpec;
}

export interface TrainingSpec {
  /** Tokens per sequence. */
  seqLen: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step. */
  gradAccum: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  /** Final learning rate as a fraction of lr (cosine decay). */
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clipping (0 = off). */
  clip: number;
  /** Steps between held-out evaluations (0 = only at the end). */
  evalEvery: number;
  /** Held-out tokens per evaluation (per split). */
  evalTokens: number;
  /** Steps between checkpoints (0 = only at the end). */
  checkpointEvery: number;
  /** Stop after this many seconds of training (checkpointing first); 0 = no limit. */
  maxSeconds?: number;
}

export interface TrainConfig {
  name: string;
  seed: number;
  /** Training documents: which corpora to use (their held-out parts are never trained on). */
  corpus: { sources: ('sotu' | 'moby-dick')[] };
  tokenizer: { vocabSize: number };
  model: ModelSpec;
  training: TrainingSpec;
  output: {
    /** Folder for the tokenizer, checkpoints and the training log. */
    dir: string;
    /** The exported model (GGUF); empty = do not export. */
    gguf?: string;
    /** Tensor type of exported matrices: f32, f16, bf16 or q8_0. */
    type?: 'f32' | 'f16' | 'bf16' | 'q8_0';
  };
}

const ROUTER_KINDS: readonly RouterKind[] = ['softmax-topk', 'softmax-after-topk', 'sigmoid-bias', 'top-p', 'null-experts', 'moe-plus-plus'];

type Json = Record<string, unknown>;

function obj(v: unknown, path: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TrainConfigError(`${path} must be an object`);
  return v as Json;
}

function checkKeys(o: Json, path: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new TrainConfigError(`${path}.${k} is not a known field (known: ${allowed.join(', ')})`);
  }
}

function num(o: Json, key: string, path: string, opts: { int?: boolean; min?: number; max?: number; def?: number } = {}): number {
  const v = o[key] ?? opts.def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TrainConfigError(`${path}.${key} must be a number${v === undefined ? ' (missing)' : `, got ${JSON.stringify(v)}`}`);
  if (opts.int && !Number.isInteger(v)) throw new TrainConfigError(`${path}.${key} must be a whole number, got ${v}`);
  if (opts.min !== undefined && v < opts.min) throw new TrainConfigError(`${path}.${key} must be at least ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new TrainConfigError(`${path}.${key} must be at most ${opts.max}, got ${v}`);
  return v;
}

function str(o: Json, key: string, path: string, def?: string): string {
  const v = o[key] ?? def;
  if (typeof v !== 'string' || v === '') throw new TrainConfigError(`${path}.${key} must be a non-empty string`);
  return v;
}

function parseRouter(v: unknown, path: string): RouterSpec {
  const o = obj(v, path);
  checkKeys(o, path, ['kind', 'normalize', 'p', 'biasUpdateRate', 'nullExperts', 'zeroExperts', 'copyExperts', 'constantExperts']);
  const kind = str(o, 'kind', path) as RouterKind;
  if (!ROUTER_KINDS.includes(kind)) throw new TrainConfigError(`${path}.kind '${kind}' is not a router (choose one of ${ROUTER_KINDS.join(', ')})`);
  const r: RouterSpec = { kind };
  if (o.normalize !== undefined) {
    if (typeof o.normalize !== 'boolean') throw new TrainConfigError(`${path}.normalize must be true or false`);
    r.normalize = o.normalize;
  }
  if (o.p !== undefined) r.p = num(o, 'p', path, { min: 0, max: 1 });
  if (o.biasUpdateRate !== undefined) r.biasUpdateRate = num(o, 'biasUpdateRate', path, { min: 0 });
  for (const k of ['nullExperts', 'zeroExperts', 'copyExperts', 'constantExperts'] as const) {
    if (o[k] !== undefined) r[k] = num(o, k, path, { int: true, min: 0, max: 1024 });
  }
  return r;
}

function parseFFN(v: unknown, path: string): FFNSpec {
  const o = obj(v, path);
  const kind = str(o, 'kind', path);
  if (kind === 'dense') {
    checkKeys(o, path, ['kind', 'hiddenDim']);
    return { kind, hiddenDim: num(o, 'hiddenDim', path, { int: true, min: 1 }) };
  }
  if (kind !== 'moe') throw new TrainConfigError(`${path}.kind must be 'moe' or 'dense', got '${kind}'`);
  checkKeys(o, path, ['kind', 'experts', 'topK', 'expertDim', 'sharedDim', 'router', 'balance']);
  const experts = num(o, 'experts', path, { int: true, min: 1, max: 1024 });
  const topK = num(o, 'topK', path, { int: true, min: 1, max: experts });
  const f: FFNSpec = {
    kind,
    experts,
    topK,
    expertDim: num(o, 'expertDim', path, { int: true, min: 1 }),
    sharedDim: num(o, 'sharedDim', path, { int: true, min: 0, def: 0 }),
    router: parseRouter(o.router ?? { kind: 'softmax-topk', normalize: true }, `${path}.router`),
  };
  if (o.balance !== undefined) {
    const b = obj(o.balance, `${path}.balance`);
    checkKeys(b, `${path}.balance`, ['switch', 'zLoss', 'globalBatch', 'entropy']);
    f.balance = {};
    for (const k of ['switch', 'zLoss', 'entropy'] as const) if (b[k] !== undefined) f.balance[k] = num(b, k, `${path}.balance`, { min: 0 });
    if (b.globalBatch !== undefined) {
      if (typeof b.globalBatch !== 'boolean') throw new TrainConfigError(`${path}.balance.globalBatch must be true or false`);
      f.balance.globalBatch = b.globalBatch;
    }
  }
  return f;
}

/** Validates a parsed JSON config; `source` names it in errors. */
export function parseTrainConfig(json: unknown, source = 'config'): TrainConfig {
  const o = obj(json, source);
  checkKeys(o, source, ['$comment', 'name', 'seed', 'corpus', 'tokenizer', 'model', 'training', 'output']);
  const corpus = obj(o.corpus ?? { sources: ['sotu', 'moby-dick'] }, `${source}.corpus`);
  const sources = corpus.sources;
  if (!Array.isArray(sources) || sources.length === 0 || sources.some((s) => s !== 'sotu' && s !== 'moby-dick')) {
    throw new TrainConfigError(`${source}.corpus.sources must list 'sotu' and/or 'moby-dick'`);
  }
  const tok = obj(o.tokenizer, `${source}.tokenizer`);
  checkKeys(tok, `${source}.tokenizer`, ['vocabSize']);
  const m = obj(o.model, `${source}.model`);
  const mp = `${source}.model`;
  checkKeys(m, mp, ['dim', 'layers', 'heads', 'kvHeads', 'headDim', 'contextLength', 'ropeTheta', 'normEps', 'initStd', 'ffn']);
  const heads = num(m, 'heads', mp, { int: true, min: 1 });
  const model: ModelSpec = {
    dim: num(m, 'dim', mp, { int: true, min: 1 }),
    layers: num(m, 'layers', mp, { int: true, min: 1, max: 256 }),
    heads,
    kvHeads: num(m, 'kvHeads', mp, { int: true, min: 1, max: heads, def: heads }),
    headDim: num(m, 'headDim', mp, { int: true, min: 2 }),
    contextLength: num(m, 'contextLength', mp, { int: true, min: 2 }),
    ropeTheta: num(m, 'ropeTheta', mp, { min: 1, def: 10000 }),
    normEps: num(m, 'normEps', mp, { min: 0, def: 1e-6 }),
    initStd: num(m, 'initStd', mp, { min: 0, def: 0.02 }),
    ffn: parseFFN(m.ffn, `${mp}.ffn`),
  };
  if (heads % model.kvHeads !== 0) throw new TrainConfigError(`${mp}.heads (${heads}) must be a multiple of kvHeads (${model.kvHeads})`);
  if (model.headDim % 2 !== 0) throw new TrainConfigError(`${mp}.headDim must be even (RoPE rotates pairs), got ${model.headDim}`);
  const t = obj(o.training, `${source}.training`);
  const tp = `${source}.training`;
  checkKeys(t, tp, ['seqLen', 'batchSize', 'gradAccum', 'steps', 'lr', 'warmupSteps', 'minLrRatio', 'weightDecay', 'beta1', 'beta2', 'eps', 'clip', 'evalEvery', 'evalTokens', 'checkpointEvery', 'maxSeconds']);
  const training: TrainingSpec = {
    seqLen: num(t, 'seqLen', tp, { int: true, min: 2, max: model.contextLength }),
    batchSize: num(t, 'batchSize', tp, { int: true, min: 1 }),
    gradAccum: num(t, 'gradAccum', tp, { int: true, min: 1, def: 1 }),
    steps: num(t, 'steps', tp, { int: true, min: 1 }),
    lr: num(t, 'lr', tp, { min: 0 }),
    warmupSteps: num(t, 'warmupSteps', tp, { int: true, min: 0, def: 0 }),
    minLrRatio: num(t, 'minLrRatio', tp, { min: 0, max: 1, def: 0.1 }),
    weightDecay: num(t, 'weightDecay', tp, { min: 0, def: 0.1 }),
    beta1: num(t, 'beta1', tp, { min: 0, max: 1, def: 0.9 }),
    beta2: num(t, 'beta2', tp, { min: 0, max: 1, def: 0.95 }),
    eps: num(t, 'eps', tp, { min: 0, def: 1e-8 }),
    clip: num(t, 'clip', tp, { min: 0, def: 1 }),
    evalEvery: num(t, 'evalEvery', tp, { int: true, min: 0, def: 0 }),
    evalTokens: num(t, 'evalTokens', tp, { int: true, min: 1, def: 32768 }),
    checkpointEvery: num(t, 'checkpointEvery', tp, { int: true, min: 0, def: 0 }),
    maxSeconds: num(t, 'maxSeconds', tp, { min: 0, def: 0 }),
  };
  const out = obj(o.output, `${source}.output`);
  checkKeys(out, `${source}.output`, ['dir', 'gguf', 'type']);
  const type = (out.type ?? 'f16') as NonNullable<TrainConfig['output']['type']>;
  if (!['f32', 'f16', 'bf16', 'q8_0'].includes(type)) throw new TrainConfigError(`${source}.output.type must be f32, f16, bf16 or q8_0, got '${type}'`);
  return {
    name: str(o, 'name', source),
    seed: num(o, 'seed', source, { int: true, min: 0, max: 2 ** 32 - 1 }),
    corpus: { sources: sources as TrainConfig['corpus']['sources'] },
    tokenizer: { vocabSize: num(tok, 'vocabSize', `${source}.tokenizer`, { int: true, min: 258, max: 1 << 20 }) },
    model,
    training,
    output: { dir: str(out, 'dir', `${source}.output`), gguf: typeof out.gguf === 'string' ? out.gguf : undefined, type },
  };
}

/** Reads and validates a config file. */
export function readTrainConfig(file: string): TrainConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TrainConfigError(`cannot read training config ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TrainConfigError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseTrainConfig(json, file);
}
