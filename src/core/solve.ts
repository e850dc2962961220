// Kernel linear systems (alpha I + K) a = b by conjugate gradients: each iteration is one sum
// reduction K p on an engine (all right-hand sides at once), the rest is O(N) float64 work in JS.
import type { AbortSignalLike } from './scheduling.js';
import { InputError } from './errors.js';
// Types only: lazy-tensor.ts imports this module (LazyTensor.solve), so nothing here may import it at run
// time (scripts/check-cycles.mjs); the LazyTensors each iteration needs are made by the caller's kit.
import type { LazyTensor, ReductionOptions } from './lazy-tensor.js';
import type { FormulaNode } from './formula.js';
import { Tensor, type EngineName } from './tensor.js';
import { checkpoint, checkSignal, throwIfAborted } from './scheduling.js';
import { nystromPreconditioner } from './nystrom.js';

/** A right-hand side (or cotangent) of a kernel solve, shape [N, e]: flat values (e = length / N),
 *  rows, a Tensor [N, e] (a previous result), or a variable `Vi(b, e)` / `Vj(b, e)`, whose data is used. */
export type SolveData =
  Float32Array | Float64Array | readonly number[] | readonly (readonly number[])[] | Tensor | LazyTensor;
type Data = SolveData;

/** Options of {@link LazyTensor.solve}: the reduction options (engine, dtype, ranges, signal; not
 *  onProgress, since `onIteration` reports the iterations), plus the solver's own. */
export interface SolveOptions extends Omit<ReductionOptions, 'onProgress'> {
  /** Cancels the solve (inherited from ReductionOptions): it rejects with `signal.reason` right
   *  away when the signal is already aborted, else within one iteration (one reduction's chunk). */
  signal?: AbortSignalLike;
  /** The ridge alpha in (alpha I + K) (default 0). */
  alpha?: number;
  /** Stop when every column's residual norm is below tol times its right-hand side's (default 1e-6). */
  tol?: number;
  /** Iteration cap (default 1000). */
  maxIter?: number;
  /**
   * An approximate inverse of (alpha I + K), applied to residuals of shape [N, e] (row-major): a
   * function, or `'nystrom'`: a rank-`rank` Nyström approximation K ~ K_{:,L} K_LL^-1 K_{L,:} on
   * `rank` landmark points, inverted exactly with the Woodbury identity. Building it costs one
   * reduction and O(N rank^2) work, each iteration O(N rank) more; conjugate gradients then need
   * far fewer iterations when K has a fast-decaying spectrum (smooth kernels, small alpha).
   * 'nystrom' needs alpha > 0 (an InputError otherwise).
   */
  preconditioner?: ((residual: Float64Array, columns: number) => Float64Array) | 'nystrom';
  /** The rank (landmark count) of the 'nystrom' preconditioner (default 100, at most N). */
  rank?: number;
  /** The seed of the landmark choice of the 'nystrom' preconditioner (default 1): same seed, same landmarks. */
  seed?: number;
  /** Called after every iteration with the worst relative residual. */
  onIteration?: (iteration: number, relativeResidual: number) => void;
}

/** The result of `LazyTensor.solve`: the solution and how conjugate gradients ended. */
export interface SolveResult {
  /** a, shape [N, e], in the precision of the reduction. */
  solution: Tensor<Float32Array | Float64Array>;
  /** Conjugate-gradient iterations run (each one reduction K p). */
  iterations: number;
  /** The worst relative residual |b - (alpha I + K) a| / |b| over the columns. */
  relativeResidual: number;
  /** Whether `relativeResidual <= tol` was reached within `maxIter` iterations. */
  converged: boolean;
  /** The options the system was solved with, defaults filled in (alpha, tol, maxIter, and the
   *  engine, dtype, ranges and preconditioner when given): `solveVjp` reuses them, so the
   *  gradient is that of the system that was solved. */
  options: SolvedWith;
}

/** The options a {@link SolveResult} was computed with (see {@link SolveResult.options}). */
export interface SolvedWith {
  /** The ridge alpha of (alpha I + K). */
  readonly alpha: number;
  /** The relative residual tolerance. */
  readonly tol: number;
  /** The iteration cap. */
  readonly maxIter: number;
  /** The engine choice, when one was given. */
  readonly engine?: SolveOptions['engine'];
  /** The precision of the reductions. */
  readonly dtype: 'float32' | 'float64';
  /** The block-sparse pattern, when one was given. */
  readonly ranges?: SolveOptions['ranges'];
  /** The preconditioner, when one was given (valid for the adjoint solve too: the system is symmetric). */
  readonly preconditioner?: (residual: Float64Array, columns: number) => Float64Array;
}

