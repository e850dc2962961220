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
// - 'auto' (the default): each float32 plan goes to the engine the cost model (cost-model.ts)
//   predicts faster, from figures measured by a short calibration (calibration.ts) the first time a
//   device is acquired that 'auto' may use (not a fallback adapter, unless autoUseFallbackAdapter).
//   Before a device exists, 'auto' acquires one only for plans of at least AUTO_MIN_PAIRS pairs
//   (requesting an adapter costs time, and Chromium warns when there is none); without a
//   calibration (opted out with autoCalibrate: false, failed, or autoMinPairs set) the rule is the
//   threshold: WebGPU from AUTO_MIN_PAIRS (or autoMinPairs) pairs on. Threshold: a GPU reduction
//   pays a fixed ~0.3-1 ms (upload, dispatch, map/readback) even on a discrete GPU; the WebAssembly
//   engine does 2^22 = 4.2M pairs of a 3-D Gaussian sum in ~5-10 ms on one core, so from there on
//   the GPU wins by a margin on any real GPU, and below it the CPU is as fast or faster. Fallback
//   adapters (SwiftShader, lavapipe, WARP) emulate the GPU on the CPU and are slower than the
//   WebAssembly engine, so 'auto' skips them (configureWebGPU can allow them).
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
import { getWasmThreads } from '../wasm/workers.js';
import { calibrate, defaultSources, type FigureSources } from './calibration.js';
import { chooseEngine, defaultFigures, reductionShape, type CostFigures } from './cost-model.js';

/** The default rule of 'auto' when no calibration ran: WebGPU from this many pairs (N * M) on. It
 *  is also the size from which 'auto' acquires a WebGPU device at all (see the top of this file);
 *  once a calibration ran, the cost model decides every size. */
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
  /** 'auto' uses WebGPU from this many pairs (N * M) on, instead of the cost model: an integer
   *  >= 0, or Infinity (never). Default: unset (the model once calibrated, else AUTO_MIN_PAIRS =
   *  2^22); `undefined` restores that. */
  autoMinPairs?: number;
  /** Calibrate the cost model of 'auto' the first time a usable device is acquired (a few
   *  milliseconds of small reductions on both engines); default true. false: 'auto' keeps the
   *  AUTO_MIN_PAIRS threshold. */
  autoCalibrate?: boolean;
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
  /** Large-D products (dot, sqDist, weightedSqDist of x_i and y_j) as register-blocked tiled
   *  kernels: 'auto' (on GPUs, from D = 32), 'always' (any D, CPU adapters too) or 'never';
   *  `undefined` restores 'auto'. */
  tiling?: 'auto' | 'always' | 'never';
  /** Reductions whose result rows fill few workgroups also cut the reduced index into parts run in
   *  parallel, their partial results merged by a second dispatch: 'auto' (on GPUs, below about a
   *  thousand workgroups of rows), 'always' (whenever the reduced rows make two tiles, CPU adapters
   *  too) or 'never'; `undefined` restores 'auto'. */
  innerParts?: 'auto' | 'always' | 'never';
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
  'autoCalibrate',
  'autoUseFallbackAdapter',
  'limits',
  'workgroupSize',
  'staging',
  'tiling',
  'innerParts',
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
  if (o.autoCalibrate !== undefined && typeof o.autoCalibrate !== 'boolean') {
    throw new InputError(`configureWebGPU: autoCalibrate must be a boolean, got ${describeValue(o.autoCalibrate)}`);
  }
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
  if (o.tiling !== undefined && o.tiling !== 'auto' && o.tiling !== 'always' && o.tiling !== 'never') {
    throw new InputError(`configureWebGPU: tiling must be 'auto', 'always' or 'never', got ${describeValue(o.tiling)}`);
  }
  if (o.innerParts !== undefined && o.innerParts !== 'auto' && o.innerParts !== 'always' && o.innerParts !== 'never') {
    throw new InputError(
      `configureWebGPU: innerParts must be 'auto', 'always' or 'never', got ${describeValue(o.innerParts)}`,
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
  /** The cost model's state on this device: started once (see autoCosts). */
  costs: Promise<AutoCosts> | null;
}

const options: Required<Pick<WebGPUOptions, 'autoUseFallbackAdapter' | 'autoCalibrate'>> &
  Pick<
    WebGPUOptions,
    'limits' | 'workgroupSize' | 'staging' | 'tiling' | 'innerParts' | 'pipelineCacheSize' | 'bufferCacheBytes'
  > & {
    /** null: the cost model (the default). */
    autoMinPairs: number | null;
  } = {
  autoMinPairs: null,
  autoCalibrate: true,
  autoUseFallbackAdapter: false,
};
/** Calibrations run in this process (the tests check that one runs per device). */
let calibrations = 0;
/** Figures injected by the tests (webgpuTesting.setFigures), used instead of a calibration. */
let injected: CostFigures | null = null;
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
    tiling: options.tiling,
    innerParts: options.innerParts,
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
      costs: null,
    };
    // The calibration starts as soon as 'auto' may use the device (in the background: reductions
    // asked for meanwhile queue behind its few small runs on the engine).
    if (autoMayUse(handle) && options.autoMinPairs === null && options.autoCalibrate) void autoCosts(handle);
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

