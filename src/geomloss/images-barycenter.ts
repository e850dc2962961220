// Convolutional Wasserstein barycenters (Solomon et al. 2015; the iterative Bregman projections of
// Benamou et al. 2015) of K images on one grid: entropic OT with the cost |x - y|^2 / 2 at
// eps = blur^2, whose Gaussian kernel is applied separably (images-grid.ts), in the log domain so that
// small blurs neither underflow nor lose the far tails. With U_k = exp(phi_k), V_k = exp(psi_k) the
// scalings of the plans pi_k = diag(U_k) K diag(V_k) between the barycenter and image k:
//   psi_k  <- log mu_k - LSE_K(phi_k)                  (pi_k's marginal on image k's side is mu_k)
//   log q  <- sum_k lambda_k (phi_k + LSE_K(psi_k))    (the weighted geometric mean of the other marginals)
//   phi_k  <- log q - LSE_K(psi_k)                      (every pi_k's marginal on the barycenter side is q)
import { checkpoint, throwIfAborted, type AbortSignalLike } from '../index.js';
import {
  checkSameShape,
  imageResult,
  logConvolve,
  logMasses,
  Meter,
  outputDType,
  parseImage,
  unitGrid,
  type Image,
  type ImageResult,
} from './images-grid.js';
import { asEntry, checkSignalOption, GeomLossError, resolveOptions } from './options.js';
import { checkTemperatures } from './rescale.js';

/** Options of {@link imagesBarycenter}. */
export interface ImagesBarycenterOptions {
  /** The barycentric weights lambda_k, one per image, non-negative, not all 0 (normalised to sum 1).
   *  Default uniform, 1 / K. */
  weights?: readonly number[] | Float64Array | Float32Array | null;
  /** The entropic blur (eps = blur^2), in units of the unit square / cube. The barycenter of identical
   *  images is that image blurred at about this scale. Default 0.05. */
  blur?: number;
  /** The most Bregman-projection iterations. Default 100. */
  iterations?: number;
  /** Stop when the largest L1 distance between a plan's marginal and the barycenter is at most tol
   *  (0: run every iteration). Default 1e-6. */
  tol?: number;
  /** The precision of the returned image (the computation is float64 either way). Default: float32
   *  when every image is a Float32Array, else float64. */
  dtype?: 'float32' | 'float64';
  /** Called after each iteration with the iteration (from 1), the most iterations, and the change. */
  onProgress?:
    | ((info: {
        /** Iterations done. */
        iteration: number;
        /** The most iterations (the `iterations` option). */
        total: number;
        /** The largest L1 distance between a marginal and the barycenter. */
        change: number;
      }) => void)
    | null;
  /** Cancels the computation: rejects with `signal.reason` within a few milliseconds. */
  signal?: AbortSignalLike | null;
}

/** What {@link imagesBarycenter} returns: the barycenter image and how it was computed. */
export interface ImagesBarycenter extends ImageResult {
  /** How it was computed. */
  info: {
    /** Iterations run. */
    iterations: number;
    /** The largest L1 distance between a plan's marginal and the barycenter at the last iteration. */
    change: number;
    /** Whether `change` reached `tol`. */
    converged: boolean;
    /** The barycentric weights used (normalised to sum 1). */
    weights: number[];
    /** The total mass of the barycenter (1 at convergence; a geometric mean of masses 1 before, so at most 1). */
    mass: number;
  };
}

const KEYS = ['weights', 'blur', 'iterations', 'tol', 'dtype', 'onProgress', 'signal'];

/**
 * The entropic Wasserstein barycenter of K images (or volumes) of one shape, on their grid (pixel
 * centres of the unit square / cube, each image normalised to mass 1, cost |x - y|^2 / 2, eps = blur^2):
 * the minimiser of sum_k lambda_k OT_eps(q, mu_k), by convolutional iterative Bregman projections
 * (Solomon et al. 2015) with the separable Gaussian kernel in the log domain.
 * ```ts
 * const q = await imagesBarycenter([A, B], { weights: [0.25, 0.75], blur: 0.02 });
 * q.data; q.shape; q.info.iterations;
 * ```
 * Entropic barycenters are blurred (by about `blur`): the barycenter of identical images is not the
 * image itself but a smoothed copy.
 * @param images K >= 1 images { data, shape } of the same shape [H, W] or [D, H, W], non-negative.
 * @throws GeomLossError naming `images[k]` for a bad image or a different shape, or the bad option.
 */
export function imagesBarycenter(
  images: readonly Image[],
  options: ImagesBarycenterOptions = {},
): Promise<ImagesBarycenter> {
  return asEntry('imagesBarycenter', () => barycenterOfImages(images, options));
}

