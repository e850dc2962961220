// The public symbolic-matrix API: a LazyTensor wraps a formula node; operations build new nodes,
// reductions hand a checked plan to the runtime, which picks an engine.
import type { AbortSignalLike } from './scheduling.js';
import { InputError, ResourceLimitError, ShapeError } from './errors.js';

/** The most entries a reduction's result may have: outputs are indexed with int32 (2^31 - 1). */
const MAX_OUTPUT_ENTRIES = 2 ** 31 - 1;
import { OpNode, variablesOf, type DType, type FormulaNode, type Variable } from './formula.js';
import {
  checkVariableData,
  scanLargeVariableData,
  checkDType,
  checkOptionKeys,
  makeConstant,
  makeParameter,
  makeVariable,
  makePlaceholder,
  implicitDimVariables,
  type ArrayInput,
  type ParameterOptions,
  type VariableOptions,
} from './input.js';
import type { OpDef } from './op-def.js';
import * as ops from './ops.js';
import type {
  AnyReductionKind,
  Axis,
  EngineChoice,
  ReductionOutput,
  ReductionPlan,
  SoftMaxStats,
} from './reduction.js';
import { REDUCTIONS, type ReductionDef } from './reduction-defs.js';
import { Tensor, type EngineName } from './tensor.js';
import { denseMatrix } from './dense.js';
import { directionalDerivative, gradient } from './autodiff.js';
import { constant } from './build.js';
import { rangesForAxis, type BlockRanges } from './block-sparse.js';
import { batchItemPlan, batchSize, mergeBatch } from './batch.js';
import { solve as solveKernel, type SolveData, type SolveKit, type SolveOptions, type SolveResult } from './solve.js';
import {
  checkpoint,
  checkSignal,
  progressReporter,
  raceAbort,
  type ReductionProgress,
  type RunControl,
} from './scheduling.js';

/** Options accepted by every reduction. */
export interface ReductionOptions {
  /** Which engine runs the reduction (default: the global default, itself 'auto'). */
  engine?: EngineChoice;
  /** Precision override for this call. */
  dtype?: DType;
  /** Block-sparse pattern (from `fromMatrix`): only the kept blocks of the matrix are visited; rows
   *  in no cluster get the reduction of an empty set (0, -inf, or index -1 and NaN). */
  ranges?: BlockRanges;
  /** Cancels the reduction: it rejects with `signal.reason` (a DOMException 'AbortError' unless the
   *  caller gave another reason) right away when the signal is already aborted, and otherwise within
   *  one chunk of work (~50 ms) after it aborts. The engine stays usable. */
  signal?: AbortSignalLike;
  /** Called between the chunks the reduction is computed in, with the output rows done (over every
   *  batch item) and the total: `done` never decreases, and the last call has `done === total`.
   *  Small reductions make just that one call. */
  onProgress?: (progress: ReductionProgress) => void;
}

/** Options of sum and prod. */
export interface SumOptions extends ReductionOptions {
  /**
   * 'float64': accumulate a float32 sum in float64 (KeOps's `dtype_acc`): float64 accumulators on
   * WebAssembly, two-float (double-single, about 48 bits) accumulators on WebGPU. The terms are still
   * computed in float32 and the result is float32; only the rounding error of the summation shrinks
   * (a sum of 10^6 terms: ~1e-7 relative instead of up to ~1e-6). No effect on float64 reductions.
   * Default: the dtype's own accumulation (already blockwise and compensated).
   * @throws InputError for any other value.
   */
  accumulate?: 'float64';
}

/** Options of logSumExp. */
export interface LogSumExpOptions extends ReductionOptions {
  /** G in log(sum_j exp(F_ij) G_ij); F must then have dimension 1. */
  weight?: LazyTensor;
}

/** Values with their indices, from minArgMin, maxArgMax and kMinArgKMin. */
export interface ValuesAndIndices {
  /** The reduced values, shape [n, d] (or [n, K] / [n, K, d] for kMinArgKMin). */
  values: Tensor<Float32Array | Float64Array>;
  /** The reduced index of each value (Int32, same shape as `values`); -1 where no value was selected. */
  indices: Tensor<Int32Array>;
}

/** Runs a plan on an engine; installed by the runtime (src/runtime), so the core knows no engine. */
export type ReductionExecutor = (
  plan: ReductionPlan,
  engine: EngineChoice | undefined,
  control?: RunControl,
) => Promise<{ output: ReductionOutput; engine: EngineName }>;

let executor: ReductionExecutor | null = null;

/** Installs the function that runs reductions (called once by the runtime module). */
export function setReductionExecutor(run: ReductionExecutor): void {
  executor = run;
}

const REDUCTION_OPTION_KEYS = new Set(['engine', 'dtype', 'ranges', 'signal', 'onProgress']);
const DENSE_OPTION_KEYS = new Set(['maxEntries']);
/** dense() builds JavaScript arrays: past 2^32 numbers (32 GiB of them) no engine can hold them. */
const MAX_DENSE_ENTRIES = 2 ** 32;
const LSE_OPTION_KEYS = new Set(['engine', 'dtype', 'ranges', 'signal', 'onProgress', 'weight']);
const SUM_OPTION_KEYS = new Set(['engine', 'dtype', 'ranges', 'signal', 'onProgress', 'accumulate']);

/** A reduction checked and sized: the plan an engine runs (for a lowered reduction, the plan of the
 *  engine reduction it runs as) and what turns the engine's output into the result. @internal */
export interface PreparedReduction {
  readonly def: ReductionDef;
  readonly plan: ReductionPlan;
  /** Values per outer index in the result (the engine plan's outDim unless lowered). */
  readonly outDim: number;
  /** K of the K families, else 0. */
  readonly k: number;
}

type Operand = LazyTensor | number;

/** A symbolic matrix (or vector, or parameter): a formula over i- and j-indexed variables. */
export class LazyTensor {
  /** @internal */
  constructor(
    /** @internal */ readonly node: FormulaNode,
    /** Rows of the i-variables, or null when the formula has none. */
    readonly rowsI: number | null,
    /** Rows of the j-variables, or null when the formula has none. */
    readonly rowsJ: number | null,
    /** Leading batch dimensions (empty when unbatched). */
    readonly batch: readonly number[] = [],
  ) {}

  /** The dimension of the formula's value for one (i, j) pair. */
  get dim(): number {
    return this.node.dim;
  }

  /** The formula in readable math form. */
  toString(): string {
    return this.node.toString();
  }

  // -------------------------------------------------------------------------------------------------
  // Building formulas.

