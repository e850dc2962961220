// GeomLoss's Sinkhorn loop (geomloss.sinkhorn_divergence.sinkhorn_loop, v0.2.6 maths), on a
// SoftminBackend: epsilon scaling from the diameter down to blur^p, symmetric averaged updates of
// the four potentials (f_ba, g_ab and, when debiasing, f_aa, g_bb), unbalanced damping with reach,
// a final non-averaged "extrapolation" step, then GeomLoss's value formulas and its envelope-theorem
// gradients (no differentiation through the loop: the gradients are softmax-weighted averages of
// the cost's gradient, one sumSoftMaxWeight reduction per potential).
import { checkpoint, type BlockRanges } from '../index.js';
import type { CloudVars, SoftminBackend } from './backend.js';
import type { Cloud } from './inputs.js';
import type { ProgressInfo, ResolvedOptions } from './options.js';

/** log w, with w <= 0 mapped to -100000 as GeomLoss does. */
export function logWeights(w: Float64Array): Float64Array {
  const out = new Float64Array(w.length);
  for (let k = 0; k < w.length; k++) out[k] = w[k]! > 0 ? Math.log(w[k]!) : -100000;
  return out;
}

/** h = l + f / eps. */
export function logits(l: Float64Array, f: Float64Array, eps: number): Float64Array {
  const out = new Float64Array(l.length);
  for (let k = 0; k < l.length; k++) out[k] = l[k]! + f[k]! / eps;
  return out;
}

export const damping = (eps: number, rho: number | null): number => (rho === null ? 1 : 1 / (1 + eps / rho));

export function scaled(v: Float64Array, s: number): Float64Array {
  if (s !== 1) for (let k = 0; k < v.length; k++) v[k] = s * v[k]!;
  return v;
}

/** (u + v) / 2 into u; returns max |new - old|. */
export function average(u: Float64Array, v: Float64Array): number {
  let change = 0;
  for (let k = 0; k < u.length; k++) {
    const next = 0.5 * (u[k]! + v[k]!);
    change = Math.max(change, Math.abs(next - u[k]!));
    u[k] = next;
  }
  return change;
}

/** The loop's bookkeeping, shared by Sinkhorn and Hausdorff. */
export class LoopMonitor {
  iteration = 0;
  converged: boolean | null = null;
  constructor(
    private readonly o: ResolvedOptions,
    private readonly label: string,
    private readonly scheduleLength: number,
  ) {}

  get total(): number {
    return this.scheduleLength + (this.o.convergence?.maxIter ?? 0);
  }

  tick(epsilon: number, phase: ProgressInfo['phase'], change?: number): void {
    this.iteration++;
    const info: ProgressInfo = { epsilon, iteration: this.iteration, total: this.total, phase };
    if (change !== undefined) info.change = change;
    if (this.o.verbose) {
      const more = change === undefined ? '' : `, max change ${change.toExponential(2)} eps`;
      console.log(
        `SamplesLoss(${this.label}): iteration ${this.iteration}/${this.total}, eps = ${epsilon.toExponential(3)}${more}`,
      );
    }
    this.o.onProgress?.(info);
  }
}

/** The convergence tolerance on max|df| / eps. */
export function convergenceTol(o: ResolvedOptions, dtype: 'float32' | 'float64'): number {
  return o.convergence?.tol ?? (dtype === 'float32' ? 1e-4 : 1e-6);
}

/**
 * Epsilon-scaling: one `step(eps)` per temperature of the schedule, then, with the `convergence`
 * option, more steps at the last temperature until the largest change of a potential (step's result)
 * is below tol * eps. Returns the final temperature.
 */
export async function annealAndConverge(
  schedule: readonly number[],
  step: (eps: number) => Promise<number>,
  monitor: LoopMonitor,
  o: ResolvedOptions,
  dtype: 'float32' | 'float64',
): Promise<number> {
  let eps = schedule[0]!;
  const signal = o.signal ?? undefined;
  // Each iteration yields to the event loop when due and sees an abort (its reductions do too; the
  // check here also covers the JS work between them, e.g. multiscale's truncation patterns).
  for (const e of schedule) {
    eps = e;
    await checkpoint(signal);
    await step(eps);
    monitor.tick(eps, 'schedule');
  }
  if (o.convergence !== null) {
    const tol = convergenceTol(o, dtype);
    monitor.converged = false;
    for (let k = 0; k < o.convergence.maxIter; k++) {
      await checkpoint(signal);
      const change = (await step(eps)) / eps;
      monitor.tick(eps, 'convergence', change);
      if (change <= tol) {
        monitor.converged = true;
        break;
      }
    }
  }
  return eps;
}

