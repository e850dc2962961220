// Long jobs and the event loop: loops of reductions, long reductions (on the main thread and on the
// workers) and solves let a 10 ms setInterval keep ticking; an AbortSignal stops each of them with
// its reason, and the engine stays usable; onProgress reports monotone row counts ending at the total.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { reduction, runReduction, setWasmThreads, Vi, Vj, vjp, type ReductionProgress } from '../src/index.js';
import { wasmEngineTesting } from '../src/wasm/wasm-engine.js';
import { rng, typed, uniformRows } from './helpers/random.js';
import { expectResponsive } from './helpers/event-loop.js';

/** A Gaussian kernel sum of N x M points in 3-D, float64. */
function gaussian(N: number, M: number, seed = 1) {
  const random = rng(seed);
  const x = typed(uniformRows(random, N, 3), 'float64');
  const y = typed(uniformRows(random, M, 3), 'float64');
  const b = typed(uniformRows(random, M, 1), 'float64');
  const K = Vi(x, 3).sqDist(Vj(y, 3)).mul(-2).exp().mul(Vj(b, 1));
  return { x, y, b, K };
}

/** The dense float64 reference of gaussian(N, M).sum(1), rows [r0, r1). */
function gaussianRows(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  b: ArrayLike<number>,
  r0: number,
  r1: number,
): Float64Array {
  const M = b.length;
  const out = new Float64Array(r1 - r0);
  for (let i = r0; i < r1; i++) {
    let s = 0;
    for (let j = 0; j < M; j++) {
      let d2 = 0;
      for (let k = 0; k < 3; k++) d2 += (x[i * 3 + k]! - y[j * 3 + k]!) ** 2;
      s += Math.exp(-2 * d2) * b[j]!;
    }
    out[i - r0] = s;
  }
  return out;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let k = 0; k < want.length; k++)
    worst = Math.max(worst, Math.abs(got[k]! - want[k]!) / Math.max(1e-300, Math.abs(want[k]!)));
  expect(worst).toBeLessThanOrEqual(rtol);
}

function expectMonotone(calls: ReductionProgress[], total: number): void {
  expect(calls.length).toBeGreaterThan(0);
  for (let k = 0; k < calls.length; k++) {
    expect(calls[k]!.total).toBe(total);
    if (k > 0) expect(calls[k]!.done).toBeGreaterThanOrEqual(calls[k - 1]!.done);
  }
  expect(calls[calls.length - 1]!.done).toBe(total);
  expect(calls.filter((c) => c.done === total)).toHaveLength(1);
}

const abortAfter = (ms: number, reason?: unknown) => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), ms);
  return controller.signal;
};

afterEach(() => {
  wasmEngineTesting.reset();
});
afterAll(() => setWasmThreads());

describe('the event loop keeps running', () => {
  it('during 20000 small awaited reductions', async () => {
    const { K } = gaussian(20, 30);
    await expectResponsive(async () => {
      for (let k = 0; k < 20000; k++) await K.sum(1);
    });
  });

  it('during one long reduction on the main thread, with monotone progress, and the result is exact', async () => {
    setWasmThreads(1);
    const { x, y, b, K } = gaussian(6000, 6000, 2);
    let calls: ReductionProgress[] = [];
    const { result } = await expectResponsive(() => {
      calls = [];
      return K.sum(1, { onProgress: (p) => calls.push(p) });
    });
    expectMonotone(calls, 6000);
    expect(calls.length).toBeGreaterThan(2); // reported between chunks, not only at the end
    expectClose(result.data.subarray(0, 50), gaussianRows(x, y, b, 0, 50), 1e-12);
    expectClose(result.data.subarray(5950), gaussianRows(x, y, b, 5950, 6000), 1e-12);
  });
});

