// Register-blocked tiles for the row reductions DOT, SQDIST and WSQDIST of the tile ISA (isa.ts) at
// large dimension D: the part of a formula that costs D operations per pair.
//
// WHY
// The interpreter (kernel.ts) runs the inner code once per outer index i: a row reduction over D
// reads the inner variable's whole tile (D x B values) for every i, and does one load per
// multiply-add. Here the instruction is computed for the group of (up to 8) outer indices that share
// a pass over the inner blocks, 4 outer indices by 2 vectors of inner indices at a time (by 1 for an
// odd last vector: K-means' M = 10 is 3 vectors), with the accumulators in registers over the whole
// dimension loop: each loaded y vector serves 4 rows, each splatted x value 2 vectors, so the loop is
// bound by the FP units instead of the loads and L2.
// The results go to a per-group scratch tile (BT); the interpreter copies row ii of it into the
// instruction's destination when it reaches the instruction for outer index i0 + ii, and runs the
// rest of the formula and the reduction as before.
//
// WHICH INSTRUCTIONS (planBlocked): DOT, SQDIST or WSQDIST of the inner code whose operands are one
// uniform register (an outer variable, a parameter, or a value of the outer code) and one inner
// variable (or a view of one), both of D >= BLOCKED_MIN_D rows; WSQDIST's weights must be uniform
// (one row or D). Their operands are variables, never written by the inner code, so the tile can be
// computed for all the group's outer indices when the first of them reaches the instruction. Up to
// MAX_SLOTS instructions per program (matVecMult lowers to one DOT per output row).
//
// ARITHMETIC
// - DOT, and SQDIST / WSQDIST in "direct" mode, accumulate sum_k over k = 0, 1, ... in order, with
//   the same operations as the interpreter's loops (d = a - b; acc + d*d; acc + c*(d*d); acc + a*b):
//   the results are bit for bit those of the unblocked path (in the relaxed-SIMD build, where
//   acc + a*b is one fused multiply-add, they differ by rounding only).
// - SQDIST in "expanded" mode (D >= EXPANDED_MIN_D): S~ = (|x|^2 + |y|^2) - 2 x.y, with |x|^2 and
//   |y|^2 summed in T like the dot product. Error bound (Higham, Accuracy and Stability, 3.1):
//   each of the three sums of D nonnegative or Cauchy-Schwarz-bounded terms has an error at most
//   gamma_D times the sum of absolute terms, so |S~ - S| <= gamma_{D+2} (|x|^2 + |y|^2 + 2|x||y|)
//   <= 2 gamma_{D+2} (|x|^2 + |y|^2), gamma_n = n u / (1 - n u), u = 2^-24 (f32) or 2^-53 (f64).
//   This is small relative to S only when S is not much smaller than |x|^2 + |y|^2 (points close
//   together far from the origin: a large common offset cancels). CRITERION: an entry is accepted
//   when S~ >= (|x|^2 + |y|^2) / EXPANDED_RATIO (= 8); then |S~ - S| <= 16 gamma_{D+2} S~ (about
//   7.5e-4 S in the worst case at D = 784 in f32, typically sqrt(D) times less). Otherwise, and for
//   NaN or infinite values, the tile's vector columns (4 rows x 1 vector) holding a failing entry
//   are recomputed in direct mode (exact as the unblocked path; columnFails): distances much smaller
//   than the norms (nearest neighbours far from the origin, or from the centre: CENTRING) are the
//   direct ones.
// - NaN and infinities therefore behave as in the unblocked path: a NaN or inf input makes the
//   expanded entry NaN (or fails the test), and the tile falls back.
// - CENTRING: a run whose only blocked instruction is an expanded SQDIST and whose groups hold 4 rows
//   or more (and fit XP and YC: blockedRows) computes the expanded form on x' = fl(x - c) and
//   y' = fl(y - c), with one centre c for the whole run: the mean of the first CENTRE_COLUMNS inner
//   rows (in T). The distance is the same; |x'|^2 and |y'|^2 are those of the data around its own
//   centre, not around the origin, so much less cancels and far fewer entries fail the criterion
//   (Fashion-MNIST, pixels in [0, 1], 4 x 1 columns of the tile: 32% fail uncentred, 2.5% centred;
//   the K-NN ran 1.42 times faster). The rows are centred when they are packed (once per group), the
//   columns once per group and block segment (about 2% of the tile's work at D = 784).
//   Bound: S~ is within 2 gamma_{D+2} (|x'|^2 + |y'|^2) of S' = |x' - y'|^2 as above. The rounding
//   of the two subtractions moves each component of x' - y' from x - y by at most u (|x'_k| + |y'_k|),
//   the vector by e <= u (|x'| + |y'|), so |S' - S| <= e (2 |x - y| + e). The criterion gives
//   |x'| + |y'| <= sqrt(2 (|x'|^2 + |y'|^2)) <= 4 sqrt(S~), so |S' - S| <= 8 u S~ to first order, and
//   |S~ - S| <= (16 gamma_{D+2} + 9 u) S~ for every accepted entry. Failing entries are recomputed in
//   direct mode from the rows and columns as stored (exactly the unblocked arithmetic). Near ties may
//   therefore order differently from the unblocked path by this rounding, as before for the entries
//   that passed; the centre depends on the inner data only (never on the grouping of the outer rows,
//   the thread count or how a reduction is chunked), so each pair's value is the same in every run.
//
// MEMORY: static only (the kernel allocates nothing): BT = MAX_SLOTS x 8 rows x 512 values x 8
// bytes (128 KiB), norms 4 KiB, the packed rows of a group (XP) 256 KiB, the centre 64 KiB and the
// centred columns (YC) 128 KiB, and the row thresholds and flags of blockedTileK 6 KiB. A lone
// blocked instruction's tile uses all of BT (up to LONE_GROUP rows per group, against MAX_GROUP with
// several): at D = 50 the centred columns are then made once per 248 rows instead of 64 (their cost
// 7% -> 1.5% of the K-NN run).

import * as I from './isa';
// the resolved register table of kernel.ts (RT, 32 bytes per register): its field offsets
import { RT_FIXED, RT_IMUL, RT_BMUL, RT_STRIDE, RT_DIM, RT_BLK } from './consts';

// @ts-ignore: decorator
@inline export const BLOCKED_MIN_D = 8;
// @ts-ignore: decorator
@inline export const EXPANDED_MIN_D = 16;
// @ts-ignore: decorator
@inline const MAX_SLOTS = 4;
// @ts-ignore: decorator
@inline const MAX_GROUP = 64; // outer indices per pass over the inner blocks, at most
// @ts-ignore: decorator
@inline const LONE_GROUP = 248; // the same for a lone blocked instruction (its tile may use every slot)
// @ts-ignore: decorator
@inline const SLOT_BYTES = 32768; // tile rows of one slot: MAX_GROUP rows of 512 bytes, or 8 of 4096
// @ts-ignore: decorator
@inline const ROW_BYTES = 4096; // 512 values (the largest block) of 8 bytes
// @ts-ignore: decorator
@inline const ACC_BYTES = 65536; // reduction states of a blocked group (see blockedStates)
// @ts-ignore: decorator
@inline const MAX_CODE = 4096; // instructions with a slot table entry (longer programs: the rest unblocked)

