// Every reduction, one record each: what it means to the core (values and/or indices, the output
// dimension and shape, the value of an empty set, whether it takes K, a weight or an accumulation
// option, whether it has a gradient), and how it reaches the engines. Most records are implemented by
// the engines directly (their lowerings are the per-engine tables keyed by ReductionKind:
// WASM_REDUCTIONS in src/wasm/compile.ts, WGSL_REDUCTIONS in src/gpu/codegen.ts; TypeScript rejects a
// table that misses a kind). The others are *lowered* here, once for every engine, to a reduction the
// engines implement: a rewritten formula and a finishing step on the output (prod, the K-max family).
// Gradient rules are keyed by the same names in reduction-grad.ts (they build LazyTensors, which this
// module must not import).
import { apply, constant } from './build.js';
import type { FormulaNode } from './formula.js';
import * as ops from './ops.js';

/** The reductions engines implement (every engine table is keyed by these). */
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

/** Reductions the core lowers to an engine reduction (see ReductionLowering). */
export type LoweredReductionKind = 'prod' | 'kMax' | 'argKMax' | 'kMaxArgKMax';

/** Every reduction a LazyTensor method can request. */
export type AnyReductionKind = ReductionKind | LoweredReductionKind;

/** How a reduction is computed by an engine reduction: `formula` rewrites F (G is unchanged), the
 *  engine runs `kind` over it, and `finish` turns that output (laid out [rows, engine outDim]) into
 *  this reduction's output ([rows, outDim]). */
export interface ReductionLowering {
  readonly kind: ReductionKind;
  formula(F: FormulaNode): FormulaNode;
  finish(
    values: Float32Array | Float64Array | null,
    indices: Int32Array | null,
    rows: number,
    outDim: number,
  ): { values: Float32Array | Float64Array | null; indices: Int32Array | null };
}

/** How the cost model behind `engine: 'auto'` (src/runtime/cost-model.ts) prices a reduction's
 *  pairs: 'kernel' for the accumulating reductions (sums, log-sum-exps: straight-line updates),
 *  'select' for the min / max / arg / K-min / K-max families (a compare and branch per pair, slower
 *  on both engines). Large-D products have a third class there, decided by the formula, not here. */
export type ReductionCost = 'kernel' | 'select';

/** One reduction. */
export interface ReductionDef {
  readonly name: AnyReductionKind;
  /** It returns values (a float tensor). */
  readonly values: boolean;
  /** It returns indices (an Int32 tensor; -1 where nothing was selected). */
  readonly indices: boolean;
  /** The weight G: none, or required (logSumExpWeighted, sumSoftMaxWeight: F then has dimension 1). */
  readonly weight: 'none' | 'required';
  /** It takes K (the K-min and K-max families): 1 <= K <= the reduced size. */
  readonly takesK: boolean;
  /** It accepts `accumulate: 'float64'` (float32 sums accumulated in float64 / two-float). */
  readonly accumulates: boolean;
  /** vjp can differentiate it (the rule is COTANGENT_RULES[name] in reduction-grad.ts). */
  readonly differentiable: boolean;
  /** Values per outer index, from d = dim(F), e = dim(G) (0 without a weight) and K (0 without). */
  outDim(d: number, e: number, K: number): number;
  /** The result shape of one batch item with `rows` outer indices. */
  shape(rows: number, d: number, outDim: number, K: number): number[];
  /** The value of the reduction of an empty set (rows of a block-sparse pattern in no cluster). */
  readonly empty: number;
  /** Null: the engines implement it as `name`; else the engine reduction it runs as. */
  readonly lowering: ReductionLowering | null;
  /** Its rate class in the cost model (see ReductionCost); a lowered reduction has its engine
   *  reduction's. Spelled out on every record (not in the shared bases), so none is priced by
   *  default. */
  readonly cost: ReductionCost;
}

const plain = (rows: number, _d: number, outDim: number): number[] => [rows, outDim];
const ranked = (rows: number, d: number, _outDim: number, K: number): number[] => (d === 1 ? [rows, K] : [rows, K, d]);
const sameDim = (d: number): number => d;
const weightDim = (_d: number, e: number): number => e;
const kTimesDim = (d: number, _e: number, K: number): number => K * d;

type Base = Omit<ReductionDef, 'name' | 'values' | 'indices' | 'cost'>;
const SUM_LIKE: Base = {
  weight: 'none',
  takesK: false,
  accumulates: false,
  differentiable: true,
  outDim: sameDim,
  shape: plain,
  empty: 0,
  lowering: null,
};
const SELECT: Base = { ...SUM_LIKE, empty: NaN };
const SELECT_K: Base = { ...SELECT, takesK: true, outDim: kTimesDim, shape: ranked };
const WEIGHTED: Base = { ...SUM_LIKE, weight: 'required', outDim: weightDim };

/** kMax(F) = -kMin(-F): negation is exact and keeps equal values equal and NaN NaN, so the ranks,
 *  the tie rule (lowest index first), the NaN rule (never selected) and the unfilled slots (index
 *  -1, value NaN) are exactly those of the K-min family. */
