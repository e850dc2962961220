// The core's k-d order: its one selection routine (kdOrder's, and selectRankIndexed for GeomLoss's
// hierarchy) against a plain sort, and kdOrderAsync (the time-sliced kdOrder of the library's own long
// jobs): the same order as kdOrder, yielding to the event loop, aborting on its signal.
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/core/errors.js';
import { kdOrder, kdOrderAsync, selectRankIndexed } from '../src/core/kd-order.js';
import { expectResponsive } from './helpers/event-loop.js';
import { rng } from './helpers/random.js';

/** N points of dimension D on a coarse grid (many ties in every coordinate). */
function gridPoints(seed: number, N: number, D: number, steps = 20): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: N * D }, () => Math.floor(r() * steps) / steps);
}

/** The rows of positions [lo, hi) of perm sorted by (coordinate, row): the ranks, plainly. */
function sortedRows(perm: ArrayLike<number>, lo: number, hi: number, data: ArrayLike<number>, D: number, axis: number) {
  return Array.from(perm)
    .slice(lo, hi)
    .sort((u, v) => data[u * D + axis]! - data[v * D + axis]! || u - v);
}

/** kdOrder's leaves as sets of rows, by a plain recursion that sorts every node (an independent
 *  reference: the split rule of kdOrder's TSDoc, the widest coordinate, ties by row). */
function referenceLeaves(data: ArrayLike<number>, N: number, D: number, leaf: number): number[][] {
  const out: number[][] = [];
  const visit = (rows: number[]) => {
    if (rows.length <= leaf) {
      out.push([...rows].sort((u, v) => u - v));
      return;
    }
    let axis = 0;
    let widest = -1;
    for (let k = 0; k < D; k++) {
      const values = rows.map((r) => data[r * D + k]!);
      const width = Math.max(...values) - Math.min(...values);
      if (width > widest) [widest, axis] = [width, k];
    }
    const sorted = [...rows].sort((u, v) => data[u * D + axis]! - data[v * D + axis]! || u - v);
    const mid = Math.min(rows.length - 1, Math.ceil(rows.length / 2 / leaf) * leaf);
    visit(sorted.slice(0, mid));
    visit(sorted.slice(mid));
  };
  visit(Array.from({ length: N }, (_, i) => i));
  return out;
}

function leafSets(perm: Int32Array, leaves: Int32Array): number[][] {
  const out: number[][] = [];
  for (let t = 0; t < leaves.length; t += 2) {
    out.push(Array.from(perm.subarray(leaves[t]!, leaves[t + 1]!)).sort((u, v) => u - v));
  }
  return out;
}

describe('the selection (one routine for kdOrder and selectRankIndexed)', () => {
  it.each([
    [1, 1000, 1],
    [2, 777, 3],
    [3, 64, 2],
    [4, 2, 1],
  ])('selectRankIndexed puts rank k at k, nothing larger before and nothing smaller after (seed %i)', (seed, N, D) => {
    const data = gridPoints(seed, N, D, 7);
    const r = rng(seed + 100);
    // A shuffled perm, as the hierarchy's is after its first splits.
    const perm = Int32Array.from({ length: N }, (_, i) => i);
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    const lo = Math.floor(N / 5);
    const hi = N - Math.floor(N / 7);
    for (const axis of Array.from({ length: D }, (_, k) => k)) {
      for (const k of [lo, Math.floor((lo + hi) / 2), hi - 1]) {
        const before = Array.from(perm);
        const ranks = sortedRows(perm, lo, hi, data, D, axis);
        selectRankIndexed(perm, lo, hi, k, data, D, axis);
        expect(perm[k], `rank ${k - lo}`).toBe(ranks[k - lo]);
        const rank = new Map(ranks.map((row, q) => [row, q]));
        for (let q = lo; q < k; q++) expect(rank.get(perm[q]!)!).toBeLessThan(k - lo);
        for (let q = k + 1; q < hi; q++) expect(rank.get(perm[q]!)!).toBeGreaterThan(k - lo);
        // Positions outside [lo, hi) are untouched; inside, the same rows.
        expect(Array.from(perm.slice(0, lo))).toEqual(before.slice(0, lo));
        expect(Array.from(perm.slice(hi))).toEqual(before.slice(hi));
        expect(Array.from(perm.slice(lo, hi)).sort((u, v) => u - v)).toEqual(
          before.slice(lo, hi).sort((u, v) => u - v),
        );
      }
    }
  });

  it.each([
    [11, 1000, 2, 16],
    [12, 513, 3, 1],
    [13, 300, 5, 7],
    [14, 64, 1, 32],
  ])('kdOrder splits as a sorting reference does (seed %i: N = %i, D = %i, leaf = %i)', (seed, N, D, leaf) => {
    const data = gridPoints(seed, N, D);
    const { perm, leaves } = kdOrder(data, N, D, leaf);
    expect(leafSets(perm, leaves)).toEqual(referenceLeaves(data, N, D, leaf));
  });
});

