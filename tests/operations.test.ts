// Every operation inside a sum reduction, on both axes and in both precisions, against an independent
// float64 evaluation of the same formula written in plain TypeScript.
import { describe, it } from 'vitest';
import { Vi, Vj, type LazyTensor } from '../src/index.js';
import { caseData, cases, diff, dot, zip, type OpCase } from './helpers/op-cases.js';

type Vec = number[];
import { refSum } from './helpers/dense-reference.js';
import { expectClose } from './helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from './helpers/random.js';

type DType = 'float32' | 'float64';

const SIZES: [number, number][] = [
  [1, 1],
  [1, 5],
  [7, 3],
  [5, 1003],
];

describe.each(['float32', 'float64'] as DType[])('operations in a sum reduction (%s)', (dtype) => {
  const rtol = (c: OpCase): number => (dtype === 'float64' ? 1e-12 : (c.rtol32 ?? 2e-5));
  describe.each(cases)('$name', (c) => {
    it.each(SIZES)('N = %i, M = %i, both axes', async (N, M) => {
      const { xs, ys } = caseData(c, 1000 + N * 31 + M, N, M);
      const x = Vi(typed(xs, dtype), c.dx);
      const y = Vj(typed(ys, dtype), c.dy);
      const formula = c.build(x, y);
      const sx = asSeen(xs, dtype);
      const sy = asSeen(ys, dtype);
      for (const axis of [1, 0] as const) {
        const got = await formula.sum(axis);
        const want = refSum((i, j) => c.ref(sx[i]!, sy[j]!), { N, M }, axis);
        const nOut = axis === 1 ? N : M;
        expectClose(got.shape, [nOut, formula.dim], 0, 0, undefined, 'shape');
        expectClose(
          got.data,
          want.value.flat(),
          rtol(c),
          1e-300,
          want.scale.flat(),
          `${c.name} ${dtype} axis ${axis} N=${N} M=${M}`,
        );
        if (got.dtype !== dtype) throw new Error(`result dtype ${got.dtype}, expected ${dtype}`);
        if (got.engine !== 'wasm') throw new Error(`engine ${got.engine}`);
      }
    });
  });
});

describe('dimensions from 1 to 200', () => {
  it.each([1, 2, 3, 4, 5, 7, 8, 16, 33, 50, 64, 127, 200])('sqDist, dot and sum at D = %i', async (D) => {
    for (const dtype of ['float32', 'float64'] as DType[]) {
      const random = rng(D);
      const N = 9;
      const M = 517;
      const xs = uniformRows(random, N, D);
      const ys = uniformRows(random, M, D);
      const x = Vi(typed(xs, dtype), D);
      const y = Vj(typed(ys, dtype), D);
      const sx = asSeen(xs, dtype);
      const sy = asSeen(ys, dtype);
      const rtol = dtype === 'float64' ? 1e-12 : 3e-5;
      const formulas: [LazyTensor, (a: Vec, b: Vec) => Vec][] = [
        [x.sqDist(y), (a, b) => [dot(diff(a, b), diff(a, b))]],
        [x.dot(y), (a, b) => [dot(a, b)]],
        [x.sub(y).abs().sum(-1), (a, b) => [diff(a, b).reduce((s, v) => s + Math.abs(v), 0)]],
        [x.mul(y), (a, b) => zip(a, b, (u, v) => u * v)],
        // a pairwise tree over halves of the vector (Wasm) / groups of 8 (WGSL), odd sizes included
        [x.sub(y).abs().maxComponent(), (a, b) => [Math.max(...diff(a, b).map(Math.abs))]],
        [x.mul(y).minComponent(), (a, b) => [Math.min(...zip(a, b, (u, v) => u * v))]],
      ];
      for (const [F, ref] of formulas) {
        for (const axis of [1, 0] as const) {
          const got = await F.sum(axis);
          const want = refSum((i, j) => ref(sx[i]!, sy[j]!), { N, M }, axis);
          expectClose(
            got.data,
            want.value.flat(),
            rtol,
            0,
            want.scale.flat(),
            `${F.toString()} D=${D} ${dtype} axis ${axis}`,
          );
        }
      }
    }
  });
});
