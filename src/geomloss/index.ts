// lazytensor/geomloss: GeomLoss's SamplesLoss on symbolic matrices. Optimal-transport (Sinkhorn),
// Hausdorff and kernel (MMD) losses between weighted point clouds, with gradients, computed by
// reductions on the core's engines: memory stays O(N + M), nothing N x M is ever stored.
import { LazyTensor, Tensor, type EngineName } from '../index.js';
import { costModel, DIST_CLAMP, OnlineBackend, type CloudVars } from './backend.js';
import { mergeCoincident, spread, spreadWeighted } from './coincident.js';
import {
  checkKernelWidth,
  checkResults,
  checkTemperatures,
  lossDegree,
  scaledCloud,
  scaledOptions,
  scaleFor,
  times,
} from './rescale.js';
import { hausdorffLoss } from './hausdorff.js';
import {
  checkPair,
  inDType,
  parseCloud,
  parseWeights,
  resolveDType,
  type AnyPoints,
  type BatchedPoints,
  type Cloud,
  type Points,
  type WeightsArgument,
} from './inputs.js';
import { kernelLoss } from './kernels.js';
import {
  AUTO_MULTISCALE_PAIRS,
  checkSignalOption,
  GeomLossError,
  resolveOptions,
  type CallOptions,
  type ResolvedOptions,
  type SamplesLossOptions,
} from './options.js';
import { throwIfAborted } from '../core/scheduling.js';
import { checkMultiscale, sinkhornMultiscale } from './multiscale.js';
import { spatialSort, unsort } from './spatial.js';
import { scheduleFor } from './schedule.js';
import { logits, logWeights, sinkhornLoop, sinkhornSide, type SinkhornResult } from './sinkhorn.js';
import { otResult, type OTResult, type SolveSamplesOptions } from './solve.js';

export { AUTO_MULTISCALE_PAIRS, GeomLossError, MAX_ITERATIONS } from './options.js';

/** Leaf size of the online backend's spatial order (only the order matters there). */
const ONLINE_LEAF = 8;
export type {
  Backend,
  CallOptions,
  ConvergenceOptions,
  LossName,
  PairFormula,
  ProgressInfo,
  SamplesLossOptions,
} from './options.js';
export type { AnyPoints, BatchedPoints, Points, ShapedPoints, Weights, WeightsArgument } from './inputs.js';
export { epsilonSchedule } from './schedule.js';
export { slicedWasserstein, type SlicedWassersteinOptions, type SlicedWassersteinResult } from './sliced.js';
export type { OTResult, SolveSamplesOptions } from './solve.js';

