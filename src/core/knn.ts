// K-nearest neighbours, exact, on the public LazyTensor API: a brute-force kMinArgKMin in general,
// and at small D for the Euclidean and Manhattan metrics a k-d tree search whose blocks are the
// ranges of block-sparse reductions. The core knows no engine: every pair value comes from a
// reduction, so the tree search returns exactly what argKMin of the same formula returns.
import { checkpoint, type AbortSignalLike } from './scheduling.js';
import { InputError } from './errors.js';
import type { BlockRanges } from './block-sparse.js';
import type { DType } from './formula.js';
import { checkDType, checkOptionKeys, makeVariable, type ArrayInput } from './input.js';
import { knnTreeAsync, type KnnTree, type TreeNodes } from './knn-tree.js';
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
 * At D <= 8 with 'euclidean', 'sqeuclidean' or 'manhattan', the search sorts x and y in the order of a
 * k-d tree (Morton codes, cells halved until leaves of at most 32 rows) and bounds from below, with a
 * margin for the rounding of the engine's arithmetic, the distance between the bounding box of a leaf
 * of y and a leaf of x or a point. A first block-sparse kMinArgKMin reduction visits each x-leaf's
 * nearest y-leaves (found best first in the y-tree); then each query visits, nearest first, the
 * y-leaves whose bound its K-th distance does not clear (found by a pruned walk of the tree), in
 * rounds of block-sparse reductions (the second with consecutive queries of an x-leaf sharing a
 * cluster where that is cheaper, later ones with one cluster per query), until no query has any left. Queries whose K-th distance ties with a candidate a round
 * had to drop are recomputed by brute force, so ties still go to the lowest index. Other cases run
 * one dense kMinArgKMin.
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
  // The rounds of the tree search reduce the same (x, y): one formula, whose variables check their
  // data once.
  let last: { qx: ArrayInput; qy: ArrayInput; F: LazyTensor } | null = null;
  const reduce: Reduce = async (qx, qy, k, ranges) => {
    if (last === null || last.qx !== qx || last.qy !== qy) last = { qx, qy, F: m.formula(Vi(qx, xs.d), Vj(qy, ys.d)) };
    const F = last.F;
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
  let found: { values: Float32Array | Float64Array; indices: Int32Array };
  if (useTree) {
    found = await treeSearch(xs, ys, K, dtype, m.prune!, m.sqrt, reduce, options.signal);
  } else {
    found = await reduce(xs.data, ys.data, K);
    const values = dtype === 'float32' ? new Float32Array(found.values) : new Float64Array(found.values);
    if (m.sqrt) for (let q = 0; q < values.length; q++) values[q] = Math.sqrt(values[q]!);
    found = { values, indices: found.indices };
  }
  const { values } = found;
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
  for (let r = 0; r < perm.length; r++) {
    const src = perm[r]! * d;
    for (let k = 0; k < d; k++) out[r * d + k] = data[src + k]!;
  }
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
  // A float64 input reduced in float32 is rounded by the engine first: the box must hold the
  // rounded coordinates.
  const round = dtype === 'float32' && !(data instanceof Float32Array);
  for (let b = 0; b < L; b++) {
    for (let r = leaves[2 * b]!; r < leaves[2 * b + 1]!; r++) {
      for (let k = 0; k < d; k++) {
        const v = round ? Math.fround(data[r * d + k]!) : data[r * d + k]!;
        if (v < lo[b * d + k]!) lo[b * d + k] = v;
        if (v > hi[b * d + k]!) hi[b * d + k] = v;
      }
    }
  }
  return { lo, hi };
}

/** The boxes of every node of a k-d tree (preorder: children after their parent), from its leaves'. */
function nodeBoxes(
  tree: TreeNodes,
  leafLo: Float64Array,
  leafHi: Float64Array,
  d: number,
): { lo: Float64Array; hi: Float64Array } {
  const n = tree.start.length;
  const lo = new Float64Array(n * d);
  const hi = new Float64Array(n * d);
  for (let v = n - 1; v >= 0; v--) {
    const l = tree.left[v]!;
    if (l < 0) {
      const b = tree.leafOf[v]!;
      for (let k = 0; k < d; k++) {
        lo[v * d + k] = leafLo[b * d + k]!;
        hi[v * d + k] = leafHi[b * d + k]!;
      }
    } else {
      const r = tree.right[v]!;
      for (let k = 0; k < d; k++) {
        lo[v * d + k] = Math.min(lo[l * d + k]!, lo[r * d + k]!);
        hi[v * d + k] = Math.max(hi[l * d + k]!, hi[r * d + k]!);
      }
    }
  }
  return { lo, hi };
}