// modes
// @ts-ignore: decorator
@inline const M_DOT = 0;
// @ts-ignore: decorator
@inline const M_SQD = 1;
// @ts-ignore: decorator
@inline const M_WSQ = 2;
// @ts-ignore: decorator
@inline const M_SQX = 3;

// Policy (blockedPolicy export): 0 off, 1 automatic, 2 direct only (no expanded SQDIST), 3 expanded
// SQDIST from BLOCKED_MIN_D on (tests).
let gPolicy = 1;

const BT: usize = memory.data(MAX_SLOTS * SLOT_BYTES, 16);
const NY: usize = memory.data(ROW_BYTES, 16); // |y_j|^2 of the current block, as T
const NX: usize = memory.data(MAX_SLOTS * MAX_GROUP * 8, 16); // |x_i|^2 of the group, per slot
const ACC: usize = memory.data(ACC_BYTES, 16);
const SLOT_OF: usize = memory.data(MAX_CODE); // inner instruction q -> slot + 1, or 0
// per slot: mode, uniform operand, inner operand, weights (or -1), D, and the group (i0, np) whose norms NX holds
const SL: usize = memory.data(MAX_SLOTS * 32, 16);
// The group's uniform rows packed for the 4-row tiles (see packRows): quad q, element k, row r at
// XP + ((q * D + k) * 4 + r) * ELT. Used when the packed rows fit (64 rows: D <= 1024 in f32, 512 in f64).
// @ts-ignore: decorator
@inline const XP_BYTES: usize = 262144;
const XP: usize = memory.data(<i32>XP_BYTES, 16);
// The common centre c of a centred run (see CENTRING), as T, and the centred y vectors of a block
// segment (element k of vector v at YC + (k * nvc + v) * 16, nvc vectors per chunk).
// @ts-ignore: decorator
@inline const YC_BYTES: usize = 131072; // 2 vectors at D = 4096
const CEN: usize = memory.data(<i32>(XP_BYTES / 4), 16);
const YC: usize = memory.data(<i32>YC_BYTES, 16);
// @ts-ignore: decorator
@inline const CENTRE_COLUMNS = 32; // the inner rows whose mean is the centre, at most
// K-th values of a lone centred SQDIST's rows and the per-row lanes below them (see blockedTileK).
const THR: usize = memory.data(LONE_GROUP * 8, 16);
// @ts-ignore: decorator
@inline export const FLAG_ROW = 128; // flag bytes per row: one per vector pair of a segment (256 vectors at most)
const FL: usize = memory.data(LONE_GROUP * FLAG_ROW, 16);
let gCentre = false; // this run centres its expanded SQDIST (blockedRows)
let gTileK = false; // the kernel folds this run's K-nearest rows from the tile (blockedInfo bit 17)
let gXpI0 = -1; // the group (and slot) whose rows XP holds
let gXpNp = 0;
let gXpSlot = -1;

let gRT: usize = 0;
let gSlots = 0;
let gI0 = 0; // the current group: outer indices [gI0, gI0 + gNp)
let gNp = 0;
let gRowBytes: usize = 0; // B * ELT
let gGroup = 8; // rows of a slot's tile: SLOT_BYTES / gRowBytes, at most MAX_GROUP

// @ts-ignore: decorator
@inline function ent(r: i32): usize { return gRT + (<usize>r << 5); }
// @ts-ignore: decorator
@inline function rdim(r: i32): i32 { return load<i32>(ent(r), RT_DIM); }
// @ts-ignore: decorator
@inline function rblk(r: i32): bool { return load<i32>(ent(r), RT_BLK) != 0; }
// @ts-ignore: decorator
@inline function rptr(r: i32, i: i32, b: i32): usize {
  const e = ent(r);
  return <usize>(load<i32>(e, RT_FIXED) + i * load<i32>(e, RT_IMUL) + b * load<i32>(e, RT_BMUL));
}

/** Sets the policy (0 off, 1 automatic, 2 direct only, 3 expanded from BLOCKED_MIN_D); returns the old one. */
export function blockedPolicy(p: i32): i32 {
  const old = gPolicy;
  if (p >= 0 && p <= 3) gPolicy = p;
  return old;
}

/** Plans the blocked instructions of a validated inner code (rt: the resolved register table,
 *  rowBytes: B * ELT). Returns the number of blocked instructions. */
export function planBlocked(rt: usize, code: usize, len: i32, rowBytes: i32): i32 {
  gRT = rt;
  gSlots = 0;
  gCentre = false;
  gTileK = false;
  gXpI0 = -1;
  gXpSlot = -1;
  gRowBytes = <usize>rowBytes;
  // a multiple of 4: a centred run pads its last quad of rows (centredSlot)
  gGroup = rowBytes > 0 ? min(MAX_GROUP, SLOT_BYTES / rowBytes) & ~3 : 8;
  const n = min(len, MAX_CODE);
  for (let q = 0; q < n; q++) store<u8>(SLOT_OF + <usize>q, 0);
  if (gPolicy == 0 || rowBytes > ROW_BYTES) return 0;
  for (let q = 0; q < n && gSlots < MAX_SLOTS; q++) {
    const ins = code + (<usize>q << 5);
    const op = load<i32>(ins, I.I_OP << 2);
    if (op != I.OP_DOT && op != I.OP_SQDIST && op != I.OP_WSQDIST) continue;
    const dst = load<i32>(ins, I.I_DST << 2), ra = load<i32>(ins, I.I_A << 2), rb = load<i32>(ins, I.I_B << 2);
    if (rblk(ra) == rblk(rb)) continue;
    const ru = rblk(ra) ? rb : ra, rv = rblk(ra) ? ra : rb;
    // the block operand must be an inner variable (moves with the block index, same for every i)
    if (load<i32>(ent(rv), RT_BMUL) == 0 || load<i32>(ent(rv), RT_IMUL) != 0) continue;
    const D = rdim(ru);
    if (D != rdim(rv) || D < BLOCKED_MIN_D || rdim(dst) != 1 || !rblk(dst)) continue;
    let rc = -1;
    let mode = op == I.OP_DOT ? M_DOT : M_SQD;
    if (op == I.OP_WSQDIST) {
      rc = load<i32>(ins, I.I_C << 2);
      if (rblk(rc) || (rdim(rc) != 1 && rdim(rc) != D)) continue;
      mode = M_WSQ;
    } else if (op == I.OP_SQDIST && gPolicy != 2 && (D >= EXPANDED_MIN_D || gPolicy == 3)) {
      mode = M_SQX;
    }
    const s = SL + (<usize>gSlots << 5);
    store<i32>(s, mode, 0);
    store<i32>(s, ru, 4);
    store<i32>(s, rv, 8);
    store<i32>(s, rc, 12);
    store<i32>(s, D, 16);
    store<i32>(s, -1, 20);
    gSlots++;
    store<u8>(SLOT_OF + <usize>q, <u8>gSlots);
  }
  if (gSlots == 1) gGroup = min(LONE_GROUP, <i32>(MAX_SLOTS * SLOT_BYTES) / rowBytes) & ~3;
  return gSlots;
}

