// ModelConfig from GGUF metadata (src/models/config.ts). Independent references: the golden
// models' hyper-parameters as ../shared/golden/README.md and ARCHITECTURES.md state them (what
// llama.cpp d32676d77 computed with), written here as literal expectations; llama.cpp's
// load_hparams rules (defaults, asserts) for the synthetic cases.
import { describe, expect, it } from 'vitest';
import { GGUFFile, type GGUFKV, GGUFMetadata, GGUFMetadataError, GGUFValueType, kv } from '../../src/formats/gguf/index.js';
import {
  isMoELayer,
  MAX_LAYERS,
  type ModelConfig,
  modelConfigFromGGUF,
  SUPPORTED_ARCHITECTURES,
  UnsupportedArchitectureError,
} from '../../src/models/config.js';
import { type GoldenModel, goldenPath, skipGolden } from '../helpers/golden.js';

const f32 = Math.fround;
const NO_MOE_EXTRAS = { weightsScale: 1, groupCount: 0, groupUsedCount: 0, leadingDenseBlockCount: 0 };
const NO_SHARED = { sharedExpertCount: 0, sharedExpertFeedForwardLength: 0, sharedExpertGate: false };
const UNSCALED_ROPE = { scalingType: 'none', scalingFactor: 1, yarnBetaFast: 32, yarnBetaSlow: 1, yarnLogMultiplier: 0, attnFactor: 1 };
const UNSCALED = { embeddingScale: 1, residualScale: 1, logitScale: 1 };
const FULL_ATTENTION = (layers: number) => ({
  slidingWindow: 0,
  slidingLayers: new Array(layers).fill(false),
  sinks: false,
  scale: undefined,
});

