// Shared by the GPU tests: whether this machine has a WebGPU adapter (CI does: Dawn on SwiftShader,
// see .ci/setup-gpu.sh and vitest.config.ts), and a guard that every GPU result came from WebGPU.
import { expect } from 'vitest';
import { webgpuStatus } from '../../src/runtime/index.js';

const status = await webgpuStatus();

/** True when an adapter is available; GPU suites are skipped (describe.skipIf) otherwise. */
export const hasGpu = status.available;
export const adapterName = status.adapter
  ? `${status.adapter.vendor}/${status.adapter.architecture} (${status.adapter.description})`
  : `none: ${status.reason}`;

if (!hasGpu) console.warn(`GPU tests skipped: no WebGPU adapter (${status.reason})`);

/** Asserts that a result was computed by the WebGPU engine. */
export function expectGpu(result: { engine: string }, label = ''): void {
  expect(result.engine, `${label}: engine`).toBe('webgpu');
}
