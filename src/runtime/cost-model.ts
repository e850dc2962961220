// The cost model behind engine: 'auto' (issue 15): the predicted time of a reduction on each engine,
// from a few figures per engine, so that each reduction goes to the engine predicted faster.
//
//   seconds = overhead + pairs * work / rate[class] + bytes / bytesPerSecond
//
// - class and work (reductionShape): 'product' for formulas whose per-pair work is a large-D
//   product (the tiled WebGPU kernels, the blocked Wasm tiles), work = D x products per pair (rates
//   in pair-components per second); 'select' for the min / argMin / K-min families (branchy
//   updates); 'kernel' for the rest (sums, log-sum-exps), work = pairCost (units of a D = 3 Gaussian
//   pair, about 64 component operations).
// - overhead: the fixed cost of one reduction (WebGPU: submission, dispatch and the map/readback
//   round trip; Wasm: the job and its workers).
// - bytes: what WebGPU copies between host and device (both sides' rows, the results); Wasm reads
//   the arrays in place (bytesPerSecond Infinity).
// The figures start from DEFAULT_*_FIGURES and are refined by a calibration (runtime/index.ts) the
// first time 'auto' meets a device; the model itself is a pure function of its figures (tested so).
import type { ReductionPlan } from '../core/reduction.js';
import { REDUCTIONS } from '../core/reduction-defs.js';
import { pairCost, tiledProducts } from '../gpu/codegen.js';
import { TILED_MIN_D } from '../gpu/engine.js';

/** The rate classes of the model (see the top of this file): a reduction record's class
 *  ('kernel', 'select': ReductionDef.cost) or 'product' for the large-D products. */
export type CostClass = 'kernel' | 'select' | 'product';

/** The figures of one engine. */
export interface EngineFigures {
  /** Work units per second by class ('product': pair-components per second; others: D = 3
   *  Gaussian pairs per second). Positive. */
  readonly rate: Readonly<Record<CostClass, number>>;
  /** Seconds per reduction whatever its size (>= 0). */
  readonly overhead: number;
  /** Bytes per second between host and engine (> 0); Infinity where nothing is copied. */
  readonly bytesPerSecond: number;
}

/** The figures of both engines. */
export interface CostFigures {
  /** The WebAssembly engine's (on all its threads). */
  readonly wasm: EngineFigures;
  /** The WebGPU engine's (on the acquired device). */
  readonly webgpu: EngineFigures;
}

/** What a reduction costs in the model's terms. */
export interface ReductionShape {
  readonly pairs: number;
  readonly cls: CostClass;
  /** Work units per pair. */
  readonly work: number;
  /** Bytes WebGPU copies between host and device (inputs and results). */
  readonly bytes: number;
}

/** Default Wasm figures per worker thread (multiplied by the thread count): estimates from this
 *  project's 2-core measurements (0.6-1.4 Gpairs/s for a D = 3 Gaussian sum on 2 threads; blocked
 *  large-D tiles about 2 GFLOP/s per core and more), not a calibration of the machine at hand. */
export const DEFAULT_WASM_FIGURES_PER_THREAD: EngineFigures = {
  rate: { kernel: 4e8, select: 2.5e8, product: 1.5e9 },
  overhead: 1e-4,
  bytesPerSecond: Infinity,
};

/** Default WebGPU figures: a conservative discrete GPU (well below the 2.5e11 pairs/s
 *  target for a Gaussian sum), 0.5 ms per submission round trip (0.3-1 ms is typical: upload,
 *  dispatch, mapAsync), 8 GB/s host transfers. Not measured on hardware. */
export const DEFAULT_WEBGPU_FIGURES: EngineFigures = {
  rate: { kernel: 1e11, select: 5e10, product: 2e12 },
  overhead: 5e-4,
  bytesPerSecond: 8e9,
};

/** The default figures for a Wasm engine on `threads` worker threads. */
export function defaultFigures(threads: number): CostFigures {
  const t = Math.max(1, threads);
  const w = DEFAULT_WASM_FIGURES_PER_THREAD;
  return {
    wasm: {
      rate: { kernel: w.rate.kernel * t, select: w.rate.select * t, product: w.rate.product * t },
      overhead: w.overhead,
      bytesPerSecond: w.bytesPerSecond,
    },
    webgpu: DEFAULT_WEBGPU_FIGURES,
  };
}

/** The model's view of a plan: its class, work per pair, pairs and WebGPU's host transfers. */
export function reductionShape(plan: ReductionPlan): ReductionShape {
  const pairs = plan.nOuter * plan.nInner;
  const words = (role: 'outer' | 'inner'): number =>
    plan.variables.filter((v) => v.role === role).reduce((s, v) => s + v.variable.dim, 0);
  const results =
    plan.nOuter * plan.outDim * ((REDUCTIONS[plan.kind].values ? 1 : 0) + (REDUCTIONS[plan.kind].indices ? 1 : 0));
  const bytes = 4 * (plan.nOuter * words('outer') + plan.nInner * words('inner') + results);
  const products = tiledProducts(plan, TILED_MIN_D);
  if (products !== null) return { pairs, cls: 'product', work: products.dim * products.products.length, bytes };
  // The plan carries the engine reduction (a lowered kMax runs as kMin): its record's class.
  return { pairs, cls: REDUCTIONS[plan.kind].cost, work: pairCost(plan), bytes };
}

/** Predicted seconds of a reduction on an engine of figures `f`. */
export function predictSeconds(shape: ReductionShape, f: EngineFigures): number {
  const transfer = Number.isFinite(f.bytesPerSecond) ? shape.bytes / f.bytesPerSecond : 0;
  return f.overhead + (shape.pairs * shape.work) / f.rate[shape.cls] + transfer;
}

/** The engine predicted faster (WebAssembly on a tie), with both predictions. */
export function chooseEngine(
  shape: ReductionShape,
  figures: CostFigures,
): { readonly engine: 'wasm' | 'webgpu'; readonly wasmSeconds: number; readonly webgpuSeconds: number } {
  const wasmSeconds = predictSeconds(shape, figures.wasm);
  const webgpuSeconds = predictSeconds(shape, figures.webgpu);
  return { engine: webgpuSeconds < wasmSeconds ? 'webgpu' : 'wasm', wasmSeconds, webgpuSeconds };
}
