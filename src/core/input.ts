// Turning user data into validated variables.
import { InputError } from './errors.js';
import { Variable, type Category, type DType } from './formula.js';
import { Tensor } from './tensor.js';
import { throwIfAborted, yieldIfDue, type AbortSignalLike } from './scheduling.js';

/** Data accepted by `Vi`, `Vj` and `Pm` (and `knn`, `kMeans`, `solve`): a Tensor's shape gives its
 *  rows and dimension. */
export type ArrayInput =
  | Tensor
  | Float32Array
  | Float64Array
  | readonly number[]
  | readonly (readonly number[] | Float32Array | Float64Array)[]
  | readonly (readonly (readonly number[] | Float32Array | Float64Array)[])[];

/** Options of `Vi` and `Vj`. */
export interface VariableOptions {
  /** Precision override: by default a Float32Array gives float32, a Float64Array float64, and plain
   *  numbers follow the other operands (float64 when none decides). */
  dtype?: DType;
  /** The name used when the formula is printed. */
  name?: string;
  /** Leading batch dimensions of flat data: [B] for data of shape [B, N, dim]. Nested
   *  `number[][][]` data sets it by itself. */
  batch?: readonly number[];
}

const VARIABLE_OPTION_KEYS = new Set(['dtype', 'name', 'batch']);

function checkBatch(where: string, batch: readonly number[] | undefined): readonly number[] {
  if (batch === undefined) return [];
  if (!Array.isArray(batch) || !batch.every((b) => Number.isInteger(b) && b >= 1 && b <= 2 ** 31 - 1)) {
    throw new InputError(`${where}: batch must be an array of positive integers, got ${JSON.stringify(batch)}`);
  }
  return batch;
}

export function checkOptionKeys(where: string, options: object | undefined, allowed: ReadonlySet<string>): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new InputError(`${where}: options must be an object`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.has(key)) {
      throw new InputError(`${where}: unknown option '${key}' (expected one of: ${[...allowed].join(', ')})`);
    }
  }
}

export function checkDType(where: string, dtype: unknown): DType | undefined {
  if (dtype === undefined) return undefined;
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new InputError(`${where}: dtype must be 'float32' or 'float64', got ${String(dtype)}`);
  }
  return dtype;
}

