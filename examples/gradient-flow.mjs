// A Wasserstein gradient flow: a port of GeomLoss's "Gradient flows in 2D" tutorial. The points x_i
// follow x_i <- x_i - lr * grad_{x_i} S(x, y) / a_i for the Sinkhorn divergence S, so the cloud x
// flows onto y. The gradient is first checked against a dense float64 Sinkhorn run to convergence.
import { SamplesLoss } from 'lazytensor/geomloss';
import { Vi, Vj } from 'lazytensor';
import { sinkhornDivergence } from './_ot_reference.mjs';
import { check, relErr, rng } from './_util.mjs';

const { uniform, normal } = rng(31);
// x: a disk around (0.3, 0.3); y: a ring around (0.65, 0.6).
const disk = (n) =>
  Array.from({ length: n }, () => {
    const r = 0.15 * Math.sqrt(uniform()),
      t = 2 * Math.PI * uniform();
    return [0.3 + r * Math.cos(t), 0.3 + r * Math.sin(t)];
  });
const ring = (n) =>
  Array.from({ length: n }, () => {
    const r = 0.2 + 0.02 * normal(),
      t = 2 * Math.PI * uniform();
    return [0.65 + r * Math.cos(t), 0.6 + r * Math.sin(t)];
  });

// 1. The gradient we follow, on 150 + 120 points, against the dense float64 reference. GeomLoss's
//    fixed epsilon schedule stops before convergence; { convergence } iterates at the final
//    temperature until the potentials settle, which the reference also does.
{
  const x = disk(150),
    y = ring(120),
    blur = 0.1;
  const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur, convergence: { tol: 1e-11 } });
  const { value, grad } = await loss.valueAndGrad(x, y); // uniform weights 1/N, 1/M
  const ref = sinkhornDivergence(
    Float64Array.from(x.flat()),
    Float64Array.from(y.flat()),
    new Float64Array(150).fill(1 / 150),
    new Float64Array(120).fill(1 / 120),
    2,
    blur ** 2,
  );
  check(
    'S_eps equals the dense float64 Sinkhorn',
    Math.abs(value - ref.value) < 1e-9 * Math.abs(ref.value),
    `${value.toExponential(10)} vs ${ref.value.toExponential(10)}`,
  );
  check(
    'grad_x S equals the dense reference',
    relErr(grad.x.data, ref.gradX) < 1e-7,
    `rel. error ${relErr(grad.x.data, ref.gradX).toExponential(1)}`,
  );
}

// 2. The flow: 500 points onto 500, GeomLoss's default schedule (no convergence option).
const N = 500,
  lr = 0.2,
  steps = 15;
const xs = Float64Array.from(disk(N).flat()),
  ys = ring(N);
const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur: 0.05, scaling: 0.5 });
const values = [];
const t0 = performance.now();
for (let step = 0; step <= steps; step++) {
  // Points as { data, shape }: the same flat array is updated in place between steps.
  const { value, grad } = await loss.valueAndGrad({ data: xs, shape: [N, 2] }, ys);
  values.push(value);
  if (step === steps) break;
  // grad / a_i = N grad: the Wasserstein gradient, the displacement toward the transport target.
  for (let k = 0; k < xs.length; k++) xs[k] -= lr * N * grad.x.data[k];
}
console.log(`gradient flow, N = M = ${N}, ${steps} steps: ${(performance.now() - t0).toFixed(0)} ms`);
console.log(
  `  S(x, y): ${values
    .map((v, k) => (k % 3 === 0 ? v.toExponential(2) : null))
    .filter(Boolean)
    .join(' -> ')}`,
);
check(
  'the loss decreases at every step',
  values.every((v, k) => k === 0 || v < values[k - 1]),
);
check(
  'the loss falls by more than 95%',
  values.at(-1) < 0.05 * values[0],
  `${values[0].toExponential(2)} -> ${values.at(-1).toExponential(2)}`,
);
// Every point now sits near the ring: the distance to its nearest target point, one min reduction.
const nearest = await Vi(xs, 2).sqDist(Vj(ys.flat(), 2)).min(1);
const worst = Math.sqrt(Math.max(...nearest.data));
check('every point ends within 0.05 of the ring', worst < 0.05, `largest distance ${worst.toFixed(3)}`);
check.done('gradient-flow');
