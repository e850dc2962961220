// Tests of the WebAssembly kernel (assembly/kernel.ts) through its raw API: programs are laid out by
// tests/helpers/raw-kernel.ts and compared with a plain float64 JavaScript interpreter of the same
// programs (below). With dtype f32 the reference rounds every elementwise result and every partial
// sum of the row reductions to float32 in the kernel's order, so arithmetic, comparisons and the
// arg-min family agree exactly; transcendental functions agree within a few ulps.
import { describe, expect, it } from 'vitest';
import {
  ISA,
  UNWRITTEN,
  accBytesFor,
  layout,
  loadKernel,
  mathApply,
  outDimOf,
  runProgram,
  type Dtype,
  type Instr,
  type ProgramSpec,
  type RegSpec,
} from './helpers/raw-kernel';

const kernel = loadKernel();

// ------------------------------------------------------------------------------------------------
// reference interpreter

type Rnd = (x: number) => number;
const rounder = (dt: Dtype): Rnd => (dt === 'f32' ? Math.fround : (x: number) => x);

function roundAway(x: number): number {
  const t = Math.trunc(x);
  return Math.abs(x - t) >= 0.5 ? t + Math.sign(x) : t;
}

function unaryRef(op: number, a: number, aux: number, row: number, R: Rnd): number {
  switch (op) {
    case ISA.OP_COPY:
      return a;
    case ISA.OP_NEG:
      return -a;
    case ISA.OP_ABS:
      return Math.abs(a);
    case ISA.OP_EXP:
      return R(Math.exp(a));
    case ISA.OP_LOG:
      return R(Math.log(a));
    case ISA.OP_SQRT:
      return R(Math.sqrt(a));
    case ISA.OP_RSQRT:
      return a === 0 ? 0 : R(1 / R(Math.sqrt(a)));
    case ISA.OP_SQUARE:
      return R(a * a);
    case ISA.OP_INV:
      return R(1 / a);
    case ISA.OP_SIN:
      return R(Math.sin(a));
    case ISA.OP_COS:
      return R(Math.cos(a));
    case ISA.OP_SIGN:
      return Number.isNaN(a) ? NaN : a > 0 ? 1 : a < 0 ? -1 : 0;
    case ISA.OP_STEP:
      return a < 0 ? 0 : 1;
    case ISA.OP_RELU:
      return Number.isNaN(a) ? NaN : a > 0 ? a : 0;
    case ISA.OP_XLOGX:
      return a === 0 ? 0 : R(a * R(Math.log(a)));
    case ISA.OP_SINXDIVX:
      return a === 0 ? 1 : R(R(Math.sin(a)) / a);
    case ISA.OP_ROUND: {
      const p = R(10 ** Math.abs(aux));
      return aux >= 0 ? R(roundAway(R(a * p)) / p) : R(roundAway(R(a / p)) * p);
    }
    case ISA.OP_POW: {
      let e = Math.abs(aux),
        r = 1,
        b = a;
      while (e !== 0) {
        if (e & 1) r = R(r * b);
        e >>>= 1;
        if (e !== 0) b = R(b * b);
      }
      return aux < 0 ? R(1 / r) : r;
    }
    case ISA.OP_ONEHOT:
      return roundAway(a) === row ? 1 : 0;
    case ISA.OP_FLOOR:
      return Math.floor(a);
    case ISA.OP_ATAN:
      return R(Math.atan(a));
    case ISA.OP_ASIN:
      return R(Math.asin(a));
    case ISA.OP_ACOS:
      return R(Math.acos(a));
  }
  throw new Error(`unary op ${op}`);
}

function binaryRef(op: number, a: number, b: number, R: Rnd): number {
  switch (op) {
    case ISA.OP_ADD:
      return R(a + b);
    case ISA.OP_SUB:
      return R(a - b);
    case ISA.OP_MUL:
      return R(a * b);
    case ISA.OP_DIV:
      return R(a / b);
    case ISA.OP_POWF:
      return R(Math.exp(R(b * R(Math.log(a)))));
    case ISA.OP_EQ:
      return a === b ? 1 : 0;
    case ISA.OP_NE:
      return a !== b ? 1 : 0;
    case ISA.OP_LT:
      return a < b ? 1 : 0;
    case ISA.OP_LE:
      return a <= b ? 1 : 0;
    case ISA.OP_GT:
      return a > b ? 1 : 0;
    case ISA.OP_GE:
      return a >= b ? 1 : 0;
    case ISA.OP_MIN:
      return Math.min(a, b);
    case ISA.OP_MAX:
      return Math.max(a, b);
    case ISA.OP_ATAN2:
      return R(Math.atan2(a, b));
  }
  throw new Error(`binary op ${op}`);
}

function ternaryRef(op: number, a: number, b: number, c: number, R: Rnd): number {
  switch (op) {
    case ISA.OP_CLAMP:
      return Math.min(Math.max(a, b), c);
    case ISA.OP_IFELSE:
      return a >= 0 ? b : c;
    case ISA.OP_MOD:
      return R(a - R(b * Math.floor(R(R(a - c) / b))));
  }
  throw new Error(`ternary op ${op}`);
}

const isUnary = (op: number): boolean => op >= ISA.UNARY_FIRST && op <= ISA.UNARY_LAST;
const isBinary = (op: number): boolean => op >= ISA.BINARY_FIRST && op <= ISA.BINARY_LAST;
// ops whose f32/f64 results are approximations (SIMD math) rather than correctly rounded
const APPROX = new Set<number>([
  ISA.OP_EXP,
  ISA.OP_LOG,
  ISA.OP_SIN,
  ISA.OP_COS,
  ISA.OP_XLOGX,
  ISA.OP_SINXDIVX,
  ISA.OP_POWF,
  ISA.OP_ATAN,
  ISA.OP_ASIN,
  ISA.OP_ACOS,
  ISA.OP_ATAN2,
]);

interface Slot {
  arr: Float64Array;
  off: number;
  dim: number;
}

/** F (and G) for every (i, j): fv[i][j] holds d values, gv[i][j] e values. */
function evaluate(spec: ProgramSpec): { fv: number[][][]; gv: number[][][] } {
  const R = rounder(spec.dtype);
  const roots: Float64Array[] = [];
  const slots: Slot[] = [];
  spec.regs.forEach((r, idx) => {
    if (r.kind === 'view') {
      const p = slots[r.parent]!;
      slots[idx] = { arr: p.arr, off: p.off + r.offset, dim: r.dim };
    } else {
      const arr = new Float64Array(r.dim);
      roots[idx] = arr;
      slots[idx] = { arr, off: 0, dim: r.dim };
    }
  });
  const get = (r: number, k: number): number => {
    const s = slots[r]!;
    return s.arr[s.off + (s.dim === 1 ? 0 : k)]!;
  };
  const exec = (code: Instr[]): void => {
    for (const ins of code) {
      const [op, dst, a = 0, b = 0, c = 0, aux = 0] = ins;
      const ds = slots[dst]!;
      if (op >= ISA.OP_ROWSUM) {
        const rows = op === ISA.OP_ROWSUM ? slots[a]!.dim : Math.max(slots[a]!.dim, slots[b]!.dim);
        let s = 0;
        for (let k = 0; k < rows; k++) {
          const x = get(a, k);
          if (op === ISA.OP_ROWSUM) s = R(s + x);
          else if (op === ISA.OP_DOT) s = R(s + R(x * get(b, k)));
          else {
            const d = R(x - get(b, k));
            s = op === ISA.OP_SQDIST ? R(s + R(d * d)) : R(s + R(get(c, k) * R(d * d)));
          }
        }
        ds.arr[ds.off] = s;
        continue;
      }
      const out: number[] = [];
      for (let k = 0; k < ds.dim; k++) {
        if (isUnary(op)) out.push(unaryRef(op, get(a, op === ISA.OP_ONEHOT ? 0 : k), aux, k, R));
        else if (isBinary(op)) out.push(binaryRef(op, get(a, k), get(b, k), R));
        else out.push(ternaryRef(op, get(a, k), get(b, k), get(c, k), R));
      }
      out.forEach((v, k) => {
        ds.arr[ds.off + k] = v;
      });
    }
  };
  const fv: number[][][] = [],
    gv: number[][][] = [];
  for (let i = 0; i < spec.N; i++) {
    spec.regs.forEach((r, idx) => {
      if (r.kind === 'uniform') for (let k = 0; k < r.dim; k++) roots[idx]![k] = R(r.values ? r.values[k]! : 0);
      if (r.kind === 'outer') for (let k = 0; k < r.dim; k++) roots[idx]![k] = R(r.data[i * r.dim + k]!);
    });
    exec(spec.outer ?? []);
    const fi: number[][] = [],
      gi: number[][] = [];
    for (let j = 0; j < spec.M; j++) {
      spec.regs.forEach((r, idx) => {
        if (r.kind === 'inner') for (let k = 0; k < r.dim; k++) roots[idx]![k] = R(r.data[j * r.dim + k]!);
      });
      exec(spec.inner);
      const Fs = slots[spec.F]!;
      fi.push(Array.from({ length: Fs.dim }, (_, k) => Fs.arr[Fs.off + k]!));
      if (spec.G !== undefined && spec.G >= 0) {
        const Gs = slots[spec.G]!;
        gi.push(Array.from({ length: Gs.dim }, (_, k) => Gs.arr[Gs.off + k]!));
      }
    }
    fv.push(fi);
    gv.push(gi);
  }
  return { fv, gv };
}

