// engine: 'auto' from measured costs (issue 15): the cost model is a pure function of its figures
// (decisions tested with injected figures), the calibration runs once per device, yields to the
// event loop, and webgpuStatus reports the figures used and where each comes from.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Vi, Vj } from '../../src/index.js';
import {
  chooseEngine,
  defaultFigures,
  DEFAULT_WEBGPU_FIGURES,
  predictSeconds,
  reductionShape,
  type CostFigures,
} from '../../src/runtime/cost-model.js';
import { AUTO_MIN_PAIRS, configureWebGPU, webgpuStatus, webgpuTesting } from '../../src/runtime/index.js';
import { InputError } from '../../src/core/errors.js';
import { REDUCTION_NAMES, REDUCTIONS, type AnyReductionKind } from '../../src/core/reduction-defs.js';
import { hasGpu } from './setup.js';

const gaussPlan = (N: number, M: number, D = 3) =>
  Vi(new Float32Array(N * D), D)
    .sqDist(Vj(new Float32Array(M * D), D))
    .mul(-1)
    .exp()
    .plan('sum', 1, undefined);

const figures = (gpuRate: number, gpuOverhead: number, wasmRate: number): CostFigures => ({
  wasm: {
    rate: { kernel: wasmRate, select: wasmRate / 2, product: wasmRate * 4 },
    overhead: 1e-4,
    bytesPerSecond: Infinity,
  },
  webgpu: {
    rate: { kernel: gpuRate, select: gpuRate / 2, product: gpuRate * 20 },
    overhead: gpuOverhead,
    bytesPerSecond: 1e10,
  },
});

describe('the cost model', () => {
  it('classifies reductions: kernel sums, selections, large-D products (work = D per pair)', () => {
    const g = reductionShape(gaussPlan(100, 200));
    expect(g).toMatchObject({ pairs: 20_000, cls: 'kernel', work: 1 });
    // inputs (100 x 3 and 200 x 3 floats) and the results (100 values), in bytes
    expect(g.bytes).toBe(4 * (300 + 600 + 100));
    const x = Vi(new Float32Array(10 * 64), 64);
    const y = Vj(new Float32Array(30 * 64), 64);
    expect(reductionShape(x.sqDist(y).plan('argKMin', 1, undefined, undefined, undefined, 5))).toMatchObject({
      cls: 'product',
      work: 64,
    });
    const small = Vi(new Float32Array(10 * 3), 3).sqDist(Vj(new Float32Array(30 * 3), 3));
    expect(reductionShape(small.plan('argKMin', 1, undefined, undefined, undefined, 5)).cls).toBe('select');
    expect(reductionShape(small.plan('min', 1, undefined)).cls).toBe('select');
    expect(reductionShape(small.plan('logSumExp', 1, undefined)).cls).toBe('kernel');
  });

  // Written here, not read from the records: a selection priced as a kernel sum (the K-max family
  // was missing from the model's own list once) or a new reduction without a row fails.
  const SELECTION: Record<AnyReductionKind, boolean> = {
    sum: false,
    logSumExp: false,
    logSumExpWeighted: false,
    sumSoftMaxWeight: false,
    prod: false,
    min: true,
    max: true,
    argMin: true,
    argMax: true,
    minArgMin: true,
    maxArgMax: true,
    kMin: true,
    argKMin: true,
    kMinArgKMin: true,
    kMax: true,
    argKMax: true,
    kMaxArgKMax: true,
  };

  it('prices every selection as one and every accumulation as a kernel sum, lowered reductions included', () => {
    expect(Object.keys(SELECTION).sort()).toEqual([...REDUCTION_NAMES].sort());
    const F = Vi(new Float32Array(10), 1)
      .sub(Vj(new Float32Array(30), 1))
      .abs();
    const w = Vj(new Float32Array(30).fill(1), 1);
    for (const name of REDUCTION_NAMES) {
      const def = REDUCTIONS[name];
      const expected = SELECTION[name] ? 'select' : 'kernel';
      expect(def.cost, name).toBe(expected);
      // A lowered reduction runs as its engine reduction, whose class must be the same.
      if (def.lowering !== null) expect(REDUCTIONS[def.lowering.kind].cost, name).toBe(expected);
      const plan = F.plan(name, 1, undefined, undefined, def.weight === 'required' ? w : undefined, def.takesK ? 3 : 0);
      expect(reductionShape(plan).cls, name).toBe(expected);
    }
  });

  it('predicts overhead + work / rate + bytes / bandwidth, and picks the faster engine (Wasm on a tie)', () => {
    const f = figures(1e11, 5e-4, 1e9);
    const shape = reductionShape(gaussPlan(1000, 1000));
    expect(predictSeconds(shape, f.webgpu)).toBeCloseTo(5e-4 + 1e6 / 1e11 + shape.bytes / 1e10, 12);
    expect(predictSeconds(shape, f.wasm)).toBeCloseTo(1e-4 + 1e6 / 1e9, 12);
    // Crossover: P / 1e9 + 1e-4 = P / 1e11 + 5e-4 (+ transfers): about 4.1e5 pairs here.
    expect(chooseEngine(reductionShape(gaussPlan(500, 500)), f).engine).toBe('wasm');
    expect(chooseEngine(reductionShape(gaussPlan(1000, 1000)), f).engine).toBe('webgpu');
    const tie: CostFigures = { wasm: f.webgpu, webgpu: f.webgpu };
    expect(chooseEngine(shape, tie).engine).toBe('wasm');
    // Deterministic: the same figures give the same decision and the same predictions.
    expect(chooseEngine(shape, f)).toEqual(chooseEngine(shape, f));
    // A slow bus sends the same reduction back to Wasm.
    const slowBus: CostFigures = { ...f, webgpu: { ...f.webgpu, bytesPerSecond: 1e5 } };
    expect(chooseEngine(shape, slowBus).engine).toBe('wasm');
  });

  it('default figures scale the Wasm rates with its threads', () => {
    const one = defaultFigures(1);
    const four = defaultFigures(4);
    expect(four.wasm.rate.kernel).toBe(4 * one.wasm.rate.kernel);
    expect(four.webgpu).toEqual(DEFAULT_WEBGPU_FIGURES);
    expect(defaultFigures(0).wasm.rate.kernel).toBe(one.wasm.rate.kernel);
  });

  it('autoCalibrate is validated', () => {
    expect(() => configureWebGPU({ autoCalibrate: 1 as unknown as boolean })).toThrow(InputError);
    expect(() => configureWebGPU({ autoCalibrate: 1 as unknown as boolean })).toThrow(
      /autoCalibrate must be a boolean/,
    );
  });
});

