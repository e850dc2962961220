// Formulas built once and called with new data (KeOps's placeholder variables Vi(0, D)): the builder
// runs once, on placeholders; each bind swaps the placeholders for variables of the given data.
import { InputError } from './errors.js';
import { variablesOf, type FormulaNode, type Variable } from './formula.js';
import { makeParameter, makeVariable, placeholderVariables, type ArrayInput } from './input.js';
import { LazyTensor } from './lazy-tensor.js';
import { substitute } from './substitute.js';

/** A formula built once over placeholders; `bind` gives it data. Made by {@link formula}. */
export class Formula<K extends string> {
  /** @internal */
  constructor(
    /** The formula over the placeholders (reduce it only after `bind`). */
    readonly template: LazyTensor,
    private readonly placeholders: ReadonlyMap<K, LazyTensor>,
  ) {}

  private get slots(): Map<K, Variable> {
    return new Map([...this.placeholders].map(([name, p]) => [name, p.node as Variable]));
  }

  /** The placeholder names, as given to {@link formula}. */
  get names(): K[] {
    return [...this.slots.keys()];
  }

  /**
   * The formula with data in place of each placeholder: a LazyTensor to reduce as usual. Each entry
   * takes what Vi / Vj (or Pm, for a Pm placeholder) take, with the placeholder's dimension.
   * @throws InputError for a missing or unknown name, or data of another dimension.
   */
  bind(data: { readonly [name in K]: ArrayInput | number }): LazyTensor {
    return this.bindVariables(data).formula;
  }

  /**
   * As {@link Formula.bind}, with the variables made for the data, e.g. to pass to `vjp` as `wrt`.
   * @throws InputError as `bind`.
   */
  bindVariables(data: { readonly [name in K]: ArrayInput | number }): {
    /** The bound formula. */
    formula: LazyTensor;
    /** The variable of each placeholder name. */
    variables: { [name in K]: LazyTensor };
  } {
    if (typeof data !== 'object' || data === null) throw new InputError('bind: data must be an object { name: data }');
    for (const key of Object.keys(data)) {
      if (!this.slots.has(key as K)) {
        throw new InputError(`bind: unknown placeholder '${key}' (expected ${this.names.join(', ')})`);
      }
    }
    const replacements = new Map<Variable, Variable>();
    const variables = {} as { [name in K]: LazyTensor };
    let rowsI: number | null = this.template.rowsI;
    let rowsJ: number | null = this.template.rowsJ;
    for (const [name, slot] of this.slots) {
      if (!(name in data)) throw new InputError(`bind: no data for placeholder '${name}'`);
      const value = data[name];
      const where = `bind: ${name}`;
      let v: Variable;
      if (slot.category === 'p') {
        v = makeParameter(value as ArrayInput | number, { name: slot.name });
      } else {
        if (typeof value === 'number')
          throw new InputError(`${where}: expected an [N, ${slot.dim}] array, got a number`);
        v = makeVariable(where, slot.category, value, slot.dim, { name: slot.name });
      }
      if (v.dim !== slot.dim) {
        throw new InputError(`${where}: the placeholder has dimension ${slot.dim}, the data ${v.dim}`);
      }
      if (v.batch.length > 0) throw new InputError(`${where}: batched data cannot be bound (yet)`);
      if (slot.category === 'i') rowsI = merge(where, 'i', rowsI, v.rows);
      if (slot.category === 'j') rowsJ = merge(where, 'j', rowsJ, v.rows);
      replacements.set(slot, v);
      variables[name] = new LazyTensor(
        v,
        v.category === 'i' ? v.rows : null,
        v.category === 'j' ? v.rows : null,
        v.batch,
      );
    }
    return {
      formula: new LazyTensor(substitute(this.template.node, replacements), rowsI, rowsJ, this.template.batch),
      variables,
    };
  }
}

function merge(where: string, category: 'i' | 'j', a: number | null, b: number): number {
  if (a !== null && a !== b) throw new InputError(`${where}: ${b} rows, but the other ${category}-variables have ${a}`);
  return b;
}

/**
 * Builds a formula once over placeholder variables and returns it ready to be bound to data:
 * `build` runs once, now. Derivative formulas (`grad`, `diff`) may be part of it.
 * @example
 * ```ts
 * const F = formula(({ x, y }) => x.sqDist(y).neg().exp(), { x: Vi.placeholder(3), y: Vj.placeholder(3) });
 * const a = await F.bind({ x: pointsA, y: pointsB }).sum(1);
 * const b = await F.bind({ x: pointsC, y: pointsB }).sum(1); // the same formula, new data
 * ```
 * @throws InputError when a placeholder is not made by Vi/Vj/Pm.placeholder, or build does not
 *   return a LazyTensor.
 */
export function formula<K extends string>(
  build: (placeholders: { readonly [name in K]: LazyTensor }) => LazyTensor,
  placeholders: { readonly [name in K]: LazyTensor },
): Formula<K> {
  if (typeof build !== 'function') throw new InputError('formula: build must be a function');
  if (typeof placeholders !== 'object' || placeholders === null) {
    throw new InputError('formula: placeholders must be an object { name: Vi.placeholder(D), ... }');
  }
  const slots = new Map<K, LazyTensor>();
  for (const [name, p] of Object.entries(placeholders) as [K, LazyTensor][]) {
    if (!(p instanceof LazyTensor) || p.node.kind !== 'var' || !placeholderVariables.has(p.node)) {
      throw new InputError(
        `formula: placeholder '${name}' must be made by Vi.placeholder, Vj.placeholder or Pm.placeholder`,
      );
    }
    slots.set(name, p);
  }
  const template = build(placeholders);
  if (!(template instanceof LazyTensor)) {
    throw new InputError('formula: build must return a LazyTensor (the formula; reduce the bound formula)');
  }
  const used = new Set<FormulaNode>(variablesOf(template.node));
  for (const [name, slot] of slots) {
    if (!used.has(slot.node)) throw new InputError(`formula: placeholder '${name}' is not used by the formula`);
  }
  return new Formula(template, slots);
}
