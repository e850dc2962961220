// A k-d tree order of a point cloud: GeomLoss's spatial order and multiscale hierarchy
// (src/geomloss/spatial.ts, hierarchy.ts) use it; kdOrder and kdOrderAsync are public (src/index.ts),
// and GeomLoss imports them from there like the rest of the core. (knn's search builds its own tree, src/core/knn-tree.ts:
// it needs no full leaves, and a Morton sort costs a tenth of these selections.)
import { InputError } from './errors.js';
import { runSteps, type AbortSignalLike } from './scheduling.js';

/**
 * A k-d tree order of N points: the rows are split in two at the median of their widest coordinate
 * until at most `leaf` remain. A node of rows [lo, hi) with more than `leaf` rows splits at
 * min(hi - 1, lo + ceil((hi - lo) / 2 / leaf) * leaf) (full leaves), its smaller rows by that
 * coordinate first, ties broken by row index: the same tree on every run, and its shape depends on
 * N and `leaf` only.
 *
 * Synchronous: it returns when the order is done, without yielding to the event loop (tens of ms
 * at 10^5 points, about ten times that at 10^6). Use kdOrderAsync, or a worker, where a page or
 * a server must stay responsive meanwhile.
 * @param data the points, row-major [N, D] (any array-like of numbers: Float32Array, Float64Array, number[]).
 * @param N the number of points (rows of `data`).
 * @param D the dimension (columns of `data`); any D >= 1.
 * @param leaf the most rows of a leaf, a positive integer.
 * @returns `perm`: row r of the order is input row perm[r] (rows of a leaf consecutive, neighbouring
 *   leaves mostly consecutive too); `leaves`: the leaves as flat [start, end) pairs of positions in
 *   the order, in order.
 * @throws InputError when N, D or leaf is not a positive integer (N may be 0), when `data` holds fewer
 *   than N * D numbers, or when a coordinate is not finite.
 * @example
 * ```ts
 * const { perm, leaves } = kdOrder(points, N, 3, 32); // leaves of at most 32 nearby points
 * ```
 */
export function kdOrder(
  data: ArrayLike<number>,
  N: number,
  D: number,
  leaf: number,
): {
  /** Row r of the order is input row perm[r]. */
  perm: Int32Array;
  /** The leaves as flat [start, end) pairs of positions in the order. */
  leaves: Int32Array;
} {
  const build = kdBuild(data, N, D, leaf);
  while (build.step());
  return build.result();
}

/**
 * kdOrder, in time slices: the same `perm` and `leaves` (the same steps), with a yield to the event
 * loop between two steps when the library's yield interval has passed (a step scans or partitions
 * about 3·10^4 rows: a node of a million points is split over many steps), and the signal checked
 * at every yield. For pages and servers that must stay responsive: kdOrder of 10^6 3-D points holds
 * the event loop for most of a second; this one never for more than a slice. GeomLoss's online
 * backend sorts its clouds with it.
 * @param data the points, row-major [N, D], as kdOrder.
 * @param N the number of points.
 * @param D the dimension.
 * @param leaf the most rows of a leaf, a positive integer.
 * @param signal aborts the build: the promise rejects with the signal's reason.
 * @returns kdOrder's `perm` and `leaves`, identical.
 * @throws InputError as kdOrder (the promise rejects); rejects with the signal's reason when it aborts.
 * @example
 * ```ts
 * const { perm, leaves } = await kdOrderAsync(points, N, 3, 32, controller.signal);
 * ```
 */
export async function kdOrderAsync(
  data: ArrayLike<number>,
  N: number,
  D: number,
  leaf: number,
  signal?: AbortSignalLike,
): Promise<{
  /** Row r of the order is input row perm[r]. */
  perm: Int32Array;
  /** The leaves as flat [start, end) pairs of positions in the order. */
  leaves: Int32Array;
}> {
  const build = kdBuild(data, N, D, leaf);
  await runSteps(build.step, signal);
  return build.result();
}

/** kdOrder's work as steps: `step()` does a bounded part of one node's split (its bounds scan, then
 *  its selection, each in pieces of about STEP_ROWS rows) or records one leaf, and says whether any
 *  work is left. The loops live in these synchronous closures, not in kdOrderAsync: V8 does not replace a
 *  running async function by its optimised code. */
