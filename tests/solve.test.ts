// Kernel solves against a dense float64 solve, and their gradients against finite differences.
import { describe, expect, it } from 'vitest';
import { Pm, Vi, Vj, solveVjp } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { rng, uniformRows } from './helpers/random.js';

/** Dense Gaussian elimination with partial pivoting, for an n x n system with e right-hand sides. */
function denseSolve(A: number[][], B: number[][]): number[][] {
  const n = A.length;
  const M = A.map((row, i) => [...row, ...B[i]!]);
  const e = B[0]!.length;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = c; k < n + e; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  return M.map((row, i) => row.slice(n).map((v) => v / M[i]![i]!));
}

const gaussMatrix = (xs: number[][], s: number): number[][] =>
  xs.map((a) => xs.map((b) => Math.exp(-a.reduce((t, v, k) => t + (v - b[k]!) ** 2, 0) / (2 * s * s))));

describe('kernel solves', () => {
  const random = rng(3);
  const N = 60;
  const xs = uniformRows(random, N, 3, 0, 1);
  const bs = uniformRows(random, N, 2, -1, 1);
  const alpha = 0.1;

  it('(alpha I + K) a = b matches a dense float64 solve, with a convergence report', async () => {
    const x = Vi(Float64Array.from(xs.flat()), 3);
    const y = Vj(Float64Array.from(xs.flat()), 3);
    const K = x
      .sqDist(y)
      .mul(-1 / (2 * 0.3 * 0.3))
      .exp();
    const seen: number[] = [];
    const result = await K.solve(bs, { alpha, tol: 1e-10, onIteration: (_k, r) => seen.push(r) });
    const A = gaussMatrix(xs, 0.3).map((row, i) => row.map((v, j) => v + (i === j ? alpha : 0)));
    const want = denseSolve(A, bs);
    expect(result.converged).toBe(true);
    expect(result.relativeResidual).toBeLessThanOrEqual(1e-10);
    expect(seen).toHaveLength(result.iterations);
    expect(result.solution.shape).toEqual([N, 2]);
    expectClose(result.solution.data, want.flat(), 1e-7, 1e-9);
  });

  it('stops at maxIter and says it did not converge; a Jacobi preconditioner converges in fewer iterations', async () => {
    const x = Vi(Float64Array.from(xs.flat()), 3);
    const y = Vj(Float64Array.from(xs.flat()), 3);
    const K = x.sqDist(y).mul(-10).exp();
    const capped = await K.solve(bs, { alpha: 1e-3, tol: 1e-12, maxIter: 3 });
    expect(capped.iterations).toBe(3);
    expect(capped.converged).toBe(false);
    const plain = await K.solve(bs, { alpha: 1e-3, tol: 1e-8 });
    const jacobi = await K.solve(bs, { alpha: 1e-3, tol: 1e-8, preconditioner: (r) => r.map((v) => v / (1 + 1e-3)) });
    expect(plain.converged && jacobi.converged).toBe(true);
    expectClose(jacobi.solution.data, Array.from(plain.solution.data), 1e-5, 1e-6);
  });

  it('rejects bad input', async () => {
    const x = Vi(Float64Array.from(xs.flat()), 3);
    const y = Vj(Float64Array.from(xs.flat()), 3);
    const K = x.sqDist(y).mul(-1).exp();
    await expect(K.solve(new Float64Array(7))).rejects.toThrow(/solve: b has 7 values; expected \[60, e\]/);
    await expect(K.solve(bs, { alpha: -1 })).rejects.toThrow(/alpha must be >= 0/);
    await expect(K.solve(bs, { foo: 1 } as never)).rejects.toThrow(/unknown option 'foo'/);
    await expect(x.sub(y).solve(bs)).rejects.toThrow(/the kernel must have dimension 1/);
    const z = Vj(new Float64Array(9), 3);
    await expect(x.sqDist(z).solve(bs)).rejects.toThrow(/must be square/);
  });

  it('gradients with respect to b and the kernel bandwidth match finite differences', async () => {
    const n = 12;
    const pts = xs.slice(0, n);
    const rhs = bs.slice(0, n);
    const c = uniformRows(random, n, 2, -1, 1);
    const build = (s: number) => {
      const sigma = Pm(s);
      const K = Vi(Float64Array.from(pts.flat()), 3)
        .sqDist(Vj(Float64Array.from(pts.flat()), 3))
        .mul(sigma)
        .neg()
        .exp();
      return { K, sigma };
    };
    const L = async (s: number, b: number[][]) => {
      const { K } = build(s);
      const r = await K.solve(b, { alpha: 0.5, tol: 1e-13 });
      return Array.from(r.solution.data).reduce((t, v, q) => t + v * c.flat()[q]!, 0);
    };
    const { K, sigma } = build(2);
    const result = await K.solve(rhs, { alpha: 0.5, tol: 1e-13 });
    const grads = await solveVjp(K, result, c, [sigma], { alpha: 0.5, tol: 1e-13 });
    const h = 1e-6;
    const fdSigma = ((await L(2 + h, rhs)) - (await L(2 - h, rhs))) / (2 * h);
    expectClose(grads.wrt[0]!.data, [fdSigma], 1e-6, 1e-9);
    const fdB: number[] = [];
    for (let q = 0; q < n * 2; q++) {
      const shift = (t: number) => rhs.map((row, i) => row.map((v, k) => (i * 2 + k === q ? v + t : v)));
      fdB.push(((await L(2, shift(h))) - (await L(2, shift(-h)))) / (2 * h));
    }
    expectClose(grads.b.data, fdB, 1e-6, 1e-9);
  });
});
