// Sliced Wasserstein distance: the cheapest OT baseline. Along each direction both clouds are
// projected and sorted, and the 1-D optimal transport between the two weighted empirical measures is
// the monotone (quantile-function) coupling, found by merging their cumulative weights: O(N log N)
// per direction, nothing N x M, float64 throughout.
import { checkpoint, Tensor, throwIfAborted, type AbortSignalLike } from '../index.js';
import { parseCloud, parseWeights, type Cloud, type Points, type Weights } from './inputs.js';
import { asEntry, checkSignalOption, GeomLossError } from './options.js';

/** Options of {@link slicedWasserstein}. An unknown key is a GeomLossError. */
export interface SlicedWassersteinOptions {
  /** Weights of x: N non-negative numbers, not all zero (default uniform). Normalised to total mass 1. */
  a?: Weights | null;
  /** Weights of y: M non-negative numbers, not all zero (default uniform). Normalised to total mass 1. */
  b?: Weights | null;
  /** Exponent of the ground cost |s - t|^p along each direction, a number >= 1 (the sorted coupling
   *  is optimal only for convex costs). Default 2. */
  p?: number;
  /** Random directions to draw (uniform on the unit sphere), a positive integer. Default 50 (POT's
   *  default). With `directions`, it must be absent or equal their count. */
  projections?: number;
  /** Seed of the random directions, an integer in [0, 2^32). Default 0: the same directions each call. */
  seed?: number;
  /** Given directions instead of random ones: [P, D] in any of SamplesLoss's single-cloud forms. Each
   *  row is normalised to unit length (a zero row is an error). */
  directions?: Points | null;
  /** Cancels the computation: the promise rejects with the signal's reason. */
  signal?: AbortSignalLike | null;
}

/** What {@link slicedWasserstein} returns. */
export interface SlicedWassersteinResult {
  /** SW_p = (mean over the directions of W_p^p along the direction)^(1/p), POT's
   *  `sliced_wasserstein_distance` convention. */
  value: number;
  /** SW_p^p: the mean over the directions of W_p^p (value ** p). */
  valuePow: number;
  /** Gradients of `value` with respect to the coordinates (float64, CPU-computed; `engine` is 'wasm').
   *  Exact for the sorted coupling away from ties. At value 0 (p > 1) they are returned as 0 (a
   *  subgradient). No gradients with respect to a and b. */
  grad: {
    /** d value / d x: [N, D]. */
    x: Tensor<Float64Array>;
    /** d value / d y: [M, D]. */
    y: Tensor<Float64Array>;
  };
  /** The unit directions used: [P, D]. */
  directions: Tensor<Float64Array>;
  /** W_p^p along each direction: [P]. */
  perDirection: Float64Array;
}

const KEYS = new Set(['a', 'b', 'p', 'projections', 'seed', 'directions', 'signal']);
const DEFAULT_PROJECTIONS = 50;
/** Below this many points a comparison sort beats the radix sort's 65536-bucket histograms. */
const RADIX_MIN = 2048;

/**
 * The sliced Wasserstein distance between two weighted point clouds, and its gradients:
 * SW_p(a, b) = (1/P sum_theta W_p^p(theta#a, theta#b))^(1/p) over P unit directions theta, random
 * (seeded, uniform on the sphere) or given. O(P (N + M) (D + log(N + M))) time, O(N + M) extra memory.
 * @example
 * ```ts
 * const { value, grad } = await slicedWasserstein(x, y, { p: 2, projections: 100, seed: 1 });
 * ```
 * @param x [N, D] points (`number[][]` or `{ data, shape: [N, D] }`); batches are not accepted.
 * @param y [M, D] points, same D.
 * @throws GeomLossError naming the argument: bad points or weights (non-finite, negative, all zero,
 *   wrong length), mismatched D, an unknown option, p < 1, projections not a positive integer, a bad
 *   seed, directions not [P, D] with the clouds' D or with a zero row, a signal that is not an AbortSignal.
 */
export function slicedWasserstein(
  x: Points,
  y: Points,
  options: SlicedWassersteinOptions = {},
): Promise<SlicedWassersteinResult> {
  return asEntry('slicedWasserstein', () => sliced(x, y, options));
}

