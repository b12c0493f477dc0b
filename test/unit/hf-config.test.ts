// Hugging Face config.json <-> GGUF hyper-parameters (src/weights/hf/config.ts).
// Independent references: (1) real config.json files (test/fixtures/hf-config, see its README)
// whose expected GGUF entries below were derived by reading llama.cpp d32676d77's
// convert_hf_to_gguf.py (conversion/base.py TextModel.set_gguf_parameters + the model classes)
// and gguf_writer.py (value types); (2) the golden GGUF files llama.cpp ran: GGUF -> config.json
// -> GGUF must give their entries back, key for key and in order, and the same ModelConfig.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GGUF_VALUE_TYPE_NAMES, GGUFFile, type GGUFKV, GGUFMetadata, GGUFMetadataError, kv } from '../../src/formats/gguf/index.js';
import { modelConfigFromGGUF } from '../../src/models/config.js';
import {
  ggufMetadataFromHuggingFaceConfig,
  HFConfigError,
  huggingFaceConfigFromGGUF,
  ropeTensorsFromHuggingFaceConfig,
} from '../../src/weights/hf/config.js';
import { GOLDEN_MODELS, goldenPath, REPO_ROOT, skipGolden } from '../helpers/golden.js';

const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/hf-config');
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8'));
// biome-ignore lint/suspicious/noApproximativeNumericConstant: DeepSeek-V2-Lite's published mscale, not sqrt(1/2)
const V2_LITE_MSCALE = 0.707;
const f32 = (key: string, v: number) => kv.f32(key, Math.fround(v));
const show = (e: GGUFKV) => `${e.key} ${GGUF_VALUE_TYPE_NAMES[e.type]} ${String(e.value)}`;
/** Same entries (keys, types, values), in any order: the converter's key order differs from the goldens'. */
const asSet = (list: GGUFKV[]) => list.map(show).sort();

