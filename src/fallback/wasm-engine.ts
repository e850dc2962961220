// The WebAssembly engine: lays a compiled tile program and its data out in the kernel's linear
// memory, runs the kernel over the result rows in chunks (yielding to the event loop between them so a
// long reduction does not freeze a page), and copies the results out.
import * as isa from '../../assembly/isa.js';
import type { PlanRanges, ReductionOutput, ReductionPlan } from '../core/reduction.js';
import { reductionHasIndices, reductionHasValues } from '../core/reduction.js';
import { compilePlan, type Register, type TileProgram } from './compile.js';

/** The exports of assembly/kernel.ts. */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  run(prog: number, iStart: number, iEnd: number): number;
  heapBase(): number;
}

const PAGE = 65536;
/** wasm32 addresses 4 GiB; stay a page short so every offset fits an i32-sized length. */
const MAX_MEMORY_BYTES = 4 * 1024 * 1024 * 1024 - PAGE;
/** Pairs evaluated between two yields to the event loop (~10-50 ms of work). */
const PAIRS_PER_CHUNK = 2 ** 24;

const align16 = (n: number): number => (n + 15) & ~15;

/** Block size: the block scratch of one program, and the inner variables' slice of one block, each
 *  stay within ~32 KiB of L1 (B between 16 and 512, a multiple of 16). Measured: at D = 3 B = 512 is
 *  best; at D = 50 (f32) B = 128 beats 512 by 10%, because several outer indices share each block. */
export function chooseBlockSize(program: TileProgram, elementBytes: number): number {
  const rowsOf = (kind: number) => program.registers.reduce((s, r) => s + (r.kind === kind ? r.dim : 0), 0);
  const rows = Math.max(1, rowsOf(isa.REG_BLOCK), rowsOf(isa.REG_INNER_VAR));
  const fit = Math.floor(32768 / (rows * elementBytes));
  return Math.max(16, Math.min(512, fit & ~15));
}

/** Bytes of reduction state the kernel needs (see the comment at the top of assembly/kernel.ts). */
export function accumulatorBytes(plan: ReductionPlan): number {
  const d = plan.formula.dim;
  const e = plan.weight?.dim ?? 0;
  return align16(1024 + 64 * (d + e) + 32 * Math.max(plan.k, 1) * d);
}