async function sliced(x: Points, y: Points, options: SlicedWassersteinOptions): Promise<SlicedWassersteinResult> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new GeomLossError(
      'slicedWasserstein: options must be an object { a, b, p, projections, seed, directions, signal }',
    );
  }
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key))
      throw new GeomLossError(`slicedWasserstein: unknown option '${key}' (expected ${[...KEYS].join(', ')})`);
  }
  const signal = checkSignalOption('signal', options.signal) ?? undefined;
  throwIfAborted(signal);
  const X = single(parseCloud('x', x));
  const Y = single(parseCloud('y', y));
  if (X.D !== Y.D)
    throw new GeomLossError(`x and y must have the same dimension D: x has D = ${X.D}, y has D = ${Y.D}`);
  const D = X.D;
  const a = normalised(parseWeights('a', options.a, X));
  const b = normalised(parseWeights('b', options.b, Y));
  const p = options.p ?? 2;
  if (typeof p !== 'number' || !Number.isFinite(p) || p < 1) {
    throw new GeomLossError(
      `p must be a finite number >= 1 (the sorted coupling is optimal only for convex costs), got ${String(p)}`,
    );
  }
  const dirs = directionsFor(options, D);
  const P = dirs.length / D;

  const { N } = X;
  const M = Y.N;
  const px = new Float64Array(N);
  const py = new Float64Array(M);
  const cx = new Float64Array(N);
  const cy = new Float64Array(M);
  const gx = new Float64Array(N * D);
  const gy = new Float64Array(M * D);
  const perDirection = new Float64Array(P);
  // The projections, weights and gradient coefficients in sorted order (contiguous for the walk).
  const [sx, sa, csx] = [new Float64Array(N), new Float64Array(N), new Float64Array(N)];
  const [sy, sb, csy] = [new Float64Array(M), new Float64Array(M), new Float64Array(M)];
  // Two sorters: each returned permutation lives in its sorter's buffer.
  const sortX = new Sorter(N);
  const sortY = new Sorter(M);
  const theta = new Float64Array(D);
  for (let t = 0; t < P; t++) {
    for (let k = 0; k < D; k++) theta[k] = dirs[t * D + k]!;
    project(X.data, N, D, theta, px);
    project(Y.data, M, D, theta, py);
    await checkpoint(signal);
    const ix = sortX.order(px);
    await checkpoint(signal);
    const iy = sortY.order(py);
    await checkpoint(signal);
    perDirection[t] = coupling1d(
      gather(px, ix, sx),
      gather(a, ix, sa),
      gather(py, iy, sy),
      gather(b, iy, sb),
      p,
      csx,
      csy,
    );
    scatter(csx, ix, cx);
    scatter(csy, iy, cy);
    accumulate(gx, cx, theta, D);
    accumulate(gy, cy, theta, D);
    await checkpoint(signal);
  }
  let valuePow = 0;
  for (let t = 0; t < P; t++) valuePow += perDirection[t]!;
  valuePow /= P;
  const value = Math.pow(valuePow, 1 / p);
  // d SW_p / d SW_p^p = (1/p) SW_p^(1-p), with the 1/P of the mean.
  const chain = p === 1 ? 1 / P : valuePow > 0 ? value / (p * valuePow) / P : 0;
  for (let k = 0; k < gx.length; k++) gx[k]! *= chain;
  for (let k = 0; k < gy.length; k++) gy[k]! *= chain;
  return {
    value,
    valuePow,
    grad: { x: new Tensor(gx, [N, D], 'wasm'), y: new Tensor(gy, [M, D], 'wasm') },
    directions: new Tensor(dirs, [P, D], 'wasm'),
    perDirection,
  };
}

function single(c: Cloud): Cloud {
  if (c.batched) throw new GeomLossError(`${c.name} must be one cloud [N, D], not a batch [B, N, D]`);
  return c;
}

function normalised(w: Float64Array): Float64Array {
  let total = 0;
  for (let i = 0; i < w.length; i++) total += w[i]!;
  for (let i = 0; i < w.length; i++) w[i]! /= total;
  return w;
}

