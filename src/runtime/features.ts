// Feature detection, written against an injectable global object so that the browser-only paths
// (no navigator.gpu, no SharedArrayBuffer, no cross-origin isolation) are unit-testable anywhere.

/** Where a WebGPU implementation can come from in this runtime. */
export type WebGPUSource = 'navigator' | 'node-module' | 'none';

export interface RuntimeFeatures {
  /** `navigator.gpu` (browsers, Deno), the optional `webgpu` package (Node), or nothing. */
  readonly webgpu: WebGPUSource;
  /** Whether `navigator.gpu` exists. */
  readonly navigatorGpu: boolean;
  /** A Node-compatible runtime (process.versions.node). */
  readonly node: boolean;
  /** A window or worker global scope. */
  readonly browser: boolean;
  readonly webAssembly: boolean;
  /** SharedArrayBuffer exists (it needs cross-origin isolation in browsers). */
  readonly sharedArrayBuffer: boolean;
  readonly crossOriginIsolated: boolean;
}

interface GlobalLike {
  navigator?: { gpu?: unknown } | undefined;
  process?: { versions?: { node?: string } } | undefined;
  window?: unknown;
  document?: unknown;
  WorkerGlobalScope?: unknown;
  WebAssembly?: unknown;
  SharedArrayBuffer?: unknown;
  crossOriginIsolated?: boolean;
}

/** Detects what this runtime offers. `scope` defaults to globalThis. */
export function detectFeatures(scope: object = globalThis): RuntimeFeatures {
  const g = scope as GlobalLike;
  const navigatorGpu = g.navigator != null && g.navigator.gpu != null;
  const node = typeof g.process?.versions?.node === 'string';
  const browser = g.window !== undefined || g.document !== undefined || g.WorkerGlobalScope !== undefined;
  return {
    webgpu: navigatorGpu ? 'navigator' : node ? 'node-module' : 'none',
    navigatorGpu,
    node,
    browser,
    webAssembly: typeof g.WebAssembly === 'object' && g.WebAssembly !== null,
    sharedArrayBuffer: typeof g.SharedArrayBuffer === 'function',
    crossOriginIsolated: g.crossOriginIsolated === true,
  };
}
