// Symbolic differentiation of formulas. Reverse mode walks the formula once from the output down,
// asking each operation record for the cotangents of its arguments (its `vjp` rule). Forward mode is
// the transpose of reverse mode: every vjp rule is linear in its cotangent, so J u is the gradient,
// with respect to a placeholder cotangent e, of <J^T e, u>; the placeholder disappears from the result.
import { InputError } from './errors.js';
import { zeros } from './build.js';
import { Variable, type FormulaNode } from './formula.js';
import { dotProduct, plus } from './ops.js';
import { OpNode } from './formula.js';

/** Nodes under `root`, each after all of its arguments. */
function topologicalOrder(root: FormulaNode): FormulaNode[] {
  const order: FormulaNode[] = [];
  const seen = new Set<FormulaNode>();
  const stack: [FormulaNode, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [node, expanded] = stack.pop()!;
    if (expanded) {
      order.push(node);
      continue;
    }
    if (seen.has(node)) continue;
    seen.add(node);
    stack.push([node, true]);
    if (node.kind === 'op') for (const a of node.args) if (!seen.has(a)) stack.push([a, false]);
  }
  return order;
}

/** The vector-Jacobian product J^T e of `formula` with respect to the variable `wrt`. */
export function gradient(formula: FormulaNode, wrt: Variable, cotangent: FormulaNode): FormulaNode {
  if (cotangent.dim !== formula.dim) {
    throw new InputError(`grad: the cotangent has dimension ${cotangent.dim}, the formula ${formula.dim}`);
  }
  const order = topologicalOrder(formula);
  const cotangents = new Map<FormulaNode, FormulaNode>([[formula, cotangent]]);
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k]!;
    const ct = cotangents.get(node);
    if (ct === undefined || node.kind === 'var') continue;
    const grads = node.def.vjp(node.args, ct, node.params, node);
    node.args.forEach((arg, q) => {
      const g = grads[q];
      if (g === null || g === undefined) return;
      if (g.dim !== arg.dim) {
        throw new Error(
          `internal: the ${node.def.name} rule gave a cotangent of dimension ${g.dim} for an argument of ${arg.dim}`,
        );
      }
      const previous = cotangents.get(arg);
      cotangents.set(arg, previous === undefined ? g : plus(previous, g));
    });
  }
  return cotangents.get(wrt) ?? zeros(wrt.dim);
}

/** The Jacobian-vector product J u of `formula` with respect to `wrt`, in the direction `tangent`. */
export function directionalDerivative(formula: FormulaNode, wrt: Variable, tangent: FormulaNode): FormulaNode {
  if (tangent.dim !== wrt.dim) {
    throw new InputError(`diff: the direction has dimension ${tangent.dim}, the variable ${wrt.dim}`);
  }
  const placeholder = new Variable('p', formula.dim, 1, new Float64Array(formula.dim), null, 'e');
  const transposed = gradient(formula, wrt, placeholder);
  const pairing = new OpNode(dotProduct, [transposed, tangent], null);
  const result = gradient(pairing, placeholder, new Variable('p', 1, 1, Float64Array.of(1), null, '1', true));
  return result;
}
