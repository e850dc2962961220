// SamplesLoss against the independent dense float64 reference (tests/reference/geomloss-dense.ts) on
// cases of our own: p = 1 and 2, debias on and off, unbalanced (GeomLoss's and exact gradients),
// batches, given weights (some zero), a given diameter, custom costs and kernels, the kernel losses,
// the Hausdorff divergence (exact gradients), and the convergence option. Both precisions.
import { afterAll, describe, expect, it } from 'vitest';
import { SamplesLoss, type SamplesLossOptions } from '../../src/geomloss/index.js';
import { Pm, type LazyTensor } from '../../src/index.js';
import { denseSamplesLoss, denseSamplesLossBatch, type DenseOptions } from '../reference/geomloss-dense.js';
import { cloud, expectMatch, f32, flat, Report, rng, weights, type Errors } from './helpers.js';

const report = new Report('SamplesLoss vs the dense float64 reference: worst relative error per array');
afterAll(() => report.print());

type Opts = Omit<SamplesLossOptions, 'dtype'>;

function denseOptions(o: Opts, extra: Partial<DenseOptions> = {}): DenseOptions {
  return {
    loss: o.loss ?? 'sinkhorn',
    p: (o.p ?? 2) as 1 | 2,
    blur: o.blur ?? 0.05,
    reach: o.reach ?? null,
    diameter: o.diameter ?? null,
    scaling: o.scaling ?? 0.5,
    debias: o.debias ?? true,
    exactUnbalancedGradients: o.exactUnbalancedGradients ?? false,
    ...extra,
  };
}

interface Case {
  name: string;
  opts: Opts;
  x: number[][];
  y: number[][];
  a?: number[];
  b?: number[];
  /** Options of the reference when they differ from denseOptions(opts). */
  dense?: Partial<DenseOptions>;
}

const uniformOf = (n: number) => new Array<number>(n).fill(1 / n);

async function check(c: Case, dtype: 'float32' | 'float64'): Promise<void> {
  const rtol = dtype === 'float64' ? 1e-6 : 1e-3;
  const x = dtype === 'float32' ? f32(c.x) : c.x;
  const y = dtype === 'float32' ? f32(c.y) : c.y;
  const a = c.a ?? uniformOf(x.length);
  const b = c.b ?? uniformOf(y.length);
  const ref = denseSamplesLoss(x, y, a, b, denseOptions(c.opts, c.dense));
  const loss = new SamplesLoss({ ...c.opts, dtype });
  const w = c.a || c.b ? { a: c.a, b: c.b } : undefined;
  const r = await loss.valueAndGrad(x, y, w);
  const p = await loss.potentials(x, y, w);
  const e: Record<string, Errors> = {
    value: expectMatch([r.value], [ref.value], rtol, `${c.name} value`),
    grad_x: expectMatch(r.grad.x.data, flat(ref.gradX), rtol, `${c.name} grad x`),
    grad_y: expectMatch(r.grad.y.data, flat(ref.gradY), rtol, `${c.name} grad y`),
    grad_a: expectMatch(r.grad.a.data, ref.gradA, rtol, `${c.name} grad a`),
    grad_b: expectMatch(r.grad.b.data, ref.gradB, rtol, `${c.name} grad b`),
    f: expectMatch(p.f.data, ref.f!, rtol, `${c.name} f`),
    g: expectMatch(p.g.data, ref.g!, rtol, `${c.name} g`),
  };
  expectMatch([p.value], [ref.value], rtol, `${c.name} value (potentials)`);
  report.add(`${c.name} ${dtype}`, e);
}

const r = rng(7);
const x3 = cloud(r, 23, 3);
const y3 = cloud(r, 17, 3, 0.3, 0.9);
const a3 = weights(r, 23);
const b3 = weights(r, 17);
const x1 = cloud(r, 19, 1);
const y1 = cloud(r, 26, 1, 0.5);
const aZero = a3.map((v, k) => (k % 5 === 2 ? 0 : v));

