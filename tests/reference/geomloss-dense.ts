/**
 * Dense float64 reference implementation of GeomLoss's `SamplesLoss`
 * (`geomloss._legacy.samples_loss.SamplesLoss`, tensorized backend; same maths
 * as release v0.2.6), written from scratch in plain TypeScript.
 *
 * This file is the SPEC that the production (symbolic / lazy) implementation is
 * tested against. Everything is O(N*M) dense, float64, N and M up to a few hundred.
 * See tests/reference/README.md for the algorithm notes and the reasons behind them.
 *
 * ─────────────────────────────────────────────────────────────────────────────
 * Notation: x_i (i<N), y_j (j<M) in R^D, weights a_i, b_j >= 0.
 *
 * Cost (sinkhorn / hausdorff):
 *   p = 1 : C(x,y) = sqrt(max(|x-y|^2, 1e-8))        (so C(x,x) = 1e-4, not 0)
 *           grad_x C = (x-y)/C(x,y) if |x-y|^2 > 1e-8, else 0
 *   p = 2 : C(x,y) = |x-y|^2 / 2                    grad_x C = x - y
 * eps = blur^p (target temperature), rho = reach^p (null = balanced OT).
 *
 * Diameter (when `diameter` is null): over the union of both clouds (and, in
 * batch mode, over all batch items at once),
 *   diameter = || max_k(all points) - min_k(all points) ||_2  (bounding-box diagonal),
 * the squared norm being accumulated as acc = fma(v_k, v_k, acc), k = 0..D-1,
 * which is what torch's .norm() did bit-for-bit on the reference machine.
 *
 * Epsilon schedule (numpy semantics):
 *   start = p*ln(diameter), stop = p*ln(blur), step = p*ln(scaling)
 *   n = ceil((stop - start)/step)  (0 if <= 0);  e_0 = start, e_1 = start + step,
 *   e_k = start + k*((start + step) - start)  (k >= 2)      [np.arange fill rule]
 *   eps_list = [diameter^p, exp(e_0), ..., exp(e_{n-1}), blur^p]
 * (the first two entries are both ~diameter^p: GeomLoss really does iterate twice at
 *  the coarsest temperature.)
 *
 * Softmin ("soft C-transform"), with log-weights l = log(w) (w <= 0 -> -100000):
 *   softmin_eps(C, h)_i = -eps * log sum_j exp( h_j - C_ij/eps )
 * Damping: kappa(eps) = 1 / (1 + eps/rho)  (kappa = 1 when rho is null).
 *
 * Sinkhorn loop (symmetric averaged updates; the `aa`/`bb` problems only if debias):
 *   eps = eps_list[0], kappa = kappa(eps)
 *   g_ab = kappa softmin_eps(C_yx, l_a)     f_ba = kappa softmin_eps(C_xy, l_b)
 *   f_aa = kappa softmin_eps(C_xx, l_a)     g_bb = kappa softmin_eps(C_yy, l_b)
 *   for eps in eps_list:                    (every entry, including the first)
 *     kappa = kappa(eps)
 *     ft_ba = kappa softmin_eps(C_xy, l_b + g_ab/eps)    gt_ab = kappa softmin_eps(C_yx, l_a + f_ba/eps)
 *     ft_aa = kappa softmin_eps(C_xx, l_a + f_aa/eps)    gt_bb = kappa softmin_eps(C_yy, l_b + g_bb/eps)
 *     f_ba = (f_ba + ft_ba)/2,  g_ab = (g_ab + gt_ab)/2,  f_aa = (f_aa + ft_aa)/2,  g_bb = (g_bb + gt_bb)/2
 *   final "extrapolation" step at the last eps (= blur^p), all four in parallel, from the
 *   pre-final values:  f_ba = kappa softmin_eps(C_xy, l_b + g_ab/eps),  g_ab = kappa softmin_eps(C_yx, l_a + f_ba/eps),
 *                      f_aa = kappa softmin_eps(C_xx, l_a + f_aa/eps),  g_bb = kappa softmin_eps(C_yy, l_b + g_bb/eps)
 *
 * Value (eps = blur^p, W = rho + eps/2):
 *   balanced, debias : sum_i a_i (f_ba - f_aa)_i + sum_j b_j (g_ab - g_bb)_j
 *   balanced, raw    : sum_i a_i f_ba_i + sum_j b_j g_ab_j
 *   unbalanced, debias: sum_i a_i W (e^{-f_aa_i/rho} - e^{-f_ba_i/rho}) + sum_j b_j W (e^{-g_bb_j/rho} - e^{-g_ab_j/rho})
 *   unbalanced, raw  : sum_i a_i W (1 - e^{-f_ba_i/rho}) + sum_j b_j W (1 - e^{-g_ab_j/rho})
 * Potentials output (GeomLoss `potentials=True`): F = f_ba - f_aa, G = g_ab - g_bb (debias), else F = f_ba, G = g_ab.
 *
 * Gradients (GeomLoss's envelope-theorem gradients = torch.autograd through the final
 * step only, with the softmin inputs detached and only the FIRST argument of each cost
 * matrix live: C_xy = C(x, y.detach()), C_yx = C(y, x.detach()), C_xx = C(x, x.detach())):
 *   P_ij = softmax_j(l_b_j + g_ab_j/eps - C(x_i,y_j)/eps)      [pre-final g_ab]
 *   R_ik = softmax_k(l_a_k + f_aa_k/eps - C(x_i,x_k)/eps)      [pre-final f_aa]
 *   Df_ba_i = kappa sum_j P_ij grad_1 C(x_i,y_j),  Df_aa_i = kappa sum_k R_ik grad_1 C(x_i,x_k)
 *   (Dg_ab, Dg_bb symmetric, with the roles of (x,a) and (y,b) swapped)
 *   balanced, debias : dV/dx_i = a_i (Df_ba_i - Df_aa_i),           dV/da_i = f_ba_i - f_aa_i
 *   balanced, raw    : dV/dx_i = a_i Df_ba_i,                       dV/da_i = f_ba_i
 *   unbalanced, debias: dV/dx_i = a_i (W/rho)(e^{-f_ba_i/rho} Df_ba_i - e^{-f_aa_i/rho} Df_aa_i),
 *                       dV/da_i = W (e^{-f_aa_i/rho} - e^{-f_ba_i/rho})
 *   unbalanced, raw  : dV/dx_i = a_i (W/rho) e^{-f_ba_i/rho} Df_ba_i, dV/da_i = W (1 - e^{-f_ba_i/rho})
 *   (y, b: same with f<->g, a<->b, x<->y.)
 *   NB (GeomLoss quirk, reproduced): in the unbalanced case the true derivative of the
 *   converged value uses rho + eps instead of W = rho + eps/2 (GeomLoss's
 *   `UnbalancedWeight.backward` intends this but is never called by autograd), so
 *   GeomLoss's unbalanced position gradients (and debiased weight gradients) are the exact
 *   ones times (rho + eps/2)/(rho + eps).
 *   `exactUnbalancedGradients: true` returns the exact ones instead (for the raw unbalanced
 *   value, whose formula drops the mass terms of OT_eps,rho, the exact weight derivative is
 *   (rho + eps/2) - (rho + eps) e^{-f_ba/rho}; the position derivatives are a_i e^{-f_ba/rho} sum_j P_ij grad C).
 *
 *   All these are derivatives of the value only AT CONVERGENCE of the loop; with GeomLoss's short
 *   schedule they differ from finite differences of the returned value (by ~30% at blur 0.05).
 *   Balanced weight gradients are only meaningful along sum(da) = 0 (no fixed point exists when
 *   the masses differ).
 *
 * Batch (B,N,D)/(B,M,D): ONE schedule for the whole batch (diameter over all B*(N+M) points);
 *   each item is otherwise independent; gradients are those of the sum of the B values.
 * Zero diameter (all points coincide, diameter null): GeomLoss raises (np.arange(-inf, ...));
 *   this reference uses diameter := blur, i.e. eps_list = [blur^p, blur^p]. A user-given
 *   diameter <= 0 is rejected.
 *
 * Kernel losses (no schedule): k_gauss = exp(-|x/s - y/s|^2/2), k_lap = exp(-sqrt(max(|x/s - y/s|^2, 1e-8))),
 *   k_energy = -sqrt(max(|x-y|^2, 1e-8)), s = blur.
 *   V = 1/2 sum_ik a_i a_k k(x_i,x_k) + 1/2 sum_jl b_j b_l k(y_j,y_l) - sum_ij a_i b_j k(x_i,y_j)
 *   dV/da_i = sum_k a_k k(x_i,x_k) - sum_j b_j k(x_i,y_j)
 *   dV/dx_i = a_i sum_k a_k grad_1 k(x_i,x_k) - a_i sum_j b_j grad_1 k(x_i,y_j)
 *
 * Hausdorff divergence (Feydy et al. 2019; NOT available in GeomLoss's legacy SamplesLoss,
 * where loss="hausdorff" raises KeyError), balanced only:
 *   symmetric potential p_a of (a, x): run the f_aa loop above alone, then with h = l_a + p_a/eps
 *   (pre-final), define  A(z) = softmin_eps over (a,x) = -eps log sum_k exp(h_k - C(z,x_k)/eps),
 *   and B(z) likewise for (b, y).
 *   H = 1/2 [ sum_i a_i (B(x_i) - A(x_i)) + sum_j b_j (A(y_j) - B(y_j)) ]  = 1/2 <a - b, B - A>
 *   >= 0 (monotonicity of the gradient of the convex F(a) = -OT_eps(a,a)/2), = 0 when (x,a) == (y,b).
 *   Gradients: EXACT derivatives of H at convergence (implicit differentiation through the
 *   fixed point p = T(p): (I + R) dp = (R o dC) 1 - eps R (da/a)), computed with dense linear solves.
 */

