// The attention backward in one sweep (issue 16): given the forward's softmax max and sum
// (WebAssembly), vjp of sumSoftMaxWeight w.r.t. the variables of both axes runs one reduction,
// kernel RED_SUM_COLS, that sums dq over j per row and [dk, dv] over i per column at once. Checked
// against a plain float64 dense attention gradient, on the main thread (whole and in small chunks)
// and on 2 and 3 workers, bit-identical across them, and to rounding against the two-pass rule.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Pm, Vi, Vj, reduction, runReduction, setWasmThreads, vjp, type LazyTensor } from '../src/index.js';
import { vjpTesting } from '../src/core/reduction-grad.js';
import { wasmEngineTesting } from '../src/wasm/wasm-engine.js';
import { wasmThreadsTesting } from '../src/wasm/workers.js';
import { expectClose } from './helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from './helpers/random.js';
import { expectResponsive } from './helpers/event-loop.js';
import { denseAttention } from './helpers/dense-reference.js';

type Out = Float32Array | Float64Array;
type Mask = 'full' | 'causal -1e30' | 'causal -Infinity';

const bytes = (a: Out) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const scaleOf = (want: number[]) => {
  const top = Math.max(...want.map((x) => Math.abs(x)), 1e-300);
  return want.map(() => top);
};

/** q, k, v, a temperature parameter, the scores (with the mask) and the dense float64 gradient. */
function problem(nO: number, nI: number, d: number, e: number, dtype: 'float32' | 'float64', mask: Mask) {
  const random = rng(nO * 1000 + nI + d + (mask === 'full' ? 0 : mask === 'causal -1e30' ? 1 : 2));
  const Q = uniformRows(random, nO, d);
  const K = uniformRows(random, nI, d);
  const V = uniformRows(random, nI, e);
  const c = Array.from({ length: nO * e }, () => random() * 2 - 1);
  const t = 0.7;
  const q = Vi(typed(Q, dtype), d);
  const k = Vj(typed(K, dtype), d);
  const v = Vj(typed(V, dtype), e);
  const tp = Pm(dtype === 'float32' ? Float32Array.of(t) : Float64Array.of(t));
  const iota = (n: number) => typed([Array.from({ length: n }, (_, r) => r)], dtype);
  // Rows o < 3 see no key (r <= o - 3): with -Infinity (selected by ifElse) they have no term and a
  // zero gradient; with -1e30 (added) all their scores are -1e30 and their softmax is uniform.
  const visible = Vi(iota(nO), 1)
    .sub(Vj(iota(nI), 1))
    .sub(3);
  let F: LazyTensor = q.dot(k).mul(tp);
  if (mask === 'causal -Infinity') F = visible.ifElse(F, -Infinity);
  else if (mask === 'causal -1e30') F = F.add(visible.ifElse(0, -1e30));
  const value = mask === 'full' ? 0 : mask === 'causal -1e30' ? -1e30 : -Infinity;
  // Computed when first read (the long main-thread case compares paths only).
  let ref: ReturnType<typeof denseAttention> | null = null;
  const dense = () =>
    (ref ??= denseAttention(
      asSeen(Q, dtype),
      asSeen(K, dtype),
      asSeen(V, dtype),
      dtype === 'float32' ? Math.fround(t) : t,
      (o, r) => (mask === 'full' || r <= o - 3 ? 0 : value),
      asSeen([c], dtype)[0]!,
    ));
  return {
    q,
    k,
    v,
    tp,
    F,
    cot: typed([c], dtype),
    get ref() {
      return dense();
    },
  };
}

/** The gradients w.r.t. q, k, v (and the temperature) given the forward result, and whether they
 *  came from one sweep. */
async function gradients(p: ReturnType<typeof problem>, dtype: 'float32' | 'float64', withT: boolean) {
  const options = { dtype, engine: 'wasm' } as const;
  const value = await p.F.sumSoftMaxWeight(1, p.v, options);
  const spec = reduction(p.F, 'sumSoftMaxWeight', 1, { weight: p.v, options });
  const before = vjpTesting.sweeps();
  const wrt = withT ? [p.q, p.k, p.v, p.tp] : [p.q, p.k, p.v];
  const grads = await vjp(spec, { wrt, cotangent: p.cot, value });
  return { grads: grads.map((g) => g.data), swept: vjpTesting.sweeps() - before };
}

const paths = {
  'main thread': () => setWasmThreads(1),
  'main thread, small chunks': () => {
    setWasmThreads(1);
    wasmEngineTesting.configure({ fixedChunkPairs: 300 });
  },
  '2 workers': () => {
    setWasmThreads(2);
    wasmEngineTesting.configure({ mainThreadMaxPairs: 0 });
  },
  '3 workers': () => {
    setWasmThreads(3);
    wasmEngineTesting.configure({ mainThreadMaxPairs: 0 });
  },
} as const;

