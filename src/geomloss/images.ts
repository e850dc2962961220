// ImagesLoss: GeomLoss's Sinkhorn divergence between two images (or volumes) seen as measures on the
// pixel centres of the unit square (cube), solved on the grid. The loop is SamplesLoss's
// (sinkhorn.ts: the same epsilon schedule, symmetric averaged updates, unbalanced damping, final
// extrapolation and value formulas), but each softmin is a separable log-domain Gaussian convolution
// (images-grid.ts) instead of a reduction over all pixel pairs, so that with the same options the two
// give the same numbers (tests/geomloss/images.test.ts), at O(N (H + W)) per softmin instead of O(N^2).
// Optionally (`pyramid`) the early, large temperatures run on sum-pooled copies of the images, as
// GeomLoss's multiscale backend runs them on cluster centroids.
import { checkpoint, throwIfAborted, type AbortSignalLike } from '../index.js';
import {
  checkSameShape,
  coarserGrid,
  imageResult,
  logConvolve,
  meteredMap,
  logMassesMetered,
  Meter,
  outputDType,
  parseImage,
  sumPool,
  unitGrid,
  type Grid,
  type Image,
  type ImageResult,
  type ParsedImage,
} from './images-grid.js';
import {
  asEntry,
  AUTO_MULTISCALE_PAIRS,
  checkSignalOption,
  GeomLossError,
  resolveOptions,
  type ConvergenceOptions,
  type ProgressInfo,
} from './options.js';
import { checkTemperatures } from './rescale.js';
import { epsilonSchedule } from './schedule.js';

export type { Image, ImageResult } from './images-grid.js';

/** Options of `new ImagesLoss(options)`: SamplesLoss's names and defaults where they apply. */
export interface ImagesLossOptions {
  /** The finest scale: epsilon = blur^2 at the end of the schedule, in units of the unit square. Default 0.05. */
  blur?: number;
  /** Exponent of the cost: 2 only (|x - y|^2 / 2, whose Gaussian kernel is separable). Default 2. */
  p?: number;
  /** The ratio between two temperatures of the schedule, in (0, 1). Default 0.5. */
  scaling?: number;
  /** Unbalanced OT: the scale of the marginal penalty (rho = reach^2); the pixel values are then the
   *  masses as given (not normalised). null = balanced, masses normalised to 1. Default null. */
  reach?: number | null;
  /** Sinkhorn divergence (true) or raw entropic OT (false). Default true. */
  debias?: boolean;
  /** The largest distance, from which the epsilon schedule starts; null = the diagonal of the unit
   *  square / cube, sqrt(2) or sqrt(3). Default null. */
  diameter?: number | null;
  /** Coarse-to-fine: run the temperatures with 2 * cell <= sqrt(eps) on sum-pooled (2 x 2, 2 x 2 x 2)
   *  copies of the images (each level's cell twice the last), move the potentials to the next finer
   *  level by one softmin, and end on the full grid. Not exactly SamplesLoss's schedule (the coarse
   *  iterations see pooled images), as SamplesLoss's multiscale backend is not its online one.
   *  'auto': from 5000 pixels (N^2 >= AUTO_MULTISCALE_PAIRS, where SamplesLoss goes multiscale).
   *  Default 'auto'. */
  pyramid?: boolean | 'auto';
  /** Iterate at the final temperature until the potentials settle: true for the defaults
   *  ({ tol: 1e-6, maxIter: 1000 }; tol is on max |change| / eps), or { tol, maxIter }. Default null. */
  convergence?: ConvergenceOptions | boolean | null;
  /** Unbalanced: the exact gradients (weight rho + eps) instead of GeomLoss's (rho + eps/2). Default false. */
  exactUnbalancedGradients?: boolean;
  /** The precision of the returned arrays (gradients, potentials); the computation is float64 either
   *  way. Default: float32 when both images are Float32Arrays, else float64. */
  dtype?: 'float32' | 'float64';
  /** Called after each Sinkhorn iteration, as SamplesLoss's. */
  onProgress?: ((info: ProgressInfo) => void) | null;
  /** Cancels every computation of this loss (a call's own `{ signal }` takes precedence): a call
   *  rejects with `signal.reason`, at once when already aborted, else within a few milliseconds. */
  signal?: AbortSignalLike | null;
}

