// A pool of WebAssembly engine workers: W = min(cores, 4) by default (setWasmThreads), created lazily
// on first use, each with its own kernel instance and its own, non-shared memory (the kernel keeps
// static tables in memory and is not reentrant; no SharedArrayBuffer, so no cross-origin isolation is
// needed in browsers). How a worker starts depends on the runtime (features.ts, detectRuntime):
// - Node and Deno: worker_threads from the inlined source (eval: true), imported dynamically so
//   bundlers and edge runtimes never see it;
// - browsers and Bun: a Web Worker, from a blob: URL of the inlined source, or from the shipped file
//   dist/worker.js (setWasmWorkerUrl) for pages whose CSP has no blob: in worker-src (Bun's eval
//   workers have no `require`, so the worker_threads path does not work there);
// - workerd and other edge runtimes: none (the engine runs on the calling thread).
// Idle workers are unref()'d, so they never keep Node alive. A worker must say hello within
// CONTACT_TIMEOUT_MS: where workers are silently broken the pool is given up within about a second,
// the engine runs on the main thread, and one console.warn says so (wasmStatus() tells it too).
import { InputError, ResourceLimitError, ShapeError } from '../core/errors.js';
import WORKER_SOURCE from 'virtual:lazytensor-wasm-worker';
import type { JobOutput, PostedJob } from './worker-job.js';
import {
  onResidentRelease,
  setResidentPassRunner,
  sharedMemoryAvailable,
  type ResidentArray,
} from '../core/resident.js';
import { rowPassLength, type RowPassInput } from '../core/row-passes.js';
import type { AbortSignalLike } from '../core/scheduling.js';
import { detectRuntime } from '../runtime/features.js';
import { workerKernelPayload } from './kernel-source.js';

/** The most workers the default uses. */
const DEFAULT_MAX_THREADS = 4;
/** A worker that has not posted its first message by then is taken as broken (worker startup takes
 *  ~20-100 ms in every runtime; blocked or misrouted workers never answer). */
const CONTACT_TIMEOUT_MS = 1000;
/** A worker that has answered but not instantiated the kernel by then is given up. */
const START_TIMEOUT_MS = 15_000;
/** The most bytes of resident arrays (core/resident.ts) a pool keeps in each of its workers: every
 *  worker holds a copy of each kept array, next to its kernel. Arrays past it are sent with each job. */
export const RESIDENT_MAX_BYTES = 512 * 2 ** 20;
let residentMaxBytes = RESIDENT_MAX_BYTES;
/** Whether resident arrays may go to the workers as one shared copy (tests turn it off). */
let sharedResident = true;

/** What jobs transfer (internal: never in the published declarations). */
type TransferItem = Transferable;

/** What the pool needs of a worker (a Node worker_threads Worker or a Web Worker, wrapped). */
export interface WorkerHandle {
  postMessage(message: unknown, transfer?: TransferItem[]): void;
  /** Called with every message, and with an Error when the worker fails or exits. */
  listen(onMessage: (message: WorkerReply) => void, onFailure: (error: Error) => void): void;
  ref(): void;
  unref(): void;
  terminate(): void;
}

export type WorkerReply =
  | { type: 'alive' }
  | { type: 'ready' }
  | {
      type: 'done';
      id: number;
      values: Float32Array | Float64Array | null;
      indices: Int32Array | null;
      columns?: Float32Array | Float64Array;
    }
  /** The result of a pass over resident rows (core/row-passes.ts). */
  | { type: 'pass'; id: number; out: Float64Array }
  | {
      type: 'error';
      id: number;
      /** An error class name; 'ResidentMissing': the job named resident data the worker does not hold. */
      name: string;
      message: string;
      limit?: { needed: number; limit: number; unit: string };
    };

/** Creates one worker running `source`; throws (or rejects) where workers are unavailable. */
export type WorkerFactory = (source: string) => WorkerHandle | Promise<WorkerHandle>;

/** A worker died or the pool was closed: the job should run on the main thread. */
export class WorkerLostError extends Error {
  override readonly name = 'WorkerLostError';
}

// ---------------------------------------------------------------------------------------------------
// Factories