const cases: Case[] = [
  { name: 'sinkhorn p=2 debias D=3 weights', opts: { p: 2, blur: 0.1 }, x: x3, y: y3, a: a3, b: b3 },
  { name: 'sinkhorn p=1 debias D=3 weights', opts: { p: 1, blur: 0.1 }, x: x3, y: y3, a: a3, b: b3 },
  { name: 'sinkhorn p=2 raw D=3 uniform', opts: { p: 2, blur: 0.1, debias: false }, x: x3, y: y3 },
  { name: 'sinkhorn p=1 raw D=1 scaling 0.8', opts: { p: 1, blur: 0.05, debias: false, scaling: 0.8 }, x: x1, y: y1 },
  {
    name: 'sinkhorn p=2 debias, zero weights in a',
    opts: { p: 2, blur: 0.1 },
    x: x3,
    y: y3,
    a: aZero.map((v) => v / aZero.reduce((s, t) => s + t)),
    b: b3,
  },
  { name: 'sinkhorn p=2 given diameter 4', opts: { p: 2, blur: 0.1, diameter: 4 }, x: x3, y: y3, a: a3, b: b3 },
  { name: 'sinkhorn p=2 debias reach 0.3', opts: { p: 2, blur: 0.1, reach: 0.3 }, x: x3, y: y3, a: a3, b: b3 },
  {
    name: 'sinkhorn p=2 raw reach 0.3',
    opts: { p: 2, blur: 0.1, reach: 0.3, debias: false },
    x: x3,
    y: y3,
    a: a3,
    b: b3,
  },
  { name: 'sinkhorn p=1 debias reach 0.5', opts: { p: 1, blur: 0.1, reach: 0.5 }, x: x3, y: y3, a: a3, b: b3 },
  {
    name: 'sinkhorn p=2 debias reach 0.3 exact grads',
    opts: { p: 2, blur: 0.1, reach: 0.3, exactUnbalancedGradients: true },
    x: x3,
    y: y3,
    a: a3,
    b: b3,
  },
  {
    name: 'sinkhorn p=2 raw reach 0.3 exact grads',
    opts: { p: 2, blur: 0.1, reach: 0.3, debias: false, exactUnbalancedGradients: true },
    x: x3,
    y: y3,
    a: a3,
    b: b3,
  },
  {
    name: 'sinkhorn custom cost |x-y|^2/2 (p=2)',
    opts: { p: 2, blur: 0.1, cost: (u, v) => u.sqDist(v).mul(0.5) },
    x: x3,
    y: y3,
    a: a3,
    b: b3,
  },
  {
    name: 'sinkhorn custom cost sqrt(max(|x-y|^2,1e-8)) (p=1)',
    opts: { p: 1, blur: 0.1, cost: (u, v) => u.sub(v).sqNorm2().clamp(1e-8, 1e30).sqrt() },
    x: x3,
    y: y3,
    a: a3,
    b: b3,
  },
  { name: 'gaussian D=3 weights', opts: { loss: 'gaussian', blur: 0.3 }, x: x3, y: y3, a: a3, b: b3 },
  { name: 'laplacian D=3 weights', opts: { loss: 'laplacian', blur: 0.3 }, x: x3, y: y3, a: a3, b: b3 },
  { name: 'energy D=1', opts: { loss: 'energy' }, x: x1, y: y1 },
  {
    name: 'custom kernel exp(-|x-y|^2/(2 s^2)) = gaussian',
    opts: {
      loss: 'gaussian',
      kernel: (u, v) =>
        u
          .sqDist(v)
          .mul(-0.5 / 0.09)
          .exp(),
    },
    x: x3,
    y: y3,
    a: a3,
    b: b3,
    dense: { blur: 0.3 },
  },
  { name: 'hausdorff p=2 D=3 weights', opts: { loss: 'hausdorff', p: 2, blur: 0.1 }, x: x3, y: y3, a: a3, b: b3 },
  { name: 'hausdorff p=1 D=3 weights', opts: { loss: 'hausdorff', p: 1, blur: 0.1 }, x: x3, y: y3, a: a3, b: b3 },
  { name: 'hausdorff p=2 D=1 blur 0.02', opts: { loss: 'hausdorff', p: 2, blur: 0.02 }, x: x1, y: y1 },
];

