// Every operation of the formula language, one record each: shape rule, float64 reference, printed
// form and lowering to the WebAssembly tile program and to WGSL (the WebGPU engine). Adding an
// operation means adding a record here, a method in lazy-tensor.ts that builds it and a row in
// tests/helpers/op-cases.ts (tests/op-table.test.ts fails for a record without one); a new opcode
// goes at the end of its band in assembly/isa.ts (tests/opcodes.test.ts checks the bands).
import * as isa from '../../assembly/isa.js';
import { apply, isOne, isZero, scalar, zeros, constant } from './build.js';
import type { FormulaNode } from './formula.js';
import { InputError } from './errors.js';
import { ShapeError, type OpDef, type TileEmitter, type TileReg, type WgslEmitter, type WgslValue } from './op-def.js';

type Node = FormulaNode;
type Grads = readonly (Node | null)[];
/** Shorthands for derivative rules. */
const op1 = (def: OpDef<null>, a: Node): Node => apply(def, [a], null);
const op2 = (def: OpDef<null>, a: Node, b: Node): Node => apply(def, [a, b], null);

type Scalar1 = (a: number) => number;
type Scalar2 = (a: number, b: number) => number;
type Scalar3 = (a: number, b: number, c: number) => number;

/** Dimensions of an elementwise operation: all equal, or 1 (broadcast). */
function broadcastDim(name: string, dims: readonly number[]): number {
  const out = Math.max(...dims);
  for (const d of dims) {
    if (d !== 1 && d !== out) {
      throw new ShapeError(`${name}: operand dimensions ${dims.join(' and ')} do not match (each must be ${out} or 1)`);
    }
  }
  return out;
}

/** Applies a scalar function componentwise with broadcasting of dimension-1 operands. */
function mapBroadcast(args: readonly Float64Array[], f: (...xs: number[]) => number): Float64Array {
  const dim = Math.max(...args.map((a) => a.length));
  const out = new Float64Array(dim);
  const xs = new Array<number>(args.length);
  for (let k = 0; k < dim; k++) {
    for (let q = 0; q < args.length; q++) {
      const a = args[q]!;
      xs[q] = a.length === 1 ? a[0]! : a[k]!;
    }
    out[k] = f(...xs);
  }
  return out;
}

/** The largest |integer| a parameter may take: it travels to the kernel as an i32. */
const MAX_I32 = 2 ** 31 - 1;

