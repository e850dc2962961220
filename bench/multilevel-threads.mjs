// One multiscale solve for an A/B of two builds on a loaded machine (Linux): node bench/multilevel-threads.mjs
// smooth|concentrated N (MULTILEVEL_LIB: another build's geomloss.js). Debiased Sinkhorn, p = 2, blur 0.01,
// scaling 0.5, float32, value and gradient. Prints one JSON line: wall and process CPU time, the value, the pairs
// visited, a hash of the gradients' bytes (bit-identity of two builds), and per busy thread (/proc schedstat) its
// time running, runnable but waiting for a core, and blocked (neither): the workers' blocked time is their waiting
// for work from the main thread, which the other processes' load does not inflate, unlike the wall time.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
const lib = process.env.MULTILEVEL_LIB ?? '../dist/geomloss.js';
const { SamplesLoss } = await import(lib);
const { sinkhornClouds } = await import('./data.mjs');
const [kind, n] = [process.argv[2], Number(process.argv[3])];
const opts = { loss: 'sinkhorn', p: 2, blur: 0.01, scaling: 0.5, debias: true, backend: 'multiscale' };
{
  // Warm-up: starts the worker pool, so that its threads exist before the timed solve.
  const w = sinkhornClouds(3000, kind);
  await new SamplesLoss(opts).valueAndGrad({ data: w.x, shape: [3000, 3] }, { data: w.y, shape: [3000, 3] });
}
const threads = () =>
  new Map(
    readdirSync('/proc/self/task').map((t) => {
      const [run, wait] = readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
      return [t, { comm: readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim(), run: run / 1e6, wait: wait / 1e6 }];
    }),
  );
const { x, y } = sinkhornClouds(n, kind);
const loss = new SamplesLoss(opts);
const s0 = threads();
const c0 = process.cpuUsage();
const t0 = performance.now();
const res = await loss.valueAndGrad({ data: x, shape: [n, 3] }, { data: y, shape: [n, 3] });
const t = performance.now() - t0;
const c = process.cpuUsage(c0);
const s1 = threads();
const busy = [];
for (const [tid, a] of s1) {
  const b = s0.get(tid);
  if (!b) continue;
  const run = a.run - b.run;
  if (run < 0.05 * t) continue;
  busy.push({
    comm: a.comm,
    run: +(run / 1000).toFixed(2),
    wait: +((a.wait - b.wait) / 1000).toFixed(2),
    blocked: +((t - run - (a.wait - b.wait)) / 1000).toFixed(2),
  });
}
const h = createHash('sha256');
for (const k of Object.keys(res.grad).sort()) {
  const g = res.grad[k]?.data;
  if (g) h.update(Buffer.from(g.buffer, g.byteOffset, g.byteLength));
}
console.log(
  JSON.stringify({
    lib,
    kind,
    n,
    wall: +(t / 1000).toFixed(2),
    cpu: +((c.user + c.system) / 1e6).toFixed(2),
    value: res.value,
    pairs: res.info.multiscale.pairsVisited,
    grad: h.digest('hex').slice(0, 16),
    threads: busy,
  }),
);
