// The Hausdorff divergence of Feydy et al. 2019 ("Interpolating between optimal transport and MMD
// using Sinkhorn divergences", and `hausdorff_divergence` in Feydy's global-divergences code), which
// GeomLoss's SamplesLoss('hausdorff') advertises but fails to run:
//
//   A = the symmetric (debiasing) potential of (a, x), from the same epsilon-scaling loop as f_aa,
//   extended to any point z by A(z) = -eps log sum_k a_k exp((A_k - C(z, x_k)) / eps); B likewise
//   for (b, y). Then
//   H = 1/2 [<a, B(x) - A(x)> + <b, A(y) - B(y)>] = 1/2 <alpha - beta, grad F(alpha) - grad F(beta)>
//   with F(alpha) = -OT_eps(alpha, alpha)/2 convex: H >= 0, and H = 0 when the measures coincide.
//
// Gradients are the exact derivatives of H at convergence (implicit differentiation through the
// fixed point A = T(A), where (I + R) dA = (R o dC) 1 - eps R (da / a) and R is the row-softmax of the
// xx problem). The adjoint system (I + R)^T lambda = U is solved without any dense matrix: damped
// Richardson iterations lambda <- lambda + w (U - lambda - R^T lambda), w = 2/3, each one a sum
// reduction (R is a positive row-stochastic matrix, so this converges; for positive-definite
// kernels exp(-C/eps) the contraction factor is at most 1/3).
//
// Unbalanced (reach, rho = reach^p): every update of A and B is damped by kappa = 1/(1 + eps/rho), as
// GeomLoss damps its Sinkhorn updates (A = kappa T(A), A(z) = kappa T_z(A)), and the scalar products
// are those of GeomLoss's unbalanced debiased Sinkhorn cost, <a, (rho + eps/2)(exp(-A/rho) - exp(-B/rho))>:
//   H = (1 + eps/(2 rho))/2 [<a, phi(B(x)) - phi(A(x))> + <b, phi(A(y)) - phi(B(y))>],
// phi(f) = rho (1 - exp(-f/rho)) -> f as rho -> infinity (the balanced H). With equal masses this is
// (rho + eps/2)/(rho + eps) times 1/2 <alpha - beta, grad F(alpha) - grad F(beta)> for the unbalanced
// F (same sign). The adjoint becomes (I + kappa R)^T lambda = U, with U weighted by exp(-A/rho).
import type { CloudVars, OnlineBackend } from './backend.js';
import type { ResolvedOptions } from './options.js';
import {
  annealAndConverge,
  average,
  damping,
  logits,
  logWeights,
  LoopMonitor,
  scaled,
  unbalancedPhi,
} from './sinkhorn.js';

/** Largest number of Richardson iterations of the adjoint solve. */
const ADJOINT_MAX_ITER = 500;

export interface HausdorffResult {
  values: Float64Array;
  /** B(x) - A(x) on x and A(y) - B(y) on y. */
  F: Float64Array;
  G: Float64Array;
  gradA: Float64Array | null;
  gradB: Float64Array | null;
  gradX: Float64Array | null;
  gradY: Float64Array | null;
  iterations: number;
  converged: boolean | null;
  /** Richardson iterations of the adjoint solves (gradients only). */
  adjointIterations: number;
}

