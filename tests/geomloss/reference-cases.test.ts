// Every case of the GeomLoss reference file (values computed by the real library): values, gradients
// and potentials, in float64 (relative 1e-6) and float32 (relative 1e-3), each with an absolute floor
// of 1% of the tolerance times the largest magnitude of the array. The worst errors are printed.
import { afterAll, describe, expect, it } from 'vitest';
import { SamplesLoss, type SamplesLossOptions } from '../../src/geomloss/index.js';
import { expectMatch, flat, loadCases, Report, type Errors, type Json } from './helpers.js';

const data = loadCases();
const report = new Report('GeomLoss reference cases: worst relative error per array (|d| / max(|ref|, 1e-6 max|ref|))');
afterAll(() => report.print());

function optionsOf(params: Json, dtype: 'float32' | 'float64'): SamplesLossOptions {
  return {
    loss: params.loss,
    p: params.p,
    blur: params.blur,
    reach: params.reach,
    diameter: params.diameter,
    scaling: params.scaling,
    debias: params.debias,
    dtype,
  };
}

/** The case's inputs as nested arrays (float64) or as typed arrays with a shape (float32). */
function inputsOf(c: Json, dtype: 'float32' | 'float64') {
  const { x, y, a, b } = c.inputs;
  if (dtype === 'float64') return { x, y, w: { a, b } };
  const B = c.batch as number | null;
  const shape = (n: number) => (B ? [B, n, c.D] : [n, c.D]) as [number, number] | [number, number, number];
  return {
    x: { data: Float32Array.from(flat(x)), shape: shape(c.N) },
    y: { data: Float32Array.from(flat(y)), shape: shape(c.M) },
    w: { a: Float32Array.from(flat(a)), b: Float32Array.from(flat(b)) },
  };
}

describe.skipIf(data === null)('GeomLoss reference cases', () => {
  const cases: Json[] = data?.cases ?? [];

  it('the file has the cases this suite expects', () => {
    expect(cases.length).toBeGreaterThanOrEqual(9);
    for (const c of cases) expect(['loss', 'potentials']).toContain(c.kind);
  });

  for (const c of cases) {
    for (const dtype of ['float64', 'float32'] as const) {
      const rtol = dtype === 'float64' ? 1e-6 : 1e-3;
      it(`${c.id} (${dtype})`, async () => {
        const loss = new SamplesLoss(optionsOf(c.params, dtype));
        const { x, y, w } = inputsOf(c, dtype);
        const out = c.outputs;
        const errors: Record<string, Errors> = {};
        const batched = c.batch !== null && c.batch !== undefined;

        const pot = await loss.potentials(x, y, w);
        expect(pot.info.dtype).toBe(dtype);
        expect(pot.f.data).toBeInstanceOf(dtype === 'float64' ? Float64Array : Float32Array);
        if (c.schedule) {
          expect(pot.info.schedule!.length).toBe(c.schedule.eps_list.length);
          // float32 inputs are rounded, so their diameter is not the float64 one
          const stol = dtype === 'float64' ? 1e-12 : 1e-6;
          errors.schedule = expectMatch(pot.info.schedule!, c.schedule.eps_list, stol, `${c.id} schedule`);
          expectMatch([pot.info.diameter!], [c.schedule.diameter], stol, `${c.id} diameter`);
        }
        errors.value = expectMatch(flat(pot.value), flat(out.value), rtol, `${c.id} value`);
        const F = out.F ?? c.aux_potentials?.F;
        const G = out.G ?? c.aux_potentials?.G;
        if (F) {
          errors.f = expectMatch(pot.f.data, flat(F), rtol, `${c.id} f`);
          errors.g = expectMatch(pot.g.data, flat(G), rtol, `${c.id} g`);
          expect(pot.f.shape).toEqual(batched ? [c.batch, c.N] : [c.N]);
        }

        if (out.grad_x) {
          const r = await loss.valueAndGrad(x, y, w);
          errors.value = expectMatch(flat(r.value), flat(out.value), rtol, `${c.id} value (valueAndGrad)`);
          expect(r.grad.x.shape).toEqual(batched ? [c.batch, c.N, c.D] : [c.N, c.D]);
          expect(r.grad.b.shape).toEqual(batched ? [c.batch, c.M] : [c.M]);
          errors.grad_x = expectMatch(r.grad.x.data, flat(out.grad_x), rtol, `${c.id} grad x`);
          errors.grad_y = expectMatch(r.grad.y.data, flat(out.grad_y), rtol, `${c.id} grad y`);
          errors.grad_a = expectMatch(r.grad.a.data, flat(out.grad_a), rtol, `${c.id} grad a`);
          errors.grad_b = expectMatch(r.grad.b.data, flat(out.grad_b), rtol, `${c.id} grad b`);
        }

        const v = await loss.value(x, y, w);
        expect(Array.isArray(v)).toBe(batched);
        expectMatch(flat(v), flat(out.value), rtol, `${c.id} value()`);
        if (c.value_xy_signature !== undefined && c.weights === 'uniform') {
          // The (x, y) signature: uniform weights by default.
          errors.value_xy = expectMatch(
            flat(await loss.value(x, y)),
            flat(c.value_xy_signature),
            rtol,
            `${c.id} value(x, y)`,
          );
        }
        report.add(`${c.id.slice(0, 48)} ${dtype}`, errors);
      });
    }
  }
});
