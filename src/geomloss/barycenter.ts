// Wasserstein barycenters of weighted point clouds, on the public API of this module.
//
// Free support (p = 2): the support points y_i (masses w_i, fixed) move by the fixed point of
// OTT-JAX's FreeWassersteinBarycenter and POT's free_support_barycenter,
//   y_i <- sum_k lambda_k T_k(y_i),   T_k(y_i) = sum_j pi^k_ij x^k_j / sum_j pi^k_ij,
// the barycentric maps of the K entropic plans. That step is y_i <- y_i - sum_k lambda_k grad_i L_k / w_i
// with L_k = SamplesLoss(y, x_k) (debias false): its envelope gradient is w_i (y_i - T_k(y_i)). So one
// valueAndGrad per measure and iteration gives the step, and the same step with the debiased
// Sinkhorn divergence (debias: true, GeomLoss's "Lagrangian" gradient flow with unit step) removes
// the entropic shrinkage: there T_k is corrected by the self-transport map T_yy - id.
//
// Fixed support (given points z_i, masses p optimised): iterative Bregman projections (Benamou et al.
// 2015, POT's ot.bregman.barycenter), in the log domain with epsilon scaling. With u_k = exp(f_k / eps)
// on z and v_k = exp(g_k / eps) on x_k, plans pi_k = diag(u_k) K_k diag(v_k), K_k = exp(-C / eps):
//   g_k = eps log b_k - eps LSE_i((f_k,i - C(z_i, x_kj)) / eps)      (columns of pi_k equal b_k)
//   s_k = eps LSE_j((g_k,j - C(z_i, x_kj)) / eps)                     (rows: log pi_k 1 = (f_k + s_k) / eps)
//   log p = sum_k lambda_k (f_k + s_k) / eps,  f_k = eps log p - s_k   (rows: one common marginal p)
// two logSumExp reductions per measure and iteration, nothing n x M stored. The masses minimise
// sum_k lambda_k [<C, pi_k> + eps KL(pi_k | K_k)], POT's objective, which is GeomLoss's raw
// OT_eps(p, b_k) plus eps sum_i p_i log p_i: its optimality condition is
// sum_k lambda_k f_k(z_i) + eps log p_i = const, with f_k the potentials of SamplesLoss (debias false).
import {
  checkpoint,
  Tensor,
  throwIfAborted,
  Vi,
  Vj,
  type AbortSignalLike,
  type EngineName,
  type LazyTensor,
} from '../index.js';
import { parseCloud, parseWeights, type Cloud, type Points, type Weights } from './inputs.js';
import { checkSignalOption, GeomLossError, type Backend, type SamplesLossOptions } from './options.js';
import { epsilonSchedule } from './schedule.js';
import type { SamplesLoss } from './index.js';

/** One measure of a barycenter problem: points in any of SamplesLoss's single-cloud forms. */
export interface BarycenterMeasure {
  /** The points: [M_k, D] (`number[][]` or `{ data, shape }`); every measure has the same D. */
  x: Points;
  /** Their weights ([M_k], non-negative, normalised to total mass 1); default uniform. */
  a?: Weights | null;
}

/** Progress of the barycenter's outer loop, reported once per iteration. */
export interface BarycenterProgress {
  /** Iterations done so far, from 1. */
  iteration: number;
  /** The most iterations the loop may run. */
  total: number;
  /** This iteration's change: free support, the largest move of a support point (in the inputs'
   *  units); fixed support, the L1 change of the masses. */
  change: number;
}

