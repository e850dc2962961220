import type { FormulaNode } from './formula.js';

// The shape of one operation record. Everything an operation means lives in its record (ops.ts):
// the shape rule, the float64 reference, the printed form and the lowering to each engine. Engines
// implement the small emitter interfaces below and never switch over operation names.

/** A value held by an engine while a formula runs: `dim` rows, each varying over the reduced index
 *  (`varying`) or constant over it. */
export interface TileReg {
  readonly dim: number;
  readonly varying: boolean;
}

/** What the WebAssembly tile compiler offers an operation to lower itself into instructions of the
 *  tile program (opcodes from assembly/isa.ts). */
export interface TileEmitter {
  /** Emits `opcode` into a new register of `dim` rows; it varies if any operand does. */
  emit(opcode: number, dim: number, args: readonly TileReg[], aux?: number): TileReg;
  /** Emits `opcode` writing into an existing register (or a view of one). */
  emitInto(opcode: number, dst: TileReg, args: readonly TileReg[], aux?: number): void;
  /** A new register, varying if any of `like` varies, to be filled through views and emitInto. */
  alloc(dim: number, like: readonly TileReg[]): TileReg;
  /** Rows [first, first + dim) of `reg`, without copying. */
  view(reg: TileReg, first: number, dim: number): TileReg;
  /** A constant vector. */
  constant(values: readonly number[]): TileReg;
}

/** A value held by the WGSL generator: `dim` f32 components, computed once per result row (when it
 *  does not depend on the reduced index) or once per pair. */
export interface WgslValue {
  readonly dim: number;
}

/** A component index in WGSL code: a number where the generator unrolls, else a WGSL u32 expression. */
export type WgslIndex = number | string;

/** What the WGSL generator (src/gpu/codegen.ts) offers an operation to lower itself. Bodies return f32
 *  WGSL expressions; they may call `map`/`sum` themselves (the statements then go inside the loop). */
export interface WgslEmitter {
  /** A new value of `dim` components, component k being `body(k)`; `args` are the values it reads. */
  map(dim: number, args: readonly WgslValue[], body: (k: WgslIndex) => string): WgslValue;
  /** A new value of one component: the sum over k < count of `body(k)`. */
  sum(count: number, args: readonly WgslValue[], body: (k: WgslIndex) => string): WgslValue;
  /** A new value of one component: the largest (`max`) or smallest (`min`) of body(k) over
   *  k < count, NaN if any of them is NaN (a tree when count is small, else a loop). */
  extreme(count: number, args: readonly WgslValue[], which: 'max' | 'min', body: (k: WgslIndex) => string): WgslValue;
  /** Component k of a value as an f32 expression; a dimension-1 value broadcasts (every k reads it). */
  at(value: WgslValue, k: WgslIndex): string;
  /** Index arithmetic a * scale + offset (folded when both are numbers). */
  index(a: WgslIndex, scale: number, offset: WgslIndex): WgslIndex;
  /** Integer quotient and remainder of an index by a positive constant. */
  quotient(a: WgslIndex, divisor: number): WgslIndex;
  remainder(a: WgslIndex, divisor: number): WgslIndex;
  /** An index as an f32 expression. */
  float(k: WgslIndex): string;
  /** An f32 literal. */
  literal(value: number): string;
  /** Components [first, first + dim) of a value, without copying. */
  view(value: WgslValue, first: number, dim: number): WgslValue;
  /** The components of the parts one after the other. */
  concat(parts: readonly WgslValue[]): WgslValue;
}

/** One operation. `P` holds its static parameters (an integer exponent, indices, ...). */
export interface OpDef<P = unknown> {
  /** The method name users call, e.g. 'sqDist'. */
  readonly name: string;
  /** Numbers written as operands of this operation may be +-Infinity: set where an infinite operand
   *  keeps the result meaningful (additions, selections, bounds, comparisons: a causal mask
   *  `c.ifElse(F, -Infinity)` or `F.add(-Infinity)` inside a log-sum-exp). Other operations refuse
   *  them with an InputError (0 * Infinity is NaN). NaN is refused everywhere. */
  readonly infiniteConstants?: boolean;
  /** Output dimension from the argument dimensions; throws a ShapeError naming the operation. */
  shape(argDims: readonly number[], params: P): number;
  /** Float64 reference for one (i, j) pair: argument vectors in, output vector out. */
  reference(args: readonly Float64Array[], params: P): Float64Array;
  /** Readable math form. */
  print(args: readonly string[], params: P, argDims: readonly number[]): string;
  /** Reverse-mode derivative: the cotangent of each argument (with the argument's dimension) given
   *  the cotangent `ct` of the output, as formulas; null where the output does not depend on an
   *  argument or is piecewise constant in it. `out` is the node itself, for rules that reuse it. */
  vjp(args: readonly FormulaNode[], ct: FormulaNode, params: P, out: FormulaNode): readonly (FormulaNode | null)[];
  /** Lowering to the WebAssembly tile program. */
  tile(emitter: TileEmitter, args: readonly TileReg[], params: P, outDim: number): TileReg;
  /** Lowering to WGSL for the WebGPU engine (src/gpu/codegen.ts); helper functions `lt_*` come from
   *  src/gpu/prelude.ts. */
  wgsl(emitter: WgslEmitter, args: readonly WgslValue[], params: P, outDim: number): WgslValue;
}

export { ShapeError } from './errors.js';
