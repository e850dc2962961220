// The 'multiscale' Sinkhorn backend: multilevel epsilon-scaling (Mérigot 2011, Schmitzer 2019), a
// generalised GeomLoss sinkhorn_multiscale, in any dimension, for p = 1 or 2:
//  1. each cloud gets one k-d tree, built once (hierarchy.ts); the depth-d cut of a tree is a level
//     of 2^d cells, each cell's weighted centroid with its summed weight, from the whole cloud down
//     to the points;
//  2. each temperature eps of the schedule runs on the coarsest level that resolves it: the
//     shallowest depth whose cells' spread sigma (the root mean square distance of the points to
//     their cell's mean) has (SPREAD sigma)^p <= eps, for cells of any shape and dimension (for grid
//     cubes of side s in 3-D, 2 sigma = s: SPREAD = 2 is GeomLoss's rule eps >= s^p). The depths
//     of x and y are chosen apart (clouds of very different sizes). The final temperature and the
//     convergence iterations run on the points; a temperature on a small coarse level (at most a
//     quarter of the points' cells, whose update visits at most COARSE_MAX_PAIRS pairs) runs
//     COARSE_ITERATIONS iterations there, not one;
//  3. when the level changes, the potentials are extrapolated to the next one by one softmin from
//     the previous level's measures, as GeomLoss does at its jump;
//  4. at every level every softmin is restricted to the blocks kept by kernel truncation, rebuilt
//     before each update from the current potentials with provable bounds (hierarchy.ts), by a
//     dual-tree traversal whose work grows like the kept blocks (on the levels that iterate at one
//     temperature, built once with a slack and reused while the potentials stay within it; from one
//     temperature to the next on a level, only the previous pattern's blocks are re-tested where the
//     potentials moved less than the margins' difference). At a fixed kernel width per cell
//     (what rule 2 gives), a level's kept pairs grow linearly with its cells, and the schedule visits
//     O(log N) levels: O(N log N) pairs in all, not GeomLoss's O(N^2) fine stage.
// `clusterScale` (GeomLoss's cell size) caps the coarsest level: the loop starts on the first level
// whose cells are at most that size (2 sigma <= clusterScale); null starts from the tree's root.
// xy, xx and yy each get their own pattern, yx is xy swapped. Results are on the tree-ordered
// points; the caller undoes the permutation.
import { swapAxes, type BlockRanges } from '../index.js';
import type { OnlineBackend } from './backend.js';
import {
  buildTree,
  extrapolationPattern,
  levelOf,
  Slicer,
  truncationMargin,
  truncationPattern,
  type Level,
  type PriorPattern,
  type Tree,
} from './hierarchy.js';
import type { Cloud } from './inputs.js';
import { GeomLossError, type ResolvedOptions } from './options.js';
import { boundingDiameter } from './schedule.js';
import {
  annealAndConverge,
  average,
  averageInto,
  damping,
  finish,
  LoopMonitor,
  logits,
  logWeights,
  scaled,
  updates,
  type Patterns,
  type PendingPatterns,
  type Problem,
  type SinkhornPotentials,
  type SinkhornResult,
} from './sinkhorn.js';

/** Errors for clouds that multiscale cannot take (its options are checked with the others). */
export function checkMultiscale(x: Cloud): void {
  if (x.batched)
    throw new GeomLossError(
      "backend 'multiscale' does not take batched clouds; use backend 'online' or one call per batch item",
    );
}

/** The largest dimension for which 'auto' picks multiscale, and the largest final blur there, relative
 *  to the diameter (D > 3; D <= 3 has no blur condition). */
export const AUTO_MULTISCALE_MAX_D = 32;
export const AUTO_MULTISCALE_BLUR = 0.05;

