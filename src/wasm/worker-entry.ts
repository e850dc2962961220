// Entry of a WebAssembly engine worker (src/wasm/workers.ts). Bundled to a string at build time
// (scripts/worker-plugin.mjs) and started from that string, so there is no file to locate. Runs in a
// Node worker_threads worker (eval: true) or a browser/Deno Worker.
//
// Protocol (all messages are plain objects):
//   out { type: 'alive' } as soon as the script runs (the pool gives up a silent worker quickly)
//   in  { type: 'init', wasm: Uint8Array }      -> out { type: 'ready' } or { type: 'error', ... }
//   in  { type: 'init', module: WebAssembly.Module } (the same, from a compiled module)
//   in  { type: 'job', id, job: PostedJob }     -> out { type: 'done', id, values, indices } (buffers
//                                                  transferred) or { type: 'error', id, name, message }
//   in  { type: 'keep', key, data }             holds `data` under `key` until { type: 'drop', key }:
//                                                  a job's data may name a range of it (ResidentRef);
//                                                  one naming a key not held fails as 'ResidentMissing'
//   in  { type: 'pass', id, key, input }        -> out { type: 'pass', id, out: Float64Array } (transferred):
//                                                  core/row-passes.ts's runRowPass over the rows of the
//                                                  array held under `key` ('ResidentMissing' if none)
// The worker owns one kernel instance with its own (non-shared) memory: the kernel keeps static
// tables in memory and is not reentrant, so instances are never shared between threads.
import { ResourceLimitError } from '../core/errors.js';
import { rowPassLength, runRowPass, type RowPassInput } from '../core/row-passes.js';
import {
  checkJobMemory,
  isResidentRef,
  JOB_REG_WORDS,
  runJob,
  type KernelExports,
  type KernelJob,
  type PostedJob,
} from './worker-job.js';

interface Port {
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
}

let kernel: KernelExports | null = null;
/** Resident arrays (WorkerPool.residentKey), by key. */
const held = new Map<number, Float32Array | Float64Array>();

/**
 * Resident data the last job left in the kernel's memory: per register, the range of which array
 * (and how it was laid out) at which address. A job laying the same range out the same way at the
 * same address (the next assignment of a kMeans run) skips the copy: nothing but a job writes to the
 * memory, each job is recorded here in full, and kept arrays never change.
 */
let placed: string[] = [];
const placement = (job: KernelJob, k: number, key: number, from: number, to: number, at: number): string =>
  [
    key,
    from,
    to,
    at,
    job.registers[k * JOB_REG_WORDS],
    job.registers[k * JOB_REG_WORDS + 1],
    job.block,
    job.nInner,
    job.f64,
  ].join(',');

/** Runs a posted job; skips the copies of the resident data already in place. */
function runPosted(k: KernelExports, posted: PostedJob): ReturnType<typeof runJob> {
  const job = resolveJob(posted);
  const layout = checkJobMemory(job, k.heapBase());
  const wanted = posted.data.map((d, r) =>
    isResidentRef(d) ? placement(job, r, d.resident, d.from, d.to, layout.bases[r]!) : null,
  );
  const before = new Set(placed);
  placed = []; // this job rewrites the memory; recorded again once it is laid out
  const prepared = { inPlace: (r: number) => wanted[r] !== null && before.has(wanted[r]!) };
  const out = runJob(k, job, layout, prepared.inPlace);
  placed = wanted.filter((w): w is string => w !== null);
  return out;
}

class ResidentMissing extends Error {
  override readonly name = 'ResidentMissing';
}

/** The job with the ranges of resident arrays it names in place of the names. */
function resolveJob(job: PostedJob): KernelJob {
  const data = job.data.map((d) => {
    if (!isResidentRef(d)) return d;
    const array = held.get(d.resident);
    if (array === undefined) throw new ResidentMissing(`${job.kind}: resident data ${d.resident} is not held here`);
    return array.subarray(d.from, d.to);
  });
  return { ...job, data };
}

function handle(
  port: Port,
  message: {
    type: string;
    id?: number;
    key?: number;
    data?: Float32Array | Float64Array;
    wasm?: Uint8Array<ArrayBuffer>;
    module?: WebAssembly.Module;
    job?: PostedJob;
    input?: RowPassInput;
  },
): void {
  try {
    if (message.type === 'init') {
      const module = message.module ?? new WebAssembly.Module(message.wasm!);
      kernel = new WebAssembly.Instance(module, {}).exports as unknown as KernelExports;
      port.postMessage({ type: 'ready' });
    } else if (message.type === 'keep') {
      held.set(message.key!, message.data!);
    } else if (message.type === 'drop') {
      held.delete(message.key!);
      placed = placed.filter((p) => !p.startsWith(`${message.key!},`));
    } else if (message.type === 'pass') {
      const array = held.get(message.key!);
      if (array === undefined) throw new ResidentMissing(`kMeans: resident data ${message.key!} is not held here`);
      const input = message.input!;
      const out = new Float64Array(rowPassLength(input));
      runRowPass(array, input, out);
      port.postMessage({ type: 'pass', id: message.id, out }, [out.buffer]);
    } else if (message.type === 'job') {
      if (kernel === null) throw new Error('internal: worker job before init');
      const out = runPosted(kernel, message.job!);
      const transfer: ArrayBuffer[] = [];
      if (out.values) transfer.push(out.values.buffer as ArrayBuffer);
      if (out.indices) transfer.push(out.indices.buffer as ArrayBuffer);
      if (out.columns) transfer.push(out.columns.buffer as ArrayBuffer);
      port.postMessage(
        { type: 'done', id: message.id, values: out.values, indices: out.indices, columns: out.columns },
        transfer,
      );
    }
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    // The library's error classes cross as their name (and a ResourceLimitError's figures), so the
    // pool can rethrow the same class on the calling thread.
    const limit = e instanceof ResourceLimitError ? { needed: e.needed, limit: e.limit, unit: e.unit } : undefined;
    port.postMessage({ type: 'error', id: message.id ?? -1, name: e.name, message: e.message, limit });
  }
}

const g = globalThis as unknown as Record<string, unknown>;
// Node worker_threads (and Deno's): eval: true runs this as a CommonJS script with `require`, or as
// an ES module when the parent was started with --input-type=module (workers inherit execArgv):
// there process.getBuiltinModule (Node >= 20.16) gives the module. A Web Worker (browsers, Bun) has
// neither, or no parentPort.
type WorkerThreads = { parentPort: (Port & { on(event: 'message', cb: (m: never) => void): void }) | null };
function workerThreads(): WorkerThreads | null {
  try {
    const req = g['require'] as ((id: string) => unknown) | undefined;
    if (typeof req === 'function') return req('node:worker_threads') as WorkerThreads;
    const proc = g['process'] as { getBuiltinModule?: (id: string) => unknown } | undefined;
    if (typeof proc?.getBuiltinModule === 'function')
      return (proc.getBuiltinModule('node:worker_threads') as WorkerThreads | undefined) ?? null;
  } catch {
    // not Node
  }
  return null;
}
const parentPort = workerThreads()?.parentPort ?? null;
if (parentPort !== null && typeof parentPort.postMessage === 'function') {
  parentPort.on('message', (m) => handle(parentPort, m));
  parentPort.postMessage({ type: 'alive' });
} else {
  // Web Worker.
  const self = g as unknown as Port & { onmessage: ((e: { data: never }) => void) | null };
  self.onmessage = (e) => handle(self, e.data);
  self.postMessage({ type: 'alive' });
}
