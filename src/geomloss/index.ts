// lazytensor/geomloss: GeomLoss's SamplesLoss on symbolic matrices. Optimal-transport (Sinkhorn),
// Hausdorff and kernel (MMD) losses between weighted point clouds, with gradients, computed by
// reductions on the core's engines: memory stays O(N + M), nothing N x M is ever stored.
import { checkpoint, LazyTensor, Tensor, throwIfAborted, type BlockRanges, type EngineName } from '../index.js';
import { costModel, DIST_CLAMP, OnlineBackend, type CloudVars } from './backend.js';
import { mergeCoincident, spread, spreadWeighted, type Merged } from './coincident.js';
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
  groupByLabel,
  inDType,
  parseCloud,
  parseLabels,
  parseWeights,
  checkBalancedMasses,
  resolveDType,
  type AnyPoints,
  type BatchedPoints,
  type Cloud,
  type LabelGroups,
  type LabelledWeights,
  type Points,
  type WeightsArgument,
} from './inputs.js';
import { kernelLoss } from './kernels.js';
import {
  asEntry,
  AUTO_MULTISCALE_PAIRS,
  checkSignalOption,
  GeomLossError,
  resolveOptions,
  type CallOptions,
  type ResolvedOptions,
  type SamplesLossOptions,
} from './options.js';
import { autoPicksMultiscale, checkMultiscale, sinkhornMultiscale } from './multiscale.js';
import { spatialSort, unsort } from './spatial.js';
import { scheduleFor } from './schedule.js';
import { logits, logWeights, sinkhornLoop, sinkhornSide, type Patterns, type SinkhornResult } from './sinkhorn.js';
import { otResult, type OTResult, type SolveSamplesOptions } from './solve.js';
import {
  barycenter,
  type BarycenterMeasure,
  type BarycenterResult,
  type WassersteinBarycenterOptions,
} from './barycenter.js';

export { AUTO_MULTISCALE_PAIRS, GeomLossError, MAX_ITERATIONS } from './options.js';

