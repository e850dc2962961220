// K-nearest neighbours, exact, on the public LazyTensor API: a brute-force kMinArgKMin in general,
// and at small D for the Euclidean and Manhattan metrics a k-d tree search whose blocks are the
// ranges of block-sparse reductions. The core knows no engine: every pair value comes from a
// reduction, so the tree search returns exactly what argKMin of the same formula returns.
import type { AbortSignalLike } from './scheduling.js';
import { InputError } from './errors.js';
import type { BlockRanges } from './block-sparse.js';
import type { DType } from './formula.js';
import { checkDType, checkOptionKeys, makeVariable, type ArrayInput } from './input.js';
import { kdOrder } from './kd-order.js';
import { LazyTensor, Vi, Vj } from './lazy-tensor.js';
import type { EngineChoice } from './reduction.js';
import { Tensor, type EngineName } from './tensor.js';

/** A K-NN metric: a name, or a formula of x (a `Vi`) and y (a `Vj`) giving a dimension-1 LazyTensor,
 *  smaller meaning nearer. */
export type KnnMetric =
  'euclidean' | 'sqeuclidean' | 'cosine' | 'manhattan' | ((x: LazyTensor, y: LazyTensor) => LazyTensor);

/** Options of {@link knn}. */
export interface KnnOptions {
  /** Default 'euclidean'. See {@link knn} for the formula of each. */
  metric?: KnnMetric;
  /** Components per row of flat x and y data (default 1; rows given as number[][] set it). */
  dim?: number;
  /** Precision override; by default a Float32Array gives float32, otherwise float64. */
  dtype?: DType;
  /** 'auto' (default): the k-d tree search when it applies (D <= 8, euclidean, sqeuclidean or
   *  manhattan, N M >= 2^20), brute force otherwise; 'tree' forces the tree where it applies;
   *  'brute' always runs one dense kMinArgKMin. The result is the same. */
  method?: 'auto' | 'tree' | 'brute';
  /** The engine of every reduction (default: the global default). */
  engine?: EngineChoice;
  /** Cancels the search: passed to every reduction and checked between rounds. */
  signal?: AbortSignalLike;
}

/** The result of {@link knn}. */
export interface KnnResult {
  /** Row i: the indices (rows of y) of the K nearest neighbours of x_i, nearest first, shape [N, K]. */
  indices: Tensor<Int32Array>;
  /** Their distances in the input precision (Euclidean: the square root of the squared distance),
   *  shape [N, K]. */
  distances: Tensor<Float32Array | Float64Array>;
}

const KNN_KEYS = new Set(['metric', 'dim', 'dtype', 'method', 'engine', 'signal']);

/** Points [n, D] with their precision. */
interface Rows {
  data: Float32Array | Float64Array;
  n: number;
  d: number;
  dtype: DType | null;
}

function rowsOf(where: string, category: 'i' | 'j', data: ArrayInput, dim: number | undefined): Rows {
  const v = makeVariable(where, category, data, dim, undefined);
  if (v.batch.length > 0)
    throw new InputError(`${where}: batched [B, N, D] data is not supported; call once per batch item`);
  return { data: v.data, n: v.rows, d: v.dim, dtype: v.dtype };
}

/** The ranking formula of a metric, and how its values become distances. */
function metricFormula(metric: KnnMetric): {
  formula: (x: LazyTensor, y: LazyTensor) => LazyTensor;
  sqrt: boolean;
  prune: 'l2' | 'l1' | null;
} {
  if (typeof metric === 'function') return { formula: metric, sqrt: false, prune: null };
  switch (metric) {
    case 'euclidean':
      return { formula: (x, y) => x.sqDist(y), sqrt: true, prune: 'l2' };
    case 'sqeuclidean':
      return { formula: (x, y) => x.sqDist(y), sqrt: false, prune: 'l2' };
    case 'manhattan':
      return { formula: (x, y) => x.sub(y).abs().sum(-1), sqrt: false, prune: 'l1' };
    case 'cosine':
      return { formula: (x, y) => x.normalize().dot(y.normalize()).neg().add(1), sqrt: false, prune: null };
    default: {
      const never: never = metric;
      throw new InputError(
        `knn: metric must be 'euclidean', 'sqeuclidean', 'cosine', 'manhattan' or a function (x, y) => LazyTensor, got ${String(never)}`,
      );
    }
  }
}

