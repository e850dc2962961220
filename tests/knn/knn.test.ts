// knn: exact K nearest neighbours, the k-d tree search equal to a dense argKMin of the same formula,
// and both against a plain float64 brute force.
import { describe, expect, it } from 'vitest';
import { Pm, Vi, Vj, knn, type LazyTensor } from '../../src/index.js';
import { rng, typed, uniformRows } from '../helpers/random.js';

type Rows = number[][];

/** Plain float64 brute force: the K smallest (value, index) pairs of each row, ties to the lowest index. */
function reference(
  x: Rows,
  y: Rows,
  K: number,
  dist: (a: number[], b: number[]) => number,
): { indices: number[][]; values: number[][] } {
  const indices: number[][] = [];
  const values: number[][] = [];
  for (const a of x) {
    const all = y
      .map((b, j) => [dist(a, b), j] as const)
      .sort((p, q) => p[0] - q[0] || p[1] - q[1])
      .slice(0, K);
    indices.push(all.map((p) => p[1]));
    values.push(all.map((p) => p[0]));
  }
  return { indices, values };
}
const sq = (a: number[], b: number[]) => a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0);
const l1 = (a: number[], b: number[]) => a.reduce((s, v, k) => s + Math.abs(v - b[k]!), 0);

const formulas = {
  euclidean: (x: LazyTensor, y: LazyTensor) => x.sqDist(y),
  sqeuclidean: (x: LazyTensor, y: LazyTensor) => x.sqDist(y),
  manhattan: (x: LazyTensor, y: LazyTensor) => x.sub(y).abs().sum(-1),
  cosine: (x: LazyTensor, y: LazyTensor) => x.normalize().dot(y.normalize()).neg().add(1),
} as const;

/** knn with the tree (where it applies) and brute force equal kMinArgKMin of the metric's formula. */
async function expectSameAsArgKMin(
  x: Float32Array | Float64Array,
  y: Float32Array | Float64Array,
  D: number,
  K: number,
  metric: keyof typeof formulas,
) {
  const dtype = x instanceof Float32Array ? 'float32' : 'float64';
  const dense = await formulas[metric](Vi(x, D), Vj(y, D)).kMinArgKMin(K, 1, { dtype });
  const argk = await formulas[metric](Vi(x, D), Vj(y, D)).argKMin(K, 1, { dtype });
  expect(Array.from(dense.indices.data)).toEqual(Array.from(argk.data));
  for (const method of ['tree', 'brute'] as const) {
    const r = await knn(x, y, K, { dim: D, metric, method });
    expect(r.indices.shape).toEqual([x.length / D, K]);
    expect(r.indices.data).toBeInstanceOf(Int32Array);
    expect(r.distances.dtype).toBe(dtype);
    expect(Array.from(r.indices.data)).toEqual(Array.from(dense.indices.data));
    const want = Array.from(dense.values.data, (v) =>
      metric === 'euclidean' ? (dtype === 'float32' ? Math.fround(Math.sqrt(v)) : Math.sqrt(v)) : v,
    );
    expect(Array.from(r.distances.data)).toEqual(want);
  }
}

describe('knn equals argKMin of the same formula, exactly', () => {
  it.each([
    [1, 'float32'],
    [2, 'float64'],
    [3, 'float32'],
    [3, 'float64'],
    [5, 'float32'],
    [8, 'float64'],
  ] as const)('random uniform, D = %i, %s, euclidean', async (D, dtype) => {
    const random = rng(100 + D);
    await expectSameAsArgKMin(
      typed(uniformRows(random, 700, D), dtype),
      typed(uniformRows(random, 1100, D), dtype),
      D,
      7,
      'euclidean',
    );
  });

  it.each(['sqeuclidean', 'manhattan', 'cosine'] as const)('random uniform, D = 3, float32, %s', async (metric) => {
    const random = rng(7);
    await expectSameAsArgKMin(
      typed(uniformRows(random, 600, 3), 'float32'),
      typed(uniformRows(random, 900, 3), 'float32'),
      3,
      5,
      metric,
    );
  });

  it('clustered data (tight blobs far apart), float32', async () => {
    const random = rng(11);
    const blob = (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const c = Math.floor(random() * 6);
        for (let k = 0; k < 3; k++) out.push(c * 10 + 0.01 * (random() - 0.5));
      }
      return Float32Array.from(out);
    };
    await expectSameAsArgKMin(blob(800), blob(1500), 3, 12, 'euclidean');
  });

  it('duplicated points, an integer grid (many exact ties), all points equal, points on a line', async () => {
    const random = rng(3);
    const base = uniformRows(random, 200, 2);
    const dup = Float32Array.from([...base, ...base, ...base].flat());
    await expectSameAsArgKMin(dup, dup, 2, 5, 'euclidean');
    const grid = Float64Array.from(Array.from({ length: 900 }, (_, i) => [i % 30, Math.floor(i / 30)]).flat());
    await expectSameAsArgKMin(grid, grid, 2, 9, 'euclidean');
    await expectSameAsArgKMin(grid, grid, 2, 9, 'manhattan');
    const same = new Float32Array(3 * 500).fill(0.25);
    await expectSameAsArgKMin(same.subarray(0, 300), same, 3, 6, 'euclidean');
    const r = await knn(same.subarray(0, 3), same, 6, { dim: 3, method: 'tree' });
    expect(Array.from(r.indices.data)).toEqual([0, 1, 2, 3, 4, 5]);
    const line = Float32Array.from(
      Array.from({ length: 1000 }, (_, i) => [i * 0.001, 2 * i * 0.001, -i * 0.001]).flat(),
    );
    await expectSameAsArgKMin(line, line, 3, 4, 'euclidean');
  });

  it('K = M, N = 1, M = 1', async () => {
    const random = rng(5);
    const y = typed(uniformRows(random, 70, 3), 'float32');
    await expectSameAsArgKMin(y, y, 3, 70, 'euclidean');
    await expectSameAsArgKMin(y.subarray(0, 3), y, 3, 10, 'euclidean');
    await expectSameAsArgKMin(y, y.subarray(0, 3), 3, 1, 'manhattan');
  });

  it('a float64 input reduced in float32 (dtype override) prunes on the rounded coordinates', async () => {
    const random = rng(9);
    const x = typed(uniformRows(random, 500, 3), 'float64');
    const y = typed(uniformRows(random, 800, 3), 'float64');
    const dense = await Vi(x, 3).sqDist(Vj(y, 3)).argKMin(6, 1, { dtype: 'float32' });
    const r = await knn(x, y, 6, { dim: 3, dtype: 'float32', metric: 'sqeuclidean', method: 'tree' });
    expect(r.distances.dtype).toBe('float32');
    expect(Array.from(r.indices.data)).toEqual(Array.from(dense.data));
  });
});

