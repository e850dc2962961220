// A pool of WebAssembly engine workers: W = min(cores, 4) by default (setWasmThreads), created lazily
// on first use, each with its own kernel instance and its own, non-shared memory (the kernel keeps
// static tables in memory and is not reentrant; no SharedArrayBuffer, so no cross-origin isolation is
// needed in browsers). Node: worker_threads from the inlined source (eval: true), imported
// dynamically so bundlers and edge runtimes never see it; browsers: a Blob URL Worker. Idle workers
// are unref()'d, so they never keep Node alive. Where workers cannot be created the pool is null and
// the engine runs on the main thread.
import WORKER_SOURCE from 'virtual:lazytensor-wasm-worker';
import { KERNEL_WASM_BASE64 } from '../fallback/wasm-binary.generated.js';
import type { JobOutput, KernelJob } from '../fallback/worker-job.js';
import { decodeBase64 } from './wasm-loader.js';

/** The most workers the default uses. */
const DEFAULT_MAX_THREADS = 4;
/** A pool whose workers have not all answered by then is given up (the engine runs on the main thread). */
const START_TIMEOUT_MS = 15_000;

/** What the pool needs of a worker (a Node worker_threads Worker or a Web Worker, wrapped). */
export interface WorkerHandle {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** Called with every message, and with an Error when the worker fails or exits. */
  listen(onMessage: (message: WorkerReply) => void, onFailure: (error: Error) => void): void;
  ref(): void;
  unref(): void;
  terminate(): void;
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'done'; id: number; values: Float32Array | Float64Array | null; indices: Int32Array | null }
  | { type: 'error'; id: number; name: string; message: string };

/** Creates one worker running `source`; throws (or rejects) where workers are unavailable. */
export type WorkerFactory = (source: string) => WorkerHandle | Promise<WorkerHandle>;

/** A worker died or the pool was closed: the job should run on the main thread. */
export class WorkerLostError extends Error {
  override readonly name = 'WorkerLostError';
}

// ---------------------------------------------------------------------------------------------------
// Factories

const hiddenImport = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ specifier);

interface NodeWorker {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  on(event: string, listener: (arg: never) => void): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

async function nodeFactory(): Promise<WorkerFactory> {
  const { Worker } = (await hiddenImport('node:worker_threads')) as { Worker: new (code: string, options: object) => NodeWorker };
  return (source) => {
    const worker = new Worker(source, { eval: true });
    let failed = false;
    return {
      postMessage: (message, transfer) => worker.postMessage(message, transfer),
      listen(onMessage, onFailure) {
        const fail = (error: Error) => {
          if (failed) return;
          failed = true;
          onFailure(error);
        };
        worker.on('message', (m: WorkerReply) => onMessage(m));
        worker.on('error', (e: Error) => fail(e));
        worker.on('messageerror', (e: Error) => fail(e));
        worker.on('exit', (code: number) => fail(new Error(`worker exited with code ${code}`)));
      },
      ref: () => worker.ref(),
      unref: () => worker.unref(),
      terminate() {
        failed = true; // an exit we asked for is not a failure
        void worker.terminate();
      },
    };
  };
}

function browserFactory(): WorkerFactory | null {
  const g = globalThis as unknown as {
    Worker?: new (url: string) => Worker;
    Blob?: typeof Blob;
    URL?: { createObjectURL?(blob: Blob): string; revokeObjectURL?(url: string): void };
  };
  if (typeof g.Worker !== 'function' || typeof g.Blob !== 'function' || typeof g.URL?.createObjectURL !== 'function') return null;
  let url: string | null = null;
  return (source) => {
    url ??= g.URL!.createObjectURL!(new g.Blob!([source], { type: 'text/javascript' }));
    const worker = new g.Worker!(url);
    let failed = false;
    return {
      postMessage: (message, transfer) => worker.postMessage(message, transfer ?? []),
      listen(onMessage, onFailure) {
        worker.onmessage = (e: MessageEvent) => onMessage(e.data as WorkerReply);
        const fail = (what: string) => {
          if (failed) return;
          failed = true;
          onFailure(new Error(what));
        };
        worker.onerror = (e: ErrorEvent) => {
          e.preventDefault?.();
          fail(`worker error: ${e.message ?? 'unknown'}`);
        };
        worker.onmessageerror = () => fail('worker message error');
      },
      ref() {},
      unref() {},
      terminate() {
        failed = true;
        worker.terminate();
      },
    };
  };
}

let factoryOverride: WorkerFactory | null | undefined;

async function defaultFactory(): Promise<WorkerFactory | null> {
  if (factoryOverride !== undefined) return factoryOverride;
  if (isNode()) {
    try {
      return await nodeFactory();
    } catch {
      return null;
    }
  }
  return browserFactory();
}

async function availableCores(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (isNode()) {
    try {
      const os = (await hiddenImport('node:os')) as { availableParallelism?: () => number; cpus?: () => unknown[] };
      const n = os.availableParallelism?.() ?? os.cpus?.().length;
      if (typeof n === 'number' && n >= 1) return n;
    } catch {
      // fall through
    }
  }
  const n = nav?.hardwareConcurrency;
  return typeof n === 'number' && n >= 1 ? n : 1;
}

// ---------------------------------------------------------------------------------------------------
// The pool

interface Task {
  readonly job: KernelJob;
  readonly transfer: Transferable[];
  readonly resolve: (output: JobOutput) => void;
  readonly reject: (error: Error) => void;
}

interface Slot {
  readonly worker: WorkerHandle;
  task: Task | null;
  id: number;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private closed = false;
  private retiring = false;
  /** Jobs run by workers since the pool started (for tests and diagnostics). */
  jobsRun = 0;

