// The gradient of sumSoftMaxWeight (attention) against central finite differences of a plain float64
// softmax: both axes, i-, j-variables and parameters, the masked path (a causal mask with -Infinity,
// rows with no term), batches, the tape (which passes the forward result in), and the named errors;
// wide values (e = 64) in float32 and float64 against a dense float64 gradient, through both ways of
// reducing the outer variables' gradient (softmax-weighted alone, lse-normalised sum with the inner).
import { describe, expect, it } from 'vitest';
import { InputError, Pm, Tensor, Vi, Vj, reduction, valueAndGrad, vjp, type LazyTensor } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from './helpers/random.js';
import { denseAttention as denseAttentionGrad } from './helpers/dense-reference.js';

const random = rng(404);
const flat = (rows: number[][]) => Float64Array.from(rows.flat());
const H = 1e-6;

/** sum_o <c_o, softmax_r(f(o, r)) . g(o, r)> in plain float64; a row with every score -inf adds 0. */
function softmaxLoss(
  f: (i: number, j: number) => number,
  g: (i: number, j: number) => number[],
  N: number,
  M: number,
  axis: 0 | 1,
  c: number[],
): number {
  const [nOut, nIn] = axis === 1 ? [N, M] : [M, N];
  let loss = 0;
  for (let o = 0; o < nOut; o++) {
    const at = (r: number): [number, number] => (axis === 1 ? [o, r] : [r, o]);
    const scores = Array.from({ length: nIn }, (_, r) => f(...at(r)));
    const top = Math.max(...scores);
    if (top === -Infinity) continue;
    const w = scores.map((s) => Math.exp(s - top));
    const Z = w.reduce((a, b) => a + b, 0);
    const e = g(0, 0).length;
    for (let k = 0; k < e; k++) {
      let avg = 0;
      for (let r = 0; r < nIn; r++) avg += (w[r]! / Z) * g(...at(r))[k]!;
      loss += c[o * e + k]! * avg;
    }
  }
  return loss;
}

/** Central differences of loss(arrays) with respect to every entry of arrays[which]. */
function fd(loss: (arrays: number[][][]) => number, arrays: number[][][], which: number): number[] {
  const out: number[] = [];
  arrays[which]!.forEach((row, r) =>
    row.forEach((_, k) => {
      const shift = (t: number) =>
        arrays.map((a, w) => (w !== which ? a : a.map((rr, i) => rr.map((v, q) => (i === r && q === k ? v + t : v)))));
      out.push((loss(shift(H)) - loss(shift(-H))) / (2 * H));
    }),
  );
  return out;
}

const dot = (a: number[], b: number[]) => a.reduce((t, v, k) => t + v * b[k]!, 0);

