// Flags of every headless Chromium this repository launches (the runtime matrix's browser rows,
// tests/helpers/chromium.ts): no sandbox (CI runs as root) and none of the background traffic a fresh
// profile starts (component updates, sync, QUIC probes), so that a page's network and console hold
// only what the page did.
export const CHROMIUM_FLAGS = Object.freeze([
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
]);
