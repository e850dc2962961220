// The unbalanced Hausdorff divergence (reach): symmetric potentials damped like Sinkhorn's and
// GeomLoss's unbalanced scalar products. Checked against a dense float64 evaluation, against the
// balanced value as reach -> infinity, and its gradients against finite differences.
import { describe, expect, it } from 'vitest';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { cloud, expectMatch, rng, weights } from './helpers.js';

const sq = (u: number[], v: number[]) => u.reduce((s, x, d) => s + (x - v[d]!) ** 2, 0);
const costOf = (p: number) => (u: number[], v: number[]) =>
  p === 2 ? sq(u, v) / 2 : Math.sqrt(Math.max(sq(u, v), 1e-8));

/** T(A)(z) = -eps log sum_k w_k exp((A_k - C(z, P_k)) / eps). */
function transform(
  z: number[],
  P: number[][],
  w: number[],
  A: number[],
  eps: number,
  C: (u: number[], v: number[]) => number,
) {
  const t = P.map((q, k) => Math.log(w[k]!) + (A[k]! - C(z, q)) / eps);
  const m = Math.max(...t);
  return -eps * (m + Math.log(t.reduce((s, v) => s + Math.exp(v - m), 0)));
}

/** Dense float64 unbalanced Hausdorff at eps = blur^p, iterated to the fixed point A = kappa T(A). */
function denseHausdorff(
  x: number[][],
  a: number[],
  y: number[][],
  b: number[],
  p: number,
  blur: number,
  reach: number,
) {
  const eps = blur ** p;
  const rho = reach ** p;
  const kappa = 1 / (1 + eps / rho);
  const C = costOf(p);
  const sym = (P: number[][], w: number[]) => {
    let A = new Array<number>(P.length).fill(0);
    for (let it = 0; it < 100000; it++) {
      const next = P.map((z, i) => 0.5 * (A[i]! + kappa * transform(z, P, w, A, eps, C)));
      const change = Math.max(...next.map((v, i) => Math.abs(v - A[i]!)));
      A = next;
      if (change < 1e-15) break;
    }
    return A;
  };
  const A = sym(x, a);
  const B = sym(y, b);
  const ext = (Z: number[][], P: number[][], w: number[], S: number[]) =>
    Z.map((z) => kappa * transform(z, P, w, S, eps, C));
  const selfA = ext(x, x, a, A);
  const extA = ext(y, x, a, A);
  const selfB = ext(y, y, b, B);
  const extB = ext(x, y, b, B);
  const phi = (f: number) => -rho * Math.expm1(-f / rho);
  const c = 1 + eps / (2 * rho);
  let value = 0;
  x.forEach((_, i) => (value += 0.5 * c * a[i]! * (phi(extB[i]!) - phi(selfA[i]!))));
  y.forEach((_, j) => (value += 0.5 * c * b[j]! * (phi(extA[j]!) - phi(selfB[j]!))));
  return { value, f: extB.map((v, i) => v - selfA[i]!), g: extA.map((v, j) => v - selfB[j]!) };
}

const r = rng(99);
const N = 9;
const M = 7;
const x = cloud(r, N, 2);
const y = cloud(r, M, 2, 0.2, 0.8);
const a = weights(r, N);
// Unequal masses: unbalanced transport has to create or destroy mass.
const b = weights(r, M).map((v) => 1.4 * v);

