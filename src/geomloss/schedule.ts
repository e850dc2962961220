// GeomLoss's epsilon-scaling schedule and its diameter estimate.
import type { Cloud } from './inputs.js';
import { asEntry, GeomLossError, MAX_ITERATIONS } from './options.js';

/**
 * GeomLoss's max_diameter: the diagonal of the bounding box of all the points of x and y (in a batch,
 * of every item together, as GeomLoss does with x.view(-1, D)). 0 when all points coincide.
 */
export function boundingDiameter(x: Cloud, y: Cloud): number {
  const D = x.D;
  const lo = new Float64Array(D).fill(Infinity);
  const hi = new Float64Array(D).fill(-Infinity);
  for (const c of [x, y]) {
    const { data } = c;
    for (let r = 0; r < data.length; r += D) {
      for (let k = 0; k < D; k++) {
        const v = data[r + k]!;
        if (v < lo[k]!) lo[k] = v;
        if (v > hi[k]!) hi[k] = v;
      }
    }
  }
  let s = 0;
  for (let k = 0; k < D; k++) {
    const d = hi[k]! - lo[k]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

const powP = (v: number, p: number): number => (p === 1 ? v : p === 2 ? v * v : Math.pow(v, p));

/**
 * [d^p] + [exp(e) for e in np.arange(p ln d, p ln blur, p ln scaling)] + [blur^p], with numpy's
 * arange rules (length ceil((stop - start) / step), values start + k * ((start + step) - start)).
 * The first two entries are both d^p: GeomLoss iterates twice at the coarsest temperature.
 * @throws GeomLossError (entry `epsilonSchedule`) when p, diameter or blur is not a finite number > 0,
 *   when scaling is not in (0, 1), or when the schedule would pass MAX_ITERATIONS temperatures.
 */
export function epsilonSchedule(p: number, diameter: number, blur: number, scaling: number): number[] {
  // A bad argument would otherwise give NaN temperatures or an empty loop without a word.
  const positive = (name: string, v: number): void => {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
      throw new GeomLossError(`${name} must be a finite number > 0, got ${String(v)}`, 'epsilonSchedule');
  };
  positive('p', p);
  positive('diameter', diameter);
  positive('blur', blur);
  if (typeof scaling !== 'number' || !(scaling > 0 && scaling < 1))
    throw new GeomLossError(`scaling must be a number in (0, 1), got ${String(scaling)}`, 'epsilonSchedule');
  const start = p * Math.log(diameter);
  const stop = p * Math.log(blur);
  const step = p * Math.log(scaling);
  const q = (stop - start) / step;
  const n = q > 0 ? Math.ceil(q) : 0;
  // Checked before anything is allocated: scaling = 0.999999 plans millions of temperatures.
  if (!(n + 2 <= MAX_ITERATIONS)) {
    // Named for this public function; the losses relabel it with their own name (asEntry).
    throw new GeomLossError(
      `scaling = ${scaling} makes an epsilon schedule of ${Number.isFinite(n) ? n + 2 : 'infinitely many'} temperatures from diameter ${diameter} down to blur ${blur} (more than ${MAX_ITERATIONS}); use a smaller scaling (GeomLoss's default is 0.5)`,
      'epsilonSchedule',
    );
  }
  const out = [powP(diameter, p)];
  if (n >= 1) out.push(Math.exp(start));
  if (n >= 2) {
    const next = start + step;
    out.push(Math.exp(next));
    const delta = next - start;
    for (let k = 2; k < n; k++) out.push(Math.exp(start + k * delta));
  }
  out.push(powP(blur, p));
  return out;
}

/**
 * The schedule for a problem: from the given diameter or the bounding box. When every point coincides
 * (diameter 0) GeomLoss fails (np.arange from -inf); we use diameter = blur instead, i.e. the schedule
 * [blur^p, blur^p], which gives the exact answer (0 for a debiased divergence) without NaN.
 */
export function scheduleFor(
  x: Cloud,
  y: Cloud,
  o: { p: number; blur: number; scaling: number; diameter: number | null },
): { schedule: number[]; diameter: number } {
  let diameter = o.diameter ?? boundingDiameter(x, y);
  if (!(diameter > 0)) diameter = o.blur;
  return { schedule: asEntry('SamplesLoss', () => epsilonSchedule(o.p, diameter, o.blur, o.scaling)), diameter };
}

export { powP };