/** The squared (l2) or plain (l1) gap between box a of (aLo, aHi) and box b of (bLo, bHi): a lower
 *  bound of the distance of any point of one to any point of the other, before rounding margins. */
function boxGap(
  aLo: Float64Array,
  aHi: Float64Array,
  a: number,
  bLo: Float64Array,
  bHi: Float64Array,
  b: number,
  d: number,
  l2: boolean,
): number {
  let s = 0;
  for (let k = 0; k < d; k++) {
    const g1 = bLo[b * d + k]! - aHi[a * d + k]!;
    const g2 = aLo[a * d + k]! - bHi[b * d + k]!;
    const gap = g1 > g2 ? (g1 > 0 ? g1 : 0) : g2 > 0 ? g2 : 0;
    s += l2 ? gap * gap : gap;
  }
  return s;
}

/** The same between the centres of the boxes: a visiting order among boxes at gap 0. */
function centreGap(
  aLo: Float64Array,
  aHi: Float64Array,
  a: number,
  bLo: Float64Array,
  bHi: Float64Array,
  b: number,
  d: number,
  l2: boolean,
): number {
  let s = 0;
  for (let k = 0; k < d; k++) {
    const mid = (bLo[b * d + k]! + bHi[b * d + k]! - aLo[a * d + k]! - aHi[a * d + k]!) / 2;
    s += l2 ? mid * mid : Math.abs(mid);
  }
  return s;
}

/** A k-d tree over y: the leaves (positions in the order), the nodes in preorder and their boxes. */
interface YTree {
  leaves: Int32Array;
  nodes: TreeNodes;
  lo: Float64Array;
  hi: Float64Array;
  /** The leaves' boxes. */
  leafLo: Float64Array;
  leafHi: Float64Array;
}

/** A growable list of (leaf, key) pairs. */
class PairList {
  leaf = new Int32Array(1024);
  key = new Float64Array(1024);
  length = 0;
  push(b: number, k: number): void {
    if (this.length === this.leaf.length) {
      const leaf = new Int32Array(2 * this.length);
      const key = new Float64Array(2 * this.length);
      leaf.set(this.leaf);
      key.set(this.key);
      this.leaf = leaf;
      this.key = key;
    }
    this.leaf[this.length] = b;
    this.key[this.length++] = k;
  }
  /** Room for n entries in all. */
  reserve(n: number): void {
    if (n <= this.leaf.length) return;
    const size = Math.max(n, 2 * this.leaf.length);
    const leaf = new Int32Array(size);
    const key = new Float64Array(size);
    leaf.set(this.leaf.subarray(0, this.length));
    key.set(this.key.subarray(0, this.length));
    this.leaf = leaf;
    this.key = key;
  }
}

/** A PairList whose entries also name a row (of one x-leaf). */
class RowPairList extends PairList {
  row = new Int32Array(1024);
  pushRow(i: number, b: number, k: number): void {
    if (this.length === this.row.length) {
      const row = new Int32Array(2 * this.length);
      row.set(this.row);
      this.row = row;
    }
    this.row[this.length] = i;
    this.push(b, k);
  }
}

/** Sorts entries [a, b) of a PairList by key (insertion sort: the lists are short). */
function sortByKey(list: PairList, a: number, b: number): void {
  const { leaf, key } = list;
  for (let t = a + 1; t < b; t++) {
    const kb = key[t]!;
    const lb = leaf[t]!;
    let p = t;
    while (p > a && key[p - 1]! > kb) {
      key[p] = key[p - 1]!;
      leaf[p] = leaf[p - 1]!;
      p--;
    }
    key[p] = kb;
    leaf[p] = lb;
  }
}

/** Scratch of the best-first walk. */
interface Heap {
  key: Float64Array;
  node: Int32Array;
}

/**
 * The y-leaves nearest to box q of (qLo, qHi) by gap (then centre distance), best first in the
 * tree, until `first` leaves holding at least `rows` rows; appended to `out` nearest first.
 */
