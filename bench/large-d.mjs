// npm run bench (after bench/run.mjs): large-D rows of the WebAssembly engine (issue 13).
//   node bench/large-d.mjs [--quick] [--no-native] [--no-raw] [--no-api] [--random]
// 1. The raw kernel, one thread, the blocked tiles of assembly/blocked.ts off and on in alternation
//    (A B A B in one process: the machine may be shared, so read the ratios): argKMin K = 10 at D = 3
//    and D = 50 (the rows of bench/run.mjs, with the native kernels-sse yardstick), the Gaussian kernel
//    sum and log-sum-exp at D = 3 (no regression), and argKMin at D = 784 in GFLOP/s (2 N M D flops:
//    one multiply and one add per pair and dimension).
// 2. The public API on all threads: a Fashion-MNIST-shaped K-NN (60000 x 784 train, 2000 test, K = 10,
//    float32; the real data where Debian's dataset-fashion-mnist is installed, pixels / 255, else (or
//    with --random) uniform random data of that shape) with its classification accuracy for K = 1, 5,
//    10 checked against scikit-learn's published figures (issue 13), and a K-means Lloyd iteration on
//    60000 x 784, K = 10; scikit-learn's brute-force K-NN and KMeans (bench/sklearn-peer.py) alongside
//    where python3-sklearn is installed, on as many threads as ours: the K-NN with OpenBLAS's kernels
//    for this CPU and again with its 128-bit SSE ones (OPENBLAS_CORETYPE=Nehalem, Wasm's SIMD width),
//    and FAISS IndexFlatL2 where python3-faiss is installed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { build } from '../scripts/kernel-speed.mjs';
import { uniform } from './data.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');

function nativeBin() {
  const script = path.resolve(here, '../../shared/bench/native/build.sh');
  if (args.has('--no-native') || !existsSync(script)) return null;
  try {
    return execFileSync('bash', [script], { encoding: 'utf8' }).trim().split('\n').pop();
  } catch {
    return null;
  }
}

/** Best of `reps` calls after one warm-up, in seconds of this process's user CPU time (the machine may
 *  be shared: CPU time leaves out the time spent waiting for a core). */
function timeIt(fn, reps) {
  fn();
  let t = Infinity;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    fn();
    t = Math.min(t, process.cpuUsage(c0).user / 1e6);
  }
  return t;
}

/** The native yardstick's user CPU seconds per run (it runs a warm-up and `reps` runs). */
function nativeSeconds(op, N, M, D, E, reps) {
  const exe = path.join(bin, 'kernels-sse');
  const cmd = `TIMEFORMAT=%U; { time "${exe}" ${op} ${N} ${M} ${D} ${E} ${reps} >/dev/null; } 2>&1`;
  const out = execFileSync('bash', ['-c', cmd], { encoding: 'utf8' });
  return Number(out.trim().split('\n').pop()) / (reps + 1);
}

// ---- 1. raw kernel A/B ----
const bin = nativeBin();
console.log(
  `# large-D bench: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}`,
);
if (!args.has('--no-raw')) {
  console.log('');
  console.log(
    'Raw kernel, one thread, float32, blocked tiles off (A) and on (B), alternated; best of each, user CPU time ' +
      '(native: its user CPU time over its warm-up and timed runs):',
  );
  console.log('');
  console.log('| row | N x M | A Gpairs/s | B Gpairs/s | B / A | native sse Gpairs/s | B / native | B GFLOP/s |');
  console.log('|---|---|---|---|---|---|---|---|');
}
const rawRows = [
  { name: 'Gaussian kernel sum, D = 3', op: 'gauss', N: 10000, M: 10000, D: 3, E: 1, B: 512 },
  { name: 'log-sum-exp, D = 3', op: 'lse', N: 10000, M: 10000, D: 3, E: 1, B: 512 },
  { name: 'argKMin K = 10, D = 3', op: 'knn', N: 10000, M: 10000, D: 3, E: 10, B: 512 },
  { name: 'argKMin K = 10, D = 50', op: 'knn', N: 10000, M: 10000, D: 50, E: 10, B: 128 },
  { name: 'argKMin K = 10, D = 784', op: 'knn', N: quick ? 400 : 2000, M: 10000, D: 784, E: 10, B: 16 },
];
for (const row of args.has('--no-raw') ? [] : rawRows) {
  const { op, N, M, D, E, B } = row;
  const a = build(op, N, M, D, B, E, 8, 0);
  const b = build(op, N, M, D, B, E, 8, 1);
  let ta = Infinity;
  let tb = Infinity;
  for (let r = 0; r < (quick ? 2 : 3); r++) {
    ta = Math.min(ta, timeIt(a, 1));
    tb = Math.min(tb, timeIt(b, 1));
  }
  const tn = bin && D <= 50 ? nativeSeconds(op, N, M, D, E, 2) : NaN;
  const gp = (t) => (N * M) / t / 1e9;
  console.log(
    `| ${row.name} | ${N} x ${M} | ${gp(ta).toFixed(3)} | ${gp(tb).toFixed(3)} | ${(ta / tb).toFixed(2)} | ` +
      `${Number.isNaN(tn) ? '-' : gp(tn).toFixed(3)} | ${Number.isNaN(tn) ? '-' : (tn / tb).toFixed(2)} | ` +
      `${((2 * N * M * D) / tb / 1e9).toFixed(1)} |`,
  );
}