/** The unit directions, [P, D] row-major: the given ones normalised, or P seeded random ones. */
function directionsFor(options: SlicedWassersteinOptions, D: number): Float64Array {
  const { projections, seed, directions } = options;
  if (
    projections !== undefined &&
    (typeof projections !== 'number' || !Number.isInteger(projections) || projections < 1)
  ) {
    throw new GeomLossError(`projections must be a positive integer, got ${String(projections)}`);
  }
  if (directions !== undefined && directions !== null) {
    if (seed !== undefined)
      throw new GeomLossError('seed is for random directions: give either directions or seed, not both');
    const c = parseCloud('directions', directions);
    if (c.batched) throw new GeomLossError('directions must be [P, D], not a batch [B, P, D]');
    if (c.D !== D) throw new GeomLossError(`directions must be [P, D] with the clouds' D = ${D}, got D = ${c.D}`);
    if (projections !== undefined && projections !== c.N) {
      throw new GeomLossError(
        `projections (${projections}) must equal the number of directions (${c.N}) when both are given`,
      );
    }
    const out = Float64Array.from(c.data);
    for (let t = 0; t < c.N; t++) {
      let norm = 0;
      for (let k = 0; k < D; k++) norm += out[t * D + k]! ** 2;
      norm = Math.sqrt(norm);
      if (!(norm > 0)) throw new GeomLossError(`directions[${t}] is zero: each direction needs a non-zero length`);
      for (let k = 0; k < D; k++) out[t * D + k]! /= norm;
    }
    return out;
  }
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32)) {
    throw new GeomLossError(`seed must be an integer in [0, 2^32), got ${String(seed)}`);
  }
  const P = projections ?? DEFAULT_PROJECTIONS;
  const random = rng(seed ?? 0);
  const out = new Float64Array(P * D);
  for (let t = 0; t < P; t++) {
    // A standard Gaussian vector, normalised, is uniform on the sphere.
    let norm = 0;
    while (!(norm > 1e-150)) {
      norm = 0;
      for (let k = 0; k < D; k++) {
        const g = gaussian(random);
        out[t * D + k] = g;
        norm += g * g;
      }
    }
    norm = Math.sqrt(norm);
    for (let k = 0; k < D; k++) out[t * D + k]! /= norm;
  }
  return out;
}

/** mulberry32: a small seeded generator of uniforms in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

/** Box-Muller. */
function gaussian(random: () => number): number {
  const u = 1 - random(); // (0, 1]: the log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function project(
  data: Float32Array | Float64Array,
  N: number,
  D: number,
  theta: Float64Array,
  out: Float64Array,
): void {
  for (let i = 0, o = 0; i < N; i++, o += D) {
    let s = 0;
    for (let k = 0; k < D; k++) s += data[o + k]! * theta[k]!;
    out[i] = s;
  }
}

function accumulate(g: Float64Array, c: Float64Array, theta: Float64Array, D: number): void {
  for (let i = 0, o = 0; i < c.length; i++, o += D) {
    const ci = c[i]!;
    if (ci === 0) continue;
    for (let k = 0; k < D; k++) g[o + k]! += ci * theta[k]!;
  }
}

/**
 * The 1-D OT cost sum m |s_k - t_l|^p of the monotone coupling of (s, a) and (t, b), both sorted
 * ascending and of mass 1, walking the two sequences and moving mass m = min(remaining a_k,
 * remaining b_l) at each step. Writes d cost / d s_k to cs and d cost / d t_l to ct (the coupling held
 * fixed: exact away from ties). Contiguous sorted arrays: the walk reads memory in order.
 */
function coupling1d(
  s: Float64Array,
  a: Float64Array,
  t: Float64Array,
  b: Float64Array,
  p: number,
  cs: Float64Array,
  ct: Float64Array,
): number {
  const N = s.length;
  const M = t.length;
  cs.fill(0);
  ct.fill(0);
  let i = 0;
  let j = 0;
  let ra = a[0]!;
  let rb = b[0]!;
  let cost = 0;
  while (i < N && j < M) {
    const m = ra < rb ? ra : rb;
    if (m > 0) {
      const d = s[i]! - t[j]!;
      const ad = Math.abs(d);
      if (p === 1) {
        cost += m * ad;
        const g = d > 0 ? m : d < 0 ? -m : 0;
        cs[i]! += g;
        ct[j]! -= g;
      } else if (ad > 0) {
        const pw = p === 2 ? ad : Math.pow(ad, p - 1);
        cost += m * pw * ad;
        const g = m * p * pw * (d > 0 ? 1 : -1);
        cs[i]! += g;
        ct[j]! -= g;
      }
    }
    // The side whose remaining mass runs out first moves on (x's on a tie: the other then moves
    // with a zero step). The last few ulps of mass left on one side when the other ends are dropped.
    if (ra < rb) {
      rb -= ra;
      i++;
      if (i < N) ra = a[i]!;
    } else {
      ra -= rb;
      j++;
      if (j < M) rb = b[j]!;
    }
  }
  return cost;
}