/** How a result was computed. */
export interface LossInfo {
  /** The loss computed (the `loss` option). */
  loss: ResolvedOptions['loss'];
  /** The precision the reductions ran in. */
  dtype: 'float32' | 'float64';
  /** The engine of the last reduction. */
  engine: EngineName;
  /** Reductions run (each one pass over the N x M pairs, or N x N, M x M). */
  reductions: number;
  /** Sinkhorn and Hausdorff: the temperatures of the loop (eps values), else null. */
  schedule: number[] | null;
  /** Sinkhorn and Hausdorff: the diameter the schedule starts from, else null. */
  diameter: number | null;
  /** Sinkhorn and Hausdorff: iterations of the loop (schedule plus convergence iterations). */
  iterations: number;
  /** With the convergence option: whether the tolerance was reached; otherwise null. */
  converged: boolean | null;
  /** The backend that ran: 'online' or 'multiscale' (what 'auto' chose). */
  backend: 'online' | 'multiscale';
  /** Multiscale: the clusters of x and y, the temperature after which the loop went to the fine
   *  points, and the fraction of the fine pairs in the kept blocks (xy, xx, yy); else null. */
  multiscale: {
    /** GeomLoss's coarse level: its cells in x and y. */
    clusters: {
      /** Cells holding points of x. */
      x: number;
      /** Cells holding points of y. */
      y: number;
    };
    /** The temperature after which the loop moved to the fine points. */
    jumpEpsilon: number;
    /** Every coarse level, GeomLoss's first, then finer ones where they pay (see the README): its
     *  cells and the temperature after which it handed over to the next. */
    levels: {
      /** The level's cells holding points of x and of y. */
      clusters: {
        /** Cells of x. */
        x: number;
        /** Cells of y. */
        y: number;
      };
      /** The temperature after which this level handed over to the next (finer) one. */
      untilEpsilon: number;
    }[];
    /** The fraction of the fine pairs kept at the final temperature (xy, xx, yy). */
    density: {
      /** Kept fraction of the x-y pairs. */
      xy: number;
      /** Kept fraction of the x-x pairs (null when the loss is not debiased). */
      xx: number | null;
      /** Kept fraction of the y-y pairs (null when the loss is not debiased). */
      yy: number | null;
    };
    /** The fine pairs the loop's truncated updates visited, in all (the gradients excluded). */
    finePairs: number;
    /** Every level the loop ran on, coarsest first, the points last (the hierarchy's depths that some
     *  temperature needed; see the README's multiscale section). */
    hierarchy: {
      /** The level's cells holding points of x and of y (the points themselves on the last level). */
      cells: {
        /** Cells of x. */
        x: number;
        /** Cells of y. */
        y: number;
      };
      /** The depth of the level in each cloud's k-d tree (2^depth cells, fewer where a cell is one point). */
      depth: {
        /** Depth in the tree of x. */
        x: number;
        /** Depth in the tree of y. */
        y: number;
      };
      /** The temperatures (eps) of the schedule that ran on this level. */
      temperatures: number[];
      /** Sinkhorn iterations run on this level (its temperatures, and the convergence iterations on the points). */
      iterations: number;
      /** Pairs of cells visited on this level: the loop's softmins, the extrapolation into it and, on the
       *  points, the final step and the gradients. */
      pairsVisited: number;
      /** pairsVisited over the pairs the same reductions visit without truncation (1: dense). */
      keptFraction: number;
    }[];
    /** Every pair visited, all levels together, gradients included. */
    pairsVisited: number;
    /** pairsVisited / (n log2 n), n the larger of N and M: roughly constant as n grows when the solve
     *  is O(n log n). */
    pairsPerNLogN: number;
  } | null;
}

/** Gradients of the value (of the sum of the values for a batch), shaped like the inputs:
 *  x [N, D] or [B, N, D], a [N] or [B, N]. Float64Array data in float64, Float32Array in float32. */
export interface Gradients {
  /** d value / d x: shape [N, D] or [B, N, D]. */
  x: Tensor<Float32Array | Float64Array>;
  /** d value / d y: shape [M, D] or [B, M, D]. */
  y: Tensor<Float32Array | Float64Array>;
  /** d value / d a (the weights of x): shape [N] or [B, N]. */
  a: Tensor<Float32Array | Float64Array>;
  /** d value / d b (the weights of y): shape [M] or [B, M]. */
  b: Tensor<Float32Array | Float64Array>;
}

/** What `SamplesLoss.valueAndGrad` returns; V is `number`, or `number[]` for a batch. */
export interface ValueAndGrad<V> {
  /** The loss (one value per batch item for a batch). */
  value: V;
  /** Its gradients with respect to x, y, a and b. */
  grad: Gradients;
  /** How it was computed. */
  info: LossInfo;
}

/** GeomLoss's potentials=True output: f on x ([N] or [B, N]) and g on y. */
export interface PotentialsResult<V> {
  /** The potential on the points of x: shape [N] or [B, N]. */
  f: Tensor<Float32Array | Float64Array>;
  /** The potential on the points of y: shape [M] or [B, M]. */
  g: Tensor<Float32Array | Float64Array>;
  /** The loss, as `value()` returns it. */
  value: V;
  /** How it was computed. */
  info: LossInfo;
}

type Mode = 'value' | 'grad' | 'potentials';

interface Computed {
  values: Float64Array;
  F: Float64Array | null;
  G: Float64Array | null;
  gradX: Float64Array | null;
  gradY: Float64Array | null;
  gradA: Float64Array | null;
  gradB: Float64Array | null;
  info: LossInfo;
  x: Cloud;
  y: Cloud;
  /** Sinkhorn (unbatched): the transport plan of this solve, as transportPlan builds it; else null. */
  plan: LazyTensor | null;
}

/**
 * A loss between weighted point clouds, as GeomLoss's `SamplesLoss`:
 * ```ts
 * const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur: 0.05, scaling: 0.5 });
 * const L = await loss.value(x, y);
 * const { value, grad } = await loss.valueAndGrad(x, y, { a, b });
 * ```
 * A batch ([B, N, D] clouds) gives one value per item; the Sinkhorn and Hausdorff losses then use one
 * epsilon schedule for the whole batch, from the diameter of all the items' points together (as
 * GeomLoss does), so an item's value can depend on the other items through that schedule.
 */
