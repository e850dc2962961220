// The silent traps of issue 16: each one now gives a named error (or does the right thing), and the
// numbers that still come out are checked against plain float64 references.
import { describe, expect, it } from 'vitest';
import { InputError, Pm, ShapeError, Vi, Vj, reduction, solveVjp, vjp } from '../src/index.js';
import { SamplesLoss, GeomLossError } from '../src/geomloss/index.js';
import { expectClose } from './helpers/expect.js';
import { rng, uniformRows } from './helpers/random.js';

describe('solveVjp uses the options of the solve', () => {
  const random = rng(11);
  const n = 10;
  const pts = uniformRows(random, n, 2);
  const rhs = uniformRows(random, n, 1);
  const c = uniformRows(random, n, 1).flat();
  const alpha = 0.3;
  const build = (s: number) => {
    const sigma = Pm(s);
    const K = Vi(Float64Array.from(pts.flat()), 2)
      .sqDist(Vj(Float64Array.from(pts.flat()), 2))
      .mul(sigma)
      .neg()
      .exp();
    return { K, sigma };
  };
  /** L(s) = <c, (alpha I + K_s)^-1 rhs>, by a dense float64 solve. */
  const denseL = (s: number): number => {
    const A = pts.map((p, i) =>
      pts.map((q, j) => Math.exp(-s * ((p[0]! - q[0]!) ** 2 + (p[1]! - q[1]!) ** 2)) + (i === j ? alpha : 0)),
    );
    const b = rhs.map((r) => r[0]!);
    // Gaussian elimination (A is symmetric positive definite: no pivoting needed).
    for (let k = 0; k < n; k++) {
      for (let r = k + 1; r < n; r++) {
        const f = A[r]![k]! / A[k]![k]!;
        for (let q = k; q < n; q++) A[r]![q]! -= f * A[k]![q]!;
        b[r]! -= f * b[k]!;
      }
    }
    const a = new Array<number>(n).fill(0);
    for (let k = n - 1; k >= 0; k--) {
      let t = b[k]!;
      for (let q = k + 1; q < n; q++) t -= A[k]![q]! * a[q]!;
      a[k] = t / A[k]![k]!;
    }
    return a.reduce((t, v, k) => t + v * c[k]!, 0);
  };

  it('without repeating alpha, the gradient is that of the solved system (finite differences)', async () => {
    const { K, sigma } = build(1.5);
    const result = await K.solve(rhs, { alpha, tol: 1e-13 });
    expect(result.options.alpha).toBe(alpha);
    expect(result.options.tol).toBe(1e-13);
    const grads = await solveVjp(K, result, c, [sigma]);
    const h = 1e-5;
    const fd = (denseL(1.5 + h) - denseL(1.5 - h)) / (2 * h);
    expectClose(grads.wrt[0]!.data, [fd], 1e-6, 1e-10);
  });

  it('an alpha that contradicts the solve is an InputError; the same alpha is accepted', async () => {
    const { K, sigma } = build(1.5);
    const result = await K.solve(rhs, { alpha, tol: 1e-12 });
    await expect(solveVjp(K, result, c, [sigma], { alpha: 0 })).rejects.toThrow(InputError);
    await expect(solveVjp(K, result, c, [sigma], { alpha: 0 })).rejects.toThrow(/options.alpha \(0\) differs/);
    await expect(solveVjp(K, result, c, [sigma], { dtype: 'float32' })).rejects.toThrow(/options.dtype/);
    const same = await solveVjp(K, result, c, [sigma], { alpha, tol: 1e-12 });
    const plain = await solveVjp(K, result, c, [sigma]);
    expectClose(same.wrt[0]!.data, Array.from(plain.wrt[0]!.data), 1e-9, 1e-12);
  });

  it('a result that is not a SolveResult of this kernel is an InputError', async () => {
    const { K, sigma } = build(1.5);
    const result = await K.solve(rhs, { alpha });
    const { options: _dropped, ...stripped } = result;
    await expect(solveVjp(K, stripped as never, c, [sigma])).rejects.toThrow(/result has no options/);
    await expect(solveVjp(K, null as never, c, [sigma])).rejects.toThrow(/SolveResult/);
    const small = Vi(new Float64Array(4), 2).sqDist(Vj(new Float64Array(4), 2));
    await expect(solveVjp(small, result, c, [])).rejects.toThrow(/has 10 rows but the kernel has 2/);
  });
});

