// The WebAssembly engine: compiles a reduction plan into a KernelJob (a tile program plus its data,
// as plain cloneable arrays: ./worker-job.ts), then runs it
// - on a pool of workers (src/wasm/workers.ts), each with its own kernel instance and memory: a
//   large reduction (>= SPLIT_MIN_PAIRS pairs) is split by outer rows, or by clusters when it is
//   block-sparse, into one part per worker; a smaller one goes whole to the next free worker; several
//   concurrent reductions thus use the cores in parallel. Each outer row is computed by one kernel run
//   either way, so results are bit-identical to the single-threaded path.
//   With an AbortSignal or a progress callback (RunControl), the reduction is cut into more parts,
//   of about CONTROL_PART_PAIRS pairs (~50 ms on one core), fed to the workers a few at a time: the
//   signal is checked before each part is posted and progress reported as each part comes back.
// - or on the main thread's kernel instance (tiny reductions, setWasmThreads(1), or no workers):
//   one reduction at a time, in chunks sized from the measured speed to take about CHUNK_TARGET_MS
//   each (rows, or at large D groups of rows over pieces of the inner range: inner-split.ts); between chunks the signal is checked, progress reported and the event loop
//   given a turn when due (scheduling.ts), so that a long reduction does not freeze a page.
import * as isa from '../../assembly/isa.js';
import type { Engine } from '../core/engine.js';
import type { PlanRanges, ReductionOutput, ReductionPlan } from '../core/reduction.js';
import { reductionEmptyValue, reductionHasIndices, reductionHasValues } from '../core/reduction.js';
import { checkpoint, throwIfAborted, yieldIfDue, type RunControl } from '../core/scheduling.js';
import { InputError } from '../core/errors.js';
import { getWorkerPool, WorkerLostError, type WorkerPool } from './workers.js';
import { compilePlan, type Register, type TileProgram } from './compile.js';
import {
  align16,
  checkJobMemory,
  ColumnChunks,
  ensureMemory,
  JOB_REG_WORDS,
  MAX_MEMORY_BYTES,
  prepareJob,
  readOutputs,
  runInnerRange,
  runPrepared,
  tileInnerVariable,
  type JobLayout,
  type JobOutput,
  type KernelExports,
  type KernelJob,
  type PostedJob,
  type PreparedJob,
  type ResidentRef,
} from './worker-job.js';
import { innerSplitOf, RowGroupState } from './inner-split.js';
import { isResident } from '../core/resident.js';

export type { KernelExports } from './worker-job.js';
export { getWasmThreads, setWasmThreads } from './workers.js';

/** The first chunk of a main-thread reduction (~1-5 ms of work): its time sizes the next ones. */
const FIRST_CHUNK_PAIRS = 2 ** 20;
/** The target duration of one synchronous kernel call on the main thread: well under the ~50 ms
 *  beyond which a page feels frozen, well above the cost of a yield (~0.05 ms). */
const CHUNK_TARGET_MS = 15;
/** Values of an inner variable the main thread tiles between two yields (a few ms). */
const TILE_SLICE_VALUES = 2 ** 20;
/** Rows a main-thread chunk computes together when one row of the inner range is most of a chunk's
 *  budget: the blocked tiles' group (assembly/blocked.ts, up to 64 rows per pass over the inner
 *  blocks). The chunk then covers a piece of the inner range (inner-split.ts). */
const ROW_GROUP = 64;
/** Parts of a pool reduction when a signal or progress callback is given (~50 ms on one core). */
const CONTROL_PART_PAIRS = 2 ** 25;
/** Reductions of at least this many pairs are split across all workers (~5-10 ms of work on one core:
 *  well above the cost of posting a part, ~0.1 ms). */
const SPLIT_MIN_PAIRS = 2 ** 22;
/** Reductions of fewer pairs run on the main thread: cheaper than a round trip to a worker. */
const MAIN_THREAD_MAX_PAIRS = 2 ** 15;

const thresholds = {
  splitMinPairs: SPLIT_MIN_PAIRS,
  mainThreadMaxPairs: MAIN_THREAD_MAX_PAIRS,
  controlPartPairs: CONTROL_PART_PAIRS,
  chunkTargetMs: CHUNK_TARGET_MS,
  rowGroup: ROW_GROUP,
  /** A fixed pair budget for every main-thread chunk instead of the measured one (tests); 0: measured. */
  fixedChunkPairs: 0,
  tileSliceValues: TILE_SLICE_VALUES,
};

/** Block size: the block scratch of one program, and the inner variables' slice of one block, each
 *  stay within ~32 KiB of L1 (B a power of two between 16 and 512). Measured: at D = 3 B = 512 is
 *  best; at D = 50 (f32) B = 128 beats 512 by 10%, because several outer indices share each block. */
