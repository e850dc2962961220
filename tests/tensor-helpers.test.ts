// Results are not dead ends: Tensors go back into Vi / Vj / Pm / solve / knn, and the array helpers
// the K-means and EM loops need, each against plain loops.
import { describe, expect, it } from 'vitest';
import { InputError, Pm, ShapeError, Tensor, Vi, Vj, kMeans, knn } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { rng, uniformRows } from './helpers/random.js';

const random = rng(5);
const tensor = (rows: number[][]) => new Tensor(Float64Array.from(rows.flat()), [rows.length, rows[0]!.length], 'wasm');

describe('a Tensor as data', () => {
  const xs = uniformRows(random, 20, 3);
  const ys = uniformRows(random, 15, 3);
  it('Vi / Vj take a Tensor [N, D] like the rows it holds', async () => {
    const a = await Vi(tensor(xs))
      .sqDist(Vj(tensor(ys)))
      .sum(1);
    const b = await Vi(xs).sqDist(Vj(ys)).sum(1);
    expectClose(a.data, Array.from(b.data), 1e-15);
    // A result feeds the next reduction: the nearest y of each x, then its squared norm.
    const nearest = await Vi(xs).sqDist(Vj(ys)).argMin(1);
    const yNearest = tensor(ys).gather(nearest);
    const norms = await Vi(yNearest)
      .sqNorm2()
      .mul(Vj([[1]]))
      .sum(1);
    const want = xs.map((x) => {
      let best = 0;
      for (let j = 1; j < ys.length; j++) {
        const d = (y: number[]) => y.reduce((t, v, k) => t + (v - x[k]!) ** 2, 0);
        if (d(ys[j]!) < d(ys[best]!)) best = j;
      }
      return ys[best]!.reduce((t, v) => t + v * v, 0);
    });
    expectClose(norms.data, want, 1e-14);
  });
  it('keeps the dtype, checks dim, and takes [B, N, D] as a batch and [N] as scalars', async () => {
    const f32 = new Tensor(Float32Array.from(xs.flat()), [20, 3], 'wasm');
    const r = await Vi(f32)
      .sqNorm2()
      .mul(Vj(new Float32Array([1]), 1))
      .sum(1);
    expect(r.dtype).toBe('float32');
    expect(() => Vi(tensor(xs), 2)).toThrow(/dim is 2 but the Tensor's shape \[20, 3\] has D = 3/);
    const batched = new Tensor(Float64Array.from([...xs.flat(), ...xs.flat()]), [2, 20, 3], 'wasm');
    const v = Vi(batched);
    expect(v.batch).toEqual([2]);
    expect(v.rowsI).toBe(20);
    const scalars = Vi(new Tensor(Float64Array.from([1, 2, 3]), [3], 'wasm'));
    expect(scalars.dim).toBe(1);
    // An [N] Tensor has an explicit dimension 1: it broadcasts on purpose.
    const s = await scalars.mul(Vj(ys)).sum(1);
    expect(s.shape).toEqual([3, 3]);
  });
  it('Pm takes a Tensor vector, and [B, D] as one vector per batch item', () => {
    expect(Pm(new Tensor(Float64Array.from([1, 2]), [2], 'wasm')).dim).toBe(2);
    expect(Pm(new Tensor(Float64Array.from([1, 2]), [1, 2], 'wasm')).batch).toEqual([]);
    const p = Pm(new Tensor(Float64Array.from([1, 2, 3, 4, 5, 6]), [3, 2], 'wasm'));
    expect(p.dim).toBe(2);
    expect(p.batch).toEqual([3]);
  });
  it('solve takes a Tensor or a variable Vi(b) as b', async () => {
    const K = Vi(xs).sqDist(Vj(xs)).mul(-2).exp();
    const rhs = uniformRows(random, 20, 2);
    const plain = await K.solve(rhs, { alpha: 0.5, tol: 1e-12 });
    const fromTensor = await K.solve(tensor(rhs), { alpha: 0.5, tol: 1e-12 });
    const fromVariable = await K.solve(Vi(Float64Array.from(rhs.flat()), 2), { alpha: 0.5, tol: 1e-12 });
    expectClose(fromTensor.solution.data, Array.from(plain.solution.data), 1e-14, 1e-15);
    expectClose(fromVariable.solution.data, Array.from(plain.solution.data), 1e-14, 1e-15);
    // The solution goes back in: (alpha I + K) a reproduces b.
    const Ka = await K.mul(Vj(plain.solution)).sum(1);
    expectClose(Ka.add(plain.solution.mul(0.5)).data, rhs.flat(), 1e-9, 1e-10);
    await expect(K.solve(Vi(xs).sqNorm2())).rejects.toThrow(/not a formula/);
    await expect(K.solve(new Tensor(new Float64Array(6), [3, 2], 'wasm'))).rejects.toThrow(/expected \[20, e\]/);
  });
  it('knn and kMeans take a Tensor', async () => {
    const a = await knn(tensor(xs), tensor(ys), 2);
    const b = await knn(xs, ys, 2);
    expect(Array.from(a.indices.data)).toEqual(Array.from(b.indices.data));
    const km = await kMeans(tensor(xs), 3, { seed: 1 });
    const kp = await kMeans(xs, 3, { seed: 1 });
    expect(Array.from(km.labels.data)).toEqual(Array.from(kp.labels.data));
    expectClose(km.centroids.data, Array.from(kp.centroids.data), 1e-15);
  });
});

describe('Tensor arithmetic', () => {
  const A = uniformRows(random, 4, 3);
  const B = uniformRows(random, 4, 3);
  const row = [0.5, -2, 3];
  const col = [[1], [2], [3], [4]];
  const ops: [string, (x: Tensor, y: Tensor | number) => Tensor, (a: number, b: number) => number][] = [
    ['add', (x, y) => x.add(y), (a, b) => a + b],
    ['sub', (x, y) => x.sub(y), (a, b) => a - b],
    ['mul', (x, y) => x.mul(y), (a, b) => a * b],
    ['div', (x, y) => x.div(y), (a, b) => a / b],
  ];
  for (const [name, op, f] of ops) {
    it(`${name}: same shape, scalar, row [D], row [1, D] and column [N, 1] broadcasting`, () => {
      const same = op(tensor(A), tensor(B));
      expect(same.shape).toEqual([4, 3]);
      expectClose(
        same.data,
        A.flatMap((r, i) => r.map((v, k) => f(v, B[i]![k]!))),
        1e-15,
      );
      expectClose(
        op(tensor(A), 2.5).data,
        A.flat().map((v) => f(v, 2.5)),
        1e-15,
      );
      const rowT = new Tensor(Float64Array.from(row), [3], 'wasm');
      expectClose(
        op(tensor(A), rowT).data,
        A.flatMap((r) => r.map((v, k) => f(v, row[k]!))),
        1e-15,
      );
      expectClose(
        op(tensor(A), tensor([row])).data,
        A.flatMap((r) => r.map((v, k) => f(v, row[k]!))),
        1e-15,
      );
      const colized = op(tensor(A), tensor(col));
      expect(colized.shape).toEqual([4, 3]);
      expectClose(
        colized.data,
        A.flatMap((r, i) => r.map((v) => f(v, col[i]![0]!))),
        1e-15,
      );
      // [N, 1] against [1, D]: the outer table.
      const outer = op(tensor(col), tensor([row]));
      expect(outer.shape).toEqual([4, 3]);
      expectClose(
        outer.data,
        col.flatMap((c) => row.map((v) => f(c[0]!, v))),
        1e-15,
      );
    });
  }
  it('float32 stays float32 only when both operands are float32; shapes that do not broadcast are ShapeErrors', () => {
    const a32 = new Tensor(Float32Array.from([1, 2]), [2], 'wasm');
    expect(a32.add(1).dtype).toBe('float32');
    expect(a32.add(a32).dtype).toBe('float32');
    expect(a32.add(new Tensor(Float64Array.from([1, 2]), [2], 'wasm')).dtype).toBe('float64');
    expect(new Tensor(Int32Array.from([1, 2]), [2], 'wasm').div(2).dtype).toBe('float64');
    expect(() => tensor(A).add(new Tensor(new Float64Array(2), [2], 'wasm'))).toThrow(ShapeError);
    expect(() => tensor(A).add('1' as never)).toThrow(InputError);
  });
});

describe('Tensor reductions and indexing', () => {
  const A = uniformRows(random, 5, 3);
  it('sum and mean, whole and per axis (negative axes count from the end)', () => {
    const t = tensor(A);
    expect(t.sum()).toBeCloseTo(
      A.flat().reduce((s, v) => s + v, 0),
      14,
    );
    expect(t.mean()).toBeCloseTo(A.flat().reduce((s, v) => s + v, 0) / 15, 14);
    const s0 = t.sum(0);
    expect(s0.shape).toEqual([3]);
    expectClose(
      s0.data,
      [0, 1, 2].map((k) => A.reduce((s, r) => s + r[k]!, 0)),
      1e-15,
    );
    const m1 = t.mean(-1);
    expect(m1.shape).toEqual([5]);
    expectClose(
      m1.data,
      A.map((r) => r.reduce((s, v) => s + v, 0) / 3),
      1e-15,
    );
    const cube = new Tensor(
      Float64Array.from({ length: 24 }, (_, k) => k),
      [2, 3, 4],
      'wasm',
    );
    const mid = cube.sum(1);
    expect(mid.shape).toEqual([2, 4]);
    const want: number[] = [];
    for (let a = 0; a < 2; a++)
      for (let c = 0; c < 4; c++) want.push([0, 1, 2].reduce((s, b) => s + a * 12 + b * 4 + c, 0));
    expect(Array.from(mid.data)).toEqual(want);
    expect(() => t.sum(2)).toThrow(/axis must be an integer in \[-2, 1\]/);
  });
  it('gather, scatterAdd and bincount against loops; reshape shares the data', () => {
    const t = tensor(A);
    const labels = new Tensor(Int32Array.from([2, 0, 2, 1, 2]), [5, 1], 'wasm');
    const g = t.gather([4, 4, 0]);
    expect(g.shape).toEqual([3, 3]);
    expect(Array.from(g.data)).toEqual([...A[4]!, ...A[4]!, ...A[0]!]);
    const sums = t.scatterAdd(labels, 4);
    expect(sums.shape).toEqual([4, 3]);
    const want = Array.from({ length: 4 }, (_, b) =>
      [0, 1, 2].map((k) => A.reduce((s, r, i) => s + (labels.data[i] === b ? r[k]! : 0), 0)),
    );
    expectClose(sums.data, want.flat(), 1e-15);
    const counts = labels.bincount(4);
    expect(Array.from(counts.data)).toEqual([1, 1, 3, 0]);
    expect(counts.dtype).toBe('int32');
    // The K-means centroid update: sums / counts, with counts as a column.
    const centroids = sums.div(counts.reshape([4, 1]));
    expectClose(
      centroids.data.subarray(0, 9),
      want.slice(0, 3).flatMap((r, b) => r.map((v) => v / [1, 1, 3][b]!)),
      1e-15,
    );
    expect(t.reshape([15]).data).toBe(t.data);
    expect(() => t.reshape([4, 4])).toThrow(/has 16 values/);
    expect(() => t.gather([5])).toThrow(/indices\[0\] is 5; expected an integer in \[0, 5\)/);
    expect(() => t.gather([-1])).toThrow(/selected nothing/);
    expect(() => t.scatterAdd([0, 1], 2)).toThrow(/2 indices for a tensor of 5 rows/);
    expect(() => t.scatterAdd(labels, 2)).toThrow(/indices\[0\] is 2/);
    expect(() => labels.bincount(0)).toThrow(/numBins must be a positive integer/);
    expect(() => t.gather(t)).toThrow(/shape \[m\] or \[m, 1\]/);
  });
});
