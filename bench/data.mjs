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
