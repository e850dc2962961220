// The operation cases shared by the operation and derivative tests: each builds a formula from an
// i-variable x and a j-variable y, with an independent float64 reference written plainly.
import { Pm, type LazyTensor } from '../../src/index.js';
import { rng, uniformRows } from './random.js';

type Vec = number[];

export interface OpCase {
  name: string;
  dx: number;
  dy: number;
  /** Data ranges for x and y; `quantum` rounds data to multiples of it (to create ties and zeros). */
  x?: [number, number];
  y?: [number, number];
  quantum?: number;
  /** Some y rows are copies of x rows, so that x - y is exactly 0 there (dx == dy). */
  shareRows?: boolean;
  build: (x: LazyTensor, y: LazyTensor) => LazyTensor;
  ref: (x: Vec, y: Vec) => Vec;
  rtol32?: number;
}

export const zip = (a: Vec, b: Vec, f: (u: number, v: number) => number): Vec =>
  a.length === b.length
    ? a.map((u, k) => f(u, b[k]!))
    : a.length === 1
      ? b.map((v) => f(a[0]!, v))
      : a.map((u) => f(u, b[0]!));
export const diff = (a: Vec, b: Vec): Vec => zip(a, b, (u, v) => u - v);
export const dot = (a: Vec, b: Vec): number => a.reduce((s, u, k) => s + u * b[k]!, 0);
const roundAway = (v: number): number => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));
const ipow = (v: number, n: number): number => {
  let r = 1;
  for (let k = 0; k < Math.abs(n); k++) r *= v;
  return n < 0 ? 1 / r : r;
};

/** A unary op tested on a varying argument (x - y) and on a uniform one (u(x) * y). */
function unaryCases(
  name: string,
  apply: (t: LazyTensor) => LazyTensor,
  f: (v: number) => number,
  x: [number, number],
  y: [number, number],
  extra: Partial<OpCase> = {},
): OpCase[] {
  return [
    {
      name: `${name}(x - y)`,
      dx: 3,
      dy: 3,
      x,
      y,
      shareRows: true,
      build: (a, b) => apply(a.sub(b)),
      ref: (a, b) => diff(a, b).map(f),
      ...extra,
    },
    {
      name: `${name}(x) * y`,
      dx: 3,
      dy: 1,
      x,
      y,
      build: (a, b) => apply(a).mul(b),
      ref: (a, b) => a.map((v) => f(v) * b[0]!),
      ...extra,
    },
  ];
}

const W3 = [0.5, 1.5, 2];
const W9 = [2, 0.3, 0.1, 0.3, 1, 0.2, 0.1, 0.2, 1.5];
const quad = (v: Vec, S: Vec): number => {
  const D = v.length;
  let t = 0;
  for (let r = 0; r < D; r++) for (let c = 0; c < D; c++) t += v[r]! * S[r * D + c]! * v[c]!;
  return t;
};

