// Every reduction, both axes and precisions, sizes around the SIMD width and the block size, against
// independent float64 references.
import { describe, expect, it } from 'vitest';
import { Pm, Vi, Vj } from '../src/index.js';
import { refKSelect, refLogSumExp, refLogSumExpWeighted, refSoftMax, refSum } from './helpers/dense-reference.js';
import { expectClose } from './helpers/expect.js';
import { rng, typed, uniformRows } from './helpers/random.js';
import { REDUCTION_SIZES, reductionSetup } from './helpers/reduction-setup.js';

type DType = 'float32' | 'float64';
const DTYPES: DType[] = ['float32', 'float64'];
const SIZES = REDUCTION_SIZES;
const setup = reductionSetup;

const sq = (a: number[], b: number[]): number => a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0);

describe.each(DTYPES)('reductions (%s)', (dtype) => {
  const rtol = dtype === 'float64' ? 1e-12 : 1e-5;

  it.each(SIZES)('logSumExp, weighted logSumExp and sumSoftMaxWeight, N = %i, M = %i', async (N, M) => {
    const { x, y, b, xs, ys, bs } = setup(dtype, N, M);
    const F = x.sqDist(y).mul(-4);
    const f = (i: number, j: number): number[] => [-4 * sq(xs[i]!, ys[j]!)];
    for (const axis of [1, 0] as const) {
      const g = (i: number, j: number): number[] => bs[axis === 1 ? j : j]!;
      const lse = await F.logSumExp(axis);
      expectClose(lse.data, refLogSumExp(f, { N, M }, axis).flat(), rtol, rtol, undefined, `lse axis ${axis}`);
      if (axis === 1) {
        const w = await F.logSumExp(axis, { weight: b });
        expect(w.shape).toEqual([N, 2]);
        expectClose(w.data, refLogSumExpWeighted(f, g, { N, M }, axis).flat(), rtol, rtol, undefined, 'lse weighted');
        const s = await F.sumSoftMaxWeight(axis, b);
        expectClose(s.data, refSoftMax(f, g, { N, M }, axis).flat(), rtol, rtol, undefined, 'softmax');
      }
    }
  });

  it.each(SIZES)('min, max, argMin, argMax, minArgMin, maxArgMax, N = %i, M = %i', async (N, M) => {
    const { x, y, xs, ys } = setup(dtype, N, M);
    const F = x.sub(y).abs(); // dimension 3: each component reduced on its own
    const f = (i: number, j: number): number[] => xs[i]!.map((v, k) => Math.abs(v - ys[j]![k]!));
    for (const axis of [1, 0] as const) {
      const lo = refKSelect(f, { N, M }, axis, 1);
      const hi = refKSelect(f, { N, M }, axis, 1, true);
      const nOut = axis === 1 ? N : M;
      const mn = await F.min(axis);
      expect(mn.shape).toEqual([nOut, 3]);
      expectClose(mn.data, lo.values.flat(2), rtol, 0, undefined, 'min');
      expectClose((await F.max(axis)).data, hi.values.flat(2), rtol, 0, undefined, 'max');
      expect(Array.from((await F.argMin(axis)).data)).toEqual(lo.indices.flat(2));
      expect(Array.from((await F.argMax(axis)).data)).toEqual(hi.indices.flat(2));
      const both = await F.minArgMin(axis);
      expectClose(both.values.data, lo.values.flat(2), rtol, 0, undefined, 'minArgMin values');
      expect(Array.from(both.indices.data)).toEqual(lo.indices.flat(2));
      const top = await F.maxArgMax(axis);
      expectClose(top.values.data, hi.values.flat(2), rtol, 0, undefined, 'maxArgMax values');
      expect(Array.from(top.indices.data)).toEqual(hi.indices.flat(2));
      expect(both.indices.dtype).toBe('int32');
    }
  });

  it.each(SIZES)('kMin, argKMin, kMinArgKMin, N = %i, M = %i', async (N, M) => {
    const { x, y, xs, ys } = setup(dtype, N, M);
    const D2 = x.sqDist(y);
    const f = (i: number, j: number): number[] => [sq(xs[i]!, ys[j]!)];
    for (const axis of [1, 0] as const) {
      const nInner = axis === 1 ? M : N;
      for (const K of [1, 2, 5, 10].filter((k) => k <= nInner).concat([nInner])) {
        const want = refKSelect(f, { N, M }, axis, K);
        const values = await D2.kMin(K, axis);
        expect(values.shape).toEqual([axis === 1 ? N : M, K]);
        expectClose(values.data, want.values.flat(2), rtol, 0, undefined, `kMin K=${K}`);
        expect(Array.from((await D2.argKMin(K, axis)).data)).toEqual(want.indices.flat(2));
        const both = await D2.kMinArgKMin(K, axis);
        expect(Array.from(both.indices.data)).toEqual(want.indices.flat(2));
      }
    }
  });
});

