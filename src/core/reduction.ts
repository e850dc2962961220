// What an engine receives: a reduction of a formula over one axis, fully checked and sized.
import type { DType, FormulaNode, Variable } from './formula.js';

import { REDUCTIONS, type ReductionKind } from './reduction-defs.js';

export type { AnyReductionKind, LoweredReductionKind, ReductionKind } from './reduction-defs.js';

/** Engine choice: `auto` picks WebGPU when it is available and pays off, else WebAssembly. */
export type EngineChoice = 'auto' | 'wasm' | 'webgpu';

/** The axis reduced over: 1 sums over j (one result per i), 0 sums over i (one result per j). */
export type Axis = 0 | 1;

/** A reduction ready to run. "Outer" is the index results are indexed by, "inner" the one reduced. */
export interface ReductionPlan {
  readonly kind: ReductionKind;
  readonly axis: Axis;
  /** The reduced formula F. */
  readonly formula: FormulaNode;
  /** The weight G of logSumExpWeighted and sumSoftMaxWeight. On a 'sum' (internal: the one-sweep
   *  attention backward of vjp, WebAssembly only, dense plans): the column formula, summed over the
   *  outer index into ReductionOutput.columns, one row per inner index. */
  readonly weight: FormulaNode | null;
  /** K of the K-min family, else 0. */
  readonly k: number;
  readonly dtype: DType;
  readonly nOuter: number;
  readonly nInner: number;
  /** Values per outer index in the output (d, e or K*d). */
  readonly outDim: number;
  /** Every variable, each marked as outer, inner or parameter for this axis. */
  readonly variables: readonly PlanVariable[];
  /** Block-sparse pattern for this axis, or null to visit every pair. */
  readonly ranges: PlanRanges | null;
  /** 'float64': a float32 sum accumulates in float64 (WebAssembly) or in two floats (WebGPU);
   *  absent: the default accumulation of the dtype. Only on sums (REDUCTIONS[kind].accumulates). */
  readonly accumulate?: 'float64';
}

/** Which inner ranges each cluster of outer indices visits: outer and inner hold [start, end) pairs;
 *  cluster c visits inner pairs [slices[c-1], slices[c]) (with slices[-1] = 0). */
export interface PlanRanges {
  readonly outer: Int32Array;
  readonly slices: Int32Array;
  readonly inner: Int32Array;
}

export interface PlanVariable {
  readonly variable: Variable;
  readonly role: 'outer' | 'inner' | 'param';
}

/** What an engine returns: values and/or indices, laid out [nOuter, outDim]. */
export interface ReductionOutput {
  readonly values: Float32Array | Float64Array | null;
  readonly indices: Int32Array | null;
  /** sumSoftMaxWeight only, from the engines that compute it on the way (WebAssembly): per output
   *  row ([nOuter] each) the max m of F and the sum of exp(F - m) (-inf and 0 for a row with no term,
   *  NaN for a row with a NaN or +inf term), which the gradient's softmax weights exp(F - m) / sum
   *  are normalised by (vjp reuses them instead of running a logSumExp reduction). */
  readonly softMax?: SoftMaxStats;
  /** A 'sum' with a column formula (ReductionPlan.weight): its sums over the outer index, [nInner,
   *  weight dim], from the engines that compute them (WebAssembly). */
  readonly columns?: Float32Array | Float64Array;
}

/** The running max and sum of a softmax per output row (see ReductionOutput.softMax). */
export interface SoftMaxStats {
  readonly max: Float32Array | Float64Array;
  readonly sum: Float32Array | Float64Array;
}

/** The reduction returns values (from its record in reduction-defs.ts). */
export function reductionHasValues(kind: ReductionKind): boolean {
  return REDUCTIONS[kind].values;
}

/** The reduction returns indices (from its record in reduction-defs.ts). */
export function reductionHasIndices(kind: ReductionKind): boolean {
  return REDUCTIONS[kind].indices;
}

/** The value of the reduction of an empty set: 0 for sums, -inf for log-sum-exp, NaN (0/0) for
 *  softmax averages, NaN (with index -1) for the min/max families. */
export function reductionEmptyValue(kind: ReductionKind): number {
  return REDUCTIONS[kind].empty;
}
