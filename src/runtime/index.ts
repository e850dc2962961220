// Engine selection: installs the reduction executor the symbolic core calls.
//
// - 'wasm': the WebAssembly engine.
// - 'webgpu': the WebGPU engine for float32 plans. float64 plans always run on WebAssembly (WGSL has
//   no f64). No WebGPU (no navigator.gpu, no `webgpu` package in Node, no adapter, a refused adapter,
//   a failed device request) or a lost device: the reduction runs on WebAssembly, with one
//   console.warn per cause; never an unhandled rejection. The result's `engine` says what ran.
// - 'auto' (the default): WebGPU for float32 plans of at least AUTO_MIN_PAIRS pairs (N * M) when an
//   adapter is present and is not a fallback (CPU) adapter, else WebAssembly, silently.
//   Threshold: a GPU reduction pays a fixed ~0.3-1 ms (upload, dispatch, map/readback) even on a
//   discrete GPU; the WebAssembly engine does 2^22 = 4.2M pairs of a 3-D Gaussian sum in ~5-10 ms on
//   one core, so from there on the GPU wins by a margin on any real GPU, and below it the CPU is as
//   fast or faster. Fallback adapters (SwiftShader, lavapipe, WARP) emulate the GPU on the CPU and
//   are slower than the WebAssembly engine, so 'auto' skips them (configureWebGPU can allow them).
import { setReductionExecutor } from '../core/lazy-tensor.js';
import type { EngineChoice, ReductionOutput, ReductionPlan } from '../core/reduction.js';
import type { EngineName } from '../core/tensor.js';
import { throwIfAborted, type RunControl } from '../core/scheduling.js';
import { WasmEngine } from '../fallback/wasm-engine.js';
import type { BufferPoolStats } from '../gpu/buffer-pool.js';
import { GpuDeviceLostError, WebGPUEngine, type EngineLimits, type EngineStats } from '../gpu/engine.js';
import { detectFeatures, type RuntimeFeatures } from './features.js';
import { loadKernel } from './wasm-loader.js';
import { acquireDevice, type AdapterDescription, type GpuProvider } from './webgpu.js';

/** 'auto' uses WebGPU from this many pairs on (see the top of this file). */
export const AUTO_MIN_PAIRS = 2 ** 22;

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

// ---------------------------------------------------------------------------------------------------
// WebGPU

/** Options of the WebGPU engine and of 'auto'. */
export interface WebGPUOptions {
  /** 'auto' uses WebGPU from this many pairs (N * M) on; default AUTO_MIN_PAIRS = 2^22. */
  autoMinPairs?: number;
  /** Let 'auto' use fallback (CPU-emulated) adapters; default false. */
  autoUseFallbackAdapter?: boolean;
  /** Lowers the engine's limits (tests use it to force splitting); undefined keys keep the device's. */
  limits?: Partial<EngineLimits>;
  /** Workgroup size override (a power of two), for experiments. */
  workgroupSize?: number;
  /** Stage inner tiles in workgroup memory: 'auto' (on GPUs, not on CPU adapters), or forced. */
  staging?: 'auto' | 'always' | 'never';
}

interface GpuHandle {
  /** Rebuilt in place by configureWebGPU (same device). */
  engine: WebGPUEngine;
  readonly adapter: AdapterDescription;
  readonly timestampQuery: boolean;
  disposed: boolean;
  lost: boolean;
}

const options: Required<Pick<WebGPUOptions, 'autoMinPairs' | 'autoUseFallbackAdapter'>> & Pick<WebGPUOptions, 'limits' | 'workgroupSize' | 'staging'> = {
  autoMinPairs: AUTO_MIN_PAIRS,
  autoUseFallbackAdapter: false,
};
let provider: GpuProvider | null = null;
let gpu: Promise<GpuHandle | string> | null = null;
const warned = new Set<string>();

function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  console.warn(`lazytensor: ${message}`);
}

function engineOptions(cpuAdapter: boolean): ConstructorParameters<typeof WebGPUEngine>[1] {
  return { limits: options.limits, workgroupSize: options.workgroupSize, staging: options.staging, cpuAdapter };
}

/** The WebGPU engine, or why there is none. Never rejects. */
function getGpu(): Promise<GpuHandle | string> {
  if (gpu !== null) return gpu;
  const current: Promise<GpuHandle | string> = acquireDevice(provider).then((acquired) => {
    if (!acquired.ok) return acquired.reason;
    const { device, adapter, timestampQuery } = acquired.value;
    const handle: GpuHandle = {
      engine: new WebGPUEngine(device, engineOptions(adapter.isFallbackAdapter)),
      adapter,
      timestampQuery,
      disposed: false,
      lost: false,
    };
    void device.lost.then((info) => {
      handle.lost = true;
      handle.engine.markLost(`${info.reason}${info.message ? `: ${info.message}` : ''}`);
      // The next reduction requests a new device.
      const now = gpu;
      if (now !== null) {
        void now.then((h) => {
          if (h === handle && gpu === now) gpu = null;
        });
      }
      if (!handle.disposed) {
        // One warning per loss.
        console.warn(
          `lazytensor: the WebGPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''}); reductions run on WebAssembly until a new device is acquired`,
        );
      }
    });
    return handle;
  });
  gpu = current;
  return current;
}

