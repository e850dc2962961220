// K-means by Lloyd's algorithm: the assignment step is one minArgMin reduction over the centroids
// (the N x K distance matrix is never stored), the update a float64 pass over the points and labels
// (per-cluster sums and counts, core/row-passes.ts).
//
// The points are read by every iteration, so kMeans works on its own copy of them, held resident
// (core/resident.ts) for the run: an engine may keep it next to its kernels (the Wasm engine's
// workers) and receive only the centroids per assignment, and being ours it needs no re-validation
// per reduction and cannot change under us if the caller writes to their array meanwhile.
//
// The passes other than the assignment (centroid sums, inertia, the coordinate moments of `tol`) run
// where the assignment ran when that engine offers it (the Wasm workers, each over a share of their
// resident copy: residentPassRunner), else here in slices of ~1-3 ms between which the event loop
// gets its turn (checkpoint): at Fashion-MNIST size (60000 x 784) a pass is ~50-100 ms of work.
import { checkpoint, type AbortSignalLike } from './scheduling.js';
import { InputError } from './errors.js';
import { Variable, type DType } from './formula.js';
import { checkDType, checkOptionKeys, makeVariable, type ArrayInput } from './input.js';
import { LazyTensor, Vj } from './lazy-tensor.js';
import { holdResident, residentCopy, residentPassRunner, sharedMemoryAvailable } from './resident.js';
import { rowPassLength, runRowPass, varianceFromMoments, type RowPassInput } from './row-passes.js';
import type { EngineChoice } from './reduction.js';
import { Tensor, type EngineName } from './tensor.js';

/** Options of {@link kMeans}. */
export interface KMeansOptions {
  /** 'kmeans++' (default: D^2 sampling, seeded), 'random' (K distinct rows, seeded), or the initial
   *  centroids [K, D] (Float32Array/Float64Array/number[] flat, or number[][]). */
  init?: 'kmeans++' | 'random' | ArrayInput;
  /** The most Lloyd iterations (default 100). */
  iterations?: number;
  /** Stops when the squared centroid shift, summed over the centroids, is at most tol times the mean
   *  variance of the coordinates of x (scikit-learn's rule; default 1e-4; 0: only when no label
   *  changes). */
  tol?: number;
  /** Seed of the initialisation's random choices (default 0): the same seed, the same result. */
  seed?: number;
  /** Components per row of flat x data (default 1; number[][] rows set it). */
  dim?: number;
  /** Precision of the assignment reductions; by default a Float32Array gives float32, otherwise float64. */
  dtype?: DType;
  /** The engine of the reductions (default: the global default). */
  engine?: EngineChoice;
  /** Cancels the run: passed to every reduction and checked every iteration. */
  signal?: AbortSignalLike;
}

/** The result of {@link kMeans}. */
export interface KMeansResult {
  /** The cluster of each row of x (the nearest centroid, ties to the lowest index), shape [N]. */
  labels: Tensor<Int32Array>;
  /** The centroids, shape [K, D], in the input precision. */
  centroids: Tensor<Float32Array | Float64Array>;
  /** The number of Lloyd updates run. */
  iterations: number;
  /** The sum of squared distances from each row to its centroid (float64). */
  inertia: number;
}

const KMEANS_KEYS = new Set(['init', 'iterations', 'tol', 'seed', 'dim', 'dtype', 'engine', 'signal']);

/** Passes over fewer values (N x D) than this run on the calling thread: a round trip to the workers
 *  (~0.1-0.3 ms) costs more than the pass (~1 ns per value). */
const WORKER_PASS_MIN_VALUES = 2 ** 18;
/** Values per slice of a pass on the calling thread (~1-3 ms): checkpoint between slices. */
const SLICE_VALUES = 2 ** 20;
const passThresholds = { workerMinValues: WORKER_PASS_MIN_VALUES, sliceValues: SLICE_VALUES };

/** @internal Hooks for the tests: where kMeans's passes run. */
export const kMeansTesting = {
  configure(next: Partial<typeof passThresholds>): void {
    Object.assign(passThresholds, next);
  },
  reset(): void {
    passThresholds.workerMinValues = WORKER_PASS_MIN_VALUES;
    passThresholds.sliceValues = SLICE_VALUES;
  },
};

/** A small seeded generator (xorshift32) in [0, 1). */
function generator(seed: number): () => number {
  let s = (seed >>> 0) ^ 0x9e3779b9 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function sqDist64(x: Float32Array | Float64Array, i: number, c: Float64Array, k: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) {
    const t = x[i * D + d]! - c[k * D + d]!;
    s += t * t;
  }
  return s;
}