export function chooseBlockSize(program: TileProgram, elementBytes: number): number {
  const rowsOf = (kind: number) => program.registers.reduce((s, r) => s + (r.kind === kind ? r.dim : 0), 0);
  const wide = wideProductFold(program);
  if (wide !== null) {
    // The formula register is never written (the kernel folds the product), and the wide operand
    // and the other inner variables are only read, once per outer index of the pass: their slice of
    // the block may sit in L2 (128 KiB), while the scratch written per pass stays in L1. Every
    // component costs a horizontal sum per block, so longer blocks pay: measured on the gradients of
    // an attention (d = 64, float32, 1024-2048 rows, one thread, loaded machine), B = 128-256 ran
    // 1.3-1.6x faster than the B = 32-64 of the rule below.
    // RED_SUM_COLS: the column sums' slice of the block is read and written once per outer index
    // of the pass, like the inner variables' (measured: at B = 16, the attention backward in one
    // sweep ran 1.8x slower than the two passes it replaces).
    const columns = program.reduction === isa.RED_SUM_COLS ? program.weightRegister!.dim : 0;
    const scratch = Math.max(1, rowsOf(isa.REG_BLOCK) - wide.dim);
    const fit = Math.min(
      32768 / (scratch * elementBytes),
      131072 / (Math.max(1, rowsOf(isa.REG_INNER_VAR) + columns) * elementBytes),
    );
    return Math.max(16, Math.min(512, 2 ** Math.floor(Math.log2(Math.max(1, fit)))));
  }
  const rows = Math.max(1, rowsOf(isa.REG_BLOCK), rowsOf(isa.REG_INNER_VAR));
  const fit = Math.floor(32768 / (rows * elementBytes));
  return Math.max(16, Math.min(512, 2 ** Math.floor(Math.log2(Math.max(1, fit)))));
}

/** Components from which a sum of products is "wide" (see chooseBlockSize). */
const WIDE_FOLD_MIN_DIM = 16;

/** The block rows a sum the kernel folds without storing them (assembly/kernel.ts, runT): F when its
 *  last inner instruction is F = MUL(a, b) with a block operand, or F and the products copied into
 *  it when F is a concatenation written only by COPYs into views of it (planConcat, the fused
 *  gradients of vjp); null when F is narrower than WIDE_FOLD_MIN_DIM or folded as usual. */
function wideProductFold(program: TileProgram): { dim: number } | null {
  const code = program.innerCode;
  const columns = program.reduction === isa.RED_SUM_COLS;
  if ((program.reduction !== isa.RED_SUM && !columns) || code.length === 0) return null;
  const F = program.formulaRegister;
  if (F.dim < WIDE_FOLD_MIN_DIM) return null;
  const rows = unstoredRows(program, F, true);
  if (rows === null) return null;
  // RED_SUM_COLS: G (and the products copied into it) is added into the column sums unstored too.
  return { dim: rows + (columns ? (unstoredRows(program, program.weightRegister!, false) ?? 0) : 0) };
}

/** The block rows of a folded register R that the kernel never stores: R itself when its last
 *  writer is the program's last instruction, a MUL with a block operand (`last`: F only), or R and
 *  the products copied into it when R is written only by COPYs into views of it; else null. */
function unstoredRows(program: TileProgram, R: Register, last: boolean): number | null {
  const code = program.innerCode;
  const at = code.length - isa.INSTR_WORDS;
  const reg = (w: number) => program.registers[w]!;
  if (last && code[at + isa.I_OP] === isa.OP_MUL && code[at + isa.I_DST] === R.index) {
    return reg(code[at + isa.I_A]!).varying || reg(code[at + isa.I_B]!).varying ? R.dim : null;
  }
  // A concatenation: the COPYs into R's views, and the products they copy (their only writer a MUL).
  let unwritten = R.dim;
  let copies = 0;
  for (let q = 0; q < code.length; q += isa.INSTR_WORDS) {
    const dst = reg(code[q + isa.I_DST]!);
    if ((dst.parent ?? dst) !== R) continue;
    if (code[q + isa.I_OP] !== isa.OP_COPY || dst === R) return null;
    copies++;
    const src = code[q + isa.I_A]!;
    for (let w = 0; w < code.length; w += isa.INSTR_WORDS) {
      if (code[w + isa.I_DST] === src && code[w + isa.I_OP] === isa.OP_MUL) unwritten += reg(src).dim;
    }
  }
  return copies > 0 ? unwritten : null;
}

/** Bytes of reduction state the kernel needs (see the comment at the top of assembly/kernel.ts).
 *  A softmax-weighted reduction with a 64-wide weight gets room for 3 rows per pass here (not the
 *  kernel's 8): raising it to 8 measured no faster (attention forward, d = 4, e = 64, 2048 x 2048,
 *  float32 and float64, one thread), as the e-wide fold per row dominates, not the inner block
 *  shared between rows; and at D >= 8 the blocked tiles run their own group of rows (up to 64). */
