// GeomLoss's 'multiscale' Sinkhorn (sinkhorn_samples.py, sinkhorn_multiscale), for D <= 3, p = 1 or 2:
//  1. each cloud is clustered on a grid of cell size clusterScale (default: diameter / (sqrt(D) 2000^(1/D)),
//     ~2000 cells); the coarse measures are the cells' weighted centroids with the summed weights;
//  2. the epsilon-scaling loop (the same symmetric averaged updates as sinkhorn.ts) runs on the coarse
//     measures while eps >= clusterScale^p;
//  3. at the "jump" (after the last such temperature) the coarse potentials are extrapolated to the
//     fine points (one softmin from the coarse measure to the fine points, dense: N x #cells);
//  4. the loop goes on over the fine points with every reduction restricted to block-sparse patterns,
//     the final extrapolation and the gradients too.
// Where a level of cells half as wide pays for itself (coarseLevels()), it runs between 2 and 3:
// GeomLoss's level hands over to it, and it to the fine points, by the same extrapolation.
// Where we differ from GeomLoss, and why:
//  - GeomLoss truncates once, at the jump, from the coarse potentials and the centroids' cost, with
//    `f + g > C - truncate * eps`. The potentials then move far from the coarse ones: near convergence
//    its pattern misses blocks (9% error on gradients in tests/geomloss/multiscale.test.ts), and a
//    pattern wide enough to be safe for every later temperature keeps 50-100% of the pairs (measured:
//    slower than online). We rebuild the pattern before every fine update from the current fine
//    potentials, at that update's temperature, with a provable upper bound of f_i + g_j - C_ij over
//    each pair of tiles (truncation()), and a margin of truncate standard deviations of the kernel
//    (truncationMargin()). The result equals the untruncated one to ~1e-11 in the tests.
//  - The pattern's blocks are not GeomLoss's grid cells (1 to 50 points each, too small for a CPU
//    kernel whose cost per range dominates below ~64 points) but k-d tree leaves of TILE points in
//    tree order, so that kept neighbours are consecutive and merge into long ranges.
// xy, xx and yy each get their own pattern, yx is xy swapped.
// Results are on the k-d-ordered points; the caller undoes the permutation.
import { clusterRangesCentroids, gridCluster, sortClusters, swapAxes, type BlockRanges } from '../index.js';
import type { OnlineBackend } from './backend.js';
import { spatialSort } from './spatial.js';
import type { Cloud } from './inputs.js';
import { GeomLossError, type ResolvedOptions } from './options.js';
import {
  annealAndConverge,
  averageInto,
  damping,
  finish,
  LoopMonitor,
  logits,
  logWeights,
  scaled,
  updates,
  type Patterns,
  type Problem,
  type SinkhornPotentials,
  type SinkhornResult,
} from './sinkhorn.js';

/** Errors for clouds that multiscale cannot take (its options are checked with the others). */
export function checkMultiscale(x: Cloud): void {
  if (x.D > 3)
    throw new GeomLossError(
      `backend 'multiscale' needs points of dimension D <= 3 (grid clustering), got D = ${x.D}; use backend 'online'`,
    );
  if (x.batched)
    throw new GeomLossError(
      "backend 'multiscale' does not take batched clouds; use backend 'online' or one call per batch item",
    );
}

interface Clustered {
  /** The fine cloud in k-d tree order (kdOrder): consecutive points are close in space. */
  fine: Cloud;
  /** Row r of `fine` is input row perm[r]. */
  perm: Int32Array;
  w: Float64Array;
  /** GeomLoss's coarse measure: the grid cells' weighted centroids and summed weights. */
  coarse: Cloud;
  wc: Float64Array;
  /** The truncation's tiles (k-d tree leaves of at most TILE points) and groups of GROUP
   *  consecutive tiles, tested first. */
  tiles: Tiles;
  groups: Tiles;
}

/** Runs of consecutive fine points: [start, end) ranges, centres (float64) and the largest distance
 *  of their points (as the reductions see them, rounded to the computation's precision) from it. */
interface Tiles {
  ranges: Int32Array;
  center: Float64Array;
  radius: Float64Array;
}

