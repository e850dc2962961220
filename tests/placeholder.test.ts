// formula(): built once over placeholders, bound to new data; results equal a fresh build.
import { describe, expect, it } from 'vitest';
import { InputError, Pm, Vi, Vj, formula, reduction, vjp, type LazyTensor } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { rng, uniformRows } from './helpers/random.js';

describe('formula placeholders', () => {
  const random = rng(31);
  const build = (x: LazyTensor, y: LazyTensor, s: LazyTensor) => x.sqDist(y).mul(s).neg().exp().mul(y.elem(0));

  it('builds once; each bind gives the results of a fresh build', async () => {
    let calls = 0;
    const F = formula(
      ({ x, y, s }) => {
        calls++;
        return build(x, y, s);
      },
      { x: Vi.placeholder(3), y: Vj.placeholder(3), s: Pm.placeholder(1) },
    );
    for (const [n, m, s] of [
      [10, 7, 0.5],
      [4, 12, 2],
    ] as const) {
      const xs = uniformRows(random, n, 3);
      const ys = uniformRows(random, m, 3);
      const bound = F.bind({ x: xs, y: ys, s });
      const got = await bound.sum(1);
      const fresh = await build(Vi(xs), Vj(ys), Pm(s)).sum(1);
      expect(got.shape).toEqual([n, 1]);
      expectClose(got.data, Array.from(fresh.data), 1e-15);
      // Against plain loops too.
      const want = xs.map((p) =>
        ys.reduce((t, q) => t + Math.exp(-s * p.reduce((u, v, k) => u + (v - q[k]!) ** 2, 0)) * q[0]!, 0),
      );
      expectClose(got.data, want, 1e-13);
    }
    expect(calls).toBe(1);
    expect(F.names).toEqual(['x', 'y', 's']);
  });

  it('a bound formula differentiates like any other', async () => {
    const F = formula(({ x, y }) => x.sqDist(y).neg().exp(), { x: Vi.placeholder(2), y: Vj.placeholder(2) });
    const xs = uniformRows(random, 5, 2);
    const ys = uniformRows(random, 6, 2);
    const { formula: bound, variables } = F.bindVariables({ x: xs, y: ys });
    const ct = new Array(5).fill(1);
    const [gb] = await vjp(reduction(bound, 'sum', 1), { wrt: [variables.x], cotangent: ct });
    const fx = Vi(xs);
    const [gf] = await vjp(reduction(fx.sqDist(Vj(ys)).neg().exp(), 'sum', 1), { wrt: [fx], cotangent: ct });
    expectClose(gb!.data, Array.from(gf!.data), 1e-15);
  });

  it('unbound, missing, unknown or misshaped data are InputErrors', async () => {
    const x = Vi.placeholder(3, { name: 'x' });
    const F = formula(({ x, y }) => x.sqDist(y), { x, y: Vj.placeholder(3) });
    await expect(
      F.template
        .mul(Vi(uniformRows(random, 2, 1)))
        .mul(Vj(uniformRows(random, 2, 1)))
        .sum(1),
    ).rejects.toThrow(/x is a placeholder/);
    expect(() => F.bind({ x: uniformRows(random, 2, 3) } as never)).toThrow(/no data for placeholder 'y'/);
    expect(() => F.bind({ x: [[1, 2, 3]], y: [[1, 2, 3]], z: [[1]] } as never)).toThrow(/unknown placeholder 'z'/);
    expect(() => F.bind({ x: [[1, 2]], y: [[1, 2, 3]] })).toThrow(/dim is 3 but the rows have 2/);
    expect(() => F.bind({ x: 1, y: [[1, 2, 3]] })).toThrow(/got a number/);
    expect(() => formula(({ x }) => x, { x: Vi([[1]]) })).toThrow(/must be made by Vi.placeholder/);
    expect(() => formula(() => Vi([[1]]).add(1), { x: Vi.placeholder(1) })).toThrow(/'x' is not used/);
    expect(() => formula((() => 1) as never, { x: Vi.placeholder(1) })).toThrow(/must return a LazyTensor/);
    expect(() => Vi.placeholder(0)).toThrow(InputError);
  });
});
