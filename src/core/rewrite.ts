// Pattern rewriting before a formula is compiled: the idioms users write for squared distances and
// norms (KeOps tutorials write `x.sub(y).square().sum(-1)` and `.pow(2)`) are replaced by the fused
// operations the engines have (SQDIST keeps its partial sums in registers and never writes x - y:
// the literal idiom was 4.6x slower, 10x with pow(2)). Every rule gives the same values to the
// last bit on the WebAssembly engine (the same products, added in the same order) and the same
// float32 arithmetic on WebGPU. Both engines' compilers call rewriteFormula on the plan's formula;
// the formula the user built (its toString, its derivatives, dense()) is left as it is.
import { OpNode, postOrder, type FormulaNode } from './formula.js';
import * as ops from './ops.js';

const isOp = (node: FormulaNode, def: OpNode['def']): node is OpNode => node.kind === 'op' && node.def === def;

/** x - y with x and y of the same dimension (no broadcast): what sqDist(x, y) takes. */
const isPlainSub = (node: FormulaNode): node is OpNode =>
  isOp(node, ops.sub) && node.args[0]!.dim === node.args[1]!.dim;

const sqDistOf = (difference: OpNode): OpNode => new OpNode(ops.sqDist, difference.args, null);

/** One node, its arguments already rewritten. */
function rewriteNode(node: OpNode): FormulaNode {
  const [a] = node.args;
  // pow(2) -> square: the same product a * a (repeated squaring of 2 computes exactly that).
  if (node.def === ops.pow && (node.params as { n: number }).n === 2) return new OpNode(ops.square, node.args, null);
  // sum((x - y)^2) -> sqDist(x, y); sum(a^2) -> sqNorm2(a)
  if (node.def === ops.sum && isOp(a!, ops.square)) {
    const inner = a.args[0]!;
    return isPlainSub(inner) ? sqDistOf(inner) : new OpNode(ops.sqNorm2, [inner], null);
  }
  // |x - y|^2 -> sqDist(x, y); |x - y| -> sqrt(sqDist(x, y))
  if (node.def === ops.sqNorm2 && isPlainSub(a!)) return sqDistOf(a);
  if (node.def === ops.norm2 && isPlainSub(a!)) return new OpNode(ops.sqrt, [sqDistOf(a)], null);
  return node;
}

/**
 * The formula with the squared-distance idioms replaced by fused operations (see above): bottom-up,
 * so `x.sub(y).pow(2).sum(-1)` becomes `sqDist(x, y)`. Nodes that no rule touches, and the whole
 * formula when none applies, are returned as they are (shared sub-formulas stay shared).
 * Iterative: formulas of any depth.
 */
export function rewriteFormula(root: FormulaNode): FormulaNode {
  const out = new Map<FormulaNode, FormulaNode>();
  for (const node of postOrder(root)) {
    if (node.kind === 'var') {
      out.set(node, node);
      continue;
    }
    const args = node.args.map((arg) => out.get(arg)!);
    const same = args.every((arg, k) => arg === node.args[k]);
    out.set(node, rewriteNode(same ? node : new OpNode(node.def, args, node.params)));
  }
  return out.get(root)!;
}
