/**
 * Tokenizers: GGUF and Hugging Face vocabularies, encoding and decoding exactly as llama.cpp
 * does, and chat templates. Reference: llama.cpp src/llama-vocab.cpp (see each file's header).
 */
export type { JsonObject } from './bpe.js';
export * from './chat-template.js';
export {
  type FromHuggingFaceOptions,
  ggufTokenizerMetadataFromHuggingFace,
  type HuggingFaceTokenizerFiles,
  huggingFaceTokenizerFromGGUF,
  tokenizerFromHuggingFace,
} from './hugging-face.js';
export { knownPreTokenizerNames } from './pre-tokenizers.js';
export { readSentencePieceModel, type SentencePieceModelProto, writeSentencePieceModel } from './sentencepiece-model.js';
export { type StreamingDecoder, Tokenizer, tokenizerFromGGUF } from './tokenizer.js';
export * from './types.js';
export { readVocabulary } from './vocabulary.js';