export type LossName = 'sinkhorn' | 'hausdorff' | 'energy' | 'gaussian' | 'laplacian';

export interface DenseOptions {
  loss: LossName;
  p: 1 | 2;
  blur: number;
  reach: number | null;
  diameter: number | null;
  scaling: number;
  debias: boolean;
  /** Override the epsilon schedule (e.g. to replay GeomLoss's exact list, or to iterate to convergence). */
  epsList?: number[] | null;
  /** Unbalanced sinkhorn only: return exact gradients (rho + eps) instead of GeomLoss's (rho + eps/2). */
  exactUnbalancedGradients?: boolean;
}

export interface SinkhornPotentials {
  /** final (post-extrapolation) potentials */
  fBA: number[];
  gAB: number[];
  fAA?: number[];
  gBB?: number[];
}

export interface DenseResult {
  value: number;
  gradX: number[][];
  gradY: number[][];
  gradA: number[];
  gradB: number[];
  /**
   * GeomLoss `potentials=True` outputs: sinkhorn F = f_ba - f_aa, G = g_ab - g_bb (debias) or f_ba, g_ab (raw);
   * kernels F = K_xx a - K_xy b, G = K_yy b - K_yx a; hausdorff F = B(x) - A(x), G = A(y) - B(y).
   */
  f?: number[];
  g?: number[];
  /** epsilon list actually used (sinkhorn / hausdorff) */
  schedule?: number[];
  /** diameter actually used to build the schedule (sinkhorn / hausdorff, when no epsList override) */
  diameter?: number;
  potentials?: SinkhornPotentials;
}

export interface DenseBatchResult {
  values: number[];
  gradX: number[][][];
  gradY: number[][][];
  gradA: number[][];
  gradB: number[][];
  f?: number[][];
  g?: number[][];
  schedule?: number[];
  diameter?: number;
}

/* ───────────────────────────── errors & validation ───────────────────────────── */

export class GeomLossInputError extends Error {
  constructor(message: string) {
    super(`geomloss-dense: ${message}`);
    this.name = 'GeomLossInputError';
  }
}

const LOSSES: readonly string[] = ['sinkhorn', 'hausdorff', 'energy', 'gaussian', 'laplacian'];

function checkCloud(name: string, pts: unknown): number {
  if (!Array.isArray(pts) || pts.length === 0) {
    throw new GeomLossInputError(`samples '${name}' must be a non-empty (N, D) array of points`);
  }
  let D = -1;
  for (const row of pts) {
    if (!Array.isArray(row)) {
      throw new GeomLossInputError(`samples '${name}' must be encoded as (N, D) arrays (got a non-array row)`);
    }
    if (D < 0) D = row.length;
    if (row.length !== D || D === 0) {
      throw new GeomLossInputError(`samples '${name}' must be a rectangular (N, D) array with D >= 1`);
    }
    for (const v of row) {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new GeomLossInputError(`samples '${name}' contain a non-finite coordinate`);
      }
    }
  }
  return D;
}