describe('sumSoftMaxWeight gradient', () => {
  const N = 6;
  const M = 7;
  const d = 3;
  const e = 2;
  const qs = uniformRows(random, N, d);
  const ks = uniformRows(random, M, d);
  const vs = uniformRows(random, M, e);
  const temperature = [[0.7]];

  for (const axis of [1, 0] as const) {
    it(`attention scores t q.k, weight v(k): q, k, v and t, axis ${axis}`, async () => {
      const q = Vi(flat(qs), d);
      const k = Vj(flat(ks), d);
      const v = Vj(flat(vs), e);
      const t = Pm(temperature[0]!);
      // G depends on k as well (v + k[0]): the weight's own derivative enters for k.
      const G = v.add(k.elem(0));
      const F = q.dot(k).mul(t);
      const nOut = axis === 1 ? N : M;
      const c = Array.from({ length: nOut * e }, () => random() * 2 - 1);
      const [gq, gk, gv, gt] = await vjp(reduction(F, 'sumSoftMaxWeight', axis, { weight: G }), {
        wrt: [q, k, v, t],
        cotangent: c,
      });
      const loss = ([Q, K, V, T]: number[][][]) =>
        softmaxLoss(
          (i, j) => dot(Q![i]!, K![j]!) * T![0]![0]!,
          (i, j) => V![j]!.map((x) => x + K![j]![0]!),
          N,
          M,
          axis,
          c,
        );
      const arrays = [qs, ks, vs, temperature];
      expectClose(gq!.data, fd(loss, arrays, 0), 1e-6, 1e-8, undefined, 'd/dq');
      expectClose(gk!.data, fd(loss, arrays, 1), 1e-6, 1e-8, undefined, 'd/dk');
      expectClose(gv!.data, fd(loss, arrays, 2), 1e-6, 1e-8, undefined, 'd/dv');
      expectClose(gt!.data, fd(loss, arrays, 3), 1e-6, 1e-8, undefined, 'd/dt');
      expect([gq!.shape, gk!.shape, gv!.shape, gt!.shape]).toEqual([[N, d], [M, d], [M, e], [1]]);
    });
  }

  it('a causal mask with -Infinity, and log scores (the masked path); a row with no term has gradient 0', async () => {
    // Row 0 of x sees no y (mask for j > i - 1): its result is NaN (0/0), its gradient 0.
    const q = Vi(flat(qs), d);
    const k = Vj(flat(ks), d);
    const v = Vj(flat(vs), e);
    const iota = (n: number) => Float64Array.from({ length: n }, (_, r) => r);
    const mask = Vi(iota(N), 1)
      .sub(Vj(iota(M), 1))
      .sub(1);
    // log(2 + q.k) - a log score: its derivative is infinite where the argument is 0 (not here).
    const F = mask.ifElse(q.dot(k).add(2).log(), -Infinity);
    const c = Array.from({ length: N * e }, () => random() * 2 - 1);
    const [gq, gk, gv] = await vjp(reduction(F, 'sumSoftMaxWeight', 1, { weight: v }), {
      wrt: [q, k, v],
      cotangent: c,
    });
    const loss = ([Q, K, V]: number[][][]) =>
      softmaxLoss(
        (i, j) => (i - j - 1 >= 0 ? Math.log(2 + dot(Q![i]!, K![j]!)) : -Infinity),
        (_i, j) => V![j]!,
        N,
        M,
        1,
        c,
      );
    const arrays = [qs, ks, vs];
    expectClose(gq!.data, fd(loss, arrays, 0), 1e-6, 1e-8, undefined, 'd/dq');
    expectClose(gk!.data, fd(loss, arrays, 1), 1e-6, 1e-8, undefined, 'd/dk');
    expectClose(gv!.data, fd(loss, arrays, 2), 1e-6, 1e-8, undefined, 'd/dv');
    expect(Array.from(gq!.data.subarray(0, d))).toEqual([0, 0, 0]);
  });

  it('batched: each item as its own vjp', async () => {
    const B = 2;
    const qb = uniformRows(random, B * N, d);
    const kb = uniformRows(random, B * M, d);
    const vb = uniformRows(random, B * M, e);
    const q = Vi(flat(qb), d, { batch: [B] });
    const k = Vj(flat(kb), d, { batch: [B] });
    const v = Vj(flat(vb), e, { batch: [B] });
    const c = Array.from({ length: B * N * e }, () => random() * 2 - 1);
    const grads = await vjp(reduction(q.dot(k), 'sumSoftMaxWeight', 1, { weight: v }), {
      wrt: [q, k, v],
      cotangent: c,
    });
    for (let b = 0; b < B; b++) {
      const qi = Vi(flat(qb.slice(b * N, (b + 1) * N)), d);
      const ki = Vj(flat(kb.slice(b * M, (b + 1) * M)), d);
      const vi = Vj(flat(vb.slice(b * M, (b + 1) * M)), e);
      const one = await vjp(reduction(qi.dot(ki), 'sumSoftMaxWeight', 1, { weight: vi }), {
        wrt: [qi, ki, vi],
        cotangent: c.slice(b * N * e, (b + 1) * N * e),
      });
      const sizes = [N * d, M * d, M * e];
      one.forEach((g, w) => {
        const got = Array.from(grads[w]!.data).slice(b * sizes[w]!, (b + 1) * sizes[w]!);
        expectClose(got, Array.from(g.data), 1e-12, 1e-14, undefined, `item ${b} input ${w}`);
      });
    }
  });

  it('through the tape (the forward result reused): equals vjp', async () => {
    const c = Array.from({ length: N * e }, () => random() * 2 - 1);
    const f = valueAndGrad(async ([Q, K, V], tape) => {
      const out = await tape.reduce(Vi(Q!).dot(Vj(K!)), 'sumSoftMaxWeight', 1, { weight: Vj(V!) });
      return out.mul(new Tensor(Float64Array.from(c), [N, e], 'wasm')).total();
    });
    const { grad } = await f([qs, ks, vs]);
    const q = Vi(flat(qs), d);
    const k = Vj(flat(ks), d);
    const v = Vj(flat(vs), e);
    const want = await vjp(reduction(q.dot(k), 'sumSoftMaxWeight', 1, { weight: v }), { wrt: [q, k, v], cotangent: c });
    grad.forEach((g, w) => expectClose(g.data, Array.from(want[w]!.data), 1e-13, 1e-15, undefined, `input ${w}`));
  });

  it('a NaN in the weight is a named error, not a silent gradient', async () => {
    const q = Vi(flat(qs), d);
    const k = Vj(flat(ks), d);
    const bad: LazyTensor = Vj(flat(vs), e).sub(0.5).log(); // log of negative values: NaN
    await expect(
      vjp(reduction(q.dot(k), 'sumSoftMaxWeight', 1, { weight: bad }), {
        wrt: [q],
        cotangent: new Array<number>(N * e).fill(1),
      }),
    ).rejects.toThrow(InputError);
  });

  it('a variable given twice in wrt gets two equal, separate results', async () => {
    const q = Vi(flat(qs), d);
    const k = Vj(flat(ks), d);
    const v = Vj(flat(vs), e);
    const c = new Array<number>(N * e).fill(1);
    const [a, b] = await vjp(reduction(q.dot(k), 'sumSoftMaxWeight', 1, { weight: v }), { wrt: [q, q], cotangent: c });
    expect(Array.from(a!.data)).toEqual(Array.from(b!.data));
    expect(a!.data).not.toBe(b!.data);
  });
});

