// Block-sparse reductions: a port of KeOps's "Block-sparse reduction" tutorial. Points are sorted
// into grid cells (gridCluster, sortClusters), each cell gets its index range and centroid
// (clusterRangesCentroids), and a Gaussian kernel sum visits only the pairs of cells whose centroids
// are close (fromMatrix). Checked against the dense reduction and, row by row, against a plain float64
// sum over the kept blocks.
import { Vi, Vj, clusterRangesCentroids, fromMatrix, gridCluster, sortClusters } from 'lazytensor';
import { check, rng } from './_util.mjs';

const N = 20000,
  M = 20000,
  D = 2,
  sigma = 0.01,
  voxel = 0.02;
const { uniform } = rng(9);
const xRaw = Float32Array.from({ length: N * D }, uniform);
const yRaw = Float32Array.from({ length: M * D }, uniform);
const bRaw = Float32Array.from({ length: M }, uniform);

// 1. Sort the points by cell (float32 points stay float32).
const sx = sortClusters(xRaw, gridCluster(xRaw, voxel, D), D);
const sy = sortClusters(yRaw, gridCluster(yRaw, voxel, D), D);
const xs = sx.points,
  ys = sy.points;
const bs = Float32Array.from(sy.permutation, (r) => bRaw[r]); // the weights follow their points
const cx = clusterRangesCentroids(sx.points, sx.labels, undefined, D);
const cy = clusterRangesCentroids(sy.points, sy.labels, undefined, D);
const Ci = cx.ranges.length / 2,
  Cj = cy.ranges.length / 2;

// 2. Keep the cell pairs whose centroids are closer than 4 sigma plus two cell diagonals: then every
//    pair of points within 4 sigma is kept, and each dropped term is below exp(-8).
const cutoff = 4 * sigma + 2 * voxel * Math.SQRT2;
const keep = new Uint8Array(Ci * Cj);
for (let p = 0; p < Ci; p++) {
  for (let q = 0; q < Cj; q++) {
    const d2 =
      (cx.centroids[2 * p] - cy.centroids[2 * q]) ** 2 + (cx.centroids[2 * p + 1] - cy.centroids[2 * q + 1]) ** 2;
    keep[p * Cj + q] = d2 < cutoff * cutoff ? 1 : 0;
  }
}
const ranges = fromMatrix(cx.ranges, cy.ranges, keep);
let kept = 0;
for (let p = 0; p < Ci; p++)
  for (let q = 0; q < Cj; q++)
    if (keep[p * Cj + q]) kept += (cx.ranges[2 * p + 1] - cx.ranges[2 * p]) * (cy.ranges[2 * q + 1] - cy.ranges[2 * q]);

// 3. The same formula, reduced densely and block-sparsely.
const K = Vi(xs, D)
  .sqDist(Vj(ys, D))
  .mul(-1 / (2 * sigma * sigma))
  .exp()
  .mul(Vj(bs, 1));
let t0 = performance.now();
const full = await K.sum(1);
const tDense = performance.now() - t0;
t0 = performance.now();
const sparse = await K.sum(1, { ranges });
const tSparse = performance.now() - t0;
console.log(
  `Gaussian kernel sum, N = M = ${N}, sigma = ${sigma}: ${Ci} x ${Cj} cells, ${((100 * kept) / (N * M)).toFixed(2)}% of the pairs kept`,
);
console.log(
  `  dense ${tDense.toFixed(0)} ms, block-sparse ${tSparse.toFixed(0)} ms (float32; one run on a shared machine)`,
);

let worst = 0,
  top = 0;
for (let i = 0; i < N; i++) {
  worst = Math.max(worst, Math.abs(sparse.data[i] - full.data[i]));
  top = Math.max(top, full.data[i]);
}
check(
  'block-sparse equals dense up to the truncated terms',
  worst / top < 1e-4,
  `max difference ${(worst / top).toExponential(1)} of the largest value`,
);

// 4. The reference for 200 rows: a plain float64 sum over exactly the kept blocks.
let err = 0;
for (let p = 0; p < Ci; p += Math.max(1, Math.floor(Ci / 50))) {
  for (let i = cx.ranges[2 * p]; i < Math.min(cx.ranges[2 * p + 1], cx.ranges[2 * p] + 4); i++) {
    let s = 0;
    for (let q = 0; q < Cj; q++) {
      if (!keep[p * Cj + q]) continue;
      for (let j = cy.ranges[2 * q]; j < cy.ranges[2 * q + 1]; j++) {
        s +=
          Math.exp(-((xs[2 * i] - ys[2 * j]) ** 2 + (xs[2 * i + 1] - ys[2 * j + 1]) ** 2) / (2 * sigma * sigma)) *
          bs[j];
      }
    }
    err = Math.max(err, Math.abs(sparse.data[i] - s) / Math.max(s, 1e-30));
  }
}
check(
  'rows equal a float64 sum over the kept blocks (float32 rounding)',
  err < 1e-4,
  `max rel. error ${err.toExponential(1)}`,
);
check('fewer than 5% of the pairs are visited', kept < 0.05 * N * M);
check.done('block-sparse');
