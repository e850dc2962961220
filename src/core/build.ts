// Building formula nodes from code (derivative rules, helpers): constants and the test for the
// constants 0 and 1. The arithmetic builders with their simplifications (x + 0, x * 1, x * 0: plus,
// minus, times, divide, negate, unbroadcast) are in ops.ts, beside the records they build, so that
// no module waits for another to bind them.
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

export const scalar = (value: number): Variable => constant([value]);
