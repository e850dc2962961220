// Float64 evaluation of a formula at one (i, j) pair, from each operation's reference. Used by
// `dense()` to materialise small symbolic matrices.
import { ResourceLimitError } from './errors.js';
import type { FormulaNode } from './formula.js';

/** Evaluates `node` at (i, j); `memo` shares work between repeated sub-formulas of one pair. */
export function evaluateAt(node: FormulaNode, i: number, j: number, memo = new Map<FormulaNode, Float64Array>()): Float64Array {
  const hit = memo.get(node);
  if (hit !== undefined) return hit;
  let out: Float64Array;
  if (node.kind === 'var') {
    const row = node.category === 'i' ? i : node.category === 'j' ? j : 0;
    out = Float64Array.from(node.data.subarray(row * node.dim, row * node.dim + node.dim));
  } else {
    out = node.def.reference(
      node.args.map((a) => evaluateAt(a, i, j, memo)),
      node.params,
    );
  }
  memo.set(node, out);
  return out;
}

/** The [rowsI][rowsJ][dim] values of a formula, refusing more than `maxEntries` numbers. */
export function denseMatrix(node: FormulaNode, rowsI: number, rowsJ: number, maxEntries: number): number[][][] {
  const entries = rowsI * rowsJ * node.dim;
  if (entries > maxEntries) {
    throw new ResourceLimitError(
      `dense: ${rowsI} x ${rowsJ} x ${node.dim} = ${entries} values exceed the limit of ${maxEntries}; reduce the matrix instead, or pass { maxEntries }`,
      entries,
      maxEntries,
      'entries',
    );
  }
  const out: number[][][] = [];
  for (let i = 0; i < rowsI; i++) {
    const row: number[][] = [];
    for (let j = 0; j < rowsJ; j++) row.push(Array.from(evaluateAt(node, i, j)));
    out.push(row);
  }
  return out;
}
