// wassersteinBarycenter: free support (translated copies, Gaussians' closed form, a dense float64
// fixed-point reference, online and multiscale), fixed support (a dense float64 Bregman reference and
// the optimality condition checked with SamplesLoss's own potentials), bad input, abort.
import { describe, expect, it } from 'vitest';
import { GeomLossError, SamplesLoss, wassersteinBarycenter } from '../../src/geomloss/index.js';
import { cloud, rng, weights } from './helpers.js';

const sq = (u: number[], v: number[]) => u.reduce((s, x, d) => s + (x - v[d]!) ** 2, 0);
const rows = (data: ArrayLike<number>, D: number): number[][] =>
  Array.from({ length: data.length / D }, (_, i) => Array.from({ length: D }, (_, d) => data[i * D + d]!));

/** -eps log sum_j w_j exp((h_j - C(p, q_j)) / eps), C = |p - q|^2 / 2 (p = 2) or |p - q|. */
function softmin(p: number[], q: number[][], w: number[], h: number[], eps: number, pw = 2): number {
  const t = q.map((qj, j) => Math.log(w[j]!) + (h[j]! - (pw === 2 ? sq(p, qj) / 2 : Math.sqrt(sq(p, qj)))) / eps);
  const m = Math.max(...t);
  return -eps * (m + Math.log(t.reduce((s, v) => s + Math.exp(v - m), 0)));
}

/** A converged dense float64 Sinkhorn (alternating updates), then the barycentric map T(y_i). */
function denseMap(y: number[][], w: number[], x: number[][], b: number[], eps: number): number[][] {
  let f = new Array<number>(y.length).fill(0);
  let g = new Array<number>(x.length).fill(0);
  for (let it = 0; it < 20000; it++) {
    const f2 = y.map((yi) => softmin(yi, x, b, g, eps));
    const g2 = x.map((xj) => softmin(xj, y, w, f2, eps));
    const change = Math.max(...f2.map((v, i) => Math.abs(v - f[i]!)), ...g2.map((v, j) => Math.abs(v - g[j]!)));
    f = f2;
    g = g2;
    if (change < 1e-14) break;
  }
  return mapWith(y, x, b, g, eps);
}

function mapWith(y: number[][], x: number[][], b: number[], g: number[], eps: number): number[][] {
  const D = y[0]!.length;
  return y.map((yi) => {
    const t = x.map((xj, j) => Math.log(b[j]!) + (g[j]! - sq(yi, xj) / 2) / eps);
    const m = Math.max(...t);
    const e = t.map((v) => Math.exp(v - m));
    const s = e.reduce((u, v) => u + v, 0);
    return Array.from({ length: D }, (_, d) => e.reduce((u, v, j) => u + v * x[j]![d]!, 0) / s);
  });
}

/** The self-transport map of (y, w): the symmetric potential's fixed point (averaged updates). */
function denseSelfMap(y: number[][], w: number[], eps: number): number[][] {
  let f = new Array<number>(y.length).fill(0);
  for (let it = 0; it < 20000; it++) {
    const next = y.map((yi) => softmin(yi, y, w, f, eps));
    const avg = next.map((v, i) => 0.5 * (v + f[i]!));
    const change = Math.max(...avg.map((v, i) => Math.abs(v - f[i]!)));
    f = avg;
    if (change < 1e-14) break;
  }
  return mapWith(y, y, w, f, eps);
}

/** The dense fixed-point iteration: y <- y - sum_k lambda_k (y - T_k(y)) [+ (y - T_yy(y)) if debias]. */
function denseFreeBarycenter(
  measures: { x: number[][]; a: number[] }[],
  lambda: number[],
  y0: number[][],
  w: number[],
  eps: number,
  iterations: number,
  debias: boolean,
): number[][] {
  let y = y0.map((r) => r.slice());
  for (let it = 0; it < iterations; it++) {
    const maps = measures.map((m) => denseMap(y, w, m.x, m.a, eps));
    const self = debias ? denseSelfMap(y, w, eps) : null;
    y = y.map((yi, i) =>
      yi.map((v, d) => {
        let step = 0;
        maps.forEach((T, k) => (step += lambda[k]! * ((self ? self[i]![d]! : v) - T[i]![d]!)));
        return v - step;
      }),
    );
  }
  return y;
}