const hiddenImport = (specifier: string): Promise<unknown> =>
  import(/* @vite-ignore */ /* webpackIgnore: true */ specifier);

interface NodeWorker {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  on(event: string, listener: (arg: never) => void): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}

async function nodeFactory(): Promise<WorkerFactory> {
  const { Worker } = (await hiddenImport('node:worker_threads')) as {
    Worker: new (code: string, options: object) => NodeWorker;
  };
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

interface WebWorker {
  postMessage(message: unknown, transfer: TransferItem[]): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message?: string; preventDefault?(): void }) => void) | null;
  onmessageerror: (() => void) | null;
  terminate(): void;
  ref?(): void;
  unref?(): void;
}

let workerUrl: string | null = null;

function webFactory(): WorkerFactory | null {
  const g = globalThis as unknown as {
    Worker?: new (url: string | URL) => WebWorker;
    Blob?: new (parts: string[], options: { type: string }) => object;
    URL?: { createObjectURL?(blob: object): string };
  };
  if (typeof g.Worker !== 'function') return null;
  const fixedUrl = workerUrl;
  if (fixedUrl === null && (typeof g.Blob !== 'function' || typeof g.URL?.createObjectURL !== 'function')) return null;
  let blobUrl: string | null = null;
  return (source) => {
    let url = fixedUrl;
    if (url === null) url = blobUrl ??= g.URL!.createObjectURL!(new g.Blob!([source], { type: 'text/javascript' }));
    const worker = new g.Worker!(url);
    let failed = false;
    return {
      postMessage: (message, transfer) => worker.postMessage(message, transfer ?? []),
      listen(onMessage, onFailure) {
        worker.onmessage = (e) => onMessage(e.data as WorkerReply);
        const fail = (what: string) => {
          if (failed) return;
          failed = true;
          onFailure(new Error(what));
        };
        worker.onerror = (e) => {
          e.preventDefault?.();
          fail(`worker error: ${e.message ?? 'unknown'}`);
        };
        worker.onmessageerror = () => fail('worker message error');
      },
      // Bun's Web Workers keep the process alive unless unref()'d; browsers have neither.
      ref: () => worker.ref?.(),
      unref: () => worker.unref?.(),
      terminate() {
        failed = true;
        worker.terminate();
      },
    };
  };
}

let factoryOverride: WorkerFactory | null | undefined;

/** The factory for this runtime, or a string saying why there are no workers. */
async function defaultFactory(): Promise<WorkerFactory | string> {
  if (factoryOverride !== undefined) return factoryOverride ?? 'workers are unavailable (test override)';
  const runtime = detectRuntime();
  switch (runtime) {
    case 'workerd':
    case 'edge':
      return `${runtime === 'workerd' ? 'Cloudflare Workers (workerd)' : 'this edge runtime'} has no threads`;
    case 'node':
    case 'deno':
      try {
        return await nodeFactory();
      } catch (error) {
        return `node:worker_threads is unavailable (${error instanceof Error ? error.message : String(error)})`;
      }
    case 'bun':
    case 'browser':
    case 'unknown':
      return webFactory() ?? 'this runtime has no Worker (or no Blob URLs for its source)';
    default: {
      const never: never = runtime;
      return `unknown runtime ${String(never)}`;
    }
  }
}

