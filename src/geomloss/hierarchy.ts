// The multilevel hierarchy of the 'multiscale' backend (multiscale.ts): one k-d tree per cloud, built
// once, in any dimension; its depth d cut is a "level" of 2^d cells (fewer where a node holds one
// point), from the whole cloud (depth 0) down to the points. A level is a weighted measure: each
// cell's weighted centroid with the cell's summed weight.
//
// Kernel truncation at any level (the pattern of kept blocks for a softmin) is a dual-tree traversal
// of the two levels' trees, from the roots down to their tiles (the depth d - TILE_DEPTH nodes, at
// most 2^TILE_DEPTH cells each): a node pair whose provable upper bound of the softmin's exponent is
// below the truncation margin is dropped with everything under it, one whose lower bound clears the
// margin keeps every tile pair under it. The pairs tested are then those near the kept blocks'
// boundary: the work grows like the kept blocks, i.e. linearly with the cells at a fixed kernel
// width per cell, instead of with the square of the tiles as a test of every tile pair does.
// The bounds are those of the single-jump backend this replaces (affine in the potentials plus a
// bounded residual, and the cells' maxima), computed exactly on the tiles and merged up the tree.
//
// Everything here is long synchronous work at large N (the tree, the levels, the bounds, the
// traversals): it runs in slices through a Slicer, which yields to the event loop when due and
// rejects on an abort, like every other loop of the library.
import { kdOrder, throwIfAborted, type AbortSignalLike, type BlockRanges } from '../index.js';
import { selectRankIndexed } from '../core/kd-order.js';
import { yieldIfDue } from '../core/scheduling.js';
import type { Cloud } from './inputs.js';

/**
 * Time slicing for the hierarchy's loops: `tick()` once per small unit of work (a node pair, a tile,
 * a cell); every `every` ticks (or weights) it checks the signal and yields to the event loop when the library's
 * yield interval (20 ms of work) has passed. It returns a promise only then, so that a loop awaits
 * rarely: `const p = slicer.tick(); if (p) await p;`. `now()` checks at once (after a large unit).
 */
export class Slicer {
  private count = 0;
  constructor(
    readonly signal: AbortSignalLike | undefined,
    private readonly every = 256,
  ) {}

  /** `weight`: the unit's cost in traversal steps (~16 points' worth of a linear pass each). */
  tick(weight = 1): Promise<void> | undefined {
    this.count += weight;
    if (this.count < this.every) return undefined;
    this.count = 0;
    return this.now();
  }

  now(): Promise<void> | undefined {
    throwIfAborted(this.signal);
    const pending = yieldIfDue();
    return pending?.then(() => throwIfAborted(this.signal));
  }
}

/**
 * What one step of the hierarchy's work did, for profiling (bench/multilevel.mjs with
 * MULTILEVEL_PROFILE=1): a tree or a level built, or a pattern ('xy': truncation between two levels,
 * 'sym': a level against itself, 'ext': an extrapolation) with its phases' times in ms, the node pairs
 * its traversal tested, the blocks and pairs it kept and, on a sample of rows, how many pairs the
 * pointwise truncation test keeps (`pointwise`), how many the kept blocks hold (`inBlocks`) and how
 * many pointwise-kept pairs the blocks miss (`missed`: 0, or the bound is wrong).
 */
export interface ProfileRecord {
  kind: 'tree' | 'level' | 'xy' | 'sym' | 'ext';
  cells: [number, number];
  ms: number;
  eps?: number;
  phases?: Record<string, number>;
  tested?: number;
  blocks?: number;
  pairs?: number;
  sample?: { rows: number; pointwise: number; inBlocks: number; missed: number };
}

/** The profiling hook: a function stored on globalThis under this symbol receives every record.
 *  Internal (for the bench); absent, nothing is measured beyond two clock reads per step. */
const PROFILE_KEY = Symbol.for('lazytensor.multilevel.profile');

function profileSink(): ((r: ProfileRecord) => void) | undefined {
  const sink = (globalThis as Record<symbol, unknown>)[PROFILE_KEY];
  return typeof sink === 'function' ? (sink as (r: ProfileRecord) => void) : undefined;
}

/** Rows sampled by the pointwise check of a profiled pattern. */
const PROFILE_ROWS = 64;

/**
 * The pointwise check of a pattern on PROFILE_ROWS rows of A spread over its cells: `keepsPair(i, j,
 * c2)` says whether the pointwise test keeps (i, j) (c2: their squared distance as the reductions see
 * the points); the pairs of row i in the blocks are read from the pattern's axis I.
 */
function samplePattern(
  A: Level,
  B: Level,
  ranges: BlockRanges,
  keepsPair: (i: number, j: number, d2: number) => boolean,
): NonNullable<ProfileRecord['sample']> {
  const D = A.cloud.D;
  const pa = A.cloud.data;
  const pb = B.cloud.data;
  const N = A.cloud.N;
  const M = B.cloud.N;
  const rows = Math.min(N, PROFILE_ROWS);
  const inRow = new Uint8Array(M);
  const tileOf = new Int32Array(N);
  for (let t = 0; t < ranges.slicesI.length; t++)
    for (let i = ranges.rangesI[2 * t]!; i < ranges.rangesI[2 * t + 1]!; i++) tileOf[i] = t;
  let pointwise = 0;
  let inBlocks = 0;
  let missed = 0;
  for (let s = 0; s < rows; s++) {
    const i = Math.floor(((s + 0.5) * N) / rows);
    const t = tileOf[i]!;
    inRow.fill(0);
    for (let r = t === 0 ? 0 : ranges.slicesI[t - 1]!; r < ranges.slicesI[t]!; r++)
      for (let j = ranges.redRangesJ[2 * r]!; j < ranges.redRangesJ[2 * r + 1]!; j++) inRow[j] = 1;
    for (let j = 0; j < M; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (pa[i * D + k]! - pb[j * D + k]!) ** 2;
      inBlocks += inRow[j]!;
      if (keepsPair(i, j, d2)) {
        pointwise++;
        if (!inRow[j]) missed++;
      }
    }
  }
  return { rows, pointwise, inBlocks, missed };
}

