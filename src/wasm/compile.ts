// Compiles a reduction plan into a tile program for the AssemblyScript interpreter (assembly/isa.ts).
// The work is a walk of the formula: each operation record lowers itself through the TileEmitter
// below; sub-formulas that do not vary with the reduced index go to the "outer" code, run once per
// result row, and only the rest runs per block of the reduced index.
import * as isa from '../../assembly/isa.js';
import { LruCache, planStructureKey, type CompileCacheStats } from '../core/compile-cache.js';
import { ResourceLimitError } from '../core/errors.js';
import { postOrder, StructuralKeys, type FormulaNode, type Variable } from '../core/formula.js';
import type { TileEmitter, TileReg } from '../core/op-def.js';
import type { ReductionKind, ReductionPlan } from '../core/reduction.js';
import { rewriteFormula } from '../core/rewrite.js';

/** A register of the tile program, before memory is laid out. */
export interface Register extends TileReg {
  readonly index: number;
  readonly kind: number; // isa.REG_*
  /** The variable an outer/inner variable register reads (null in a cached program template). */
  readonly variable: Variable | null;
  /** Initial values of a uniform register holding a parameter or constant, or of a literal the
   *  lowering of an operation made (null for a parameter in a cached program template). */
  readonly values: readonly number[] | null;
  /** The position in plan.variables of the variable a variable or parameter register reads, else -1:
   *  what binds a cached program to the data of a new plan. */
  readonly source: number;
  /** For a view: its parent register and first row. */
  readonly parent: Register | null;
  readonly first: number;
}

export interface TileProgram {
  readonly registers: readonly Register[];
  readonly outerCode: Int32Array;
  readonly innerCode: Int32Array;
  readonly reduction: number; // isa.RED_*
  readonly formulaRegister: Register;
  readonly weightRegister: Register | null;
}

/** The WebAssembly lowering of each engine reduction: its kernel code (assembly/isa.ts RED_*), and
 *  for sums the code that accumulates float32 terms in float64 (`accumulate: 'float64'`). The
 *  accumulator layout per code is documented at the top of assembly/kernel.ts and sized by
 *  accumulatorBytes (wasm-engine.ts). A Record, so a reduction without a lowering does not compile. */
export const WASM_REDUCTIONS: Readonly<Record<ReductionKind, { readonly code: number; readonly acc64?: number }>> = {
  sum: { code: isa.RED_SUM, acc64: isa.RED_SUM_ACC64 },
  logSumExp: { code: isa.RED_LSE },
  logSumExpWeighted: { code: isa.RED_LSE_W },
  // With the row's log-sum-exp as one more output column, split off by the engine (ReductionOutput.lse):
  // the kernel has it anyway (its running max and sum), and the gradient needs it.
  sumSoftMaxWeight: { code: isa.RED_SSMW_LSE },
  min: { code: isa.RED_MIN },
  max: { code: isa.RED_MAX },
  argMin: { code: isa.RED_ARGMIN },
  argMax: { code: isa.RED_ARGMAX },
  minArgMin: { code: isa.RED_MINARGMIN },
  maxArgMax: { code: isa.RED_MAXARGMAX },
  kMin: { code: isa.RED_KMIN },
  argKMin: { code: isa.RED_ARGKMIN },
  kMinArgKMin: { code: isa.RED_KMINARGKMIN },
};

/** The kernel code of a plan's reduction. */
export function reductionCode(kind: ReductionKind, accumulate?: 'float64'): number {
  const lowering = WASM_REDUCTIONS[kind];
  if (accumulate === undefined) return lowering.code;
  if (lowering.acc64 === undefined) throw new Error(`internal: ${kind} has no float64 accumulation`);
  return lowering.acc64;
}

class ProgramBuilder implements TileEmitter {
  readonly registers: Register[] = [];
  readonly outer: number[] = [];
  readonly inner: number[] = [];
  private readonly memo = new Map<string, Register>();
  private readonly keys = new StructuralKeys();

  constructor(private readonly roles: ReadonlyMap<Variable, { role: 'outer' | 'inner' | 'param'; source: number }>) {}

  private add(reg: Omit<Register, 'index'>): Register {
    const r: Register = { ...reg, index: this.registers.length };
    this.registers.push(r);
    return r;
  }

