/**
 * Checks the dense float64 GeomLoss reference (tests/reference/geomloss-dense.ts) against the
 * values computed with GeomLoss itself (/work/shared/reference/geomloss-cases.json, or
 * $GEOMLOSS_CASES / ../shared/reference relative to the repo), plus finite differences,
 * identical-cloud and error-case checks.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  denseSamplesLoss,
  denseSamplesLossBatch,
  epsilonSchedule,
  fma,
  GeomLossInputError,
  hausdorffLoss,
  kernelLoss,
  maxDiameter,
  sinkhornLoss,
  type DenseOptions,
  type DenseResult,
} from './geomloss-dense';
import { loadCases, type Json } from '../geomloss/helpers';

/* ───────────────────────────── data ───────────────────────────── */

const data: Json = loadCases();

/* ───────────────────────────── helpers ───────────────────────────── */

const RTOL = 1e-6;
/** absolute floor, relative to the largest entry of the reference array */
const ATOL_FRAC = 1e-9;

function flat(v: unknown): number[] {
  return [v].flat(10) as number[];
}

interface Cmp {
  worstRel: number; // max_k |d_k| / max(|ref_k|, 1e-6 * max|ref|)
  maxAbs: number;
  ok: boolean;
}

function compare(ours: unknown, ref: unknown): Cmp {
  const a = flat(ours);
  const b = flat(ref);
  if (a.length !== b.length) return { worstRel: Infinity, maxAbs: Infinity, ok: false };
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let worstRel = 0;
  let maxAbs = 0;
  let ok = true;
  for (let k = 0; k < a.length; k++) {
    const d = Math.abs(a[k]! - b[k]!);
    if (!Number.isFinite(a[k]!)) ok = false;
    maxAbs = Math.max(maxAbs, d);
    worstRel = Math.max(worstRel, d / Math.max(Math.abs(b[k]!), 1e-6 * scale, Number.MIN_VALUE));
    if (d > RTOL * Math.abs(b[k]!) + ATOL_FRAC * scale) ok = false;
  }
  return { worstRel, maxAbs, ok };
}

const report: string[] = [];
afterAll(() => {
  if (report.length) console.log(['', 'geomloss-dense reference: worst errors', ...report].join('\n'));
});

function ulpDiff(a: number, b: number): number {
  if (a === b) return 0;
  const buf = new DataView(new ArrayBuffer(16));
  buf.setFloat64(0, a);
  buf.setFloat64(8, b);
  return Number(buf.getBigInt64(0) - buf.getBigInt64(8));
}

/** deterministic PRNG (mulberry32) */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function cloud(r: () => number, n: number, D: number, shift = 0, spread = 1): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: D }, () => shift + spread * r()));
}
function weights(r: () => number, n: number, uniform = false): number[] {
  const w = Array.from({ length: n }, () => (uniform ? 1 : 0.2 + r()));
  const s = w.reduce((u, v) => u + v, 0);
  return w.map((v) => v / s);
}
function optsOf(params: Json, extra: Partial<DenseOptions> = {}): DenseOptions {
  return {
    loss: params.loss,
    p: params.p,
    blur: params.blur,
    reach: params.reach,
    diameter: params.diameter,
    scaling: params.scaling,
    debias: params.debias,
    ...extra,
  };
}
const clone = (x: number[][]): number[][] => x.map((r) => r.slice());

/* ───────────────────────────── reference cases ───────────────────────────── */