/** What README.md / ARCHITECTURES.md say about each golden model. */
const GOLDEN: Record<GoldenModel, Partial<ModelConfig> & Record<string, unknown>> = {
  llama_dense: {
    architecture: 'llama',
    vocabSize: 32000,
    contextLength: 2048,
    embeddingLength: 64,
    blockCount: 2,
    feedForwardLength: [256, 256],
    activation: 'silu',
    normEpsilon: f32(1e-5),
    attention: { headCount: [4, 4], headCountKV: [2, 2], keyLength: 64, valueLength: 64, ...FULL_ATTENTION(2) },
    rope: {
      type: 'norm',
      dimensionCount: 64,
      freqBase: 10000,
      freqBaseSliding: 10000,
      originalContextLength: 2048,
      ...UNSCALED_ROPE,
    } as ModelConfig['rope'],
    moe: null,
    mla: null,
    ...UNSCALED,
    tiedEmbeddings: true,
  },
  mixtral: {
    architecture: 'llama',
    vocabSize: 32000,
    contextLength: 32768,
    attention: { headCount: [8, 8], headCountKV: [2, 2], keyLength: 32, valueLength: 32, ...FULL_ATTENTION(2) },
    rope: {
      type: 'norm',
      dimensionCount: 32,
      freqBase: 1e6,
      freqBaseSliding: 1e6,
      originalContextLength: 32768,
      ...UNSCALED_ROPE,
    } as ModelConfig['rope'],
    moe: {
      expertCount: 8,
      expertUsedCount: 2,
      expertFeedForwardLength: 256,
      gating: 'softmax',
      normalizeWeights: true,
      ...NO_MOE_EXTRAS,
      ...NO_SHARED,
    },
    tiedEmbeddings: true,
  },
  qwen2moe: {
    architecture: 'qwen2moe',
    vocabSize: 32256,
    contextLength: 8192,
    normEpsilon: f32(1e-6),
    // no key_length in the file: n_embd / n_head = 64 / 2
    attention: { headCount: [2, 2], headCountKV: [1, 1], keyLength: 32, valueLength: 32, ...FULL_ATTENTION(2) },
    rope: {
      type: 'neox',
      dimensionCount: 32,
      freqBase: 1e6,
      freqBaseSliding: 1e6,
      originalContextLength: 8192,
      ...UNSCALED_ROPE,
    } as ModelConfig['rope'],
    moe: {
      expertCount: 12,
      expertUsedCount: 4,
      expertFeedForwardLength: 128,
      gating: 'softmax',
      normalizeWeights: false,
      ...NO_MOE_EXTRAS,
      sharedExpertCount: 1,
      sharedExpertFeedForwardLength: 256,
      sharedExpertGate: true,
    },
    tiedEmbeddings: false,
  },
  qwen3moe: {
    architecture: 'qwen3moe',
    contextLength: 40960,
    attention: { headCount: [4, 4], headCountKV: [2, 2], keyLength: 64, valueLength: 64, ...FULL_ATTENTION(2) },
    rope: {
      type: 'neox',
      dimensionCount: 64,
      freqBase: 1e6,
      freqBaseSliding: 1e6,
      originalContextLength: 40960,
      ...UNSCALED_ROPE,
    } as ModelConfig['rope'],
    moe: {
      expertCount: 16,
      expertUsedCount: 4,
      expertFeedForwardLength: 256,
      gating: 'softmax',
      normalizeWeights: true,
      ...NO_MOE_EXTRAS,
      ...NO_SHARED,
    },
    tiedEmbeddings: true,
  },
  olmoe: {
    architecture: 'olmoe',
    vocabSize: 32000,
    attention: { headCount: [2, 2], headCountKV: [2, 2], keyLength: 32, valueLength: 32, ...FULL_ATTENTION(2) },
    rope: {
      type: 'neox',
      dimensionCount: 32,
      freqBase: 10000,
      freqBaseSliding: 10000,
      originalContextLength: 4096,
      ...UNSCALED_ROPE,
    } as ModelConfig['rope'],
    // expert width is feed_forward_length
    moe: {
      expertCount: 12,
      expertUsedCount: 3,
      expertFeedForwardLength: 256,
      gating: 'softmax',
      normalizeWeights: false,
      ...NO_MOE_EXTRAS,
      ...NO_SHARED,
    },
    tiedEmbeddings: false,
  },
  deepseek2_lite: {
    architecture: 'deepseek2',
    vocabSize: 32256,
    contextLength: 163840,
    blockCount: 3,
    feedForwardLength: [256, 256, 256],
    // llama.cpp's absorbed MLA: key = kv_lora + rope = 80, value = kv_lora = 64, one kv head
    attention: { headCount: [8, 8, 8], headCountKV: [1, 1, 1], keyLength: 80, valueLength: 64, ...FULL_ATTENTION(3) },
    rope: {
      type: 'norm',
      dimensionCount: 16,
      freqBase: 10000,
      freqBaseSliding: 10000,
      scalingType: 'yarn',
      scalingFactor: 40,
      originalContextLength: 4096,
      yarnBetaFast: 32,
      yarnBetaSlow: 1,
      yarnLogMultiplier: f32(f32(0.0707) / f32(0.1)),
      attnFactor: 1,
    },
    moe: {
      expertCount: 16,
      expertUsedCount: 4,
      expertFeedForwardLength: 128,
      gating: 'softmax',
      normalizeWeights: false,
      weightsScale: 2,
      groupCount: 1,
      groupUsedCount: 1,
      leadingDenseBlockCount: 1,
      sharedExpertCount: 2,
      sharedExpertFeedForwardLength: 256,
      sharedExpertGate: false,
    },
    mla: { qLoraRank: 0, kvLoraRank: 64, keyLength: 48, valueLength: 32, nopeLength: 32 },
    tiedEmbeddings: true,
  },
  deepseek2_v3: {
    architecture: 'deepseek2',
    attention: { headCount: [4, 4, 4], headCountKV: [1, 1, 1], keyLength: 96, valueLength: 64, ...FULL_ATTENTION(3) },
    rope: {
      type: 'norm',
      dimensionCount: 32,
      freqBase: 10000,
      freqBaseSliding: 10000,
      scalingType: 'yarn',
      scalingFactor: 40,
      originalContextLength: 4096,
      yarnBetaFast: 32,
      yarnBetaSlow: 1,
      yarnLogMultiplier: 1,
      attnFactor: 1,
    },
    moe: {
      expertCount: 16,
      expertUsedCount: 4,
      expertFeedForwardLength: 256,
      gating: 'sigmoid',
      normalizeWeights: true,
      weightsScale: 2.5,
      groupCount: 4,
      groupUsedCount: 2,
      leadingDenseBlockCount: 1,
      sharedExpertCount: 1,
      sharedExpertFeedForwardLength: 256,
      sharedExpertGate: false,
    },
    mla: { qLoraRank: 96, kvLoraRank: 64, keyLength: 64, valueLength: 64, nopeLength: 32 },
  },
  gpt_oss: {
    architecture: 'gpt-oss',
    contextLength: 131072,
    activation: 'swiglu-oai',
    attention: {
      headCount: [4, 4],
      headCountKV: [2, 2],
      keyLength: 64,
      valueLength: 64,
      slidingWindow: 16,
      slidingLayers: [true, false],
      sinks: true,
      scale: undefined,
    },
    rope: {
      type: 'neox',
      dimensionCount: 64,
      freqBase: 150000,
      freqBaseSliding: 150000,
      scalingType: 'yarn',
      scalingFactor: 32,
      originalContextLength: 4096,
      yarnBetaFast: 32,
      yarnBetaSlow: 1,
      yarnLogMultiplier: 0,
      attnFactor: 1,
    },
    moe: {
      expertCount: 16,
      expertUsedCount: 4,
      expertFeedForwardLength: 256,
      gating: 'softmax-weight',
      normalizeWeights: false,
      ...NO_MOE_EXTRAS,
      ...NO_SHARED,
    },
    tiedEmbeddings: false,
  },
  granitemoe: {
    architecture: 'granitemoe',
    normEpsilon: f32(1e-6),
    attention: {
      headCount: [4, 4],
      headCountKV: [2, 2],
      keyLength: 64,
      valueLength: 64,
      slidingWindow: 0,
      slidingLayers: [false, false],
      sinks: false,
      scale: 1 / 64,
    },
    rope: {
      type: 'norm',
      dimensionCount: 64,
      freqBase: 10000,
      freqBaseSliding: 10000,
      originalContextLength: 4096,
      ...UNSCALED_ROPE,
    } as ModelConfig['rope'],
    moe: {
      expertCount: 10,
      expertUsedCount: 3,
      expertFeedForwardLength: 256,
      gating: 'softmax',
      normalizeWeights: true,
      ...NO_MOE_EXTRAS,
      ...NO_SHARED,
    },
    embeddingScale: 12,
    residualScale: f32(0.22),
    logitScale: 6,
    tiedEmbeddings: true,
  },
  phimoe: {
    architecture: 'phimoe',
    vocabSize: 32064,
    contextLength: 131072,
    // attention.sliding_window (131072) is ignored by llama.cpp's phimoe loader
    attention: { headCount: [2, 2], headCountKV: [1, 1], keyLength: 32, valueLength: 32, ...FULL_ATTENTION(2) },
    rope: {
      type: 'neox',
      dimensionCount: 32,
      freqBase: 10000,
      freqBaseSliding: 10000,
      originalContextLength: 4096,
      ...UNSCALED_ROPE,
      attnFactor: f32(Math.sqrt(1 + Math.log(32) / Math.log(4096))),
    } as ModelConfig['rope'],
    moe: {
      expertCount: 16,
      expertUsedCount: 2,
      expertFeedForwardLength: 256,
      gating: 'softmax',
      normalizeWeights: true,
      ...NO_MOE_EXTRAS,
      ...NO_SHARED,
    },
    ...UNSCALED,
    tiedEmbeddings: false,
  },
};

