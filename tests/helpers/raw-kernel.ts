// Test helper: instantiates the Wasm kernel from the generated base64 and lays out tile programs
// (header, register table, code, data in tiles, outputs, accumulator) in its memory, so that tests
// can call `run` directly, without the TypeScript compiler of the package.
import { KERNEL_WASM_BASE64 } from '../../src/wasm/wasm-binary.generated';
import * as ISA from '../../assembly/isa';
import { REDUCTIONS, type ReductionKind } from '../../src/core/reduction-defs';
import { WASM_REDUCTIONS } from '../../src/wasm/compile';
import { decodeBase64 } from '../../src/wasm/kernel-source';
import type { KernelExports } from '../../src/wasm/worker-job';

export { ISA };

export type { KernelExports };

let cachedModule: WebAssembly.Module | null = null;

/** A fresh kernel instance (its own memory). */
export function loadKernel(): KernelExports {
  if (!cachedModule) cachedModule = new WebAssembly.Module(decodeBase64(KERNEL_WASM_BASE64));
  const instance = new WebAssembly.Instance(cachedModule, {});
  return instance.exports as unknown as KernelExports;
}

// ------------------------------------------------------------------------------------------------
// memory arena above heapBase

export class Arena {
  private top: number;
  constructor(readonly k: KernelExports) {
    this.top = align(k.heapBase(), 64);
  }
  alloc(bytes: number, alignment = 64): number {
    const p = align(this.top, alignment);
    this.top = p + Math.max(bytes, 0);
    const need = this.top + 64;
    const have = this.k.memory.buffer.byteLength;
    if (need > have) this.k.memory.grow(Math.ceil((need - have) / 65536));
    return p;
  }
  get buffer(): ArrayBuffer {
    return this.k.memory.buffer;
  }
}

function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

// ------------------------------------------------------------------------------------------------
// programs

export type Dtype = 'f32' | 'f64';

export type RegSpec =
  /** uniform: `values` (dim numbers; default zeros, e.g. scratch written by the outer code) */
  | { kind: 'uniform'; dim: number; values?: ArrayLike<number> }
  /** outer variable: N x dim row-major */
  | { kind: 'outer'; dim: number; data: ArrayLike<number> }
  /** inner variable: M x dim row-major (laid out in tiles of B by the helper) */
  | { kind: 'inner'; dim: number; data: ArrayLike<number> }
  /** block scratch */
  | { kind: 'block'; dim: number }
  /** rows [offset, offset + dim) of register `parent` */
  | { kind: 'view'; parent: number; offset: number; dim: number };

/** [op, dst, a, b, c, aux] */
export type Instr = [number, number, number?, number?, number?, number?];

export interface ProgramSpec {
  dtype: Dtype;
  N: number;
  M: number;
  B: number;
  regs: RegSpec[];
  outer?: Instr[];
  inner: Instr[];
  red: number;
  F: number;
  G?: number;
  K?: number;
  /** accumulator bytes; default: recommended (8 outer indices at once) */
  accBytes?: number;
  /** fill block scratch with NaN before running (default true) */
  poison?: boolean;
  /** override the header (for error tests) */
  header?: Partial<Record<number, number>>;
  /**
   * Block-sparse reduction: cluster c owns the outer indices [outer[c][0], outer[c][1]) and visits,
   * for each of them, the inner ranges inner[c] in order. run() then takes cluster indices.
   */
  clusters?: { outer: [number, number][]; inner: [number, number][][] };
}

export interface RunResult {
  code: number;
  /** N x outDim values (as numbers) or null */
  values: Float64Array | null;
  /** N x outDim indices or null */
  indices: Int32Array | null;
  outDim: number;
}

export function regDim(spec: ProgramSpec, r: number): number {
  const reg = spec.regs[r];
  if (!reg) throw new Error(`no register ${r}`);
  return reg.dim;
}

