// SamplesLoss options: GeomLoss's names in camelCase, with its defaults, validated once at
// construction so that a typo or an impossible value fails before any computation.
import { isAbortSignal, LazyTensorError, type AbortSignalLike, type LazyTensor } from '../index.js';

/** The losses of GeomLoss's SamplesLoss (plus a working Hausdorff divergence). */
export type LossName = 'sinkhorn' | 'hausdorff' | 'energy' | 'gaussian' | 'laplacian';

/** 'online' runs every reduction over all pairs; 'multiscale' (Sinkhorn, built-in costs, unbatched,
 *  any dimension) is multilevel Sinkhorn: a k-d tree of each cloud, from the whole cloud down to the
 *  points, each temperature on the coarsest level of cells that resolves it, the potentials handed
 *  down by extrapolation, and every reduction at every level restricted to the blocks kept by kernel
 *  truncation at its temperature; 'auto' picks multiscale where N * M >= AUTO_MULTISCALE_PAIRS for
 *  D <= 3, and for 3 < D <= 32 when the blur is at most 0.05 of the diameter; online otherwise. */
export type Backend = 'auto' | 'online' | 'multiscale';

/** From 5000 x 5000 points 'auto' runs multiscale (Sinkhorn, D <= 3, unbatched, built-in cost): on the
 *  bench's 3-D clouds (blur 0.01) the two backends take the same time near 3500 x 3500 points, and
 *  multiscale is 3x faster at 10^4 x 10^4. */
export const AUTO_MULTISCALE_PAIRS = 5000 * 5000;

/** Builds a formula of dimension 1 from an i-indexed and a j-indexed variable. */
export type PairFormula = (x: LazyTensor, y: LazyTensor) => LazyTensor;

/** Progress of the Sinkhorn loop, reported once per iteration. */
export interface ProgressInfo {
  /** The temperature of this iteration (blur^p at the end). */
  epsilon: number;
  /** Iterations done so far, from 1 (the initialisation is not counted). */
  iteration: number;
  /** Iterations planned: the length of the epsilon schedule, plus `convergence.maxIter` when that
   *  option is on (an upper bound: the extra iterations stop as soon as the potentials settle). */
  total: number;
  /** 'schedule' for the epsilon-scaling iterations, 'convergence' for the optional extra ones. */
  phase: 'schedule' | 'convergence';
  /** In the 'convergence' phase: the largest change of a potential in this iteration, divided by epsilon
   *  (multiscale, balanced: up to the shift f_ba + c, g_ab - c, which changes neither plan nor value). */
  change?: number;
}

/** Iterate at the final temperature until the potentials settle (off by default, as in GeomLoss). */
export interface ConvergenceOptions {
  /** Stop when max |f_new - f_old| <= tol * epsilon over every potential and entry (default 1e-6 in
   *  float64, 1e-4 in float32; float32 rounding of f / epsilon can keep the change above small
   *  tolerances at small blur, and then maxIter ends the loop with `converged: false`). */
  tol?: number;
  /** The most extra iterations (default 1000). */
  maxIter?: number;
}

/**
 * Options of `new SamplesLoss(options)`: GeomLoss's names in camelCase, with its defaults. An unknown key
 * is a GeomLossError.
 */