export function accumulatorBytes(plan: ReductionPlan): number {
  const d = plan.formula.dim;
  const e = plan.weight?.dim ?? 0;
  return align16(1024 + 64 * (d + e) + 32 * Math.max(plan.k, 1) * d);
}

/**
 * The cost of one pair relative to a small-D formula, which the pair thresholds above are sized for:
 * a pair reads every component of its outer and inner variables, so a K-means assignment at D = 784
 * (60000 x 10 pairs, one GFLOP) is split across the workers like 10^8 pairs at D = 3 would be, not
 * run on one of them. 1 up to 8 components in all (D = 3 and 4 formulas keep their thresholds).
 */
export function pairCost(job: KernelJob): number {
  let components = 0;
  for (let k = 0; k < job.registers.length; k += JOB_REG_WORDS) {
    const kind = job.registers[k]!;
    if (kind === isa.REG_OUTER_VAR || kind === isa.REG_INNER_VAR) components += job.registers[k + 1]!;
  }
  return Math.max(1, components / 8);
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

/** The whole plan as a KernelJob (all outer rows or clusters). Variable data is referenced, not copied. */
export function planJob(plan: ReductionPlan): KernelJob {
  const program = compilePlan(plan);
  const f64 = plan.dtype === 'float64';
  const registers = new Int32Array(program.registers.length * JOB_REG_WORDS);
  const data: KernelJob['data'][number][] = [];
  program.registers.forEach((r, k) => {
    registers[k * JOB_REG_WORDS] = r.kind;
    registers[k * JOB_REG_WORDS + 1] = r.dim;
    registers[k * JOB_REG_WORDS + 2] = r.kind === isa.REG_VIEW ? r.parent!.index : -1;
    registers[k * JOB_REG_WORDS + 3] = r.kind === isa.REG_VIEW ? r.first : 0;
    if (r.kind === isa.REG_UNIFORM) data.push(r.values);
    else if (r.kind === isa.REG_OUTER_VAR || r.kind === isa.REG_INNER_VAR) data.push(r.variable!.data);
    else data.push(null);
  });
  const ranges = plan.ranges;
  return {
    kind: plan.kind,
    f64,
    nOuter: plan.nOuter,
    nInner: plan.nInner,
    block: chooseBlockSize(program, f64 ? 8 : 4),
    registers,
    data,
    outerCode: program.outerCode,
    innerCode: program.innerCode,
    reduction: program.reduction,
    formulaRegister: program.formulaRegister.index,
    weightRegister: program.weightRegister?.index ?? -1,
    k: plan.k,
    // RED_SSMW_LSE writes the row's softmax max and sum after the plan's values (split off by
    // splitSoftMax).
    outDim: program.reduction === isa.RED_SSMW_LSE ? plan.outDim + 2 : plan.outDim,
    accBytes: accumulatorBytes(plan),
    hasValues: reductionHasValues(plan.kind),
    hasIndices: reductionHasIndices(plan.kind),
    ranges: ranges === null ? null : { outer: ranges.outer, slices: ranges.slices, inner: ranges.inner },
    emptyValue: reductionEmptyValue(plan.kind),
    start: 0,
    end: ranges === null ? plan.nOuter : ranges.slices.length,
    columns: program.reduction === isa.RED_SUM_COLS ? program.weightRegister!.dim : 0,
  };
}

/** Row chunks of a RED_SUM_COLS job, fixed by its row count alone: each chunk's column sums are
 *  added in row order by one prepared job (float32 or float64 as the job), and the chunks' sums in
 *  float64 in chunk order (sumColumns), so that the result does not depend on the worker count, on
 *  which worker ran what, or on the main thread's slicing. At most COLUMN_CHUNKS (one per worker of
 *  a large pool), of at least 64 rows (the blocked tiles' group). */
const COLUMN_CHUNKS = 8;

function columnChunks(nOuter: number): [number, number][] {
  const n = Math.max(1, Math.min(COLUMN_CHUNKS, Math.ceil(nOuter / 64)));
  return Array.from({ length: n }, (_, p) => [Math.round((p * nOuter) / n), Math.round(((p + 1) * nOuter) / n)]);
}

/** The column sums of the chunks (each an [nInner, columns] block), added in float64 in chunk
 *  order, in the job's dtype. One loop per dtype: the loop over a union of array types ran ~3x
 *  slower (17 ms per call at 4096 x 128 values, 8 chunks). */
function sumColumns(job: KernelJob, parts: readonly (Float32Array | Float64Array)[]): Float32Array | Float64Array {
  const total = new Float64Array(job.nInner * job.columns!);
  for (const part of parts) {
    if (part instanceof Float32Array) addFloat32(total, part);
    else addFloat64(total, part);
  }
  return job.f64 ? total : Float32Array.from(total);
}

function addFloat32(total: Float64Array, part: Float32Array): void {
  for (let q = 0; q < total.length; q++) total[q] = total[q]! + part[q]!;
}

function addFloat64(total: Float64Array, part: Float64Array): void {
  for (let q = 0; q < total.length; q++) total[q] = total[q]! + part[q]!;
}

/** Pairs each cluster visits. */
function clusterPairs(ranges: PlanRanges): Float64Array {
  const out = new Float64Array(ranges.slices.length);
  for (let c = 0; c < ranges.slices.length; c++) {
    const rows = ranges.outer[2 * c + 1]! - ranges.outer[2 * c]!;
    let pairs = 0;
    for (let r = c === 0 ? 0 : ranges.slices[c - 1]!; r < ranges.slices[c]!; r++) {
      pairs += rows * (ranges.inner[2 * r + 1]! - ranges.inner[2 * r]!);
    }
    out[c] = pairs;
  }
  return out;
}

const isWholeBuffer = (a: ArrayBufferView): boolean => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;

/** Values [from, to) of `d` as a reference to the pool's resident copy, when `d` is held resident
 *  (core/resident.ts: kMeans's points) and the pool keeps it; else null (the values are posted). */
function residentRef(pool: WorkerPool, d: KernelJob['data'][number], from: number, to: number): ResidentRef | null {
  if (d === null || Array.isArray(d) || !isResident(d)) return null;
  const key = pool.residentKey(d);
  return key === null ? null : { resident: key, from, to };
}

/** Values copied between two chances to yield in copyForPosting: a few ms of copying into fresh
 *  memory (a fresh 94 MB copy took ~150 ms on a 2-core Xeon, most of it page faults). */
const COPY_SLICE = 1 << 20;

const isShared = (a: ArrayBufferView): boolean =>
  typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;

/** A copy of values [from, to) of `d` for transfer to a worker. A large one is copied slice by slice
 *  with a yield to the event loop whenever one is due, so posting a 60000 x 784 variable does not
 *  block the event loop for the whole copy; an abort seen at a yield stops the copy. */
async function copyForPosting(
  d: Float32Array | Float64Array,
  from: number,
  to: number,
  signal: RunControl['signal'],
): Promise<Float32Array | Float64Array> {
  const length = d.length; // what the reduction was planned with (for the error below)
  if (to - from <= COPY_SLICE) return d.slice(from, to);
  const copy = d.BYTES_PER_ELEMENT === 8 ? new Float64Array(to - from) : new Float32Array(to - from);
  for (let k = from; k < to; k += COPY_SLICE) {
    if (k > from) {
      const due = yieldIfDue();
      if (due !== undefined) {
        await due;
        throwIfAborted(signal);
      }
      // The caller's code ran during the yield: a detached or shrunk array would copy as zeros.
      if (d.length < to) {
        // The engine knows arrays, not the names the caller gave them: say which array it is.
        throw new InputError(
          `a variable's data (a ${d.BYTES_PER_ELEMENT === 8 ? 'Float64Array' : 'Float32Array'} of ${length} values) now has ${d.length}: ` +
            'it was detached or resized while a reduction was reading it (the array is read when a reduction runs)',
        );
      }
    }
    copy.set(d.subarray(k, Math.min(to, k + COPY_SLICE)), k - from);
  }
  return copy;
}

/** One data entry ready to post: a resident array by reference; a shared array as it is; a small
 *  array that is its whole buffer as it is (structured cloning copies it); any other array copied
 *  (structured cloning a view clones its whole buffer; a large one is copied in slices), the copy
 *  listed for transfer. */
async function postEntry(
  pool: WorkerPool,
  d: KernelJob['data'][number],
  transfer: Transferable[],
  signal: RunControl['signal'],
): Promise<PostedJob['data'][number]> {
  if (d === null || Array.isArray(d)) return d;
  const array = d as Float32Array | Float64Array;
  const ref = residentRef(pool, array, 0, array.length);
  if (ref !== null) return ref;
  if (isShared(array) || (isWholeBuffer(array) && array.length <= COPY_SLICE)) return array;
  const copy = await copyForPosting(array, 0, array.length, signal);
  transfer.push(copy.buffer);
  return copy;
}

/** A job's data ready to post (postEntry); the copies are transferred. */
async function postable(
  job: KernelJob,
  pool: WorkerPool,
  signal: RunControl['signal'],
): Promise<{ job: PostedJob; transfer: Transferable[] }> {
  const transfer: Transferable[] = [];
  const data: PostedJob['data'][number][] = [];
  for (const d of job.data) data.push(await postEntry(pool, d, transfer, signal));
  return { job: { ...job, data }, transfer };
}

/** Outer rows [a, b) of a dense job as a job of its own: outer variables sliced (copied and
 *  transferred) or named in the pool's resident copy. */
async function rowPart(
  job: KernelJob,
  a: number,
  b: number,
  pool: WorkerPool,
  signal: RunControl['signal'],
): Promise<{ job: PostedJob; transfer: Transferable[] }> {
  const transfer: Transferable[] = [];
  const data: PostedJob['data'][number][] = [];
  for (let k = 0; k < job.data.length; k++) {
    const d = job.data[k]!;
    if (job.registers[k * JOB_REG_WORDS] !== isa.REG_OUTER_VAR) {
      data.push(await postEntry(pool, d, transfer, signal));
      continue;
    }
    const dim = job.registers[k * JOB_REG_WORDS + 1]!;
    const ref = residentRef(pool, d, a * dim, b * dim);
    if (ref !== null) {
      data.push(ref);
      continue;
    }
    const part = await copyForPosting(d as Float32Array | Float64Array, a * dim, b * dim, signal);
    transfer.push(part.buffer);
    data.push(part);
  }
  return { job: { ...job, data, nOuter: b - a, start: 0, end: b - a }, transfer };
}

function allocateOutputs(job: KernelJob): { values: Float32Array | Float64Array | null; indices: Int32Array | null } {
  const count = job.nOuter * job.outDim;
  return {
    values: job.hasValues ? (job.f64 ? new Float64Array(count) : new Float32Array(count)) : null,
    indices: job.hasIndices ? new Int32Array(count) : null,
  };
}

/** A part of a job for a worker: what to post, and where its output goes. */
interface Piece {
  post(signal: RunControl['signal']): Promise<{ job: PostedJob; transfer: Transferable[] }>;
  /** Output rows the piece computes (for progress). */
  rows: number;
  merge(out: JobOutput): void;
}

/**
 * Runs pieces on the pool, at most `inFlight` at a time (all at once when no control is asked for):
 * the signal is checked before each piece is posted, progress reported as each one is merged.
 */
async function runPieces(
  pool: WorkerPool,
  pieces: readonly Piece[],
  inFlight: number,
  control: RunControl,
): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    try {
      while (next < pieces.length && !failed) {
        throwIfAborted(control.signal);
        const piece = pieces[next++]!;
        const { job, transfer } = await piece.post(control.signal);
        piece.merge(await pool.run(job, transfer));
        control.onRows?.(piece.rows);
      }
    } catch (error) {
      failed = true; // the other lanes post nothing more
      throw error;
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, pieces.length) }, lane));
}