describe.skipIf(!data)('GeomLoss reference cases (geomloss-cases.json)', () => {
  const cases: Json[] = data?.cases ?? [];
  const isErrorCase = (c: Json): boolean =>
    c.kind === 'error' || c.kind === 'expected_error' || 'expected_error' in c || 'error' in c;
  const lossCases = cases.filter((c) => !isErrorCase(c));
  const errorCases = cases.filter(isErrorCase);

  it('meta conventions are the ones implemented', () => {
    const m = data.meta;
    expect(m.dtype).toBe('float64');
    expect(m.conventions.cost_p1).toBe('C(x,y) = sqrt(max(|x-y|^2, 1e-8))');
    expect(m.conventions.cost_p2).toBe('C(x,y) = |x-y|^2 / 2');
    expect(m.conventions.eps).toBe('blur**p');
    expect(m.conventions.kernel_loss).toBe('0.5<a,K_xx a> + 0.5<b,K_yy b> - <a,K_xy b>');
    expect(cases.length).toBe(m.n_cases);
    report.push(
      `cases: ${lossCases.length} loss/potential cases, ${errorCases.length} expected-error cases in the file ` +
        `(meta.n_expected_error_cases = ${m.n_expected_error_cases}; the file is "a subset of a larger set")`,
    );
  });

  for (const c of lossCases) {
    describe(c.id, () => {
      const P = c.params;
      const o = optsOf(P);
      const I = c.inputs;
      const batched = c.batch !== null && c.batch !== undefined;
      const run = (extra: Partial<DenseOptions> = {}): Json => {
        if (batched) {
          const r = denseSamplesLossBatch(I.x, I.y, I.a, I.b, { ...o, ...extra });
          return { ...r, value: r.values };
        }
        const r: DenseResult = denseSamplesLoss(I.x, I.y, I.a, I.b, { ...o, ...extra });
        return { ...r, f: [r.f], g: [r.g] };
      };
      const r = run();

      it('value, gradients and potentials match GeomLoss (rel 1e-6)', () => {
        const out = c.outputs;
        const checks: [string, unknown, unknown][] = [];
        if (out.value !== undefined) checks.push(['value', r.value, out.value]);
        if (out.grad_x) checks.push(['grad_x', r.gradX, out.grad_x]);
        if (out.grad_y) checks.push(['grad_y', r.gradY, out.grad_y]);
        if (out.grad_a) checks.push(['grad_a', r.gradA, out.grad_a]);
        if (out.grad_b) checks.push(['grad_b', r.gradB, out.grad_b]);
        if (out.F) checks.push(['F', r.f, out.F]);
        if (out.G) checks.push(['G', r.g, out.G]);
        if (c.aux_potentials?.F) checks.push(['aux F', r.f, c.aux_potentials.F]);
        if (c.aux_potentials?.G) checks.push(['aux G', r.g, c.aux_potentials.G]);
        const parts: string[] = [];
        for (const [name, ours, ref] of checks) {
          const cmp = compare(ours, ref);
          parts.push(`${name} ${cmp.worstRel.toExponential(1)}`);
          expect(cmp.ok, `${c.id} ${name}: worst rel ${cmp.worstRel}, max abs ${cmp.maxAbs}`).toBe(true);
        }
        report.push(`${c.id}: ${parts.join(', ')}`);
      });

      if (c.value_xy_signature !== undefined) {
        it('(x, y) signature = uniform weights 1/N', () => {
          const uni = (n: number): number[] => Array.from({ length: n }, () => 1 / n);
          let ours: number[] | number;
          if (batched) {
            const B = I.x.length;
            const a = Array.from({ length: B }, () => uni(I.x[0].length));
            const b = Array.from({ length: B }, () => uni(I.y[0].length));
            ours = denseSamplesLossBatch(I.x, I.y, a, b, o).values;
          } else {
            ours = denseSamplesLoss(I.x, I.y, uni(I.x.length), uni(I.y.length), o).value;
          }
          expect(compare(ours, c.value_xy_signature).ok).toBe(true);
        });
      }

      if (c.schedule) {
        it('diameter (bit-exact) and epsilon schedule (same length, within 4 ulps) match', () => {
          const S = c.schedule;
          const diam = batched ? maxDiameter(...I.x, ...I.y) : maxDiameter(I.x, I.y);
          expect(diam).toBe(S.diameter);
          expect(r.diameter).toBe(S.diameter);
          const ours = epsilonSchedule(P.p, S.diameter, P.blur, P.scaling);
          expect(ours.length).toBe(S.eps_list.length);
          expect(ours.length).toBe(S.n_iterations);
          expect(r.schedule).toEqual(ours);
          const ulps = ours.map((v, k) => ulpDiff(v, S.eps_list[k]));
          for (const u of ulps) expect(Math.abs(u)).toBeLessThanOrEqual(4);
          expect(ours[ours.length - 1]).toBe(S.eps); // blur**p, bit-exact
          expect(ours[0]).toBe(S.eps_list[0]); // diameter**p, bit-exact
          if (S.rho !== null) expect(P.reach ** P.p).toBe(S.rho);
          report.push(`${c.id}: schedule ulp offsets vs numpy [${ulps.join(' ')}]`);
        });

        it("replaying GeomLoss's own eps_list gives the same results", () => {
          const rr = run({ epsList: c.schedule.eps_list });
          expect(compare(rr.value, c.outputs.value).ok).toBe(true);
          if (c.outputs.grad_x) expect(compare(rr.gradX, c.outputs.grad_x).ok).toBe(true);
          if (c.outputs.F) expect(compare(rr.f, c.outputs.F).ok).toBe(true);
        });
      }
    });
  }

  it.skipIf(errorCases.length === 0)('expected-error cases from the file throw', () => {
    for (const c of errorCases) {
      const o = optsOf(c.params);
      const I = c.inputs ?? {};
      const call = (): unknown =>
        Array.isArray(I.x?.[0]?.[0])
          ? denseSamplesLossBatch(I.x, I.y, I.a, I.b, o)
          : denseSamplesLoss(I.x, I.y, I.a, I.b, o);
      expect(call, c.id).toThrow(GeomLossInputError);
    }
  });
});

