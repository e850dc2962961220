// kMeans: Lloyd iterations on argMin reductions, against the same iterations in plain float64.
import { afterAll, describe, expect, it } from 'vitest';
import { getWasmThreads, kMeans, setWasmThreads, Vi, Vj } from '../../src/index.js';
import { kMeansTesting } from '../../src/core/kmeans.js';
import { residentCount } from '../../src/core/resident.js';
import { rowPassLength, runRowPass, varianceFromMoments, type RowPass } from '../../src/core/row-passes.js';
import { wasmEngineTesting } from '../../src/wasm/wasm-engine.js';
import { wasmThreadsTesting, type WorkerFactory, type WorkerReply } from '../../src/wasm/workers.js';
import { rng } from '../helpers/random.js';
import { hasGpu } from '../gpu/setup.js';

/** The summed variance of the coordinates (sum over d of the variance of column d), by two float64
 *  passes per column: the reference for kMeans's tol scale. */
function coordinateVariance(x: ArrayLike<number>, N: number, D: number): number {
  let variance = 0;
  for (let d = 0; d < D; d++) {
    let m = 0;
    for (let i = 0; i < N; i++) m += x[i * D + d]!;
    m /= N;
    for (let i = 0; i < N; i++) variance += (x[i * D + d]! - m) ** 2 / N;
  }
  return variance;
}

/** Plain float64 Lloyd from given centroids, with the documented rules (ties to the lowest centroid,
 *  an empty cluster re-seeded at the farthest row not yet taken, stop when no label changes or the
 *  squared shift is at most tol times the mean coordinate variance). */
function lloyd(x: Float64Array, N: number, D: number, c0: Float64Array, iterations: number, tol: number) {
  const K = c0.length / D;
  const c = Float64Array.from(c0);
  const assign = () => {
    const labels = new Int32Array(N);
    const dist = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      let best = Infinity;
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += (x[i * D + d]! - c[k * D + d]!) ** 2;
        if (s < best) [best, labels[i]] = [s, k];
      }
      dist[i] = best;
    }
    return { labels, dist };
  };
  const variance = coordinateVariance(x, N, D);
  let { labels, dist } = assign();
  let it = 0;
  while (it < iterations) {
    const order = Array.from({ length: N }, (_, i) => i).sort((a, b) => dist[b]! - dist[a]! || a - b);
    let taken = 0;
    let shift = 0;
    for (let k = 0; k < K; k++) {
      const members = [...labels.keys()].filter((i) => labels[i] === k);
      for (let d = 0; d < D; d++) {
        const v =
          members.length > 0
            ? members.reduce((s, i) => s + x[i * D + d]!, 0) / members.length
            : x[order[taken]! * D + d]!;
        shift += (v - c[k * D + d]!) ** 2;
        c[k * D + d] = v;
      }
      if (members.length === 0) taken++;
    }
    it++;
    const next = assign();
    const changed = next.labels.some((l, i) => l !== labels[i]);
    ({ labels, dist } = next);
    if (!changed || shift <= (tol * variance) / D) break;
  }
  let inertia = 0;
  for (let i = 0; i < N; i++) inertia += dist[i]!;
  return { labels, centroids: c, iterations: it, inertia };
}

function blobs(seed: number, N: number, D: number, centres: number, spread: number): Float64Array {
  const random = rng(seed);
  const centre = Array.from({ length: centres * D }, () => 10 * random());
  return Float64Array.from(
    { length: N * D },
    (_, q) => centre[(Math.floor(q / D) % centres) * D + (q % D)]! + spread * (random() - 0.5),
  );
}

