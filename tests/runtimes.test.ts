// Runtime support (issue 9/10): runtime detection (workerd is not Node), workers that never answer are
// given up within about a second and said once, workers disabled after repeated deaths are reported,
// wasmStatus / releaseWasm / useWasmModule, and quiet 'auto' on a machine without a Vulkan driver.
// The packed package in every runtime is tested by scripts/runtime-matrix.mjs (.ci/run).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  InputError,
  ResourceLimitError,
  releaseWasm,
  setDefaultEngine,
  setWasmThreads,
  setWasmWorkerUrl,
  useWasmModule,
  Vi,
  Vj,
  wasmStatus,
} from '../src/index.js';
import { detectFeatures, detectRuntime } from '../src/runtime/features.js';
import { WorkerPool, wasmThreadsTesting, type WorkerReply } from '../src/wasm/workers.js';
import { wasmEngineTesting } from '../src/wasm/wasm-engine.js';
import { dyingWorkerFactory, fakeWorkerFactory } from './helpers/fake-workers.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A reduction big enough for the pool (the thresholds are lowered in these tests), checked against
 *  a dense float64 evaluation. */
async function checkedSum(): Promise<void> {
  const n = 64;
  const x = Float64Array.from({ length: 2 * n }, (_, k) => Math.sin(k));
  const y = Float64Array.from({ length: 2 * n }, (_, k) => Math.cos(3 * k));
  const r = await Vi(x, 2).sqDist(Vj(y, 2)).mul(-2).exp().sum(1);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++)
      s += Math.exp(-2 * ((x[2 * i]! - y[2 * j]!) ** 2 + (x[2 * i + 1]! - y[2 * j + 1]!) ** 2));
    expect(r.data[i]).toBeCloseTo(s, 12);
  }
}

describe('detectRuntime', () => {
  it('tells workerd (which defines process.versions.node) from Node, and the others apart', () => {
    const nodeProcess = { versions: { node: '22.0.0' } };
    expect(detectRuntime({ process: nodeProcess, navigator: { userAgent: 'Cloudflare-Workers' } })).toBe('workerd');
    expect(detectRuntime({ process: nodeProcess, WebSocketPair: function WebSocketPair() {} })).toBe('workerd');
    expect(detectRuntime({ process: nodeProcess, EdgeRuntime: 'edge-runtime' })).toBe('edge');
    expect(detectRuntime({ process: nodeProcess, Deno: { version: {} } })).toBe('deno');
    expect(detectRuntime({ process: { versions: { node: '22.6.0', bun: '1.4.4' } } })).toBe('bun');
    expect(detectRuntime({ process: nodeProcess, navigator: { userAgent: 'Node.js/22' } })).toBe('node');
    expect(detectRuntime({ window: {}, document: {} })).toBe('browser');
    expect(detectRuntime({})).toBe('unknown');
    expect(detectRuntime()).toBe('node');
    // workerd: not Node, so no Dawn import and no worker_threads.
    const f = detectFeatures({ process: nodeProcess, navigator: { userAgent: 'Cloudflare-Workers' } });
    expect([f.node, f.runtime, f.webgpu]).toEqual([false, 'workerd', 'none']);
  });
});

