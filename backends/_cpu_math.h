/* Elementary functions and half-precision conversions for the CPU pass, written to vectorise.
 *
 * Every function is a static inline C99 function of one element, without branches, calls or
 * tables in its body: a loop over arrays that calls it vectorises (GCC 12, -O3
 * -fno-trapping-math, with or without -ffp-contract=fast). Selects (c ? x : y) become blends.
 *
 *   float32 lanes  bce_expf_neg(a)          exp(-a), a >= 0
 *                  bce_log1pf_unit(e)       log1p(e), e in [0, 1]
 *   float64 lanes  bce_exp_neg(a)           exp(-a) for any a
 *                  bce_log1p_unit(e)        log1p(e), e in [0, 1]
 *                  bce_log_unit(m)          log(m), m >= 0 (subnormal m included, log(0) = -inf)
 *                  bce_pow_unit(m, g)       m**g for m in [0, 1], g >= 0, from a double-double log
 *   float64 lanes, float32-grade accuracy (1.2e-10 relative; the float32 loss's pair)
 *                  bce_exp_neg_fast(a)      exp(-a), a >= 0 (exp(-708) beyond a = 708, 0 at +inf)
 *                  bce_log1p_unit_fast(e)   log1p(e), e in [0, 1]
 *                  bce_log_unit_fast(m)     log(m), m normal and positive (the probabilities' logs)
 *   conversions    bce_f16_to_f32, bce_f32_to_f16, bce_bf16_to_f32, bce_f32_to_bf16
 *
 * All take NaN to NaN. The error bounds, measured exhaustively over every float32 input of the
 * domain and on 1e8 random float64 inputs against 80-bit long double (tests/native/
 * check_cpu_math.c, tests/test_cpu_math.py), are stated above each function, in ulps of the
 * result and as relative errors in units of 2**-24 (float32) or 2**-53 (float64).
 *
 * Contraction: with -ffp-contract=fast a compiler may fuse any a*b + c below into one FMA, or
 * not (the default target_clones clone has no FMA; x86-64-v3/v4 have it). The reasoning below
 * holds either way: every step that must be exact is exact fused or not (its product is
 * exact, or it has no product), and the bounds take the worse of the two roundings elsewhere.
 * Both builds are tested.
 *
 * The exact steps need IEEE double and float arithmetic rounded to nearest, each operation
 * rounded to its own type (FLT_EVAL_METHOD 0: SSE2, AVX, NEON; not x87) and no value-changing
 * optimisation (-ffast-math reassociates the error-free sums away): both are refused below.
 *
 * Subnormals: the functions are correct with subnormal numbers enabled (the IEEE default). Under
 * flush-to-zero / denormals-are-zero (torch.set_flush_denormal(True)) a result in the subnormal
 * range becomes 0 and a subnormal input counts as 0; nothing else changes. No intermediate
 * product underflows for inputs whose result is normal (below 2**-40 in float, 2**-100 in
 * double, the small terms of the logarithms are computed at that floor and multiplied by 0),
 * because a subnormal result costs a microcode assist of ~100 cycles on x86; the float results
 * that are themselves subnormal (bce_expf_neg beyond a = 87.3) still pay it.
 *
 * Polynomial coefficients: tests/native/fit_cpu_math.py (minimax fits in mpmath; it also
 * measures the approximation error of the coefficients written here).
 */
#ifndef BCE_CPU_MATH_H
#define BCE_CPU_MATH_H

#include <float.h>
#include <stdint.h>
#include <string.h>

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "_cpu_math.h needs each operation rounded to its own type (FLT_EVAL_METHOD 0: SSE2, not x87)"
#endif
#if defined(__FAST_MATH__)
#error "_cpu_math.h relies on exact IEEE operations: do not compile it with -ffast-math"
#endif

#if defined(__GNUC__)
#define BCE_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define BCE_INLINE static __inline
#else
#define BCE_INLINE static inline
#endif

/* ---------------------------------------------------------------------------------------------
 * Bit views (memcpy: defined behaviour, compiled to a register move or nothing)
 */