/**
 * K-means clustering of the rows of x by Lloyd's algorithm: assign every row to its nearest centroid
 * (one `minArgMin` reduction of `x.sqDist(c)`, ties to the lowest index), move every centroid to the
 * mean of its rows (float64), until `tol` or `iterations`. A cluster left empty is re-seeded at the row
 * farthest from its centroid (the next farthest for a second empty cluster), as scikit-learn does.
 * The labels returned are those of the returned centroids (one last assignment after the last move).
 *
 * Memory: kMeans works on a private copy of x (N x D values in the input's precision), so the array
 * may be changed by the caller while a run is in progress. Where the runtime has shared memory (Node,
 * Deno, Bun, cross-origin isolated pages) the copy is a SharedArrayBuffer that the WebAssembly
 * engine's workers all read; elsewhere each worker keeps a copy of its own (up to 512 MiB per worker,
 * beyond which the points are sent with every assignment instead). An iteration then sends the
 * workers only the centroids and the labels, and they compute the assignment and the centroid sums
 * on their share of the rows. All of it is freed when the run ends, normally or not.
 *
 * Responsiveness: the passes that run on the calling thread (one thread, or small N x D) run in
 * slices of a few ms with a turn of the event loop when due; `signal` is checked between them.
 *
 * @param x the rows [N, D]: Float32Array, Float64Array, flat number[] (with `dim`) or number[][].
 * @param K the number of clusters, an integer in [1, N].
 * @throws RangeError when K is not in [1, N], on bad data (as `Vi`), on bad iterations, tol, seed or
 *   init centroids (wrong shape, NaN).
 * @throws TypeError on an unknown option or init.
 * @example
 * ```ts
 * const { labels, centroids, inertia } = await kMeans(points, 10, { dim: 2, seed: 1 });
 * ```
 */