/* ───────────────────────────── expected errors ───────────────────────────── */

describe('inputs on which GeomLoss raises -> clear errors', () => {
  const r = rng(7);
  const x = cloud(r, 6, 2);
  const y = cloud(r, 5, 2, 0.3);
  const a = weights(r, 6);
  const b = weights(r, 5);
  const base: DenseOptions = {
    loss: 'sinkhorn',
    p: 2,
    blur: 0.1,
    reach: null,
    diameter: null,
    scaling: 0.5,
    debias: true,
  };
  const cases: [string, () => unknown, RegExp][] = [
    // GeomLoss: cost_routines[p] -> KeyError for p not in {1, 2}
    ['p = 3 for sinkhorn', () => denseSamplesLoss(x, y, a, b, { ...base, p: 3 as 2 }), /p = 3/],
    // GeomLoss check_shapes: "Input samples 'x' and 'y' should have the same last dimension."
    ['x and y of different dimension', () => denseSamplesLoss(x, cloud(r, 5, 3), a, b, base), /same last dimension/],
    // GeomLoss check_shapes: "Weights 'α' and samples 'x' should have compatible shapes."
    ['weights/points length mismatch', () => denseSamplesLoss(x, y, a.slice(1), b, base), /compatible shapes/],
    ['batch size mismatch', () => denseSamplesLossBatch([x, x], [y], [a, a], [b], base), /batchsize/],
    [
      'unknown loss name',
      () => denseSamplesLoss(x, y, a, b, { ...base, loss: 'wasserstein' as 'sinkhorn' }),
      /unknown loss/,
    ],
    ['scaling outside (0, 1)', () => denseSamplesLoss(x, y, a, b, { ...base, scaling: 1 }), /scaling/],
    [
      'zero user diameter (np.arange of -inf)',
      () => denseSamplesLoss(x, y, a, b, { ...base, diameter: 0 }),
      /diameter/,
    ],
    ['negative reach', () => denseSamplesLoss(x, y, a, b, { ...base, reach: -1 }), /reach/],
    ['NaN coordinate', () => denseSamplesLoss([[NaN, 0], ...x.slice(1)], y, a, b, base), /non-finite/],
    [
      'negative weight',
      () =>
        denseSamplesLoss(
          x,
          y,
          a.map((v, i) => (i ? v : -v)),
          b,
          base,
        ),
      /nonnegative/,
    ],
  ];
  for (const [name, call, msg] of cases) {
    it(name, () => {
      expect(call).toThrow(GeomLossInputError);
      expect(call).toThrow(msg);
    });
  }
});

/* ───────────────────────────── finite differences ───────────────────────────── */

