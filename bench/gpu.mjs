// node bench/gpu.mjs [--scale=S] [--reps=R]: the WebGPU engine's time next to the WebAssembly engine's
// for the rows of bench/run.mjs (float32), stating the adapter. GPU time comes from timestamp queries
// when the adapter has 'timestamp-query' (the pass's begin/end on the GPU clock); wall time includes
// upload, dispatch and readback. On CPU adapters (SwiftShader, lavapipe) the numbers only show that
// the engine runs: GPU kernels emulated on 2 CPU cores are slower than the SIMD WebAssembly engine.
// Needs `npm run build` first (imports dist/index.js).
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { uniform } from './data.mjs';

// Dawn needs a Vulkan driver. On a machine without any installed ICD, use SwiftShader's from Debian's
// chromium (.ci/setup-gpu.sh); never override a driver the machine has.
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];
const hasIcd = icdDirs.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
if (process.env.VK_ICD_FILENAMES === undefined && !hasIcd && existsSync(SWIFTSHADER)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER;
}

const lib = await import('../dist/index.js');
const { Vi, Vj } = lib;
const webgpuStatus = lib.webgpuStatus ?? globalThis[Symbol.for('lazytensor.webgpu.status')];

const arg = (name, fallback) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.split('=')[1]);
};
const SCALE = arg('scale', 1);
const REPS = arg('reps', 3);


/** Best of REPS after a warm-up (which also compiles): wall ms, and GPU ms when timed. */
async function best(fn, gpuTime) {
  await fn();
  let wall = Infinity;
  let gpu = Infinity;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    await fn();
    wall = Math.min(wall, performance.now() - t0);
    const g = gpuTime === undefined ? null : await gpuTime();
    if (g !== null && g !== undefined) gpu = Math.min(gpu, g);
  }
  return { wall, gpu: Number.isFinite(gpu) ? gpu : null };
}

const status = webgpuStatus ? await webgpuStatus() : null;
const G = 1 / (2 * 0.1 * 0.1);
const rows = [
  { name: 'Gaussian kernel sum, D = 3, E = 1', op: 'gauss', N: 10000, M: 10000, D: 3, E: 1 },
  { name: 'Gaussian kernel sum, D = 3, E = 4', op: 'gauss', N: 10000, M: 10000, D: 3, E: 4 },
  { name: 'log-sum-exp, D = 3', op: 'lse', N: 10000, M: 10000, D: 3, E: 1 },
  { name: 'argKMin K = 10, D = 3', op: 'knn', N: 10000, M: 10000, D: 3, E: 10 },
  { name: 'argKMin K = 10, D = 50', op: 'knn', N: 4000, M: 4000, D: 50, E: 10 },
];

console.log(`# lazytensor WebGPU bench: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}, float32`);
if (!status?.available) {
  console.log(`WebGPU unavailable: ${status?.reason ?? 'webgpuStatus is not exported by this build'}`);
  process.exit(0);
}
const a = status.adapter;
console.log(`Adapter: ${a.vendor} / ${a.architecture} / ${a.device} (${a.description})${a.isFallbackAdapter ? ', a fallback (CPU) adapter' : ''}`);
console.log(`Timestamp queries: ${status.timestampQuery ? 'yes (GPU column = compute pass time on the GPU clock)' : 'no (GPU column empty)'}`);
console.log(`Limits: maxStorageBufferBindingSize ${status.limits.maxStorageBufferBindingSize}, workgroup storage ${status.limits.maxComputeWorkgroupStorageSize} B, maxComputeInvocationsPerWorkgroup ${status.limits.maxComputeInvocationsPerWorkgroup}`);
if (SCALE !== 1) console.log(`Sizes scaled by ${SCALE} (--scale).`);
console.log('');
console.log('| row | N x M | wasm ms | webgpu wall ms | webgpu GPU ms | wasm Gpairs/s | webgpu Gpairs/s (wall) | webgpu / wasm |');
console.log('|---|---|---|---|---|---|---|---|');

for (const row of rows) {
  const N = Math.max(1, Math.round(row.N * SCALE));
  const M = Math.max(1, Math.round(row.M * SCALE));
  const { op, D, E } = row;
  const x = uniform(N * D, 1);
  const y = uniform(M * D, 2);
  const b = uniform(M * E, 3);
  const xi = Vi(x, D);
  const yj = Vj(y, D);
  let run;
  if (op === 'gauss') {
    const F = xi.sqDist(yj).mul(-G).exp().mul(Vj(b, E));
    run = (engine) => F.sum(1, { engine });
  } else if (op === 'lse') {
    const F = xi.sqDist(yj).mul(-G).add(Vj(b.subarray(0, M), 1));
    run = (engine) => F.logSumExp(1, { engine });
  } else {
    const F = xi.sqDist(yj);
    run = (engine) => F.argKMin(E, 1, { engine });
  }
  const wasm = await best(() => run('wasm'));
  let engineUsed = 'webgpu';
  const gpu = await best(
    async () => {
      const out = await run('webgpu');
      engineUsed = out.engine;
      return out;
    },
    // The GPU time of the reduction just run (timestamp queries).
    async () => (await webgpuStatus()).lastGpuTimeMs,
  );
  const timed = gpu.gpu;
  const gp = (t) => (N * M) / (t / 1000) / 1e9;
  const note = engineUsed === 'webgpu' ? '' : ` (ran on ${engineUsed})`;
  console.log(
    `| ${row.name}${note} | ${N} x ${M} | ${wasm.wall.toFixed(1)} | ${gpu.wall.toFixed(1)} | ${timed === null ? '' : timed.toFixed(1)} | ${gp(wasm.wall).toFixed(3)} | ${gp(gpu.wall).toFixed(3)} | ${(wasm.wall / gpu.wall).toFixed(2)}x |`,
  );
}

// Pipeline cache: the first call of a new formula compiles a shader, later calls do not.
{
  const x = Vi(uniform(3000, 4), 3);
  const y = Vj(uniform(3000, 5), 3);
  const F = x.sqDist(y).mul(-0.37).exp().mul(x.sub(y).sin().sum());
  const before = (await webgpuStatus()).stats.compiles;
  const t0 = performance.now();
  await F.sum(1, { engine: 'webgpu' });
  const first = performance.now() - t0;
  let later = Infinity;
  for (let r = 0; r < 3; r++) {
    const t1 = performance.now();
    await F.sum(1, { engine: 'webgpu' });
    later = Math.min(later, performance.now() - t1);
  }
  const s = await webgpuStatus();
  console.log('');
  console.log(
    `First WebGPU call of a new formula (1000 x 1000): ${first.toFixed(1)} ms, later calls ${later.toFixed(1)} ms ` +
      `(${s.stats.compiles - before} shader compiled; ${s.buffers.live} GPU buffers live, ${(s.buffers.cachedBytes / 2 ** 20).toFixed(1)} MiB cached).`,
  );
}
