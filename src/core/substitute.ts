// Rebuilding a formula with some of its variables replaced: the same operations (and their static
// parameters) over new leaves. Used to evaluate a kernel on a subset of its points (the Nyström
// preconditioner) and to call a formula built once with new data (formula placeholders).
import { OpNode, postOrder, type FormulaNode, type Variable } from './formula.js';

/** `root` with every variable of `replacements` swapped for its replacement; shared subformulas stay shared. */
export function substitute(root: FormulaNode, replacements: ReadonlyMap<Variable, Variable>): FormulaNode {
  const rebuilt = new Map<FormulaNode, FormulaNode>();
  for (const node of postOrder(root)) {
    if (node.kind === 'var') {
      rebuilt.set(node, replacements.get(node) ?? node);
      continue;
    }
    const args = node.args.map((a) => rebuilt.get(a)!);
    const same = args.every((a, q) => a === node.args[q]);
    rebuilt.set(node, same ? node : new OpNode(node.def, args, node.params));
  }
  return rebuilt.get(root)!;
}
