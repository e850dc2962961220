// node bench/gpu-sweep.mjs [--deadline-s=S] [--json=FILE]
//
// Tunes the WebGPU engine's kernel choices on a hardware adapter (issue 15): the same reductions
// under every workgroup size the adapter allows (configureWebGPU({ workgroupSize })), with the
// inner rows staged in workgroup memory or read straight from the storage buffer (staging), the
// tiled large-D kernel against the plain one (tiling), and inner parts (j-parallel partial
// reductions) against none where the result rows fill few workgroups (innerParts). GPU ms come from timestamp queries
// (the compute passes), wall ms include upload, dispatch and readback; best of 2 after a warm-up.
// Stops cleanly at --deadline-s (default 150) so that a short device lease gets what ran.
// Needs `npm run build` first (imports dist/); scripts/device-run.sh runs it on a lent GPU machine.
import { writeFileSync } from 'node:fs';
import { uniform } from './data.mjs';

const arg = (name, fallback) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a === undefined ? fallback : a.slice(name.length + 3);
};
const DEADLINE = performance.now() + 1000 * Number(arg('deadline-s', 150));
const JSON_OUT = arg('json', null);
const SCALE = Number(arg('scale', 1)); // shrinks every size (a CPU adapter: 0.02)
const { Vi, Vj, configureWebGPU, webgpuStatus } = await import('../dist/index.js');

const status = await webgpuStatus();
if (!status.available) {
  console.log(`WebGPU unavailable: ${status.reason}`);
  process.exit(0);
}
const a = status.adapter;
console.log(
  `# gpu-sweep on '${a.vendor}' '${a.architecture}' '${a.device}' '${a.description}' fallback=${a.isFallbackAdapter}`,
);
const maxWg = Math.min(status.limits.maxComputeInvocationsPerWorkgroup, status.limits.maxComputeWorkgroupSizeX);
const sizes = [64, 128, 256, 512, 1024].filter((w) => w <= maxWg);

const G = 1 / (2 * 0.1 * 0.1);
/** The Gaussian kernel sum at D = 3 (the target table's first rows). */
const gaussSum = (N) => {
  const F = Vi(uniform(N * 3, 1), 3)
    .sqDist(Vj(uniform(N * 3, 2), 3))
    .mul(-G)
    .exp()
    .mul(Vj(uniform(N, 3), 1));
  return () => F.sum(1, { engine: 'webgpu' });
};
const cases = [
  {
    name: 'gauss D=3',
    N: 300000,
    make: gaussSum,
  },
  {
    name: 'gauss D=3',
    N: 10000,
    parts: true,
    make: gaussSum,
  },
  {
    name: 'argKMin K=10 D=3',
    N: 100000,
    parts: true,
    make: (N) => {
      const F = Vi(uniform(N * 3, 4), 3).sqDist(Vj(uniform(N * 3, 5), 3));
      return () => F.argKMin(10, 1, { engine: 'webgpu' });
    },
  },
  {
    name: 'logsumexp D=3 (Sinkhorn step)',
    N: 100000,
    parts: true,
    make: (N) => {
      const F = Vj(uniform(N, 6), 1).sub(
        Vi(uniform(N * 3, 7), 3)
          .sqDist(Vj(uniform(N * 3, 8), 3))
          .mul(50),
      );
      return () => F.logSumExp(1, { engine: 'webgpu' });
    },
  },
  {
    name: 'argKMin K=10 D=64',
    N: 50000,
    tilings: ['auto', 'never'],
    make: (N) => {
      const F = Vi(uniform(N * 64, 9), 64).sqDist(Vj(uniform(N * 64, 10), 64));
      return () => F.argKMin(10, 1, { engine: 'webgpu' });
    },
  },
  {
    name: 'argKMin K=10 D=256',
    N: 20000,
    tilings: ['auto', 'never'],
    make: (N) => {
      const F = Vi(uniform(N * 256, 11), 256).sqDist(Vj(uniform(N * 256, 12), 256));
      return () => F.argKMin(10, 1, { engine: 'webgpu' });
    },
  },
];

const results = [];
console.log('| case | N = M | workgroup | staging | tiling | inner parts | GPU ms | wall ms | Gpairs/s (GPU) |');
console.log('|---|---|---|---|---|---|---|---|---|');
/** The option sets a case is timed under: staging (plain kernels) or tiling (large D), inner parts
 *  where the rows are few (they fill few workgroups), each at every workgroup size. */
const variants = (c) => {
  const out = [];
  for (const tiling of c.tilings ?? ['auto'])
    for (const staging of tiling === 'never' || c.tilings === undefined ? ['auto', 'never'] : ['auto'])
      for (const innerParts of c.parts ? ['auto', 'never'] : ['auto']) out.push({ tiling, staging, innerParts });
  return out;
};
outer: for (const c of cases) {
  c.N = Math.max(64, Math.round(c.N * SCALE));
  const run = c.make(c.N);
  for (const v of variants(c)) {
    for (const wg of sizes) {
      if (performance.now() > DEADLINE) {
        console.log('(deadline reached: the sweep stops here)');
        break outer;
      }
      configureWebGPU({ workgroupSize: wg, ...v });
      const label = `| ${c.name} | ${c.N} | ${wg} | ${v.staging} | ${v.tiling} | ${v.innerParts}`;
      try {
        await run();
        let gpu = Infinity;
        let wall = Infinity;
        for (let r = 0; r < 2; r++) {
          const t0 = performance.now();
          await run();
          wall = Math.min(wall, performance.now() - t0);
          const g = (await webgpuStatus()).lastGpuTimeMs;
          if (g !== null) gpu = Math.min(gpu, g);
        }
        const ms = Number.isFinite(gpu) ? gpu : wall;
        const rate = (c.N * c.N) / (ms / 1000) / 1e9;
        results.push({ case: c.name, N: c.N, wg, ...v, gpuMs: gpu, wallMs: wall, gpairs: rate });
        console.log(
          `${label} | ${Number.isFinite(gpu) ? gpu.toFixed(2) : ''} | ${wall.toFixed(1)} | ${rate.toPrecision(3)} |`,
        );
      } catch (e) {
        console.log(`${label} | failed: ${e?.name}: ${e?.message} | | |`);
      }
    }
  }
}
configureWebGPU({ workgroupSize: undefined, staging: undefined, tiling: undefined, innerParts: undefined });
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ adapter: a, limits: status.limits, results }, null, 2));
process.exit(0);
