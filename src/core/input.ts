// Turning user data into validated variables.
import { Variable, type Category, type DType } from './formula.js';

/** Data accepted by `Vi`, `Vj` and `Pm`. */
export type ArrayInput =
  | Float32Array
  | Float64Array
  | readonly number[]
  | readonly (readonly number[])[]
  | readonly (readonly (readonly number[])[])[];

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
  if (!Array.isArray(batch) || !batch.every((b) => Number.isInteger(b) && b >= 1)) {
    throw new RangeError(`${where}: batch must be an array of positive integers, got ${JSON.stringify(batch)}`);
  }
  return batch;
}

export function checkOptionKeys(where: string, options: object | undefined, allowed: ReadonlySet<string>): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${where}: options must be an object`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.has(key)) {
      throw new TypeError(`${where}: unknown option '${key}' (expected one of: ${[...allowed].join(', ')})`);
    }
  }
}

export function checkDType(where: string, dtype: unknown): DType | undefined {
  if (dtype === undefined) return undefined;
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new TypeError(`${where}: dtype must be 'float32' or 'float64', got ${String(dtype)}`);
  }
  return dtype;
}

function firstNonFinite(data: ArrayLike<number>): number {
  for (let k = 0; k < data.length; k++) {
    if (!Number.isFinite(data[k]!)) return k;
  }
  return -1;
}

const counters: Record<Category, number> = { i: 0, j: 0, p: 0 };

function defaultName(category: Category): string {
  const n = counters[category]++;
  return category === 'p' ? `p${n}` : `${category === 'i' ? 'x' : 'y'}${n}_${category}`;
}

/** Validates `data` as an [n, dim] array and wraps it in a variable. */
export function makeVariable(
  where: string,
  category: 'i' | 'j',
  data: ArrayInput,
  dim: number | undefined,
  options: VariableOptions | undefined,
): Variable {
  checkOptionKeys(where, options, VARIABLE_OPTION_KEYS);
  const dtypeOverride = checkDType(where, options?.dtype);
  if (dim !== undefined && (!Number.isInteger(dim) || dim < 1)) {
    throw new RangeError(`${where}: dim must be a positive integer, got ${dim}`);
  }
  let values: Float32Array | Float64Array;
  let rowDim: number;
  let natural: DType | null;
  let batch = checkBatch(where, options?.batch);
  if (Array.isArray(data) && data.length > 0 && Array.isArray(data[0]) && Array.isArray((data[0] as unknown[])[0])) {
    // [B, N, D] nested arrays: a batch of B clouds of the same size.
    if (options?.batch !== undefined) throw new TypeError(`${where}: nested [B, N, D] data sets the batch itself; drop the batch option`);
    const items = data as readonly (readonly (readonly number[])[])[];
    batch = [items.length];
    const n = items[0]!.length;
    items.forEach((item, b) => {
      if (!Array.isArray(item) || item.length !== n) {
        throw new RangeError(`${where}: batch item ${b} has ${Array.isArray(item) ? item.length : 'no'} rows, expected ${n}`);
      }
    });
    data = items.flat() as unknown as readonly (readonly number[])[];
  }
  if (data instanceof Float32Array || data instanceof Float64Array) {
    values = data;
    rowDim = dim ?? 1;
    natural = data instanceof Float32Array ? 'float32' : 'float64';
  } else if (Array.isArray(data)) {
    if (data.length > 0 && Array.isArray(data[0])) {
      const rows = data as readonly (readonly number[])[];
      rowDim = rows[0]!.length;
      if (dim !== undefined && dim !== rowDim) {
        throw new RangeError(`${where}: dim is ${dim} but the rows have ${rowDim} components`);
      }
      values = new Float64Array(rows.length * rowDim);
      rows.forEach((row, r) => {
        if (!Array.isArray(row) || row.length !== rowDim) {
          throw new RangeError(`${where}: row ${r} has ${Array.isArray(row) ? row.length : 'no'} components, expected ${rowDim}`);
        }
        for (let k = 0; k < rowDim; k++) values[r * rowDim + k] = row[k]!;
      });
    } else {
      values = Float64Array.from(data as readonly number[]);
      rowDim = dim ?? 1;
    }
    natural = null;
  } else {
    throw new TypeError(`${where}: data must be a Float32Array, Float64Array, number[] or number[][]`);
  }
  if (rowDim < 1) throw new RangeError(`${where}: the rows have no components`);
  if (values.length === 0) throw new RangeError(`${where}: data is empty (an [N, D] array with N >= 1 is expected)`);
  const items = batch.reduce((p, b) => p * b, 1);
  if (values.length % (rowDim * items) !== 0) {
    throw new RangeError(
      `${where}: ${values.length} values do not split into ${items > 1 ? `[${batch.join(', ')}] batches of ` : ''}rows of dim ${rowDim}`,
    );
  }
  const bad = firstNonFinite(values);
  if (bad >= 0) {
    throw new RangeError(
      `${where}: data[${Math.floor(bad / rowDim)}][${bad % rowDim}] is ${values[bad]}; inputs must be finite`,
    );
  }
  return new Variable(
    category,
    rowDim,
    values.length / rowDim / items,
    values,
    dtypeOverride ?? natural,
    options?.name ?? defaultName(category),
    false,
    batch,
  );
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
  const dtype = checkDType('Pm', options?.dtype) ?? null;
  let batch = checkBatch('Pm', options?.batch);
  let values: Float64Array;
  if (Array.isArray(value) && value.length > 0 && Array.isArray(value[0])) {
    // [B, D]: one parameter vector per batch item.
    if (options?.batch !== undefined) throw new TypeError('Pm: nested [B, D] values set the batch itself; drop the batch option');
    const rows = value as readonly (readonly number[])[];
    const d = rows[0]!.length;
    rows.forEach((r, b) => {
      if (!Array.isArray(r) || r.length !== d || !r.every((v) => typeof v === 'number')) {
        throw new RangeError(`Pm: batch item ${b} must be ${d} numbers`);
      }
    });
    batch = [rows.length];
    values = Float64Array.from(rows.flat());
  } else if (typeof value === 'number') values = Float64Array.of(value);
  else if (value instanceof Float32Array || value instanceof Float64Array) values = Float64Array.from(value);
  else if (Array.isArray(value) && value.every((v) => typeof v === 'number')) values = Float64Array.from(value as number[]);
  else throw new TypeError('Pm: value must be a number, a number[] or a typed array');
  if (values.length === 0) throw new RangeError('Pm: value is empty');
  const items = batch.reduce((p, b) => p * b, 1);
  if (values.length % items !== 0) throw new RangeError(`Pm: ${values.length} values do not split into [${batch.join(', ')}] batches`);
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new RangeError(`Pm: value[${bad}] is ${values[bad]}; parameters must be finite`);
  return new Variable('p', values.length / items, 1, values, dtype, options?.name ?? defaultName('p'), false, batch);
}

/** A number written inside a formula. */
export function makeConstant(where: string, value: number): Variable {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RangeError(`${where}: the constant ${String(value)} is not a finite number`);
  }
  return new Variable('p', 1, 1, Float64Array.of(value), null, String(value), true);
}
