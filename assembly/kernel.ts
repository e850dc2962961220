// The WebAssembly engine kernel: an interpreter of the tile programs specified in ./isa.ts.
//
// EXPORTS
//   run(prog, iStart, iEnd): i32   runs the program for outer indices [iStart, iEnd) (clusters
//                                  [iStart, iEnd) when H_RANGES != 0): OK, ERR_BAD_PROGRAM (everything
//                                  is validated once per call), ERR_ACC (H_ACC_BYTES too small)
//   heapBase(): usize              end of the kernel's static data: JS lays out everything above it
//   mathTest(fn, dtype, in, out, n) the SIMD exp/log/sin/cos (fn 0..3; 4 = exp 4 vectors in lockstep;
//                                  5..7 = atan, asin, acos)
//                                  on n elements (dtype 0 f32, 1 f64)
//   memory                         exported, growable from JS (memory.grow); nothing is imported
//
// DESIGN (why it looks like this)
// - One generic implementation over T = f32 | f64 (compile-time branches on sizeof<T>()), instantiated
//   twice; the dtype is read from the program header once per run() call.
// - Registers are resolved once per run() into a static table of affine pointers
//   ptr(i, b) = fixed + i*imul + b*bmul (outer variables move with i, inner variables with the block
//   index b, views inherit their parent's layout plus a row offset), a row stride, dim and a
//   block/uniform flag. The whole program is validated at the same time.
// - Each instruction is decoded once per block; the loop variant (block/uniform operands, broadcast
//   of 1-row operands through a zero row step) is chosen outside the inner loop, and every
//   (op, dtype, operand layout) is its own tight SIMD loop: ops are zero-size classes with an @inline
//   apply() and the loops are generic over them, so uniforms live splatted in registers.
// - SQDIST / DOT / WSQDIST / ROWSUM keep 4 accumulator vectors (16 f32 or 8 f64 j's) in registers
//   across the whole dimension loop (unrolled by 2) and write dst once, instead of a read-modify-write
//   of dst per dimension (what the C yardstick does). At D = 50 the loop runs near the limit of the
//   two FP adders of the machine (one sub and one add per pair and dimension).
// - Several outer indices (up to OUTER_TILE = 8, as many states as H_ACC holds) share each pass over
//   the inner blocks when the outer code is empty, so an inner tile is reused from L1/L2 instead of
//   being streamed from L3 once per i (+30% at D = 50).
// - At D >= 8, a DOT / SQDIST / WSQDIST of an outer and an inner variable is computed by the
//   register-blocked tiles of blocked.ts for up to 64 outer indices per pass (their own state area),
//   and execInner copies row i of that tile when it reaches the instruction.
// - exp is evaluated 4 vectors at a time in lockstep (math.ts: the single-vector loop is latency-bound)
//   and peepholes planned once per run() save whole passes over the block: MUL(t, a, u) followed by
//   EXP(d, t) or ADD(d, t, h) runs as one loop when t is dead afterwards (the compiler's code is SSA-
//   like: exp(-g*d2), -g*d2 + h_j), and a RED_SUM of F = MUL(a, b) as the last instruction folds
//   sum(a*b) directly. Together +25% on the Gaussian kernel sum, +5% on LSE.
// - Loop constants come from splatted tables in memory (consts.ts): V8 rematerialises v128.const in
//   every iteration with 3 instructions, which doubled the cost of exp.
// - exp flushes results below the smallest normal number to 0: on x86 every subnormal result costs a
//   microcode assist (4x slower vectors) and Wasm cannot set FTZ; Gaussian kernels underflow a lot.
// - Reductions fold each block with SIMD: sums in T per block then f64; LSE per block max (NaN-
//   ignoring pmax, NaN detected separately) then sum of exp(v - max), running (max, sum) in f64;
//   arg-min/max lane-wise with index vectors, scanned backwards with <= so ties keep the lowest index,
//   merged with strict < across blocks; K-min keeps a sorted list per row and prefilters 16 f32 (8 f64)
//   entries at a time against the current K-th value.
// - Block-sparse programs (H_RANGES != 0) run the same per-block code on segments [t0, t1) of tiles:
//   the inner code runs on the vectors covering the segment and every fold takes a head mask for a
//   segment starting inside a vector, so dense reductions are the special case of one range [0, M).
// - The kernel allocates nothing (runtime stub); static tables (the resolved register table, up to
//   MAX_REGS = 16384 registers, 512 KiB) live below heapBase(). Not reentrant: one run() at a time per instance.
//
// ACCUMULATOR BYTES (H_ACC_BYTES) needed per outer index, with d = dim(F), e = dim(G),
// ELT = 4 (f32) or 8 (f64); S is that rounded up to a multiple of 16:
//   RED_SUM, RED_SUM_ACC64        8*d
//   RED_SUM_COLS                  8*d (its column sums are at H_COLS, sized by the caller)
//   RED_LSE                       16*d
//   RED_LSE_W, RED_SSMW(_LSE)     16 + 24*e
//   RED_MIN .. RED_MAXARGMAX      32*d
//   RED_KMIN .. RED_KMINARGKMIN   align16(4*d) + d*K*(ELT + 4)
// All are <= 64 + 32*(d + e) + 16*K*d. run() returns ERR_ACC when H_ACC_BYTES < S. With
// H_ACC_BYTES >= P*S (and an empty outer code) P <= 8 outer indices are processed together:
// allocating 8*S bytes is recommended for speed.
//
// INTERPRETATIONS OF isa.ts (where it is silent)
// - Rows of an elementwise op are computed in order k = 0, 1, ...: dst may be the same register as an
//   operand, but a 1-row operand that is a row of dst (through a view) sees the rows already written.
// - SIGN(NaN) = NaN; STEP(NaN) = 1 (literally "0 where a < 0, else 1"); RELU, MIN, MAX, CLAMP propagate
//   NaN like Math.min/max; ONEHOT rounds halves away from zero like ROUND; ROUND with aux < 0 computes
//   round(a / 10^-aux) * 10^-aux; POWF is literally exp(b * log(a)) (so 0^0 = NaN).
// - F (and G) may be uniform registers (a formula that does not depend on j).
// - Block-sparse: ties go to the first entry in visiting order (the lowest index when the ranges of a
//   cluster are increasing, as they are in practice); K-min orders equal values the same way.
// - LSE: +inf anywhere gives +inf, NaN anywhere gives NaN. LSE_W and SSMW: F = +inf or NaN gives NaN;
//   SSMW of an all -inf row is NaN (0/0), LSE_W of it -inf. SSMW_LSE is SSMW plus the row's running
//   max m and sum s0 = sum exp(F - m) as values e and e + 1 (-inf and 0 for an all -inf row, NaN
//   where SSMW is NaN from F).

import * as I from './isa';
import {
  UCopy, UNeg, UAbs, ULog, USqrt, URsqrt, USquare, UInv, USin, UCos, USign, UStep, URelu, UXlogx,
  USinxdivx, URound, UPow, UOnehot, UFloor, UAtan, UAsin, UAcos,
  BAdd, BSub, BMul, BDiv, BPowf, BEq, BNe, BLt, BLe, BGt, BGe, BMin, BMax, BAtan2,
  TClamp, TIfelse, TMod,
  CLS_UNARY, CLS_BINARY, CLS_TERNARY, CLS_ROWRED, opClass, evalOp, unaryParam, vsplat,
} from './ops';
import { vexp, vexp4, vexpUnderflow, vlog, vsin, vcos, vatan, vasin, vacos } from './math';
import { RT_FIXED, RT_IMUL, RT_BMUL, RT_STRIDE, RT_DIM, RT_BLK, RT_ROOT } from './consts';
import {
  planBlocked, hasBlocked, blockedGroup, blockedSlot, blockedRun, blockedStates, blockedAcc, blockedRows,
  blockedLoneCentred, blockedThresholds, blockedFlags, FLAG_ROW, blockedTileK, blockedRowBytes, blockedUsesTileK,
} from './blocked';
export { blockedPolicy, blockedFeatures, blockedInfo } from './blocked';

// @ts-ignore: decorator
@inline const MAX_REGS = 16384; // = isa.MAX_REGS
// @ts-ignore: decorator
@inline const OUTER_TILE = 8;

// Resolved register table, 32 bytes per register (field offsets RT_*: consts.ts).
const RT: usize = memory.data(MAX_REGS * 32, 16);

// Tail masks: lanes < r set. MASK32[r] for r = 0..4, MASK64[r] for r = 0..2.
const MASK32: usize = memory.data<i32>([
  0, 0, 0, 0, -1, 0, 0, 0, -1, -1, 0, 0, -1, -1, -1, 0, -1, -1, -1, -1,
], 16);
const MASK64: usize = memory.data<i32>([0, 0, 0, 0, -1, -1, 0, 0, -1, -1, -1, -1], 16);

// 64 bytes of scratch for vexp4 results
const TMP: usize = memory.data(64, 16);

// Operand source tags for the generic row-reduction loops (compile-time via sizeof).
type UNI = u8;
type BLK = u16;
type NONE = u32;

// ------------------------------------------------------------------------------------------------
// small helpers

// @ts-ignore: decorator
@inline function rEnt(r: i32): usize { return RT + (<usize>r << 5); }
// @ts-ignore: decorator
@inline function rPtr(r: i32, i: i32, b: i32): usize {
  const e = rEnt(r);
  return <usize>(load<i32>(e, RT_FIXED) + i * load<i32>(e, RT_IMUL) + b * load<i32>(e, RT_BMUL));
}
// pointer of a register in the inner code, whose block registers start at byte x0 of the block
// @ts-ignore: decorator
@inline function bPtr(r: i32, i: i32, b: i32, x0: usize): usize {
  return rPtr(r, i, b) + (load<i32>(rEnt(r), RT_BLK) != 0 ? x0 : 0);
}
// @ts-ignore: decorator
@inline function rStride(r: i32): usize { return <usize>load<i32>(rEnt(r), RT_STRIDE); }
// @ts-ignore: decorator
@inline function rDim(r: i32): i32 { return load<i32>(rEnt(r), RT_DIM); }
// @ts-ignore: decorator
@inline function rBlk(r: i32): bool { return load<i32>(rEnt(r), RT_BLK) != 0; }
// @ts-ignore: decorator
@inline function rRoot(r: i32): i32 { return load<i32>(rEnt(r), RT_ROOT); }
// operand `a` can be read row by row while dst is written (same register, or different memory)
// @ts-ignore: decorator
@inline function noAlias(a: i32, dst: i32): bool { return a == dst || !rBlk(a) || rRoot(a) != rRoot(dst); }
// row step: 0 for a 1-row operand (broadcast)
// @ts-ignore: decorator
@inline function rStep(r: i32): usize { return rDim(r) == 1 ? 0 : rStride(r); }

// @ts-ignore: decorator
@inline function tailMask<T>(rem: i32): v128 {
  return v128.load((sizeof<T>() == 4 ? MASK32 : MASK64) + (<usize>rem << 4));
}

// lane indices 0..L-1 as integer lanes of the width of T
// @ts-ignore: decorator
@inline function iota<T>(): v128 {
  if (sizeof<T>() == 4) return i32x4(0, 1, 2, 3);
  return i64x2(0, 1);
}
// @ts-ignore: decorator
@inline function isplat<T>(x: i32): v128 {
  if (sizeof<T>() == 4) return i32x4.splat(x);
  return i64x2.splat(<i64>x);
}
// @ts-ignore: decorator
@inline function iadd<T>(a: v128, b: v128): v128 {
  if (sizeof<T>() == 4) return i32x4.add(a, b);
  return i64x2.add(a, b);
}
// @ts-ignore: decorator
@inline function ilt0<T>(a: v128): v128 {
  if (sizeof<T>() == 4) return i32x4.lt_s(a, i32x4.splat(0));
  return i64x2.lt_s(a, i64x2.splat(0));
}
// @ts-ignore: decorator
@inline function laneMask<T>(m: v128): i32 {
  if (sizeof<T>() == 4) return i32x4.bitmask(m);
  return i64x2.bitmask(m);
}
// @ts-ignore: decorator
@inline function lanes<T>(): i32 { return <i32>(16 / sizeof<T>()); }