function checkWeights(name: string, w: unknown, n: number, cloud: string): void {
  if (!Array.isArray(w)) throw new GeomLossInputError(`weights '${name}' must be a 1D array`);
  if (w.length !== n) {
    throw new GeomLossInputError(
      `weights '${name}' (length ${w.length}) and samples '${cloud}' (N = ${n}) should have compatible shapes`,
    );
  }
  for (const v of w) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new GeomLossInputError(`weights '${name}' must be finite numbers (1D array of length N)`);
    }
    if (v < 0) throw new GeomLossInputError(`weights '${name}' must be nonnegative`);
  }
}

function checkOptions(o: DenseOptions): void {
  if (!LOSSES.includes(o.loss)) {
    throw new GeomLossInputError(`unknown loss '${String(o.loss)}' (expected one of ${LOSSES.join(', ')})`);
  }
  const ot = o.loss === 'sinkhorn' || o.loss === 'hausdorff';
  if (ot) {
    if (o.p !== 1 && o.p !== 2) {
      throw new GeomLossInputError(
        `p = ${String(o.p)} is not supported for loss '${o.loss}': GeomLoss's cost_routines only define p = 1 and p = 2`,
      );
    }
    if (o.reach !== null && o.reach !== undefined && !(Number.isFinite(o.reach) && o.reach > 0)) {
      throw new GeomLossInputError(`reach must be null (balanced) or a positive number, got ${String(o.reach)}`);
    }
    if (o.loss === 'hausdorff' && o.reach !== null && o.reach !== undefined) {
      throw new GeomLossInputError(
        `the unbalanced (reach != null) Hausdorff divergence is not defined in this reference`,
      );
    }
    if (o.epsList) {
      if (o.epsList.length === 0 || o.epsList.some((e) => !(Number.isFinite(e) && e > 0))) {
        throw new GeomLossInputError(`epsList must be a non-empty list of positive numbers`);
      }
    } else {
      if (!(Number.isFinite(o.scaling) && o.scaling > 0 && o.scaling < 1)) {
        throw new GeomLossInputError(`scaling must be in (0, 1), got ${String(o.scaling)}`);
      }
      if (o.diameter !== null && o.diameter !== undefined && !(Number.isFinite(o.diameter) && o.diameter > 0)) {
        throw new GeomLossInputError(
          `diameter must be null or a positive number, got ${String(o.diameter)} (GeomLoss fails in np.arange on log(0))`,
        );
      }
    }
  }
  if (o.loss !== 'energy' || ot) {
    if (!(Number.isFinite(o.blur) && o.blur > 0)) {
      throw new GeomLossInputError(`blur must be a positive number, got ${String(o.blur)}`);
    }
  }
}

function validate(x: number[][], y: number[][], a: number[], b: number[], o: DenseOptions): number {
  checkOptions(o);
  const Dx = checkCloud('x', x);
  const Dy = checkCloud('y', y);
  if (Dx !== Dy) {
    throw new GeomLossInputError(`input samples 'x' and 'y' should have the same last dimension (got ${Dx} and ${Dy})`);
  }
  checkWeights('a', a, x.length, 'x');
  checkWeights('b', b, y.length, 'y');
  return Dx;
}

/* ───────────────────────────── float helpers ───────────────────────────── */

/** x = m * 2^e exactly (finite x). */
function decompose(x: number): { m: bigint; e: number } {
  if (x === 0) return { m: 0n, e: 0 };
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const hi = buf.getUint32(0);
  const lo = buf.getUint32(4);
  const sign = hi >>> 31;
  const ex = (hi >>> 20) & 0x7ff;
  const mantHi = hi & 0xfffff;
  let m = (BigInt(mantHi) << 32n) | BigInt(lo);
  let e: number;
  if (ex === 0) {
    e = -1074;
  } else {
    m |= 1n << 52n;
    e = ex - 1075;
  }
  return { m: sign ? -m : m, e };
}

function bitLength(v: bigint): number {
  return v === 0n ? 0 : v.toString(2).length;
}

/** Correctly rounded fused multiply-add a*b + c (exact BigInt arithmetic). */
export function fma(a: number, b: number, c: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || !Number.isFinite(c)) return a * b + c;
  const A = decompose(a);
  const B = decompose(b);
  const Cc = decompose(c);
  const pm = A.m * B.m;
  const pe = A.e + B.e;
  if (pm === 0n) return c === 0 ? a * b + c : c;
  if (Cc.m === 0n) return a * b;
  const e0 = Math.min(pe, Cc.e);
  let S = (pm << BigInt(pe - e0)) + (Cc.m << BigInt(Cc.e - e0));
  if (S === 0n) return 0;
  const neg = S < 0n;
  if (neg) S = -S;
  let e = e0;
  const bl = bitLength(S);
  if (bl > 64) {
    const sh = bl - 64;
    const mask = (1n << BigInt(sh)) - 1n;
    const sticky = (S & mask) !== 0n ? 1n : 0n;
    S = (S >> BigInt(sh)) | sticky;
    e += sh;
  }
  // Number(S) rounds the (<= 64-bit, sticky-augmented) integer to nearest-even correctly.
  let r = Number(S);
  // scale by 2^e in two exact steps when needed
  while (e > 1000) {
    r *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    r *= 2 ** -1000;
    e += 1000;
  }
  r *= 2 ** e;
  return neg ? -r : r;
}

/* ───────────────────────────── diameter & schedule ───────────────────────────── */

/**
 * GeomLoss's max_diameter on the union of clouds: norm of the bounding-box diagonal.
 * Squared norm accumulated with a sequential fma chain (matches torch .norm() on the reference data).
 */
export function maxDiameter(...clouds: number[][][]): number {
  let D = -1;
  let mins: number[] = [];
  let maxs: number[] = [];
  for (const cloud of clouds) {
    for (const pt of cloud) {
      if (D < 0) {
        D = pt.length;
        mins = pt.slice();
        maxs = pt.slice();
        continue;
      }
      for (let k = 0; k < D; k++) {
        const v = pt[k]!;
        if (v < mins[k]!) mins[k] = v;
        if (v > maxs[k]!) maxs[k] = v;
      }
    }
  }
  if (D < 0) return 0;
  let acc = 0;
  for (let k = 0; k < D; k++) {
    const v = maxs[k]! - mins[k]!;
    acc = fma(v, v, acc);
  }
  return Math.sqrt(acc);
}

/** Python float ** int (C pow); exact-ish for p in {1,2}. */
function powP(v: number, p: number): number {
  if (p === 1) return v;
  if (p === 2) return v * v;
  return Math.pow(v, p);
}

