// knn at D = 3 against scipy's cKDTree (issue 13): 10^5 x 10^5 uniform in [0, 1]^3, float32, K = 10,
// 2 threads, the rows of bench/run.mjs's knn line.
//   node bench/knn-d3.mjs [--dist DIR] [--reps N] [--no-scipy]
// Prints the first call and the median of `reps` later calls (wall time: the search's main-thread
// work and its waits on the workers are both the call's cost), then cKDTree build + query with
// workers=2 on the same points (median of as many runs) where python3-scipy is installed. For an A/B
// of two builds, alternate runs of this script with --dist pointing at each build's dist/.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { uniform } from './data.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : fallback;
};
const dist = path.resolve(opt('--dist', path.join(here, '../dist')));
const reps = Number(opt('--reps', '5'));
const { knn, setWasmThreads } = await import(pathToFileURL(path.join(dist, 'index.js')).href);

const N = 100000;
const x = uniform(N * 3, 11);
const y = uniform(N * 3, 12);
setWasmThreads(2);
const median = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
let t0 = performance.now();
await knn(x, y, 10, { dim: 3 });
const first = (performance.now() - t0) / 1000;
const times = [];
for (let r = 0; r < reps; r++) {
  t0 = performance.now();
  await knn(x, y, 10, { dim: 3 });
  times.push((performance.now() - t0) / 1000);
}
console.log(
  `knn ${dist}: first ${first.toFixed(3)} s, median of ${reps} ${median(times).toFixed(3)} s ` +
    `[${times.map((t) => t.toFixed(3)).join(' ')}]`,
);

if (!argv.includes('--no-scipy')) {
  // The same float32 points, passed to Python as raw bytes; scipy queries in float64.
  const script = `
import sys, time, numpy as np
from scipy.spatial import cKDTree
buf = sys.stdin.buffer.read()
n = ${N}
x = np.frombuffer(buf[: n * 12], dtype=np.float32).reshape(n, 3).astype(np.float64)
y = np.frombuffer(buf[n * 12 :], dtype=np.float32).reshape(n, 3).astype(np.float64)
ts = []
for r in range(${reps} + 1):
    t0 = time.perf_counter()
    d, i = cKDTree(y).query(x, k=10, workers=2)
    ts.append(time.perf_counter() - t0)
print(' '.join('%.4f' % t for t in ts[1:]))
`;
  const input = Buffer.concat([Buffer.from(x.buffer), Buffer.from(y.buffer)]);
  try {
    const out = execFileSync('/usr/bin/python3', ['-c', script], { input, encoding: 'utf8' });
    const ts = out.trim().split(' ').map(Number);
    console.log(`cKDTree build + query, workers=2: median of ${reps} ${median(ts).toFixed(3)} s [${out.trim()}]`);
  } catch (e) {
    console.log(`cKDTree: not run (${e.message.split('\n')[0]})`);
  }
}