/** Options of one call of ImagesLoss. */
export interface ImagesCallOptions {
  /** Cancels this call (instead of the loss's `signal`). */
  signal?: AbortSignalLike | null;
}

/** How an ImagesLoss result was computed. */
export interface ImagesLossInfo {
  /** The precision of the returned arrays. */
  dtype: 'float32' | 'float64';
  /** The temperatures of the loop (eps values). */
  schedule: number[];
  /** The diameter the schedule starts from. */
  diameter: number;
  /** Iterations of the loop (schedule plus convergence iterations). */
  iterations: number;
  /** With the convergence option: whether the tolerance was reached; otherwise null. */
  converged: boolean | null;
  /** The grids the loop ran on, coarsest first (one entry without the pyramid): each level's shape
   *  and the last temperature it ran at (the full grid's: the final one). */
  levels: {
    /** The level's shape. */
    shape: number[];
    /** The last temperature of the schedule run on this level. */
    untilEpsilon: number;
  }[];
}

/** What `ImagesLoss.valueAndGrad` returns. */
export interface ImagesValueAndGrad {
  /** The loss. */
  value: number;
  /** Its gradients with respect to the pixel values of A and B (through the normalisation to mass 1
   *  when balanced), shaped like the images. */
  grad: {
    /** d value / d A.data. */
    A: ImageResult;
    /** d value / d B.data. */
    B: ImageResult;
  };
  /** How it was computed. */
  info: ImagesLossInfo;
}

/** What `ImagesLoss.potentials` returns: SamplesLoss's potentials on the pixel centres. */
export interface ImagesPotentials {
  /** f = f_ba - f_aa (debias) or f_ba, on the pixels of A (every pixel, those of mass 0 too). */
  f: ImageResult;
  /** g = g_ab - g_bb (debias) or g_ab, on the pixels of B. */
  g: ImageResult;
  /** The loss. */
  value: number;
  /** How it was computed. */
  info: ImagesLossInfo;
}

/** The resolved options of an ImagesLoss. */
export interface ImagesLossResolved {
  /** Blur. */
  blur: number;
  /** Always 2. */
  p: number;
  /** Scaling. */
  scaling: number;
  /** Reach (null: balanced). */
  reach: number | null;
  /** Debias. */
  debias: boolean;
  /** Diameter (null: sqrt(D)). */
  diameter: number | null;
  /** Pyramid. */
  pyramid: boolean | 'auto';
  /** Convergence ({ tol: null } = the default tolerance). */
  convergence: {
    /** The tolerance on max |change| / eps (null: 1e-6). */
    tol: number | null;
    /** The most extra iterations. */
    maxIter: number;
  } | null;
  /** Exact unbalanced gradients. */
  exactUnbalancedGradients: boolean;
  /** The output precision (null: from the inputs). */
  dtype: 'float32' | 'float64' | null;
  /** Progress callback. */
  onProgress: ((info: ProgressInfo) => void) | null;
  /** Signal. */
  signal: AbortSignalLike | null;
}

const KEYS = [
  'blur',
  'p',
  'scaling',
  'reach',
  'debias',
  'diameter',
  'pyramid',
  'convergence',
  'exactUnbalancedGradients',
  'dtype',
  'onProgress',
  'signal',
] as const;

