// SamplesLoss under adversarial inputs and loads: huge reach (the unbalanced formulas tend to the
// balanced ones), costs that ignore an argument, long loops that must let the event loop run,
// absurd schedules, and AbortSignals (from the options or per call) that stop a run mid-way.
import { afterAll, describe, expect, it } from 'vitest';
import { GeomLossError, MAX_ITERATIONS, SamplesLoss } from '../../src/geomloss/index.js';
import { setWasmThreads, type LazyTensor } from '../../src/index.js';
import { denseSamplesLoss } from '../reference/geomloss-dense.js';
import { cloud, expectMatch, f32, flat, rng, uniform, weights } from './helpers.js';

/** Records the largest gap between the ticks of a 10 ms interval while `work` runs. */
async function ticking<T>(work: () => Promise<T>): Promise<{ result: T; maxGap: number; ticks: number }> {
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 10);
  try {
    const result = await work();
    maxGap = Math.max(maxGap, performance.now() - last);
    return { result, maxGap, ticks };
  } finally {
    clearInterval(timer);
  }
}

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
          loss: 'sinkhorn', p: c.p, blur: 0.05, reach: null, diameter: null, scaling: 0.5, debias: true,
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
      loss: 'sinkhorn', p: 2, blur: 0.05, reach: null, diameter: null, scaling: 0.5, debias: false,
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
  const x = [[0, 0], [1, 0]];
  const y = [[0, 1], [1, 1], [2, 2]];
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
    const { result, maxGap, ticks } = await ticking(() => loss.value(x, y));
    expect(Number.isFinite(result)).toBe(true);
    expect(ticks).toBeGreaterThan(3);
    expect(maxGap).toBeLessThan(100);
  });

  it('a Hausdorff run with its adjoint solve lets the timer tick too', async () => {
    const loss = new SamplesLoss({ loss: 'hausdorff', blur: 0.05, convergence: { tol: 1e-300, maxIter: 1500 } });
    const { maxGap } = await ticking(() => loss.valueAndGrad(x, y));
    expect(maxGap).toBeLessThan(100);
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
    await expect(new SamplesLoss().value(x, y, undefined, { signal: 1 as unknown as AbortSignal })).rejects.toThrow(/signal must be an AbortSignal/);
    await expect(new SamplesLoss().value(x, y, undefined, { foo: 1 } as never)).rejects.toThrow(/unknown call option 'foo'/);
  });

  for (const backend of ['online', 'multiscale'] as const) {
    it(`fired from a timer mid-run (${backend}): rejects within an iteration, then the same loss runs`, async () => {
      const loss = new SamplesLoss({ backend, blur: 0.01, convergence: { tol: 1e-300, maxIter: 20000 } });
      const progress: number[] = [];
      const t0 = performance.now();
      const { result, maxGap } = await ticking(() => settle(loss.value(x, y, undefined, { signal: abortAfter(100, new Error('too slow')) })));
      const elapsed = performance.now() - t0;
      expect(result.ok).toBe(false);
      expect((result as { error: Error }).error.message).toBe('too slow');
      expect(elapsed).toBeLessThan(1000);
      expect(maxGap).toBeLessThan(100);
      // The loss is still usable: a normal call with the loss's (absent) signal succeeds and agrees
      // with the reference.
      const ok = new SamplesLoss({ backend, blur: 0.05, onProgress: (p) => progress.push(p.iteration) });
      const v = await ok.value(x, y);
      const ref = denseSamplesLoss(x, y, uniform(40), uniform(50), {
        loss: 'sinkhorn', p: 2, blur: 0.05, reach: null, diameter: null, scaling: 0.5, debias: true,
      });
      if (backend === 'online') expectMatch([v], [ref.value], 1e-9, 'after abort');
      else expect(Number.isFinite(v)).toBe(true);
      expect(progress.length).toBeGreaterThan(3);
    });
  }

  it('the loss option signal stops every call made with it', async () => {
    const controller = new AbortController();
    const loss = new SamplesLoss({ loss: 'hausdorff', signal: controller.signal, convergence: { tol: 1e-300, maxIter: 20000 } });
    setTimeout(() => controller.abort(), 60);
    const out = await settle(loss.valueAndGrad(x, y));
    expect(out.ok).toBe(false);
    expect((out as { error: Error }).error.name).toBe('AbortError');
  });
});