/** Runs a job on the pool, in `parts` parts (by rows, or by clusters of about equal pairs). */
async function runOnPool(
  pool: WorkerPool,
  job: KernelJob,
  parts: number,
  inFlight: number,
  control: RunControl,
): Promise<JobOutput> {
  if (parts <= 1) {
    let result: JobOutput | null = null;
    await runPieces(
      pool,
      [{ post: (signal) => postable(job, pool, signal), rows: job.nOuter, merge: (out) => (result = out) }],
      1,
      control,
    );
    return result!;
  }
  const ranges = job.ranges;
  if (ranges === null) {
    const result = allocateOutputs(job);
    const bounds = Array.from({ length: parts + 1 }, (_, p) => Math.round((p * job.nOuter) / parts));
    const pieces: Piece[] = [];
    for (let p = 0; p < parts; p++) {
      const [a, b] = [bounds[p]!, bounds[p + 1]!];
      if (b <= a) continue;
      pieces.push({
        post: (signal) => rowPart(job, a, b, pool, signal),
        rows: b - a,
        merge(out) {
          result.values?.set(out.values!, a * job.outDim);
          result.indices?.set(out.indices!, a * job.outDim);
        },
      });
    }
    await runPieces(pool, pieces, inFlight, control);
    return result;
  }
  // Block-sparse: contiguous groups of clusters of about equal pairs. Each part computes the full
  // output of its clusters; the first one's output is the result (rows in no cluster hold the empty
  // value there), later parts overwrite the rows of their clusters, as a sequential run does.
  const pairs = clusterPairs(ranges);
  const total = pairs.reduce((s, x) => s + x, 0);
  const groups: [number, number][] = [];
  let c0 = 0;
  let acc = 0;
  for (let c = 0; c < pairs.length; c++) {
    acc += pairs[c]!;
    if (acc >= (total * (groups.length + 1)) / parts && groups.length < parts - 1) {
      groups.push([c0, c + 1]);
      c0 = c + 1;
    }
  }
  if (c0 < pairs.length) groups.push([c0, pairs.length]);
  const d = job.outDim;
  const outputs: (JobOutput | null)[] = groups.map(() => null);
  const clusterRows = (a: number, b: number) => {
    let rows = 0;
    for (let c = a; c < b; c++) rows += Math.max(0, ranges.outer[2 * c + 1]! - ranges.outer[2 * c]!);
    return rows;
  };
  const pieces: Piece[] = groups.map(([a, b], g) => ({
    // Each piece posts its own copies (transferred), as structured cloning one shared posting would.
    post: async (signal) => {
      const posted = await postable(job, pool, signal);
      return { job: { ...posted.job, start: a, end: b }, transfer: posted.transfer };
    },
    rows: clusterRows(a, b),
    merge: (out) => (outputs[g] = out),
  }));
  await runPieces(pool, pieces, inFlight, control);
  const result = outputs[0]!;
  for (let g = 1; g < groups.length; g++) {
    const out = outputs[g]!;
    for (let c = groups[g]![0]; c < groups[g]![1]; c++) {
      const i0 = ranges.outer[2 * c]! * d;
      const i1 = ranges.outer[2 * c + 1]! * d;
      if (i1 <= i0) continue;
      result.values?.set(out.values!.subarray(i0, i1), i0);
      result.indices?.set(out.indices!.subarray(i0, i1), i0);
    }
  }
  return result;
}

