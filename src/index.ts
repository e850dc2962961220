// lazytensor: symbolic matrices for JavaScript. Reductions over N x M matrices defined by a formula,
// computed tile by tile and never stored.
import './runtime/index.js';

export { LazyTensor, Pm, Vi, Vj } from './core/lazy-tensor.js';
export type { LogSumExpOptions, ReductionOptions, SumOptions, ValuesAndIndices } from './core/lazy-tensor.js';
export type { ArrayInput, ParameterOptions, VariableOptions } from './core/input.js';
export type { DType } from './core/formula.js';
export type { Axis, EngineChoice } from './core/reduction.js';
export type { AbortSignalLike, AbortSignalShape, ReductionProgress } from './core/scheduling.js';
export { checkpoint, isAbortSignal, throwIfAborted } from './core/scheduling.js';
export { Tensor } from './core/tensor.js';
export { reduction, runReduction, vjp } from './core/reduction-grad.js';
export { solveVjp } from './core/solve-vjp.js';
export { Tape, Traced, valueAndGrad } from './core/tape.js';
export { Formula, formula } from './core/placeholder.js';
export type { ValueAndGrad, ValueAndGradOptions } from './core/tape.js';
export { knn } from './core/knn.js';
export { kdOrder, kdOrderAsync } from './core/kd-order.js';
export type { KnnMetric, KnnOptions, KnnResult } from './core/knn.js';
export { kMeans } from './core/kmeans.js';
export { residentVariable } from './core/resident-variable.js';
export type { ResidentVariable } from './core/resident-variable.js';
export type { KMeansOptions, KMeansResult } from './core/kmeans.js';
export { clusterRangesCentroids, fromMatrix, gridCluster, sortClusters, swapAxes } from './core/block-sparse.js';
export type { BlockRanges } from './core/block-sparse.js';
export type { SolveData, SolveOptions, SolveResult, SolvedWith } from './core/solve.js';
export type { DifferentiableReduction, ReductionSpec, VjpOptions } from './core/reduction-grad.js';
export type { EngineName, NestedArray, TensorDType, TensorIndices, TensorOperand } from './core/tensor.js';
export { InputError, LazyTensorError, ResourceLimitError, ShapeError } from './core/errors.js';
export {
  AUTO_MIN_PAIRS,
  configureWebGPU,
  getDefaultEngine,
  releaseWebGPU,
  setDefaultEngine,
  webgpuStatus,
} from './runtime/index.js';
export type { AutoCosts, WebGPUOptions, WebGPUStatus } from './runtime/index.js';
export type { CostClass, CostFigures, EngineFigures } from './runtime/cost-model.js';
export type { FigureSource, FigureSources } from './runtime/calibration.js';
export { getWasmThreads, setWasmThreads, setWasmWorkerUrl } from './wasm/workers.js';
export type { WorkerState } from './wasm/workers.js';
export { releaseWasm, useWasmModule, wasmStatus } from './wasm/wasm-loader.js';
export type { WasmModule, WasmStatus } from './wasm/wasm-loader.js';
export type { KernelSource } from './wasm/kernel-source.js';
export type { RuntimeName } from './runtime/features.js';
