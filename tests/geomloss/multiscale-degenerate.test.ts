// Degenerate inputs on the multilevel 'multiscale' backend (issue 12), against closed forms, at
// blurs small enough that the truncation matters. Coincident points are merged before any backend
// runs (tests/geomloss/hardening.test.ts, row 14, 10^6 of them); lines, planes and very different
// sizes against converged online at modest sizes: multilevel.test.ts.
//
// The closed form: for C = |x - y|^2 / 2, a measure and its translate by t (same weights) have the
// debiased divergence |t|^2 / 2 exactly, and the gradients grad x_i = -a_i t, grad y_j = b_j t. The
// cross term of the cost is linear in each point, so the xy problem's potentials are the xx
// problem's plus linear functions (f(x) - t.x, g(y) + t.y - |t|^2 / 2 up to a constant), at every
// iterate of the schedule, not only at convergence: the value is exact on GeomLoss's fixed schedule
// (measured 2e-16 relative), whatever the cloud. The same linear functions must not loosen the
// truncation: the xy patterns keep about as many pairs as the xx ones (they were 1.3x before the
// tilted bound of hierarchy.ts PairBounds).
import { describe, expect, it } from 'vitest';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { rng, weights } from './helpers.js';

type Pts = { data: Float64Array; shape: [number, number] };

/** The multiscale solve of x against x + t (weights a on both), checked against the closed form. */
async function translated(x: Float64Array, t: number[], blur: number, a: number[], y?: Float64Array, b?: number[]) {
  const D = t.length;
  const n = x.length / D;
  const yy = y ?? Float64Array.from(x, (v, k) => v + t[k % D]!);
  const bb = b ?? a;
  const m = yy.length / D;
  const X: Pts = { data: x, shape: [n, D] };
  const Y: Pts = { data: yy, shape: [m, D] };
  const res = await new SamplesLoss({ backend: 'multiscale', blur, dtype: 'float64' }).valueAndGrad(X, Y, { a, b: bb });
  const ms = res.info.multiscale!;
  const t2 = t.reduce((s, v) => s + v * v, 0);
  const tmax = Math.max(...t.map(Math.abs));
  let gx = 0;
  for (let i = 0; i < n; i++)
    for (let k = 0; k < D; k++)
      gx = Math.max(gx, Math.abs(res.grad.x.data[i * D + k]! + a[i]! * t[k]!) / (a[i]! * tmax));
  let gy = 0;
  for (let j = 0; j < m; j++)
    for (let k = 0; k < D; k++)
      gy = Math.max(gy, Math.abs(res.grad.y.data[j * D + k]! - bb[j]! * t[k]!) / (bb[j]! * tmax));
  return { res, ms, valueErr: Math.abs(res.value - 0.5 * t2) / (0.5 * t2), gx, gy };
}

/** The value and both gradients of a translated solve equal the closed form (|t|^2 / 2, -+ a t). */
function expectClosedForm(c: { valueErr: number; gx: number; gy: number }): void {
  expect(c.valueErr).toBeLessThan(1e-9);
  expect(c.gx).toBeLessThan(1e-6);
  expect(c.gy).toBeLessThan(1e-6);
}

