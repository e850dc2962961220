// node bench/gpu.mjs [--quick] [--scale=S] [--reps=R] [--row-budget-s=S] [--wasm-max-pairs=P] [--json=FILE]
//
// The device benchmark of the WebGPU engine (issue 15): the adapter's identity and limits first (so a
// software adapter is never mistaken for a GPU), then the target table (Gaussian kernel sum at D = 3
// from 10^4 to 10^6 points, argKMin K = 10 at D = 3 and D = 64, a debiased Sinkhorn divergence with its
// gradient), each next to the WebAssembly engine on the same machine (all its threads), with the
// ratio; then the tiled large-D kernels against the plain ones (argKMin, D = 16 to 784), and 'auto''s
// choice against both engines' times (with the cost model's figures printed first). GPU time comes from timestamp queries when the adapter has 'timestamp-query' (the compute
// passes' begin/end on the GPU clock, last reduction); wall time includes upload, dispatch and
// readback. The WebAssembly column is skipped above --wasm-max-pairs pairs (default 2e10; a
// Sinkhorn row counts 50 reductions' pairs) so that the run fits a short lease; the ratio is then
// empty. --quick: the smaller half of every row (a first check within a minute or two).
// On CPU adapters (SwiftShader, lavapipe) the numbers only show that the engine runs: GPU kernels
// emulated on a few CPU cores are slower than the SIMD WebAssembly engine; --quick then shrinks the
// sizes further. Needs `npm run build` first (imports dist/). scripts/device-run.sh runs it on a
// lent GPU machine.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { sinkhornClouds, uniform } from './data.mjs';

// Dawn needs a Vulkan driver. On a machine without any installed ICD, use SwiftShader's from Debian's
// chromium (.ci/setup-gpu.sh); never override a driver the machine has (or one given by
// VK_DRIVER_FILES / VK_ICD_FILENAMES, as scripts/device-run.sh does).
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];
const hasIcd = icdDirs.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
if (
  process.env.VK_ICD_FILENAMES === undefined &&
  process.env.VK_DRIVER_FILES === undefined &&
  !hasIcd &&
  existsSync(SWIFTSHADER)
) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER;
}

const lib = await import('../dist/index.js');
const { Vi, Vj, getWasmThreads, configureWebGPU } = lib;
const webgpuStatus = lib.webgpuStatus ?? globalThis[Symbol.for('lazytensor.webgpu.status')];
const { SamplesLoss } = await import('../dist/geomloss.js');

const flag = (name) => process.argv.includes(`--${name}`);
const arg = (name, fallback) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a === undefined ? fallback : a.slice(name.length + 3);
};
const QUICK0 = flag('quick');
const REPS = Number(arg('reps', QUICK0 ? 2 : 3));
const WASM_MAX_PAIRS = Number(arg('wasm-max-pairs', 2e10));
const JSON_OUT = arg('json', null);
const SCALE = Number(arg('scale', 1)); // multiplies every size (npm run bench passes 0.3)
// Repetitions stop once a row (warm-up included) has run this long (--row-budget-s, default 20 s).
const ROW_BUDGET_MS = 1000 * Number(arg('row-budget-s', 20));

const status = webgpuStatus ? await webgpuStatus() : null;
const threads = await getWasmThreads();
const report = { machine: {}, adapter: null, limits: null, rows: [] };
report.machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  node: process.version,
  wasmThreads: threads,
};
console.log(
  `# lazytensor WebGPU device bench: ${report.machine.cpu}, ${report.machine.cores} cores, Node ${process.version}, float32, wasm on ${threads} threads`,
);
if (!status?.available) {
  console.log(`WebGPU unavailable: ${status?.reason ?? 'webgpuStatus is not exported by this build'}`);
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ ...report, unavailable: status?.reason ?? null }, null, 2));
  process.exit(0);
}

