// WGSL generation: one compute kernel per (formula structure, reduction, kernel configuration).
//
// THE KERNEL (a tiled all-pairs reduction, the KeOps scheme)
// One invocation owns one outer index i ("the i-side in registers"): it loads its outer variables
// and computes every sub-formula that does not depend on the reduced index once, before the loop.
// The reduced (inner) index runs over tiles of TILE rows: the workgroup copies the inner variables of
// a tile into workgroup memory (coalesced: the packed rows are contiguous), barriers, and every
// invocation evaluates the rest of the formula for each j of the tile from that shared copy and folds
// it into its reduction state. Sums and log-sum-exps first accumulate a tile in a small "tile state"
// and then merge it into the running state with Kahan compensation (the "tile partial + compensated
// merge" scheme keeps a float32 sum of 10^6 terms within 1e-5 of float64, as the WebAssembly
// engine's block sums do; tested), so the compensation costs per tile, not per pair. Log-sum-exp
// keeps a running max per tile (one exp per pair) and merges (max, sum) pairs the same way.
// When an inner tile does not fit in workgroup memory (very wide inner rows), or on CPU adapters
// (see engine.ts), the kernel reads the inner rows straight from the storage buffer ("direct").
//
// Long reductions are split into several dispatches over the inner index (see engine.ts); the
// running state is then saved to and restored from a state buffer between dispatches, which is how
// partial results are merged (sums add, log-sum-exp merges (max, sum) pairs, K-min merges lists).
//
// Block-sparse plans (plan.ranges): a workgroup takes a work item (up to one workgroup of rows of
// one cluster, and that cluster's list of inner ranges) from a table, so that all its invocations
// visit the same inner ranges and can share tiles; the ranges are visited in the order given.
//
// TILED KERNELS (large D: K-NN, K-means, kernel sums over D in the tens to thousands)
// When the formula's D-long part is a product of one outer and one inner variable (dot, sqDist,
// weightedSqDist with a parameter weight: core/pair-products.ts, the formula-level form of the rule
// the WebAssembly engine applies to its instructions in assembly/blocked.ts), the kernel computes
// those products as a small matrix product per tile, the SGEMM scheme: a workgroup of ti x tj
// invocations owns bi = ti * ri outer rows; for each tile of bj = tj * rj inner rows it stages chunks
// of dk components of the bi x's and the bj y's in workgroup memory, and each invocation accumulates
// an ri x rj block of products in registers (ri + rj reads of workgroup memory per ri * rj
// multiply-adds, instead of one read per multiply-add). The bi x bj products go to a product tile in
// workgroup memory; then the first bi invocations, one per outer row, evaluate the rest of the
// formula per pair from it and fold into the reduction exactly as the plain kernel does (same
// states, same order of j, so ties and NaN behave identically). sqDist is summed as (x - y)^2
// directly, never as |x|^2 + |y|^2 - 2 x.y: the direct form costs one more operation per component
// but has no cancellation, so no fallback is needed and the values are the plain path's up to the
// order of the additions (partial sums per chunk).
//
// Semantics follow assembly/isa.ts: ties go to the lowest (first visited) index, NaN is never
// selected, unfilled slots give index -1 and value NaN, an all -inf log-sum-exp gives -inf.
//
// FORMULA CODE
// Operation records lower themselves through the WgslEmitter below (the `wgsl` member of OpDef).
// Values of up to UNROLL components are held as scalar `let`s (registers); larger ones as private
// arrays filled by loops. Sub-formulas are shared by structural key, as in the WebAssembly compiler.
import { planStructureKey } from '../core/compile-cache.js';
import { postOrder, StructuralKeys, type FormulaNode, type Variable } from '../core/formula.js';
import type { WgslEmitter, WgslIndex, WgslValue } from '../core/op-def.js';
import { reductionHasIndices, reductionHasValues, type ReductionKind, type ReductionPlan } from '../core/reduction.js';
import { REDUCTIONS } from '../core/reduction-defs.js';
import { preludeFor } from './prelude.js';
import { rewriteFormula } from '../core/rewrite.js';
import { pairProducts, type PairProduct } from '../core/pair-products.js';

/** Values of at most this many components are unrolled into scalar registers (KeOps keeps x_i in
 *  registers the same way). Measured on SwiftShader at D = 50: 2.5x faster than loops over private
 *  arrays, and no slower to compile; beyond 64 the code size is not worth it. */
const UNROLL = 64;
/** Reduction states of at most this many components are updated by unrolled code. */
const UNROLL_STATE = 16;
/** Sums of more than UNROLL terms add blocks of this many terms apart (see Emitter.sum). */
const SUM_BLOCK = 64;

type Repr =
  | { readonly kind: 'scalars'; readonly names: readonly string[] }
  /** Computed where used: component k is `body(k)`, bound to a `let` in the block that reads it (once
   *  per block and index). Values of more than UNROLL components are held so: a loop over their
   *  components (a sum, a reduction window) computes each component inside the loop, and no D-sized
   *  array ever exists (a per-thread array of 10^4 f32 overflows the stack of SwiftShader's LLVM and
   *  spills to slow local memory on GPUs). */
  | { readonly kind: 'lazy'; readonly id: string; readonly body: (k: WgslIndex) => string }
  | { readonly kind: 'inner'; readonly offset: number }
  | { readonly kind: 'view'; readonly base: Val; readonly first: number };

interface Val extends WgslValue {
  readonly dim: number;
  /** Depends on the reduced index: computed per pair, inside the j loop. */
  readonly varying: boolean;
  readonly repr: Repr;
}

/** A per-pair sum computed over D-chunks: its partial sums per tile row live in `acc`. */
interface ChunkedSum {
  readonly acc: string;
  readonly args: readonly Val[];
  readonly body: (k: WgslIndex) => string;
}

interface Block {
  readonly lines: string[];
  readonly indent: string;
  /** The enclosing block (its earlier statements are in scope here), or null. */
  readonly parent: Block | null;
  /** Components of lazy values already bound in this block: `${id}|${index}` -> let name. */
  readonly lets: Map<string, string>;
}

const block = (indent: string, parent: Block | null): Block => ({ lines: [], indent, parent, lets: new Map() });

/** Where each variable's data lives in the packed buffers. */
export interface DataLayout {
  /** f32 words per packed outer row, and each outer variable's offset in it. */
  readonly outerStride: number;
  /** f32 words per packed inner row. */
  readonly innerStride: number;
  readonly offsets: ReadonlyMap<Variable, number>;
  /** Total parameter words (all parameters and constants, concatenated). */
  readonly paramWords: number;
}

export function dataLayout(plan: ReductionPlan): DataLayout {
  const offsets = new Map<Variable, number>();
  let outer = 0;
  let inner = 0;
  let params = 0;
  for (const { variable, role } of plan.variables) {
    if (role === 'outer') {
      offsets.set(variable, outer);
      outer += variable.dim;
    } else if (role === 'inner') {
      offsets.set(variable, inner);
      inner += variable.dim;
    } else {
      offsets.set(variable, params);
      params += variable.dim;
    }
  }
  return { outerStride: outer, innerStride: inner, offsets, paramWords: params };
}

/** How a kernel is shaped; chosen by the engine from the adapter's limits. */
export interface KernelConfig {
  /** Invocations per workgroup (= result rows per workgroup). */
  readonly workgroupSize: number;
  /** Inner rows per tile. */
  readonly tile: number;
  /** Inner tiles staged in workgroup memory (else read directly from the storage buffer). */
  readonly staged: boolean;
  /** The reduction runs in several dispatches, its state kept in a storage buffer between them. */
  readonly split: boolean;
  /** Block-sparse: workgroups take (rows, inner ranges) work items from a table (plan.ranges). */
  readonly sparse: boolean;
  /** Inner-parallel parts (see INNER PARTS): a dispatch's inner rows are cut into parts of U.item
   *  rows, one per workgroup row of the dispatch grid (workgroup_id.y), each part's reduction state
   *  kept in its own slot of the state buffer (carried over the dispatches of a split reduction, as
   *  `split` carries one) for the combine kernel. Absent: false. */
  readonly parts?: boolean;
  /** Rows too wide to stage whole: long sums over components (sqDist, dot, ...) run over D in
   *  chunks staged in workgroup memory instead (see DChunks); `tile` is then the rows per tile.
   *  Absent: false. */
  readonly dchunks?: boolean;
  /** Large-D products (dot, sqDist, weightedSqDist of x_i and y_j) computed as register-blocked
   *  tiles (see TILED KERNELS); `workgroupSize` is then ti * tj, `tile` the inner rows per tile (tj *
   *  rj), and a workgroup covers ti * ri result rows. Absent: none. */
  readonly tiled?: TiledBlock;
}

/** The register blocking of a tiled kernel: a workgroup of ti x tj invocations computes the
 *  products of bi = ti * ri outer rows by bj = tj * rj inner rows, invocation (a, b) the ri x rj
 *  block of rows a + r * ti and columns b + s * tj (strided, so that the invocations of a warp read
 *  consecutive words of workgroup memory), over D in chunks of dk components. */
export interface TiledBlock {
  readonly ti: number;
  readonly tj: number;
  readonly ri: number;
  readonly rj: number;
  readonly dk: number;
}

/** The blockings tried, largest first (the engine takes the first that fits the adapter's
 *  invocation and workgroup-memory limits). 64 x 64 products per tile with 4 x 4 per invocation is
 *  the classic SGEMM shape for 256 invocations: 16 multiply-adds per 8 workgroup-memory reads, and
 *  each staged word of x and y serves 64 pairs. Not tuned on hardware yet (see engine.ts). */
export const TILED_BLOCKS: readonly TiledBlock[] = [
  { ti: 16, tj: 16, ri: 4, rj: 4, dk: 16 },
  { ti: 16, tj: 16, ri: 2, rj: 2, dk: 16 },
  { ti: 8, tj: 8, ri: 2, rj: 2, dk: 8 },
  { ti: 4, tj: 4, ri: 2, rj: 2, dk: 8 },
];
/** Tiled kernels hold one product tile per product in workgroup memory: at most this many. */
export const MAX_TILED_PRODUCTS = 2;

/** What a tiled kernel computes: the rewritten formulas (lowered as they are), their products and
 *  the variables staged for them. */