  private scratch(dim: number, varying: boolean): Register {
    return this.add({
      dim,
      varying,
      kind: varying ? isa.REG_BLOCK : isa.REG_UNIFORM,
      variable: null,
      values: null,
      source: -1,
      parent: null,
      first: 0,
    });
  }

  private instruction(opcode: number, dst: Register, args: readonly TileReg[], aux: number): void {
    const operands = args.map((a) => (a as Register).index);
    if (!dst.varying && args.some((a) => a.varying)) {
      throw new Error(`internal: opcode ${opcode} writes a uniform register from a varying operand`);
    }
    const code = dst.varying ? this.inner : this.outer;
    code.push(opcode, dst.index, operands[0] ?? -1, operands[1] ?? -1, operands[2] ?? -1, aux, 0, 0);
  }

  emit(opcode: number, dim: number, args: readonly TileReg[], aux = 0): TileReg {
    const dst = this.scratch(
      dim,
      args.some((a) => a.varying),
    );
    this.instruction(opcode, dst, args, aux);
    return dst;
  }

  emitInto(opcode: number, dst: TileReg, args: readonly TileReg[], aux = 0): void {
    this.instruction(opcode, dst as Register, args, aux);
  }

  alloc(dim: number, like: readonly TileReg[]): TileReg {
    return this.scratch(
      dim,
      like.some((a) => a.varying),
    );
  }

  view(reg: TileReg, first: number, dim: number): TileReg {
    const r = reg as Register;
    if (first === 0 && dim === r.dim) return r;
    const root = r.parent ?? r;
    return this.add({
      dim,
      varying: r.varying,
      kind: isa.REG_VIEW,
      variable: null,
      values: null,
      source: -1,
      parent: root,
      first: r.first + first,
    });
  }

  constant(values: readonly number[]): TileReg {
    return this.add({
      dim: values.length,
      varying: false,
      kind: isa.REG_UNIFORM,
      variable: null,
      values,
      source: -1,
      parent: null,
      first: 0,
    });
  }

  /** Lowers a node, sharing structurally equal sub-formulas; iterative (post-order), so formulas of
   *  any depth compile without exhausting the call stack. */
  lower(root: FormulaNode): Register {
    for (const node of postOrder(root)) {
      const key = this.keys.of(node);
      if (this.memo.has(key)) continue;
      let reg: Register;
      if (node.kind === 'var') {
        const entry = this.roles.get(node);
        if (entry === undefined) throw new Error(`internal: variable ${node.name} is not in the plan`);
        // No data in the program: it is cached across plans, and bound to each plan's data by `source`.
        reg = this.add({
          dim: node.dim,
          varying: entry.role === 'inner',
          kind:
            entry.role === 'param' ? isa.REG_UNIFORM : entry.role === 'inner' ? isa.REG_INNER_VAR : isa.REG_OUTER_VAR,
          variable: null,
          values: null,
          source: entry.source,
          parent: null,
          first: 0,
        });
      } else {
        const args = node.args.map((a) => this.memo.get(this.keys.of(a))!);
        reg = node.def.tile(this, args, node.params, node.dim) as Register;
        if (reg.dim !== node.dim) {
          throw new Error(`internal: ${node.def.name} lowered to ${reg.dim} rows instead of ${node.dim}`);
        }
      }
      this.memo.set(key, reg);
    }
    return this.memo.get(this.keys.of(root))!;
  }

  /** The reductions read block registers: a value that does not vary is copied into one. */
  varying(reg: Register): Register {
    if (reg.varying) return reg;
    const dst = this.scratch(reg.dim, true);
    this.instruction(isa.OP_COPY, dst, [reg], 0);
    return dst;
  }
}

/** Programs with more registers than this get their scratch registers reused (below it, every value
 *  keeps its own register: the kernel's fusion of MUL + EXP / ADD pairs looks for values that are
 *  not read again, and a reused register is). */
const REUSE_MIN_REGISTERS = 256;
const reuse = { minRegisters: REUSE_MIN_REGISTERS };

/** @internal Hooks for the tests: register reuse on every program (0) or the default. */
export const compileTesting = {
  reuseRegistersFrom(minRegisters: number): void {
    reuse.minRegisters = minRegisters;
  },
  reset(): void {
    reuse.minRegisters = REUSE_MIN_REGISTERS;
  },
};

