// Elementwise operations of the tile ISA as zero-size classes with an @inline `apply`, so that
// a generic loop `loop<T, Op>` is instantiated once per (dtype, op, operand layout) and each
// instantiation is a tight SIMD loop (see kernel.ts). `evalOp` is the generic (switching) form, used
// for the outer code and for uniform-only operands, where the value is computed once per row.
import * as I from './isa';
import { vexp, vlog, vsin, vcos, vatan, vasin, vacos, vatan2 } from './math';
import * as C from './consts';

// ------------------------------------------------------------------------------------------------
// helpers

// @ts-ignore: decorator
@inline
export function vsplat<T>(x: f64): v128 {
  return v128.splat<T>(<T>x);
}

// splatted constants from the tables (one load; see consts.ts)
// @ts-ignore: decorator
@inline
export function kone<T>(): v128 {
  return v128.load(sizeof<T>() == 4 ? C.F32_TABLE + C.F_ONE : C.F64_TABLE + C.D_ONE);
}
// @ts-ignore: decorator
@inline
export function khalf<T>(): v128 {
  return v128.load(sizeof<T>() == 4 ? C.F32_TABLE + C.F_HALF : C.F64_TABLE + C.D_HALF);
}
// @ts-ignore: decorator
@inline
export function kzero(): v128 {
  return v128.splat<i32>(0);
}

// 1.0 where the mask is set, else 0.0
// @ts-ignore: decorator
@inline
export function maskToOne<T>(m: v128): v128 {
  return v128.and(m, kone<T>());
}

// round half away from zero
// @ts-ignore: decorator
@inline
export function vroundAway<T>(x: v128): v128 {
  const t = v128.trunc<T>(x);
  const frac = v128.abs<T>(v128.sub<T>(x, t));
  const one = kone<T>();
  let sgnOne: v128;
  if (sizeof<T>() == 4) sgnOne = v128.or(v128.and(x, i32x4.splat(0x80000000)), one);
  else sgnOne = v128.or(v128.and(x, i64x2.splat(0x8000000000000000)), one);
  return v128.add<T>(t, v128.and(sgnOne, v128.ge<T>(frac, khalf<T>())));
}

// a^n for an integer n by repeated squaring (negative n: 1 / a^-n)
// @ts-ignore: decorator
@inline
export function vpowi<T>(a: v128, n: i32): v128 {
  let e = n < 0 ? -n : n;
  let r = kone<T>();
  let b = a;
  while (e != 0) {
    if (e & 1) r = v128.mul<T>(r, b);
    e >>>= 1;
    if (e != 0) b = v128.mul<T>(b, b);
  }
  if (n < 0) r = v128.div<T>(kone<T>(), r);
  return r;
}

// ------------------------------------------------------------------------------------------------
// unary: apply(a, p, aux) where p is a per-instruction splat parameter (ROUND, ONEHOT)

@final export class UCopy { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return a; } }
@final export class UNeg { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return v128.neg<T>(a); } }
@final export class UAbs { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return v128.abs<T>(a); } }
@final export class UExp { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return vexp<T>(a); } }
@final export class ULog { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return vlog<T>(a); } }
@final export class USqrt { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return v128.sqrt<T>(a); } }
@final export class URsqrt {
  @inline apply<T>(a: v128, p: v128, aux: i32): v128 {
    const r = v128.div<T>(kone<T>(), v128.sqrt<T>(a));
    return v128.andnot(r, v128.eq<T>(a, kzero()));
  }
}
@final export class USquare { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return v128.mul<T>(a, a); } }
@final export class UInv { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return v128.div<T>(kone<T>(), a); } }
@final export class USin { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return vsin<T>(a); } }
@final export class UCos { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return vcos<T>(a); } }
@final export class USign {
  @inline apply<T>(a: v128, p: v128, aux: i32): v128 {
    const z = kzero();
    const s = v128.sub<T>(maskToOne<T>(v128.gt<T>(a, z)), maskToOne<T>(v128.lt<T>(a, z)));
    return v128.bitselect(a, s, v128.ne<T>(a, a)); // NaN stays NaN
  }
}
@final export class UStep {
  @inline apply<T>(a: v128, p: v128, aux: i32): v128 {
    return v128.andnot(kone<T>(), v128.lt<T>(a, kzero()));
  }
}
@final export class URelu { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return v128.max<T>(a, kzero()); } }
@final export class UXlogx {
  @inline apply<T>(a: v128, p: v128, aux: i32): v128 {
    return v128.andnot(v128.mul<T>(a, vlog<T>(a)), v128.eq<T>(a, kzero()));
  }
}
@final export class USinxdivx {
  @inline apply<T>(a: v128, p: v128, aux: i32): v128 {
    return v128.bitselect(kone<T>(), v128.div<T>(vsin<T>(a), a), v128.eq<T>(a, kzero()));
  }
}
// p = 10^|aux| (may be +inf in T): aux >= 0: round(a*p)/p where |a*p| < 2^mantissa, else a itself
// (a*p is then an integer already, or overflowed: rounding beyond the precision is a no-op, and
// 0*inf never makes a NaN); aux < 0: round(a/p)*p, and the rounded value itself where it is 0 (so
// that 0*inf gives 0: a multiple of 10^400 nearest to a finite a).
@final export class URound {
  @inline apply<T>(a: v128, p: v128, aux: i32): v128 {
    if (aux >= 0) {
      const s = v128.mul<T>(a, p);
      const lim = sizeof<T>() == 4 ? vsplat<T>(8388608.0) : vsplat<T>(4503599627370496.0);
      return v128.bitselect(v128.div<T>(vroundAway<T>(s), p), a, v128.lt<T>(v128.abs<T>(s), lim));
    }
    const r = vroundAway<T>(v128.div<T>(a, p));
    return v128.bitselect(r, v128.mul<T>(r, p), v128.eq<T>(r, kzero()));
  }
}
@final export class UPow { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return vpowi<T>(a, aux); } }
// p = splat(k) for dst row k
@final export class UOnehot {
  @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return maskToOne<T>(v128.eq<T>(vroundAway<T>(a), p)); }
}
@final export class UFloor { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return v128.floor<T>(a); } }
@final export class UAtan { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return vatan<T>(a); } }
@final export class UAsin { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return vasin<T>(a); } }
@final export class UAcos { @inline apply<T>(a: v128, p: v128, aux: i32): v128 { return vacos<T>(a); } }

