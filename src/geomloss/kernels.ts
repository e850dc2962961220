// Kernel (MMD) losses: 0.5 <a, K_xx a> + 0.5 <b, K_yy b> - <a, K_xy b>, with GeomLoss's kernels.
// Four sum reductions give the value and every gradient: each reduces [k, grad_1 k] weighted by the
// reduced cloud's weights, and the xx and xy reductions are the same formula (exact 0 for identical
// inputs). Kernels are assumed symmetric, k(x, y) = k(y, x), as GeomLoss's formulas do.
import type { LazyTensor } from '../index.js';
import { callPairFormula, DIST_CLAMP, type CloudVars, type OnlineBackend } from './backend.js';
import type { Cloud } from './inputs.js';
import type { PairFormula, ResolvedOptions } from './options.js';

const HUGE = 1e30;

/** k(P, Q) and its gradient with respect to P. */
export interface KernelModel {
  value(P: LazyTensor, Q: LazyTensor): LazyTensor;
  grad1(P: LazyTensor, Q: LazyTensor): LazyTensor;
}

/** `energyClamp`: the energy kernel's clamp of squared distances (DIST_CLAMP in the user's units; the
 *  laplacian's is in blur units, unchanged by a rescaling). */
export function kernelModel(o: ResolvedOptions, energyClamp = DIST_CLAMP): KernelModel {
  if (o.kernel !== null) {
    const k: PairFormula = o.kernel;
    return {
      value: (P, Q) => callPairFormula('kernel', k, P, Q),
      grad1: (P, Q) => callPairFormula('kernel', k, P, Q).grad(P, 1),
    };
  }
  const s = o.blur;
  switch (o.loss) {
    case 'gaussian':
      // exp(-|x/s - y/s|^2 / 2)
      return {
        value: (P, Q) =>
          P.mul(1 / s)
            .sqDist(Q.mul(1 / s))
            .mul(-0.5)
            .exp(),
        grad1: (P, Q) => {
          const u = P.mul(1 / s);
          const v = Q.mul(1 / s);
          return u.sub(v).mul(
            u
              .sqDist(v)
              .mul(-0.5)
              .exp()
              .mul(-1 / s),
          );
        },
      };
    case 'laplacian':
      // exp(-sqrt(max(|x/s - y/s|^2, 1e-8))): the clamp is in blur units, as in GeomLoss
      return {
        value: (P, Q) =>
          P.mul(1 / s)
            .sqDist(Q.mul(1 / s))
            .clamp(DIST_CLAMP, HUGE)
            .sqrt()
            .neg()
            .exp(),
        grad1: (P, Q) => {
          const u = P.mul(1 / s);
          const v = Q.mul(1 / s);
          const d2 = u.sqDist(v);
          const c = d2.clamp(DIST_CLAMP, HUGE);
          return u.sub(v).mul(
            c
              .sqrt()
              .neg()
              .exp()
              .mul(c.rsqrt())
              .mul(d2.gt(DIST_CLAMP))
              .mul(-1 / s),
          );
        },
      };
    default:
      // energy: -sqrt(max(|x - y|^2, 1e-8))
      return {
        value: (P, Q) => P.sqDist(Q).clamp(energyClamp, HUGE).sqrt().neg(),
        grad1: (P, Q) => {
          const d2 = P.sqDist(Q);
          return P.sub(Q).mul(d2.clamp(energyClamp, HUGE).rsqrt().mul(d2.gt(energyClamp)).neg());
        },
      };
  }
}

export interface KernelResult {
  values: Float64Array;
  gradA: Float64Array;
  gradB: Float64Array;
  gradX: Float64Array | null;
  gradY: Float64Array | null;
}

export async function kernelLoss(
  backend: OnlineBackend,
  X: CloudVars,
  Y: CloudVars,
  a: Float64Array,
  b: Float64Array,
  o: ResolvedOptions,
  wantGrads: boolean,
  energyClamp = DIST_CLAMP,
): Promise<KernelResult> {
  const k = kernelModel(o, energyClamp);
  const D = X.cloud.D;
  /** sum_j w_j [k(p_i, q_j), grad_1 k(p_i, q_j)] (or just the first), [B, N_P, 1 (+ D)]. */
  const reduce = (P: CloudVars, Q: CloudVars, w: Float64Array): Promise<Float64Array> => {
    const W = backend.vector(w, Q.cloud, 'j');
    const f = wantGrads ? k.value(P.i, Q.j).concat(k.grad1(P.i, Q.j)) : k.value(P.i, Q.j);
    return backend.sum(f.mul(W), 1);
  };
  const [ax, bx, by, ay] = await Promise.all([reduce(X, X, a), reduce(X, Y, b), reduce(Y, Y, b), reduce(Y, X, a)]);
  const w = wantGrads ? 1 + D : 1;
  const side = (cloud: Cloud, u: Float64Array, own: Float64Array, other: Float64Array) => {
    const { B, N } = cloud;
    const values = new Float64Array(B);
    const gradW = new Float64Array(B * N);
    const gradP = wantGrads ? new Float64Array(B * N * D) : null;
    for (let r = 0; r < B * N; r++) {
      const s = own[r * w]!;
      const t = other[r * w]!;
      values[Math.floor(r / N)]! += 0.5 * u[r]! * (s - t);
      gradW[r] = s - t;
      if (gradP) for (let d = 0; d < D; d++) gradP[r * D + d] = u[r]! * (own[r * w + 1 + d]! - other[r * w + 1 + d]!);
    }
    return { values, gradW, gradP };
  };
  // 0.5 <a, K_xx a> + 0.5 <b, K_yy b> - <a, K_xy b>, with <a, K_xy b> = <b, K_yx a> split in halves
  // so that each side is 0.5 <w, own - other> (exactly 0 for identical measures).
  const sx = side(X.cloud, a, ax, bx);
  const sy = side(Y.cloud, b, by, ay);
  const values = new Float64Array(sx.values.length);
  for (let q = 0; q < values.length; q++) values[q] = sx.values[q]! + sy.values[q]!;
  return { values, gradA: sx.gradW, gradB: sy.gradW, gradX: sx.gradP, gradY: sy.gradP };
}