/** central FD of value wrt every coordinate of x and y; returns worst relative error vs analytic */
function fdPositions(
  f: (x: number[][], y: number[][]) => number,
  x: number[][],
  y: number[][],
  gx: number[][],
  gy: number[][],
  h = 1e-5,
): number {
  let worst = 0;
  let scale = 0;
  for (const g of [...gx, ...gy]) for (const v of g) scale = Math.max(scale, Math.abs(v));
  for (const [which, pts, g] of [
    ['x', x, gx],
    ['y', y, gy],
  ] as const) {
    for (let i = 0; i < pts.length; i++) {
      for (let k = 0; k < pts[i]!.length; k++) {
        const p = clone(pts);
        const m = clone(pts);
        p[i]![k] = p[i]![k]! + h;
        m[i]![k] = m[i]![k]! - h;
        const vp = which === 'x' ? f(p, y) : f(x, p);
        const vm = which === 'x' ? f(m, y) : f(x, m);
        const fd = (vp - vm) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - g[i]![k]!) / scale);
      }
    }
  }
  return worst;
}

/** central FD wrt weights along directions e_i (all = true) or e_i - e_0 (simplex-tangent) */
function fdWeights(
  f: (a: number[], b: number[]) => number,
  a: number[],
  b: number[],
  ga: number[],
  gb: number[],
  all: boolean,
  h = 1e-6,
): number {
  let worst = 0;
  let scale = 0;
  for (const v of [...ga, ...gb]) scale = Math.max(scale, Math.abs(v));
  for (const [which, w, g] of [
    ['a', a, ga],
    ['b', b, gb],
  ] as const) {
    for (let i = all ? 0 : 1; i < w.length; i++) {
      const p = w.slice();
      const m = w.slice();
      p[i] = p[i]! + h;
      m[i] = m[i]! - h;
      if (!all) {
        p[0] = p[0]! - h;
        m[0] = m[0]! + h;
      }
      const vp = which === 'a' ? f(p, b) : f(a, p);
      const vm = which === 'a' ? f(m, b) : f(a, m);
      const fd = (vp - vm) / (2 * h);
      const an = all ? g[i]! : g[i]! - g[0]!;
      worst = Math.max(worst, Math.abs(fd - an) / scale);
    }
  }
  return worst;
}

