// What the engines' compile caches share: a structural key of a reduction plan, equal for two plans
// exactly when they compile to the same program (whatever their data), and a bounded LRU map.
//
// A formula built once and called with new data (formula placeholders, batch items, a loop that
// rebuilds the same formula over new arrays) gives new Variable objects each call: keyed by identity,
// every call would compile again. The key names each variable by its position in plan.variables, its
// role and its dimension, never by its identity or data, so those calls share one compiled program
// (the WebAssembly tile program, the WebGPU pipeline); the data is bound when the program runs.
//
// Literal constants are the one leaf whose value the compilers look at: both share one register or
// value between constants of equal values (StructuralKeys in formula.ts). The key therefore records
// which constants are equal to which (a class number per constant, in first-visit order), not their
// values: `x * 2 + 3` and `x * 5 + 7` share a program, `x * 2 + 2` (one shared register) does not.
import { postOrder, type FormulaNode, type Variable } from './formula.js';
import type { ReductionPlan } from './reduction.js';

/** The text StructuralKeys gives a literal constant: constants with equal text share a register. */
const constantText = (v: Variable): string => Array.from(v.data).join(',');

/**
 * A key equal for two plans exactly when the engines compile them to the same program: the reduction
 * (kind, K, output width, accumulation, dtype), each variable's role and dimension in plan order, the
 * formula and weight DAGs in post-order (arguments by position), and the equality pattern of the
 * literal constants. Data, row counts and block-sparse ranges are not part of it (programs read them
 * at run time). Linear in the formula's size, iterative (formulas of any depth).
 */
export function planStructureKey(plan: ReductionPlan): string {
  const names = new Map<Variable, string>();
  const constantClass = new Map<string, number>();
  plan.variables.forEach(({ variable: v, role }, q) => {
    let name = `${role[0]}${v.dim}@${q}`;
    if (v.isConstant) {
      const text = constantText(v);
      let c = constantClass.get(text);
      if (c === undefined) constantClass.set(text, (c = constantClass.size));
      name += `=c${c}`;
    }
    names.set(v, name);
  });
  const dag = (root: FormulaNode): string => {
    const order = postOrder(root);
    const position = new Map(order.map((n, q) => [n, q] as const));
    return order
      .map((node) =>
        node.kind === 'var'
          ? // Every leaf is in plan.variables (prepare and batchItemPlan list them); `?` keeps a
            // stray one from colliding with a listed one.
            (names.get(node) ?? `?${node.dim}#${node.id}`)
          : `${node.def.name}(${node.args.map((a) => position.get(a)!).join(',')};${JSON.stringify(node.params) ?? ''})`,
      )
      .join(' ');
  };
  const vars = plan.variables.map((v) => names.get(v.variable)!).join(',');
  return (
    `${plan.kind}|K${plan.k}|out${plan.outDim}|acc${plan.accumulate ?? ''}|${plan.dtype}|${vars}` +
    `|F=${dag(plan.formula)}|G=${plan.weight === null ? '' : dag(plan.weight)}`
  );
}

/** Counters of a compile cache. */
export interface CompileCacheStats {
  /** Programs compiled (cache misses). */
  readonly compiles: number;
  /** Calls answered from the cache. */
  readonly hits: number;
  /** Programs held now (at most the capacity). */
  readonly size: number;
}

/** A map of at most `capacity` entries that drops the least recently used one; counts hits and misses. */
export class LruCache<V> {
  private readonly entries = new Map<string, V>();
  private compiles = 0;
  private hits = 0;

  constructor(private capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`LruCache: capacity must be a positive integer, got ${capacity}`);
    }
  }

  /** The value under `key`, made by `make` (and counted as a compile) when it is not held. */
  getOrMake(key: string, make: () => V): V {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.hits++;
      // Refresh its place: Maps iterate in insertion order, the first entry is the least recent.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const value = make(); // a make that throws caches nothing
    this.compiles++;
    this.entries.set(key, value);
    this.trim();
    return value;
  }

  /** Changes the capacity (dropping the least recently used entries beyond it). */
  resize(capacity: number): void {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`LruCache: capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.trim();
  }

  /** Drops every entry and zeroes the counters. */
  clear(): void {
    this.entries.clear();
    this.compiles = 0;
    this.hits = 0;
  }

  get stats(): CompileCacheStats {
    return { compiles: this.compiles, hits: this.hits, size: this.entries.size };
  }

  private trim(): void {
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}