/** The outer indices a blocked program may run together (its tiles reuse each inner block for all of
 *  them: at large D and M the inner variables stream from memory once per group, so 8 rows per pass
 *  leave the loop memory-bound), given the bytes of one reduction state; 0 when the kernel's own
 *  H_ACC area should be used. Their states then live in blockedAcc(). */
export function blockedStates(stBytes: i32, elt: i32): i32 {
  if (gSlots == 0 || stBytes <= 0) return 0;
  let n = min(gGroup, ACC_BYTES / stBytes);
  // a lone expanded SQDIST: no more rows than its packed rows hold (4 at least), so that every group
  // of the run is centred and packed alike (see CENTRING)
  if (gSlots == 1 && load<i32>(SL, 0) == M_SQX) {
    const fit = <i32>(XP_BYTES / (<usize>load<i32>(SL, 16) * <usize>elt)) & ~3;
    if (fit >= 4) n = min(n, fit);
  }
  return n;
}

/** The run's rows per group are at most P (its inner rows: M, blocks of B): decides whether the run
 *  centres its expanded SQDIST, and computes the centre (see CENTRING). Called once per run, after
 *  planBlocked and blockedStates. */
export function blockedRows<T>(P: i32, M: i32, B: i32, before: i32, total: i32): void {
  gCentre = false;
  if (gSlots != 1 || load<i32>(SL, 0) != M_SQX || P < 4 || M < 1) return;
  const ELT = <usize>sizeof<T>();
  const D = load<i32>(SL, 16), rv = load<i32>(SL, 8);
  // every group padded to whole quads fits the packed rows and the tile, and 2 centred vectors fit YC
  if (<usize>((P + 3) & ~3) * <usize>D * ELT > XP_BYTES || ((P + 3) & ~3) > gGroup) return;
  if (<usize>D * 32 > YC_BYTES) return;
  // c = the mean of the first inner rows (a dozen rows of real data lie about as near their common
  // centre as the rows at large); any c gives the same distances up to rounding, so only the data
  // decides it (never the grouping of the outer rows, the thread count or the chunks of a run)
  // A piece of a longer inner range (H_INNER_BEFORE, a multiple of B, rows before its register's
  // base): the centre of the whole range, from the rows before the base.
  const n = min(total > 0 ? total : M, CENTRE_COLUMNS);
  const b0 = before / B;
  const sy = <usize>load<i32>(ent(rv), RT_STRIDE);
  for (let k = 0; k < D; k++) {
    let a = 0.0;
    for (let j = 0; j < n; j++) a += <f64>load<T>(rptr(rv, 0, j / B - b0) + <usize>k * sy + <usize>(j % B) * ELT);
    const c = <T>(a / <f64>n);
    if (!isFinite(c)) return; // NaN or inf rows: no centring (those entries fall back anyway)
    store<T>(CEN + <usize>k * ELT, c);
  }
  gCentre = true;
}
export function blockedAcc(): usize {
  return ACC;
}

/** Whether any instruction is blocked in the current run. */
// @ts-ignore: decorator
@inline export function hasBlocked(): bool { return gSlots > 0; }

/** The group of outer indices [i0, i0 + np) about to run on a block (called before its first i). */
export function blockedGroup(i0: i32, np: i32): void {
  gI0 = i0;
  gNp = np;
}

/** Slot + 1 of inner instruction q, or 0. */
// @ts-ignore: decorator
@inline export function blockedSlot(q: i32): i32 {
  return q < MAX_CODE ? <i32>load<u8>(SLOT_OF + <usize>q) : 0;
}

/** Writes vectors [x0/16, x0/16 + nv) of the instruction's result for outer index i (of the current
 *  group) on block b into pd; computes the tile of the whole group first when i is its first index. */
export function blockedRun<T>(slot: i32, pd: usize, i: i32, b: i32, x0: usize, nv: i32): void {
  const ii = i - gI0;
  const tile = BT + <usize>slot * SLOT_BYTES;
  if (ii == 0) computeSlot<T, u8>(slot, tile, b, x0, nv);
  const ps = tile + <usize>ii * gRowBytes + x0;
  const bytes = <usize>nv << 4;
  for (let x: usize = 0; x < bytes; x += 16) v128.store(pd + x, v128.load(ps + x));
}

// ------------------------------------------------------------------------------------------------

// the splat of the T at p (one load instruction)
// @ts-ignore: decorator
@inline function lsplat<T>(p: usize): v128 {
  if (sizeof<T>() == 4) return v128.load32_splat(p);
  return v128.load64_splat(p);
}

// @ts-ignore: decorator
@inline function madd<T>(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.relaxed_madd<T>(a, b, acc);
  return v128.add<T>(acc, v128.mul<T>(a, b));
}

// acc + term(x, y[, c]) in the mode's arithmetic (see ARITHMETIC above)
// @ts-ignore: decorator
@inline function comb<T, MODE>(acc: v128, x: v128, y: v128, c: v128): v128 {
  if (sizeof<MODE>() == 1) {
    const d = v128.sub<T>(x, y);
    return madd<T>(acc, d, d);
  }
  if (sizeof<MODE>() == 2) {
    const d = v128.sub<T>(x, y);
    return madd<T>(acc, c, v128.mul<T>(d, d));
  }
  return madd<T>(acc, x, y);
}

// Mode types for comb (compile-time): u8 = SQD, u16 = WSQ, u32 = DOT, u64 = SQX (DOT arithmetic, then
// the expanded squared distance and its criterion in registers).
type TSQD = u8;
type TWSQ = u16;
type TDOT = u32;
type TSQX = u64;

// S = (nx + ny) - 2 g, stored at p; the lanes where S >= (nx + ny) / EXPANDED_RATIO are set in the result
// @ts-ignore: decorator
@inline function expanded<T>(p: usize, g: v128, nxs: v128, ny: v128, ok: v128): v128 {
  const nn = v128.add<T>(nxs, ny);
  const sq = v128.sub<T>(nn, v128.add<T>(g, g));
  v128.store(p, sq);
  return v128.and(ok, v128.ge<T>(sq, v128.mul<T>(nn, v128.splat<T>(<T>(1.0 / 8.0)))));
}

// Whether any entry of one vector column of a 4-row expanded tile (row r at out + r * os, |x|^2 of
// row r at pnx + r * ELT, |y|^2 at pny) fails the criterion: the test of `expanded` redone on the
// stored S with the same operations, so it agrees with the tile's own test entry by entry.
// WHY per column: on real data the failures are rare but spread (Fashion-MNIST, D = 784: 2.6% of
// the entries fail, yet 51% of the 4 x 8 tiles hold one); recomputing the whole tile in direct mode
// (3 operations per entry and dimension instead of 2) made the K-NN 1.75 times slower than on random
// data, one column of 4 x 1 costs a quarter of that per failing column.
function columnFails<T>(out: usize, os: usize, pnx: usize, pny: usize): bool {
  const ELT = <usize>sizeof<T>();
  const ny = v128.load(pny), e = v128.splat<T>(<T>(1.0 / 8.0));
  let ok = v128.splat<i32>(-1);
  for (let r: usize = 0; r < 4; r++) {
    const nn = v128.add<T>(lsplat<T>(pnx + r * ELT), ny);
    ok = v128.and(ok, v128.ge<T>(v128.load(out + r * os), v128.mul<T>(nn, e)));
  }
  return !i32x4.all_true(ok);
}

