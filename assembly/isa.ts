// The tile-program instruction set shared by the TypeScript compiler (src/fallback/compile.ts) and the
// AssemblyScript interpreter (assembly/kernel.ts). This file is valid both as TypeScript and as
// AssemblyScript: numeric constants only, no types of either language.
//
// WHY AN INTERPRETER OF BLOCK INSTRUCTIONS
// A formula is compiled (in JavaScript, in well under a millisecond) into a short list of
// instructions, each of which operates on a whole *block* of B inner indices j at once with 128-bit
// SIMD. The interpreter decodes an instruction once per block, so its dispatch cost is amortised over
// B/lanes vector iterations; this is the same multi-pass structure a hand-written C kernel over a j-block
// has (see ../shared/bench/native/kernels.c), so no run-time code generation is needed and the first
// call of a new formula costs nothing extra. Hot patterns get fused instructions (SQDIST, DOT) that keep
// partial sums in registers across the dimension loop.
//
// MEMORY
// JavaScript lays out all of linear memory above the kernel's static data (`heapBase()`); the kernel
// allocates nothing. Pointers are byte offsets (i32). T is f32 (ELT = 4, L = 4 lanes) or f64 (ELT = 8,
// L = 2 lanes), chosen by the program header.
//
// "Outer" index i: the index the result is indexed by (N of them). "Inner" index j: the index reduced
// over (M of them), processed in blocks of B (B is a multiple of 4). For axis = 1, outer = i and inner = j;
// for axis = 0 the compiler swaps the roles.

// ---------------------------------------------------------------------------------------------------
// Program header: i32 words at `prog`.
export const H_DTYPE = 0; //      0 = f32, 1 = f64
export const H_N_OUTER = 1; //    N
export const H_N_INNER = 2; //    M (>= 1)
export const H_BLOCK = 3; //      B, multiple of 4
export const H_N_REGS = 4; //     number of registers
export const H_REGS = 5; //       byte pointer of the register table (REG_WORDS i32 words per register)
export const H_OUTER_CODE = 6; // byte pointer of the outer code: run once per outer index i
export const H_OUTER_LEN = 7; //  number of instructions in the outer code
export const H_INNER_CODE = 8; // byte pointer of the inner code: run once per inner block
export const H_INNER_LEN = 9; //  number of instructions in the inner code
export const H_RED = 10; //       reduction kind (RED_*)
export const H_RED_F = 11; //     register holding the reduced formula F
export const H_RED_G = 12; //     register holding the weight G (RED_LSE_W, RED_SSMW, RED_SSMW_LSE) or -1
export const H_RED_K = 13; //     K for the K-min family, else 0
export const H_OUT_VAL = 14; //   byte pointer of output values (T), or 0 when the reduction has none
export const H_OUT_IDX = 15; //   byte pointer of output indices (i32), or 0 when the reduction has none
export const H_OUT_DIM = 16; //   values (and indices) written per outer index
export const H_ACC = 17; //       byte pointer of a scratch area for reduction state (16-byte aligned)
export const H_ACC_BYTES = 18; // its size; run() returns ERR_ACC if the reduction needs more
// Block-sparse reductions. When H_RANGES is 0 every pair is visited and run(prog, iStart, iEnd)
// processes outer indices [iStart, iEnd). Otherwise run(prog, cStart, cEnd) processes the clusters
// [cStart, cEnd): cluster c owns the outer indices [R[2c], R[2c+1]) (R at H_RANGES) and visits, for
// each of them, the inner ranges [S[2r], S[2r+1]) for r in [slices[c-1], slices[c]) (slices at
// H_SLICES, slices[-1] = 0; S at H_INNER_RANGES), in that order, accumulating as if they were one
// sequence (indices reported are the true inner indices). Inner ranges need not be tile-aligned: the
// kernel cuts them at tile boundaries. Outer indices outside every cluster are not written.
export const H_RANGES = 19;
export const H_N_CLUSTERS = 20;
export const H_SLICES = 21;
export const H_INNER_RANGES = 22;
// A run over a piece [j0, j0 + M) of a longer inner range (worker-job.ts runInnerRange points the
// inner registers j0 rows in): j0 and the whole range's length (0: the run is the whole range). The
// blocked tiles' centre (blocked.ts CENTRING) is taken from the whole range's first rows, so that a
// result never depends on how a run was cut into pieces.
export const H_INNER_BEFORE = 23;
export const H_INNER_TOTAL = 24;
// RED_SUM_COLS: byte pointer of the column sums (T), laid out like an inner variable of dim(G) rows
// (element j of row k at ((b*dim(G) + k)*B + t)*ELT, the last tile padded); the caller zeroes it.
export const H_COLS = 25;
export const HEADER_WORDS = 28;
// Registers a program may have (the kernel's resolved register table is static: MAX_REGS in
// kernel.ts must equal this).
export const MAX_REGS = 16384;