export async function hausdorffLoss(
  backend: OnlineBackend,
  X: CloudVars,
  Y: CloudVars,
  a: Float64Array,
  b: Float64Array,
  schedule: readonly number[],
  o: ResolvedOptions,
  wantGrads: boolean,
): Promise<HausdorffResult> {
  const la = logWeights(a);
  const lb = logWeights(b);
  // Unbalanced (reach): every update of the symmetric potentials is damped by kappa = 1/(1 + eps/rho),
  // as Sinkhorn's are (GeomLoss's dampening); rho = Infinity (a reach whose p-th power overflows)
  // gives kappa = 1 and the balanced formulas exactly.
  const rho = o.reach === null ? null : Math.pow(o.reach, o.p);
  const monitor = new LoopMonitor(o, 'hausdorff', schedule.length);
  let eps = schedule[0]!;
  const [pA, pB] = (await Promise.all([backend.softmin(X, X, la, eps), backend.softmin(Y, Y, lb, eps)])).map((v) =>
    scaled(v, damping(schedule[0]!, rho)),
  ) as [Float64Array, Float64Array];
  const step = async (e: number): Promise<number> => {
    eps = e;
    const k = damping(eps, rho);
    const [tA, tB] = await Promise.all([
      backend.softmin(X, X, logits(la, pA, eps), eps),
      backend.softmin(Y, Y, logits(lb, pB, eps), eps),
    ]);
    return Math.max(average(pA, scaled(tA, k)), average(pB, scaled(tB, k)));
  };
  eps = await annealAndConverge(schedule, step, monitor, o, backend.dtype);
  const kappa = damping(eps, rho);
  const hA = logits(la, pA, eps);
  const hB = logits(lb, pB, eps);
  // A(x), A(y), B(y), B(x), undamped (the backward pass needs their log-sum-exps); B(x) and A(x)
  // are the same formula on the same cloud (exact 0 if x = y).
  const [tSelfA, tExtA, tSelfB, tExtB] = await Promise.all([
    backend.softmin(X, X, hA, eps),
    backend.softmin(Y, X, hA, eps),
    backend.softmin(Y, Y, hB, eps),
    backend.softmin(X, Y, hB, eps),
  ]);
  const [selfA, extA, selfB, extB] = [tSelfA, tExtA, tSelfB, tExtB].map((v) => v.map((t) => kappa * t)) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const { B: nb, N } = X.cloud;
  const M = Y.cloud.N;
  const F = new Float64Array(nb * N);
  const G = new Float64Array(nb * M);
  const values = new Float64Array(nb);
  // Balanced: H = 1/2 [<a, B(x) - A(x)> + <b, A(y) - B(y)>]. Unbalanced, GeomLoss's scalar product
  // of its debiased Sinkhorn cost, <a, (rho + eps/2) (exp(-A/rho) - exp(-B/rho))>, written with
  // phi(f) = rho (1 - exp(-f/rho)) as (1 + eps/(2 rho)) <a, phi(B) - phi(A)> so that it tends to the
  // balanced value (no cancellation) as reach -> infinity.
  const c = rho === null ? 1 : 1 + eps / (2 * rho);
  const phi = rho === null ? (f: number) => f : (f: number) => unbalancedPhi(f, rho);
  const gA = new Float64Array(nb * N);
  const gB = new Float64Array(nb * M);
  for (let k = 0; k < nb * N; k++) {
    F[k] = extB[k]! - selfA[k]!;
    gA[k] = 0.5 * c * (phi(extB[k]!) - phi(selfA[k]!));
    values[Math.floor(k / N)]! += a[k]! * gA[k]!;
  }
  for (let k = 0; k < nb * M; k++) {
    G[k] = extA[k]! - selfB[k]!;
    gB[k] = 0.5 * c * (phi(extA[k]!) - phi(selfB[k]!));
    values[Math.floor(k / M)]! += b[k]! * gB[k]!;
  }
  const out: HausdorffResult = {
    values,
    F,
    G,
    gradA: null,
    gradB: null,
    gradX: null,
    gradY: null,
    iterations: monitor.iteration,
    converged: monitor.converged,
    adjointIterations: 0,
  };
  if (!wantGrads) return out;

  const D = X.cloud.D;
  const gX = new Float64Array(nb * N * D);
  const gY = new Float64Array(nb * M * D);
  // The cotangents of the potentials: d/dA of (c/2) w phi(A) is (c/2) w exp(-A/rho) (1 balanced).
  const cot = (w: Float64Array, pot: Float64Array, s: number): Float64Array =>
    w.map((v, k) => s * c * v * (rho === null ? 1 : Math.exp(-pot[k]! / rho)));
  // H = -c/2 <a, phi(A(x))> + c/2 <b, phi(A(y))> + (the same for B with the roles swapped).
  const iA = await symmetricBackward(
    backend,
    X,
    Y,
    a,
    pA,
    hA,
    tSelfA,
    tExtA,
    cot(a, selfA, -0.5),
    cot(b, extA, 0.5),
    eps,
    kappa,
    gA,
    gX,
    gY,
  );
  const iB = await symmetricBackward(
    backend,
    Y,
    X,
    b,
    pB,
    hB,
    tSelfB,
    tExtB,
    cot(b, selfB, -0.5),
    cot(a, extB, 0.5),
    eps,
    kappa,
    gB,
    gY,
    gX,
  );
  out.gradA = gA;
  out.gradB = gB;
  out.gradX = gX;
  out.gradY = gY;
  out.adjointIterations = iA + iB;
  return out;
}

/**
 * Accumulates the exact gradients of u . S(x) + v . S(z), where S is the symmetric potential of
 * (w, P) evaluated on P itself ([B, N]) and extended to the other cloud Z ([B, M]): S = kappa T(S)
 * (kappa the unbalanced damping, 1 when balanced), S(z) = kappa T_z(S). `self` and `ext` are the
 * undamped T(S) and T_z(S). Returns the number of Richardson iterations.
 */