function resolveImagesOptions(options: ImagesLossOptions | undefined): ImagesLossResolved {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new GeomLossError('ImagesLoss: options must be an object');
  const keys: readonly string[] = KEYS;
  for (const key of Object.keys(options)) {
    if (!keys.includes(key))
      throw new GeomLossError(`ImagesLoss: unknown option '${key}' (expected one of: ${KEYS.join(', ')})`);
  }
  const { pyramid = 'auto', ...shared } = options;
  const o = resolveOptions(shared);
  if (o.p !== 2) {
    throw new GeomLossError(
      `ImagesLoss: p = ${o.p} is not supported: the grid solver needs the separable Gaussian kernel of p = 2 (cost |x - y|^2 / 2); for p = 1 use SamplesLoss on the pixel centres`,
    );
  }
  if (pyramid !== true && pyramid !== false && pyramid !== 'auto')
    throw new GeomLossError(`ImagesLoss: pyramid must be true, false or 'auto', got ${String(pyramid)}`);
  return {
    blur: o.blur,
    p: 2,
    scaling: o.scaling,
    reach: o.reach,
    debias: o.debias,
    diameter: o.diameter,
    pyramid,
    convergence: o.convergence,
    exactUnbalancedGradients: o.exactUnbalancedGradients,
    dtype: o.dtype,
    onProgress: o.onProgress,
    signal: o.signal,
  };
}

/** One level of the pyramid: its grid and the masses of A and B on it. */
interface Level {
  grid: Grid;
  la: Float64Array;
  lb: Float64Array;
}

interface Potentials {
  fBA: Float64Array;
  gAB: Float64Array;
  fAA: Float64Array | null;
  gBB: Float64Array | null;
}

const damping = (eps: number, rho: number | null): number => (rho === null ? 1 : 1 / (1 + eps / rho));

/** rho (1 - exp(-f / rho)), accurate for small f / rho (and f itself for rho = Infinity). */
function phi(f: number, rho: number): number {
  const t = f / rho;
  return Math.abs(t) < 1e-8 ? f * (1 - 0.5 * t) : -rho * Math.expm1(-t);
}

/** -eps kappa log sum_j exp(h_j - C_ij / eps) from `from` onto `to`. */
async function softmin(from: Grid, h: Float64Array, to: Grid, eps: number, kappa: number, meter: Meter) {
  const v = await logConvolve(from, h, to, eps, meter);
  const s = -eps * kappa;
  for (let k = 0; k < v.length; k++) v[k] = s * v[k]!;
  return v;
}

/** h = l + f / eps. */
function logits(l: Float64Array, f: Float64Array, eps: number): Float64Array {
  const out = new Float64Array(l.length);
  for (let k = 0; k < l.length; k++) out[k] = l[k]! + f[k]! / eps;
  return out;
}

/**
 * The four softmin updates from `pot` on level `src`, evaluated on the grid of `dst` (the same level,
 * or the next finer one at a jump); `pot` null: the initialisation from the masses alone.
 */