describe.skipIf(!hasGpu)("'auto' on a device: calibration and injected figures", () => {
  beforeAll(async () => {
    await webgpuTesting.reset();
    // SwiftShader is a fallback adapter: let 'auto' use it, with the cost model (autoMinPairs unset).
    configureWebGPU({ autoUseFallbackAdapter: true, autoMinPairs: undefined, autoCalibrate: true });
  });
  afterAll(async () => {
    webgpuTesting.setFigures(null);
    configureWebGPU({ autoUseFallbackAdapter: false, autoMinPairs: undefined, autoCalibrate: true });
    await webgpuTesting.reset();
  });

  it('calibrates once per device, yielding to the event loop, and reports the measured figures', async () => {
    const before = webgpuTesting.calibrations;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const status = await webgpuStatus(); // acquires the device: the calibration starts, status awaits it
    clearInterval(timer);
    expect(webgpuTesting.calibrations).toBe(before + 1);
    expect(status.auto.rule).toBe('model');
    expect(status.auto.note).toBeNull();
    expect(status.auto.calibrationMs).toBeGreaterThan(0);
    expect(status.auto.sources['webgpu.rate.kernel']).toBe('measured');
    expect(status.auto.sources['wasm.overhead']).toBe('measured');
    expect(status.auto.sources['webgpu.rate.select']).toBe('scaled');
    expect(status.auto.sources['webgpu.bytesPerSecond']).toBe('default');
    for (const e of [status.auto.figures.webgpu, status.auto.figures.wasm]) {
      for (const r of Object.values(e.rate)) expect(r).toBeGreaterThan(0);
      expect(e.overhead).toBeGreaterThanOrEqual(0);
    }
    expect(ticks, 'timers ran during the calibration').toBeGreaterThan(1);
    // Later reductions and statuses do not calibrate again.
    await gaussPlanTensor(64, 64).sum(1);
    await webgpuStatus();
    expect(webgpuTesting.calibrations).toBe(before + 1);
  });

  it('injected figures decide deterministically, at any size once a device exists', async () => {
    webgpuTesting.setFigures(figures(1e15, 0, 1)); // a GPU infinitely faster: WebGPU even for 4 pairs
    expect((await gaussPlanTensor(2, 2).sum(1)).engine).toBe('webgpu');
    webgpuTesting.setFigures(figures(1, 1, 1e15)); // the other way round: Wasm for 2^22 pairs
    expect((await gaussPlanTensor(2048, 2048).sum(1)).engine).toBe('wasm');
    expect((await webgpuStatus()).auto.figures.webgpu.rate.kernel).toBe(1);
    webgpuTesting.setFigures(null);
  });

  it('autoMinPairs restores the threshold rule; autoCalibrate: false keeps AUTO_MIN_PAIRS', async () => {
    configureWebGPU({ autoMinPairs: 4 });
    expect((await webgpuStatus()).auto).toMatchObject({ rule: 'threshold', autoMinPairs: 4 });
    expect((await gaussPlanTensor(2, 2).sum(1)).engine).toBe('webgpu');
    configureWebGPU({ autoMinPairs: undefined, autoCalibrate: false });
    await webgpuTesting.reset(); // a new device: no calibration this time
    const before = webgpuTesting.calibrations;
    const status = await webgpuStatus();
    expect(status.auto).toMatchObject({ rule: 'threshold', autoMinPairs: AUTO_MIN_PAIRS, calibrationMs: null });
    expect(status.auto.sources['webgpu.rate.kernel']).toBe('default');
    expect((await gaussPlanTensor(2, 2).sum(1)).engine).toBe('wasm');
    expect(webgpuTesting.calibrations).toBe(before);
    configureWebGPU({ autoCalibrate: true });
  });
});

function gaussPlanTensor(N: number, M: number) {
  return Vi(new Float32Array(N * 3).fill(0.5), 3)
    .sqDist(Vj(new Float32Array(M * 3).fill(0.25), 3))
    .mul(-1)
    .exp();
}