const autoMayUse = (handle: GpuHandle): boolean => !handle.adapter.isFallbackAdapter || options.autoUseFallbackAdapter;

/** The WebGPU engine for this plan, or null (WebAssembly runs it): no device (warned once when the
 *  caller asked for WebGPU), or a fallback adapter that 'auto' skips. */
async function gpuEngineFor(explicit: boolean): Promise<GpuHandle | null> {
  const handle = await getGpu();
  if (typeof handle === 'string') {
    if (explicit) warnOnce('unavailable', `WebGPU is unavailable (${handle}); reductions run on WebAssembly`);
    return null;
  }
  if (!explicit && !autoMayUse(handle)) return null;
  return handle;
}

/** What 'auto' decides with, as webgpuStatus reports it. */
export interface AutoCosts {
  /** 'model': the figures below decide (a calibration ran, or figures were injected);
   *  'threshold': WebGPU from `autoMinPairs` pairs on. */
  readonly rule: 'model' | 'threshold';
  /** The threshold of the 'threshold' rule (the autoMinPairs option, else AUTO_MIN_PAIRS). */
  readonly autoMinPairs: number;
  /** The figures of both engines: rates in work units per second, overheads in seconds, host
   *  transfers in bytes per second (see cost-model.ts); the defaults where nothing was measured. */
  readonly figures: CostFigures;
  /** Where each figure comes from ('webgpu.rate.kernel' -> 'measured', 'scaled' or 'default'). */
  readonly sources: FigureSources;
  /** Wall milliseconds of the calibration, or null when none ran. */
  readonly calibrationMs: number | null;
  /** Why no calibration ran or why it failed, or null. */
  readonly note: string | null;
}

async function defaultCosts(rule: 'model' | 'threshold', note: string | null): Promise<AutoCosts> {
  return {
    rule,
    autoMinPairs: options.autoMinPairs ?? AUTO_MIN_PAIRS,
    figures: defaultFigures(await getWasmThreads()),
    sources: defaultSources(),
    calibrationMs: null,
    note,
  };
}

