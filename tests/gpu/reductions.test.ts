// Every reduction on the WebGPU engine (float32), both axes, sizes around the workgroup and tile
// sizes, against independent float64 references; the special values and ties of assembly/isa.ts.
import { describe, expect, it } from 'vitest';
import { Pm, Vi, Vj } from '../../src/index.js';
import { refKSelect, refLogSumExp, refLogSumExpWeighted, refSoftMax, refSum } from '../helpers/dense-reference.js';
import { expectClose } from '../helpers/expect.js';
import { rng, typed, uniformRows } from '../helpers/random.js';
import { REDUCTION_SIZES, reductionSetup } from '../helpers/reduction-setup.js';
import { expectGpu, hasGpu } from './setup.js';

const GPU = { engine: 'webgpu' } as const;
const SIZES: [number, number][] = [...REDUCTION_SIZES, [65, 64], [257, 300]];
const setup = (N: number, M: number, D = 3, seed = 7) => reductionSetup('float32', N, M, D, seed);

const sq = (a: number[], b: number[]): number => a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0);
const rtol = 1e-5;

describe.skipIf(!hasGpu)('WebGPU: reductions (float32)', () => {
  it.each(SIZES)('sum, logSumExp, weighted logSumExp and sumSoftMaxWeight, N = %i, M = %i', async (N, M) => {
    const { x, y, b, xs, ys, bs } = setup(N, M);
    const F = x.sqDist(y).mul(-4);
    const f = (i: number, j: number): number[] => [-4 * sq(xs[i]!, ys[j]!)];
    for (const axis of [1, 0] as const) {
      const s = await F.exp().mul(x.sub(y)).sum(axis, GPU);
      expectGpu(s, 'sum');
      const want = refSum((i, j) => xs[i]!.map((v, k) => Math.exp(f(i, j)[0]!) * (v - ys[j]![k]!)), { N, M }, axis);
      expectClose(s.data, want.value.flat(), rtol, 0, want.scale.flat(), `sum axis ${axis}`);
      const lse = await F.logSumExp(axis, GPU);
      expectGpu(lse, 'lse');
      expectClose(lse.data, refLogSumExp(f, { N, M }, axis).flat(), rtol, rtol, undefined, `lse axis ${axis}`);
      // Weights indexed by the reduced index (b over j, or x over i).
      const w = axis === 1 ? b : x.abs();
      const g = (i: number, j: number): number[] => (axis === 1 ? bs[j]! : xs[i]!.map(Math.abs));
      const lw = await F.logSumExp(axis, { ...GPU, weight: w });
      expectGpu(lw, 'lse weighted');
      expect(lw.shape).toEqual([axis === 1 ? N : M, w.dim]);
      expectClose(
        lw.data,
        refLogSumExpWeighted(f, g, { N, M }, axis).flat(),
        rtol,
        rtol,
        undefined,
        `lse weighted axis ${axis}`,
      );
      const sm = await F.sumSoftMaxWeight(axis, w, GPU);
      expectGpu(sm, 'softmax');
      expectClose(sm.data, refSoftMax(f, g, { N, M }, axis).flat(), rtol, rtol, undefined, `softmax axis ${axis}`);
    }
  });

  it.each(SIZES)('min, max, argMin, argMax, minArgMin, maxArgMax, N = %i, M = %i', async (N, M) => {
    const { x, y, xs, ys } = setup(N, M);
    const F = x.sub(y).abs(); // dimension 3: each component reduced on its own
    const f = (i: number, j: number): number[] => xs[i]!.map((v, k) => Math.abs(v - ys[j]![k]!));
    for (const axis of [1, 0] as const) {
      const lo = refKSelect(f, { N, M }, axis, 1);
      const hi = refKSelect(f, { N, M }, axis, 1, true);
      const nOut = axis === 1 ? N : M;
      const mn = await F.min(axis, GPU);
      expectGpu(mn, 'min');
      expect(mn.shape).toEqual([nOut, 3]);
      expectClose(mn.data, lo.values.flat(2), rtol, 0, undefined, 'min');
      expectClose((await F.max(axis, GPU)).data, hi.values.flat(2), rtol, 0, undefined, 'max');
      const am = await F.argMin(axis, GPU);
      expectGpu(am, 'argMin');
      expect(Array.from(am.data)).toEqual(lo.indices.flat(2));
      expect(Array.from((await F.argMax(axis, GPU)).data)).toEqual(hi.indices.flat(2));
      const both = await F.minArgMin(axis, GPU);
      expectGpu(both.values, 'minArgMin values');
      expectGpu(both.indices, 'minArgMin indices');
      expectClose(both.values.data, lo.values.flat(2), rtol, 0, undefined, 'minArgMin values');
      expect(Array.from(both.indices.data)).toEqual(lo.indices.flat(2));
      const top = await F.maxArgMax(axis, GPU);
      expectClose(top.values.data, hi.values.flat(2), rtol, 0, undefined, 'maxArgMax values');
      expect(Array.from(top.indices.data)).toEqual(hi.indices.flat(2));
      expect(both.indices.dtype).toBe('int32');
    }
  });

  it.each(SIZES)('kMin, argKMin, kMinArgKMin, N = %i, M = %i', async (N, M) => {
    const { x, y, xs, ys } = setup(N, M);
    const D2 = x.sqDist(y);
    const f = (i: number, j: number): number[] => [sq(xs[i]!, ys[j]!)];
    for (const axis of [1, 0] as const) {
      const nInner = axis === 1 ? M : N;
      for (const K of [...new Set([1, 2, 5, 10].filter((k) => k <= nInner).concat([Math.min(nInner, 64)]))]) {
        const want = refKSelect(f, { N, M }, axis, K);
        const values = await D2.kMin(K, axis, GPU);
        expectGpu(values, 'kMin');
        expect(values.shape).toEqual([axis === 1 ? N : M, K]);
        expectClose(values.data, want.values.flat(2), rtol, 0, undefined, `kMin K=${K}`);
        expect(Array.from((await D2.argKMin(K, axis, GPU)).data)).toEqual(want.indices.flat(2));
        const both = await D2.kMinArgKMin(K, axis, GPU);
        expectGpu(both.indices, 'kMinArgKMin');
        expect(Array.from(both.indices.data)).toEqual(want.indices.flat(2));
        expectClose(both.values.data, want.values.flat(2), rtol, 0, undefined, `kMinArgKMin K=${K}`);
      }
    }
  });
});