interface RefResult {
  values: number[];
  indices: number[];
  /** a magnitude for tolerances: sum of |terms| for sums, |value| otherwise */
  scale: number[];
}

function lseOf(xs: number[]): number {
  if (xs.some((x) => Number.isNaN(x))) return NaN;
  const m = Math.max(...xs);
  if (m === -Infinity || m === Infinity) return m;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/**
 * The reduction of evaluate()'s values, in float64. `seqOf(i)` gives the inner indices visited for i,
 * in order (default 0..M-1); ties go to the first visited.
 */
function reference(spec: ProgramSpec, seqOf?: (i: number) => number[]): RefResult {
  const { fv, gv } = evaluate(spec);
  const values: number[] = [],
    indices: number[] = [],
    scale: number[] = [];
  const red = spec.red;
  const d = spec.regs[spec.F]!.dim;
  for (let i = 0; i < spec.N; i++) {
    const seq = seqOf ? seqOf(i) : fv[i]!.map((_, j) => j);
    const F = seq.map((j) => fv[i]![j]!),
      G = seq.map((j) => gv[i]![j]!);
    if (red === ISA.RED_SUM) {
      for (let k = 0; k < d; k++) {
        values.push(F.reduce((s, f) => s + f[k]!, 0));
        scale.push(F.reduce((s, f) => s + Math.abs(f[k]!), 0));
      }
    } else if (red === ISA.RED_LSE) {
      for (let k = 0; k < d; k++) {
        const v = lseOf(F.map((f) => f[k]!));
        values.push(v);
        scale.push(Math.max(1, ...F.map((f) => (Number.isFinite(f[k]!) ? Math.abs(f[k]!) : 0))));
      }
    } else if (red === ISA.RED_LSE_W || red === ISA.RED_SSMW) {
      const e = spec.regs[spec.G!]!.dim;
      const f = F.map((x) => x[0]!);
      const m = Math.max(...f);
      for (let k = 0; k < e; k++) {
        let s = 0,
          s0 = 0,
          sa = 0;
        for (let j = 0; j < f.length; j++) {
          const w = Math.exp(f[j]! - m);
          s += w * G[j]![k]!;
          sa += w * Math.abs(G[j]![k]!);
          s0 += w;
        }
        if (red === ISA.RED_LSE_W) {
          values.push(m === -Infinity ? -Infinity : m + Math.log(s));
          scale.push(Math.max(1, Math.abs(m)) * (sa / Math.abs(s)));
        } else {
          values.push(s / s0);
          scale.push(sa / s0);
        }
      }
    } else if (red >= ISA.RED_MIN && red <= ISA.RED_MAXARGMAX) {
      const isMax = red === ISA.RED_MAX || red === ISA.RED_ARGMAX || red === ISA.RED_MAXARGMAX;
      for (let k = 0; k < d; k++) {
        let bv = NaN,
          bi = -1;
        F.forEach((f, pos) => {
          const v = f[k]!;
          if (Number.isNaN(v)) return;
          if (bi < 0 || (isMax ? v > bv : v < bv)) {
            bv = v;
            bi = seq[pos]!;
          }
        });
        values.push(bv);
        indices.push(bi);
        scale.push(Math.abs(bv));
      }
    } else {
      const K = spec.K ?? 0;
      const vals = new Array<number>(K * d).fill(NaN),
        idx = new Array<number>(K * d).fill(-1);
      for (let k = 0; k < d; k++) {
        const list = F.map((f, pos) => ({ v: f[k]!, pos })).filter((x) => !Number.isNaN(x.v));
        list.sort((p, q) => (p.v < q.v ? -1 : p.v > q.v ? 1 : p.pos - q.pos));
        for (let t = 0; t < Math.min(K, list.length); t++) {
          vals[t * d + k] = list[t]!.v;
          idx[t * d + k] = seq[list[t]!.pos]!;
        }
      }
      values.push(...vals);
      indices.push(...idx);
      scale.push(...vals.map(Math.abs));
    }
  }
  return { values, indices, scale };
}

// ------------------------------------------------------------------------------------------------
// utilities

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s >>> 8) / 16777216;
  };
}
function randArray(n: number, lo: number, hi: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

function close(got: number, want: number, rtol: number, atol: number, scale = Math.abs(want)): boolean {
  if (Number.isNaN(want)) return Number.isNaN(got);
  if (got === want) return true;
  if (!Number.isFinite(want) || !Number.isFinite(got)) return false;
  return Math.abs(got - want) <= atol + rtol * Math.max(scale, Math.abs(want));
}

/** Runs spec and compares with the reference; values within rtol (of the scale), indices exactly. */
function check(spec: ProgramSpec, rtol: number, atol = 0, opts: { chunks?: number } = {}): void {
  const got = runProgram(kernel, spec, opts);
  expect(got.code).toBe(ISA.OK);
  const ref = reference(spec);
  if (got.values) {
    const bad: string[] = [];
    got.values.forEach((v, q) => {
      if (!close(v, ref.values[q]!, rtol, atol, ref.scale[q]!)) bad.push(`[${q}] got ${v} want ${ref.values[q]}`);
    });
    expect(bad.slice(0, 5)).toEqual([]);
  }
  if (got.indices) expect(Array.from(got.indices)).toEqual(ref.indices);
}

const DTYPES: Dtype[] = ['f32', 'f64'];
const TOL = { f32: 3e-6, f64: 1e-13 } as const;

// ------------------------------------------------------------------------------------------------
// math

describe('SIMD math (mathTest export)', () => {
  const F32_MIN_NORMAL = 1.1754943508222875e-38;
  const F64_MIN_NORMAL = 2.2250738585072014e-308;
  const fns = [Math.exp, Math.log, Math.sin, Math.cos];
  const names = ['exp', 'log', 'sin', 'cos'];

  function checkFn(fn: number, dt: Dtype, xs: number[], rtol: number): void {
    const R = rounder(dt);
    const xin = xs.map(R);
    const got = mathApply(kernel, fn, dt, xin);
    const minNormal = dt === 'f32' ? F32_MIN_NORMAL : F64_MIN_NORMAL;
    const bad: string[] = [];
    xin.forEach((x, q) => {
      const want = R(fns[fn]!(x));
      const g = got[q]!;
      let ok: boolean;
      if (Number.isNaN(want)) ok = Number.isNaN(g);
      else if (!Number.isFinite(want)) ok = g === want;
      else if (fn === 0 && Math.abs(want) < minNormal)
        ok = g === 0 || Math.abs(g - want) <= minNormal; // flush to 0
      else ok = Math.abs(g - want) <= rtol * Math.abs(want) + (fn >= 2 ? 1e-300 : 0);
      if (!ok) bad.push(`${names[fn]}(${x}) = ${g}, want ${want}`);
    });
    expect(bad.slice(0, 5)).toEqual([]);
  }

  const specials = [0, -0, Infinity, -Infinity, NaN, 1, -1, 0.5, 2, 1e-40, -1e-40, 3.4e38, -3.4e38, 1e-300, 1e300];
  for (const dt of DTYPES) {
    const rtol = dt === 'f32' ? 4e-7 : 2e-15;
    it(`${dt} exp over the whole range and specials`, () => {
      const lo = dt === 'f32' ? -110 : -750,
        hi = dt === 'f32' ? 90 : 712;
      checkFn(
        0,
        dt,
        [
          ...randArray(20011, lo, hi, 1),
          ...randArray(4001, -1, 1, 2),
          ...randArray(2001, -1e-6, 1e-6, 3),
          ...specials,
          88.72,
          88.7228,
          88.73,
          709.78,
          709.79,
          -87.33,
          -87.34,
          -103.9,
          -104,
          -708.39,
          -708.4,
          -745.2,
          -746,
        ],
        rtol,
      );
      const ex = mathApply(kernel, 0, dt, [-Infinity, 0, Infinity, NaN, -1e30, 1e30, -2000]);
      expect(ex[0]).toBe(0);
      expect(ex[1]).toBe(1);
      expect(ex[2]).toBe(Infinity);
      expect(ex[3]).toBeNaN();
      expect(ex[4]).toBe(0);
      expect(ex[5]).toBe(Infinity);
      expect(ex[6]).toBe(0);
    });
    it(`${dt} exp of 4 vectors in lockstep agrees bit for bit with the single-vector exp`, () => {
      const xs = [
        ...randArray(4000, dt === 'f32' ? -110 : -750, dt === 'f32' ? 90 : 712, 31),
        ...specials,
        ...specials,
        -87.33654022216797,
        -87.3365478515625,
        88.72283172607422,
        88.72283935546875,
        -708.3964185322641,
        709.782712893384,
      ];
      const a = mathApply(kernel, 0, dt, xs),
        b = mathApply(kernel, 4, dt, xs);
      expect(Array.from(b)).toEqual(Array.from(a));
    });
    it(`${dt} log over wide ranges, subnormals and specials`, () => {
      const xs = [
        ...randArray(10007, 0, 10, 4),
        ...randArray(2003, 0.5, 2, 5),
        ...randArray(2001, 1 - 1e-4, 1 + 1e-4, 6),
        ...randArray(2001, 0, 1e-38, 7),
        ...randArray(2001, 0, 1e30, 8),
        ...specials,
        1e-45,
        5e-324,
        1.1e-38,
        2.3e-308,
      ];
      if (dt === 'f64') xs.push(...randArray(2001, 0, 1e-310, 9), ...randArray(2001, 1e300, 1.7e308, 10));
      checkFn(1, dt, xs, rtol);
      const ex = mathApply(kernel, 1, dt, [0, -0, -1, Infinity, -Infinity, NaN, 1]);
      expect(ex[0]).toBe(-Infinity);
      expect(ex[1]).toBe(-Infinity);
      expect(ex[2]).toBeNaN();
      expect(ex[3]).toBe(Infinity);
      expect(ex[4]).toBeNaN();
      expect(ex[5]).toBeNaN();
      expect(ex[6]).toBe(0);
    });
    for (const fn of [2, 3]) {
      it(`${dt} ${names[fn]} up to 1e5 (SIMD) and beyond (scalar path)`, () => {
        const tol = dt === 'f32' ? 3e-7 : 1e-15;
        checkFn(
          fn,
          dt,
          [
            ...randArray(20011, -10, 10, 11),
            ...randArray(20011, -1e5, 1e5, 12),
            ...randArray(2001, -1e-3, 1e-3, 13),
            ...randArray(2001, -1e9, 1e9, 14),
            ...specials,
          ],
          tol,
        );
        // multiples of pi/2 and their neighbours
        checkFn(
          fn,
          dt,
          Array.from({ length: 2000 }, (_, q) => ((q - 1000) * Math.PI) / 2),
          tol,
        );
        const ex = mathApply(kernel, fn, dt, [Infinity, -Infinity, NaN, 0]);
        expect(ex[0]).toBeNaN();
        expect(ex[1]).toBeNaN();
        expect(ex[2]).toBeNaN();
        expect(ex[3]).toBe(fn === 2 ? 0 : 1);
      });
    }
    it(`${dt} math on lengths that are not a multiple of the vector width`, () => {
      for (const n of [1, 2, 3, 5, 7]) {
        const xs = randArray(n, -3, 3, 20 + n).map(rounder(dt));
        const got = mathApply(kernel, 0, dt, xs);
        xs.forEach((x, q) => expect(close(got[q]!, rounder(dt)(Math.exp(x)), rtol, 0)).toBe(true));
      }
    });
  }
});

// ------------------------------------------------------------------------------------------------
// every opcode inside a RED_SUM

// registers of the opcode test program
const X = 0,
  Y = 1,
  X1 = 2,
  U = 3,
  V = 4,
  P1 = 5,
  P3 = 6,
  T = 7,
  T1 = 8,
  S3 = 9,
  S1 = 10,
  W = 11,
  Tb = 12,
  T1b = 13;

// ops for which zeros in the data would only produce infinities
const NO_ZEROS = new Set<number>([ISA.OP_LOG, ISA.OP_INV, ISA.OP_DIV, ISA.OP_POWF, ISA.OP_MOD, ISA.OP_POW]);

function opSpec(
  dt: Dtype,
  inner: Instr[],
  F: number,
  outer: Instr[] = [],
  dom: [number, number] = [-3, 3],
  seed = 1,
): ProgramSpec {
  const N = 7,
    M = 37;
  const [lo, hi] = dom;
  const zeros = ![...inner, ...outer].some((ins) => NO_ZEROS.has(ins[0]));
  const data = (n: number, s: number): number[] =>
    randArray(n, lo, hi, seed * 100 + s).map((v, q) => (zeros && q % 11 === 5 ? 0 : v));
  const regs: RegSpec[] = [
    { kind: 'inner', dim: 3, data: data(M * 3, 1) },
    { kind: 'inner', dim: 3, data: data(M * 3, 2) },
    { kind: 'inner', dim: 1, data: data(M, 3) },
    { kind: 'outer', dim: 3, data: data(N * 3, 4) },
    { kind: 'outer', dim: 3, data: data(N * 3, 5) },
    { kind: 'uniform', dim: 1, values: data(1, 6).map((v) => v || 1.25) },
    { kind: 'uniform', dim: 3, values: data(3, 7).map((v) => v || 0.75) },
    { kind: 'block', dim: 3 },
    { kind: 'block', dim: 1 },
    { kind: 'uniform', dim: 3 },
    { kind: 'uniform', dim: 1 },
    { kind: 'inner', dim: 3, data: randArray(M * 3, 0.5, 2, seed * 100 + 8) },
    { kind: 'block', dim: 3 },
    { kind: 'block', dim: 1 },
  ];
  return { dtype: dt, N, M, B: 16, regs, outer, inner, red: ISA.RED_SUM, F };
}

const UNARY: [string, number, number[], [number, number]][] = [
  ['COPY', ISA.OP_COPY, [0], [-3, 3]],
  ['NEG', ISA.OP_NEG, [0], [-3, 3]],
  ['ABS', ISA.OP_ABS, [0], [-3, 3]],
  ['EXP', ISA.OP_EXP, [0], [-5, 5]],
  ['LOG', ISA.OP_LOG, [0], [0.01, 5]],
  ['SQRT', ISA.OP_SQRT, [0], [0, 5]],
  ['RSQRT', ISA.OP_RSQRT, [0], [0, 5]],
  ['SQUARE', ISA.OP_SQUARE, [0], [-3, 3]],
  ['INV', ISA.OP_INV, [0], [0.1, 3]],
  ['SIN', ISA.OP_SIN, [0], [-10, 10]],
  ['COS', ISA.OP_COS, [0], [-10, 10]],
  ['SIGN', ISA.OP_SIGN, [0], [-3, 3]],
  ['STEP', ISA.OP_STEP, [0], [-3, 3]],
  ['RELU', ISA.OP_RELU, [0], [-3, 3]],
  ['XLOGX', ISA.OP_XLOGX, [0], [0, 4]],
  ['SINXDIVX', ISA.OP_SINXDIVX, [0], [-6, 6]],
  ['ROUND', ISA.OP_ROUND, [2, 0, -1], [-300, 300]],
  ['POW', ISA.OP_POW, [3, 2, 0, 1, -1, -2, 7], [0.5, 1.5]],
  ['FLOOR', ISA.OP_FLOOR, [0], [-3, 3]],
  ['ATAN', ISA.OP_ATAN, [0], [-6, 6]],
  ['ASIN', ISA.OP_ASIN, [0], [-1, 1]],
  ['ACOS', ISA.OP_ACOS, [0], [-1, 1]],
];
const BINARY: [string, number, [number, number]][] = [
  ['ADD', ISA.OP_ADD, [-3, 3]],
  ['SUB', ISA.OP_SUB, [-3, 3]],
  ['MUL', ISA.OP_MUL, [-3, 3]],
  ['DIV', ISA.OP_DIV, [0.2, 3]],
  ['POWF', ISA.OP_POWF, [0.2, 2]],
  ['EQ', ISA.OP_EQ, [-1, 1]],
  ['NE', ISA.OP_NE, [-1, 1]],
  ['LT', ISA.OP_LT, [-3, 3]],
  ['LE', ISA.OP_LE, [-1, 1]],
  ['GT', ISA.OP_GT, [-3, 3]],
  ['GE', ISA.OP_GE, [-1, 1]],
  ['MIN', ISA.OP_MIN, [-3, 3]],
  ['MAX', ISA.OP_MAX, [-3, 3]],
  ['ATAN2', ISA.OP_ATAN2, [-3, 3]],
];
const TERNARY: [string, number, [number, number]][] = [
  ['CLAMP', ISA.OP_CLAMP, [-3, 3]],
  ['IFELSE', ISA.OP_IFELSE, [-3, 3]],
  ['MOD', ISA.OP_MOD, [0.3, 3]],
];

describe('every opcode inside a RED_SUM', () => {
  for (const dt of DTYPES) {
    const tol = TOL[dt];
    for (const [name, op, auxes, dom] of UNARY) {
      it(`${dt} ${name}: block, broadcast block, uniform, broadcast uniform, outer code`, () => {
        const approx = APPROX.has(op) ? 10 : 1;
        for (const aux of auxes) {
          for (const src of [X, X1, U, P1]) check(opSpec(dt, [[op, T, src, 0, 0, aux]], T, [], dom, op), tol * approx);
          // computed by the outer code into a uniform scratch, then used in the inner code
          check(opSpec(dt, [[ISA.OP_MUL, T, W, S3]], T, [[op, S3, U, 0, 0, aux]], dom, op + 50), tol * approx);
          // in place on a block register
          check(
            opSpec(
              dt,
              [
                [ISA.OP_COPY, T, X],
                [op, T, T, 0, 0, aux],
              ],
              T,
              [],
              dom,
              op + 70,
            ),
            tol * approx,
          );
        }
      });
    }
    it(`${dt} ONEHOT from a block, a uniform and in the outer code`, () => {
      const dom: [number, number] = [-1.2, 3.7];
      check(opSpec(dt, [[ISA.OP_ONEHOT, T, X1]], T, [], dom), 0);
      check(opSpec(dt, [[ISA.OP_ONEHOT, T, P1]], T, [], dom), 0);
      check(opSpec(dt, [[ISA.OP_ONEHOT, T1, X1]], T1, [], dom), 0);
      const halves = opSpec(dt, [[ISA.OP_ONEHOT, T, X1]], T);
      halves.regs[X1] = { kind: 'inner', dim: 1, data: Array.from({ length: 37 }, (_, j) => (j % 9) / 2 - 1) }; // -1, -0.5, ..., 3
      check(halves, 0);
      check(opSpec(dt, [[ISA.OP_MUL, T, W, S3]], T, [[ISA.OP_ONEHOT, S3, P1]], dom), TOL[dt]);
    });
    for (const [name, op, dom] of BINARY) {
      it(`${dt} ${name} with block/uniform operands and broadcasting`, () => {
        const approx = APPROX.has(op) ? 10 : 1;
        const pairs: [number, number][] = [
          [X, Y],
          [X, U],
          [U, X],
          [X1, P3],
          [P1, X],
          [U, V],
          [X, X1],
          [X1, U],
          [U, P1],
        ];
        for (const [a, b] of pairs) check(opSpec(dt, [[op, T, a, b]], T, [], dom, op), tol * approx);
        check(opSpec(dt, [[op, T1, X1, P1]], T1, [], dom, op + 1), tol * approx);
        check(opSpec(dt, [[ISA.OP_MUL, T, W, S3]], T, [[op, S3, U, V]], dom, op + 50), tol * approx);
        check(opSpec(dt, [[ISA.OP_MUL, T, W, S3]], T, [[op, S3, P1, V]], dom, op + 51), tol * approx);
      });
    }
    it(`${dt} RED_SUM of a last MUL (folded as a sum of products), in place and broadcast`, () => {
      check(
        opSpec(
          dt,
          [
            [ISA.OP_COPY, T, X],
            [ISA.OP_MUL, T, T, X1],
          ],
          T,
        ),
        tol,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_COPY, T, X],
            [ISA.OP_MUL, T, U, T],
          ],
          T,
        ),
        tol,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_SQDIST, T1, U, X],
            [ISA.OP_MUL, T1, T1, T1],
          ],
          T1,
        ),
        tol,
      );
      check(opSpec(dt, [[ISA.OP_MUL, T, X1, Y]], T), tol);
      check(opSpec(dt, [[ISA.OP_MUL, T, U, P1]], T), tol); // uniform x uniform: not folded
    });
    it(`${dt} comparisons of equal values`, () => {
      for (const [, op] of BINARY.filter(([, o]) => o >= ISA.OP_EQ && o <= ISA.OP_GE)) {
        check(opSpec(dt, [[op, T, X, X]], T), 0);
        check(opSpec(dt, [[op, T, U, U]], T), 0);
      }
    });
    for (const [name, op, dom] of TERNARY) {
      it(`${dt} ${name} with block/uniform operands and broadcasting`, () => {
        const triples: [number, number, number][] = [
          [X, Y, W],
          [X, U, V],
          [U, X, Y],
          [X1, P3, Y],
          [U, V, P3],
          [X, P1, V],
          [P1, X1, Y],
        ];
        for (const [a, b, c] of triples) {
          check(opSpec(dt, [[op, T, a, b, c]], T, [], dom, op), tol);
        }
        check(opSpec(dt, [[ISA.OP_MUL, T, W, S3]], T, [[op, S3, U, V, P3]], dom, op + 50), tol);
      });
    }
    it(`${dt} ROWSUM, DOT, SQDIST, WSQDIST: block/uniform operands, broadcasting, outer code`, () => {
      for (const a of [X, U, X1]) check(opSpec(dt, [[ISA.OP_ROWSUM, T1, a]], T1), tol);
      const pairs: [number, number][] = [
        [U, X],
        [X, U],
        [X, Y],
        [U, V],
        [X1, X],
        [P1, X],
        [X, P3],
        [X1, U],
      ];
      for (const op of [ISA.OP_DOT, ISA.OP_SQDIST]) {
        for (const [a, b] of pairs) check(opSpec(dt, [[op, T1, a, b]], T1), tol);
      }
      const triples: [number, number, number][] = [
        [U, X, P3],
        [U, X, W],
        [X, Y, P1],
        [X, U, W],
        [U, V, X],
        [U, V, P3],
        [X, Y, W],
        [X1, X, P1],
        [U, V, P1],
      ];
      for (const [a, b, c] of triples) check(opSpec(dt, [[ISA.OP_WSQDIST, T1, a, b, c]], T1), tol);
      for (const op of [ISA.OP_ROWSUM, ISA.OP_DOT, ISA.OP_SQDIST, ISA.OP_WSQDIST]) {
        check(opSpec(dt, [[ISA.OP_MUL, T, W, S1]], T, [[op, S1, U, V, P3]]), tol);
      }
      // dst is a row of a block register (a view) and the sum is used further
      const spec = opSpec(dt, [], T);
      const vw = spec.regs.length;
      spec.regs.push({ kind: 'view', parent: T, offset: 1, dim: 1 });
      spec.inner = [
        [ISA.OP_COPY, T, X],
        [ISA.OP_SQDIST, vw, U, Y],
      ];
      check(spec, tol);
      spec.inner = [
        [ISA.OP_SQDIST, vw, U, Y],
        [ISA.OP_MUL, T1, vw, P1],
      ];
      check({ ...spec, F: T1 }, tol);
    });
    it(`${dt} fused MUL by a uniform then EXP or ADD, and the unfused forms`, () => {
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, T, X, P1],
            [ISA.OP_EXP, T, T],
          ],
          T,
        ),
        tol * 10,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, T, U, X],
            [ISA.OP_EXP, T, T],
          ],
          T,
        ),
        tol * 10,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, T1, X1, P1],
            [ISA.OP_EXP, T1, T1],
          ],
          T1,
        ),
        tol * 10,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, T, X, P3],
            [ISA.OP_EXP, T, T],
          ],
          T,
        ),
        tol * 10,
      );
      // MUL by a uniform then ADD (fused into one pass): block, uniform and broadcast addends
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, T, X, P1],
            [ISA.OP_ADD, T, T, Y],
          ],
          T,
        ),
        tol,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, T, P3, X],
            [ISA.OP_ADD, T, T, U],
          ],
          T,
        ),
        tol,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, T, X1, P1],
            [ISA.OP_ADD, T, T, X1],
          ],
          T,
        ),
        tol,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_COPY, T, X],
            [ISA.OP_MUL, T, T, U],
            [ISA.OP_ADD, T, T, X],
          ],
          T,
        ),
        tol,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_COPY, T, X],
            [ISA.OP_MUL, T, T, P1],
            [ISA.OP_ADD, T, T, T],
          ],
          T,
        ),
        tol,
      );
      // SSA form, as the compiler emits it (fused when the intermediate is dead)
      check(
        opSpec(
          dt,
          [
            [ISA.OP_SQDIST, T1, U, X],
            [ISA.OP_MUL, T1b, T1, P1],
            [ISA.OP_EXP, T1, T1b],
          ],
          T1,
        ),
        tol * 10,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, Tb, P3, X],
            [ISA.OP_EXP, T, Tb],
            [ISA.OP_MUL, T, T, Y],
          ],
          T,
        ),
        tol * 10,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, Tb, X, P3],
            [ISA.OP_ADD, T, Y, Tb],
          ],
          T,
        ),
        tol,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, Tb, X1, U],
            [ISA.OP_ADD, T, Tb, P1],
          ],
          T,
        ),
        tol,
      );
      // the intermediate is read later, reduced, or overlapped: not fused, still right
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, Tb, X, P3],
            [ISA.OP_EXP, T, Tb],
            [ISA.OP_ADD, T, T, Tb],
          ],
          T,
        ),
        tol * 10,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, Tb, X, P3],
            [ISA.OP_ADD, T, Tb, Y],
            [ISA.OP_SQDIST, T1, T, Tb],
          ],
          T1,
        ),
        tol,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, Tb, X, P3],
            [ISA.OP_EXP, T, Tb],
          ],
          Tb,
        ),
        tol * 10,
      );
      check(
        opSpec(
          dt,
          [
            [ISA.OP_MUL, Tb, X, P3],
            [ISA.OP_ADD, T, Tb, Tb],
          ],
          T,
        ),
        tol,
      );
      const sv = opSpec(dt, [], T);
      const v0 = sv.regs.length;
      sv.regs.push({ kind: 'view', parent: Tb, offset: 0, dim: 1 }, { kind: 'view', parent: Tb, offset: 2, dim: 1 });
      sv.inner = [
        [ISA.OP_COPY, Tb, X],
        [ISA.OP_MUL, v0, X1, P1],
        [ISA.OP_ADD, T1, v0, v0 + 1],
      ];
      check({ ...sv, F: T1 }, tol);
      sv.inner = [
        [ISA.OP_COPY, Tb, X],
        [ISA.OP_MUL, v0, X1, P1],
        [ISA.OP_EXP, T1, v0],
        [ISA.OP_MUL, T1, T1, v0 + 1],
      ];
      check({ ...sv, F: T1 }, tol * 10);
      // not fusable: EXP writes elsewhere, MUL result is used later
      const spec = opSpec(
        dt,
        [
          [ISA.OP_MUL, T1, X1, P1],
          [ISA.OP_EXP, T, T1],
          [ISA.OP_ADD, T, T, T1],
        ],
        T,
      );
      check(spec, tol * 10);
    });
  }
});

