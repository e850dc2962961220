// A plain float64 reference for the GeomLoss examples: entropic OT between two weighted point clouds
// with the cost |x - y|^2 / 2, by dense log-domain Sinkhorn iterations run to convergence. It knows
// nothing of lazytensor; the examples compare SamplesLoss (with { convergence }) against it.

/** C[i][j] = |x_i - y_j|^2 / 2 for row-major clouds of dimension D. */
function costMatrix(x, y, D) {
  const n = x.length / D,
    m = y.length / D;
  const C = [];
  for (let i = 0; i < n; i++) {
    const row = new Float64Array(m);
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += (x[i * D + d] - y[j * D + d]) ** 2;
      row[j] = s / 2;
    }
    C.push(row);
  }
  return C;
}

/** softmin_i = -eps log sum_j w_j exp((h_j - C_ij)/eps), stably. */
function softmin(C, w, h, eps, transpose) {
  const n = transpose ? C[0].length : C.length,
    m = transpose ? C.length : C[0].length;
  const out = new Float64Array(n);
  const t = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    let top = -Infinity;
    for (let j = 0; j < m; j++) {
      t[j] = Math.log(w[j]) + (h[j] - (transpose ? C[j][i] : C[i][j])) / eps;
      if (t[j] > top) top = t[j];
    }
    let s = 0;
    for (let j = 0; j < m; j++) s += Math.exp(t[j] - top);
    out[i] = -eps * (top + Math.log(s));
  }
  return out;
}

/**
 * The potentials (f on x, g on y) of entropic OT at temperature eps, balanced (rho = null) or with
 * the KL marginal penalty rho (each update damped by 1 / (1 + eps/rho)): the fixed point of
 * f = k softmin(C, b, g), g = k softmin(C^T, a, f), reached through a decreasing eps (for speed).
 */
export function otPotentials(x, y, a, b, D, eps, rho = null) {
  const C = costMatrix(x, y, D);
  let f = new Float64Array(a.length),
    g = new Float64Array(b.length);
  let e = Math.max(...C.map((row) => Math.max(...row))) * 2;
  for (;;) {
    e = Math.max(eps, e / 2);
    const k = rho === null ? 1 : 1 / (1 + e / rho);
    for (let it = 0; it < 100000; it++) {
      // Averaged updates (as GeomLoss's symmetric ones): plain alternating updates oscillate on the
      // x-x problems and converge far more slowly.
      const f2 = softmin(C, b, g, e, false).map((v, i) => 0.5 * (f[i] + k * v));
      const g2 = softmin(C, a, f, e, true).map((v, j) => 0.5 * (g[j] + k * v));
      let change = 0;
      for (let i = 0; i < f.length; i++) change = Math.max(change, Math.abs(f2[i] - f[i]));
      for (let j = 0; j < g.length; j++) change = Math.max(change, Math.abs(g2[j] - g[j]));
      [f, g] = [f2, g2];
      if (change < (e === eps ? 1e-13 : 1e-6) * e) break;
    }
    if (e === eps) return { f, g, C };
  }
}

/** The Sinkhorn divergence S_eps and its gradient with respect to x (balanced: rho = null). */
export function sinkhornDivergence(x, y, a, b, D, eps, rho = null) {
  const xy = otPotentials(x, y, a, b, D, eps, rho);
  const xx = otPotentials(x, x, a, a, D, eps, rho);
  const yy = otPotentials(y, y, b, b, D, eps, rho);
  const dot = (w, v) => w.reduce((s, t, k) => s + t * v[k], 0);
  let value;
  if (rho === null)
    value =
      dot(
        a,
        xy.f.map((v, i) => v - xx.f[i]),
      ) +
      dot(
        b,
        xy.g.map((v, j) => v - yy.g[j]),
      );
  else {
    // GeomLoss's unbalanced formula: (rho + eps/2) <a, exp(-f_aa/rho) - exp(-f_ba/rho)> + (same for b).
    const e = (v) => Math.exp(-v / rho);
    value =
      (rho + eps / 2) *
      (dot(
        a,
        xy.f.map((v, i) => e(xx.f[i]) - e(v)),
      ) +
        dot(
          b,
          xy.g.map((v, j) => e(yy.g[j]) - e(v)),
        ));
  }
  // Balanced gradient (envelope theorem): sum_j pi_ij (x_i - y_j) - sum_k pi^xx_ik (x_i - x_k).
  const gradX = new Float64Array(x.length);
  if (rho === null) {
    const n = a.length;
    for (let i = 0; i < n; i++) {
      for (const [P, other, w, h, f] of [
        [xy, y, b, xy.g, xy.f],
        [xx, x, a, xx.g, xx.f],
      ]) {
        const sign = P === xy ? 1 : -1;
        for (let j = 0; j < w.length; j++) {
          const pij = a[i] * w[j] * Math.exp((f[i] + h[j] - P.C[i][j]) / eps);
          for (let d = 0; d < D; d++) gradX[i * D + d] += sign * pij * (x[i * D + d] - other[j * D + d]);
        }
      }
    }
  }
  return { value, gradX, f: xy.f, g: xy.g };
}