async function goldenConfig(model: GoldenModel, withTensors = true): Promise<ModelConfig> {
  const file = await GGUFFile.open(goldenPath(model, `${model}-Q4_K_M.gguf`));
  try {
    return modelConfigFromGGUF(file.metadata, withTensors ? { tensorNames: file.tensors.keys() } : {});
  } finally {
    await file.close();
  }
}

describe.skipIf(skipGolden('ModelConfig of the golden models'))('ModelConfig of the golden models', () => {
  for (const [model, expected] of Object.entries(GOLDEN) as [GoldenModel, Partial<ModelConfig>][]) {
    it(model, async () => {
      expect(await goldenConfig(model)).toMatchObject(expected);
    });
  }

  it("deepseek2's YaRN attention scale is the README's (mscale^2 / sqrt(qk_nope + qk_rope))", async () => {
    // README: 0.22945 for deepseek2_lite, 0.23423 for deepseek2_v3, mscale = 1 + 0.1 * log_mul * ln(factor)
    for (const [model, scale] of [
      ['deepseek2_lite', 0.22945],
      ['deepseek2_v3', 0.23423],
    ] as const) {
      const c = await goldenConfig(model);
      const mscale = 1 + 0.1 * c.rope.yarnLogMultiplier * Math.log(c.rope.scalingFactor);
      expect((mscale * mscale) / Math.sqrt(c.mla!.keyLength)).toBeCloseTo(scale, 4); // README rounds to 5 digits
    }
  });

  it('leaves tied embeddings undecided without tensor names; isMoELayer follows the leading dense blocks', async () => {
    expect((await goldenConfig('qwen3moe', false)).tiedEmbeddings).toBeUndefined();
    const ds = await goldenConfig('deepseek2_v3');
    expect([0, 1, 2].map((il) => isMoELayer(ds, il))).toEqual([false, true, true]);
    expect(isMoELayer(await goldenConfig('llama_dense'), 0)).toBe(false);
  });
});

