// The multilevel backend's own long work (the k-d trees, the levels, the bounds and the dual-tree
// traversals) runs in time slices: the event loop keeps running during a large multiscale solve, and
// an abort during the hierarchy's build rejects at once.
import { describe, expect, it } from 'vitest';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { rng } from './helpers.js';

const N = 200_000;

type Pts = { data: Float32Array; shape: [number, 3] };

function clouds(seed: number): { x: Pts; y: Pts } {
  const r = rng(seed);
  const x = { data: Float32Array.from({ length: 3 * N }, () => r()), shape: [N, 3] as [number, 3] };
  const y = { data: Float32Array.from({ length: 3 * N }, () => 0.25 + 0.6 * r()), shape: [N, 3] as [number, 3] };
  return { x, y };
}

/**
 * Runs `work` while a 10 ms interval ticks; returns the largest gap between ticks after the first
 * one. The first gap (from the call to the first tick) is the input preparation before the solve
 * (parsing, merging coincident points: plain linear passes of other modules, done before the
 * multiscale code starts); every later gap is the multiscale solve's.
 */
async function gapsDuring(work: () => Promise<unknown>): Promise<{ maxGap: number; ticks: number }> {
  let last = -1;
  let maxGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    if (last >= 0) maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 10);
  try {
    await work().catch((e: unknown) => {
      if (!(e instanceof Error && e.name === 'AbortError')) throw e;
    });
    if (last >= 0) maxGap = Math.max(maxGap, performance.now() - last);
    return { maxGap, ticks };
  } finally {
    clearInterval(timer);
  }
}

/** The gaps of a well-behaved job on this machine now: 15 ms of busy work between yields, for
 *  `ms`. On a loaded shared machine the process is descheduled for far longer than 15 ms at times:
 *  the bound below scales with what this job sees. */
async function controlGap(ms: number): Promise<number> {
  const end = performance.now() + ms;
  const g = await gapsDuring(async () => {
    while (performance.now() < end) {
      const stop = performance.now() + 15;
      while (performance.now() < stop);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  });
  return g.maxGap;
}

describe('multilevel multiscale: event loop and abort', () => {
  it(`keeps the event loop running at ${N} points (no gap above 300 ms, or 4x a 15 ms-slice job's)`, async () => {
    const { x, y } = clouds(31);
    // The solve is stopped (aborted) after the schedule's temperatures on the coarse levels: the
    // build, every coarse level and the extrapolation down to the finest cells have run by then.
    const run = async () => {
      const controller = new AbortController();
      let iterations = 0;
      const loss = new SamplesLoss({
        blur: 0.01,
        backend: 'multiscale',
        signal: controller.signal,
        onProgress: (p) => {
          iterations = p.iteration;
          if (p.iteration >= p.total - 3) controller.abort();
        },
      });
      const g = await gapsDuring(() => loss.value(x, y));
      return { ...g, iterations };
    };
    // The machine running the tests is shared and loaded: the process itself is sometimes
    // descheduled for longer than the bound. A run that starves the event loop (the bug this
    // checks: seconds at this size) fails every attempt.
    // Unsliced, the build and the traversals blocked for seconds at this size (1.7 s for one tree's
    // build at load 10 on the 2-core machine).
    let best = { maxGap: Infinity, ticks: 0, iterations: 0 };
    let bound = 300;
    for (let attempt = 0; attempt < 3 && !(best.maxGap < bound); attempt++) {
      bound = Math.max(bound, 4 * (await controlGap(1000)));
      const r = await run();
      if (r.maxGap < best.maxGap) best = r;
    }
    expect(best.iterations).toBeGreaterThanOrEqual(5);
    expect(best.ticks).toBeGreaterThan(10);
    expect(best.maxGap).toBeLessThan(bound);
  }, 300_000);

  it('rejects promptly on an abort during the hierarchy build', async () => {
    const { x, y } = clouds(32);
    const controller = new AbortController();
    let progress = 0;
    const loss = new SamplesLoss({
      blur: 0.01,
      backend: 'multiscale',
      signal: controller.signal,
      onProgress: () => progress++,
    });
    let abortedAt = 0;
    // Fires at the first yield of the solve: inside the build of the trees (before any iteration).
    const timer = setTimeout(() => {
      abortedAt = performance.now();
      controller.abort();
    }, 0);
    const error = await loss.value(x, y).then(
      () => null,
      (e: unknown) => e,
    );
    clearTimeout(timer);
    const latency = performance.now() - abortedAt;
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('AbortError');
    expect(abortedAt).toBeGreaterThan(0);
    // No iteration ran: the abort came during the build, and the build saw it.
    expect(progress).toBe(0);
    expect(latency).toBeLessThan(500);
  }, 120_000);
});
