// Every reduction record, on every available engine (WebAssembly always; WebGPU on the Dawn /
// SwiftShader adapter when there is one), both axes and the engine's precisions, sizes around the
// SIMD width, the block, the workgroup and the tile, against independent float64 references
// (tests/helpers/dense-reference.ts). One row per record in REDUCTION_ROWS: a record without a row
// does not type-check, and the coverage test below fails at run time too.
import { describe, expect, it } from 'vitest';
import { fromMatrix, Pm, Vi, Vj, type LazyTensor } from '../src/index.js';
import { REDUCTIONS, REDUCTION_NAMES, type AnyReductionKind } from '../src/core/reduction-defs.js';
import { gradientRuleNames, reduction, vjp } from '../src/core/reduction-grad.js';
import {
  refKSelect,
  refLogSumExp,
  refLogSumExpWeighted,
  refProd,
  refSoftMax,
  refSum,
  type PairFn,
  type Sizes,
} from './helpers/dense-reference.js';
import { expectClose } from './helpers/expect.js';
import { rng, typed, uniformRows } from './helpers/random.js';
import { REDUCTION_SIZES, reductionSetup } from './helpers/reduction-setup.js';
import { hasGpu } from './gpu/setup.js';

type DType = 'float32' | 'float64';
type EngineName = 'wasm' | 'webgpu';

interface EngineCase {
  readonly engine: EngineName;
  readonly available: boolean;
  readonly dtypes: readonly DType[];
  readonly sizes: readonly [number, number][];
  /** The largest K the engine runs itself (larger ones fall back to WebAssembly). */
  readonly maxK: number;
  readonly rtol: Readonly<Record<DType, number>>;
}

const ENGINES: readonly EngineCase[] = [
  {
    engine: 'wasm',
    available: true,
    dtypes: ['float32', 'float64'],
    sizes: REDUCTION_SIZES,
    maxK: Infinity,
    rtol: { float32: 1e-5, float64: 1e-12 },
  },
  {
    engine: 'webgpu',
    available: hasGpu,
    dtypes: ['float32'], // WGSL has no f64
    sizes: [...REDUCTION_SIZES, [65, 64], [257, 300]],
    maxK: 64,
    rtol: { float32: 1e-5, float64: 1e-12 },
  },
];

const sq = (a: number[], b: number[]): number => a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0);
const flat = (rows: number[][] | number[][][]): number[] => (rows as number[][]).flat(2 as 1) as number[];

type Setup = ReturnType<typeof reductionSetup>;

/** What a row computes for one (setup, axis, K): the formula (and weight) with their float64 pair
 *  functions. */
interface RowInput {
  F: LazyTensor;
  f: PairFn;
  G?: LazyTensor;
  g?: PairFn;
}

interface Expected {
  values?: number[];
  indices?: number[];
  /** Scale of the value tolerance (sums of terms of both signs), default |value|. */
  scale?: number[];
  shape: number[];
}

interface Got {
  values?: ArrayLike<number>;
  indices?: ArrayLike<number>;
  shape: readonly number[];
  engines: string[];
}

/** One reduction record's test row: its inputs, its run through the LazyTensor method and its
 *  float64 dense reference. */
interface ReductionRow {
  /** 'scalar' formulas reduce -4|x - y|^2 (dimension 1), 'vector' ones |x - y| (dimension 3). */
  input(s: Setup, axis: 0 | 1): RowInput;
  run(input: RowInput, axis: 0 | 1, K: number, engine: EngineName): Promise<Got>;
  reference(input: RowInput, sizes: Sizes, axis: 0 | 1, K: number): Expected;
}

const opts = (engine: EngineName) => ({ engine });
const one = (t: { data: ArrayLike<number>; shape: readonly number[]; engine: string }, key: 'values' | 'indices') => ({
  [key]: t.data,
  shape: t.shape,
  engines: [t.engine],
});
const both = (r: {
  values: { data: ArrayLike<number>; shape: readonly number[]; engine: string };
  indices: { data: ArrayLike<number>; shape: readonly number[]; engine: string };
}): Got => {
  expect(r.indices.shape).toEqual(r.values.shape);
  return { values: r.values.data, indices: r.indices.data, shape: r.values.shape, engines: [r.values.engine] };
};