export interface SamplesLossOptions {
  /** Default 'sinkhorn'. */
  loss?: LossName;
  /** Exponent of the ground cost: 1 (|x - y|) or 2 (|x - y|^2 / 2); any positive number with `cost`. Default 2. */
  p?: number;
  /** The finest scale (epsilon = blur^p) for 'sinkhorn' and 'hausdorff', the kernel width for
   *  'gaussian' and 'laplacian'. Default 0.05. */
  blur?: number;
  /** Unbalanced OT: the scale of the marginal penalty (rho = reach^p); null = balanced. For 'sinkhorn'
   *  and 'hausdorff' (whose symmetric potentials are then damped like Sinkhorn's). Default null. */
  reach?: number | null;
  /** The largest distance, from which the epsilon schedule starts; null = the diagonal of the
   *  bounding box of all the points (all batch items together). Default null. */
  diameter?: number | null;
  /** The ratio between two temperatures of the schedule, in (0, 1). Default 0.5. */
  scaling?: number;
  /** Multiscale only: kernel truncation keeps a block pair when a provable upper bound of
   *  f_i + g_j - C(x_i, y_j) over it exceeds -truncate^2 eps / 2 (p = 2; -truncate^2 eps for p = 1), rebuilt
   *  from the current potentials before every update at every level, or, on a level that iterates at
   *  one temperature, reused while the potentials stay within a proven slack of the ones it was built
   *  from (the kept pairs stay a superset of the exact test's) (GeomLoss truncates once, with
   *  truncate * eps on the centroids' cost, which drops needed blocks near convergence); null keeps
   *  every pair. Accepted and unused by 'online'. Default 5. */
  truncate?: number | null;
  /** Multiscale only: the cell size of the coarsest level (GeomLoss's grid cell size): the loop starts
   *  on the first level of the hierarchy whose cells are at most that size (for cubes of side s,
   *  2 sigma = s, sigma the cells' root mean square spread); null = from the whole cloud. Accepted and
   *  unused by 'online'. Default null. */
  clusterScale?: number | null;
  /** Sinkhorn divergence (true) or raw entropic OT (false). Default true. */
  debias?: boolean;
  /** Default 'auto' (online for now, see Backend). */
  backend?: Backend;
  /** Precision of the computation; default: float32 if an input is a Float32Array, else float64. */
  dtype?: 'float32' | 'float64';
  /** Engine of every reduction (default: the library's default engine). */
  engine?: 'auto' | 'wasm' | 'webgpu';
  /** The ground cost C(x_i, y_j) as a formula (required when p is not 1 or 2). Its first argument is
   *  the i-variable. Sinkhorn and Hausdorff only. */
  cost?: PairFormula | null;
  /** The kernel k(x_i, y_j) as a formula, for loss 'gaussian', 'laplacian' or 'energy' (replaces the
   *  built-in one; blur is then unused). */
  kernel?: PairFormula | null;
  /** Log each temperature of the loop to the console. Default false. */
  verbose?: boolean;
  /** Called after each Sinkhorn iteration. */
  onProgress?: ((info: ProgressInfo) => void) | null;
  /** Iterate at the final temperature until the potentials settle: true for the defaults, or
   *  { tol, maxIter }. Default null (GeomLoss's fixed schedule). */
  convergence?: ConvergenceOptions | boolean | null;
  /** Unbalanced Sinkhorn: the exact gradients (weight rho + eps) instead of GeomLoss's (rho + eps/2). Default false. */
  exactUnbalancedGradients?: boolean;
  /** Cancels every computation of this loss: a call rejects with `signal.reason` at once when the
   *  signal is already aborted, else within one iteration (one reduction chunk) after it aborts.
   *  A call's own `{ signal }` (the last argument of value, valueAndGrad, potentials,
   *  transportPlan) takes precedence. Default null. */
  signal?: AbortSignalLike | null;
}

/** Options of one call (value, valueAndGrad, potentials, transportPlan). */
export interface CallOptions {
  /** Cancels this call (instead of the loss's `signal`): see SamplesLossOptions.signal. */
  signal?: AbortSignalLike | null;
}

/** The most iterations a loop may plan (the epsilon schedule, or convergence.maxIter): beyond this a
 *  schedule is a mistake (a scaling of 0.999999 plans millions of iterations), not a computation. */
export const MAX_ITERATIONS = 100_000;

export interface ResolvedOptions {
  loss: LossName;
  p: number;
  blur: number;
  reach: number | null;
  diameter: number | null;
  scaling: number;
  truncate: number | null;
  clusterScale: number | null;
  debias: boolean;
  backend: Backend;
  dtype: 'float32' | 'float64' | null;
  engine: 'auto' | 'wasm' | 'webgpu' | null;
  cost: PairFormula | null;
  kernel: PairFormula | null;
  verbose: boolean;
  onProgress: ((info: ProgressInfo) => void) | null;
  convergence: { tol: number | null; maxIter: number } | null;
  exactUnbalancedGradients: boolean;
  signal: AbortSignalLike | null;
}

/** The entry points of lazytensor/geomloss, the first word of every GeomLossError message. */
const ENTRY_POINTS = [
  'SamplesLoss',
  'ImagesLoss',
  'imagesBarycenter',
  'wassersteinBarycenter',
  'slicedWasserstein',
  'solveSamples',
  'epsilonSchedule',
] as const;
/** One of the entry points a GeomLossError names. */
export type GeomLossEntry = (typeof ENTRY_POINTS)[number];
const ENTRY_PREFIX = new RegExp(`^(${ENTRY_POINTS.join('|')}): `);

/**
 * A bad argument or option of a loss. The message is `'<entry point>: <detail>'`, one entry point
 * (SamplesLoss, ImagesLoss, imagesBarycenter, wassersteinBarycenter, slicedWasserstein, solveSamples,
 * epsilonSchedule)
 * and a detail that names the argument and what was expected. A `LazyTensorError`, so
 * `err instanceof LazyTensorError` catches the core's errors and GeomLoss's alike.
 */