/**
 * GeomLoss's epsilon_schedule:
 * [diameter^p] + [exp(e) for e in np.arange(p ln diameter, p ln blur, p ln scaling)] + [blur^p].
 * np.arange: n = ceil((stop-start)/step), e_0 = start, e_1 = start+step, e_k = start + k*((start+step)-start).
 */
export function epsilonSchedule(p: number, diameter: number, blur: number, scaling: number): number[] {
  if (!(diameter > 0) || !Number.isFinite(diameter)) {
    throw new GeomLossInputError(
      `epsilonSchedule needs a positive finite diameter (got ${diameter}); GeomLoss itself fails (np.arange of -inf)`,
    );
  }
  if (!(blur > 0)) throw new GeomLossInputError(`blur must be positive, got ${blur}`);
  if (!(scaling > 0 && scaling < 1)) throw new GeomLossInputError(`scaling must be in (0, 1), got ${scaling}`);
  const start = p * Math.log(diameter);
  const stop = p * Math.log(blur);
  const step = p * Math.log(scaling);
  const q = (stop - start) / step;
  const n = q > 0 ? Math.ceil(q) : 0;
  const out: number[] = [powP(diameter, p)];
  if (n >= 1) out.push(Math.exp(start));
  if (n >= 2) {
    const next = start + step;
    out.push(Math.exp(next));
    const delta = next - start;
    for (let k = 2; k < n; k++) out.push(Math.exp(start + k * delta));
  }
  out.push(powP(blur, p));
  return out;
}

/* ───────────────────────────── dense kernels ───────────────────────────── */

type Pts = Float64Array[]; // N rows of length D

function toPts(x: number[][]): Pts {
  return x.map((r) => Float64Array.from(r));
}

function sqDist(u: Float64Array, v: Float64Array): number {
  let s = 0;
  for (let k = 0; k < u.length; k++) {
    const d = u[k]! - v[k]!;
    s += d * d;
  }
  return s;
}

const DIST_CLAMP = 1e-8;

function costValue(d2: number, p: 1 | 2): number {
  return p === 2 ? d2 / 2 : Math.sqrt(Math.max(d2, DIST_CLAMP));
}

/** C[i*m + j] = C(X_i, Y_j) */
function costMatrix(X: Pts, Y: Pts, p: 1 | 2): Float64Array {
  const n = X.length;
  const m = Y.length;
  const C = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) C[i * m + j] = costValue(sqDist(X[i]!, Y[j]!), p);
  return C;
}

/** grad wrt the first argument of C(u, v), accumulated: out += s * grad_1 C(u,v) */
function addCostGrad(out: Float64Array, off: number, u: Float64Array, v: Float64Array, p: 1 | 2, s: number): void {
  const D = u.length;
  if (p === 2) {
    for (let k = 0; k < D; k++) out[off + k] = out[off + k]! + s * (u[k]! - v[k]!);
  } else {
    const d2 = sqDist(u, v);
    if (d2 > DIST_CLAMP) {
      const c = Math.sqrt(d2);
      for (let k = 0; k < D; k++) out[off + k] = out[off + k]! + (s * (u[k]! - v[k]!)) / c;
    }
  }
}

function logWeights(w: ArrayLike<number>): Float64Array {
  const out = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i]! > 0 ? Math.log(w[i]!) : -100000;
  return out;
}

/** row-wise log-sum-exp of (h_j - C_ij/eps); returns lse_i */
function rowLSE(eps: number, C: Float64Array, n: number, m: number, h: Float64Array): Float64Array {
  const out = new Float64Array(n);
  const tmp = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    const row = i * m;
    for (let j = 0; j < m; j++) {
      const v = h[j]! - C[row + j]! / eps;
      tmp[j] = v;
      if (v > mx) mx = v;
    }
    if (mx === -Infinity || mx === Infinity) {
      out[i] = mx;
      continue;
    }
    let s = 0;
    for (let j = 0; j < m; j++) s += Math.exp(tmp[j]! - mx);
    out[i] = Math.log(s) + mx;
  }
  return out;
}

/** kappa * softmin_eps(C, h)_i = kappa * (-eps * lse_j(h_j - C_ij/eps)) */
function softmin(eps: number, C: Float64Array, n: number, m: number, h: Float64Array, kappa: number): Float64Array {
  const l = rowLSE(eps, C, n, m, h);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = kappa * (-eps * l[i]!);
  return out;
}

/** h_j = logw_j + pot_j / eps */
function logits(logw: Float64Array, pot: Float64Array, eps: number): Float64Array {
  const out = new Float64Array(logw.length);
  for (let j = 0; j < logw.length; j++) out[j] = logw[j]! + pot[j]! / eps;
  return out;
}

/**
 * D_i = kappa * sum_j softmax_j(h_j - C_ij/eps) grad_1 C(X_i, Y_j)   (N*D flat)
 */
function softminGrad(
  eps: number,
  C: Float64Array,
  X: Pts,
  Y: Pts,
  h: Float64Array,
  p: 1 | 2,
  kappa: number,
): Float64Array {
  const n = X.length;
  const m = Y.length;
  const D = X[0]!.length;
  const lse = rowLSE(eps, C, n, m, h);
  const out = new Float64Array(n * D);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const w = Math.exp(h[j]! - C[i * m + j]! / eps - lse[i]!);
      if (w !== 0) addCostGrad(out, i * D, X[i]!, Y[j]!, p, kappa * w);
    }
  }
  return out;
}

function dampening(eps: number, rho: number | null): number {
  return rho === null ? 1 : 1 / (1 + eps / rho);
}

function half(u: Float64Array, v: Float64Array): Float64Array {
  const out = new Float64Array(u.length);
  for (let i = 0; i < u.length; i++) out[i] = 0.5 * (u[i]! + v[i]!);
  return out;
}

function unflatten(v: Float64Array, n: number, D: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i++) out.push(Array.from(v.subarray(i * D, i * D + D)));
  return out;
}

/* ───────────────────────────── sinkhorn ───────────────────────────── */

interface SinkhornCore {
  fBA: Float64Array;
  gAB: Float64Array;
  fAA: Float64Array | null;
  gBB: Float64Array | null;
  dFBA: Float64Array;
  dGAB: Float64Array;
  dFAA: Float64Array | null;
  dGBB: Float64Array | null;
}