async function availableCores(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const runtime = detectRuntime();
  if (runtime === 'node' || runtime === 'deno' || runtime === 'bun') {
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

/** What a worker is asked (the message, less its id). */
type TaskMessage = { type: 'job'; job: PostedJob } | { type: 'pass'; key: number; input: RowPassInput };

interface Task {
  readonly message: TaskMessage;
  readonly transfer: TransferItem[];
  readonly resolve: (reply: Extract<WorkerReply, { type: 'done' | 'pass' }>) => void;
  readonly reject: (error: Error) => void;
}

interface Slot {
  readonly worker: WorkerHandle;
  task: Task | null;
  id: number;
  /** Jobs this worker completed. */
  done: number;
}

/** A worker's error as the class it was thrown as (the library's named errors, RangeError), so a
 *  job fails on the calling thread exactly as it would have on one thread. */
function rebuildError(message: Extract<WorkerReply, { type: 'error' }>): Error {
  switch (message.name) {
    case 'ResourceLimitError': {
      const l = message.limit;
      return new ResourceLimitError(message.message, l?.needed ?? NaN, l?.limit ?? NaN, l?.unit ?? '');
    }
    case 'InputError':
      return new InputError(message.message);
    case 'ShapeError':
      return new ShapeError(message.message);
    case 'RangeError':
      return new RangeError(message.message);
    case 'ResidentMissing':
      // The engine then runs the job on the calling thread, with the data itself.
      return new WorkerLostError(message.message);
    default:
      return new Error(message.message);
  }
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private closed = false;
  private retiring = false;
  /** Jobs run by workers since the pool started (for tests and diagnostics). */
  jobsRun = 0;
  /** Resident arrays kept in every worker: their key and bytes. */
  private readonly kept = new Map<ResidentArray, { key: number; bytes: number }>();
  private keptBytes = 0;
  private nextKey = 1;
  /** Resident arrays posted to the workers since the pool started (for tests and diagnostics). */
  residentPosts = 0;
  /** Of those, the ones posted as one shared copy (for tests and diagnostics). */
  sharedPosts = 0;
  private readonly stopListening: () => void;

  private constructor(readonly size: number) {
    this.stopListening = onResidentRelease((data) => this.drop(data));
  }

  /**
   * The key under which every worker holds a copy of the resident array `data`, posting it to them
   * first if needed (jobs posted after this find it: a worker handles its messages in order); null
   * when it would take the pool past RESIDENT_MAX_BYTES per worker (the job then carries the data).
   * The caller checks that `data` is held (core/resident.ts): the copy is dropped at its release.
   */
  residentKey(data: ResidentArray): number | null {
    const known = this.kept.get(data);
    if (known !== undefined) return known.key;
    if (this.closed || this.keptBytes + data.byteLength > residentMaxBytes) return null;
    const entry = { key: this.nextKey++, bytes: data.byteLength };
    // One copy in shared memory for all the workers where the runtime allows it (Node, Deno, Bun,
    // cross-origin isolated pages): one memcpy here for any number of workers, and one copy of the
    // points in memory; nobody writes to it (the holder does not write to `data` while it is held).
    // Elsewhere each worker gets a copy of its own, transferred: one memcpy per worker here, none in
    // the worker (a structured clone copies twice, and the second copy would hold up its next job).
    if (!this.postShared(entry.key, data)) {
      for (const slot of this.slots) {
        const copy = data.slice();
        slot.worker.postMessage({ type: 'keep', key: entry.key, data: copy }, [copy.buffer]);
      }
    }
    this.residentPosts++;
    this.kept.set(data, entry);
    this.keptBytes += entry.bytes;
    return entry.key;
  }

  /** Posts `data` to every worker as one copy in a SharedArrayBuffer; false (nothing posted) where
   *  shared memory is unavailable or cannot be posted (browsers without cross-origin isolation). */
  private postShared(key: number, data: ResidentArray): boolean {
    if (!sharedResident || !sharedMemoryAvailable()) return false;
    let shared: ResidentArray;
    if (data.buffer instanceof SharedArrayBuffer) {
      shared = data; // shared already (residentCopy): posted as it is, nothing copied
    } else {
      try {
        const buffer = new SharedArrayBuffer(data.byteLength);
        shared = data instanceof Float32Array ? new Float32Array(buffer) : new Float64Array(buffer);
        shared.set(data);
      } catch {
        return false;
      }
    }
    let posted = 0;
    try {
      for (const slot of this.slots) {
        slot.worker.postMessage({ type: 'keep', key, data: shared });
        posted++;
      }
    } catch {
      // a runtime that refuses to post shared memory refuses it for the first worker already; in
      // case it does later, the workers that got it drop it, and every worker gets its own copy
      for (const slot of this.slots.slice(0, posted)) slot.worker.postMessage({ type: 'drop', key });
      return false;
    }
    this.sharedPosts++;
    return true;
  }

  /** Bytes of resident arrays each worker holds. */
  get residentBytes(): number {
    return this.keptBytes;
  }

  private drop(data: ResidentArray): void {
    const entry = this.kept.get(data);
    if (entry === undefined) return;
    this.kept.delete(data);
    this.keptBytes -= entry.bytes;
    if (this.closed) return;
    for (const slot of this.slots) {
      try {
        slot.worker.postMessage({ type: 'drop', key: entry.key });
      } catch {
        // a dead worker's copy went with it
      }
    }
  }

  /** Starts `size` workers and waits until each has instantiated the kernel. Rejects on any failure,
   *  within CONTACT_TIMEOUT_MS when a worker never answers. */
  static async start(size: number, factory: WorkerFactory): Promise<WorkerPool> {
    const pool = new WorkerPool(size);
    const payload = await workerKernelPayload();
    try {
      await Promise.all(
        Array.from({ length: size }, async () => {
          const worker = await factory(WORKER_SOURCE);
          const slot: Slot = { worker, task: null, id: 0, done: 0 };
          pool.slots.push(slot);
          await new Promise<void>((resolve, reject) => {
            let contact = false;
            let ready = false;
            const timer = (ms: number, what: string) => {
              const t = setTimeout(() => reject(new Error(what)), ms);
              (t as { unref?: () => void }).unref?.();
              return t;
            };
            let pending = timer(CONTACT_TIMEOUT_MS, `a worker did not answer within ${CONTACT_TIMEOUT_MS} ms`);
            worker.listen(
              (message) => {
                if (!ready) {
                  if (!contact) {
                    contact = true;
                    clearTimeout(pending);
                    pending = timer(START_TIMEOUT_MS, 'a worker did not instantiate the kernel in time');
                  }
                  if (message.type === 'alive') return;
                  ready = true;
                  clearTimeout(pending);
                  if (message.type === 'ready') resolve();
                  else reject(new Error(message.type === 'error' ? message.message : 'unexpected worker reply'));
                  return;
                }
                pool.onMessage(slot, message);
              },
              (error) => {
                clearTimeout(pending);
                if (!ready) reject(error);
                else pool.onFailure(error);
              },
            );
            worker.postMessage({ type: 'init', ...payload });
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

  /** Jobs completed by each worker. */
  get jobsPerWorker(): number[] {
    return this.slots.map((s) => s.done);
  }

  get alive(): boolean {
    return !this.closed;
  }

  /** Runs a job on the next free worker. `transfer` lists buffers the job owns (they are detached). */
  async run(job: PostedJob, transfer: TransferItem[] = []): Promise<JobOutput> {
    const reply = await this.post({ type: 'job', job }, transfer);
    if (reply.type !== 'done') throw new Error(`internal: a job answered as a ${reply.type}`);
    return {
      values: reply.values,
      indices: reply.indices,
      ...(reply.columns !== undefined ? { columns: reply.columns } : {}),
    };
  }

  /**
   * Runs a pass over rows of the resident array kept under `key` (residentKey) on the next free
   * worker: core/row-passes.ts's runRowPass there, its result returned (rowPassLength values).
   * Rejects with WorkerLostError when the worker does not hold the array.
   */
  async runPass(key: number, input: RowPassInput, transfer: TransferItem[] = []): Promise<Float64Array> {
    const reply = await this.post({ type: 'pass', key, input }, transfer);
    if (reply.type !== 'pass') throw new Error(`internal: a pass answered as a ${reply.type}`);
    return reply.out;
  }

  private post(
    message: TaskMessage,
    transfer: TransferItem[],
  ): Promise<Extract<WorkerReply, { type: 'done' | 'pass' }>> {
    if (this.closed) return Promise.reject(new WorkerLostError('the worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ message, transfer, resolve, reject });
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
        slot.worker.postMessage({ ...task.message, id: slot.id }, task.transfer);
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
    if (task === null || message.type === 'ready' || message.type === 'alive' || message.id !== slot.id) return;
    slot.task = null;
    this.jobsRun++;
    slot.done++;
    if (message.type === 'error') task.reject(rebuildError(message));
    else task.resolve(message);
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
    this.stopListening();
    this.kept.clear();
    this.keptBytes = 0;
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

/** The pool's state, as wasmStatus() reports it. */
export type WorkerState = 'off' | 'not-started' | 'starting' | 'running' | 'unavailable' | 'failed' | 'disabled';
let state: WorkerState = 'not-started';
let reason: string | null = null;
let lastPool: WorkerPool | null = null;
const warned = new Set<string>();

function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  console.warn(`lazytensor: ${message}`);
}

/** Drops the pool (closed once its jobs are done); the next large reduction starts a new one. */
function dropPool(): void {
  const old = pool;
  pool = null;
  lastPool = null;
  state = 'not-started';
  reason = null;
  if (old !== null) void old.then((p) => p?.closeWhenIdle());
}

/** Sets how many threads the WebAssembly engine uses: n = 1 runs every reduction on the calling
 *  thread (no workers); n > 1 runs reductions on a pool of n workers (each with its own kernel
 *  instance), splitting large ones. Omitted/undefined: the default, min(available cores, 4).
 *  Takes effect at the next reduction; running reductions finish on the old pool. Also retries
 *  workers that failed to start or were disabled after repeated deaths (see wasmStatus()).
 *  @throws RangeError when n is not an integer between 1 and 64. */
export function setWasmThreads(n?: number): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 64)) {
    throw new InputError(`setWasmThreads: n must be an integer between 1 and 64, got ${String(n)}`);
  }
  requestedThreads = n ?? null;
  restarts = 0;
  warned.clear();
  dropPool();
}

/** The thread count the engine uses (resolving the default). */
export async function getWasmThreads(): Promise<number> {
  return requestedThreads ?? Math.min(await availableCores(), DEFAULT_MAX_THREADS);
}

/**
 * Starts the engine's Web Workers from `url` instead of a blob: URL of the inlined worker source:
 * for pages whose Content-Security-Policy allows workers from 'self' only (`worker-src 'self'`).
 * `url` is where the page serves this package's `dist/worker.js` (the same version), e.g. with vite
 * `import url from 'lazytensor/worker.js?url&no-inline'` (`no-inline`: a data: URL would be blocked
 * too), or `'/node_modules/lazytensor/dist/worker.js'` where the server exposes the package. Applies to Web Workers (browsers, Bun); Node and Deno
 * start worker_threads from the inlined source. null goes back to the blob: URL. Takes effect at the
 * next reduction (the current pool closes once idle).
 * @throws TypeError when url is not a string, a URL (an object with a string `href`) or null.
 */
export function setWasmWorkerUrl(url: string | { readonly href: string } | null): void {
  // A URL object is taken by its href (typed structurally: the published declarations must not need
  // the DOM lib's URL).
  const href =
    typeof url === 'string' || url === null
      ? url
      : typeof url === 'object' && typeof url.href === 'string'
        ? url.href
        : undefined;
  if (href === undefined) {
    throw new InputError(
      `setWasmWorkerUrl: url must be a string, a URL or null, got ${Object.prototype.toString.call(url)}`,
    );
  }
  workerUrl = href;
  restarts = 0;
  warned.clear();
  dropPool();
}

/** The worker pool, or null when threads are off (n = 1, one core) or workers are unavailable
 *  (then the engine runs on the main thread; a failed start is not retried until setWasmThreads). */
export function getWorkerPool(): Promise<WorkerPool | null> {
  if (pool !== null) {
    const current = pool;
    return current.then((p) => {
      if (p === null || p.alive) return p;
      // A worker died: start a new pool (a few times at most; a pool that fails to start stays null).
      if (pool === current) {
        if (restarts++ < MAX_RESTARTS) pool = null;
        else {
          pool = Promise.resolve(null);
          state = 'disabled';
          reason = `WebAssembly workers died ${MAX_RESTARTS + 1} times`;
          warnOnce(
            'disabled',
            `${reason}; reductions run on one thread until setWasmThreads() is called (see wasmStatus())`,
          );
        }
      }
      return getWorkerPool();
    });
  }
  let current: Promise<WorkerPool | null> | null = null;
  current = (async () => {
    const threads = await getWasmThreads();
    if (threads <= 1) {
      if (pool === current) state = 'off';
      return null;
    }
    const factory = await defaultFactory();
    if (typeof factory === 'string') {
      if (pool === current) [state, reason] = ['unavailable', factory];
      return null;
    }
    if (pool === current) state = 'starting';
    try {
      const started = await WorkerPool.start(threads, factory);
      if (pool === current) [state, lastPool] = ['running', started];
      return started;
    } catch (error) {
      if (pool === current) {
        state = 'failed';
        reason = error instanceof Error ? error.message : String(error);
        warnOnce(
          'failed',
          `WebAssembly workers did not start (${reason}); reductions run on one thread. ` +
            `A page whose CSP has no blob: in worker-src needs setWasmWorkerUrl(); see wasmStatus()`,
        );
      }
      return null;
    }
  })();
  pool = current;
  return current;
}

/** Closes the pool once its running jobs are done (releaseWasm, useWasmModule). */
export function releaseWorkers(): void {
  dropPool();
}

/** The pool's state for wasmStatus(). Starts nothing. */
export async function workerState(): Promise<{
  requestedThreads: number;
  threads: number;
  state: WorkerState;
  reason: string | null;
  restarts: number;
  jobsRun: number;
  jobsPerWorker: number[];
  workerUrl: string | null;
}> {
  const requested = await getWasmThreads();
  let now: WorkerState = requested <= 1 ? 'off' : state;
  if (now === 'running' && lastPool !== null && !lastPool.alive) now = 'not-started'; // restarts at the next large reduction
  if (now === 'off' && requested > 1) now = 'not-started';
  return {
    requestedThreads: requested,
    threads: now === 'running' && lastPool !== null ? lastPool.size : 1,
    state: now,
    reason: now === 'unavailable' || now === 'failed' || now === 'disabled' ? reason : null,
    restarts,
    jobsRun: lastPool?.jobsRun ?? 0,
    jobsPerWorker: lastPool?.jobsPerWorker ?? [],
    workerUrl,
  };
}

/** @internal Hooks for the tests. */
export const wasmThreadsTesting = {
  /** Replaces the worker factory (null: workers unavailable; undefined: the default). Drops the pool. */
  setWorkerFactory(factory: WorkerFactory | null | undefined): void {
    factoryOverride = factory;
    setWasmThreads(requestedThreads ?? undefined);
  },
  /** Sets the bytes of resident arrays a pool keeps per worker (undefined: RESIDENT_MAX_BYTES). */
  setResidentMaxBytes(bytes?: number): void {
    residentMaxBytes = bytes ?? RESIDENT_MAX_BYTES;
  },
  /** Whether resident arrays may be posted as one shared copy (undefined: the default, true). */
  setSharedResident(allowed?: boolean): void {
    sharedResident = allowed ?? true;
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

// ---------------------------------------------------------------------------------------------------
// Passes over resident rows (core/resident.ts): kMeans's centroid sums, inertia and moments

/**
 * Runs a pass over rows [input.from, input.to) of a held array on the pool: one contiguous share of
 * the rows per worker, their results added in row order. Null (the caller runs the pass itself) when
 * there is no pool, the array is past the pool's resident bound, or a worker was lost or did not
 * hold the array.
 */
async function residentPass(
  data: ResidentArray,
  input: RowPassInput,
  signal: AbortSignalLike | undefined,
): Promise<Float64Array | null> {
  const current = await getWorkerPool();
  if (current === null) return null;
  const key = current.residentKey(data);
  if (key === null) return null;
  const rows = input.to - input.from;
  const parts = Math.max(1, Math.min(current.size, rows));
  const bounds = Array.from({ length: parts + 1 }, (_, p) => input.from + Math.round((p * rows) / parts));
  if (signal?.aborted) return null; // the caller's own check throws the reason
  let outs: Float64Array[];
  try {
    outs = await Promise.all(
      Array.from({ length: parts }, (_, p) => {
        const [a, b] = [bounds[p]!, bounds[p + 1]!];
        const labels = input.labels === null ? null : input.labels.slice(a - input.from, b - input.from);
        const part: RowPassInput = { ...input, from: a, to: b, labels };
        return current.runPass(key, part, labels === null ? [] : [labels.buffer]);
      }),
    );
  } catch (error) {
    if (error instanceof WorkerLostError) return null;
    throw error;
  }
  const result = new Float64Array(rowPassLength(input));
  for (const out of outs) for (let q = 0; q < result.length; q++) result[q] = result[q]! + out[q]!;
  return result;
}

setResidentPassRunner(residentPass);
