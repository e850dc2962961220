// SIMD elementwise math for the tile interpreter: exp, log, sin, cos, atan2, atan, asin, acos on f32x4
// and f64x2.
//
// Everything is standard 128-bit SIMD (Node 20 has no relaxed SIMD), generic over T = f32 | f64 with
// compile-time branches, @inline so that the interpreter's loops inline it. Constants come from the
// splatted tables of ./consts.ts (one load each; see there why).
//
// exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, n from the 1.5*2^p "shifter" trick (no
//   float->int conversion; t = x log2e + shifter holds n in its low mantissa bits), Cephes' minimax
//   polynomial (f32) or the degree-12 Taylor polynomial (f64) by Estrin's scheme (short dependency
//   chains: the loops are latency-bound otherwise), and the scaling by 2^n done as an integer add of
//   n << 23 (n << 52) to the bits of the polynomial. No clamping: lanes outside the normal range are
//   replaced at the end: x > ln(MAX) -> x + inf (= +inf, or NaN for NaN), x < ln(MIN_NORMAL) -> 0.
//   Results that would be subnormal are flushed to 0 on purpose: on x86 an operation producing or
//   consuming a subnormal takes a microcode assist (~4x slower for the whole vector) and Wasm cannot
//   set FTZ/DAZ, while a Gaussian kernel underflows for most far pairs.
// log: exponent/mantissa split on the bits (subnormal inputs are first scaled by 2^23 / 2^54),
//   mantissa in [sqrt(1/2), sqrt(2)), then Cephes' polynomial (f32) or fdlibm's s = f/(2+f) series
//   (f64); zero, negative, +inf and NaN inputs are patched with selects.
// sin/cos: quadrant q = round(x * 2/pi) and r = x - q pi/2 in f64 with pi/2 split in 33-bit pieces
//   (exact products; f32 lanes are reduced in f64 too); Cephes (f32) / fdlibm (f64) polynomials on
//   [-pi/4, pi/4]; the quadrant picks the sin or cos polynomial and the sign with bit masks.
//   Vectors with a lane |x| > 1e5 (or infinite) take a per-lane scalar path through Math.sin/cos.
import * as C from './consts';

// @ts-ignore: decorator
@inline function kf(off: usize): v128 { return v128.load(C.F32_TABLE + off); }
// @ts-ignore: decorator
@inline function kd(off: usize): v128 { return v128.load(C.F64_TABLE + off); }

// ------------------------------------------------------------------------------------------------
// exp

// @ts-ignore: decorator
@inline
export function vexp<T>(x: v128): v128 {
  if (sizeof<T>() == 4) {
    const S = kf(C.F_SHIFT);
    const t = f32x4.add(f32x4.mul(x, kf(C.F_LOG2E)), S);
    const n = f32x4.sub(t, S);
    let r = f32x4.sub(x, f32x4.mul(n, kf(C.F_LN2_HI)));
    r = f32x4.sub(r, f32x4.mul(n, kf(C.F_LN2_LO)));
    // exp(r) = (1 + r) + r^2 q(r), q of degree 5 (Cephes expf)
    const r2 = f32x4.mul(r, r);
    const qa = f32x4.add(f32x4.mul(kf(C.F_E4), r), kf(C.F_E5));
    const qb = f32x4.add(f32x4.mul(kf(C.F_E2), r), kf(C.F_E3));
    const qc = f32x4.add(f32x4.mul(kf(C.F_E0), r), kf(C.F_E1));
    const q = f32x4.add(qa, f32x4.mul(r2, f32x4.add(qb, f32x4.mul(r2, qc))));
    const p = f32x4.add(f32x4.add(r, kf(C.F_ONE)), f32x4.mul(q, r2));
    let y = i32x4.add(p, i32x4.shl(t, 23)); // p * 2^n
    y = v128.bitselect(y, f32x4.add(x, kf(C.F_INF)), f32x4.le(x, kf(C.F_EXP_MAX)));
    return v128.andnot(y, f32x4.lt(x, kf(C.F_EXP_MIN)));
  } else {
    const S = kd(C.D_SHIFT);
    const t = f64x2.add(f64x2.mul(x, kd(C.D_LOG2E)), S);
    const n = f64x2.sub(t, S);
    let r = f64x2.sub(x, f64x2.mul(n, kd(C.D_LN2_HI)));
    r = f64x2.sub(r, f64x2.mul(n, kd(C.D_LN2_LO)));
    // (1 + r) + r^2 q(r), q(r) = 1/2 + r/6 + ... + r^10/12! (Taylor)
    const r2 = f64x2.mul(r, r);
    const r4 = f64x2.mul(r2, r2);
    const c0b = f64x2.add(f64x2.mul(kd(C.D_E2), r), kd(C.D_HALF));
    const c1 = f64x2.add(f64x2.mul(kd(C.D_E4), r), kd(C.D_E3));
    const c2 = f64x2.add(f64x2.mul(kd(C.D_E6), r), kd(C.D_E5));
    const c3 = f64x2.add(f64x2.mul(kd(C.D_E8), r), kd(C.D_E7));
    const c4 = f64x2.add(f64x2.mul(kd(C.D_E10), r), kd(C.D_E9));
    const lo = f64x2.add(c0b, f64x2.mul(r2, c1));
    const mid = f64x2.add(c2, f64x2.mul(r2, c3));
    const hi = f64x2.add(c4, f64x2.mul(r2, kd(C.D_E11)));
    const q = f64x2.add(lo, f64x2.mul(r4, f64x2.add(mid, f64x2.mul(r4, hi))));
    const p = f64x2.add(f64x2.add(r, kd(C.D_ONE)), f64x2.mul(q, r2));
    let y = i64x2.add(p, i64x2.shl(t, 52));
    y = v128.bitselect(y, f64x2.add(x, kd(C.D_INF)), f64x2.le(x, kd(C.D_EXP_MAX)));
    return v128.andnot(y, f64x2.lt(x, kd(C.D_EXP_MIN)));
  }
}

