// Platform detection and engine selection: installs the reduction executor the symbolic core calls.
// The engines (src/wasm, src/gpu) implement the core's Engine interface (src/core/engine.ts); this
// module only finds out which of them this platform offers (features.ts, webgpu.ts), picks one per plan
// by the rules below, and falls back to WebAssembly when the choice cannot run.
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
import { InputError } from '../core/errors.js';
import { setReductionExecutor } from '../core/lazy-tensor.js';
import type { EngineChoice, ReductionOutput, ReductionPlan } from '../core/reduction.js';
import type { EngineName } from '../core/tensor.js';
import type { Engine } from '../core/engine.js';
import type { RunControl } from '../core/scheduling.js';
import type { BufferPoolStats } from '../gpu/buffer-pool.js';
import {
  GpuDeviceLostError,
  WebGPUEngine,
  webgpuPlanUnsupported,
  type EngineLimits,
  type EngineStats,
} from '../gpu/engine.js';
import { detectFeatures, type RuntimeFeatures } from './features.js';
import { getWasmEngine } from '../wasm/wasm-loader.js';
import { acquireDevice, type AdapterDescription, type GpuProvider } from './webgpu.js';

/** 'auto' uses WebGPU from this many pairs on (see the top of this file). */
export const AUTO_MIN_PAIRS = 2 ** 22;

let defaultEngine: EngineChoice = 'auto';

/** Sets the engine used by reductions that do not pass `{ engine }`. */
export function setDefaultEngine(engine: EngineChoice): void {
  if (engine !== 'auto' && engine !== 'wasm' && engine !== 'webgpu') {
    throw new InputError(`setDefaultEngine: engine must be 'auto', 'wasm' or 'webgpu', got ${String(engine)}`);
  }
  defaultEngine = engine;
}

/** The engine used by reductions that do not pass `{ engine }`. */
export function getDefaultEngine(): EngineChoice {
  return defaultEngine;
}

// ---------------------------------------------------------------------------------------------------
// WebGPU

/** Options of the WebGPU engine and of 'auto' (see configureWebGPU for how each is validated). */
export interface WebGPUOptions {
  /** 'auto' uses WebGPU from this many pairs (N * M) on: an integer >= 0, or Infinity (never);
   *  default AUTO_MIN_PAIRS = 2^22. */
  autoMinPairs?: number;
  /** Let 'auto' use fallback (CPU-emulated) adapters; default false. */
  autoUseFallbackAdapter?: boolean;
  /** Lowers the engine's limits (tests use it to force splitting): positive integers, each only
   *  lowering the device's value; undefined keys keep the device's. `undefined` for the whole
   *  option restores the device's limits. */
  limits?: Partial<Omit<EngineLimits, 'minUniformBufferOffsetAlignment'>>;
  /** Workgroup size override, a power of two from 1 to 1024 (capped by the adapter), for
   *  experiments; `undefined` restores the engine's choice. */
  workgroupSize?: number;
  /** Stage inner tiles in workgroup memory: 'auto' (on GPUs, not on CPU adapters), 'always' or
   *  'never'; `undefined` restores 'auto'. */
  staging?: 'auto' | 'always' | 'never';
  /** Compiled pipelines kept per device, least recently used evicted first: an integer >= 1;
   *  default 64. */
  pipelineCacheSize?: number;
  /** Bytes of free GPU buffers kept for reuse, oldest destroyed first: an integer >= 0; default
   *  256 MiB. */
  bufferCacheBytes?: number;
}

const ENGINE_LIMIT_KEYS: readonly string[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupStorageSize',
  'maxPairsPerDispatch',
] satisfies readonly Exclude<keyof EngineLimits, 'minUniformBufferOffsetAlignment'>[];

const OPTION_KEYS: readonly (keyof WebGPUOptions)[] = [
  'autoMinPairs',
  'autoUseFallbackAdapter',
  'limits',
  'workgroupSize',
  'staging',
  'pipelineCacheSize',
  'bufferCacheBytes',
];

const describeValue = (v: unknown): string =>
  typeof v === 'string'
    ? `'${v}'`
    : typeof v === 'bigint'
      ? `${v}n`
      : Array.isArray(v)
        ? 'an array'
        : v === null
          ? 'null'
          : typeof v === 'object' || typeof v === 'function'
            ? `a ${typeof v}`
            : String(v);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

/** A whole number in [min, max] (Infinity allowed only where `infinite`), else a named error. */
function checkCount(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER, infinite = false): number {
  if (typeof v !== 'number') throw new InputError(`configureWebGPU: ${name} must be a number, got ${describeValue(v)}`);
  if (infinite && v === Infinity) return v;
  if (!Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new InputError(
      `configureWebGPU: ${name} must be an integer ${range}${infinite ? ' (or Infinity)' : ''}, got ${v}`,
    );
  }
  return v;
}

