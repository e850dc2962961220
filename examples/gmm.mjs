// A Gaussian mixture fitted by expectation-maximisation. KeOps's "Gaussian Mixture Model" tutorial
// fits the mixture by gradient descent on the log-likelihood (here: `valueAndGrad` over the
// reductions, see autodiff.mjs); EM needs no gradient and each iteration is two reductions:
//   E-step: log p(x_i) = logsumexp_j [log w_j - D/2 log(2 pi s_j) - |x_i - mu_j|^2 / (2 s_j)]
//   M-step: sum_i r_ij [1, x_i, |x_i|^2] with the responsibilities r_ij = exp(F_ij - log p(x_i)).
// The N x K responsibility matrix is never stored. Checked against the same EM in plain float64 JS.
import { Pm, Vi, Vj } from 'lazytensor';
import { check, relErr, rng } from './_util.mjs';

const N = 5000,
  D = 2,
  K = 4;
// Data: four isotropic Gaussian blobs of different sizes and weights.
const { normal, uniform } = rng(5);
const truth = [
  [0, 0, 0.3],
  [2, 1, 0.5],
  [-1, 2, 0.2],
  [1, -2, 0.4],
];
const xs = new Float64Array(N * D);
for (let i = 0; i < N; i++) {
  const [cx, cy, s] = truth[Math.floor(uniform() ** 1.5 * K)];
  xs[2 * i] = cx + s * normal();
  xs[2 * i + 1] = cy + s * normal();
}
const x = Vi(xs, D);
const stats = Pm([1]).concat(x).concat(x.sqNorm2()); // [1, x_i, |x_i|^2]: dimension D + 2

// Initial parameters: K data points as means, unit variances, equal weights.
const init = () => ({
  mu: xs.slice(0, K * D).map((v, k) => v + 0.1 * (k % 3)),
  s: new Float64Array(K).fill(1),
  w: new Float64Array(K).fill(1 / K),
});

/** log w_j - D/2 log(2 pi s_j), and 1/(2 s_j): the two per-component constants of the E-step. */
const constants = ({ s, w }) => ({
  c: Float64Array.from(w, (wj, j) => Math.log(wj) - (D / 2) * Math.log(2 * Math.PI * s[j])),
  inv: Float64Array.from(s, (sj) => 1 / (2 * sj)),
});

/** The M-step from the statistics sum_i r_ij [1, x_i, |x_i|^2] (row-major [K, D + 2]). */
function update(S) {
  const mu = new Float64Array(K * D),
    s = new Float64Array(K),
    w = new Float64Array(K);
  for (let j = 0; j < K; j++) {
    const nj = S[j * (D + 2)];
    let m2 = 0;
    for (let d = 0; d < D; d++) {
      mu[j * D + d] = S[j * (D + 2) + 1 + d] / nj;
      m2 += mu[j * D + d] ** 2;
    }
    s[j] = (S[j * (D + 2) + D + 1] / nj - m2) / D;
    w[j] = nj / N;
  }
  return { mu, s, w };
}

async function em(iterations) {
  let p = init();
  const loglik = [];
  for (let it = 0; it < iterations; it++) {
    const { c, inv } = constants(p);
    const F = Vj(c, 1).sub(x.sqDist(Vj(p.mu, D)).mul(Vj(inv, 1))); // F_ij, dimension 1
    const logp = await F.logSumExp(1); // [N, 1]
    loglik.push(logp.data.reduce((a, v) => a + v, 0));
    // The result goes back into a formula as a new i-variable (its shape [N, 1] gives the dimension).
    const r = F.sub(Vi(logp)).exp();
    p = update((await r.mul(stats).sum(0)).data); // reduce over i: [K, D + 2]
  }
  return { p, loglik };
}

/** The reference: the same EM, the N x K matrix in plain float64. */
function emReference(iterations) {
  let p = init();
  const loglik = [];
  for (let it = 0; it < iterations; it++) {
    const { c, inv } = constants(p);
    const S = new Float64Array(K * (D + 2));
    let total = 0;
    for (let i = 0; i < N; i++) {
      const F = Array.from(
        { length: K },
        (_, j) => c[j] - inv[j] * ((xs[2 * i] - p.mu[2 * j]) ** 2 + (xs[2 * i + 1] - p.mu[2 * j + 1]) ** 2),
      );
      const m = Math.max(...F);
      const lp = m + Math.log(F.reduce((a, v) => a + Math.exp(v - m), 0));
      total += lp;
      for (let j = 0; j < K; j++) {
        const r = Math.exp(F[j] - lp);
        const row = [1, xs[2 * i], xs[2 * i + 1], xs[2 * i] ** 2 + xs[2 * i + 1] ** 2];
        for (let q = 0; q < D + 2; q++) S[j * (D + 2) + q] += r * row[q];
      }
    }
    loglik.push(total);
    p = update(S);
  }
  return { p, loglik };
}

const t0 = performance.now();
const ours = await em(40);
console.log(`EM, N = ${N} points, K = ${K} components, 40 iterations: ${(performance.now() - t0).toFixed(0)} ms`);
for (let j = 0; j < K; j++) {
  console.log(
    `  component ${j}: weight ${ours.p.w[j].toFixed(3)}, mean (${ours.p.mu[2 * j].toFixed(3)}, ${ours.p.mu[2 * j + 1].toFixed(3)}), std ${Math.sqrt(ours.p.s[j]).toFixed(3)}`,
  );
}
console.log(`  log-likelihood: ${ours.loglik[0].toFixed(2)} -> ${ours.loglik.at(-1).toFixed(2)}`);
const ref = emReference(40);
check(
  'the log-likelihood never decreases (EM)',
  ours.loglik.every((v, k) => k === 0 || v >= ours.loglik[k - 1] - 1e-9),
);
check(
  'log-likelihoods equal the float64 reference',
  relErr(ours.loglik, ref.loglik) < 1e-12,
  relErr(ours.loglik, ref.loglik).toExponential(1),
);
const err = Math.max(relErr(ours.p.mu, ref.p.mu), relErr(ours.p.s, ref.p.s), relErr(ours.p.w, ref.p.w));
check('parameters equal the float64 reference', err < 1e-10, err.toExponential(1));
check(
  'the four true standard deviations are found',
  truth.every(([, , s]) => ours.p.s.some((v) => Math.abs(Math.sqrt(v) - s) < 0.03)),
);
check.done('gmm');
