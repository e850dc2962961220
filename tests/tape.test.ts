// valueAndGrad: gradients of scalars built from several reductions and traced Tensor arithmetic,
// against central finite differences of plain float64 loops.
import { describe, expect, it } from 'vitest';
import { InputError, Pm, Tensor, Vi, Vj, valueAndGrad, type Traced } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { rng, uniformRows } from './helpers/random.js';

const random = rng(21);

/** Central differences of f at every entry of inputs[q]. */
function finiteDifferences(f: (inputs: number[][][]) => number, inputs: number[][][], q: number, h = 1e-5): number[] {
  const out: number[] = [];
  inputs[q]!.forEach((row, r) =>
    row.forEach((_, k) => {
      const shifted = (t: number) =>
        inputs.map((m, p) => (p !== q ? m : m.map((rr, i) => rr.map((v, c) => (i === r && c === k ? v + t : v)))));
      out.push((f(shifted(h)) - f(shifted(-h))) / (2 * h));
    }),
  );
  return out;
}

const sq = (a: number[], b: number[]) => a.reduce((t, v, k) => t + (v - b[k]!) ** 2, 0);

describe('valueAndGrad', () => {
  const N = 14;
  const K = 4;
  const x = uniformRows(random, N, 2);
  const mu = uniformRows(random, K, 2);
  const logw = uniformRows(random, K, 1, -0.5, 0.5);

  /** A Gaussian-mixture log-likelihood with softmax weights, plus a repulsion term between the
   *  centres and the points (a second reduction, over i), as plain loops. */
  const reference = ([xs, ms, lw]: number[][][]): number => {
    let ll = 0;
    for (const p of xs!) {
      let s = 0;
      ms!.forEach((m, k) => (s += Math.exp(lw![k]![0]! - sq(p, m) / 2)));
      ll += Math.log(s);
    }
    const norm = Math.log(lw!.reduce((t, r) => t + Math.exp(r[0]!), 0));
    let rep = 0;
    for (const m of ms!) {
      let s = 0;
      for (const p of xs!) s += Math.exp(-sq(p, m));
      rep += s;
    }
    return ll - xs!.length * norm - 0.1 * (rep / ms!.length);
  };

  const model = valueAndGrad(async ([X, M, W], tape) => {
    const lse = await tape.reduce(Vi(X!).sqDist(Vj(M!)).mul(-0.5).add(Vj(W!)), 'logSumExp', 1); // [N, 1]
    const norm = W!.exp().sum(0).log(); // [1]
    const rep = await tape.reduce(Vi(X!).sqDist(Vj(M!)).neg().exp(), 'sum', 0); // [K, 1]
    return lse.sum(0).sub(norm.mul(N)).sub(rep.mean(0).mul(0.1)).total();
  });

  it('a Gaussian-mixture log-likelihood: value and gradients for x, mu and the log-weights', async () => {
    const { value, grad } = await model([x, mu, logw]);
    expect(value).toBeCloseTo(reference([x, mu, logw]), 12);
    expect(grad.map((g) => g.shape)).toEqual([
      [N, 2],
      [K, 2],
      [K, 1],
    ]);
    for (let q = 0; q < 3; q++) {
      expectClose(grad[q]!.data, finiteDifferences(reference, [x, mu, logw], q), 1e-6, 1e-8, undefined, `input ${q}`);
    }
  });

  it('one input as both the i- and the j-variable, and a result fed back as data', async () => {
    const b = uniformRows(random, N, 1);
    // r_i = sum_j exp(-|x_i - x_j|^2) b_j; loss = sum_i sum_j exp(-|x_i - x_j|^2 / 2) r_j + |x|^2 / 10.
    const ref = ([xs, bs]: number[][][]): number => {
      const r = xs!.map((p) => xs!.reduce((t, q, j) => t + Math.exp(-sq(p, q)) * bs![j]![0]!, 0));
      let loss = 0;
      for (const p of xs!) xs!.forEach((q, j) => (loss += Math.exp(-sq(p, q) / 2) * r[j]!));
      return loss + xs!.flat().reduce((t, v) => t + v * v, 0) / 10;
    };
    const f = valueAndGrad(async ([X, B], tape) => {
      const r = await tape.reduce(Vi(X!).sqDist(Vj(X!)).neg().exp().mul(Vj(B!)), 'sum', 1);
      const s = await tape.reduce(Vi(X!).sqDist(Vj(X!)).mul(-0.5).exp().mul(Vj(r)), 'sum', 1);
      return s.total().add(X!.mul(X!).total().div(10));
    });
    const { value, grad } = await f([x, b]);
    expect(value).toBeCloseTo(ref([x, b]), 12);
    expectClose(grad[0]!.data, finiteDifferences(ref, [x, b], 0), 1e-6, 1e-8, undefined, 'x');
    expectClose(grad[1]!.data, finiteDifferences(ref, [x, b], 1), 1e-6, 1e-8, undefined, 'b');
  });

  it('parameters, gather and scatterAdd are traced', async () => {
    // loss = sum_i exp(-s |x_i - c_{l_i}|^2) summed by cluster, weighted by cluster: sum_k v_k S_k.
    const labels = Int32Array.from({ length: N }, (_, i) => i % K);
    const v = uniformRows(random, K, 1);
    const ref = ([xs, cs, sv, vs]: number[][][]): number => {
      const S = new Array<number>(K).fill(0);
      xs!.forEach((p, i) => (S[labels[i]!] = S[labels[i]!]! + Math.exp(-sv![0]![0]! * sq(p, cs![labels[i]!]!))));
      return S.reduce((t, s, k) => t + s * vs![k]![0]!, 0);
    };
    const f = valueAndGrad(async ([X, C, S, V], tape) => {
      const c = C!.gather(labels); // [N, 2]
      const d = await tape.reduce(
        Vi(X!)
          .sub(Vi(c))
          .sqNorm2()
          .mul(Pm(S!))
          .neg()
          .exp()
          .mul(Vj([[1]])),
        'sum',
        1,
      ); // [N, 1]
      return d.scatterAdd(labels, K).mul(V!).total();
    });
    const inputs = [x, mu, [[0.7]], v];
    const { value, grad } = await f(inputs);
    expect(value).toBeCloseTo(ref(inputs), 12);
    for (let q = 0; q < 4; q++) {
      expectClose(grad[q]!.data, finiteDifferences(ref, inputs, q), 1e-6, 1e-8, undefined, `input ${q}`);
    }
  });

  it('unused inputs, untraced results and bad returns are InputErrors', async () => {
    const f = valueAndGrad(async ([X], tape) =>
      (
        await tape.reduce(
          Vi(X!)
            .sqNorm2()
            .mul(Vj([[1]])),
          'sum',
          1,
        )
      ).total(),
    );
    await expect(f([x, mu])).rejects.toThrow(/inputs\[1\] does not reach the value/);
    const relaxed = valueAndGrad(
      async ([X], tape) =>
        (
          await tape.reduce(
            Vi(X!)
              .sqNorm2()
              .mul(Vj([[1]])),
            'sum',
            1,
          )
        ).total(),
      { allowUnused: true },
    );
    const { grad } = await relaxed([x, mu]);
    expect(Array.from(grad[1]!.data)).toEqual(new Array(K * 2).fill(0));
    // Data given to Vi directly (not the traced input) does not reach the value.
    const detached = valueAndGrad(async (_inputs, tape) =>
      (
        await tape.reduce(
          Vi(x)
            .sqNorm2()
            .mul(Vj([[1]])),
          'sum',
          1,
        )
      ).total(),
    );
    await expect(detached([x])).rejects.toThrow(/inputs\[0\] does not reach/);
    const plain = valueAndGrad(async ([X]) => X!.sum(0) as Traced);
    await expect(plain([x])).rejects.toThrow(/one value/);
    const untraced = valueAndGrad(async ([X]) => (X as Traced).sum() as never);
    await expect(untraced([x])).rejects.toThrow(InputError);
    await expect(untraced([x])).rejects.toThrow(/would leave the tape/);
    expect(() => valueAndGrad(1 as never)).toThrow(/fn must be a function/);
    await expect(f('x' as never)).rejects.toThrow(/array of inputs/);
  });

  it('a Tensor input keeps its shape', async () => {
    const t = new Tensor(Float64Array.from(x.flat()), [N, 2], 'wasm');
    const f = valueAndGrad(async ([X], tape) =>
      (
        await tape.reduce(
          Vi(X!)
            .sqNorm2()
            .mul(Vj([[1], [1]])),
          'sum',
          1,
        )
      ).total(),
    );
    const { value, grad } = await f([t]);
    expect(value).toBeCloseTo(2 * x.flat().reduce((s, v) => s + v * v, 0), 12);
    expectClose(
      grad[0]!.data,
      x.flat().map((v) => 4 * v),
      1e-13,
    );
  });
});
