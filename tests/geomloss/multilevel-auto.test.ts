// backend 'auto' beyond 3-D: multiscale for 3 < D <= 32 when the blur is small against the diameter
// (autoPicksMultiscale; the measurement behind the rule is in its TSDoc), online otherwise.
import { describe, expect, it } from 'vitest';
import { AUTO_MULTISCALE_BLUR, AUTO_MULTISCALE_MAX_D, autoPicksMultiscale } from '../../src/geomloss/multiscale.js';
import type { Cloud } from '../../src/geomloss/inputs.js';
import { SamplesLoss } from '../../src/geomloss/index.js';
import { rng } from './helpers.js';

/** n points uniform in the unit cube [0, 1]^D: diameter sqrt(D) for two such clouds (nearly). */
function cube(n: number, D: number, seed: number): Cloud {
  const r = rng(seed);
  const data = Float64Array.from({ length: n * D }, () => r());
  // The corners pin the bounding box to exactly [0, 1]^D.
  data.fill(0, 0, D);
  data.fill(1, D, 2 * D);
  return { name: 'x', data, B: 1, N: n, D, batched: false, natural: 'float64' };
}

describe("backend 'auto' in any dimension", () => {
  it('picks multiscale for D <= 3 at any blur, for 3 < D <= 32 below 0.05 of the diameter', () => {
    expect(AUTO_MULTISCALE_MAX_D).toBe(32);
    expect(AUTO_MULTISCALE_BLUR).toBe(0.05);
    for (const D of [1, 2, 3]) {
      const x = cube(50, D, D);
      expect(autoPicksMultiscale(x, x, { blur: 10, diameter: null }), `D = ${D}`).toBe(true);
    }
    for (const D of [4, 8, 16, 32]) {
      const x = cube(50, D, D);
      const y = cube(40, D, D + 100);
      const diameter = Math.sqrt(D);
      expect(autoPicksMultiscale(x, y, { blur: 0.049 * diameter, diameter: null }), `D = ${D}`).toBe(true);
      expect(autoPicksMultiscale(x, y, { blur: 0.051 * diameter, diameter: null }), `D = ${D}`).toBe(false);
      // The diameter option, when given, is the one the rule reads (as the schedule does).
      expect(autoPicksMultiscale(x, y, { blur: 0.1, diameter: 1 })).toBe(false);
      expect(autoPicksMultiscale(x, y, { blur: 0.1, diameter: 4 })).toBe(true);
    }
    const x64 = cube(50, 64, 64);
    expect(autoPicksMultiscale(x64, x64, { blur: 1e-6, diameter: null })).toBe(false);
  });

  it('stays online below AUTO_MULTISCALE_PAIRS in D = 8', async () => {
    const x = cube(300, 8, 1);
    const y = cube(200, 8, 2);
    const pts = (c: Cloud) => ({ data: c.data, shape: [c.N, c.D] as [number, number] });
    const r = await new SamplesLoss({ blur: 0.01 }).valueAndGrad(pts(x), pts(y));
    expect(r.info.backend).toBe('online');
  });
});
