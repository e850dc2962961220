// The multiscale solver starts each softmin as soon as its own truncation pattern is built, while
// the next patterns are still being built (multiscale.ts `patterns`, sinkhorn.ts PendingPatterns):
// only the order of waiting changes, so an update and the final step (value and gradients) from
// patterns that arrive late, and in any order, are bit for bit those from ready patterns, and both
// match a dense float64 evaluation to within the truncation's error. An abort while a pattern is
// still pending rejects the update (and nothing is left unhandled).
import { describe, expect, it } from 'vitest';
import { costModel, OnlineBackend } from '../../src/geomloss/backend.js';
import { buildTree, levelOf, Slicer, truncationPattern, type Level } from '../../src/geomloss/hierarchy.js';
import {
  averageInto,
  finish,
  logWeights,
  updates,
  type PendingPatterns,
  type Patterns,
  type Problem,
} from '../../src/geomloss/sinkhorn.js';
import { swapAxes } from '../../src/index.js';
import { levelCloud, rng } from './helpers.js';

const D = 3;
const EPS = 0.002;
const TRUNCATE = 5;

/** Two levels of points (x uniform, y concentrated), tree-ordered, and their patterns. */
async function setup() {
  const r = rng(11);
  const slicer = new Slicer(undefined);
  /** The finest level of a cloud of n points, each coordinate drawn by `draw`, unit weights. */
  const points = async (name: string, n: number, draw: () => number): Promise<Level> => {
    const cloud = levelCloud(name, Float64Array.from({ length: n * D }, draw), D);
    const tree = await buildTree(cloud, new Float64Array(n).fill(1 / n), slicer);
    return levelOf(tree, tree.finest, 'float64', slicer);
  };
  const A = await points('x', 900, () => r());
  const B = await points('y', 700, () => 0.3 + 0.6 * r() * r());
  const [Nx, Ny] = [A.cloud.N, B.cloud.N];
  const backend = new OnlineBackend(costModel(2, null), 'float64', 'wasm');
  const pr: Problem = {
    backend,
    X: backend.vars(A.cloud),
    Y: backend.vars(B.cloud),
    la: logWeights(A.w),
    lb: logWeights(B.w),
  };
  // Potentials near Sinkhorn's at EPS (what truncation's bounds are made for): averaged dense steps.
  const pot = await updates(pr, null, true, EPS, 1);
  for (let k = 0; k < 10; k++) averageInto(pot, await updates(pr, pot, true, EPS, 1));
  const xy = await truncationPattern(A, pot.fBA, B, pot.gAB, EPS, 2, TRUNCATE, false, slicer);
  const xx = await truncationPattern(A, pot.fAA!, A, pot.fAA!, EPS, 2, TRUNCATE, true, slicer);
  const yy = await truncationPattern(B, pot.gBB!, B, pot.gBB!, EPS, 2, TRUNCATE, true, slicer);
  const pat: Patterns = { xy: xy.ranges, yx: swapAxes(xy.ranges), xx: xx.ranges, yy: yy.ranges };
  // Truncation must drop something here, or the check below would not involve the patterns.
  expect(xy.pairs).toBeLessThan(0.8 * Nx * Ny);
  expect(xx.pairs).toBeLessThan(0.8 * Nx * Nx);
  return { A, B, pot, pat, pr };
}

/** The same patterns, each delivered after `delays[k]` ms (xy, yx, xx, yy). */
function late(pat: Patterns, delays: number[]): PendingPatterns {
  const after = <T>(v: T, ms: number) => new Promise<T>((resolve) => setTimeout(() => resolve(v), ms));
  return {
    xy: after(pat.xy, delays[0]!),
    yx: after(pat.yx, delays[1]!),
    xx: after(pat.xx, delays[2]!),
    yy: after(pat.yy, delays[3]!),
  };
}

