// Issue 12's accuracy target on the bench's concentrated family (bench/data.mjs: x uniform in the unit
// cube, y = 0.3 + 0.6 u v per coordinate, piled up near a corner), at a test-friendly size: on
// GeomLoss's default fixed schedule (blur 0.01, scaling 0.5, debiased, p = 2, 3-D) the multilevel
// value against a converged one. Sinkhorn's last modes converge very slowly on these clouds (after
// the fixed schedule, 3000 more iterations at the final blur still move the value by 0.3% at 3000
// points), so the reference anneals slowly instead (scaling 0.95: the potentials track each
// temperature) and then iterates 200 times at the final blur: 0.0493176 here, while 3000 iterations
// after the fixed schedule reach 0.0493331 and still climb (at 2000 points 200 more iterations moved
// the slow reference by 0.02%, at 10^4 300 more by 0.01%). The coarse levels' iterations
// (COARSE_ITERATIONS in multiscale.ts) decide the fixed-schedule value: with 11 of them it was
// 0.0488448 here (-0.96%, VALUE_BEFORE below), with 61 0.0491739 (-0.29%); at 5000 points -1.03% and
// -0.31%.
import { describe, expect, it } from 'vitest';
import { defaultScheduleAndReference } from '../helpers/sinkhorn-clouds.js';

/** The value on the default schedule before the coarse levels iterated more (11 iterations). */
const VALUE_BEFORE = 0.0488448;

describe('multiscale on GeomLoss default schedule, concentrated clouds', () => {
  it('is close to the converged value (3000 x 3000 points, blur 0.01, float64)', async () => {
    const { fixed, converged } = await defaultScheduleAndReference(3000, 'concentrated', 0.95, {
      tol: 1e-12,
      maxIter: 200,
    });
    const off = Math.abs(fixed - converged) / converged;
    const offBefore = Math.abs(VALUE_BEFORE - converged) / converged;
    expect(off).toBeLessThan(0.006);
    // The threshold is one that the previous coarse iterations did not meet.
    expect(offBefore).toBeGreaterThan(0.006);
  }, 600_000);
});
