// Multilevel Sinkhorn bench (issue 12): the 'multiscale' backend's scaling in N, a D = 16 case
// against 'online', and its value on GeomLoss's fixed schedule against a converged value.
// Debiased Sinkhorn divergence, value and gradient, p = 2, blur 0.01, scaling 0.5, float32, on the
// bench's two 3-D cloud families (bench/data.mjs). Every size runs in its own child process, so that
// its peak resident memory is its own.
// Usage: node bench/multilevel.mjs
//   MULTILEVEL_SIZES=10000,30000,100000,300000,1000000 (default): the scaling table;
//   MULTILEVEL_D16=100000 (default): points per cloud of the D = 16 case (0: skip);
//   MULTILEVEL_CHECK=10000 (default): points per cloud of the accuracy check (0: skip);
//   MULTILEVEL_CHECK_ITER=300 (default): the check's reference iterates this many and twice as many
//   times at the final blur (its printed drift);
//   MULTILEVEL_DEGENERATE=1000000 (default 0: skip): degenerate inputs at this many points: N points on
//   10 locations against N on 10 others (merged), the smooth x cloud against its translate far away
//   and a line against its translate off the line (closed form |t|^2 / 2), 1000 points against N;
//   MULTILEVEL_PROFILE=1: after each row of the scaling table, where its time went (the hierarchy's
//   profiling hook, hierarchy.ts: trees, levels, and per level and kind of pattern the patterns'
//   count, build time by phase, node pairs tested, point bounds evaluated by the trimming, blocks and
//   pairs kept, the pointwise kept fraction of the kept blocks' pairs on a sample of rows, and the outer
//   clusters whose blocks were re-tested from the previous pattern rather than walked; the
//   rest is the reductions).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
// MULTILEVEL_LIB: another build of lazytensor/geomloss (an A/B of two builds).
const { SamplesLoss } = await import(process.env.MULTILEVEL_LIB ?? '../dist/geomloss.js');
import { sinkhornClouds } from './data.mjs';

const ms = (t) => `${(t / 1000).toFixed(2)} s`;
const list = (v, fallback) =>
  v === undefined
    ? fallback
    : v
        .split(',')
        .map(Number)
        .filter((n) => n > 0);

/** Installs the hierarchy's profiling hook; returns the aggregate of its records, by kind and level. */
function profiler() {
  const rows = new Map();
  globalThis[Symbol.for('lazytensor.multilevel.profile')] = (r) => {
    const key = `${r.kind} ${r.cells[0]}x${r.cells[1]}`;
    let a = rows.get(key);
    if (!a)
      rows.set(
        key,
        (a = {
          key,
          kind: r.kind,
          count: 0,
          ms: 0,
          phases: {},
          tested: 0,
          pointTests: 0,
          incremental: 0,
          blocks: 0,
          pairs: 0,
          pointwise: 0,
          inBlocks: 0,
          missed: 0,
        }),
      );
    a.count++;
    a.ms += r.ms;
    for (const [k, v] of Object.entries(r.phases ?? {})) a.phases[k] = (a.phases[k] ?? 0) + v;
    a.tested += r.tested ?? 0;
    a.pointTests += r.pointTests ?? 0;
    a.incremental += r.incremental ?? 0;
    a.blocks += r.blocks ?? 0;
    a.pairs += r.pairs ?? 0;
    a.bytes = Math.max(a.bytes ?? 0, r.bytes ?? 0);
    a.pointwise += r.sample?.pointwise ?? 0;
    a.inBlocks += r.sample?.inBlocks ?? 0;
    a.missed += r.sample?.missed ?? 0;
  };
  return () => [...rows.values()];
}

function printProfile(r) {
  const rows = r.profile;
  const sum = rows.reduce((s, a) => s + a.ms, 0);
  console.log(
    `    where the time went: ${ms(sum)} in the hierarchy (trees, levels, patterns), ${ms(r.t - sum)} in the rest (reductions); value ${r.value.toPrecision(9)}`,
  );
  console.log(
    '    step                count  time      phases (bounds/traverse/ranges/trim)  tested     trimmed    blocks     pairs      pointwise/inBlocks  missed  largest pattern  incremental',
  );
  for (const a of rows) {
    const ph = Object.values(a.phases)
      .map((v) => (v / 1000).toFixed(2))
      .join('/');
    const pw = a.inBlocks > 0 ? `${((100 * a.pointwise) / a.inBlocks).toFixed(1)}%` : '-';
    console.log(
      `    ${a.key.padEnd(19)} ${String(a.count).padEnd(6)} ${ms(a.ms).padEnd(9)} ${ph.padEnd(37)} ${a.tested.toExponential(2).padEnd(10)} ${a.pointTests.toExponential(2).padEnd(10)} ${a.blocks.toExponential(2).padEnd(10)} ${a.pairs.toExponential(2).padEnd(10)} ${pw.padEnd(19)} ${String(a.missed).padEnd(7)} ${(a.bytes ? `${(a.bytes / 2 ** 20).toFixed(1)} MB` : '').padEnd(16)} ${a.incremental}`,
    );
  }
}