describe('gradients vs central finite differences of our own value (schedule held fixed)', () => {
  const converged = (o: DenseOptions, x: number[][], y: number[][], extra = 400): number[] => {
    const s = denseSamplesLoss(x, y, weights(rng(1), x.length), weights(rng(2), y.length), o).schedule!;
    return s.concat(Array(extra).fill(s[s.length - 1]));
  };
  const r = rng(20240517);
  const x = cloud(r, 9, 2);
  const y = cloud(r, 11, 2, 0.25, 0.8);
  const a = weights(r, 9);
  const b = weights(r, 11);

  const sinkCases: [string, Partial<DenseOptions>][] = [
    ['balanced debiased p=2', { p: 2, blur: 0.2, debias: true }],
    ['balanced debiased p=1', { p: 1, blur: 0.3, debias: true }],
    ['balanced raw p=2', { p: 2, blur: 0.2, debias: false }],
    ['balanced raw p=1', { p: 1, blur: 0.3, debias: false }],
  ];
  for (const [name, extra] of sinkCases) {
    it(`sinkhorn ${name}: positions (all coords) and weights (simplex-tangent directions)`, () => {
      const o: DenseOptions = {
        loss: 'sinkhorn',
        p: 2,
        blur: 0.2,
        reach: null,
        diameter: null,
        scaling: 0.5,
        debias: true,
        ...extra,
      };
      const epsList = converged(o, x, y);
      const oc = { ...o, epsList };
      const res = sinkhornLoss(x, y, a, b, oc);
      const ep = fdPositions((xx, yy) => sinkhornLoss(xx, yy, a, b, oc).value, x, y, res.gradX, res.gradY);
      const ew = fdWeights((aa, bb) => sinkhornLoss(x, y, aa, bb, oc).value, a, b, res.gradA, res.gradB, false);
      report.push(`FD sinkhorn ${name}: positions ${ep.toExponential(1)}, weights ${ew.toExponential(1)}`);
      expect(ep).toBeLessThan(1e-6);
      expect(ew).toBeLessThan(1e-6);
    });
  }

  for (const debias of [true, false]) {
    it(`sinkhorn unbalanced (reach=0.3, debias=${debias}): exact grads = FD; GeomLoss position grads = exact * (rho+eps/2)/(rho+eps)`, () => {
      const o: DenseOptions = { loss: 'sinkhorn', p: 2, blur: 0.2, reach: 0.3, diameter: null, scaling: 0.5, debias };
      const epsList = converged(o, x, y);
      const oc = { ...o, epsList };
      const ex = sinkhornLoss(x, y, a, b, { ...oc, exactUnbalancedGradients: true });
      const gl = sinkhornLoss(x, y, a, b, oc);
      expect(gl.value).toBe(ex.value);
      const ep = fdPositions((xx, yy) => sinkhornLoss(xx, yy, a, b, oc).value, x, y, ex.gradX, ex.gradY);
      const ew = fdWeights((aa, bb) => sinkhornLoss(x, y, aa, bb, oc).value, a, b, ex.gradA, ex.gradB, true);
      report.push(
        `FD sinkhorn unbalanced debias=${debias} (exact grads): positions ${ep.toExponential(1)}, weights ${ew.toExponential(1)}`,
      );
      expect(ep).toBeLessThan(1e-6);
      expect(ew).toBeLessThan(1e-6);
      const eps = 0.2 ** 2;
      const rho = 0.3 ** 2;
      const factor = (rho + eps / 2) / (rho + eps);
      expect(
        compare(
          gl.gradX,
          ex.gradX.map((g) => g.map((v) => v * factor)),
        ).ok,
      ).toBe(true);
      expect(
        compare(
          gl.gradY,
          ex.gradY.map((g) => g.map((v) => v * factor)),
        ).ok,
      ).toBe(true);
      if (debias)
        expect(
          compare(
            gl.gradA,
            ex.gradA.map((v) => v * factor),
          ).ok,
        ).toBe(true);
    });
  }

  for (const loss of ['energy', 'gaussian', 'laplacian'] as const) {
    it(`${loss} kernel: positions and weights (all directions)`, () => {
      const o: DenseOptions = { loss, p: 2, blur: 0.3, reach: null, diameter: null, scaling: 0.5, debias: true };
      const res = kernelLoss(x, y, a, b, o);
      const ep = fdPositions((xx, yy) => kernelLoss(xx, yy, a, b, o).value, x, y, res.gradX, res.gradY);
      const ew = fdWeights((aa, bb) => kernelLoss(x, y, aa, bb, o).value, a, b, res.gradA, res.gradB, true);
      report.push(`FD ${loss}: positions ${ep.toExponential(1)}, weights ${ew.toExponential(1)}`);
      expect(ep).toBeLessThan(1e-6);
      expect(ew).toBeLessThan(1e-6);
    });
  }

  for (const p of [1, 2] as const) {
    it(`hausdorff p=${p}: exact (implicit-differentiation) gradients, positions and weights (all directions)`, () => {
      const o: DenseOptions = {
        loss: 'hausdorff',
        p,
        blur: p === 2 ? 0.2 : 0.3,
        reach: null,
        diameter: null,
        scaling: 0.5,
        debias: true,
      };
      const epsList = converged(o, x, y);
      const oc = { ...o, epsList };
      const res = hausdorffLoss(x, y, a, b, oc);
      const ep = fdPositions((xx, yy) => hausdorffLoss(xx, yy, a, b, oc).value, x, y, res.gradX, res.gradY);
      const ew = fdWeights((aa, bb) => hausdorffLoss(x, y, aa, bb, oc).value, a, b, res.gradA, res.gradB, true);
      report.push(`FD hausdorff p=${p}: positions ${ep.toExponential(1)}, weights ${ew.toExponential(1)}`);
      expect(ep).toBeLessThan(1e-6);
      expect(ew).toBeLessThan(1e-6);
    });
  }

  it("with GeomLoss's short schedule the envelope gradient is NOT the derivative of the returned value (informational)", () => {
    // Reference-case-like setting: blur 0.05, 7 iterations. Envelope gradients are exact only at convergence.
    const o: DenseOptions = {
      loss: 'sinkhorn',
      p: 2,
      blur: 0.05,
      reach: null,
      diameter: null,
      scaling: 0.5,
      debias: true,
    };
    const res = sinkhornLoss(x, y, a, b, o);
    const oc = { ...o, epsList: res.schedule! };
    const ep = fdPositions((xx, yy) => sinkhornLoss(xx, yy, a, b, oc).value, x, y, res.gradX, res.gradY);
    report.push(
      `FD vs envelope grads with the GeomLoss schedule (blur 0.05, ${res.schedule!.length} its): ${ep.toExponential(1)} (expected: not small)`,
    );
    expect(Number.isFinite(ep)).toBe(true);
  });
});