function nearestLeaves(
  t: YTree,
  qLo: Float64Array,
  qHi: Float64Array,
  q: number,
  D: number,
  l2: boolean,
  first: number,
  rows: number,
  heap: Heap,
  out: PairList,
): void {
  const { key: hk, node: hn } = heap;
  const { left, right, leafOf, start, end } = t.nodes;
  let size = 1;
  hk[0] = 0;
  hn[0] = 0;
  let taken = 0;
  let held = 0;
  while (size > 0 && (taken < first || held < rows)) {
    // Pop the top.
    const v = hn[0]!;
    const vk = hk[0]!;
    size--;
    {
      const key = hk[size]!;
      const node = hn[size]!;
      let p = 0;
      for (;;) {
        let c = 2 * p + 1;
        if (c >= size) break;
        if (c + 1 < size && hk[c + 1]! < hk[c]!) c++;
        if (!(hk[c]! < key)) break;
        hk[p] = hk[c]!;
        hn[p] = hn[c]!;
        p = c;
      }
      hk[p] = key;
      hn[p] = node;
    }
    const l = left[v]!;
    if (l < 0) {
      out.push(leafOf[v]!, vk);
      taken++;
      held += end[v]! - start[v]!;
      continue;
    }
    for (let side = 0; side < 2; side++) {
      const c = side === 0 ? l : right[v]!;
      let key = boxGap(qLo, qHi, q, t.lo, t.hi, c, D, l2);
      // Leaves at the same gap (0: overlapping boxes) nearest centre first; the term keeps a leaf's
      // key at or above its parent's.
      if (left[c]! < 0) key += 1e-3 * centreGap(qLo, qHi, q, t.lo, t.hi, c, D, l2);
      let p = size++;
      while (p > 0) {
        const up = (p - 1) >> 1;
        if (!(hk[up]! > key)) break;
        hk[p] = hk[up]!;
        hn[p] = hn[up]!;
        p = up;
      }
      hk[p] = key;
      hn[p] = c;
    }
  }
}

/**
 * The y-leaves not stamped in `mark` whose bound from box q does not exceed T (a pruned walk of the
 * tree), appended to `out` with their gap.
 */
function leavesWithin(
  t: YTree,
  qLo: Float64Array,
  qHi: Float64Array,
  q: number,
  D: number,
  l2: boolean,
  T: number,
  rel: number,
  abs: number,
  mark: Int32Array,
  stamp: number,
  stack: Int32Array,
  out: PairList,
): void {
  const { left, right, leafOf } = t.nodes;
  let top = 0;
  stack[top++] = 0;
  while (top > 0) {
    const v = stack[--top]!;
    const s = boxGap(qLo, qHi, q, t.lo, t.hi, v, D, l2);
    if (s * rel - abs > T) continue;
    const l = left[v]!;
    if (l >= 0) {
      stack[top++] = right[v]!;
      stack[top++] = l;
    } else if (mark[leafOf[v]!] !== stamp) {
      out.push(leafOf[v]!, s);
    }
  }
}

/** The squared (l2) or plain (l1) gap between the point at pts[at, at + D) (rounded as the engine
 *  rounds it) and y-leaf b's box. */
function pointGap(
  pts: Float64Array,
  at: number,
  lo: Float64Array,
  hi: Float64Array,
  b: number,
  D: number,
  l2: boolean,
): number {
  let g = 0;
  for (let k = 0; k < D; k++) {
    const gap = axisGap(pts[at + k]!, lo[b * D + k]!, hi[b * D + k]!);
    g += l2 ? gap * gap : gap;
  }
  return g;
}

/** The distance from c to [lo, hi] (0 inside). */
function axisGap(c: number, lo: number, hi: number): number {
  const g1 = lo - c;
  const g2 = c - hi;
  return g1 > g2 ? (g1 > 0 ? g1 : 0) : g2 > 0 ? g2 : 0;
}

/** pointGap at D = 3 in l2, unrolled, the box's bounds passed as numbers (rowLists' inner loop at
 *  the common D = 3): the same sum in the same order. */
function sqGap3(
  pts: Float64Array,
  at: number,
  lo0: number,
  lo1: number,
  lo2: number,
  hi0: number,
  hi1: number,
  hi2: number,
): number {
  const d0 = axisGap(pts[at]!, lo0, hi0);
  const d1 = axisGap(pts[at + 1]!, lo1, hi1);
  const d2 = axisGap(pts[at + 2]!, lo2, hi2);
  return d0 * d0 + d1 * d1 + d2 * d2;
}

/** Appends the ranges of y-leaves `leaf[a, b)` to `red`, consecutive leaves merged into one range. */
function pushRanges(red: IntList, leaves: Int32Array, leaf: Int32Array, a: number, b: number): void {
  const first = red.length;
  for (let t = a; t < b; t++) {
    const s = leaves[2 * leaf[t]!]!;
    const e = leaves[2 * leaf[t]! + 1]!;
    // Consecutive leaves are consecutive rows: one range, fewer per-range costs.
    if (red.length > first && red.last() === s) red.setLast(e);
    else red.push(s, e);
  }
}

// Sizes of the tree search: leaves of at most 32 rows in x (a cluster of the first round) and in y (a
// range; 23 on average at 10^5 uniform points, the tree halving cells); the first round visits each
// x-leaf's 8 nearest y-leaves, later rounds at most 16, 32, ... leaves per row. At 10^5 uniform
// points in [0, 1]^3 and K = 10: 75% of the rows have leaves left after the first round, all done
// after the second; 239 pairs per row with a cluster per row (303 with kdOrder's full leaves of 32),
// 265 with the rows grouped (GROUP_PAIRS = 96: 29095 clusters in the second round instead of 74619).
const LEAF_X = 32;
const LEAF_Y = 32;
const FIRST_LEAVES = 8;
const FIRST_CAP = 16;
/** The overhead of one cluster in a later round, in pairs: consecutive rows share a cluster while that
 *  costs fewer extra pairs. */
