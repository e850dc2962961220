#!/usr/bin/env node
// Quick single-thread speed check of the Wasm kernel (run by hand, not a test):
//   node scripts/build-wasm.mjs && node scripts/kernel-speed.mjs
// Measures Gpairs/s (N*M / seconds / 1e9, best of REPS after a warm-up) for the programs of the
// native yardstick (/work/shared/bench/native/kernels.c), float32, N = M = 10000:
//   gauss  SQDIST(x_i, y_j) -> MUL by -g -> EXP -> MUL by b_j -> RED_SUM
//   lse    SQDIST(x_i, y_j) -> MUL by -g -> ADD h_j -> RED_LSE
//   knn    SQDIST(x_i, y_j) -> RED_KMINARGKMIN, K = 10        (D = 3 and D = 50)
// With the same data as the yardstick (its `check` value is reproduced). If NATIVE_BIN points to
// kernels-sse (default /tmp/native-yardstick/kernels-sse, made by
// `bash /work/shared/bench/native/build.sh`), the native timings are taken alternately and the ratios
// printed.
// Sweeps: node scripts/kernel-speed.mjs sweep [N] [M] [reps] [B...]   (env CASES=knn:50,gauss:3 TILES=1,8)
// Micro-benchmarks of the parts: CASES=none,mul,exp,sqdist,sqexp node scripts/kernel-speed.mjs sweep
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bytes = readFileSync(process.env.KERNEL_WASM || resolve(root, 'build/kernel.wasm'));
let mod = new WebAssembly.Module(bytes);
/** Use another kernel binary (for A/B comparisons). */
function setModule(wasmBytes) {
  mod = new WebAssembly.Module(wasmBytes);
}

/** DTYPE=f64 measures the float64 kernel instead (the native yardstick is float32 only). */
const F64 = process.env.DTYPE === 'f64';

// ISA constants (see assembly/isa.ts)
const H = {
  DTYPE: 0,
  N: 1,
  M: 2,
  B: 3,
  NREGS: 4,
  REGS: 5,
  OC: 6,
  OL: 7,
  IC: 8,
  IL: 9,
  RED: 10,
  F: 11,
  G: 12,
  K: 13,
  OUTV: 14,
  OUTI: 15,
  OUTDIM: 16,
  ACC: 17,
  ACCB: 18,
};
const REG = { UNIFORM: 0, OUTER: 1, INNER: 2, BLOCK: 3 };
const OP = { EXP: 4, ADD: 32, MUL: 34, SQDIST: 66 };
const RED = { SUM: 1, LSE: 2, KMINARGKMIN: 13 };

let seed = 12345;
const rnd = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return (seed >>> 8) / 16777216;
};

/** policy: the blocked tiles' policy (assembly/blocked.ts: 0 off, 1 automatic, 2 direct, 3 expanded). */
function build(kind, N, M, D, B, K, tile, policy = 1) {
  seed = 12345; // same data as the native yardstick
  const k = new WebAssembly.Instance(mod, {}).exports;
  if (k.blockedPolicy) k.blockedPolicy(policy);
  let top = Math.ceil(k.heapBase() / 64) * 64;
  const alloc = (n) => {
    const p = top;
    top = Math.ceil((top + n) / 64) * 64;
    return p;
  };
  const nb = Math.ceil(M / B);
  const prog = alloc(80),
    regs = alloc(16 * 8),
    ic = alloc(32 * 8);
  const E = F64 ? 8 : 4;
  const x = alloc(N * D * E),
    y = alloc(nb * D * B * E),
    w = alloc(nb * B * E),
    g = alloc(16);
  const t = [0, 1, 2, 3].map(() => alloc(B * E));
  const outDim = kind === 'knn' ? K : 1;
  const outV = alloc(N * outDim * E),
    outI = alloc(N * outDim * 4);
  const per = kind === 'knn' ? Math.ceil((16 + K * (E + 4)) / 16) * 16 : 16;
  const accB = per * tile;
  const acc = alloc(accB);
  const grow = top + 65536 - k.memory.buffer.byteLength;
  if (grow > 0) k.memory.grow(Math.ceil(grow / 65536));
  const buf = k.memory.buffer;
  const f = F64 ? new Float64Array(buf) : new Float32Array(buf),
    i32 = new Int32Array(buf);
  for (let q = 0; q < N * D; q++) f[x / E + q] = rnd();
  for (let j = 0; j < M; j++)
    for (let d = 0; d < D; d++) {
      const b = Math.floor(j / B);
      f[y / E + (b * D + d) * B + (j % B)] = rnd();
    }
  for (let j = 0; j < M; j++) f[w / E + j] = rnd();
  const gam = 1 / (2 * 0.1 * 0.1);
  f[g / E] = -gam;
  // registers: 0 x (outer), 1 y (inner), 2 w (inner, b_j or h_j), 3 -g (uniform), 4..7 block scratch
  const R = [
    [REG.OUTER, D, x],
    [REG.INNER, D, y],
    [REG.INNER, 1, w],
    [REG.UNIFORM, 1, g],
    ...t.map((p) => [REG.BLOCK, 1, p]),
  ];
  R.forEach((r, q) => {
    i32[regs / 4 + q * 4] = r[0];
    i32[regs / 4 + q * 4 + 1] = r[1];
    i32[regs / 4 + q * 4 + 2] = r[2];
  });
  // as src/wasm/compile.ts emits them: every instruction writes a fresh register; F is the last
  const code = {
    gauss: [
      [OP.SQDIST, 4, 0, 1],
      [OP.MUL, 5, 4, 3],
      [OP.EXP, 6, 5],
      [OP.MUL, 7, 6, 2],
    ],
    lse: [
      [OP.SQDIST, 4, 0, 1],
      [OP.MUL, 5, 4, 3],
      [OP.ADD, 6, 5, 2],
    ],
    knn: [[OP.SQDIST, 4, 0, 1]],
    // micro-benchmarks of the parts (reduced with RED_SUM)
    sqdist: [[OP.SQDIST, 4, 0, 1]],
    sqexp: [
      [OP.SQDIST, 4, 0, 1],
      [OP.MUL, 5, 4, 3],
      [OP.EXP, 6, 5],
    ],
    mul: [[OP.MUL, 4, 2, 3]],
    exp: [
      [OP.MUL, 4, 2, 3],
      [OP.EXP, 5, 4],
    ],
    none: [],
  }[kind];
  code.forEach((c, q) =>
    c.forEach((v, u) => {
      i32[ic / 4 + q * 8 + u] = v;
    }),
  );
  const h = (w2, v) => {
    i32[prog / 4 + w2] = v;
  };
  h(H.DTYPE, F64 ? 1 : 0);
  h(H.N, N);
  h(H.M, M);
  h(H.B, B);
  h(H.NREGS, R.length);
  h(H.REGS, regs);
  h(H.OC, 0);
  h(H.OL, 0);
  h(H.IC, ic);
  h(H.IL, code.length);
  h(H.RED, kind === 'lse' ? RED.LSE : kind === 'knn' ? RED.KMINARGKMIN : RED.SUM);
  h(H.F, kind === 'none' ? 2 : code[code.length - 1][1]);
  h(H.G, -1);
  h(H.K, kind === 'knn' ? K : 0);
  h(H.OUTV, outV);
  h(H.OUTI, outI);
  h(H.OUTDIM, outDim);
  h(H.ACC, acc);
  h(H.ACCB, accB);
  return () => {
    const rc = k.run(prog, 0, N);
    if (rc !== 0) throw new Error(`run returned ${rc}`);
    return (F64 ? new Float64Array(k.memory.buffer, outV, 1) : new Float32Array(k.memory.buffer, outV, 1))[0];
  };
}

