// The engine interface (src/core/engine.ts), the same contract for each engine: what it supports, that
// reduce() returns [nOuter, outDim] outputs equal to a float64 dense reference, reports its rows, and
// rejects an aborted signal with the signal's reason and stays usable. The WebGPU engine is run when
// this machine has an adapter (CI: SwiftShader).
import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/core/engine.js';
import { Vi, Vj, type LazyTensor } from '../src/index.js';
import { webgpuPlanUnsupported } from '../src/gpu/engine.js';
import { webgpuTesting } from '../src/runtime/index.js';
import { getWasmEngine } from '../src/wasm/wasm-loader.js';
import { refSum } from './helpers/dense-reference.js';
import { expectClose } from './helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from './helpers/random.js';
import { hasGpu } from './gpu/setup.js';

type DType = 'float32' | 'float64';

function problem(dtype: DType, N: number, M: number) {
  const random = rng(N * 7 + M);
  const xs = uniformRows(random, N, 3);
  const ys = uniformRows(random, M, 3);
  const x = Vi(typed(xs, dtype), 3);
  const y = Vj(typed(ys, dtype), 3);
  const sx = asSeen(xs, dtype);
  const sy = asSeen(ys, dtype);
  const want = refSum(
    (i, j) => [Math.exp(-sx[i]!.reduce((s, v, k) => s + (v - sy[j]![k]!) ** 2, 0))],
    { N, M },
    1,
  ).value.flat();
  return { F: x.sqDist(y).neg().exp() as LazyTensor, want };
}

const engines: [string, () => Promise<Engine | null>][] = [
  ['wasm', () => getWasmEngine()],
  ['webgpu', async () => (hasGpu ? webgpuTesting.engine() : null)],
];

afterAll(() => webgpuTesting.reset());

describe.each(engines)('the %s engine implements Engine', (name, get) => {
  it('has a name and dtypes, and says which plans it cannot run', async () => {
    const engine = await get();
    if (engine === null) return expect(name).toBe('webgpu'); // no adapter here: only WebGPU may be missing
    expect(engine.name).toBe(name);
    const p32 = problem('float32', 4, 5).F.plan('sum', 1, undefined);
    const p64 = problem('float64', 4, 5).F.plan('sum', 1, undefined);
    const bigK = Vi(new Float32Array(3), 1)
      .sqDist(Vj(new Float32Array(100), 1))
      .plan('kMin', 1, undefined, undefined, undefined, 65);
    expect(engine.unsupported(p32)).toBeNull();
    if (name === 'wasm') {
      expect(engine.dtypes).toEqual(['float32', 'float64']);
      expect(engine.unsupported(p64)).toBeNull();
      expect(engine.unsupported(bigK)).toBeNull();
    } else {
      expect(engine.dtypes).toEqual(['float32']);
      expect(engine.unsupported(p64)).toMatch(/computes in float32, not float64/);
      expect(engine.unsupported(bigK)).toMatch(/kMin with K = 65 keeps more than 64 candidates/);
      // Selection asks the same question before it acquires a device.
      expect(webgpuPlanUnsupported(p64)).toBe(engine.unsupported(p64));
    }
  });

  it('reduces to [nOuter, outDim] as the float64 reference, reporting every row', async () => {
    const engine = await get();
    if (engine === null) return expect(name).toBe('webgpu');
    const { F, want } = problem('float32', 37, 53);
    const plan = F.plan('sum', 1, undefined);
    let rows = 0;
    const out = await engine.reduce(plan, { onRows: (n) => (rows += n) });
    expect(out.indices).toBeNull();
    expect(out.values).toBeInstanceOf(Float32Array);
    expectClose(out.values!, want, 1e-5, 1e-6);
    expect(rows).toBe(37);
  });

  it("rejects an aborted signal with the signal's reason, then still runs", async () => {
    const engine = await get();
    if (engine === null) return expect(name).toBe('webgpu');
    const { F, want } = problem('float32', 9, 11);
    const plan = F.plan('sum', 1, undefined);
    const controller = new AbortController();
    const reason = new Error('stop here');
    controller.abort(reason);
    await expect(engine.reduce(plan, { signal: controller.signal })).rejects.toBe(reason);
    expectClose((await engine.reduce(plan)).values!, want, 1e-5, 1e-6);
  });
});
