// Derivatives of every differentiable operation, on both axes, against central finite differences
// computed in float64 with the engine; second order; reduction gradients through vjp.
import { describe, expect, it } from 'vitest';
import { Pm, Vi, Vj, reduction, runReduction, vjp, type LazyTensor } from '../src/index.js';
import { expectClose } from './helpers/expect.js';
import { cases } from './helpers/op-cases.js';
import { rng, uniformRows } from './helpers/random.js';

const N = 3;
const M = 5;
const H = 1e-6;

function flat(rows: number[][]): Float64Array {
  return Float64Array.from(rows.flat());
}

/** Central differences of `value(data)` (a vector) with respect to every component of every row,
 *  contracted with nothing: returns d value[r*dim + k] / d data[r*dim + k] for row-separable values. */
async function rowwiseDifferences(
  data: number[][],
  value: (rows: number[][]) => Promise<ArrayLike<number>>,
  outDim: number,
): Promise<number[]> {
  const dim = data[0]!.length;
  const out = new Array<number>(data.length * dim).fill(0);
  for (let k = 0; k < dim; k++) {
    const plus = await value(data.map((r) => r.map((v, q) => (q === k ? v + H : v))));
    const minus = await value(data.map((r) => r.map((v, q) => (q === k ? v - H : v))));
    for (let r = 0; r < data.length; r++) {
      let s = 0;
      for (let c = 0; c < outDim; c++) s += (plus[r * outDim + c]! - minus[r * outDim + c]!) / (2 * H);
      out[r * dim + k] = s;
    }
  }
  return out;
}

const differentiable = cases.filter((c) => !c.quantum && !c.name.startsWith('round') && !c.shareRows);

describe('derivatives of every operation (float64, central differences)', () => {
  it.each(differentiable)('$name', async (c) => {
    const random = rng(4242 + c.dx * 7 + c.dy);
    const xs = uniformRows(random, N, c.dx, ...(c.x ?? [-1, 1]));
    const ys = uniformRows(random, M, c.dy, ...(c.y ?? [-1, 1]));
    const build = (x: LazyTensor, y: LazyTensor): LazyTensor => c.build(x, y);
    const dim = build(Vi(flat(xs), c.dx), Vj(flat(ys), c.dy)).dim;
    const es = uniformRows(random, N, dim, -1, 1);
    const E = Vi(flat(es), dim);
    const x = Vi(flat(xs), c.dx);
    const y = Vj(flat(ys), c.dy);
    const F = build(x, y);

    // d/dx_i sum_j <F_ij, e_i>: a sum over j.
    const gx = await F.grad(x, E).sum(1);
    const fdx = await rowwiseDifferences(
      xs,
      async (rows) =>
        (
          await build(Vi(flat(rows), c.dx), y)
            .dot(E)
            .sum(1)
        ).data,
      1,
    );
    expectClose(gx.data, fdx, 1e-6, 1e-6, undefined, `${c.name} d/dx`);

    // d/dy_j sum_i <F_ij, e_i>: a sum over i.
    const gy = await F.grad(y, E).sum(0);
    const fdy = await rowwiseDifferences(
      ys,
      async (rows) =>
        (
          await build(x, Vj(flat(rows), c.dy))
            .dot(E)
            .sum(0)
        ).data,
      1,
    );
    expectClose(gy.data, fdy, 1e-6, 1e-6, undefined, `${c.name} d/dy`);

    // Forward mode: (dF/dx) u summed over j, against the same differences along u.
    const us = uniformRows(random, 1, c.dx, -1, 1)[0]!;
    const jvp = await F.diff(x, Pm(us)).dot(E).sum(1);
    const shifted = async (t: number) =>
      (
        await build(Vi(flat(xs.map((r) => r.map((v, k) => v + t * us[k]!))), c.dx), y)
          .dot(E)
          .sum(1)
      ).data;
    const [p, m] = [await shifted(H), await shifted(-H)];
    expectClose(
      jvp.data,
      Array.from(p, (v, k) => (v - m[k]!) / (2 * H)),
      1e-6,
      1e-6,
      undefined,
      `${c.name} diff`,
    );
  });
});

