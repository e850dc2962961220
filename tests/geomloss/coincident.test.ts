// mergeCoincident: a cloud's distinct locations (the same bits) with their summed weights, against a
// reference keyed by each row's coordinates; it yields to the event loop and sees an abort.
import { describe, expect, it } from 'vitest';
import type { Cloud } from '../../src/geomloss/inputs.js';
import { mergeCoincident } from '../../src/geomloss/coincident.js';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { expectResponsive } from '../helpers/event-loop.js';
import { rng } from './helpers.js';

const cloud = (data: Float32Array | Float64Array, N: number, D: number): Cloud => ({
  name: 'x',
  data,
  B: 1,
  N,
  D,
  batched: false,
  natural: data instanceof Float32Array ? 'float32' : 'float64',
});

describe('mergeCoincident', () => {
  for (const Kind of [Float32Array, Float64Array]) {
    it(`merges rows with the same bits, in first-appearance order (${Kind.name})`, async () => {
      const r = rng(11);
      const D = 3;
      const U = 700;
      const N = 5000;
      const locations = Array.from({ length: U }, () => Array.from({ length: D }, () => r()));
      // -0 and 0 have different bits: two locations, as documented (exact points only).
      locations[1] = [0, 0, 0];
      locations[2] = [-0, 0, 0];
      const data = new Kind(N * D);
      const pick = Int32Array.from({ length: N }, (_, i) => (i < U ? i : Math.floor(r() * U)));
      for (let i = 0; i < N; i++) data.set(locations[pick[i]!]!, i * D);
      const w = Float64Array.from({ length: N }, () => r());
      // Reference: a Map keyed by the rows' exact values (sign of zero included).
      const key = (i: number) =>
        Array.from(data.subarray(i * D, i * D + D), (v) => (Object.is(v, -0) ? '-0' : String(v))).join(',');
      const first = new Map<string, number>();
      const order: number[] = [];
      const sums: number[] = [];
      for (let i = 0; i < N; i++) {
        const k = key(i);
        let u = first.get(k);
        if (u === undefined) {
          u = order.length;
          first.set(k, u);
          order.push(i);
          sums.push(0);
        }
        sums[u]! += w[i]!;
      }
      const m = (await mergeCoincident(cloud(data, N, D), w))!;
      expect(m).not.toBeNull();
      expect(m.cloud.N).toBe(order.length);
      expect(m.cloud.data).toBeInstanceOf(Kind);
      for (let u = 0; u < order.length; u++)
        for (let k = 0; k < D; k++) expect(Object.is(m.cloud.data[u * D + k], data[order[u]! * D + k])).toBe(true);
      for (let i = 0; i < N; i++) expect(m.label[i]).toBe(first.get(key(i)));
      for (let u = 0; u < order.length; u++) expect(m.w[u]).toBeCloseTo(sums[u]!, 12);
      expect(m.inputW).toBe(w);
    });
  }

  it('returns null for distinct points, a batch or a single point', async () => {
    const r = rng(12);
    const data = Float64Array.from({ length: 300 }, () => r());
    const w = new Float64Array(100).fill(0.01);
    expect(await mergeCoincident(cloud(data, 100, 3), w)).toBeNull();
    expect(await mergeCoincident(cloud(data.subarray(0, 3), 1, 3), w.subarray(0, 1))).toBeNull();
    expect(await mergeCoincident({ ...cloud(data, 50, 3), B: 2, batched: true }, w)).toBeNull();
  });

  it('lets a 10 ms timer tick while it hashes 10^6 points, and stops on an abort', async () => {
    const r = rng(13);
    const N = 1_000_000;
    // Half the rows repeat a location: the merge runs to its end (copies and sums).
    const data = new Float32Array(3 * N);
    for (let i = 0; i < N; i++) {
      const src = i % 2 === 1 ? i - 1 : i;
      for (let k = 0; k < 3; k++) data[3 * i + k] = src === i ? r() : data[3 * src + k]!;
    }
    const w = new Float64Array(N).fill(1 / N);
    const { result } = await expectResponsive(() => mergeCoincident(cloud(data, N, 3), w));
    expect(result!.cloud.N).toBe(N / 2);
    const reason = new Error('stop');
    await expect(mergeCoincident(cloud(data, N, 3), w, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('SamplesLoss: an abort right after the call (during its input passes) rejects with the reason', async () => {
    const N = 200_000;
    const r = rng(14);
    const x = Float32Array.from({ length: 3 * N }, () => r());
    const y = Float32Array.from({ length: 3 * N }, () => r());
    const controller = new AbortController();
    const reason = new Error('stopped early');
    const run = new SamplesLoss({ blur: 0.05 }).value(
      { data: x, shape: [N, 3] },
      { data: y, shape: [N, 3] },
      undefined,
      {
        signal: controller.signal,
      },
    );
    controller.abort(reason);
    await expect(run).rejects.toBe(reason);
  });
});
