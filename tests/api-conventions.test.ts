// Conventions fixed for users coming from KeOps: sortClusters keeps float32, and takes a Tensor.
import { describe, expect, it } from 'vitest';
import { Tensor, gridCluster, sortClusters } from '../src/index.js';

describe('sortClusters', () => {
  const pts = [0.9, 0.1, 0.2, 0.8, 0.5, 0.55];
  const labels = [2, 0, 1];
  it('keeps float32 data float32 and float64 data float64, sorted stably by label', () => {
    const f32 = sortClusters(Float32Array.from(pts), labels, 2);
    expect(f32.points).toBeInstanceOf(Float32Array);
    // rows (0.9, 0.1) label 2, (0.2, 0.8) label 0, (0.5, 0.55) label 1 -> 0, 1, 2
    const want = [0.2, 0.8, 0.5, 0.55, 0.9, 0.1];
    expect(Array.from(f32.points)).toEqual(want.map(Math.fround));
    const f64 = sortClusters(Float64Array.from(pts), labels, 2);
    expect(f64.points).toBeInstanceOf(Float64Array);
    expect(Array.from(f64.points)).toEqual(want);
    expect(Array.from(f64.permutation)).toEqual([1, 2, 0]);
    expect(Array.from(f64.labels)).toEqual([0, 1, 2]);
  });
  it('takes a Tensor, its shape giving the dimension', () => {
    const t = new Tensor(Float32Array.from(pts), [3, 2], 'wasm');
    const s = sortClusters(
      t,
      gridCluster(
        [
          [0.9, 0.1],
          [0.2, 0.8],
          [0.5, 0.55],
        ],
        0.5,
      ),
    );
    expect(s.points).toBeInstanceOf(Float32Array);
    expect(s.points.length).toBe(6);
    expect(() => sortClusters(t, [0, 0, 0], 3)).toThrow(/dim is 3 but the Tensor's shape \[3, 2\] has D = 2/);
  });
});
