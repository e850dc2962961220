// Kernel interpolation / Gaussian-process regression: a port of KeOps's "RBF interpolation" and
// KernelSolve tutorials. Solve (alpha I + K) a = b by conjugate gradients, each iteration one
// reduction, then differentiate the solution with respect to b, the points and the kernel's bandwidth
// by implicit differentiation (solveVjp). Checked against a dense Cholesky solve in plain float64 JS
// and finite differences of it.
import { Pm, Vi, Vj, solveVjp } from 'lazytensor';
import { check, relErr, rng } from './_util.mjs';

const N = 800,
  alpha = 0.1;
const { uniform, normal } = rng(21);
const xs = Float64Array.from({ length: N }, uniform); // 1-D inputs in [0, 1]
const signal = (t) => t + 0.5 * Math.sin(6 * t) + 0.1 * Math.sin(20 * t); // KeOps's test function
const bs = Float64Array.from(xs, (t) => signal(t) + 0.05 * normal()); // noisy observations
const gamma = 50; // the kernel exp(-gamma |x - y|^2), a bandwidth of 0.1

// The points appear twice: as x_i and as x_j. They are two variables, so a gradient with respect to
// "the points" is the sum of both ("Chaining gradients is manual").
const xi = Vi(xs, 1),
  xj = Vj(xs, 1),
  g = Pm(gamma);
const K = xi.sqDist(xj).mul(g).neg().exp();
const res = await K.solve(bs, { alpha, tol: 1e-10 });
console.log(
  `solve, N = ${N}, alpha = ${alpha}: ${res.iterations} CG iterations, relative residual ${res.relativeResidual.toExponential(1)}`,
);

// --- the plain float64 reference: the dense matrix and a Cholesky factorisation -------------------
function denseSolve(xv, gv, rhs) {
  const A = new Float64Array(N * N);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < N; j++) A[i * N + j] = Math.exp(-gv * (xv[i] - xv[j]) ** 2) + (i === j ? alpha : 0);
  for (let j = 0; j < N; j++) {
    for (let k = 0; k < j; k++) A[j * N + j] -= A[j * N + k] ** 2;
    A[j * N + j] = Math.sqrt(A[j * N + j]);
    for (let i = j + 1; i < N; i++) {
      let s = A[i * N + j];
      for (let k = 0; k < j; k++) s -= A[i * N + k] * A[j * N + k];
      A[i * N + j] = s / A[j * N + j];
    }
  }
  const z = Float64Array.from(rhs);
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < i; k++) z[i] -= A[i * N + k] * z[k];
    z[i] /= A[i * N + i];
  }
  for (let i = N - 1; i >= 0; i--) {
    for (let k = i + 1; k < N; k++) z[i] -= A[k * N + i] * z[k];
    z[i] /= A[i * N + i];
  }
  return z;
}
const dense = denseSolve(xs, gamma, bs);
check(
  'the solution equals the dense Cholesky solve',
  relErr(res.solution.data, dense) < 1e-7,
  `rel. error ${relErr(res.solution.data, dense).toExponential(1)}`,
);

// Prediction at new points: f(t) = sum_j k(t, x_j) a_j. The solution (a Tensor [N, 1]) goes back in
// as a j-variable.
const ts = Float64Array.from({ length: 200 }, (_, k) => 0.1 + (0.8 * k) / 199);
const pred = await Vi(ts, 1).sqDist(xj).mul(-gamma).exp().mul(Vj(res.solution)).sum(1);
const rms = Math.sqrt(pred.data.reduce((s, v, k) => s + (v - signal(ts[k])) ** 2, 0) / ts.length);
console.log(`prediction on [0.1, 0.9]: RMS error ${rms.toFixed(4)} against the noiseless signal (noise std 0.05)`);
check('the regression recovers the signal', rms < 0.05, rms.toFixed(4));

// --- gradients of L = <c, a> ------------------------------------------------------------------------
const cs = Float64Array.from({ length: N }, normal);
// The solve's result carries its options: solveVjp reuses its alpha (and dtype, ranges,
// preconditioner); only the tolerance of the adjoint solve is given here. A different alpha would be
// an InputError, not a silently wrong gradient.
const grads = await solveVjp(K, res, cs, [xi, xj, g], { tol: 1e-10 });
const L = (a) => a.reduce((s, v, k) => s + v * cs[k], 0);
// dL/db = (alpha I + K)^-1 c.
check('dL/db equals the dense solve of c', relErr(grads.b.data, denseSolve(xs, gamma, cs)) < 1e-7);
// dL/dgamma and dL/dx_k by central finite differences of the dense solve.
const h = 1e-5;
const fdGamma = (L(denseSolve(xs, gamma + h, bs)) - L(denseSolve(xs, gamma - h, bs))) / (2 * h);
const dGamma = grads.wrt[2].data[0];
check(
  'dL/dgamma equals finite differences',
  Math.abs(dGamma - fdGamma) < 1e-5 * Math.abs(fdGamma),
  `${dGamma.toExponential(6)} vs ${fdGamma.toExponential(6)}`,
);
for (const k of [3, 400]) {
  const shifted = (e) => {
    const v = Float64Array.from(xs);
    v[k] += e;
    return L(denseSolve(v, gamma, bs));
  };
  const fd = (shifted(h) - shifted(-h)) / (2 * h);
  const d = grads.wrt[0].data[k] + grads.wrt[1].data[k]; // x as the i-variable plus x as the j-variable
  check(
    `dL/dx_${k} equals finite differences`,
    Math.abs(d - fd) < 1e-5 * (1 + Math.abs(fd)),
    `${d.toExponential(6)} vs ${fd.toExponential(6)}`,
  );
}
check.done('kernel-interpolation');
