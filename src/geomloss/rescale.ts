// Problems at extreme scales. The built-in costs and kernels are homogeneous: C(sx, sy) = s^p C(x, y)
// (p = 1, 2), the energy kernel is of degree 1, the gaussian and laplacian kernels of degree 0 in
// (x, blur). So a problem whose coordinates are far from 1 (1e16, 1e20, 1e-20) is solved on
// coordinates divided by a power of two s near their magnitude, with every length option (blur,
// diameter, reach, clusterScale) and the distance clamp divided alike, and the results multiplied
// back (value and potentials by s^q, position gradients by s^(q-1)). Dividing by a power of two is
// exact, so the rescaled problem is the same problem bit for bit, minus the overflow of squared
// distances (1e40 overflows float32, 1e32 passed GeomLoss's clamp at 1e30). Custom costs and kernels
// are not homogeneous in general: they run as given, and the results are checked instead.
// Then, on the rescaled problem, the temperatures must be representable: checkTemperatures names the
// option (blur, diameter) that makes one underflow or overflow, instead of an internal error.
import type { Cloud } from './inputs.js';
import { GeomLossError, type ResolvedOptions } from './options.js';

/** Coordinates with magnitudes in [2^-RANGE, 2^RANGE] are used as they are. */
const RANGE = 32;

/** The largest finite value of each precision. */
export const MAX_FINITE = { float32: 3.4028234663852886e38, float64: Number.MAX_VALUE } as const;

/** The degree q of the loss in the lengths: value(s x, s y; s lengths) = s^q value(x, y; lengths). */
export function lossDegree(o: ResolvedOptions): number {
  switch (o.loss) {
    case 'sinkhorn':
    case 'hausdorff':
      return o.p;
    case 'energy':
      return 1;
    case 'gaussian':
    case 'laplacian':
      return 0;
  }
}

/** The power of two the coordinates are divided by (1: none). */
export function scaleFor(o: ResolvedOptions, x: Cloud, y: Cloud): number {
  if (o.cost !== null || o.kernel !== null) return 1;
  let R = 0;
  for (const c of [x, y]) for (let k = 0; k < c.data.length; k++) R = Math.max(R, Math.abs(c.data[k]!));
  if (R === 0) return 1;
  const e = Math.round(Math.log2(R));
  if (Math.abs(e) <= RANGE) return 1;
  return 2 ** Math.max(-1022, Math.min(1023, e));
}

export function scaledCloud(c: Cloud, s: number): Cloud {
  if (s === 1) return c;
  const data = c.data instanceof Float32Array ? new Float32Array(c.data.length) : new Float64Array(c.data.length);
  for (let k = 0; k < data.length; k++) data[k] = c.data[k]! / s;
  return { ...c, data };
}

/** The options of the rescaled problem (lengths divided by s). */
export function scaledOptions(o: ResolvedOptions, s: number): ResolvedOptions {
  if (s === 1) return o;
  const div = (v: number | null) => (v === null ? null : v / s);
  return { ...o, blur: o.blur / s, diameter: div(o.diameter), reach: div(o.reach), clusterScale: div(o.clusterScale) };
}

/** v times f, a new array (results may share arrays: the kernel losses' F is their gradA). */
export function times<T extends Float64Array | null>(v: T, f: number): T {
  if (v === null || f === 1) return v;
  return v.map((u) => u * f) as T;
}

/**
 * Checks, on the rescaled problem (lengths divided by s), that the epsilon schedule's temperatures
 * and the costs over them are representable in the working precision; the errors name the user's
 * option and its value. (The costs over epsilon reach (diameter / blur)^p.)
 */
export function checkTemperatures(
  user: ResolvedOptions,
  scaled: ResolvedOptions,
  diameter: number,
  s: number,
  dtype: 'float32' | 'float64',
): void {
  const p = scaled.p;
  const epsMin = Math.pow(scaled.blur, p);
  if (!(epsMin > 0) || !Number.isFinite(1 / epsMin)) {
    throw new GeomLossError(
      `blur = ${user.blur} is too small: epsilon = blur^p = ${user.blur}^${p} underflows float64 next to points of magnitude ${(s === 1 ? 1 : s).toExponential(1)}; use a larger blur`,
    );
  }
  const epsMax = Math.pow(diameter, p);
  if (!Number.isFinite(epsMax)) {
    throw new GeomLossError(
      `diameter = ${diameter * s} is too large: the epsilon schedule starts at diameter^p = ${diameter * s}^${p}, which overflows float64; use a smaller diameter (or null: the points' bounding box)`,
    );
  }
  // The softmin's formula holds C / eps up to (diameter / blur)^p / 2, and its logits f / eps: keep
  // them 16 times below the precision's largest value.
  const ratio = Math.pow(diameter / scaled.blur, p);
  if (!(ratio <= MAX_FINITE[dtype] / 16)) {
    const what = dtype === 'float32' ? "use dtype 'float64' or a larger blur" : 'use a larger blur';
    throw new GeomLossError(
      `blur = ${user.blur} is too small for ${dtype} next to the diameter ${(diameter * s).toExponential(3)}: the costs over epsilon reach (diameter / blur)^p = ${ratio.toExponential(2)}, beyond ${dtype}'s range; ${what}`,
    );
  }
}

/** For the gaussian and laplacian kernels: coordinates over blur must stay representable. */
export function checkKernelWidth(user: ResolvedOptions, x: Cloud, y: Cloud, dtype: 'float32' | 'float64'): void {
  if (user.kernel !== null || (user.loss !== 'gaussian' && user.loss !== 'laplacian')) return;
  let R = 0;
  for (const c of [x, y]) for (let k = 0; k < c.data.length; k++) R = Math.max(R, Math.abs(c.data[k]!));
  // |x/blur - y/blur|^2 <= D (2 R / blur)^2 must be finite (an overflow would give inf - inf = NaN).
  const reach = x.D * ((2 * R) / user.blur) ** 2;
  if (!(reach <= MAX_FINITE[dtype] / 16)) {
    const what = dtype === 'float32' ? "use dtype 'float64' or a larger blur" : 'use a larger blur';
    throw new GeomLossError(
      `blur = ${user.blur} is too small for ${dtype} next to coordinates of magnitude ${R.toExponential(2)}: the kernel's squared distances in blur units reach ${reach.toExponential(2)}; ${what}`,
    );
  }
}

/**
 * The last line of defence: a result that is not finite (a custom cost that overflows, say), or that
 * float32 cannot hold, is a named error rather than NaN or Infinity in the output.
 */
export function checkResults(
  arrays: Record<string, Float64Array | null>,
  dtype: 'float32' | 'float64',
  o: ResolvedOptions,
): void {
  for (const [name, v] of Object.entries(arrays)) {
    if (v === null) continue;
    for (let k = 0; k < v.length; k++) {
      const x = v[k]!;
      if (Number.isFinite(x) && Math.abs(x) <= MAX_FINITE[dtype]) continue;
      const custom = o.cost !== null ? 'the custom cost' : o.kernel !== null ? 'the custom kernel' : 'the loss';
      if (Number.isNaN(x) || !Number.isFinite(x)) {
        throw new GeomLossError(
          `the ${name} came out ${x} in ${dtype}: ${custom} overflowed on these inputs (coordinates or blur out of range); rescale the points${dtype === 'float32' ? " or use dtype 'float64'" : ''}`,
        );
      }
      throw new GeomLossError(
        `the ${name} (${x.toExponential(2)}) overflows float32, which is what dtype 'float32' returns; use dtype 'float64' or rescale the points`,
      );
    }
  }
}
