// Engine selection and fallbacks: no WebGPU implementation, no adapter, a refused or failing adapter,
// a lost device, float64, 'auto'. Every fallback runs the reduction on WebAssembly with one
// console.warn per cause, never an unhandled rejection.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setDefaultEngine, Vi, Vj } from '../../src/index.js';
import { AUTO_MIN_PAIRS, configureWebGPU, webgpuTesting } from '../../src/runtime/index.js';
import type { GpuLike } from '../../src/runtime/webgpu.js';
import { hasGpu } from './setup.js';

const x = Vi(new Float32Array([0, 0, 1, 1]), 2);
const y = Vj(new Float32Array([0, 1, 1, 0, 2, 2]), 2);
const WANT = [1 + 1 + 8, 1 + 1 + 2];

let warn: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
});
afterEach(async () => {
  warn.mockRestore();
  setDefaultEngine('auto');
  configureWebGPU({ autoMinPairs: AUTO_MIN_PAIRS, autoUseFallbackAdapter: false, limits: undefined });
  await webgpuTesting.setProvider(null);
});

const fakeAdapter = (
  overrides: Partial<{ device: string; requestDevice: () => Promise<GPUDevice> }> = {},
): GPUAdapter =>
  ({
    info: {
      vendor: 'fake',
      architecture: 'fake',
      device: overrides.device ?? 'fake',
      description: 'fake',
      isFallbackAdapter: false,
    },
    limits: {},
    features: new Set<string>(),
    requestDevice: overrides.requestDevice ?? (() => Promise.reject(new Error('no device for you'))),
  }) as unknown as GPUAdapter;

const provide = (gpu: GpuLike | string | null) => webgpuTesting.setProvider(async () => gpu);
/** Dawn instances made by the tests stay referenced for the process lifetime. */
const keepAlive: unknown[] = [];

async function sumOn(engine: 'webgpu' | 'auto' | 'wasm' | undefined) {
  const s = await x.sqDist(y).sum(1, engine === undefined ? undefined : { engine });
  expect(Array.from(s.data)).toEqual(WANT);
  return s;
}

