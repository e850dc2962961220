// The k-d tree search of knn on the shapes that stress its rounds: degenerate clouds (a plane, a
// line, duplicates), sizes off the leaf sizes, K from 1 to past a leaf, far queries that need several
// rounds, every pruned metric in both precisions. Each time the result must be exactly the dense
// kMinArgKMin (and argKMin) of the same formula, which tests/knn/knn.test.ts checks against a plain
// float64 brute force.
import { describe, expect, it } from 'vitest';
import { Vi, Vj, knn, type LazyTensor } from '../../src/index.js';
import { kdOrder, kdTreeNodes } from '../../src/core/kd-order.js';
import { rng, typed, uniformRows } from '../helpers/random.js';

const formulas = {
  euclidean: (x: LazyTensor, y: LazyTensor) => x.sqDist(y),
  sqeuclidean: (x: LazyTensor, y: LazyTensor) => x.sqDist(y),
  manhattan: (x: LazyTensor, y: LazyTensor) => x.sub(y).abs().sum(-1),
} as const;

/** knn with the tree equals the dense kMinArgKMin (indices and values) and argKMin of the formula. */
async function expectTreeExact(
  x: Float32Array | Float64Array,
  y: Float32Array | Float64Array,
  D: number,
  K: number,
  metric: keyof typeof formulas = 'euclidean',
) {
  const dtype = x instanceof Float32Array ? 'float32' : 'float64';
  const F = formulas[metric](Vi(x, D), Vj(y, D));
  const dense = await F.kMinArgKMin(K, 1, { dtype });
  const argk = await F.argKMin(K, 1, { dtype });
  expect(Array.from(dense.indices.data)).toEqual(Array.from(argk.data));
  const r = await knn(x, y, K, { dim: D, metric, method: 'tree' });
  expect(r.indices.shape).toEqual([x.length / D, K]);
  expect(Array.from(r.indices.data)).toEqual(Array.from(dense.indices.data));
  const want = Array.from(dense.values.data, (v) =>
    metric === 'euclidean' ? (dtype === 'float32' ? Math.fround(Math.sqrt(v)) : Math.sqrt(v)) : v,
  );
  expect(Array.from(r.distances.data)).toEqual(want);
}

describe('knn tree search: degenerate clouds', () => {
  it('points on a plane in 3-D (one coordinate a linear function of the others), float32', async () => {
    const random = rng(41);
    const plane = (n: number) =>
      Float32Array.from(
        Array.from({ length: n }, () => {
          const u = random();
          const v = random();
          return [u, v, 0.3 * u - 0.2 * v];
        }).flat(),
      );
    await expectTreeExact(plane(1500), plane(2100), 3, 7);
  });

  it('points on a line in 2-D, float64, euclidean and manhattan', async () => {
    const line = Float64Array.from(Array.from({ length: 1300 }, (_, i) => [i * 0.37, -i * 0.11]).flat());
    await expectTreeExact(line.subarray(0, 2 * 900), line, 2, 5);
    await expectTreeExact(line.subarray(0, 2 * 900), line, 2, 5, 'manhattan');
  });

  it('every point four times (ties straddle the K-th neighbour), and all points equal', async () => {
    const base = uniformRows(rng(43), 300, 3);
    const dup = typed([...base, ...base, ...base, ...base], 'float32');
    await expectTreeExact(dup, dup, 3, 6);
    await expectTreeExact(dup, dup, 3, 4, 'manhattan');
    const same = new Float64Array(2 * 700).fill(-0.5);
    await expectTreeExact(same.subarray(0, 2 * 100), same, 2, 9);
  });

  it('a large cloud of equal points and random ones (rows left to the brute force, not to long lists)', async () => {
    const random = rng(73);
    const y = new Float32Array(2 * 20000).fill(0.5);
    for (let i = 10000; i < 20000; i++) {
      y[2 * i] = random();
      y[2 * i + 1] = random();
    }
    const x = Float32Array.from([...y.subarray(0, 2 * 40), ...y.subarray(2 * 15000, 2 * 15040)]);
    await expectTreeExact(x, y, 2, 5);
    const r = await knn(x.subarray(0, 2), y, 5, { dim: 2, method: 'tree' });
    expect(Array.from(r.indices.data)).toEqual([0, 1, 2, 3, 4]);
  });

  it('tight clusters with far queries (large K-th distances: several later rounds)', async () => {
    const random = rng(47);
    const y: number[][] = [];
    for (let i = 0; i < 3000; i++) {
      const c = i % 5;
      y.push([c * 3 + 0.001 * random(), 0.001 * random(), (c % 2) * 2 + 0.001 * random()]);
    }
    const x = [...uniformRows(random, 300, 3, -20, 20), ...y.slice(0, 200)];
    await expectTreeExact(typed(x, 'float32'), typed(y, 'float32'), 3, 12);
    await expectTreeExact(typed(x, 'float64'), typed(y, 'float64'), 3, 3, 'sqeuclidean');
  });
});

