// GeomLoss's Sinkhorn loop (geomloss.sinkhorn_divergence.sinkhorn_loop, v0.2.6 maths), on a
// SoftminBackend: epsilon scaling from the diameter down to blur^p, symmetric averaged updates of
// the four potentials (f_ba, g_ab and, when debiasing, f_aa, g_bb), unbalanced damping with reach,
// a final non-averaged "extrapolation" step, then GeomLoss's value formulas and its envelope-theorem
// gradients (no differentiation through the loop: the gradients are softmax-weighted averages of
// the cost's gradient, one sumSoftMaxWeight reduction per potential).
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

const damping = (eps: number, rho: number | null): number => (rho === null ? 1 : 1 / (1 + eps / rho));

function scaled(v: Float64Array, s: number): Float64Array {
  if (s !== 1) for (let k = 0; k < v.length; k++) v[k] = s * v[k]!;
  return v;
}

/** (u + v) / 2 into u; returns max |new - old|. */
function average(u: Float64Array, v: Float64Array): number {
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
      console.log(`SamplesLoss(${this.label}): iteration ${this.iteration}/${this.total}, eps = ${epsilon.toExponential(3)}${more}`);
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
  for (const e of schedule) {
    eps = e;
    await step(eps);
    monitor.tick(eps, 'schedule');
  }
  if (o.convergence !== null) {
    const tol = convergenceTol(o, dtype);
    monitor.converged = false;
    for (let k = 0; k < o.convergence.maxIter; k++) {
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

export async function sinkhornLoop(
  backend: SoftminBackend,
  X: CloudVars,
  Y: CloudVars,
  a: Float64Array,
  b: Float64Array,
  schedule: readonly number[],
  o: ResolvedOptions,
  wantGrads: boolean,
): Promise<SinkhornResult> {
  const rho = o.reach === null ? null : Math.pow(o.reach, o.p);
  const debias = o.debias;
  const la = logWeights(a);
  const lb = logWeights(b);
  const monitor = new LoopMonitor(o, 'sinkhorn', schedule.length);

  let eps = schedule[0]!;
  let kappa = damping(eps, rho);
  // Initialisation at the coarsest temperature, from the weights alone.
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

  /** One symmetric step, all four updates from the same old values, then averaged. */
  const step = async (e: number): Promise<number> => {
    eps = e;
    kappa = damping(eps, rho);
    const [ftBA, gtAB, ftAA, gtBB] = await Promise.all([
      backend.softmin(X, Y, logits(lb, pot.gAB, eps), eps),
      backend.softmin(Y, X, logits(la, pot.fBA, eps), eps),
      pot.fAA ? backend.softmin(X, X, logits(la, pot.fAA, eps), eps) : null,
      pot.gBB ? backend.softmin(Y, Y, logits(lb, pot.gBB, eps), eps) : null,
    ]);
    let change = average(pot.fBA, scaled(ftBA, kappa));
    change = Math.max(change, average(pot.gAB, scaled(gtAB, kappa)));
    if (pot.fAA && ftAA) change = Math.max(change, average(pot.fAA, scaled(ftAA, kappa)));
    if (pot.gBB && gtBB) change = Math.max(change, average(pot.gBB, scaled(gtBB, kappa)));
    return change;
  };

  eps = await annealAndConverge(schedule, step, monitor, o, backend.dtype);
  kappa = damping(eps, rho);

  // Final extrapolation: one more non-averaged update of all four, from the pre-final values.
  const hB = logits(lb, pot.gAB, eps);
  const hA = logits(la, pot.fBA, eps);
  const hAA = pot.fAA ? logits(la, pot.fAA, eps) : null;
  const hBB = pot.gBB ? logits(lb, pot.gBB, eps) : null;
  const [nfBA, ngAB, nfAA, ngBB] = await Promise.all([
    backend.softmin(X, Y, hB, eps),
    backend.softmin(Y, X, hA, eps),
    hAA ? backend.softmin(X, X, hAA, eps) : null,
    hBB ? backend.softmin(Y, Y, hBB, eps) : null,
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
      backend.softminGrad(X, Y, hB, eps),
      backend.softminGrad(Y, X, hA, eps),
      hAA ? backend.softminGrad(X, X, hAA, eps) : null,
      hBB ? backend.softminGrad(Y, Y, hBB, eps) : null,
    ]);
    grads = {
      dFBA: scaled(dFBA, kappa),
      dGAB: scaled(dGAB, kappa),
      dFAA: dFAA && scaled(dFAA, kappa),
      dGBB: dGBB && scaled(dGBB, kappa),
    };
  }
  return { final, pre: pot, grads, eps, kappa, iterations: monitor.iteration, converged: monitor.converged };
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
): SideOutput {
  const { B, N, D } = cloud;
  const rho = o.reach === null ? null : Math.pow(o.reach, o.p);
  const values = new Float64Array(B);
  const gradW = new Float64Array(B * N);
  const gradP = dXY ? new Float64Array(B * N * D) : null;
  const F = new Float64Array(B * N);
  for (let k = 0; k < B * N; k++) F[k] = fXX ? fXY[k]! - fXX[k]! : fXY[k]!;
  if (rho === null) {
    for (let k = 0; k < B * N; k++) {
      values[Math.floor(k / N)]! += w[k]! * F[k]!;
      gradW[k] = F[k]!;
      if (gradP && dXY) {
        for (let d = 0; d < D; d++) gradP[k * D + d] = w[k]! * (dXY[k * D + d]! - (dXX ? dXX[k * D + d]! : 0));
      }
    }
  } else {
    // GeomLoss's UnbalancedWeight: the forward weight is rho + eps/2, and its backward (rho + eps)
    // is never called by autograd, so its gradients use rho + eps/2 too; exactUnbalancedGradients
    // gives the derivatives of the converged value instead.
    const W = rho + eps / 2;
    const Wg = o.exactUnbalancedGradients ? rho + eps : W;
    for (let k = 0; k < B * N; k++) {
      const eXY = Math.exp(-fXY[k]! / rho);
      const eXX = fXX ? Math.exp(-fXX[k]! / rho) : 1;
      values[Math.floor(k / N)]! += w[k]! * W * (eXX - eXY);
      // The raw value drops the mass terms of OT_eps,rho, so its exact a-derivative differs.
      gradW[k] = o.exactUnbalancedGradients && !fXX ? W - Wg * eXY : Wg * (eXX - eXY);
      if (gradP && dXY) {
        for (let d = 0; d < D; d++) {
          const gXX = fXX && dXX ? eXX * dXX[k * D + d]! : 0;
          gradP[k * D + d] = (w[k]! * Wg * (eXY * dXY[k * D + d]! - gXX)) / rho;
        }
      }
    }
  }
  return { values, gradW, gradP, F };
}
