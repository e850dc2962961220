// The transport plan, the barycentric map and a point-cloud registration: a port of GeomLoss's
// "label transfer" and registration tutorials. transportPlan returns the N x M plan as a symbolic
// matrix pi_ij = a_i b_j exp((f_i + g_j - C_ij)/eps): reduce it, never store it. Checked against the
// plan of a dense float64 Sinkhorn, then used to recover a rotation and a translation.
import { SamplesLoss } from 'lazytensor/geomloss';
import { Vj } from 'lazytensor';
import { otPotentials } from './_ot_reference.mjs';
import { check, relErr, rng } from './_util.mjs';

const { uniform, normal } = rng(41);

// 1. The plan against the dense reference (120 and 100 points, non-uniform weights).
{
  const N = 120,
    M = 100,
    blur = 0.1,
    eps = blur ** 2;
  const x = Array.from({ length: N }, () => [uniform(), uniform()]);
  const y = Array.from({ length: M }, () => [0.5 + 0.3 * normal(), 0.5 + 0.3 * normal()]);
  const wa = Array.from({ length: N }, () => 0.5 + uniform()),
    wb = Array.from({ length: M }, () => 0.5 + uniform());
  const a = wa.map((v) => v / wa.reduce((s, t) => s + t)),
    b = wb.map((v) => v / wb.reduce((s, t) => s + t));
  // Balanced OT needs a and b of equal total mass (unequal masses are a GeomLossError unless `reach`
  // is set): both are normalised to 1.
  const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur, convergence: { tol: 1e-11 } });
  const plan = await loss.transportPlan(x, y, { a, b });
  const ref = otPotentials(Float64Array.from(x.flat()), Float64Array.from(y.flat()), a, b, 2, eps);
  const dense = plan.dense().flat(2); // small sizes only: N x M x 1 nested arrays
  const want = [];
  for (let i = 0; i < N; i++)
    for (let j = 0; j < M; j++) want.push(a[i] * b[j] * Math.exp((ref.f[i] + ref.g[j] - ref.C[i][j]) / eps));
  check(
    'the plan equals the dense float64 plan',
    relErr(dense, want) < 1e-8,
    `rel. error ${relErr(dense, want).toExponential(1)}`,
  );
  const rows = await plan.sum(1),
    cols = await plan.sum(0);
  check('its marginals are a and b', relErr(rows.data, a) < 1e-8 && relErr(cols.data, b) < 1e-8);
  // The barycentric map T(x_i) = sum_j pi_ij y_j / sum_j pi_ij: one reduction of dimension 2.
  const T = await plan.mul(Vj(y)).sum(1);
  const Tref = [];
  for (let i = 0; i < N; i++)
    for (let d = 0; d < 2; d++) Tref.push(want.slice(i * M, i * M + M).reduce((s, p, j) => s + p * y[j][d], 0) / a[i]);
  check(
    'the barycentric map equals the reference',
    relErr(
      T.data.map((v, k) => v / rows.data[k >> 1]),
      Tref,
    ) < 1e-8,
  );
}

// 2. Registration: y is x rotated by 0.4 rad, shifted by (0.2, -0.1), noisy (3e-3) and shuffled. Each
//    iteration moves x to its barycentric targets by the best rigid motion (Procrustes, closed form).
const N = 400,
  angle = 0.4,
  shift = [0.2, -0.1];
// The shape: three blobs of 50, 120 and 230 points. OT maps are gradients of convex functions, with
// no rotational part, so registration relies on structure the plan can tell apart: here the masses.
const blob = (i) => (i < 50 ? 0 : i < 170 ? 1 : 2);
const shape = Array.from({ length: N }, (_, i) => [
  0.3 * Math.cos(2.1 * blob(i)) + 0.03 * normal(),
  0.3 * Math.sin(2.1 * blob(i)) + 0.03 * normal(),
]);
const y = shape.map(([p, q]) => [
  Math.cos(angle) * p - Math.sin(angle) * q + shift[0] + 0.003 * normal(),
  Math.sin(angle) * p + Math.cos(angle) * q + shift[1] + 0.003 * normal(),
]);
for (let i = N - 1; i > 0; i--) {
  const j = Math.floor(uniform() * (i + 1));
  [y[i], y[j]] = [y[j], y[i]];
}
const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur: 0.01, scaling: 0.7 });
let theta = 0,
  tx = 0,
  ty = 0;
const t0 = performance.now();
for (let it = 0; it < 4; it++) {
  const moved = shape.map(([p, q]) => [
    Math.cos(theta) * p - Math.sin(theta) * q + tx,
    Math.sin(theta) * p + Math.cos(theta) * q + ty,
  ]);
  const plan = await loss.transportPlan(moved, y);
  const mass = await plan.sum(1),
    target = await plan.mul(Vj(y)).sum(1);
  // Procrustes between the shape and its targets (uniform weights): the rotation angle from the
  // centred cross-covariance, then the translation.
  const T = shape.map((_, i) => [target.data[2 * i] / mass.data[i], target.data[2 * i + 1] / mass.data[i]]);
  const mean = (P, d) => P.reduce((s, p) => s + p[d], 0) / N;
  const [sx, sy, qx, qy] = [mean(shape, 0), mean(shape, 1), mean(T, 0), mean(T, 1)];
  let dot = 0,
    cross = 0;
  shape.forEach(([p, q], i) => {
    dot += (p - sx) * (T[i][0] - qx) + (q - sy) * (T[i][1] - qy);
    cross += (p - sx) * (T[i][1] - qy) - (q - sy) * (T[i][0] - qx);
  });
  // atan2 in plain JS (formulas have no atan2: "Missing operations").
  theta = Math.atan2(cross, dot);
  tx = qx - (Math.cos(theta) * sx - Math.sin(theta) * sy);
  ty = qy - (Math.sin(theta) * sx + Math.cos(theta) * sy);
}
console.log(`registration, ${N} points, 4 iterations: ${(performance.now() - t0).toFixed(0)} ms`);
console.log(
  `  rotation ${theta.toFixed(4)} rad (true ${angle}), translation (${tx.toFixed(4)}, ${ty.toFixed(4)}) (true ${shift})`,
);
check('the rotation is recovered to 2e-3 rad', Math.abs(theta - angle) < 2e-3);
check('the translation is recovered to 2e-3', Math.hypot(tx - shift[0], ty - shift[1]) < 2e-3);
check.done('transport');
