// The Wasm engine lays a job out once: checkJobMemory returns the layout it checked, and prepareJob
// uses a layout it is given (the engine passes checkJobMemory's) instead of computing it again.
import { describe, expect, it } from 'vitest';
import * as isa from '../../assembly/isa.js';
import { ResourceLimitError, Vi, Vj } from '../../src/index.js';
import { planJob } from '../../src/wasm/wasm-engine.js';
import {
  checkJobMemory,
  JOB_REG_WORDS,
  layoutJob,
  MAX_MEMORY_BYTES,
  prepareJob,
  readOutputs,
  runPrepared,
  type JobLayout,
} from '../../src/wasm/worker-job.js';
import { loadKernel } from '../helpers/raw-kernel.js';
import { asSeen, rng, typed, uniformRows } from '../helpers/random.js';
import { expectClose } from '../helpers/expect.js';

function problem() {
  const random = rng(7);
  const x = uniformRows(random, 37, 3);
  const y = uniformRows(random, 53, 3);
  const F = Vi(typed(x, 'float32'), 3)
    .sqDist(Vj(typed(y, 'float32'), 3))
    .neg()
    .exp();
  // float64 reference on the float32-rounded inputs: sum_j exp(-|x_i - y_j|^2)
  const xs = asSeen(x, 'float32');
  const ys = asSeen(y, 'float32');
  const want = xs.map((xi) => ys.reduce((s, yj) => s + Math.exp(-xi.reduce((d, v, k) => d + (v - yj[k]!) ** 2, 0)), 0));
  return { job: planJob(F.plan('sum', 1, undefined)), want };
}

function run(layout?: JobLayout) {
  const kernel = loadKernel();
  const { job } = problem();
  const prepared = prepareJob(kernel, job, layout);
  runPrepared(kernel, prepared, job.start, job.end);
  return { prepared, out: readOutputs(kernel, prepared) };
}

describe('job layout', () => {
  it('checkJobMemory returns the layout it checked, the one layoutJob computes', () => {
    const kernel = loadKernel();
    const { job } = problem();
    const layout = checkJobMemory(job, kernel.heapBase());
    expect(layout).toEqual(layoutJob(job, kernel.heapBase()));
    expect(layout.heapBase).toBe(kernel.heapBase());
    expect(layout.end).toBeGreaterThan(layout.prog);
  });

  it('checkJobMemory checks a layout it is given instead of laying the job out again', () => {
    const { job } = problem();
    const layout = layoutJob(job, 0);
    expect(checkJobMemory(job, 0, layout)).toBe(layout);
    const huge = { ...layout, end: MAX_MEMORY_BYTES + 1 };
    expect(() => checkJobMemory(job, 0, huge)).toThrow(ResourceLimitError);
    expect(() => checkJobMemory(job, 0, huge)).toThrow(/sum: the reduction needs/);
  });

  it('prepareJob with the checked layout gives the float64 reference, as without one', () => {
    const kernel = loadKernel();
    const { job, want } = problem();
    const layout = checkJobMemory(job, kernel.heapBase());
    const given = run(layout);
    const own = run();
    expect(given.prepared.prog).toBe(layout.prog);
    expect(given.prepared.outValues).toBe(layout.outValues);
    expect(Array.from(given.out.values!)).toEqual(Array.from(own.out.values!));
    expectClose(given.out.values!, want, 1e-5, 1e-6);
  });

  it('prepareJob uses the layout it is given (all of it shifted by 64 KiB still runs right)', () => {
    const kernel = loadKernel();
    const { job, want } = problem();
    const base = layoutJob(job, kernel.heapBase());
    const shift = 65536;
    const moved: JobLayout = {
      ...base,
      prog: base.prog + shift,
      regTable: base.regTable + shift,
      outerCode: base.outerCode + shift,
      innerCode: base.innerCode + shift,
      // view registers hold a parent index, not an address
      bases: base.bases.map((b, k) => (job.registers[k * JOB_REG_WORDS] === isa.REG_VIEW ? b : b + shift)),
      acc: base.acc + shift,
      outValues: base.outValues + shift,
      end: base.end + shift,
    };
    const prepared = prepareJob(kernel, job, moved);
    expect(prepared.prog).toBe(moved.prog);
    runPrepared(kernel, prepared, job.start, job.end);
    expectClose(readOutputs(kernel, prepared).values!, want, 1e-5, 1e-6);
  });

  it('prepareJob refuses a layout computed for another heapBase (an internal error, not silent garbage)', () => {
    const kernel = loadKernel();
    const { job } = problem();
    const other = layoutJob(job, kernel.heapBase() + 16);
    expect(() => prepareJob(kernel, job, other)).toThrow(/internal: sum: a job laid out from heapBase/);
  });
});