const GROUP_PAIRS = 96;
/** x-leaves per step of the search between two yields to the event loop. */
const STEP_LEAVES = 256;

/**
 * The state of one k-d tree search (see knn). Its methods are the synchronous steps, each a bounded
 * amount of work, which the async driver `treeSearch` runs with yields in between. (The loops live
 * here and not in the async function: V8 does not replace a running async function by its optimised
 * code, so a long loop there stays in the interpreter, ~10x slower.)
 */
class TreeSearch {
  readonly N: number;
  readonly D: number;
  readonly Kr: number;
  readonly l2: boolean;
  /** x and y in k-d tree order, x's leaves the clusters, y's leaves the ranges. */
  readonly px: Float32Array | Float64Array;
  readonly py: Float32Array | Float64Array;
  readonly xLeaves: Int32Array;
  readonly xPerm: Int32Array;
  readonly yPerm: Int32Array;
  readonly nQ: number;
  readonly nB: number;
  readonly bx: { lo: Float64Array; hi: Float64Array };
  readonly tree: YTree;
  /** x's coordinates are rounded to float32 by the engine (a float64 input reduced in float32). */
  readonly round32: boolean;
  readonly best: Best;
  /** The bound of a gap g is g * rel - abs (see the constructor). */
  readonly rel: number;
  readonly abs: number;
  /** Round 1: x-leaf q visits y-leaves first.leaf[firstAt[q], firstAt[q + 1]). */
  readonly first = new PairList();
  readonly firstAt: Int32Array;
  /** Later rounds: row r's candidate y-leaves rows.leaf[rowAt[r], rowAt[r + 1]) by increasing gap,
   *  the ones before cursor[r] visited. */
  readonly rows = new PairList();
  readonly rowAt: Int32Array;
  cursor: Int32Array | null = null;
  /** Scratch of nextRound: a group's leaves. */
  private union: Int32Array | null = null;
  /** Rows left to the brute force, and the longest list a row gets instead (an eighth of the leaves:
   *  past that, the brute force costs at most ~8 times the tree's pairs, without the lists). */
  readonly brute: Uint8Array;
  readonly maxList: number;
  private readonly heap: Heap;
  private readonly stack: Int32Array;
  private readonly mark: Int32Array;
  private readonly near = new PairList();
  private readonly cand = new RowPairList();
  /** Per-row scratch of rowLists, for the rows of one x-leaf. */
  private readonly leafScratch: { kth: Float64Array; pts: Float64Array; count: Int32Array; slot: Int32Array };
  private stamp = 0;

  constructor(
    xs: Rows,
    ys: Rows,
    readonly K: number,
    dtype: DType,
    norm: 'l2' | 'l1',
    kx: KnnTree,
    ky: KnnTree,
  ) {
    const { n: N, d: D } = xs;
    const M = ys.n;
    this.N = N;
    this.D = D;
    this.l2 = norm === 'l2';
    this.round32 = dtype === 'float32' && !(xs.data instanceof Float32Array);
    this.px = permuteRows(xs.data, kx.perm, D);
    this.py = permuteRows(ys.data, ky.perm, D);
    this.xLeaves = kx.leaves;
    this.xPerm = kx.perm;
    this.yPerm = ky.perm;
    this.nQ = kx.leaves.length / 2;
    this.nB = ky.leaves.length / 2;
    this.bx = leafBoxes(this.px, kx.leaves, D, dtype);
    const by = leafBoxes(this.py, ky.leaves, D, dtype);
    const nodes = ky.nodes;
    const nb = nodeBoxes(nodes, by.lo, by.hi, D);
    this.tree = { leaves: ky.leaves, nodes, lo: nb.lo, hi: nb.hi, leafLo: by.lo, leafHi: by.hi };
    const nNodes = nodes.start.length;
    this.heap = { key: new Float64Array(nNodes + 2), node: new Int32Array(nNodes + 2) };
    this.stack = new Int32Array(nNodes + 2);
    this.mark = new Int32Array(this.nB).fill(-1);
    this.firstAt = new Int32Array(this.nQ + 1);
    this.rowAt = new Int32Array(N + 1);
    this.brute = new Uint8Array(N);
    this.maxList = Math.max(64, Math.ceil(this.nB / 8));
    let most = 0;
    for (let q = 0; q < this.nQ; q++) most = Math.max(most, kx.leaves[2 * q + 1]! - kx.leaves[2 * q]!);
    this.leafScratch = {
      kth: new Float64Array(most),
      pts: new Float64Array(most * D),
      count: new Int32Array(most),
      slot: new Int32Array(most),
    };
    // Each round keeps K + 1 candidates per row (K when K = M: then nothing is ever dropped): a
    // dropped candidate is no smaller than the (K+1)-th kept one, which tells whether it could tie
    // the K-th.
    this.Kr = Math.min(this.K + 1, M);
    this.best = {
      // In the engine's precision, which holds its values exactly: half the memory in float32.
      bestV: (dtype === 'float32' ? new Float32Array(N * this.K) : new Float64Array(N * this.K)).fill(Infinity),
      bestI: new Int32Array(N * this.K).fill(-1),
      count: new Int32Array(N),
      dropFloor: new Float64Array(N).fill(Infinity),
    };
    // The engine's value of a pair is its exact distance up to a relative error of about (D + 2)
    // units of roundoff (nonnegative terms: no cancellation), plus subnormal underflow; the bound is
    // shrunk by well over that, so a pruned leaf's values are strictly above the K-th distance.
    const unit = dtype === 'float32' ? 2 ** -24 : 2 ** -53;
    this.rel = 1 - 4 * (D + 4) * unit;
    this.abs = (D + 1) * (dtype === 'float32' ? 2 ** -126 : 2 ** -1022);
  }