// ---- 2. public API, all threads ----
/** Fashion-MNIST from Debian's dataset-fashion-mnist (IDX files, gzipped), pixels scaled to [0, 1]. */
const FASHION = '/usr/share/datasets/fashion-mnist';
function readIdx(file) {
  const bytes = gunzipSync(readFileSync(path.join(FASHION, file)));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = bytes[3];
  const shape = Array.from({ length: dims }, (_, k) => view.getUint32(4 + 4 * k));
  return { shape, data: bytes.subarray(4 + 4 * dims) };
}
function fashion(kind, rows) {
  const images = readIdx(`${kind}-images-idx3-ubyte.gz`);
  const labels = readIdx(`${kind}-labels-idx1-ubyte.gz`);
  const n = Math.min(rows, images.shape[0]);
  const D = images.shape[1] * images.shape[2];
  const x = new Float32Array(n * D);
  for (let q = 0; q < n * D; q++) x[q] = images.data[q] / 255;
  return { x, labels: labels.data.slice(0, n), D };
}
/** K-NN classification: majority vote of the first k neighbours, ties to the lowest label (scikit-learn's rule). */
function accuracy(indices, K, k, trainLabels, testLabels) {
  let right = 0;
  const counts = new Int32Array(256);
  for (let i = 0; i < testLabels.length; i++) {
    counts.fill(0);
    for (let q = 0; q < k; q++) counts[trainLabels[indices[i * K + q]]]++;
    let best = 0;
    for (let c = 1; c < 256; c++) if (counts[c] > counts[best]) best = c;
    if (best === testLabels[i]) right++;
  }
  return right / testLabels.length;
}
/** scikit-learn's accuracies on the first 2000 test images, Fashion-MNIST pixels (issue 13). */
const SKLEARN_ACCURACY = { 1: 0.846, 5: 0.859, 10: 0.8535 };