describe('kMeans', () => {
  it('equals a plain float64 Lloyd from the same initial centroids (float64)', async () => {
    const N = 3000,
      D = 3,
      K = 8;
    const x = blobs(1, N, D, 6, 3);
    const init = x.slice(0, K * D);
    const ref = lloyd(x, N, D, init, 50, 1e-4);
    const r = await kMeans(x, K, { dim: D, init, iterations: 50 });
    expect(Array.from(r.labels.data)).toEqual(Array.from(ref.labels));
    expect(r.iterations).toBe(ref.iterations);
    Array.from(r.centroids.data).forEach((v, q) => expect(Math.abs(v - ref.centroids[q]!)).toBeLessThan(1e-12));
    expect(Math.abs(r.inertia - ref.inertia)).toBeLessThan(1e-9 * ref.inertia);
    expect(r.centroids.shape).toEqual([K, D]);
  });

  it('re-seeds an empty cluster at the farthest row', async () => {
    const N = 500,
      D = 2;
    const x = blobs(2, N, D, 3, 1);
    // Centroid 2 is far from every row: empty after the first assignment.
    const init = Float64Array.from([x[0]!, x[1]!, x[2]!, x[3]!, 1e4, 1e4]);
    const ref = lloyd(x, N, D, init, 30, 0);
    const r = await kMeans(x, 3, { dim: D, init, iterations: 30, tol: 0 });
    expect(Array.from(r.labels.data)).toEqual(Array.from(ref.labels));
    expect(new Set(r.labels.data).size).toBe(3);
    Array.from(r.centroids.data).forEach((v, q) => expect(Math.abs(v - ref.centroids[q]!)).toBeLessThan(1e-12));
  });

  it('kmeans++ and random: seeded, and they find well separated blobs', async () => {
    const N = 1200,
      D = 2;
    const x = blobs(3, N, D, 4, 0.05); // row i is in blob i % 4
    for (const init of ['kmeans++', 'random'] as const) {
      const a = await kMeans(x, 4, { dim: D, init, seed: 5 });
      const b = await kMeans(x, 4, { dim: D, init, seed: 5 });
      expect(Array.from(a.labels.data)).toEqual(Array.from(b.labels.data));
      if (init === 'kmeans++') {
        // Each blob is one cluster (D^2 sampling all but guarantees one seed per far-apart blob).
        const first = [0, 1, 2, 3].map((t) => a.labels.data[t]!);
        expect(new Set(first).size).toBe(4);
        a.labels.data.forEach((l, i) => expect(l).toBe(first[i % 4]));
        const ref = lloyd(x, N, D, Float64Array.from(a.centroids.data), 1, 0);
        expect(Array.from(ref.labels)).toEqual(Array.from(a.labels.data));
      }
    }
  });

  it('float32 input: centroids in float32, labels of the returned centroids', async () => {
    const N = 2000,
      D = 4;
    const x = Float32Array.from(blobs(4, N, D, 5, 2));
    const r = await kMeans(x, 5, { dim: D, seed: 1 });
    expect(r.centroids.dtype).toBe('float32');
    const x64 = Float64Array.from(x);
    const c = Float64Array.from(r.centroids.data);
    // Every label is the nearest centroid in float64 up to float32 near-ties.
    for (let i = 0; i < N; i++) {
      const d = [0, 1, 2, 3, 4].map((k) =>
        [0, 1, 2, 3].reduce((s, t) => s + (x64[i * D + t]! - c[k * D + t]!) ** 2, 0),
      );
      expect(d[r.labels.data[i]!]!).toBeLessThanOrEqual(Math.min(...d) * (1 + 1e-5) + 1e-6);
    }
  });

  it('K = N, all points equal, bad input', async () => {
    const same = new Float64Array(40).fill(2);
    const r = await kMeans(same, 3, { dim: 2 });
    expect(r.inertia).toBe(0);
    expect(Array.from(r.centroids.data)).toEqual(new Array(6).fill(2));
    const x = [
      [0, 0],
      [1, 0],
      [5, 5],
    ];
    const all = await kMeans(x, 3, { init: x });
    expect(Array.from(all.labels.data)).toEqual([0, 1, 2]);
    await expect(kMeans(x, 4)).rejects.toThrow(/K must be an integer in \[1, 3\]/);
    await expect(kMeans(x, 2, { init: [[0, 0]] })).rejects.toThrow(/init must hold 2 centroids of 2 components/);
    // @ts-expect-error not an init
    await expect(kMeans(x, 2, { init: 'forgy' })).rejects.toThrow(/init must be/);
    await expect(kMeans(x, 2, { iterations: -1 })).rejects.toThrow(/iterations must be/);
    await expect(kMeans([[0, NaN]], 1)).rejects.toThrow(/kMeans: x.*NaN/);
    const c = new AbortController();
    c.abort();
    await expect(kMeans(x, 2, { signal: c.signal })).rejects.toThrow(/abort/i);
  });
});