function tilesOf(ranges: Int32Array, pts: ArrayLike<number>, D: number): Tiles {
  const T = ranges.length / 2;
  const center = new Float64Array(T * D);
  const radius = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const lo = ranges[2 * t]!;
    const hi = ranges[2 * t + 1]!;
    for (let i = lo; i < hi; i++)
      for (let k = 0; k < D; k++) center[t * D + k] = center[t * D + k]! + pts[i * D + k]! / (hi - lo);
    let r2 = 0;
    for (let i = lo; i < hi; i++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (pts[i * D + k]! - center[t * D + k]!) ** 2;
      r2 = Math.max(r2, d2);
    }
    radius[t] = Math.sqrt(r2);
  }
  return { ranges, center, radius };
}

/**
 * Points per truncation tile. The block-sparse reductions run at ~60% of the dense speed on ranges of
 * 64 points and ~90% on ranges of 256 (the interpreter's cost per segment; measured on this kernel):
 * so the pattern is built on compact tiles of k-d-ordered points, whose kept neighbours are mostly
 * consecutive and merge into long ranges, rather than on GeomLoss's grid cells (1 to 50 points each).
 */
const TILE = 32;
/** Tiles per group: the pattern is decided on groups first and refined to tiles where kept. */
const GROUP = 4;

/** GeomLoss's coarse measure: the points binned in grid cells of side `scale`, each cell's weighted
 *  centroid (its plain mean for a cell of zero weight) with the cell's summed weight. */
function coarseMeasure(
  c: Cloud,
  w: Float64Array,
  scale: number,
  dtype: 'float32' | 'float64',
): { cloud: Cloud; w: Float64Array } {
  const D = c.D;
  const sorted = sortClusters(c.data, gridCluster(c.data, scale, D), D);
  const ws = Float64Array.from(sorted.permutation, (src) => w[src]!);
  const weighted = clusterRangesCentroids(sorted.points, sorted.labels, ws, D);
  const C = weighted.ranges.length / 2;
  const centroids = weighted.centroids;
  let plain: Float64Array | null = null;
  for (let q = 0; q < C; q++) {
    if (!(weighted.weights[q]! > 0)) {
      plain ??= clusterRangesCentroids(sorted.points, sorted.labels, undefined, D).centroids;
      for (let k = 0; k < D; k++) centroids[q * D + k] = plain[q * D + k]!;
    }
  }
  const data = dtype === 'float32' ? Float32Array.from(centroids) : centroids;
  return { cloud: { ...c, name: `${c.name} (clusters)`, data, N: C }, w: weighted.weights };
}

function clusterize(c: Cloud, w: Float64Array, scale: number, dtype: 'float32' | 'float64'): Clustered {
  const D = c.D;
  const { cloud: coarse, w: wc } = coarseMeasure(c, w, scale, dtype);

  // The fine points in k-d tree order; the leaves are the tiles.
  const { cloud: fine, w: ws, perm, leaves } = spatialSort(c, w, dtype, TILE);
  const T = leaves.length / 2;
  const G = Math.ceil(T / GROUP);
  const groups = new Int32Array(2 * G);
  for (let q = 0; q < G; q++) {
    groups[2 * q] = leaves[2 * q * GROUP]!;
    groups[2 * q + 1] = leaves[2 * Math.min(T, (q + 1) * GROUP) - 1]!;
  }
  return {
    fine,
    perm,
    w: ws,
    coarse,
    wc,
    tiles: tilesOf(leaves, fine.data, D),
    groups: tilesOf(groups, fine.data, D),
  };
}

/** The most cells a clustering grid may span (gridCluster's keys must stay exact integers). */
const MAX_GRID_CELLS = 2 ** 40;

/** The cells of a grid of side `scale` over the cloud's bounding box. */
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

export function defaultClusterScale(diameter: number, D: number): number {
  return diameter / (Math.sqrt(D) * Math.pow(2000, 1 / D));
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
  /** The fine pairs that the truncated updates of the loop and the final step visited, in all (the
   *  gradients, when asked for, visit the final step's pairs once more). */
  finePairs: number;
  /** The index of the schedule's temperature after which the loop jumped to the fine points. */
  jump: number;
  /** GeomLoss's coarse level's cells. */
  clusters: { x: number; y: number };
  /** Every coarse level (GeomLoss's first), its cells and the temperature index after which it hands over. */
  levels: { clusters: { x: number; y: number }; jump: number }[];
}

/** GeomLoss's jump rule for cells of side s: after the last temperature (from the third on) that
 *  is still >= s^p. GeomLoss jumps at the very last temperature when none is below; we jump one
 *  earlier so that at least the final temperature runs on the fine points. */
