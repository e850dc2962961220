// The compiled-program caches (src/core/compile-cache.ts): a formula built once and called with new
// data compiles once, on both engines; the structural key tells apart the plans that compile
// differently (constants that share a register) and nothing else; the cache is bounded (LRU).
import { afterEach, describe, expect, it } from 'vitest';
import { Pm, Vi, Vj, formula } from '../src/index.js';
import { LruCache, planStructureKey } from '../src/core/compile-cache.js';
import { programCache } from '../src/wasm/compile.js';
import { webgpuStatus } from '../src/runtime/index.js';
import { expectClose } from './helpers/expect.js';
import { refSoftMax, refSum } from './helpers/dense-reference.js';
import { asSeen, rng, typed, uniformRows } from './helpers/random.js';
import { expectGpu, hasGpu } from './gpu/setup.js';

const random = rng(2024);
const D = 3;

/** exp(-s |x_i - y_j|^2) * y_j[0], in plain float64. */
const gaussianRef = (xs: number[][], ys: number[][], s: number) => (i: number, j: number) => {
  let d2 = 0;
  for (let k = 0; k < D; k++) d2 += (xs[i]![k]! - ys[j]![k]!) ** 2;
  return [Math.exp(-s * d2) * ys[j]![0]!];
};

const F = formula(({ x, y, s }) => x.sqDist(y).mul(s).neg().exp().mul(y.elem(0)), {
  x: Vi.placeholder(D),
  y: Vj.placeholder(D),
  s: Pm.placeholder(1),
});

afterEach(() => programCache.resize(256));

describe('compiled-program cache (WebAssembly)', () => {
  it('compiles a placeholder formula once over 100 calls with new data, each result exact', async () => {
    programCache.clear();
    for (let call = 0; call < 100; call++) {
      // New sizes and new data every call: only the structure is the same.
      const n = 5 + (call % 7);
      const m = 9 + (call % 5);
      const xs = uniformRows(random, n, D);
      const ys = uniformRows(random, m, D);
      const s = 0.25 + call / 50;
      const got = await F.bind({ x: typed(xs, 'float64'), y: typed(ys, 'float64'), s }).sum(1, { engine: 'wasm' });
      const ref = refSum(gaussianRef(xs, ys, s), { N: n, M: m }, 1);
      expect(got.shape).toEqual([n, 1]);
      expectClose(got.data, ref.value.flat(), 1e-13, 0, ref.scale.flat());
    }
    expect(programCache.stats.compiles).toBe(1);
    expect(programCache.stats.hits).toBe(99);
  });

  it('a formula rebuilt over new arrays each call compiles once too', async () => {
    programCache.clear();
    for (let call = 0; call < 10; call++) {
      const xs = uniformRows(random, 6, D);
      const ys = uniformRows(random, 8, D);
      const got = await Vi(typed(xs, 'float64'), D)
        .sqDist(Vj(typed(ys, 'float64'), D))
        .mul(Pm(0.5))
        .neg()
        .exp()
        .mul(Vj(typed(ys, 'float64'), D).elem(0))
        .sum(1, { engine: 'wasm' });
      // Two Vj of the same array are two variables: not the placeholder formula's structure, but
      // the same structure from one call to the next.
      const ref = refSum(gaussianRef(xs, ys, 0.5), { N: 6, M: 8 }, 1);
      expectClose(got.data, ref.value.flat(), 1e-13, 0, ref.scale.flat());
    }
    expect(programCache.stats.compiles).toBe(1);
  });

  it('a batched reduction compiles once for all its items', async () => {
    programCache.clear();
    const H = 5;
    const xs = uniformRows(random, H * 4, D);
    const ys = uniformRows(random, H * 6, D);
    const x = Vi(typed(xs, 'float64'), D, { batch: [H] });
    const y = Vj(typed(ys, 'float64'), D, { batch: [H] });
    const got = await x.sqDist(y).neg().exp().sum(1, { engine: 'wasm' });
    expect(got.shape).toEqual([H, 4, 1]);
    for (let h = 0; h < H; h++) {
      const xh = xs.slice(4 * h, 4 * h + 4);
      const yh = ys.slice(6 * h, 6 * h + 6);
      const direct = xh.map((xi) =>
        yh.reduce((acc, yj) => acc + Math.exp(-xi.reduce((d, v, k) => d + (v - yj[k]!) ** 2, 0)), 0),
      );
      expectClose(got.data.subarray(4 * h, 4 * h + 4), direct, 1e-13);
    }
    expect(programCache.stats.compiles).toBe(1);
    expect(programCache.stats.hits).toBe(H - 1);
  });

  it('constants: equal ones share a register, so the equality pattern is part of the key', async () => {
    programCache.clear();
    const xs = uniformRows(random, 7, 1);
    const ys = uniformRows(random, 5, 1);
    const affine = (a: number, b: number) =>
      Vi(typed(xs, 'float64'), 1)
        .mul(a)
        .add(b)
        .mul(Vj(typed(ys, 'float64'), 1))
        .sum(1, { engine: 'wasm' });
    const expected = (a: number, b: number) => xs.map(([x]) => ys.reduce((acc, [y]) => acc + (x! * a + b) * y!, 0));
    // 2, 2 (one register) then 2, 3 (two): a cache keyed without the pattern would read 2 for 3.
    expectClose((await affine(2, 2)).data, expected(2, 2), 1e-14);
    expectClose((await affine(2, 3)).data, expected(2, 3), 1e-14);
    expect(programCache.stats.compiles).toBe(2);
    // 5, 7 has the pattern of 2, 3: no compile.
    expectClose((await affine(5, 7)).data, expected(5, 7), 1e-14);
    expect(programCache.stats.compiles).toBe(2);
  });

  it('the weight of sumSoftMaxWeight is part of the key', async () => {
    programCache.clear();
    const xs = uniformRows(random, 6, D);
    const ys = uniformRows(random, 9, D);
    const x = Vi(typed(xs, 'float64'), D);
    const y = Vj(typed(ys, 'float64'), D);
    const f = x.dot(y);
    const a = await f.sumSoftMaxWeight(1, y, { engine: 'wasm' });
    const b = await f.sumSoftMaxWeight(1, y.exp(), { engine: 'wasm' });
    const dot = (i: number, j: number) => [xs[i]!.reduce((s, v, k) => s + v * ys[j]![k]!, 0)];
    expectClose(a.data, refSoftMax(dot, (_, j) => ys[j]!, { N: 6, M: 9 }, 1).flat(), 1e-13);
    expectClose(b.data, refSoftMax(dot, (_, j) => ys[j]!.map(Math.exp), { N: 6, M: 9 }, 1).flat(), 1e-13);
    expect(programCache.stats.compiles).toBe(2);
  });

  it('is bounded: the least recently used program is dropped', async () => {
    programCache.clear();
    programCache.resize(2);
    const xs = typed(uniformRows(random, 4, D), 'float64');
    const ys = typed(uniformRows(random, 5, D), 'float64');
    const run = (p: number) => Vi(xs, D).sqDist(Vj(ys, D)).pow(p).sum(1, { engine: 'wasm' });
    await run(3);
    await run(4);
    await run(3); // hit: 3 is now the most recent
    await run(5); // drops 4
    expect(programCache.stats).toEqual({ compiles: 3, hits: 1, size: 2 });
    await run(3); // still held
    await run(4); // compiled again
    expect(programCache.stats).toEqual({ compiles: 4, hits: 2, size: 2 });
  });
});

