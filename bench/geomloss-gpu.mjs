// GeomLoss on the WebGPU engine: a debiased Sinkhorn divergence, value and gradient (blur 0.01,
// scaling 0.5, float32, the "smooth" clouds of bench/geomloss.mjs), online and multiscale, on
// engine 'webgpu' next to 'wasm', stating the adapter. On a hardware adapter the sizes are 10^4 and
// 10^5 points; on a CPU-emulated one (SwiftShader, lavapipe: 20-70x slower than the WebAssembly
// engine here) the default is 2000 points, which only shows that every reduction of both backends
// runs there. Sizes: node bench/geomloss-gpu.mjs [N ...]. Needs `npm run build` first.
import { existsSync, readdirSync } from 'node:fs';
import { sinkhornClouds } from './data.mjs';

// Dawn needs a Vulkan driver: on a machine without one, SwiftShader's from Debian's chromium.
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];
const hasIcd = icdDirs.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
if (process.env.VK_ICD_FILENAMES === undefined && !hasIcd && existsSync(SWIFTSHADER))
  process.env.VK_ICD_FILENAMES = SWIFTSHADER;

const { webgpuStatus } = await import('../dist/index.js');
const { SamplesLoss } = await import('../dist/geomloss.js');

const status = await webgpuStatus();
if (!status.available) {
  console.log(`GeomLoss on WebGPU: no adapter (${status.reason}); skipped`);
  process.exit(0);
}
const emulated = status.adapter?.isFallbackAdapter === true;
const given = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
const sizes = given.length > 0 ? given : emulated ? [2000] : [10000, 100000];

console.log(
  `GeomLoss on WebGPU, adapter: ${JSON.stringify(status.adapter ?? {})}${emulated ? ' (CPU-emulated: correctness only, not speed)' : ''}`,
);
for (const n of sizes) {
  const { x, y } = sinkhornClouds(n, 'smooth');
  for (const backend of n > 20000 ? ['multiscale'] : ['online', 'multiscale']) {
    const row = [];
    for (const engine of ['wasm', 'webgpu']) {
      const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur: 0.01, scaling: 0.5, backend, engine });
      const t0 = performance.now();
      const res = await loss.valueAndGrad({ data: x, shape: [n, 3] }, { data: y, shape: [n, 3] });
      row.push({ engine: res.info.engine, t: (performance.now() - t0) / 1000, value: res.value });
    }
    const [w, g] = row;
    const rel = Math.abs(g.value - w.value) / Math.abs(w.value);
    console.log(
      `  N = M = ${n}, ${backend}: wasm ${w.t.toFixed(2)} s, ${g.engine} ${g.t.toFixed(2)} s; values ${w.value.toPrecision(7)} / ${g.value.toPrecision(7)} (relative difference ${rel.toExponential(1)})`,
    );
  }
}
process.exit(0);