/* ───────────────────────────── identical clouds, zero diameter ───────────────────────────── */

describe('identical clouds and zero diameter', () => {
  const r = rng(99);
  const x = cloud(r, 12, 3);
  const a = weights(r, 12);
  const allFinite = (res: DenseResult): boolean =>
    [res.value, ...flat(res.gradX), ...flat(res.gradY), ...res.gradA, ...res.gradB].every(Number.isFinite);

  const configs: DenseOptions[] = [];
  for (const p of [1, 2] as const) {
    for (const reach of [null, 0.5]) {
      configs.push({ loss: 'sinkhorn', p, blur: 0.05, reach, diameter: null, scaling: 0.5, debias: true });
    }
    configs.push({ loss: 'hausdorff', p, blur: 0.05, reach: null, diameter: null, scaling: 0.5, debias: true });
  }
  for (const loss of ['energy', 'gaussian', 'laplacian'] as const) {
    configs.push({ loss, p: 2, blur: 0.05, reach: null, diameter: null, scaling: 0.5, debias: true });
  }

  for (const o of configs) {
    const tag = `${o.loss} p=${o.p} reach=${o.reach}`;
    it(`x == y, a == b: value 0, gradients 0 (${tag})`, () => {
      const res = denseSamplesLoss(x, clone(x), a, a.slice(), o);
      expect(allFinite(res)).toBe(true);
      expect(Math.abs(res.value)).toBeLessThan(1e-15);
      for (const v of [...flat(res.gradX), ...flat(res.gradY)]) expect(Math.abs(v)).toBeLessThan(1e-12);
    });
    it(`zero diameter (all points coincide, different weights): finite, value 0 (${tag})`, () => {
      const pt = [0.3, -1.2, 2.5];
      const xs = Array.from({ length: 4 }, () => pt.slice());
      const ys = Array.from({ length: 3 }, () => pt.slice());
      const res = denseSamplesLoss(xs, ys, [0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 0.25], o);
      expect(allFinite(res)).toBe(true);
      expect(Math.abs(res.value)).toBeLessThan(1e-12);
      const one = denseSamplesLoss([pt], [pt], [1], [1], o);
      expect(allFinite(one)).toBe(true);
      expect(Math.abs(one.value)).toBeLessThan(1e-12);
    });
  }
});

/* ───────────────────────────── hausdorff properties ───────────────────────────── */

