/**
 * Typed errors. Every error Switchyard throws on purpose is a SwitchyardError with a
 * stable `code`, and its message names what is at fault (file, tensor, field, request)
 * and, where possible, what to do about it.
 */
export class SwitchyardError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A heap or arena allocation that cannot be satisfied. */
export class OutOfMemoryError extends SwitchyardError {
  constructor(
    message: string,
    readonly request: { bytes: number; purpose: string; arena: string },
    readonly available: { freeBytes: number; largestFreeBlock: number; capacityBytes: number },
  ) {
    super('E_OUT_OF_MEMORY', message);
  }
}

/** A tensor type the kernels do not implement (or do not know). */
export class UnsupportedTypeError extends SwitchyardError {
  constructor(message: string) {
    super('E_UNSUPPORTED_TYPE', message);
  }
}

/** Arguments that break a kernel's contract (shapes, types, sizes). */
export class InvalidArgumentError extends SwitchyardError {
  constructor(message: string) {
    super('E_INVALID_ARGUMENT', message);
  }
}

/** A kernel build or platform capability that is requested but not available. */
export class CapabilityError extends SwitchyardError {
  constructor(message: string) {
    super('E_CAPABILITY', message);
  }
}

/** A kernel trapped (a bug: arguments are validated first). Its device cannot be used again. */
export class KernelError extends SwitchyardError {
  constructor(message: string) {
    super('E_KERNEL', message);
  }
}