function kdBuild(
  data: ArrayLike<number>,
  N: number,
  D: number,
  leaf: number,
): { step: () => boolean; result: () => { perm: Int32Array; leaves: Int32Array } } {
  checkArguments(data, N, D, leaf);
  const perm = new Int32Array(N);
  // The coordinates in the current order (rows move with perm): every pass over a node's rows reads
  // memory in order. Reading them through perm (selectRankIndexed's way) cost 2x at 10^5 points and
  // 4.5x at 10^6 (A/B in one process), mostly cache misses.
  // Filled (and checked finite) by the first steps, STEP_ROWS rows each: at 10^6 points the copy alone
  // is tens of ms.
  const pts = new Float64Array(N * D);
  let copied = 0;
  const mn = new Float64Array(D);
  const mx = new Float64Array(D);
  const leaves: number[] = [];
  const stack: number[] = [0, N];
  let axis = 0;
  const key = (at: number): number => pts[at * D + axis]!;
  const swap = (i: number, j: number): void => {
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
    for (let c = 0; c < D; c++) {
      const u = pts[i * D + c]!;
      pts[i * D + c] = pts[j * D + c]!;
      pts[j * D + c] = u;
    }
  };
  // The node being split: its bounds scan and its selection each resume where the last step left
  // them, so that no step does more than about STEP_ROWS rows of work (the root of 10^6 points
  // would otherwise be one step of a few hundred ms).
  let node: { lo: number; hi: number; mid: number; scanned: number; selection: RankSelection | null } | null = null;
  const step = (): boolean => {
    if (copied < N) {
      const end = Math.min(N, copied + STEP_ROWS);
      copyFinite(data, D, copied, end, pts, perm);
      copied = end;
      return true;
    }
    if (node === null) {
      if (stack.length === 0) return false;
      const hi = stack.pop()!;
      const lo = stack.pop()!;
      if (hi - lo <= leaf) {
        leaves.push(lo, hi);
        return stack.length > 0;
      }
      mn.fill(Infinity);
      mx.fill(-Infinity);
      // Split at a multiple of the leaf size near the median, so that the leaves are full: the rows
      // before `mid` are the smaller ones by that coordinate (then by row: a total order, so the same
      // tree on every run).
      const mid = Math.min(hi - 1, lo + Math.ceil((hi - lo) / 2 / leaf) * leaf);
      node = { lo, hi, mid, scanned: lo, selection: null };
    }
    const { lo, hi, mid } = node;
    if (node.selection === null) {
      const end = Math.min(hi, node.scanned + STEP_ROWS);
      for (let r = node.scanned; r < end; r++) {
        for (let k = 0; k < D; k++) {
          const v = pts[r * D + k]!;
          if (v < mn[k]!) mn[k] = v;
          if (v > mx[k]!) mx[k] = v;
        }
      }
      node.scanned = end;
      if (end < hi) return true;
      axis = 0;
      let widest = -1;
      for (let k = 0; k < D; k++) {
        if (mx[k]! - mn[k]! > widest) {
          widest = mx[k]! - mn[k]!;
          axis = k;
        }
      }
      node.selection = new RankSelection(perm, lo, hi, mid, key, swap);
      return true;
    }
    if (!node.selection.advance(STEP_ROWS)) return true;
    node = null;
    // The right half goes on the stack first: the left one pops first, leaves come out in order.
    stack.push(mid, hi, lo, mid);
    return true;
  };
  return { step, result: () => ({ perm, leaves: Int32Array.from(leaves) }) };
}

/**
 * The nodes of kdOrder's tree for N rows and leaves of at most `leaf`, in preorder (its shape depends
 * on N and `leaf` only): node n covers positions [start[n], end[n]) of the order; an inner node's
 * children are left[n] and right[n] (left[n] = n + 1), a leaf has left[n] = -1 and is leaf number
 * leafOf[n] of kdOrder's `leaves`.
 */
export function kdTreeNodes(
  N: number,
  leaf: number,
): { start: Int32Array; end: Int32Array; left: Int32Array; right: Int32Array; leafOf: Int32Array } {
  const start: number[] = [];
  const end: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  const leafOf: number[] = [];
  let leaves = 0;
  // Explicit stack of (lo, hi, the parent whose right child this is, or -1).
  const stack: number[] = [0, N, -1];
  while (stack.length > 0) {
    const parent = stack.pop()!;
    const hi = stack.pop()!;
    const lo = stack.pop()!;
    const n = start.length;
    if (parent >= 0) right[parent] = n;
    start.push(lo);
    end.push(hi);
    if (hi - lo <= leaf) {
      left.push(-1);
      right.push(-1);
      leafOf.push(leaves++);
      continue;
    }
    // kdOrder's split rule.
    const mid = Math.min(hi - 1, lo + Math.ceil((hi - lo) / 2 / leaf) * leaf);
    left.push(n + 1);
    right.push(-1);
    leafOf.push(-1);
    stack.push(mid, hi, n, lo, mid, -1);
  }
  return {
    start: Int32Array.from(start),
    end: Int32Array.from(end),
    left: Int32Array.from(left),
    right: Int32Array.from(right),
    leafOf: Int32Array.from(leafOf),
  };
}

/** Rows of work (scanned, or compared by the selection) in one step of kdBuild: ~1 ms. */
const STEP_ROWS = 1 << 15;