/** Dense float64 softmin of P's points against Q's: -eps log sum_j exp(log q_j + g_j / eps - |p - q|^2 / 2eps). */
function denseSoftmin(P: Level, Q: Level, g: Float64Array): Float64Array {
  return Float64Array.from({ length: P.cloud.N }, (_, i) => {
    const e = Array.from({ length: Q.cloud.N }, (_, j) => {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (P.cloud.data[i * D + k]! - Q.cloud.data[j * D + k]!) ** 2;
      return Math.log(Q.w[j]!) + g[j]! / EPS - d2 / (2 * EPS);
    });
    const m = Math.max(...e);
    return -EPS * (m + Math.log(e.reduce((s, v) => s + Math.exp(v - m), 0)));
  });
}

const same = (a: Float64Array | null, b: Float64Array | null) => {
  expect(a).not.toBeNull();
  expect(b).not.toBeNull();
  expect(Array.from(a!)).toEqual(Array.from(b!));
};

describe('multiscale: softmins started on pending patterns', () => {
  it('give the bits of ready patterns, and the dense float64 softmins', async () => {
    const { A, B, pot, pat, pr } = await setup();
    const ready = await updates(pr, pot, true, EPS, 1, pat);
    for (const delays of [
      [5, 0, 10, 15],
      [20, 15, 5, 0],
    ]) {
      const pending = await updates(pr, pot, true, EPS, 1, late(pat, delays));
      same(pending.fBA, ready.fBA);
      same(pending.gAB, ready.gAB);
      same(pending.fAA, ready.fAA);
      same(pending.gBB, ready.gBB);
    }
    // The reference: every pair, in float64 (the truncation drops terms below exp(-12.5) of the
    // largest, and the float64 kernel's rounding is far below that).
    const tol = 1e-6 * EPS;
    const worst = (got: Float64Array, ref: Float64Array) => Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)));
    expect(worst(ready.fBA, denseSoftmin(A, B, pot.gAB))).toBeLessThan(tol);
    expect(worst(ready.gAB, denseSoftmin(B, A, pot.fBA))).toBeLessThan(tol);
    expect(worst(ready.fAA!, denseSoftmin(A, A, pot.fAA!))).toBeLessThan(tol);
    expect(worst(ready.gBB!, denseSoftmin(B, B, pot.gBB!))).toBeLessThan(tol);
  }, 120_000);

  it('give the bits of ready patterns in the final step, gradients included', async () => {
    const { pot, pat, pr } = await setup();
    const ready = await finish(pr, pot, EPS, 1, true, pat);
    const pending = await finish(pr, pot, EPS, 1, true, late(pat, [10, 0, 5, 20]));
    for (const k of ['fBA', 'gAB', 'fAA', 'gBB'] as const) same(pending.final[k], ready.final[k]);
    for (const k of ['dFBA', 'dGAB', 'dFAA', 'dGBB'] as const) same(pending.grads![k], ready.grads![k]);
    // The gradient of f_ba at x_i is the softmax average of x_i - y_j: within the cloud's extent.
    expect(Math.max(...ready.grads!.dFBA.map(Math.abs))).toBeLessThan(1);
    expect(Math.max(...ready.grads!.dFBA.map(Math.abs))).toBeGreaterThan(0);
  }, 120_000);

  it('rejects when a pending pattern fails (an abort), with nothing left unhandled', async () => {
    const { pot, pat, pr } = await setup();
    const abort = new DOMException('aborted', 'AbortError');
    const failing: PendingPatterns = {
      xy: pat.xy,
      yx: pat.yx,
      xx: new Promise((_, reject) => setTimeout(() => reject(abort), 5)),
      yy: new Promise((_, reject) => setTimeout(() => reject(abort), 10)),
    };
    await expect(updates(pr, pot, true, EPS, 1, failing)).rejects.toBe(abort);
    // Let the second rejection and the started reductions settle: an unhandled one fails the run.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }, 120_000);
});
