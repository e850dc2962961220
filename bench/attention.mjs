// Attention backward vs forward on the WebAssembly engine (issue 16: "an attention backward pass costs
// ~10x its forward"; KeOps: 2-3x).
//   npm run build && node bench/attention.mjs [--quick] [--threads=2] [--reps=3]
// out = softmax(Q K^T / sqrt(d)) V as one sumSoftMaxWeight reduction, d = dv = 64, float32, at
// N = M = 2048 and 4096, without and with a causal mask (-1e30 on the masked scores). Per case, in one
// process and interleaved (the machine may be shared, so read the ratios, not the times):
//   forward     the reduction alone
//   vjp         vjp(...) wrt q, k, v given the forward result (`value`: no forward run again)
//   value+grad  valueAndGrad of <C, out> (forward, then the backward through the tape)
//   data dtype  the same valueAndGrad without a dtype option: float32 inputs should compute in
//               float32 (the tape's float64 copies of them made it run in float64 before)
// Times are the median of `reps` runs after a warm-up, in wall-clock seconds and in process CPU
// seconds (every thread: the CPU time is what the ratios are computed from, as it leaves out time
// spent waiting for a core on a loaded machine).
import { Tensor, Vi, Vj, reduction, setWasmThreads, valueAndGrad, vjp } from '../dist/index.js';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : Number(hit.slice(name.length + 3));
};
const quick = args.includes('--quick');
const threads = flag('threads', 2);
const reps = flag('reps', quick ? 1 : 3);
const sizes = quick ? [1024] : [2048, 4096];
const d = 64;
const dv = 64;
setWasmThreads(threads);

/** A seeded normal generator (Box-Muller on a xorshift), so every run times the same data. */
function normals(seed) {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Median wall and CPU seconds of `reps` calls of `fn` after one warm-up. */
async function time(fn) {
  await fn();
  const wall = [];
  const cpu = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    wall.push((performance.now() - t0) / 1e3);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { wall: median(wall), cpu: median(cpu) };
}

function problem(N, causal) {
  const normal = normals(N + (causal ? 1 : 0));
  const qs = Float32Array.from({ length: N * d }, normal);
  const ks = Float32Array.from({ length: N * d }, normal);
  const vs = Float32Array.from({ length: N * dv }, normal);
  const C = Float32Array.from({ length: N * dv }, normal);
  const build = (q, k) => {
    let scores = q.dot(k).mul(1 / Math.sqrt(d));
    if (causal) {
      const iota = Float32Array.from({ length: N }, (_, t) => t);
      scores = scores.add(Vi(iota, 1).sub(Vj(iota, 1)).ifElse(0, -1e30));
    }
    return scores;
  };
  return { qs, ks, vs, C, build };
}

const opts = { engine: 'wasm', dtype: 'float32' };
const rows = [];
for (const N of sizes) {
  for (const causal of [false, true]) {
    const { qs, ks, vs, C, build } = problem(N, causal);
    const q = Vi(qs, d);
    const k = Vj(ks, d);
    const v = Vj(vs, dv);
    const scores = build(q, k);
    const spec = reduction(scores, 'sumSoftMaxWeight', 1, { weight: v, options: opts });
    const value = await scores.sumSoftMaxWeight(1, v, opts);
    const forward = () => scores.sumSoftMaxWeight(1, v, opts);
    // Before vjp took `value` (the forward result), it ran the forward itself: then the backward
    // alone is estimated as that time minus the forward's.
    let given = true;
    try {
      await vjp(spec, { wrt: [v], cotangent: C, value });
    } catch {
      given = false;
    }
    const backward = () =>
      vjp(spec, given ? { wrt: [q, k, v], cotangent: C, value } : { wrt: [q, k, v], cotangent: C });
    const lossWith = (options) =>
      valueAndGrad(async ([qt, kt, vt], tape) => {
        const out = await tape.reduce(build(Vi(qt), Vj(kt)), 'sumSoftMaxWeight', 1, { weight: Vj(vt), options });
        return out.mul(new Tensor(Float64Array.from(C), out.shape, 'wasm')).total();
      });
    const loss = lossWith(opts);
    const lossOfData = lossWith({ engine: 'wasm' });
    const inputs = [
      { data: qs, shape: [N, d] },
      { data: ks, shape: [N, d] },
      { data: vs, shape: [N, dv] },
    ].map(({ data, shape }) => new Tensor(data, shape, 'wasm'));
    const both = () => loss(inputs);
    // Interleaved: forward, vjp, value+grad, each timed on its own.
    const tf = await time(forward);
    const tb = await time(backward);
    if (!given) {
      tb.cpu -= tf.cpu;
      tb.wall -= tf.wall;
    }
    const tv = await time(both);
    // null where it throws (before the fix, the float32 mask made the causal case an InputError:
    // float32 mask, float64 traced copies).
    const td = await time(() => lossOfData(inputs)).catch(() => null);
    rows.push({ N, causal, tf, tb, tv, td });
    const r = (t) => (t.cpu / tf.cpu).toFixed(2);
    console.log(
      `N = M = ${N}, d = dv = ${d}, ${causal ? 'causal' : 'full  '}, ${threads} threads: ` +
        `forward ${tf.wall.toFixed(3)} s (cpu ${tf.cpu.toFixed(3)}), ` +
        `vjp${given ? '' : ' (estimated)'} ${tb.wall.toFixed(3)} s (cpu ${tb.cpu.toFixed(3)}, ${r(tb)}x), ` +
        `value+grad ${tv.wall.toFixed(3)} s (cpu ${tv.cpu.toFixed(3)}, ${r(tv)}x), ` +
        (td === null
          ? 'data dtype: an error'
          : `data dtype ${td.wall.toFixed(3)} s (cpu ${td.cpu.toFixed(3)}, ${r(td)}x)`),
    );
  }
}
