// Gradients of reductions. The gradient of a reduction is itself a reduction of a derivative formula:
// for out_i = red_j F(x_i, y_j, p), the gradient with respect to an i-variable sums over j, with respect
// to a j-variable sums over i (axis 0), and with respect to a parameter sums over both. Each reduction
// supplies the cotangent of F: the user's cotangent for sums, times softmax weights for log-sum-exp and
// sumSoftMaxWeight, and a mask of the selected index for the min/max family (a subgradient).
// The variables reduced over one axis share one reduction: the concatenation of their gradient
// formulas, so F (and the softmax weight, C.G) is computed once per pair, not once per variable. The
// WebAssembly kernel folds each part of such a concatenation into its columns directly (a product
// part without storing it) and sizes its blocks for it (wasm-engine.ts): materialised, the
// concatenation measured 1.3-3x slower than separate reductions, folded part by part it costs
// about what the parts add (attention dk + dv at d = 64: ~1.4x the forward instead of ~2.6x).
import { InputError } from './errors.js';
import { gradient } from './autodiff.js';
import { postOrder, variablesOf, type FormulaNode, type Variable } from './formula.js';
import { checkOptionKeys, floatArrayKind } from './input.js';
import { LazyTensor, softMaxStats, Vi, Vj, type ReductionOptions } from './lazy-tensor.js';
import { Tensor } from './tensor.js';
import { batchSize, mergeBatch, sumOverBroadcast } from './batch.js';
import type { Axis } from './reduction.js';
import { REDUCTIONS } from './reduction-defs.js';
import * as ops from './ops.js';

/** Reductions that have a gradient with respect to their inputs (`differentiable` in their record,
 *  src/core/reduction-defs.ts; logSumExp with a weight is logSumExpWeighted there). */
export type DifferentiableReduction =
  'sum' | 'logSumExp' | 'sumSoftMaxWeight' | 'min' | 'max' | 'kMin' | 'prod' | 'kMax';

/** A reduction described but not run: what `vjp` differentiates. */
export interface ReductionSpec {
  /** The formula F reduced. */
  readonly formula: LazyTensor;
  /** Which reduction. */
  readonly kind: DifferentiableReduction;
  /** The axis reduced over: 1 (over j, one result per i) or 0 (over i). */
  readonly axis: Axis;
  /** The weight of logSumExp (optional) and sumSoftMaxWeight (required). */
  readonly weight?: LazyTensor;
  /** K of kMin and kMax. */
  readonly k?: number;
  /** Options of the reduction (engine, dtype, ranges), also used by the gradient reductions. */
  readonly options?: ReductionOptions;
}

/** The options of the reductions vjp runs itself: the caller's, without onProgress (each of those
 *  reductions would report its own 0..total; the signal is kept, so an abort stops vjp). */
function internalOptions(options: ReductionOptions | undefined): ReductionOptions | undefined {
  if (options?.onProgress === undefined) return options;
  const { onProgress: _ignored, ...rest } = options;
  return rest;
}

/**
 * Describes a reduction for `vjp` without running it: `reduction(F, 'sum', 1)`,
 * `reduction(F, 'sumSoftMaxWeight', 1, { weight: G })`, `reduction(F, 'kMin', 1, { k: 3 })`.
 */
export function reduction(
  formula: LazyTensor,
  kind: DifferentiableReduction,
  axis: Axis,
  extra: { weight?: LazyTensor; k?: number; options?: ReductionOptions } = {},
): ReductionSpec {
  checkSpecArguments('reduction', { kind, ...extra });
  return { formula, kind, axis, ...extra };
}

/** The record name of a described reduction (logSumExp with a weight is logSumExpWeighted). */
function specKind(spec: Pick<ReductionSpec, 'kind' | 'weight'>): DifferentiableReduction | 'logSumExpWeighted' {
  return spec.kind === 'logSumExp' && spec.weight ? 'logSumExpWeighted' : spec.kind;
}

/** The weight and K of a described reduction against what its kind takes. A weight or K the kind
 *  does not take would be left out without a word (a weighted 'sum' computed the plain sum): refused,
 *  here for specs made by reduction() and for object literals alike. */
function checkSpecArguments(where: string, spec: Pick<ReductionSpec, 'kind' | 'weight' | 'k'>): void {
  const kind = specKind(spec);
  if (spec.weight !== undefined && REDUCTIONS[kind].weight === 'none') {
    throw new InputError(`${where}: '${kind}' takes no weight (got one; a weighted sum is F.mul(G).sum)`);
  }
  if (spec.k !== undefined && !REDUCTIONS[kind].takesK) {
    throw new InputError(`${where}: '${kind}' takes no k (got ${String(spec.k)}; kMin and kMax do)`);
  }
}

/** Runs a described reduction. */
export async function runReduction(spec: ReductionSpec): Promise<Tensor<Float32Array | Float64Array>> {
  checkSpecArguments('runReduction', spec);
  const kind = specKind(spec);
  if (REDUCTIONS[kind].weight === 'required' && !spec.weight) throw new InputError(`${kind}: a weight is required`);
  return spec.formula.reduceKind(kind, spec.axis, spec.options, spec.weight, spec.k ?? 1);
}

