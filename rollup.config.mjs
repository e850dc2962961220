// ESM bundles (the Wasm kernel is inlined as base64), usable from Node, browsers (including a plain
// <script type="module"> from a CDN), bundlers and edge runtimes. `lazytensor/geomloss` shares the
// core chunk with the main entry, so both see the same LazyTensor class and engines.
// The WebAssembly engine's worker is inlined too, as a string (scripts/worker-plugin.mjs).
import esbuild from 'rollup-plugin-esbuild';
import { workerSourcePlugin } from './scripts/worker-plugin.mjs';

export default {
  input: { index: 'src/index.ts', geomloss: 'src/geomloss/index.ts' },
  output: { dir: 'dist', format: 'es', sourcemap: true, entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
  plugins: [workerSourcePlugin(), esbuild({ target: 'es2022', minify: false, tsconfig: 'tsconfig.json' })],
};
