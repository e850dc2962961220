// Images and volumes as measures on a regular grid of the unit square / cube, and the one operation
// the grid solvers need: the log-domain Gaussian convolution ("softmin")
//   out_i = log sum_j exp(h_j - |x_i - y_j|^2 / (2 eps)),
// from the pixels y_j of a source grid to the pixels x_i of a target grid. The cost |x - y|^2 / 2 is a
// sum over the axes, so the kernel is a product of 1-D kernels and the sum over j is D nested 1-D
// log-sum-exps, one axis at a time: O(N (n_0 + n_1 + ...)) work, and an n_k x n_k matrix per axis is the
// largest kernel ever built (never an N x N one). Each 1-D pass is exact (max-shifted), so the result
// is the same as the dense softmin of the point-cloud solvers up to float64 rounding; terms more than
// 40 below a row's maximum (exp(-40) ~ 4e-18 of it) are skipped, which is what makes small blurs cheap.
import { checkpoint, type AbortSignalLike } from '../index.js';
import { GeomLossError } from './options.js';

/** An image [H, W] or a volume [D, H, W]: non-negative values, row-major (the last axis varies fastest). */
export interface Image {
  /** The pixel (voxel) values, row-major, non-negative; data.length = H * W (or D * H * W). */
  data: Float32Array | Float64Array | readonly number[];
  /** [H, W] for an image, [D, H, W] for a volume: positive integers. */
  shape: readonly [number, number] | readonly [number, number, number];
}

/** What the image solvers return: an image of the input's shape (a gradient, a potential, a barycenter). */
export interface ImageResult {
  /** The values, row-major; a Float32Array with dtype 'float32', else a Float64Array. */
  data: Float32Array | Float64Array;
  /** The shape of the input images, [H, W] or [D, H, W] (a result can be passed back as an image). */
  shape: [number, number] | [number, number, number];
}

/** A checked image: its values in float64, its total mass. */
export interface ParsedImage {
  readonly name: string;
  readonly data: Float64Array;
  readonly shape: number[];
  readonly total: number;
  /** float32 for a Float32Array, float64 for a Float64Array, null for plain numbers. */
  readonly natural: 'float32' | 'float64' | null;
}

/** A tensor grid: its shape and the coordinates of its pixel centres along each axis. */
export interface Grid {
  readonly shape: number[];
  readonly coords: Float64Array[];
  /** The number of pixels. */
  readonly N: number;
  /** The largest distance between two neighbouring centres along an axis (the cell size). */
  readonly cell: number;
}

const show = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(String).join(', ')}]`
    : v === null
      ? 'null'
      : typeof v === 'object'
        ? 'an object'
        : String(v);

/** Checks an image argument; `who` is the function ('ImagesLoss', 'imagesBarycenter'), `name` the argument. */
export function parseImage(who: string, name: string, input: unknown): ParsedImage {
  const fail = (what: string): never => {
    throw new GeomLossError(`${who}: ${name}${what}`);
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    fail(` must be an image { data, shape: [H, W] | [D, H, W] }, got ${show(input)}`);
  const { data, shape } = input as { data?: unknown; shape?: unknown };
  if (!Array.isArray(shape) || (shape.length !== 2 && shape.length !== 3))
    fail(`.shape must be [H, W] or [D, H, W], got ${show(shape)}`);
  const dims = shape as unknown[];
  for (const n of dims) {
    if (!(typeof n === 'number' && Number.isInteger(n) && n >= 1))
      fail(`.shape must hold positive integers, got ${show(shape)}`);
  }
  const sizes = dims as number[];
  const N = sizes.reduce((p, n) => p * n, 1);
  let natural: ParsedImage['natural'];
  if (data instanceof Float32Array) natural = 'float32';
  else if (data instanceof Float64Array) natural = 'float64';
  else if (Array.isArray(data)) natural = null;
  else return fail(`.data must be a Float32Array, a Float64Array or a number[], got ${show(data)}`);
  const values = data as ArrayLike<unknown>;
  if (values.length !== N) fail(`.data has ${values.length} values but .shape [${sizes.join(', ')}] needs ${N}`);
  // One tight loop over the values (typed arrays are copied first): the detailed message only on failure.
  const out = natural === null ? new Float64Array(N) : Float64Array.from(values as Float32Array | Float64Array);
  let total = 0;
  for (let k = 0; k < N; k++) {
    const v = natural === null ? (values[k] as number) : out[k]!;
    if (!(typeof v === 'number' && v >= 0 && v < Infinity)) {
      if (typeof v !== 'number' || !Number.isFinite(v))
        fail(`.data[${k}] is ${String(v)}: values must be finite numbers`);
      fail(`.data[${k}] is ${String(v)}: values must be non-negative (a density)`);
    }
    out[k] = v;
    total += v;
  }
  if (!(total > 0)) fail(' is all zeros: a measure needs a positive total mass');
  if (!Number.isFinite(total)) fail(` has a total mass of ${total}, beyond float64's range`);
  return { name, data: out, shape: sizes, total, natural };
}