/** A dense float64 assignment: the nearest centroid of each row, ties to the lowest index. */
function nearest(x: ArrayLike<number>, N: number, D: number, c: ArrayLike<number>, K: number): Int32Array {
  const labels = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    let best = Infinity;
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += (x[i * D + d]! - c[k * D + d]!) ** 2;
      if (s < best) [best, labels[i]] = [s, k];
    }
  }
  return labels;
}

describe('kMeans: its copy of the points, resident in the workers', () => {
  const threads = getWasmThreads();
  afterAll(async () => {
    wasmEngineTesting.reset();
    wasmThreadsTesting.setResidentMaxBytes(undefined);
    setWasmThreads(await threads);
  });

  it('2 workers, every assignment split: equals the float64 Lloyd (D = 1 to 300, N off the tiles)', async () => {
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
    try {
      for (const [N, D, K] of [
        [301, 1, 3],
        [257, 9, 10],
        [413, 50, 10],
        [130, 300, 7],
      ] as const) {
        const x = blobs(20 + D, N, D, 5, 4);
        const init = x.slice(0, K * D);
        const ref = lloyd(x, N, D, init, 20, 0);
        const pool = await wasmThreadsTesting.pool();
        const posts = pool?.residentPosts ?? 0;
        const r = await kMeans(x, K, { dim: D, init, iterations: 20, tol: 0 });
        expect(Array.from(r.labels.data)).toEqual(Array.from(ref.labels));
        expect(r.iterations).toBe(ref.iterations);
        Array.from(r.centroids.data).forEach((v, q) => expect(Math.abs(v - ref.centroids[q]!)).toBeLessThan(1e-10));
        expect(Math.abs(r.inertia - ref.inertia)).toBeLessThanOrEqual(1e-9 * ref.inertia);
        // the points went to the workers once for the whole run, and were dropped at its end
        const after = await wasmThreadsTesting.pool();
        expect(after!.residentPosts - (pool === after ? posts : 0)).toBe(1);
        expect(after!.residentBytes).toBe(0);
        expect(residentCount()).toBe(0);
      }
    } finally {
      wasmEngineTesting.reset();
    }
  });

  it('float32, D = 784, K = 10 (the Fashion-MNIST shape, smaller N): labels of a dense float64 assignment', async () => {
    setWasmThreads(2);
    const [N, D, K] = [3000, 784, 10];
    const x = Float32Array.from(blobs(31, N, D, K, 6));
    await Vi(x.subarray(0, 8 * D), D)
      .sqDist(Vj(x, D))
      .argMin(1); // starts the pool
    const pool = (await wasmThreadsTesting.pool())!;
    const before = pool.jobsPerWorker;
    const r = await kMeans(x, K, { dim: D, init: x.slice(0, K * D), iterations: 5 });
    // 30000 pairs at D = 784 split across the workers by their cost (pairCost), not their count
    expect(pool.jobsPerWorker.every((n, w) => n - before[w]! >= r.iterations + 1)).toBe(true);
    expect(Array.from(r.labels.data)).toEqual(Array.from(nearest(Float64Array.from(x), N, D, r.centroids.data, K)));
    const one = await Vi(x, D).sqDist(Vj(r.centroids.data, D)).argMin(1);
    expect(Array.from(r.labels.data)).toEqual(Array.from(one.data));
  });

  it('the caller changing their array during or between runs changes nothing it should not', async () => {
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
    try {
      const [N, D, K] = [400, 20, 4];
      const x = blobs(41, N, D, K, 3);
      const original = x.slice();
      const init = x.slice(0, K * D);
      const running = kMeans(x, K, { dim: D, init, iterations: 10, tol: 0 });
      x.fill(0); // after the call: the run works on the points as they were when it started
      const a = await running;
      const refA = lloyd(original, N, D, init, 10, 0);
      expect(Array.from(a.labels.data)).toEqual(Array.from(refA.labels));
      // new values in the same array: no stale copy is served
      for (let q = 0; q < x.length; q++) x[q] = original[(q + 7 * D) % x.length]! * 0.5;
      const b = await kMeans(x, K, { dim: D, init, iterations: 10, tol: 0 });
      const refB = lloyd(x, N, D, init, 10, 0);
      expect(Array.from(b.labels.data)).toEqual(Array.from(refB.labels));
      Array.from(b.centroids.data).forEach((v, q) => expect(Math.abs(v - refB.centroids[q]!)).toBeLessThan(1e-10));
      expect(residentCount()).toBe(0);
    } finally {
      wasmEngineTesting.reset();
    }
  });

  it('two runs at once on the same workers (same shapes, other points): each equals its reference', async () => {
    // Their assignments alternate on the workers and lay their points out at the same addresses: a
    // worker may skip copying only the points its previous job left there.
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
    try {
      const [N, D, K] = [360, 24, 4];
      const x = blobs(81, N, D, K, 3);
      const y = blobs(82, N, D, K, 3);
      const [cx, cy] = [x.slice(0, K * D), y.slice(0, K * D)];
      const [a, b] = await Promise.all([
        kMeans(x, K, { dim: D, init: cx, iterations: 8, tol: 0 }),
        kMeans(y, K, { dim: D, init: cy, iterations: 8, tol: 0 }),
      ]);
      const [ra, rb] = [lloyd(x, N, D, cx, 8, 0), lloyd(y, N, D, cy, 8, 0)];
      expect(Array.from(a.labels.data)).toEqual(Array.from(ra.labels));
      expect(Array.from(b.labels.data)).toEqual(Array.from(rb.labels));
      Array.from(a.centroids.data).forEach((v, q) => expect(Math.abs(v - ra.centroids[q]!)).toBeLessThan(1e-10));
      Array.from(b.centroids.data).forEach((v, q) => expect(Math.abs(v - rb.centroids[q]!)).toBeLessThan(1e-10));
    } finally {
      wasmEngineTesting.reset();
    }
  });

  it('past the per-worker bound the points are sent with each job, with the same result', async () => {
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
    wasmThreadsTesting.setResidentMaxBytes(1000);
    try {
      const [N, D, K] = [300, 8, 3];
      const x = blobs(51, N, D, K, 2); // 19200 bytes: over the bound
      const init = x.slice(0, K * D);
      const pool = await wasmThreadsTesting.pool();
      const posts = pool?.residentPosts ?? 0;
      const r = await kMeans(x, K, { dim: D, init, iterations: 10, tol: 0 });
      expect(Array.from(r.labels.data)).toEqual(Array.from(lloyd(x, N, D, init, 10, 0).labels));
      const after = await wasmThreadsTesting.pool();
      expect(after!.residentPosts).toBe(pool === after ? posts : 0);
    } finally {
      wasmThreadsTesting.setResidentMaxBytes(undefined);
      wasmEngineTesting.reset();
    }
  });

  it('a worker that does not hold the points: the assignment runs on the calling thread', async () => {
    // Workers that start, ignore 'keep' and answer every job as a worker missing its resident data does.
    const forgetful: WorkerFactory = () => {
      let onMessage: (m: WorkerReply) => void = () => {};
      return {
        postMessage(message: unknown) {
          const m = message as { type: string; id?: number };
          if (m.type === 'init') setTimeout(() => onMessage({ type: 'ready' }), 1);
          if (m.type === 'job') {
            const reply: WorkerReply = { type: 'error', id: m.id!, name: 'ResidentMissing', message: 'not held' };
            setTimeout(() => onMessage(reply), 1);
          }
        },
        listen(m) {
          onMessage = m;
        },
        ref() {},
        unref() {},
        terminate() {},
      };
    };
    setWasmThreads(2);
    wasmThreadsTesting.setWorkerFactory(forgetful);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
    try {
      const [N, D, K] = [250, 12, 3];
      const x = blobs(71, N, D, K, 2);
      const init = x.slice(0, K * D);
      const r = await kMeans(x, K, { dim: D, init, iterations: 10, tol: 0 });
      expect(Array.from(r.labels.data)).toEqual(Array.from(lloyd(x, N, D, init, 10, 0).labels));
      expect((await wasmThreadsTesting.pool())!.residentPosts).toBe(1);
      expect(residentCount()).toBe(0);
    } finally {
      wasmEngineTesting.reset();
      wasmThreadsTesting.setWorkerFactory(undefined);
    }
  });

  it('a failed run releases its points too', async () => {
    const c = new AbortController();
    const x = blobs(61, 200, 4, 3, 2);
    const running = kMeans(x, 3, { dim: 4, iterations: 50, tol: 0, signal: c.signal });
    c.abort();
    await expect(running).rejects.toThrow(/abort/i);
    expect(residentCount()).toBe(0);
  });
});

