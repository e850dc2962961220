// The hierarchy's truncation patterns (hierarchy.ts), checked pair by pair against the pointwise
// test in plain float64: the kept blocks never drop a pair that the pointwise truncation test keeps
// (truncation and extrapolation, p = 2 and p = 1, a level against another and against itself), on
// potentials from a dense Sinkhorn solve, and the tiles (TILE_DEPTH: 16 cells) keep fewer pairs
// than tiles of 32 cells do on the same problem; the trimmed ranges' bound (PointBounds) is above every
// pair of its cluster, each kept range ends on cells it keeps, and the divergence with the trimmed
// patterns is the dense float64 reference's at convergence (value and gradients).
import { describe, expect, it } from 'vitest';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { epsilonSchedule } from '../../src/geomloss/schedule.js';
import {
  affineBounds,
  buildTree,
  extrapolationPattern,
  levelOf,
  PointBounds,
  Slicer,
  TILE_DEPTH,
  truncationMargin,
  truncationPattern,
  type Level,
} from '../../src/geomloss/hierarchy.js';
import type { BlockRanges } from '../../src/index.js';
import { denseSamplesLoss } from '../reference/geomloss-dense.js';
import { levelCloud, rng, weights } from './helpers.js';

const cost = (d2: number, p: number) => (p === 2 ? 0.5 * d2 : Math.sqrt(Math.max(d2, 1e-8)));

function sqDist(A: Level, i: number, B: Level, j: number): number {
  const D = A.cloud.D;
  let d2 = 0;
  for (let k = 0; k < D; k++) d2 += (A.cloud.data[i * D + k]! - B.cloud.data[j * D + k]!) ** 2;
  return d2;
}

/** -eps log sum_j exp(h_j - C_ij / eps) for each row of C (n x m, row-major). */
function softminRows(C: Float64Array, n: number, m: number, h: Float64Array, eps: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let j = 0; j < m; j++) mx = Math.max(mx, h[j]! - C[i * m + j]! / eps);
    let s = 0;
    for (let j = 0; j < m; j++) s += Math.exp(h[j]! - C[i * m + j]! / eps - mx);
    out[i] = -eps * (mx + Math.log(s));
  }
  return out;
}

function costMatrix(A: Level, B: Level, p: number): Float64Array {
  const N = A.cloud.N;
  const M = B.cloud.N;
  const C = new Float64Array(N * M);
  for (let i = 0; i < N; i++) for (let j = 0; j < M; j++) C[i * M + j] = cost(sqDist(A, i, B, j), p);
  return C;
}

/** Dense symmetric Sinkhorn iterations (uniform weights) in plain float64: the potentials f on A and
 *  g on B, and the self potential s of A (f = g on A against itself). */
function denseSinkhorn(A: Level, B: Level, eps: number, p: number, iterations: number) {
  const N = A.cloud.N;
  const M = B.cloud.N;
  const C = costMatrix(A, B, p);
  const CT = new Float64Array(M * N);
  for (let i = 0; i < N; i++) for (let j = 0; j < M; j++) CT[j * N + i] = C[i * M + j]!;
  const logits = (v: Float64Array, n: number) => v.map((x) => -Math.log(n) + x / eps);
  let f = new Float64Array(N);
  let g = new Float64Array(M);
  for (let it = 0; it < iterations; it++) {
    const nf = softminRows(C, N, M, logits(g, M), eps);
    const ng = softminRows(CT, M, N, logits(f, N), eps);
    f = f.map((v, i) => 0.5 * (v + nf[i]!));
    g = g.map((v, j) => 0.5 * (v + ng[j]!));
  }
  const CA = costMatrix(A, A, p);
  let s = new Float64Array(N);
  for (let it = 0; it < iterations; it++) {
    const ns = softminRows(CA, N, N, logits(s, N), eps);
    s = s.map((v, i) => 0.5 * (v + ns[i]!));
  }
  return { f, g, s };
}