// 4 rows x 2 vectors. px: x of the first row (row r at px + r*pxi, element k at + k*sx), py: y
// (element k at py + k*sy), pc / pci / sc: the weights like x. Stores row r at out + r*os.
// @ts-ignore: decorator
@inline function tile4x2<T, MODE>(
  out: usize, os: usize, px: usize, pxi: usize, sx: usize, py: usize, sy: usize,
  pc: usize, pci: usize, sc: usize, D: i32, pnx: usize, pny: usize,
): bool {
  const z = v128.splat<i32>(0);
  let a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
  let p0 = px, p1 = px + pxi, p2 = px + 2 * pxi, p3 = px + 3 * pxi;
  let c0 = pc, c1 = pc + pci, c2 = pc + 2 * pci, c3 = pc + 3 * pci;
  let q = py;
  const wsq = sizeof<MODE>() == 2;
  for (let k = 0; k < D; k++) {
    const y0 = v128.load(q), y1 = v128.load(q, 16);
    let x = lsplat<T>(p0);
    let c = wsq ? lsplat<T>(c0) : z;
    a00 = comb<T, MODE>(a00, x, y0, c); a01 = comb<T, MODE>(a01, x, y1, c);
    x = lsplat<T>(p1); if (wsq) c = lsplat<T>(c1);
    a10 = comb<T, MODE>(a10, x, y0, c); a11 = comb<T, MODE>(a11, x, y1, c);
    x = lsplat<T>(p2); if (wsq) c = lsplat<T>(c2);
    a20 = comb<T, MODE>(a20, x, y0, c); a21 = comb<T, MODE>(a21, x, y1, c);
    x = lsplat<T>(p3); if (wsq) c = lsplat<T>(c3);
    a30 = comb<T, MODE>(a30, x, y0, c); a31 = comb<T, MODE>(a31, x, y1, c);
    p0 += sx; p1 += sx; p2 += sx; p3 += sx; q += sy;
    if (wsq) { c0 += sc; c1 += sc; c2 += sc; c3 += sc; }
  }
  if (sizeof<MODE>() == 8) {
    // pnx: |x|^2 of the 4 rows (T), pny: |y|^2 of the 2 vectors
    const ELT = <usize>sizeof<T>();
    const y0 = v128.load(pny), y1 = v128.load(pny, 16);
    let ok = v128.splat<i32>(-1);
    let n = lsplat<T>(pnx);
    ok = expanded<T>(out, a00, n, y0, ok); ok = expanded<T>(out + 16, a01, n, y1, ok);
    n = lsplat<T>(pnx + ELT);
    ok = expanded<T>(out + os, a10, n, y0, ok); ok = expanded<T>(out + os + 16, a11, n, y1, ok);
    n = lsplat<T>(pnx + 2 * ELT);
    ok = expanded<T>(out + 2 * os, a20, n, y0, ok); ok = expanded<T>(out + 2 * os + 16, a21, n, y1, ok);
    n = lsplat<T>(pnx + 3 * ELT);
    ok = expanded<T>(out + 3 * os, a30, n, y0, ok); ok = expanded<T>(out + 3 * os + 16, a31, n, y1, ok);
    return i32x4.all_true(ok);
  }
  v128.store(out, a00); v128.store(out, a01, 16);
  v128.store(out + os, a10); v128.store(out + os, a11, 16);
  v128.store(out + 2 * os, a20); v128.store(out + 2 * os, a21, 16);
  v128.store(out + 3 * os, a30); v128.store(out + 3 * os, a31, 16);
  return true;
}

// 4 rows x 1 vector: the odd last vector of a block segment (M = 10 in K-means: 3 vectors of f32),
// where 4 single-row tiles would load one splat per multiply-add. Arguments as tile4x2.
// @ts-ignore: decorator
@inline function tile4x1<T, MODE>(
  out: usize, os: usize, px: usize, pxi: usize, sx: usize, py: usize, sy: usize,
  pc: usize, pci: usize, sc: usize, D: i32, pnx: usize, pny: usize,
): bool {
  const z = v128.splat<i32>(0);
  let a0 = z, a1 = z, a2 = z, a3 = z;
  let p0 = px, p1 = px + pxi, p2 = px + 2 * pxi, p3 = px + 3 * pxi;
  let c0 = pc, c1 = pc + pci, c2 = pc + 2 * pci, c3 = pc + 3 * pci;
  let q = py;
  const wsq = sizeof<MODE>() == 2;
  for (let k = 0; k < D; k++) {
    const y = v128.load(q);
    a0 = comb<T, MODE>(a0, lsplat<T>(p0), y, wsq ? lsplat<T>(c0) : z);
    a1 = comb<T, MODE>(a1, lsplat<T>(p1), y, wsq ? lsplat<T>(c1) : z);
    a2 = comb<T, MODE>(a2, lsplat<T>(p2), y, wsq ? lsplat<T>(c2) : z);
    a3 = comb<T, MODE>(a3, lsplat<T>(p3), y, wsq ? lsplat<T>(c3) : z);
    p0 += sx; p1 += sx; p2 += sx; p3 += sx; q += sy;
    if (wsq) { c0 += sc; c1 += sc; c2 += sc; c3 += sc; }
  }
  if (sizeof<MODE>() == 8) {
    const ELT = <usize>sizeof<T>();
    const ny = v128.load(pny);
    let ok = v128.splat<i32>(-1);
    ok = expanded<T>(out, a0, lsplat<T>(pnx), ny, ok);
    ok = expanded<T>(out + os, a1, lsplat<T>(pnx + ELT), ny, ok);
    ok = expanded<T>(out + 2 * os, a2, lsplat<T>(pnx + 2 * ELT), ny, ok);
    ok = expanded<T>(out + 3 * os, a3, lsplat<T>(pnx + 3 * ELT), ny, ok);
    return i32x4.all_true(ok);
  }
  v128.store(out, a0);
  v128.store(out + os, a1);
  v128.store(out + 2 * os, a2);
  v128.store(out + 3 * os, a3);
  return true;
}

// 1 row x NV (1 or 2) vectors
// @ts-ignore: decorator
@inline function tile1<T, MODE>(
  out: usize, px: usize, sx: usize, py: usize, sy: usize, pc: usize, sc: usize, D: i32, two: bool,
): void {
  const z = v128.splat<i32>(0);
  let a0 = z, a1 = z;
  let p = px, c = pc, q = py;
  const wsq = sizeof<MODE>() == 2;
  for (let k = 0; k < D; k++) {
    const x = lsplat<T>(p);
    const cv = wsq ? lsplat<T>(c) : z;
    a0 = comb<T, MODE>(a0, x, v128.load(q), cv);
    if (two) a1 = comb<T, MODE>(a1, x, v128.load(q, 16), cv);
    p += sx; q += sy;
    if (wsq) c += sc;
  }
  v128.store(out, a0);
  if (two) v128.store(out, a1, 16);
}

