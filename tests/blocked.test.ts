// The register-blocked tiles of the WebAssembly kernel (assembly/blocked.ts) for DOT, SQDIST and
// WSQDIST at large D: against float64 references computed here, and against the unblocked
// interpreter (the kernel's blockedPolicy(0)) on the same inputs. In the standard binary the direct
// mode is bit for bit the unblocked arithmetic; the expanded |x|^2 + |y|^2 - 2 x.y mode is within its
// documented bound, and falls back to the direct mode when a large common offset would cancel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromMatrix, getWasmThreads, Pm, setWasmThreads, Vi, Vj } from '../src/index.js';
import { loadKernel } from '../src/wasm/wasm-loader.js';
import { relaxedSimdSupported } from '../src/wasm/kernel-source.js';
import { KERNEL_RELAXED_WASM_BASE64 } from '../src/wasm/wasm-binary.generated.js';
import { randomPoints, refSqDist } from './helpers/dense-reference.js';
import { rng } from './helpers/random.js';

type DT = 'float32' | 'float64';
interface BlockedExports {
  blockedPolicy(p: number): number;
  blockedFeatures(): number;
  blockedInfo(): number;
}

const OFF = 0;
const AUTO = 1;
const DIRECT = 2;
const EXPANDED = 3;

let kernel: BlockedExports;
let relaxed = false;
let threads = 1;
beforeAll(async () => {
  kernel = (await loadKernel()) as unknown as BlockedExports;
  relaxed = (kernel.blockedFeatures() & 1) !== 0;
  // the policy is a property of the main thread's kernel instance: keep every job there
  threads = await getWasmThreads();
  setWasmThreads(1);
});
afterAll(() => {
  kernel.blockedPolicy(AUTO);
  setWasmThreads(threads);
});

async function withPolicy<R>(policy: number, run: () => Promise<R>): Promise<R> {
  const old = kernel.blockedPolicy(policy);
  try {
    return await run();
  } finally {
    kernel.blockedPolicy(old);
  }
}

const unit = (dtype: DT): number => (dtype === 'float32' ? 2 ** -24 : 2 ** -53);

/** K-nearest (values and indices) of sqDist at the given policy. */
async function knnAt(
  policy: number,
  x: Float32Array | Float64Array,
  y: Float32Array | Float64Array,
  D: number,
  K: number,
) {
  return withPolicy(policy, async () => {
    const r = await Vi(x, D).sqDist(Vj(y, D)).kMinArgKMin(K, 1, { engine: 'wasm' });
    return { values: Array.from(r.values.data), indices: Array.from(r.indices.data) };
  });
}

/** Checks the K-NN result against the float64 reference: each value within the bound of
 *  assembly/blocked.ts for its pair (direct: gamma_{D+2} S; expanded, centred or not:
 *  (16 gamma_{D+2} + 9 u) S~), the pairs the K smallest up to that bound, ascending. */
function checkKnn(
  got: { values: number[]; indices: number[] },
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  N: number,
  M: number,
  D: number,
  K: number,
  dtype: DT,
): void {
  const ref = refSqDist(x, y, N, M, D);
  for (let i = 0; i < N; i++) {
    const sorted = Array.from(ref.subarray(i * M, (i + 1) * M)).sort((a, b) => a - b);
    for (let t = 0; t < Math.min(K, M); t++) {
      const j = got.indices[i * K + t]!;
      expect(j).toBeGreaterThanOrEqual(0);
      const v = got.values[i * K + t]!;
      const tol = expandedBound(D, dtype) * Math.max(v, ref[i * M + j]!) + 1e-300;
      expect(Math.abs(v - ref[i * M + j]!)).toBeLessThanOrEqual(tol);
      expect(ref[i * M + j]!).toBeLessThanOrEqual(sorted[t]! * (1 + 2 * expandedBound(D, dtype)) + 2e-300);
      if (t > 0) expect(v).toBeGreaterThanOrEqual(got.values[i * K + t - 1]!);
    }
  }
}
/** The relative error bound of an accepted expanded entry, (16 gamma_{D+2} + 9 u) S~ (1% margin). */
const expandedBound = (D: number, dtype: DT): number => (16 * (D + 2) + 9) * unit(dtype) * 1.01;

