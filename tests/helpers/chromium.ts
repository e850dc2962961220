// Headless Chromium for the browser tests (tests/browser/, tests/demo/web-demo.test.ts): Debian's
// package (.ci/setup-gpu.sh) driven by playwright-core. Never downloads a browser: `chromiumReady` is
// false (and the suites skip) without playwright-core, the executable or the built dist/.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
// @ts-expect-error: a plain .mjs module without declarations
import { CHROMIUM_FLAGS } from '../../scripts/chromium-flags.mjs';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The Chromium executable: $CHROMIUM_PATH, else Debian's. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let playwright: typeof import('playwright-core') | null = null;
try {
  playwright = await import('playwright-core');
} catch {
  playwright = null;
}

/** Whether playwright-core, the executable and dist/index.js (npm run build) are all there. */
export const chromiumReady =
  playwright !== null && existsSync(CHROMIUM) && existsSync(path.join(repoRoot, 'dist/index.js'));

/** Why the browser suites skip (for one console line), or null when they run. */
export const chromiumMissing = chromiumReady
  ? null
  : 'needs playwright-core, /usr/bin/chromium and dist/ (npm run build)';

/** Launches headless Chromium with WebGPU enabled (--enable-unsafe-webgpu: the SwiftShader adapter on a
 *  machine without a GPU) and the repository's quiet flags (scripts/chromium-flags.mjs). */
export function launchChromium(): Promise<Browser> {
  if (playwright === null) throw new Error(`launchChromium: ${chromiumMissing}`);
  return playwright.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--enable-unsafe-webgpu', ...(CHROMIUM_FLAGS as readonly string[])],
  });
}
