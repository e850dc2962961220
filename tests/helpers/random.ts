// A small seeded generator so that test data is the same on every run.
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** n rows of d values uniform in [lo, hi). */
export function uniformRows(random: () => number, n: number, d: number, lo = -1, hi = 1): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: d }, () => lo + (hi - lo) * random()));
}

/** Row-major typed data in the given precision. */
export function typed(rows: number[][], dtype: 'float32' | 'float64'): Float32Array | Float64Array {
  const flat = rows.flat();
  return dtype === 'float32' ? Float32Array.from(flat) : Float64Array.from(flat);
}

/** The rows as the engine sees them: rounded to float32 when the precision is float32. */
export function asSeen(rows: number[][], dtype: 'float32' | 'float64'): number[][] {
  return dtype === 'float32' ? rows.map((r) => r.map((v) => Math.fround(v))) : rows;
}