/** The centre of a centred run (assembly/blocked.ts CENTRING): the mean of the first 32 rows of y,
 *  summed in float64 and rounded to the precision. */
function centreOf(y: Float32Array | Float64Array, M: number, D: number): Float64Array {
  const n = Math.min(M, 32);
  const c = new Float64Array(D);
  for (let k = 0; k < D; k++) {
    let a = 0;
    for (let j = 0; j < n; j++) a += y[j * D + k]!;
    c[k] = y instanceof Float32Array ? Math.fround(a / n) : a / n;
  }
  return c;
}
/** |fl(row - c)|^2 of each row, in float64. */
function centredNorms(x: Float32Array | Float64Array, n: number, D: number, c: Float64Array): Float64Array {
  const out = new Float64Array(n);
  const round = x instanceof Float32Array ? Math.fround : (v: number) => v;
  for (let i = 0; i < n; i++) for (let k = 0; k < D; k++) out[i] = out[i]! + round(x[i * D + k]! - c[k]!) ** 2;
  return out;
}

/** The K nearest by a float64 brute force (ties to the lowest index), and whether each row's first K
 *  are clear of the rest by more than the bound (only those rows are compared index by index). */
function bruteKnn(ref: Float64Array, N: number, M: number, K: number, rel: number) {
  const indices: number[] = [];
  const clear: boolean[] = [];
  for (let i = 0; i < N; i++) {
    const order = Array.from({ length: M }, (_, j) => j).sort((a, b) => ref[i * M + a]! - ref[i * M + b]! || a - b);
    let ok = true;
    for (let t = 0; t + 1 < Math.min(K + 1, M); t++) {
      const a = ref[i * M + order[t]!]!,
        b = ref[i * M + order[t + 1]!]!;
      if (b - a <= 2 * rel * b) ok = false;
    }
    indices.push(...order.slice(0, K));
    clear.push(ok);
  }
  return { indices, clear };
}

const DIMS = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 50, 64, 100, 257, 784, 1024, 4096];
// sizes off the tiles (4 x 8 f32 / 4 x 4 f64, groups of 8 rows, blocks of 16..512)
const SIZES: [number, number][] = [
  [13, 37],
  [70, 20],
  [6, 130],
  [1, 3],
];

describe('blocked tiles: the two binaries', () => {
  it('the relaxed-SIMD kernel is loaded exactly where the runtime validates relaxed SIMD', () => {
    const major = Number(process.versions.node.split('.')[0]);
    // Node 20 rejects relaxed-SIMD opcodes; Node >= 22 accepts them
    expect(relaxedSimdSupported()).toBe(major >= 22);
    expect(relaxed).toBe(relaxedSimdSupported() && KERNEL_RELAXED_WASM_BASE64 !== '');
  });
});

describe('blocked tiles: sqDist K-NN', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it.each(DIMS)(`${dtype}, D = %i: same neighbours as unblocked, values within the bound`, async (D) => {
      const random = rng(1000 + D);
      for (const [N, M] of SIZES) {
        if (D >= 1024 && M > 40) continue; // keep the float64 reference quick
        const x = randomPoints(random, N, D, dtype);
        const y = randomPoints(random, M, D, dtype);
        const K = Math.min(5, M);
        const off = await knnAt(OFF, x, y, D, K);
        const auto = await knnAt(AUTO, x, y, D, K);
        // the blocked path ran (one blocked SQDIST) exactly from D = 8 on
        expect(kernel.blockedInfo() & 0xff).toBe(D >= 8 ? 1 : 0);
        const direct = await knnAt(DIRECT, x, y, D, K);
        const expanded = await knnAt(EXPANDED, x, y, D, K);
        expect(auto.indices).toEqual(off.indices);
        expect(expanded.indices).toEqual(off.indices);
        if (!relaxed) expect(direct.values).toEqual(off.values);
        expect(direct.indices).toEqual(off.indices);
        for (const r of [off, auto, direct, expanded]) checkKnn(r, x, y, N, M, D, K, dtype);
      }
    });
  }
});

