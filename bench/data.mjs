// Deterministic bench data: the LCG of the native yardstick, uniform in [0, 1).
export function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s >>> 8) / 16777216;
  };
}

export function uniform(n, seed) {
  const r = lcg(seed);
  const a = new Float32Array(n);
  for (let k = 0; k < n; k++) a[k] = r();
  return a;
}

/**
 * The GeomLoss bench's 3-D clouds of n points each: x uniform in the unit cube and y either
 * "concentrated" (0.3 + 0.6 u v per coordinate: piled up near a corner, so that many pairs stay
 * within the truncation radius) or "smooth" (uniform in [0.25, 0.85]^3).
 */
export function sinkhornClouds(n, kind) {
  const r = lcg(kind === 'smooth' ? n + 1 : n);
  const x = new Float32Array(3 * n);
  const y = new Float32Array(3 * n);
  for (let k = 0; k < 3 * n; k++) {
    x[k] = r();
    y[k] = kind === 'smooth' ? 0.25 + 0.6 * r() : 0.3 + 0.6 * r() * r();
  }
  return { x, y };
}