// ------------------------------------------------------------------------------------------------
// special values, elementwise, read back through RED_KMINARGKMIN with K = M

const SPECIALS = [0, -0, 1, -1, 0.5, -0.5, 2.5, -2.5, Infinity, -Infinity, NaN, 1e-40, 1e30, -1e30, 3, 1e6];

/** The per-j values of F (d = 1) via K-min with K = M: NaN entries are the ones never selected. */
function readBack(spec: ProgramSpec): number[] {
  const s: ProgramSpec = { ...spec, red: ISA.RED_KMINARGKMIN, K: spec.M };
  const got = runProgram(kernel, s);
  expect(got.code).toBe(ISA.OK);
  const out = new Array<number>(spec.M).fill(NaN);
  const seen = new Set<number>();
  for (let t = 0; t < spec.M; t++) {
    const j = got.indices![t]!;
    if (j < 0) {
      expect(got.values![t]).toBeNaN();
      continue;
    }
    expect(seen.has(j)).toBe(false);
    seen.add(j);
    out[j] = got.values![t]!;
  }
  return out;
}

describe('special values elementwise (read back through K-min)', () => {
  for (const dt of DTYPES) {
    const R = rounder(dt);
    const xs = SPECIALS.map(R);
    const approxTol = dt === 'f32' ? 4e-7 : 2e-15;
    it(`${dt} unary ops on 0, -0, +-inf, NaN, subnormals, huge values`, () => {
      const ops: [string, number, number[]][] = [
        ...UNARY.map(([n, o, a]): [string, number, number[]] => [n, o, a]),
        ['ONEHOT', ISA.OP_ONEHOT, [0]],
      ];
      for (const [name, op, auxes] of ops) {
        for (const aux of auxes) {
          const spec: ProgramSpec = {
            dtype: dt,
            N: 2,
            M: xs.length,
            B: 8,
            regs: [
              { kind: 'inner', dim: 1, data: xs },
              { kind: 'block', dim: 1 },
            ],
            inner: [[op, 1, 0, 0, 0, aux]],
            red: ISA.RED_SUM,
            F: 1,
          };
          const got = readBack(spec);
          xs.forEach((x, j) => {
            const want = unaryRef(op, x, aux, 0, R);
            const g = got[j]!;
            let ok = close(g, want, APPROX.has(op) ? approxTol * 4 : 0, 0);
            if (op === ISA.OP_EXP && Math.abs(want) < (dt === 'f32' ? 1.18e-38 : 2.3e-308)) ok = g === 0 || g === want;
            if (op === ISA.OP_SINXDIVX && Math.abs(x) === Infinity) ok = Number.isNaN(g) || g === 0; // sin(inf) = NaN
            if (!ok) expect(`${name}(${x}, aux ${aux}) = ${g}`).toBe(`${name}(${x}, aux ${aux}) = ${want}`);
          });
        }
      }
    });
    it(`${dt} binary and ternary ops on pairs of special values`, () => {
      const a: number[] = [],
        b: number[] = [];
      for (const p of xs)
        for (const q of xs) {
          a.push(p);
          b.push(q);
        }
      for (const [name, op] of BINARY) {
        const spec: ProgramSpec = {
          dtype: dt,
          N: 1,
          M: a.length,
          B: 32,
          regs: [
            { kind: 'inner', dim: 1, data: a },
            { kind: 'inner', dim: 1, data: b },
            { kind: 'block', dim: 1 },
          ],
          inner: [[op, 2, 0, 1]],
          red: ISA.RED_SUM,
          F: 2,
        };
        const got = readBack(spec);
        a.forEach((x, j) => {
          const want = binaryRef(op, x, b[j]!, R);
          const g = got[j]!;
          let ok = close(g, want, APPROX.has(op) ? approxTol * 8 : 0, 0);
          if (op === ISA.OP_POWF && Math.abs(want) < (dt === 'f32' ? 1.18e-38 : 2.3e-308)) ok = g === 0 || g === want; // exp flushes to 0
          if (!ok) expect(`${name}(${x}, ${b[j]}) = ${g}`).toBe(`${name}(${x}, ${b[j]}) = ${want}`);
        });
      }
      for (const [name, op] of TERNARY) {
        const c = a.map((_, q) => xs[(q * 7) % xs.length]!);
        const spec: ProgramSpec = {
          dtype: dt,
          N: 1,
          M: a.length,
          B: 32,
          regs: [
            { kind: 'inner', dim: 1, data: a },
            { kind: 'inner', dim: 1, data: b },
            { kind: 'inner', dim: 1, data: c },
            { kind: 'block', dim: 1 },
          ],
          inner: [[op, 3, 0, 1, 2]],
          red: ISA.RED_SUM,
          F: 3,
        };
        const got = readBack(spec);
        a.forEach((x, j) => {
          const want = ternaryRef(op, x, b[j]!, c[j]!, R);
          if (!close(got[j]!, want, 0, 0))
            expect(`${name}(${x}, ${b[j]}, ${c[j]}) = ${got[j]}`).toBe(`${name}(${x}, ${b[j]}, ${c[j]}) = ${want}`);
        });
      }
    });
  }
});