describe('blocked tiles: the K-means shape (few inner rows: an odd last vector, 4 x 1 tiles)', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it.each([8, 9, 50, 784, 1031])(`${dtype}, D = %i, M = 10 and 7: minArgMin as unblocked`, async (D) => {
      const random = rng(300 + D);
      for (const [N, M] of [
        [70, 10],
        [13, 7],
      ] as const) {
        const x = randomPoints(random, N, D, dtype);
        const y = randomPoints(random, M, D, dtype);
        const run = (policy: number) =>
          withPolicy(policy, async () => {
            const r = await Vi(x, D).sqDist(Vj(y, D)).minArgMin(1, { engine: 'wasm' });
            return { values: Array.from(r.values.data), indices: Array.from(r.indices.data) };
          });
        const off = await run(OFF);
        const auto = await run(AUTO);
        const direct = await run(DIRECT);
        expect(auto.indices).toEqual(off.indices);
        expect(direct.indices).toEqual(off.indices);
        if (!relaxed) expect(direct.values).toEqual(off.values);
        for (const r of [off, auto, direct]) checkKnn(r, x, y, N, M, D, 1, dtype);
      }
    });
  }
});

describe('blocked tiles: sums, dot, matVecMult, weightedSqDist', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const rtol = dtype === 'float32' ? 2e-4 : 1e-11;
    it.each([8, 16, 50, 784, 4096])(`${dtype}, D = %i: Gaussian kernel sum, dot, weighted`, async (D) => {
      const random = rng(7 + D);
      const [N, M] = D >= 1024 ? [9, 21] : [13, 75];
      const x = randomPoints(random, N, D, dtype);
      const y = randomPoints(random, M, D, dtype);
      const b = randomPoints(random, M, 1, dtype);
      const w = randomPoints(random, D, 1, dtype, 1.5, 0.5); // weights in [1, 2]
      const gamma = 1 / D;
      const ref = refSqDist(x, y, N, M, D);
      const run = (policy: number) =>
        withPolicy(policy, async () => {
          const X = Vi(x, D);
          const Y = Vj(y, D);
          const B = Vj(b, 1);
          const gauss = await X.sqDist(Y).mul(-gamma).exp().mul(B).sum(1, { engine: 'wasm' });
          const dot = await X.dot(Y).mul(B).sum(1, { engine: 'wasm' });
          const wsq = await X.weightedSqDist(Y, Pm(w)).sum(1, { engine: 'wasm' });
          return { gauss: Array.from(gauss.data), dot: Array.from(dot.data), wsq: Array.from(wsq.data) };
        });
      const off = await run(OFF);
      const auto = await run(AUTO);
      if (!relaxed) {
        expect(auto.dot).toEqual(off.dot);
        expect(auto.wsq).toEqual(off.wsq);
      }
      for (let i = 0; i < N; i++) {
        let g = 0;
        let gs = 0;
        let d = 0;
        let ds = 0;
        let q = 0;
        for (let j = 0; j < M; j++) {
          const e = Math.exp(-gamma * ref[i * M + j]!);
          g += e * b[j]!;
          gs += e * Math.abs(b[j]!);
          let dd = 0;
          let qq = 0;
          let da = 0;
          for (let k = 0; k < D; k++) {
            dd += x[i * D + k]! * y[j * D + k]!;
            da += Math.abs(x[i * D + k]! * y[j * D + k]!);
            qq += w[k]! * (x[i * D + k]! - y[j * D + k]!) ** 2;
          }
          d += dd * b[j]!;
          ds += da * Math.abs(b[j]!);
          q += qq;
        }
        for (const r of [off, auto]) {
          // exp(-gamma S) with S within 2 gamma_{D+2}(|x|^2 + |y|^2) ~ 4 (D + 2) u D / 3 of exact
          expect(Math.abs(r.gauss[i]! - g)).toBeLessThanOrEqual(rtol * gs + 8 * (D + 2) * unit(dtype) * gs);
          expect(Math.abs(r.dot[i]! - d)).toBeLessThanOrEqual(rtol * ds + (D + M) * unit(dtype) * ds);
          expect(Math.abs(r.wsq[i]! - q)).toBeLessThanOrEqual(rtol * q);
        }
      }
    });
  }

  it('matVecMult: one blocked DOT per output row', async () => {
    const random = rng(99);
    const [N, M, m, n] = [11, 29, 3, 40];
    const A = randomPoints(random, N, m * n, 'float32');
    const v = randomPoints(random, M, n, 'float32');
    const run = (policy: number) =>
      withPolicy(policy, async () =>
        Array.from(
          (
            await Vi(A, m * n)
              .matVecMult(Vj(v, n))
              .sum(1, { engine: 'wasm' })
          ).data,
        ),
      );
    const off = await run(OFF);
    const auto = await run(AUTO);
    expect(kernel.blockedInfo() & 0xff).toBe(m);
    if (!relaxed) expect(auto).toEqual(off);
    for (let i = 0; i < N; i++) {
      for (let r = 0; r < m; r++) {
        let s = 0;
        let sa = 0;
        for (let j = 0; j < M; j++) {
          for (let k = 0; k < n; k++) {
            s += A[i * m * n + r * n + k]! * v[j * n + k]!;
            sa += Math.abs(A[i * m * n + r * n + k]! * v[j * n + k]!);
          }
        }
        expect(Math.abs(auto[i * m + r]! - s)).toBeLessThanOrEqual(1e-5 * sa);
      }
    }
  });
});

