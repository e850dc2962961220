// Constant tables for the SIMD math (assembly/math.ts) and the ops: every constant is stored splatted
// over 16 bytes and loaded with v128.load inside the loops. V8 materialises each v128.const in a loop
// body with three instructions (movq r, imm; vmovq; vpunpcklqdq) instead of hoisting it, which made
// exp twice as slow; a load from this table is one micro-op.

// F32 constants, each splatted over 16 bytes (offsets below)
// @ts-ignore: decorator
@inline export const F_EXP_MIN: usize = 0;
// @ts-ignore: decorator
@inline export const F_EXP_MAX: usize = 16;
// @ts-ignore: decorator
@inline export const F_LOG2E: usize = 32;
// @ts-ignore: decorator
@inline export const F_SHIFT: usize = 48;
// @ts-ignore: decorator
@inline export const F_LN2_HI: usize = 64;
// @ts-ignore: decorator
@inline export const F_LN2_LO: usize = 80;
// @ts-ignore: decorator
@inline export const F_E0: usize = 96;
// @ts-ignore: decorator
@inline export const F_E1: usize = 112;
// @ts-ignore: decorator
@inline export const F_E2: usize = 128;
// @ts-ignore: decorator
@inline export const F_E3: usize = 144;
// @ts-ignore: decorator
@inline export const F_E4: usize = 160;
// @ts-ignore: decorator
@inline export const F_E5: usize = 176;
// @ts-ignore: decorator
@inline export const F_ONE: usize = 192;
// @ts-ignore: decorator
@inline export const F_HALF: usize = 208;
// @ts-ignore: decorator
@inline export const F_INF: usize = 224;
// @ts-ignore: decorator
@inline export const F_NINF: usize = 240;
// @ts-ignore: decorator
@inline export const F_NAN: usize = 256;
// @ts-ignore: decorator
@inline export const F_ZERO: usize = 272;
// @ts-ignore: decorator
@inline export const F_MIN_NORMAL: usize = 288;
// @ts-ignore: decorator
@inline export const F_TWO23: usize = 304;
// @ts-ignore: decorator
@inline export const F_SQRTH: usize = 320;
// @ts-ignore: decorator
@inline export const F_L0: usize = 336;
// @ts-ignore: decorator
@inline export const F_L1: usize = 352;
// @ts-ignore: decorator
@inline export const F_L2: usize = 368;
// @ts-ignore: decorator
@inline export const F_L3: usize = 384;
// @ts-ignore: decorator
@inline export const F_L4: usize = 400;
// @ts-ignore: decorator
@inline export const F_L5: usize = 416;
// @ts-ignore: decorator
@inline export const F_L6: usize = 432;
// @ts-ignore: decorator
@inline export const F_L7: usize = 448;
// @ts-ignore: decorator
@inline export const F_L8: usize = 464;
// @ts-ignore: decorator
@inline export const F_149: usize = 480;
// @ts-ignore: decorator
@inline export const F_126: usize = 496;
// @ts-ignore: decorator
@inline export const F_SIN_BIG: usize = 512;
// @ts-ignore: decorator
@inline export const F_S0: usize = 528;
// @ts-ignore: decorator
@inline export const F_S1: usize = 544;
// @ts-ignore: decorator
@inline export const F_S2: usize = 560;
// @ts-ignore: decorator
@inline export const F_C0: usize = 576;
// @ts-ignore: decorator
@inline export const F_C1: usize = 592;
// @ts-ignore: decorator
@inline export const F_C2: usize = 608;
export const F32_TABLE: usize = memory.data<f32>([
  -87.336540222167969, -87.336540222167969, -87.336540222167969, -87.336540222167969,
  88.722831726074219, 88.722831726074219, 88.722831726074219, 88.722831726074219,
  1.4426950408889634, 1.4426950408889634, 1.4426950408889634, 1.4426950408889634,
  12582912.0, 12582912.0, 12582912.0, 12582912.0,
  0.693359375, 0.693359375, 0.693359375, 0.693359375,
  -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4,
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4,
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3,
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1,
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,
  1.0, 1.0, 1.0, 1.0,
  0.5, 0.5, 0.5, 0.5,
  Infinity, Infinity, Infinity, Infinity,
  -Infinity, -Infinity, -Infinity, -Infinity,
  NaN, NaN, NaN, NaN,
  0.0, 0.0, 0.0, 0.0,
  1.17549435e-38, 1.17549435e-38, 1.17549435e-38, 1.17549435e-38,
  8388608.0, 8388608.0, 8388608.0, 8388608.0,
  0.707106781186547524, 0.707106781186547524, 0.707106781186547524, 0.707106781186547524,
  7.0376836292e-2, 7.0376836292e-2, 7.0376836292e-2, 7.0376836292e-2,
  -1.1514610310e-1, -1.1514610310e-1, -1.1514610310e-1, -1.1514610310e-1,
  1.1676998740e-1, 1.1676998740e-1, 1.1676998740e-1, 1.1676998740e-1,
  -1.2420140846e-1, -1.2420140846e-1, -1.2420140846e-1, -1.2420140846e-1,
  1.4249322787e-1, 1.4249322787e-1, 1.4249322787e-1, 1.4249322787e-1,
  -1.6668057665e-1, -1.6668057665e-1, -1.6668057665e-1, -1.6668057665e-1,
  2.0000714765e-1, 2.0000714765e-1, 2.0000714765e-1, 2.0000714765e-1,
  -2.4999993993e-1, -2.4999993993e-1, -2.4999993993e-1, -2.4999993993e-1,
  3.3333331174e-1, 3.3333331174e-1, 3.3333331174e-1, 3.3333331174e-1,
  149.0, 149.0, 149.0, 149.0,
  126.0, 126.0, 126.0, 126.0,
  1.0e5, 1.0e5, 1.0e5, 1.0e5,
  -1.9515295891e-4, -1.9515295891e-4, -1.9515295891e-4, -1.9515295891e-4,
  8.3321608736e-3, 8.3321608736e-3, 8.3321608736e-3, 8.3321608736e-3,
  -1.6666654611e-1, -1.6666654611e-1, -1.6666654611e-1, -1.6666654611e-1,
  2.443315711809948e-5, 2.443315711809948e-5, 2.443315711809948e-5, 2.443315711809948e-5,
  -1.388731625493765e-3, -1.388731625493765e-3, -1.388731625493765e-3, -1.388731625493765e-3,
  4.166664568298827e-2, 4.166664568298827e-2, 4.166664568298827e-2, 4.166664568298827e-2,
], 16);
// F64 constants, each splatted over 16 bytes (offsets below)
// @ts-ignore: decorator
@inline export const D_EXP_MIN: usize = 0;
// @ts-ignore: decorator
@inline export const D_EXP_MAX: usize = 16;
// @ts-ignore: decorator
@inline export const D_LOG2E: usize = 32;
// @ts-ignore: decorator
@inline export const D_SHIFT: usize = 48;
// @ts-ignore: decorator
@inline export const D_LN2_HI: usize = 64;
// @ts-ignore: decorator
@inline export const D_LN2_LO: usize = 80;
// @ts-ignore: decorator
@inline export const D_E2: usize = 96;
// @ts-ignore: decorator
@inline export const D_E3: usize = 112;
// @ts-ignore: decorator
@inline export const D_E4: usize = 128;
// @ts-ignore: decorator
@inline export const D_E5: usize = 144;
// @ts-ignore: decorator
@inline export const D_E6: usize = 160;
// @ts-ignore: decorator
@inline export const D_E7: usize = 176;
// @ts-ignore: decorator
@inline export const D_E8: usize = 192;
// @ts-ignore: decorator
@inline export const D_E9: usize = 208;
// @ts-ignore: decorator
@inline export const D_E10: usize = 224;
// @ts-ignore: decorator
@inline export const D_E11: usize = 240;
// @ts-ignore: decorator
@inline export const D_ONE: usize = 256;
// @ts-ignore: decorator
@inline export const D_HALF: usize = 272;
// @ts-ignore: decorator
@inline export const D_TWO: usize = 288;
// @ts-ignore: decorator
@inline export const D_INF: usize = 304;
// @ts-ignore: decorator
@inline export const D_NINF: usize = 320;
// @ts-ignore: decorator
@inline export const D_NAN: usize = 336;
// @ts-ignore: decorator
@inline export const D_ZERO: usize = 352;
// @ts-ignore: decorator
@inline export const D_MIN_NORMAL: usize = 368;
// @ts-ignore: decorator
@inline export const D_TWO54: usize = 384;
// @ts-ignore: decorator
@inline export const D_TWO52: usize = 400;
// @ts-ignore: decorator
@inline export const D_1076: usize = 416;
// @ts-ignore: decorator
@inline export const D_1022: usize = 432;
// @ts-ignore: decorator
@inline export const D_SQRTH: usize = 448;
// @ts-ignore: decorator
@inline export const D_LG1: usize = 464;
// @ts-ignore: decorator
@inline export const D_LG2: usize = 480;
// @ts-ignore: decorator
@inline export const D_LG3: usize = 496;
// @ts-ignore: decorator
@inline export const D_LG4: usize = 512;
// @ts-ignore: decorator
@inline export const D_LG5: usize = 528;
// @ts-ignore: decorator
@inline export const D_LG6: usize = 544;
// @ts-ignore: decorator
@inline export const D_LG7: usize = 560;
// @ts-ignore: decorator
@inline export const D_INVPIO2: usize = 576;
// @ts-ignore: decorator
@inline export const D_PIO2_1: usize = 592;
// @ts-ignore: decorator
@inline export const D_PIO2_1T: usize = 608;
// @ts-ignore: decorator
@inline export const D_PIO2_2: usize = 624;
// @ts-ignore: decorator
@inline export const D_PIO2_2T: usize = 640;
// @ts-ignore: decorator
@inline export const D_SIN_BIG: usize = 656;
// @ts-ignore: decorator
@inline export const D_S1: usize = 672;
// @ts-ignore: decorator
@inline export const D_S2: usize = 688;
// @ts-ignore: decorator
@inline export const D_S3: usize = 704;
// @ts-ignore: decorator
@inline export const D_S4: usize = 720;
// @ts-ignore: decorator
@inline export const D_S5: usize = 736;
// @ts-ignore: decorator
@inline export const D_S6: usize = 752;
// @ts-ignore: decorator
@inline export const D_C1: usize = 768;
// @ts-ignore: decorator
@inline export const D_C2: usize = 784;
// @ts-ignore: decorator
@inline export const D_C3: usize = 800;
// @ts-ignore: decorator
@inline export const D_C4: usize = 816;
// @ts-ignore: decorator
@inline export const D_C5: usize = 832;
// @ts-ignore: decorator
@inline export const D_C6: usize = 848;
// atan: above this, pi/4 + atan((t - 1) / (t + 1))
// @ts-ignore: decorator
@inline export const D_ATAN_T: usize = 864;
// @ts-ignore: decorator
@inline export const D_PIO4: usize = 880;
// @ts-ignore: decorator
@inline export const D_PIO2: usize = 896;
// @ts-ignore: decorator
@inline export const D_PI: usize = 912;
// pi/2 - D_PIO2
// @ts-ignore: decorator
@inline export const D_PIO2_LO: usize = 928;
// pi - D_PI
// @ts-ignore: decorator
@inline export const D_PI_LO: usize = 944;
// pi/4 - D_PIO4
// @ts-ignore: decorator
@inline export const D_PIO4_LO: usize = 960;
// Cephes atan: P (degree 4) and monic Q (degree 5)
// @ts-ignore: decorator
@inline export const D_AP0: usize = 976;
// @ts-ignore: decorator
@inline export const D_AP1: usize = 992;
// @ts-ignore: decorator
@inline export const D_AP2: usize = 1008;
// @ts-ignore: decorator
@inline export const D_AP3: usize = 1024;
// @ts-ignore: decorator
@inline export const D_AP4: usize = 1040;
// @ts-ignore: decorator
@inline export const D_AQ0: usize = 1056;
// @ts-ignore: decorator
@inline export const D_AQ1: usize = 1072;
// @ts-ignore: decorator
@inline export const D_AQ2: usize = 1088;
// @ts-ignore: decorator
@inline export const D_AQ3: usize = 1104;
// @ts-ignore: decorator
@inline export const D_AQ4: usize = 1120;
export const F64_TABLE: usize = memory.data<f64>([
  -708.3964185322641, -708.3964185322641,
  709.782712893384, 709.782712893384,
  1.4426950408889634, 1.4426950408889634,
  6755399441055744.0, 6755399441055744.0,
  6.93147180369123816490e-01, 6.93147180369123816490e-01,
  1.90821492927058770002e-10, 1.90821492927058770002e-10,
  1.66666666666666666667e-1, 1.66666666666666666667e-1,
  4.16666666666666666667e-2, 4.16666666666666666667e-2,
  8.33333333333333333333e-3, 8.33333333333333333333e-3,
  1.38888888888888888889e-3, 1.38888888888888888889e-3,
  1.98412698412698412698e-4, 1.98412698412698412698e-4,
  2.48015873015873015873e-5, 2.48015873015873015873e-5,
  2.75573192239858906526e-6, 2.75573192239858906526e-6,
  2.75573192239858906526e-7, 2.75573192239858906526e-7,
  2.50521083854417187751e-8, 2.50521083854417187751e-8,
  2.08767569878680989792e-9, 2.08767569878680989792e-9,
  1.0, 1.0,
  0.5, 0.5,
  2.0, 2.0,
  Infinity, Infinity,
  -Infinity, -Infinity,
  NaN, NaN,
  0.0, 0.0,
  2.2250738585072014e-308, 2.2250738585072014e-308,
  18014398509481984.0, 18014398509481984.0,
  4503599627370496.0, 4503599627370496.0,
  1076.0, 1076.0,
  1022.0, 1022.0,
  0.70710678118654752440, 0.70710678118654752440,
  6.666666666666735130e-01, 6.666666666666735130e-01,
  3.999999999940941908e-01, 3.999999999940941908e-01,
  2.857142874366239149e-01, 2.857142874366239149e-01,
  2.222219843214978396e-01, 2.222219843214978396e-01,
  1.818357216161805012e-01, 1.818357216161805012e-01,
  1.531383769920937332e-01, 1.531383769920937332e-01,
  1.479819860511658591e-01, 1.479819860511658591e-01,
  6.36619772367581382433e-01, 6.36619772367581382433e-01,
  1.57079632673412561417e+00, 1.57079632673412561417e+00,
  6.07710050650619224932e-11, 6.07710050650619224932e-11,
  6.07710050630396597660e-11, 6.07710050630396597660e-11,
  2.02226624879595063154e-21, 2.02226624879595063154e-21,
  1.0e5, 1.0e5,
  -1.66666666666666324348e-01, -1.66666666666666324348e-01,
  8.33333333332248946124e-03, 8.33333333332248946124e-03,
  -1.98412698298579493134e-04, -1.98412698298579493134e-04,
  2.75573137070700676789e-06, 2.75573137070700676789e-06,
  -2.50507602534068634195e-08, -2.50507602534068634195e-08,
  1.58969099521155010221e-10, 1.58969099521155010221e-10,
  4.16666666666666019037e-02, 4.16666666666666019037e-02,
  -1.38888888888741095749e-03, -1.38888888888741095749e-03,
  2.48015872894767294178e-05, 2.48015872894767294178e-05,
  -2.75573143513906633035e-07, -2.75573143513906633035e-07,
  2.08757232129817482790e-09, 2.08757232129817482790e-09,
  -1.13596475577881948265e-11, -1.13596475577881948265e-11,
  0.66, 0.66,
  7.85398163397448309616e-1, 7.85398163397448309616e-1,
  1.57079632679489661923e+00, 1.57079632679489661923e+00,
  3.14159265358979323846e+00, 3.14159265358979323846e+00,
  6.123233995736765886130e-17, 6.123233995736765886130e-17,
  1.2246467991473531772e-16, 1.2246467991473531772e-16,
  3.061616997868382943065e-17, 3.061616997868382943065e-17,
  -8.750608600031904122785e-1, -8.750608600031904122785e-1,
  -1.615753718733365076637e1, -1.615753718733365076637e1,
  -7.500855792314704667340e1, -7.500855792314704667340e1,
  -1.228866684490136173410e2, -1.228866684490136173410e2,
  -6.485021904942025371773e1, -6.485021904942025371773e1,
  2.485846490142306297962e1, 2.485846490142306297962e1,
  1.650270098316988542046e2, 1.650270098316988542046e2,
  4.328810604912902668951e2, 4.328810604912902668951e2,
  4.853903996359136964868e2, 4.853903996359136964868e2,
  1.945506571482613964425e2, 1.945506571482613964425e2,
], 16);

// Resolved register table (RT, kernel.ts): 32 bytes per register, i32 fields at these byte offsets.
// kernel.ts writes it once per run(); blocked.ts reads it (it gets RT's address from planBlocked), so
// both take the layout from here.
// @ts-ignore: decorator
@inline export const RT_FIXED: usize = 0;
// @ts-ignore: decorator
@inline export const RT_IMUL: usize = 4;
// @ts-ignore: decorator
@inline export const RT_BMUL: usize = 8;
// @ts-ignore: decorator
@inline export const RT_STRIDE: usize = 12;
// @ts-ignore: decorator
@inline export const RT_DIM: usize = 16;
// @ts-ignore: decorator
@inline export const RT_BLK: usize = 20;
// @ts-ignore: decorator
@inline export const RT_ROOT: usize = 24; // index of the non-view register holding the memory
