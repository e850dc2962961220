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
