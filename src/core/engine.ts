// The engine interface: what the core asks of an engine, and what engine selection (src/runtime)
// needs to know about one. The core never imports an engine; engines (src/wasm, src/gpu) import the
// core and implement this interface, and the runtime, which detects the platform, picks one per plan
// and hands the core one function that runs plans (setReductionExecutor in lazy-tensor.ts).
import type { DType } from './formula.js';
import type { ReductionOutput, ReductionPlan } from './reduction.js';
import type { RunControl } from './scheduling.js';
import type { EngineName } from './tensor.js';

/** An engine: runs reduction plans. */
export interface Engine {
  /** What a result computed here reports as its `engine`. */
  readonly name: EngineName;
  /** The precisions the engine computes in (WGSL has no f64: the WebGPU engine has float32 only). */
  readonly dtypes: readonly DType[];
  /**
   * Why this engine cannot run `plan` (one sentence, for a warning or a status), or null when it can.
   * Selection asks before `reduce`; a plan an engine refuses runs on another one (WebAssembly runs
   * every plan). Cheap and synchronous: it looks at the plan's kind, sizes and dtype only.
   */
  unsupported(plan: ReductionPlan): string | null;
  /**
   * Runs the plan. The output is laid out [nOuter, outDim] (values and/or indices, as the kind says);
   * rows that no cluster of a block-sparse plan covers hold the reduction of an empty set.
   * `control.signal` aborts the run (it rejects with the signal's reason; the engine stays usable)
   * and `control.onRows` is told the output rows done, adding up to `plan.nOuter`.
   * @throws ResourceLimitError when the plan does not fit the engine's memory.
   */
  reduce(plan: ReductionPlan, control?: RunControl): Promise<ReductionOutput>;
}

/** Why an engine of these `dtypes` cannot run `plan`, or null (the common first test of `unsupported`). */
export function unsupportedDType(engine: string, dtypes: readonly DType[], plan: ReductionPlan): string | null {
  return dtypes.includes(plan.dtype)
    ? null
    : `the ${engine} engine computes in ${dtypes.join(' and ')}, not ${plan.dtype}`;
}
