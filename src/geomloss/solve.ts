// One OT result object (POT's / geomloss.ot's convention): the value, potentials, plan and gradients
// of one Sinkhorn solve, with the plan's reductions (marginals, barycentric map) run on demand and
// cached, so that nothing re-runs Sinkhorn.
import { Tensor, Vj, type AbortSignalLike, type LazyTensor } from '../index.js';
import type { Weights } from './inputs.js';
import type { SamplesLossOptions } from './options.js';

/** Options of `solveSamples`: SamplesLoss's (loss 'sinkhorn', the default), plus the weights. */
export interface SolveSamplesOptions extends SamplesLossOptions {
  /** Weights of x (default uniform, 1/N). */
  a?: Weights | null;
  /** Weights of y (default uniform, 1/M). */
  b?: Weights | null;
}

/** What `solveSamples` resolves to (TInfo: SamplesLoss's LossInfo). */
export interface OTResult<TInfo, TGrad> {
  /** The loss, as `SamplesLoss.value` returns it (the Sinkhorn divergence when `debias`, the default). */
  readonly value: number;
  /** The potential on x ([N]), as `SamplesLoss.potentials` (f_ba - f_aa when debiased). */
  readonly f: Tensor<Float32Array | Float64Array>;
  /** The potential on y ([M]), as `SamplesLoss.potentials`. */
  readonly g: Tensor<Float32Array | Float64Array>;
  /** The entropic plan of this solve, as `SamplesLoss.transportPlan` (symbolic N x M, never stored). */
  readonly plan: LazyTensor;
  /** The plan's row sums ([N, 1], ~ a at convergence) and column sums ([M, 1], ~ b); one reduction
   *  each, run at the first call and cached. */
  marginals(): Promise<{
    /** Row sums: [N, 1]. */
    rows: Tensor<Float32Array | Float64Array>;
    /** Column sums: [M, 1]. */
    cols: Tensor<Float32Array | Float64Array>;
  }>;
  /** The barycentric map T(x_i) = sum_j pi_ij y_j / sum_j pi_ij: [N, D], in the inputs' units
   *  (rows of zero mass, where a_i = 0, are NaN). Run at the first call and cached. */
  barycentricMap(): Promise<Tensor<Float32Array | Float64Array>>;
  /** The gradients of `value` with respect to x, y, a and b, as `SamplesLoss.valueAndGrad`
   *  (computed with the solve, no extra Sinkhorn iteration). */
  grad(): Promise<TGrad>;
  /** How it was computed (`reductions` counts those of the solve and its gradients). */
  readonly info: TInfo;
}

/** The result object around one solve's outputs. */
export function otResult<TInfo, TGrad>(parts: {
  value: number;
  f: Tensor<Float32Array | Float64Array>;
  g: Tensor<Float32Array | Float64Array>;
  plan: LazyTensor;
  grad: TGrad;
  info: TInfo;
  /** y's coordinates in the inputs' units, in the computation's dtype, [M, D] row-major. */
  y: Float32Array | Float64Array;
  D: number;
  signal: AbortSignalLike | undefined;
}): OTResult<TInfo, TGrad> {
  const { plan, signal, D } = parts;
  const options = signal === undefined ? undefined : { signal };
  let marginals: ReturnType<OTResult<TInfo, TGrad>['marginals']> | null = null;
  let map: Promise<Tensor<Float32Array | Float64Array>> | null = null;
  let rowSums: Promise<Tensor<Float32Array | Float64Array>> | null = null;
  // The row sums serve both the marginals and the map's normalisation: one reduction for both.
  const rows = () => (rowSums ??= plan.sum(1, options));
  return {
    value: parts.value,
    f: parts.f,
    g: parts.g,
    plan,
    info: parts.info,
    grad: () => Promise.resolve(parts.grad),
    marginals() {
      marginals ??= (async () => ({ rows: await rows(), cols: await plan.sum(0, options) }))();
      return marginals;
    },
    barycentricMap() {
      map ??= (async () => {
        const mass = await rows();
        const moved = await plan.mul(Vj(parts.y, D)).sum(1, options);
        const out =
          moved.data instanceof Float32Array
            ? new Float32Array(moved.data.length)
            : new Float64Array(moved.data.length);
        const N = mass.data.length;
        for (let i = 0; i < N; i++) {
          const m = mass.data[i]!;
          for (let k = 0; k < D; k++) out[i * D + k] = m > 0 ? moved.data[i * D + k]! / m : NaN;
        }
        return new Tensor(out, [N, D], moved.engine);
      })();
      return map;
    },
  };
}