function firstNonFinite(data: ArrayLike<number>, from = 0, to = data.length): number {
  // Float arrays are scanned through their bits as one Uint32Array: the engine then compiles one
  // monomorphic loop (the same loop reading Float32Array, Float64Array and plain arrays was
  // megamorphic, ~7x slower: 6.8 against 0.8 ms per 10^6 values, which at 10^6-value variables was
  // ~5% of a D = 50 K-NN). Other arrays are scanned value by value.
  if (LITTLE_ENDIAN && data instanceof Float32Array) {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    return firstAllOnesExponent(bits, from, to, 1, 0, 0x7f800000, 0x00800000);
  }
  if (LITTLE_ENDIAN && data instanceof Float64Array) {
    // the exponent is in the high word, the second of each value's two words (little-endian)
    const bits = new Uint32Array(data.buffer, data.byteOffset, 2 * data.length);
    return firstAllOnesExponent(bits, from, to, 2, 1, 0x7ff00000, 0x00100000);
  }
  for (let k = from; k < to; k++) {
    const v = data[k]!;
    // v - v is NaN exactly for NaN and +-Infinity.
    if (v - v !== 0) return k;
  }
  return -1;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The first value k in [from, to) whose exponent bits (word k * step + at of bits, under mask) are all
 *  ones (NaN or +-Infinity), or -1. (w & mask) + low, low the mask's lowest bit, reaches bit 31 exactly
 *  when the exponent is all ones, so the or of 8 values' is negative as an int32 when one of them is.
 *  Word indices are written out: through a helper closure the loop ran ~2x slower. */
function firstAllOnesExponent(
  bits: Uint32Array,
  from: number,
  to: number,
  step: number,
  at: number,
  mask: number,
  low: number,
): number {
  const end = to * step + at;
  let q = from * step + at;
  for (const s8 = 8 * step; q + s8 <= end; q += s8) {
    const m =
      ((bits[q]! & mask) + low) |
      ((bits[q + step]! & mask) + low) |
      ((bits[q + 2 * step]! & mask) + low) |
      ((bits[q + 3 * step]! & mask) + low) |
      ((bits[q + 4 * step]! & mask) + low) |
      ((bits[q + 5 * step]! & mask) + low) |
      ((bits[q + 6 * step]! & mask) + low) |
      ((bits[q + 7 * step]! & mask) + low);
    if (m < 0) break;
  }
  for (; q < end; q += step) if ((((bits[q]! & mask) + low) | 0) < 0) return (q - at) / step;
  return -1;
}

/** 'float32' / 'float64' for a Float32Array / Float64Array of any realm (an iframe, node:vm), else null. */
export function floatArrayKind(x: unknown): DType | null {
  if (x instanceof Float32Array) return 'float32';
  if (x instanceof Float64Array) return 'float64';
  if (!ArrayBuffer.isView(x)) return null; // a brand check: true only for real views, of any realm
  const tag = Object.prototype.toString.call(x);
  return tag === '[object Float32Array]' ? 'float32' : tag === '[object Float64Array]' ? 'float64' : null;
}

/** Whether a view's buffer was detached (transferred to a worker, ...). Node 20 has no
 *  ArrayBuffer.prototype.detached; there a detached view reads as empty, which is rejected too. */
function isDetached(view: ArrayBufferView): boolean {
  const buffer = view.buffer as ArrayBufferLike & { detached?: boolean };
  return buffer.detached === true;
}

/** A readable description of a non-number element, for error messages. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a Date';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}...` : value)}`;
  if (typeof value === 'bigint') return `the BigInt ${value}n (convert it with Number())`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Copies numbers into `out` at `offset`, rejecting anything that is not a number. */
function copyNumbers(
  where: string,
  row: ArrayLike<unknown>,
  out: Float64Array,
  offset: number,
  label: (k: number) => string,
): void {
  for (let k = 0; k < row.length; k++) {
    const v = row[k];
    if (typeof v !== 'number') throw new InputError(`${where}: ${label(k)} is ${describe(v)}; expected a number`);
    out[offset + k] = v;
  }
}

/** A row of `number[][]` data: a number[] or a Float32Array/Float64Array, of any realm. */
function rowLength(row: unknown): number | null {
  if (Array.isArray(row)) return row.length;
  if (floatArrayKind(row) !== null) return (row as Float32Array).length;
  return null;
}

/** Validates user data that a Variable keeps by reference (a typed array): finite and attached. It
 *  runs when the variable is made and again before every reduction that reads it, because the caller
 *  may have changed the array (or transferred its buffer) in between. */
export function checkVariableData(where: string, v: Variable, scanned?: ReadonlySet<Variable>): void {
  if (placeholderVariables.has(v)) {
    throw new InputError(
      `${where}: ${v.name} is a placeholder (made by ${v.category === 'i' ? 'Vi' : v.category === 'j' ? 'Vj' : 'Pm'}.placeholder): give it data with formula(...).bind({ ... }) before reducing`,
    );
  }
  if (!v.byReference) return;
  if (isDetached(v.data) || v.data.length !== v.rows * v.dim * v.batch.reduce((p, b) => p * b, 1)) {
    throw new InputError(
      `${where}: the data of ${v.name} was detached or resized after it was given to ${v.category === 'i' ? 'Vi' : 'Vj'} (the array is read when a reduction runs)`,
    );
  }
  if (scanned?.has(v)) return;
  const bad = firstNonFinite(v.data);
  if (bad >= 0) throw changedToNonFinite(where, v, bad);
}

function changedToNonFinite(where: string, v: Variable, bad: number): InputError {
  return new InputError(
    `${where}: ${v.name}: data[${Math.floor(bad / v.dim)}][${bad % v.dim}] is ${v.data[bad]}; inputs must be finite (the array changed after it was given to ${v.category === 'i' ? 'Vi' : 'Vj'})`,
  );
}

/** Values scanned between two chances to yield in {@link scanLargeVariableData}: about 7 ms of
 *  work (47M float32 values, Fashion-MNIST's 60000 x 784, scan in ~75 ms on a 2-core Xeon). */
const FINITE_SCAN_SLICE = 1 << 22;

/**
 * The finite check of {@link checkVariableData} for the by-reference variables larger than one
 * slice, scanned slice by slice with a yield to the event loop whenever one is due, so that the
 * re-check before a reduction never blocks the event loop for the whole array (~75 ms at
 * 60000 x 784). Returns the variables it scanned: pass them to checkVariableData, which then does
 * the cheap checks only, synchronously, right before the reduction reads the arrays. A change the
 * caller makes to an already scanned slice during a yield is not seen, as a change during the
 * reduction itself is not.
 */
export async function scanLargeVariableData(
  where: string,
  variables: readonly Variable[],
  signal: AbortSignalLike | undefined,
): Promise<ReadonlySet<Variable> | undefined> {
  let scanned: Set<Variable> | undefined;
  for (const v of variables) {
    if (!v.byReference || placeholderVariables.has(v) || v.data.length <= FINITE_SCAN_SLICE) continue;
    for (let from = 0; from < v.data.length; from += FINITE_SCAN_SLICE) {
      if (from > 0) {
        const due = yieldIfDue();
        if (due !== undefined) {
          await due;
          throwIfAborted(signal);
          // Detached or resized while the event loop ran: checkVariableData names it.
          if (isDetached(v.data) || v.data.length < from) break;
        }
      }
      const bad = firstNonFinite(v.data, from, Math.min(v.data.length, from + FINITE_SCAN_SLICE));
      if (bad >= 0) throw changedToNonFinite(where, v, bad);
    }
    (scanned ??= new Set()).add(v);
  }
  return scanned;
}

/** Variables made from flat data without a `dim`: their dimension 1 was not asked for, so the
 *  formula builder refuses to broadcast them against a vector (see `checkImplicitBroadcast`). */
export const implicitDimVariables = new WeakSet<Variable>();

/** Variables without data, made by Vi/Vj/Pm.placeholder: they are replaced by data when a formula is bound. */
export const placeholderVariables = new WeakSet<Variable>();

/** A variable of `dim` components and no data, to build a formula once and bind data later. */
export function makePlaceholder(where: string, category: Category, dim: number, name: string | undefined): Variable {
  if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 1 || dim > 2 ** 31 - 1) {
    throw new InputError(`${where}: dim must be a positive integer, got ${String(dim)}`);
  }
  if (name !== undefined && typeof name !== 'string') {
    throw new InputError(`${where}: name must be a string, got ${describe(name)}`);
  }
  const v = new Variable(category, dim, 0, new Float64Array(0), null, name ?? defaultName(category));
  placeholderVariables.add(v);
  return v;
}