/** The translations of the 'far' and 'line' rows. */
const translations = { far: [5, -3, 2], line: [0, 0.3, -0.2] };

/** One solve, in this process; prints one JSON line. */
async function one(kind, n, backend, extra) {
  const profile = process.env.MULTILEVEL_PROFILE ? profiler() : null;
  let x;
  let y;
  let D = 3;
  if (kind === 'd16') {
    // 16-D: points near 32 random centres (a low intrinsic dimension, as real features have),
    // y a shifted copy of the same mixture; blur 0.05 of the bounding box's diagonal.
    D = 16;
    let s = 12345;
    const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const centres = Float32Array.from({ length: 32 * D }, r);
    // One centre per point (drawn at its first coordinate): drawn per coordinate, the points mixed
    // 32^16 centres, a near-uniform cloud with nothing for truncation to prune.
    let c = 0;
    const make = (shift) =>
      Float32Array.from({ length: n * D }, (_, k) => {
        if (k % D === 0) c = Math.floor(r() * 32);
        return centres[c * D + (k % D)] + shift + 0.05 * (r() - 0.5);
      });
    x = make(0);
    y = make(0.03);
  } else if (kind === 'coincident') {
    // N points on 10 locations against N on 10 others: merged to 10 x 10 before any backend runs.
    const loc = sinkhornClouds(10, 'smooth');
    const repeat = (c) => Float32Array.from({ length: 3 * n }, (_, k) => c[(Math.floor(k / 3) % 10) * 3 + (k % 3)]);
    x = repeat(loc.x);
    y = repeat(loc.y);
  } else if (kind === 'far' || kind === 'line') {
    // A cloud and its translate by t: the debiased divergence is |t|^2 / 2 exactly.
    x = sinkhornClouds(n, 'smooth').x;
    if (kind === 'line') for (let i = 0; i < n; i++) x[3 * i + 1] = x[3 * i + 2] = 0.5 * x[3 * i];
    const t = translations[kind];
    y = Float32Array.from(x, (v, k) => v + t[k % 3]);
  } else if (kind === 'sizes') {
    // 1000 points against n.
    x = sinkhornClouds(1000, 'smooth').x;
    y = sinkhornClouds(n, 'smooth').y;
  } else ({ x, y } = sinkhornClouds(n, kind));
  const nx = x.length / D;
  const ny = y.length / D;
  let diag = 0;
  for (let k = 0; k < D; k++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of [x, y])
      for (let i = k; i < c.length; i += D) {
        lo = Math.min(lo, c[i]);
        hi = Math.max(hi, c[i]);
      }
    diag += (hi - lo) ** 2;
  }
  const blur = kind === 'd16' ? 0.05 * Math.sqrt(diag) : 0.01;
  const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur, scaling: 0.5, debias: true, backend, ...extra });
  const t0 = performance.now();
  const res = await loss.valueAndGrad({ data: x, shape: [nx, D] }, { data: y, shape: [ny, D] });
  const t = performance.now() - t0;
  const m = res.info.multiscale;
  console.log(
    JSON.stringify({
      value: res.value,
      t,
      iterations: res.info.iterations,
      converged: res.info.converged,
      pairs: m ? m.pairsVisited : null,
      perNLogN: m ? m.pairsPerNLogN : null,
      levels: m
        ? m.hierarchy.map((l) => `${l.cells.x}:${l.temperatures.length}:${(100 * l.keptFraction).toFixed(0)}%`)
        : null,
      rssMB: process.resourceUsage().maxRSS / 1024,
      ...(profile ? { profile: profile() } : {}),
    }),
  );
}

function child(kind, n, backend, extra = {}) {
  const out = execFileSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--one', kind, String(n), backend, JSON.stringify(extra)],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  return JSON.parse(out.trim().split('\n').pop());
}

