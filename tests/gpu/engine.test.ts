// The WebGPU engine's machinery: splitting beyond the limits (forced small), the pipeline cache, buffer
// reuse, the staged (workgroup-memory) kernels that real GPUs use, and the chunk planner.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Vi, Vj, type LazyTensor } from '../../src/index.js';
import type { ReductionKind, ReductionPlan } from '../../src/core/reduction.js';
import {
  DEFAULT_MAX_PAIRS_PER_DISPATCH,
  PARTS_TARGET_WORKGROUPS,
  planChunks,
  WebGPUEngine,
  type EngineLimits,
} from '../../src/gpu/engine.js';
import { webgpuTesting } from '../../src/runtime/index.js';
import { refSum } from '../helpers/dense-reference.js';
import { expectClose } from '../helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from '../helpers/random.js';
import { hasGpu, suiteEngines } from './setup.js';

interface Case {
  kind: ReductionKind;
  K?: number;
  weight?: boolean;
}
const CASES: Case[] = [
  { kind: 'sum' },
  { kind: 'logSumExp' },
  { kind: 'logSumExpWeighted', weight: true },
  { kind: 'sumSoftMaxWeight', weight: true },
  { kind: 'min' },
  { kind: 'max' },
  { kind: 'argMin' },
  { kind: 'argMax' },
  { kind: 'minArgMin' },
  { kind: 'maxArgMax' },
  { kind: 'kMin', K: 7 },
  { kind: 'argKMin', K: 7 },
  { kind: 'kMinArgKMin', K: 7 },
];

function problem(N: number, M: number, seed = 3) {
  const random = rng(seed);
  const xs = uniformRows(random, N, 3);
  const ys = uniformRows(random, M, 3);
  const bs = uniformRows(random, M, 2, 0.1, 1);
  const x = Vi(typed(xs, 'float32'), 3);
  const y = Vj(typed(ys, 'float32'), 3);
  const b = Vj(typed(bs, 'float32'), 2);
  return { x, y, b, xs: asSeen(xs, 'float32'), ys: asSeen(ys, 'float32') };
}

/** The plan of a reduction, and the same reduction on the WebAssembly engine for comparison. */
function planOf(F: LazyTensor, c: Case, axis: 0 | 1, weight: LazyTensor): ReductionPlan {
  return F.plan(c.kind, axis, undefined, undefined, c.weight ? weight : undefined, c.K ?? 0);
}

async function onWasm(
  F: LazyTensor,
  c: Case,
  axis: 0 | 1,
  weight: LazyTensor,
): Promise<{ values: ArrayLike<number> | null; indices: ArrayLike<number> | null }> {
  const o = { engine: 'wasm' } as const;
  switch (c.kind) {
    case 'sum':
      return { values: (await F.sum(axis, o)).data, indices: null };
    case 'logSumExp':
      return { values: (await F.logSumExp(axis, o)).data, indices: null };
    case 'logSumExpWeighted':
      return { values: (await F.logSumExp(axis, { ...o, weight })).data, indices: null };
    case 'sumSoftMaxWeight':
      return { values: (await F.sumSoftMaxWeight(axis, weight, o)).data, indices: null };
    case 'min':
      return { values: (await F.min(axis, o)).data, indices: null };
    case 'max':
      return { values: (await F.max(axis, o)).data, indices: null };
    case 'argMin':
      return { values: null, indices: (await F.argMin(axis, o)).data };
    case 'argMax':
      return { values: null, indices: (await F.argMax(axis, o)).data };
    case 'minArgMin': {
      const r = await F.minArgMin(axis, o);
      return { values: r.values.data, indices: r.indices.data };
    }
    case 'maxArgMax': {
      const r = await F.maxArgMax(axis, o);
      return { values: r.values.data, indices: r.indices.data };
    }
    case 'kMin':
      return { values: (await F.kMin(c.K!, axis, o)).data, indices: null };
    case 'argKMin':
      return { values: null, indices: (await F.argKMin(c.K!, axis, o)).data };
    case 'kMinArgKMin': {
      const r = await F.kMinArgKMin(c.K!, axis, o);
      return { values: r.values.data, indices: r.indices.data };
    }
  }
}

