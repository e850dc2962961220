// The attention backward pass without extra passes (issue 16): the forward sumSoftMaxWeight returns
// its rows' log-sum-exps on WebAssembly (kernel RED_SSMW_LSE), vjp reuses them when given the forward
// result (`value`, or the tape), and the gradient sums run on longer blocks. Checked against plain
// float64 (dense log-sum-exp, dense attention gradient), and against the paths they replace.
import { afterEach, describe, expect, it } from 'vitest';
import { InputError, Pm, Tensor, Vi, Vj, fromMatrix, reduction, valueAndGrad, vjp } from '../src/index.js';
import { vjpTesting } from '../src/core/reduction-grad.js';
import { softMaxStats } from '../src/core/lazy-tensor.js';
import { planJob, chooseBlockSize } from '../src/wasm/wasm-engine.js';
import { compilePlan } from '../src/wasm/compile.js';
import { LazyTensor } from '../src/core/lazy-tensor.js';
import { expectClose } from './helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from './helpers/random.js';
import { denseAttention as dense } from './helpers/dense-reference.js';

const dot = (a: number[], b: number[]) => a.reduce((t, v, k) => t + v * b[k]!, 0);

const relative = (want: number[]) => {
  const top = Math.max(...want.map((x) => (Number.isFinite(x) ? Math.abs(x) : 0)), 1e-300);
  return want.map(() => top);
};

