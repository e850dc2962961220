// Reverse-mode differentiation of a scalar built from several reductions and Tensor arithmetic. The
// function runs eagerly once; every reduction and every arithmetic step on a traced tensor is
// recorded, then the recording is walked backwards. A reduction's backward step is `vjp` (each
// gradient one more reduction); a variable is tied to the traced tensor it was made from (Vi(x),
// Vj(x), Pm(x)), so one input used as both the i- and the j-variable gets both contributions.
import { InputError } from './errors.js';
import { variablesOf, type DType, type Variable } from './formula.js';
import { variableSources, type ArrayInput } from './input.js';
import { LazyTensor } from './lazy-tensor.js';
import {
  reduction,
  runReduction,
  vjpWithValue,
  type DifferentiableReduction,
  type ReductionSpec,
} from './reduction-grad.js';
import type { Axis } from './reduction.js';
import type { ReductionOptions } from './lazy-tensor.js';
import { Tensor, type TensorIndices, type TensorOperand } from './tensor.js';

type Backward = (grad: Float64Array) => Promise<void> | void;

// A traced tensor holds float64 values (its gradient arithmetic is float64), but the precision its
// values stand for is kept: float32 for an input given as float32 data and for what float32 steps
// make of it. tape.reduce computes in float32 when its traced variables stand for float32 values
// (and nothing in the formula is float64), as the same reduction of the original data would: the
// float64 copies made every reduction of a float32 valueAndGrad run in float64, 1.7x slower
// (attention, N = 1024, d = 64).
const precisions = new WeakMap<Traced, DType>();

/** The precision of an elementwise step's result: float64 when a tensor operand stands for float64
 *  values (a traced one by its precision, another by its array), else float32 when one stands for
 *  float32, else none (plain numbers). */
function precisionOf(operands: readonly (Traced | TensorOperand)[]): DType | null {
  let result: DType | null = null;
  for (const o of operands) {
    if (typeof o === 'number') continue;
    const p =
      o instanceof Traced
        ? (precisions.get(o) ?? null)
        : o.data instanceof Float32Array
          ? 'float32'
          : o.data instanceof Float64Array
            ? 'float64'
            : null;
    if (p === 'float64') return p;
    result ??= p;
  }
  return result;
}

interface Step {
  readonly output: Traced;
  readonly backward: Backward;
}

/**
 * A float64 Tensor recorded on a {@link Tape}: the inputs of a {@link valueAndGrad} function, the
 * results of `tape.reduce`, and what Tensor arithmetic makes of them. Pass it to Vi / Vj / Pm to use
 * it in a formula; its gradient flows back through every use.
 */
export class Traced extends Tensor<Float64Array> {
  /** @internal */
  constructor(
    data: Float64Array,
    shape: readonly number[],
    /** The tape that records this tensor's operations. */
    readonly tape: Tape,
  ) {
    super(data, shape, 'wasm');
  }

  /** Traced elementwise this + other (see {@link Tensor.add}); the gradient is summed over broadcast axes. */
  override add(other: TensorOperand): Traced {
    return this.tape.binary(
      this,
      other,
      super.add(other),
      () => 1,
      () => 1,
    );
  }
  /** Traced elementwise this - other. */
  override sub(other: TensorOperand): Traced {
    return this.tape.binary(
      this,
      other,
      super.sub(other),
      () => 1,
      () => -1,
    );
  }
  /** Traced elementwise this * other. */
  override mul(other: TensorOperand): Traced {
    return this.tape.binary(
      this,
      other,
      super.mul(other),
      (_a, b) => b,
      (a) => a,
    );
  }
  /** Traced elementwise this / other. */
  override div(other: TensorOperand): Traced {
    return this.tape.binary(
      this,
      other,
      super.div(other),
      (_a, b) => 1 / b,
      (a, b) => -a / (b * b),
    );
  }
  /** Elementwise -x. */
  neg(): Traced {
    return this.mul(-1);
  }
  /** Elementwise exp(x). */
  exp(): Traced {
    return this.tape.unary(this, Math.exp, (_x, y) => y);
  }
  /** Elementwise natural logarithm. */
  log(): Traced {
    return this.tape.unary(this, Math.log, (x) => 1 / x);
  }