// horizontal sum / max into f64
// @ts-ignore: decorator
@inline function hsum<T>(v: v128): f64 {
  if (sizeof<T>() == 4) {
    return (<f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1)) +
      (<f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3));
  }
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}
// @ts-ignore: decorator
@inline function hmax<T>(v: v128): f64 {
  if (sizeof<T>() == 4) {
    const a = f32x4.pmax(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    const b = f32x4.pmax(a, v128.shuffle<f32>(a, a, 1, 0, 3, 2));
    return <f64>f32x4.extract_lane(b, 0);
  }
  const a = f64x2.pmax(v, v128.shuffle<f64>(v, v, 1, 0));
  return f64x2.extract_lane(a, 0);
}

// @ts-ignore: decorator
@inline function fill(pd: usize, nv: i32, v: v128): void {
  const end = pd + (<usize>nv << 4);
  for (; pd < end; pd += 16) v128.store(pd, v);
}

// load vector t of a row, or the splat of a uniform row
// @ts-ignore: decorator
@inline function ldv<T, S>(p: usize, t: i32): v128 {
  if (sizeof<S>() == 1) return v128.splat<T>(load<T>(p));
  return v128.load(p + (<usize>t << 4));
}

// ------------------------------------------------------------------------------------------------
// elementwise loops

// @ts-ignore: decorator
@inline function uloop<T, O>(pd: usize, pa: usize, nv: i32, p: v128, aux: i32): void {
  const o = changetype<O>(0);
  const bytes = <usize>nv << 4;
  for (let x: usize = 0; x < bytes; x += 16) {
    v128.store(pd + x, o.apply<T>(v128.load(pa + x), p, aux));
  }
}

// @ts-ignore: decorator
@inline function bloopBB<T, O>(pd: usize, pa: usize, pb: usize, nv: i32): void {
  const o = changetype<O>(0);
  const bytes = <usize>nv << 4;
  let x: usize = 0;
  for (; x + 32 <= bytes; x += 32) {
    v128.store(pd + x, o.apply<T>(v128.load(pa + x), v128.load(pb + x)));
    v128.store(pd + x, o.apply<T>(v128.load(pa + x, 16), v128.load(pb + x, 16)), 16);
  }
  if (x < bytes) v128.store(pd + x, o.apply<T>(v128.load(pa + x), v128.load(pb + x)));
}

// @ts-ignore: decorator
@inline function bloopBU<T, O>(pd: usize, pa: usize, vb: v128, nv: i32): void {
  const o = changetype<O>(0);
  const bytes = <usize>nv << 4;
  let x: usize = 0;
  for (; x + 32 <= bytes; x += 32) {
    v128.store(pd + x, o.apply<T>(v128.load(pa + x), vb));
    v128.store(pd + x, o.apply<T>(v128.load(pa + x, 16), vb), 16);
  }
  if (x < bytes) v128.store(pd + x, o.apply<T>(v128.load(pa + x), vb));
}

// @ts-ignore: decorator
@inline function bloopUB<T, O>(pd: usize, va: v128, pb: usize, nv: i32): void {
  const o = changetype<O>(0);
  const bytes = <usize>nv << 4;
  let x: usize = 0;
  for (; x + 32 <= bytes; x += 32) {
    v128.store(pd + x, o.apply<T>(va, v128.load(pb + x)));
    v128.store(pd + x, o.apply<T>(va, v128.load(pb + x, 16)), 16);
  }
  if (x < bytes) v128.store(pd + x, o.apply<T>(va, v128.load(pb + x)));
}

// ternary: rare, operands chosen at run time inside the loop
// @ts-ignore: decorator
@inline function tloop<T, O>(
  pd: usize, pa: usize, ab: bool, pb: usize, bb: bool, pc: usize, cb: bool, nv: i32,
): void {
  const o = changetype<O>(0);
  const sa = v128.splat<T>(load<T>(pa)), sb = v128.splat<T>(load<T>(pb)), sc = v128.splat<T>(load<T>(pc));
  const bytes = <usize>nv << 4;
  for (let x: usize = 0; x < bytes; x += 16) {
    const a = ab ? v128.load(pa + x) : sa;
    const b = bb ? v128.load(pb + x) : sb;
    const c = cb ? v128.load(pc + x) : sc;
    v128.store(pd + x, o.apply<T>(a, b, c));
  }
}

// exp over a row, 4 vectors at a time in lockstep (see vexp4); with SCALED, exp(a * u)
// @ts-ignore: decorator
@inline function expLoop<T, SCALED>(pd: usize, pa: usize, u: v128, nv: i32): void {
  const bytes = <usize>nv << 4;
  const bytes4 = <usize>(nv & ~3) << 4;
  let x: usize = 0;
  for (; x < bytes4; x += 64) {
    let a0 = v128.load(pa + x), a1 = v128.load(pa + x, 16), a2 = v128.load(pa + x, 32), a3 = v128.load(pa + x, 48);
    if (sizeof<SCALED>() == 1) {
      a0 = v128.mul<T>(a0, u); a1 = v128.mul<T>(a1, u); a2 = v128.mul<T>(a2, u); a3 = v128.mul<T>(a3, u);
    }
    vexp4<T>(a0, a1, a2, a3, pd + x);
  }
  for (; x < bytes; x += 16) {
    let a0 = v128.load(pa + x);
    if (sizeof<SCALED>() == 1) a0 = v128.mul<T>(a0, u);
    v128.store(pd + x, vexp<T>(a0));
  }
}

function expRow<T>(pd: usize, pa: usize, nv: i32): void {
  expLoop<T, u16>(pd, pa, v128.splat<i32>(0), nv);
}
function expScaledRow<T>(pd: usize, pa: usize, u: v128, nv: i32): void {
  expLoop<T, u8>(pd, pa, u, nv);
}

// d = a * u + h (h block, or uniform: splatted)
function axpyRow<T, SH>(pd: usize, pa: usize, u: v128, ph: usize, nv: i32): void {
  const bytes = <usize>nv << 4;
  const hu = v128.splat<T>(load<T>(ph));
  let x: usize = 0;
  for (; x + 32 <= bytes; x += 32) {
    const h0 = sizeof<SH>() == 1 ? hu : v128.load(ph + x), h1 = sizeof<SH>() == 1 ? hu : v128.load(ph + x, 16);
    v128.store(pd + x, v128.add<T>(v128.mul<T>(v128.load(pa + x), u), h0));
    v128.store(pd + x, v128.add<T>(v128.mul<T>(v128.load(pa + x, 16), u), h1), 16);
  }
  if (x < bytes) {
    const h0 = sizeof<SH>() == 1 ? hu : v128.load(ph + x);
    v128.store(pd + x, v128.add<T>(v128.mul<T>(v128.load(pa + x), u), h0));
  }
}

function unaryBlock<T>(op: i32, pd: usize, pa: usize, nv: i32, p: v128, aux: i32): void {
  switch (op) {
    case I.OP_COPY: uloop<T, UCopy>(pd, pa, nv, p, aux); return;
    case I.OP_NEG: uloop<T, UNeg>(pd, pa, nv, p, aux); return;
    case I.OP_ABS: uloop<T, UAbs>(pd, pa, nv, p, aux); return;
    case I.OP_EXP: expRow<T>(pd, pa, nv); return;
    case I.OP_LOG: uloop<T, ULog>(pd, pa, nv, p, aux); return;
    case I.OP_SQRT: uloop<T, USqrt>(pd, pa, nv, p, aux); return;
    case I.OP_RSQRT: uloop<T, URsqrt>(pd, pa, nv, p, aux); return;
    case I.OP_SQUARE: uloop<T, USquare>(pd, pa, nv, p, aux); return;
    case I.OP_INV: uloop<T, UInv>(pd, pa, nv, p, aux); return;
    case I.OP_SIN: uloop<T, USin>(pd, pa, nv, p, aux); return;
    case I.OP_COS: uloop<T, UCos>(pd, pa, nv, p, aux); return;
    case I.OP_SIGN: uloop<T, USign>(pd, pa, nv, p, aux); return;
    case I.OP_STEP: uloop<T, UStep>(pd, pa, nv, p, aux); return;
    case I.OP_RELU: uloop<T, URelu>(pd, pa, nv, p, aux); return;
    case I.OP_XLOGX: uloop<T, UXlogx>(pd, pa, nv, p, aux); return;
    case I.OP_SINXDIVX: uloop<T, USinxdivx>(pd, pa, nv, p, aux); return;
    case I.OP_ROUND: uloop<T, URound>(pd, pa, nv, p, aux); return;
    case I.OP_POW: uloop<T, UPow>(pd, pa, nv, p, aux); return;
    case I.OP_ONEHOT: uloop<T, UOnehot>(pd, pa, nv, p, aux); return;
    case I.OP_FLOOR: uloop<T, UFloor>(pd, pa, nv, p, aux); return;
    case I.OP_ATAN: uloop<T, UAtan>(pd, pa, nv, p, aux); return;
    case I.OP_ASIN: uloop<T, UAsin>(pd, pa, nv, p, aux); return;
    case I.OP_ACOS: uloop<T, UAcos>(pd, pa, nv, p, aux); return;
  }
}

function binBB<T>(op: i32, pd: usize, pa: usize, pb: usize, nv: i32): void {
  switch (op) {
    case I.OP_ADD: bloopBB<T, BAdd>(pd, pa, pb, nv); return;
    case I.OP_SUB: bloopBB<T, BSub>(pd, pa, pb, nv); return;
    case I.OP_MUL: bloopBB<T, BMul>(pd, pa, pb, nv); return;
    case I.OP_DIV: bloopBB<T, BDiv>(pd, pa, pb, nv); return;
    case I.OP_POWF: bloopBB<T, BPowf>(pd, pa, pb, nv); return;
    case I.OP_EQ: bloopBB<T, BEq>(pd, pa, pb, nv); return;
    case I.OP_NE: bloopBB<T, BNe>(pd, pa, pb, nv); return;
    case I.OP_LT: bloopBB<T, BLt>(pd, pa, pb, nv); return;
    case I.OP_LE: bloopBB<T, BLe>(pd, pa, pb, nv); return;
    case I.OP_GT: bloopBB<T, BGt>(pd, pa, pb, nv); return;
    case I.OP_GE: bloopBB<T, BGe>(pd, pa, pb, nv); return;
    case I.OP_MIN: bloopBB<T, BMin>(pd, pa, pb, nv); return;
    case I.OP_MAX: bloopBB<T, BMax>(pd, pa, pb, nv); return;
    case I.OP_ATAN2: bloopBB<T, BAtan2>(pd, pa, pb, nv); return;
  }
}

function binBU<T>(op: i32, pd: usize, pa: usize, vb: v128, nv: i32): void {
  switch (op) {
    case I.OP_ADD: bloopBU<T, BAdd>(pd, pa, vb, nv); return;
    case I.OP_SUB: bloopBU<T, BSub>(pd, pa, vb, nv); return;
    case I.OP_MUL: bloopBU<T, BMul>(pd, pa, vb, nv); return;
    case I.OP_DIV: bloopBU<T, BDiv>(pd, pa, vb, nv); return;
    case I.OP_POWF: bloopBU<T, BPowf>(pd, pa, vb, nv); return;
    case I.OP_EQ: bloopBU<T, BEq>(pd, pa, vb, nv); return;
    case I.OP_NE: bloopBU<T, BNe>(pd, pa, vb, nv); return;
    case I.OP_LT: bloopBU<T, BLt>(pd, pa, vb, nv); return;
    case I.OP_LE: bloopBU<T, BLe>(pd, pa, vb, nv); return;
    case I.OP_GT: bloopBU<T, BGt>(pd, pa, vb, nv); return;
    case I.OP_GE: bloopBU<T, BGe>(pd, pa, vb, nv); return;
    case I.OP_MIN: bloopBU<T, BMin>(pd, pa, vb, nv); return;
    case I.OP_MAX: bloopBU<T, BMax>(pd, pa, vb, nv); return;
    case I.OP_ATAN2: bloopBU<T, BAtan2>(pd, pa, vb, nv); return;
  }
}

function binUB<T>(op: i32, pd: usize, va: v128, pb: usize, nv: i32): void {
  switch (op) {
    case I.OP_ADD: bloopUB<T, BAdd>(pd, va, pb, nv); return;
    case I.OP_SUB: bloopUB<T, BSub>(pd, va, pb, nv); return;
    case I.OP_MUL: bloopUB<T, BMul>(pd, va, pb, nv); return;
    case I.OP_DIV: bloopUB<T, BDiv>(pd, va, pb, nv); return;
    case I.OP_POWF: bloopUB<T, BPowf>(pd, va, pb, nv); return;
    case I.OP_EQ: bloopUB<T, BEq>(pd, va, pb, nv); return;
    case I.OP_NE: bloopUB<T, BNe>(pd, va, pb, nv); return;
    case I.OP_LT: bloopUB<T, BLt>(pd, va, pb, nv); return;
    case I.OP_LE: bloopUB<T, BLe>(pd, va, pb, nv); return;
    case I.OP_GT: bloopUB<T, BGt>(pd, va, pb, nv); return;
    case I.OP_GE: bloopUB<T, BGe>(pd, va, pb, nv); return;
    case I.OP_MIN: bloopUB<T, BMin>(pd, va, pb, nv); return;
    case I.OP_MAX: bloopUB<T, BMax>(pd, va, pb, nv); return;
    case I.OP_ATAN2: bloopUB<T, BAtan2>(pd, va, pb, nv); return;
  }
}

function ternBlock<T>(
  op: i32, pd: usize, pa: usize, ab: bool, pb: usize, bb: bool, pc: usize, cb: bool, nv: i32,
): void {
  switch (op) {
    case I.OP_CLAMP: tloop<T, TClamp>(pd, pa, ab, pb, bb, pc, cb, nv); return;
    case I.OP_IFELSE: tloop<T, TIfelse>(pd, pa, ab, pb, bb, pc, cb, nv); return;
    case I.OP_MOD: tloop<T, TMod>(pd, pa, ab, pb, bb, pc, cb, nv); return;
  }
}

// ------------------------------------------------------------------------------------------------
// row reductions over k with 4 register accumulators per chunk of 4 vectors

@final class RSum { @inline comb<T>(acc: v128, a: v128, b: v128, c: v128): v128 { return v128.add<T>(acc, a); } }
@final class RDot { @inline comb<T>(acc: v128, a: v128, b: v128, c: v128): v128 { return v128.add<T>(acc, v128.mul<T>(a, b)); } }
@final class RSqd {
  @inline comb<T>(acc: v128, a: v128, b: v128, c: v128): v128 {
    const d = v128.sub<T>(a, b);
    return v128.add<T>(acc, v128.mul<T>(d, d));
  }
}
@final class RWsq {
  @inline comb<T>(acc: v128, a: v128, b: v128, c: v128): v128 {
    const d = v128.sub<T>(a, b);
    return v128.add<T>(acc, v128.mul<T>(c, v128.mul<T>(d, d)));
  }
}

// operand values for one k row at byte offset x (a uniform is splatted once and reused)
// @ts-ignore: decorator
@inline function rrLoad<T, S>(q: usize, x: usize, u: i32, s0: v128): v128 {
  if (sizeof<S>() == 2) return v128.load(q + x + (<usize>u << 4));
  return s0;
}
// @ts-ignore: decorator
@inline function rrSplat<T, S>(q: usize): v128 {
  if (sizeof<S>() == 1) return v128.splat<T>(load<T>(q));
  return v128.splat<i32>(0);
}
// @ts-ignore: decorator
@inline function rrOff<S>(x: usize): usize { return sizeof<S>() == 2 ? x : 0; }

function rowRed<T, OP, SA, SB, SC>(
  pd: usize, pa: usize, sa: usize, pb: usize, sb: usize, pc: usize, sc: usize, rows: i32, nv: i32,
): void {
  const o = changetype<OP>(0);
  const bytes = <usize>nv << 4;
  const bytes4 = <usize>(nv & ~3) << 4;
  let x: usize = 0;
  for (; x < bytes4; x += 64) {
    let acc0 = v128.splat<i32>(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    let qa = pa + rrOff<SA>(x), qb = pb + rrOff<SB>(x), qc = pc + rrOff<SC>(x);
    let k = 0;
    // two rows per iteration (halves the loop overhead, ~9% faster at D = 50)
    {
      for (; k + 2 <= rows; k += 2) {
        const ua = rrSplat<T, SA>(qa), ub = rrSplat<T, SB>(qb), uc = rrSplat<T, SC>(qc);
        const qa1 = qa + sa, qb1 = qb + sb, qc1 = qc + sc;
        const va = rrSplat<T, SA>(qa1), vb = rrSplat<T, SB>(qb1), vc = rrSplat<T, SC>(qc1);
        acc0 = o.comb<T>(acc0, rrLoad<T, SA>(qa, 0, 0, ua), rrLoad<T, SB>(qb, 0, 0, ub), rrLoad<T, SC>(qc, 0, 0, uc));
        acc1 = o.comb<T>(acc1, rrLoad<T, SA>(qa, 0, 1, ua), rrLoad<T, SB>(qb, 0, 1, ub), rrLoad<T, SC>(qc, 0, 1, uc));
        acc2 = o.comb<T>(acc2, rrLoad<T, SA>(qa, 0, 2, ua), rrLoad<T, SB>(qb, 0, 2, ub), rrLoad<T, SC>(qc, 0, 2, uc));
        acc3 = o.comb<T>(acc3, rrLoad<T, SA>(qa, 0, 3, ua), rrLoad<T, SB>(qb, 0, 3, ub), rrLoad<T, SC>(qc, 0, 3, uc));
        acc0 = o.comb<T>(acc0, rrLoad<T, SA>(qa1, 0, 0, va), rrLoad<T, SB>(qb1, 0, 0, vb), rrLoad<T, SC>(qc1, 0, 0, vc));
        acc1 = o.comb<T>(acc1, rrLoad<T, SA>(qa1, 0, 1, va), rrLoad<T, SB>(qb1, 0, 1, vb), rrLoad<T, SC>(qc1, 0, 1, vc));
        acc2 = o.comb<T>(acc2, rrLoad<T, SA>(qa1, 0, 2, va), rrLoad<T, SB>(qb1, 0, 2, vb), rrLoad<T, SC>(qc1, 0, 2, vc));
        acc3 = o.comb<T>(acc3, rrLoad<T, SA>(qa1, 0, 3, va), rrLoad<T, SB>(qb1, 0, 3, vb), rrLoad<T, SC>(qc1, 0, 3, vc));
        qa = qa1 + sa; qb = qb1 + sb; qc = qc1 + sc;
      }
    }
    for (; k < rows; k++) {
      const ua = rrSplat<T, SA>(qa), ub = rrSplat<T, SB>(qb), uc = rrSplat<T, SC>(qc);
      acc0 = o.comb<T>(acc0, rrLoad<T, SA>(qa, 0, 0, ua), rrLoad<T, SB>(qb, 0, 0, ub), rrLoad<T, SC>(qc, 0, 0, uc));
      acc1 = o.comb<T>(acc1, rrLoad<T, SA>(qa, 0, 1, ua), rrLoad<T, SB>(qb, 0, 1, ub), rrLoad<T, SC>(qc, 0, 1, uc));
      acc2 = o.comb<T>(acc2, rrLoad<T, SA>(qa, 0, 2, ua), rrLoad<T, SB>(qb, 0, 2, ub), rrLoad<T, SC>(qc, 0, 2, uc));
      acc3 = o.comb<T>(acc3, rrLoad<T, SA>(qa, 0, 3, ua), rrLoad<T, SB>(qb, 0, 3, ub), rrLoad<T, SC>(qc, 0, 3, uc));
      qa += sa; qb += sb; qc += sc;
    }
    v128.store(pd + x, acc0);
    v128.store(pd + x, acc1, 16);
    v128.store(pd + x, acc2, 32);
    v128.store(pd + x, acc3, 48);
  }
  // remaining vectors one at a time
  for (; x < bytes; x += 16) {
    let acc0 = v128.splat<i32>(0);
    let qa = pa + rrOff<SA>(x), qb = pb + rrOff<SB>(x), qc = pc + rrOff<SC>(x);
    for (let k = 0; k < rows; k++) {
      const ua = rrSplat<T, SA>(qa), ub = rrSplat<T, SB>(qb), uc = rrSplat<T, SC>(qc);
      acc0 = o.comb<T>(acc0, rrLoad<T, SA>(qa, 0, 0, ua), rrLoad<T, SB>(qb, 0, 0, ub), rrLoad<T, SC>(qc, 0, 0, uc));
      qa += sa; qb += sb; qc += sc;
    }
    v128.store(pd + x, acc0);
  }
}

// scalar value of a row reduction over uniform operands only
function rowRedScalar<T>(op: i32, pa: usize, sa: usize, pb: usize, sb: usize, pc: usize, sc: usize, rows: i32): T {
  let s: T = <T>0;
  for (let k = 0; k < rows; k++) {
    const a = load<T>(pa);
    if (op == I.OP_ROWSUM) s += a;
    else {
      const b = load<T>(pb);
      if (op == I.OP_DOT) s += a * b;
      else {
        const d = a - b;
        if (op == I.OP_SQDIST) s += d * d;
        else s += load<T>(pc) * (d * d);
      }
    }
    pa += sa; pb += sb; pc += sc;
  }
  return s;
}

function innerRowRed<T>(op: i32, dst: i32, ra: i32, rb: i32, rc: i32, i: i32, b: i32, x0: usize, nv: i32): void {
  const pd = bPtr(dst, i, b, x0);
  const pa = bPtr(ra, i, b, x0), sa = rStep(ra), ab = rBlk(ra);
  if (op == I.OP_ROWSUM) {
    const rows = rDim(ra);
    if (ab) rowRed<T, RSum, BLK, NONE, NONE>(pd, pa, sa, 0, 0, 0, 0, rows, nv);
    else fill(pd, nv, v128.splat<T>(rowRedScalar<T>(op, pa, sa, 0, 0, 0, 0, rows)));
    return;
  }
  const pb = bPtr(rb, i, b, x0), sb = rStep(rb), bb = rBlk(rb);
  const rows = max(rDim(ra), rDim(rb));
  if (op == I.OP_DOT) {
    if (ab && bb) rowRed<T, RDot, BLK, BLK, NONE>(pd, pa, sa, pb, sb, 0, 0, rows, nv);
    else if (ab) rowRed<T, RDot, BLK, UNI, NONE>(pd, pa, sa, pb, sb, 0, 0, rows, nv);
    else if (bb) rowRed<T, RDot, UNI, BLK, NONE>(pd, pa, sa, pb, sb, 0, 0, rows, nv);
    else fill(pd, nv, v128.splat<T>(rowRedScalar<T>(op, pa, sa, pb, sb, 0, 0, rows)));
  } else if (op == I.OP_SQDIST) {
    if (ab && bb) rowRed<T, RSqd, BLK, BLK, NONE>(pd, pa, sa, pb, sb, 0, 0, rows, nv);
    else if (ab) rowRed<T, RSqd, BLK, UNI, NONE>(pd, pa, sa, pb, sb, 0, 0, rows, nv);
    else if (bb) rowRed<T, RSqd, UNI, BLK, NONE>(pd, pa, sa, pb, sb, 0, 0, rows, nv);
    else fill(pd, nv, v128.splat<T>(rowRedScalar<T>(op, pa, sa, pb, sb, 0, 0, rows)));
  } else {
    const pc = bPtr(rc, i, b, x0), sc = rStep(rc), cb = rBlk(rc);
    if (cb) {
      if (ab && bb) rowRed<T, RWsq, BLK, BLK, BLK>(pd, pa, sa, pb, sb, pc, sc, rows, nv);
      else if (ab) rowRed<T, RWsq, BLK, UNI, BLK>(pd, pa, sa, pb, sb, pc, sc, rows, nv);
      else if (bb) rowRed<T, RWsq, UNI, BLK, BLK>(pd, pa, sa, pb, sb, pc, sc, rows, nv);
      else rowRed<T, RWsq, UNI, UNI, BLK>(pd, pa, sa, pb, sb, pc, sc, rows, nv);
    } else {
      if (ab && bb) rowRed<T, RWsq, BLK, BLK, UNI>(pd, pa, sa, pb, sb, pc, sc, rows, nv);
      else if (ab) rowRed<T, RWsq, BLK, UNI, UNI>(pd, pa, sa, pb, sb, pc, sc, rows, nv);
      else if (bb) rowRed<T, RWsq, UNI, BLK, UNI>(pd, pa, sa, pb, sb, pc, sc, rows, nv);
      else fill(pd, nv, v128.splat<T>(rowRedScalar<T>(op, pa, sa, pb, sb, pc, sc, rows)));
    }
  }
}

// ------------------------------------------------------------------------------------------------
// fusion of instruction pairs, planned once per run()
//
// The TypeScript compiler emits SSA-like code (every instruction writes a fresh register). Two
// frequent pairs are executed as one pass over the block, without writing the intermediate t:
//   MUL(t, a, u) ; EXP(d, t)        -> d = exp(a * u)        (a block, u uniform: exp(-g * d2))
//   MUL(t, a, u) ; ADD(d, t, h)     -> d = a * u + h         (h block or uniform: -g * d2 + h_j)
// provided t is not read afterwards (nor reduced), unless t is d itself, and the operands read
// row by row cannot overlap d in another row order.

// @ts-ignore: decorator
@inline const MAX_FUSE = 4096;
// @ts-ignore: decorator
@inline const FUSE_NONE = 0;
// @ts-ignore: decorator
@inline const FUSE_EXP = 1;
// @ts-ignore: decorator
@inline const FUSE_ADD = 2;
const FUSE: usize = memory.data(MAX_FUSE);

// whether any instruction from q0 on, or the reduction, reads memory of root(t)
function readsAfter(code: usize, len: i32, q0: i32, t: i32, rF: i32, rG: i32): bool {
  const root = rRoot(t);
  if (rRoot(rF) == root || (rG >= 0 && rRoot(rG) == root)) return true;
  for (let q = q0; q < len; q++) {
    const ins = code + (<usize>q << 5);
    const op = load<i32>(ins, I.I_OP << 2);
    const cls = opClass(op);
    const n = cls == CLS_UNARY ? 1 : cls == CLS_BINARY ? 2 : cls == CLS_TERNARY ? 3
      : op == I.OP_ROWSUM ? 1 : op == I.OP_WSQDIST ? 3 : 2;
    for (let w = 0; w < n; w++) {
      if (rRoot(load<i32>(ins + (<usize>(I.I_A + w) << 2))) == root) return true;
    }
  }
  return false;
}

function planFusion(code: usize, len: i32, rF: i32, rG: i32): void {
  for (let q = 0; q < len && q < MAX_FUSE; q++) {
    store<u8>(FUSE + <usize>q, FUSE_NONE);
    if (q + 1 >= len) continue;
    const ins = code + (<usize>q << 5), nx = ins + 32;
    if (load<i32>(ins, I.I_OP << 2) != I.OP_MUL) continue;
    const t = load<i32>(ins, I.I_DST << 2), ra = load<i32>(ins, I.I_A << 2), rb = load<i32>(ins, I.I_B << 2);
    if (rBlk(ra) == rBlk(rb)) continue; // one block operand and one uniform
    const rv = rBlk(ra) ? ra : rb;
    const op2 = load<i32>(nx, I.I_OP << 2), d = load<i32>(nx, I.I_DST << 2);
    const x1 = load<i32>(nx, I.I_A << 2), x2 = load<i32>(nx, I.I_B << 2);
    if (rDim(d) != rDim(t) || !noAlias(rv, d)) continue;
    if (t != d && readsAfter(code, len, q + 2, t, rF, rG)) continue;
    if (op2 == I.OP_EXP && x1 == t) {
      store<u8>(FUSE + <usize>q, FUSE_EXP);
    } else if (op2 == I.OP_ADD && (x1 == t) != (x2 == t)) {
      const h = x1 == t ? x2 : x1;
      if (noAlias(h, d) && rRoot(h) != rRoot(t)) store<u8>(FUSE + <usize>q, FUSE_ADD);
    }
  }
}

// A RED_SUM whose F is a concatenation (the fused gradients of vjp: [dk, dv], ...): F is written
// only by COPYs of block registers into views of F that cover it once. Each part is folded into its
// own slice of the state directly from its source, and the COPYs are skipped (FUSE_SKIP); a part
// whose source is a product MUL(a, b), written there and read only by its COPY, is folded as
// sum(a * b) without the MUL being run at all (foldSumMul), provided nothing after the MUL writes
// a or b (they are read after the whole inner code). Otherwise (F written by anything else, parts
// overlapping or missing, more than MAX_PARTS, a uniform or broadcast part) F is folded as usual.
// @ts-ignore: decorator
@inline const FUSE_SKIP = 3;
// @ts-ignore: decorator
@inline const MAX_PARTS = 64;
// per part: [first row in F, rows, a, b] (b = -1: fold register a itself)
const PARTS: usize = memory.data(MAX_PARTS * 16, 16);
// RED_SUM_COLS: the parts of G added into the column sums, laid out as PARTS (planConcat on G, or
// one part [0, dim(G), G, -1])
const COL_PARTS: usize = memory.data(MAX_PARTS * 16, 16);

// the only instruction in [0, len) writing memory of root(r), or -1 (none, or several)
function soleWriter(code: usize, len: i32, r: i32): i32 {
  const root = rRoot(r);
  let at = -1;
  for (let q = 0; q < len; q++) {
    if (rRoot(load<i32>(code + (<usize>q << 5), I.I_DST << 2)) != root) continue;
    if (at >= 0) return -1;
    at = q;
  }
  return at;
}

// whether an instruction in (q0, len) writes memory of root(r)
function writtenAfter(code: usize, len: i32, q0: i32, r: i32): bool {
  const root = rRoot(r);
  for (let q = q0 + 1; q < len; q++) if (rRoot(load<i32>(code + (<usize>q << 5), I.I_DST << 2)) == root) return true;
  return false;
}

// whether an instruction other than `except`, or the reduction, reads memory of root(r)
function readElsewhere(code: usize, len: i32, except: i32, r: i32, rF: i32): bool {
  const root = rRoot(r);
  if (rRoot(rF) == root) return true;
  for (let q = 0; q < len; q++) {
    if (q == except) continue;
    const ins = code + (<usize>q << 5);
    const op = load<i32>(ins, I.I_OP << 2);
    const cls = opClass(op);
    const n = cls == CLS_UNARY ? 1 : cls == CLS_BINARY ? 2 : cls == CLS_TERNARY ? 3
      : op == I.OP_ROWSUM ? 1 : op == I.OP_WSQDIST ? 3 : 2;
    for (let w = 0; w < n; w++) if (rRoot(load<i32>(ins + (<usize>(I.I_A + w) << 2))) == root) return true;
  }
  return false;
}

// The parts of a concatenated F (see above), marking the instructions they replace; 0 if F is not one.
// Runs after planFusion (a MUL it fused with its successor is not a product part).
// `keep`: a register (or -1) the reduction reads besides F (RED_SUM_COLS: the other of F and G),
// whose writer is never skipped.
function planConcat(code: usize, len: i32, rF: i32, table: usize = PARTS, keep: i32 = -1): i32 {
  if (!rBlk(rF) || len > MAX_FUSE) return 0;
  const d = rDim(rF), sF = rStride(rF), fF = load<i32>(rEnt(rF), RT_FIXED);
  let n = 0, rows = 0;
  for (let q = 0; q < len; q++) {
    const ins = code + (<usize>q << 5);
    const dst = load<i32>(ins, I.I_DST << 2);
    if (rRoot(dst) != rF) continue;
    const src = load<i32>(ins, I.I_A << 2);
    if (load<i32>(ins, I.I_OP << 2) != I.OP_COPY || dst == rF || n == MAX_PARTS) return 0;
    if (!rBlk(src) || rDim(src) != rDim(dst) || rRoot(src) == rF || writtenAfter(code, len, q, src)) return 0;
    const first = (load<i32>(rEnt(dst), RT_FIXED) - fF) / <i32>sF;
    for (let p = 0; p < n; p++) {
      const f0 = load<i32>(table + (<usize>p << 4)), n0 = load<i32>(table + (<usize>p << 4), 4);
      if (first < f0 + n0 && f0 < first + rDim(dst)) return 0; // overlap
    }
    const e = table + (<usize>n << 4);
    store<i32>(e, first, 0); store<i32>(e, rDim(dst), 4); store<i32>(e, src, 8); store<i32>(e, -1, 12);
    rows += rDim(dst);
    n++;
  }
  if (n == 0 || rows != d) return 0;
  for (let p = 0; p < n; p++) {
    const e = table + (<usize>p << 4);
    const src = load<i32>(e, 8);
    // the COPY of this part: the instruction writing its view of F (found again: parts are few)
    let qc = -1;
    for (let q = 0; q < len && qc < 0; q++) {
      const ins = code + (<usize>q << 5);
      if (rRoot(load<i32>(ins, I.I_DST << 2)) == rF && load<i32>(ins, I.I_A << 2) == src) qc = q;
    }
    store<u8>(FUSE + <usize>qc, FUSE_SKIP);
    const qm = soleWriter(code, len, src);
    if (qm < 0 || qm > qc) continue;
    const ins = code + (<usize>qm << 5);
    if (load<i32>(ins, I.I_OP << 2) != I.OP_MUL || load<i32>(ins, I.I_DST << 2) != src) continue;
    if (load<u8>(FUSE + <usize>qm) != FUSE_NONE || readElsewhere(code, len, qc, src, rF)) continue;
    if (keep >= 0 && rRoot(keep) == rRoot(src)) continue;
    const a = load<i32>(ins, I.I_A << 2), b = load<i32>(ins, I.I_B << 2);
    if (!rBlk(a) && !rBlk(b)) continue;
    if (rRoot(a) == rRoot(src) || rRoot(b) == rRoot(src)) continue;
    if (writtenAfter(code, len, qm, a) || writtenAfter(code, len, qm, b)) continue;
    store<u8>(FUSE + <usize>qm, FUSE_SKIP);
    store<i32>(e, a, 8); store<i32>(e, b, 12);
  }
  return n;
}

// ------------------------------------------------------------------------------------------------
// code execution

// Runs the inner code for outer index i on block b, vectors [x0 / 16, x0 / 16 + nv) of the block.
function execInner<T>(code: usize, len: i32, i: i32, b: i32, x0: usize, nv: i32): void {
  const zero = v128.splat<i32>(0);
  for (let q = 0; q < len; q++) {
    // replaced by the fold of a concatenated F (planConcat)
    if ((gParts > 0 || gColParts > 0) && q < MAX_FUSE && load<u8>(FUSE + <usize>q) == FUSE_SKIP) continue;
    const ins = code + (<usize>q << 5);
    const op = load<i32>(ins, I.I_OP << 2), dst = load<i32>(ins, I.I_DST << 2);
    const ra = load<i32>(ins, I.I_A << 2), aux = load<i32>(ins, I.I_AUX << 2);
    const cls = opClass(op);
    // a register-blocked row reduction (blocked.ts): its tile was computed for the whole group
    if (hasBlocked()) {
      const slot = blockedSlot(q);
      if (slot != 0) { blockedRun<T>(slot - 1, bPtr(dst, i, b, x0), i, b, x0, nv); continue; }
    }
    if (cls == CLS_UNARY) {
      const pd0 = bPtr(dst, i, b, x0), sd = rStride(dst), dd = rDim(dst);
      const pa0 = bPtr(ra, i, b, x0), ab = rBlk(ra);
      if (op == I.OP_ONEHOT) {
        for (let k = 0; k < dd; k++) {
          const p = vsplat<T>(<f64>k);
          const pd = pd0 + <usize>k * sd;
          if (ab) uloop<T, UOnehot>(pd, pa0, nv, p, aux);
          else fill(pd, nv, evalOp<T>(op, v128.splat<T>(load<T>(pa0)), zero, zero, p, aux));
        }
        continue;
      }
      const sa = rStep(ra);
      const p = unaryParam<T>(op, aux);
      for (let k = 0; k < dd; k++) {
        const pd = pd0 + <usize>k * sd, pa = pa0 + <usize>k * sa;
        if (ab) unaryBlock<T>(op, pd, pa, nv, p, aux);
        else fill(pd, nv, evalOp<T>(op, v128.splat<T>(load<T>(pa)), zero, zero, p, aux));
      }
    } else if (cls == CLS_BINARY) {
      const rb = load<i32>(ins, I.I_B << 2);
      // MUL(t, a, u) fused with the next instruction (see planFusion)
      const fk = q < MAX_FUSE && q + 1 < len ? <i32>load<u8>(FUSE + <usize>q) : FUSE_NONE;
      if (fk != FUSE_NONE) {
        const nx = ins + 32;
        const rd = load<i32>(nx, I.I_DST << 2);
        const blkA = rBlk(ra);
        const rv = blkA ? ra : rb, ru = blkA ? rb : ra;
        const pd0 = bPtr(rd, i, b, x0), sd = rStride(rd), dd = rDim(rd);
        const pv0 = bPtr(rv, i, b, x0), sv = rStep(rv), pu0 = bPtr(ru, i, b, x0), su = rStep(ru);
        if (fk == FUSE_EXP) {
          // d = exp(a * u)
          for (let k = 0; k < dd; k++) {
            expScaledRow<T>(pd0 + <usize>k * sd, pv0 + <usize>k * sv, v128.splat<T>(load<T>(pu0 + <usize>k * su)), nv);
          }
        } else {
          // d = a * u + h
          const x1 = load<i32>(nx, I.I_A << 2);
          const rh = x1 == dst ? load<i32>(nx, I.I_B << 2) : x1;
          const ph0 = bPtr(rh, i, b, x0), sh = rStep(rh), hb = rBlk(rh);
          for (let k = 0; k < dd; k++) {
            const pd = pd0 + <usize>k * sd, pv = pv0 + <usize>k * sv, ph = ph0 + <usize>k * sh;
            const u = v128.splat<T>(load<T>(pu0 + <usize>k * su));
            if (hb) axpyRow<T, BLK>(pd, pv, u, ph, nv); else axpyRow<T, UNI>(pd, pv, u, ph, nv);
          }
        }
        q++;
        continue;
      }
      const pd0 = bPtr(dst, i, b, x0), sd = rStride(dst), dd = rDim(dst);
      const pa0 = bPtr(ra, i, b, x0), sa = rStep(ra), ab = rBlk(ra);
      const pb0 = bPtr(rb, i, b, x0), sb = rStep(rb), bb = rBlk(rb);
      for (let k = 0; k < dd; k++) {
        const pd = pd0 + <usize>k * sd, pa = pa0 + <usize>k * sa, pb = pb0 + <usize>k * sb;
        if (ab) {
          if (bb) binBB<T>(op, pd, pa, pb, nv);
          else binBU<T>(op, pd, pa, v128.splat<T>(load<T>(pb)), nv);
        } else {
          if (bb) binUB<T>(op, pd, v128.splat<T>(load<T>(pa)), pb, nv);
          else fill(pd, nv, evalOp<T>(op, v128.splat<T>(load<T>(pa)), v128.splat<T>(load<T>(pb)), zero, zero, aux));
        }
      }
    } else if (cls == CLS_TERNARY) {
      const rb = load<i32>(ins, I.I_B << 2), rc = load<i32>(ins, I.I_C << 2);
      const pd0 = bPtr(dst, i, b, x0), sd = rStride(dst), dd = rDim(dst);
      const pa0 = bPtr(ra, i, b, x0), sa = rStep(ra), ab = rBlk(ra);
      const pb0 = bPtr(rb, i, b, x0), sb = rStep(rb), bb = rBlk(rb);
      const pc0 = bPtr(rc, i, b, x0), sc = rStep(rc), cb = rBlk(rc);
      for (let k = 0; k < dd; k++) {
        const pd = pd0 + <usize>k * sd;
        ternBlock<T>(op, pd, pa0 + <usize>k * sa, ab, pb0 + <usize>k * sb, bb, pc0 + <usize>k * sc, cb, nv);
      }
    } else {
      innerRowRed<T>(op, dst, ra, load<i32>(ins, I.I_B << 2), load<i32>(ins, I.I_C << 2), i, b, x0, nv);
    }
  }
}

// Outer code: every register is uniform; elementwise ops are evaluated one element at a time.
function execOuter<T>(code: usize, len: i32, i: i32): void {
  const ELT = <usize>sizeof<T>();
  for (let q = 0; q < len; q++) {
    const ins = code + (<usize>q << 5);
    const op = load<i32>(ins, I.I_OP << 2), dst = load<i32>(ins, I.I_DST << 2);
    const ra = load<i32>(ins, I.I_A << 2), rb = load<i32>(ins, I.I_B << 2);
    const rc = load<i32>(ins, I.I_C << 2), aux = load<i32>(ins, I.I_AUX << 2);
    const cls = opClass(op);
    const pd = rPtr(dst, i, 0), dd = rDim(dst);
    const pa = rPtr(ra, i, 0), sa: usize = rDim(ra) == 1 ? 0 : ELT;
    if (cls == CLS_ROWRED) {
      let pb: usize = 0, sb: usize = 0, pc: usize = 0, sc: usize = 0, rows = rDim(ra);
      if (op != I.OP_ROWSUM) {
        pb = rPtr(rb, i, 0); sb = rDim(rb) == 1 ? 0 : ELT; rows = max(rows, rDim(rb));
        if (op == I.OP_WSQDIST) { pc = rPtr(rc, i, 0); sc = rDim(rc) == 1 ? 0 : ELT; }
      }
      store<T>(pd, rowRedScalar<T>(op, pa, sa, pb, sb, pc, sc, rows));
      continue;
    }
    let pb: usize = pa, sb: usize = 0, pc: usize = pa, sc: usize = 0;
    if (cls == CLS_BINARY || cls == CLS_TERNARY) { pb = rPtr(rb, i, 0); sb = rDim(rb) == 1 ? 0 : ELT; }
    if (cls == CLS_TERNARY) { pc = rPtr(rc, i, 0); sc = rDim(rc) == 1 ? 0 : ELT; }
    const p = unaryParam<T>(op, aux);
    for (let k = 0; k < dd; k++) {
      const kk = <usize>k;
      const a = v128.splat<T>(load<T>(pa + kk * sa));
      const bv = v128.splat<T>(load<T>(pb + kk * sb));
      const cv = v128.splat<T>(load<T>(pc + kk * sc));
      const r = evalOp<T>(op, a, bv, cv, op == I.OP_ONEHOT ? vsplat<T>(<f64>k) : p, aux);
      store<T>(pd + kk * ELT, v128.extract_lane<T>(r, 0));
    }
  }
}

// ------------------------------------------------------------------------------------------------
// reductions: init, fold one block, finalize

// Every fold sees one row segment of a block: p points at a vector boundary, the entries are
// [h, n) counted from p (h < L lanes to skip at the head when an inner range starts inside a vector,
// always 0 for dense reductions), and lanes past n in the last vector are masked.

// valid lanes of the first vector: [h, min(n, L))
// @ts-ignore: decorator
@inline function headMask<T>(h: i32, n: i32): v128 {
  return v128.andnot(tailMask<T>(min(n, lanes<T>())), tailMask<T>(h));
}

// ---- RED_SUM: f64 per row
function foldSum<T, SF>(st: usize, pF: usize, sF: usize, d: i32, n: i32, h: i32): void {
  const L = lanes<T>();
  const nfull = n / L, rem = n % L;
  for (let k = 0; k < d; k++) {
    const p = pF + <usize>k * sF;
    let a0 = v128.splat<i32>(0), a1 = a0;
    let t = 0;
    if (h) { a0 = v128.and(ldv<T, SF>(p, 0), headMask<T>(h, n)); t = 1; }
    for (; t + 2 <= nfull; t += 2) {
      a0 = v128.add<T>(a0, ldv<T, SF>(p, t));
      a1 = v128.add<T>(a1, ldv<T, SF>(p, t + 1));
    }
    if (t < nfull) { a0 = v128.add<T>(a0, ldv<T, SF>(p, t)); t++; }
    if (rem && t == nfull) a1 = v128.add<T>(a1, v128.and(ldv<T, SF>(p, t), tailMask<T>(rem)));
    const s = hsum<T>(v128.add<T>(a0, a1));
    const ps = st + (<usize>k << 3);
    store<f64>(ps, load<f64>(ps) + s);
  }
}

// ---- RED_SUM_ACC64 (f32 terms): every term promoted and added in f64 (two f64x2 accumulators for
// the low and high lanes), so no rounding error builds up within a block either.
function foldSum64<SF>(st: usize, pF: usize, sF: usize, d: i32, n: i32, h: i32): void {
  const nfull = n / 4, rem = n % 4;
  for (let k = 0; k < d; k++) {
    const p = pF + <usize>k * sF;
    let a0 = f64x2.splat(0), a1 = a0;
    let t = 0;
    if (h) {
      const v = v128.and(ldv<f32, SF>(p, 0), headMask<f32>(h, n));
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(v));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 0, 1)));
      t = 1;
    }
    for (; t < nfull; t++) {
      const v = ldv<f32, SF>(p, t);
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(v));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 0, 1)));
    }
    if (rem && t == nfull) {
      const v = v128.and(ldv<f32, SF>(p, t), tailMask<f32>(rem));
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(v));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 0, 1)));
    }
    const s = hsum<f64>(f64x2.add(a0, a1));
    const ps = st + (<usize>k << 3);
    store<f64>(ps, load<f64>(ps) + s);
  }
}