  /** Row r's K-th distance so far (Infinity while it has fewer than K). */
  kth(r: number): number {
    return this.best.count[r]! < this.K ? Infinity : this.best.bestV[r * this.K + this.K - 1]!;
  }

  /** Round 1 for x-leaves [q0, q1): the FIRST_LEAVES y-leaves nearest to each (at least Kr rows). */
  firstLeaves(q0: number, q1: number): void {
    for (let q = q0; q < q1; q++) {
      nearestLeaves(
        this.tree,
        this.bx.lo,
        this.bx.hi,
        q,
        this.D,
        this.l2,
        FIRST_LEAVES,
        this.Kr,
        this.heap,
        this.first,
      );
      this.firstAt[q + 1] = this.first.length;
    }
  }

  /** The ranges of round 1: every x-leaf a cluster, its leaves nearest first. */
  firstRanges(): BlockRanges {
    const red = new IntList();
    const slices = new Int32Array(this.nQ);
    for (let q = 0; q < this.nQ; q++) {
      pushRanges(red, this.tree.leaves, this.first.leaf, this.firstAt[q]!, this.firstAt[q + 1]!);
      slices[q] = red.length / 2;
    }
    return this.ranges(this.xLeaves, slices, red.array());
  }

  private ranges(rangesI: Int32Array, slicesI: Int32Array, redRangesJ: Int32Array): BlockRanges {
    return {
      rangesI,
      slicesI,
      redRangesJ,
      rangesJ: this.tree.leaves,
      slicesJ: new Int32Array(this.nB),
      redRangesI: new Int32Array(0),
    };
  }

  /** Merges a round's Kr candidates of rows [r0, r1) into their best lists. */
  merge(out: { values: Float32Array | Float64Array; indices: Int32Array }, r0: number, r1: number): void {
    mergeRows(out.values, out.indices, r0, r1, this.yPerm, this.Kr, this.K, this.best);
  }