const rootOf = (r: Register): Register => r.parent ?? r;
const isScratch = (r: Register): boolean =>
  (r.kind === isa.REG_BLOCK || r.kind === isa.REG_UNIFORM) && r.values === null && r.source < 0 && r.parent === null;

/**
 * Liveness-based register allocation: scratch registers (block, and uniform values computed by the
 * outer code) whose live ranges do not overlap share one register of the same kind and dimension.
 * Time runs through the outer code, then the inner code (which repeats per block, but every value it
 * reads it wrote earlier in the same pass); the reduced registers live to the end. A register is
 * never shared with an operand of the instruction that writes it. Views follow their parent.
 */
function reuseRegisters(
  registers: readonly Register[],
  outer: readonly number[],
  inner: readonly number[],
  live: readonly Register[],
): { registers: Register[]; outer: number[]; inner: number[]; map: (r: Register) => Register } {
  const first = new Map<Register, number>();
  const last = new Map<Register, number>();
  const mention = (index: number, time: number): void => {
    if (index < 0) return;
    const root = rootOf(registers[index]!);
    if (!first.has(root)) first.set(root, time);
    last.set(root, time);
  };
  const code = [...outer, ...inner];
  for (let q = 0; q * isa.INSTR_WORDS < code.length; q++) {
    const at = q * isa.INSTR_WORDS;
    for (const w of [isa.I_A, isa.I_B, isa.I_C, isa.I_DST]) mention(code[at + w]!, q);
  }
  const end = code.length / isa.INSTR_WORDS;
  for (const r of live) last.set(rootOf(r), end);
  // Linear scan in order of first mention: a free list per (kind, dim).
  const scratch = registers.filter((r) => isScratch(r) && first.has(r)).sort((a, b) => first.get(a)! - first.get(b)!);
  const slotOf = new Map<Register, Register>();
  const free = new Map<string, { slot: Register; until: number }[]>();
  const busy: { slot: Register; until: number; pool: string }[] = [];
  for (const r of scratch) {
    const start = first.get(r)!;
    // Release the slots whose last use is strictly before this register's first write.
    for (let k = busy.length - 1; k >= 0; k--) {
      if (busy[k]!.until < start) {
        const [b] = busy.splice(k, 1);
        (free.get(b!.pool) ?? free.set(b!.pool, []).get(b!.pool)!).push(b!);
      }
    }
    const pool = `${r.kind}:${r.dim}`;
    const reusable = free.get(pool);
    const slot = reusable !== undefined && reusable.length > 0 ? reusable.pop()!.slot : r;
    slotOf.set(r, slot);
    busy.push({ slot, until: last.get(r)!, pool });
  }
  // Renumber: slots and every other register, in the old order, so a view's parent keeps a smaller
  // index than the view (the kernel requires it).
  const renamed = new Map<Register, Register>();
  const out: Register[] = [];
  for (const r of registers) {
    if (isScratch(r)) {
      if (!first.has(r)) continue; // never used
      const slot = slotOf.get(r)!;
      let physical = renamed.get(slot);
      if (physical === undefined) {
        physical = { ...slot, index: out.length };
        out.push(physical);
        renamed.set(slot, physical);
      }
      renamed.set(r, physical);
    } else if (r.kind === isa.REG_VIEW) {
      const parent = renamed.get(r.parent!);
      if (parent === undefined) continue; // a view of a scratch register that is never written
      const physical: Register = { ...r, parent, index: out.length };
      out.push(physical);
      renamed.set(r, physical);
    } else {
      const physical: Register = { ...r, index: out.length };
      out.push(physical);
      renamed.set(r, physical);
    }
  }
  const remap = (words: readonly number[]): number[] =>
    words.map((w, k) => {
      const field = k % isa.INSTR_WORDS;
      const isRegister = field === isa.I_DST || field === isa.I_A || field === isa.I_B || field === isa.I_C;
      return isRegister && w >= 0 ? renamed.get(registers[w]!)!.index : w;
    });
  return { registers: out, outer: remap(outer), inner: remap(inner), map: (r) => renamed.get(r)! };
}