export class GeomLossError extends LazyTensorError {
  /** The entry point the bad argument was given to, e.g. 'SamplesLoss' or 'ImagesLoss'. */
  readonly entry: GeomLossEntry;
  /** The message without its leading entry point: the argument and what was expected. */
  readonly detail: string;
  /**
   * @param message What is wrong, naming the argument. A message that already starts with an entry
   *   point ('ImagesLoss: ...') keeps it; any other is put under `entry`.
   * @param entry The entry point when the message does not start with one; default 'SamplesLoss'.
   * @param options The `cause`, as for `Error`.
   */
  constructor(message: string, entry?: GeomLossEntry, options?: { cause?: unknown }) {
    const named = entry === undefined ? ENTRY_PREFIX.exec(message) : null;
    const at = entry ?? (named?.[1] as GeomLossEntry | undefined) ?? 'SamplesLoss';
    const detail = named ? message.slice(named[0].length) : message;
    super(`${at}: ${detail}`, options);
    this.entry = at;
    this.detail = detail;
  }
  /** Always 'GeomLossError'. */
  override name = 'GeomLossError';
}

/**
 * Runs the body of entry point `entry` (a value or a promise), so that every GeomLossError it throws
 * or rejects with names `entry`: the shared checks (points, weights, options, temperatures) cannot
 * know which entry point called them and name SamplesLoss, whose checks they are.
 */
export function asEntry<T>(entry: GeomLossEntry, body: () => T): T {
  const relabel = (e: unknown): never => {
    throw e instanceof GeomLossError && e.entry !== entry ? new GeomLossError(e.detail, entry, { cause: e }) : e;
  };
  let out: T;
  try {
    out = body();
  } catch (e) {
    return relabel(e);
  }
  return (out instanceof Promise ? out.catch(relabel) : out) as T;
}

const LOSSES: readonly LossName[] = ['sinkhorn', 'hausdorff', 'energy', 'gaussian', 'laplacian'];
const KEYS = new Set<string>([
  'loss',
  'p',
  'blur',
  'reach',
  'diameter',
  'scaling',
  'truncate',
  'clusterScale',
  'debias',
  'backend',
  'dtype',
  'engine',
  'cost',
  'kernel',
  'verbose',
  'onProgress',
  'convergence',
  'exactUnbalancedGradients',
  'signal',
]);

const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const show = (v: unknown): string =>
  typeof v === 'function' ? 'a function' : typeof v === 'string' ? `'${v}'` : String(v);