/** Options of {@link wassersteinBarycenter}. An unknown key is a GeomLossError. */
export interface WassersteinBarycenterOptions {
  /** The barycentric weights lambda_k, one per measure, non-negative, not all zero; normalised to
   *  sum 1. Default uniform (1/K). */
  weights?: readonly number[] | Float64Array | null;
  /** The entropic blur (eps = blur^p), in the inputs' units. Default 0.05. */
  blur?: number;
  /** Cost exponent: 2 (|x - y|^2 / 2) or 1 (|x - y|, fixed support only: the barycentric map is the
   *  minimiser for p = 2 only). Default 2. */
  p?: number;
  /** Ratio of two successive temperatures of the epsilon schedule, in (0, 1). Default 0.5. */
  scaling?: number;
  /** Where the schedule starts; null: the bounding-box diagonal of all the points. Default null. */
  diameter?: number | null;
  /** Free support: the initial support points [n, D] (default: the points of the measure with the
   *  largest weight lambda_k, the first one on ties). Fixed support: the support (required). */
  support?: Points | null;
  /** Free support: the masses of the support points, positive, normalised to 1; fixed during the
   *  iteration (as in POT and OTT-JAX). Default uniform 1/n. Not accepted with `fixedSupport`. */
  supportWeights?: Weights | null;
  /** Optimise the masses on the fixed points `support` (iterative Bregman projections) instead of
   *  moving the points. Default false. */
  fixedSupport?: boolean;
  /** The most outer iterations. Free support: default 100 (each one Sinkhorn solve per measure).
   *  Fixed support: Bregman iterations, the epsilon schedule included, default 2000. */
  iterations?: number;
  /** Stop when the iteration's change (see {@link BarycenterProgress.change}) is at most tol.
   *  Default: free support 1e-4 * blur; fixed support 1e-9 in float64, 1e-5 in float32. */
  tol?: number;
  /** Free support: iterate each Sinkhorn solve to this tolerance (SamplesLoss's `convergence.tol`,
   *  on max |df| / eps, at most 10^4 extra iterations). null: GeomLoss's epsilon schedule alone, as
   *  its gradient flows do (fast; a scaling closer to 1 makes it more accurate). The averaged
   *  symmetric Sinkhorn loop converges slowly at small blur (thousands of iterations), so a tolerance
   *  costs much more per outer iteration. Default null. */
  innerTol?: number | null;
  /** Free support: the Sinkhorn divergence (debiased, no entropic shrinkage) instead of entropic
   *  OT as the objective. Fixed support accepts only false. Default false. */
  debias?: boolean;
  /** Free support: unbalanced transport with rho = reach^p (SamplesLoss's `reach`); the step is then
   *  y_i -= sum_k lambda_k grad_i L_k / w_i. null: balanced. Fixed support accepts only null. Default null. */
  reach?: number | null;
  /** Free support: SamplesLoss's backend for every solve ('multiscale': D <= 3). Fixed support runs
   *  every pair ('auto' or 'online'). Default 'auto'. */
  backend?: Backend;
  /** Precision of the reductions; default float32 when any input is a Float32Array, else float64. */
  dtype?: 'float32' | 'float64';
  /** Engine of every reduction (default: the library's default engine). */
  engine?: 'auto' | 'wasm' | 'webgpu';
  /** Called after each outer iteration. */
  onProgress?: ((info: BarycenterProgress) => void) | null;
  /** Cancels the computation: it rejects with `signal.reason` at once when already aborted, else
   *  within one reduction chunk after the abort. */
  signal?: AbortSignalLike | null;
}

/** What {@link wassersteinBarycenter} resolves to. */
export interface BarycenterResult {
  /** The support points [n, D]: Float64Array data in float64, Float32Array in float32. */
  x: Tensor<Float32Array | Float64Array>;
  /** Their masses [n] (summing to 1), always a Float64Array: free support, the support weights
   *  (unchanged); fixed support, the optimised masses. */
  a: Float64Array;
  /** How it was computed. */
  info: {
    /** Outer iterations run. */
    iterations: number;
    /** The change of the last iteration (see {@link BarycenterProgress.change}). */
    change: number;
    /** Whether `change <= tol` was reached within `iterations`. */
    converged: boolean;
    /** Per measure k, SamplesLoss's value between the returned barycenter (x, a) and measure k, with
     *  the same blur, p, scaling, diameter, dtype and (free support) debias, reach, backend and
     *  innerTol: the Sinkhorn divergence if `debias`, else entropic OT (fixed support: debias false). */
    losses: number[];
    /** sum_k lambda_k losses[k] (lambda normalised). */
    value: number;
    /** The normalised weights lambda_k. */
    weights: number[];
    /** The temperature of the last iterations (blur^p). */
    epsilon: number;
  };
}

const KEYS = new Set([
  'weights',
  'blur',
  'p',
  'scaling',
  'diameter',
  'support',
  'supportWeights',
  'fixedSupport',
  'iterations',
  'tol',
  'innerTol',
  'debias',
  'reach',
  'backend',
  'dtype',
  'engine',
  'onProgress',
  'signal',
]);

