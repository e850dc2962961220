// A truncation pattern built with a slack (hierarchy.ts truncationPattern, reused by multiscale.ts
// across the updates of one temperature) keeps, for every potentials within the slack of the ones it
// was built from, every pair that the pointwise truncation test keeps: checked pair by pair against
// a dense float64 evaluation, on a uniform cloud against a concentrated one (xy) and on each cloud
// against itself (xx, yy), with the potentials moved up to the slack in the worst direction (all up)
// and at random. A pattern rebuilt from the previous one on the same levels (truncationPattern's
// `prior`, used by multiscale.ts from one temperature to the next): where the potentials moved by
// less than the two limits' difference only the previous pattern's blocks are re-tested, and the
// pattern still keeps every pair that the pointwise test keeps (both axes); where they moved more,
// every cluster is walked as without a prior and the pattern is the plain rebuild's, block for block.
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildTree,
  levelOf,
  Slicer,
  truncationMargin,
  truncationPattern,
  type Level,
  type ProfileRecord,
} from '../../src/geomloss/hierarchy.js';
import type { BlockRanges } from '../../src/index.js';
import { levelCloud, rng } from './helpers.js';

/** The p = 2 cost matrix of two levels' cells, row-major, in float64. */
function costMatrix(A: Level, B: Level): Float64Array {
  const D = A.cloud.D;
  const N = A.cloud.N;
  const M = B.cloud.N;
  const C = new Float64Array(N * M);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < M; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (A.cloud.data[i * D + k]! - B.cloud.data[j * D + k]!) ** 2;
      C[i * M + j] = 0.5 * d2;
    }
  return C;
}

/** Dense averaged Sinkhorn iterations (uniform weights) in float64 from (f0, g0) (zero unless
 *  given): potentials f on A, g on B. */
function denseSinkhorn(
  C: Float64Array,
  N: number,
  M: number,
  eps: number,
  iterations: number,
  f0 = new Float64Array(N),
  g0 = new Float64Array(M),
) {
  const softmin = (h: Float64Array, n: number, m: number, at: (i: number, j: number) => number) =>
    Float64Array.from({ length: n }, (_, i) => {
      let mx = -Infinity;
      for (let j = 0; j < m; j++) mx = Math.max(mx, h[j]! - at(i, j) / eps);
      let s = 0;
      for (let j = 0; j < m; j++) s += Math.exp(h[j]! - at(i, j) / eps - mx);
      return -eps * (mx + Math.log(s));
    });
  let f = f0;
  let g = g0;
  for (let it = 0; it < iterations; it++) {
    const nf = softmin(
      g.map((v) => -Math.log(M) + v / eps),
      N,
      M,
      (i, j) => C[i * M + j]!,
    );
    const ng = softmin(
      f.map((v) => -Math.log(N) + v / eps),
      M,
      N,
      (j, i) => C[i * M + j]!,
    );
    f = f.map((v, i) => 0.5 * (v + nf[i]!));
    g = g.map((v, j) => 0.5 * (v + ng[j]!));
  }
  return { f, g };
}

/** Pairs (i, j) that `keeps` keeps and the pattern's axis I (and, when asked, axis J) drops. */
function missed(r: BlockRanges, N: number, M: number, keeps: (i: number, j: number) => boolean, axisJ: boolean) {
  let count = 0;
  let pointwise = 0;
  const axis = (outer: Int32Array, slices: Int32Array, red: Int32Array, n: number, m: number, swap: boolean) => {
    const mask = new Uint8Array(m);
    for (let t = 0; t < slices.length; t++) {
      mask.fill(0);
      for (let q = t === 0 ? 0 : slices[t - 1]!; q < slices[t]!; q++) mask.fill(1, red[2 * q]!, red[2 * q + 1]!);
      for (let i = outer[2 * t]!; i < outer[2 * t + 1]!; i++)
        for (let j = 0; j < m; j++) {
          if (!(swap ? keeps(j, i) : keeps(i, j))) continue;
          if (!swap) pointwise++;
          if (!mask[j]) count++;
        }
    }
    expect(outer[outer.length - 1]).toBe(n);
  };
  axis(r.rangesI, r.slicesI, r.redRangesJ, N, M, false);
  if (axisJ) axis(r.rangesJ, r.slicesJ, r.redRangesI, M, N, true);
  return { count, pointwise };
}

const PROFILE_KEY = Symbol.for('lazytensor.multilevel.profile');