describe('kMeans: its passes over the points (centroid sums, inertia, moments)', () => {
  const threads = getWasmThreads();
  afterAll(async () => {
    kMeansTesting.reset();
    wasmEngineTesting.reset();
    wasmThreadsTesting.setSharedResident(undefined);
    setWasmThreads(await threads);
  });

  it('each pass equals a float64 reference, and its row ranges add up (far from the origin too)', () => {
    const [N, D, K] = [37, 21, 4];
    const random = rng(91);
    for (const offset of [0, 1e6]) {
      const x = Float64Array.from({ length: N * D }, () => offset + random() * 3);
      const labels = Int32Array.from({ length: N }, (_, i) => (i * 7) % K);
      const c = Float64Array.from({ length: K * D }, () => offset + random());
      const whole = (pass: RowPass) => {
        const input = { pass, dim: D, from: 0, to: N, labels, clusters: K, centroids: c };
        const out = new Float64Array(rowPassLength(input));
        runRowPass(x, input, out);
        // the same in three ranges added into one result
        const split = new Float64Array(out.length);
        for (const [a, b] of [
          [0, 10],
          [10, 11],
          [11, N],
        ] as const) {
          runRowPass(x, { ...input, from: a, to: b, labels: labels.subarray(a, b) }, split);
        }
        Array.from(split).forEach((v, q) =>
          expect(Math.abs(v - out[q]!)).toBeLessThanOrEqual(1e-12 * Math.abs(out[q]!)),
        );
        return out;
      };
      const sums = whole('sums');
      for (let k = 0; k < K; k++) {
        const members = [...labels.keys()].filter((i) => labels[i] === k);
        expect(sums[K * D + k]).toBe(members.length);
        for (let d = 0; d < D; d++) {
          const want = members.reduce((s, i) => s + x[i * D + d]!, 0);
          expect(Math.abs(sums[k * D + d]! - want)).toBeLessThanOrEqual(1e-15 * Math.abs(want) * N);
        }
      }
      const inertia = whole('inertia')[0]!;
      let want = 0;
      for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) want += (x[i * D + d]! - c[labels[i]! * D + d]!) ** 2;
      expect(Math.abs(inertia - want)).toBeLessThanOrEqual(1e-9 * want);
      // the variance by the shifted moments against two passes in float64 (no cancellation at 1e6)
      const variance = coordinateVariance(x, N, D);
      expect(Math.abs(varianceFromMoments(whole('moments'), N, D) - variance)).toBeLessThanOrEqual(1e-9 * variance);
    }
  });

  it('on 2 workers, on one thread, from one shared copy or per-worker copies: the same run', async () => {
    const [N, D, K] = [900, 40, 6];
    const x = Float32Array.from(blobs(93, N, D, K, 5));
    const init = x.slice(0, K * D);
    const ref = lloyd(Float64Array.from(x), N, D, Float64Array.from(init), 30, 1e-3);
    const runs: Awaited<ReturnType<typeof kMeans>>[] = [];
    for (const [threads, shared] of [
      [1, true],
      [2, true],
      [2, false],
    ] as const) {
      setWasmThreads(threads);
      wasmThreadsTesting.setSharedResident(shared);
      // every pass on the workers where there are some, every assignment split
      kMeansTesting.configure({ workerMinValues: 0, sliceValues: 1000 });
      wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
      // the pool up before the run, so that its counters cover the whole run
      await Vi(x, D).sqDist(Vj(init, D)).argMin(1);
      const pool = await wasmThreadsTesting.pool();
      const [jobs, posts, sharedPosts] = [pool?.jobsRun ?? 0, pool?.residentPosts ?? 0, pool?.sharedPosts ?? 0];
      const r = await kMeans(x, K, { dim: D, init, iterations: 30, tol: 1e-3 });
      runs.push(r);
      expect(r.iterations).toBe(ref.iterations);
      expect(Array.from(r.labels.data)).toEqual(Array.from(ref.labels));
      Array.from(r.centroids.data).forEach((v, q) =>
        expect(Math.abs(v - ref.centroids[q]!)).toBeLessThanOrEqual(1e-6 * Math.abs(ref.centroids[q]!) + 1e-6),
      );
      expect(Math.abs(r.inertia - ref.inertia)).toBeLessThanOrEqual(1e-5 * ref.inertia);
      if (threads === 2) {
        // 2 parts per assignment (iterations + 1) and per pass: the moments of tol, one sums pass per
        // iteration and the inertia; the points posted once, as one shared copy or a copy per worker
        expect(pool!.jobsRun - jobs).toBe(2 * (r.iterations + 1) + 2 * (r.iterations + 2));
        expect(pool!.residentPosts - posts).toBe(1);
        expect(pool!.sharedPosts - sharedPosts).toBe(shared ? 1 : 0);
        expect(pool!.residentBytes).toBe(0);
      } else {
        expect(pool).toBe(null);
      }
      expect(residentCount()).toBe(0);
      kMeansTesting.reset();
      wasmEngineTesting.reset();
      wasmThreadsTesting.setSharedResident(undefined);
    }
    // the runs agree with each other closer than with the float64 reference (float32 assignments)
    for (const r of runs.slice(1)) {
      expect(Array.from(r.labels.data)).toEqual(Array.from(runs[0]!.labels.data));
      Array.from(r.centroids.data).forEach((v, q) => expect(v).toBe(runs[0]!.centroids.data[q]));
      expect(Math.abs(r.inertia - runs[0]!.inertia)).toBeLessThanOrEqual(1e-12 * runs[0]!.inertia);
    }
  });

  it('an abort during the passes on the calling thread stops the run (and releases the points)', async () => {
    setWasmThreads(1);
    kMeansTesting.configure({ sliceValues: 64 });
    try {
      // uniform points, many clusters: Lloyd goes on for many iterations
      const [N, D, K] = [4000, 16, 40];
      const random = rng(95);
      const x = Float64Array.from({ length: N * D }, () => random());
      const c = new AbortController();
      let ticks = 0;
      const timer = setInterval(() => {
        if (++ticks === 2) c.abort(new Error('stop the clustering'));
      }, 1);
      try {
        await expect(kMeans(x, K, { dim: D, iterations: 1000, tol: 0, signal: c.signal })).rejects.toThrow(
          /stop the clustering/,
        );
      } finally {
        clearInterval(timer);
      }
      expect(ticks).toBeGreaterThanOrEqual(2); // the timer ran during the run: the loop yielded
      expect(residentCount()).toBe(0);
    } finally {
      kMeansTesting.reset();
    }
  });

  it('x with a NaN or an infinity anywhere is refused, naming the element', async () => {
    for (const at of [0, 7, 8, 13, 22]) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = new Float32Array(23).fill(1);
        x[at] = bad;
        await expect(kMeans(x, 1)).rejects.toThrow(`data[${at}][0] is ${bad}; inputs must be finite`);
      }
    }
  });
});

describe.skipIf(!hasGpu)('kMeans on the WebGPU engine', () => {
  it('its copy of the points (shared memory here) reaches the GPU: the labels of its centroids', async () => {
    const [N, D, K] = [600, 12, 4];
    const x = Float32Array.from(blobs(97, N, D, K, 3));
    const r = await kMeans(x, K, { dim: D, init: x.slice(0, K * D), iterations: 5, engine: 'webgpu' });
    expect(r.labels.engine).toBe('webgpu');
    const want = nearest(Float64Array.from(x), N, D, r.centroids.data, K);
    expect(Array.from(r.labels.data)).toEqual(Array.from(want));
  });
});
