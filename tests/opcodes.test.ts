// The opcode bands of the tile ISA (assembly/isa.ts): every OP_* constant lies in the band of its
// class, bands have no holes and do not overlap, and the kernel accepts and computes every opcode on
// both of its paths (the per-block loops of the inner code and the switching evaluation of the outer
// code). Adding an opcode without moving its band's *_LAST, or without a kernel case, fails here.
// Also the accuracy of the SIMD atan / asin / acos / atan2 (assembly/math.ts) against Math.
import { describe, expect, it } from 'vitest';
import { ISA, loadKernel, mathApply, runProgram, type Dtype, type Instr, type ProgramSpec } from './helpers/raw-kernel';

const kernel = loadKernel();

const isa = ISA as unknown as Record<string, number>;
const opcodes = Object.entries(isa)
  .filter(([name]) => name.startsWith('OP_'))
  .map(([name, code]) => ({ name, code }));

const BANDS = [
  { cls: 'unary', first: ISA.UNARY_FIRST, last: ISA.UNARY_LAST, next: ISA.BINARY_FIRST },
  { cls: 'binary', first: ISA.BINARY_FIRST, last: ISA.BINARY_LAST, next: ISA.TERNARY_FIRST },
  { cls: 'ternary', first: ISA.TERNARY_FIRST, last: ISA.TERNARY_LAST, next: ISA.ROWRED_FIRST },
  { cls: 'rowred', first: ISA.ROWRED_FIRST, last: ISA.ROWRED_LAST, next: ISA.ROWRED_CAPACITY_END },
] as const;
type Cls = (typeof BANDS)[number]['cls'];

const bandOf = (code: number): (typeof BANDS)[number] | undefined =>
  BANDS.find((b) => code >= b.first && code < b.next);