// The splatted threshold below which vexp and vexp4 return exactly 0 (ln of the smallest normal).
// @ts-ignore: decorator
@inline
export function vexpUnderflow<T>(): v128 {
  return sizeof<T>() == 4 ? kf(C.F_EXP_MIN) : kd(C.D_EXP_MIN);
}

// exp of 4 vectors in lockstep, results stored at out, out+16, out+32, out+48. Same algorithm as
// vexp; written out 4 times, statement by statement, because the single-vector loop is latency-bound
// (a ~45-cycle dependency chain) and the interleaved form runs ~30% faster on x86.
// @ts-ignore: decorator
@inline
export function vexp4<T>(x0: v128, x1: v128, x2: v128, x3: v128, out: usize): void {
  if (sizeof<T>() == 4) {
    const S = kf(C.F_SHIFT), L2E = kf(C.F_LOG2E), HI = kf(C.F_LN2_HI), LO = kf(C.F_LN2_LO);
    const E0 = kf(C.F_E0), E1 = kf(C.F_E1), E2 = kf(C.F_E2), E3 = kf(C.F_E3), E4 = kf(C.F_E4), E5 = kf(C.F_E5);
    const ONE = kf(C.F_ONE), MX = kf(C.F_EXP_MAX), INF = kf(C.F_INF), MN = kf(C.F_EXP_MIN);
    const t0 = f32x4.add(f32x4.mul(x0, L2E), S);
    const t1 = f32x4.add(f32x4.mul(x1, L2E), S);
    const t2 = f32x4.add(f32x4.mul(x2, L2E), S);
    const t3 = f32x4.add(f32x4.mul(x3, L2E), S);
    const n0 = f32x4.sub(t0, S);
    const n1 = f32x4.sub(t1, S);
    const n2 = f32x4.sub(t2, S);
    const n3 = f32x4.sub(t3, S);
    let r0 = f32x4.sub(x0, f32x4.mul(n0, HI));
    let r1 = f32x4.sub(x1, f32x4.mul(n1, HI));
    let r2 = f32x4.sub(x2, f32x4.mul(n2, HI));
    let r3 = f32x4.sub(x3, f32x4.mul(n3, HI));
    r0 = f32x4.sub(r0, f32x4.mul(n0, LO));
    r1 = f32x4.sub(r1, f32x4.mul(n1, LO));
    r2 = f32x4.sub(r2, f32x4.mul(n2, LO));
    r3 = f32x4.sub(r3, f32x4.mul(n3, LO));
    const r20 = f32x4.mul(r0, r0);
    const r21 = f32x4.mul(r1, r1);
    const r22 = f32x4.mul(r2, r2);
    const r23 = f32x4.mul(r3, r3);
    const qa0 = f32x4.add(f32x4.mul(E4, r0), E5);
    const qa1 = f32x4.add(f32x4.mul(E4, r1), E5);
    const qa2 = f32x4.add(f32x4.mul(E4, r2), E5);
    const qa3 = f32x4.add(f32x4.mul(E4, r3), E5);
    const qb0 = f32x4.add(f32x4.mul(E2, r0), E3);
    const qb1 = f32x4.add(f32x4.mul(E2, r1), E3);
    const qb2 = f32x4.add(f32x4.mul(E2, r2), E3);
    const qb3 = f32x4.add(f32x4.mul(E2, r3), E3);
    const qc0 = f32x4.add(f32x4.mul(E0, r0), E1);
    const qc1 = f32x4.add(f32x4.mul(E0, r1), E1);
    const qc2 = f32x4.add(f32x4.mul(E0, r2), E1);
    const qc3 = f32x4.add(f32x4.mul(E0, r3), E1);
    const qd0 = f32x4.add(qb0, f32x4.mul(r20, qc0));
    const qd1 = f32x4.add(qb1, f32x4.mul(r21, qc1));
    const qd2 = f32x4.add(qb2, f32x4.mul(r22, qc2));
    const qd3 = f32x4.add(qb3, f32x4.mul(r23, qc3));
    const q0 = f32x4.add(qa0, f32x4.mul(r20, qd0));
    const q1 = f32x4.add(qa1, f32x4.mul(r21, qd1));
    const q2 = f32x4.add(qa2, f32x4.mul(r22, qd2));
    const q3 = f32x4.add(qa3, f32x4.mul(r23, qd3));
    const p0 = f32x4.add(f32x4.add(r0, ONE), f32x4.mul(q0, r20));
    const p1 = f32x4.add(f32x4.add(r1, ONE), f32x4.mul(q1, r21));
    const p2 = f32x4.add(f32x4.add(r2, ONE), f32x4.mul(q2, r22));
    const p3 = f32x4.add(f32x4.add(r3, ONE), f32x4.mul(q3, r23));
    let y0 = i32x4.add(p0, i32x4.shl(t0, 23));
    let y1 = i32x4.add(p1, i32x4.shl(t1, 23));
    let y2 = i32x4.add(p2, i32x4.shl(t2, 23));
    let y3 = i32x4.add(p3, i32x4.shl(t3, 23));
    y0 = v128.bitselect(y0, f32x4.add(x0, INF), f32x4.le(x0, MX));
    y1 = v128.bitselect(y1, f32x4.add(x1, INF), f32x4.le(x1, MX));
    y2 = v128.bitselect(y2, f32x4.add(x2, INF), f32x4.le(x2, MX));
    y3 = v128.bitselect(y3, f32x4.add(x3, INF), f32x4.le(x3, MX));
    v128.store(out, v128.andnot(y0, f32x4.lt(x0, MN)), 0);
    v128.store(out, v128.andnot(y1, f32x4.lt(x1, MN)), 16);
    v128.store(out, v128.andnot(y2, f32x4.lt(x2, MN)), 32);
    v128.store(out, v128.andnot(y3, f32x4.lt(x3, MN)), 48);
  } else {
    const S = kd(C.D_SHIFT), L2E = kd(C.D_LOG2E), HI = kd(C.D_LN2_HI), LO = kd(C.D_LN2_LO), HALF = kd(C.D_HALF);
    const E2 = kd(C.D_E2), E3 = kd(C.D_E3), E4 = kd(C.D_E4), E5 = kd(C.D_E5), E6 = kd(C.D_E6), E7 = kd(C.D_E7);
    const E8 = kd(C.D_E8), E9 = kd(C.D_E9), E10 = kd(C.D_E10), E11 = kd(C.D_E11);
    const ONE = kd(C.D_ONE), MX = kd(C.D_EXP_MAX), INF = kd(C.D_INF), MN = kd(C.D_EXP_MIN);
    const t0 = f64x2.add(f64x2.mul(x0, L2E), S);
    const t1 = f64x2.add(f64x2.mul(x1, L2E), S);
    const t2 = f64x2.add(f64x2.mul(x2, L2E), S);
    const t3 = f64x2.add(f64x2.mul(x3, L2E), S);
    const n0 = f64x2.sub(t0, S);
    const n1 = f64x2.sub(t1, S);
    const n2 = f64x2.sub(t2, S);
    const n3 = f64x2.sub(t3, S);
    let r0 = f64x2.sub(x0, f64x2.mul(n0, HI));
    let r1 = f64x2.sub(x1, f64x2.mul(n1, HI));
    let r2 = f64x2.sub(x2, f64x2.mul(n2, HI));
    let r3 = f64x2.sub(x3, f64x2.mul(n3, HI));
    r0 = f64x2.sub(r0, f64x2.mul(n0, LO));
    r1 = f64x2.sub(r1, f64x2.mul(n1, LO));
    r2 = f64x2.sub(r2, f64x2.mul(n2, LO));
    r3 = f64x2.sub(r3, f64x2.mul(n3, LO));
    const r20 = f64x2.mul(r0, r0);
    const r21 = f64x2.mul(r1, r1);
    const r22 = f64x2.mul(r2, r2);
    const r23 = f64x2.mul(r3, r3);
    const r40 = f64x2.mul(r20, r20);
    const r41 = f64x2.mul(r21, r21);
    const r42 = f64x2.mul(r22, r22);
    const r43 = f64x2.mul(r23, r23);
    const ca0 = f64x2.add(f64x2.mul(E2, r0), HALF);
    const ca1 = f64x2.add(f64x2.mul(E2, r1), HALF);
    const ca2 = f64x2.add(f64x2.mul(E2, r2), HALF);
    const ca3 = f64x2.add(f64x2.mul(E2, r3), HALF);
    const cb0 = f64x2.add(f64x2.mul(E4, r0), E3);
    const cb1 = f64x2.add(f64x2.mul(E4, r1), E3);
    const cb2 = f64x2.add(f64x2.mul(E4, r2), E3);
    const cb3 = f64x2.add(f64x2.mul(E4, r3), E3);
    const cc0 = f64x2.add(f64x2.mul(E6, r0), E5);
    const cc1 = f64x2.add(f64x2.mul(E6, r1), E5);
    const cc2 = f64x2.add(f64x2.mul(E6, r2), E5);
    const cc3 = f64x2.add(f64x2.mul(E6, r3), E5);
    const cd0 = f64x2.add(f64x2.mul(E8, r0), E7);
    const cd1 = f64x2.add(f64x2.mul(E8, r1), E7);
    const cd2 = f64x2.add(f64x2.mul(E8, r2), E7);
    const cd3 = f64x2.add(f64x2.mul(E8, r3), E7);
    const ce0 = f64x2.add(f64x2.mul(E10, r0), E9);
    const ce1 = f64x2.add(f64x2.mul(E10, r1), E9);
    const ce2 = f64x2.add(f64x2.mul(E10, r2), E9);
    const ce3 = f64x2.add(f64x2.mul(E10, r3), E9);
    const lo0 = f64x2.add(ca0, f64x2.mul(r20, cb0));
    const lo1 = f64x2.add(ca1, f64x2.mul(r21, cb1));
    const lo2 = f64x2.add(ca2, f64x2.mul(r22, cb2));
    const lo3 = f64x2.add(ca3, f64x2.mul(r23, cb3));
    const mi0 = f64x2.add(cc0, f64x2.mul(r20, cd0));
    const mi1 = f64x2.add(cc1, f64x2.mul(r21, cd1));
    const mi2 = f64x2.add(cc2, f64x2.mul(r22, cd2));
    const mi3 = f64x2.add(cc3, f64x2.mul(r23, cd3));
    const hi0 = f64x2.add(ce0, f64x2.mul(r20, E11));
    const hi1 = f64x2.add(ce1, f64x2.mul(r21, E11));
    const hi2 = f64x2.add(ce2, f64x2.mul(r22, E11));
    const hi3 = f64x2.add(ce3, f64x2.mul(r23, E11));
    const q0 = f64x2.add(lo0, f64x2.mul(r40, f64x2.add(mi0, f64x2.mul(r40, hi0))));
    const q1 = f64x2.add(lo1, f64x2.mul(r41, f64x2.add(mi1, f64x2.mul(r41, hi1))));
    const q2 = f64x2.add(lo2, f64x2.mul(r42, f64x2.add(mi2, f64x2.mul(r42, hi2))));
    const q3 = f64x2.add(lo3, f64x2.mul(r43, f64x2.add(mi3, f64x2.mul(r43, hi3))));
    const p0 = f64x2.add(f64x2.add(r0, ONE), f64x2.mul(q0, r20));
    const p1 = f64x2.add(f64x2.add(r1, ONE), f64x2.mul(q1, r21));
    const p2 = f64x2.add(f64x2.add(r2, ONE), f64x2.mul(q2, r22));
    const p3 = f64x2.add(f64x2.add(r3, ONE), f64x2.mul(q3, r23));
    let y0 = i64x2.add(p0, i64x2.shl(t0, 52));
    let y1 = i64x2.add(p1, i64x2.shl(t1, 52));
    let y2 = i64x2.add(p2, i64x2.shl(t2, 52));
    let y3 = i64x2.add(p3, i64x2.shl(t3, 52));
    y0 = v128.bitselect(y0, f64x2.add(x0, INF), f64x2.le(x0, MX));
    y1 = v128.bitselect(y1, f64x2.add(x1, INF), f64x2.le(x1, MX));
    y2 = v128.bitselect(y2, f64x2.add(x2, INF), f64x2.le(x2, MX));
    y3 = v128.bitselect(y3, f64x2.add(x3, INF), f64x2.le(x3, MX));
    v128.store(out, v128.andnot(y0, f64x2.lt(x0, MN)), 0);
    v128.store(out, v128.andnot(y1, f64x2.lt(x1, MN)), 16);
    v128.store(out, v128.andnot(y2, f64x2.lt(x2, MN)), 32);
    v128.store(out, v128.andnot(y3, f64x2.lt(x3, MN)), 48);
  }
}