/** Serialises calls: the kernel's memory holds one problem at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }
}

// setImmediate (Node) does not clamp to 1 ms as nested setTimeout does; browsers fall back to setTimeout.
const immediate = (globalThis as { setImmediate?: (callback: () => void) => unknown }).setImmediate;
const yieldToEventLoop = (): Promise<void> =>
  new Promise((resolve) => {
    if (immediate !== undefined) immediate(resolve);
    else setTimeout(resolve, 0);
  });

export class WasmEngine {
  readonly name = 'wasm' as const;
  private readonly mutex = new Mutex();

  constructor(private readonly kernel: KernelExports) {}

  reduce(plan: ReductionPlan): Promise<ReductionOutput> {
    return this.mutex.lock(() => this.reduceNow(plan));
  }

  private async reduceNow(plan: ReductionPlan): Promise<ReductionOutput> {
    const program = compilePlan(plan);
    const f64 = plan.dtype === 'float64';
    const elt = f64 ? 8 : 4;
    const B = chooseBlockSize(program, elt);
    const tiles = Math.ceil(plan.nInner / B);

    // Layout.
    let cursor = align16(this.kernel.heapBase());
    const take = (bytes: number): number => {
      const at = cursor;
      cursor = align16(cursor + bytes);
      return at;
    };
    const prog = take(isa.HEADER_WORDS * 4);
    const regTable = take(program.registers.length * isa.REG_WORDS * 4);
    const outerCode = take(program.outerCode.length * 4);
    const innerCode = take(program.innerCode.length * 4);
    const bases = program.registers.map((r) => {
      switch (r.kind) {
        case isa.REG_UNIFORM:
          return take(r.dim * elt);
        case isa.REG_OUTER_VAR:
          return take(plan.nOuter * r.dim * elt);
        case isa.REG_INNER_VAR:
          return take(tiles * r.dim * B * elt);
        case isa.REG_BLOCK:
          return take(r.dim * B * elt);
        case isa.REG_VIEW:
          return r.parent!.index;
        default:
          throw new Error(`internal: register kind ${r.kind}`);
      }
    });
    const accBytes = accumulatorBytes(plan);
    const acc = take(accBytes);
    const outValues = reductionHasValues(plan.kind) ? take(plan.nOuter * plan.outDim * elt) : 0;
    const outIndices = reductionHasIndices(plan.kind) ? take(plan.nOuter * plan.outDim * 4) : 0;
    const ranges = plan.ranges;
    const rangesAt = ranges ? take(ranges.outer.byteLength) : 0;
    const slicesAt = ranges ? take(ranges.slices.byteLength) : 0;
    const innerRangesAt = ranges ? take(ranges.inner.byteLength) : 0;
    this.ensureMemory(cursor, plan);

    // Data.
    const buffer = this.kernel.memory.buffer;
    const words = new Int32Array(buffer);
    const floats = f64 ? new Float64Array(buffer) : new Float32Array(buffer);
    const header = new Int32Array(buffer, prog, isa.HEADER_WORDS);
    header.fill(0);
    header[isa.H_DTYPE] = f64 ? 1 : 0;
    header[isa.H_N_OUTER] = plan.nOuter;
    header[isa.H_N_INNER] = plan.nInner;
    header[isa.H_BLOCK] = B;
    header[isa.H_N_REGS] = program.registers.length;
    header[isa.H_REGS] = regTable;
    header[isa.H_OUTER_CODE] = outerCode;
    header[isa.H_OUTER_LEN] = program.outerCode.length / isa.INSTR_WORDS;
    header[isa.H_INNER_CODE] = innerCode;
    header[isa.H_INNER_LEN] = program.innerCode.length / isa.INSTR_WORDS;
    header[isa.H_RED] = program.reduction;
    header[isa.H_RED_F] = program.formulaRegister.index;
    header[isa.H_RED_G] = program.weightRegister?.index ?? -1;
    header[isa.H_RED_K] = plan.k;
    header[isa.H_OUT_VAL] = outValues;
    header[isa.H_OUT_IDX] = outIndices;
    header[isa.H_OUT_DIM] = plan.outDim;
    header[isa.H_ACC] = acc;
    header[isa.H_ACC_BYTES] = accBytes;
    if (ranges) {
      header[isa.H_RANGES] = rangesAt;
      header[isa.H_N_CLUSTERS] = ranges.slices.length;
      header[isa.H_SLICES] = slicesAt;
      header[isa.H_INNER_RANGES] = innerRangesAt;
      words.set(ranges.outer, rangesAt >> 2);
      words.set(ranges.slices, slicesAt >> 2);
      words.set(ranges.inner, innerRangesAt >> 2);
      fillEmptyReduction(plan, floats, outValues / elt, words, outIndices >> 2);
    }
    words.set(program.outerCode, outerCode >> 2);
    words.set(program.innerCode, innerCode >> 2);
    program.registers.forEach((r, k) => {
      const at = (regTable >> 2) + k * isa.REG_WORDS;
      words[at + isa.R_KIND] = r.kind;
      words[at + isa.R_DIM] = r.dim;
      words[at + isa.R_BASE] = bases[k]!;
      words[at + isa.R_EXTRA] = r.kind === isa.REG_VIEW ? r.first : 0;
      writeRegisterData(r, bases[k]!, floats, elt, B, tiles);
    });

    // Run, a chunk of result rows (or of clusters) at a time.
    const chunks = ranges ? clusterChunks(ranges) : rowChunks(plan.nOuter, plan.nInner);
    for (const [start, end] of chunks) {
      if (start > 0) await yieldToEventLoop();
      const status = this.kernel.run(prog, start, end);
      if (status !== isa.OK) throw new Error(`${plan.kind}: the WebAssembly kernel failed with code ${status}`);
    }

    const after = this.kernel.memory.buffer;
    const count = plan.nOuter * plan.outDim;
    return {
      values: outValues === 0 ? null : f64 ? new Float64Array(after, outValues, count).slice() : new Float32Array(after, outValues, count).slice(),
      indices: outIndices === 0 ? null : new Int32Array(after, outIndices, count).slice(),
    };
  }

  private ensureMemory(bytes: number, plan: ReductionPlan): void {
    if (bytes > MAX_MEMORY_BYTES) {
      throw new RangeError(
        `${plan.kind}: the problem needs ${(bytes / 2 ** 20).toFixed(0)} MiB of WebAssembly memory, more than the 4 GiB limit; split it into smaller reductions`,
      );
    }
    const memory = this.kernel.memory;
    const missing = bytes - memory.buffer.byteLength;
    if (missing > 0) {
      try {
        memory.grow(Math.ceil(missing / PAGE));
      } catch (cause) {
        throw new RangeError(
          `${plan.kind}: could not grow WebAssembly memory to ${(bytes / 2 ** 20).toFixed(0)} MiB`,
          { cause },
        );
      }
    }
  }
}

function rowChunks(nOuter: number, nInner: number): [number, number][] {
  const rows = Math.max(1, Math.floor(PAIRS_PER_CHUNK / Math.max(1, nInner)));
  const out: [number, number][] = [];
  for (let i0 = 0; i0 < nOuter; i0 += rows) out.push([i0, Math.min(nOuter, i0 + rows)]);
  return out;
}

/** Consecutive clusters grouped so that each group visits about PAIRS_PER_CHUNK pairs. */
function clusterChunks(ranges: PlanRanges): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  let pairs = 0;
  for (let c = 0; c < ranges.slices.length; c++) {
    const rows = ranges.outer[2 * c + 1]! - ranges.outer[2 * c]!;
    for (let r = c === 0 ? 0 : ranges.slices[c - 1]!; r < ranges.slices[c]!; r++) {
      pairs += rows * (ranges.inner[2 * r + 1]! - ranges.inner[2 * r]!);
    }
    if (pairs >= PAIRS_PER_CHUNK) {
      out.push([start, c + 1]);
      start = c + 1;
      pairs = 0;
    }
  }
  if (start < ranges.slices.length) out.push([start, ranges.slices.length]);
  return out;
}