export interface SinkhornPotentials {
  fBA: Float64Array;
  gAB: Float64Array;
  fAA: Float64Array | null;
  gBB: Float64Array | null;
}

export interface SinkhornResult {
  /** After the final extrapolation step: what the value and the potentials use. */
  final: SinkhornPotentials;
  /** Before it: what the transport plan and the gradients' softmax weights use. */
  pre: SinkhornPotentials;
  /** kappa * sum_j P_ij grad_1 C(x_i, y_j) and the others, when gradients were asked for. */
  grads: { dFBA: Float64Array; dGAB: Float64Array; dFAA: Float64Array | null; dGBB: Float64Array | null } | null;
  eps: number;
  kappa: number;
  iterations: number;
  converged: boolean | null;
}

/** The block-sparsity patterns of the four problems (multiscale); absent: every pair. */
export interface Patterns {
  xy?: BlockRanges;
  yx?: BlockRanges;
  xx?: BlockRanges;
  yy?: BlockRanges;
}

/** Patterns of which some may still be in the making (multiscale builds them one after another on
 *  this thread): each softmin starts as soon as its own pattern is ready, so that the workers reduce
 *  the first problems while the next patterns are built. The same patterns give the same bits. */
export type PendingPatterns = { [K in keyof Patterns]?: Patterns[K] | Promise<Patterns[K]> };

/** The clouds of a Sinkhorn problem, their log-weights, and the temperature's damping. */
export interface Problem {
  backend: SoftminBackend;
  X: CloudVars;
  Y: CloudVars;
  la: Float64Array;
  lb: Float64Array;
}

/**
 * The four potentials' softmin updates from `pot` (absent debias potentials stay null), each times
 * kappa: f_ba <- softmin(C_xy, log b + g_ab/eps), g_ab <- softmin(C_yx, log a + f_ba/eps), and the
 * same for f_aa, g_bb. `pot` null: GeomLoss's initialisation from the weights alone.
 */
export async function updates(
  pr: Problem,
  pot: SinkhornPotentials | null,
  debias: boolean,
  eps: number,
  kappa: number,
  pat: PendingPatterns = {},
): Promise<SinkhornPotentials> {
  const { backend, X, Y, la, lb } = pr;
  const hB = pot ? logits(lb, pot.gAB, eps) : lb;
  const hA = pot ? logits(la, pot.fBA, eps) : la;
  const hAA = pot ? pot.fAA && logits(la, pot.fAA, eps) : debias ? la : null;
  const hBB = pot ? pot.gBB && logits(lb, pot.gBB, eps) : debias ? lb : null;
  const softmin = when(backend.softmin.bind(backend), eps);
  const [fBA, gAB, fAA, gBB] = await Promise.all([
    softmin(X, Y, hB, pat.xy),
    softmin(Y, X, hA, pat.yx),
    hAA ? softmin(X, X, hAA, pat.xx) : null,
    hBB ? softmin(Y, Y, hBB, pat.yy) : null,
  ]);
  return {
    fBA: scaled(fBA, kappa),
    gAB: scaled(gAB, kappa),
    fAA: fAA && scaled(fAA, kappa),
    gBB: gBB && scaled(gBB, kappa),
  };
}

/** A reduction started at once on a ready pattern, or when a pending one is ready. */
function when(
  reduce: (P: CloudVars, Q: CloudVars, h: Float64Array, eps: number, ranges?: BlockRanges) => Promise<Float64Array>,
  eps: number,
) {
  return (
    P: CloudVars,
    Q: CloudVars,
    h: Float64Array,
    r: BlockRanges | undefined | Promise<BlockRanges | undefined>,
  ) => (r instanceof Promise ? r.then((ready) => reduce(P, Q, h, eps, ready)) : reduce(P, Q, h, eps, r));
}

