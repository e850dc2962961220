// The finite check of variable data (src/core/input.ts firstNonFinite): float arrays are scanned
// through their bits 8 values at a time, so every position of a block and of the tail, subarrays at
// any offset, and the values next to the non-finite ones (the largest finite, subnormals, -0) are
// checked here against the plain definition, Number.isFinite.
import { describe, expect, it } from 'vitest';
import { Vi } from '../src/index.js';

const special = (f32: boolean): number[] => [
  f32 ? 3.4028234663852886e38 : Number.MAX_VALUE,
  -(f32 ? 3.4028234663852886e38 : Number.MAX_VALUE),
  f32 ? 1.401298464324817e-45 : Number.MIN_VALUE,
  -0,
  0,
  1,
];

describe('finite check of variable data', () => {
  for (const kind of ['float32', 'float64', 'array'] as const) {
    it(`${kind}: every position, several lengths and subarray offsets`, () => {
      const make = (n: number): Float32Array | Float64Array | number[] =>
        kind === 'float32'
          ? new Float32Array(n)
          : kind === 'float64'
            ? new Float64Array(n)
            : new Array<number>(n).fill(0);
      for (const n of [1, 7, 8, 9, 16, 23, 40]) {
        for (const offset of [0, 1, 3]) {
          const base = make(n + offset);
          const fill = special(kind === 'float32');
          for (let k = 0; k < base.length; k++) base[k] = fill[k % fill.length]!;
          const view = (): Float32Array | Float64Array | number[] =>
            Array.isArray(base) ? base.slice(offset) : base.subarray(offset);
          // all finite (the extremes included): accepted
          expect(() => Vi(view(), 1)).not.toThrow();
          for (let k = 0; k < n; k++) {
            for (const bad of [NaN, Infinity, -Infinity]) {
              const keep = base[offset + k]!;
              base[offset + k] = bad;
              // a second bad value later: the first one is named
              const later = Math.min(n - 1, k + 5);
              const keepLater = base[offset + later]!;
              if (later > k) base[offset + later] = NaN;
              expect(Number.isFinite(view()[k]!)).toBe(false);
              expect(() => Vi(view(), 1)).toThrow(`data[${k}][0] is ${String(bad)}`);
              base[offset + later] = keepLater;
              base[offset + k] = keep;
            }
          }
        }
      }
    });
  }
});