describe('attention backward in one sweep', () => {
  afterEach(() => {
    wasmEngineTesting.reset();
    vjpTesting.fuse(true);
  });
  afterAll(async () => {
    setWasmThreads(undefined);
    await wasmThreadsTesting.close();
  });

  // Sizes off the block sizes (B = 128 at d = 16 here; the narrow one is not a wide fold), 67 rows
  // in two fixed row chunks of the column sums.
  const shapes = [
    [67, 133, 16, 24],
    [9, 21, 3, 2],
  ] as const;
  for (const dtype of ['float32', 'float64'] as const) {
    for (const mask of ['full', 'causal -1e30', 'causal -Infinity'] as const) {
      for (const [nO, nI, d, e] of shapes) {
        it(`${dtype}, ${mask}, ${nO} x ${nI}, d = ${d}, e = ${e}: the dense gradient, identical on every path`, async () => {
          const p = problem(nO, nI, d, e, dtype, mask);
          const rtol = dtype === 'float32' ? 1e-4 : 1e-11;
          const want = [p.ref.dq, p.ref.dk, p.ref.dv, [p.ref.dt]];
          const labels = ['dq', 'dk', 'dv', 'dt'];
          let first: Out[] | null = null;
          for (const [name, setup] of Object.entries(paths)) {
            setup();
            const { grads, swept } = await gradients(p, dtype, true);
            expect(swept, name).toBe(1);
            grads.forEach((g, q) => expectClose(g, want[q]!, rtol, 0, scaleOf(want[q]!), `${labels[q]} (${name})`));
            if (mask === 'causal -Infinity') {
              // Rows with no term: a zero gradient (not NaN).
              for (let o = 0; o < 3; o++) for (let k = 0; k < d; k++) expect(grads[0]![o * d + k]).toBe(0);
            }
            if (first === null) first = grads;
            else
              grads.forEach((g, q) => expect(bytes(g).equals(bytes(first![q]!)), `${labels[q]} (${name})`).toBe(true));
            wasmEngineTesting.reset();
          }
          // The two-pass rule (no fusion) agrees to rounding.
          setWasmThreads(1);
          vjpTesting.fuse(false);
          const { grads: twoPass, swept } = await gradients(p, dtype, true);
          expect(swept).toBe(0);
          twoPass.forEach((g, q) => expectClose(first![q]!, Array.from(g), rtol, 0, scaleOf(want[q]!), labels[q]));
        });
      }
    }
  }

  it('q, k, v alone (no parameter), 8 row chunks: grouped per worker, or one per piece with a signal', async () => {
    const p = problem(700, 300, 8, 5, 'float32', 'causal -1e30');
    const want = [p.ref.dq, p.ref.dk, p.ref.dv];
    setWasmThreads(1);
    const main = await gradients(p, 'float32', false);
    expect(main.swept).toBe(1);
    main.grads.forEach((g, q) => expectClose(g, want[q]!, 1e-4, 0, scaleOf(want[q]!), `gradient ${q}`));
    for (const threads of [2, 3]) {
      for (const signal of [undefined, new AbortController().signal]) {
        setWasmThreads(threads);
        wasmEngineTesting.configure({ mainThreadMaxPairs: 0 });
        const options = { dtype: 'float32', engine: 'wasm', signal } as const;
        const value = await p.F.sumSoftMaxWeight(1, p.v, options);
        const spec = reduction(p.F, 'sumSoftMaxWeight', 1, { weight: p.v, options });
        const grads = await vjp(spec, { wrt: [p.q, p.k, p.v], cotangent: p.cot, value });
        const label = `${threads} workers${signal ? ', a signal' : ''}`;
        grads.forEach((g, q) => expect(bytes(g.data).equals(bytes(main.grads[q]!)), `${q} (${label})`).toBe(true));
        wasmEngineTesting.reset();
      }
    }
  });

  // The kernel's column parts other than the attention's: a block times a block, a block added as
  // it is, and a uniform times a 1-row block (deferred), against a plain float64 evaluation.
  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: sumWithColumns of a generic formula, rows and columns, on the main thread and on 2 workers`, async () => {
      const random = rng(77);
      const [N, M] = [45, 150];
      const X = uniformRows(random, N, 3);
      const Y = uniformRows(random, M, 3);
      const A = uniformRows(random, N, 2);
      const Bv = uniformRows(random, M, 2);
      const x = Vi(typed(X, dtype), 3);
      const y = Vj(typed(Y, dtype), 3);
      const a = Vi(typed(A, dtype), 2);
      const b = Vj(typed(Bv, dtype), 2);
      const kernel = x.sqDist(y).mul(-1).exp();
      const diff = x.sub(y);
      const rowsF = kernel.mul(b); // [N, 2]
      const colsF = diff.mul(diff).concat(kernel.mul(a)).concat(diff.exp()); // [M, 3 + 2 + 3]
      const [X64, Y64, A64, B64] = [asSeen(X, dtype), asSeen(Y, dtype), asSeen(A, dtype), asSeen(Bv, dtype)];
      const wantRows = new Array<number>(N * 2).fill(0);
      const wantCols = new Array<number>(M * 8).fill(0);
      for (let i = 0; i < N; i++) {
        for (let j = 0; j < M; j++) {
          const dx = [0, 1, 2].map((t) => X64[i]![t]! - Y64[j]![t]!);
          const g = Math.exp(-dx.reduce((s, z) => s + z * z, 0));
          for (let t = 0; t < 2; t++) wantRows[i * 2 + t]! += g * B64[j]![t]!;
          const col = [...dx.map((z) => z * z), ...A64[i]!.map((z) => g * z), ...dx.map(Math.exp)];
          col.forEach((z, t) => (wantCols[j * 8 + t]! += z));
        }
      }
      const rtol = dtype === 'float32' ? 1e-5 : 1e-12;
      let first: Out[] | null = null;
      for (const name of ['main thread', '2 workers'] as const) {
        paths[name]();
        const out = (await rowsF.sumWithColumns(1, colsF, { dtype, engine: 'wasm' }))!;
        expect(out).not.toBeNull();
        expectClose(out.rows.data, wantRows, rtol, 0, scaleOf(wantRows), `rows (${name})`);
        expectClose(out.columns, wantCols, rtol, 0, scaleOf(wantCols), `columns (${name})`);
        if (first === null) first = [out.rows.data, out.columns];
        else expect(bytes(out.columns).equals(bytes(first[1]!))).toBe(true);
        wasmEngineTesting.reset();
      }
    });
  }

  it('block-sparse ranges: vjp runs the two passes (the sweep is dense only), the dense gradient', async () => {
    const p = problem(67, 133, 16, 24, 'float32', 'full');
    // One cluster each way covering everything: the block-sparse path, the same gradient.
    const ranges = {
      rangesI: Int32Array.of(0, 67),
      slicesI: Int32Array.of(1),
      redRangesJ: Int32Array.of(0, 133),
      rangesJ: Int32Array.of(0, 133),
      slicesJ: Int32Array.of(1),
      redRangesI: Int32Array.of(0, 67),
    };
    const options = { dtype: 'float32', engine: 'wasm', ranges } as const;
    const value = await p.F.sumSoftMaxWeight(1, p.v, options);
    const spec = reduction(p.F, 'sumSoftMaxWeight', 1, { weight: p.v, options });
    const before = vjpTesting.sweeps();
    const grads = await vjp(spec, { wrt: [p.q, p.k, p.v], cotangent: p.cot, value });
    expect(vjpTesting.sweeps()).toBe(before);
    const want = [p.ref.dq, p.ref.dk, p.ref.dv];
    grads.forEach((g, q) => expectClose(g.data, want[q]!, 1e-4, 0, scaleOf(want[q]!), `gradient ${q}`));
  });

  it('a described sum given a weight, or a K for a reduction without one, is an InputError (it was left out)', async () => {
    const x = Vi(Float32Array.from([1, 2, 3]), 1);
    const y = Vj(Float32Array.from([1, 2]), 1);
    expect(() => reduction(x.mul(y), 'sum', 1, { weight: y })).toThrow(/'sum' takes no weight/);
    expect(() => reduction(x.mul(y), 'min', 1, { k: 2 })).toThrow(/'min' takes no k/);
    // a spec written as an object literal is refused when it runs
    await expect(runReduction({ formula: x.mul(y), kind: 'sum', axis: 1, weight: y })).rejects.toThrow(
      /runReduction: 'sum' takes no weight/,
    );
    const out = await runReduction(reduction(x.mul(y), 'sum', 1, { options: { engine: 'wasm' } }));
    expect(Array.from(out.data)).toEqual([3, 6, 9]);
    const lse = await runReduction(reduction(x.mul(y), 'logSumExp', 1, { weight: y, options: { engine: 'wasm' } }));
    // log sum_j exp(x_i y_j) y_j, against the closed form
    const want = [1, 2, 3].map((xi) => Math.log(Math.exp(xi) + 2 * Math.exp(2 * xi)));
    lse.data.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5 * want[i]!));
  });

  it('on the main thread, a long sweep lets the event loop run, and equals the 2 workers bit for bit', async () => {
    const p = problem(3000, 3000, 32, 32, 'float32', 'causal -1e30');
    setWasmThreads(2);
    wasmEngineTesting.configure({ mainThreadMaxPairs: 0 });
    const pool = await gradients(p, 'float32', false);
    wasmEngineTesting.reset();
    setWasmThreads(1);
    const { result } = await expectResponsive(() => gradients(p, 'float32', false));
    expect(result.swept).toBe(1);
    result.grads.forEach((g, q) => expect(bytes(g).equals(bytes(pool.grads[q]!)), `gradient ${q}`).toBe(true));
  });

  it('an aborted signal rejects with its reason', async () => {
    const p = problem(67, 133, 16, 24, 'float32', 'full');
    const options = { dtype: 'float32', engine: 'wasm' } as const;
    const value = await p.F.sumSoftMaxWeight(1, p.v, options);
    const controller = new AbortController();
    controller.abort(new Error('stop here'));
    const spec = reduction(p.F, 'sumSoftMaxWeight', 1, {
      weight: p.v,
      options: { ...options, signal: controller.signal },
    });
    await expect(vjp(spec, { wrt: [p.q, p.k, p.v], cotangent: p.cot, value })).rejects.toThrow('stop here');
  });
});
