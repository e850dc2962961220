// The formula tree: leaves are variables (indexed by i, by j, or parameters), inner nodes apply an
// operation record (see ops.ts). Nodes are immutable; their dimension is checked when they are built.
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
  private cachedKey: string | undefined;
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
  /** A structural key: two nodes with the same key compute the same values (used to share work). */
  get key(): string {
    if (this.cachedKey === undefined) {
      this.cachedKey = `${this.def.name}(${this.args.map(nodeKey).join(',')};${JSON.stringify(this.params) ?? ''})`;
    }
    return this.cachedKey;
  }
  toString(): string {
    return this.def.print(
      this.args.map((a) => a.toString()),
      this.params,
      this.args.map((a) => a.dim),
    );
  }
}

export type FormulaNode = Variable | OpNode;

export function nodeKey(node: FormulaNode): string {
  return node.kind === 'var' ? `#${node.id}` : node.key;
}

/** Every distinct variable under `node`, in first-visit order. */
export function variablesOf(node: FormulaNode): Variable[] {
  const seen = new Set<FormulaNode>();
  const out: Variable[] = [];
  const visit = (n: FormulaNode): void => {
    if (seen.has(n)) return;
    seen.add(n);
    if (n.kind === 'var') out.push(n);
    else n.args.forEach(visit);
  };
  visit(node);
  return out;
}

/** The categories of the variables a node depends on. */
export function dependsOn(node: FormulaNode, category: Category): boolean {
  return variablesOf(node).some((v) => v.category === category);
}