/** Subtrees of at most this many points are ordered by one kdOrder call (a few ms). */
const SUBTREE = 1024;

/**
 * kdOrder(data, N, D, 1)'s tree, in slices: the nodes above SUBTREE points are split here by the same
 * rule (the widest coordinate, after ceil(n / 2) rows, by selectRankIndexed), each subtree below by kdOrder.
 * The tree's shape is the same (it follows from N alone); only ties may be ordered differently.
 */
async function treeOrder(data: ArrayLike<number>, N: number, D: number, slicer: Slicer): Promise<Int32Array> {
  const perm = Int32Array.from({ length: N }, (_, i) => i);
  const stack: [number, number][] = [[0, N]];
  while (stack.length > 0) {
    const [lo, hi] = stack.pop()!;
    const n = hi - lo;
    if (n <= SUBTREE) {
      if (n < 2) continue;
      const sub = new Float64Array(n * D);
      for (let r = 0; r < n; r++) for (let k = 0; k < D; k++) sub[r * D + k] = data[perm[lo + r]! * D + k]!;
      const order = kdOrder(sub, n, D, 1).perm;
      const rows = perm.slice(lo, hi);
      for (let r = 0; r < n; r++) perm[lo + r] = rows[order[r]!]!;
    } else {
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
      const mid = lo + Math.ceil(n / 2);
      selectRankIndexed(perm, lo, hi, mid, data, D, axis);
      stack.push([mid, hi], [lo, mid]);
    }
    const p = slicer.now();
    if (p) await p;
  }
  return perm;
}

/** A level's tiles hold at most 2^TILE_DEPTH cells: 32, the size below which the block-sparse
 *  reductions' cost per range dominates (kept neighbours are consecutive and merge into longer ranges). */
export const TILE_DEPTH = 5;

/** A cloud's k-d tree (kdOrder with leaves of one point), as node boundaries per depth. */
export interface Tree {
  readonly cloud: Cloud;
  /** The points in tree order, float64, and their weights; row r is input row perm[r]. */
  readonly points: Float64Array;
  readonly w: Float64Array;
  readonly perm: Int32Array;
  /** bounds[d]: the depth-d nodes as C_d + 1 boundaries of positions in the order. */
  readonly bounds: Int32Array[];
  /** children[d]: node k of depth d has the depth d + 1 nodes [children[d][k], children[d][k + 1]). */
  readonly children: Int32Array[];
  /** sigma[d]: the root mean square distance of the points to their depth-d node's mean. */
  readonly sigma: Float64Array;
  /** The depth at which every node is one point (the points' level). */
  readonly finest: number;
}

export async function buildTree(cloud: Cloud, w: Float64Array, slicer: Slicer): Promise<Tree> {
  const t0 = performance.now();
  const { N, D } = cloud;
  const perm = await treeOrder(cloud.data, N, D, slicer);
  const points = new Float64Array(N * D);
  for (let r = 0; r < N; r++) for (let k = 0; k < D; k++) points[r * D + k] = cloud.data[perm[r]! * D + k]!;
  const ws = Float64Array.from(perm, (src) => w[src]!);
  // kdOrder's split rule with leaf 1: a node of n >= 2 rows splits after ceil(n / 2) of them, so the
  // tree's shape follows from N alone. A node of one point stays one node at every depth below.
  const bounds: Int32Array[] = [Int32Array.of(0, N)];
  const children: Int32Array[] = [];
  while (bounds[bounds.length - 1]!.length - 1 < N) {
    const b = bounds[bounds.length - 1]!;
    const C = b.length - 1;
    const next = new Int32Array(2 * C + 1);
    let n = 0;
    const first = new Int32Array(C + 1);
    for (let k = 0; k < C; k++) {
      first[k] = n;
      const lo = b[k]!;
      const hi = b[k + 1]!;
      next[n++] = lo;
      if (hi - lo >= 2) next[n++] = lo + Math.ceil((hi - lo) / 2);
      const p = slicer.tick();
      if (p) await p;
    }
    first[C] = n;
    next[n++] = N;
    children.push(first);
    bounds.push(next.slice(0, n));
    const p = slicer.now();
    if (p) await p;
  }
  const sigma = new Float64Array(bounds.length);
  const mean = new Float64Array(D);
  for (let d = 0; d < bounds.length; d++) {
    const b = bounds[d]!;
    let s = 0;
    for (let k = 0; k + 1 < b.length; k++) {
      const lo = b[k]!;
      const hi = b[k + 1]!;
      if (hi - lo < 2) continue;
      mean.fill(0);
      for (let i = lo; i < hi; i++) for (let q = 0; q < D; q++) mean[q] = mean[q]! + points[i * D + q]!;
      for (let q = 0; q < D; q++) mean[q] = mean[q]! / (hi - lo);
      for (let i = lo; i < hi; i++) for (let q = 0; q < D; q++) s += (points[i * D + q]! - mean[q]!) ** 2;
      const p = slicer.tick(1 + (((hi - lo) * D) >> 4));
      if (p) await p;
    }
    sigma[d] = N > 0 ? Math.sqrt(s / N) : 0;
  }
  profileSink()?.({ kind: 'tree', cells: [N, N], ms: performance.now() - t0 });
  return { cloud, points, w: ws, perm, bounds, children, sigma, finest: bounds.length - 1 };
}

/** Per-depth geometry of a level's tree, from the root down to its tiles. */
export interface Level {
  readonly tree: Tree;
  readonly depth: number;
  /** The level's measure: cell centroids (in the computation's precision) and summed weights. */
  readonly cloud: Cloud;
  readonly w: Float64Array;
  /** The depth of its tiles. */
  readonly tileDepth: number;
  /** start[d]: the depth-d nodes (d <= tileDepth) as boundaries of the level's cell indices. */
  readonly start: Int32Array[];
  /** tiles[d]: the tiles under each depth-d node, as boundaries of tile indices. */
  readonly tiles: Int32Array[];
  /** The tiles as flat [start, end) pairs of cell indices (a BlockRanges axis). */
  readonly tileRanges: Int32Array;
  /** center[d] (C_d x D) and radius[d]: a ball around each depth-d node's cells, as the reductions see them. */
  readonly center: Float64Array[];
  readonly radius: Float64Array[];
}

