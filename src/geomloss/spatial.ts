// Spatial order of a point cloud: a k-d tree order, in which consecutive points are close in space.
// The multiscale backend cuts it into tiles (its truncation's blocks); the online backend runs
// Sinkhorn on it too, because the kernel's log-sum-exp skips runs of 16 consecutive terms that all
// underflow, and at small eps nearly every run of 16 spatial neighbours is far from a given point
// (10^4-point bench: about 3.9 s instead of 4.3 s; same value to 1e-11, only the summation order changes).
// The order itself is the core's public kdOrder (src/core/kd-order.ts), imported like the rest of the core.
import { kdOrder } from '../index.js';
import type { Cloud } from './inputs.js';

/** The cloud and its weights in k-d tree order (leaves of at most `leaf` points): row r of the
 *  result is input row perm[r]. */
export function spatialSort(
  c: Cloud,
  w: Float64Array,
  dtype: 'float32' | 'float64',
  leaf: number,
): { cloud: Cloud; w: Float64Array; perm: Int32Array; leaves: Int32Array } {
  const { N, D } = c;
  const { perm, leaves } = kdOrder(c.data, N, D, leaf);
  const points = new Float64Array(N * D);
  for (let r = 0; r < N; r++) for (let k = 0; k < D; k++) points[r * D + k] = c.data[perm[r]! * D + k]!;
  const data = dtype === 'float32' ? Float32Array.from(points) : points;
  return { cloud: { ...c, data }, w: Float64Array.from(perm, (src) => w[src]!), perm, leaves };
}

/** Values of sorted rows (dim per row) back in the input order: out[perm[r]] = v[r]. */
export function unsort(v: Float64Array, perm: Int32Array, dim = 1): Float64Array {
  const out = new Float64Array(v.length);
  for (let r = 0; r < perm.length; r++) {
    const src = perm[r]!;
    for (let k = 0; k < dim; k++) out[src * dim + k] = v[r * dim + k]!;
  }
  return out;
}
