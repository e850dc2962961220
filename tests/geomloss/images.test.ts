// ImagesLoss against independent float64 references: SamplesLoss (a dense, pairwise solver) on the
// pixel centres with the normalised masses, finite differences of the value for the gradients, the
// pyramid against the single-level loop, bad input, cancellation and yielding.
import { describe, expect, it } from 'vitest';
import { GeomLossError, ImagesLoss, SamplesLoss, type ImagesLossOptions } from '../../src/geomloss/index.js';
import { expectMatch, rng } from './helpers.js';
import { allowedGap, expectResponsive } from '../helpers/event-loop.js';

type Shape = [number, number] | [number, number, number];

/** A random image with about `zeros` of its pixels exactly 0. */
function randomImage(r: () => number, shape: Shape, zeros = 0.2): { data: Float64Array; shape: Shape } {
  const N = shape.reduce((p, n) => p * n, 1);
  return { data: Float64Array.from({ length: N }, () => (r() < zeros ? 0 : 0.1 + r())), shape };
}

/** A Gaussian blob centred at c (unit-square coordinates), standard deviation s. */
function blob(shape: Shape, c: number[], s: number): { data: Float64Array; shape: Shape } {
  const pts = centres(shape);
  return {
    data: Float64Array.from(pts, (p) => Math.exp(-p.reduce((q, x, k) => q + (x - c[k]!) ** 2, 0) / (2 * s * s))),
    shape,
  };
}

/** The pixel centres, row-major: ((i + 0.5) / H, (j + 0.5) / W). */
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

const sum = (v: ArrayLike<number>): number => Array.from(v).reduce((p, x) => p + x, 0);

/** SamplesLoss on the pixel centres: value, potentials and d value / d data (through the
 *  normalisation when balanced), every pixel in the cloud (those of mass 0 with weight 0). */
async function reference(A: Float64Array, B: Float64Array, shape: Shape, o: ImagesLossOptions) {
  const pts = centres(shape);
  const diameter = o.diameter ?? Math.sqrt(shape.length);
  const { pyramid: _, ...rest } = o;
  void _;
  const loss = new SamplesLoss({ ...rest, diameter, backend: 'online' });
  const balanced = o.reach === undefined || o.reach === null;
  const a = balanced ? A.map((v) => v / sum(A)) : A;
  const b = balanced ? B.map((v) => v / sum(B)) : B;
  const p = await loss.potentials(pts, pts, { a, b });
  const g = await loss.valueAndGrad(pts, pts, { a, b });
  const project = (gw: ArrayLike<number>, w: Float64Array, total: number) => {
    if (!balanced) return Array.from(gw);
    const mean = sum(Array.from(gw, (v, k) => v * w[k]!));
    return Array.from(gw, (v) => (v - mean) / total);
  };
  return {
    value: p.value,
    f: Array.from(p.f.data),
    g: Array.from(p.g.data),
    gradA: project(g.grad.a.data, a, sum(A)),
    gradB: project(g.grad.b.data, b, sum(B)),
  };
}

const cases: [string, ImagesLossOptions][] = [
  ['default (blur 0.05)', {}],
  ['blur 0.1, scaling 0.7', { blur: 0.1, scaling: 0.7 }],
  ['raw OT (debias false), blur 0.08', { blur: 0.08, debias: false }],
  ['diameter 3, blur 0.03', { diameter: 3, blur: 0.03 }],
  ['unbalanced, reach 0.3', { blur: 0.05, reach: 0.3 }],
  ['unbalanced, reach 0.2, raw', { blur: 0.06, reach: 0.2, debias: false }],
  ['unbalanced, exact gradients, reach 0.5', { blur: 0.05, reach: 0.5, exactUnbalancedGradients: true }],
  ['convergence', { blur: 0.1, convergence: { tol: 1e-8, maxIter: 300 } }],
];