/** The engine reduction of a kernel code (RED_*), from the Wasm lowering table. */
export function kindOfCode(red: number): ReductionKind {
  // The plain softmax average: the engine lowers sumSoftMaxWeight to RED_SSMW_LSE (the same values,
  // then the softmax max and sum per row), but the kernel still implements RED_SSMW.
  if (red === ISA.RED_SSMW) return 'sumSoftMaxWeight';
  const kind = (Object.keys(WASM_REDUCTIONS) as ReductionKind[]).find(
    (k) => WASM_REDUCTIONS[k].code === red || WASM_REDUCTIONS[k].acc64 === red,
  );
  if (kind === undefined) throw new Error(`no reduction has kernel code ${red}`);
  return kind;
}

export function outDimOf(spec: ProgramSpec): number {
  const d = regDim(spec, spec.F);
  const e = spec.G !== undefined && spec.G >= 0 ? regDim(spec, spec.G) : 0;
  return REDUCTIONS[kindOfCode(spec.red)].outDim(d, e, spec.K ?? 0) + (spec.red === ISA.RED_SSMW_LSE ? 2 : 0);
}

/** Bytes of H_ACC needed per outer index (the formula documented at the top of kernel.ts). */
export function accBytesFor(red: number, d: number, e: number, K: number, dtype: Dtype): number {
  const elt = dtype === 'f32' ? 4 : 8;
  let need: number;
  switch (red) {
    case ISA.RED_SUM:
      need = 8 * d;
      break;
    case ISA.RED_LSE:
      need = 16 * d;
      break;
    case ISA.RED_LSE_W:
    case ISA.RED_SSMW:
    case ISA.RED_SSMW_LSE:
      need = 16 + 24 * e;
      break;
    case ISA.RED_KMIN:
    case ISA.RED_ARGKMIN:
    case ISA.RED_KMINARGKMIN:
      need = align(4 * d, 16) + d * K * (elt + 4);
      break;
    default:
      need = 32 * d;
  }
  return align(need, 16);
}

export function hasValues(red: number): boolean {
  return REDUCTIONS[kindOfCode(red)].values;
}
export function hasIndices(red: number): boolean {
  return REDUCTIONS[kindOfCode(red)].indices;
}

/** Bit pattern written to the outputs before a run (as int32 words). */
export const UNWRITTEN = 0x7f7f7f7f;

export interface LaidOut {
  prog: number;
  outV: number;
  outI: number;
  outDim: number;
  arena: Arena;
}

