// The WebGPU engine: runs a reduction plan as WGSL compute (kernels from codegen.ts) on a GPUDevice.
//
// CHOICES (documented here because CPU drivers cannot measure them; tune on real GPUs)
// - Workgroup size: 256 invocations (one result row each), capped by the adapter's
//   maxComputeInvocationsPerWorkgroup / maxComputeWorkgroupSizeX, and 64 when the per-row reduction
//   state is large (K-min lists, wide weighted sums), to leave registers for the formula.
//   256 = 8 warps / 4 wavefronts: enough to hide memory latency on NVIDIA/AMD/Apple/Intel, and
//   the inner tile it loads per barrier is then 256 rows (one per invocation).
// - Tile: as many inner rows as invocations (each invocation copies one packed row), reduced to fit
//   maxComputeWorkgroupStorageSize (most GPUs: 32 KiB, i.e. 256 rows up to 31 f32 per row, fewer
//   for wider rows). Below 16 rows per tile the kernel reads inner rows straight from the storage
//   buffer instead (caches do the sharing; staging a handful of rows per barrier does not pay).
// - CPU adapters (isFallbackAdapter: SwiftShader, lavapipe, WARP) get workgroups of 64 and no
//   staging ("direct" mode). Measured on SwiftShader (2 cores): pipeline compilation time grows
//   linearly with the workgroup memory a kernel declares (about 0.65 ms per f32: 0.45 s for a
//   256 x 3 tile, 2.8 s for 256 x 17, 5 s for 32 KiB) while staging gains nothing on a CPU
//   (4096 x 4096 Gaussian sum: 0.047-0.054 Gpairs/s staged or direct, at every workgroup size
//   from 32 to 256; a naive untiled kernel: 0.07). Direct kernels compile in 10-20 ms there.
//   bench/gpu.mjs there: 0.014-0.03 Gpairs/s at D = 3 (0.002 at D = 50), against 0.6-1.4 for the
//   WebAssembly engine on the same 2 cores. These numbers only show that the engine runs; tuning
//   targets real GPUs.
// - Tiled kernels (codegen.ts, TILED KERNELS) for products of x_i and y_j from D = TILED_MIN_D on:
//   256 invocations computing 64 x 64 products per tile, 4 x 4 per invocation, D in chunks of 16
//   (25 KiB of workgroup memory); smaller blockings where the adapter's limits or a large reduction
//   state require. Not on CPU adapters by default (compile time grows with workgroup memory there).
//   Unmeasured on a GPU: the blocking, TILED_MIN_D and whether the fold by a quarter of the
//   invocations (64 of 256) costs anything at small D are the first things to tune on hardware.
//
// SPLITTING
// A reduction is cut into dispatches so that no binding exceeds maxStorageBufferBindingSize, no
// dispatch exceeds maxComputeWorkgroupsPerDimension workgroups, and no dispatch evaluates more than
// maxPairsPerDispatch pairs (long dispatches trip GPU watchdogs: ~2 s on Windows). Result rows are
// cut into "outer chunks" (each with its own outer-data, output and state buffers, run one after the
// other); the inner rows into "segments" (one buffer each, uploaded once) and segments into "steps".
// The steps of an outer chunk run as consecutive dispatches of one compute pass; between them the
// running reduction state goes through a state buffer, so partial results merge exactly as tiles do
// (sums add with compensation, log-sum-exp merges (max, sum) pairs, K-min lists keep inserting).
//
// INNER PARTS
// One invocation per result row leaves a GPU idle when the rows are few against its cores (10^4 rows
// are 40 workgroups of 256, 10^5 rows 391; an H100 holds over a thousand at once), so a dense
// reduction whose rows fill fewer than PARTS_TARGET_WORKGROUPS workgroups is cut over j as well,
// KeOps's "j-parallel partial reductions": each dispatch is a 2-D grid (row blocks x parts), each
// part reducing a contiguous range of that dispatch's inner rows into its own slot of a state buffer
// (carried from step to step when the reduction is split over dispatches), then a combine dispatch
// in the same pass merges the parts' states and finalizes (codegen.generateCombineKernel; selections
// merge by (value, index), so ties go to the lowest index as in one sequential pass). A dispatch
// evaluates the same pairs with or without parts (the watchdog bound holds). Parts are at least
// MIN_PART_TILES tiles, and their states at most PARTS_STATE_BYTES. The target is a guess from the
// occupancy of current discrete GPUs (bench/gpu-sweep.mjs measures it; not tuned on hardware yet).
//
// Block-sparse plans bind whole arrays (a cluster's inner ranges may point anywhere; if an array
// exceeds a binding the reduction falls back to WebAssembly) and are cut into dispatches of work
// items (see planSparse); a single cluster is never split over dispatches.
//
// CACHING
// Pipelines are cached by the formula's structure (codegen.structureKey: variables named by role,
// dimension and position, not identity), the reduction and the kernel configuration: a second call
// of the same formula, even on new data, compiles nothing. Buffers come from a BufferPool.
import { unsupportedDType, type Engine } from '../core/engine.js';
import {
  reductionEmptyValue,
  reductionHasIndices,
  reductionHasValues,
  type ReductionOutput,
  type ReductionPlan,
} from '../core/reduction.js';
import { throwIfAborted, type RunControl } from '../core/scheduling.js';
import { BufferPool, type BufferPoolStats } from './buffer-pool.js';
import {
  GpuDeviceLostError,
  Submission,
  USAGE_COPY_DST,
  USAGE_COPY_SRC,
  USAGE_MAP_READ,
  USAGE_STORAGE,
  USAGE_UNIFORM,
} from './submission.js';
import {
  dataLayout,
  DCHUNK,
  DCHUNK_ROWS,
  FLAG_FIRST,
  FLAG_LAST,
  COMBINE_WORKGROUP,
  generateCombineKernel,
  generateKernel,
  pairCost,
  reductionWindow,
  stateWords,
  structureKey,
  TILED_BLOCKS,
  tiledProducts,
  tiledWords,
  type TiledBlock,
  UNIFORM_BYTES,
  type DataLayout,
  type GeneratedKernel,
  type KernelConfig,
  webgpuUnsupported,
} from './codegen.js';

