// Feature detection, written against an injectable global object so that the browser-only paths
// (no navigator.gpu, no SharedArrayBuffer, no cross-origin isolation) are unit-testable anywhere.

/** Where a WebGPU implementation can come from in this runtime. */
export type WebGPUSource = 'navigator' | 'node-module' | 'none';

export interface RuntimeFeatures {
  /** `navigator.gpu` (browsers, Deno), the optional `webgpu` package (Node), or nothing. */
  readonly webgpu: WebGPUSource;
  /** Whether `navigator.gpu` exists. */
  readonly navigatorGpu: boolean;
  /** A Node-compatible runtime with Node's native modules (Node, Deno, Bun): process.versions.node,
   *  and not an edge runtime that only emulates `process` (workerd sets process.versions.node too). */
  readonly node: boolean;
  /** Which runtime this is (see detectRuntime). */
  readonly runtime: RuntimeName;
  /** A window or worker global scope. */
  readonly browser: boolean;
  readonly webAssembly: boolean;
  /** SharedArrayBuffer exists (it needs cross-origin isolation in browsers). */
  readonly sharedArrayBuffer: boolean;
  readonly crossOriginIsolated: boolean;
}

/** The runtimes told apart: they differ in how workers start and whether Node modules exist. */
export type RuntimeName = 'node' | 'deno' | 'bun' | 'workerd' | 'edge' | 'browser' | 'unknown';

interface GlobalLike {
  navigator?: { gpu?: unknown; userAgent?: unknown } | undefined;
  process?: { versions?: { node?: string; bun?: string; deno?: string } } | undefined;
  Deno?: unknown;
  Bun?: unknown;
  EdgeRuntime?: unknown;
  WebSocketPair?: unknown;
  window?: unknown;
  document?: unknown;
  WorkerGlobalScope?: unknown;
  WebAssembly?: unknown;
  SharedArrayBuffer?: unknown;
  crossOriginIsolated?: boolean;
}

/** Which runtime `scope` (default globalThis) belongs to. Edge runtimes come first: Cloudflare's
 *  workerd (navigator.userAgent 'Cloudflare-Workers', or its WebSocketPair global) and Vercel's edge
 *  runtime (EdgeRuntime) define a `process` with versions.node under Node compatibility flags, but
 *  have no worker_threads, no file system and cannot compile Wasm from bytes. */
export function detectRuntime(scope: object = globalThis): RuntimeName {
  const g = scope as GlobalLike;
  const ua = typeof g.navigator?.userAgent === 'string' ? g.navigator.userAgent : '';
  if (
    ua.startsWith('Cloudflare-Workers') ||
    (typeof g.WebSocketPair === 'function' && g.window === undefined && g.document === undefined)
  )
    return 'workerd';
  if (typeof g.EdgeRuntime === 'string') return 'edge';
  if (g.Deno !== undefined && typeof g.Deno === 'object') return 'deno';
  if (g.Bun !== undefined || typeof g.process?.versions?.bun === 'string') return 'bun';
  if (typeof g.process?.versions?.node === 'string') return 'node';
  if (g.window !== undefined || g.document !== undefined || g.WorkerGlobalScope !== undefined) return 'browser';
  return 'unknown';
}

/** Detects what this runtime offers. `scope` defaults to globalThis. */
export function detectFeatures(scope: object = globalThis): RuntimeFeatures {
  const g = scope as GlobalLike;
  const navigatorGpu = g.navigator != null && g.navigator.gpu != null;
  const runtime = detectRuntime(scope);
  const node = runtime === 'node' || runtime === 'deno' || runtime === 'bun';
  const browser = g.window !== undefined || g.document !== undefined || g.WorkerGlobalScope !== undefined;
  return {
    webgpu: navigatorGpu ? 'navigator' : node ? 'node-module' : 'none',
    navigatorGpu,
    node,
    runtime,
    browser,
    webAssembly: typeof g.WebAssembly === 'object' && g.WebAssembly !== null,
    sharedArrayBuffer: typeof g.SharedArrayBuffer === 'function',
    crossOriginIsolated: g.crossOriginIsolated === true,
  };
}
