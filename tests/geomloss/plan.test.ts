// The transport plan as a symbolic matrix: its marginals at convergence, and reductions of it
// (barycentric map, matching by argMax) against a dense computation from the reference potentials.
import { describe, expect, it } from 'vitest';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { Vj } from '../../src/index.js';
import { denseSamplesLoss } from '../reference/geomloss-dense.js';
import { cloud, expectMatch, flat, rng, weights } from './helpers.js';

const r = rng(21);
const N = 15;
const M = 12;
const x = cloud(r, N, 2);
const y = cloud(r, M, 2, 0.4, 0.8);
const a = weights(r, N);
const b = weights(r, M);

describe('transportPlan', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    it(`balanced, converged: the rows sum to a and the columns to b (${dtype})`, async () => {
      const loss = new SamplesLoss({
        p: 2,
        blur: 0.2,
        convergence: { tol: dtype === 'float64' ? 1e-10 : 1e-5 },
        dtype,
      });
      const plan = await loss.transportPlan(x, y, { a, b });
      expect(plan.rowsI).toBe(N);
      expect(plan.rowsJ).toBe(M);
      const rows = await plan.sum(1);
      const cols = await plan.sum(0);
      const rtol = dtype === 'float64' ? 1e-7 : 1e-3;
      expectMatch(rows.data, a, rtol, 'row sums');
      expectMatch(cols.data, b, rtol, 'column sums');
    });
  }

  it('reductions of the plan equal the dense plan built from the reference potentials', async () => {
    const loss = new SamplesLoss({ p: 2, blur: 0.1, convergence: { tol: 1e-8 } });
    const info = (await loss.potentials(x, y, { a, b })).info;
    const plan = await loss.transportPlan(x, y, { a, b });
    // the same run in the dense reference
    const sched = info.schedule!;
    const epsList = sched.concat(new Array<number>(info.iterations - sched.length).fill(sched[sched.length - 1]!));
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
    const eps = 0.01;
    const f = ref.potentials!.fBA;
    const g = ref.potentials!.gAB;
    const pi: number[][] = x.map((xi, i) =>
      y.map(
        (yj, j) =>
          a[i]! * b[j]! * Math.exp((f[i]! + g[j]! - ((xi[0]! - yj[0]!) ** 2 + (xi[1]! - yj[1]!) ** 2) / 2) / eps),
      ),
    );
    // the whole (small) matrix
    expectMatch(flat(plan.dense()), flat(pi), 1e-8, 'plan entries');
    // barycentric map sum_j pi_ij y_j / sum_j pi_ij
    const mass = await plan.sum(1);
    const moved = await plan.mul(Vj(y)).sum(1);
    const bary = Array.from(moved.data, (v, k) => v / mass.data[Math.floor(k / 2)]!);
    const denseBary = pi.flatMap((row) => {
      const s = row.reduce((u, v) => u + v, 0);
      return [0, 1].map((d) => row.reduce((u, v, j) => u + v * y[j]![d]!, 0) / s);
    });
    expectMatch(bary, denseBary, 1e-8, 'barycentric map');
    // matching by argMax
    const match = await plan.argMax(1);
    expect(Array.from(match.data)).toEqual(pi.map((row) => row.indexOf(Math.max(...row))));
  });

  it('batched: one plan per item, rows sum to each item weights', async () => {
    const rb = rng(4);
    const xb = [cloud(rb, 6, 2), cloud(rb, 6, 2)];
    const yb = [cloud(rb, 5, 2, 0.5), cloud(rb, 5, 2, -0.5)];
    const ab = [weights(rb, 6), weights(rb, 6)];
    const loss = new SamplesLoss({ blur: 0.3, convergence: { tol: 1e-10 } });
    const plan = await loss.transportPlan(xb, yb, { a: ab });
    const rows = await plan.sum(1);
    expect(rows.shape).toEqual([2, 6, 1]);
    expectMatch(rows.data, flat(ab), 1e-7, 'batched row sums');
  });

  it('is for the sinkhorn loss only', async () => {
    await expect(new SamplesLoss({ loss: 'gaussian' }).transportPlan(x, y)).rejects.toThrow(
      /transportPlan is defined for loss 'sinkhorn'/,
    );
  });
});