  private apply<P>(def: OpDef<P>, others: readonly Operand[], params: P): LazyTensor {
    const operands = [this, ...others.map((o) => toLazy(def.name, o, def.infiniteConstants === true))];
    checkImplicitBroadcast(def, operands);
    let rowsI: number | null = null;
    let rowsJ: number | null = null;
    let batch: readonly number[] = [];
    for (const o of operands) {
      rowsI = mergeRows(def.name, 'i', rowsI, o.rowsI);
      rowsJ = mergeRows(def.name, 'j', rowsJ, o.rowsJ);
      batch = mergeBatch(def.name, batch, o.batch);
    }
    return new LazyTensor(
      new OpNode(
        def,
        operands.map((o) => o.node),
        params,
      ),
      rowsI,
      rowsJ,
      batch,
    );
  }

  /** Elementwise x + other, where `other` is a LazyTensor or a number (a constant). A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  add(other: Operand): LazyTensor {
    return this.apply(ops.add, [other], null);
  }
  /** Elementwise x - other. A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  sub(other: Operand): LazyTensor {
    return this.apply(ops.sub, [other], null);
  }
  /** Elementwise x * other. A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  mul(other: Operand): LazyTensor {
    return this.apply(ops.mul, [other], null);
  }
  /** Elementwise x / other. A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  div(other: Operand): LazyTensor {
    return this.apply(ops.div, [other], null);
  }
  /** Elementwise -x. */
  neg(): LazyTensor {
    return this.apply(ops.neg, [], null);
  }
  /** Elementwise |x| (its derivative at 0 is 0). */
  abs(): LazyTensor {
    return this.apply(ops.abs, [], null);
  }
  /** Elementwise exp(x). */
  exp(): LazyTensor {
    return this.apply(ops.exp, [], null);
  }
  /** Elementwise natural logarithm (NaN for x < 0, -Infinity at 0). */
  log(): LazyTensor {
    return this.apply(ops.log, [], null);
  }
  /** Elementwise square root (NaN for x < 0). */
  sqrt(): LazyTensor {
    return this.apply(ops.sqrt, [], null);
  }
  /** 1/sqrt(x), and 0 at 0 (as KeOps). */
  rsqrt(): LazyTensor {
    return this.apply(ops.rsqrt, [], null);
  }
  /** Elementwise x^2. */
  square(): LazyTensor {
    return this.apply(ops.square, [], null);
  }
  /** An integer power (negative allowed). */
  pow(n: number): LazyTensor {
    return this.apply(ops.pow, [], { n });
  }
  /** x^y = exp(y log x) for any exponent (NaN for x < 0). */
  powf(exponent: Operand): LazyTensor {
    return this.apply(ops.powf, [exponent], null);
  }
  /** Elementwise sine. */
  sin(): LazyTensor {
    return this.apply(ops.sin, [], null);
  }
  /** Elementwise cosine. */
  cos(): LazyTensor {
    return this.apply(ops.cos, [], null);
  }
  /** Elementwise sign: -1, 0 or 1 (its derivative is 0). */
  sign(): LazyTensor {
    return this.apply(ops.sign, [], null);
  }
  /** 0 where x < 0, 1 elsewhere. */
  step(): LazyTensor {
    return this.apply(ops.step, [], null);
  }
  /** Elementwise max(x, 0). */
  relu(): LazyTensor {
    return this.apply(ops.relu, [], null);
  }
  /**
   * Elementwise floor (the largest integer <= x). Piecewise constant: its derivative is 0 (taken as 0
   * at the jumps too).
   */
  floor(): LazyTensor {
    return this.apply(ops.floor, [], null);
  }
  /** Elementwise arctangent, in (-pi/2, pi/2). */
  atan(): LazyTensor {
    return this.apply(ops.atan, [], null);
  }
  /** Elementwise arcsine, in [-pi/2, pi/2]; NaN where |x| > 1. Its derivative 1/sqrt(1 - x^2) is
   *  infinite at |x| = 1. */
  asin(): LazyTensor {
    return this.apply(ops.asin, [], null);
  }
  /** Elementwise arccosine, in [0, pi]; NaN where |x| > 1. Its derivative -1/sqrt(1 - x^2) is
   *  infinite at |x| = 1. */
  acos(): LazyTensor {
    return this.apply(ops.acos, [], null);
  }
  /**
   * Elementwise two-argument arctangent: `y.atan2(x)` is the angle of the point (x, y), in [-pi, pi]
   * (as `Math.atan2(y, x)`, `torch.atan2(y, x)` and KeOps's `y.atan2(x)`): this formula is the y
   * coordinate, `x` the x coordinate. Signed zeros and infinities follow Math.atan2
   * (atan2(0, -1) = pi, atan2(0, 0) = 0). A dimension-1 operand broadcasts against any dimension;
   * other dimensions must match (else a ShapeError). The derivative at the origin is NaN (0/0).
   * @example
   * const angle = Vi(y).atan2(Vi(x)); // polar angle of each (x_i, y_i)
   */
  atan2(x: Operand): LazyTensor {
    return this.apply(ops.atan2, [x], null);
  }
  /**
   * The elementwise maximum of this formula and `other` (numpy's `maximum`; not the `max(axis)`
   * reduction). NaN where either is NaN. A dimension-1 operand broadcasts against any dimension; other
   * dimensions must match (else a ShapeError). The gradient goes to this formula where it is >= other
   * (ties included), to `other` elsewhere.
   * @example
   * Vi(x).sub(Vj(y)).maximum(0) // relu of the difference
   */
  maximum(other: Operand): LazyTensor {
    return this.apply(ops.maximum, [other], null);
  }
  /**
   * The elementwise minimum of this formula and `other` (numpy's `minimum`; not the `min(axis)`
   * reduction). NaN where either is NaN; broadcasting as in `maximum`. The gradient goes to this
   * formula where it is <= other (ties included), to `other` elsewhere.
   */
  minimum(other: Operand): LazyTensor {
    return this.apply(ops.minimum, [other], null);
  }
  /** min(max(x, lower), upper). Two numbers must satisfy lower <= upper (an InputError otherwise). */
  clamp(lower: Operand, upper: Operand): LazyTensor {
    if (typeof lower === 'number' && typeof upper === 'number' && lower > upper) {
      throw new InputError(`clamp: lower (${lower}) must be <= upper (${upper})`);
    }
    return this.apply(ops.clamp, [lower, upper], null);
  }
  /** `ifTrue` where x >= 0, else `ifFalse`. */
  ifElse(ifTrue: Operand, ifFalse: Operand): LazyTensor {
    return this.apply(ops.ifElse, [ifTrue, ifFalse], null);
  }
  /** x - modulus * floor((x - offset) / modulus): a value in [offset, offset + modulus). */
  mod(modulus: Operand, offset: Operand = 0): LazyTensor {
    if (modulus === 0) throw new InputError('mod: the modulus must not be 0');
    return this.apply(ops.mod, [modulus, offset], null);
  }
  /** Rounds to `digits` decimals (an integer, negative allowed), halves away from zero. Where
   *  x * 10^digits is beyond the float's precision x is returned unchanged, so any `digits` (even
   *  400) is defined; rounding to a multiple of 10^-digits beyond the float range gives 0. */
  round(digits = 0): LazyTensor {
    return this.apply(ops.round, [], { digits });
  }
  /** x log x, and 0 at 0. */
  xLogX(): LazyTensor {
    return this.apply(ops.xLogX, [], null);
  }
  /** sin(x)/x, and 1 at 0. */
  sinXDivX(): LazyTensor {
    return this.apply(ops.sinXDivX, [], null);
  }
  /** 1 where x == other, else 0 (elementwise; no gradient). A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  eq(other: Operand): LazyTensor {
    return this.apply(ops.eq, [other], null);
  }
  /** 1 where x != other, else 0. A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  ne(other: Operand): LazyTensor {
    return this.apply(ops.ne, [other], null);
  }
  /** 1 where x < other, else 0. A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  lt(other: Operand): LazyTensor {
    return this.apply(ops.lt, [other], null);
  }
  /** 1 where x <= other, else 0. A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  le(other: Operand): LazyTensor {
    return this.apply(ops.le, [other], null);
  }
  /** 1 where x > other, else 0. A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  gt(other: Operand): LazyTensor {
    return this.apply(ops.gt, [other], null);
  }
  /** 1 where x >= other, else 0. A dimension-1 operand broadcasts against any dimension; other dimensions must match (else a ShapeError). */
  ge(other: Operand): LazyTensor {
    return this.apply(ops.ge, [other], null);
  }

