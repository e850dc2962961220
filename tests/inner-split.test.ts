// The main thread's chunks over pieces of the inner range (src/wasm/inner-split.ts, wasm-engine.ts
// runHere): groups of rows computed over several chunks, their partial states merged. Selections
// (min/max, arg-min/max, K-min) are bit for bit those of one unchunked run; sums and log-sum-exp
// within rounding of it; all against float64 dense references computed here; abort between pieces;
// W = 2 workers (whole rows per kernel run) agree with the chunked main thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDefaultEngine, Vi, Vj } from '../src/index.js';
import { wasmEngineTesting } from '../src/wasm/wasm-engine.js';
import { setWasmThreads, wasmThreadsTesting } from '../src/wasm/workers.js';
import { randomPoints, refSqDist } from './helpers/dense-reference.js';
import { rng } from './helpers/random.js';

type DT = 'float32' | 'float64';
type Out = Float32Array | Float64Array | Int32Array;
const bytes = (a: Out) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Per row, the K smallest non-NaN entries (value, index), ascending, ties to the lower index;
 *  missing slots (NaN, -1). */
function kMinRef(d2: Float64Array, N: number, M: number, K: number): { values: Float64Array; indices: Int32Array } {
  const values = new Float64Array(N * K).fill(NaN);
  const indices = new Int32Array(N * K).fill(-1);
  for (let i = 0; i < N; i++) {
    const js: number[] = [];
    for (let j = 0; j < M; j++) if (!Number.isNaN(d2[i * M + j]!)) js.push(j);
    js.sort((a, b) => d2[i * M + a]! - d2[i * M + b]! || a - b);
    for (let t = 0; t < Math.min(K, js.length); t++) {
      values[i * K + t] = d2[i * M + js[t]!]!;
      indices[i * K + t] = js[t]!;
    }
  }
  return { values, indices };
}

interface Case {
  dtype: DT;
  N: number;
  M: number;
  D: number;
  /** y rows made NaN (every coordinate): whole pieces of the inner range then select nothing. */
  nanRows?: [number, number];
}

async function run(c: Case, progress?: number[]) {
  const random = rng(c.D * 101 + c.M + (c.dtype === 'float32' ? 0 : 7));
  const x = randomPoints(random, c.N, c.D, c.dtype);
  const y = randomPoints(random, c.M, c.D, c.dtype);
  const X = Vi(x, c.D);
  const Y = Vj(y, c.D);
  let d2 = X.sqDist(Y);
  if (c.nanRows) {
    // + log(h_j): + 0 (exactly) where h_j = 1, NaN where h_j = -1 (inputs must be finite)
    const h = c.dtype === 'float32' ? new Float32Array(c.M).fill(1) : new Float64Array(c.M).fill(1);
    h.fill(-1, c.nanRows[0], c.nanRows[1]);
    d2 = d2.add(Vj(h, 1).log());
  }
  const onProgress = progress ? (p: { done: number }) => progress.push(p.done) : undefined;
  const K = 7;
  const mn = await d2.minArgMin(1, { onProgress });
  const mx = await d2.maxArgMax(1);
  const outs = {
    min: (await d2.min(1)).data as Out,
    argMin: (await d2.argMin(1)).data as Out,
    minV: mn.values.data as Out,
    minI: mn.indices.data as Out,
    maxV: mx.values.data as Out,
    maxI: mx.indices.data as Out,
    argMax: (await d2.argMax(1)).data as Out,
    kMin: (await d2.kMin(K, 1)).data as Out,
    argKMin: (await d2.argKMin(K, 1)).data as Out,
    kBoth: (await d2.kMinArgKMin(K, 1)).indices.data as Out,
    gauss: (await d2.mul(-2).exp().sum(1)).data as Out,
    lse: (await d2.mul(-3).logSumExp(1)).data as Out,
    acc64: (await d2.mul(-2).exp().sum(1, { accumulate: 'float64' })).data as Out,
  };
  return { x, y, outs, K };
}

const exact = ['min', 'argMin', 'minV', 'minI', 'maxV', 'maxI', 'argMax', 'kMin', 'argKMin', 'kBoth'] as const;

function chunked(): void {
  // groups of 8 rows; a budget of a few pairs: every piece one block of the inner range; the inner
  // variables tiled a few blocks at a time
  wasmEngineTesting.configure({ rowGroup: 8, fixedChunkPairs: 1, tileSliceValues: 2000, mainThreadMaxPairs: Infinity });
}
function unchunked(): void {
  // no row groups; a huge budget: every row in one kernel run
  wasmEngineTesting.configure({ rowGroup: 0, fixedChunkPairs: 2 ** 40, mainThreadMaxPairs: Infinity });
}