const scalarInput = (s: Setup): RowInput => ({
  F: s.x.sqDist(s.y).mul(-4),
  f: (i, j) => [-4 * sq(s.xs[i]!, s.ys[j]!)],
});
const vectorInput = (s: Setup): RowInput => ({
  F: s.x.sub(s.y).abs(),
  f: (i, j) => s.xs[i]!.map((v, k) => Math.abs(v - s.ys[j]![k]!)),
});
const distInput = (s: Setup): RowInput => ({ F: s.x.sqDist(s.y), f: (i, j) => [sq(s.xs[i]!, s.ys[j]!)] });
/** A weight indexed by the reduced index: b over j, |x| over i. */
const weightedInput = (s: Setup, axis: 0 | 1): RowInput => ({
  ...scalarInput(s),
  G: axis === 1 ? s.b : s.x.abs(),
  g: (i, j) => (axis === 1 ? s.bs[j]! : s.xs[i]!.map(Math.abs)),
});
const rowsOut = (sizes: Sizes, axis: 0 | 1): number => (axis === 1 ? sizes.N : sizes.M);
const ranked = (n: number, K: number, d: number): number[] => (d === 1 ? [n, K] : [n, K, d]);

function selectRow(
  kind: 'min' | 'max' | 'argMin' | 'argMax' | 'minArgMin' | 'maxArgMax',
  largest: boolean,
): ReductionRow {
  return {
    input: vectorInput,
    run: async ({ F }, axis, _K, engine) => {
      if (kind === 'min' || kind === 'max') return one(await F[kind](axis, opts(engine)), 'values');
      if (kind === 'argMin' || kind === 'argMax') return one(await F[kind](axis, opts(engine)), 'indices');
      return both(await F[kind](axis, opts(engine)));
    },
    reference: ({ f }, sizes, axis) => {
      const r = refKSelect(f, sizes, axis, 1, largest);
      return {
        ...(REDUCTIONS[kind].values ? { values: flat(r.values) } : {}),
        ...(REDUCTIONS[kind].indices ? { indices: flat(r.indices) } : {}),
        shape: [rowsOut(sizes, axis), 3],
      };
    },
  };
}

function kRow(
  kind: 'kMin' | 'argKMin' | 'kMinArgKMin' | 'kMax' | 'argKMax' | 'kMaxArgKMax',
  largest: boolean,
): ReductionRow {
  return {
    input: distInput,
    run: async ({ F }, axis, K, engine) => {
      if (kind === 'kMin' || kind === 'kMax') return one(await F[kind](K, axis, opts(engine)), 'values');
      if (kind === 'argKMin' || kind === 'argKMax') return one(await F[kind](K, axis, opts(engine)), 'indices');
      return both(await F[kind](K, axis, opts(engine)));
    },
    reference: ({ f }, sizes, axis, K) => {
      const r = refKSelect(f, sizes, axis, K, largest);
      return {
        ...(REDUCTIONS[kind].values ? { values: flat(r.values) } : {}),
        ...(REDUCTIONS[kind].indices ? { indices: flat(r.indices) } : {}),
        shape: ranked(rowsOut(sizes, axis), K, 1),
      };
    },
  };
}

/** One row per reduction record (a Record: a record without a row is a type error). */
const REDUCTION_ROWS: Readonly<Record<AnyReductionKind, ReductionRow>> = {
  sum: {
    // A vector formula of both signs: exp(-4|x - y|^2) (x - y).
    input: (s) => ({
      F: s.x.sqDist(s.y).mul(-4).exp().mul(s.x.sub(s.y)),
      f: (i, j) => s.xs[i]!.map((v, k) => Math.exp(-4 * sq(s.xs[i]!, s.ys[j]!)) * (v - s.ys[j]![k]!)),
    }),
    run: async ({ F }, axis, _K, engine) => one(await F.sum(axis, opts(engine)), 'values'),
    reference: ({ f }, sizes, axis) => {
      const r = refSum(f, sizes, axis);
      return { values: r.value.flat(), scale: r.scale.flat(), shape: [rowsOut(sizes, axis), 3] };
    },
  },
  logSumExp: {
    input: scalarInput,
    run: async ({ F }, axis, _K, engine) => one(await F.logSumExp(axis, opts(engine)), 'values'),
    reference: ({ f }, sizes, axis) => ({
      values: refLogSumExp(f, sizes, axis).flat(),
      shape: [rowsOut(sizes, axis), 1],
    }),
  },
  logSumExpWeighted: {
    input: weightedInput,
    run: async ({ F, G }, axis, _K, engine) => one(await F.logSumExp(axis, { ...opts(engine), weight: G! }), 'values'),
    reference: ({ f, g, G }, sizes, axis) => ({
      values: refLogSumExpWeighted(f, g!, sizes, axis).flat(),
      shape: [rowsOut(sizes, axis), G!.dim],
    }),
  },
  sumSoftMaxWeight: {
    input: weightedInput,
    run: async ({ F, G }, axis, _K, engine) => one(await F.sumSoftMaxWeight(axis, G!, opts(engine)), 'values'),
    reference: ({ f, g, G }, sizes, axis) => ({
      values: refSoftMax(f, g!, sizes, axis).flat(),
      shape: [rowsOut(sizes, axis), G!.dim],
    }),
  },
  min: selectRow('min', false),
  max: selectRow('max', true),
  argMin: selectRow('argMin', false),
  argMax: selectRow('argMax', true),
  minArgMin: selectRow('minArgMin', false),
  maxArgMax: selectRow('maxArgMax', true),
  kMin: kRow('kMin', false),
  argKMin: kRow('argKMin', false),
  kMinArgKMin: kRow('kMinArgKMin', false),
  kMax: kRow('kMax', true),
  argKMax: kRow('argKMax', true),
  kMaxArgKMax: kRow('kMaxArgKMax', true),
  prod: {
    // Factors in [0.9, 1.1] times the sign of y_j: negative factors, and products of a thousand
    // factors that stay within float32's range.
    input: (s) => ({
      F: s.x.sub(s.y).mul(0.05).add(1).mul(s.y.sign()),
      f: (i, j) => s.xs[i]!.map((v, k) => (1 + 0.05 * (v - s.ys[j]![k]!)) * Math.sign(s.ys[j]![k]!)),
    }),
    run: async ({ F }, axis, _K, engine) => one(await F.prod(axis, opts(engine)), 'values'),
    reference: ({ f }, sizes, axis) => ({ values: refProd(f, sizes, axis).flat(), shape: [rowsOut(sizes, axis), 3] }),
  },
};

