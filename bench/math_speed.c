/* ns per element of t = log1p(exp(-|x|)) over 2**16 elements, for each exp/log1p on offer.
 *
 *   cc -O3 -fno-trapping-math -ffp-contract=fast bench/math_speed.c -o /tmp/ms -lm
 *   cc -O3 -fno-trapping-math -ffp-contract=fast -march=x86-64-v3 bench/math_speed.c -o /tmp/ms3 -lm
 *   cc -O3 -fno-trapping-math -ffp-contract=fast -DCLONES bench/math_speed.c -o /tmp/msc -lm
 *   /tmp/ms [repeats]
 *
 * The flags are setup.py's; -DCLONES puts the target_clones attribute of backends/_cpu_pass.c on
 * each loop (x86-64-v4, v3, default: the loader picks one for the CPU). Each loop reads x and
 * writes t (float32 in, float32 out, or float64 in and out), as the CPU pass's inner loop does;
 * the time is the best of `repeats` passes (default 2000; the scalar glibc loops every 8th),
 * the contenders taking turns, after one warm-up pass each. Two data sets: logits ~ normal(0, 3),
 * and |x| in [20, 100] (the tail, where products of tiny numbers could underflow).
 *
 * Contenders:
 *   cpu_math_f64fast  bce_log1p_unit_fast(bce_exp_neg_fast(|x|)): float64 lanes, 1.2e-10 relative,
 *                   float32 in and out (the float32 loss's route)
 *   cpu_math_f32    bce_log1pf_unit(bce_expf_neg(|x|)), float32 lanes (the float16/bfloat16 route)
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

/* ---- the loops ---- */
VECTOR_CLONES NOINLINE static void loop_fast(const float *restrict x, float *restrict t, int n) {
    for (int i = 0; i < n; i++) t[i] = (float)bce_log1p_unit_fast(bce_exp_neg_fast(fabs((double)x[i])));
}
VECTOR_CLONES NOINLINE static void loop_f32(const float *restrict x, float *restrict t, int n) {
    for (int i = 0; i < n; i++) t[i] = bce_log1pf_unit(bce_expf_neg(fabsf(x[i])));
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

enum { FAST, F32, F64, GLIBC_F32, GLIBC_F64, CONTENDERS };
static const char *NAMES[CONTENDERS] = {"cpu_math_f64fast", "cpu_math_f32", "cpu_math_f64", "glibc_f32", "glibc_f64"};

static void run(int which) {
    switch (which) {
    case FAST: loop_fast(xf, tf, N); break;
    case F32: loop_f32(xf, tf, N); break;
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