function sinkhornCore(
  X: Pts,
  Y: Pts,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  p: 1 | 2,
  epsList: number[],
  rho: number | null,
  debias: boolean,
): SinkhornCore {
  const N = X.length;
  const M = Y.length;
  const Cxy = costMatrix(X, Y, p);
  const Cyx = costMatrix(Y, X, p);
  const Cxx = debias ? costMatrix(X, X, p) : null;
  const Cyy = debias ? costMatrix(Y, Y, p) : null;
  const la = logWeights(a);
  const lb = logWeights(b);

  let eps = epsList[0]!;
  let kappa = dampening(eps, rho);
  let gAB = softmin(eps, Cyx, M, N, la, kappa);
  let fBA = softmin(eps, Cxy, N, M, lb, kappa);
  let fAA = Cxx ? softmin(eps, Cxx, N, N, la, kappa) : null;
  let gBB = Cyy ? softmin(eps, Cyy, M, M, lb, kappa) : null;

  for (const e of epsList) {
    eps = e;
    kappa = dampening(eps, rho);
    const ftBA = softmin(eps, Cxy, N, M, logits(lb, gAB, eps), kappa);
    const gtAB = softmin(eps, Cyx, M, N, logits(la, fBA, eps), kappa);
    let ftAA: Float64Array | null = null;
    let gtBB: Float64Array | null = null;
    if (Cxx && Cyy && fAA && gBB) {
      ftAA = softmin(eps, Cxx, N, N, logits(la, fAA, eps), kappa);
      gtBB = softmin(eps, Cyy, M, M, logits(lb, gBB, eps), kappa);
    }
    fBA = half(fBA, ftBA);
    gAB = half(gAB, gtAB);
    if (ftAA && gtBB && fAA && gBB) {
      fAA = half(fAA, ftAA);
      gBB = half(gBB, gtBB);
    }
  }

  // Final extrapolation step (all in parallel, from the pre-final potentials).
  const hB = logits(lb, gAB, eps);
  const hA = logits(la, fBA, eps);
  const hAA = fAA ? logits(la, fAA, eps) : null;
  const hBB = gBB ? logits(lb, gBB, eps) : null;
  const out: SinkhornCore = {
    fBA: softmin(eps, Cxy, N, M, hB, kappa),
    gAB: softmin(eps, Cyx, M, N, hA, kappa),
    fAA: hAA && Cxx ? softmin(eps, Cxx, N, N, hAA, kappa) : null,
    gBB: hBB && Cyy ? softmin(eps, Cyy, M, M, hBB, kappa) : null,
    dFBA: softminGrad(eps, Cxy, X, Y, hB, p, kappa),
    dGAB: softminGrad(eps, Cyx, Y, X, hA, p, kappa),
    dFAA: hAA && Cxx ? softminGrad(eps, Cxx, X, X, hAA, p, kappa) : null,
    dGBB: hBB && Cyy ? softminGrad(eps, Cyy, Y, Y, hBB, p, kappa) : null,
  };
  return out;
}

function scal(w: ArrayLike<number>, f: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i]! * f[i]!;
  return s;
}

/**
 * Value + gradients for ONE side (x, a, f_ba, f_aa); the y side is the same call with roles swapped.
 * Returns the side's contribution to the value, dV/dw and dV/dpoints.
 */
function sinkhornSide(
  w: ArrayLike<number>,
  D: number,
  fXY: Float64Array,
  fXX: Float64Array | null,
  dXY: Float64Array,
  dXX: Float64Array | null,
  rho: number | null,
  eps: number,
  exactUnbalanced: boolean,
): { value: number; gradW: Float64Array; gradP: Float64Array; F: Float64Array } {
  const n = fXY.length;
  const gradW = new Float64Array(n);
  const gradP = new Float64Array(n * D);
  const F = new Float64Array(n);
  for (let i = 0; i < n; i++) F[i] = fXX ? fXY[i]! - fXX[i]! : fXY[i]!;
  let value: number;
  if (rho === null) {
    value = scal(w, F);
    for (let i = 0; i < n; i++) {
      gradW[i] = F[i]!;
      for (let k = 0; k < D; k++) {
        gradP[i * D + k] = w[i]! * (dXY[i * D + k]! - (dXX ? dXX[i * D + k]! : 0));
      }
    }
  } else {
    const W = rho + eps / 2; // forward weight (GeomLoss's UnbalancedWeight.forward)
    const Wg = exactUnbalanced ? rho + eps : W; // weight seen by the gradients
    const terms = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const eXY = Math.exp(-fXY[i]! / rho);
      const eXX = fXX ? Math.exp(-fXX[i]! / rho) : 1;
      terms[i] = W * (eXX - eXY);
      // raw + exact: the GeomLoss raw value omits the mass terms eps*(m_a m_b - (m_a + m_b)/2) of
      // OT_eps,rho, so its exact a-derivative is (rho + eps/2) - (rho + eps) e^{-f/rho}.
      gradW[i] = exactUnbalanced && !fXX ? W - Wg * eXY : Wg * (eXX - eXY);
      for (let k = 0; k < D; k++) {
        const gXY = eXY * dXY[i * D + k]!;
        const gXX = fXX && dXX ? eXX * dXX[i * D + k]! : 0;
        gradP[i * D + k] = (w[i]! * Wg * (gXY - gXX)) / rho;
      }
    }
    value = scal(w, terms);
  }
  return { value, gradW, gradP, F };
}

function resolveSchedule(
  xs: number[][][],
  ys: number[][][],
  o: DenseOptions,
): { schedule: number[]; diameter: number | undefined } {
  if (o.epsList) return { schedule: o.epsList.slice(), diameter: undefined };
  let diameter = o.diameter ?? maxDiameter(...xs, ...ys);
  if (!(diameter > 0)) {
    // All points coincide. GeomLoss would fail here (np.arange(-inf, ...) raises ValueError).
    // Documented deviation: use diameter = blur, i.e. schedule [blur^p, blur^p].
    diameter = o.blur;
  }
  return { schedule: epsilonSchedule(o.p, diameter, o.blur, o.scaling), diameter };
}