const err = (m: string) => new GeomLossError(`wassersteinBarycenter: ${m}`);
const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const show = (v: unknown) => (typeof v === 'string' ? `'${v}'` : Array.isArray(v) ? 'an array' : String(v));

interface Measure {
  cloud: Cloud;
  /** Weights normalised to 1, float64. */
  b: Float64Array;
}

/** The SamplesLoss class, passed in by index.ts (which defines it) so that this module does not
 *  import it at run time: no import cycle. */
export type SamplesLossClass = new (options?: SamplesLossOptions) => SamplesLoss;

/** {@link wassersteinBarycenter}'s implementation (index.ts wraps it with SamplesLoss). */
export async function barycenter(
  Loss: SamplesLossClass,
  measures: readonly BarycenterMeasure[],
  options: WassersteinBarycenterOptions = {},
): Promise<BarycenterResult> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw err('options must be an object');
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw err(`unknown option '${key}' (expected one of: ${[...KEYS].join(', ')})`);
  }
  const signal = checkSignalOption('signal', options.signal) ?? undefined;
  throwIfAborted(signal);
  if (!Array.isArray(measures) || measures.length === 0) throw err('measures must be a non-empty array of { x, a? }');
  const K = measures.length;
  const parsed: Measure[] = measures.map((m, k) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m) || !('x' in m))
      throw err(`measures[${k}] must be an object { x, a? }`);
    for (const key of Object.keys(m)) {
      if (key !== 'x' && key !== 'a') throw err(`measures[${k}] has an unknown key '${key}' (expected x, a)`);
    }
    const cloud = parseCloud(`measures[${k}].x`, m.x);
    if (cloud.batched) throw err(`measures[${k}].x must be one cloud [M, D], not a batch [B, M, D]`);
    return { cloud, b: normalised(parseWeights(`measures[${k}].a`, m.a, cloud)) };
  });
  const D = parsed[0]!.cloud.D;
  parsed.forEach((m, k) => {
    if (m.cloud.D !== D) throw err(`measures[${k}].x has dimension D = ${m.cloud.D} but measures[0].x has D = ${D}`);
  });

  const lambda = barycentricWeights(options.weights, K);
  const blur = options.blur ?? 0.05;
  if (!positive(blur)) throw err(`blur must be a positive number, got ${show(blur)}`);
  const p = options.p ?? 2;
  if (p !== 1 && p !== 2) throw err(`p must be 1 or 2, got ${show(p)}`);
  const scaling = options.scaling ?? 0.5;
  if (!(typeof scaling === 'number' && scaling > 0 && scaling < 1))
    throw err(`scaling must be a number in (0, 1), got ${show(scaling)}`);
  const diameter = options.diameter ?? null;
  if (diameter !== null && !positive(diameter))
    throw err(`diameter must be null or a positive number, got ${show(diameter)}`);
  const fixed = options.fixedSupport ?? false;
  if (typeof fixed !== 'boolean') throw err(`fixedSupport must be a boolean, got ${show(fixed)}`);
  const debias = options.debias ?? false;
  if (typeof debias !== 'boolean') throw err(`debias must be a boolean, got ${show(debias)}`);
  const reach = options.reach ?? null;
  if (reach !== null && !positive(reach)) throw err(`reach must be null or a positive number, got ${show(reach)}`);
  const backend = options.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'online' && backend !== 'multiscale')
    throw err(`backend must be 'auto', 'online' or 'multiscale', got ${show(backend)}`);
  const onProgress = options.onProgress ?? null;
  if (onProgress !== null && typeof onProgress !== 'function')
    throw err(`onProgress must be a function, got ${show(onProgress)}`);
  const engine = options.engine ?? null;
  if (engine !== null && engine !== 'auto' && engine !== 'wasm' && engine !== 'webgpu')
    throw err(`engine must be 'auto', 'wasm' or 'webgpu', got ${show(engine)}`);

  const support =
    options.support === undefined || options.support === null ? null : parseCloud('support', options.support);
  if (support !== null) {
    if (support.batched) throw err('support must be one cloud [n, D], not a batch');
    if (support.D !== D) throw err(`support has dimension D = ${support.D} but the measures have D = ${D}`);
  }
  const naturals = [...parsed.map((m) => m.cloud.natural), support?.natural ?? null];
  const dtype = options.dtype ?? (naturals.includes('float32') ? 'float32' : 'float64');
  if (dtype !== 'float32' && dtype !== 'float64') throw err(`dtype must be 'float32' or 'float64', got ${show(dtype)}`);
  const iterations = options.iterations ?? (fixed ? 2000 : 100);
  if (!(Number.isInteger(iterations) && iterations >= 1 && iterations <= 100_000))
    throw err(`iterations must be an integer in [1, 100000], got ${show(iterations)}`);
  const tol = options.tol ?? (fixed ? (dtype === 'float32' ? 1e-5 : 1e-9) : 1e-4 * blur);
  if (!(typeof tol === 'number' && tol >= 0 && Number.isFinite(tol)))
    throw err(`tol must be a non-negative number, got ${show(tol)}`);
  const innerTol = options.innerTol ?? null;
  if (innerTol !== null && !positive(innerTol))
    throw err(`innerTol must be null or a positive number, got ${show(innerTol)}`);

  const common = {
    lambda,
    blur,
    p,
    scaling,
    diameter,
    dtype,
    engine,
    signal,
    onProgress,
    iterations,
    tol,
    innerTol,
  } as const;
  if (fixed) {
    if (support === null) throw err('fixedSupport: true needs the support points (support: [n, D])');
    if (options.supportWeights !== undefined && options.supportWeights !== null)
      throw err('supportWeights is for free support: with fixedSupport the masses are what is computed');
    if (debias) throw err('debias: true is for free support; fixedSupport computes the entropic (raw) barycenter');
    if (reach !== null) throw err('reach is for free support; fixedSupport is balanced (reach: null)');
    if (backend === 'multiscale')
      throw err("backend 'multiscale' is for free support; fixedSupport runs every pair (backend 'auto' or 'online')");
    return fixedSupportBarycenter(Loss, parsed, support, common);
  }
  if (p !== 2)
    throw err(`free support needs p = 2 (the barycentric map minimises the quadratic cost only); got p = ${p}`);
  let init = support;
  if (init === null) {
    let best = 0;
    for (let k = 1; k < K; k++) if (lambda[k]! > lambda[best]!) best = k;
    init = parsed[best]!.cloud;
  }
  const w = normalised(parseWeights('supportWeights', options.supportWeights, { ...init, name: 'support' }));
  for (let i = 0; i < w.length; i++) {
    if (!(w[i]! > 0)) throw err(`supportWeights[${i}] is 0: a free support point needs a positive mass to be moved`);
  }
  return freeSupportBarycenter(Loss, parsed, init, w, { ...common, debias, reach, backend });
}

