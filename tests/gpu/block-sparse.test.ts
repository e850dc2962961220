// Block-sparse reductions (plan.ranges) on WebGPU agree with the WebAssembly engine: clusters with
// several inner ranges (not sorted, not tile-aligned), overlapping clusters (the last one wins),
// clusters without ranges and rows no cluster covers (the reduction of an empty set).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  clusterRangesCentroids,
  fromMatrix,
  gridCluster,
  sortClusters,
  Vi,
  Vj,
  type BlockRanges,
  type LazyTensor,
} from '../../src/index.js';
import type { ReductionKind } from '../../src/core/reduction.js';
import { planSparse, WebGPUEngine } from '../../src/gpu/engine.js';
import { configureWebGPU, webgpuTesting } from '../../src/runtime/index.js';
import { expectClose } from '../helpers/expect.js';
import { rng, typed, uniformRows } from '../helpers/random.js';
import { expectGpu, hasGpu } from './setup.js';

const I32 = (...v: number[]) => Int32Array.from(v);
const N = 300;
const M = 400;
const RANGES: BlockRanges = {
  rangesI: I32(0, 50, 50, 120, 140, 300, 100, 130, 290, 300),
  slicesI: I32(2, 3, 5, 6, 6),
  redRangesJ: I32(0, 100, 350, 400, 90, 210, 200, 400, 0, 10, 5, 395),
  rangesJ: I32(0, 200, 200, 400, 390, 400),
  slicesJ: I32(1, 3, 3),
  redRangesI: I32(0, 150, 100, 300, 0, 20),
};

const KINDS: [ReductionKind, number][] = [
  ['sum', 0],
  ['logSumExp', 0],
  ['logSumExpWeighted', 0],
  ['sumSoftMaxWeight', 0],
  ['min', 0],
  ['max', 0],
  ['argMin', 0],
  ['argMax', 0],
  ['minArgMin', 0],
  ['maxArgMax', 0],
  ['kMin', 4],
  ['argKMin', 4],
  ['kMinArgKMin', 4],
];

async function run(
  kind: ReductionKind,
  K: number,
  F: LazyTensor,
  axis: 0 | 1,
  w: LazyTensor,
  engine: 'wasm' | 'webgpu',
  ranges: BlockRanges,
) {
  const o = { engine, ranges };
  const both = (r: {
    values: { data: ArrayLike<number>; engine: string };
    indices: { data: ArrayLike<number>; engine: string };
  }) => ({ values: r.values, indices: r.indices });
  switch (kind) {
    case 'sum':
      return { values: await F.sum(axis, o), indices: null };
    case 'logSumExp':
      return { values: await F.logSumExp(axis, o), indices: null };
    case 'logSumExpWeighted':
      return { values: await F.logSumExp(axis, { ...o, weight: w }), indices: null };
    case 'sumSoftMaxWeight':
      return { values: await F.sumSoftMaxWeight(axis, w, o), indices: null };
    case 'min':
      return { values: await F.min(axis, o), indices: null };
    case 'max':
      return { values: await F.max(axis, o), indices: null };
    case 'argMin':
      return { values: null, indices: await F.argMin(axis, o) };
    case 'argMax':
      return { values: null, indices: await F.argMax(axis, o) };
    case 'minArgMin':
      return both(await F.minArgMin(axis, o));
    case 'maxArgMax':
      return both(await F.maxArgMax(axis, o));
    case 'kMin':
      return { values: await F.kMin(K, axis, o), indices: null };
    case 'argKMin':
      return { values: null, indices: await F.argKMin(K, axis, o) };
    default:
      return both(await F.kMinArgKMin(K, axis, o));
  }
}

describe('planSparse', () => {
  const limits = {
    maxStorageBufferBindingSize: 2 ** 30,
    maxBufferSize: 2 ** 30,
    maxComputeWorkgroupsPerDimension: 3,
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupStorageSize: 32768,
    minUniformBufferOffsetAlignment: 256,
    maxPairsPerDispatch: 2 ** 30,
  };
  it('gives each row to the last cluster covering it, in items of one workgroup at most', () => {
    const p = planSparse({ outer: RANGES.rangesI, slices: RANGES.slicesI, inner: RANGES.redRangesJ }, N, 64, limits);
    expect(p.uncovered).toEqual([[130, 140]]);
    const rows = new Int32Array(N).fill(-1);
    for (let q = 0; q < p.items.length; q += 4) {
      const [a, n, r0, r1] = Array.from(p.items.subarray(q, q + 4)) as [number, number, number, number];
      expect(n).toBeLessThanOrEqual(64);
      for (let i = a; i < a + n; i++) rows[i] = r0 * 100 + r1;
    }
    expect(rows[0]).toBe(2); // cluster 0: ranges [0, 2)
    expect(rows[99]).toBe(203); // cluster 1: [2, 3)
    expect(rows[100]).toBe(506); // cluster 3 overlaps 1 and 2 and comes later: [5, 6)
    expect(rows[129]).toBe(506);
    expect(rows[160]).toBe(305); // cluster 2: [3, 5)
    expect(rows[295]).toBe(606); // cluster 4 overlaps 2: no ranges
    expect(rows[130]).toBe(-1); // no cluster
    expect(p.dispatches.every(([, n]) => n <= 3)).toBe(true);
    expect(p.dispatches.reduce((s, [, n]) => s + n, 0)).toBe(p.items.length / 4);
  });
});