function negatedKMin(kind: 'kMin' | 'argKMin' | 'kMinArgKMin'): ReductionLowering {
  return {
    kind,
    formula: (F) => apply(ops.neg, [F], null),
    finish: (values, indices) => {
      if (values !== null) for (let q = 0; q < values.length; q++) values[q] = -values[q]!;
      return { values, indices };
    },
  };
}

/** prod(F) from one sum of [log|F|, F < 0] (dimension 2d): the product is
 *  (-1)^negatives * exp(sum log|F|), so 10^5 factors never overflow or underflow on the way; it is
 *  +-Infinity only when the product itself exceeds the dtype's range (and 0 when it is below it), 0
 *  with any zero factor, NaN with a NaN factor or a zero times an infinite factor. */
const PROD_LOWERING: ReductionLowering = {
  kind: 'sum',
  formula: (F) => {
    // A zero factor adds log 0 = -inf (the product is 0), an infinite one +inf, both NaN.
    const logAbs = apply(ops.log, [apply(ops.abs, [F], null)], null);
    return apply(ops.concat, [logAbs, apply(ops.lt, [F, constant([0])], null)], null);
  },
  finish: (values, indices, rows, outDim) => {
    const sums = values!;
    const out = new (sums.constructor as new (n: number) => Float32Array | Float64Array)(rows * outDim);
    for (let r = 0; r < rows; r++) {
      const at = r * 2 * outDim;
      for (let k = 0; k < outDim; k++) {
        const logSum = sums[at + k]!;
        // The counts are sums of 0/1 terms: exact integers (up to 2^24 terms in float32).
        const negatives = Math.round(sums[at + outDim + k]!);
        const magnitude = Math.exp(logSum); // NaN stays NaN; -inf (a zero factor) gives 0
        out[r * outDim + k] = negatives % 2 === 1 ? -magnitude : magnitude;
      }
    }
    return { values: out, indices };
  },
};

/** Every reduction, by name. */
export const REDUCTIONS: { readonly [K in AnyReductionKind]: ReductionDef & { readonly name: K } } = {
  sum: { ...SUM_LIKE, name: 'sum', values: true, indices: false, accumulates: true, cost: 'kernel' },
  logSumExp: { ...SUM_LIKE, name: 'logSumExp', values: true, indices: false, empty: -Infinity, cost: 'kernel' },
  logSumExpWeighted: {
    ...WEIGHTED,
    name: 'logSumExpWeighted',
    values: true,
    indices: false,
    empty: -Infinity,
    cost: 'kernel',
  },
  // 0/0 for an empty set.
  sumSoftMaxWeight: { ...WEIGHTED, name: 'sumSoftMaxWeight', values: true, indices: false, empty: NaN, cost: 'kernel' },
  min: { ...SELECT, name: 'min', values: true, indices: false, cost: 'select' },
  max: { ...SELECT, name: 'max', values: true, indices: false, cost: 'select' },
  argMin: { ...SELECT, name: 'argMin', values: false, indices: true, differentiable: false, cost: 'select' },
  argMax: { ...SELECT, name: 'argMax', values: false, indices: true, differentiable: false, cost: 'select' },
  minArgMin: { ...SELECT, name: 'minArgMin', values: true, indices: true, differentiable: false, cost: 'select' },
  maxArgMax: { ...SELECT, name: 'maxArgMax', values: true, indices: true, differentiable: false, cost: 'select' },
  kMin: { ...SELECT_K, name: 'kMin', values: true, indices: false, cost: 'select' },
  argKMin: { ...SELECT_K, name: 'argKMin', values: false, indices: true, differentiable: false, cost: 'select' },
  kMinArgKMin: { ...SELECT_K, name: 'kMinArgKMin', values: true, indices: true, differentiable: false, cost: 'select' },
  prod: {
    ...SUM_LIKE,
    name: 'prod',
    values: true,
    indices: false,
    accumulates: true,
    empty: 1,
    lowering: PROD_LOWERING,
    cost: 'kernel',
  },
  kMax: { ...SELECT_K, name: 'kMax', values: true, indices: false, lowering: negatedKMin('kMin'), cost: 'select' },
  argKMax: {
    ...SELECT_K,
    name: 'argKMax',
    values: false,
    indices: true,
    differentiable: false,
    lowering: negatedKMin('argKMin'),
    cost: 'select',
  },
  kMaxArgKMax: {
    ...SELECT_K,
    name: 'kMaxArgKMax',
    values: true,
    indices: true,
    differentiable: false,
    lowering: negatedKMin('kMinArgKMin'),
    cost: 'select',
  },
};

/** The record of a reduction name (an engine kind or a lowered one). */
export function reductionDef(kind: AnyReductionKind): ReductionDef {
  return REDUCTIONS[kind];
}

/** Every reduction name, in table order. */
export const REDUCTION_NAMES = Object.keys(REDUCTIONS) as AnyReductionKind[];