/** The limits the engine plans with: the device's, possibly lowered (tests force splitting so). */
export interface EngineLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly minUniformBufferOffsetAlignment: number;
  /** Pairs evaluated by one dispatch at most. */
  readonly maxPairsPerDispatch: number;
}

export interface WebGPUEngineOptions {
  /** Lower the device's limits (never raise them): used by tests to force splitting. */
  readonly limits?: Partial<EngineLimits>;
  /** Workgroup size override (a power of two), for experiments. */
  readonly workgroupSize?: number;
  /** The adapter emulates a GPU on the CPU (isFallbackAdapter: SwiftShader, lavapipe, WARP). */
  readonly cpuAdapter?: boolean;
  /** Stage inner tiles in workgroup memory: 'auto' (on GPUs, not on CPU adapters), or forced. */
  readonly staging?: 'auto' | 'always' | 'never';
  /** Large-D products (dot, sqDist, weightedSqDist of x_i and y_j) as register-blocked tiled
   *  kernels: 'auto' (on GPUs, from D = TILED_MIN_D), 'always' (any D, CPU adapters too: tests) or
   *  'never'. */
  readonly tiling?: 'auto' | 'always' | 'never';
  /** Inner-parallel parts (INNER PARTS) when the result rows fill few workgroups: 'auto' (on GPUs),
   *  'always' (whenever the inner rows make two tiles or more, CPU adapters too: tests) or 'never'. */
  readonly innerParts?: 'auto' | 'always' | 'never';
  /** Compiled pipelines kept per device (least recently used evicted first); default 64. */
  readonly pipelineCacheSize?: number;
  /** Bytes of free GPU buffers kept for reuse (oldest destroyed first); default 256 MiB. */
  readonly bufferCacheBytes?: number;
}

/** Counters for tests and the bench. */
export interface EngineStats {
  /** Shader modules compiled (pipeline cache misses). */
  compiles: number;
  /** Pipeline cache hits. */
  pipelineHits: number;
  /** Dispatches issued. */
  dispatches: number;
  /** Reductions run. */
  reductions: number;
}

export { GpuDeviceLostError };

export const DEFAULT_MAX_PAIRS_PER_DISPATCH = 2 ** 30;
const DEFAULT_WORKGROUP = 256;
const CPU_WORKGROUP = 64;
const MIN_STAGED_TILE = 16;
/** Inner rows wider than this that do not fit whole tiles get D-chunked kernels (as UNROLL). */
const CHUNK_MIN_STRIDE = 64;
/** 'auto' tiles products from this D on. Below it a row of x and y is a few registers, the plain
 *  kernel (one invocation per i, y_j tiles staged) already reuses every load D times and the tiled
 *  kernel's two barriers per chunk do not pay. A guess from the arithmetic intensity of the two
 *  schemes (the plain kernel: about 1 workgroup-memory read per multiply-add; the tiled one: 1 per
 *  ri * rj / (ri + rj) = 2); not measured on a GPU yet. */
export const TILED_MIN_D = 32;
/** Inner parts: the workgroups a reduction should fill, the least tiles per part, and the largest
 *  state buffer they may take (see INNER PARTS). */
export const PARTS_TARGET_WORKGROUPS = 1024;
const MIN_PART_TILES = 2;
const PARTS_STATE_BYTES = 64 * 2 ** 20;

/** How an inner-parts reduction is cut: `count` parts of `rows` inner rows (the last one shorter). */
export interface InnerParts {
  readonly count: number;
  readonly rows: number;
}

/** Above this many f32 of reduction state per row, use smaller workgroups. */
const LARGE_STATE_WORDS = 48;
/** Pipelines kept per device by default. Each costs driver memory (about 250 KiB of JIT code on
 *  SwiftShader: 100 distinct formulas grew the RSS by 25 MiB); a GeomLoss run uses about ten, and a
 *  recompile costs milliseconds on a GPU driver, so 64 bounds memory without recompiling in loops. */
export const DEFAULT_PIPELINE_CACHE_SIZE = 64;
/** Free buffer bytes kept by default (BufferPool). */
export const DEFAULT_BUFFER_CACHE_BYTES = 256 * 1024 * 1024;

interface Range {
  readonly start: number;
  readonly rows: number;
}

interface Step {
  readonly segment: number;
  /** First row of the step inside its segment's buffer. */
  readonly readStart: number;
  readonly rows: number;
  /** Global inner index of the step's first row. */
  readonly globalStart: number;
}

/** How a reduction is cut into dispatches. */
export interface ChunkPlan {
  readonly outerChunks: readonly Range[];
  readonly segments: readonly Range[];
  readonly steps: readonly Step[];
  readonly split: boolean;
}

export interface ChunkSizes {
  readonly nOuter: number;
  readonly nInner: number;
  readonly outerStride: number;
  readonly innerStride: number;
  readonly outDim: number;
  readonly stateWords: number;
}

/** Cuts a reduction into outer chunks, inner segments and steps within the limits. */
export function planChunks(s: ChunkSizes, limits: EngineLimits, workgroupSize: number, tile: number): ChunkPlan {
  const bind = limits.maxStorageBufferBindingSize;
  const rowsFitting = (words: number): number => (words > 0 ? Math.floor(bind / (4 * words)) : Infinity);
  const segRows = Math.min(s.nInner, rowsFitting(s.innerStride));
  if (segRows < 1) throw new RangeError(`an inner row of ${s.innerStride} values exceeds maxStorageBufferBindingSize`);
  const outerLimit = (withState: boolean): number => {
    let r = Math.min(
      s.nOuter,
      limits.maxComputeWorkgroupsPerDimension * workgroupSize,
      rowsFitting(s.outerStride),
      rowsFitting(s.outDim),
      withState ? rowsFitting(s.stateWords) : Infinity,
    );
    if (r < 1)
      throw new RangeError(
        `a result row (${s.outerStride} inputs, ${s.outDim} outputs) exceeds maxStorageBufferBindingSize`,
      );
    if (r >= workgroupSize && r < s.nOuter) r -= r % workgroupSize;
    return r;
  };
  const stepRowsFor = (outerRows: number): number => {
    let r = Math.max(1, Math.min(segRows, Math.floor(limits.maxPairsPerDispatch / outerRows)));
    if (r >= tile && r < segRows) r -= r % tile;
    return r;
  };
  let R = outerLimit(false);
  let stepRows = stepRowsFor(R);
  if (segRows < s.nInner || stepRows < segRows) {
    R = outerLimit(true);
    stepRows = stepRowsFor(R);
  }
  const segments: Range[] = [];
  for (let start = 0; start < s.nInner; start += segRows)
    segments.push({ start, rows: Math.min(segRows, s.nInner - start) });
  const steps: Step[] = [];
  segments.forEach((seg, q) => {
    for (let r = 0; r < seg.rows; r += stepRows) {
      steps.push({ segment: q, readStart: r, rows: Math.min(stepRows, seg.rows - r), globalStart: seg.start + r });
    }
  });
  const outerChunks: Range[] = [];
  for (let start = 0; start < s.nOuter; start += R) outerChunks.push({ start, rows: Math.min(R, s.nOuter - start) });
  return { outerChunks, segments, steps, split: steps.length > 1 };
}

