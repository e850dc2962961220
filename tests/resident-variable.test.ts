// residentVariable (core/resident-variable.ts): a Vi / Vj whose data the Wasm engine's workers keep
// across reductions until it is released. Results equal the plain variable's bit for bit and a float64
// dense reference; the data goes to the workers once for many calls, is dropped at the release; the
// caller's later writes to their array are not seen; threads 1 and 2; an abort mid-run.
import { afterAll, describe, expect, it } from 'vitest';
import { getWasmThreads, InputError, residentVariable, setDefaultEngine, Vi, Vj } from '../src/index.js';
import { residentCount } from '../src/core/resident.js';
import { wasmEngineTesting } from '../src/wasm/wasm-engine.js';
import { setWasmThreads, wasmThreadsTesting } from '../src/wasm/workers.js';
import { rng } from './helpers/random.js';

function points(seed: number, n: number, d: number): Float32Array {
  const random = rng(seed);
  return Float32Array.from({ length: n * d }, () => 2 * random() - 1);
}

/** The K nearest rows of y for each row of x: float64 squared distances, ties to the lower index. */
function knnRef(x: Float32Array, y: Float32Array, N: number, M: number, D: number, K: number): Int32Array {
  const out = new Int32Array(N * K);
  const d2 = new Float64Array(M);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < M; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) s += (x[i * D + k]! - y[j * D + k]!) ** 2;
      d2[j] = s;
    }
    const js = Array.from({ length: M }, (_, j) => j).sort((a, b) => d2[a]! - d2[b]! || a - b);
    out.set(js.slice(0, K), i * K);
  }
  return out;
}

const bytes = (a: Int32Array | Float32Array | Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('residentVariable', () => {
  const threads = getWasmThreads();
  afterAll(async () => {
    wasmEngineTesting.reset();
    setWasmThreads(await threads);
    setDefaultEngine('auto');
  });

  it.each([1, 2])(
    'argKMin against resident j-data, %i thread(s): the plain Vj bit for bit, the float64 K-NN, posted once',
    async (w) => {
      setDefaultEngine('wasm');
      setWasmThreads(w);
      wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
      try {
        const [N, M, D, K] = [60, 900, 20, 5];
        const y = points(1, M, D);
        const train = residentVariable('j', y, D);
        const pool = await wasmThreadsTesting.pool();
        const posts = pool?.residentPosts ?? 0;
        try {
          for (let call = 0; call < 3; call++) {
            const x = points(10 + call, N, D);
            const got = (await Vi(x, D).sqDist(train.tensor).argKMin(K, 1)).data;
            const plain = (await Vi(x, D).sqDist(Vj(y, D)).argKMin(K, 1)).data;
            expect(bytes(got).equals(bytes(plain))).toBe(true);
            // the expanded distances at D = 20 may swap near ties: the neighbours' distances match
            const ref = knnRef(x, y, N, M, D, K);
            let same = 0;
            for (let q = 0; q < N * K; q++) same += got[q] === ref[q] ? 1 : 0;
            expect(same).toBeGreaterThanOrEqual(N * K - 2);
          }
          if (w === 2) {
            const after = await wasmThreadsTesting.pool();
            // posted once for the three calls (the plain Vj's copy of the same values is not held)
            expect(after!.residentPosts - (pool === after ? posts : 0)).toBe(1);
            expect(after!.residentBytes).toBe(y.byteLength);
          }
        } finally {
          train.release();
          train.release(); // idempotent
        }
        expect(residentCount()).toBe(0);
        if (w === 2) expect((await wasmThreadsTesting.pool())!.residentBytes).toBe(0);
        // still usable after the release (its data then posted with each call)
        const x = points(20, N, D);
        const again = (await Vi(x, D).sqDist(train.tensor).argKMin(K, 1)).data;
        expect(bytes(again).equals(bytes((await Vi(x, D).sqDist(Vj(y, D)).argKMin(K, 1)).data))).toBe(true);
      } finally {
        wasmEngineTesting.reset();
      }
    },
  );

  it('resident i-data (rows split across 2 workers), and a copy: later writes to the array are not seen', async () => {
    setDefaultEngine('wasm');
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0 });
    const [N, M, D] = [500, 40, 6];
    const x = points(2, N, D);
    const keep = x.slice();
    const rows = residentVariable('i', x, D);
    try {
      x.fill(0); // the caller's array, not the resident copy
      for (let call = 0; call < 2; call++) {
        const c = points(30 + call, M, D);
        const got = await rows.tensor.sqDist(Vj(c, D)).minArgMin(1);
        const plain = await Vi(keep, D).sqDist(Vj(c, D)).minArgMin(1);
        expect(bytes(got.indices.data).equals(bytes(plain.indices.data))).toBe(true);
        expect(bytes(got.values.data).equals(bytes(plain.values.data))).toBe(true);
        expect(Array.from(got.indices.data)).toEqual(Array.from(knnRef(keep, c, N, M, D, 1)));
      }
    } finally {
      rows.release();
      wasmEngineTesting.reset();
    }
  });

  it('an abort mid-run rejects; the next call is right', async () => {
    setDefaultEngine('wasm');
    setWasmThreads(2);
    wasmEngineTesting.configure({ splitMinPairs: 0, mainThreadMaxPairs: 0, controlPartPairs: 2000 });
    const [N, M, D] = [400, 300, 8];
    const y = points(3, M, D);
    const train = residentVariable('j', y, D);
    try {
      const x = points(4, N, D);
      const controller = new AbortController();
      let calls = 0;
      const run = Vi(x, D)
        .sqDist(train.tensor)
        .argKMin(3, 1, {
          signal: controller.signal,
          onProgress: () => {
            if (++calls === 1) controller.abort();
          },
        });
      await expect(run).rejects.toThrow(/abort/i);
      const got = (await Vi(x, D).sqDist(train.tensor).argKMin(3, 1)).data;
      expect(Array.from(got)).toEqual(Array.from(knnRef(x, y, N, M, D, 3)));
    } finally {
      train.release();
      wasmEngineTesting.reset();
    }
  });

  it('names its errors', () => {
    expect(() => residentVariable('k' as 'i', new Float32Array(4), 2)).toThrow(InputError);
    expect(() => residentVariable('k' as 'i', new Float32Array(4), 2)).toThrow(/category/);
    expect(() => residentVariable('j', new Float32Array([1, NaN]), 1)).toThrow(/residentVariable\('j'\).*NaN/);
  });
});
