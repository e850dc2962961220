// The two engines agree on the special values assembly/isa.ts specifies: NaN from log of negatives
// and 0/0, infinities from division by zero and overflow, ties, all-NaN rows. Same inputs, every
// reduction, both axes: values equal within float32 tolerance (NaN where NaN), indices identical.
import { describe, expect, it } from 'vitest';
import { Vi, Vj, type LazyTensor, type Tensor } from '../../src/index.js';
import { expectClose } from '../helpers/expect.js';
import { expectGpu, hasGpu } from './setup.js';

type Engine = 'wasm' | 'webgpu';
type Out = { values: Tensor | null; indices: Tensor | null };

async function reduce(kind: string, F: LazyTensor, axis: 0 | 1, engine: Engine, weight: LazyTensor): Promise<Out> {
  const o = { engine };
  switch (kind) {
    case 'sum':
      return { values: await F.sum(axis, o), indices: null };
    case 'logSumExp':
      return { values: await F.logSumExp(axis, o), indices: null };
    case 'logSumExpWeighted':
      return { values: await F.elem(0).logSumExp(axis, { ...o, weight }), indices: null };
    case 'sumSoftMaxWeight':
      return { values: await F.elem(0).sumSoftMaxWeight(axis, weight, o), indices: null };
    case 'min':
      return { values: await F.min(axis, o), indices: null };
    case 'max':
      return { values: await F.max(axis, o), indices: null };
    case 'argMin':
      return { values: null, indices: await F.argMin(axis, o) };
    case 'argMax':
      return { values: null, indices: await F.argMax(axis, o) };
    case 'minArgMin': {
      const r = await F.minArgMin(axis, o);
      return r;
    }
    case 'maxArgMax': {
      const r = await F.maxArgMax(axis, o);
      return r;
    }
    case 'kMin':
      return { values: await F.kMin(3, axis, o), indices: null };
    case 'argKMin':
      return { values: null, indices: await F.argKMin(3, axis, o) };
    default: {
      const r = await F.kMinArgKMin(3, axis, o);
      return r;
    }
  }
}

const KINDS = [
  'sum',
  'logSumExp',
  'logSumExpWeighted',
  'sumSoftMaxWeight',
  'min',
  'max',
  'argMin',
  'argMax',
  'minArgMin',
  'maxArgMax',
  'kMin',
  'argKMin',
  'kMinArgKMin',
];

// Integers and halves: many exact ties and exact zeros of x - y.
const xs = new Float32Array([0, 1, -1, 2, 0.5, -0.5, 3, 1, 1, 0, -2, 4, 1.5, 0, 2, -1]);
const ys = new Float32Array([1, 0, 0.5, 2, -1, 1, 0, 3, -0.5, 1, 2, 0, 4, -2, 0.5, 1, 1, 1, 0, -1, 2]);
const x = Vi(xs, 2); // 8 rows
const y = Vj(ys, 3); // 7 rows
const d = x.elem(0).sub(y.elem(0));
const FORMULAS: [string, LazyTensor][] = [
  ['log(x - y): NaN and -inf', d.log().concat(x.elem(1).sub(y.elem(1)).log())],
  ['1 / (x - y): +-inf', d.pow(-1).concat(x.elem(1).mul(y.elem(2)))],
  ['exp(100 (x - y)): overflow', d.mul(100).exp().concat(d.mul(-100).exp())],
  ['0 / 0 and sqrt of negatives', d.div(x.elem(1).sub(y.elem(1))).concat(d.sqrt())],
  ['ties', d.abs().concat(x.elem(1).mul(0))],
];

describe.skipIf(!hasGpu)('WebGPU and WebAssembly agree on special values', () => {
  describe.each(FORMULAS)('%s', (_name, F) => {
    it.each(KINDS)('%s', async (kind) => {
      for (const axis of [1, 0] as const) {
        const weight = axis === 1 ? y.abs() : x.abs().concat(x.elem(0));
        const a = await reduce(kind, F, axis, 'wasm', weight);
        const b = await reduce(kind, F, axis, 'webgpu', weight);
        if (b.values) expectGpu(b.values);
        if (b.indices) expectGpu(b.indices);
        if (a.values) {
          expect(b.values!.shape).toEqual(a.values.shape);
          expectClose(b.values!.data, Array.from(a.values.data), 1e-5, 1e-6, undefined, `${kind} axis ${axis}`);
        }
        if (a.indices) expect(Array.from(b.indices!.data), `${kind} axis ${axis}`).toEqual(Array.from(a.indices.data));
      }
    });
  });
});