// ---- (1) real configs -> what convert_hf_to_gguf.py writes -----------------------------------
// Each list is the converter's output for the fixture, minus general.file_type (the caller's).
const EXPECTED: Record<string, GGUFKV[]> = {
  // LlamaModel: base keys (head_dim -> key/value length), then vocab_size and rope dims = head_dim;
  // rope_type llama3 writes no key (generate_extra_tensors makes rope_freqs.weight instead).
  llama: [
    kv.string('general.architecture', 'llama'),
    kv.u32('llama.block_count', 16),
    kv.u32('llama.context_length', 131072),
    kv.u32('llama.embedding_length', 2048),
    kv.u32('llama.feed_forward_length', 8192),
    kv.u32('llama.attention.head_count', 32),
    kv.u32('llama.attention.head_count_kv', 8),
    f32('llama.rope.freq_base', 500000),
    f32('llama.attention.layer_norm_rms_epsilon', 1e-5),
    kv.u32('llama.attention.key_length', 64),
    kv.u32('llama.attention.value_length', 64),
    kv.u32('llama.vocab_size', 128256),
    kv.u32('llama.rope.dimension_count', 64),
  ],
  // MixtralForCausalLM is LlamaModel: num_local_experts / num_experts_per_tok; rope dims = 4096 / 32.
  mixtral: [
    kv.string('general.architecture', 'llama'),
    kv.u32('llama.block_count', 32),
    kv.u32('llama.context_length', 32768),
    kv.u32('llama.embedding_length', 4096),
    kv.u32('llama.feed_forward_length', 14336),
    kv.u32('llama.attention.head_count', 32),
    kv.u32('llama.attention.head_count_kv', 8),
    f32('llama.rope.freq_base', 1e6),
    f32('llama.attention.layer_norm_rms_epsilon', 1e-5),
    kv.u32('llama.expert_count', 8),
    kv.u32('llama.expert_used_count', 2),
    kv.u32('llama.vocab_size', 32000),
    kv.u32('llama.rope.dimension_count', 128),
  ],
  // Qwen2MoeModel: base keys (num_experts), then moe_intermediate_size and the shared expert width.
  qwen2_moe: [
    kv.string('general.architecture', 'qwen2moe'),
    kv.u32('qwen2moe.block_count', 24),
    kv.u32('qwen2moe.context_length', 8192),
    kv.u32('qwen2moe.embedding_length', 2048),
    kv.u32('qwen2moe.feed_forward_length', 5632),
    kv.u32('qwen2moe.attention.head_count', 16),
    kv.u32('qwen2moe.attention.head_count_kv', 16),
    f32('qwen2moe.rope.freq_base', 1e6),
    f32('qwen2moe.attention.layer_norm_rms_epsilon', 1e-6),
    kv.u32('qwen2moe.expert_count', 60),
    kv.u32('qwen2moe.expert_used_count', 4),
    kv.u32('qwen2moe.expert_feed_forward_length', 1408),
    kv.u32('qwen2moe.expert_shared_feed_forward_length', 5632),
  ],
  // Qwen3MoeModel(Qwen2MoeModel): head_dim 128 -> key/value length; rope_scaling null -> nothing.
  qwen3_moe: [
    kv.string('general.architecture', 'qwen3moe'),
    kv.u32('qwen3moe.block_count', 48),
    kv.u32('qwen3moe.context_length', 40960),
    kv.u32('qwen3moe.embedding_length', 2048),
    kv.u32('qwen3moe.feed_forward_length', 6144),
    kv.u32('qwen3moe.attention.head_count', 32),
    kv.u32('qwen3moe.attention.head_count_kv', 4),
    f32('qwen3moe.rope.freq_base', 1e6),
    f32('qwen3moe.attention.layer_norm_rms_epsilon', 1e-6),
    kv.u32('qwen3moe.expert_count', 128),
    kv.u32('qwen3moe.expert_used_count', 8),
    kv.u32('qwen3moe.attention.key_length', 128),
    kv.u32('qwen3moe.attention.value_length', 128),
    kv.u32('qwen3moe.expert_feed_forward_length', 768),
  ],
  // OlmoeModel: base keys; rms eps re-written as 1e-5 (the config's value too).
  olmoe: [
    kv.string('general.architecture', 'olmoe'),
    kv.u32('olmoe.block_count', 16),
    kv.u32('olmoe.context_length', 4096),
    kv.u32('olmoe.embedding_length', 2048),
    kv.u32('olmoe.feed_forward_length', 1024),
    kv.u32('olmoe.attention.head_count', 16),
    kv.u32('olmoe.attention.head_count_kv', 16),
    f32('olmoe.rope.freq_base', 10000),
    f32('olmoe.attention.layer_norm_rms_epsilon', 1e-5),
    kv.u32('olmoe.expert_count', 64),
    kv.u32('olmoe.expert_used_count', 8),
  ],
  // DeepseekV2Model: num_key_value_heads forced to 1; YaRN keys from rope_scaling ("type": "yarn");
  // n_group/topk_group/scoring_func from base; MLA lengths kv_lora + rope, kv_lora, nope + rope, v;
  // routed_scaling_factor; norm_topk_prob false -> no key; yarn_log_multiplier = 0.1 * mscale_all_dim.
  deepseek_v2: [
    kv.string('general.architecture', 'deepseek2'),
    kv.u32('deepseek2.block_count', 27),
    kv.u32('deepseek2.context_length', 163840),
    kv.u32('deepseek2.embedding_length', 2048),
    kv.u32('deepseek2.feed_forward_length', 10944),
    kv.u32('deepseek2.attention.head_count', 16),
    kv.u32('deepseek2.attention.head_count_kv', 1),
    kv.string('deepseek2.rope.scaling.type', 'yarn'),
    f32('deepseek2.rope.scaling.factor', 40),
    kv.u32('deepseek2.rope.scaling.original_context_length', 4096),
    f32('deepseek2.rope.scaling.yarn_beta_fast', 32),
    f32('deepseek2.rope.scaling.yarn_beta_slow', 1),
    f32('deepseek2.rope.freq_base', 10000),
    f32('deepseek2.attention.layer_norm_rms_epsilon', 1e-6),
    kv.u32('deepseek2.expert_count', 64),
    kv.u32('deepseek2.expert_used_count', 6),
    kv.u32('deepseek2.expert_group_count', 1),
    kv.u32('deepseek2.expert_group_used_count', 1),
    kv.u32('deepseek2.expert_gating_func', 1),
    kv.u32('deepseek2.leading_dense_block_count', 1),
    kv.u32('deepseek2.vocab_size', 102400),
    kv.u32('deepseek2.attention.kv_lora_rank', 512),
    kv.u32('deepseek2.attention.key_length', 576),
    kv.u32('deepseek2.attention.value_length', 512),
    kv.u32('deepseek2.attention.key_length_mla', 192),
    kv.u32('deepseek2.attention.value_length_mla', 128),
    kv.u32('deepseek2.expert_feed_forward_length', 1408),
    kv.u32('deepseek2.expert_shared_count', 2),
    f32('deepseek2.expert_weights_scale', 1),
    kv.u32('deepseek2.rope.dimension_count', 64),
    f32('deepseek2.rope.scaling.yarn_log_multiplier', 0.1 * V2_LITE_MSCALE),
    // Deliberate difference (src/weights/hf/config.ts header): q_lora_rank null -> 0, not omitted.
    kv.u32('deepseek2.attention.q_lora_rank', 0),
  ],
  deepseek_v3: [
    kv.string('general.architecture', 'deepseek2'),
    kv.u32('deepseek2.block_count', 61),
    kv.u32('deepseek2.context_length', 163840),
    kv.u32('deepseek2.embedding_length', 7168),
    kv.u32('deepseek2.feed_forward_length', 18432),
    kv.u32('deepseek2.attention.head_count', 128),
    kv.u32('deepseek2.attention.head_count_kv', 1),
    kv.string('deepseek2.rope.scaling.type', 'yarn'),
    f32('deepseek2.rope.scaling.factor', 40),
    kv.u32('deepseek2.rope.scaling.original_context_length', 4096),
    f32('deepseek2.rope.scaling.yarn_beta_fast', 32),
    f32('deepseek2.rope.scaling.yarn_beta_slow', 1),
    f32('deepseek2.rope.freq_base', 10000),
    f32('deepseek2.attention.layer_norm_rms_epsilon', 1e-6),
    kv.u32('deepseek2.expert_count', 256),
    kv.u32('deepseek2.expert_used_count', 8),
    kv.u32('deepseek2.expert_group_count', 8),
    kv.u32('deepseek2.expert_group_used_count', 4),
    kv.u32('deepseek2.expert_gating_func', 2),
    kv.u32('deepseek2.leading_dense_block_count', 3),
    kv.u32('deepseek2.vocab_size', 129280),
    kv.u32('deepseek2.attention.q_lora_rank', 1536),
    kv.u32('deepseek2.attention.kv_lora_rank', 512),
    kv.u32('deepseek2.attention.key_length', 576),
    kv.u32('deepseek2.attention.value_length', 512),
    kv.u32('deepseek2.attention.key_length_mla', 192),
    kv.u32('deepseek2.attention.value_length_mla', 128),
    kv.u32('deepseek2.expert_feed_forward_length', 2048),
    kv.u32('deepseek2.expert_shared_count', 1),
    f32('deepseek2.expert_weights_scale', 2.5),
    kv.bool('deepseek2.expert_weights_norm', true),
    kv.u32('deepseek2.rope.dimension_count', 64),
    f32('deepseek2.rope.scaling.yarn_log_multiplier', 0.1 * 1.0),
  ],
  // GptOssModel: base keys (rope_type yarn with beta_fast/slow), then sliding_window and the expert width.
  gpt_oss: [
    kv.string('general.architecture', 'gpt-oss'),
    kv.u32('gpt-oss.block_count', 24),
    kv.u32('gpt-oss.context_length', 131072),
    kv.u32('gpt-oss.embedding_length', 2880),
    kv.u32('gpt-oss.feed_forward_length', 2880),
    kv.u32('gpt-oss.attention.head_count', 64),
    kv.u32('gpt-oss.attention.head_count_kv', 8),
    kv.string('gpt-oss.rope.scaling.type', 'yarn'),
    f32('gpt-oss.rope.scaling.factor', 32),
    kv.u32('gpt-oss.rope.scaling.original_context_length', 4096),
    f32('gpt-oss.rope.scaling.yarn_beta_fast', 32),
    f32('gpt-oss.rope.scaling.yarn_beta_slow', 1),
    f32('gpt-oss.rope.freq_base', 150000),
    f32('gpt-oss.attention.layer_norm_rms_epsilon', 1e-5),
    kv.u32('gpt-oss.expert_count', 32),
    kv.u32('gpt-oss.expert_used_count', 4),
    kv.u32('gpt-oss.attention.key_length', 64),
    kv.u32('gpt-oss.attention.value_length', 64),
    kv.u32('gpt-oss.attention.sliding_window', 128),
    kv.u32('gpt-oss.expert_feed_forward_length', 2880),
  ],
  // GraniteMoeModel(GraniteModel(LlamaModel)): rope dims = 1024 / 16; the four multipliers.
  granitemoe: [
    kv.string('general.architecture', 'granitemoe'),
    kv.u32('granitemoe.block_count', 24),
    kv.u32('granitemoe.context_length', 4096),
    kv.u32('granitemoe.embedding_length', 1024),
    kv.u32('granitemoe.feed_forward_length', 512),
    kv.u32('granitemoe.attention.head_count', 16),
    kv.u32('granitemoe.attention.head_count_kv', 8),
    f32('granitemoe.rope.freq_base', 10000),
    f32('granitemoe.attention.layer_norm_rms_epsilon', 1e-6),
    kv.u32('granitemoe.expert_count', 32),
    kv.u32('granitemoe.expert_used_count', 8),
    kv.u32('granitemoe.vocab_size', 49155),
    kv.u32('granitemoe.rope.dimension_count', 64),
    f32('granitemoe.attention.scale', 0.015625),
    f32('granitemoe.embedding_scale', 12),
    f32('granitemoe.residual_scale', 0.22),
    f32('granitemoe.logit_scale', 6),
  ],
  // PhiMoeModel(Phi3MiniModel): its own key set; attn_factor = sqrt(1 + ln(131072/4096) / ln(4096)).
  phimoe: [
    kv.string('general.architecture', 'phimoe'),
    kv.u32('phimoe.context_length', 131072),
    kv.u32('phimoe.rope.scaling.original_context_length', 4096),
    kv.u32('phimoe.embedding_length', 4096),
    kv.u32('phimoe.feed_forward_length', 6400),
    kv.u32('phimoe.block_count', 32),
    kv.u32('phimoe.attention.head_count', 32),
    kv.u32('phimoe.attention.head_count_kv', 8),
    f32('phimoe.attention.layer_norm_rms_epsilon', 1e-5),
    kv.u32('phimoe.rope.dimension_count', 128),
    f32('phimoe.rope.freq_base', 10000),
    kv.u32('phimoe.attention.sliding_window', 131072),
    kv.u32('phimoe.expert_used_count', 2),
    kv.u32('phimoe.expert_count', 16),
    f32('phimoe.rope.scaling.attn_factor', 1.1902380714238083),
  ],
};

