// The k-d tree order behind both Sinkhorn backends: a permutation into full leaves of nearby points,
// split at the median of the widest coordinate, the same on every run.
import { describe, expect, it } from 'vitest';
import { kdOrder } from '../../src/index.js';
import type { Cloud } from '../../src/geomloss/inputs.js';
import { spatialSort } from '../../src/geomloss/spatial.js';
import { expectResponsive } from '../helpers/event-loop.js';
import { rng } from './helpers.js';

describe('kdOrder', () => {
  it.each([1, 2, 3, 5])('gives a permutation into full leaves split at medians (D = %i)', (D) => {
    const r = rng(40 + D);
    const N = 1000 + 37 * D;
    const data = Float64Array.from({ length: N * D }, () => Math.round(r() * 50) / 50); // many ties
    const leaf = 16;
    const { perm, leaves } = kdOrder(data, N, D, leaf);
    expect(Array.from(perm).sort((u, v) => u - v)).toEqual(Array.from({ length: N }, (_, i) => i));
    // Leaves cover [0, N) in order; all but the last are full.
    const T = leaves.length / 2;
    for (let t = 0; t < T; t++) {
      expect(leaves[2 * t]).toBe(t * leaf);
      expect(leaves[2 * t + 1]).toBe(Math.min(N, (t + 1) * leaf));
    }
    // The root split: every row before the first split point is not after any row past it, along
    // some coordinate (the widest), ties ordered by row.
    const mid = Math.ceil(N / 2 / leaf) * leaf;
    const splits = Array.from({ length: D }, (_, axis) => {
      const key = (i: number) => [data[perm[i]! * D + axis]!, perm[i]!] as const;
      let maxLeft = key(0);
      for (let i = 1; i < mid; i++) {
        const k = key(i);
        if (k[0] > maxLeft[0] || (k[0] === maxLeft[0] && k[1] > maxLeft[1])) maxLeft = k;
      }
      for (let i = mid; i < N; i++) {
        const k = key(i);
        if (k[0] < maxLeft[0] || (k[0] === maxLeft[0] && k[1] < maxLeft[1])) return false;
      }
      return true;
    });
    expect(splits.some(Boolean)).toBe(true);
    // Leaves are compact: their mean radius is far below that of leaves of rows in input order.
    const meanRadius = (order: ArrayLike<number>) => {
      let sum = 0;
      for (let t = 0; t < T; t++) {
        const rows = Array.from({ length: leaves[2 * t + 1]! - leaves[2 * t]! }, (_, q) => order[leaves[2 * t]! + q]!);
        const c = Array.from({ length: D }, (_, k) => rows.reduce((s, i) => s + data[i * D + k]!, 0) / rows.length);
        sum += Math.max(...rows.map((i) => Math.hypot(...c.map((ck, k) => data[i * D + k]! - ck))));
      }
      return sum / T;
    };
    expect(meanRadius(perm)).toBeLessThan(0.5 * meanRadius(Array.from({ length: N }, (_, i) => i)));
    // The same tree on every run.
    expect(Array.from(kdOrder(data, N, D, leaf).perm)).toEqual(Array.from(perm));
  });
});

describe('spatialSort (the online backend’s sort, time-sliced)', () => {
  it('gives kdOrder’s permutation and the rows and weights in that order, in both dtypes', async () => {
    const r = rng(7);
    const N = 3001;
    const D = 3;
    const data = Float64Array.from({ length: N * D }, () => r());
    const w = Float64Array.from({ length: N }, () => 0.5 + r());
    const { perm, leaves } = kdOrder(data, N, D, 8);
    for (const dtype of ['float32', 'float64'] as const) {
      const c: Cloud = { name: 'x', data, B: 1, N, D, batched: false, natural: null };
      const s = await spatialSort(c, w, dtype, 8);
      expect(Array.from(s.perm)).toEqual(Array.from(perm));
      expect(Array.from(s.leaves)).toEqual(Array.from(leaves));
      expect(s.cloud.data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
      const round = dtype === 'float32' ? Math.fround : (v: number) => v;
      for (let q = 0; q < N; q++) {
        expect(s.w[q]).toBe(w[perm[q]!]);
        for (let k = 0; k < D; k++) expect(s.cloud.data[q * D + k]).toBe(round(data[perm[q]! * D + k]!));
      }
    }
  });

  it('lets a 10 ms timer tick while it sorts 10^6 points, and stops on an abort', async () => {
    const r = rng(8);
    const N = 1_000_000;
    const data = Float32Array.from({ length: 3 * N }, () => r());
    const w = new Float64Array(N).fill(1 / N);
    const c: Cloud = { name: 'x', data, B: 1, N, D: 3, batched: false, natural: 'float32' };
    const { result } = await expectResponsive(() => spatialSort(c, w, 'float32', 8));
    expect(result.perm.length).toBe(N);
    const reason = new Error('stop');
    await expect(spatialSort(c, w, 'float32', 8, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});