function normalised(w: Float64Array): Float64Array {
  let s = 0;
  for (const v of w) s += v;
  return w.map((v) => v / s);
}

function barycentricWeights(input: unknown, K: number): number[] {
  if (input === undefined || input === null) return new Array<number>(K).fill(1 / K);
  if (!Array.isArray(input) && !(input instanceof Float64Array))
    throw err(`weights must be a number[] of length ${K} (one per measure), got ${show(input)}`);
  const w = Array.from(input as ArrayLike<unknown>);
  if (w.length !== K) throw err(`weights has ${w.length} entries but there are ${K} measures`);
  let s = 0;
  w.forEach((v, k) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw err(`weights[${k}] is ${show(v)}: weights must be finite non-negative numbers`);
    s += v;
  });
  if (!(s > 0)) throw err('weights are all zero: at least one measure needs a positive weight');
  return (w as number[]).map((v) => v / s);
}

interface Common {
  lambda: number[];
  blur: number;
  p: 1 | 2;
  scaling: number;
  diameter: number | null;
  dtype: 'float32' | 'float64';
  engine: 'auto' | 'wasm' | 'webgpu' | null;
  signal: AbortSignalLike | undefined;
  onProgress: ((info: BarycenterProgress) => void) | null;
  iterations: number;
  tol: number;
  innerTol: number | null;
}

function lossOptions(c: Common, extra: SamplesLossOptions): SamplesLossOptions {
  return {
    loss: 'sinkhorn',
    p: c.p,
    blur: c.blur,
    scaling: c.scaling,
    diameter: c.diameter,
    dtype: c.dtype,
    ...(c.engine === null ? {} : { engine: c.engine }),
    signal: c.signal ?? null,
    convergence: c.innerTol === null ? null : { tol: c.innerTol, maxIter: 10_000 },
    ...extra,
  };
}