/** The output of a RED_SSMW_LSE job ([rows, e + 2]) as the plan's values [rows, e] and the rows'
 *  softmax max and sum (ReductionOutput.softMax); other jobs' outputs unchanged. Rows that no
 *  cluster of a block-sparse pattern covers hold the empty value (NaN) in every column: theirs are
 *  those of an empty set, -inf and 0. */
function splitSoftMax(job: KernelJob, output: JobOutput): ReductionOutput {
  if (job.reduction !== isa.RED_SSMW_LSE) return output;
  const width = job.outDim;
  const e = width - 2;
  const all = output.values!;
  const rows = all.length / width;
  const make = (n: number) => (job.f64 ? new Float64Array(n) : new Float32Array(n));
  const values = make(rows * e);
  const max = make(rows);
  const sum = make(rows);
  for (let r = 0; r < rows; r++) {
    values.set(all.subarray(r * width, r * width + e), r * e);
    max[r] = all[r * width + e]!;
    sum[r] = all[r * width + e + 1]!;
  }
  if (job.ranges !== null) {
    const covered = new Uint8Array(rows);
    for (let c = 0; c < job.ranges.slices.length; c++) {
      covered.fill(1, job.ranges.outer[2 * c]!, job.ranges.outer[2 * c + 1]!);
    }
    for (let r = 0; r < rows; r++) {
      if (covered[r] === 0) {
        max[r] = -Infinity;
        sum[r] = 0;
      }
    }
  }
  return { values, indices: output.indices, softMax: { max, sum } };
}

