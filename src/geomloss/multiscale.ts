// GeomLoss's 'multiscale' Sinkhorn (sinkhorn_samples.py, sinkhorn_multiscale), for D <= 3, p = 1 or 2:
//  1. each cloud is clustered on a grid of cell size clusterScale (default: diameter / (sqrt(D) 2000^(1/D)),
//     ~2000 cells), its points sorted by cell; the coarse measures are the cells' centroids with the
//     summed weights;
//  2. the epsilon-scaling loop (the same symmetric averaged updates as sinkhorn.ts) runs on the coarse
//     measures while eps >= clusterScale^p;
//  3. at the "jump" (after the last such temperature) the coarse potentials give the block-sparsity
//     pattern by kernel truncation, and are extrapolated to the fine points (one softmin from the
//     coarse measure to the fine points, dense: N x #clusters);
//  4. the loop goes on over the fine points with every reduction restricted to the kept blocks, the
//     final extrapolation and the gradients too.
// Kernel truncation keeps the cluster pair (ci, cj) when f_ci + g_cj - C_low(ci, cj) > -truncate^2 * eps
// (eps of the jump). GeomLoss's test is `f + g > C - truncate * eps` on the centroids' cost; ours is
// safer on two counts: C_low is the cost of the smallest distance the two cells' points can have
// (centroid distance minus both cluster radii), and the margin is truncate^2 eps. With GeomLoss's
// margin, near convergence (potentials far from the coarse ones of the jump) the pattern misses blocks:
// 9% error on gradients in tests/geomloss/multiscale.test.ts; with truncate^2 the result equals the
// untruncated one. The price: many blocks are kept (30-70% of the pairs on the bench's clouds).
// xy, xx and yy each get their own pattern, yx is xy swapped.
// Results are on the sorted points; the caller undoes the permutation.
import { clusterRangesCentroids, fromMatrix, gridCluster, sortClusters, swapAxes, type BlockRanges } from '../index.js';
import type { CloudVars, OnlineBackend } from './backend.js';
import type { Cloud } from './inputs.js';
import { GeomLossError, type ResolvedOptions } from './options.js';
import { annealAndConverge, LoopMonitor, logits, logWeights, type SinkhornPotentials, type SinkhornResult } from './sinkhorn.js';

/** Errors for a problem that multiscale cannot run. */
export function checkMultiscale(o: ResolvedOptions, x: Cloud): void {
  if (x.D > 3) throw new GeomLossError(`backend 'multiscale' needs points of dimension D <= 3 (grid clustering), got D = ${x.D}; use backend 'online'`);
  if (x.batched) throw new GeomLossError("backend 'multiscale' does not take batched clouds; use backend 'online' or one call per item");
}

interface Clustered {
  /** The fine cloud, sorted by cluster. */
  fine: Cloud;
  /** Sorted row r is input row perm[r]. */
  perm: Int32Array;
  w: Float64Array;
  coarse: Cloud;
  wc: Float64Array;
  ranges: Int32Array;
  radius: Float64Array;
}

function clusterize(c: Cloud, w: Float64Array, scale: number, dtype: 'float32' | 'float64'): Clustered {
  const { N, D } = c;
  const labels = gridCluster(c.data, scale, D);
  const s = sortClusters(c.data, labels, D);
  const ws = Float64Array.from(s.permutation, (src) => w[src]!);
  const weighted = clusterRangesCentroids(s.points, s.labels, ws, D);
  const C = weighted.ranges.length / 2;
  const centroids = weighted.centroids;
  // A cluster of zero total weight has no weighted centroid: use its plain mean.
  let plain: Float64Array | null = null;
  for (let q = 0; q < C; q++) {
    if (!(weighted.weights[q]! > 0)) {
      plain ??= clusterRangesCentroids(s.points, s.labels, undefined, D).centroids;
      for (let k = 0; k < D; k++) centroids[q * D + k] = plain[q * D + k]!;
    }
  }
  const radius = new Float64Array(C);
  for (let q = 0; q < C; q++) {
    let r2 = 0;
    for (let i = weighted.ranges[2 * q]!; i < weighted.ranges[2 * q + 1]!; i++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (s.points[i * D + k]! - centroids[q * D + k]!) ** 2;
      r2 = Math.max(r2, d2);
    }
    radius[q] = Math.sqrt(r2);
  }
  const typed = (v: Float64Array) => (dtype === 'float32' ? Float32Array.from(v) : v);
  const fine: Cloud = { ...c, data: typed(s.points), natural: c.natural };
  const coarse: Cloud = { ...c, name: `${c.name} (clusters)`, data: typed(centroids), N: C };
  void N;
  return { fine, perm: s.permutation, w: ws, coarse, wc: weighted.weights, ranges: weighted.ranges, radius };
}

