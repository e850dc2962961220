// Reductions over large caller arrays (60000 x 784-like, kept by reference) let the event loop run:
// the finite re-check before each reduction is scanned in slices (core/input.ts
// scanLargeVariableData), and the copies posted to the workers are made in slices (wasm-engine.ts
// copyForPosting); before, one reduction over 47M float32 values blocked the event loop for
// 100-580 ms. Results against float64 references; a value made non-finite after Vi still names
// its row and column.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, setWasmThreads, Vi, Vj } from '../src/index.js';
import { expectResponsive } from './helpers/event-loop.js';
import { rng } from './helpers/random.js';

const D = 784;
const N = 40_000;

function data(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n * D);
  for (let k = 0; k < a.length; k++) a[k] = r();
  return a;
}

/** float64 min over the rows of `y` of |x_i - y_j|^2, and its argmin (lowest index on ties). */
function nearest(x: Float32Array, i: number, y: Float32Array, m: number): { d2: number; j: number } {
  let best = Infinity;
  let at = -1;
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let k = 0; k < D; k++) s += (x[i * D + k]! - y[j * D + k]!) ** 2;
    if (s < best) {
      best = s;
      at = j;
    }
  }
  return { d2: best, j: at };
}

beforeAll(() => setWasmThreads(2));
afterAll(() => setWasmThreads(undefined));

describe('reductions over large by-reference arrays', () => {
  it('a large i-variable: responsive, and the same minima as float64', async () => {
    const x = data(N, 1);
    const y = data(4, 2);
    const F = Vi(x, D).sqDist(Vj(y, D));
    const run = await expectResponsive(() => F.min(1), 100);
    const got = run.result.data;
    for (let i = 0; i < N; i += 997) {
      const ref = nearest(x, i, y, 4).d2;
      expect(Math.abs(got[i]! - ref) / ref, `row ${i}`).toBeLessThan(1e-5);
    }
  }, 120_000);

  it('a large j-variable (K-NN against a large train set): responsive, and the float64 neighbours', async () => {
    const x = data(6, 3);
    const y = data(N, 4);
    const F = Vi(x, D).sqDist(Vj(y, D));
    const run = await expectResponsive(() => F.argMin(1), 100);
    for (let i = 0; i < 6; i++) expect(run.result.data[i], `row ${i}`).toBe(nearest(x, i, y, N).j);
  }, 120_000);

  it('names the row and column of a value made non-finite after Vi, in any slice', async () => {
    const x = data(N, 5);
    const y = data(2, 6);
    const F = Vi(x, D).sqDist(Vj(y, D));
    for (const at of [x.length - 1, 5 * (1 << 22) + 3, 7]) {
      const old = x[at]!;
      x[at] = at === 7 ? -Infinity : NaN;
      const error = await F.min(1).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InputError);
      expect(String((error as Error).message)).toContain(
        `data[${Math.floor(at / D)}][${at % D}] is ${at === 7 ? '-Infinity' : 'NaN'}`,
      );
      x[at] = old;
    }
    await expect(F.min(1)).resolves.toBeDefined();
  }, 120_000);
});
