// The spatial tree of knn's search (src/core/knn.ts): points sorted by Morton code (a radix sort),
// then split where the code's highest differing bit flips, which halves the node's cell along one
// axis, until a node holds at most `cap` rows. At 10^5 points in 3-D it costs a few ms where the
// median k-d tree of kd-order.ts cost ~50 ms (a selection per level, moving the coordinates): the
// search needs nearby rows grouped and a tree over the groups, not kdOrder's full leaves.
import { runSteps, type AbortSignalLike } from './scheduling.js';

/** A tree's nodes in preorder (children after their parent): node n covers positions
 *  [start[n], end[n]) of the order; an inner node's children are left[n] = n + 1 and right[n], a leaf
 *  has left[n] = -1 and is leaf number leafOf[n]. */
export interface TreeNodes {
  start: Int32Array;
  end: Int32Array;
  left: Int32Array;
  right: Int32Array;
  leafOf: Int32Array;
}

/** A point order and its tree. */
export interface KnnTree {
  /** Row r of the order is input row perm[r]. */
  perm: Int32Array;
  /** The leaves as flat [start, end) pairs of positions, in order. */
  leaves: Int32Array;
  nodes: TreeNodes;
}

/** Bits of a Morton code, three radix passes of RADIX_BITS. */
const RADIX_BITS = 10;
const RADIX = 1 << RADIX_BITS;
const CODE_BITS = 3 * RADIX_BITS;
/** Rows of one pass per step (~1 ms or less): at 10^6 points no step nears the yield interval. */
const STEP_ROWS = 1 << 16;

/**
 * Builds the tree of `data` ([N, D] row-major, finite: knn's inputs are checked) with leaves of at
 * most `cap` rows, in steps with a yield to the event loop when the library's interval has passed
 * and the signal checked there. Deterministic: the same tree for the same points on every run.
 * Points whose codes are equal (closer than the code's resolution in the node's box) get codes of
 * their own box; equal points are split by count.
 */
export async function knnTreeAsync(
  data: ArrayLike<number>,
  N: number,
  D: number,
  cap: number,
  signal?: AbortSignalLike,
): Promise<KnnTree> {
  const build = new TreeBuild(data, N, D, cap);
  await runSteps(() => build.step(), signal);
  return build.result();
}

/** The build's state; `step()` does one bounded piece and says whether any is left. (The loops
 *  live in these methods, not in the async driver, which V8 would not optimise while it runs.) */
class TreeBuild {
  private perm: Int32Array;
  private code: Uint32Array;
  private permB: Int32Array;
  private codeB: Uint32Array;
  private readonly bits: number;
  private readonly spread: Uint32Array;
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  private readonly counts = new Int32Array(3 * RADIX);
  private phase = 0;
  private at = 0;
  private readonly stack: number[];
  private readonly start: number[] = [];
  private readonly end: number[] = [];
  private readonly left: number[] = [];
  private readonly right: number[] = [];
  private readonly leafOf: number[] = [];
  private readonly leafList: number[] = [];

  constructor(
    private readonly data: ArrayLike<number>,
    private readonly N: number,
    private readonly D: number,
    private readonly cap: number,
  ) {
    this.perm = new Int32Array(N);
    this.code = new Uint32Array(N);
    this.permB = new Int32Array(N);
    this.codeB = new Uint32Array(N);
    this.bits = Math.floor(CODE_BITS / D);
    this.spread = spreadTable(D, Math.min(this.bits, RADIX_BITS));
    this.lo = new Float64Array(D).fill(Infinity);
    this.hi = new Float64Array(D).fill(-Infinity);
    // (lo, hi, the parent whose right child this is or -1, 1 when its points are all equal).
    this.stack = [0, N, -1, 0];
  }

  step(): boolean {
    const { N } = this;
    switch (this.phase) {
      case 0: {
        // The bounding box.
        const to = Math.min(N, this.at + STEP_ROWS);
        widen(this.data, this.D, this.at, to, null, this.lo, this.hi);
        this.at = to;
        break;
      }
      case 1: {
        const to = Math.min(N, this.at + STEP_ROWS);
        for (let r = this.at; r < to; r++) this.perm[r] = r;
        encode(this.data, this.D, this.perm, this.at, to, this.lo, this.hi, this.bits, this.spread, this.code);
        this.at = to;
        break;
      }
      case 2: {
        const to = Math.min(N, this.at + STEP_ROWS);
        countDigits(this.code, this.at, to, this.counts);
        this.at = to;
        if (to === N) prefixSums(this.counts, 0);
        break;
      }
      case 3:
      case 4:
      case 5: {
        const pass = this.phase - 3;
        const to = Math.min(N, this.at + STEP_ROWS);
        scatter(this.code, this.perm, this.at, to, pass, this.counts, this.codeB, this.permB);
        this.at = to;
        if (to === N) this.swapBuffers();
        break;
      }
      case 6:
        return this.nodesStep();
      default:
        return false;
    }
    if (this.at === N) {
      this.phase++;
      this.at = 0;
    }
    return true;
  }