describe('planStructureKey', () => {
  const xs = typed(uniformRows(random, 4, D), 'float64');
  const ys = typed(uniformRows(random, 5, D), 'float64');
  const plan = (f: ReturnType<typeof Vi>) => f.plan('sum', 1, undefined);

  it('ignores data, sizes and identity; sees structure, dims, dtype, reduction and axis roles', () => {
    const base = planStructureKey(plan(Vi(xs, D).sqDist(Vj(ys, D)).neg().exp()));
    const other = typed(uniformRows(random, 11, D), 'float64');
    expect(planStructureKey(plan(Vi(other, D).sqDist(Vj(ys, D)).neg().exp()))).toBe(base);
    expect(planStructureKey(plan(Vi(xs, D).sqDist(Vj(ys, D)).exp()))).not.toBe(base);
    expect(planStructureKey(plan(Vi(xs, 1).sqDist(Vj(ys, 1)).neg().exp()))).not.toBe(base);
    const f32 = Vi(typed(uniformRows(random, 4, D), 'float32'), D)
      .sqDist(Vj(typed(uniformRows(random, 5, D), 'float32'), D))
      .neg()
      .exp();
    expect(planStructureKey(plan(f32))).not.toBe(base);
    const g = Vi(xs, D).sqDist(Vj(ys, D)).neg().exp();
    expect(planStructureKey(g.plan('logSumExp', 1, undefined))).not.toBe(base);
    expect(planStructureKey(g.plan('sum', 0, undefined))).not.toBe(base);
  });

  it('LruCache refuses a capacity that is not a positive integer', () => {
    expect(() => new LruCache(0)).toThrow(RangeError);
    expect(() => programCache.resize(1.5)).toThrow(/positive integer/);
  });
});

describe.skipIf(!hasGpu)('compiled-program cache (WebGPU)', () => {
  it('compiles a placeholder formula once over new data; results match float64', async () => {
    const before = (await webgpuStatus()).stats!.compiles;
    for (let call = 0; call < 8; call++) {
      const xs = uniformRows(random, 40, D);
      const ys = uniformRows(random, 30, D);
      const s = 0.5 + call / 4;
      const got = await F.bind({ x: typed(xs, 'float32'), y: typed(ys, 'float32'), s }).sum(1, { engine: 'webgpu' });
      expectGpu(got);
      const ref = refSum(
        gaussianRef(asSeen(xs, 'float32'), asSeen(ys, 'float32'), Math.fround(s)),
        { N: 40, M: 30 },
        1,
      );
      expectClose(got.data, ref.value.flat(), 1e-5, 0, ref.scale.flat());
    }
    expect((await webgpuStatus()).stats!.compiles - before).toBe(1);
  });

  it('constants that share a value in one plan and not in the next compute each value', async () => {
    const xs = uniformRows(random, 7, 1);
    const ys = uniformRows(random, 5, 1);
    const affine = (a: number, b: number) =>
      Vi(typed(xs, 'float32'), 1)
        .mul(a)
        .add(b)
        .mul(Vj(typed(ys, 'float32'), 1))
        .sum(1, { engine: 'webgpu' });
    const expected = (a: number, b: number) => xs.map(([x]) => ys.reduce((acc, [y]) => acc + (x! * a + b) * y!, 0));
    expectClose((await affine(2, 2)).data, expected(2, 2), 1e-5);
    expectClose((await affine(2, 3)).data, expected(2, 3), 1e-5);
  });
});