// ------------------------------------------------------------------------------------------------
// log

// @ts-ignore: decorator
@inline
export function vlog<T>(x0: v128): v128 {
  if (sizeof<T>() == 4) {
    // Subnormals (and zero, patched below): scale by 2^23.
    const den = f32x4.lt(x0, kf(C.F_MIN_NORMAL));
    const x = v128.bitselect(f32x4.mul(x0, kf(C.F_TWO23)), x0, den);
    // x = m 2^e with m in [0.5, 1)
    let e = f32x4.sub(f32x4.convert_i32x4_s(i32x4.shr_u(x, 23)), v128.bitselect(kf(C.F_149), kf(C.F_126), den));
    let m = v128.or(v128.and(x, i32x4.splat(0x007fffff)), kf(C.F_HALF));
    // if m < sqrt(1/2): e -= 1, m = 2m - 1 else m = m - 1
    const lo = f32x4.lt(m, kf(C.F_SQRTH));
    const one = kf(C.F_ONE);
    e = f32x4.sub(e, v128.and(one, lo));
    m = f32x4.add(f32x4.sub(m, one), v128.and(m, lo));
    const z = f32x4.mul(m, m);
    // Cephes logf polynomial of degree 8, Estrin
    const z4 = f32x4.mul(z, z);
    const a = f32x4.add(f32x4.mul(kf(C.F_L7), m), kf(C.F_L8));
    const b = f32x4.add(f32x4.mul(kf(C.F_L5), m), kf(C.F_L6));
    const c = f32x4.add(f32x4.mul(kf(C.F_L3), m), kf(C.F_L4));
    const d = f32x4.add(f32x4.mul(kf(C.F_L1), m), kf(C.F_L2));
    const ab = f32x4.add(a, f32x4.mul(z, b));
    const cd = f32x4.add(c, f32x4.mul(z, d));
    const poly = f32x4.add(ab, f32x4.mul(z4, f32x4.add(cd, f32x4.mul(z4, kf(C.F_L0)))));
    let y = f32x4.mul(f32x4.mul(poly, m), z);
    y = f32x4.add(y, f32x4.mul(e, kf(C.F_LN2_LO)));
    y = f32x4.sub(y, f32x4.mul(z, kf(C.F_HALF)));
    let r = f32x4.add(m, y);
    r = f32x4.add(r, f32x4.mul(e, kf(C.F_LN2_HI)));
    // specials: 0 -> -inf, +inf -> +inf, x < 0 or NaN -> NaN
    r = v128.bitselect(kf(C.F_NINF), r, f32x4.eq(x0, kf(C.F_ZERO)));
    r = v128.bitselect(x0, r, f32x4.eq(x0, kf(C.F_INF)));
    return v128.bitselect(r, kf(C.F_NAN), f32x4.ge(x0, kf(C.F_ZERO)));
  } else {
    const den = f64x2.lt(x0, kd(C.D_MIN_NORMAL));
    const x = v128.bitselect(f64x2.mul(x0, kd(C.D_TWO54)), x0, den);
    // exponent field -> float via the 2^52 trick
    const TWO52 = kd(C.D_TWO52);
    let e = f64x2.sub(v128.or(i64x2.shr_u(x, 52), TWO52), TWO52);
    e = f64x2.sub(e, v128.bitselect(kd(C.D_1076), kd(C.D_1022), den));
    const m = v128.or(v128.and(x, i64x2.splat(0x000fffffffffffff)), kd(C.D_HALF));
    const lo = f64x2.lt(m, kd(C.D_SQRTH));
    const one = kd(C.D_ONE);
    e = f64x2.sub(e, v128.and(one, lo));
    const f = f64x2.add(f64x2.sub(m, one), v128.and(m, lo)); // 1+f in [sqrt(1/2), sqrt(2))
    const s = f64x2.div(f, f64x2.add(kd(C.D_TWO), f));
    const z = f64x2.mul(s, s);
    const w = f64x2.mul(z, z);
    let t1 = f64x2.add(f64x2.mul(w, kd(C.D_LG6)), kd(C.D_LG4));
    t1 = f64x2.add(f64x2.mul(w, t1), kd(C.D_LG2));
    t1 = f64x2.mul(w, t1);
    let t2 = f64x2.add(f64x2.mul(w, kd(C.D_LG7)), kd(C.D_LG5));
    t2 = f64x2.add(f64x2.mul(w, t2), kd(C.D_LG3));
    t2 = f64x2.add(f64x2.mul(w, t2), kd(C.D_LG1));
    t2 = f64x2.mul(z, t2);
    const R = f64x2.add(t2, t1);
    const hfsq = f64x2.mul(f64x2.mul(f, f), kd(C.D_HALF));
    // log = e*ln2_hi - ((hfsq - (s*(hfsq+R) + e*ln2_lo)) - f)
    const inner = f64x2.add(f64x2.mul(s, f64x2.add(hfsq, R)), f64x2.mul(e, kd(C.D_LN2_LO)));
    let r = f64x2.sub(f64x2.mul(e, kd(C.D_LN2_HI)), f64x2.sub(f64x2.sub(hfsq, inner), f));
    r = v128.bitselect(kd(C.D_NINF), r, f64x2.eq(x0, kd(C.D_ZERO)));
    r = v128.bitselect(x0, r, f64x2.eq(x0, kd(C.D_INF)));
    return v128.bitselect(r, kd(C.D_NAN), f64x2.ge(x0, kd(C.D_ZERO)));
  }
}