/** Arguments of `vjp`. */
export interface VjpOptions {
  /** The variables (made by Vi, Vj or Pm) to differentiate with respect to. */
  wrt: readonly LazyTensor[];
  /** The cotangent: one value per output entry, shape [n, outDim] flattened, or a Tensor. */
  cotangent: Float32Array | Float64Array | readonly number[] | Tensor;
  /** Give zeros for a variable of `wrt` that the reduction does not use, instead of an InputError
   *  (default false: as torch.autograd.grad, an unused input is usually a mistake). */
  allowUnused?: boolean;
  /** The reduction's result, when the caller has it (`await F.sumSoftMaxWeight(1, G)`, run with the
   *  same formula, weight, axis and options): logSumExp and sumSoftMaxWeight then do not run the
   *  reduction again, and a sumSoftMaxWeight result computed on WebAssembly carries its rows'
   *  log-sum-exps, so no logSumExp reduction runs either. Default: the reduction is run when its
   *  rule needs it. It must have the result's shape and dtype (an InputError otherwise); that it is
   *  the result of this reduction is the caller's promise (a different tensor gives a wrong
   *  gradient, as the forward values are part of the gradient). */
  value?: Tensor;
}

/** A value's type, for an error message. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Tensor) return `a Tensor of ${v.dtype}`;
  return typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v;
}

/** The outer variable of a reduction over `axis` (indexed like its results), batched like them. */
function outerVariable(
  axis: Axis,
  data: Float32Array | Float64Array,
  dim: number,
  batch: readonly number[],
): LazyTensor {
  const options = batch.length > 0 ? { batch } : undefined;
  return axis === 1 ? Vi(data, dim, options) : Vj(data, dim, options);
}

/** Indices up to this size are exact in float32 (2^24): larger ones are split in two. */
const EXACT_F32_INDEX = 2 ** 24;
/** The split: index = hi * INDEX_SPLIT + lo, both parts exact in float32 for any int32 index. */
const INDEX_SPLIT = 4096;

/**
 * A formula that is 1 where the reduced index equals the selected index (per outer row and per
 * column of `picked`), 0 elsewhere: it masks the cotangent of min/max/kMin onto the selected terms.
 * Indices are integers (Int32) and are compared exactly: past 2^24 in float32 each index is split
 * into a high and a low part (hi * 4096 + lo, both exact in float32) compared separately, since
 * float32 cannot hold such indices (2^24 + 1 rounds to 2^24). Unfilled slots (-1) select nothing.
 */
function selectionMask(
  axis: Axis,
  n: number,
  picked: Int32Array,
  columns: number,
  batch: readonly number[],
  dtype: 'float32' | 'float64',
): LazyTensor {
  const make = (length: number) => (dtype === 'float32' ? new Float32Array(length) : new Float64Array(length));
  const inner = (values: Float32Array | Float64Array) => (axis === 1 ? Vj(values, 1) : Vi(values, 1));
  if (dtype === 'float64' || n <= EXACT_F32_INDEX) {
    const iota = make(n);
    for (let k = 0; k < n; k++) iota[k] = k;
    const selected = make(picked.length);
    selected.set(picked);
    return inner(iota).eq(outerVariable(axis, selected, columns, batch));
  }
  const split = (values: ArrayLike<number>, length: number) => {
    const hi = make(length);
    const lo = make(length);
    for (let k = 0; k < length; k++) {
      const q = Math.floor(values[k]! / INDEX_SPLIT);
      hi[k] = q;
      lo[k] = values[k]! - q * INDEX_SPLIT;
    }
    return { hi, lo };
  };
  const hiJ = make(n);
  const loJ = make(n);
  for (let k = 0; k < n; k++) {
    hiJ[k] = Math.floor(k / INDEX_SPLIT);
    loJ[k] = k % INDEX_SPLIT;
  }
  const sel = split(picked, picked.length);
  const hiMatch = inner(hiJ).eq(outerVariable(axis, sel.hi, columns, batch));
  const loMatch = inner(loJ).eq(outerVariable(axis, sel.lo, columns, batch));
  return hiMatch.mul(loMatch);
}

/** A log-sum-exp (or softmax) result as the data of an outer variable: rows that are -inf (every
 *  term -inf; NaN for a softmax average) become 0, their gradient being 0 (every softmax weight is 0
 *  there, and the gradient formula is masked where the weight is 0). +inf or NaN is an error. */
function finiteOuter(
  where: string,
  values: Float32Array | Float64Array,
  dim: number,
  dtype: 'float32' | 'float64',
  allowNaNRows: boolean,
): { data: Float32Array | Float64Array } {
  const data = dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
  const rows = data.length / dim;
  for (let r = 0; r < rows; r++) {
    let empty = false;
    for (let k = 0; k < dim; k++) {
      const v = data[r * dim + k]!;
      if (v === -Infinity || (allowNaNRows && Number.isNaN(v))) empty = true;
      else if (!Number.isFinite(v)) {
        throw new InputError(
          `vjp: the ${where} result is ${v} at row ${r}: the formula has +inf or NaN terms there, so it has no gradient`,
        );
      }
    }
    if (empty) for (let k = 0; k < dim; k++) data[r * dim + k] = 0;
  }
  return { data };
}

