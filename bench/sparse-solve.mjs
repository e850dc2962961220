// node bench/sparse-solve.mjs [N]: block-sparse reductions and a kernel solve (issue 4), float32,
// WebAssembly engine. 1) A truncated Gaussian kernel sum on clustered 3-D data, dense vs block-sparse
// (kept cluster pairs: centroids closer than the truncation radius plus the cell diagonal).
// 2) Gaussian-process regression: (alpha I + K) a = y by conjugate gradients on the block-sparse kernel.
import {
  Vi,
  Vj,
  clusterRangesCentroids,
  fromMatrix,
  getWasmThreads,
  gridCluster,
  sortClusters,
} from '../dist/index.js';

const N = Number(process.argv[2] ?? 1e5);
let s = 11;
const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) / 16777216;
// Clustered data: 50 blobs of radius 0.05 in the unit cube.
const centers = Array.from({ length: 50 }, () => [rnd(), rnd(), rnd()]);
const pts = new Float64Array(N * 3);
for (let i = 0; i < N; i++) {
  const c = centers[i % 50];
  for (let k = 0; k < 3; k++) pts[3 * i + k] = c[k] + 0.05 * (rnd() + rnd() + rnd() - 1.5);
}
const sigma = 0.01;
const cutoff = 4 * sigma; // exp(-8) ~ 3e-4 relative truncation
const voxel = 0.04;
const t0 = performance.now();
const sorted = sortClusters(pts, gridCluster(pts, voxel, 3), 3);
const cl = clusterRangesCentroids(sorted.points, sorted.labels, undefined, 3);
const C = cl.ranges.length / 2;
const keep = new Uint8Array(C * C);
const reach = (cutoff + voxel * Math.sqrt(3)) ** 2;
for (let a = 0; a < C; a++) {
  for (let b = 0; b < C; b++) {
    let d2 = 0;
    for (let k = 0; k < 3; k++) d2 += (cl.centroids[3 * a + k] - cl.centroids[3 * b + k]) ** 2;
    keep[a * C + b] = d2 < reach ? 1 : 0;
  }
}
const ranges = fromMatrix(cl.ranges, cl.ranges, keep);
const tCluster = performance.now() - t0;
const X = Float32Array.from(sorted.points);
const K = Vi(X, 3)
  .sqDist(Vj(X, 3))
  .mul(-1 / (2 * sigma * sigma))
  .exp();
const b = Float32Array.from({ length: N }, () => rnd());
const Kb = K.mul(Vj(b, 1));
const time = async (f) => {
  const t = performance.now();
  const r = await f();
  return [r, (performance.now() - t) / 1000];
};
const [sparse, tSparse] = await time(() => Kb.sum(1, { ranges, engine: 'wasm' }));
const [dense, tDense] = await time(() => Kb.sum(1, { engine: 'wasm' }));
let err = 0;
let ref = 0;
for (let i = 0; i < N; i++) {
  err = Math.max(err, Math.abs(sparse.data[i] - dense.data[i]));
  ref = Math.max(ref, Math.abs(dense.data[i]));
}
const keptPairs = (() => {
  let p = 0;
  for (let c = 0; c < C; c++) {
    const rows = cl.ranges[2 * c + 1] - cl.ranges[2 * c];
    for (let r = c ? ranges.slicesI[c - 1] : 0; r < ranges.slicesI[c]; r++)
      p += rows * (ranges.redRangesJ[2 * r + 1] - ranges.redRangesJ[2 * r]);
  }
  return p;
})();
console.log(
  `# block-sparse Gaussian kernel sum, N = M = ${N}, 3-D clustered data, sigma ${sigma}, float32, WebAssembly engine, ${await getWasmThreads()} worker(s)`,
);
console.log(
  `clusters ${C}, kept pairs ${((100 * keptPairs) / N / N).toFixed(2)}% of N^2, clustering ${tCluster.toFixed(0)} ms`,
);
console.log(
  `dense ${tDense.toFixed(2)} s, block-sparse ${tSparse.toFixed(3)} s: speed-up x${(tDense / tSparse).toFixed(1)}, max error ${(err / ref).toExponential(2)} of max |value|`,
);

// Gaussian-process regression on the same points: targets y = sin(10 x0) + noise, alpha = noise variance.
const y = Float64Array.from({ length: N }, (_, i) => Math.sin(10 * sorted.points[3 * i]) + 0.1 * (rnd() - 0.5));
const [sol, tSolve] = await time(() => K.solve(y, { alpha: 0.1, tol: 1e-4, maxIter: 500, ranges, dtype: 'float32' }));
console.log(
  `# GP regression (alpha I + K) a = y, N = ${N}, block-sparse kernel: ${sol.iterations} CG iterations, relative residual ${sol.relativeResidual.toExponential(2)}, converged ${sol.converged}, ${tSolve.toFixed(2)} s`,
);