describe('blocked tiles: NaN, ties, large common offset', () => {
  it('NaN is never selected and overflow gives +inf, as in the unblocked path', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      for (const D of [9, 50, 300]) {
        const random = rng(5 + D);
        const [N, M] = [10, 41];
        const x = randomPoints(random, N, D, dtype);
        const y = randomPoints(random, M, D, dtype);
        // row 2 overflows: its squared distances are +inf in the direct form, inf - inf = NaN in the
        // expanded one (which must then fall back)
        x.fill(dtype === 'float32' ? 3e19 : 1e160, 2 * D, 3 * D);
        const K = 6;
        const t = (D * 2) / 3; // about the mean squared distance: sqrt(S - t) is NaN for the nearer half
        const run = (policy: number) =>
          withPolicy(policy, async () => {
            const S = Vi(x, D).sqDist(Vj(y, D));
            const a = await S.kMinArgKMin(K, 1, { engine: 'wasm' });
            const b = await S.sub(t).sqrt().kMinArgKMin(K, 1, { engine: 'wasm' });
            return {
              values: Array.from(a.values.data),
              indices: Array.from(a.indices.data),
              nanValues: Array.from(b.values.data),
              nanIndices: Array.from(b.indices.data),
            };
          });
        const off = await run(OFF);
        for (const policy of [AUTO, EXPANDED, DIRECT]) {
          const r = await run(policy);
          expect(r.indices).toEqual(off.indices);
          expect(r.nanIndices).toEqual(off.nanIndices);
          expect(r.values.slice(2 * K, 3 * K)).toEqual(Array(K).fill(Infinity));
          // ties at +inf go to the lowest indices
          expect(r.indices.slice(2 * K, 3 * K)).toEqual([0, 1, 2, 3, 4, 5]);
          const ref = refSqDist(x, y, N, M, D);
          for (let i = 0; i < N; i++) {
            for (let q = 0; q < K; q++) {
              const j = r.nanIndices[i * K + q]!;
              if (j < 0) {
                expect(Number.isNaN(r.nanValues[i * K + q]!)).toBe(true);
                continue;
              }
              // never a pair whose S - t is negative (NaN under the sqrt), up to rounding
              expect(ref[i * M + j]!).toBeGreaterThanOrEqual(t * (1 - 1e-4));
            }
          }
        }
      }
    }
  });

  it('ties go to the lowest index (exact duplicates)', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      for (const D of [8, 16, 100]) {
        const random = rng(3 + D);
        const [N, M] = [9, 33];
        const x = randomPoints(random, N, D, dtype);
        const y = randomPoints(random, M, D, dtype);
        // y rows 3, 20 and 31 are copies of x row 0; y rows 5 and 6 are equal
        for (const j of [3, 20, 31]) y.set(x.subarray(0, D), j * D);
        y.set(y.subarray(5 * D, 6 * D), 6 * D);
        for (const policy of [OFF, AUTO, DIRECT, EXPANDED]) {
          const r = await knnAt(policy, x, y, D, 4);
          expect(r.indices.slice(0, 3)).toEqual([3, 20, 31]);
          expect(r.values.slice(0, 3)).toEqual([0, 0, 0]);
          const rank5 = r.indices.indexOf(5);
          if (rank5 >= 0 && rank5 % 4 < 3) expect(r.indices[rank5 + 1]).toBe(6);
        }
        const a = await Vi(x, D).sqDist(Vj(y, D)).argMin(1, { engine: 'wasm' });
        expect(a.data[0]).toBe(3);
      }
    }
  });

  it('a large common offset (data at 1e4 + small noise): centred, the neighbours of a float64 brute force', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      for (const D of [8, 16, 17, 64, 257, 784, 4096]) {
        const random = rng(11 + D);
        const scale = dtype === 'float32' ? 1 : 1e-3;
        for (const [N, M] of [
          [13, 80],
          [6, 130],
          [70, 350],
        ] as const) {
          if (D >= 1024 && M > 100) continue; // keep the float64 reference quick
          const x = randomPoints(random, N, D, dtype, 1e4, scale);
          // y row j near x row j mod N, at squared distance D scale^2 0.02 (1 + 0.25 t), t = j / N (a
          // random direction): the nearest neighbours of x_i are i, i + N, i + 2N, ... in that order,
          // their distances 20% apart (clear of the rounding), the other rows far (~D scale^2 / 1.5)
          const y = dtype === 'float32' ? new Float32Array(M * D) : new Float64Array(M * D);
          for (let j = 0; j < M; j++) {
            const u = Array.from({ length: D }, () => 2 * random() - 1);
            const len = Math.hypot(...u);
            const r = scale * Math.sqrt(D * 0.02 * (1 + 0.25 * Math.floor(j / N)));
            for (let k = 0; k < D; k++) y[j * D + k] = x[(j % N) * D + k]! + (r * u[k]!) / len;
          }
          const K = 5;
          const off = await knnAt(OFF, x, y, D, K);
          const auto = await knnAt(AUTO, x, y, D, K);
          // centred from D = 16 (the expanded mode; below it the direct one)
          expect((kernel.blockedInfo() >> 16) & 1).toBe(D >= 16 ? 1 : 0);
          const expanded = await knnAt(EXPANDED, x, y, D, K);
          expect((kernel.blockedInfo() >> 16) & 1).toBe(1);
          // uncentred, the expanded form would be off by about (D + 2) u 2e8 D, far more than the
          // distances (about D scale^2 / 1.5): centred it is within its bound of them
          const ref = refSqDist(x, y, N, M, D);
          const want = bruteKnn(ref, N, M, K, expandedBound(D, dtype));
          expect(want.clear.every(Boolean)).toBe(true);
          for (let i = 0; i < N; i++) expect(want.indices[i * K + 1]).toBe(i + N);
          for (const r of [off, auto, expanded]) {
            checkKnn(r, x, y, N, M, D, K, dtype);
            expect(r.indices).toEqual(want.indices);
          }
        }
      }
    }
  });

  it('centred values do not depend on the grouping of the rows (a subset of x starting at another row)', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      for (const D of [16, 50, 784]) {
        const random = rng(21 + D);
        const [N, M] = [150, 45];
        const x = randomPoints(random, N, D, dtype, 3, 1);
        const y = randomPoints(random, M, D, dtype, 3, 1);
        const all = await knnAt(AUTO, x, y, D, M);
        expect((kernel.blockedInfo() >> 16) & 1).toBe(1);
        // rows 7.. start the groups at another row: the same values, bit for bit
        const part = await knnAt(AUTO, x.subarray(7 * D), y, D, M);
        expect(part.values).toEqual(all.values.slice(7 * M));
        expect(part.indices).toEqual(all.indices.slice(7 * M));
      }
    }
  });
});