/**
 * The K nearest rows of y for each row of x, exact.
 *
 * Metrics and the formula each ranks by: 'euclidean' `x.sqDist(y)` (distances: its square root),
 * 'sqeuclidean' `x.sqDist(y)`, 'manhattan' `x.sub(y).abs().sum(-1)`, 'cosine'
 * `x.normalize().dot(y.normalize()).neg().add(1)` (1 - cosine similarity; a zero vector is at
 * distance 1 from everything), or a function `(x, y) => LazyTensor` of dimension 1. The neighbours are
 * always exactly those of `formula(Vi(x), Vj(y)).argKMin(K, 1)` in the same precision: ascending,
 * ties to the lowest index of y; a NaN value of a custom formula is never selected (index -1, NaN).
 *
 * At D <= 8 with 'euclidean', 'sqeuclidean' or 'manhattan', the search sorts x and y in k-d tree order
 * (leaves of 64 rows), bounds the distance between the bounding boxes of a leaf of x and a leaf of y
 * from below (with a margin for the rounding of the engine's arithmetic), and visits the leaves of y
 * nearest first, in rounds of block-sparse kMinArgKMin reductions, until the K-th distance of every
 * row of the x-leaf is below the bound of every leaf not visited. Queries whose K-th distance ties
 * with a candidate a round had to drop are recomputed by brute force, so ties still go to the lowest
 * index. Other cases run one dense kMinArgKMin.
 *
 * @param x queries [N, D]: Float32Array, Float64Array, flat number[] (with `dim`) or number[][].
 * @param y data [M, D], the same kinds.
 * @param K the number of neighbours, an integer in [1, M].
 * @throws RangeError when K is not an integer in [1, M], when x and y have different D, or on bad
 *   data (NaN, infinite, empty, ragged: as `Vi`/`Vj`).
 * @throws TypeError on an unknown option or metric, or a metric function not returning a
 *   dimension-1 LazyTensor.
 * @example
 * ```ts
 * const { indices, distances } = await knn(queries, points, 10, { dim: 3 });
 * ```
 */