describe('flat data without dim does not broadcast against vectors', () => {
  const flat = Float64Array.from([0, 0, 1, 0, 0, 1]);
  it('Vi(x).sub(Vj(y, 2)) is a ShapeError that says to pass dim', () => {
    const y = Vj(Float64Array.from([1, 1, 2, 2]), 2);
    expect(() => Vi(flat).sub(y)).toThrow(ShapeError);
    expect(() => Vi(flat).sub(y)).toThrow(/without dim.*Vi\(data, 2\) for \[3, 2\] data/);
    expect(() => y.mul(Vi([1, 2, 3, 4]))).toThrow(/Vi\(data, 2\)/);
    expect(() => Vi(flat).add(Pm([1, 2]))).toThrow(ShapeError);
  });
  it('explicit dim 1, dimension-1 partners and nested rows behave as before', async () => {
    const y = Vj(Float64Array.from([1, 1, 2, 2]), 2);
    const w = Vi(Float64Array.from([1, 2, 3]), 1);
    const scaled = await w.mul(y).sum(1);
    // row i: w_i * (y_0 + y_1) = w_i * [3, 3]
    expectClose(scaled.data, [3, 3, 6, 6, 9, 9], 1e-15);
    const scalars = await Vi(Float64Array.from([1, 2, 3]))
      .sub(Vj([0.5, 1]))
      .abs()
      .sum(1);
    expectClose(scalars.data, [0.5, 2.5, 4.5], 1e-15);
    expect(() => Vi([[1], [2], [3]]).mul(y)).not.toThrow();
    // sqDist of two implicit-dim-1 variables is 1-D work, with no broadcast involved.
    const d = await Vi(flat).sqDist(Vj(flat)).sum(1);
    expect(d.shape).toEqual([6, 1]);
  });
});