  private constructor(readonly size: number) {}

  /** Starts `size` workers and waits until each has instantiated the kernel. Rejects on any failure. */
  static async start(size: number, factory: WorkerFactory): Promise<WorkerPool> {
    const pool = new WorkerPool(size);
    const wasm = decodeBase64(KERNEL_WASM_BASE64);
    try {
      await Promise.all(
        Array.from({ length: size }, async () => {
          const worker = await factory(WORKER_SOURCE);
          const slot: Slot = { worker, task: null, id: 0 };
          pool.slots.push(slot);
          await new Promise<void>((resolve, reject) => {
            let ready = false;
            const timer = setTimeout(() => reject(new Error('worker start timed out')), START_TIMEOUT_MS);
            (timer as { unref?: () => void }).unref?.();
            worker.listen(
              (message) => {
                if (!ready) {
                  ready = true;
                  clearTimeout(timer);
                  if (message.type === 'ready') resolve();
                  else reject(new Error(message.type === 'error' ? message.message : 'unexpected worker reply'));
                  return;
                }
                pool.onMessage(slot, message);
              },
              (error) => {
                clearTimeout(timer);
                if (!ready) reject(error);
                else pool.onFailure(error);
              },
            );
            worker.postMessage({ type: 'init', wasm });
          });
          worker.unref();
        }),
      );
    } catch (error) {
      pool.close();
      throw error;
    }
    return pool;
  }

  get alive(): boolean {
    return !this.closed;
  }

  /** Runs a job on the next free worker. `transfer` lists buffers the job owns (they are detached). */
  run(job: KernelJob, transfer: Transferable[] = []): Promise<JobOutput> {
    if (this.closed) return Promise.reject(new WorkerLostError('the worker pool is closed'));
    return new Promise<JobOutput>((resolve, reject) => {
      this.queue.push({ job, transfer, resolve, reject });
      this.pump();
    });
  }