function jumpAfter(schedule: readonly number[], sp: number): number {
  let jump = schedule.length - 1;
  for (let k = 2; k < schedule.length; k++) {
    if (sp > schedule[k]!) {
      jump = k - 1;
      break;
    }
  }
  return Math.max(0, Math.min(jump, schedule.length - 2));
}

interface Level {
  /** The level's measures, in k-d tree order. */
  problem: Problem;
  jump: number;
  /** Their tiles, for the truncated extrapolation to the fine points. */
  tilesX: Tiles;
  tilesY: Tiles;
}

/**
 * GeomLoss's coarse level (cells of side clusterScale), then finer ones (cells halved) where they pay
 * for themselves. Right after GeomLoss's jump the first fine temperature is still wide (its
 * truncation keeps a third to two thirds of the pairs in 3-D) and costs about half of a 10^5-point
 * run; a level of cells half as wide runs that temperature on far fewer points (dense), and hands
 * over to the fine points with one more extrapolation. A level is added when it runs at least one
 * temperature of its own and its dense cost (its steps, and the extrapolation to the fine points,
 * N x cells) stays below an eighth of one dense fine step: at 10^5 points it is, at 10^4 it is not.
 */
function coarseLevels(
  backend: OnlineBackend,
  x: Cloud,
  a: Float64Array,
  y: Cloud,
  b: Float64Array,
  cx: Clustered,
  cy: Clustered,
  scale: number,
  schedule: readonly number[],
  p: number,
): Level[] {
  const level = (X: Cloud, wx: Float64Array, Y: Cloud, wy: Float64Array, jump: number): Level => {
    const sx = spatialSort(X, wx, backend.dtype, TILE);
    const sy = spatialSort(Y, wy, backend.dtype, TILE);
    return {
      problem: {
        backend,
        X: backend.vars(sx.cloud),
        Y: backend.vars(sy.cloud),
        la: logWeights(sx.w),
        lb: logWeights(sy.w),
      },
      jump,
      tilesX: tilesOf(sx.leaves, sx.cloud.data, X.D),
      tilesY: tilesOf(sy.leaves, sy.cloud.data, Y.D),
    };
  };
  const levels: Level[] = [level(cx.coarse, cx.wc, cy.coarse, cy.wc, jumpAfter(schedule, Math.pow(scale, p)))];
  const finePairs = (x.N + y.N) ** 2;
  for (let s = scale / 2; ; s /= 2) {
    const jump = jumpAfter(schedule, Math.pow(s, p));
    const previous = levels[levels.length - 1]!.jump;
    if (jump <= previous) break;
    if (!(Math.max(gridCells(x, s), gridCells(y, s)) <= MAX_GRID_CELLS)) break;
    const mx = coarseMeasure(x, a, s, backend.dtype);
    const my = coarseMeasure(y, b, s, backend.dtype);
    const cells = mx.cloud.N + my.cloud.N;
    if ((jump - previous) * cells * cells + (x.N + y.N) * cells > finePairs / 8) break;
    levels.push(level(mx.cloud, mx.w, my.cloud, my.w, jump));
  }
  return levels;
}

/**
 * A potential over each cluster as an affine function of the offset from the centroid plus a bounded
 * residual: v_i = alpha + beta . (p_i - c) + e_i with |e_i| <= r. beta is a least-squares slope (any
 * slope gives a valid bound; a good one a tight bound), alpha and r the midpoint and half-width of
 * v_i - beta . (p_i - c) over the cluster.
 */
interface AffineBounds {
  alpha: Float64Array;
  beta: Float64Array;
  r: Float64Array;
  /** The largest and smallest values over each run. */
  max: Float64Array;
  min: Float64Array;
}