/**
 * Whether backend 'auto' runs multiscale on these (unbatched, Sinkhorn, built-in cost) clouds of at
 * least AUTO_MULTISCALE_PAIRS pairs: always for D <= 3; for 3 < D <= 32 when the final blur is at
 * most 0.05 of the diameter (`diameter` option, or the bounding box's diagonal). Measured
 * 2026-12-02 (2-core Xeon, idle, float32, value and gradient, 10^4 x 10^4 points, blur 0.05 of the
 * diameter, GeomLoss's schedule): on 32 clumps of radius ~0.06 (points near random centres) multiscale
 * is 2.3x (D = 8), 2.1x (D = 32) and 1.7x (D = 64) faster than online, 10.9x at D = 16 and 10^5 points
 * (bench/multilevel.mjs); on uniform clouds it is slower: 0.80x, 0.60x, 0.47x, since nothing is pruned
 * there and the coarse levels add work. (Earlier figures here came from a bench whose "clumps" drew a
 * centre per coordinate, i.e. near-uniform clouds.) Real features are clustered more often than
 * uniform, so the rule stays; a cloud near uniform in D > 3 should ask for 'online'. The gain at D > 3
 * needs a schedule with several temperatures above the final one: a small blur against the diameter.
 */
export function autoPicksMultiscale(x: Cloud, y: Cloud, o: { blur: number; diameter: number | null }): boolean {
  if (x.D <= 3) return true;
  if (x.D > AUTO_MULTISCALE_MAX_D) return false;
  const diameter = o.diameter ?? boundingDiameter(x, y);
  return o.blur <= AUTO_MULTISCALE_BLUR * diameter;
}

/** The most cells of side clusterScale over the bounding box: a smaller clusterScale is a mistake
 *  (GeomLoss's grid would hold more than 2^40 cells), named rather than silently ignored. */
const MAX_GRID_CELLS = 2 ** 40;

function gridCells(c: Cloud, scale: number): number {
  let cells = 1;
  for (let k = 0; k < c.D; k++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < c.N; i++) {
      const v = c.data[i * c.D + k]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    cells *= Math.floor(hi / scale) - Math.floor(lo / scale) + 1;
  }
  return cells;
}

/** A softmin of at most this many pairs runs dense: its pattern would cost more than it saves. */
const DENSE_PAIRS = 1 << 16;

/** What one level (a depth of each tree) did. */
export interface LevelStats {
  cells: { x: number; y: number };
  depth: { x: number; y: number };
  /** The schedule's temperatures run there (the convergence iterations are counted in `iterations`). */
  temperatures: number[];
  /** Sinkhorn iterations run there (schedule and convergence; COARSE_ITERATIONS per temperature on
   *  the small coarse levels). */
  iterations: number;
  /** Pairs visited there: the loop's softmins, the extrapolations into it and, on the points, the
   *  final step and the gradients. */
  pairs: number;
  /** What the same reductions visit without truncation. */
  densePairs: number;
}

export interface MultiscaleResult {
  r: SinkhornResult;
  /** The sorted clouds and weights the result refers to, and their permutations. */
  x: Cloud;
  y: Cloud;
  a: Float64Array;
  b: Float64Array;
  permX: Int32Array;
  permY: Int32Array;
  /** The fraction of the fine pairs that the kept blocks hold (xy, xx, yy) at the final temperature. */
  density: { xy: number; xx: number | null; yy: number | null };
  /** The pairs of points that the loop's updates on the points and the final step visited (the
   *  gradients, when asked for, visit the final step's pairs once more). */
  finePairs: number;
  /** Every pair visited, at every level, gradients included. */
  pairsVisited: number;
  /** The index of the schedule's temperature after which the loop moved to the points (-1: it
   *  started there). */
  jump: number;
  /** The coarsest level's cells. */
  clusters: { x: number; y: number };
  /** Every coarse level, coarsest first, its cells and the temperature index after which it hands over. */
  levels: { clusters: { x: number; y: number }; jump: number }[];
  /** Every level run, coarsest first, the points last. */
  hierarchy: LevelStats[];
}

