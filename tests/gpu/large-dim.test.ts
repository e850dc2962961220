// Large D on the WebGPU engine (issue 10 row 1): no per-thread array grows with D. Values wider than
// 64 components are computed inside the loops that consume them, and results wider than 64
// components are reduced window by window, so D = 10^4 and 10^5 compile and agree with float64
// references (N and M stay small: SwiftShader runs the kernels on the CPU).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Vi, Vj, type LazyTensor } from '../../src/index.js';
import type { ReductionKind } from '../../src/core/reduction.js';
import { generateKernel, MAX_GPU_K, reductionWindow, stateWords } from '../../src/gpu/codegen.js';
import { WebGPUEngine, type WebGPUEngineOptions } from '../../src/gpu/engine.js';
import { webgpuTesting } from '../../src/runtime/index.js';
import { refKSelect, refLogSumExp, refSoftMax, refSum } from '../helpers/dense-reference.js';
import { expectClose } from '../helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from '../helpers/random.js';
import { expectGpu, hasGpu } from './setup.js';

type Rows = number[][];

function data(D: number, N: number, M: number, seed: number) {
  const random = rng(seed);
  const xs = uniformRows(random, N, D);
  const ys = uniformRows(random, M, D);
  return {
    x: Vi(typed(xs, 'float32'), D),
    y: Vj(typed(ys, 'float32'), D),
    xs: asSeen(xs, 'float32'),
    ys: asSeen(ys, 'float32'),
  };
}

const sqDist = (a: number[], b: number[]): number => a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0);
const dot = (a: number[], b: number[]): number => a.reduce((s, v, k) => s + v * b[k]!, 0);

/** The largest private array a kernel declares (f32/i32 elements). */
function largestArray(code: string): number {
  let most = 0;
  for (const m of code.matchAll(/array<(?:f32|i32), (\d+)>/g)) most = Math.max(most, Number(m[1]));
  return most;
}

describe('large D: generated WGSL', () => {
  it.each([65, 4000, 100_000])('no array grows with D (D = %i), for every reduction', (D) => {
    const x = Vi(new Float32Array(2 * D), D);
    const y = Vj(new Float32Array(8 * D), D);
    const b = Vj(new Float32Array(8 * D), D);
    const config = { workgroupSize: 64, tile: 64, staged: false, split: true, sparse: false };
    const kinds: [ReductionKind, number][] = [
      ['sum', 0],
      ['logSumExp', 0],
      ['min', 0],
      ['argMax', 0],
      ['kMinArgKMin', 5],
    ];
    for (const [kind, K] of kinds) {
      for (const F of [x.sub(y), x.sub(y).normalize().mul(x.sqDist(y)), x.concat(y).mul(2)]) {
        const plan = F.plan(kind, 1, undefined, undefined, undefined, K);
        const code = generateKernel(plan, config).code;
        expect(largestArray(code), `${kind} ${F.toString()}`).toBeLessThanOrEqual(256);
        const w = reductionWindow(plan);
        expect(w.count * w.width).toBeGreaterThanOrEqual(w.components);
        expect(w.width).toBeLessThanOrEqual(16);
      }
    }
    const weighted = x.sqDist(y).mul(-1).plan('sumSoftMaxWeight', 1, undefined, undefined, b);
    expect(largestArray(generateKernel(weighted, config).code)).toBeLessThanOrEqual(16);
    // The split state holds every window: one window's words per window.
    expect(stateWords(weighted)).toBe(reductionWindow(weighted).count * (3 + 2 * 16));
    // Scalar results of D-long sums: a loop over D, no window, no array at all.
    const scalar = x.sqDist(y).add(x.dot(y)).plan('sum', 1, undefined);
    expect(reductionWindow(scalar).count).toBe(1);
    expect(largestArray(generateKernel(scalar, config).code)).toBeLessThanOrEqual(1);
  });
});