describe('sumSoftMaxWeight gradient: wide values against the dense float64 gradient', () => {
  const [nO, nI, d, e] = [37, 29, 16, 64];
  const random2 = rng(4242);
  const Q = uniformRows(random2, nO, d);
  const K = uniformRows(random2, nI, d);
  const V = uniformRows(random2, nI, e);
  const c = Array.from({ length: nO * e }, () => random2() * 2 - 1);
  const t = 0.7;
  const masks = { none: null, '-Infinity': -Infinity, '-1e30': -1e30 } as const;

  it('the dense reference itself matches central differences', () => {
    const causal = (o: number, r: number) => (r <= o ? 0 : -Infinity);
    const ref = denseAttentionGrad(Q, K, V, t, causal, c);
    const h = 1e-6;
    const lossAt = (edit: (a: { Q: number[][]; K: number[][]; V: number[][]; t: number }, s: number) => void) => {
      const f = (s: number) => {
        const a = { Q: Q.map((r) => [...r]), K: K.map((r) => [...r]), V: V.map((r) => [...r]), t };
        edit(a, s);
        return denseAttentionGrad(a.Q, a.K, a.V, a.t, causal, c).loss;
      };
      return (f(h) - f(-h)) / (2 * h);
    };
    expect(lossAt((a, s) => (a.Q[5]![3] = a.Q[5]![3]! + s))).toBeCloseTo(ref.dq[5 * d + 3]!, 6);
    expect(lossAt((a, s) => (a.K[20]![7] = a.K[20]![7]! + s))).toBeCloseTo(ref.dk[20 * d + 7]!, 6);
    expect(lossAt((a, s) => (a.V[11]![40] = a.V[11]![40]! + s))).toBeCloseTo(ref.dv[11 * e + 40]!, 6);
    expect(lossAt((a, s) => (a.t += s))).toBeCloseTo(ref.dt, 6);
  });

  for (const dtype of ['float32', 'float64'] as const) {
    for (const axis of [1, 0] as const) {
      for (const [name, value] of Object.entries(masks)) {
        it(`${dtype}, axis ${axis}, mask ${name}: q, k, v, t together and each alone`, async () => {
          // axis 1: q indexed by i (the outer index), k and v by j; axis 0 the other way round.
          const [Outer, Inner] = axis === 1 ? [Vi, Vj] : [Vj, Vi];
          const q = Outer(typed(Q, dtype), d);
          const k = Inner(typed(K, dtype), d);
          const v = Inner(typed(V, dtype), e);
          const tp = Pm(dtype === 'float32' ? Float32Array.of(t) : Float64Array.of(t));
          const iota = (n: number) =>
            dtype === 'float32'
              ? Float32Array.from({ length: n }, (_, r) => r)
              : Float64Array.from({ length: n }, (_, r) => r);
          const oIdx = Outer(iota(nO), 1);
          const rIdx = Inner(iota(nI), 1);
          let F = q.dot(k).mul(tp);
          // the causal mask: inner index r <= outer index o
          if (value !== null) F = oIdx.sub(rIdx).ifElse(F, value);
          const mask = (o: number, r: number) => (value === null || r <= o ? 0 : value);
          const ref = denseAttentionGrad(
            asSeen(Q, dtype),
            asSeen(K, dtype),
            asSeen(V, dtype),
            dtype === 'float32' ? Math.fround(t) : t,
            mask,
            asSeen([c], dtype)[0]!,
          );
          const spec = reduction(F, 'sumSoftMaxWeight', axis, { weight: v, options: { dtype } });
          const cot = typed([c], dtype);
          const all = await vjp(spec, { wrt: [q, k, v, tp], cotangent: cot });
          const [gq] = await vjp(spec, { wrt: [q], cotangent: cot });
          const [gt] = await vjp(spec, { wrt: [tp], cotangent: cot });
          const [gk, gv] = await vjp(spec, { wrt: [k, v], cotangent: cot });
          const rtol = dtype === 'float32' ? 1e-4 : 1e-11;
          const scaled = (want: number[]) => {
            const top = Math.max(...want.map(Math.abs));
            return want.map(() => top);
          };
          const check = (got: Float32Array | Float64Array, want: number[], label: string) =>
            expectClose(got, want, rtol, 0, scaled(want), label);
          check(all[0]!.data, ref.dq, 'dq (with k, v)');
          check(all[1]!.data, ref.dk, 'dk (with q)');
          check(all[2]!.data, ref.dv, 'dv (with q)');
          check(all[3]!.data, [ref.dt], 'dt (with k, v)');
          check(gq!.data, ref.dq, 'dq alone');
          check(gt!.data, [ref.dt], 'dt alone');
          check(gk!.data, ref.dk, 'dk without q');
          check(gv!.data, ref.dv, 'dv without q');
          expect(all[0]!.data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
        });
      }
    }
  }
});
