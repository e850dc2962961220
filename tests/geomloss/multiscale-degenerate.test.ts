// Degenerate inputs on the multilevel 'multiscale' backend (issue 12), against closed forms.
// Coincident points (10^6 of them) are merged before any backend runs: tests/geomloss/hardening.test.ts,
// row 14; lines, planes and very different sizes against converged online: multilevel.test.ts.
import { describe, expect, it } from 'vitest';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { rng } from './helpers.js';

type Pts = { data: Float64Array; shape: [number, number] };

describe('multiscale on degenerate inputs', () => {
  it('two far-apart translated copies: the closed form |t|^2 / 2', async () => {
    // For C = |x - y|^2 / 2 the debiased divergence between a measure and its translate by t is
    // exactly |t|^2 / 2 (the cost's cross term is linear in each point and cancels out).
    const n = 1500;
    const r = rng(31);
    const x = Float64Array.from({ length: n * 3 }, () => r());
    const t = [40, -25, 10];
    const y = Float64Array.from(x, (v, k) => v + t[k % 3]!);
    const X: Pts = { data: x, shape: [n, 3] };
    const Y: Pts = { data: y, shape: [n, 3] };
    const res = await new SamplesLoss({
      backend: 'multiscale',
      blur: 0.05,
      dtype: 'float64',
      convergence: { tol: 1e-9, maxIter: 2000 },
    }).potentials(X, Y);
    const want = 0.5 * t.reduce((s, v) => s + v * v, 0);
    expect(Math.abs(res.value - want) / want).toBeLessThan(1e-6);
    // Pairs not pinned yet: the final xy patterns keep 81% of the pairs here (measured; the cause in
    // the truncation bounds is open, see issue 12), though the value is exact.
    expect(res.info.multiscale!.hierarchy.length).toBeGreaterThanOrEqual(2);
  }, 300_000);
});