const SOLVE_OPTION_KEYS = new Set([
  'alpha',
  'tol',
  'maxIter',
  'preconditioner',
  'rank',
  'seed',
  'onIteration',
  'engine',
  'dtype',
  'ranges',
  'signal',
]);

/** What solve needs from the formula API, passed in by LazyTensor.solve (see the import note above). */
export interface SolveKit {
  /** Makes the j-variable p_j (M rows of dimension `columns`) that K multiplies: `Vj`. */
  column(data: Float32Array | Float64Array, columns: number): LazyTensor;
  /** Wraps a formula node with its rows, as a LazyTensor. */
  lazy(node: FormulaNode, rowsI: number, rowsJ: number): LazyTensor;
  /** Whether `b` is a LazyTensor. */
  isLazy(b: unknown): b is LazyTensor;
}

function flatten(where: string, b: Data, rows: number, kit: SolveKit): { values: Float64Array; columns: number } {
  let values: Float64Array;
  if (kit.isLazy(b)) {
    const node = b.node;
    if (node.kind !== 'var' || node.isConstant || node.category === 'p' || node.batch.length > 0) {
      throw new InputError(
        `${where}: b must be data or a variable made by Vi(b, e) / Vj(b, e), not a formula (${b.toString()}); reduce the formula first`,
      );
    }
    if (node.rows !== rows) {
      throw new InputError(`${where}: b has ${node.rows} rows; expected ${rows}, the rows of the kernel`);
    }
    return flatten(where, node.data, rows, kit);
  }
  if (b instanceof Tensor) {
    if (b.shape.length > 2 || (b.shape.length >= 1 && b.shape[0] !== rows)) {
      throw new InputError(
        `${where}: b is a Tensor of shape [${b.shape.join(', ')}]; expected [${rows}, e] for the ${rows} rows of the kernel`,
      );
    }
    return flatten(where, Float64Array.from(b.data), rows, kit);
  }
  if (b instanceof Float32Array || b instanceof Float64Array) values = Float64Array.from(b);
  else if (Array.isArray(b) && b.length > 0 && Array.isArray(b[0]))
    values = Float64Array.from((b as number[][]).flat());
  else values = Float64Array.from(b as number[]);
  if (values.length === 0 || values.length % rows !== 0) {
    throw new InputError(
      `${where}: b has ${values.length} values; expected [${rows}, e] for the ${rows} rows of the kernel`,
    );
  }
  for (const v of values) if (!Number.isFinite(v)) throw new InputError(`${where}: b contains ${v}`);
  return { values, columns: values.length / rows };
}

/** (alpha I + K) p, row-major [N, e]. */
async function apply(
  K: LazyTensor,
  p: Float64Array,
  columns: number,
  alpha: number,
  options: ReductionOptions,
  kit: SolveKit,
): Promise<{ values: Float64Array; engine: EngineName }> {
  const dtype = options.dtype;
  const pj = kit.column(dtype === 'float32' ? Float32Array.from(p) : p, columns);
  const kp = await K.mul(pj).sum(1, options);
  const out = new Float64Array(p.length);
  for (let q = 0; q < p.length; q++) out[q] = kp.data[q]! + alpha * p[q]!;
  return { values: out, engine: kp.engine };
}

function columnDots(a: Float64Array, b: Float64Array, columns: number): Float64Array {
  const out = new Float64Array(columns);
  for (let q = 0; q < a.length; q++) out[q % columns] = out[q % columns]! + a[q]! * b[q]!;
  return out;
}

