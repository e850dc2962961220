// The main thread's WebAssembly engine: one kernel instance per JavaScript realm, instantiated at the
// first reduction from the module src/wasm/kernel-source.ts provides (inlined bytes, the
// bundled kernel.wasm of the edge entry, or the user's WebAssembly.Module). Also the public controls
// of the Wasm side: useWasmModule, releaseWasm, wasmStatus.
import { WasmEngine, type KernelExports } from './wasm-engine.js';
import { detectRuntime, type RuntimeName } from '../runtime/features.js';
import {
  dropCompiledModule,
  kernelGeneration,
  kernelModule,
  kernelSource,
  setUserModule,
  type KernelSource,
} from './kernel-source.js';
import { releaseWorkers, workerState, type WorkerState } from './workers.js';

let kernel: Promise<KernelExports> | null = null;
let kernelExports: KernelExports | null = null;
let engine: { generation: number; engine: Promise<WasmEngine> } | null = null;

/** The kernel's exports, instantiated once per JavaScript realm. */
export function loadKernel(): Promise<KernelExports> {
  if (kernel === null) {
    const current = (async () => {
      const module = await kernelModule();
      const instance = await WebAssembly.instantiate(module, {});
      return instance.exports as unknown as KernelExports;
    })();
    kernel = current;
    current.then(
      (k) => {
        if (kernel === current) kernelExports = k;
      },
      () => {
        if (kernel === current) kernel = null; // let a later call retry
      },
    );
  }
  return kernel;
}

/** The main thread's engine (created at first use, again after releaseWasm / useWasmModule). */
export function getWasmEngine(): Promise<WasmEngine> {
  const generation = kernelGeneration();
  if (engine === null || engine.generation !== generation) {
    const created = loadKernel().then((k) => new WasmEngine(k));
    engine = { generation, engine: created };
    created.catch(() => {
      if (engine?.engine === created) engine = null;
    });
  }
  return engine.engine;
}

/** A compiled `WebAssembly.Module`, written so that the published declarations do not need the DOM
 *  lib's (or @types/node's) `WebAssembly` namespace: where it is declared this is its Module type,
 *  elsewhere any object. */
export type WasmModule = typeof globalThis extends {
  /** The runtime's `WebAssembly` namespace, where the libs in use declare one. */
  WebAssembly: {
    /** Its `Module` class, whose prototype has the instance type. */
    Module: {
      /** The instance type of `WebAssembly.Module`. */
      prototype: infer M;
    };
  };
}
  ? M
  : object;

/**
 * Makes the WebAssembly engine instantiate `module` instead of compiling its inlined copy of the
 * kernel. For runtimes that forbid compiling Wasm from bytes (Cloudflare Workers / workerd, Vercel
 * Edge): there, `import kernel from 'lazytensor/kernel.wasm'` gives a compiled
 * `WebAssembly.Module`, and `useWasmModule(kernel)` hands it over. (The package's `workerd`
 * export condition does this by itself.) Drops the instances made from the previous module: the
 * next reduction instantiates the new one, on the main thread and in new workers.
 * @param module the compiled kernel: `dist/kernel.wasm` of this package version.
 * @throws TypeError when `module` is not a WebAssembly.Module.
 */
export function useWasmModule(module: WasmModule): void {
  setUserModule(module as WebAssembly.Module);
  kernel = null;
  kernelExports = null;
  engine = null;
  releaseWorkers();
}

/**
 * Lets the WebAssembly engine's memory go: drops the main thread's kernel instance (whose memory only
 * grows, to the largest problem seen) and closes the worker pool once its running jobs are done.
 * Nothing else changes: the next reduction instantiates a fresh kernel and starts new workers, and
 * reductions already running finish normally. Call it after a large job in a long-lived process.
 */
export function releaseWasm(): void {
  kernel = null;
  kernelExports = null;
  engine = null;
  dropCompiledModule();
  releaseWorkers();
}

/** What the WebAssembly engine runs on (see wasmStatus). */
export interface WasmStatus {
  /** The runtime detected: it decides how workers start ('workerd' and 'edge' have none). */
  readonly runtime: RuntimeName;
  /** Threads the engine asks for: setWasmThreads(n), or the default min(cores, 4). */
  readonly requestedThreads: number;
  /** Threads large reductions run on now: the worker count while workers run, else 1. */
  readonly threads: number;
  /**
   * The worker pool:
   * - 'off': one thread was asked for (setWasmThreads(1), or one core);
   * - 'not-started': workers start at the first reduction large enough to use them;
   * - 'starting' / 'running';
   * - 'unavailable': this runtime has no workers (edge runtimes);
   * - 'failed': workers did not start (`reason` says why, e.g. a CSP that blocks blob: workers);
   * - 'disabled': workers died `restarts` times; the engine stays on one thread until setWasmThreads().
   * In the last two states the engine runs on the main thread and one console.warn said so.
   */
  readonly workers: WorkerState;
  /** Why workers are unavailable, failed or disabled; null otherwise. */
  readonly reason: string | null;
  /** Pools restarted after a worker died, since the last setWasmThreads(). */
  readonly restarts: number;
  /** Jobs the current pool's workers have run. */
  readonly jobsRun: number;
  /** Jobs each worker of the current pool has run (how many workers did work). */
  readonly jobsPerWorker: readonly number[];
  /** The URL Web Workers are started from (setWasmWorkerUrl), or null for the inlined blob: source. */
  readonly workerUrl: string | null;
  /** Where the kernel comes from: the inlined base64, the build's kernel.wasm import, or useWasmModule. */
  readonly kernelSource: KernelSource;
  /** Whether the main thread's kernel instance exists (created at first use, dropped by releaseWasm). */
  readonly instantiated: boolean;
  /** Bytes of the main thread's kernel memory (0 when not instantiated). */
  readonly memoryBytes: number;
}

/** The state of the WebAssembly engine: threads, worker pool, restarts, kernel memory. Starts
 *  nothing. */
export async function wasmStatus(): Promise<WasmStatus> {
  const w = await workerState();
  const memory = kernelExports?.memory;
  return {
    runtime: detectRuntime(),
    requestedThreads: w.requestedThreads,
    threads: w.threads,
    workers: w.state,
    reason: w.reason,
    restarts: w.restarts,
    jobsRun: w.jobsRun,
    jobsPerWorker: w.jobsPerWorker,
    workerUrl: w.workerUrl,
    kernelSource: kernelSource(),
    instantiated: kernelExports !== null,
    memoryBytes: memory instanceof WebAssembly.Memory ? memory.buffer.byteLength : 0,
  };
}
