// Bad options and inputs: a GeomLossError whose message names the argument.
import { describe, expect, it } from 'vitest';
import { GeomLossError, SamplesLoss, type SamplesLossOptions } from '../../src/geomloss/index.js';
import type { LazyTensor } from '../../src/index.js';

const x = [
  [0, 0],
  [1, 0],
  [0, 1],
  [1, 1],
  [0.5, 0.5],
];
const y = [
  [0.2, 0.1],
  [0.9, 0.4],
  [0.3, 0.8],
];

function expectError(run: () => unknown, pattern: RegExp): void {
  let error: unknown = null;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(error, `expected an error matching ${pattern}`).toBeInstanceOf(GeomLossError);
  expect((error as Error).message).toMatch(pattern);
}

async function expectRejection(run: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await run().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, `expected an error matching ${pattern}`).toBeInstanceOf(GeomLossError);
  expect((error as Error).message).toMatch(pattern);
}

describe('options', () => {
  const bad: [string, SamplesLossOptions | Record<string, unknown>, RegExp][] = [
    ['blur = 0', { blur: 0 }, /blur must be a positive number, got 0/],
    ['blur < 0', { blur: -0.1 }, /blur must be a positive number/],
    ['blur NaN', { blur: NaN }, /blur must be a positive number/],
    ['blur <= 0 for a kernel', { loss: 'gaussian', blur: 0 }, /blur/],
    ['p = 3 without a cost', { p: 3 }, /p = 3 needs a custom cost/],
    ['p = 1.5 for hausdorff', { loss: 'hausdorff', p: 1.5 }, /p = 1.5 needs a custom cost/],
    ['p = 0', { p: 0 }, /p must be a positive number/],
    ['unknown option', { blurr: 0.1 }, /unknown option 'blurr'/],
    ['unknown loss', { loss: 'wasserstein' }, /loss must be one of/],
    ['scaling = 1', { scaling: 1 }, /scaling must be a number in \(0, 1\)/],
    ['reach < 0', { reach: -1 }, /reach must be null \(balanced\) or a positive number/],
    ['diameter = 0', { diameter: 0 }, /diameter must be null or a positive number/],
    ['truncate = 0', { truncate: 0 }, /truncate/],
    [
      'multiscale backend for hausdorff',
      { loss: 'hausdorff', backend: 'multiscale' },
      /backend 'multiscale' is for loss 'sinkhorn'/,
    ],
    [
      'multiscale backend with a custom cost',
      { backend: 'multiscale', p: 3, cost: (a: LazyTensor, b: LazyTensor) => a.sqDist(b) },
      /backend 'multiscale' needs the built-in costs/,
    ],
    ['unknown backend', { backend: 'tensorized' }, /backend must be 'auto', 'online' or 'multiscale'/],
    ['dtype', { dtype: 'float16' }, /dtype must be 'float32' or 'float64'/],
    ['engine', { engine: 'cuda' }, /engine must be/],
    [
      'cost with a kernel loss',
      { loss: 'energy', cost: (u: never) => u },
      /cost is for the 'sinkhorn' and 'hausdorff' losses/,
    ],
    [
      'kernel with sinkhorn',
      { kernel: (u: never) => u },
      /kernel is for the 'energy', 'gaussian' and 'laplacian' losses/,
    ],
    ['cost not a function', { cost: 3 }, /cost must be a function/],
    ['convergence key', { convergence: { tolerance: 1e-3 } }, /unknown option 'convergence.tolerance'/],
    ['convergence maxIter', { convergence: { maxIter: 0 } }, /convergence.maxIter must be a positive integer/],
    [
      'convergence for kernels',
      { loss: 'gaussian', convergence: true },
      /convergence is for the 'sinkhorn' and 'hausdorff' losses/,
    ],
    ['onProgress', { onProgress: 'log' }, /onProgress must be a function/],
  ];
  for (const [name, opts, pattern] of bad) {
    it(name, () => expectError(() => new SamplesLoss(opts as SamplesLossOptions), pattern));
  }

  it('GeomLoss defaults', () => {
    const o = new SamplesLoss().options;
    expect(o).toMatchObject({
      loss: 'sinkhorn',
      p: 2,
      blur: 0.05,
      reach: null,
      diameter: null,
      scaling: 0.5,
      truncate: 5,
      clusterScale: null,
      debias: true,
      backend: 'auto',
      cost: null,
      kernel: null,
      verbose: false,
      convergence: null,
    });
  });
});

