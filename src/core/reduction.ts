// What an engine receives: a reduction of a formula over one axis, fully checked and sized.
import type { DType, FormulaNode, Variable } from './formula.js';

/** The reductions engines implement. */
export type ReductionKind =
  | 'sum'
  | 'logSumExp'
  | 'logSumExpWeighted'
  | 'sumSoftMaxWeight'
  | 'min'
  | 'max'
  | 'argMin'
  | 'argMax'
  | 'minArgMin'
  | 'maxArgMax'
  | 'kMin'
  | 'argKMin'
  | 'kMinArgKMin';

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
  /** The weight G of logSumExpWeighted and sumSoftMaxWeight. */
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
}

export function reductionHasValues(kind: ReductionKind): boolean {
  return kind !== 'argMin' && kind !== 'argMax' && kind !== 'argKMin';
}

export function reductionHasIndices(kind: ReductionKind): boolean {
  switch (kind) {
    case 'argMin':
    case 'argMax':
    case 'argKMin':
    case 'minArgMin':
    case 'maxArgMax':
    case 'kMinArgKMin':
      return true;
    case 'sum':
    case 'logSumExp':
    case 'logSumExpWeighted':
    case 'sumSoftMaxWeight':
    case 'min':
    case 'max':
    case 'kMin':
      return false;
  }
}

/** The reduction of an empty set, per kind: 0 for sums, -inf for log-sum-exp, NaN (0/0) for softmax
 *  averages, NaN (with index -1) for the min/max families. */
const EMPTY_VALUES: Readonly<Record<ReductionKind, number>> = {
  sum: 0,
  logSumExp: -Infinity,
  logSumExpWeighted: -Infinity,
  sumSoftMaxWeight: NaN,
  min: NaN,
  max: NaN,
  argMin: NaN,
  argMax: NaN,
  minArgMin: NaN,
  maxArgMax: NaN,
  kMin: NaN,
  argKMin: NaN,
  kMinArgKMin: NaN,
};

/** What rows that no cluster of a block-sparse plan covers hold, on every engine (see EMPTY_VALUES;
 *  their indices are -1). */
export function reductionEmptyValue(kind: ReductionKind): number {
  return EMPTY_VALUES[kind];
}
