// Engine selection: installs the reduction executor the symbolic core calls.
import { setReductionExecutor } from '../core/lazy-tensor.js';
import type { EngineChoice, ReductionOutput, ReductionPlan } from '../core/reduction.js';
import type { EngineName } from '../core/tensor.js';
import { WasmEngine } from '../fallback/wasm-engine.js';
import { loadKernel } from './wasm-loader.js';

let defaultEngine: EngineChoice = 'auto';

/** Sets the engine used by reductions that do not pass `{ engine }`. */
export function setDefaultEngine(engine: EngineChoice): void {
  if (engine !== 'auto' && engine !== 'wasm' && engine !== 'webgpu') {
    throw new TypeError(`setDefaultEngine: engine must be 'auto', 'wasm' or 'webgpu', got ${String(engine)}`);
  }
  defaultEngine = engine;
}

/** The engine used by reductions that do not pass `{ engine }`. */
export function getDefaultEngine(): EngineChoice {
  return defaultEngine;
}

let wasmEngine: Promise<WasmEngine> | null = null;

function getWasmEngine(): Promise<WasmEngine> {
  wasmEngine ??= loadKernel().then((k) => new WasmEngine(k));
  return wasmEngine;
}

async function execute(
  plan: ReductionPlan,
  choice: EngineChoice | undefined,
): Promise<{ output: ReductionOutput; engine: EngineName }> {
  const engine = choice ?? defaultEngine;
  switch (engine) {
    case 'webgpu':
      throw new Error(`${plan.kind}: the WebGPU engine is not available in this build; use { engine: 'wasm' } or 'auto'`);
    case 'auto':
    case 'wasm': {
      const wasm = await getWasmEngine();
      return { output: await wasm.reduce(plan), engine: 'wasm' };
    }
  }
}

setReductionExecutor(execute);
