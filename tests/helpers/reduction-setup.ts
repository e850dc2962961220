// Shared data of the reduction suites (WebAssembly and WebGPU): x_i, y_j of dimension D and a
// positive weight b_j of dimension 2, as typed arrays of the given precision and as the engines see them.
import { Vi, Vj } from '../../src/index.js';
import { asSeen, rng, typed, uniformRows } from './random.js';

export function reductionSetup(dtype: 'float32' | 'float64', N: number, M: number, D = 3, seed = 7) {
  const random = rng(seed + N * 1000 + M);
  const xs = uniformRows(random, N, D);
  const ys = uniformRows(random, M, D);
  const bs = uniformRows(random, M, 2, 0.1, 1);
  return {
    x: Vi(typed(xs, dtype), D),
    y: Vj(typed(ys, dtype), D),
    b: Vj(typed(bs, dtype), 2),
    xs: asSeen(xs, dtype),
    ys: asSeen(ys, dtype),
    bs: asSeen(bs, dtype),
  };
}

/** Sizes around the SIMD width, the block and the workgroup. */
export const REDUCTION_SIZES: [number, number][] = [
  [1, 1],
  [3, 1],
  [1, 4],
  [5, 5],
  [2, 15],
  [4, 16],
  [3, 17],
  [6, 511],
  [2, 512],
  [3, 513],
  [4, 1031],
];