describe.skipIf(!hasGpu)('WebGPU: large D', () => {
  it.each([4000, 10_000])('x_i - y_j summed over j and over i at D = %i (a D-wide result)', async (D) => {
    const N = 3;
    const M = 5;
    const { x, y, xs, ys } = data(D, N, M, D);
    const F = x.sub(y);
    for (const axis of [1, 0] as const) {
      const got = await F.sum(axis, { engine: 'webgpu' });
      expectGpu(got, 'sum');
      expect(got.shape).toEqual([axis === 1 ? N : M, D]);
      const want = refSum((i, j) => xs[i]!.map((v, k) => v - ys[j]![k]!), { N, M }, axis);
      expectClose(got.data, want.value.flat(), 1e-5, 0, want.scale.flat(), `D=${D} axis ${axis}`);
    }
  });

  it('D = 10^5: a D-wide sum, squared distances, dot products and a Gaussian kernel', async () => {
    const D = 100_000;
    const N = 2;
    const M = 3;
    const { x, y, xs, ys } = data(D, N, M, 5);
    const wide = await x.sub(y).sum(1, { engine: 'webgpu' });
    expectGpu(wide, 'wide');
    const want = refSum((i, j) => xs[i]!.map((v, k) => v - ys[j]![k]!), { N, M }, 1);
    expectClose(wide.data, want.value.flat(), 1e-5, 0, want.scale.flat(), 'wide sum');
    // [formula, float64 value, the sum of |terms| it is accurate relative to]
    const scalars: [LazyTensor, (a: number[], b: number[]) => number, (a: number[], b: number[]) => number][] = [
      [x.sqDist(y), sqDist, sqDist],
      [x.dot(y), dot, (a, b) => a.reduce((s, v, k) => s + Math.abs(v * b[k]!), 0)],
      [
        x
          .sqDist(y)
          .mul(-1 / D)
          .exp(),
        (a, b) => Math.exp(-sqDist(a, b) / D),
        (a, b) => Math.exp(-sqDist(a, b) / D),
      ],
      [
        x.sub(y).abs().sum(-1),
        (a, b) => a.reduce((s, v, k) => s + Math.abs(v - b[k]!), 0),
        (a, b) => a.reduce((s, v, k) => s + Math.abs(v - b[k]!), 0),
      ],
    ];
    for (const [F, ref, scale] of scalars) {
      const got = await F.sum(1, { engine: 'webgpu' });
      expectGpu(got, F.toString());
      const r = refSum((i, j) => [ref(xs[i]!, ys[j]!)], { N, M }, 1);
      const s = refSum((i, j) => [scale(xs[i]!, ys[j]!)], { N, M }, 1);
      // Blocked sums over D: 10^5 float32 terms within 2e-6 of float64 (a plain loop: ~1.5e-5).
      expectClose(got.data, r.value.flat(), 2e-6, 0, s.value.flat(), F.toString());
    }
  });
});

