// One kernel run, described by plain data: "lay out a compiled tile program and its data in a
// kernel's linear memory, run outer rows (or clusters) [start, end), read the outputs". Used both on
// the main thread (src/wasm/wasm-engine.ts) and inside the pool's workers (worker-entry.ts), so it
// imports nothing but the instruction set and the error classes: a KernelJob is structured-cloneable (numbers, arrays and
// typed arrays), with no Variable objects or closures.
import * as isa from '../../assembly/isa.js';
import { ResourceLimitError } from '../core/errors.js';

/** The exports of assembly/kernel.ts (one declaration: the engine, the workers and the tests' raw
 *  kernel helper use it). */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  run(prog: number, iStart: number, iEnd: number): number;
  heapBase(): number;
  /** The kernel's SIMD exp/log/sin/cos (fn 0..3; 4: exp on 4 vectors in lockstep) on n values at inPtr,
   *  written to outPtr, in f32 (dtype 0) or f64 (else): for the tests of its elementary functions. */
  mathTest(fn: number, dtype: number, inPtr: number, outPtr: number, n: number): void;
}

/** Words per register in KernelJob.registers: [kind, dim, parent index (views) or -1, first row]. */
export const JOB_REG_WORDS = 4;

export interface KernelJob {
  /** The reduction's name, for error messages. */
  readonly kind: string;
  readonly f64: boolean;
  readonly nOuter: number;
  readonly nInner: number;
  /** Block size B (see chooseBlockSize). */
  readonly block: number;
  /** JOB_REG_WORDS words per register. */
  readonly registers: Int32Array;
  /** Per register: the values of a uniform constant/parameter, the row-major [nOuter, dim] data of
   *  an outer variable, the row-major [nInner, dim] data of an inner variable (tiled here), or null. */
  readonly data: readonly (Float32Array | Float64Array | readonly number[] | null)[];
  readonly outerCode: Int32Array;
  readonly innerCode: Int32Array;
  readonly reduction: number; // isa.RED_*
  readonly formulaRegister: number;
  readonly weightRegister: number; // or -1
  readonly k: number;
  readonly outDim: number;
  readonly accBytes: number;
  readonly hasValues: boolean;
  readonly hasIndices: boolean;
  /** Block-sparse pattern (run ranges are then clusters), or null. */
  readonly ranges: { readonly outer: Int32Array; readonly slices: Int32Array; readonly inner: Int32Array } | null;
  /** The value of an output row no cluster covers (block-sparse only). */
  readonly emptyValue: number;
  /** The outer rows (clusters when ranges is set) this job runs. */
  readonly start: number;
  readonly end: number;
  /** RED_SUM_COLS: the width of the column sums (the weight register's dim), else 0 or absent. */
  readonly columns?: number;
  /** RED_SUM_COLS run by runJob: the row chunks [c[p], c[p + 1]) of [start, end) whose column sums are
   *  kept apart (JobOutput.columns holds one [nInner, columns] block per chunk); absent: one chunk. */
  readonly columnChunks?: readonly number[];
}

/** Values [from, to) of an array a worker holds under `resident` (WorkerPool.residentKey), in place
 *  of the values themselves in a posted job's data. */
export interface ResidentRef {
  readonly resident: number;
  readonly from: number;
  readonly to: number;
}

/** A job as posted to a worker: data may name arrays the worker holds (resolved there). */
export type PostedJob = Omit<KernelJob, 'data'> & {
  readonly data: readonly (KernelJob['data'][number] | ResidentRef)[];
};

/** Whether a posted job's data entry names resident data. */
export function isResidentRef(d: unknown): d is ResidentRef {
  return typeof d === 'object' && d !== null && !ArrayBuffer.isView(d) && !Array.isArray(d) && 'resident' in d;
}

/** The job's outputs, laid out [job.nOuter, outDim]. */
export interface JobOutput {
  readonly values: Float32Array | Float64Array | null;
  readonly indices: Int32Array | null;
  /** RED_SUM_COLS: the column sums over the rows run, [nInner, columns], one such block per chunk
   *  of KernelJob.columnChunks. */
  readonly columns?: Float32Array | Float64Array;
}