describe('second order and special points', () => {
  const random = rng(77);
  const xs = uniformRows(random, 4, 3, 0, 1);
  const ys = uniformRows(random, 6, 3, 0, 1);
  const x = Vi(flat(xs), 3);
  const y = Vj(flat(ys), 3);
  const gauss = (xv: LazyTensor) => xv.sqDist(y).mul(-2).exp();

  it('the gradient of a gradient of a Gaussian kernel matches differences of the first gradient', async () => {
    const w = Pm([0.3, -0.7, 0.5]);
    const second = await gauss(x).grad(x, 1).grad(x, w).sum(1);
    const fd2 = await rowwiseDifferences(
      xs,
      async (rows) => {
        const xv = Vi(flat(rows), 3);
        return (await gauss(xv).grad(xv, 1).dot(w).sum(1)).data;
      },
      1,
    );
    expectClose(second.data, fd2, 1e-6, 1e-6, undefined, 'Hessian-vector product');
  });

  it('laplacian, divergence and gradMatrix of a Gaussian kernel match their closed forms', async () => {
    const a = 2;
    const lap = await gauss(x).laplacian(x).sum(1);
    const div = await gauss(x).grad(x, 1).divergence(x).sum(1);
    const jac = await gauss(x).grad(x, 1).gradMatrix(x).sum(1);
    const want = xs.map((xi) =>
      ys.reduce((s, yj) => {
        const r2 = xi.reduce((t, v, k) => t + (v - yj[k]!) ** 2, 0);
        return s + (4 * a * a * r2 - 2 * a * 3) * Math.exp(-a * r2);
      }, 0),
    );
    expectClose(lap.data, want, 1e-10, 1e-12);
    expectClose(div.data, want, 1e-10, 1e-12);
    const hess = xs.flatMap((xi) => {
      const h = new Array<number>(9).fill(0);
      for (const yj of ys) {
        const d = xi.map((v, k) => v - yj[k]!);
        const e = Math.exp(-a * d.reduce((t, v) => t + v * v, 0));
        for (let r = 0; r < 3; r++)
          for (let c = 0; c < 3; c++) h[r * 3 + c]! += (4 * a * a * d[r]! * d[c]! - (r === c ? 2 * a : 0)) * e;
      }
      return h;
    });
    expectClose(jac.data, hess, 1e-10, 1e-12);
  });

  it('the gradient of a norm at zero is 0, not NaN', async () => {
    const ps = [
      [0.5, 0.5],
      [1, 2],
    ];
    const qs = [
      [0.5, 0.5],
      [1, 2],
      [0, 0],
    ];
    const p = Vi(flat(ps), 2);
    const q = Vj(flat(qs), 2);
    const g = await p.sub(q).norm2().grad(p, 1).sum(1);
    const want = ps.flatMap((pi) =>
      [0, 1].map((k) =>
        qs.reduce((s, qj) => {
          const n = Math.hypot(pi[0]! - qj[0]!, pi[1]! - qj[1]!);
          return s + (n === 0 ? 0 : (pi[k]! - qj[k]!) / n);
        }, 0),
      ),
    );
    expectClose(g.data, want, 1e-12, 1e-15);
  });
});

describe('gradients of reductions through vjp', () => {
  const random = rng(11);
  const xs = uniformRows(random, 4, 2, 0, 1);
  const ys = uniformRows(random, 5, 2, 0, 1);
  const bs = uniformRows(random, 5, 2, 0.2, 1);
  const sig = [0.8];

  /** L = <c, reduction(x, y, b, s)>, and its central differences entry by entry. */
  async function check(
    kind: 'sum' | 'logSumExp' | 'sumSoftMaxWeight' | 'min' | 'max' | 'kMin',
    axis: 0 | 1,
    weighted: boolean,
    k = 0,
  ) {
    const make = (xr: number[][], yr: number[][], br: number[][], s: number[]) => {
      const x = Vi(flat(xr), 2);
      const y = Vj(flat(yr), 2);
      const b = Vj(flat(br), 2);
      const p = Pm(s);
      const F =
        kind === 'min' || kind === 'max' || kind === 'kMin'
          ? x.sub(y).square().sum(-1).mul(p).add(b.elem(0))
          : x.sqDist(y).mul(p).neg().add(b.elem(1));
      const spec = reduction(F, kind, axis, { ...(weighted ? { weight: b } : {}), ...(k ? { k } : {}) });
      return { x, y, b, p, spec };
    };
    const base = make(xs, ys, bs, sig);
    const outLen = (await runReduction(base.spec)).data.length;
    const c = Array.from({ length: outLen }, () => random() * 2 - 1);
    const L = async (xr: number[][], yr: number[][], br: number[][], s: number[]) => {
      const out = await runReduction(make(xr, yr, br, s).spec);
      return Array.from(out.data).reduce((acc, v, q) => acc + v * c[q]!, 0);
    };
    const [gx, gy, gb, gp] = await vjp(base.spec, { wrt: [base.x, base.y, base.b, base.p], cotangent: c });
    const fd = async (which: 0 | 1 | 2 | 3): Promise<number[]> => {
      const arrays = [xs, ys, bs, [sig]];
      const target = arrays[which]!;
      const out: number[] = [];
      for (let r = 0; r < target.length; r++) {
        for (let q = 0; q < target[r]!.length; q++) {
          const shift = (t: number) =>
            arrays.map((a, w) =>
              w === which ? a.map((row, rr) => row.map((v, qq) => (rr === r && qq === q ? v + t : v))) : a,
            );
          const [p1, m1] = [shift(H), shift(-H)];
          out.push(
            ((await L(p1[0]!, p1[1]!, p1[2]!, p1[3]![0]!)) - (await L(m1[0]!, m1[1]!, m1[2]!, m1[3]![0]!))) / (2 * H),
          );
        }
      }
      return out;
    };
    expectClose(gx!.data, await fd(0), 1e-5, 1e-6, undefined, `${kind} d/dx`);
    expectClose(gy!.data, await fd(1), 1e-5, 1e-6, undefined, `${kind} d/dy`);
    expectClose(gb!.data, await fd(2), 1e-5, 1e-6, undefined, `${kind} d/db`);
    expectClose(gp!.data, await fd(3), 1e-5, 1e-6, undefined, `${kind} d/dsigma`);
    expect(gp!.shape).toEqual([1]);
  }

  for (const axis of [1, 0] as const) {
    it(`sum, axis ${axis}`, () => check('sum', axis, false));
    it(`logSumExp, axis ${axis}`, () => check('logSumExp', axis, false));
    it(`min and max (subgradient at the selected index), axis ${axis}`, async () => {
      await check('min', axis, false);
      await check('max', axis, false);
    });
    it(`kMin, axis ${axis}`, () => check('kMin', axis, false, 3));
  }
  it('weighted logSumExp and sumSoftMaxWeight, axis 1', async () => {
    await check('logSumExp', 1, true);
    await check('sumSoftMaxWeight', 1, true);
  });
});