/**
 * Reorders positions [lo, hi) so that position k holds the row of rank k - lo by (key, row index),
 * with no larger row before it and no smaller one after it: Hoare's selection with median-of-three
 * pivots, expected linear time (a full sort at every level of the tree cost ~0.6 s at 10^5 points).
 * The one selection of both kdOrder (whose points move with perm) and selectRankIndexed (whose points
 * stay in input order): `key(at)` is the coordinate of the row at position `at`, perm[at] that row,
 * and `swap(i, j)` exchanges positions i and j (perm and whatever moves with it).
 * Resumable: `advance(budget)` runs until about `budget` rows were compared, between two exchanges of
 * a partition (the state is the partition's window [l, r], its pointers and its pivot), and says
 * whether the selection is done; the result does not depend on the budgets.
 */
class RankSelection {
  private l: number;
  private r: number;
  private i = 0;
  private j = -1;
  private pv = 0;
  private pr = 0;
  private partitioning = false;
  private done = false;

  constructor(
    private readonly perm: Int32Array,
    lo: number,
    hi: number,
    private readonly k: number,
    private readonly key: (at: number) => number,
    private readonly swap: (i: number, j: number) => void,
  ) {
    this.l = lo;
    this.r = hi - 1;
  }

  advance(budget: number): boolean {
    const { perm, k, key, swap } = this;
    const below = (p: number, q: number): boolean => {
      const a = key(p);
      const b = key(q);
      return a < b || (a === b && perm[p]! < perm[q]!);
    };
    let { l, r, i, j, pv, pr } = this;
    let work = 0;
    while (!this.done && r > l) {
      if (!this.partitioning) {
        const m = (l + r) >>> 1;
        const at = below(l, m) ? (below(m, r) ? m : below(l, r) ? r : l) : below(l, r) ? l : below(m, r) ? r : m;
        pv = key(at);
        pr = perm[at]!;
        i = l;
        j = r;
        this.partitioning = true;
      }
      while (i <= j) {
        if (work >= budget) {
          Object.assign(this, { l, r, i, j, pv, pr });
          return false;
        }
        const i0 = i;
        const j0 = j;
        for (let v = key(i); v < pv || (v === pv && perm[i]! < pr); v = key(i)) i++;
        for (let v = key(j); pv < v || (pv === v && pr < perm[j]!); v = key(j)) j--;
        work += i - i0 + (j0 - j) + 1;
        if (i <= j) {
          swap(i, j);
          i++;
          j--;
        }
      }
      this.partitioning = false;
      // Positions l..j <= pivot <= i..r; the rank k is in one of them, or between (then in place).
      if (k <= j) r = j;
      else if (k >= i) l = i;
      else this.done = true;
    }
    this.done = true;
    return true;
  }
}

/** RankSelection, run to the end. */
function selectRank(
  perm: Int32Array,
  lo: number,
  hi: number,
  k: number,
  key: (at: number) => number,
  swap: (i: number, j: number) => void,
): void {
  new RankSelection(perm, lo, hi, k, key, swap).advance(Infinity);
}

/** Copies rows [from, to) of `data` into `pts` and numbers them in `perm`; refuses a coordinate that
 *  is not finite (NaN would leave the median selection without a total order: a meaningless tree). */
function copyFinite(
  data: ArrayLike<number>,
  D: number,
  from: number,
  to: number,
  pts: Float64Array,
  perm: Int32Array,
): void {
  for (let i = from; i < to; i++) {
    perm[i] = i;
    for (let c = 0; c < D; c++) {
      const v = data[i * D + c]!;
      if (!Number.isFinite(v))
        throw new InputError(`kdOrder: coordinate ${c} of point ${i} is ${String(v)}, not finite`);
      pts[i * D + c] = v;
    }
  }
}

function checkArguments(data: ArrayLike<number>, N: number, D: number, leaf: number): void {
  const count = (v: number, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  if (!count(N, 0)) throw new InputError(`kdOrder: N must be a non-negative integer, got ${String(N)}`);
  if (!count(D, 1)) throw new InputError(`kdOrder: D must be a positive integer, got ${String(D)}`);
  if (!count(leaf, 1)) throw new InputError(`kdOrder: leaf must be a positive integer, got ${String(leaf)}`);
  if (data === null || typeof data !== 'object' || typeof data.length !== 'number')
    throw new InputError('kdOrder: data must be an array of numbers (row-major [N, D])');
  if (data.length < N * D)
    throw new InputError(`kdOrder: data holds ${data.length} numbers, fewer than N * D = ${N} * ${D}`);
}

/**
 * kdOrder's selection for callers that keep their points in input order: reorders perm[lo, hi) so
 * that perm[k] is the row of rank k - lo by (`data[row * D + axis]`, row index), reading rows through
 * perm. Internal (not re-exported by src/index.ts): GeomLoss's hierarchy builds the top of kdOrder's
 * tree in time slices with it (src/geomloss/hierarchy.ts). The same routine as kdOrder's (selectRank),
 * with only perm moving.
 */
export function selectRankIndexed(
  perm: Int32Array,
  lo: number,
  hi: number,
  k: number,
  data: ArrayLike<number>,
  D: number,
  axis: number,
): void {
  selectRank(
    perm,
    lo,
    hi,
    k,
    (at) => data[perm[at]! * D + axis]!,
    (i, j) => {
      const t = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = t;
    },
  );
}