/** GeomLoss's default cluster scale: ~2000 cells over the bounding box. */
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
  /** The fraction of the fine pairs that the kept blocks hold (xy, xx, yy). */
  density: { xy: number; xx: number | null; yy: number | null };
  /** The index of the schedule's temperature after which the loop jumped to the fine points. */
  jump: number;
  clusters: { x: number; y: number };
}

const damping = (eps: number, rho: number | null): number => (rho === null ? 1 : 1 / (1 + eps / rho));

function scaled(v: Float64Array, s: number): Float64Array {
  if (s !== 1) for (let k = 0; k < v.length; k++) v[k] = s * v[k]!;
  return v;
}

function average(u: Float64Array, v: Float64Array): number {
  let change = 0;
  for (let k = 0; k < u.length; k++) {
    const next = 0.5 * (u[k]! + v[k]!);
    change = Math.max(change, Math.abs(next - u[k]!));
    u[k] = next;
  }
  return change;
}

/** The kept cluster pairs: f_i + g_j - C_low(i, j) > -truncate^2 * eps. */
function truncation(
  P: Clustered,
  Q: Clustered,
  f: Float64Array,
  g: Float64Array,
  eps: number,
  p: number,
  truncate: number | null,
): { ranges: BlockRanges; density: number } {
  const Ci = P.coarse.N;
  const Cj = Q.coarse.N;
  const D = P.coarse.D;
  const keep = new Uint8Array(Ci * Cj);
  const pc = P.coarse.data;
  const qc = Q.coarse.data;
  const limit = truncate === null ? Infinity : truncate * truncate * eps;
  let pairs = 0;
  for (let i = 0; i < Ci; i++) {
    const ni = P.ranges[2 * i + 1]! - P.ranges[2 * i]!;
    for (let j = 0; j < Cj; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (pc[i * D + k]! - qc[j * D + k]!) ** 2;
      const low = Math.max(0, Math.sqrt(d2) - P.radius[i]! - Q.radius[j]!);
      const cost = p === 1 ? Math.max(low, 1e-4) : 0.5 * low * low;
      if (f[i]! + g[j]! - cost > -limit) {
        keep[i * Cj + j] = 1;
        pairs += ni * (Q.ranges[2 * j + 1]! - Q.ranges[2 * j]!);
      }
    }
  }
  return { ranges: fromMatrix(P.ranges, Q.ranges, keep), density: pairs / (P.fine.N * Q.fine.N) };
}

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
  checkMultiscale(o, xIn);
  const D = xIn.D;
  const p = o.p;
  const scale = o.clusterScale ?? defaultClusterScale(diameter, D);
  const cx = clusterize(xIn, aIn, scale, backend.dtype);
  const cy = clusterize(yIn, bIn, scale, backend.dtype);
  const rho = o.reach === null ? null : Math.pow(o.reach, p);
  const debias = o.debias;
  const monitor = new LoopMonitor(o, 'sinkhorn, multiscale', schedule.length);

  // GeomLoss's jump: after the last temperature (from the third on) that is still >= clusterScale^p.
  // GeomLoss jumps at the very last temperature when none is below; we jump one earlier so that at
  // least the final temperature runs on the fine points.
  const sp = Math.pow(scale, p);
  let jump = schedule.length - 1;
  for (let k = 2; k < schedule.length; k++) {
    if (sp > schedule[k]!) {
      jump = k - 1;
      break;
    }
  }
  jump = Math.max(0, Math.min(jump, schedule.length - 2));

  const Xc = backend.vars(cx.coarse);
  const Yc = backend.vars(cy.coarse);
  const Xf = backend.vars(cx.fine);
  const Yf = backend.vars(cy.fine);
  let X: CloudVars = Xc;
  let Y: CloudVars = Yc;
  let la = logWeights(cx.wc);
  let lb = logWeights(cy.wc);
  let rXY: BlockRanges | undefined;
  let rYX: BlockRanges | undefined;
  let rXX: BlockRanges | undefined;
  let rYY: BlockRanges | undefined;
  const density: MultiscaleResult['density'] = { xy: 1, xx: null, yy: null };

  let eps = schedule[0]!;
  let kappa = damping(eps, rho);
  const [gAB, fBA, fAA, gBB] = await Promise.all([
    backend.softmin(Y, X, la, eps),
    backend.softmin(X, Y, lb, eps),
    debias ? backend.softmin(X, X, la, eps) : null,
    debias ? backend.softmin(Y, Y, lb, eps) : null,
  ]);
  const pot: SinkhornPotentials = {
    fBA: scaled(fBA, kappa),
    gAB: scaled(gAB, kappa),
    fAA: fAA && scaled(fAA, kappa),
    gBB: gBB && scaled(gBB, kappa),
  };

  /** Truncation from the coarse potentials, then extrapolation of every potential to the fine points. */
  const jumpToFine = async (e: number): Promise<void> => {
    const k = damping(e, rho);
    const txy = truncation(cx, cy, pot.fBA, pot.gAB, e, p, o.truncate);
    rXY = txy.ranges;
    rYX = swapAxes(txy.ranges);
    density.xy = txy.density;
    if (pot.fAA && pot.gBB) {
      const txx = truncation(cx, cx, pot.fAA, pot.fAA, e, p, o.truncate);
      const tyy = truncation(cy, cy, pot.gBB, pot.gBB, e, p, o.truncate);
      rXX = txx.ranges;
      rYY = tyy.ranges;
      density.xx = txx.density;
      density.yy = tyy.density;
    }
    const [nf, ng, nfa, ngb] = await Promise.all([
      backend.softmin(Xf, Yc, logits(lb, pot.gAB, e), e),
      backend.softmin(Yf, Xc, logits(la, pot.fBA, e), e),
      pot.fAA ? backend.softmin(Xf, Xc, logits(la, pot.fAA, e), e) : null,
      pot.gBB ? backend.softmin(Yf, Yc, logits(lb, pot.gBB, e), e) : null,
    ]);
    pot.fBA = scaled(nf, k);
    pot.gAB = scaled(ng, k);
    pot.fAA = nfa && scaled(nfa, k);
    pot.gBB = ngb && scaled(ngb, k);
    X = Xf;
    Y = Yf;
    la = logWeights(cx.w);
    lb = logWeights(cy.w);
    if (o.verbose) {
      const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
      console.log(
        `SamplesLoss(sinkhorn, multiscale): jump to the fine points at eps = ${e.toExponential(3)}: ${cx.coarse.N} x ${cy.coarse.N} clusters, ` +
          `keeping ${pct(density.xy)} of the xy pairs (xx ${pct(density.xx)}, yy ${pct(density.yy)})`,
      );
    }
  };

  let index = 0;
  const step = async (e: number): Promise<number> => {
    eps = e;
    kappa = damping(eps, rho);
    const [ftBA, gtAB, ftAA, gtBB] = await Promise.all([
      backend.softmin(X, Y, logits(lb, pot.gAB, eps), eps, rXY),
      backend.softmin(Y, X, logits(la, pot.fBA, eps), eps, rYX),
      pot.fAA ? backend.softmin(X, X, logits(la, pot.fAA, eps), eps, rXX) : null,
      pot.gBB ? backend.softmin(Y, Y, logits(lb, pot.gBB, eps), eps, rYY) : null,
    ]);
    let change = average(pot.fBA, scaled(ftBA, kappa));
    change = Math.max(change, average(pot.gAB, scaled(gtAB, kappa)));
    if (pot.fAA && ftAA) change = Math.max(change, average(pot.fAA, scaled(ftAA, kappa)));
    if (pot.gBB && gtBB) change = Math.max(change, average(pot.gBB, scaled(gtBB, kappa)));
    if (index === jump) await jumpToFine(eps);
    index++;
    return change;
  };

  eps = await annealAndConverge(schedule, step, monitor, o, backend.dtype);
  kappa = damping(eps, rho);

  const hB = logits(lb, pot.gAB, eps);
  const hA = logits(la, pot.fBA, eps);
  const hAA = pot.fAA ? logits(la, pot.fAA, eps) : null;
  const hBB = pot.gBB ? logits(lb, pot.gBB, eps) : null;
  const [nfBA, ngAB, nfAA, ngBB] = await Promise.all([
    backend.softmin(X, Y, hB, eps, rXY),
    backend.softmin(Y, X, hA, eps, rYX),
    hAA ? backend.softmin(X, X, hAA, eps, rXX) : null,
    hBB ? backend.softmin(Y, Y, hBB, eps, rYY) : null,
  ]);
  const final: SinkhornPotentials = {
    fBA: scaled(nfBA, kappa),
    gAB: scaled(ngAB, kappa),
    fAA: nfAA && scaled(nfAA, kappa),
    gBB: ngBB && scaled(ngBB, kappa),
  };
  let grads: SinkhornResult['grads'] = null;
  if (wantGrads) {
    const [dFBA, dGAB, dFAA, dGBB] = await Promise.all([
      backend.softminGrad(X, Y, hB, eps, rXY),
      backend.softminGrad(Y, X, hA, eps, rYX),
      hAA ? backend.softminGrad(X, X, hAA, eps, rXX) : null,
      hBB ? backend.softminGrad(Y, Y, hBB, eps, rYY) : null,
    ]);
    grads = {
      dFBA: scaled(dFBA, kappa),
      dGAB: scaled(dGAB, kappa),
      dFAA: dFAA && scaled(dFAA, kappa),
      dGBB: dGBB && scaled(dGBB, kappa),
    };
  }
  return {
    r: { final, pre: pot, grads, eps, kappa, iterations: monitor.iteration, converged: monitor.converged },
    x: cx.fine,
    y: cy.fine,
    a: cx.w,
    b: cy.w,
    permX: cx.perm,
    permY: cy.perm,
    density,
    jump,
    clusters: { x: cx.coarse.N, y: cy.coarse.N },
  };
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
