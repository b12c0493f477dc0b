/**
 * Switchyard's public API. Everything a user imports comes from here; types included.
 * Data flows one way: file -> weights -> model -> router -> experts -> tokens. Today the
 * compute core is in place: heaps and tensors, the kernel backends and their devices.
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