/** Runs `build` with the hierarchy's profiling hook installed; returns its result and the records. */
async function profiled<T>(build: () => Promise<T>): Promise<{ out: T; records: ProfileRecord[] }> {
  const records: ProfileRecord[] = [];
  (globalThis as Record<symbol, unknown>)[PROFILE_KEY] = (r: ProfileRecord) => records.push(r);
  try {
    return { out: await build(), records };
  } finally {
    delete (globalThis as Record<symbol, unknown>)[PROFILE_KEY];
  }
}

afterEach(() => {
  delete (globalThis as Record<symbol, unknown>)[PROFILE_KEY];
});

const sameRanges = (a: BlockRanges, b: BlockRanges): boolean =>
  (['rangesI', 'slicesI', 'redRangesJ', 'rangesJ', 'slicesJ', 'redRangesI'] as const).every(
    (k) => a[k].length === b[k].length && a[k].every((v, i) => v === b[k][i]),
  );

/** The points' levels of a uniform 3-D cloud (1500 points) and a concentrated one (1200), and the
 *  generator that drew them. */
async function clouds(seed: number) {
  const D = 3;
  const r = rng(seed);
  const Nx = 1500;
  const Ny = 1200;
  const x = Float64Array.from({ length: Nx * D }, () => r());
  const y = Float64Array.from({ length: Ny * D }, () => 0.3 + 0.6 * r() * r());
  const slicer = new Slicer(undefined);
  const tx = await buildTree(levelCloud('x', x, D), new Float64Array(Nx).fill(1 / Nx), slicer);
  const ty = await buildTree(levelCloud('y', y, D), new Float64Array(Ny).fill(1 / Ny), slicer);
  const A = await levelOf(tx, tx.finest, 'float64', slicer);
  const B = await levelOf(ty, ty.finest, 'float64', slicer);
  return { r, Nx, Ny, slicer, A, B };
}

describe('a truncation pattern built with a slack holds for potentials within it', () => {
  it('xy, xx and yy on a uniform and a concentrated 3-D cloud, p = 2', async () => {
    const { r, Nx, Ny, slicer, A, B } = await clouds(7);
    const eps = 0.0005;
    const margin = truncationMargin(5, eps, 2);
    const slack = 0.2 * margin;
    const C = costMatrix(A, B);
    const { f, g } = denseSinkhorn(C, Nx, Ny, eps, 10);
    const CA = costMatrix(A, A);
    const CB = costMatrix(B, B);
    const sa = denseSinkhorn(CA, Nx, Nx, eps, 10).f;
    const sb = denseSinkhorn(CB, Ny, Ny, eps, 10).f;

    const xy = await truncationPattern(A, f, B, g, eps, 2, 5, false, slicer, slack);
    const xx = await truncationPattern(A, sa, A, sa, eps, 2, 5, true, slicer, slack);
    const yy = await truncationPattern(B, sb, B, sb, eps, 2, 5, true, slicer, slack);
    // The slack keeps more: a superset of the pattern without it.
    const plain = await truncationPattern(A, f, B, g, eps, 2, 5, false, slicer);
    expect(xy.pairs).toBeGreaterThan(plain.pairs);
    // Truncation still does something with the slack.
    expect(xy.pairs).toBeLessThan(0.75 * Nx * Ny);
    expect(xx.pairs).toBeLessThan(0.75 * Nx * Nx);

    // Moved potentials: all up by the largest share of the slack (the worst case: every pair's
    // exponent rises by the slack), and at random within it.
    const moves: [string, (n: number, share: number) => Float64Array][] = [
      ['up', (n, share) => new Float64Array(n).fill(share * slack)],
      ['random', (n, share) => Float64Array.from({ length: n }, () => share * slack * (2 * r() - 1))],
    ];
    for (const [, move] of moves) {
      const df = move(Nx, 0.5);
      const dg = move(Ny, 0.5);
      const f2 = f.map((v, i) => v + df[i]!);
      const g2 = g.map((v, j) => v + dg[j]!);
      const byXY = missed(xy.ranges, Nx, Ny, (i, j) => f2[i]! + g2[j]! - C[i * Ny + j]! > -margin, true);
      expect(byXY.count).toBe(0);
      expect(byXY.pointwise).toBeGreaterThan(Nx);
      const sa2 = sa.map((v, i) => v + df[i]!);
      const sb2 = sb.map((v, j) => v + dg[j]!);
      const byXX = missed(xx.ranges, Nx, Nx, (i, j) => sa2[i]! + sa2[j]! - CA[i * Nx + j]! > -margin, false);
      const byYY = missed(yy.ranges, Ny, Ny, (i, j) => sb2[i]! + sb2[j]! - CB[i * Ny + j]! > -margin, false);
      expect(byXX.count).toBe(0);
      expect(byYY.count).toBe(0);
      expect(byYY.pointwise).toBeGreaterThan(Ny);
    }
    // The check detects drops: potentials moved far beyond any slack (each up by the margin) need
    // pairs that the pattern built without a slack drops.
    const byFar = missed(plain.ranges, Nx, Ny, (i, j) => f[i]! + g[j]! + 2 * margin - C[i * Ny + j]! > -margin, false);
    expect(byFar.count).toBeGreaterThan(0);
  }, 300_000);
});