// ---- synthetic metadata: defaults and errors ------------------------------------------------

const FILE = 'test.gguf';
function llama(extra: GGUFKV[] = [], drop: string[] = [], arch = 'llama'): GGUFMetadata {
  const A = arch;
  const entries = [
    kv.string('general.architecture', arch),
    kv.u32(`${A}.block_count`, 2),
    kv.u32(`${A}.context_length`, 128),
    kv.u32(`${A}.embedding_length`, 64),
    kv.u32(`${A}.feed_forward_length`, 96),
    kv.u32(`${A}.attention.head_count`, 4),
    kv.f32(`${A}.attention.layer_norm_rms_epsilon`, f32(1e-5)),
    kv.strings('tokenizer.ggml.tokens', ['a', 'b', 'c']),
  ].filter((e) => !drop.includes(e.key));
  const keys = new Set(extra.map((e) => e.key));
  return new GGUFMetadata([...entries.filter((e) => !keys.has(e.key)), ...extra], FILE);
}
function fails(m: GGUFMetadata, key: string, message: RegExp): void {
  let err: unknown;
  try {
    modelConfigFromGGUF(m);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GGUFMetadataError);
  expect((err as GGUFMetadataError).key).toBe(key);
  expect((err as Error).message).toMatch(new RegExp(`^${FILE}: metadata key '${key.replace(/\./g, '\\.')}' `));
  expect((err as Error).message).toMatch(message);
}

