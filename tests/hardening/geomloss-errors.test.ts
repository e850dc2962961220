// Every GeomLossError names one entry point (the function or class the user called) and then the
// argument: never two ("SamplesLoss: ImagesLoss: blur ..."), never SamplesLoss for a check shared
// with another entry point.
import { describe, expect, it } from 'vitest';
import { LazyTensorError } from '../../src/index.js';
import {
  epsilonSchedule,
  GeomLossError,
  imagesBarycenter,
  ImagesLoss,
  SamplesLoss,
  slicedWasserstein,
  solveSamples,
  wassersteinBarycenter,
} from '../../src/geomloss/index.js';

const ENTRIES = [
  'SamplesLoss',
  'ImagesLoss',
  'imagesBarycenter',
  'wassersteinBarycenter',
  'slicedWasserstein',
  'solveSamples',
  'epsilonSchedule',
];

const x = [
  [0, 0],
  [1, 0],
  [0, 1],
];
const y = [
  [0.5, 0.5],
  [1, 1],
];
const image = { data: new Float64Array(16).fill(1), shape: [4, 4] as [number, number] };

async function failure(run: () => unknown): Promise<GeomLossError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(GeomLossError);
    expect(error).toBeInstanceOf(LazyTensorError);
    return error as GeomLossError;
  }
  throw new Error('expected a GeomLossError');
}

/** The message is `${entry}: ${detail}`, the detail names the argument and holds no entry point prefix. */
function expectNamed(error: GeomLossError, entry: string, argument: RegExp): void {
  expect(error.entry).toBe(entry);
  expect(error.message).toBe(`${entry}: ${error.detail}`);
  for (const other of ENTRIES) expect(error.detail.startsWith(`${other}:`), error.message).toBe(false);
  expect(error.detail).toMatch(argument);
}

describe('GeomLossError messages: one entry point, then the argument', () => {
  const cases: [string, string, () => unknown, RegExp][] = [
    ['SamplesLoss options', 'SamplesLoss', () => new SamplesLoss({ blur: -1 }), /^blur/],
    ['SamplesLoss points', 'SamplesLoss', () => new SamplesLoss().value([[NaN, 0]], y), /\bx\b/],
    ['ImagesLoss unknown option', 'ImagesLoss', () => new ImagesLoss({ nope: 1 } as never), /unknown option 'nope'/],
    // A shared option check (SamplesLoss's resolveOptions) used to read "SamplesLoss: ImagesLoss: blur".
    ['ImagesLoss shared option check', 'ImagesLoss', () => new ImagesLoss({ blur: -1 }), /^blur/],
    ['ImagesLoss p', 'ImagesLoss', () => new ImagesLoss({ p: 1 }), /^p = 1/],
    ['ImagesLoss image', 'ImagesLoss', () => new ImagesLoss().value({ data: [1], shape: [4, 4] } as never, image), /A/],
    [
      'ImagesLoss call option',
      'ImagesLoss',
      () => new ImagesLoss().value(image, image, { nope: 1 } as never),
      /unknown call option 'nope'/,
    ],
    ['imagesBarycenter images', 'imagesBarycenter', () => imagesBarycenter([]), /^images must/],
    [
      'imagesBarycenter shared option check',
      'imagesBarycenter',
      () => imagesBarycenter([image], { blur: -1 }),
      /^blur/,
    ],
    [
      'slicedWasserstein own check',
      'slicedWasserstein',
      () => slicedWasserstein(x, y, { projections: 0 }),
      /^projections/,
    ],
    ['slicedWasserstein shared point check', 'slicedWasserstein', () => slicedWasserstein([[NaN, 0]], y), /\bx\b/],
    ['slicedWasserstein signal', 'slicedWasserstein', () => slicedWasserstein(x, y, { signal: 1 as never }), /^signal/],
    ['solveSamples loss', 'solveSamples', () => solveSamples(x, y, { loss: 'energy' }), /^options\.loss/],
    ['solveSamples shared option check', 'solveSamples', () => solveSamples(x, y, { blur: -1 }), /^blur/],
    // The schedule's check names the public epsilonSchedule when called directly (it used to read
    // "SamplesLoss: scaling ..."), and the loss that calls it otherwise.
    [
      'epsilonSchedule scaling',
      'epsilonSchedule',
      () => epsilonSchedule(2, 1, 0.05, 0.999999),
      /^scaling = 0\.999999 makes an epsilon schedule of .* temperatures/,
    ],
    [
      'epsilonSchedule p',
      'epsilonSchedule',
      () => epsilonSchedule(0, 1, 0.05, 0.5),
      /^p must be a finite number > 0, got 0/,
    ],
    [
      'epsilonSchedule diameter',
      'epsilonSchedule',
      () => epsilonSchedule(2, -1, 0.05, 0.5),
      /^diameter must be a finite number > 0, got -1/,
    ],
    [
      'epsilonSchedule blur',
      'epsilonSchedule',
      () => epsilonSchedule(2, 1, NaN, 0.5),
      /^blur must be a finite number > 0, got NaN/,
    ],
    [
      'epsilonSchedule scaling range',
      'epsilonSchedule',
      () => epsilonSchedule(2, 1, 0.05, 1),
      /^scaling must be a number in \(0, 1\), got 1/,
    ],
    [
      'SamplesLoss scaling (its schedule)',
      'SamplesLoss',
      () => new SamplesLoss({ scaling: 0.999999 }).value(x, y),
      /^scaling = 0\.999999 makes an epsilon schedule/,
    ],
    [
      'ImagesLoss scaling (its schedule)',
      'ImagesLoss',
      () => new ImagesLoss({ scaling: 0.999999 }).value(image, image),
      /^scaling = 0\.999999 makes an epsilon schedule/,
    ],
    [
      'solveSamples scaling (its schedule)',
      'solveSamples',
      () => solveSamples(x, y, { scaling: 0.999999 }),
      /^scaling = 0\.999999 makes an epsilon schedule/,
    ],
    ['wassersteinBarycenter measures', 'wassersteinBarycenter', () => wassersteinBarycenter([]), /measures/],
    [
      'wassersteinBarycenter shared point check',
      'wassersteinBarycenter',
      () => wassersteinBarycenter([{ x: [[NaN, 0]] }]),
      /x/,
    ],
  ];
  for (const [what, entry, run, argument] of cases) {
    it(`${what}: ${entry}`, async () => expectNamed(await failure(run), entry, argument));
  }

  it('an error relabelled for its entry point keeps the original as its cause', async () => {
    const error = await failure(() => new ImagesLoss({ blur: -1 }));
    expect(error.cause).toBeInstanceOf(GeomLossError);
    expect((error.cause as GeomLossError).detail).toBe(error.detail);
  });

  it('the constructor keeps a leading entry point, else names the one given (default SamplesLoss)', () => {
    expect(new GeomLossError('ImagesLoss: A is bad').message).toBe('ImagesLoss: A is bad');
    expect(new GeomLossError('A is bad').message).toBe('SamplesLoss: A is bad');
    expect(new GeomLossError('A is bad', 'slicedWasserstein').message).toBe('slicedWasserstein: A is bad');
    expect(new GeomLossError('A is bad').name).toBe('GeomLossError');
  });
});