describe('ImagesLoss equals SamplesLoss on the pixel centres', () => {
  for (const shape of [
    [12, 10],
    [6, 5, 4],
  ] as Shape[]) {
    for (const [label, o] of cases) {
      it(`${shape.join(' x ')}: ${label}`, async () => {
        const r = rng(shape.length * 100 + label.length);
        const A = randomImage(r, shape);
        const B = randomImage(r, shape);
        const loss = new ImagesLoss(o);
        const { value, grad, info } = await loss.valueAndGrad(A, B);
        const pot = await loss.potentials(A, B);
        const ref = await reference(A.data, B.data, shape, o);
        expectMatch([value], [ref.value], 1e-6, 'value');
        expectMatch(pot.f.data, ref.f, 1e-6, 'f');
        expectMatch(pot.g.data, ref.g, 1e-6, 'g');
        expectMatch(grad.A.data, ref.gradA, 1e-6, 'grad A');
        expectMatch(grad.B.data, ref.gradB, 1e-6, 'grad B');
        expect(grad.A.shape).toEqual(shape);
        expect(info.levels).toEqual([{ shape, untilEpsilon: info.schedule.at(-1) }]);
        expect(info.schedule.at(-1)).toBeCloseTo((o.blur ?? 0.05) ** 2, 15);
        expect(info.diameter).toBe(o.diameter ?? Math.sqrt(shape.length));
      });
    }
  }

  for (const blur of [0.02, 0.01]) {
    it(`separated blobs, blur ${blur}: where the kernel underflows, the exact log-domain path`, async () => {
      const shape: Shape = [16, 14];
      const cut = (im: { data: Float64Array; shape: Shape }) => ({
        ...im,
        data: im.data.map((v) => (v < 1e-3 ? 0 : v)),
      });
      const A = cut(blob(shape, [0.2, 0.25], 0.08));
      const B = cut(blob(shape, [0.75, 0.7], 0.1));
      const o = { blur };
      const { value, grad } = await new ImagesLoss(o).valueAndGrad(A, B);
      const ref = await reference(A.data, B.data, shape, o);
      expectMatch([value], [ref.value], 1e-6, 'value');
      expectMatch(grad.A.data, ref.gradA, 1e-6, 'grad A');
      expectMatch(grad.B.data, ref.gradB, 1e-6, 'grad B');
    });
  }

  it('pixels of mass 0 may be left out of the cloud', async () => {
    const r = rng(7);
    const shape: Shape = [12, 10];
    const A = randomImage(r, shape, 0.4);
    const B = randomImage(r, shape, 0.4);
    const pts = centres(shape);
    const keep = (im: Float64Array) => {
      const idx = [...im.keys()].filter((k) => im[k]! > 0);
      return { x: idx.map((k) => pts[k]!), w: idx.map((k) => im[k]! / sum(im)) };
    };
    const a = keep(A.data);
    const b = keep(B.data);
    const ref = await new SamplesLoss({ blur: 0.04, diameter: Math.SQRT2 }).value(a.x, b.x, { a: a.w, b: b.w });
    const got = await new ImagesLoss({ blur: 0.04 }).value(A, B);
    expectMatch([got], [ref], 1e-6, 'value');
  });

  it('non-square images and plain number[] data', async () => {
    const r = rng(3);
    const shape: Shape = [3, 17];
    const A = randomImage(r, shape, 0);
    const B = randomImage(r, shape, 0);
    const ref = await reference(A.data, B.data, shape, { blur: 0.05 });
    const got = await new ImagesLoss({ blur: 0.05 }).value(
      { data: Array.from(A.data), shape },
      { data: Array.from(B.data), shape },
    );
    expectMatch([got], [ref.value], 1e-6, 'value');
  });

  for (const shape of [
    [1, 7],
    [1, 1],
    [2, 1, 3],
  ] as Shape[]) {
    it(`degenerate shape [${shape.join(', ')}]`, async () => {
      const r = rng(shape.length + shape[1]!);
      const A = randomImage(r, shape, 0);
      const B = randomImage(r, shape, 0);
      const ref = await reference(A.data, B.data, shape, { blur: 0.05, pyramid: true });
      const got = await new ImagesLoss({ blur: 0.05, pyramid: true }).valueAndGrad(A, B);
      expectMatch([got.value], [ref.value], 1e-6, 'value');
      expectMatch(got.grad.A.data, ref.gradA, 1e-6, 'grad A');
    });
  }

  it('the divergence of an image with itself is 0, its gradient 0', async () => {
    const A = randomImage(rng(5), [9, 8]);
    const { value, grad } = await new ImagesLoss({ blur: 0.05 }).valueAndGrad(A, A);
    expect(Math.abs(value)).toBeLessThan(1e-15);
    for (const v of grad.A.data) expect(Math.abs(v)).toBeLessThan(1e-12);
  });

  it('two translated blobs: W2^2 / 2 = |shift|^2 / 2 at small blur', async () => {
    const shape: Shape = [64, 64];
    const { value, info } = await new ImagesLoss({ blur: 0.01 }).valueAndGrad(
      blob(shape, [0.35, 0.3], 0.06),
      blob(shape, [0.55, 0.6], 0.06),
    );
    expect(value).toBeCloseTo((0.2 ** 2 + 0.3 ** 2) / 2, 3);
    expect(info.levels.length).toBe(1); // 4096 pixels: below the automatic pyramid's threshold
  });
});