describe('config.json -> GGUF metadata, as convert_hf_to_gguf.py writes it', () => {
  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`${name}.json`, () => {
      const got = ggufMetadataFromHuggingFaceConfig(fixture(name), { file: `${name}.json` });
      expect(asSet(got)).toEqual(asSet(expected));
      expect(got[0]).toEqual(expected[0]); // general.architecture first
    });
  }

  it('Phi-MoE LongRoPE factors become rope_factors_long/short tensors', () => {
    const config = fixture('phimoe');
    const scaling = config.rope_scaling as { long_factor: number[]; short_factor: number[] };
    const tensors = ropeTensorsFromHuggingFaceConfig(config);
    expect(tensors.map((t) => t.name)).toEqual(['rope_factors_long.weight', 'rope_factors_short.weight']);
    expect(tensors[0].values).toEqual(Float32Array.from(scaling.long_factor));
    expect(tensors[1].values).toEqual(Float32Array.from(scaling.short_factor));
  });

  it('Llama 3 rope scaling becomes the rope_freqs tensor (values from llama.py generate_extra_tensors)', () => {
    const [t] = ropeTensorsFromHuggingFaceConfig(fixture('llama'));
    expect(t.name).toBe('rope_freqs.weight');
    expect(t.values.length).toBe(32);
    // Computed with numpy float32 from the converter's formula (base 500000, factor 32, low 1, high 4, 8192).
    const expected = [...new Array(15).fill(1), 1.6513292789459229, 3.2922627925872803, 9.666730880737305, ...new Array(14).fill(32)];
    for (const [i, v] of t.values.entries()) expect(v).toBeCloseTo(expected[i], 5);
  });

  it('other configs derive no tensors', () => {
    for (const name of ['mixtral', 'qwen3_moe', 'deepseek_v3', 'gpt_oss'])
      expect(ropeTensorsFromHuggingFaceConfig(fixture(name))).toEqual([]);
  });

  it('model_type alone, text_config nesting and transformers 5 rope_parameters are understood', () => {
    const base = fixture('qwen3_moe');
    const expected = asSet(EXPECTED.qwen3_moe);
    const { architectures: _, ...noArchs } = base;
    expect(asSet(ggufMetadataFromHuggingFaceConfig(noArchs))).toEqual(expected);
    expect(asSet(ggufMetadataFromHuggingFaceConfig({ architectures: base.architectures, model_type: 'x', text_config: noArchs }))).toEqual(
      expected,
    );
    const { rope_theta: __, ...noTheta } = base;
    const v5 = { ...noTheta, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } };
    expect(asSet(ggufMetadataFromHuggingFaceConfig(v5))).toEqual(expected);
  });

  it('linear rope scaling writes type and factor', () => {
    const got = ggufMetadataFromHuggingFaceConfig({ ...fixture('mixtral'), rope_scaling: { type: 'linear', factor: 4 } });
    expect(got.map(show)).toContain('llama.rope.scaling.type string linear');
    expect(got.map(show)).toContain('llama.rope.scaling.factor float32 4');
  });
});

