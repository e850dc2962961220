// Repeated reductions against the same large data on the worker pool: a plain Vj (the data posted
// to every worker at each call, and tiled again in each worker's kernel memory) against a
// residentVariable (posted once, kept tiled in place): a K-NN index queried batch after batch.
//   node bench/resident.mjs [--quick] [--threads=N]
// Alternates plain and resident calls in one process (the machine may be shared: read the ratio);
// times are wall clock per call, best and median of the calls.
import os from 'node:os';
import { uniform } from './data.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const threadsArg = argv.find((a) => a.startsWith('--threads='));
const lib = await import('../dist/index.js');
if (threadsArg) lib.setWasmThreads(Number(threadsArg.slice('--threads='.length)));
const threads = await lib.getWasmThreads();

const [N, M, D, K, calls] = quick ? [100, 20000, 784, 10, 3] : [400, 60000, 784, 10, 4];
const train = uniform(M * D, 2);
const queries = Array.from({ length: calls + 1 }, (_, c) => uniform(N * D, 10 + c));
const resident = lib.residentVariable('j', train, D);
const plainJ = lib.Vj(train, D);

const time = async (y, x) => {
  const t0 = performance.now();
  const r = await lib.Vi(x, D).sqDist(y).argKMin(K, 1);
  return { ms: performance.now() - t0, data: r.data };
};
console.log(
  `argKMin K = ${K}, ${N} queries x ${M} x ${D} (float32), ${threads} threads; ${os.cpus().length} CPUs, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
// warm-up: compiles, starts the workers, posts the resident copy
await time(plainJ, queries[calls]);
await time(resident.tensor, queries[calls]);
const plain = [];
const held = [];
let identical = true;
for (let c = 0; c < calls; c++) {
  const a = await time(plainJ, queries[c]);
  const b = await time(resident.tensor, queries[c]);
  plain.push(a.ms);
  held.push(b.ms);
  identical &&= Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer));
}
resident.release();
const stats = (v) => {
  const s = [...v].sort((p, q) => p - q);
  return { best: s[0], median: s[Math.floor(s.length / 2)] };
};
const p = stats(plain);
const h = stats(held);
console.log(`- plain Vj: best ${p.best.toFixed(0)} ms, median ${p.median.toFixed(0)} ms per call`);
console.log(`- residentVariable: best ${h.best.toFixed(0)} ms, median ${h.median.toFixed(0)} ms per call`);
console.log(
  `- plain / resident: ${(p.median / h.median).toFixed(2)}x (median); outputs ${identical ? 'identical' : 'DIFFER'}; load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
