// Float64 evaluation of a formula at one (i, j) pair, from each operation's reference. Used by
// `dense()` to materialise small symbolic matrices.
import { ResourceLimitError } from './errors.js';
import { postOrder, type FormulaNode } from './formula.js';

/** Evaluates `node` at (i, j) in float64 (iteratively: formulas of any depth). `order` is
 *  postOrder(node), passed in when many pairs are evaluated. */
export function evaluateAt(
  node: FormulaNode,
  i: number,
  j: number,
  order: readonly FormulaNode[] = postOrder(node),
): Float64Array {
  const values = new Map<FormulaNode, Float64Array>();
  for (const n of order) {
    if (n.kind === 'var') {
      const row = n.category === 'i' ? i : n.category === 'j' ? j : 0;
      values.set(n, Float64Array.from(n.data.subarray(row * n.dim, row * n.dim + n.dim)));
    } else {
      values.set(
        n,
        n.def.reference(
          n.args.map((a) => values.get(a)!),
          n.params,
        ),
      );
    }
  }
  return values.get(node)!;
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
  const order = postOrder(node);
  for (let i = 0; i < rowsI; i++) {
    const row: number[][] = [];
    for (let j = 0; j < rowsJ; j++) row.push(Array.from(evaluateAt(node, i, j, order)));
    out.push(row);
  }
  return out;
}