/** The Tensor each variable made from a Tensor came from: a gradient tape (tape.ts) follows it back. */
export const variableSources = new WeakMap<Variable, Tensor>();

const counters: Record<Category, number> = { i: 0, j: 0, p: 0 };

function defaultName(category: Category): string {
  const n = counters[category]++;
  return category === 'p' ? `p${n}` : `${category === 'i' ? 'x' : 'y'}${n}_${category}`;
}

/** Validates `data` as an [n, dim] array and wraps it in a variable. A Float32Array or Float64Array
 *  of this realm is kept by reference (no copy) and re-checked before each reduction; other data is
 *  copied. */
export function makeVariable(
  where: string,
  category: 'i' | 'j',
  data: ArrayInput,
  dim: number | undefined,
  options: VariableOptions | undefined,
): Variable {
  checkOptionKeys(where, options, VARIABLE_OPTION_KEYS);
  if (data instanceof Tensor) return tensorVariable(where, category, data, dim, options);
  const dtypeOverride = checkDType(where, options?.dtype);
  if (options?.name !== undefined && typeof options.name !== 'string') {
    throw new InputError(`${where}: name must be a string, got ${describe(options.name)}`);
  }
  if (dim !== undefined && (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 1 || dim > 2 ** 31 - 1)) {
    throw new InputError(`${where}: dim must be a positive integer, got ${String(dim)}`);
  }
  let values: Float32Array | Float64Array;
  let rowDim: number;
  let natural: DType | null;
  let byReference = false;
  let flat = false;
  let batch = checkBatch(where, options?.batch);
  const kind = floatArrayKind(data);
  if (
    Array.isArray(data) &&
    data.length > 0 &&
    Array.isArray(data[0]) &&
    rowLength((data[0] as unknown[])[0]) !== null
  ) {
    // [B, N, D] nested arrays: a batch of B clouds of the same size.
    if (options?.batch !== undefined)
      throw new InputError(`${where}: nested [B, N, D] data sets the batch itself; drop the batch option`);
    const items = data as readonly (readonly (readonly number[])[])[];
    batch = [items.length];
    const n = items[0]!.length;
    items.forEach((item, b) => {
      if (!Array.isArray(item) || item.length !== n) {
        throw new InputError(
          `${where}: batch item ${b} has ${Array.isArray(item) ? item.length : 'no'} rows, expected ${n}`,
        );
      }
    });
    data = items.flat() as unknown as readonly (readonly number[])[];
  }
  if (kind !== null) {
    const view = data as Float32Array | Float64Array;
    if (isDetached(view)) throw new InputError(`${where}: the data's buffer is detached (transferred or released)`);
    // Another realm's typed array is copied into this realm's, so engines can rely on instanceof.
    const local = view instanceof Float32Array || view instanceof Float64Array;
    values = local ? view : kind === 'float32' ? Float32Array.from(view) : Float64Array.from(view);
    byReference = local;
    flat = true;
    rowDim = dim ?? 1;
    natural = kind;
  } else if (Array.isArray(data)) {
    const first = data.length > 0 ? rowLength(data[0]) : null;
    if (first !== null) {
      // Rows: number[][] (or an array of Float32Array / Float64Array rows).
      const rows = data as readonly unknown[];
      rowDim = first;
      if (dim !== undefined && dim !== rowDim) {
        throw new InputError(`${where}: dim is ${dim} but the rows have ${rowDim} components`);
      }
      values = new Float64Array(rows.length * rowDim);
      rows.forEach((row, r) => {
        const length = rowLength(row);
        if (length !== rowDim) {
          throw new InputError(`${where}: row ${r} has ${length ?? 'no'} components, expected ${rowDim}`);
        }
        copyNumbers(where, row as ArrayLike<unknown>, values as Float64Array, r * rowDim, (k) => `data[${r}][${k}]`);
      });
    } else {
      values = new Float64Array(data.length);
      flat = true;
      rowDim = dim ?? 1;
      copyNumbers(where, data as readonly unknown[], values, 0, (k) => `data[${k}]`);
    }
    natural = null;
  } else {
    throw new InputError(
      `${where}: data must be a Float32Array, Float64Array, number[] or number[][], got ${describe(data)}`,
    );
  }
  if (rowDim < 1) throw new InputError(`${where}: the rows have no components`);
  if (values.length === 0)
    throw new InputError(
      `${where}: data is empty (an [N, D] array with N >= 1 is expected; a detached buffer reads as empty)`,
    );
  const items = batch.reduce((p, b) => p * b, 1);
  if (values.length % (rowDim * items) !== 0) {
    throw new InputError(
      `${where}: ${values.length} values do not split into ${items > 1 ? `[${batch.join(', ')}] batches of ` : ''}rows of dim ${rowDim}`,
    );
  }
  const bad = firstNonFinite(values);
  if (bad >= 0) {
    throw new InputError(
      `${where}: data[${Math.floor(bad / rowDim)}][${bad % rowDim}] is ${values[bad]}; inputs must be finite`,
    );
  }
  const variable = new Variable(
    category,
    rowDim,
    values.length / rowDim / items,
    values,
    dtypeOverride ?? natural,
    options?.name ?? defaultName(category),
    false,
    batch,
    byReference,
  );
  if (flat && dim === undefined) implicitDimVariables.add(variable);
  return variable;
}

