// The library's named errors. Everything a user can get wrong (a bad argument, a formula whose
// dimensions do not fit, a problem too large for an engine) throws one of these, so callers can tell
// their own mistakes from bugs: `err instanceof LazyTensorError`. Messages name the function, the
// argument and what was expected.

/** The base class of every error lazytensor throws on purpose. */
export class LazyTensorError extends Error {
  /** Always 'LazyTensorError'. */
  override name = 'LazyTensorError';
}

/**
 * A bad argument: wrong type, a non-finite or out-of-range number, data that is not an array of
 * finite numbers, an unknown option, a detached buffer, a request that has no meaning (the gradient
 * of an arg-reduction). The message names the function and the argument.
 */
export class InputError extends LazyTensorError {
  /** Always 'InputError'. */
  override name = 'InputError';
}

/** A dimension error raised while a formula is built (operands whose dimensions do not fit). */
export class ShapeError extends LazyTensorError {
  /** Always 'ShapeError'. */
  override name = 'ShapeError';
}

/**
 * A problem larger than a fixed limit of the library or of the platform: WebAssembly memory (2 GiB
 * addressable by the kernel), the kernel's register file, a formula deeper than the traversals
 * allow, `dense()`'s entry cap. `needed` and `limit` say by how much, in `unit`.
 */
export class ResourceLimitError extends LazyTensorError {
  /** Always 'ResourceLimitError'. */
  override name = 'ResourceLimitError';
  constructor(
    message: string,
    /** What the call needs, in `unit`. */
    readonly needed: number,
    /** The limit it exceeds, in `unit`. */
    readonly limit: number,
    /** The unit of `needed` and `limit`: 'bytes', 'registers', 'entries', 'nodes', ... */
    readonly unit: string,
  ) {
    super(message);
  }
}