const PAGE = 65536;
/** The memory a job may lay out. wasm32 addresses 4 GiB, but the kernel stores pointers as i32
 *  words in the program header and adds and compares them as i32: offsets past 2^31 wrap and trap.
 *  So a job must fit 2 GiB, a page short. */
export const MAX_MEMORY_BYTES = 2 * 1024 * 1024 * 1024 - PAGE;

// Arithmetic, not bitwise: `(n + 15) & ~15` wraps to a negative int32 past 2^31, so that sizes of
// 2 GiB and more used to pass every check and trap in the kernel.
export const align16 = (n: number): number => Math.ceil(n / 16) * 16;

/** A job laid out in a kernel's memory, ready to run. */
export interface PreparedJob {
  readonly job: KernelJob;
  readonly prog: number;
  readonly outValues: number;
  readonly outIndices: number;
  /** The column sums (RED_SUM_COLS), else 0. */
  readonly columnsAt: number;
}

/** Where each part of a job goes in a kernel's memory (byte addresses), from `heapBase` on. */
export interface JobLayout {
  /** The kernel's heapBase() the layout starts from: a layout is only valid for that kernel build. */
  readonly heapBase: number;
  readonly prog: number;
  readonly regTable: number;
  readonly outerCode: number;
  readonly innerCode: number;
  /** Per register: its data's address (a view: its parent's register index). */
  readonly bases: readonly number[];
  readonly acc: number;
  readonly outValues: number;
  readonly outIndices: number;
  readonly rangesAt: number;
  readonly slicesAt: number;
  readonly innerRangesAt: number;
  /** RED_SUM_COLS: the column sums (tiled like an inner variable), else 0. */
  readonly columnsAt: number;
  /** The first byte past the job: the memory it needs. */
  readonly end: number;
}

/** Lays a job out from `heapBase` on. Pure arithmetic: nothing is allocated, so the engine computes it
 *  once per job (checkJobMemory, then prepareJob with the same layout). */
export function layoutJob(job: KernelJob, heapBase: number): JobLayout {
  const elt = job.f64 ? 8 : 4;
  const B = job.block;
  const tiles = Math.ceil(job.nInner / B);
  const nRegs = job.registers.length / JOB_REG_WORDS;
  const reg = (k: number, w: number): number => job.registers[k * JOB_REG_WORDS + w]!;
  let cursor = align16(heapBase);
  const take = (bytes: number): number => {
    const at = cursor;
    cursor = align16(cursor + bytes);
    return at;
  };
  const prog = take(isa.HEADER_WORDS * 4);
  const regTable = take(nRegs * isa.REG_WORDS * 4);
  const outerCode = take(job.outerCode.length * 4);
  const innerCode = take(job.innerCode.length * 4);
  const bases: number[] = [];
  for (let k = 0; k < nRegs; k++) {
    const kind = reg(k, 0);
    const dim = reg(k, 1);
    switch (kind) {
      case isa.REG_UNIFORM:
        bases.push(take(dim * elt));
        break;
      case isa.REG_OUTER_VAR:
        bases.push(take(job.nOuter * dim * elt));
        break;
      case isa.REG_INNER_VAR:
        bases.push(take(tiles * dim * B * elt));
        break;
      case isa.REG_BLOCK:
        bases.push(take(dim * B * elt));
        break;
      case isa.REG_VIEW:
        bases.push(reg(k, 2));
        break;
      default:
        throw new Error(`internal: register kind ${kind}`);
    }
  }
  const acc = take(job.accBytes);
  const outValues = job.hasValues ? take(job.nOuter * job.outDim * elt) : 0;
  const outIndices = job.hasIndices ? take(job.nOuter * job.outDim * 4) : 0;
  const ranges = job.ranges;
  const rangesAt = ranges ? take(ranges.outer.byteLength) : 0;
  const slicesAt = ranges ? take(ranges.slices.byteLength) : 0;
  const innerRangesAt = ranges ? take(ranges.inner.byteLength) : 0;
  const columnsAt = (job.columns ?? 0) > 0 ? take(tiles * job.columns! * B * elt) : 0;
  return {
    heapBase,
    prog,
    regTable,
    outerCode,
    innerCode,
    bases,
    acc,
    outValues,
    outIndices,
    rangesAt,
    slicesAt,
    innerRangesAt,
    columnsAt,
    end: cursor,
  };
}

