// Cooperative scheduling for long jobs: yielding to the event loop, abort signals and progress.
//
// A loop of awaited reductions never leaves the microtask queue when every reduction resolves
// without waiting on anything (small reductions run on the calling thread): timers, I/O, UI events
// and abort listeners would starve. Every reduction, and every iteration of the library's loops
// (GeomLoss, solve), calls yieldIfDue(): it costs a clock read when it is not due, and otherwise
// waits for one macrotask, so that the event loop runs at least every YIELD_INTERVAL_MS of work.
import { InputError } from './errors.js';

/**
 * The part of an `AbortSignal` the library reads. Written out so that the published declarations
 * need neither the DOM lib nor @types/node: see {@link AbortSignalLike}.
 */
export interface AbortSignalShape {
  /** Whether the signal has fired. */
  readonly aborted: boolean;
  /** Why it fired (the rejection of an aborted job). */
  readonly reason?: unknown;
  /** Subscribes to the 'abort' event. */
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  /** Unsubscribes from the 'abort' event. */
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * An `AbortSignal` (from an `AbortController`): the runtime's own type where the libs in use declare
 * one (the DOM lib, @types/node, Deno, Bun), else {@link AbortSignalShape}.
 */
export type AbortSignalLike = typeof globalThis extends {
  /** The runtime's AbortSignal class, where the libs in use declare it. */
  AbortSignal: {
    /** Its prototype, which has the instance type. */
    prototype: infer S;
  };
}
  ? S
  : AbortSignalShape;

/** The longest stretch of work between two macrotask yields, in milliseconds. */
export const YIELD_INTERVAL_MS = 20;

/** Progress of a reduction, reported between the chunks it is computed in (see ReductionOptions). */
export interface ReductionProgress {
  /** Output rows computed so far (over every batch item for a batched reduction). */
  readonly done: number;
  /** Output rows in all. */
  readonly total: number;
}

/** What a reduction is run with besides its plan: cancellation and progress. */
export interface RunControl {
  readonly signal?: AbortSignalLike;
  /** Called with rows done [done, done + rows) as they complete, in no particular order. */
  readonly onRows?: (rows: number) => void;
}

const now: () => number =
  typeof performance !== 'undefined' && typeof performance.now === 'function'
    ? () => performance.now()
    : () => Date.now();

type Scheduler = (callback: () => void) => void;

/** A macrotask: setImmediate in Node (not clamped to 1 ms as nested timers are), a MessageChannel in
 *  browsers and workers (not clamped to 4 ms as nested setTimeout is), setTimeout elsewhere. */
function macrotaskScheduler(): Scheduler {
  const g = globalThis as {
    setImmediate?: (callback: () => void) => unknown;
    MessageChannel?: new () => {
      port1: { onmessage: (() => void) | null; close?(): void };
      port2: { postMessage(m: unknown): void };
    };
  };
  if (typeof g.setImmediate === 'function') {
    const immediate = g.setImmediate;
    return (callback) => void immediate(callback);
  }
  if (typeof g.MessageChannel === 'function') {
    const channel = new g.MessageChannel();
    const waiting: (() => void)[] = [];
    channel.port1.onmessage = () => waiting.shift()?.();
    return (callback) => {
      waiting.push(callback);
      channel.port2.postMessage(null);
    };
  }
  return (callback) => void setTimeout(callback, 0);
}

let schedule: Scheduler | null = null;
let lastYield = now();

/** Waits for one macrotask (the event loop runs timers, I/O and events in between). */
export function yieldToEventLoop(): Promise<void> {
  schedule ??= macrotaskScheduler();
  return new Promise((resolve) => {
    schedule!(() => {
      lastYield = now();
      resolve();
    });
  });
}

/**
 * Yields to the event loop when YIELD_INTERVAL_MS have passed since the last yield, else does
 * nothing (one clock read). Shared by every loop of the library, so that nested loops yield once.
 */
export function yieldIfDue(): Promise<void> | undefined {
  if (now() - lastYield < YIELD_INTERVAL_MS) return undefined;
  return yieldToEventLoop();
}

/** Milliseconds since the last yield (for code that must decide whether to split its work). */
export function sinceLastYield(): number {
  return now() - lastYield;
}

/**
 * Whether `v` looks like an AbortSignal (DOM's, Node's, or a compatible polyfill): an object with a
 * boolean `aborted` and `addEventListener` / `removeEventListener` methods, the part of a signal the
 * library reads ({@link AbortSignalShape}). For code built on the library that validates its own
 * `signal` option (lazytensor/geomloss does). Never throws.
 *
 * @example
 * ```ts
 * if (options.signal !== undefined && !isAbortSignal(options.signal)) throw new TypeError('signal: an AbortSignal');
 * ```
 */
export function isAbortSignal(v: unknown): v is AbortSignalLike {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as AbortSignalLike).aborted === 'boolean' &&
    typeof (v as AbortSignalLike).addEventListener === 'function' &&
    typeof (v as AbortSignalLike).removeEventListener === 'function'
  );
}