// ------------------------------------------------------------------------------------------------
// reductions

const ALL_REDS: [string, number][] = [
  ['SUM', ISA.RED_SUM],
  ['LSE', ISA.RED_LSE],
  ['LSE_W', ISA.RED_LSE_W],
  ['SSMW', ISA.RED_SSMW],
  ['MIN', ISA.RED_MIN],
  ['MAX', ISA.RED_MAX],
  ['ARGMIN', ISA.RED_ARGMIN],
  ['ARGMAX', ISA.RED_ARGMAX],
  ['MINARGMIN', ISA.RED_MINARGMIN],
  ['MAXARGMAX', ISA.RED_MAXARGMAX],
  ['KMIN', ISA.RED_KMIN],
  ['ARGKMIN', ISA.RED_ARGKMIN],
  ['KMINARGKMIN', ISA.RED_KMINARGKMIN],
];

/** F = -g |x_i - y_j|^2 (+ an inner row for d = 2), G = weights (e = 2) */
function redSpec(
  dt: Dtype,
  red: number,
  N: number,
  M: number,
  B: number,
  d: number,
  K = 5,
  seed = 7,
  D = 3,
): ProgramSpec {
  const regs: RegSpec[] = [
    { kind: 'outer', dim: D, data: randArray(N * D, 0, 1, seed) },
    { kind: 'inner', dim: D, data: randArray(M * D, 0, 1, seed + 1) },
    { kind: 'uniform', dim: 1, values: [-3.5] },
    { kind: 'block', dim: 2 },
    { kind: 'view', parent: 3, offset: 0, dim: 1 },
    { kind: 'view', parent: 3, offset: 1, dim: 1 },
    { kind: 'inner', dim: 2, data: randArray(M * 2, 0.1, 2, seed + 2) },
    { kind: 'inner', dim: 1, data: randArray(M, -2, 2, seed + 3) },
  ];
  const inner: Instr[] = [
    [ISA.OP_SQDIST, 4, 0, 1],
    [ISA.OP_MUL, 4, 4, 2],
  ];
  if (d === 2) inner.push([ISA.OP_ADD, 5, 4, 7]);
  const weighted = red === ISA.RED_LSE_W || red === ISA.RED_SSMW;
  return { dtype: dt, N, M, B, regs, inner, red, F: d === 2 && !weighted ? 3 : 4, G: weighted ? 6 : -1, K };
}