describe('ModelConfig defaults (llama.cpp load_hparams)', () => {
  it('head sizes n_embd / n_head, kv heads = heads, rope dims = head size, base 10000, vocab from the token list', () => {
    const c = modelConfigFromGGUF(llama());
    expect(c.vocabSize).toBe(3);
    expect(c.attention).toMatchObject({ headCount: [4, 4], headCountKV: [4, 4], keyLength: 16, valueLength: 16 });
    expect(c.rope).toMatchObject({
      type: 'norm',
      dimensionCount: 16,
      freqBase: 10000,
      scalingType: 'none',
      scalingFactor: 1,
      originalContextLength: 128,
    });
    expect(c.moe).toBeNull();
    expect(c.tiedEmbeddings).toBeUndefined();
  });
  it('per-layer head counts and FFN widths (arrays)', () => {
    const c = modelConfigFromGGUF(
      llama([
        kv.i32s('llama.attention.head_count', [4, 2]),
        kv.i32s('llama.attention.head_count_kv', [2, 1]),
        kv.i32s('llama.feed_forward_length', [96, 128]),
      ]),
    );
    expect(c.attention.headCount).toEqual([4, 2]);
    expect(c.attention.headCountKV).toEqual([2, 1]);
    expect(c.feedForwardLength).toEqual([96, 128]);
  });
  it('a scaling factor without a type is linear; the old rope.scale_linear key is read', () => {
    expect(modelConfigFromGGUF(llama([kv.f32('llama.rope.scaling.factor', 4)])).rope).toMatchObject({
      scalingType: 'linear',
      scalingFactor: 4,
    });
    expect(modelConfigFromGGUF(llama([kv.f32('llama.rope.scale_linear', 2)])).rope).toMatchObject({
      scalingType: 'linear',
      scalingFactor: 2,
    });
  });
  it('qwen2moe expert width defaults to n_ff / K and the shared width to n_ff', () => {
    const m = llama([kv.u32('qwen2moe.expert_count', 8), kv.u32('qwen2moe.expert_used_count', 2)], [], 'qwen2moe');
    expect(modelConfigFromGGUF(m).moe).toMatchObject({
      expertFeedForwardLength: 48,
      sharedExpertFeedForwardLength: 96,
      sharedExpertGate: true,
    });
  });
  it('deepseek2 without expert_gating_func is softmax (older DeepSeek V2 GGUFs)', () => {
    const m = llama(
      [
        kv.u32('deepseek2.expert_count', 4),
        kv.u32('deepseek2.expert_used_count', 2),
        kv.u32('deepseek2.expert_feed_forward_length', 32),
        kv.u32('deepseek2.expert_shared_count', 1),
        kv.u32('deepseek2.attention.kv_lora_rank', 16),
        kv.u32('deepseek2.rope.dimension_count', 8),
        kv.u32('deepseek2.attention.key_length', 24),
      ],
      [],
      'deepseek2',
    );
    const c = modelConfigFromGGUF(m);
    expect(c.moe).toMatchObject({ gating: 'softmax', normalizeWeights: false, weightsScale: 1, sharedExpertFeedForwardLength: 32 });
    // No _mla keys: the per-head sizes are the plain ones (older GGUFs).
    expect(c.mla).toEqual({ qLoraRank: 0, kvLoraRank: 16, keyLength: 24, valueLength: 16, nopeLength: 16 });
  });
  it('gpt-oss sliding_window_pattern: every period-th layer is full', () => {
    const m = llama(
      [
        kv.u32('gpt-oss.block_count', 6),
        kv.u32('gpt-oss.expert_count', 4),
        kv.u32('gpt-oss.expert_used_count', 2),
        kv.u32('gpt-oss.expert_feed_forward_length', 32),
        kv.u32('gpt-oss.attention.sliding_window', 8),
        kv.u32('gpt-oss.attention.sliding_window_pattern', 3),
      ],
      [],
      'gpt-oss',
    );
    expect(modelConfigFromGGUF(m).attention.slidingLayers).toEqual([true, true, false, true, true, false]);
  });
});