// ---- 4-row tiles on packed rows
// The 4 x 2 tile below reads its 4 rows through 4 pointers that all move with k: per k, 6 loads, 16
// multiplies and adds and 6 pointer increments. With the group's rows packed 4 by 4 (element k of the
// 4 rows adjacent; packRows, once per group, reused for every inner block) one pointer reads the 4
// splats with immediate offsets: 3 integer instructions per k instead of 6. Measured on the loaded
// 2-core EPYC: no change beyond the noise (+-5%), as the loop is bound by the two FP multipliers and
// two adders either way (both forms run at the speed of a register-only multiply-add loop, ~23-27
// GFLOP/s per core; a 5 x 2 tile spills 3 accumulators in V8 and ran 30% slower). Kept because it
// leaves the front end idle slots on cores that dispatch fewer instructions per cycle. The arithmetic
// per entry is the same as in tile4x2 (sums over k in order): the results are bit for bit the same.

// the splat of element r (a constant) of the 5 packed rows at p
// @ts-ignore: decorator
@inline function xsplat<T>(p: usize, r: i32): v128 {
  if (sizeof<T>() == 4) {
    if (r == 0) return v128.load32_splat(p);
    if (r == 1) return v128.load32_splat(p, 4);
    if (r == 2) return v128.load32_splat(p, 8);
    return v128.load32_splat(p, 12);
  }
  if (r == 0) return v128.load64_splat(p);
  if (r == 1) return v128.load64_splat(p, 8);
  if (r == 2) return v128.load64_splat(p, 16);
  return v128.load64_splat(p, 24);
}

// 4 packed rows (pp: element k of row r at pp + (4k + r) * ELT) by 1 or 2 vectors (NV: u8 one, u16 two)
// of y (element k at py + k * sy); modes TSQD, TDOT and TSQX as tile4x2. Stores row r at out + r * os.
// @ts-ignore: decorator
@inline function tileP<T, MODE, NV>(out: usize, os: usize, pp: usize, py: usize, sy: usize, D: i32, pnx: usize, pny: usize): bool {
  const two = sizeof<NV>() == 2;
  const z = v128.splat<i32>(0);
  let a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
  let p = pp, q = py;
  const step = <usize>(4 * sizeof<T>());
  for (let k = 0; k < D; k++) {
    const y0 = v128.load(q);
    const y1 = two ? v128.load(q, 16) : z;
    let x = xsplat<T>(p, 0);
    a00 = comb<T, MODE>(a00, x, y0, z); if (two) a01 = comb<T, MODE>(a01, x, y1, z);
    x = xsplat<T>(p, 1);
    a10 = comb<T, MODE>(a10, x, y0, z); if (two) a11 = comb<T, MODE>(a11, x, y1, z);
    x = xsplat<T>(p, 2);
    a20 = comb<T, MODE>(a20, x, y0, z); if (two) a21 = comb<T, MODE>(a21, x, y1, z);
    x = xsplat<T>(p, 3);
    a30 = comb<T, MODE>(a30, x, y0, z); if (two) a31 = comb<T, MODE>(a31, x, y1, z);
    p += step; q += sy;
  }
  if (sizeof<MODE>() == 8) {
    const ELT = <usize>sizeof<T>();
    const y0 = v128.load(pny);
    const y1 = two ? v128.load(pny, 16) : z;
    let ok = v128.splat<i32>(-1);
    let n = lsplat<T>(pnx);
    ok = expanded<T>(out, a00, n, y0, ok); if (two) ok = expanded<T>(out + 16, a01, n, y1, ok);
    n = lsplat<T>(pnx + ELT);
    ok = expanded<T>(out + os, a10, n, y0, ok); if (two) ok = expanded<T>(out + os + 16, a11, n, y1, ok);
    n = lsplat<T>(pnx + 2 * ELT);
    ok = expanded<T>(out + 2 * os, a20, n, y0, ok); if (two) ok = expanded<T>(out + 2 * os + 16, a21, n, y1, ok);
    n = lsplat<T>(pnx + 3 * ELT);
    ok = expanded<T>(out + 3 * os, a30, n, y0, ok); if (two) ok = expanded<T>(out + 3 * os + 16, a31, n, y1, ok);
    return i32x4.all_true(ok);
  }
  v128.store(out, a00); if (two) v128.store(out, a01, 16);
  v128.store(out + os, a10); if (two) v128.store(out + os, a11, 16);
  v128.store(out + 2 * os, a20); if (two) v128.store(out + 2 * os, a21, 16);
  v128.store(out + 3 * os, a30); if (two) v128.store(out + 3 * os, a31, 16);
  return true;
}

// Packs rows [0, 4 * nq) of the group (row r at px + r * pxi, element k at + k * sx) 4 by 4 into XP.
function packRows<T>(px: usize, pxi: usize, sx: usize, D: i32, nq: i32): void {
  const ELT = <usize>sizeof<T>();
  for (let r = 0; r < 4 * nq; r++) {
    let src = px + <usize>r * pxi;
    let dst = XP + (<usize>(r / 4) * <usize>D * 4 + <usize>(r % 4)) * ELT;
    for (let k = 0; k < D; k++) {
      store<T>(dst, load<T>(src));
      src += sx;
      dst += 4 * ELT;
    }
  }
}

// Rows [0, 4 * nq) of one mode (TSQD, TDOT; TSQX with the fallback to TSQD) from the packed rows, all
// vectors [0, nv) of the block segment: 2 at a time, then an odd last one.
function tilesP<T, MODE>(out: usize, os: usize, py: usize, sy: usize, nx: usize, D: i32, nq: i32, nv: i32): void {
  const ELT = <usize>sizeof<T>();
  const qb = <usize>D * 4 * ELT;
  for (let g = 0; g < nq; g++) {
    const o = out + <usize>(4 * g) * os, pp = XP + <usize>g * qb, pn = nx + <usize>(4 * g) * ELT;
    let v = 0;
    for (; v + 2 <= nv; v += 2) {
      const vo = <usize>v << 4;
      if (!tileP<T, MODE, u16>(o + vo, os, pp, py + vo, sy, D, pn, NY + vo)) {
        // only the vector columns with a failing entry are recomputed in direct mode (see columnFails)
        if (columnFails<T>(o + vo, os, pn, NY + vo)) tileP<T, TSQD, u8>(o + vo, os, pp, py + vo, sy, D, 0, 0);
        if (columnFails<T>(o + vo + 16, os, pn, NY + vo + 16)) {
          tileP<T, TSQD, u8>(o + vo + 16, os, pp, py + vo + 16, sy, D, 0, 0);
        }
      }
    }
    if (v < nv) {
      const vo = <usize>v << 4;
      if (!tileP<T, MODE, u8>(o + vo, os, pp, py + vo, sy, D, pn, NY + vo)) {
        tileP<T, TSQD, u8>(o + vo, os, pp, py + vo, sy, D, 0, 0);
      }
    }
  }
}

