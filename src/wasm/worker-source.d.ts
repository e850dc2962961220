// The bundled source of src/wasm/worker-entry.ts, provided at build time by the plugin in
// scripts/worker-plugin.mjs (rollup.config.mjs, vitest.config.ts).
declare module 'virtual:lazytensor-wasm-worker' {
  const source: string;
  export default source;
}