  private swapBuffers(): void {
    [this.code, this.codeB] = [this.codeB, this.code];
    [this.perm, this.permB] = [this.permB, this.perm];
  }

  /** Pops nodes until about STEP_ROWS rows of work were done; false when the tree is complete. */
  private nodesStep(): boolean {
    const { stack, cap } = this;
    let work = 0;
    while (stack.length > 0 && work < STEP_ROWS) {
      const flat = stack.pop()!;
      const parent = stack.pop()!;
      const hi = stack.pop()!;
      const lo = stack.pop()!;
      let mid = -1;
      if (hi - lo > cap) {
        if (flat === 0 && this.code[lo] === this.code[hi - 1]) {
          // One cell at this resolution: codes of the node's own box, or a split by count when its
          // points are all equal.
          work += hi - lo;
          if (this.refine(lo, hi)) {
            stack.push(lo, hi, parent, 0);
          } else {
            stack.push(lo, hi, parent, 1);
          }
          continue;
        }
        mid = flat === 1 ? lo + Math.ceil((hi - lo) / 2 / cap) * cap : this.splitAt(lo, hi);
        work += 32;
      }
      const n = this.start.length;
      if (parent >= 0) this.right[parent] = n;
      this.start.push(lo);
      this.end.push(hi);
      if (mid < 0) {
        this.left.push(-1);
        this.right.push(-1);
        this.leafOf.push(this.leafList.length / 2);
        this.leafList.push(lo, hi);
      } else {
        this.left.push(n + 1);
        this.right.push(-1);
        this.leafOf.push(-1);
        // The right child goes on the stack first: the left one pops first (preorder).
        stack.push(mid, hi, n, flat, lo, mid, -1, flat);
      }
    }
    return stack.length > 0;
  }

  /** The first position of [lo, hi) whose code has the highest bit in which code[lo] and
   *  code[hi - 1] differ (the codes are sorted and agree above it): the cell's two halves. */
  private splitAt(lo: number, hi: number): number {
    const code = this.code;
    const bit = 1 << (31 - Math.clz32(code[lo]! ^ code[hi - 1]!));
    let a = lo;
    let b = hi - 1;
    while (a < b) {
      const m = (a + b) >>> 1;
      if ((code[m]! & bit) !== 0) b = m;
      else a = m + 1;
    }
    return a;
  }

  /** Re-encodes rows [lo, hi) in their own bounding box and sorts them; false when the box is a point
   *  (then no code separates them). */
  private refine(lo: number, hi: number): boolean {
    const { D, perm, code } = this;
    const bl = new Float64Array(D).fill(Infinity);
    const bh = new Float64Array(D).fill(-Infinity);
    widen(this.data, D, lo, hi, perm, bl, bh);
    // Codes of their own box separate the rows unless they are all equal: the lowest and the highest
    // along an axis of nonzero extent get 0 and 2^bits - 1 there.
    let wide = false;
    for (let k = 0; k < D; k++) if (bh[k]! > bl[k]!) wide = true;
    if (!wide) return false;
    encode(this.data, D, perm, lo, hi, bl, bh, this.bits, this.spread, code);
    const counts = new Int32Array(3 * RADIX);
    countDigits(code, lo, hi, counts);
    prefixSums(counts, lo);
    // Three passes: the sorted rows end in the other buffers, copied back.
    scatter(code, perm, lo, hi, 0, counts, this.codeB, this.permB);
    scatter(this.codeB, this.permB, lo, hi, 1, counts, code, perm);
    scatter(code, perm, lo, hi, 2, counts, this.codeB, this.permB);
    code.set(this.codeB.subarray(lo, hi), lo);
    perm.set(this.permB.subarray(lo, hi), lo);
    return true;
  }