/** A Tensor as a variable: [N] is N scalars, [N, D] N points, [...batch, N, D] a batch. Float data
 *  is kept by reference (as a typed array given directly); Int32 indices are copied to float64. */
function tensorVariable(
  where: string,
  category: 'i' | 'j',
  t: Tensor,
  dim: number | undefined,
  options: VariableOptions | undefined,
): Variable {
  if (t.shape.length === 0) throw new InputError(`${where}: the Tensor has no axes; expected [N, D]`);
  const D = t.shape.length === 1 ? 1 : t.shape[t.shape.length - 1]!;
  if (dim !== undefined && dim !== D) {
    throw new InputError(`${where}: dim is ${String(dim)} but the Tensor's shape [${t.shape.join(', ')}] has D = ${D}`);
  }
  const batch = t.shape.slice(0, -2);
  if (batch.length > 0 && options?.batch !== undefined) {
    throw new InputError(
      `${where}: the Tensor's shape [${t.shape.join(', ')}] sets the batch itself; drop the batch option`,
    );
  }
  const data = t.data instanceof Int32Array ? Float64Array.from(t.data) : t.data;
  const variable = makeVariable(where, category, data, D, batch.length > 0 ? { ...options, batch } : options);
  variableSources.set(variable, t);
  return variable;
}

