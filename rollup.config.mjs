// One self-contained ESM bundle (the Wasm kernel is inlined as base64), usable from Node, browsers
// (including a plain <script type="module"> from a CDN), bundlers and edge runtimes.
import esbuild from 'rollup-plugin-esbuild';

export default {
  input: 'src/index.ts',
  output: { file: 'dist/index.js', format: 'es', sourcemap: true },
  plugins: [esbuild({ target: 'es2022', minify: false, tsconfig: 'tsconfig.json' })],
};