describe('kdOrderAsync', () => {
  it.each([
    [21, 0, 2, 4],
    [22, 1, 3, 4],
    [23, 1000, 2, 16],
    [24, 4097, 3, 32],
    [25, 2000, 6, 1],
  ])("gives kdOrder's perm and leaves (seed %i: N = %i, D = %i, leaf = %i)", async (seed, N, D, leaf) => {
    const data = gridPoints(seed, N, D);
    const sync = kdOrder(data, N, D, leaf);
    const slices = await kdOrderAsync(data, N, D, leaf);
    expect(Array.from(slices.perm)).toEqual(Array.from(sync.perm));
    expect(Array.from(slices.leaves)).toEqual(Array.from(sync.leaves));
  });

  // Sliced between node splits: the longest step is the root's split (a pass over every point, some
  // 10 ms at this size on an idle machine). A synchronous order lets no tick run at all
  // (expectResponsive requires ticks), whatever the machine's speed.
  it('lets the event loop run while it orders 1.5 x 10^5 points, and gives the same order', async () => {
    const N = 150_000;
    const D = 3;
    const data = gridPoints(31, N, D, 1 << 20);
    const run = await expectResponsive(() => kdOrderAsync(data, N, D, 32), 100);
    const sync = kdOrder(data, N, D, 32);
    expect(Array.from(run.result.perm)).toEqual(Array.from(sync.perm));
    expect(Array.from(run.result.leaves)).toEqual(Array.from(sync.leaves));
  });

  // The split of a root of 10^6 points alone (its bounds scan and its selection) is a few hundred ms
  // of work: the steps scan and partition about 3 x 10^4 rows at a time, so the gaps stay short.
  it('slices the split of one large node too (10^6 points, one split)', async () => {
    const N = 1_000_000;
    const data = gridPoints(33, N, 2, 1 << 20);
    const run = await expectResponsive(() => kdOrderAsync(data, N, 2, 1 << 19), 100);
    const sync = kdOrder(data, N, 2, 1 << 19);
    expect(Array.from(run.result.perm)).toEqual(Array.from(sync.perm));
    expect(Array.from(run.result.leaves)).toEqual(Array.from(sync.leaves));
  });

  it('rejects with the reason of its signal, before starting or while it runs', async () => {
    // Large enough to take several yield intervals (20 ms) even on a fast machine: the timer runs
    // at the first yield, the next check rejects.
    const N = 200_000;
    const data = gridPoints(32, N, 2, 1 << 20);
    const reason = new Error('stop ordering');
    await expect(kdOrderAsync(data, N, 2, 32, AbortSignal.abort(reason))).rejects.toBe(reason);
    const controller = new AbortController();
    const running = kdOrderAsync(data, N, 2, 32, controller.signal);
    setTimeout(() => controller.abort(reason), 0);
    await expect(running).rejects.toBe(reason);
  });

  it('names its bad arguments as kdOrder does', async () => {
    await expect(kdOrderAsync([0, 1], 2, 1, 0)).rejects.toThrow(InputError);
    await expect(kdOrderAsync([0, 1], 2, 1, 0)).rejects.toThrow(/kdOrder: leaf must be a positive integer/);
    await expect(kdOrderAsync([0, NaN], 2, 1, 4)).rejects.toThrow(/point 1 is NaN/);
  });
});
