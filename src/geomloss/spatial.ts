// Spatial order of a point cloud: a k-d tree order, in which consecutive points are close in space.
// The multiscale backend cuts it into tiles (its truncation's blocks); the online backend runs
// Sinkhorn on it too, because the kernel's log-sum-exp skips runs of 16 consecutive terms that all
// underflow, and at small eps nearly every run of 16 spatial neighbours is far from a given point
// (10^4-point bench: about 3.9 s instead of 4.3 s; same value to 1e-11, only the summation order changes).
// The order itself is the core's public kdOrderAsync (src/core/kd-order.ts), imported like the rest of
// the core: time-sliced, since the synchronous kdOrder holds the event loop for ~0.7 s at 10^6 points.
import { checkpoint, kdOrderAsync, type AbortSignalLike } from '../index.js';
import type { Cloud } from './inputs.js';

/** Coordinates copied into the sorted cloud between two checkpoints (a few ms of work). */
const COPY_SLICE = 1 << 18;

/** The cloud and its weights in k-d tree order (leaves of at most `leaf` points): row r of the
 *  result is input row perm[r]. Yields to the event loop while it works and rejects with the
 *  signal's reason on an abort. */
export async function spatialSort(
  c: Cloud,
  w: Float64Array,
  dtype: 'float32' | 'float64',
  leaf: number,
  signal?: AbortSignalLike,
): Promise<{ cloud: Cloud; w: Float64Array; perm: Int32Array; leaves: Int32Array }> {
  const { N, D } = c;
  const { perm, leaves } = await kdOrderAsync(c.data, N, D, leaf, signal);
  const data = dtype === 'float32' ? new Float32Array(N * D) : new Float64Array(N * D);
  const rowsPerSlice = Math.max(1, Math.floor(COPY_SLICE / D));
  const sortedW = new Float64Array(N);
  for (let r0 = 0; r0 < N; r0 += rowsPerSlice) {
    await checkpoint(signal);
    copyRows(c.data, w, D, perm, r0, Math.min(N, r0 + rowsPerSlice), data, sortedW);
  }
  return { cloud: { ...c, data }, w: sortedW, perm, leaves };
}

/** Rows [r0, r1) of the sorted cloud and weights. A function of its own: V8 does not swap a running
 *  async function's loop for optimised code (measured: 10^6 rows in one such loop held the event loop
 *  for 300 ms). */
function copyRows(
  from: Float32Array | Float64Array,
  w: Float64Array,
  D: number,
  perm: Int32Array,
  r0: number,
  r1: number,
  data: Float32Array | Float64Array,
  sortedW: Float64Array,
): void {
  for (let r = r0; r < r1; r++) {
    const src = perm[r]!;
    sortedW[r] = w[src]!;
    for (let k = 0; k < D; k++) data[r * D + k] = from[src * D + k]!;
  }
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