function affineBounds(v: Float64Array, P: Tiles, pts: ArrayLike<number>, D: number): AffineBounds {
  const C = P.ranges.length / 2;
  const alpha = new Float64Array(C);
  const beta = new Float64Array(C * D);
  const r = new Float64Array(C);
  const S = new Float64Array(D * D);
  const t = new Float64Array(D);
  const dx = new Float64Array(D);
  for (let q = 0; q < C; q++) {
    const lo = P.ranges[2 * q]!;
    const hi = P.ranges[2 * q + 1]!;
    let mean = 0;
    for (let i = lo; i < hi; i++) mean += v[i]!;
    mean /= Math.max(1, hi - lo);
    S.fill(0);
    t.fill(0);
    for (let i = lo; i < hi; i++) {
      for (let k = 0; k < D; k++) dx[k] = pts[i * D + k]! - P.center[q * D + k]!;
      for (let k = 0; k < D; k++) {
        t[k] = t[k]! + dx[k]! * (v[i]! - mean);
        for (let l = 0; l < D; l++) S[k * D + l] = S[k * D + l]! + dx[k]! * dx[l]!;
      }
    }
    const b = solveSmall(S, t, D);
    for (let k = 0; k < D; k++) beta[q * D + k] = b[k]!;
    let min = Infinity;
    let max = -Infinity;
    for (let i = lo; i < hi; i++) {
      let e = v[i]!;
      for (let k = 0; k < D; k++) e -= b[k]! * (pts[i * D + k]! - P.center[q * D + k]!);
      if (e < min) min = e;
      if (e > max) max = e;
    }
    alpha[q] = 0.5 * (max + min);
    r[q] = 0.5 * (max - min);
  }
  const negated = clusterMax(
    v.map((u) => -u),
    P.ranges,
  );
  return { alpha, beta, r, max: clusterMax(v, P.ranges), min: negated.map((u) => -u) };
}

/** S b = t for a small symmetric positive semi-definite S (D <= 3), ridge-regularised; directions
 *  with no spread (a cluster of one point, or of collinear points) get a zero slope. */
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

/**
 * How far below 0 f_i + g_j - C_ij may go before the pair is dropped. GeomLoss documents `truncate`
 * as the kernel's effective support in standard deviations: for p = 2 the softmin kernel
 * exp(-|x - y|^2 / (2 eps)) is a Gaussian of standard deviation sqrt(eps), so truncate sigmas is a margin
 * of truncate^2 / 2 eps (a dropped term weighs less than exp(-12.5) of the plan's peak; in 3-D a
 * Gaussian keeps all but ~2e-5 of its mass within 5 sigmas). For p = 1 the kernel exp(-|x - y| / eps)
 * has heavier tails, and the same reading would drop ~12% of a 3-D row's mass at truncate = 5: the
 * margin is truncate^2 eps there (< 1e-8 of the mass). GeomLoss itself uses truncate * eps for both.
 */
function truncationMargin(truncate: number | null, eps: number, p: number): number {
  if (truncate === null) return Infinity;
  return (p === 2 ? 0.5 : 1) * truncate * truncate * eps;
}

/** The largest value of v over each cluster's points. */
function clusterMax(v: Float64Array, ranges: Int32Array): Float64Array {
  const out = new Float64Array(ranges.length / 2).fill(-Infinity);
  for (let q = 0; q < out.length; q++)
    for (let i = ranges[2 * q]!; i < ranges[2 * q + 1]!; i++) out[q] = Math.max(out[q]!, v[i]!);
  return out;
}

/** |Delta|^2, |beta_a - Delta|^2 and |beta_b + Delta|^2 for runs a of A and b of B (see truncation). */
function offsets(
  A: Tiles,
  FA: AffineBounds,
  a: number,
  B: Tiles,
  GB: AffineBounds,
  b: number,
  D: number,
): [number, number, number] {
  let d2 = 0;
  let ba2 = 0;
  let bb2 = 0;
  for (let k = 0; k < D; k++) {
    const delta = A.center[a * D + k]! - B.center[b * D + k]!;
    d2 += delta * delta;
    ba2 += (FA.beta[a * D + k]! - delta) ** 2;
    bb2 += (GB.beta[b * D + k]! + delta) ** 2;
  }
  return [d2, ba2, bb2];
}

const costOf = (distance: number, p: number): number =>
  p === 2 ? 0.5 * distance * distance : Math.max(distance, 1e-4);

/** An upper bound of f_i + g_j - C(p_i, q_j) over the points of run a of A and run b of B (see
 *  truncation): the smaller of the maxima bound and, for p = 2, the affine one. */
