// slicedWasserstein against independent float64 references: in 1-D the exact W_p (sorted pairing
// for uniform equal sizes, the integral of |F^-1 - G^-1|^p over the quantile levels for weights,
// and the integral of |F - G| for p = 1), per-direction 1-D references in D > 1, finite
// differences for the gradients, invariances, bad input, large clouds, cancellation and yielding.
import { describe, expect, it } from 'vitest';
import { GeomLossError, slicedWasserstein } from '../../src/geomloss/index.js';
import { cloud, rng, weights } from './helpers.js';

/** W_p^p by sorted pairing: uniform weights, N = M. */
function sortedPairing(s: number[], t: number[], p: number): number {
  const u = [...s].sort((x, y) => x - y);
  const v = [...t].sort((x, y) => x - y);
  return u.reduce((acc, ui, i) => acc + Math.abs(ui - v[i]!) ** p, 0) / u.length;
}

/** The quantile function of a weighted 1-D measure, evaluated at level q in (0, 1). */
function quantile(pts: number[], w: number[], q: number): number {
  const order = pts.map((_, i) => i).sort((i, j) => pts[i]! - pts[j]!);
  const total = w.reduce((s, v) => s + v, 0);
  let c = 0;
  for (const i of order) {
    c += w[i]! / total;
    if (q < c) return pts[i]!;
  }
  return pts[order[order.length - 1]!]!;
}

/** W_p^p = int_0^1 |F^-1(q) - G^-1(q)|^p dq, exact: the quantiles are constant between the breakpoints
 *  (the cumulative weights of both measures), evaluated at each interval's midpoint. */
function quantileIntegral(s: number[], a: number[], t: number[], b: number[], p: number): number {
  const cum = (pts: number[], w: number[]) => {
    const total = w.reduce((u, v) => u + v, 0);
    const order = pts.map((_, i) => i).sort((i, j) => pts[i]! - pts[j]!);
    let c = 0;
    return order.map((i) => (c += w[i]! / total));
  };
  const breaks = [0, ...cum(s, a), ...cum(t, b), 1].filter((q) => q <= 1).sort((u, v) => u - v);
  let total = 0;
  for (let k = 0; k + 1 < breaks.length; k++) {
    const lo = breaks[k]!;
    const hi = Math.min(1, breaks[k + 1]!);
    if (hi <= lo) continue;
    const q = (lo + hi) / 2;
    total += (hi - lo) * Math.abs(quantile(s, a, q) - quantile(t, b, q)) ** p;
  }
  return total;
}

/** W_1 = int |F(z) - G(z)| dz, the CDF form (p = 1 only). */
function cdfIntegral(s: number[], a: number[], t: number[], b: number[]): number {
  const A = a.reduce((u, v) => u + v, 0);
  const B = b.reduce((u, v) => u + v, 0);
  const F = (z: number, pts: number[], w: number[], W: number) =>
    pts.reduce((acc, v, i) => acc + (v <= z ? w[i]! / W : 0), 0);
  const zs = [...s, ...t].sort((u, v) => u - v);
  let total = 0;
  for (let k = 0; k + 1 < zs.length; k++)
    total += (zs[k + 1]! - zs[k]!) * Math.abs(F(zs[k]!, s, a, A) - F(zs[k]!, t, b, B));
  return total;
}

const col = (pts: number[][], theta: number[]) => pts.map((row) => row.reduce((s, v, k) => s + v * theta[k]!, 0));
const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((c) => c / n);
};

