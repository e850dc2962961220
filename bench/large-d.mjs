// npm run bench (after bench/run.mjs): large-D rows of the WebAssembly engine (issue 13).
//   node bench/large-d.mjs [--quick] [--no-native] [--no-api]
// 1. The raw kernel, one thread, the blocked tiles of assembly/blocked.ts off and on in alternation
//    (A B A B in one process: the machine may be shared, so read the ratios): argKMin K = 10 at D = 3
//    and D = 50 (the rows of bench/run.mjs, with the native kernels-sse yardstick), the Gaussian kernel
//    sum and log-sum-exp at D = 3 (no regression), and argKMin at D = 784 in GFLOP/s (2 N M D flops:
//    one multiply and one add per pair and dimension).
// 2. The public API on all threads: a Fashion-MNIST-shaped K-NN (60000 x 784 train, 2000 test, K = 10,
//    float32; the real data where Debian's dataset-fashion-mnist is installed, else uniform random data
//    of that shape) and a K-means Lloyd iteration on 60000 x 784, K = 10; scikit-learn's brute force
//    alongside where python3-sklearn is installed.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
console.log('');
console.log(
  'Raw kernel, one thread, float32, blocked tiles off (A) and on (B), alternated; best of each, user CPU time ' +
    '(native: its user CPU time over its warm-up and timed runs):',
);
console.log('');
console.log('| row | N x M | A Gpairs/s | B Gpairs/s | B / A | native sse Gpairs/s | B / native | B GFLOP/s |');
console.log('|---|---|---|---|---|---|---|---|');
const rawRows = [
  { name: 'Gaussian kernel sum, D = 3', op: 'gauss', N: 10000, M: 10000, D: 3, E: 1, B: 512 },
  { name: 'log-sum-exp, D = 3', op: 'lse', N: 10000, M: 10000, D: 3, E: 1, B: 512 },
  { name: 'argKMin K = 10, D = 3', op: 'knn', N: 10000, M: 10000, D: 3, E: 10, B: 512 },
  { name: 'argKMin K = 10, D = 50', op: 'knn', N: 10000, M: 10000, D: 50, E: 10, B: 128 },
  { name: 'argKMin K = 10, D = 784', op: 'knn', N: quick ? 400 : 2000, M: 10000, D: 784, E: 10, B: 16 },
];
for (const row of rawRows) {
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
if (!args.has('--no-api')) {
  const { Vi, Vj, kMeans, getWasmThreads } = await import('../dist/index.js');
  const D = 784;
  const [nTrain, nTest, K] = quick ? [10000, 500, 10] : [60000, 2000, 10];
  let source = 'uniform random data of the Fashion-MNIST shape';
  const fm = '/usr/share/dataset-fashion-mnist';
  if (existsSync(fm)) source = `${fm} is installed but not read by this bench: random data`;
  const train = uniform(nTrain * D, 11);
  const test = uniform(nTest * D, 12);
  console.log('');
  console.log(`Public API, ${getWasmThreads()} threads, float32, ${source}:`);
  console.log('');
  const t0 = performance.now();
  const nn = await Vi(test, D).sqDist(Vj(train, D)).argKMin(K, 1);
  const tKnn = (performance.now() - t0) / 1000;
  console.log(
    `- K-NN ${nTest} test x ${nTrain} train, D = ${D}, K = ${K}: ${tKnn.toFixed(2)} s ` +
      `(${((2 * nTest * nTrain * D) / tKnn / 1e9).toFixed(1)} GFLOP/s over all threads)`,
  );
  const c0 = train.slice(0, 10 * D);
  const t1 = performance.now();
  await Vi(train, D).sqDist(Vj(c0, D)).minArgMin(1);
  const tAssign = (performance.now() - t1) / 1000;
  const t2 = performance.now();
  const km = await kMeans(train, 10, { dim: D, init: c0, iterations: 3, tol: 0 });
  const tIter = (performance.now() - t2) / 1000 / Math.max(1, km.iterations);
  console.log(
    `- K-means ${nTrain} x ${D}, K = 10: assignment (minArgMin) ${tAssign.toFixed(3)} s; ` +
      `kMeans ${km.iterations} iterations, ${tIter.toFixed(3)} s per iteration`,
  );
  // scikit-learn's brute force on the same data, where installed
  let sk = false;
  try {
    execFileSync('python3', ['-c', 'import sklearn'], { stdio: 'ignore' });
    sk = true;
  } catch {
    console.log('- scikit-learn: not installed (python3-sklearn), no peer row');
  }
  if (sk) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lt-large-d-'));
    writeFileSync(path.join(dir, 'train.f32'), Buffer.from(train.buffer));
    writeFileSync(path.join(dir, 'test.f32'), Buffer.from(test.buffer));
    const py = `
import numpy as np, time, json
from sklearn.neighbors import NearestNeighbors
tr = np.fromfile('${dir}/train.f32', dtype=np.float32).reshape(-1, ${D})
te = np.fromfile('${dir}/test.f32', dtype=np.float32).reshape(-1, ${D})
t = time.perf_counter()
ind = NearestNeighbors(n_neighbors=${K}, algorithm='brute').fit(tr).kneighbors(te, return_distance=False)
print(json.dumps({'seconds': time.perf_counter() - t, 'indices': ind[:50].ravel().tolist()}))
`;
    const out = JSON.parse(execFileSync('python3', ['-c', py], { encoding: 'utf8' }));
    const ours = Array.from(nn.data.subarray(0, 50 * K));
    const same = ours.every((v, q) => v === out.indices[q]);
    console.log(
      `- scikit-learn brute force: ${out.seconds.toFixed(2)} s (ours / sklearn time ${(tKnn / out.seconds).toFixed(2)}); ` +
        `first 50 rows' neighbours ${same ? 'identical' : 'differ'}`,
    );
  }
}