/** The cells each outer row of one axis keeps, as a mask over the inner cells (row by row). */
function rowMasks(outer: Int32Array, slices: Int32Array, red: Int32Array, nOuter: number, nInner: number) {
  const tile = new Int32Array(nOuter);
  for (let t = 0; t < slices.length; t++) for (let i = outer[2 * t]!; i < outer[2 * t + 1]!; i++) tile[i] = t;
  const mask = new Uint8Array(nInner);
  return (i: number): Uint8Array => {
    mask.fill(0);
    const t = tile[i]!;
    for (let q = t === 0 ? 0 : slices[t - 1]!; q < slices[t]!; q++) mask.fill(1, red[2 * q]!, red[2 * q + 1]!);
    return mask;
  };
}

/** How many pairs `keeps` keeps that the pattern's axis I, or its axis J, drops (both should be 0). */
function dropped(r: BlockRanges, N: number, M: number, keeps: (i: number, j: number) => boolean, axisJ = true) {
  let missed = 0;
  let pointwise = 0;
  const row = rowMasks(r.rangesI, r.slicesI, r.redRangesJ, N, M);
  for (let i = 0; i < N; i++) {
    const m = row(i);
    for (let j = 0; j < M; j++) {
      if (!keeps(i, j)) continue;
      pointwise++;
      if (!m[j]) missed++;
    }
  }
  if (axisJ) {
    const col = rowMasks(r.rangesJ, r.slicesJ, r.redRangesI, M, N);
    for (let j = 0; j < M; j++) {
      const m = col(j);
      for (let i = 0; i < N; i++) if (keeps(i, j) && !m[i]) missed++;
    }
  }
  return { missed, pointwise };
}

async function setup(D: number, tileCells = TILE_DEPTH) {
  const r = rng(40 + D);
  const x = Float64Array.from({ length: 2500 * D }, () => r());
  const y = Float64Array.from({ length: 2000 * D }, () => 0.3 + 0.6 * r() * r());
  const slicer = new Slicer(undefined);
  const tx = await buildTree(levelCloud('x', x, D), new Float64Array(2500).fill(1 / 2500), slicer);
  const ty = await buildTree(levelCloud('y', y, D), new Float64Array(2000).fill(1 / 2000), slicer);
  const A = await levelOf(tx, tx.finest, 'float64', slicer, tileCells);
  const B = await levelOf(ty, ty.finest, 'float64', slicer, tileCells);
  const Bc = await levelOf(ty, ty.finest - 1, 'float64', slicer, tileCells);
  return { A, B, Bc, slicer };
}

