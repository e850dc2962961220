// Multiscale in D = 16 on clumped clouds (issue 12): 32 clumps of radius ~0.06 about 1.6 apart, so
// at the final temperature (blur 0.05 of the diameter, truncation reach ~1) only pairs within a
// clump and its translate survive, ~1/32 of them. A cloud and its translate by t have the debiased
// divergence |t|^2 / 2 exactly on any schedule (multiscale-degenerate.test.ts): the float64
// reference here, independent of either backend.
import { describe, expect, it } from 'vitest';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { rng } from './helpers.js';

describe('multiscale in D = 16, clumped clouds', () => {
  it('prunes to within the clumps and keeps the closed-form value', async () => {
    const D = 16;
    const n = 6000;
    const r = rng(16);
    const centres = Float64Array.from({ length: 32 * D }, () => r());
    const x = new Float64Array(n * D);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(r() * 32);
      for (let k = 0; k < D; k++) x[i * D + k] = centres[c * D + k]! + 0.05 * (r() - 0.5);
    }
    const t = 0.03;
    const y = Float64Array.from(x, (v) => v + t);
    let diag = 0;
    for (let k = 0; k < D; k++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < n; i++) {
        lo = Math.min(lo, x[i * D + k]!);
        hi = Math.max(hi, y[i * D + k]!);
      }
      diag += (hi - lo) ** 2;
    }
    const blur = 0.05 * Math.sqrt(diag);
    const want = (D * t * t) / 2;
    const res = await new SamplesLoss({ backend: 'multiscale', blur, dtype: 'float64' }).valueAndGrad(
      { data: x, shape: [n, D] },
      { data: y, shape: [n, D] },
    );
    expect(Math.abs(res.value - want) / want).toBeLessThan(1e-6);
    const ms = res.info.multiscale!;
    // Measured 0.299 (xy) and 0.298 (xx) here (0.596 at 2000 points, 0.34 at 5000 in the bench):
    // above the clumps' share 1/32 because the k-d tree's median cuts split clumps, so many tiles of
    // 16 points straddle two clumps and are as wide as their distance. The value above: 3e-9 relative.
    expect(ms.density.xy).toBeLessThan(0.35);
    expect(ms.density.xx!).toBeLessThan(0.35);
  }, 120_000);
});
