/* Runs of float16 <-> float32 conversions by the F16C instructions, for the CPU pass's gathers
 * and scatters (backends/_cpu_pass.c).
 *
 * WHY. _cpu_math.h's bce_f16_to_f32 / bce_f32_to_f16 convert with a dozen integer operations a
 * value; vectorised for AVX2 they take 0.31 ns a value (0.57 ns in the baseline build), the
 * F16C instructions 0.05 ns (8 values an instruction; 512-value runs, the 2-vCPU development VM,
 * a Xeon with AVX-512, built with -march=x86-64-v3 and without). A float16
 * loss reads two or three float16 operands per element, so the pass spent ~0.6 ns an element
 * converting: float16 inputs ran 1.25x slower than bfloat16 ones (whose conversion is a shift).
 *
 * SAME BITS. The instructions give the bits of those functions for every input:
 * tests/native/check_cpu_math.c compares the functions with _Float16 casts, which compile to
 * these instructions in its x86-64-v3 build, on every float16 and every float32 input
 * (f16_to_f32_vs_cast, f32_to_f16_vs_cast; to float32 exact, NaN quieted with its payload; to
 * float16 rounded to nearest even, NaN quieted with its payload's top bits). The rounding
 * comes from the instruction's immediate (_MM_FROUND_TO_NEAREST_INT), not from MXCSR, so a
 * caller's rounding mode cannot change it. tests/test_cpu_pass.py runs the pass with and
 * without these runs on every float16 value and compares the results bit for bit.
 *
 * WHEN. Off until bce_f16c_init(1) (backends/cpu_pass.py calls it at import, through
 * _cpu_pass.use_f16c, unless $BCE_COMPAT_NO_F16C is set) finds F16C and AVX on the CPU (every
 * x86-64-v3 CPU); elsewhere (other compilers and architectures too) the run functions return 0
 * and the caller converts value by value.
 */
#ifndef BCE_CPU_F16C_H
#define BCE_CPU_F16C_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static int bce_f16c_on = 0; /* set once, by bce_f16c_init, before any pass runs */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

/* Whether the runs below are used from now on: `wanted` and the CPU has F16C and AVX. */
static inline int bce_f16c_init(int wanted) {
    __builtin_cpu_init();
    bce_f16c_on = wanted && __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    return bce_f16c_on;
}

__attribute__((target("avx,f16c"))) static inline void bce__f16c_to_f32(const uint16_t *src, float *dst, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; n - i >= 8; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    if (i < n) {
        uint16_t in[8] = {0};
        float out[8];
        memcpy(in, src + i, (size_t)(n - i) * sizeof *in);
        _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)in)));
        memcpy(dst + i, out, (size_t)(n - i) * sizeof *out);
    }
}

__attribute__((target("avx,f16c"))) static inline void bce__f16c_from_f32(const float *src, uint16_t *dst, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; n - i >= 8; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    if (i < n) {
        float in[8] = {0};
        uint16_t out[8];
        memcpy(in, src + i, (size_t)(n - i) * sizeof *in);
        _mm_storeu_si128((__m128i *)out, _mm256_cvtps_ph(_mm256_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT));
        memcpy(dst + i, out, (size_t)(n - i) * sizeof *out);
    }
}

/* dst[0..n) = src[0..n) as float32, and 1; or 0 (nothing done) where the runs are off. */
static inline int bce_f16_run_to_f32(const uint16_t *src, float *dst, ptrdiff_t n) {
    if (!bce_f16c_on) return 0;
    bce__f16c_to_f32(src, dst, n);
    return 1;
}

/* dst[0..n) = src[0..n) rounded to float16, and 1; or 0 (nothing done) where the runs are off. */
static inline int bce_f32_run_to_f16(const float *src, uint16_t *dst, ptrdiff_t n) {
    if (!bce_f16c_on) return 0;
    bce__f16c_from_f32(src, dst, n);
    return 1;
}

#else

static inline int bce_f16c_init(int wanted) {
    (void)wanted;
    bce_f16c_on = 0;
    return 0;
}

static inline int bce_f16_run_to_f32(const uint16_t *src, float *dst, ptrdiff_t n) {
    (void)src, (void)dst, (void)n;
    return 0;
}

static inline int bce_f32_run_to_f16(const float *src, uint16_t *dst, ptrdiff_t n) {
    (void)src, (void)dst, (void)n;
    return 0;
}

#endif
#endif
