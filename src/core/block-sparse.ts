// Block-sparse reductions, as in KeOps: points are sorted into clusters (contiguous index ranges);
// for each cluster of i, a list of ranges of j to visit, and the same the other way for axis 0.
// Skipping far-apart cluster pairs turns an O(N M) reduction into one over the kept blocks only.

import { InputError } from './errors.js';
import { Tensor } from './tensor.js';

type Points = Float32Array | Float64Array | readonly number[] | readonly (readonly number[])[] | Tensor;

/** The description of the blocks a reduction visits, for both axes (KeOps's 6-tuple). */
export interface BlockRanges {
  /** [start, end) of each cluster of i, flattened pairs. */
  readonly rangesI: Int32Array;
  /** For cluster c of i, its j-ranges are redRangesJ pairs [slicesI[c-1], slicesI[c]) (slicesI[-1] = 0). */
  readonly slicesI: Int32Array;
  /** Ranges of j, flattened pairs. */
  readonly redRangesJ: Int32Array;
  /** The same three for the reduction over i (axis 0). */
  readonly rangesJ: Int32Array;
  /** For cluster c of j, its i-ranges are redRangesI pairs [slicesJ[c-1], slicesJ[c]). */
  readonly slicesJ: Int32Array;
  /** Ranges of i, flattened pairs. */
  readonly redRangesI: Int32Array;
}

function rowsOf(where: string, x: Points, dim?: number): { data: Float64Array; dim: number; n: number } {
  if (dim !== undefined && (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 1)) {
    throw new InputError(`${where}: dim must be a positive integer, got ${String(dim)}`);
  }
  let data: Float64Array;
  let d: number;
  if (x instanceof Tensor) {
    // A result: its shape gives the dimension ([N] is N scalars).
    const td = x.shape.length < 2 ? 1 : x.shape[x.shape.length - 1]!;
    if (dim !== undefined && dim !== td) {
      throw new InputError(`${where}: dim is ${dim} but the Tensor's shape [${x.shape.join(', ')}] has D = ${td}`);
    }
    return rowsOf(where, Float64Array.from(x.data), td);
  }
  const numbers = (values: readonly unknown[], label: string): Float64Array =>
    Float64Array.from(values, (v, k) => {
      if (typeof v !== 'number')
        throw new InputError(`${where}: ${label}[${k}] is ${v === null ? 'null' : typeof v}; expected a number`);
      return v;
    });
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) {
    d = dim ?? 1;
    data = Float64Array.from(x as unknown as ArrayLike<number>);
  } else if (Array.isArray(x) && x.length > 0 && Array.isArray(x[0])) {
    d = (x[0] as readonly number[]).length;
    x.forEach((row, r) => {
      if (!Array.isArray(row) || row.length !== d)
        throw new InputError(`${where}: row ${r} of the points must have ${d} components`);
    });
    data = numbers((x as number[][]).flat(), 'the points (flattened)');
  } else if (Array.isArray(x)) {
    d = dim ?? 1;
    data = numbers(x, 'the points');
  } else {
    throw new InputError(`${where}: the points must be a typed array, a number[] or a number[][]`);
  }
  if (data.length === 0 || d < 1 || data.length % d !== 0)
    throw new InputError(`${where}: expected points of shape [N, ${d}], got ${data.length} values`);
  for (const v of data) if (!Number.isFinite(v)) throw new InputError(`${where}: the points contain ${v}`);
  return { data, dim: d, n: data.length / d };
}

/**
 * Labels points by the cubic cell of side `voxelSize` they fall in: labels are 0..C-1, numbered in the
 * lexicographic order of the cells.
 */
