// Reductions whose rows the main thread may compute in pieces of the inner range (wasm-engine.ts
// runHere): the kernel runs outer rows [i0, i1) against inner indices [j0, j1) (worker-job.ts
// runInnerRange) and the pieces' outputs are merged here into the state of the whole row.
//
// WHY: on the main thread a reduction runs in chunks of ~15 ms so that the event loop keeps turning.
// At large D one row of a large inner range is already most of that budget (argKMin at D = 784
// against 60000 points: ~3 rows per chunk), so the inner variables streamed through the cache once
// per 3 rows and the register-blocked tiles, made for up to 64 rows per pass, got 3: one thread ran
// 4.6x slower than two. Pieces of 64 rows x a part of the inner range keep both the time and the reuse.
//
// EXACTNESS: min/max, arg-min/max and the K-min family merge exactly (ties go to the earlier piece,
// whose indices are lower, as in one run; empty slots, index -1, lose): the results are bit for bit
// those of one run. Sums and log-sum-exp are merged in float64 from the pieces' outputs in T: the
// order of the additions differs from one run (which sums blocks in T, then in float64), so results
// differ by rounding (a float32 output by about one rounding of each piece's partial sum).
// RED_SUM_ACC64 in float32 (a sum asked to accumulate every term in float64), the weighted log-sum-
// exp and the softmax-weighted sums are not cut (null from innerSplitOf).
import * as isa from '../../assembly/isa.js';
import type { KernelJob } from './worker-job.js';

type Merge = 'min' | 'max' | 'kmin' | 'sum' | 'lse';

/** How the pieces of a reduction are run and merged. */
export interface InnerSplit {
  /** The reduction each piece runs: the variant with values and indices for the selections. Every
   *  piece outputs values; indices when pieceIndices. */
  readonly reduction: number;
  readonly pieceIndices: boolean;
  readonly merge: Merge;
}

/** How `job`'s rows can be cut along the inner range, or null when they cannot. */
export function innerSplitOf(job: KernelJob): InnerSplit | null {
  // The column sums of RED_SUM_COLS are not split (each run adds its rows into them).
  if (job.ranges !== null || job.reduction === isa.RED_SUM_COLS) return null;
  const select = (reduction: number, merge: Merge): InnerSplit => ({
    reduction,
    pieceIndices: true,
    merge,
  });
  switch (job.reduction) {
    case isa.RED_MIN:
    case isa.RED_ARGMIN:
    case isa.RED_MINARGMIN:
      return select(isa.RED_MINARGMIN, 'min');
    case isa.RED_MAX:
    case isa.RED_ARGMAX:
    case isa.RED_MAXARGMAX:
      return select(isa.RED_MAXARGMAX, 'max');
    case isa.RED_KMIN:
    case isa.RED_ARGKMIN:
    case isa.RED_KMINARGKMIN:
      return select(isa.RED_KMINARGKMIN, 'kmin');
    case isa.RED_SUM_ACC64:
      return job.f64 ? { reduction: isa.RED_SUM, pieceIndices: false, merge: 'sum' } : null;
    case isa.RED_SUM:
      return { reduction: isa.RED_SUM, pieceIndices: false, merge: 'sum' };
    case isa.RED_LSE:
      return { reduction: isa.RED_LSE, pieceIndices: false, merge: 'lse' };
    default:
      return null;
  }
}

/** log(exp(a) + exp(b)) in float64, with the kernel's conventions: NaN anywhere gives NaN, +inf
 *  anywhere +inf, two -inf -inf. */
function logAddExp(a: number, b: number): number {
  const m = Math.max(a, b);
  if (m === Infinity || m === -Infinity || Number.isNaN(m)) return m;
  return m + Math.log1p(Math.exp(Math.min(a, b) - m));
}

/** The merged state of outer rows [i0, i1) over the pieces of the inner range run so far. */
export class RowGroupState {
  private readonly values: Float64Array;
  private readonly indices: Int32Array | null;
  private pieces = 0;

  constructor(
    private readonly split: InnerSplit,
    readonly i0: number,
    readonly i1: number,
    private readonly outDim: number,
    /** K (the K-min family) and the formula's width d: slot q = t * d + k of a row. */
    private readonly k: number,
  ) {
    const n = (i1 - i0) * outDim;
    this.values = new Float64Array(n);
    this.indices = split.pieceIndices ? new Int32Array(n) : null;
  }

  /** Merges a piece's outputs ([rows, outDim], indices relative to j0) in. */
  add(values: Float32Array | Float64Array, indices: Int32Array | null, j0: number): void {
    const first = this.pieces++ === 0;
    const acc = this.values;
    const n = acc.length;
    const idx = this.indices;
    switch (this.split.merge) {
      case 'sum':
        if (first) acc.set(values);
        else for (let q = 0; q < n; q++) acc[q] = acc[q]! + values[q]!;
        return;
      case 'lse':
        if (first) acc.set(values);
        else for (let q = 0; q < n; q++) acc[q] = logAddExp(acc[q]!, values[q]!);
        return;
      case 'min':
      case 'max': {
        const min = this.split.merge === 'min';
        for (let q = 0; q < n; q++) {
          const j = indices![q]!;
          if (j < 0 && !first) continue;
          // strict: a tie keeps the earlier piece's (lower) index
          if (first || idx![q]! < 0 || (min ? values[q]! < acc[q]! : values[q]! > acc[q]!)) {
            acc[q] = values[q]!;
            idx![q] = j < 0 ? -1 : j + j0;
          }
        }
        return;
      }
      case 'kmin':
        this.mergeKMin(values, indices!, j0, first);
        return;
    }
  }

  /** Merges the sorted lists of K (value, index) of each row and component k (slots k, k + d, ...). */
  private mergeKMin(values: Float32Array | Float64Array, indices: Int32Array, j0: number, first: boolean): void {
    const acc = this.values;
    const idx = this.indices!;
    const K = this.k;
    const d = this.outDim / K;
    const rows = this.i1 - this.i0;
    const va = new Float64Array(K);
    const ia = new Int32Array(K);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < d; c++) {
        const base = r * this.outDim + c;
        if (first) {
          for (let t = 0; t < K; t++) {
            const q = base + t * d;
            acc[q] = values[q]!;
            idx[q] = indices[q]! < 0 ? -1 : indices[q]! + j0;
          }
          continue;
        }
        for (let t = 0; t < K; t++) {
          va[t] = acc[base + t * d]!;
          ia[t] = idx[base + t * d]!;
        }
        let a = 0;
        let b = 0;
        for (let t = 0; t < K; t++) {
          const q = base + t * d;
          const aOk = a < K && ia[a]! >= 0;
          const bq = base + b * d;
          const bOk = b < K && indices[bq]! >= 0;
          if (aOk && (!bOk || va[a]! <= values[bq]!)) {
            acc[q] = va[a]!;
            idx[q] = ia[a++]!;
          } else if (bOk) {
            acc[q] = values[bq]!;
            idx[q] = indices[bq]! + j0;
            b++;
          } else {
            acc[q] = NaN;
            idx[q] = -1;
          }
        }
      }
    }
  }

  /** Writes the merged rows as the job's outputs (row i at `values` / `indices` row i, either may
   *  be null when the reduction has none). */
  write(values: Float32Array | Float64Array | null, indices: Int32Array | null): void {
    const at = this.i0 * this.outDim;
    if (values !== null) values.set(this.values, at);
    if (indices !== null) indices.set(this.indices!, at);
  }
}