describe('slicedWasserstein in 1-D: the exact W_p', () => {
  const r = rng(3);
  for (const p of [1, 2, 3]) {
    it(`uniform, N = M: sorted pairing (p = ${p})`, async () => {
      const x = cloud(r, 40, 1);
      const y = cloud(r, 40, 1, 0.3, 2);
      const { value, valuePow } = await slicedWasserstein(x, y, { p, directions: [[1]] });
      const ref = sortedPairing(
        x.map((v) => v[0]!),
        y.map((v) => v[0]!),
        p,
      );
      expect(valuePow).toBeCloseTo(ref, 13);
      expect(value).toBeCloseTo(ref ** (1 / p), 13);
    });
    it(`weighted, N != M: the quantile integral (p = ${p})`, async () => {
      const x = cloud(r, 23, 1);
      const y = cloud(r, 37, 1, -0.5, 3);
      const a = weights(r, 23).map((v) => 3 * v); // unnormalised: normalised inside
      const b = weights(r, 37);
      b[4] = 0; // a zero weight moves nothing
      const { valuePow } = await slicedWasserstein(x, y, { p, a, b, directions: [[-2]] });
      const ref = quantileIntegral(
        x.map((v) => -v[0]!),
        a,
        y.map((v) => -v[0]!),
        b,
        p,
      );
      expect(Math.abs(valuePow - ref)).toBeLessThan(1e-12 * Math.max(1, ref));
    });
  }
  it('p = 1: the CDF integral |F - G|', async () => {
    const x = cloud(r, 31, 1);
    const y = cloud(r, 18, 1, 0.2);
    const a = weights(r, 31);
    const b = weights(r, 18);
    const { value } = await slicedWasserstein(x, y, { p: 1, a, b, directions: [[1]] });
    expect(value).toBeCloseTo(
      cdfIntegral(
        x.map((v) => v[0]!),
        a,
        y.map((v) => v[0]!),
        b,
      ),
      12,
    );
  });
});

describe('slicedWasserstein in D > 1', () => {
  const r = rng(8);
  const D = 4;
  const x = cloud(r, 30, D);
  const y = cloud(r, 45, D, 0.2, 1.5);
  const a = weights(r, 30);
  const b = weights(r, 45);
  const dirs = [
    [1, 0, 0, 0],
    [1, 2, -1, 0.5],
    [0, -1, 3, 1],
    [-0.2, 0.1, 0.4, -2],
  ];

  for (const p of [1, 2, 1.5]) {
    it(`given directions: the mean of the per-direction 1-D references (p = ${p})`, async () => {
      const res = await slicedWasserstein(x, y, { a, b, p, directions: dirs });
      const per = dirs.map((d) => quantileIntegral(col(x, unit(d)), a, col(y, unit(d)), b, p));
      per.forEach((v, t) => expect(Math.abs(res.perDirection[t]! - v)).toBeLessThan(1e-12 * Math.max(1, v)));
      const mean = per.reduce((s, v) => s + v, 0) / per.length;
      expect(res.valuePow).toBeCloseTo(mean, 12);
      expect(res.value).toBeCloseTo(mean ** (1 / p), 12);
      expect(res.directions.shape).toEqual([4, D]);
      expect(Array.from(res.directions.data.subarray(4, 8))).toEqual(unit(dirs[1]!).map((v) => expect.closeTo(v, 14)));
    });

    it(`gradients with respect to x and y match finite differences (p = ${p})`, async () => {
      const res = await slicedWasserstein(x, y, { a, b, p, directions: dirs });
      const h = 1e-6;
      const f = async (xx: number[][], yy: number[][]) =>
        (await slicedWasserstein(xx, yy, { a, b, p, directions: dirs })).value;
      for (const [which, pts, grad] of [
        ['x', x, res.grad.x],
        ['y', y, res.grad.y],
      ] as const) {
        for (const i of [0, 7, 19]) {
          for (let k = 0; k < D; k++) {
            const up = pts.map((row) => [...row]);
            const dn = pts.map((row) => [...row]);
            up[i]![k]! += h;
            dn[i]![k]! -= h;
            const fd =
              which === 'x'
                ? ((await f(up, y)) - (await f(dn, y))) / (2 * h)
                : ((await f(x, up)) - (await f(x, dn))) / (2 * h);
            expect(Math.abs(grad.data[i * D + k]! - fd)).toBeLessThan(1e-6);
          }
        }
      }
    });
  }

  it('random directions: seeded, unit length, reproducible; different seeds differ', async () => {
    const one = await slicedWasserstein(x, y, { projections: 20, seed: 5 });
    const two = await slicedWasserstein(x, y, { projections: 20, seed: 5 });
    const other = await slicedWasserstein(x, y, { projections: 20, seed: 6 });
    expect(one.value).toBe(two.value);
    expect(one.value).not.toBe(other.value);
    for (let t = 0; t < 20; t++)
      expect(Math.hypot(...one.directions.data.subarray(t * D, t * D + D))).toBeCloseTo(1, 14);
    // The result is the per-direction reference on the directions it reports.
    const d0 = Array.from(one.directions.data.subarray(0, D));
    expect(one.perDirection[0]).toBeCloseTo(
      quantileIntegral(col(x, d0), new Array(30).fill(1), col(y, d0), new Array(45).fill(1), 2),
      12,
    );
    expect((await slicedWasserstein(x, y)).directions.shape).toEqual([50, D]);
  });

  it('random directions are uniform on the sphere: mean near 0, second moment near I / D', async () => {
    const { directions } = await slicedWasserstein([[0, 0, 0]], [[1, 1, 1]], { projections: 20000, seed: 1 });
    const m = [0, 0, 0];
    const s = [0, 0, 0];
    for (let t = 0; t < 20000; t++) {
      for (let k = 0; k < 3; k++) {
        const v = directions.data[t * 3 + k]!;
        m[k]! += v / 20000;
        s[k]! += (v * v) / 20000;
      }
    }
    m.forEach((v) => expect(Math.abs(v)).toBeLessThan(0.02));
    s.forEach((v) => expect(Math.abs(v - 1 / 3)).toBeLessThan(0.02));
  });

  it('invariances: translating both clouds keeps the value; identical clouds give 0', async () => {
    const shift = [3, -2, 0.5, 10];
    const moved = (pts: number[][]) => pts.map((row) => row.map((v, k) => v + shift[k]!));
    const base = await slicedWasserstein(x, y, { a, b, projections: 30, seed: 2 });
    const translated = await slicedWasserstein(moved(x), moved(y), { a, b, projections: 30, seed: 2 });
    expect(translated.value).toBeCloseTo(base.value, 12);
    const same = await slicedWasserstein(x, x, { a, b: a, projections: 30 });
    expect(same.value).toBe(0);
    expect(same.grad.x.data.every((v) => v === 0)).toBe(true);
  });

  it('accepts { data, shape } and Float32Array inputs, with the same result as number[][]', async () => {
    const flatX = { data: Float32Array.from(x.flat()), shape: [30, D] as const };
    const flatY = { data: y.flat(), shape: [45, D] as const };
    const got = await slicedWasserstein(flatX, flatY, { directions: { data: dirs.flat(), shape: [4, D] } });
    const ref = await slicedWasserstein(
      x.map((row) => row.map(Math.fround)),
      y,
      { directions: dirs },
    );
    expect(got.value).toBe(ref.value);
  });
});