/** A static integer parameter: an integer in [min, max] (max is at most MAX_I32), else an InputError. */
function requireInteger(name: string, what: string, value: number, min: number, max = MAX_I32): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InputError(`${name}: ${what} must be an integer, got ${String(value)}`);
  }
  if (value < min || value > max) {
    throw new InputError(`${name}: ${what} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

type Rule = (args: readonly Node[], ct: Node, out: Node) => Grads;
/** Piecewise constant: no gradient. */
const flat: Rule = (args) => args.map(() => null);

/** The record, marked as accepting +-Infinity in the numbers given to it (see OpDef.infiniteConstants). */
const acceptsInfinity = <P>(def: OpDef<P>): OpDef<P> => ({ ...def, infiniteConstants: true });

function unary(
  name: string,
  opcode: number,
  f: Scalar1,
  print: (a: string) => string,
  vjp: Rule,
  wgsl: (a: string) => string,
): OpDef<null> {
  return {
    name,
    vjp: (args, ct, _p, out) => vjp(args, ct, out),
    shape: (dims) => dims[0]!,
    reference: (args) => mapBroadcast(args, f as (...xs: number[]) => number),
    print: ([a]) => print(a!),
    tile: (e, args, _p, dim) => e.emit(opcode, dim, args),
    wgsl: (e, [a], _p, dim) => e.map(dim, [a!], (k) => wgsl(e.at(a!, k))),
  };
}

/** Binary and ternary rules give full-dimension cotangents; broadcast operands get them summed. */
function unbroadcastAll(args: readonly Node[], grads: Grads): Grads {
  return grads.map((g, q) => (g === null ? null : unbroadcast(g, args[q]!.dim)));
}

function binary(
  name: string,
  opcode: number,
  f: Scalar2,
  print: (a: string, b: string) => string,
  vjp: Rule,
  wgsl: (a: string, b: string) => string,
): OpDef<null> {
  return {
    name,
    vjp: (args, ct, _p, out) => unbroadcastAll(args, vjp(args, ct, out)),
    shape: (dims) => broadcastDim(name, dims),
    reference: (args) => mapBroadcast(args, f as (...xs: number[]) => number),
    print: ([a, b]) => print(a!, b!),
    tile: (e, args, _p, dim) => e.emit(opcode, dim, args),
    wgsl: (e, [a, b], _p, dim) => e.map(dim, [a!, b!], (k) => wgsl(e.at(a!, k), e.at(b!, k))),
  };
}

function ternary(
  name: string,
  opcode: number,
  f: Scalar3,
  print: (a: string, b: string, c: string) => string,
  vjp: Rule,
  wgsl: (a: string, b: string, c: string) => string,
): OpDef<null> {
  return {
    name,
    vjp: (args, ct, _p, out) => unbroadcastAll(args, vjp(args, ct, out)),
    shape: (dims) => broadcastDim(name, dims),
    reference: (args) => mapBroadcast(args, f as (...xs: number[]) => number),
    print: ([a, b, c]) => print(a!, b!, c!),
    tile: (e, args, _p, dim) => e.emit(opcode, dim, args),
    wgsl: (e, [a, b, c], _p, dim) => e.map(dim, [a!, b!, c!], (k) => wgsl(e.at(a!, k), e.at(b!, k), e.at(c!, k))),
  };
}

function sameDims(name: string, dims: readonly number[]): void {
  if (dims[0] !== dims[1]) {
    throw new ShapeError(`${name}: operand dimensions ${dims[0]} and ${dims[1]} must be equal`);
  }
}

/** Rounds halves away from zero (as C's round, which KeOps uses). */
export function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

function integerPower(x: number, n: number): number {
  let base = n < 0 ? 1 / x : x;
  let e = Math.abs(n);
  let acc = 1;
  while (e > 0) {
    if (e & 1) acc *= base;
    base *= base;
    e >>= 1;
  }
  return acc;
}

const dot = (a: Float64Array, b: Float64Array): number => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
};

// ---------------------------------------------------------------------------------------------------
// Elementwise operations.

export const add = acceptsInfinity(
  binary(
    'add',
    isa.OP_ADD,
    (a, b) => a + b,
    (a, b) => `(${a} + ${b})`,
    (_a, ct) => [ct, ct],
    (a, b) => `(${a} + ${b})`,
  ),
);
export const sub = acceptsInfinity(
  binary(
    'sub',
    isa.OP_SUB,
    (a, b) => a - b,
    (a, b) => `(${a} - ${b})`,
    (_a, ct) => [ct, negate(ct)],
    (a, b) => `(${a} - ${b})`,
  ),
);
export const mul = binary(
  'mul',
  isa.OP_MUL,
  (a, b) => a * b,
  (a, b) => `(${a} * ${b})`,
  ([a, b], ct) => [times(ct, b!), times(ct, a!)],
  (a, b) => `(${a} * ${b})`,
);
export const div = binary(
  'div',
  isa.OP_DIV,
  (a, b) => a / b,
  (a, b) => `(${a} / ${b})`,
  ([a, b], ct) => [divide(ct, b!), negate(divide(times(ct, a!), op1(square, b!)))],
  (a, b) => `(${a} / ${b})`,
);
export const powf = binary(
  'powf',
  isa.OP_POWF,
  (a, b) => Math.exp(b * Math.log(a)),
  (a, b) => `${a}^${b}`,
  ([a, b], ct, out) => [times(ct, divide(times(b!, out), a!)), times(ct, times(out, op1(log, a!)))],
  (a, b) => `lt_powf(${a}, ${b})`,
);
export const eq = acceptsInfinity(
  binary(
    'eq',
    isa.OP_EQ,
    (a, b) => +(a === b),
    (a, b) => `(${a} == ${b})`,
    flat,
    (a, b) => `select(0.0, 1.0, ${a} == ${b})`,
  ),
);
export const ne = acceptsInfinity(
  binary(
    'ne',
    isa.OP_NE,
    (a, b) => +(a !== b),
    (a, b) => `(${a} != ${b})`,
    flat,
    (a, b) => `select(0.0, 1.0, ${a} != ${b})`,
  ),
);
export const lt = acceptsInfinity(
  binary(
    'lt',
    isa.OP_LT,
    (a, b) => +(a < b),
    (a, b) => `(${a} < ${b})`,
    flat,
    (a, b) => `select(0.0, 1.0, ${a} < ${b})`,
  ),
);
export const le = acceptsInfinity(
  binary(
    'le',
    isa.OP_LE,
    (a, b) => +(a <= b),
    (a, b) => `(${a} <= ${b})`,
    flat,
    (a, b) => `select(0.0, 1.0, ${a} <= ${b})`,
  ),
);
export const gt = acceptsInfinity(
  binary(
    'gt',
    isa.OP_GT,
    (a, b) => +(a > b),
    (a, b) => `(${a} > ${b})`,
    flat,
    (a, b) => `select(0.0, 1.0, ${a} > ${b})`,
  ),
);
export const ge = acceptsInfinity(
  binary(
    'ge',
    isa.OP_GE,
    (a, b) => +(a >= b),
    (a, b) => `(${a} >= ${b})`,
    flat,
    (a, b) => `select(0.0, 1.0, ${a} >= ${b})`,
  ),
);

export const neg = unary(
  'neg',
  isa.OP_NEG,
  (a) => -a,
  (a) => `-${a}`,
  (_a, ct) => [negate(ct)],
  (a) => `(-${a})`,
);
export const abs = unary(
  'abs',
  isa.OP_ABS,
  Math.abs,
  (a) => `|${a}|`,
  ([a], ct) => [times(ct, op1(sign, a!))],
  (a) => `abs(${a})`,
);
export const exp = unary(
  'exp',
  isa.OP_EXP,
  Math.exp,
  (a) => `exp(${a})`,
  (_a, ct, out) => [times(ct, out)],
  (a) => `lt_exp(${a})`,
);
export const log = unary(
  'log',
  isa.OP_LOG,
  Math.log,
  (a) => `log(${a})`,
  ([a], ct) => [divide(ct, a!)],
  (a) => `lt_log(${a})`,
);
export const sqrt = unary(
  'sqrt',
  isa.OP_SQRT,
  Math.sqrt,
  (a) => `sqrt(${a})`,
  ([a], ct) => [times(ct, times(scalar(0.5), op1(rsqrt, a!)))] /* 0 at 0, as KeOps */,
  (a) => `lt_sqrt(${a})`,
);
export const rsqrt = unary(
  'rsqrt',
  isa.OP_RSQRT,
  (a) => (a === 0 ? 0 : 1 / Math.sqrt(a)),
  (a) => `rsqrt(${a})`,
  (_a, ct, out) => [times(ct, times(scalar(-0.5), apply(pow, [out], { n: 3 })))],
  (a) => `lt_rsqrt(${a})`,
);
export const square = unary(
  'square',
  isa.OP_SQUARE,
  (a) => a * a,
  (a) => `${a}^2`,
  ([a], ct) => [times(ct, times(scalar(2), a!))],
  (a) => `lt_sq(${a})`,
);
export const sin = unary(
  'sin',
  isa.OP_SIN,
  Math.sin,
  (a) => `sin(${a})`,
  ([a], ct) => [times(ct, op1(cos, a!))],
  (a) => `lt_sin(${a})`,
);
export const cos = unary(
  'cos',
  isa.OP_COS,
  Math.cos,
  (a) => `cos(${a})`,
  ([a], ct) => [negate(times(ct, op1(sin, a!)))],
  (a) => `lt_cos(${a})`,
);
export const sign = unary(
  'sign',
  isa.OP_SIGN,
  (a) => (a > 0 ? 1 : a < 0 ? -1 : 0),
  (a) => `sign(${a})`,
  flat,
  (a) => `lt_sign(${a})`,
);
export const step = unary(
  'step',
  isa.OP_STEP,
  (a) => (a < 0 ? 0 : 1),
  (a) => `step(${a})`,
  flat,
  (a) => `lt_step(${a})`,
);
export const relu = unary(
  'relu',
  isa.OP_RELU,
  (a) => (a < 0 ? 0 : a),
  (a) => `relu(${a})`,
  ([a], ct) => [times(ct, op1(step, a!))],
  (a) => `lt_relu(${a})`,
);
export const xLogX = unary(
  'xLogX',
  isa.OP_XLOGX,
  (a) => (a === 0 ? 0 : a * Math.log(a)),
  (a) => `xlogx(${a})`,
  ([a], ct) => [times(ct, plus(op1(log, a!), scalar(1)))],
  (a) => `lt_xlogx(${a})`,
);
export const sinXDivX = unary(
  'sinXDivX',
  isa.OP_SINXDIVX,
  (a) => (a === 0 ? 1 : Math.sin(a) / a),
  (a) => `sinc(${a})`,
  ([a], ct, out) => [
    // (cos a - sinc a) / a, selected away from 0 (where the limit is 0) so that 0/0 is never used.
    times(ct, apply(ifElse, [negate(op1(square, a!)), zeros(1), divide(minus(op1(cos, a!), out), a!)], null)),
  ],
  (a) => `lt_sinc(${a})`,
);

export const floor = unary(
  'floor',
  isa.OP_FLOOR,
  Math.floor,
  (a) => `floor(${a})`,
  flat /* piecewise constant: 0 almost everywhere */,
  (a) => `floor(${a})`,
);
export const atan = unary(
  'atan',
  isa.OP_ATAN,
  Math.atan,
  (a) => `atan(${a})`,
  ([a], ct) => [divide(ct, plus(scalar(1), op1(square, a!)))],
  (a) => `lt_atan(${a})`,
);
export const asin = unary(
  'asin',
  isa.OP_ASIN,
  Math.asin,
  (a) => `asin(${a})`,
  // 1 / sqrt(1 - a^2): infinite at |a| = 1, where asin has a vertical tangent.
  ([a], ct) => [divide(ct, op1(sqrt, minus(scalar(1), op1(square, a!))))],
  (a) => `lt_asin(${a})`,
);
export const acos = unary(
  'acos',
  isa.OP_ACOS,
  Math.acos,
  (a) => `acos(${a})`,
  ([a], ct) => [negate(divide(ct, op1(sqrt, minus(scalar(1), op1(square, a!)))))],
  (a) => `lt_acos(${a})`,
);
/** `y.atan2(x)`: the angle of the point (x, y), in [-pi, pi] (Math.atan2(y, x), torch.atan2(y, x)). */
export const atan2 = binary(
  'atan2',
  isa.OP_ATAN2,
  Math.atan2,
  (a, b) => `atan2(${a}, ${b})`,
  // d/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2)
  ([y, x], ct) => {
    const r2 = plus(op1(square, y!), op1(square, x!));
    return [times(ct, divide(x!, r2)), negate(times(ct, divide(y!, r2)))];
  },
  (a, b) => `lt_atan2(${a}, ${b})`,
);
/** `a.maximum(b)`: the larger of a and b, component by component (NaN if either is NaN). The
 *  cotangent goes to a where a >= b (ties included), to b elsewhere. */
export const maximum = acceptsInfinity(
  binary(
    'maximum',
    isa.OP_MAX,
    (a, b) => Math.max(a, b),
    (a, b) => `max(${a}, ${b})`,
    ([a, b], ct) => [times(ct, op2(ge, a!, b!)), times(ct, op2(lt, a!, b!))],
    (a, b) => `lt_max(${a}, ${b})`,
  ),
);
/** `a.minimum(b)`: the smaller of a and b, component by component; the cotangent goes to a where
 *  a <= b, to b elsewhere. */
export const minimum = acceptsInfinity(
  binary(
    'minimum',
    isa.OP_MIN,
    (a, b) => Math.min(a, b),
    (a, b) => `min(${a}, ${b})`,
    ([a, b], ct) => [times(ct, op2(le, a!, b!)), times(ct, op2(gt, a!, b!))],
    (a, b) => `lt_min(${a}, ${b})`,
  ),
);

export const clamp = acceptsInfinity(
  ternary(
    'clamp',
    isa.OP_CLAMP,
    (a, lo, hi) => Math.min(Math.max(a, lo), hi),
    (a, b, c) => `clamp(${a}, ${b}, ${c})`,
    ([a, lo, hi], ct) => {
      const inside = times(op2(ge, a!, lo!), op2(le, a!, hi!));
      return [times(ct, inside), times(ct, op2(lt, a!, lo!)), times(ct, op2(gt, a!, hi!))];
    },
    (a, lo, hi) => `lt_clamp(${a}, ${lo}, ${hi})`,
  ),
);
export const ifElse = acceptsInfinity(
  ternary(
    'ifElse',
    isa.OP_IFELSE,
    (c, a, b) => (c >= 0 ? a : b),
    (c, a, b) => `(${c} >= 0 ? ${a} : ${b})`,
    ([c], ct) => {
      const chosen = op1(step, c!);
      return [null, times(ct, chosen), times(ct, minus(scalar(1), chosen))];
    },
    (c, a, b) => `lt_ifelse(${c}, ${a}, ${b})`,
  ),
);
export const mod = ternary(
  'mod',
  isa.OP_MOD,
  (a, n, d) => a - n * Math.floor((a - d) / n),
  (a, n, d) => `mod(${a}, ${n}, ${d})`,
  ([a, n], ct, out) => [ct, negate(times(ct, divide(minus(a!, out), n!))), null],
  (a, n, d) => `lt_mod(${a}, ${n}, ${d})`,
);

/** `pow(n)`: an integer power, by repeated squaring. */
export const pow: OpDef<{ n: number }> = {
  name: 'pow',
  shape: (dims, { n }) => {
    requireInteger('pow', 'the exponent', n, -MAX_I32);
    return dims[0]!;
  },
  reference: ([a], { n }) => a!.map((v) => integerPower(v, n)),
  print: ([a], { n }) => `${a}^${n}`,
  vjp: ([a], ct, { n }) => [
    n === 0 ? null : times(ct, times(scalar(n), n === 1 ? scalar(1) : apply(pow, [a!], { n: n - 1 }))),
  ],
  wgsl: (e, [a], { n }, dim) => e.map(dim, [a!], (k) => `lt_powi(${e.at(a!, k)}, ${n})`),
  tile: (e, args, { n }, dim) => e.emit(isa.OP_POW, dim, args, n),
};

/** Rounds `v` to `digits` decimals in float64 with the kernel's semantics: where v * 10^digits is
 *  beyond the float's integer precision (2^52) or overflows, v is already "rounded" and comes back
 *  unchanged; a negative `digits` rounds to a multiple of 10^-digits (0 when that exceeds the range). */
export function roundDigits(v: number, digits: number): number {
  if (digits >= 0) {
    const scale = 10 ** digits;
    const s = v * scale;
    return Math.abs(s) < 2 ** 52 ? roundHalfAway(s) / scale : v;
  }
  const scale = 10 ** -digits;
  const r = roundHalfAway(v / scale);
  return r === 0 ? r : r * scale;
}

/** `round(digits)`: rounds to `digits` decimals, halves away from zero; a no-op beyond the precision
 *  of the float (any `digits`, even 400, is defined). */
export const round: OpDef<{ digits: number }> = {
  name: 'round',
  shape: (dims, { digits }) => {
    requireInteger('round', 'digits', digits, -MAX_I32, MAX_I32);
    return dims[0]!;
  },
  reference: ([a], { digits }) => a!.map((v) => roundDigits(v, digits)),
  print: ([a], { digits }) => `round(${a}, ${digits})`,
  vjp: () => [null],
  wgsl: (e, [a], { digits }, dim) => {
    // f32: 10^38 is the largest finite power; beyond it rounding is a no-op (digits > 38) or gives 0
    // (digits < -38) for every finite f32, as in the WebAssembly kernel.
    if (digits > 38) return e.map(dim, [a!], (k) => e.at(a!, k));
    if (digits < -38) return e.map(dim, [a!], () => '0.0');
    const p = e.literal(10 ** Math.abs(digits));
    return e.map(dim, [a!], (k) => {
      const x = e.at(a!, k);
      if (digits >= 0) return `select(${x}, lt_round(${x} * ${p}) / ${p}, abs(${x} * ${p}) < 8388608.0)`;
      return `(lt_round(${x} / ${p}) * ${p})`;
    });
  },
  tile: (e, args, { digits }, dim) => e.emit(isa.OP_ROUND, dim, args, digits),
};

// ---------------------------------------------------------------------------------------------------
// Vector operations.

/** `sum()`: the sum of the components (not a reduction). */
export const sum: OpDef<null> = {
  name: 'sum',
  shape: () => 1,
  reference: ([a]) => Float64Array.of(a!.reduce((s, v) => s + v, 0)),
  print: ([a]) => `sum(${a})`,
  vjp: ([a], ct) => [unbroadcast(ct, a!.dim)],
  wgsl: (e, [a]) => e.sum(a!.dim, [a!], (k) => e.at(a!, k)),
  tile: (e, args) => e.emit(isa.OP_ROWSUM, 1, args),
};

/** The largest (`max`) or smallest (`min`) component of a vector, as one value (NaN if any
 *  component is NaN). Its cotangent is shared evenly by the components equal to the result (a
 *  subgradient at ties, as torch.amax / amin). Lowered as a pairwise tree of elementwise MAX / MIN
 *  over halves of the vector: log2(D) instructions in the tile program. */
function componentExtreme(
  name: string,
  opcode: number,
  pick: (a: number, b: number) => number,
  fn: string,
): OpDef<null> {
  return {
    name,
    shape: () => 1,
    reference: ([a]) => {
      let m = a![0]!;
      for (let k = 1; k < a!.length; k++) m = pick(m, a![k]!);
      return Float64Array.of(m);
    },
    print: ([a]) => `${name}(${a})`,
    vjp: ([a], ct, _p, out) => {
      const hit = op2(eq, a!, out);
      return [times(ct, divide(hit, op1(sum, hit)))];
    },
    tile: (e, [a]) => {
      let cur = a!;
      while (cur.dim > 1) {
        const half = Math.floor(cur.dim / 2);
        const next = e.alloc(cur.dim - half, [cur]);
        e.emitInto(opcode, e.view(next, 0, half), [e.view(cur, 0, half), e.view(cur, half, half)]);
        if (cur.dim % 2 === 1) e.emitInto(isa.OP_COPY, e.view(next, half, 1), [e.view(cur, 2 * half, 1)]);
        cur = next;
      }
      return cur;
    },
    // A running extreme over the components (the emitter unrolls it or loops, by dimension).
    wgsl: (e, [a]) => e.extreme(a!.dim, [a!], fn === 'lt_max' ? 'max' : 'min', (k) => e.at(a!, k)),
  };
}

/** `maxComponent()`: the largest component (a formula of dimension 1; not a reduction). */
export const maxComponent = componentExtreme('maxComponent', isa.OP_MAX, Math.max, 'lt_max');
/** `minComponent()`: the smallest component (a formula of dimension 1; not a reduction). */
export const minComponent = componentExtreme('minComponent', isa.OP_MIN, Math.min, 'lt_min');

/** `transpose(rows, cols)`: the operand holds a rows x cols matrix row-major (dimension rows*cols);
 *  the result is its cols x rows transpose, row-major. */
export const transpose: OpDef<{ rows: number; cols: number }> = {
  name: 'transpose',
  shape: ([d], { rows, cols }) => {
    requireInteger('transpose', 'rows', rows, 1);
    requireInteger('transpose', 'cols', cols, 1);
    if (rows * cols !== d) {
      throw new ShapeError(
        `transpose: a ${rows} x ${cols} matrix has ${rows * cols} components, but the operand has dimension ${d}`,
      );
    }
    return d!;
  },
  reference: ([a], { rows, cols }) => {
    const out = new Float64Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a![r * cols + c]!;
    return out;
  },
  print: ([a], { rows, cols }) => `transpose(${a}, ${rows}x${cols})`,
  vjp: (_a, ct, { rows, cols }) => [apply(transpose, [ct], { rows: cols, cols: rows })],
  wgsl: (e, [a], { rows, cols }, dim) =>
    e.map(dim, [a!], (k) => e.at(a!, e.index(e.remainder(k, rows), cols, e.quotient(k, rows)))),
  tile: (e, [a], { rows, cols }, dim) => {
    // A row or column vector is its own transpose (same row-major layout).
    if (rows === 1 || cols === 1) return a!;
    const out = e.alloc(dim, [a!]);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++)
        e.emitInto(isa.OP_COPY, e.view(out, c * rows + r, 1), [e.view(a!, r * cols + c, 1)]);
    }
    return out;
  },
};

export const dotProduct: OpDef<null> = {
  name: 'dot',
  shape: (dims) => {
    sameDims('dot', dims);
    return 1;
  },
  reference: ([a, b]) => Float64Array.of(dot(a!, b!)),
  print: ([a, b]) => `<${a}, ${b}>`,
  vjp: ([a, b], ct) => [times(ct, b!), times(ct, a!)],
  wgsl: (e, [a, b]) => e.sum(a!.dim, [a!, b!], (k) => `(${e.at(a!, k)} * ${e.at(b!, k)})`),
  tile: (e, args) => e.emit(isa.OP_DOT, 1, args),
};

export const sqNorm2: OpDef<null> = {
  name: 'sqNorm2',
  shape: () => 1,
  reference: ([a]) => Float64Array.of(dot(a!, a!)),
  print: ([a]) => `|${a}|^2`,
  vjp: ([a], ct) => [times(ct, times(scalar(2), a!))],
  wgsl: (e, [a]) => e.sum(a!.dim, [a!], (k) => `lt_sq(${e.at(a!, k)})`),
  tile: (e, [a]) => e.emit(isa.OP_DOT, 1, [a!, a!]),
};

export const norm2: OpDef<null> = {
  name: 'norm2',
  shape: () => 1,
  reference: ([a]) => Float64Array.of(Math.sqrt(dot(a!, a!))),
  print: ([a]) => `|${a}|`,
  // a / |a|, which is 0 at a = 0: the gradient of a norm at zero is 0, never NaN.
  vjp: ([a], ct) => [times(ct, op1(normalize, a!))],
  wgsl: (e, [a]) => {
    const s = e.sum(a!.dim, [a!], (k) => `lt_sq(${e.at(a!, k)})`);
    return e.map(1, [s], () => `sqrt(${e.at(s, 0)})`);
  },
  tile: (e, [a]) => e.emit(isa.OP_SQRT, 1, [e.emit(isa.OP_DOT, 1, [a!, a!])]),
};

/** `normalize()`: a / |a|, and 0 where a = 0 (KeOps's convention through rsqrt). */
export const normalize: OpDef<null> = {
  name: 'normalize',
  shape: (dims) => dims[0]!,
  reference: ([a]) => {
    const n2 = dot(a!, a!);
    const s = n2 === 0 ? 0 : 1 / Math.sqrt(n2);
    return a!.map((v) => v * s);
  },
  print: ([a]) => `normalize(${a})`,
  // (ct - u <u, ct>) / |a| with u = a / |a|; 0 at a = 0 through rsqrt(0) = 0.
  vjp: ([a], ct, _p, out) => [times(minus(ct, times(out, op2(dotProduct, out, ct))), op1(rsqrt, op1(sqNorm2, a!)))],
  wgsl: (e, [a], _p, dim) => {
    const s = e.sum(a!.dim, [a!], (k) => `lt_sq(${e.at(a!, k)})`);
    const r = e.map(1, [s], () => `lt_rsqrt(${e.at(s, 0)})`);
    return e.map(dim, [a!, r], (k) => `(${e.at(a!, k)} * ${e.at(r, 0)})`);
  },
  tile: (e, [a], _p, dim) => e.emit(isa.OP_MUL, dim, [a!, e.emit(isa.OP_RSQRT, 1, [e.emit(isa.OP_DOT, 1, [a!, a!])])]),
};

export const sqDist: OpDef<null> = {
  name: 'sqDist',
  shape: (dims) => {
    sameDims('sqDist', dims);
    return 1;
  },
  reference: ([a, b]) => {
    let s = 0;
    for (let k = 0; k < a!.length; k++) s += (a![k]! - b![k]!) ** 2;
    return Float64Array.of(s);
  },
  print: ([a, b]) => `|${a} - ${b}|^2`,
  vjp: ([a, b], ct) => {
    const g = times(ct, times(scalar(2), op2(sub, a!, b!)));
    return [g, negate(g)];
  },
  wgsl: (e, [a, b]) => e.sum(a!.dim, [a!, b!], (k) => `lt_sq(${e.at(a!, k)} - ${e.at(b!, k)})`),
  tile: (e, args) => e.emit(isa.OP_SQDIST, 1, args),
};

/** How a weight s acts on a vector of dimension D: isotropic (dim 1), diagonal (D) or full (D*D). */
function weightKind(name: string, dimX: number, dimS: number): 'iso' | 'diag' | 'full' {
  if (dimS === 1) return 'iso';
  if (dimS === dimX) return 'diag';
  if (dimS === dimX * dimX) return 'full';
  throw new ShapeError(
    `${name}: the weight has dimension ${dimS}; for vectors of dimension ${dimX} it must be 1, ${dimX} or ${dimX * dimX}`,
  );
}

function weightedSqNormRef(x: Float64Array, s: Float64Array): number {
  const D = x.length;
  switch (weightKind('weightedSqNorm', D, s.length)) {
    case 'iso':
      return s[0]! * dot(x, x);
    case 'diag': {
      let t = 0;
      for (let k = 0; k < D; k++) t += s[k]! * x[k]! * x[k]!;
      return t;
    }
    case 'full': {
      let t = 0;
      for (let r = 0; r < D; r++) for (let c = 0; c < D; c++) t += x[r]! * s[r * D + c]! * x[c]!;
      return t;
    }
  }
}

/** x^T S x for the full weight: S x row by row, then a dot product with x. */
function tileFullQuadratic(e: TileEmitter, x: TileReg, s: TileReg): TileReg {
  const D = x.dim;
  const sx = e.alloc(D, [x, s]);
  for (let r = 0; r < D; r++) e.emitInto(isa.OP_DOT, e.view(sx, r, 1), [e.view(s, r * D, D), x]);
  return e.emit(isa.OP_DOT, 1, [x, sx]);
}

/** x^T S x in WGSL: S x component by component, then a dot product with x. */
function wgslFullQuadratic(e: WgslEmitter, x: WgslValue, s: WgslValue): WgslValue {
  const D = x.dim;
  const sx = e.map(D, [x, s], (r) =>
    e.at(
      e.sum(D, [x, s], (c) => `(${e.at(s, e.index(r, D, c))} * ${e.at(x, c)})`),
      0,
    ),
  );
  return e.sum(D, [x, sx], (r) => `(${e.at(x, r)} * ${e.at(sx, r)})`);
}

/** Cotangents of (x, s) for the weighted squared norm of x. */
function weightedSqNormVjp(x: Node, s: Node, ct: Node): [Node, Node] {
  switch (weightKind('weightedSqNorm', x.dim, s.dim)) {
    case 'iso':
      return [times(ct, times(scalar(2), times(s, x))), times(ct, op1(sqNorm2, x))];
    case 'diag':
      return [times(ct, times(scalar(2), times(s, x))), times(ct, op1(square, x))];
    case 'full':
      // x^T S x: d/dx = (S + S^T) x, d/dS = x (x) x
      return [times(ct, plus(op2(matVecMult, s, x), op2(vecMatMult, x, s))), times(ct, op2(tensorProd, x, x))];
  }
}

/** `weightedSqNorm(s)`: s|x|^2, sum_k s_k x_k^2 or x^T S x, as s has dimension 1, D or D*D. */
export const weightedSqNorm: OpDef<null> = {
  name: 'weightedSqNorm',
  shape: ([dx, ds]) => {
    weightKind('weightedSqNorm', dx!, ds!);
    return 1;
  },
  reference: ([x, s]) => Float64Array.of(weightedSqNormRef(x!, s!)),
  print: ([x, s]) => `|${x}|^2_${s}`,
  vjp: ([x, s], ct) => weightedSqNormVjp(x!, s!, ct),
  wgsl: (e, [x, s]) => {
    switch (weightKind('weightedSqNorm', x!.dim, s!.dim)) {
      case 'iso': {
        const q = e.sum(x!.dim, [x!], (k) => `lt_sq(${e.at(x!, k)})`);
        return e.map(1, [s!, q], () => `(${e.at(s!, 0)} * ${e.at(q, 0)})`);
      }
      case 'diag':
        return e.sum(x!.dim, [x!, s!], (k) => `(${e.at(s!, k)} * lt_sq(${e.at(x!, k)}))`);
      case 'full':
        return wgslFullQuadratic(e, x!, s!);
    }
  },
  tile: (e, [x, s]) => {
    switch (weightKind('weightedSqNorm', x!.dim, s!.dim)) {
      case 'iso':
        return e.emit(isa.OP_MUL, 1, [s!, e.emit(isa.OP_DOT, 1, [x!, x!])]);
      case 'diag':
        return e.emit(isa.OP_DOT, 1, [s!, e.emit(isa.OP_SQUARE, x!.dim, [x!])]);
      case 'full':
        return tileFullQuadratic(e, x!, s!);
    }
  },
};

/** `weightedSqDist(y, s)`: the weighted squared norm of x - y. */
export const weightedSqDist: OpDef<null> = {
  name: 'weightedSqDist',
  shape: ([dx, dy, ds]) => {
    sameDims('weightedSqDist', [dx!, dy!]);
    weightKind('weightedSqDist', dx!, ds!);
    return 1;
  },
  reference: ([x, y, s]) =>
    Float64Array.of(
      weightedSqNormRef(
        x!.map((v, k) => v - y![k]!),
        s!,
      ),
    ),
  print: ([x, y, s]) => `|${x} - ${y}|^2_${s}`,
  vjp: ([x, y, s], ct) => {
    const [gx, gs] = weightedSqNormVjp(op2(sub, x!, y!), s!, ct);
    return [gx!, negate(gx!), gs!];
  },
  wgsl: (e, [x, y, s]) => {
    switch (weightKind('weightedSqDist', x!.dim, s!.dim)) {
      case 'iso': {
        const q = e.sum(x!.dim, [x!, y!], (k) => `lt_sq(${e.at(x!, k)} - ${e.at(y!, k)})`);
        return e.map(1, [s!, q], () => `(${e.at(s!, 0)} * ${e.at(q, 0)})`);
      }
      case 'diag':
        return e.sum(x!.dim, [x!, y!, s!], (k) => `(${e.at(s!, k)} * lt_sq(${e.at(x!, k)} - ${e.at(y!, k)}))`);
      case 'full':
        return wgslFullQuadratic(
          e,
          e.map(x!.dim, [x!, y!], (k) => `(${e.at(x!, k)} - ${e.at(y!, k)})`),
          s!,
        );
    }
  },
  tile: (e, [x, y, s]) => {
    switch (weightKind('weightedSqDist', x!.dim, s!.dim)) {
      case 'iso':
        return e.emit(isa.OP_MUL, 1, [s!, e.emit(isa.OP_SQDIST, 1, [x!, y!])]);
      case 'diag':
        return e.emit(isa.OP_WSQDIST, 1, [x!, y!, s!]);
      case 'full':
        return tileFullQuadratic(e, e.emit(isa.OP_SUB, x!.dim, [x!, y!]), s!);
    }
  },
};

/** `elem(k)`: component k. */
function placeInZeros(ct: Node, start: number, dim: number): Node {
  let out = ct;
  if (start > 0) out = op2(concat, zeros(start), out);
  if (start + ct.dim < dim) out = op2(concat, out, zeros(dim - start - ct.dim));
  return out;
}

export const elem: OpDef<{ index: number }> = {
  name: 'elem',
  shape: ([d], { index }) => {
    requireInteger('elem', 'the index', index, 0);
    if (index >= d!) throw new ShapeError(`elem: index ${index} is out of range for dimension ${d}`);
    return 1;
  },
  reference: ([a], { index }) => Float64Array.of(a![index]!),
  print: ([a], { index }) => `${a}[${index}]`,
  vjp: ([a], ct, { index }) => [placeInZeros(ct, index, a!.dim)],
  wgsl: (e, [a], { index }) => e.view(a!, index, 1),
  tile: (e, [a], { index }) => e.view(a!, index, 1),
};

/** `extract(start, length)`: components [start, start + length). */
export const extract: OpDef<{ start: number; length: number }> = {
  name: 'extract',
  shape: ([d], { start, length }) => {
    requireInteger('extract', 'start', start, 0);
    requireInteger('extract', 'length', length, 1);
    if (start + length > d!) {
      throw new ShapeError(`extract: components [${start}, ${start + length}) are out of range for dimension ${d}`);
    }
    return length;
  },
  reference: ([a], { start, length }) => a!.slice(start, start + length),
  print: ([a], { start, length }) => `${a}[${start}:${start + length}]`,
  vjp: ([a], ct, { start }) => [placeInZeros(ct, start, a!.dim)],
  wgsl: (e, [a], { start, length }) => e.view(a!, start, length),
  tile: (e, [a], { start, length }) => e.view(a!, start, length),
};

/** `concat(b)`: [a, b]. */
export const concat: OpDef<null> = {
  name: 'concat',
  shape: ([da, db]) => da! + db!,
  reference: ([a, b]) => {
    const out = new Float64Array(a!.length + b!.length);
    out.set(a!);
    out.set(b!, a!.length);
    return out;
  },
  print: ([a, b]) => `[${a}, ${b}]`,
  vjp: ([a, b], ct) => [
    apply(extract, [ct], { start: 0, length: a!.dim }),
    apply(extract, [ct], { start: a!.dim, length: b!.dim }),
  ],
  wgsl: (e, [a, b]) => e.concat([a!, b!]),
  tile: (e, [a, b], _p, dim) => {
    const out = e.alloc(dim, [a!, b!]);
    e.emitInto(isa.OP_COPY, e.view(out, 0, a!.dim), [a!]);
    e.emitInto(isa.OP_COPY, e.view(out, a!.dim, b!.dim), [b!]);
    return out;
  },
};

/** `oneHot(dim)`: a vector of `dim` components, 1 at round(a), 0 elsewhere. */
export const oneHot: OpDef<{ dim: number }> = {
  name: 'oneHot',
  shape: ([d], { dim }) => {
    if (d !== 1) throw new ShapeError(`oneHot: the operand must have dimension 1, got ${d}`);
    requireInteger('oneHot', 'dim', dim, 1);
    return dim;
  },
  reference: ([a], { dim }) => {
    const out = new Float64Array(dim);
    const k = roundHalfAway(a![0]!);
    if (k >= 0 && k < dim) out[k] = 1;
    return out;
  },
  print: ([a], { dim }) => `onehot(${a}, ${dim})`,
  vjp: () => [null],
  wgsl: (e, [a], _p, dim) => e.map(dim, [a!], (k) => `select(0.0, 1.0, lt_round(${e.at(a!, 0)}) == ${e.float(k)})`),
  tile: (e, args, _p, dim) => e.emit(isa.OP_ONEHOT, dim, args),
};

/** `A.matVecMult(v)`: A holds an m x n matrix row-major (dimension m*n), v has dimension n. */
export const matVecMult: OpDef<null> = {
  name: 'matVecMult',
  shape: ([dA, dv]) => {
    if (dA! % dv! !== 0) {
      throw new ShapeError(`matVecMult: the matrix dimension ${dA} is not a multiple of the vector dimension ${dv}`);
    }
    return dA! / dv!;
  },
  reference: ([A, v]) => {
    const n = v!.length;
    const m = A!.length / n;
    const out = new Float64Array(m);
    for (let r = 0; r < m; r++) out[r] = dot(A!.subarray(r * n, r * n + n), v!);
    return out;
  },
  print: ([A, v]) => `(${A} . ${v})`,
  // d/dA = ct (x) v, d/dv = A^T ct = ct . A
  vjp: ([A, v], ct) => [op2(tensorProd, ct, v!), op2(vecMatMult, ct, A!)],
  wgsl: (e, [A, v], _p, m) => {
    const n = v!.dim;
    return e.map(m, [A!, v!], (r) =>
      e.at(
        e.sum(n, [A!, v!], (c) => `(${e.at(A!, e.index(r, n, c))} * ${e.at(v!, c)})`),
        0,
      ),
    );
  },
  tile: (e, [A, v], _p, m) => {
    const n = v!.dim;
    const out = e.alloc(m, [A!, v!]);
    for (let r = 0; r < m; r++) e.emitInto(isa.OP_DOT, e.view(out, r, 1), [e.view(A!, r * n, n), v!]);
    return out;
  },
};

/** `v.vecMatMult(A)`: v has dimension n, A holds an n x m matrix row-major (dimension n*m). */
export const vecMatMult: OpDef<null> = {
  name: 'vecMatMult',
  shape: ([dv, dA]) => {
    if (dA! % dv! !== 0) {
      throw new ShapeError(`vecMatMult: the matrix dimension ${dA} is not a multiple of the vector dimension ${dv}`);
    }
    return dA! / dv!;
  },
  reference: ([v, A]) => {
    const n = v!.length;
    const m = A!.length / n;
    const out = new Float64Array(m);
    for (let r = 0; r < n; r++) for (let c = 0; c < m; c++) out[c] = out[c]! + v![r]! * A![r * m + c]!;
    return out;
  },
  print: ([v, A]) => `(${v} . ${A})`,
  // d/dv = A ct, d/dA = v (x) ct
  vjp: ([v, A], ct) => [op2(matVecMult, A!, ct), op2(tensorProd, v!, ct)],
  wgsl: (e, [v, A], _p, m) => {
    const n = v!.dim;
    return e.map(m, [v!, A!], (c) =>
      e.at(
        e.sum(n, [v!, A!], (r) => `(${e.at(v!, r)} * ${e.at(A!, e.index(r, m, c))})`),
        0,
      ),
    );
  },
  tile: (e, [v, A], _p, m) => {
    // out = sum_r v[r] * A[r, :], one broadcast multiply-add per row of A.
    const n = v!.dim;
    let out = e.emit(isa.OP_MUL, m, [e.view(v!, 0, 1), e.view(A!, 0, m)]);
    for (let r = 1; r < n; r++) {
      out = e.emit(isa.OP_ADD, m, [out, e.emit(isa.OP_MUL, m, [e.view(v!, r, 1), e.view(A!, r * m, m)])]);
    }
    return out;
  },
};

/** `a.tensorProd(b)`: the outer product, row-major (dimension da*db). */
export const tensorProd: OpDef<null> = {
  name: 'tensorProd',
  shape: ([da, db]) => da! * db!,
  reference: ([a, b]) => {
    const out = new Float64Array(a!.length * b!.length);
    for (let r = 0; r < a!.length; r++) for (let c = 0; c < b!.length; c++) out[r * b!.length + c] = a![r]! * b![c]!;
    return out;
  },
  print: ([a, b]) => `(${a} (x) ${b})`,
  // d/da = ct (as a matrix) . b, d/db = a . ct
  vjp: ([a, b], ct) => [op2(matVecMult, ct, b!), op2(vecMatMult, a!, ct)],
  wgsl: (e, [a, b], _p, dim) => {
    const nb = b!.dim;
    return e.map(dim, [a!, b!], (k) => `(${e.at(a!, e.quotient(k, nb))} * ${e.at(b!, e.remainder(k, nb))})`);
  },
  tile: (e, [a, b], _p, dim) => {
    const out = e.alloc(dim, [a!, b!]);
    const nb = b!.dim;
    for (let r = 0; r < a!.dim; r++) e.emitInto(isa.OP_MUL, e.view(out, r * nb, nb), [e.view(a!, r, 1), b!]);
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------
// Arithmetic builders for derivative rules and helpers, with the obvious simplifications (x + 0, x * 1,
// x * 0) so that gradients stay small formulas. They live beside the records they build (function
// declarations: usable by the rules above, which run only when a formula is differentiated).

/** a + b, broadcasting dimension 1. */
export function plus(a: FormulaNode, b: FormulaNode): FormulaNode {
  if (isZero(a) && a.dim <= b.dim) return b;
  if (isZero(b) && b.dim <= a.dim) return a;
  return apply(add, [a, b], null);
}

export function minus(a: FormulaNode, b: FormulaNode): FormulaNode {
  if (isZero(b) && b.dim <= a.dim) return a;
  if (isZero(a) && a.dim <= b.dim) return negate(b);
  return apply(sub, [a, b], null);
}

export function times(a: FormulaNode, b: FormulaNode): FormulaNode {
  const dim = Math.max(a.dim, b.dim);
  if (isZero(a) || isZero(b)) return zeros(dim);
  if (isOne(a) && a.dim <= b.dim) return b;
  if (isOne(b) && b.dim <= a.dim) return a;
  return apply(mul, [a, b], null);
}

export function divide(a: FormulaNode, b: FormulaNode): FormulaNode {
  if (isZero(a)) return zeros(Math.max(a.dim, b.dim));
  if (isOne(b) && b.dim <= a.dim) return a;
  return apply(div, [a, b], null);
}

export function negate(a: FormulaNode): FormulaNode {
  if (isZero(a)) return a;
  return apply(neg, [a], null);
}

/** The cotangent of an operand of dimension `dim` from one of the output's dimension: operands of
 *  dimension 1 that were broadcast receive the sum of the components. */
export function unbroadcast(ct: FormulaNode, dim: number): FormulaNode {
  if (ct.dim === dim) return ct;
  if (dim === 1) return apply(sum, [ct], null);
  // A dimension-1 cotangent for a vector operand: repeat it.
  return times(ct, constant(new Array<number>(dim).fill(1)));
}