describe('hausdorff divergence', () => {
  it('is >= 0, symmetric, and 0 iff the measures coincide (random clouds)', () => {
    const r = rng(4242);
    for (let t = 0; t < 12; t++) {
      const p = (t % 2 ? 1 : 2) as 1 | 2;
      const blur = [0.02, 0.1, 0.5, 2][t % 4]!;
      const x = cloud(r, 5 + (t % 7), 2 + (t % 2));
      const y = cloud(r, 4 + (t % 5), 2 + (t % 2), 0.1 * t, 1 + 0.1 * t);
      const a = weights(r, x.length, t % 3 === 0);
      const b = weights(r, y.length, t % 3 === 0);
      const o: DenseOptions = { loss: 'hausdorff', p, blur, reach: null, diameter: null, scaling: 0.6, debias: true };
      const h1 = hausdorffLoss(x, y, a, b, o).value;
      const h2 = hausdorffLoss(y, x, b, a, o).value;
      expect(h1).toBeGreaterThanOrEqual(0);
      expect(Math.abs(h1 - h2)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(h1)));
      expect(h1).toBeGreaterThan(0);
      expect(hausdorffLoss(x, clone(x), a, a.slice(), o).value).toBe(0);
      // same support, different weights: still > 0
      expect(hausdorffLoss(x, clone(x), a, weights(r, x.length), o).value).toBeGreaterThan(0);
    }
  });

  it('tends to the chamfer (ICP-like) loss 1/2 <a, d(x, y)> + 1/2 <b, d(y, x)> for small blur, p = 1', () => {
    const r = rng(5);
    const x = cloud(r, 8, 2);
    const y = cloud(r, 7, 2, 0.5);
    const a = weights(r, 8, true);
    const b = weights(r, 7, true);
    // small blur, p=1: H -> 1/2 (<a, d(x, y)> + <b, d(y, x)>) (soft nearest-neighbour distances)
    const o: DenseOptions = {
      loss: 'hausdorff',
      p: 1,
      blur: 1e-3,
      reach: null,
      diameter: null,
      scaling: 0.5,
      debias: true,
    };
    const h = hausdorffLoss(x, y, a, b, o).value;
    const nn = (u: number[], V: number[][]): number =>
      Math.min(...V.map((v) => Math.hypot(u[0]! - v[0]!, u[1]! - v[1]!)));
    const chamfer =
      0.5 * (x.reduce((s, u, i) => s + a[i]! * nn(u, y), 0) + y.reduce((s, v, j) => s + b[j]! * nn(v, x), 0));
    expect(Math.abs(h - chamfer)).toBeLessThan(0.05 * chamfer);
  });
});

/* ───────────────────────────── batch & misc ───────────────────────────── */

describe('batch handling and helpers', () => {
  it('batch items equal single runs with the shared schedule; diameter is taken over the whole batch', () => {
    const r = rng(11);
    const xs = [cloud(r, 6, 2), cloud(r, 6, 2, 2), cloud(r, 6, 2, -1)];
    const ys = [cloud(r, 5, 2, 0.5), cloud(r, 5, 2), cloud(r, 5, 2, 1)];
    const as = xs.map((x) => weights(r, x.length));
    const bs = ys.map((y) => weights(r, y.length));
    const o: DenseOptions = {
      loss: 'sinkhorn',
      p: 2,
      blur: 0.05,
      reach: null,
      diameter: null,
      scaling: 0.5,
      debias: true,
    };
    const B = denseSamplesLossBatch(xs, ys, as, bs, o);
    expect(B.diameter).toBe(maxDiameter(...xs, ...ys));
    expect(B.schedule).toEqual(epsilonSchedule(2, B.diameter!, 0.05, 0.5));
    for (let k = 0; k < 3; k++) {
      const s = denseSamplesLoss(xs[k]!, ys[k]!, as[k]!, bs[k]!, { ...o, epsList: B.schedule! });
      expect(B.values[k]).toBe(s.value);
      expect(B.gradX[k]).toEqual(s.gradX);
      // the per-item schedule would differ (smaller diameter) -> different values
      const own = denseSamplesLoss(xs[k]!, ys[k]!, as[k]!, bs[k]!, o);
      expect(own.schedule!.length).toBeLessThanOrEqual(B.schedule!.length);
    }
  });

  it('fma is correctly rounded and the schedule follows numpy.arange', () => {
    expect(fma(0.1, 0.1, -0.01)).toBe(9.020562075079397e-19); // exact: 0.1*0.1 - 0.01 in rationals
    expect(fma(1 + 2 ** -30, 1 + 2 ** -30, -1)).toBe(2 ** -29 + 2 ** -60);
    expect(fma(3, 4, 5)).toBe(17);
    // diameter <= blur: [d^p, blur^p]
    expect(epsilonSchedule(2, 0.04, 0.05, 0.5)).toEqual([0.04 * 0.04, 0.05 * 0.05]);
    // diameter == blur: arange is empty
    expect(epsilonSchedule(1, 0.05, 0.05, 0.5)).toEqual([0.05, 0.05]);
    const s = epsilonSchedule(1, 1, 0.125, 0.5); // ln 1 = 0, ratio exactly 1/2: [1, 1, 0.5, 0.25, 0.125]
    expect(s.length).toBe(5);
    expect(s[4]).toBe(0.125);
  });
});
