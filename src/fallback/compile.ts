// Compiles a reduction plan into a tile program for the AssemblyScript interpreter (assembly/isa.ts).
// The work is a walk of the formula: each operation record lowers itself through the TileEmitter
// below; sub-formulas that do not vary with the reduced index go to the "outer" code, run once per
// result row, and only the rest runs per block of the reduced index.
import * as isa from '../../assembly/isa.js';
import { nodeKey, type FormulaNode, type Variable } from '../core/formula.js';
import type { TileEmitter, TileReg } from '../core/op-def.js';
import type { ReductionKind, ReductionPlan } from '../core/reduction.js';

/** A register of the tile program, before memory is laid out. */
export interface Register extends TileReg {
  readonly index: number;
  readonly kind: number; // isa.REG_*
  /** The variable an outer/inner variable register reads. */
  readonly variable: Variable | null;
  /** Initial values of a uniform register holding a parameter or constant. */
  readonly values: readonly number[] | null;
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

export function reductionCode(kind: ReductionKind): number {
  switch (kind) {
    case 'sum':
      return isa.RED_SUM;
    case 'logSumExp':
      return isa.RED_LSE;
    case 'logSumExpWeighted':
      return isa.RED_LSE_W;
    case 'sumSoftMaxWeight':
      return isa.RED_SSMW;
    case 'min':
      return isa.RED_MIN;
    case 'max':
      return isa.RED_MAX;
    case 'argMin':
      return isa.RED_ARGMIN;
    case 'argMax':
      return isa.RED_ARGMAX;
    case 'minArgMin':
      return isa.RED_MINARGMIN;
    case 'maxArgMax':
      return isa.RED_MAXARGMAX;
    case 'kMin':
      return isa.RED_KMIN;
    case 'argKMin':
      return isa.RED_ARGKMIN;
    case 'kMinArgKMin':
      return isa.RED_KMINARGKMIN;
  }
}

class ProgramBuilder implements TileEmitter {
  readonly registers: Register[] = [];
  readonly outer: number[] = [];
  readonly inner: number[] = [];
  private readonly memo = new Map<string, Register>();

  constructor(private readonly roles: ReadonlyMap<Variable, 'outer' | 'inner' | 'param'>) {}

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
    const dst = this.scratch(dim, args.some((a) => a.varying));
    this.instruction(opcode, dst, args, aux);
    return dst;
  }

  emitInto(opcode: number, dst: TileReg, args: readonly TileReg[], aux = 0): void {
    this.instruction(opcode, dst as Register, args, aux);
  }

  alloc(dim: number, like: readonly TileReg[]): TileReg {
    return this.scratch(dim, like.some((a) => a.varying));
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
      parent: null,
      first: 0,
    });
  }

  /** Lowers a node, sharing structurally equal sub-formulas. */
  lower(node: FormulaNode): Register {
    const key = nodeKey(node);
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit;
    let reg: Register;
    if (node.kind === 'var') {
      const role = this.roles.get(node) ?? 'param';
      reg =
        role === 'param'
          ? (this.constant(Array.from(node.data)) as Register)
          : this.add({
              dim: node.dim,
              varying: role === 'inner',
              kind: role === 'inner' ? isa.REG_INNER_VAR : isa.REG_OUTER_VAR,
              variable: node,
              values: null,
              parent: null,
              first: 0,
            });
    } else {
      const args = node.args.map((a) => this.lower(a));
      reg = node.def.tile(this, args, node.params, node.dim) as Register;
      if (reg.dim !== node.dim) {
        throw new Error(`internal: ${node.def.name} lowered to ${reg.dim} rows instead of ${node.dim}`);
      }
    }
    this.memo.set(key, reg);
    return reg;
  }

  /** The reductions read block registers: a value that does not vary is copied into one. */
  varying(reg: Register): Register {
    if (reg.varying) return reg;
    const dst = this.scratch(reg.dim, true);
    this.instruction(isa.OP_COPY, dst, [reg], 0);
    return dst;
  }
}

export function compilePlan(plan: ReductionPlan): TileProgram {
  const roles = new Map(plan.variables.map((v) => [v.variable, v.role] as const));
  const builder = new ProgramBuilder(roles);
  const formulaRegister = builder.varying(builder.lower(plan.formula));
  const weightRegister = plan.weight === null ? null : builder.varying(builder.lower(plan.weight));
  return {
    registers: builder.registers,
    outerCode: Int32Array.from(builder.outer),
    innerCode: Int32Array.from(builder.inner),
    reduction: reductionCode(plan.kind),
    formulaRegister,
    weightRegister,
  };
}
