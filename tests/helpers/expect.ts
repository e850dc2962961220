import { expect } from 'vitest';

/** Checks |got - want| <= rtol * scale + atol entrywise (scale defaults to |want|), with a readable failure. */
export function expectClose(
  got: ArrayLike<number>,
  want: readonly number[],
  rtol: number,
  atol = 0,
  scale?: readonly number[],
  label = '',
): void {
  expect(got.length, `${label} length`).toBe(want.length);
  let worst = -1;
  let worstExcess = 0;
  for (let k = 0; k < want.length; k++) {
    const g = got[k]!;
    const w = want[k]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      if (!Object.is(g, w) && !(Number.isNaN(g) && Number.isNaN(w))) {
        worst = k;
        worstExcess = Infinity;
      }
      continue;
    }
    const bound = rtol * (scale === undefined ? Math.abs(w) : scale[k]!) + atol;
    const excess = Math.abs(g - w) - bound;
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = k;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    const bound = rtol * (scale === undefined ? Math.abs(want[worst]!) : scale[worst]!) + atol;
    expect.fail(`${label}: entry ${worst} is ${got[worst]}, expected ${want[worst]} within ${bound.toExponential(2)}`);
  }
}