/** Dense float64 iterative Bregman projections with scaling vectors (no log domain, no annealing). */
function denseFixedBarycenter(
  z: number[][],
  measures: { x: number[][]; a: number[] }[],
  lambda: number[],
  eps: number,
  pw: number,
): number[] {
  const n = z.length;
  const Ks = measures.map((m) =>
    z.map((zi) => m.x.map((xj) => Math.exp(-(pw === 2 ? sq(zi, xj) / 2 : Math.sqrt(sq(zi, xj))) / eps))),
  );
  const u = measures.map(() => new Array<number>(n).fill(1));
  const v = measures.map((m) => new Array<number>(m.x.length).fill(1));
  let p = new Array<number>(n).fill(1 / n);
  for (let it = 0; it < 100000; it++) {
    const Kv = measures.map((m, k) => {
      const K = Ks[k]!;
      for (let j = 0; j < m.x.length; j++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += K[i]![j]! * u[k]![i]!;
        v[k]![j] = m.a[j]! / s;
      }
      return z.map((_, i) => K[i]!.reduce((s, kij, j) => s + kij * v[k]![j]!, 0));
    });
    const next = z.map((_, i) =>
      Math.exp(measures.reduce((s, _m, k) => s + lambda[k]! * Math.log(u[k]![i]! * Kv[k]![i]!), 0)),
    );
    measures.forEach((_m, k) => {
      for (let i = 0; i < n; i++) u[k]![i] = next[i]! / Kv[k]![i]!;
    });
    const change = next.reduce((s, q, i) => s + Math.abs(q - p[i]!), 0);
    p = next;
    if (change < 1e-15) break;
  }
  const total = p.reduce((s, q) => s + q, 0);
  return p.map((q) => q / total);
}

const maxDiff = (u: ArrayLike<number>, v: number[][]) => {
  const flat = v.flat();
  let m = 0;
  for (let k = 0; k < flat.length; k++) m = Math.max(m, Math.abs(u[k]! - flat[k]!));
  return m;
};