/**
 * Throws a ResourceLimitError, before anything is allocated, when a job does not fit the kernel's
 * memory: its inputs (inner variables tiled), outputs and reduction state must fit MAX_MEMORY_BYTES.
 * Returns the job's layout (computed from `heapBase` unless given), for prepareJob.
 */
export function checkJobMemory(job: KernelJob, heapBase = 0, layout = layoutJob(job, heapBase)): JobLayout {
  const bytes = layout.end;
  if (bytes > MAX_MEMORY_BYTES) {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    const output = job.nOuter * job.outDim * ((job.hasValues ? (job.f64 ? 8 : 4) : 0) + (job.hasIndices ? 4 : 0));
    throw new ResourceLimitError(
      `${job.kind}: the reduction needs ${mib(bytes)} of WebAssembly memory (of which the ${job.nOuter} x ${job.outDim} output is ${mib(output)}), ` +
        `more than the kernel's limit of ${mib(MAX_MEMORY_BYTES + PAGE)}; split it into smaller reductions (fewer rows, a smaller K)`,
      bytes,
      MAX_MEMORY_BYTES,
      'bytes',
    );
  }
  return layout;
}

/**
 * Lays the job's program and data out in the kernel's memory (above heapBase()). `checked` is the
 * layout checkJobMemory returned for this job and kernel, if the caller has one (so the job is laid
 * out once); otherwise it is computed and checked here. Registers for which `inPlace` returns true
 * are not copied: their data is in memory at the layout's address already.
 */
export function prepareJob(
  kernel: KernelExports,
  job: KernelJob,
  checked?: JobLayout,
  inPlace?: (register: number) => boolean,
): PreparedJob {
  const f64 = job.f64;
  const elt = f64 ? 8 : 4;
  const B = job.block;
  const tiles = Math.ceil(job.nInner / B);
  const nRegs = job.registers.length / JOB_REG_WORDS;
  const reg = (k: number, w: number): number => job.registers[k * JOB_REG_WORDS + w]!;
  const heapBase = kernel.heapBase();
  if (checked !== undefined && checked.heapBase !== heapBase) {
    throw new Error(`internal: ${job.kind}: a job laid out from heapBase ${checked.heapBase}, not ${heapBase}`);
  }
  const {
    prog,
    regTable,
    outerCode,
    innerCode,
    bases,
    acc,
    outValues,
    outIndices,
    rangesAt,
    slicesAt,
    innerRangesAt,
    columnsAt,
    end,
  } = checked ?? checkJobMemory(job, heapBase);
  ensureMemory(kernel, end, job.kind);
  const ranges = job.ranges;

  // Data.
  const buffer = kernel.memory.buffer;
  const words = new Int32Array(buffer);
  const floats = f64 ? new Float64Array(buffer) : new Float32Array(buffer);
  const header = new Int32Array(buffer, prog, isa.HEADER_WORDS);
  header.fill(0);
  header[isa.H_DTYPE] = f64 ? 1 : 0;
  header[isa.H_N_OUTER] = job.nOuter;
  header[isa.H_N_INNER] = job.nInner;
  header[isa.H_BLOCK] = B;
  header[isa.H_N_REGS] = nRegs;
  header[isa.H_REGS] = regTable;
  header[isa.H_OUTER_CODE] = outerCode;
  header[isa.H_OUTER_LEN] = job.outerCode.length / isa.INSTR_WORDS;
  header[isa.H_INNER_CODE] = innerCode;
  header[isa.H_INNER_LEN] = job.innerCode.length / isa.INSTR_WORDS;
  header[isa.H_RED] = job.reduction;
  header[isa.H_RED_F] = job.formulaRegister;
  header[isa.H_RED_G] = job.weightRegister;
  header[isa.H_RED_K] = job.k;
  header[isa.H_OUT_VAL] = outValues;
  header[isa.H_OUT_IDX] = outIndices;
  header[isa.H_OUT_DIM] = job.outDim;
  header[isa.H_ACC] = acc;
  header[isa.H_ACC_BYTES] = job.accBytes;
  if (columnsAt > 0) {
    // The kernel adds each row's terms into the column sums: they start at 0.
    header[isa.H_COLS] = columnsAt;
    floats.fill(0, columnsAt / elt, columnsAt / elt + tiles * job.columns! * B);
  }
  if (ranges) {
    header[isa.H_RANGES] = rangesAt;
    header[isa.H_N_CLUSTERS] = ranges.slices.length;
    header[isa.H_SLICES] = slicesAt;
    header[isa.H_INNER_RANGES] = innerRangesAt;
    words.set(ranges.outer, rangesAt >>> 2);
    words.set(ranges.slices, slicesAt >>> 2);
    words.set(ranges.inner, innerRangesAt >>> 2);
    // Rows that no cluster covers keep the reduction of an empty set.
    const count = job.nOuter * job.outDim;
    if (outValues > 0) floats.fill(job.emptyValue, outValues / elt, outValues / elt + count);
    if (outIndices > 0) words.fill(-1, outIndices >>> 2, (outIndices >>> 2) + count);
  }
  words.set(job.outerCode, outerCode >>> 2);
  words.set(job.innerCode, innerCode >>> 2);
  for (let k = 0; k < nRegs; k++) {
    const kind = reg(k, 0);
    const dim = reg(k, 1);
    const at = (regTable >>> 2) + k * isa.REG_WORDS;
    words[at + isa.R_KIND] = kind;
    words[at + isa.R_DIM] = dim;
    words[at + isa.R_BASE] = bases[k]!;
    words[at + isa.R_EXTRA] = kind === isa.REG_VIEW ? reg(k, 3) : 0;
    const data = job.data[k];
    // inPlace: the caller knows the kernel's memory holds this register's data already, as this
    // layout places it (a worker's resident data, left there by its previous job)
    if (data === null || data === undefined || inPlace?.(k) === true) continue;
    const start = bases[k]! / elt;
    if (kind === isa.REG_UNIFORM || kind === isa.REG_OUTER_VAR) {
      floats.set(data, start);
    } else if (kind === isa.REG_INNER_VAR) {
      tileInnerVariable(kernel, job, bases[k]!, k, 0, tiles);
    }
  }
  return { job, prog, outValues, outIndices, columnsAt };
}