// The tile of one mode for rows [0, np) and vectors [0, nv) (pointers already at row 0, vector 0).
function tiles<T, MODE>(
  out: usize, os: usize, px: usize, pxi: usize, sx: usize, py: usize, sy: usize,
  pc: usize, pci: usize, sc: usize, D: i32, np: i32, nv: i32,
): void {
  let r = 0;
  for (; r + 4 <= np; r += 4) {
    const o = out + <usize>r * os, x = px + <usize>r * pxi, c = pc + <usize>r * pci;
    let v = 0;
    for (; v + 2 <= nv; v += 2) {
      const vo = <usize>v << 4;
      tile4x2<T, MODE>(o + vo, os, x, pxi, sx, py + vo, sy, c, pci, sc, D, 0, 0);
    }
    if (v < nv) {
      const vo = <usize>v << 4;
      tile4x1<T, MODE>(o + vo, os, x, pxi, sx, py + vo, sy, c, pci, sc, D, 0, 0);
    }
  }
  for (; r < np; r++) {
    const o = out + <usize>r * os, x = px + <usize>r * pxi, c = pc + <usize>r * pci;
    for (let v = 0; v < nv; v += 2) {
      const vo = <usize>v << 4;
      tile1<T, MODE>(o + vo, x, sx, py + vo, sy, c, sc, D, v + 2 <= nv);
    }
  }
}

// Expanded squared distances for rows [0, np) and vectors [0, nv), S = (nx + ny) - 2 x.y; a 4 x 2
// tile (or a row of the remainder) with any entry failing the criterion is recomputed in direct mode.
function tilesExpanded<T>(
  out: usize, os: usize, px: usize, pxi: usize, sx: usize, py: usize, sy: usize, nx: usize, D: i32, np: i32, nv: i32,
): void {
  const ELT = <usize>sizeof<T>();
  let r = 0;
  for (; r + 4 <= np; r += 4) {
    const o = out + <usize>r * os, x = px + <usize>r * pxi, pn = nx + <usize>r * ELT;
    let v = 0;
    for (; v + 2 <= nv; v += 2) {
      const vo = <usize>v << 4;
      if (!tile4x2<T, TSQX>(o + vo, os, x, pxi, sx, py + vo, sy, 0, 0, 0, D, pn, NY + vo)) {
        if (columnFails<T>(o + vo, os, pn, NY + vo)) {
          tile4x1<T, TSQD>(o + vo, os, x, pxi, sx, py + vo, sy, 0, 0, 0, D, 0, 0);
        }
        if (columnFails<T>(o + vo + 16, os, pn, NY + vo + 16)) {
          tile4x1<T, TSQD>(o + vo + 16, os, x, pxi, sx, py + vo + 16, sy, 0, 0, 0, D, 0, 0);
        }
      }
    }
    if (v < nv) {
      const vo = <usize>v << 4;
      if (!tile4x1<T, TSQX>(o + vo, os, x, pxi, sx, py + vo, sy, 0, 0, 0, D, pn, NY + vo)) {
        tile4x1<T, TSQD>(o + vo, os, x, pxi, sx, py + vo, sy, 0, 0, 0, D, 0, 0);
      }
    }
  }
  for (; r < np; r++) restExpanded<T>(out + <usize>r * os, px + <usize>r * pxi, sx, py, sy, nx + <usize>r * ELT, D, 0, nv);
}

// one row, vectors [v0, nv), 2 at a time
function restExpanded<T>(o: usize, x: usize, sx: usize, py: usize, sy: usize, pn: usize, D: i32, v0: i32, nv: i32): void {
  const nxs = lsplat<T>(pn);
  for (let v = v0; v < nv; v += 2) {
    const vo = <usize>v << 4, two = v + 2 <= nv;
    tile1<T, TDOT>(o + vo, x, sx, py + vo, sy, 0, 0, D, two);
    let ok = expanded<T>(o + vo, v128.load(o + vo), nxs, v128.load(NY + vo), v128.splat<i32>(-1));
    if (two) ok = expanded<T>(o + vo + 16, v128.load(o + vo, 16), nxs, v128.load(NY + vo, 16), ok);
    if (!i32x4.all_true(ok)) tile1<T, TSQD>(o + vo, x, sx, py + vo, sy, 0, 0, D, two);
  }
}

// |x|^2 of one row of D elements, element k at p + k*sx. Contiguous rows (an outer variable) sum in
// SIMD lanes, 2 vectors at a time, then the lanes and the tail: a scalar loop is one dependent add
// per element, and at M = 10 (K-means) it cost twice the whole tile.
function sumSquares<T>(p: usize, sx: usize, D: i32): T {
  const ELT = <usize>sizeof<T>();
  let a: T = <T>0;
  let k = 0;
  if (sx == ELT) {
    const L = 16 / <i32>ELT;
    let s0 = v128.splat<i32>(0), s1 = s0;
    for (; k + 2 * L <= D; k += 2 * L) {
      const v0 = v128.load(p), v1 = v128.load(p, 16);
      s0 = v128.add<T>(s0, v128.mul<T>(v0, v0));
      s1 = v128.add<T>(s1, v128.mul<T>(v1, v1));
      p += 32;
    }
    for (; k + L <= D; k += L) {
      const v0 = v128.load(p);
      s0 = v128.add<T>(s0, v128.mul<T>(v0, v0));
      p += 16;
    }
    const t = v128.add<T>(s0, s1);
    if (sizeof<T>() == 4) {
      a = <T>((f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1)) + (f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3)));
    } else {
      a = <T>(f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1));
    }
  }
  for (; k < D; k++) {
    const xv = load<T>(p);
    a += xv * xv;
    p += sx;
  }
  return a;
}

// ---- centred expanded tiles (CENTRING)
// Rows [0, np) of the group, centred (x - c) and packed 4 by 4 into XP, the last quad padded with
// zeros (x = c: its entries are |y - c|^2, which pass the criterion and are never read); their
// |x - c|^2 at nx + r * ELT, summed in the lanes of the packed quads (k in order, the same for a row
// wherever it falls in a group).
function packCentred<T>(px: usize, pxi: usize, sx: usize, D: i32, np: i32, nx: usize): void {
  const ELT = <usize>sizeof<T>();
  const nq = (np + 3) >> 2;
  for (let r = 0; r < 4 * nq; r++) {
    let dst = XP + (<usize>(r >> 2) * <usize>D * 4 + <usize>(r & 3)) * ELT;
    if (r >= np) {
      for (let k = 0; k < D; k++) { store<T>(dst, <T>0); dst += 4 * ELT; }
      continue;
    }
    let src = px + <usize>r * pxi, pc = CEN;
    for (let k = 0; k < D; k++) {
      store<T>(dst, load<T>(src) - load<T>(pc));
      src += sx;
      pc += ELT;
      dst += 4 * ELT;
    }
  }
  // a quad is 4 * ELT bytes per element: one vector in f32, two in f64
  const step = 4 * ELT;
  for (let q = 0; q < nq; q++) {
    let p = XP + <usize>q * <usize>D * step;
    let a0 = v128.splat<i32>(0), a1 = a0;
    for (let k = 0; k < D; k++) {
      const v0 = v128.load(p);
      a0 = v128.add<T>(a0, v128.mul<T>(v0, v0));
      if (ELT == 8) {
        const v1 = v128.load(p, 16);
        a1 = v128.add<T>(a1, v128.mul<T>(v1, v1));
      }
      p += step;
    }
    v128.store(nx + <usize>q * step, a0);
    if (ELT == 8) v128.store(nx + <usize>q * step, a1, 16);
  }
}