export class SamplesLoss {
  /** The options with every default filled in. */
  readonly options: Readonly<ResolvedOptions>;

  /**
   * Checks and freezes the options (defaults: GeomLoss's, see {@link SamplesLossOptions}).
   * @throws GeomLossError for an unknown key or an impossible value (blur <= 0, p not 1 or 2 without `cost`, ...).
   */
  constructor(options?: SamplesLossOptions) {
    this.options = Object.freeze(resolveOptions(options));
  }

  /** The loss: a number, or one number per batch item. */
  value(x: Points, y: Points, weights?: WeightsArgument, call?: CallOptions): Promise<number>;
  value(x: BatchedPoints, y: BatchedPoints, weights?: WeightsArgument, call?: CallOptions): Promise<number[]>;
  value(x: AnyPoints, y: AnyPoints, weights?: WeightsArgument, call?: CallOptions): Promise<number | number[]>;
  async value(x: AnyPoints, y: AnyPoints, weights?: WeightsArgument, call?: CallOptions): Promise<number | number[]> {
    const c = await this.compute(x, y, weights, 'value', call);
    return c.x.batched ? Array.from(c.values) : c.values[0]!;
  }

  /** The loss and its gradients with respect to x, y, a and b (GeomLoss's: envelope theorem for
   *  Sinkhorn, no differentiation through the loop). */
  valueAndGrad(x: Points, y: Points, weights?: WeightsArgument, call?: CallOptions): Promise<ValueAndGrad<number>>;
  valueAndGrad(
    x: BatchedPoints,
    y: BatchedPoints,
    weights?: WeightsArgument,
    call?: CallOptions,
  ): Promise<ValueAndGrad<number[]>>;
  valueAndGrad(
    x: AnyPoints,
    y: AnyPoints,
    weights?: WeightsArgument,
    call?: CallOptions,
  ): Promise<ValueAndGrad<number | number[]>>;
  async valueAndGrad(
    x: AnyPoints,
    y: AnyPoints,
    weights?: WeightsArgument,
    call?: CallOptions,
  ): Promise<ValueAndGrad<number | number[]>> {
    const c = await this.compute(x, y, weights, 'grad', call);
    const dtype = c.info.dtype;
    const engine = c.info.engine;
    return {
      value: c.x.batched ? Array.from(c.values) : c.values[0]!,
      grad: {
        x: tensor(c.gradX!, pointShape(c.x), dtype, engine),
        y: tensor(c.gradY!, pointShape(c.y), dtype, engine),
        a: tensor(c.gradA!, weightShape(c.x), dtype, engine),
        b: tensor(c.gradB!, weightShape(c.y), dtype, engine),
      },
      info: c.info,
    };
  }

  /**
   * The dual potentials, as GeomLoss's `potentials=True`: Sinkhorn f = f_ba - f_aa and g = g_ab - g_bb
   * (debias) or f_ba, g_ab (raw); kernels f = K_xx a - K_xy b, g = K_yy b - K_yx a; Hausdorff
   * f = B(x) - A(x), g = A(y) - B(y).
   */
  potentials(x: Points, y: Points, weights?: WeightsArgument, call?: CallOptions): Promise<PotentialsResult<number>>;
  potentials(
    x: BatchedPoints,
    y: BatchedPoints,
    weights?: WeightsArgument,
    call?: CallOptions,
  ): Promise<PotentialsResult<number[]>>;
  potentials(
    x: AnyPoints,
    y: AnyPoints,
    weights?: WeightsArgument,
    call?: CallOptions,
  ): Promise<PotentialsResult<number | number[]>>;
  async potentials(
    x: AnyPoints,
    y: AnyPoints,
    weights?: WeightsArgument,
    call?: CallOptions,
  ): Promise<PotentialsResult<number | number[]>> {
    const c = await this.compute(x, y, weights, 'potentials', call);
    const { dtype, engine } = c.info;
    return {
      f: tensor(c.F!, weightShape(c.x), dtype, engine),
      g: tensor(c.G!, weightShape(c.y), dtype, engine),
      value: c.x.batched ? Array.from(c.values) : c.values[0]!,
      info: c.info,
    };
  }

