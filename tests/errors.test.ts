// Bad input gets a clear error naming the argument and the expected shape.
import { describe, expect, it } from 'vitest';
import { Pm, ShapeError, Vi, Vj, setDefaultEngine } from '../src/index.js';

const x3 = () => Vi(new Float32Array([0, 1, 2, 3, 4, 5]), 3);
const y3 = () => Vj(new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 8]), 3);

describe('input validation', () => {
  it('rejects NaN and infinite data, naming the entry', () => {
    expect(() => Vi(new Float32Array([0, NaN, 1]), 1)).toThrow(/Vi: data\[1\]\[0\] is NaN/);
    expect(() =>
      Vj([
        [0, 1],
        [2, Infinity],
      ]),
    ).toThrow(/Vj: data\[1\]\[1\] is Infinity/);
    expect(() => Pm(NaN)).toThrow(/Pm: value\[0\] is NaN/);
    expect(() => x3().mul(Infinity)).toThrow(/mul: the constant Infinity is not a finite number/);
  });

  it('rejects empty data and ragged rows', () => {
    expect(() => Vi(new Float32Array(0), 3)).toThrow(/Vi: data is empty/);
    expect(() => Vj([])).toThrow(/Vj: data is empty/);
    expect(() => Vi([[1, 2], [3]])).toThrow(/Vi: row 1 has 1 components, expected 2/);
    expect(() => Vi(new Float32Array(7), 3)).toThrow(/Vi: 7 values do not split into rows of dim 3/);
    expect(() => Vi([[1, 2]], 3)).toThrow(/Vi: dim is 3 but the rows have 2 components/);
    expect(() => Vi(new Float32Array(6), 0)).toThrow(/dim must be a positive integer/);
    expect(() => Vi('abc' as never, 1)).toThrow(/Vi: data must be/);
  });

  it('rejects unknown options', () => {
    expect(() => Vi([1, 2], 1, { precision: 'float32' } as never)).toThrow(/Vi: unknown option 'precision'/);
    expect(() => Vi([1, 2], 1, { dtype: 'float16' as never })).toThrow(/dtype must be 'float32' or 'float64'/);
  });

  it('checks dimensions when the formula is built, naming the operation and both shapes', () => {
    const x = x3();
    const y2 = Vj(new Float32Array(4), 2);
    expect(() => x.add(y2)).toThrow(ShapeError);
    expect(() => x.add(y2)).toThrow(/add: operand dimensions 3 and 2 do not match/);
    expect(() => x.sqDist(y2)).toThrow(/sqDist: operand dimensions 3 and 2 must be equal/);
    expect(() => x.dot(y2)).toThrow(/dot: operand dimensions 3 and 2 must be equal/);
    expect(() => x.elem(3)).toThrow(/elem: index 3 is out of range for dimension 3/);
    expect(() => x.extract(2, 2)).toThrow(/extract: components \[2, 4\) are out of range for dimension 3/);
    expect(() => x.oneHot(4)).toThrow(/oneHot: the operand must have dimension 1, got 3/);
    expect(() => x.matVecMult(y2)).toThrow(
      /matVecMult: the matrix dimension 3 is not a multiple of the vector dimension 2/,
    );
    expect(() => x.weightedSqNorm(Pm([1, 2]))).toThrow(
      /weightedSqNorm: the weight has dimension 2; for vectors of dimension 3 it must be 1, 3 or 9/,
    );
    expect(() => x.pow(1.5)).toThrow(/pow: the exponent must be an integer, got 1.5/);
    expect(() => x.add('1' as never)).toThrow(/add: expected a LazyTensor or a number/);
  });

  it('rejects variables of the same index with different numbers of rows', () => {
    const a = Vi(new Float32Array(6), 3);
    const b = Vi(new Float32Array(9), 3);
    expect(() => a.add(b)).toThrow(/add: i-variables with 2 and 3 rows cannot be combined/);
  });
});

describe('reduction validation', () => {
  it('rejects a bad axis, unknown options and unknown engines', async () => {
    const D = x3().sqDist(y3());
    await expect(D.sum(2 as never)).rejects.toThrow(/sum: axis must be 0 or 1/);
    await expect(D.sum(1, { foo: 1 } as never)).rejects.toThrow(/sum: unknown option 'foo'/);
    await expect(D.min(1, { engine: 'cuda' as never })).rejects.toThrow(/engine must be 'auto', 'wasm' or 'webgpu'/);
    expect(() => setDefaultEngine('gpu' as never)).toThrow(/setDefaultEngine/);
  });

  it('rejects K larger than the reduced size and non-integer K', async () => {
    const D = x3().sqDist(y3()); // N = 2, M = 3
    await expect(D.argKMin(4, 1)).rejects.toThrow(/argKMin: K = 4 is larger than the 3 values reduced over axis 1/);
    await expect(D.kMin(3, 0)).rejects.toThrow(/kMin: K = 3 is larger than the 2 values reduced over axis 0/);
    await expect(D.kMin(0, 1)).rejects.toThrow(/K must be a positive integer/);
    await expect(D.argKMin(2.5, 1)).rejects.toThrow(/K must be a positive integer/);
  });

  it('rejects formulas missing an index and mixed precisions', async () => {
    await expect(x3().sqNorm2().sum(1)).rejects.toThrow(/sum: the formula has no j-variable/);
    await expect(y3().sqNorm2().sum(0)).rejects.toThrow(/sum: the formula has no i-variable/);
    const x64 = Vi(new Float64Array(6), 3);
    await expect(x64.sqDist(y3()).sum(1)).rejects.toThrow(/is float64 but .* is float32; pass \{ dtype \}/);
    const ok = await x64.sqDist(y3()).sum(1, { dtype: 'float32' });
    expect(ok.dtype).toBe('float32');
  });

  it('rejects a weight with a formula of dimension > 1', async () => {
    const F = x3().sub(y3());
    await expect(F.logSumExp(1, { weight: Vj(new Float32Array(3), 1) })).rejects.toThrow(
      /logSumExpWeighted: with a weight, the formula must have dimension 1, got 3/,
    );
  });

  it('dense() materialises small matrices and refuses large ones', () => {
    const x = Vi([[0], [1]]);
    const y = Vj([[0], [2], [3]]);
    expect(x.sqDist(y).dense()).toEqual([
      [[0], [4], [9]],
      [[1], [1], [4]],
    ]);
    expect(() => x.sqDist(y).dense({ maxEntries: 5 })).toThrow(/dense: 2 x 3 x 1 = 6 values exceed the limit of 5/);
  });

  it('prints formulas in a readable form', () => {
    const x = Vi([[0, 1]], 2, { name: 'x' });
    const y = Vj([[0, 1]], 2, { name: 'y' });
    const b = Vj([1], 1, { name: 'b' });
    expect(x.sqDist(y).mul(-50).exp().mul(b).toString()).toBe('(exp((|x - y|^2 * -50)) * b)');
    expect(x.elem(0).concat(y).toString()).toBe('[x[0], y]');
  });
});
