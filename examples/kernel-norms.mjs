// Kernel norms (MMD) compared: a port of GeomLoss's "kernel norms" tutorial. The energy distance,
// the Gaussian and the Laplacian kernel norms, and a custom kernel, between two weighted clouds:
//   L = 1/2 <a, K_xx a> + 1/2 <b, K_yy b> - <a, K_xy b>.
// Values and gradients are checked against the dense formula in plain float64 JS (with GeomLoss's
// distance clamp) and finite differences; then each norm is followed as y moves away.
import { SamplesLoss } from 'lazytensor/geomloss';
import { check, rng } from './_util.mjs';

const { uniform, normal } = rng(61);
const N = 300,
  M = 400,
  blur = 0.1;
const x = Array.from({ length: N }, () => [0.4 + 0.1 * normal(), 0.5 + 0.1 * normal()]);
const y = Array.from({ length: M }, () => [0.6 + 0.15 * uniform(), 0.5 + 0.3 * uniform()]);
const a = Array.from({ length: N }, () => 1 / N),
  b = Array.from({ length: M }, () => 1 / M);

// GeomLoss's kernels of the distance r = sqrt(max(|x - y|^2, 1e-8)) (the clamp keeps the gradient of
// r finite at 0); the Gaussian uses |x - y|^2 itself. The custom one is an inverse multiquadric.
const dist = (p, q, s = 1) => Math.sqrt(Math.max(((p[0] - q[0]) / s) ** 2 + ((p[1] - q[1]) / s) ** 2, 1e-8));
const kernels = {
  energy: (p, q) => -dist(p, q),
  gaussian: (p, q) => Math.exp(-(((p[0] - q[0]) / blur) ** 2 + ((p[1] - q[1]) / blur) ** 2) / 2),
  laplacian: (p, q) => Math.exp(-dist(p, q, blur)),
  multiquadric: (p, q) => 1 / Math.sqrt(1 + (((p[0] - q[0]) / blur) ** 2 + ((p[1] - q[1]) / blur) ** 2)),
};
const mmd = (k, X, Y) => {
  let s = 0;
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) s += 0.5 * a[i] * a[j] * k(X[i], X[j]);
  for (let i = 0; i < M; i++) for (let j = 0; j < M; j++) s += 0.5 * b[i] * b[j] * k(Y[i], Y[j]);
  for (let i = 0; i < N; i++) for (let j = 0; j < M; j++) s -= a[i] * b[j] * k(X[i], Y[j]);
  return s;
};
const options = {
  energy: { loss: 'energy' },
  gaussian: { loss: 'gaussian', blur },
  laplacian: { loss: 'laplacian', blur },
  // A custom kernel is a formula of the i- and j-variables (it must be symmetric).
  multiquadric: {
    loss: 'gaussian',
    kernel: (p, q) =>
      p
        .sqDist(q)
        .mul(1 / (blur * blur))
        .add(1)
        .rsqrt(),
  },
};

for (const [name, k] of Object.entries(kernels)) {
  const loss = new SamplesLoss(options[name]);
  const { value, grad } = await loss.valueAndGrad(x, y, { a, b });
  const want = mmd(k, x, y);
  // The gradient with respect to one coordinate, by central differences of the dense formula.
  const h = 1e-5,
    i = 17;
  const moved = (e) => x.map((p, r) => (r === i ? [p[0] + e, p[1]] : p));
  const fd = (mmd(k, moved(h), y) - mmd(k, moved(-h), y)) / (2 * h);
  console.log(`${name.padEnd(12)} L = ${value.toExponential(8)} (reference ${want.toExponential(8)})`);
  check(
    `${name}: value equals the dense formula`,
    Math.abs(value - want) < 1e-11 * Math.abs(want),
    `rel. error ${(Math.abs(value - want) / Math.abs(want)).toExponential(1)}`,
  );
  check(
    `${name}: dL/dx equals finite differences`,
    Math.abs(grad.x.data[2 * i] - fd) < 1e-6 * (1e-4 + Math.abs(fd)),
    `${grad.x.data[2 * i].toExponential(6)} vs ${fd.toExponential(6)}`,
  );
}

// How the norms see a translation of y by t: the energy distance keeps growing (about linearly),
// the Gaussian and Laplacian norms saturate once t is several blurs (their gradients vanish there,
// which is why GeomLoss's tutorial flows stall with them and not with the energy distance).
const ts = [0, 0.25, 0.5, 1, 2];
for (const name of ['energy', 'gaussian', 'laplacian']) {
  const loss = new SamplesLoss(options[name]);
  const curve = [];
  for (const t of ts)
    curve.push(
      await loss.value(
        x,
        y.map(([p, q]) => [p + t, q]),
      ),
    );
  console.log(`${name.padEnd(9)} L(t) for t = ${ts.join(', ')}: ${curve.map((v) => v.toFixed(4)).join(', ')}`);
  check(`${name}: L(t) never decreases`, curve.every((v, k2) => k2 === 0 || v >= curve[k2 - 1]) && curve[1] > curve[0]);
  if (name === 'energy')
    check('energy: L(2) - L(1) is about the shift (linear growth)', Math.abs(curve[4] - curve[3] - 1) < 0.05);
  else check(`${name}: saturated, L(2) within 1% of L(1)`, Math.abs(curve[4] / curve[3] - 1) < 0.01);
}
check.done('kernel-norms');
