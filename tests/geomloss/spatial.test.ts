// The k-d tree order behind both Sinkhorn backends: a permutation into full leaves of nearby points,
// split at the median of the widest coordinate, the same on every run.
import { describe, expect, it } from 'vitest';
import { kdOrder } from '../../src/index.js';
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
