// The reductions GeomLoss needs, as symbolic formulas run by the core's engines.
//
// Every Sinkhorn update is a "softmin": f_i = -eps log sum_j exp(h_j - C(p_i, q_j) / eps), one
// logSumExp reduction over j of a formula in an i-variable (the points p), a j-variable (the points
// q) and a j-variable h (log-weights plus potentials over eps). The four problems of a debiased
// divergence (xy, yx, xx, yy) all use this one formula builder with the reduced cloud as the
// j-variable, so that for identical inputs the xy and xx computations are the same program on the
// same bits: the divergence of a measure with itself is exactly 0.
//
// The 'online' backend visits every pair. A 'multiscale' backend (GeomLoss's kernel truncation:
// grid clustering of x and y, a coarse solve on the cluster centroids, then block-sparse reductions
// over the cluster pairs whose coarse cost is below the truncation threshold) would implement this
// same reductions with `ranges`: see multiscale.ts, whose loop calls OnlineBackend.softmin and
// softminGrad with the block-sparsity pattern of the cluster pairs it keeps.
import { LazyTensor, Vi, Vj, type AbortSignalLike, type BlockRanges, type EngineName } from '../index.js';
import type { Cloud } from './inputs.js';
import { inDType } from './inputs.js';
import { GeomLossError, type PairFormula } from './options.js';

/** The ground cost C(p, q) (p: the first argument, whose gradient the losses need). */
export interface CostModel {
  /** C(p, q) / eps (eps may be negative, for -C/|eps|). */
  overEps(P: LazyTensor, Q: LazyTensor, eps: number): LazyTensor;
  /** The gradient of C(P, Q) with respect to P (dimension D). */
  grad1(P: LazyTensor, Q: LazyTensor): LazyTensor;
  /** The gradient of C(P, Q) with respect to Q (dimension D). */
  grad2(P: LazyTensor, Q: LazyTensor): LazyTensor;
}

/** Squared distances below this are clamped in the p = 1 cost, as GeomLoss does (C(x, x) = 1e-4). */
export const DIST_CLAMP = 1e-8;
const HUGE = 1e30;

/** GeomLoss's cost for p = 2: |x - y|^2 / 2. */
const cost2: CostModel = {
  overEps: (P, Q, eps) => P.sqDist(Q).mul(0.5 / eps),
  grad1: (P, Q) => P.sub(Q),
  grad2: (P, Q) => Q.sub(P),
};

/** GeomLoss's cost for p = 1: sqrt(max(|x - y|^2, 1e-8)); its gradient is 0 where the clamp acts.
 *  `clamp` is 1e-8 in the user's units: on a problem rescaled by s (rescale.ts) it is 1e-8 / s^2.
 *  The upper clamp only keeps the kernel's clamp instruction (squared distances of a rescaled
 *  problem stay below 2^70). */
function cost1(clamp: number): CostModel {
  return {
    overEps: (P, Q, eps) =>
      P.sqDist(Q)
        .clamp(clamp, HUGE)
        .sqrt()
        .mul(1 / eps),
    grad1: (P, Q) => {
      const d2 = P.sqDist(Q);
      return P.sub(Q).mul(d2.clamp(clamp, HUGE).rsqrt().mul(d2.gt(clamp)));
    },
    grad2: (P, Q) => {
      const d2 = P.sqDist(Q);
      return Q.sub(P).mul(d2.clamp(clamp, HUGE).rsqrt().mul(d2.gt(clamp)));
    },
  };
}

/** Calls a user formula builder and checks that it gives a scalar formula. */
export function callPairFormula(what: string, f: PairFormula, P: LazyTensor, Q: LazyTensor): LazyTensor {
  const out = f(P, Q);
  if (!(out instanceof LazyTensor)) {
    throw new GeomLossError(
      `${what} must return a LazyTensor built from its two arguments (got ${out === null ? 'null' : typeof out})`,
    );
  }
  if (out.dim !== 1) throw new GeomLossError(`${what} must return a formula of dimension 1, got dimension ${out.dim}`);
  // A formula without its j-variable (or i-variable) is a function of one point only: the softmin
  // would still run (the potentials bring a j-variable), on a meaningless cost.
  for (const [arg, v, side] of [
    ['first', P, 'i'],
    ['second', Q, 'j'],
  ] as const) {
    if (!out.uses(v)) {
      throw new GeomLossError(
        `${what}(x, y) must depend on both of its arguments: the formula does not use its ${arg} argument (the ${side}-indexed points)`,
      );
    }
  }
  return out;
}

/** A user's cost: gradients by the core's symbolic autodiff, so any formula works. */
function customCost(cost: PairFormula): CostModel {
  return {
    overEps: (P, Q, eps) => callPairFormula('cost', cost, P, Q).mul(1 / eps),
    grad1: (P, Q) => callPairFormula('cost', cost, P, Q).grad(P, 1),
    grad2: (P, Q) => callPairFormula('cost', cost, P, Q).grad(Q, 1),
  };
}

