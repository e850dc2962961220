// The passes of a K-means run over the rows of its points, other than the assignment: per-cluster
// sums and counts (the centroid update), the inertia, and the coordinate moments (the tolerance).
//
// WHY A MODULE OF ITS OWN
// The same code runs on the main thread (kMeans, over a range of rows between two yields) and in the
// WebAssembly engine's workers, over their resident copy of the points (src/wasm/worker-entry.ts,
// bundled into the worker source): so it imports nothing. Each pass adds into a float64 result that
// is additive over row ranges (sums of a range [a, b) plus sums of [b, c) are the sums of [a, c)),
// so the rows can be split between workers and the parts' results added in order.
//
// SPEED
// Rows of at least ROW_VIEW_MIN_D values are read through row views with 4 values per step: 2.5-3x
// faster in V8 than one indexed loop over the whole arrays (measured when kMeans was written).

/** The passes: see runRowPass. */
export type RowPass = 'sums' | 'inertia' | 'moments';

/** The operands of one pass over rows [from, to) of x ([N, dim] row-major). */
export interface RowPassInput {
  readonly pass: RowPass;
  readonly dim: number;
  readonly from: number;
  readonly to: number;
  /** 'sums' and 'inertia': the cluster of rows [from, to), indexed from `from` (labels[i - from]). */
  readonly labels: Int32Array | null;
  /** 'sums': the number of clusters K. */
  readonly clusters: number;
  /** 'inertia': the centroids [K, dim] in float64. */
  readonly centroids: Float64Array | null;
}

/** The length of a pass's result: 'sums' K * dim sums then K counts; 'inertia' 1; 'moments' 2 * dim. */
export function rowPassLength(input: Pick<RowPassInput, 'pass' | 'dim' | 'clusters'>): number {
  switch (input.pass) {
    case 'sums':
      return input.clusters * (input.dim + 1);
    case 'inertia':
      return 1;
    case 'moments':
      return 2 * input.dim;
    default: {
      const never: never = input.pass;
      throw new Error(`internal: row pass ${String(never)}`);
    }
  }
}

/** Rows of at least this many values are read through row views; shorter ones by index. */
const ROW_VIEW_MIN_D = 16;

/**
 * Adds the pass over rows [from, to) of x into `out` (rowPassLength values):
 * - 'sums': out[k * dim + d] += x[i, d] and out[K * dim + k] += 1 for each row i of cluster k;
 * - 'inertia': out[0] += |x[i] - c[label i]|^2;
 * - 'moments': out[d] += x[i, d] - x[0, d] and out[dim + d] += (x[i, d] - x[0, d])^2: the first row
 *   of x is the shift that keeps the variance sum(t^2) / N - (sum(t) / N)^2 free of cancellation
 *   when the data sit far from the origin (the shifted-data algorithm).
 * Each out value receives its rows in row order.
 */
export function runRowPass(x: Float32Array | Float64Array, input: RowPassInput, out: Float64Array): void {
  const { dim: D, from, to } = input;
  switch (input.pass) {
    case 'sums': {
      const labels = input.labels!;
      const counts = input.clusters * D;
      for (let i = from, r = from * D; i < to; i++, r += D) {
        const l = labels[i - from]!;
        out[counts + l] = out[counts + l]! + 1;
        if (D >= ROW_VIEW_MIN_D) addRow(out.subarray(l * D, l * D + D), x.subarray(r, r + D), D);
        else for (let d = 0, o = l * D; d < D; d++) out[o + d] = out[o + d]! + x[r + d]!;
      }
      return;
    }
    case 'inertia': {
      const labels = input.labels!;
      const c = input.centroids!;
      let s = 0;
      for (let i = from, r = from * D; i < to; i++, r += D) {
        const o = labels[i - from]! * D;
        s += D >= ROW_VIEW_MIN_D ? rowSqDist(x.subarray(r, r + D), c.subarray(o, o + D), D) : sqDistAt(x, r, c, o, D);
      }
      out[0] = out[0]! + s;
      return;
    }
    case 'moments': {
      const s1 = out.subarray(0, D);
      const s2 = out.subarray(D, 2 * D);
      const x0 = x.subarray(0, D);
      for (let r = from * D, end = to * D; r < end; r += D) {
        const row = D >= ROW_VIEW_MIN_D ? x.subarray(r, r + D) : null;
        for (let d = 0; d < D; d++) {
          const t = (row === null ? x[r + d]! : row[d]!) - x0[d]!;
          s1[d] = s1[d]! + t;
          s2[d] = s2[d]! + t * t;
        }
      }
      return;
    }
    default: {
      const never: never = input.pass;
      throw new Error(`internal: row pass ${String(never)}`);
    }
  }
}

/** s += x over D values, in order, 4 values per step. */
function addRow(s: Float64Array, x: Float32Array | Float64Array, D: number): void {
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    s[d] = s[d]! + x[d]!;
    s[d + 1] = s[d + 1]! + x[d + 1]!;
    s[d + 2] = s[d + 2]! + x[d + 2]!;
    s[d + 3] = s[d + 3]! + x[d + 3]!;
  }
  for (; d < D; d++) s[d] = s[d]! + x[d]!;
}

/** |x - c|^2 over D values in float64, summed in order. */
function rowSqDist(x: Float32Array | Float64Array, c: Float64Array, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) {
    const t = x[d]! - c[d]!;
    s += t * t;
  }
  return s;
}

function sqDistAt(x: Float32Array | Float64Array, r: number, c: Float64Array, o: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) {
    const t = x[r + d]! - c[o + d]!;
    s += t * t;
  }
  return s;
}

/** The variance of each coordinate summed over the coordinates, from the 'moments' of N rows. */
export function varianceFromMoments(moments: Float64Array, N: number, D: number): number {
  let variance = 0;
  for (let d = 0; d < D; d++) {
    const mean = moments[d]! / N;
    variance += Math.max(0, moments[D + d]! / N - mean * mean);
  }
  return variance;
}