describe('an AbortSignal', () => {
  it('already aborted: the reduction rejects at once with its reason', async () => {
    const { K } = gaussian(20, 30);
    const reason = new Error('stop');
    const controller = new AbortController();
    controller.abort(reason);
    await expect(K.sum(1, { signal: controller.signal })).rejects.toBe(reason);
    await expect(K.logSumExp(1, { signal: controller.signal })).rejects.toBe(reason);
    await expect(K.argKMin(3, 1, { signal: controller.signal })).rejects.toBe(reason);
    // The default reason is a DOMException named AbortError.
    await expect(K.sum(1, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('is validated, like every option', async () => {
    const { K } = gaussian(5, 5);
    await expect(K.sum(1, { signal: {} as AbortSignal })).rejects.toThrow(/signal must be an AbortSignal/);
    await expect(K.sum(1, { onProgress: 3 as unknown as () => void })).rejects.toThrow(/onProgress must be a function/);
  });

  for (const threads of [1, 2]) {
    it(`fired from a timer stops a long reduction (${threads === 1 ? 'main thread' : '2 workers'}), and the engine stays usable`, async () => {
      setWasmThreads(threads);
      const { K } = gaussian(20000, 20000, 3);
      let elapsed = 0;
      const { result } = await expectResponsive(() => {
        const t0 = performance.now();
        return K.sum(1, { signal: abortAfter(30, new Error('timeout')) }).then(
          () => 'finished',
          (e: Error) => {
            elapsed = performance.now() - t0;
            return e.message;
          },
        );
      });
      expect(result).toBe('timeout');
      // 4e8 pairs take seconds; the abort lands within a chunk or part.
      expect(elapsed).toBeLessThan(1500);
      const small = gaussian(300, 200, 4);
      const out = await small.K.sum(1);
      expectClose(out.data, gaussianRows(small.x, small.y, small.b, 0, 300), 1e-12);
    });
  }

  it('on the workers, progress parts give the same bits as one run', async () => {
    setWasmThreads(2);
    const { K } = gaussian(3000, 3000, 5);
    const plain = await K.sum(1);
    wasmEngineTesting.configure({ controlPartPairs: 2 ** 20 });
    const calls: ReductionProgress[] = [];
    const parted = await K.sum(1, { onProgress: (p) => calls.push(p), signal: new AbortController().signal });
    expectMonotone(calls, 3000);
    expect(calls.length).toBeGreaterThan(4);
    expect(Buffer.from(parted.data.buffer).equals(Buffer.from(plain.data.buffer))).toBe(true);
  });

  it('a batched reduction reports the rows of every item', async () => {
    const random = rng(6);
    const x = uniformRows(random, 2 * 40, 2);
    const y = uniformRows(random, 2 * 30, 2);
    const K = Vi(x.flat(), 2, { batch: [2] }).sqDist(Vj(y.flat(), 2, { batch: [2] }));
    const calls: ReductionProgress[] = [];
    const out = await K.sum(1, { onProgress: (p) => calls.push(p) });
    expect(out.shape).toEqual([2, 40, 1]);
    expectMonotone(calls, 80);
  });

  it('stops vjp and runReduction, which accept it in their options', async () => {
    const { K } = gaussian(50, 40, 7);
    const x = Vi(new Float64Array(150).fill(0.5), 3);
    const F = x.sqDist(Vj(new Float64Array(120).fill(0.25), 3));
    const controller = new AbortController();
    controller.abort('no');
    await expect(runReduction(reduction(K, 'sum', 1, { options: { signal: controller.signal } }))).rejects.toBe('no');
    await expect(
      vjp(reduction(F, 'logSumExp', 1, { options: { signal: controller.signal } }), {
        wrt: [x],
        cotangent: new Float64Array(50).fill(1),
      }),
    ).rejects.toBe('no');
    // Not aborted: the same calls run (vjp ignores onProgress of its inner reductions).
    const [g] = await vjp(
      reduction(F, 'sum', 1, { options: { signal: new AbortController().signal, onProgress: () => {} } }),
      { wrt: [x], cotangent: new Float64Array(50).fill(1) },
    );
    // d/dx sum_j |x - y_j|^2 = 2 M (x - y) = 2 * 40 * 0.25 per component.
    for (const v of g!.data) expect(v).toBeCloseTo(20, 10);
  });
});

describe('solve', () => {
  const setup = () => {
    const random = rng(8);
    const N = 400;
    const xs = typed(uniformRows(random, N, 2), 'float64');
    const K = Vi(xs, 2).sqDist(Vj(xs, 2)).mul(-10).exp();
    const b = typed(uniformRows(random, N, 1), 'float64');
    return { K, b };
  };

  it('a long solve lets the timer tick, and a timer abort stops it; then a solve succeeds', async () => {
    const { K, b } = setup();
    let iterations = 0;
    const { result } = await expectResponsive(() =>
      K.solve(b, {
        alpha: 0,
        tol: 1e-300,
        maxIter: 100000,
        signal: abortAfter(150, new Error('enough')),
        onIteration: (k) => (iterations = k),
      }).then(
        () => 'finished',
        (e: Error) => e.message,
      ),
    );
    expect(result).toBe('enough');
    expect(iterations).toBeGreaterThan(1);
    const ok = await K.solve(b, { alpha: 0.1, tol: 1e-8 });
    expect(ok.converged).toBe(true);
  });

  it('rejects at once with an aborted signal, and validates it', async () => {
    const { K, b } = setup();
    await expect(K.solve(b, { signal: AbortSignal.abort('gone') })).rejects.toBe('gone');
    await expect(K.solve(b, { signal: 'x' as unknown as AbortSignal })).rejects.toThrow(
      /signal must be an AbortSignal/,
    );
  });
});
