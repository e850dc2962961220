// Labelled (ragged) batches: { labelsX, labelsY } run L problems in one pass of block-diagonal
// reductions. Each label's value, and the gradients and potentials on its points, equal those of a
// separate call on that label's points (same schedule: a fixed diameter).
import { describe, expect, it } from 'vitest';
import { GeomLossError, SamplesLoss, solveSamples, type SamplesLossOptions } from '../../src/geomloss/index.js';
import { cloud, expectMatch, rng, weights } from './helpers.js';

const r = rng(2024);
// Three labels of different sizes, in shuffled order (not sorted by label).
const sizesX = [5, 9, 3];
const sizesY = [7, 4, 6];
const shuffle = (labels: number[]) => {
  const out = labels.slice();
  for (let k = out.length - 1; k > 0; k--) {
    const q = Math.floor(r() * (k + 1));
    [out[k], out[q]] = [out[q]!, out[k]!];
  }
  return out;
};
const labelsX = shuffle(sizesX.flatMap((n, l) => new Array<number>(n).fill(l)));
const labelsY = shuffle(sizesY.flatMap((n, l) => new Array<number>(n).fill(l)));
const x = labelsX.map((l) => cloud(r, 1, 2, 0.4 * l)[0]!);
const y = labelsY.map((l) => cloud(r, 1, 2, 0.4 * l + 0.1)[0]!);
const L = 3;
/** Random weights with mass 1 in each label (balanced problems need equal masses per label). */
const perLabel = (labels: number[]) => {
  const w = weights(r, labels.length);
  const mass = new Array<number>(L).fill(0);
  labels.forEach((l, i) => (mass[l]! += w[i]!));
  return w.map((v, i) => v / mass[labels[i]!]!);
};
const a = perLabel(labelsX);
const b = perLabel(labelsY);
const rowsOf = (labels: number[], l: number) => labels.flatMap((v, i) => (v === l ? [i] : []));

/** Values, gradients and potentials of separate calls, one per label, scattered back per point. */
async function separate(o: SamplesLossOptions, withWeights: boolean) {
  const loss = new SamplesLoss(o);
  const values: number[] = [];
  const gx = new Array<number>(2 * x.length);
  const gy = new Array<number>(2 * y.length);
  const ga = new Array<number>(x.length);
  const gb = new Array<number>(y.length);
  const f = new Array<number>(x.length);
  const g = new Array<number>(y.length);
  let reductions = 0;
  for (let l = 0; l < L; l++) {
    const ix = rowsOf(labelsX, l);
    const iy = rowsOf(labelsY, l);
    const w = withWeights ? { a: ix.map((i) => a[i]!), b: iy.map((j) => b[j]!) } : {};
    const xl = ix.map((i) => x[i]!);
    const yl = iy.map((j) => y[j]!);
    const res = await loss.valueAndGrad(xl, yl, w);
    const pot = await loss.potentials(xl, yl, w);
    reductions = res.info.reductions;
    values.push(res.value);
    ix.forEach((i, q) => {
      gx[2 * i] = res.grad.x.data[2 * q]!;
      gx[2 * i + 1] = res.grad.x.data[2 * q + 1]!;
      ga[i] = res.grad.a.data[q]!;
      f[i] = pot.f.data[q]!;
    });
    iy.forEach((j, q) => {
      gy[2 * j] = res.grad.y.data[2 * q]!;
      gy[2 * j + 1] = res.grad.y.data[2 * q + 1]!;
      gb[j] = res.grad.b.data[q]!;
      g[j] = pot.g.data[q]!;
    });
  }
  return { values, gx, gy, ga, gb, f, g, reductions };
}

