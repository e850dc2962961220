// The multilevel hierarchy of the 'multiscale' backend (multiscale.ts): one k-d tree per cloud, built
// once, in any dimension; its depth d cut is a "level" of 2^d cells (fewer where a node holds one
// point), from the whole cloud (depth 0) down to the points. A level is a weighted measure: each
// cell's weighted centroid with the cell's summed weight.
//
// Kernel truncation at any level (the pattern of kept blocks for a softmin, tilePattern) keeps blocks
// of a tile of one level (the depth d - TILE_DEPTH nodes, at most 2^TILE_DEPTH = 16 cells) against
// a tile or a whole node of the other: a walk of the second
// level's tree per group of 4 tiles of the first, then per tile over what its group kept. A node whose
// provable upper bound of the softmin's exponent is below the truncation margin is dropped with
// everything under it, one whose lower bound clears the margin is kept whole. The walks are depth
// first in tree order, so that each tile's kept blocks come out sorted and merge into runs at once;
// each run's ends are then trimmed to the cells a tile-against-point bound keeps, and trimmed runs
// closer than GAP_CELLS are joined (a run costs the reductions more than a short gap); the
// other axis is their transpose, by a count and a fill. The work grows like the kept blocks, i.e.
// linearly with the cells at a fixed kernel width per cell. The bounds are those of the single-jump
// backend this replaces (affine in the potentials plus a bounded residual, and the cells' maxima),
// computed exactly on the tiles and merged up the tree.
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
 * its traversal tested, the point bounds its trimming evaluated, the blocks and pairs it kept and, on a sample of rows, how many pairs the
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
  /** Tile-against-point bounds evaluated by the trimming of the ranges (trimAxis). */
  pointTests?: number;
  /** Outer clusters whose blocks were re-tested from the prior pattern instead of walked (tilePattern). */
  incremental?: number;
  blocks?: number;
  pairs?: number;
  /** The pattern's arrays (both axes), in bytes. */
  bytes?: number;
  sample?: { rows: number; pointwise: number; inBlocks: number; missed: number };
}

const bytesOf = (r: BlockRanges): number =>
  r.rangesI.byteLength +
  r.slicesI.byteLength +
  r.redRangesJ.byteLength +
  r.rangesJ.byteLength +
  r.slicesJ.byteLength +
  r.redRangesI.byteLength;

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

/** A level's tiles hold at most 2^TILE_DEPTH cells: 16. Measured (bench/multilevel.mjs, smooth
 *  clouds, float32; pairs exact, times on the loaded 2-core machine, one run each): tiles of 8 / 16 /
 *  32 cells visit 2.29e8 / 3.07e8 / 4.39e8 pairs at 10^4 points (32 x 32 tiles with the previous
 *  dual-tree patterns: 4.75e8), and at 10^5 3.49e9 / 4.52e9 / - (previous: 6.34e9) in 240 s / 130 s /
 *  - (previous: 190 s): 8 cells halve the pairs, but their patterns test 6x more node pairs than the
 *  previous ones and cost more than the reductions they save; 16 cells cost about what the previous
 *  patterns did. A tile of 32 points is wider than the kernel's reach at the final temperature. */
export const TILE_DEPTH = 4;

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
 *  weight) with the node's summed weight; its tiles are the nodes `tileCells` depths above it (at most
 *  2^tileCells cells each; TILE_DEPTH unless a test compares tile sizes). */