const VJP_OPTION_KEYS = new Set(['wrt', 'cotangent', 'allowUnused', 'value']);

/** What a reduction's gradient is made of: the cotangent `ct` of F (a formula) whose gradient,
 *  reduced, gives the reduction's gradient; `extra` for the weight G; where `valid` is negative the
 *  gradient formula is 0 (a term of softmax weight 0). */
interface FormulaCotangent {
  F: LazyTensor;
  ct: LazyTensor;
  extra: { G: LazyTensor; ct: LazyTensor } | null;
  valid: LazyTensor | null;
}

/** The gradient formulas of the variables reduced over one axis, and how they are reduced: by
 *  default a sum of the (masked) formula over that axis; `reduce` replaces that reduction (the
 *  sumSoftMaxWeight rule reduces the outer variables' gradients with a softmax-weighted average). */
interface GradientPass extends FormulaCotangent {
  reduce?: (W: LazyTensor, axis: Axis) => Promise<Tensor<Float32Array | Float64Array>>;
}

/** A rule's gradient passes: `outer` for the outer variables and parameters (reduced over the
 *  reduction's axis), `inner` for the inner variables (over the other axis). Each is asked for only
 *  when `wrt` has such variables, so a rule computes only what they need; `outer` is told whether
 *  `inner` will be asked for too (it may then share what the inner pass computes anyway). */
interface RulePasses {
  outer(innerToo: boolean): Promise<GradientPass>;
  inner(): Promise<GradientPass>;
  /** Both axes in one sweep over the pairs, where the rule and the engine can: the pass of both
   *  groups, and `run`, which sums `rows` over the reduction's axis and `columns` over the other
   *  at once (null where it cannot: vjp then runs the two passes). */
  sweep?: () => Promise<SweepPass>;
}

interface SweepPass extends GradientPass {
  run(
    rows: LazyTensor,
    columns: LazyTensor,
  ): Promise<{ rows: Tensor<Float32Array | Float64Array>; columns: Tensor<Float32Array | Float64Array> } | null>;
}

/** The most column values (inner rows x the inner gradients' width) a one-sweep vjp accumulates:
 *  the WebAssembly engine keeps one float32 copy per fixed row chunk (8), 64 MiB at this bound. */
const SWEEP_MAX_COLUMN_VALUES = 2 ** 21;

/** A reduction's gradient rule, given its cotangent C (an outer variable), the dtype, the batch,
 *  the options of the reductions the rule runs itself, and the reduction's result (`forward`: run
 *  once, when asked for, unless the caller had it). */
type CotangentRule = (
  spec: ReductionSpec,
  C: LazyTensor,
  dtype: 'float32' | 'float64',
  batch: readonly number[],
  opts: ReductionOptions,
  forward: () => Promise<Tensor<Float32Array | Float64Array>>,
) => Promise<FormulaCotangent | RulePasses>;

// Terms of softmax weight 0 (F = -inf, or underflowed) contribute exactly 0 to the gradient; their
// derivative may be infinite (log at 0), so the gradient formula selects 0 there rather than
// multiplying 0 by inf. For F of dimension d > 1 the mask is on the sum of the d weights.
const positive = (w: LazyTensor): LazyTensor => (w.dim === 1 ? w : w.sum(-1)).gt(0).sub(0.5);

const logSumExpRule: CotangentRule = async (spec, C, dtype, batch, _opts, forward) => {
  const { formula: F, axis } = spec;
  const result = finiteOuter('logSumExp', (await forward()).data, C.dim, dtype, false);
  const out = outerVariable(axis, result.data, C.dim, batch);
  const w = F.sub(out).exp();
  if (!spec.weight) return { F, ct: C.mul(w), extra: null, valid: positive(w) };
  // out_k = log sum exp(F) G_k: d out_k = sum exp(F - out_k) (G_k dF + dG_k)
  const s = w.mul(C); // dimension e
  return { F, ct: s.dot(spec.weight), extra: { G: spec.weight, ct: s }, valid: positive(w) };
};

/** The min/max family: the cotangent masked onto the selected terms (a subgradient). */
function selectionRule(pick: 'argMin' | 'argMax' | 'argKMin' | 'argKMax'): CotangentRule {
  return async (spec, C, dtype, batch, opts) => {
    const { formula: F, axis } = spec;
    const ranked = pick === 'argKMin' || pick === 'argKMax';
    if (ranked && F.dim !== 1) throw new InputError(`vjp of ${spec.kind}: the formula must have dimension 1`);
    const K = spec.k ?? 1;
    const picked = ranked ? await F.reduceIndicesOf(pick, axis, opts, K) : await F.reduceIndicesOf(pick, axis, opts, 0);
    const n = axis === 1 ? F.rowsJ! : F.rowsI!;
    const hit = selectionMask(axis, n, picked.data, ranked ? K : F.dim, batch, dtype);
    return { F, ct: ranked ? C.dot(hit) : C.mul(hit), extra: null, valid: null };
  };
}