/** pot <- (pot + next) / 2, GeomLoss's symmetric averaged step; returns the largest change. */
export function averageInto(pot: SinkhornPotentials, next: SinkhornPotentials): number {
  let change = average(pot.fBA, next.fBA);
  change = Math.max(change, average(pot.gAB, next.gAB));
  if (pot.fAA && next.fAA) change = Math.max(change, average(pot.fAA, next.fAA));
  if (pot.gBB && next.gBB) change = Math.max(change, average(pot.gBB, next.gBB));
  return change;
}

/**
 * After the loop: the final extrapolation (one more non-averaged update of all four from the
 * pre-final values `pre`) and, when asked for, the envelope-theorem gradients, whose softmax weights
 * are those of that same update. Both read `pre` only: the gradients' reductions are queued with the
 * update's, so that the workers never wait between the two.
 */
export async function finish(
  pr: Problem,
  pre: SinkhornPotentials,
  eps: number,
  kappa: number,
  wantGrads: boolean,
  pat: PendingPatterns = {},
): Promise<{ final: SinkhornPotentials; grads: SinkhornResult['grads'] }> {
  const [final, grads] = await Promise.all([
    updates(pr, pre, true, eps, kappa, pat),
    wantGrads ? gradients(pr, pre, eps, kappa, pat) : null,
  ]);
  return { final, grads };
}

/** The envelope-theorem gradients at `pre` (see finish). */
async function gradients(
  pr: Problem,
  pre: SinkhornPotentials,
  eps: number,
  kappa: number,
  pat: PendingPatterns,
): Promise<NonNullable<SinkhornResult['grads']>> {
  const { backend, X, Y, la, lb } = pr;
  const grad = when(backend.softminGrad.bind(backend), eps);
  const [dFBA, dGAB, dFAA, dGBB] = await Promise.all([
    grad(X, Y, logits(lb, pre.gAB, eps), pat.xy),
    grad(Y, X, logits(la, pre.fBA, eps), pat.yx),
    pre.fAA ? grad(X, X, logits(la, pre.fAA, eps), pat.xx) : null,
    pre.gBB ? grad(Y, Y, logits(lb, pre.gBB, eps), pat.yy) : null,
  ]);
  return {
    dFBA: scaled(dFBA, kappa),
    dGAB: scaled(dGAB, kappa),
    dFAA: dFAA && scaled(dFAA, kappa),
    dGBB: dGBB && scaled(dGBB, kappa),
  };
}

export async function sinkhornLoop(
  backend: SoftminBackend,
  X: CloudVars,
  Y: CloudVars,
  a: Float64Array,
  b: Float64Array,
  schedule: readonly number[],
  o: ResolvedOptions,
  wantGrads: boolean,
  /** Fixed block-sparsity patterns of the four problems (labelled batches: block-diagonal). */
  pat: Patterns = {},
): Promise<SinkhornResult> {
  const rho = o.reach === null ? null : Math.pow(o.reach, o.p);
  const pr: Problem = { backend, X, Y, la: logWeights(a), lb: logWeights(b) };
  const monitor = new LoopMonitor(o, 'sinkhorn', schedule.length);

  // Initialisation at the coarsest temperature, from the weights alone.
  const pot = await updates(pr, null, o.debias, schedule[0]!, damping(schedule[0]!, rho), pat);
  /** One symmetric step, all four updates from the same old values, then averaged. */
  const step = async (eps: number): Promise<number> =>
    averageInto(pot, await updates(pr, pot, o.debias, eps, damping(eps, rho), pat));

  const eps = await annealAndConverge(schedule, step, monitor, o, backend.dtype);
  const kappa = damping(eps, rho);
  const { final, grads } = await finish(pr, pot, eps, kappa, wantGrads, pat);
  return { final, pre: pot, grads, eps, kappa, iterations: monitor.iteration, converged: monitor.converged };
}

/** rho (1 - exp(-f / rho)), accurately for any rho > 0 (f itself when rho is Infinity). */
export function unbalancedPhi(f: number, rho: number): number {
  const t = f / rho;
  // rho * -expm1(-t) loses nothing for |t| small; at t = 0 (rho = inf) it is 0 * inf: use f (1 - t/2).
  return Math.abs(t) < 1e-8 ? f * (1 - 0.5 * t) : -rho * Math.expm1(-t);
}