function sinkhornOne(
  x: number[][],
  y: number[][],
  a: number[],
  b: number[],
  o: DenseOptions,
  schedule: number[],
): DenseResult {
  const X = toPts(x);
  const Y = toPts(y);
  const D = X[0]!.length;
  const rho = o.reach === null || o.reach === undefined ? null : powP(o.reach, o.p);
  const eps = powP(o.blur, o.p);
  const core = sinkhornCore(X, Y, a, b, o.p, schedule, rho, o.debias);
  const exact = o.exactUnbalancedGradients === true;
  const sx = sinkhornSide(a, D, core.fBA, core.fAA, core.dFBA, core.dFAA, rho, eps, exact);
  const sy = sinkhornSide(b, D, core.gAB, core.gBB, core.dGAB, core.dGBB, rho, eps, exact);
  const pots: SinkhornPotentials = { fBA: Array.from(core.fBA), gAB: Array.from(core.gAB) };
  if (core.fAA) pots.fAA = Array.from(core.fAA);
  if (core.gBB) pots.gBB = Array.from(core.gBB);
  return {
    value: sx.value + sy.value,
    gradX: unflatten(sx.gradP, X.length, D),
    gradY: unflatten(sy.gradP, Y.length, D),
    gradA: Array.from(sx.gradW),
    gradB: Array.from(sy.gradW),
    f: Array.from(sx.F),
    g: Array.from(sy.F),
    schedule,
    potentials: pots,
  };
}

/* ───────────────────────────── kernel losses ───────────────────────────── */

type KernelName = 'energy' | 'gaussian' | 'laplacian';

/** k(u, v) and grad_1 k(u, v) (accumulated into out with factor s) */
function kernelEval(name: KernelName, u: Float64Array, v: Float64Array, blur: number): number {
  if (name === 'energy') return -Math.sqrt(Math.max(sqDist(u, v), DIST_CLAMP));
  let d2 = 0;
  for (let k = 0; k < u.length; k++) {
    const d = u[k]! / blur - v[k]! / blur;
    d2 += d * d;
  }
  if (name === 'gaussian') return Math.exp(-d2 / 2);
  return Math.exp(-Math.sqrt(Math.max(d2, DIST_CLAMP)));
}

function kernelGradAdd(
  name: KernelName,
  out: Float64Array,
  off: number,
  u: Float64Array,
  v: Float64Array,
  blur: number,
  s: number,
): void {
  const D = u.length;
  if (name === 'energy') {
    const d2 = sqDist(u, v);
    if (d2 > DIST_CLAMP) {
      const c = Math.sqrt(d2);
      for (let k = 0; k < D; k++) out[off + k] = out[off + k]! - (s * (u[k]! - v[k]!)) / c;
    }
    return;
  }
  const diff = new Float64Array(D);
  let d2 = 0;
  for (let k = 0; k < D; k++) {
    diff[k] = u[k]! / blur - v[k]! / blur;
    d2 += diff[k]! * diff[k]!;
  }
  if (name === 'gaussian') {
    const K = Math.exp(-d2 / 2);
    for (let k = 0; k < D; k++) out[off + k] = out[off + k]! - (s * K * diff[k]!) / blur;
  } else {
    if (d2 > DIST_CLAMP) {
      const c = Math.sqrt(d2);
      const K = Math.exp(-c);
      for (let k = 0; k < D; k++) out[off + k] = out[off + k]! - (s * K * diff[k]!) / (c * blur);
    }
  }
}

function kernelOne(x: number[][], y: number[][], a: number[], b: number[], o: DenseOptions): DenseResult {
  const name = o.loss as KernelName;
  const X = toPts(x);
  const Y = toPts(y);
  const N = X.length;
  const M = Y.length;
  const D = X[0]!.length;
  const blur = o.blur;
  // a_x = K_xx a, b_y = K_yy b, b_x = K_xy b, a_y = K_yx a
  const ax = new Float64Array(N);
  const bx = new Float64Array(N);
  const by = new Float64Array(M);
  const ay = new Float64Array(M);
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < N; k++) ax[i] = ax[i]! + kernelEval(name, X[i]!, X[k]!, blur) * a[k]!;
    for (let j = 0; j < M; j++) bx[i] = bx[i]! + kernelEval(name, X[i]!, Y[j]!, blur) * b[j]!;
  }
  for (let j = 0; j < M; j++) {
    for (let l = 0; l < M; l++) by[j] = by[j]! + kernelEval(name, Y[j]!, Y[l]!, blur) * b[l]!;
    for (let i = 0; i < N; i++) ay[j] = ay[j]! + kernelEval(name, Y[j]!, X[i]!, blur) * a[i]!;
  }
  const value = 0.5 * scal(a, ax) + 0.5 * scal(b, by) - scal(a, bx);
  const gradA = new Float64Array(N);
  const gradB = new Float64Array(M);
  for (let i = 0; i < N; i++) gradA[i] = ax[i]! - bx[i]!;
  for (let j = 0; j < M; j++) gradB[j] = by[j]! - ay[j]!;
  const gX = new Float64Array(N * D);
  const gY = new Float64Array(M * D);
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < N; k++) kernelGradAdd(name, gX, i * D, X[i]!, X[k]!, blur, a[i]! * a[k]!);
    for (let j = 0; j < M; j++) kernelGradAdd(name, gX, i * D, X[i]!, Y[j]!, blur, -a[i]! * b[j]!);
  }
  for (let j = 0; j < M; j++) {
    for (let l = 0; l < M; l++) kernelGradAdd(name, gY, j * D, Y[j]!, Y[l]!, blur, b[j]! * b[l]!);
    for (let i = 0; i < N; i++) kernelGradAdd(name, gY, j * D, Y[j]!, X[i]!, blur, -b[j]! * a[i]!);
  }
  return {
    value,
    gradX: unflatten(gX, N, D),
    gradY: unflatten(gY, M, D),
    gradA: Array.from(gradA),
    gradB: Array.from(gradB),
    // GeomLoss potentials=True for kernels: (K_xx a - K_xy b, K_yy b - K_yx a)
    f: Array.from(gradA),
    g: Array.from(gradB),
  };
}

/* ───────────────────────────── hausdorff ───────────────────────────── */

/** Symmetric (debiasing) potential of (w, X): the f_aa loop alone. Returns the PRE-final potential. */
function symmetricPotentialPre(Cxx: Float64Array, lw: Float64Array, n: number, epsList: number[]): Float64Array {
  let eps = epsList[0]!;
  let pot = softmin(eps, Cxx, n, n, lw, 1);
  for (const e of epsList) {
    eps = e;
    const pt = softmin(eps, Cxx, n, n, logits(lw, pot, eps), 1);
    pot = half(pot, pt);
  }
  return pot;
}

