/* ns per element of t = log1p(exp(-|x|)) over 2**16 elements, for each exp/log1p on offer.
 *
 *   cc -O3 -fno-trapping-math -ffp-contract=fast bench/math_speed.c -o /tmp/ms -lm
 *   cc -O3 -fno-trapping-math -ffp-contract=fast -march=x86-64-v3 bench/math_speed.c -o /tmp/ms3 -lm
 *   cc -O3 -fno-trapping-math -ffp-contract=fast -DCLONES bench/math_speed.c -o /tmp/msc -lm
 *   /tmp/ms [repeats]
 *
 * The flags are setup.py's; -DCLONES puts the target_clones attribute of backends/_fused.c on
 * each loop (x86-64-v4, v3, default: the loader picks one for the CPU). Each loop reads x and
 * writes t (float32 in, float32 out, or float64 in and out), as the CPU pass's inner loop does;
 * the time is the best of `repeats` passes (default 2000; the scalar glibc loops every 8th),
 * the contenders taking turns, after one warm-up pass each. Two data sets: logits ~ normal(0, 3),
 * and |x| in [20, 100] (the tail, where products of tiny numbers could underflow).
 *
 * Contenders:
 *   fused_f64poly   backends/_fused.c's double polynomials (copied below), float32 in and out
 *   cpu_math_f32    bce_log1pf_unit(bce_expf_neg(|x|)), float32 lanes
 *   cpu_math_wide   bce_exp_log1pf_wide(|x|): float32 lanes, t combined in double, rounded to float32
 *   cpu_math_f64    bce_log1p_unit(bce_exp_neg(|x|)), float64
 *   glibc_f32       log1pf(expf(-|x|)), scalar calls
 *   glibc_f64       log1p(exp(-|x|)), scalar calls
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backends/_cpu_math.h"

#define N 65536

#if defined(CLONES) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif
#define NOINLINE __attribute__((noinline))

/* ---- backends/_fused.c's fast route, copied (exp_nonpositive, log1p_unit) ---- */
static inline double fused_as_double(uint64_t bits) { double d; memcpy(&d, &bits, 8); return d; }
static inline uint64_t fused_as_bits(double d) { uint64_t b; memcpy(&b, &d, 8); return b; }

static inline double fused_exp_nonpositive(double a) {
    const double shifter = 0x1.8p52, inv_ln2 = 0x1.71547652b82fep0;
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double clamped = a < -708.0 ? -708.0 : a;
    double shifted = clamped * inv_ln2 + shifter;
    double n = shifted - shifter;
    double r = (clamped - n * ln2_hi) - n * ln2_lo;
    double r2 = r * r, r4 = r2 * r2;
    double q01 = 0x1.0000000000000p+0 + r * 0x1.00000028794dfp-1, q23 = 0x1.5555556750672p-3 + r * 0x1.5554ace120b86p-5;
    double q45 = 0x1.1110c63a4eed0p-7 + r * 0x1.6d7531eae5468p-10;
    double q = (q01 + r2 * q23) + r4 * (q45 + r2 * 0x1.a15169e096556p-13);
    double p = 1.0 + r * q;
    int64_t k = (int64_t)(fused_as_bits(shifted) - fused_as_bits(shifter));
    double scale = fused_as_double((uint64_t)(k + 1023) << 52);
    return p * scale;
}

static inline double fused_log1p_unit(double e) {
    static const double c[13] = {
        0x1.9f323ecbf984cp-1, -0x1.2773a5d3fadf5p-3, 0x1.0f95b3d3ce84dp-5, -0x1.1540bb513b071p-7,
        0x1.2becae1584804p-9, -0x1.50a645ae983a7p-11, 0x1.83bdeda743063p-13, -0x1.c85f8edb3fca6p-15,
        0x1.0fd186909e0d4p-16, -0x1.3716bd30318b5p-18, 0x1.79da7c7e7355bp-20, -0x1.50ac0ede20d15p-21,
        0x1.a0d0de7fa0aeap-23,
    };
    double t = 2.0 * e - 1.0;
    double t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    double r0 = (c[0] + c[1] * t) + t2 * (c[2] + c[3] * t);
    double r1 = (c[4] + c[5] * t) + t2 * (c[6] + c[7] * t);
    double r2 = (c[8] + c[9] * t) + t2 * (c[10] + c[11] * t);
    return e * ((r0 + t4 * r1) + t8 * (r2 + t4 * c[12]));
}

