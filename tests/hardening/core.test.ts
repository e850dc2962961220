// Issue 10, the core rows: each test reproduces the row's input and checks the wanted behaviour
// (a named error that says what was wrong, or a result equal to an independent float64 reference).
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import {
  InputError,
  LazyTensorError,
  Pm,
  ResourceLimitError,
  ShapeError,
  Vi,
  Vj,
  clusterRangesCentroids,
  fromMatrix,
  gridCluster,
  reduction,
  vjp,
  type LazyTensor,
} from '../../src/index.js';
import { compileTesting } from '../../src/wasm/compile.js';
import { MAX_REGS } from '../../assembly/isa.js';
import { expectClose } from '../helpers/expect.js';
import { rng } from '../helpers/random.js';

afterEach(() => compileTesting.reset());

const points = (n: number, d: number, seed: number): Float64Array => {
  const r = rng(seed);
  return Float64Array.from({ length: n * d }, () => r() * 2 - 1);
};

describe('the error classes (exported)', () => {
  it('form one hierarchy under LazyTensorError, each an Error with its own name', () => {
    for (const [Class, name] of [
      [InputError, 'InputError'],
      [ShapeError, 'ShapeError'],
      [ResourceLimitError, 'ResourceLimitError'],
    ] as const) {
      const e =
        Class === ResourceLimitError
          ? new ResourceLimitError('m', 2, 1, 'bytes')
          : new (Class as typeof InputError)('m');
      expect(e).toBeInstanceOf(Error);
      expect(e).toBeInstanceOf(LazyTensorError);
      expect(e.name).toBe(name);
    }
    const limit = new ResourceLimitError('m', 5, 3, 'bytes');
    expect([limit.needed, limit.limit, limit.unit]).toEqual([5, 3, 'bytes']);
    expect(() => Vi([[1, 2, 3]]).add(Vj([[1, 2]]))).toThrow(ShapeError);
  });
});

