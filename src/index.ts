/**
 * Switchyard's public API. Everything a user imports comes from here; types included.
 * Data flows one way: file -> weights -> model -> router -> experts -> tokens.
 */
export { DTYPES, GGMLType, KERNEL_DTYPES, dtypeByName, dtypeInfo, rowBytes, dotRowBytes } from './core/dtypes.js';
export type { DTypeInfo, GGMLTypeName } from './core/dtypes.js';
export {
  CapabilityError,
  InvalidArgumentError,
  KernelError,
  OutOfMemoryError,
  SwitchyardError,
  UnsupportedTypeError,
} from './core/errors.js';
export { Arena, Heap, MAX_HEAP_BYTES, fmtBytes } from './core/heap.js';
export type { Allocation, HeapOptions } from './core/heap.js';
export { Tensor, allocTensor, f32Tensor, i32Tensor } from './core/tensor.js';
export type {
  AttentionParams,
  ExpertActivation,
  ExpertGroupArgs,
  ExpertWeights,
  KernelBackend,
  KernelBackendName,
  RopeParams,
} from './kernels/backend.js';
export { probeCapabilities } from './kernels/capabilities.js';
export type { Capabilities } from './kernels/capabilities.js';
export { KERNEL_CHOICES, createDevice, parseKernelChoice, parseThreads } from './kernels/device.js';
export type { Device, DeviceOptions, KernelChoice } from './kernels/device.js';
export { DeviceSet } from './kernels/device-set.js';
export { RefBackend } from './kernels/ref/index.js';

// Formats: GGUF and safetensors files (no model knowledge).
export {
  GGUFError,
  GGUFFile,
  GGUFMetadata,
  GGUFMetadataError,
  GGUFValueType,
  kv,
  layoutGGUF,
  rewriteGGUF,
  writeGGUF,
} from './formats/gguf/index.js';
export type {
  GGUFArray,
  GGUFContent,
  GGUFKV,
  GGUFLayout,
  GGUFOpenOptions,
  GGUFTensorInfo,
  GGUFValue,
  GGUFWriteOptions,
  GGUFWriteTensor,
} from './formats/gguf/index.js';
export {
  SAFETENSORS_DTYPES,
  SafetensorsCheckpoint,
  SafetensorsError,
  isSafetensorsDType,
  safetensorsDTypeBits,
  safetensorsDTypeBytes,
  writeSafetensors,
  writeShardedSafetensors,
} from './formats/safetensors/index.js';
export type { SafetensorsDType, SafetensorsTensorInfo, SafetensorsTensorInput } from './formats/safetensors/index.js';

// Weights: what a model file holds; Hugging Face checkpoints <-> GGUF.
export { summarizeGGUF } from './weights/summary.js';
export type { ModelSummary, TensorSummary } from './weights/summary.js';
export { ConvertError, convertHuggingFaceToGGUF } from './weights/hf/convert.js';
export type { ConvertOptions, ConvertProgress, ConvertResult } from './weights/hf/convert.js';
export { exportGGUFToHuggingFace } from './weights/hf/export.js';
export type { ExportOptions, ExportResult } from './weights/hf/export.js';
export { CONVERT_TARGET_TYPES, type ConvertTargetType } from './weights/convert-types.js';
export { HFConfigError, ggufMetadataFromHuggingFaceConfig, huggingFaceConfigFromGGUF } from './weights/hf/config.js';

// Models: the hyper-parameters of every supported architecture.
export {
  SUPPORTED_ARCHITECTURES,
  UnsupportedArchitectureError,
  isMoELayer,
  modelConfigFromGGUF,
} from './models/config.js';
export type { AttentionConfig, MLAConfig, ModelConfig, MoEConfig, RopeConfig } from './models/config.js';

// Tokenizers: GGUF / Hugging Face vocabularies, exactly as llama.cpp tokenizes; chat templates.
export {
  Tokenizer,
  TokenizerError,
  ggufTokenizerMetadataFromHuggingFace,
  huggingFaceTokenizerFromGGUF,
  tokenizerFromGGUF,
  tokenizerFromHuggingFace,
} from './tokenizer/index.js';
export type {
  DecodeOptions,
  EncodeOptions,
  FromHuggingFaceOptions,
  HuggingFaceTokenizerFiles,
  StreamingDecoder,
  Vocabulary,
} from './tokenizer/index.js';
export {
  CHATML_TEMPLATE,
  ChatTemplate,
  ChatTemplateError,
  chatTemplateFor,
  chatTemplateOrChatML,
} from './tokenizer/chat-template.js';
export type {
  ChatContentPart,
  ChatMessage,
  ChatRenderOptions,
  ChatTemplateOptions,
  ChatTool,
  ChatToolCall,
} from './tokenizer/chat-template.js';