  /** Squared Euclidean norm. */
  sqNorm2(): LazyTensor {
    return this.apply(ops.sqNorm2, [], null);
  }
  /** Euclidean norm. */
  norm2(): LazyTensor {
    return this.apply(ops.norm2, [], null);
  }
  /** x / |x|, and 0 at 0. */
  normalize(): LazyTensor {
    return this.apply(ops.normalize, [], null);
  }
  /** Scalar product. */
  dot(other: LazyTensor): LazyTensor {
    return this.apply(ops.dotProduct, [other], null);
  }
  /** |x - y|^2. */
  sqDist(other: LazyTensor): LazyTensor {
    return this.apply(ops.sqDist, [other], null);
  }
  /** s|x|^2, sum_k s_k x_k^2 or x^T S x, as the weight has dimension 1, D or D*D. */
  weightedSqNorm(weight: Operand): LazyTensor {
    return this.apply(ops.weightedSqNorm, [weight], null);
  }
  /** The weighted squared norm of x - y. */
  weightedSqDist(other: LazyTensor, weight: Operand): LazyTensor {
    return this.apply(ops.weightedSqDist, [other, weight], null);
  }
  /** Component `index`. */
  elem(index: number): LazyTensor {
    return this.apply(ops.elem, [], { index });
  }
  /** Components [start, start + length). */
  extract(start: number, length: number): LazyTensor {
    return this.apply(ops.extract, [], { start, length });
  }
  /** The components of x followed by those of `other`. */
  concat(other: LazyTensor): LazyTensor {
    return this.apply(ops.concat, [other], null);
  }
  /** A vector of `dim` components: 1 at round(x), 0 elsewhere (x must have dimension 1). */
  oneHot(dim: number): LazyTensor {
    return this.apply(ops.oneHot, [], { dim });
  }
  /** This (an m x n matrix, row-major, dimension m*n) times the vector `v` (dimension n). */
  matVecMult(v: LazyTensor): LazyTensor {
    return this.apply(ops.matVecMult, [v], null);
  }
  /** This vector (dimension n) times `matrix` (n x m, row-major, dimension n*m). */
  vecMatMult(matrix: LazyTensor): LazyTensor {
    return this.apply(ops.vecMatMult, [matrix], null);
  }
  /** The outer product, row-major. */
  tensorProd(other: LazyTensor): LazyTensor {
    return this.apply(ops.tensorProd, [other], null);
  }
  /**
   * The Kronecker product of two vectors: dimensions m and n give m*n components, component
   * r*n + c being x[r] * other[c]. The same operation as `tensorProd` (KeOps's `TensorProd`), under
   * numpy's name `kron`.
   */
  kron(other: LazyTensor): LazyTensor {
    return this.apply(ops.tensorProd, [other], null);
  }
  /**
   * The largest component of this vector, as a formula of dimension 1 (KeOps's `Max(x)` formula; not
   * the `max(axis)` reduction over i or j). NaN if any component is NaN. The gradient is shared evenly
   * by the components equal to the maximum (all of it to the maximum when it is unique).
   * @example
   * Vi(x).sub(Vj(y)).abs().maxComponent().sum(1) // sum_j of the L-infinity distances
   */
  maxComponent(): LazyTensor {
    return this.apply(ops.maxComponent, [], null);
  }
  /** The smallest component of this vector, as a formula of dimension 1 (KeOps's `Min(x)`; not the
   *  `min(axis)` reduction). NaN if any component is NaN; gradient as in `maxComponent`. */
  minComponent(): LazyTensor {
    return this.apply(ops.minComponent, [], null);
  }
  /**
   * The transpose of a matrix-valued formula: this formula holds a `rows` x `cols` matrix row-major
   * (dimension rows*cols, as `matVecMult` reads it); the result holds the `cols` x `rows` transpose,
   * row-major (component c*rows + r is component r*cols + c of this one).
   * @throws InputError when rows or cols is not a positive integer; ShapeError when rows*cols is not
   *  the formula's dimension.
   * @example
   * A.transpose(2, 3).matVecMult(v) // A^T v for a 2 x 3 matrix A and a 2-vector v
   */
  transpose(rows: number, cols: number): LazyTensor {
    return this.apply(ops.transpose, [], { rows, cols });
  }

  /**
   * Whether this formula depends on the variable `v`: true when `v` (a Vi, Vj or Pm, or a
   * placeholder of {@link formula}) occurs in it, even where it cancels out (`v.sub(v)` uses `v`).
   * The question a builder of formulas asks of a user's formula, e.g. that a cost of (x, y) uses
   * both of its arguments.
   * @param v a variable made by Vi, Vj or Pm (the same object: two variables of equal data are
   *   distinct).
   * @returns true when the formula's tree contains `v`.
   * @throws InputError when `v` is not a variable made by Vi, Vj or Pm (a formula, a constant or
   *   another value).
   * @example
   * const x = Vi(xs, 3);
   * const y = Vj(ys, 3);
   * x.sqDist(y).uses(y); // true
   * x.norm2().uses(y); // false
   */
  uses(v: LazyTensor): boolean {
    if (!(v instanceof LazyTensor) || v.node.kind !== 'var' || v.node.isConstant) {
      throw new InputError('uses: v must be a variable made by Vi, Vj or Pm');
    }
    return variablesOf(this.node).includes(v.node);
  }

  // -------------------------------------------------------------------------------------------------
  // Derivatives (formulas: reduce them like any other).