// ---- bad config.json ------------------------------------------------------------------------

describe('a bad config.json gets an HFConfigError naming the file and field', () => {
  const bad = (config: unknown, field: RegExp | string) => {
    let err: unknown;
    try {
      ggufMetadataFromHuggingFaceConfig(config, { file: 'models/x/config.json' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HFConfigError);
    expect((err as HFConfigError).code).toBe('E_HF_CONFIG');
    expect((err as Error).message).toMatch(/^models\/x\/config\.json: /);
    expect((err as Error).message).toMatch(field);
    return (err as Error).message;
  };
  const mixtral = () => fixture('mixtral');

  it('not an object', () => {
    bad([1, 2], /\(root\)' is not a JSON object/);
    bad(null, /not a JSON object/);
  });
  it('unknown architecture, listing the supported ones', () => {
    const msg = bad({ ...mixtral(), architectures: ['MambaForCausalLM'] }, /'architectures' names architectures \["MambaForCausalLM"\]/);
    expect(msg).toMatch(/supported: LlamaForCausalLM \(llama\), MixtralForCausalLM \(mixtral\)/);
    expect(msg).toMatch(/PhiMoEForCausalLM \(phimoe\)/);
    const { architectures: _, ...noArchs } = mixtral();
    bad({ ...noArchs, model_type: 'mamba' }, /'model_type' names model_type "mamba"/);
    bad({ ...mixtral(), architectures: 'MixtralForCausalLM' }, /'architectures' is "MixtralForCausalLM", expected an array/);
  });
  it('missing required fields', () => {
    const { num_hidden_layers: _, ...noLayers } = mixtral();
    bad(noLayers, /'n_layers' or 'num_hidden_layers' or 'n_layer' or 'num_layers' is missing/);
    const { vocab_size: __, ...noVocab } = mixtral();
    bad(noVocab, /'vocab_size' is missing/);
    const { rms_norm_eps: ___, ...noEps } = mixtral();
    bad(noEps, /'rms_norm_eps' or 'norm_eps' is missing/);
    const { original_max_position_embeddings: ____, rope_scaling: _____, ...noOrig } = fixture('phimoe');
    bad(noOrig, /'original_max_position_embeddings' is missing, expected a positive integer/);
    bad({ ...fixture('gpt_oss'), sliding_window: null }, /'sliding_window' is missing/);
    const { qk_rope_head_dim: ______, ...noRope } = fixture('deepseek_v3');
    bad(noRope, /'qk_rope_head_dim' is missing/);
  });
  it('wrong types and values', () => {
    bad({ ...mixtral(), hidden_size: '4096' }, /'hidden_size' is "4096", expected an integer/);
    bad({ ...mixtral(), num_hidden_layers: 2.5 }, /'num_hidden_layers' is 2.5/);
    bad({ ...mixtral(), num_hidden_layers: 0 }, /'num_hidden_layers' is 0, expected an integer from 1/);
    bad({ ...mixtral(), num_local_experts: -8 }, /'num_local_experts' is -8/);
    bad({ ...mixtral(), vocab_size: 2 ** 32 }, /'vocab_size' is 4294967296/);
    bad({ ...mixtral(), rms_norm_eps: 'tiny' }, /'rms_norm_eps' is "tiny", expected a finite number/);
    bad({ ...mixtral(), rope_theta: 1e39 }, /'rope_theta' is 1e\+39, expected a finite number/);
    bad({ ...fixture('deepseek_v3'), norm_topk_prob: 'yes' }, /'norm_topk_prob' is "yes", expected true or false/);
    bad({ ...fixture('deepseek_v3'), scoring_func: 'relu' }, /'scoring_func' is 'relu', expected 'softmax' or 'sigmoid'/);
    bad({ ...mixtral(), rope_scaling: 'yarn' }, /'rope_scaling' is "yarn", expected an object/);
    bad({ ...mixtral(), rope_scaling: { type: 'dynamic', factor: 2 } }, /'rope_scaling' has rope type 'dynamic'/);
    bad(
      { ...mixtral(), rope_scaling: { rope_type: 'yarn', factor: 4 } },
      /'rope_scaling.original_max_position_embeddings' is missing, YaRN needs/,
    );
  });
  it('Phi-MoE factor arrays of the wrong length or type', () => {
    const phi = fixture('phimoe');
    const scaling = phi.rope_scaling as Record<string, unknown>;
    const short = (scaling.short_factor as number[]).slice(1);
    expect(() => ropeTensorsFromHuggingFaceConfig({ ...phi, rope_scaling: { ...scaling, short_factor: short } })).toThrow(
      /'rope_scaling.long_factor' has 64 values and short_factor 63: both must have rope_dims \/ 2 = 64/,
    );
    expect(() => ropeTensorsFromHuggingFaceConfig({ ...phi, rope_scaling: { ...scaling, short_factor: ['1'] } })).toThrow(HFConfigError);
    expect(() => ggufMetadataFromHuggingFaceConfig({ ...phi, rope_scaling: { ...scaling, type: 'dynamic' } })).toThrow(
      /'rope_scaling.type' is "dynamic", expected 'longrope'/,
    );
  });
});

// ---- (2) golden GGUF -> config.json -> GGUF ------------------------------------------------

/** Entries the converter does not produce: general.* bookkeeping and the tokenizer (another converter's). */
const notHyperParameter = (key: string) =>
  key.startsWith('tokenizer.') || ['general.type', 'general.name', 'general.file_type', 'general.quantization_version'].includes(key);

async function floats(file: GGUFFile, name: string): Promise<Float32Array> {
  const bytes = await file.read(name);
  return new Float32Array(bytes.slice().buffer);
}

describe.skipIf(skipGolden('golden GGUF -> config.json -> GGUF'))('golden GGUF -> config.json -> GGUF', () => {
  for (const model of GOLDEN_MODELS) {
    it(model, async () => {
      // The Q4_K_M variants carry the F32 masters' metadata (llama-quantize only moves general.file_type).
      const file = await GGUFFile.open(goldenPath(model, `${model}-Q4_K_M.gguf`));
      try {
        const m = file.metadata;
        const hasFactors = file.tensors.has('rope_factors_long.weight');
        const ropeFactors = hasFactors
          ? { long: await floats(file, 'rope_factors_long.weight'), short: await floats(file, 'rope_factors_short.weight') }
          : undefined;
        const config = huggingFaceConfigFromGGUF(m, { tensorNames: file.tensors.keys(), ropeFactors });
        const json = JSON.parse(JSON.stringify(config)); // what a config.json file holds
        const back = ggufMetadataFromHuggingFaceConfig(json, { file: `${model}/config.json` });
        // Same keys, types and values, in the golden order.
        expect(back.map(show)).toEqual(m.entries.filter((e) => !notHyperParameter(e.key)).map(show));

        // The same ModelConfig (with the tokenizer entries, which a real conversion also writes).
        const tokenizer = m.entries.filter((e) => e.key.startsWith('tokenizer.'));
        const names = [...file.tensors.keys()];
        expect(modelConfigFromGGUF(new GGUFMetadata([...back, ...tokenizer], 'converted.gguf'), { tensorNames: names })).toEqual(
          modelConfigFromGGUF(m, { tensorNames: names }),
        );

        // LongRoPE factors survive bit for bit.
        const tensors = ropeTensorsFromHuggingFaceConfig(json);
        if (ropeFactors) {
          expect(tensors.map((t) => t.name)).toEqual(['rope_factors_long.weight', 'rope_factors_short.weight']);
          expect(tensors[0].values).toEqual(ropeFactors.long);
          expect(tensors[1].values).toEqual(ropeFactors.short);
        } else {
          expect(tensors).toEqual([]);
        }
      } finally {
        await file.close();
      }
    });
  }

  it('the exported configs read like the Hugging Face ones', async () => {
    const config = async (model: string) => {
      const file = await GGUFFile.open(goldenPath(model, `${model}-Q4_K_M.gguf`));
      try {
        return huggingFaceConfigFromGGUF(file.metadata, { tensorNames: file.tensors.keys() });
      } finally {
        await file.close();
      }
    };
    expect(await config('llama_dense')).toMatchObject({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: 64,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 64,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: true,
      vocab_size: 32000,
    });
    expect(await config('mixtral')).toMatchObject({ architectures: ['MixtralForCausalLM'], num_local_experts: 8, num_experts_per_tok: 2 });
    expect(await config('qwen2moe')).toMatchObject({
      model_type: 'qwen2_moe',
      shared_expert_intermediate_size: 256,
      norm_topk_prob: false,
    });
    expect(await config('deepseek2_lite')).toMatchObject({
      architectures: ['DeepseekV2ForCausalLM'],
      q_lora_rank: null,
      num_key_value_heads: 8,
      qk_nope_head_dim: 32,
      qk_rope_head_dim: 16,
      v_head_dim: 32,
      scoring_func: 'softmax',
      rope_scaling: {
        type: 'yarn',
        factor: 40,
        mscale: V2_LITE_MSCALE,
        mscale_all_dim: V2_LITE_MSCALE,
        original_max_position_embeddings: 4096,
      },
    });
    expect(await config('deepseek2_v3')).toMatchObject({
      architectures: ['DeepseekV3ForCausalLM'],
      scoring_func: 'sigmoid',
      topk_method: 'noaux_tc',
      n_group: 4,
      topk_group: 2,
      norm_topk_prob: true,
      routed_scaling_factor: 2.5,
      q_lora_rank: 96,
    });
    expect(await config('gpt_oss')).toMatchObject({ sliding_window: 16, layer_types: ['sliding_attention', 'full_attention'] });
    expect(await config('granitemoe')).toMatchObject({
      attention_multiplier: 0.015625,
      embedding_multiplier: 12,
      residual_multiplier: 0.22,
      logits_scaling: 6,
    });
    // Without the factor tensors, rope_scaling lacks the arrays (the caller adds them).
    expect((await config('phimoe')).rope_scaling).toEqual({
      type: 'longrope',
      long_mscale: 1.1902381,
      short_mscale: 1.1902381,
      original_max_position_embeddings: 4096,
    });
  });
});

describe('GGUF metadata a config.json cannot express', () => {
  const meta = (entries: GGUFKV[]) => new GGUFMetadata([kv.string('general.architecture', 'llama'), ...entries], 'odd.gguf');
  const base = [
    kv.u32('llama.block_count', 2),
    kv.u32('llama.context_length', 128),
    kv.u32('llama.embedding_length', 64),
    kv.u32('llama.vocab_size', 100),
  ];
  it('per-layer head counts', () => {
    expect(() => huggingFaceConfigFromGGUF(meta([...base, kv.i32s('llama.attention.head_count', [4, 8])]))).toThrow(
      /odd\.gguf: metadata key 'llama.attention.head_count' has one value per layer/,
    );
  });
  it('different key and value head sizes', () => {
    const m = meta([
      ...base,
      kv.u32('llama.attention.head_count', 4),
      kv.u32('llama.attention.key_length', 16),
      kv.u32('llama.attention.value_length', 32),
    ]);
    expect(() => huggingFaceConfigFromGGUF(m)).toThrow(GGUFMetadataError);
  });
  it('(tensor names may be a one-shot iterator, as Map.keys() is)', () => {
    const m = meta([...base, kv.u32('llama.attention.head_count', 4)]);
    const names = new Map([['output.weight', 0]]).keys();
    expect(huggingFaceConfigFromGGUF(m, { tensorNames: names }).tie_word_embeddings).toBe(false);
  });
  it('an architecture without an exporter', () => {
    const m = new GGUFMetadata([kv.string('general.architecture', 'mamba')], 'm.gguf');
    expect(() => huggingFaceConfigFromGGUF(m)).toThrow(/general.architecture' is 'mamba', which has no Hugging Face export/);
  });
});
