// solveSamples: one Sinkhorn solve as one result object. It agrees with SamplesLoss's separate
// methods, costs what one valueAndGrad costs, its marginals are a and b at convergence, and its
// barycentric map equals the one of a dense float64 plan built from the reference potentials.
import { describe, expect, it } from 'vitest';
import { GeomLossError, SamplesLoss, solveSamples } from '../../src/geomloss/index.js';
import { denseSamplesLoss } from '../reference/geomloss-dense.js';
import { cloud, expectMatch, flat, rng, weights } from './helpers.js';

const r = rng(33);
const N = 14;
const M = 11;
const x = cloud(r, N, 2);
const y = cloud(r, M, 2, 0.3, 0.9);
const a = weights(r, N);
const b = weights(r, M);

describe('solveSamples', () => {
  for (const backend of ['online', 'multiscale'] as const) {
    it(`agrees with SamplesLoss's value, potentials, transportPlan and valueAndGrad (${backend})`, async () => {
      const options = { blur: 0.1, p: 2, backend, convergence: { tol: 1e-9 } } as const;
      const ot = await solveSamples(x, y, { ...options, a, b });
      const loss = new SamplesLoss(options);
      const vg = await loss.valueAndGrad(x, y, { a, b });
      expect(ot.value).toBe(vg.value);
      const g = await ot.grad();
      for (const k of ['x', 'y', 'a', 'b'] as const) expect(Array.from(g[k].data)).toEqual(Array.from(vg.grad[k].data));
      expect(ot.value).toBeCloseTo(await loss.value(x, y, { a, b }), 12);
      const pot = await loss.potentials(x, y, { a, b });
      expectMatch(ot.f.data, Array.from(pot.f.data), 1e-10, 'f');
      expectMatch(ot.g.data, Array.from(pot.g.data), 1e-10, 'g');
      const plan = await loss.transportPlan(x, y, { a, b });
      expectMatch(flat(ot.plan.dense()), flat(plan.dense()), 1e-9, 'plan');
      expect(ot.info.backend).toBe(backend);
    });
  }

  it('costs one solve: the reductions of one valueAndGrad; marginals and map are cached', async () => {
    const options = { blur: 0.05, convergence: { tol: 1e-8 } };
    const ot = await solveSamples(x, y, { ...options, a, b });
    const loss = new SamplesLoss(options);
    const vg = await loss.valueAndGrad(x, y, { a, b });
    const pot = await loss.potentials(x, y, { a, b });
    expect(ot.info.reductions).toBe(vg.info.reductions);
    // The solve is most of it: the gradients add a few reductions to what potentials alone cost.
    expect(ot.info.reductions).toBeLessThan(pot.info.reductions + 10);
    expect(ot.info.iterations).toBe(vg.info.iterations);
    expect(ot.marginals()).toBe(ot.marginals());
    expect(ot.barycentricMap()).toBe(ot.barycentricMap());
  });

  for (const dtype of ['float64', 'float32'] as const) {
    it(`marginals are a and b at convergence (${dtype})`, async () => {
      const ot = await solveSamples(x, y, {
        a,
        b,
        blur: 0.2,
        dtype,
        convergence: { tol: dtype === 'float64' ? 1e-10 : 1e-5 },
      });
      const { rows, cols } = await ot.marginals();
      expect(rows.shape).toEqual([N, 1]);
      expect(cols.shape).toEqual([M, 1]);
      const rtol = dtype === 'float64' ? 1e-7 : 1e-3;
      expectMatch(rows.data, a, rtol, 'row sums');
      expectMatch(cols.data, b, rtol, 'column sums');
    });
  }

  it('barycentric map: the dense float64 plan from the reference potentials', async () => {
    const ot = await solveSamples(x, y, { a, b, blur: 0.1, convergence: { tol: 1e-8 } });
    const sched = ot.info.schedule!;
    const epsList = sched.concat(new Array<number>(ot.info.iterations - sched.length).fill(sched[sched.length - 1]!));
    const ref = denseSamplesLoss(x, y, a, b, {
      loss: 'sinkhorn',
      p: 2,
      blur: 0.1,
      reach: null,
      diameter: null,
      scaling: 0.5,
      debias: true,
      epsList,
    });
    const f = ref.potentials!.fBA;
    const g = ref.potentials!.gAB;
    const eps = 0.01;
    const pi = x.map((xi, i) =>
      y.map(
        (yj, j) =>
          a[i]! * b[j]! * Math.exp((f[i]! + g[j]! - ((xi[0]! - yj[0]!) ** 2 + (xi[1]! - yj[1]!) ** 2) / 2) / eps),
      ),
    );
    const dense = pi.flatMap((row) => {
      const s = row.reduce((u, v) => u + v, 0);
      return [0, 1].map((d) => row.reduce((u, v, j) => u + v * y[j]![d]!, 0) / s);
    });
    const T = await ot.barycentricMap();
    expect(T.shape).toEqual([N, 2]);
    expectMatch(T.data, dense, 1e-8, 'barycentric map');
  });

  it('barycentric map in the inputs units with far-from-1 coordinates and repeated points', async () => {
    const big = x.map((row) => row.map((v) => 1e4 * v));
    const bigY = [...y, y[0]!].map((row) => row.map((v) => 1e4 * v)); // y[0] twice
    const ot = await solveSamples(big, bigY, { blur: 1e3, convergence: { tol: 1e-9 } });
    const T = await ot.barycentricMap();
    const plan = (ot.plan.dense() as number[][][]).map((row) => row.map((e) => e[0]!)); // [N][M][1]
    const dense = plan.flatMap((row) => {
      const s = row.reduce((u, v) => u + v, 0);
      return [0, 1].map((d) => row.reduce((u, v, j) => u + v * bigY[j]![d]!, 0) / s);
    });
    expectMatch(T.data, dense, 1e-9, 'barycentric map (scaled, merged)');
  });

  it('bad input: GeomLossError', async () => {
    await expect(solveSamples(x, y, { loss: 'gaussian' })).rejects.toThrow(
      /^solveSamples: options.loss must be 'sinkhorn', got 'gaussian'/,
    );
    await expect(solveSamples([x] as never, [y] as never)).rejects.toThrow(/^solveSamples: x must be one cloud/);
    await expect(solveSamples(x, y, { blur: -1 })).rejects.toThrow(GeomLossError);
    await expect(solveSamples(x, y, { a: [1, 2] })).rejects.toThrow(/a has 2 weights/);
    await expect(solveSamples(x, y, { nope: 1 } as never)).rejects.toThrow(/nope/);
  });
});