/** Outer variable data: `f(r, k)` for every row r and component k. */
function outerData(dtype: 'float32' | 'float64', rows: number, dim: number, f: (q: number) => number) {
  const data = dtype === 'float32' ? new Float32Array(rows * dim) : new Float64Array(rows * dim);
  for (let q = 0; q < data.length; q++) data[q] = f(q);
  return data;
}

/** Operations whose value and derivatives are finite wherever their arguments are (up to float
 *  overflow): a formula made of these and finite constants has no -inf term (a softmax weight of 0)
 *  with an infinite derivative, so its softmax gradients need no mask (the mask, an ifElse over the
 *  whole gradient, cost more than the rest of the attention gradient). */
const FINITE_OPS: ReadonlySet<string> = new Set(
  [
    ops.add,
    ops.sub,
    ops.mul,
    ops.neg,
    ops.abs,
    ops.square,
    ops.sin,
    ops.cos,
    ops.atan,
    ops.sign,
    ops.step,
    ops.relu,
    ops.floor,
    ops.round,
    ops.eq,
    ops.ne,
    ops.lt,
    ops.le,
    ops.gt,
    ops.ge,
    ops.maximum,
    ops.minimum,
    ops.clamp,
    ops.ifElse,
    ops.sum,
    ops.maxComponent,
    ops.minComponent,
    ops.transpose,
    ops.dotProduct,
    ops.sqNorm2,
    ops.sqDist,
    ops.weightedSqNorm,
    ops.weightedSqDist,
    ops.elem,
    ops.extract,
    ops.concat,
    ops.oneHot,
    ops.matVecMult,
    ops.vecMatMult,
    ops.tensorProd,
  ].map((def) => def.name),
);

/** Whether some term of these formulas may be -inf or have an infinite derivative. */
function mayBeInfinite(...formulas: LazyTensor[]): boolean {
  return postOrder(formulas.map((f) => f.node)).some((n) =>
    n.kind === 'var' ? n.isConstant && n.data.some((v) => !Number.isFinite(v)) : !FINITE_OPS.has(n.def.name),
  );
}

/**
 * sumSoftMaxWeight: out = sum_j s_j G_j with s = softmax(F), so d out = sum_j s_j (dG_j + (G_j - out) dF_j)
 * and, for the cotangent C, the cotangent of F is s u with u = C.G - C.out (C.out per row, computed
 * here once) and that of G is s C.
 * - Inner variables (over the other axis): the softmax weights must be normalised per outer row, so
 *   s = exp(F - lse) with lse from one logSumExp reduction, summed over the other axis.
 * - Outer variables and parameters (reduced over the reduction's axis, like out): when the inner
 *   pass runs too, the same s = exp(F - lse) (lse is data by then) times the gradient formula,
 *   summed over the reduction's axis; otherwise one sumSoftMaxWeight of the gradient formula with
 *   cotangents u and C (sum_j s_j W_j is a softmax-weighted average: the kernel's online softmax
 *   normalises, and no logSumExp pass is needed). Measured on the WebAssembly engine (attention,
 *   d = e = 64, N = M = 1024, float32, one thread, loaded machine): the sum is ~1.5x faster than the
 *   softmax-weighted reduction (whose e-wide weight is a block register, materialised per row and
 *   folded through the kernel's online-softmax partials, where the sum folds the last product
 *   directly), and a logSumExp pass costs about as much as that difference: so the sum only when
 *   lse is computed anyway.
 * With the forward's max and sum (WebAssembly) the outer pass is always the normalised sum, and
 * when both axes have variables (at most FUSED_PARTS each, dense, unbatched) both run in one sweep
 * (`sweep`: the engine's sum with column sums, RED_SUM_COLS), s and u computed once per pair. So q,
 * k, v of an attention cost the forward (not run again when the caller has it: `value`, the tape)
 * and one sweep (elsewhere one sum for q, one fused sum for k and v, and one logSumExp). The scalar C.out per row is data, not a
 * formula: reduced over the other axis, a formula of the outer variables would be evaluated per pair.
 */