describe('wassersteinBarycenter, free support', () => {
  const r = rng(7);
  const base = cloud(r, 30, 2);
  const shifts = [
    [0, 0],
    [1, 0.5],
    [-0.5, 2],
  ];
  const lambda = [0.2, 0.5, 0.3];
  const mean = [0, 1].map((d) => shifts.reduce((s, t, k) => s + lambda[k]! * t[d]!, 0));
  const measures = shifts.map((t) => ({ x: base.map((p) => p.map((v, d) => v + t[d]!)) }));
  const expected = base.map((p) => p.map((v, d) => v + mean[d]!));

  for (const backend of ['online', 'multiscale'] as const) {
    it(`translated copies: the cloud translated by the weighted mean shift (debiased, ${backend})`, async () => {
      const res = await wassersteinBarycenter(measures, { weights: lambda, blur: 0.05, debias: true, backend });
      expect(res.x.shape).toEqual([30, 2]);
      expect(res.info.converged).toBe(true);
      // The debiased objective has the translated cloud as its fixed point at convergence of the
      // solves (the xy and xx plans then differ by the translation); GeomLoss's short schedule
      // leaves an error far below blur (measured 2.7e-4 online, 3.9e-4 multiscale).
      expect(maxDiff(res.x.data, expected)).toBeLessThan(0.02 * 0.05);
      for (const m of res.a) expect(m).toBeCloseTo(1 / 30, 15);
      expect(res.info.losses).toHaveLength(3);
      expect(res.info.value).toBeCloseTo(
        res.info.losses.reduce((s, v, k) => s + lambda[k]! * v, 0),
        12,
      );
    });
  }

  it('translated copies, entropic (not debiased): within blur, and the mean exactly shifted', async () => {
    const blur = 0.02;
    // Converged solves (translated clouds converge fast): balanced plans, so the mean is preserved.
    const res = await wassersteinBarycenter(measures, { weights: lambda, blur, support: base, innerTol: 1e-3 });
    expect(maxDiff(res.x.data, expected)).toBeLessThan(blur);
    const got = rows(res.x.data, 2);
    for (let d = 0; d < 2; d++) {
      const m = got.reduce((s, p) => s + p[d]!, 0) / got.length;
      const e = expected.reduce((s, p) => s + p[d]!, 0) / expected.length;
      // Balanced barycentric maps preserve the mean: sum_i w_i T_k(y_i) = the mean of measure k.
      expect(Math.abs(m - e)).toBeLessThan(1e-4);
    }
  });

  it('two Gaussians with commuting covariances: the closed-form W2 barycenter (means, standard deviations)', async () => {
    // Quantile grids of N(m, diag(s^2)): the W2 barycenter is N(sum l m, diag((sum l s)^2)).
    const q = Array.from({ length: 14 }, (_, i) => {
      const u = (i + 0.5) / 14;
      // The inverse normal CDF by bisection on erf (its midpoints stay within |x| <= 3).
      let lo = -6;
      let hi = 6;
      for (let t = 0; t < 80; t++) {
        const mid = 0.5 * (lo + hi);
        if (0.5 * (1 + erf(mid / Math.SQRT2)) < u) lo = mid;
        else hi = mid;
      }
      return 0.5 * (lo + hi);
    });
    const gauss = (m: number[], s: number[]) => q.flatMap((u) => q.map((v) => [m[0]! + s[0]! * u, m[1]! + s[1]! * v]));
    const m1 = [0, 0];
    const s1 = [0.1, 0.3];
    const m2 = [2, 1];
    const s2 = [0.4, 0.1];
    const l = [0.25, 0.75];
    const res = await wassersteinBarycenter([{ x: gauss(m1, s1) }, { x: gauss(m2, s2) }], {
      weights: l,
      blur: 0.03,
      // A slow schedule: near-converged solves, whose balanced plans keep the mean.
      scaling: 0.9,
      debias: true,
    });
    const pts = rows(res.x.data, 2);
    for (let d = 0; d < 2; d++) {
      const mean = pts.reduce((s, p) => s + p[d]!, 0) / pts.length;
      const sd = Math.sqrt(pts.reduce((s, p) => s + (p[d]! - mean) ** 2, 0) / pts.length);
      const eMean = l[0]! * m1[d]! + l[1]! * m2[d]!;
      // The grids' own standard deviation (of the quantiles) interpolates the same way.
      const qsd = Math.sqrt(q.reduce((s, v) => s + v * v, 0) / q.length);
      const eSd = (l[0]! * s1[d]! + l[1]! * s2[d]!) * qsd;
      // Measured: mean 2.5e-7, standard deviations 7e-5 relative.
      expect(Math.abs(mean - eMean)).toBeLessThan(1e-5);
      expect(Math.abs(sd - eSd) / eSd).toBeLessThan(1e-3);
    }
  });

  for (const debias of [false, true]) {
    it(`agrees with a dense float64 fixed-point iteration (${debias ? 'debiased' : 'entropic'})`, async () => {
      const r2 = rng(11);
      const ms = [7, 9, 6].map((M, k) => ({ x: cloud(r2, M, 2, 0.3 * k), a: weights(r2, M) }));
      const lam = [0.5, 0.2, 0.3];
      const y0 = cloud(r2, 5, 2, 0.2, 0.6);
      const w = weights(r2, 5);
      const blur = 0.3;
      const res = await wassersteinBarycenter(ms, {
        weights: lam,
        blur,
        support: y0,
        supportWeights: w,
        iterations: 4,
        tol: 0,
        innerTol: 1e-12,
        debias,
        backend: 'online',
      });
      expect(res.info.iterations).toBe(4);
      const ref = denseFreeBarycenter(ms, lam, y0, w, blur * blur, 4, debias);
      expect(maxDiff(res.x.data, ref)).toBeLessThan(1e-8);
    });
  }

  it('float32 inputs run in float32 and agree with float64', async () => {
    const r3 = rng(5);
    const ms = [0, 1].map((k) => ({
      x: { data: Float32Array.from(cloud(r3, 12, 2, k).flat()), shape: [12, 2] as [number, number] },
    }));
    const r32 = await wassersteinBarycenter(ms, { blur: 0.2 });
    const r64 = await wassersteinBarycenter(ms, { blur: 0.2, dtype: 'float64' });
    expect(r32.x.data).toBeInstanceOf(Float32Array);
    expect(r64.x.data).toBeInstanceOf(Float64Array);
    expect(maxDiff(r32.x.data, rows(r64.x.data, 2))).toBeLessThan(1e-3);
  });
});