export async function knn(x: ArrayInput, y: ArrayInput, K: number, options: KnnOptions = {}): Promise<KnnResult> {
  checkOptionKeys('knn', options, KNN_KEYS);
  const xs = rowsOf('knn: x', 'i', x, options.dim);
  const ys = rowsOf('knn: y', 'j', y, options.dim);
  if (xs.d !== ys.d) throw new InputError(`knn: x has ${xs.d} components per row and y has ${ys.d}; they must match`);
  if (!Number.isInteger(K) || K < 1) throw new InputError(`knn: K must be a positive integer, got ${K}`);
  if (K > ys.n) throw new InputError(`knn: K = ${K} is larger than the number of rows of y (${ys.n})`);
  const method = options.method ?? 'auto';
  if (method !== 'auto' && method !== 'tree' && method !== 'brute')
    throw new InputError(`knn: method must be 'auto', 'tree' or 'brute', got ${String(method)}`);
  const dtype: DType = checkDType('knn', options.dtype) ?? xs.dtype ?? ys.dtype ?? 'float64';
  const m = metricFormula(options.metric ?? 'euclidean');
  const probe = m.formula(Vi(xs.data.subarray(0, xs.d), xs.d), Vj(ys.data.subarray(0, ys.d), ys.d));
  if (!(probe instanceof LazyTensor) || probe.dim !== 1) {
    throw new InputError('knn: the metric function must return a LazyTensor of dimension 1');
  }
  let engine: EngineName = 'wasm';
  const reduce: Reduce = async (qx, qy, k, ranges) => {
    const F = m.formula(Vi(qx, xs.d), Vj(qy, ys.d));
    const r = await F.kMinArgKMin(k, 1, {
      dtype,
      ...(ranges === undefined ? {} : { ranges }),
      ...(options.engine === undefined ? {} : { engine: options.engine }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    engine = r.values.engine;
    return { values: r.values.data as Float32Array | Float64Array, indices: r.indices.data };
  };
  const useTree = m.prune !== null && xs.d <= 8 && method !== 'brute' && (method === 'tree' || xs.n * ys.n >= 2 ** 20);
  const found = useTree
    ? await treeSearch(xs, ys, K, dtype, m.prune!, reduce, options.signal)
    : await reduce(xs.data, ys.data, K);
  const values = dtype === 'float32' ? new Float32Array(found.values) : new Float64Array(found.values);
  if (m.sqrt) for (let q = 0; q < values.length; q++) values[q] = Math.sqrt(values[q]!);
  return { indices: new Tensor(found.indices, [xs.n, K], engine), distances: new Tensor(values, [xs.n, K], engine) };
}

type Reduce = (
  x: Float32Array | Float64Array,
  y: Float32Array | Float64Array,
  K: number,
  ranges?: BlockRanges,
) => Promise<{ values: Float32Array | Float64Array; indices: Int32Array }>;

/** Rows of `data` (d per row) in the order `perm`, in the same array type. */
function permuteRows(data: Float32Array | Float64Array, perm: Int32Array, d: number): Float32Array | Float64Array {
  const out = data instanceof Float32Array ? new Float32Array(data.length) : new Float64Array(data.length);
  for (let r = 0; r < perm.length; r++) for (let k = 0; k < d; k++) out[r * d + k] = data[perm[r]! * d + k]!;
  return out;
}

/** Bounding boxes [lo, hi] of each leaf, in the precision the engine computes with. */
function leafBoxes(
  data: Float32Array | Float64Array,
  leaves: Int32Array,
  d: number,
  dtype: DType,
): { lo: Float64Array; hi: Float64Array } {
  const L = leaves.length / 2;
  const lo = new Float64Array(L * d).fill(Infinity);
  const hi = new Float64Array(L * d).fill(-Infinity);
  for (let b = 0; b < L; b++) {
    for (let r = leaves[2 * b]!; r < leaves[2 * b + 1]!; r++) {
      for (let k = 0; k < d; k++) {
        // A float64 input reduced in float32 is rounded by the engine first: the box must hold the
        // rounded coordinates.
        const v = dtype === 'float32' ? Math.fround(data[r * d + k]!) : data[r * d + k]!;
        if (v < lo[b * d + k]!) lo[b * d + k] = v;
        if (v > hi[b * d + k]!) hi[b * d + k] = v;
      }
    }
  }
  return { lo, hi };
}

async function treeSearch(
  xs: Rows,
  ys: Rows,
  K: number,
  dtype: DType,
  norm: 'l2' | 'l1',
  reduce: Reduce,
  signal: AbortSignalLike | undefined,
): Promise<{ values: Float64Array; indices: Int32Array }> {
  const { n: N, d: D } = xs;
  const M = ys.n;
  // Leaves of 64 rows, larger when the (x-leaf, y-leaf) table would pass 2^25 entries.
  let leaf = 64;
  while (Math.ceil(N / leaf) * Math.ceil(M / leaf) > 2 ** 25) leaf *= 2;
  const kx = kdOrder(xs.data, N, D, leaf);
  const ky = kdOrder(ys.data, M, D, leaf);
  const px = permuteRows(xs.data, kx.perm, D);
  const py = permuteRows(ys.data, ky.perm, D);
  const nQ = kx.leaves.length / 2;
  const nB = ky.leaves.length / 2;
  const bx = leafBoxes(px, kx.leaves, D, dtype);
  const by = leafBoxes(py, ky.leaves, D, dtype);
  // Each round keeps K + 1 candidates per row (K when K = M: then nothing is ever dropped): a dropped
  // candidate is no smaller than the (K+1)-th kept one, which tells whether it could tie the K-th.
  const Kr = Math.min(K + 1, M);
  const bestV = new Float64Array(N * K).fill(Infinity);
  const bestI = new Int32Array(N * K).fill(-1);
  const count = new Int32Array(N);
  const dropFloor = new Float64Array(N).fill(Infinity);
  const visited = new Uint8Array(nQ * nB);
  // The engine's value of a pair is its exact distance up to a relative error of about (D + 2) units
  // of roundoff (nonnegative terms: no cancellation), plus subnormal underflow; the bound is shrunk
  // by well over that, so a pruned leaf's values are strictly above the K-th distance.
  const unit = dtype === 'float32' ? 2 ** -24 : 2 ** -53;
  const rel = 1 - 4 * (D + 4) * unit;
  const abs = (D + 1) * (dtype === 'float32' ? 2 ** -126 : 2 ** -1022);
  const lower = new Float64Array(nB);
  const key = new Float64Array(nB);
  const boxBound = (q: number, b: number): void => {
    let s = 0;
    let c = 0;
    for (let k = 0; k < D; k++) {
      const gap = Math.max(0, by.lo[b * D + k]! - bx.hi[q * D + k]!, bx.lo[q * D + k]! - by.hi[b * D + k]!);
      const mid = (by.lo[b * D + k]! + by.hi[b * D + k]! - bx.lo[q * D + k]! - bx.hi[q * D + k]!) / 2;
      s += norm === 'l2' ? gap * gap : gap;
      c += norm === 'l2' ? mid * mid : Math.abs(mid);
    }
    lower[b] = s * rel - abs;
    // Visiting order only (not part of the proof): the box bound, then the distance of the centres.
    key[b] = s + 1e-3 * c;
  };
  let cap = Math.max(Math.ceil(Kr / leaf) + 1, 2 ** Math.min(D, 3));
  let active = Array.from({ length: nQ }, (_, q) => q);
  const chosen: number[][] = Array.from({ length: nQ }, () => []);
  while (active.length > 0) {
    signal?.throwIfAborted();
    const next: number[] = [];
    for (const q of active) {
      chosen[q] = [];
      let T = -Infinity;
      for (let r = kx.leaves[2 * q]!; r < kx.leaves[2 * q + 1]!; r++)
        T = Math.max(T, count[r]! < K ? Infinity : bestV[r * K + K - 1]!);
      const cand: number[] = [];
      for (let b = 0; b < nB; b++) {
        if (visited[q * nB + b]) continue;
        boxBound(q, b);
        if (!(lower[b]! > T)) cand.push(b);
      }
      if (cand.length === 0) continue;
      let take = cand;
      if (cand.length > cap) {
        // The cap nearest by key, by insertion into a short sorted list: most leaves are rejected at
        // the first comparison (a sort of all the candidates cost ~0.5 s at 10^5 points).
        take = [];
        for (const b of cand) {
          const kb = key[b]!;
          if (take.length === cap && !(kb < key[take[cap - 1]!]!)) continue;
          let p = take.length === cap ? cap - 1 : take.length;
          while (p > 0 && key[take[p - 1]!]! > kb) {
            take[p] = take[p - 1]!;
            p--;
          }
          take[p] = b;
        }
      }
      take.sort((a, b) => a - b);
      for (const b of take) visited[q * nB + b] = 1;
      chosen[q] = take;
      next.push(q);
    }
    if (next.length === 0) break;
    // One block-sparse reduction for the round: every x-leaf is a cluster, the ones without work get
    // no ranges (rows of an empty set: index -1).
    const slices = new Int32Array(nQ);
    const red: number[] = [];
    for (let q = 0; q < nQ; q++) {
      const first = red.length;
      for (const b of chosen[q]!) {
        const s = ky.leaves[2 * b]!;
        const e = ky.leaves[2 * b + 1]!;
        // Consecutive leaves are consecutive rows: one range, fewer per-range costs.
        if (red.length > first && red[red.length - 1] === s) red[red.length - 1] = e;
        else red.push(s, e);
      }
      slices[q] = red.length / 2;
    }
    const ranges: BlockRanges = {
      rangesI: kx.leaves,
      slicesI: slices,
      redRangesJ: Int32Array.from(red),
      rangesJ: ky.leaves,
      slicesJ: new Int32Array(nB),
      redRangesI: new Int32Array(0),
    };
    const out = await reduce(px, py, Kr, ranges);
    for (const q of next) {
      for (let r = kx.leaves[2 * q]!; r < kx.leaves[2 * q + 1]!; r++) {
        for (let s = 0; s < Kr; s++) {
          const j = out.indices[r * Kr + s]!;
          if (j < 0) break;
          const v = out.values[r * Kr + s]!;
          if (s === K) {
            dropFloor[r] = Math.min(dropFloor[r]!, v);
            break;
          }
          insert(bestV, bestI, count, r, K, v, ky.perm[j]!);
        }
      }
    }
    active = next;
    cap *= 2;
  }
  // Rows whose K-th distance equals a value some round could not keep may have missed a tied
  // candidate of lower index: brute force for them, in the original order.
  const redo: number[] = [];
  for (let r = 0; r < N; r++) if (count[r]! < K || dropFloor[r]! <= bestV[r * K + K - 1]!) redo.push(r);
  if (redo.length > 0) {
    const sub = xs.data instanceof Float32Array ? new Float32Array(redo.length * D) : new Float64Array(redo.length * D);
    redo.forEach((r, t) => sub.set(px.subarray(r * D, r * D + D), t * D));
    const out = await reduce(sub, ys.data, K);
    redo.forEach((r, t) => {
      bestV.set(out.values.subarray(t * K, t * K + K), r * K);
      bestI.set(out.indices.subarray(t * K, t * K + K), r * K);
    });
  }
  // Back to the order of x.
  const values = new Float64Array(N * K);
  const indices = new Int32Array(N * K);
  for (let r = 0; r < N; r++) {
    const i = kx.perm[r]!;
    values.set(bestV.subarray(r * K, r * K + K), i * K);
    indices.set(bestI.subarray(r * K, r * K + K), i * K);
  }
  return { values, indices };
}

/** Inserts (v, j) into row r's sorted list of at most K (value, index) pairs, ties to the lower j. */
function insert(
  bestV: Float64Array,
  bestI: Int32Array,
  count: Int32Array,
  r: number,
  K: number,
  v: number,
  j: number,
): void {
  const base = r * K;
  let n = count[r]!;
  if (n === K) {
    const lv = bestV[base + K - 1]!;
    if (v > lv || (v === lv && j > bestI[base + K - 1]!)) return;
    n = K - 1;
  } else {
    count[r] = n + 1;
  }
  let p = n;
  while (p > 0 && (bestV[base + p - 1]! > v || (bestV[base + p - 1] === v && bestI[base + p - 1]! > j))) {
    bestV[base + p] = bestV[base + p - 1]!;
    bestI[base + p] = bestI[base + p - 1]!;
    p--;
  }
  bestV[base + p] = v;
  bestI[base + p] = j;
}