if (!args.has('--no-api')) {
  const { Vi, Vj, kMeans, getWasmThreads } = await import('../dist/index.js');
  const [nTrain, nTest, K] = quick ? [10000, 500, 10] : [60000, 2000, 10];
  let D = 784;
  let train;
  let test;
  let trainLabels = null;
  let testLabels = null;
  let source;
  if (existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz')) && !args.has('--random')) {
    const tr = fashion('train', nTrain);
    const te = fashion('t10k', nTest);
    ({ D } = tr);
    [train, test, trainLabels, testLabels] = [tr.x, te.x, tr.labels, te.labels];
    source = `Fashion-MNIST (${FASHION}, pixels / 255; the first ${nTest} test images)`;
  } else {
    train = uniform(nTrain * D, 11);
    test = uniform(nTest * D, 12);
    source = 'uniform random data of the Fashion-MNIST shape (dataset-fashion-mnist not installed)';
  }
  console.log('');
  console.log(`Public API, ${await getWasmThreads()} threads, float32, ${source}:`);
  console.log('');
  const t0 = performance.now();
  const nn = await Vi(test, D).sqDist(Vj(train, D)).argKMin(K, 1);
  const tKnn = (performance.now() - t0) / 1000;
  console.log(
    `- K-NN ${nTest} test x ${nTrain} train, D = ${D}, K = ${K}: ${tKnn.toFixed(2)} s ` +
      `(${((2 * nTest * nTrain * D) / tKnn / 1e9).toFixed(1)} GFLOP/s over all threads)`,
  );
  const ours = nn.data;
  if (trainLabels !== null) {
    const parts = [1, 5, 10].map((k) => {
      const acc = accuracy(ours, K, k, trainLabels, testLabels);
      const want = nTest === 2000 ? SKLEARN_ACCURACY[k] : undefined;
      const check =
        want === undefined ? '' : Math.abs(acc - want) < 1e-9 ? ' = sklearn' : ` (sklearn ${want}: DIFFERS)`;
      return `K = ${k}: ${acc.toFixed(4)}${check}`;
    });
    console.log(`- K-NN classification accuracy, ${parts.join('; ')}`);
  }
  const c0 = train.slice(0, 10 * D);
  const t1 = performance.now();
  await Vi(train, D).sqDist(Vj(c0, D)).minArgMin(1);
  const tAssign = (performance.now() - t1) / 1000;
  const iterations = 3;
  const t2 = performance.now();
  const km = await kMeans(train, 10, { dim: D, init: c0, iterations, tol: 0 });
  const tRun = (performance.now() - t2) / 1000;
  const tIter = tRun / Math.max(1, km.iterations);
  // The same run with no iteration: its copy and validation of the points, the first assignment and
  // the inertia; the rest of the run above is the Lloyd iterations themselves. The row's figure per
  // iteration stays the whole run over its iterations, as scikit-learn's (its fit over n_iter_).
  const t3 = performance.now();
  await kMeans(train, 10, { dim: D, init: c0, iterations: 0, tol: 0 });
  const tFixed = (performance.now() - t3) / 1000;
  console.log(
    `- K-means ${nTrain} x ${D}, K = 10: assignment (minArgMin) ${tAssign.toFixed(3)} s; ` +
      `kMeans ${km.iterations} iterations, ${tIter.toFixed(3)} s per iteration ` +
      `(a run of 0 iterations: ${tFixed.toFixed(3)} s; each iteration beyond it: ` +
      `${((tRun - tFixed) / Math.max(1, km.iterations)).toFixed(3)} s)`,
  );
  // scikit-learn's brute force and Lloyd iteration on the same data, where installed
  // Debian's python3-sklearn lives under /usr/bin/python3, which a pyenv or venv `python3` on PATH hides.
  const python = ['/usr/bin/python3', 'python3'].find((exe) => {
    try {
      execFileSync(exe, ['-c', 'import sklearn'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (python === undefined) console.log('- scikit-learn: not installed (python3-sklearn), no peer rows');
  if (python !== undefined) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lt-large-d-'));
    try {
      writeFileSync(path.join(dir, 'train.f32'), Buffer.from(train.buffer, train.byteOffset, train.byteLength));
      writeFileSync(path.join(dir, 'test.f32'), Buffer.from(test.buffer, test.byteOffset, test.byteLength));
      writeFileSync(path.join(dir, 'centres.f32'), Buffer.from(c0.buffer, c0.byteOffset, c0.byteLength));
      if (trainLabels !== null) {
        writeFileSync(path.join(dir, 'train.labels'), trainLabels);
        writeFileSync(path.join(dir, 'test.labels'), testLabels);
      }
      const threads = String(await getWasmThreads());
      // The same thread count as ours; OpenBLAS's own kernels for this CPU, then its 128-bit SSE
      // kernels (OPENBLAS_CORETYPE=Nehalem: Wasm's SIMD width), each in a process of its own (the
      // variable is read when numpy loads OpenBLAS); "blas" is what OpenBLAS reports it runs.
      const peer = (coretype, parts) =>
        JSON.parse(
          execFileSync(
            python,
            [path.join(here, 'sklearn-peer.py'), dir, String(D), String(K), '10', String(iterations), parts],
            {
              encoding: 'utf8',
              maxBuffer: 1 << 28,
              env: {
                ...process.env,
                OMP_NUM_THREADS: threads,
                OPENBLAS_NUM_THREADS: threads,
                ...(coretype === null ? {} : { OPENBLAS_CORETYPE: coretype }),
              },
            },
          ),
        );
      const same = (indices) => {
        let rows = 0;
        for (let i = 0; i < nTest; i++) {
          let ok = true;
          for (let q = 0; q < K && ok; q++) ok = ours[i * K + q] === indices[i * K + q];
          if (ok) rows++;
        }
        return rows;
      };
      const out = peer(null, 'knn,kmeans,faiss');
      const sse = peer('Nehalem', 'knn');
      for (const [what, o] of [
        ['its default kernels', out],
        ['forced to its 128-bit SSE kernels (OPENBLAS_CORETYPE=Nehalem)', sse],
      ]) {
        console.log(
          `- scikit-learn brute-force K-NN, OpenBLAS ${what}, reports ${o.blas}, ${o.threads} threads: ` +
            `${o.knn_seconds.toFixed(2)} s (sklearn / ours ${(o.knn_seconds / tKnn).toFixed(2)}x); ` +
            `neighbour lists identical on ${same(o.indices)} of ${nTest} rows`,
        );
      }
      if (out.faiss_seconds !== undefined) {
        console.log(
          `- FAISS IndexFlatL2 (${out.faiss_threads} threads): ${out.faiss_seconds.toFixed(2)} s ` +
            `(ours / FAISS ${(tKnn / out.faiss_seconds).toFixed(2)}x); neighbour lists identical on ` +
            `${same(out.faiss_indices)} of ${nTest} rows`,
        );
      } else {
        console.log('- FAISS: not installed (python3-faiss), no row');
      }
      if (out.accuracy !== undefined) {
        const parts = Object.entries(out.accuracy).map(([k, a]) => `K = ${k}: ${a.toFixed(4)}`);
        console.log(`- scikit-learn K-NN classification accuracy (this run), ${parts.join('; ')}`);
      }
      console.log(
        `- scikit-learn KMeans (lloyd, same initial centres): ${out.kmeans_iterations} iterations, ` +
          `${out.kmeans_seconds_per_iteration.toFixed(3)} s per iteration (ours / sklearn ${(tIter / out.kmeans_seconds_per_iteration).toFixed(2)})`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
