// Unbalanced optimal transport with `reach`: GeomLoss's answer to outliers and to measures of
// different masses (its "unbalanced" tutorials). With reach, the marginal constraints become a KL
// penalty of strength rho = reach^p: mass far away (further than about reach) is created or destroyed
// rather than transported. Checked against a dense float64 unbalanced Sinkhorn and finite differences.
import { SamplesLoss } from 'lazytensor/geomloss';
import { Vj } from 'lazytensor';
import { sinkhornDivergence } from './_ot_reference.mjs';
import { check, rng } from './_util.mjs';

const { normal } = rng(51);
const N = 60,
  Min = 60,
  Mout = 15,
  M = Min + Mout,
  shift = [0.1, 0.05];
const x = Array.from({ length: N }, () => [0.3 + 0.05 * normal(), 0.3 + 0.05 * normal()]);
// y: the same blob moved by `shift`, plus 15 outliers far away, near (0.9, 0.9).
const y = [
  ...Array.from({ length: Min }, () => [0.3 + shift[0] + 0.05 * normal(), 0.3 + shift[1] + 0.05 * normal()]),
  ...Array.from({ length: Mout }, () => [0.9 + 0.02 * normal(), 0.9 + 0.02 * normal()]),
];
const a = new Float64Array(N).fill(1 / N),
  b = new Float64Array(M).fill(1 / M);
const blur = 0.05,
  reach = 0.2;

// 1. The divergence against the dense reference: the damped updates f = softmin / (1 + eps/rho), run
//    to convergence, and GeomLoss's unbalanced value formula (weight rho + eps/2).
const loss = new SamplesLoss({
  loss: 'sinkhorn',
  p: 2,
  blur,
  reach,
  convergence: { tol: 1e-11 },
  exactUnbalancedGradients: true,
});
const { value, grad } = await loss.valueAndGrad(x, y, { a, b });
const X = Float64Array.from(x.flat()),
  Y = Float64Array.from(y.flat());
const ref = sinkhornDivergence(X, Y, a, b, 2, blur ** 2, reach ** 2);
check(
  'S_eps,rho equals the dense float64 reference',
  Math.abs(value - ref.value) < 1e-9 * Math.abs(ref.value),
  `${value.toExponential(10)} vs ${ref.value.toExponential(10)}`,
);
// The exact gradient (exactUnbalancedGradients: GeomLoss's own use rho + eps/2 where the derivative
// has rho + eps) against central finite differences of the reference value.
const h = 1e-5;
for (const k of [37]) {
  const up = Float64Array.from(X),
    down = Float64Array.from(X);
  up[k] += h;
  down[k] -= h;
  const fd =
    (sinkhornDivergence(up, Y, a, b, 2, blur ** 2, reach ** 2).value -
      sinkhornDivergence(down, Y, a, b, 2, blur ** 2, reach ** 2).value) /
    (2 * h);
  check(
    `dS/dx[${k}] equals finite differences`,
    Math.abs(grad.x.data[k] - fd) < 1e-6 * (1e-3 + Math.abs(fd)),
    `${grad.x.data[k].toExponential(6)} vs ${fd.toExponential(6)}`,
  );
}

// 2. What reach buys: the plan leaves the outliers alone, and the barycentric map follows the blob.
for (const r of [null, reach]) {
  const plain = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur, reach: r, convergence: true });
  const plan = await plain.transportPlan(x, y, { a, b });
  const received = (await plan.sum(0)).data; // mass arriving at each y_j
  const outlierMass = received.slice(Min).reduce((s, v) => s + v, 0);
  const mass = (await plan.sum(1)).data,
    target = (await plan.mul(Vj(y)).sum(1)).data;
  let mx = 0,
    my = 0;
  for (let i = 0; i < N; i++) {
    mx += (target[2 * i] / mass[i] - x[i][0]) / N;
    my += (target[2 * i + 1] / mass[i] - x[i][1]) / N;
  }
  console.log(
    `reach ${String(r).padEnd(4)}: mass sent to the outliers ${outlierMass.toFixed(4)} (their weight ${(Mout / M).toFixed(2)}), mean displacement (${mx.toFixed(3)}, ${my.toFixed(3)})`,
  );
  if (r === null) check('balanced OT must send the outliers their full mass', Math.abs(outlierMass - Mout / M) < 1e-3);
  else {
    check(
      'unbalanced OT sends the outliers under 1% of their weight',
      outlierMass < 0.01 * (Mout / M),
      outlierMass.toExponential(1),
    );
    // The inliers of y are the blob of x moved by `shift` (up to sampling noise).
    check(
      'the barycentric map follows the blob',
      Math.hypot(mx - shift[0], my - shift[1]) < 0.02,
      `(${mx.toFixed(3)}, ${my.toFixed(3)})`,
    );
  }
}
check.done('unbalanced');
