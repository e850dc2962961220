// npm run demo: a short tour of lazytensor on the built package.
import { Pm, Vi, Vj } from '../dist/index.js';

function uniform(n, seed) {
  let s = seed;
  const a = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[k] = (s >>> 8) / 16777216;
  }
  return a;
}

async function timed(label, work) {
  const t0 = performance.now();
  const result = await work();
  console.log(`${label.padEnd(58)} ${(performance.now() - t0).toFixed(1).padStart(8)} ms`);
  return result;
}

const N = 20000;
const M = 20000;
const points1 = uniform(N * 3, 1);
const points2 = uniform(M * 3, 2);
const weights = uniform(M, 3);

const x = Vi(points1, 3, { name: 'x' }); // N x 3, indexed by i
const y = Vj(points2, 3, { name: 'y' }); // M x 3, indexed by j
const b = Vj(weights, 1, { name: 'b' });
const K = x.sqDist(y).mul(-50).exp(); // a symbolic N x M matrix, never stored

console.log(`lazytensor demo: N = M = ${N}, points in the unit cube, float32\n`);
console.log(`formula: ${K.mul(b)}`);
const out = await timed('Gaussian kernel sum  out_i = sum_j K_ij b_j', () => K.mul(b).sum(1));
console.log(`  out.shape = [${out.shape}], out[0..3] = ${Array.from(out.data.slice(0, 3), (v) => v.toFixed(4)).join(', ')}, engine: ${out.engine}`);

const lse = await timed('log-sum-exp  log sum_j exp(-50 |x_i - y_j|^2)', () => x.sqDist(y).mul(-50).logSumExp(1));
console.log(`  lse[0..3] = ${Array.from(lse.data.slice(0, 3), (v) => v.toFixed(4)).join(', ')}`);

const nn = await timed('10 nearest neighbours  argKMin(10)', () => x.sqDist(y).argKMin(10, 1));
console.log(`  neighbours of x_0: ${Array.from(nn.data.slice(0, 10)).join(', ')}`);

const proj = await timed('columns: sum over i of a Laplace kernel (axis 0)', () => x.sub(y).norm2().mul(-3).exp().sum(0));
console.log(`  shape [${proj.shape}], first value ${proj.data[0].toFixed(4)}`);

const sigma = Pm(0.25, { name: 'sigma' });
const soft = await timed('softmax-weighted average of y (attention)', () => x.dot(y).div(sigma).sumSoftMaxWeight(1, y));
console.log(`  shape [${soft.shape}], first row ${Array.from(soft.data.slice(0, 3), (v) => v.toFixed(4)).join(', ')}`);

const small = Vi([[0, 0], [1, 0]], 2).sqDist(Vj([[0, 1], [2, 2], [1, 1]], 2));
console.log(`\na small matrix materialised with dense(): ${JSON.stringify(small.dense())}`);
const f64 = await Vi([[0, 0], [1, 0]]).sqDist(Vj([[0, 1], [2, 2], [1, 1]])).min(1);
console.log(`its row minima in float64 (number[][] input): ${Array.from(f64.data)} (${f64.dtype})`);