  /** A traced tensor has no untraced total: `sum()` would leave the tape, so it is an InputError.
   *  Use `sum(axis)` (a [N, 1] result summed over axis 0 has one value) or {@link Traced.total}. */
  override sum(): number;
  override sum(axis: number): Traced;
  override sum(axis?: number): number | Traced {
    if (axis === undefined) {
      throw new InputError('Traced.sum: sum() would leave the tape (a plain number); use total() or sum(axis)');
    }
    return this.tape.alongAxis(this, super.sum(axis), axis, 1);
  }
  /** See {@link Traced.sum}: `mean()` is an InputError, `mean(axis)` is traced. */
  override mean(): number;
  override mean(axis: number): Traced;
  override mean(axis?: number): number | Traced {
    if (axis === undefined) {
      throw new InputError('Traced.mean: mean() would leave the tape (a plain number); use total() or mean(axis)');
    }
    const n = this.shape[axis < 0 ? axis + this.shape.length : axis]!;
    return this.tape.alongAxis(this, super.mean(axis), axis, 1 / n);
  }
  /** The sum of every value, as a traced tensor of shape [1] (what a valueAndGrad function returns). */
  total(): Traced {
    return this.tape.alongAxis(this.reshape([this.size]), super.sum(), 0, 1, [1]);
  }
  override reshape(shape: readonly number[]): Traced {
    const out = super.reshape(shape);
    return this.tape.record(Float64Array.from(out.data), out.shape, [this], (g) => {
      this.tape.accumulate(this, g);
    });
  }
  override gather(indices: TensorIndices): Traced {
    const out = super.gather(indices);
    const idx = indices instanceof Tensor ? indices.data : indices;
    const width = this.size / Math.max(this.shape[0] ?? 1, 1);
    return this.tape.record(out.data, out.shape, [this], (g) => {
      const back = new Float64Array(this.size);
      for (let r = 0; r < idx.length; r++) {
        for (let k = 0; k < width; k++) back[idx[r]! * width + k] = back[idx[r]! * width + k]! + g[r * width + k]!;
      }
      this.tape.accumulate(this, back);
    });
  }
  override scatterAdd(indices: TensorIndices, numBins: number): Traced {
    const out = super.scatterAdd(indices, numBins);
    const idx = indices instanceof Tensor ? indices.data : indices;
    const width = this.size / Math.max(this.shape[0] ?? 1, 1);
    return this.tape.record(out.data, out.shape, [this], (g) => {
      const back = new Float64Array(this.size);
      for (let r = 0; r < idx.length; r++) {
        for (let k = 0; k < width; k++) back[r * width + k] = g[idx[r]! * width + k]!;
      }
      this.tape.accumulate(this, back);
    });
  }
}

/** For each entry of a broadcast result, the flat index of the operand entry it read. */
function broadcastMap(out: readonly number[], operand: readonly number[]): Int32Array {
  const rank = out.length;
  const padded = [...new Array<number>(rank - operand.length).fill(1), ...operand];
  const size = out.reduce((p, s) => p * s, 1);
  const map = new Int32Array(size);
  const strides = new Array<number>(rank).fill(0);
  let acc = 1;
  for (let k = rank - 1; k >= 0; k--) {
    strides[k] = padded[k] === 1 ? 0 : acc;
    acc *= padded[k]!;
  }
  const counter = new Array<number>(rank).fill(0);
  let at = 0;
  for (let q = 0; q < size; q++) {
    map[q] = at;
    for (let k = rank - 1; k >= 0; k--) {
      counter[k]!++;
      at += strides[k]!;
      if (counter[k]! < out[k]!) break;
      at -= strides[k]! * out[k]!;
      counter[k] = 0;
    }
  }
  return map;
}

/** Records reductions and traced arithmetic; made by {@link valueAndGrad}, which hands it to the function. */
export class Tape {
  private readonly steps: Step[] = [];
  private readonly grads = new Map<Traced, Float64Array>();

