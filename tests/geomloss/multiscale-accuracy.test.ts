// Issue 12's accuracy target, at a test-friendly size: on GeomLoss's default fixed schedule (blur
// 0.01, scaling 0.5, debiased, p = 2, 3-D) the multilevel value is within 1% of the converged value.
// The clouds are the bench's smooth family (bench/data.mjs, bench/multilevel.mjs): x uniform in the
// unit cube, y uniform in [0.25, 0.85]^3, 2000 points each. The level rule of multiscale.ts decides
// this: cells as wide as twice the kernel (SPREAD = 1) gave -1.70% here, GeomLoss's rule (SPREAD = 2)
// -0.48%.
import { describe, expect, it } from 'vitest';
import { SamplesLoss, type SamplesLossOptions } from '../../src/geomloss/index.js';

/** bench/data.mjs's LCG and its smooth clouds of n points each. */
function smoothClouds(n: number): { x: Float64Array; y: Float64Array } {
  let s = (n + 1) >>> 0;
  const r = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s >>> 8) / 16777216;
  };
  const x = new Float64Array(3 * n);
  const y = new Float64Array(3 * n);
  for (let k = 0; k < 3 * n; k++) {
    x[k] = r();
    y[k] = 0.25 + 0.6 * r();
  }
  return { x, y };
}

describe('multiscale on GeomLoss default schedule', () => {
  it('is within 1% of the converged value (2000 x 2000 smooth clouds, blur 0.01, float64)', async () => {
    const n = 2000;
    const { x, y } = smoothClouds(n);
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
    // The converged reference: a slow schedule (scaling 0.9: 51 temperatures) then 100 more
    // iterations at the final blur. With `convergence` multiscale equals online to 1e-6
    // (tests/geomloss/multilevel.test.ts). On these smooth clouds the slow schedule gets there fast:
    // at 3000 points, scaling 0.95 and 200 iterations gave 0.0245798, 3000 iterations 0.0245815.
    const converged = await new SamplesLoss({
      ...base,
      scaling: 0.9,
      convergence: { tol: 1e-6, maxIter: 100 },
    }).value(X, Y);
    const off = Math.abs(fixed - converged) / converged;
    expect(off).toBeLessThan(0.01);
    // Not trivially equal: the fixed schedule stops short of convergence.
    expect(off).toBeGreaterThan(1e-4);
  }, 300_000);
});