describe('reduction records', () => {
  it('every record has a test row with a dense float64 reference, and every gradient rule a record', () => {
    for (const name of REDUCTION_NAMES) {
      const row = (REDUCTION_ROWS as Partial<Record<string, ReductionRow>>)[name];
      expect(row, `test row of ${name}`).toBeDefined();
      expect(typeof row!.reference, `dense reference of ${name}`).toBe('function');
    }
    expect(Object.keys(REDUCTION_ROWS).sort()).toEqual([...REDUCTION_NAMES].sort());
    const differentiable = REDUCTION_NAMES.filter((n) => REDUCTIONS[n].differentiable).sort();
    expect(gradientRuleNames().sort()).toEqual(differentiable);
  });

  it('bad K, axis, options and cotangents of the new reductions are named errors', async () => {
    const x = Vi([[0], [1]]);
    const D = x.sqDist(Vj([[0], [1], [2]]));
    await expect(D.kMax(4, 1)).rejects.toThrow(/kMax: K = 4 is larger than the 3 values reduced over axis 1/);
    await expect(D.argKMax(0, 1)).rejects.toThrow(/argKMax: K must be a positive integer/);
    await expect(D.kMaxArgKMax(1.5, 0)).rejects.toThrow(/kMaxArgKMax: K must be a positive integer/);
    // @ts-expect-error: a bad axis
    await expect(D.prod(2)).rejects.toThrow(/prod: axis must be 0 or 1/);
    // @ts-expect-error: prod takes no weight
    await expect(D.prod(1, { weight: D })).rejects.toThrow(/prod.*weight/);
    await expect(vjp(reduction(D, 'kMax', 1, { k: 2 }), { wrt: [x], cotangent: [1, 2, 3] })).rejects.toThrow(
      /vjp: the cotangent has 3 values; the kMax result has 2 x 2 = 4/,
    );
    await expect(vjp(reduction(D, 'prod', 1), { wrt: [x], cotangent: [1] })).rejects.toThrow(/prod result has 2 x 1/);
    // vjp of a K-max index reduction: no gradient, a named error.
    await expect(
      // @ts-expect-error: argKMax is not differentiable
      vjp(reduction(D, 'argKMax', 1, { k: 1 }), { wrt: [x], cotangent: [1, 1] }),
    ).rejects.toThrow(/argKMax has no gradient/);
  });

  it('lowered records run as an engine reduction, others as themselves', () => {
    for (const name of REDUCTION_NAMES) {
      const lowered = REDUCTIONS[name].lowering;
      if (lowered !== null) expect(REDUCTIONS[lowered.kind].lowering, name).toBeNull();
    }
  });
});

/** The K values a K-family row is tried with. */
const kValues = (nInner: number, maxK: number): number[] => [
  ...new Set([1, 2, 5, 10].filter((k) => k <= nInner).concat([Math.min(nInner, maxK)])),
];