/** Row-softmax matrix S_ij = softmax_j(h_j - C_ij/eps) and the ratio S_ij / w_j (= exp(pot_j/eps - C_ij/eps - lse_i)). */
function softmaxMatrix(
  eps: number,
  C: Float64Array,
  n: number,
  m: number,
  h: Float64Array,
  pot: Float64Array,
): { S: Float64Array; Sw: Float64Array } {
  const lse = rowLSE(eps, C, n, m, h);
  const S = new Float64Array(n * m);
  const Sw = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      S[i * m + j] = Math.exp(h[j]! - C[i * m + j]! / eps - lse[i]!);
      Sw[i * m + j] = Math.exp(pot[j]! / eps - C[i * m + j]! / eps - lse[i]!);
    }
  }
  return { S, Sw };
}

/** Solve A^T lam = u for dense n x n A (row-major), Gaussian elimination with partial pivoting. */
function solveTransposed(A: Float64Array, n: number, u: Float64Array): Float64Array {
  const T = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) T[i * n + j] = A[j * n + i]!;
  const r = Float64Array.from(u);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(T[i * n + c]!) > Math.abs(T[piv * n + c]!)) piv = i;
    if (piv !== c) {
      for (let j = 0; j < n; j++) {
        const t = T[c * n + j]!;
        T[c * n + j] = T[piv * n + j]!;
        T[piv * n + j] = t;
      }
      const t = r[c]!;
      r[c] = r[piv]!;
      r[piv] = t;
    }
    const d = T[c * n + c]!;
    for (let i = c + 1; i < n; i++) {
      const f = T[i * n + c]! / d;
      if (f === 0) continue;
      for (let j = c; j < n; j++) T[i * n + j] = T[i * n + j]! - f * T[c * n + j]!;
      r[i] = r[i]! - f * r[c]!;
    }
  }
  const lam = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = r[i]!;
    for (let j = i + 1; j < n; j++) s -= T[i * n + j]! * lam[j]!;
    lam[i] = s / T[i * n + i]!;
  }
  return lam;
}

interface SymPot {
  /** potential on its own support, after the final step: A(x_i) */
  self: Float64Array;
  /** extension to the other cloud: A(z_j) */
  ext: Float64Array;
  R: Float64Array;
  Rw: Float64Array;
  S: Float64Array;
  Sw: Float64Array;
}

function symPot(X: Pts, Z: Pts, w: ArrayLike<number>, p: 1 | 2, epsList: number[]): SymPot {
  const n = X.length;
  const m = Z.length;
  const Cxx = costMatrix(X, X, p);
  const Czx = costMatrix(Z, X, p);
  const lw = logWeights(w);
  const pot = symmetricPotentialPre(Cxx, lw, n, epsList);
  const eps = epsList[epsList.length - 1]!;
  const h = logits(lw, pot, eps);
  const self = softmin(eps, Cxx, n, n, h, 1);
  const ext = softmin(eps, Czx, m, n, h, 1);
  const { S: R, Sw: Rw } = softmaxMatrix(eps, Cxx, n, n, h, pot);
  const { S, Sw } = softmaxMatrix(eps, Czx, m, n, h, pot);
  return { self, ext, R, Rw, S, Sw };
}

/**
 * Adjoint of a symmetric potential: given u = dH/d(self) and v = dH/d(ext), accumulate
 * exact (converged) gradients wrt the weights w, the support X and the other cloud Z.
 */
function symPotBackward(
  sp: SymPot,
  X: Pts,
  Z: Pts,
  p: 1 | 2,
  eps: number,
  u: Float64Array,
  v: Float64Array,
  gW: Float64Array,
  gX: Float64Array,
  gZ: Float64Array,
): void {
  const n = X.length;
  const m = Z.length;
  const D = X[0]!.length;
  // upstream on the fixed point: U = u - S^T v
  const U = Float64Array.from(u);
  for (let j = 0; j < m; j++) for (let k = 0; k < n; k++) U[k] = U[k]! - sp.S[j * n + k]! * v[j]!;
  // (I + R)^T lam = U
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) A[i * n + k] = sp.R[i * n + k]!;
    A[i * n + i] = A[i * n + i]! + 1;
  }
  const lam = solveTransposed(A, n, U);
  const g = new Float64Array(D);
  // fixed-point terms: d p_i = sum_k R_ik [g(x_i,x_k).(dx_i - dx_k)] - eps sum_k R_ik dw_k / w_k
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const r = sp.R[i * n + k]!;
      const coef = lam[i]! * r;
      gW[k] = gW[k]! - eps * lam[i]! * sp.Rw[i * n + k]!;
      if (coef === 0 || i === k) continue;
      g.fill(0);
      addCostGrad(g, 0, X[i]!, X[k]!, p, 1);
      for (let d = 0; d < D; d++) {
        gX[i * D + d] = gX[i * D + d]! + coef * g[d]!;
        gX[k * D + d] = gX[k * D + d]! - coef * g[d]!;
      }
    }
  }
  // extension terms: dA(z_j) = -sum_k S_jk dp_k + sum_k S_jk g(z_j,x_k).(dz_j - dx_k) - eps sum_k S_jk dw_k/w_k
  for (let j = 0; j < m; j++) {
    for (let k = 0; k < n; k++) {
      const coef = v[j]! * sp.S[j * n + k]!;
      gW[k] = gW[k]! - eps * v[j]! * sp.Sw[j * n + k]!;
      if (coef === 0) continue;
      g.fill(0);
      addCostGrad(g, 0, Z[j]!, X[k]!, p, 1);
      for (let d = 0; d < D; d++) {
        gZ[j * D + d] = gZ[j * D + d]! + coef * g[d]!;
        gX[k * D + d] = gX[k * D + d]! - coef * g[d]!;
      }
    }
  }
}

