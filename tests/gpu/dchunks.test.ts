// D-chunked kernels (issue 13, WebGPU part): when inner rows are too wide to stage whole tiles in
// workgroup memory, the long sums of K-NN and K-means (sqDist, dot, weighted squared distances) run
// over D in chunks: y_j's chunk staged in workgroup memory for a tile of rows, x_i's chunk in
// registers, one partial sum per row of the tile. Checked on the CPU adapter (forced: staging
// 'always' and a workgroup memory limit below one row) against float64 references, D = 1 to 4096,
// sizes off the tile (32 rows) and chunk (16 components) sizes.
import { describe, expect, it } from 'vitest';
import { Vi, Vj } from '../../src/index.js';
import { DCHUNK, DCHUNK_ROWS, generateKernel } from '../../src/gpu/codegen.js';
import type { WebGPUEngineOptions } from '../../src/gpu/engine.js';
import { refKSelect, refSum } from '../helpers/dense-reference.js';
import { expectClose } from '../helpers/expect.js';
import { hasGpu, pairData, productsCase, sqDist, suiteEngines } from './setup.js';

describe('D-chunked WGSL', () => {
  it('chunks the long sums only, with the tile in workgroup memory', () => {
    const D = 100;
    const x = Vi(new Float32Array(3 * D), D);
    const y = Vj(new Float32Array(5 * D), D);
    const config = { workgroupSize: 32, tile: DCHUNK_ROWS, staged: false, split: false, sparse: false, dchunks: true };
    const code = generateKernel(x.sqDist(y).add(x.sub(y).abs().sum(-1)).plan('sum', 1, undefined), config).code;
    expect(code).toContain(`var<workgroup> dt0: array<f32, ${DCHUNK_ROWS * DCHUNK}>;`);
    expect(code.match(/var acc\d+ = array<f32, 32>\(\);/g)).toHaveLength(1); // sqDist only: |x - y| sums a per-pair vector
    expect(code).toContain('select(0.0,'); // 100 is not a multiple of 16: the last chunk is masked
    const plain = generateKernel(x.sqDist(y).plan('sum', 1, undefined), { ...config, dchunks: false }).code;
    expect(plain).not.toContain('var<workgroup>');
  });
});

/** Engine options under which rows of D floats never fit a staged tile, so D > 64 runs D-chunked. */
const chunkedOptions = (D: number): WebGPUEngineOptions => ({
  staging: 'always',
  workgroupSize: 32,
  // Not one row of D floats fits (whole-row tiles are impossible), chunks of 16 do.
  limits: { maxComputeWorkgroupStorageSize: 256 + 4 * D - 4 },
});

describe.skipIf(!hasGpu)('WebGPU: D-chunked K-NN, K-means and kernel sums', () => {
  const engine = suiteEngines();

  it.each([1, 3, 64, 65, 100, 257, 784, 1000, 4096])(
    'D = %i: sqDist sums, K-NN and K-means assignments, dot and weighted distances',
    async (D) => {
      const N = 37;
      const M = 70; // 2 tiles of 32 rows and 6
      const data = pairData(D + 13, N, M, D);
      const { x, y, sx, sy } = data;
      const chunked = engine(chunkedOptions(D));
      const gauss = x
        .sqDist(y)
        .mul(-1 / D)
        .exp();
      const config = chunked.configFor(gauss.plan('sum', 1, undefined));
      if (D > 64) expect(config.dchunks, 'D-chunked').toBe(true);

      // Gaussian kernel sum
      const s = await chunked.reduce(gauss.plan('sum', 1, undefined));
      const rs = refSum((i, j) => [Math.exp(-sqDist(sx[i]!, sy[j]!) / D)], { N, M }, 1);
      expectClose(s.values!, rs.value.flat(), 1e-5, 0, rs.scale.flat(), `gauss D=${D}`);
      // K-NN: the 5 nearest y_j of each x_i (ties are improbable with random data)
      const knn = await chunked.reduce(x.sqDist(y).plan('kMinArgKMin', 1, undefined, undefined, undefined, 5));
      const rk = refKSelect((i, j) => [sqDist(sx[i]!, sy[j]!)], { N, M }, 1, 5);
      expect(Array.from(knn.indices!), `knn D=${D}`).toEqual(rk.indices.flat(2));
      expectClose(knn.values!, rk.values.flat(2), 1e-5, 0, undefined, `knn distances D=${D}`);
      // K-means assignment, over the other axis: each y_j to its nearest x_i
      const km = await chunked.reduce(x.sqDist(y).plan('argMin', 0, undefined));
      expect(Array.from(km.indices!), `kmeans D=${D}`).toEqual(
        refKSelect((i, j) => [sqDist(sx[i]!, sy[j]!)], { N, M }, 0, 1).indices.flat(2),
      );
      // dot products (cancellation: relative to the sum of |terms|) and a diagonal weighted distance
      // next to a sum that is not chunked (a per-pair vector)
      const { F, want, scale } = productsCase(data);
      const got = await chunked.reduce(F.plan('sum', 1, undefined));
      expectClose(got.values!, want, 1e-5, 0, scale, `dot + weighted D=${D}`);
    },
  );
});

describe.skipIf(!hasGpu)('WebGPU: D-chunked block-sparse reductions', () => {
  const engines = suiteEngines();
  it('clusters with several inner ranges agree with the WebAssembly engine (D = 130)', async () => {
    const D = 130;
    const engine = engines(chunkedOptions(D));
    const { x, y } = pairData(130, 40, 90, D);
    const ranges = {
      rangesI: Int32Array.of(0, 25, 25, 40),
      slicesI: Int32Array.of(2, 3),
      redRangesJ: Int32Array.of(0, 33, 50, 90, 10, 70),
      rangesJ: Int32Array.of(0, 90),
      slicesJ: Int32Array.of(1),
      redRangesI: Int32Array.of(0, 40),
    };
    const F = x
      .sqDist(y)
      .mul(-1 / D)
      .exp();
    const plan = F.plan('sum', 1, { ranges });
    expect(engine.configFor(plan).dchunks).toBe(true);
    const got = await engine.reduce(plan);
    const want = await F.sum(1, { engine: 'wasm', ranges });
    expectClose(got.values!, Array.from(want.data), 1e-5, 1e-7, undefined, 'sparse chunked');
  });
});