/** The level of `tree` at `depth`: each node's weighted centroid (its plain mean for a node of zero
 *  weight) with the node's summed weight. */
export async function levelOf(tree: Tree, depth: number, dtype: 'float32' | 'float64', slicer: Slicer): Promise<Level> {
  const t0 = performance.now();
  const { D } = tree.cloud;
  const b = tree.bounds[depth]!;
  const C = b.length - 1;
  let data: Float32Array | Float64Array;
  let w: Float64Array;
  if (depth === tree.finest) {
    data = dtype === 'float32' ? Float32Array.from(tree.points) : tree.points;
    w = tree.w;
  } else {
    const c = new Float64Array(C * D);
    w = new Float64Array(C);
    for (let k = 0; k < C; k++) {
      const lo = b[k]!;
      const hi = b[k + 1]!;
      let m = 0;
      for (let i = lo; i < hi; i++) m += tree.w[i]!;
      w[k] = m;
      for (let i = lo; i < hi; i++) {
        const s = m > 0 ? tree.w[i]! / m : 1 / (hi - lo);
        for (let q = 0; q < D; q++) c[k * D + q] = c[k * D + q]! + s * tree.points[i * D + q]!;
      }
      const p = slicer.tick(1 + (((hi - lo) * D) >> 4));
      if (p) await p;
    }
    data = dtype === 'float32' ? Float32Array.from(c) : c;
  }
  const cloud: Cloud = {
    ...tree.cloud,
    name: depth === tree.finest ? tree.cloud.name : `${tree.cloud.name} (${C} cells)`,
    data,
    N: C,
  };
  const tileDepth = Math.max(0, depth - TILE_DEPTH);
  const start: Int32Array[] = new Array<Int32Array>(tileDepth + 1);
  const tiles: Int32Array[] = new Array<Int32Array>(tileDepth + 1);
  // A node's first cell at the level: its first child's, down to the level itself.
  let s = Int32Array.from({ length: C + 1 }, (_, k) => k);
  for (let d = depth - 1; d >= 0; d--) {
    const ch = tree.children[d]!;
    const up = Int32Array.from(ch, (c) => s[c]!);
    s = up;
    if (d <= tileDepth) start[d] = up;
  }
  start[tileDepth] ??= s;
  tiles[tileDepth] = Int32Array.from({ length: start[tileDepth]!.length }, (_, k) => k);
  for (let d = tileDepth - 1; d >= 0; d--) tiles[d] = Int32Array.from(tree.children[d]!, (c) => tiles[d + 1]![c]!);
  const st = start[tileDepth]!;
  const T = st.length - 1;
  const tileRanges = new Int32Array(2 * T);
  for (let t = 0; t < T; t++) {
    tileRanges[2 * t] = st[t]!;
    tileRanges[2 * t + 1] = st[t + 1]!;
  }
  // Tiles: the exact mean and largest distance of their cells; nodes above: their children's
  // points' mean and a ball holding the children's balls.
  const center: Float64Array[] = new Array<Float64Array>(tileDepth + 1);
  const radius: Float64Array[] = new Array<Float64Array>(tileDepth + 1);
  {
    const c = new Float64Array(T * D);
    const r = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      const lo = st[t]!;
      const hi = st[t + 1]!;
      for (let i = lo; i < hi; i++)
        for (let q = 0; q < D; q++) c[t * D + q] = c[t * D + q]! + data[i * D + q]! / (hi - lo);
      let r2 = 0;
      for (let i = lo; i < hi; i++) {
        let d2 = 0;
        for (let q = 0; q < D; q++) d2 += (data[i * D + q]! - c[t * D + q]!) ** 2;
        r2 = Math.max(r2, d2);
      }
      r[t] = Math.sqrt(r2);
      const p = slicer.tick(1 + (((hi - lo) * D) >> 4));
      if (p) await p;
    }
    center[tileDepth] = c;
    radius[tileDepth] = r;
  }
  for (let d = tileDepth - 1; d >= 0; d--) {
    const ch = tree.children[d]!;
    const n = ch.length - 1;
    const cs = start[d + 1]!;
    const cc = center[d + 1]!;
    const cr = radius[d + 1]!;
    const c = new Float64Array(n * D);
    const r = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const total = start[d]![k + 1]! - start[d]![k]!;
      for (let u = ch[k]!; u < ch[k + 1]!; u++) {
        const share = (cs[u + 1]! - cs[u]!) / total;
        for (let q = 0; q < D; q++) c[k * D + q] = c[k * D + q]! + share * cc[u * D + q]!;
      }
      let rad = 0;
      for (let u = ch[k]!; u < ch[k + 1]!; u++) {
        let d2 = 0;
        for (let q = 0; q < D; q++) d2 += (cc[u * D + q]! - c[k * D + q]!) ** 2;
        rad = Math.max(rad, Math.sqrt(d2) + cr[u]!);
      }
      r[k] = rad;
    }
    center[d] = c;
    radius[d] = r;
  }
  profileSink()?.({ kind: 'level', cells: [C, C], ms: performance.now() - t0 });
  return { tree, depth, cloud, w, tileDepth, start, tiles, tileRanges, center, radius };
}

/** The level's cells (the depth's nodes). */
export const cellsOf = (l: Level): number => l.cloud.N;

/**
 * A potential over each node as an affine function of the offset from its centre plus a bounded
 * residual: v_i = alpha + beta . (p_i - c) + e_i with |e_i| <= r, and its maximum and minimum.
 */
export interface AffineBounds {
  alpha: Float64Array[];
  beta: Float64Array[];
  r: Float64Array[];
  max: Float64Array[];
  min: Float64Array[];
}