/** Tile programs compiled, by plan structure (planStructureKey): a formula called again on new data
 *  (placeholders, batch items, a loop rebuilding the same formula) compiles once. A template is a
 *  few kB (its registers and code); 256 of them cover any working set of formulas we know of. */
const PROGRAM_CACHE_SIZE = 256;
const programs = new LruCache<TileProgram>(PROGRAM_CACHE_SIZE);

/** @internal The tile-program cache, for tests and benchmarks: its counters, emptied, resized. */
export const programCache = {
  get stats(): CompileCacheStats {
    return programs.stats;
  },
  clear(): void {
    programs.clear();
  },
  resize(capacity: number): void {
    programs.resize(capacity);
  },
};

/**
 * The tile program of a plan, bound to the plan's data: compiled once per plan structure (cached,
 * LRU), then each call only fills in the variables and parameter values of its own plan.
 * @throws ResourceLimitError when the formula needs more registers than the kernel has.
 */
export function compilePlan(plan: ReductionPlan): TileProgram {
  const template = programs.getOrMake(planStructureKey(plan), () => compileTemplate(plan));
  return bindProgram(template, plan);
}

/** A template's registers with the data of `plan`: variables by reference, parameter values copied. */
function bindProgram(template: TileProgram, plan: ReductionPlan): TileProgram {
  const registers = template.registers.map((r): Register => {
    if (r.source < 0) return r;
    const variable = plan.variables[r.source]!.variable;
    return r.kind === isa.REG_UNIFORM ? { ...r, values: Array.from(variable.data) } : { ...r, variable };
  });
  // Views keep pointing at the template's parent registers: only their index is read (planJob).
  return {
    ...template,
    registers,
    formulaRegister: registers[template.formulaRegister.index]!,
    weightRegister: template.weightRegister === null ? null : registers[template.weightRegister.index]!,
  };
}

/** Compiles a plan's structure: a program whose variable and parameter registers name their
 *  position in plan.variables (`source`) instead of holding data. */
function compileTemplate(plan: ReductionPlan): TileProgram {
  const roles = new Map(plan.variables.map((v, source) => [v.variable, { role: v.role, source }] as const));
  const builder = new ProgramBuilder(roles);
  // The squared-distance idioms (sum of squared differences, ...) compile to the fused SQDIST.
  // A sum with column sums (RED_SUM_COLS) lowers its columns first, so that the last instruction is
  // F's (the kernel folds a last F = MUL(a, b) without storing F); the other reductions F first.
  const columnsFirst = plan.kind === 'sum' && plan.weight !== null;
  let weightRegister = columnsFirst ? builder.varying(builder.lower(rewriteFormula(plan.weight!))) : null;
  let formulaRegister = builder.varying(builder.lower(rewriteFormula(plan.formula)));
  if (!columnsFirst && plan.weight !== null)
    weightRegister = builder.varying(builder.lower(rewriteFormula(plan.weight)));
  let registers: readonly Register[] = builder.registers;
  let outer: readonly number[] = builder.outer;
  let inner: readonly number[] = builder.inner;
  if (registers.length > reuse.minRegisters) {
    const live = weightRegister === null ? [formulaRegister] : [formulaRegister, weightRegister];
    const reused = reuseRegisters(registers, outer, inner, live);
    registers = reused.registers;
    outer = reused.outer;
    inner = reused.inner;
    formulaRegister = reused.map(formulaRegister);
    weightRegister = weightRegister === null ? null : reused.map(weightRegister);
  }
  if (registers.length > isa.MAX_REGS) {
    throw new ResourceLimitError(
      `${plan.kind}: the formula needs ${registers.length} registers of the WebAssembly kernel, more than its limit of ${isa.MAX_REGS} ` +
        '(distinct constants, parameters, variables and views each take one); share sub-formulas, or pack constants into one Pm vector',
      registers.length,
      isa.MAX_REGS,
      'registers',
    );
  }
  return {
    registers,
    outerCode: Int32Array.from(outer),
    innerCode: Int32Array.from(inner),
    // A sum with a weight: the column sums of the weight in the same sweep (RED_SUM_COLS).
    reduction:
      plan.kind === 'sum' && plan.weight !== null ? isa.RED_SUM_COLS : reductionCode(plan.kind, plan.accumulate),
    formulaRegister,
    weightRegister,
  };
}