// ------------------------------------------------------------------------------------------------
// sin, cos

// Scalar path for vectors holding a huge or infinite argument.
// @ts-ignore: decorator
@inline
function sincosScalar<T>(x: v128, cosine: bool): v128 {
  if (sizeof<T>() == 4) {
    let r = x;
    const x0 = <f64>f32x4.extract_lane(x, 0), x1 = <f64>f32x4.extract_lane(x, 1);
    const x2 = <f64>f32x4.extract_lane(x, 2), x3 = <f64>f32x4.extract_lane(x, 3);
    r = f32x4.replace_lane(r, 0, <f32>(cosine ? Math.cos(x0) : Math.sin(x0)));
    r = f32x4.replace_lane(r, 1, <f32>(cosine ? Math.cos(x1) : Math.sin(x1)));
    r = f32x4.replace_lane(r, 2, <f32>(cosine ? Math.cos(x2) : Math.sin(x2)));
    r = f32x4.replace_lane(r, 3, <f32>(cosine ? Math.cos(x3) : Math.sin(x3)));
    return r;
  } else {
    let r = x;
    const x0 = f64x2.extract_lane(x, 0), x1 = f64x2.extract_lane(x, 1);
    r = f64x2.replace_lane(r, 0, cosine ? Math.cos(x0) : Math.sin(x0));
    r = f64x2.replace_lane(r, 1, cosine ? Math.cos(x1) : Math.sin(x1));
    return r;
  }
}