/**
 * The affine bounds of v (one value per cell of the level) on every node down to the tiles. On a
 * tile beta is a least-squares slope (any slope gives a valid bound, a good one a tight bound), alpha
 * and r the midpoint and half-width of v_i - beta . (p_i - c) over it. A parent takes its children's
 * mean slope beta, and with u = p_i - c_k (|u| <= R_k) on child k,
 * v_i - beta . (p_i - c) = alpha_k - beta . (c_k - c) + (beta_k - beta) . u + e_k:
 * the hull of alpha_k - beta . (c_k - c) +- (|beta_k - beta| R_k + r_k) over the children bounds it.
 */
export async function affineBounds(v: Float64Array, L: Level, slicer: Slicer): Promise<AffineBounds> {
  const D = L.cloud.D;
  const pts = L.cloud.data;
  const t = L.tileDepth;
  const out: AffineBounds = { alpha: [], beta: [], r: [], max: [], min: [] };
  const st = L.start[t]!;
  const T = st.length - 1;
  const alpha = new Float64Array(T);
  const beta = new Float64Array(T * D);
  const res = new Float64Array(T);
  const mx = new Float64Array(T);
  const mn = new Float64Array(T);
  const S = new Float64Array(D * D);
  const tv = new Float64Array(D);
  const dx = new Float64Array(D);
  const c = L.center[t]!;
  for (let q = 0; q < T; q++) {
    const lo = st[q]!;
    const hi = st[q + 1]!;
    let mean = 0;
    let vmax = -Infinity;
    let vmin = Infinity;
    for (let i = lo; i < hi; i++) {
      mean += v[i]!;
      vmax = Math.max(vmax, v[i]!);
      vmin = Math.min(vmin, v[i]!);
    }
    mx[q] = vmax;
    mn[q] = vmin;
    mean /= Math.max(1, hi - lo);
    S.fill(0);
    tv.fill(0);
    for (let i = lo; i < hi; i++) {
      for (let k = 0; k < D; k++) dx[k] = pts[i * D + k]! - c[q * D + k]!;
      const dv = v[i]! - mean;
      for (let k = 0; k < D; k++) {
        tv[k] = tv[k]! + dx[k]! * dv;
        for (let l = 0; l <= k; l++) S[k * D + l] = S[k * D + l]! + dx[k]! * dx[l]!;
      }
    }
    for (let k = 0; k < D; k++) for (let l = k + 1; l < D; l++) S[k * D + l] = S[l * D + k]!;
    const b = solveSmall(S, tv, D);
    let emin = Infinity;
    let emax = -Infinity;
    for (let i = lo; i < hi; i++) {
      let e = v[i]!;
      for (let k = 0; k < D; k++) e -= b[k]! * (pts[i * D + k]! - c[q * D + k]!);
      if (e < emin) emin = e;
      if (e > emax) emax = e;
    }
    for (let k = 0; k < D; k++) beta[q * D + k] = b[k]!;
    alpha[q] = 0.5 * (emax + emin);
    res[q] = 0.5 * (emax - emin);
    const p = slicer.tick();
    if (p) await p;
  }
  out.alpha[t] = alpha;
  out.beta[t] = beta;
  out.r[t] = res;
  out.max[t] = mx;
  out.min[t] = mn;
  for (let d = t - 1; d >= 0; d--) {
    const ch = L.tree.children[d]!;
    const n = ch.length - 1;
    const cs = L.start[d + 1]!;
    const ps = L.start[d]!;
    const [ca, cb, cr, cmx, cmn] = [
      out.alpha[d + 1]!,
      out.beta[d + 1]!,
      out.r[d + 1]!,
      out.max[d + 1]!,
      out.min[d + 1]!,
    ];
    const cc = L.center[d + 1]!;
    const crad = L.radius[d + 1]!;
    const pc = L.center[d]!;
    const a2 = new Float64Array(n);
    const b2 = new Float64Array(n * D);
    const r2 = new Float64Array(n);
    const mx2 = new Float64Array(n).fill(-Infinity);
    const mn2 = new Float64Array(n).fill(Infinity);
    for (let k = 0; k < n; k++) {
      const total = ps[k + 1]! - ps[k]!;
      for (let u = ch[k]!; u < ch[k + 1]!; u++) {
        const share = (cs[u + 1]! - cs[u]!) / total;
        for (let q = 0; q < D; q++) b2[k * D + q] = b2[k * D + q]! + share * cb[u * D + q]!;
        mx2[k] = Math.max(mx2[k]!, cmx[u]!);
        mn2[k] = Math.min(mn2[k]!, cmn[u]!);
      }
      let lo = Infinity;
      let hi = -Infinity;
      for (let u = ch[k]!; u < ch[k + 1]!; u++) {
        let shift = 0;
        let tilt2 = 0;
        for (let q = 0; q < D; q++) {
          shift += b2[k * D + q]! * (cc[u * D + q]! - pc[k * D + q]!);
          tilt2 += (cb[u * D + q]! - b2[k * D + q]!) ** 2;
        }
        const mid = ca[u]! - shift;
        const half = Math.sqrt(tilt2) * crad[u]! + cr[u]!;
        lo = Math.min(lo, mid - half);
        hi = Math.max(hi, mid + half);
      }
      a2[k] = 0.5 * (hi + lo);
      r2[k] = 0.5 * (hi - lo);
      const p = slicer.tick();
      if (p) await p;
    }
    out.alpha[d] = a2;
    out.beta[d] = b2;
    out.r[d] = r2;
    out.max[d] = mx2;
    out.min[d] = mn2;
  }
  return out;
}

/** S b = t for a small symmetric positive semi-definite S, ridge-regularised; directions with no
 *  spread (a tile of one point, or of collinear points) get a zero slope. */
