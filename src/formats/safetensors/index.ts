/**
 * safetensors: Hugging Face's tensor file format (reader, writer, sharded checkpoints).
 * Reference: https://huggingface.co/docs/safetensors and https://github.com/huggingface/safetensors.
 */
export { SAFETENSORS_INDEX_NAME, SAFETENSORS_SINGLE_NAME, SafetensorsCheckpoint } from './reader.js';
export {
  isSafetensorsDType,
  MAX_HEADER_BYTES,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  SafetensorsError,
  type SafetensorsTensorInfo,
  type SafetensorsTensorInput,
  safetensorsDTypeBits,
  safetensorsDTypeBytes,
} from './types.js';
export { writeSafetensors, writeShardedSafetensors } from './writer.js';
