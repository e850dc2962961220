// The built bundle (dist/index.js, made by `npm run build` before the tests) is self-contained: it
// runs in Node, and it has no file-system or Node-only imports, so browsers, bundlers and edge
// runtimes load the same file (the Wasm kernel is inlined). (Node-only paths reach node: modules
// through dynamic imports of a variable: worker_threads, os, and fs for the Vulkan driver probe.)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const bundlePath = new URL('../dist/index.js', import.meta.url);

describe('the built package', () => {
  it('imports only its own chunks and reads no files', () => {
    for (const entry of ['index.js', 'geomloss.js']) {
      const source = readFileSync(new URL(`../dist/${entry}`, import.meta.url), 'utf8');
      const imports = [...source.matchAll(/^import\s.*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
      for (const spec of imports) expect(spec).toMatch(/^\.\/(chunks\/.*|index)\.js$/);
      for (const spec of imports) {
        const chunk = readFileSync(new URL(`../dist/${spec.slice(2)}`, import.meta.url), 'utf8');
        expect(chunk).not.toMatch(/require\(|from\s+['"]node:|\bfs\b\.|(from|import)\s*['"][^'"]*\.wasm['"]/);
      }
    }
  });

  it('runs GeomLoss from dist/geomloss.js with the same core as dist/index.js', async () => {
    const gl = (await import(
      /* @vite-ignore */ new URL('../dist/geomloss.js', import.meta.url).href
    )) as typeof import('../src/geomloss/index.js');
    const loss = new gl.SamplesLoss({ loss: 'sinkhorn', p: 2, blur: 0.1 });
    const value = await loss.value(
      [
        [0, 0],
        [1, 0],
      ],
      [
        [0, 1],
        [1, 1],
      ],
    );
    expect(value).toBeGreaterThan(0.4);
    expect(value).toBeLessThan(0.55); // W2^2 / 2 = 0.5, minus the entropic bias
  });

  it('runs a reduction from dist/index.js', async () => {
    const lt = (await import(/* @vite-ignore */ bundlePath.href)) as typeof import('../src/index.js');
    const x = lt.Vi(new Float32Array([0, 0, 1, 1]), 2);
    const y = lt.Vj(new Float32Array([0, 1, 1, 0, 2, 2]), 2);
    const s = await x.sqDist(y).sum(1);
    expect(Array.from(s.data)).toEqual([1 + 1 + 8, 1 + 1 + 2]);
    expect(s.engine).toBe('wasm');
  });

  it('ships type declarations', () => {
    // Bundled: the public API only (scripts/runtime-matrix.mjs type-checks strict consumers against it).
    const types = readFileSync(new URL('../dist/index.d.ts', import.meta.url), 'utf8');
    expect(types).toMatch(/export \{[^}]*\bsetWasmThreads\b[^}]*\bwasmStatus\b/);
    expect(
      readFileSync(
        new URL('../dist/chunks/' + types.match(/from '\.\/chunks\/([^']+)\.js'/)![1] + '.d.ts', import.meta.url),
        'utf8',
      ),
    ).toMatch(/\bVi as\b/);
    for (const file of ['index.d.ts', 'geomloss.d.ts', 'cjs/index.d.cts', 'cjs/geomloss.d.cts']) {
      const text = readFileSync(new URL(`../dist/${file}`, import.meta.url), 'utf8');
      expect(text, file).not.toMatch(/\bGPU[A-Z]\w*|\bTransferable\b|\bWorkerPool\b|\bWebGPUEngine\b/);
    }
  });

  it('a bundle of Vi/Vj/sum through the package exports (sideEffects) leaves GeomLoss out and still runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lazytensor-shake-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(fileURLToPath(new URL('..', import.meta.url)), join(dir, 'node_modules/lazytensor'), 'dir');
      writeFileSync(
        join(dir, 'entry.mjs'),
        `import { Vi, Vj } from 'lazytensor';
        const s = await Vi(new Float64Array([0, 0, 1, 1]), 2).sqDist(Vj(new Float64Array([0, 1, 1, 0, 2, 2]), 2)).sum(1);
        console.log(JSON.stringify(Array.from(s.data)));`,
      );
      const out = join(dir, 'bundle.mjs');
      await build({
        entryPoints: [join(dir, 'entry.mjs')],
        bundle: true,
        minify: true,
        format: 'esm',
        platform: 'node',
        target: 'es2022',
        outfile: out,
        logLevel: 'silent',
      });
      const code = readFileSync(out, 'utf8');
      expect(code).not.toMatch(/SamplesLoss|GeomLossError|sinkhorn/i);
      const run = spawnSync(process.execPath, [out], { encoding: 'utf8', timeout: 60_000 });
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toEqual([1 + 1 + 8, 1 + 1 + 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
