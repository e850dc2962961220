// The bench's two 3-D cloud families (bench/data.mjs's sinkhornClouds, in float64) and the accuracy
// check of issue 12 on them: the multiscale value on GeomLoss's default fixed schedule against a
// converged one, for the tests that pin it at test-friendly sizes.
import { SamplesLoss, type SamplesLossOptions } from '../../src/geomloss/index.js';

export type CloudFamily = 'smooth' | 'concentrated';

/** bench/data.mjs's LCG and clouds of n points each: "smooth" x uniform in the unit cube, y uniform in
 *  [0.25, 0.85]^3 (seed n + 1); "concentrated" y = 0.3 + 0.6 u v per coordinate (seed n). */
export function benchClouds(n: number, kind: CloudFamily): { x: Float64Array; y: Float64Array } {
  let s = (kind === 'smooth' ? n + 1 : n) >>> 0;
  const r = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s >>> 8) / 16777216;
  };
  const x = new Float64Array(3 * n);
  const y = new Float64Array(3 * n);
  for (let k = 0; k < 3 * n; k++) {
    x[k] = r();
    y[k] = kind === 'smooth' ? 0.25 + 0.6 * r() : 0.3 + 0.6 * r() * r();
  }
  return { x, y };
}

/**
 * The debiased Sinkhorn divergence (p = 2, blur 0.01, float64, multiscale) between the clouds of a
 * family on GeomLoss's default schedule (scaling 0.5), and a converged reference: a slow schedule
 * (`referenceScaling`) followed by `convergence` at the final blur. With `convergence` multiscale
 * equals online to 1e-6 (tests/geomloss/multilevel.test.ts).
 */
export async function defaultScheduleAndReference(
  n: number,
  kind: CloudFamily,
  referenceScaling: number,
  convergence: { tol: number; maxIter: number },
): Promise<{ fixed: number; converged: number }> {
  const { x, y } = benchClouds(n, kind);
  const X = { data: x, shape: [n, 3] as [number, number] };
  const Y = { data: y, shape: [n, 3] as [number, number] };
  const base: SamplesLossOptions = {
    loss: 'sinkhorn',
    p: 2,
    blur: 0.01,
    scaling: 0.5,
    debias: true,
    dtype: 'float64',
    backend: 'multiscale',
  };
  const fixed = await new SamplesLoss(base).value(X, Y);
  const converged = await new SamplesLoss({ ...base, scaling: referenceScaling, convergence }).value(X, Y);
  return { fixed, converged };
}