describe('blocked tiles: packed rows and per-column fallback', () => {
  // Fashion-MNIST-like data: nonnegative, in clusters around a few centres, so that the near pairs
  // (about a fifth of them here) fail the expanded criterion while the rest of their tiles pass.
  function clustered(random: () => number, n: number, D: number, dtype: DT, centres: number[][]) {
    const a = dtype === 'float32' ? new Float32Array(n * D) : new Float64Array(n * D);
    for (let i = 0; i < n; i++) {
      const c = centres[Math.floor(random() * centres.length)]!;
      for (let k = 0; k < D; k++) a[i * D + k] = Math.max(0, c[k]! + 0.05 * (2 * random() - 1));
    }
    return a;
  }
  for (const dtype of ['float32', 'float64'] as const) {
    it.each([16, 50, 784])(`${dtype}, D = %i: entries failing the criterion are the direct ones`, async (D) => {
      const random = rng(77 + D);
      const centres = Array.from({ length: 4 }, () => Array.from({ length: D }, () => random()));
      // group and quad sizes off 4 and 64; at float64 D = 784 the packed rows do not fit (unpacked path)
      for (const [N, M] of [
        [5, 37],
        [63, 20],
        [65, 37],
        [130, 9],
      ] as const) {
        const x = clustered(random, N, D, dtype, centres);
        const y = clustered(random, M, D, dtype, centres);
        const all = (policy: number) =>
          withPolicy(policy, async () => {
            const r = await Vi(x, D).sqDist(Vj(y, D)).kMinArgKMin(M, 1, { engine: 'wasm' });
            // values by pair (i, j), whatever their order
            const v = new Float64Array(N * M);
            for (let q = 0; q < N * M; q++) v[Math.floor(q / M) * M + r.indices.data[q]!] = r.values.data[q]!;
            return v;
          });
        const off = await all(OFF);
        const auto = await all(AUTO);
        const ref = refSqDist(x, y, N, M, D);
        // the run is centred (N >= 4): the criterion is on the norms around the centre
        expect((kernel.blockedInfo() >> 16) & 1).toBe(1);
        const c = centreOf(y, M, D);
        const nx = centredNorms(x, N, D, c);
        const ny = centredNorms(y, M, D, c);
        const g = (D + 2) * unit(dtype) * 1.01;
        let failing = 0;
        for (let i = 0; i < N; i++) {
          for (let j = 0; j < M; j++) {
            const q = i * M + j;
            const nn = nx[i]! + ny[j]!;
            expect(Math.abs(auto[q]! - ref[q]!)).toBeLessThanOrEqual(expandedBound(D, dtype) * ref[q]! * 1.01 + 1e-300);
            // clearly failing: computed in direct mode, as unblocked
            if (ref[q]! < (nn / 8) * 0.99) {
              failing++;
              if (!relaxed) expect(auto[q]).toBe(off[q]);
              else expect(Math.abs(auto[q]! - ref[q]!)).toBeLessThanOrEqual(4 * g * ref[q]! + 1e-300);
            }
          }
        }
        expect(failing).toBeGreaterThan(0);
        expect(failing).toBeLessThan(N * M);
        // the nearest neighbours are the unblocked ones
        const K = Math.min(5, M);
        expect((await knnAt(AUTO, x, y, D, K)).indices).toEqual((await knnAt(OFF, x, y, D, K)).indices);
      }
    });
  }
});