function bench(kind, N, M, D, B, reps, tile) {
  const fn = build(kind, N, M, D, B, 10, tile);
  let best = Infinity,
    check = 0;
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    check = fn();
    const dt = (performance.now() - t0) / 1000;
    if (r > 0) best = Math.min(best, dt);
  }
  return { gpairs: (N * M) / best / 1e9, seconds: best, check };
}

export { build, bench, setModule };
const isMain = process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
const argv = process.argv.slice(2);
if (isMain && argv[0] === 'sweep') {
  const args = argv.slice(1).map(Number);
  const N = args[0] || 10000,
    M = args[1] || 10000,
    reps = args[2] || 3;
  const Bs = args.length > 3 ? args.slice(3) : [128, 256, 512, 1024];
  const tiles = (process.env.TILES || '1,8').split(',').map(Number);
  const cases = process.env.CASES
    ? process.env.CASES.split(',').map((c) => {
        const [k, d] = c.split(':');
        return [k, Number(d || 3)];
      })
    : [
        ['gauss', 3],
        ['lse', 3],
        ['knn', 3],
        ['knn', 50],
      ];
  for (const [kind, D] of cases) {
    for (const B of Bs)
      for (const tile of tiles) {
        const r = bench(kind, N, M, D, B, reps, tile);
        console.log(
          JSON.stringify({
            op: kind,
            N,
            M,
            D,
            B,
            tile,
            gpairs_per_s: +r.gpairs.toFixed(4),
            seconds: +r.seconds.toFixed(4),
            check: r.check,
          }),
        );
      }
  }
} else if (isMain) {
  const nativeBin = process.env.NATIVE_BIN || '/tmp/native-yardstick/kernels-sse';
  const haveNative = existsSync(nativeBin);
  const rounds = Number(process.env.ROUNDS || 3);
  // [op, D, K or E, B, outer tile]: the block sizes that worked best on a 2-core AMD EPYC (Zen 4)
  const cases = [
    ['gauss', 3, 1, 512, 8],
    ['lse', 3, 1, 512, 8],
    ['knn', 3, 10, 512, 8],
    ['knn', 50, 10, 128, 8],
  ];
  for (const [op, D, E, B, tile] of cases) {
    let wasm = 0,
      native = 0,
      check = 0,
      nativeCheck = 0;
    for (let r = 0; r < rounds; r++) {
      const w = bench(op, 10000, 10000, D, B, 2, tile);
      wasm = Math.max(wasm, w.gpairs);
      check = w.check;
      if (haveNative) {
        const out = JSON.parse(execFileSync(nativeBin, [op, '10000', '10000', String(D), String(E), '2']).toString());
        native = Math.max(native, out.gpairs_per_s);
        nativeCheck = out.check;
      }
    }
    console.log(
      JSON.stringify({
        op,
        D,
        B,
        tile,
        wasm_gpairs_per_s: +wasm.toFixed(4),
        check: +check.toPrecision(6),
        ...(haveNative
          ? { native_sse_gpairs_per_s: native, native_check: nativeCheck, ratio: +(wasm / native).toFixed(3) }
          : {}),
      }),
    );
  }
}