async function symmetricBackward(
  backend: OnlineBackend,
  P: CloudVars,
  Z: CloudVars,
  w: Float64Array,
  pot: Float64Array,
  h: Float64Array,
  self: Float64Array,
  ext: Float64Array,
  u: Float64Array,
  vIn: Float64Array,
  eps: number,
  kappa: number,
  gW: Float64Array,
  gP: Float64Array,
  gZ: Float64Array,
): Promise<number> {
  const cost = backend.cost;
  // The extension is kappa T_z(S): its cotangent enters T_z's derivative times kappa.
  const v = kappa === 1 ? vIn : vIn.map((t) => kappa * t);
  const D = P.cloud.D;
  const n = w.length;
  const q = pot.map((f) => f / eps); // potentials over eps, without log w (S_jk / w_k = exp(q_k - C_jk/eps - lse_j))
  const lseR = self.map((f) => -f / eps);
  const lseS = ext.map((f) => -f / eps);
  const Q = backend.vector(q, P.cloud, 'i');
  // Outer index k on P (an i-variable), reduced index on the j-variable.
  const kernelFrom = (J: CloudVars, lse: Float64Array, coef: Float64Array) =>
    Q.sub(cost.overEps(J.j, P.i, eps))
      .sub(backend.vector(lse, J.cloud, 'j'))
      .exp()
      .mul(backend.vector(coef, J.cloud, 'j'));

  // Extension: dS(z_j) = -sum_k S_jk dA_k + sum_k S_jk dC(z_j, x_k) - eps sum_k S_jk dw_k / w_k.
  const sExt = kernelFrom(Z, lseS, v);
  const [E, gradExt] = await Promise.all([
    backend.sum(sExt.concat(cost.grad2(Z.j, P.i).mul(sExt)), 1), // [B, N, 1 + D]
    backend.softminGrad(Z, P, h, eps), // sum_k S_jk grad_1 C(z_j, x_k), [B, M, D]
  ]);
  const U = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const e0 = E[k * (1 + D)]!;
    U[k] = u[k]! - w[k]! * e0;
    gW[k] = gW[k]! - eps * e0;
    if (w[k]! > 0) for (let d = 0; d < D; d++) gP[k * D + d] = gP[k * D + d]! + w[k]! * E[k * (1 + D) + 1 + d]!;
  }
  for (let j = 0; j < v.length; j++) {
    for (let d = 0; d < D; d++) gZ[j * D + d] = gZ[j * D + d]! + v[j]! * gradExt[j * D + d]!;
  }

  // Fixed point: dS = kappa (-R dS + rhs), so (I + kappa R)^T lambda = U, then kappa lambda . rhs:
  // damped Richardson iterations (R^T lambda = w o (M lambda)).
  const omega = 2 / 3;
  const tol = backend.dtype === 'float32' ? 1e-6 : 1e-12;
  const lambda = U.map((t) => t / 2);
  let iterations = 0;
  for (; iterations < ADJOINT_MAX_ITER; iterations++) {
    const Ml = await backend.sum(kernelFrom(P, lseR, lambda), 1);
    let change = 0;
    let size = 0;
    for (let k = 0; k < n; k++) {
      const next = lambda[k]! + omega * (U[k]! - lambda[k]! - kappa * w[k]! * Ml[k]!);
      change = Math.max(change, Math.abs(next - lambda[k]!));
      size = Math.max(size, Math.abs(next));
      lambda[k] = next;
    }
    if (change <= tol * size) break;
  }
  // dA_i = kappa [sum_k R_ik (dC(x_i, x_k)) - eps sum_k R_ik dw_k / w_k], contracted with lambda.
  if (kappa !== 1) for (let k = 0; k < n; k++) lambda[k] = kappa * lambda[k]!;
  const sR = kernelFrom(P, lseR, lambda);
  const [Gk, gradSelf] = await Promise.all([
    backend.sum(sR.concat(cost.grad2(P.j, P.i).mul(sR)), 1), // sum_i lambda_i R_ik / w_k [1, grad_2 C(x_i, x_k)]
    backend.softminGrad(P, P, h, eps), // sum_k R_ik grad_1 C(x_i, x_k)
  ]);
  for (let k = 0; k < n; k++) {
    gW[k] = gW[k]! - eps * Gk[k * (1 + D)]!;
    for (let d = 0; d < D; d++) {
      let g = lambda[k]! * gradSelf[k * D + d]!;
      if (w[k]! > 0) g += w[k]! * Gk[k * (1 + D) + 1 + d]!;
      gP[k * D + d] = gP[k * D + d]! + g;
    }
  }
  return iterations + 1;
}