describe('multilevel truncation patterns keep every pair the pointwise test keeps', () => {
  it.each([
    ['3-D, p = 2', 3, 2, 0.0005],
    ['2-D, p = 2', 2, 2, 0.0002],
    ['3-D, p = 1', 3, 1, 0.002],
  ] as const)(
    '%s',
    async (_label, D, p, eps) => {
      const { A, B, Bc, slicer } = await setup(D);
      const N = A.cloud.N;
      const M = B.cloud.N;
      const { f, g, s } = denseSinkhorn(A, B, eps, p, 10);
      const margin = truncationMargin(5, eps, p);
      const C = costMatrix(A, B, p);

      // A against B: f_i + g_j - C_ij > -margin is kept on both axes.
      const xy = await truncationPattern(A, f, B, g, eps, p, 5, false, slicer);
      const byXY = dropped(xy.ranges, N, M, (i, j) => f[i]! + g[j]! - C[i * M + j]! > -margin);
      expect(byXY.missed).toBe(0);
      expect(byXY.pointwise).toBeGreaterThan(N);
      // Truncation does something here: the blocks hold a fraction of the pairs.
      expect(xy.pairs).toBeLessThan(0.75 * N * M);
      expect(xy.pairs).toBeGreaterThanOrEqual(byXY.pointwise);

      // A against itself (its softmins reduce over axis 1 only).
      const CA = costMatrix(A, A, p);
      const xx = await truncationPattern(A, s, A, s, eps, p, 5, true, slicer);
      const byXX = dropped(xx.ranges, N, N, (i, j) => s[i]! + s[j]! - CA[i * N + j]! > -margin, false);
      expect(byXX.missed).toBe(0);
      expect(xx.pairs).toBeLessThan(0.75 * N * N);

      // An extrapolation from B's coarse level to A: a term within the margin of its row's largest.
      const Mc = Bc.cloud.N;
      const cells = Bc.tree.bounds[Bc.depth]!;
      // The coarse cells' potential: the mean of g over each cell's points (any values would do).
      const gc = Float64Array.from({ length: Mc }, (_, c) => {
        let sum = 0;
        for (let k = cells[c]!; k < cells[c + 1]!; k++) sum += g[k]!;
        return sum / (cells[c + 1]! - cells[c]!);
      });
      const h = gc.map((v) => -Math.log(Mc) + v / eps);
      const Cc = costMatrix(A, Bc, p);
      const best = Float64Array.from({ length: N }, (_, i) => {
        let b = -Infinity;
        for (let j = 0; j < Mc; j++) b = Math.max(b, eps * h[j]! - Cc[i * Mc + j]!);
        return b;
      });
      const ext = await extrapolationPattern(A, Bc, h, eps, p, 5, slicer);
      const byExt = dropped(ext.ranges, N, Mc, (i, j) => eps * h[j]! - Cc[i * Mc + j]! > best[i]! - margin);
      expect(byExt.missed).toBe(0);
      expect(ext.pairs).toBeLessThan(0.9 * N * Mc);
    },
    300_000,
  );

  it('the tiles (TILE_DEPTH) keep fewer pairs than tiles of 32 cells', async () => {
    const eps = 0.0005;
    const fine = await setup(3);
    const wide = await setup(3, 5);
    const { f, g } = denseSinkhorn(fine.A, fine.B, eps, 2, 10);
    // The same points in the same tree order: the same potentials apply to both.
    expect(Array.from(wide.A.cloud.data)).toEqual(Array.from(fine.A.cloud.data));
    const small = await truncationPattern(fine.A, f, fine.B, g, eps, 2, 5, false, fine.slicer);
    const large = await truncationPattern(wide.A, f, wide.B, g, eps, 2, 5, false, wide.slicer);
    expect(TILE_DEPTH).toBeLessThan(5);
    expect(fine.A.tileRanges.length / 2).toBeGreaterThanOrEqual(1.5 * (wide.A.tileRanges.length / 2));
    expect(small.pairs).toBeLessThan(0.85 * large.pairs);
  }, 300_000);
});

/** The largest f_i + g_j - C_ij over the rows i of each cluster of `outer` (dense, float64). */
function clusterMax(outer: Int32Array, f: Float64Array, g: Float64Array, C: Float64Array, M: number) {
  const T = outer.length / 2;
  const out = new Float64Array(T * M).fill(-Infinity);
  for (let t = 0; t < T; t++)
    for (let i = outer[2 * t]!; i < outer[2 * t + 1]!; i++)
      for (let j = 0; j < M; j++) out[t * M + j] = Math.max(out[t * M + j]!, f[i]! + g[j]! - C[i * M + j]!);
  return out;
}

/** The ranges of one axis whose first or last cell the point bound drops (0 after trimAxis). */
function untrimmedEnds(slices: Int32Array, red: Int32Array, pb: PointBounds, limit: number): number {
  let bad = 0;
  for (let t = 0, q = 0; t < slices.length; t++)
    for (; q < slices[t]!; q++)
      if (!(pb.bound(t, red[2 * q]!) > limit && pb.bound(t, red[2 * q + 1]! - 1) > limit)) bad++;
  return bad;
}