  private variableOf(where: string, v: LazyTensor): Variable {
    if (!(v instanceof LazyTensor) || v.node.kind !== 'var' || v.node.isConstant) {
      throw new InputError(`${where}: differentiate with respect to a variable made by Vi, Vj or Pm`);
    }
    return v.node;
  }

  private derived(node: FormulaNode, ...others: LazyTensor[]): LazyTensor {
    let rowsI = this.rowsI;
    let rowsJ = this.rowsJ;
    let batch = this.batch;
    for (const o of others) {
      rowsI = mergeRows('grad', 'i', rowsI, o.rowsI);
      rowsJ = mergeRows('grad', 'j', rowsJ, o.rowsJ);
      batch = mergeBatch('grad', batch, o.batch);
    }
    return new LazyTensor(node, rowsI, rowsJ, batch);
  }

  /** The vector-Jacobian product (dF/dv)^T e: a formula of v's dimension (e has F's dimension). */
  grad(v: LazyTensor, e: Operand): LazyTensor {
    const cotangent = toLazy('grad', e);
    if (cotangent.dim !== this.dim) {
      throw new InputError(`grad: the cotangent must have the formula's dimension ${this.dim}, got ${cotangent.dim}`);
    }
    return this.derived(gradient(this.node, this.variableOf('grad', v), cotangent.node), cotangent, v);
  }

  /** The directional derivative (dF/dv) u: a formula of F's dimension (u has v's dimension). */
  diff(v: LazyTensor, u: Operand): LazyTensor {
    const tangent = toLazy('diff', u);
    const variable = this.variableOf('diff', v);
    if (tangent.dim !== variable.dim) {
      throw new InputError(
        `diff: the direction must have the variable's dimension ${variable.dim}, got ${tangent.dim}`,
      );
    }
    return this.derived(directionalDerivative(this.node, variable, tangent.node), tangent, v);
  }

  /** The Jacobian dF/dv as a formula of dimension F.dim * v.dim, row-major (row k: the gradient of F_k). */
  gradMatrix(v: LazyTensor): LazyTensor {
    const variable = this.variableOf('gradMatrix', v);
    let out: FormulaNode | null = null;
    for (let k = 0; k < this.dim; k++) {
      const unit = constant(Array.from({ length: this.dim }, (_, q) => +(q === k)));
      const row = gradient(this.node, variable, unit);
      out = out === null ? row : new OpNode(ops.concat, [out, row], null);
    }
    return this.derived(out!, v);
  }

  /** The divergence sum_k dF_k/dv_k (F and v of the same dimension). */
  divergence(v: LazyTensor): LazyTensor {
    const variable = this.variableOf('divergence', v);
    if (variable.dim !== this.dim) {
      throw new InputError(
        `divergence: the formula (dimension ${this.dim}) and the variable (${variable.dim}) must have the same dimension`,
      );
    }
    let out: FormulaNode | null = null;
    for (let k = 0; k < this.dim; k++) {
      const unit = constant(Array.from({ length: this.dim }, (_, q) => +(q === k)));
      const term = new OpNode(ops.elem, [gradient(this.node, variable, unit)], { index: k });
      out = out === null ? term : new OpNode(ops.add, [out, term], null);
    }
    return this.derived(out!, v);
  }

  /** The Laplacian sum_k d^2 F / dv_k^2 of a scalar formula. */
  laplacian(v: LazyTensor): LazyTensor {
    if (this.dim !== 1) throw new InputError(`laplacian: the formula must have dimension 1, got ${this.dim}`);
    return this.grad(v, 1).divergence(v);
  }

  // -------------------------------------------------------------------------------------------------
  // Reductions.

  /**
   * `sum(1)` / `sum(0)`: the sum reduction over j / over i, a Promise of a Tensor [n, d].
   * `sum(-1)`: the sum of the components of the formula, a formula of dimension 1 (KeOps's `axis=-1`).
   * @throws InputError without an axis (`await F.sum()` would otherwise silently give a formula, not a
   *   result), or with options on `sum(-1)`.
   */
  sum(axis: -1): LazyTensor;
  sum(axis: Axis, options?: SumOptions): Promise<Tensor<Float32Array | Float64Array>>;
  sum(axis: Axis | -1, options?: SumOptions): LazyTensor | Promise<Tensor<Float32Array | Float64Array>> {
    if (axis === -1) {
      if (options !== undefined) throw new InputError('sum: sum(-1) is a formula and takes no options');
      return this.apply(ops.sum, [], null);
    }
    if (axis === undefined) {
      throw new InputError(
        'sum: pass an axis: sum(1) sums over j and sum(0) over i (both return a Promise of a Tensor); sum(-1) is the sum of the components (a formula)',
      );
    }
    return this.reduceValues('sum', axis, options, SUM_OPTION_KEYS);
  }

  /**
   * The product over `axis`, per component: shape [n, d]. Computed stably as
   * (-1)^(number of negative factors) * exp(sum log|F|), so that 10^5 factors neither overflow nor
   * underflow on the way: the result is +-Infinity only when the product itself exceeds the dtype's
   * range (and +-0 when it is below it). A zero factor gives 0, a NaN factor NaN, a zero and an
   * infinite factor NaN; an empty set (a row in no cluster of `ranges`) gives 1. The relative error
   * is that of exp of the summed logarithms: about |sum log|F|| times the dtype's epsilon (use
   * float64 for long float32 products). KeOps has no product reduction.
   * @throws InputError for a bad axis, options, or a formula without i- or j-variables.
   * @example
   * ```ts
   * const p = await Vi(x, 1).sub(Vj(y, 1)).prod(1); // prod_j (x_i - y_j), shape [N, 1]
   * ```
   */
  prod(axis: Axis, options?: SumOptions): Promise<Tensor<Float32Array | Float64Array>> {
    return this.reduceValues('prod', axis, options, SUM_OPTION_KEYS);
  }

  /** log sum exp(F) over the axis, computed stably; with `weight`: log sum exp(F) G. */
  logSumExp(axis: Axis, options?: LogSumExpOptions): Promise<Tensor<Float32Array | Float64Array>> {
    const weight = options?.weight;
    if (weight === undefined) return this.reduceValues('logSumExp', axis, options, LSE_OPTION_KEYS);
    return this.reduceValues('logSumExpWeighted', axis, options, LSE_OPTION_KEYS, weight);
  }

  /**
   * sum exp(F) G / sum exp(F) over the axis (F of dimension 1): a softmax-weighted average of G, shape
   * [n, G.dim]. KeOps's `F.sumsoftmaxweight(G, axis)` with the arguments the other way round.
   * @example
   * ```ts
   * // Attention: softmax(q . k / sqrt(d)) v, over the keys j.
   * const out = await Vi(q, d).dot(Vj(k, d)).mul(1 / Math.sqrt(d)).sumSoftMaxWeight(1, Vj(v, dv));
   * ```
   */
  sumSoftMaxWeight(
    axis: Axis,
    weight: LazyTensor,
    options?: ReductionOptions,
  ): Promise<Tensor<Float32Array | Float64Array>> {
    return this.reduceValues('sumSoftMaxWeight', axis, options, REDUCTION_OPTION_KEYS, weight);
  }