/** Pixel centres (i + 0.5) / n along each axis: the unit square / cube. */
export function unitGrid(shape: readonly number[]): Grid {
  const coords = shape.map((n) => Float64Array.from({ length: n }, (_, i) => (i + 0.5) / n));
  // Axes of one pixel have no spacing.
  const cell = Math.max(0, ...shape.filter((n) => n >= 2).map((n) => 1 / n));
  return { shape: [...shape], coords, N: shape.reduce((p, n) => p * n, 1), cell };
}

/** Whether an axis of this size is pooled (an axis of one pixel stays as it is). */
const pooled = (n: number): number => (n >= 2 ? Math.ceil(n / 2) : n);

/** The grid of 2 x 2 (x 2) blocks: each coarse centre is the midpoint of the centres it covers (the
 *  last one of an odd axis covers one pixel and keeps its centre), so the coarse grid stays a tensor
 *  grid and its kernel stays separable. */
export function coarserGrid(g: Grid): Grid {
  const coords = g.coords.map((c) => {
    const n = c.length;
    if (n < 2) return c;
    const out = new Float64Array(pooled(n));
    for (let i = 0; i < out.length; i++) out[i] = 2 * i + 1 < n ? 0.5 * (c[2 * i]! + c[2 * i + 1]!) : c[2 * i]!;
    return out;
  });
  const shape = coords.map((c) => c.length);
  return { shape, coords, N: shape.reduce((p, n) => p * n, 1), cell: 2 * g.cell };
}