describe('attention backward: the forward log-sum-exp reused', () => {
  const random = rng(1616);
  const [nO, nI, d, e] = [41, 53, 16, 64];
  const Q = uniformRows(random, nO, d);
  const K = uniformRows(random, nI, d);
  const V = uniformRows(random, nI, e);
  const c = Array.from({ length: nO * e }, () => random() * 2 - 1);
  const t = 0.9;

  for (const dtype of ['float32', 'float64'] as const) {
    for (const [name, value] of [
      ['no mask', null],
      ['causal -1e30', -1e30],
      ['causal -Infinity', -Infinity],
    ] as const) {
      for (const axis of [1, 0] as const) {
        it(`${dtype}, ${name}, axis ${axis}: the result's log-sum-exps, and vjp given it equals the dense gradient`, async () => {
          const [Outer, Inner] = axis === 1 ? [Vi, Vj] : [Vj, Vi];
          const q = Outer(typed(Q, dtype), d);
          const k = Inner(typed(K, dtype), d);
          const v = Inner(typed(V, dtype), e);
          const tp = Pm(dtype === 'float32' ? Float32Array.of(t) : Float64Array.of(t));
          const iota = (n: number) => typed([Array.from({ length: n }, (_, r) => r)], dtype);
          // Rows o < 3 see no key (r <= o - 3): with -Infinity (selected by ifElse) their softmax
          // is empty; with -1e30 (added, as a KeOps user writes it) every score of theirs is -1e30
          // and their softmax is uniform.
          let F = q.dot(k).mul(tp);
          const visible = Outer(iota(nO), 1)
            .sub(Inner(iota(nI), 1))
            .sub(3);
          if (value === -Infinity) F = visible.ifElse(F, value);
          else if (value !== null) F = F.add(visible.ifElse(0, value));
          const mask = (o: number, r: number) => (value === null || r <= o - 3 ? 0 : value);
          const ref = dense(
            asSeen(Q, dtype),
            asSeen(K, dtype),
            asSeen(V, dtype),
            dtype === 'float32' ? Math.fround(t) : t,
            mask,
            asSeen([c], dtype)[0]!,
          );
          const options = { dtype, engine: 'wasm' } as const;
          const out = await F.sumSoftMaxWeight(axis, v, options);
          const stats = softMaxStats.get(out)!;
          expect(stats.max).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
          const lse = stats.max.map((m, r) => (m === -Infinity ? -Infinity : m + Math.log(stats.sum[r]!)));
          const rtol = dtype === 'float32' ? 1e-5 : 1e-12;
          const finite = (xs: number[]) => xs.map((x) => (Number.isFinite(x) ? x : 0));
          expectClose(finite(Array.from(lse!)), finite(ref.lse), rtol, 0, relative(ref.lse), 'lse');
          for (let o = 0; o < nO; o++) expect(lse![o] === -Infinity).toBe(ref.lse[o] === -Infinity);
          // The engine's own logSumExp agrees to rounding.
          const separate = await F.logSumExp(axis, options);
          expectClose(
            finite(Array.from(lse!)),
            finite(Array.from(separate.data)),
            rtol,
            0,
            relative(ref.lse),
            'vs logSumExp',
          );
          if (value === null) expectClose(out.data, ref.out, rtol, 0, relative(ref.out), 'out');

          const spec = reduction(F, 'sumSoftMaxWeight', axis, { weight: v, options });
          const cot = typed([c], dtype);
          const grtol = dtype === 'float32' ? 1e-4 : 1e-11;
          const check = (got: Float32Array | Float64Array, want: number[], label: string) =>
            expectClose(got, want, grtol, 0, relative(want), label);
          // given the result (its log-sum-exps reused), given a copy (no log-sum-exps: the logSumExp
          // reduction, or the softmax-weighted reduction for q alone), and without it
          const copy = new Tensor(out.data.slice(), out.shape, out.engine);
          // (With a copy, rows whose scores are all -1e30 are not comparable: the logSumExp
          // reduction gives max + log(sum), which rounds to max there, so their softmax weights come
          // out n times too large; the forward's own max and sum do not have that problem.)
          const ways = [
            ['value', { value: out }],
            ['nothing', {}],
            ...(value === -1e30 ? [] : [['a copy', { value: copy }] as const]),
          ] as const;
          for (const [how, extra] of ways) {
            const [gq, gk, gv, gt] = await vjp(spec, { wrt: [q, k, v, tp], cotangent: cot, ...extra });
            check(gq!.data, ref.dq, `dq given ${how}`);
            check(gk!.data, ref.dk, `dk given ${how}`);
            check(gv!.data, ref.dv, `dv given ${how}`);
            check(gt!.data, [ref.dt], `dt given ${how}`);
            const [aq] = await vjp(spec, { wrt: [q], cotangent: cot, ...extra });
            check(aq!.data, ref.dq, `dq alone given ${how}`);
          }
        });
      }
    }
  }

  it('batched: the log-sum-exps of every item, and vjp given the batched result', async () => {
    const B = 3;
    const [n, m, dd, ee] = [9, 11, 4, 5];
    const qs = Array.from({ length: B }, () => uniformRows(random, n, dd));
    const ks = Array.from({ length: B }, () => uniformRows(random, m, dd));
    const vs = uniformRows(random, m, ee); // shared by the items (broadcast)
    const cs = Array.from({ length: B * n * ee }, () => random() * 2 - 1);
    const q = Vi(Float64Array.from(qs.flat(2)), dd, { batch: [B] });
    const k = Vj(Float64Array.from(ks.flat(2)), dd, { batch: [B] });
    const v = Vj(Float64Array.from(vs.flat()), ee);
    const F = q.dot(k);
    const out = await F.sumSoftMaxWeight(1, v);
    const stats = softMaxStats.get(out)!;
    const lse = stats.max.map((m, r) => m + Math.log(stats.sum[r]!));
    expect(lse.length).toBe(B * n);
    const [gq, gk, gv] = await vjp(reduction(F, 'sumSoftMaxWeight', 1, { weight: v }), {
      wrt: [q, k, v],
      cotangent: cs,
      value: out,
    });
    const dvSum = new Array<number>(m * ee).fill(0);
    for (let b = 0; b < B; b++) {
      const ref = dense(qs[b]!, ks[b]!, vs, 1, () => 0, cs.slice(b * n * ee, (b + 1) * n * ee));
      expectClose(Array.from(lse.subarray(b * n, (b + 1) * n)), ref.lse, 1e-12, 1e-12, undefined, `lse ${b}`);
      expectClose(gq!.data.subarray(b * n * dd, (b + 1) * n * dd), ref.dq, 1e-11, 1e-12, undefined, `dq ${b}`);
      expectClose(gk!.data.subarray(b * m * dd, (b + 1) * m * dd), ref.dk, 1e-11, 1e-12, undefined, `dk ${b}`);
      ref.dv.forEach((x, q2) => (dvSum[q2] = dvSum[q2]! + x));
    }
    expectClose(gv!.data, dvSum, 1e-11, 1e-12, undefined, 'dv summed over the items');
  });

  it('block-sparse: rows in no cluster have log-sum-exp -inf and gradient 0', async () => {
    const [n, m, dd, ee] = [12, 10, 3, 4];
    const qs = uniformRows(random, n, dd);
    const ks = uniformRows(random, m, dd);
    const vs = uniformRows(random, m, ee);
    const q = Vi(flat(qs), dd);
    const k = Vj(flat(ks), dd);
    const v = Vj(flat(vs), ee);
    // rows [0, 4) and [8, 12) see keys [0, 10); rows [4, 8) are in no cluster
    const ranges = fromMatrix(Int32Array.from([0, 4, 4, 8, 8, 12]), Int32Array.from([0, 10]), [true, false, true]);
    const options = { ranges };
    const F = q.dot(k);
    const out = await F.sumSoftMaxWeight(1, v, options);
    const stats = softMaxStats.get(out)!;
    const lse = stats.max.map((m, r) => (m === -Infinity ? -Infinity : m + Math.log(stats.sum[r]!)));
    const ref = dense(qs, ks, vs, 1, () => 0, new Array<number>(n * ee).fill(0));
    for (let o = 0; o < n; o++) {
      if (o >= 4 && o < 8) expect(lse[o]).toBe(-Infinity);
      else expect(lse[o]).toBeCloseTo(ref.lse[o]!, 12);
    }
    const cot = Array.from({ length: n * ee }, () => random() - 0.5);
    const [gq] = await vjp(reduction(F, 'sumSoftMaxWeight', 1, { weight: v, options }), {
      wrt: [q],
      cotangent: cot,
      value: out,
    });
    const [gq0] = await vjp(reduction(F, 'sumSoftMaxWeight', 1, { weight: v, options }), { wrt: [q], cotangent: cot });
    expectClose(gq!.data, Array.from(gq0!.data), 1e-12, 1e-14, undefined, 'dq');
    for (let o = 4; o < 8; o++) for (let k2 = 0; k2 < dd; k2++) expect(gq!.data[o * dd + k2]).toBe(0);
  });

  it('through the tape: valueAndGrad equals the dense gradient', async () => {
    const f = valueAndGrad(async ([qt, kt, vt], tape) => {
      const out = await tape.reduce(Vi(qt!).dot(Vj(kt!)).mul(t), 'sumSoftMaxWeight', 1, { weight: Vj(vt!) });
      return out.mul(new Tensor(Float64Array.from(c), out.shape, 'wasm')).total();
    });
    const { value, grad } = await f([Q, K, V]);
    const ref = dense(Q, K, V, t, () => 0, c);
    expect(value).toBeCloseTo(dot(ref.out, c), 10);
    expectClose(grad[0]!.data, ref.dq, 1e-11, 0, relative(ref.dq), 'dq');
    expectClose(grad[1]!.data, ref.dk, 1e-11, 0, relative(ref.dk), 'dk');
    expectClose(grad[2]!.data, ref.dv, 1e-11, 0, relative(ref.dv), 'dv');
  });

  it('through the tape: float32 inputs compute in float32 (not in the float64 of their traced copies)', async () => {
    const f32 = (rows: number[][]) =>
      new Tensor(Float32Array.from(rows.flat()), [rows.length, rows[0]!.length], 'wasm');
    const [q32, k32, v32] = [f32(Q), f32(K), f32(V)];
    const cT = new Tensor(Float64Array.from(c), [nO, e], 'wasm');
    const seen: { data: Float64Array; precision: string }[] = [];
    const run = (options?: { dtype: 'float32' | 'float64' }, extra?: (q: Tensor) => LazyTensor) =>
      valueAndGrad(async ([qt, kt, vt], tape) => {
        let F = Vi(qt!).dot(Vj(kt!)).mul(t);
        if (extra) F = F.add(extra(qt!));
        const out = await tape.reduce(F, 'sumSoftMaxWeight', 1, { weight: Vj(vt!), options });
        seen.push({ data: out.data, precision: String(options?.dtype) });
        return out.mul(cT).total();
      });
    const ref = dense(Q, K, V, t, () => 0, c);
    // Float32 inputs: the forward values are those of the float32 reduction of the same data.
    const { value, grad } = await run()([q32, k32, v32]);
    const direct32 = await Vi(q32).dot(Vj(k32)).mul(t).sumSoftMaxWeight(1, Vj(v32));
    expect(direct32.data).toBeInstanceOf(Float32Array);
    expect(Array.from(seen[0]!.data)).toEqual(Array.from(direct32.data));
    expect(value).toBeCloseTo(dot(ref.out, c), 3);
    expectClose(grad[0]!.data, ref.dq, 1e-4, 0, relative(ref.dq), 'dq f32');
    expectClose(grad[1]!.data, ref.dk, 1e-4, 0, relative(ref.dk), 'dk f32');
    expectClose(grad[2]!.data, ref.dv, 1e-4, 0, relative(ref.dv), 'dv f32');
    // An explicit dtype wins; a float64 variable in the formula keeps it float64 (as Vi of the data would).
    const as64 = (x: Tensor) => Float64Array.from(x.data);
    const direct64 = await Vi(as64(q32), d)
      .dot(Vj(as64(k32), d))
      .mul(t)
      .sumSoftMaxWeight(1, Vj(as64(v32), e));
    const explicit = await run({ dtype: 'float64' })([q32, k32, v32]);
    expectClose(seen[1]!.data, Array.from(direct64.data), 1e-13, 1e-15, undefined, 'explicit float64');
    expect(Array.from(seen[1]!.data)).not.toEqual(Array.from(direct32.data));
    const zeros64 = (): LazyTensor => Vj(new Float64Array(nI), 1);
    const mixed = await run(undefined, zeros64)([q32, k32, v32]);
    expect(Array.from(seen[2]!.data)).not.toEqual(Array.from(direct32.data));
    const want64 = Array.from(explicit.grad[0]!.data);
    expectClose(mixed.grad[0]!.data, want64, 1e-11, 0, relative(want64), 'dq mixed (float64)');
    // A float32 causal mask with float32 inputs (an InputError before: float32 mask, float64 copies).
    const iota = (n: number) => Float32Array.from({ length: n }, (_, r) => r);
    const causal = (): LazyTensor =>
      Vi(iota(nO), 1)
        .sub(Vj(iota(nI), 1))
        .ifElse(0, -1e30);
    const masked = await run(undefined, causal)([q32, k32, v32]);
    const refMasked = dense(Q, K, V, t, (o, r) => (r <= o ? 0 : -1e30), c);
    expectClose(masked.grad[1]!.data, refMasked.dk, 1e-4, 0, relative(refMasked.dk), 'dk causal f32');
    const direct3 = await Vi(q32).dot(Vj(k32)).mul(t).add(causal()).sumSoftMaxWeight(1, Vj(v32));
    expect(Array.from(seen[3]!.data)).toEqual(Array.from(direct3.data));
    // What traced float32 arithmetic makes stays float32: the result fed back as a weight.
    const chained = valueAndGrad(async ([qt, kt, vt], tape) => {
      const scaled = vt!.mul(2);
      const out = await tape.reduce(Vi(qt!).dot(Vj(kt!)).mul(t), 'sumSoftMaxWeight', 1, { weight: Vj(scaled) });
      seen.push({ data: out.data, precision: 'chained' });
      return out.mul(cT).total();
    });
    const twice = await chained([q32, k32, v32]);
    const direct2 = await Vi(q32)
      .dot(Vj(k32))
      .mul(t)
      .sumSoftMaxWeight(
        1,
        Vj(
          Float32Array.from(V.flat(), (x) => 2 * x),
          e,
        ),
      );
    expect(Array.from(seen[4]!.data)).toEqual(Array.from(direct2.data));
    expectClose(
      twice.grad[2]!.data,
      ref.dv.map((x) => 2 * x),
      1e-4,
      0,
      relative(ref.dv),
      'dv chained',
    );
  });

  it('value of the wrong shape, dtype or type is a named InputError', async () => {
    const q = Vi(flat(Q), d);
    const k = Vj(flat(K), d);
    const v = Vj(flat(V), e);
    const spec = reduction(q.dot(k), 'sumSoftMaxWeight', 1, { weight: v });
    const out = await q.dot(k).sumSoftMaxWeight(1, v);
    const call = (value: unknown) => vjp(spec, { wrt: [q], cotangent: c, value: value as Tensor });
    await expect(call(new Tensor(new Float64Array(5), [5], 'wasm'))).rejects.toThrow(
      /value has 5 float64 values; the sumSoftMaxWeight result has 41 x 64 = 2624 float64 values/,
    );
    await expect(call(new Tensor(Float32Array.from(out.data), out.shape, 'wasm'))).rejects.toThrow(InputError);
    await expect(call(Array.from(out.data))).rejects.toThrow(
      /value must be the reduction's result \(a float Tensor\), got Array/,
    );
    await expect(call(null)).rejects.toThrow(InputError);
  });
});