const softMaxWeightRule = async (
  spec: ReductionSpec,
  C: LazyTensor,
  dtype: 'float32' | 'float64',
  batch: readonly number[],
  opts: ReductionOptions,
  forward: () => Promise<Tensor<Float32Array | Float64Array>>,
): Promise<RulePasses> => {
  const { formula: F, axis } = spec;
  const G = spec.weight!;
  const e = G.dim;
  const out = await forward();
  const rows = out.data.length / e;
  // The softmax normalisers per row: the forward's max and sum when its engine computed them on the
  // way (WebAssembly: no reduction at all; s = exp(F - max) / sum, exact even where max is -1e30,
  // a masked row, which max + log(sum) would round to max), else one logSumExp reduction when a
  // pass needs it (s = exp(F - lse)).
  const stats = softMaxStats.get(out);
  const free = stats !== undefined && stats.max.length === rows ? stats : null;
  let lse: Promise<{ data: Float32Array | Float64Array }> | null = null;
  const lseRaw = () => (lse ??= F.logSumExp(axis, opts));
  /** Whether row r has no term (every F = -inf): no softmax (0/0), its gradient is 0. */
  const noTerm = async (r: number) => (free !== null ? free.max[r] : (await lseRaw()).data[r]) === -Infinity;
  // The shift per row (0 for a row with no term); any other non-finite one (a +inf or NaN term) is
  // an error (finiteOuter).
  const shift = async () => finiteOuter('sumSoftMaxWeight', free?.max ?? (await lseRaw()).data, 1, dtype, false).data;
  const scale = () => outerData(dtype, rows, 1, (r) => (free!.sum[r]! > 0 ? 1 / free!.sum[r]! : 0));
  const cData = C.node.kind === 'var' ? C.node.data : null;
  if (cData === null) throw new Error('internal: the cotangent is not a variable');
  const empty = new Uint8Array(rows);
  let emptyRows = false;
  const cOut = dtype === 'float32' ? new Float32Array(rows) : new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let k = 0; k < e; k++) dot += cData[r * e + k]! * out.data[r * e + k]!;
    if (Number.isFinite(dot)) cOut[r] = dot;
    else emptyRows = (empty[r] = 1) === 1;
  }
  if (emptyRows) {
    // Non-finite results: rows with no term (every F = -inf) have the gradient 0; the log-sum-exp
    // tells them from rows with a +inf or NaN term in F (finiteOuter throws) or in G (thrown here).
    await shift();
    for (let r = 0; r < rows; r++) {
      if (empty[r] === 1 && !(await noTerm(r))) {
        throw new InputError(
          `vjp: the sumSoftMaxWeight result is not finite at row ${r}: the weight has +-inf or NaN terms there, so it has no gradient`,
        );
      }
    }
  }
  const u = C.dot(G).sub(outerVariable(axis, cOut, 1, batch)); // C.(G - out), one scalar per pair
  const infinite = mayBeInfinite(F, G);
  const zeroEmptyRows = (t: Tensor<Float32Array | Float64Array>): Tensor<Float32Array | Float64Array> => {
    if (!emptyRows) return t;
    const width = t.data.length / rows;
    for (let r = 0; r < rows; r++) if (empty[r] === 1) t.data.fill(0, r * width, (r + 1) * width);
    return t;
  };
  // s per pair, normalised per outer row, and the gradient pass built on it.
  const normalised = async (): Promise<GradientPass> => {
    const shifted = F.sub(outerVariable(axis, await shift(), 1, batch)).exp();
    const softmax = free === null ? shifted : shifted.mul(outerVariable(axis, scale(), 1, batch));
    return { F, ct: softmax.mul(u), extra: { G, ct: softmax.mul(C) }, valid: infinite ? positive(softmax) : null };
  };
  const innerRows = (axis === 1 ? F.rowsJ : F.rowsI) ?? (axis === 1 ? G.rowsJ : G.rowsI) ?? 0;
  // With the forward's stats (it ran on WebAssembly): q, k and v of an attention in one sweep, s and
  // u computed once per pair (3d + 2e multiply-adds per pair against the two passes' 4d + 3e).
  const sweep = async (): Promise<SweepPass> => ({
    ...(await normalised()),
    run: async (rowsW, columnsW) => {
      if (innerRows * columnsW.dim > SWEEP_MAX_COLUMN_VALUES) return null;
      const out = await rowsW.sumWithColumns(axis, columnsW, opts);
      if (out === null) return null;
      return {
        rows: zeroEmptyRows(out.rows),
        columns: new Tensor(out.columns, [out.columns.length / columnsW.dim, columnsW.dim], out.rows.engine),
      };
    },
  });
  return {
    ...(free !== null ? { sweep } : {}),
    outer: async (innerToo) =>
      innerToo || free !== null
        ? { ...(await normalised()), reduce: async (W, along) => zeroEmptyRows(await W.sum(along, opts)) }
        : {
            F,
            ct: u,
            extra: { G, ct: C },
            // Terms of weight 0 (F = -inf): select 0 rather than 0 * inf.
            valid: infinite ? F.gt(-Infinity).sub(0.5) : null,
            reduce: async (W, along) => zeroEmptyRows(await F.sumSoftMaxWeight(along, W, opts)),
          },
    inner: normalised,
  };
};

const COTANGENT_RULES: { readonly [K in DifferentiableReduction | 'logSumExpWeighted']: CotangentRule } = {
  sum: async (spec, C) => ({ F: spec.formula, ct: C, extra: null, valid: null }),
  logSumExp: logSumExpRule,
  logSumExpWeighted: logSumExpRule,
  sumSoftMaxWeight: (spec, C, dtype, batch, opts, forward) => softMaxWeightRule(spec, C, dtype, batch, opts, forward),
  min: selectionRule('argMin'),
  max: selectionRule('argMax'),
  kMin: selectionRule('argKMin'),
  kMax: selectionRule('argKMax'),
  // d prod / dF_j = prod_{k != j} F_k per component: out / F_j without a zero factor; with exactly
  // one zero, the product of the others at that zero and 0 elsewhere; with two or more, 0. The
  // products of the non-zero factors (P) and the zero counts (Z) are two reductions.
  prod: async (spec, C, dtype, batch, opts) => {
    const { formula: F, axis } = spec;
    const isZero = F.eq(0).sub(0.5); // >= 0 exactly where F == 0
    const nonZero = isZero.ifElse(1, F);
    const P = (await nonZero.prod(axis, opts)).data;
    const Z = (await F.eq(0).sum(axis, opts)).data;
    const rows = P.length / F.dim;
    const A = outerVariable(
      axis,
      outerData(dtype, rows, F.dim, (q) => (Z[q] === 0 ? P[q]! : 0)),
      F.dim,
      batch,
    );
    const B = outerVariable(
      axis,
      outerData(dtype, rows, F.dim, (q) => (Z[q] === 1 ? P[q]! : 0)),
      F.dim,
      batch,
    );
    return { F, ct: C.mul(isZero.ifElse(B, A.div(nonZero))), extra: null, valid: null };
  },
};