interface CompiledKernel {
  readonly pipeline: GPUComputePipeline;
  readonly kernel: GeneratedKernel;
}

/** Compiled pipelines per device, keyed by kernel (structure key + configuration). */
const PIPELINES = new WeakMap<GPUDevice, Map<string, Promise<CompiledKernel>>>();

/** Packs rows [start, start + rows) of the variables of one side into a float32 array of `stride`
 *  words per row (a single float32 variable is passed through without copying). */
const isShared = (a: ArrayBufferView): boolean =>
  typeof SharedArrayBuffer === 'function' && a.buffer instanceof SharedArrayBuffer;

function packRows(
  vars: readonly { data: Float32Array | Float64Array; dim: number; offset: number }[],
  stride: number,
  start: number,
  rows: number,
): Float32Array {
  const only = vars[0];
  if (vars.length === 1 && only !== undefined && only.dim === stride) {
    const part = only.data.subarray(start * stride, (start + rows) * stride);
    // Data in shared memory (a SharedArrayBuffer: kMeans's copy of its points) is copied: Dawn's
    // writeBuffer refuses it.
    return part instanceof Float32Array && !isShared(part) ? part : Float32Array.from(part);
  }
  const out = new Float32Array(rows * stride);
  for (const { data, dim, offset } of vars) {
    for (let r = 0; r < rows; r++) {
      const src = (start + r) * dim;
      const dst = r * stride + offset;
      for (let k = 0; k < dim; k++) out[dst + k] = data[src + k]!;
    }
  }
  return out;
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Result rows per workgroup: one per invocation, or bi = ti * ri for a tiled kernel. */
const rowsPerGroup = (config: Pick<KernelConfig, 'workgroupSize' | 'tiled'>): number =>
  config.tiled === undefined ? config.workgroupSize : config.tiled.ti * config.tiled.ri;

/** Why the WebGPU engine cannot run `plan` on any device (float64, K-min lists beyond MAX_GPU_K), or
 *  null. Selection asks this before acquiring a device; WebGPUEngine.unsupported says the same. */
export function webgpuPlanUnsupported(plan: ReductionPlan): string | null {
  return unsupportedDType('WebGPU', WEBGPU_DTYPES, plan) ?? webgpuUnsupported(plan);
}

/** WGSL has no f64. */
const WEBGPU_DTYPES = ['float32'] as const;

export class WebGPUEngine implements Engine {
  readonly name = 'webgpu' as const;
  readonly dtypes = WEBGPU_DTYPES;
  readonly limits: EngineLimits;
  readonly stats: EngineStats = { compiles: 0, pipelineHits: 0, dispatches: 0, reductions: 0 };
  /** GPU time of the last reduction from timestamp queries (ms), or null without 'timestamp-query'. */
  lastGpuTimeMs: number | null = null;
  private readonly pool: BufferPool;
  private readonly pipelines: Map<string, Promise<CompiledKernel>>;
  private readonly timestamps: boolean;
  private readonly workgroupOverride: number | undefined;
  private readonly cpuAdapter: boolean;
  private readonly staging: 'auto' | 'always' | 'never';
  private readonly tiling: 'auto' | 'always' | 'never';
  private readonly innerParts: 'auto' | 'always' | 'never';
  private readonly pipelineCacheSize: number;
  private lostReason: string | null = null;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly device: GPUDevice,
    options: WebGPUEngineOptions = {},
  ) {
    const d = device.limits;
    const lower = (key: keyof EngineLimits, deviceValue: number): number =>
      Math.min(deviceValue, options.limits?.[key] ?? Infinity);
    this.limits = {
      maxStorageBufferBindingSize: lower('maxStorageBufferBindingSize', d.maxStorageBufferBindingSize),
      maxBufferSize: lower('maxBufferSize', d.maxBufferSize),
      maxComputeWorkgroupsPerDimension: lower('maxComputeWorkgroupsPerDimension', d.maxComputeWorkgroupsPerDimension),
      maxComputeInvocationsPerWorkgroup: lower(
        'maxComputeInvocationsPerWorkgroup',
        d.maxComputeInvocationsPerWorkgroup,
      ),
      maxComputeWorkgroupSizeX: lower('maxComputeWorkgroupSizeX', d.maxComputeWorkgroupSizeX),
      maxComputeWorkgroupStorageSize: lower('maxComputeWorkgroupStorageSize', d.maxComputeWorkgroupStorageSize),
      minUniformBufferOffsetAlignment: d.minUniformBufferOffsetAlignment,
      maxPairsPerDispatch: lower('maxPairsPerDispatch', DEFAULT_MAX_PAIRS_PER_DISPATCH),
    };
    this.workgroupOverride = options.workgroupSize;
    this.cpuAdapter = options.cpuAdapter ?? false;
    this.staging = options.staging ?? 'auto';
    this.tiling = options.tiling ?? 'auto';
    this.innerParts = options.innerParts ?? 'auto';
    this.timestamps = device.features.has('timestamp-query');
    this.pipelineCacheSize = options.pipelineCacheSize ?? DEFAULT_PIPELINE_CACHE_SIZE;
    this.pool = new BufferPool(
      device,
      this.limits.maxBufferSize,
      options.bufferCacheBytes ?? DEFAULT_BUFFER_CACHE_BYTES,
    );
    // Pipelines belong to the device: engines rebuilt on the same device (other limits, tests) share them.
    let cache = PIPELINES.get(device);
    if (cache === undefined) PIPELINES.set(device, (cache = new Map()));
    this.pipelines = cache;
  }

  /** Marks the device as lost: later reductions throw GpuDeviceLostError. */
  markLost(reason: string): void {
    this.lostReason = reason;
  }

  get lost(): boolean {
    return this.lostReason !== null;
  }

  /** Pipelines compiled (or compiling) and cached for this engine's device. */
  get cachedPipelines(): number {
    return this.pipelines.size;
  }

  bufferStats(): BufferPoolStats {
    return this.pool.stats();
  }

  /** Frees this engine's cached buffers (the device stays usable). `pipelines` also drops the
   *  device's compiled pipelines. */
  trim(pipelines = false): void {
    this.pool.clear();
    if (pipelines) this.pipelines.clear();
  }

  /** The kernel configuration for a plan. */
  configFor(plan: ReductionPlan, layout: DataLayout = dataLayout(plan)): Omit<KernelConfig, 'split' | 'sparse'> {
    const L = this.limits;
    let wg = this.workgroupOverride ?? (this.cpuAdapter ? CPU_WORKGROUP : DEFAULT_WORKGROUP);
    // The state an invocation holds at once: one window's (windowed kernels keep the rest in ST).
    const held = stateWords(plan) / reductionWindow(plan).count;
    if (this.workgroupOverride === undefined && held > LARGE_STATE_WORDS) wg = Math.min(wg, 64);
    const cap = Math.min(L.maxComputeInvocationsPerWorkgroup, L.maxComputeWorkgroupSizeX);
    while (wg > cap) wg >>= 1;
    // Tiled kernels: every invocation holds a reduction state, so large states (and a workgroup
    // size override) cap the blocking's invocations like the plain kernel's.
    const tiled = this.tiledBlock(
      plan,
      Math.min(cap, held > LARGE_STATE_WORDS ? 64 : cap, this.workgroupOverride ?? cap),
    );
    if (tiled !== null) return { workgroupSize: tiled.ti * tiled.tj, tile: tiled.tj * tiled.rj, staged: false, tiled };
    const IS = Math.max(1, layout.innerStride);
    const stage = this.staging === 'always' || (this.staging === 'auto' && !this.cpuAdapter);
    // Leave 256 bytes of workgroup storage for the implementation.
    const fit = Math.floor((L.maxComputeWorkgroupStorageSize - 256) / (4 * IS));
    const tile = Math.min(wg, fit);
    const minTile = this.staging === 'always' ? 1 : MIN_STAGED_TILE;
    if (stage && tile >= minTile) return { workgroupSize: wg, tile, staged: true };
    if (stage && IS > CHUNK_MIN_STRIDE) {
      // Rows too wide to stage whole (D in the hundreds: K-NN, K-means): long sums over their
      // components run over D-chunks staged in workgroup memory instead, one DCHUNK-wide slice of
      // each inner variable per tile row.
      const innerVars = plan.variables.filter((v) => v.role === 'inner').length;
      const rows = Math.min(
        DCHUNK_ROWS,
        Math.floor((L.maxComputeWorkgroupStorageSize - 256) / (4 * DCHUNK * innerVars)),
      );
      if (rows >= 1) return { workgroupSize: wg, tile: rows, staged: false, dchunks: true };
    }
    return { workgroupSize: wg, tile: wg, staged: false };
  }

  /** The blocking of a tiled kernel for `plan` (the first of TILED_BLOCKS within the invocation cap
   *  and the workgroup memory), or null when the plan is not tiled (see tiledProducts, the tiling
   *  option and TILED_MIN_D; CPU adapters only with 'always'). */
  private tiledBlock(plan: ReductionPlan, cap: number): TiledBlock | null {
    if (this.tiling === 'never' || (this.tiling === 'auto' && this.cpuAdapter)) return null;
    const products = tiledProducts(plan, this.tiling === 'always' ? 1 : TILED_MIN_D);
    if (products === null) return null;
    const room = this.limits.maxComputeWorkgroupStorageSize - 256;
    return TILED_BLOCKS.find((b) => b.ti * b.tj <= cap && 4 * tiledWords(products, b) <= room) ?? null;
  }

  /** The inner parts of a dense plan cut as `chunks` (see INNER PARTS), or null for one part. */
  partsFor(plan: ReductionPlan, config: Omit<KernelConfig, 'split' | 'sparse'>, chunks: ChunkPlan): InnerParts | null {
    if (this.innerParts === 'never' || (this.innerParts === 'auto' && this.cpuAdapter)) return null;
    if (plan.ranges !== null) return null;
    const rows = Math.max(...chunks.outerChunks.map((c) => c.rows));
    const stepRows = Math.max(...chunks.steps.map((q) => q.rows));
    const groups = Math.ceil(rows / rowsPerGroup(config));
    const minRows = config.tile * (this.innerParts === 'always' ? 1 : MIN_PART_TILES);
    const slotBytes = rows * stateWords(plan) * 4;
    const L = this.limits;
    let count = Math.min(
      Math.ceil(PARTS_TARGET_WORKGROUPS / groups),
      Math.floor(stepRows / minRows),
      L.maxComputeWorkgroupsPerDimension,
      Math.floor(Math.min(L.maxStorageBufferBindingSize, L.maxBufferSize, PARTS_STATE_BYTES) / slotBytes),
    );
    if (count < 2) return null;
    // Equal parts of the (longest) step (a part's last tile may be short; a shorter last step
    // leaves parts empty); the count again from the rounded-up size.
    const partRows = Math.ceil(stepRows / count);
    count = Math.ceil(stepRows / partRows);
    return { count, rows: partRows };
  }

  private kernelFor(plan: ReductionPlan, config: KernelConfig): Promise<CompiledKernel> {
    const t = config.tiled;
    const tiled = t === undefined ? '' : `${t.ti}x${t.tj}x${t.ri}x${t.rj}x${t.dk}`;
    const key = `${structureKey(plan)}|wg${config.workgroupSize}|t${config.tile}|${config.staged ? 's' : 'd'}|${config.split ? 'x' : '1'}|${config.sparse ? 'b' : ''}|${config.dchunks === true ? 'c' : ''}|${config.parts === true ? 'p' : ''}|${tiled}`;
    return this.compile(key, plan, () => generateKernel(plan, config));
  }

  /** The combine kernel of an inner-parts plan (one per structure: it has no tiles). */
  private combineKernelFor(plan: ReductionPlan): Promise<CompiledKernel> {
    return this.compile(`${structureKey(plan)}|combine`, plan, () => generateCombineKernel(plan));
  }

  /** A pipeline from the device's cache, or compiled (and cached) from `generate`. */
  private compile(key: string, plan: ReductionPlan, generate: () => GeneratedKernel): Promise<CompiledKernel> {
    const hit = this.pipelines.get(key);
    if (hit !== undefined) {
      this.stats.pipelineHits++;
      // Refresh its place in the LRU order.
      this.pipelines.delete(key);
      this.pipelines.set(key, hit);
      return hit;
    }
    const compiled = (async (): Promise<CompiledKernel> => {
      const kernel = generate();
      this.stats.compiles++;
      const device = this.device;
      device.pushErrorScope('validation');
      const module = device.createShaderModule({ code: kernel.code, label: `lazytensor ${plan.kind}` });
      let pipeline: GPUComputePipeline;
      try {
        pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      } catch (cause) {
        await device.popErrorScope().catch(() => null);
        throw new Error(
          `${plan.kind}: the WebGPU kernel did not compile: ${await compilationMessages(module, cause)}`,
          { cause },
        );
      }
      const error = await device.popErrorScope();
      if (error !== null) {
        throw new Error(
          `${plan.kind}: the WebGPU kernel did not compile: ${error.message}${await compilationMessages(module, null)}`,
        );
      }
      return { pipeline, kernel };
    })();
    this.pipelines.set(key, compiled);
    compiled.catch(() => this.pipelines.delete(key));
    // Least recently used first (hits move a key to the end of the insertion order).
    while (this.pipelines.size > this.pipelineCacheSize) this.pipelines.delete(this.pipelines.keys().next().value!);
    return compiled;
  }

  /** Why this engine cannot run `plan` (see webgpuPlanUnsupported), or null. */
  unsupported(plan: ReductionPlan): string | null {
    return webgpuPlanUnsupported(plan);
  }

  /** Runs a float32 plan; throws GpuDeviceLostError if the device is gone. Reductions run one at a
   *  time (the GPU queue serialises them anyway, and error scopes must not interleave). A reduction
   *  is one submission: the signal is checked before it and after the readback, and the rows are
   *  reported at the end. */
  async reduce(plan: ReductionPlan, control: RunControl = {}): Promise<ReductionOutput> {
    throwIfAborted(control.signal);
    const run = this.tail.then(() => this.reduceNow(plan));
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    const output = await run;
    throwIfAborted(control.signal);
    control.onRows?.(plan.nOuter);
    return output;
  }

  private async reduceNow(plan: ReductionPlan): Promise<ReductionOutput> {
    if (plan.dtype !== 'float32') throw new TypeError(`${plan.kind}: the WebGPU engine computes in float32 only`);
    if (this.lostReason !== null) throw new GpuDeviceLostError(`the WebGPU device was lost: ${this.lostReason}`);
    const unsupported = webgpuUnsupported(plan);
    if (unsupported !== null) throw new RangeError(`${plan.kind}: not supported by the WebGPU engine (${unsupported})`);
    this.stats.reductions++;
    const layout = dataLayout(plan);
    const base = this.configFor(plan, layout);
    // Per-pair work grows with D (and with the windows of a windowed kernel): fewer pairs per
    // dispatch keep each dispatch as short as a D = 3 one (GPU watchdogs).
    const limits: EngineLimits = {
      ...this.limits,
      maxPairsPerDispatch: Math.max(1, Math.floor(this.limits.maxPairsPerDispatch / pairCost(plan))),
    };
    if (plan.ranges !== null) {
      const sparse = planSparse(plan.ranges, plan.nOuter, base.workgroupSize, limits, (c) =>
        sparseBindingCheck(plan, layout, limits, c),
      );
      const config: KernelConfig = { ...base, split: false, sparse: true };
      const { pipeline, kernel } = await this.kernelFor(plan, config);
      if (this.lostReason !== null) throw new GpuDeviceLostError(`the WebGPU device was lost: ${this.lostReason}`);
      return this.runSparse(plan, layout, config, sparse, pipeline, kernel);
    }
    const words = stateWords(plan);
    const chunks = planChunks(
      {
        nOuter: plan.nOuter,
        nInner: plan.nInner,
        outerStride: layout.outerStride,
        innerStride: layout.innerStride,
        outDim: plan.outDim,
        stateWords: words,
      },
      limits,
      rowsPerGroup(base),
      base.tile,
    );
    const parts = this.partsFor(plan, base, chunks);
    const config: KernelConfig = { ...base, split: chunks.split, sparse: false, parts: parts !== null };
    const { pipeline, kernel } = await this.kernelFor(plan, config);
    const combine = parts === null ? null : await this.combineKernelFor(plan);
    if (this.lostReason !== null) throw new GpuDeviceLostError(`the WebGPU device was lost: ${this.lostReason}`);
    return this.run(
      plan,
      layout,
      config,
      chunks,
      pipeline,
      kernel,
      parts === null ? null : { ...parts, combine: combine!.pipeline },
    );
  }

  private async run(
    plan: ReductionPlan,
    layout: DataLayout,
    config: KernelConfig,
    chunks: ChunkPlan,
    pipeline: GPUComputePipeline,
    kernel: GeneratedKernel,
    parts: (InnerParts & { readonly combine: GPUComputePipeline }) | null,
  ): Promise<ReductionOutput> {
    const device = this.device;
    const queue = device.queue;
    const hasValues = reductionHasValues(plan.kind);
    const hasIndices = reductionHasIndices(plan.kind);
    const outDim = plan.outDim;
    const values = hasValues ? new Float32Array(plan.nOuter * outDim) : null;
    const indices = hasIndices ? new Int32Array(plan.nOuter * outDim) : null;
    const OS = layout.outerStride;
    const IS = layout.innerStride;
    const { outerVars, innerVars, params } = splitVariables(plan, layout);
    await Submission.run(
      device,
      this.pool,
      plan.kind,
      () => this.lostReason,
      this.timestamps,
      async (sub) => {
        let gpuNs = 0;
        // Inputs shared by every outer chunk: parameters and the inner segments, uploaded once.
        const paramBuffer = kernel.bindings.params ? sub.upload(params, 'parameters') : null;
        const segmentBuffers = chunks.segments.map((seg) => {
          const data = packRows(innerVars, IS, seg.start, seg.rows);
          return { buffer: sub.upload(data, 'inner rows'), bytes: data.byteLength };
        });
        // One uniform block per dispatch, at the device's dynamic-offset alignment.
        const ualign = Math.max(UNIFORM_BYTES, this.limits.minUniformBufferOffsetAlignment);
        const nSteps = chunks.steps.length;
        const uniformBuffer = sub.take(
          USAGE_UNIFORM | USAGE_COPY_DST,
          ualign * nSteps * chunks.outerChunks.length,
          'uniforms',
        );
        const uniforms = new DataView(new ArrayBuffer(ualign * nSteps * chunks.outerChunks.length));
        chunks.outerChunks.forEach((chunk, c) => {
          chunks.steps.forEach((step, q) => {
            const at = (c * nSteps + q) * ualign;
            uniforms.setUint32(at, chunk.rows, true);
            uniforms.setUint32(at + 4, step.rows, true);
            uniforms.setUint32(at + 8, step.readStart, true);
            uniforms.setUint32(at + 12, step.globalStart, true);
            uniforms.setUint32(at + 16, (q === 0 ? FLAG_FIRST : 0) | (q === nSteps - 1 ? FLAG_LAST : 0), true);
            uniforms.setUint32(at + 20, parts?.rows ?? 0, true);
            uniforms.setFloat32(at + 24, Infinity, true);
            uniforms.setFloat32(at + 28, NaN, true);
          });
        });
        queue.writeBuffer(uniformBuffer, 0, uniforms.buffer);

        // Per-chunk buffers, sized for the largest chunk and reused chunk after chunk.
        const maxRows = Math.max(...chunks.outerChunks.map((c) => c.rows));
        const outerBuffer = OS > 0 ? sub.take(USAGE_STORAGE | USAGE_COPY_DST, maxRows * OS * 4, 'outer rows') : null;
        const valueBytes = hasValues ? maxRows * outDim * 4 : 0;
        const indexBytes = hasIndices ? maxRows * outDim * 4 : 0;
        const valueBuffer = hasValues ? sub.take(USAGE_STORAGE | USAGE_COPY_SRC, valueBytes, 'values') : null;
        const indexBuffer = hasIndices ? sub.take(USAGE_STORAGE | USAGE_COPY_SRC, indexBytes, 'indices') : null;
        const stateBytes = maxRows * kernel.stateWords * 4 * (parts?.count ?? 1);
        const stateBuffer =
          config.split || parts !== null ? sub.take(USAGE_STORAGE, stateBytes, 'reduction state') : null;
        const timeAt = align(valueBytes + indexBytes, 256);
        const readBytes = timeAt + (this.timestamps ? 16 : 0);
        const readback = sub.take(USAGE_MAP_READ | USAGE_COPY_DST, readBytes, 'readback');
        const layout0 = pipeline.getBindGroupLayout(0);

        for (const [c, chunk] of chunks.outerChunks.entries()) {
          if (outerBuffer !== null) {
            const data = packRows(outerVars, OS, chunk.start, chunk.rows);
            queue.writeBuffer(outerBuffer, 0, data.buffer, data.byteOffset, data.byteLength);
          }
          const encoder = device.createCommandEncoder({ label: 'lazytensor reduction' });
          const pass = encoder.beginComputePass(sub.passDescriptor());
          pass.setPipeline(pipeline);
          const groups = Math.ceil(chunk.rows / rowsPerGroup(config));
          for (const [q, step] of chunks.steps.entries()) {
            const entries: GPUBindGroupEntry[] = [entry(0, uniformBuffer, UNIFORM_BYTES, (c * nSteps + q) * ualign)];
            if (kernel.bindings.outer) entries.push(entry(1, outerBuffer!, chunk.rows * OS * 4));
            if (kernel.bindings.inner) {
              const seg = segmentBuffers[step.segment]!;
              entries.push(entry(2, seg.buffer, seg.bytes));
            }
            if (kernel.bindings.params) entries.push(entry(3, paramBuffer!, params.byteLength));
            if (kernel.bindings.values) entries.push(entry(4, valueBuffer!, chunk.rows * outDim * 4));
            if (kernel.bindings.indices) entries.push(entry(5, indexBuffer!, chunk.rows * outDim * 4));
            if (parts !== null) entries.push(entry(6, stateBuffer!, stateBytes));
            else if (config.split) entries.push(entry(6, stateBuffer!, chunk.rows * kernel.stateWords * 4));
            pass.setBindGroup(0, device.createBindGroup({ layout: layout0, entries }));
            pass.dispatchWorkgroups(groups, parts?.count ?? 1);
            this.stats.dispatches++;
          }
          if (parts !== null) {
            // The parts' states merged and finalized; a dispatch sees the previous one's writes.
            const entries: GPUBindGroupEntry[] = [entry(0, uniformBuffer, UNIFORM_BYTES, c * nSteps * ualign)];
            if (hasValues) entries.push(entry(4, valueBuffer!, chunk.rows * outDim * 4));
            if (hasIndices) entries.push(entry(5, indexBuffer!, chunk.rows * outDim * 4));
            entries.push(entry(6, stateBuffer!, stateBytes));
            pass.setPipeline(parts.combine);
            pass.setBindGroup(0, device.createBindGroup({ layout: parts.combine.getBindGroupLayout(0), entries }));
            pass.dispatchWorkgroups(Math.ceil(chunk.rows / COMBINE_WORKGROUP));
            this.stats.dispatches++;
            pass.setPipeline(pipeline);
          }
          pass.end();
          const vBytes = chunk.rows * outDim * 4;
          if (hasValues) encoder.copyBufferToBuffer(valueBuffer!, 0, readback, 0, vBytes);
          if (hasIndices) encoder.copyBufferToBuffer(indexBuffer!, 0, readback, valueBytes, vBytes);
          sub.copyTimestamps(encoder, readback, timeAt);
          queue.submit([encoder.finish()]);
          if (c === 0) await sub.popScopes();
          const mapped = await sub.mapRead(readback, readBytes);
          const rowValues = chunk.start * outDim;
          if (values !== null) values.set(new Float32Array(mapped, 0, chunk.rows * outDim), rowValues);
          if (indices !== null) indices.set(new Int32Array(mapped, valueBytes, chunk.rows * outDim), rowValues);
          if (sub.querySet !== null) gpuNs += Submission.elapsedNs(mapped, timeAt);
          readback.unmap();
        }
        this.lastGpuTimeMs = sub.querySet !== null ? gpuNs / 1e6 : null;
      },
    );
    return { values, indices };
  }

  /** A block-sparse reduction: every array bound whole, work items per cluster. */
  private async runSparse(
    plan: ReductionPlan,
    layout: DataLayout,
    config: KernelConfig,
    sparse: SparsePlan,
    pipeline: GPUComputePipeline,
    kernel: GeneratedKernel,
  ): Promise<ReductionOutput> {
    const device = this.device;
    const queue = device.queue;
    const ranges = plan.ranges!;
    const hasValues = reductionHasValues(plan.kind);
    const hasIndices = reductionHasIndices(plan.kind);
    const count = plan.nOuter * plan.outDim;
    const values = hasValues ? new Float32Array(count) : null;
    const indices = hasIndices ? new Int32Array(count) : null;
    const { outerVars, innerVars, params } = splitVariables(plan, layout);
    await Submission.run(
      device,
      this.pool,
      plan.kind,
      () => this.lostReason,
      this.timestamps,
      async (sub) => {
        if (sparse.items.length > 0) {
          const outer = kernel.bindings.outer
            ? sub.upload(packRows(outerVars, layout.outerStride, 0, plan.nOuter), 'outer rows')
            : null;
          const inner = kernel.bindings.inner
            ? sub.upload(packRows(innerVars, layout.innerStride, 0, plan.nInner), 'inner rows')
            : null;
          const paramBuffer = kernel.bindings.params ? sub.upload(params, 'parameters') : null;
          const items = sub.upload(sparse.items, 'work items');
          const innerRanges = sub.upload(ranges.inner.length > 0 ? ranges.inner : new Int32Array(4), 'inner ranges');
          const bytes = count * 4;
          const valueBuffer = hasValues ? sub.take(USAGE_STORAGE | USAGE_COPY_SRC, bytes, 'values') : null;
          const indexBuffer = hasIndices ? sub.take(USAGE_STORAGE | USAGE_COPY_SRC, bytes, 'indices') : null;
          const ualign = Math.max(UNIFORM_BYTES, this.limits.minUniformBufferOffsetAlignment);
          const uniforms = new DataView(new ArrayBuffer(ualign * sparse.dispatches.length));
          sparse.dispatches.forEach(([first], q) => {
            const at = q * ualign;
            uniforms.setUint32(at, plan.nOuter, true);
            uniforms.setUint32(at + 16, FLAG_FIRST | FLAG_LAST, true);
            uniforms.setUint32(at + 20, first, true);
            uniforms.setFloat32(at + 24, Infinity, true);
            uniforms.setFloat32(at + 28, NaN, true);
          });
          const uniformBuffer = sub.take(USAGE_UNIFORM | USAGE_COPY_DST, uniforms.byteLength, 'uniforms');
          queue.writeBuffer(uniformBuffer, 0, uniforms.buffer);
          const timeAt = align(2 * bytes, 256);
          const readBytes = timeAt + (this.timestamps ? 16 : 0);
          const readback = sub.take(USAGE_MAP_READ | USAGE_COPY_DST, readBytes, 'readback');
          const encoder = device.createCommandEncoder({ label: 'lazytensor block-sparse reduction' });
          const pass = encoder.beginComputePass(sub.passDescriptor());
          pass.setPipeline(pipeline);
          const layout0 = pipeline.getBindGroupLayout(0);
          for (const [q, [, groups]] of sparse.dispatches.entries()) {
            const entries: GPUBindGroupEntry[] = [entry(0, uniformBuffer, UNIFORM_BYTES, q * ualign)];
            if (outer !== null) entries.push(entry(1, outer, plan.nOuter * layout.outerStride * 4));
            if (inner !== null) entries.push(entry(2, inner, plan.nInner * layout.innerStride * 4));
            if (paramBuffer !== null) entries.push(entry(3, paramBuffer, params.byteLength));
            if (valueBuffer !== null) entries.push(entry(4, valueBuffer, bytes));
            if (indexBuffer !== null) entries.push(entry(5, indexBuffer, bytes));
            entries.push(
              entry(7, items, sparse.items.byteLength),
              entry(8, innerRanges, Math.max(16, ranges.inner.byteLength)),
            );
            pass.setBindGroup(0, device.createBindGroup({ layout: layout0, entries }));
            pass.dispatchWorkgroups(groups);
            this.stats.dispatches++;
          }
          pass.end();
          if (valueBuffer !== null) encoder.copyBufferToBuffer(valueBuffer, 0, readback, 0, bytes);
          if (indexBuffer !== null) encoder.copyBufferToBuffer(indexBuffer, 0, readback, bytes, bytes);
          sub.copyTimestamps(encoder, readback, timeAt);
          queue.submit([encoder.finish()]);
          await sub.popScopes();
          const mapped = await sub.mapRead(readback, readBytes);
          if (values !== null) values.set(new Float32Array(mapped, 0, count));
          if (indices !== null) indices.set(new Int32Array(mapped, bytes, count));
          if (sub.querySet !== null) this.lastGpuTimeMs = Submission.elapsedNs(mapped, timeAt) / 1e6;
          readback.unmap();
        } else {
          await sub.popScopes();
        }
        // Rows no cluster covers: the reduction of an empty set, as the WebAssembly engine leaves them.
        const empty = reductionEmptyValue(plan.kind);
        for (const [a, b] of sparse.uncovered) {
          values?.fill(empty, a * plan.outDim, b * plan.outDim);
          indices?.fill(-1, a * plan.outDim, b * plan.outDim);
        }
      },
    );
    return { values, indices };
  }
}