export function gridCluster(x: Points, voxelSize: number, dim?: number): Int32Array {
  if (typeof voxelSize !== 'number' || !(voxelSize > 0) || !Number.isFinite(voxelSize))
    throw new InputError(`gridCluster: voxelSize must be a positive number, got ${voxelSize}`);
  const { data, dim: d, n } = rowsOf('gridCluster', x, dim);
  // Integer cell coordinates, relative to the lowest cell, combined into one mixed-radix number whose
  // numeric order is the lexicographic order of the cells.
  const low = new Float64Array(d).fill(Infinity);
  const high = new Float64Array(d).fill(-Infinity);
  const cell = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) {
      const c = Math.floor(data[i * d + k]! / voxelSize);
      cell[i * d + k] = c;
      low[k] = Math.min(low[k]!, c);
      high[k] = Math.max(high[k]!, c);
    }
  }
  let radixProduct = 1;
  for (let k = 0; k < d; k++) radixProduct *= high[k]! - low[k]! + 1;
  if (!(radixProduct <= Number.MAX_SAFE_INTEGER)) {
    // NaN too: coordinates / voxelSize overflowed
    throw new InputError(`gridCluster: ${radixProduct.toExponential(2)} cells; choose a larger voxelSize`);
  }
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let key = 0;
    for (let k = 0; k < d; k++) key = key * (high[k]! - low[k]! + 1) + (cell[i * d + k]! - low[k]!);
    keys[i] = key;
  }
  const unique = Float64Array.from(new Set(keys)).sort();
  const index = new Map<number, number>();
  unique.forEach((key, q) => index.set(key, q));
  return Int32Array.from(keys, (key) => index.get(key)!);
}

/** Labels index per-cluster arrays: a bound keeps a stray huge label from allocating gigabytes. */
const MAX_CLUSTERS = 2 ** 26;

function checkLabels(where: string, labels: ArrayLike<number>, n: number): number {
  if (labels.length !== n) throw new InputError(`${where}: ${labels.length} labels for ${n} points`);
  let max = -1;
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    if (typeof l !== 'number' || !Number.isInteger(l) || l < 0 || l >= MAX_CLUSTERS) {
      throw new InputError(`${where}: labels[${i}] = ${String(l)} is not an integer in [0, ${MAX_CLUSTERS})`);
    }
    max = Math.max(max, l);
  }
  return max + 1;
}

/**
 * Sorts points by label (stably). Returns the sorted points (row-major), the sorted labels and the
 * permutation: sorted row r is input row `permutation[r]`.
 */
export function sortClusters(
  x: Points,
  labels: ArrayLike<number>,
  dim?: number,
): {
  /** The points sorted by label, row-major [N, D], in the input's precision: a Float32Array (or a
   *  float32 Tensor) stays float32, everything else is float64. */
  points: Float32Array | Float64Array;
  /** The labels in sorted order (non-decreasing). */
  labels: Int32Array;
  /** Sorted row r is input row permutation[r]. */
  permutation: Int32Array;
} {
  const { data, dim: d, n } = rowsOf('sortClusters', x, dim);
  checkLabels('sortClusters', labels, n);
  const permutation = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => labels[a]! - labels[b]! || a - b);
  const float32 = x instanceof Float32Array || (x instanceof Tensor && x.dtype === 'float32');
  const points = float32 ? new Float32Array(n * d) : new Float64Array(n * d);
  permutation.forEach((src, r) => points.set(data.subarray(src * d, src * d + d), r * d));
  return { points, labels: Int32Array.from(permutation, (src) => labels[src]!), permutation };
}

/**
 * For points sorted by label: each cluster's index range [start, end), its centroid (weighted mean)
 * and its total weight (the number of points when `weights` is omitted).
 */