describe.skipIf(!hasGpu)('WebGPU: windowed reductions (results wider than 64 components)', () => {
  let device: GPUDevice;
  const engines: WebGPUEngine[] = [];
  const make = (options: WebGPUEngineOptions): WebGPUEngine => {
    const e = new WebGPUEngine(device, { cpuAdapter: true, ...options });
    engines.push(e);
    return e;
  };
  beforeAll(async () => {
    device = (await webgpuTesting.engine())!.device;
  });
  afterAll(() => engines.forEach((e) => e.trim()));

  const D = 203; // 13 windows of 16, the last one overlapping
  const N = 6;
  const M = 70;
  const { x, y, xs, ys } = data(D, N, M, 203);
  const random = rng(9);
  const bs: Rows = uniformRows(random, M, D, 0.1, 1);
  const b = Vj(typed(bs, 'float32'), D);
  const sb = asSeen(bs, 'float32');
  // exp(x_i - y_j) - 1, a D-wide formula with cross-component work (a normalised difference).
  const F = x.sub(y).exp().add(x.sub(y).normalize());
  const f = (i: number, j: number): number[] => {
    const v = xs[i]!.map((a, k) => a - ys[j]![k]!);
    const n = Math.sqrt(dot(v, v));
    return v.map((c) => Math.exp(c) + c / n);
  };
  const G = x.sqDist(y).mul(-1 / D);
  const g = (i: number, j: number): number[] => [-sqDist(xs[i]!, ys[j]!) / D];
  type Check = 'sum' | 'logSumExp' | 'min' | 'argMax' | 'kMinArgKMin' | 'sumSoftMaxWeight' | 'sum axis 0';
  const checks: Record<Check, (engine: WebGPUEngine) => Promise<void>> = {
    sum: async (engine) => {
      const got = await engine.reduce(F.plan('sum', 1, undefined));
      const r = refSum(f, { N, M }, 1);
      expectClose(got.values!, r.value.flat(), 2e-5, 0, r.scale.flat(), 'sum');
    },
    logSumExp: async (engine) => {
      const got = await engine.reduce(F.plan('logSumExp', 1, undefined));
      expectClose(got.values!, refLogSumExp(f, { N, M }, 1).flat(), 2e-5, 1e-5, undefined, 'logSumExp');
    },
    min: async (engine) => {
      const got = await engine.reduce(F.plan('min', 1, undefined));
      expectClose(got.values!, refKSelect(f, { N, M }, 1, 1).values.flat(2), 1e-5, 1e-6, undefined, 'min');
    },
    argMax: async (engine) => {
      const got = await engine.reduce(F.plan('argMax', 1, undefined));
      expect(Array.from(got.indices!)).toEqual(refKSelect(f, { N, M }, 1, 1, true).indices.flat(2));
    },
    kMinArgKMin: async (engine) => {
      const K = 3;
      const got = await engine.reduce(F.plan('kMinArgKMin', 1, undefined, undefined, undefined, K));
      const r = refKSelect(f, { N, M }, 1, K);
      expectClose(got.values!, r.values.flat(2), 1e-5, 1e-6, undefined, 'kMin');
      expect(Array.from(got.indices!)).toEqual(r.indices.flat(2));
    },
    sumSoftMaxWeight: async (engine) => {
      const got = await engine.reduce(G.plan('sumSoftMaxWeight', 1, undefined, undefined, b));
      expectClose(got.values!, refSoftMax(g, (_i, j) => sb[j]!, { N, M }, 1).flat(), 2e-5, 1e-6, undefined, 'softmax');
    },
    'sum axis 0': async (engine) => {
      const got = await engine.reduce(F.plan('sum', 0, undefined));
      const r = refSum(f, { N, M }, 0);
      expectClose(got.values!, r.value.flat(), 2e-5, 0, r.scale.flat(), 'sum axis 0');
    },
  };
  // Every reduction once; the split and staged machinery on a few (SwiftShader compiles slowly).
  const configs: [string, WebGPUEngineOptions, Check[]][] = [
    ['one dispatch', {}, ['sum', 'logSumExp', 'min', 'argMax', 'kMinArgKMin', 'sumSoftMaxWeight', 'sum axis 0']],
    [
      'split over dispatches (state per window in the state buffer)',
      { limits: { maxPairsPerDispatch: 2000 } },
      ['sum', 'kMinArgKMin', 'sumSoftMaxWeight'],
    ],
    // Tiles of 6 rows (70 is not a multiple), small so that SwiftShader compiles them quickly.
    [
      'staged tiles',
      { staging: 'always', workgroupSize: 16, limits: { maxComputeWorkgroupStorageSize: 256 + 4 * D * 6 } },
      ['sum', 'logSumExp', 'argMax'],
    ],
  ];

  describe.each(configs)('%s', (_name, options, which) => {
    it.each(which)('%s against float64 references', async (check) => {
      const engine = make(options);
      await checks[check](engine);
      if (options.limits?.maxPairsPerDispatch !== undefined) expect(engine.stats.dispatches).toBeGreaterThan(1);
    });
  });

  it('block-sparse ranges with a D-wide result', async () => {
    const ranges = {
      rangesI: Int32Array.of(0, 3, 3, 6),
      slicesI: Int32Array.of(1, 3),
      redRangesJ: Int32Array.of(0, 20, 50, 70, 10, 30),
      rangesJ: Int32Array.of(0, 70),
      slicesJ: Int32Array.of(2),
      redRangesI: Int32Array.of(0, 3, 3, 6),
    };
    const got = await F.sum(1, { engine: 'webgpu', ranges });
    expectGpu(got, 'sparse');
    const want = await F.sum(1, { engine: 'wasm', ranges });
    expectClose(got.data, Array.from(want.data), 2e-5, 1e-5, undefined, 'sparse sum');
  });
});

describe.skipIf(!hasGpu)('WebGPU: K-min lists beyond MAX_GPU_K run on WebAssembly', () => {
  it('argKMin with K = 10^4 on engine: "webgpu" returns the WebAssembly result, silently', async () => {
    const warn = vi.spyOn(console, 'warn');
    try {
      const N = 4;
      const M = 10_050;
      const { x, y } = data(2, N, M, 77);
      const K = 10_000;
      const got = await x.sqDist(y).argKMin(K, 1, { engine: 'webgpu' });
      expect(got.engine).toBe('wasm');
      const want = await x.sqDist(y).argKMin(K, 1, { engine: 'wasm' });
      expect(got.data).toEqual(want.data);
      // At the limit it still runs on WebGPU, with the same neighbours.
      const atLimit = await x.sqDist(y).argKMin(MAX_GPU_K, 1, { engine: 'webgpu' });
      expectGpu(atLimit, 'K = MAX_GPU_K');
      expect(Array.from(atLimit.data)).toEqual(
        Array.from((await x.sqDist(y).argKMin(MAX_GPU_K, 1, { engine: 'wasm' })).data),
      );
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('the engine itself rejects such a plan with a RangeError naming the limit', async () => {
    const engine = (await webgpuTesting.engine())!;
    const { x, y } = data(2, 2, 100, 78);
    await expect(
      engine.reduce(x.sqDist(y).plan('argKMin', 1, undefined, undefined, undefined, MAX_GPU_K + 1)),
    ).rejects.toThrow(RangeError);
    await expect(
      engine.reduce(x.sqDist(y).plan('argKMin', 1, undefined, undefined, undefined, MAX_GPU_K + 1)),
    ).rejects.toThrow(/K = 65/);
  });
});
