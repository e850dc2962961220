// The large-D pattern both engines block: a per-pair product over D components between one row of
// each side, the part of a K-NN, K-means or kernel formula that costs D operations per pair.
//
// The WebAssembly engine finds it at the instruction level (assembly/blocked.ts, planBlocked: DOT,
// SQDIST, WSQDIST of a uniform register and an inner variable); this is the same rule on the formula,
// for engines that generate their kernels from the formula itself (the WebGPU engine's tiled
// kernels, src/gpu/codegen.ts). Run it on the rewritten formula (core/rewrite.ts), where the
// squared-distance idioms (sum((x - y)^2), ...) have already become sqDist.
import { postOrder, type FormulaNode, type OpNode, type Variable } from './formula.js';

/** The operations recognised: `dot` (sum x_k y_k), `sqDist` (sum (x_k - y_k)^2) and `weightedSqDist`
 *  with an isotropic (one value) or diagonal (D values) parameter weight (sum s_k (x_k - y_k)^2). */
export type PairProductKind = 'dot' | 'sqDist' | 'weightedSqDist';

/** One product node of a formula: its operands are a variable of the outer side and a variable of
 *  the inner side of the reduction (in either order), both of `dim` components. */
export interface PairProduct {
  readonly node: OpNode;
  readonly kind: PairProductKind;
  readonly outer: Variable;
  readonly inner: Variable;
  /** weightedSqDist's weight (a parameter of 1 or `dim` components), else null. */
  readonly weight: Variable | null;
  readonly dim: number;
}

type Role = 'outer' | 'inner' | 'param';

/**
 * Every distinct product node of `roots` (post-order) whose operands are one outer and one inner
 * variable of at least `minDim` components. Views of variables, computed operands (x.normalize())
 * and full-matrix weights are not recognised: their formulas run unblocked.
 */
export function pairProducts(
  roots: FormulaNode | readonly FormulaNode[],
  roleOf: (v: Variable) => Role,
  minDim = 1,
): PairProduct[] {
  const found: PairProduct[] = [];
  for (const node of postOrder(roots)) {
    if (node.kind !== 'op') continue;
    const name = node.def.name;
    if (name !== 'dot' && name !== 'sqDist' && name !== 'weightedSqDist') continue;
    const [a, b, s] = node.args;
    if (a === undefined || b === undefined || a.kind !== 'var' || b.kind !== 'var') continue;
    const ra = roleOf(a);
    const rb = roleOf(b);
    const outer = ra === 'outer' && rb === 'inner' ? a : rb === 'outer' && ra === 'inner' ? b : null;
    if (outer === null || a.dim < minDim) continue;
    const inner = outer === a ? b : a;
    let weight: Variable | null = null;
    if (name === 'weightedSqDist') {
      if (s === undefined || s.kind !== 'var' || roleOf(s) !== 'param' || (s.dim !== 1 && s.dim !== a.dim)) continue;
      weight = s;
    }
    found.push({ node, kind: name, outer, inner, weight, dim: a.dim });
  }
  return found;
}