describe('labelled batches { labelsX, labelsY }', () => {
  const configs: [string, SamplesLossOptions, boolean][] = [
    ['debiased, weighted', { blur: 0.1, diameter: 2 }, true],
    ['debiased, uniform per label', { blur: 0.1, diameter: 2 }, false],
    ['raw OT, p = 1', { blur: 0.1, diameter: 2, p: 1, debias: false }, true],
    ['unbalanced (reach 0.3)', { blur: 0.1, diameter: 2, reach: 0.3 }, true],
  ];
  for (const [label, o, withWeights] of configs) {
    it(`equal separate calls per label: values, gradients, potentials (${label})`, async () => {
      const loss = new SamplesLoss({ ...o, backend: 'online' });
      const w = withWeights ? { a, b, labelsX, labelsY } : { labelsX: Int32Array.from(labelsX), labelsY };
      const res = await loss.valueAndGrad(x, y, w);
      const pot = await loss.potentials(x, y, w);
      const one = await loss.value(x, y, w);
      const ref = await separate(o, withWeights);
      expect(res.value).toHaveLength(L);
      expectMatch(res.value, ref.values, 1e-12, 'values');
      expectMatch(one, ref.values, 1e-12, 'value()');
      expectMatch(pot.value, ref.values, 1e-12, 'potentials().value');
      expectMatch(res.grad.x.data, ref.gx, 1e-11, 'grad x');
      expectMatch(res.grad.y.data, ref.gy, 1e-11, 'grad y');
      expectMatch(res.grad.a.data, ref.ga, 1e-11, 'grad a');
      expectMatch(res.grad.b.data, ref.gb, 1e-11, 'grad b');
      expectMatch(pot.f.data, ref.f, 1e-11, 'f');
      expectMatch(pot.g.data, ref.g, 1e-11, 'g');
      expect(res.grad.x.shape).toEqual([x.length, 2]);
      // One pass: as many reductions as one separate call, not L times as many.
      expect(res.info.reductions).toBe(ref.reductions);
    });
  }

  it('agrees with separate calls at convergence without a fixed diameter (own schedules)', async () => {
    const o = { blur: 0.3, convergence: { tol: 1e-11, maxIter: 5000 } };
    const res = await new SamplesLoss(o).value(x, y, { a, b, labelsX, labelsY });
    const ref = await separate(o, true);
    expectMatch(res, ref.values, 1e-8, 'values');
  });

  const bad: [string, () => Promise<unknown>, RegExp][] = [
    [
      'an empty label group',
      () => new SamplesLoss().value(x, y, { labelsX: labelsX.map((l) => (l === 1 ? 2 : l)), labelsY }),
      /label 1 has no points in x \(labelsX\)/,
    ],
    [
      'a different L in x and y',
      () => new SamplesLoss().value(x, y, { labelsX, labelsY: labelsY.map((l) => (l === 2 ? 3 : l)) }),
      /labelsX has L = 3 labels .* but labelsY has L = 4/,
    ],
    ['labelsX without labelsY', () => new SamplesLoss().value(x, y, { labelsX }), /labelsY is missing/],
    [
      'labels of the wrong length',
      () => new SamplesLoss().value(x, y, { labelsX: [0, 1], labelsY }),
      /labelsX has 2 labels but x has N = 17/,
    ],
    [
      'a non-integer label',
      () => new SamplesLoss().value(x, y, { labelsX: labelsX.map((l, i) => (i === 3 ? 0.5 : l)), labelsY }),
      /labelsX\[3\] is 0.5/,
    ],
    [
      'a negative label',
      () => new SamplesLoss().value(x, y, { labelsX: labelsX.map((l, i) => (i ? l : -1)), labelsY }),
      /labelsX\[0\] is -1/,
    ],
    [
      'loss hausdorff',
      () => new SamplesLoss({ loss: 'hausdorff' }).value(x, y, { labelsX, labelsY }),
      /are for loss 'sinkhorn'/,
    ],
    [
      'loss energy',
      () => new SamplesLoss({ loss: 'energy' }).value(x, y, { labelsX, labelsY }),
      /are for loss 'sinkhorn'/,
    ],
    [
      'backend multiscale',
      () => new SamplesLoss({ backend: 'multiscale' }).value(x, y, { labelsX, labelsY }),
      /not 'multiscale'/,
    ],
    [
      'transportPlan',
      () => new SamplesLoss().transportPlan(x, y, { labelsX, labelsY }),
      /transportPlan does not take labelsX/,
    ],
    [
      'solveSamples with labels',
      () => solveSamples(x, y, { labelsX, labelsY } as never),
      /^solveSamples: options takes no labelsX/,
    ],
    [
      'zero weights on one label',
      () => new SamplesLoss().value(x, y, { a: a.map((v, i) => (labelsX[i] === 2 ? 0 : v)), labelsX, labelsY }),
      /a has all-zero weights on label 2/,
    ],
    [
      'a batch',
      () => new SamplesLoss().value([x.slice(0, 2)], [y.slice(0, 2)], { labelsX: [0, 0], labelsY: [0, 0] }),
      /not of batches/,
    ],
  ];
  for (const [label, run, message] of bad) {
    it(`rejects ${label} with a GeomLossError`, async () => {
      const e = await run().catch((error: unknown) => error);
      expect(e).toBeInstanceOf(GeomLossError);
      expect((e as Error).message).toMatch(message);
    });
  }
});
