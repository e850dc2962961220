// Gradients of kernel linear solves (LazyTensor.solve) by implicit differentiation. Apart from
// solve.ts because it needs the reductions' vjp (reduction-grad.ts, which builds LazyTensors): solve.ts
// is imported by lazy-tensor.ts and must not import either at run time.
import { Vj } from './lazy-tensor.js';
import type { LazyTensor } from './lazy-tensor.js';
import { reduction, vjp } from './reduction-grad.js';
import type { SolveOptions, SolveResult } from './solve.js';
import type { Tensor } from './tensor.js';

type Data = Float32Array | Float64Array | readonly number[] | readonly (readonly number[])[];

/**
 * Gradients of a = (alpha I + K)^-1 b with respect to b and the kernel's variables, by implicit
 * differentiation: with u = (alpha I + K)^-1 c (K symmetric), d<c, a> = <u, db> - <u, dK a>.
 * Returns the gradient for b first, then one per variable of `wrt`.
 */
export async function solveVjp(
  K: LazyTensor,
  result: SolveResult,
  cotangent: Data,
  wrt: readonly LazyTensor[],
  options: SolveOptions = {},
): Promise<{
  /** The gradient with respect to b, shape [N, e]: u = (alpha I + K)^-1 cotangent. */
  b: Tensor<Float32Array | Float64Array>;
  /** One gradient per variable of `wrt`, in that order, shaped like the variable's data. */
  wrt: Tensor<Float32Array | Float64Array>[];
}> {
  const adjoint = await K.solve(cotangent, options);
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