  /**
   * The entropic transport plan pi_ij = a_i b_j exp((f_i + g_j - C(x_i, y_j)) / eps) as a symbolic
   * N x M matrix (eps = blur^p, f = f_ba and g = g_ab the final, non-debiased potentials), never stored:
   * reduce it. `plan.sum(1)` gives the row sums (a, at convergence of a balanced problem),
   * `plan.mul(Vj(y)).sum(1)` divided by them the barycentric map, `plan.argMax(1)` a matching.
   * Sinkhorn only (a GeomLossError otherwise).
   * @example
   * ```ts
   * const plan = await new SamplesLoss({ blur: 0.01, convergence: true }).transportPlan(x, y);
   * const mass = await plan.sum(1);                 // [N, 1]: a
   * const target = await plan.mul(Vj(y)).sum(1);   // [N, D]: divide row i by mass[i]
   * ```
   */
  async transportPlan(x: AnyPoints, y: AnyPoints, weights?: WeightsArgument, call?: CallOptions): Promise<LazyTensor> {
    if (this.options.loss !== 'sinkhorn')
      throw new GeomLossError(`transportPlan is defined for loss 'sinkhorn', not '${this.options.loss}'`);
    const { X, Y, a, b, backend, multiscale, o, s, dtype, mx, my, full } = this.prepare(x, y, weights, call);
    const { schedule, diameter } = scheduleFor(X.cloud, Y.cloud, o);
    checkTemperatures(this.options, o, diameter, s, dtype);
    let fBA: Float64Array;
    let gAB: Float64Array;
    let eps: number;
    if (multiscale) {
      const m = await sinkhornMultiscale(backend, X.cloud, Y.cloud, a, b, schedule, diameter, o, false);
      fBA = unsort(m.r.final.fBA, m.permX);
      gAB = unsort(m.r.final.gAB, m.permY);
      eps = m.r.eps;
    } else {
      const r = await sinkhornLoop(backend, X, Y, a, b, schedule, o, false);
      fBA = r.final.fBA;
      gAB = r.final.gAB;
      eps = r.eps;
    }
    return planOf(backend, X, Y, full, mx, my, fBA, gAB, eps);
  }

  private prepare(xIn: unknown, yIn: unknown, weights: WeightsArgument | undefined, call: CallOptions | undefined) {
    const o = this.callOptions(call);
    throwIfAborted(o.signal ?? undefined);
    if (weights !== undefined && (typeof weights !== 'object' || weights === null || Array.isArray(weights))) {
      throw new GeomLossError('the third argument must be an object { a, b } of weights');
    }
    for (const key of Object.keys(weights ?? {})) {
      if (key !== 'a' && key !== 'b') throw new GeomLossError(`unknown weights key '${key}' (expected a, b)`);
    }
    const xUser = parseCloud('x', xIn);
    const yUser = parseCloud('y', yIn);
    checkPair(xUser, yUser);
    const aUser = parseWeights('a', weights?.a, xUser);
    const bUser = parseWeights('b', weights?.b, yUser);
    const dtype = resolveDType(o.dtype, xUser, yUser);
    checkKernelWidth(o, xUser, yUser, dtype);
    // Far from 1, the built-in losses run on coordinates divided by a power of two (rescale.ts).
    const s = scaleFor(o, xUser, yUser);
    const so = scaledOptions(o, s);
    const full = { x: scaledCloud(xUser, s), y: scaledCloud(yUser, s), a: aUser, b: bUser };
    // Sinkhorn on repeated points runs on their distinct locations (coincident.ts).
    const mx = so.loss === 'sinkhorn' ? mergeCoincident(full.x, aUser) : null;
    const my = so.loss === 'sinkhorn' ? mergeCoincident(full.y, bUser) : null;
    const x = mx?.cloud ?? full.x;
    const y = my?.cloud ?? full.y;
    const a = mx?.w ?? aUser;
    const b = my?.w ?? bUser;
    const multiscale =
      so.backend === 'multiscale' ||
      (so.backend === 'auto' &&
        so.loss === 'sinkhorn' &&
        so.cost === null &&
        x.D <= 3 &&
        !x.batched &&
        x.N * y.N >= AUTO_MULTISCALE_PAIRS);
    if (multiscale) checkMultiscale(x);
    const backend = new OnlineBackend(costModel(so.p, so.cost, DIST_CLAMP / (s * s)), dtype, so.engine, so.signal);
    const X: CloudVars = backend.vars(x);
    const Y: CloudVars = backend.vars(y);
    return { X, Y, a, b, backend, dtype, multiscale, o: so, s, mx, my, full, xUser, yUser };
  }

