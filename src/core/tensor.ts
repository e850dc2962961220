// The result of a reduction: a dense array with a shape, a dtype and the engine that computed it.

import { InputError, ShapeError } from './errors.js';

/** The engine that computed a result. */
export type EngineName = 'wasm' | 'webgpu';

/** The element type of a result. */
export type TensorDType = 'float32' | 'float64' | 'int32';

type TensorData = Float32Array | Float64Array | Int32Array;

/** The second operand of Tensor arithmetic: a number, or a Tensor whose shape broadcasts against the
 *  first's (numpy rules: shapes aligned on the right, each axis equal or 1). */
export type TensorOperand = number | Tensor;

/** Indices for {@link Tensor.gather} and {@link Tensor.scatterAdd}: one integer per row, e.g. the
 *  [n, 1] Int32 Tensor of `argMin(1)`. */
export type TensorIndices = Tensor | Int32Array | readonly number[];

/** Nested arrays of numbers, one level per axis. */
export type NestedArray = number | NestedArray[];

/** A dense result: `data` is row-major with the given `shape`. */
export class Tensor<D extends TensorData = TensorData> {
  /**
   * Wraps row-major `data` with its `shape`.
   * @throws RangeError when the product of `shape` is not `data.length`.
   */
  constructor(
    /** The values, row-major: Float32Array or Float64Array (the reduction's dtype), Int32Array for indices. */
    readonly data: D,
    /** The size of each axis, e.g. [N, d] for a reduction over j, [B, N, d] for a batch. */
    readonly shape: readonly number[],
    /** The engine that computed the values. */
    readonly engine: EngineName,
  ) {
    const size = shape.reduce((p, s) => p * s, 1);
    if (size !== data.length) {
      throw new InputError(`Tensor: shape [${shape.join(', ')}] needs ${size} values, got ${data.length}`);
    }
  }

  /** The element type: 'float32', 'float64' or 'int32', from the data's array type. */
  get dtype(): TensorDType {
    return this.data instanceof Int32Array ? 'int32' : this.data instanceof Float32Array ? 'float32' : 'float64';
  }

  /** The number of values (the product of the shape). */
  get size(): number {
    return this.data.length;
  }

  /** Elementwise this + other (a number or a broadcastable Tensor), in float64 unless both are float32.
   *  @throws ShapeError when the shapes do not broadcast. */
  add(other: TensorOperand): Tensor<Float32Array | Float64Array> {
    return this.combine('add', other, (a, b) => a + b);
  }
  /** Elementwise this - other; see {@link Tensor.add} for broadcasting and precision. */
  sub(other: TensorOperand): Tensor<Float32Array | Float64Array> {
    return this.combine('sub', other, (a, b) => a - b);
  }
  /** Elementwise this * other; see {@link Tensor.add} for broadcasting and precision. */
  mul(other: TensorOperand): Tensor<Float32Array | Float64Array> {
    return this.combine('mul', other, (a, b) => a * b);
  }
  /** Elementwise this / other (IEEE: x / 0 is +-Infinity or NaN); see {@link Tensor.add}. */
  div(other: TensorOperand): Tensor<Float32Array | Float64Array> {
    return this.combine('div', other, (a, b) => a / b);
  }

  /** The sum of every value (a number, accumulated in float64). */
  sum(): number;
  /** The sum over `axis` (negative counts from the end): the shape without that axis. */
  sum(axis: number): Tensor<Float64Array>;
  sum(axis?: number): number | Tensor<Float64Array> {
    if (axis === undefined) {
      let total = 0;
      for (let k = 0; k < this.data.length; k++) total += this.data[k]!;
      return total;
    }
    return this.reduceAxis('sum', axis, false);
  }

  /** The mean of every value (a number), or over `axis` (the shape without that axis).
   *  @throws InputError for an empty axis or a bad axis. */
  mean(): number;
  mean(axis: number): Tensor<Float64Array>;
  mean(axis?: number): number | Tensor<Float64Array> {
    if (axis === undefined) {
      if (this.data.length === 0) throw new InputError('mean: the tensor is empty');
      return this.sum() / this.data.length;
    }
    return this.reduceAxis('mean', axis, true);
  }