describe('reductions over many sizes', () => {
  const Ms = (B: number): number[] => [1, 3, 5, B, B + 1, 1000, 1003];
  for (const dt of DTYPES) {
    for (const [name, red] of ALL_REDS) {
      it(`${dt} ${name}: M = 1, 3, 5, B, B+1, 1000, 1003; N = 1, 7; d = 1, 2`, () => {
        const tol = red === ISA.RED_SUM ? TOL[dt] : red <= ISA.RED_SSMW ? (dt === 'f32' ? 2e-5 : 1e-12) : 0;
        for (const B of [16, 64]) {
          for (const M of Ms(B)) {
            for (const N of [1, 7]) {
              for (const d of red === ISA.RED_LSE_W || red === ISA.RED_SSMW ? [1] : [1, 2]) {
                check(redSpec(dt, red, N, M, B, d, M < 10 ? 7 : 5, M + N), tol);
              }
            }
          }
        }
      });
    }
  }

  for (const dt of DTYPES) {
    it(`${dt} K-min with K = 1, K > M and K = M`, () => {
      for (const red of [ISA.RED_KMIN, ISA.RED_ARGKMIN, ISA.RED_KMINARGKMIN]) {
        for (const [M, K] of [
          [20, 1],
          [5, 9],
          [37, 37],
          [100, 16],
        ])
          check(redSpec(dt, red, 3, M!, 8, 2, K), 0);
      }
    });
    it(`${dt} results do not depend on chunking nor on the outer tiling (accumulator size)`, () => {
      for (const [, red] of ALL_REDS) {
        const base = redSpec(dt, red, 13, 301, 32, red === ISA.RED_LSE_W || red === ISA.RED_SSMW ? 1 : 2);
        const outDim = outDimOf(base);
        const d = base.regs[base.F]!.dim,
          e = base.G !== undefined && base.G >= 0 ? base.regs[base.G]!.dim : 0;
        const minAcc = accBytesFor(red, d, e, base.K ?? 0, dt);
        const a = runProgram(kernel, { ...base, accBytes: minAcc });
        const b = runProgram(kernel, { ...base, accBytes: minAcc * 3 + 8 }, { chunks: 4 });
        const c = runProgram(kernel, { ...base, accBytes: minAcc * 100 }, { chunks: 3 });
        for (const r of [a, b, c]) expect(r.code).toBe(ISA.OK);
        expect(b.outDim).toBe(outDim);
        if (a.values) {
          expect(Array.from(b.values!)).toEqual(Array.from(a.values));
          expect(Array.from(c.values!)).toEqual(Array.from(a.values));
        }
        if (a.indices) {
          expect(Array.from(b.indices!)).toEqual(Array.from(a.indices));
          expect(Array.from(c.indices!)).toEqual(Array.from(a.indices));
        }
      }
    });
  }
});

/** A program whose F is an inner variable with the given per-j values (d rows), B = 8. */
function valuesSpec(dt: Dtype, red: number, F: number[][], K = 3, B = 8, G?: number[][]): ProgramSpec {
  const M = F.length,
    d = F[0]!.length;
  const regs: RegSpec[] = [{ kind: 'inner', dim: d, data: F.flat() }];
  if (G) regs.push({ kind: 'inner', dim: G[0]!.length, data: G.flat() });
  return { dtype: dt, N: 1, M, B, regs, inner: [], red, F: 0, G: G ? 1 : -1, K };
}

