// LazyTensor.uses(v): the public query of whether a formula depends on a variable (GeomLoss checks a
// user's cost with it; it used to read the core's internal variablesOf).
import { describe, expect, it } from 'vitest';
import { formula, InputError, LazyTensor, Pm, Vi, Vj } from '../src/index.js';

describe('LazyTensor.uses', () => {
  const x = Vi(new Float64Array(6), 3);
  const y = Vj(new Float64Array(9), 3);
  const s = Pm([2]);

  it('says which variables occur in a formula', () => {
    const F = x.sqDist(y).mul(s).exp();
    expect([F.uses(x), F.uses(y), F.uses(s)]).toEqual([true, true, true]);
    const G = x.norm2().add(1);
    expect([G.uses(x), G.uses(y), G.uses(s)]).toEqual([true, false, false]);
    // A variable is itself; an occurrence that cancels out still counts (the tree, not the value).
    expect([x.uses(x), x.uses(y)]).toEqual([true, false]);
    expect(y.sub(y).uses(y)).toBe(true);
    // The same object, not equal data: another Vi of the same array is another variable.
    expect(G.uses(Vi(new Float64Array(6), 3))).toBe(false);
    // Derived formulas: the gradient of |x - y|^2 in x uses both.
    const dF = x.sqDist(y).grad(x, 1);
    expect([dF.uses(x), dF.uses(y)]).toEqual([true, true]);
  });

  it('answers for placeholders of formula(), and for the formula bound to data', () => {
    const p = Vi.placeholder(2);
    const q = Vj.placeholder(2);
    const other = Vj.placeholder(2);
    const f = formula(({ p, q }) => p.sqDist(q), { p, q });
    expect([f.template.uses(p), f.template.uses(q), f.template.uses(other)]).toEqual([true, true, false]);
    const bound = f.bind({ p: new Float64Array(4), q: new Float64Array(6) });
    // Bound: the placeholders are replaced by new variables.
    expect(bound.uses(p)).toBe(false);
  });

  it('names a bad argument', () => {
    for (const bad of [x.add(1), null, 3, {}, x.mul(0).add(2).exp()]) {
      expect(() => x.uses(bad as LazyTensor)).toThrow(InputError);
      expect(() => x.uses(bad as LazyTensor)).toThrow(/uses: v must be a variable made by Vi, Vj or Pm/);
    }
  });
});