describe('planChunks', () => {
  const webgpuDefaults: EngineLimits = {
    maxStorageBufferBindingSize: 128 * 2 ** 20,
    maxBufferSize: 256 * 2 ** 20,
    maxComputeWorkgroupsPerDimension: 65535,
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupStorageSize: 16384,
    minUniformBufferOffsetAlignment: 256,
    maxPairsPerDispatch: DEFAULT_MAX_PAIRS_PER_DISPATCH,
  };

  function check(sizes: Parameters<typeof planChunks>[0], limits: EngineLimits, wg: number, tile: number) {
    const plan = planChunks(sizes, limits, wg, tile);
    const bind = limits.maxStorageBufferBindingSize;
    // Every row is covered once, in order.
    expect(plan.outerChunks.reduce((s, c) => s + c.rows, 0)).toBe(sizes.nOuter);
    expect(plan.steps.reduce((s, c) => s + c.rows, 0)).toBe(sizes.nInner);
    plan.steps.forEach((s, q) =>
      expect(s.globalStart).toBe(q === 0 ? 0 : plan.steps[q - 1]!.globalStart + plan.steps[q - 1]!.rows),
    );
    for (const c of plan.outerChunks) {
      expect(Math.ceil(c.rows / wg)).toBeLessThanOrEqual(limits.maxComputeWorkgroupsPerDimension);
      expect(c.rows * sizes.outerStride * 4).toBeLessThanOrEqual(bind);
      expect(c.rows * sizes.outDim * 4).toBeLessThanOrEqual(bind);
      if (plan.split) expect(c.rows * sizes.stateWords * 4).toBeLessThanOrEqual(bind);
      for (const s of plan.steps) {
        if (s.rows > 1) expect(c.rows * s.rows).toBeLessThanOrEqual(limits.maxPairsPerDispatch);
      }
    }
    for (const s of plan.segments) expect(s.rows * sizes.innerStride * 4).toBeLessThanOrEqual(bind);
    return plan;
  }

  it('N = M = 10^6 fits the default WebGPU limits', () => {
    const sizes = { nOuter: 1e6, nInner: 1e6, outerStride: 3, innerStride: 4, outDim: 1, stateWords: 2 };
    const plan = check(sizes, webgpuDefaults, 256, 256);
    expect(plan.outerChunks).toHaveLength(1);
    expect(plan.split).toBe(true);
    // argKMin K = 10 of 10^6 x 10^6 in 3-D.
    check({ ...sizes, outDim: 10, stateWords: 21 }, webgpuDefaults, 64, 64);
  });

  it('splits every side when the limits are tiny', () => {
    const limits = {
      ...webgpuDefaults,
      maxStorageBufferBindingSize: 1024,
      maxComputeWorkgroupsPerDimension: 3,
      maxPairsPerDispatch: 200,
    };
    const plan = check(
      { nOuter: 1000, nInner: 999, outerStride: 5, innerStride: 7, outDim: 4, stateWords: 9 },
      limits,
      16,
      16,
    );
    expect(plan.outerChunks.length).toBeGreaterThan(1);
    expect(plan.segments.length).toBeGreaterThan(1);
    expect(plan.steps.length).toBeGreaterThan(plan.segments.length);
  });

  it('refuses rows wider than a binding', () => {
    expect(() =>
      planChunks(
        { nOuter: 1, nInner: 1, outerStride: 1, innerStride: 1000, outDim: 1, stateWords: 2 },
        { ...webgpuDefaults, maxStorageBufferBindingSize: 256 },
        64,
        64,
      ),
    ).toThrow(RangeError);
  });
});