export function resolveOptions(options: SamplesLossOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new GeomLossError('options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw new GeomLossError(`unknown option '${key}' (expected one of: ${[...KEYS].join(', ')})`);
  }
  const o = options;
  const loss = o.loss ?? 'sinkhorn';
  if (!LOSSES.includes(loss))
    throw new GeomLossError(`loss must be one of ${LOSSES.map((l) => `'${l}'`).join(', ')}, got ${show(loss)}`);
  const isOT = loss === 'sinkhorn' || loss === 'hausdorff';

  const cost = o.cost ?? null;
  if (cost !== null && typeof cost !== 'function')
    throw new GeomLossError(`cost must be a function (x, y) => LazyTensor, got ${show(cost)}`);
  if (cost !== null && !isOT)
    throw new GeomLossError(`cost is for the 'sinkhorn' and 'hausdorff' losses; loss '${loss}' takes a kernel`);
  const kernel = o.kernel ?? null;
  if (kernel !== null && typeof kernel !== 'function')
    throw new GeomLossError(`kernel must be a function (x, y) => LazyTensor, got ${show(kernel)}`);
  if (kernel !== null && isOT)
    throw new GeomLossError(
      `kernel is for the 'energy', 'gaussian' and 'laplacian' losses; loss '${loss}' takes a cost`,
    );

  const p = o.p ?? 2;
  if (!positive(p)) throw new GeomLossError(`p must be a positive number, got ${show(p)}`);
  if (isOT && cost === null && p !== 1 && p !== 2) {
    throw new GeomLossError(
      `p = ${p} needs a custom cost: the built-in costs are p = 1 (|x - y|) and p = 2 (|x - y|^2 / 2); pass cost: (x, y) => ...`,
    );
  }
  const blur = o.blur ?? 0.05;
  if (!positive(blur)) throw new GeomLossError(`blur must be a positive number, got ${show(blur)}`);
  const reach = o.reach ?? null;
  if (reach !== null && !positive(reach))
    throw new GeomLossError(`reach must be null (balanced) or a positive number, got ${show(reach)}`);
  if (reach !== null && !(Math.pow(reach, p) > 0)) {
    throw new GeomLossError(`reach = ${reach} is too small: rho = reach^p = ${reach}^${p} underflows to 0 in float64`);
  }
  const diameter = o.diameter ?? null;
  if (diameter !== null && !positive(diameter))
    throw new GeomLossError(`diameter must be null or a positive number, got ${show(diameter)}`);
  const scaling = o.scaling ?? 0.5;
  if (!(typeof scaling === 'number' && scaling > 0 && scaling < 1))
    throw new GeomLossError(`scaling must be a number in (0, 1), got ${show(scaling)}`);
  const truncate = o.truncate === undefined ? 5 : o.truncate;
  if (truncate !== null && !positive(truncate))
    throw new GeomLossError(`truncate must be null or a positive number, got ${show(truncate)}`);
  const clusterScale = o.clusterScale ?? null;
  if (clusterScale !== null && !positive(clusterScale))
    throw new GeomLossError(`clusterScale must be null or a positive number, got ${show(clusterScale)}`);
  const debias = o.debias ?? true;
  if (typeof debias !== 'boolean') throw new GeomLossError(`debias must be a boolean, got ${show(debias)}`);
  const backend = o.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'online' && backend !== 'multiscale') {
    throw new GeomLossError(`backend must be 'auto', 'online' or 'multiscale', got ${show(backend)}`);
  }
  if (backend === 'multiscale') {
    // Grid clustering and kernel truncation (multiscale.ts): GeomLoss's Sinkhorn with its built-in costs.
    if (loss !== 'sinkhorn')
      throw new GeomLossError(
        `backend 'multiscale' is for loss 'sinkhorn', not '${loss}'; use backend 'online' (or 'auto')`,
      );
    if (cost !== null)
      throw new GeomLossError(
        "backend 'multiscale' needs the built-in costs (p = 1 or 2, no custom cost); use backend 'online' (or 'auto')",
      );
  }
  const dtype = o.dtype ?? null;
  if (dtype !== null && dtype !== 'float32' && dtype !== 'float64')
    throw new GeomLossError(`dtype must be 'float32' or 'float64', got ${show(dtype)}`);
  const engine = o.engine ?? null;
  if (engine !== null && engine !== 'auto' && engine !== 'wasm' && engine !== 'webgpu') {
    throw new GeomLossError(`engine must be 'auto', 'wasm' or 'webgpu', got ${show(engine)}`);
  }
  const verbose = o.verbose ?? false;
  if (typeof verbose !== 'boolean') throw new GeomLossError(`verbose must be a boolean, got ${show(verbose)}`);
  const onProgress = o.onProgress ?? null;
  if (onProgress !== null && typeof onProgress !== 'function')
    throw new GeomLossError(`onProgress must be a function, got ${show(onProgress)}`);
  const exactUnbalancedGradients = o.exactUnbalancedGradients ?? false;
  if (typeof exactUnbalancedGradients !== 'boolean')
    throw new GeomLossError(`exactUnbalancedGradients must be a boolean`);

  let convergence: ResolvedOptions['convergence'] = null;
  const c = o.convergence ?? null;
  if (c === true) convergence = { tol: null, maxIter: 1000 };
  else if (c !== null && c !== false) {
    if (typeof c !== 'object')
      throw new GeomLossError(`convergence must be true, false, null or { tol, maxIter }, got ${show(c)}`);
    for (const key of Object.keys(c)) {
      if (key !== 'tol' && key !== 'maxIter')
        throw new GeomLossError(`unknown option 'convergence.${key}' (expected tol, maxIter)`);
    }
    const tol = c.tol ?? null;
    if (tol !== null && !positive(tol))
      throw new GeomLossError(`convergence.tol must be a positive number, got ${show(tol)}`);
    const maxIter = c.maxIter ?? 1000;
    if (!(Number.isInteger(maxIter) && maxIter >= 1))
      throw new GeomLossError(`convergence.maxIter must be a positive integer, got ${show(maxIter)}`);
    if (maxIter > MAX_ITERATIONS) {
      throw new GeomLossError(
        `convergence.maxIter = ${maxIter} is more than the ${MAX_ITERATIONS} iterations a loop may run; use a tolerance (convergence.tol) with a smaller maxIter`,
      );
    }
    convergence = { tol, maxIter };
  }
  if (convergence !== null && !isOT)
    throw new GeomLossError(`convergence is for the 'sinkhorn' and 'hausdorff' losses`);

  const signal = checkSignalOption('signal', o.signal);

  return {
    loss,
    p,
    blur,
    reach,
    diameter,
    scaling,
    truncate,
    clusterScale,
    debias,
    backend,
    dtype,
    engine,
    cost,
    kernel,
    verbose,
    onProgress,
    convergence,
    exactUnbalancedGradients,
    signal,
  };
}

/** An AbortSignal option (or null/undefined: none). */
export function checkSignalOption(name: string, signal: unknown): AbortSignalLike | null {
  if (signal === undefined || signal === null) return null;
  if (!isAbortSignal(signal))
    throw new GeomLossError(`${name} must be an AbortSignal (from an AbortController) or null, got ${show(signal)}`);
  return signal;
}