  /**
   * The minimum over `axis`, per component: shape [n, d] (n = rows of the other axis). NaN values are never selected; an empty row gives NaN.
   * @throws RangeError for a bad axis or a formula without i- or j-variables.
   */
  min(axis: Axis, options?: ReductionOptions): Promise<Tensor<Float32Array | Float64Array>> {
    return this.reduceValues('min', axis, options, REDUCTION_OPTION_KEYS);
  }
  /** The maximum over `axis`, per component: shape [n, d]. NaN values are never selected. */
  max(axis: Axis, options?: ReductionOptions): Promise<Tensor<Float32Array | Float64Array>> {
    return this.reduceValues('max', axis, options, REDUCTION_OPTION_KEYS);
  }
  /** The index of the minimum (the lowest index on ties). */
  argMin(axis: Axis, options?: ReductionOptions): Promise<Tensor<Int32Array>> {
    return this.reduceIndices('argMin', axis, 0, options);
  }
  /** The index of the maximum over `axis` (the lowest index on ties): Int32, shape [n, d]; -1 when nothing is selected. */
  argMax(axis: Axis, options?: ReductionOptions): Promise<Tensor<Int32Array>> {
    return this.reduceIndices('argMax', axis, 0, options);
  }
  /**
   * The minimum and its index over `axis`, from one pass: `{ values, indices }`, each of shape [n, d]
   * (KeOps returns the pair `(values, indices)`).
   */
  minArgMin(axis: Axis, options?: ReductionOptions): Promise<ValuesAndIndices> {
    return this.reduceBoth('minArgMin', axis, 0, options);
  }
  /** The maximum and its index over `axis`, from one pass: `{ values, indices }`, each of shape [n, d]. */
  maxArgMax(axis: Axis, options?: ReductionOptions): Promise<ValuesAndIndices> {
    return this.reduceBoth('maxArgMax', axis, 0, options);
  }
  /** The K smallest values, ascending: shape [n, K] (or [n, K, d] for d > 1). */
  kMin(K: number, axis: Axis, options?: ReductionOptions): Promise<Tensor<Float32Array | Float64Array>> {
    return this.reduceValues('kMin', axis, options, REDUCTION_OPTION_KEYS, undefined, K);
  }
  /** The indices of the K smallest values (ties: lowest index first). */
  argKMin(K: number, axis: Axis, options?: ReductionOptions): Promise<Tensor<Int32Array>> {
    return this.reduceIndices('argKMin', axis, K, options);
  }
  /**
   * The K smallest values and their indices, ascending: `{ values, indices }` of shape [n, K] (or [n, K, d]).
   * @throws RangeError when K is not a positive integer or is larger than the reduced size.
   */
  kMinArgKMin(K: number, axis: Axis, options?: ReductionOptions): Promise<ValuesAndIndices> {
    return this.reduceBoth('kMinArgKMin', axis, K, options);
  }
  /**
   * The K largest values, descending: shape [n, K] (or [n, K, d] for d > 1, rank t of component k
   * at [i, t, k]). Ties keep the lowest index first; NaN values are never selected; slots left
   * unfilled (fewer than K non-NaN values) hold NaN. The mirror of {@link LazyTensor.kMin}
   * (computed as -kMin(-F), exactly). KeOps has only the K-min family.
   * @throws InputError when K is not a positive integer or is larger than the reduced size.
   */
  kMax(K: number, axis: Axis, options?: ReductionOptions): Promise<Tensor<Float32Array | Float64Array>> {
    return this.reduceValues('kMax', axis, options, REDUCTION_OPTION_KEYS, undefined, K);
  }
  /**
   * The indices of the K largest values, largest first (Int32, shape [n, K] or [n, K, d]); ties:
   * lowest index first; -1 in slots left unfilled (NaN values are never selected).
   * @throws InputError when K is not a positive integer or is larger than the reduced size.
   */
  argKMax(K: number, axis: Axis, options?: ReductionOptions): Promise<Tensor<Int32Array>> {
    return this.reduceIndices('argKMax', axis, K, options);
  }
  /**
   * The K largest values and their indices, descending: `{ values, indices }` of shape [n, K] (or
   * [n, K, d]), from one pass; the tie and NaN rules of {@link LazyTensor.argKMax}.
   * @throws InputError when K is not a positive integer or is larger than the reduced size.
   */
  kMaxArgKMax(K: number, axis: Axis, options?: ReductionOptions): Promise<ValuesAndIndices> {
    return this.reduceBoth('kMaxArgKMax', axis, K, options);
  }

  /**
   * Solves (alpha I + K) a = b by conjugate gradients, for this symmetric positive kernel K(x_i, x_j)
   * of dimension 1; b has shape [N, e] (flat values, rows, a Tensor, or a variable `Vi(b, e)`). Each
   * iteration is one reduction on an engine.
   * @example
   * ```ts
   * const K = Vi(x, 1).sqDist(Vj(x, 1)).mul(-50).exp();
   * const { solution, iterations, converged } = await K.solve(b, { alpha: 0.1, tol: 1e-8 });
   * ```
   */
  solve(b: SolveData, options?: SolveOptions): Promise<SolveResult> {
    return solveKernel(this, b, SOLVE_KIT, options);
  }

  /** Materialises the symbolic matrix as nested arrays [N][M][d] of float64 values (small sizes only). */
  dense(options?: { maxEntries?: number }): number[][][] {
    checkOptionKeys('dense', options, DENSE_OPTION_KEYS);
    const maxEntries = options?.maxEntries ?? 1e7;
    if (
      typeof maxEntries !== 'number' ||
      !Number.isInteger(maxEntries) ||
      maxEntries < 1 ||
      maxEntries > MAX_DENSE_ENTRIES
    ) {
      throw new InputError(
        `dense: maxEntries must be an integer in [1, ${MAX_DENSE_ENTRIES}], got ${String(maxEntries)}`,
      );
    }
    if (this.batch.length > 0) throw new InputError('dense: batched formulas are not supported; reduce them instead');
    for (const v of variablesOf(this.node)) checkVariableData('dense', v);
    const rowsI = this.rowsI ?? 1;
    const rowsJ = this.rowsJ ?? 1;
    return denseMatrix(this.node, rowsI, rowsJ, maxEntries);
  }

  /** Runs the reduction `kind` and returns its values (vjp runs described reductions so). @internal */
  reduceKind(
    kind: AnyReductionKind,
    axis: Axis,
    options: ReductionOptions | undefined,
    weight: LazyTensor | undefined,
    K: number,
  ): Promise<Tensor<Float32Array | Float64Array>> {
    // runReduction refuses a weight the kind does not take (on a sum it would make the plan a sum
    // with column sums, ReductionPlan.weight).
    return this.reduceValues(kind, axis, options, REDUCTION_OPTION_KEYS, weight, REDUCTIONS[kind].takesK ? K : 0);
  }