describe.skipIf(!hasGpu)('WebGPU block-sparse reductions', () => {
  const random = rng(31);
  const xs = uniformRows(random, N, 3);
  const ys = uniformRows(random, M, 3);
  const bs = uniformRows(random, M, 2, 0.1, 1);
  const x = Vi(typed(xs, 'float32'), 3);
  const y = Vj(typed(ys, 'float32'), 3);
  const b = Vj(typed(bs, 'float32'), 2);

  it.each(KINDS)('%s agrees with the WebAssembly engine on both axes', async (kind, K) => {
    const F = kind.startsWith('k') || kind.startsWith('arg') ? x.sqDist(y) : x.sqDist(y).mul(-3);
    for (const axis of [1, 0] as const) {
      const w = axis === 1 ? b : x.abs();
      const a = await run(kind, K, F, axis, w, 'wasm', RANGES);
      const g = await run(kind, K, F, axis, w, 'webgpu', RANGES);
      if (g.values) expectGpu(g.values, kind);
      if (g.indices) expectGpu(g.indices, kind);
      if (a.values)
        expectClose(g.values!.data, Array.from(a.values.data), 1e-5, 1e-6, undefined, `${kind} axis ${axis}`);
      if (a.indices) expect(Array.from(g.indices!.data), `${kind} axis ${axis}`).toEqual(Array.from(a.indices.data));
    }
  });

  it('a clustered problem (gridCluster, fromMatrix) agrees with the WebAssembly engine', async () => {
    const r = rng(5);
    const px = uniformRows(r, 700, 2, 0, 1);
    const py = uniformRows(r, 900, 2, 0, 1);
    const sx = sortClusters(px, gridCluster(px, 0.25));
    const sy = sortClusters(py, gridCluster(py, 0.25));
    const cx = clusterRangesCentroids(sx.points, sx.labels, undefined, 2);
    const cy = clusterRangesCentroids(sy.points, sy.labels, undefined, 2);
    const keep: boolean[] = [];
    for (let a = 0; a < cx.ranges.length / 2; a++) {
      for (let c = 0; c < cy.ranges.length / 2; c++) {
        keep.push(
          (cx.centroids[2 * a]! - cy.centroids[2 * c]!) ** 2 +
            (cx.centroids[2 * a + 1]! - cy.centroids[2 * c + 1]!) ** 2 <
            0.16,
        );
      }
    }
    const ranges = fromMatrix(cx.ranges, cy.ranges, keep);
    const X = Vi(Float32Array.from(sx.points), 2);
    const Y = Vj(Float32Array.from(sy.points), 2);
    for (const axis of [1, 0] as const) {
      const F = X.sqDist(Y).mul(-20).exp();
      const g = await F.sum(axis, { engine: 'webgpu', ranges });
      expectGpu(g);
      const a = await F.sum(axis, { engine: 'wasm', ranges });
      expectClose(g.data, Array.from(a.data), 2e-5, 1e-7);
      const kg = await X.sqDist(Y).argKMin(3, axis, { engine: 'webgpu', ranges });
      const ka = await X.sqDist(Y).argKMin(3, axis, { engine: 'wasm', ranges });
      expect(Array.from(kg.data)).toEqual(Array.from(ka.data));
    }
  });

  it('arrays wider than a binding: the reduction falls back to WebAssembly with a warning', async () => {
    const device = (await webgpuTesting.engine())!.device;
    const engine = new WebGPUEngine(device, { cpuAdapter: true, limits: { maxStorageBufferBindingSize: 1024 } });
    await expect(engine.reduce(x.sqDist(y).plan('sum', 1, { ranges: RANGES }))).rejects.toThrow(
      /block-sparse reductions on WebGPU bind whole arrays/,
    );
    engine.trim();
    // Through the runtime: the result comes from WebAssembly, with one warning.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    configureWebGPU({ limits: { maxStorageBufferBindingSize: 1024 } });
    try {
      const got = await x.sqDist(y).sum(1, { engine: 'webgpu', ranges: RANGES });
      expect(got.engine).toBe('wasm');
      expect(Array.from(got.data)).toEqual(
        Array.from((await x.sqDist(y).sum(1, { engine: 'wasm', ranges: RANGES })).data),
      );
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/the WebGPU engine failed .*bind whole arrays/);
    } finally {
      configureWebGPU({ limits: undefined });
      warn.mockRestore();
    }
  });

  describe('staged kernels and small dispatches', () => {
    let engine: WebGPUEngine;
    beforeAll(async () => {
      const device = (await webgpuTesting.engine())!.device;
      engine = new WebGPUEngine(device, {
        staging: 'always',
        workgroupSize: 32,
        cpuAdapter: true,
        limits: { maxComputeWorkgroupsPerDimension: 2, maxPairsPerDispatch: 5000 },
      });
    });
    afterAll(() => engine.trim());

    it.each(KINDS)('%s', async (kind, K) => {
      const F = kind.startsWith('k') || kind.startsWith('arg') ? x.sqDist(y) : x.sqDist(y).mul(-3);
      for (const axis of [1, 0] as const) {
        const w = axis === 1 ? b : x.abs();
        const plan = F.plan(
          kind,
          axis,
          { ranges: RANGES },
          undefined,
          kind === 'logSumExpWeighted' || kind === 'sumSoftMaxWeight' ? w : undefined,
          K,
        );
        expect(engine.configFor(plan).staged).toBe(true);
        const before = engine.stats.dispatches;
        const got = await engine.reduce(plan);
        expect(engine.stats.dispatches - before).toBeGreaterThan(2);
        const a = await run(kind, K, F, axis, w, 'wasm', RANGES);
        if (a.values)
          expectClose(got.values!, Array.from(a.values.data), 1e-5, 1e-6, undefined, `${kind} axis ${axis}`);
        if (a.indices) expect(Array.from(got.indices!), `${kind} axis ${axis}`).toEqual(Array.from(a.indices.data));
      }
    });
  });
});
