// Infinite constants where they are meaningful (OpDef.infiniteConstants): causal masks written as
// c.ifElse(F, -Infinity) or F.add(-Infinity) inside log-sum-exp and soft-max reductions, infinite
// bounds and comparisons, on both engines, against float64 dense references; NaN and infinities in
// products are still refused with a named error.
import { describe, expect, it } from 'vitest';
import { InputError, Pm, Vi, Vj, type LazyTensor } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { refLogSumExp, refSoftMax, refSum } from './helpers/dense-reference.js';
import { asSeen, rng, typed, uniformRows } from './helpers/random.js';
import { expectGpu, hasGpu } from './gpu/setup.js';

const N = 37;
const M = 37;
const D = 3;
const random = rng(31);
const qs = uniformRows(random, N, D);
const ks = uniformRows(random, M, D);
const vs = uniformRows(random, M, 2);
const positions = (n: number): number[][] => Array.from({ length: n }, (_, t) => [t]);

type Dtype = 'float32' | 'float64';
type Engine = 'wasm' | 'webgpu';

function setup(dtype: Dtype) {
  const q = Vi(typed(qs, dtype), D);
  const k = Vj(typed(ks, dtype), D);
  const v = Vj(typed(vs, dtype), 2);
  const pi = Vi(typed(positions(N), dtype), 1);
  const pj = Vj(typed(positions(M), dtype), 1);
  const sq = asSeen(qs, dtype);
  const sk = asSeen(ks, dtype);
  const sv = asSeen(vs, dtype);
  const score = (i: number, j: number): number => sq[i]!.reduce((s, a, c) => s + a * sk[j]![c]!, 0);
  return { q, k, v, pi, pj, sv, score };
}

const cases: { engine: Engine; dtype: Dtype }[] = [
  { engine: 'wasm', dtype: 'float32' },
  { engine: 'wasm', dtype: 'float64' },
  ...(hasGpu ? [{ engine: 'webgpu' as Engine, dtype: 'float32' as Dtype }] : []),
];

describe.each(cases)('infinite constants ($engine, $dtype)', ({ engine, dtype }) => {
  const rtol = dtype === 'float64' ? 1e-12 : 2e-5;
  const check = (got: { engine: string; data: ArrayLike<number> }, want: number[], label: string): void => {
    if (engine === 'webgpu') expectGpu(got, label);
    else expect(got.engine, label).toBe('wasm');
    expectClose(got.data, want, rtol, 1e-30, undefined, label);
  };

  it('a causal mask c.ifElse(F, -Infinity) in logSumExp and sumSoftMaxWeight', async () => {
    const { q, k, v, pi, pj, sv, score } = setup(dtype);
    // keep the keys j <= i: i - j >= 0
    const masked: LazyTensor = pi.sub(pj).ifElse(q.dot(k), -Infinity);
    const f = (i: number, j: number): number[] => [j <= i ? score(i, j) : -Infinity];
    check(await masked.logSumExp(1, { engine }), refLogSumExp(f, { N, M }, 1).flat(), 'logSumExp axis 1');
    // over i: query i sees key j when i >= j; column j = 36 is seen by row 36 only
    check(await masked.logSumExp(0, { engine }), refLogSumExp(f, { N, M }, 0).flat(), 'logSumExp axis 0');
    const attention = await masked.sumSoftMaxWeight(1, v, { engine });
    check(attention, refSoftMax(f, (_i, j) => sv[j]!, { N, M }, 1).flat(), 'causal attention');
    // the same mask through exp: exp(-inf) = 0 in a plain sum
    const sum = await masked.exp().sum(1, { engine });
    check(sum, refSum((i, j) => [Math.exp(f(i, j)[0]!)], { N, M }, 1).value.flat(), 'sum of exp');
  });

  it('F.add(-Infinity): every log-sum-exp is -Infinity and every sum of exp is 0', async () => {
    const { q, k } = setup(dtype);
    const F = q.dot(k).add(-Infinity);
    const lse = await F.logSumExp(1, { engine });
    check(lse, new Array<number>(N).fill(-Infinity), 'logSumExp');
    const s = await F.exp().sum(1, { engine });
    check(s, new Array<number>(N).fill(0), 'sum of exp');
  });

  it('infinite bounds and comparisons', async () => {
    const { q, k, score } = setup(dtype);
    const F = q.dot(k);
    const ref = (fn: (s: number) => number) => refSum((i, j) => [fn(score(i, j))], { N, M }, 1).value.flat();
    check(
      await F.clamp(-Infinity, 0.1).sum(1, { engine }),
      ref((s) => Math.min(s, 0.1)),
      'clamp(-inf, 0.1)',
    );
    check(
      await F.maximum(-Infinity).sum(1, { engine }),
      ref((s) => s),
      'maximum(-inf)',
    );
    check(
      await F.minimum(Infinity).sum(1, { engine }),
      ref((s) => s),
      'minimum(inf)',
    );
    check(
      await F.lt(Infinity).sum(1, { engine }),
      ref(() => 1),
      'lt(inf)',
    );
    check(
      await F.sub(Infinity).exp().sum(1, { engine }),
      ref(() => 0),
      'exp(F - inf)',
    );
  });
});

describe('infinite constants: where they are refused', () => {
  const x = Vi([
    [0, 1],
    [2, 3],
  ]);
  it('products, quotients and powers refuse them, naming the operation and where they are accepted', () => {
    expect(() => x.mul(Infinity)).toThrow(InputError);
    expect(() => x.mul(-Infinity)).toThrow(
      /mul: the constant -Infinity is not a finite number \(infinite constants are accepted by add/,
    );
    expect(() => x.div(Infinity)).toThrow(InputError);
    expect(() => x.powf(Infinity)).toThrow(InputError);
    expect(() => x.atan2(Infinity)).toThrow(InputError);
  });
  it('NaN is refused everywhere, and parameters stay finite', () => {
    expect(() => x.add(NaN)).toThrow(/add: the constant NaN is not a finite number/);
    expect(() => x.ifElse(1, NaN)).toThrow(InputError);
    expect(() => Pm(-Infinity)).toThrow(InputError);
  });
  it('toString prints them', () => {
    expect(x.add(-Infinity).toString()).toContain('-Infinity');
  });
});