export const cases: OpCase[] = [
  { name: 'add', dx: 3, dy: 3, build: (x, y) => x.add(y), ref: (a, b) => zip(a, b, (u, v) => u + v) },
  { name: 'add broadcast j', dx: 3, dy: 1, build: (x, y) => x.add(y), ref: (a, b) => zip(a, b, (u, v) => u + v) },
  { name: 'add broadcast i', dx: 1, dy: 4, build: (x, y) => x.add(y), ref: (a, b) => zip(a, b, (u, v) => u + v) },
  {
    name: 'add number',
    dx: 2,
    dy: 2,
    build: (x, y) => x.mul(y).add(2.5),
    ref: (a, b) => zip(a, b, (u, v) => u * v + 2.5),
  },
  { name: 'sub', dx: 3, dy: 3, build: (x, y) => x.sub(y), ref: diff },
  { name: 'mul', dx: 3, dy: 3, build: (x, y) => x.mul(y), ref: (a, b) => zip(a, b, (u, v) => u * v) },
  { name: 'div', dx: 3, dy: 3, y: [0.5, 2], build: (x, y) => x.div(y), ref: (a, b) => zip(a, b, (u, v) => u / v) },
  {
    name: 'div broadcast',
    dx: 1,
    dy: 3,
    x: [0.5, 2],
    build: (x, y) => y.div(x),
    ref: (a, b) => zip(b, a, (u, v) => u / v),
  },
  { name: 'neg', dx: 2, dy: 2, build: (x, y) => x.sub(y).neg(), ref: (a, b) => diff(a, b).map((v) => -v) },
  ...unaryCases('abs', (t) => t.abs(), Math.abs, [-1, 1], [-1, 1]),
  ...unaryCases('exp', (t) => t.exp(), Math.exp, [-3, 3], [-3, 3]),
  {
    name: 'exp of large range',
    dx: 1,
    dy: 1,
    x: [-60, 60],
    y: [-20, 20],
    build: (x, y) => x.sub(y).exp(),
    ref: (a, b) => [Math.exp(a[0]! - b[0]!)],
    rtol32: 3e-5,
  },
  ...unaryCases('log', (t) => t.log(), Math.log, [1.05, 3], [0, 1]),
  ...unaryCases('sqrt', (t) => t.sqrt(), Math.sqrt, [1, 3], [0, 1]),
  ...unaryCases(
    'rsqrt',
    (t) => t.rsqrt(),
    (v) => (v === 0 ? 0 : 1 / Math.sqrt(v)),
    [1, 3],
    [0, 1],
  ),
  ...unaryCases(
    'square',
    (t) => t.square(),
    (v) => v * v,
    [-1, 1],
    [-1, 1],
  ),
  ...unaryCases(
    'sin',
    (t) => t.mul(7).sin(),
    (v) => Math.sin(v * 7),
    [-2, 2],
    [-2, 2],
  ),
  ...unaryCases(
    'cos',
    (t) => t.mul(7).cos(),
    (v) => Math.cos(v * 7),
    [-2, 2],
    [-2, 2],
  ),
  ...unaryCases(
    'sign',
    (t) => t.sign(),
    (v) => (v > 0 ? 1 : v < 0 ? -1 : 0),
    [-1, 1],
    [-1, 1],
    { quantum: 0.25 },
  ),
  ...unaryCases(
    'step',
    (t) => t.step(),
    (v) => (v < 0 ? 0 : 1),
    [-1, 1],
    [-1, 1],
    { quantum: 0.25 },
  ),
  ...unaryCases(
    'relu',
    (t) => t.relu(),
    (v) => Math.max(v, 0),
    [-1, 1],
    [-1, 1],
  ),
  ...unaryCases(
    'xLogX',
    (t) => t.xLogX(),
    (v) => (v === 0 ? 0 : v * Math.log(v)),
    [1, 2],
    [0, 1],
  ),
  ...unaryCases(
    'sinXDivX',
    (t) => t.mul(5).sinXDivX(),
    (v) => (v === 0 ? 1 : Math.sin(5 * v) / (5 * v)),
    [-1, 1],
    [-1, 1],
  ),
  ...unaryCases(
    'round',
    (t) => t.mul(4).round(),
    (v) => roundAway(v * 4),
    [-2, 2],
    [-2, 2],
    { quantum: 0.125 },
  ),
  ...unaryCases(
    'round(2)',
    (t) => t.round(2),
    (v) => roundAway(v * 100) / 100,
    [-2, 2],
    [-2, 2],
    { rtol32: 1e-4 },
  ),
  ...unaryCases(
    'pow(3)',
    (t) => t.pow(3),
    (v) => v * v * v,
    [-1, 1],
    [-1, 1],
  ),
  ...unaryCases(
    'pow(-2)',
    (t) => t.pow(-2),
    (v) => ipow(v, -2),
    [1.5, 2.5],
    [0, 1],
  ),
  ...unaryCases(
    'pow(0)',
    (t) => t.pow(0),
    () => 1,
    [-1, 1],
    [-1, 1],
  ),
  ...unaryCases(
    'pow(7)',
    (t) => t.pow(7),
    (v) => ipow(v, 7),
    [-1.2, 1.2],
    [-0.5, 0.5],
  ),
  {
    name: 'powf',
    dx: 2,
    dy: 2,
    x: [0.2, 2],
    y: [-2, 2],
    build: (x, y) => x.powf(y),
    ref: (a, b) => zip(a, b, (u, v) => Math.exp(v * Math.log(u))),
  },
  {
    name: 'powf number',
    dx: 2,
    dy: 2,
    x: [0.2, 2],
    y: [0.2, 2],
    build: (x, y) => x.mul(y).powf(1.5),
    ref: (a, b) => zip(a, b, (u, v) => (u * v) ** 1.5),
  },
  { name: 'eq', dx: 2, dy: 2, quantum: 0.25, build: (x, y) => x.eq(y), ref: (a, b) => zip(a, b, (u, v) => +(u === v)) },
  { name: 'ne', dx: 2, dy: 2, quantum: 0.25, build: (x, y) => x.ne(y), ref: (a, b) => zip(a, b, (u, v) => +(u !== v)) },
  { name: 'lt', dx: 2, dy: 2, quantum: 0.25, build: (x, y) => x.lt(y), ref: (a, b) => zip(a, b, (u, v) => +(u < v)) },
  { name: 'le', dx: 2, dy: 2, quantum: 0.25, build: (x, y) => x.le(y), ref: (a, b) => zip(a, b, (u, v) => +(u <= v)) },
  { name: 'gt', dx: 2, dy: 2, quantum: 0.25, build: (x, y) => x.gt(y), ref: (a, b) => zip(a, b, (u, v) => +(u > v)) },
  {
    name: 'ge broadcast',
    dx: 1,
    dy: 2,
    quantum: 0.25,
    build: (x, y) => x.ge(y),
    ref: (a, b) => zip(a, b, (u, v) => +(u >= v)),
  },
  ...unaryCases('floor', (t) => t.floor(), Math.floor, [-2, 2], [-2, 2], { quantum: 0.125 }),
  {
    // floor away from its jumps, for the derivatives (0 in x, floor(x) in y)
    name: 'floor(x) * y (smooth data)',
    dx: 3,
    dy: 1,
    x: [-2, 2],
    build: (x, y) => x.floor().mul(y),
    ref: (a, b) => a.map((v) => Math.floor(v) * b[0]!),
  },
  ...unaryCases(
    'atan',
    (t) => t.mul(3).atan(),
    (v) => Math.atan(3 * v),
    [-2, 2],
    [-2, 2],
  ),
  ...unaryCases('asin', (t) => t.asin(), Math.asin, [-0.45, 0.45], [-0.45, 0.45]),
  ...unaryCases('acos', (t) => t.acos(), Math.acos, [-0.45, 0.45], [-0.45, 0.45]),
  { name: 'atan2', dx: 3, dy: 3, build: (x, y) => x.atan2(y), ref: (a, b) => zip(a, b, Math.atan2) },
  {
    name: 'atan2 broadcast',
    dx: 1,
    dy: 3,
    build: (x, y) => y.atan2(x),
    ref: (a, b) => zip(b, a, Math.atan2),
  },
  {
    // x < 0: angles near +-pi, across the branch cut
    name: 'atan2 number',
    dx: 2,
    dy: 2,
    build: (x, y) => x.mul(y).atan2(-0.5),
    ref: (a, b) => zip(a, b, (u, v) => Math.atan2(u * v, -0.5)),
  },
  { name: 'maximum', dx: 3, dy: 3, build: (x, y) => x.maximum(y), ref: (a, b) => zip(a, b, Math.max) },
  {
    name: 'maximum broadcast',
    dx: 3,
    dy: 1,
    build: (x, y) => x.maximum(y),
    ref: (a, b) => zip(a, b, Math.max),
  },
  {
    name: 'maximum number',
    dx: 3,
    dy: 3,
    build: (x, y) => x.sub(y).maximum(0.25),
    ref: (a, b) => diff(a, b).map((v) => Math.max(v, 0.25)),
  },
  { name: 'minimum', dx: 3, dy: 3, build: (x, y) => x.minimum(y), ref: (a, b) => zip(a, b, Math.min) },
  {
    name: 'minimum broadcast',
    dx: 1,
    dy: 4,
    build: (x, y) => x.minimum(y),
    ref: (a, b) => zip(a, b, Math.min),
  },
  {
    name: 'minimum ties (quantised)',
    dx: 2,
    dy: 2,
    quantum: 0.5,
    build: (x, y) => y.minimum(x),
    ref: (a, b) => zip(b, a, Math.min),
  },
  {
    name: 'clamp numbers',
    dx: 3,
    dy: 3,
    build: (x, y) => x.sub(y).clamp(-0.3, 0.4),
    ref: (a, b) => diff(a, b).map((v) => Math.min(Math.max(v, -0.3), 0.4)),
  },
  {
    name: 'clamp formulas',
    dx: 3,
    dy: 3,
    y: [0, 1],
    build: (x, y) => x.clamp(y.neg(), y),
    ref: (a, b) => a.map((v, k) => Math.min(Math.max(v, -b[k]!), b[k]!)),
  },
  {
    name: 'ifElse',
    dx: 3,
    dy: 3,
    quantum: 0.25,
    build: (x, y) => x.sub(y).ifElse(x, y.mul(2)),
    ref: (a, b) => a.map((u, k) => (u - b[k]! >= 0 ? u : 2 * b[k]!)),
  },
  {
    name: 'mod',
    dx: 3,
    dy: 3,
    build: (x, y) => x.sub(y).mul(3).mod(0.7, 0.1),
    ref: (a, b) => diff(a, b).map((v) => 3 * v - 0.7 * Math.floor((3 * v - 0.1) / 0.7)),
    rtol32: 1e-4,
  },
  // Vector operations.
  { name: 'sum', dx: 4, dy: 4, build: (x, y) => x.mul(y).sum(-1), ref: (a, b) => [dot(a, b)] },
  { name: 'sqNorm2', dx: 3, dy: 3, build: (x, y) => x.sub(y).sqNorm2(), ref: (a, b) => [dot(diff(a, b), diff(a, b))] },
  {
    name: 'norm2',
    dx: 3,
    dy: 3,
    shareRows: true,
    build: (x, y) => x.sub(y).norm2(),
    ref: (a, b) => [Math.sqrt(dot(diff(a, b), diff(a, b)))],
  },
  {
    name: 'normalize',
    dx: 3,
    dy: 3,
    shareRows: true,
    build: (x, y) => x.sub(y).normalize(),
    ref: (a, b) => {
      const v = diff(a, b);
      const n = Math.sqrt(dot(v, v));
      return v.map((c) => (n === 0 ? 0 : c / n));
    },
  },
  { name: 'dot', dx: 5, dy: 5, build: (x, y) => x.dot(y), ref: (a, b) => [dot(a, b)] },
  { name: 'sqDist', dx: 3, dy: 3, build: (x, y) => x.sqDist(y), ref: (a, b) => [dot(diff(a, b), diff(a, b))] },
  {
    name: 'sqDist of j with i',
    dx: 3,
    dy: 3,
    build: (x, y) => y.sqDist(x),
    ref: (a, b) => [dot(diff(a, b), diff(a, b))],
  },
  {
    name: 'weightedSqNorm iso',
    dx: 3,
    dy: 3,
    build: (x, y) => x.sub(y).weightedSqNorm(Pm(0.7)),
    ref: (a, b) => [0.7 * dot(diff(a, b), diff(a, b))],
  },
  {
    name: 'weightedSqNorm diag',
    dx: 3,
    dy: 3,
    build: (x, y) => x.sub(y).weightedSqNorm(Pm(W3)),
    ref: (a, b) => [diff(a, b).reduce((s, v, k) => s + W3[k]! * v * v, 0)],
  },
  {
    name: 'weightedSqNorm full',
    dx: 3,
    dy: 3,
    build: (x, y) => x.sub(y).weightedSqNorm(Pm(W9)),
    ref: (a, b) => [quad(diff(a, b), W9)],
  },
  {
    name: 'weightedSqDist iso',
    dx: 3,
    dy: 3,
    build: (x, y) => x.weightedSqDist(y, 2.5),
    ref: (a, b) => [2.5 * dot(diff(a, b), diff(a, b))],
  },
  {
    name: 'weightedSqDist diag',
    dx: 3,
    dy: 3,
    build: (x, y) => x.weightedSqDist(y, Pm(W3)),
    ref: (a, b) => [diff(a, b).reduce((s, v, k) => s + W3[k]! * v * v, 0)],
  },
  {
    name: 'weightedSqDist varying weight',
    dx: 2,
    dy: 4,
    y: [0, 1],
    build: (x, y) => x.weightedSqDist(y.extract(0, 2), y.extract(2, 2)),
    ref: (a, b) => [(a[0]! - b[0]!) ** 2 * b[2]! + (a[1]! - b[1]!) ** 2 * b[3]!],
  },
  {
    name: 'weightedSqDist full',
    dx: 3,
    dy: 3,
    build: (x, y) => x.weightedSqDist(y, Pm(W9)),
    ref: (a, b) => [quad(diff(a, b), W9)],
  },
  { name: 'elem', dx: 3, dy: 3, build: (x, y) => x.elem(1).mul(y.elem(2)), ref: (a, b) => [a[1]! * b[2]!] },
  {
    name: 'extract',
    dx: 4,
    dy: 4,
    build: (x, y) => x.extract(1, 2).sub(y.extract(2, 2)),
    ref: (a, b) => [a[1]! - b[2]!, a[2]! - b[3]!],
  },
  { name: 'concat', dx: 2, dy: 3, build: (x, y) => x.concat(y.exp()), ref: (a, b) => [...a, ...b.map(Math.exp)] },
  {
    name: 'concat varying first',
    dx: 2,
    dy: 1,
    build: (x, y) => y.concat(x).mul(y),
    ref: (a, b) => [b[0]! * b[0]!, a[0]! * b[0]!, a[1]! * b[0]!],
  },
  {
    name: 'oneHot',
    dx: 1,
    dy: 1,
    x: [0, 1],
    y: [0, 4.4],
    build: (x, y) => y.oneHot(5).mul(x),
    ref: (a, b) => [0, 1, 2, 3, 4].map((k) => (roundAway(b[0]!) === k ? a[0]! : 0)),
  },
  {
    name: 'matVecMult',
    dx: 6,
    dy: 3,
    build: (x, y) => x.matVecMult(y),
    ref: (A, v) => [dot(A.slice(0, 3), v), dot(A.slice(3, 6), v)],
  },
  {
    name: 'vecMatMult',
    dx: 2,
    dy: 6,
    build: (x, y) => x.vecMatMult(y),
    ref: (v, A) => [0, 1, 2].map((c) => v[0]! * A[c]! + v[1]! * A[3 + c]!),
  },
  {
    name: 'tensorProd',
    dx: 2,
    dy: 3,
    build: (x, y) => x.tensorProd(y),
    ref: (a, b) => a.flatMap((u) => b.map((v) => u * v)),
  },
  {
    name: 'kron',
    dx: 2,
    dy: 3,
    build: (x, y) => x.kron(y),
    ref: (a, b) => a.flatMap((u) => b.map((v) => u * v)),
  },
  {
    name: 'maxComponent',
    dx: 4,
    dy: 4,
    build: (x, y) => x.sub(y).maxComponent(),
    ref: (a, b) => [Math.max(...diff(a, b))],
  },
  {
    name: 'maxComponent odd dimension',
    dx: 7,
    dy: 7,
    build: (x, y) => x.mul(y).maxComponent(),
    ref: (a, b) => [Math.max(...zip(a, b, (u, v) => u * v))],
  },
  {
    name: 'maxComponent of a scalar',
    dx: 1,
    dy: 1,
    build: (x, y) => x.mul(y).maxComponent(),
    ref: (a, b) => [a[0]! * b[0]!],
  },
  {
    name: 'maxComponent of x times y',
    dx: 3,
    dy: 1,
    build: (x, y) => x.maxComponent().mul(y),
    ref: (a, b) => [Math.max(...a) * b[0]!],
  },
  {
    name: 'minComponent',
    dx: 5,
    dy: 5,
    build: (x, y) => x.sub(y).minComponent(),
    ref: (a, b) => [Math.min(...diff(a, b))],
  },
  {
    name: 'minComponent ties (quantised)',
    dx: 3,
    dy: 3,
    quantum: 0.5,
    build: (x, y) => x.add(y).minComponent(),
    ref: (a, b) => [Math.min(...zip(a, b, (u, v) => u + v))],
  },
  {
    name: 'transpose',
    dx: 6,
    dy: 6,
    build: (x, y) => x.transpose(2, 3).mul(y),
    ref: (a, b) => [0, 1, 2, 3, 4, 5].map((k) => a[(k % 2) * 3 + Math.floor(k / 2)]! * b[k]!),
  },
  {
    name: 'transpose then matVecMult',
    dx: 6,
    dy: 2,
    build: (x, y) => x.transpose(2, 3).matVecMult(y),
    ref: (A, v) => [0, 1, 2].map((c) => A[c]! * v[0]! + A[3 + c]! * v[1]!),
  },
  {
    name: 'transpose of a row vector',
    dx: 3,
    dy: 3,
    build: (x, y) => x.sub(y).transpose(1, 3),
    ref: diff,
  },
  {
    name: 'Gaussian kernel',
    dx: 3,
    dy: 3,
    build: (x, y) => x.sqDist(y).mul(-2).exp(),
    ref: (a, b) => [Math.exp(-2 * dot(diff(a, b), diff(a, b)))],
  },
];

/** The data of a case: x and y rows in its ranges, quantised and sharing rows as the case asks. */
export function caseData(c: OpCase, seed: number, N: number, M: number): { xs: number[][]; ys: number[][] } {
  const random = rng(seed);
  const q = (rows: number[][]): number[][] =>
    c.quantum ? rows.map((r) => r.map((v) => Math.round(v / c.quantum!) * c.quantum!)) : rows;
  const xs = q(uniformRows(random, N, c.dx, ...(c.x ?? [-1, 1])));
  const ys = q(uniformRows(random, M, c.dy, ...(c.y ?? [-1, 1])));
  if (c.shareRows) for (let j = 0; j < M; j += 3) ys[j] = [...xs[j % N]!];
  return { xs, ys };
}