/** The cost of the options; `clamp` is the p = 1 cost's clamp of squared distances (DIST_CLAMP in
 *  the user's units). */
export function costModel(p: number, cost: PairFormula | null, clamp = DIST_CLAMP): CostModel {
  if (cost !== null) return customCost(cost);
  return p === 1 ? cost1(clamp) : cost2;
}

/** A cloud as an i-variable and as a j-variable (built once per call). */
export interface CloudVars {
  readonly cloud: Cloud;
  readonly i: LazyTensor;
  readonly j: LazyTensor;
}

/** What the loops need from a backend. All arrays are float64, flat [B, N] (or [B, N, D]). With
 *  `ranges` (P's clusters as i, Q's as j), only the kept blocks are visited. */
export interface SoftminBackend {
  readonly dtype: 'float32' | 'float64';
  /** -eps log sum_j exp(h_j - C(p_i, q_j) / eps), for every point p_i of P. */
  softmin(P: CloudVars, Q: CloudVars, h: Float64Array, eps: number, ranges?: BlockRanges): Promise<Float64Array>;
  /** sum_j softmax_j(h_j - C(p_i, q_j) / eps) grad_1 C(p_i, q_j): [B, N_P, D]. */
  softminGrad(P: CloudVars, Q: CloudVars, h: Float64Array, eps: number, ranges?: BlockRanges): Promise<Float64Array>;
}

/** Every pair, every reduction on the core's engines. */
export class OnlineBackend implements SoftminBackend {
  /** Reductions run so far. */
  reductions = 0;
  /** The engine of the last reduction. */
  engine: EngineName = 'wasm';
  private readonly opts: {
    dtype: 'float32' | 'float64';
    engine?: 'auto' | 'wasm' | 'webgpu';
    signal?: AbortSignalLike;
  };

  constructor(
    readonly cost: CostModel,
    readonly dtype: 'float32' | 'float64',
    engine: 'auto' | 'wasm' | 'webgpu' | null,
    /** Passed to every reduction: an abort stops the loss within one reduction chunk. */
    signal: AbortSignalLike | null = null,
  ) {
    this.opts = { dtype, ...(engine === null ? {} : { engine }), ...(signal === null ? {} : { signal }) };
  }

  /** The cloud as variables of the computation's precision. */
  vars(cloud: Cloud): CloudVars {
    const data = inDType(cloud.data, this.dtype);
    const o = cloud.batched ? { dtype: this.dtype, batch: [cloud.B] } : { dtype: this.dtype };
    return { cloud, i: Vi(data, cloud.D, o), j: Vj(data, cloud.D, o) };
  }

  /** Per-point values of a cloud ([B, N, dim] flat, float64) as an i- or j-variable. */
  vector(values: Float64Array, cloud: Cloud, side: 'i' | 'j', dim = 1): LazyTensor {
    const data = this.dtype === 'float32' ? Float32Array.from(values) : values;
    const o = cloud.batched ? { dtype: this.dtype, batch: [cloud.B] } : { dtype: this.dtype };
    return side === 'i' ? Vi(data, dim, o) : Vj(data, dim, o);
  }

  private take(t: { data: Float32Array | Float64Array; engine: EngineName }): Float64Array {
    this.reductions++;
    this.engine = t.engine;
    return t.data instanceof Float64Array ? t.data : Float64Array.from(t.data);
  }

  /** The softmin's formula h_j - C(p_i, q_j) / eps, written C * (-1/eps) + h_j: the same bits (a
   *  negation is exact), in the shape the kernel fuses into one pass (multiply by a constant, then
   *  add), which saves a pass over every block of the 4 reductions per Sinkhorn step. */
  logits(P: CloudVars, Q: CloudVars, h: Float64Array, eps: number): LazyTensor {
    return this.cost.overEps(P.i, Q.j, -eps).add(this.vector(h, Q.cloud, 'j'));
  }

  private with(ranges: BlockRanges | undefined) {
    return ranges === undefined ? this.opts : { ...this.opts, ranges };
  }

  /** With `ranges`: only the kept blocks (P's clusters as i, Q's as j); +inf for a row with none. */
  async softmin(P: CloudVars, Q: CloudVars, h: Float64Array, eps: number, ranges?: BlockRanges): Promise<Float64Array> {
    const lse = this.take(await this.logits(P, Q, h, eps).logSumExp(1, this.with(ranges)));
    for (let k = 0; k < lse.length; k++) lse[k] = -eps * lse[k]!;
    return lse;
  }

  async softminGrad(
    P: CloudVars,
    Q: CloudVars,
    h: Float64Array,
    eps: number,
    ranges?: BlockRanges,
  ): Promise<Float64Array> {
    return this.take(await this.logits(P, Q, h, eps).sumSoftMaxWeight(1, this.cost.grad1(P.i, Q.j), this.with(ranges)));
  }

  /** A sum reduction of any formula over `axis`, flat. */
  async sum(formula: LazyTensor, axis: 0 | 1): Promise<Float64Array> {
    return this.take(await formula.sum(axis, this.opts));
  }
}
