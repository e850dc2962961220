// Multi-core WebAssembly engine: a pool of workers, each with its own kernel instance. Results with
// W = 2 workers (reductions split across them, or several reductions at once) are bit-identical to
// W = 1 (the main thread's kernel), for every reduction family, both dtypes, dense and block-sparse;
// the engine falls back to the main thread when workers are unavailable or die; idle workers do not
// keep Node alive.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import {
  InputError,
  clusterRangesCentroids,
  fromMatrix,
  gridCluster,
  setDefaultEngine,
  sortClusters,
  Vi,
  Vj,
} from '../src/index.js';
import { wasmEngineTesting } from '../src/wasm/wasm-engine.js';
import { setWasmThreads, wasmThreadsTesting } from '../src/wasm/workers.js';
import { dyingWorkerFactory } from './helpers/fake-workers.js';
import { rng, typed, uniformRows } from './helpers/random.js';
// @ts-expect-error: a plain .mjs helper without types
import { esbuildWorkerPlugin } from '../scripts/worker-plugin.mjs';

type Out = Float32Array | Float64Array | Int32Array;
const bytes = (a: Out) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function expectIdentical(got: readonly Out[], want: readonly Out[]): void {
  expect(got.length).toBe(want.length);
  for (let k = 0; k < want.length; k++) {
    expect(got[k]!.constructor).toBe(want[k]!.constructor);
    expect(got[k]!.length).toBe(want[k]!.length);
    if (!bytes(got[k]!).equals(bytes(want[k]!))) {
      // Show where they differ.
      expect(Array.from(got[k]!), `output ${k}`).toEqual(Array.from(want[k]!));
    }
  }
}

/** Every family on a dense problem and a block-sparse one, in the given precision; the reductions
 *  of one group are issued concurrently (Promise.all). */
async function workload(dtype: 'float32' | 'float64'): Promise<Out[]> {
  const random = rng(dtype === 'float32' ? 5 : 6);
  const N = 301;
  const M = 517;
  const x = Vi(typed(uniformRows(random, N, 3), dtype), 3);
  const y = Vj(typed(uniformRows(random, M, 3), dtype), 3);
  const b = Vj(typed(uniformRows(random, M, 2), dtype), 2);
  const h = Vj(typed(uniformRows(random, M, 1), dtype), 1);
  const D = x.sqDist(y);
  const C = D.mul(-4);
  const dense = await Promise.all([
    C.exp().mul(b).sum(1),
    C.exp().sum(0),
    C.add(h).logSumExp(1),
    C.logSumExp(0),
    C.logSumExp(1, { weight: b }),
    C.sumSoftMaxWeight(1, b),
    D.min(1),
    D.argMin(0),
    D.argKMin(5, 1),
    D.kMin(3, 0),
  ]);
  const outs: Out[] = [];
  for (const r of dense) outs.push(r.data as Out);

  // Block-sparse: clusters of a 2-D grid, blocks whose centroids are close.
  const xs = uniformRows(random, 700, 2, 0, 1);
  const ys = uniformRows(random, 900, 2, 0, 1);
  const sx = sortClusters(xs, gridCluster(xs, 0.2));
  const sy = sortClusters(ys, gridCluster(ys, 0.2));
  const cx = clusterRangesCentroids(sx.points, sx.labels, undefined, 2);
  const cy = clusterRangesCentroids(sy.points, sy.labels, undefined, 2);
  const keep: boolean[] = [];
  for (let a = 0; a < cx.ranges.length / 2; a++) {
    for (let c = 0; c < cy.ranges.length / 2; c++) {
      keep.push(
        (cx.centroids[2 * a]! - cy.centroids[2 * c]!) ** 2 +
          (cx.centroids[2 * a + 1]! - cy.centroids[2 * c + 1]!) ** 2 <
          0.12,
      );
    }
  }
  const ranges = fromMatrix(cx.ranges, cy.ranges, keep);
  const toTyped = (p: ArrayLike<number>) => (dtype === 'float32' ? Float32Array.from(p) : Float64Array.from(p));
  const px = Vi(toTyped(sx.points), 2);
  const py = Vj(toTyped(sy.points), 2);
  const E = px.sqDist(py);
  const sparse = await Promise.all([
    E.mul(-20).exp().sum(1, { ranges }),
    E.mul(-20).exp().sum(0, { ranges }),
    E.mul(-20).logSumExp(1, { ranges }),
    E.mul(-20).logSumExp(0, { ranges }),
    E.argMin(1, { ranges }),
    E.argKMin(4, 0, { ranges }),
  ]);
  for (const r of sparse) outs.push(r.data as Out);
  return outs;
}

/** One large reduction (above the default split threshold: 2100^2 > 2^22 pairs). */
async function large(): Promise<Out[]> {
  const random = rng(9);
  const n = 2100;
  const x = Vi(typed(uniformRows(random, n, 3), 'float32'), 3);
  const y = Vj(typed(uniformRows(random, n, 3), 'float32'), 3);
  const r = await x.sqDist(y).mul(-10).logSumExp(1);
  return [r.data as Out];
}

async function jobsRun(): Promise<number> {
  return (await wasmThreadsTesting.pool())?.jobsRun ?? 0;
}