  /**
   * The sum of this formula over `axis` and, in the same sweep over the pairs, the sum of `columns`
   * over the other index, one row per index of `axis` (the one-sweep gradient of an attention:
   * vjp's sumSoftMaxWeight rule). On WebAssembly, for unbatched dense reductions; null where it
   * cannot run so (a batch, ranges, or an engine without column sums). @internal
   */
  async sumWithColumns(
    axis: Axis,
    columns: LazyTensor,
    options: ReductionOptions,
  ): Promise<{ rows: Tensor<Float32Array | Float64Array>; columns: Float32Array | Float64Array } | null> {
    if (this.batch.length > 0 || columns.batch.length > 0 || options.ranges !== undefined) return null;
    const { plan } = await this.prepareScanned('sum', axis, options);
    const outerCategory = axis === 1 ? 'i' : 'j';
    const known = new Set(plan.variables.map((v) => v.variable));
    const extra = variablesOf(columns.node).filter((v) => !known.has(v));
    for (const v of extra) checkVariableData('sum', v);
    const both: ReductionPlan = {
      ...plan,
      weight: columns.node,
      variables: [
        ...plan.variables,
        ...extra.map((variable) => ({
          variable,
          role:
            variable.category === 'p'
              ? ('param' as const)
              : variable.category === outerCategory
                ? ('outer' as const)
                : ('inner' as const),
        })),
      ],
    };
    if (executor === null) throw new Error("sum: no engine is installed (import 'lazytensor', not its internals)");
    await checkpoint(options.signal);
    const { output, engine } = await raceAbort(executor(both, 'wasm', { signal: options.signal }), options.signal);
    if (output.columns === undefined || output.values === null) return null;
    return { rows: new Tensor(output.values, [plan.nOuter, plan.outDim], engine), columns: output.columns };
  }

  /** Runs the index reduction `kind` (argMin, argKMax, ...). @internal */
  reduceIndicesOf(
    kind: AnyReductionKind,
    axis: Axis,
    options: ReductionOptions | undefined,
    K: number,
  ): Promise<Tensor<Int32Array>> {
    return this.reduceIndices(kind, axis, K, options);
  }

  private async reduceValues(
    kind: AnyReductionKind,
    axis: Axis,
    options: ReductionOptions | LogSumExpOptions | undefined,
    allowed: ReadonlySet<string>,
    weight?: LazyTensor,
    K = 0,
  ): Promise<Tensor<Float32Array | Float64Array>> {
    const { shape, output, engine } = await this.run(kind, axis, options, allowed, weight, K);
    const tensor = new Tensor(output.values!, shape, engine);
    if (output.softMax !== undefined) softMaxStats.set(tensor, output.softMax);
    return tensor;
  }

  private async reduceIndices(
    kind: AnyReductionKind,
    axis: Axis,
    K: number,
    options?: ReductionOptions,
  ): Promise<Tensor<Int32Array>> {
    const { shape, output, engine } = await this.run(kind, axis, options, REDUCTION_OPTION_KEYS, undefined, K);
    return new Tensor(output.indices!, shape, engine);
  }

  private async reduceBoth(
    kind: AnyReductionKind,
    axis: Axis,
    K: number,
    options?: ReductionOptions,
  ): Promise<ValuesAndIndices> {
    const { shape, output, engine } = await this.run(kind, axis, options, REDUCTION_OPTION_KEYS, undefined, K);
    return { values: new Tensor(output.values!, shape, engine), indices: new Tensor(output.indices!, shape, engine) };
  }

  private async run(
    kind: AnyReductionKind,
    axis: Axis,
    options: ReductionOptions | LogSumExpOptions | undefined,
    allowed: ReadonlySet<string>,
    weight: LazyTensor | undefined,
    K: number,
  ): Promise<{ shape: number[]; output: ReductionOutput; engine: EngineName }> {
    const prepared = await this.prepareScanned(kind, axis, options, allowed, weight, K);
    const { plan } = prepared;
    if (executor === null) throw new Error(`${kind}: no engine is installed (import 'lazytensor', not its internals)`);
    const run = executor;
    const batch = weight === undefined ? this.batch : mergeBatch(kind, this.batch, weight.batch);
    const signal = options?.signal;
    // Every reduction is a point where a loop of reductions yields to the event loop (when due)
    // and sees an abort.
    await checkpoint(signal);
    const progress = progressReporter(batchSize(batch) * plan.nOuter, options?.onProgress);
    const control: RunControl = { signal, onRows: progress.onRows };
    if (batch.length === 0) {
      const { output, engine } = await raceAbort(run(plan, options?.engine, control), signal);
      progress.finish();
      return { shape: resultShape(prepared, []), output: finish(prepared, output, plan.nOuter), engine };
    }
    // One plan per batch item, results stacked: [...batch, nOuter, outDim].
    const parts: ReductionOutput[] = [];
    let engine: EngineName = 'wasm';
    for (let item = 0; item < batchSize(batch); item++) {
      if (item > 0) await checkpoint(signal);
      const done = await raceAbort(run(batchItemPlan(plan, item, batch), options?.engine, control), signal);
      parts.push(done.output);
      engine = done.engine;
    }
    progress.finish();
    const rows = batchSize(batch) * plan.nOuter;
    return { shape: resultShape(prepared, batch), output: finish(prepared, stack(parts), rows), engine };
  }

  /** `prepare` after re-checking the large caller arrays slice by slice (scanLargeVariableData: the
   *  event loop runs in between), whose finite scan prepare then skips. For the reductions that
   *  run. @internal */
  async prepareScanned(
    kind: AnyReductionKind,
    axis: Axis,
    options: ReductionOptions | LogSumExpOptions | undefined,
    allowed: ReadonlySet<string> = REDUCTION_OPTION_KEYS,
    weight?: LazyTensor,
    K = 0,
  ): Promise<PreparedReduction> {
    const scanned = await scanLargeVariableData(
      kind,
      weight === undefined ? variablesOf(this.node) : [...variablesOf(this.node), ...variablesOf(weight.node)],
      checkSignal(kind, options?.signal),
    );
    return this.prepare(kind, axis, options, allowed, weight, K, scanned);
  }

  /** Checks a reduction and sizes it: the plan an engine runs. @internal */
  plan(
    kind: AnyReductionKind,
    axis: Axis,
    options: ReductionOptions | LogSumExpOptions | undefined,
    allowed: ReadonlySet<string> = REDUCTION_OPTION_KEYS,
    weight?: LazyTensor,
    K = 0,
  ): ReductionPlan {
    return this.prepare(kind, axis, options, allowed, weight, K).plan;
  }

