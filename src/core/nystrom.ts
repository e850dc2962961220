// A Nyström preconditioner for kernel solves (alpha I + K) a = b. With m landmark points L, the
// low-rank K ~ U U^T, U = K_{:,L} R^-1 (K_LL = R^T R, Cholesky), and Woodbury gives the exact
// inverse of the approximation: (alpha I + U U^T)^-1 r = (r - U (alpha I + U^T U)^-1 U^T r) / alpha.
// Conjugate gradients on the preconditioned system converge in iterations set by the spectrum left
// out of the approximation, not by K's condition number. Building it costs one reduction (the N x m
// block K_{:,L}) and O(N m^2) work; each application O(N m).
import { InputError } from './errors.js';
import { Variable, variablesOf, type FormulaNode } from './formula.js';
import type { LazyTensor } from './lazy-tensor.js';
import { substitute } from './substitute.js';

/** Runs sum_j F(x_i, y_j) e_j for the formula `node` with m j-rows and e the m x m identity: the
 *  caller's reduction (solve.ts), so that this module imports no runtime part of the formula API. */
export type BlockEvaluator = (
  node: FormulaNode,
  m: number,
  identity: Float32Array | Float64Array,
) => Promise<{ data: Float32Array | Float64Array }>;

/** Landmarks: `rank` distinct rows chosen by a seeded shuffle, so a solve is reproducible. */
function landmarks(n: number, rank: number, seed: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, k) => k);
  let state = seed >>> 0 || 1;
  for (let k = 0; k < rank; k++) {
    // xorshift32: a small deterministic generator is enough to spread the landmarks.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    const pick = k + (state % (n - k));
    [order[k], order[pick]] = [order[pick]!, order[k]!];
  }
  return order.slice(0, rank).sort();
}

/** In-place Cholesky A = R^T R of a symmetric m x m matrix (row-major; R upper, stored in the upper triangle). */
function cholesky(a: Float64Array, m: number): boolean {
  for (let j = 0; j < m; j++) {
    let d = a[j * m + j]!;
    for (let k = 0; k < j; k++) d -= a[k * m + j]! ** 2;
    if (!(d > 0)) return false;
    const rjj = Math.sqrt(d);
    a[j * m + j] = rjj;
    for (let c = j + 1; c < m; c++) {
      let s = a[j * m + c]!;
      for (let k = 0; k < j; k++) s -= a[k * m + j]! * a[k * m + c]!;
      a[j * m + c] = s / rjj;
    }
  }
  return true;
}

/** Solves R^T y = v in place (R upper, from `cholesky`). */
function forward(r: Float64Array, m: number, v: Float64Array): void {
  for (let j = 0; j < m; j++) {
    let s = v[j]!;
    for (let k = 0; k < j; k++) s -= r[k * m + j]! * v[k]!;
    v[j] = s / r[j * m + j]!;
  }
}

/** Solves R y = v in place. */
function backward(r: Float64Array, m: number, v: Float64Array): void {
  for (let j = m - 1; j >= 0; j--) {
    let s = v[j]!;
    for (let k = j + 1; k < m; k++) s -= r[j * m + k]! * v[k]!;
    v[j] = s / r[j * m + j]!;
  }
}

/** Builds the Nyström preconditioner of (alpha I + K) for a square kernel K of N rows. */
export async function nystromPreconditioner(
  K: LazyTensor,
  alpha: number,
  rank: number,
  seed: number,
  dtype: 'float32' | 'float64',
  evaluate: BlockEvaluator,
): Promise<(residual: Float64Array, columns: number) => Float64Array> {
  const N = K.rowsI!;
  if (!(alpha > 0)) {
    throw new InputError("solve: preconditioner 'nystrom' needs alpha > 0 (it inverts alpha I + a low-rank matrix)");
  }
  if (!Number.isInteger(rank) || rank < 1) throw new InputError(`solve: rank must be a positive integer, got ${rank}`);
  const m = Math.min(rank, N);
  const picked = landmarks(N, m, seed);
  // K_{:,L}: the kernel with its j-variables restricted to the landmark rows, times the identity
  // (an m-dimensional j-variable), summed over j: row i is K(x_i, x_L), in one reduction.
  const replacements = new Map<Variable, Variable>();
  for (const v of variablesOf(K.node)) {
    if (v.category !== 'j') continue;
    const rows = new (v.data.constructor as new (n: number) => Float32Array | Float64Array)(m * v.dim);
    picked.forEach((p, q) => rows.set(v.data.subarray(p * v.dim, (p + 1) * v.dim), q * v.dim));
    replacements.set(v, new Variable('j', v.dim, m, rows, v.dtype, v.name, false, v.batch, false));
  }
  const identity = dtype === 'float32' ? new Float32Array(m * m) : new Float64Array(m * m);
  for (let q = 0; q < m; q++) identity[q * m + q] = 1;
  const block = await evaluate(substitute(K.node, replacements), m, identity); // [N, m]
  const C = Float64Array.from(block.data);
  // K_LL, with a relative jitter so that a rank-deficient block (repeated points) still factors.
  const kll = new Float64Array(m * m);
  picked.forEach((p, q) => kll.set(C.subarray(p * m, (p + 1) * m), q * m));
  let trace = 0;
  for (let q = 0; q < m; q++) trace += kll[q * m + q]!;
  const jitter = 1e-10 * Math.max(trace / m, Number.MIN_VALUE);
  let factored = false;
  for (let attempt = 0, eps = jitter; attempt < 8 && !factored; attempt++, eps *= 100) {
    const a = Float64Array.from(kll);
    for (let q = 0; q < m; q++) a[q * m + q] = a[q * m + q]! + eps;
    if (cholesky(a, m)) {
      kll.set(a);
      factored = true;
    }
  }
  if (!factored)
    throw new InputError("solve: preconditioner 'nystrom': the kernel is not positive semi-definite on the landmarks");
  // U = C R^-1, row by row (U_i^T = R^-T C_i^T).
  const U = C;
  for (let i = 0; i < N; i++) forward(kll, m, U.subarray(i * m, (i + 1) * m));
  // M = alpha I + U^T U, factored.
  const M = new Float64Array(m * m);
  for (let i = 0; i < N; i++) {
    const row = U.subarray(i * m, (i + 1) * m);
    for (let a = 0; a < m; a++) {
      const ua = row[a]!;
      if (ua === 0) continue;
      for (let b = a; b < m; b++) M[a * m + b] = M[a * m + b]! + ua * row[b]!;
    }
  }
  for (let a = 0; a < m; a++) {
    M[a * m + a] = M[a * m + a]! + alpha;
    for (let b = 0; b < a; b++) M[a * m + b] = M[b * m + a]!;
  }
  if (!cholesky(M, m)) throw new Error('internal: alpha I + U^T U is not positive definite');
  return (residual: Float64Array, columns: number): Float64Array => {
    const out = new Float64Array(residual.length);
    const t = new Float64Array(m);
    for (let c = 0; c < columns; c++) {
      t.fill(0);
      for (let i = 0; i < N; i++) {
        const r = residual[i * columns + c]!;
        for (let a = 0; a < m; a++) t[a] = t[a]! + U[i * m + a]! * r;
      }
      forward(M, m, t);
      backward(M, m, t);
      for (let i = 0; i < N; i++) {
        let s = 0;
        for (let a = 0; a < m; a++) s += U[i * m + a]! * t[a]!;
        out[i * columns + c] = (residual[i * columns + c]! - s) / alpha;
      }
    }
    return out;
  };
}
