// The formula tree: leaves are variables (indexed by i, by j, or parameters), inner nodes apply an
// operation record (see ops.ts). Nodes are immutable; their dimension is checked when they are built.
import { ResourceLimitError } from './errors.js';
import type { OpDef } from './op-def.js';

/** Which index a variable is indexed by: `i` (rows), `j` (columns) or neither (`p`: a parameter). */
export type Category = 'i' | 'j' | 'p';

/** The precision of a computation. */
export type DType = 'float32' | 'float64';

let nextVariableId = 0;

/** A leaf: data of shape [n, dim] (n = 1 for parameters), in the precision its array carries. */
export class Variable {
  readonly kind = 'var' as const;
  readonly id: number;
  constructor(
    readonly category: Category,
    readonly dim: number,
    readonly rows: number,
    /** Row-major values, validated finite. */
    readonly data: Float32Array | Float64Array,
    /** The precision the user asked for, or null when the data came as plain numbers. */
    readonly dtype: DType | null,
    readonly name: string,
    /** A literal number written in a formula: printed as its value. */
    readonly isConstant = false,
    /** Leading batch dimensions: data is [...batch, rows, dim]. */
    readonly batch: readonly number[] = [],
    /** The data is the caller's typed array (no copy): it is re-validated before each reduction. */
    readonly byReference = false,
  ) {
    this.id = nextVariableId++;
  }
  toString(): string {
    return this.name;
  }
}

/** An operation applied to argument nodes, with its static parameters (exponent, indices, ...). */
export class OpNode<P = unknown> {
  readonly kind = 'op' as const;
  readonly dim: number;
  constructor(
    readonly def: OpDef<P>,
    readonly args: readonly FormulaNode[],
    readonly params: P,
  ) {
    this.dim = def.shape(
      args.map((a) => a.dim),
      params,
    );
  }
  /** The formula in readable math form (iterative: formulas of any depth print). */
  toString(): string {
    return printFormula(this);
  }
}

export type FormulaNode = Variable | OpNode;

/**
 * Every distinct node under `roots`, each after all of its arguments, arguments left to right.
 * Iterative (an explicit stack), so formulas tens of thousands of operations deep are walked
 * without exhausting the call stack; every traversal of the library goes through it.
 */
export function postOrder(roots: FormulaNode | readonly FormulaNode[]): FormulaNode[] {
  const order: FormulaNode[] = [];
  const seen = new Set<FormulaNode>();
  const stack: { node: FormulaNode; next: number }[] = [];
  for (const root of Array.isArray(roots) ? (roots as readonly FormulaNode[]) : [roots as FormulaNode]) {
    if (seen.has(root)) continue;
    seen.add(root);
    stack.push({ node: root, next: 0 });
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const args = top.node.kind === 'op' ? top.node.args : [];
      if (top.next < args.length) {
        const arg = args[top.next++]!;
        if (!seen.has(arg)) {
          seen.add(arg);
          stack.push({ node: arg, next: 0 });
        }
      } else {
        stack.pop();
        order.push(top.node);
      }
    }
  }
  return order;
}

/** Printed formulas longer than this are refused (a formula that shares sub-formulas can print
 *  exponentially long: x = x.add(x), 60 times). */
export const MAX_PRINTED_LENGTH = 2 ** 24;

function printFormula(root: FormulaNode): string {
  const text = new Map<FormulaNode, string>();
  for (const node of postOrder(root)) {
    const printed =
      node.kind === 'var'
        ? node.name
        : node.def.print(
            node.args.map((a) => text.get(a)!),
            node.params,
            node.args.map((a) => a.dim),
          );
    if (printed.length > MAX_PRINTED_LENGTH) {
      throw new ResourceLimitError(
        `toString: the formula prints to more than ${MAX_PRINTED_LENGTH} characters (it repeats shared sub-formulas)`,
        printed.length,
        MAX_PRINTED_LENGTH,
        'characters',
      );
    }
    text.set(node, printed);
  }
  return text.get(root)!;
}

/**
 * Structural keys: two nodes with the same key compute the same values (used by the engines'
 * compilers to share work). Keys are short (an operation, its argument keys as numbers, its
 * parameters), computed iteratively and held by this object only, so memory stays linear in the
 * formula's size and nothing outlives a compilation.
 */
export class StructuralKeys {
  private readonly ids = new Map<FormulaNode, number>();
  private readonly byKey = new Map<string, number>();

  /** The key of `node` (and of everything under it). */
  of(node: FormulaNode): string {
    const known = this.ids.get(node);
    if (known !== undefined) return String(known);
    // Callers walk in post-order, so the arguments usually have keys already: no second walk then
    // (a walk per node would be quadratic in the formula's depth).
    const fresh = node.kind === 'var' || node.args.every((a) => this.ids.has(a)) ? [node] : postOrder(node);
    for (const n of fresh) {
      if (this.ids.has(n)) continue;
      const key =
        n.kind === 'var'
          ? n.isConstant
            ? `=${Array.from(n.data).join(',')}` // literal numbers: equal values share one register
            : `#${n.id}`
          : `${n.def.name}(${n.args.map((a) => this.ids.get(a)!).join(',')};${JSON.stringify(n.params) ?? ''})`;
      let id = this.byKey.get(key);
      if (id === undefined) {
        id = this.byKey.size;
        this.byKey.set(key, id);
      }
      this.ids.set(n, id);
    }
    return String(this.ids.get(node)!);
  }
}

/** Every distinct variable under `node`, in first-visit order. */
export function variablesOf(node: FormulaNode): Variable[] {
  return postOrder(node).filter((n): n is Variable => n.kind === 'var');
}

/** The categories of the variables a node depends on. */
export function dependsOn(node: FormulaNode, category: Category): boolean {
  return variablesOf(node).some((v) => v.category === category);
}