  /** @internal */
  record(
    data: Float64Array,
    shape: readonly number[],
    parents: readonly (Traced | TensorOperand)[],
    backward: Backward,
    precision: DType | null = precisionOf(parents),
  ): Traced {
    const output = new Traced(data, shape, this);
    if (precision !== null) precisions.set(output, precision);
    this.steps.push({ output, backward });
    return output;
  }

  /** @internal Adds `g` to the gradient of `t`. */
  accumulate(t: Traced, g: ArrayLike<number>): void {
    const current = this.grads.get(t);
    if (current === undefined) this.grads.set(t, Float64Array.from(g));
    else for (let k = 0; k < current.length; k++) current[k] = current[k]! + g[k]!;
  }

  /** @internal */
  input(data: Float64Array, shape: readonly number[], precision: DType | null): Traced {
    const t = new Traced(data, shape, this);
    if (precision !== null) precisions.set(t, precision);
    return t;
  }

  /** @internal An elementwise binary step: `da` / `db` are the partial derivatives at (a, b). */
  binary(
    a: Traced,
    other: TensorOperand,
    out: Tensor<Float32Array | Float64Array>,
    da: (a: number, b: number) => number,
    db: (a: number, b: number) => number,
  ): Traced {
    if (other instanceof Traced && other.tape !== this) {
      throw new InputError('Traced arithmetic: the operand was traced by another valueAndGrad call');
    }
    const b = other instanceof Traced ? other : null;
    const mapA = broadcastMap(out.shape, a.shape);
    const mapB = typeof other === 'number' ? null : broadcastMap(out.shape, other.shape);
    return this.record(Float64Array.from(out.data), out.shape, [a, other], (g) => {
      const ga = new Float64Array(a.size);
      const gb = b ? new Float64Array(b.size) : null;
      for (let k = 0; k < g.length; k++) {
        const ka = mapA[k]!;
        const kb = mapB === null ? 0 : mapB[k]!;
        const av = a.data[ka]!;
        const bv = typeof other === 'number' ? other : other.data[kb]!;
        ga[ka] = ga[ka]! + g[k]! * da(av, bv);
        if (gb) gb[kb] = gb[kb]! + g[k]! * db(av, bv);
      }
      this.accumulate(a, ga);
      if (b && gb) this.accumulate(b, gb);
    });
  }

  /** @internal */
  unary(a: Traced, f: (x: number) => number, derivative: (x: number, y: number) => number): Traced {
    const data = Float64Array.from(a.data, f);
    return this.record(data, a.shape, [a], (g) => {
      const back = new Float64Array(a.size);
      for (let k = 0; k < back.length; k++) back[k] = g[k]! * derivative(a.data[k]!, data[k]!);
      this.accumulate(a, back);
    });
  }

  /** @internal A sum (scale 1) or mean (scale 1/n) over `axis`: its gradient is spread back along it. */
  alongAxis(
    a: Traced,
    result: Tensor<Float64Array> | number,
    axis: number,
    scale: number,
    shape?: readonly number[],
  ): Traced {
    const out = typeof result === 'number' ? Float64Array.of(result) : result.data;
    const outShape = shape ?? (result as Tensor).shape;
    const rank = a.shape.length;
    const ax = axis < 0 ? axis + rank : axis;
    const outer = a.shape.slice(0, ax).reduce((p, s) => p * s, 1);
    const n = a.shape[ax]!;
    const inner = a.shape.slice(ax + 1).reduce((p, s) => p * s, 1);
    return this.record(out, outShape, [a], (g) => {
      const back = new Float64Array(a.size);
      for (let o = 0; o < outer; o++) {
        for (let r = 0; r < n; r++) {
          for (let k = 0; k < inner; k++) back[(o * n + r) * inner + k] = g[o * inner + k]! * scale;
        }
      }
      this.accumulate(a, back);
    });
  }