/** Writes the program into kernel memory; returns its pointers. */
export function layout(k: KernelExports, spec: ProgramSpec, arena = new Arena(k)): LaidOut {
  const { N, M, B } = spec;
  const elt = spec.dtype === 'f32' ? 4 : 8;
  const nb = Math.ceil(M / B);
  const outDim = outDimOf(spec);
  const Arr = spec.dtype === 'f32' ? Float32Array : Float64Array;

  const prog = arena.alloc(ISA.HEADER_WORDS * 4);
  const regsPtr = arena.alloc(spec.regs.length * ISA.REG_WORDS * 4);
  const outer = spec.outer ?? [];
  const oc = arena.alloc(Math.max(outer.length, 1) * ISA.INSTR_WORDS * 4);
  const ic = arena.alloc(Math.max(spec.inner.length, 1) * ISA.INSTR_WORDS * 4);

  const bases: number[] = [];
  const fills: (() => void)[] = [];
  spec.regs.forEach((r, idx) => {
    switch (r.kind) {
      case 'uniform': {
        const p = arena.alloc(align(r.dim * elt, 16));
        bases[idx] = p;
        fills.push(() => {
          const a = new Arr(arena.buffer, p, r.dim);
          for (let k2 = 0; k2 < r.dim; k2++) a[k2] = r.values ? r.values[k2]! : 0;
        });
        break;
      }
      case 'outer': {
        const p = arena.alloc(N * r.dim * elt + 16);
        bases[idx] = p;
        fills.push(() => {
          const a = new Arr(arena.buffer, p, N * r.dim);
          for (let q = 0; q < N * r.dim; q++) a[q] = r.data[q]!;
        });
        break;
      }
      case 'inner': {
        const p = arena.alloc(nb * r.dim * B * elt);
        bases[idx] = p;
        fills.push(() => {
          const a = new Arr(arena.buffer, p, nb * r.dim * B);
          a.fill(0);
          for (let j = 0; j < M; j++) {
            const b = Math.floor(j / B),
              t = j % B;
            for (let k2 = 0; k2 < r.dim; k2++) a[(b * r.dim + k2) * B + t] = r.data[j * r.dim + k2]!;
          }
        });
        break;
      }
      case 'block': {
        const p = arena.alloc(r.dim * B * elt);
        bases[idx] = p;
        fills.push(() => {
          const a = new Arr(arena.buffer, p, r.dim * B);
          a.fill(spec.poison === false ? 0 : NaN);
        });
        break;
      }
      case 'view':
        bases[idx] = r.parent;
        break;
    }
  });

  const d = regDim(spec, spec.F);
  const e = spec.G !== undefined && spec.G >= 0 ? regDim(spec, spec.G) : 0;
  const K = spec.K ?? 0;
  const accBytes = spec.accBytes ?? 8 * accBytesFor(spec.red, d, e, K, spec.dtype);
  const acc = arena.alloc(Math.max(accBytes, 16));
  const outV = hasValues(spec.red) ? arena.alloc(N * outDim * elt + 16) : 0;
  const outI = hasIndices(spec.red) ? arena.alloc(N * outDim * 4 + 16) : 0;
  const cl = spec.clusters;
  const nRanges = cl ? cl.inner.reduce((n, r) => n + r.length, 0) : 0;
  const rangesPtr = cl ? arena.alloc(cl.outer.length * 8) : 0;
  const slicesPtr = cl ? arena.alloc(cl.outer.length * 4) : 0;
  const innerPtr = cl ? arena.alloc(Math.max(nRanges, 1) * 8) : 0;

  // everything allocated: now write (the buffer may have been replaced by memory.grow)
  for (const f of fills) f();
  const h = new Int32Array(arena.buffer, prog, ISA.HEADER_WORDS);
  h.fill(0);
  h[ISA.H_DTYPE] = spec.dtype === 'f32' ? 0 : 1;
  h[ISA.H_N_OUTER] = N;
  h[ISA.H_N_INNER] = M;
  h[ISA.H_BLOCK] = B;
  h[ISA.H_N_REGS] = spec.regs.length;
  h[ISA.H_REGS] = regsPtr;
  h[ISA.H_OUTER_CODE] = oc;
  h[ISA.H_OUTER_LEN] = outer.length;
  h[ISA.H_INNER_CODE] = ic;
  h[ISA.H_INNER_LEN] = spec.inner.length;
  h[ISA.H_RED] = spec.red;
  h[ISA.H_RED_F] = spec.F;
  h[ISA.H_RED_G] = spec.G ?? -1;
  h[ISA.H_RED_K] = K;
  h[ISA.H_OUT_VAL] = outV;
  h[ISA.H_OUT_IDX] = outI;
  h[ISA.H_OUT_DIM] = outDim;
  h[ISA.H_ACC] = acc;
  h[ISA.H_ACC_BYTES] = accBytes;
  if (cl) {
    h[ISA.H_RANGES] = rangesPtr;
    h[ISA.H_N_CLUSTERS] = cl.outer.length;
    h[ISA.H_SLICES] = slicesPtr;
    h[ISA.H_INNER_RANGES] = innerPtr;
    const R = new Int32Array(arena.buffer, rangesPtr, cl.outer.length * 2);
    const SL = new Int32Array(arena.buffer, slicesPtr, cl.outer.length);
    const S = new Int32Array(arena.buffer, innerPtr, Math.max(nRanges, 1) * 2);
    let r = 0;
    cl.outer.forEach(([a, z], c) => {
      R[2 * c] = a;
      R[2 * c + 1] = z;
      for (const [s0, e0] of cl.inner[c]!) {
        S[2 * r] = s0;
        S[2 * r + 1] = e0;
        r++;
      }
      SL[c] = r;
    });
  }
  // outputs start as a sentinel so that tests can see what was not written
  if (outV) new Int32Array(arena.buffer, outV, (N * outDim * elt) / 4).fill(UNWRITTEN);
  if (outI) new Int32Array(arena.buffer, outI, N * outDim).fill(UNWRITTEN);
  if (spec.header) for (const [w, v] of Object.entries(spec.header)) h[Number(w)] = v as number;

  const rt = new Int32Array(arena.buffer, regsPtr, spec.regs.length * ISA.REG_WORDS);
  spec.regs.forEach((r, idx) => {
    const o = idx * ISA.REG_WORDS;
    rt[o + ISA.R_KIND] = {
      uniform: ISA.REG_UNIFORM,
      outer: ISA.REG_OUTER_VAR,
      inner: ISA.REG_INNER_VAR,
      block: ISA.REG_BLOCK,
      view: ISA.REG_VIEW,
    }[r.kind];
    rt[o + ISA.R_DIM] = r.dim;
    rt[o + ISA.R_BASE] = bases[idx]!;
    rt[o + ISA.R_EXTRA] = r.kind === 'view' ? r.offset : 0;
  });
  const writeCode = (ptr: number, code: Instr[]) => {
    const c = new Int32Array(arena.buffer, ptr, Math.max(code.length, 1) * ISA.INSTR_WORDS);
    c.fill(0);
    code.forEach((ins, q) => {
      for (let w = 0; w < 6; w++) c[q * ISA.INSTR_WORDS + w] = ins[w] ?? 0;
    });
  };
  writeCode(oc, outer);
  writeCode(ic, spec.inner);
  return { prog, outV, outI, outDim, arena };
}