// ------------------------------------------------------------------------------------------------
// binary

@final export class BAdd { @inline apply<T>(a: v128, b: v128): v128 { return v128.add<T>(a, b); } }
@final export class BSub { @inline apply<T>(a: v128, b: v128): v128 { return v128.sub<T>(a, b); } }
@final export class BMul { @inline apply<T>(a: v128, b: v128): v128 { return v128.mul<T>(a, b); } }
@final export class BDiv { @inline apply<T>(a: v128, b: v128): v128 { return v128.div<T>(a, b); } }
@final export class BPowf { @inline apply<T>(a: v128, b: v128): v128 { return vexp<T>(v128.mul<T>(b, vlog<T>(a))); } }
@final export class BEq { @inline apply<T>(a: v128, b: v128): v128 { return maskToOne<T>(v128.eq<T>(a, b)); } }
@final export class BNe { @inline apply<T>(a: v128, b: v128): v128 { return maskToOne<T>(v128.ne<T>(a, b)); } }
@final export class BLt { @inline apply<T>(a: v128, b: v128): v128 { return maskToOne<T>(v128.lt<T>(a, b)); } }
@final export class BLe { @inline apply<T>(a: v128, b: v128): v128 { return maskToOne<T>(v128.le<T>(a, b)); } }
@final export class BGt { @inline apply<T>(a: v128, b: v128): v128 { return maskToOne<T>(v128.gt<T>(a, b)); } }
@final export class BGe { @inline apply<T>(a: v128, b: v128): v128 { return maskToOne<T>(v128.ge<T>(a, b)); } }
@final export class BMin { @inline apply<T>(a: v128, b: v128): v128 { return v128.min<T>(a, b); } }
@final export class BMax { @inline apply<T>(a: v128, b: v128): v128 { return v128.max<T>(a, b); } }
@final export class BAtan2 { @inline apply<T>(a: v128, b: v128): v128 { return vatan2<T>(a, b); } }

// ------------------------------------------------------------------------------------------------
// ternary

@final export class TClamp { @inline apply<T>(a: v128, b: v128, c: v128): v128 { return v128.min<T>(v128.max<T>(a, b), c); } }
@final export class TIfelse {
  @inline apply<T>(a: v128, b: v128, c: v128): v128 { return v128.bitselect(b, c, v128.ge<T>(a, kzero())); }
}
@final export class TMod {
  @inline apply<T>(a: v128, b: v128, c: v128): v128 {
    return v128.sub<T>(a, v128.mul<T>(b, v128.floor<T>(v128.div<T>(v128.sub<T>(a, c), b))));
  }
}

// ------------------------------------------------------------------------------------------------
// classification

export const CLS_BAD = 0;
export const CLS_UNARY = 1;
export const CLS_BINARY = 2;
export const CLS_TERNARY = 3;
export const CLS_ROWRED = 4;