function upperBound(
  A: Tiles,
  FA: AffineBounds,
  a: number,
  B: Tiles,
  GB: AffineBounds,
  b: number,
  D: number,
  p: number,
): number {
  const [d2, ba2, bb2] = offsets(A, FA, a, B, GB, b, D);
  const Ra = A.radius[a]!;
  const Rb = B.radius[b]!;
  // The affine bound is tight along the transport, the maxima one between nearby runs whose
  // potentials do not tilt (the xx and yy problems).
  const byMax = FA.max[a]! + GB.max[b]! - costOf(Math.max(0, Math.sqrt(d2) - Ra - Rb), p);
  if (p !== 2) return byMax;
  return Math.min(
    byMax,
    FA.alpha[a]! + GB.alpha[b]! + FA.r[a]! + GB.r[b]! - 0.5 * d2 + Math.sqrt(ba2) * Ra + Math.sqrt(bb2) * Rb,
  );
}

/** A lower bound of the same: minima and C <= C(|Delta| + R_a + R_b), or, for p = 2, the affine
 *  expansion with -|u - w|^2 / 2 >= -(R_a + R_b)^2 / 2, whichever is larger. */
function lowerBound(
  A: Tiles,
  FA: AffineBounds,
  a: number,
  B: Tiles,
  GB: AffineBounds,
  b: number,
  D: number,
  p: number,
): number {
  const [d2, ba2, bb2] = offsets(A, FA, a, B, GB, b, D);
  const Ra = A.radius[a]!;
  const Rb = B.radius[b]!;
  const byMin = FA.min[a]! + GB.min[b]! - costOf(Math.sqrt(d2) + Ra + Rb, p);
  if (p !== 2) return byMin;
  const tilt = Math.sqrt(ba2) * Ra + Math.sqrt(bb2) * Rb;
  return Math.max(byMin, FA.alpha[a]! + GB.alpha[b]! - FA.r[a]! - GB.r[b]! - 0.5 * d2 - tilt - 0.5 * (Ra + Rb) ** 2);
}

/**
 * The kept tile pairs for a softmin at temperature eps from the current fine potentials f (of P's
 * points) and g (of Q's): (ci, cj) is dropped when an upper bound U(ci, cj) of f_i + g_j - C(p_i, q_j)
 * over every pair of points of the two tiles is <= -margin (truncationMargin). Near the fixed point the
 * plan's entries, relative to a_i b_j, and the softmin terms relative to their row's total, are then
 * below exp(-margin / eps) on the dropped blocks. Groups of tiles are tested first (a dropped group
 * pair drops its tiles; a group pair whose lower bound clears the margin keeps them all).
 * With f and g affine plus residual over each tile (affineBounds), offsets u = p_i - c_i,
 * w = q_j - c_j of norms <= R_i, R_j, and Delta = c_i - c_j:
 *  - p = 2: f_i + g_j - |Delta + u - w|^2 / 2 = alpha_i + alpha_j + e_i + e_j - |Delta|^2 / 2
 *      + (beta_i - Delta) . u + (beta_j + Delta) . w - |u - w|^2 / 2, so
 *    U = alpha_i + alpha_j + r_i + r_j - |Delta|^2 / 2 + |beta_i - Delta| R_i + |beta_j + Delta| R_j.
 *    Where the transport goes from cell i to cell j the potentials' slopes cancel the cost's
 *    (beta_i ~ Delta): the bound is tight there, whatever the cells' size.
 *  - any p: C >= C(|Delta| - R_i - R_j), so U = max f + max g - that (the cells' maxima).
 * The smaller of the two is used.
 */