describe("SamplesLoss('hausdorff', { reach })", () => {
  for (const p of [2, 1] as const) {
    it(`matches a dense float64 evaluation (p = ${p})`, async () => {
      const blur = p === 2 ? 0.3 : 0.2;
      const reach = 0.5;
      const loss = new SamplesLoss({ loss: 'hausdorff', p, blur, reach, convergence: { tol: 1e-13, maxIter: 20000 } });
      const got = await loss.potentials(x, y, { a, b });
      const ref = denseHausdorff(x, a, y, b, p, blur, reach);
      expect(got.info.converged).toBe(true);
      expect(Math.abs(got.value - ref.value) / Math.abs(ref.value)).toBeLessThan(1e-9);
      expect(got.value).toBeGreaterThan(0);
      expectMatch(got.f.data, ref.f, 1e-8, 'f');
      expectMatch(got.g.data, ref.g, 1e-8, 'g');
    });
  }

  it('tends to the balanced value as reach -> infinity (reach^p overflowing included)', async () => {
    const bb = weights(rng(3), M);
    const ref = await new SamplesLoss({ loss: 'hausdorff', blur: 0.1 }).valueAndGrad(x, y, { a, b: bb });
    for (const reach of [1e6, 1e12, 1e200]) {
      const got = await new SamplesLoss({ loss: 'hausdorff', blur: 0.1, reach }).valueAndGrad(x, y, { a, b: bb });
      const tol = reach === 1e6 ? 1e-6 : 1e-12;
      expect(Math.abs(got.value - ref.value) / Math.abs(ref.value)).toBeLessThan(tol);
      expectMatch(got.grad.x.data, Array.from(ref.grad.x.data), 10 * tol, `grad x, reach ${reach}`);
      expectMatch(got.grad.a.data, Array.from(ref.grad.a.data), 10 * tol, `grad a, reach ${reach}`);
    }
    // A small reach changes the value: the damping is not a no-op.
    const small = await new SamplesLoss({ loss: 'hausdorff', blur: 0.1, reach: 0.2 }).value(x, y, { a, b: bb });
    expect(Math.abs(small - ref.value) / ref.value).toBeGreaterThan(1e-3);
  });

  it('has exact gradients at convergence: finite differences of the value (x, y, a, b)', async () => {
    const o = { loss: 'hausdorff', blur: 0.3, reach: 0.6, convergence: { tol: 1e-13, maxIter: 20000 } } as const;
    const loss = new SamplesLoss(o);
    const { grad } = await loss.valueAndGrad(x, y, { a, b });
    const h = 1e-5;
    const at = async (xx: number[][], yy: number[][], aa: number[], bb: number[]) =>
      loss.value(xx, yy, { a: aa, b: bb });
    const fdX: number[] = [];
    for (let i = 0; i < N; i++) {
      for (let d = 0; d < 2; d++) {
        const plus = x.map((row) => row.slice());
        const minus = x.map((row) => row.slice());
        plus[i]![d]! += h;
        minus[i]![d]! -= h;
        fdX.push(((await at(plus, y, a, b)) - (await at(minus, y, a, b))) / (2 * h));
      }
    }
    expectMatch(grad.x.data, fdX, 1e-5, 'grad x');
    const fdY: number[] = [];
    for (let j = 0; j < M; j++) {
      const plus = y.map((row) => row.slice());
      const minus = y.map((row) => row.slice());
      plus[j]![0]! += h;
      minus[j]![0]! -= h;
      fdY.push(((await at(x, plus, a, b)) - (await at(x, minus, a, b))) / (2 * h));
    }
    expectMatch(
      Array.from({ length: M }, (_, j) => grad.y.data[2 * j]!),
      fdY,
      1e-5,
      'grad y (first coordinate)',
    );
    const fdA: number[] = [];
    for (let i = 0; i < N; i++) {
      const plus = a.slice();
      const minus = a.slice();
      plus[i]! += h;
      minus[i]! -= h;
      fdA.push(((await at(x, y, plus, b)) - (await at(x, y, minus, b))) / (2 * h));
    }
    expectMatch(grad.a.data, fdA, 1e-5, 'grad a');
    const fdB: number[] = [];
    for (let j = 0; j < M; j++) {
      const plus = b.slice();
      const minus = b.slice();
      plus[j]! += h;
      minus[j]! -= h;
      fdB.push(((await at(x, y, a, plus)) - (await at(x, y, a, minus))) / (2 * h));
    }
    expectMatch(grad.b.data, fdB, 1e-5, 'grad b');
  });

  it('is 0 with 0 gradients (to rounding) for identical measures', async () => {
    const loss = new SamplesLoss({ loss: 'hausdorff', blur: 0.2, reach: 0.3 });
    const { value, grad } = await loss.valueAndGrad(x, x, { a, b: a });
    expect(Math.abs(value)).toBeLessThan(1e-14);
    for (const g of grad.x.data) expect(Math.abs(g)).toBeLessThan(1e-10);
  });
});