export interface SideOutput {
  /** One value per batch item. */
  values: Float64Array;
  /** dV/dw, [B, N]. */
  gradW: Float64Array;
  /** dV/dpoints, [B, N, D] (when the gradients were computed). */
  gradP: Float64Array | null;
  /** GeomLoss's potentials=True output for this side: f_ba - f_aa (debias) or f_ba. */
  F: Float64Array;
}

/**
 * One side's share of the value and its gradients (the y side is the same with f -> g, a -> b, x -> y):
 * GeomLoss's sinkhorn_cost and its autograd, written out.
 */
export function sinkhornSide(
  cloud: Cloud,
  w: Float64Array,
  fXY: Float64Array,
  fXX: Float64Array | null,
  dXY: Float64Array | null,
  dXX: Float64Array | null,
  o: ResolvedOptions,
  eps: number,
  /** Labelled batches: the label of each point and their number; the values are then per label. */
  groups: { of: Int32Array; count: number } | null = null,
): SideOutput {
  const { B, N, D } = cloud;
  const rho = o.reach === null ? null : Math.pow(o.reach, o.p);
  const values = new Float64Array(groups === null ? B : groups.count);
  const item = groups === null ? (k: number) => Math.floor(k / N) : (k: number) => groups.of[k]!;
  const gradW = new Float64Array(B * N);
  const gradP = dXY ? new Float64Array(B * N * D) : null;
  const F = new Float64Array(B * N);
  for (let k = 0; k < B * N; k++) F[k] = fXX ? fXY[k]! - fXX[k]! : fXY[k]!;
  if (rho === null) {
    for (let k = 0; k < B * N; k++) {
      values[item(k)]! += w[k]! * F[k]!;
      gradW[k] = F[k]!;
      if (gradP && dXY) {
        for (let d = 0; d < D; d++) gradP[k * D + d] = w[k]! * (dXY[k * D + d]! - (dXX ? dXX[k * D + d]! : 0));
      }
    }
  } else {
    // GeomLoss's UnbalancedWeight: the forward weight is rho + eps/2, and its backward (rho + eps)
    // is never called by autograd, so its gradients use rho + eps/2 too; exactUnbalancedGradients
    // gives the derivatives of the converged value instead.
    // Written so that a large reach tends to the balanced formulas instead of cancelling: with
    // phi(f) = rho (1 - exp(-f/rho)) (-> f as rho -> inf, computed by expm1),
    // W (exp(-fXX/rho) - exp(-fXY/rho)) = (W / rho) (phi(fXY) - phi(fXX)), and W / rho = 1 + eps / (2 rho)
    // stays finite (1) when rho = reach^p overflows to Infinity.
    const wOverRho = 1 + eps / (2 * rho);
    const wgOverRho = o.exactUnbalancedGradients ? 1 + eps / rho : wOverRho;
    for (let k = 0; k < B * N; k++) {
      const pXY = unbalancedPhi(fXY[k]!, rho);
      const pXX = fXX ? unbalancedPhi(fXX[k]!, rho) : 0;
      const eXY = Math.exp(-fXY[k]! / rho);
      const eXX = fXX ? Math.exp(-fXX[k]! / rho) : 1;
      values[item(k)]! += w[k]! * wOverRho * (pXY - pXX);
      // The raw value drops the mass terms of OT_eps,rho, so its exact a-derivative differs:
      // W - Wg exp(-fXY/rho) = (W - Wg) + (Wg / rho) phi(fXY), with W - Wg = -eps/2.
      gradW[k] = o.exactUnbalancedGradients && !fXX ? -eps / 2 + wgOverRho * pXY : wgOverRho * (pXY - pXX);
      if (gradP && dXY) {
        for (let d = 0; d < D; d++) {
          const gXX = fXX && dXX ? eXX * dXX[k * D + d]! : 0;
          gradP[k * D + d] = w[k]! * wgOverRho * (eXY * dXY[k * D + d]! - gXX);
        }
      }
    }
  }
  return { values, gradW, gradP, F };
}
