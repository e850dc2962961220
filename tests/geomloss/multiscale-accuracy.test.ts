// Issue 12's accuracy target, at a test-friendly size: on GeomLoss's default fixed schedule (blur
// 0.01, scaling 0.5, debiased, p = 2, 3-D) the multilevel value is within 1% of the converged value.
// The clouds are the bench's smooth family (bench/data.mjs, bench/multilevel.mjs): x uniform in the
// unit cube, y uniform in [0.25, 0.85]^3, 2000 points each. The level rule of multiscale.ts decides
// this: cells as wide as twice the kernel (SPREAD = 1) gave -1.70% here, GeomLoss's rule (SPREAD = 2)
// -0.48%.
import { describe, expect, it } from 'vitest';
import { defaultScheduleAndReference } from '../helpers/sinkhorn-clouds.js';

describe('multiscale on GeomLoss default schedule', () => {
  it('is within 1% of the converged value (2000 x 2000 smooth clouds, blur 0.01, float64)', async () => {
    // The converged reference: a slow schedule (scaling 0.9: 51 temperatures) then 100 more
    // iterations at the final blur. On these smooth clouds the slow schedule gets there fast: at 3000
    // points, scaling 0.95 and 200 iterations gave 0.0245798, 3000 iterations 0.0245815.
    const { fixed, converged } = await defaultScheduleAndReference(2000, 'smooth', 0.9, { tol: 1e-6, maxIter: 100 });
    const off = Math.abs(fixed - converged) / converged;
    expect(off).toBeLessThan(0.01);
    // Not trivially equal: the fixed schedule stops short of convergence.
    expect(off).toBeGreaterThan(1e-4);
  }, 300_000);
});