// ---- RED_SUM fused with a last inner instruction F = MUL(a, b): sums of products without storing F
function foldSumMul<T, SA, SB>(st: usize, pa: usize, sa: usize, pb: usize, sb: usize, d: i32, n: i32, h: i32): void {
  const L = lanes<T>();
  const nfull = n / L, rem = n % L;
  for (let k = 0; k < d; k++) {
    const p = pa + <usize>k * sa, q = pb + <usize>k * sb;
    let a0 = v128.splat<i32>(0), a1 = a0;
    let t = 0;
    if (h) { a0 = v128.and(v128.mul<T>(ldv<T, SA>(p, 0), ldv<T, SB>(q, 0)), headMask<T>(h, n)); t = 1; }
    for (; t + 2 <= nfull; t += 2) {
      a0 = v128.add<T>(a0, v128.mul<T>(ldv<T, SA>(p, t), ldv<T, SB>(q, t)));
      a1 = v128.add<T>(a1, v128.mul<T>(ldv<T, SA>(p, t + 1), ldv<T, SB>(q, t + 1)));
    }
    if (t < nfull) { a0 = v128.add<T>(a0, v128.mul<T>(ldv<T, SA>(p, t), ldv<T, SB>(q, t))); t++; }
    if (rem && t == nfull) a1 = v128.add<T>(a1, v128.and(v128.mul<T>(ldv<T, SA>(p, t), ldv<T, SB>(q, t)), tailMask<T>(rem)));
    const s = hsum<T>(v128.add<T>(a0, a1));
    const ps = st + (<usize>k << 3);
    store<f64>(ps, load<f64>(ps) + s);
  }
}

