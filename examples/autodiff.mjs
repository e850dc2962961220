// Automatic differentiation of formulas and reductions: a port of KeOps's gradient tutorials
// (torch.autograd.grad through a kernel sum, second order, Hessian-vector products). Derivatives are
// formulas again, reduced by the same engines. Checked against closed forms and central finite
// differences in plain float64 JS. Last, `valueAndGrad`: the gradient of a loss made of several
// reductions (torch's loss.backward()), with one input used as both x_i and x_j.
import { Pm, Tensor, Vi, Vj, reduction, valueAndGrad, vjp } from 'lazytensor';
import { check, relErr, rng } from './_util.mjs';

const N = 300,
  M = 400,
  D = 3,
  gamma = 2;
const { uniform, normal } = rng(13);
const xs = Float64Array.from({ length: N * D }, uniform);
const ys = Float64Array.from({ length: M * D }, uniform);
const bs = Float64Array.from({ length: M }, uniform);
const es = Float64Array.from({ length: N }, normal); // a cotangent for out_i
const ws = Float64Array.from({ length: N * D }, normal); // a direction for the Hessian

const x = Vi(xs, D, { name: 'x' }),
  y = Vj(ys, D, { name: 'y' }),
  b = Vj(bs, 1, { name: 'b' }),
  g = Pm(gamma, { name: 'gamma' });
const e = Vi(es, 1, { name: 'e' }),
  w = Vi(ws, D, { name: 'w' });
const F = x.sqDist(y).mul(g).neg().exp().mul(b); // F_ij = exp(-gamma |x_i - y_j|^2) b_j
console.log(`F = ${F}`);
// out_i = sum_j F_ij, and L = sum_i e_i out_i in plain float64, for finite differences.
const L = (xv, yv, bv, gv) => {
  let s = 0;
  for (let i = 0; i < N; i++)
    for (let j = 0; j < M; j++) {
      let d2 = 0;
      for (let d = 0; d < D; d++) d2 += (xv[i * D + d] - yv[j * D + d]) ** 2;
      s += es[i] * Math.exp(-gv * d2) * bv[j];
    }
  return s;
};
// d out_i / d x_i in closed form: sum_j -2 gamma (x_i - y_j) F_ij.
const gradRef = (xv) => {
  const out = new Float64Array(N * D);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < M; j++) {
      let d2 = 0;
      for (let d = 0; d < D; d++) d2 += (xv[i * D + d] - ys[j * D + d]) ** 2;
      const f = Math.exp(-gamma * d2) * bs[j];
      for (let d = 0; d < D; d++) out[i * D + d] += -2 * gamma * (xv[i * D + d] - ys[j * D + d]) * f;
    }
  return out;
};

// 1. The gradient as a formula: (dF/dx)^T e, summed over j (KeOps: grad(F.sum(1), x, e)).
const gx = await F.grad(x, e).sum(1); // [N, D]
const want = gradRef(xs).map((v, k) => v * es[Math.floor(k / D)]);
check(
  'F.grad(x, e).sum(1) equals the closed form',
  relErr(gx.data, want) < 1e-13,
  relErr(gx.data, want).toExponential(1),
);

// 2. vjp of the reduction with respect to every input at once, each one reduction: over j for x, over
//    i for y and b, over both for the parameter gamma. Checked by finite differences of L.
//    A variable the formula does not use is an InputError, as in torch (allowUnused: true gives zeros).
const [dx, dy, db, dg] = await vjp(reduction(F, 'sum', 1), { wrt: [x, y, b, g], cotangent: es });
const h = 1e-4; // central differences: error ~h^2, well above the rounding of L
const fd = (which, k) => {
  const args = [xs, ys, bs, Float64Array.of(gamma)].map((a) => Float64Array.from(a));
  args[which][k] += h;
  const up = L(args[0], args[1], args[2], args[3][0]);
  args[which][k] -= 2 * h;
  return (up - L(args[0], args[1], args[2], args[3][0])) / (2 * h);
};
for (const [name, t, which, k] of [
  ['x[7]', dx, 0, 7],
  ['y[100]', dy, 1, 100],
  ['b[5]', db, 2, 5],
  ['gamma', dg, 3, 0],
]) {
  const ref = fd(which, k);
  check(
    `vjp: dL/d${name} equals finite differences`,
    Math.abs(t.data[k] - ref) < 1e-6 * (1 + Math.abs(ref)),
    `${t.data[k].toExponential(8)} vs ${ref.toExponential(8)}`,
  );
}