describe('ImagesLoss gradients', () => {
  /** Central differences of the value in data[k] (forward differences on a pixel of mass 0). */
  async function finiteDifference(loss: ImagesLoss, A: Float64Array, B: Float64Array, shape: Shape, k: number) {
    const h = 1e-6;
    const at = async (d: number) => {
      const X = A.slice();
      X[k]! += d;
      return loss.value({ data: X, shape }, { data: B, shape });
    };
    return A[k] === 0 ? ((await at(h)) - (await at(0))) / h : ((await at(h)) - (await at(-h))) / (2 * h);
  }

  for (const [label, o, shape] of [
    ['balanced, 2-D', { blur: 0.1, convergence: { tol: 1e-12 } }, [7, 6]],
    ['balanced, 3-D, raw OT', { blur: 0.15, debias: false, convergence: { tol: 1e-12 } }, [4, 3, 5]],
    [
      'unbalanced (exact gradients)',
      { blur: 0.1, reach: 0.4, exactUnbalancedGradients: true, convergence: { tol: 1e-12 } },
      [7, 6],
    ],
  ] as [string, ImagesLossOptions, Shape][]) {
    it(`${label}: the gradient is the derivative of the converged value`, async () => {
      const r = rng(11);
      const A = randomImage(r, shape);
      const B = randomImage(r, shape);
      const loss = new ImagesLoss(o);
      const { grad, info } = await loss.valueAndGrad(A, B);
      expect(info.converged).toBe(true);
      const zero = [...A.data.keys()].find((k) => A.data[k] === 0)!;
      const picks = [0, 5, zero, A.data.length - 1];
      const fd = [];
      for (const k of picks) fd.push(await finiteDifference(loss, A.data, B.data, shape, k));
      expectMatch(
        picks.map((k) => grad.A.data[k]!),
        fd,
        1e-4,
        'grad A vs finite differences',
      );
    });
  }

  it('balanced: the gradient sums to 0 against the data (scale invariance)', async () => {
    const r = rng(2);
    const A = randomImage(r, [8, 8]);
    const B = randomImage(r, [8, 8]);
    const { grad } = await new ImagesLoss({ blur: 0.05 }).valueAndGrad(A, B);
    expect(Math.abs(sum(Array.from(grad.A.data, (g, k) => g * A.data[k]!)))).toBeLessThan(1e-14);
  });
});