describe('inputs', () => {
  const loss = new SamplesLoss();
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    [
      'NaN coordinate',
      () =>
        loss.value(
          [
            [0, 0],
            [NaN, 1],
          ],
          y,
        ),
      /x\[1\]\[0\] is NaN: coordinates of x must be finite/,
    ],
    ['Infinity in y', () => loss.value(x, [[0, Infinity]]), /y\[0\]\[1\] is Infinity/],
    [
      'NaN in typed data',
      () => loss.value({ data: Float64Array.of(0, 0, 1, NaN), shape: [2, 2] }, y),
      /x has a non-finite coordinate \(NaN\) at \[1\]\[1\]/,
    ],
    [
      'mismatched dimensions',
      () => loss.value(x, [[0, 0, 0]]),
      /x and y must have the same dimension D: x has D = 2, y has D = 3/,
    ],
    ['ragged rows', () => loss.value([[0, 0], [1]], y), /x\[1\] has 1 coordinates, expected D = 2/],
    ['empty cloud', () => loss.value([], y), /x is empty/],
    ['missing y', () => loss.value(x, undefined as never), /y is required/],
    [
      'shape / data mismatch',
      () => loss.value({ data: new Float32Array(6), shape: [2, 2] }, y),
      /x.data has 6 values but x.shape \[2, 2\] needs 4/,
    ],
    [
      'bad shape',
      () => loss.value({ data: new Float32Array(6), shape: [6] as never }, y),
      /x.shape must be \[N, D\] or \[B, N, D\]/,
    ],
    ['a of the wrong length', () => loss.value(x, y, { a: [0.5, 0.5] }), /a has 2 weights but x has N = 5 points/],
    [
      'b of the wrong length',
      () => loss.value(x, y, { b: new Float64Array(4).fill(0.25) }),
      /b has 4 weights but y has N = 3 points/,
    ],
    [
      'negative weight',
      () => loss.value(x, y, { a: [0.5, 0.5, 0.5, -0.5, 0] }),
      /a\[3\] is -0.5: weights must be non-negative/,
    ],
    ['all-zero weights', () => loss.value(x, y, { b: [0, 0, 0] }), /b has all-zero weights/],
    ['NaN weight', () => loss.value(x, y, { b: [0.5, NaN, 0.5] }), /b\[1\] is NaN: weights must be finite/],
    ['unknown weights key', () => loss.value(x, y, { a: undefined, c: [1] } as never), /unknown weights key 'c'/],
    [
      'batch sizes differ',
      () => loss.value([x, x], [y]),
      /x and y must have the same batch size: x has B = 2, y has B = 1/,
    ],
    ['batched against single', () => loss.value([x, x], y), /x and y must both be batched/],
    [
      'batch items of different sizes',
      () => loss.value([x, y], [y, y]),
      /x\[1\] has 3 points; every batch item must have N = 5/,
    ],
    [
      'batched weights of the wrong size',
      () => loss.value([x, x], [y, y], { a: [[1, 1, 1, 1, 1]] }),
      /a has 1 rows but x has a batch of B = 2/,
    ],
    [
      'batched weights for a single cloud',
      () => loss.value(x, y, { a: [[1, 1, 1, 1, 1]] }),
      /a is a \[B, N\] array but x is a single cloud/,
    ],
    [
      'all-zero weights in one batch item',
      () =>
        loss.value([x, x], [y, y], {
          b: [
            [1, 1, 1],
            [0, 0, 0],
          ],
        }),
      /b\[1\] has all-zero weights/,
    ],
    [
      'mixed precisions',
      () => loss.value({ data: new Float32Array(10), shape: [5, 2] }, { data: new Float64Array(6), shape: [3, 2] }),
      /x is float32 but y is float64; pass \{ dtype \}/,
    ],
    [
      'a custom cost of the wrong dimension',
      () => new SamplesLoss({ cost: (u, v) => u.sub(v) }).value(x, y),
      /cost must return a formula of dimension 1, got dimension 2/,
    ],
    [
      'a custom cost that is not a formula',
      () => new SamplesLoss({ cost: () => 3 as never }).value(x, y),
      /cost must return a LazyTensor/,
    ],
  ];
  for (const [name, run, pattern] of cases) {
    it(name, () => expectRejection(run, pattern));
  }
});