/**
 * Copies tiles [from, to) of the inner variable of register `register` into the kernel's memory at
 * `base` (its layout's address), in the tiled layout: element j of row k at ((b*dim + k)*B + t), the
 * last tile zero-padded. prepareJob copies all of them; the main thread may skip them there (inPlace)
 * and copy them a slice at a time, yielding in between (wasm-engine.ts runHere: 188 MB of inner data
 * at D = 784 takes ~100-300 ms to tile).
 */
export function tileInnerVariable(
  kernel: KernelExports,
  job: KernelJob,
  base: number,
  register: number,
  from: number,
  to: number,
): void {
  const data = job.data[register] as Float32Array | Float64Array;
  const dim = job.registers[register * JOB_REG_WORDS + 1]!;
  const B = job.block;
  const tiles = Math.ceil(job.nInner / B);
  const region = tiledRegion(kernel, job, base, dim);
  if (to === tiles) region.fill(0, (tiles - 1) * dim * B);
  const rows = job.nInner;
  for (let b = from; b < to; b++) {
    const count = Math.min(B, rows - b * B);
    for (let q = 0; q < dim; q++) {
      const dst = (b * dim + q) * B;
      let src = b * B * dim + q;
      for (let t = 0; t < count; t++, src += dim) region[dst + t] = data[src]!;
    }
  }
}

/** Runs outer rows (clusters) [start, end) of a prepared job. */
export function runPrepared(kernel: KernelExports, prepared: PreparedJob, start: number, end: number): void {
  const status = kernel.run(prepared.prog, start, end);
  if (status !== isa.OK) throw new Error(`${prepared.job.kind}: the WebAssembly kernel failed with code ${status}`);
}

/** Where runInnerRange writes: byte addresses in the kernel's memory of [rows, outDim] values (T) and
 *  indices (i32), each 0 when the reduction has none. */
export interface InnerRangeOutput {
  readonly values: number;
  readonly indices: number;
}

/**
 * Runs outer rows [i0, i1) of a prepared dense job against the inner indices [j0, j1) only, with the
 * reduction `reduction` (one of the same state and output width: RED_MINARGMIN for RED_ARGMIN...),
 * writing row i's outputs to row i - i0 of `out` and inner indices relative to j0. j0 must be a
 * multiple of the job's block size: the range is then a job of its own, made by pointing the
 * header and the variables' registers into the job's memory (outer variables at row i0, inner ones
 * at tile j0 / B, whose tiles are laid out contiguously), run, and the header and registers restored.
 * The main thread's way of cutting a long row into pieces (wasm-engine.ts runHere).
 */