function truncation(
  P: Clustered,
  Q: Clustered,
  f: Float64Array,
  g: Float64Array,
  eps: number,
  p: number,
  truncate: number | null,
): { ranges: BlockRanges; density: number } {
  const D = P.fine.D;
  const limit = truncationMargin(truncate, eps, p);
  const Pt = P.tiles;
  const Qt = Q.tiles;
  const Ti = Pt.ranges.length / 2;
  const Tj = Qt.ranges.length / 2;
  // The xx and yy problems (one cloud, one potential): the bounds are symmetric in the two tiles, so
  // only pairs (i, j >= i) are tested and each kept one is mirrored.
  const symmetric = P === Q && f === g;
  const kept = new KeptTiles(Pt.ranges, Qt.ranges, symmetric);
  const boundsOf = (X: Clustered, v: Float64Array, level: Tiles) => affineBounds(v, level, X.fine.data, D);
  const [Fg, Gg, Ft, Gt] = [boundsOf(P, f, P.groups), boundsOf(Q, g, Q.groups), boundsOf(P, f, Pt), boundsOf(Q, g, Qt)];
  const Gi = P.groups.ranges.length / 2;
  const Gj = Q.groups.ranges.length / 2;
  for (let gi = 0; gi < Gi; gi++) {
    for (let gj = symmetric ? gi : 0; gj < Gj; gj++) {
      if (!(upperBound(P.groups, Fg, gi, Q.groups, Gg, gj, D, p) > -limit)) continue;
      // Every tile pair of the two groups is kept when even the smallest f_i + g_j - C_ij is above
      // the margin: no need to test them one by one.
      const all = lowerBound(P.groups, Fg, gi, Q.groups, Gg, gj, D, p) > -limit;
      for (let i = gi * GROUP; i < Math.min(Ti, (gi + 1) * GROUP); i++) {
        for (let j = symmetric && gi === gj ? i : gj * GROUP; j < Math.min(Tj, (gj + 1) * GROUP); j++) {
          if (all || upperBound(Pt, Ft, i, Qt, Gt, j, D, p) > -limit) {
            kept.keep(i, j);
            if (symmetric && i !== j) kept.keep(j, i);
          }
        }
      }
    }
  }
  return { ranges: kept.ranges(), density: kept.pairs / (P.fine.N * Q.fine.N) };
}

/**
 * The blocks that an extrapolation softmin from a coarse measure to the fine points of P needs:
 * f(p_i) = -eps log sum_j exp(h_j - C(p_i, q_j) / eps) over the coarse points q (in tiles Qt, with
 * logits h). A row's log-sum is at least its largest term, so a tile pair whose terms are all below
 * the largest one of the row's tile by the truncation margin holds less than exp(-margin / eps) of
 * the row, term by term: it is dropped (bounds as in truncation(), with f = 0 and g = eps h).
 */
function extrapolationPattern(
  P: Clustered,
  Qt: Tiles,
  qPoints: ArrayLike<number>,
  h: Float64Array,
  eps: number,
  p: number,
  truncate: number | null,
): BlockRanges | undefined {
  if (truncate === null) return undefined;
  const D = P.fine.D;
  const limit = truncationMargin(truncate, eps, p);
  const Pt = P.tiles;
  const Ti = Pt.ranges.length / 2;
  const Tj = Qt.ranges.length / 2;
  const F = affineBounds(new Float64Array(P.fine.N), Pt, P.fine.data, D);
  const G = affineBounds(
    h.map((v) => eps * v),
    Qt,
    qPoints,
    D,
  );
  const kept = new KeptTiles(Pt.ranges, Qt.ranges, false);
  for (let i = 0; i < Ti; i++) {
    let best = -Infinity;
    for (let j = 0; j < Tj; j++) best = Math.max(best, lowerBound(Pt, F, i, Qt, G, j, D, p));
    for (let j = 0; j < Tj; j++) if (upperBound(Pt, F, i, Qt, G, j, D, p) > best - limit) kept.keep(i, j);
  }
  return kept.ranges();
}

/**
 * Kept pairs of tiles as two bitsets, by i-tile rows and by j-tile rows, so that both axes of the
 * pattern are read off sequentially and sparse rows are skipped a word at a time (a dense Ti x Tj
 * byte matrix costs more to scan than the reductions of a sparse step at 10^5 points). `symmetric`:
 * the pattern is its own transpose (its keeper mirrors every pair), one bitset serves both axes.
 */
class KeptTiles {
  /** Points pairs held by the kept blocks. */
  pairs = 0;
  private readonly wordsI: number;
  private readonly wordsJ: number;
  private readonly byI: Uint32Array;
  private readonly byJ: Uint32Array;

  constructor(
    private readonly rangesI: Int32Array,
    private readonly rangesJ: Int32Array,
    private readonly symmetric: boolean,
  ) {
    this.wordsI = (rangesI.length / 2 + 31) >>> 5;
    this.wordsJ = (rangesJ.length / 2 + 31) >>> 5;
    this.byI = new Uint32Array((rangesI.length / 2) * this.wordsJ);
    this.byJ = symmetric ? this.byI : new Uint32Array((rangesJ.length / 2) * this.wordsI);
  }

