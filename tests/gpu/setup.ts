// Shared by the GPU tests: whether this machine has a WebGPU adapter (CI does: Dawn on SwiftShader,
// see .ci/setup-gpu.sh and vitest.config.ts), a guard that every GPU result came from WebGPU, and the
// setup the large-D suites share (engines per suite, seeded float32 data, float64 references).
import { afterAll, beforeAll, expect } from 'vitest';
import { Pm, Vi, Vj, type LazyTensor } from '../../src/index.js';
import { WebGPUEngine, type WebGPUEngineOptions } from '../../src/gpu/engine.js';
import { webgpuStatus, webgpuTesting } from '../../src/runtime/index.js';
import { refSum } from '../helpers/dense-reference.js';
import { dot } from '../helpers/op-cases.js';
import { asSeen, rng, typed, uniformRows } from '../helpers/random.js';

const status = await webgpuStatus();

/** True when an adapter is available; GPU suites are skipped (describe.skipIf) otherwise. */
export const hasGpu = status.available;
export const adapterName = status.adapter
  ? `${status.adapter.vendor}/${status.adapter.architecture} (${status.adapter.description})`
  : `none: ${status.reason}`;

if (!hasGpu) console.warn(`GPU tests skipped: no WebGPU adapter (${status.reason})`);

/** Asserts that a result was computed by the WebGPU engine. */
export function expectGpu(result: { engine: string }, label = ''): void {
  expect(result.engine, `${label}: engine`).toBe('webgpu');
}

/**
 * WebGPU engines for one suite, on the shared test device: call it in a describe; the factory makes
 * an engine with `cpuAdapter: true` (the SwiftShader adapter, whatever it reports) and `options`,
 * and every engine made is trimmed after the suite. The device is acquired in a beforeAll registered
 * first, so the suite's own beforeAll hooks may already make engines.
 */
export function suiteEngines(): (options?: WebGPUEngineOptions) => WebGPUEngine {
  let device: GPUDevice;
  const engines: WebGPUEngine[] = [];
  beforeAll(async () => {
    device = (await webgpuTesting.engine())!.device;
  });
  afterAll(() => engines.forEach((e) => e.trim()));
  return (options = {}) => {
    const e = new WebGPUEngine(device, { cpuAdapter: true, ...options });
    engines.push(e);
    return e;
  };
}

/** Float32 test data of dimension D: the rows drawn (float64), the typed data and the rows as the
 *  engines see them (rounded to float32), for float64 references of what the engines compute. */
export interface Float32Rows {
  readonly rows: number[][];
  readonly data: Float32Array;
  readonly seen: number[][];
}

function float32Rows(random: () => number, n: number, d: number, lo?: number, hi?: number): Float32Rows {
  const rows = uniformRows(random, n, d, lo, hi);
  return { rows, data: typed(rows, 'float32') as Float32Array, seen: asSeen(rows, 'float32') };
}

/**
 * The data of the large-D suites, from one seeded generator: x (N x D) and y (M x D) uniform in
 * [-1, 1) as a Vi and a Vj, then a positive diagonal weight w in [0.5, 2) (a Pm), with the float32
 * rows the engines see: sx, sy and sw (w's one row).
 */
export function pairData(seed: number, N: number, M: number, D: number) {
  const random = rng(seed);
  const xr = float32Rows(random, N, D);
  const yr = float32Rows(random, M, D);
  const wr = float32Rows(random, 1, D, 0.5, 2);
  return {
    x: Vi(xr.data, D),
    y: Vj(yr.data, D),
    w: Pm(wr.data),
    xs: xr.rows,
    ys: yr.rows,
    sx: xr.seen,
    sy: yr.seen,
    sw: wr.seen[0]!,
  };
}

/** |a - b|^2 in float64. */
export const sqDist = (a: number[], b: number[]): number => a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0);

/**
 * Two products of x_i and y_j (a dot product and a diagonal weighted squared distance) and a sum of a
 * per-pair vector (|x - y| summed) beside them, summed over j: the formula, its float64 reference
 * (`want`, one value per row) and the sums of the absolute terms (`scale`: the dot product cancels).
 */
export function productsCase(data: ReturnType<typeof pairData>): {
  F: LazyTensor;
  want: number[];
  scale: number[];
} {
  const { x, y, w, sx, sy, sw } = data;
  const F = x.dot(y).add(x.weightedSqDist(y, w)).add(x.sub(y).abs().sum(-1));
  const f = (i: number, j: number): number =>
    dot(sx[i]!, sy[j]!) +
    sx[i]!.reduce((t, v, k) => t + sw[k]! * (v - sy[j]![k]!) ** 2, 0) +
    sx[i]!.reduce((t, v, k) => t + Math.abs(v - sy[j]![k]!), 0);
  const absTerms = (i: number, j: number): number =>
    sx[i]!.reduce(
      (t, v, k) => t + Math.abs(v * sy[j]![k]!) + sw[k]! * (v - sy[j]![k]!) ** 2 + Math.abs(v - sy[j]![k]!),
      0,
    );
  const sizes = { N: sx.length, M: sy.length };
  return {
    F,
    want: refSum((i, j) => [f(i, j)], sizes, 1).value.flat(),
    scale: refSum((i, j) => [absTerms(i, j)], sizes, 1).value.flat(),
  };
}