// Models: load a GGUF model and run it (generate, chat, logits, perplexity).
export { loadModel } from './api/model.js';
export type {
  BatchStats,
  GenerateEvent,
  GenerateOptions,
  GenerateStats,
  KVCacheType,
  LayerRouting,
  LoadModelOptions,
  LoadProgress,
  LoadedModel,
  MemoryReport,
  ModelInfo,
  PerplexityOptions,
  PerplexityResult,
  ProfileOptions,
  TraceOptions,
} from './api/model.js';
export { SAMPLER_DEFAULTS, Sampler, argmax, seededRandom } from './generate/sampler.js';
export type { Candidates, SamplerOptions } from './generate/sampler.js';
export { StopStrings, stopTokenSet } from './generate/stop.js';
export type { StopStep, TokenText } from './generate/stop.js';
export { ContextLengthError } from './generate/kv-cache.js';
export { Model } from './models/model.js';
export type { ExpertCacheSettings, ModelLoadOptions } from './models/model.js';
export { ARCHITECTURES } from './models/registry.js';
export { route } from './router/route.js';
export type { RouterOptions, Routing } from './router/route.js';
export { routeCacheAware } from './router/cache-aware.js';
export type { CacheAwareOptions, CacheAwareRouting } from './router/cache-aware.js';
export { activeExperts, checkRoutingControls, routeWithControls } from './router/adaptive.js';
export type { RoutingControls } from './router/adaptive.js';
export {
  RoutingTraceError,
  TraceRecorder,
  decodeTraceBinary,
  encodeTraceBinary,
  readTrace,
  readTraceJSONL,
  writeTrace,
  writeTraceJSONL,
} from './router/trace.js';
export type { RoutingTrace } from './router/trace.js';
export {
  analyzeTrace,
  expertLoad,
  formatAnalysis,
  interLayerAffinity,
  routerEntropy,
  routingConsistency,
  simulateCache,
  traceSuperExperts,
} from './router/analysis.js';
export type { TraceAnalysis } from './router/analysis.js';
export { renderReport } from './router/report.js';
export {
  SteeringError,
  activationFrequency,
  makeSteeringProfile,
  rankByFrequencyDifference,
  rankByNPMI,
  readSteeringProfile,
  writeSteeringProfile,
} from './router/steering.js';
export type { SteeringProfile } from './router/steering.js';
export { CONTRAST_DEFAULTS, contrastLogits } from './generate/contrast.js';
export type { ContrastOptions } from './generate/contrast.js';

// Expert offloading: the expert cache, its reads, policies, budgets, statistics and profiles.
export { ExpertCache, ExpertCacheError } from './experts/cache.js';
export type { ExpertCacheOptions, ExpertRef, SlotAllocation } from './experts/cache.js';
export { ExpertReader, ExpertReadError } from './experts/io.js';
export type { ExpertReaderOptions, ReadRange } from './experts/io.js';
export {
  ExpertMemoryError,
  expertLayout,
  fullExpertMemory,
  minimumExpertMemory,
  parseExpertMemory,
  planExpertMemory,
} from './experts/layout.js';
export type { ExpertLayout, ExpertMemoryPlan, ExpertMemoryRequest, LayerExperts } from './experts/layout.js';
export { POLICY_NAMES, createPolicy } from './experts/policy.js';
export type { CachePolicy, PolicyName } from './experts/policy.js';
export { ExpertProfileError, makeProfile, mostUsed, readExpertProfile } from './experts/profile.js';
export type { ExpertProfile } from './experts/profile.js';
export { expertCacheRates, formatExpertStats, statsSince } from './experts/stats.js';
export type { ExpertCacheRates, ExpertCacheStats } from './experts/stats.js';

// The embedded default model (trained by Switchyard: recipes/tiny-moe.json).
export { DEFAULT_MODEL_FILE, defaultModelPath, findDefaultModel } from './api/default-model.js';

// Training: autograd, MoE layers and routers, optimizer, data, the training loop, GGUF export.
export { TrainConfigError, parseTrainConfig, readTrainConfig } from './train/config.js';
export type { BalanceSpec, FFNSpec, ModelSpec, RouterKind, RouterSpec, TrainConfig, TrainingSpec } from './train/config.js';
export { train } from './train/trainer.js';
export type { TrainEvent, TrainOptions, TrainResult } from './train/trainer.js';
export { Tape, Var } from './train/tape.js';
export * as trainOps from './train/ops.js';
export { createRouter } from './train/routers.js';
export type { RouteResult, Router } from './train/routers.js';
export { moeLayer } from './train/moe.js';
export type { MoELayerParams, MoELayerResult } from './train/moe.js';
export { GlobalBatchLoad, entropyLoss, globalBatchBalanceLoss, switchLoss, zLoss } from './train/losses.js';
export { ParameterStore } from './train/params.js';
export type { Init, Parameter, ParameterSpec } from './train/params.js';
export { AdamW, clipGradNorm, lrSchedule } from './train/optim.js';
export { Rng } from './train/rng.js';
export { CheckpointError, loadCheckpoint, saveCheckpoint } from './train/checkpoint.js';
export { TrainModel, activeParameters, parameterSpecs } from './train/model.js';
export { ExportError as TrainExportError, exportGGUF as exportTrainedGGUF, exportBlocker } from './train/export.js';
export { CorpusError, loadCorpus } from './train/corpus.js';
export type { Corpus, Document } from './train/corpus.js';
export { BatchSampler, heldOutWindows, tokenizeDocuments } from './train/batches.js';
export { BpeEncoder, bpeTokenizerMetadata, trainBPE, writeTokenizerGGUF } from './tokenizer/bpe-train.js';
export type { BpeTrainOptions, TrainedBpe } from './tokenizer/bpe-train.js';
