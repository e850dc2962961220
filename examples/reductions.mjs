// Every generic reduction on one page, over both axes: a port of KeOps's "LazyTensor reductions"
// tour (sum, logsumexp, sumsoftmaxweight, min/max with their arguments, Kmin/argKmin). Each result is
// compared with the same reduction of the dense matrix, built entry by entry in plain float64 JS.
import { Vi, Vj } from 'lazytensor';
import { check, relErr, rng } from './_util.mjs';

const N = 200,
  M = 300,
  D = 3,
  K = 4;
const { uniform } = rng(11);
const xs = Float64Array.from({ length: N * D }, uniform);
const ys = Float64Array.from({ length: M * D }, uniform);
const bs = Float64Array.from({ length: M }, uniform);
const x = Vi(xs, D),
  y = Vj(ys, D),
  b = Vj(bs, 1);
// Flat typed data needs its dim: without it the array is N*D one-dimensional points, and such a
// variable refuses (ShapeError) to broadcast against D-dimensional ones.

const F = x.sqDist(y).mul(-4); // F_ij = -4 |x_i - y_j|^2, dimension 1
const V = x.sub(y).abs(); // a vector formula (dimension 3) for the component-wise reductions

// The dense references, F[i][j] and V[i][j][d], in plain float64.
const Fd = [],
  Vd = [];
for (let i = 0; i < N; i++) {
  Fd.push([]);
  Vd.push([]);
  for (let j = 0; j < M; j++) {
    let s = 0;
    const v = [];
    for (let d = 0; d < D; d++) {
      const t = xs[i * D + d] - ys[j * D + d];
      s += t * t;
      v.push(Math.abs(t));
    }
    Fd[i].push(-4 * s);
    Vd[i].push(v);
  }
}
// Reduce the dense matrix over `axis` with a function of one row/column (values over the reduced index).
const along = (axis, fn) => {
  const out = [];
  const [n, m] = axis === 1 ? [N, M] : [M, N];
  for (let o = 0; o < n; o++) out.push(fn((q) => (axis === 1 ? [o, q] : [q, o]), m));
  return out.flat(2);
};
const lse = (vals) => {
  const m = Math.max(...vals);
  return m + Math.log(vals.reduce((s, v) => s + Math.exp(v - m), 0));
};
const argBy = (vals, better) => vals.reduce((best, v, q) => (better(v, vals[best]) ? q : best), 0);
const kSmallest = (vals) =>
  vals
    .map((v, q) => [v, q])
    .sort((p, q) => p[0] - q[0] || p[1] - q[1])
    .slice(0, K);

for (const axis of [1, 0]) {
  const cases = [
    [
      'sum',
      await F.exp().mul(b).sum(axis),
      along(axis, (ij, m) => [
        Array.from({ length: m }, (_, q) => {
          const [i, j] = ij(q);
          return Math.exp(Fd[i][j]) * bs[j];
        }).reduce((s, v) => s + v, 0),
      ]),
    ],
    [
      'logSumExp',
      await F.logSumExp(axis),
      along(axis, (ij, m) => [lse(Array.from({ length: m }, (_, q) => Fd[ij(q)[0]][ij(q)[1]]))]),
    ],
    [
      'logSumExp with weight b',
      await F.logSumExp(axis, { weight: b }),
      along(axis, (ij, m) => [
        lse(
          Array.from({ length: m }, (_, q) => {
            const [i, j] = ij(q);
            return Fd[i][j] + Math.log(bs[j]);
          }),
        ),
      ]),
    ],
    // KeOps writes F.sumsoftmaxweight(V, axis); here the axis comes first ("Conventions").
    [
      'sumSoftMaxWeight of y - x',
      await F.sumSoftMaxWeight(axis, y.sub(x)),
      along(axis, (ij, m) => {
        const w = Array.from({ length: m }, (_, q) => Fd[ij(q)[0]][ij(q)[1]]);
        const top = Math.max(...w),
          e = w.map((v) => Math.exp(v - top)),
          Z = e.reduce((s, v) => s + v, 0);
        return [
          Array.from(
            { length: D },
            (_, d) =>
              e.reduce((s, v, q) => {
                const [i, j] = ij(q);
                return s + v * (ys[j * D + d] - xs[i * D + d]);
              }, 0) / Z,
          ),
        ];
      }),
    ],
    [
      'min (per component)',
      await V.min(axis),
      along(axis, (ij, m) => [
        Array.from({ length: D }, (_, d) =>
          Math.min(...Array.from({ length: m }, (_, q) => Vd[ij(q)[0]][ij(q)[1]][d])),
        ),
      ]),
    ],
    [
      'max (per component)',
      await V.max(axis),
      along(axis, (ij, m) => [
        Array.from({ length: D }, (_, d) =>
          Math.max(...Array.from({ length: m }, (_, q) => Vd[ij(q)[0]][ij(q)[1]][d])),
        ),
      ]),
    ],
    [
      'argMin',
      await F.argMin(axis),
      along(axis, (ij, m) => [
        argBy(
          Array.from({ length: m }, (_, q) => Fd[ij(q)[0]][ij(q)[1]]),
          (p, q) => p < q,
        ),
      ]),
    ],
    [
      'argMax',
      await F.argMax(axis),
      along(axis, (ij, m) => [
        argBy(
          Array.from({ length: m }, (_, q) => Fd[ij(q)[0]][ij(q)[1]]),
          (p, q) => p > q,
        ),
      ]),
    ],
    [
      'kMin',
      await F.kMin(K, axis),
      along(axis, (ij, m) => [kSmallest(Array.from({ length: m }, (_, q) => Fd[ij(q)[0]][ij(q)[1]])).map((p) => p[0])]),
    ],
    [
      'argKMin',
      await F.argKMin(K, axis),
      along(axis, (ij, m) => [kSmallest(Array.from({ length: m }, (_, q) => Fd[ij(q)[0]][ij(q)[1]])).map((p) => p[1])]),
    ],
  ];
  // minArgMin / maxArgMax / kMinArgKMin: both at once, as an object { values, indices }.
  const both = await F.minArgMin(axis);
  cases.push([
    'minArgMin values',
    both.values,
    along(axis, (ij, m) => [Math.min(...Array.from({ length: m }, (_, q) => Fd[ij(q)[0]][ij(q)[1]]))]),
  ]);
  cases.push(['minArgMin indices', both.indices, cases[6][2]]);
  const top = await F.maxArgMax(axis);
  cases.push(['maxArgMax indices', top.indices, cases[7][2]]);
  const kboth = await F.kMinArgKMin(K, axis);
  cases.push(['kMinArgKMin values', kboth.values, cases[8][2]], ['kMinArgKMin indices', kboth.indices, cases[9][2]]);

  console.log(`axis ${axis} (${axis === 1 ? 'over j: one result per i' : 'over i: one result per j'}):`);
  for (const [name, got, want] of cases) {
    const err = got.dtype === 'int32' ? (got.data.every((v, k) => v === want[k]) ? 0 : 1) : relErr(got.data, want);
    check(
      `${name.padEnd(26)} shape [${got.shape}]`,
      got.data.length === want.length && err < 1e-12,
      `rel. error ${err.toExponential(1)}`,
    );
  }
}
check.done('reductions');