/** Rows that no cluster covers keep the reduction of an empty set: 0 for sums, -inf for
 *  log-sum-exp, NaN (0/0) for softmax averages, NaN with index -1 for the min/max families. */
function fillEmptyReduction(plan: ReductionPlan, floats: Float32Array | Float64Array, valuesAt: number, words: Int32Array, indicesAt: number): void {
  const count = plan.nOuter * plan.outDim;
  let empty: number;
  switch (plan.kind) {
    case 'sum':
      empty = 0;
      break;
    case 'logSumExp':
    case 'logSumExpWeighted':
      empty = -Infinity;
      break;
    case 'sumSoftMaxWeight':
    case 'min':
    case 'max':
    case 'argMin':
    case 'argMax':
    case 'minArgMin':
    case 'maxArgMax':
    case 'kMin':
    case 'argKMin':
    case 'kMinArgKMin':
      empty = NaN;
      break;
  }
  if (valuesAt > 0) floats.fill(empty, valuesAt, valuesAt + count);
  if (indicesAt > 0) words.fill(-1, indicesAt, indicesAt + count);
}

/** Copies a variable or parameter into its register's memory, in the layout isa.ts specifies. */
function writeRegisterData(
  r: Register,
  base: number,
  floats: Float32Array | Float64Array,
  elt: number,
  B: number,
  tiles: number,
): void {
  const at = base / elt;
  if (r.kind === isa.REG_UNIFORM && r.values !== null) {
    floats.set(r.values, at);
  } else if (r.kind === isa.REG_OUTER_VAR) {
    floats.set(r.variable!.data, at);
  } else if (r.kind === isa.REG_INNER_VAR) {
    const { data, dim, rows } = r.variable!;
    const region = floats.subarray(at, at + tiles * dim * B);
    region.fill(0, (tiles - 1) * dim * B);
    for (let b = 0; b < tiles; b++) {
      const count = Math.min(B, rows - b * B);
      for (let k = 0; k < dim; k++) {
        const dst = (b * dim + k) * B;
        let src = b * B * dim + k;
        for (let t = 0; t < count; t++, src += dim) region[dst + t] = data[src]!;
      }
    }
  }
}
