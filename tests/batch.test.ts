// Leading batch dimensions: each batch item reduces on its own, size-1 batch dimensions broadcast.
import { describe, expect, it } from 'vitest';
import { Pm, Vi, Vj, reduction, vjp } from '../src/index.js';
import { refSum } from './helpers/dense-reference.js';
import { expectClose } from './helpers/expect.js';
import { rng, uniformRows } from './helpers/random.js';

describe('batches', () => {
  const random = rng(8);
  const B = 3;
  const xs = Array.from({ length: B }, () => uniformRows(random, 4, 2));
  const ys = Array.from({ length: B }, () => uniformRows(random, 6, 2));
  const sig = [[0.5], [1], [2]];
  const sq = (a: number[], b: number[]) => a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0);

  it('reduces each item of [B, N, D] data with its own [B, D] parameter', async () => {
    const x = Vi(xs);
    const y = Vj(ys);
    const s = Pm(sig);
    expect(x.batch).toEqual([3]);
    const F = x.sqDist(y).mul(s).neg().exp();
    for (const axis of [1, 0] as const) {
      const got = await F.sum(axis, { dtype: 'float64' });
      expect(got.shape).toEqual([B, axis === 1 ? 4 : 6, 1]);
      const want = xs.flatMap((xb, b) =>
        refSum((i, j) => [Math.exp(-sig[b]![0]! * sq(xb[i]!, ys[b]![j]!))], { N: 4, M: 6 }, axis).value.flat(),
      );
      expectClose(got.data, want, 1e-12);
    }
    const nn = await x.sqDist(y).argKMin(2, 1);
    expect(nn.shape).toEqual([B, 4, 2]);
  });

  it('broadcasts size-1 batch dimensions and unbatched operands', async () => {
    const x = Vi(xs.slice(0, 1)); // [1, 4, 2]
    const y = Vj(ys); // [3, 6, 2]
    const F = x.sqDist(y).mul(Pm(sig)); // Pm [3, 1]
    const got = await F.sum(1);
    expect(got.shape).toEqual([3, 4, 1]);
    const want = [0, 1, 2].flatMap((b) =>
      refSum((i, j) => [sig[b]![0]! * sq(xs[0]![i]!, ys[b]![j]!)], { N: 4, M: 6 }, 1).value.flat(),
    );
    expectClose(got.data, want, 1e-12);
    // An unbatched j-variable against a batched i-variable.
    const flat = Vj(Float64Array.from(ys[0]!.flat()), 2);
    const got2 = await Vi(xs).sqDist(flat).sum(1);
    expect(got2.shape).toEqual([3, 4, 1]);
    const want2 = [0, 1, 2].flatMap((b) =>
      refSum((i, j) => [sq(xs[b]![i]!, ys[0]![j]!)], { N: 4, M: 6 }, 1).value.flat(),
    );
    expectClose(got2.data, want2, 1e-12);
  });

  it('flat typed data with a batch option, and clear errors for mismatched batches', async () => {
    const x = Vi(Float32Array.from(xs.flat(2)), 2, { batch: [3] });
    expect(x.rowsI).toBe(4);
    const y2 = Vj(Float32Array.from(ys.slice(0, 2).flat(2)), 2, { batch: [2] });
    expect(() => x.sqDist(y2)).toThrow(/sqDist: batch dimension 0 is 3 for one operand and 2 for the other/);
    expect(() => Vi(new Float32Array(10), 2, { batch: [3] })).toThrow(
      /10 values do not split into \[3\] batches of rows of dim 2/,
    );
    expect(() =>
      Vi([
        [[0, 1]],
        [
          [0, 1],
          [1, 2],
        ],
      ]),
    ).toThrow(/Vi: batch item 1 has 2 rows, expected 1/);
    expect(() => Vi(xs, undefined, { batch: [3] })).toThrow(/drop the batch option/);
  });

  it('vjp of a batched reduction equals the per-item gradients, summed where a variable broadcasts', async () => {
    const x = Vi(xs);
    const y = Vj(ys);
    const s = Pm(0.7); // unbatched: its gradient sums over the items
    const w = Pm(sig); // batched [3, 1]
    for (const kind of ['sum', 'logSumExp', 'min'] as const) {
      for (const axis of [1, 0] as const) {
        const F = x.sqDist(y).mul(s).mul(w).neg();
        const nOut = axis === 1 ? 4 : 6;
        const c = Array.from({ length: B * nOut }, (_, q) => Math.sin(q + 1));
        const [gx, gy, gs, gw] = await vjp(reduction(F, kind, axis), { wrt: [x, y, s, w], cotangent: c });
        expect(gx!.shape).toEqual([B, 4, 2]);
        expect(gy!.shape).toEqual([B, 6, 2]);
        expect(gs!.shape).toEqual([1]);
        expect(gw!.shape).toEqual([B, 1]);
        let totalS = 0;
        for (let b = 0; b < B; b++) {
          const xb = Vi(xs[b]!);
          const yb = Vj(ys[b]!);
          const sb = Pm(0.7);
          const wb = Pm(sig[b]!);
          const Fb = xb.sqDist(yb).mul(sb).mul(wb).neg();
          const cb = c.slice(b * nOut, (b + 1) * nOut);
          const [ex, ey, es, ew] = await vjp(reduction(Fb, kind, axis), { wrt: [xb, yb, sb, wb], cotangent: cb });
          expectClose(
            Array.from(gx!.data).slice(b * 8, b * 8 + 8),
            Array.from(ex!.data),
            1e-12,
            1e-14,
            undefined,
            `${kind} x`,
          );
          expectClose(
            Array.from(gy!.data).slice(b * 12, b * 12 + 12),
            Array.from(ey!.data),
            1e-12,
            1e-14,
            undefined,
            `${kind} y`,
          );
          expectClose([gw!.data[b]!], Array.from(ew!.data), 1e-12, 1e-14, undefined, `${kind} w`);
          totalS += es!.data[0]!;
        }
        expectClose(gs!.data, [totalS], 1e-12, 1e-14, undefined, `${kind} s`);
      }
    }
    await expect(vjp(reduction(x.sqDist(y), 'sum', 1), { wrt: [x], cotangent: [1, 2] })).rejects.toThrow(
      /the sum result has 3 x 4 x 1 = 12/,
    );
  });
});