/** The WebAssembly engine on one kernel instance (the main thread's), with the worker pool for large
 *  plans. It runs every plan, in float32 or float64; the engine every other one falls back to. */
export class WasmEngine implements Engine {
  readonly name = 'wasm' as const;
  readonly dtypes = ['float32', 'float64'] as const;
  private readonly mutex = new Mutex();

  constructor(private readonly kernel: KernelExports) {}

  /** Always null: every plan runs here (one too large for the kernel's memory is a ResourceLimitError
   *  from `reduce`, a limit of the machine rather than of the engine). */
  unsupported(_plan: ReductionPlan): string | null {
    return null;
  }

  async reduce(plan: ReductionPlan, control: RunControl = {}): Promise<ReductionOutput> {
    throwIfAborted(control.signal);
    const job = planJob(plan);
    // A named error before any part is copied or posted; the layout serves runHere's prepareJob.
    const layout = checkJobMemory(job, this.kernel.heapBase());
    // The work in small-D pairs (pairCost): what the thresholds are sized for.
    const pairs =
      (job.ranges === null ? job.nOuter * job.nInner : clusterPairs(job.ranges).reduce((s, x) => s + x, 0)) *
      pairCost(job);
    if ((job.columns ?? 0) > 0) return this.reduceWithColumns(job, layout, control, pairs);
    if (pairs >= thresholds.mainThreadMaxPairs) {
      const pool = await getWorkerPool();
      if (pool !== null) {
        const controlled = control.signal !== undefined || control.onRows !== undefined;
        const even = pairs >= thresholds.splitMinPairs ? pool.size : 1;
        // With a signal or progress: parts small enough to stop or report within ~50 ms, a pool's
        // worth in flight (more would only queue behind them and delay an abort).
        const parts = controlled
          ? Math.max(
              even,
              Math.min(
                job.ranges === null ? job.nOuter : job.end - job.start,
                Math.ceil(pairs / thresholds.controlPartPairs),
              ),
            )
          : even;
        try {
          return splitSoftMax(job, await runOnPool(pool, job, parts, controlled ? pool.size : parts, control));
        } catch (error) {
          if (!(error instanceof WorkerLostError)) throw error;
          // A worker died (or the pool was replaced): run here.
        }
      }
    }
    return splitSoftMax(job, await this.mutex.lock(() => this.runHere(job, layout, control)));
  }