describe('slicedWasserstein on large clouds', () => {
  it('2 x 10^5 points (the radix sort): sorted pairing, per direction', async () => {
    const N = 200_000;
    const r = rng(4);
    const X = new Float64Array(N * 3);
    const Y = new Float64Array(N * 3);
    for (let k = 0; k < X.length; k++) {
      X[k] = r() - 0.5;
      Y[k] = 2 * r() + (k % 3 === 0 ? 1 : -1); // negative and positive keys
    }
    const dirs = [
      [1, 0, 0],
      [0.3, -0.9, 0.1],
    ];
    const res = await slicedWasserstein({ data: X, shape: [N, 3] }, { data: Y, shape: [N, 3] }, { directions: dirs });
    dirs.forEach((d, t) => {
      const th = unit(d);
      const s = new Float64Array(N);
      const u = new Float64Array(N);
      for (let i = 0; i < N; i++) {
        s[i] = X[3 * i]! * th[0]! + X[3 * i + 1]! * th[1]! + X[3 * i + 2]! * th[2]!;
        u[i] = Y[3 * i]! * th[0]! + Y[3 * i + 1]! * th[1]! + Y[3 * i + 2]! * th[2]!;
      }
      s.sort();
      u.sort();
      let ref = 0;
      for (let i = 0; i < N; i++) ref += (s[i]! - u[i]!) ** 2;
      ref /= N;
      // 2 x 10^5 rounded mass steps (1/N each) and sums: a few 1e-12 relative.
      expect(Math.abs(res.perDirection[t]! - ref)).toBeLessThan(1e-10 * ref);
    });
  });

  it('yields to the event loop and honours an AbortSignal', async () => {
    const N = 100_000;
    const r = rng(9);
    const X = { data: Float64Array.from({ length: N * 2 }, r), shape: [N, 2] as const };
    const Y = { data: Float64Array.from({ length: N * 2 }, r), shape: [N, 2] as const };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await slicedWasserstein(X, Y, { projections: 30 });
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
    const controller = new AbortController();
    const job = slicedWasserstein(X, Y, { projections: 1000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 5);
    await expect(job).rejects.toThrow('stop');
    const aborted = new AbortController();
    aborted.abort(new Error('before'));
    await expect(slicedWasserstein(X, Y, { signal: aborted.signal })).rejects.toThrow('before');
  });
});

describe('slicedWasserstein: bad input is a GeomLossError naming the argument', () => {
  const x = [
    [0, 0],
    [1, 1],
  ];
  const y = [
    [0, 1],
    [2, 0],
    [1, 1],
  ];
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['projections 0', () => slicedWasserstein(x, y, { projections: 0 }), /projections must be a positive integer/],
    ['projections -3', () => slicedWasserstein(x, y, { projections: -3 }), /projections/],
    ['projections 2.5', () => slicedWasserstein(x, y, { projections: 2.5 }), /projections/],
    [
      'directions of the wrong D',
      () => slicedWasserstein(x, y, { directions: [[1, 0, 0]] }),
      /directions must be \[P, D\] with the clouds' D = 2/,
    ],
    [
      'a zero direction',
      () =>
        slicedWasserstein(x, y, {
          directions: [
            [1, 0],
            [0, 0],
          ],
        }),
      /directions\[1\] is zero/,
    ],
    ['no directions', () => slicedWasserstein(x, y, { directions: [] }), /directions is empty/],
    ['a NaN direction', () => slicedWasserstein(x, y, { directions: [[NaN, 1]] }), /directions\[0\]\[0\] is NaN/],
    [
      'directions and a different projections',
      () => slicedWasserstein(x, y, { directions: [[1, 0]], projections: 3 }),
      /projections \(3\) must equal/,
    ],
    ['NaN in x', () => slicedWasserstein([[0, NaN]], y), /x\[0\]\[1\] is NaN/],
    [
      'NaN in y data',
      () => slicedWasserstein(x, { data: [0, 1, Infinity, 0], shape: [2, 2] }),
      /y has a non-finite coordinate/,
    ],
    ['negative weight', () => slicedWasserstein(x, y, { a: [0.5, -0.5] }), /a\[1\] is -0.5/],
    ['all-zero weights', () => slicedWasserstein(x, y, { b: [0, 0, 0] }), /b has all-zero weights/],
    ['weights of the wrong length', () => slicedWasserstein(x, y, { b: [1, 1] }), /b has 2 weights but y has N = 3/],
    ['mismatched D', () => slicedWasserstein(x, [[1, 2, 3]]), /same dimension D/],
    ['p < 1', () => slicedWasserstein(x, y, { p: 0.5 }), /p must be a finite number >= 1/],
    ['bad seed', () => slicedWasserstein(x, y, { seed: -1 }), /seed must be an integer/],
    [
      'seed with directions',
      () => slicedWasserstein(x, y, { seed: 1, directions: [[1, 0]] }),
      /seed is for random directions/,
    ],
    ['unknown option', () => slicedWasserstein(x, y, { blur: 0.1 } as never), /unknown option 'blur'/],
    [
      'a batch',
      () => slicedWasserstein([x] as never, [y] as never),
      /^slicedWasserstein: x must be one cloud \[N, D\]/,
    ],
    ['a bad signal', () => slicedWasserstein(x, y, { signal: {} as never }), /signal must be an AbortSignal/],
  ];
  for (const [label, run, message] of cases) {
    it(label, async () => {
      const error = await run().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(GeomLossError);
      expect((error as Error).message).toMatch(message);
    });
  }
});
