// Gradients of reductions. The gradient of a reduction is itself a reduction of a derivative formula:
// for out_i = red_j F(x_i, y_j, p), the gradient with respect to an i-variable sums over j, with respect
// to a j-variable sums over i (axis 0), and with respect to a parameter sums over both. Each reduction
// supplies the cotangent of F: the user's cotangent for sums, times softmax weights for log-sum-exp and
// sumSoftMaxWeight, and a mask of the selected index for the min/max family (a subgradient).
import { InputError } from './errors.js';
import { gradient } from './autodiff.js';
import type { FormulaNode } from './formula.js';
import { LazyTensor, Vi, Vj, type ReductionOptions } from './lazy-tensor.js';
import { Tensor } from './tensor.js';
import { batchSize, mergeBatch, sumOverBroadcast } from './batch.js';
import type { Axis } from './reduction.js';

/** Reductions that have a gradient with respect to their inputs. */
export type DifferentiableReduction = 'sum' | 'logSumExp' | 'sumSoftMaxWeight' | 'min' | 'max' | 'kMin';

/** A reduction described but not run: what `vjp` differentiates. */
export interface ReductionSpec {
  readonly formula: LazyTensor;
  readonly kind: DifferentiableReduction;
  readonly axis: Axis;
  /** The weight of logSumExp (optional) and sumSoftMaxWeight (required). */
  readonly weight?: LazyTensor;
  /** K of kMin. */
  readonly k?: number;
  readonly options?: ReductionOptions;
}

/** Describes a reduction for `vjp`: `reduction(F, 'sum', 1)`. */
export function reduction(
  formula: LazyTensor,
  kind: DifferentiableReduction,
  axis: Axis,
  extra: { weight?: LazyTensor; k?: number; options?: ReductionOptions } = {},
): ReductionSpec {
  return { formula, kind, axis, ...extra };
}

/** Runs a described reduction. */
export async function runReduction(spec: ReductionSpec): Promise<Tensor<Float32Array | Float64Array>> {
  const { formula: F, axis, options } = spec;
  switch (spec.kind) {
    case 'sum':
      return F.sum(axis, options);
    case 'logSumExp':
      return F.logSumExp(axis, { ...options, ...(spec.weight ? { weight: spec.weight } : {}) });
    case 'sumSoftMaxWeight':
      if (!spec.weight) throw new InputError('sumSoftMaxWeight: a weight is required');
      return F.sumSoftMaxWeight(axis, spec.weight, options);
    case 'min':
      return F.min(axis, options);
    case 'max':
      return F.max(axis, options);
    case 'kMin':
      return F.kMin(spec.k ?? 1, axis, options);
  }
}

export interface VjpOptions {
  /** The variables (made by Vi, Vj or Pm) to differentiate with respect to. */
  wrt: readonly LazyTensor[];
  /** The cotangent: one value per output entry, shape [n, outDim] flattened, or a Tensor. */
  cotangent: Float32Array | Float64Array | readonly number[] | Tensor;
}

/** The outer variable of a reduction over `axis` (indexed like its results), batched like them. */
function outerVariable(axis: Axis, data: Float32Array | Float64Array, dim: number, batch: readonly number[]): LazyTensor {
  const options = batch.length > 0 ? { batch } : undefined;
  return axis === 1 ? Vi(data, dim, options) : Vj(data, dim, options);
}

/** 0, 1, ..., n - 1 as a variable of the reduced index, to select indices inside formulas. */
function innerIndices(axis: Axis, n: number, dtype: 'float32' | 'float64'): LazyTensor {
  const iota = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  for (let k = 0; k < n; k++) iota[k] = k;
  return axis === 1 ? Vj(iota, 1) : Vi(iota, 1);
}

const toData = (t: Tensor, dtype: 'float32' | 'float64'): Float32Array | Float64Array =>
  dtype === 'float32' ? Float32Array.from(t.data) : Float64Array.from(t.data);