const shaped = (data: Float64Array, n: number, D: number) => ({ data, shape: [n, D] as [number, number] });

async function freeSupportBarycenter(
  Loss: SamplesLossClass,
  measures: Measure[],
  init: Cloud,
  w: Float64Array,
  c: Common & { debias: boolean; reach: number | null; backend: Backend },
): Promise<BarycenterResult> {
  const { N: n, D } = init;
  const loss = new Loss(lossOptions(c, { debias: c.debias, reach: c.reach, backend: c.backend }));
  const y = Float64Array.from(init.data);
  const targets = measures.map((m) => shaped(Float64Array.from(m.cloud.data), m.cloud.N, D));
  let change = Infinity;
  let converged = false;
  let it = 0;
  let engine: EngineName = 'wasm';
  while (it < c.iterations) {
    await checkpoint(c.signal);
    const step = new Float64Array(n * D);
    for (let k = 0; k < measures.length; k++) {
      if (c.lambda[k] === 0) continue;
      const r = await loss.valueAndGrad(shaped(y, n, D), targets[k]!, { a: w, b: measures[k]!.b });
      engine = r.info.engine;
      const g = r.grad.x.data;
      for (let i = 0; i < n; i++) {
        const s = c.lambda[k]! / w[i]!;
        for (let d = 0; d < D; d++) step[i * D + d]! += s * g[i * D + d]!;
      }
    }
    change = 0;
    for (let q = 0; q < n * D; q++) {
      y[q] = y[q]! - step[q]!;
      change = Math.max(change, Math.abs(step[q]!));
    }
    if (!Number.isFinite(change))
      throw err('the iteration diverged (a non-finite support point); try a larger blur or dtype float64');
    it++;
    c.onProgress?.({ iteration: it, total: c.iterations, change });
    if (change <= c.tol) {
      converged = true;
      break;
    }
  }
  const losses: number[] = [];
  for (let k = 0; k < measures.length; k++) {
    losses.push(await loss.value(shaped(y, n, D), targets[k]!, { a: w, b: measures[k]!.b }));
  }
  return {
    x: new Tensor(c.dtype === 'float32' ? Float32Array.from(y) : y, [n, D], engine),
    a: w,
    info: {
      iterations: it,
      change,
      converged,
      losses,
      value: losses.reduce((s, v, k) => s + c.lambda[k]! * v, 0),
      weights: c.lambda,
      epsilon: c.blur * c.blur,
    },
  };
}

/** C(p, q): |p - q|^2 / 2 or |p - q| (distances clamped at 1e-4, as GeomLoss does). */
function cost(P: LazyTensor, Q: LazyTensor, p: 1 | 2): LazyTensor {
  return p === 2 ? P.sqDist(Q).mul(0.5) : P.sqDist(Q).clamp(1e-8, 1e30).sqrt();
}

function bboxDiameter(clouds: Cloud[]): number {
  const D = clouds[0]!.D;
  const lo = new Float64Array(D).fill(Infinity);
  const hi = new Float64Array(D).fill(-Infinity);
  for (const c of clouds) {
    for (let r = 0; r < c.data.length; r += D) {
      for (let d = 0; d < D; d++) {
        lo[d] = Math.min(lo[d]!, c.data[r + d]!);
        hi[d] = Math.max(hi[d]!, c.data[r + d]!);
      }
    }
  }
  let s = 0;
  for (let d = 0; d < D; d++) s += (hi[d]! - lo[d]!) ** 2;
  return Math.sqrt(s);
}