// @ts-ignore: decorator
@inline
function sincosVec<T>(x: v128, cosine: bool): v128 {
  if (sizeof<T>() == 4) {
    const big = f32x4.gt(f32x4.abs(x), kf(C.F_SIN_BIG));
    if (v128.any_true(big)) return sincosScalar<f32>(x, cosine);
    // reduce each half in f64
    const S = kd(C.D_SHIFT);
    const xl = f64x2.promote_low_f32x4(x);
    const xh = f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 2, 3));
    const ql = f64x2.add(f64x2.mul(xl, kd(C.D_INVPIO2)), S);
    const qh = f64x2.add(f64x2.mul(xh, kd(C.D_INVPIO2)), S);
    const nl = f64x2.sub(ql, S), nh = f64x2.sub(qh, S);
    const rl = f64x2.sub(f64x2.sub(xl, f64x2.mul(nl, kd(C.D_PIO2_1))), f64x2.mul(nl, kd(C.D_PIO2_1T)));
    const rh = f64x2.sub(f64x2.sub(xh, f64x2.mul(nh, kd(C.D_PIO2_1))), f64x2.mul(nh, kd(C.D_PIO2_1T)));
    const r = v128.shuffle<f32>(f32x4.demote_f64x2_zero(rl), f32x4.demote_f64x2_zero(rh), 0, 1, 4, 5);
    let q = v128.shuffle<i32>(ql, qh, 0, 2, 4, 6);
    if (cosine) q = i32x4.add(q, i32x4.splat(1));
    const z = f32x4.mul(r, r);
    let sp = f32x4.add(f32x4.mul(kf(C.F_S0), z), kf(C.F_S1));
    sp = f32x4.add(f32x4.mul(sp, z), kf(C.F_S2));
    sp = f32x4.add(f32x4.mul(f32x4.mul(sp, z), r), r);
    let cp = f32x4.add(f32x4.mul(kf(C.F_C0), z), kf(C.F_C1));
    cp = f32x4.add(f32x4.mul(cp, z), kf(C.F_C2));
    cp = f32x4.add(f32x4.sub(f32x4.mul(f32x4.mul(cp, z), z), f32x4.mul(z, kf(C.F_HALF))), kf(C.F_ONE));
    const odd = i32x4.eq(v128.and(q, i32x4.splat(1)), i32x4.splat(1));
    const res = v128.bitselect(cp, sp, odd);
    return v128.xor(res, i32x4.shl(v128.and(q, i32x4.splat(2)), 30));
  } else {
    const big = f64x2.gt(f64x2.abs(x), kd(C.D_SIN_BIG));
    if (v128.any_true(big)) return sincosScalar<f64>(x, cosine);
    const S = kd(C.D_SHIFT);
    let q = f64x2.add(f64x2.mul(x, kd(C.D_INVPIO2)), S);
    const n = f64x2.sub(q, S);
    let r = f64x2.sub(x, f64x2.mul(n, kd(C.D_PIO2_1)));
    r = f64x2.sub(r, f64x2.mul(n, kd(C.D_PIO2_2)));
    r = f64x2.sub(r, f64x2.mul(n, kd(C.D_PIO2_2T)));
    if (cosine) q = i64x2.add(q, i64x2.splat(1));
    const z = f64x2.mul(r, r);
    // fdlibm __kernel_sin(r, 0, 0)
    let sr = f64x2.add(f64x2.mul(z, kd(C.D_S6)), kd(C.D_S5));
    sr = f64x2.add(f64x2.mul(z, sr), kd(C.D_S4));
    sr = f64x2.add(f64x2.mul(z, sr), kd(C.D_S3));
    sr = f64x2.add(f64x2.mul(z, sr), kd(C.D_S2));
    sr = f64x2.add(f64x2.mul(z, sr), kd(C.D_S1));
    const sp = f64x2.add(r, f64x2.mul(f64x2.mul(z, r), sr));
    // fdlibm __kernel_cos(r, 0)
    let cr = f64x2.add(f64x2.mul(z, kd(C.D_C6)), kd(C.D_C5));
    cr = f64x2.add(f64x2.mul(z, cr), kd(C.D_C4));
    cr = f64x2.add(f64x2.mul(z, cr), kd(C.D_C3));
    cr = f64x2.add(f64x2.mul(z, cr), kd(C.D_C2));
    cr = f64x2.add(f64x2.mul(z, cr), kd(C.D_C1));
    cr = f64x2.mul(f64x2.mul(z, z), cr);
    const hz = f64x2.mul(z, kd(C.D_HALF));
    const one = kd(C.D_ONE);
    const w = f64x2.sub(one, hz);
    const cp = f64x2.add(w, f64x2.add(f64x2.sub(f64x2.sub(one, w), hz), cr));
    const odd = i64x2.eq(v128.and(q, i64x2.splat(1)), i64x2.splat(1));
    const res = v128.bitselect(cp, sp, odd);
    return v128.xor(res, i64x2.shl(v128.and(q, i64x2.splat(2)), 62));
  }
}