/**
 * A level resolves eps when (SPREAD sigma)^p <= eps. SPREAD = 2 is GeomLoss's jump rule for grid
 * cubes in 3-D (2 sigma = the side: cells at most as wide as the kernel). Measured on the bench's
 * clouds (blur 0.01, scaling 0.5, debiased, float32; value on GeomLoss's schedule against the
 * converged one, see COARSE_ITERATIONS): 10^4 smooth clouds, SPREAD = 1 -1.64%, SPREAD = 2 -0.18%,
 * SPREAD = 3 -0.12%; 3000 smooth -1.78% / -0.43% / -0.37%; 10^4 concentrated -3.23% / -3.08%. Wider cells (SPREAD = 1, cells twice the kernel's width) bias the warm start by
 * more than the remaining temperatures on the points can correct; narrower ones (SPREAD >= 3, or the
 * spread's 90% quantile or maximum over the cells instead of its root mean square) move temperatures
 * from the cheap coarse levels onto the points without gaining accuracy (each hand-over's
 * extrapolation is a full, non-averaged softmin step, which the points' averaged steps are not).
 * SPREAD = 2 costs fine pairs: 10^4 smooth clouds 2.06e8 -> 2.88e8 pairs on the points, concentrated
 * 2.50e8 -> 2.69e8. Each level's truncation is exact, so the rule trades speed against the quality
 * of the warm start, never correctness.
 */
const SPREAD = 2;

/**
 * Sinkhorn iterations per temperature on the small coarse levels (COARSE_SHARE): GeomLoss runs one
 * per temperature, which leaves the large-scale part of the potentials lagging behind the
 * temperature; these levels are so cheap that iterating there removes most of that lag for few
 * pairs. Measured on the bench's 10^4-point clouds (blur 0.01, scaling 0.5, debiased, float32),
 * against a reference that anneals slowly (scaling 0.95) then iterates 300 times at the final blur
 * (0.0468069 concentrated; a fixed schedule plus 300 iterations is not a reference there, it is
 * still 6% low): concentrated clouds 11 / 31 / 61 / 101 iterations: -1.11% / -0.45% / -0.32% /
 * -0.31%, 4.89e8 / 5.18e8 / 5.58e8 / 6.11e8 pairs visited; smooth clouds 11 / 31 / 61: -0.105% /
 * -0.097% / -0.095% of their converged 0.0239032, 4.81e8 / 5.14e8 / 5.63e8 pairs. 61 is where the
 * gain stops. At 3000 concentrated points (float64) 11 -> 61: -0.96% -> -0.29%, 1.12e8 -> 1.79e8
 * pairs (the coarse level is a larger share of the work there). More iterations on the larger levels
 * (up to half the points' cells: -0.80%, 8.83e8 pairs) or on every level, the points included (3
 * each: -2.19%, 5 each: -1.55%), do worse for more pairs. Plain online on the same schedule is about
 * -10.2% (concentrated) and -0.38% (smooth).
 */
const COARSE_ITERATIONS = 61;
/** The levels that get COARSE_ITERATIONS: at most this share of the points' cells (x and y together). */
const COARSE_SHARE = 0.25;
/**
 * ... and whose first update at the temperature visited at most this many pairs (its four softmins):
 * the share alone let the iterating levels grow with N, and their pairs with them (kernels as wide as
 * the cells' spread keep 40-100% of a level's pairs). At 10^5 points the 8192 x 2048 cell level's 61
 * iterations (4.0e7 pairs each) were 2.45e9 of the 7.86e9 pairs visited (smooth clouds); at 3 10^5
 * points the 65536 x 16384 level would have iterated, ~5e8 pairs each. A bound on the work rather
 * than on the cells keeps the iterations where they are cheap in absolute terms and where a small
 * cloud meets a large one (1000 points against 4 10^4: its 1000 x 8192 level, 1.1e7 pairs per
 * iteration, is what brings the gradient within 1e-3 of the closed form,
 * tests/geomloss/multiscale-degenerate.test.ts); the 10^4-point calibration of COARSE_ITERATIONS
 * (1024 x 128 cells, 1.3e6 pairs per iteration) is unchanged. Measured at 10^5 points (bench clouds,
 * float32, value and gradient, 2 workers, AMD EPYC 2 cores): smooth 19.3 -> 14.0 s, 7.86e9 -> 5.48e9
 * pairs, value 0.0239275 -> 0.0239247 (-0.012%); concentrated 19.9 -> 17.8 s, 1.028e10 -> 8.28e9
 * pairs, value 0.0466288 -> 0.0465155 (-0.24%; 11 iterations on the 8192-cell level: -0.14% for
 * +0.33e9 pairs); at 3 10^4 points smooth 6.3 -> 3.7 s, concentrated 5.8 -> 3.9 s.
 */
const COARSE_MAX_PAIRS = 2 ** 24;