/** The cost model's state on a device: its calibration, started once per device (never rejects). */
function autoCosts(handle: GpuHandle): Promise<AutoCosts> {
  handle.costs ??= (async (): Promise<AutoCosts> => {
    if (!options.autoCalibrate) return defaultCosts('threshold', 'calibration disabled (autoCalibrate: false)');
    calibrations++;
    try {
      const threads = await getWasmThreads();
      const engine = handle.engine;
      const { figures, sources, ms } = await calibrate(
        engine,
        () => engine.lastGpuTimeMs,
        await getWasmEngine(),
        defaultFigures(threads),
      );
      return { ...(await defaultCosts('model', null)), figures, sources, calibrationMs: ms };
    } catch (error) {
      return defaultCosts(
        'threshold',
        `the calibration failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  })();
  return handle.costs;
}

/** The WebGPU engine 'auto' sends this plan to, or null for WebAssembly. */
async function autoHandle(plan: ReductionPlan): Promise<GpuHandle | null> {
  const pairs = plan.nOuter * plan.nInner;
  if (options.autoMinPairs !== null) return pairs >= options.autoMinPairs ? gpuEngineFor(false) : null;
  // No device yet: only large plans acquire one.
  if (gpu === null && pairs < AUTO_MIN_PAIRS) return null;
  const handle = await gpuEngineFor(false);
  if (handle === null) return null;
  if (injected !== null) return chooseEngine(reductionShape(plan), injected).engine === 'webgpu' ? handle : null;
  const costs = await autoCosts(handle);
  if (costs.rule === 'threshold') return pairs >= AUTO_MIN_PAIRS ? handle : null;
  return chooseEngine(reductionShape(plan), costs.figures).engine === 'webgpu' ? handle : null;
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
    const handle = selected === 'webgpu' ? await gpuEngineFor(true) : await autoHandle(plan);
    if (handle !== null) {
      const output = await runOnGpu(handle, plan, control);
      if (output !== null) return { output, engine: handle.engine.name };
    }
  }
  const wasm: Engine = await getWasmEngine();
  return { output: await wasm.reduce(plan, control), engine: wasm.name };
}

setReductionExecutor(execute);

/**
 * Configures the WebGPU engine and 'auto'. Only the keys given change. Changing limits, the
 * workgroup size, staging, tiling, inner parts or the cache sizes rebuilds the engine (on the same device) at the next
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
  if ('autoMinPairs' in next) options.autoMinPairs = next.autoMinPairs ?? null;
  if (next.autoCalibrate !== undefined) options.autoCalibrate = next.autoCalibrate;
  if (next.autoUseFallbackAdapter !== undefined) options.autoUseFallbackAdapter = next.autoUseFallbackAdapter;
  const rebuild: readonly (keyof WebGPUOptions)[] = [
    'limits',
    'workgroupSize',
    'staging',
    'tiling',
    'innerParts',
    'pipelineCacheSize',
    'bufferCacheBytes',
  ];
  if (rebuild.some((k) => k in next)) {
    if ('limits' in next) options.limits = next.limits === undefined ? undefined : { ...next.limits };
    if ('workgroupSize' in next) options.workgroupSize = next.workgroupSize;
    if ('staging' in next) options.staging = next.staging;
    if ('tiling' in next) options.tiling = next.tiling;
    if ('innerParts' in next) options.innerParts = next.innerParts;
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
  /** How 'auto' decides: its rule and the cost model's figures (measured by the calibration, or
   *  the defaults), awaiting a calibration in progress. */
  readonly auto: AutoCosts;
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
      auto: await statusCosts(null),
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
    auto: await statusCosts(h),
  };
}

/** The 'auto' state for webgpuStatus (never starts a calibration). */
async function statusCosts(h: GpuHandle | null): Promise<AutoCosts> {
  if (options.autoMinPairs !== null) return defaultCosts('threshold', 'autoMinPairs is set');
  if (injected !== null) return { ...(await defaultCosts('model', 'figures injected')), figures: injected };
  if (h === null) return defaultCosts('threshold', 'no WebGPU device');
  if (h.costs !== null) return h.costs;
  return defaultCosts(
    'threshold',
    autoMayUse(h) ? 'no calibration ran yet' : "the adapter is a fallback adapter, which 'auto' does not use",
  );
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
  /** Uses these figures for 'auto' instead of a calibration (null: back to the calibration). */
  setFigures(figures: CostFigures | null): void {
    injected = figures;
  },
  /** Calibrations started in this process. */
  get calibrations(): number {
    return calibrations;
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
