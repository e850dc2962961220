// Every operation inside a sum reduction on the WebGPU engine (float32), both axes, against the same
// independent float64 references as the WebAssembly suite (tests/operations.test.ts).
import { describe, expect, it } from 'vitest';
import { Vi, Vj, type LazyTensor } from '../../src/index.js';
import { caseData, cases, diff, dot, zip } from '../helpers/op-cases.js';
import { refKSelect, refSum } from '../helpers/dense-reference.js';
import { webgpuTesting } from '../../src/runtime/index.js';
import { getWasmEngine } from '../../src/wasm/wasm-loader.js';
import { expectClose } from '../helpers/expect.js';
import { asSeen, typed } from '../helpers/random.js';
import { expectGpu, hasGpu, pairData } from './setup.js';

type Vec = number[];

// Sizes around the workgroup (256 rows) and the tile (256 inner rows at these widths).
const SIZES: [number, number][] = [
  [1, 1],
  [1, 5],
  [7, 3],
  [5, 1003],
  [300, 257],
];

describe.skipIf(!hasGpu)('WebGPU: operations in a sum reduction (float32)', () => {
  describe.each(cases)('$name', (c) => {
    it.each(SIZES)('N = %i, M = %i, both axes', async (N, M) => {
      const { xs, ys } = caseData(c, 1000 + N * 31 + M, N, M);
      const x = Vi(typed(xs, 'float32'), c.dx);
      const y = Vj(typed(ys, 'float32'), c.dy);
      const formula = c.build(x, y);
      const sx = asSeen(xs, 'float32');
      const sy = asSeen(ys, 'float32');
      for (const axis of [1, 0] as const) {
        const got = await formula.sum(axis, { engine: 'webgpu' });
        expectGpu(got, c.name);
        const want = refSum((i, j) => c.ref(sx[i]!, sy[j]!), { N, M }, axis);
        const nOut = axis === 1 ? N : M;
        expectClose(got.shape, [nOut, formula.dim], 0, 0, undefined, 'shape');
        expectClose(
          got.data,
          want.value.flat(),
          c.rtol32 ?? 2e-5,
          1e-30,
          want.scale.flat(),
          `${c.name} webgpu axis ${axis} N=${N} M=${M}`,
        );
        if (got.dtype !== 'float32') throw new Error(`result dtype ${got.dtype}`);
      }
    });
  });
});

/** Each formula summed on WebGPU over both axes, against its float64 reference on the rows seen. */
async function expectSums(formulas: [LazyTensor, (a: Vec, b: Vec) => Vec][], sx: Vec[], sy: Vec[], D: number) {
  const sizes = { N: sx.length, M: sy.length };
  for (const [F, ref] of formulas) {
    for (const axis of [1, 0] as const) {
      const got = await F.sum(axis, { engine: 'webgpu' });
      expectGpu(got, F.toString());
      const want = refSum((i, j) => ref(sx[i]!, sy[j]!), sizes, axis);
      expectClose(got.data, want.value.flat(), 3e-5, 0, want.scale.flat(), `${F.toString()} D=${D} axis ${axis}`);
    }
  }
}

describe.skipIf(!hasGpu)('WebGPU: dimensions from 1 to 200', () => {
  it.each([1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 50, 64, 127, 200])('sqDist, dot, sum and a vector at D = %i', async (D) => {
    const N = 9;
    const M = 517;
    const { x, y, sx, sy } = pairData(D, N, M, D);
    const formulas: [LazyTensor, (a: Vec, b: Vec) => Vec][] = [
      [x.sqDist(y), (a, b) => [dot(diff(a, b), diff(a, b))]],
      [x.dot(y), (a, b) => [dot(a, b)]],
      [x.sub(y).abs().sum(-1), (a, b) => [diff(a, b).reduce((s, v) => s + Math.abs(v), 0)]],
      [x.mul(y), (a, b) => zip(a, b, (u, v) => u * v)],
      // A vector result (per-component state loops for D > 8) through normalize and exp.
      [
        x
          .sub(y)
          .normalize()
          .mul(
            x
              .sqDist(y)
              .mul(-1 / D)
              .exp(),
          ),
        (a, b) => {
          const v = diff(a, b);
          const n = Math.sqrt(dot(v, v));
          return v.map((c) => (n === 0 ? 0 : c / n) * Math.exp((-n * n) / D));
        },
      ],
    ];
    await expectSums(formulas, sx, sy, D);
  });
});

describe.skipIf(!hasGpu)('WebGPU: maxComponent and minComponent of any number of components', () => {
  // Up to 64 components: a balanced tree of lt_max / lt_min lets; beyond, a loop over the components
  // (each computed inside it). Both axes; NaN in one component makes the extreme NaN, as on Wasm.
  it.each([1, 7, 9, 10, 33, 64, 65, 300, 4096])('D = %i', async (D) => {
    const N = 9;
    const M = 131;
    const { x, y, sx, sy } = pairData(100 + D, N, M, D);
    const formulas: [LazyTensor, (a: Vec, b: Vec) => Vec][] = [
      [x.sub(y).abs().maxComponent(), (a, b) => [Math.max(...diff(a, b).map(Math.abs))]],
      [x.mul(y).minComponent(), (a, b) => [Math.min(...zip(a, b, (u, v) => u * v))]],
    ];
    await expectSums(formulas, sx, sy, D);
    // The index of the nearest y_j in the max-norm (a K-NN metric), against float64.
    const knn = await x.sub(y).abs().maxComponent().argKMin(3, 1, { engine: 'webgpu' });
    expectGpu(knn, 'argKMin');
    const rk = refKSelect((i, j) => [Math.max(...diff(sx[i]!, sy[j]!).map(Math.abs))], { N, M }, 1, 3);
    expect(Array.from(knn.data), `argKMin D=${D}`).toEqual(rk.indices.flat(2));
  });

  it('a NaN component gives NaN on both engines (D = 100)', async () => {
    const D = 100;
    const { x, y } = pairData(9, 3, 4, D);
    // log of a negative component is NaN: y_j - x_i + 5 > 0 except where it is made negative.
    const F = y.sub(x).add(5).log().maxComponent();
    const plan = F.plan('sum', 1, undefined);
    const py = plan.variables.find((v) => v.role === 'inner')!.variable.data;
    py[2 * D + 70] = -10; // row 2: one component of log(-something)
    const got = await (await webgpuTesting.engine())!.reduce(plan);
    const want = await (await getWasmEngine()).reduce(plan);
    expect(Array.from(got.values!).map(Number.isNaN)).toEqual([true, true, true]);
    expectClose(got.values!, Array.from(want.values!), 1e-5, 0, undefined, 'NaN maxComponent');
  });
});
