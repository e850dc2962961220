// WGSL helper functions shared by every generated kernel: the `lt_*` functions the operation records
// (src/core/ops.ts) call in their `wgsl` lowerings, with the semantics assembly/isa.ts specifies.
//
// WHY NOT THE BUILTINS
// WGSL's exp/log/sin/cos are only loosely specified (sin/cos: absolute error 2^-11 on [-pi, pi], and
// "indeterminate" outside the domain); GPUs implement them with fast approximations. To agree with
// the WebAssembly engine within float32 tolerance on every adapter, exp, log, sin and cos are written
// here with the same reductions and polynomials as assembly/math.ts (Cody-Waite + Cephes). Special
// values (NaN, infinities) are classified on the bits, never with comparisons a compiler may assume
// away, and produced from the uniform block at run time (a constant infinity is a WGSL compile error).
//
// `U` is the kernel's uniform block (declared by codegen.ts): U.inf = +inf, U.nan = NaN.

export const PRELUDE = /* wgsl */ `
fn lt_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn lt_ispinf(x: f32) -> bool { return bitcast<u32>(x) == 0x7f800000u; }
fn lt_isninf(x: f32) -> bool { return bitcast<u32>(x) == 0xff800000u; }
fn lt_isfinite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
fn lt_sq(x: f32) -> f32 { return x * x; }

// exp: x = n ln2 + r, |r| <= ln2/2, Cephes' minimax polynomial, 2^n built in two halves on the bits
// so that results near overflow and in the subnormal range need no special case. Branch-free (it
// runs once per pair in most kernels): NaN is patched with a select.
fn lt_exp(x0: f32) -> f32 {
  let x = clamp(x0, -104.0, 89.0);
  let n = floor(x * 1.44269504088896341 + 0.5);
  var r = x - n * 0.693359375;
  r = r - n * (-2.12194440e-4);
  let z = r * r;
  var p = 1.9875691500e-4 * r + 1.3981999507e-3;
  p = p * r + 8.3334519073e-3;
  p = p * r + 4.1665795894e-2;
  p = p * r + 1.6666665459e-1;
  p = p * r + 5.0000001201e-1;
  p = p * z + r + 1.0;
  let n1 = trunc(n * 0.5);
  let n2 = n - n1;
  let s1 = bitcast<f32>(u32(i32(n1) + 127) << 23u);
  let s2 = bitcast<f32>(u32(i32(n2) + 127) << 23u);
  return select(p * s1 * s2, x0, lt_isnan(x0));
}

// log: exponent/mantissa split on the bits (subnormals scaled by 2^23 first), mantissa in
// [sqrt(1/2), sqrt(2)), Cephes' polynomial. log(0) = -inf, log(+inf) = +inf, log(x < 0) = NaN,
// patched with selects (branch-free).
fn lt_log(x0: f32) -> f32 {
  let b = bitcast<u32>(x0);
  let den = b < 0x00800000u;
  let x = select(x0, x0 * 8388608.0, den);
  let xb = bitcast<u32>(x);
  var e = f32(xb >> 23u) - select(126.0, 149.0, den);
  let m0 = bitcast<f32>((xb & 0x007fffffu) | 0x3f000000u);
  let lo = m0 < 0.707106781186547524;
  e = e - select(0.0, 1.0, lo);
  let m = m0 - 1.0 + select(0.0, m0, lo);
  let z = m * m;
  var y = 7.0376836292e-2 * m - 1.1514610310e-1;
  y = y * m + 1.1676998740e-1;
  y = y * m - 1.2420140846e-1;
  y = y * m + 1.4249322787e-1;
  y = y * m - 1.6668057665e-1;
  y = y * m + 2.0000714765e-1;
  y = y * m - 2.4999993993e-1;
  y = y * m + 3.3333331174e-1;
  y = y * m * z;
  y = y + e * (-2.12194440e-4);
  y = y - 0.5 * z;
  var r = m + y + e * 0.693359375;
  r = select(r, -U.inf, (b & 0x7fffffffu) == 0u);
  r = select(r, x0, b == 0x7f800000u);
  return select(r, U.nan, lt_isnan(x0) || b > 0x80000000u);
}

// sin and cos: quadrant q = round(x 2/pi), r = x - q pi/2 with pi/2 split in three float32 pieces
// (exact products for |q| < 2^15), Cephes' polynomials on [-pi/4, pi/4]. Beyond |x| = 65536 the
// reduction loses bits and the builtin takes over; non-finite arguments give NaN.
fn lt_sincos_poly(r: f32, q: i32) -> f32 {
  let z = r * r;
  let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  let k = q & 3;
  if (k == 0) { return s; }
  if (k == 1) { return c; }
  if (k == 2) { return -s; }
  return -c;
}
fn lt_sin(x: f32) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) >= 0x7f800000u) { return U.nan; }
  if (abs(x) > 65536.0) { return sin(x); }
  let q = floor(x * 0.636619772367581343 + 0.5);
  let r = ((x - q * 1.5703125) - q * 4.8375129699707031e-4) - q * 7.5497899548918821e-8;
  return lt_sincos_poly(r, i32(q));
}
fn lt_cos(x: f32) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) >= 0x7f800000u) { return U.nan; }
  if (abs(x) > 65536.0) { return cos(x); }
  let q = floor(x * 0.636619772367581343 + 0.5);
  let r = ((x - q * 1.5703125) - q * 4.8375129699707031e-4) - q * 7.5497899548918821e-8;
  return lt_sincos_poly(r, i32(q) + 1);
}

fn lt_sqrt(x: f32) -> f32 { return select(sqrt(x), U.nan, x < 0.0); }
fn lt_rsqrt(x: f32) -> f32 { return select(1.0 / sqrt(x), select(0.0, U.nan, x < 0.0), x <= 0.0); }
fn lt_sign(x: f32) -> f32 {
  if (lt_isnan(x)) { return x; }
  return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0);
}
fn lt_step(x: f32) -> f32 { return select(1.0, 0.0, x < 0.0); }
fn lt_relu(x: f32) -> f32 { return select(max(x, 0.0), x, lt_isnan(x)); }
fn lt_xlogx(x: f32) -> f32 { return select(x * lt_log(x), 0.0, x == 0.0); }
fn lt_sinc(x: f32) -> f32 { return select(lt_sin(x) / x, 1.0, x == 0.0); }
// Rounds halves away from zero (the sign of -0.3 is kept: -0).
fn lt_round(x: f32) -> f32 {
  let t = trunc(x);
  let one = bitcast<f32>((bitcast<u32>(x) & 0x80000000u) | 0x3f800000u);
  return t + select(0.0, one, abs(x - t) >= 0.5);
}
// x^n for an integer n by repeated squaring (n < 0: 1 / x^-n), as the WebAssembly kernel.
fn lt_powi(x: f32, n: i32) -> f32 {
  var e = abs(n);
  var r = 1.0;
  var b = x;
  loop {
    if (e == 0) { break; }
    if ((e & 1) != 0) { r = r * b; }
    e = e >> 1u;
    if (e != 0) { b = b * b; }
  }
  return select(r, 1.0 / r, n < 0);
}
fn lt_powf(a: f32, b: f32) -> f32 { return lt_exp(b * lt_log(a)); }
fn lt_clamp(a: f32, lo: f32, hi: f32) -> f32 { return min(max(a, lo), hi); }
fn lt_ifelse(c: f32, a: f32, b: f32) -> f32 { return select(b, a, c >= 0.0); }
fn lt_mod(a: f32, n: f32, d: f32) -> f32 { return a - n * floor((a - d) / n); }
// max / min that propagate NaN as the WebAssembly kernel does (WGSL leaves NaN operands unspecified).
fn lt_max(a: f32, b: f32) -> f32 { return select(max(a, b), U.nan, lt_isnan(a) || lt_isnan(b)); }
fn lt_min(a: f32, b: f32) -> f32 { return select(min(a, b), U.nan, lt_isnan(a) || lt_isnan(b)); }

// atan on [0, 1]: Cephes atanf, with pi/4 + atan((t - 1) / (t + 1)) above tan(pi/8).
fn lt_atan01(t: f32) -> f32 {
  let hi = t > 0.414213562373095;
  let u = select(t, (t - 1.0) / (t + 1.0), hi);
  let z = u * u;
  let p = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * u + u;
  return select(0.0, 0.785398163397448309616, hi) + p;
}
// atan2(y, x) as Math.atan2 (the builtin is only specified to 4096 ulp): the ratio of the smaller to
// the larger magnitude in [0, 1] (0/0 -> 0, inf/inf -> 1), then the octant from the comparison and
// the sign bits (atan2(0, -0) = pi).
fn lt_atan2(y: f32, x: f32) -> f32 {
  if (lt_isnan(x) || lt_isnan(y)) { return U.nan; }
  let ax = abs(x);
  let ay = abs(y);
  let swap = ay > ax;
  let num = select(ay, ax, swap);
  let den = select(ax, ay, swap);
  var t = select(num / den, 0.0, den == 0.0);
  t = select(t, 1.0, lt_ispinf(num));
  var a = lt_atan01(t);
  a = select(a, 1.57079632679489661923 - a, swap);
  a = select(a, 3.14159265358979323846 - a, (bitcast<u32>(x) & 0x80000000u) != 0u);
  return bitcast<f32>(bitcast<u32>(a) | (bitcast<u32>(y) & 0x80000000u));
}
fn lt_atan(x: f32) -> f32 { return lt_atan2(x, 1.0); }
// 1 - x is exact near |x| = 1, so asin and acos keep their relative accuracy there; |x| > 1 gives NaN.
fn lt_asin(x: f32) -> f32 { return lt_atan2(x, lt_sqrt((1.0 - x) * (1.0 + x))); }
fn lt_acos(x: f32) -> f32 { return lt_atan2(lt_sqrt((1.0 - x) * (1.0 + x)), x); }
`;

