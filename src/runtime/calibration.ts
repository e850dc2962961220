// The calibration of the cost model (cost-model.ts): a few small reductions on each engine, the
// first time 'auto' meets a WebGPU device, measure what the defaults only guess: each engine's fixed
// overhead per reduction, its rate on a D = 3 Gaussian kernel sum ('kernel') and on a D = 64 nearest
// neighbour search ('product'). The 'select' rates are the defaults scaled by the measured/default
// ratio of the kernel rate; host transfer rates stay the defaults.
//
// Cost: a few milliseconds on a GPU (plus compiling three pipelines); the GPU sizes grow by 4x from
// 2^20 pairs (N = M doubling) until a run takes CALIBRATION_RUN_SECONDS or the budget is spent, so CPU adapters stop
// early. Every step awaits (the GPU runs are asynchronous, and a macrotask separates the Wasm runs,
// each about a millisecond), so the event loop is never held for long.
import type { Engine } from '../core/engine.js';
import { Vi, Vj } from '../core/lazy-tensor.js';
import type { ReductionPlan } from '../core/reduction.js';
import { reductionShape, type CostClass, type CostFigures, type EngineFigures } from './cost-model.js';

/** Where a figure comes from. */
export type FigureSource = 'measured' | 'scaled' | 'default';

/** Figure paths ('webgpu.rate.kernel', 'wasm.overhead', ...) -> where each comes from. */
export type FigureSources = Readonly<Record<string, FigureSource>>;

export interface Calibration {
  readonly figures: CostFigures;
  readonly sources: FigureSources;
  /** Wall milliseconds the calibration took (compiles included). */
  readonly ms: number;
}

/** A GPU run this long measures a rate well above timer noise. */
const CALIBRATION_RUN_SECONDS = 2e-3;
/** The GPU sizes stop growing once the calibration has taken this long. */
const CALIBRATION_BUDGET_MS = 60;
/** The largest side of a GPU calibration run. */
const MAX_SIDE = 16384;

const now = (): number => performance.now();
/** A macrotask: timers and I/O callbacks run between calibration steps. */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

function rows(n: number, dim: number, seed: number): Float32Array {
  const out = new Float32Array(n * dim);
  let s = seed >>> 0;
  for (let k = 0; k < out.length; k++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[k] = s / 2 ** 32;
  }
  return out;
}

const gauss = (n: number, m: number): ReductionPlan =>
  Vi(rows(n, 3, 1), 3)
    .sqDist(Vj(rows(m, 3, 2), 3))
    .mul(-8)
    .exp()
    .plan('sum', 1, undefined);

const nearest = (n: number, m: number): ReductionPlan =>
  Vi(rows(n, 64, 3), 64)
    .sqDist(Vj(rows(m, 64, 4), 64))
    .plan('argMin', 1, undefined);

/** Runs `plan` on `engine`: wall seconds, and the GPU's own time when the engine measured it. */
async function timed(engine: Engine, plan: ReductionPlan, gpuTime?: () => number | null) {
  await yieldToLoop();
  const t0 = now();
  await engine.reduce(plan);
  const wall = (now() - t0) / 1000;
  const gpu = gpuTime?.() ?? null;
  return { wall, gpu: gpu === null ? null : gpu / 1000 };
}

async function overheadOf(engine: Engine, plan: ReductionPlan): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < 3; r++) best = Math.min(best, (await timed(engine, plan)).wall);
  return best;
}

/**
 * Measures both engines and returns the refined figures. `gpuTime` reads the GPU engine's last
 * timestamp-query time (ms) when it has one. Throws what the engines throw (the caller then keeps
 * the threshold rule).
 */
export async function calibrate(
  gpuEngine: Engine,
  gpuTime: () => number | null,
  wasmEngine: Engine,
  defaults: CostFigures,
): Promise<Calibration> {
  const start = now();
  const sources: Record<string, FigureSource> = {};
  const elapsedMs = (): number => now() - start;

  /** Rate of a class on the GPU: sizes grow until a run is long enough to measure. */
  const gpuRate = async (make: (n: number, m: number) => ReductionPlan, first: number, overhead: number) => {
    // N = M (the most pairs for the data generated), doubling: at most 16384 x 16384 pairs, 8 MB of
    // D = 64 data.
    for (let n = first; ; n *= 2) {
      const plan = make(n, n);
      const t = await timed(gpuEngine, plan, gpuTime);
      const compute = t.gpu ?? Math.max(t.wall - overhead, t.wall / 10);
      const shape = reductionShape(plan);
      if (compute >= CALIBRATION_RUN_SECONDS || elapsedMs() > CALIBRATION_BUDGET_MS || n >= MAX_SIDE) {
        return (shape.pairs * shape.work) / Math.max(compute, 1e-7);
      }
    }
  };
  const wasmRate = async (plan: ReductionPlan, overhead: number) => {
    const shape = reductionShape(plan);
    let best = Infinity;
    for (let r = 0; r < 2; r++) best = Math.min(best, (await timed(wasmEngine, plan)).wall);
    return (shape.pairs * shape.work) / Math.max(best - overhead, best / 10, 1e-7);
  };

  // Compile first (not timed): the pipelines of every plan shape used below.
  await gpuEngine.reduce(gauss(64, 64));
  await gpuEngine.reduce(nearest(64, 64));
  await wasmEngine.reduce(gauss(16, 16));
  const gpuOverhead = await overheadOf(gpuEngine, gauss(64, 64));
  const wasmOverhead = await overheadOf(wasmEngine, gauss(16, 16));
  const gpuKernel = await gpuRate(gauss, 1024, gpuOverhead);
  const gpuProduct = await gpuRate(nearest, 512, gpuOverhead);
  const wasmKernel = await wasmRate(gauss(256, 2048), wasmOverhead);
  const wasmProduct = await wasmRate(nearest(64, 512), wasmOverhead);

  const refine = (
    engine: 'wasm' | 'webgpu',
    base: EngineFigures,
    overhead: number,
    kernel: number,
    product: number,
  ): EngineFigures => {
    const measured: Partial<Record<CostClass, number>> = { kernel, product };
    sources[`${engine}.overhead`] = 'measured';
    sources[`${engine}.rate.kernel`] = 'measured';
    sources[`${engine}.rate.product`] = 'measured';
    sources[`${engine}.rate.select`] = 'scaled';
    sources[`${engine}.bytesPerSecond`] = 'default';
    return {
      rate: {
        kernel: measured.kernel!,
        product: measured.product!,
        select: base.rate.select * (kernel / base.rate.kernel),
      },
      overhead,
      bytesPerSecond: base.bytesPerSecond,
    };
  };
  const figures: CostFigures = {
    webgpu: refine('webgpu', defaults.webgpu, gpuOverhead, gpuKernel, gpuProduct),
    wasm: refine('wasm', defaults.wasm, wasmOverhead, wasmKernel, wasmProduct),
  };
  return { figures, sources, ms: elapsedMs() };
}

/** Every figure path of `figures`, marked as a default. */
export function defaultSources(): FigureSources {
  const out: Record<string, FigureSource> = {};
  for (const engine of ['wasm', 'webgpu']) {
    for (const f of ['overhead', 'rate.kernel', 'rate.select', 'rate.product', 'bytesPerSecond'])
      out[`${engine}.${f}`] = 'default';
  }
  return out;
}
