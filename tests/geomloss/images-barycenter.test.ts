// imagesBarycenter against a dense float64 reference (iterative Bregman projections with the N x N
// Gaussian kernel, in plain arithmetic), and its geometry: identical images, translated blobs.
import { describe, expect, it } from 'vitest';
import { GeomLossError, imagesBarycenter, ImagesLoss } from '../../src/geomloss/index.js';
import { expectMatch, rng } from './helpers.js';

type Shape = [number, number] | [number, number, number];

function centres(shape: readonly number[]): number[][] {
  const out: number[][] = [];
  const idx = shape.map(() => 0);
  const N = shape.reduce((p, n) => p * n, 1);
  for (let k = 0; k < N; k++) {
    out.push(idx.map((i, d) => (i + 0.5) / shape[d]!));
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

function blob(shape: Shape, c: number[], s: number): { data: Float64Array; shape: Shape } {
  return {
    data: Float64Array.from(centres(shape), (p) =>
      Math.exp(-p.reduce((q, x, k) => q + (x - c[k]!) ** 2, 0) / (2 * s * s)),
    ),
    shape,
  };
}

/** Benamou et al.'s iterative Bregman projections with the dense kernel K_ij = exp(-|x_i - x_j|^2 / (2 eps)). */
function denseBarycenter(images: Float64Array[], shape: Shape, weights: number[], blur: number, iterations: number) {
  const pts = centres(shape);
  const N = pts.length;
  const eps = blur * blur;
  const K = pts.map((p) => pts.map((q) => Math.exp(-p.reduce((s, x, k) => s + (x - q[k]!) ** 2, 0) / (2 * eps))));
  const apply = (v: number[]) => K.map((row) => row.reduce((s, k, j) => s + k * v[j]!, 0));
  const mu = images.map((im) => {
    const t = im.reduce((p, v) => p + v, 0);
    return Array.from(im, (v) => v / t);
  });
  const U = images.map(() => new Array<number>(N).fill(1));
  let q = new Array<number>(N).fill(0);
  for (let it = 0; it < iterations; it++) {
    const KV = mu.map((m, k) => {
      const KU = apply(U[k]!);
      return apply(m.map((v, i) => v / KU[i]!));
    });
    q = q.map((_, i) => Math.exp(weights.reduce((s, w, k) => s + w * Math.log(U[k]![i]! * KV[k]![i]!), 0)));
    for (let k = 0; k < U.length; k++) U[k] = q.map((v, i) => v / KV[k]![i]!);
  }
  return q;
}

const centroid = (data: ArrayLike<number>, shape: Shape): number[] => {
  const pts = centres(shape);
  let m = 0;
  const c = shape.map(() => 0);
  pts.forEach((p, k) => {
    m += data[k]!;
    p.forEach((x, d) => (c[d]! += x * data[k]!));
  });
  return c.map((v) => v / m);
};

describe('imagesBarycenter', () => {
  for (const [shape, K, blur] of [
    [[6, 5], 3, 0.2],
    [[7, 9], 2, 0.1],
    [[4, 3, 5], 2, 0.25],
  ] as [Shape, number, number][]) {
    it(`equals the dense reference: ${shape.join(' x ')}, K = ${K}, blur ${blur}`, async () => {
      const r = rng(shape.length * 10 + K);
      const N = shape.reduce((p, n) => p * n, 1);
      const images = Array.from({ length: K }, () => Float64Array.from({ length: N }, () => (r() < 0.2 ? 0 : r())));
      const w = Array.from({ length: K }, () => 0.1 + r());
      const total = w.reduce((p, v) => p + v, 0);
      const ref = denseBarycenter(
        images,
        shape,
        w.map((v) => v / total),
        blur,
        15,
      );
      const got = await imagesBarycenter(
        images.map((data) => ({ data, shape })),
        { weights: w, blur, iterations: 15, tol: 0 },
      );
      expect(got.shape).toEqual(shape);
      expect(got.info.iterations).toBe(15);
      expectMatch(got.data, ref, 1e-10, 'barycenter');
      expect(got.info.weights.reduce((p, v) => p + v, 0)).toBeCloseTo(1, 15);
    });
  }

  it('the barycenter of identical images is the image, up to the blur', async () => {
    const shape: Shape = [48, 48];
    const A = blob(shape, [0.45, 0.55], 0.1);
    const mass = A.data.reduce((p, v) => p + v, 0);
    const errors: number[] = [];
    for (const blur of [0.04, 0.02, 0.01]) {
      const q = await imagesBarycenter([A, A, A], { blur, weights: [0.2, 0.3, 0.5] });
      expect(q.info.converged).toBe(true);
      let l1 = 0;
      for (let k = 0; k < q.data.length; k++) l1 += Math.abs(q.data[k]! - A.data[k]! / mass);
      errors.push(l1);
      expect(q.info.mass).toBeCloseTo(1, 6);
    }
    // A Gaussian blurred by the kernel twice: the error shrinks like blur^2 / s^2.
    expect(errors[0]).toBeLessThan(0.2);
    expect(errors[1]!).toBeLessThan(errors[0]! / 3);
    expect(errors[2]!).toBeLessThan(errors[1]! / 3);
    expect(errors[2]).toBeLessThan(0.02);
  });

  it('two translated blobs: a blob at the weighted mean position', async () => {
    const shape: Shape = [40, 40];
    const c1 = [0.3, 0.35];
    const c2 = [0.65, 0.6];
    const A = blob(shape, c1, 0.06);
    const B = blob(shape, c2, 0.06);
    for (const w of [0.5, 0.25]) {
      const q = await imagesBarycenter([A, B], { weights: [w, 1 - w], blur: 0.02, iterations: 500, tol: 1e-7 });
      expect(q.info.converged).toBe(true);
      const c = centroid(q.data, shape);
      expect(c[0]).toBeCloseTo(w * c1[0]! + (1 - w) * c2[0]!, 3);
      expect(c[1]).toBeCloseTo(w * c1[1]! + (1 - w) * c2[1]!, 3);
      // One blob, not two: the divergence to the translated blob is small next to that to A.
      const target = blob(shape, [w * c1[0]! + (1 - w) * c2[0]!, w * c1[1]! + (1 - w) * c2[1]!], 0.06);
      const loss = new ImagesLoss({ blur: 0.02 });
      const near = await loss.value(q, target);
      const far = await loss.value(q, A);
      expect(near).toBeLessThan(0.02 * far);
    }
  });

  it('a 3-D barycenter of translated blobs', async () => {
    const shape: Shape = [16, 16, 16];
    const q = await imagesBarycenter([blob(shape, [0.3, 0.4, 0.5], 0.08), blob(shape, [0.7, 0.6, 0.5], 0.08)], {
      blur: 0.04,
      iterations: 300,
      tol: 1e-6,
    });
    const c = centroid(q.data, shape);
    expectMatch(c, [0.5, 0.5, 0.5], 1e-3, 'centroid');
  });

  it('names the bad argument', async () => {
    const good = { data: new Float64Array(6).fill(1), shape: [2, 3] as Shape };
    const bad: [unknown, unknown, RegExp][] = [
      [[], {}, /imagesBarycenter: images must be a non-empty array/],
      [good, {}, /images must be a non-empty array/],
      [[good, { data: new Float64Array(6), shape: [2, 3] }], {}, /images\[1\] is all zeros/],
      [
        [good, { data: new Float64Array(6).fill(1), shape: [3, 2] }],
        {},
        /images\[1\]\.shape \[3, 2\] differs from images\[0\]\.shape/,
      ],
      [[good, { data: [1, 1, -1, 1, 1, 1], shape: [2, 3] }], {}, /images\[1\]\.data\[2\] is -1/],
      [[good, good], { weights: [1] }, /weights has 1 entries but there are 2 images/],
      [[good, good], { weights: [1, -1] }, /weights\[1\] is -1/],
      [[good, good], { weights: [0, 0] }, /weights are all zero/],
      [[good], { blur: -1 }, /imagesBarycenter: blur must be a positive number/],
      [[good], { iterations: 0 }, /iterations must be an integer/],
      [[good], { tol: -1 }, /tol must be a non-negative number/],
      [[good], { reach: 1 }, /unknown option 'reach'/],
      [[good], { signal: 1 }, /signal must be an AbortSignal/],
    ];
    for (const [images, o, msg] of bad) {
      const p = imagesBarycenter(images as never, o as never);
      await expect(p).rejects.toThrow(GeomLossError);
      await expect(imagesBarycenter(images as never, o as never)).rejects.toThrow(msg);
    }
  });

  it('reports progress, returns float32 for float32 inputs, and can be cancelled', async () => {
    const shape: Shape = [10, 10];
    const A = { data: Float32Array.from(blob(shape, [0.3, 0.3], 0.1).data), shape };
    const B = { data: Float32Array.from(blob(shape, [0.6, 0.6], 0.1).data), shape };
    const seen: number[] = [];
    const q = await imagesBarycenter([A, B], { iterations: 5, tol: 0, onProgress: (p) => seen.push(p.iteration) });
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(q.data).toBeInstanceOf(Float32Array);
    const c = new AbortController();
    c.abort(new Error('stop'));
    await expect(imagesBarycenter([A, B], { signal: c.signal })).rejects.toThrow('stop');
  });
});