  /** The options of one call: the loss's, with the call's signal when it gives one. */
  private callOptions(call: CallOptions | undefined): ResolvedOptions {
    if (call === undefined || call === null) return this.options;
    if (typeof call !== 'object' || Array.isArray(call))
      throw new GeomLossError('the last argument must be an object { signal }');
    for (const key of Object.keys(call)) {
      if (key !== 'signal') throw new GeomLossError(`unknown call option '${key}' (expected signal)`);
    }
    const signal = checkSignalOption('signal', call.signal);
    return signal === null ? this.options : { ...this.options, signal };
  }

  private async compute(
    xIn: unknown,
    yIn: unknown,
    weights: WeightsArgument | undefined,
    mode: Mode,
    call: CallOptions | undefined,
  ): Promise<Computed> {
    const { X, Y, a, b, backend, dtype, multiscale, o, s, mx, my, xUser, yUser, full } = this.prepare(
      xIn,
      yIn,
      weights,
      call,
    );
    const wantGrads = mode === 'grad';
    const info: LossInfo = {
      loss: o.loss,
      dtype,
      engine: 'wasm',
      reductions: 0,
      schedule: null,
      diameter: null,
      iterations: 0,
      converged: null,
      backend: 'online',
      multiscale: null,
    };
    /** The results on the input points (merged ones spread back), in the user's units, checked. */
    const done = (c: Omit<Computed, 'info' | 'x' | 'y' | 'plan'>, plan: LazyTensor | null = null): Computed => {
      info.reductions = backend.reductions;
      info.engine = backend.engine;
      const D = X.cloud.D;
      const out = {
        values: c.values,
        F: mx && c.F ? spread(c.F, mx) : c.F,
        G: my && c.G ? spread(c.G, my) : c.G,
        gradA: mx && c.gradA ? spread(c.gradA, mx) : c.gradA,
        gradB: my && c.gradB ? spread(c.gradB, my) : c.gradB,
        gradX: mx && c.gradX ? spreadWeighted(c.gradX, mx, D) : c.gradX,
        gradY: my && c.gradY ? spreadWeighted(c.gradY, my, D) : c.gradY,
      };
      if (s !== 1) {
        const q = lossDegree(o);
        const sq = Math.pow(s, q);
        const sq1 = Math.pow(s, q - 1);
        out.values = times(out.values, sq);
        out.F = times(out.F, sq);
        out.G = times(out.G, sq);
        out.gradA = times(out.gradA, sq);
        out.gradB = times(out.gradB, sq);
        out.gradX = times(out.gradX, sq1);
        out.gradY = times(out.gradY, sq1);
        if (info.schedule !== null) info.schedule = info.schedule.map((e) => e * Math.pow(s, o.p));
        const ms = info.multiscale;
        if (ms !== null) {
          const sp = Math.pow(s, o.p);
          ms.jumpEpsilon *= sp;
          for (const l of ms.levels) l.untilEpsilon *= sp;
          for (const l of ms.hierarchy) l.temperatures = l.temperatures.map((e) => e * sp);
        }
        if (info.diameter !== null) info.diameter *= s;
      }
      // value() and valueAndGrad() fail alike on a result float32 cannot hold.
      checkResults(
        mode === 'value'
          ? { value: out.values }
          : {
              value: out.values,
              'potential f': out.F,
              'potential g': out.G,
              'gradient of x': out.gradX,
              'gradient of y': out.gradY,
            },
        dtype,
        o,
      );
      return { ...out, info, x: xUser, y: yUser, plan };
    };

    if (o.loss === 'energy' || o.loss === 'gaussian' || o.loss === 'laplacian') {
      const r = await kernelLoss(backend, X, Y, a, b, o, wantGrads, DIST_CLAMP / (s * s));
      return done({
        values: r.values,
        F: r.gradA,
        G: r.gradB,
        gradA: r.gradA,
        gradB: r.gradB,
        gradX: r.gradX,
        gradY: r.gradY,
      });
    }

    const { schedule, diameter } = scheduleFor(X.cloud, Y.cloud, o);
    checkTemperatures(this.options, o, diameter, s, dtype);
    info.schedule = schedule;
    info.diameter = diameter;
    if (o.loss === 'hausdorff') {
      const r = await hausdorffLoss(backend, X, Y, a, b, schedule, o, wantGrads);
      info.iterations = r.iterations;
      info.converged = r.converged;
      return done({ values: r.values, F: r.F, G: r.G, gradA: r.gradA, gradB: r.gradB, gradX: r.gradX, gradY: r.gradY });
    }

    // Both backends run on the clouds in spatial (k-d tree) order, and the results go back to the
    // user's order: multiscale needs it for its tiles, online for the kernel's skipping of
    // underflowing runs (spatial.ts). A batch keeps its order (one order cannot serve every item).
    let run: {
      r: SinkhornResult;
      x: Cloud;
      y: Cloud;
      a: Float64Array;
      b: Float64Array;
      permX: Int32Array | null;
      permY: Int32Array | null;
    };
    if (multiscale) {
      const m = await sinkhornMultiscale(backend, X.cloud, Y.cloud, a, b, schedule, diameter, o, wantGrads);
      info.backend = 'multiscale';
      const n = Math.max(X.cloud.N, Y.cloud.N);
      info.multiscale = {
        clusters: m.clusters,
        jumpEpsilon: schedule[Math.max(0, m.jump)]!,
        levels: m.levels.map((l) => ({ clusters: l.clusters, untilEpsilon: schedule[l.jump]! })),
        density: m.density,
        finePairs: m.finePairs,
        hierarchy: m.hierarchy.map((l) => ({
          cells: l.cells,
          depth: l.depth,
          temperatures: l.temperatures,
          iterations: l.iterations,
          pairsVisited: l.pairs,
          keptFraction: l.densePairs > 0 ? l.pairs / l.densePairs : 1,
        })),
        pairsVisited: m.pairsVisited,
        pairsPerNLogN: m.pairsVisited / (n * Math.max(1, Math.log2(n))),
      };
      run = m;
    } else if (!X.cloud.batched) {
      const sx = spatialSort(X.cloud, a, dtype, ONLINE_LEAF);
      const sy = spatialSort(Y.cloud, b, dtype, ONLINE_LEAF);
      const r = await sinkhornLoop(
        backend,
        backend.vars(sx.cloud),
        backend.vars(sy.cloud),
        sx.w,
        sy.w,
        schedule,
        o,
        wantGrads,
      );
      run = { r, x: sx.cloud, y: sy.cloud, a: sx.w, b: sy.w, permX: sx.perm, permY: sy.perm };
    } else {
      const r = await sinkhornLoop(backend, X, Y, a, b, schedule, o, wantGrads);
      run = { r, x: X.cloud, y: Y.cloud, a, b, permX: null, permY: null };
    }
    const { r, permX, permY } = run;
    info.iterations = r.iterations;
    info.converged = r.converged;
    const g = r.grads;
    const sx = sinkhornSide(run.x, run.a, r.final.fBA, r.final.fAA, g?.dFBA ?? null, g?.dFAA ?? null, o, r.eps);
    const sy = sinkhornSide(run.y, run.b, r.final.gAB, r.final.gBB, g?.dGAB ?? null, g?.dGBB ?? null, o, r.eps);
    const values = sx.values.map((v, k) => v + sy.values[k]!);
    const D = X.cloud.D;
    const back = (v: Float64Array, perm: Int32Array | null, dim = 1) => (perm === null ? v : unsort(v, perm, dim));
    // The plan of this very solve (solveSamples): the final non-debiased potentials, as transportPlan.
    const plan =
      !wantGrads || X.cloud.batched
        ? null
        : planOf(backend, X, Y, full, mx, my, back(r.final.fBA, permX), back(r.final.gAB, permY), r.eps);
    return done(
      {
        values,
        F: back(sx.F, permX),
        G: back(sy.F, permY),
        gradA: back(sx.gradW, permX),
        gradB: back(sy.gradW, permY),
        gradX: sx.gradP && back(sx.gradP, permX, D),
        gradY: sy.gradP && back(sy.gradP, permY, D),
      },
      plan,
    );
  }
}