describe('reduction semantics: ties, NaN, infinities', () => {
  for (const dt of DTYPES) {
    it(`${dt} ties go to the lowest index; NaN is never selected`, () => {
      const col = [3, 1, 2, 1, NaN, 1, 5, NaN, 0.5, 7, 0.5, 2, NaN, 9, 1, 0.5, 4, 4, 9, 9];
      const F = col.map((v, j) => [v, -v, j % 3 === 0 ? NaN : 2]);
      const run = (red: number, K = 3) => runProgram(kernel, valuesSpec(dt, red, F, K));
      expect(Array.from(run(ISA.RED_ARGMIN).indices!)).toEqual([8, 13, 1]);
      expect(Array.from(run(ISA.RED_ARGMAX).indices!)).toEqual([13, 8, 1]);
      const mm = run(ISA.RED_MINARGMIN);
      expect(Array.from(mm.values!)).toEqual([0.5, -9, 2]);
      expect(Array.from(mm.indices!)).toEqual([8, 13, 1]);
      expect(Array.from(run(ISA.RED_MIN).values!)).toEqual([0.5, -9, 2]);
      expect(Array.from(run(ISA.RED_MAX).values!)).toEqual([9, -0.5, 2]);
      const km = run(ISA.RED_KMINARGKMIN, 6);
      // q = t*d + k
      expect(Array.from(km.indices!)).toEqual([8, 13, 1, 10, 18, 2, 15, 19, 4, 1, 9, 5, 3, 6, 7, 5, 16, 8]);
      expect(Array.from(km.values!)).toEqual([0.5, -9, 2, 0.5, -9, 2, 0.5, -9, 2, 1, -7, 2, 1, -5, 2, 1, -4, 2]);
      check(valuesSpec(dt, ISA.RED_KMINARGKMIN, F, 6), 0);
      for (const [, red] of ALL_REDS.filter(([, r]) => r >= ISA.RED_MIN)) check(valuesSpec(dt, red, F, 4), 0);
    });
    it(`${dt} all-NaN rows and fewer than K values give NaN and -1`, () => {
      const F = Array.from({ length: 19 }, (_, j) => [NaN, j === 11 ? 4 : NaN, j % 5 === 0 ? j : NaN]);
      const mm = runProgram(kernel, valuesSpec(dt, ISA.RED_MINARGMIN, F));
      expect(mm.values![0]).toBeNaN();
      expect(Array.from(mm.indices!)).toEqual([-1, 11, 0]);
      expect(Array.from(mm.values!.slice(1))).toEqual([4, 0]);
      const xm = runProgram(kernel, valuesSpec(dt, ISA.RED_MAXARGMAX, F));
      expect(Array.from(xm.indices!)).toEqual([-1, 11, 15]);
      const km = runProgram(kernel, valuesSpec(dt, ISA.RED_KMINARGKMIN, F, 5));
      expect(Array.from(km.indices!)).toEqual([-1, 11, 0, -1, -1, 5, -1, -1, 10, -1, -1, 15, -1, -1, -1]);
      const kv = Array.from(km.values!);
      expect(kv.filter((v) => !Number.isNaN(v))).toEqual([4, 0, 5, 10, 15]);
      expect(Array.from(runProgram(kernel, valuesSpec(dt, ISA.RED_ARGKMIN, F, 5)).indices!)).toEqual(
        Array.from(km.indices!),
      );
      expect(runProgram(kernel, valuesSpec(dt, ISA.RED_KMIN, F, 5)).values![14]).toBeNaN();
    });
    it(`${dt} infinite values are selectable`, () => {
      const F = Array.from({ length: 13 }, (_, j) => [Infinity, -Infinity, j === 7 ? Infinity : NaN]);
      const mm = runProgram(kernel, valuesSpec(dt, ISA.RED_MINARGMIN, F));
      expect(Array.from(mm.values!)).toEqual([Infinity, -Infinity, Infinity]);
      expect(Array.from(mm.indices!)).toEqual([0, 0, 7]);
      const xm = runProgram(kernel, valuesSpec(dt, ISA.RED_MAXARGMAX, F));
      expect(Array.from(xm.values!)).toEqual([Infinity, -Infinity, Infinity]);
      expect(Array.from(xm.indices!)).toEqual([0, 0, 7]);
      const km = runProgram(kernel, valuesSpec(dt, ISA.RED_KMINARGKMIN, F, 2));
      expect(Array.from(km.indices!)).toEqual([0, 0, 7, 1, 1, -1]);
    });
    it(`${dt} K-min keeps ascending order with ties by index across blocks and lanes`, () => {
      const r = rng(99);
      for (const M of [7, 40, 333]) {
        const F = Array.from({ length: M }, () => [
          Math.floor(r() * 6),
          Math.floor(r() * 50) / 4,
          r() < 0.2 ? NaN : Math.floor(r() * 3),
        ]);
        for (const K of [1, 4, 10]) for (const B of [4, 8, 64]) check(valuesSpec(dt, ISA.RED_KMINARGKMIN, F, K, B), 0);
        // descending input: every value is inserted
        const desc = Array.from({ length: M }, (_, j) => [M - j, -(j % 7), j]);
        check(valuesSpec(dt, ISA.RED_KMINARGKMIN, desc, 10, 16), 0);
      }
    });
    it(`${dt} LSE with huge, tiny, -inf, +inf and NaN values`, () => {
      const tol = dt === 'f32' ? 2e-6 : 1e-13;
      const lse = (cols: number[][], B = 8) => {
        const got = runProgram(kernel, valuesSpec(dt, ISA.RED_LSE, cols, 0, B));
        expect(got.code).toBe(ISA.OK);
        return Array.from(got.values!);
      };
      const M = 30;
      const big = Array.from({ length: M }, (_, j) => [
        j === 20 ? 3e4 : 3e4 - j, // max in a late block: rescaling
        -1e4 - j / 7, // all very negative (exp underflows)
        -Infinity, // all -inf
        j === 3 ? Infinity : j, // +inf
        j === 25 ? NaN : 1, // NaN
        j < 10 ? -Infinity : -j, // -inf mixed with finite
        j % 2 ? 80 : -80, // exp(80) overflows float32 without the max shift
      ]);
      const got = lse(big);
      const col = (k: number) => big.map((f) => f[k]!);
      const want = [0, 1, 2, 3, 4, 5, 6].map((k) => lseOf(col(k).map(rounder(dt))));
      expect(got[2]).toBe(-Infinity);
      expect(got[3]).toBe(Infinity);
      expect(got[4]).toBeNaN();
      for (const k of [0, 1, 5, 6]) expect(close(got[k]!, want[k]!, tol, 0)).toBe(true);
      expect(close(got[6]!, 80 + Math.log(15), tol, 0)).toBe(true);
      // all -inf over several blocks then one finite value in the last block
      const late = Array.from({ length: 27 }, (_, j) => [j === 26 ? 2 : -Infinity]);
      expect(close(lse(late)[0]!, 2, tol, 0)).toBe(true);
      // NaN in a block with finite values, +inf in a later block: NaN wins
      const nanThenInf = Array.from({ length: 20 }, (_, j) => [j === 2 ? NaN : j === 17 ? Infinity : 1]);
      expect(lse(nanThenInf)[0]).toBeNaN();
      // NaN alone in a block whose other values are -inf
      const nanBlock = Array.from({ length: 20 }, (_, j) => [j === 9 ? NaN : j < 8 ? 0 : -Infinity]);
      expect(lse(nanBlock)[0]).toBeNaN();
    });
    it(`${dt} LSE_W and SSMW with uniform or block weights and extreme F`, () => {
      const tol = dt === 'f32' ? 2e-5 : 1e-12;
      const M = 45;
      const F = Array.from({ length: M }, (_, j) => [j === 30 ? 500 : 500 - j / 3]);
      const G = Array.from({ length: M }, (_, j) => [1 + j / 10, 2 - j / 50, 0.5]);
      for (const red of [ISA.RED_LSE_W, ISA.RED_SSMW]) {
        check(valuesSpec(dt, red, F, 0, 8, G), tol);
        check(
          valuesSpec(
            dt,
            red,
            F.map(([f]) => [-f!]),
            0,
            16,
            G,
          ),
          tol,
        );
        // uniform weights / uniform F
        const s = valuesSpec(dt, red, F, 0, 8);
        s.regs.push({ kind: 'uniform', dim: 2, values: [1.5, 0.25] });
        s.G = 1;
        check(s, tol);
        const s2 = valuesSpec(
          dt,
          red,
          G.map(([g]) => [g!]),
          0,
          8,
        );
        s2.regs = [
          { kind: 'outer', dim: 1, data: [0.7] },
          { kind: 'inner', dim: 3, data: G.flat() },
        ];
        s2.F = 0;
        s2.G = 1;
        check(s2, tol);
      }
      // all -inf: LSE_W gives -inf, SSMW NaN (0/0)
      const minf = Array.from({ length: 10 }, () => [-Infinity]);
      const g1 = Array.from({ length: 10 }, () => [1]);
      expect(runProgram(kernel, valuesSpec(dt, ISA.RED_LSE_W, minf, 0, 8, g1)).values![0]).toBe(-Infinity);
      expect(runProgram(kernel, valuesSpec(dt, ISA.RED_SSMW, minf, 0, 8, g1)).values![0]).toBeNaN();
    });
    it(`${dt} reductions of a uniform F (a formula that does not depend on j)`, () => {
      for (const [, red] of ALL_REDS) {
        const weighted = red === ISA.RED_LSE_W || red === ISA.RED_SSMW;
        const spec: ProgramSpec = {
          dtype: dt,
          N: 5,
          M: 23,
          B: 8,
          regs: [
            { kind: 'outer', dim: weighted ? 1 : 2, data: randArray(10, -2, 2, red) },
            { kind: 'inner', dim: 2, data: randArray(46, 0, 1, 3) },
          ],
          inner: [],
          red,
          F: 0,
          G: weighted ? 1 : -1,
          K: 4,
        };
        check(spec, dt === 'f32' ? 2e-6 : 1e-13);
      }
    });
  }
});