/** Validates every option before any is applied: unknown keys, wrong types and values out of
 *  range are InputErrors, each naming the option. */
function validateOptions(next: unknown): WebGPUOptions {
  if (!isPlainObject(next))
    throw new InputError(`configureWebGPU: the options must be an object, got ${describeValue(next)}`);
  for (const key of Object.keys(next)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new InputError(`configureWebGPU: unknown option '${key}' (known: ${OPTION_KEYS.join(', ')})`);
    }
  }
  const o = next as { [K in keyof WebGPUOptions]?: unknown };
  if (o.autoMinPairs !== undefined) checkCount('autoMinPairs', o.autoMinPairs, 0, Number.MAX_SAFE_INTEGER, true);
  if (o.autoUseFallbackAdapter !== undefined && typeof o.autoUseFallbackAdapter !== 'boolean') {
    throw new InputError(
      `configureWebGPU: autoUseFallbackAdapter must be a boolean, got ${describeValue(o.autoUseFallbackAdapter)}`,
    );
  }
  if (o.limits !== undefined) {
    if (!isPlainObject(o.limits))
      throw new InputError(`configureWebGPU: limits must be an object, got ${describeValue(o.limits)}`);
    for (const [key, value] of Object.entries(o.limits)) {
      if (!ENGINE_LIMIT_KEYS.includes(key)) {
        throw new InputError(`configureWebGPU: unknown limit 'limits.${key}' (known: ${ENGINE_LIMIT_KEYS.join(', ')})`);
      }
      if (value !== undefined) checkCount(`limits.${key}`, value, 1);
    }
  }
  if (o.workgroupSize !== undefined) {
    const w = checkCount('workgroupSize', o.workgroupSize, 1, 1024);
    if ((w & (w - 1)) !== 0)
      throw new InputError(`configureWebGPU: workgroupSize must be a power of two from 1 to 1024, got ${w}`);
  }
  if (o.staging !== undefined && o.staging !== 'auto' && o.staging !== 'always' && o.staging !== 'never') {
    throw new InputError(
      `configureWebGPU: staging must be 'auto', 'always' or 'never', got ${describeValue(o.staging)}`,
    );
  }
  if (o.pipelineCacheSize !== undefined) checkCount('pipelineCacheSize', o.pipelineCacheSize, 1);
  if (o.bufferCacheBytes !== undefined) checkCount('bufferCacheBytes', o.bufferCacheBytes, 0);
  return next as WebGPUOptions;
}

interface GpuHandle {
  /** Rebuilt in place by configureWebGPU (same device). */
  engine: WebGPUEngine;
  readonly adapter: AdapterDescription;
  readonly timestampQuery: boolean;
  disposed: boolean;
  lost: boolean;
}