async function runOnGpu(plan: ReductionPlan, explicit: boolean): Promise<ReductionOutput | null> {
  const handle = await getGpu();
  if (typeof handle === 'string') {
    if (explicit) warnOnce('unavailable', `WebGPU is unavailable (${handle}); reductions run on WebAssembly`);
    return null;
  }
  if (!explicit && handle.adapter.isFallbackAdapter && !options.autoUseFallbackAdapter) return null;
  try {
    return await handle.engine.reduce(plan);
  } catch (error) {
    if (error instanceof GpuDeviceLostError || handle.lost) {
      // The device.lost handler warns (once per loss) and drops the handle.
      if (gpu !== null && (await gpu) === handle) gpu = null;
      return null;
    }
    const message = error instanceof Error ? error.message : String(error);
    warnOnce(`error:${message.slice(0, 200)}`, `the WebGPU engine failed (${message}); this reduction runs on WebAssembly`);
    return null;
  }
}

async function execute(
  plan: ReductionPlan,
  choice: EngineChoice | undefined,
  control: RunControl = {},
): Promise<{ output: ReductionOutput; engine: EngineName }> {
  const engine = choice ?? defaultEngine;
  if (engine !== 'wasm' && plan.dtype === 'float32') {
    const explicit = engine === 'webgpu';
    if (explicit || plan.nOuter * plan.nInner >= options.autoMinPairs) {
      // A GPU reduction is one submission: the signal is checked before it and after the readback.
      throwIfAborted(control.signal);
      const output = await runOnGpu(plan, explicit);
      throwIfAborted(control.signal);
      if (output !== null) {
        control.onRows?.(plan.nOuter);
        return { output, engine: 'webgpu' };
      }
    }
  }
  const wasm = await getWasmEngine();
  return { output: await wasm.reduce(plan, control), engine: 'wasm' };
}

setReductionExecutor(execute);

/** Configures the WebGPU engine and 'auto'. Changing limits or the workgroup size rebuilds the engine
 *  (on the same device) at the next reduction. */
export function configureWebGPU(next: WebGPUOptions): void {
  if (next.autoMinPairs !== undefined) {
    if (!(next.autoMinPairs >= 0)) throw new RangeError(`configureWebGPU: autoMinPairs must be >= 0, got ${next.autoMinPairs}`);
    options.autoMinPairs = next.autoMinPairs;
  }
  if (next.autoUseFallbackAdapter !== undefined) options.autoUseFallbackAdapter = next.autoUseFallbackAdapter;
  if ('limits' in next || 'workgroupSize' in next || 'staging' in next) {
    if ('limits' in next) options.limits = next.limits;
    if ('workgroupSize' in next) options.workgroupSize = next.workgroupSize;
    if ('staging' in next) options.staging = next.staging;
    const current = gpu;
    if (current !== null) {
      gpu = current.then((h) => {
        if (typeof h === 'string' || h.lost) return h;
        h.engine.trim();
        h.engine = new WebGPUEngine(h.engine.device, engineOptions(h.adapter.isFallbackAdapter));
        return h;
      });
    }
  }
}

/** What the WebGPU engine runs on, for diagnostics and the bench. Requests the device if needed. */
export interface WebGPUStatus {
  readonly available: boolean;
  /** Why WebGPU is unavailable, or null. */
  readonly reason: string | null;
  readonly adapter: AdapterDescription | null;
  readonly timestampQuery: boolean;
  readonly limits: EngineLimits | null;
  /** GPU time of the last WebGPU reduction (timestamp queries), or null. */
  readonly lastGpuTimeMs: number | null;
  readonly stats: Readonly<EngineStats> | null;
  readonly buffers: BufferPoolStats | null;
  readonly features: RuntimeFeatures;
}

export async function webgpuStatus(): Promise<WebGPUStatus> {
  const h = await getGpu();
  const features = detectFeatures();
  if (typeof h === 'string') {
    return { available: false, reason: h, adapter: null, timestampQuery: false, limits: null, lastGpuTimeMs: null, stats: null, buffers: null, features };
  }
  return {
    available: !h.lost,
    reason: h.lost ? 'the device was lost' : null,
    adapter: h.adapter,
    timestampQuery: h.timestampQuery,
    limits: h.engine.limits,
    lastGpuTimeMs: h.engine.lastGpuTimeMs,
    stats: { ...h.engine.stats },
    buffers: h.engine.bufferStats(),
    features,
  };
}

/** Destroys the WebGPU device and its cached buffers and pipelines; a later WebGPU reduction
 *  acquires a new one. */
export async function releaseWebGPU(): Promise<void> {
  const current = gpu;
  gpu = null;
  if (current === null) return;
  const h = await current;
  if (typeof h === 'string') return;
  h.disposed = true;
  h.engine.trim(true);
  h.engine.device.destroy();
}

/** @internal Hooks for the tests: inject a GPU provider, reset state, reach the engine. */
export const webgpuTesting = {
  /** Replaces navigator.gpu / the `webgpu` package (null: default detection). Resets the engine. */
  async setProvider(next: GpuProvider | null): Promise<void> {
    await releaseWebGPU();
    provider = next;
    warned.clear();
  },
  /** Drops the engine and the warnings already given. */
  async reset(): Promise<void> {
    await releaseWebGPU();
    warned.clear();
  },
  /** The current engine, acquiring a device if needed. */
  async engine(): Promise<WebGPUEngine | null> {
    const h = await getGpu();
    return typeof h === 'string' ? null : h.engine;
  },
  /** Destroys the device as a driver reset would: the engine sees an unexpected loss. */
  async loseDevice(): Promise<void> {
    const h = await getGpu();
    if (typeof h === 'string') return;
    h.engine.device.destroy();
    await h.engine.device.lost;
    // Let the lost handler run.
    await Promise.resolve();
  },
};

// Until the package index exports webgpuStatus, tools (bench/gpu.mjs) find it here.
(globalThis as unknown as Record<symbol, unknown>)[Symbol.for('lazytensor.webgpu.status')] = webgpuStatus;