describe('SamplesLoss = dense reference', () => {
  for (const c of cases) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${c.name} (${dtype})`, () => check(c, dtype));
    }
  }
});

describe('batches', () => {
  const rb = rng(11);
  const B = 3;
  const xb = Array.from({ length: B }, (_, k) => cloud(rb, 12, 2, 0.1 * k));
  const yb = Array.from({ length: B }, () => cloud(rb, 9, 2, 0.4, 0.7));
  const ab = Array.from({ length: B }, () => weights(rb, 12));
  const bb = Array.from({ length: B }, () => weights(rb, 9));
  const batchCases: [string, Opts][] = [
    ['sinkhorn p=1 debias', { p: 1, blur: 0.1 }],
    ['sinkhorn p=2 raw reach 0.5', { p: 2, blur: 0.1, reach: 0.5, debias: false }],
    ['hausdorff p=2', { loss: 'hausdorff', p: 2, blur: 0.1 }],
    ['laplacian', { loss: 'laplacian', blur: 0.2 }],
  ];
  for (const [name, opts] of batchCases) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${name}, B=${B}, one value per item (${dtype})`, async () => {
        const rtol = dtype === 'float64' ? 1e-6 : 1e-3;
        const xs = dtype === 'float32' ? xb.map(f32) : xb;
        const ys = dtype === 'float32' ? yb.map(f32) : yb;
        const ref = denseSamplesLossBatch(xs, ys, ab, bb, denseOptions(opts));
        const loss = new SamplesLoss({ ...opts, dtype });
        // float32 through typed arrays with a shape, float64 as nested arrays
        const xIn =
          dtype === 'float32'
            ? { data: Float32Array.from(flat(xs)), shape: [B, 12, 2] as [number, number, number] }
            : xs;
        const yIn =
          dtype === 'float32'
            ? { data: Float32Array.from(flat(ys)), shape: [B, 9, 2] as [number, number, number] }
            : ys;
        const w =
          dtype === 'float32' ? { a: Float32Array.from(flat(ab)), b: Float32Array.from(flat(bb)) } : { a: ab, b: bb };
        const res = await loss.valueAndGrad(xIn, yIn, w);
        expect(Array.isArray(res.value)).toBe(true);
        expect(res.grad.x.shape).toEqual([B, 12, 2]);
        expect(res.grad.a.shape).toEqual([B, 12]);
        const e: Record<string, Errors> = {
          values: expectMatch(res.value as number[], ref.values, rtol, `${name} values`),
          grad_x: expectMatch(res.grad.x.data, flat(ref.gradX), rtol, `${name} grad x`),
          grad_y: expectMatch(res.grad.y.data, flat(ref.gradY), rtol, `${name} grad y`),
          grad_a: expectMatch(res.grad.a.data, flat(ref.gradA), rtol, `${name} grad a`),
          grad_b: expectMatch(res.grad.b.data, flat(ref.gradB), rtol, `${name} grad b`),
        };
        if (ref.schedule) expect(res.info.schedule).toEqual(ref.schedule.map((v) => expect.closeTo(v, 12)));
        const pot = await loss.potentials(xIn, yIn, w);
        e.f = expectMatch(pot.f.data, flat(ref.f), rtol, `${name} f`);
        e.g = expectMatch(pot.g.data, flat(ref.g), rtol, `${name} g`);
        expect(pot.f.shape).toEqual([B, 12]);
        report.add(`batch ${name} ${dtype}`, e);
      });
    }
  }

  it('custom costs and kernels work on batches (equal to the built-in ones)', async () => {
    for (const [custom, builtin] of [
      [
        { p: 2, blur: 0.1, cost: (u: LazyTensor, v: LazyTensor) => u.sqDist(v).mul(0.5) },
        { p: 2, blur: 0.1 },
      ],
      [
        {
          loss: 'gaussian',
          kernel: (u: LazyTensor, v: LazyTensor) =>
            u
              .sqDist(v)
              .mul(-0.5 / 0.04)
              .exp(),
        },
        { loss: 'gaussian', blur: 0.2 },
      ],
    ] as [SamplesLossOptions, SamplesLossOptions][]) {
      const rc = await new SamplesLoss(custom).valueAndGrad(xb, yb, { a: ab, b: bb });
      const rb = await new SamplesLoss(builtin).valueAndGrad(xb, yb, { a: ab, b: bb });
      expectMatch(rc.value as number[], rb.value as number[], 1e-10, 'batched custom values');
      expectMatch(rc.grad.x.data, Array.from(rb.grad.x.data), 1e-9, 'batched custom grad x');
      expectMatch(rc.grad.y.data, Array.from(rb.grad.y.data), 1e-9, 'batched custom grad y');
    }
  });

  it('the schedule is shared: an item alone gets a different schedule than in the batch', async () => {
    const loss = new SamplesLoss({ blur: 0.1 });
    const batch = await loss.potentials(xb, yb, { a: ab, b: bb });
    const alone = await loss.potentials(xb[0]!, yb[0]!, { a: ab[0], b: bb[0] });
    expect(batch.info.diameter).toBeGreaterThan(alone.info.diameter!);
    const ref = denseSamplesLoss(
      xb[0]!,
      yb[0]!,
      ab[0]!,
      bb[0]!,
      denseOptions({ blur: 0.1 }, { diameter: batch.info.diameter }),
    );
    expectMatch([(batch.value as number[])[0]!], [ref.value], 1e-6, 'item 0 with the batch diameter');
  });
});