// ---------------------------------------------------------------------------------------------------
// Register table: REG_WORDS i32 words per register: [kind, dim, base, extra].
// "Uniform" registers hold one value per row (constant over j within an outer index); "block"
// registers hold B values per row (one per inner index of the current block).
export const REG_WORDS = 4;
export const R_KIND = 0;
export const R_DIM = 1;
export const R_BASE = 2;
export const R_EXTRA = 3;

// Uniform, row k at base + k*ELT. Parameters and constants (written by JS) and scratch for values
// computed by the outer code.
export const REG_UNIFORM = 0;
// Uniform, an outer variable stored row-major: row k at base + (i*dim + k)*ELT.
export const REG_OUTER_VAR = 1;
// Block, an inner variable stored in tiles of B: element j of row k at
// base + ((b*dim + k)*B + t)*ELT where b = j / B, t = j % B. The last tile is zero-padded.
export const REG_INNER_VAR = 2;
// Block, scratch: element t of row k at base + (k*B + t)*ELT.
export const REG_BLOCK = 3;
// A view of rows [extra, extra + dim) of register `base` (whose index is smaller than the view's own).
// It is uniform or block as its parent is; writing to a view writes to the parent's rows.
export const REG_VIEW = 4;

// ---------------------------------------------------------------------------------------------------
// Instructions: INSTR_WORDS i32 words: [op, dst, a, b, c, aux, 0, 0].
// Every instruction writes all dim(dst) rows of dst. For elementwise ops each operand has either
// dim(dst) rows or 1 row (broadcast to all rows). In the inner code dst is always a block register
// and operands are block or uniform (a uniform row is splatted); in the outer code every register is
// uniform. Elementwise ops may compute whole vectors past the block's end (up to B): scratch and
// tiles are padded, and reductions only read the first n = min(B, M - j0) entries.
export const INSTR_WORDS = 8;
export const I_OP = 0;
export const I_DST = 1;
export const I_A = 2;
export const I_B = 3;
export const I_C = 4;
export const I_AUX = 5;

// OPCODE BANDS. Opcodes are numbered in one band per class: unary [UNARY_FIRST, UNARY_LAST], binary,
// ternary, row reductions. The kernel takes an opcode's class (its operand count and loop) from its
// band alone (opClass in assembly/ops.ts reads only the bounds below), so a new opcode goes at the
// end of its band and moves that band's *_LAST to it; nothing else has a range to update.
// tests/opcodes.test.ts enumerates every OP_* constant of this file and fails when one lies outside
// the bands, when a band has a hole or its *_LAST is not its last opcode, when bands overlap, or when
// the kernel rejects or ignores an opcode.
export const UNARY_FIRST = 1;
export const BINARY_FIRST = 32;
export const TERNARY_FIRST = 48;
export const ROWRED_FIRST = 64;
export const ROWRED_CAPACITY_END = 80; // first opcode past the row-reduction band