describe('trimmed ranges (hierarchy.ts PointBounds, trimAxis)', () => {
  it.each([
    ['p = 2', 2, 0.0005],
    ['p = 1', 1, 0.002],
  ] as const)(
    '%s: the point bound holds pair by pair and every kept range ends on cells it keeps',
    async (_label, p, eps) => {
      const { A, B, slicer } = await setup(3);
      const N = A.cloud.N;
      const M = B.cloud.N;
      const { f, g } = denseSinkhorn(A, B, eps, p, 10);
      const limit = -truncationMargin(5, eps, p);
      const C = costMatrix(A, B, p);
      const CT = new Float64Array(M * N);
      for (let i = 0; i < N; i++) for (let j = 0; j < M; j++) CT[j * N + i] = C[i * M + j]!;
      const FA = await affineBounds(f, A, slicer);
      const GB = await affineBounds(g, B, slicer);
      const pbI = new PointBounds(A, FA, A.tileDepth, B.cloud.data, g, p);
      const pbJ = new PointBounds(B, GB, B.tileDepth, A.cloud.data, f, p);
      // Sound: above the exact largest term of the cluster's rows, for every cluster and cell.
      for (const [pb, outer, exact, m] of [
        [pbI, A.tileRanges, clusterMax(A.tileRanges, f, g, C, M), M],
        [pbJ, B.tileRanges, clusterMax(B.tileRanges, g, f, CT, N), N],
      ] as const) {
        let below = 0;
        let tight = 0;
        for (let t = 0; t < outer.length / 2; t++)
          for (let j = 0; j < m; j++) {
            const u = pb.bound(t, j);
            const e = exact[t * m + j]!;
            if (!(u >= e - 1e-12 * Math.abs(e))) below++;
            if (u - e < 0.5 * -limit) tight++;
          }
        expect(below).toBe(0);
        // And useful for p = 2 (p = 1 has only the maxima's bound): within half the margin of the
        // exact value on a fair share of the pairs.
        if (p === 2) expect(tight).toBeGreaterThan(0.05 * (outer.length / 2) * m);
      }
      const xy = await truncationPattern(A, f, B, g, eps, p, 5, false, slicer);
      const r = xy.ranges;
      expect(Array.from(r.rangesI)).toEqual(Array.from(A.tileRanges));
      expect(untrimmedEnds(r.slicesI, r.redRangesJ, pbI, limit)).toBe(0);
      expect(untrimmedEnds(r.slicesJ, r.redRangesI, pbJ, limit)).toBe(0);
      // Every pair above the margin is still kept on both axes.
      expect(dropped(r, N, M, (i, j) => f[i]! + g[j]! - C[i * M + j]! > limit).missed).toBe(0);
    },
    300_000,
  );

  it('the divergence on trimmed patterns is the dense float64 reference at convergence', async () => {
    // A slab 3 long: the tiles are small against it, so that truncation and trimming act at a blur
    // where float64 Sinkhorn converges in under 2000 iterations.
    const r = rng(77);
    const n = 400;
    const m = 300;
    const x = Array.from({ length: n }, () => [3 * r(), r(), r()]);
    const y = Array.from({ length: m }, () => [3 * (0.2 + 0.6 * r() * r()), 0.1 + 0.8 * r(), 0.3 + 0.5 * r()]);
    const a = weights(r, n);
    const b = weights(r, m);
    const blur = 0.15;
    const loss = new SamplesLoss({
      loss: 'sinkhorn',
      p: 2,
      blur,
      scaling: 0.5,
      dtype: 'float64',
      backend: 'multiscale',
      convergence: { tol: 1e-8, maxIter: 2000 },
    });
    const got = await loss.valueAndGrad(x, y, { a, b });
    expect(got.info.converged).toBe(true);
    // Truncation acts on the points: the final blocks hold a fraction of the pairs.
    const density = got.info.multiscale!.density;
    expect(density.xy).toBeLessThan(0.95);
    expect(density.xx!).toBeLessThan(0.9);
    const schedule = epsilonSchedule(2, Math.sqrt(11), blur, 0.5);
    const final = schedule[schedule.length - 1]!;
    const ref = denseSamplesLoss(x, y, a, b, {
      loss: 'sinkhorn',
      p: 2,
      blur,
      reach: null,
      diameter: null,
      scaling: 0.5,
      debias: true,
      epsList: [...schedule, ...new Array<number>(got.info.iterations + 500).fill(final)],
    });
    expect(Math.abs(got.value - ref.value) / Math.abs(ref.value)).toBeLessThan(1e-6);
    const relMax = (gotV: ArrayLike<number>, want: number[]) => {
      let d = 0;
      let s = 0;
      for (let k = 0; k < want.length; k++) {
        d = Math.max(d, Math.abs(gotV[k]! - want[k]!));
        s = Math.max(s, Math.abs(want[k]!));
      }
      return d / s;
    };
    expect(relMax(got.grad.x.data, ref.gradX.flat())).toBeLessThan(1e-4);
    expect(relMax(got.grad.y.data, ref.gradY.flat())).toBeLessThan(1e-4);
  }, 300_000);
});
