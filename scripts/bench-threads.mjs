#!/usr/bin/env node
// Multi-core WebAssembly engine: times one Gaussian kernel sum (N = M = 10^4, D = 3, float32) and a
// GeomLoss Sinkhorn divergence (value + gradient, as bench/geomloss.mjs) with 1 and with W workers.
// Bundles the sources with esbuild (no `npm run build` needed).  node scripts/bench-threads.mjs [N]
import { build } from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { esbuildWorkerPlugin } from './worker-plugin.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const n = Number(process.argv[2] ?? 10000);
const dir = mkdtempSync(join(os.tmpdir(), 'lazytensor-bench-'));
const out = join(dir, 'lib.mjs');
writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
await build({
  stdin: {
    contents: `export * from './src/index.ts'; export { SamplesLoss } from './src/geomloss/index.ts';
               export { setWasmThreads, getWasmThreads } from './src/wasm/workers.ts';`,
    resolveDir: root,
    loader: 'ts',
    sourcefile: 'bench-entry.ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  outfile: out,
  logLevel: 'silent',
  plugins: [esbuildWorkerPlugin()],
});
const lt = await import(pathToFileURL(out).href);
rmSync(dir, { recursive: true, force: true });
lt.setDefaultEngine('wasm');

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), (s >>> 8) / 16777216);
}
const r = lcg(1);
const x = new Float32Array(3 * n).map(() => r());
const y = new Float32Array(3 * n).map(() => 0.3 + 0.6 * r() * r());
const b = new Float32Array(n).map(() => r());

/** Best wall time of `reps` runs (after a warm-up), and the CPU time (all threads) / wall time of the
 *  timed runs: about 1 on one core, up to W when the workers really run in parallel. */
const cores = [];
async function best(fn, reps = 3) {
  await fn();
  let t = Infinity;
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let k = 0; k < reps; k++) {
    const t0 = performance.now();
    await fn();
    t = Math.min(t, performance.now() - t0);
  }
  const c = process.cpuUsage(c0);
  cores.push(((c.user + c.system) / 1000 / (performance.now() - w0)).toFixed(2));
  return t;
}

const W = Math.min(os.availableParallelism(), 4);
const results = {};
for (const threads of [1, W]) {
  lt.setWasmThreads(threads);
  const gauss = await best(() => lt.Vi(x, 3).sqDist(lt.Vj(y, 3)).mul(-50).exp().mul(lt.Vj(b, 1)).sum(1));
  const lse4 = await best(() =>
    Promise.all(
      [0, 1, 2, 3].map((k) =>
        lt
          .Vj(b, 1)
          .sub(
            lt
              .Vi(x, 3)
              .sqDist(lt.Vj(y, 3))
              .mul(10 + k),
          )
          .logSumExp(1),
      ),
    ),
  );
  const loss = new lt.SamplesLoss({
    loss: 'sinkhorn',
    p: 2,
    blur: 0.01,
    scaling: 0.5,
    debias: true,
    backend: 'online',
  });
  const sinkhorn = await best(() => loss.valueAndGrad({ data: x, shape: [n, 3] }, { data: y, shape: [n, 3] }), 1);
  results[threads] = { gauss, lse4, sinkhorn };
  console.log(
    `threads ${threads}: Gaussian kernel sum ${n}x${n}: ${gauss.toFixed(1)} ms; 4 concurrent logSumExp: ${lse4.toFixed(1)} ms; ` +
      `Sinkhorn value+grad: ${(sinkhorn / 1000).toFixed(2)} s  (cores busy: ${cores.splice(0).join(', ')})`,
  );
}
const [a, c] = [results[1], results[W]];
console.log(
  `speed-up with ${W} threads: Gaussian sum x${(a.gauss / c.gauss).toFixed(2)}, 4 x LSE x${(a.lse4 / c.lse4).toFixed(2)}, Sinkhorn x${(a.sinkhorn / c.sinkhorn).toFixed(2)}`,
);