  /** The same values with another shape of the same size (the data is shared, not copied).
   *  @throws InputError when the sizes differ. */
  reshape(shape: readonly number[]): Tensor<D> {
    if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
      throw new InputError(`reshape: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const size = shape.reduce((p, s) => p * s, 1);
    if (size !== this.data.length) {
      throw new InputError(
        `reshape: [${shape.join(', ')}] has ${size} values but the tensor [${this.shape.join(', ')}] has ${this.data.length}`,
      );
    }
    return new Tensor(this.data, [...shape], this.engine);
  }

  /**
   * The rows at `indices`: for this of shape [n, ...rest] and m indices, a tensor [m, ...rest] whose
   * row r is row indices[r] of this (the K-means "centroid of each point" step). Same dtype.
   * @throws InputError when an index is not an integer in [0, n) (a -1 from an empty argMin row
   *   included), or `indices` is not one integer per row.
   */
  gather(indices: TensorIndices): Tensor<D> {
    const n = this.shape[0] ?? 1;
    const idx = checkIndices('gather', indices, n);
    const width = this.data.length / Math.max(n, 1);
    const out = new (this.data.constructor as new (length: number) => D)(idx.length * width);
    for (let r = 0; r < idx.length; r++) out.set(this.data.subarray(idx[r]! * width, (idx[r]! + 1) * width), r * width);
    return new Tensor(out, [idx.length, ...this.shape.slice(1)], this.engine);
  }

  /**
   * Sums rows into bins: for this of shape [m, ...rest] and m indices in [0, numBins), a float64
   * tensor [numBins, ...rest] whose row b is the sum of the rows r with indices[r] = b (0 for an
   * empty bin): the K-means centroid sums, the EM statistics.
   * @throws InputError when numBins is not a positive integer, an index is out of [0, numBins), or
   *   there is not one index per row.
   */
  scatterAdd(indices: TensorIndices, numBins: number): Tensor<Float64Array> {
    checkBins('scatterAdd', numBins);
    const m = this.shape[0] ?? 1;
    const idx = checkIndices('scatterAdd', indices, numBins);
    if (idx.length !== m) {
      throw new InputError(`scatterAdd: ${idx.length} indices for a tensor of ${m} rows; give one index per row`);
    }
    const width = this.data.length / Math.max(m, 1);
    const out = new Float64Array(numBins * width);
    for (let r = 0; r < m; r++) {
      const at = idx[r]! * width;
      for (let k = 0; k < width; k++) out[at + k] = out[at + k]! + this.data[r * width + k]!;
    }
    return new Tensor(out, [numBins, ...this.shape.slice(1)], this.engine);
  }

  /**
   * How many times each bin index occurs in this tensor of integer indices (an argMin result, say):
   * an Int32 tensor [numBins] (numpy's `bincount(x, minlength=numBins)`).
   * @throws InputError when a value is not an integer in [0, numBins).
   */
  bincount(numBins: number): Tensor<Int32Array> {
    checkBins('bincount', numBins);
    const idx = checkIndices('bincount', this, numBins);
    const out = new Int32Array(numBins);
    for (let r = 0; r < idx.length; r++) out[idx[r]!]!++;
    return new Tensor(out, [numBins], this.engine);
  }

  private combine(
    where: string,
    other: TensorOperand,
    f: (a: number, b: number) => number,
  ): Tensor<Float32Array | Float64Array> {
    if (typeof other === 'number') {
      const out =
        this.data instanceof Float32Array ? new Float32Array(this.data.length) : new Float64Array(this.data.length);
      for (let k = 0; k < out.length; k++) out[k] = f(this.data[k]!, other);
      return new Tensor(out, this.shape, this.engine);
    }
    if (!(other instanceof Tensor)) {
      throw new InputError(`${where}: the operand must be a number or a Tensor, got ${typeof other}`);
    }
    const rank = Math.max(this.shape.length, other.shape.length);
    const pad = (shape: readonly number[]) => [...new Array<number>(rank - shape.length).fill(1), ...shape];
    const sa = pad(this.shape);
    const sb = pad(other.shape);
    const shape = sa.map((a, k) => {
      const b = sb[k]!;
      if (a !== b && a !== 1 && b !== 1) {
        throw new ShapeError(
          `${where}: shapes [${this.shape.join(', ')}] and [${other.shape.join(', ')}] do not broadcast (axis ${k}: ${a} vs ${b}; each must be equal or 1)`,
        );
      }
      return a === 1 ? b : a;
    });
    const size = shape.reduce((p, s) => p * s, 1);
    const float32 = this.data instanceof Float32Array && other.data instanceof Float32Array;
    const out = float32 ? new Float32Array(size) : new Float64Array(size);
    const strides = (s: readonly number[]) => {
      const st = new Array<number>(rank).fill(0);
      let acc = 1;
      for (let k = rank - 1; k >= 0; k--) {
        st[k] = s[k] === 1 ? 0 : acc; // a broadcast axis does not move
        acc *= s[k]!;
      }
      return st;
    };
    const ta = strides(sa);
    const tb = strides(sb);
    const counter = new Array<number>(rank).fill(0);
    let ia = 0;
    let ib = 0;
    for (let q = 0; q < size; q++) {
      out[q] = f(this.data[ia]!, other.data[ib]!);
      // Odometer increment of the output index, moving both input offsets along.
      for (let k = rank - 1; k >= 0; k--) {
        counter[k]!++;
        ia += ta[k]!;
        ib += tb[k]!;
        if (counter[k]! < shape[k]!) break;
        ia -= ta[k]! * shape[k]!;
        ib -= tb[k]! * shape[k]!;
        counter[k] = 0;
      }
    }
    return new Tensor(out, shape, this.engine);
  }

  private reduceAxis(where: string, axis: number, mean: boolean): Tensor<Float64Array> {
    const rank = this.shape.length;
    if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
      throw new InputError(`${where}: axis must be an integer in [${-rank}, ${rank - 1}], got ${String(axis)}`);
    }
    const a = axis < 0 ? axis + rank : axis;
    const outer = this.shape.slice(0, a).reduce((p, s) => p * s, 1);
    const n = this.shape[a]!;
    const inner = this.shape.slice(a + 1).reduce((p, s) => p * s, 1);
    if (mean && n === 0) throw new InputError(`${where}: axis ${axis} is empty`);
    const out = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < n; r++) {
        const base = (o * n + r) * inner;
        for (let k = 0; k < inner; k++) out[o * inner + k] = out[o * inner + k]! + this.data[base + k]!;
      }
    }
    if (mean) for (let k = 0; k < out.length; k++) out[k] = out[k]! / n;
    return new Tensor(out, [...this.shape.slice(0, a), ...this.shape.slice(a + 1)], this.engine);
  }

  /** The values as nested arrays, one level per axis. */
  toArray(): NestedArray[] {
    const build = (axis: number, offset: number): NestedArray[] => {
      const n = this.shape[axis]!;
      const stride = this.shape.slice(axis + 1).reduce((p, s) => p * s, 1);
      const out: NestedArray[] = [];
      for (let k = 0; k < n; k++) {
        out.push(axis === this.shape.length - 1 ? this.data[offset + k]! : build(axis + 1, offset + k * stride));
      }
      return out;
    };
    return build(0, 0);
  }
}

function checkBins(where: string, numBins: number): void {
  if (typeof numBins !== 'number' || !Number.isInteger(numBins) || numBins < 1 || numBins > 2 ** 31 - 1) {
    throw new InputError(`${where}: numBins must be a positive integer, got ${String(numBins)}`);
  }
}

/** One integer index per row, each in [0, bound): a Tensor of shape [m] or [m, 1], an Int32Array or numbers. */
function checkIndices(where: string, indices: TensorIndices, bound: number): ArrayLike<number> {
  let values: ArrayLike<number>;
  if (indices instanceof Tensor) {
    if (indices.shape.length > 2 || (indices.shape.length === 2 && indices.shape[1] !== 1)) {
      throw new InputError(
        `${where}: indices must have shape [m] or [m, 1] (one index per row), got [${indices.shape.join(', ')}]`,
      );
    }
    values = indices.data;
  } else if (indices instanceof Int32Array || Array.isArray(indices)) values = indices;
  else throw new InputError(`${where}: indices must be a Tensor, an Int32Array or a number[]`);
  for (let r = 0; r < values.length; r++) {
    const v = values[r];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= bound) {
      throw new InputError(
        `${where}: indices[${r}] is ${String(v)}; expected an integer in [0, ${bound})${v === -1 ? ' (-1 marks a row where the reduction selected nothing)' : ''}`,
      );
    }
  }
  return values;
}