export function runInnerRange(
  kernel: KernelExports,
  prepared: PreparedJob,
  i0: number,
  i1: number,
  j0: number,
  j1: number,
  reduction: number,
  out: InnerRangeOutput,
): void {
  const job = prepared.job;
  const elt = job.f64 ? 8 : 4;
  if (job.ranges !== null || j0 % job.block !== 0 || !(0 <= j0 && j0 < j1 && j1 <= job.nInner)) {
    throw new Error(`internal: ${job.kind}: inner range [${j0}, ${j1}) of ${job.nInner}, block ${job.block}`);
  }
  const words = new Int32Array(kernel.memory.buffer);
  const h = prepared.prog >>> 2;
  const regTable = words[h + isa.H_REGS]! >>> 2;
  const nRegs = job.registers.length / JOB_REG_WORDS;
  const saved = words.slice(h, h + isa.HEADER_WORDS);
  const savedBases = new Int32Array(nRegs);
  for (let k = 0; k < nRegs; k++) {
    const at = regTable + k * isa.REG_WORDS;
    savedBases[k] = words[at + isa.R_BASE]!;
    const kind = words[at + isa.R_KIND]!;
    const dim = words[at + isa.R_DIM]!;
    if (kind === isa.REG_OUTER_VAR) words[at + isa.R_BASE] = savedBases[k]! + i0 * dim * elt;
    else if (kind === isa.REG_INNER_VAR) words[at + isa.R_BASE] = savedBases[k]! + j0 * dim * elt;
  }
  words[h + isa.H_N_OUTER] = i1 - i0;
  words[h + isa.H_N_INNER] = j1 - j0;
  words[h + isa.H_INNER_BEFORE] = j0;
  words[h + isa.H_INNER_TOTAL] = job.nInner;
  words[h + isa.H_RED] = reduction;
  words[h + isa.H_OUT_VAL] = out.values;
  words[h + isa.H_OUT_IDX] = out.indices;
  let status: number;
  try {
    status = kernel.run(prepared.prog, 0, i1 - i0);
  } finally {
    // the run may not grow the memory (the kernel allocates nothing): `words` is still its view
    words.set(saved, h);
    for (let k = 0; k < nRegs; k++) words[regTable + k * isa.REG_WORDS + isa.R_BASE] = savedBases[k]!;
  }
  if (status !== isa.OK) throw new Error(`${job.kind}: the WebAssembly kernel failed with code ${status}`);
}

/** The kernel's memory at `base` as `dim` rows tiled like an inner variable of the job (all tiles). */
function tiledRegion(kernel: KernelExports, job: KernelJob, base: number, dim: number): Float32Array | Float64Array {
  const count = Math.ceil(job.nInner / job.block) * dim * job.block;
  const buffer = kernel.memory.buffer;
  return job.f64 ? new Float64Array(buffer, base, count) : new Float32Array(buffer, base, count);
}

/** The column sums of a RED_SUM_COLS job, untiled to [nInner, columns] into `out` (a new array
 *  when absent), and zeroed in the kernel's memory when `zero` (for the next chunk of rows). */
function readColumns(
  kernel: KernelExports,
  prepared: PreparedJob,
  out?: Float32Array | Float64Array,
  zero = false,
): Float32Array | Float64Array {
  const { job, columnsAt } = prepared;
  const c = job.columns!;
  const B = job.block;
  const tiles = Math.ceil(job.nInner / B);
  const tiled = tiledRegion(kernel, job, columnsAt, c);
  out ??= job.f64 ? new Float64Array(job.nInner * c) : new Float32Array(job.nInner * c);
  for (let b = 0; b < tiles; b++) {
    const count = Math.min(B, job.nInner - b * B);
    for (let k = 0; k < c; k++) {
      const src = (b * c + k) * B;
      for (let t = 0; t < count; t++) out[(b * B + t) * c + k] = tiled[src + t]!;
    }
  }
  if (zero) tiled.fill(0);
  return out;
}