describe('opcode bands', () => {
  it('every OP_* constant lies within the defined part of a band, and codes are unique', () => {
    expect(opcodes.length).toBeGreaterThan(40);
    const outside = opcodes.filter(({ code }) => {
      const band = bandOf(code);
      return band === undefined || code > band.last;
    });
    expect(outside.map((o) => `${o.name} = ${o.code}`)).toEqual([]);
    expect(new Set(opcodes.map((o) => o.code)).size).toBe(opcodes.length);
  });

  it('bands are ordered, disjoint, and each is contiguous from FIRST to LAST', () => {
    for (const band of BANDS) {
      expect(band.first).toBeLessThanOrEqual(band.last);
      expect(band.last).toBeLessThan(band.next);
      const codes = new Set(opcodes.map((o) => o.code));
      const holes: number[] = [];
      for (let c = band.first; c <= band.last; c++) if (!codes.has(c)) holes.push(c);
      expect(holes, `${band.cls} band`).toEqual([]);
    }
  });

  const data = (n: number, seed: number): number[] =>
    Array.from({ length: n }, (_, q) => 0.25 + 0.5 * (((q + 1) * 0.6180339887 * (seed + 1)) % 1));
  const M = 9;

  /** op on inner variables (the block loops) and, separately, on outer variables with the same rows
   *  (the outer code's evalOp), both summed over the rows. */
  function programs(dt: Dtype, op: number, cls: Cls): [ProgramSpec, ProgramSpec] {
    const aux = op === ISA.OP_ROUND ? 2 : op === ISA.OP_POW ? 3 : 0;
    const dimA = op === ISA.OP_ONEHOT ? 1 : 3;
    const dimOut = cls === 'rowred' ? 1 : 3;
    const rows = (r: number, d: number): number[] => data(r * d, op * 7 + d);
    // inner: registers 0..2 inner variables, 3 the block result
    const inner: ProgramSpec = {
      dtype: dt,
      N: 1,
      M,
      B: 16,
      regs: [
        { kind: 'inner', dim: dimA, data: rows(M, dimA) },
        { kind: 'inner', dim: 3, data: rows(M, 3).map((v) => v + 1) },
        { kind: 'inner', dim: 3, data: rows(M, 3).map((v) => v + 2) },
        { kind: 'block', dim: dimOut },
      ],
      inner: [[op, 3, 0, 1, 2, aux] as Instr],
      red: ISA.RED_SUM,
      F: 3,
    };
    // outer: registers 0..2 outer variables (the same rows, one per outer index), 3 a uniform result
    // copied into the block register 4; one inner row (register 5, unused) so that M = 1
    const outer: ProgramSpec = {
      dtype: dt,
      N: M,
      M: 1,
      B: 16,
      regs: [
        { kind: 'outer', dim: dimA, data: rows(M, dimA) },
        { kind: 'outer', dim: 3, data: rows(M, 3).map((v) => v + 1) },
        { kind: 'outer', dim: 3, data: rows(M, 3).map((v) => v + 2) },
        { kind: 'uniform', dim: dimOut },
        { kind: 'block', dim: dimOut },
        { kind: 'inner', dim: 1, data: [0] },
      ],
      outer: [[op, 3, 0, 1, 2, aux] as Instr],
      inner: [[ISA.OP_COPY, 4, 3]],
      red: ISA.RED_SUM,
      F: 4,
    };
    return [inner, outer];
  }

  for (const dt of ['f32', 'f64'] as Dtype[]) {
    it(`${dt}: the kernel accepts every opcode and computes the same values on both paths`, () => {
      const problems: string[] = [];
      for (const { name, code } of opcodes) {
        const band = bandOf(code)!;
        const [a, b] = programs(dt, code, band.cls);
        const ra = runProgram(kernel, a);
        const rb = runProgram(kernel, b);
        if (ra.code !== ISA.OK || rb.code !== ISA.OK) {
          problems.push(`${name}: run returned ${ra.code} (inner) / ${rb.code} (outer)`);
          continue;
        }
        const dim = ra.outDim;
        for (let k = 0; k < dim; k++) {
          const viaBlocks = ra.values![k]!;
          let viaOuter = 0;
          for (let i = 0; i < M; i++) viaOuter += rb.values![i * dim + k]!;
          // block scratch is poisoned with NaN: an opcode the block loops ignore leaves NaN
          if (!Number.isFinite(viaBlocks) || Math.abs(viaBlocks - viaOuter) > 1e-5 * (1 + Math.abs(viaOuter))) {
            problems.push(`${name}[${k}]: ${viaBlocks} (inner code) vs ${viaOuter} (outer code)`);
          }
        }
      }
      expect(problems).toEqual([]);
    });

    it(`${dt}: the opcode after each band's last is rejected`, () => {
      for (const band of BANDS) {
        const [a, b] = programs(dt, band.last + 1, band.cls);
        expect(runProgram(kernel, a).code, `${band.cls} + 1 (inner)`).toBe(ISA.ERR_BAD_PROGRAM);
        expect(runProgram(kernel, b).code, `${band.cls} + 1 (outer)`).toBe(ISA.ERR_BAD_PROGRAM);
      }
    });
  }
});

// ------------------------------------------------------------------------------------------------
// accuracy of the SIMD inverse trigonometric functions

/** Units in the last place of `want` in the dtype. */
function ulps(got: number, want: number, dt: Dtype): number {
  if (Object.is(got, want)) return 0;
  const a = Math.abs(want);
  const e = a === 0 ? (dt === 'f32' ? -149 : -1074) : Math.floor(Math.log2(a));
  const ulp = 2 ** Math.max(e - (dt === 'f32' ? 23 : 52), dt === 'f32' ? -149 : -1074);
  return Math.abs(got - want) / ulp;
}

function spread(n: number, lo: number, hi: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((hi - lo) * s) / 2 ** 32;
  });
}

function atan2Kernel(dt: Dtype, ys: number[], xs: number[]): Float64Array {
  // the values come back one per outer index through a reduction over one inner row
  const spec: ProgramSpec = {
    dtype: dt,
    N: ys.length,
    M: 1,
    B: 16,
    regs: [
      { kind: 'outer', dim: 1, data: ys },
      { kind: 'outer', dim: 1, data: xs },
      { kind: 'inner', dim: 1, data: ys.slice(0, 1) },
      { kind: 'block', dim: 1 },
      { kind: 'inner', dim: 1, data: xs.slice(0, 1) },
    ],
    inner: [[ISA.OP_ATAN2, 3, 0, 1]],
    red: ISA.RED_MIN, // the value itself, signed zeros included (a sum would turn -0 into 0)
    F: 3,
  };
  const r = runProgram(kernel, spec);
  expect(r.code).toBe(ISA.OK);
  return r.values!;
}