/** How a block-sparse reduction is dispatched: work items of up to one workgroup of rows of one
 *  cluster, grouped into dispatches. */
export interface SparsePlan {
  /** Per item: first row, rows, first and end inner range (u32 x 4). */
  readonly items: Uint32Array;
  /** [first item, items] of each dispatch. */
  readonly dispatches: readonly (readonly [number, number])[];
  /** Rows that no cluster covers (they get the reduction of an empty set). */
  readonly uncovered: readonly (readonly [number, number])[];
}

/** Plans a block-sparse reduction: each outer row belongs to the last cluster that covers it (as a
 *  sequential run over the clusters leaves it); items never mix clusters; a dispatch holds at most
 *  maxComputeWorkgroupsPerDimension items and about maxPairsPerDispatch pairs (one item at least). */
export function planSparse(
  ranges: NonNullable<ReductionPlan['ranges']>,
  nOuter: number,
  workgroupSize: number,
  limits: EngineLimits,
  check: (clusters: number) => void = () => undefined,
): SparsePlan {
  const C = ranges.slices.length;
  check(C);
  const owner = new Int32Array(nOuter).fill(-1);
  for (let c = 0; c < C; c++)
    owner.fill(c, Math.max(0, ranges.outer[2 * c]!), Math.min(nOuter, ranges.outer[2 * c + 1]!));
  const rangeLength = (c: number): number => {
    let n = 0;
    for (let r = c === 0 ? 0 : ranges.slices[c - 1]!; r < ranges.slices[c]!; r++)
      n += Math.max(0, ranges.inner[2 * r + 1]! - ranges.inner[2 * r]!);
    return n;
  };
  const items: number[] = [];
  const pairs: number[] = [];
  const uncovered: [number, number][] = [];
  for (let i = 0; i < nOuter;) {
    const c = owner[i]!;
    let end = i + 1;
    while (end < nOuter && owner[end] === c) end++;
    if (c < 0) {
      uncovered.push([i, end]);
    } else {
      const r0 = c === 0 ? 0 : ranges.slices[c - 1]!;
      const r1 = ranges.slices[c]!;
      const len = rangeLength(c);
      for (let a = i; a < end; a += workgroupSize) {
        const rows = Math.min(workgroupSize, end - a);
        items.push(a, rows, r0, r1);
        pairs.push(rows * len);
      }
    }
    i = end;
  }
  const dispatches: [number, number][] = [];
  let first = 0;
  let acc = 0;
  for (let q = 0; q < pairs.length; q++) {
    const count = q - first;
    if (
      count > 0 &&
      (count >= limits.maxComputeWorkgroupsPerDimension || acc + pairs[q]! > limits.maxPairsPerDispatch)
    ) {
      dispatches.push([first, count]);
      first = q;
      acc = 0;
    }
    acc += pairs[q]!;
  }
  if (pairs.length > first) dispatches.push([first, pairs.length - first]);
  return { items: Uint32Array.from(items), dispatches, uncovered };
}