/** Sum-pooling of values on `fine` onto `coarserGrid(fine)` (mass is kept exactly). */
export function sumPool(fine: Grid, v: Float64Array): Float64Array {
  const { shape } = fine;
  const coarse = shape.map(pooled);
  const out = new Float64Array(coarse.reduce((p, n) => p * n, 1));
  const D = shape.length;
  const idx = new Array<number>(D).fill(0);
  for (let k = 0; k < v.length; k++) {
    let c = 0;
    for (let d = 0; d < D; d++) c = c * coarse[d]! + (shape[d]! >= 2 ? idx[d]! >> 1 : idx[d]!);
    out[c]! += v[k]!;
    for (let d = D - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Work between two looks at the clock (multiply-adds): well under a millisecond. */
const CHUNK = 1 << 16;
/** Terms this far below a row's maximum are skipped: exp(-40) ~ 4e-18 of the largest term. */
const CUT = -40;

/** Cancellation and yielding of the passes: every CHUNK units of work, a checkpoint (which yields when
 *  the library's yield interval has passed, and otherwise costs a clock read and a microtask). */
export class Meter {
  private work = 0;
  constructor(readonly signal: AbortSignalLike | undefined) {}
  async add(units: number): Promise<void> {
    this.work += units;
    if (this.work < CHUNK) return;
    this.work = 0;
    await checkpoint(this.signal);
  }
}

/**
 * f applied to every value of w, CHUNK values at a time with a meter check in between: the setup
 * passes over a large image (normalising, logs) would otherwise each hold the event loop for tens of
 * milliseconds (their code still cold on the first call).
 */
export async function meteredMap(w: Float64Array, f: (v: number) => number, meter: Meter): Promise<Float64Array> {
  const out = new Float64Array(w.length);
  for (let start = 0; start < w.length; start += CHUNK) {
    const end = Math.min(w.length, start + CHUNK);
    for (let k = start; k < end; k++) out[k] = f(w[k]!);
    await meter.add(end - start);
  }
  return out;
}

/** log of non-negative masses, -Infinity for 0, metered (see meteredMap). */
export function logMassesMetered(w: Float64Array, meter: Meter): Promise<Float64Array> {
  return meteredMap(w, (x) => (x > 0 ? Math.log(x) : -Infinity), meter);
}

/** The 1-D kernel of one axis at one temperature: its logs -(t_i - s_j)^2 / (2 eps), its values, and
 *  for each row i the band [lo_i, hi_i) outside which the values underflow to 0. */
interface AxisKernel {
  L: Float64Array;
  K: Float64Array;
  lo: Int32Array;
  hi: Int32Array;
}

/** The last kernel built for each pair of coordinate arrays (the four softmins of an iteration share
 *  it); weak, so that it goes with its grids. */
const kernels = new WeakMap<Float64Array, WeakMap<Float64Array, { eps: number; kernel: AxisKernel }>>();

function cachedKernel(t: Float64Array, s: Float64Array, eps: number): AxisKernel {
  let bySource = kernels.get(t);
  if (bySource === undefined) kernels.set(t, (bySource = new WeakMap()));
  const hit = bySource.get(s);
  if (hit !== undefined && hit.eps === eps) return hit.kernel;
  const kernel = axisKernel(t, s, eps);
  bySource.set(s, { eps, kernel });
  return kernel;
}

function axisKernel(t: Float64Array, s: Float64Array, eps: number): AxisKernel {
  const nT = t.length;
  const nS = s.length;
  const L = new Float64Array(nT * nS);
  const K = new Float64Array(nT * nS);
  const lo = new Int32Array(nT);
  const hi = new Int32Array(nT);
  const c = 0.5 / eps;
  for (let i = 0; i < nT; i++) {
    let first = nS;
    let last = -1;
    for (let j = 0; j < nS; j++) {
      const d = t[i]! - s[j]!;
      const l = -(d * d) * c;
      const k = Math.exp(l);
      L[i * nS + j] = l;
      K[i * nS + j] = k;
      if (k > 0) {
        if (first === nS) first = j;
        last = j;
      }
    }
    lo[i] = first;
    hi[i] = last + 1;
  }
  return { L, K, lo, hi };
}

/** Below this, a kernel-domain sum may have lost its terms to underflow: the row is redone in logs. */
const TINY = 1e-200;

/** log sum_j exp(v[base + j * stride] + L[lo + j]) over j < nS, max-shifted (the exact path). */
function lseStrided(v: Float64Array, base: number, stride: number, nS: number, L: Float64Array, lo: number): number {
  let m = -Infinity;
  for (let j = 0; j < nS; j++) {
    const t = v[base + j * stride]! + L[lo + j]!;
    if (t > m) m = t;
  }
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let j = 0; j < nS; j++) {
    const t = v[base + j * stride]! + L[lo + j]! - m;
    if (t > CUT) s += Math.exp(t);
  }
  return m + Math.log(s);
}

/**
 * out[o, i, c] = log sum_j exp(v[o, j, c] + L[i, j]): one axis of the separable log-convolution, on
 * v viewed as [outer, nS, inner]. Fast path: with M = max_j v[o, j, c] and E = exp(v - M), the sum is
 * M + log sum_j K[i, j] E[o, j, c], a band of multiply-adds without exp (every term is a product of
 * numbers <= 1, so it is as accurate as the log-domain sum while the total stays far from underflow).
 * Where the total is below TINY (far from every mass at small eps) that entry is redone in the log
 * domain, exactly.
 */
async function lsePass(
  v: Float64Array,
  outer: number,
  nS: number,
  inner: number,
  ker: AxisKernel,
  nT: number,
  meter: Meter,
): Promise<Float64Array> {
  const { L, K, lo, hi } = ker;
  const out = new Float64Array(outer * nT * inner);
  const M = new Float64Array(inner);
  const E = new Float64Array(nS * inner);
  const sm = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const vb = o * nS * inner;
    M.fill(-Infinity);
    for (let j = 0; j < nS; j++) {
      const b = vb + j * inner;
      for (let c = 0; c < inner; c++) if (v[b + c]! > M[c]!) M[c] = v[b + c]!;
    }
    for (let j = 0; j < nS; j++) {
      const b = vb + j * inner;
      // exp(-inf - -inf) would be NaN: a column without mass stays without mass.
      for (let c = 0; c < inner; c++) E[j * inner + c] = M[c] === -Infinity ? 0 : Math.exp(v[b + c]! - M[c]!);
    }
    // The max and exp passes over [nS, inner] come before the first row: a check here too.
    await meter.add(2 * nS * inner);
    let work = 0;
    for (let i = 0; i < nT; i++) {
      const row = i * nS;
      const ob = (o * nT + i) * inner;
      if (inner === 1) {
        let s = 0;
        for (let j = lo[i]!; j < hi[i]!; j++) s += K[row + j]! * E[j]!;
        work += hi[i]! - lo[i]!;
        if (s >= TINY) out[ob] = M[0]! + Math.log(s);
        else if (M[0] === -Infinity) out[ob] = -Infinity;
        else {
          out[ob] = lseStrided(v, vb, 1, nS, L, row);
          work += 2 * nS;
        }
        continue;
      }
      sm.fill(0);
      for (let j = lo[i]!; j < hi[i]!; j++) {
        const k = K[row + j]!;
        const eb = j * inner;
        for (let c = 0; c < inner; c++) sm[c]! += k * E[eb + c]!;
      }
      work += (hi[i]! - lo[i]!) * inner;
      for (let c = 0; c < inner; c++) {
        if (sm[c]! >= TINY) out[ob + c] = M[c]! + Math.log(sm[c]!);
        else if (M[c] === -Infinity) out[ob + c] = -Infinity;
        else {
          out[ob + c] = lseStrided(v, vb + c, inner, nS, L, row);
          work += 2 * nS;
        }
      }
      if (work >= CHUNK) {
        await meter.add(work);
        work = 0;
      }
    }
    await meter.add(work);
  }
  return out;
}

/**
 * log sum_j exp(h_j - |x_i - y_j|^2 / (2 eps)) for every pixel x_i of `target`, y_j the pixels of
 * `source` (h on source, -Infinity where a pixel has no mass). Both grids have the same number of axes.
 */
export async function logConvolve(
  source: Grid,
  h: Float64Array,
  target: Grid,
  eps: number,
  meter: Meter,
): Promise<Float64Array> {
  const D = source.shape.length;
  const dims = [...source.shape];
  let v = h;
  for (let k = 0; k < D; k++) {
    const nS = dims[k]!;
    const nT = target.shape[k]!;
    const outer = dims.slice(0, k).reduce((p, n) => p * n, 1);
    const inner = dims.slice(k + 1).reduce((p, n) => p * n, 1);
    const kernel = cachedKernel(target.coords[k]!, source.coords[k]!, eps);
    await meter.add(nT * nS); // building it costs that many exps (nothing when cached)
    v = await lsePass(v, outer, nS, inner, kernel, nT, meter);
    dims[k] = nT;
  }
  return v;
}

/** log of non-negative masses, -Infinity for 0 (such a pixel carries nothing: exactly dropped). */
export function logMasses(w: Float64Array): Float64Array {
  return w.map((x) => (x > 0 ? Math.log(x) : -Infinity));
}

/** Checks that every image has the shape of the first; the error names the argument. */
export function checkSameShape(who: string, first: ParsedImage, other: ParsedImage): void {
  const s = first.shape;
  const t = other.shape;
  if (s.length !== t.length || s.some((n, k) => n !== t[k])) {
    throw new GeomLossError(
      `${who}: ${other.name}.shape [${t.join(', ')}] differs from ${first.name}.shape [${s.join(', ')}]: the images must be on the same grid`,
    );
  }
}

/** The output precision: the option, else float32 when every image is a Float32Array, else float64. */
export function outputDType(
  who: string,
  option: 'float32' | 'float64' | null,
  images: readonly ParsedImage[],
): 'float32' | 'float64' {
  if (option !== null) return option;
  const kinds = new Set(images.map((i) => i.natural).filter((n) => n !== null));
  if (kinds.size > 1) {
    const a = images.find((i) => i.natural === 'float32')!;
    const b = images.find((i) => i.natural === 'float64')!;
    throw new GeomLossError(
      `${who}: ${a.name} is float32 but ${b.name} is float64; pass { dtype } or convert the data`,
    );
  }
  return kinds.has('float32') ? 'float32' : 'float64';
}

/** An image result in the output precision. */
export function imageResult(data: Float64Array, shape: readonly number[], dtype: 'float32' | 'float64'): ImageResult {
  return { data: dtype === 'float32' ? Float32Array.from(data) : data, shape: [...shape] as ImageResult['shape'] };
}