  /**
   * For the rows of x-leaves [q0, q1) after round 1: the y-leaves not visited whose box the row's
   * K-th distance does not clear, by increasing gap, found among the leaves within the x-leaf's
   * largest K-th distance of its box (a pruned walk of the tree).
   */
  rowLists(q0: number, q1: number): void {
    const { D, l2, rel, abs, tree, mark, first, firstAt, rows, rowAt, near, cand, px } = this;
    const { kth, pts, count, slot } = this.leafScratch;
    for (let q = q0; q < q1; q++) {
      const r0 = this.xLeaves[2 * q]!;
      const n = this.xLeaves[2 * q + 1]! - r0;
      // The rows' K-th distances and coordinates once per x-leaf: the loop below reads them for
      // every leaf near it.
      let T = -Infinity;
      for (let i = 0; i < n; i++) {
        kth[i] = this.kth(r0 + i);
        if (kth[i]! > T) T = kth[i]!;
        count[i] = 0;
        for (let k = 0; k < D; k++) {
          const v = px[(r0 + i) * D + k]!;
          pts[i * D + k] = this.round32 ? Math.fround(v) : v;
        }
      }
      const stamp = ++this.stamp;
      for (let t = firstAt[q]!; t < firstAt[q + 1]!; t++) mark[first.leaf[t]!] = stamp;
      near.length = 0;
      leavesWithin(tree, this.bx.lo, this.bx.hi, q, D, l2, T, rel, abs, mark, stamp, this.stack, near);
      // Leaf by leaf, each row the leaf's box bound (the gap from a point of the x-leaf is at least
      // the boxes' gap) does not clear, by the gap from the row's point.
      cand.length = 0;
      const { leafLo: lo, leafHi: hi } = tree;
      const euclid3 = D === 3 && l2;
      for (let c = 0; c < near.length; c++) {
        const bound = near.key[c]! * rel - abs;
        const b = near.leaf[c]!;
        // The box as numbers for the unrolled D = 3 gap (unread otherwise).
        const at = euclid3 ? 3 * b : 0;
        const lo0 = lo[at]!;
        const lo1 = lo[at + 1]!;
        const lo2 = lo[at + 2]!;
        const hi0 = hi[at]!;
        const hi1 = hi[at + 1]!;
        const hi2 = hi[at + 2]!;
        for (let i = 0; i < n; i++) {
          const t = kth[i]!;
          if (bound > t) continue;
          const g = euclid3 ? sqGap3(pts, 3 * i, lo0, lo1, lo2, hi0, hi1, hi2) : pointGap(pts, i * D, lo, hi, b, D, l2);
          if (g * rel - abs > t) continue;
          cand.pushRow(i, b, g);
          count[i]!++;
        }
      }
      // The candidates by row. A row that the tree does not narrow down (many points at the same
      // distance: a degenerate cloud) goes to the brute force, rather than a list of most of the leaves.
      let at = rows.length;
      for (let i = 0; i < n; i++) {
        if (count[i]! > this.maxList) {
          this.brute[r0 + i] = 1;
          count[i] = -1;
        }
        slot[i] = at;
        at += Math.max(0, count[i]!);
        rowAt[r0 + i + 1] = at;
      }
      rows.reserve(at);
      for (let e = 0; e < cand.length; e++) {
        const i = cand.row[e]!;
        if (count[i]! < 0) continue;
        const p = slot[i]!++;
        rows.leaf[p] = cand.leaf[e]!;
        rows.key[p] = cand.key[e]!;
      }
      rows.length = at;
      for (let i = 0; i < n; i++) sortByKey(rows, rowAt[r0 + i]!, rowAt[r0 + i + 1]!);
    }
  }

  /**
   * The next later round: each row's next (at most `cap`) candidates its K-th distance does not clear.
   * Consecutive rows of an x-leaf share a cluster, the union of their candidates, while that costs
   * fewer pairs than a cluster of their own would cost in its overhead (GROUP_PAIRS); a row then loses
   * the union's leaves from the rest of its list (visited). Later rounds have a cluster per row. Null
   * when no row has any left.
   */
  nextRound(cap: number): { ranges: BlockRanges; rows: Int32Array } | null {
    const { rows, rowAt, rel, abs, N, mark } = this;
    // Only the first later round groups rows: until then every row of an x-leaf has visited the same
    // leaves, the x-leaf's first ones; after a grouped round, rows differ in what they have visited.
    const grouping = this.cursor === null;
    const cursor = (this.cursor ??= rowAt.slice(0, N));
    const leaves = this.tree.leaves;
    const g: RoundGroups = {
      rangesI: new IntList(),
      slices: new IntList(),
      red: new IntList(),
      union: (this.union ??= new Int32Array(this.nB)),
      size: 0,
      g0: -1,
      n: 0,
      stamp: 0,
    };
    // Groups stay within an x-leaf: a row's list leaves out its x-leaf's first-round leaves only, so a
    // row of another x-leaf could get one of those again.
    for (let q = 0, qEnd = this.xLeaves[1]!, r = 0; r < N; r++) {
      if (r === qEnd) {
        this.closeGroup(g, r);
        qEnd = this.xLeaves[2 * ++q + 1]!;
      }
      const c0 = cursor[r]!;
      const end = rowAt[r + 1]!;
      // The list is sorted by gap: once a leaf's bound clears the K-th distance, so do the rest.
      const t = this.kth(r);
      let c = c0;
      let own = 0;
      let add = 0;
      while (c < end && c - c0 < cap && !(rows.key[c]! * rel - abs > t)) {
        const b = rows.leaf[c++]!;
        const size = leaves[2 * b + 1]! - leaves[2 * b]!;
        own += size;
        if (g.g0 < 0 || mark[b] !== g.stamp) add += size;
      }
      cursor[r] = c < end && !(rows.key[c]! * rel - abs > t) ? c : end;
      if (c === c0) {
        // A row with nothing to visit stays inside the group while the group's pairs for it cost
        // less than a new cluster after it.
        if (g.g0 >= 0 && (!grouping || g.size > GROUP_PAIRS)) this.closeGroup(g, r);
        continue;
      }
      if (g.g0 >= 0) {
        // Joining costs the group's pairs for this row plus its new leaves for every row; a cluster
        // of its own costs its pairs and the overhead.
        const held = r - g.g0;
        if (!grouping || (held + 1) * (g.size + add) > held * g.size + own + GROUP_PAIRS) this.closeGroup(g, r);
      }
      if (g.g0 < 0) {
        g.g0 = r;
        g.stamp = ++this.stamp;
      }
      for (let p = c0; p < c; p++) {
        const b = rows.leaf[p]!;
        if (mark[b] === g.stamp) continue;
        mark[b] = g.stamp;
        g.union[g.n++] = b;
        g.size += leaves[2 * b + 1]! - leaves[2 * b]!;
      }
    }
    if (g.g0 >= 0) this.closeGroup(g, N);
    if (g.slices.length === 0) return null;
    const rangesIArray = g.rangesI.array();
    return { ranges: this.ranges(rangesIArray, g.slices.array(), g.red.array()), rows: rangesIArray };
  }