// @ts-ignore: decorator
@inline
export function vsin<T>(x: v128): v128 {
  return sincosVec<T>(x, false);
}

// @ts-ignore: decorator
@inline
export function vcos<T>(x: v128): v128 {
  return sincosVec<T>(x, true);
}

// ------------------------------------------------------------------------------------------------
// atan2, atan, asin, acos
//
// One f64 algorithm for both dtypes: f32 lanes are promoted to f64, computed, and rounded once on the
// way back (so the f32 results are within an ulp, with no second polynomial to maintain); f64 lanes
// agree with Math.atan2 / atan / asin / acos to a few 1e-16 relative.
// atan2(y, x): t = min(|x|, |y|) / max(|x|, |y|) in [0, 1] (0/0 -> 0, inf/inf -> 1), atan(t) by
//   Cephes' rational approximation P(z)/Q(z), z = u^2, on [0, 0.66] with u = t, else pi/4 + atan(u),
//   u = (t - 1) / (t + 1) in (-0.21, 0]; then the octant from the comparisons and the signs (the sign
//   bit of x, so that atan2(0, -0) = pi as in IEEE/Math.atan2), with the low parts of pi/4, pi/2 and
//   pi added. NaN in either operand gives NaN.
// atan(x) = atan2(x, 1); asin(x) = atan2(x, sqrt((1 - x)(1 + x))); acos(x) = atan2(sqrt((1 - x)(1 + x)), x):
//   1 - x is exact near |x| = 1, so both keep their relative accuracy there; |x| > 1 gives NaN.