async function fixedSupportBarycenter(
  Loss: SamplesLossClass,
  all: Measure[],
  support: Cloud,
  c: Common,
): Promise<BarycenterResult> {
  const { N: n, D } = support;
  const { dtype, signal, blur } = c;
  const ro = { dtype, signal, ...(c.engine === null ? {} : { engine: c.engine }) };
  const cast = (v: Float64Array) => (dtype === 'float32' ? Float32Array.from(v) : v);
  const zData = cast(Float64Array.from(support.data));
  const Zi = Vi(zData, D, { dtype });
  const Zj = Vj(zData, D, { dtype });
  // Measures of weight 0 do not enter; points of mass 0 neither (log 0 would reach the kernels).
  const used = all
    .map((m, k) => ({ m, k, lambda: c.lambda[k]! }))
    .filter((u) => u.lambda > 0)
    .map(({ m, lambda }) => {
      const keep: number[] = [];
      for (let j = 0; j < m.cloud.N; j++) if (m.b[j]! > 0) keep.push(j);
      const pts = new Float64Array(keep.length * D);
      keep.forEach((j, q) => pts.set(m.cloud.data.subarray(j * D, (j + 1) * D), q * D));
      const logb = Float64Array.from(keep, (j) => Math.log(m.b[j]!));
      const data = cast(pts);
      return { lambda, M: keep.length, logb, Yi: Vi(data, D, { dtype }), Yj: Vj(data, D, { dtype }) };
    });
  let dia = c.diameter ?? bboxDiameter([support, ...all.map((m) => m.cloud)]);
  if (!(dia > 0)) dia = blur;
  const schedule = epsilonSchedule(c.p, dia, blur, c.scaling);
  const f = used.map(() => new Float64Array(n));
  const g = used.map((u) => new Float64Array(u.M));
  const logp = new Float64Array(n).fill(-Math.log(n));
  let pOld = new Float64Array(n).fill(1 / n);
  let change = Infinity;
  let converged = false;
  let it = 0;
  let engine: EngineName = 'wasm';
  const lse = async (formula: LazyTensor): Promise<Float64Array> => {
    const t = await formula.logSumExp(1, ro);
    engine = t.engine;
    return t.data instanceof Float64Array ? t.data : Float64Array.from(t.data);
  };
  while (it < c.iterations) {
    await checkpoint(signal);
    const eps = schedule[Math.min(it, schedule.length - 1)]!;
    const atEnd = it >= schedule.length - 1;
    const s = await Promise.all(
      used.map(async (u, k) => {
        // g_k = eps log b_k - eps LSE_i((f_k,i - C(z_i, x_j)) / eps): i runs over the support.
        const h = f[k]!.map((v) => v / eps);
        const l = await lse(
          cost(u.Yi, Zj, c.p)
            .mul(-1 / eps)
            .add(Vj(cast(h), 1, { dtype })),
        );
        const gk = g[k]!;
        for (let j = 0; j < u.M; j++) gk[j] = eps * (u.logb[j]! - l[j]!);
        // s_k = eps LSE_j((g_k,j - C(z_i, x_j)) / eps).
        const r = await lse(
          cost(Zi, u.Yj, c.p)
            .mul(-1 / eps)
            .add(Vj(cast(gk.map((v) => v / eps)), 1, { dtype })),
        );
        return r.map((v) => eps * v);
      }),
    );
    logp.fill(0);
    used.forEach((u, k) => {
      for (let i = 0; i < n; i++) logp[i]! += (u.lambda * (f[k]![i]! + s[k]![i]!)) / eps;
    });
    const pNew = logp.map(Math.exp);
    used.forEach((_, k) => {
      for (let i = 0; i < n; i++) f[k]![i] = pNew[i]! > 0 ? eps * logp[i]! - s[k]![i]! : -Infinity;
    });
    change = 0;
    for (let i = 0; i < n; i++) change += Math.abs(pNew[i]! - pOld[i]!);
    if (!Number.isFinite(change))
      throw err('the Bregman iteration diverged (non-finite masses); try a larger blur or dtype float64');
    pOld = pNew;
    it++;
    c.onProgress?.({ iteration: it, total: c.iterations, change });
    if (atEnd && change <= c.tol) {
      converged = true;
      break;
    }
  }
  // The masses of the last projection sum to 1 up to the tolerance; normalise them exactly.
  const mass = normalised(pOld);
  const loss = new Loss(lossOptions(c, { debias: false, backend: 'online' }));
  const losses: number[] = [];
  const z = shaped(Float64Array.from(support.data), n, D);
  for (const m of all) {
    losses.push(await loss.value(z, shaped(Float64Array.from(m.cloud.data), m.cloud.N, D), { a: mass, b: m.b }));
  }
  return {
    x: new Tensor(
      dtype === 'float32' ? Float32Array.from(support.data) : Float64Array.from(support.data),
      [n, D],
      engine,
    ),
    a: mass,
    info: {
      iterations: it,
      change,
      converged,
      losses,
      value: losses.reduce((t, v, k) => t + c.lambda[k]! * v, 0),
      weights: c.lambda,
      epsilon: Math.pow(blur, c.p),
    },
  };
}