const DIFFERENTIABLE: ReadonlySet<string> = new Set(
  (Object.keys(COTANGENT_RULES) as (keyof typeof COTANGENT_RULES)[]).filter((k) => k !== 'logSumExpWeighted'),
);

/** Whether vjp fuses the gradients of the variables of one axis into one reduction (the default);
 *  off only in tests, which compare both. */
const fusion = { enabled: true, sweeps: 0 };

/** @internal Hooks for the tests: fuse the gradients of one axis (default) or not. */
export const vjpTesting = {
  fuse(enabled: boolean): void {
    fusion.enabled = enabled;
  },
  /** How many vjp calls ran both axes in one sweep (RulePasses.sweep) so far. */
  sweeps(): number {
    return fusion.sweeps;
  },
};

/** How many gradient formulas one fused reduction concatenates: the kernel folds the two parts of
 *  one concatenation directly, but a concatenation of concatenations (3 parts or more) runs ~8x
 *  slower than 2 (sums of s * x_i over axis 0, d = 64, N = 1024, float32: 2 parts 0.048 s, 3 parts
 *  0.42 s, 3 separate sums 0.071 s; load 4), so larger groups run in pairs. */
const FUSED_PARTS = 2;

/** The columns of a fused result ([rows, sum of dims]) per variable, each [rows, dim]. */
function splitColumns(
  fused: Tensor<Float32Array | Float64Array>,
  group: readonly Variable[],
): Tensor<Float32Array | Float64Array>[] {
  const width = group.reduce((s, v) => s + v.dim, 0);
  const rows = fused.data.length / width;
  let first = 0;
  return group.map((v) => {
    const data = fused.data instanceof Float32Array ? new Float32Array(rows * v.dim) : new Float64Array(rows * v.dim);
    for (let r = 0; r < rows; r++)
      data.set(fused.data.subarray(r * width + first, r * width + first + v.dim), r * v.dim);
    first += v.dim;
    return new Tensor(data, [...fused.shape.slice(0, -1), v.dim], fused.engine);
  });
}

/** The gradients of both groups from one sweep (RulePasses.sweep), each group's formulas
 *  concatenated (at most FUSED_PARTS each: the kernel folds one level of concatenation part by
 *  part), split per variable; null where the rule or the engine has no sweep, or fusion is off. */
async function sweepGroups(
  passes: RulePasses,
  outerGroup: readonly Variable[],
  innerGroup: readonly Variable[],
  formulasOf: (group: readonly Variable[], pass: FormulaCotangent) => LazyTensor[],
): Promise<{ outer: Tensor<Float32Array | Float64Array>[]; inner: Tensor<Float32Array | Float64Array>[] } | null> {
  const fits = (group: readonly Variable[]) => group.length > 0 && group.length <= FUSED_PARTS;
  if (!fusion.enabled || passes.sweep === undefined || !fits(outerGroup) || !fits(innerGroup)) return null;
  const pass = await passes.sweep();
  const concat = (parts: LazyTensor[]) => parts.slice(1).reduce((w, f) => w.concat(f), parts[0]!);
  const out = await pass.run(concat(formulasOf(outerGroup, pass)), concat(formulasOf(innerGroup, pass)));
  if (out === null) return null;
  fusion.sweeps++;
  return { outer: splitColumns(out.rows, outerGroup), inner: splitColumns(out.columns, innerGroup) };
}

/** @internal For the tests: the names that have a gradient rule. */
export const gradientRuleNames = (): string[] => Object.keys(COTANGENT_RULES);

/**
 * Gradients of a reduction with respect to its variables: for each variable in `wrt`, the tensor
 * sum_outputs cotangent . d(output)/d(variable), shaped like the variable's data ([n, dim], or [dim]
 * for a parameter). The min/max family gives the subgradient at the selected index; argMin-style
 * reductions have no gradient. Nothing is differentiated through loops: each gradient is one reduction.
 * @example
 * ```ts
 * const F = x.sqDist(y).mul(-0.5).exp().mul(b);           // x = Vi(...), y = Vj(...), b = Vj(...)
 * const [dx, dy, db] = await vjp(reduction(F, 'sum', 1), { wrt: [x, y, b], cotangent: e }); // e: N values
 * ```
 */
export async function vjp(spec: ReductionSpec, options: VjpOptions): Promise<Tensor<Float32Array | Float64Array>[]> {
  return vjpWithValue(spec, options, undefined);
}