describe('multi-threaded WebAssembly engine', () => {
  const single: Record<string, Out[]> = {};

  beforeAll(async () => {
    setDefaultEngine('wasm');
    setWasmThreads(1);
    single.float32 = await workload('float32');
    single.float64 = await workload('float64');
    single.large = await large();
  });

  afterAll(async () => {
    wasmEngineTesting.reset();
    wasmThreadsTesting.setWorkerFactory(undefined);
    setWasmThreads(undefined);
    await wasmThreadsTesting.close();
    setDefaultEngine('auto');
  });

  it.each(['float32', 'float64'] as const)(
    'W = 2, every reduction split across workers, equals W = 1 bit for bit (%s)',
    async (dtype) => {
      setWasmThreads(2);
      wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
      try {
        const before = await jobsRun();
        expectIdentical(await workload(dtype), single[dtype]!);
        const pool = await wasmThreadsTesting.pool();
        expect(pool?.size).toBe(2);
        expect(pool!.jobsRun - before).toBeGreaterThanOrEqual(2 * 16 - 2); // nearly every reduction ran as 2 parts
      } finally {
        wasmEngineTesting.reset();
      }
    },
  );

  it('W = 2, reductions whole on workers (no split), concurrently, equal W = 1', async () => {
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: Infinity, mainThreadMaxPairs: 0 });
    try {
      const before = await jobsRun();
      const [a, b] = await Promise.all([workload('float32'), workload('float64')]);
      expectIdentical(a, single.float32!);
      expectIdentical(b, single.float64!);
      expect((await jobsRun()) - before).toBe(32);
    } finally {
      wasmEngineTesting.reset();
    }
  });

  it('default thresholds: a large reduction is split, concurrent ones share the pool', async () => {
    setWasmThreads(2);
    const before = await jobsRun();
    const results = await Promise.all([large(), large(), large()]);
    for (const r of results) expectIdentical(r, single.large!);
    expect((await jobsRun()) - before).toBe(6);
  });

  it('falls back to the main thread when workers are unavailable', async () => {
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
    try {
      // No Worker at all (edge runtimes).
      wasmThreadsTesting.setWorkerFactory(null);
      expectIdentical(await workload('float32'), single.float32!);
      expect(await wasmThreadsTesting.pool()).toBeNull();
      // Creating a worker throws (e.g. a CSP forbidding blob: workers).
      wasmThreadsTesting.setWorkerFactory(() => {
        throw new Error('no workers here');
      });
      expectIdentical(await workload('float64'), single.float64!);
      expect(await wasmThreadsTesting.pool()).toBeNull();
      // A worker that never starts its kernel.
      wasmThreadsTesting.setWorkerFactory(() => ({
        postMessage() {},
        listen(_onMessage, onFailure) {
          setTimeout(() => onFailure(new Error('failed to start')), 5);
        },
        ref() {},
        unref() {},
        terminate() {},
      }));
      expectIdentical(await large(), single.large!);
      expect(await wasmThreadsTesting.pool()).toBeNull();
    } finally {
      wasmEngineTesting.reset();
      wasmThreadsTesting.setWorkerFactory(undefined);
    }
  });

  it('reruns on the main thread when a worker dies during a job', async () => {
    setWasmThreads(2);
    const factory = dyingWorkerFactory();
    wasmThreadsTesting.setWorkerFactory(factory);
    try {
      expectIdentical(await large(), single.large!);
    } finally {
      wasmThreadsTesting.setWorkerFactory(undefined);
    }
  });

  it('setWasmThreads validates its argument', () => {
    expect(() => setWasmThreads(0)).toThrow(InputError);
    expect(() => setWasmThreads(1.5)).toThrow(InputError);
  });
});

describe('process lifetime', () => {
  it('a Node process that used the workers exits on its own', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'lazytensor-threads-'));
    try {
      const script = `
        import { Vi, Vj, setDefaultEngine } from './src/index.ts';
        import { setWasmThreads, wasmThreadsTesting } from './src/wasm/workers.ts';
        setDefaultEngine('wasm');
        setWasmThreads(2);
        const n = 2500;
        const x = new Float32Array(3 * n).map((_, k) => Math.sin(k));
        const y = new Float32Array(3 * n).map((_, k) => Math.cos(k));
        const r = await Vi(x, 3).sqDist(Vj(y, 3)).mul(-3).exp().sum(1);
        const pool = await wasmThreadsTesting.pool();
        console.log(JSON.stringify({ rows: r.data.length, finite: r.data.every(Number.isFinite), jobs: pool ? pool.jobsRun : 0 }));
      `;
      const out = join(dir, 'script.mjs');
      await build({
        stdin: { contents: script, resolveDir: root, loader: 'ts', sourcefile: 'script.ts' },
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        outfile: out,
        plugins: [esbuildWorkerPlugin()],
        logLevel: 'silent',
      });
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      const t0 = Date.now();
      const run = spawnSync(process.execPath, [out], { encoding: 'utf8', timeout: 60_000 });
      expect(run.error).toBeUndefined();
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout.trim())).toEqual({ rows: 2500, finite: true, jobs: 2 });
      expect(Date.now() - t0).toBeLessThan(30_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