describe('attention backward: block sizes of the gradient sums', () => {
  it('a wide product fold gets blocks of at least 128 at d = 64 (float32); results agree with short blocks', async () => {
    const random = rng(77);
    const [n, dd] = [300, 64];
    const rows = (r: number) => Float32Array.from({ length: r * dd }, () => random() - 0.5);
    const q = Vi(rows(n), dd);
    const k = Vj(rows(n), dd);
    const C = Vi(rows(n), dd);
    const lse = Vi(
      Float32Array.from({ length: n }, () => random()),
      1,
    );
    // the shape of vjp's dk: softmax weight x (C.v - c) x q, summed over i
    const W = q.dot(k).sub(lse).exp().mul(C.dot(k).sub(0.1)).mul(q);
    const plan = W.prepare('sum', 0, { dtype: 'float32' }).plan;
    const job = planJob(plan);
    expect(chooseBlockSize(compilePlan(plan), 4)).toBe(job.block);
    expect(job.block).toBeGreaterThanOrEqual(128);
    // The same formula as a plain sum (no product folded last) keeps the L1 rule.
    const plain = (W.add(0) as LazyTensor).prepare('sum', 0, { dtype: 'float32' }).plan;
    expect(planJob(plain).block).toBeLessThan(128);
    const got = await W.sum(0, { dtype: 'float32' });
    const want = await W.add(0).sum(0, { dtype: 'float32' });
    expectClose(got.data, Array.from(want.data), 1e-4, 1e-5, undefined, 'long vs short blocks');
  });
});