describe.each(ENGINES.filter((e) => e.available))('reductions on $engine', (ec) => {
  describe.each(ec.dtypes)('%s', (dtype) => {
    const rtol = ec.rtol[dtype];
    it.each(ec.sizes)('every record, N = %i, M = %i', async (N, M) => {
      const s = reductionSetup(dtype, N, M);
      for (const name of REDUCTION_NAMES) {
        const row = REDUCTION_ROWS[name];
        for (const axis of [1, 0] as const) {
          const input = row.input(s, axis);
          const nInner = axis === 1 ? M : N;
          for (const K of REDUCTIONS[name].takesK ? kValues(nInner, ec.maxK) : [0]) {
            const label = `${name} axis ${axis}${K > 0 ? ` K=${K}` : ''}`;
            const got = await row.run(input, axis, K, ec.engine);
            const want = row.reference(input, { N, M }, axis, K);
            expect(got.engines, `${label}: engine`).toEqual([ec.engine]);
            expect(got.shape, `${label}: shape`).toEqual(want.shape);
            if (want.values !== undefined) {
              expect(got.values, `${label}: values`).toBeDefined();
              expectClose(got.values!, want.values, rtol, name.includes('ogSumExp') ? rtol : 0, want.scale, label);
            } else expect(got.values, `${label}: no values`).toBeUndefined();
            if (want.indices !== undefined) {
              expect(Array.from(got.indices!), `${label}: indices`).toEqual(want.indices);
            } else expect(got.indices, `${label}: no indices`).toBeUndefined();
          }
        }
      }
    });
  });

  const GPU = opts(ec.engine);
  const expectEngine = (t: { engine: string }, label = ''): void =>
    expect(t.engine, `${label}: engine`).toBe(ec.engine);

  describe.each(ec.dtypes)('ties, vectors and special values (%s)', (dtype) => {
    it('ties in argMin, argKMin and argKMax go to the lowest index', async () => {
      // Values repeat with period 4 over j, so every minimum is tied many times.
      const ys = Array.from({ length: 1030 }, (_, j) => [(j % 4) * 0.5]);
      const x = Vi(typed([[0], [1], [0.5]], dtype), 1);
      const y = Vj(typed(ys, dtype), 1);
      const D = x.sqDist(y);
      expect(Array.from((await D.argMin(1, GPU)).data)).toEqual([0, 2, 1]);
      expect(Array.from((await D.argMax(1, GPU)).data)).toEqual([3, 0, 3]);
      const k5 = await D.argKMin(5, 1, GPU);
      expectEngine(k5);
      expect(Array.from(k5.data)).toEqual([0, 4, 8, 12, 16, 2, 6, 10, 14, 18, 1, 5, 9, 13, 17]);
      // The largest: row 0 (x = 0) is largest at y = 1.5 (j = 3, 7, ...), row 1 at y = 0 (j = 0, 4, ...).
      const top = await D.kMaxArgKMax(5, 1, GPU);
      expectEngine(top.indices);
      expect(Array.from(top.indices.data)).toEqual([3, 7, 11, 15, 19, 0, 4, 8, 12, 16, 3, 7, 11, 15, 19]);
      expect(Array.from(top.values.data).slice(0, 5)).toEqual([2.25, 2.25, 2.25, 2.25, 2.25]);
      expect(Array.from((await D.argKMax(5, 1, GPU)).data)).toEqual(Array.from(top.indices.data));
      const zeros = Vi(typed([[0], [0], [0]], dtype), 1);
      expect(Array.from((await zeros.sqDist(y).argMin(0, GPU)).data).every((v) => v === 0)).toBe(true);
      expect(Array.from((await zeros.sqDist(y).argKMax(2, 0, GPU)).data).slice(0, 2)).toEqual([0, 1]);
    });

    it('kMin and kMax over a vector formula give shape [N, K, d] with q = t*d + k', async () => {
      const { x, y, xs, ys } = reductionSetup(dtype, 4, 37);
      const F = x.sub(y).abs();
      const f: PairFn = (i, j) => xs[i]!.map((v, k) => Math.abs(v - ys[j]![k]!));
      for (const largest of [false, true]) {
        const got = largest ? await F.kMaxArgKMax(3, 1, GPU) : await F.kMinArgKMin(3, 1, GPU);
        expectEngine(got.values);
        expect(got.values.shape).toEqual([4, 3, 3]);
        const want = refKSelect(f, { N: 4, M: 37 }, 1, 3, largest);
        expectClose(got.values.data, flat(want.values), ec.rtol[dtype], 0, undefined, 'values');
        expect(Array.from(got.indices.data)).toEqual(flat(want.indices));
      }
    });

    it('NaN is never selected; unfilled slots get index -1 and value NaN (K-min and K-max alike)', async () => {
      // log of a negative number is NaN: rows of x where every value is NaN, or only some.
      const x = Vi(typed([[-1], [1], [3]], dtype), 1);
      const y = Vj(typed([[0], [2], [-5], [4]], dtype), 1);
      const F = x.sub(y).log(); // x - y: row 0: -1, -3, 4, -5 -> one value; row 1: 1, -1, 6, -3; row 2: 3, 1, 8, -1
      const mn = await F.minArgMin(1, GPU);
      expectEngine(mn.values);
      expect(Array.from(mn.indices.data)).toEqual([2, 0, 1]);
      const k3 = await F.kMinArgKMin(3, 1, GPU);
      expect(Array.from(k3.indices.data)).toEqual([2, -1, -1, 0, 2, -1, 1, 0, 2]);
      const v = Array.from(k3.values.data);
      expect(v[0]).toBeCloseTo(Math.log(4), 5);
      expect(Number.isNaN(v[1]!) && Number.isNaN(v[2]!) && Number.isNaN(v[5]!)).toBe(true);
      const top3 = await F.kMaxArgKMax(3, 1, GPU);
      expectEngine(top3.values);
      expect(Array.from(top3.indices.data)).toEqual([2, -1, -1, 2, 0, -1, 2, 0, 1]);
      const tv = Array.from(top3.values.data);
      expect(tv[0]).toBeCloseTo(Math.log(4), 5);
      expect(tv[3]).toBeCloseTo(Math.log(6), 5);
      expect(Number.isNaN(tv[1]!) && Number.isNaN(tv[2]!) && Number.isNaN(tv[5]!)).toBe(true);
      expect(Array.from((await F.argKMax(3, 1, GPU)).data)).toEqual(Array.from(top3.indices.data));
      const nan = Vi(typed([[-1]], dtype), 1)
        .add(y.mul(0))
        .log();
      expect(Array.from((await nan.argMin(1, GPU)).data)).toEqual([-1]);
      expect(Number.isNaN((await nan.max(1, GPU)).data[0]!)).toBe(true);
      expect(Array.from((await nan.argKMax(2, 1, GPU)).data)).toEqual([-1, -1]);
      // A NaN makes sums, products and log-sum-exps NaN.
      expect(Array.from((await F.logSumExp(1, GPU)).data).every(Number.isNaN)).toBe(true);
      expect(Number.isNaN((await F.prod(1, GPU)).data[0]!)).toBe(true);
    });

    it('logSumExp is stable for huge and tiny exponents and gives -inf for an all -inf row', async () => {
      const x = Vi(typed([[0], [1]], dtype), 1);
      const y = Vj(typed([[0], [0.5], [2]], dtype), 1);
      const big = await x.sqDist(y).mul(1e4).logSumExp(1, GPU);
      expectEngine(big);
      expectClose(big.data, [4e4, 1e4 + Math.LN2], 1e-6);
      const small = await x.sqDist(y).mul(-1e4).logSumExp(1, GPU);
      expectClose(small.data, [0, -2500], 1e-6, 1e-3);
      const allInf = await y.mul(0).log().add(x.mul(0)).logSumExp(1, GPU); // log(0) = -inf everywhere
      expect(Array.from(allInf.data)).toEqual([-Infinity, -Infinity]);
      // +inf wins: log(sum) = +inf.
      const inf = await x.sub(y).pow(-1).logSumExp(1, GPU); // 1/0 = +inf at (0, 0)
      expect(inf.data[0]).toBe(Infinity);
      // Weighted: all -inf gives -inf (LSE) and NaN (softmax: 0/0).
      const w = Vj(typed([[1], [2], [3]], dtype), 1);
      const lw = await y
        .mul(0)
        .log()
        .add(x.mul(0))
        .logSumExp(1, { ...GPU, weight: w });
      expect(Array.from(lw.data)).toEqual([-Infinity, -Infinity]);
      const sm = await y.mul(0).log().add(x.mul(0)).sumSoftMaxWeight(1, w, GPU);
      expect(Array.from(sm.data).every(Number.isNaN)).toBe(true);
    });

    it('logSumExp over a vector-valued formula reduces each component (KeOps #125)', async () => {
      const { x, y, xs, ys } = reductionSetup(dtype, 5, 40);
      const F = x.sub(y).mul(3); // dimension 3
      const got = await F.logSumExp(1, GPU);
      expectEngine(got);
      expect(got.shape).toEqual([5, 3]);
      const want = refLogSumExp((i, j) => xs[i]!.map((v, k) => 3 * (v - ys[j]![k]!)), { N: 5, M: 40 }, 1);
      expectClose(got.data, want.flat(), ec.rtol[dtype], ec.rtol[dtype]);
    });

    it('sums of infinities stay infinite (the compensation is dropped, not NaN)', async () => {
      const x = Vi(typed([[0], [1]], dtype), 1);
      const y = Vj(typed([[0], [0.5], [2]], dtype), 1);
      const s = await x.sub(y).pow(-2).sum(1, GPU);
      expect(s.data[0]).toBe(Infinity);
      expect(Number.isFinite(s.data[1]!)).toBe(true);
    });

    it('prod: zeros, signs, NaN, zero times infinity, and the empty product', async () => {
      const x = Vi(typed([[0], [1], [2]], dtype), 1);
      const y = Vj(typed([[2], [3], [-1]], dtype), 1);
      // (x - y): row 0: -2, -3, 1 -> 6; row 1: -1, -2, 2 -> 4; row 2: 0, -1, 3 -> 0 (a zero factor)
      const p = await x.sub(y).prod(1, GPU);
      expectEngine(p);
      expect(p.shape).toEqual([3, 1]);
      expectClose(p.data, [6, 4, 0], ec.rtol[dtype]);
      // One negative factor more: the signs.
      expectClose((await x.sub(y).mul(y).prod(1, GPU)).data, [-36, -24, 0], ec.rtol[dtype]);
      // 1 / (a - b) is +inf where a = b: zero times infinity is NaN, infinity alone infinite.
      const a = Vi(typed([[0], [1]], dtype), 1);
      const b = Vj(typed([[0], [5]], dtype), 1);
      const q = await a.sub(b).pow(-1).mul(a.mul(b)).prod(1, GPU); // row 0: inf * 0 and -0.2 * 0; row 1: 0 and -1.25
      expect(Math.abs(q.data[1]!)).toBe(0); // -0: the sign of one negative factor
      expect(Number.isNaN(q.data[0]!)).toBe(true);
      const infOnly = await a.sub(b).pow(-1).abs().add(1).prod(0, GPU); // column 0: (inf + 1) * 2 = inf
      expect(infOnly.data[0]).toBe(Infinity);
      // A row in no cluster of a block-sparse pattern: the empty product, 1 (min over an empty set: NaN).
      // Clusters: rows {0}, {1}; columns {0, 1}; only (row cluster 0, column cluster 0) kept.
      const ranges = fromMatrix(new Int32Array([0, 1, 1, 2]), new Int32Array([0, 2]), [true, false]);
      const sparse = await a
        .sub(b)
        .add(3)
        .prod(1, { ...GPU, ranges });
      expectClose(sparse.data, [3 * -2, 1], ec.rtol[dtype]);
    });

    it('prod of 10^5 factors neither overflows nor underflows on the way', async () => {
      const M = 100_000;
      // 10^10 for j < M/2, 10^-10 after: a running product overflows (float32 already at the 4th
      // factor, float64 at the 31st) while the true product is about 1.
      const ys = new Array<number[]>(M);
      for (let j = 0; j < M; j++) ys[j] = [j < M / 2 ? 1e10 : 1e-10];
      const seen = ys.map(([v]) => (dtype === 'float32' ? Math.fround(v!) : v!));
      let logSum = 0;
      for (const v of seen) logSum += Math.log(v);
      const x = Vi(typed([[1], [2]], dtype), 1);
      const F = Vj(typed(ys, dtype), 1).mul(x.mul(0).add(1));
      const p = await F.prod(1, GPU);
      expectEngine(p);
      // float32: log(10^10) is off by up to an ulp of 23, times 5e4 factors; float64 near exact.
      const tol = dtype === 'float64' ? 1e-9 : 0.1;
      expectClose(p.data, [Math.exp(logSum), Math.exp(logSum)], tol);
      // A product that truly exceeds the dtype's range is Infinity; one below it is 0.
      const big = Vj(
        typed(
          ys.map(() => [dtype === 'float64' ? 1.01 : 1.002]),
          dtype,
        ),
        1,
      ).mul(x.mul(0).add(1));
      const bp = await big.prod(1, GPU); // 1.01^1e5 = e^995 (float64 max e^709); 1.002^1e5 = e^200 (float32 max e^88)
      expect(Array.from(bp.data)).toEqual([Infinity, Infinity]);
      const tiny = await big.pow(-1).prod(1, GPU);
      expect(Array.from(tiny.data)).toEqual([0, 0]);
    });

    it('accumulate float64: a float32 sum of a million terms to ~1e-7, a no-op on float64', async () => {
      if (dtype === 'float64') {
        // accumulate: 'float64' is a no-op on float64 reductions, and other values are named errors.
        const x = Vi(new Float64Array([1, 2]), 1);
        const y = Vj(new Float64Array([3, 4, 5]), 1);
        const plain = await x.mul(y).sum(1, GPU);
        expect(Array.from((await x.mul(y).sum(1, { ...GPU, accumulate: 'float64' })).data)).toEqual(
          Array.from(plain.data),
        );
        // @ts-expect-error: a bad value
        await expect(x.mul(y).sum(1, { accumulate: 'float128' })).rejects.toThrow(/accumulate must be 'float64'/);
        // @ts-expect-error: not an option of min
        await expect(x.mul(y).min(1, { accumulate: 'float64' })).rejects.toThrow(/accumulate/);
        return;
      }
      const M = 1_000_000;
      const random = rng(99);
      const ys = new Float32Array(M);
      for (let j = 0; j < M; j++) ys[j] = random();
      const x = Vi(new Float32Array([0.25, 0.5, 0.75]), 1);
      // The summation error alone: terms that are exact in float32 (y_j itself, times x_i^0 = 1),
      // so the float64 reference is the exact sum of the same float32 numbers.
      const terms = Vj(ys, 1).mul(x.mul(0).add(1));
      let exact = 0;
      for (let j = 0; j < M; j++) exact += ys[j]!;
      const plain = await terms.sum(1, GPU);
      const acc = await terms.sum(1, { ...GPU, accumulate: 'float64' });
      expectEngine(acc);
      const errPlain = Math.max(...Array.from(plain.data, (v) => Math.abs(v - exact) / exact));
      const errAcc = Math.max(...Array.from(acc.data, (v) => Math.abs(v - exact) / exact));
      // The result is float32: rounding it alone costs up to 6e-8.
      expect(errAcc).toBeLessThan(1e-7);
      expect(errAcc).toBeLessThanOrEqual(errPlain);
      // Cancellation inside a block of the default accumulation (512 terms on WebAssembly, a tile
      // on WebGPU): +1e8, then ones (lost in float32: ulp(1e8) = 8), then -1e8. Float64 (or
      // two-float) accumulation keeps every one.
      const hard = new Float32Array(M);
      for (let j = 0; j < M; j++) hard[j] = j % 512 < 8 ? 1e8 : j % 512 >= 504 ? -1e8 : 1;
      let hardExact = 0;
      for (let j = 0; j < M; j++) hardExact += hard[j]!;
      const H = Vj(hard, 1).mul(x.mul(0).add(1));
      const hardPlain = await H.sum(1, GPU);
      const hardAcc = await H.sum(1, { ...GPU, accumulate: 'float64' });
      const errHardPlain = Math.max(...Array.from(hardPlain.data, (v) => Math.abs(v - hardExact) / hardExact));
      const errHardAcc = Math.max(...Array.from(hardAcc.data, (v) => Math.abs(v - hardExact) / hardExact));
      expect(errHardAcc).toBeLessThan(1e-7);
      expect(errHardAcc).toBeLessThanOrEqual(errHardPlain);
      // Also through prod (a sum of logarithms): prod of exp(y_j / 10^5) = exp(sum y_j / 10^5).
      const p = await Vj(ys, 1)
        .mul(1e-5)
        .exp()
        .mul(x.mul(0).add(1))
        .prod(1, { ...GPU, accumulate: 'float64' });
      expectClose(
        p.data,
        [1, 2, 3].map(() => Math.exp(exact / 1e5)),
        2e-4,
      );
    }, 300_000);

    it('float32 sums of a million terms agree with float64 to 1e-5', async () => {
      const M = 1_000_000;
      const random = rng(99);
      const ys = typed(
        Array.from({ length: M }, () => [random()]),
        dtype,
      );
      const xv = [0.25, 0.5, 0.75];
      const x = Vi(
        typed(
          xv.map((v) => [v]),
          dtype,
        ),
        1,
      );
      const F = x.sub(Vj(ys, 1)).square().mul(-3).exp();
      const got = await F.sum(1, GPU);
      expectEngine(got);
      for (let i = 0; i < 3; i++) {
        let want = 0;
        for (let j = 0; j < M; j++) want += Math.exp(-3 * (xv[i]! - ys[j]!) ** 2);
        expect(Math.abs(got.data[i]! - want) / want).toBeLessThan(1e-5);
      }
      // A sum of a constant: no compensation error may build up.
      const ones = await Vj(ys, 1).mul(0).add(1).add(x.mul(0)).sum(1, GPU);
      expect(Array.from(ones.data)).toEqual([M, M, M]);
      // And a log-sum-exp of a million terms.
      const lse = await F.log().logSumExp(1, GPU);
      for (let i = 0; i < 3; i++)
        expect(Math.abs(Math.exp(lse.data[i]!) - got.data[i]!) / got.data[i]!).toBeLessThan(2e-5);
    }, 300_000);

    it('the README example computes a Gaussian kernel sum and nearest neighbours', async () => {
      const random = rng(5);
      const p1 = typed(uniformRows(random, 200, 3), dtype);
      const p2 = typed(uniformRows(random, 300, 3), dtype);
      const w = typed(uniformRows(random, 300, 1), dtype);
      const x = Vi(p1, 3);
      const y = Vj(p2, 3);
      const b = Vj(w, 1);
      const out = await x.sqDist(y).mul(-50).exp().mul(b).sum(1, GPU);
      expectEngine(out);
      expect(out.shape).toEqual([200, 1]);
      const sx = Array.from({ length: 200 }, (_, i) => Array.from(p1.subarray(3 * i, 3 * i + 3)));
      const sy = Array.from({ length: 300 }, (_, j) => Array.from(p2.subarray(3 * j, 3 * j + 3)));
      const want = refSum((i, j) => [Math.exp(-50 * sq(sx[i]!, sy[j]!)) * w[j]!], { N: 200, M: 300 }, 1);
      expectClose(out.data, want.value.flat(), 1e-5, 0, want.scale.flat());
      const nn = await x.sqDist(y).argKMin(10, 1, GPU);
      expect(nn.dtype).toBe('int32');
      const wantNN = refKSelect((i, j) => [sq(sx[i]!, sy[j]!)], { N: 200, M: 300 }, 1, 10);
      // float32 distances may reorder near-ties; compare the distances of the chosen neighbours.
      for (let i = 0; i < 200; i++) {
        for (let t = 0; t < 10; t++) {
          expect(sq(sx[i]!, sy[nn.data[i * 10 + t]!]!)).toBeCloseTo(sq(sx[i]!, sy[wantNN.indices[i]![t]![0]!]!), 5);
        }
      }
      expect(Pm(2).dim).toBe(1);
    });
  });

  describe('gradients of the new reductions (float64 finite differences)', () => {
    // Gradients run their reductions on the engine of the options; float64 needs WebAssembly.
    const dtype: DType = ec.dtypes.includes('float64') ? 'float64' : 'float32';
    const tol = dtype === 'float64' ? 1e-6 : 2e-2;
    const h = dtype === 'float64' ? 1e-6 : 1e-2;

    /** d/dx of sum_i c_i * red_j F(x_i, y_j) by central differences on each entry of x. */
    async function numeric(
      run: (x: LazyTensor) => Promise<{ data: ArrayLike<number> }>,
      xs: number[],
      c: number[],
    ): Promise<number[]> {
      const out: number[] = [];
      for (let q = 0; q < xs.length; q++) {
        const at = async (delta: number) => {
          const moved = xs.slice();
          moved[q] = moved[q]! + delta;
          const r = await run(
            Vi(
              typed(
                moved.map((v) => [v]),
                dtype,
              ),
              1,
            ),
          );
          return Array.from(r.data).reduce((acc, v, k) => acc + v * c[k]!, 0);
        };
        out.push(((await at(h)) - (await at(-h))) / (2 * h));
      }
      return out;
    }

    it('prod: vjp with respect to x and y, with and without a zero factor', async () => {
      const xs = [0.3, -0.7, 1.1];
      const ysv = [0.5, -1.2, 0.9, 1.6];
      const c = [0.7, -1.3, 0.4];
      for (const withZero of [false, true]) {
        const yv = withZero ? [0.5, -1.2, 0.3, 1.6] : ysv; // x_0 - y_2 = 0: one zero factor in row 0
        const y = Vj(
          typed(
            yv.map((v) => [v]),
            dtype,
          ),
          1,
        );
        const x = Vi(
          typed(
            xs.map((v) => [v]),
            dtype,
          ),
          1,
        );
        const F = (xx: LazyTensor) => xx.sub(y).mul(xx.add(2));
        const [dx] = await vjp(reduction(F(x), 'prod', 1, { options: { ...GPU, dtype } }), {
          wrt: [x],
          cotangent: c,
        });
        const want = await numeric((xx) => F(xx).prod(1, { ...GPU, dtype }), xs, c);
        expectClose(dx!.data, want, tol, tol, undefined, `prod dx, zero factor: ${withZero}`);
      }
    });

    it('kMax: vjp is the cotangent at the K selected terms', async () => {
      const xs = [0.3, -0.7, 1.1];
      const yv = [0.5, -1.2, 0.9, 1.6, -0.4];
      const c = [0.7, -1.3, 0.4, 2, 0.1, -0.5];
      const y = Vj(
        typed(
          yv.map((v) => [v]),
          dtype,
        ),
        1,
      );
      const x = Vi(
        typed(
          xs.map((v) => [v]),
          dtype,
        ),
        1,
      );
      const F = (xx: LazyTensor) => xx.sub(y).square().mul(xx.add(3));
      const [dx] = await vjp(reduction(F(x), 'kMax', 1, { k: 2, options: { ...GPU, dtype } }), {
        wrt: [x],
        cotangent: c,
      });
      const want = await numeric((xx) => F(xx).kMax(2, 1, { ...GPU, dtype }), xs, c);
      expectClose(dx!.data, want, tol, tol, undefined, 'kMax dx');
    });
  });
});