describe('reductions need an axis', () => {
  const x = Vi([[0], [1], [2]]);
  const y = Vj([[1], [3]]);
  const F = x.sub(y).abs();
  it('sum() without an axis is an InputError; sum(-1) is the component sum (a formula)', async () => {
    expect(() => (F.sum as () => unknown)()).toThrow(InputError);
    expect(() => (F.sum as () => unknown)()).toThrow(/pass an axis/);
    const v = Vi([
      [1, 2],
      [3, 4],
    ]);
    const s = v.sum(-1);
    expect(s.dim).toBe(1);
    const out = await s.mul(y).sum(1);
    expectClose(out.data, [3 * 4, 7 * 4], 1e-15);
    expect(() => (v.sum as (a: number, o: object) => unknown)(-1, {})).toThrow(/takes no options/);
  });
  it('every reduction method rejects a missing axis with an InputError', async () => {
    const calls: [string, () => Promise<unknown>][] = [
      ['sum', async () => F.sum(undefined as unknown as 0)],
      ['logSumExp', () => F.logSumExp(undefined as never)],
      ['sumSoftMaxWeight', () => F.sumSoftMaxWeight(undefined as never, y)],
      ['min', () => F.min(undefined as never)],
      ['max', () => F.max(undefined as never)],
      ['argMin', () => F.argMin(undefined as never)],
      ['argMax', () => F.argMax(undefined as never)],
      ['minArgMin', () => F.minArgMin(undefined as never)],
      ['maxArgMax', () => F.maxArgMax(undefined as never)],
      ['kMin', () => F.kMin(1, undefined as never)],
      ['argKMin', () => F.argKMin(1, undefined as never)],
      ['kMinArgKMin', () => F.kMinArgKMin(1, undefined as never)],
    ];
    for (const [name, call] of calls) {
      let error: unknown = null;
      try {
        await call();
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(InputError);
      expect(String(error), name).toMatch(/axis/);
    }
  });
});

describe('vjp with respect to an unused variable', () => {
  const x = Vi([[0.1], [0.5], [0.9]]);
  const y = Vj([[0.2], [0.7]]);
  const unused = Vj([[1], [2]]);
  const p = Pm(2);
  const F = x.sqDist(y).mul(-1).exp();
  it('throws an InputError naming the variable', async () => {
    const ct = [1, 1, 1];
    await expect(vjp(reduction(F, 'sum', 1), { wrt: [x, unused], cotangent: ct })).rejects.toThrow(InputError);
    await expect(vjp(reduction(F, 'sum', 1), { wrt: [x, p], cotangent: ct })).rejects.toThrow(
      new RegExp(`wrt\\[1\\] \\(${p.toString()}\\) is not used`),
    );
  });
  it('allowUnused: true gives zeros, and the used variables their gradient', async () => {
    const ct = [1, 2, 3];
    const [dx, dUnused] = await vjp(reduction(F, 'sum', 1), { wrt: [x, unused], cotangent: ct, allowUnused: true });
    expect(Array.from(dUnused!.data)).toEqual([0, 0]);
    const xs = [0.1, 0.5, 0.9];
    const ys = [0.2, 0.7];
    const want = xs.map((a, i) => ys.reduce((t, b) => t + ct[i]! * -2 * (a - b) * Math.exp(-((a - b) ** 2)), 0));
    expectClose(dx!.data, want, 1e-12);
    await expect(vjp(reduction(F, 'sum', 1), { wrt: [x], cotangent: ct, allowUnused: 1 as never })).rejects.toThrow(
      /allowUnused must be a boolean/,
    );
  });
  it('a variable used only by the weight counts as used', async () => {
    const G = Vj([[1], [2]]);
    const [dG] = await vjp(reduction(F, 'sumSoftMaxWeight', 1, { weight: G }), { wrt: [G], cotangent: [1, 1, 1] });
    expect(dG!.shape).toEqual([2, 1]);
  });
});

describe('balanced OT with unequal masses', () => {
  const x = [
    [0, 0],
    [1, 0],
    [0, 1],
  ];
  const y = [
    [0.5, 0.5],
    [1, 1],
  ];
  it('is a GeomLossError unless reach is set', async () => {
    const loss = new SamplesLoss({ loss: 'sinkhorn', blur: 0.5 });
    const a = [0.3, 0.3, 0.3];
    const b = [0.5, 0.5];
    await expect(loss.value(x, y, { a, b })).rejects.toThrow(GeomLossError);
    await expect(loss.value(x, y, { a, b })).rejects.toThrow(/equal total masses.*set reach/);
    const unbalanced = new SamplesLoss({ loss: 'sinkhorn', blur: 0.5, reach: 1 });
    expect(Number.isFinite(await unbalanced.value(x, y, { a, b }))).toBe(true);
    // Kernel norms compare measures of any masses.
    expect(Number.isFinite(await new SamplesLoss({ loss: 'energy' }).value(x, y, { a, b }))).toBe(true);
  });
  it('accepts masses equal up to rounding (1e-6 relative in float64, 1e-4 in float32)', async () => {
    const loss = new SamplesLoss({ loss: 'sinkhorn', blur: 0.5 });
    const a = [0.2, 0.3, 0.5 + 5e-7];
    const b = [0.5, 0.5];
    expect(Number.isFinite(await loss.value(x, y, { a, b }))).toBe(true);
    await expect(loss.value(x, y, { a: [0.2, 0.3, 0.5 + 5e-6], b })).rejects.toThrow(/relative gap/);
    const f32 = new SamplesLoss({ loss: 'sinkhorn', blur: 0.5, dtype: 'float32' });
    expect(Number.isFinite(await f32.value(x, y, { a: [0.2, 0.3, 0.5 + 5e-5], b }))).toBe(true);
    await expect(f32.value(x, y, { a: [0.2, 0.3, 0.5 + 5e-4], b })).rejects.toThrow(GeomLossError);
  });
});
