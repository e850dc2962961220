// Spatial order of a point cloud: a k-d tree order, in which consecutive points are close in space.
// The multiscale backend cuts it into tiles (its truncation's blocks); the online backend runs
// Sinkhorn on it too, because the kernel's log-sum-exp skips runs of 16 consecutive terms that all
// underflow, and at small eps nearly every run of 16 spatial neighbours is far from a given point
// (10^4-point bench: about 3.9 s instead of 4.3 s; same value to 1e-11, only the summation order changes).
import type { Cloud } from './inputs.js';

/**
 * A k-d tree order: the rows are split in two at the median of their widest coordinate until at
 * most `leaf` remain; returns the permutation (rows of a leaf consecutive, neighbouring leaves mostly
 * consecutive too) and the leaves as [start, end) ranges of it, in order.
 */
export function kdOrder(
  data: ArrayLike<number>,
  N: number,
  D: number,
  leaf: number,
): { perm: Int32Array; leaves: Int32Array } {
  const perm = Int32Array.from({ length: N }, (_, i) => i);
  const leaves: number[] = [];
  const stack: [number, number][] = [[0, N]];
  while (stack.length > 0) {
    const [lo, hi] = stack.pop()!;
    if (hi - lo <= leaf) {
      leaves.push(lo, hi);
      continue;
    }
    let axis = 0;
    let widest = -1;
    for (let k = 0; k < D; k++) {
      let mn = Infinity;
      let mx = -Infinity;
      for (let r = lo; r < hi; r++) {
        const v = data[perm[r]! * D + k]!;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      if (mx - mn > widest) {
        widest = mx - mn;
        axis = k;
      }
    }
    // Split at a multiple of the leaf size near the median, so that the leaves are full: the rows
    // before `mid` are the smaller ones by that coordinate (then by row: a total order, so the same
    // tree on every run).
    const mid = Math.min(hi - 1, lo + Math.ceil((hi - lo) / 2 / leaf) * leaf);
    selectRank(perm, lo, hi, mid, data, D, axis);
    // The right half goes on the stack first: the left one pops first, leaves come out in order.
    stack.push([mid, hi], [lo, mid]);
  }
  return { perm, leaves: Int32Array.from(leaves) };
}

/**
 * Reorders perm[lo, hi) so that perm[k] is the row of rank k - lo by (coordinate `axis`, row index),
 * with no larger row before it and no smaller one after it: Hoare's selection with median-of-three
 * pivots, expected linear time (a full sort at every level of the tree cost ~0.6 s at 10^5 points).
 */
function selectRank(
  perm: Int32Array,
  lo: number,
  hi: number,
  k: number,
  data: ArrayLike<number>,
  D: number,
  axis: number,
): void {
  const less = (u: number, v: number): boolean => {
    const a = data[u * D + axis]!;
    const b = data[v * D + axis]!;
    return a < b || (a === b && u < v);
  };
  let l = lo;
  let r = hi - 1;
  while (r > l) {
    const a = perm[l]!;
    const b = perm[(l + r) >>> 1]!;
    const c = perm[r]!;
    const pivot = less(a, b) ? (less(b, c) ? b : less(a, c) ? c : a) : less(a, c) ? a : less(b, c) ? c : b;
    let i = l;
    let j = r;
    while (i <= j) {
      while (less(perm[i]!, pivot)) i++;
      while (less(pivot, perm[j]!)) j--;
      if (i <= j) {
        const t = perm[i]!;
        perm[i] = perm[j]!;
        perm[j] = t;
        i++;
        j--;
      }
    }
    // perm[l..j] <= pivot <= perm[i..r]; the rank k is in one of them, or between (then in place).
    if (k <= j) r = j;
    else if (k >= i) l = i;
    else return;
  }
}

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