describe.skipIf(!hasGpu)('WebGPU engine: splitting, caching, buffers, staged kernels', () => {
  let device: GPUDevice;
  const engines: WebGPUEngine[] = [];
  const make = (options: ConstructorParameters<typeof WebGPUEngine>[1]): WebGPUEngine => {
    const e = new WebGPUEngine(device, options);
    engines.push(e);
    return e;
  };
  beforeAll(async () => {
    device = (await webgpuTesting.engine())!.device;
  });
  afterAll(() => engines.forEach((e) => e.trim()));

  const splitters: [string, Partial<EngineLimits>][] = [
    ['tiny bindings (outer chunks and inner segments)', { maxStorageBufferBindingSize: 2048 }],
    ['a small dispatch grid (outer chunks)', { maxComputeWorkgroupsPerDimension: 2 }],
    ['few pairs per dispatch (inner steps)', { maxPairsPerDispatch: 20_000 }],
    [
      'all of them',
      { maxStorageBufferBindingSize: 4096, maxComputeWorkgroupsPerDimension: 3, maxPairsPerDispatch: 50_000 },
    ],
  ];

  describe.each(splitters)('forced limits: %s', (_name, limits) => {
    it.each(CASES)('$kind agrees with the WebAssembly engine on both axes', async (c) => {
      const engine = make({ limits, cpuAdapter: true });
      const { x, y, b } = problem(700, 900);
      const F = c.weight
        ? x.sqDist(y).mul(-3)
        : c.kind.startsWith('k') || c.kind.startsWith('arg')
          ? x.sqDist(y)
          : x.sub(y).mul(-2).exp();
      for (const axis of [1, 0] as const) {
        const weight = axis === 1 ? b : x.abs();
        const plan = planOf(F, c, axis, weight);
        const before = engine.stats.dispatches;
        const got = await engine.reduce(plan);
        expect(engine.stats.dispatches - before, 'dispatches').toBeGreaterThan(1);
        const want = await onWasm(F, c, axis, weight);
        if (want.values !== null)
          expectClose(got.values!, Array.from(want.values), 1e-5, 1e-6, undefined, `${c.kind} axis ${axis}`);
        if (want.indices !== null) expect(Array.from(got.indices!)).toEqual(Array.from(want.indices));
      }
    });
  });

  it('a split sum of 10^6 terms stays accurate (compensation carried across dispatches)', async () => {
    const engine = make({
      limits: { maxStorageBufferBindingSize: 64 * 1024, maxPairsPerDispatch: 2 ** 16 },
      cpuAdapter: true,
    });
    const M = 1_000_000;
    const random = rng(7);
    const ys = new Float32Array(M);
    for (let j = 0; j < M; j++) ys[j] = random();
    const x = Vi(new Float32Array([0.25, 0.5]), 1);
    const F = x.sub(Vj(ys, 1)).square().mul(-3).exp();
    const got = await engine.reduce(F.plan('sum', 1, undefined));
    const want = refSum((i, j) => [Math.exp(-3 * ([0.25, 0.5][i]! - ys[j]!) ** 2)], { N: 2, M }, 1).value.flat();
    expectClose(got.values!, want, 1e-5);
    const lse = await engine.reduce(F.log().plan('logSumExp', 1, undefined));
    expectClose(Array.from(lse.values!, Math.exp), want, 2e-5);
  });

  it('10^6 result rows and 10^6 reduced rows run with the default limits', async () => {
    const engine = make({ cpuAdapter: true });
    const big = 1_000_000;
    const random = rng(11);
    const xs = new Float32Array(big).map(() => random());
    const small = new Float32Array(8).map(() => random());
    // argMin over 8 values for each of 10^6 rows.
    const rows = await engine.reduce(Vi(xs, 1).sqDist(Vj(small, 1)).plan('argMin', 1, undefined));
    let mismatches = 0;
    for (let i = 0; i < big; i++) {
      let best = 0;
      for (let j = 1; j < 8; j++) if ((xs[i]! - small[j]!) ** 2 < (xs[i]! - small[best]!) ** 2) best = j;
      if (rows.indices![i] !== best) mismatches++;
    }
    expect(mismatches).toBeLessThan(5); // float32 near-ties only
    // logSumExp over 10^6 values for each of 8 rows.
    const lse = await engine.reduce(Vi(small, 1).sqDist(Vj(xs, 1)).mul(-1).plan('logSumExp', 1, undefined));
    const want = Array.from(small, (s) => {
      let acc = 0;
      for (let j = 0; j < big; j++) acc += Math.exp(-((s - xs[j]!) ** 2));
      return Math.log(acc); // the max is <= 0 and close to 0: no overflow
    });
    expectClose(lse.values!, want, 1e-5);
  });

  it('a second call of the same formula (even on new data) compiles nothing', async () => {
    const engine = make({ cpuAdapter: true });
    const run = async (seed: number) => {
      const { x, y, b } = problem(50, 60, seed);
      return engine.reduce(x.sqDist(y).mul(-2).exp().mul(b).plan('sum', 1, undefined));
    };
    await run(1);
    const compiles = engine.stats.compiles;
    const hits = engine.stats.pipelineHits;
    await run(2);
    await run(3);
    expect(engine.stats.compiles).toBe(compiles);
    expect(engine.stats.pipelineHits).toBe(hits + 2);
    // A different structure compiles once more.
    const { x, y } = problem(5, 6);
    await engine.reduce(x.sqDist(y).mul(-2).exp().add(x.elem(2)).plan('sum', 1, undefined));
    expect(engine.stats.compiles).toBe(compiles + 1);
  });

  it('repeated calls reuse buffers: the live buffer count does not grow', async () => {
    const engine = make({ cpuAdapter: true });
    const { x, y, b } = problem(300, 400);
    const F = x.sqDist(y).mul(-2).exp().mul(b);
    const counts: number[] = [];
    for (let r = 0; r < 12; r++) {
      await engine.reduce(F.plan('sum', 1, undefined));
      await engine.reduce(x.sqDist(y).plan('argKMin', 0, undefined, undefined, undefined, 5));
      counts.push(engine.bufferStats().live);
      expect(engine.bufferStats().inUse).toBe(0);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(counts[counts.length - 1]).toBe(counts[0]);
    // Concurrent calls are serialised and also reuse buffers.
    await Promise.all(Array.from({ length: 6 }, () => engine.reduce(F.plan('sum', 1, undefined))));
    expect(engine.bufferStats().live).toBe(counts[0]);
    engine.trim();
    expect(engine.bufferStats().live).toBe(0);
  });

  describe('staged kernels (inner tiles in workgroup memory, as on real GPUs)', () => {
    it.each(CASES)('$kind, with tile boundaries, agrees with the WebAssembly engine', async (c) => {
      const engine = make({ staging: 'always', workgroupSize: 32, cpuAdapter: true });
      const { x, y, b } = problem(70, 101);
      const F = c.weight
        ? x.sqDist(y).mul(-3)
        : c.kind.startsWith('k') || c.kind.startsWith('arg')
          ? x.sqDist(y)
          : x.sub(y).mul(-2).exp();
      for (const axis of [1, 0] as const) {
        const weight = axis === 1 ? b : x.abs();
        const plan = planOf(F, c, axis, weight);
        expect(engine.configFor(plan).staged).toBe(true);
        const got = await engine.reduce(plan);
        const want = await onWasm(F, c, axis, weight);
        if (want.values !== null)
          expectClose(got.values!, Array.from(want.values), 1e-5, 1e-6, undefined, `${c.kind} axis ${axis}`);
        if (want.indices !== null) expect(Array.from(got.indices!)).toEqual(Array.from(want.indices));
      }
    });

    it('wide inner rows shrink the tile to fit workgroup memory, split or not', async () => {
      const D = 40;
      const random = rng(40);
      const xs = uniformRows(random, 37, D);
      const ys = uniformRows(random, 150, D);
      const x = Vi(typed(xs, 'float32'), D);
      const y = Vj(typed(ys, 'float32'), D);
      for (const limits of [
        { maxComputeWorkgroupStorageSize: 256 + 4 * D * 10 },
        { maxComputeWorkgroupStorageSize: 256 + 4 * D * 10, maxPairsPerDispatch: 1000 },
      ]) {
        const engine = make({ staging: 'always', workgroupSize: 32, limits, cpuAdapter: true });
        const plan = x.sqDist(y).plan('sum', 1, undefined);
        expect(engine.configFor(plan).tile).toBe(10);
        const got = await engine.reduce(plan);
        const want = refSum(
          (i, j) => [xs[i]!.reduce((s, v, k) => s + (Math.fround(v) - Math.fround(ys[j]![k]!)) ** 2, 0)],
          { N: 37, M: 150 },
          1,
        );
        expectClose(got.values!, want.value.flat(), 2e-5, 0, want.scale.flat());
      }
    });
  });
});

describe('inner parts: the planner', () => {
  it('cuts the inner rows of few result rows into parts of two tiles or more, only on GPUs', async () => {
    const device = (await webgpuTesting.engine())?.device;
    if (device === undefined) return;
    const gpuLike = new WebGPUEngine(device, { cpuAdapter: false });
    const plan = (N: number, M: number) =>
      Vi(new Float32Array(N * 3), 3)
        .sqDist(Vj(new Float32Array(M * 3), 3))
        .plan('sum', 1, undefined);
    const cut = (p: ReductionPlan) => {
      const config = gpuLike.configFor(p);
      const chunks = planChunks(
        { nOuter: p.nOuter, nInner: p.nInner, outerStride: 3, innerStride: 3, outDim: 1, stateWords: 2 },
        gpuLike.limits,
        config.workgroupSize,
        config.tile,
      );
      return { parts: gpuLike.partsFor(p, config, chunks), config, chunks };
    };
    // 10^4 rows: 40 workgroups of 256, so up to PARTS_TARGET_WORKGROUPS / 40 parts of two tiles or more.
    const small = cut(plan(10_000, 10_000));
    expect(small.config.workgroupSize).toBe(256);
    expect(small.parts).not.toBeNull();
    const { count, rows } = small.parts!;
    expect(count).toBeGreaterThan(8);
    expect(count * 40).toBeLessThanOrEqual(PARTS_TARGET_WORKGROUPS + 40);
    expect(rows).toBeGreaterThanOrEqual(2 * small.config.tile);
    expect((count - 1) * rows).toBeLessThan(10_000);
    expect(count * rows).toBeGreaterThanOrEqual(10_000);
    // 10^5 rows (391 workgroups), split over dispatches (10^10 pairs): 3 parts of each step.
    const tenFive = cut(plan(100_000, 100_000));
    expect(tenFive.chunks.split).toBe(true);
    expect(tenFive.parts?.count).toBe(3);
    expect(tenFive.parts!.rows * 3).toBeGreaterThanOrEqual(tenFive.chunks.steps[0]!.rows);
    // Enough rows to fill the GPU, or too few inner rows for two parts: one part.
    expect(cut(plan(1_000_000, 10_000)).parts).toBeNull();
    expect(cut(plan(100, 700)).parts).toBeNull();
    // Not on CPU adapters unless forced, never when told so.
    const cpu = new WebGPUEngine(device, { cpuAdapter: true });
    expect(cpu.partsFor(plan(10_000, 10_000), small.config, small.chunks)).toBeNull();
    const never = new WebGPUEngine(device, { cpuAdapter: false, innerParts: 'never' });
    expect(never.partsFor(plan(10_000, 10_000), small.config, small.chunks)).toBeNull();
    gpuLike.trim();
    cpu.trim();
    never.trim();
  });
});

describe.skipIf(!hasGpu)('WebGPU engine: inner parts (j-parallel partial reductions, merged)', () => {
  const make = suiteEngines();

  /** Runs `plan` with parts and without; checks that the parts ran: the same dispatches and one
   *  combine dispatch more (one outer chunk). */
  async function both(options: ConstructorParameters<typeof WebGPUEngine>[1], plan: ReductionPlan) {
    const parted = make({ ...options, innerParts: 'always' });
    const whole = make({ ...options, innerParts: 'never' });
    const [p0, w0] = [parted.stats.dispatches, whole.stats.dispatches];
    const got = await parted.reduce(plan);
    const one = await whole.reduce(plan);
    expect(parted.stats.dispatches - p0, 'the combine dispatch').toBe(whole.stats.dispatches - w0 + 1);
    return { got, whole: one };
  }

  describe.each([
    ['direct kernels', { workgroupSize: 32 }],
    ['staged kernels', { workgroupSize: 32, staging: 'always' as const }],
    // 70 rows x 300 inner rows per dispatch: 4 dispatches, each cut into parts (slots carried over).
    ['split over dispatches', { workgroupSize: 32, limits: { maxPairsPerDispatch: 70 * 300 } }],
  ])('%s', (_name, options) => {
    it.each(CASES)('$kind agrees with the WebAssembly engine on both axes, selections bit for bit', async (c) => {
      for (const axis of [1, 0] as const) {
        // 70 result rows, 1001 reduced rows (parts of whole tiles, the last one short).
        const { x, y, b } = axis === 1 ? problem(70, 1001) : problem(1001, 70);
        const F = c.weight
          ? x.sqDist(y).mul(-3)
          : c.kind.startsWith('k') || c.kind.startsWith('arg')
            ? x.sqDist(y)
            : x.sub(y).mul(-2).exp();
        const weight = axis === 1 ? b : x.abs();
        const { got, whole } = await both(options, planOf(F, c, axis, weight));
        const want = await onWasm(F, c, axis, weight);
        const label = `${c.kind} axis ${axis}`;
        if (want.values !== null) {
          expectClose(got.values!, Array.from(want.values), 1e-5, 1e-6, undefined, `${label} vs wasm`);
          expectClose(got.values!, Array.from(whole.values!), 1e-5, 1e-6, undefined, `${label} vs one part`);
        }
        if (want.indices !== null) {
          expect(Array.from(got.indices!), label).toEqual(Array.from(want.indices));
          expect(Array.from(got.indices!), label).toEqual(Array.from(whole.indices!));
        }
        // Selections keep values as they are: the same floats with or without parts.
        if (!['sum', 'logSumExp', 'logSumExpWeighted', 'sumSoftMaxWeight'].includes(c.kind) && want.values !== null)
          expect(Array.from(got.values!), label).toEqual(Array.from(whole.values!));
      }
    });
  });

  it('tiled, D-chunked and windowed kernels, float64 accumulation, several outer chunks', async () => {
    const random = rng(91);
    const rows = (n: number, d: number) => typed(uniformRows(random, n, d), 'float32') as Float32Array;
    const D = 100;
    const [N, M] = [45, 777];
    const x = Vi(rows(N, D), D);
    const y = Vj(rows(M, D), D);
    const gauss = x
      .sqDist(y)
      .mul(-1 / D)
      .exp();
    const close = (a: ArrayLike<number>, b: ArrayLike<number>, label: string) =>
      expectClose(a, Array.from(b), 1e-5, 1e-6, undefined, label);
    // Tiled (a 4 x 4 x (2 x 2) blocking): K-NN bit for bit, the Gaussian sum within rounding.
    const tiled = { tiling: 'always' as const, limits: { maxComputeInvocationsPerWorkgroup: 16 } };
    const knn = x.sqDist(y).plan('kMinArgKMin', 1, undefined, undefined, undefined, 5);
    let r = await both(tiled, knn);
    expect(Array.from(r.got.indices!)).toEqual(Array.from(r.whole.indices!));
    expect(Array.from(r.got.values!)).toEqual(Array.from(r.whole.values!));
    r = await both(tiled, gauss.plan('sum', 1, undefined));
    close(r.got.values!, r.whole.values!, 'tiled gauss');
    // D-chunked (rows wider than workgroup memory)
    const chunked = { staging: 'always' as const, workgroupSize: 32, limits: { maxComputeWorkgroupStorageSize: 652 } };
    expect(make(chunked).configFor(knn).dchunks).toBe(true);
    r = await both(chunked, knn);
    expect(Array.from(r.got.indices!)).toEqual(Array.from(r.whole.indices!));
    r = await both(chunked, gauss.plan('sum', 1, undefined));
    close(r.got.values!, r.whole.values!, 'chunked gauss');
    // Windowed: a 70-component sum (5 windows of 16), and K = 64 lists of a 5-D formula (2 windows).
    const z = Vj(typed(uniformRows(random, M, 70, 0.1, 1), 'float32'), 70); // positive: no cancellation
    r = await both({ workgroupSize: 32 }, gauss.mul(z).plan('sum', 1, undefined));
    close(r.got.values!, r.whole.values!, 'windowed sum');
    const v = Vi(rows(N, 5), 5)
      .sub(Vj(rows(M, 5), 5))
      .abs();
    const wide = v.plan('kMinArgKMin', 1, undefined, undefined, undefined, 64);
    r = await both({ workgroupSize: 32 }, wide);
    expect(Array.from(r.got.indices!)).toEqual(Array.from(r.whole.indices!));
    expect(Array.from(r.got.values!)).toEqual(Array.from(r.whole.values!));
    // accumulate: 'float64' (two-float sums) of 10^5 terms against float64
    const ys = rows(100_000, 1);
    const x1 = Float32Array.of(0.25, -0.5, 0.75);
    const plain = Vi(x1, 1).sub(Vj(ys, 1)).square().mul(-3).exp().plan('sum', 1, undefined);
    const sum64: ReductionPlan = { ...plain, accumulate: 'float64' };
    r = await both({ workgroupSize: 32 }, sum64);
    const want = Array.from(x1, (a) => ys.reduce((t, b) => t + Math.exp(-3 * Math.fround(Math.fround(a - b) ** 2)), 0));
    expectClose(r.got.values!, want, 1e-7);
    // Several outer chunks (a grid of 2 workgroups of 32 rows), each with its parts.
    const chunks = make({ workgroupSize: 32, innerParts: 'always', limits: { maxComputeWorkgroupsPerDimension: 2 } });
    const whole = make({ workgroupSize: 32, innerParts: 'never' });
    const many = Vi(rows(150, 3), 3).sqDist(Vj(rows(900, 3), 3));
    const before = chunks.stats.dispatches;
    const got = await chunks.reduce(many.plan('argKMin', 1, undefined, undefined, undefined, 4));
    expect(chunks.stats.dispatches - before).toBe(2 * 3);
    expect(Array.from(got.indices!)).toEqual(
      Array.from((await whole.reduce(many.plan('argKMin', 1, undefined, undefined, undefined, 4))).indices!),
    );
  }, 300_000);

  it('NaN, infinities and ties across parts: the results of one part', async () => {
    const M = 1000;
    const yv = new Float32Array(M).map((_, j) => (j % 7) - 3); // every value in every part
    // NaN pairs: sqrt(-1) where the mask is -1 (inputs themselves must be finite)
    const ym = new Float32Array(M);
    ym[10] = -1;
    ym[600] = -1;
    const xm = Float32Array.of(0, 0, 0, -1);
    const F = Vi(Float32Array.of(0, 0.5, 2, 1), 1)
      .sqDist(Vj(yv, 1))
      .add(Vj(ym, 1).sqrt())
      .add(Vi(xm, 1).sqrt());
    for (const split of [{}, { limits: { maxPairsPerDispatch: 4 * 300 } }]) {
      for (const [kind, K] of [
        ['minArgMin', 0],
        ['maxArgMax', 0],
        ['kMinArgKMin', 9],
      ] as const) {
        const r = await both({ workgroupSize: 32, ...split }, F.plan(kind, 1, undefined, undefined, undefined, K));
        expect(Array.from(r.got.indices!), kind).toEqual(Array.from(r.whole.indices!));
        expect(Array.from(r.got.values!), kind).toEqual(Array.from(r.whole.values!));
      }
      // Ties go to the lowest index, in whichever part or dispatch it is; the NaN row has none.
      const first = await both(
        { workgroupSize: 32, ...split },
        F.plan('argKMin', 1, undefined, undefined, undefined, 3),
      );
      expect(Array.from(first.got.indices!.subarray(0, 3))).toEqual([3, 17, 24]); // 10 is NaN
      expect(Array.from(first.got.indices!.subarray(9, 12))).toEqual([-1, -1, -1]);
    }
    // log-sum-exp and the weighted forms with +inf (exp(100) in float32), -inf (log 0) and NaN in
    // some parts only
    const two = Vi(Float32Array.of(0, 1), 1);
    const lv = new Float32Array(M).map((_, j) => Math.sin(j));
    const big = new Float32Array(M);
    big[900] = 100;
    const lse = await both(
      { workgroupSize: 32 },
      two.add(Vj(lv, 1)).add(Vj(big, 1).exp()).plan('logSumExp', 1, undefined),
    );
    expect(Array.from(lse.got.values!)).toEqual([Infinity, Infinity]);
    const pos = new Float32Array(M);
    pos[700] = 1;
    const H = two.add(Vj(pos, 1).log()).add(0.5); // -inf but at j = 700
    const h = await both({ workgroupSize: 32 }, H.plan('logSumExp', 1, undefined));
    expectClose(h.got.values!, [0.5, 1.5], 1e-6);
    const w = Vj(
      new Float32Array(M).map((_, j) => j),
      1,
    );
    const soft = await both({ workgroupSize: 32 }, H.plan('sumSoftMaxWeight', 1, undefined, undefined, w));
    expectClose(soft.got.values!, [700, 700], 1e-6);
    const n = await both({ workgroupSize: 32 }, two.add(Vj(ym, 1).sqrt()).plan('logSumExp', 1, undefined));
    expect(Array.from(n.got.values!).map(Number.isNaN)).toEqual([true, true]);
  });
});
