// Block-sparse reductions equal the dense reduction restricted to the kept blocks.
import { describe, expect, it } from 'vitest';
import { Vi, Vj, clusterRangesCentroids, fromMatrix, gridCluster, sortClusters, swapAxes } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { rng, uniformRows } from './helpers/random.js';

describe('clustering helpers', () => {
  it('gridCluster labels cells in lexicographic order; sortClusters and clusterRangesCentroids agree', () => {
    const pts = [
      [0.1, 0.1],
      [0.9, 0.2],
      [0.15, 0.05],
      [0.6, 0.7],
      [0.95, 0.1],
    ];
    const labels = gridCluster(pts, 0.5);
    // cells (0,0), (1,0), (0,0), (1,1), (1,0) in lexicographic order: (0,0) -> 0, (1,0) -> 1, (1,1) -> 2
    expect(Array.from(labels)).toEqual([0, 1, 0, 2, 1]);
    const sorted = sortClusters(pts, labels);
    expect(Array.from(sorted.labels)).toEqual([0, 0, 1, 1, 2]);
    expect(Array.from(sorted.permutation)).toEqual([0, 2, 1, 4, 3]);
    const { ranges, centroids, weights } = clusterRangesCentroids(sorted.points, sorted.labels, undefined, 2);
    expect(Array.from(ranges)).toEqual([0, 2, 2, 4, 4, 5]);
    expect(Array.from(weights)).toEqual([2, 2, 1]);
    expectClose(centroids, [0.125, 0.075, 0.925, 0.15, 0.6, 0.7], 1e-14);
    expect(() => clusterRangesCentroids(pts, labels)).toThrow(/labels must be sorted/);
    expect(() => gridCluster(pts, 0)).toThrow(/voxelSize must be a positive number/);
  });

  it('fromMatrix and swapAxes build both axes of the pattern', () => {
    const ri = Int32Array.from([0, 2, 2, 5]);
    const rj = Int32Array.from([0, 3, 3, 4, 4, 9]);
    const r = fromMatrix(ri, rj, [true, false, true, false, true, false]);
    expect(Array.from(r.slicesI)).toEqual([2, 3]);
    expect(Array.from(r.redRangesJ)).toEqual([0, 3, 4, 9, 3, 4]);
    expect(Array.from(r.slicesJ)).toEqual([1, 2, 3]);
    expect(Array.from(r.redRangesI)).toEqual([0, 2, 2, 5, 0, 2]);
    const s = swapAxes(r);
    expect(s.rangesI).toBe(rj);
    expect(s.redRangesJ).toBe(r.redRangesI);
    expect(() => fromMatrix(ri, rj, [true])).toThrow(/keep has 1 entries, expected 2 x 3/);
  });
});

describe.each(['float32', 'float64'] as const)('block-sparse reductions (%s)', (dtype) => {
  it('equal the dense reduction restricted to the kept blocks, on both axes and several reductions', async () => {
    const random = rng(21);
    const N = 700;
    const M = 900;
    const xs = uniformRows(random, N, 2, 0, 1);
    const ys = uniformRows(random, M, 2, 0, 1);
    const sx = sortClusters(xs, gridCluster(xs, 0.25));
    const sy = sortClusters(ys, gridCluster(ys, 0.25));
    const cx = clusterRangesCentroids(sx.points, sx.labels, undefined, 2);
    const cy = clusterRangesCentroids(sy.points, sy.labels, undefined, 2);
    const Ci = cx.ranges.length / 2;
    const Cj = cy.ranges.length / 2;
    const keep: boolean[] = [];
    for (let a = 0; a < Ci; a++) {
      for (let b = 0; b < Cj; b++) {
        const d2 =
          (cx.centroids[2 * a]! - cy.centroids[2 * b]!) ** 2 +
          (cx.centroids[2 * a + 1]! - cy.centroids[2 * b + 1]!) ** 2;
        keep.push(d2 < 0.16);
      }
    }
    const ranges = fromMatrix(cx.ranges, cy.ranges, keep);
    const X = dtype === 'float32' ? Float32Array.from(sx.points) : Float64Array.from(sx.points);
    const Y = dtype === 'float32' ? Float32Array.from(sy.points) : Float64Array.from(sy.points);
    const x = Vi(X, 2);
    const y = Vj(Y, 2);
    const F = x.sqDist(y).mul(-20).exp();
    const clusterOf = (ranges: Int32Array, n: number) => {
      const out = new Int32Array(n);
      for (let c = 0; c < ranges.length / 2; c++) for (let i = ranges[2 * c]!; i < ranges[2 * c + 1]!; i++) out[i] = c;
      return out;
    };
    const ci = clusterOf(cx.ranges, N);
    const cj = clusterOf(cy.ranges, M);
    const kept = (i: number, j: number) => keep[ci[i]! * Cj + cj[j]!]!;
    const d2 = (i: number, j: number) => (X[2 * i]! - Y[2 * j]!) ** 2 + (X[2 * i + 1]! - Y[2 * j + 1]!) ** 2;
    const f = (i: number, j: number) => Math.exp(-20 * d2(i, j));
    const rtol = dtype === 'float32' ? 2e-5 : 1e-12;
    for (const axis of [1, 0] as const) {
      const [nO, nI] = axis === 1 ? [N, M] : [M, N];
      const at = (o: number, r: number) => (axis === 1 ? [o, r] : [r, o]) as [number, number];
      const sum = await F.sum(axis, { ranges });
      const lse = await x.sqDist(y).mul(-20).logSumExp(axis, { ranges });
      const arg = await x.sqDist(y).argMin(axis, { ranges });
      const wantSum: number[] = [];
      const wantLse: number[] = [];
      const wantArg: number[] = [];
      for (let o = 0; o < nO; o++) {
        let s = 0;
        let best = Infinity;
        let bestAt = -1;
        for (let r = 0; r < nI; r++) {
          const [i, j] = at(o, r);
          if (!kept(i, j)) continue;
          const v = f(i, j);
          s += v;
          const d = d2(i, j);
          if (d < best) {
            best = d;
            bestAt = r;
          }
        }
        wantSum.push(s);
        wantLse.push(s === 0 ? -Infinity : Math.log(s));
        wantArg.push(bestAt);
      }
      expectClose(sum.data, wantSum, rtol, 1e-6);
      expectClose(lse.data, wantLse, rtol, 1e-5);
      // argMin over the kept blocks: compare distances (float32 may swap exact near-ties).
      let mismatches = 0;
      for (let o = 0; o < nO; o++) if (arg.data[o] !== wantArg[o]) mismatches++;
      expect(mismatches).toBeLessThanOrEqual(dtype === 'float32' ? 2 : 0);
    }
  });
});