/** pi_ij = a_i b_j exp((f_i + g_j - C(x_i, y_j)) / eps) on the input points (coincident ones were
 *  merged: fBA and gAB are on the merged points, each input point gets its own weight). */
function planOf(
  backend: OnlineBackend,
  X: CloudVars,
  Y: CloudVars,
  full: { x: Cloud; y: Cloud; a: Float64Array; b: Float64Array },
  mx: ReturnType<typeof mergeCoincident>,
  my: ReturnType<typeof mergeCoincident>,
  fBA: Float64Array,
  gAB: Float64Array,
  eps: number,
): LazyTensor {
  if (mx !== null) fBA = spread(fBA, mx);
  if (my !== null) gAB = spread(gAB, my);
  const u = logits(logWeights(full.a), fBA, eps);
  const v = logits(logWeights(full.b), gAB, eps);
  const FX = mx === null ? X : backend.vars(full.x);
  const FY = my === null ? Y : backend.vars(full.y);
  return backend
    .vector(u, FX.cloud, 'i')
    .add(backend.vector(v, FY.cloud, 'j'))
    .sub(backend.cost.overEps(FX.i, FY.j, eps))
    .exp();
}

/**
 * One Sinkhorn solve between two point clouds, as one result object (POT's and geomloss.ot's
 * convention): value, potentials f and g, the plan, its marginals and barycentric map, the gradients.
 * Value, potentials, plan and gradients come from the same solve (one run of the Sinkhorn loop: what
 * `valueAndGrad` costs); `marginals()` and `barycentricMap()` reduce the plan on demand, once.
 * @example
 * ```ts
 * const ot = await solveSamples(x, y, { a, b, blur: 0.01, convergence: true });
 * const { rows, cols } = await ot.marginals();   // ~ a, b
 * const T = await ot.barycentricMap();            // [N, D]
 * ```
 * @param x [N, D] points, in any of SamplesLoss's single-cloud forms (batches are not accepted).
 * @param y [M, D] points.
 * @param options SamplesLoss's options (loss must be 'sinkhorn', the default) with the weights a, b.
 * @throws GeomLossError as SamplesLoss does for bad points, weights or options; for a loss other than
 *   'sinkhorn' or a batch.
 */