BCE_INLINE uint32_t bce__f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
BCE_INLINE float bce__f32_from(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
BCE_INLINE uint64_t bce__f64_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
BCE_INLINE double bce__f64_from(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

/* 2**k for an integer-valued double k in [-1022, 1023]: k + 1.5*2**52 + 1023 holds k + 1023 in
 * its low mantissa bits (exact: an integer below 2**51 added to a number whose ulp is 1), and
 * the shift moves them into the exponent field. */
BCE_INLINE double bce__pow2i(double k) {
    return bce__f64_from(bce__f64_bits(k + (0x1.8p52 + 1023.0)) << 52);
}

/* ---------------------------------------------------------------------------------------------
 * float32: exp(-a)
 *
 * a >= 0 is reduced to exp(-a) = 2**-m * exp(r), m = round(a/ln2), r = m*ln2 - a:
 *   - m: a*log2e + 1.5*2**23 rounds to an integer (fused: of the exact product; not fused: of its
 *     rounding). Either way |a*log2e - m| <= 1/2 + 2**-14 for a <= 746, so |r| <= 0.34663.
 *   - r = (m*LN2_HI - a) + m*LN2_LO. LN2_HI has 13 bits, so m*LN2_HI is exact for m < 2**11;
 *     m*LN2_HI - a is exact (Sterbenz: m*LN2_HI lies in [a/2, 2a] when m >= 1; r = -a when
 *     m = 0). The second sum rounds: |r - r_exact| <= ulp(r)/2 <= 2**-26, and LN2_HI + LN2_LO
 *     differs from ln2 by 1.6e-12, which moves r by at most 1.7e-9 (0.03 x 2**-24) at m = 1022.
 *   - exp(r) = 1 + r + r**2 * P(r), P of degree 4: its weighted error is below 0.054 x 2**-24
 *     relative to exp(r) on |r| <= 0.3467 (fit_cpu_math.py).
 * bce_expf_neg: p = 1 + (r + (r_lo + r**2*P)) in float, r_lo being r's rounding error (so r's
 * own rounding does not count). Error budget, u = 2**-24:
 *   r**2*P <= 0.067 with four roundings (r*r, P's last two steps, the product): <= 0.27u absolute;
 *   r_lo + r**2*P and q = r + (...) round once each: <= 2**-29 + 2**-26 = 0.28u (|q| < 0.5);
 *   P's approximation 0.054u and LN2_LO's 0.03u, relative;
 *   so 0.55u absolute before the last rounding, 1 + q: half an ulp of p in [0.707, 1.414].
 * Bound: 0.55u/0.707 + 0.08u + 1/2 ulp, i.e. 1.33 ulp and 1.55u relative in the worst alignment.
 * Measured over every float a (tests/native/check_cpu_math.c --full, GCC 12): 0.903 ulp and
 * 1.254u without FMA, 0.880 ulp and 1.235u with it.
 * Scaling by 2**-m is exact while the result is normal; below 2**-126 it is done in two steps,
 * 2**-min(m, 100) (exact) then 2**-(m - min(m, 100)) (one rounding: gradual underflow, the
 * subnormal result within 1/2 ulp of 1 + q, i.e. 0.8 of its own ulp). a > 104 (a result below
 * 2**-150, which rounds to 0) is evaluated at 104, whose result rounds to +0: a = +inf gives +0.
 * Performance: a subnormal result costs a microcode assist on x86 (a > 87.3 only).
 */
#define BCE_EXPF_SHIFT 0x1.8p23f  /* 1.5 * 2**23: x + BCE_EXPF_SHIFT rounds x to an integer */
#define BCE_LOG2E_F 0x1.715476p+0f
#define BCE_LN2_HI_F 0x1.62ep-1f  /* 13 significant bits */
#define BCE_LN2_LO_F 0x1.0bfbe8p-15f
#define BCE_EXPF_P0 0x1.fffffcp-2f
#define BCE_EXPF_P1 0x1.55548cp-3f
#define BCE_EXPF_P2 0x1.555858p-5f
#define BCE_EXPF_P3 0x1.123dep-7f
#define BCE_EXPF_P4 0x1.6ac71p-10f

/* r = m*ln2 - a rounded, with m (integer-valued) and r's rounding error r_lo (Fast2Sum when
 * |t1| >= |tail|; otherwise both are below 0.034 and r_lo is within 2**-29 of it) */
BCE_INLINE float bce__expf_reduce(float a, float *m, float *r_lo) {
    float mm = (a * BCE_LOG2E_F + BCE_EXPF_SHIFT) - BCE_EXPF_SHIFT;
    float t1 = mm * BCE_LN2_HI_F - a;  /* exact */
    float tail = mm * BCE_LN2_LO_F;
    float r = t1 + tail;
    *r_lo = (t1 - r) + tail;
    *m = mm;
    return r;
}

/* exp(r) - 1 - r = r**2 * P(r) */
BCE_INLINE float bce__expf_tail(float r) {
    float r2 = r * r;
    return r2 * ((BCE_EXPF_P0 + BCE_EXPF_P1 * r) + r2 * ((BCE_EXPF_P2 + BCE_EXPF_P3 * r) + r2 * BCE_EXPF_P4));
}

BCE_INLINE float bce_expf_neg(float a) {
    float m, r_lo;
    float ac = a > 104.0f ? 104.0f : a;  /* NaN: the comparison is false, NaN goes on */
    float r = bce__expf_reduce(ac, &m, &r_lo);
    float p = 1.0f + (r + (r_lo + bce__expf_tail(r)));
    uint32_t mi = bce__f32_bits(m + BCE_EXPF_SHIFT) - bce__f32_bits(BCE_EXPF_SHIFT);  /* m, 0..150 */
    uint32_t m1 = (int32_t)mi < 100 ? mi : 100u;
    float s1 = bce__f32_from((127u - m1) << 23), s2 = bce__f32_from((127u - (mi - m1)) << 23);
    return (p * s1) * s2;
}

/* ---------------------------------------------------------------------------------------------
 * float32: log1p(e) for e in [0, 1]
 *
 * Reduction without rounding: f = e for e <= 1/2 (k = 0), f = (e - 1)/2 for e > 1/2 (k = 1,
 * 1 + e = 2(1 + f); e - 1 is exact by Sterbenz), so f in [-1/4, 1/2] and log1p(e) = k*ln2 +
 * log1p(f). With s = f/(2 + f), z = s**2 <= 0.04: log1p(f) = 2 atanh(s) = f - hfsq + s*(hfsq + R),
 * hfsq = f*f/2, R = z*L(z), L of degree 3 (weighted error 0.0005 x 2**-24, fit_cpu_math.py).
 * The result is k*ln2_hi - ((x - k*ln2_lo) - f) with x = hfsq - s*(hfsq + R) (fdlibm's order).
 * Error budget, u = 2**-24: x <= 0.095, computed with s's two roundings, hfsq's, the sum's, the
 * product's and the difference's: <= 2**-26 absolute where f = 1/2 (k = 0; less for smaller f,
 * where x shrinks like f**2); then f - x rounds (<= 2**-26 at t = 0.405). k = 1 (t in [0.405,
 * ln2]): x <= 0.035 (<= 0.1u absolute), (x - k*ln2_lo) - f rounds (<= 2**-26), the last
 * subtraction rounds (<= 2**-25). Bound: about 1 ulp and 1.5u relative. Measured over every
 * float e in [0, 1] (GCC 12): 0.902 ulp and 1.305u without FMA, 0.784 ulp and 1.292u with it
 * (Clang 14 with FMA, on a CI-sized run: 0.875 ulp, 1.298u).
 *
 * The composite log1pf(expf(a)): t's condition number in e is e/((1 + e) t) <= 1, and 0.82 at
 * most where log1pf's error is largest (e >= 1/2), so its relative error is at most about
 * 0.82 x 1.55u + 1.5u = 2.8u analytically. Measured over every float a (t normal): 2.143u and
 * 1.62 ulp without FMA, 2.104u and 1.54 ulp with it (Clang 14 with FMA, CI-sized: 2.122u).
 */
#define BCE_LN2_HI_LOGF 0x1.62e3p-1f
#define BCE_LN2_LO_LOGF 0x1.2fefa4p-17f
#define BCE_LOGF_L0 0x1.555554p-1f
#define BCE_LOGF_L1 0x1.999c0cp-2f
#define BCE_LOGF_L2 0x1.23e044p-2f
#define BCE_LOGF_L3 0x1.ee9f24p-3f

BCE_INLINE float bce_log1pf_unit(float e) {
    /* One select per condition: two selects on the same condition let GCC's jump threading
     * duplicate the code between them, and the vectoriser then computes both copies. */
    float k = e > 0.5f ? 1.0f : 0.0f;
    float f = e * (1.0f - 0.5f * k) - 0.5f * k;  /* e or (e - 1)/2, exact fused or not */
    /* Where |f| <= 2**-40 the terms after f (below 2**-41 f) are computed at f = 2**-40 and
     * multiplied by w = 0: no product underflows (a subnormal result costs ~100 cycles on x86). */
    float w = bce__f32_from(bce__f32_bits(f) & 0x7fffffffu) > 0x1p-40f ? 1.0f : 0.0f;
    float fc = f * w + (0x1p-40f - 0x1p-40f * w);
    float s = fc / (2.0f + fc);
    float z = s * s;
    float hfsq = 0.5f * fc * fc;
    float r = z * (BCE_LOGF_L0 + z * (BCE_LOGF_L1 + z * (BCE_LOGF_L2 + z * BCE_LOGF_L3)));
    float x = (hfsq - s * (hfsq + r)) * w;
    return k * BCE_LN2_HI_LOGF - ((x - k * BCE_LN2_LO_LOGF) - f);
}

/* ---------------------------------------------------------------------------------------------
 * float64: exp(-a) for any a, and exp(-(a + a_lo)) for a double-double argument
 *
 * Same reduction as the float one: m = round(a*log2e) (|r| <= ln2/2 + 2e-13 for |a| <= 746),
 * r = (m*LN2_HI - a) + (m*LN2_LO - a_lo), LN2_HI with 32 bits (fdlibm's split: m*LN2_HI exact for
 * |m| < 2**21, m*LN2_HI - a exact by Sterbenz), r's rounding error kept in r_lo (Fast2Sum when
 * |t1| >= |tail|; otherwise both are below 4e-7 and r_lo is still within 2**-75 of it).
 * exp(r) = 1 + r + r**2*P(r), P of degree 9: weighted error below 0.043 x 2**-53 on
 * |r| <= 0.34658 (fit_cpu_math.py). As in the float version, 1 + r is split exactly into hi + lo
 * and the result rounds once: hi + (lo + r_lo + r**2*P). Error budget, u = 2**-53: r**2*P <= 0.067
 * with four roundings (0.27u absolute), the two sums into lo (2**-57 each), P's 0.043u relative;
 * relative to p >= 0.707 whose ulp is u below 1: 0.42 ulp + the last rounding's 1/2 ulp = 0.92 ulp
 * in the worst alignment. Scaling: 2**E1 * 2**E2 with E1 = clamp(-m, -1000, 1000), exact but for
 * the last product's rounding where the result is subnormal or overflows (gradual underflow:
 * within 0.8 of the subnormal ulp; +inf). Measured on 1e8 random inputs against expl (GCC 12):
 * 0.721 ulp without FMA, 0.714 with it; subnormal results 0.797 of 2**-1074.
 * Clamped to a in [-710, 746] first: beyond, the result is +inf or rounds to +0 (a = +inf gives
 * +0 exactly, a = -inf gives +inf); NaN stays NaN.
 */
#define BCE_EXP_SHIFT 0x1.8p52
#define BCE_LOG2E 0x1.71547652b82fep+0
#define BCE_LN2_HI 0x1.62e42feep-1  /* 6.93147180369123816490e-01, 32 significant bits */
#define BCE_LN2_LO 0x1.a39ef35793c76p-33
#define BCE_EXP_P0 0x1.000000000000ap-1
#define BCE_EXP_P1 0x1.5555555555503p-3
#define BCE_EXP_P2 0x1.5555555550605p-5
#define BCE_EXP_P3 0x1.1111111124d27p-7
#define BCE_EXP_P4 0x1.6c16c184b5d66p-10
#define BCE_EXP_P5 0x1.a01a013d604b9p-13
#define BCE_EXP_P6 0x1.a019988b179e4p-16
#define BCE_EXP_P7 0x1.71def3e3d638dp-19
#define BCE_EXP_P8 0x1.28aedfe779c08p-22
#define BCE_EXP_P9 0x1.add8ce334f10bp-26

BCE_INLINE double bce__exp_neg2(double a, double a_lo) {
    double ac = a > 746.0 ? 746.0 : a;
    double shifted, m, t1, tail, r, r_lo, r2, r4, r8, p, hi, lo, e, e1;
    ac = ac < -710.0 ? -710.0 : ac;
    shifted = ac * BCE_LOG2E + BCE_EXP_SHIFT;
    m = shifted - BCE_EXP_SHIFT;
    t1 = m * BCE_LN2_HI - ac;  /* exact */
    tail = m * BCE_LN2_LO - a_lo;
    r = t1 + tail;
    r_lo = (t1 - r) + tail;
    r2 = r * r;
    r4 = r2 * r2;
    r8 = r4 * r4;
    p = ((BCE_EXP_P0 + BCE_EXP_P1 * r) + r2 * (BCE_EXP_P2 + BCE_EXP_P3 * r)) +
        r4 * ((BCE_EXP_P4 + BCE_EXP_P5 * r) + r2 * (BCE_EXP_P6 + BCE_EXP_P7 * r)) +
        r8 * (BCE_EXP_P8 + BCE_EXP_P9 * r);
    hi = 1.0 + r;
    lo = ((1.0 - hi) + r) + (r_lo + r2 * p);
    e = -m;
    e1 = e > 1000.0 ? 1000.0 : (e < -1000.0 ? -1000.0 : e);
    return ((hi + lo) * bce__pow2i(e1)) * bce__pow2i(e - e1);
}

BCE_INLINE double bce_exp_neg(double a) { return bce__exp_neg2(a, 0.0); }

/* ---------------------------------------------------------------------------------------------
 * float64: log(2**k * (1 + f)) as hi + lo (|lo| <= ulp(hi)/2), for f in [-0.2929, 1/2] and an
 * integer-valued k
 *
 * s = f/(2 + f), z = s**2 <= 0.0401, log1p(f) = f - f*f/2 + s*(f*f/2 + R), R = z*L(z), L of
 * degree 7 (weighted error 0.0013 x 2**-53 relative to the result, fit_cpu_math.py). The large
 * terms are summed without rounding error:
 *   - k*LN2_HI is exact for |k| < 2**21; h1 = k*LN2_HI + f with its error l1 (Fast2Sum:
 *     |k*LN2_HI| >= 0.69 > |f| when k != 0; h1 = f, l1 = 0 when k = 0);
 *   - f*f/2 = sq_hi + sq_lo with f = fh + fl split by masking (fh: 26 bits, fl: 27 bits):
 *     sq_hi = fh*fh/2 and fh*fl are exact, fl*fl/2 is below 2**-54 f*f;
 *   - h2 = h1 - sq_hi with its error l2 (Fast2Sum: sq_hi <= |h1|/2 for every k, f here).
 * The rest, s*(f*f/2 + R) + k*LN2_LO - sq_lo + l1 + l2, is below 0.032 in size. Error budget,
 * u = 2**-53: s carries 2u relative (2 + f, the division), f*f/2 u, R 6u (z = s*s has 5u) on a
 * term 0.18 of the sum, so s*(f*f/2 + R) <= 0.031 carries 6u relative, 0.19u absolute at f = 1/2
 * and less like f**3 below; the three sums after it round at 2**-58 each. hi = h2 + rest rounds
 * once: 1/2 ulp + 0.25u absolute at most.
 * All of it is exact fused or not: each product whose rounding matters is exact.
 */
#define BCE_LOG_L0 0x1.555555555554fp-1
#define BCE_LOG_L1 0x1.999999999c17cp-2
#define BCE_LOG_L2 0x1.24924921e40f3p-2
#define BCE_LOG_L3 0x1.c71c749002e6cp-3
#define BCE_LOG_L4 0x1.745c4ac914282p-3
#define BCE_LOG_L5 0x1.3b35c38299107p-3
#define BCE_LOG_L6 0x1.0dcb625996dbbp-3
#define BCE_LOG_L7 0x1.1b8314909a2bp-3

/* x with its low 27 mantissa bits cleared: 26 significant bits, so a product of two is exact */
BCE_INLINE double bce__split26(double x) { return bce__f64_from(bce__f64_bits(x) & 0xfffffffff8000000ull); }

BCE_INLINE double bce__log_parts(double k, double f, double *lo) {
    /* |f| <= 2**-100: the terms after f are computed at 2**-100 and multiplied by w = 0, so
     * that no product underflows (see bce_log1pf_unit) */
    double w = bce__f64_from(bce__f64_bits(f) & 0x7fffffffffffffffull) > 0x1p-100 ? 1.0 : 0.0;
    double fc = f * w + (0x1p-100 - 0x1p-100 * w);
    double s = fc / (2.0 + fc);
    double z = s * s, z2 = z * z, z4 = z2 * z2;
    double r = z * (((BCE_LOG_L0 + BCE_LOG_L1 * z) + z2 * (BCE_LOG_L2 + BCE_LOG_L3 * z)) +
                    z4 * ((BCE_LOG_L4 + BCE_LOG_L5 * z) + z2 * (BCE_LOG_L6 + BCE_LOG_L7 * z)));
    double hfsq = 0.5 * fc * fc;
    double fh = bce__split26(fc), fl = fc - fh;
    double sq_hi = 0.5 * fh * fh * w, sq_lo = fh * fl + 0.5 * fl * fl;
    double kh = k * BCE_LN2_HI;
    double h1 = kh + f, l1 = (kh - h1) + f;
    double h2 = h1 - sq_hi, l2 = (h1 - h2) - sq_hi;
    double rest = ((s * (hfsq + r) - sq_lo) * w + k * BCE_LN2_LO) + (l1 + l2);
    double hi = h2 + rest;
    *lo = (h2 - hi) + rest;
    return hi;
}

/* log1p(e), e in [0, 1]: k = 0, f = e (e <= 1/2) or k = 1, f = (e - 1)/2 (exact). The result is
 * hi: 1/2 ulp + 0.25u where f = 1/2 (t = 0.405, ulp u/2: 1.0 ulp in the worst alignment; the
 * rest's error shrinks like f**3, t like f); k = 1 (|f| <= 1/4, s*(...) <= 0.005): 0.55 ulp.
 * Measured on 1e8 random inputs (a quarter of them next to e = 1/2) against log1pl (GCC 12):
 * 0.733 ulp without FMA, 0.715 with it. */
BCE_INLINE double bce_log1p_unit(double e) {
    double k = e > 0.5 ? 1.0 : 0.0, lo;  /* one select (see bce_log1pf_unit) */
    double f = e * (1.0 - 0.5 * k) - 0.5 * k;  /* e or (e - 1)/2, exact fused or not */
    return bce__log_parts(k, f, &lo);
}

/* log(m) = hi + lo for m > 0 (subnormal m scaled by 2**54 first): m = 2**k * x, x in
 * [sqrt(1/2), sqrt(2)), from the bits (logical shifts only: k + 1024 = (bits(m) + 2**62 -
 * bits(sqrt(1/2))) >> 52), f = x - 1 exact (Sterbenz). */
BCE_INLINE double bce__log_dd(double m, double *lo) {
    double scale = m < 0x1p-1022 ? 0x1p54 : 1.0;  /* one select (see bce_log1pf_unit) */
    uint64_t bits = bce__f64_bits(m * scale);
    uint64_t kb = (bits + 0x00195f619980c433ull) >> 52;
    uint64_t scale_exp = bce__f64_bits(scale) >> 52;  /* 1023 or 1077 */
    double x = bce__f64_from(bits - (kb << 52) + 0x4000000000000000ull);
    double k = bce__f64_from(kb | 0x4330000000000000ull) - bce__f64_from(scale_exp | 0x4330000000000000ull) - 1.0;
    return bce__log_parts(k, x - 1.0, lo);
}

/* log(m) for m >= 0: 0 gives -inf, +inf gives +inf, m < 0 or NaN gives NaN. |f| <= 0.414, so
 * s*(...) <= 0.018 (0.11u absolute) against |result| >= 0.347 where k = 0 and f is large:
 * 0.8 ulp in the worst alignment. Measured on 1e8 random inputs (subnormal m included) against
 * logl (GCC 12): 0.661 ulp without FMA, 0.658 with it. */
BCE_INLINE double bce_log_unit(double m) {
    const double inf = bce__f64_from(0x7ff0000000000000ull);
    double lo, hi = bce__log_dd(m, &lo);
    double special = m == 0.0 ? -inf : (m == inf ? inf : bce__f64_from(0x7ff8000000000000ull));
    return m > 0.0 && m < inf ? hi : special;
}

/* ---------------------------------------------------------------------------------------------
 * float64: m**g for m in [0, 1] and g >= 0 (torchvision's focal factor), as exp(g * log m)
 *
 * exp(g*log m) with a rounded log m loses |g*log m| ulps (an absolute error d in g*log m is a
 * relative error d in the power). Here log m = hi + lo (bce__log_dd, absolute error below 2**-56
 * whatever m's size) and g*(hi + lo) = zh + zl with zh = g*hi rounded and zl its error (a Dekker
 * product on 26-bit halves split by masking: each partial product is exact, so fused or not gives
 * the same) plus g*lo. The power's error is the exp's (0.92 ulp at worst) plus g times log m's
 * absolute error (0.25 x 2**-53 at worst) relative. Measured on 1e8 random (m, g) against powl
 * (GCC 12, without FMA / with it): 0.735 / 0.699 ulp for g <= 2, 0.772 / 0.728 for g = 3,
 * 0.849 / 0.854 for g = 5, 0.998 / 0.980 for g uniform in [0, 8]; subnormal results 0.8 of
 * 2**-1074. For larger g the error grows by about 0.06 ulp per unit of g.
 * m = 0 gives 0 (1 for g = 0); m = 1 or g = 0 gives 1 exactly; NaN gives NaN.
 */
BCE_INLINE double bce_pow_unit(double m, double g) {
    double lo, hi = bce__log_dd(m, &lo);
    double zh = g * hi;
    double gh = bce__split26(g), hh = bce__split26(hi);
    double gl = g - gh, hl = hi - hh;
    double zl = ((((gh * hh - zh) + gh * hl) + gl * hh) + gl * hl) + g * lo;
    double r = bce__exp_neg2(-zh, -zl);
    double at_zero = g == 0.0 ? 1.0 : (g > 0.0 ? 0.0 : bce__f64_from(0x7ff0000000000000ull));
    return m > 0.0 ? r : (m == 0.0 ? at_zero : bce__f64_from(0x7ff8000000000000ull));
}

/* ---------------------------------------------------------------------------------------------
 * float16 and bfloat16 <-> float32, bit-exact (integer operations and, for float16 subnormals,
 * one exact float subtraction or one float addition that rounds as the conversion must).
 * NaN stays NaN with its sign and the leading bits of its payload, quieted (as x86's F16C
 * instructions do); float32 -> float16 rounds to nearest even, subnormals included, and
 * overflows to inf at 65520.
 */
BCE_INLINE float bce_f16_to_f32(uint16_t h) {
    uint32_t em = (uint32_t)h & 0x7fffu, sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t normal = (em << 13) + 0x38000000u;  /* exponent + (127 - 15) */
    /* subnormal: 2**-14 * (1 + em/1024) - 2**-14 = em * 2**-24, exact */
    uint32_t sub = bce__f32_bits(bce__f32_from(0x38800000u | (em << 13)) - 0x1p-14f);
    /* inf and NaN: all exponent bits set (normal | 0x7f800000), NaN quieted */
    uint32_t special = (em >= 0x7c00u ? 0x7f800000u : 0u) | (em > 0x7c00u ? 0x00400000u : 0u);
    return bce__f32_from((em < 0x0400u ? sub : normal | special) | sign);
}

BCE_INLINE uint16_t bce_f32_to_f16(float x) {
    uint32_t u = bce__f32_bits(x);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t a = (int32_t)(u & 0x7fffffffu);
    uint32_t nan = 0x7e00u | (((uint32_t)a >> 13) & 0x03ffu);
    /* below 2**-14: a + 1/2 rounds a to a multiple of 2**-24 (nearest even), the float16 quantum */
    uint32_t sub = bce__f32_bits(bce__f32_from((uint32_t)a) + 0.5f) - 0x3f000000u;
    /* normal: rebias the exponent, add 0xfff + the kept mantissa's last bit, drop 13 bits */
    uint32_t normal = ((uint32_t)a - 0x37fff001u + (((uint32_t)a >> 13) & 1u)) >> 13;
    uint32_t out = a > 0x7f800000 ? nan : (a >= 0x47800000 ? 0x7c00u : (a < 0x38800000 ? sub : normal));
    return (uint16_t)(out | sign);
}

BCE_INLINE float bce_bf16_to_f32(uint16_t b) { return bce__f32_from((uint32_t)b << 16); }

BCE_INLINE uint16_t bce_f32_to_bf16(float x) {
    uint32_t u = bce__f32_bits(x);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t nan = (u >> 16) | 0x0040u;
    return (uint16_t)((int32_t)(u & 0x7fffffffu) > 0x7f800000 ? nan : rounded);
}

/* ---------------------------------------------------------------------------------------------
 * float64 lanes, float32-grade accuracy: exp(-a) and log1p(e) for results rounded to float32
 *
 * For a float32 loss the pass needs t = log1p(exp(-|x|)) within a tiny fraction of a float32 ulp,
 * not a double ulp: these two are each within 1.2e-10 relative of exact (0.002 x 2**-24), so the
 * float32 loss formed from them in double is within half an ulp plus 0.004 ulp of exact, and
 * they cost fewer operations than the double-accurate pair above (no division).
 * bce_exp_neg_fast(a), a >= 0: 2**-n * (1 + r*Q(r)), n = round(a/ln2), r = n*ln2 - a with fdlibm's
 *   split of ln2, Q the degree-6 interpolant of expm1(r)/r on |r| <= ln2/2 (1.1e-10 relative).
 *   For a > 708 the result would leave double's normal range: it is exp(-708) there (3e-308,
 *   which rounds to 0 in float32 whatever it is multiplied by), and exactly 0 at a = +inf
 *   (the formula's limit); NaN stays NaN.
 * bce_log1p_unit_fast(e), e in [0, 1]: e * Q(2e - 1), Q the degree-12 Chebyshev interpolant of
 *   log1p(e)/e on [0, 1] in monomial form (2.2e-11 relative); NaN stays NaN.
 * Both are measured against long double by tests/test_cpu_math.py (bound 2e-10 relative).
 */
BCE_INLINE double bce_exp_neg_fast(double a) {
    const double shifter = 0x1.8p52, inv_ln2 = 0x1.71547652b82fep0;
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double clamped = a > 708.0 ? -708.0 : -a;  /* NaN is not above: it stays NaN */
    double shifted = clamped * inv_ln2 + shifter;
    double n = shifted - shifter;
    double r = (clamped - n * ln2_hi) - n * ln2_lo;
    double r2 = r * r, r4 = r2 * r2;
    double q01 = 0x1.0000000000000p+0 + r * 0x1.00000028794dfp-1, q23 = 0x1.5555556750672p-3 + r * 0x1.5554ace120b86p-5;
    double q45 = 0x1.1110c63a4eed0p-7 + r * 0x1.6d7531eae5468p-10;
    double q = (q01 + r2 * q23) + r4 * (q45 + r2 * 0x1.a15169e096556p-13);
    double p = 1.0 + r * q;
    uint64_t k = bce__f64_bits(shifted) - bce__f64_bits(shifter);  /* n (negative: two's complement) */
    double scale = bce__f64_from((k + 1023u) << 52);
    double finite = a <= DBL_MAX ? 1.0 : 0.0;  /* +inf: the limit 0 (an arithmetic blend) */
    return p * scale * finite;
}

BCE_INLINE double bce_log1p_unit_fast(double e) {
    const double c0 = 0x1.9f323ecbf984cp-1, c1 = -0x1.2773a5d3fadf5p-3, c2 = 0x1.0f95b3d3ce84dp-5;
    const double c3 = -0x1.1540bb513b071p-7, c4 = 0x1.2becae1584804p-9, c5 = -0x1.50a645ae983a7p-11;
    const double c6 = 0x1.83bdeda743063p-13, c7 = -0x1.c85f8edb3fca6p-15, c8 = 0x1.0fd186909e0d4p-16;
    const double c9 = -0x1.3716bd30318b5p-18, c10 = 0x1.79da7c7e7355bp-20, c11 = -0x1.50ac0ede20d15p-21;
    const double c12 = 0x1.a0d0de7fa0aeap-23;
    double t = 2.0 * e - 1.0;
    double t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    double r0 = (c0 + c1 * t) + t2 * (c2 + c3 * t);
    double r1 = (c4 + c5 * t) + t2 * (c6 + c7 * t);
    double r2 = (c8 + c9 * t) + t2 * (c10 + c11 * t);
    return e * ((r0 + t4 * r1) + t8 * (r2 + t4 * c12));
}

/* log(m) for normal m > 0 (2**-1022 <= m < inf), within 2e-11 relative of exact (0.0003 x 2**-24):
 * m = 2**k * x with x in [sqrt(1/2), sqrt(2)) (bce__log_dd's reduction, without its subnormal
 * scaling), f = x - 1 (exact, Sterbenz), and log(m) = k*ln2 + f*Q(t), t = (f - mid)/half mapping
 * [sqrt(1/2) - 1, sqrt(2) - 1] (widened by 1e-6) onto [-1, 1], Q the degree-12 Chebyshev
 * interpolant of log1p(f)/f there in monomial form (1.9e-11 relative: tests/native/
 * fit_cpu_math.py --fast-log). f*Q keeps Q's relative error; where k != 0, |k*ln2| >= 0.69 exceeds
 * |f*Q| <= 0.35, so the sum (rounded once, and k*ln2 once) stays within it. NaN and +inf give NaN
 * (the added m - m); 0, subnormal and negative m give a wrong number: callers clamp first.
 */
BCE_INLINE double bce_log_unit_fast(double m) {
    const double c0 = 0x1.f1125d8b77be9p-1, c1 = -0x1.4ea26f1c788c6p-3, c2 = 0x1.2aea917361366p-5;
    const double c3 = -0x1.2bcd3e6089bd6p-7, c4 = 0x1.406c0297e01f9p-9, c5 = -0x1.64819f9cf2afcp-11;
    const double c6 = 0x1.97de38f64ebaep-13, c7 = -0x1.dd81fc9c3181cp-15, c8 = 0x1.1b31c34d648f9p-16;
    const double c9 = -0x1.4325a07c0efaep-18, c10 = 0x1.8750a76d38eb6p-20, c11 = -0x1.5b2b41c71839cp-21;
    const double c12 = 0x1.acf07aa7d3a22p-23;
    const double mid = 0x1.f0ed99bed9b2ep-5, inv_half = 0x1.6a09a34c21aa7p+1, ln2 = 0x1.62e42fefa39efp-1;
    uint64_t bits = bce__f64_bits(m);
    uint64_t kb = (bits + 0x00195f619980c433ull) >> 52; /* k + 1024 */
    double x = bce__f64_from(bits - (kb << 52) + 0x4000000000000000ull);
    double k = bce__f64_from(kb | 0x4330000000000000ull) - 0x1.00000000004p52; /* (2**52 + kb) - (2**52 + 1024) */
    double f = x - 1.0;
    double t = (f - mid) * inv_half;
    double t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    double r0 = (c0 + c1 * t) + t2 * (c2 + c3 * t);
    double r1 = (c4 + c5 * t) + t2 * (c6 + c7 * t);
    double r2 = (c8 + c9 * t) + t2 * (c10 + c11 * t);
    return (k * ln2 + f * ((r0 + t4 * r1) + t8 * (r2 + t4 * c12))) + (m - m);
}

#endif /* BCE_CPU_MATH_H */