describe('bad metadata gets a typed error naming the file and key', () => {
  it('unknown architecture lists the supported ones', () => {
    let err: unknown;
    try {
      modelConfigFromGGUF(llama([], [], 'mamba'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedArchitectureError);
    expect((err as UnsupportedArchitectureError).code).toBe('E_UNSUPPORTED_ARCHITECTURE');
    expect((err as Error).message).toBe(
      `${FILE}: architecture 'mamba' is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`,
    );
  });
  it('missing required keys', () => {
    fails(llama([], ['llama.block_count']), 'llama.block_count', /is missing/);
    fails(llama([], ['llama.embedding_length']), 'llama.embedding_length', /is missing/);
    fails(llama([], ['llama.attention.head_count']), 'llama.attention.head_count', /is missing/);
    fails(llama([], ['llama.attention.layer_norm_rms_epsilon']), 'llama.attention.layer_norm_rms_epsilon', /is missing/);
    fails(llama([], ['tokenizer.ggml.tokens']), 'llama.vocab_size', /is missing and there is no tokenizer.ggml.tokens list/);
    expect(() => modelConfigFromGGUF(new GGUFMetadata([], FILE))).toThrow(/'general.architecture' is missing/);
    const granite = llama([], [], 'granitemoe');
    fails(granite, 'granitemoe.expert_count', /needs experts/);
    fails(
      llama(
        [kv.u32('gpt-oss.expert_count', 4), kv.u32('gpt-oss.expert_used_count', 2), kv.u32('gpt-oss.expert_feed_forward_length', 8)],
        [],
        'gpt-oss',
      ),
      'gpt-oss.attention.sliding_window',
      /is missing/,
    );
  });
  it('wrong types', () => {
    fails(llama([kv.string('llama.block_count', '2')]), 'llama.block_count', /has type string, expected an integer/);
    fails(llama([kv.string('llama.rope.freq_base', 'big')]), 'llama.rope.freq_base', /expected a number/);
    fails(llama([kv.u32('llama.rope.scaling.type', 1)]), 'llama.rope.scaling.type', /expected a string/);
    fails(llama([kv.f32('llama.rope.freq_base', Number.NaN)]), 'llama.rope.freq_base', /is NaN, expected a finite number/);
  });
  it('absurd counts are refused before anything is allocated', () => {
    fails(llama([kv.u32('llama.block_count', 4_000_000_000)]), 'llama.block_count', new RegExp(`expected 0\\.\\.${MAX_LAYERS}`));
    fails(llama([kv.u32('llama.block_count', 0)]), 'llama.block_count', /expected a positive count/);
    fails(llama([kv.i32('llama.embedding_length', -64)]), 'llama.embedding_length', /is -64/);
    fails(llama([kv.u32('llama.expert_count', 100_000)]), 'llama.expert_count', /expected 0\.\.512/);
    fails(
      llama([{ key: 'llama.context_length', type: GGUFValueType.UINT64, value: 2n ** 40n }]),
      'llama.context_length',
      /expected 0\.\.4294967295/,
    );
  });
  it('inconsistent values', () => {
    fails(
      llama([kv.i32s('llama.attention.head_count', [4, 4, 4])]),
      'llama.attention.head_count',
      /has 3 values, expected one per layer \(2\)/,
    );
    fails(llama([kv.u32('llama.attention.head_count_kv', 3)]), 'llama.attention.head_count_kv', /layer 0: 4 heads, 3 kv heads/);
    fails(llama([kv.u32('llama.vocab_size', 5)]), 'llama.vocab_size', /is 5 but tokenizer.ggml.tokens has 3 entries/);
    fails(llama([kv.u32('llama.rope.dimension_count', 8)]), 'llama.rope.dimension_count', /llama needs the head size 16/);
    fails(llama([kv.u32('llama.rope.dimension_count', 7)]), 'llama.rope.dimension_count', /expected an even count/);
    fails(
      llama([kv.u32('llama.expert_count', 8), kv.u32('llama.expert_used_count', 9)]),
      'llama.expert_used_count',
      /is 9, expected 0\.\.8/,
    );
    fails(llama([kv.u32('llama.expert_count', 8)]), 'llama.expert_used_count', /is missing or 0/);
    fails(
      llama([
        kv.u32('llama.expert_count', 8),
        kv.u32('llama.expert_used_count', 2),
        kv.u32('llama.expert_group_count', 3),
        kv.u32('llama.expert_group_used_count', 1),
      ]),
      'llama.expert_group_count',
      /groups must divide the experts/,
    );
    fails(
      llama([kv.string('llama.rope.scaling.type', 'ntk')]),
      'llama.rope.scaling.type',
      /is 'ntk', expected one of none, linear, yarn, longrope/,
    );
    const granite = [kv.u32('granitemoe.expert_count', 4), kv.u32('granitemoe.expert_used_count', 2)];
    fails(llama(granite, [], 'granitemoe'), 'granitemoe.logit_scale', /is missing/);
    fails(llama([...granite, kv.f32('granitemoe.logit_scale', 0)], [], 'granitemoe'), 'granitemoe.logit_scale', /is 0/);
    const ds = [
      kv.u32('deepseek2.expert_count', 4),
      kv.u32('deepseek2.expert_used_count', 2),
      kv.u32('deepseek2.expert_feed_forward_length', 32),
      kv.u32('deepseek2.expert_shared_count', 1),
      kv.u32('deepseek2.attention.kv_lora_rank', 16),
      kv.u32('deepseek2.rope.dimension_count', 8),
    ];
    fails(
      llama([...ds, kv.u32('deepseek2.expert_gating_func', 3)], [], 'deepseek2'),
      'deepseek2.expert_gating_func',
      /is 3, expected 1 \(softmax\) or 2 \(sigmoid\)/,
    );
    fails(
      llama([...ds, kv.u32('deepseek2.attention.key_length_mla', 8)], [], 'deepseek2'),
      'deepseek2.attention.key_length_mla',
      /must exceed rope.dimension_count/,
    );
  });
});