/** The cotangent of F (a formula) whose gradient, reduced, gives the reduction's gradient. */
async function formulaCotangent(spec: ReductionSpec, C: LazyTensor, dtype: 'float32' | 'float64', batch: readonly number[]): Promise<{ F: LazyTensor; ct: LazyTensor; extra: { G: LazyTensor; ct: LazyTensor } | null }> {
  const { formula: F, axis } = spec;
  const opts = { ...spec.options, dtype };
  switch (spec.kind) {
    case 'sum':
      return { F, ct: C, extra: null };
    case 'logSumExp': {
      const out = outerVariable(axis, toData(await runReduction({ ...spec, options: opts }), dtype), C.dim, batch);
      if (!spec.weight) return { F, ct: C.mul(F.sub(out).exp()), extra: null };
      // out_k = log sum exp(F) G_k: d out_k = sum exp(F - out_k) (G_k dF + dG_k)
      const s = F.sub(out).exp().mul(C); // dimension e
      return { F, ct: s.dot(spec.weight), extra: { G: spec.weight, ct: s } };
    }
    case 'sumSoftMaxWeight': {
      const G = spec.weight!;
      const out = outerVariable(axis, toData(await runReduction({ ...spec, options: opts }), dtype), G.dim, batch);
      const lse = outerVariable(axis, toData(await F.logSumExp(axis, opts), dtype), 1, batch);
      const softmax = F.sub(lse).exp();
      // d out = sum_j s_j (dG + (G - out) dF)
      return { F, ct: softmax.mul(C.dot(G.sub(out))), extra: { G, ct: softmax.mul(C) } };
    }
    case 'min':
    case 'max': {
      const picked = spec.kind === 'min' ? await F.argMin(axis, opts) : await F.argMax(axis, opts);
      const selected = outerVariable(axis, toData(picked, dtype), F.dim, batch);
      const index = innerIndices(axis, axis === 1 ? F.rowsJ! : F.rowsI!, dtype);
      return { F, ct: C.mul(index.eq(selected)), extra: null };
    }
    case 'kMin': {
      if (F.dim !== 1) throw new InputError('vjp of kMin: the formula must have dimension 1');
      const picked = await F.argKMin(spec.k ?? 1, axis, opts);
      const selected = outerVariable(axis, toData(picked, dtype), spec.k ?? 1, batch);
      const index = innerIndices(axis, axis === 1 ? F.rowsJ! : F.rowsI!, dtype);
      return { F, ct: C.dot(index.eq(selected)), extra: null };
    }
  }
}

/**
 * Gradients of a reduction with respect to its variables: for each variable in `wrt`, the tensor
 * sum_outputs cotangent . d(output)/d(variable), shaped like the variable's data ([n, dim], or [dim]
 * for a parameter). The min/max family gives the subgradient at the selected index; argMin-style
 * reductions have no gradient. Nothing is differentiated through loops: each gradient is one reduction.
 */
export async function vjp(spec: ReductionSpec, { wrt, cotangent }: VjpOptions): Promise<Tensor<Float32Array | Float64Array>[]> {
  const batch = mergeBatch('vjp', spec.formula.batch, spec.weight?.batch ?? []);
  const plan = spec.formula.plan(spec.kind === 'logSumExp' && spec.weight ? 'logSumExpWeighted' : spec.kind, spec.axis, spec.options, undefined, spec.weight, spec.k ?? 0);
  const dtype = plan.dtype;
  const raw = cotangent instanceof Tensor ? cotangent.data : cotangent;
  const expected = batchSize(batch) * plan.nOuter * plan.outDim;
  if (raw.length !== expected) {
    const shape = [...batch, plan.nOuter, plan.outDim].join(' x ');
    throw new InputError(`vjp: the cotangent has ${raw.length} values; the ${spec.kind} result has ${shape} = ${expected}`);
  }
  const C = outerVariable(spec.axis, dtype === 'float32' ? Float32Array.from(raw) : Float64Array.from(raw), plan.outDim, batch);
  const { F, ct, extra } = await formulaCotangent(spec, C, dtype, batch);
  const outerCategory = spec.axis === 1 ? 'i' : 'j';
  const results: Tensor<Float32Array | Float64Array>[] = [];
  const cast = (values: Float64Array) => (dtype === 'float32' ? Float32Array.from(values) : values);
  for (const v of wrt) {
    if (!(v instanceof LazyTensor) || v.node.kind !== 'var' || v.node.isConstant) {
      throw new InputError('vjp: wrt must list variables made by Vi, Vj or Pm');
    }
    const variable = v.node;
    let node: FormulaNode = gradient(F.node, variable, ct.node);
    if (extra) node = new LazyTensor(node, null, null).add(new LazyTensor(gradient(extra.G.node, variable, extra.ct.node), null, null)).node;
    const g = new LazyTensor(node, F.rowsI ?? C.rowsI, F.rowsJ ?? C.rowsJ, batch);
    const opts = { ...spec.options, dtype };
    if (variable.category === 'p') {
      // Per result row, then summed over the rows and over the batch items the parameter broadcasts to.
      const perRow = await g.sum(spec.axis, opts);
      const rows = plan.nOuter;
      const perItem = new Float64Array(batchSize(batch) * variable.dim);
      for (let item = 0; item < batchSize(batch); item++) {
        for (let r = 0; r < rows; r++) {
          for (let k = 0; k < variable.dim; k++) {
            perItem[item * variable.dim + k] = perItem[item * variable.dim + k]! + perRow.data[(item * rows + r) * variable.dim + k]!;
          }
        }
      }
      const total = sumOverBroadcast(perItem, batch, variable.dim, variable.batch);
      results.push(new Tensor(cast(total), [...variable.batch, variable.dim], perRow.engine));
    } else {
      const reduceAxis: Axis = variable.category === outerCategory ? spec.axis : spec.axis === 1 ? 0 : 1;
      const summed = await g.sum(reduceAxis, opts);
      if (batch.length === 0) {
        results.push(summed);
      } else {
        const inner = variable.rows * variable.dim;
        const total = sumOverBroadcast(summed.data, batch, inner, variable.batch);
        results.push(new Tensor(cast(total), [...variable.batch, variable.rows, variable.dim], summed.engine));
      }
    }
  }
  return results;
}