describe('custom costs: any metric through the core autodiff', () => {
  it('an anisotropic cost 1/2 sum_k s_k (x_k - y_k)^2 equals the built-in p = 2 on rescaled points', async () => {
    const s = [4, 1, 0.25];
    const root = s.map(Math.sqrt);
    const scale = (pts: number[][]) => pts.map((p) => p.map((v, k) => v * root[k]!));
    const common = { p: 2, blur: 0.1, diameter: 3 };
    const custom = new SamplesLoss({
      ...common,
      cost: (u: LazyTensor, v: LazyTensor) => u.weightedSqDist(v, Pm(s)).mul(0.5),
    });
    const builtin = new SamplesLoss(common);
    const rc = await custom.valueAndGrad(x3, y3, { a: a3, b: b3 });
    const rb = await builtin.valueAndGrad(scale(x3), scale(y3), { a: a3, b: b3 });
    expectMatch([rc.value], [rb.value], 1e-10, 'value');
    // d/dx of L(sqrt(s) x) = sqrt(s) * grad
    const gx = flat(rb.grad.x.toArray()).map((g, k) => g * root[k % 3]!);
    expectMatch(rc.grad.x.data, gx, 1e-9, 'grad x');
    expectMatch(rc.grad.a.data, Array.from(rb.grad.a.data), 1e-10, 'grad a');
  });

  it('p = 3 with a custom cost |x - y|^3 runs, is symmetric, and vanishes for identical measures', async () => {
    const loss = new SamplesLoss({ p: 3, blur: 0.1, cost: (u, v) => u.sqDist(v).sqrt().pow(3) });
    const l1 = await loss.value(x3, y3, { a: a3, b: b3 });
    const l2 = await loss.value(y3, x3, { a: b3, b: a3 });
    expect(l1).toBeGreaterThan(0);
    expect(Math.abs(l1 - l2)).toBeLessThan(1e-12 * Math.abs(l1) + 1e-15);
    expect(await loss.value(x3, x3, { a: a3, b: a3 })).toBe(0);
    expect(loss.options.p).toBe(3);
  });
});

describe('the convergence option', () => {
  for (const loss of ['sinkhorn', 'hausdorff'] as const) {
    it(`${loss}: iterates at blur^p until the potentials settle, and equals the reference run for as many iterations`, async () => {
      const opts: Opts = { loss, p: 2, blur: 0.1, convergence: { tol: 1e-6 } };
      const l = new SamplesLoss({ ...opts });
      const res = await l.valueAndGrad(x3, y3, { a: a3, b: b3 });
      expect(res.info.converged).toBe(true);
      const sched = res.info.schedule!;
      const extra = res.info.iterations - sched.length;
      expect(extra).toBeGreaterThan(0);
      const epsList = sched.concat(new Array<number>(extra).fill(sched[sched.length - 1]!));
      const ref = denseSamplesLoss(x3, y3, a3, b3, denseOptions(opts, { epsList }));
      expectMatch([res.value], [ref.value], 1e-9, 'value');
      expectMatch(res.grad.x.data, flat(ref.gradX), 1e-6, 'grad x');
      expectMatch(res.grad.b.data, ref.gradB, 1e-6, 'grad b');
      // and it differs from GeomLoss's fixed schedule
      const fixed = await new SamplesLoss({ loss, p: 2, blur: 0.1 }).value(x3, y3, { a: a3, b: b3 });
      expect(Math.abs(fixed - res.value)).toBeGreaterThan(1e-8);
    });
  }

  it('maxIter caps the extra iterations and reports converged: false', async () => {
    const l = new SamplesLoss({ blur: 0.05, convergence: { tol: 1e-14, maxIter: 3 } });
    const res = await l.potentials(x3, y3);
    expect(res.info.converged).toBe(false);
    expect(res.info.iterations).toBe(res.info.schedule!.length + 3);
  });

  it('at convergence, the sinkhorn gradients are the derivatives of the value (central differences)', async () => {
    const rf = rng(3);
    const x = cloud(rf, 7, 2);
    const y = cloud(rf, 6, 2, 0.3);
    const a = weights(rf, 7);
    const b = weights(rf, 6);
    for (const p of [1, 2]) {
      const l = new SamplesLoss({ p, blur: 0.3, convergence: { tol: 1e-13 }, diameter: 2 });
      const res = await l.valueAndGrad(x, y, { a, b });
      const h = 1e-5;
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < x.length; i++) {
        for (let d = 0; d < 2; d++) {
          const xp = x.map((q) => q.slice());
          const xm = x.map((q) => q.slice());
          xp[i]![d]! += h;
          xm[i]![d]! -= h;
          const fd = ((await l.value(xp, y, { a, b })) - (await l.value(xm, y, { a, b }))) / (2 * h);
          const an = res.grad.x.data[i * 2 + d]!;
          worst = Math.max(worst, Math.abs(fd - an));
          scale = Math.max(scale, Math.abs(an));
        }
      }
      report.add(`FD at convergence, sinkhorn p=${p} (grad x, relative to max)`, {
        grad_x: { rel: worst / scale, relMax: worst / scale },
      });
      expect(worst / scale).toBeLessThan(1e-6);
    }
  });
});
