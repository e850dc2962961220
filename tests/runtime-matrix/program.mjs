// The program every row of the runtime matrix (scripts/runtime-matrix.mjs) runs, with the package
// as that runtime loads it (`lt`: the main entry, `gl`: lazytensor/geomloss). Plain JavaScript with
// no imports, so that the classic-script row can load it as a script too (the harness rewrites the
// export). Checks, against plain-JS float64 references computed here:
// - a Gaussian kernel sum in float32 and in float64 (N = M = 2100: 4.4M pairs, above the split
//   threshold, so runtimes with workers split it across all of them);
// - argKMin (K = 3, float64), index for index;
// - a Sinkhorn divergence (its value is compared with Node's by the harness, 1e-6 relative).
// Returns a summary; throws on a wrong result.
export async function run(lt, gl, options = {}) {
  const t0 = Date.now();
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), (seed >>> 8) / 16777216);
  const fail = (what) => {
    throw new Error(`runtime matrix: ${what}`);
  };
  if (options.workerUrl) lt.setWasmWorkerUrl(options.workerUrl);

  // Gaussian kernel sum: s_i = sum_j exp(-g |x_i - y_j|^2) b_j.
  const N = 2100,
    M = 2100,
    D = 3,
    g = 4;
  const x = new Float64Array(N * D).map(rnd);
  const y = new Float64Array(M * D).map(rnd);
  const b = new Float64Array(M).map(rnd);
  const ref = new Float64Array(N);
  const rows = [0, 1, 17, 1000, N - 1];
  for (const i of rows) {
    let s = 0;
    for (let j = 0; j < M; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (x[i * D + k] - y[j * D + k]) ** 2;
      s += Math.exp(-g * d2) * b[j];
    }
    ref[i] = s;
  }
  const engines = new Set();
  for (const [dtype, Arr, tol] of [
    ['float32', Float32Array, 2e-5],
    ['float64', Float64Array, 1e-12],
  ]) {
    const r = await lt
      .Vi(Arr.from(x), D)
      .sqDist(lt.Vj(Arr.from(y), D))
      .mul(-g)
      .exp()
      .mul(lt.Vj(Arr.from(b), 1))
      .sum(1);
    engines.add(r.engine);
    if (r.data.length !== N) fail(`${dtype} sum: ${r.data.length} rows`);
    for (const i of rows) {
      const err = Math.abs(r.data[i] - ref[i]) / Math.abs(ref[i]);
      if (!(err <= tol)) fail(`${dtype} Gaussian sum row ${i}: ${r.data[i]} vs ${ref[i]} (relative error ${err})`);
    }
  }

  // argKMin over j of |x_i - y_j|^2, float64, small.
  const n = 300,
    m = 400,
    K = 3;
  const xs = x.slice(0, n * D),
    ys = y.slice(0, m * D);
  const am = await lt.Vi(xs, D).sqDist(lt.Vj(ys, D)).argKMin(K, 1);
  for (let i = 0; i < n; i++) {
    const d = [];
    for (let j = 0; j < m; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (xs[i * D + k] - ys[j * D + k]) ** 2;
      d.push([d2, j]);
    }
    d.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    for (let k = 0; k < K; k++) {
      if (am.data[i * K + k] !== d[k][1]) fail(`argKMin row ${i}, k = ${k}: ${am.data[i * K + k]} vs ${d[k][1]}`);
    }
  }

  // Sinkhorn divergence between two small clouds.
  const loss = new gl.SamplesLoss({ loss: 'sinkhorn', p: 2, blur: 0.05, scaling: 0.7 });
  const px = Array.from({ length: 200 }, () => [rnd(), rnd()]);
  const py = Array.from({ length: 250 }, () => [rnd() * 0.8 + 0.3, rnd() * 0.8]);
  const sinkhorn = await loss.value(px, py);
  if (!(typeof sinkhorn === 'number' && sinkhorn > 0 && Number.isFinite(sinkhorn))) fail(`Sinkhorn value ${sinkhorn}`);

  const status = await lt.wasmStatus();
  return {
    engines: [...engines],
    runtime: status.runtime,
    threads: status.threads,
    workers: status.workers,
    workersThatWorked: status.jobsPerWorker.filter((c) => c > 0).length,
    reason: status.reason,
    kernelSource: status.kernelSource,
    sinkhorn,
    ms: Date.now() - t0,
  };
}