describe('falling back to WebAssembly', () => {
  it('no WebGPU implementation: wasm, one warning for any number of calls', async () => {
    await provide('navigator.gpu is absent (test)');
    expect((await sumOn('webgpu')).engine).toBe('wasm');
    expect((await sumOn('webgpu')).engine).toBe('wasm');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/WebGPU is unavailable \(navigator\.gpu is absent \(test\)\)/);
  });

  it('requestAdapter() resolving to null: wasm with a warning naming the cause', async () => {
    await provide({ requestAdapter: async () => null });
    expect((await sumOn('webgpu')).engine).toBe('wasm');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/no WebGPU adapter/);
  });

  it('requestAdapter() rejecting: wasm, no unhandled rejection', async () => {
    await provide({ requestAdapter: () => Promise.reject(new Error('driver exploded')) });
    expect((await sumOn('webgpu')).engine).toBe('wasm');
    expect(String(warn.mock.calls[0]![0])).toMatch(/driver exploded/);
  });

  it('a throwing provider and a failing requestDevice() also fall back', async () => {
    await webgpuTesting.setProvider(() => Promise.reject(new Error('import failed')));
    expect((await sumOn('webgpu')).engine).toBe('wasm');
    expect(String(warn.mock.calls[0]![0])).toMatch(/import failed/);
    await provide({ requestAdapter: async () => fakeAdapter() });
    expect((await sumOn('webgpu')).engine).toBe('wasm');
    expect(String(warn.mock.calls[1]![0])).toMatch(/no device for you/);
  });

  it("refuses Dawn's null backend", async () => {
    const requestDevice = vi.fn(() => Promise.reject(new Error('must not be called')));
    await provide({ requestAdapter: async () => fakeAdapter({ device: 'null-backend', requestDevice }) });
    expect((await sumOn('webgpu')).engine).toBe('wasm');
    expect(String(warn.mock.calls[0]![0])).toMatch(/null backend/);
    expect(requestDevice).not.toHaveBeenCalled();
  });

  it("refuses the real Dawn null backend (create(['backend=null']))", async () => {
    let dawn: { create(flags: string[]): GpuLike };
    try {
      dawn = (await import('webgpu')) as unknown as { create(flags: string[]): GpuLike };
    } catch {
      return; // the optional package is absent: nothing to refuse
    }
    const nullGpu = dawn.create(['backend=null']);
    keepAlive.push(nullGpu);
    const adapter = await nullGpu.requestAdapter();
    if (adapter === null) return; // this Dawn build has no null backend
    expect(adapter.info.device).toBe('null-backend');
    await provide(nullGpu);
    expect((await sumOn('webgpu')).engine).toBe('wasm');
    expect(String(warn.mock.calls[0]![0])).toMatch(/null backend/);
  });

  it("'auto' falls back silently, and setDefaultEngine('webgpu') warns like the option", async () => {
    await provide({ requestAdapter: async () => null });
    configureWebGPU({ autoMinPairs: 0 });
    expect((await sumOn('auto')).engine).toBe('wasm');
    expect((await sumOn(undefined)).engine).toBe('wasm');
    expect(warn).not.toHaveBeenCalled();
    setDefaultEngine('webgpu');
    expect((await sumOn(undefined)).engine).toBe('wasm');
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('float64 reductions run on WebAssembly whatever the engine asked', async () => {
    const x64 = Vi(new Float64Array([0, 0, 1, 1]), 2);
    const y64 = Vj(new Float64Array([0, 1, 1, 0, 2, 2]), 2);
    const s = await x64.sqDist(y64).sum(1, { engine: 'webgpu' });
    expect(s.engine).toBe('wasm');
    expect(s.dtype).toBe('float64');
    expect(Array.from(s.data)).toEqual(WANT);
  });
});

