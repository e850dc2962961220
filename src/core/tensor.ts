// The result of a reduction: a dense array with a shape, a dtype and the engine that computed it.

import { InputError } from './errors.js';

/** The engine that computed a result. */
export type EngineName = 'wasm' | 'webgpu';

/** The element type of a result. */
export type TensorDType = 'float32' | 'float64' | 'int32';

type TensorData = Float32Array | Float64Array | Int32Array;

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
