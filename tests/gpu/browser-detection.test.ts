// @vitest-environment happy-dom
// The browser-only detection paths under a DOM (happy-dom): no navigator.gpu, a navigator.gpu
// without adapters, no SharedArrayBuffer. The reductions still run, on WebAssembly.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Vi, Vj } from '../../src/index.js';
import { webgpuTesting } from '../../src/runtime/index.js';
import { detectFeatures } from '../../src/runtime/features.js';
import { defaultGpu } from '../../src/runtime/webgpu.js';

const x = Vi(new Float32Array([0, 0, 1, 1]), 2);
const y = Vj(new Float32Array([0, 1, 1, 0, 2, 2]), 2);
const WANT = [1 + 1 + 8, 1 + 1 + 2];

/** A browser's global scope as happy-dom gives it, without Node's `process`. */
const browserScope = (extra: Record<string, unknown> = {}): object => ({
  window,
  document,
  navigator: window.navigator,
  WebAssembly,
  ...extra,
});

let warn: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
});
afterEach(async () => {
  warn.mockRestore();
  await webgpuTesting.setProvider(null);
});

describe('feature detection in a browser without WebGPU (happy-dom)', () => {
  it('runs under a DOM', () => {
    expect(typeof document.createElement).toBe('function');
    expect(window.navigator.userAgent).toMatch(/HappyDOM/);
  });

  it('reports no navigator.gpu and no WebGPU source', () => {
    const f = detectFeatures(browserScope());
    expect(f.navigatorGpu).toBe(false);
    expect(f.browser).toBe(true);
    expect(f.node).toBe(false);
    expect(f.webgpu).toBe('none');
    expect(f.webAssembly).toBe(true);
    // The real global scope here has happy-dom's navigator, without gpu.
    expect(detectFeatures().navigatorGpu).toBe(false);
  });

  it('defaultGpu explains that navigator.gpu is absent', async () => {
    expect(await defaultGpu(browserScope())).toMatch(/navigator\.gpu is absent/);
  });

  it('prefers navigator.gpu when it exists', async () => {
    const gpu = { requestAdapter: async () => null };
    const scope = browserScope({ navigator: { gpu } });
    expect(detectFeatures(scope).webgpu).toBe('navigator');
    expect(await defaultGpu(scope)).toBe(gpu);
  });

  it("{ engine: 'webgpu' } without navigator.gpu runs on wasm with one warning", async () => {
    await webgpuTesting.setProvider(() => defaultGpu(browserScope()));
    for (let k = 0; k < 3; k++) {
      const s = await x.sqDist(y).sum(1, { engine: 'webgpu' });
      expect(s.engine).toBe('wasm');
      expect(Array.from(s.data)).toEqual(WANT);
    }
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/navigator\.gpu is absent/);
  });

  it('a navigator.gpu with no adapter (the default detection path) runs on wasm with one warning', async () => {
    const requestAdapter = vi.fn(async () => null);
    Object.defineProperty(window.navigator, 'gpu', { value: { requestAdapter }, configurable: true });
    try {
      expect(detectFeatures().webgpu).toBe('navigator');
      await webgpuTesting.setProvider(null);
      const s = await x.sqDist(y).argMin(1, { engine: 'webgpu' });
      expect(s.engine).toBe('wasm');
      expect(requestAdapter).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/no WebGPU adapter/);
    } finally {
      delete (window.navigator as { gpu?: unknown }).gpu;
    }
  });
});

describe('no SharedArrayBuffer (a page without cross-origin isolation)', () => {
  it('is detected, and reductions still run', async () => {
    const saved = globalThis.SharedArrayBuffer;
    // @ts-expect-error: removing a global for the test
    delete globalThis.SharedArrayBuffer;
    try {
      expect(typeof globalThis.SharedArrayBuffer).toBe('undefined');
      const f = detectFeatures();
      expect(f.sharedArrayBuffer).toBe(false);
      expect(f.crossOriginIsolated).toBe(false);
      expect(detectFeatures(browserScope()).sharedArrayBuffer).toBe(false);
      const s = await x.sqDist(y).sum(1, { engine: 'wasm' });
      expect(Array.from(s.data)).toEqual(WANT);
      const a = await x.sqDist(y).sum(1);
      expect(a.engine).toBe('wasm');
    } finally {
      globalThis.SharedArrayBuffer = saved;
    }
    expect(detectFeatures(browserScope({ SharedArrayBuffer })).sharedArrayBuffer).toBe(true);
  });
});
