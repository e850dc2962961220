// Pattern rewriting before compilation (src/core/rewrite.ts): the literal KeOps idioms for squared
// distances compile to the fused sqDist, with the same values as sqDist to the last bit on the
// WebAssembly engine, equal to the unrewritten float64 dense reference, on both engines.
import { describe, expect, it } from 'vitest';
import { Vi, Vj, type LazyTensor } from '../src/index.js';
import * as isa from '../assembly/isa.js';
import { postOrder, type FormulaNode } from '../src/core/formula.js';
import { rewriteFormula } from '../src/core/rewrite.js';
import { compilePlan } from '../src/wasm/compile.js';
import { expectClose } from './helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from './helpers/random.js';
import { refSum } from './helpers/dense-reference.js';
import { expectGpu, hasGpu } from './gpu/setup.js';

const ops = (node: FormulaNode): string[] =>
  postOrder(node)
    .filter((n) => n.kind === 'op')
    .map((n) => (n.kind === 'op' ? n.def.name : ''));

/** The opcodes of a formula's compiled sum reduction (outer and inner code). */
function opcodes(F: LazyTensor): number[] {
  const program = compilePlan(F.plan('sum', 1, undefined));
  const out: number[] = [];
  for (const code of [program.outerCode, program.innerCode]) {
    for (let q = 0; q < code.length; q += isa.INSTR_WORDS) out.push(code[q + isa.I_OP]!);
  }
  return out;
}

const D = 5;
const random = rng(77);
const xs = uniformRows(random, 13, D);
const ys = uniformRows(random, 301, D);

describe('rewriting of the squared-distance idioms', () => {
  const x = Vi(xs);
  const y = Vj(ys);
  it('recognises sum of squares, pow(2), sqNorm2 and norm2 of a difference', () => {
    expect(ops(rewriteFormula(x.sub(y).square().sum(-1).node))).toEqual(['sqDist']);
    expect(ops(rewriteFormula(x.sub(y).pow(2).sum(-1).node))).toEqual(['sqDist']);
    expect(ops(rewriteFormula(x.sub(y).sqNorm2().node))).toEqual(['sqDist']);
    expect(ops(rewriteFormula(x.sub(y).norm2().node))).toEqual(['sqDist', 'sqrt']);
    expect(ops(rewriteFormula(x.mul(y).square().sum(-1).node))).toEqual(['mul', 'sqNorm2']);
    expect(ops(rewriteFormula(x.pow(2).node))).toEqual(['square']);
    expect(ops(rewriteFormula(x.pow(3).node))).toEqual(['pow']);
    // inside a larger formula: the Gaussian kernel of the literal idiom
    expect(ops(rewriteFormula(x.sub(y).pow(2).sum(-1).mul(-0.5).exp().node))).toEqual(['sqDist', 'mul', 'exp']);
    // the rewrite is structural: the arguments are the original variables
    const r = rewriteFormula(x.sub(y).square().sum(-1).node);
    expect(r.kind === 'op' && r.args[0] === x.node && r.args[1] === y.node).toBe(true);
  });

  it('leaves other formulas (and broadcast differences) as they are', () => {
    const F = x.sqDist(y).mul(-1).exp();
    expect(rewriteFormula(F.node)).toBe(F.node);
    const c = Vj(ys.map((r) => [r[0]!]));
    // x - c broadcasts c over 5 components: not a sqDist
    expect(ops(rewriteFormula(x.sub(c).square().sum(-1).node))).toEqual(['sub', 'sqNorm2']);
    // the formula the user built is unchanged
    const G = x.sub(y).square().sum(-1);
    expect(G.toString()).toContain('sum(');
    expect(ops(G.node)).toEqual(['sub', 'square', 'sum']);
  });

  it('the tile program of the idioms is the program of sqDist (one SQDIST, no SUB)', () => {
    const want = opcodes(x.sqDist(y));
    expect(want).toContain(isa.OP_SQDIST);
    for (const F of [x.sub(y).square().sum(-1), x.sub(y).pow(2).sum(-1), x.sub(y).sqNorm2()]) {
      expect(opcodes(F), F.toString()).toEqual(want);
    }
    expect(opcodes(x.sub(y).norm2())).toEqual(opcodes(x.sqDist(y).sqrt()));
  });

  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: same values as sqDist, and the unrewritten dense reference`, async () => {
      const xt = Vi(typed(xs, dtype), D);
      const yt = Vj(typed(ys, dtype), D);
      const sx = asSeen(xs, dtype);
      const sy = asSeen(ys, dtype);
      const fused = xt.sqDist(yt).mul(-0.7).exp();
      const idioms = [xt.sub(yt).square().sum(-1), xt.sub(yt).pow(2).sum(-1), xt.sub(yt).sqNorm2()].map((F) =>
        F.mul(-0.7).exp(),
      );
      for (const axis of [0, 1] as const) {
        const want = await fused.sum(axis);
        const ref = refSum(
          (i, j) => [Math.exp(-0.7 * sx[i]!.reduce((s, v, k) => s + (v - sy[j]![k]!) ** 2, 0))],
          { N: 13, M: 301 },
          axis,
        );
        for (const F of idioms) {
          const got = await F.sum(axis);
          expect(Array.from(got.data), `${F.toString()} axis ${axis}`).toEqual(Array.from(want.data));
          expectClose(got.data, ref.value.flat(), dtype === 'float64' ? 1e-12 : 2e-5, 0, ref.scale.flat(), 'dense');
        }
        // dense() evaluates the formula as written (no rewrite): it agrees too
        const dense = idioms[1]!.dense();
        const direct = fused.dense();
        expect(dense[3]![7]![0]).toBeCloseTo(direct[3]![7]![0]!, dtype === 'float64' ? 14 : 6);
      }
      const norm = await xt.sub(yt).norm2().sum(1);
      const normRef = await xt.sqDist(yt).sqrt().sum(1);
      expect(Array.from(norm.data)).toEqual(Array.from(normRef.data));
    });
  }
});

describe.skipIf(!hasGpu)('WebGPU: rewriting of the squared-distance idioms', () => {
  it('float32: the idioms equal the dense reference and sqDist', async () => {
    const xt = Vi(typed(xs, 'float32'), D);
    const yt = Vj(typed(ys, 'float32'), D);
    const sx = asSeen(xs, 'float32');
    const sy = asSeen(ys, 'float32');
    for (const axis of [0, 1] as const) {
      const want = await xt.sqDist(yt).sum(axis, { engine: 'webgpu' });
      const ref = refSum((i, j) => [sx[i]!.reduce((s, v, k) => s + (v - sy[j]![k]!) ** 2, 0)], { N: 13, M: 301 }, axis);
      for (const F of [xt.sub(yt).square().sum(-1), xt.sub(yt).pow(2).sum(-1), xt.sub(yt).sqNorm2()]) {
        const got = await F.sum(axis, { engine: 'webgpu' });
        expectGpu(got, F.toString());
        expectClose(got.data, ref.value.flat(), 2e-5, 0, ref.scale.flat(), `${F.toString()} axis ${axis}`);
        expectClose(got.data, Array.from(want.data), 1e-6, 0, undefined, `${F.toString()} vs sqDist`);
      }
    }
  });
});