function erf(x: number): number {
  // erf by its Taylor series: accurate to ~1e-13 for |x| <= 3, all that the bisection above visits.
  const t = Math.abs(x);
  let sum = t;
  let term = t;
  for (let n = 1; n < 200; n++) {
    term *= (-t * t) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17) break;
  }
  const v = (2 / Math.sqrt(Math.PI)) * sum;
  return x < 0 ? -v : v;
}

describe('wassersteinBarycenter, fixed support', () => {
  const r = rng(21);
  const grid: number[][] = [];
  for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) grid.push([i / 5, j / 5]);
  const ms = [
    { x: cloud(r, 10, 2, 0, 0.5), a: weights(r, 10) },
    { x: cloud(r, 8, 2, 0.5, 0.5), a: weights(r, 8) },
    { x: cloud(r, 9, 2, 0.2, 0.6) },
  ];
  const lam = [0.3, 0.3, 0.4];

  for (const p of [2, 1] as const) {
    it(`matches a dense float64 Bregman iteration (p = ${p})`, async () => {
      const blur = p === 2 ? 0.3 : 0.1;
      const eps = blur ** p;
      const res = await wassersteinBarycenter(ms, {
        weights: lam,
        blur,
        p,
        fixedSupport: true,
        support: grid,
        tol: 1e-12,
        iterations: 20000,
      });
      expect(res.info.converged).toBe(true);
      const ref = denseFixedBarycenter(
        grid,
        ms.map((m) => ({ x: m.x, a: m.a ?? new Array(m.x.length).fill(1 / m.x.length) })),
        lam,
        eps,
        p,
      );
      let worst = 0;
      for (let i = 0; i < grid.length; i++) worst = Math.max(worst, Math.abs(res.a[i]! - ref[i]!));
      expect(worst).toBeLessThan(1e-9);
      expect(Array.from(res.x.data)).toEqual(grid.flat());
      expect(res.a.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
    });
  }

  it("satisfies the optimality condition sum_k lambda_k f_k + eps log p = const, f_k from SamplesLoss's potentials", async () => {
    const blur = 0.3;
    const eps = blur * blur;
    const res = await wassersteinBarycenter(ms, {
      weights: lam,
      blur,
      fixedSupport: true,
      support: grid,
      tol: 1e-13,
      iterations: 20000,
    });
    const loss = new SamplesLoss({ blur, debias: false, convergence: { tol: 1e-12 } });
    const total = new Float64Array(grid.length);
    for (let k = 0; k < ms.length; k++) {
      const { f } = await loss.potentials(grid, ms[k]!.x, { a: res.a, b: ms[k]!.a ?? null });
      for (let i = 0; i < grid.length; i++) total[i]! += lam[k]! * f.data[i]!;
    }
    const kkt = Array.from(total, (v, i) => v + eps * Math.log(res.a[i]!));
    const spread = Math.max(...kkt) - Math.min(...kkt);
    expect(spread).toBeLessThan(1e-7);
    // The reported losses are SamplesLoss's raw OT values at the returned masses, same options.
    const v0 = await new SamplesLoss({ blur, debias: false }).value(grid, ms[0]!.x, { a: res.a, b: ms[0]!.a });
    expect(res.info.losses[0]).toBe(v0);
  });
});