interface PreludeFunction {
  readonly name: string;
  readonly code: string;
}

/** The prelude cut into its functions (each with the comment lines above it). */
const FUNCTIONS: readonly PreludeFunction[] = (() => {
  const out: PreludeFunction[] = [];
  let pending: string[] = [];
  let current: { name: string; lines: string[] } | null = null;
  for (const line of PRELUDE.split('\n')) {
    const head = /^fn (lt_\w+)\(/.exec(line);
    if (head !== null) {
      if (current !== null) out.push({ name: current.name, code: current.lines.join('\n') });
      current = { name: head[1]!, lines: [...pending, line] };
      pending = [];
    } else if (line.startsWith('//') || line.trim() === '') {
      if (current !== null && line.trim() === '') {
        out.push({ name: current.name, code: current.lines.join('\n') });
        current = null;
      } else if (line.startsWith('//')) {
        if (current !== null) {
          out.push({ name: current.name, code: current.lines.join('\n') });
          current = null;
        }
        pending.push(line);
      }
    } else if (current !== null) {
      current.lines.push(line);
    }
  }
  if (current !== null) out.push({ name: current.name, code: current.lines.join('\n') });
  return out;
})();

/** The prelude functions `code` calls, directly or through other prelude functions, in prelude
 *  order (shader compilers, SwiftShader's in particular, compile every function of a module). */
export function preludeFor(code: string): string {
  const used = new Set<string>();
  let frontier = code;
  for (;;) {
    const added = FUNCTIONS.filter((f) => !used.has(f.name) && new RegExp(`\\b${f.name}\\(`).test(frontier));
    if (added.length === 0) break;
    for (const f of added) used.add(f.name);
    frontier = added.map((f) => f.code).join('\n');
  }
  return FUNCTIONS.filter((f) => used.has(f.name))
    .map((f) => f.code)
    .join('\n');
}