export async function kMeans(x: ArrayInput, K: number, options: KMeansOptions = {}): Promise<KMeansResult> {
  checkOptionKeys('kMeans', options, KMEANS_KEYS);
  const v = makeVariable('kMeans: x', 'i', x, options.dim, undefined);
  if (v.batch.length > 0)
    throw new InputError('kMeans: batched [B, N, D] data is not supported; call once per batch item');
  const { data, rows: N, dim: D } = v;
  if (!Number.isInteger(K) || K < 1 || K > N)
    throw new InputError(`kMeans: K must be an integer in [1, ${N}] (the number of rows of x), got ${K}`);
  const maxIter = options.iterations ?? 100;
  if (!Number.isInteger(maxIter) || maxIter < 0)
    throw new InputError(`kMeans: iterations must be a non-negative integer, got ${maxIter}`);
  const tol = options.tol ?? 1e-4;
  if (!(tol >= 0) || !Number.isFinite(tol))
    throw new InputError(`kMeans: tol must be a finite number >= 0, got ${tol}`);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new InputError(`kMeans: seed must be an integer, got ${seed}`);
  const dtype: DType = checkDType('kMeans', options.dtype) ?? v.dtype ?? 'float64';
  const random = generator(seed);
  // Our copy of the points (a user's typed array is theirs to change; other input was copied already),
  // in shared memory where there is some, so that the Wasm engine's workers all read this one copy.
  const points = v.byReference || sharedMemoryAvailable() ? residentCopy(data) : data;
  const c = await initialCentroids(options.init ?? 'kmeans++', points, N, D, K, random, options.signal);
  const reduceOptions = {
    dtype,
    ...(options.engine === undefined ? {} : { engine: options.engine }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  const X = new LazyTensor(new Variable('i', D, N, points, v.dtype, v.name, false, [], false), N, null);
  const release = holdResident(points);
  const signal = options.signal;
  try {
    let engine: EngineName = 'wasm';
    const assign = async () => {
      const r = await X.sqDist(Vj(c, D)).minArgMin(1, reduceOptions);
      engine = r.indices.engine;
      return { labels: r.indices.data, dist: r.values.data };
    };
    /** A pass over all rows: on the assignment's workers when they offer it, else here in slices. */
    const pass = async (input: Omit<RowPassInput, 'dim' | 'from' | 'to'>): Promise<Float64Array> => {
      const whole: RowPassInput = { ...input, dim: D, from: 0, to: N };
      const runner = residentPassRunner();
      if (runner !== null && engine === 'wasm' && N * D >= passThresholds.workerMinValues) {
        const out = await runner(points, whole, signal);
        signal?.throwIfAborted();
        if (out !== null) return out;
      }
      const out = new Float64Array(rowPassLength(whole));
      await sliced(N, D, signal, (a, b) =>
        runRowPass(points, { ...whole, from: a, to: b, labels: whole.labels?.subarray(a, b) ?? null }, out),
      );
      return out;
    };
    let { labels, dist } = await assign();
    // The threshold on the squared shift: tol times the mean variance of the coordinates (none to
    // compute for tol = 0).
    const threshold =
      tol === 0
        ? 0
        : (tol *
            varianceFromMoments(await pass({ pass: 'moments', labels: null, clusters: 0, centroids: null }), N, D)) /
          D;
    let iterations = 0;
    while (iterations < maxIter) {
      signal?.throwIfAborted();
      const sums = await pass({ pass: 'sums', labels, clusters: K, centroids: null });
      const shift = update(c, points, sums, dist, N, D, K);
      iterations++;
      const next = await assign();
      const changed = next.labels.some((l, i) => l !== labels[i]);
      ({ labels, dist } = next);
      if (!changed || shift <= threshold) break;
    }
    const inertia = (await pass({ pass: 'inertia', labels, clusters: K, centroids: c }))[0]!;
    const centroids = dtype === 'float32' || data instanceof Float32Array ? Float32Array.from(c) : c;
    return {
      labels: new Tensor(labels, [N], engine),
      centroids: new Tensor(centroids, [K, D], engine),
      iterations,
      inertia,
    };
  } finally {
    release();
  }
}

/** Moves each centroid to the mean of its rows (`sums`: K x D sums, then K counts, of the last
 *  assignment); an empty cluster takes the farthest row not taken yet. Returns the squared shift
 *  summed over the centroids. */
function update(
  c: Float64Array,
  data: Float32Array | Float64Array,
  sums: Float64Array,
  dist: ArrayLike<number>,
  N: number,
  D: number,
  K: number,
): number {
  let order: Int32Array | null = null;
  let taken = 0;
  let shift = 0;
  for (let k = 0; k < K; k++) {
    const count = sums[K * D + k]!;
    // Farthest first, ties to the lowest row: the same choice on every run.
    if (count === 0) order ??= Int32Array.from({ length: N }, (_, i) => i).sort((a, b) => dist[b]! - dist[a]! || a - b);
    const i = count === 0 ? order![Math.min(taken++, N - 1)]! : -1;
    for (let d = 0; d < D; d++) {
      const v = count > 0 ? sums[k * D + d]! / count : data[i * D + d]!;
      shift += (v - c[k * D + d]!) ** 2;
      c[k * D + d] = v;
    }
  }
  return shift;
}

/** Runs `body` over rows [0, N) in slices of about passThresholds.sliceValues values, with a
 *  checkpoint (the signal, and a turn of the event loop when due) before each slice. */
async function sliced(N: number, D: number, signal: AbortSignalLike | undefined, body: (a: number, b: number) => void) {
  const step = Math.max(1, Math.floor(passThresholds.sliceValues / D));
  for (let a = 0; a < N; a += step) {
    await checkpoint(signal);
    body(a, Math.min(N, a + step));
  }
}

async function initialCentroids(
  init: KMeansOptions['init'],
  data: Float32Array | Float64Array,
  N: number,
  D: number,
  K: number,
  random: () => number,
  signal: AbortSignalLike | undefined,
): Promise<Float64Array> {
  const c = new Float64Array(K * D);
  const copyRow = (k: number, i: number) => {
    for (let d = 0; d < D; d++) c[k * D + d] = data[i * D + d]!;
  };
  if (init === 'random') {
    // K distinct rows: a partial Fisher-Yates shuffle.
    const idx = Int32Array.from({ length: N }, (_, i) => i);
    for (let k = 0; k < K; k++) {
      const t = k + Math.floor(random() * (N - k));
      [idx[k], idx[t]] = [idx[t]!, idx[k]!];
      copyRow(k, idx[k]!);
    }
    return c;
  }
  if (init === 'kmeans++') {
    // Arthur and Vassilvitskii's D^2 sampling: each next centroid is a row drawn with probability
    // proportional to its squared distance to the nearest centroid so far.
    copyRow(0, Math.floor(random() * N));
    const near = new Float64Array(N);
    // K passes over the points: sliced, so that the event loop is not held for their ~K x 50 ms at
    // Fashion-MNIST size
    await sliced(N, D, signal, (a, b) => {
      for (let i = a; i < b; i++) near[i] = sqDist64(data, i, c, 0, D);
    });
    for (let k = 1; k < K; k++) {
      let total = 0;
      for (let i = 0; i < N; i++) total += near[i]!;
      let pick = N - 1;
      if (total > 0) {
        let u = random() * total;
        for (let i = 0; i < N; i++) {
          if (near[i]! === 0) continue;
          // The last row of positive weight when rounding leaves u >= 0 at the end.
          pick = i;
          u -= near[i]!;
          if (u < 0) break;
        }
      } else {
        pick = Math.floor(random() * N); // every row is on a centroid already
      }
      copyRow(k, pick);
      await sliced(N, D, signal, (a, b) => {
        for (let i = a; i < b; i++) near[i] = Math.min(near[i]!, sqDist64(data, i, c, k, D));
      });
    }
    return c;
  }
  if (typeof init === 'string')
    throw new InputError(`kMeans: init must be 'kmeans++', 'random' or centroids [K, D], got '${init}'`);
  const given = makeVariable('kMeans: init', 'j', init as ArrayInput, D, undefined);
  if (given.rows !== K || given.dim !== D || given.batch.length > 0) {
    throw new InputError(`kMeans: init must hold ${K} centroids of ${D} components, got ${given.rows} x ${given.dim}`);
  }
  c.set(given.data);
  return c;
}