if (process.argv[2] === '--one') {
  await one(process.argv[3], Number(process.argv[4]), process.argv[5], JSON.parse(process.argv[6]));
} else {
  console.log(
    'Multilevel Sinkhorn (multiscale backend): p = 2, blur 0.01, scaling 0.5, debiased, float32, value and gradient',
  );
  console.log('  levels: cells of x : temperatures there : kept fraction of the pairs, coarsest first');
  const sizes = list(process.env.MULTILEVEL_SIZES, [1e4, 3e4, 1e5, 3e5, 1e6]);
  for (const kind of sizes.length > 0 ? ['smooth', 'concentrated'] : []) {
    console.log(`${kind} clouds, D = 3, N = M:`);
    console.log('  N         time      pairs visited   pairs / (N log2 N)   peak RSS   levels');
    for (const n of sizes) {
      const r = child(kind, n, 'multiscale');
      console.log(
        `  ${String(n).padEnd(9)} ${ms(r.t).padEnd(9)} ${r.pairs.toExponential(3).padEnd(15)} ${r.perNLogN.toFixed(0).padEnd(20)} ${r.rssMB.toFixed(0).padStart(5)} MB   ${r.levels.join(' ')}`,
      );
      if (r.profile) printProfile(r);
    }
  }
  const n16 = list(process.env.MULTILEVEL_D16, [1e5])[0];
  if (n16) {
    const m = child('d16', n16, 'multiscale');
    const o = child('d16', n16, 'online');
    console.log(
      `D = 16, N = M = ${n16}, blur 0.05 of the diameter: multiscale ${ms(m.t)} (value ${m.value.toPrecision(6)}, ${m.perNLogN.toFixed(0)} pairs / N log2 N), online ${ms(o.t)} (value ${o.value.toPrecision(6)}): x${(o.t / m.t).toFixed(2)}`,
    );
  }
  const nd = list(process.env.MULTILEVEL_DEGENERATE, [0])[0];
  if (nd) {
    console.log(`Degenerate inputs, N = ${nd}, D = 3:`);
    console.log('  case                         time      pairs visited   pairs / (N log2 N)   peak RSS   value');
    const cases = [
      ['coincident', `${nd} on 10 locations`],
      ['far', 'translate far away'],
      ['line', 'line, translated'],
      ['sizes', `1000 against ${nd}`],
    ];
    for (const [kind, label] of cases) {
      const r = child(kind, nd, 'multiscale');
      const t = translations[kind];
      const want = t ? ` (closed form ${(0.5 * t.reduce((s, v) => s + v * v, 0)).toPrecision(6)})` : '';
      const pairs = r.pairs === null ? '-' : r.pairs.toExponential(3);
      const per = r.perNLogN === null ? '-' : r.perNLogN.toFixed(0);
      console.log(
        `  ${label.padEnd(28)} ${ms(r.t).padEnd(9)} ${pairs.padEnd(15)} ${per.padEnd(20)} ${r.rssMB.toFixed(0).padStart(5)} MB   ${r.value.toPrecision(6)}${want}`,
      );
    }
  }
  const nc = list(process.env.MULTILEVEL_CHECK, [1e4])[0];
  if (nc) accuracyCheck(nc, list(process.env.MULTILEVEL_CHECK_ITER, [300])[0]);
}

/**
 * Issue 12's accuracy target: the multiscale value on GeomLoss's fixed schedule against the converged
 * value, on both cloud families. At blur 0.01 Sinkhorn's last modes converge very slowly on the
 * concentrated clouds (the largest change per iteration falls like ~0.95 per 100 iterations after a
 * few hundred, and the value still creeps up: a float32 run never meets a tolerance on it), so a
 * reference from a fixed schedule plus a few hundred iterations (what this check used before) is
 * itself several percent low. The reference here anneals slowly (scaling 0.95: the potentials track
 * each temperature, so little is left to converge at the final one) and then iterates `iter` and
 * 2 `iter` times at the final blur on the multiscale backend (with convergence it equals online to
 * 1e-6, tests/geomloss/multilevel.test.ts); the printed drift between the two says how converged
 * it is. Online on the fixed schedule is printed against the same reference.
 */
function accuracyCheck(nc, iter) {
  for (const kind of ['smooth', 'concentrated']) {
    const m = child(kind, nc, 'multiscale');
    const o = child(kind, nc, 'online');
    const slow = (maxIter) => child(kind, nc, 'multiscale', { scaling: 0.95, convergence: { tol: 1e-12, maxIter } });
    const c1 = slow(iter);
    const c2 = slow(2 * iter);
    const rel = (v) => `${((100 * (v - c2.value)) / Math.abs(c2.value)).toFixed(2)}%`;
    console.log(
      `${kind}, N = M = ${nc}: converged reference (scaling 0.95, then ${2 * iter} iterations at the final blur: ${c2.iterations} in all, ${ms(c2.t)}) ${c2.value.toPrecision(6)}, ${rel(c1.value)} after ${iter} of them (its remaining drift); multiscale (GeomLoss's schedule) ${m.value.toPrecision(6)} in ${ms(m.t)}: off by ${rel(m.value)} (target within 1%); online on the same schedule ${o.value.toPrecision(6)}: off by ${rel(o.value)}`,
    );
  }
}
