// Gradients of kernel linear solves (LazyTensor.solve) by implicit differentiation. Apart from
// solve.ts because it needs the reductions' vjp (reduction-grad.ts, which builds LazyTensors): solve.ts
// is imported by lazy-tensor.ts and must not import either at run time.
import { InputError } from './errors.js';
import { Vj, type LazyTensor } from './lazy-tensor.js';
import { reduction, vjp } from './reduction-grad.js';
import { describeOption, type SolveData, type SolveOptions, type SolveResult, type SolvedWith } from './solve.js';
import { Tensor } from './tensor.js';

/**
 * Gradients of a = (alpha I + K)^-1 b with respect to b and the kernel's variables, by implicit
 * differentiation: with u = (alpha I + K)^-1 c (K symmetric), d<c, a> = <u, db> - <u, dK a>.
 * Returns the gradient for b first, then one per variable of `wrt`.
 *
 * The adjoint system is solved with the options of the solve that produced `result`
 * (`result.options`: alpha, dtype, engine, ranges, preconditioner, tol, maxIter). `options` may
 * tighten or loosen `tol` / `maxIter`, change the engine, add a signal or an `onIteration`; giving
 * an `alpha`, `dtype` or `ranges` different from the solve's is an InputError, since the gradient
 * would then be that of another system.
 * @throws InputError when `result` is not a SolveResult of this kernel's size, or an option
 *   contradicts the solve's.
 */
export async function solveVjp(
  K: LazyTensor,
  result: SolveResult,
  cotangent: SolveData,
  wrt: readonly LazyTensor[],
  options: SolveOptions = {},
): Promise<{
  /** The gradient with respect to b, shape [N, e]: u = (alpha I + K)^-1 cotangent. */
  b: Tensor<Float32Array | Float64Array>;
  /** One gradient per variable of `wrt`, in that order, shaped like the variable's data. */
  wrt: Tensor<Float32Array | Float64Array>[];
}> {
  const solved = checkSolved(K, result);
  for (const key of ['alpha', 'dtype', 'ranges'] as const) {
    if (options[key] !== undefined && options[key] !== solved[key]) {
      throw new InputError(
        `solveVjp: options.${key} (${describeOption(options[key])}) differs from the ${key} the system was solved with (${describeOption(solved[key])}); the gradient is that of the solved system: drop options.${key}`,
      );
    }
  }
  const adjoint = await K.solve(cotangent, {
    alpha: solved.alpha,
    tol: solved.tol,
    maxIter: solved.maxIter,
    dtype: solved.dtype,
    ...(solved.engine !== undefined ? { engine: solved.engine } : {}),
    ...(solved.ranges !== undefined ? { ranges: solved.ranges } : {}),
    ...(solved.preconditioner !== undefined ? { preconditioner: solved.preconditioner } : {}),
    ...options,
  });
  const u = adjoint.solution;
  const columns = u.shape[1]!;
  const a = result.solution;
  // <u, K a> = sum_i sum_j u_i . K_ij a_j: the vjp of the sum reduction of K a_j with cotangent -u.
  const aj = Vj(a.data, columns);
  const neg = Float64Array.from(u.data, (v) => -v);
  const grads =
    wrt.length === 0
      ? []
      : await vjp(
          reduction(K.mul(aj), 'sum', 1, {
            options: {
              dtype: u.dtype === 'float32' ? 'float32' : 'float64',
              ...(options.signal ? { signal: options.signal } : {}),
            },
          }),
          { wrt, cotangent: neg },
        );
  return { b: u, wrt: grads };
}

/** The options of a solve result, after checking that it is one and fits the kernel. */
function checkSolved(K: LazyTensor, result: SolveResult): SolvedWith {
  if (typeof result !== 'object' || result === null || !(result.solution instanceof Tensor)) {
    throw new InputError('solveVjp: result must be the SolveResult returned by K.solve(b, options)');
  }
  const solved = (result as Partial<SolveResult>).options;
  if (typeof solved !== 'object' || solved === null || typeof solved.alpha !== 'number') {
    throw new InputError(
      'solveVjp: result has no options (alpha, tol, ...): pass the SolveResult returned by K.solve unchanged',
    );
  }
  if (result.solution.shape[0] !== K.rowsI) {
    throw new InputError(
      `solveVjp: result.solution has ${result.solution.shape[0]} rows but the kernel has ${String(K.rowsI)}`,
    );
  }
  return solved;
}