/**
 * The slack, as a share of the truncation margin, with which the patterns of a rung that iterates
 * at one temperature (COARSE_ITERATIONS, the convergence iterations) are built: they serve every
 * following update whose potentials stay within it (rebuilt otherwise), for slightly larger
 * patterns. Measured at 3 10^4 points (bench/multilevel.mjs, float32): the 8192-cell level's 61
 * iterations rebuild their xx pattern 2 times (smooth clouds) and 5 times (concentrated) instead
 * of 61, for 3.5% / 2.6% more pairs in all (4.964e9 -> 5.138e9, 4.663e9 -> 4.784e9), the value
 * unchanged to 7 digits.
 */
const REUSE_SLACK = 0.2;

/** The shallowest depth (from `coarsest` on) whose cells resolve eps. */
function depthFor(tree: Tree, eps: number, p: number, coarsest: number): number {
  for (let d = coarsest; d < tree.finest; d++) if (Math.pow(SPREAD * tree.sigma[d]!, p) <= eps) return d;
  return tree.finest;
}

/** The coarsest depth allowed by clusterScale: the first whose cells are at most that size. */
function coarsestDepth(tree: Tree, clusterScale: number | null): number {
  if (clusterScale === null) return 0;
  for (let d = 0; d < tree.finest; d++) if (2 * tree.sigma[d]! <= clusterScale) return d;
  return tree.finest;
}

/** A level of both clouds, as a Sinkhorn problem, with its statistics. */
interface Rung {
  LX: Level;
  LY: Level;
  pr: Problem;
  stats: LevelStats;
  /** The last schedule index run there. */
  last: number;
  /** The patterns kept for reuse at one temperature, with the potentials they were built from. */
  kept: KeptPatterns | null;
  /** The last xy pattern built on this rung, for the next build (truncationPattern's `prior`: only
   *  its blocks are re-tested where the potentials moved little enough). */
  prior: PriorPattern | undefined;
}

/** Patterns built with a slack at eps from the potentials `at` (see `patterns` in
 *  sinkhornMultiscale), the pairs they hold and what the same updates visit dense. */
interface KeptPatterns {
  eps: number;
  slack: number;
  at: SinkhornPotentials;
  pat: Patterns;
  pairs: number;
  all: number;
  density: MultiscaleResult['density'];
}

/** The largest change of a potential since `ref`. */
function drift(v: Float64Array, ref: Float64Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) {
    const d = Math.abs(v[i]! - ref[i]!);
    if (d > m) m = d;
  }
  return m;
}

/** Whether the kept patterns still hold for the potentials `pot`: xy's f + g and each self
 *  problem's f + f moved by at most the slack (a NaN drift fails the test: rebuilt). */
function withinSlack(kept: KeptPatterns, pot: SinkhornPotentials): boolean {
  const { at, slack } = kept;
  if (!(drift(pot.fBA, at.fBA) + drift(pot.gAB, at.gAB) <= slack)) return false;
  if (pot.fAA && at.fAA && !(2 * drift(pot.fAA, at.fAA) <= slack)) return false;
  if (pot.gBB && at.gBB && !(2 * drift(pot.gBB, at.gBB) <= slack)) return false;
  return (pot.fAA === null) === (at.fAA === null) && (pot.gBB === null) === (at.gBB === null);
}

/**
 * pot <- (pot + next) / 2 as averageInto, returning the largest change up to the free constant of a
 * balanced x-y problem: (f_ba + c, g_ab - c) has the same plan, value and gradients. The truncated
 * softmins of f_ba (axis I of the xy pattern) and of g_ab (axis J, trimmed on its own) keep slightly
 * different pairs, all below the margin, so no (f_ba, g_ab) solves both: the iterates converge up to
 * a shift that grows by the same c every iteration (measured: 2.6e-11 eps per iteration, 500 x 400
 * points, blur 0.1), a floor of the plain max change. The shift-free change is half the spread of the
 * changes of f_ba and of -g_ab; the self problems have no free constant.
 */