export function clusterRangesCentroids(
  x: Points,
  labels: ArrayLike<number>,
  weights?: ArrayLike<number>,
  dim?: number,
): {
  /** [start, end) of each cluster, flattened pairs (2C values); an empty cluster has start = end. */
  ranges: Int32Array;
  /** The weighted mean of each cluster, row-major [C, D]; NaN for an empty cluster. */
  centroids: Float64Array;
  /** The total weight of each cluster (its number of points without `weights`). */
  weights: Float64Array;
} {
  const { data, dim: d, n } = rowsOf('clusterRangesCentroids', x, dim);
  const C = checkLabels('clusterRangesCentroids', labels, n);
  if (weights !== undefined && (weights === null || typeof weights.length !== 'number'))
    throw new InputError('clusterRangesCentroids: weights must be an array of numbers');
  if (weights !== undefined && weights.length !== n)
    throw new InputError(`clusterRangesCentroids: ${weights.length} weights for ${n} points`);
  if (weights !== undefined) {
    for (let i = 0; i < n; i++) {
      const w = weights[i];
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0)
        throw new InputError(`clusterRangesCentroids: weights[${i}] is ${String(w)}; expected a finite number >= 0`);
    }
  }
  const ranges = new Int32Array(2 * C).fill(-1);
  const centroids = new Float64Array(C * d);
  const total = new Float64Array(C);
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    if (i > 0 && l < labels[i - 1]!)
      throw new InputError('clusterRangesCentroids: the labels must be sorted (use sortClusters first)');
    if (ranges[2 * l] === -1) ranges[2 * l] = i;
    ranges[2 * l + 1] = i + 1;
    const w = weights === undefined ? 1 : weights[i]!;
    total[l] = total[l]! + w;
    for (let k = 0; k < d; k++) centroids[l * d + k] = centroids[l * d + k]! + w * data[i * d + k]!;
  }
  for (let l = 0; l < C; l++) {
    if (ranges[2 * l] === -1) ranges[2 * l] = ranges[2 * l + 1] = l === 0 ? 0 : ranges[2 * l - 1]!;
    for (let k = 0; k < d; k++) centroids[l * d + k] = total[l]! > 0 ? centroids[l * d + k]! / total[l]! : NaN;
  }
  return { ranges, centroids, weights: total };
}

/**
 * The block-sparsity pattern from cluster ranges and a boolean matrix keep[ci][cj] (row-major Ci x Cj),
 * for the `ranges` option of a reduction (both axes).
 * @throws RangeError when keep does not have Ci x Cj entries.
 * @example
 * ```ts
 * const sx = sortClusters(x, gridCluster(x, 0.1, 3), 3);
 * const cx = clusterRangesCentroids(sx.points, sx.labels, undefined, 3);
 * // ... the same for y, then keep[ci * Cj + cj] = centroid distance < cutoff
 * const out = await K.sum(1, { ranges: fromMatrix(cx.ranges, cy.ranges, keep) });
 * ```
 */
export function fromMatrix(rangesI: Int32Array, rangesJ: Int32Array, keep: ArrayLike<boolean | number>): BlockRanges {
  rangesI = indexArray('fromMatrix', 'rangesI', rangesI);
  rangesJ = indexArray('fromMatrix', 'rangesJ', rangesJ);
  if (keep === null || typeof keep !== 'object' || typeof keep.length !== 'number')
    throw new InputError('fromMatrix: keep must be an array of Ci x Cj booleans');
  const Ci = rangesI.length / 2;
  const Cj = rangesJ.length / 2;
  if (!Number.isInteger(Ci) || !Number.isInteger(Cj))
    throw new InputError('fromMatrix: ranges must hold [start, end) pairs');
  if (keep.length !== Ci * Cj)
    throw new InputError(`fromMatrix: keep has ${keep.length} entries, expected ${Ci} x ${Cj} = ${Ci * Cj}`);
  // Both axes from the same matrix: keep[o * strideO + q * strideQ] says whether the outer cluster
  // o and the inner cluster q interact.
  const build = (outer: number, inner: number, ranges: Int32Array, strideO: number, strideQ: number) => {
    const slices = new Int32Array(outer);
    const red: number[] = [];
    for (let o = 0; o < outer; o++) {
      const first = red.length;
      for (let q = 0; q < inner; q++) {
        if (!keep[o * strideO + q * strideQ]) continue;
        // Kept clusters that follow each other in memory make one range: with small clusters the
        // per-range cost of a reduction would otherwise dominate.
        if (red.length > first && red[red.length - 1] === ranges[2 * q]) red[red.length - 1] = ranges[2 * q + 1]!;
        else red.push(ranges[2 * q]!, ranges[2 * q + 1]!);
      }
      slices[o] = red.length / 2;
    }
    return { slices, red: Int32Array.from(red) };
  };
  const byI = build(Ci, Cj, rangesJ, Cj, 1);
  const byJ = build(Cj, Ci, rangesI, 1, Cj);
  return { rangesI, slicesI: byI.slices, redRangesJ: byI.red, rangesJ, slicesJ: byJ.slices, redRangesI: byJ.red };
}

