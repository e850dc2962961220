// Interacting particles: the Vicsek flocking model with 10^4 agents, as in KeOps's "swarm" examples.
// Each step, every agent takes the mean heading of the agents within radius r (periodic unit box),
// plus noise, and moves at constant speed. The neighbour sum is one reduction over 10^8 pairs, with
// the periodic distance written in the formula (mod). Checked against plain float64 JS on a subset.
import { Vi, Vj } from 'lazytensor';
import { check, relErr, rng } from './_util.mjs';

const N = 10000,
  r = 0.02,
  speed = 0.004,
  noise = 0.3,
  steps = 5;
const { uniform } = rng(23);
let pos = Float64Array.from({ length: 2 * N }, uniform);
let theta = Float64Array.from({ length: N }, () => 2 * Math.PI * uniform());

/** Sum over the neighbours j (|x_i - x_j| < r, periodic) of (cos theta_j, sin theta_j, 1): [N, 3]. */
async function neighbourHeadings(p, th) {
  const u = Float64Array.from({ length: 3 * N }, (_, k) => [Math.cos, Math.sin, () => 1][k % 3](th[Math.floor(k / 3)]));
  // (x_i - x_j) mod 1 into [-0.5, 0.5): the shortest displacement on the torus.
  const near = Vi(p, 2)
    .sub(Vj(p, 2))
    .mod(1, -0.5)
    .sqNorm2()
    .lt(r * r); // 1 or 0
  return (await near.mul(Vj(u, 3)).sum(1)).data;
}
// Local order: the mean over agents of |sum of the neighbours' headings| / their number (1: aligned).
const localOrder = (S) => S.reduce((a, _, k) => (k % 3 ? a : a + Math.hypot(S[k], S[k + 1]) / S[k + 2]), 0) / N;

// The reference for the first step: the same sum in plain float64, for 300 agents.
const S0 = await neighbourHeadings(pos, theta);
const rows = 300,
  want = new Float64Array(3 * rows);
for (let i = 0; i < rows; i++) {
  for (let j = 0; j < N; j++) {
    const dx = pos[2 * i] - pos[2 * j],
      dy = pos[2 * i + 1] - pos[2 * j + 1];
    const px = dx - Math.floor(dx + 0.5),
      py = dy - Math.floor(dy + 0.5);
    if (px * px + py * py < r * r) {
      want[3 * i] += Math.cos(theta[j]);
      want[3 * i + 1] += Math.sin(theta[j]);
      want[3 * i + 2]++;
    }
  }
}
check(
  'neighbour sums equal the float64 reference',
  relErr(S0.subarray(0, 3 * rows), want) < 1e-12,
  relErr(S0.subarray(0, 3 * rows), want).toExponential(1),
);

const phi0 = localOrder(S0);
let S = S0;
const t0 = performance.now();
for (let step = 0; step < steps; step++) {
  // The new heading is the angle of each agent's summed neighbour direction: Math.atan2 on the result,
  // O(N) (inside a formula, the same is y.atan2(x)).
  theta = theta.map((_, i) => Math.atan2(S[3 * i + 1], S[3 * i]) + noise * (uniform() - 0.5));
  pos = pos.map((v, k) => {
    const moved = v + speed * (k % 2 ? Math.sin(theta[k >> 1]) : Math.cos(theta[k >> 1]));
    return moved - Math.floor(moved);
  });
  S = await neighbourHeadings(pos, theta);
}
const phi = localOrder(S);
console.log(
  `Vicsek model, ${N} agents, ${steps} steps of 10^8 pairs (float64): ${(performance.now() - t0).toFixed(0)} ms`,
);
console.log(`  local order (mean |neighbours' mean heading|): ${phi0.toFixed(3)} -> ${phi.toFixed(3)}`);
check(
  'neighbours align (the local order goes from ~1/sqrt(neighbours) to above 0.8)',
  phi0 < 0.5 && phi > 0.8,
  `${phi0.toFixed(3)} -> ${phi.toFixed(3)}`,
);
check.done('vicsek');