  /** Ends the open group at row g1 (a cluster of rows [g0, g1) over the union), if it has leaves. */
  private closeGroup(g: RoundGroups, g1: number): void {
    if (g.g0 < 0) return;
    if (g.n > 0) {
      g.rangesI.push(g.g0, g1);
      pushRanges(g.red, this.tree.leaves, g.union.subarray(0, g.n).sort(), 0, g.n);
      g.slices.push1(g.red.length / 2);
      if (g1 - g.g0 > 1) this.dropVisited(g.g0, g1, g.stamp);
    }
    g.g0 = -1;
    g.n = 0;
    g.size = 0;
  }

  /** Removes the leaves stamped `stamp` from the unvisited part of rows [r0, r1)'s lists (kept in
   *  order at the end of each list). */
  private dropVisited(r0: number, r1: number, stamp: number): void {
    const { rows, rowAt, mark } = this;
    const cursor = this.cursor!;
    for (let r = r0; r < r1; r++) {
      let w = rowAt[r + 1]!;
      for (let c = w - 1; c >= cursor[r]!; c--) {
        const b = rows.leaf[c]!;
        if (mark[b] === stamp) continue;
        w--;
        rows.leaf[w] = b;
        rows.key[w] = rows.key[c]!;
      }
      cursor[r] = w;
    }
  }

  /** Rows whose K-th distance equals a value some round could not keep (they may have missed a tied
   *  candidate of lower index), and the rows left to the brute force. */
  tiedRows(): number[] {
    const { bestV, count, dropFloor } = this.best;
    const out: number[] = [];
    for (let r = 0; r < this.N; r++) {
      if (this.brute[r] || count[r]! < this.K || dropFloor[r]! <= bestV[r * this.K + this.K - 1]!) out.push(r);
    }
    return out;
  }

  /** Rows `redo` of x (in tree order), for a brute-force reduction. */
  subset(redo: readonly number[]): Float32Array | Float64Array {
    const D = this.D;
    const sub = this.px instanceof Float32Array ? new Float32Array(redo.length * D) : new Float64Array(redo.length * D);
    for (let t = 0; t < redo.length; t++) for (let k = 0; k < D; k++) sub[t * D + k] = this.px[redo[t]! * D + k]!;
    return sub;
  }

  /** Replaces the lists of rows `redo` by a brute force's. */
  replace(redo: readonly number[], out: { values: Float32Array | Float64Array; indices: Int32Array }): void {
    const { bestV, bestI } = this.best;
    const K = this.K;
    for (let t = 0; t < redo.length; t++) {
      for (let s = 0; s < K; s++) {
        bestV[redo[t]! * K + s] = out.values[t * K + s]!;
        bestI[redo[t]! * K + s] = out.indices[t * K + s]!;
      }
    }
  }

  /** The lists in the order of x, the values in the output's precision (their square roots when
   *  `sqrt`): written once, with no float64 copy in between. */
  result(dtype: DType, sqrt: boolean): { values: Float32Array | Float64Array; indices: Int32Array } {
    const { N, K } = this;
    const { bestV, bestI } = this.best;
    const values = dtype === 'float32' ? new Float32Array(N * K) : new Float64Array(N * K);
    const indices = new Int32Array(N * K);
    for (let r = 0; r < N; r++) {
      const i = this.xPerm[r]! * K;
      for (let s = 0; s < K; s++) {
        const v = bestV[r * K + s]!;
        values[i + s] = sqrt ? Math.sqrt(v) : v;
        indices[i + s] = bestI[r * K + s]!;
      }
    }
    return { values, indices };
  }
}