const cases: Case[] = [
  { dtype: 'float32', N: 37, M: 2100, D: 3 },
  { dtype: 'float64', N: 37, M: 2100, D: 3, nanRows: [0, 1100] },
  // D = 12: the blocked tiles' direct mode (bit for bit the interpreter's arithmetic)
  { dtype: 'float32', N: 70, M: 1500, D: 12, nanRows: [300, 900] },
  { dtype: 'float64', N: 21, M: 1200, D: 12 },
  // D = 40: the expanded |x|^2 + |y|^2 - 2 x.y mode
  { dtype: 'float32', N: 30, M: 900, D: 40 },
];

describe('main-thread chunks over pieces of the inner range', () => {
  beforeAll(() => {
    setDefaultEngine('wasm');
    setWasmThreads(1);
  });
  afterAll(async () => {
    wasmEngineTesting.reset();
    setWasmThreads(undefined);
    await wasmThreadsTesting.close();
    setDefaultEngine('auto');
  });

  it.each(cases)('equals one unchunked run and the float64 reference ($dtype, D = $D, M = $M)', async (c) => {
    const progress: number[] = [];
    let pieces: Awaited<ReturnType<typeof run>>;
    let whole: Awaited<ReturnType<typeof run>>;
    try {
      chunked();
      pieces = await run(c, progress);
      unchunked();
      whole = await run(c);
    } finally {
      wasmEngineTesting.reset();
    }
    // Rows were done in groups of 8 (the chunked path ran), not one by one.
    expect(progress.slice(0, -1)).toEqual(Array.from({ length: Math.ceil(c.N / 8) - 1 }, (_, g) => 8 * (g + 1)));
    expect(progress.at(-1)).toBe(c.N);
    for (const name of exact) {
      if (!bytes(pieces.outs[name]).equals(bytes(whole.outs[name]))) {
        expect(Array.from(pieces.outs[name]), name).toEqual(Array.from(whole.outs[name]));
      }
    }
    // accumulate: 'float64' in float32 is not cut (one run per row group: the same sums)
    if (c.dtype === 'float32') expect(bytes(pieces.outs.acc64).equals(bytes(whole.outs.acc64))).toBe(true);

    const { N, M, D } = c;
    const d2 = refSqDist(pieces.x, pieces.y, N, M, D);
    if (c.nanRows) for (let i = 0; i < N; i++) d2.fill(NaN, i * M + c.nanRows[0], i * M + c.nanRows[1]);
    const u = c.dtype === 'float32' ? 2 ** -24 : 2 ** -53;
    // The kernel's own error: the expanded mode's bound at D = 40, else the direct sums'.
    const distTol = (v: number) => (D >= 16 ? 16 * (D + 2) * u * 4 * D : 4 * D * u * Math.max(v, 1e-30));
    const K = pieces.K;
    const ref = kMinRef(d2, N, M, K);
    const kv = pieces.outs.kMin;
    const ki = pieces.outs.argKMin;
    for (let q = 0; q < N * K; q++) {
      if (ref.indices[q]! < 0) {
        expect(ki[q]).toBe(-1);
        expect(kv[q]).toBeNaN();
        continue;
      }
      expect(Math.abs(kv[q]! - ref.values[q]!)).toBeLessThanOrEqual(distTol(ref.values[q]!));
      // the selected index holds a value within rounding of the reference's
      expect(Math.abs(d2[Math.floor(q / K) * M + ki[q]!]! - ref.values[q]!)).toBeLessThanOrEqual(
        2 * distTol(ref.values[q]!),
      );
    }
    for (let i = 0; i < N; i++) {
      let lo = NaN;
      let hi = NaN;
      let gauss = 0;
      let m = -Infinity;
      for (let j = 0; j < M; j++) {
        const v = d2[i * M + j]!;
        if (Number.isNaN(v)) continue;
        if (!(v >= lo)) lo = v;
        if (!(v <= hi)) hi = v;
        gauss += Math.exp(-2 * v);
        m = Math.max(m, -3 * v);
      }
      let s = 0;
      for (let j = 0; j < M; j++) s += Math.exp(-3 * d2[i * M + j]! - m);
      const anyNaN = c.nanRows !== undefined;
      expect(Math.abs(pieces.outs.min[i]! - lo)).toBeLessThanOrEqual(distTol(lo));
      expect(Math.abs(pieces.outs.maxV[i]! - hi)).toBeLessThanOrEqual(distTol(hi));
      expect(Math.abs(d2[i * M + pieces.outs.argMin[i]!]! - lo)).toBeLessThanOrEqual(2 * distTol(lo));
      expect(Math.abs(d2[i * M + pieces.outs.argMax[i]!]! - hi)).toBeLessThanOrEqual(2 * distTol(hi));
      // Sums: NaN terms make NaN; else within a few roundings per piece (relative: all terms > 0).
      const sumTol = (D >= 16 ? 1e-3 : 64 * u) * gauss + (c.dtype === 'float32' ? 1e-6 : 1e-14) * gauss;
      if (anyNaN) expect(pieces.outs.gauss[i]).toBeNaN();
      else expect(Math.abs(pieces.outs.gauss[i]! - gauss)).toBeLessThanOrEqual(sumTol);
      if (anyNaN) expect(pieces.outs.lse[i]).toBeNaN();
      else {
        const lse = m + Math.log(s);
        expect(Math.abs(pieces.outs.lse[i]! - lse)).toBeLessThanOrEqual(
          (D >= 16 ? 3e-3 : 64 * u) * Math.max(1, Math.abs(lse)),
        );
        // and within rounding of the unchunked run
        expect(Math.abs(pieces.outs.lse[i]! - whole.outs.lse[i]!)).toBeLessThanOrEqual(
          8 * u * Math.max(1, Math.abs(lse)),
        );
      }
      if (!anyNaN) {
        expect(Math.abs(pieces.outs.gauss[i]! - whole.outs.gauss[i]!)).toBeLessThanOrEqual(
          (c.dtype === 'float32' ? 2e-6 : 1e-14) * gauss,
        );
      }
    }
  });

  it('K larger than the non-NaN entries of a row: the missing slots are -1 and NaN, as unchunked', async () => {
    const c: Case = { dtype: 'float32', N: 16, M: 1100, D: 3, nanRows: [3, 1100] };
    let pieces: Awaited<ReturnType<typeof run>>;
    let whole: Awaited<ReturnType<typeof run>>;
    try {
      chunked();
      pieces = await run(c);
      unchunked();
      whole = await run(c);
    } finally {
      wasmEngineTesting.reset();
    }
    const K = pieces.K;
    for (let i = 0; i < c.N; i++) {
      expect(Array.from(pieces.outs.argKMin.subarray(i * K + 3, i * K + K))).toEqual([-1, -1, -1, -1]);
      expect(Array.from(pieces.outs.argKMin.subarray(i * K, i * K + 3)).sort()).toEqual([0, 1, 2]);
    }
    for (const name of exact) expect(bytes(pieces.outs[name]).equals(bytes(whole.outs[name])), name).toBe(true);
  });

  it('an abort between pieces rejects, and the next reduction is right', async () => {
    const random = rng(3);
    const N = 64;
    const M = 3000;
    const D = 12;
    const x = randomPoints(random, N, D, 'float32');
    const y = randomPoints(random, M, D, 'float32');
    const d2 = Vi(x, D).sqDist(Vj(y, D));
    try {
      unchunked();
      const want = (await d2.argKMin(5, 1)).data;
      chunked();
      const controller = new AbortController();
      let calls = 0;
      const aborted = d2.argKMin(5, 1, {
        signal: controller.signal,
        onProgress: () => {
          if (++calls === 2) controller.abort();
        },
      });
      await expect(aborted).rejects.toThrow(/abort/i);
      expect(calls).toBe(2);
      // the kernel's program header and registers were restored: the same job runs right again
      const again = (await d2.argKMin(5, 1)).data;
      expect(Array.from(again)).toEqual(Array.from(want));
    } finally {
      wasmEngineTesting.reset();
    }
  });

  it('W = 2 workers give the chunked main thread results bit for bit (selections)', async () => {
    const c: Case = { dtype: 'float32', N: 300, M: 1400, D: 12 };
    let one: Awaited<ReturnType<typeof run>>;
    let two: Awaited<ReturnType<typeof run>>;
    try {
      chunked();
      one = await run(c);
      wasmEngineTesting.configure({ mainThreadMaxPairs: 0, splitMinPairs: 0 });
      setWasmThreads(2);
      two = await run(c);
      expect((await wasmThreadsTesting.pool())?.jobsRun ?? 0).toBeGreaterThan(0);
    } finally {
      setWasmThreads(1);
      wasmEngineTesting.reset();
    }
    for (const name of exact) expect(bytes(one.outs[name]).equals(bytes(two.outs[name])), name).toBe(true);
  });
});