describe('SIMD atan, asin, acos, atan2', () => {
  const R = (dt: Dtype) => (dt === 'f32' ? Math.fround : (v: number) => v);
  // f32 lanes are computed in f64 and rounded once: within 1 ulp; f64 within a few ulp (~1e-15)
  const MAX_ULPS = { f32: 1, f64: 4 } as const;
  const fns: [number, string, (v: number) => number, number[]][] = [
    [
      5,
      'atan',
      Math.atan,
      [...spread(20000, -4, 4, 1), ...spread(4000, -1e6, 1e6, 2), ...spread(2000, -1e-6, 1e-6, 3)],
    ],
    [6, 'asin', Math.asin, [...spread(20000, -1, 1, 4), ...spread(2000, 0.999, 1, 5), ...spread(2000, -1, -0.999, 6)]],
    [7, 'acos', Math.acos, [...spread(20000, -1, 1, 7), ...spread(2000, 0.999, 1, 8), ...spread(2000, -1, -0.999, 9)]],
  ];
  for (const dt of ['f32', 'f64'] as Dtype[]) {
    for (const [fn, name, f, xs0] of fns) {
      it(`${dt} ${name} within ${MAX_ULPS[dt]} ulp, and its special values`, () => {
        const xs = xs0.map(R(dt));
        const got = mathApply(kernel, fn, dt, xs);
        let worst = 0;
        xs.forEach((x, q) => (worst = Math.max(worst, ulps(got[q]!, R(dt)(f(x)), dt))));
        expect(worst).toBeLessThanOrEqual(MAX_ULPS[dt]);
        const specials = [0, -0, 1, -1, Infinity, -Infinity, NaN, 1.5, -2, 1e-30];
        const sp = mathApply(kernel, fn, dt, specials);
        specials.forEach((x, q) => {
          const want = R(dt)(f(x));
          if (Number.isNaN(want)) expect(sp[q], `${name}(${x})`).toBeNaN();
          else expect(ulps(sp[q]!, want, dt), `${name}(${x}) = ${sp[q]}`).toBeLessThanOrEqual(MAX_ULPS[dt]);
        });
        if (name === 'atan' || name === 'asin') expect(Object.is(sp[1], -0)).toBe(true); // odd: -0 stays -0
      });
    }
    it(`${dt} atan2 within ${MAX_ULPS[dt]} ulp in every quadrant, and IEEE special values`, () => {
      const ys = [...spread(8000, -3, 3, 11), ...spread(2000, -1e5, 1e5, 12)].map(R(dt));
      const xs = [...spread(8000, -3, 3, 13), ...spread(2000, -1e-5, 1e-5, 14)].map(R(dt));
      const got = atan2Kernel(dt, ys, xs);
      let worst = 0;
      ys.forEach((y, q) => (worst = Math.max(worst, ulps(got[q]!, R(dt)(Math.atan2(y, xs[q]!)), dt))));
      expect(worst).toBeLessThanOrEqual(MAX_ULPS[dt]);
      const S = [0, -0, 1, -1, Infinity, -Infinity, NaN, 2.5];
      const py: number[] = [];
      const px: number[] = [];
      for (const y of S) {
        for (const x of S) {
          py.push(y);
          px.push(x);
        }
      }
      const sp = atan2Kernel(dt, py, px);
      py.forEach((y, q) => {
        const want = R(dt)(Math.atan2(y, px[q]!));
        const label = `atan2(${y}, ${px[q]}) = ${sp[q]}, want ${want}`;
        if (Number.isNaN(want)) expect(sp[q], label).toBeNaN();
        else {
          expect(ulps(sp[q]!, want, dt), label).toBeLessThanOrEqual(MAX_ULPS[dt]);
          expect(Math.sign(1 / sp[q]!), label).toBe(Math.sign(1 / want)); // signed zeros
        }
      });
    });
  }
});