describe('ties, vectors and special values', () => {
  it('ties in argMin and argKMin go to the lowest index', async () => {
    // Values repeat with period 4 over j, so every minimum is tied many times.
    const ys = Array.from({ length: 1030 }, (_, j) => [(j % 4) * 0.5]);
    for (const dtype of DTYPES) {
      const x = Vi(typed([[0], [1], [0.5]], dtype), 1);
      const y = Vj(typed(ys, dtype), 1);
      const D = x.sqDist(y);
      expect(Array.from((await D.argMin(1)).data)).toEqual([0, 2, 1]);
      expect(Array.from((await D.argMax(1)).data)).toEqual([3, 0, 3]);
      expect(Array.from((await D.argKMin(5, 1)).data)).toEqual([0, 4, 8, 12, 16, 2, 6, 10, 14, 18, 1, 5, 9, 13, 17]);
      // Over axis 0 every column's minimum is unique or tied between rows 0..2.
      const zeros = Vi(typed([[0], [0], [0]], dtype), 1);
      expect(Array.from((await zeros.sqDist(y).argMin(0)).data).every((v) => v === 0)).toBe(true);
    }
  });

  it('kMin over a vector formula gives shape [N, K, d]', async () => {
    const { x, y, xs, ys } = setup('float64', 4, 37);
    const F = x.sub(y).abs();
    const got = await F.kMinArgKMin(3, 1);
    expect(got.values.shape).toEqual([4, 3, 3]);
    const want = refKSelect((i, j) => xs[i]!.map((v, k) => Math.abs(v - ys[j]![k]!)), { N: 4, M: 37 }, 1, 3);
    expectClose(got.values.data, want.values.flat(2), 1e-14, 0, undefined, 'values');
    expect(Array.from(got.indices.data)).toEqual(want.indices.flat(2));
  });

  it('logSumExp is stable for huge and tiny exponents and gives -inf for an all -inf row', async () => {
    for (const dtype of DTYPES) {
      const x = Vi(typed([[0], [1]], dtype), 1);
      const y = Vj(typed([[0], [0.5], [2]], dtype), 1);
      const big = await x.sqDist(y).mul(1e4).logSumExp(1);
      // row 0: exponents 0, 2500, 4e4; row 1: 1e4, 2500, 1e4
      expectClose(big.data, [4e4, 1e4 + Math.LN2], 1e-6);
      const small = await x.sqDist(y).mul(-1e4).logSumExp(1);
      expectClose(small.data, [0, -2500], 1e-6, 1e-3);
      const allInf = await y.mul(0).log().add(x.mul(0)).logSumExp(1); // log(0) = -inf everywhere
      expect(Array.from(allInf.data)).toEqual([-Infinity, -Infinity]);
    }
  });

  it('logSumExp skips runs of underflowing terms without changing a bit, and keeps a NaN among them', async () => {
    for (const dtype of DTYPES) {
      // Row i: 0 at j = i, then terms far below exp's underflow threshold (-1e4 * j^2), in runs of
      // 16 and more; one term in the middle of such a run is the only one that counts besides j = i.
      const M = 200;
      const xs = Array.from({ length: 3 }, (_, i) => [i]);
      const ys = Array.from({ length: M }, (_, j) => [j]);
      ys[101] = [1.001]; // close to x_1: exponent -1e4 * 0.001^2 = -0.01
      const x = Vi(typed(xs, dtype), 1);
      const y = Vj(typed(ys, dtype), 1);
      const F = x.sqDist(y).mul(-1e4);
      const got = await F.logSumExp(1);
      const ref = xs.map(([xi]) => {
        const e = ys.map(([yj]) => -1e4 * (xi! - yj!) ** 2);
        const m = Math.max(...e);
        return m + Math.log(e.reduce((acc, v) => acc + Math.exp(v - m), 0));
      });
      expectClose(got.data, ref, dtype === 'float64' ? 1e-12 : 1e-6, 1e-6);
      // A NaN inside an otherwise underflowing run still makes the row NaN.
      const z = ys.map((_, j) => [j === 150 ? -1 : 0]); // sqrt(-1) = NaN at j = 150 only
      const nan = await F.add(Vj(typed(z, dtype), 1).sqrt()).logSumExp(1);
      expect(Array.from(nan.data).every((v) => Number.isNaN(v))).toBe(true);
    }
  });

  it('float32 sums of a million terms agree with float64 to 1e-5', async () => {
    const M = 1_000_000;
    const random = rng(99);
    const ys = new Float32Array(M);
    for (let j = 0; j < M; j++) ys[j] = random();
    const x = Vi(new Float32Array([0.25, 0.5, 0.75]), 1);
    const F = x.sub(Vj(ys, 1)).square().mul(-3).exp();
    const got = await F.sum(1);
    for (let i = 0; i < 3; i++) {
      let want = 0;
      const xi = [0.25, 0.5, 0.75][i]!;
      for (let j = 0; j < M; j++) want += Math.exp(-3 * (xi - ys[j]!) ** 2);
      expect(Math.abs(got.data[i]! - want) / want).toBeLessThan(1e-5);
    }
    // A sum of a constant: no compensation error may build up.
    const ones = await Vj(ys, 1).mul(0).add(1).add(x.mul(0)).sum(1);
    expect(Array.from(ones.data)).toEqual([M, M, M]);
  });

  it('the example of the README computes a Gaussian kernel sum and nearest neighbours', async () => {
    const random = rng(5);
    const p1 = typed(uniformRows(random, 200, 3), 'float32');
    const p2 = typed(uniformRows(random, 300, 3), 'float32');
    const w = typed(uniformRows(random, 300, 1), 'float32');
    const x = Vi(p1, 3);
    const y = Vj(p2, 3);
    const b = Vj(w, 1);
    const K = x.sqDist(y).mul(-50).exp();
    const out = await K.mul(b).sum(1);
    expect(out.shape).toEqual([200, 1]);
    const nn = await x.sqDist(y).argKMin(10, 1);
    expect(nn.shape).toEqual([200, 10]);
    expect(nn.dtype).toBe('int32');
    const sx = Array.from({ length: 200 }, (_, i) => Array.from(p1.subarray(3 * i, 3 * i + 3)));
    const sy = Array.from({ length: 300 }, (_, j) => Array.from(p2.subarray(3 * j, 3 * j + 3)));
    const want = refSum((i, j) => [Math.exp(-50 * sq(sx[i]!, sy[j]!)) * w[j]!], { N: 200, M: 300 }, 1);
    expectClose(out.data, want.value.flat(), 1e-5, 0, want.scale.flat());
    const wantNN = refKSelect((i, j) => [sq(sx[i]!, sy[j]!)], { N: 200, M: 300 }, 1, 10);
    // float32 distances may reorder near-ties; compare the distances of the chosen neighbours.
    const d = (i: number, j: number): number => sq(sx[i]!, sy[j]!);
    for (let i = 0; i < 200; i++) {
      for (let t = 0; t < 10; t++) {
        expect(d(i, nn.data[i * 10 + t]!)).toBeCloseTo(d(i, wantNN.indices[i]![t]![0]!), 5);
      }
    }
    expect(Pm(2).dim).toBe(1);
  });
});