function solveSmall(S: Float64Array, t: Float64Array, D: number): Float64Array {
  let trace = 0;
  for (let k = 0; k < D; k++) trace += S[k * D + k]!;
  const A = Float64Array.from(S);
  const b = Float64Array.from(t);
  const ridge = 1e-9 * trace + 1e-300;
  for (let k = 0; k < D; k++) A[k * D + k] = A[k * D + k]! + ridge;
  // Gaussian elimination; A is symmetric positive definite after the ridge: no pivoting needed.
  for (let k = 0; k < D; k++) {
    const pivot = A[k * D + k]!;
    for (let i = k + 1; i < D; i++) {
      const m = A[i * D + k]! / pivot;
      if (m === 0) continue;
      for (let l = k; l < D; l++) A[i * D + l] = A[i * D + l]! - m * A[k * D + l]!;
      b[i] = b[i]! - m * b[k]!;
    }
  }
  for (let k = D - 1; k >= 0; k--) {
    let s = b[k]!;
    for (let l = k + 1; l < D; l++) s -= A[k * D + l]! * b[l]!;
    b[k] = s / A[k * D + k]!;
  }
  for (let k = 0; k < D; k++) if (!Number.isFinite(b[k]!)) b.fill(0);
  return b;
}

/** Bounds of a potential that is 0 everywhere (the targets of an extrapolation). */
export function zeroBounds(L: Level): AffineBounds {
  const out: AffineBounds = { alpha: [], beta: [], r: [], max: [], min: [] };
  const D = L.cloud.D;
  for (let d = 0; d <= L.tileDepth; d++) {
    const n = L.radius[d]!.length;
    out.alpha[d] = out.r[d] = out.max[d] = out.min[d] = new Float64Array(n);
    out.beta[d] = new Float64Array(n * D);
  }
  return out;
}

/**
 * How far below 0 f_i + g_j - C_ij may go before the pair is dropped. GeomLoss documents `truncate`
 * as the kernel's effective support in standard deviations: for p = 2 the softmin kernel
 * exp(-|x - y|^2 / (2 eps)) is a Gaussian of standard deviation sqrt(eps), so truncate sigmas is a margin
 * of truncate^2 / 2 eps (a dropped term weighs less than exp(-12.5) of the plan's peak; in 3-D a
 * Gaussian keeps all but ~2e-5 of its mass within 5 sigmas). For p = 1 the kernel exp(-|x - y| / eps)
 * has heavier tails, and the same reading would drop ~12% of a 3-D row's mass at truncate = 5: the
 * margin is truncate^2 eps there (< 1e-8 of the mass). GeomLoss itself uses truncate * eps for both.
 */
export function truncationMargin(truncate: number | null, eps: number, p: number): number {
  if (truncate === null) return Infinity;
  return (p === 2 ? 0.5 : 1) * truncate * truncate * eps;
}

/** The cost of a pair from its squared distance, as the reductions compute it. */
const pointCost = (d2: number, p: number): number => (p === 2 ? 0.5 * d2 : Math.sqrt(Math.max(d2, 1e-8)));

const costOf = (distance: number, p: number): number =>
  p === 2 ? 0.5 * distance * distance : Math.max(distance, 1e-4);

/** Evaluates the bounds of f_i + g_j - C(p_i, q_j) over node pairs of two levels. With f and g
 *  affine plus residual over each node, offsets u = p_i - c_a, w = q_j - c_b of norms <= R_a, R_b and
 *  Delta = c_a - c_b:
 *  - p = 2: f_i + g_j - |Delta + u - w|^2 / 2 = alpha_a + alpha_b + e_i + e_j - |Delta|^2 / 2
 *      + (beta_a - Delta) . u + (beta_b + Delta) . w - |u - w|^2 / 2, so
 *    U = alpha_a + alpha_b + r_a + r_b - |Delta|^2 / 2 + |beta_a - Delta| R_a + |beta_b + Delta| R_b
 *    (tight where the transport goes from a to b: the potentials' slopes cancel the cost's), and
 *    L = alpha_a + alpha_b - r_a - r_b - |Delta|^2 / 2 - (the same tilts) - (R_a + R_b)^2 / 2;
 *  - any p: C(|Delta| - R_a - R_b) <= C <= C(|Delta| + R_a + R_b) with the nodes' maxima and minima.
 *  The tighter of the two is used. */
class PairBounds {
  d2 = 0;
  ba2 = 0;
  bb2 = 0;
  constructor(
    readonly A: Level,
    readonly FA: AffineBounds,
    readonly B: Level,
    readonly GB: AffineBounds,
    readonly p: number,
  ) {}

  private offsets(da: number, a: number, db: number, b: number): void {
    const D = this.A.cloud.D;
    const ca = this.A.center[da]!;
    const cb = this.B.center[db]!;
    const fa = this.FA.beta[da]!;
    const gb = this.GB.beta[db]!;
    let d2 = 0;
    let ba2 = 0;
    let bb2 = 0;
    for (let k = 0; k < D; k++) {
      const delta = ca[a * D + k]! - cb[b * D + k]!;
      d2 += delta * delta;
      ba2 += (fa[a * D + k]! - delta) ** 2;
      bb2 += (gb[b * D + k]! + delta) ** 2;
    }
    this.d2 = d2;
    this.ba2 = ba2;
    this.bb2 = bb2;
  }

  upper(da: number, a: number, db: number, b: number): number {
    this.offsets(da, a, db, b);
    const Ra = this.A.radius[da]![a]!;
    const Rb = this.B.radius[db]![b]!;
    const { FA, GB, p } = this;
    const byMax = FA.max[da]![a]! + GB.max[db]![b]! - costOf(Math.max(0, Math.sqrt(this.d2) - Ra - Rb), p);
    if (p !== 2) return byMax;
    const affine =
      FA.alpha[da]![a]! +
      GB.alpha[db]![b]! +
      FA.r[da]![a]! +
      GB.r[db]![b]! -
      0.5 * this.d2 +
      Math.sqrt(this.ba2) * Ra +
      Math.sqrt(this.bb2) * Rb;
    return Math.min(byMax, affine);
  }