  /**
   * Runs a differentiable reduction of a formula built from traced tensors (`Vi(x)`, `Vj(x)`,
   * `Pm(x)` of this tape's tensors) and records it: the result is a traced tensor whose gradient
   * flows back to those inputs through `vjp`. Variables made from other data are constants.
   * @example
   * ```ts
   * const lse = await tape.reduce(Vi(x).sqDist(Vj(mu)).neg(), 'logSumExp', 1); // Traced [N, 1]
   * ```
   * @throws InputError when `kind` is not differentiable, or the formula uses another tape's tensors.
   */
  async reduce(
    formula: LazyTensor,
    kind: DifferentiableReduction,
    axis: Axis,
    extra: { weight?: LazyTensor; k?: number; options?: ReductionOptions } = {},
  ): Promise<Traced> {
    const variables: Variable[] = variablesOf(formula.node);
    if (extra.weight) for (const v of variablesOf(extra.weight.node)) if (!variables.includes(v)) variables.push(v);
    const linked: { variable: Variable; source: Traced }[] = [];
    // float32 when a traced variable stands for float32 values and no other variable is float64
    // (its dtype, or the precision of its traced source, whose own dtype is its copy's float64).
    let float32 = false;
    let float64 = false;
    for (const variable of variables) {
      const source = variableSources.get(variable);
      if (!(source instanceof Traced)) {
        if (!variable.isConstant && variable.dtype === 'float64') float64 = true;
        if (variable.dtype === 'float32') float32 = true;
        continue;
      }
      if (source.tape !== this) throw new InputError(`reduce: ${variable.name} was made from another tape's tensor`);
      linked.push({ variable, source });
      const precision = precisions.get(source);
      if (precision === 'float32') float32 = true;
      else if (precision === 'float64') float64 = true;
    }
    const chosen = extra.options?.dtype === undefined && float32 && !float64 && linked.length > 0;
    const spec = reduction(
      formula,
      kind,
      axis,
      chosen ? { ...extra, options: { ...extra.options, dtype: 'float32' } } : extra,
    );
    const result = await runReduction(spec);
    const precision: DType = result.data instanceof Float32Array ? 'float32' : 'float64';
    return this.record(
      Float64Array.from(result.data),
      result.shape,
      [],
      async (g) => {
        if (linked.length === 0) return;
        const wrt = linked.map(({ variable }) => asLazy(variable));
        // The forward result is known: the logSumExp and sumSoftMaxWeight rules do not run it again.
        const grads = await vjpWithValue(spec as ReductionSpec, { wrt, cotangent: g }, result);
        linked.forEach(({ source }, q) => this.accumulate(source, grads[q]!.data));
      },
      precision,
    );
  }

  /** @internal Runs the recording backwards from `output` (seeded with 1). */
  async backward(output: Traced): Promise<void> {
    this.grads.set(
      output,
      Float64Array.from({ length: output.size }, () => 1),
    );
    for (let k = this.steps.length - 1; k >= 0; k--) {
      const step = this.steps[k]!;
      const g = this.grads.get(step.output);
      if (g !== undefined) await step.backward(g);
    }
  }

  /** @internal */
  gradOf(t: Traced): Float64Array | undefined {
    return this.grads.get(t);
  }
}

function asLazy(v: Variable): LazyTensor {
  return new LazyTensor(v, v.category === 'i' ? v.rows : null, v.category === 'j' ? v.rows : null, v.batch);
}

/** Options of {@link valueAndGrad}. */
export interface ValueAndGradOptions {
  /** Give a zero gradient for an input the function does not differentiate through, instead of an
   *  InputError (default false). */
  allowUnused?: boolean;
}

/** What a function made by {@link valueAndGrad} returns. */
export interface ValueAndGrad {
  /** The function's value. */
  value: number;
  /** One gradient per input, shaped like it (float64). */
  grad: Tensor<Float64Array>[];
}

/** An input as float64 data, its shape, and the precision it stands for (that of typed data; none
 *  for plain numbers, which, like Vi's number[], follow the other operands). */