describe('knn against a plain float64 brute force', () => {
  it('euclidean, manhattan and cosine, float64 (auto: brute force at this size; the tree equality is tested above)', async () => {
    const random = rng(21);
    const x = uniformRows(random, 600, 3);
    const y = uniformRows(random, 700, 3);
    const cos = (a: number[], b: number[]) => {
      const n = (v: number[]) => Math.sqrt(v.reduce((s, t) => s + t * t, 0));
      return 1 - a.reduce((s, v, k) => s + v * b[k]!, 0) / (n(a) * n(b));
    };
    for (const [metric, dist, post] of [
      ['euclidean', sq, Math.sqrt],
      ['manhattan', l1, (v: number) => v],
      ['cosine', cos, (v: number) => v],
    ] as const) {
      const ref = reference(x, y, 8, dist);
      const r = await knn(x, y, 8, { metric });
      expect(r.indices.toArray()).toEqual(ref.indices);
      const got = Array.from(r.distances.data);
      ref.values.flat().forEach((v, q) => expect(Math.abs(got[q]! - post(v))).toBeLessThan(1e-12));
    }
  });

  it('a formula metric (a weighted squared distance)', async () => {
    const random = rng(23);
    const x = uniformRows(random, 50, 2);
    const y = uniformRows(random, 80, 2);
    const w = (a: number[], b: number[]) => 4 * (a[0]! - b[0]!) ** 2 + (a[1]! - b[1]!) ** 2;
    const r = await knn(x, y, 3, { metric: (a, b) => a.weightedSqDist(b, Pm([4, 1])) });
    expect(r.indices.toArray()).toEqual(reference(x, y, 3, w).indices);
  });
});

describe('knn bad input', () => {
  const y = [
    [0, 0],
    [1, 1],
    [2, 2],
  ];
  it('names the argument and what was expected', async () => {
    await expect(knn(y, y, 4)).rejects.toThrow(/K = 4 is larger than the number of rows of y \(3\)/);
    await expect(knn(y, y, 0)).rejects.toThrow(/K must be a positive integer/);
    await expect(knn(y, [[0, 0, 0]], 1)).rejects.toThrow(/x has 2 components per row and y has 3/);
    await expect(knn([[NaN, 0]], y, 1)).rejects.toThrow(/knn: x.*NaN/);
    // @ts-expect-error a metric that does not exist
    await expect(knn(y, y, 1, { metric: 'chebyshev' })).rejects.toThrow(/metric must be/);
    // @ts-expect-error an unknown option
    await expect(knn(y, y, 1, { k: 2 })).rejects.toThrow(/unknown option 'k'/);
    await expect(knn(y, y, 1, { metric: (a, b) => a.sub(b) })).rejects.toThrow(/dimension 1/);
  });
  it('rejects with the signal reason when aborted', async () => {
    const c = new AbortController();
    c.abort();
    const x = uniformRows(rng(1), 2000, 3);
    await expect(knn(x, x, 3, { signal: c.signal, method: 'tree' })).rejects.toThrow(/abort/i);
    await expect(knn(x, x, 3, { signal: c.signal, method: 'brute' })).rejects.toThrow(/abort/i);
  });
});

describe('the core k-d order', () => {
  it('is the one public kdOrder, which GeomLoss imports (no second copy)', async () => {
    const { kdOrder: core } = await import('../../src/core/kd-order.js');
    const { kdOrder: pub } = await import('../../src/index.js');
    expect(pub).toBe(core);
    const spatial = await import('../../src/geomloss/spatial.js');
    expect('kdOrder' in spatial).toBe(false);
    const data = typed(uniformRows(rng(31), 3000, 3), 'float64');
    const a = core(data, 3000, 3, 64);
    expect(Array.from(a.perm).sort((u, v) => u - v)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });
  it('names its bad arguments', async () => {
    const { kdOrder } = await import('../../src/index.js');
    const { InputError } = await import('../../src/core/errors.js');
    expect(() => kdOrder([0, 1], 2, 1, 0)).toThrow(InputError);
    expect(() => kdOrder([0, 1], 2, 1, 0)).toThrow(/leaf must be a positive integer/);
    expect(() => kdOrder([0, 1], 3, 1, 4)).toThrow(/fewer than N \* D/);
    expect(() => kdOrder([0, NaN], 2, 1, 4)).toThrow(/point 1 is NaN/);
    expect(() => kdOrder([0, 1], 1.5, 1, 4)).toThrow(/N must be/);
    expect(Array.from(kdOrder([], 0, 2, 4).perm)).toEqual([]);
  });
});