describe('wassersteinBarycenter, bad input and abort', () => {
  const x = [
    [0, 0],
    [1, 1],
  ];
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['no measures', () => wassersteinBarycenter([]), /measures must be a non-empty array/],
    ['a measure without x', () => wassersteinBarycenter([{ a: [1] } as never]), /measures\[0\] must be an object/],
    [
      'mixed dimensions',
      () => wassersteinBarycenter([{ x }, { x: [[0, 0, 0]] }]),
      /measures\[1\]\.x has dimension D = 3/,
    ],
    ['bad point', () => wassersteinBarycenter([{ x }, { x: [[0, NaN]] }]), /measures\[1\]\.x/],
    [
      'weights length',
      () => wassersteinBarycenter([{ x }, { x }], { weights: [1] }),
      /weights has 1 entries but there are 2/,
    ],
    ['negative weight', () => wassersteinBarycenter([{ x }, { x }], { weights: [1, -1] }), /weights\[1\]/],
    ['measure weights', () => wassersteinBarycenter([{ x, a: [1, 2, 3] }]), /measures\[0\]\.a has 3 weights/],
    ['blur', () => wassersteinBarycenter([{ x }], { blur: 0 }), /blur must be a positive number/],
    ['free support with p = 1', () => wassersteinBarycenter([{ x }], { p: 1 }), /free support needs p = 2/],
    [
      'fixed support without support',
      () => wassersteinBarycenter([{ x }], { fixedSupport: true }),
      /needs the support points/,
    ],
    [
      'fixed support with debias',
      () => wassersteinBarycenter([{ x }], { fixedSupport: true, support: x, debias: true }),
      /debias/,
    ],
    [
      'support dimension',
      () => wassersteinBarycenter([{ x }], { support: [[0, 0, 0]] }),
      /support has dimension D = 3/,
    ],
    [
      'zero support weight',
      () => wassersteinBarycenter([{ x }], { support: x, supportWeights: [1, 0] }),
      /supportWeights\[1\]/,
    ],
    ['unknown option', () => wassersteinBarycenter([{ x }], { blurr: 1 } as never), /unknown option 'blurr'/],
    ['iterations', () => wassersteinBarycenter([{ x }], { iterations: 0 }), /iterations must be an integer/],
    ['signal', () => wassersteinBarycenter([{ x }], { signal: 'stop' as never }), /signal must be an AbortSignal/],
  ];
  for (const [label, run, message] of cases) {
    it(`rejects ${label} with a GeomLossError`, async () => {
      const e = await run().catch((error: unknown) => error);
      expect(e).toBeInstanceOf(GeomLossError);
      expect((e as Error).message).toMatch(message);
    });
  }

  it('respects an AbortSignal: at once when aborted, and during the iterations', async () => {
    const already = new AbortController();
    already.abort(new Error('stop now'));
    await expect(wassersteinBarycenter([{ x }, { x }], { signal: already.signal })).rejects.toThrow('stop now');
    for (const fixedSupport of [false, true]) {
      const c = new AbortController();
      let calls = 0;
      const run = wassersteinBarycenter([{ x }, { x: [[3, 3]] }], {
        signal: c.signal,
        fixedSupport,
        support: x,
        tol: 0,
        iterations: 1000,
        onProgress: () => {
          calls++;
          if (calls === 2) c.abort(new Error('aborted mid-way'));
        },
      });
      await expect(run).rejects.toThrow('aborted mid-way');
      expect(calls).toBe(2);
    }
  });
});