/** Block-sparse reductions bind whole arrays (a cluster's ranges may point anywhere): they must fit. */
function sparseBindingCheck(plan: ReductionPlan, layout: DataLayout, limits: EngineLimits, clusters: number): void {
  const bind = limits.maxStorageBufferBindingSize;
  const sizes: [string, number][] = [
    ['outer rows', plan.nOuter * layout.outerStride * 4],
    ['inner rows', plan.nInner * layout.innerStride * 4],
    ['results', plan.nOuter * plan.outDim * 4],
    ['ranges', (plan.ranges?.inner.length ?? 0) * 4],
    ['work items', 16 * (clusters + Math.ceil(plan.nOuter / 16))],
  ];
  for (const [what, bytes] of sizes) {
    if (bytes > bind) {
      throw new RangeError(
        `${plan.kind}: block-sparse reductions on WebGPU bind whole arrays, and the ${what} (${bytes} bytes) exceed maxStorageBufferBindingSize (${bind})`,
      );
    }
  }
}

async function compilationMessages(module: GPUShaderModule, cause: unknown): Promise<string> {
  const parts: string[] = [];
  if (cause instanceof Error) parts.push(cause.message);
  try {
    const info = await module.getCompilationInfo();
    for (const m of info.messages) if (m.type === 'error') parts.push(`${m.lineNum}:${m.linePos} ${m.message}`);
  } catch {
    // getCompilationInfo is optional in some implementations.
  }
  return parts.join('; ');
}

/** A plan's variables by role (outer and inner rows packed later, chunk by chunk) and its parameters
 *  packed as the layout says. */
function splitVariables(plan: ReductionPlan, layout: DataLayout) {
  const outerVars: { data: Float32Array | Float64Array; dim: number; offset: number }[] = [];
  const innerVars: { data: Float32Array | Float64Array; dim: number; offset: number }[] = [];
  const params = new Float32Array(Math.max(1, layout.paramWords));
  for (const { variable, role } of plan.variables) {
    const offset = layout.offsets.get(variable)!;
    if (role === 'outer') outerVars.push({ data: variable.data, dim: variable.dim, offset });
    else if (role === 'inner') innerVars.push({ data: variable.data, dim: variable.dim, offset });
    else params.set(variable.data, offset);
  }
  return { outerVars, innerVars, params };
}

/** A bind group entry for `size` bytes of `buffer` from `offset` (sizes rounded up to whole words). */
function entry(binding: number, buffer: GPUBuffer, size: number, offset = 0): GPUBindGroupEntry {
  return { binding, resource: { buffer, offset, size: Math.max(4, align(size, 4)) } };
}
