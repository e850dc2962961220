import { defineConfig } from 'vitest/config';
// --- WebAssembly workers: serves 'virtual:lazytensor-wasm-worker' (the bundled worker source) -------
import { workerSourcePlugin } from './scripts/worker-plugin.mjs';
// --- end WebAssembly workers -------------------------------------------------------------------------

// --- GPU (WebGPU engine tests) ---------------------------------------------------------------------
// Dawn (npm `webgpu`) finds no Vulkan driver on a GPU-less machine unless pointed at one: use the
// SwiftShader driver shipped by Debian's chromium (.ci/setup-gpu.sh installs it). Must be set before
// the first requestAdapter(), i.e. here. A missing file only makes requestAdapter() resolve to null.
process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
// --- end GPU -----------------------------------------------------------------------------------------

export default defineConfig({
  // --- WebAssembly workers ---
  plugins: [workerSourcePlugin()],
  // --- end WebAssembly workers ---
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