export async function solveSamples(
  x: Points,
  y: Points,
  options: SolveSamplesOptions = {},
): Promise<OTResult<LossInfo, Gradients>> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new GeomLossError('solveSamples: options must be an object (SamplesLoss options with a, b)');
  }
  const { a, b, ...rest } = options;
  const loss = new SamplesLoss(rest);
  if (loss.options.loss !== 'sinkhorn')
    throw new GeomLossError(`solveSamples solves loss 'sinkhorn', not '${loss.options.loss}'`);
  for (const [name, c] of [
    ['x', x],
    ['y', y],
  ] as const) {
    if (parseCloud(name, c).batched)
      throw new GeomLossError(`${name}: solveSamples takes one cloud [N, D], not a batch [B, N, D]`);
  }
  // compute() is SamplesLoss's own solve; bracket access keeps it off the public class.
  const c = await loss['compute'](x, y, { a, b }, 'grad', undefined);
  const { dtype, engine } = c.info;
  return otResult({
    value: c.values[0]!,
    f: tensor(c.F!, weightShape(c.x), dtype, engine),
    g: tensor(c.G!, weightShape(c.y), dtype, engine),
    plan: c.plan!,
    grad: {
      x: tensor(c.gradX!, pointShape(c.x), dtype, engine),
      y: tensor(c.gradY!, pointShape(c.y), dtype, engine),
      a: tensor(c.gradA!, weightShape(c.x), dtype, engine),
      b: tensor(c.gradB!, weightShape(c.y), dtype, engine),
    },
    info: c.info,
    y: inDType(c.y.data, dtype),
    D: c.y.D,
    signal: loss.options.signal ?? undefined,
  });
}

function pointShape(c: Cloud): number[] {
  return c.batched ? [c.B, c.N, c.D] : [c.N, c.D];
}

function weightShape(c: Cloud): number[] {
  return c.batched ? [c.B, c.N] : [c.N];
}

function tensor(
  data: Float64Array,
  shape: number[],
  dtype: 'float32' | 'float64',
  engine: EngineName,
): Tensor<Float32Array | Float64Array> {
  return new Tensor(dtype === 'float32' ? Float32Array.from(data) : data, shape, engine);
}
