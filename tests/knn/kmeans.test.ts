// kMeans: Lloyd iterations on argMin reductions, against the same iterations in plain float64.
import { describe, expect, it } from 'vitest';
import { kMeans } from '../../src/index.js';
import { rng } from '../helpers/random.js';

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
  let variance = 0;
  for (let d = 0; d < D; d++) {
    let m = 0;
    for (let i = 0; i < N; i++) m += x[i * D + d]!;
    m /= N;
    for (let i = 0; i < N; i++) variance += (x[i * D + d]! - m) ** 2 / N;
  }
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