function averageUpToShift(pot: SinkhornPotentials, next: SinkhornPotentials): number {
  let lo = Infinity;
  let hi = -Infinity;
  const spread = (u: Float64Array, v: Float64Array, sign: number): void => {
    for (let k = 0; k < u.length; k++) {
      const d = sign * (v[k]! - u[k]!);
      // A NaN change makes the spread NaN (not converged), as averageInto's max does.
      lo = Math.min(lo, d);
      hi = Math.max(hi, d);
    }
  };
  spread(pot.fBA, next.fBA, 1);
  spread(pot.gAB, next.gAB, -1);
  average(pot.fBA, next.fBA);
  average(pot.gAB, next.gAB);
  let change = 0.25 * (hi - lo);
  if (pot.fAA && next.fAA) change = Math.max(change, average(pot.fAA, next.fAA));
  if (pot.gBB && next.gBB) change = Math.max(change, average(pot.gBB, next.gBB));
  return change;
}

export async function sinkhornMultiscale(
  backend: OnlineBackend,
  xIn: Cloud,
  yIn: Cloud,
  aIn: Float64Array,
  bIn: Float64Array,
  schedule: readonly number[],
  _diameter: number,
  o: ResolvedOptions,
  wantGrads: boolean,
): Promise<MultiscaleResult> {
  checkMultiscale(xIn);
  const p = o.p;
  if (o.clusterScale !== null) {
    const cells = Math.max(gridCells(xIn, o.clusterScale), gridCells(yIn, o.clusterScale));
    if (!(cells <= MAX_GRID_CELLS)) {
      throw new GeomLossError(
        `clusterScale makes a grid of ${cells.toExponential(2)} cells over the points' bounding box (at most 2^40); use a larger clusterScale, or null (the whole hierarchy)`,
      );
    }
  }
  // The hierarchy's work (trees, levels, patterns) yields to the event loop and sees an abort.
  const slicer = new Slicer(o.signal ?? undefined);
  const tx = await buildTree(xIn, aIn, slicer);
  const ty = await buildTree(yIn, bIn, slicer);
  const rho = o.reach === null ? null : Math.pow(o.reach, p);
  const monitor = new LoopMonitor(o, 'sinkhorn, multiscale', schedule.length);
  const dtype = backend.dtype;

  // The level of every temperature; the last one on the points.
  const cx = coarsestDepth(tx, o.clusterScale);
  const cy = coarsestDepth(ty, o.clusterScale);
  const K = schedule.length;
  const plan = schedule.map((eps, k) =>
    k === K - 1 ? [tx.finest, ty.finest] : [depthFor(tx, eps, p, cx), depthFor(ty, eps, p, cy)],
  );
  const levelCache = [new Map<number, Level>(), new Map<number, Level>()];
  const levelAt = async (side: 0 | 1, depth: number): Promise<Level> => {
    const cache = levelCache[side]!;
    let l = cache.get(depth);
    if (l === undefined) {
      l = await levelOf(side === 0 ? tx : ty, depth, dtype, slicer);
      cache.set(depth, l);
    }
    return l;
  };
  const rungs: Rung[] = [];
  const rungOf = async (k: number): Promise<Rung> => {
    const [dx, dy] = plan[Math.min(k, K - 1)]!;
    const top = rungs[rungs.length - 1];
    if (top && top.LX.depth === dx && top.LY.depth === dy) return top;
    const LX = await levelAt(0, dx!);
    const LY = await levelAt(1, dy!);
    const rung: Rung = {
      LX,
      LY,
      pr: { backend, X: backend.vars(LX.cloud), Y: backend.vars(LY.cloud), la: logWeights(LX.w), lb: logWeights(LY.w) },
      stats: {
        cells: { x: LX.cloud.N, y: LY.cloud.N },
        depth: { x: dx!, y: dy! },
        temperatures: [],
        iterations: 0,
        pairs: 0,
        densePairs: 0,
      },
      last: k,
      kept: null,
      prior: undefined,
    };
    rungs.push(rung);
    return rung;
  };

  const density: MultiscaleResult['density'] = { xy: 1, xx: null, yy: null };
  let finePairs = 0;
  const count = (rung: Rung, kept: number, dense: number): void => {
    rung.stats.pairs += kept;
    rung.stats.densePairs += dense;
  };
  const dense = (A: Level, B: Level) => o.truncate === null || A.cloud.N * B.cloud.N <= DENSE_PAIRS;
  // The last self pattern built on each level (xx on x's, yy on y's), for its next build on any rung
  // (as Rung.prior for xy: a level's self problem does not depend on the other cloud's level).
  const selfPriors = new Map<Level, PriorPattern>();

  /** The patterns for an update at eps from the current potentials on the rung's levels, and the
   *  pairs they hold (per update: xy and yx visit the same blocks). On a rung that iterates at one
   *  temperature (`reuse`), the patterns are built with a slack (REUSE_SLACK of the margin) and
   *  serve the following updates at the same eps while the potentials stay within it of the ones
   *  they were built from (a proven bound, see truncationPattern); otherwise rebuilt. `pending`
   *  holds each pattern as soon as it is built (xx, then yy, then xy, one after another: concurrent
   *  traversals would each take their slice in the same turn of the event loop), for `updates` to
   *  start its softmins while the next ones are built; `done` is all of them with their pairs. */
  const patterns = (
    rung: Rung,
    pot: SinkhornPotentials,
    eps: number,
    reuse = false,
  ): { pending: PendingPatterns; done: Promise<{ pat: Patterns; pairs: number }> } => {
    const kept = rung.kept;
    if (reuse && kept !== null && kept.eps === eps && withinSlack(kept, pot)) {
      density.xy = kept.density.xy;
      density.xx = kept.density.xx;
      density.yy = kept.density.yy;
      count(rung, kept.pairs, kept.all);
      return { pending: kept.pat, done: Promise.resolve({ pat: kept.pat, pairs: kept.pairs }) };
    }
    rung.kept = null;
    const slack = reuse && o.truncate !== null ? REUSE_SLACK * truncationMargin(o.truncate, eps, p) : 0;
    const { LX, LY } = rung;
    const Nx = LX.cloud.N;
    const Ny = LY.cloud.N;
    const pat: Patterns = {};
    let pairs = 0;
    let all = 2 * Nx * Ny;
    const buildXY = async (): Promise<BlockRanges | undefined> => {
      if (dense(LX, LY)) {
        pairs += 2 * Nx * Ny;
        density.xy = 1;
        return undefined;
      }
      // Copies: the prior of the next build holds the potentials this one was built from.
      const f = Float64Array.from(pot.fBA);
      const g = Float64Array.from(pot.gAB);
      const xy = await truncationPattern(LX, f, LY, g, eps, p, o.truncate, false, slicer, slack, rung.prior);
      rung.prior = { pattern: xy, f, g };
      pat.xy = xy.ranges;
      pat.yx = swapAxes(xy.ranges);
      pairs += 2 * xy.pairs;
      density.xy = xy.pairs / (Nx * Ny);
      return xy.ranges;
    };
    const buildSym = async (L: Level, v: Float64Array, key: 'xx' | 'yy'): Promise<BlockRanges | undefined> => {
      const n = L.cloud.N;
      all += n * n;
      if (dense(L, L)) {
        pairs += n * n;
        density[key] = 1;
        return undefined;
      }
      const f = Float64Array.from(v);
      const t = await truncationPattern(L, f, L, f, eps, p, o.truncate, true, slicer, slack, selfPriors.get(L));
      selfPriors.set(L, { pattern: t, f, g: f });
      pat[key] = t.ranges;
      pairs += t.pairs;
      density[key] = t.pairs / (n * n);
      return t.ranges;
    };
    // The workers wait for the first pattern only: the self patterns go first, as they are the
    // cheaper traversals (on the points at 3 10^4 concentrated points, ~0.18 s each against ~0.39 s
    // for xy), and xy's two softmins, queued last, keep the workers busy to the end.
    const pending: PendingPatterns = {};
    let before: Promise<unknown> = Promise.resolve();
    if (pot.fAA && pot.gBB) {
      const [fAA, gBB] = [pot.fAA, pot.gBB];
      const xx = buildSym(LX, fAA, 'xx');
      const yy = xx.then(() => buildSym(LY, gBB, 'yy'));
      pending.xx = xx;
      pending.yy = yy;
      before = yy;
    }
    const xy = before.then(buildXY);
    pending.xy = xy;
    pending.yx = xy.then(() => pat.yx);
    const done = xy.then(() => {
      count(rung, pairs, all);
      if (slack > 0) {
        const copy = (v: Float64Array | null) => v && Float64Array.from(v);
        rung.kept = {
          eps,
          slack,
          at: {
            fBA: Float64Array.from(pot.fBA),
            gAB: Float64Array.from(pot.gAB),
            fAA: copy(pot.fAA),
            gBB: copy(pot.gBB),
          },
          pat,
          pairs,
          all,
          density: { ...density },
        };
      }
      return { pat, pairs };
    });
    return { pending, done };
  };

  /** One update at eps on the rung, its softmins started as their patterns are built; the new
   *  potentials, the pairs of the patterns and when they were all built. */
  const update = async (rung: Rung, eps: number, reuse: boolean) => {
    const { pending, done } = patterns(rung, pot, eps, reuse);
    const [{ pairs, builtAt }, next] = await Promise.all([
      done.then(({ pairs }) => ({ pairs, builtAt: performance.now() })),
      updates(rung.pr, pot, o.debias, eps, damping(eps, rho), pending),
    ]);
    return { pairs, next, builtAt };
  };

  let rung = await rungOf(0);
  const finest = (r: Rung) => r.LX.depth === tx.finest && r.LY.depth === ty.finest;
  const pot = await updates(rung.pr, null, o.debias, schedule[0]!, damping(schedule[0]!, rho));
  {
    const { X, Y } = rung.pr;
    const n = 2 * X.cloud.N * Y.cloud.N + (o.debias ? X.cloud.N ** 2 + Y.cloud.N ** 2 : 0);
    count(rung, n, n);
    if (finest(rung)) finePairs += n;
  }

  /** The potentials of one rung extrapolated to the next one's cells: one softmin from each measure
   *  of `from` to the cells of `to` (as GeomLoss does at its jump), truncated. */
  const extrapolate = async (from: Rung, to: Rung, e: number): Promise<void> => {
    const k = damping(e, rho);
    const F = from.pr;
    const T = to.pr;
    let kept = 0;
    let all = 0;
    // The patterns one after another (concurrent traversals would each take their 20 ms slice in
    // the same turn of the event loop), each softmin started as soon as its pattern is ready: the
    // workers reduce while the next pattern is traversed.
    const softmin = async (target: Level, source: Level, h: Float64Array): Promise<{ job: Promise<Float64Array> }> => {
      const n = target.cloud.N * source.cloud.N;
      all += n;
      let ranges: BlockRanges | undefined;
      if (dense(target, source)) kept += n;
      else {
        const pat = await extrapolationPattern(target, source, h, e, p, o.truncate, slicer);
        ranges = pat.ranges;
        kept += pat.pairs;
      }
      const tv = target === to.LX ? T.X : T.Y;
      const sv = source === from.LX ? F.X : F.Y;
      const job = backend.softmin(tv, sv, h, e, ranges);
      // Awaited below by Promise.all; marked handled now, so that a rejection (an abort) while the
      // next pattern is traversed is not reported as unhandled.
      job.catch(() => {});
      return { job };
    };
    const hB = logits(F.lb, pot.gAB, e);
    const hA = logits(F.la, pot.fBA, e);
    const hAA = pot.fAA && logits(F.la, pot.fAA, e);
    const hBB = pot.gBB && logits(F.lb, pot.gBB, e);
    const jf = (await softmin(to.LX, from.LY, hB)).job;
    const jg = (await softmin(to.LY, from.LX, hA)).job;
    const jfa = hAA ? (await softmin(to.LX, from.LX, hAA)).job : null;
    const jgb = hBB ? (await softmin(to.LY, from.LY, hBB)).job : null;
    const [nf, ng, nfa, ngb] = await Promise.all([jf, jg, jfa, jgb]);
    count(to, kept, all);
    if (finest(to)) finePairs += kept;
    pot.fBA = scaled(nf, k);
    pot.gAB = scaled(ng, k);
    pot.fAA = nfa && scaled(nfa, k);
    pot.gBB = ngb && scaled(ngb, k);
    if (o.verbose) {
      console.log(
        `SamplesLoss(sinkhorn, multiscale): from ${F.X.cloud.N} x ${F.Y.cloud.N} cells to ${T.X.cloud.N} x ${T.Y.cloud.N} at eps = ${e.toExponential(3)}`,
      );
    }
  };

  let index = 0;
  const step = async (eps: number): Promise<number> => {
    const t0 = performance.now();
    const iterates = index < K && rung.LX.cloud.N + rung.LY.cloud.N <= COARSE_SHARE * (tx.cloud.N + ty.cloud.N);
    // The convergence iterations (index >= K) reuse their patterns too, so that they iterate one
    // truncation rather than one rebuilt from each iterate, and skip the traversals. Its pairs below
    // the margin that the xy pattern's axes keep apart then lie below margin + slack, which slows the
    // shift of averageUpToShift (measured 3.3e-10 -> 2.6e-11 eps per iteration, ~exp(-slack / eps)).
    const { pairs, next, builtAt } = await update(rung, eps, iterates || index >= K);
    const tPattern = builtAt - t0;
    if (finest(rung)) finePairs += pairs;
    let change = index >= K && rho === null ? averageUpToShift(pot, next) : averageInto(pot, next);
    rung.stats.iterations++;
    if (iterates && pairs <= COARSE_MAX_PAIRS) {
      // More iterations at this temperature on a small coarse level, each with its own patterns (the
      // truncation bounds follow the potentials).
      for (let q = 1; q < COARSE_ITERATIONS; q++) {
        change = averageInto(pot, (await update(rung, eps, true)).next);
        rung.stats.iterations++;
      }
    }
    if (index < K) {
      rung.stats.temperatures.push(eps);
      rung.last = index;
    }
    if (o.verbose) {
      const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
      console.log(
        `SamplesLoss(sinkhorn, multiscale): eps = ${eps.toExponential(3)} on ${rung.LX.cloud.N} x ${rung.LY.cloud.N} cells, kept pairs xy ${pct(density.xy)}, xx ${pct(density.xx)}, yy ${pct(density.yy)} (pattern: ${tPattern.toFixed(0)} ms)`,
      );
    }
    if (index + 1 < K) {
      const next = await rungOf(index + 1);
      if (next !== rung) {
        await extrapolate(rung, next, eps);
        rung = next;
      }
    }
    index++;
    return change;
  };

  const eps = await annealAndConverge(schedule, step, monitor, o, dtype);
  const kappa = damping(eps, rho);
  // Without convergence iterations rebuilt, not reused with REUSE_SLACK from the last update's: that
  // update moves the potentials by far more than the slack (measured at 10^4 points, bench clouds,
  // blur 0.01: f + g drift 7.7 eps smooth, 11.5 eps concentrated, against a slack of 2.5 eps), so the
  // reuse never held at 10^5 and the slack only added pairs (1.112e10 -> 1.132e10 smooth, 1.403e10 ->
  // 1.436e10 concentrated). After them, the patterns the loop converged with still hold: the final
  // step and the gradients use that same truncation.
  const last = patterns(rung, pot, eps, o.convergence !== null);
  const [{ pairs: lastPairs }, { final, grads }] = await Promise.all([
    last.done,
    finish(rung.pr, pot, eps, kappa, wantGrads, last.pending),
  ]);
  finePairs += lastPairs;
  if (wantGrads) {
    // The gradients' reductions visit the final step's blocks once more.
    rung.stats.pairs += lastPairs;
    rung.stats.densePairs +=
      2 * rung.LX.cloud.N * rung.LY.cloud.N + (o.debias ? rung.LX.cloud.N ** 2 + rung.LY.cloud.N ** 2 : 0);
  }
  const coarse = rungs.filter((r) => !finest(r));
  const top = rungs[0]!;
  return {
    r: { final, pre: pot, grads, eps, kappa, iterations: monitor.iteration, converged: monitor.converged },
    x: rung.LX.cloud,
    y: rung.LY.cloud,
    a: tx.w,
    b: ty.w,
    permX: tx.perm,
    permY: ty.perm,
    density,
    finePairs,
    pairsVisited: rungs.reduce((s, r) => s + r.stats.pairs, 0),
    jump: coarse.length > 0 ? coarse[coarse.length - 1]!.last : -1,
    clusters: { x: top.LX.cloud.N, y: top.LY.cloud.N },
    levels: coarse.map((r) => ({ clusters: { x: r.LX.cloud.N, y: r.LY.cloud.N }, jump: r.last })),
    hierarchy: rungs.map((r) => r.stats),
  };
}
