// The tree of knn's search (src/core/knn-tree.ts), checked on its own: a permutation, leaves of at
// most `cap` rows covering the order, nodes in preorder whose children split their rows, and every
// split a spatial one (the left child's rows no further along some axis than the right child's), on
// clouds that take each of its paths: uniform, below the codes' resolution (re-encoded in their own
// box), all equal (split by count), subnormal extents, every D from 1 to 8. knn's exactness on these
// shapes is tests/knn/knn-tree.test.ts's.
import { describe, expect, it } from 'vitest';
import { knnTreeAsync, type KnnTree } from '../../src/core/knn-tree.js';
import { expectResponsive } from '../helpers/event-loop.js';
import { rng } from '../helpers/random.js';

function cloud(seed: number, N: number, D: number, scale = 1, offset = 0): Float64Array {
  const random = rng(seed);
  return Float64Array.from({ length: N * D }, () => offset + scale * random());
}

/** Checks the tree's invariants against the points, independently of how it was built. */
function expectValidTree(t: KnnTree, data: ArrayLike<number>, N: number, D: number, cap: number): void {
  // perm: a permutation of 0..N-1.
  expect(t.perm.length).toBe(N);
  const seen = new Uint8Array(N);
  for (const p of t.perm) {
    expect(p >= 0 && p < N && seen[p] === 0).toBe(true);
    seen[p] = 1;
  }
  // Leaves: consecutive, covering [0, N), at most cap rows, non-empty (N > 0).
  const L = t.leaves.length / 2;
  let at = 0;
  for (let b = 0; b < L; b++) {
    expect(t.leaves[2 * b]).toBe(at);
    const size = t.leaves[2 * b + 1]! - at;
    expect(size > 0 && size <= cap).toBe(true);
    at = t.leaves[2 * b + 1]!;
  }
  expect(at).toBe(N);
  // Nodes: preorder, the root covers everything, an inner node's children split its rows at one
  // position, a leaf node is the leaf it names.
  const { start, end, left, right, leafOf } = t.nodes;
  expect(start[0]).toBe(0);
  expect(end[0]).toBe(N);
  let leavesSeen = 0;
  for (let v = 0; v < start.length; v++) {
    if (left[v]! < 0) {
      expect(leafOf[v]).toBe(leavesSeen++);
      expect([start[v], end[v]]).toEqual([t.leaves[2 * leafOf[v]!], t.leaves[2 * leafOf[v]! + 1]]);
      continue;
    }
    const l = left[v]!;
    const r = right[v]!;
    expect(l).toBe(v + 1);
    expect(r).toBeGreaterThan(l);
    expect([start[l], end[r], end[l]]).toEqual([start[v], end[v], start[r]]);
    expect(end[v]! - start[v]!).toBeGreaterThan(cap);
    // A spatial split: some axis has every left row at or below every right row.
    const spatial = Array.from({ length: D }, (_, k) => {
      let leftMax = -Infinity;
      let rightMin = Infinity;
      for (let p = start[l]!; p < end[l]!; p++) leftMax = Math.max(leftMax, data[t.perm[p]! * D + k]!);
      for (let p = start[r]!; p < end[r]!; p++) rightMin = Math.min(rightMin, data[t.perm[p]! * D + k]!);
      return leftMax <= rightMin;
    }).some(Boolean);
    expect(spatial, `node ${v} [${start[v]}, ${end[v]})`).toBe(true);
  }
  expect(leavesSeen).toBe(L);
}

describe('knnTreeAsync', () => {
  it.each([
    [1, 1, 1, 32],
    [2, 31, 3, 32],
    [3, 1000, 1, 16],
    [4, 1000, 2, 32],
    [5, 3000, 3, 32],
    [6, 2000, 4, 8],
    [7, 1500, 5, 32],
    [8, 1500, 6, 32],
    [9, 1500, 7, 32],
    [10, 1500, 8, 1],
  ])('a valid spatial tree of uniform points (seed %i: N = %i, D = %i, cap = %i)', async (seed, N, D, cap) => {
    const data = cloud(seed, N, D);
    expectValidTree(await knnTreeAsync(data, N, D, cap), data, N, D, cap);
  });

  it('the same tree on every run, from Float32Array or Float64Array of the same values', async () => {
    const data = Float32Array.from(cloud(11, 2500, 3));
    const a = await knnTreeAsync(data, 2500, 3, 32);
    const b = await knnTreeAsync(Float64Array.from(data), 2500, 3, 32);
    expect(Array.from(a.perm)).toEqual(Array.from(b.perm));
    expect(Array.from(a.leaves)).toEqual(Array.from(b.leaves));
    expect(Array.from(a.nodes.right)).toEqual(Array.from(b.nodes.right));
  });

  it('a cluster below the resolution of the codes of the whole cloud is split in its own box', async () => {
    // 2000 points in a cube of side 1e-6 and one at 1e3: one cell of the root's codes.
    const N = 2001;
    const data = new Float64Array(3 * N);
    data.set(cloud(12, N - 1, 3, 1e-6, 0.5));
    data.fill(1e3, 3 * (N - 1));
    // Every split spatial (expectValidTree): a split by count of the cluster's rows would not be.
    expectValidTree(await knnTreeAsync(data, N, 3, 32), data, N, 3, 32);
  });

  it('all points equal (split by count, leaves full), partly equal, subnormal extents', async () => {
    const same = new Float64Array(3 * 1000).fill(-0.25);
    const t = await knnTreeAsync(same, 1000, 3, 32);
    expectValidTree(t, same, 1000, 3, 32);
    expect(t.leaves.length / 2).toBe(Math.ceil(1000 / 32));
    const half = Float64Array.from(cloud(13, 1000, 2), (v, i) => (i < 1000 ? 0.5 : v));
    expectValidTree(await knnTreeAsync(half, 1000, 2, 16), half, 1000, 2, 16);
    // Coordinates 0 and 5e-324 apart (2^15 / 5e-324 overflows): still split along the axis.
    const tiny = Float64Array.from({ length: 2 * 500 }, (_, i) => (i % 3 === 0 ? 5e-324 : 0));
    expectValidTree(await knnTreeAsync(tiny, 500, 2, 32), tiny, 500, 2, 32);
  });

  it('lets the event loop run while it builds the tree of 10^6 points', async () => {
    const N = 1_000_000;
    const data = Float32Array.from(cloud(14, N, 3));
    const run = await expectResponsive(() => knnTreeAsync(data, N, 3, 32), 100);
    expect(run.result.leaves[run.result.leaves.length - 1]).toBe(N);
  });

  it('rejects with the reason of its signal, before starting or while it runs', async () => {
    // Large enough to take several yield intervals (20 ms) on a fast machine (~0.1 s of work): the
    // timer runs at the first yield, the next check rejects.
    const N = 2_000_000;
    const data = Float32Array.from(cloud(15, N, 3));
    const reason = new Error('stop the tree');
    await expect(knnTreeAsync(data, N, 3, 32, AbortSignal.abort(reason))).rejects.toBe(reason);
    const controller = new AbortController();
    const running = knnTreeAsync(data, N, 3, 32, controller.signal);
    setTimeout(() => controller.abort(reason), 0);
    await expect(running).rejects.toBe(reason);
  });
});
