// Shared by the examples: a seeded random generator and the self-check every example ends with.
// Nothing here uses lazytensor: the references the examples compare against are plain JavaScript.

/** A seeded generator (LCG), so every run sees the same data: uniform() in [0, 1), normal(). */
export function rng(seed = 1) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

/** The largest |a - b| over two arrays, relative to the largest |b| (0 when both are all zero). */
export function relErr(a, b) {
  let diff = 0;
  let scale = 0;
  for (let k = 0; k < b.length; k++) {
    diff = Math.max(diff, Math.abs(a[k] - b[k]));
    scale = Math.max(scale, Math.abs(b[k]));
  }
  return scale === 0 ? diff : diff / scale;
}

const failures = [];

/** Records one check; `check.done()` prints the summary line the tests look for. */
export function check(label, ok, detail = '') {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${label}${detail ? `: ${detail}` : ''}`);
  if (!ok) failures.push(label);
}

/** Prints `check: ok (N checks)` or `check: FAILED ...` and sets a non-zero exit code on failure. */
check.done = (name) => {
  if (failures.length === 0) console.log(`check: ok (${name})`);
  else {
    console.log(`check: FAILED (${name}): ${failures.join('; ')}`);
    process.exitCode = 1;
  }
};