  lower(da: number, a: number, db: number, b: number): number {
    this.offsets(da, a, db, b);
    const Ra = this.A.radius[da]![a]!;
    const Rb = this.B.radius[db]![b]!;
    const { FA, GB, p } = this;
    const byMin = FA.min[da]![a]! + GB.min[db]![b]! - costOf(Math.sqrt(this.d2) + Ra + Rb, p);
    if (p !== 2) return byMin;
    const tilt = Math.sqrt(this.ba2) * Ra + Math.sqrt(this.bb2) * Rb;
    const affine =
      FA.alpha[da]![a]! +
      GB.alpha[db]![b]! -
      FA.r[da]![a]! -
      GB.r[db]![b]! -
      0.5 * this.d2 -
      tilt -
      0.5 * (Ra + Rb) ** 2;
    return Math.max(byMin, affine);
  }
}

/** Kept tile pairs, as a growing list; turned into both axes of a BlockRanges at the end. */
class KeptPairs {
  private ij = new Int32Array(1024);
  count = 0;
  /** Point (cell) pairs held by the kept blocks. */
  pairs = 0;
  constructor(
    readonly A: Level,
    readonly B: Level,
  ) {}

  keep(i: number, j: number): void {
    if (2 * this.count + 2 > this.ij.length) {
      const grown = new Int32Array(2 * this.ij.length);
      grown.set(this.ij);
      this.ij = grown;
    }
    this.ij[2 * this.count] = i;
    this.ij[2 * this.count + 1] = j;
    this.count++;
    const ri = this.A.tileRanges;
    const rj = this.B.tileRanges;
    this.pairs += (ri[2 * i + 1]! - ri[2 * i]!) * (rj[2 * j + 1]! - rj[2 * j]!);
  }

  /** A tile without any kept block would give +inf: it keeps every block of its row (a safety net
   *  that the bounds make rare); `symmetric`: mirrored, so that the pattern stays its own transpose. */
  fillEmpty(symmetric: boolean): void {
    const Ti = this.A.tileRanges.length / 2;
    const Tj = this.B.tileRanges.length / 2;
    const hasI = new Uint8Array(Ti);
    const hasJ = new Uint8Array(Tj);
    for (let k = 0; k < this.count; k++) {
      hasI[this.ij[2 * k]!] = 1;
      hasJ[this.ij[2 * k + 1]!] = 1;
    }
    const wasEmpty = hasI.map((h) => 1 - h);
    for (let i = 0; i < Ti; i++) {
      if (!wasEmpty[i]) continue;
      for (let j = 0; j < Tj; j++) {
        // Symmetric: an empty row j before i already kept (j, i) and (i, j).
        if (symmetric && j < i && wasEmpty[j]) continue;
        this.keep(i, j);
        if (symmetric && j !== i) this.keep(j, i);
      }
      hasJ.fill(1);
    }
    if (symmetric) return;
    for (let j = 0; j < Tj; j++) if (!hasJ[j]) for (let i = 0; i < Ti; i++) this.keep(i, j);
  }

  async ranges(symmetric: boolean, slicer: Slicer): Promise<BlockRanges> {
    const ri = this.A.tileRanges;
    const rj = this.B.tileRanges;
    const Ti = ri.length / 2;
    const Tj = rj.length / 2;
    const I = await this.axis(0, Ti, Tj, rj, slicer);
    const J = symmetric ? I : await this.axis(1, Tj, Ti, ri, slicer);
    return { rangesI: ri, slicesI: I.slices, redRangesJ: I.red, rangesJ: rj, slicesJ: J.slices, redRangesI: J.red };
  }

  /** The pairs sorted by (outer, inner) (two counting sorts), inner tiles that follow each other in
   *  memory merged into one range. Millions of pairs at large N: in slices of SORT_SLICE. */
  private async axis(
    outerCol: 0 | 1,
    nOuter: number,
    nInner: number,
    inner: Int32Array,
    slicer: Slicer,
  ): Promise<{ slices: Int32Array; red: Int32Array }> {
    const K = this.count;
    const ij = this.ij;
    const innerCol = 1 - outerCol;
    // (k & SORT_SLICE) === SORT_SLICE once per 2^16 pairs: the check is one test per pair, the
    // await (a promise) only then.
    const sortBy = async (col: number, n: number, order: Int32Array): Promise<Int32Array> => {
      const counts = new Int32Array(n + 1);
      for (let k = 0; k < K; k++) {
        counts[ij[2 * order[k]! + col]! + 1]!++;
        if ((k & SORT_SLICE) === SORT_SLICE) {
          const p = slicer.now();
          if (p) await p;
        }
      }
      for (let q = 0; q < n; q++) counts[q + 1] = counts[q + 1]! + counts[q]!;
      const out = new Int32Array(K);
      for (let k = 0; k < K; k++) {
        out[counts[ij[2 * order[k]! + col]!]!++] = order[k]!;
        if ((k & SORT_SLICE) === SORT_SLICE) {
          const p = slicer.now();
          if (p) await p;
        }
      }
      return out;
    };
    const identity = new Int32Array(K);
    for (let k = 0; k < K; k++) identity[k] = k;
    const order = await sortBy(outerCol, nOuter, await sortBy(innerCol, nInner, identity));
    const slices = new Int32Array(nOuter);
    const red = new Int32Array(2 * K);
    let n = 0;
    let k = 0;
    for (let o = 0; o < nOuter; o++) {
      const first = n;
      for (; k < K && ij[2 * order[k]! + outerCol] === o; k++) {
        const q = ij[2 * order[k]! + innerCol]!;
        if (n > first && red[2 * n - 1] === inner[2 * q]) red[2 * n - 1] = inner[2 * q + 1]!;
        else {
          red[2 * n] = inner[2 * q]!;
          red[2 * n + 1] = inner[2 * q + 1]!;
          n++;
        }
      }
      slices[o] = n;
      const p = slicer.tick();
      if (p) await p;
    }
    return { slices, red: red.slice(0, 2 * n) };
  }
}

/** Kept pairs sorted between two checks of the slicer, minus one (a mask). */
const SORT_SLICE = (1 << 16) - 1;