  /** A RED_SUM_COLS job, by its fixed row chunks (columnChunks): on the pool, a pool's worth in
   *  flight (the signal checked before each is posted), else here one after the other. */
  private async reduceWithColumns(
    job: KernelJob,
    layout: JobLayout,
    control: RunControl,
    pairs: number,
  ): Promise<ReductionOutput> {
    const chunks = columnChunks(job.nOuter);
    const values = allocateOutputs(job).values!;
    const columns: (Float32Array | Float64Array)[] = new Array(chunks.length);
    // Chunks [p0, p1) of an output's column sums, one [nInner, columns] block each.
    const block = job.nInner * job.columns!;
    const takeColumns = (out: Float32Array | Float64Array, p0: number, p1: number): void => {
      for (let p = p0; p < p1; p++) columns[p] = out.subarray((p - p0) * block, (p - p0 + 1) * block);
    };
    const pool = pairs >= thresholds.mainThreadMaxPairs ? await getWorkerPool() : null;
    let done = false;
    if (pool !== null) {
      // One piece per worker, of consecutive chunks (the inner variables are posted once per piece);
      // with a signal or progress, one per chunk (~1/8 of the work each).
      const controlled = control.signal !== undefined || control.onRows !== undefined;
      const groups = controlled ? chunks.length : Math.min(pool.size, chunks.length);
      const pieces: Piece[] = Array.from({ length: groups }, (_, g) => {
        const [p0, p1] = [Math.floor((g * chunks.length) / groups), Math.floor(((g + 1) * chunks.length) / groups)];
        const [a, b] = [chunks[p0]![0], chunks[p1 - 1]![1]];
        const bounds = [...chunks.slice(p0, p1).map(([from]) => from - a), b - a];
        return {
          post: async (signal) => {
            const part = await rowPart(job, a, b, pool, signal);
            return { ...part, job: { ...part.job, columnChunks: bounds } };
          },
          rows: b - a,
          merge: (out) => {
            values.set(out.values!, a * job.outDim);
            takeColumns(out.columns!, p0, p1);
          },
        };
      });
      try {
        await runPieces(pool, pieces, pool.size, control);
        done = true;
      } catch (error) {
        if (!(error instanceof WorkerLostError)) throw error;
        // A worker died (or the pool was replaced): run here.
      }
    }
    if (!done) {
      // Prepared once; runHere stops its slices at the chunks' ends and reads each chunk's sums.
      const bounds = [...chunks.map(([a]) => a), job.nOuter];
      const out = await this.mutex.lock(() => this.runHere({ ...job, columnChunks: bounds }, layout, control));
      values.set(out.values!);
      takeColumns(out.columns!, 0, chunks.length);
    }
    return { values, indices: null, columns: sumColumns(job, columns) };
  }