  result(): KnnTree {
    return {
      perm: this.perm,
      leaves: Int32Array.from(this.leafList),
      nodes: {
        start: Int32Array.from(this.start),
        end: Int32Array.from(this.end),
        left: Int32Array.from(this.left),
        right: Int32Array.from(this.right),
        leafOf: Int32Array.from(this.leafOf),
      },
    };
  }
}

/** table[q] = the bits of q (q < 2^width) spread D apart: bit t of q at bit t * D. */
function spreadTable(D: number, width: number): Uint32Array {
  const table = new Uint32Array(1 << width);
  for (let q = 0; q < table.length; q++) {
    let s = 0;
    for (let t = 0; t < width; t++) if ((q >> t) & 1) s |= 1 << (t * D);
    table[q] = s >>> 0;
  }
  return table;
}

/** Widens [lo, hi] to hold rows [from, to) of data (rows perm[r] where perm is given). */
function widen(
  data: ArrayLike<number>,
  D: number,
  from: number,
  to: number,
  perm: Int32Array | null,
  lo: Float64Array,
  hi: Float64Array,
): void {
  for (let r = from; r < to; r++) {
    const row = (perm === null ? r : perm[r]!) * D;
    for (let k = 0; k < D; k++) {
      const v = data[row + k]!;
      if (v < lo[k]!) lo[k] = v;
      if (v > hi[k]!) hi[k] = v;
    }
  }
}

/**
 * The Morton codes of rows perm[from, to) in the box [lo, hi]: each coordinate quantised to `bits`
 * bits (0 at lo, 2^bits - 1 at hi), their bits interleaved, axis 0 the most significant.
 */
function encode(
  data: ArrayLike<number>,
  D: number,
  perm: Int32Array,
  from: number,
  to: number,
  lo: Float64Array,
  hi: Float64Array,
  bits: number,
  spread: Uint32Array,
  code: Uint32Array,
): void {
  const top = 2 ** bits - 1;
  const cells = 2 ** bits;
  // (v - lo) / extent rather than a product with cells / extent, which overflows on a subnormal
  // extent; a flat axis (extent 0) contributes no bits. The quantisation is monotone in v: every
  // split of the tree separates its halves along one axis.
  const extent = new Float64Array(D);
  for (let k = 0; k < D; k++) extent[k] = hi[k]! > lo[k]! ? hi[k]! - lo[k]! : Infinity;
  // Codes wider than the table (D = 1, 2) spread in pieces of RADIX_BITS.
  const pieces = Math.ceil(bits / RADIX_BITS);
  for (let r = from; r < to; r++) {
    const row = perm[r]! * D;
    let c = 0;
    for (let k = 0; k < D; k++) {
      let q = Math.floor(((data[row + k]! - lo[k]!) / extent[k]!) * cells);
      q = q > top ? top : q;
      let s = 0;
      for (let p = 0; p < pieces; p++) s |= spread[(q >>> (p * RADIX_BITS)) & (RADIX - 1)]! << (p * RADIX_BITS * D);
      c |= s << (D - 1 - k);
    }
    code[r] = c >>> 0;
  }
}

/** Adds the three radix digits of code[from, to) to their histograms (counts[pass * RADIX + digit]). */
function countDigits(code: Uint32Array, from: number, to: number, counts: Int32Array): void {
  for (let r = from; r < to; r++) {
    const c = code[r]!;
    counts[c & (RADIX - 1)]!++;
    counts[RADIX + ((c >>> RADIX_BITS) & (RADIX - 1))]!++;
    counts[2 * RADIX + (c >>> (2 * RADIX_BITS))]!++;
  }
}

/** Turns each histogram into the first output position of each digit, from `base`. */
function prefixSums(counts: Int32Array, base: number): void {
  for (let pass = 0; pass < 3; pass++) {
    let sum = base;
    for (let d = pass * RADIX; d < (pass + 1) * RADIX; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
  }
}

/** One stable radix pass over positions [from, to): (code, perm) to their digit's next slot. */
function scatter(
  code: Uint32Array,
  perm: Int32Array,
  from: number,
  to: number,
  pass: number,
  counts: Int32Array,
  codeOut: Uint32Array,
  permOut: Int32Array,
): void {
  const shift = pass * RADIX_BITS;
  const base = pass * RADIX;
  for (let r = from; r < to; r++) {
    const c = code[r]!;
    const p = counts[base + ((c >>> shift) & (RADIX - 1))]!++;
    codeOut[p] = c;
    permOut[p] = perm[r]!;
  }
}