function hausdorffOne(
  x: number[][],
  y: number[][],
  a: number[],
  b: number[],
  o: DenseOptions,
  schedule: number[],
): DenseResult {
  const X = toPts(x);
  const Y = toPts(y);
  const N = X.length;
  const M = Y.length;
  const D = X[0]!.length;
  const eps = schedule[schedule.length - 1]!;
  const A = symPot(X, Y, a, o.p, schedule); // A.self = A(x_i), A.ext = A(y_j)
  const B = symPot(Y, X, b, o.p, schedule); // B.self = B(y_j), B.ext = B(x_i)
  // H = 1/2 [ <a, B(x) - A(x)> + <b, A(y) - B(y)> ]
  const F = new Float64Array(N);
  const G = new Float64Array(M);
  for (let i = 0; i < N; i++) F[i] = B.ext[i]! - A.self[i]!;
  for (let j = 0; j < M; j++) G[j] = A.ext[j]! - B.self[j]!;
  const value = 0.5 * (scal(a, F) + scal(b, G));
  const gA = new Float64Array(N);
  const gB = new Float64Array(M);
  for (let i = 0; i < N; i++) gA[i] = 0.5 * F[i]!;
  for (let j = 0; j < M; j++) gB[j] = 0.5 * G[j]!;
  const gX = new Float64Array(N * D);
  const gY = new Float64Array(M * D);
  const uA = new Float64Array(N);
  const vA = new Float64Array(M);
  for (let i = 0; i < N; i++) uA[i] = -0.5 * a[i]!;
  for (let j = 0; j < M; j++) vA[j] = 0.5 * b[j]!;
  symPotBackward(A, X, Y, o.p, eps, uA, vA, gA, gX, gY);
  const uB = new Float64Array(M);
  const vB = new Float64Array(N);
  for (let j = 0; j < M; j++) uB[j] = -0.5 * b[j]!;
  for (let i = 0; i < N; i++) vB[i] = 0.5 * a[i]!;
  symPotBackward(B, Y, X, o.p, eps, uB, vB, gB, gY, gX);
  return {
    value,
    gradX: unflatten(gX, N, D),
    gradY: unflatten(gY, M, D),
    gradA: Array.from(gA),
    gradB: Array.from(gB),
    f: Array.from(F),
    g: Array.from(G),
    schedule,
  };
}

/* ───────────────────────────── public API ───────────────────────────── */

/** Single (non-batched) loss: x (N,D), y (M,D), a (N), b (M). */
export function denseSamplesLoss(x: number[][], y: number[][], a: number[], b: number[], o: DenseOptions): DenseResult {
  validate(x, y, a, b, o);
  if (o.loss === 'sinkhorn' || o.loss === 'hausdorff') {
    const { schedule, diameter } = resolveSchedule([x], [y], o);
    const r = o.loss === 'sinkhorn' ? sinkhornOne(x, y, a, b, o, schedule) : hausdorffOne(x, y, a, b, o, schedule);
    if (diameter !== undefined) r.diameter = diameter;
    return r;
  }
  return kernelOne(x, y, a, b, o);
}

/** `denseSamplesLoss` with loss forced to 'sinkhorn' (any `loss` field in opts is ignored). */
export function sinkhornLoss(
  x: number[][],
  y: number[][],
  a: number[],
  b: number[],
  opts: Omit<DenseOptions, 'loss'> & { loss?: LossName },
): DenseResult {
  return denseSamplesLoss(x, y, a, b, { ...opts, loss: 'sinkhorn' });
}

/** Kernel (MMD) losses: 'energy' | 'gaussian' | 'laplacian'. */
export function kernelLoss(x: number[][], y: number[][], a: number[], b: number[], opts: DenseOptions): DenseResult {
  if (opts.loss !== 'energy' && opts.loss !== 'gaussian' && opts.loss !== 'laplacian') {
    throw new GeomLossInputError(
      `kernelLoss expects loss 'energy', 'gaussian' or 'laplacian', got '${String(opts.loss)}'`,
    );
  }
  return denseSamplesLoss(x, y, a, b, opts);
}

/** Hausdorff divergence (Feydy et al. 2019), balanced (any `loss` field in opts is ignored). */
export function hausdorffLoss(
  x: number[][],
  y: number[][],
  a: number[],
  b: number[],
  opts: Omit<DenseOptions, 'loss'> & { loss?: LossName },
): DenseResult {
  return denseSamplesLoss(x, y, a, b, { ...opts, loss: 'hausdorff' });
}

/**
 * Batched loss: x (B,N,D), y (B,M,D), a (B,N), b (B,M). One value per batch item; gradients are
 * those of the SUM of the values (= per-item gradients). Sinkhorn/Hausdorff use ONE schedule for
 * the whole batch, built from the diameter of all B*N + B*M points together.
 */
export function denseSamplesLossBatch(
  x: number[][][],
  y: number[][][],
  a: number[][],
  b: number[][],
  o: DenseOptions,
): DenseBatchResult {
  checkOptions(o);
  if (!Array.isArray(x) || !Array.isArray(y) || !Array.isArray(a) || !Array.isArray(b)) {
    throw new GeomLossInputError('batched inputs must be arrays: x (B,N,D), y (B,M,D), a (B,N), b (B,M)');
  }
  const Bn = x.length;
  if (Bn === 0) throw new GeomLossInputError('empty batch');
  if (y.length !== Bn) throw new GeomLossInputError("samples 'x' and 'y' should have the same batchsize");
  if (a.length !== Bn) throw new GeomLossInputError("samples 'x' and weights 'a' should have the same batchsize");
  if (b.length !== Bn) throw new GeomLossInputError("samples 'y' and weights 'b' should have the same batchsize");
  const N = x[0]!.length;
  const M = y[0]!.length;
  for (let k = 0; k < Bn; k++) {
    validate(x[k]!, y[k]!, a[k]!, b[k]!, o);
    if (x[k]!.length !== N || y[k]!.length !== M || x[k]![0]!.length !== x[0]![0]!.length) {
      throw new GeomLossInputError('batched samples must be rectangular (B,N,D) / (B,M,D) arrays');
    }
  }
  let schedule: number[] | undefined;
  let diameter: number | undefined;
  if (o.loss === 'sinkhorn' || o.loss === 'hausdorff') {
    const s = resolveSchedule(x, y, o);
    schedule = s.schedule;
    diameter = s.diameter;
  }
  const res: DenseBatchResult = { values: [], gradX: [], gradY: [], gradA: [], gradB: [], f: [], g: [] };
  for (let k = 0; k < Bn; k++) {
    let r: DenseResult;
    if (o.loss === 'sinkhorn') r = sinkhornOne(x[k]!, y[k]!, a[k]!, b[k]!, o, schedule!);
    else if (o.loss === 'hausdorff') r = hausdorffOne(x[k]!, y[k]!, a[k]!, b[k]!, o, schedule!);
    else r = kernelOne(x[k]!, y[k]!, a[k]!, b[k]!, o);
    res.values.push(r.value);
    res.gradX.push(r.gradX);
    res.gradY.push(r.gradY);
    res.gradA.push(r.gradA);
    res.gradB.push(r.gradB);
    res.f!.push(r.f ?? []);
    res.g!.push(r.g ?? []);
  }
  if (schedule) res.schedule = schedule;
  if (diameter !== undefined) res.diameter = diameter;
  return res;
}
