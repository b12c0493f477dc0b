/** GGUF: reader (lazy tensor reads), typed metadata, writer. Reference: ggml docs/gguf.md. */
export { GGUFMetadata } from './metadata.js';
export { GGUFFile, type GGUFOpenOptions } from './reader.js';
export * from './types.js';
export {
  type GGUFContent,
  type GGUFLayout,
  type GGUFWriteOptions,
  type GGUFWriteTensor,
  kv,
  layoutGGUF,
  rewriteGGUF,
  writeGGUF,
} from './writer.js';