describe('blocked tiles: K-nearest rows folded from the tile (only the rows with an entry below their K-th value)', () => {
  // The same tile through the general path: `+ p` with p = 0 adds an instruction after the SQDIST
  // (so the rows are copied into F and every entry is scanned), and S + 0 = S bit for bit.
  async function both(
    x: Float32Array | Float64Array,
    y: Float32Array | Float64Array,
    D: number,
    K: number,
    ranges?: ReturnType<typeof fromMatrix>,
  ) {
    const S = Vi(x, D).sqDist(Vj(y, D));
    const run = async (F: typeof S) => {
      const r = await F.kMinArgKMin(K, 1, { engine: 'wasm', ...(ranges ? { ranges } : {}) });
      return { values: Array.from(r.values.data), indices: Array.from(r.indices.data), info: kernel.blockedInfo() };
    };
    const fromTile = await run(S);
    const general = await run(S.add(Pm(0)));
    expect((fromTile.info >> 16) & 3).toBe(3); // centred, folded from the tile
    expect((general.info >> 16) & 3).toBe(1); // centred, the general fold
    expect(fromTile.indices).toEqual(general.indices);
    expect(fromTile.values).toEqual(general.values);
    return fromTile;
  }

  for (const dtype of ['float32', 'float64'] as const) {
    it.each([16, 50, 200])(
      `${dtype}, D = %i: several blocks and groups, K below and above a block, ties across blocks`,
      async (D) => {
        const random = rng(500 + D);
        // more rows than one group (at most 248) and inner rows over several blocks (16 to 128), off both
        const [N, M] = [263, 1037];
        const x = randomPoints(random, N, D, dtype);
        const y = randomPoints(random, M, D, dtype);
        // exact ties in three blocks: y rows 2, 600 and 1036 are copies of x row 0
        for (const j of [2, 600, 1036]) y.set(x.subarray(0, D), j * D);
        for (const K of [1, 10, 150]) {
          const r = await both(x, y, D, K);
          checkKnn(r, x, y, N, M, D, K, dtype);
          expect(r.indices.slice(0, Math.min(K, 3))).toEqual([2, 600, 1036].slice(0, K));
        }
      },
    );
  }

  it('a row of +inf distances (overflow) and block-sparse ranges', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const D = 50;
      const random = rng(9);
      const [N, M] = [130, 700];
      const x = randomPoints(random, N, D, dtype);
      const y = randomPoints(random, M, D, dtype);
      x.fill(dtype === 'float32' ? 3e19 : 1e160, 2 * D, 3 * D); // row 2: +inf everywhere
      const K = 12;
      const r = await both(x, y, D, K);
      expect(r.values.slice(2 * K, 3 * K)).toEqual(Array(K).fill(Infinity));
      expect(r.indices.slice(2 * K, 3 * K)).toEqual(Array.from({ length: K }, (_, t) => t));
      // clusters of 40 rows of x and of 90 rows of y, about half of the pairs of clusters kept: the
      // ranges start and end inside blocks and vectors
      const cuts = (n: number, w: number) =>
        Int32Array.from({ length: 2 * Math.ceil(n / w) }, (_, q) => Math.min(n, (Math.floor(q / 2) + (q % 2)) * w));
      const rx = cuts(N, 40);
      const ry = cuts(M, 90);
      const Ci = rx.length / 2;
      const Cj = ry.length / 2;
      const keep = Array.from({ length: Ci * Cj }, (_, q) => q % Cj === q % 3 || random() < 0.5);
      const s = await both(x, y, D, K, fromMatrix(rx, ry, keep));
      const ref = refSqDist(x, y, N, M, D);
      for (let i = 0; i < N; i++) {
        if (i === 2) continue;
        const c = Math.floor(i / 40);
        const kept: number[] = [];
        for (let j = 0; j < M; j++) if (keep[c * Cj + Math.floor(j / 90)]) kept.push(ref[i * M + j]!);
        kept.sort((a, b) => a - b);
        for (let t = 0; t < Math.min(K, kept.length); t++) {
          const j = s.indices[i * K + t]!;
          expect(keep[c * Cj + Math.floor(j / 90)]).toBe(true);
          expect(Math.abs(s.values[i * K + t]! - ref[i * M + j]!)).toBeLessThanOrEqual(
            expandedBound(D, dtype) * ref[i * M + j]!,
          );
          expect(ref[i * M + j]!).toBeLessThanOrEqual(kept[t]! * (1 + 2 * expandedBound(D, dtype)));
        }
      }
    }
  });
});