  /** Checks a reduction and sizes it, and lowers it to an engine reduction when its record says
   *  so. @internal */
  prepare(
    kind: AnyReductionKind,
    axis: Axis,
    options: ReductionOptions | LogSumExpOptions | undefined,
    allowed: ReadonlySet<string> = REDUCTION_OPTION_KEYS,
    weight?: LazyTensor,
    K = 0,
    scanned?: ReadonlySet<Variable>,
  ): PreparedReduction {
    const def = REDUCTIONS[kind];
    checkOptionKeys(kind, options, def.accumulates ? SUM_OPTION_KEYS : allowed);
    const accumulate = (options as SumOptions | undefined)?.accumulate;
    if (accumulate !== undefined && accumulate !== 'float64') {
      throw new InputError(`${kind}: accumulate must be 'float64' (or absent), got ${String(accumulate)}`);
    }
    checkSignal(kind, options?.signal);
    if (options?.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new InputError(
        `${kind}: onProgress must be a function ({ done, total }) => void, got ${typeof options.onProgress}`,
      );
    }
    if (axis !== 0 && axis !== 1) throw new InputError(`${kind}: axis must be 0 or 1, got ${String(axis)}`);
    const engine = options?.engine;
    if (engine !== undefined && engine !== 'auto' && engine !== 'wasm' && engine !== 'webgpu') {
      throw new InputError(`${kind}: engine must be 'auto', 'wasm' or 'webgpu', got ${String(engine)}`);
    }
    let rowsI = this.rowsI;
    let rowsJ = this.rowsJ;
    if (weight !== undefined) {
      if (!(weight instanceof LazyTensor)) throw new InputError(`${kind}: weight must be a LazyTensor`);
      rowsI = mergeRows(kind, 'i', rowsI, weight.rowsI);
      rowsJ = mergeRows(kind, 'j', rowsJ, weight.rowsJ);
      if (this.dim !== 1) {
        throw new InputError(`${kind}: with a weight, the formula must have dimension 1, got ${this.dim}`);
      }
    }
    if (rowsI === null || rowsJ === null) {
      const missing = rowsI === null ? 'i' : 'j';
      throw new InputError(
        `${kind}: the formula has no ${missing}-variable (V${missing}), so the size of that axis is unknown`,
      );
    }
    const [nOuter, nInner] = axis === 1 ? [rowsI, rowsJ] : [rowsJ, rowsI];
    if (def.takesK) {
      if (typeof K !== 'number' || !Number.isInteger(K) || K < 1)
        throw new InputError(`${kind}: K must be a positive integer, got ${String(K)}`);
      if (K > nInner) {
        throw new InputError(`${kind}: K = ${K} is larger than the ${nInner} values reduced over axis ${axis}`);
      }
    }
    if (!def.takesK) K = 0;
    const outDim = def.outDim(this.dim, weight?.dim ?? 0, K);
    if (nOuter * outDim > MAX_OUTPUT_ENTRIES) {
      throw new ResourceLimitError(
        `${kind}: the result would have ${nOuter} x ${outDim} = ${nOuter * outDim} entries, more than ${MAX_OUTPUT_ENTRIES} (typed arrays and the engines index outputs with int32); reduce fewer rows or a smaller K`,
        nOuter * outDim,
        MAX_OUTPUT_ENTRIES,
        'entries',
      );
    }
    const formula = def.lowering === null ? this.node : def.lowering.formula(this.node);
    const variables = variablesOf(formula);
    if (weight !== undefined) {
      for (const v of variablesOf(weight.node)) if (!variables.includes(v)) variables.push(v);
    }
    // The caller's typed arrays are read now, not when Vi/Vj ran: check them again.
    for (const v of variables) checkVariableData(kind, v, scanned);
    const dtype = resolveDType(kind, variables, checkDType(kind, options?.dtype));
    const outerCategory = axis === 1 ? 'i' : 'j';
    const engineKind = def.lowering?.kind ?? (kind as ReductionPlan['kind']);
    const plan: ReductionPlan = {
      kind: engineKind,
      axis,
      formula,
      weight: weight?.node ?? null,
      k: K,
      dtype,
      nOuter,
      nInner,
      outDim: def.lowering === null ? outDim : REDUCTIONS[engineKind].outDim(formula.dim, weight?.dim ?? 0, K),
      ranges: options?.ranges === undefined ? null : rangesForAxis(kind, options.ranges, axis, nOuter, nInner),
      variables: variables.map((variable) => ({
        variable,
        role: variable.category === 'p' ? 'param' : variable.category === outerCategory ? 'outer' : 'inner',
      })),
      // Float64 reductions accumulate in float64 anyway.
      ...(accumulate === 'float64' && dtype === 'float32' ? { accumulate } : {}),
    };
    return { def, plan, outDim, k: K };
  }
}

/** The elementwise operations that broadcast a dimension-1 operand against a vector. */
const BROADCASTING: ReadonlySet<OpDef<null>> = new Set<OpDef<null>>([
  ops.add,
  ops.sub,
  ops.mul,
  ops.div,
  ops.powf,
  ops.eq,
  ops.ne,
  ops.lt,
  ops.le,
  ops.gt,
  ops.ge,
  ops.clamp,
  ops.ifElse,
  ops.mod,
]);

/** Refuses to broadcast a variable whose dimension 1 was implied (flat data given without `dim`)
 *  against a vector: `Vi(x).sub(Vj(y, 2))` with x a flat [N, 2] array would otherwise compute with
 *  2N scalar points. An explicit `dim` of 1 (`Vi(w, 1)`) broadcasts as usual. */
function checkImplicitBroadcast<P>(def: OpDef<P>, operands: readonly LazyTensor[]): void {
  if (!BROADCASTING.has(def as unknown as OpDef<null>)) return;
  const wide = operands.find((o) => o.dim > 1);
  if (wide === undefined) return;
  for (const o of operands) {
    const node = o.node;
    if (node.kind === 'var' && implicitDimVariables.has(node)) {
      const maker = node.category === 'i' ? 'Vi' : 'Vj';
      throw new ShapeError(
        `${def.name}: ${node.name} came from flat data without dim, so it is ${node.rows} points of dimension 1, and it would broadcast against an operand of dimension ${wide.dim}; pass the dimension: ${maker}(data, ${wide.dim}) for [${node.rows / wide.dim}, ${wide.dim}] data, or ${maker}(data, 1) to broadcast scalars on purpose`,
      );
    }
  }
}

/** @internal The softmax max and sum per output row of a sumSoftMaxWeight result, when its engine
 *  computed them on the way (ReductionOutput.softMax): what vjp normalises the softmax weights by,
 *  instead of running a logSumExp reduction. Keyed by the result Tensor, so they live as long as it. */
export const softMaxStats = new WeakMap<Tensor<Float32Array | Float64Array>, SoftMaxStats>();

