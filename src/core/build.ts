// Building formula nodes from code (derivative rules, helpers), with the obvious simplifications
// (x + 0, x * 1, x * 0) so that gradients stay small formulas.
import { OpNode, Variable, type FormulaNode } from './formula.js';
import type { OpDef } from './op-def.js';

/** A constant vector, printed as its values. */
export function constant(values: readonly number[]): Variable {
  const text = values.length === 1 ? String(values[0]) : `[${values.join(', ')}]`;
  return new Variable('p', values.length, 1, Float64Array.from(values), null, text, true);
}

export const zeros = (dim: number): Variable => constant(new Array<number>(dim).fill(0));

function constantValue(node: FormulaNode): number | null {
  if (node.kind !== 'var' || !node.isConstant) return null;
  const first = node.data[0]!;
  for (let k = 1; k < node.data.length; k++) if (node.data[k] !== first) return null;
  return first;
}

export const isZero = (node: FormulaNode): boolean => constantValue(node) === 0;
export const isOne = (node: FormulaNode): boolean => constantValue(node) === 1;

export function apply<P>(def: OpDef<P>, args: readonly FormulaNode[], params: P): FormulaNode {
  return new OpNode(def, args, params);
}

/** Lazily bound so that ops.ts can import this module for its derivative rules. */
export interface Arithmetic {
  add: OpDef<null>;
  sub: OpDef<null>;
  mul: OpDef<null>;
  div: OpDef<null>;
  neg: OpDef<null>;
  sum: OpDef<null>;
}

let ar: Arithmetic | null = null;
export function bindArithmetic(defs: Arithmetic): void {
  ar = defs;
}
const arith = (): Arithmetic => ar!;

/** a + b, broadcasting dimension 1. */
export function plus(a: FormulaNode, b: FormulaNode): FormulaNode {
  if (isZero(a) && a.dim <= b.dim) return b;
  if (isZero(b) && b.dim <= a.dim) return a;
  return apply(arith().add, [a, b], null);
}

export function minus(a: FormulaNode, b: FormulaNode): FormulaNode {
  if (isZero(b) && b.dim <= a.dim) return a;
  if (isZero(a) && a.dim <= b.dim) return negate(b);
  return apply(arith().sub, [a, b], null);
}

export function times(a: FormulaNode, b: FormulaNode): FormulaNode {
  const dim = Math.max(a.dim, b.dim);
  if (isZero(a) || isZero(b)) return zeros(dim);
  if (isOne(a) && a.dim <= b.dim) return b;
  if (isOne(b) && b.dim <= a.dim) return a;
  return apply(arith().mul, [a, b], null);
}

export function divide(a: FormulaNode, b: FormulaNode): FormulaNode {
  if (isZero(a)) return zeros(Math.max(a.dim, b.dim));
  if (isOne(b) && b.dim <= a.dim) return a;
  return apply(arith().div, [a, b], null);
}

export function negate(a: FormulaNode): FormulaNode {
  if (isZero(a)) return a;
  return apply(arith().neg, [a], null);
}

export const scalar = (value: number): Variable => constant([value]);

/** The cotangent of an operand of dimension `dim` from one of the output's dimension: operands of
 *  dimension 1 that were broadcast receive the sum of the components. */
export function unbroadcast(ct: FormulaNode, dim: number): FormulaNode {
  if (ct.dim === dim) return ct;
  if (dim === 1) return apply(arith().sum, [ct], null);
  // A dimension-1 cotangent for a vector operand: repeat it.
  return times(ct, constant(new Array<number>(dim).fill(1)));
}