describe('knn tree search: grouped later rounds', () => {
  // Queries near the centre of a ring: every leaf of the ring is at about the K-th distance, so the
  // rows' lists are long (past one round's 16 leaves) and differ from row to row. The second round
  // groups the rows of an x-leaf over the union of their leaves; the third must not visit those
  // leaves again (a duplicate neighbour) nor skip the ones still left.
  it.each([
    [4000, 0.05, 10, 'float64'],
    [3000, 0.2, 3, 'float64'],
    [8000, 0.1, 10, 'float32'],
  ] as const)('M = %i on a ring, queries within %f of its centre, K = %i, %s', async (M, spread, K, dtype) => {
    const random = rng(M + K);
    const y: number[][] = [];
    for (let i = 0; i < M; i++) {
      const a = 2 * Math.PI * random();
      const radius = 1 + 0.001 * random();
      y.push([radius * Math.cos(a), radius * Math.sin(a)]);
    }
    const x = uniformRows(random, 300, 2, -spread / 2, spread / 2);
    await expectTreeExact(typed(x, dtype), typed(y, dtype), 2, K);
  });
});

describe('knn tree search: sizes and K', () => {
  it.each([
    [1, 31, 1],
    [33, 65, 4],
    [997, 1025, 10],
    [64, 32, 32],
    [257, 96, 96],
  ])('N = %i, M = %i (off the leaf size of 32), K = %i', async (N, M, K) => {
    const random = rng(N * 7 + M);
    await expectTreeExact(
      typed(uniformRows(random, N, 3), 'float32'),
      typed(uniformRows(random, M, 3), 'float32'),
      3,
      K,
    );
  });

  it('K = 1 and K = 40 (more than a leaf), float64, every pruned metric', async () => {
    const random = rng(53);
    const x = typed(uniformRows(random, 800, 2), 'float64');
    const y = typed(uniformRows(random, 1200, 2), 'float64');
    for (const metric of ['euclidean', 'sqeuclidean', 'manhattan'] as const) {
      await expectTreeExact(x, y, 2, 1, metric);
      await expectTreeExact(x, y, 2, 40, metric);
    }
  });

  it('K = 40 in float32 at D = 4 and D = 6', async () => {
    const random = rng(59);
    for (const D of [4, 6]) {
      await expectTreeExact(
        typed(uniformRows(random, 600, D), 'float32'),
        typed(uniformRows(random, 900, D), 'float32'),
        D,
        40,
      );
    }
  });

  it("'auto' picks the tree at N M >= 2^20 and gives the brute force's result", async () => {
    const random = rng(61);
    const x = typed(uniformRows(random, 1100, 3), 'float32');
    const y = typed(uniformRows(random, 1000, 3), 'float32');
    const auto = await knn(x, y, 10, { dim: 3 });
    const brute = await knn(x, y, 10, { dim: 3, method: 'brute' });
    expect(Array.from(auto.indices.data)).toEqual(Array.from(brute.indices.data));
    expect(Array.from(auto.distances.data)).toEqual(Array.from(brute.distances.data));
  });
});

describe('knn tree search: cancellation and the event loop', () => {
  it('rejects with the reason of a signal aborted during the search', async () => {
    const random = rng(67);
    const x = typed(uniformRows(random, 20000, 3), 'float32');
    const c = new AbortController();
    const run = knn(x, x, 10, { dim: 3, method: 'tree', signal: c.signal });
    setTimeout(() => c.abort(new Error('stop the search')), 1);
    await expect(run).rejects.toThrow(/stop the search/);
  });

  it('lets timers run while it searches', async () => {
    const random = rng(71);
    const x = typed(uniformRows(random, 20000, 3), 'float32');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await knn(x, x, 10, { dim: 3, method: 'tree' });
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
  });
});

describe('kdTreeNodes', () => {
  it.each([
    [0, 4],
    [1, 1],
    [100, 1],
    [1000, 32],
    [1025, 32],
    [77, 10],
  ])('N = %i, leaf = %i: the nodes of kdOrder, leaves in order, children splitting their parent', (N, leaf) => {
    const data = Float64Array.from(uniformRows(rng(N + 3), N, 2).flat());
    const { leaves } = kdOrder(data, N, 2, leaf);
    const t = kdTreeNodes(N, leaf);
    expect(t.start[0]).toBe(0);
    expect(t.end[0]).toBe(N);
    const found: number[] = [];
    for (let n = 0; n < t.start.length; n++) {
      if (t.left[n]! < 0) {
        expect(t.leafOf[n]).toBe(found.length / 2);
        found.push(t.start[n]!, t.end[n]!);
        expect(t.end[n]! - t.start[n]!).toBeLessThanOrEqual(leaf);
      } else {
        const l = t.left[n]!;
        const r = t.right[n]!;
        expect(l).toBe(n + 1);
        expect([t.start[l], t.end[l], t.start[r], t.end[r]]).toEqual([t.start[n], t.start[r], t.end[l], t.end[n]]);
      }
    }
    expect(found).toEqual(Array.from(leaves));
  });
});