function shapeOf(
  where: string,
  input: ArrayInput | number,
): { data: Float64Array; shape: number[]; precision?: DType } {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new InputError(`${where} is ${input}; inputs must be finite`);
    return { data: Float64Array.of(input), shape: [1] };
  }
  const typed = (data: unknown): DType | undefined =>
    data instanceof Float32Array ? 'float32' : data instanceof Float64Array ? 'float64' : undefined;
  if (input instanceof Tensor) {
    return { data: Float64Array.from(input.data), shape: [...input.shape], precision: typed(input.data) };
  }
  if (input instanceof Float32Array || input instanceof Float64Array) {
    return { data: Float64Array.from(input), shape: [input.length], precision: typed(input) };
  }
  if (Array.isArray(input)) {
    if (input.length > 0 && typeof input[0] !== 'number') {
      const rows = input as readonly ArrayLike<number>[];
      const d = rows[0]!.length;
      const data = new Float64Array(rows.length * d);
      rows.forEach((row, r) => {
        if (row === null || typeof row !== 'object' || row.length !== d) {
          throw new InputError(`${where}: row ${r} must have ${d} numbers`);
        }
        for (let k = 0; k < d; k++) data[r * d + k] = row[k]!;
      });
      return { data, shape: [rows.length, d] };
    }
    return { data: Float64Array.from(input as readonly number[]), shape: [input.length] };
  }
  throw new InputError(`${where} must be a Tensor, a number, a typed array, a number[] or number[][]`);
}

/**
 * Makes the value-and-gradient function of `fn`, a scalar function of several reductions and Tensor
 * arithmetic: `fn` gets each input as a {@link Traced} tensor (float64, shaped like the input: a
 * `number[][]` [N, D], a Tensor its shape, a flat array [L], a number [1]) and the {@link Tape}; it
 * builds formulas with `Vi(x)`, `Vj(x)`, `Pm(x)` of those inputs (one input may be both an i- and a
 * j-variable), reduces them with `tape.reduce`, combines the results with traced arithmetic, and
 * returns a traced tensor of one value. Every gradient is exact (one `vjp` per reduction).
 * @example
 * ```ts
 * const f = valueAndGrad(async ([x, mu], tape) => {
 *   const lse = await tape.reduce(Vi(x).sqDist(Vj(mu)).mul(-0.5), 'logSumExp', 1); // [N, 1]
 *   return lse.total().neg();
 * });
 * const { value, grad: [dx, dmu] } = await f([points, centres]);
 * ```
 * @throws InputError when fn does not return a traced tensor of one value of this call, or an input
 *   gets no gradient (unless `allowUnused`).
 */
export function valueAndGrad(
  fn: (inputs: Traced[], tape: Tape) => Promise<Traced> | Traced,
  options: ValueAndGradOptions = {},
): (inputs: readonly (ArrayInput | number)[]) => Promise<ValueAndGrad> {
  if (typeof fn !== 'function') throw new InputError('valueAndGrad: fn must be a function');
  if (options.allowUnused !== undefined && typeof options.allowUnused !== 'boolean') {
    throw new InputError(`valueAndGrad: allowUnused must be a boolean, got ${typeof options.allowUnused}`);
  }
  return async (inputs) => {
    if (!Array.isArray(inputs)) throw new InputError('valueAndGrad: call the function with an array of inputs');
    const tape = new Tape();
    const traced = inputs.map((input, q) => {
      const { data, shape, precision } = shapeOf(`valueAndGrad: inputs[${q}]`, input);
      return tape.input(data, shape, precision ?? null);
    });
    const out = await fn(traced, tape);
    if (!(out instanceof Traced) || out.tape !== tape || out.size !== 1) {
      throw new InputError(
        'valueAndGrad: fn must return a traced tensor of one value (e.g. result.total()), made from its inputs',
      );
    }
    await tape.backward(out);
    const grad = traced.map((t, q) => {
      const g = tape.gradOf(t);
      if (g === undefined && options.allowUnused !== true) {
        throw new InputError(
          `valueAndGrad: inputs[${q}] does not reach the value (use Vi/Vj/Pm of the traced input, not of the original data), so its gradient is zero; pass allowUnused: true to get zeros`,
        );
      }
      return new Tensor(g ?? new Float64Array(t.size), t.shape, 'wasm');
    });
    return { value: out.data[0]!, grad };
  };
}
