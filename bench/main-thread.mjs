// The WebAssembly engine on one thread (setWasmThreads(1): the main thread's kernel, in chunks of
// ~15 ms so that the event loop keeps turning): speed at large and small D, and the event loop's
// longest stall during a reduction (issue 13: at D = 784 one thread ran 4.6x slower than two).
//   node bench/main-thread.mjs [--quick] [--fashion] [--base=/path/to/other/dist]
// With --base, the same rows run on that build too, alternating A (--base) and B (this build's dist)
// in one process: the machine may be shared, so read the ratios. Times: best of the runs, in
// seconds of this process's user CPU (one thread: the kernel's time) and wall clock; "stall": the
// longest gap between two ticks of a 1 ms setInterval during the reduction, in wall clock and in
// CPU time used in the gap (the synchronous work the event loop waited for, whatever the load).
// The variables are made before the timing (their validation is the caller's synchronous work).
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { uniform } from './data.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const base = argv.find((a) => a.startsWith('--base='))?.slice('--base='.length);
const reps = quick ? 1 : 2;

const builds = [];
if (base) builds.push({ name: 'A (base)', lib: await import(pathToFileURL(path.resolve(base, 'index.js')).href) });
builds.push({ name: base ? 'B (this)' : 'this', lib: await import('../dist/index.js') });
for (const b of builds) b.lib.setWasmThreads(1);

const FASHION = '/usr/share/datasets/fashion-mnist';
function fashion(kind, rows) {
  const bytes = gunzipSync(readFileSync(path.join(FASHION, `${kind}-images-idx3-ubyte.gz`)));
  const D = 784;
  const n = Math.min(rows, (bytes.length - 16) / D);
  const x = new Float32Array(n * D);
  for (let q = 0; q < n * D; q++) x[q] = bytes[16 + q] / 255;
  return x;
}

/** Runs `run` with a 1 ms interval ticking: the longest gap between ticks in wall clock, and in this
 *  process's CPU time (the synchronous work the event loop waited for, whatever the machine's load). */
async function timed(run) {
  let maxGap = 0;
  let maxGapCpu = 0;
  let last = performance.now();
  let lastCpu = process.cpuUsage().user;
  const tick = () => {
    const t = performance.now();
    const c = process.cpuUsage().user;
    maxGap = Math.max(maxGap, t - last);
    maxGapCpu = Math.max(maxGapCpu, (c - lastCpu) / 1000);
    last = t;
    lastCpu = c;
  };
  const timer = setInterval(tick, 1);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  last = t0;
  lastCpu = c0.user;
  const out = await run();
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0).user / 1e6;
  tick();
  clearInterval(timer);
  return { out, wall, cpu, maxGap, maxGapCpu };
}

const rows = [];
const knn = (N, M, D, K, data) => ({
  label: `argKMin K = ${K}, ${N} x ${M}, D = ${D}${data ? ' (Fashion-MNIST)' : ''}`,
  flops: 2 * N * M * D,
  make: (lib) => {
    const x = data ? data.x : uniform(N * D, 1);
    const y = data ? data.y : uniform(M * D, 2);
    const f = lib.Vi(x, D).sqDist(lib.Vj(y, D));
    return () => f.argKMin(K, 1);
  },
});
const gauss = (N, M, D) => ({
  label: `Gaussian kernel sum, ${N} x ${M}, D = ${D}`,
  flops: 2 * N * M * D,
  make: (lib) => {
    const x = uniform(N * D, 3);
    const y = uniform(M * D, 4);
    const b = uniform(M, 5);
    const f = lib.Vi(x, D).sqDist(lib.Vj(y, D)).mul(-1).exp().mul(lib.Vj(b, 1));
    return () => f.sum(1);
  },
});
if (quick) {
  rows.push(knn(400, 20000, 784, 10), knn(1000, 20000, 50, 10), knn(4000, 20000, 3, 10), gauss(400, 20000, 784));
} else {
  rows.push(knn(400, 60000, 784, 10), knn(1000, 60000, 50, 10), knn(10000, 60000, 3, 10), gauss(400, 60000, 784));
}
if (argv.includes('--fashion') && existsSync(FASHION)) {
  const data = { x: fashion('t10k', 400), y: fashion('train', 60000) };
  rows.push(knn(400, 60000, 784, 10, data));
}

console.log(
  `one thread (setWasmThreads(1)); ${os.cpus().length} CPUs, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
for (const row of rows) {
  const runs = builds.map((b) => ({ b, run: row.make(b.lib), best: null, outs: null }));
  for (const r of runs) await r.run(); // warm-up (compiles the kernel, sizes the chunks)
  for (let rep = 0; rep < reps; rep++) {
    for (const r of runs) {
      const t = await timed(r.run);
      r.outs = t.out.data;
      if (r.best === null || t.cpu < r.best.cpu) r.best = t;
    }
  }
  const cells = runs.map(
    (r) =>
      `${r.b.name}: ${r.best.cpu.toFixed(2)} s cpu (${(row.flops / r.best.cpu / 1e9).toFixed(1)} GFLOP/s), ` +
      `${r.best.wall.toFixed(2)} s wall, stall ${r.best.maxGap.toFixed(0)} ms wall / ${r.best.maxGapCpu.toFixed(0)} ms cpu`,
  );
  let extra = '';
  if (runs.length === 2) {
    const [a, b] = runs;
    const same = Buffer.from(a.outs.buffer).equals(Buffer.from(b.outs.buffer));
    extra = `; A/B cpu ${(a.best.cpu / b.best.cpu).toFixed(2)}x; outputs ${same ? 'identical' : 'DIFFER'}`;
  }
  console.log(`- ${row.label}: ${cells.join('; ')}${extra}`);
}
console.log(
  `load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
