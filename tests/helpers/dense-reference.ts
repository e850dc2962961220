// Independent float64 reductions of a pairwise function, written plainly for the tests (they do not use
// the library's own operation references).
export type PairFn = (i: number, j: number) => number[];

export interface Sizes {
  N: number;
  M: number;
}

/** Values for each outer index, over the reduced index, for axis 1 (over j) or 0 (over i). */
function rowsOf(f: PairFn, { N, M }: Sizes, axis: 0 | 1): number[][][] {
  const [nOuter, nInner] = axis === 1 ? [N, M] : [M, N];
  const out: number[][][] = [];
  for (let o = 0; o < nOuter; o++) {
    const row: number[][] = [];
    for (let r = 0; r < nInner; r++) row.push(axis === 1 ? f(o, r) : f(r, o));
    out.push(row);
  }
  return out;
}

export function refSum(f: PairFn, s: Sizes, axis: 0 | 1): { value: number[][]; scale: number[][] } {
  const rows = rowsOf(f, s, axis);
  return {
    value: rows.map((row) => row[0]!.map((_, k) => row.reduce((acc, v) => acc + v[k]!, 0))),
    scale: rows.map((row) => row[0]!.map((_, k) => row.reduce((acc, v) => acc + Math.abs(v[k]!), 0))),
  };
}

export function refLogSumExp(f: PairFn, s: Sizes, axis: 0 | 1): number[][] {
  return rowsOf(f, s, axis).map((row) =>
    row[0]!.map((_, k) => {
      const m = Math.max(...row.map((v) => v[k]!));
      if (m === -Infinity) return -Infinity;
      return m + Math.log(row.reduce((acc, v) => acc + Math.exp(v[k]! - m), 0));
    }),
  );
}

export function refLogSumExpWeighted(f: PairFn, g: PairFn, s: Sizes, axis: 0 | 1): number[][] {
  const fr = rowsOf(f, s, axis);
  const gr = rowsOf(g, s, axis);
  return fr.map((row, o) => {
    const m = Math.max(...row.map((v) => v[0]!));
    return gr[o]![0]!.map(
      (_, k) => m + Math.log(row.reduce((acc, v, r) => acc + Math.exp(v[0]! - m) * gr[o]![r]![k]!, 0)),
    );
  });
}

export function refSoftMax(f: PairFn, g: PairFn, s: Sizes, axis: 0 | 1): number[][] {
  const fr = rowsOf(f, s, axis);
  const gr = rowsOf(g, s, axis);
  return fr.map((row, o) => {
    const m = Math.max(...row.map((v) => v[0]!));
    const w = row.map((v) => Math.exp(v[0]! - m));
    const total = w.reduce((a, b) => a + b, 0);
    return gr[o]![0]!.map((_, k) => w.reduce((acc, wr, r) => acc + wr * gr[o]![r]![k]!, 0) / total);
  });
}

/** The K smallest (or largest) values per component with their indices; ties by lowest index. */
export function refKSelect(
  f: PairFn,
  s: Sizes,
  axis: 0 | 1,
  K: number,
  largest = false,
): { values: number[][][]; indices: number[][][] } {
  const rows = rowsOf(f, s, axis);
  const values: number[][][] = [];
  const indices: number[][][] = [];
  for (const row of rows) {
    const d = row[0]!.length;
    const vk: number[][] = Array.from({ length: K }, () => new Array<number>(d));
    const ik: number[][] = Array.from({ length: K }, () => new Array<number>(d));
    for (let k = 0; k < d; k++) {
      const order = row.map((v, r) => ({ v: v[k]!, r })).sort((a, b) => (largest ? b.v - a.v : a.v - b.v) || a.r - b.r);
      for (let t = 0; t < K; t++) {
        vk[t]![k] = order[t]!.v;
        ik[t]![k] = order[t]!.r;
      }
    }
    values.push(vk);
    indices.push(ik);
  }
  return { values, indices };
}

