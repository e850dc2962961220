// Variables whose data the engines may keep across reductions (core/resident.ts), for callers that
// reduce against the same large data many times: a K-NN index queried batch after batch, a kernel
// matrix applied to many vectors.
//
// WHY A COPY: an engine may keep its own copy of a held array (the Wasm engine: in each worker, and
// the array tiled in each worker's kernel memory) only while nobody writes to it. A Vi / Vj of a
// user's typed array reads that array at each reduction, and the user may change it between two
// calls; so the resident variable is made on a copy the library owns and never writes (in shared
// memory where there is some: then the workers read that one copy), and the caller says when it is no
// longer needed (release). Until then each reduction posts only its other operands.
import type { ArrayInput, VariableOptions } from './input.js';
import { makeVariable } from './input.js';
import { Variable } from './formula.js';
import { LazyTensor } from './lazy-tensor.js';
import { holdResident, residentCopy } from './resident.js';
import { InputError } from './errors.js';

/** A variable whose data stays next to the engines' kernels between reductions, until released. */
export interface ResidentVariable {
  /** The variable, to use in formulas as the Vi (category 'i') or Vj ('j') of the same data. */
  readonly tensor: LazyTensor;
  /**
   * Lets the engines drop their copies (calling it again does nothing). The tensor stays usable:
   * its data is then sent with each reduction, as a Vi / Vj's is.
   */
  release(): void;
}

/**
 * Makes a Vi (`category` 'i') or Vj ('j') variable of `data` (the arguments of {@link Vi}) whose
 * values the engines may keep across reductions until `release()`: the Wasm engine keeps them in its
 * workers (within its per-worker bound), so that a reduction called many times against the same large
 * data does not send it each time. The data is copied once here: later changes to `data` are not
 * seen. Results are those of the plain variable.
 * @example
 * ```ts
 * const train = residentVariable('j', trainImages, 784);
 * try {
 *   for (const batch of queries) knn.push(await Vi(batch, 784).sqDist(train.tensor).argKMin(10, 1));
 * } finally {
 *   train.release();
 * }
 * ```
 * @throws InputError for a category other than 'i' or 'j', and for the data errors of Vi / Vj.
 */
export function residentVariable(
  category: 'i' | 'j',
  data: ArrayInput,
  dim?: number,
  options?: VariableOptions,
): ResidentVariable {
  if (category !== 'i' && category !== 'j') {
    throw new InputError(`residentVariable: category must be 'i' or 'j', got ${String(category)}`);
  }
  const where = `residentVariable('${category}')`;
  const v = makeVariable(where, category, data, dim, options);
  const copy = residentCopy(v.data);
  const held = new Variable(category, v.dim, v.rows, copy, v.dtype, v.name, false, v.batch, false);
  const tensor =
    category === 'i' ? new LazyTensor(held, v.rows, null, v.batch) : new LazyTensor(held, null, v.rows, v.batch);
  return { tensor, release: holdResident(copy) };
}
