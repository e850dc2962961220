// Batches, as in KeOps: variables may carry leading batch dimensions ([B, N, D] data, [B, D]
// parameters); dimensions of size 1 broadcast. A batched reduction runs one plan per batch item,
// each over the items' slices of the data (no copy), and stacks the results.
import { InputError } from './errors.js';
import { OpNode, postOrder, Variable, type FormulaNode } from './formula.js';
import type { PlanVariable, ReductionPlan } from './reduction.js';

/** The broadcast of two batch shapes; an empty shape broadcasts against anything. */
export function mergeBatch(where: string, a: readonly number[], b: readonly number[]): readonly number[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  if (a.length !== b.length) {
    throw new InputError(`${where}: batch dimensions [${a.join(', ')}] and [${b.join(', ')}] have different ranks`);
  }
  return a.map((d, k) => {
    const e = b[k]!;
    if (d !== e && d !== 1 && e !== 1) {
      throw new InputError(
        `${where}: batch dimension ${k} is ${d} for one operand and ${e} for the other (each must be equal or 1)`,
      );
    }
    return Math.max(d, e);
  });
}

export const batchSize = (batch: readonly number[]): number => batch.reduce((p, b) => p * b, 1);

/** The index of batch item `item` (row-major in `batch`) within a variable's own batch shape. */
export function itemIndex(item: number, batch: readonly number[], own: readonly number[]): number {
  let rest = item;
  let index = 0;
  let stride = 1;
  for (let k = batch.length - 1; k >= 0; k--) {
    const coordinate = rest % batch[k]!;
    rest = Math.floor(rest / batch[k]!);
    const size = own[k]!;
    index += (size === 1 ? 0 : coordinate) * stride;
    stride *= size;
  }
  return index;
}

/**
 * Sums per-item blocks of `inner` values, laid out over `batch`, into the blocks of a variable whose
 * own batch shape `own` broadcast against `batch` (an empty `own` receives the sum of every item).
 */
export function sumOverBroadcast(
  data: ArrayLike<number>,
  batch: readonly number[],
  inner: number,
  own: readonly number[],
): Float64Array {
  const out = new Float64Array(batchSize(own) * inner);
  for (let item = 0; item < batchSize(batch); item++) {
    const target = own.length === 0 ? 0 : itemIndex(item, batch, own);
    for (let q = 0; q < inner; q++) out[target * inner + q] = out[target * inner + q]! + data[item * inner + q]!;
  }
  return out;
}

/** The plan of one batch item: every batched variable replaced by its item's slice. */
export function batchItemPlan(plan: ReductionPlan, item: number, batch: readonly number[]): ReductionPlan {
  const replaced = new Map<FormulaNode, FormulaNode>();
  const variables: PlanVariable[] = plan.variables.map(({ variable: v, role }) => {
    if (v.batch.length === 0) return { variable: v, role };
    const size = v.rows * v.dim;
    const at = itemIndex(item, batch, v.batch) * size;
    const slice = new Variable(v.category, v.dim, v.rows, v.data.subarray(at, at + size), v.dtype, v.name, false);
    replaced.set(v, slice);
    return { variable: slice, role };
  });
  // Iterative (post-order): formulas of any depth.
  const rebuild = (root: FormulaNode): FormulaNode => {
    for (const node of postOrder(root)) {
      if (replaced.has(node) || node.kind === 'var') continue;
      const args = node.args.map((a) => replaced.get(a) ?? a);
      replaced.set(node, args.every((a, q) => a === node.args[q]) ? node : new OpNode(node.def, args, node.params));
    }
    return replaced.get(root) ?? root;
  };
  return {
    ...plan,
    formula: rebuild(plan.formula),
    weight: plan.weight === null ? null : rebuild(plan.weight),
    variables,
  };
}