/* ---- the loops ---- */
VECTOR_CLONES NOINLINE static void loop_fused(const float *restrict x, float *restrict t, int n) {
    for (int i = 0; i < n; i++) t[i] = (float)fused_log1p_unit(fused_exp_nonpositive(-fabs((double)x[i])));
}
VECTOR_CLONES NOINLINE static void loop_f32(const float *restrict x, float *restrict t, int n) {
    for (int i = 0; i < n; i++) t[i] = bce_log1pf_unit(bce_expf_neg(fabsf(x[i])));
}
VECTOR_CLONES NOINLINE static void loop_wide(const float *restrict x, float *restrict t, int n) {
    for (int i = 0; i < n; i++) {
        double e, tt;
        bce_exp_log1pf_wide(fabsf(x[i]), &e, &tt);
        t[i] = (float)tt;
    }
}
VECTOR_CLONES NOINLINE static void loop_f64(const double *restrict x, double *restrict t, int n) {
    for (int i = 0; i < n; i++) t[i] = bce_log1p_unit(bce_exp_neg(fabs(x[i])));
}
NOINLINE static void loop_glibc_f32(const float *restrict x, float *restrict t, int n) {
    for (int i = 0; i < n; i++) t[i] = log1pf(expf(-fabsf(x[i])));
}
NOINLINE static void loop_glibc_f64(const double *restrict x, double *restrict t, int n) {
    for (int i = 0; i < n; i++) t[i] = log1p(exp(-fabs(x[i])));
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float xf[N], tf[N];
static double xd[N], td[N];

enum { FUSED, F32, WIDE, F64, GLIBC_F32, GLIBC_F64, CONTENDERS };
static const char *NAMES[CONTENDERS] = {"fused_f64poly", "cpu_math_f32", "cpu_math_wide", "cpu_math_f64", "glibc_f32",
                                        "glibc_f64"};

static void run(int which) {
    switch (which) {
    case FUSED: loop_fused(xf, tf, N); break;
    case F32: loop_f32(xf, tf, N); break;
    case WIDE: loop_wide(xf, tf, N); break;
    case F64: loop_f64(xd, td, N); break;
    case GLIBC_F32: loop_glibc_f32(xf, tf, N); break;
    default: loop_glibc_f64(xd, td, N); break;
    }
    __asm__ volatile("" ::: "memory"); /* the loops' stores are observed: no pass is skipped */
}

/* logits: normal(0, scale) from Box-Muller on an LCG, or uniform in [lo, hi] when lo < hi */
static void fill(double scale, double lo, double hi) {
    uint64_t state = 12345;
    for (int i = 0; i < N; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((state >> 11) + 1) * 0x1p-53;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = (state >> 11) * 0x1p-53;
        xd[i] = lo < hi ? lo + (hi - lo) * u2 : scale * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        xf[i] = (float)xd[i];
    }
}

/* The contenders take turns within each repeat (a busy machine slows them alike); the best
 * pass of each counts. */
static void measure(const char *label, int repeats) {
    double best[CONTENDERS];
    for (int c = 0; c < CONTENDERS; c++) {
        best[c] = 1e30;
        run(c); /* warm-up */
    }
    for (int r = 0; r < repeats; r++) {
        for (int c = 0; c < CONTENDERS; c++) {
            int reps = c >= GLIBC_F32 && r % 8 ? 0 : 1; /* the scalar calls: every 8th repeat */
            if (!reps) continue;
            double t0 = now();
            run(c);
            double dt = now() - t0;
            if (dt < best[c]) best[c] = dt;
        }
    }
    printf("%s\n", label);
    for (int c = 0; c < CONTENDERS; c++) printf("  %-16s %7.3f ns/element\n", NAMES[c], best[c] / N * 1e9);
}

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 2000;
    fill(3.0, 0.0, 0.0);
    measure("x ~ normal(0, 3)", repeats);
    fill(0.0, 20.0, 100.0);
    measure("|x| uniform in [20, 100] (tiny e: float subnormals in cpu_math_f32 beyond 87.3)", repeats / 4);
    return 0;
}