export async function levelOf(
  tree: Tree,
  depth: number,
  dtype: 'float32' | 'float64',
  slicer: Slicer,
  tileCells = TILE_DEPTH,
): Promise<Level> {
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
  const tileDepth = Math.max(0, depth - tileCells);
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

/**
 * Kept runs closer than this many cells (in tree order, after trimAxis trimmed their ends) are joined
 * into one run, the gap visited. Joined after the trimming rather than before (as tile runs): 3 10^4
 * concentrated points, 3.880e9 -> 3.604e9 pairs for 2% more point bounds. A run costs the block-sparse reduction a fixed overhead per group of 8 outer rows (one
 * segment of the Wasm kernel: decoding the program, folding the block) that was measured (this 2-core
 * machine, loaded, float32 logSumExp, D = 3, 8-row clusters) at ~430 pairs' worth: 2.8 us against 6.5
 * ns per pair; runs of 8 cells took 55 ns per pair, runs of 1024 cells 7 ns. Joining a gap of g cells
 * costs 8 g pairs per 8 rows: worth it up to g ~ 50.
 */
const GAP_CELLS = 40;

/** A growable list of int32 pairs. */
class PairList {
  data = new Int32Array(1024);
  count = 0;

  push(a: number, b: number): void {
    if (2 * this.count + 2 > this.data.length) {
      const grown = new Int32Array(2 * this.data.length);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[2 * this.count] = a;
    this.data[2 * this.count + 1] = b;
    this.count++;
  }
}

/** What tilePattern found: per tile of A, its kept runs of B's tiles (as tile indices, consecutive
 *  runs merged, in increasing order), and the traversal's counts. */
interface TileRuns {
  /** The outer clusters (A's nodes at OUTER_UP depths above its tiles), as [start, end) cell pairs. */
  outer: Int32Array;
  /** runs of outer cluster a are runs.data pairs [ends[a - 1], ends[a]) (ends[-1] = 0). */
  ends: Int32Array;
  runs: PairList;
  /** Upper bounds evaluated. */
  tested: number;
  /** Kept (tile of A, tile of B) pairs. */
  blocks: number;
  /** Outer clusters re-tested from a prior pattern's blocks (no walk). */
  incremental: number;
}

/** What tilePattern reads of a prior pattern on the same levels: its axis I (ranges of B's cells
 *  per outer cluster of A) and, per cluster, whether that axis still holds every block the new
 *  limit can keep (priorClusters). */
interface PriorRuns {
  ends: Int32Array;
  red: Int32Array;
  holds: Uint8Array;
}

/**
 * The kernel truncation of one pair of levels, tile by tile of A. A tile's kept tiles of B must come
 * out in increasing order, so that consecutive ones merge into runs at once (no sort): each walk of
 * B's tree is depth first, children in order. A node b of B is dropped with everything under it
 * when an upper bound of f_i + g_j - C(p_i, q_j) over (a, b) is <= limit, kept whole when a lower
 * bound is > limit, split otherwise, down to B's tiles. Two stages, so that the top of B's tree is
 * walked once per group of 2^GROUP_DEPTH tiles of A rather than once per tile: the group's node walks
 * B's tree and lists what it keeps, in order (whole nodes, and the tiles of B it does not drop);
 * each tile of the group then keeps the whole nodes (a lower bound over the group holds for its
 * tiles) and tests each listed tile of B (an upper bound over the group does not drop for its tiles).
 * The bounds are PairBounds', over the flat per-depth arrays (bound()), with the affine
 * bounds FA of f on A's nodes and GB of g on B's. Tiles are small (2^TILE_DEPTH cells), so that a
 * kept block holds few pairs that the pointwise test would drop. A tile of A that keeps nothing would
 * get +inf from its softmin: it keeps every tile of B (a safety net that the bounds make rare).
 */
async function tilePattern(
  A: Level,
  FA: AffineBounds,
  B: Level,
  GB: AffineBounds,
  p: number,
  limit: number,
  slicer: Slicer,
  prior?: PriorRuns,
): Promise<TileRuns> {
  const tA = A.tileDepth;
  const tB = B.tileDepth;
  const TB = B.tileRanges.length / 2;
  // Outer clusters at depth od, grouped at depth gd for the first stage.
  const od = Math.max(0, tA - OUTER_UP);
  const gd = Math.max(0, od - GROUP_DEPTH);
  const so = A.start[od]!;
  const TA = so.length - 1;
  const outer = new Int32Array(2 * TA);
  for (let a = 0; a < TA; a++) {
    outer[2 * a] = so[a]!;
    outer[2 * a + 1] = so[a + 1]!;
  }
  // The outer clusters under each group node.
  let groups = A.tree.children[gd] && gd < od ? A.tree.children[gd]! : Int32Array.from({ length: TA + 1 }, (_, k) => k);
  for (let d = gd + 1; d < od; d++) groups = Int32Array.from(groups, (c) => A.tree.children[d]![c]!);
  const chB = B.tree.children;
  const tilesB = B.tiles;
  const bd = new PairBounds(A, FA, B, GB, p, limit);
  // A walk's stack holds at most one pending sibling per depth (a node has at most 2 children).
  const stack = new Int32Array(2 * (2 * (tB + 2)));
  const ends = new Int32Array(TA);
  const runs = new PairList();
  // The group's list: (depth, node) of B, depth -1 - d for a node kept whole.
  const listed = new PairList();
  let tested = 0;
  let blocks = 0;
  let incremental = 0;
  // Appends tile range [t0, t1) of B to the runs of the current cluster (runs from `first` on).
  const keep = (first: number, t0: number, t1: number): void => {
    const end = runs.count > first ? runs.data[2 * runs.count - 1]! : -1;
    if (end === t0) {
      // Adjacent to the previous run: one longer run. Runs apart are joined after the trimming
      // of their ends (trimAxis), where the gap between them is known to the cell.
      blocks += t1 - end;
      runs.data[2 * runs.count - 1] = t1;
    } else {
      blocks += t1 - t0;
      runs.push(t0, t1);
    }
  };
  // The tile of B of each cell, for reading a prior pattern's ranges as tiles.
  let tileOfB: Int32Array | undefined;
  if (prior) {
    tileOfB = new Int32Array(B.cloud.N);
    for (let t = 0; t < TB; t++) tileOfB.fill(t, B.tileRanges[2 * t]!, B.tileRanges[2 * t + 1]!);
  }
  for (let g = 0; g + 1 < groups.length; g++) {
    if (prior && tileOfB) {
      let all = true;
      for (let a = groups[g]!; a < groups[g + 1]! && all; a++) all = prior.holds[a] === 1;
      if (all) {
        // Every cluster of the group: the prior pattern's blocks hold every block the new limit
        // keeps, so only B's tiles under its ranges are tested, in increasing order as the walk's.
        let work = 0;
        for (let a = groups[g]!; a < groups[g + 1]!; a++) {
          const first = runs.count;
          let done = -1;
          for (let k = a === 0 ? 0 : prior.ends[a - 1]!; k < prior.ends[a]!; k++) {
            const t1 = tileOfB[prior.red[2 * k + 1]! - 1]!;
            // A tile under two ranges (a gap inside it) is tested once.
            for (let t = Math.max(done + 1, tileOfB[prior.red[2 * k]!]!); t <= t1; t++) {
              tested++;
              // `!(<=)`: a NaN bound (infinite potentials) drops nothing, as in the walk.
              if (!(bd.bound(od, a, tB, t) <= limit)) keep(first, t, t + 1);
            }
            done = Math.max(done, t1);
          }
          if (runs.count === first) {
            runs.push(0, TB);
            blocks += TB;
          }
          ends[a] = runs.count;
          work += runs.count - first;
          incremental++;
        }
        const pending = slicer.tick(1 + (work >> 2));
        if (pending) await pending;
        continue;
      }
    }
    listed.count = 0;
    let top = 0;
    stack[top++] = 0;
    stack[top++] = 0;
    while (top > 0) {
      const b = stack[--top]!;
      const db = stack[--top]!;
      tested++;
      // `<=`: a NaN bound (infinite potentials) drops nothing.
      if (bd.bound(gd, g, db, b) <= limit) continue;
      if (db === tB) listed.push(db, b);
      else if (bd.lower > limit) listed.push(-1 - db, b);
      else {
        // Children pushed last first: the first child is walked first (increasing order).
        const c = chB[db]!;
        for (let v = c[b + 1]! - 1; v >= c[b]!; v--) {
          stack[top++] = db + 1;
          stack[top++] = v;
        }
      }
    }
    const L = listed.data;
    for (let a = groups[g]!; a < groups[g + 1]!; a++) {
      const first = runs.count;
      for (let e = 0; e < listed.count; e++) {
        let db = L[2 * e]!;
        const b = L[2 * e + 1]!;
        if (db >= 0) {
          // A tile of B (db = tB); with one outer cluster per group, the group's test was this one.
          if (gd !== od) {
            tested++;
            if (bd.bound(od, a, db, b) <= limit) continue;
          }
        } else db = -1 - db;
        keep(first, tilesB[db]![b]!, tilesB[db]![b + 1]!);
      }
      if (runs.count === first) {
        runs.push(0, TB);
        blocks += TB;
      }
      ends[a] = runs.count;
    }
    const pending = slicer.tick(1 + (listed.count >> 2));
    if (pending) await pending;
  }
  return { outer, ends, runs, tested, blocks, incremental };
}

/** The outer clusters of the patterns (A's side of the blocks, the rows of each block-sparse
 *  reduction) are A's nodes this many depths above its tiles. Measured with 8-cell tiles at 10^4
 *  points (smooth clouds; pairs exact, times loaded): 0 (8 rows) visits 2.29e8 pairs, 1 (16 rows)
 *  3.31e8 and 2 (32 rows, against 8-cell tiles of B) 4.80e8, as many as 32 x 32 tiles did, for about
 *  the same traversal time: the rows of a block are the limit, not B's side. */
const OUTER_UP = 0;

/** The depth of the groups of tiles in tilePattern's first stage, above A's tiles (groups of 4). */
const GROUP_DEPTH = 2;

/** Evaluates the bounds of f_i + g_j - C(p_i, q_j) over node pairs of two levels. With f and g
 *  affine plus residual over each node, offsets u = p_i - c_a, w = q_j - c_b of norms <= R_a, R_b and
 *  Delta = c_a - c_b:
 *  - p = 2: f_i + g_j - |Delta + u - w|^2 / 2 = alpha_a + alpha_b + e_i + e_j - |Delta|^2 / 2
 *      + (beta_a - Delta) . u + (beta_b + Delta) . w - |u - w|^2 / 2, so
 *    U = alpha_a + alpha_b + r_a + r_b - |Delta|^2 / 2 + |beta_a - Delta| R_a + |beta_b + Delta| R_b
 *    (tight where the transport goes from a to b: the potentials' slopes cancel the cost's), and
 *    L = alpha_a + alpha_b - r_a - r_b - |Delta|^2 / 2 - (the same tilts) - (R_a + R_b)^2 / 2;
 *  - any p: C(|Delta| - R_a - R_b) <= C <= C(|Delta| + R_a + R_b) with the nodes' maxima and minima.
 *  The tighter of the two is used.
 *  bound(da, a, db, b) returns the upper bound over the pair of nodes and leaves its lower bound in
 *  `lower`; over flat per-depth arrays, for the pattern walks' loops. */
class PairBounds {
  lower = 0;
  private readonly D: number;
  private readonly S: number;
  private readonly p2: boolean;
  /** Per depth, each node's [centre (D), radius, slope (D), alpha, r, max, min] in one run of
   *  2 D + 5 numbers: a bound reads two contiguous runs (measured: ~1.3-1.5x faster walks than
   *  eleven separate per-depth arrays). */
  private readonly na: Float64Array[];
  private readonly nb: Float64Array[];

  constructor(
    A: Level,
    FA: AffineBounds,
    B: Level,
    GB: AffineBounds,
    p: number,
    /** The walk's limit: the tilted bound is only evaluated above it (-Infinity: always). */
    private readonly limit = -Infinity,
  ) {
    this.D = A.cloud.D;
    this.S = 2 * this.D + 5;
    this.p2 = p === 2;
    this.na = PairBounds.pack(A, FA, this.D);
    this.nb = FA === GB && A === B ? this.na : PairBounds.pack(B, GB, this.D);
  }

  private static pack(L: Level, F: AffineBounds, D: number): Float64Array[] {
    const S = 2 * D + 5;
    const out: Float64Array[] = [];
    for (let d = 0; d <= L.tileDepth; d++) {
      const c = L.center[d]!;
      const R = L.radius[d]!;
      const beta = F.beta[d]!;
      const alpha = F.alpha[d]!;
      const r = F.r[d]!;
      const mx = F.max[d]!;
      const mn = F.min[d]!;
      const n = R.length;
      const o = new Float64Array(n * S);
      for (let a = 0; a < n; a++) {
        const base = a * S;
        for (let k = 0; k < D; k++) {
          o[base + k] = c[a * D + k]!;
          o[base + D + 1 + k] = beta[a * D + k]!;
        }
        o[base + D] = R[a]!;
        o[base + 2 * D + 1] = alpha[a]!;
        o[base + 2 * D + 2] = r[a]!;
        o[base + 2 * D + 3] = mx[a]!;
        o[base + 2 * D + 4] = mn[a]!;
      }
      out.push(o);
    }
    return out;
  }

  bound(da: number, a: number, db: number, b: number): number {
    if (this.D === 3 && this.p2) return this.bound3(this.na[da]!, a * this.S, this.nb[db]!, b * this.S);
    const D = this.D;
    const S = this.S;
    const na = this.na[da]!;
    const nb = this.nb[db]!;
    const ia = a * S;
    const ib = b * S;
    let d2 = 0;
    let ba2 = 0;
    let bb2 = 0;
    for (let k = 0; k < D; k++) {
      const delta = na[ia + k]! - nb[ib + k]!;
      d2 += delta * delta;
      const u = na[ia + D + 1 + k]! - delta;
      const w = nb[ib + D + 1 + k]! + delta;
      ba2 += u * u;
      bb2 += w * w;
    }
    const Ra = na[ia + D]!;
    const Rb = nb[ib + D]!;
    const dist = Math.sqrt(d2);
    const near = Math.max(0, dist - Ra - Rb);
    const far = dist + Ra + Rb;
    let upper = na[ia + 2 * D + 3]! + nb[ib + 2 * D + 3]! - (this.p2 ? 0.5 * near * near : Math.max(near, 1e-4));
    let lower = na[ia + 2 * D + 4]! + nb[ib + 2 * D + 4]! - (this.p2 ? 0.5 * far * far : Math.max(far, 1e-4));
    if (this.p2) {
      const tilt = Math.sqrt(ba2) * Ra + Math.sqrt(bb2) * Rb;
      const mid = na[ia + 2 * D + 1]! + nb[ib + 2 * D + 1]! - 0.5 * d2;
      const r = na[ia + 2 * D + 2]! + nb[ib + 2 * D + 2]!;
      upper = Math.min(upper, mid + r + tilt);
      lower = Math.max(lower, mid - r - tilt - 0.5 * (Ra + Rb) ** 2);
    }
    // Tilted by the nodes' mean slope s = (beta_a - beta_b) / 2, with h = (beta_a + beta_b) / 2:
    // f_i + g_j - C = (f_i - s.p_i) + (g_j + s.q_j) - |p_i - q_j - s|^2 / 2 + |s|^2 / 2 bounds like
    // the maxima's bound (it keeps the cost's curvature, which the affine bound drops) and is
    // invariant under f + s.p, g - s.q (which the maxima's bound is not): far-apart clouds, or any
    // transport with a large mean displacement, whose xy patterns kept 1.3x the xx ones' pairs
    // without it. Only where the other two do not drop the pair (the walks drop most of theirs).
    if (this.p2 && upper > this.limit) {
      let sd = 0;
      let s2 = 0;
      let h2 = 0;
      let e2 = 0;
      for (let k = 0; k < D; k++) {
        const delta = na[ia + k]! - nb[ib + k]!;
        const s = 0.5 * (na[ia + D + 1 + k]! - nb[ib + D + 1 + k]!);
        const h = 0.5 * (na[ia + D + 1 + k]! + nb[ib + D + 1 + k]!);
        sd += s * delta;
        s2 += s * s;
        h2 += h * h;
        e2 += (delta - s) ** 2;
      }
      const r = na[ia + 2 * D + 2]! + nb[ib + 2 * D + 2]!;
      const e = Math.sqrt(e2);
      const sNear = Math.max(0, e - Ra - Rb);
      const sFar = e + Ra + Rb;
      const sMid = na[ia + 2 * D + 1]! + nb[ib + 2 * D + 1]! - sd + 0.5 * s2;
      const sTilt = Math.sqrt(h2) * (Ra + Rb);
      upper = Math.min(upper, sMid + r + sTilt - 0.5 * sNear * sNear);
      lower = Math.max(lower, sMid - r - sTilt - 0.5 * sFar * sFar);
    }
    this.lower = lower;
    return upper;
  }

  /**
   * bound() for D = 3 and p = 2, the walks' common case, unrolled (no loops over the dimension, each
   * coordinate read once), the same operations in the same order, so the same bounds to the bit,
   * except that a pair dropped by its first bound (upper <= limit) returns that one, with lower
   * -Infinity: the same decisions. Measured (CPU profile of a 10^5-point bench run, smooth clouds,
   * AMD EPYC): the walks' bounds 5.2 -> 4.4 s (~1e8 bounds: ~45 ns each, the largest share of the
   * hierarchy's time; the same unrolling of PointBounds.bound gained nothing).
   */
  private bound3(na: Float64Array, ia: number, nb: Float64Array, ib: number): number {
    // A node's run: centre 0-2, radius 3, slope 4-6, alpha 7, r 8, max 9, min 10.
    const ax = na[ia]!;
    const ay = na[ia + 1]!;
    const az = na[ia + 2]!;
    const Ra = na[ia + 3]!;
    const sax = na[ia + 4]!;
    const say = na[ia + 5]!;
    const saz = na[ia + 6]!;
    const bx = nb[ib]!;
    const by = nb[ib + 1]!;
    const bz = nb[ib + 2]!;
    const Rb = nb[ib + 3]!;
    const sbx = nb[ib + 4]!;
    const sby = nb[ib + 5]!;
    const sbz = nb[ib + 6]!;
    const dx = ax - bx;
    const dy = ay - by;
    const dz = az - bz;
    const d2 = dx * dx + dy * dy + dz * dz;
    const ux = sax - dx;
    const uy = say - dy;
    const uz = saz - dz;
    const wx = sbx + dx;
    const wy = sby + dy;
    const wz = sbz + dz;
    const ba2 = ux * ux + uy * uy + uz * uz;
    const bb2 = wx * wx + wy * wy + wz * wz;
    const R = Ra + Rb;
    const dist = Math.sqrt(d2);
    const near = Math.max(0, dist - Ra - Rb);
    let upper = na[ia + 9]! + nb[ib + 9]! - 0.5 * near * near;
    // A pair that one bound drops needs neither the others nor its lower bound (the walks read
    // `lower` only for pairs they keep): most tested pairs end here, after one square root.
    if (upper <= this.limit) {
      this.lower = -Infinity;
      return upper;
    }
    const alphas = na[ia + 7]! + nb[ib + 7]!;
    const r = na[ia + 8]! + nb[ib + 8]!;
    const mid = alphas - 0.5 * d2;
    const tilt = Math.sqrt(ba2) * Ra + Math.sqrt(bb2) * Rb;
    upper = Math.min(upper, mid + r + tilt);
    if (upper <= this.limit) {
      this.lower = -Infinity;
      return upper;
    }
    const far = dist + Ra + Rb;
    let lower = na[ia + 10]! + nb[ib + 10]! - 0.5 * far * far;
    lower = Math.max(lower, mid - r - tilt - 0.5 * R ** 2);
    // `>`: false for a NaN bound (infinite potentials), as in bound().
    if (upper > this.limit) {
      // The tilted bound of bound().
      const s0 = 0.5 * (sax - sbx);
      const s1 = 0.5 * (say - sby);
      const s2z = 0.5 * (saz - sbz);
      const h0 = 0.5 * (sax + sbx);
      const h1 = 0.5 * (say + sby);
      const h2z = 0.5 * (saz + sbz);
      const sd = s0 * dx + s1 * dy + s2z * dz;
      const s2 = s0 * s0 + s1 * s1 + s2z * s2z;
      const h2 = h0 * h0 + h1 * h1 + h2z * h2z;
      const e2 = (dx - s0) ** 2 + (dy - s1) ** 2 + (dz - s2z) ** 2;
      const e = Math.sqrt(e2);
      const sNear = Math.max(0, e - Ra - Rb);
      const sFar = e + Ra + Rb;
      const sMid = alphas - sd + 0.5 * s2;
      const sTilt = Math.sqrt(h2) * R;
      upper = Math.min(upper, sMid + r + sTilt - 0.5 * sNear * sNear);
      lower = Math.max(lower, sMid - r - sTilt - 0.5 * sFar * sFar);
    }
    this.lower = lower;
    return upper;
  }
}

/**
 * Bounds of f_i + g_j - C(p_i, q_j) over the cells i of one cluster of a level (the clusters of a
 * pattern's axis: its nodes at one depth) against one cell j of the other level, whose point q_j and
 * value g_j are exact: with the cluster's affine bounds (f_i = alpha + beta . u + e_i, u = p_i - c,
 * |u| <= R, |e_i| <= r) and Delta = c - q_j,
 * - p = 2: f_i + g_j - |Delta + u|^2 / 2 = alpha + e_i + g_j - |Delta|^2 / 2 + (beta - Delta) . u
 *   - |u|^2 / 2, and the largest s . u - |u|^2 / 2 over |u| <= R is |s|^2 / 2 (|s| <= R) or
 *   |s| R - R^2 / 2: the pair bound of PairBounds with R_b = 0 and the curvature in u kept;
 * - any p: max_i f_i + g_j - C(max(0, |Delta| - R)).
 * The tighter of the two. One point is far smaller than a tile of the other level, so this drops
 * much of what the tile pair bounds keep at the ends of the kept runs (trimAxis).
 */
export class PointBounds {
  private readonly D: number;
  private readonly S: number;
  private readonly p2: boolean;
  /** Per cluster: [centre c (D), radius, c - slope (D), alpha + r, max] in one run of 2 D + 3 numbers. */
  private readonly t: Float64Array;

  constructor(
    L: Level,
    F: AffineBounds,
    depth: number,
    /** The other level's points (as the reductions see them) and values g. */
    private readonly q: ArrayLike<number>,
    private readonly g: Float64Array,
    p: number,
  ) {
    const D = L.cloud.D;
    const S = 2 * D + 3;
    this.D = D;
    this.S = S;
    this.p2 = p === 2;
    const c = L.center[depth]!;
    const R = L.radius[depth]!;
    const beta = F.beta[depth]!;
    const n = R.length;
    this.t = new Float64Array(n * S);
    for (let a = 0; a < n; a++) {
      const o = a * S;
      for (let k = 0; k < D; k++) {
        this.t[o + k] = c[a * D + k]!;
        this.t[o + D + 1 + k] = c[a * D + k]! - beta[a * D + k]!;
      }
      this.t[o + D] = R[a]!;
      this.t[o + 2 * D + 1] = F.alpha[depth]![a]! + F.r[depth]![a]!;
      this.t[o + 2 * D + 2] = F.max[depth]![a]!;
    }
  }

  bound(a: number, j: number): number {
    const { D, S, t, q } = this;
    const o = a * S;
    const qo = j * D;
    let d2 = 0;
    let s2 = 0;
    for (let k = 0; k < D; k++) {
      const qk = q[qo + k]!;
      d2 += (t[o + k]! - qk) ** 2;
      // beta - Delta = q_j - (c - beta).
      s2 += (qk - t[o + D + 1 + k]!) ** 2;
    }
    const R = t[o + D]!;
    const gj = this.g[j]!;
    const near = Math.max(0, Math.sqrt(d2) - R);
    const upper = t[o + 2 * D + 2]! + gj - (this.p2 ? 0.5 * near * near : Math.max(near, 1e-4));
    if (!this.p2) return upper;
    const sl = Math.sqrt(s2);
    const curve = sl <= R ? 0.5 * s2 : sl * R - 0.5 * R * R;
    return Math.min(upper, t[o + 2 * D + 1]! + gj - 0.5 * d2 + curve);
  }
}

/**
 * Trims one axis of a pattern in place: each range [j0, j1) of cluster a loses its leading and
 * trailing cells j whose PointBounds bound over (a, j) is <= limit (no pair of the cluster's rows
 * with j passes the truncation test), and a range left empty is removed. Measured on the finest
 * levels of the bench's concentrated clouds at 3 10^4 points: 47% (sym) to 76% (xy) of the tile
 * runs hold no pair that the pointwise test keeps, and exact trimming of the runs' ends would keep
 * 49% (xy) to 71% (sym) of their pairs. Trimmed ranges closer than GAP_CELLS are joined (tilePattern
 * joins only adjacent tiles, so that the gaps are trimmed too). A cluster whose ranges would all go
 * keeps them untrimmed (its softmin would otherwise be over nothing, as tilePattern's safety net).
 * `ends[a]`: the end of cluster a's ranges; returns the new ends, the number of ranges left and the
 * bounds evaluated.
 */
async function trimAxis(
  ends: Int32Array,
  red: Int32Array,
  pb: PointBounds,
  limit: number,
  slicer: Slicer,
): Promise<{ ends: Int32Array; count: number; tests: number }> {
  const out = new Int32Array(ends.length);
  let w = 0;
  let k = 0;
  let all = 0;
  for (let a = 0; a < ends.length; a++) {
    const first = w;
    const k0 = k;
    let tests = 0;
    for (; k < ends[a]!; k++) {
      let j0 = red[2 * k]!;
      let j1 = red[2 * k + 1]!;
      // `<=`: a NaN bound (infinite potentials) trims nothing.
      while (j0 < j1 && pb.bound(a, j0) <= limit) j0++;
      while (j1 > j0 && pb.bound(a, j1 - 1) <= limit) j1--;
      tests += red[2 * k + 1]! - red[2 * k]! - (j1 - j0) + 2;
      if (j1 <= j0) continue;
      if (w > first && j0 - red[2 * w - 1]! <= GAP_CELLS) {
        // Within GAP_CELLS of the previous trimmed range: one longer range (the gap is visited).
        red[2 * w - 1] = j1;
      } else {
        red[2 * w] = j0;
        red[2 * w + 1] = j1;
        w++;
      }
    }
    if (w === first && k > k0) {
      // Nothing was written for this cluster: its original ranges are still at [k0, k).
      red.copyWithin(2 * w, 2 * k0, 2 * k);
      w += k - k0;
    }
    out[a] = w;
    all += tests;
    const pending = slicer.tick(1 + (tests >> 4));
    if (pending) await pending;
  }
  return { ends: out, count: w, tests: all };
}

/** What trimAxis needs for both axes of a pattern: f on A's cells and g on B's with their affine
 *  bounds, the cost's p and the limit; `axisJ`: trim axis J too (only the xy patterns' yx
 *  reductions read it). */
interface PatternTrim {
  FA: AffineBounds;
  f: Float64Array;
  GB: AffineBounds;
  g: Float64Array;
  p: number;
  limit: number;
  axisJ: boolean;
}

/** The pairs of one axis: its clusters' rows times their ranges' cells. */
function axisPairs(outer: Int32Array, ends: Int32Array, red: Int32Array): number {
  let pairs = 0;
  for (let a = 0, k = 0; a < ends.length; a++) {
    const rows = outer[2 * a + 1]! - outer[2 * a]!;
    for (; k < ends[a]!; k++) pairs += rows * (red[2 * k + 1]! - red[2 * k]!);
  }
  return pairs;
}

/**
 * Both axes of a BlockRanges from tilePattern's runs: axis I is A's tiles with their runs as ranges
 * of B's cells, trimmed (trimAxis); axis J is its transpose (B's tiles, each with the tiles of A
 * whose ranges reach into it, in increasing order, consecutive ones merged), built by two passes over
 * the kept ranges (a count, then a fill) without a sort, then trimmed likewise when asked. A tile of
 * B that no tile of A keeps keeps every cell of A on axis J (the safety net; axis I is then not
 * exactly its transpose, which no reduction needs). `pairs`: the mean of both axes' pairs of cells
 * (a reduction over each axis visits its own).
 */
async function rangesOf(
  A: Level,
  B: Level,
  tr: TileRuns,
  trim: PatternTrim,
  slicer: Slicer,
): Promise<{ ranges: BlockRanges; pairs: number; trim: { ms: number; tests: number } }> {
  const ri = tr.outer;
  const rj = B.tileRanges;
  const TA = ri.length / 2;
  const TB = rj.length / 2;
  const { runs } = tr;
  const rd = runs.data;
  const redAll = new Int32Array(2 * runs.count);
  for (let k = 0; k < runs.count; k++) {
    redAll[2 * k] = rj[2 * rd[2 * k]!]!;
    redAll[2 * k + 1] = rj[2 * rd[2 * k + 1]! - 1]!;
  }
  const od = Math.max(0, A.tileDepth - OUTER_UP);
  const t0 = performance.now();
  const trimmedI = await trimAxis(
    tr.ends,
    redAll,
    new PointBounds(A, trim.FA, od, B.cloud.data, trim.g, trim.p),
    trim.limit,
    slicer,
  );
  const ends = trimmedI.ends;
  let trimMs = performance.now() - t0;
  let tests = trimmedI.tests;
  const redJ = redAll.slice(0, 2 * trimmedI.count);
  // The tile of B of each cell, for the transpose of the trimmed ranges.
  const tileOf = new Int32Array(B.cloud.N);
  for (let t = 0; t < TB; t++) tileOf.fill(t, rj[2 * t]!, rj[2 * t + 1]!);
  // Axis J, pass 1: the number of ranges per tile of B; pass 2 fills them.
  const last = new Int32Array(TB).fill(-2);
  const count = new Int32Array(TB + 1);
  const walk = async (visit: (a: number, t: number) => void): Promise<void> => {
    for (let a = 0, k = 0; a < TA; a++) {
      for (; k < ends[a]!; k++) {
        const t1 = tileOf[redJ[2 * k + 1]! - 1]!;
        for (let t = tileOf[redJ[2 * k]!]!; t <= t1; t++) visit(a, t);
      }
      const pending = slicer.tick();
      if (pending) await pending;
    }
  };
  // Tiles of A that keep t within GAP_CELLS of each other make one range, as on axis I.
  const joins = (t: number, a: number): boolean => last[t]! >= 0 && ri[2 * a]! - ri[2 * last[t]! + 1]! <= GAP_CELLS;
  await walk((a, t) => {
    if (!joins(t, a)) count[t + 1]!++;
    last[t] = a;
  });
  for (let t = 0; t < TB; t++) if (count[t + 1] === 0) count[t + 1] = 1;
  for (let t = 0; t < TB; t++) count[t + 1] = count[t + 1]! + count[t]!;
  let redI: Int32Array = new Int32Array(2 * count[TB]!);
  const fill = Int32Array.from(count.subarray(0, TB));
  last.fill(-2);
  await walk((a, t) => {
    if (joins(t, a)) redI[2 * fill[t]! - 1] = ri[2 * a + 1]!;
    else {
      redI[2 * fill[t]!] = ri[2 * a]!;
      redI[2 * fill[t]! + 1] = ri[2 * a + 1]!;
      fill[t]!++;
    }
    last[t] = a;
  });
  const N = A.cloud.N;
  for (let t = 0; t < TB; t++) {
    if (fill[t] === count[t]) {
      redI[2 * fill[t]!] = 0;
      redI[2 * fill[t]! + 1] = N;
      fill[t]!++;
    }
  }
  let slicesJ: Int32Array = count.slice(1);
  if (trim.axisJ) {
    const pb = new PointBounds(B, trim.GB, B.tileDepth, A.cloud.data, trim.f, trim.p);
    const t1 = performance.now();
    const trimmedJ = await trimAxis(slicesJ, redI, pb, trim.limit, slicer);
    slicesJ = trimmedJ.ends;
    redI = redI.slice(0, 2 * trimmedJ.count);
    trimMs += performance.now() - t1;
    tests += trimmedJ.tests;
  }
  const pairsI = axisPairs(ri, ends, redJ);
  const pairsJ = axisPairs(rj, slicesJ, redI);
  return {
    ranges: { rangesI: ri, slicesI: ends, redRangesJ: redJ, rangesJ: rj, slicesJ, redRangesI: redI },
    pairs: 0.5 * (pairsI + pairsJ),
    trim: { ms: trimMs, tests },
  };
}

export interface Pattern {
  ranges: BlockRanges;
  /** Pairs of cells in the kept blocks (the mean of the two axes'). */
  pairs: number;
  /** The threshold its blocks were built with: -margin - slack (truncationPattern). */
  limit: number;
}

/**
 * A pattern built earlier on the same two levels, with the potentials it was built from (copies):
 * every pair outside its axis I has f + g - C <= its limit at those potentials. With the current
 * potentials f', g', a pair (i, j) outside it has f' + g' - C <= limit + (f'_i - f_i) + (g'_j - g_j),
 * so on an outer cluster a with limit + max_a (f' - f) + max (g' - g) <= the new limit, the new
 * pattern keeps nothing outside it: only its blocks need testing (priorClusters, tilePattern). That
 * holds from one temperature to the next on one level (the margin halves with eps) while the
 * potentials move by less than the difference.
 */
export interface PriorPattern {
  pattern: Pattern;
  f: Float64Array;
  g: Float64Array;
}

/** The largest increase of v over ref on [lo, hi) (NaN where a value is NaN). */
function rise(v: Float64Array, ref: Float64Array, lo: number, hi: number): number {
  let m = -Infinity;
  for (let i = lo; i < hi; i++) {
    const d = v[i]! - ref[i]!;
    // A NaN difference makes the rise NaN: the cluster does not hold.
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/** Per outer cluster of A (tilePattern's, the prior's axis I), whether the prior pattern still holds
 *  every block that `limit` keeps for the potentials f on A and g on B (see PriorPattern); null when
 *  it was built on other levels. */
function priorClusters(
  A: Level,
  f: Float64Array,
  B: Level,
  g: Float64Array,
  limit: number,
  prior: PriorPattern,
): PriorRuns | null {
  const { ranges } = prior.pattern;
  const so = A.start[Math.max(0, A.tileDepth - OUTER_UP)]!;
  const TA = so.length - 1;
  if (ranges.slicesI.length !== TA || prior.f.length !== f.length || prior.g.length !== g.length) return null;
  const up = rise(g, prior.g, 0, g.length);
  const holds = new Uint8Array(TA);
  for (let a = 0; a < TA; a++) {
    if (ranges.rangesI[2 * a] !== so[a] || ranges.rangesI[2 * a + 1] !== so[a + 1]) return null;
    // `<=`: a NaN rise does not hold (the cluster is walked).
    holds[a] = prior.pattern.limit + rise(f, prior.f, so[a]!, so[a + 1]!) + up <= limit ? 1 : 0;
  }
  return { ends: ranges.slicesI, red: ranges.redRangesJ, holds };
}

/**
 * The kept blocks for a softmin at temperature eps from the current potentials f (on A's cells)
 * and g (on B's): a block (a tile of A against a tile or node of B) is dropped when an upper bound of
 * f_i + g_j - C(p_i, q_j) over its cells is <= -margin (truncationMargin). Near the fixed point the
 * plan's entries, relative to a_i b_j, and the softmin terms relative to their row's total, are then
 * below exp(-margin / eps) on the dropped blocks. `symmetric` (the xx and yy problems: one level,
 * one potential, A = B and f = g): the bounds are computed once. `slack` >= 0 lowers the threshold
 * to -margin - slack: the pattern then holds for any potentials f', g' with
 * max |f' - f| + max |g' - g| <= slack (f' + g' - C <= f + g - C + slack), so that it can serve the
 * updates that follow while the potentials stay that close (multiscale.ts).
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
  slack = 0,
  prior?: PriorPattern,
): Promise<Pattern> {
  const t0 = performance.now();
  const limit = -truncationMargin(truncate, eps, p) - slack;
  const FA = await affineBounds(f, A, slicer);
  const GB = symmetric ? FA : await affineBounds(g, B, slicer);
  const held = prior ? priorClusters(A, f, B, g, limit, prior) : null;
  const t1 = performance.now();
  const tr = await tilePattern(A, FA, B, GB, p, limit, slicer, held ?? undefined);
  const t2 = performance.now();
  const trim = { FA, f, GB, g, p, limit, axisJ: !symmetric };
  const { ranges, pairs, trim: trimmed } = await rangesOf(A, B, tr, trim, slicer);
  const sink = profileSink();
  if (sink) {
    const t3 = performance.now();
    const sample = samplePattern(A, B, ranges, (i, j, d2) => f[i]! + g[j]! - pointCost(d2, p) > limit);
    sink({
      kind: symmetric ? 'sym' : 'xy',
      cells: [A.cloud.N, B.cloud.N],
      ms: t3 - t0,
      eps,
      phases: { bounds: t1 - t0, traverse: t2 - t1, ranges: t3 - t2 - trimmed.ms, trim: trimmed.ms },
      tested: tr.tested,
      pointTests: trimmed.tests,
      incremental: tr.incremental,
      blocks: tr.blocks,
      pairs,
      bytes: bytesOf(ranges),
      sample,
    });
  }
  return { ranges, pairs, limit };
}

/** Candidates per tile of A in the first pass of extrapolationPattern. */
const BEAM = 4;

/** The most cells of one candidate that extrapolationPattern evaluates per point. */
const CANDIDATE_CELLS = 64;

/**
 * The blocks that an extrapolation softmin from level B (logits h) to the cells of level A needs:
 * f(p_i) = -eps log sum_j exp(h_j - C(p_i, q_j) / eps). A row's log-sum is at least its largest
 * term, hence at least any of its terms: with m_i = max over a few candidates j of
 * eps h_j - C(p_i, q_j), a term with eps h_j - C(p_i, q_j) <= m_i - margin holds less than
 * exp(-margin / eps) of the row. That is the truncation test of truncationPattern with f = -m and
 * g = eps h, which drops whole blocks with the same bounds.
 * The candidates: down A's tree, each node tries the children of its parent's BEAM best nodes of B
 * (by the lower bound of the term over the pair), down to A's tiles; each point of a tile then
 * evaluates its term exactly on the cells of its tile's candidates (at most CANDIDATE_CELLS each).
 * The closer m_i is to the row's largest term, the more is dropped; any candidates give a valid m_i.
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
  const limit = -truncationMargin(truncate, eps, p);
  const eh = h.map((v) => eps * v);
  const GB = await affineBounds(eh, B, slicer);
  const pb = new PairBounds(A, zeroBounds(A), B, GB, p);
  const tA = A.tileDepth;
  const tB = B.tileDepth;
  const chA = A.tree.children;
  const chB = B.tree.children;
  let cand = Int32Array.of(0, -1, -1, -1).subarray(0, BEAM);
  let candDepth = 0;
  const lows: number[] = [];
  const ids: number[] = [];
  for (let d = 0; d < tA; d++) {
    const c = chA[d]!;
    const n = c[c.length - 1]!;
    const next = new Int32Array(n * BEAM).fill(-1);
    const down = candDepth < tB;
    const e = down ? candDepth + 1 : candDepth;
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
            pb.bound(d + 1, u, e, v);
            lows.push(pb.lower);
            ids.push(v);
          }
        }
        // The BEAM largest lower bounds (candidates are few: a selection by repeated maxima).
        for (let s = 0; s < BEAM && s < lows.length; s++) {
          let m = 0;
          for (let k = 1; k < lows.length; k++) if (lows[k]! > lows[m]!) m = k;
          next[u * BEAM + s] = ids[m]!;
          lows[m] = -Infinity;
        }
      }
    }
    cand = next;
    candDepth = e;
  }
  // m_i on A's cells, from its tile's candidates.
  const D = A.cloud.D;
  const pa = A.cloud.data;
  const qb = B.cloud.data;
  const st = A.start[tA]!;
  const sb = B.start[candDepth]!;
  const m = new Float64Array(A.cloud.N).fill(-Infinity);
  for (let a = 0; a + 1 < st.length; a++) {
    for (let s = 0; s < BEAM; s++) {
      const q = cand[a * BEAM + s]!;
      if (q < 0) continue;
      const j1 = Math.min(sb[q + 1]!, sb[q]! + CANDIDATE_CELLS);
      for (let i = st[a]!; i < st[a + 1]!; i++) {
        let best = m[i]!;
        for (let j = sb[q]!; j < j1; j++) {
          let d2 = 0;
          for (let k = 0; k < D; k++) d2 += (pa[i * D + k]! - qb[j * D + k]!) ** 2;
          const term = eh[j]! - pointCost(d2, p);
          if (term > best) best = term;
        }
        // No finite term among the candidates (zero weights): a finite stand-in that drops nothing
        // (f = 1e300 on the row), rather than an infinity whose bounds would be NaN.
        m[i] = Math.max(best, -1e300);
      }
    }
    const pending = slicer.tick(1 + ((st[a + 1]! - st[a]!) >> 2));
    if (pending) await pending;
  }
  const f = m.map((v) => -v);
  const FA = await affineBounds(f, A, slicer);
  const t1 = performance.now();
  const tr = await tilePattern(A, FA, B, GB, p, limit, slicer);
  const t2 = performance.now();
  // Axis J is not trimmed: an extrapolation's softmin reduces over axis I only.
  const trim = { FA, f, GB, g: eh, p, limit, axisJ: false };
  const { ranges, pairs, trim: trimmed } = await rangesOf(A, B, tr, trim, slicer);
  const sink = profileSink();
  if (sink) {
    const t3 = performance.now();
    sink({
      kind: 'ext',
      cells: [A.cloud.N, B.cloud.N],
      ms: t3 - t0,
      eps,
      phases: { bounds: t1 - t0, traverse: t2 - t1, ranges: t3 - t2 - trimmed.ms, trim: trimmed.ms },
      tested: tr.tested,
      pointTests: trimmed.tests,
      blocks: tr.blocks,
      pairs,
      bytes: bytesOf(ranges),
      sample: sampleExtrapolation(A, B, ranges, h, eps, p, -limit),
    });
  }
  return { ranges, pairs, limit };
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