describe.skipIf(!hasGpu)('selection and device loss with a real adapter', () => {
  it("'auto' stays on wasm below the threshold and on CPU adapters unless allowed", async () => {
    expect((await sumOn('auto')).engine).toBe('wasm'); // 6 pairs
    configureWebGPU({ autoMinPairs: 4 });
    expect((await sumOn('auto')).engine).toBe('wasm'); // SwiftShader is a fallback adapter
    configureWebGPU({ autoUseFallbackAdapter: true });
    expect((await sumOn('auto')).engine).toBe('webgpu');
    configureWebGPU({ autoMinPairs: 7 });
    expect((await sumOn('auto')).engine).toBe('wasm');
    expect(warn).not.toHaveBeenCalled();
  });

  it('keeps Dawn referenced for the process lifetime', async () => {
    await sumOn('webgpu');
    expect((globalThis as Record<symbol, unknown>)[Symbol.for('lazytensor.webgpu')]).toBeTruthy();
  });

  it('a lost device: one warning, then a new device is acquired', async () => {
    expect((await sumOn('webgpu')).engine).toBe('webgpu');
    await webgpuTesting.loseDevice();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/device was lost/);
    expect((await sumOn('webgpu')).engine).toBe('webgpu');
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('configureWebGPU rebuilds the engine on the same device; a later loss is still handled', async () => {
    expect((await sumOn('webgpu')).engine).toBe('webgpu');
    const before = await webgpuTesting.engine();
    configureWebGPU({ limits: { maxPairsPerDispatch: 2 } });
    const after = await webgpuTesting.engine();
    expect(after).not.toBe(before);
    expect(after!.device).toBe(before!.device);
    expect(after!.limits.maxPairsPerDispatch).toBe(2);
    const dispatches = after!.stats.dispatches;
    expect((await sumOn('webgpu')).engine).toBe('webgpu');
    expect(after!.stats.dispatches - dispatches).toBe(3); // 3 inner rows, 2 pairs per dispatch at most
    await webgpuTesting.loseDevice();
    expect(warn).toHaveBeenCalledTimes(1);
    expect((await sumOn('webgpu')).engine).toBe('webgpu');
    configureWebGPU({ limits: undefined });
    expect((await webgpuTesting.engine())!.limits.maxPairsPerDispatch).toBeGreaterThan(2);
  });

  it('a device lost during a reduction: that reduction runs on wasm', async () => {
    const random = (seed: number) => new Float32Array(3000 * 3).map((_, k) => Math.sin(seed * 1000 + k));
    const X = Vi(random(1), 3);
    const Y = Vj(random(2), 3);
    const F = X.sqDist(Y).mul(-1).exp();
    await F.sum(1, { engine: 'webgpu' }); // compile first
    const running = F.sum(1, { engine: 'webgpu' });
    await new Promise((r) => setTimeout(r, 1));
    const engine = await webgpuTesting.engine();
    engine!.device.destroy();
    const got = await running;
    const want = await F.sum(1, { engine: 'wasm' });
    for (let i = 0; i < 3000; i += 97) expect(got.data[i]).toBeCloseTo(want.data[i]!, 2);
    // Whichever engine finished it, later calls work and at most one warning was given.
    expect(warn.mock.calls.length).toBeLessThanOrEqual(1);
    expect((await sumOn('webgpu')).engine).toBe('webgpu');
  });
});

// The built bundle in a fresh Node process: the real detection paths, without test hooks.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bundle = path.join(root, 'dist/index.js');
const SCRIPT = `
const lt = await import(process.argv[1]);
const warns = [];
console.warn = (m) => warns.push(String(m));
process.on('unhandledRejection', (e) => { console.log(JSON.stringify({ unhandled: String(e) })); process.exit(3); });
const x = lt.Vi(new Float32Array([0, 0, 1, 1]), 2);
const y = lt.Vj(new Float32Array([0, 1, 1, 0, 2, 2]), 2);
const a = await x.sqDist(y).sum(1, { engine: 'webgpu' });
const b = await x.sqDist(y).argMin(1, { engine: 'webgpu' });
console.log(JSON.stringify({ engine: a.engine, data: Array.from(a.data), arg: Array.from(b.data), warns }));
`;
function runBundle(
  file: string,
  env: Record<string, string>,
): { engine: string; data: number[]; arg: number[]; warns: string[] } {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT, file], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'], // Dawn logs its Vulkan errors to stderr
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe.skipIf(!existsSync(bundle))('the built bundle in a fresh process', () => {
  it('no Vulkan driver: requestAdapter gives null, wasm with one warning', () => {
    const r = runBundle(bundle, { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(r.engine).toBe('wasm');
    expect(r.data).toEqual(WANT);
    expect(r.arg).toEqual([0, 0]); // ties go to the lowest index
    expect(r.warns).toHaveLength(1);
    expect(r.warns[0]).toMatch(/no WebGPU adapter/);
  });

  it("no 'webgpu' package: wasm with one warning", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lazytensor-'));
    try {
      // The whole dist folder (index.js imports its chunks), outside the repository's node_modules.
      cpSync(path.dirname(bundle), path.join(dir, 'dist'), { recursive: true });
      const r = runBundle(path.join(dir, 'dist', 'index.js'), {});
      expect(r.engine).toBe('wasm');
      expect(r.data).toEqual(WANT);
      expect(r.warns).toHaveLength(1);
      expect(r.warns[0]).toMatch(/'webgpu' package is not installed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasGpu)('with the driver: WebGPU', () => {
    const r = runBundle(bundle, {});
    expect(r.engine).toBe('webgpu');
    expect(r.data).toEqual(WANT);
    expect(r.arg).toEqual([0, 0]); // ties go to the lowest index
    expect(r.warns).toEqual([]);
  });
});