function flat(rows: number[][]): Float64Array {
  return Float64Array.from(rows.flat());
}

describe('attention backward: the gradients of one axis fused into one reduction', () => {
  const random = rng(2323);
  afterEach(() => vjpTesting.fuse(true));

  /** vjp fused (the default) and unfused (one reduction per variable), for the same call. */
  async function both(spec: ReturnType<typeof reduction>, wrt: LazyTensor[], cotangent: number[]) {
    vjpTesting.fuse(true);
    const fused = await vjp(spec, { wrt, cotangent });
    vjpTesting.fuse(false);
    const alone = await vjp(spec, { wrt, cotangent });
    vjpTesting.fuse(true);
    return { fused, alone };
  }

  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: sums, log-sum-exps and softmax averages with several i-, j-variables and parameters`, async () => {
      const [n, m] = [23, 31];
      const x = Vi(typed(uniformRows(random, n, 3), dtype), 3);
      const a = Vi(typed(uniformRows(random, n, 1), dtype), 1);
      const y = Vj(typed(uniformRows(random, m, 3), dtype), 3);
      const b = Vj(typed(uniformRows(random, m, 2), dtype), 2);
      const w = Vj(typed(uniformRows(random, m, 5), dtype), 5);
      const s = Pm(typed([[0.8]], dtype));
      const p = Pm(typed([[0.3, -0.2]], dtype));
      const F = x
        .sqDist(y)
        .mul(s)
        .neg()
        .add(a.mul(b.elem(0)))
        .add(p.dot(b));
      const tol = dtype === 'float32' ? 2e-5 : 1e-12;
      for (const [kind, weight, dim] of [
        ['sum', undefined, 1],
        ['logSumExp', undefined, 1],
        ['sumSoftMaxWeight', w.add(b.elem(1)), 5],
      ] as const) {
        for (const axis of [1, 0] as const) {
          const rows = axis === 1 ? n : m;
          const c = Array.from({ length: rows * dim }, () => random() - 0.5);
          const spec = reduction(F, kind, axis, { weight, options: { dtype } });
          const wrt = kind === 'sumSoftMaxWeight' ? [x, a, y, b, w, s, p] : [x, a, y, b, s, p];
          const { fused, alone } = await both(spec, wrt, c);
          fused.forEach((g, q) => {
            expect(g.shape).toEqual(alone[q]!.shape);
            const want = Array.from(alone[q]!.data);
            expectClose(g.data, want, tol, 0, relative(want), `${kind} axis ${axis} wrt[${q}]`);
          });
        }
      }
    });
  }

  it('a causal mask with -Infinity (masked parts) and a batch: fused equals unfused and the dense gradient', async () => {
    const B = 2;
    const [n, dd, ee] = [17, 8, 16];
    const Qs = Array.from({ length: B }, () => uniformRows(random, n, dd));
    const Ks = Array.from({ length: B }, () => uniformRows(random, n, dd));
    const Vs = Array.from({ length: B }, () => uniformRows(random, n, ee));
    const c = Array.from({ length: B * n * ee }, () => random() - 0.5);
    const q = Vi(Float64Array.from(Qs.flat(2)), dd, { batch: [B] });
    const k = Vj(Float64Array.from(Ks.flat(2)), dd, { batch: [B] });
    const v = Vj(Float64Array.from(Vs.flat(2)), ee, { batch: [B] });
    const iota = Float64Array.from({ length: n }, (_, r) => r);
    const F = Vi(iota, 1).sub(Vj(iota, 1)).ifElse(q.dot(k).mul(0.5), -Infinity);
    const spec = reduction(F, 'sumSoftMaxWeight', 1, { weight: v });
    const { fused, alone } = await both(spec, [q, k, v], c);
    for (let item = 0; item < B; item++) {
      const ref = dense(
        Qs[item]!,
        Ks[item]!,
        Vs[item]!,
        0.5,
        (o, r) => (r <= o ? 0 : -Infinity),
        c.slice(item * n * ee, (item + 1) * n * ee),
      );
      for (const [g, want, width] of [
        [0, ref.dq, dd],
        [1, ref.dk, dd],
        [2, ref.dv, ee],
      ] as const) {
        const part = (t: Tensor) => t.data.subarray(item * n * width, (item + 1) * n * width);
        expectClose(part(fused[g]!), want, 1e-11, 0, relative(want), `fused ${g} item ${item}`);
        expectClose(part(alone[g]!), want, 1e-11, 0, relative(want), `unfused ${g} item ${item}`);
      }
    }
  });

  it('a sum of a concatenation folded part by part equals the materialised one', async () => {
    const [n, m] = [40, 300];
    const x = Vi(
      Float32Array.from({ length: n * 4 }, () => random() - 0.5),
      4,
    );
    const y = Vj(
      Float32Array.from({ length: m * 4 }, () => random() - 0.5),
      4,
    );
    const z = Vj(
      Float32Array.from({ length: m * 20 }, () => random() - 0.5),
      20,
    );
    const K = x.sqDist(y).neg().exp();
    // parts: a product (K * y), a product (K * z), a plain part (x - y) and a constant-free square
    const W = K.mul(y).concat(K.mul(z)).concat(x.sub(y)).concat(K.square());
    const got = await W.sum(1, { dtype: 'float64' });
    const want = await W.add(0).sum(1, { dtype: 'float64' }); // F = ADD(...): folded as usual
    expectClose(got.data, Array.from(want.data), 1e-12, 1e-13, undefined, 'f64');
    const got32 = await W.sum(1);
    expectClose(got32.data, Array.from(want.data), 2e-5, 2e-5, undefined, 'f32');
  });
});
