#!/usr/bin/env node
// Bundle sizes of typical uses of the built package (dist/, npm run build), measured with esbuild
// (minified, ESM, browser platform) through the package's exports, as an app's bundler sees them:
//   node scripts/bundle-sizes.mjs [--json]
// Rows: Vi/Vj/sum only; + GeomLoss; the workerd entry (conditions workerd + worker, kernel.wasm kept as
// a module); the script-tag file as shipped. Sizes in KiB, raw and gzip (level 9). The Wasm kernel
// (inlined as base64 in the first two) is counted in.
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(os.tmpdir(), 'lazytensor-sizes-'));
mkdirSync(join(dir, 'node_modules'));
symlinkSync(root, join(dir, 'node_modules/lazytensor'), 'dir');

const cases = {
  'Vi/Vj/sum': `import { Vi, Vj } from 'lazytensor'; export const f = (x, y) => Vi(x, 3).sqDist(Vj(y, 3)).sum(1);`,
  'Vi/Vj/sum + SamplesLoss': `import { Vi, Vj } from 'lazytensor'; import { SamplesLoss } from 'lazytensor/geomloss';
    export const f = (x, y) => Vi(x, 3).sqDist(Vj(y, 3)).sum(1); export const g = () => new SamplesLoss();`,
};
const kib = (n) => (n / 1024).toFixed(1);
const rows = [];
async function measure(name, contents, options = {}) {
  writeFileSync(join(dir, 'entry.mjs'), contents);
  const out = await build({
    entryPoints: [join(dir, 'entry.mjs')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    ...options,
  });
  const code = out.outputFiles[0].contents;
  const text = Buffer.from(code).toString('utf8');
  rows.push({
    name,
    bytes: code.length,
    gzip: gzipSync(code, { level: 9 }).length,
    geomloss: text.includes('SamplesLoss'),
  });
}
for (const [name, contents] of Object.entries(cases)) await measure(name, contents);
await measure('workerd entry (+ SamplesLoss), kernel.wasm apart', cases['Vi/Vj/sum + SamplesLoss'], {
  platform: 'neutral',
  conditions: ['workerd', 'worker', 'browser'],
  mainFields: ['browser', 'module', 'main'],
  plugins: [
    { name: 'wasm', setup: (b) => b.onResolve({ filter: /\.wasm$/ }, (a) => ({ path: a.path, external: true })) },
  ],
});
const global = readFileSync(join(root, 'dist/lazytensor.global.js'));
rows.push({
  name: 'dist/lazytensor.global.js (script tag, all)',
  bytes: global.length,
  gzip: gzipSync(global, { level: 9 }).length,
  geomloss: true,
});
const wasm = readFileSync(join(root, 'dist/kernel.wasm'));
rows.push({ name: 'dist/kernel.wasm', bytes: wasm.length, gzip: gzipSync(wasm, { level: 9 }).length, geomloss: false });
rmSync(dir, { recursive: true, force: true });

if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
else {
  console.log('| bundle | min | min + gzip | GeomLoss in it |\n| --- | ---: | ---: | --- |');
  for (const r of rows)
    console.log(`| ${r.name} | ${kib(r.bytes)} KiB | ${kib(r.gzip)} KiB | ${r.geomloss ? 'yes' : 'no'} |`);
}