/**
 * The k-d tree search: round 1 visits each x-leaf's nearest y-leaves (one block-sparse reduction,
 * x-leaves as clusters); then each row visits, nearest first, the y-leaves its K-th distance does not
 * clear (one cluster per row, at most FIRST_CAP leaves per row in the next round, doubling), until no
 * row has any left. The K-th distance of a row only decreases, so a leaf it cleared stays cleared.
 */
async function treeSearch(
  xs: Rows,
  ys: Rows,
  K: number,
  dtype: DType,
  norm: 'l2' | 'l1',
  sqrt: boolean,
  reduce: Reduce,
  signal: AbortSignalLike | undefined,
): Promise<{ values: Float32Array | Float64Array; indices: Int32Array }> {
  // The trees in time slices (a few ms at 10^5 points, tens at 10^6).
  const kx = await knnTreeAsync(xs.data, xs.n, xs.d, LEAF_X, signal);
  // The neighbours of a cloud among its own points (a K-NN graph): one tree for both.
  const ky = ys.data === xs.data && LEAF_Y === LEAF_X ? kx : await knnTreeAsync(ys.data, ys.n, ys.d, LEAF_Y, signal);
  const s = new TreeSearch(xs, ys, K, dtype, norm, kx, ky);
  const { nQ, xLeaves } = s;
  await checkpoint(signal);
  for (let q = 0; q < nQ; q += STEP_LEAVES) {
    s.firstLeaves(q, Math.min(nQ, q + STEP_LEAVES));
    await checkpoint(signal);
  }
  const first = await reduce(s.px, s.py, s.Kr, s.firstRanges());
  for (let q = 0; q < nQ; q += STEP_LEAVES) {
    s.merge(first, xLeaves[2 * q]!, xLeaves[2 * Math.min(nQ, q + STEP_LEAVES) - 1]!);
    await checkpoint(signal);
  }
  for (let q = 0; q < nQ; q += STEP_LEAVES) {
    s.rowLists(q, Math.min(nQ, q + STEP_LEAVES));
    await checkpoint(signal);
  }
  for (let cap = FIRST_CAP; ; cap *= 2) {
    const round = s.nextRound(cap);
    if (round === null) break;
    await checkpoint(signal);
    const out = await reduce(s.px, s.py, s.Kr, round.ranges);
    for (let c = 0; c < round.rows.length; c += 2) s.merge(out, round.rows[c]!, round.rows[c + 1]!);
    await checkpoint(signal);
  }
  // Ties with a dropped candidate: brute force for those rows, in the original order of y.
  const redo = s.tiedRows();
  if (redo.length > 0) s.replace(redo, await reduce(s.subset(redo), ys.data, K));
  return s.result(dtype, sqrt);
}

/** A growable list of integers (pushed in pairs, or one at a time). */
class IntList {
  private data = new Int32Array(1024);
  length = 0;
  push(a: number, b: number): void {
    if (this.length + 2 > this.data.length) {
      const next = new Int32Array(2 * this.data.length);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = a;
    this.data[this.length++] = b;
  }
  push1(a: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(2 * this.data.length);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = a;
  }
  /** The last value (the list must not be empty). */
  last(): number {
    return this.data[this.length - 1]!;
  }
  setLast(v: number): void {
    this.data[this.length - 1] = v;
  }
  array(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

/** nextRound's open group of rows [g0, current) (g0 = -1: none) and the round's ranges so far. */
interface RoundGroups {
  rangesI: IntList;
  slices: IntList;
  red: IntList;
  /** The group's leaves, n of them, stamped `stamp` in the search's marks; size: their rows. */
  union: Int32Array;
  n: number;
  size: number;
  g0: number;
  stamp: number;
}

/** The best lists of every row, K per row, sorted by (value, index). */
interface Best {
  bestV: Float32Array | Float64Array;
  bestI: Int32Array;
  /** Entries of each row's list. */
  count: Int32Array;
  /** The smallest value a round could not keep, per row. */
  dropFloor: Float64Array;
}

/** Merges a round's Kr candidates of rows [r0, r1) into their best lists. */
function mergeRows(
  values: Float32Array | Float64Array,
  indices: Int32Array,
  r0: number,
  r1: number,
  permY: Int32Array,
  Kr: number,
  K: number,
  best: Best,
): void {
  const { bestV, bestI, count, dropFloor } = best;
  for (let r = r0; r < r1; r++) {
    for (let s = 0; s < Kr; s++) {
      const j = indices[r * Kr + s]!;
      if (j < 0) break;
      const v = values[r * Kr + s]!;
      if (s === K) {
        if (v < dropFloor[r]!) dropFloor[r] = v;
        break;
      }
      insert(bestV, bestI, count, r, K, v, permY[j]!);
    }
  }
}

/** Inserts (v, j) into row r's sorted list of at most K (value, index) pairs, ties to the lower j. */
function insert(
  bestV: Float32Array | Float64Array,
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