/** out[k] = v[perm[k]]. */
function gather(v: Float64Array, perm: Uint32Array, out: Float64Array): Float64Array {
  for (let k = 0; k < perm.length; k++) out[k] = v[perm[k]!]!;
  return out;
}

/** out[perm[k]] = v[k]. */
function scatter(v: Float64Array, perm: Uint32Array, out: Float64Array): Float64Array {
  for (let k = 0; k < perm.length; k++) out[perm[k]!] = v[k]!;
  return out;
}

/** Argsort of float64 keys, reusing its buffers: LSD radix sort on the 8 bytes of the keys' ordered
 *  bit patterns, moving the keys with the indices so that every pass reads sequentially (passes
 *  where every key has the same byte are skipped), a comparison sort for short arrays. */
class Sorter {
  private readonly buf: Uint32Array[];
  private readonly count = new Uint32Array(8 * 256);
  private readonly f64 = new Float64Array(1);
  private readonly u32 = new Uint32Array(this.f64.buffer);
  /** Index of the high word of a float64 in u32 (1 on little-endian machines). */
  private readonly high: number;

  constructor(private readonly n: number) {
    // [hi, lo, idx] twice: the source and the destination of a pass.
    this.buf = Array.from({ length: 6 }, () => new Uint32Array(n));
    this.f64[0] = -1;
    this.high = this.u32[1] === 0xbff00000 ? 1 : 0;
  }

  /** The permutation that sorts `keys` ascending (valid until the next call). */
  order(keys: Float64Array): Uint32Array {
    const n = keys.length;
    if (n !== this.n) throw new RangeError(`Sorter: built for ${this.n} keys, got ${n}`);
    let [hi, lo, idx, hi2, lo2, idx2] = this.buf as [
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
    ];
    for (let i = 0; i < n; i++) idx[i] = i;
    if (n < RADIX_MIN) return idx.sort((p, q) => keys[p]! - keys[q]!);
    const { u32, f64, high, count } = this;
    const low = 1 - high;
    count.fill(0);
    for (let i = 0; i < n; i++) {
      f64[0] = keys[i]! + 0; // -0 and +0 as one key
      let h = u32[high]!;
      let l = u32[low]!;
      // Ordered bits: negatives flipped entirely, positives with the sign bit set.
      if (h & 0x80000000) {
        h = ~h >>> 0;
        l = ~l >>> 0;
      } else h = (h | 0x80000000) >>> 0;
      hi[i] = h;
      lo[i] = l;
      count[l & 0xff]!++;
      count[256 + ((l >>> 8) & 0xff)]!++;
      count[512 + ((l >>> 16) & 0xff)]!++;
      count[768 + (l >>> 24)]!++;
      count[1024 + (h & 0xff)]!++;
      count[1280 + ((h >>> 8) & 0xff)]!++;
      count[1536 + ((h >>> 16) & 0xff)]!++;
      count[1792 + (h >>> 24)]!++;
    }
    for (let pass = 0; pass < 8; pass++) {
      const base = pass * 256;
      const shift = (pass & 3) * 8;
      const fromLo = pass < 4;
      // One bucket holding everything: this byte is the same for all keys, the pass changes nothing.
      if (count[base + (((fromLo ? lo[0]! : hi[0]!) >>> shift) & 0xff)] === n) continue;
      let sum = 0;
      for (let d = 0; d < 256; d++) {
        const c = count[base + d]!;
        count[base + d] = sum;
        sum += c;
      }
      const digits = fromLo ? lo : hi;
      for (let k = 0; k < n; k++) {
        const at = count[base + ((digits[k]! >>> shift) & 0xff)]!++;
        hi2[at] = hi[k]!;
        lo2[at] = lo[k]!;
        idx2[at] = idx[k]!;
      }
      [hi, hi2] = [hi2, hi];
      [lo, lo2] = [lo2, lo];
      [idx, idx2] = [idx2, idx];
    }
    return idx;
  }
}