describe('row 2: every numeric option is validated before any work', () => {
  it('dense({ maxEntries: NaN }) on a 10^4 x 10^4 matrix is an InputError at once', () => {
    const F = Vi(points(1e4, 1, 1), 1).sub(Vj(points(1e4, 1, 2), 1));
    const t0 = performance.now();
    for (const bad of [NaN, Infinity, -1, 0, 2.5, '10' as never, 2 ** 40]) {
      expect(() => F.dense({ maxEntries: bad })).toThrow(InputError);
    }
    expect(() => F.dense({ maxEntries: NaN })).toThrow(/dense: maxEntries must be an integer in \[1, \d+\], got NaN/);
    expect(() => F.dense({ maxEntrys: 5 } as never)).toThrow(/dense: unknown option 'maxEntrys'/);
    expect(() => F.dense()).toThrow(ResourceLimitError);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('K, axis, pow, round, elem, extract, oneHot, clamp, mod and dim', async () => {
    const x = Vi(points(5, 3, 3), 3);
    const y = Vj(points(7, 3, 4), 3);
    const D = x.sqDist(y);
    for (const K of [NaN, Infinity, 1.5, 0, -2, '3' as never]) {
      await expect(D.kMin(K, 1)).rejects.toThrow(InputError);
      await expect(D.argKMin(K, 1)).rejects.toThrow(/K must be a positive integer/);
    }
    await expect(D.kMin(8, 1)).rejects.toThrow(/K = 8 is larger than the 7 values/);
    for (const axis of [NaN, 2, -2, '1' as never, 0.5]) await expect(D.sum(axis as never)).rejects.toThrow(InputError);
    for (const n of [NaN, Infinity, 1.5, 2 ** 40]) expect(() => x.pow(n)).toThrow(InputError);
    expect(() => x.pow(2 ** 40)).toThrow(/pow: the exponent must be an integer in/);
    for (const digits of [NaN, Infinity, 0.5, 2 ** 31]) expect(() => x.round(digits)).toThrow(InputError);
    for (const k of [NaN, -1, 3, 0.5]) expect(() => x.elem(k)).toThrow(LazyTensorError);
    expect(() => x.extract(0, NaN)).toThrow(InputError);
    expect(() => D.oneHot(Infinity)).toThrow(InputError);
    expect(() => x.clamp(2, 1)).toThrow(/clamp: lower \(2\) must be <= upper \(1\)/);
    expect(() => x.clamp(NaN, 1)).toThrow(/clamp: the constant NaN is not a finite number/);
    expect(() => x.mod(0)).toThrow(/mod: the modulus must not be 0/);
    expect(() => x.mul(Infinity)).toThrow(InputError);
    for (const dim of [NaN, 0, 1.5, Infinity])
      expect(() => Vi([1, 2, 3, 4], dim)).toThrow(/dim must be a positive integer/);
  });

  it('solve numbers: alpha, tol and maxIter', async () => {
    const x = Vi(points(6, 2, 5), 2);
    const K = x
      .sqDist(Vj(points(6, 2, 5), 2))
      .neg()
      .exp();
    const b = new Float64Array(6).fill(1);
    await expect(K.solve(b, { alpha: NaN })).rejects.toThrow(/alpha must be >= 0/);
    await expect(K.solve(b, { tol: Infinity })).rejects.toThrow(/tol must be > 0 \(a finite number\)/);
    await expect(K.solve(b, { tol: NaN })).rejects.toThrow(InputError);
    await expect(K.solve(b, { maxIter: NaN })).rejects.toThrow(/maxIter must be a positive integer/);
    await expect(K.solve(b, { maxIter: 2.5 })).rejects.toThrow(InputError);
  });

  it('block-sparse helpers: voxel size, labels, weights and ranges', () => {
    const xs = points(10, 2, 6);
    for (const size of [NaN, 0, -1, Infinity]) expect(() => gridCluster(xs, size, 2)).toThrow(InputError);
    expect(() => gridCluster(xs, 1e-320, 2)).toThrow(/cells; choose a larger voxelSize/);
    expect(() => gridCluster(xs, 0.5, NaN)).toThrow(/dim must be a positive integer/);
    const labels = new Int32Array(10);
    expect(() => clusterRangesCentroids(xs, [0.5, ...new Array(9).fill(0)], undefined, 2)).toThrow(/labels\[0\] = 0.5/);
    expect(() => clusterRangesCentroids(xs, [2 ** 40, ...new Array(9).fill(0)], undefined, 2)).toThrow(InputError);
    expect(() => clusterRangesCentroids(xs, labels, [NaN, ...new Array(9).fill(1)], 2)).toThrow(/weights\[0\] is NaN/);
    expect(() => clusterRangesCentroids(xs, labels, new Array(10).fill(-1), 2)).toThrow(InputError);
    expect(() => fromMatrix([0, 1.5] as never, new Int32Array([0, 1]), [true])).toThrow(/rangesI\[1\] is 1.5/);
    expect(() => fromMatrix(new Int32Array([0, 1]), new Int32Array([0, 1]), null as never)).toThrow(InputError);
  });
});

describe('row 5: float32 vjp of min and kMin picks exact indices past 2^24', () => {
  it('M = 2^24 + 8: the gradient lands on the selected indices only', async () => {
    const M = 2 ** 24 + 8;
    const first = 2 ** 24 + 5; // float32 rounds it to 2^24 + 4
    const second = 2 ** 24 + 7;
    const yData = new Float32Array(M).fill(1);
    yData[first] = 0.5;
    yData[second] = 0.75;
    const x = Vi(new Float32Array([0]), 1);
    const y = Vj(yData, 1);
    const F = x.sub(y).square(); // (0 - y_j)^2: smallest at `first`, then `second`
    const check = (g: ArrayLike<number>, want: Map<number, number>) => {
      const nonzero: number[] = [];
      for (let j = 0; j < g.length; j++) if (g[j] !== 0) nonzero.push(j);
      expect(nonzero).toEqual([...want.keys()]);
      for (const [j, v] of want) expect(g[j]).toBeCloseTo(v, 6);
    };
    const [gMin] = await vjp(reduction(F, 'min', 1, { options: { engine: 'wasm' } }), { wrt: [y], cotangent: [1] });
    check(gMin!.data, new Map([[first, 2 * 0.5]])); // d/dy (0 - y)^2 = 2y
    const [gK] = await vjp(reduction(F, 'kMin', 1, { k: 2, options: { engine: 'wasm' } }), {
      wrt: [y],
      cotangent: [1, 1],
    });
    check(
      gK!.data,
      new Map([
        [first, 1],
        [second, 1.5],
      ]),
    );
  }, 120_000);
});

describe('row 6: round(digits) for any integer digits', () => {
  it('round(400) is a no-op, round(-400) gives 0, ordinary digits round; never NaN', async () => {
    const data = [0, 1.23456, -2.5, 1e-300, 123456.789, 3e38];
    for (const dtype of ['float64', 'float32'] as const) {
      const x = Vi(dtype === 'float32' ? Float32Array.from(data) : Float64Array.from(data), 1);
      const y = Vj([0], 1);
      const exact = dtype === 'float32' ? Array.from(Float32Array.from(data)) : data;
      // + 0 makes -0 into 0: the sign of a zero is not part of the contract.
      const row = async (digits: number) =>
        Array.from((await x.round(digits).add(y.mul(0)).sum(1, { engine: 'wasm' })).data, (v) => v + 0);
      expect(await row(400)).toEqual(exact);
      // float64: 1e-300 rounds to 0 at 39 digits, the rest is beyond the precision; float32: 10^39
      // overflows, so every value is already "rounded".
      expect(await row(39)).toEqual(dtype === 'float32' ? exact : exact.map((v, k) => (k === 3 ? 0 : v)));
      expect((await row(-400)).every((v) => v === 0)).toBe(true);
      const two = await row(2);
      expectClose(
        two.slice(0, 5),
        [0, 1.23, -2.5, 0, 123456.79],
        dtype === 'float32' ? 1e-6 : 1e-15,
        0,
        undefined,
        `${dtype} round(2)`,
      );
      expect(two[5]).toBe(exact[5]); // 3e38 * 100 overflows: already "rounded"
      expect((await row(-1)).slice(0, 5)).toEqual(
        [0, 0, 0, 0, 123460].map((v, k) => (k === 4 && dtype === 'float32' ? Math.fround(v) : v)),
      );
    }
    const dense = Vi(data, 1)
      .round(400)
      .dense()
      .map((r) => r[0]![0]);
    expect(dense).toEqual(data);
  });
});

describe('row 7: non-number elements are named errors, as NaN is', () => {
  it('null, booleans, strings, arrays, Dates and BigInts in Vi, Vj and Pm', () => {
    const cases: [unknown, RegExp][] = [
      [[null, true, '', [], '7'], /Vi: data\[0\] is null; expected a number/],
      [[1, true], /Vi: data\[1\] is boolean true/],
      [[1, '7'], /Vi: data\[1\] is the string "7"/],
      [[1, [2]], /Vi: data\[1\] is an array; expected a number/],
      [[[null, 1]], /Vi: data\[0\]\[0\] is null/],
      [[new Date()], /Vi: data\[0\] is a Date/],
      [[[1, new Date()]], /Vi: data\[0\]\[1\] is a Date/],
      [[1n], /Vi: data\[0\] is the BigInt 1n/],
      [new Date(), /Vi: data must be a Float32Array, Float64Array, number\[\] or number\[\]\[\], got a Date/],
      [new Int32Array(3), /Vi: data must be/],
    ];
    for (const [data, message] of cases) {
      expect(() => Vi(data as never), String(message)).toThrow(InputError);
      expect(() => Vi(data as never)).toThrow(message);
    }
    expect(() =>
      Vj([
        [1, 2],
        [3, '4'],
      ] as never),
    ).toThrow(/Vj: data\[1\]\[1\] is the string "4"/);
    expect(() => Pm([null] as never)).toThrow(/Pm: value\[0\] is null/);
    expect(() => Pm([[1, '2']] as never)).toThrow(/Pm: value\[0\]\[1\] is the string "2"/);
    expect(() => Pm(1n as never)).toThrow(InputError);
    expect(() => Vi([1], 1, { name: 5 } as never)).toThrow(/name must be a string/);
  });
});

describe('row 8: a typed array changed after Vi is read, and re-checked, when the reduction runs', () => {
  it('a NaN written after Vi is an InputError; a finite change is used', async () => {
    const a = new Float32Array([1, 2, 3]);
    const x = Vi(a, 1);
    const F = x.mul(Vj([1, 10], 1, { dtype: 'float32' }));
    a[1] = 5;
    expect(Array.from((await F.sum(1, { engine: 'wasm' })).data)).toEqual([11, 55, 33]);
    expect(F.dense()[1]![1]).toEqual([50]);
    a[2] = NaN;
    await expect(F.sum(1)).rejects.toThrow(InputError);
    await expect(F.sum(1)).rejects.toThrow(
      /x\d+_i: data\[2\]\[0\] is NaN; inputs must be finite \(the array changed after it was given to Vi\)/,
    );
    expect(() => F.dense()).toThrow(/data\[2\]\[0\] is NaN/);
    a[2] = -Infinity;
    await expect(F.sum(0)).rejects.toThrow(/is -Infinity/);
    a[2] = 3;
    expect(Array.from((await F.sum(1)).data)).toEqual([11, 55, 33]);
  });
});

describe('row 15: outputs larger than the WebAssembly memory are a named error before any allocation', () => {
  it('kMin(2^14, 1) on 2^15 rows (a 2 GiB output) states size and limit', async () => {
    const x = Vi(new Float32Array(2 ** 15), 1);
    const y = Vj(new Float32Array(2 ** 14), 1);
    const D = x.sub(y).abs();
    const t0 = performance.now();
    const failure = D.kMin(2 ** 14, 1, { engine: 'wasm' });
    await expect(failure).rejects.toThrow(ResourceLimitError);
    await expect(D.kMin(2 ** 14, 1, { engine: 'wasm' })).rejects.toThrow(
      /kMin: the reduction needs 20\d\d MiB of WebAssembly memory \(of which the 32768 x 16384 output is 2048 MiB\), more than the kernel's limit of 2048 MiB/,
    );
    await expect(D.kMinArgKMin(2 ** 14, 1, { engine: 'wasm' })).rejects.toThrow(/output is 4096 MiB/);
    expect(performance.now() - t0).toBeLessThan(2000);
    const error = (await D.kMin(2 ** 14, 1, { engine: 'wasm' }).catch((e: unknown) => e)) as ResourceLimitError;
    expect(error.unit).toBe('bytes');
    expect(error.needed).toBeGreaterThan(error.limit);
  });

  it('a result of more than 2^31 - 1 entries is refused while the reduction is planned', async () => {
    const x = Vi(new Float32Array(2 ** 16), 1);
    const y = Vj(new Float32Array(2 ** 16), 1);
    await expect(x.sub(y).argKMin(2 ** 16, 1)).rejects.toThrow(
      /argKMin: the result would have 65536 x 65536 = 4294967296 entries, more than 2147483647/,
    );
  });
});

/** sum_k cos(x * c_k - y) with 2000 distinct constants c_k, against a float64 loop. */
async function checkLongSum(terms: number): Promise<void> {
  const xs = points(3, 1, 7);
  const ys = points(37, 1, 8);
  const x = Vi(xs, 1);
  const y = Vj(ys, 1);
  let F: LazyTensor = x.sub(y).sin();
  for (let k = 1; k < terms; k++)
    F = F.add(
      x
        .mul(1 + k / terms)
        .sub(y)
        .cos(),
    );
  const got = await F.sum(1, { engine: 'wasm' });
  const want = Array.from(xs, (xi) => {
    let s = 0;
    for (const yj of ys) {
      s += Math.sin(xi - yj);
      for (let k = 1; k < terms; k++) s += Math.cos(xi * (1 + k / terms) - yj);
    }
    return s;
  });
  expectClose(got.data, want, 1e-12, 1e-12 * terms * ys.length, undefined, `sum of ${terms} terms`);
}

describe('row 16: formulas of thousands of terms run (register reuse), or name the limit', () => {
  it('a sum of 2000 terms equals the float64 loop', async () => {
    await checkLongSum(2000);
  }, 60_000);

  it('register reuse forced on every program gives the same results', async () => {
    compileTesting.reuseRegistersFrom(0);
    await checkLongSum(40);
    const x = Vi(points(9, 3, 9), 3);
    const y = Vj(points(11, 3, 10), 3);
    const F = x.sqDist(y).neg().exp().mul(x.concat(y).elem(4)).add(x.tensorProd(y).sum(-1));
    const want = F.dense().map((row) => row.reduce((s, v) => s + v[0]!, 0));
    expectClose((await F.sum(1)).data, want, 1e-12, 1e-12);
    const lse = F.dense().map((row) => Math.log(row.reduce((s, v) => s + Math.exp(v[0]!), 0)));
    expectClose((await F.logSumExp(1)).data, lse, 1e-12, 1e-12);
  });

  it('a formula whose values cannot share registers hits a ResourceLimitError naming MAX_REGS', async () => {
    const x = Vi(points(2, 1, 11), 1);
    const y = Vj(points(3, 1, 12), 1);
    // Each Pm is its own register (parameters are data, never shared).
    let F: LazyTensor = x.sub(y);
    for (let k = 0; k < MAX_REGS; k++) F = F.add(Pm(k));
    await expect(F.sum(1, { engine: 'wasm' })).rejects.toThrow(ResourceLimitError);
    await expect(F.sum(1, { engine: 'wasm' })).rejects.toThrow(new RegExp(`more than its limit of ${MAX_REGS}`));
  }, 60_000);
});

describe('row 17: deeply nested formulas', () => {
  const nested = (depth: number) => {
    const x = Vi(points(2, 1, 13), 1);
    const y = Vj(points(3, 1, 14), 1);
    let F: LazyTensor = x;
    for (let k = 0; k < depth; k++) F = F.add(y).sin();
    return { x, y, F };
  };
  const reference = (xs: number, ys: number, depth: number) => {
    let v = xs;
    for (let k = 0; k < depth; k++) v = Math.sin(v + ys);
    return v;
  };

  it('10000 nested add/sin: toString, grad, dense and a reduction', async () => {
    const depth = 10000;
    const { x, F } = nested(depth);
    const text = F.toString();
    expect(text.startsWith('sin((sin((sin(')).toBe(true);
    expect(text.length).toBeGreaterThan(depth * 10);
    const G = F.grad(x, 1);
    expect(G.dim).toBe(1);
    const xs = points(2, 1, 13);
    const ys = points(3, 1, 14);
    const dense = F.dense();
    expect(dense[1]![2]![0]).toBeCloseTo(reference(xs[1]!, ys[2]!, depth), 12);
    const sum = await F.sum(1, { engine: 'wasm' });
    const want = Array.from(xs, (xi) => ys.reduce((s, yj) => s + reference(xi, yj, depth), 0));
    expectClose(sum.data, want, 1e-10, 1e-10);
  }, 60_000);

  it('the gradient of 2000 nested add/sin reduces to finite differences', async () => {
    const depth = 2000;
    const { x, F } = nested(depth);
    const xs = points(2, 1, 13);
    const ys = points(3, 1, 14);
    const [g] = await vjp(reduction(F, 'sum', 1, { options: { engine: 'wasm' } }), { wrt: [x], cotangent: [1, 1] });
    const h = 1e-6;
    const fd = Array.from(xs, (xi) =>
      ys.reduce((s, yj) => s + (reference(xi + h, yj, depth) - reference(xi - h, yj, depth)) / (2 * h), 0),
    );
    expectClose(g!.data, fd, 1e-6, 1e-8);
  }, 60_000);

  it('a formula that prints exponentially long is a ResourceLimitError, not an invalid string', () => {
    let F: LazyTensor = Vi([1, 2], 1);
    for (let k = 0; k < 40; k++) F = F.add(F);
    expect(() => F.toString()).toThrow(ResourceLimitError);
    expect(F.dense()[1]![0]![0]).toBe(2 * 2 ** 40);
  });
});

describe("row 19: vjp in the caller's terms", () => {
  const x = Vi([[0], [1]]);
  const y = Vj([[0.5], [2], [3]]);

  it('a log-sum-exp row that is all -inf has gradient 0 (the others are exact)', async () => {
    // F = log(relu(x - y + 0.6)): row 0 (x = -1) is -inf everywhere (relu gives 0); row 1 (x = 1)
    // is log(1.1) at j = 0 and -inf elsewhere, where the derivative of log is infinite.
    const x2 = Vi([[-1], [1]]);
    const F = x2.sub(y).add(0.6).relu().log();
    const [gx, gy] = await vjp(reduction(F, 'logSumExp', 1), { wrt: [x2, y], cotangent: [1, 1] });
    expectClose(gx!.data, [0, 1 / 1.1], 1e-15);
    expectClose(gy!.data, [-1 / 1.1, 0, 0], 1e-15);
    // The softmax average of y: row 0 is 0/0 (NaN), gradient 0; row 1 is y_0, gradient e_0.
    const [gs] = await vjp(reduction(F, 'sumSoftMaxWeight', 1, { weight: y }), { wrt: [y], cotangent: [1, 1] });
    expectClose(gs!.data, [1, 0, 0], 1e-15);
  });

  it('a NaN cotangent, the gradient of argMin, wrt not an array: InputErrors that say so', async () => {
    const F = x.sqDist(y);
    await expect(vjp(reduction(F, 'sum', 1), { wrt: [x], cotangent: [NaN, 1] })).rejects.toThrow(
      /vjp: cotangent\[0\] is NaN; the cotangent must be finite numbers/,
    );
    await expect(vjp(reduction(F, 'sum', 1), { wrt: [x], cotangent: [1, Infinity] })).rejects.toThrow(InputError);
    await expect(vjp(reduction(F, 'argMin' as never, 1), { wrt: [x], cotangent: [1, 1] })).rejects.toThrow(
      /vjp: argMin has no gradient \(it returns indices, which have no gradient\)/,
    );
    await expect(vjp(reduction(F, 'kMinArgKMin' as never, 1), { wrt: [x], cotangent: [1, 1] })).rejects.toThrow(
      InputError,
    );
    await expect(vjp(reduction(F, 'sum', 1), { wrt: x as never, cotangent: [1, 1] })).rejects.toThrow(
      /vjp: wrt must be an array of variables made by Vi, Vj or Pm/,
    );
    await expect(vjp(reduction(F, 'sum', 1), { wrt: [F], cotangent: [1, 1] })).rejects.toThrow(
      /vjp: wrt\[0\] is not a variable/,
    );
    await expect(vjp(reduction(F, 'sum', 1), { wrt: [x], cotangent: 'a' as never })).rejects.toThrow(
      /vjp: cotangent must be/,
    );
    await expect(vjp(reduction(F, 'sum', 1), undefined as never)).rejects.toThrow(
      /vjp: options \{ wrt, cotangent \} are required/,
    );
    await expect(vjp(reduction(F, 'sum', 1), { wrt: [x], cotangent: [1, 1], foo: 1 } as never)).rejects.toThrow(
      /vjp: unknown option 'foo'/,
    );
  });

  it('a +inf log-sum-exp row is named, not an internal Vi error', async () => {
    const F = x.sub(y).add(0.6).relu().log().neg(); // +inf where relu gives 0
    await expect(vjp(reduction(F, 'logSumExp', 1), { wrt: [x], cotangent: [1, 1] })).rejects.toThrow(
      /vjp: the logSumExp result is Infinity at row 0/,
    );
  });
});

describe('row 20: other data shapes and realms', () => {
  it('BigInt, a buffer detached after Vi, ranges null or fractional: InputErrors', async () => {
    expect(() => Vi([1n] as never)).toThrow(/Vi: data\[0\] is the BigInt 1n/);
    const a = new Float32Array([1, 2, 3, 4]);
    const x = Vi(a, 2);
    const y = Vj(new Float32Array([0, 1]), 2);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    await expect(x.sqDist(y).sum(1)).rejects.toThrow(
      /the data of x\d+_i was detached or resized after it was given to Vi/,
    );
    const detached = new Float64Array(4);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(() => Vi(detached, 1)).toThrow(InputError);
    const F = Vi([[0], [1]]).sub(Vj([[0], [1], [2]]));
    await expect(F.sum(1, { ranges: null as never })).rejects.toThrow(
      /sum: ranges must be a BlockRanges object \(from fromMatrix\), got null/,
    );
    const good = fromMatrix(new Int32Array([0, 2]), new Int32Array([0, 3]), [true]);
    await expect(F.sum(1, { ranges: { ...good, rangesI: [0, 1.5] as never } })).rejects.toThrow(
      /ranges.rangesI\[1\] is 1.5; expected a non-negative integer index/,
    );
    await expect(F.sum(1, { ranges: { ...good, redRangesJ: new Int32Array([0]) } })).rejects.toThrow(
      /must hold \[start, end\) pairs/,
    );
    expect(Array.from((await F.sum(1, { ranges: good })).data)).toEqual([-3, 0]);
  });

  it('rows given as Float32Array / Float64Array, and typed arrays from another realm, are accepted', async () => {
    const rows = [new Float32Array([0.5, 1]), new Float64Array([2, -1])];
    const x = Vi(rows);
    const y = Vj([
      [1, 1],
      [0, 2],
      [3, 0],
    ]);
    const want = Array.from(
      (
        await Vi([
          [0.5, 1],
          [2, -1],
        ])
          .sqDist(y)
          .sum(1)
      ).data,
    );
    expect(Array.from((await x.sqDist(y).sum(1)).data)).toEqual(want);
    const realm = vm.runInNewContext(
      '({ f32: new Float32Array([0.5, 1, 2, -1]), f64: new Float64Array([0.5, 1, 2, -1]) })',
    ) as { f32: Float32Array; f64: Float64Array };
    expect(realm.f32 instanceof Float32Array).toBe(false);
    const f32 = await Vi(realm.f32, 2)
      .sqDist(Vj(new Float32Array([1, 1, 0, 2, 3, 0]), 2))
      .sum(1);
    expect(f32.dtype).toBe('float32');
    expectClose(f32.data, want, 1e-6);
    const f64 = await Vi(realm.f64, 2).sqDist(y).sum(1);
    expect(Array.from(f64.data)).toEqual(want);
    const p = Pm(vm.runInNewContext('new Float64Array([2])') as Float64Array);
    expect(Array.from((await Vi(realm.f64, 2).sqDist(y).mul(p).sum(1)).data)).toEqual(want.map((v) => 2 * v));
  });
});