/** Solves (alpha I + K) a = b for a symmetric positive (semi-)definite kernel K(x_i, x_j) of dimension 1. */
export async function solve(K: LazyTensor, b: Data, kit: SolveKit, options: SolveOptions = {}): Promise<SolveResult> {
  for (const key of Object.keys(options)) {
    if (!SOLVE_OPTION_KEYS.has(key)) throw new InputError(`solve: unknown option '${key}'`);
  }
  if (K.dim !== 1) throw new InputError(`solve: the kernel must have dimension 1, got ${K.dim}`);
  if (K.batch.length > 0) throw new InputError('solve: batched kernels are not supported yet; solve each batch item');
  if (K.rowsI === null || K.rowsJ === null || K.rowsI !== K.rowsJ) {
    throw new InputError(
      `solve: the kernel must be square (i- and j-variables with the same number of rows), got ${K.rowsI} x ${K.rowsJ}`,
    );
  }
  const signal = checkSignal('solve', options.signal);
  throwIfAborted(signal);
  const alpha = options.alpha ?? 0;
  const tol = options.tol ?? 1e-6;
  const maxIter = options.maxIter ?? 1000;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha < 0)
    throw new InputError(`solve: alpha must be >= 0 (a finite number), got ${String(alpha)}`);
  if (typeof tol !== 'number' || !(tol > 0) || !Number.isFinite(tol))
    throw new InputError(`solve: tol must be > 0 (a finite number), got ${String(tol)}`);
  if (!Number.isInteger(maxIter) || maxIter < 1)
    throw new InputError(`solve: maxIter must be a positive integer, got ${maxIter}`);
  const N = K.rowsI;
  const { values: rhs, columns } = flatten('solve', b, N, kit);
  const reduceOptions: ReductionOptions = {
    ...(options.engine ? { engine: options.engine } : {}),
    ...(options.ranges ? { ranges: options.ranges } : {}),
    ...(signal ? { signal } : {}),
    dtype: options.dtype ?? K.plan('sum', 1, undefined).dtype,
  };
  const given = options.preconditioner;
  if (given !== undefined && given !== 'nystrom' && typeof given !== 'function') {
    throw new InputError(`solve: preconditioner must be a function or 'nystrom', got ${describeOption(given)}`);
  }
  if ((options.rank !== undefined || options.seed !== undefined) && given !== 'nystrom') {
    throw new InputError("solve: rank and seed are options of preconditioner: 'nystrom'");
  }
  if (options.seed !== undefined && !Number.isInteger(options.seed)) {
    throw new InputError(`solve: seed must be an integer, got ${String(options.seed)}`);
  }
  const built =
    given === 'nystrom'
      ? await nystromPreconditioner(
          K,
          alpha,
          options.rank ?? 100,
          options.seed ?? 1,
          reduceOptions.dtype!,
          (node, m, e) => kit.lazy(node, N, m).mul(kit.column(e, m)).sum(1, reduceOptions),
        )
      : given;
  const precondition = built ?? ((r: Float64Array) => Float64Array.from(r));

  const bNorm = columnDots(rhs, rhs, columns).map(Math.sqrt);
  const x = new Float64Array(rhs.length);
  const r = Float64Array.from(rhs);
  let z = precondition(r, columns);
  const p = Float64Array.from(z);
  let rz = columnDots(r, z, columns);
  let iterations = 0;
  let engine: EngineName = 'wasm';
  let worst = Math.max(...bNorm.map((n) => (n === 0 ? 0 : 1)));
  while (worst > tol && iterations < maxIter) {
    // Each iteration's reduction yields when due and sees the signal; the JS work between two
    // reductions is O(N), so this is the only check the loop needs.
    await checkpoint(signal);
    const applied = await apply(K, p, columns, alpha, reduceOptions, kit);
    const ap = applied.values;
    engine = applied.engine;
    const pAp = columnDots(p, ap, columns);
    const step = pAp.map((v, c) => (v > 0 ? rz[c]! / v : 0));
    for (let q = 0; q < r.length; q++) {
      x[q] = x[q]! + step[q % columns]! * p[q]!;
      r[q] = r[q]! - step[q % columns]! * ap[q]!;
    }
    z = precondition(r, columns);
    const rzNext = columnDots(r, z, columns);
    const beta = rzNext.map((v, c) => (rz[c]! > 0 ? v / rz[c]! : 0));
    for (let q = 0; q < p.length; q++) p[q] = z[q]! + beta[q % columns]! * p[q]!;
    rz = rzNext;
    iterations++;
    const rNorm = columnDots(r, r, columns).map(Math.sqrt);
    worst = Math.max(...rNorm.map((n, c) => (bNorm[c] === 0 ? 0 : n / bNorm[c]!)));
    options.onIteration?.(iterations, worst);
  }
  const data = reduceOptions.dtype === 'float32' ? Float32Array.from(x) : x;
  return {
    solution: new Tensor(data, [N, columns], engine),
    iterations,
    relativeResidual: worst,
    converged: worst <= tol,
    options: {
      alpha,
      tol,
      maxIter,
      dtype: reduceOptions.dtype!,
      ...(options.engine !== undefined ? { engine: options.engine } : {}),
      ...(options.ranges !== undefined ? { ranges: options.ranges } : {}),
      ...(built !== undefined ? { preconditioner: built } : {}),
    },
  };
}

/** An option's value for an error message. */
export function describeOption(value: unknown): string {
  return typeof value === 'number' || typeof value === 'string' ? String(value) : typeof value;
}