// The class of an opcode is its band (isa.ts, OPCODE BANDS); opcodes past the last one of a band are
// rejected (checkCode in kernel.ts: ERR_BAD_PROGRAM).
export function opClass(op: i32): i32 {
  if (op >= I.UNARY_FIRST && op <= I.UNARY_LAST) return CLS_UNARY;
  if (op >= I.BINARY_FIRST && op <= I.BINARY_LAST) return CLS_BINARY;
  if (op >= I.TERNARY_FIRST && op <= I.TERNARY_LAST) return CLS_TERNARY;
  if (op >= I.ROWRED_FIRST && op <= I.ROWRED_LAST) return CLS_ROWRED;
  return CLS_BAD;
}

// The per-instruction splat parameter of a unary op.
// @ts-ignore: decorator
@inline
export function unaryParam<T>(op: i32, aux: i32): v128 {
  if (op == I.OP_ROUND) {
    const e = aux < 0 ? -aux : aux;
    return vsplat<T>(Math.pow(10.0, <f64>e));
  }
  return kzero();
}

// Generic (switching) evaluation of one elementwise op on vectors. For ONEHOT, p = splat(row).
export function evalOp<T>(op: i32, a: v128, b: v128, c: v128, p: v128, aux: i32): v128 {
  switch (op) {
    case I.OP_COPY: return a;
    case I.OP_NEG: return changetype<UNeg>(0).apply<T>(a, p, aux);
    case I.OP_ABS: return changetype<UAbs>(0).apply<T>(a, p, aux);
    case I.OP_EXP: return changetype<UExp>(0).apply<T>(a, p, aux);
    case I.OP_LOG: return changetype<ULog>(0).apply<T>(a, p, aux);
    case I.OP_SQRT: return changetype<USqrt>(0).apply<T>(a, p, aux);
    case I.OP_RSQRT: return changetype<URsqrt>(0).apply<T>(a, p, aux);
    case I.OP_SQUARE: return changetype<USquare>(0).apply<T>(a, p, aux);
    case I.OP_INV: return changetype<UInv>(0).apply<T>(a, p, aux);
    case I.OP_SIN: return changetype<USin>(0).apply<T>(a, p, aux);
    case I.OP_COS: return changetype<UCos>(0).apply<T>(a, p, aux);
    case I.OP_SIGN: return changetype<USign>(0).apply<T>(a, p, aux);
    case I.OP_STEP: return changetype<UStep>(0).apply<T>(a, p, aux);
    case I.OP_RELU: return changetype<URelu>(0).apply<T>(a, p, aux);
    case I.OP_XLOGX: return changetype<UXlogx>(0).apply<T>(a, p, aux);
    case I.OP_SINXDIVX: return changetype<USinxdivx>(0).apply<T>(a, p, aux);
    case I.OP_ROUND: return changetype<URound>(0).apply<T>(a, p, aux);
    case I.OP_POW: return changetype<UPow>(0).apply<T>(a, p, aux);
    case I.OP_ONEHOT: return changetype<UOnehot>(0).apply<T>(a, p, aux);
    case I.OP_FLOOR: return changetype<UFloor>(0).apply<T>(a, p, aux);
    case I.OP_ATAN: return changetype<UAtan>(0).apply<T>(a, p, aux);
    case I.OP_ASIN: return changetype<UAsin>(0).apply<T>(a, p, aux);
    case I.OP_ACOS: return changetype<UAcos>(0).apply<T>(a, p, aux);
    case I.OP_ADD: return changetype<BAdd>(0).apply<T>(a, b);
    case I.OP_SUB: return changetype<BSub>(0).apply<T>(a, b);
    case I.OP_MUL: return changetype<BMul>(0).apply<T>(a, b);
    case I.OP_DIV: return changetype<BDiv>(0).apply<T>(a, b);
    case I.OP_POWF: return changetype<BPowf>(0).apply<T>(a, b);
    case I.OP_EQ: return changetype<BEq>(0).apply<T>(a, b);
    case I.OP_NE: return changetype<BNe>(0).apply<T>(a, b);
    case I.OP_LT: return changetype<BLt>(0).apply<T>(a, b);
    case I.OP_LE: return changetype<BLe>(0).apply<T>(a, b);
    case I.OP_GT: return changetype<BGt>(0).apply<T>(a, b);
    case I.OP_GE: return changetype<BGe>(0).apply<T>(a, b);
    case I.OP_MIN: return changetype<BMin>(0).apply<T>(a, b);
    case I.OP_MAX: return changetype<BMax>(0).apply<T>(a, b);
    case I.OP_ATAN2: return changetype<BAtan2>(0).apply<T>(a, b);
    case I.OP_CLAMP: return changetype<TClamp>(0).apply<T>(a, b, c);
    case I.OP_IFELSE: return changetype<TIfelse>(0).apply<T>(a, b, c);
    case I.OP_MOD: return changetype<TMod>(0).apply<T>(a, b, c);
  }
  return a;
}
