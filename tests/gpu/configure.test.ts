// configureWebGPU validates its options like every other options object of the library (issue 10
// row 11), and the engine's caches are bounded: pipelines are an LRU of pipelineCacheSize entries,
// free buffers at most bufferCacheBytes (issue 10: 100 distinct formulas grew the RSS by 25 MiB).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InputError, Vi, Vj, type LazyTensor } from '../../src/index.js';
import { DEFAULT_PIPELINE_CACHE_SIZE, WebGPUEngine } from '../../src/gpu/engine.js';
import {
  AUTO_MIN_PAIRS,
  configureWebGPU,
  webgpuStatus,
  webgpuTesting,
  type WebGPUOptions,
} from '../../src/runtime/index.js';
import { rng } from '../helpers/random.js';
import { hasGpu } from './setup.js';

describe('configureWebGPU: validation', () => {
  afterAll(() =>
    configureWebGPU({
      autoMinPairs: AUTO_MIN_PAIRS,
      autoUseFallbackAdapter: false,
      limits: undefined,
      workgroupSize: undefined,
      staging: undefined,
    }),
  );

  // What the issue tried, then one bad value per option; `as never` stands for untyped callers.
  const bad: [string, unknown, typeof InputError, RegExp][] = [
    ["the issue's options", { workgroupSize: 0, foo: 1, staging: 'bogus' }, InputError, /unknown option 'foo'/],
    ['an unknown key', { workgroupsize: 64 }, InputError, /unknown option 'workgroupsize'.*known: autoMinPairs/],
    ['a prototype key', JSON.parse('{"__proto__": {"x": 1}}'), InputError, /unknown option '__proto__'/],
    ['null', null, InputError, /the options must be an object, got null/],
    ['an array', [], InputError, /the options must be an object, got an array/],
    ['a string', 'fast', InputError, /got 'fast'/],
    ['workgroupSize 0', { workgroupSize: 0 }, InputError, /workgroupSize must be an integer from 1 to 1024, got 0/],
    ['workgroupSize 96', { workgroupSize: 96 }, InputError, /workgroupSize must be a power of two/],
    ['workgroupSize 2048', { workgroupSize: 2048 }, InputError, /workgroupSize.*got 2048/],
    ['workgroupSize 64.5', { workgroupSize: 64.5 }, InputError, /workgroupSize/],
    ['workgroupSize NaN', { workgroupSize: NaN }, InputError, /workgroupSize.*got NaN/],
    ['workgroupSize as a string', { workgroupSize: '64' }, InputError, /workgroupSize must be a number, got '64'/],
    ['staging bogus', { staging: 'bogus' }, InputError, /staging must be 'auto', 'always' or 'never', got 'bogus'/],
    ['staging true', { staging: true }, InputError, /staging/],
    [
      'innerParts bogus',
      { innerParts: 'some' },
      InputError,
      /innerParts must be 'auto', 'always' or 'never', got 'some'/,
    ],
    [
      'autoMinPairs -1',
      { autoMinPairs: -1 },
      InputError,
      /autoMinPairs must be an integer >= 0 \(or Infinity\), got -1/,
    ],
    ['autoMinPairs NaN', { autoMinPairs: NaN }, InputError, /autoMinPairs.*NaN/],
    ['autoMinPairs 1.5', { autoMinPairs: 1.5 }, InputError, /autoMinPairs/],
    ['autoMinPairs as a bigint', { autoMinPairs: 5n }, InputError, /autoMinPairs must be a number, got 5n/],
    [
      'autoUseFallbackAdapter 1',
      { autoUseFallbackAdapter: 1 },
      InputError,
      /autoUseFallbackAdapter must be a boolean, got 1/,
    ],
    ['limits null', { limits: null }, InputError, /limits must be an object, got null/],
    ['limits 5', { limits: 5 }, InputError, /limits must be an object/],
    ['an unknown limit', { limits: { maxBindGroups: 2 } }, InputError, /unknown limit 'limits.maxBindGroups'/],
    [
      'an unlowerable limit',
      { limits: { minUniformBufferOffsetAlignment: 256 } },
      InputError,
      /limits.minUniformBufferOffsetAlignment/,
    ],
    [
      'a zero limit',
      { limits: { maxPairsPerDispatch: 0 } },
      InputError,
      /limits.maxPairsPerDispatch must be an integer >= 1, got 0/,
    ],
    ['an infinite limit', { limits: { maxBufferSize: Infinity } }, InputError, /limits.maxBufferSize/],
    ['a fractional limit', { limits: { maxBufferSize: 1e3 + 0.5 } }, InputError, /limits.maxBufferSize/],
    ['pipelineCacheSize 0', { pipelineCacheSize: 0 }, InputError, /pipelineCacheSize must be an integer >= 1, got 0/],
    ['bufferCacheBytes -1', { bufferCacheBytes: -1 }, InputError, /bufferCacheBytes must be an integer >= 0, got -1/],
  ];

  it.each(bad)('%s is rejected with a named error', (_name, value, type, message) => {
    let caught: unknown;
    try {
      configureWebGPU(value as WebGPUOptions);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(type);
    expect((caught as Error).message).toMatch(/^configureWebGPU: /);
    expect((caught as Error).message).toMatch(message);
  });

  it('nothing is applied when any option is invalid', async () => {
    configureWebGPU({ autoMinPairs: 123 });
    expect(() => configureWebGPU({ autoMinPairs: 7, staging: 'bogus' } as never)).toThrow(InputError);
    // 'auto' still uses the earlier threshold: 100 pairs stay below 123 and run on wasm.
    const x = Vi(new Float32Array(10), 1);
    const y = Vj(new Float32Array(10), 1);
    expect((await x.sqDist(y).sum(1)).engine).toBe('wasm');
  });

  it('valid options are accepted, including undefined (restore) and Infinity for autoMinPairs', () => {
    const good: WebGPUOptions[] = [
      {},
      { autoMinPairs: 0 },
      { autoMinPairs: Infinity },
      { autoUseFallbackAdapter: true },
      { workgroupSize: 1 },
      { workgroupSize: 1024 },
      { workgroupSize: undefined },
      { staging: 'never' },
      { staging: undefined },
      { innerParts: 'never' },
      { innerParts: undefined },
      { limits: { maxPairsPerDispatch: 1000, maxBufferSize: undefined } },
      { limits: undefined },
      { pipelineCacheSize: 1 },
      { bufferCacheBytes: 0 },
      Object.assign(Object.create(null) as object, { autoMinPairs: 5 }) as WebGPUOptions,
    ];
    for (const o of good) expect(() => configureWebGPU(o)).not.toThrow();
    configureWebGPU({ pipelineCacheSize: DEFAULT_PIPELINE_CACHE_SIZE, bufferCacheBytes: 256 * 1024 * 1024 });
  });
});

describe.skipIf(!hasGpu)('WebGPU caches are bounded', () => {
  let device: GPUDevice;
  const engines: WebGPUEngine[] = [];
  beforeAll(async () => {
    device = (await webgpuTesting.engine())!.device;
  });
  afterAll(() => engines.forEach((e) => e.trim(true)));

  /** 30 formulas of distinct structure (integer powers are part of the structure). */
  const formulas = (x: LazyTensor, y: LazyTensor): LazyTensor[] =>
    Array.from({ length: 30 }, (_, n) => x.sqDist(y).pow(n + 2));

  it('the pipeline cache is an LRU of pipelineCacheSize kernels', async () => {
    const engine = new WebGPUEngine(device, { cpuAdapter: true, pipelineCacheSize: 8 });
    engines.push(engine);
    // The cache belongs to the device: drop other suites' kernels so that only these count.
    engine.trim(true);
    const random = rng(1);
    const x = Vi(
      new Float32Array(20).map(() => random()),
      1,
    );
    const y = Vj(
      new Float32Array(30).map(() => random()),
      1,
    );
    const all = formulas(x, y);
    for (const F of all) {
      await engine.reduce(F.plan('sum', 1, undefined));
      expect(engine.cachedPipelines).toBeLessThanOrEqual(8);
    }
    expect(engine.stats.compiles).toBe(30);
    expect(engine.cachedPipelines).toBe(8);
    // The 8 most recent are cached: running them again compiles nothing...
    for (const F of all.slice(-8)) await engine.reduce(F.plan('sum', 1, undefined));
    expect(engine.stats.compiles).toBe(30);
    // ...and a hit refreshes an entry: after using the oldest of them, a new kernel evicts the next one.
    await engine.reduce(all[22]!.plan('sum', 1, undefined));
    await engine.reduce(all[0]!.plan('sum', 1, undefined)); // evicted long ago: compiles, evicts all[23]
    expect(engine.stats.compiles).toBe(31);
    await engine.reduce(all[22]!.plan('sum', 1, undefined));
    expect(engine.stats.compiles).toBe(31);
    await engine.reduce(all[23]!.plan('sum', 1, undefined));
    expect(engine.stats.compiles).toBe(32);
  });

  it('buffers stay pooled and bounded over many formulas and sizes', async () => {
    const engine = new WebGPUEngine(device, { cpuAdapter: true, pipelineCacheSize: 4, bufferCacheBytes: 64 * 1024 });
    engines.push(engine);
    const random = rng(2);
    let most = 0;
    for (let r = 0; r < 40; r++) {
      const N = 1 + Math.floor(random() * 3000);
      const x = Vi(
        new Float32Array(N).map(() => random()),
        1,
      );
      const y = Vj(
        new Float32Array(50).map(() => random()),
        1,
      );
      await engine.reduce(
        x
          .sqDist(y)
          .pow(2 + (r % 6))
          .plan('sum', 1, undefined),
      );
      const s = engine.bufferStats();
      expect(s.inUse).toBe(0);
      expect(s.cachedBytes).toBeLessThanOrEqual(64 * 1024);
      most = Math.max(most, s.live);
    }
    // Bounded, not growing with the number of calls (each call takes about 6 buffers).
    expect(most).toBeLessThan(40);
    expect(engine.bufferStats().created).toBeGreaterThan(most);
  });

  it('configureWebGPU({ pipelineCacheSize }) reaches the runtime engine; webgpuStatus reports the count', async () => {
    configureWebGPU({ pipelineCacheSize: 3 });
    try {
      const random = rng(3);
      const x = Vi(
        new Float32Array(10).map(() => random()),
        1,
      );
      const y = Vj(
        new Float32Array(12).map(() => random()),
        1,
      );
      const warn = vi.spyOn(console, 'warn');
      for (const F of formulas(x, y).slice(0, 6)) expect((await F.sum(1, { engine: 'webgpu' })).engine).toBe('webgpu');
      expect(warn).not.toHaveBeenCalled();
      warn.mockRestore();
      expect((await webgpuStatus()).cachedPipelines).toBeLessThanOrEqual(3);
    } finally {
      configureWebGPU({ pipelineCacheSize: DEFAULT_PIPELINE_CACHE_SIZE });
    }
  });
});