  /** Whether a worker is idle now. */
  get hasIdleWorker(): boolean {
    return !this.closed && this.queue.length === 0 && this.slots.some((s) => s.task === null);
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.task !== null) continue;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.id++;
      slot.worker.ref();
      try {
        slot.worker.postMessage({ type: 'job', id: slot.id, job: task.job }, task.transfer);
      } catch (error) {
        // The job could not be sent (e.g. not cloneable): fail it, keep the worker.
        slot.task = null;
        slot.worker.unref();
        task.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  private onMessage(slot: Slot, message: WorkerReply): void {
    const task = slot.task;
    if (task === null || message.type === 'ready' || message.id !== slot.id) return;
    slot.task = null;
    this.jobsRun++;
    if (message.type === 'done') task.resolve({ values: message.values, indices: message.indices });
    else {
      const error = message.name === 'RangeError' ? new RangeError(message.message) : new Error(message.message);
      task.reject(error);
    }
    if (this.queue.length > 0) this.pump();
    else {
      slot.worker.unref();
      if (this.retiring && this.slots.every((s) => s.task === null)) this.close();
    }
  }

  /** Closes the pool once its running and queued jobs are done. */
  closeWhenIdle(): void {
    this.retiring = true;
    if (this.queue.length === 0 && this.slots.every((s) => s.task === null)) this.close();
  }

  /** A worker failed: the pool is unusable; every pending job is rejected with WorkerLostError. */
  private onFailure(error: Error): void {
    if (this.closed) return;
    const lost = new WorkerLostError(`a WebAssembly worker failed: ${error.message}`, { cause: error });
    const pending = [...this.slots.flatMap((s) => (s.task ? [s.task] : [])), ...this.queue];
    this.close();
    for (const task of pending) task.reject(lost);
  }

  /** Terminates the workers; queued and running jobs are rejected with WorkerLostError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const pending = [...this.slots.flatMap((s) => (s.task ? [s.task] : [])), ...this.queue.splice(0)];
    for (const slot of this.slots) {
      slot.task = null;
      try {
        slot.worker.terminate();
      } catch {
        // already gone
      }
    }
    const lost = new WorkerLostError('the worker pool was closed');
    for (const task of pending) task.reject(lost);
  }
}

// ---------------------------------------------------------------------------------------------------
// Configuration and the shared pool

let requestedThreads: number | null = null; // null: the default, min(cores, 4)
let pool: Promise<WorkerPool | null> | null = null;
/** Pools replaced after a worker died; past MAX_RESTARTS the engine stays on the main thread. */
let restarts = 0;
const MAX_RESTARTS = 3;

/** Sets how many threads the WebAssembly engine uses: n = 1 runs every reduction on the calling
 *  thread (no workers); n > 1 runs reductions on a pool of n workers (each with its own kernel
 *  instance), splitting large ones. Omitted/undefined: the default, min(available cores, 4).
 *  Takes effect at the next reduction; running reductions finish on the old pool. */
export function setWasmThreads(n?: number): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 64)) {
    throw new RangeError(`setWasmThreads: n must be an integer between 1 and 64, got ${String(n)}`);
  }
  requestedThreads = n ?? null;
  restarts = 0;
  const old = pool;
  pool = null;
  if (old !== null) void old.then((p) => p?.closeWhenIdle());
}

/** The thread count the engine uses (resolving the default). */
export async function getWasmThreads(): Promise<number> {
  return requestedThreads ?? Math.min(await availableCores(), DEFAULT_MAX_THREADS);
}

/** The worker pool, or null when threads are off (n = 1, one core) or workers are unavailable
 *  (then the engine runs on the main thread; a failed start is not retried until setWasmThreads). */
export function getWorkerPool(): Promise<WorkerPool | null> {
  if (pool !== null) {
    const current = pool;
    return current.then((p) => {
      if (p === null || p.alive) return p;
      // A worker died: start a new pool (a few times at most; a pool that fails to start stays null).
      if (pool === current) pool = restarts++ < MAX_RESTARTS ? null : Promise.resolve(null);
      return getWorkerPool();
    });
  }
  const current = (async () => {
    const threads = await getWasmThreads();
    if (threads <= 1) return null;
    const factory = await defaultFactory();
    if (factory === null) return null;
    try {
      return await WorkerPool.start(threads, factory);
    } catch {
      return null;
    }
  })();
  pool = current;
  return current;
}

/** @internal Hooks for the tests. */
export const wasmThreadsTesting = {
  /** Replaces the worker factory (null: workers unavailable; undefined: the default). Drops the pool. */
  setWorkerFactory(factory: WorkerFactory | null | undefined): void {
    factoryOverride = factory;
    setWasmThreads(requestedThreads ?? undefined);
  },
  /** The current pool, if started. */
  async pool(): Promise<WorkerPool | null> {
    return pool === null ? null : pool;
  },
  /** Terminates the pool now. */
  async close(): Promise<void> {
    const current = pool;
    pool = null;
    (await current)?.close();
  },
};