/** Options of `Pm`. */
export interface ParameterOptions {
  /** Precision override; by default a parameter follows the other operands of the formula. */
  dtype?: DType;
  /** The name used when the formula is printed (default p0, p1, ...). */
  name?: string;
  /** Leading batch dimensions of flat data: [B] for B parameter vectors. `number[][]` sets [B] itself. */
  batch?: readonly number[];
}

export function makeParameter(value: number | ArrayInput, options: ParameterOptions | undefined): Variable {
  checkOptionKeys('Pm', options, VARIABLE_OPTION_KEYS);
  if (value instanceof Tensor) {
    // [D] (or [1, D]) is one vector; [B, D] one vector per batch item, as number[][] values.
    const leading = value.shape.slice(0, -1);
    const data = Float64Array.from(value.data);
    if (!leading.every((s) => s === 1) && options?.batch !== undefined) {
      throw new InputError(
        `Pm: the Tensor's shape [${value.shape.join(', ')}] sets the batch itself; drop the batch option`,
      );
    }
    const parameter = makeParameter(data, leading.every((s) => s === 1) ? options : { ...options, batch: leading });
    variableSources.set(parameter, value);
    return parameter;
  }
  const dtype = checkDType('Pm', options?.dtype) ?? null;
  if (options?.name !== undefined && typeof options.name !== 'string') {
    throw new InputError(`Pm: name must be a string, got ${describe(options.name)}`);
  }
  let batch = checkBatch('Pm', options?.batch);
  let values: Float64Array;
  const kind = floatArrayKind(value);
  if (Array.isArray(value) && value.length > 0 && rowLength(value[0]) !== null) {
    // [B, D]: one parameter vector per batch item.
    if (options?.batch !== undefined)
      throw new InputError('Pm: nested [B, D] values set the batch itself; drop the batch option');
    const rows = value as readonly unknown[];
    const d = rowLength(rows[0])!;
    values = new Float64Array(rows.length * d);
    rows.forEach((r, b) => {
      if (rowLength(r) !== d) throw new InputError(`Pm: batch item ${b} must be ${d} numbers`);
      copyNumbers('Pm', r as ArrayLike<unknown>, values, b * d, (k) => `value[${b}][${k}]`);
    });
    batch = [rows.length];
  } else if (typeof value === 'number') values = Float64Array.of(value);
  else if (kind !== null) {
    if (isDetached(value as Float32Array))
      throw new InputError("Pm: the value's buffer is detached (transferred or released)");
    values = Float64Array.from(value as Float32Array | Float64Array);
  } else if (Array.isArray(value)) {
    values = new Float64Array(value.length);
    copyNumbers('Pm', value as readonly unknown[], values, 0, (k) => `value[${k}]`);
  } else throw new InputError(`Pm: value must be a number, a number[] or a typed array, got ${describe(value)}`);
  if (values.length === 0) throw new InputError('Pm: value is empty');
  const items = batch.reduce((p, b) => p * b, 1);
  if (values.length % items !== 0)
    throw new InputError(`Pm: ${values.length} values do not split into [${batch.join(', ')}] batches`);
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new InputError(`Pm: value[${bad}] is ${values[bad]}; parameters must be finite`);
  return new Variable('p', values.length / items, 1, values, dtype, options?.name ?? defaultName('p'), false, batch);
}

/** A number written inside a formula; +-Infinity only where `allowInfinite` (operations whose result
 *  stays meaningful with an infinite operand: OpDef.infiniteConstants). */
export function makeConstant(where: string, value: number, allowInfinite = false): Variable {
  const infinite = value === Infinity || value === -Infinity;
  if (typeof value !== 'number' || Number.isNaN(value) || (infinite && !allowInfinite)) {
    throw new InputError(
      `${where}: the constant ${typeof value === 'number' ? String(value) : describe(value)} is not a finite number` +
        (infinite
          ? ' (infinite constants are accepted by add, sub, ifElse, clamp, maximum, minimum and the comparisons, e.g. a mask c.ifElse(F, -Infinity))'
          : ''),
    );
  }
  return new Variable('p', 1, 1, Float64Array.of(value), null, String(value), true);
}
