// Where GeomLoss breaks and we must not: identical clouds (exactly 0), zero diameter (no crash, no
// NaN), and the Hausdorff divergence's defining properties.
import { describe, expect, it } from 'vitest';
import { SamplesLoss, type SamplesLossOptions } from '../../src/geomloss/index.js';
import { denseSamplesLoss } from '../reference/geomloss-dense.js';
import { cloud, expectMatch, flat, rng, weights } from './helpers.js';

const r = rng(5);
const x = cloud(r, 21, 3);
const a = weights(r, 21);

const exactZeroLosses: [string, SamplesLossOptions][] = [
  ['sinkhorn p=2', { p: 2 }],
  ['sinkhorn p=1', { p: 1 }],
  ['sinkhorn p=2 reach 0.2', { p: 2, reach: 0.2 }],
  ['sinkhorn p=1 custom cost', { p: 1, cost: (u, v) => u.sqDist(v).clamp(1e-8, 1e30).sqrt() }],
  ['gaussian', { loss: 'gaussian', blur: 0.2 }],
  ['laplacian', { loss: 'laplacian', blur: 0.2 }],
  ['energy', { loss: 'energy' }],
  ['hausdorff p=2', { loss: 'hausdorff', p: 2 }],
];

describe('identical measures: the divergence is exactly 0', () => {
  for (const [name, opts] of exactZeroLosses) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${name} (${dtype})`, async () => {
        const loss = new SamplesLoss({ ...opts, dtype });
        // distinct arrays holding the same values
        const res = await loss.valueAndGrad(
          x,
          x.map((p) => p.slice()),
          { a, b: a.slice() },
        );
        expect(res.value).toBe(0);
        const grads = [res.grad.x.data, res.grad.y.data, res.grad.a.data, res.grad.b.data];
        if (opts.loss === 'hausdorff') {
          // H has a minimum there: its exact gradients vanish up to rounding
          for (const g of grads)
            for (const v of g) expect(Math.abs(v)).toBeLessThan(dtype === 'float64' ? 1e-12 : 1e-5);
        } else {
          for (const g of grads) for (const v of g) expect(v).toBe(0);
        }
      });
    }
  }
});

describe('zero diameter (every point at the same place): GeomLoss crashes, we do not', () => {
  const p0 = [0.3, -1.2, 2];
  const xs = Array.from({ length: 7 }, () => p0.slice());
  const ys = Array.from({ length: 5 }, () => p0.slice());
  const aw = weights(rng(1), 7);
  const bw = weights(rng(2), 5);
  for (const [name, opts] of [
    ['sinkhorn p=2 debias', { p: 2 }],
    ['sinkhorn p=1 debias', { p: 1 }],
    ['sinkhorn p=2 raw', { p: 2, debias: false }],
    ['hausdorff p=2', { loss: 'hausdorff', p: 2 }],
  ] as [string, SamplesLossOptions][]) {
    it(`${name}: finite, equal to the reference (diameter := blur), 0 when debiased`, async () => {
      const loss = new SamplesLoss(opts);
      const res = await loss.valueAndGrad(xs, ys, { a: aw, b: bw });
      expect(res.info.diameter).toBe(0.05);
      expect(res.info.schedule).toEqual([0.05 ** (opts.p ?? 2), 0.05 ** (opts.p ?? 2)]);
      for (const g of [res.grad.x.data, res.grad.y.data, res.grad.a.data, res.grad.b.data]) {
        for (const v of g) expect(Number.isFinite(v)).toBe(true);
      }
      const ref = denseSamplesLoss(xs, ys, aw, bw, {
        loss: opts.loss ?? 'sinkhorn',
        p: opts.p as 1 | 2,
        blur: 0.05,
        reach: null,
        diameter: null,
        scaling: 0.5,
        debias: opts.debias ?? true,
      });
      expect(Math.abs(res.value - ref.value)).toBeLessThan(1e-12);
      if (opts.debias !== false) expect(Math.abs(res.value)).toBeLessThan(1e-15);
      expectMatch(res.grad.x.data, flat(ref.gradX), 1e-6, `${name} grad x`);
    });
  }

  it('a single point against a single point elsewhere works (N = M = 1)', async () => {
    const loss = new SamplesLoss({ p: 2, blur: 0.01 });
    const res = await loss.valueAndGrad([[0, 0]], [[3, 4]]);
    // balanced OT between two Diracs: |x - y|^2 / 2, and the debiasing terms cancel the entropy
    expect(res.value).toBeCloseTo(12.5, 10);
    expectMatch(res.grad.x.data, [-3, -4], 1e-9, 'grad x');
  });
});

describe('the Hausdorff divergence (Feydy et al. 2019)', () => {
  for (const p of [1, 2]) {
    it(`p=${p}: non-negative, symmetric, positive for different measures`, async () => {
      const loss = new SamplesLoss({ loss: 'hausdorff', p, blur: 0.05 });
      const rr = rng(40 + p);
      for (let t = 0; t < 3; t++) {
        const xt = cloud(rr, 9, 2);
        const yt = cloud(rr, 12, 2, 0.3 * t);
        const at = weights(rr, 9);
        const bt = weights(rr, 12);
        const h1 = await loss.value(xt, yt, { a: at, b: bt });
        const h2 = await loss.value(yt, xt, { a: bt, b: at });
        expect(h1).toBeGreaterThan(0);
        expect(Math.abs(h1 - h2)).toBeLessThan(1e-12 * h1);
      }
    });
  }

  it('tends to the chamfer loss 1/2 <a, d(x, y)> + 1/2 <b, d(y, x)> for a small blur, p = 1', async () => {
    const xt = cloud(rng(8), 10, 2);
    const yt = cloud(rng(9), 13, 2, 0.5);
    const at = weights(rng(10), 10);
    const bt = weights(rng(11), 13);
    const dist = (u: number[], v: number[]) => Math.hypot(u[0]! - v[0]!, u[1]! - v[1]!);
    let chamfer = 0;
    for (let i = 0; i < 10; i++) chamfer += 0.5 * at[i]! * Math.min(...yt.map((v) => dist(xt[i]!, v)));
    for (let j = 0; j < 13; j++) chamfer += 0.5 * bt[j]! * Math.min(...xt.map((v) => dist(yt[j]!, v)));
    const h = await new SamplesLoss({ loss: 'hausdorff', p: 1, blur: 0.001 }).value(xt, yt, { a: at, b: bt });
    expect(Math.abs(h - chamfer)).toBeLessThan(0.02 * chamfer);
  });
});