/**
 * Lays out and runs a program over [iStart, iEnd) (default all; cluster indices for a block-sparse
 * program), in `chunks` calls of run().
 */
export function runProgram(
  k: KernelExports,
  spec: ProgramSpec,
  opts: { iStart?: number; iEnd?: number; chunks?: number } = {},
): RunResult {
  const L = layout(k, spec);
  const iStart = opts.iStart ?? 0,
    iEnd = opts.iEnd ?? (spec.clusters ? spec.clusters.outer.length : spec.N);
  const chunks = opts.chunks ?? 1;
  let code = 0;
  for (let c = 0; c < chunks && code === 0; c++) {
    const a = iStart + Math.floor(((iEnd - iStart) * c) / chunks);
    const b = iStart + Math.floor(((iEnd - iStart) * (c + 1)) / chunks);
    code = k.run(L.prog, a, b);
  }
  const buf = k.memory.buffer;
  const n = spec.N * L.outDim;
  let values: Float64Array | null = null,
    indices: Int32Array | null = null;
  if (L.outV)
    values = Float64Array.from(
      spec.dtype === 'f32' ? new Float32Array(buf, L.outV, n) : new Float64Array(buf, L.outV, n),
    );
  if (L.outI) indices = Int32Array.from(new Int32Array(buf, L.outI, n));
  return { code, values, indices, outDim: L.outDim };
}

/** Applies the kernel's SIMD math routine (0 exp, 1 log, 2 sin, 3 cos) to xs. */
export function mathApply(k: KernelExports, fn: number, dtype: Dtype, xs: ArrayLike<number>): Float64Array {
  const arena = new Arena(k);
  const elt = dtype === 'f32' ? 4 : 8;
  const n = xs.length;
  const pin = arena.alloc(n * elt + 16),
    pout = arena.alloc(n * elt + 16);
  const Arr = dtype === 'f32' ? Float32Array : Float64Array;
  new Arr(arena.buffer, pin, n).set(Array.from(xs));
  k.mathTest(fn, dtype === 'f32' ? 0 : 1, pin, pout, n);
  return Float64Array.from(new Arr(k.memory.buffer, pout, n));
}