// Vectors [v0, v0 + nvc) of the block segment (element k of vector v at py + k * sy + v * 16) minus
// the centre into YC, and their |y - c|^2 (k in order, lane by lane) at NY + v * 16; 4 vectors at a
// time (one alone is a chain of dependent adds).
function centreColumns<T>(py: usize, sy: usize, D: i32, v0: i32, nvc: i32): void {
  const ELT = <usize>sizeof<T>();
  const cs = <usize>nvc << 4;
  let v = 0;
  for (; v + 4 <= nvc; v += 4) {
    let a0 = v128.splat<i32>(0), a1 = a0, a2 = a0, a3 = a0;
    let q = py + (<usize>(v0 + v) << 4), d = YC + (<usize>v << 4), pc = CEN;
    for (let k = 0; k < D; k++) {
      const c = lsplat<T>(pc);
      const y0 = v128.sub<T>(v128.load(q), c), y1 = v128.sub<T>(v128.load(q, 16), c);
      const y2 = v128.sub<T>(v128.load(q, 32), c), y3 = v128.sub<T>(v128.load(q, 48), c);
      v128.store(d, y0); v128.store(d, y1, 16); v128.store(d, y2, 32); v128.store(d, y3, 48);
      a0 = v128.add<T>(a0, v128.mul<T>(y0, y0));
      a1 = v128.add<T>(a1, v128.mul<T>(y1, y1));
      a2 = v128.add<T>(a2, v128.mul<T>(y2, y2));
      a3 = v128.add<T>(a3, v128.mul<T>(y3, y3));
      q += sy; d += cs; pc += ELT;
    }
    const pn = NY + (<usize>(v0 + v) << 4);
    v128.store(pn, a0); v128.store(pn, a1, 16); v128.store(pn, a2, 32); v128.store(pn, a3, 48);
  }
  for (; v < nvc; v++) {
    let a = v128.splat<i32>(0);
    let q = py + (<usize>(v0 + v) << 4), d = YC + (<usize>v << 4), pc = CEN;
    for (let k = 0; k < D; k++) {
      const y = v128.sub<T>(v128.load(q), lsplat<T>(pc));
      v128.store(d, y);
      a = v128.add<T>(a, v128.mul<T>(y, y));
      q += sy; d += cs; pc += ELT;
    }
    v128.store(NY + (<usize>(v0 + v) << 4), a);
  }
}

// One vector column (rows [4g, 4g + nr) of the group, vector at byte vo) in direct mode on the rows
// and columns as stored: exactly the unblocked arithmetic.
// @ts-ignore: decorator
@inline function directColumn<T>(o: usize, os: usize, px: usize, pxi: usize, sx: usize, py: usize, sy: usize, D: i32, nr: i32): void {
  if (nr == 4) {
    tile4x1<T, TSQD>(o, os, px, pxi, sx, py, sy, 0, 0, 0, D, 0, 0);
    return;
  }
  for (let r = 0; r < nr; r++) tile1<T, TSQD>(o + <usize>r * os, px + <usize>r * pxi, sx, py, sy, 0, 0, D, false);
}

// The expanded SQDIST of a centred run for the whole group on one block segment: packed centred rows
// (once per group), centred columns (in chunks that fit YC), 4 x 2 tiles, the vector columns with a
// failing entry recomputed in direct mode from the original rows and columns.
function centredSlot<T, KF>(
  slot: i32, out: usize, os: usize, px: usize, pxi: usize, sx: usize, py: usize, sy: usize, D: i32, nv: i32,
): void {
  const flags = sizeof<KF>() == 2;
  const ELT = <usize>sizeof<T>();
  const np = gNp, nq = (np + 3) >> 2;
  const nx = NX + <usize>(slot * MAX_GROUP) * 8;
  if (gXpI0 != gI0 || gXpNp != np || gXpSlot != slot) {
    packCentred<T>(px, pxi, sx, D, np, nx);
    gXpI0 = gI0;
    gXpNp = np;
    gXpSlot = slot;
  }
  const qb = <usize>D * 4 * ELT;
  const chunk = <i32>(YC_BYTES / (<usize>D * 16)) & ~1; // >= 2 (blockedRows)
  for (let v0 = 0; v0 < nv; v0 += chunk) {
    const nvc = min(chunk, nv - v0);
    centreColumns<T>(py, sy, D, v0, nvc);
    const cs = <usize>nvc << 4;
    for (let g = 0; g < nq; g++) {
      const o = out + <usize>(4 * g) * os, pp = XP + <usize>g * qb, pn = nx + <usize>(4 * g) * ELT;
      const xr = px + <usize>(4 * g) * pxi, nr = min(4, np - 4 * g);
      let v = v0;
      for (; v + 2 <= v0 + nvc; v += 2) {
        const vo = <usize>v << 4;
        if (!tileP<T, TSQX, u16>(o + vo, os, pp, YC + (<usize>(v - v0) << 4), cs, D, pn, NY + vo)) {
          if (columnFails<T>(o + vo, os, pn, NY + vo)) directColumn<T>(o + vo, os, xr, pxi, sx, py + vo, sy, D, nr);
          if (columnFails<T>(o + vo + 16, os, pn, NY + vo + 16)) {
            directColumn<T>(o + vo + 16, os, xr, pxi, sx, py + vo + 16, sy, D, nr);
          }
        }
        if (flags) flagBelow<T, u16>(o + vo, os, THR + <usize>(4 * g) * ELT, FL + <usize>(4 * g) * FLAG_ROW, v >> 1);
      }
      if (v < v0 + nvc) {
        const vo = <usize>v << 4;
        if (!tileP<T, TSQX, u8>(o + vo, os, pp, YC + (<usize>(v - v0) << 4), cs, D, pn, NY + vo)) {
          directColumn<T>(o + vo, os, xr, pxi, sx, py + vo, sy, D, nr);
        }
        if (flags) flagBelow<T, u8>(o + vo, os, THR + <usize>(4 * g) * ELT, FL + <usize>(4 * g) * FLAG_ROW, v >> 1);
      }
    }
  }
}

// Sets byte `pair` (the vector pair's index in the segment) of row r's flags (pfl + r * FLAG_ROW) to
// 0xff, or 0, for each of the 4 tile rows at out (row r at out + r * os; 1 or 2 vectors, NV u8 / u16)
// with, or without, an entry below row r's threshold (pth + r * ELT). Read back from the stored tile,
// so that the entries recomputed in direct mode are the ones compared. Branch-free (the flagged pairs
// are rare and random), and a plain byte store: a bit set in a 64-bit word (load, variable shift, or,
// store) cost 4 times the instructions, 4% of the K-NN run at D = 50.
// @ts-ignore: decorator
@inline function flagBelow<T, NV>(out: usize, os: usize, pth: usize, pfl: usize, pair: i32): void {
  const ELT = <usize>sizeof<T>();
  for (let r: usize = 0; r < 4; r++) {
    const t = lsplat<T>(pth + r * ELT), p = out + r * os;
    let m = v128.lt<T>(v128.load(p), t);
    if (sizeof<NV>() == 2) m = v128.or(m, v128.lt<T>(v128.load(p, 16), t));
    store<u8>(pfl + r * FLAG_ROW + <usize>pair, <u8>(0 - <i32>v128.any_true(m)));
  }
}