// ------------------------------------------------------------------------------------------------
// block-sparse reductions (H_RANGES)

/** Runs a block-sparse spec and compares with the reference over the visited inner sequences. */
function checkSparse(spec: ProgramSpec, rtol: number, chunks = 1): void {
  const cl = spec.clusters!;
  const seqs = new Map<number, number[]>();
  cl.outer.forEach(([a, z], c) => {
    const seq = cl.inner[c]!.flatMap(([s0, e0]) => Array.from({ length: e0 - s0 }, (_, q) => s0 + q));
    for (let i = a; i < z; i++) seqs.set(i, seq);
  });
  const got = runProgram(kernel, spec, { chunks });
  expect(got.code).toBe(ISA.OK);
  const ref = reference(spec, (i) => seqs.get(i) ?? []);
  const od = got.outDim;
  const sentinel =
    spec.dtype === 'f32'
      ? new Float32Array(new Int32Array([UNWRITTEN]).buffer)[0]!
      : new Float64Array(new Int32Array([UNWRITTEN, UNWRITTEN]).buffer)[0]!;
  const bad: string[] = [];
  for (let i = 0; i < spec.N; i++) {
    for (let q = i * od; q < (i + 1) * od; q++) {
      if (!seqs.has(i)) {
        if (got.values && got.values[q] !== sentinel) bad.push(`[${q}] written: ${got.values[q]}`);
        if (got.indices && got.indices[q] !== UNWRITTEN) bad.push(`[${q}] index written: ${got.indices[q]}`);
        continue;
      }
      if (got.values && !close(got.values[q]!, ref.values[q]!, rtol, 0, ref.scale[q]!))
        bad.push(`[${q}] got ${got.values[q]} want ${ref.values[q]}`);
      if (got.indices && got.indices[q] !== ref.indices[q])
        bad.push(`[${q}] index ${got.indices[q]} want ${ref.indices[q]}`);
    }
  }
  expect(bad.slice(0, 5)).toEqual([]);
}

/** Sorted disjoint random inner ranges of [0, M). */
function randomRanges(M: number, count: number, r: () => number): [number, number][] {
  const cuts = Array.from({ length: 2 * count }, () => Math.floor(r() * (M + 1))).sort((a, b) => a - b);
  return Array.from({ length: count }, (_, q) => [cuts[2 * q]!, cuts[2 * q + 1]!] as [number, number]);
}

describe('block-sparse reductions (clusters of outer indices, ranges of inner indices)', () => {
  for (const dt of DTYPES) {
    for (const [name, red] of ALL_REDS) {
      it(`${dt} ${name} over clusters with unaligned, single, empty and tile-crossing ranges`, () => {
        const tol = red === ISA.RED_SUM ? TOL[dt] : red <= ISA.RED_SSMW ? (dt === 'f32' ? 2e-5 : 1e-12) : 0;
        const weighted = red === ISA.RED_LSE_W || red === ISA.RED_SSMW;
        for (const B of [8, 16, 64]) {
          const spec = redSpec(dt, red, 23, 301, B, weighted ? 1 : 2, 6, B);
          spec.clusters = {
            outer: [
              [0, 5],
              [5, 6],
              [8, 15],
              [15, 15],
              [15, 20],
              [20, 23],
            ],
            inner: [
              [
                [0, 37],
                [100, 117],
                [250, 301],
              ],
              [[3, 4]],
              [
                [17, 18],
                [19, 83],
                [200, 200],
                [290, 299],
              ],
              [[1, 2]],
              [],
              [
                [5, 6],
                [6, 7],
                [9, 13],
                [14, 15],
                [33, 301],
              ],
            ],
          };
          checkSparse(spec, tol);
          checkSparse(spec, tol, 4);
        }
      });
    }
    it(`${dt} random ranges: every start and end offset within a vector and a tile`, () => {
      const r = rng(77);
      for (const red of [
        ISA.RED_SUM,
        ISA.RED_LSE,
        ISA.RED_SSMW,
        ISA.RED_MINARGMIN,
        ISA.RED_MAXARGMAX,
        ISA.RED_KMINARGKMIN,
      ]) {
        const tol = red === ISA.RED_SUM ? TOL[dt] : red <= ISA.RED_SSMW ? (dt === 'f32' ? 2e-5 : 1e-12) : 0;
        const weighted = red === ISA.RED_SSMW;
        const spec = redSpec(dt, red, 12, 157, 8, weighted ? 1 : 2, 5, red);
        spec.clusters = {
          outer: [
            [0, 3],
            [3, 4],
            [4, 8],
            [8, 12],
          ],
          inner: [randomRanges(157, 9, r), randomRanges(157, 1, r), randomRanges(157, 25, r), randomRanges(157, 4, r)],
        };
        checkSparse(spec, tol);
      }
    });
    it(`${dt} ranges visited in a given (unsorted) order with the true inner indices reported`, () => {
      for (const red of [ISA.RED_SUM, ISA.RED_LSE, ISA.RED_ARGMIN, ISA.RED_KMINARGKMIN]) {
        const spec = redSpec(dt, red, 6, 120, 16, 1, 7, red + 3);
        spec.clusters = {
          outer: [[0, 6]],
          inner: [
            [
              [90, 120],
              [3, 11],
              [40, 77],
            ],
          ],
        };
        checkSparse(spec, red === ISA.RED_SUM ? TOL[dt] : red === ISA.RED_LSE ? 2e-5 : 0);
      }
    });
    it(`${dt} block-sparse with outer code, fusions and a uniform F`, () => {
      const spec = opSpec(
        dt,
        [
          [ISA.OP_MUL, Tb, X, P1],
          [ISA.OP_EXP, T, Tb],
          [ISA.OP_MUL, T, T, S3],
        ],
        T,
        [[ISA.OP_ADD, S3, U, P3]],
      );
      spec.clusters = {
        outer: [
          [0, 3],
          [4, 7],
        ],
        inner: [
          [
            [1, 7],
            [9, 30],
          ],
          [[0, 37]],
        ],
      };
      checkSparse(spec, TOL[dt] * 10);
      spec.inner = [
        [ISA.OP_MUL, Tb, X, P1],
        [ISA.OP_ADD, T, Tb, Y],
      ];
      checkSparse({ ...spec, red: ISA.RED_KMINARGKMIN, K: 4 }, 0);
      checkSparse({ ...spec, inner: [], F: U, red: ISA.RED_ARGKMIN, K: 3 }, 0);
      checkSparse({ ...spec, inner: [], F: U, red: ISA.RED_LSE }, 1e-6);
    });
  }
  it('rejects malformed cluster and range tables', () => {
    const base = redSpec('f32', ISA.RED_SUM, 10, 50, 8, 1);
    const run = (outer: [number, number][], inner: [number, number][][], opts: { iEnd?: number } = {}) =>
      runProgram(kernel, { ...base, clusters: { outer, inner } }, opts).code;
    expect(run([[0, 10]], [[[0, 50]]])).toBe(ISA.OK);
    expect(run([[0, 11]], [[[0, 50]]])).toBe(ISA.ERR_BAD_PROGRAM); // outer beyond N
    expect(run([[5, 4]], [[[0, 50]]])).toBe(ISA.ERR_BAD_PROGRAM);
    expect(run([[0, 10]], [[[0, 51]]])).toBe(ISA.ERR_BAD_PROGRAM); // inner beyond M
    expect(run([[0, 10]], [[[7, 6]]])).toBe(ISA.ERR_BAD_PROGRAM);
    expect(run([[0, 10]], [[[0, 50]]], { iEnd: 2 })).toBe(ISA.ERR_BAD_PROGRAM); // beyond the cluster count
  });
});

// ------------------------------------------------------------------------------------------------
// SQDIST / DOT at several dimensions, exact against the float32 emulation

describe('SQDIST and DOT at D = 1, 3, 50, 200', () => {
  for (const dt of DTYPES) {
    for (const D of [1, 3, 50, 200]) {
      it(`${dt} D = ${D}: uniform x block, block x block, in sums and arg-mins`, () => {
        const N = 7,
          M = 1003;
        const regs: RegSpec[] = [
          { kind: 'outer', dim: D, data: randArray(N * D, -1, 1, D) },
          { kind: 'inner', dim: D, data: randArray(M * D, -1, 1, D + 1) },
          { kind: 'inner', dim: D, data: randArray(M * D, -1, 1, D + 2) },
          { kind: 'block', dim: 1 },
          { kind: 'uniform', dim: D, values: randArray(D, 0.5, 2, D + 3) },
        ];
        for (const op of [ISA.OP_SQDIST, ISA.OP_DOT]) {
          for (const [a, b] of [
            [0, 1],
            [1, 0],
            [1, 2],
          ] as [number, number][]) {
            for (const red of [ISA.RED_SUM, ISA.RED_ARGMIN, ISA.RED_MAXARGMAX, ISA.RED_ARGKMIN]) {
              for (const B of [32, 256]) {
                check({ dtype: dt, N, M, B, regs, inner: [[op, 3, a, b]], red, F: 3, K: 10 }, TOL[dt]);
              }
            }
          }
        }
        check(
          {
            dtype: dt,
            N,
            M,
            B: 64,
            regs,
            inner: [[ISA.OP_WSQDIST, 3, 0, 1, 4]],
            red: ISA.RED_KMINARGKMIN,
            F: 3,
            K: 10,
          },
          0,
        );
        check(
          {
            dtype: dt,
            N,
            M,
            B: 64,
            regs,
            inner: [[ISA.OP_WSQDIST, 3, 0, 1, 2]],
            red: ISA.RED_KMINARGKMIN,
            F: 3,
            K: 10,
          },
          0,
        );
      });
    }
  }
});

