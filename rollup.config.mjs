// ESM bundles (the Wasm kernel is inlined as base64), usable from Node, browsers (including a plain
// <script type="module"> from a CDN), bundlers and edge runtimes. `lazytensor/geomloss` shares the
// core chunk with the main entry, so both see the same LazyTensor class and engines.
import esbuild from 'rollup-plugin-esbuild';

export default {
  input: { index: 'src/index.ts', geomloss: 'src/geomloss/index.ts' },
  output: { dir: 'dist', format: 'es', sourcemap: true, entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
  plugins: [esbuild({ target: 'es2022', minify: false, tsconfig: 'tsconfig.json' })],
};
