// The built package in a real browser: headless Chromium (Debian's package, .ci/setup-gpu.sh) loads
// dist/index.js from a local page and runs reductions on WebGPU (SwiftShader adapter, enabled by
// --enable-unsafe-webgpu) and on WebAssembly; a page whose navigator.gpu is deleted still works.
// Never downloads a browser: skipped when /usr/bin/chromium, playwright-core or dist/ is missing.
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, chromiumReady, launchChromium } from '../helpers/chromium.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ready = chromiumReady;
if (!ready) console.warn(`browser tests skipped: ${chromiumMissing}`);

const PAGE = '<!doctype html><meta charset="utf-8"><title>lazytensor</title><body>lazytensor test page</body>';
const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.map': 'application/json',
  '.html': 'text/html',
};

/** Serves the repository read-only on 127.0.0.1, and an empty page at /. */
function serve(): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (pathname === '/' || pathname === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      return;
    }
    if (pathname === '/__test/run.mjs') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(RUN_MJS);
      return;
    }
    const file = path.join(root, pathname);
    if (!file.startsWith(root + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' })
      .end(readFileSync(file));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({ server, url: `http://127.0.0.1:${port}/` });
    }),
  );
}

interface PageResult {
  adapter: string | null;
  sharedArrayBuffer: boolean;
  crossOriginIsolated: boolean;
  hasNavigatorGpu: boolean;
  gaussian: { engine: string; maxRelErr: number }[];
  lse: { engine: string; maxAbsErr: number }[];
  knn: { engine: string; mismatches: number }[];
  argMinAgree: boolean;
  warnings: string[];
}

/** The page's module (plain JavaScript, served at /__test/run.mjs): reductions on both engines,
 *  checked in the page against a plain-JavaScript float64 reference. */
const RUN_MJS = String.raw`
export async function run() {
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => { warnings.push(args.map(String).join(' ')); warn(...args); };
  const lt = await import('/dist/index.js');
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
  const N = 400, M = 700;
  const xs = new Float32Array(N * 3).map(() => random());
  const ys = new Float32Array(M * 3).map(() => random());
  const bs = new Float32Array(M).map(() => random());
  const d2 = (i, j) => { let s = 0; for (let k = 0; k < 3; k++) s += (xs[i * 3 + k] - ys[j * 3 + k]) ** 2; return s; };
  const x = lt.Vi(xs, 3), y = lt.Vj(ys, 3), b = lt.Vj(bs, 1);
  const result = {
    adapter: null,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hasNavigatorGpu: navigator.gpu != null,
    gaussian: [], lse: [], knn: [], argMinAgree: false, warnings,
  };
  if (navigator.gpu) {
    const a = await navigator.gpu.requestAdapter();
    result.adapter = a && a.info ? a.info.vendor + '/' + a.info.architecture : null;
  }
  const argMins = [];
  for (const engine of ['webgpu', 'wasm']) {
    const s = await x.sqDist(y).mul(-10).exp().mul(b).sum(1, { engine });
    let maxRelErr = 0;
    for (let i = 0; i < N; i++) {
      let want = 0;
      for (let j = 0; j < M; j++) want += Math.exp(-10 * d2(i, j)) * bs[j];
      maxRelErr = Math.max(maxRelErr, Math.abs(s.data[i] - want) / want);
    }
    result.gaussian.push({ engine: s.engine, maxRelErr });
    const l = await x.sqDist(y).mul(-10).logSumExp(0, { engine });
    let maxAbsErr = 0;
    for (let j = 0; j < M; j++) {
      let m = -Infinity;
      for (let i = 0; i < N; i++) m = Math.max(m, -10 * d2(i, j));
      let acc = 0;
      for (let i = 0; i < N; i++) acc += Math.exp(-10 * d2(i, j) - m);
      maxAbsErr = Math.max(maxAbsErr, Math.abs(l.data[j] - (m + Math.log(acc))));
    }
    result.lse.push({ engine: l.engine, maxAbsErr });
    const k = await x.sqDist(y).argKMin(5, 1, { engine });
    let mismatches = 0;
    for (let i = 0; i < N; i++) {
      const order = Array.from({ length: M }, (_, j) => j).sort((p, q) => d2(i, p) - d2(i, q) || p - q);
      for (let t = 0; t < 5; t++) {
        const got = k.data[i * 5 + t];
        if (got !== order[t] && Math.abs(d2(i, got) - d2(i, order[t])) > 1e-6) mismatches++;
      }
    }
    result.knn.push({ engine: k.engine, mismatches });
    argMins.push(Array.from((await x.sqDist(y).argMin(0, { engine })).data));
  }
  result.argMinAgree = argMins[0].every((v, q) => v === argMins[1][q]);
  return result;
}
`;

const RUN = "import('/__test/run.mjs').then((m) => m.run())";

describe.skipIf(!ready)('in headless Chromium (real browser)', () => {
  let server: http.Server;
  let url: string;
  let browser: import('playwright-core').Browser;

  beforeAll(async () => {
    ({ server, url } = await serve());
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
  });

  it('runs reductions on WebGPU (SwiftShader) and on WebAssembly from dist/index.js', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    const r = (await page.evaluate(RUN)) as PageResult;
    await page.close();
    expect(errors).toEqual([]);
    expect(r.hasNavigatorGpu).toBe(true);
    expect(r.adapter).toMatch(/swiftshader/i);
    // No cross-origin isolation on this page: no SharedArrayBuffer, and it does not matter.
    expect(r.crossOriginIsolated).toBe(false);
    expect(r.gaussian.map((g) => g.engine)).toEqual(['webgpu', 'wasm']);
    for (const g of r.gaussian) expect(g.maxRelErr).toBeLessThan(1e-5);
    expect(r.lse.map((g) => g.engine)).toEqual(['webgpu', 'wasm']);
    for (const g of r.lse) expect(g.maxAbsErr).toBeLessThan(1e-4);
    for (const k of r.knn) expect(k.mismatches).toBe(0);
    expect(r.argMinAgree).toBe(true);
    expect(r.warnings).toEqual([]);
  });

  it('a page whose navigator.gpu is deleted still works, on WebAssembly with one warning', async () => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      delete (Navigator.prototype as { gpu?: unknown }).gpu;
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    const r = (await page.evaluate(RUN)) as PageResult;
    await context.close();
    expect(errors).toEqual([]);
    expect(r.hasNavigatorGpu).toBe(false);
    expect(r.gaussian.map((g) => g.engine)).toEqual(['wasm', 'wasm']);
    for (const g of r.gaussian) expect(g.maxRelErr).toBeLessThan(1e-5);
    for (const k of r.knn) expect(k.mismatches).toBe(0);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/navigator\.gpu is absent/);
  });
});
