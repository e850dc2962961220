// Every operation inside a sum reduction on the WebGPU engine (float32), both axes, against the same
// independent float64 references as the WebAssembly suite (tests/operations.test.ts).
import { describe, expect, it } from 'vitest';
import { Vi, Vj, type LazyTensor } from '../../src/index.js';
import { caseData, cases, diff, dot, zip } from '../helpers/op-cases.js';
import { refSum } from '../helpers/dense-reference.js';
import { expectClose } from '../helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from '../helpers/random.js';
import { expectGpu, hasGpu } from './setup.js';

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

describe.skipIf(!hasGpu)('WebGPU: dimensions from 1 to 200', () => {
  it.each([1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 50, 64, 127, 200])('sqDist, dot, sum and a vector at D = %i', async (D) => {
    const random = rng(D);
    const N = 9;
    const M = 517;
    const xs = uniformRows(random, N, D);
    const ys = uniformRows(random, M, D);
    const x = Vi(typed(xs, 'float32'), D);
    const y = Vj(typed(ys, 'float32'), D);
    const sx = asSeen(xs, 'float32');
    const sy = asSeen(ys, 'float32');
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
    for (const [F, ref] of formulas) {
      for (const axis of [1, 0] as const) {
        const got = await F.sum(axis, { engine: 'webgpu' });
        expectGpu(got, F.toString());
        const want = refSum((i, j) => ref(sx[i]!, sy[j]!), { N, M }, axis);
        expectClose(got.data, want.value.flat(), 3e-5, 0, want.scale.flat(), `${F.toString()} D=${D} axis ${axis}`);
      }
    }
  });
});

describe.skipIf(!hasGpu)('WebGPU: maxComponent and minComponent of 1 to 9 components', () => {
  // groups of 8 components per value in WGSL: one group, and a tree of two. (At D >= 33 SwiftShader
  // took more than the 120 s test timeout to compile and run these kernels on the loaded CI machine:
  // a known compile-time cliff of the unrolled lt_max tree, not a wrong result.)
  it.each([1, 7, 9])('D = %i', async (D) => {
    const random = rng(100 + D);
    const N = 9;
    const M = 131;
    const xs = uniformRows(random, N, D);
    const ys = uniformRows(random, M, D);
    const x = Vi(typed(xs, 'float32'), D);
    const y = Vj(typed(ys, 'float32'), D);
    const sx = asSeen(xs, 'float32');
    const sy = asSeen(ys, 'float32');
    const formulas: [LazyTensor, (a: Vec, b: Vec) => Vec][] = [
      [x.sub(y).abs().maxComponent(), (a, b) => [Math.max(...diff(a, b).map(Math.abs))]],
      [x.mul(y).minComponent(), (a, b) => [Math.min(...zip(a, b, (u, v) => u * v))]],
    ];
    for (const [F, ref] of formulas) {
      const got = await F.sum(1, { engine: 'webgpu' });
      expectGpu(got, F.toString());
      const want = refSum((i, j) => ref(sx[i]!, sy[j]!), { N, M }, 1);
      expectClose(got.data, want.value.flat(), 3e-5, 0, want.scale.flat(), `${F.toString()} D=${D}`);
    }
  });
});

describe.skipIf(!hasGpu)('WebGPU: maxComponent of more than 9 components runs on WebAssembly', () => {
  it('runs on WebAssembly (as the plans the WGSL kernels do not cover), with the right values', async () => {
    const D = 12;
    const random = rng(5);
    const x = Vi(typed(uniformRows(random, 4, D), 'float32'), D);
    const y = Vj(typed(uniformRows(random, 6, D), 'float32'), D);
    const F = x.sub(y).maxComponent();
    const want = await F.sum(1, { engine: 'wasm' });
    for (const engine of ['auto', 'webgpu'] as const) {
      const got = await F.sum(1, { engine });
      expect(got.engine).toBe('wasm');
      expect(Array.from(got.data)).toEqual(Array.from(want.data));
    }
  });
});
