// node bench/memory.mjs [N]: a 3-D Gaussian kernel sum with N = M (default 10^6), float32, on the
// WebAssembly engine; prints the time and the peak resident memory (the target: under 300 MB for
// N = M = 10^6; nothing O(N x M) is allocated). Takes about 20 minutes on one core at N = 10^6.
import { Vi, Vj } from '../dist/index.js';

const N = Number(process.argv[2] ?? 1e6);
let s = 7;
const uniform = (n) => {
  const a = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[k] = (s >>> 8) / 16777216;
  }
  return a;
};
const x = Vi(uniform(N * 3), 3);
const y = Vj(uniform(N * 3), 3);
const b = Vj(uniform(N), 1);
const t0 = performance.now();
const out = await x.sqDist(y).mul(-50).exp().mul(b).sum(1, { engine: 'wasm' });
const seconds = (performance.now() - t0) / 1000;
const peak = process.resourceUsage().maxRSS / 1024; // KiB -> MiB
console.log(
  JSON.stringify({
    N,
    M: N,
    seconds: +seconds.toFixed(1),
    gpairsPerSecond: +((N * N) / seconds / 1e9).toFixed(3),
    peakRssMiB: +peak.toFixed(1),
    first: out.data[0],
  }),
);
