// Tiled large-D kernels (issue 13, WebGPU part; issue 15): the products of K-NN, K-means and kernel
// formulas (sqDist, dot, weightedSqDist of x_i and y_j) computed as register-blocked tiles, x's and
// y's chunks of D in workgroup memory, each invocation a block of ri x rj pairs, then the rest of the
// formula and the reduction. Checked on the CPU adapter (tiling forced, small blockings so that the
// sizes are off the tile sizes) against the plain WGSL path and float64 dense references, D = 1 to 4096.
import { beforeAll, describe, expect, it } from 'vitest';
import { Pm, Vi, Vj, type LazyTensor } from '../../src/index.js';
import { pairProducts } from '../../src/core/pair-products.js';
import { generateKernel, TILED_BLOCKS, tiledProducts } from '../../src/gpu/codegen.js';
import { TILED_MIN_D, type WebGPUEngine } from '../../src/gpu/engine.js';
import { refKSelect, refSum } from '../helpers/dense-reference.js';
import { expectClose } from '../helpers/expect.js';
import { asSeen, rng, typed, uniformRows } from '../helpers/random.js';
import { hasGpu, pairData, productsCase, sqDist, suiteEngines } from './setup.js';

describe('tiled products: detection', () => {
  const D = 40;
  const x = Vi(new Float32Array(3 * D), D);
  const y = Vj(new Float32Array(5 * D), D);
  const w = Pm(new Float32Array(D).fill(1));
  const plan = (F: LazyTensor) => F.plan('sum', 1, undefined);

  it('finds sqDist, dot and weightedSqDist of x_i and y_j in either order, after the rewrites', () => {
    expect(tiledProducts(plan(x.sqDist(y)))?.products.map((p) => p.kind)).toEqual(['sqDist']);
    expect(tiledProducts(plan(y.sqDist(x).mul(-1).exp()))?.products).toHaveLength(1);
    // sum((x - y)^2) is rewritten to sqDist first (core/rewrite.ts)
    expect(tiledProducts(plan(x.sub(y).square().sum(-1)))?.products.map((p) => p.kind)).toEqual(['sqDist']);
    const two = tiledProducts(plan(x.sqDist(y).add(y.dot(x))));
    expect(two?.products.map((p) => p.kind)).toEqual(['sqDist', 'dot']);
    expect(two?.outerVars).toHaveLength(1);
    expect(two?.innerVars).toHaveLength(1);
    expect(tiledProducts(plan(x.weightedSqDist(y, w)))?.products[0]!.weight).not.toBeNull();
    expect(tiledProducts(plan(x.weightedSqDist(y, Pm(2)).exp()))?.products).toHaveLength(1);
    // The same product written twice is one tile.
    expect(tiledProducts(plan(x.sqDist(y).add(x.sqDist(y).exp())))?.products).toHaveLength(1);
  });

  it('leaves computed operands, i-indexed weights, too many products and sparse plans to the plain kernel', () => {
    expect(tiledProducts(plan(x.normalize().dot(y)))).toBeNull();
    expect(tiledProducts(plan(x.weightedSqDist(y, Vi(new Float32Array(3 * D), D))))).toBeNull();
    expect(tiledProducts(plan(x.sqDist(y).add(x.dot(y)).add(x.weightedSqDist(y, w))))).toBeNull();
    const z = Vi(new Float32Array(3 * 7), 7);
    const v = Vj(new Float32Array(5 * 7), 7);
    expect(tiledProducts(plan(x.sqDist(y).add(z.sqDist(v))))).toBeNull(); // two different D
    expect(tiledProducts(plan(x.sub(y)))).toBeNull(); // no product
    expect(tiledProducts(plan(x.sqDist(x).add(y.sqNorm2())))).toBeNull(); // both operands on one side
    expect(tiledProducts(plan(x.sub(y).mul(x.sqDist(y))))).not.toBeNull(); // a 40-wide result
    const X = Vi(new Float32Array(3 * 70), 70);
    const Y = Vj(new Float32Array(5 * 70), 70);
    expect(tiledProducts(plan(X.sub(Y).mul(X.sqDist(Y))))).toBeNull(); // 70 components: a windowed kernel
    const ranges = {
      rangesI: Int32Array.of(0, 3),
      slicesI: Int32Array.of(1),
      redRangesJ: Int32Array.of(0, 5),
      rangesJ: Int32Array.of(0, 5),
      slicesJ: Int32Array.of(1),
      redRangesI: Int32Array.of(0, 3),
    };
    expect(tiledProducts(x.sqDist(y).plan('sum', 1, { ranges }))).toBeNull();
  });

  it('pairProducts (core) takes a minimum D and the roles of the plan', () => {
    const F = x.sqDist(y).plan('sum', 1, undefined);
    const roles = new Map(F.variables.map((v) => [v.variable, v.role] as const));
    const roleOf = (v: Parameters<typeof roles.get>[0]) => roles.get(v) ?? 'param';
    expect(pairProducts(F.formula, roleOf, D)).toHaveLength(1);
    expect(pairProducts(F.formula, roleOf, D + 1)).toHaveLength(0);
  });

  it('generates workgroup tiles of x, y and the products, and no per-row loads of x for the product', () => {
    const b = TILED_BLOCKS[0]!;
    const config = {
      workgroupSize: b.ti * b.tj,
      tile: b.tj * b.rj,
      staged: false,
      split: false,
      sparse: false,
      tiled: b,
    };
    const code = generateKernel(plan(x.sqDist(y).mul(-0.5).exp()), config).code;
    const bi = b.ti * b.ri;
    const bj = b.tj * b.rj;
    expect(code).toContain(`var<workgroup> xs0: array<f32, ${b.dk * (bi + 1)}>;`);
    expect(code).toContain(`var<workgroup> ys0: array<f32, ${b.dk * (bj + 1)}>;`);
    expect(code).toContain(`var<workgroup> pt0: array<f32, ${bi * (bj + 1)}>;`);
    expect(code).toContain(`@workgroup_size(${b.ti * b.tj})`);
    expect(code.match(/var a0_\d+_\d+ = 0\.0;/g)).toHaveLength(b.ri * b.rj);
    expect(code).not.toMatch(/let x\d+_\d+ = O\[ob/); // x_i is staged, not loaded per invocation
    // The plain kernel of the same plan has no workgroup memory on a direct configuration.
    const plain = generateKernel(plan(x.sqDist(y).mul(-0.5).exp()), {
      workgroupSize: 64,
      tile: 64,
      staged: false,
      split: false,
      sparse: false,
    }).code;
    expect(plain).not.toContain('var<workgroup>');
  });
});

describe.skipIf(!hasGpu)('WebGPU: tiled large-D kernels against the plain kernels and float64', () => {
  const engine = suiteEngines();
  let tiled: WebGPUEngine;
  let plain: WebGPUEngine;
  beforeAll(() => {
    // 16 invocations: the 4 x 4 x (2 x 2) blocking, 8 x 8 pairs per tile, chunks of 8 components.
    tiled = engine({ tiling: 'always', limits: { maxComputeInvocationsPerWorkgroup: 16 } });
    plain = engine({ tiling: 'never' });
  });

  it('chooses the blocking from the limits, and tiles only from TILED_MIN_D on GPUs', () => {
    const D = 100;
    const x = Vi(new Float32Array(3 * D), D);
    const y = Vj(new Float32Array(40 * D), D);
    const knn = x.sqDist(y).plan('argKMin', 1, undefined, undefined, undefined, 10);
    expect(tiled.configFor(knn).tiled).toEqual(TILED_BLOCKS[3]);
    expect(plain.configFor(knn).tiled).toBeUndefined();
    const gpuLike = engine({ cpuAdapter: false });
    expect(gpuLike.configFor(knn).tiled).toEqual(TILED_BLOCKS[0]);
    expect(gpuLike.configFor(knn).workgroupSize).toBe(256);
    // K = 30 lists hold 61 words per row: at most 64 invocations.
    const bigK = x.sqDist(y).plan('argKMin', 1, undefined, undefined, undefined, 30);
    expect(gpuLike.configFor(bigK).tiled).toEqual(TILED_BLOCKS[2]);
    // Less workgroup memory: a smaller blocking.
    const small = engine({ cpuAdapter: false, limits: { maxComputeWorkgroupStorageSize: 16384 } });
    expect(small.configFor(knn).tiled).toEqual(TILED_BLOCKS[1]);
    // Small D: the plain kernel.
    const d = TILED_MIN_D - 1;
    const low = Vi(new Float32Array(3 * d), d).sqDist(Vj(new Float32Array(40 * d), d));
    expect(gpuLike.configFor(low.plan('argMin', 1, undefined)).tiled).toBeUndefined();
  });

  it.each([1, 3, 8, 17, 64, 100, 784, 4096])(
    'D = %i: K-NN, K-means assignment, Gaussian sum, dot + weighted distances',
    async (D) => {
      const N = 37; // 4 workgroups of 8 rows and 5
      const M = 45; // 5 tiles of 8 rows and 5
      const data = pairData(D + 101, N, M, D);
      const { x, y, sx, sy } = data;
      const both = async (plan: ReturnType<LazyTensor['plan']>) => {
        expect(tiled.configFor(plan).tiled, 'tiled').toBeDefined();
        return [await tiled.reduce(plan), await plain.reduce(plan)] as const;
      };

      // K-NN: the 5 nearest y_j of each x_i
      const [kt, kp] = await both(x.sqDist(y).plan('kMinArgKMin', 1, undefined, undefined, undefined, 5));
      const rk = refKSelect((i, j) => [sqDist(sx[i]!, sy[j]!)], { N, M }, 1, 5);
      expect(Array.from(kt.indices!), `knn D=${D}`).toEqual(rk.indices.flat(2));
      expect(Array.from(kt.indices!), `knn tiled = plain D=${D}`).toEqual(Array.from(kp.indices!));
      expectClose(kt.values!, rk.values.flat(2), 1e-5, 1e-6, undefined, `knn distances D=${D}`);
      expectClose(kt.values!, Array.from(kp.values!), 1e-5, 1e-6, undefined, `knn tiled vs plain D=${D}`);
      // K-means assignment, over the other axis: each y_j to its nearest x_i
      const [mt, mp] = await both(x.sqDist(y).plan('argMin', 0, undefined));
      const rm = refKSelect((i, j) => [sqDist(sx[i]!, sy[j]!)], { N, M }, 0, 1);
      expect(Array.from(mt.indices!), `kmeans D=${D}`).toEqual(rm.indices.flat(2));
      expect(Array.from(mt.indices!)).toEqual(Array.from(mp.indices!));
      // Gaussian kernel sum
      const g = 1 / D;
      const [gt, gp] = await both(x.sqDist(y).mul(-g).exp().plan('sum', 1, undefined));
      const rg = refSum((i, j) => [Math.exp(-g * sqDist(sx[i]!, sy[j]!))], { N, M }, 1);
      expectClose(gt.values!, rg.value.flat(), 1e-5, 0, rg.scale.flat(), `gauss D=${D}`);
      expectClose(gt.values!, Array.from(gp.values!), 1e-5, 0, rg.scale.flat(), `gauss tiled vs plain D=${D}`);
      // Two products (dot and a diagonal weighted distance) and an unblocked per-pair sum beside them
      const { F, want, scale } = productsCase(data);
      const [ft, fp] = await both(F.plan('sum', 1, undefined));
      expectClose(ft.values!, want, 1e-5, 0, scale, `dot + weighted D=${D}`);
      expectClose(ft.values!, Array.from(fp.values!), 1e-5, 0, scale, `dot + weighted vs plain D=${D}`);
    },
  );

  it('the 256-invocation blocking (64 x 64 pairs per tile), sizes off 64, an isotropic weight, split dispatches', async () => {
    const D = 100;
    const N = 130;
    const M = 150;
    const { x, y, sx, sy } = pairData(7, N, M, D);
    // One kernel only: SwiftShader compiles a 256-invocation kernel with 6 K words of workgroup
    // memory in seconds.
    const big = engine({ tiling: 'always' });
    const knn = x.sqDist(y).plan('argKMin', 1, undefined, undefined, undefined, 10);
    expect(big.configFor(knn).tiled).toEqual(TILED_BLOCKS[0]);
    const rk = refKSelect((i, j) => [sqDist(sx[i]!, sy[j]!)], { N, M }, 1, 10);
    expect(Array.from((await big.reduce(knn)).indices!)).toEqual(rk.indices.flat(2));
    // s * |x - y|^2 with s a single parameter
    const F = x.weightedSqDist(y, Pm(0.02)).neg().exp();
    const rg = refSum((i, j) => [Math.exp(-Math.fround(0.02) * sqDist(sx[i]!, sy[j]!))], { N, M }, 1);
    expectClose((await tiled.reduce(F.plan('sum', 1, undefined))).values!, rg.value.flat(), 1e-5, 0, rg.scale.flat());
    // Several dispatches over j (the reduction state saved between them): tiles of 8 rows, steps of 16.
    const split = engine({
      tiling: 'always',
      limits: { maxComputeInvocationsPerWorkgroup: 16, maxPairsPerDispatch: N * 16 },
    });
    expectClose((await split.reduce(F.plan('sum', 1, undefined))).values!, rg.value.flat(), 1e-5, 0, rg.scale.flat());
    expect(Array.from((await split.reduce(knn)).indices!)).toEqual(rk.indices.flat(2));
  }, 300_000);

  it('NaN rows are never selected and give the plain path results; ties go to the lowest index', async () => {
    const D = 37;
    const N = 11;
    const M = 29;
    const random = rng(37);
    const xs = uniformRows(random, N, D);
    const ys = uniformRows(random, M, D);
    // Ties: y_10 and y_20 copy y_2, and x_0 is y_2 itself (three distances of exactly 0).
    ys[10] = [...ys[2]!];
    ys[20] = [...ys[2]!];
    xs[0] = [...ys[2]!];
    const xd = typed(xs, 'float32');
    const yd = typed(ys, 'float32');
    const seenX = asSeen(xs, 'float32');
    const seenY = asSeen(ys, 'float32');
    const ref = refKSelect((i, j) => [sqDist(seenX[i]!, seenY[j]!)], { N, M }, 1, 4);
    const x = Vi(xd, D);
    const y = Vj(yd, D);
    const knn = x.sqDist(y).plan('kMinArgKMin', 1, undefined, undefined, undefined, 4);
    const got = await tiled.reduce(knn);
    expect(Array.from(got.indices!)).toEqual(ref.indices.flat(2));
    expect(Array.from(got.indices!.subarray(0, 3))).toEqual([2, 10, 20]);
    // NaN: x_3 and y_7 hold a NaN (data arrays are validated when a LazyTensor is built, so the
    // plan's arrays are poisoned afterwards, as a NaN produced upstream would be).
    const plan = x.sqDist(y).plan('kMinArgKMin', 1, undefined, undefined, undefined, 4);
    const px = plan.variables.find((v) => v.role === 'outer')!.variable.data;
    const py = plan.variables.find((v) => v.role === 'inner')!.variable.data;
    px[3 * D + 5] = NaN;
    py[7 * D + 36] = NaN;
    const [t, p] = [await tiled.reduce(plan), await plain.reduce(plan)];
    expect(Array.from(t.indices!)).toEqual(Array.from(p.indices!));
    // NaN exactly where the plain path has NaN; the distances equal up to the order of the sums.
    expectClose(t.values!, Array.from(p.values!), 1e-5, 1e-6, undefined, 'NaN rows');
    // Row 3: every distance is NaN (no neighbour, index -1); no row selects y_7.
    expect(Array.from(t.indices!.subarray(3 * 4, 4 * 4))).toEqual([-1, -1, -1, -1]);
    expect(Array.from(t.values!.subarray(3 * 4, 4 * 4)).every(Number.isNaN)).toBe(true);
    expect(Array.from(t.indices!)).not.toContain(7);
  });
});