describe.skipIf(!hasGpu)('WebGPU: ties, vectors and special values', () => {
  it('ties in argMin and argKMin go to the lowest index', async () => {
    // Values repeat with period 4 over j, so every minimum is tied many times.
    const ys = Array.from({ length: 1030 }, (_, j) => [(j % 4) * 0.5]);
    const x = Vi(typed([[0], [1], [0.5]], 'float32'), 1);
    const y = Vj(typed(ys, 'float32'), 1);
    const D = x.sqDist(y);
    expect(Array.from((await D.argMin(1, GPU)).data)).toEqual([0, 2, 1]);
    expect(Array.from((await D.argMax(1, GPU)).data)).toEqual([3, 0, 3]);
    const k5 = await D.argKMin(5, 1, GPU);
    expectGpu(k5);
    expect(Array.from(k5.data)).toEqual([0, 4, 8, 12, 16, 2, 6, 10, 14, 18, 1, 5, 9, 13, 17]);
    const zeros = Vi(typed([[0], [0], [0]], 'float32'), 1);
    expect(Array.from((await zeros.sqDist(y).argMin(0, GPU)).data).every((v) => v === 0)).toBe(true);
  });

  it('kMin over a vector formula gives shape [N, K, d] with q = t*d + k', async () => {
    const { x, y, xs, ys } = setup(4, 37);
    const F = x.sub(y).abs();
    const got = await F.kMinArgKMin(3, 1, GPU);
    expectGpu(got.values);
    expect(got.values.shape).toEqual([4, 3, 3]);
    const want = refKSelect((i, j) => xs[i]!.map((v, k) => Math.abs(v - ys[j]![k]!)), { N: 4, M: 37 }, 1, 3);
    expectClose(got.values.data, want.values.flat(2), 1e-6, 0, undefined, 'values');
    expect(Array.from(got.indices.data)).toEqual(want.indices.flat(2));
  });

  it('NaN is never selected; unfilled slots get index -1 and value NaN', async () => {
    // log of a negative number is NaN: rows of x where every value is NaN, or only some.
    const x = Vi(typed([[-1], [1], [3]], 'float32'), 1);
    const y = Vj(typed([[0], [2], [-5], [4]], 'float32'), 1);
    const F = x.sub(y).log(); // x - y: row 0: -1, -3, 4, -5 -> one value; row 1: 1, -1, 6, -3; row 2: 3, 1, 8, -1
    const mn = await F.minArgMin(1, GPU);
    expectGpu(mn.values);
    expect(Array.from(mn.indices.data)).toEqual([2, 0, 1]);
    const k3 = await F.kMinArgKMin(3, 1, GPU);
    expect(Array.from(k3.indices.data)).toEqual([2, -1, -1, 0, 2, -1, 1, 0, 2]);
    const v = Array.from(k3.values.data);
    expect(v[0]).toBeCloseTo(Math.log(4), 5);
    expect(Number.isNaN(v[1]!) && Number.isNaN(v[2]!) && Number.isNaN(v[5]!)).toBe(true);
    const allNaN = await Vi(typed([[-1]], 'float32'), 1)
      .add(y.mul(0))
      .log()
      .argMin(1, GPU);
    expect(Array.from(allNaN.data)).toEqual([-1]);
    const nanMax = await Vi(typed([[-1]], 'float32'), 1)
      .add(y.mul(0))
      .log()
      .max(1, GPU);
    expect(Number.isNaN(nanMax.data[0]!)).toBe(true);
    // A NaN makes sums and log-sum-exps NaN.
    const lse = await F.logSumExp(1, GPU);
    expect(Array.from(lse.data).every(Number.isNaN)).toBe(true);
  });

  it('logSumExp is stable for huge and tiny exponents and gives -inf for an all -inf row', async () => {
    const x = Vi(typed([[0], [1]], 'float32'), 1);
    const y = Vj(typed([[0], [0.5], [2]], 'float32'), 1);
    const big = await x.sqDist(y).mul(1e4).logSumExp(1, GPU);
    expectGpu(big);
    expectClose(big.data, [4e4, 1e4 + Math.LN2], 1e-6);
    const small = await x.sqDist(y).mul(-1e4).logSumExp(1, GPU);
    expectClose(small.data, [0, -2500], 1e-6, 1e-3);
    const allInf = await y.mul(0).log().add(x.mul(0)).logSumExp(1, GPU); // log(0) = -inf everywhere
    expect(Array.from(allInf.data)).toEqual([-Infinity, -Infinity]);
    // +inf wins: log(sum) = +inf.
    const inf = await x.sub(y).pow(-1).logSumExp(1, GPU); // 1/0 = +inf at (0, 0)
    expect(inf.data[0]).toBe(Infinity);
    // Weighted: all -inf gives -inf (LSE) and NaN (softmax: 0/0).
    const w = Vj(typed([[1], [2], [3]], 'float32'), 1);
    const lw = await y
      .mul(0)
      .log()
      .add(x.mul(0))
      .logSumExp(1, { ...GPU, weight: w });
    expect(Array.from(lw.data)).toEqual([-Infinity, -Infinity]);
    const sm = await y.mul(0).log().add(x.mul(0)).sumSoftMaxWeight(1, w, GPU);
    expect(Array.from(sm.data).every(Number.isNaN)).toBe(true);
  });

  it('sums of infinities stay infinite (the compensation is dropped, not NaN)', async () => {
    const x = Vi(typed([[0], [1]], 'float32'), 1);
    const y = Vj(typed([[0], [0.5], [2]], 'float32'), 1);
    const s = await x.sub(y).pow(-2).sum(1, GPU);
    expect(s.data[0]).toBe(Infinity);
    expect(Number.isFinite(s.data[1]!)).toBe(true);
  });

  it('float32 sums of a million terms agree with float64 to 1e-5', async () => {
    const M = 1_000_000;
    const random = rng(99);
    const ys = new Float32Array(M);
    for (let j = 0; j < M; j++) ys[j] = random();
    const x = Vi(new Float32Array([0.25, 0.5, 0.75]), 1);
    const F = x.sub(Vj(ys, 1)).square().mul(-3).exp();
    const got = await F.sum(1, GPU);
    expectGpu(got);
    for (let i = 0; i < 3; i++) {
      let want = 0;
      const xi = [0.25, 0.5, 0.75][i]!;
      for (let j = 0; j < M; j++) want += Math.exp(-3 * (xi - ys[j]!) ** 2);
      expect(Math.abs(got.data[i]! - want) / want).toBeLessThan(1e-5);
    }
    // A sum of a constant: no compensation error may build up.
    const ones = await Vj(ys, 1).mul(0).add(1).add(x.mul(0)).sum(1, GPU);
    expect(Array.from(ones.data)).toEqual([M, M, M]);
    // And a log-sum-exp of a million terms.
    const lse = await F.log().logSumExp(1, GPU);
    for (let i = 0; i < 3; i++)
      expect(Math.abs(Math.exp(lse.data[i]!) - got.data[i]!) / got.data[i]!).toBeLessThan(2e-5);
  });

  it('the README example on WebGPU', async () => {
    const random = rng(5);
    const p1 = typed(uniformRows(random, 200, 3), 'float32');
    const p2 = typed(uniformRows(random, 300, 3), 'float32');
    const wts = typed(uniformRows(random, 300, 1), 'float32');
    const x = Vi(p1, 3);
    const y = Vj(p2, 3);
    const b = Vj(wts, 1);
    const out = await x.sqDist(y).mul(-50).exp().mul(b).sum(1, GPU);
    expectGpu(out);
    expect(out.shape).toEqual([200, 1]);
    const sx = Array.from({ length: 200 }, (_, i) => Array.from(p1.subarray(3 * i, 3 * i + 3)));
    const sy = Array.from({ length: 300 }, (_, j) => Array.from(p2.subarray(3 * j, 3 * j + 3)));
    const want = refSum((i, j) => [Math.exp(-50 * sq(sx[i]!, sy[j]!)) * wts[j]!], { N: 200, M: 300 }, 1);
    expectClose(out.data, want.value.flat(), 1e-5, 0, want.scale.flat());
    const nn = await x.sqDist(y).argKMin(10, 1, GPU);
    expect(nn.dtype).toBe('int32');
    const wasm = await x.sqDist(y).argKMin(10, 1, { engine: 'wasm' });
    // float32 distances may order near-ties differently; compare the distances of the neighbours.
    for (let i = 0; i < 200; i++) {
      for (let t = 0; t < 10; t++) {
        expect(sq(sx[i]!, sy[nn.data[i * 10 + t]!]!)).toBeCloseTo(sq(sx[i]!, sy[wasm.data[i * 10 + t]!]!), 5);
      }
    }
    expect(Pm(2).dim).toBe(1);
  });
});