// 3. Second order: the Hessian-vector product H_i w_i, H_i = sum_j d^2 F_ij / dx_i^2, as the gradient
//    of the gradient (KeOps: grad(grad(F, x, 1), x, w)). Checked by finite differences of the
//    closed-form gradient along w.
const hvp = await F.grad(x, 1).grad(x, w).sum(1);
const eps = 1e-5;
const plus = gradRef(xs.map((v, k) => v + eps * ws[k])),
  minus = gradRef(xs.map((v, k) => v - eps * ws[k]));
const hvpRef = plus.map((v, k) => (v - minus[k]) / (2 * eps));
check(
  'Hessian-vector product equals finite differences',
  relErr(hvp.data, hvpRef) < 1e-7,
  relErr(hvp.data, hvpRef).toExponential(1),
);

// 4. Forward mode (a directional derivative) and the Laplacian, as in KeOps.
const dir = await F.diff(x, w).sum(1); // [N, 1]: (dF/dx) w
const grad0 = gradRef(xs);
const dirRef = Array.from({ length: N }, (_, i) =>
  grad0.slice(i * D, i * D + D).reduce((s, v, d) => s + v * ws[i * D + d], 0),
);
check('F.diff(x, w) equals grad . w', relErr(dir.data, dirRef) < 1e-13);
const lap = await F.laplacian(x).sum(1);
const lapRef = Array.from({ length: N }, (_, i) => {
  let s = 0;
  for (let j = 0; j < M; j++) {
    let d2 = 0;
    for (let d = 0; d < D; d++) d2 += (xs[i * D + d] - ys[j * D + d]) ** 2;
    s += Math.exp(-gamma * d2) * bs[j] * (4 * gamma * gamma * d2 - 2 * gamma * D);
  }
  return s;
});
check(
  'F.laplacian(x) equals the closed form',
  relErr(lap.data, lapRef) < 1e-12,
  relErr(lap.data, lapRef).toExponential(1),
);

// 5. A loss of two reductions through the tape: an energy of the points x among themselves (x is both
//    the i- and the j-variable) plus their attraction to y, L(x) = sum_i log sum_j exp(-|x_i - x_j|^2)
//    - sum_i sum_j exp(-|x_i - y_j|^2) b_j. valueAndGrad differentiates every reduction (one vjp each)
//    and the Tensor arithmetic between them, and sums the pieces of x itself.
const energy = valueAndGrad(async ([X], tape) => {
  const self = await tape.reduce(Vi(X).sqDist(Vj(X)).neg(), 'logSumExp', 1); // [N, 1]
  const pull = await tape.reduce(Vi(X).sqDist(y).neg().exp().mul(b), 'sum', 1); // [N, 1]
  return self.sub(pull).total();
});
const points = new Tensor(xs, [N, D], 'wasm');
const { value: E, grad: dE } = await energy([points]);
const plainE = (xv) => {
  let s = 0;
  for (let i = 0; i < N; i++) {
    const d2 = (j, zv) => [0, 1, 2].reduce((t, d) => t + (xv[i * D + d] - zv[j * D + d]) ** 2, 0);
    let z = 0;
    for (let j = 0; j < N; j++) z += Math.exp(-d2(j, xv));
    s += Math.log(z);
    for (let j = 0; j < M; j++) s -= Math.exp(-d2(j, ys)) * bs[j];
  }
  return s;
};
check('valueAndGrad: the value equals plain float64', Math.abs(E - plainE(xs)) < 1e-10 * Math.abs(E));
for (const k of [4, 500]) {
  const v = Float64Array.from(xs);
  v[k] += h;
  const up = plainE(v);
  v[k] -= 2 * h;
  const ref = (up - plainE(v)) / (2 * h);
  check(
    `valueAndGrad: dL/dx[${k}] equals finite differences`,
    Math.abs(dE[0].data[k] - ref) < 1e-6 * (1 + Math.abs(ref)),
    `${dE[0].data[k].toExponential(8)} vs ${ref.toExponential(8)}`,
  );
}
check.done('autodiff');
