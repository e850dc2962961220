// Progress reporting (onProgress, verbose), input forms and result types.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SamplesLoss, type ProgressInfo } from '../../src/geomloss/index.js';
import { cloud, rng } from './helpers.js';

const r = rng(31);
const x = cloud(r, 10, 2);
const y = cloud(r, 8, 2, 0.5);

afterEach(() => vi.restoreAllMocks());

describe('progress', () => {
  it('onProgress gets every temperature of the schedule', async () => {
    const seen: ProgressInfo[] = [];
    const loss = new SamplesLoss({ onProgress: (info) => seen.push(info) });
    const { info } = await loss.potentials(x, y);
    expect(seen.map((s) => s.epsilon)).toEqual(info.schedule);
    expect(seen.map((s) => s.iteration)).toEqual(info.schedule!.map((_, k) => k + 1));
    expect(seen.every((s) => s.total === info.schedule!.length && s.phase === 'schedule')).toBe(true);
  });

  it('with the convergence option, the extra iterations report their change', async () => {
    const seen: ProgressInfo[] = [];
    const loss = new SamplesLoss({
      blur: 0.3,
      convergence: { tol: 1e-8, maxIter: 500 },
      onProgress: (info) => seen.push(info),
    });
    const { info } = await loss.potentials(x, y);
    const extra = seen.filter((s) => s.phase === 'convergence');
    expect(extra.length).toBe(info.iterations - info.schedule!.length);
    expect(extra.length).toBeGreaterThan(0);
    expect(extra[extra.length - 1]!.change!).toBeLessThanOrEqual(1e-8);
    expect(extra.every((s) => s.total === info.schedule!.length + 500 && s.epsilon === 0.09)).toBe(true);
  });

  it('verbose logs one line per iteration', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const { info } = await new SamplesLoss({ verbose: true }).potentials(x, y);
    expect(log).toHaveBeenCalledTimes(info.iterations);
    expect(String(log.mock.calls[0]![0])).toMatch(/SamplesLoss\(sinkhorn\): iteration 1\/\d+, eps = /);
  });

  it('reports the reductions it ran', async () => {
    const loss = new SamplesLoss();
    const v = await loss.potentials(x, y);
    const n = v.info.schedule!.length;
    // init + one per temperature + the final step, 4 problems each (xy, yx, xx, yy)
    expect(v.info.reductions).toBe(4 * (n + 2));
    const g = await loss.valueAndGrad(x, y);
    expect(g.info.reductions).toBe(4 * (n + 3));
    expect(g.info.engine).toBe('wasm');
  });
});

describe('input forms and result types', () => {
  it('nested arrays, { data: number[], shape } and typed arrays give the same value', async () => {
    const loss = new SamplesLoss();
    const v1 = await loss.value(x, y);
    const v2 = await loss.value({ data: x.flat(), shape: [10, 2] }, { data: y.flat(), shape: [8, 2] });
    const v3 = await loss.value(
      { data: Float64Array.from(x.flat()), shape: [10, 2] },
      { data: Float64Array.from(y.flat()), shape: [8, 2] },
    );
    expect(v2).toBe(v1);
    expect(v3).toBe(v1);
  });

  it('float32 inputs compute in float32 and return Float32Array gradients with the input shapes', async () => {
    const loss = new SamplesLoss();
    const res = await loss.valueAndGrad(
      { data: Float32Array.from(x.flat()), shape: [10, 2] },
      { data: Float32Array.from(y.flat()), shape: [8, 2] },
    );
    expect(res.info.dtype).toBe('float32');
    expect(res.grad.x.data).toBeInstanceOf(Float32Array);
    expect(res.grad.x.shape).toEqual([10, 2]);
    expect(res.grad.a.shape).toEqual([10]);
    expect(res.grad.x.toArray()).toHaveLength(10);
    expect(typeof res.value).toBe('number');
  });

  it('dtype float32 on float64 data', async () => {
    const res = await new SamplesLoss({ dtype: 'float32' }).valueAndGrad(x, y);
    expect(res.info.dtype).toBe('float32');
    expect(res.grad.y.data).toBeInstanceOf(Float32Array);
  });

  it("engine: 'wasm' runs every reduction on WebAssembly", async () => {
    const res = await new SamplesLoss({ engine: 'wasm', loss: 'energy' }).valueAndGrad(x, y);
    expect(res.info.engine).toBe('wasm');
  });
});