// ------------------------------------------------------------------------------------------------
// accuracy of long sums

describe('float32 sums', () => {
  it('a sum of 1e6 float32 terms agrees with float64 to 1e-5', () => {
    const M = 1_000_000;
    const data = randArray(M, 0, 1, 2024).map(Math.fround);
    const exact = data.reduce((s, v) => s + v, 0);
    for (const B of [256, 1024, 4096]) {
      const got = runProgram(kernel, {
        dtype: 'f32',
        N: 1,
        M,
        B,
        regs: [
          { kind: 'inner', dim: 1, data },
          { kind: 'block', dim: 1 },
        ],
        inner: [[ISA.OP_COPY, 1, 0]],
        red: ISA.RED_SUM,
        F: 1,
      });
      expect(got.code).toBe(ISA.OK);
      expect(Math.abs(got.values![0]! - exact) / exact).toBeLessThan(1e-5);
    }
    // the float32 result of a float64 accumulation is the rounded exact sum
    const direct = runProgram(kernel, {
      dtype: 'f32',
      N: 2,
      M,
      B: 512,
      regs: [{ kind: 'inner', dim: 1, data }],
      inner: [],
      red: ISA.RED_SUM,
      F: 0,
    });
    expect(Math.abs(direct.values![1]! - exact) / exact).toBeLessThan(1e-6);
  });
});

// ------------------------------------------------------------------------------------------------
// views, error codes

describe('views and validation', () => {
  for (const dt of DTYPES) {
    it(`${dt} views of inner, outer and block registers, and views of views`, () => {
      const N = 4,
        M = 29;
      const regs: RegSpec[] = [
        { kind: 'inner', dim: 5, data: randArray(M * 5, -1, 1, 1) },
        { kind: 'outer', dim: 4, data: randArray(N * 4, -1, 1, 2) },
        { kind: 'view', parent: 0, offset: 1, dim: 3 }, // inner rows 1..3
        { kind: 'view', parent: 1, offset: 1, dim: 3 }, // outer rows 1..3
        { kind: 'block', dim: 4 },
        { kind: 'view', parent: 4, offset: 1, dim: 3 },
        { kind: 'view', parent: 5, offset: 2, dim: 1 }, // block row 3
        { kind: 'view', parent: 2, offset: 2, dim: 1 }, // inner row 3
      ];
      const spec: ProgramSpec = {
        dtype: dt,
        N,
        M,
        B: 8,
        regs,
        inner: [
          [ISA.OP_COPY, 4, 7],
          [ISA.OP_SUB, 5, 2, 3],
          [ISA.OP_SQUARE, 5, 5],
          [ISA.OP_MUL, 6, 6, 7],
        ],
        red: ISA.RED_SUM,
        F: 4,
      };
      check(spec, TOL[dt]);
      check({ ...spec, red: ISA.RED_ARGKMIN, K: 3 }, 0);
    });
  }

  it('returns ERR_ACC when the accumulator is too small, for every reduction', () => {
    for (const [, red] of ALL_REDS) {
      for (const dt of DTYPES) {
        const spec = redSpec(dt, red, 3, 20, 8, red === ISA.RED_LSE_W || red === ISA.RED_SSMW ? 1 : 2, 6);
        const d = spec.regs[spec.F]!.dim,
          e = spec.G !== undefined && spec.G >= 0 ? spec.regs[spec.G]!.dim : 0;
        const need = accBytesFor(red, d, e, 6, dt);
        expect(need).toBeLessThanOrEqual(64 + 32 * (d + e) + 16 * 6 * d);
        expect(runProgram(kernel, { ...spec, accBytes: need - 16 }).code).toBe(ISA.ERR_ACC);
        expect(runProgram(kernel, { ...spec, accBytes: need }).code).toBe(ISA.OK);
      }
    }
  });

  it('returns ERR_BAD_PROGRAM for malformed programs', () => {
    const ok = opSpec('f32', [[ISA.OP_ADD, T, X, U]], T);
    expect(runProgram(kernel, ok).code).toBe(ISA.OK);
    const bad = (s: Partial<ProgramSpec>, opts: { iStart?: number; iEnd?: number } = {}) =>
      runProgram(kernel, { ...ok, ...s }, opts).code;
    expect(bad({ B: 18 })).toBe(ISA.ERR_BAD_PROGRAM); // B not a multiple of 4
    expect(bad({ header: { [ISA.H_DTYPE]: 2 } })).toBe(ISA.ERR_BAD_PROGRAM);
    expect(bad({ header: { [ISA.H_N_INNER]: 0 } })).toBe(ISA.ERR_BAD_PROGRAM);
    expect(bad({ header: { [ISA.H_RED]: 42 } })).toBe(ISA.ERR_BAD_PROGRAM);
    expect(bad({ header: { [ISA.H_OUT_DIM]: 2 } })).toBe(ISA.ERR_BAD_PROGRAM);
    expect(bad({ inner: [[99, T, X, U]] })).toBe(ISA.ERR_BAD_PROGRAM); // unknown op
    expect(bad({ inner: [[ISA.OP_ADD, T, X, 40]] })).toBe(ISA.ERR_BAD_PROGRAM); // no such register
    expect(bad({ inner: [[ISA.OP_ADD, S3, X, U]] })).toBe(ISA.ERR_BAD_PROGRAM); // inner dst uniform
    expect(bad({ outer: [[ISA.OP_ADD, S3, X, U]] })).toBe(ISA.ERR_BAD_PROGRAM); // block operand in outer code
    expect(bad({ inner: [[ISA.OP_ADD, T1, X, U]] })).toBe(ISA.ERR_BAD_PROGRAM); // dims 1 vs 3
    expect(bad({ inner: [[ISA.OP_SQDIST, T, X, U]] })).toBe(ISA.ERR_BAD_PROGRAM); // row reduction into 3 rows
    expect(bad({ inner: [[ISA.OP_ONEHOT, T, X]] })).toBe(ISA.ERR_BAD_PROGRAM); // ONEHOT of 3 rows
    expect(bad({ red: ISA.RED_LSE_W, G: X })).toBe(ISA.ERR_BAD_PROGRAM); // LSE_W needs d = 1
    expect(bad({ red: ISA.RED_KMIN, K: 0 })).toBe(ISA.ERR_BAD_PROGRAM);
    expect(bad({ header: { [ISA.H_RED_F]: 77 } })).toBe(ISA.ERR_BAD_PROGRAM);
    expect(bad({}, { iEnd: 8 })).toBe(ISA.ERR_BAD_PROGRAM); // beyond N
    const view = opSpec('f32', [], T);
    view.regs.push({ kind: 'view', parent: X, offset: 2, dim: 2 }); // rows 2..3 of a 3-row register
    expect(runProgram(kernel, view).code).toBe(ISA.ERR_BAD_PROGRAM);
    const fwd = opSpec('f32', [], T);
    fwd.regs.unshift({ kind: 'view', parent: 3, offset: 0, dim: 1 }); // parent index not smaller
    expect(runProgram(kernel, { ...fwd, F: 1 }).code).toBe(ISA.ERR_BAD_PROGRAM);
  });

  it('runs long programs with thousands of registers and instructions', () => {
    const regs: RegSpec[] = [
      { kind: 'inner', dim: 1, data: randArray(37, 0, 1, 5) },
      { kind: 'block', dim: 1 },
    ];
    for (let q = 0; q < 3000; q++) regs.push({ kind: 'uniform', dim: 1, values: [q % 2 ? 1.0001 : 0.001] });
    const inner: Instr[] = [[ISA.OP_COPY, 1, 0]];
    for (let q = 0; q < 4600; q++) inner.push([q % 2 ? ISA.OP_ADD : ISA.OP_MUL, 1, 1, 2 + ((q * 7) % 3000)]);
    check({ dtype: 'f64', N: 2, M: 37, B: 8, regs, inner, red: ISA.RED_SUM, F: 1 }, 1e-12);
    // One register past the kernel's static register table (isa.MAX_REGS) is refused.
    while (regs.length <= ISA.MAX_REGS) regs.push({ kind: 'view', parent: 1, offset: 0, dim: 1 });
    expect(runProgram(kernel, { dtype: 'f32', N: 2, M: 37, B: 8, regs, inner, red: ISA.RED_SUM, F: 1 }).code).toBe(
      ISA.ERR_BAD_PROGRAM,
    );
  });

  it('an empty range of outer indices does nothing', () => {
    const spec = opSpec('f64', [[ISA.OP_ADD, T, X, U]], T);
    const L = layout(kernel, spec);
    expect(kernel.run(L.prog, 3, 3)).toBe(ISA.OK);
  });
});
