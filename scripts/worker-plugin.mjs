// Inlines the WebAssembly engine's worker (src/wasm/worker-entry.ts) as a string: bundles it with
// esbuild into one self-contained script and serves it as the module 'virtual:lazytensor-wasm-worker'
// (`export default "<source>"`). The same object is a Rollup plugin (rollup.config.mjs) and a Vite
// plugin (vitest.config.ts); esbuildWorkerPlugin() does the same for esbuild builds (tests).
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WORKER_MODULE_ID = 'virtual:lazytensor-wasm-worker';
const RESOLVED_ID = '\0' + WORKER_MODULE_ID;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WORKER_ENTRY = resolve(root, 'src/wasm/worker-entry.ts');

/** The worker's source and the files it was built from. */
export async function bundleWorker() {
  const result = await build({
    entryPoints: [WORKER_ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'neutral',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].text;
  const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(root, p));
  return { code, inputs };
}

/** Rollup / Vite plugin. */
export function workerSourcePlugin() {
  return {
    name: 'lazytensor-wasm-worker',
    resolveId(id) {
      return id === WORKER_MODULE_ID ? RESOLVED_ID : null;
    },
    async load(id) {
      if (id !== RESOLVED_ID) return null;
      const { code, inputs } = await bundleWorker();
      for (const file of inputs) this.addWatchFile?.(file);
      return `export default ${JSON.stringify(code)};\n`;
    },
  };
}

/** esbuild plugin. */
export function esbuildWorkerPlugin() {
  return {
    name: 'lazytensor-wasm-worker',
    setup(b) {
      b.onResolve({ filter: /^virtual:lazytensor-wasm-worker$/ }, () => ({
        path: WORKER_MODULE_ID,
        namespace: 'lazytensor-worker',
      }));
      b.onLoad({ filter: /.*/, namespace: 'lazytensor-worker' }, async () => {
        const { code } = await bundleWorker();
        return { contents: `export default ${JSON.stringify(code)};\n`, loader: 'js' };
      });
    },
  };
}
