// The package's builds (npm run build: scripts/build-wasm.mjs, then tsc for declarations, then this):
// - dist/index.js, dist/geomloss.js (+ dist/chunks/): ESM for Node, browsers (a <script
//   type="module">), bundlers and Deno. The Wasm kernel is inlined as base64, the worker as a string
//   (scripts/worker-plugin.mjs). `lazytensor/geomloss` shares the core chunk with the main entry, so
//   both see the same LazyTensor class and engines.
// - dist/cjs/*.cjs: the same as CommonJS, for require() (Node, Bun).
// - dist/edge/*.js: ESM for the `workerd` export condition (Cloudflare Workers, wrangler; and other
//   runtimes that cannot compile Wasm from bytes): `import kernel from '../kernel.wasm'` instead of the
//   base64 copy, no inlined worker (no threads there).
// - dist/lazytensor.global.js: an IIFE for a classic <script src>, global `lazytensor` (with
//   `lazytensor.geomloss`).
// - dist/worker.js: the engine's worker as a file, for pages with `worker-src 'self'`
//   (setWasmWorkerUrl); dist/kernel.wasm: the kernel as a file.
// - dist/index.d.ts, dist/geomloss.d.ts (+ .d.cts copies in dist/cjs/): the public API's declarations
//   only, bundled by rollup-plugin-dts from tsc's output (dist/types/, deleted afterwards).
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import esbuild from 'rollup-plugin-esbuild';
import { dts } from 'rollup-plugin-dts';
import { bundleWorker, workerSourcePlugin } from './scripts/worker-plugin.mjs';

const root = dirname(fileURLToPath(import.meta.url));
const dist = resolve(root, 'dist');
const input = { index: 'src/index.ts', geomloss: 'src/geomloss/index.ts' };
const ts = () => esbuild({ target: 'es2022', minify: false, tsconfig: 'tsconfig.json' });
const KERNEL_FILE = resolve(dist, 'kernel.wasm');

/** Ships build/kernel.wasm as dist/kernel.wasm and the worker as dist/worker.js. */
function assetsPlugin() {
  return {
    name: 'lazytensor-assets',
    async generateBundle() {
      mkdirSync(dist, { recursive: true });
      copyFileSync(resolve(root, 'build/kernel.wasm'), KERNEL_FILE);
      const { code } = await bundleWorker();
      writeFileSync(
        resolve(dist, 'worker.js'),
        `// lazytensor WebAssembly engine worker (classic script): setWasmWorkerUrl()\n${code}`,
      );
    },
  };
}

/** The edge build: the kernel from a .wasm module import, no inlined base64 nor worker source. */
function edgePlugin() {
  const GENERATED = /wasm-binary\.generated(\.js|\.ts)?$/;
  return {
    name: 'lazytensor-edge',
    resolveId(id) {
      if (GENERATED.test(id)) return '\0lazytensor-edge-kernel';
      if (id === 'virtual:lazytensor-wasm-worker') return '\0lazytensor-edge-worker';
      if (id === KERNEL_FILE) return { id: KERNEL_FILE, external: true };
      return null;
    },
    load(id) {
      if (id === '\0lazytensor-edge-kernel') {
        return `import kernel from ${JSON.stringify(KERNEL_FILE)};\nexport const KERNEL_WASM_BASE64 = '';\nexport const KERNEL_RELAXED_WASM_BASE64 = '';\nexport const KERNEL_WASM_MODULE = kernel;\n`;
      }
      if (id === '\0lazytensor-edge-worker') return 'export default "";\n';
      return null;
    },
  };
}

/** Copies the bundled declarations to dist/cjs/*.d.cts (for the `require` condition), with their
 *  relative imports pointing at .cjs names (which TypeScript maps to the .d.cts files). */
function ctsCopyPlugin() {
  return {
    name: 'lazytensor-d-cts',
    writeBundle() {
      const walk = (dir) =>
        readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
        );
      for (const file of walk(dist)) {
        if (!file.endsWith('.d.ts') || file.includes(`${join(dist, 'types')}`) || file.includes(join(dist, 'cjs')))
          continue;
        const rel = file.slice(dist.length + 1);
        const out = resolve(dist, 'cjs', rel.replace(/\.d\.ts$/, '.d.cts'));
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, readFileSync(file, 'utf8').replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.js(['"])/g, '$1.cjs$2'));
      }
      rmSync(resolve(dist, 'types'), { recursive: true, force: true });
    },
  };
}

const esm = {
  input,
  output: {
    dir: 'dist',
    format: 'es',
    sourcemap: true,
    sourcemapExcludeSources: true,
    entryFileNames: '[name].js',
    chunkFileNames: 'chunks/[name]-[hash].js',
  },
  plugins: [workerSourcePlugin(), ts(), assetsPlugin()],
};

const cjs = {
  input,
  output: {
    dir: 'dist/cjs',
    format: 'cjs',
    sourcemap: true,
    sourcemapExcludeSources: true,
    exports: 'named',
    entryFileNames: '[name].cjs',
    chunkFileNames: 'chunks/[name]-[hash].cjs',
  },
  plugins: [workerSourcePlugin(), ts()],
};

const edge = {
  input,
  output: {
    // Flat (no chunks/ folder), so that every file reaches the kernel as '../kernel.wasm'.
    hoistTransitiveImports: false,
    paths: { [KERNEL_FILE]: '../kernel.wasm' },
    dir: 'dist/edge',
    format: 'es',
    sourcemap: true,
    sourcemapExcludeSources: true,
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
  },
  plugins: [edgePlugin(), ts()],
};

const global = {
  input: 'src/global.ts',
  output: {
    file: 'dist/lazytensor.global.js',
    format: 'iife',
    name: 'lazytensor',
    sourcemap: true,
    sourcemapExcludeSources: true,
  },
  plugins: [workerSourcePlugin(), esbuild({ target: 'es2022', minify: true, tsconfig: 'tsconfig.json' })],
};

const types = {
  input: { index: 'dist/types/src/index.d.ts', geomloss: 'dist/types/src/geomloss/index.d.ts' },
  output: { dir: 'dist', format: 'es', entryFileNames: '[name].d.ts', chunkFileNames: 'chunks/[name]-[hash].d.ts' },
  plugins: [dts({ respectExternal: false }), ctsCopyPlugin()],
};

export default [esm, cjs, edge, global, types];