// Block max (NaN ignored, masked lanes -inf) of one row segment.
// @ts-ignore: decorator
@inline function blockMax<T, SF>(p: usize, n: i32, h: i32): f64 {
  const L = lanes<T>();
  const nfull = n / L, rem = n % L;
  const NINF = vsplat<T>(-Infinity);
  let m0 = NINF, m1 = NINF;
  let t = 0;
  if (h) { m0 = v128.bitselect(ldv<T, SF>(p, 0), NINF, headMask<T>(h, n)); t = 1; }
  for (; t + 2 <= nfull; t += 2) {
    m0 = v128.pmax<T>(m0, ldv<T, SF>(p, t));
    m1 = v128.pmax<T>(m1, ldv<T, SF>(p, t + 1));
  }
  if (t < nfull) { m0 = v128.pmax<T>(m0, ldv<T, SF>(p, t)); t++; }
  if (rem && t == nfull) m1 = v128.pmax<T>(m1, v128.bitselect(ldv<T, SF>(p, t), NINF, tailMask<T>(rem)));
  return hmax<T>(v128.pmax<T>(m0, m1));
}

// Whether the entries [h, n) of a row segment hold a NaN.
function blockHasNaN<T, SF>(p: usize, n: i32, h: i32): bool {
  const L = lanes<T>();
  const nfull = n / L, rem = n % L;
  let m = v128.splat<i32>(0);
  let t = 0;
  if (h) {
    const v = ldv<T, SF>(p, 0);
    m = v128.and(v128.ne<T>(v, v), headMask<T>(h, n));
    t = 1;
  }
  for (; t < nfull; t++) {
    const v = ldv<T, SF>(p, t);
    m = v128.or(m, v128.ne<T>(v, v));
  }
  if (rem && t == nfull) {
    const v = ldv<T, SF>(p, t);
    m = v128.or(m, v128.and(v128.ne<T>(v, v), tailMask<T>(rem)));
  }
  return v128.any_true(m);
}