  /**
   * Runs a job on this thread's kernel, a chunk at a time: each chunk sized from the speed measured
   * so far to take about CHUNK_TARGET_MS, the first one small. A chunk is rows (or clusters) over the
   * whole inner range; or, when fewer than ROW_GROUP rows would fit the budget and the reduction's
   * partial states merge (inner-split.ts), ROW_GROUP rows over a piece of the inner range, the group
   * finished over several chunks: so that a long inner range at large D is streamed once per group of
   * rows, not once per 3 rows, and the blocked tiles get the rows they are made for.
   */
  private async runHere(job: KernelJob, layout: JobLayout, control: RunControl): Promise<JobOutput> {
    throwIfAborted(control.signal);
    // The inner variables are tiled here a slice at a time (~1M values, a few ms each), not in
    // prepareJob at once: at D = 784 and 60000 points that is 47M values, ~100-300 ms.
    const innerVar = (k: number) => job.registers[k * JOB_REG_WORDS] === isa.REG_INNER_VAR && job.data[k] !== null;
    const prepared = prepareJob(this.kernel, job, layout, innerVar);
    const chunks = ColumnChunks.of(this.kernel, prepared);
    const tiles = Math.ceil(job.nInner / job.block);
    for (let k = 0; k < job.registers.length / JOB_REG_WORDS; k++) {
      if (!innerVar(k)) continue;
      const step = Math.max(
        1,
        Math.floor(thresholds.tileSliceValues / (job.block * job.registers[k * JOB_REG_WORDS + 1]!)),
      );
      for (let b = 0; b < tiles; b += step) {
        tileInnerVariable(this.kernel, job, layout.bases[k]!, k, b, Math.min(tiles, b + step));
        await checkpoint(control.signal);
      }
    }
    const ranges = job.ranges;
    const pairsOf = ranges === null ? null : clusterPairs(ranges);
    const split = innerSplitOf(job);
    const elt = job.f64 ? 8 : 4;
    let group: RowGroupState | null = null;
    let j0 = 0;
    // The first chunk's budget in pairs of this job (pairCost: ~1-5 ms of work at any D).
    let budget = thresholds.fixedChunkPairs || Math.max(1, Math.floor(FIRST_CHUNK_PAIRS / pairCost(job)));
    let pairsPerMs = 0;
    for (let start = job.start; start < job.end;) {
      let pairs: number;
      let rows: number;
      const t0 = performance.now();
      if (pairsOf === null) {
        const fit = Math.floor(budget / Math.max(1, job.nInner));
        if (
          group === null &&
          split !== null &&
          fit < thresholds.rowGroup &&
          job.nInner > 2 * job.block &&
          align16(layout.end) + thresholds.rowGroup * job.outDim * (elt + 4) + 32 <= MAX_MEMORY_BYTES
        ) {
          group = new RowGroupState(split, start, Math.min(job.end, start + thresholds.rowGroup), job.outDim, job.k);
          j0 = 0;
        }
        if (group !== null) {
          // ROW_GROUP rows over inner indices [j0, j1): whole blocks, at least one.
          const groupRows = group.i1 - group.i0;
          const span = Math.max(1, Math.floor(budget / groupRows / job.block)) * job.block;
          const j1 = Math.min(job.nInner, j0 + span);
          const count = groupRows * job.outDim;
          // The piece's outputs: [groupRows, outDim] values, then indices, past the job's memory.
          const valuesAt = align16(layout.end);
          const indicesAt = split!.pieceIndices ? align16(valuesAt + count * elt) : 0;
          ensureMemory(this.kernel, align16(valuesAt + count * elt) + count * 4, job.kind);
          runInnerRange(this.kernel, prepared, group.i0, group.i1, j0, j1, split!.reduction, {
            values: valuesAt,
            indices: indicesAt,
          });
          const buffer = this.kernel.memory.buffer;
          group.add(
            job.f64 ? new Float64Array(buffer, valuesAt, count) : new Float32Array(buffer, valuesAt, count),
            indicesAt > 0 ? new Int32Array(buffer, indicesAt, count) : null,
            j0,
          );
          pairs = groupRows * (j1 - j0);
          rows = 0;
          j0 = j1;
          if (j1 === job.nInner) {
            group.write(outputValues(this.kernel, prepared), outputIndices(this.kernel, prepared));
            rows = groupRows;
            start = group.i1;
            group = null;
          }
        } else {
          const end = Math.min(job.end, start + Math.max(1, fit), chunks?.limit() ?? Infinity);
          runPrepared(this.kernel, prepared, start, end);
          chunks?.reached(end);
          pairs = (end - start) * job.nInner;
          rows = end - start;
          start = end;
        }
      } else {
        let end = start + 1;
        pairs = pairsOf[start]!;
        while (end < job.end && pairs + pairsOf[end]! <= budget) pairs += pairsOf[end++]!;
        rows = 0;
        for (let c = start; c < end; c++) rows += Math.max(0, ranges!.outer[2 * c + 1]! - ranges!.outer[2 * c]!);
        runPrepared(this.kernel, prepared, start, end);
        start = end;
      }
      const ms = performance.now() - t0;
      // A running estimate of the speed (pairs per ms), from chunks long enough to time.
      if (ms > 0.5) pairsPerMs = pairsPerMs === 0 ? pairs / ms : 0.5 * (pairsPerMs + pairs / ms);
      if (thresholds.fixedChunkPairs > 0) budget = thresholds.fixedChunkPairs;
      else if (pairsPerMs > 0) budget = Math.max(1, pairsPerMs * thresholds.chunkTargetMs);
      else budget *= 4;
      if (rows > 0) control.onRows?.(rows);
      if (start < job.end) await checkpoint(control.signal);
    }
    return chunks?.outputs() ?? readOutputs(this.kernel, prepared);
  }
}

/** The job's output values in the kernel's memory (a view), or null when it has none. */
function outputValues(kernel: KernelExports, prepared: PreparedJob): Float32Array | Float64Array | null {
  const { job, outValues } = prepared;
  if (outValues === 0) return null;
  const count = job.nOuter * job.outDim;
  const buffer = kernel.memory.buffer;
  return job.f64 ? new Float64Array(buffer, outValues, count) : new Float32Array(buffer, outValues, count);
}

/** The job's output indices in the kernel's memory (a view), or null when it has none. */
function outputIndices(kernel: KernelExports, prepared: PreparedJob): Int32Array | null {
  return prepared.outIndices === 0
    ? null
    : new Int32Array(kernel.memory.buffer, prepared.outIndices, prepared.job.nOuter * prepared.job.outDim);
}

/** @internal Hooks for the tests: the pair thresholds of the scheduler. */
export const wasmEngineTesting = {
  configure(next: Partial<typeof thresholds>): void {
    Object.assign(thresholds, next);
  },
  reset(): void {
    thresholds.splitMinPairs = SPLIT_MIN_PAIRS;
    thresholds.mainThreadMaxPairs = MAIN_THREAD_MAX_PAIRS;
    thresholds.controlPartPairs = CONTROL_PART_PAIRS;
    thresholds.chunkTargetMs = CHUNK_TARGET_MS;
    thresholds.rowGroup = ROW_GROUP;
    thresholds.fixedChunkPairs = 0;
    thresholds.tileSliceValues = TILE_SLICE_VALUES;
  },
};
