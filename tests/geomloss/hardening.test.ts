// SamplesLoss under adversarial inputs and loads: huge reach (the unbalanced formulas tend to the
// balanced ones), costs that ignore an argument, long loops that must let the event loop run,
// absurd schedules, and AbortSignals (from the options or per call) that stop a run mid-way.
import { afterAll, describe, expect, it } from 'vitest';
import { GeomLossError, MAX_ITERATIONS, SamplesLoss } from '../../src/geomloss/index.js';
import { setWasmThreads, type LazyTensor } from '../../src/index.js';
import { denseSamplesLoss } from '../reference/geomloss-dense.js';
import { cloud, expectMatch, f32, flat, rng, uniform, weights } from './helpers.js';
import { expectResponsive } from '../helpers/event-loop.js';

const abortAfter = (ms: number, reason: unknown) => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), ms);
  return controller.signal;
};

const settle = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

afterAll(() => setWasmThreads());

describe('row 3: a large reach tends to the balanced value', () => {
  const r = rng(31);
  const cases = [
    { name: '2 points, p = 2', x: [[0]], y: [[1]], p: 2 as const },
    { name: '3-D clouds, p = 2', x: cloud(r, 12, 3), y: cloud(r, 9, 3, 0.3), p: 2 as const },
    { name: '2-D clouds, p = 1', x: cloud(r, 10, 2), y: cloud(r, 7, 2, 0.2), p: 1 as const },
  ];
  for (const c of cases) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${c.name}, ${dtype}: reach 1e8, 1e12, 1e160 agree with the balanced reference`, async () => {
        const x = dtype === 'float32' ? f32(c.x) : c.x;
        const y = dtype === 'float32' ? f32(c.y) : c.y;
        const ref = denseSamplesLoss(x, y, uniform(x.length), uniform(y.length), {
          loss: 'sinkhorn',
          p: c.p,
          blur: 0.05,
          reach: null,
          diameter: null,
          scaling: 0.5,
          debias: true,
        });
        for (const reach of [1e8, 1e12, 1e160]) {
          // The unbalanced problem differs from the balanced one by O(eps / rho) (rho = reach^p).
          const rtol = (dtype === 'float64' ? 1e-10 : 1e-4) + 10 * Math.pow(0.05 / reach, c.p);
          for (const exact of [false, true]) {
            const loss = new SamplesLoss({ p: c.p, blur: 0.05, reach, dtype, exactUnbalancedGradients: exact });
            const got = await loss.valueAndGrad(x, y);
            expectMatch([got.value], [ref.value], rtol, `reach ${reach} value`);
            expectMatch(got.grad.x.data, flat(ref.gradX), rtol * 10, `reach ${reach} grad x`);
            expectMatch(got.grad.a.data, ref.gradA, rtol * 10, `reach ${reach} grad a`);
            expect(Number.isFinite(await loss.value(x, y))).toBe(true);
          }
        }
      });
    }
  }

  it('the raw (debias: false) value tends to the balanced raw value too', async () => {
    const x = [[0], [0.5]];
    const y = [[1], [0.25]];
    const ref = denseSamplesLoss(x, y, uniform(2), uniform(2), {
      loss: 'sinkhorn',
      p: 2,
      blur: 0.05,
      reach: null,
      diameter: null,
      scaling: 0.5,
      debias: false,
    });
    for (const reach of [1e8, 1e160]) {
      const v = await new SamplesLoss({ reach, debias: false }).value(x, y);
      expectMatch([v], [ref.value], 1e-9, `raw reach ${reach}`);
    }
  });

  it('a reach whose power underflows is a named error', () => {
    expect(() => new SamplesLoss({ reach: 1e-200 })).toThrow(GeomLossError);
    expect(() => new SamplesLoss({ reach: 1e-200 })).toThrow(/reach/);
  });
});

describe('row 10: a cost must use both of its arguments', () => {
  const x = [
    [0, 0],
    [1, 0],
  ];
  const y = [
    [0, 1],
    [1, 1],
    [2, 2],
  ];
  it.each([
    ['no j-variable', (p: LazyTensor) => p.sqNorm2()],
    ['no i-variable', (_p: LazyTensor, q: LazyTensor) => q.sqNorm2()],
  ])('%s: rejected with a GeomLossError', async (_name, cost) => {
    for (const loss of ['sinkhorn', 'hausdorff'] as const) {
      const l = new SamplesLoss({ loss, cost: cost as (p: LazyTensor, q: LazyTensor) => LazyTensor });
      await expect(l.value(x, y)).rejects.toThrow(GeomLossError);
      await expect(l.value(x, y)).rejects.toThrow(/must depend on both of its arguments/);
    }
  });
  it('a kernel that ignores an argument is rejected too', async () => {
    const l = new SamplesLoss({ loss: 'gaussian', kernel: (p) => p.sqNorm2().neg().exp() });
    await expect(l.value(x, y)).rejects.toThrow(GeomLossError);
  });
  it('a cost of both arguments still runs', async () => {
    const v = await new SamplesLoss({ cost: (p, q) => p.sqDist(q).mul(0.5) }).value(x, y);
    const ref = await new SamplesLoss({ p: 2 }).value(x, y);
    expect(v).toBeCloseTo(ref, 12);
  });
});

describe('row 12: long loops yield; absurd schedules are named errors', () => {
  const r = rng(12);
  const x = cloud(r, 20, 2);
  const y = cloud(r, 30, 2, 0.5);

  it('3000 convergence iterations on 20 x 30 points let a 10 ms timer tick at least every 100 ms', async () => {
    const loss = new SamplesLoss({ blur: 0.05, convergence: { tol: 1e-300, maxIter: 3000 } });
    const { result, ticks } = await expectResponsive(() => loss.value(x, y));
    expect(Number.isFinite(result)).toBe(true);
    expect(ticks).toBeGreaterThan(3);
  });

  it('a Hausdorff run with its adjoint solve lets the timer tick too', async () => {
    const loss = new SamplesLoss({ loss: 'hausdorff', blur: 0.05, convergence: { tol: 1e-300, maxIter: 1500 } });
    await expectResponsive(() => loss.valueAndGrad(x, y));
  });

  it('scaling 0.999999 (millions of temperatures) is a GeomLossError naming scaling, before any work', async () => {
    const loss = new SamplesLoss({ scaling: 0.999999 });
    const t0 = performance.now();
    await expect(loss.value(x, y)).rejects.toThrow(GeomLossError);
    await expect(loss.value(x, y)).rejects.toThrow(/scaling = 0\.999999.*more than 100000/);
    expect(performance.now() - t0).toBeLessThan(500);
    // A long but sane schedule runs.
    await expect(new SamplesLoss({ scaling: 0.99 }).value(x, y)).resolves.toBeTypeOf('number');
  });

  it(`convergence.maxIter above ${MAX_ITERATIONS} is a GeomLossError`, () => {
    expect(() => new SamplesLoss({ convergence: { maxIter: 10 ** 6 } })).toThrow(/convergence\.maxIter = 1000000/);
    expect(() => new SamplesLoss({ convergence: { maxIter: MAX_ITERATIONS } })).not.toThrow();
  });
});

describe('row 13: an AbortSignal stops a loss', () => {
  const r = rng(13);
  const x = cloud(r, 40, 3);
  const y = cloud(r, 50, 3, 0.4);
  const a = weights(r, 40);

  it('already aborted (option or per call): rejects at once with the reason', async () => {
    const reason = new Error('cancelled');
    const signal = AbortSignal.abort(reason);
    await expect(new SamplesLoss({ signal }).value(x, y)).rejects.toBe(reason);
    const loss = new SamplesLoss();
    await expect(loss.value(x, y, undefined, { signal })).rejects.toBe(reason);
    await expect(loss.valueAndGrad(x, y, { a }, { signal })).rejects.toBe(reason);
    await expect(loss.potentials(x, y, undefined, { signal })).rejects.toBe(reason);
    await expect(loss.transportPlan(x, y, undefined, { signal })).rejects.toBe(reason);
    await expect(new SamplesLoss({ loss: 'energy' }).value(x, y, undefined, { signal })).rejects.toBe(reason);
  });

  it('signals are validated', async () => {
    expect(() => new SamplesLoss({ signal: 'stop' as unknown as AbortSignal })).toThrow(GeomLossError);
    await expect(new SamplesLoss().value(x, y, undefined, { signal: 1 as unknown as AbortSignal })).rejects.toThrow(
      /signal must be an AbortSignal/,
    );
    await expect(new SamplesLoss().value(x, y, undefined, { foo: 1 } as never)).rejects.toThrow(
      /unknown call option 'foo'/,
    );
  });

  for (const backend of ['online', 'multiscale'] as const) {
    it(`fired from a timer mid-run (${backend}): rejects within an iteration, then the same loss runs`, async () => {
      const loss = new SamplesLoss({ backend, blur: 0.01, convergence: { tol: 1e-300, maxIter: 20000 } });
      const progress: number[] = [];
      let elapsed = 0;
      const { result } = await expectResponsive(async () => {
        const t0 = performance.now();
        const out = await settle(loss.value(x, y, undefined, { signal: abortAfter(100, new Error('too slow')) }));
        elapsed = performance.now() - t0;
        return out;
      });
      expect(result.ok).toBe(false);
      expect((result as { error: Error }).error.message).toBe('too slow');
      expect(elapsed).toBeLessThan(1000);
      // The loss is still usable: a normal call with the loss's (absent) signal succeeds and agrees
      // with the reference.
      const ok = new SamplesLoss({ backend, blur: 0.05, onProgress: (p) => progress.push(p.iteration) });
      const v = await ok.value(x, y);
      const ref = denseSamplesLoss(x, y, uniform(40), uniform(50), {
        loss: 'sinkhorn',
        p: 2,
        blur: 0.05,
        reach: null,
        diameter: null,
        scaling: 0.5,
        debias: true,
      });
      if (backend === 'online') expectMatch([v], [ref.value], 1e-9, 'after abort');
      else expect(Number.isFinite(v)).toBe(true);
      expect(progress.length).toBeGreaterThan(3);
    });
  }

  it('the loss option signal stops every call made with it', async () => {
    const controller = new AbortController();
    const loss = new SamplesLoss({
      loss: 'hausdorff',
      signal: controller.signal,
      convergence: { tol: 1e-300, maxIter: 20000 },
    });
    setTimeout(() => controller.abort(), 60);
    const out = await settle(loss.valueAndGrad(x, y));
    expect(out.ok).toBe(false);
    expect((out as { error: Error }).error.name).toBe('AbortError');
  });
});

type Sink = {
  loss?: 'sinkhorn' | 'hausdorff' | 'energy';
  p?: 1 | 2;
  blur?: number;
  diameter?: number | null;
  scaling?: number;
};
const refOf = (x: number[][], y: number[][], o: Sink, a?: number[], b?: number[]) =>
  denseSamplesLoss(x, y, a ?? uniform(x.length), b ?? uniform(y.length), {
    loss: o.loss ?? 'sinkhorn',
    p: o.p ?? 2,
    blur: o.blur ?? 0.05,
    reach: null,
    diameter: o.diameter ?? null,
    scaling: o.scaling ?? 0.5,
    debias: true,
  });
const scaledRows = (rows: number[][], s: number) => rows.map((r) => r.map((v) => v * s));

describe('row 4: p = 1 Sinkhorn and the energy loss are scale-equivariant at s = 1e16, 1e18', () => {
  const r = rng(4);
  const x = cloud(r, 9, 2);
  const y = cloud(r, 11, 2, 0.3);
  for (const loss of ['sinkhorn', 'energy'] as const) {
    it(`${loss}, float64: value / s and the gradients match s = 1 and the dense reference at scale`, async () => {
      const base = await new SamplesLoss({ loss, p: 1, blur: 0.05 }).valueAndGrad(x, y);
      for (const s of [1e16, 1e18]) {
        const xs = scaledRows(x, s);
        const ys = scaledRows(y, s);
        const got = await new SamplesLoss({ loss, p: 1, blur: 0.05 * s }).valueAndGrad(xs, ys);
        const ref = refOf(xs, ys, { loss, p: 1, blur: 0.05 * s });
        expectMatch([got.value], [ref.value], 1e-6, `s = ${s} value vs reference`);
        expectMatch(got.grad.x.data, flat(ref.gradX), 1e-5, `s = ${s} grad x vs reference`);
        expectMatch(got.grad.a.data, ref.gradA, 1e-5, `s = ${s} grad a vs reference`);
        // Against s = 1: only GeomLoss's clamp of distances at 1e-4 (absolute) differs.
        expectMatch([got.value / s], [base.value], 1e-3, `s = ${s} value / s vs s = 1`);
        expectMatch(got.grad.x.data, Array.from(base.grad.x.data), 1e-2, `s = ${s} grad x vs s = 1`);
      }
    });
  }
  it('float32: the same at s = 1e16 within float32 tolerance', async () => {
    const s = 1e16;
    const xs = f32(scaledRows(x, s));
    const ys = f32(scaledRows(y, s));
    for (const loss of ['sinkhorn', 'energy'] as const) {
      const got = await new SamplesLoss({ loss, p: 1, blur: 0.05 * s, dtype: 'float32' }).value(xs, ys);
      expectMatch([got], [refOf(xs, ys, { loss, p: 1, blur: 0.05 * s }).value], 1e-3, `${loss} f32`);
    }
  });
});

describe('row 9: Hausdorff on coordinates x 1e20 behaves the same in value() and valueAndGrad()', () => {
  const r = rng(9);
  const x = cloud(r, 7, 2);
  const y = cloud(r, 8, 2, 0.4);
  const s = 1e20;
  it('float64, p = 2: both give the reference values', async () => {
    const xs = scaledRows(x, s);
    const ys = scaledRows(y, s);
    const loss = new SamplesLoss({ loss: 'hausdorff', blur: 0.05 * s });
    const ref = refOf(xs, ys, { loss: 'hausdorff', blur: 0.05 * s });
    expectMatch([await loss.value(xs, ys)], [ref.value], 1e-6, 'value');
    const vg = await loss.valueAndGrad(xs, ys);
    expectMatch([vg.value], [ref.value], 1e-6, 'valueAndGrad value');
    expectMatch(vg.grad.x.data, flat(ref.gradX), 1e-5, 'grad x');
  });
  it('float32, p = 1: both give the reference value; p = 2: both reject (1e40 overflows float32), never NaN', async () => {
    const xs = f32(scaledRows(x, s));
    const ys = f32(scaledRows(y, s));
    const ref = refOf(xs, ys, { loss: 'hausdorff', p: 1, blur: 0.05 * s });
    const l1 = new SamplesLoss({ loss: 'hausdorff', p: 1, blur: 0.05 * s, dtype: 'float32' });
    expectMatch([await l1.value(xs, ys)], [ref.value], 1e-3, 'p = 1 value');
    const vg = await l1.valueAndGrad(xs, ys);
    expectMatch([vg.value], [ref.value], 1e-3, 'p = 1 valueAndGrad');
    for (const v of vg.grad.x.data) expect(Number.isFinite(v)).toBe(true);
    const l2 = new SamplesLoss({ loss: 'hausdorff', p: 2, blur: 0.05 * s, dtype: 'float32' });
    await expect(l2.value(xs, ys)).rejects.toThrow(GeomLossError);
    await expect(l2.valueAndGrad(xs, ys)).rejects.toThrow(GeomLossError);
    await expect(l2.value(xs, ys)).rejects.toThrow(/overflows float32.*float64/);
  });
});

describe('row 14: coincident points are merged (exact, near-linear time)', () => {
  const N = 10 ** 6;
  const repeated = (locations: number[][], n: number) => {
    const D = locations[0]!.length;
    const data = new Float64Array(n * D);
    for (let i = 0; i < n; i++) data.set(locations[i % locations.length]!, i * D);
    return { data, shape: [n, D] as [number, number] };
  };
  for (const backend of ['online', 'multiscale'] as const) {
    it(`10^6 identical points against 10^6 identical points (${backend}): the exact Dirac value and gradients`, async () => {
      const P = [0.2, 0.3, 0.4];
      const Q = [0.7, 0.1, 0.5];
      const t0 = performance.now();
      const r1 = await new SamplesLoss({ backend, p: 2, blur: 0.05 }).valueAndGrad(repeated([P], N), repeated([Q], N));
      // Two Diracs: C(P, Q) - C(P, P) / 2 - C(Q, Q) / 2 = |P - Q|^2 / 2, and grad x_i = a_i (P - Q).
      const want = 0.5 * P.reduce((s, v, k) => s + (v - Q[k]!) ** 2, 0);
      expectMatch([r1.value], [want], 1e-9, 'value');
      expect(r1.grad.x.shape).toEqual([N, 3]);
      for (const i of [0, 1, N - 1])
        for (let k = 0; k < 3; k++) expect(r1.grad.x.data[i * 3 + k]).toBeCloseTo((P[k]! - Q[k]!) / N, 15);
      // Identical clouds: exactly 0.
      const same = await new SamplesLoss({ backend }).value(repeated([P], N), repeated([P], N));
      expect(same).toBe(0);
      expect(performance.now() - t0).toBeLessThan(30_000);
    });
  }

  it('10^6 points on a few locations, with weights: the reference on the locations, spread back', async () => {
    const X = [
      [0, 0],
      [1, 0.5],
      [0.2, 0.9],
    ];
    const Y = [
      [0.5, 0.5],
      [0.9, 0.1],
      [0.1, 0.3],
      [0.6, 1],
    ];
    const x = repeated(X, N);
    const y = repeated(Y, N);
    const a = Float64Array.from({ length: N }, (_, i) => 1 + (i % 7));
    const b = Float64Array.from({ length: N }, (_, i) => 1 + (i % 5) / 2);
    const ta = a.reduce((s, v) => s + v, 0);
    const tb = b.reduce((s, v) => s + v, 0);
    const A = X.map((_, u) => a.reduce((s, v, i) => (i % 3 === u ? s + v : s), 0) / ta);
    const B = Y.map((_, u) => b.reduce((s, v, i) => (i % 4 === u ? s + v : s), 0) / tb);
    const an = a.map((v) => v / ta);
    const bn = b.map((v) => v / tb);
    for (const p of [1, 2] as const) {
      const ref = refOf(X, Y, { p, blur: 0.1 }, A, B);
      const got = await new SamplesLoss({ p, blur: 0.1 }).valueAndGrad(x, y, { a: an, b: bn });
      expectMatch([got.value], [ref.value], 1e-9, `p = ${p} value`);
      for (const i of [0, 1, 2, 3, 1000, N - 1]) {
        const u = i % 3;
        expectMatch([got.grad.a.data[i]!], [ref.gradA[u]!], 1e-8, `p = ${p} grad a[${i}]`);
        const share = an[i]! / A[u]!;
        expectMatch(
          Array.from(got.grad.x.data.subarray(2 * i, 2 * i + 2)),
          ref.gradX[u]!.map((g) => share * g),
          1e-8,
          `p = ${p} grad x[${i}]`,
        );
      }
      const j = N - 2;
      expectMatch([got.grad.b.data[j]!], [ref.gradB[j % 4]!], 1e-8, `p = ${p} grad b[${j}]`);
    }
  });
});

describe('row 18: extreme option values give a GeomLossError naming the option, or a correct result', () => {
  const r = rng(18);
  const x = cloud(r, 5, 2);
  const y = cloud(r, 6, 2, 0.2);
  const rejects = async (o: ConstructorParameters<typeof SamplesLoss>[0], pattern: RegExp, xs = x, ys = y) => {
    const out = await settle(new SamplesLoss(o).value(xs, ys));
    expect(out.ok).toBe(false);
    const error = (out as { error: Error }).error;
    expect(error).toBeInstanceOf(GeomLossError);
    expect(error.message).toMatch(pattern);
  };
  it('blur 1e-300 (float64): p = 2 names blur; p = 1 gives the reference value', async () => {
    await rejects({ blur: 1e-300 }, /blur = 1e-300/);
    const got = await new SamplesLoss({ p: 1, blur: 1e-300 }).value(x, y);
    expectMatch([got], [refOf(x, y, { p: 1, blur: 1e-300 }).value], 1e-6, 'p = 1, blur 1e-300');
  });
  it('blur 1e-20 (float32): p = 2 names blur and float64; p = 1 gives the reference value', async () => {
    await rejects({ blur: 1e-20, dtype: 'float32' }, /blur = 1e-20 is too small for float32.*float64/);
    const got = await new SamplesLoss({ p: 1, blur: 1e-20, dtype: 'float32' }).value(f32(x), f32(y));
    expectMatch([got], [refOf(f32(x), f32(y), { p: 1, blur: 1e-20 }).value], 1e-3, 'p = 1, blur 1e-20, f32');
    await rejects({ loss: 'gaussian', blur: 1e-20, dtype: 'float32' }, /blur = 1e-20/);
  });
  it('diameter 1e300: p = 2 names diameter; p = 1 gives the reference value', async () => {
    await rejects({ diameter: 1e300 }, /diameter = 1e\+300/);
    const got = await new SamplesLoss({ p: 1, diameter: 1e300 }).value(x, y);
    expectMatch([got], [refOf(x, y, { p: 1, diameter: 1e300 }).value], 1e-6, 'p = 1, diameter 1e300');
  });
  it('coordinates 1e20: float64 gives the reference value; float32 names blur, or overflows by name', async () => {
    const xs = scaledRows(x, 1e20);
    const ys = scaledRows(y, 1e20);
    for (const p of [1, 2] as const) {
      const got = await new SamplesLoss({ p, blur: 0.05 }).valueAndGrad(xs, ys);
      const ref = refOf(xs, ys, { p, blur: 0.05 });
      expectMatch([got.value], [ref.value], 1e-6, `p = ${p} coordinates 1e20`);
      // blur / diameter = 3e-22: nearly unregularised OT, far from converged on the default
      // schedule, whose envelope gradients are ill-conditioned (rounding moves them): finite only.
      for (const v of got.grad.x.data) expect(Number.isFinite(v)).toBe(true);
      // With the blur scaled too, the gradients match.
      const scaled = await new SamplesLoss({ p, blur: 0.05e20 }).valueAndGrad(xs, ys);
      const sref = refOf(xs, ys, { p, blur: 0.05e20 });
      expectMatch([scaled.value], [sref.value], 1e-6, `p = ${p} coordinates and blur x 1e20`);
      expectMatch(scaled.grad.x.data, flat(sref.gradX), 1e-5, `p = ${p} coordinates and blur x 1e20, grad x`);
    }
    await rejects({ blur: 0.05, dtype: 'float32' }, /blur = 0.05 is too small for float32/, f32(xs), f32(ys));
    await rejects({ blur: 0.05 * 1e20, dtype: 'float32' }, /overflows float32/, f32(xs), f32(ys));
    const energy = await new SamplesLoss({ loss: 'energy', dtype: 'float32' }).value(f32(xs), f32(ys));
    expectMatch([energy], [refOf(f32(xs), f32(ys), { loss: 'energy' }).value], 1e-3, 'energy f32 at 1e20');
  });
  it('clusterScale 1e-9 (multiscale) names clusterScale', async () => {
    await rejects({ backend: 'multiscale', clusterScale: 1e-9 }, /clusterScale/);
  });
});
