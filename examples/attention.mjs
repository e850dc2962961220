// Softmax attention, out = softmax(Q K^T / sqrt(d)) V, as one sumSoftMaxWeight reduction: a port of
// KeOps's attention example. Four heads as a batch, a causal mask, and the gradients with respect to
// Q, K and V through vjp. The N x M attention matrix is never stored. Checked against plain float64 JS
// (the dense softmax) and finite differences.
import { Vi, Vj, reduction, vjp } from 'lazytensor';
import { check, relErr, rng } from './_util.mjs';

const H = 4,
  N = 256,
  M = 256,
  d = 16,
  dv = 8;
const { normal } = rng(17);
const qs = Float64Array.from({ length: H * N * d }, normal); // [H, N, d], row-major
const ks = Float64Array.from({ length: H * M * d }, normal);
const vs = Float64Array.from({ length: H * M * dv }, normal);

// Flat data with { batch: [H] }: H independent problems in one call.
const q = Vi(qs, d, { batch: [H] }),
  k = Vj(ks, d, { batch: [H] }),
  v = Vj(vs, dv, { batch: [H] });
// The causal mask: query i sees keys j <= i. Masked scores get -1e30, which exp() turns into exactly
// 0. (-Infinity works too, but a formula with an infinite constant has its gradient masked term by
// term against 0 * inf, which costs more: finite constants keep vjp on its fast path.)
const iota = Float64Array.from({ length: N }, (_, t) => t);
const mask = Vi(iota, 1).sub(Vj(iota, 1)).ifElse(0, -1e30); // 0 where i - j >= 0
const scores = q
  .dot(k)
  .mul(1 / Math.sqrt(d))
  .add(mask);
// KeOps writes scores.sumsoftmaxweight(v, axis=1); here the axis comes first ("Conventions").
const out = await scores.sumSoftMaxWeight(1, v); // [H, N, dv]
console.log(`attention: ${H} heads, N = M = ${N}, d = ${d}, causal; result shape [${out.shape}]`);

// The reference: dense causal softmax attention in plain float64.
function attention(Q, Kk, V) {
  const o = new Float64Array(H * N * dv);
  for (let hd = 0; hd < H; hd++)
    for (let i = 0; i < N; i++) {
      const s = [];
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += Q[(hd * N + i) * d + c] * Kk[(hd * M + j) * d + c];
        s.push(dot / Math.sqrt(d));
      }
      const top = Math.max(...s),
        e = s.map((t) => Math.exp(t - top)),
        Z = e.reduce((a, t) => a + t, 0);
      for (let j = 0; j <= i; j++)
        for (let c = 0; c < dv; c++) o[(hd * N + i) * dv + c] += (e[j] / Z) * V[(hd * M + j) * dv + c];
    }
  return o;
}
check(
  'attention equals dense softmax attention',
  relErr(out.data, attention(qs, ks, vs)) < 1e-13,
  relErr(out.data, attention(qs, ks, vs)).toExponential(1),
);

// Gradients of L = <C, out> with respect to Q, K and V: one reduction for Q (over j) and one fused
// reduction for K and V (over i) per head. `value: out` hands vjp the forward result: it is not run
// again, and on WebAssembly it carries each row's softmax max and sum, so no logSumExp pass runs
// either (the backward then costs about 3-4x the forward at d = 64, not 5-6x).
const C = Float64Array.from({ length: H * N * dv }, normal);
const [dq, dk, dV] = await vjp(reduction(scores, 'sumSoftMaxWeight', 1, { weight: v }), {
  wrt: [q, k, v],
  cotangent: C,
  value: out,
});
const L = (Q, Kk, V) => attention(Q, Kk, V).reduce((s, t, idx) => s + t * C[idx], 0);
const h = 1e-5;
for (const [name, grad, which, idx] of [
  ['Q', dq, 0, 1000],
  ['K', dk, 1, 3 * M * d + 77],
  ['V', dV, 2, 123],
]) {
  const args = [qs, ks, vs].map((a) => Float64Array.from(a));
  args[which][idx] += h;
  const up = L(...args);
  args[which][idx] -= 2 * h;
  const fd = (up - L(...args)) / (2 * h);
  check(
    `dL/d${name} equals finite differences`,
    Math.abs(grad.data[idx] - fd) < 1e-7 * (1 + Math.abs(fd)),
    `${grad.data[idx].toExponential(8)} vs ${fd.toExponential(8)}`,
  );
}
check(
  'gradients are shaped like their inputs',
  dq.shape.join() === [H, N, d].join() && dV.shape.join() === [H, M, dv].join(),
);
check.done('attention');