async function barycenterOfImages(
  images: readonly Image[],
  options: ImagesBarycenterOptions,
): Promise<ImagesBarycenter> {
  const who = 'imagesBarycenter';
  if (!Array.isArray(images) || images.length === 0)
    throw new GeomLossError(`${who}: images must be a non-empty array of images { data, shape }`);
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new GeomLossError(`${who}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!KEYS.includes(key))
      throw new GeomLossError(`${who}: unknown option '${key}' (expected one of: ${KEYS.join(', ')})`);
  }
  const parsed = images.map((im, k) => parseImage(who, `images[${k}]`, im));
  for (const p of parsed.slice(1)) checkSameShape(who, parsed[0]!, p);
  const K = parsed.length;
  const { weights = null, iterations = 100, tol = 1e-6, onProgress = null } = options;
  const o = resolveOptions({ blur: options.blur, dtype: options.dtype });
  const signal = checkSignalOption('signal', options.signal) ?? undefined;
  if (!(Number.isInteger(iterations) && iterations >= 1 && iterations <= 100_000))
    throw new GeomLossError(`${who}: iterations must be an integer in [1, 100000], got ${String(iterations)}`);
  if (!(typeof tol === 'number' && tol >= 0 && Number.isFinite(tol)))
    throw new GeomLossError(`${who}: tol must be a non-negative number, got ${String(tol)}`);
  if (onProgress !== null && typeof onProgress !== 'function')
    throw new GeomLossError(`${who}: onProgress must be a function`);
  let lambda: number[];
  if (weights === null) lambda = new Array<number>(K).fill(1 / K);
  else {
    if (!(Array.isArray(weights) || weights instanceof Float64Array || weights instanceof Float32Array))
      throw new GeomLossError(`${who}: weights must be a number[] of length ${K} (one per image)`);
    if (weights.length !== K)
      throw new GeomLossError(`${who}: weights has ${weights.length} entries but there are ${K} images`);
    const w = Array.from(weights as ArrayLike<unknown>);
    w.forEach((v, k) => {
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
        throw new GeomLossError(`${who}: weights[${k}] is ${String(v)}: weights must be non-negative numbers`);
    });
    const total = (w as number[]).reduce((p, v) => p + v, 0);
    if (!(total > 0)) throw new GeomLossError(`${who}: weights are all zero`);
    lambda = (w as number[]).map((v) => v / total);
  }
  const shape = parsed[0]!.shape;
  const dtype = outputDType(who, o.dtype, parsed);
  const grid = unitGrid(shape);
  const eps = o.blur * o.blur;
  // The costs over eps reach D / blur^2: the same range check as SamplesLoss's.
  checkTemperatures(o, o, Math.sqrt(shape.length), 1, 'float64');
  throwIfAborted(signal);

  const meter = new Meter(signal);
  const N = grid.N;
  const logMu = parsed.map((p) => logMasses(p.data.map((v) => v / p.total)));
  const phi = parsed.map(() => new Float64Array(N));
  const logQ = new Float64Array(N);
  let change = Infinity;
  let done = 0;
  for (let it = 0; it < iterations; it++) {
    await checkpoint(signal);
    const logKV: Float64Array[] = [];
    for (let k = 0; k < K; k++) {
      const lku = await logConvolve(grid, phi[k]!, grid, eps, meter);
      const psi = logMu[k]!.map((l, i) => l - lku[i]!);
      logKV.push(await logConvolve(grid, psi, grid, eps, meter));
    }
    logQ.fill(0);
    for (let k = 0; k < K; k++) {
      if (lambda[k] === 0) continue;
      const p = phi[k]!;
      const kv = logKV[k]!;
      for (let i = 0; i < N; i++) logQ[i]! += lambda[k]! * (p[i]! + kv[i]!);
    }
    change = 0;
    for (let k = 0; k < K; k++) {
      const p = phi[k]!;
      const kv = logKV[k]!;
      let d = 0;
      for (let i = 0; i < N; i++) {
        d += Math.abs(Math.exp(p[i]! + kv[i]!) - Math.exp(logQ[i]!));
        p[i] = logQ[i]! - kv[i]!;
      }
      change = Math.max(change, d);
    }
    done = it + 1;
    onProgress?.({ iteration: done, total: iterations, change });
    if (change <= tol) break;
  }
  const q = logQ.map(Math.exp);
  const mass = q.reduce((p, v) => p + v, 0);
  return {
    ...imageResult(q, shape, dtype),
    info: { iterations: done, change, converged: change <= tol, weights: lambda, mass },
  };
}