/** Leaf size of the online backend's spatial order (only the order matters there). */
const ONLINE_LEAF = 8;
export type {
  Backend,
  CallOptions,
  ConvergenceOptions,
  GeomLossEntry,
  LossName,
  PairFormula,
  ProgressInfo,
  SamplesLossOptions,
} from './options.js';
export type {
  AnyPoints,
  BatchedPoints,
  Labels,
  LabelledWeights,
  Points,
  ShapedPoints,
  Weights,
  WeightsArgument,
} from './inputs.js';
export { epsilonSchedule } from './schedule.js';
export { slicedWasserstein, type SlicedWassersteinOptions, type SlicedWassersteinResult } from './sliced.js';
export type { OTResult, SolveSamplesOptions } from './solve.js';
export type {
  BarycenterMeasure,
  BarycenterProgress,
  BarycenterResult,
  WassersteinBarycenterOptions,
} from './barycenter.js';

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
      /** Sinkhorn iterations run on this level (its temperatures, 61 per temperature on the small coarse levels of at
       *  most a quarter of the points' cells, and the convergence iterations on the points). */
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
  /** A labelled batch: values holds one value per label. */
  labelled: boolean;
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
 *
 * A labelled (ragged) batch, GeomLoss's `(l_x, a, x, l_y, b, y)`, passes one label per point
 * (Sinkhorn, online): `await loss.value(x, y, { labelsX, labelsY })` is a `number[]`, one value per
 * label, computed in one pass of block-diagonal reductions (see {@link WeightsArgument}).
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

  /** The loss: a number, or one number per batch item, or per label (with `labelsX`, `labelsY`). */
  value(x: Points, y: Points, weights: LabelledWeights, call?: CallOptions): Promise<number[]>;
  value(x: Points, y: Points, weights?: WeightsArgument, call?: CallOptions): Promise<number>;
  value(x: BatchedPoints, y: BatchedPoints, weights?: WeightsArgument, call?: CallOptions): Promise<number[]>;
  value(x: AnyPoints, y: AnyPoints, weights?: WeightsArgument, call?: CallOptions): Promise<number | number[]>;
  async value(x: AnyPoints, y: AnyPoints, weights?: WeightsArgument, call?: CallOptions): Promise<number | number[]> {
    const c = await this.compute(x, y, weights, 'value', call);
    return c.x.batched || c.labelled ? Array.from(c.values) : c.values[0]!;
  }

  /** The loss and its gradients with respect to x, y, a and b (GeomLoss's: envelope theorem for
   *  Sinkhorn, no differentiation through the loop). With labels, one value per label and the
   *  gradients of their sum. */
  valueAndGrad(x: Points, y: Points, weights: LabelledWeights, call?: CallOptions): Promise<ValueAndGrad<number[]>>;
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
      value: c.x.batched || c.labelled ? Array.from(c.values) : c.values[0]!,
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
  potentials(x: Points, y: Points, weights: LabelledWeights, call?: CallOptions): Promise<PotentialsResult<number[]>>;
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
      value: c.x.batched || c.labelled ? Array.from(c.values) : c.values[0]!,
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
    if (weights?.labelsX != null || weights?.labelsY != null)
      throw new GeomLossError('transportPlan does not take labelsX / labelsY: call it once per label');
    const { X, Y, a, b, backend, multiscale, o, s, dtype, mx, my, full } = await this.prepare(x, y, weights, call);
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

  /** The call's inputs parsed, checked, rescaled and merged (coincident points), and its engine. The
   *  passes over the points yield to the event loop (10^6 points: ~0.5 s of merging otherwise). */
  private async prepare(
    xIn: unknown,
    yIn: unknown,
    weights: WeightsArgument | undefined,
    call: CallOptions | undefined,
  ) {
    const o = this.callOptions(call);
    throwIfAborted(o.signal ?? undefined);
    if (weights !== undefined && (typeof weights !== 'object' || weights === null || Array.isArray(weights))) {
      throw new GeomLossError('the third argument must be an object { a, b } of weights');
    }
    for (const key of Object.keys(weights ?? {})) {
      if (key !== 'a' && key !== 'b' && key !== 'labelsX' && key !== 'labelsY')
        throw new GeomLossError(`unknown weights key '${key}' (expected a, b, labelsX, labelsY)`);
    }
    const xIn0 = parseCloud('x', xIn);
    const yIn0 = parseCloud('y', yIn);
    checkPair(xIn0, yIn0);
    // Each pass over 10^6 points takes ~10-40 ms: the event loop runs between them.
    await checkpoint(o.signal ?? undefined);
    const labels = parseLabelled(weights, xIn0, yIn0, o);
    // A labelled batch runs on the points sorted by label (contiguous ranges); results go back to
    // the input order at the end (compute()).
    const xUser = labels ? permuted(xIn0, labels.x.perm) : xIn0;
    const yUser = labels ? permuted(yIn0, labels.y.perm) : yIn0;
    const aUser = labels ? labelWeights('a', weights?.a, xIn0, labels.x) : parseWeights('a', weights?.a, xUser);
    const bUser = labels ? labelWeights('b', weights?.b, yIn0, labels.y) : parseWeights('b', weights?.b, yUser);
    await checkpoint(o.signal ?? undefined);
    const dtype = resolveDType(o.dtype, xUser, yUser);
    if (o.loss === 'sinkhorn' && o.reach === null) checkBalancedMasses(aUser, bUser, xUser, yUser, dtype);
    checkKernelWidth(o, xUser, yUser, dtype);
    // Far from 1, the built-in losses run on coordinates divided by a power of two (rescale.ts).
    const s = scaleFor(o, xUser, yUser);
    const so = scaledOptions(o, s);
    const full = { x: scaledCloud(xUser, s), y: scaledCloud(yUser, s), a: aUser, b: bUser };
    // Sinkhorn on repeated points runs on their distinct locations (coincident.ts); not across labels.
    const signal = so.signal ?? undefined;
    const mx = so.loss === 'sinkhorn' && labels === null ? await mergeCoincident(full.x, aUser, signal) : null;
    const my = so.loss === 'sinkhorn' && labels === null ? await mergeCoincident(full.y, bUser, signal) : null;
    const x = mx?.cloud ?? full.x;
    const y = my?.cloud ?? full.y;
    const a = mx?.w ?? aUser;
    const b = my?.w ?? bUser;
    const multiscale =
      so.backend === 'multiscale' ||
      (so.backend === 'auto' &&
        labels === null &&
        so.loss === 'sinkhorn' &&
        so.cost === null &&
        !x.batched &&
        x.N * y.N >= AUTO_MULTISCALE_PAIRS &&
        autoPicksMultiscale(x, y, so));
    if (multiscale) checkMultiscale(x);
    const backend = new OnlineBackend(costModel(so.p, so.cost, DIST_CLAMP / (s * s)), dtype, so.engine, so.signal);
    const X: CloudVars = backend.vars(x);
    const Y: CloudVars = backend.vars(y);
    return { X, Y, a, b, backend, dtype, multiscale, o: so, s, mx, my, full, xUser: xIn0, yUser: yIn0, labels };
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
    const { X, Y, a, b, backend, dtype, multiscale, o, s, mx, my, xUser, yUser, full, labels } = await this.prepare(
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
    const done = (
      c: Omit<Computed, 'info' | 'x' | 'y' | 'plan' | 'labelled'>,
      plan: LazyTensor | null = null,
    ): Computed => {
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
      return { ...out, info, x: xUser, y: yUser, plan, labelled: labels !== null };
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
    if (labels !== null) {
      // L problems in one pass: every reduction is block-diagonal over the label ranges.
      const r = await sinkhornLoop(backend, X, Y, a, b, schedule, o, wantGrads, labelPatterns(labels));
      info.iterations = r.iterations;
      info.converged = r.converged;
      const g = r.grads;
      const gx = { of: labels.x.of, count: labels.L };
      const gy = { of: labels.y.of, count: labels.L };
      const sx = sinkhornSide(X.cloud, a, r.final.fBA, r.final.fAA, g?.dFBA ?? null, g?.dFAA ?? null, o, r.eps, gx);
      const sy = sinkhornSide(Y.cloud, b, r.final.gAB, r.final.gBB, g?.dGAB ?? null, g?.dGBB ?? null, o, r.eps, gy);
      const D = X.cloud.D;
      const px = labels.x.perm;
      const py = labels.y.perm;
      return done({
        values: sx.values.map((v, l) => v + sy.values[l]!),
        F: unsort(sx.F, px),
        G: unsort(sy.F, py),
        gradA: unsort(sx.gradW, px),
        gradB: unsort(sy.gradW, py),
        gradX: sx.gradP && unsort(sx.gradP, px, D),
        gradY: sy.gradP && unsort(sy.gradP, py, D),
      });
    }
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
      const signal = o.signal ?? undefined;
      const sx = await spatialSort(X.cloud, a, dtype, ONLINE_LEAF, signal);
      const sy = await spatialSort(Y.cloud, b, dtype, ONLINE_LEAF, signal);
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
  mx: Merged | null,
  my: Merged | null,
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
export function solveSamples(
  x: Points,
  y: Points,
  options: SolveSamplesOptions = {},
): Promise<OTResult<LossInfo, Gradients>> {
  return asEntry('solveSamples', () => solveSamplesNamed(x, y, options));
}

async function solveSamplesNamed(
  x: Points,
  y: Points,
  options: SolveSamplesOptions,
): Promise<OTResult<LossInfo, Gradients>> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new GeomLossError('solveSamples: options must be an object (SamplesLoss options with a, b)');
  }
  if ('labelsX' in options || 'labelsY' in options) {
    throw new GeomLossError(
      'solveSamples: options takes no labelsX / labelsY (one problem is solved); for a labelled batch use SamplesLoss.valueAndGrad(x, y, { labelsX, labelsY })',
    );
  }
  const { a, b, ...rest } = options;
  const loss = new SamplesLoss(rest);
  if (loss.options.loss !== 'sinkhorn')
    throw new GeomLossError(`solveSamples: options.loss must be 'sinkhorn', got '${loss.options.loss}'`);
  for (const [name, c] of [
    ['x', x],
    ['y', y],
  ] as const) {
    if (parseCloud(name, c).batched)
      throw new GeomLossError(`solveSamples: ${name} must be one cloud [N, D], not a batch [B, N, D]`);
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

/**
 * The Wasserstein barycenter of K weighted point clouds: the measure minimising
 * sum_k lambda_k L(measure, measures[k]), L the entropic OT (or, with `debias`, the Sinkhorn divergence)
 * of SamplesLoss at temperature blur^p.
 *
 * - **Free support** (default, p = 2): n support points with fixed masses move by the fixed point of
 *   OTT-JAX's FreeWassersteinBarycenter / POT's free_support_barycenter, y_i <- sum_k lambda_k T_k(y_i)
 *   (T_k the barycentric map of the plan to measure k), i.e. y_i -= sum_k lambda_k grad_i L_k / w_i:
 *   one converged Sinkhorn solve (SamplesLoss.valueAndGrad, on `backend`) per measure and iteration.
 * - **Fixed support** (`fixedSupport: true`, with `support`, e.g. a grid): the masses, by iterative
 *   Bregman projections in the log domain with epsilon scaling (POT's ot.bregman.barycenter: the
 *   entropy of the plans is relative to the kernel), two logSumExp reductions per measure and iteration.
 *
 * @example
 * ```ts
 * const { x, info } = await wassersteinBarycenter([{ x: x1 }, { x: x2, a: b2 }], { weights: [0.3, 0.7], blur: 0.01 });
 * const grid = await wassersteinBarycenter(measures, { fixedSupport: true, support: gridPoints, blur: 0.05 });
 * grid.a; // Float64Array of the masses on gridPoints
 * ```
 * @param measures K >= 1 clouds `{ x: [M_k, D], a?: [M_k] }` in any of SamplesLoss's single-cloud forms,
 *   all of the same D; weights are normalised to mass 1.
 * @param options See {@link WassersteinBarycenterOptions}.
 * @returns The support `x` [n, D] (a Tensor), the masses `a` (a Float64Array, summing to 1), and `info`
 *   (iterations, last change, converged, per-measure losses at the result, their weighted sum).
 * @throws GeomLossError naming the argument for a bad measure, weight or option (free support with
 *   p = 1, fixedSupport without support, debias or reach with fixedSupport, ...); rejects with the
 *   signal's reason when `signal` aborts.
 */
export function wassersteinBarycenter(
  measures: readonly BarycenterMeasure[],
  options: WassersteinBarycenterOptions = {},
): Promise<BarycenterResult> {
  return asEntry('wassersteinBarycenter', () => barycenter(SamplesLoss, measures, options));
}

interface Labelled {
  L: number;
  x: LabelGroups;
  y: LabelGroups;
}

/** The labels of a labelled batch (null without), checked against the clouds and the options. */
function parseLabelled(weights: WeightsArgument | undefined, x: Cloud, y: Cloud, o: ResolvedOptions): Labelled | null {
  const lx = weights?.labelsX ?? null;
  const ly = weights?.labelsY ?? null;
  if (lx === null && ly === null) return null;
  if (lx === null || ly === null)
    throw new GeomLossError(
      `${lx === null ? 'labelsX' : 'labelsY'} is missing: labelled batches need both labelsX and labelsY`,
    );
  if (x.batched)
    throw new GeomLossError('labelsX / labelsY label the points of single clouds [N, D], not of batches [B, N, D]');
  if (o.loss !== 'sinkhorn')
    throw new GeomLossError(`labelsX / labelsY (labelled batches) are for loss 'sinkhorn', not '${o.loss}'`);
  if (o.backend === 'multiscale')
    throw new GeomLossError(
      "labelsX / labelsY (labelled batches) run on backend 'online' (or 'auto'), not 'multiscale'",
    );
  const labelsX = parseLabels('labelsX', lx, x);
  const labelsY = parseLabels('labelsY', ly, y);
  const count = (l: Int32Array) => l.reduce((m, v) => Math.max(m, v + 1), 0);
  const L = count(labelsX);
  if (count(labelsY) !== L) {
    throw new GeomLossError(
      `labelsX has L = ${L} labels (0..${L - 1}) but labelsY has L = ${count(labelsY)} (0..${count(labelsY) - 1}): both clouds need points of every label`,
    );
  }
  return { L, x: groupByLabel('labelsX', labelsX, L, 'x'), y: groupByLabel('labelsY', labelsY, L, 'y') };
}

/** The cloud with its rows in the order `perm` (sorted row r = input row perm[r]). */
function permuted(c: Cloud, perm: Int32Array): Cloud {
  const { D } = c;
  const data = c.data instanceof Float32Array ? new Float32Array(c.data.length) : new Float64Array(c.data.length);
  for (let r = 0; r < perm.length; r++) data.set(c.data.subarray(perm[r]! * D, (perm[r]! + 1) * D), r * D);
  return { ...c, data };
}

/** A labelled cloud's weights in sorted order: the given ones (each label needs a positive mass),
 *  else uniform within each label (1/N_l: each label a probability measure, as separate calls). */
function labelWeights(name: string, input: WeightsArgument['a'], c: Cloud, g: LabelGroups): Float64Array {
  const L = g.ranges.length / 2;
  if (input === undefined || input === null) {
    const w = new Float64Array(c.N);
    for (let l = 0; l < L; l++) {
      const [lo, hi] = [g.ranges[2 * l]!, g.ranges[2 * l + 1]!];
      w.fill(1 / (hi - lo), lo, hi);
    }
    return w;
  }
  const given = parseWeights(name, input, c);
  const w = Float64Array.from(g.perm, (i) => given[i]!);
  for (let l = 0; l < L; l++) {
    let total = 0;
    for (let r = g.ranges[2 * l]!; r < g.ranges[2 * l + 1]!; r++) total += w[r]!;
    if (!(total > 0))
      throw new GeomLossError(`${name} has all-zero weights on label ${l}: each label's measure needs a positive mass`);
  }
  return w;
}

/** The block-diagonal patterns of the four problems: label l of x meets label l of y only. */
function labelPatterns(labels: Labelled): Patterns {
  const diagonal = (ri: Int32Array, rj: Int32Array): BlockRanges => {
    const slices = Int32Array.from({ length: labels.L }, (_, l) => l + 1);
    return { rangesI: ri, slicesI: slices, redRangesJ: rj, rangesJ: rj, slicesJ: slices, redRangesI: ri };
  };
  const rx = labels.x.ranges;
  const ry = labels.y.ranges;
  return { xy: diagonal(rx, ry), yx: diagonal(ry, rx), xx: diagonal(rx, rx), yy: diagonal(ry, ry) };
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
export {
  ImagesLoss,
  type Image,
  type ImageResult,
  type ImagesCallOptions,
  type ImagesLossInfo,
  type ImagesLossOptions,
  type ImagesLossResolved,
  type ImagesPotentials,
  type ImagesValueAndGrad,
} from './images.js';
export { imagesBarycenter, type ImagesBarycenter, type ImagesBarycenterOptions } from './images-barycenter.js';