// @ts-ignore: decorator
@inline
function atan01d(t: v128): v128 {
  const hi = f64x2.gt(t, kd(C.D_ATAN_T));
  const one = kd(C.D_ONE);
  const u = v128.bitselect(f64x2.div(f64x2.sub(t, one), f64x2.add(t, one)), t, hi);
  const z = f64x2.mul(u, u);
  let p = f64x2.add(f64x2.mul(kd(C.D_AP0), z), kd(C.D_AP1));
  p = f64x2.add(f64x2.mul(p, z), kd(C.D_AP2));
  p = f64x2.add(f64x2.mul(p, z), kd(C.D_AP3));
  p = f64x2.add(f64x2.mul(p, z), kd(C.D_AP4));
  let q = f64x2.add(z, kd(C.D_AQ0));
  q = f64x2.add(f64x2.mul(q, z), kd(C.D_AQ1));
  q = f64x2.add(f64x2.mul(q, z), kd(C.D_AQ2));
  q = f64x2.add(f64x2.mul(q, z), kd(C.D_AQ3));
  q = f64x2.add(f64x2.mul(q, z), kd(C.D_AQ4));
  const r = f64x2.add(u, f64x2.mul(u, f64x2.div(f64x2.mul(z, p), q)));
  return f64x2.add(v128.and(kd(C.D_PIO4), hi), f64x2.add(r, v128.and(kd(C.D_PIO4_LO), hi)));
}