/** The node pairs a traversal has yet to test: a stack of (depth in A, node, depth in B, node). */
class PairStack {
  private q = new Int32Array(4 * 256);
  size = 0;

  push(da: number, a: number, db: number, b: number): void {
    if (4 * this.size + 4 > this.q.length) {
      const grown = new Int32Array(2 * this.q.length);
      grown.set(this.q);
      this.q = grown;
    }
    const k = 4 * this.size++;
    this.q[k] = da;
    this.q[k + 1] = a;
    this.q[k + 2] = db;
    this.q[k + 3] = b;
  }

  /** Pops the top pair into `top` (da, a, db, b). */
  pop(top: Int32Array): void {
    const k = 4 * --this.size;
    top[0] = this.q[k]!;
    top[1] = this.q[k + 1]!;
    top[2] = this.q[k + 2]!;
    top[3] = this.q[k + 3]!;
  }
}

/**
 * The descent step of the dual-tree traversals: the node pairs under (a at depth da of A, b at depth
 * db of B) that the traversal tests next, pushed on `next`. The larger node (by radius) is split, a
 * tile is never split; `symmetric` (one level against itself, depths equal): both are split and each
 * unordered pair is pushed once (i <= j when a === b).
 */
function descend(
  A: Level,
  B: Level,
  symmetric: boolean,
  da: number,
  a: number,
  db: number,
  b: number,
  next: PairStack,
): void {
  if (symmetric) {
    const c = A.tree.children[da]!;
    for (let i = c[a]!; i < c[a + 1]!; i++)
      for (let j = a === b ? i : c[b]!; j < c[b + 1]!; j++) next.push(da + 1, i, db + 1, j);
  } else if (da < A.tileDepth && (db === B.tileDepth || A.radius[da]![a]! >= B.radius[db]![b]!)) {
    const c = A.tree.children[da]!;
    for (let i = c[a]!; i < c[a + 1]!; i++) next.push(da + 1, i, db, b);
  } else {
    const c = B.tree.children[db]!;
    for (let j = c[b]!; j < c[b + 1]!; j++) next.push(da, a, db + 1, j);
  }
}

/** What a traversal does with a node pair: drop it (and everything under it), keep every tile pair
 *  under it, or descend (a pair of tiles that is not dropped is kept). */
type Verdict = 0 | 1 | 2;
const DROP = 0;
const KEEP_ALL = 1;
const DESCEND = 2;

/**
 * The dual-tree traversal shared by both patterns: from the roots, `verdict` decides each node pair;
 * kept tile pairs go to `kept` (mirrored when `symmetric`). An explicit stack, in time slices.
 */
async function traverse(
  A: Level,
  B: Level,
  symmetric: boolean,
  kept: KeptPairs,
  verdict: (da: number, a: number, db: number, b: number) => Verdict,
  slicer: Slicer,
): Promise<number> {
  let tested = 0;
  const tA = A.tileDepth;
  const tB = B.tileDepth;
  const keep = (i: number, j: number): void => {
    kept.keep(i, j);
    if (symmetric && i !== j) kept.keep(j, i);
  };
  const stack = new PairStack();
  const top = new Int32Array(4);
  stack.push(0, 0, 0, 0);
  while (stack.size > 0) {
    const p = slicer.tick();
    if (p) await p;
    stack.pop(top);
    const da = top[0]!;
    const a = top[1]!;
    const db = top[2]!;
    const b = top[3]!;
    const v = verdict(da, a, db, b);
    tested++;
    if (v === DROP) continue;
    if (da === tA && db === tB) {
      keep(a, b);
    } else if (v === KEEP_ALL) {
      const ta = A.tiles[da]!;
      const tb = B.tiles[db]!;
      // Symmetric and a === b: the unordered tile pairs once each (keep mirrors them).
      for (let i = ta[a]!; i < ta[a + 1]!; i++) {
        for (let j = symmetric && a === b ? i : tb[b]!; j < tb[b + 1]!; j++) keep(i, j);
        const p = slicer.tick();
        if (p) await p;
      }
    } else {
      descend(A, B, symmetric, da, a, db, b, stack);
    }
  }
  return tested;
}

export interface Pattern {
  ranges: BlockRanges;
  /** Pairs of cells in the kept blocks. */
  pairs: number;
}

/**
 * The kept tile pairs for a softmin at temperature eps from the current potentials f (on A's cells)
 * and g (on B's): a tile pair is dropped when an upper bound of f_i + g_j - C(p_i, q_j) over its
 * cells is <= -margin (truncationMargin). Near the fixed point the plan's entries, relative to
 * a_i b_j, and the softmin terms relative to their row's total, are then below exp(-margin / eps) on
 * the dropped blocks. `symmetric` (the xx and yy problems: one level, one potential): the bounds are
 * symmetric, node pairs (a <= b) are visited once and mirrored.
 */
export async function truncationPattern(
  A: Level,
  f: Float64Array,
  B: Level,
  g: Float64Array,
  eps: number,
  p: number,
  truncate: number | null,
  symmetric: boolean,
  slicer: Slicer,
): Promise<Pattern> {
  const t0 = performance.now();
  const limit = -truncationMargin(truncate, eps, p);
  const FA = await affineBounds(f, A, slicer);
  const GB = symmetric ? FA : await affineBounds(g, B, slicer);
  const t1 = performance.now();
  const pb = new PairBounds(A, FA, B, GB, p);
  const kept = new KeptPairs(A, B);
  const tA = A.tileDepth;
  const tB = B.tileDepth;
  const tested = await traverse(
    A,
    B,
    symmetric,
    kept,
    (da, a, db, b) => {
      if (!(pb.upper(da, a, db, b) > limit)) return DROP;
      if (da === tA && db === tB) return KEEP_ALL;
      return pb.lower(da, a, db, b) > limit ? KEEP_ALL : DESCEND;
    },
    slicer,
  );
  kept.fillEmpty(symmetric);
  const t2 = performance.now();
  const ranges = await kept.ranges(symmetric, slicer);
  const sink = profileSink();
  if (sink) {
    const t3 = performance.now();
    const sample = samplePattern(A, B, ranges, (i, j, d2) => f[i]! + g[j]! - pointCost(d2, p) > limit);
    sink({
      kind: symmetric ? 'sym' : 'xy',
      cells: [A.cloud.N, B.cloud.N],
      ms: t3 - t0,
      eps,
      phases: { bounds: t1 - t0, traverse: t2 - t1, ranges: t3 - t2 },
      tested,
      blocks: kept.count,
      pairs: kept.pairs,
      sample,
    });
  }
  return { ranges, pairs: kept.pairs };
}