describe('worker pool state', () => {
  beforeAll(() => {
    setDefaultEngine('wasm');
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    wasmThreadsTesting.setWorkerFactory(undefined);
  });
  afterAll(async () => {
    wasmEngineTesting.reset();
    setWasmThreads(undefined);
    await wasmThreadsTesting.close();
    setDefaultEngine('auto');
  });

  it('real workers: every worker does work, and wasmStatus says so', async () => {
    setWasmThreads(2);
    const before = await wasmStatus();
    expect(before.workers).toBe('not-started');
    await Promise.all([checkedSum(), checkedSum(), checkedSum()]);
    const s = await wasmStatus();
    expect(s).toMatchObject({
      runtime: 'node',
      requestedThreads: 2,
      threads: 2,
      workers: 'running',
      reason: null,
      restarts: 0,
      kernelSource: 'inline',
    });
    expect(s.jobsPerWorker.length).toBe(2);
    expect(s.jobsPerWorker.every((c) => c > 0)).toBe(true);
  });

  it('a worker that never answers is given up within about a second, said once', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    setWasmThreads(2);
    wasmThreadsTesting.setWorkerFactory(() => ({
      postMessage() {},
      listen() {},
      ref() {},
      unref() {},
      terminate() {},
    }));
    const t0 = performance.now();
    await checkedSum();
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(3000);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    await checkedSum(); // no second wait, no second warning
    expect(performance.now() - t0 - elapsed).toBeLessThan(900);
    const s = await wasmStatus();
    expect(s).toMatchObject({ workers: 'failed', threads: 1 });
    expect(s.reason).toMatch(/did not answer within 1000 ms/);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/workers did not start .*one thread/);
  });

  it('workers disabled after repeated deaths are reported (status and one warning); setWasmThreads retries', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    setWasmThreads(2);
    let created = 0;
    const dying = dyingWorkerFactory(() => created++);
    wasmThreadsTesting.setWorkerFactory(dying);
    for (let k = 0; k < 6; k++) await checkedSum(); // each rerun on the main thread, still correct
    const s = await wasmStatus();
    expect(s).toMatchObject({ workers: 'disabled', threads: 1, restarts: 4 });
    expect(s.reason).toMatch(/died 4 times/);
    expect(created).toBe(8); // 4 pools of 2, then no more
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/until setWasmThreads\(\)/);
    wasmThreadsTesting.setWorkerFactory(undefined); // calls setWasmThreads: retried
    expect((await wasmStatus()).workers).toBe('not-started');
    await checkedSum();
    expect((await wasmStatus()).workers).toBe('running');
  });

  it("a worker's named error is rethrown as the same class on the calling thread", async () => {
    // A worker that instantiates, then fails each job with the reply a worker sends for a thrown error.
    const replies: WorkerReply[] = [
      {
        type: 'error',
        id: 1,
        name: 'ResourceLimitError',
        message: 'sum: too big',
        limit: { needed: 5, limit: 4, unit: 'bytes' },
      },
      { type: 'error', id: 2, name: 'InputError', message: 'sum: bad' },
      { type: 'error', id: 3, name: 'Error', message: 'sum: other' },
    ];
    const failing = fakeWorkerFactory((reply) => reply(replies.shift()!));
    const pool = await WorkerPool.start(1, failing);
    try {
      const job = {} as Parameters<WorkerPool['run']>[0];
      const limit = await pool.run(job).catch((e: unknown) => e);
      expect(limit).toBeInstanceOf(ResourceLimitError);
      expect(limit).toMatchObject({ message: 'sum: too big', needed: 5, limit: 4, unit: 'bytes' });
      const input = await pool.run(job).catch((e: unknown) => e);
      expect(input).toBeInstanceOf(InputError);
      expect((input as Error).message).toBe('sum: bad');
      const other = await pool.run(job).catch((e: unknown) => e);
      expect(other).toBeInstanceOf(Error);
      expect(other).not.toBeInstanceOf(InputError);
    } finally {
      pool.close();
    }
  });

  it('no workers in this runtime: unavailable, silent', async () => {
    const warn = vi.spyOn(console, 'warn');
    setWasmThreads(2);
    wasmThreadsTesting.setWorkerFactory(null);
    await checkedSum();
    expect(await wasmStatus()).toMatchObject({ workers: 'unavailable', threads: 1 });
    expect(warn).not.toHaveBeenCalled();
  });

  it('one thread: off', async () => {
    setWasmThreads(1);
    await checkedSum();
    expect(await wasmStatus()).toMatchObject({ workers: 'off', threads: 1, requestedThreads: 1 });
    setWasmThreads(2);
  });

  it('setWasmWorkerUrl validates its argument and is reported', () => {
    expect(() => setWasmWorkerUrl(42 as never)).toThrow(InputError);
    expect(() => setWasmWorkerUrl({} as never)).toThrow(/string, a URL or null/);
    setWasmWorkerUrl(new URL('https://example.test/worker.js'));
    return wasmStatus().then((s) => {
      expect(s.workerUrl).toBe('https://example.test/worker.js');
      setWasmWorkerUrl(null);
    });
  });
});

describe('releaseWasm and useWasmModule', () => {
  beforeAll(() => setDefaultEngine('wasm'));
  afterAll(() => setDefaultEngine('auto'));

  it('releaseWasm drops the kernel instance; the next reduction makes a new one', async () => {
    setWasmThreads(1);
    await checkedSum();
    const s = await wasmStatus();
    expect(s.instantiated).toBe(true);
    expect(s.memoryBytes).toBeGreaterThan(0);
    releaseWasm();
    expect(await wasmStatus()).toMatchObject({ instantiated: false, memoryBytes: 0 });
    await checkedSum();
    expect((await wasmStatus()).instantiated).toBe(true);
    setWasmThreads(undefined);
  });

  it('useWasmModule takes a compiled module (dist/kernel.wasm), rejects anything else', async () => {
    const file = new URL('../dist/kernel.wasm', import.meta.url);
    const bytes = readFileSync(existsSync(file) ? file : new URL('../build/kernel.wasm', import.meta.url));
    expect(() => useWasmModule(bytes as never)).toThrow(InputError);
    expect(() => useWasmModule(undefined as never)).toThrow(/must be a WebAssembly.Module/);
    useWasmModule(await WebAssembly.compile(bytes));
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
    try {
      await checkedSum(); // on the workers (posted the module)
      setWasmThreads(1);
      await checkedSum(); // on the main thread
      expect(await wasmStatus()).toMatchObject({ kernelSource: 'user-module', instantiated: true });
    } finally {
      wasmEngineTesting.reset();
      setWasmThreads(undefined);
    }
  });
});

describe('quiet by default', () => {
  it("'auto' prints nothing on a machine without a Vulkan driver, with the webgpu package installed", () => {
    if (!existsSync(new URL('../dist/index.js', import.meta.url)))
      return expect.fail('dist/ is missing: npm run build');
    const env: Record<string, string | undefined> = {
      ...process.env,
      HOME: '/nonexistent',
      XDG_DATA_DIRS: '/nonexistent',
      XDG_CONFIG_DIRS: '/nonexistent',
    };
    delete env.VK_ICD_FILENAMES;
    const script = `
      const lt = await import('./dist/index.js');
      await import('webgpu'); // installed (a devDependency)
      const n = 2100; const x = new Float32Array(3 * n).map((_, k) => Math.sin(k));
      const r = await lt.Vi(x, 3).sqDist(lt.Vj(x, 3)).mul(-3).exp().sum(1);
      const g = await lt.webgpuStatus();
      process.stdout.write(JSON.stringify({ engine: r.engine, available: g.available, reason: g.reason }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout) as { engine: string; available: boolean; reason: string };
    expect(out.engine).toBe('wasm');
    expect(out.available).toBe(false);
    expect(out.reason).toMatch(/no Vulkan driver/);
  });
});