describe('a truncation pattern rebuilt from the previous one', () => {
  it('keeps every pointwise-kept pair at the next temperature and walks where the potentials moved too far', async () => {
    const { Nx, Ny, slicer, A, B } = await clouds(11);
    const C = costMatrix(A, B);
    const CA = costMatrix(A, A);
    // Two temperatures of a schedule (scaling 0.5), one averaged update apart, as on the points'
    // level of the multiscale loop; the first is warmed up so that the update is a late one.
    const eps = 0.001;
    const before = denseSinkhorn(C, Nx, Ny, eps, 8);
    const after = denseSinkhorn(C, Nx, Ny, eps, 1, before.f, before.g);
    const sBefore = denseSinkhorn(CA, Nx, Nx, eps, 8).f;
    const sAfter = denseSinkhorn(CA, Nx, Nx, eps, 1, sBefore, sBefore).f;
    const next = eps / 2;
    const margin = truncationMargin(5, next, 2);

    const xy0 = await truncationPattern(A, before.f, B, before.g, eps, 2, 5, false, slicer);
    const xx0 = await truncationPattern(A, sBefore, A, sBefore, eps, 2, 5, true, slicer);
    const prior = { pattern: xy0, f: before.f, g: before.g };
    const { out: xy, records } = await profiled(() =>
      truncationPattern(A, after.f, B, after.g, next, 2, 5, false, slicer, 0, prior),
    );
    const xx = await profiled(() =>
      truncationPattern(A, sAfter, A, sAfter, next, 2, 5, true, slicer, 0, { pattern: xx0, f: sBefore, g: sBefore }),
    );
    const clusters = xy0.ranges.slicesI.length;
    // The update moved the potentials by less than the limits' difference (a quarter of the first
    // margin): most clusters re-test the previous blocks rather than walk.
    expect(records[0]!.incremental).toBeGreaterThan(0.5 * clusters);
    expect(xx.records[0]!.incremental).toBeGreaterThan(0.5 * clusters);
    const byXY = missed(xy.ranges, Nx, Ny, (i, j) => after.f[i]! + after.g[j]! - C[i * Ny + j]! > -margin, true);
    expect(byXY.count).toBe(0);
    expect(byXY.pointwise).toBeGreaterThan(Nx);
    const byXX = missed(xx.out.ranges, Nx, Nx, (i, j) => sAfter[i]! + sAfter[j]! - CA[i * Nx + j]! > -margin, false);
    expect(byXX.count).toBe(0);
    expect(byXX.pointwise).toBeGreaterThan(Nx);
    // About as tight as the plain rebuild (it tests the same tiles the walk reaches).
    const plain = await truncationPattern(A, after.f, B, after.g, next, 2, 5, false, slicer);
    expect(xy.pairs).toBeLessThan(1.05 * plain.pairs);
    expect(xy.pairs).toBeLessThan(xy0.pairs);

    // Potentials moved beyond the limits' difference (up by the first margin) on every cluster: no
    // cluster holds, each is walked, and the pattern is the plain rebuild's block for block.
    const up = truncationMargin(5, eps, 2);
    const fUp = after.f.map((v) => v + up);
    const far = await profiled(() => truncationPattern(A, fUp, B, after.g, next, 2, 5, false, slicer, 0, prior));
    expect(far.records[0]!.incremental).toBe(0);
    const farPlain = await truncationPattern(A, fUp, B, after.g, next, 2, 5, false, slicer);
    expect(sameRanges(far.out.ranges, farPlain.ranges)).toBe(true);
    const byFar = missed(far.out.ranges, Nx, Ny, (i, j) => fUp[i]! + after.g[j]! - C[i * Ny + j]! > -margin, true);
    expect(byFar.count).toBe(0);
    // A NaN potential holds nowhere either (walked, as without a prior).
    const fNaN = Float64Array.from(after.f);
    fNaN[0] = NaN;
    const nan = await profiled(() => truncationPattern(A, fNaN, B, after.g, next, 2, 5, false, slicer, 0, prior));
    expect(nan.records[0]!.incremental).toBeLessThan(clusters);
  }, 300_000);
});