/** Candidates per node in the first pass of extrapolationPattern. */
const BEAM = 4;

/**
 * The blocks that an extrapolation softmin from level B (logits h) to the cells of level A needs:
 * f(p_i) = -eps log sum_j exp(h_j - C(p_i, q_j) / eps). A row's log-sum is at least its largest
 * term, so a block whose terms are all below a lower bound of that largest term by the truncation
 * margin holds less than exp(-margin / eps) of the row, term by term: it is dropped (bounds as in
 * truncationPattern, with f = 0 and g = eps h).
 * First pass: a lower bound best(a) of every row's largest term, for each node a of A (a lower bound
 * over a parent's rows holds for its children's): down A's tree, each node tries the children of
 * its parent's BEAM best source nodes. Second pass: the dual-tree traversal, a pair (a, b) dropped
 * when its upper bound is <= best(a) - margin.
 */
export async function extrapolationPattern(
  A: Level,
  B: Level,
  h: Float64Array,
  eps: number,
  p: number,
  truncate: number | null,
  slicer: Slicer,
): Promise<Pattern> {
  const t0 = performance.now();
  const limit = truncationMargin(truncate, eps, p);
  const FA = zeroBounds(A);
  const GB = await affineBounds(
    h.map((v) => eps * v),
    B,
    slicer,
  );
  const pb = new PairBounds(A, FA, B, GB, p);
  const tA = A.tileDepth;
  const tB = B.tileDepth;
  const chA = A.tree.children;
  const chB = B.tree.children;
  const best: Float64Array[] = [];
  let cand = Int32Array.of(0, -1, -1, -1).subarray(0, BEAM);
  let candDepth = 0;
  best[0] = Float64Array.of(pb.lower(0, 0, 0, 0));
  for (let d = 0; d < tA; d++) {
    const c = chA[d]!;
    const n = c[c.length - 1]!;
    const next = new Int32Array(n * BEAM).fill(-1);
    const nb = new Float64Array(n);
    const down = candDepth < tB;
    const e = down ? candDepth + 1 : candDepth;
    const lows: number[] = [];
    const ids: number[] = [];
    for (let a = 0; a + 1 < c.length; a++) {
      const pending = slicer.tick();
      if (pending) await pending;
      for (let u = c[a]!; u < c[a + 1]!; u++) {
        lows.length = 0;
        ids.length = 0;
        for (let s = 0; s < BEAM; s++) {
          const q = cand[a * BEAM + s]!;
          if (q < 0) continue;
          const from = down ? chB[candDepth]![q]! : q;
          const to = down ? chB[candDepth]![q + 1]! : q + 1;
          for (let v = from; v < to; v++) {
            lows.push(pb.lower(d + 1, u, e, v));
            ids.push(v);
          }
        }
        let bu = best[d]![a]!;
        // The BEAM largest lower bounds (candidates are few: a selection by repeated maxima).
        for (let s = 0; s < BEAM && lows.length > 0; s++) {
          let m = 0;
          for (let k = 1; k < lows.length; k++) if (lows[k]! > lows[m]!) m = k;
          if (s === 0) bu = Math.max(bu, lows[m]!);
          next[u * BEAM + s] = ids[m]!;
          lows[m] = -Infinity;
          if (lows.every((x) => x === -Infinity)) break;
        }
        nb[u] = bu;
      }
    }
    cand = next;
    candDepth = e;
    best[d + 1] = nb;
  }
  const t1 = performance.now();
  const kept = new KeptPairs(A, B);
  const tested = await traverse(
    A,
    B,
    false,
    kept,
    (da, a, db, b) => (pb.upper(da, a, db, b) > best[da]![a]! - limit ? DESCEND : DROP),
    slicer,
  );
  kept.fillEmpty(false);
  const t2 = performance.now();
  const ranges = await kept.ranges(false, slicer);
  const sink = profileSink();
  if (sink) {
    const t3 = performance.now();
    sink({
      kind: 'ext',
      cells: [A.cloud.N, B.cloud.N],
      ms: t3 - t0,
      eps,
      phases: { bounds: t1 - t0, traverse: t2 - t1, ranges: t3 - t2 },
      tested,
      blocks: kept.count,
      pairs: kept.pairs,
      sample: sampleExtrapolation(A, B, ranges, h, eps, p, limit),
    });
  }
  return { ranges, pairs: kept.pairs };
}

/** samplePattern for an extrapolation: a term is kept pointwise when it is within the margin of its
 *  row's largest term. */
function sampleExtrapolation(
  A: Level,
  B: Level,
  ranges: BlockRanges,
  h: Float64Array,
  eps: number,
  p: number,
  limit: number,
): NonNullable<ProfileRecord['sample']> {
  const D = A.cloud.D;
  const pa = A.cloud.data;
  const pb = B.cloud.data;
  let row = -1;
  let best = -Infinity;
  return samplePattern(A, B, ranges, (i, j, d2) => {
    if (i !== row) {
      row = i;
      best = -Infinity;
      for (let q = 0; q < B.cloud.N; q++) {
        let e2 = 0;
        for (let k = 0; k < D; k++) e2 += (pa[i * D + k]! - pb[q * D + k]!) ** 2;
        best = Math.max(best, eps * h[q]! - pointCost(e2, p));
      }
    }
    return eps * h[j]! - pointCost(d2, p) > best - limit;
  });
}