async function updates(
  src: Level,
  dst: Grid,
  pot: Potentials | null,
  debias: boolean,
  eps: number,
  kappa: number,
  meter: Meter,
): Promise<Potentials> {
  const { grid, la, lb } = src;
  const hB = pot ? logits(lb, pot.gAB, eps) : lb;
  const hA = pot ? logits(la, pot.fBA, eps) : la;
  const hAA = pot ? pot.fAA && logits(la, pot.fAA, eps) : debias ? la : null;
  const hBB = pot ? pot.gBB && logits(lb, pot.gBB, eps) : debias ? lb : null;
  // One after the other: the passes are synchronous JS, so running them "in parallel" gains nothing.
  const fBA = await softmin(grid, hB, dst, eps, kappa, meter);
  const gAB = await softmin(grid, hA, dst, eps, kappa, meter);
  const fAA = hAA ? await softmin(grid, hAA, dst, eps, kappa, meter) : null;
  const gBB = hBB ? await softmin(grid, hBB, dst, eps, kappa, meter) : null;
  return { fBA, gAB, fAA, gBB };
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

function averageInto(pot: Potentials, next: Potentials): number {
  let change = average(pot.fBA, next.fBA);
  change = Math.max(change, average(pot.gAB, next.gAB));
  if (pot.fAA && next.fAA) change = Math.max(change, average(pot.fAA, next.fAA));
  if (pot.gBB && next.gBB) change = Math.max(change, average(pot.gBB, next.gBB));
  return change;
}

/** The levels of the pyramid, finest first: halve while an axis has more than 8 pixels. */
async function pyramidLevels(
  fine: Grid,
  a: Float64Array,
  b: Float64Array,
  on: boolean,
  meter: Meter,
): Promise<Level[]> {
  const levels: Level[] = [{ grid: fine, la: await logMassesMetered(a, meter), lb: await logMassesMetered(b, meter) }];
  if (!on) return levels;
  let grid = fine;
  while (Math.max(...grid.shape) > 8) {
    const next = coarserGrid(grid);
    a = sumPool(grid, a);
    b = sumPool(grid, b);
    await meter.add(2 * grid.N);
    grid = next;
    levels.push({ grid, la: await logMassesMetered(a, meter), lb: await logMassesMetered(b, meter) });
  }
  return levels;
}

interface Solved {
  final: Potentials;
  eps: number;
  iterations: number;
  converged: boolean | null;
  levels: ImagesLossInfo['levels'];
}

/** SamplesLoss's Sinkhorn loop (sinkhorn.ts) on the grid, coarse to fine with the pyramid. */
async function sinkhornGrid(
  fine: Grid,
  a: Float64Array,
  b: Float64Array,
  schedule: readonly number[],
  o: ImagesLossResolved,
  meter: Meter,
): Promise<Solved> {
  const signal = meter.signal;
  const rho = o.reach === null ? null : o.reach * o.reach;
  const usePyramid = o.pyramid === 'auto' ? fine.N * fine.N >= AUTO_MULTISCALE_PAIRS : o.pyramid;
  const levels = await pyramidLevels(fine, a, b, usePyramid, meter);
  // The level of each temperature: the coarsest whose cell is at most half the blur scale sqrt(eps);
  // the last temperature always runs on the full grid.
  const levelOf = (t: number): number => {
    if (t >= schedule.length - 1) return 0;
    let l = 0;
    while (l + 1 < levels.length && 2 * levels[l + 1]!.grid.cell <= Math.sqrt(schedule[t]!)) l++;
    return l;
  };
  const total = schedule.length + (o.convergence?.maxIter ?? 0);
  let iteration = 0;
  const tick = (epsilon: number, phase: ProgressInfo['phase'], change?: number) => {
    iteration++;
    const info: ProgressInfo = { epsilon, iteration, total, phase };
    if (change !== undefined) info.change = change;
    o.onProgress?.(info);
  };

  let current = levelOf(0);
  const used: ImagesLossInfo['levels'] = [];
  let lv = levels[current]!;
  let pot = await updates(lv, lv.grid, null, o.debias, schedule[0]!, damping(schedule[0]!, rho), meter);
  for (let t = 0; t < schedule.length; t++) {
    const eps = schedule[t]!;
    const target = levelOf(t);
    while (current > target) {
      // GeomLoss's jump: the potentials of the finer level are the softmins of the coarse ones,
      // at the temperature the coarse level ended on.
      const prev = schedule[t - 1]!;
      used.push({ shape: [...lv.grid.shape], untilEpsilon: prev });
      const finer = levels[current - 1]!;
      pot = await updates(lv, finer.grid, pot, o.debias, prev, damping(prev, rho), meter);
      current--;
      lv = finer;
    }
    await checkpoint(signal);
    averageInto(pot, await updates(lv, lv.grid, pot, o.debias, eps, damping(eps, rho), meter));
    tick(eps, 'schedule');
  }
  const eps = schedule[schedule.length - 1]!;
  const kappa = damping(eps, rho);
  let converged: boolean | null = null;
  if (o.convergence !== null) {
    const tol = o.convergence.tol ?? 1e-6;
    converged = false;
    for (let k = 0; k < o.convergence.maxIter; k++) {
      await checkpoint(signal);
      const change = averageInto(pot, await updates(lv, lv.grid, pot, o.debias, eps, kappa, meter)) / eps;
      tick(eps, 'convergence', change);
      if (change <= tol) {
        converged = true;
        break;
      }
    }
  }
  used.push({ shape: [...lv.grid.shape], untilEpsilon: eps });
  // The final extrapolation: one more non-averaged update of all four.
  const final = await updates(lv, lv.grid, pot, true, eps, kappa, meter);
  return { final, eps, iterations: iteration, converged, levels: used };
}

/** One side's value and d value / d masses (SamplesLoss's sinkhornSide, written for one image). */
function side(
  w: Float64Array,
  fXY: Float64Array,
  fXX: Float64Array | null,
  o: ImagesLossResolved,
  eps: number,
): { value: number; gradW: Float64Array; F: Float64Array } {
  const N = w.length;
  const F = new Float64Array(N);
  for (let k = 0; k < N; k++) F[k] = fXX ? fXY[k]! - fXX[k]! : fXY[k]!;
  const gradW = new Float64Array(N);
  let value = 0;
  if (o.reach === null) {
    for (let k = 0; k < N; k++) {
      value += w[k]! * F[k]!;
      gradW[k] = F[k]!;
    }
  } else {
    const rho = o.reach * o.reach;
    const wOverRho = 1 + eps / (2 * rho);
    const wgOverRho = o.exactUnbalancedGradients ? 1 + eps / rho : wOverRho;
    for (let k = 0; k < N; k++) {
      const pXY = phi(fXY[k]!, rho);
      const pXX = fXX ? phi(fXX[k]!, rho) : 0;
      value += w[k]! * wOverRho * (pXY - pXX);
      gradW[k] = o.exactUnbalancedGradients && !fXX ? -eps / 2 + wgOverRho * pXY : wgOverRho * (pXY - pXX);
    }
  }
  return { value, gradW, F };
}

/** d value / d data through w = data / total: (g - <w, g>) / total. */
function throughNormalisation(g: Float64Array, w: Float64Array, total: number): Float64Array {
  let mean = 0;
  for (let k = 0; k < g.length; k++) mean += w[k]! * g[k]!;
  return g.map((v) => (v - mean) / total);
}

/** What one ImagesLoss call computes (value, potentials, gradients when asked). */
interface Computed {
  value: number;
  f: ImageResult;
  g: ImageResult;
  gradA: ImageResult | null;
  gradB: ImageResult | null;
  info: ImagesLossInfo;
}

/**
 * GeomLoss's Sinkhorn divergence between two images or volumes, solved on their grid:
 * ```ts
 * const loss = new ImagesLoss({ blur: 0.02 });
 * const A = { data: new Float64Array(64 * 64), shape: [64, 64] as [number, number] };  // fill A.data, B.data
 * const L = await loss.value(A, B);
 * const { value, grad } = await loss.valueAndGrad(A, B);   // grad.A.data: d L / d A.data
 * ```
 * Conventions: pixel (i, j) of an [H, W] image sits at ((i + 0.5) / H, (j + 0.5) / W) in the unit
 * square ([D, H, W] volumes: the unit cube), its value is its mass, and both images are normalised to
 * mass 1 (unless `reach`: then the values are the masses). The cost is |x - y|^2 / 2 (p = 2), the
 * schedule SamplesLoss's from `diameter` (default sqrt(2) or sqrt(3)) down to blur. With these, and
 * without the pyramid (the default below 5000 pixels), the result is SamplesLoss's
 * `new SamplesLoss({ ...options, diameter: Math.SQRT2 })` on the pixel centres with the normalised
 * masses (pixels of mass 0 carry nothing: they may be left out of the cloud), to float64 rounding.
 * Each softmin is D separable 1-D log-domain convolutions: O(N (H + W)) work, O(N) memory.
 */
export class ImagesLoss {
  /** The options with every default filled in. */
  readonly options: Readonly<ImagesLossResolved>;

  /**
   * Checks and freezes the options (defaults: SamplesLoss's, see {@link ImagesLossOptions}).
   * @throws GeomLossError for an unknown key or an impossible value (blur <= 0, p other than 2, ...).
   */
  constructor(options?: ImagesLossOptions) {
    this.options = Object.freeze(asEntry('ImagesLoss', () => resolveImagesOptions(options)));
  }

  /**
   * The loss between images A and B (same shape).
   * @throws GeomLossError naming A or B for a bad image (shape, data length, negative or non-finite
   *   values, all zeros) or different shapes.
   */
  async value(A: Image, B: Image, call?: ImagesCallOptions): Promise<number> {
    return (await this.compute(A, B, call, false)).value;
  }

  /** The loss and its gradients with respect to the pixel values of A and B (GeomLoss's: the
   *  potentials, envelope theorem, through the normalisation when balanced). */
  async valueAndGrad(A: Image, B: Image, call?: ImagesCallOptions): Promise<ImagesValueAndGrad> {
    const c = await this.compute(A, B, call, true);
    return { value: c.value, grad: { A: c.gradA!, B: c.gradB! }, info: c.info };
  }

  /** SamplesLoss's potentials on the pixel centres: f = f_ba - f_aa (debias) or f_ba on A's grid, and g. */
  async potentials(A: Image, B: Image, call?: ImagesCallOptions): Promise<ImagesPotentials> {
    const c = await this.compute(A, B, call, true);
    return { f: c.f, g: c.g, value: c.value, info: c.info };
  }

  private compute(Ain: Image, Bin: Image, call: ImagesCallOptions | undefined, grads: boolean): Promise<Computed> {
    return asEntry('ImagesLoss', () => this.computeNamed(Ain, Bin, call, grads));
  }

  private async computeNamed(
    Ain: Image,
    Bin: Image,
    call: ImagesCallOptions | undefined,
    grads: boolean,
  ): Promise<Computed> {
    const o = this.options;
    let signal = o.signal ?? undefined;
    if (call !== undefined && call !== null) {
      if (typeof call !== 'object' || Array.isArray(call))
        throw new GeomLossError('ImagesLoss: the last argument must be an object { signal }');
      for (const key of Object.keys(call)) {
        if (key !== 'signal') throw new GeomLossError(`ImagesLoss: unknown call option '${key}' (expected signal)`);
      }
      signal = checkSignalOption('signal', call.signal) ?? signal;
    }
    throwIfAborted(signal);
    // The setup passes over the pixels are metered like the solve: a 256 x 256 image used to hold the
    // event loop for 0.2-0.3 s (parsing, normalising, logs, kernels) before the first yield.
    const meter = new Meter(signal);
    const A = parseImage('ImagesLoss', 'A', Ain);
    await meter.add(A.data.length);
    const B = parseImage('ImagesLoss', 'B', Bin);
    await meter.add(B.data.length);
    checkSameShape('ImagesLoss', A, B);
    const dtype = outputDType('ImagesLoss', o.dtype, [A, B]);
    const grid = unitGrid(A.shape);
    const masses = (im: ParsedImage) =>
      o.reach === null ? meteredMap(im.data, (v) => v / im.total, meter) : Promise.resolve(im.data);
    const a = await masses(A);
    const b = await masses(B);
    const diameter = o.diameter ?? Math.sqrt(A.shape.length);
    const schedule = epsilonSchedule(2, diameter, o.blur, o.scaling);
    const asSamples = resolveOptions({ blur: o.blur, diameter, reach: o.reach });
    checkTemperatures(asSamples, asSamples, diameter, 1, 'float64');
    const r = await sinkhornGrid(grid, a, b, schedule, o, meter);
    const sa = side(a, r.final.fBA, r.final.fAA, o, r.eps);
    const sb = side(b, r.final.gAB, r.final.gBB, o, r.eps);
    const info: ImagesLossInfo = {
      dtype,
      schedule,
      diameter,
      iterations: r.iterations,
      converged: r.converged,
      levels: r.levels,
    };
    const gradOf = (s: typeof sa, w: Float64Array, im: ParsedImage) =>
      imageResult(o.reach === null ? throughNormalisation(s.gradW, w, im.total) : s.gradW, im.shape, dtype);
    return {
      value: sa.value + sb.value,
      f: imageResult(sa.F, A.shape, dtype),
      g: imageResult(sb.F, B.shape, dtype),
      gradA: grads ? gradOf(sa, a, A) : null,
      gradB: grads ? gradOf(sb, b, B) : null,
      info,
    };
  }
}