// Unary, dst = f(a).
export const OP_COPY = 1; //      a
export const OP_NEG = 2; //       -a
export const OP_ABS = 3; //       |a|
export const OP_EXP = 4; //       exp(a)
export const OP_LOG = 5; //       log(a): -inf at 0, NaN below 0
export const OP_SQRT = 6; //      sqrt(a)
export const OP_RSQRT = 7; //     1/sqrt(a), and 0 where a == 0 (KeOps convention)
export const OP_SQUARE = 8; //    a*a
export const OP_INV = 9; //       1/a
export const OP_SIN = 10; //      sin(a)
export const OP_COS = 11; //      cos(a)
export const OP_SIGN = 12; //     -1, 0 or 1
export const OP_STEP = 13; //     0 where a < 0, else 1
export const OP_RELU = 14; //     max(a, 0)
export const OP_XLOGX = 15; //    a*log(a), and 0 where a == 0
export const OP_SINXDIVX = 16; // sin(a)/a, and 1 where a == 0
export const OP_ROUND = 17; //    round(a * 10^aux) / 10^aux, halves away from zero (aux may be <= 0)
export const OP_POW = 18; //      a^aux for an integer aux (negative allowed: 1/a^-aux), by repeated squaring
export const OP_ONEHOT = 19; //   a has 1 row; dst row k = 1 where round(a) == k, else 0
export const OP_FLOOR = 20; //    floor(a)
export const OP_ATAN = 21; //     atan(a)
export const OP_ASIN = 22; //     asin(a): NaN for |a| > 1
export const OP_ACOS = 23; //     acos(a): NaN for |a| > 1
export const UNARY_LAST = OP_ACOS;
// Binary, dst = f(a, b).
export const OP_ADD = 32;
export const OP_SUB = 33;
export const OP_MUL = 34;
export const OP_DIV = 35;
export const OP_POWF = 36; //     exp(b * log(a))
export const OP_EQ = 37; //       1 or 0
export const OP_NE = 38;
export const OP_LT = 39;
export const OP_LE = 40;
export const OP_GT = 41;
export const OP_GE = 42;
export const OP_MIN = 43; //      min(a, b)
export const OP_MAX = 44; //      max(a, b)
export const OP_ATAN2 = 45; //    atan2(a, b): the angle of the point (b, a), in [-pi, pi], as Math.atan2
export const BINARY_LAST = OP_ATAN2;
// Ternary, dst = f(a, b, c).
export const OP_CLAMP = 48; //    min(max(a, b), c)
export const OP_IFELSE = 49; //   a >= 0 ? b : c
export const OP_MOD = 50; //      a - b * floor((a - c) / b)
export const TERNARY_LAST = OP_MOD;
// Row reductions: dst has 1 row.
export const OP_ROWSUM = 64; //   sum over the rows k of a[k]
export const OP_DOT = 65; //      sum_k a[k] * b[k]   (a and b have the same number of rows, or one has 1)
export const OP_SQDIST = 66; //   sum_k (a[k] - b[k])^2
export const OP_WSQDIST = 67; //  sum_k c[k] * (a[k] - b[k])^2  (c has dim(a) rows or 1)
export const ROWRED_LAST = OP_WSQDIST;

// ---------------------------------------------------------------------------------------------------
// Reductions over the inner index, for each outer index i. F has d rows, G has e rows.
// Output values are T at H_OUT_VAL + (i*outDim + q)*ELT, indices i32 at H_OUT_IDX + (i*outDim + q)*4.
export const RED_SUM = 1; //        out[i,k] = sum_j F[k]                                (outDim d)
export const RED_LSE = 2; //        out[i,k] = log sum_j exp F[k]                        (outDim d)
export const RED_LSE_W = 3; //      out[i,k] = log sum_j exp(F) G[k], F has 1 row       (outDim e)
export const RED_SSMW = 4; //       out[i,k] = sum_j exp(F) G[k] / sum_j exp(F), d = 1    (outDim e)
export const RED_MIN = 5; //        values                                              (outDim d)
export const RED_MAX = 6; //        values                                              (outDim d)
export const RED_ARGMIN = 7; //     indices                                             (outDim d)
export const RED_ARGMAX = 8; //     indices                                             (outDim d)
export const RED_MINARGMIN = 9; //  values and indices                                  (outDim d)
export const RED_MAXARGMAX = 10; // values and indices                                  (outDim d)
export const RED_KMIN = 11; //      K smallest values per row, ascending: q = t*d + k    (outDim K*d)
export const RED_ARGKMIN = 12; //   their indices                                       (outDim K*d)
export const RED_KMINARGKMIN = 13; // both                                              (outDim K*d)
export const RED_SUM_ACC64 = 14; //  RED_SUM accumulating every term in f64 (f32 programs; = RED_SUM in f64)
export const RED_SSMW_LSE = 15; //  RED_SSMW, then out[i,e] = m = max_j F, out[i,e+1] = sum_j exp(F - m)   (outDim e + 2)
// RED_SUM over j of F (outDim d), and at once, per inner index j, the sum over the outer indices i
// run of G (e rows) added into the column sums at H_COLS, in T, in increasing i: both axes of one
// formula in one sweep over the pairs (the attention backward: dq per row, [dk, dv] per column).
// Dense programs only (H_RANGES = 0).
export const RED_SUM_COLS = 16;
/** The range of valid reduction codes: a new code goes after RED_LAST and moves it. */
export const RED_FIRST = RED_SUM;
export const RED_LAST = RED_SUM_COLS;
// Semantics shared by the arg/min/max/K-min families: ties go to the lowest inner index; NaN values
// are never selected; a slot that no value fills (all NaN, or fewer than K non-NaN values) gets
// index -1 and value NaN. Sums are accumulated per block in T and across blocks in f64; log-sum-exp
// keeps a running (max, sum) pair in f64, rescaled when the max grows; an all -inf row gives -inf.

// ---------------------------------------------------------------------------------------------------
// run(prog, iStart, iEnd) return codes.
export const OK = 0;
export const ERR_BAD_PROGRAM = 1;
export const ERR_ACC = 2;