  keep(i: number, j: number): void {
    this.byI[i * this.wordsJ + (j >>> 5)]! |= 1 << (j & 31);
    if (!this.symmetric) this.byJ[j * this.wordsI + (i >>> 5)]! |= 1 << (i & 31);
    this.pairs += (this.rangesI[2 * i + 1]! - this.rangesI[2 * i]!) * (this.rangesJ[2 * j + 1]! - this.rangesJ[2 * j]!);
  }

  ranges(): BlockRanges {
    const I = rangesFromBits(this.byI, this.rangesI.length / 2, this.wordsJ, this.rangesJ);
    const J = this.symmetric ? I : rangesFromBits(this.byJ, this.rangesJ.length / 2, this.wordsI, this.rangesI);
    return {
      rangesI: this.rangesI,
      slicesI: I.slices,
      redRangesJ: I.red,
      rangesJ: this.rangesJ,
      slicesJ: J.slices,
      redRangesI: J.red,
    };
  }
}

/** One axis of a block-sparsity pattern from bitset rows (bit q of row o: outer tile o meets inner
 *  tile q); inner tiles that follow each other in memory are merged into one range, as fromMatrix does. */
function rangesFromBits(
  bits: Uint32Array,
  outer: number,
  words: number,
  inner: Int32Array,
): { slices: Int32Array; red: Int32Array } {
  const slices = new Int32Array(outer);
  const red: number[] = [];
  for (let o = 0; o < outer; o++) {
    const first = red.length;
    for (let w = 0; w < words; w++) {
      let word = bits[o * words + w]!;
      while (word !== 0) {
        const low = word & -word;
        const q = (w << 5) + 31 - Math.clz32(low);
        word ^= low;
        if (red.length > first && red[red.length - 1] === inner[2 * q]) red[red.length - 1] = inner[2 * q + 1]!;
        else red.push(inner[2 * q]!, inner[2 * q + 1]!);
      }
    }
    slices[o] = red.length / 2;
  }
  return { slices, red: Int32Array.from(red) };
}