/** The same pattern with the roles of i and j exchanged. */
export function swapAxes(r: BlockRanges): BlockRanges {
  return {
    rangesI: r.rangesJ,
    slicesI: r.slicesJ,
    redRangesJ: r.redRangesI,
    rangesJ: r.rangesI,
    slicesJ: r.slicesI,
    redRangesI: r.redRangesJ,
  };
}

/** The triplet a reduction over `axis` uses, checked against the sizes. */
export function rangesForAxis(
  where: string,
  r: BlockRanges,
  axis: 0 | 1,
  nOuter: number,
  nInner: number,
): { outer: Int32Array; slices: Int32Array; inner: Int32Array } {
  if (typeof r !== 'object' || r === null) {
    throw new InputError(
      `${where}: ranges must be a BlockRanges object (from fromMatrix), got ${r === null ? 'null' : typeof r}`,
    );
  }
  const names =
    axis === 1 ? (['rangesI', 'slicesI', 'redRangesJ'] as const) : (['rangesJ', 'slicesJ', 'redRangesI'] as const);
  const [outer, slices, inner] = names.map((name) => indexArray(where, `ranges.${name}`, r[name])) as [
    Int32Array,
    Int32Array,
    Int32Array,
  ];
  if (outer.length % 2 !== 0 || inner.length % 2 !== 0) {
    throw new InputError(
      `${where}: ranges.${names[0]} and ranges.${names[2]} must hold [start, end) pairs (an even number of integers)`,
    );
  }
  const C = outer.length / 2;
  if (slices.length !== C) throw new InputError(`${where}: ranges has ${C} clusters but ${slices.length} slices`);
  const check = (pairs: Int32Array, n: number, name: string) => {
    for (let q = 0; q < pairs.length; q += 2) {
      if (!(pairs[q]! >= 0 && pairs[q]! <= pairs[q + 1]! && pairs[q + 1]! <= n)) {
        throw new InputError(`${where}: ${name} range [${pairs[q]}, ${pairs[q + 1]}) is outside [0, ${n})`);
      }
    }
  };
  check(outer, nOuter, 'an outer');
  check(inner, nInner, 'an inner');
  let previous = 0;
  for (const s of slices) {
    if (s < previous || s > inner.length / 2)
      throw new InputError(`${where}: slices must be non-decreasing and at most ${inner.length / 2}`);
    previous = s;
  }
  return { outer: outer, slices: slices, inner: inner };
}

/** An Int32Array of indices as given, or a plain array of integers converted to one. */
function indexArray(where: string, name: string, value: unknown): Int32Array {
  if (value instanceof Int32Array) return value;
  const array = Array.isArray(value)
    ? value
    : ArrayBuffer.isView(value) && !(value instanceof DataView)
      ? Array.from(value as unknown as ArrayLike<number>)
      : null;
  if (array === null)
    throw new InputError(
      `${where}: ${name} must be an Int32Array of indices, got ${value === null ? 'null' : typeof value}`,
    );
  array.forEach((v, k) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) {
      throw new InputError(`${where}: ${name}[${k}] is ${String(v)}; expected a non-negative integer index`);
    }
  });
  return Int32Array.from(array as number[]);
}