describe('ImagesLoss pyramid', () => {
  it('coarse-to-fine agrees with the single-level loop (converged: closely; fixed schedule: to blur accuracy)', async () => {
    const shape: Shape = [32, 30];
    const A = blob(shape, [0.3, 0.4], 0.08);
    const B = blob(shape, [0.6, 0.55], 0.1);
    const converged = { tol: 1e-9, maxIter: 3000 };
    const exact = await new ImagesLoss({ blur: 0.03, pyramid: false, convergence: converged }).valueAndGrad(A, B);
    const coarse = await new ImagesLoss({ blur: 0.03, pyramid: true, convergence: converged }).valueAndGrad(A, B);
    expect(exact.info.converged && coarse.info.converged).toBe(true);
    expect(coarse.info.levels.length).toBeGreaterThan(2);
    expect(coarse.info.levels.at(-1)!.shape).toEqual(shape);
    expect(coarse.info.levels[0]!.shape.every((n) => n <= 8)).toBe(true);
    expectMatch([coarse.value], [exact.value], 1e-7, 'value');
    expectMatch(coarse.grad.A.data, Array.from(exact.grad.A.data), 1e-5, 'grad A');
    const fixed = await new ImagesLoss({ blur: 0.03, pyramid: true }).value(A, B);
    const fixedExact = await new ImagesLoss({ blur: 0.03, pyramid: false }).value(A, B);
    expect(Math.abs(fixed - fixedExact) / fixedExact).toBeLessThan(1e-2);
  });

  it("'auto' uses the pyramid from 5000 pixels", async () => {
    const shape: Shape = [72, 72];
    const { info } = await new ImagesLoss({ blur: 0.05 }).valueAndGrad(
      blob(shape, [0.4, 0.4], 0.1),
      blob(shape, [0.6, 0.5], 0.1),
    );
    expect(info.levels.length).toBeGreaterThan(1);
  });
});