/** Whether the run's only blocked instruction is a centred expanded SQDIST (blockedTileK applies). */
export function blockedLoneCentred(): bool {
  return gSlots == 1 && gCentre;
}

export function blockedUsesTileK(on: bool): void {
  gTileK = on;
}

/** Row thresholds of blockedTileK: T per row of the group (rows padded to a quad: -inf). */
export function blockedThresholds(): usize {
  return THR;
}

/** Row flags of blockedTileK: FLAG_ROW bytes per row, byte p 0xff where vectors 2p, 2p + 1 of the
 *  segment hold an entry below the row's threshold, else 0 (bytes [0, (nv + 1) / 2) of every row of
 *  the group are written; at most 256 vectors). */
export function blockedFlags(): usize {
  return FL;
}

/** Computes the lone centred SQDIST's tile for the current group on block b, vectors [x0/16,
 *  x0/16 + nv), and flags in each row the vector pairs with an entry below its threshold (a K-nearest
 *  reduction then reads only those: after the first blocks a row has about K / b entries in block b
 *  that can enter its K smallest, and copying and scanning every row cost ~15% of the run at D = 50).
 *  Returns the tile's row 0 at vector x0/16; row r is at + r * blockedRowBytes(). */
export function blockedTileK<T>(b: i32, x0: usize, nv: i32): usize {
  computeSlot<T, u16>(0, BT, b, x0, nv);
  return BT + x0;
}

// @ts-ignore: decorator
@inline export function blockedRowBytes(): usize {
  return gRowBytes;
}

// KF: u8, or u16 to flag the rows' entries below their thresholds (blockedTileK; a centred run only).
function computeSlot<T, KF>(slot: i32, tile: usize, b: i32, x0: usize, nv: i32): void {
  const s = SL + (<usize>slot << 5);
  const mode = load<i32>(s, 0), ru = load<i32>(s, 4), rv = load<i32>(s, 8), rc = load<i32>(s, 12);
  const D = load<i32>(s, 16);
  const ELT = <usize>sizeof<T>();
  const i0 = gI0, np = gNp;
  const px = rptr(ru, i0, b), pxi = <usize>load<i32>(ent(ru), RT_IMUL), sx = <usize>load<i32>(ent(ru), RT_STRIDE);
  const py = rptr(rv, i0, b) + x0, sy = <usize>load<i32>(ent(rv), RT_STRIDE);
  const out = tile + x0, os = gRowBytes;
  if (mode == M_SQX && gCentre) {
    centredSlot<T, KF>(slot, out, os, px, pxi, sx, py, sy, D, nv);
    return;
  }
  if (mode == M_WSQ) {
    const pc = rptr(rc, i0, b), pci = <usize>load<i32>(ent(rc), RT_IMUL);
    const sc: usize = rdim(rc) == 1 ? <usize>0 : <usize>load<i32>(ent(rc), RT_STRIDE);
    tiles<T, TWSQ>(out, os, px, pxi, sx, py, sy, pc, pci, sc, D, np, nv);
    return;
  }
  // rows [0, 4 nq) run as 4-row tiles on packed rows (packed once per group: the blocks of a group come
  // one after another), the rest (and everything when the packed rows do not fit, or several
  // instructions are blocked and would repack each other's rows) on the rows in place
  let nq = np / 4;
  if (gSlots != 1 || <usize>(4 * nq) * <usize>D * ELT > XP_BYTES) nq = 0;
  if (nq > 0 && (gXpI0 != i0 || gXpNp != np || gXpSlot != slot)) {
    packRows<T>(px, pxi, sx, D, nq);
    gXpI0 = i0;
    gXpNp = np;
    gXpSlot = slot;
  }
  const rP = 4 * nq;
  const outR = out + <usize>rP * os, pxR = px + <usize>rP * pxi;
  if (mode == M_DOT) {
    tilesP<T, TDOT>(out, os, py, sy, 0, D, nq, nv);
    tiles<T, TDOT>(outR, os, pxR, pxi, sx, py, sy, 0, 0, 0, D, np - rP, nv);
  } else if (mode == M_SQD) {
    tilesP<T, TSQD>(out, os, py, sy, 0, D, nq, nv);
    tiles<T, TSQD>(outR, os, pxR, pxi, sx, py, sy, 0, 0, 0, D, np - rP, nv);
  } else {
    // |x_i|^2 of the group, once per group
    const nx = NX + <usize>(slot * MAX_GROUP) * 8;
    if (load<i32>(s, 20) != i0 || load<i32>(s, 24) != np) {
      for (let r = 0; r < np; r++) store<T>(nx + <usize>r * ELT, sumSquares<T>(px + <usize>r * pxi, sx, D));
      store<i32>(s, i0, 20);
      store<i32>(s, np, 24);
    }
    // |y_j|^2 of the vectors of this block segment, 4 vectors at a time: one vector alone is a chain
    // of dependent adds (3 cycles each), which cost 9% of the whole tile at D = 784, B = 16
    let v = 0;
    for (; v + 4 <= nv; v += 4) {
      let a0 = v128.splat<i32>(0), a1 = a0, a2 = a0, a3 = a0;
      let q = py + (<usize>v << 4);
      for (let k = 0; k < D; k++) {
        const y0 = v128.load(q), y1 = v128.load(q, 16), y2 = v128.load(q, 32), y3 = v128.load(q, 48);
        a0 = v128.add<T>(a0, v128.mul<T>(y0, y0));
        a1 = v128.add<T>(a1, v128.mul<T>(y1, y1));
        a2 = v128.add<T>(a2, v128.mul<T>(y2, y2));
        a3 = v128.add<T>(a3, v128.mul<T>(y3, y3));
        q += sy;
      }
      const pn = NY + (<usize>v << 4);
      v128.store(pn, a0);
      v128.store(pn, a1, 16);
      v128.store(pn, a2, 32);
      v128.store(pn, a3, 48);
    }
    for (; v < nv; v++) {
      let a = v128.splat<i32>(0);
      let q = py + (<usize>v << 4);
      for (let k = 0; k < D; k++) {
        const y = v128.load(q);
        a = v128.add<T>(a, v128.mul<T>(y, y));
        q += sy;
      }
      v128.store(NY + (<usize>v << 4), a);
    }
    tilesP<T, TSQX>(out, os, py, sy, nx, D, nq, nv);
    tilesExpanded<T>(outR, os, pxR, pxi, sx, py, sy, nx + <usize>rP * ELT, D, np - rP, nv);
  }
}

/** Bit 0: this binary uses relaxed-SIMD fused multiply-adds (the blocked results then differ from the
 *  unblocked ones by rounding). */
export function blockedFeatures(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

/** What the last run() planned: blocked instructions (bits 0-7), tile rows per slot (bits 8-15),
 *  bit 16 whether it centred its expanded SQDIST (CENTRING), bit 17 whether its K-nearest rows were
 *  folded straight from the tile, only those flagged below their K-th value (blockedTileK). */
export function blockedInfo(): i32 {
  return gSlots | (gGroup << 8) | (gCentre ? 1 << 16 : 0) | (gTileK ? 1 << 17 : 0);
}
