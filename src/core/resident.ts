// Arrays that stay put across many reductions: what a multi-call helper (kMeans) tells the engines.
//
// WHY
// A Lloyd iteration is one reduction over the same [N, D] points with new centroids: at Fashion-MNIST
// size (60000 x 784, 188 MB in float32) sending the points to the workers on every call costs more
// than computing the assignment. An engine may instead keep a copy next to its kernels (the Wasm
// engine: in each worker) for as long as the array is held, and send only the small operands.
//
// CONTRACT
// The holder owns the array and does not write to it between holdResident and the release (kMeans
// holds its own private copy of the user's points, never the user's array: a user may change their
// array between calls, and a cache keyed on an array the library does not own would serve stale
// data). Holding is counted: an array is resident until every hold is released. Engines learn of
// releases through onResidentRelease and must then drop their copies. Nothing here copies data; an
// engine bounds what it keeps itself (and simply sends the data as usual past its bound).
//
// PASSES OVER RESIDENT ROWS
// Beside the reductions, kMeans makes plain passes over its points (core/row-passes.ts: the centroid
// sums, the inertia, the coordinate moments). An engine that keeps copies may register a runner for
// them (the Wasm engine: its workers, each over a share of the rows), so that the main thread neither
// reads the points nor blocks for the ~50-100 ms a pass takes at Fashion-MNIST size.
//
// The core imports no engine: engines import this module.
import type { RowPassInput } from './row-passes.js';
import type { AbortSignalLike } from './scheduling.js';

export type ResidentArray = Float32Array | Float64Array;

/**
 * Runs a pass over rows [input.from, input.to) of a held array somewhere else and resolves to its
 * result (core/row-passes.ts: the same values as runRowPass, up to the order of the additions), or
 * to null when it cannot (no workers, the array not kept): the caller then runs it itself.
 */
export type ResidentPassRunner = (
  data: ResidentArray,
  input: RowPassInput,
  signal: AbortSignalLike | undefined,
) => Promise<Float64Array | null>;

let passRunner: ResidentPassRunner | null = null;

/** Registers the runner of passes over resident rows (one: the last registered); null removes it. */
export function setResidentPassRunner(runner: ResidentPassRunner | null): void {
  passRunner = runner;
}

/** The registered runner of passes over resident rows, or null. */
export function residentPassRunner(): ResidentPassRunner | null {
  return passRunner;
}

const holds = new Map<ResidentArray, number>();
const listeners = new Set<(data: ResidentArray) => void>();

/** Whether this runtime has shared memory to post to workers (Node, Deno, Bun; browsers only on
 *  cross-origin isolated pages, where SharedArrayBuffer exists at all). */
export function sharedMemoryAvailable(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean };
  return typeof SharedArrayBuffer === 'function' && g.crossOriginIsolated !== false;
}

/**
 * A copy of `data` to hold: in a SharedArrayBuffer where the runtime has shared memory (an engine
 * then gives it to its workers as it is, with no copy per worker, and one copy of the points exists
 * in all), else an ordinary copy. Either way the caller owns it: a typed array like any other.
 */
export function residentCopy<T extends ResidentArray>(data: T): T {
  if (sharedMemoryAvailable()) {
    try {
      const shared = (
        data instanceof Float32Array
          ? new Float32Array(new SharedArrayBuffer(data.byteLength))
          : new Float64Array(new SharedArrayBuffer(data.byteLength))
      ) as T;
      shared.set(data);
      return shared;
    } catch {
      // no shared memory after all (a platform limit on its size): an ordinary copy
    }
  }
  return data.slice() as T;
}

/**
 * Marks `data` as unchanging until the returned function is called (calling it again does
 * nothing). The caller must own `data` and not write to it meanwhile.
 */
export function holdResident(data: ResidentArray): () => void {
  holds.set(data, (holds.get(data) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (holds.get(data) ?? 1) - 1;
    if (left > 0) {
      holds.set(data, left);
      return;
    }
    holds.delete(data);
    for (const listener of listeners) listener(data);
  };
}

/** Whether `data` is held (an engine may keep a copy of it across reductions). */
export function isResident(data: unknown): data is ResidentArray {
  return holds.has(data as ResidentArray);
}

/** Registers a function called with each array whose last hold is released. Returns its removal. */
export function onResidentRelease(listener: (data: ResidentArray) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** @internal For tests: the number of arrays held now. */
export function residentCount(): number {
  return holds.size;
}