/** GeomLoss's default cluster scale: ~2000 cells over the bounding box. */
export async function sinkhornMultiscale(
  backend: OnlineBackend,
  xIn: Cloud,
  yIn: Cloud,
  aIn: Float64Array,
  bIn: Float64Array,
  schedule: readonly number[],
  diameter: number,
  o: ResolvedOptions,
  wantGrads: boolean,
): Promise<MultiscaleResult> {
  checkMultiscale(xIn);
  const D = xIn.D;
  const p = o.p;
  const scale = o.clusterScale ?? defaultClusterScale(diameter, D);
  const cells = Math.max(gridCells(xIn, scale), gridCells(yIn, scale));
  if (!(cells <= MAX_GRID_CELLS)) {
    throw new GeomLossError(
      `clusterScale makes a grid of ${cells.toExponential(2)} cells over the points' bounding box (at most 2^40); use a larger clusterScale, or null (about 2000 cells)`,
    );
  }
  const cx = clusterize(xIn, aIn, scale, backend.dtype);
  const cy = clusterize(yIn, bIn, scale, backend.dtype);
  const rho = o.reach === null ? null : Math.pow(o.reach, p);
  const monitor = new LoopMonitor(o, 'sinkhorn, multiscale', schedule.length);
  const fine: Problem = {
    backend,
    X: backend.vars(cx.fine),
    Y: backend.vars(cy.fine),
    la: logWeights(cx.w),
    lb: logWeights(cy.w),
  };
  const levels = coarseLevels(backend, xIn, aIn, yIn, bIn, cx, cy, scale, schedule, p);
  let level = 0;
  let pr = levels[0]!.problem;
  const density: MultiscaleResult['density'] = { xy: 1, xx: null, yy: null };
  let finePairs = 0;

  /** The patterns for a fine update at eps from the current potentials (GeomLoss truncates once, at
   *  the jump, from the coarse potentials: the potentials move a lot after it, so its pattern must be
   *  wide; ours follows them and stays as narrow as each temperature allows). */
  const patterns = (pot: SinkhornPotentials, eps: number): Patterns => {
    const xy = truncation(cx, cy, pot.fBA, pot.gAB, eps, p, o.truncate);
    density.xy = xy.density;
    const pat: Patterns = { xy: xy.ranges, yx: swapAxes(xy.ranges) };
    finePairs += 2 * xy.density * cx.fine.N * cy.fine.N;
    if (pot.fAA && pot.gBB) {
      const xx = truncation(cx, cx, pot.fAA, pot.fAA, eps, p, o.truncate);
      const yy = truncation(cy, cy, pot.gBB, pot.gBB, eps, p, o.truncate);
      pat.xx = xx.ranges;
      pat.yy = yy.ranges;
      density.xx = xx.density;
      density.yy = yy.density;
      finePairs += xx.density * cx.fine.N ** 2 + yy.density * cy.fine.N ** 2;
    }
    return pat;
  };

  const pot = await updates(pr, null, o.debias, schedule[0]!, damping(schedule[0]!, rho));

  /** The potentials of one level extrapolated to the next level's points: one dense softmin from
   *  each measure of `from` to the points of `to` (as GeomLoss does at its jump). */
  const extrapolate = async (level: Level, to: Problem, e: number): Promise<void> => {
    const k = damping(e, rho);
    const from = level.problem;
    // Into the fine points the softmins are truncated (the last level can hold 10^4 cells).
    const pattern = (P: Clustered, tiles: Tiles, Q: Problem['X'], h: Float64Array) =>
      to === fine ? extrapolationPattern(P, tiles, Q.cloud.data, h, e, p, o.truncate) : undefined;
    const hB = logits(from.lb, pot.gAB, e);
    const hA = logits(from.la, pot.fBA, e);
    const hAA = pot.fAA && logits(from.la, pot.fAA, e);
    const hBB = pot.gBB && logits(from.lb, pot.gBB, e);
    const [nf, ng, nfa, ngb] = await Promise.all([
      backend.softmin(to.X, from.Y, hB, e, pattern(cx, level.tilesY, from.Y, hB)),
      backend.softmin(to.Y, from.X, hA, e, pattern(cy, level.tilesX, from.X, hA)),
      hAA ? backend.softmin(to.X, from.X, hAA, e, pattern(cx, level.tilesX, from.X, hAA)) : null,
      hBB ? backend.softmin(to.Y, from.Y, hBB, e, pattern(cy, level.tilesY, from.Y, hBB)) : null,
    ]);
    pot.fBA = scaled(nf, k);
    pot.gAB = scaled(ng, k);
    pot.fAA = nfa && scaled(nfa, k);
    pot.gBB = ngb && scaled(ngb, k);
    if (o.verbose) {
      const what = to === fine ? 'the fine points' : `${to.X.cloud.N} x ${to.Y.cloud.N} clusters`;
      console.log(
        `SamplesLoss(sinkhorn, multiscale): from ${from.X.cloud.N} x ${from.Y.cloud.N} clusters to ${what} at eps = ${e.toExponential(3)}`,
      );
    }
  };

  let index = 0;
  const step = async (eps: number): Promise<number> => {
    const t0 = performance.now();
    const pat = pr === fine ? patterns(pot, eps) : {};
    const tPattern = performance.now() - t0;
    const change = averageInto(pot, await updates(pr, pot, o.debias, eps, damping(eps, rho), pat));
    if (o.verbose && pr === fine) {
      const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
      console.log(
        `SamplesLoss(sinkhorn, multiscale): eps = ${eps.toExponential(3)}, kept pairs xy ${pct(density.xy)}, xx ${pct(density.xx)}, yy ${pct(density.yy)} (pattern: ${tPattern.toFixed(0)} ms)`,
      );
    }
    if (level < levels.length && index === levels[level]!.jump) {
      const next = level + 1 < levels.length ? levels[level + 1]!.problem : fine;
      await extrapolate(levels[level]!, next, eps);
      pr = next;
      level++;
    }
    index++;
    return change;
  };

  const eps = await annealAndConverge(schedule, step, monitor, o, backend.dtype);
  const kappa = damping(eps, rho);
  const { final, grads } = await finish(fine, pot, eps, kappa, wantGrads, patterns(pot, eps));
  return {
    r: { final, pre: pot, grads, eps, kappa, iterations: monitor.iteration, converged: monitor.converged },
    x: cx.fine,
    y: cy.fine,
    a: cx.w,
    b: cy.w,
    permX: cx.perm,
    permY: cy.perm,
    density,
    finePairs,
    jump: levels[levels.length - 1]!.jump,
    clusters: { x: cx.coarse.N, y: cy.coarse.N },
    levels: levels.map((l) => ({ clusters: { x: l.problem.X.cloud.N, y: l.problem.Y.cloud.N }, jump: l.jump })),
  };
}