describe('multiscale on degenerate inputs: translated copies (closed form)', () => {
  it('two far-apart copies (3-D, translation 48, blur 0.05): exact, and the xy truncation as tight as xx', async () => {
    const n = 1500;
    const r = rng(31);
    const x = Float64Array.from({ length: n * 3 }, () => r());
    const c = await translated(x, [40, -25, 10], 0.05, weights(r, n));
    expectClosedForm(c);
    // Before the tilted bound the final xy patterns kept 0.77 of the pairs against 0.58 for xx.
    const d = c.ms.density;
    expect(d.xy).toBeLessThan(1.03 * d.xx!);
    expect(c.ms.hierarchy.length).toBeGreaterThanOrEqual(4);
  }, 300_000);

  it('points on a line in 3-D, translated off the line (blur 0.01): exact, near-linear pairs', async () => {
    const n = 4000;
    const r = rng(41);
    const dir = [1 / 3, 2 / 3, 2 / 3];
    const x = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      const s = r();
      for (let k = 0; k < 3; k++) x[i * 3 + k] = 0.1 + s * dir[k]!;
    }
    const c = await translated(x, [0.3, -0.2, 0.5], 0.01, weights(r, n));
    expectClosedForm(c);
    // Not quadratic: measured xy 0.169 of the pairs kept at the end, xx 0.124 (the xy bounds are
    // still looser here: the nodes' balls are round, the cells flat, and the translation is off the
    // line; open, issue 12).
    expect(c.ms.density.xy).toBeLessThan(0.2);
    expect(c.ms.density.xx).toBeLessThan(0.15);
  }, 300_000);

  it('points on a plane in 3-D, translated out of it (blur 0.01): exact, near-linear pairs', async () => {
    const n = 4000;
    const r = rng(43);
    const x = Float64Array.from({ length: n * 3 }, (_, k) => (k % 3 === 2 ? 0.25 : r()));
    const c = await translated(x, [0.1, 0.2, 0.3], 0.01, weights(r, n));
    expectClosedForm(c);
    // Measured xy 0.177, xx 0.082 (as on the line: flat cells, a translation out of their plane).
    expect(c.ms.density.xy).toBeLessThan(0.21);
    expect(c.ms.density.xx).toBeLessThan(0.1);
  }, 300_000);

  it('half the points on 6 coincident locations (merged), the rest spread (blur 0.02): exact', async () => {
    const n = 10_000;
    const r = rng(47);
    const loc = Float64Array.from({ length: 6 * 3 }, () => r());
    const x = Float64Array.from({ length: n * 3 }, (_, k) => {
      const i = Math.floor(k / 3);
      return i % 2 === 0 ? loc[((i >> 1) % 6) * 3 + (k % 3)]! : r();
    });
    const c = await translated(x, [0.05, -0.1, 0.2], 0.02, weights(r, n));
    expectClosedForm(c);
    // The merged cloud (5006 locations) is what the hierarchy saw.
    const points = c.ms.hierarchy[c.ms.hierarchy.length - 1]!;
    expect(points.cells).toEqual({ x: n / 2 + 6, y: n / 2 + 6 });
  }, 300_000);
});

describe('multiscale on degenerate inputs: very different sizes', () => {
  it('10^3 points against 4 10^4 (each translated x point split in 40 points within 1e-5): the closed form to O(delta^2)', async () => {
    // y: 40 points around each x_i + t, at x_i + t +- delta_q (pairs of opposite offsets, |delta_q|
    // <= 1e-5), each of weight a_i / 40. As measures y = (translate of x) + zero-mean jitter: the
    // divergence's first-order change is sum_j b_j grad_j . delta_j = t . sum_j b_j delta_j = 0,
    // and the second-order one is O(|delta|^2 / eps) relative = O(1e-10 / 1e-4) = 1e-6 at most.
    const n = 1000;
    const copies = 40;
    const r = rng(53);
    const x = Float64Array.from({ length: n * 3 }, () => r());
    const a = weights(r, n);
    const t = [0.2, 0.1, -0.15];
    const y = new Float64Array(n * copies * 3);
    const b: number[] = new Array<number>(n * copies);
    for (let i = 0; i < n; i++)
      for (let q = 0; q < copies; q += 2) {
        const delta = [0, 1, 2].map(() => 1e-5 * (2 * r() - 1));
        for (const [s, row] of [
          [1, i * copies + q],
          [-1, i * copies + q + 1],
        ] as const) {
          for (let k = 0; k < 3; k++) y[row * 3 + k] = x[i * 3 + k]! + t[k]! + s * delta[k]!;
          b[row] = a[i]! / copies;
        }
      }
    const res = await new SamplesLoss({ backend: 'multiscale', blur: 0.01, dtype: 'float64' }).valueAndGrad(
      { data: x, shape: [n, 3] },
      { data: y, shape: [n * copies, 3] },
      { a, b },
    );
    const want = 0.5 * t.reduce((s, v) => s + v * v, 0);
    expect(Math.abs(res.value - want) / want).toBeLessThan(1e-5);
    let gx = 0;
    for (let i = 0; i < n; i++)
      for (let k = 0; k < 3; k++)
        gx = Math.max(gx, Math.abs(res.grad.x.data[i * 3 + k]! + a[i]! * t[k]!) / (a[i]! * 0.2));
    expect(gx).toBeLessThan(1e-3);
    const ms = res.info.multiscale!;
    const points = ms.hierarchy[ms.hierarchy.length - 1]!;
    expect(points.cells).toEqual({ x: n, y: n * copies });
    // Not quadratic: the xy patterns keep a small fraction of the pairs (measured 0.100 here, 0.072
    // against 10^5 points split in 100).
    expect(ms.density.xy).toBeLessThan(0.13);
  }, 300_000);
});