/** The product per component, multiplied plainly in float64 (the engines sum logarithms instead). */
export function refProd(f: PairFn, s: Sizes, axis: 0 | 1): number[][] {
  return rowsOf(f, s, axis).map((row) => row[0]!.map((_, k) => row.reduce((acc, v) => acc * v[k]!, 1)));
}

const dot = (a: number[], b: number[]) => a.reduce((t, v, k) => t + v * b[k]!, 0);

/** Dense float64 attention: scores t q_o.k_r + mask(o, r), softmax s over r, out_o = sum_r s_or v_r;
 *  the loss L = <c, out>, its gradients (with g_or = s_or c_o.(v_r - out_o): dq_o = t sum_r g_or k_r,
 *  dk_r = t sum_o g_or q_o, dv_r = sum_o s_or c_o, dt = sum g_or q_o.k_r) and the rows' log-sum-exps.
 *  A row whose scores are all -inf has out NaN, lse -inf, and adds nothing to the loss and gradients. */
export function denseAttention(
  Q: number[][],
  K: number[][],
  V: number[][],
  t: number,
  mask: (o: number, r: number) => number,
  c: number[],
): { out: number[]; lse: number[]; loss: number; dq: number[]; dk: number[]; dv: number[]; dt: number } {
  const [nO, nI, d, e] = [Q.length, K.length, Q[0]!.length, V[0]!.length];
  const res = {
    out: new Array<number>(nO * e).fill(0),
    lse: new Array<number>(nO).fill(0),
    loss: 0,
    dq: new Array<number>(nO * d).fill(0),
    dk: new Array<number>(nI * d).fill(0),
    dv: new Array<number>(nI * e).fill(0),
    dt: 0,
  };
  for (let o = 0; o < nO; o++) {
    const raw = K.map((k) => dot(Q[o]!, k));
    const f = raw.map((x, r) => t * x + mask(o, r));
    const top = Math.max(...f);
    if (top === -Infinity) {
      res.lse[o] = -Infinity;
      for (let k = 0; k < e; k++) res.out[o * e + k] = NaN;
      continue;
    }
    const w = f.map((x) => Math.exp(x - top));
    const Z = w.reduce((a, b) => a + b, 0);
    res.lse[o] = top + Math.log(Z);
    const s = w.map((x) => x / Z);
    const co = c.slice(o * e, (o + 1) * e);
    const out = new Array<number>(e).fill(0);
    s.forEach((sr, r) => V[r]!.forEach((x, k) => (out[k] = out[k]! + sr * x)));
    out.forEach((x, k) => (res.out[o * e + k] = x));
    const cOut = dot(co, out);
    res.loss += cOut;
    for (let r = 0; r < nI; r++) {
      const g = s[r]! * (dot(co, V[r]!) - cOut);
      for (let k = 0; k < d; k++) {
        res.dq[o * d + k] = res.dq[o * d + k]! + t * g * K[r]![k]!;
        res.dk[r * d + k] = res.dk[r * d + k]! + t * g * Q[o]![k]!;
      }
      for (let k = 0; k < e; k++) res.dv[r * e + k] = res.dv[r * e + k]! + s[r]! * co[k]!;
      res.dt += g * raw[r]!;
    }
  }
  return res;
}

/** Float64 squared distances between the rows of x (N x D) and y (M x D) as stored, [N, M] row-major. */
export function refSqDist(x: ArrayLike<number>, y: ArrayLike<number>, N: number, M: number, D: number): Float64Array {
  const out = new Float64Array(N * M);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < M; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) s += (x[i * D + k]! - y[j * D + k]!) ** 2;
      out[i * M + j] = s;
    }
  }
  return out;
}

/** n x d uniform random coordinates in offset + scale * [-1, 1), in the given dtype. */
export function randomPoints(
  random: () => number,
  n: number,
  d: number,
  dtype: 'float32' | 'float64',
  offset = 0,
  scale = 1,
): Float32Array | Float64Array {
  const a = dtype === 'float32' ? new Float32Array(n * d) : new Float64Array(n * d);
  for (let k = 0; k < a.length; k++) a[k] = offset + scale * (2 * random() - 1);
  return a;
}