function stack(parts: readonly ReductionOutput[]): ReductionOutput {
  const join = <T extends Float32Array | Float64Array | Int32Array>(arrays: (T | null)[]): T | null => {
    if (arrays[0] === null || arrays[0] === undefined) return null;
    const first = arrays[0];
    const out = new (first.constructor as new (n: number) => T)(arrays.reduce((n, a) => n + a!.length, 0));
    let at = 0;
    for (const a of arrays) {
      out.set(a!, at);
      at += a!.length;
    }
    return out;
  };
  const values = join(parts.map((p) => p.values));
  const indices = join(parts.map((p) => p.indices));
  // The softmax statistics only when every item has them (an item may have run on another engine).
  if (!parts.every((p) => p.softMax !== undefined)) return { values, indices };
  const max = join(parts.map((p) => p.softMax!.max))!;
  return { values, indices, softMax: { max, sum: join(parts.map((p) => p.softMax!.sum))! } };
}

function resultShape(prepared: PreparedReduction, batch: readonly number[]): number[] {
  const { def, plan, outDim, k } = prepared;
  return [...batch, ...def.shape(plan.nOuter, outDim / Math.max(k, 1), outDim, k)];
}

/** The output of the engine reduction a lowered reduction ran as, turned into its own. */
function finish(prepared: PreparedReduction, output: ReductionOutput, rows: number): ReductionOutput {
  const lowering = prepared.def.lowering;
  if (lowering === null) return output;
  return lowering.finish(output.values, output.indices, rows, prepared.outDim);
}

function resolveDType(
  kind: string,
  variables: readonly { dtype: DType | null; name: string }[],
  override: DType | undefined,
): DType {
  if (override !== undefined) return override;
  let chosen: { dtype: DType; name: string } | null = null;
  for (const v of variables) {
    if (v.dtype === null) continue;
    if (chosen !== null && chosen.dtype !== v.dtype) {
      throw new InputError(
        `${kind}: ${chosen.name} is ${chosen.dtype} but ${v.name} is ${v.dtype}; pass { dtype } to the reduction or convert the data`,
      );
    }
    chosen = { dtype: v.dtype, name: v.name };
  }
  return chosen?.dtype ?? 'float64';
}

function mergeRows(where: string, category: 'i' | 'j', a: number | null, b: number | null): number | null {
  if (a !== null && b !== null && a !== b) {
    throw new InputError(`${where}: ${category}-variables with ${a} and ${b} rows cannot be combined`);
  }
  return a ?? b;
}

function toLazy(where: string, operand: Operand, allowInfinite = false): LazyTensor {
  if (operand instanceof LazyTensor) return operand;
  if (typeof operand === 'number') return new LazyTensor(makeConstant(where, operand, allowInfinite), null, null);
  throw new InputError(`${where}: expected a LazyTensor or a number, got ${typeof operand}`);
}

/**
 * An i-indexed variable: N rows of dimension `dim` (the rows of the symbolic matrix).
 *
 * `data` is a Float32Array or Float64Array (row-major [N, dim]: pass `dim`; flat data without it is
 * N*dim points of dimension 1, and such a variable refuses (ShapeError) to broadcast against a vector
 * in add/sub/mul/... : pass `dim` 1 explicitly for scalars meant to broadcast), a flat `number[]` with
 * `dim`, rows as `number[][]`, a {@link Tensor} (its shape [N, D] or [B, N, D] gives the rows), or a batch
 * `number[][][]` ([B, N, D]; flat data takes `{ batch: [B] }`). A Float32Array computes in float32, a
 * Float64Array in float64; plain numbers follow the other operands.
 * @throws RangeError for empty, ragged or non-finite data, or a dim that does not divide its length.
 * @example
 * ```ts
 * const x = Vi(new Float32Array([0, 0, 1, 0, 0, 1]), 2); // 3 points in 2-D
 * const y = Vj([[0, 0], [2, 2]]);                         // 2 points (plain numbers follow x: float32)
 * const d = await x.sqDist(y).min(1);                     // Tensor [3, 1]: squared distance to the nearest y
 * ```
 */
export function Vi(data: ArrayInput, dim?: number, options?: VariableOptions): LazyTensor {
  const v = makeVariable('Vi', 'i', data, dim, options);
  return new LazyTensor(v, v.rows, null, v.batch);
}

/**
 * A placeholder i-variable of dimension `dim`, without data: build a formula once with
 * {@link formula} and bind data to it for each call (KeOps's `Vi(0, D)`). Reducing a formula that
 * still has a placeholder is an InputError.
 * @throws InputError for a dim that is not a positive integer.
 */
Vi.placeholder = function placeholderI(dim: number, options?: { name?: string }): LazyTensor {
  return new LazyTensor(makePlaceholder('Vi.placeholder', 'i', dim, options?.name), null, null);
};

/**
 * A j-indexed variable: M rows of dimension `dim` (the columns of the symbolic matrix). Takes the
 * same data and options as {@link Vi}.
 * @example
 * ```ts
 * const K = Vi(x, 3).sqDist(Vj(y, 3)).mul(-0.5).exp(); // Gaussian kernel, N x M, never stored
 * const Kb = await K.mul(Vj(b, 1)).sum(1);            // Tensor [N, 1]
 * ```
 */
export function Vj(data: ArrayInput, dim?: number, options?: VariableOptions): LazyTensor {
  const v = makeVariable('Vj', 'j', data, dim, options);
  return new LazyTensor(v, null, v.rows, v.batch);
}

/** A placeholder j-variable of dimension `dim` (see {@link Vi.placeholder}). */
Vj.placeholder = function placeholderJ(dim: number, options?: { name?: string }): LazyTensor {
  return new LazyTensor(makePlaceholder('Vj.placeholder', 'j', dim, options?.name), null, null);
};

/**
 * A parameter: a number or a vector, the same for every (i, j), that `vjp` can differentiate (a plain
 * number given to an operation is a constant instead). `number[][]` gives one vector per batch item.
 * @example
 * ```ts
 * const gamma = Pm(50, { name: 'gamma' });
 * const K = x.sqDist(y).mul(gamma).neg().exp();
 * const [dGamma] = await vjp(reduction(K, 'sum', 1), { wrt: [gamma], cotangent: ones });
 * ```
 */
export function Pm(value: number | ArrayInput, options?: ParameterOptions): LazyTensor {
  const v = makeParameter(value, options);
  return new LazyTensor(v, null, null, v.batch);
}

/** A placeholder parameter of dimension `dim` (see {@link Vi.placeholder}); bind a number or a vector. */
Pm.placeholder = function placeholderP(dim: number, options?: { name?: string }): LazyTensor {
  return new LazyTensor(makePlaceholder('Pm.placeholder', 'p', dim, options?.name), null, null);
};

/** What solve.ts needs from this module, passed in so that it imports none of it at run time. */
const SOLVE_KIT: SolveKit = {
  column: (data, columns) => Vj(data, columns),
  lazy: (node, rowsI, rowsJ) => new LazyTensor(node, rowsI, rowsJ),
  isLazy: (b): b is LazyTensor => b instanceof LazyTensor,
};