export interface TiledProducts {
  readonly formula: FormulaNode;
  readonly weight: FormulaNode | null;
  readonly products: readonly PairProduct[];
  readonly outerVars: readonly Variable[];
  readonly innerVars: readonly Variable[];
  readonly dim: number;
}

/** The products a tiled kernel of `plan` would block (D >= minDim), or null when the plan does not
 *  fit the scheme: no product, more than MAX_TILED_PRODUCTS, products of different D, a windowed
 *  result (more than 64 components), or block-sparse ranges. */
export function tiledProducts(plan: ReductionPlan, minDim = 1): TiledProducts | null {
  if (plan.ranges !== null || reductionWindow(plan).count > 1) return null;
  const roles = new Map(plan.variables.map((v) => [v.variable, v.role] as const));
  const formula = rewriteFormula(plan.formula);
  const weight = plan.weight === null ? null : rewriteFormula(plan.weight);
  const roots = weight === null ? [formula] : [formula, weight];
  // Distinct by structure: the same product written twice is one tile.
  const keys = new StructuralKeys();
  const seen = new Set<string>();
  const products = pairProducts(roots, (v) => roles.get(v) ?? 'param', minDim).filter((p) => {
    const key = keys.of(p.node);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (products.length === 0 || products.length > MAX_TILED_PRODUCTS) return null;
  const dim = products[0]!.dim;
  if (products.some((p) => p.dim !== dim)) return null;
  const outerVars = [...new Set(products.map((p) => p.outer))];
  const innerVars = [...new Set(products.map((p) => p.inner))];
  return { formula, weight, products, outerVars, innerVars, dim };
}

/** f32 words of workgroup memory a tiled kernel declares: the staged chunks of x and y (rows
 *  padded by one word against bank conflicts) and one product tile per product. */
export function tiledWords(t: TiledProducts, b: TiledBlock): number {
  const bi = b.ti * b.ri;
  const bj = b.tj * b.rj;
  return (t.outerVars.length * (bi + 1) + t.innerVars.length * (bj + 1)) * b.dk + t.products.length * bi * (bj + 1);
}

/** Components per D-chunk of a chunked sum (unrolled: x_i's chunk is held in registers). */
export const DCHUNK = 16;
/** Rows per tile of a chunked sum at most (each invocation keeps one partial sum per row). */
export const DCHUNK_ROWS = 32;

/** Which buffers a kernel binds (the uniform block, binding 0, always). */
export interface KernelBindings {
  readonly outer: boolean; //   1
  readonly inner: boolean; //   2
  readonly params: boolean; //  3
  readonly values: boolean; //  4
  readonly indices: boolean; // 5
  readonly state: boolean; //   6
  readonly sparse: boolean; //  7 (work items) and 8 (inner ranges)
}

export interface GeneratedKernel {
  readonly code: string;
  readonly bindings: KernelBindings;
  /** u32 words of reduction state per result row (the state buffer's row stride). */
  readonly stateWords: number;
}

/** Bytes of the uniform block: nOuter, nInner, jRead, jGlobal, flags, item, inf, nan. `item` is the
 *  block-sparse kernel's first work item, or the inner rows per part of an inner-parts kernel. */
export const UNIFORM_BYTES = 32;
export const FLAG_FIRST = 1;
export const FLAG_LAST = 2;

/** The K-min family runs on WebGPU up to this K: each invocation keeps K (value, index) slots per
 *  result component in private memory and inserts into them by a linear scan, so the list must stay
 *  within a thread's register budget (about 255 32-bit registers on NVIDIA, 128 VGPRs per lane on
 *  AMD at full occupancy). Larger K run on WebAssembly (see webgpuUnsupported). */
export const MAX_GPU_K = 64;
/** Window width of the log-sum-exp and K-min states (see reductionWindow). */
const WINDOW_BRANCHY = 4;
/** K-min slots (K x window components) per invocation at most. */
const MAX_KMIN_SLOTS = 256;

/** Why a plan does not run on WebGPU (it then runs on WebAssembly), or null. */
export function webgpuUnsupported(plan: ReductionPlan): string | null {
  if (plan.kind === 'sum' && plan.weight !== null) return 'a sum with column sums (an internal WebAssembly reduction)';
  if (REDUCTIONS[plan.kind].takesK && plan.k > MAX_GPU_K) {
    return `${plan.kind} with K = ${plan.k} keeps more than ${MAX_GPU_K} candidates per thread`;
  }
  return null;
}

/** How a kernel covers the result components (of F, or of the weight G for the weighted kinds).
 *  Beyond UNROLL components (or MAX_KMIN_SLOTS list slots) the kernel is "windowed": each invocation
 *  loops over windows of `width` components, running the whole inner loop once per window with a
 *  per-window reduction state, so the state an invocation holds never grows with D. The last window
 *  is shifted left to end at the last component (it overlaps its neighbour, whose values it
 *  recomputes identically), so no component index is ever out of range. */
export interface ReductionWindow {
  /** Result components per outer row (K-min: per rank). */
  readonly components: number;
  readonly width: number;
  readonly count: number;
}

export function reductionWindow(plan: ReductionPlan): ReductionWindow {
  const weighted = REDUCTIONS[plan.kind].weight === 'required';
  const kmin = REDUCTIONS[plan.kind].takesK;
  const components = weighted ? plan.outDim : plan.formula.dim;
  let width = components;
  // Window widths: 16 components for the branch-free states (sums, min/max, weighted sums); 4 for
  // log-sum-exp and K-min lists, whose per-component updates branch (16 unrolled copies took
  // SwiftShader's compiler 10-20 s per kernel; on a GPU they also cost registers).
  const branchy = WGSL_REDUCTIONS[plan.kind].branchy;
  if (components > UNROLL) width = branchy ? WINDOW_BRANCHY : UNROLL_STATE;
  if (kmin && plan.k * width > MAX_KMIN_SLOTS)
    width = Math.max(1, Math.min(WINDOW_BRANCHY, Math.floor(MAX_KMIN_SLOTS / plan.k)));
  return { components, width, count: Math.ceil(components / width) };
}

/** A rough cost of one pair relative to a D = 3 Gaussian (about 64 component operations): the
 *  components of every distinct operation node, and at least the number of windows. Used only to
 *  cap the pairs per dispatch. */
export function pairCost(plan: ReductionPlan): number {
  const seen = new Set<FormulaNode>();
  let work = 0;
  // Iterative: formulas may be thousands of nodes deep.
  const todo: FormulaNode[] = plan.weight === null ? [plan.formula] : [plan.formula, plan.weight];
  for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
    if (n.kind === 'var' || seen.has(n)) continue;
    seen.add(n);
    work += n.dim + n.args.reduce((t, a) => t + a.dim, 0);
    todo.push(...n.args);
  }
  return Math.max(1, Math.ceil(work / 64), reductionWindow(plan).count);
}

/** u32 words of running state per result row, for the state buffer of split reductions. */
export function stateWords(plan: ReductionPlan): number {
  const w = reductionWindow(plan);
  return w.count * WGSL_REDUCTIONS[plan.kind].stateWords(w.width, plan.k);
}

/** A key that is equal for two plans exactly when they compile to the same kernel: the formula's
 *  structure with variables named by role, dimension and position (not by identity or data), and
 *  which literal constants are equal (the emitter shares one value between equal constants). The
 *  key the WebAssembly compiler caches by too (core/compile-cache.ts). */
export function structureKey(plan: ReductionPlan): string {
  return planStructureKey(plan);
}

const u = (k: WgslIndex): string => (typeof k === 'number' ? `${k}u` : k);

/** An f32 WGSL literal (non-finite values come from the uniform block at run time). */
export function f32Literal(value: number): string {
  const f = Math.fround(value);
  if (Number.isNaN(f)) return 'U.nan';
  if (f === Infinity) return 'U.inf';
  if (f === -Infinity) return '(-U.inf)';
  let s = String(Math.abs(f));
  if (/^\d+$/.test(s)) s += '.0';
  return f < 0 || Object.is(f, -0) ? `(-${s})` : s;
}

class Emitter implements WgslEmitter {
  private counter = 0;
  readonly outerBlock: Block = block('  ', null);
  // Per-pair code runs after (and inside the scope of) the per-row code. Re-indented by generateKernel.
  readonly innerBlock: Block = block('      ', this.outerBlock);
  private readonly stack: Block[] = [];
  private readonly memo = new Map<string, Val>();
  private readonly keys = new StructuralKeys();
  readonly usesParams: boolean[] = [false];
  /** Long per-pair sums computed over D-chunks (when enabled; see generateKernel). */
  readonly chunked: ChunkedSum[] = [];
  /** The component count every chunked sum runs over (they share one loop over D). */
  chunkCount: number | null = null;
  /** Inner variables (by packed offset) read from the D-chunk tile, and its array names. */
  readonly chunkArrays = new Map<number, string>();
  /** While a chunked sum's body is emitted: chunk index expressions -> component in the chunk. */
  private chunkIndex: Map<string, number> | null = null;
  /** Set by generateKernel to allow chunked sums. */
  chunking = false;
  /** Tiled kernels: structural key of a product node -> its per-pair value (read from the product
   *  tile); the product's operands are then not lowered unless something else reads them. */
  readonly products = new Map<string, () => Val>();

  constructor(
    private readonly roles: ReadonlyMap<Variable, 'outer' | 'inner' | 'param'>,
    private readonly layout: DataLayout,
    /** The expression of the first word of the current inner row: `tile[tb + ...]` or `I[tb + ...]`. */
    private readonly innerArray: string,
  ) {}

  fresh(prefix: string): string {
    return `${prefix}${this.counter++}`;
  }

  private target(varying: boolean): Block {
    return this.stack[this.stack.length - 1] ?? (varying ? this.innerBlock : this.outerBlock);
  }

  private varying(args: readonly WgslValue[]): boolean {
    return args.some((a) => (a as Val).varying);
  }

  /** Emits a loop over k < count in `parent`, the body's statements nested inside it. */
  private loop(parent: Block, count: number, body: (k: string, inner: Block) => void): void {
    const k = this.fresh('k');
    const inner = block(`${parent.indent}  `, parent);
    parent.lines.push(`${parent.indent}for (var ${k} = 0u; ${k} < ${count}u; ${k} = ${k} + 1u) {`);
    this.withBlock(inner, () => body(k, inner));
    parent.lines.push(...inner.lines, `${parent.indent}}`);
  }

  private withBlock<T>(b: Block, work: () => T): T {
    this.stack.push(b);
    try {
      return work();
    } finally {
      this.stack.pop();
    }
  }

  private lazy(dim: number, varying: boolean, body: (k: WgslIndex) => string): Val {
    return { dim, varying, repr: { kind: 'lazy', id: this.fresh('l'), body } };
  }

  map(dim: number, args: readonly WgslValue[], body: (k: WgslIndex) => string): Val {
    const varying = this.varying(args);
    if (dim > UNROLL) return this.lazy(dim, varying, body);
    const target = this.target(varying);
    const id = this.fresh('v');
    const names: string[] = [];
    for (let k = 0; k < dim; k++) {
      const expr = this.withBlock(target, () => body(k));
      const name = dim === 1 ? id : `${id}_${k}`;
      target.lines.push(`${target.indent}let ${name} = ${expr};`);
      names.push(name);
    }
    return { dim, varying, repr: { kind: 'scalars', names } };
  }

  sum(count: number, args: readonly WgslValue[], body: (k: WgslIndex) => string): Val {
    const varying = this.varying(args);
    const target = this.target(varying);
    const id = this.fresh('s');
    // A per-pair sum over many components of inner rows and per-row values only (the sqDist / dot
    // of K-NN and K-means): computed over D-chunks before the pair loop (generateKernel).
    const chunkable =
      this.chunking &&
      varying &&
      count > UNROLL &&
      this.stack.length === 0 &&
      (this.chunkCount === null || this.chunkCount === count) &&
      (args as readonly Val[]).every((a) => !a.varying || a.repr.kind === 'inner');
    if (chunkable) {
      this.chunkCount = count;
      const acc = this.fresh('acc');
      this.chunked.push({ acc, args: args as readonly Val[], body });
      target.lines.push(`${target.indent}let ${id} = ${acc}[t];`);
      return { dim: 1, varying, repr: { kind: 'scalars', names: [id] } };
    }
    if (count <= UNROLL) {
      const terms: string[] = [];
      for (let k = 0; k < count; k++) terms.push(this.withBlock(target, () => body(k)));
      target.lines.push(`${target.indent}let ${id} = ${terms.join(' + ')};`);
    } else {
      // Two levels, blocks of SUM_BLOCK terms summed apart and then added: the float32 rounding
      // error grows with SUM_BLOCK + count / SUM_BLOCK instead of count (10^5 terms: ~1e-6, not ~1e-5).
      const k0 = this.fresh('k');
      const k = this.fresh('k');
      const p = this.fresh('p');
      const outer = block(`${target.indent}  `, target);
      const inner = block(`${outer.indent}  `, outer);
      const expr = this.withBlock(inner, () => body(k));
      target.lines.push(
        `${target.indent}var ${id} = 0.0;`,
        `${target.indent}for (var ${k0} = 0u; ${k0} < ${count}u; ${k0} = ${k0} + ${SUM_BLOCK}u) {`,
        `${outer.indent}var ${p} = 0.0;`,
        `${outer.indent}for (var ${k} = ${k0}; ${k} < min(${k0} + ${SUM_BLOCK}u, ${count}u); ${k} = ${k} + 1u) {`,
        ...inner.lines,
        `${inner.indent}${p} = ${p} + ${expr};`,
        `${outer.indent}}`,
        `${outer.indent}${id} = ${id} + ${p};`,
        `${target.indent}}`,
      );
    }
    return { dim: 1, varying, repr: { kind: 'scalars', names: [id] } };
  }

  /** The extreme is taken with the builtin max / min and NaN decided apart, from the largest
   *  magnitude bit pattern (a u32 max: NaNs are the patterns above +inf's). Nesting the
   *  NaN-propagating lt_max 33 deep, or an OR chain of lt_isnan, made SwiftShader's compiler run
   *  for minutes; this form compiles in about a second there. */
  extreme(count: number, args: readonly WgslValue[], which: 'max' | 'min', body: (k: WgslIndex) => string): Val {
    const varying = this.varying(args);
    const target = this.target(varying);
    const id = this.fresh('m');
    if (count <= UNROLL) {
      // A balanced tree of lets, one builtin call per let (depth log2(count)).
      const terms = Array.from({ length: count }, (_, k) => {
        const t = this.withBlock(target, () => body(k));
        if (/^[A-Za-z_]\w*$/.test(t)) return t;
        const name = this.fresh('m');
        target.lines.push(`${target.indent}let ${name} = ${t};`);
        return name;
      });
      let level = terms;
      while (level.length > 1) {
        const next: string[] = [];
        for (let q = 0; q + 1 < level.length; q += 2) {
          const name = this.fresh('m');
          target.lines.push(`${target.indent}let ${name} = ${which}(${level[q]}, ${level[q + 1]});`);
          next.push(name);
        }
        if (level.length % 2 === 1) next.push(level[level.length - 1]!);
        level = next;
      }
      // NaN: the largest magnitude bit pattern, a max tree of u32 too (no branch, no bool chain).
      let bits = terms.map((t) => `(bitcast<u32>(${t}) & 0x7fffffffu)`);
      while (bits.length > 1) {
        const next: string[] = [];
        for (let q = 0; q + 1 < bits.length; q += 2) {
          const name = this.fresh('mb');
          target.lines.push(`${target.indent}let ${name} = max(${bits[q]}, ${bits[q + 1]});`);
          next.push(name);
        }
        if (bits.length % 2 === 1) next.push(bits[bits.length - 1]!);
        bits = next;
      }
      target.lines.push(`${target.indent}let ${id} = select(${level[0]}, U.nan, ${bits[0]} > 0x7f800000u);`);
      return { dim: 1, varying, repr: { kind: 'scalars', names: [id] } };
    }
    // Beyond UNROLL components (a lazy value): a loop, each component computed inside it.
    const k = this.fresh('k');
    const inner = block(`${target.indent}  `, target);
    const first = this.withBlock(target, () => body(0));
    const expr = this.withBlock(inner, () => body(k));
    target.lines.push(
      `${target.indent}var ${id}m = ${first};`,
      `${target.indent}var ${id}n = bitcast<u32>(${id}m) & 0x7fffffffu;`,
      `${target.indent}for (var ${k} = 1u; ${k} < ${count}u; ${k} = ${k} + 1u) {`,
      ...inner.lines,
      `${inner.indent}let ${id}v = ${expr};`,
      `${inner.indent}${id}m = ${which}(${id}m, ${id}v);`,
      `${inner.indent}${id}n = max(${id}n, bitcast<u32>(${id}v) & 0x7fffffffu);`,
      `${target.indent}}`,
      `${target.indent}let ${id} = select(${id}m, U.nan, ${id}n > 0x7f800000u);`,
    );
    return { dim: 1, varying, repr: { kind: 'scalars', names: [id] } };
  }

  at(value: WgslValue, k: WgslIndex): string {
    const v = value as Val;
    const index = v.dim === 1 ? 0 : k;
    const r = v.repr;
    switch (r.kind) {
      case 'scalars':
        if (typeof index === 'number') {
          const name = r.names[index];
          if (name === undefined) throw new Error(`internal: component ${index} of a ${v.dim}-vector`);
          return name;
        }
        return `array<f32, ${v.dim}>(${r.names.join(', ')})[${index}]`;
      case 'lazy': {
        // Bound once per block: later reads of the same component in this block or a nested one
        // reuse the let (no expression is ever duplicated, however the value is shared).
        const target = this.target(v.varying);
        const key = `${r.id}|${u(index)}`;
        for (let b: Block | null = target; b !== null; b = b.parent) {
          const hit = b.lets.get(key);
          if (hit !== undefined) return hit;
        }
        const expr = this.withBlock(target, () => r.body(index));
        const name = this.fresh('z');
        target.lines.push(`${target.indent}let ${name} = ${expr};`);
        target.lets.set(key, name);
        return name;
      }
      case 'inner': {
        const c = typeof index === 'string' ? this.chunkIndex?.get(index) : undefined;
        if (c !== undefined) {
          let name = this.chunkArrays.get(r.offset);
          if (name === undefined) this.chunkArrays.set(r.offset, (name = `dt${this.chunkArrays.size}`));
          return `${name}[t * ${DCHUNK}u + ${c}u]`;
        }
        return `${this.innerArray}[tb + ${u(this.index(index, 1, r.offset))}]`;
      }
      case 'view':
        return this.at(r.base, this.index(index, 1, r.first));
    }
  }

  index(a: WgslIndex, scale: number, offset: WgslIndex): WgslIndex {
    if (typeof a === 'number' && typeof offset === 'number') return a * scale + offset;
    const scaled = scale === 1 ? u(a) : typeof a === 'number' ? u(a * scale) : `${a} * ${scale}u`;
    return offset === 0 ? `(${scaled})` : `(${scaled} + ${u(offset)})`;
  }

  quotient(a: WgslIndex, divisor: number): WgslIndex {
    return typeof a === 'number' ? Math.floor(a / divisor) : `(${a} / ${divisor}u)`;
  }

  remainder(a: WgslIndex, divisor: number): WgslIndex {
    return typeof a === 'number' ? a % divisor : `(${a} % ${divisor}u)`;
  }

  float(k: WgslIndex): string {
    return typeof k === 'number' ? f32Literal(k) : `f32(${k})`;
  }

  literal(value: number): string {
    return f32Literal(value);
  }

  view(value: WgslValue, first: number, dim: number): Val {
    const v = value as Val;
    if (first === 0 && dim === v.dim) return v;
    if (first < 0 || first + dim > v.dim)
      throw new Error(`internal: view [${first}, ${first + dim}) of a ${v.dim}-vector`);
    if (v.repr.kind === 'view')
      return { dim, varying: v.varying, repr: { kind: 'view', base: v.repr.base, first: v.repr.first + first } };
    return { dim, varying: v.varying, repr: { kind: 'view', base: v, first } };
  }

  concat(parts: readonly WgslValue[]): Val {
    const dim = parts.reduce((s, p) => s + p.dim, 0);
    const ps = parts as readonly Val[];
    const offsets: number[] = [];
    let total = 0;
    for (const p of ps) {
      offsets.push(total);
      total += p.dim;
    }
    const component = (k: WgslIndex): string => {
      if (typeof k === 'number') {
        let q = ps.length - 1;
        while (offsets[q]! > k) q--;
        return this.at(ps[q]!, k - offsets[q]!);
      }
      // A runtime index: every part is read at a clamped (in-range) index and the right one selected.
      let expr = '';
      for (let q = ps.length - 1; q >= 0; q--) {
        const o = offsets[q]!;
        const d = ps[q]!.dim;
        const local = d === 1 ? 0 : o === 0 ? `min(${k}, ${d - 1}u)` : `(clamp(${k}, ${o}u, ${o + d - 1}u) - ${o}u)`;
        const part = this.at(ps[q]!, local);
        expr = expr === '' ? part : `select(${expr}, ${part}, ${k} < ${o + d}u)`;
      }
      return expr;
    };
    return this.map(dim, parts, component);
  }

  /** Loads a variable: outer rows and parameters into registers (read where used beyond UNROLL
   *  components), inner rows as tile accessors. */
  private variable(node: Variable): Val {
    const role = this.roles.get(node) ?? 'param';
    const offset = this.layout.offsets.get(node);
    if (offset === undefined) throw new Error(`internal: variable ${node.name} is not in the plan`);
    if (role === 'inner') return { dim: node.dim, varying: true, repr: { kind: 'inner', offset } };
    if (role === 'param') this.usesParams[0] = true;
    const source = (k: WgslIndex): string =>
      role === 'outer' ? `O[ob + ${u(this.index(k, 1, offset))}]` : `P[${u(this.index(k, 1, offset))}]`;
    if (node.dim > UNROLL) return this.lazy(node.dim, false, source);
    const target = this.outerBlock;
    const id = this.fresh('x');
    const names: string[] = [];
    for (let k = 0; k < node.dim; k++) {
      const name = node.dim === 1 ? id : `${id}_${k}`;
      target.lines.push(`${target.indent}let ${name} = ${source(k)};`);
      names.push(name);
    }
    return { dim: node.dim, varying: false, repr: { kind: 'scalars', names } };
  }

  /** Lowers a node, sharing structurally equal sub-formulas; iterative (post-order), so formulas of
   *  any depth lower without exhausting the call stack. */
  lower(root: FormulaNode): Val {
    const order = postOrder(root);
    // Nodes read only through a tiled product are not lowered (x_i's D loads would be dead code).
    const needed = new Set<FormulaNode>([root]);
    if (this.products.size > 0) {
      for (const node of order) this.keys.of(node); // in post-order: linear
      for (let q = order.length - 1; q >= 0; q--) {
        const node = order[q]!;
        if (node.kind === 'op' && needed.has(node) && !this.products.has(this.keys.of(node)))
          for (const a of node.args) needed.add(a);
      }
    }
    for (const node of order) {
      const key = this.keys.of(node);
      if (this.memo.has(key) || (this.products.size > 0 && !needed.has(node))) continue;
      let value: Val;
      const product = this.products.get(key);
      if (product !== undefined) {
        value = product();
      } else if (node.kind === 'var') {
        value = this.variable(node);
      } else {
        const args = node.args.map((a) => this.memo.get(this.keys.of(a))!);
        value = node.def.wgsl(this, args, node.params, node.dim) as Val;
        if (value.dim !== node.dim) {
          throw new Error(`internal: ${node.def.name} lowered to ${value.dim} components instead of ${node.dim}`);
        }
      }
      this.memo.set(key, value);
    }
    return this.memo.get(this.keys.of(root))!;
  }

  /** The code of one D-chunk of every chunked sum: per-row values of the chunk into lets (x_i's
   *  chunk "in registers"), then, per row t of the tile, each sum's DCHUNK terms added to its
   *  partial sum. Components past the count are masked (the staged tile holds zeros there). */
  chunkCode(indent: string): { before: string[]; perRow: string[] } {
    const count = this.chunkCount!;
    const before = block(indent, this.outerBlock);
    const row = block(`${indent}  `, before);
    const idx = (c: number): string => `(d0 + ${c}u)`;
    this.chunkIndex = new Map(Array.from({ length: DCHUNK }, (_, c) => [idx(c), c] as const));
    try {
      for (const s of this.chunked) {
        for (const a of s.args) {
          if (!a.varying) for (let c = 0; c < DCHUNK; c++) this.withBlock(before, () => this.at(a, idx(c)));
        }
      }
      for (const s of this.chunked) {
        const terms: string[] = [];
        for (let c = 0; c < DCHUNK; c++) {
          const term = this.withBlock(row, () => s.body(idx(c)));
          terms.push(count % DCHUNK === 0 ? term : `select(0.0, ${term}, d0 + ${c}u < ${count}u)`);
        }
        row.lines.push(`${row.indent}${s.acc}[t] = ${s.acc}[t] + (${terms.join(' + ')});`);
      }
    } finally {
      this.chunkIndex = null;
    }
    return { before: before.lines, perRow: row.lines };
  }

  /** Tiled kernels: `node` (a product) is read per pair as `read` from its product tile. */
  tileProduct(node: FormulaNode, read: string): void {
    this.products.set(this.keys.of(node), () => {
      const name = this.fresh('pv');
      this.innerBlock.lines.push(`${this.innerBlock.indent}let ${name} = ${read};`);
      return { dim: 1, varying: true, repr: { kind: 'scalars', names: [name] } };
    });
  }

  /** `v` as scalar lets (v.dim <= UNROLL) when reading it could emit statements (a lazy base): the
   *  reduction code reads components inside its own loops, where no statement can go. */
  settle(v: Val): Val {
    const base = v.repr.kind === 'view' ? v.repr.base : v;
    return base.repr.kind === 'lazy' ? this.map(v.dim, [v], (k) => this.at(v, k)) : v;
  }
}

// ---------------------------------------------------------------------------------------------------
// Reductions: state declarations, init, load/store (split runs), per-tile init, per-pair fold,
// per-tile merge and finalization, as WGSL lines.

interface ReductionCode {
  decl: string[];
  init: string[];
  load: string[];
  store: string[];
  tileInit: string[];
  fold: string[];
  merge: string[];
  /** Merges another part's saved state, at ST[sp + ...], into the running state as if its pairs had
   *  followed the running state's (the combine kernel of INNER PARTS). */
  absorb: string[];
  finalize: string[];
}

/** Per-component code: unrolled for small counts, else a loop over `kc`. */
function perComponent(count: number, body: (k: WgslIndex) => string[]): string[] {
  if (count <= UNROLL_STATE) {
    const out: string[] = [];
    for (let k = 0; k < count; k++) out.push('{', ...body(k).map((l) => `  ${l}`), '}');
    return out;
  }
  return [`for (var kc = 0u; kc < ${count}u; kc = kc + 1u) {`, ...body('kc').map((l) => `  ${l}`), '}'];
}

const ix = (k: WgslIndex): string => (typeof k === 'number' ? String(k) : k);
const add = (k: WgslIndex, offset: number, scale = 1): string =>
  typeof k === 'number' ? `${k * scale + offset}u` : `${scale === 1 ? k : `${k} * ${scale}u`} + ${offset}u`;

/** Kahan: adds x to the compensated sum (s, c); the sum is s + c. Once the sum is infinite or NaN
 *  the compensation is dropped (inf - inf would turn it into NaN). */
function kahan(s: string, c: string, x: string): string[] {
  return [
    `{`,
    `  let ky = (${x}) + ${c};`,
    `  let kt = ${s} + ky;`,
    `  ${c} = select(0.0, ky - (kt - ${s}), lt_isfinite(kt));`,
    `  ${s} = kt;`,
    `}`,
  ];
}

/** What a reduction's WGSL is generated from: `d` components of F (or `e` of the weight G), a window
 *  of the full result when the kernel is windowed, component k of the window landing at `out(k)` in
 *  the result row (and, for the K-min family, at `out(k) + t * dOut` for rank t). */
interface ReductionContext {
  readonly kind: ReductionKind;
  readonly d: number;
  readonly e: number;
  readonly K: number;
  readonly F: (k: WgslIndex) => string;
  readonly G: (k: WgslIndex) => string;
  readonly out: (k: WgslIndex) => string;
  readonly dOut: number;
  /** Sums accumulate in two floats (accumulate: 'float64'). */
  readonly twoFloat: boolean;
}

const ld = (dst: string, word: string, asInt = false): string =>
  `${dst} = ${asInt ? 'bitcast<i32>' : 'bitcast<f32>'}(ST[sb + ${word}]);`;
const st = (src: string, word: string): string => `ST[sb + ${word}] = bitcast<u32>(${src});`;
/** Reads word `word` of the other part's state (absorb). */
const other = (word: string, asInt = false): string => `${asInt ? 'bitcast<i32>' : 'bitcast<f32>'}(ST[sp + ${word}])`;

/** Sums: a float32 partial sum per tile, merged into a Kahan-compensated running sum. */
function sumCode(c: ReductionContext): ReductionCode {
  const { d, F, out } = c;
  if (c.twoFloat) return twoFloatSumCode(c);
  return {
    // Explicit initializers: windowed kernels declare the state inside their window loop, where a
    // declaration without one kept the previous window's values on Dawn/SwiftShader.
    decl: [`var rs = array<f32, ${d}>();`, `var rc = array<f32, ${d}>();`, `var ts = array<f32, ${d}>();`],
    init: [],
    load: perComponent(d, (k) => [ld(`rs[${ix(k)}]`, add(k, 0, 2)), ld(`rc[${ix(k)}]`, add(k, 1, 2))]),
    store: perComponent(d, (k) => [st(`rs[${ix(k)}]`, add(k, 0, 2)), st(`rc[${ix(k)}]`, add(k, 1, 2))]),
    tileInit: perComponent(d, (k) => [`ts[${ix(k)}] = 0.0;`]),
    fold: perComponent(d, (k) => [`ts[${ix(k)}] = ts[${ix(k)}] + ${F(k)};`]),
    merge: perComponent(d, (k) => kahan(`rs[${ix(k)}]`, `rc[${ix(k)}]`, `ts[${ix(k)}]`)),
    // The other sum and then its compensation, each added as a tile's partial.
    absorb: perComponent(d, (k) => [
      ...kahan(`rs[${ix(k)}]`, `rc[${ix(k)}]`, other(add(k, 0, 2))),
      ...kahan(`rs[${ix(k)}]`, `rc[${ix(k)}]`, other(add(k, 1, 2))),
    ]),
    finalize: perComponent(d, (k) => [`OV[ov + ${out(k)}] = rs[${ix(k)}] + rc[${ix(k)}];`]),
  };
}

/** TwoSum: s + e = a + b exactly (Knuth; no branch, no FMA). Once s is infinite or NaN the error
 *  term is dropped (it would be inf - inf). */
function twoSum(s: string, e: string, a: string, b: string): string[] {
  return [
    `let ${s} = ${a} + ${b};`,
    `let ${s}v = ${s} - ${a};`,
    `let ${e} = select(0.0, (${a} - (${s} - ${s}v)) + (${b} - ${s}v), lt_isfinite(${s}));`,
  ];
}

/** Sums with `accumulate: 'float64'`: two-float (double-single) accumulators, hi + lo with |lo| <=
 *  ulp(hi) / 2, about 48 significant bits: every term is added to the tile's (hi, lo) by TwoSum,
 *  and each tile's pair to the running pair by the double-single addition. */
function twoFloatSumCode(c: ReductionContext): ReductionCode {
  const { d, F, out } = c;
  const at = (n: string, k: WgslIndex): string => `${n}[${ix(k)}]`;
  /** The double-single addition of the tile's (ts, tc) to the running (rs, rc). */
  const dsAdd = (k: WgslIndex): string[] => [
    ...twoSum('ms', 'me', at('rs', k), at('ts', k)),
    `let ml = select(0.0, me + ${at('rc', k)} + ${at('tc', k)}, lt_isfinite(ms));`,
    `let mh = ms + ml;`,
    `${at('rc', k)} = select(0.0, ml - (mh - ms), lt_isfinite(mh));`,
    `${at('rs', k)} = mh;`,
  ];
  return {
    decl: [
      `var rs = array<f32, ${d}>();`,
      `var rc = array<f32, ${d}>();`,
      `var ts = array<f32, ${d}>();`,
      `var tc = array<f32, ${d}>();`,
    ],
    init: [],
    load: perComponent(d, (k) => [ld(at('rs', k), add(k, 0, 2)), ld(at('rc', k), add(k, 1, 2))]),
    store: perComponent(d, (k) => [st(at('rs', k), add(k, 0, 2)), st(at('rc', k), add(k, 1, 2))]),
    tileInit: perComponent(d, (k) => [`${at('ts', k)} = 0.0;`, `${at('tc', k)} = 0.0;`]),
    fold: perComponent(d, (k) => [
      ...twoSum('fs', 'fe', at('ts', k), F(k)),
      `${at('ts', k)} = fs;`,
      `${at('tc', k)} = ${at('tc', k)} + fe;`,
    ]),
    merge: perComponent(d, (k) => dsAdd(k)),
    // The other (hi, lo) pair added as a tile's.
    absorb: perComponent(d, (k) => [
      `${at('ts', k)} = ${other(add(k, 0, 2))};`,
      `${at('tc', k)} = ${other(add(k, 1, 2))};`,
      ...dsAdd(k),
    ]),
    finalize: perComponent(d, (k) => [`OV[ov + ${out(k)}] = ${at('rs', k)} + ${at('rc', k)};`]),
  };
}

/** Log-sum-exp: a running (max, compensated sum of exp(F - max)) per component. */
function logSumExpCode(c: ReductionContext): ReductionCode {
  const { d, F, out } = c;
  /** Merges the tile's (tm, ts) into the running (rm, rs, rc). */
  const merge = (k: WgslIndex): string[] => {
    const [m, s, c, a, b] = ['rm', 'rs', 'rc', 'tm', 'ts'].map((n) => `${n}[${ix(k)}]`) as [
      string,
      string,
      string,
      string,
      string,
    ];
    return [
      `if (lt_isnan(${a}) || lt_isnan(${m})) { ${m} = U.nan; }`,
      `else if (lt_ispinf(${m}) || lt_isninf(${a})) { }`,
      `else if (lt_ispinf(${a})) { ${m} = ${a}; ${s} = 1.0; ${c} = 0.0; }`,
      `else if (${a} > ${m}) {`,
      `  let sc = lt_exp(${m} - ${a});`,
      `  ${s} = ${s} * sc; ${c} = ${c} * sc; ${m} = ${a};`,
      ...kahan(s, c, b).map((l) => `  ${l}`),
      `} else {`,
      ...kahan(s, c, `${b} * lt_exp(${a} - ${m})`).map((l) => `  ${l}`),
      `}`,
    ];
  };
  return {
    decl: [
      `var rm = array<f32, ${d}>();`,
      `var rs = array<f32, ${d}>();`,
      `var rc = array<f32, ${d}>();`,
      `var tm = array<f32, ${d}>();`,
      `var ts = array<f32, ${d}>();`,
    ],
    init: perComponent(d, (k) => [`rm[${ix(k)}] = -U.inf;`]),
    load: perComponent(d, (k) => [
      ld(`rm[${ix(k)}]`, add(k, 0, 3)),
      ld(`rs[${ix(k)}]`, add(k, 1, 3)),
      ld(`rc[${ix(k)}]`, add(k, 2, 3)),
    ]),
    store: perComponent(d, (k) => [
      st(`rm[${ix(k)}]`, add(k, 0, 3)),
      st(`rs[${ix(k)}]`, add(k, 1, 3)),
      st(`rc[${ix(k)}]`, add(k, 2, 3)),
    ]),
    tileInit: perComponent(d, (k) => [`tm[${ix(k)}] = -U.inf;`, `ts[${ix(k)}] = 0.0;`]),
    fold: perComponent(d, (k) => {
      const m = `tm[${ix(k)}]`;
      const s = `ts[${ix(k)}]`;
      return [
        `let v = ${F(k)};`,
        `if (lt_isnan(v) || lt_isnan(${m})) { ${m} = U.nan; }`,
        `else if (v > ${m}) { ${s} = ${s} * lt_exp(${m} - v) + 1.0; ${m} = v; }`,
        `else if (!lt_isninf(v) && !lt_ispinf(${m})) { ${s} = ${s} + lt_exp(v - ${m}); }`,
      ];
    }),
    merge: perComponent(d, merge),
    // The other (max, sum) as a tile's, then its compensation with the same max.
    absorb: perComponent(d, (k) => [
      `tm[${ix(k)}] = ${other(add(k, 0, 3))};`,
      `ts[${ix(k)}] = ${other(add(k, 1, 3))};`,
      ...merge(k),
      `ts[${ix(k)}] = ${other(add(k, 2, 3))};`,
      ...merge(k),
    ]),
    finalize: perComponent(d, (k) => {
      const m = `rm[${ix(k)}]`;
      return [
        `var r = ${m};`,
        `if (lt_isnan(${m})) { r = U.nan; }`,
        `else if (!lt_isninf(${m}) && !lt_ispinf(${m})) { r = ${m} + lt_log(rs[${ix(k)}] + rc[${ix(k)}]); }`,
        `OV[ov + ${out(k)}] = r;`,
      ];
    }),
  };
}

/** Weighted log-sum-exp and softmax averages (F of dimension 1): a running max, the sum of exp(F - max) and the e sums of exp(F - max) G. */
function weightedCode(c: ReductionContext): ReductionCode {
  const { kind, e, F, G, out } = c;
  const scaleAll = (sc: string): string[] =>
    perComponent(e, (k) => [`rs[${ix(k)}] = rs[${ix(k)}] * ${sc};`, `rc[${ix(k)}] = rc[${ix(k)}] * ${sc};`]);
  /** Merges the tile's (tm, ts0, ts) into the running (rm, rs0, rc0, rs, rc). */
  const merge = [
    `if (lt_isnan(tm) || lt_isnan(rm)) { rm = U.nan; }`,
    `else if (!lt_isninf(tm)) {`,
    `  if (tm > rm) {`,
    `    let sc = lt_exp(rm - tm);`,
    `    rs0 = rs0 * sc; rc0 = rc0 * sc; rm = tm;`,
    ...scaleAll('sc').map((l) => `    ${l}`),
    ...kahan('rs0', 'rc0', 'ts0').map((l) => `    ${l}`),
    ...perComponent(e, (k) => kahan(`rs[${ix(k)}]`, `rc[${ix(k)}]`, `ts[${ix(k)}]`)).map((l) => `    ${l}`),
    `  } else {`,
    `    let sc = lt_exp(tm - rm);`,
    ...kahan('rs0', 'rc0', 'ts0 * sc').map((l) => `    ${l}`),
    ...perComponent(e, (k) => kahan(`rs[${ix(k)}]`, `rc[${ix(k)}]`, `ts[${ix(k)}] * sc`)).map((l) => `    ${l}`),
    `  }`,
    `}`,
  ];
  return {
    decl: [
      `var rm = 0.0;`,
      `var rs0 = 0.0;`,
      `var rc0 = 0.0;`,
      `var rs = array<f32, ${e}>();`,
      `var rc = array<f32, ${e}>();`,
      `var tm = 0.0;`,
      `var ts0 = 0.0;`,
      `var ts = array<f32, ${e}>();`,
    ],
    init: [`rm = -U.inf;`],
    load: [
      ld('rm', '0u'),
      ld('rs0', '1u'),
      ld('rc0', '2u'),
      ...perComponent(e, (k) => [ld(`rs[${ix(k)}]`, add(k, 3, 2)), ld(`rc[${ix(k)}]`, add(k, 4, 2))]),
    ],
    store: [
      st('rm', '0u'),
      st('rs0', '1u'),
      st('rc0', '2u'),
      ...perComponent(e, (k) => [st(`rs[${ix(k)}]`, add(k, 3, 2)), st(`rc[${ix(k)}]`, add(k, 4, 2))]),
    ],
    tileInit: [`tm = -U.inf;`, `ts0 = 0.0;`, ...perComponent(e, (k) => [`ts[${ix(k)}] = 0.0;`])],
    fold: [
      `{`,
      `  let v = ${F(0)};`,
      `  if (lt_isnan(v) || lt_ispinf(v) || lt_isnan(tm)) { tm = U.nan; }`,
      `  else if (v > tm) {`,
      `    let sc = lt_exp(tm - v);`,
      `    ts0 = ts0 * sc + 1.0;`,
      ...perComponent(e, (k) => [`ts[${ix(k)}] = ts[${ix(k)}] * sc + ${G(k)};`]).map((l) => `    ${l}`),
      `    tm = v;`,
      `  } else if (!lt_isninf(v)) {`,
      `    let w = lt_exp(v - tm);`,
      `    ts0 = ts0 + w;`,
      ...perComponent(e, (k) => [`ts[${ix(k)}] = ts[${ix(k)}] + w * ${G(k)};`]).map((l) => `    ${l}`),
      `  }`,
      `}`,
    ],
    merge,
    // The other (max, sums) as a tile's, then its compensations with the same max.
    absorb: [
      `tm = ${other('0u')};`,
      `ts0 = ${other('1u')};`,
      ...perComponent(e, (k) => [`ts[${ix(k)}] = ${other(add(k, 3, 2))};`]),
      ...merge,
      `ts0 = ${other('2u')};`,
      ...perComponent(e, (k) => [`ts[${ix(k)}] = ${other(add(k, 4, 2))};`]),
      ...merge,
    ],
    finalize: perComponent(e, (k) =>
      kind === 'logSumExpWeighted'
        ? [
            `var r = rm;`,
            `if (lt_isnan(rm)) { r = U.nan; }`,
            `else if (!lt_isninf(rm)) { r = rm + lt_log(rs[${ix(k)}] + rc[${ix(k)}]); }`,
            `OV[ov + ${out(k)}] = r;`,
          ]
        : [
            `let den = rs0 + rc0;`,
            `OV[ov + ${out(k)}] = select((rs[${ix(k)}] + rc[${ix(k)}]) / den, U.nan, lt_isnan(rm) || den == 0.0);`,
          ],
    ),
  };
}

/** Min, max and their indices: the best value and its index per component (strict comparison, so ties keep the first index seen). */
function minMaxCode(c: ReductionContext): ReductionCode {
  const { kind, d, F, out } = c;
  const cmp = kind === 'max' || kind === 'argMax' || kind === 'maxArgMax' ? '>' : '<';
  const values = reductionHasValues(kind);
  const indices = reductionHasIndices(kind);
  const keep = (k: WgslIndex, v: string, j: string): string[] => [
    `if (!lt_isnan(${v}) && (bi[${ix(k)}] < 0 || ${v} ${cmp} bv[${ix(k)}])) { bv[${ix(k)}] = ${v}; bi[${ix(k)}] = ${j}; }`,
  ];
  return {
    decl: [`var bv = array<f32, ${d}>();`, `var bi = array<i32, ${d}>();`],
    init: perComponent(d, (k) => [`bi[${ix(k)}] = -1;`]),
    load: perComponent(d, (k) => [ld(`bv[${ix(k)}]`, add(k, 0, 2)), ld(`bi[${ix(k)}]`, add(k, 1, 2), true)]),
    store: perComponent(d, (k) => [st(`bv[${ix(k)}]`, add(k, 0, 2)), st(`bi[${ix(k)}]`, add(k, 1, 2))]),
    tileInit: [],
    fold: perComponent(d, (k) => [`let v = ${F(k)};`, ...keep(k, 'v', 'jg')]),
    merge: [],
    // A part's pairs are not all after the running state's (a split reduction's parts interleave
    // in j), so ties go to the lower index explicitly: the sequential fold's result, in any order.
    absorb: perComponent(d, (k) => [
      `let v = ${other(add(k, 0, 2))};`,
      `let vi = ${other(add(k, 1, 2), true)};`,
      `if (vi >= 0 && (bi[${ix(k)}] < 0 || v ${cmp} bv[${ix(k)}] || (v == bv[${ix(k)}] && vi < bi[${ix(k)}]))) {`,
      `  bv[${ix(k)}] = v;`,
      `  bi[${ix(k)}] = vi;`,
      `}`,
    ]),
    finalize: perComponent(d, (k) => [
      ...(values ? [`OV[ov + ${out(k)}] = select(bv[${ix(k)}], U.nan, bi[${ix(k)}] < 0);`] : []),
      ...(indices ? [`OI[ov + ${out(k)}] = bi[${ix(k)}];`] : []),
    ]),
  };
}

/** The K-min family: a sorted list of K (value, index) slots per component, insertion by a linear scan. */
function kSelectCode(c: ReductionContext): ReductionCode {
  const { kind, d, K, F, out, dOut } = c;
  const values = reductionHasValues(kind);
  const indices = reductionHasIndices(kind);
  const base = (k: WgslIndex): string => (typeof k === 'number' ? `${k * K}u` : `${k} * ${K}u`);
  /** Inserts (v, j) into component k's sorted list, dropping the largest: after equal values (the
   *  fold, j increasing), or by (value, index) when `byIndex` (absorb). */
  const insert = (k: WgslIndex, v: string, j: string, byIndex = false): string[] => [
    `let b = ${base(k)};`,
    `if (!lt_isnan(${v}) && (cn[${ix(k)}] < ${K} || ${v} < kv[b + ${K - 1}u]${byIndex ? ` || (${v} == kv[b + ${K - 1}u] && ${j} < ki[b + ${K - 1}u])` : ''})) {`,
    `  var p = u32(min(cn[${ix(k)}], ${K - 1}));`,
    `  if (cn[${ix(k)}] < ${K}) { cn[${ix(k)}] = cn[${ix(k)}] + 1; }`,
    `  loop {`,
    `    if (p == 0u) { break; }`,
    `    let w = kv[b + p - 1u];`,
    byIndex
      ? `    if (!(w > ${v} || (w == ${v} && ki[b + p - 1u] > ${j}))) { break; }`
      : `    if (!(w > ${v})) { break; }`,
    `    kv[b + p] = w;`,
    `    ki[b + p] = ki[b + p - 1u];`,
    `    p = p - 1u;`,
    `  }`,
    `  kv[b + p] = ${v};`,
    `  ki[b + p] = ${j};`,
    `}`,
  ];
  return {
    decl: [`var cn = array<i32, ${d}>();`, `var kv = array<f32, ${K * d}>();`, `var ki = array<i32, ${K * d}>();`],
    init: [],
    load: [
      ...perComponent(d, (k) => [ld(`cn[${ix(k)}]`, add(k, 0), true)]),
      `for (var q = 0u; q < ${K * d}u; q = q + 1u) {`,
      `  kv[q] = bitcast<f32>(ST[sb + ${d}u + q]);`,
      `  ki[q] = bitcast<i32>(ST[sb + ${d + K * d}u + q]);`,
      `}`,
    ],
    store: [
      ...perComponent(d, (k) => [st(`cn[${ix(k)}]`, add(k, 0))]),
      `for (var q = 0u; q < ${K * d}u; q = q + 1u) {`,
      `  ST[sb + ${d}u + q] = bitcast<u32>(kv[q]);`,
      `  ST[sb + ${d + K * d}u + q] = bitcast<u32>(ki[q]);`,
      `}`,
    ],
    tileInit: [],
    fold: perComponent(d, (k) => [`let v = ${F(k)};`, ...insert(k, 'v', 'jg')]),
    merge: [],
    // The other part's list, ordered by (value, index) like the running one: its pairs may come
    // before or after the running list's in j (a split reduction's parts interleave), so it is
    // inserted in that order, and the result is the sequential fold's in any order of parts.
    absorb: perComponent(d, (k) => [
      `let on = ${other(add(k, 0), true)};`,
      `for (var t = 0; t < on; t = t + 1) {`,
      `  let v = ${other(`${d}u + ${base(k)} + u32(t)`)};`,
      `  let vi = ${other(`${d + K * d}u + ${base(k)} + u32(t)`, true)};`,
      ...insert(k, 'v', 'vi', true).map((l) => `  ${l}`),
      `}`,
    ]),
    finalize: perComponent(d, (k) => [
      `let b = ${base(k)};`,
      `for (var t = 0u; t < ${K}u; t = t + 1u) {`,
      `  let q = ov + t * ${dOut}u + ${out(k)};`,
      `  let ok = i32(t) < cn[${ix(k)}];`,
      ...(values ? [`  OV[q] = select(U.nan, kv[b + t], ok);`] : []),
      ...(indices ? [`  OI[q] = select(-1, ki[b + t], ok);`] : []),
      `}`,
    ]),
  };
}

/** The WebGPU lowering of each engine reduction: the u32 words of state per result row of one
 *  window (`width` components), whether its per-component update branches (the window is then
 *  narrower: see reductionWindow), and its WGSL. A Record, so a reduction without a lowering does not
 *  compile. */
interface WgslReduction {
  stateWords(width: number, K: number): number;
  readonly branchy: boolean;
  code(c: ReductionContext): ReductionCode;
}

const MIN_MAX: WgslReduction = { stateWords: (w) => 2 * w, branchy: false, code: minMaxCode };
const K_SELECT: WgslReduction = { stateWords: (w, K) => w + 2 * K * w, branchy: true, code: kSelectCode };
const WEIGHTED: WgslReduction = { stateWords: (w) => 3 + 2 * w, branchy: false, code: weightedCode };

export const WGSL_REDUCTIONS: Readonly<Record<ReductionKind, WgslReduction>> = {
  // Two-float sums keep (hi, lo) per running sum and per tile sum: 2 more words per component.
  sum: { stateWords: (w) => 2 * w, branchy: false, code: sumCode },
  logSumExp: { stateWords: (w) => 3 * w, branchy: true, code: logSumExpCode },
  logSumExpWeighted: WEIGHTED,
  sumSoftMaxWeight: WEIGHTED,
  min: MIN_MAX,
  max: MIN_MAX,
  argMin: MIN_MAX,
  argMax: MIN_MAX,
  minArgMin: MIN_MAX,
  maxArgMax: MIN_MAX,
  kMin: K_SELECT,
  argKMin: K_SELECT,
  kMinArgKMin: K_SELECT,
};

/** A kernel from its WGSL lines (empty ones dropped), with the prelude functions they call. */
function kernelOf(lines: readonly string[], bindings: KernelBindings, stateWords: number): GeneratedKernel {
  const body = `${lines.filter((l) => l !== '').join('\n')}\n`;
  return { code: `${preludeFor(body)}\n\n${body}`, bindings, stateWords };
}

/** Generates the kernel of a plan for a configuration. */
export function generateKernel(plan: ReductionPlan, config: KernelConfig): GeneratedKernel {
  const layout = dataLayout(plan);
  const { workgroupSize: WG, tile: TILE, staged, split } = config;
  const parts = config.parts === true;
  if (parts && config.sparse) throw new Error('internal: inner parts are for dense reductions');
  const IS = layout.innerStride;
  const OS = layout.outerStride;
  const roles = new Map(plan.variables.map((v) => [v.variable, v.role] as const));
  const emitter = new Emitter(roles, layout, staged ? 'tile' : 'I');
  emitter.chunking = config.dchunks === true && !staged;
  const tb = config.tiled ?? null;
  const tp = tb === null ? null : tiledProducts(plan);
  if (tb !== null) {
    if (tp === null || staged || config.sparse) throw new Error(`internal: ${plan.kind} has no tiled kernel`);
    if (WG !== tb.ti * tb.tj) throw new Error(`internal: a tiled kernel has ${tb.ti * tb.tj} invocations, not ${WG}`);
    const PP = tb.tj * tb.rj + 1;
    tp.products.forEach((p, q) => {
      let read = `pt${q}[lid * ${PP}u + t]`;
      if (p.weight !== null) emitter.usesParams[0] = true;
      // Isotropic (one weight, also at D = 1): s * |x - y|^2, in the plain lowering's order.
      if (p.weight !== null && p.weight.dim === 1) read = `(P[${layout.offsets.get(p.weight)!}u] * ${read})`;
      emitter.tileProduct(p.node, read);
    });
  }
  const win = reductionWindow(plan);
  const windowed = win.count > 1;
  /** Components [c0, c0 + width) of a value, as scalar lets (c0: the window's first component). */
  const windowOf = (v: Val): Val =>
    windowed
      ? emitter.settle(emitter.map(win.width, [v], (k) => emitter.at(v, emitter.index(k, 1, 'c0'))))
      : emitter.settle(v);
  const weighted = plan.weight !== null;
  // The squared-distance idioms (sum of squared differences, ...) lower to the fused sqDist.
  let vF = emitter.lower(tp?.formula ?? rewriteFormula(plan.formula));
  let vG = plan.weight === null ? null : emitter.lower(tp?.weight ?? rewriteFormula(plan.weight));
  if (vG !== null) {
    vF = emitter.settle(vF);
    vG = windowOf(vG);
  } else {
    vF = windowOf(vF);
  }
  const d = weighted ? plan.formula.dim : win.width;
  const e = weighted ? win.width : 0;
  const out = (k: WgslIndex): string => (windowed ? `c0 + ${u(k)}` : add(k, 0));
  const red = WGSL_REDUCTIONS[plan.kind].code({
    kind: plan.kind,
    d,
    e,
    K: plan.k,
    F: (k) => emitter.at(vF, k),
    G: (k) => emitter.at(vG!, k),
    out,
    dOut: win.components,
    twoFloat: plan.accumulate === 'float64',
  });
  const words = stateWords(plan);
  const windowWords = words / win.count;
  // Row il's state; a part's in its own slot of nOuter rows.
  const slot = parts ? `(wid.y * U.nOuter + il) * ${words}u` : `il * ${words}u`;
  const values = reductionHasValues(plan.kind);
  const indices = reductionHasIndices(plan.kind);
  const bindings: KernelBindings = {
    outer: OS > 0,
    inner: IS > 0,
    params: emitter.usesParams[0]!,
    // A part writes only its state; the combine kernel writes the results.
    values: values && !parts,
    indices: indices && !parts,
    state: split || parts,
    sparse: config.sparse,
  };
  const indent = (lines: readonly string[], pad: string): string[] => lines.map((l) => `${pad}${l}`);
  const stage = staged && IS > 0;
  const chunks = emitter.chunked.length > 0 ? emitter.chunkCode('    ') : null;
  const chunkCount = emitter.chunkCount ?? 0;
  /** The D-chunk pass of a tile: chunk after chunk, the inner rows' components staged in workgroup
   *  memory (coalesced), x_i's in registers, and every chunked sum's partials accumulated per row. */
  const chunkPass = (read: string): string[] =>
    chunks === null
      ? []
      : [
          ...emitter.chunked.map((c) => `  var ${c.acc} = array<f32, ${TILE}>();`),
          `  for (var d0 = 0u; d0 < ${chunkCount}u; d0 = d0 + ${DCHUNK}u) {`,
          '    workgroupBarrier();',
          `    for (var q = lid; q < ${TILE * DCHUNK}u; q = q + ${WG}u) {`,
          `      let qt = q / ${DCHUNK}u;`,
          `      let qc = d0 + q % ${DCHUNK}u;`,
          `      let ok = qt < cnt && qc < ${chunkCount}u;`,
          ...[...emitter.chunkArrays].map(
            ([offset, name]) => `      ${name}[q] = select(0.0, I[(${read} + qt) * ${IS}u + ${offset}u + qc], ok);`,
          ),
          '    }',
          '    workgroupBarrier();',
          ...chunks.before,
          '    for (var t = 0u; t < cnt; t = t + 1u) {',
          `      let tb = (${read} + t) * ${IS}u;`,
          ...chunks.perRow,
          '    }',
          '  }',
        ];
  /** The product pass of a tiled kernel for the inner rows [j0, j0 + cnt): chunk after chunk of D,
   *  x's rows i0.. and y's rows j0.. staged in workgroup memory (component-major, so the inner loop
   *  reads rows a + r * ti and b + s * tj as consecutive words), each invocation's ri x rj products
   *  summed in registers (a partial per chunk, then added: the rounding error grows with dk + D / dk
   *  rather than D, like the plain path's blocks), then written to the product tiles. */
  const tiledPass = (read: string): string[] => {
    if (tb === null || tp === null) return [];
    const { ti, tj, ri, rj, dk } = tb;
    const BI = ti * ri;
    const BJ = tj * rj;
    const [XP, YP, PP] = [BI + 1, BJ + 1, BJ + 1];
    const D = tp.dim;
    const blocks: [number, number, number][] = [];
    tp.products.forEach((_, p) => {
      for (let r = 0; r < ri; r++) for (let s = 0; s < rj; s++) blocks.push([p, r, s]);
    });
    const at = (v: Variable): number => layout.offsets.get(v)!;
    const stageLines = (
      name: string,
      rows: number,
      pad: number,
      row: (qr: string) => string,
      ok: string,
      array: string,
      stride: number,
      offset: number,
    ): string[] => [
      `    for (var q = lid; q < ${rows * dk}u; q = q + ${WG}u) {`,
      `      let qr = q / ${dk}u;`,
      `      let qc = d0 + q % ${dk}u;`,
      `      let src = ${row('qr')} * ${stride}u + ${offset}u + min(qc, ${D - 1}u);`,
      `      ${name}[(q % ${dk}u) * ${pad}u + qr] = select(0.0, ${array}[src], ${ok} && qc < ${D}u);`,
      '    }',
    ];
    const term = (p: number, r: number, s: number): string => {
      const prod = tp.products[p]!;
      const x = `xv${tp.outerVars.indexOf(prod.outer)}_${r}`;
      const y = `yv${tp.innerVars.indexOf(prod.inner)}_${s}`;
      if (prod.kind === 'dot') return `(${x} * ${y})`;
      if (prod.weight !== null && prod.weight.dim > 1) return `(wv${p} * lt_sq(${x} - ${y}))`;
      return `lt_sq(${x} - ${y})`;
    };
    return [
      ...blocks.map(([p, r, s]) => `  var a${p}_${r}_${s} = 0.0;`),
      `  for (var d0 = 0u; d0 < ${D}u; d0 = d0 + ${dk}u) {`,
      // Also orders the previous tile's fold (reads of pt) before this tile's writes to pt.
      '    workgroupBarrier();',
      ...tp.outerVars.flatMap((v, n) =>
        stageLines(`xs${n}`, BI, XP, (qr) => `min(i0 + ${qr}, U.nOuter - 1u)`, 'i0 + qr < U.nOuter', 'O', OS, at(v)),
      ),
      ...tp.innerVars.flatMap((v, n) =>
        stageLines(`ys${n}`, BJ, YP, (qr) => `(${read} + min(${qr}, cnt - 1u))`, 'qr < cnt', 'I', IS, at(v)),
      ),
      '    workgroupBarrier();',
      ...blocks.map(([p, r, s]) => `    var b${p}_${r}_${s} = 0.0;`),
      `    for (var c = 0u; c < ${dk}u; c = c + 1u) {`,
      ...tp.outerVars.flatMap((_, n) =>
        Array.from({ length: ri }, (_, r) => `      let xv${n}_${r} = xs${n}[c * ${XP}u + tI + ${r * ti}u];`),
      ),
      ...tp.innerVars.flatMap((_, n) =>
        Array.from({ length: rj }, (_, s) => `      let yv${n}_${s} = ys${n}[c * ${YP}u + tJ + ${s * tj}u];`),
      ),
      ...tp.products.flatMap((prod, p) =>
        prod.weight !== null && prod.weight.dim > 1
          ? [`      let wv${p} = P[${at(prod.weight)}u + min(d0 + c, ${D - 1}u)];`]
          : [],
      ),
      ...blocks.map(([p, r, s]) => `      b${p}_${r}_${s} = b${p}_${r}_${s} + ${term(p, r, s)};`),
      '    }',
      ...blocks.map(([p, r, s]) => `    a${p}_${r}_${s} = a${p}_${r}_${s} + b${p}_${r}_${s};`),
      '  }',
      ...blocks.map(([p, r, s]) => `  pt${p}[(tI + ${r * ti}u) * ${PP}u + tJ + ${s * tj}u] = a${p}_${r}_${s};`),
      '  workgroupBarrier();',
    ];
  };
  /** The loop over the inner rows [lo, hi) in tiles: staging, per-pair code, per-tile merge. `read`
   *  maps j0 to the first row of the tile in the inner buffer, `global` to its true index. */
  const tileLoop = (lo: string, hi: string, read: string, global: string): string[] => [
    `for (var j0 = ${lo}; j0 < ${hi}; j0 = j0 + ${TILE}u) {`,
    `  let cnt = min(${TILE}u, ${hi} - j0);`,
    ...chunkPass(read),
    ...(stage
      ? [
          '  workgroupBarrier();',
          `  for (var q = lid; q < cnt * ${IS}u; q = q + ${WG}u) {`,
          `    tile[q] = I[(${read}) * ${IS}u + q];`,
          '  }',
          '  workgroupBarrier();',
        ]
      : []),
    ...red.tileInit,
    '  for (var t = 0u; t < cnt; t = t + 1u) {',
    stage ? `    let tb = t * ${IS}u;` : `    let tb = (${read} + t) * ${IS}u;`,
    `    let jg = i32(${global} + t);`,
    ...emitter.innerBlock.lines.map((l) => l.slice(2)),
    ...indent(red.fold, '    '),
    '  }',
    ...indent(red.merge, '  '),
    '}',
  ];
  /** A tiled kernel's loop: the product pass of each tile by the whole workgroup, then its pairs
   *  folded by the first bi invocations, one result row each (no barrier in that branch). */
  const tiledLoop = (lo: string, hi: string): string[] => [
    `for (var j0 = ${lo}; j0 < ${hi}; j0 = j0 + ${TILE}u) {`,
    `  let cnt = min(${TILE}u, ${hi} - j0);`,
    ...tiledPass('U.jRead + j0'),
    `  if (lid < ${tb === null ? 0 : tb.ti * tb.ri}u) {`,
    ...indent(red.tileInit, '    '),
    '    for (var t = 0u; t < cnt; t = t + 1u) {',
    `      let tb = (U.jRead + j0 + t) * ${IS}u;`,
    '      let jg = i32(U.jGlobal + j0 + t);',
    ...emitter.innerBlock.lines,
    ...indent(red.fold, '      '),
    '    }',
    ...indent(red.merge, '    '),
    '  }',
    '}',
  ];
  const sparse = config.sparse;
  const head = sparse
    ? [
        // One workgroup = up to WG rows of one cluster: its inner ranges are the same for all of them,
        // so tiles can be shared. Work items and ranges come from storage buffers; with barriers they
        // go through workgroupUniformLoad, which makes them uniform for the barrier analysis.
        ...(stage
          ? ['  if (lid == 0u) { witem = WT[U.item + wid.x]; }', '  let item = workgroupUniformLoad(&witem);']
          : ['  let item = WT[U.item + wid.x];']),
        '  let i = item.x + lid;',
        '  let inRange = lid < item.y;',
        '  let il = select(item.x, i, inRange);',
      ]
    : tb !== null
      ? [
          `  let i0 = wid.x * ${tb.ti * tb.ri}u;`,
          '  let i = i0 + lid;',
          `  let inRange = lid < ${tb.ti * tb.ri}u && i < U.nOuter;`,
          '  let il = min(i, U.nOuter - 1u);',
          `  let tI = lid / ${tb.tj}u;`,
          `  let tJ = lid % ${tb.tj}u;`,
        ]
      : [`  let i = wid.x * ${WG}u + lid;`, '  let inRange = i < U.nOuter;', '  let il = min(i, U.nOuter - 1u);'];
  const loops = sparse
    ? [
        '  for (var r = item.z; r < item.w; r = r + 1u) {',
        ...(stage
          ? [
              '    if (lid == 0u) { wrange = vec2<u32>(u32(IR[2u * r]), u32(IR[2u * r + 1u])); }',
              '    let rg = workgroupUniformLoad(&wrange);',
              '    workgroupBarrier();',
            ]
          : ['    let rg = vec2<u32>(u32(IR[2u * r]), u32(IR[2u * r + 1u]));']),
        ...indent(tileLoop('rg.x', 'rg.y', 'j0', 'j0'), '    '),
        '  }',
      ]
    : tb !== null
      ? indent(parts ? tiledLoop('plo', 'phi') : tiledLoop('0u', 'U.nInner'), '  ')
      : indent(
          parts
            ? tileLoop('plo', 'phi', 'U.jRead + j0', 'U.jGlobal + j0')
            : tileLoop('0u', 'U.nInner', 'U.jRead + j0', 'U.jGlobal + j0'),
          '  ',
        );
  const body = [
    'struct Uniforms { nOuter: u32, nInner: u32, jRead: u32, jGlobal: u32, flags: u32, item: u32, inf: f32, nan: f32, }',
    '@group(0) @binding(0) var<uniform> U: Uniforms;',
    bindings.outer ? '@group(0) @binding(1) var<storage, read> O: array<f32>;' : '',
    bindings.inner ? '@group(0) @binding(2) var<storage, read> I: array<f32>;' : '',
    bindings.params ? '@group(0) @binding(3) var<storage, read> P: array<f32>;' : '',
    bindings.values ? '@group(0) @binding(4) var<storage, read_write> OV: array<f32>;' : '',
    bindings.indices ? '@group(0) @binding(5) var<storage, read_write> OI: array<i32>;' : '',
    bindings.state ? '@group(0) @binding(6) var<storage, read_write> ST: array<u32>;' : '',
    sparse ? '@group(0) @binding(7) var<storage, read> WT: array<vec4<u32>>;' : '',
    sparse ? '@group(0) @binding(8) var<storage, read> IR: array<i32>;' : '',
    stage ? `var<workgroup> tile: array<f32, ${TILE * IS}>;` : '',
    ...[...emitter.chunkArrays.values()].map((name) => `var<workgroup> ${name}: array<f32, ${TILE * DCHUNK}>;`),
    ...(tb === null || tp === null
      ? []
      : [
          ...tp.outerVars.map((_, n) => `var<workgroup> xs${n}: array<f32, ${tb.dk * (tb.ti * tb.ri + 1)}>;`),
          ...tp.innerVars.map((_, n) => `var<workgroup> ys${n}: array<f32, ${tb.dk * (tb.tj * tb.rj + 1)}>;`),
          ...tp.products.map((_, p) => `var<workgroup> pt${p}: array<f32, ${tb.ti * tb.ri * (tb.tj * tb.rj + 1)}>;`),
        ]),
    sparse && stage ? 'var<workgroup> witem: vec4<u32>;' : '',
    sparse && stage ? 'var<workgroup> wrange: vec2<u32>;' : '',
    '',
    `@compute @workgroup_size(${WG})`,
    'fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {',
    ...head,
    // A part's inner rows (uniform across the workgroup, as the barriers need).
    ...(parts ? ['  let plo = wid.y * U.item;', '  let phi = min(plo + U.item, U.nInner);'] : []),
    `  let ob = il * ${Math.max(OS, 1)}u;`,
    `  let ov = il * ${plan.outDim}u;`,
    ...(windowed
      ? [
          `  for (var w = 0u; w < ${win.count}u; w = w + 1u) {`,
          `  let c0 = min(w * ${win.width}u, ${win.components - win.width}u);`,
          `  let sb = ${slot} + w * ${windowWords}u;`,
        ]
      : [`  let sb = ${slot};`]),
    ...emitter.outerBlock.lines,
    ...indent(red.decl, '  '),
    ...(split || parts
      ? ['  if ((U.flags & 1u) != 0u) {', ...indent(red.init, '    '), '  } else {', ...indent(red.load, '    '), '  }']
      : indent(red.init, '  ')),
    ...loops,
    '  if (inRange) {',
    ...(parts
      ? indent(red.store, '    ')
      : split
        ? [
            '    if ((U.flags & 2u) != 0u) {',
            ...indent(red.finalize, '      '),
            '    } else {',
            ...indent(red.store, '      '),
            '    }',
          ]
        : indent(red.finalize, '    ')),
    '  }',
    ...(windowed ? ['  }'] : []),
    '}',
  ];
  return kernelOf(body, bindings, words);
}

/** Invocations per workgroup of the combine kernel (one result row each, no workgroup memory). */
export const COMBINE_WORKGROUP = 64;

/**
 * The combine kernel of an inner-parts reduction (see INNER PARTS): one invocation per result row
 * (and window), part 0's saved state loaded as the running state, the later parts' absorbed in their
 * order (their pairs follow in j, so selections break ties as one sequential pass does), then the
 * result written as the plain kernel's finalization writes it. It reads the parts kernel's
 * uniforms: nOuter rows, nInner inner rows in parts of `item` rows.
 */
export function generateCombineKernel(plan: ReductionPlan): GeneratedKernel {
  const win = reductionWindow(plan);
  const windowed = win.count > 1;
  const weighted = plan.weight !== null;
  const words = stateWords(plan);
  const windowWords = words / win.count;
  const unused = (): string => '0.0';
  const red = WGSL_REDUCTIONS[plan.kind].code({
    kind: plan.kind,
    d: weighted ? plan.formula.dim : win.width,
    e: weighted ? win.width : 0,
    K: plan.k,
    F: unused,
    G: unused,
    out: (k) => (windowed ? `c0 + ${u(k)}` : add(k, 0)),
    dOut: win.components,
    twoFloat: plan.accumulate === 'float64',
  });
  const values = reductionHasValues(plan.kind);
  const indices = reductionHasIndices(plan.kind);
  const bindings: KernelBindings = {
    outer: false,
    inner: false,
    params: false,
    values,
    indices,
    state: true,
    sparse: false,
  };
  const indent = (lines: readonly string[], pad: string): string[] => lines.map((l) => `${pad}${l}`);
  const body = [
    'struct Uniforms { nOuter: u32, nInner: u32, jRead: u32, jGlobal: u32, flags: u32, item: u32, inf: f32, nan: f32, }',
    '@group(0) @binding(0) var<uniform> U: Uniforms;',
    values ? '@group(0) @binding(4) var<storage, read_write> OV: array<f32>;' : '',
    indices ? '@group(0) @binding(5) var<storage, read_write> OI: array<i32>;' : '',
    '@group(0) @binding(6) var<storage, read_write> ST: array<u32>;',
    '',
    `@compute @workgroup_size(${COMBINE_WORKGROUP})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>) {',
    '  let il = gid.x;',
    '  if (il >= U.nOuter) { return; }',
    `  let ov = il * ${plan.outDim}u;`,
    '  let parts = (U.nInner + U.item - 1u) / U.item;',
    ...(windowed
      ? [
          `  for (var w = 0u; w < ${win.count}u; w = w + 1u) {`,
          `  let c0 = min(w * ${win.width}u, ${win.components - win.width}u);`,
          `  let sb = il * ${words}u + w * ${windowWords}u;`,
        ]
      : [`  let sb = il * ${words}u;`]),
    ...indent(red.decl, '  '),
    ...indent(red.load, '  '),
    '  for (var q = 1u; q < parts; q = q + 1u) {',
    `    let sp = (q * U.nOuter + il) * ${words}u${windowed ? ` + w * ${windowWords}u` : ''};`,
    ...indent(red.absorb, '    '),
    '  }',
    ...indent(red.finalize, '  '),
    ...(windowed ? ['  }'] : []),
    '}',
  ];
  return kernelOf(body, bindings, words);
}