// ---- The adapter, first -------------------------------------------------------------------------
const a = status.adapter;
const text = `${a.vendor} ${a.architecture} ${a.device} ${a.description}`.toLowerCase();
const software = a.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|warp|software|cpu/.test(text);
report.adapter = { ...a, software };
report.limits = status.limits;
console.log(
  `Adapter: vendor '${a.vendor}', architecture '${a.architecture}', device '${a.device}', description '${a.description}'`,
);
console.log(
  software
    ? '*** SOFTWARE ADAPTER (CPU emulation): these figures are NOT GPU figures; they only show that the engine runs. ***'
    : 'Hardware adapter (not a fallback adapter; no software renderer named).',
);
console.log(
  `Timestamp queries: ${status.timestampQuery ? "yes ('GPU ms' = compute passes on the GPU clock)" : "no ('GPU ms' empty)"}`,
);
console.log(
  `Limits: ${Object.entries(status.limits)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);
// ---- How 'auto' decides (issue 15): the cost model's figures, measured by the calibration or defaults
{
  const auto = status.auto;
  if (auto !== undefined) {
    report.auto = auto;
    const f = auto.figures;
    const src = (k) => auto.sources[k] ?? '?';
    const rates = (e) =>
      ['kernel', 'select', 'product']
        .map((c) => `${c} ${f[e].rate[c].toExponential(2)} (${src(`${e}.rate.${c}`)})`)
        .join(', ');
    console.log(
      `'auto': rule '${auto.rule}'${auto.calibrationMs === null ? '' : `, calibrated in ${auto.calibrationMs.toFixed(1)} ms`}${auto.note ? ` (${auto.note})` : ''}`,
    );
    for (const e of ['webgpu', 'wasm']) {
      console.log(
        `  ${e}: overhead ${(f[e].overhead * 1e3).toFixed(3)} ms (${src(`${e}.overhead`)}); work/s ${rates(e)}; bytes/s ${f[e].bytesPerSecond.toExponential(2)} (${src(`${e}.bytesPerSecond`)})`,
      );
    }
  }
}
if (software) console.log('Sizes shrunk for a software adapter.');
if (SCALE !== 1) console.log(`Sizes scaled by ${SCALE} (--scale).`);
console.log('');

/** Best of REPS after a warm-up (which also compiles): wall ms, GPU ms when timed, engine used. */
async function best(fn, gpuTime) {
  const start = performance.now();
  let out = await fn();
  let wall = Infinity;
  let gpu = Infinity;
  // A row whose warm-up alone took the row budget is timed by its warm-up (compile included): a
  // short lease must not spend minutes on one slow row.
  if (performance.now() - start > ROW_BUDGET_MS) {
    wall = performance.now() - start;
    const g = gpuTime === undefined ? null : await gpuTime();
    if (g !== null && g !== undefined) gpu = g;
  }
  for (let r = 0; r < REPS && performance.now() - start <= ROW_BUDGET_MS; r++) {
    const t0 = performance.now();
    out = await fn();
    wall = Math.min(wall, performance.now() - t0);
    const g = gpuTime === undefined ? null : await gpuTime();
    if (g !== null && g !== undefined) gpu = Math.min(gpu, g);
  }
  return { wall, gpu: Number.isFinite(gpu) ? gpu : null, engine: out.engine, out };
}

/** How far the WebGPU result is from the WebAssembly one: the largest difference relative to the
 *  largest |value| (values), or the share of neighbour indices that differ (near-ties only). */
function agreement(g, w) {
  if (g.values !== undefined) {
    let diff = 0;
    let scale = 0;
    for (let k = 0; k < w.values.length; k++) {
      diff = Math.max(diff, Math.abs(g.values[k] - w.values[k]));
      scale = Math.max(scale, Math.abs(w.values[k]));
    }
    return `max diff ${(diff / scale).toExponential(1)}`;
  }
  let differ = 0;
  for (let k = 0; k < w.indices.length; k++) if (g.indices[k] !== w.indices[k]) differ++;
  return `${((100 * differ) / w.indices.length).toFixed(3)}% indices differ`;
}

// ---- The target table (issue 15) ----------------------------------------------------------------
// A software adapter runs the quick table at a tenth of the sizes (it is 20-70x slower than wasm).
const QUICK = QUICK0 || software;
const shrink = software ? 0.1 : 1;
const n = (v) => Math.max(16, Math.round(v * shrink * SCALE));
const G = 1 / (2 * 0.1 * 0.1);
const rows = [
  { name: 'Gaussian kernel sum, D = 3', op: 'gauss', N: n(1e4), D: 3 },
  { name: 'Gaussian kernel sum, D = 3', op: 'gauss', N: n(1e5), D: 3 },
  ...(QUICK ? [] : [{ name: 'Gaussian kernel sum, D = 3 (target: >= 2.5e11 pairs/s)', op: 'gauss', N: n(1e6), D: 3 }]),
  { name: 'argKMin K = 10, D = 3', op: 'knn', N: n(QUICK ? 1e4 : 1e5), D: 3, K: 10 },
  { name: 'argKMin K = 10, D = 64', op: 'knn', N: n(QUICK ? 1e4 : 1e5), D: 64, K: 10 },
  {
    name: 'Sinkhorn divergence, online, value + gradient (target: 10^5 < 2 s)',
    op: 'sinkhorn',
    N: n(QUICK ? 1e4 : 1e5),
    D: 3,
  },
];

console.log(
  '| row | N = M | wasm ms | webgpu wall ms | webgpu GPU ms | webgpu Gpairs/s (wall) | webgpu / wasm speed | webgpu vs wasm |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  const N = row.N;
  let run;
  let pairs = N * N;
  if (row.op === 'gauss') {
    const F = Vi(uniform(N * 3, 1), 3)
      .sqDist(Vj(uniform(N * 3, 2), 3))
      .mul(-G)
      .exp()
      .mul(Vj(uniform(N, 3), 1));
    run = async (engine) => {
      const r = await F.sum(1, { engine });
      return { engine: r.engine, values: r.data };
    };
  } else if (row.op === 'knn') {
    const F = Vi(uniform(N * row.D, 1), row.D).sqDist(Vj(uniform(N * row.D, 2), row.D));
    run = async (engine) => {
      const r = await F.argKMin(row.K, 1, { engine });
      return { engine: r.engine, indices: r.data };
    };
  } else {
    const { x, y } = sinkhornClouds(N, 'smooth');
    pairs = 50 * N * N; // about 50 reductions of N x N in 10 eps-scaling steps, value and gradient
    run = async (engine) => {
      const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur: 0.01, scaling: 0.5, backend: 'online', engine });
      const r = await loss.valueAndGrad({ data: x, shape: [N, 3] }, { data: y, shape: [N, 3] });
      return { engine: r.info.engine, values: [r.value] };
    };
  }
  const gpu = await best(
    () => run('webgpu'),
    row.op === 'sinkhorn' ? undefined : async () => (await webgpuStatus()).lastGpuTimeMs,
  );
  const wasm = pairs <= WASM_MAX_PAIRS ? await best(() => run('wasm')) : null;
  const gps = (N * N) / (gpu.wall / 1000) / 1e9;
  const note = gpu.engine === 'webgpu' ? '' : ` (ran on ${gpu.engine})`;
  const ratio = wasm === null ? '' : `${(wasm.wall / gpu.wall).toFixed(2)}x`;
  const agree = wasm === null ? '' : agreement(gpu.out, wasm.out);
  report.rows.push({
    ...row,
    pairs,
    wasmMs: wasm?.wall ?? null,
    webgpuWallMs: gpu.wall,
    webgpuGpuMs: gpu.gpu,
    engine: gpu.engine,
    gpairsPerSecond: gps,
    agreement: agree,
  });
  console.log(
    `| ${row.name}${note} | ${N} | ${wasm === null ? `skipped (> ${WASM_MAX_PAIRS.toExponential(0)} pairs)` : wasm.wall.toFixed(1)} | ${gpu.wall.toFixed(1)} | ${gpu.gpu === null ? '' : gpu.gpu.toFixed(2)} | ${row.op === 'sinkhorn' ? '' : gps.toPrecision(3)} | ${ratio} | ${agree} |`,
  );
}

// ---- Tiled large-D kernels against the plain kernel (configureWebGPU({ tiling: 'never' })) --------
// The blocking (codegen.ts TILED_BLOCKS) and the D from which 'auto' tiles (TILED_MIN_D = 32) are
// untuned guesses: these rows are what tunes them ('always' forces the tiled kernel at every D).
console.log('');
console.log(
  '| argKMin K = 10 | N = M | tiled GPU ms | plain GPU ms | tiled wall ms | plain wall ms | tiled / plain speed | indices differ |',
);
console.log('|---|---|---|---|---|---|---|---|');
report.tiled = [];
for (const D of [16, 64, 256, 784]) {
  const N = n(QUICK ? 4096 : 16384);
  const F = Vi(uniform(N * D, 11), D).sqDist(Vj(uniform(N * D, 12), D));
  const gpuMs = async () => (await webgpuStatus()).lastGpuTimeMs;
  const run = async () => {
    const r = await F.argKMin(10, 1, { engine: 'webgpu' });
    return { engine: r.engine, indices: r.data };
  };
  configureWebGPU({ tiling: 'always' }); // the tiled kernel at every D (and on CPU adapters)
  const tiled = await best(run, gpuMs);
  configureWebGPU({ tiling: 'never' });
  const plain = await best(run, gpuMs);
  configureWebGPU({ tiling: undefined });
  const fmt = (v) => (v === null ? '' : v.toFixed(2));
  const row = { D, N, tiledGpuMs: tiled.gpu, plainGpuMs: plain.gpu, tiledWallMs: tiled.wall, plainWallMs: plain.wall };
  report.tiled.push({ ...row, agreement: agreement(tiled.out, plain.out) });
  console.log(
    `| D = ${D} | ${N} | ${fmt(tiled.gpu)} | ${fmt(plain.gpu)} | ${tiled.wall.toFixed(1)} | ${plain.wall.toFixed(1)} | ${(plain.wall / tiled.wall).toFixed(2)}x | ${agreement(tiled.out, plain.out)} |`,
  );
}

// ---- 'auto' against both engines: is its choice the faster one? -----------------------------------
console.log('');
console.log("| Gaussian sum D = 3 | N = M | wasm ms | webgpu ms | 'auto' chose | faster |");
console.log('|---|---|---|---|---|---|');
report.autoChoices = [];
for (const N of [256, 1024, 2048, 4096, 16384].map(n)) {
  const F = Vi(uniform(N * 3, 21), 3)
    .sqDist(Vj(uniform(N * 3, 22), 3))
    .mul(-G)
    .exp();
  const run = (engine) => async () => ({ engine: (await F.sum(1, { engine })).engine });
  const w = await best(run('wasm'));
  const g = await best(run('webgpu'));
  const chose = (await F.sum(1)).engine;
  const faster = w.wall <= g.wall ? 'wasm' : 'webgpu';
  report.autoChoices.push({ N, wasmMs: w.wall, webgpuMs: g.wall, chose, faster });
  console.log(`| | ${N} | ${w.wall.toFixed(2)} | ${g.wall.toFixed(2)} | ${chose} | ${faster} |`);
}

// ---- Pipeline cache ------------------------------------------------------------------------------
{
  const x = Vi(uniform(3000, 4), 3);
  const y = Vj(uniform(3000, 5), 3);
  const F = x.sqDist(y).mul(-0.37).exp().mul(x.sub(y).sin().sum(-1));
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
  report.compile = { firstMs: first, laterMs: later, compiled: s.stats.compiles - before };
  console.log('');
  console.log(
    `First WebGPU call of a new formula (1000 x 1000): ${first.toFixed(1)} ms, later calls ${later.toFixed(1)} ms ` +
      `(${s.stats.compiles - before} shader compiled; ${s.cachedPipelines ?? '?'} pipelines cached; ${s.buffers.live} GPU buffers live, ${(s.buffers.cachedBytes / 2 ** 20).toFixed(1)} MiB cached).`,
  );
}
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(report, null, 2));
process.exit(0);
