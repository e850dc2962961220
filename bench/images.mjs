// ImagesLoss / imagesBarycenter bench: a debiased Sinkhorn divergence, value and gradient, between
// two 256 x 256 images and between two 64^3 volumes (blur 0.01, scaling 0.5, the automatic pyramid),
// and a barycenter of the two images. Pure TypeScript float64 loops on the calling thread (separable
// log-domain convolutions). Usage: node bench/images.mjs
import { ImagesLoss, imagesBarycenter } from '../dist/geomloss.js';

/** A sum of two Gaussian blobs on the unit square / cube, plus a faint floor (no empty pixels). */
function image(shape, centres, s) {
  const N = shape.reduce((p, n) => p * n, 1);
  const data = new Float64Array(N);
  const idx = shape.map(() => 0);
  for (let k = 0; k < N; k++) {
    let v = 1e-3;
    for (const c of centres) {
      let r2 = 0;
      for (let d = 0; d < shape.length; d++) r2 += ((idx[d] + 0.5) / shape[d] - c[d]) ** 2;
      v += Math.exp(-r2 / (2 * s * s));
    }
    data[k] = v;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return { data, shape };
}

const s = (t) => `${(t / 1000).toFixed(2)} s`;

const pairs = [
  [
    '256 x 256 images',
    image(
      [256, 256],
      [
        [0.3, 0.3],
        [0.7, 0.4],
      ],
      0.06,
    ),
    image(
      [256, 256],
      [
        [0.6, 0.7],
        [0.4, 0.5],
      ],
      0.08,
    ),
  ],
  [
    '64^3 volumes',
    image(
      [64, 64, 64],
      [
        [0.3, 0.3, 0.4],
        [0.7, 0.4, 0.6],
      ],
      0.08,
    ),
    image([64, 64, 64], [[0.6, 0.7, 0.5]], 0.1),
  ],
];

for (const [label, A, B] of pairs) {
  let ticks = 0;
  const loss = new ImagesLoss({ blur: 0.01, scaling: 0.5, onProgress: () => ticks++ });
  const t0 = performance.now();
  const { value, info } = await loss.valueAndGrad(A, B);
  const t = performance.now() - t0;
  const levels = info.levels.map((l) => l.shape.join('x')).join(' -> ');
  console.log(
    `ImagesLoss ${label}: valueAndGrad ${s(t)}, value ${value.toExponential(4)}, ${info.iterations} iterations, levels ${levels}`,
  );
}

const [, A, B] = pairs[0];
const t0 = performance.now();
const q = await imagesBarycenter([A, B], { blur: 0.02, iterations: 20, tol: 0 });
console.log(
  `imagesBarycenter 256 x 256, 2 images, blur 0.02, 20 iterations: ${s(performance.now() - t0)} (change ${q.info.change.toExponential(2)})`,
);