const options: Required<Pick<WebGPUOptions, 'autoMinPairs' | 'autoUseFallbackAdapter'>> &
  Pick<WebGPUOptions, 'limits' | 'workgroupSize' | 'staging' | 'pipelineCacheSize' | 'bufferCacheBytes'> = {
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
  return {
    limits: options.limits,
    workgroupSize: options.workgroupSize,
    staging: options.staging,
    pipelineCacheSize: options.pipelineCacheSize,
    bufferCacheBytes: options.bufferCacheBytes,
    cpuAdapter,
  };
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

/** The WebGPU engine for this plan, or null (WebAssembly runs it): no device (warned once when the
 *  caller asked for WebGPU), or a fallback adapter that 'auto' skips. */
async function gpuEngineFor(explicit: boolean): Promise<GpuHandle | null> {
  const handle = await getGpu();
  if (typeof handle === 'string') {
    if (explicit) warnOnce('unavailable', `WebGPU is unavailable (${handle}); reductions run on WebAssembly`);
    return null;
  }
  if (!explicit && handle.adapter.isFallbackAdapter && !options.autoUseFallbackAdapter) return null;
  return handle;
}

/** Runs the plan on the WebGPU engine, or returns null when it failed in a way WebAssembly can
 *  recover from (a lost device, a driver error: warned once per cause). Aborts propagate. */
async function runOnGpu(handle: GpuHandle, plan: ReductionPlan, control: RunControl): Promise<ReductionOutput | null> {
  try {
    return await handle.engine.reduce(plan, control);
  } catch (error) {
    if (control.signal?.aborted === true) throw error;
    if (error instanceof GpuDeviceLostError || handle.lost) {
      // The device.lost handler warns (once per loss) and drops the handle.
      if (gpu !== null && (await gpu) === handle) gpu = null;
      return null;
    }
    const message = error instanceof Error ? error.message : String(error);
    warnOnce(
      `error:${message.slice(0, 200)}`,
      `the WebGPU engine failed (${message}); this reduction runs on WebAssembly`,
    );
    return null;
  }
}

async function execute(
  plan: ReductionPlan,
  choice: EngineChoice | undefined,
  control: RunControl = {},
): Promise<{ output: ReductionOutput; engine: EngineName }> {
  const selected = choice ?? defaultEngine;
  // Plans the WGSL kernels do not cover (float64; K-min lists beyond MAX_GPU_K) run on WebAssembly,
  // silently: the result's `engine` says so, and this is documented, not a failure.
  if (selected !== 'wasm' && webgpuPlanUnsupported(plan) === null) {
    const explicit = selected === 'webgpu';
    if (explicit || plan.nOuter * plan.nInner >= options.autoMinPairs) {
      const handle = await gpuEngineFor(explicit);
      if (handle !== null) {
        const output = await runOnGpu(handle, plan, control);
        if (output !== null) return { output, engine: handle.engine.name };
      }
    }
  }
  const wasm: Engine = await getWasmEngine();
  return { output: await wasm.reduce(plan, control), engine: wasm.name };
}

setReductionExecutor(execute);

/**
 * Configures the WebGPU engine and 'auto'. Only the keys given change. Changing limits, the
 * workgroup size, staging or the cache sizes rebuilds the engine (on the same device) at the next
 * reduction.
 *
 * Every option is validated before any is applied, as every options object of the library is:
 * @throws InputError for an unknown key (in the options or in `limits`), a non-object, or a value of
 *   the wrong type; the message names the option.
 * @throws InputError for a value out of range (a negative or fractional count, a workgroup size that
 *   is not a power of two from 1 to 1024, a zero limit); the message names the option.
 */
export function configureWebGPU(nextOptions: WebGPUOptions): void {
  const next = validateOptions(nextOptions);
  if (next.autoMinPairs !== undefined) options.autoMinPairs = next.autoMinPairs;
  if (next.autoUseFallbackAdapter !== undefined) options.autoUseFallbackAdapter = next.autoUseFallbackAdapter;
  const rebuild: readonly (keyof WebGPUOptions)[] = [
    'limits',
    'workgroupSize',
    'staging',
    'pipelineCacheSize',
    'bufferCacheBytes',
  ];
  if (rebuild.some((k) => k in next)) {
    if ('limits' in next) options.limits = next.limits === undefined ? undefined : { ...next.limits };
    if ('workgroupSize' in next) options.workgroupSize = next.workgroupSize;
    if ('staging' in next) options.staging = next.staging;
    if ('pipelineCacheSize' in next) options.pipelineCacheSize = next.pipelineCacheSize;
    if ('bufferCacheBytes' in next) options.bufferCacheBytes = next.bufferCacheBytes;
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
  /** Whether WebGPU reductions can run now (an adapter and a device that is not lost). */
  readonly available: boolean;
  /** Why WebGPU is unavailable, or null. */
  readonly reason: string | null;
  /** The adapter's vendor, architecture, device, description and whether it is a fallback (CPU) adapter; null without one. */
  readonly adapter: AdapterDescription | null;
  /** Whether the device has 'timestamp-query' (then `lastGpuTimeMs` is measured). */
  readonly timestampQuery: boolean;
  /** The engine's limits on this device; null without one. */
  readonly limits: EngineLimits | null;
  /** GPU time of the last WebGPU reduction (timestamp queries), or null. */
  readonly lastGpuTimeMs: number | null;
  /** The engine's counters (shader compiles, pipeline cache hits, dispatches, reductions); null without a device. */
  readonly stats: Readonly<EngineStats> | null;
  /** Pipelines in the device's cache (at most the pipelineCacheSize option), or null. */
  readonly cachedPipelines: number | null;
  /** The buffer pool's counters (live, in-use and cached buffers); null without a device. */
  readonly buffers: BufferPoolStats | null;
  /** What the runtime offers (WebGPU source, Node or browser, WebAssembly, SharedArrayBuffer), detected without a device. */
  readonly features: RuntimeFeatures;
}

/**
 * Describes the WebGPU engine. Requests the adapter and device on the first call; never throws:
 * `available` and `reason` say what is missing.
 */
export async function webgpuStatus(): Promise<WebGPUStatus> {
  const h = await getGpu();
  const features = detectFeatures();
  if (typeof h === 'string') {
    return {
      available: false,
      reason: h,
      adapter: null,
      timestampQuery: false,
      limits: null,
      lastGpuTimeMs: null,
      stats: null,
      cachedPipelines: null,
      buffers: null,
      features,
    };
  }
  return {
    available: !h.lost,
    reason: h.lost ? 'the device was lost' : null,
    adapter: h.adapter,
    timestampQuery: h.timestampQuery,
    limits: h.engine.limits,
    lastGpuTimeMs: h.engine.lastGpuTimeMs,
    stats: { ...h.engine.stats },
    cachedPipelines: h.engine.cachedPipelines,
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
