// The Nyström preconditioner of K.solve: the same solution as plain conjugate gradients, in far
// fewer iterations (counted, not timed), and its bad options are named errors.
import { describe, expect, it } from 'vitest';
import { InputError, Pm, Vi, Vj, solveVjp } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { rng, uniformRows } from './helpers/random.js';

describe("solve with preconditioner: 'nystrom'", () => {
  const random = rng(8);
  const N = 500;
  const pts = Float64Array.from(uniformRows(random, N, 2, 0, 1).flat());
  const rhs = uniformRows(random, N, 2);
  const kernel = (s = 20) => Vi(pts, 2).sqDist(Vj(pts, 2)).mul(Pm(s)).neg().exp();

  it('matches the unpreconditioned solution in a fraction of the iterations', async () => {
    const K = kernel();
    const plain = await K.solve(rhs, { alpha: 0.1, tol: 1e-10 });
    const nys = await K.solve(rhs, { alpha: 0.1, tol: 1e-10, preconditioner: 'nystrom', rank: 100 });
    expect(plain.converged && nys.converged).toBe(true);
    expect(nys.iterations, `nystrom ${nys.iterations} vs plain ${plain.iterations}`).toBeLessThan(plain.iterations / 5);
    expectClose(nys.solution.data, Array.from(plain.solution.data), 1e-7, 1e-8);
    // Residual check against the operator itself: (alpha I + K) a = b.
    const Ka = await K.mul(Vj(nys.solution)).sum(1);
    expectClose(Ka.add(nys.solution.mul(0.1)).data, rhs.flat(), 1e-8, 1e-8);
    // A larger rank captures more of the spectrum: no more iterations.
    const wide = await K.solve(rhs, { alpha: 0.1, tol: 1e-10, preconditioner: 'nystrom', rank: 200 });
    expect(wide.iterations).toBeLessThanOrEqual(nys.iterations);
  });

  it('the same seed gives the same iterations; solveVjp reuses the built preconditioner', async () => {
    const sigma = Pm(20);
    const K = Vi(pts, 2).sqDist(Vj(pts, 2)).mul(sigma).neg().exp();
    const a = await K.solve(rhs, { alpha: 0.1, tol: 1e-10, preconditioner: 'nystrom', rank: 60, seed: 3 });
    const b = await K.solve(rhs, { alpha: 0.1, tol: 1e-10, preconditioner: 'nystrom', rank: 60, seed: 3 });
    expect(a.iterations).toBe(b.iterations);
    expect(typeof a.options.preconditioner).toBe('function');
    const c = uniformRows(random, N, 2).flat();
    const plain = await K.solve(rhs, { alpha: 0.1, tol: 1e-10 });
    const g1 = await solveVjp(K, a, c, [sigma]);
    const g0 = await solveVjp(K, plain, c, [sigma]);
    expectClose(g1.wrt[0]!.data, Array.from(g0.wrt[0]!.data), 1e-6);
    expectClose(g1.b.data, Array.from(g0.b.data), 1e-6, 1e-8);
  });

  it('bad options are InputErrors', async () => {
    const K = kernel();
    await expect(K.solve(rhs, { preconditioner: 'nystrom' })).rejects.toThrow(/needs alpha > 0/);
    await expect(K.solve(rhs, { alpha: 0.1, preconditioner: 'nystrom', rank: 0 })).rejects.toThrow(
      /rank must be a positive integer/,
    );
    await expect(K.solve(rhs, { alpha: 0.1, rank: 10 })).rejects.toThrow(/options of preconditioner: 'nystrom'/);
    await expect(K.solve(rhs, { alpha: 0.1, preconditioner: 'jacobi' as never })).rejects.toThrow(InputError);
    await expect(K.solve(rhs, { alpha: 0.1, preconditioner: 'nystrom', seed: 0.5 })).rejects.toThrow(
      /seed must be an integer/,
    );
  });
});