/** @internal `vjp`, given the reduction's result when the caller has it (the tape): the rules that
 *  need it (logSumExp, sumSoftMaxWeight) do not run the reduction again. It must be the result of
 *  `runReduction(spec)`. */
export async function vjpWithValue(
  spec: ReductionSpec,
  options: VjpOptions,
  known: Tensor<Float32Array | Float64Array> | undefined,
): Promise<Tensor<Float32Array | Float64Array>[]> {
  if (typeof spec !== 'object' || spec === null || !(spec.formula instanceof LazyTensor)) {
    throw new InputError('vjp: the first argument must describe a reduction: reduction(F, kind, axis, { weight, k })');
  }
  if (!DIFFERENTIABLE.has(spec.kind)) {
    const why = /^arg|ArgK?M/.test(String(spec.kind)) ? ' (it returns indices, which have no gradient)' : '';
    throw new InputError(
      `vjp: ${String(spec.kind)} has no gradient${why}; differentiable reductions: ${[...DIFFERENTIABLE].join(', ')}`,
    );
  }
  if (typeof options !== 'object' || options === null)
    throw new InputError('vjp: options { wrt, cotangent } are required');
  checkOptionKeys('vjp', options, VJP_OPTION_KEYS);
  const { wrt, cotangent } = options;
  if (!Array.isArray(wrt)) {
    throw new InputError(
      `vjp: wrt must be an array of variables made by Vi, Vj or Pm (e.g. { wrt: [x] }), got ${wrt === null ? 'null' : typeof wrt}`,
    );
  }
  wrt.forEach((v: unknown, q: number) => {
    if (!(v instanceof LazyTensor) || v.node.kind !== 'var' || v.node.isConstant) {
      throw new InputError(`vjp: wrt[${q}] is not a variable made by Vi, Vj or Pm`);
    }
  });
  if (options.allowUnused !== undefined && typeof options.allowUnused !== 'boolean') {
    throw new InputError(`vjp: allowUnused must be a boolean, got ${typeof options.allowUnused}`);
  }
  if (options.allowUnused !== true) {
    const used = new Set<FormulaNode>(variablesOf(spec.formula.node));
    if (spec.weight instanceof LazyTensor) for (const v of variablesOf(spec.weight.node)) used.add(v);
    wrt.forEach((v: LazyTensor, q: number) => {
      if (!used.has(v.node)) {
        throw new InputError(
          `vjp: wrt[${q}] (${v.node.toString()}) is not used by the reduced formula, so its gradient is zero; pass allowUnused: true to get zeros`,
        );
      }
    });
  }
  const batch = mergeBatch('vjp', spec.formula.batch, spec.weight?.batch ?? []);
  const prepared = await spec.formula.prepareScanned(
    specKind(spec),
    spec.axis,
    spec.options,
    undefined,
    spec.weight,
    spec.k ?? 0,
  );
  const { plan } = prepared;
  const dtype = plan.dtype;
  const raw = cotangent instanceof Tensor ? cotangent.data : cotangent;
  if (!(Array.isArray(raw) || floatArrayKind(raw) !== null || raw instanceof Int32Array)) {
    throw new InputError('vjp: cotangent must be a Tensor, a Float32Array, a Float64Array or a number[]');
  }
  for (let k = 0; k < raw.length; k++) {
    const v = (raw as ArrayLike<unknown>)[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new InputError(
        `vjp: cotangent[${k}] is ${typeof v === 'number' ? v : v === null ? 'null' : typeof v}; the cotangent must be finite numbers`,
      );
    }
  }
  const expected = batchSize(batch) * plan.nOuter * prepared.outDim;
  if (raw.length !== expected) {
    const shape = [...batch, plan.nOuter, prepared.outDim].join(' x ');
    throw new InputError(
      `vjp: the cotangent has ${raw.length} values; the ${spec.kind} result has ${shape} = ${expected}`,
    );
  }
  let knownValue = known;
  if (options.value !== undefined) {
    const given: unknown = options.value;
    if (!(given instanceof Tensor) || floatArrayKind(given.data) === null) {
      throw new InputError(`vjp: value must be the reduction's result (a float Tensor), got ${describe(given)}`);
    }
    if (given.data.length !== expected || floatArrayKind(given.data) !== dtype) {
      const shape = [...batch, plan.nOuter, prepared.outDim].join(' x ');
      throw new InputError(
        `vjp: value has ${given.data.length} ${floatArrayKind(given.data)} values; the ${spec.kind} result has ${shape} = ${expected} ${dtype} values`,
      );
    }
    knownValue ??= given as Tensor<Float32Array | Float64Array>;
  }
  const C = outerVariable(
    spec.axis,
    dtype === 'float32' ? Float32Array.from(raw) : Float64Array.from(raw),
    prepared.outDim,
    batch,
  );
  const opts = { ...internalOptions(spec.options), dtype };
  const kind = specKind(spec);
  let value: Promise<Tensor<Float32Array | Float64Array>> | null = null;
  const forward = () =>
    (value ??= knownValue === undefined ? runReduction({ ...spec, options: opts }) : Promise.resolve(knownValue));
  const rule = await COTANGENT_RULES[kind](spec, C, dtype, batch, opts, forward);
  const passes: RulePasses = 'outer' in rule ? rule : { outer: async () => rule, inner: async () => rule };
  const outerCategory = spec.axis === 1 ? 'i' : 'j';
  const otherAxis: Axis = spec.axis === 1 ? 0 : 1;
  const variables = (wrt as readonly LazyTensor[]).map((v) => v.node as Variable);
  const results: Tensor<Float32Array | Float64Array>[] = new Array(variables.length);
  const cast = (values: Float64Array) => (dtype === 'float32' ? Float32Array.from(values) : values);
  // The rule's pass for each axis is asked for once, when a variable is reduced over that axis; then
  // one reduction per variable. A variable given twice in wrt is differentiated once.
  const groupOf = (axis: Axis): Variable[] => {
    const group: Variable[] = [];
    variables.forEach((v) => {
      const here = v.category === 'p' || v.category === outerCategory ? axis === spec.axis : axis === otherAxis;
      if (here && !group.includes(v)) group.push(v);
    });
    return group;
  };
  const innerGroup = groupOf(otherAxis);
  const outerGroup = groupOf(spec.axis);
  const formulasOf = (group: readonly Variable[], { F, ct, extra, valid }: FormulaCotangent): LazyTensor[] =>
    group.map((variable) => {
      let node = gradient(F.node, variable, ct.node);
      if (extra) node = ops.plus(node, gradient(extra.G.node, variable, extra.ct.node));
      // Terms whose gradient is 0 by definition: ifElse selects 0 there and drops the other branch,
      // which may be NaN (0 * inf from the derivative of a -inf term).
      if (valid !== null) node = valid.ifElse(new LazyTensor(node, null, null), 0).node;
      return new LazyTensor(node, F.rowsI ?? C.rowsI, F.rowsJ ?? C.rowsJ, batch);
    });
  const swept = await sweepGroups(passes, outerGroup, innerGroup, formulasOf);
  // One axis's gradients by reductions over it (when the sweep did not run).
  const twoPass = async (axis: Axis, group: readonly Variable[], pass: () => Promise<GradientPass>) => {
    const gradientPass = await pass();
    const { reduce } = gradientPass;
    const formulas = formulasOf(group, gradientPass);
    const run = (W: LazyTensor) => (reduce === undefined ? W.sum(axis, opts) : reduce(W, axis));
    // The variables of one axis in one reduction: the concatenation of their gradient formulas,
    // whose shared sub-formulas (F, the softmax weight, C.G) are computed once per pair; the kernel
    // folds each part of the concatenation into its own columns (a product part without storing it),
    // so a fused pass costs what its parts add to the shared work. In pairs (FUSED_PARTS); split by
    // columns afterwards.
    const parts: (Tensor<Float32Array | Float64Array> | undefined)[] = [];
    if (fusion.enabled) {
      for (let first = 0; first + 1 < formulas.length; first += FUSED_PARTS) {
        const count = Math.min(FUSED_PARTS, formulas.length - first);
        const fused = formulas.slice(first + 1, first + count).reduce((w, f) => w.concat(f), formulas[first]!);
        splitColumns(await run(fused), group.slice(first, first + count)).forEach((t, q) => (parts[first + q] = t));
      }
    }
    return async (g: number) => parts[g] ?? (await run(formulas[g]!));
  };
  for (const [axis, group, pass, preset] of [
    [spec.axis, outerGroup, () => passes.outer(innerGroup.length > 0), swept?.outer],
    [otherAxis, innerGroup, () => passes.inner(), swept?.inner],
  ] as const) {
    if (group.length === 0) continue;
    const reducedOf =
      preset !== undefined ? (g: number) => Promise.resolve(preset[g]!) : await twoPass(axis, group, pass);
    for (const [g, variable] of group.entries()) {
      const reduced = await reducedOf(g);
      const dim = variable.dim;
      let tensor: Tensor<Float32Array | Float64Array>;
      if (variable.category === 'p') {
        // Per result row, then summed over the rows and over the batch items the parameter broadcasts to.
        const items = batchSize(batch);
        const perRow = reduced.data.length / dim / items;
        const perItem = new Float64Array(items * dim);
        for (let item = 0; item < items; item++) {
          for (let r = 0; r < perRow; r++) {
            for (let k = 0; k < dim; k++) {
              perItem[item * dim + k] = perItem[item * dim + k]! + reduced.data[(item * perRow + r) * dim + k]!;
            }
          }
        }
        const total = sumOverBroadcast(perItem, batch, dim, variable.batch);
        tensor = new Tensor(cast(total), [...variable.batch, dim], reduced.engine);
      } else if (batch.length === 0) {
        tensor = reduced;
      } else {
        const total = sumOverBroadcast(reduced.data, batch, variable.rows * dim, variable.batch);
        tensor = new Tensor(cast(total), [...variable.batch, variable.rows, dim], reduced.engine);
      }
      let first = true;
      variables.forEach((v, q) => {
        if (v !== variable) return;
        results[q] = first ? tensor : new Tensor(tensor.data.slice(), tensor.shape, tensor.engine);
        first = false;
      });
    }
  }
  return results;
}