describe('ImagesLoss options, bad input, cancellation', () => {
  const good = { data: new Float64Array(12).fill(1), shape: [3, 4] as Shape };
  const loss = new ImagesLoss();

  it('names the bad image and what was expected', async () => {
    const bad: [unknown, unknown, RegExp][] = [
      [null, good, /ImagesLoss: A must be an image \{ data, shape/],
      [{ data: good.data, shape: [12] }, good, /A\.shape must be \[H, W\] or \[D, H, W\]/],
      [{ data: good.data, shape: [3, 4.5] }, good, /A\.shape must hold positive integers/],
      [good, { data: new Float64Array(11), shape: [3, 4] }, /B\.data has 11 values but \.shape \[3, 4\] needs 12/],
      [good, { data: 'x', shape: [3, 4] }, /B\.data must be a Float32Array, a Float64Array or a number\[\]/],
      [
        { data: [...good.data].map((v, k) => (k === 2 ? -1 : v)), shape: [3, 4] },
        good,
        /A\.data\[2\] is -1: .*non-negative/,
      ],
      [{ data: [...good.data].map((v, k) => (k === 4 ? NaN : v)), shape: [3, 4] }, good, /A\.data\[4\] is NaN/],
      [good, { data: new Float64Array(12), shape: [3, 4] }, /B is all zeros/],
      [good, { data: new Float64Array(12).fill(1), shape: [4, 3] }, /B\.shape \[4, 3\] differs from A\.shape \[3, 4\]/],
      [good, { data: new Float64Array(24).fill(1), shape: [2, 3, 4] }, /B\.shape \[2, 3, 4\] differs/],
    ];
    for (const [A, B, msg] of bad) {
      const p = loss.value(A as typeof good, B as typeof good);
      await expect(p).rejects.toThrow(GeomLossError);
      await expect(loss.value(A as typeof good, B as typeof good)).rejects.toThrow(msg);
    }
    await expect(loss.value({ data: new Float32Array(12).fill(1), shape: [3, 4] }, good)).rejects.toThrow(
      /A is float32 but B is float64; pass \{ dtype \}/,
    );
  });

  it('names the bad option', () => {
    const bad: [unknown, RegExp][] = [
      [{ p: 1 }, /ImagesLoss: p = 1 is not supported: .*separable/],
      [{ blur: 0 }, /ImagesLoss: blur must be a positive number/],
      [{ scaling: 1 }, /ImagesLoss: scaling must be a number in \(0, 1\)/],
      [{ reach: -1 }, /ImagesLoss: reach must be null/],
      [{ loss: 'energy' }, /ImagesLoss: unknown option 'loss'/],
      [{ backend: 'online' }, /ImagesLoss: unknown option 'backend'/],
      [{ pyramid: 'yes' }, /ImagesLoss: pyramid must be true, false or 'auto'/],
      [{ dtype: 'float16' }, /ImagesLoss: dtype must be 'float32' or 'float64'/],
      ['fast', /ImagesLoss: options must be an object/],
    ];
    for (const [o, msg] of bad) {
      expect(() => new ImagesLoss(o as ImagesLossOptions)).toThrow(GeomLossError);
      expect(() => new ImagesLoss(o as ImagesLossOptions)).toThrow(msg);
    }
  });

  it('a blur too small for float64 is a named error', async () => {
    await expect(new ImagesLoss({ blur: 1e-170 }).value(good, good)).rejects.toThrow(/blur = 1e-170 is too small/);
  });

  it('dtype float32 returns Float32Arrays (Float32Array inputs too)', async () => {
    const A = { data: Float32Array.from(good.data), shape: good.shape };
    const B = { data: Float32Array.from(good.data, (v, k) => v + k), shape: good.shape };
    const r = await loss.valueAndGrad(A, B);
    expect(r.grad.A.data).toBeInstanceOf(Float32Array);
    expect(r.info.dtype).toBe('float32');
    const r64 = await new ImagesLoss({ dtype: 'float64' }).valueAndGrad(A, B);
    expect(r64.grad.A.data).toBeInstanceOf(Float64Array);
    expect(r.value).toBe(r64.value);
  });

  it('onProgress follows the schedule; an aborted signal rejects', async () => {
    const seen: number[] = [];
    const o = new ImagesLoss({ blur: 0.05, onProgress: (p) => seen.push(p.epsilon) });
    const { info } = await o.valueAndGrad(good, { data: good.data.map((v, k) => k), shape: good.shape });
    expect(seen).toEqual(info.schedule);
    const c = new AbortController();
    c.abort(new Error('stop'));
    await expect(loss.value(good, good, { signal: c.signal })).rejects.toThrow('stop');
    await expect(loss.value(good, good, { signal: 'no' as never })).rejects.toThrow(/signal must be an AbortSignal/);
    await expect(loss.value(good, good, { sig: null } as never)).rejects.toThrow(/unknown call option 'sig'/);
  });

  it('yields to the event loop and stops within milliseconds of an abort', async () => {
    const shape: Shape = [96, 96];
    const A = blob(shape, [0.4, 0.4], 0.1);
    const B = blob(shape, [0.6, 0.5], 0.1);
    let abortedAt = 0;
    let stoppedAt = 0;
    const { ticks } = await expectResponsive(async () => {
      const c = new AbortController();
      setTimeout(() => {
        abortedAt = performance.now();
        c.abort(new Error('late stop'));
      }, 150);
      const run = new ImagesLoss({ blur: 0.01, pyramid: false, signal: c.signal }).valueAndGrad(A, B);
      await expect(run).rejects.toThrow('late stop');
      stoppedAt = performance.now();
    }, 150);
    expect(ticks).toBeGreaterThan(3);
    // Stopped at the next check after the abort (the solve itself takes seconds), within the gap
    // bound widened by the machine's current lateness.
    expect(stoppedAt - abortedAt).toBeLessThan(await allowedGap(150));
  });

  it('the setup of a 256 x 256 solve yields too (it held the event loop 0.2-0.3 s)', async () => {
    const shape: Shape = [256, 256];
    const A = blob(shape, [0.4, 0.4], 0.1);
    const B = blob(shape, [0.6, 0.5], 0.1);
    for (const pyramid of [false, true]) {
      await expectResponsive(async () => {
        const c = new AbortController();
        // Long enough for the setup (parsing, normalising, logs, kernels, pyramid) and the first passes.
        setTimeout(() => c.abort(new Error('stop')), 400);
        await expect(new ImagesLoss({ blur: 0.01, pyramid, signal: c.signal }).valueAndGrad(A, B)).rejects.toThrow(
          'stop',
        );
      }, 120);
    }
  });
});