/** Checks an option that must be an AbortSignal (or absent). */
export function checkSignal(where: string, signal: unknown): AbortSignalLike | undefined {
  if (signal === undefined) return undefined;
  if (!isAbortSignal(signal)) {
    throw new InputError(
      `${where}: signal must be an AbortSignal (from an AbortController), got ${signal === null ? 'null' : typeof signal}`,
    );
  }
  return signal;
}

/** The rejection of an aborted job: the signal's reason (a DOMException 'AbortError' by default). */
export function abortReason(signal: AbortSignalLike): unknown {
  if (signal.reason !== undefined) return signal.reason;
  // Signals from before `reason` existed: the DOM's default reason.
  if (typeof DOMException === 'function') return new DOMException('This operation was aborted', 'AbortError');
  const error = new Error('This operation was aborted');
  error.name = 'AbortError';
  return error;
}

/**
 * Throws the signal's reason when it has been aborted (the same rejection every job of the library
 * uses: `signal.reason`, or a DOMException named 'AbortError' for a signal that has no reason), else
 * does nothing. The synchronous half of {@link checkpoint}; `undefined` is a signal never aborted.
 *
 * @example
 * ```ts
 * throwIfAborted(signal); // before starting work that cannot stop halfway
 * ```
 */
export function throwIfAborted(signal: AbortSignalLike | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/**
 * `work`, rejected with the signal's reason as soon as the signal aborts (the work itself goes on
 * to its next check, its result is then dropped).
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignalLike | undefined): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Runs `step` until it returns false (each call a bounded piece of a synchronous job), checking the
 * signal before the first call and after each, and yielding to the event loop when due. The job's
 * loops stay in `step`, which V8 optimises, not in this async function, which it would not while it
 * runs.
 */
export async function runSteps(step: () => boolean, signal: AbortSignalLike | undefined): Promise<void> {
  throwIfAborted(signal);
  while (step()) {
    throwIfAborted(signal);
    const pending = yieldIfDue();
    if (pending !== undefined) await pending;
  }
  throwIfAborted(signal);
}

/**
 * One iteration boundary of a long loop: rejects with the signal's reason when the signal is aborted
 * (checked before and after the yield, so an abort fired by a timer during the yield is seen at once),
 * and yields one macrotask to the event loop when YIELD_INTERVAL_MS (20 ms) of work have passed since
 * the library last yielded (otherwise it only reads the clock). Reductions, GeomLoss and `solve` share
 * this clock, so a loop of your own around them that awaits `checkpoint` each iteration keeps timers,
 * I/O and UI events running without yielding more often than needed. `signal` may be undefined.
 *
 * @example
 * ```ts
 * for (let step = 0; step < 1000; step++) {
 *   await checkpoint(signal); // the loop stops with signal.reason when aborted
 *   updatePoints(); // your own work between reductions
 * }
 * ```
 */
export async function checkpoint(signal: AbortSignalLike | undefined): Promise<void> {
  throwIfAborted(signal);
  const pending = yieldIfDue();
  if (pending !== undefined) {
    await pending;
    throwIfAborted(signal);
  }
}

/**
 * Turns row completions into monotone { done, total } calls of a user's onProgress, ending with one
 * call where done === total (made by finish(), even when the engine reported no rows).
 */
export function progressReporter(
  total: number,
  onProgress: ((progress: ReductionProgress) => void) | undefined,
): { onRows: ((rows: number) => void) | undefined; finish: () => void } {
  if (onProgress === undefined) return { onRows: undefined, finish: () => {} };
  let done = 0;
  let finished = false;
  return {
    onRows(rows: number) {
      if (finished || rows <= 0) return;
      done = Math.min(total, done + rows);
      // The final call is finish()'s, so that exactly one call has done === total.
      if (done < total) onProgress({ done, total });
    },
    finish() {
      if (finished) return;
      finished = true;
      onProgress({ done: total, total });
    },
  };
}