// @ts-ignore: decorator
@inline
function atan2d(y: v128, x: v128): v128 {
  const ax = f64x2.abs(x), ay = f64x2.abs(y);
  const swap = f64x2.gt(ay, ax);
  const num = v128.bitselect(ax, ay, swap);
  const den = v128.bitselect(ay, ax, swap);
  let t = f64x2.div(num, den);
  t = v128.andnot(t, f64x2.eq(den, kd(C.D_ZERO))); // both zero: 0
  t = v128.bitselect(kd(C.D_ONE), t, f64x2.eq(num, kd(C.D_INF))); // both infinite: 1
  // a + lo: the low parts of pi/2 and pi are carried apart and added last (added at each step, pi - a
  // would round pi/2 + PIO2_LO once more: acos(-0) one ulp above pi/2)
  let a = atan01d(t);
  let lo = v128.and(kd(C.D_PIO2_LO), swap);
  a = v128.bitselect(f64x2.sub(kd(C.D_PIO2), a), a, swap);
  const xneg = i64x2.shr_s(x, 63);
  a = v128.bitselect(f64x2.sub(kd(C.D_PI), a), a, xneg);
  lo = v128.bitselect(f64x2.sub(kd(C.D_PI_LO), lo), lo, xneg);
  a = f64x2.add(a, lo);
  a = v128.or(a, v128.and(y, i64x2.splat(0x8000000000000000)));
  // NaN in either operand: NaN (all bits set), also where the other one is infinite
  return v128.or(a, v128.or(f64x2.ne(x, x), f64x2.ne(y, y)));
}

// which: 0 atan2(a, b), 1 atan(a), 2 asin(a), 3 acos(a) (a compile-time constant once inlined)
// @ts-ignore: decorator
@inline
function atrigd(which: i32, a: v128, b: v128): v128 {
  if (which == 0) return atan2d(a, b);
  if (which == 1) return atan2d(a, kd(C.D_ONE));
  const one = kd(C.D_ONE);
  const s = f64x2.sqrt(f64x2.mul(f64x2.sub(one, a), f64x2.add(one, a)));
  return which == 2 ? atan2d(a, s) : atan2d(s, a);
}

// @ts-ignore: decorator
@inline
function vatrig<T>(which: i32, a: v128, b: v128): v128 {
  if (sizeof<T>() == 8) return atrigd(which, a, b);
  const al = f64x2.promote_low_f32x4(a), ah = f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3));
  const bl = f64x2.promote_low_f32x4(b), bh = f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3));
  const rl = atrigd(which, al, bl), rh = atrigd(which, ah, bh);
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(rl), f32x4.demote_f64x2_zero(rh), 0, 1, 4, 5);
}

// @ts-ignore: decorator
@inline
export function vatan2<T>(y: v128, x: v128): v128 {
  return vatrig<T>(0, y, x);
}

// @ts-ignore: decorator
@inline
export function vatan<T>(x: v128): v128 {
  return vatrig<T>(1, x, x);
}

// @ts-ignore: decorator
@inline
export function vasin<T>(x: v128): v128 {
  return vatrig<T>(2, x, x);
}

// @ts-ignore: decorator
@inline
export function vacos<T>(x: v128): v128 {
  return vatrig<T>(3, x, x);
}