// sum of exp(v - mx) over the entries [h, n) of a row segment
// @ts-ignore: decorator
@inline function blockSumExp<T, SF>(p: usize, n: i32, mx: f64, h: i32): f64 {
  const L = lanes<T>();
  const nfull = n / L, rem = n % L;
  const M = vsplat<T>(mx);
  let a0 = v128.splat<i32>(0), a1 = a0;
  let t = 0;
  if (h) { a0 = v128.and(vexp<T>(v128.sub<T>(ldv<T, SF>(p, 0), M)), headMask<T>(h, n)); t = 1; }
  const LOW = vexpUnderflow<T>();
  for (; t + 4 <= nfull; t += 4) {
    const d0 = v128.sub<T>(ldv<T, SF>(p, t), M), d1 = v128.sub<T>(ldv<T, SF>(p, t + 1), M);
    const d2 = v128.sub<T>(ldv<T, SF>(p, t + 2), M), d3 = v128.sub<T>(ldv<T, SF>(p, t + 3), M);
    // Every term below exp's underflow threshold: each exp is exactly 0, so skipping them changes no
    // bit (NaN fails the comparison and is not skipped). Sinkhorn at small eps is mostly such terms.
    const below = v128.and(v128.and(v128.lt<T>(d0, LOW), v128.lt<T>(d1, LOW)), v128.and(v128.lt<T>(d2, LOW), v128.lt<T>(d3, LOW)));
    if (i32x4.all_true(below)) continue;
    vexp4<T>(d0, d1, d2, d3, TMP);
    a0 = v128.add<T>(a0, v128.add<T>(v128.load(TMP), v128.load(TMP, 16)));
    a1 = v128.add<T>(a1, v128.add<T>(v128.load(TMP, 32), v128.load(TMP, 48)));
  }
  for (; t < nfull; t++) a0 = v128.add<T>(a0, vexp<T>(v128.sub<T>(ldv<T, SF>(p, t), M)));
  if (rem && t == nfull) a1 = v128.add<T>(a1, v128.and(vexp<T>(v128.sub<T>(ldv<T, SF>(p, t), M)), tailMask<T>(rem)));
  return hsum<T>(v128.add<T>(a0, a1));
}

// ---- RED_LSE: (m, s) f64 per row; value = m + log(s)
function foldLse<T, SF>(st: usize, pF: usize, sF: usize, d: i32, n: i32, h: i32): void {
  for (let k = 0; k < d; k++) {
    const p = pF + <usize>k * sF;
    const ps = st + (<usize>k << 4);
    const m = load<f64>(ps), s = load<f64>(ps, 8);
    if (m != m || s != s) continue; // NaN is final
    const bm = blockMax<T, SF>(p, n, h);
    if (bm == -Infinity || bm == Infinity || m == Infinity) {
      if (blockHasNaN<T, SF>(p, n, h)) { store<f64>(ps, NaN); store<f64>(ps, NaN, 8); }
      else if (bm == Infinity) { store<f64>(ps, Infinity); store<f64>(ps, 1.0, 8); }
      continue;
    }
    const M = max(m, bm);
    const bs = blockSumExp<T, SF>(p, n, M, h);
    store<f64>(ps, M);
    store<f64>(ps, s * Math.exp(m - M) + bs, 8);
  }
}

// ---- RED_LSE_W / RED_SSMW: [m, s0] then e T-vector partials then e f64 sums
function foldLseW<T, SF, SG>(st: usize, pF: usize, pG: usize, sG: usize, e: i32, n: i32, h: i32): void {
  const m = load<f64>(st);
  if (m != m) return;
  const bm = blockMax<T, SF>(pF, n, h);
  if (bm == -Infinity || bm == Infinity || m == Infinity) {
    if (bm != -Infinity || blockHasNaN<T, SF>(pF, n, h)) {
      // +inf in F (or a NaN): no finite representation of the weighted sums; the result is NaN.
      store<f64>(st, NaN);
    }
    return;
  }
  const M = max(m, bm);
  const pPart = st + 16, pS = st + 16 + (<usize>e << 4);
  if (M > m) {
    const sc = Math.exp(m - M);
    store<f64>(st, load<f64>(st, 8) * sc, 8);
    for (let k = 0; k < e; k++) store<f64>(pS + (<usize>k << 3), load<f64>(pS + (<usize>k << 3)) * sc);
  }
  for (let k = 0; k < e; k++) v128.store(pPart + (<usize>k << 4), v128.splat<i32>(0));
  const L = lanes<T>();
  const nfull = n / L, rem = n % L;
  const MV = vsplat<T>(M);
  let s0 = v128.splat<i32>(0);
  let t = 0;
  if (h) {
    const w = v128.and(vexp<T>(v128.sub<T>(ldv<T, SF>(pF, 0), MV)), headMask<T>(h, n));
    s0 = w;
    let pg = pG, pp = pPart;
    for (let k = 0; k < e; k++) {
      v128.store(pp, v128.add<T>(v128.load(pp), v128.mul<T>(w, ldv<T, SG>(pg, 0))));
      pg += sG; pp += 16;
    }
    t = 1;
  }
  for (; t + 4 <= nfull; t += 4) {
    vexp4<T>(v128.sub<T>(ldv<T, SF>(pF, t), MV), v128.sub<T>(ldv<T, SF>(pF, t + 1), MV),
      v128.sub<T>(ldv<T, SF>(pF, t + 2), MV), v128.sub<T>(ldv<T, SF>(pF, t + 3), MV), TMP);
    const w0 = v128.load(TMP), w1 = v128.load(TMP, 16), w2 = v128.load(TMP, 32), w3 = v128.load(TMP, 48);
    s0 = v128.add<T>(s0, v128.add<T>(v128.add<T>(w0, w1), v128.add<T>(w2, w3)));
    let pg = pG, pp = pPart;
    for (let k = 0; k < e; k++) {
      const x0 = v128.add<T>(v128.mul<T>(w0, ldv<T, SG>(pg, t)), v128.mul<T>(w1, ldv<T, SG>(pg, t + 1)));
      const x1 = v128.add<T>(v128.mul<T>(w2, ldv<T, SG>(pg, t + 2)), v128.mul<T>(w3, ldv<T, SG>(pg, t + 3)));
      v128.store(pp, v128.add<T>(v128.load(pp), v128.add<T>(x0, x1)));
      pg += sG; pp += 16;
    }
  }
  for (; t < nfull + (rem ? 1 : 0); t++) {
    let w = vexp<T>(v128.sub<T>(ldv<T, SF>(pF, t), MV));
    if (t == nfull) w = v128.and(w, tailMask<T>(rem));
    s0 = v128.add<T>(s0, w);
    let pg = pG, pp = pPart;
    for (let k = 0; k < e; k++) {
      v128.store(pp, v128.add<T>(v128.load(pp), v128.mul<T>(w, ldv<T, SG>(pg, t))));
      pg += sG; pp += 16;
    }
  }
  store<f64>(st, M);
  store<f64>(st, load<f64>(st, 8) + hsum<T>(s0), 8);
  for (let k = 0; k < e; k++) {
    const q = pS + (<usize>k << 3);
    store<f64>(q, load<f64>(q) + hsum<T>(v128.load(pPart + (<usize>k << 4))));
  }
}

// ---- min/max family: per row a value vector and an index vector (lane-wise best so far)
function foldArg<T, SF>(st: usize, pF: usize, sF: usize, d: i32, n: i32, j0: i32, isMax: bool, h: i32): void {
  const L = lanes<T>();
  const nfull = n / L, rem = n % L;
  const init = vsplat<T>(isMax ? -Infinity : Infinity);
  const NANV = vsplat<T>(NaN);
  const IO = iota<T>();
  const STEP = isplat<T>(-L);
  const tStop = h ? 1 : 0; // with a head, vector 0 is masked and done last
  for (let k = 0; k < d; k++) {
    const p = pF + <usize>k * sF;
    let lb = init, li = isplat<T>(-1);
    // reverse scan with <= (>=): among equal values the lowest index wins
    let t = nfull;
    let jv = iadd<T>(IO, isplat<T>(j0 + nfull * L));
    if (rem) {
      const mask = nfull == 0 && h ? headMask<T>(h, n) : tailMask<T>(rem);
      const v = v128.bitselect(ldv<T, SF>(p, t), NANV, mask);
      const take = isMax ? v128.ge<T>(v, lb) : v128.le<T>(v, lb);
      lb = v128.bitselect(v, lb, take);
      li = v128.bitselect(jv, li, take);
    }
    if (isMax) {
      while (t > tStop) {
        t--; jv = iadd<T>(jv, STEP);
        const v = ldv<T, SF>(p, t);
        const take = v128.ge<T>(v, lb);
        lb = v128.bitselect(v, lb, take);
        li = v128.bitselect(jv, li, take);
      }
    } else {
      while (t > tStop) {
        t--; jv = iadd<T>(jv, STEP);
        const v = ldv<T, SF>(p, t);
        const take = v128.le<T>(v, lb);
        lb = v128.bitselect(v, lb, take);
        li = v128.bitselect(jv, li, take);
      }
    }
    if (h && nfull > 0) {
      jv = iadd<T>(jv, STEP);
      const v = v128.bitselect(ldv<T, SF>(p, 0), NANV, headMask<T>(h, n));
      const take = isMax ? v128.ge<T>(v, lb) : v128.le<T>(v, lb);
      lb = v128.bitselect(v, lb, take);
      li = v128.bitselect(jv, li, take);
    }
    // merge: the running state has lower indices, so it keeps ties
    const ps = st + (<usize>k << 5);
    const rb = v128.load(ps), ri = v128.load(ps, 16);
    const take = v128.or(isMax ? v128.gt<T>(lb, rb) : v128.lt<T>(lb, rb), ilt0<T>(ri));
    v128.store(ps, v128.bitselect(lb, rb, take));
    v128.store(ps, v128.bitselect(li, ri, take), 16);
  }
}

// ---- K-min family: per row a count, K values (T) ascending and K indices
// layout: counts i32[d] (padded to 16), values T[d*K], indices i32[d*K]

// (not inlined: insertions are rare once the list is full, and it keeps the prefilter loop small)
function kInsert<T>(pv: usize, pi: usize, K: i32, v: T, j: i32): void {
  // precondition: the list is full and v < pv[K-1]
  let pos = K - 1;
  while (pos > 0) {
    const u = load<T>(pv + (<usize>(pos - 1) * sizeof<T>()));
    if (!(u > v)) break;
    store<T>(pv + <usize>pos * sizeof<T>(), u);
    store<i32>(pi + (<usize>pos << 2), load<i32>(pi + (<usize>(pos - 1) << 2)));
    pos--;
  }
  store<T>(pv + <usize>pos * sizeof<T>(), v);
  store<i32>(pi + (<usize>pos << 2), j);
}

// @ts-ignore: decorator
@inline function kTry<T>(pv: usize, pi: usize, K: i32, v: T, j: i32): void {
  if (v < load<T>(pv + <usize>(K - 1) * sizeof<T>())) kInsert<T>(pv, pi, K, v, j);
}

// insert the lanes of mask bits `bits` of vector v (entries j, j+1, ...)
// @ts-ignore: decorator
@inline function kLanes<T>(pv: usize, pi: usize, K: i32, v: v128, bits: i32, j: i32): void {
  if (sizeof<T>() == 4) {
    if (bits & 1) kTry<T>(pv, pi, K, <T>f32x4.extract_lane(v, 0), j);
    if (bits & 2) kTry<T>(pv, pi, K, <T>f32x4.extract_lane(v, 1), j + 1);
    if (bits & 4) kTry<T>(pv, pi, K, <T>f32x4.extract_lane(v, 2), j + 2);
    if (bits & 8) kTry<T>(pv, pi, K, <T>f32x4.extract_lane(v, 3), j + 3);
  } else {
    if (bits & 1) kTry<T>(pv, pi, K, <T>f64x2.extract_lane(v, 0), j);
    if (bits & 2) kTry<T>(pv, pi, K, <T>f64x2.extract_lane(v, 1), j + 1);
  }
}