/** Copies the outputs out of the kernel's memory. */
export function readOutputs(kernel: KernelExports, prepared: PreparedJob): JobOutput {
  const { job, outValues, outIndices } = prepared;
  const buffer = kernel.memory.buffer;
  const count = job.nOuter * job.outDim;
  return {
    ...(prepared.columnsAt > 0 ? { columns: readColumns(kernel, prepared) } : {}),
    values:
      outValues === 0
        ? null
        : job.f64
          ? new Float64Array(buffer, outValues, count).slice()
          : new Float32Array(buffer, outValues, count).slice(),
    indices: outIndices === 0 ? null : new Int32Array(buffer, outIndices, count).slice(),
  };
}

/** The whole job at once (what a worker does); a RED_SUM_COLS job chunk by chunk of
 *  columnChunks, each chunk's column sums read out and zeroed before the next. */
export function runJob(
  kernel: KernelExports,
  job: KernelJob,
  layout?: JobLayout,
  inPlace?: (register: number) => boolean,
): JobOutput {
  const prepared = prepareJob(kernel, job, layout, inPlace);
  const chunks = ColumnChunks.of(kernel, prepared);
  if (chunks === null) {
    if (job.end > job.start) runPrepared(kernel, prepared, job.start, job.end);
    return readOutputs(kernel, prepared);
  }
  for (let start = job.start; start < job.end;) {
    const end = chunks.limit();
    runPrepared(kernel, prepared, start, end);
    chunks.reached(end);
    start = end;
  }
  return chunks.outputs();
}

/** A RED_SUM_COLS job run chunk by chunk of KernelJob.columnChunks: a run must stop at the end of
 *  its chunk (`limit`), and once the rows of a chunk have run their column sums are read out and
 *  zeroed for the next (`reached`). Used by runJob and the main thread's sliced runs. */
export class ColumnChunks {
  private next = 0;
  private readonly columns: Float32Array | Float64Array;
  private readonly block: number;

  private constructor(
    private readonly kernel: KernelExports,
    private readonly prepared: PreparedJob,
    private readonly bounds: readonly number[],
  ) {
    const job = prepared.job;
    this.block = job.nInner * job.columns!;
    const count = (bounds.length - 1) * this.block;
    this.columns = job.f64 ? new Float64Array(count) : new Float32Array(count);
  }

  /** The chunks of a prepared job, or null when it is not a RED_SUM_COLS job run by chunks. */
  static of(kernel: KernelExports, prepared: PreparedJob): ColumnChunks | null {
    const bounds = prepared.job.columnChunks;
    return prepared.columnsAt === 0 || bounds === undefined ? null : new ColumnChunks(kernel, prepared, bounds);
  }

  /** The first row (of the job's numbering) a run from the current chunk must not reach. */
  limit(): number {
    return this.prepared.job.start + this.bounds[Math.min(this.next + 1, this.bounds.length - 1)]!;
  }

  /** The rows before `row` have run: the chunks they complete are read out and zeroed. */
  reached(row: number): void {
    const { job } = this.prepared;
    while (this.next + 1 < this.bounds.length && row >= job.start + this.bounds[this.next + 1]!) {
      readColumns(
        this.kernel,
        this.prepared,
        this.columns.subarray(this.next * this.block, (this.next + 1) * this.block),
        true,
      );
      this.next++;
    }
  }

  /** The job's values and indices, and the column sums of every chunk, one block after the other. */
  outputs(): JobOutput {
    const { values, indices } = readOutputs(this.kernel, { ...this.prepared, columnsAt: 0 });
    return { values, indices, columns: this.columns };
  }
}

/** Grows the kernel's memory to at least `bytes` (a ResourceLimitError naming `kind` if refused). */
export function ensureMemory(kernel: KernelExports, bytes: number, kind: string): void {
  const memory = kernel.memory;
  const missing = bytes - memory.buffer.byteLength;
  if (missing > 0) {
    try {
      memory.grow(Math.ceil(missing / PAGE));
    } catch (cause) {
      throw new ResourceLimitError(
        `${kind}: could not grow WebAssembly memory to ${(bytes / 2 ** 20).toFixed(0)} MiB (the platform refused)`,
        bytes,
        memory.buffer.byteLength,
        'bytes',
      );
    }
  }
}