function foldKmin<T, SF>(st: usize, pF: usize, sF: usize, d: i32, K: i32, n: i32, j0: i32, h: i32): void {
  const L = lanes<T>();
  const ELT = <usize>sizeof<T>();
  const valBase = st + ((<usize>d * 4 + 15) & ~15);
  const idxBase = valBase + <usize>d * <usize>K * ELT;
  for (let k = 0; k < d; k++) {
    const p = pF + <usize>k * sF;
    const pc = st + (<usize>k << 2);
    const pv = valBase + <usize>k * <usize>K * ELT;
    const pi = idxBase + (<usize>k * <usize>K << 2);
    let cnt = load<i32>(pc);
    let t = h;
    // fill phase: the list is not full yet
    while (cnt < K && t < n) {
      const v = sizeof<SF>() == 1 ? load<T>(p) : load<T>(p + <usize>t * ELT);
      if (v == v) {
        let pos = cnt;
        while (pos > 0) {
          const u = load<T>(pv + <usize>(pos - 1) * ELT);
          if (!(u > v)) break;
          store<T>(pv + <usize>pos * ELT, u);
          store<i32>(pi + (<usize>pos << 2), load<i32>(pi + (<usize>(pos - 1) << 2)));
          pos--;
        }
        store<T>(pv + <usize>pos * ELT, v);
        store<i32>(pi + (<usize>pos << 2), j0 + t);
        cnt++;
      }
      t++;
    }
    store<i32>(pc, cnt);
    if (t >= n) continue;
    // scalar up to a vector boundary
    while (t < n && (t & (L - 1)) != 0) {
      const v = sizeof<SF>() == 1 ? load<T>(p) : load<T>(p + <usize>t * ELT);
      kTry<T>(pv, pi, K, v, j0 + t);
      t++;
    }
    if (t >= n) continue;
    // SIMD prefilter against the current K-th value
    const pkth = pv + <usize>(K - 1) * ELT;
    let thr = v128.splat<T>(load<T>(pkth));
    let tv = t / L;
    const nfull = n / L, rem = n % L;
    for (; tv + 4 <= nfull; tv += 4) {
      const v0 = ldv<T, SF>(p, tv), v1 = ldv<T, SF>(p, tv + 1);
      const v2 = ldv<T, SF>(p, tv + 2), v3 = ldv<T, SF>(p, tv + 3);
      const c0 = v128.lt<T>(v0, thr), c1 = v128.lt<T>(v1, thr);
      const c2 = v128.lt<T>(v2, thr), c3 = v128.lt<T>(v3, thr);
      if (v128.any_true(v128.or(v128.or(c0, c1), v128.or(c2, c3)))) {
        const j = j0 + tv * L;
        kLanes<T>(pv, pi, K, v0, laneMask<T>(c0), j);
        kLanes<T>(pv, pi, K, v1, laneMask<T>(c1), j + L);
        kLanes<T>(pv, pi, K, v2, laneMask<T>(c2), j + 2 * L);
        kLanes<T>(pv, pi, K, v3, laneMask<T>(c3), j + 3 * L);
        thr = v128.splat<T>(load<T>(pkth));
      }
    }
    for (; tv < nfull; tv++) {
      const v0 = ldv<T, SF>(p, tv);
      const bits = laneMask<T>(v128.lt<T>(v0, thr));
      if (bits) {
        kLanes<T>(pv, pi, K, v0, bits, j0 + tv * L);
        thr = v128.splat<T>(load<T>(pkth));
      }
    }
    if (rem && tv == nfull) {
      const v0 = ldv<T, SF>(p, tv);
      const bits = laneMask<T>(v128.lt<T>(v0, thr)) & ((1 << rem) - 1);
      if (bits) kLanes<T>(pv, pi, K, v0, bits, j0 + tv * L);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// per-reduction sizes, init and finalization

function accNeed(red: i32, d: i32, e: i32, K: i32, elt: i32): i32 {
  switch (red) {
    case I.RED_SUM: return 8 * d;
    case I.RED_LSE: return 16 * d;
    case I.RED_LSE_W:
    case I.RED_SSMW: case I.RED_SSMW_LSE: return 16 + 24 * e;
    case I.RED_MIN: case I.RED_MAX: case I.RED_ARGMIN: case I.RED_ARGMAX:
    case I.RED_MINARGMIN: case I.RED_MAXARGMAX: return 32 * d;
    case I.RED_KMIN: case I.RED_ARGKMIN: case I.RED_KMINARGKMIN:
      return ((4 * d + 15) & ~15) + d * K * (elt + 4);
  }
  return -1;
}

function initState<T>(red: i32, st: usize, d: i32, e: i32, K: i32): void {
  switch (red) {
    case I.RED_SUM: {
      for (let k = 0; k < d; k++) store<f64>(st + (<usize>k << 3), 0.0);
      return;
    }
    case I.RED_LSE: {
      for (let k = 0; k < d; k++) { store<f64>(st + (<usize>k << 4), -Infinity); store<f64>(st + (<usize>k << 4), 0.0, 8); }
      return;
    }
    case I.RED_LSE_W: case I.RED_SSMW: case I.RED_SSMW_LSE: {
      store<f64>(st, -Infinity); store<f64>(st, 0.0, 8);
      const pS = st + 16 + (<usize>e << 4);
      for (let k = 0; k < e; k++) store<f64>(pS + (<usize>k << 3), 0.0);
      return;
    }
    case I.RED_MIN: case I.RED_ARGMIN: case I.RED_MINARGMIN:
    case I.RED_MAX: case I.RED_ARGMAX: case I.RED_MAXARGMAX: {
      const isMax = red == I.RED_MAX || red == I.RED_ARGMAX || red == I.RED_MAXARGMAX;
      const v = vsplat<T>(isMax ? -Infinity : Infinity);
      for (let k = 0; k < d; k++) { v128.store(st + (<usize>k << 5), v); v128.store(st + (<usize>k << 5), isplat<T>(-1), 16); }
      return;
    }
    default: {
      for (let k = 0; k < d; k++) store<i32>(st + (<usize>k << 2), 0);
      return;
    }
  }
}

function finalize<T>(red: i32, st: usize, d: i32, e: i32, K: i32, outV: usize, outI: usize, outDim: i32, i: i32): void {
  const ELT = <usize>sizeof<T>();
  const ov = outV + <usize>i * <usize>outDim * ELT;
  const oi = outI + (<usize>i * <usize>outDim << 2);
  switch (red) {
    case I.RED_SUM: {
      for (let k = 0; k < d; k++) store<T>(ov + <usize>k * ELT, <T>load<f64>(st + (<usize>k << 3)));
      return;
    }
    case I.RED_LSE: {
      for (let k = 0; k < d; k++) {
        const m = load<f64>(st + (<usize>k << 4)), s = load<f64>(st + (<usize>k << 4), 8);
        store<T>(ov + <usize>k * ELT, <T>(m == -Infinity ? -Infinity : m + Math.log(s)));
      }
      return;
    }
    case I.RED_LSE_W: case I.RED_SSMW: case I.RED_SSMW_LSE: {
      const m = load<f64>(st), s0 = load<f64>(st, 8);
      const pS = st + 16 + (<usize>e << 4);
      for (let k = 0; k < e; k++) {
        const s = load<f64>(pS + (<usize>k << 3));
        let r: f64;
        if (m != m) r = NaN;
        else if (red == I.RED_LSE_W) r = m == -Infinity ? -Infinity : m + Math.log(s);
        else r = s / s0;
        store<T>(ov + <usize>k * ELT, <T>r);
      }
      // RED_SSMW_LSE: the row's running max and sum after its e values (-inf and 0 for an all -inf
      // row, NaN for a NaN or +inf term): the gradient's softmax weights are exp(F - max) / sum.
      // Kept apart rather than as max + log(sum): at max = -1e30 (a masked row) the sum would vanish.
      if (red == I.RED_SSMW_LSE) {
        store<T>(ov + <usize>e * ELT, <T>m);
        store<T>(ov + <usize>(e + 1) * ELT, <T>(m != m ? NaN : s0));
      }
      return;
    }
    case I.RED_MIN: case I.RED_ARGMIN: case I.RED_MINARGMIN:
    case I.RED_MAX: case I.RED_ARGMAX: case I.RED_MAXARGMAX: {
      const isMax = red == I.RED_MAX || red == I.RED_ARGMAX || red == I.RED_MAXARGMAX;
      const L = lanes<T>();
      for (let k = 0; k < d; k++) {
        const ps = st + (<usize>k << 5);
        let bv: T = <T>NaN, bi = -1;
        for (let l = 0; l < L; l++) {
          const v = load<T>(ps + <usize>l * ELT);
          const j = load<i32>(ps + 16 + <usize>l * ELT); // low word of the index lane
          if (j < 0) continue;
          if (bi < 0 || (isMax ? v > bv : v < bv) || (v == bv && j < bi)) { bv = v; bi = j; }
        }
        if (red != I.RED_ARGMIN && red != I.RED_ARGMAX) store<T>(ov + <usize>k * ELT, bv);
        if (red != I.RED_MIN && red != I.RED_MAX) store<i32>(oi + (<usize>k << 2), bi);
      }
      return;
    }
    default: {
      const valBase = st + ((<usize>d * 4 + 15) & ~15);
      const idxBase = valBase + <usize>d * <usize>K * ELT;
      for (let k = 0; k < d; k++) {
        const cnt = load<i32>(st + (<usize>k << 2));
        const pv = valBase + <usize>k * <usize>K * ELT;
        const pi = idxBase + (<usize>k * <usize>K << 2);
        for (let t = 0; t < K; t++) {
          const q = <usize>(t * d + k);
          const ok = t < cnt;
          if (red != I.RED_ARGKMIN) store<T>(ov + q * ELT, ok ? load<T>(pv + <usize>t * ELT) : <T>NaN);
          if (red != I.RED_KMIN) store<i32>(oi + (q << 2), ok ? load<i32>(pi + (<usize>t << 2)) : -1);
        }
      }
      return;
    }
  }
}

function fold<T>(
  red: i32, st: usize, rF: i32, rG: i32, d: i32, e: i32, K: i32, i: i32, b: i32, x0: usize, j0: i32, n: i32, h: i32,
): void {
  const fb = rBlk(rF);
  const pF = rPtr(rF, i, b) + (fb ? x0 : 0), sF = rStride(rF);
  switch (red) {
    case I.RED_SUM:
      if (sizeof<T>() == 4 && gAcc64) {
        if (fb) foldSum64<BLK>(st, pF, sF, d, n, h); else foldSum64<UNI>(st, pF, sF, d, n, h);
      } else if (fb) foldSum<T, BLK>(st, pF, sF, d, n, h); else foldSum<T, UNI>(st, pF, sF, d, n, h);
      return;
    case I.RED_LSE:
      if (fb) foldLse<T, BLK>(st, pF, sF, d, n, h); else foldLse<T, UNI>(st, pF, sF, d, n, h);
      return;
    case I.RED_LSE_W: case I.RED_SSMW: case I.RED_SSMW_LSE: {
      const gb = rBlk(rG);
      const pG = rPtr(rG, i, b) + (gb ? x0 : 0), sG = rStride(rG);
      if (fb) {
        if (gb) foldLseW<T, BLK, BLK>(st, pF, pG, sG, e, n, h); else foldLseW<T, BLK, UNI>(st, pF, pG, sG, e, n, h);
      } else {
        if (gb) foldLseW<T, UNI, BLK>(st, pF, pG, sG, e, n, h); else foldLseW<T, UNI, UNI>(st, pF, pG, sG, e, n, h);
      }
      return;
    }
    case I.RED_MIN: case I.RED_ARGMIN: case I.RED_MINARGMIN:
      if (fb) foldArg<T, BLK>(st, pF, sF, d, n, j0, false, h); else foldArg<T, UNI>(st, pF, sF, d, n, j0, false, h);
      return;
    case I.RED_MAX: case I.RED_ARGMAX: case I.RED_MAXARGMAX:
      if (fb) foldArg<T, BLK>(st, pF, sF, d, n, j0, true, h); else foldArg<T, UNI>(st, pF, sF, d, n, j0, true, h);
      return;
    default:
      if (fb) foldKmin<T, BLK>(st, pF, sF, d, K, n, j0, h); else foldKmin<T, UNI>(st, pF, sF, d, K, n, j0, h);
      return;
  }
}

// ------------------------------------------------------------------------------------------------
// validation

function resolveRegs(regs: usize, nregs: i32, B: i32, elt: i32): bool {
  for (let r = 0; r < nregs; r++) {
    const src = regs + (<usize>r * I.REG_WORDS << 2);
    const kind = load<i32>(src, I.R_KIND << 2), dim = load<i32>(src, I.R_DIM << 2);
    const base = load<i32>(src, I.R_BASE << 2), extra = load<i32>(src, I.R_EXTRA << 2);
    const e = rEnt(r);
    if (dim < 1) return false;
    let fixed = base, imul = 0, bmul = 0, stride = elt, blk = 0, root = r;
    if (kind == I.REG_UNIFORM) {
      // defaults
    } else if (kind == I.REG_OUTER_VAR) {
      imul = dim * elt;
    } else if (kind == I.REG_INNER_VAR) {
      bmul = dim * B * elt; stride = B * elt; blk = 1;
    } else if (kind == I.REG_BLOCK) {
      stride = B * elt; blk = 1;
    } else if (kind == I.REG_VIEW) {
      if (base < 0 || base >= r || extra < 0 || extra + dim > rDim(base)) return false;
      const pe = rEnt(base);
      stride = load<i32>(pe, RT_STRIDE);
      fixed = load<i32>(pe, RT_FIXED) + extra * stride;
      imul = load<i32>(pe, RT_IMUL); bmul = load<i32>(pe, RT_BMUL); blk = load<i32>(pe, RT_BLK);
      root = load<i32>(pe, RT_ROOT);
    } else return false;
    store<i32>(e, fixed, RT_FIXED); store<i32>(e, imul, RT_IMUL); store<i32>(e, bmul, RT_BMUL);
    store<i32>(e, stride, RT_STRIDE); store<i32>(e, dim, RT_DIM); store<i32>(e, blk, RT_BLK);
    store<i32>(e, root, RT_ROOT);
  }
  return true;
}

// @ts-ignore: decorator
@inline function okReg(r: i32, nregs: i32): bool { return r >= 0 && r < nregs; }
// @ts-ignore: decorator
@inline function okDim(r: i32, dd: i32): bool { const x = rDim(r); return x == dd || x == 1; }

function checkCode(code: usize, len: i32, nregs: i32, inner: bool): bool {
  if (len < 0) return false;
  for (let q = 0; q < len; q++) {
    const ins = code + (<usize>q << 5);
    const op = load<i32>(ins, I.I_OP << 2), dst = load<i32>(ins, I.I_DST << 2);
    const ra = load<i32>(ins, I.I_A << 2), rb = load<i32>(ins, I.I_B << 2), rc = load<i32>(ins, I.I_C << 2);
    const cls = opClass(op);
    if (cls == 0 || !okReg(dst, nregs) || !okReg(ra, nregs)) return false;
    const nops = cls == CLS_UNARY ? 1 : cls == CLS_BINARY ? 2 : cls == CLS_TERNARY ? 3
      : op == I.OP_ROWSUM ? 1 : op == I.OP_WSQDIST ? 3 : 2;
    if (nops >= 2 && !okReg(rb, nregs)) return false;
    if (nops >= 3 && !okReg(rc, nregs)) return false;
    // block/uniform rules
    if (inner) {
      if (!rBlk(dst)) return false;
    } else {
      if (rBlk(dst) || rBlk(ra) || (nops >= 2 && rBlk(rb)) || (nops >= 3 && rBlk(rc))) return false;
    }
    const dd = rDim(dst);
    if (cls == CLS_ROWRED) {
      if (dd != 1) return false;
      if (op != I.OP_ROWSUM) {
        const da = rDim(ra), db = rDim(rb);
        if (da != db && da != 1 && db != 1) return false;
        if (op == I.OP_WSQDIST && !okDim(rc, max(da, db))) return false;
      }
    } else if (op == I.OP_ONEHOT) {
      if (rDim(ra) != 1) return false;
    } else {
      if (!okDim(ra, dd)) return false;
      if (nops >= 2 && !okDim(rb, dd)) return false;
      if (nops >= 3 && !okDim(rc, dd)) return false;
    }
  }
  return true;
}

function outDimOf(red: i32, d: i32, e: i32, K: i32): i32 {
  if (red == I.RED_LSE_W || red == I.RED_SSMW) return e;
  if (red == I.RED_SSMW_LSE) return e + 2;
  if (red >= I.RED_KMIN && red <= I.RED_KMINARGKMIN) return K * d;
  return d;
}

// ------------------------------------------------------------------------------------------------
// run

// The current run (set by runT, read by runRows / segment).
let gRed = 0, gF = 0, gG = 0, gD = 0, gE = 0, gK = 0, gP = 1, gSt = 0, gB = 0, gM = 0;
let gAcc: usize = 0, gOc: usize = 0, gOl = 0, gIc: usize = 0, gIlRun = 0, gFa = -1, gFb = -1;
let gOutV: usize = 0, gOutI: usize = 0, gOutDim = 0;
let gAcc64 = false; // RED_SUM_ACC64: run as RED_SUM with foldSum64
let gParts = 0; // RED_SUM of a concatenated F: its parts (planConcat), else 0
// A K-nearest run whose inner code is one centred expanded SQDIST writing F (d = 1): its rows are
// folded straight from the blocked tile, and only those with an entry below their K-th value
// (segmentK), instead of copying every row into F and scanning it.
let gKTile = false;

// segment for gKTile: a row holding K values has its K-th as threshold, and the tile flags the
// vector pairs with an entry below it; only their entries are tried (the fold inserts only entries
// below the K-th value, so the others would leave the state as it is, and the threshold only falls
// as entries go in). A row with fewer than K takes any non-NaN entry: folded whole. Padded rows of the
// last quad get -inf (never flagged).
// the lanes of v below th, as bits (NaN: never below)
// @ts-ignore: decorator
@inline function belowBits<T>(v: v128, th: v128): i32 {
  if (sizeof<T>() == 4) return i32x4.bitmask(f32x4.lt(v, th));
  return i64x2.bitmask(f64x2.lt(v, th));
}

function segmentK<T>(np: i32, b: i32, x0: usize, nv: i32, j0: i32, n: i32, h: i32): void {
  const ELT = <usize>sizeof<T>();
  const L = lanes<T>();
  const thr = blockedThresholds(), fl = blockedFlags();
  const valOff: usize = (4 + 15) & ~15; // the values of a d = 1 state
  const kth = valOff + <usize>(gK - 1) * ELT;
  for (let ii = 0; ii < np; ii++) {
    const st = gAcc + <usize>(ii * gSt);
    store<T>(thr + <usize>ii * ELT, load<i32>(st) >= gK ? load<T>(st + kth) : <T>Infinity);
  }
  for (let ii = np; ii < ((np + 3) & ~3); ii++) store<T>(thr + <usize>ii * ELT, <T>-Infinity);
  const tile = blockedTileK<T>(b, x0, nv);
  const rowBytes = blockedRowBytes();
  for (let ii = 0; ii < np; ii++) {
    const st = gAcc + <usize>(ii * gSt), row = tile + <usize>ii * rowBytes;
    if (load<i32>(st) < gK) {
      foldKmin<T, BLK>(st, row, 0, 1, gK, n, j0, h);
      continue;
    }
    const pv = st + valOff, pi = pv + <usize>gK * ELT;
    // 16 flag bytes at a time (bytes past the segment's pairs are stale: masked off)
    const fr = fl + <usize>ii * FLAG_ROW, npair = (nv + 1) >> 1;
    for (let c = 0; c < npair; c += 16) {
      let m = <u32>i8x16.bitmask(v128.load(fr + <usize>c));
      if (npair - c < 16) m &= (<u32>1 << <u32>(npair - c)) - 1;
      while (m != 0) {
        const p = <i32>ctz(m) + c;
        m &= m - 1;
        // the pair's lanes below the K-th value now (kTry tests each again, as the K-th value falls)
        const base = 2 * p * L, lo = max(h, base), hi = min(n, base + 2 * L);
        if (lo >= hi) continue;
        const th = v128.splat<T>(load<T>(pv + <usize>(gK - 1) * ELT));
        const pr = row + <usize>base * ELT;
        let bits = belowBits<T>(v128.load(pr), th) | (belowBits<T>(v128.load(pr, 16), th) << L);
        bits &= ((1 << (hi - base)) - 1) & ~((1 << (lo - base)) - 1);
        while (bits != 0) {
          const l = ctz(bits);
          bits &= bits - 1;
          kTry<T>(pv, pi, gK, load<T>(pr + <usize>l * ELT), j0 + base + l);
        }
      }
    }
  }
}

let gColParts = 0; // RED_SUM_COLS: the parts of G in COL_PARTS, else 0
let gCols: usize = 0, gColDim = 0; // RED_SUM_COLS: the column sums (H_COLS) and dim(G)

// col[k] += a[k] over nv vectors, a a block register (rows k at pa + k*sa, sa = 0 broadcasts)
function colAdd<T>(pc: usize, sc: usize, pa: usize, sa: usize, dp: i32, nv: i32): void {
  for (let k = 0; k < dp; k++) {
    const c = pc + <usize>k * sc, p = pa + <usize>k * sa;
    for (let t = 0; t < nv; t++) {
      const o = <usize>t << 4;
      v128.store(c + o, v128.add<T>(v128.load(c + o), v128.load(p + o)));
    }
  }
}

// col[k] += a[k] * b[k] over nv vectors, b a block register, a uniform (U: splatted once per row,
// as the stores to col would keep the compiler from hoisting its load) or a block register
function colMul<T, U>(pc: usize, sc: usize, pa: usize, sa: usize, pb: usize, sb: usize, dp: i32, nv: i32): void {
  for (let k = 0; k < dp; k++) {
    const c = pc + <usize>k * sc, p = pa + <usize>k * sa, q = pb + <usize>k * sb;
    if (sizeof<U>() == 1) {
      const u = v128.splat<T>(load<T>(p));
      for (let t = 0; t < nv; t++) {
        const o = <usize>t << 4;
        v128.store(c + o, v128.add<T>(v128.load(c + o), v128.mul<T>(u, v128.load(q + o))));
      }
    } else {
      for (let t = 0; t < nv; t++) {
        const o = <usize>t << 4;
        v128.store(c + o, v128.add<T>(v128.load(c + o), v128.mul<T>(v128.load(p + o), v128.load(q + o))));
      }
    }
  }
}

// Deferred column parts (RED_SUM_COLS): a part MUL(u, w) of a uniform u of the part's rows (an outer
// variable: q_i, C_i) and a 1-row block w (the softmax weight times u_ij, ...) is not added row by
// row: each row's w is kept (WBUF) and, after the group's rows, every column vector is loaded once,
// gets sum_ii w_ii * u_ii[k] added row after row in the same order as the row-by-row adds (so the
// sums are the same, bit for bit, however the rows are grouped), and is stored once. Row by row,
// the column slice of a block (dim(G) x B values) went through L2 twice per pair.
// @ts-ignore: decorator
@inline const WROWS = 64; // rows of a group a deferred part keeps
// @ts-ignore: decorator
@inline const WBUF_BYTES = 131072;
const WBUF: usize = memory.data(WBUF_BYTES, 16);
// per row of the group: its uniform operand's address for the part being added
const UPTR: usize = memory.data(WROWS * 4, 16);
// per column part: 1 when deferred (its entry in COL_PARTS then holds [first, rows, u, w])
const COL_DEFER: usize = memory.data(MAX_PARTS, 16);
let gColDefer = 0; // deferred parts (they take WBUF slots 0, 1, ... in part order)

// Plans the deferred parts (see WBUF) for blocks of B values of ELT bytes.
function planColDefer(B: i32, elt: i32): void {
  gColDefer = 0;
  let n = 0;
  for (let p = 0; p < gColParts; p++) {
    const e = COL_PARTS + (<usize>p << 4);
    const fa = load<i32>(e, 8), fb = load<i32>(e, 12);
    let defer = false;
    if (fb >= 0 && rBlk(fa) != rBlk(fb)) {
      const u = rBlk(fa) ? fb : fa, w = rBlk(fa) ? fa : fb;
      if (rDim(w) == 1 && rDim(u) == load<i32>(e, 4)) {
        store<i32>(e, u, 8); store<i32>(e, w, 12);
        defer = true;
      }
    }
    if (defer && (n + 1) * WROWS * B * elt > WBUF_BYTES) defer = false;
    store<u8>(COL_DEFER + <usize>p, defer ? 1 : 0);
    if (defer) n++;
  }
  gColDefer = n;
}

// Keeps row ii's w of each deferred part (vectors [x0 / 16, x0 / 16 + nv) of block b).
function keepColRows<T>(ii: i32, i: i32, b: i32, x0: usize, nv: i32): void {
  const rowBytes = <usize>gB * sizeof<T>();
  let slot = 0;
  for (let p = 0; p < gColParts; p++) {
    if (load<u8>(COL_DEFER + <usize>p) == 0) continue;
    const w = load<i32>(COL_PARTS + (<usize>p << 4), 12);
    memory.copy(WBUF + (<usize>(slot * WROWS + ii)) * rowBytes, bPtr(w, i, b, x0), <usize>nv << 4);
    slot++;
  }
}

// Adds the kept rows [0, np) of each deferred part into the column sums of block b.
function addColRows<T>(i0: i32, np: i32, b: i32, x0: usize, nv: i32): void {
  const rowBytes = <usize>gB * sizeof<T>();
  const sc = rowBytes;
  const base = gCols + <usize>b * <usize>gColDim * sc + x0;
  let slot = 0;
  for (let p = 0; p < gColParts; p++) {
    if (load<u8>(COL_DEFER + <usize>p) == 0) continue;
    const e = COL_PARTS + (<usize>p << 4);
    const first = load<i32>(e), dp = load<i32>(e, 4), u = load<i32>(e, 8);
    const su = rStep(u);
    for (let ii = 0; ii < np; ii++) store<u32>(UPTR + (<usize>ii << 2), <u32>bPtr(u, i0 + ii, b, x0));
    const wb = WBUF + <usize>(slot * WROWS) * rowBytes;
    for (let k = 0; k < dp; k++) {
      const pc = base + <usize>(first + k) * sc, uk = <usize>k * su;
      let t = 0;
      for (; t + 4 <= nv; t += 4) {
        const o = <usize>t << 4;
        let c0 = v128.load(pc + o), c1 = v128.load(pc + o, 16), c2 = v128.load(pc + o, 32), c3 = v128.load(pc + o, 48);
        for (let ii = 0; ii < np; ii++) {
          const x = v128.splat<T>(load<T>(<usize>load<u32>(UPTR + (<usize>ii << 2)) + uk));
          const pw = wb + <usize>ii * rowBytes + o;
          c0 = v128.add<T>(c0, v128.mul<T>(v128.load(pw), x));
          c1 = v128.add<T>(c1, v128.mul<T>(v128.load(pw, 16), x));
          c2 = v128.add<T>(c2, v128.mul<T>(v128.load(pw, 32), x));
          c3 = v128.add<T>(c3, v128.mul<T>(v128.load(pw, 48), x));
        }
        v128.store(pc + o, c0); v128.store(pc + o, c1, 16); v128.store(pc + o, c2, 32); v128.store(pc + o, c3, 48);
      }
      for (; t < nv; t++) {
        const o = <usize>t << 4;
        let c0 = v128.load(pc + o);
        for (let ii = 0; ii < np; ii++) {
          const x = v128.splat<T>(load<T>(<usize>load<u32>(UPTR + (<usize>ii << 2)) + uk));
          c0 = v128.add<T>(c0, v128.mul<T>(v128.load(wb + <usize>ii * rowBytes + o), x));
        }
        v128.store(pc + o, c0);
      }
    }
    slot++;
  }
}

// RED_SUM_COLS: adds G of outer index i on vectors [x0 / 16, x0 / 16 + nv) of block b into the
// column sums, part by part (COL_PARTS), a product part without it being stored.
function foldCols<T>(i: i32, b: i32, x0: usize, nv: i32): void {
  const sc = <usize>gB * sizeof<T>();
  const base = gCols + <usize>b * <usize>gColDim * sc + x0;
  for (let p = 0; p < gColParts; p++) {
    if (load<u8>(COL_DEFER + <usize>p) != 0) continue;
    const e = COL_PARTS + (<usize>p << 4);
    const pc = base + <usize>load<i32>(e) * sc, dp = load<i32>(e, 4);
    const fa = load<i32>(e, 8), fb = load<i32>(e, 12);
    const pa = bPtr(fa, i, b, x0);
    if (fb < 0) { colAdd<T>(pc, sc, pa, rStep(fa), dp, nv); continue; }
    const pb = bPtr(fb, i, b, x0);
    if (!rBlk(fa)) colMul<T, UNI>(pc, sc, pa, rStep(fa), pb, rStep(fb), dp, nv);
    else if (!rBlk(fb)) colMul<T, UNI>(pc, sc, pb, rStep(fb), pa, rStep(fa), dp, nv);
    else colMul<T, BLK>(pc, sc, pa, rStep(fa), pb, rStep(fb), dp, nv);
  }
}

// Whether a column part reads memory of root(r) (RED_SUM_COLS: F's last MUL may then not be skipped).
function colPartsRead(r: i32): bool {
  const root = rRoot(r);
  for (let p = 0; p < gColParts; p++) {
    const e = COL_PARTS + (<usize>p << 4);
    const fa = load<i32>(e, 8), fb = load<i32>(e, 12);
    if (rRoot(fa) == root || (fb >= 0 && rRoot(fb) == root)) return true;
  }
  return false;
}

// Entries [t0, t1) of block b for the np outer indices from i0.
function segment<T>(i0: i32, np: i32, b: i32, t0: i32, t1: i32): void {
  if (t1 <= t0) return;
  const L = lanes<T>();
  const v0 = t0 / L;
  const x0 = <usize>v0 << 4;
  const nv = (t1 + L - 1) / L - v0;
  const h = t0 - v0 * L, n = t1 - v0 * L, j0 = b * gB + v0 * L;
  if (hasBlocked()) blockedGroup(i0, np);
  if (gKTile) {
    segmentK<T>(np, b, x0, nv, j0, n, h);
    return;
  }
  for (let ii = 0; ii < np; ii++) {
    const i = i0 + ii;
    if (gIlRun > 0) execInner<T>(gIc, gIlRun, i, b, x0, nv);
    const st = gAcc + <usize>(ii * gSt);
    if (gParts > 0) {
      for (let p = 0; p < gParts; p++) {
        const e = PARTS + (<usize>p << 4);
        const sp = st + (<usize>load<i32>(e) << 3), dp = load<i32>(e, 4);
        const fa = load<i32>(e, 8), fb = load<i32>(e, 12);
        const pa = bPtr(fa, i, b, x0);
        if (fb < 0) { foldSum<T, BLK>(sp, pa, rStride(fa), dp, n, h); continue; }
        const sa = rStep(fa), pb = bPtr(fb, i, b, x0), sb = rStep(fb);
        if (!rBlk(fa)) foldSumMul<T, UNI, BLK>(sp, pa, sa, pb, sb, dp, n, h);
        else if (!rBlk(fb)) foldSumMul<T, BLK, UNI>(sp, pa, sa, pb, sb, dp, n, h);
        else foldSumMul<T, BLK, BLK>(sp, pa, sa, pb, sb, dp, n, h);
      }
    } else if (gFa >= 0) {
      const fa = gFa, fb = gFb;
      const pa = bPtr(fa, i, b, x0), sa = rStep(fa), pb = bPtr(fb, i, b, x0), sb = rStep(fb);
      if (!rBlk(fa)) foldSumMul<T, UNI, BLK>(st, pa, sa, pb, sb, gD, n, h);
      else if (!rBlk(fb)) foldSumMul<T, BLK, UNI>(st, pa, sa, pb, sb, gD, n, h);
      else foldSumMul<T, BLK, BLK>(st, pa, sa, pb, sb, gD, n, h);
    } else {
      fold<T>(gRed, st, gF, gG, gD, gE, gK, i, b, x0, j0, n, h);
    }
    if (gColParts > 0) {
      if (gColParts > gColDefer) foldCols<T>(i, b, x0, nv);
      if (gColDefer > 0) keepColRows<T>(ii, i, b, x0, nv);
    }
  }
  if (gColDefer > 0) addColRows<T>(i0, np, b, x0, nv);
}

// Outer indices [iA, iB), visiting all inner indices (S == 0) or the inner ranges r in [r0, r1)
// given as [S[2r], S[2r+1]) pairs, P outer indices at a time.
function runRows<T>(iA: i32, iB: i32, S: usize, r0: i32, r1: i32): void {
  for (let i0 = iA; i0 < iB; i0 += gP) {
    const np = min(gP, iB - i0);
    for (let ii = 0; ii < np; ii++) initState<T>(gRed, gAcc + <usize>(ii * gSt), gD, gE, gK);
    if (gOl > 0) execOuter<T>(gOc, gOl, i0);
    if (S == 0) {
      const nb = (gM + gB - 1) / gB;
      for (let b = 0; b < nb; b++) segment<T>(i0, np, b, 0, min(gB, gM - b * gB));
    } else {
      for (let r = r0; r < r1; r++) {
        const s = load<i32>(S + (<usize>r << 3)), e = load<i32>(S + (<usize>r << 3), 4);
        for (let b = s / gB; b * gB < e; b++) segment<T>(i0, np, b, max(s - b * gB, 0), min(e - b * gB, gB));
      }
    }
    for (let ii = 0; ii < np; ii++) {
      finalize<T>(gRed, gAcc + <usize>(ii * gSt), gD, gE, gK, gOutV, gOutI, gOutDim, i0 + ii);
    }
  }
}

// Checks the clusters [cA, cB) of a block-sparse program.
function checkClusters(R: usize, SL: usize, S: usize, cA: i32, cB: i32, N: i32, M: i32): bool {
  for (let c = cA; c < cB; c++) {
    const a = load<i32>(R + (<usize>c << 3)), z = load<i32>(R + (<usize>c << 3), 4);
    if (a < 0 || a > z || z > N) return false;
    const r0 = c == 0 ? 0 : load<i32>(SL + (<usize>(c - 1) << 2)), r1 = load<i32>(SL + (<usize>c << 2));
    if (r0 < 0 || r0 > r1) return false;
    for (let r = r0; r < r1; r++) {
      const s = load<i32>(S + (<usize>r << 3)), e = load<i32>(S + (<usize>r << 3), 4);
      if (s < 0 || s > e || e > M) return false;
    }
  }
  return true;
}

function runT<T>(prog: usize, iStart: i32, iEnd: i32): i32 {
  const elt = <i32>sizeof<T>();
  const M = load<i32>(prog, I.H_N_INNER << 2), B = load<i32>(prog, I.H_BLOCK << 2);
  const N = load<i32>(prog, I.H_N_OUTER << 2);
  const nregs = load<i32>(prog, I.H_N_REGS << 2), regs = <usize>load<i32>(prog, I.H_REGS << 2);
  const oc = <usize>load<i32>(prog, I.H_OUTER_CODE << 2), ol = load<i32>(prog, I.H_OUTER_LEN << 2);
  const ic = <usize>load<i32>(prog, I.H_INNER_CODE << 2), il = load<i32>(prog, I.H_INNER_LEN << 2);
  let red = load<i32>(prog, I.H_RED << 2);
  const rF = load<i32>(prog, I.H_RED_F << 2), rG = load<i32>(prog, I.H_RED_G << 2);
  const K = load<i32>(prog, I.H_RED_K << 2);
  const outV = <usize>load<i32>(prog, I.H_OUT_VAL << 2), outI = <usize>load<i32>(prog, I.H_OUT_IDX << 2);
  const outDim = load<i32>(prog, I.H_OUT_DIM << 2);
  const acc = <usize>load<i32>(prog, I.H_ACC << 2), accBytes = load<i32>(prog, I.H_ACC_BYTES << 2);
  const R = <usize>load<i32>(prog, I.H_RANGES << 2);
  const SL = <usize>load<i32>(prog, I.H_SLICES << 2), S = <usize>load<i32>(prog, I.H_INNER_RANGES << 2);

  if (M < 1 || B < 4 || (B & 3) != 0 || N < 0) return I.ERR_BAD_PROGRAM;
  if (R == 0) {
    if (iStart < 0 || iEnd > N || iStart > iEnd) return I.ERR_BAD_PROGRAM;
  } else {
    const nc = load<i32>(prog, I.H_N_CLUSTERS << 2);
    if (iStart < 0 || iEnd > nc || iStart > iEnd || SL == 0 || S == 0) return I.ERR_BAD_PROGRAM;
    if (!checkClusters(R, SL, S, iStart, iEnd, N, M)) return I.ERR_BAD_PROGRAM;
  }
  if (nregs < 1 || nregs > MAX_REGS) return I.ERR_BAD_PROGRAM;
  if (red < I.RED_FIRST || red > I.RED_LAST) return I.ERR_BAD_PROGRAM;
  // RED_SUM_ACC64 is RED_SUM everywhere but in fold (f64 sums accumulate in f64 anyway).
  const acc64 = red == I.RED_SUM_ACC64;
  if (acc64) red = I.RED_SUM;
  // RED_SUM_COLS is RED_SUM plus the column sums of G (foldCols).
  const cols = red == I.RED_SUM_COLS;
  const colsAt = <usize>load<i32>(prog, I.H_COLS << 2);
  if (cols) red = I.RED_SUM;
  if (!resolveRegs(regs, nregs, B, elt)) return I.ERR_BAD_PROGRAM;
  if (!checkCode(oc, ol, nregs, false) || !checkCode(ic, il, nregs, true)) return I.ERR_BAD_PROGRAM;
  if (!okReg(rF, nregs)) return I.ERR_BAD_PROGRAM;
  if (cols && (R != 0 || colsAt == 0 || !okReg(rG, nregs) || !rBlk(rG))) return I.ERR_BAD_PROGRAM;
  const d = rDim(rF);
  let e = 0;
  if (red == I.RED_LSE_W || red == I.RED_SSMW || red == I.RED_SSMW_LSE) {
    if (!okReg(rG, nregs) || d != 1) return I.ERR_BAD_PROGRAM;
    e = rDim(rG);
  }
  const isK = red >= I.RED_KMIN && red <= I.RED_KMINARGKMIN;
  if (isK && K < 1) return I.ERR_BAD_PROGRAM;
  if (outDim != outDimOf(red, d, e, K)) return I.ERR_BAD_PROGRAM;
  const needV = red != I.RED_ARGMIN && red != I.RED_ARGMAX && red != I.RED_ARGKMIN;
  const needI = red >= I.RED_ARGMIN && red <= I.RED_KMINARGKMIN && red != I.RED_KMIN;
  if ((needV && outV == 0) || (needI && outI == 0)) return I.ERR_BAD_PROGRAM;
  const need = accNeed(red, d, e, K, elt);
  const stBytes = (need + 15) & ~15;
  if (accBytes < stBytes) return I.ERR_ACC;
  let P = ol > 0 ? 1 : accBytes / stBytes;
  if (P > OUTER_TILE) P = OUTER_TILE;
  if (P < 1) P = 1;

  planFusion(ic, il, rF, red == I.RED_LSE_W || red == I.RED_SSMW || red == I.RED_SSMW_LSE || cols ? rG : -1);
  // Blocked tiles (blocked.ts) run more outer indices per pass, with their states in its own area.
  let accRun = acc;
  if (planBlocked(RT, ic, il, B * elt) > 0) {
    if (ol == 0) {
      const bp = blockedStates(stBytes, elt);
      if (bp > P) { P = bp; accRun = blockedAcc(); }
    }
    blockedRows<T>(P, M, B, load<i32>(prog, I.H_INNER_BEFORE << 2), load<i32>(prog, I.H_INNER_TOTAL << 2));
  }
  // A last inner instruction F = MUL(a, b) reduced by RED_SUM is folded directly (sum of products);
  // a concatenated F part by part (planConcat).
  let ilRun = il, fa = -1, fb = -1;
  gParts = red == I.RED_SUM && il > 0 && !acc64 ? planConcat(ic, il, rF, PARTS, cols ? rG : -1) : 0;
  gColParts = 0;
  if (cols) {
    gColParts = il > 0 ? planConcat(ic, il, rG, COL_PARTS, rF) : 0;
    if (gColParts == 0) {
      store<i32>(COL_PARTS, 0); store<i32>(COL_PARTS, rDim(rG), 4); store<i32>(COL_PARTS, rG, 8); store<i32>(COL_PARTS, -1, 12);
      gColParts = 1;
    }
  }
  gCols = colsAt; gColDim = cols ? rDim(rG) : 0;
  gColDefer = 0;
  if (cols && P <= WROWS) planColDefer(B, elt);
  if (red == I.RED_SUM && il > 0 && !acc64 && gParts == 0 && !(cols && colPartsRead(rF))) {
    const last = ic + (<usize>(il - 1) << 5);
    const a = load<i32>(last, I.I_A << 2), bb = load<i32>(last, I.I_B << 2);
    if (load<i32>(last, I.I_OP << 2) == I.OP_MUL && load<i32>(last, I.I_DST << 2) == rF && (rBlk(a) || rBlk(bb))) {
      fa = a; fb = bb; ilRun = il - 1;
    }
  }

  gKTile = isK && d == 1 && ilRun == 1 && gParts == 0 && fa < 0 && hasBlocked() && blockedLoneCentred() &&
    blockedSlot(0) == 1 && load<i32>(ic, I.I_DST << 2) == rF && accRun == blockedAcc();
  if (hasBlocked()) blockedUsesTileK(gKTile);
  gRed = red; gF = rF; gG = rG; gD = d; gE = e; gK = K; gP = P; gSt = stBytes; gB = B; gM = M;
  gAcc = accRun; gOc = oc; gOl = ol; gIc = ic; gIlRun = ilRun; gFa = fa; gFb = fb;
  gOutV = outV; gOutI = outI; gOutDim = outDim; gAcc64 = acc64;
  if (R == 0) {
    runRows<T>(iStart, iEnd, 0, 0, 0);
  } else {
    for (let c = iStart; c < iEnd; c++) {
      const r0 = c == 0 ? 0 : load<i32>(SL + (<usize>(c - 1) << 2)), r1 = load<i32>(SL + (<usize>c << 2));
      runRows<T>(load<i32>(R + (<usize>c << 3)), load<i32>(R + (<usize>c << 3), 4), S, r0, r1);
    }
  }
  return I.OK;
}

// ------------------------------------------------------------------------------------------------
// exports

export function run(prog: usize, iStart: i32, iEnd: i32): i32 {
  const dt = load<i32>(prog, I.H_DTYPE << 2);
  if (dt == 0) return runT<f32>(prog, iStart, iEnd);
  if (dt == 1) return runT<f64>(prog, iStart, iEnd);
  return I.ERR_BAD_PROGRAM;
}

export function heapBase(): usize {
  return __heap_base;
}

// @ts-ignore: decorator
@inline function mathVec<T>(fn: i32, x: v128): v128 {
  if (fn == 0) return vexp<T>(x);
  if (fn == 1) return vlog<T>(x);
  if (fn == 2) return vsin<T>(x);
  if (fn == 5) return vatan<T>(x);
  if (fn == 6) return vasin<T>(x);
  if (fn == 7) return vacos<T>(x);
  return vcos<T>(x);
}

function mathTestT<T>(fn: i32, inPtr: usize, outPtr: usize, n: i32): void {
  const L = lanes<T>();
  const ELT = <usize>sizeof<T>();
  let t = 0;
  if (fn == 4) {
    // exp through the 4-vector lockstep routine (must agree bit for bit with fn 0)
    for (; t + 4 * L <= n; t += 4 * L) {
      const p = inPtr + <usize>t * ELT;
      vexp4<T>(v128.load(p), v128.load(p, 16), v128.load(p, 32), v128.load(p, 48), outPtr + <usize>t * ELT);
    }
    fn = 0;
  }
  for (; t + L <= n; t += L) {
    v128.store(outPtr + <usize>t * ELT, mathVec<T>(fn, v128.load(inPtr + <usize>t * ELT)));
  }
  if (t < n) {
    // tail through a zeroed 16-byte temporary
    const tmp = MATH_TMP;
    v128.store(tmp, v128.splat<i32>(0));
    for (let u = t; u < n; u++) store<T>(tmp + <usize>(u - t) * ELT, load<T>(inPtr + <usize>u * ELT));
    v128.store(tmp, mathVec<T>(fn, v128.load(tmp)));
    for (let u = t; u < n; u++) store<T>(outPtr + <usize>u * ELT, load<T>(tmp + <usize>(u - t) * ELT));
  }
}
const MATH_TMP: usize = memory.data(16, 16);

// Applies the SIMD math routine fn (0 exp, 1 log, 2 sin, 3 cos; 4 exp by the 4-vector lockstep
// routine; 5 atan, 6 asin, 7 acos) to n elements of dtype (0 f32, 1 f64).
export function mathTest(fn: i32, dtype: i32, inPtr: usize, outPtr: usize, n: i32): void {
  if (dtype == 0) mathTestT<f32>(fn, inPtr, outPtr, n);
  else mathTestT<f64>(fn, inPtr, outPtr, n);
}
