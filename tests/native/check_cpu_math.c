/* Checks backends/_cpu_math.h: exhaustively over float32 and half-precision inputs, and on random
 * float64 inputs against 80-bit long double. Built and run by tests/test_cpu_math.py.
 *
 *   cc -O3 -fno-trapping-math -ffp-contract=fast [-march=x86-64-v3] -pthread \
 *      tests/native/check_cpu_math.c -o check_cpu_math -lm
 *   ./check_cpu_math --full     every input of every float32 function and conversion (float32
 *                               references: libm's exp and log1p in double), vectorised loops ==
 *                               scalar calls on every input, _Float16 casts on every input, and
 *                               1e8 random inputs per float64 function against long double
 *   ./check_cpu_math            the same, with this header's float64 functions as the float32
 *                               reference (measured in the same run), 2e6 float64 samples
 *   options: --stride K  (exp32: every a in [2**-25, 746], every K-th chunk of 65536 elsewhere;
 *                         log32 (log1p, and the probabilities' fast -log q, -log(1 - q)): every
 *                         e in [2**-25, 1], every K-th chunk below; conv: every
 *                         K-th chunk), --threads N, --samples N, --only conv|exp32|log32|f64
 *
 * Output: one "name value [worst input's bits]" line per measurement (errors in ulps or in units
 * of 2**-24 / 2**-53 relative, counts of wrong results with the first input), then "done". The
 * program asserts nothing: the test compares the numbers with the bounds the header claims.
 */
#define _GNU_SOURCE
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../backends/_cpu_math.h"

#if defined(__FLT16_MAX__) && (defined(__x86_64__) || defined(__aarch64__))
#define HAVE_FLOAT16 1
#else
#define HAVE_FLOAT16 0
#endif
#if defined(__F16C__) || defined(__aarch64__)
#define HAVE_F16C 1
#else
#define HAVE_F16C 0
#endif

#define CHUNK 65536

static int full = 0;
static int stride = 1;  /* exp32/log32 outside their core ranges, conv everywhere: every stride-th chunk */
static int threads = 2;
static long long samples = 2000000;
static const char *only = NULL;

/* ------------------------------------------------------------------------------------------- */
/* statistics: a maximum with the input it came from, and a count of failures with an example */

typedef struct {
    double max;
    uint64_t arg;
} Max;

typedef struct {
    uint64_t count;
    uint64_t example;
} Count;

static void max_update(Max *m, double v, uint64_t arg) {
    if (!(v <= m->max)) {
        m->max = v != v ? INFINITY : v;
        m->arg = arg;
    }
}

/* max_update(m, num / den, arg) without the division where the maximum does not move */
static inline void max_ratio(Max *m, double num, double den, uint64_t arg) {
    if (!(num <= m->max * den)) max_update(m, num / den, arg);
}

static void count_add(Count *c, uint64_t arg) {
    if (c->count++ == 0) c->example = arg;
}

static void max_merge(Max *into, const Max *from) { max_update(into, from->max, from->arg); }

static void count_merge(Count *into, const Count *from) {
    if (from->count && !into->count) into->example = from->example;
    into->count += from->count;
}

static void print_max(const char *name, const Max *m, int width) {
    if (width == 32)
        printf("%s %.6f 0x%08llx\n", name, m->max, (unsigned long long)m->arg);
    else
        printf("%s %.6f 0x%016llx\n", name, m->max, (unsigned long long)m->arg);
}

static void print_count(const char *name, const Count *c) {
    printf("%s %llu 0x%llx\n", name, (unsigned long long)c->count, (unsigned long long)c->example);
}

static uint32_t f32_bits(float f) { return bce__f32_bits(f); }
static float f32_from(uint32_t u) { return bce__f32_from(u); }
static uint64_t f64_bits(double d) { return bce__f64_bits(d); }
static double f64_from(uint64_t u) { return bce__f64_from(u); }

/* ulp of a float32 result near the exact value v > 0 (subnormal: 2**-149): 2**(exponent - 23) */
static double ulp32(double v) {
    if (v < 0x1p-126) return 0x1p-149;
    return f64_from((f64_bits(v) & 0x7ff0000000000000ull) - (23ull << 52));
}

static double ulp64(long double v) {
    int e;
    frexpl(v, &e);
    if (e - 1 < -1022) return 0x1p-1074;
    return ldexp(1.0, e - 1 - 52);
}

/* ------------------------------------------------------------------------------------------- */
/* threads: each takes chunks of [0, total) until none is left */

typedef void (*ChunkFn)(void *state, uint64_t start, uint64_t count);

typedef struct {
    ChunkFn fn;
    void *states;
    size_t state_size;
    uint64_t total, chunk, next;
    pthread_mutex_t lock;
} Pool;

typedef struct {
    Pool *pool;
    int index;
} Worker;

static void *pool_worker(void *arg) {
    Worker *w = arg;
    Pool *p = w->pool;
    void *state = (char *)p->states + (size_t)w->index * p->state_size;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        uint64_t start = p->next;
        p->next += p->chunk;
        pthread_mutex_unlock(&p->lock);
        if (start >= p->total) return NULL;
        uint64_t count = p->total - start < p->chunk ? p->total - start : p->chunk;
        p->fn(state, start, count);
    }
}

/* runs fn over [0, total) in chunks on `threads` threads; states: one per thread, zeroed */
static void run_pool(ChunkFn fn, void *states, size_t state_size, uint64_t total, uint64_t chunk) {
    Pool pool = {fn, states, state_size, total, chunk, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t ids[64];
    Worker workers[64];
    int n = threads < 64 ? threads : 64;
    for (int i = 0; i < n; i++) {
        workers[i].pool = &pool;
        workers[i].index = i;
        pthread_create(&ids[i], NULL, pool_worker, &workers[i]);
    }
    for (int i = 0; i < n; i++) pthread_join(ids[i], NULL);
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* ------------------------------------------------------------------------------------------- */
/* the functions under test, in vectorised loops (as the CPU pass calls them) and one element at
 * a time behind a call (scalar code: the full run checks that both give the same bits) */

static void vec_log1pf(const float *restrict e, float *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_log1pf_unit(e[i]);
}
static void vec_fast(const double *restrict a, double *restrict e, double *restrict t, int n) {
    for (int i = 0; i < n; i++) {
        e[i] = bce_exp_neg_fast(a[i]);
        t[i] = bce_log1p_unit_fast(e[i]);
    }
}
/* the probabilities' pair in float32-grade double: -log(q) and -log(1 - q) as the pass forms them */
static void vec_neg_logs_fast(const double *restrict q, double *restrict lq, double *restrict l1, int n) {
    for (int i = 0; i < n; i++) {
        double u = 1.0 - q[i];
        lq[i] = -bce_log_unit_fast(q[i]);
        l1[i] = -bce_log_unit_fast(u) - ((1.0 - u) - q[i]);
    }
}
static void vec_exp(const double *restrict a, double *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_exp_neg(a[i]);
}
static void vec_log1p(const double *restrict e, double *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_log1p_unit(e[i]);
}
static void vec_log(const double *restrict m, double *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_log_unit(m[i]);
}
static void vec_pow(const double *restrict m, const double *restrict g, double *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_pow_unit(m[i], g[i]);
}
static void vec_f32_to_f16(const float *restrict x, uint16_t *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_f32_to_f16(x[i]);
}
static void vec_f32_to_bf16(const float *restrict x, uint16_t *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_f32_to_bf16(x[i]);
}
static void vec_f16_to_f32(const uint16_t *restrict h, float *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_f16_to_f32(h[i]);
}
static void vec_bf16_to_f32(const uint16_t *restrict h, float *restrict out, int n) {
    for (int i = 0; i < n; i++) out[i] = bce_bf16_to_f32(h[i]);
}

#define NOINLINE __attribute__((noinline))
static NOINLINE float one_expf(float a) { return bce_expf_neg(a); }
static NOINLINE float one_log1pf(float e) { return bce_log1pf_unit(e); }
static NOINLINE double one_exp_fast(double a) { return bce_exp_neg_fast(a); }
static NOINLINE double one_log1p_fast(double e) { return bce_log1p_unit_fast(e); }
static NOINLINE uint16_t one_f32_to_f16(float x) { return bce_f32_to_f16(x); }
static NOINLINE uint16_t one_f32_to_bf16(float x) { return bce_f32_to_bf16(x); }
static NOINLINE double one_exp(double a) { return bce_exp_neg(a); }
static NOINLINE double one_log1p(double e) { return bce_log1p_unit(e); }
static NOINLINE double one_log(double m) { return bce_log_unit(m); }

/* ------------------------------------------------------------------------------------------- */
/* conversions */

/* Reference rounding of a float32 to a format with `mant` stored mantissa bits, minimum normal
 * exponent emin and exponent bias (maximum exponent bias): by arithmetic in double, |x| /
 * quantum rounded to an integer by adding 1.5*2**52 (round to nearest even), then encoded.
 * Rounding up into the next binade carries into the exponent field, and past the largest
 * finite value into inf, by the same addition. |x| >= 2**(bias + 1) gives inf. Not for NaN. */
static inline uint16_t ref_round(float x, int mant, int emin, int bias) {
    uint32_t u = f32_bits(x);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t e = (int32_t)((u >> 23) & 0xffu) - 127; /* floor(log2 |x|) for normal x; -127 for subnormal */
    int32_t ee = e < emin ? emin : e;
    double inverse_quantum = f64_from((uint64_t)(uint32_t)(mant - ee + 1023) << 52); /* 2**(mant - ee) */
    /* |x| / quantum rounded to an integer n (exact scaling; the addition rounds), read from the
     * low bits of n + 1.5*2**52 */
    uint32_t n = (uint32_t)f64_bits(fabs((double)x) * inverse_quantum + 0x1.8p52);
    uint32_t bits = ((uint32_t)(ee + bias) << mant) + n - (1u << mant);
    uint32_t inf = (uint32_t)(2 * bias + 1) << mant;
    return (uint16_t)(sign | (e > bias ? inf : bits));
}

static int is_nan16(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0; }
static int is_nan_bf16(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x007fu) != 0; }

typedef struct {
    Count f16_wrong, f16_vec_scalar, f16_cast_wrong;
    Count bf16_wrong, bf16_vec_scalar;
    uint64_t checked;
    float x[CHUNK];
    uint16_t h[CHUNK], b[CHUNK], rh[CHUNK], rb[CHUNK];
} ConvState;

/* what the conversions must give for a NaN: its sign, quieted, the payload's leading bits */
static uint16_t nan_to_f16(uint32_t u) { return (uint16_t)(((u >> 16) & 0x8000u) | 0x7e00u | ((u >> 13) & 0x3ffu)); }
static uint16_t nan_to_bf16(uint32_t u) { return (uint16_t)((u >> 16) | 0x40u); }

static void conv_chunk(void *state, uint64_t start, uint64_t count) {
    ConvState *s = state;
    int n = (int)count;
    if ((start / CHUNK) % stride != 0) return;
    s->checked += count;
    for (int i = 0; i < n; i++) s->x[i] = f32_from((uint32_t)(start + i));
    vec_f32_to_f16(s->x, s->h, n);
    vec_f32_to_bf16(s->x, s->b, n);
    for (int i = 0; i < n; i++) {
        s->rh[i] = ref_round(s->x[i], 10, -14, 15);
        s->rb[i] = ref_round(s->x[i], 7, -126, 127);
    }
    int differ = 0; /* a vectorised scan first: the loop below runs only for NaN inputs or errors */
    for (int i = 0; i < n; i++) differ |= (s->h[i] ^ s->rh[i]) | (s->b[i] ^ s->rb[i]);
    for (int i = 0; differ && i < n; i++) {
        if (s->h[i] != s->rh[i] || s->b[i] != s->rb[i]) { /* the references do not handle NaN */
            uint32_t u = (uint32_t)(start + i);
            int nan = s->x[i] != s->x[i];
            if (s->h[i] != (nan ? nan_to_f16(u) : s->rh[i]) || (nan && !is_nan16(s->h[i]))) count_add(&s->f16_wrong, u);
            if (s->b[i] != (nan ? nan_to_bf16(u) : s->rb[i]) || (nan && !is_nan_bf16(s->b[i])))
                count_add(&s->bf16_wrong, u);
        }
    }
#if HAVE_FLOAT16
    /* _Float16 casts: F16C instructions where compiled for them, else libgcc's soft float (80 ns
     * a cast: every 1024th chunk, unless --full) */
    if (full || ((start / CHUNK) % (HAVE_F16C ? 1 : 1024) == 0)) {
        for (int i = 0; i < n; i++) {
            _Float16 c = (_Float16)s->x[i];
            memcpy(&s->rh[i], &c, 2);
        }
        int cast_differ = 0;
        for (int i = 0; i < n; i++) cast_differ |= s->rh[i] ^ s->h[i];
        for (int i = 0; cast_differ && i < n; i++)
            if (s->x[i] == s->x[i] ? s->rh[i] != s->h[i] : !is_nan16(s->rh[i])) count_add(&s->f16_cast_wrong, (uint32_t)(start + i));
    }
#endif
    if (full) {
        for (int i = 0; i < n; i++) {
            if (one_f32_to_f16(s->x[i]) != s->h[i]) count_add(&s->f16_vec_scalar, (uint32_t)(start + i));
            if (one_f32_to_bf16(s->x[i]) != s->b[i]) count_add(&s->bf16_vec_scalar, (uint32_t)(start + i));
        }
    }
}

static void check_conversions(void) {
    double t0 = seconds();
    /* the 65536 half and bfloat16 values to float32 */
    static uint16_t all[65536];
    static float got16[65536], gotb[65536];
    Count w16 = {0, 0}, wb = {0, 0}, round_trip = {0, 0};
#if HAVE_FLOAT16
    Count cast16 = {0, 0};
#endif
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    vec_f16_to_f32(all, got16, 65536);
    vec_bf16_to_f32(all, gotb, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t e = (i >> 10) & 0x1f, m = i & 0x3ff;
        double mag = e == 0 ? ldexp((double)m, -24) : ldexp(1.0 + m / 1024.0, (int)e - 15);
        uint32_t want;
        if (e == 0x1f)
            want = (m ? 0x7fc00000u | (m << 13) : 0x7f800000u);
        else
            want = f32_bits((float)mag);
        want |= (i & 0x8000u) << 16;
        if (f32_bits(got16[i]) != want) count_add(&w16, i);
        if (f32_bits(gotb[i]) != i << 16) count_add(&wb, i);
        /* back again: every non-NaN half and bfloat16 value round-trips */
        if (!is_nan16((uint16_t)i) && bce_f32_to_f16(got16[i]) != i) count_add(&round_trip, i);
        if (!is_nan_bf16((uint16_t)i) && bce_f32_to_bf16(gotb[i]) != i) count_add(&round_trip, i);
#if HAVE_FLOAT16
        _Float16 h;
        uint16_t hb = (uint16_t)i;
        memcpy(&h, &hb, 2);
        float c = (float)h;
        if (is_nan16(hb) ? !(c != c) || f32_bits(c) != f32_bits(got16[i]) : f32_bits(c) != f32_bits(got16[i]))
            count_add(&cast16, i);
#endif
    }
    print_count("f16_to_f32_wrong", &w16);
    print_count("bf16_to_f32_wrong", &wb);
    print_count("half_round_trip_wrong", &round_trip);
#if HAVE_FLOAT16
    print_count("f16_to_f32_vs_cast", &cast16);
#endif

    ConvState *states = calloc((size_t)threads, sizeof(ConvState));
    run_pool(conv_chunk, states, sizeof(ConvState), 1ull << 32, CHUNK);
    ConvState total;
    memset(&total, 0, sizeof total);
    for (int t = 0; t < threads; t++) {
        count_merge(&total.f16_wrong, &states[t].f16_wrong);
        count_merge(&total.f16_vec_scalar, &states[t].f16_vec_scalar);
        count_merge(&total.f16_cast_wrong, &states[t].f16_cast_wrong);
        count_merge(&total.bf16_wrong, &states[t].bf16_wrong);
        count_merge(&total.bf16_vec_scalar, &states[t].bf16_vec_scalar);
        total.checked += states[t].checked;
    }
    free(states);
    print_count("f32_to_f16_wrong", &total.f16_wrong);
    print_count("f32_to_bf16_wrong", &total.bf16_wrong);
#if HAVE_FLOAT16
    print_count("f32_to_f16_vs_cast", &total.f16_cast_wrong);
    printf("f32_to_f16_cast_checked %s\n", full || HAVE_F16C ? "every_checked_input" : "every_1024th_chunk");
#endif
    printf("conv_inputs_checked %llu\n", (unsigned long long)total.checked);
    if (full) {
        print_count("f32_to_f16_vector_vs_scalar", &total.f16_vec_scalar);
        print_count("f32_to_bf16_vector_vs_scalar", &total.bf16_vec_scalar);
    }
    printf("time_conv %.1f\n", seconds() - t0);
}

/* ------------------------------------------------------------------------------------------- */
/* float32 exp, the composite log1p(exp(-a)) and the float32 loss's double pair: every float a in [0, +inf] */

typedef struct {
    Max e_ulp, e_rel, e_sub, t_rel, t_ulp, t_sub, we_rel, wt_rel;
    Count e_zero, special, vec_scalar;
    uint64_t checked;
    float a[CHUNK], e[CHUNK], t[CHUNK];
    double we[CHUNK], wt[CHUNK], ad[CHUNK], re[CHUNK], rt[CHUNK];
} ExpState;

static void vec_exp_and_composite(const float *restrict a, float *restrict e, float *restrict t, int n) {
    for (int i = 0; i < n; i++) {
        e[i] = bce_expf_neg(a[i]);
        t[i] = bce_log1pf_unit(e[i]);
    }
}

/* exp(-a) and log1p(exp(-a)) for a <= 2**-25 by their series: exact to 2**-70 relative */
static void vec_small_reference(const double *restrict a, double *restrict e, double *restrict t, int n) {
    for (int i = 0; i < n; i++) {
        double x = a[i];
        e[i] = 1.0 - x + 0.5 * x * x - x * x * x / 6.0;
        t[i] = 0x1.62e42fefa39efp-1 - 0.5 * x + 0.125 * x * x; /* softplus(-a) = ln2 - a/2 + a**2/8 - a**4/192 */
    }
}

#define A_SMALL 0x33000000u /* 2**-25 */
#define A_ZERO 0x443a8000u  /* 746: beyond, every result is +0 (the functions clamp a first) */

static void exp_chunk(void *state, uint64_t start, uint64_t count) {
    ExpState *s = state;
    int n = (int)count;
    /* with --stride, only [2**-25, 746] is taken whole: below, e rounds to 1 or 1 - 2**-24;
     * above, each function evaluates its clamp's value and every result is +0 */
    if ((start + count <= A_SMALL || start >= A_ZERO) && (start / CHUNK) % stride != 0) return;
    s->checked += count;
    for (int i = 0; i < n; i++) {
        s->a[i] = f32_from((uint32_t)(start + i));
        s->ad[i] = s->a[i];
    }
    vec_exp_and_composite(s->a, s->e, s->t, n);
    vec_fast(s->ad, s->we, s->wt, n);
    if (full) {
        for (int i = 0; i < n; i++) {
            s->re[i] = exp(-s->ad[i]);
            s->rt[i] = log1p(s->re[i]);
        }
    } else if (start + count <= A_SMALL) {
        vec_small_reference(s->ad, s->re, s->rt, n);
    } else {
        vec_exp(s->ad, s->re, n);
        vec_log1p(s->re, s->rt, n);
    }
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)(start + i);
        double re = s->re[i], rt = s->rt[i], e = s->e[i], t = s->t[i];
        /* float results */
        if (re >= 0x1p-126) {
            max_ratio(&s->e_ulp, fabs(e - re), ulp32(re), u);
            max_ratio(&s->e_rel, fabs(e - re), re * 0x1p-24, u);
        } else if (re > 0x1p-150) {
            max_update(&s->e_sub, fabs(e - re) * 0x1p149, u);
        } else if (f32_bits(s->e[i]) != 0) {
            count_add(&s->e_zero, u); /* exp(-a) < 2**-150 rounds to +0 */
        }
        if (rt >= 0x1p-126) {
            max_ratio(&s->t_ulp, fabs(t - rt), ulp32(rt), u);
            max_ratio(&s->t_rel, fabs(t - rt), rt * 0x1p-24, u);
        } else if (rt > 0) {
            max_update(&s->t_sub, fabs(t - rt) * 0x1p149, u);
        } else if (f32_bits(s->t[i]) != 0) {
            count_add(&s->e_zero, u);
        }
        /* the double pair: relative error up to a = 708; beyond, e = t = exp(-708) at most
         * (documented: every float32 term they enter rounds to 0), and 0 at +inf */
        if (s->a[i] <= 708.0f) {
            max_ratio(&s->we_rel, fabs(s->we[i] - re), re * 0x1p-24, u);
            max_ratio(&s->wt_rel, fabs(s->wt[i] - rt), rt * 0x1p-24, u);
        } else if (!(s->we[i] >= 0 && s->we[i] <= 0x1p-1020 && s->wt[i] >= 0 && s->wt[i] <= 0x1p-1020)) {
            count_add(&s->special, u);
        }
    }
    if (full) {
        for (int i = 0; i < n; i++) {
            float e = one_expf(s->a[i]);
            double we = one_exp_fast(s->ad[i]), wt = one_log1p_fast(we);
            if (f32_bits(e) != f32_bits(s->e[i]) || f32_bits(one_log1pf(e)) != f32_bits(s->t[i]) ||
                f64_bits(we) != f64_bits(s->we[i]) || f64_bits(wt) != f64_bits(s->wt[i]))
                count_add(&s->vec_scalar, (uint32_t)(start + i));
        }
    }
}

static void check_exp32(void) {
    double t0 = seconds();
    ExpState *states = calloc((size_t)threads, sizeof(ExpState));
    run_pool(exp_chunk, states, sizeof(ExpState), 0x7f800001ull, CHUNK); /* 0 .. +inf */
    ExpState total;
    memset(&total, 0, sizeof total);
    for (int t = 0; t < threads; t++) {
        ExpState *s = &states[t];
        max_merge(&total.e_ulp, &s->e_ulp);
        max_merge(&total.e_rel, &s->e_rel);
        max_merge(&total.e_sub, &s->e_sub);
        max_merge(&total.t_ulp, &s->t_ulp);
        max_merge(&total.t_rel, &s->t_rel);
        max_merge(&total.t_sub, &s->t_sub);
        max_merge(&total.we_rel, &s->we_rel);
        max_merge(&total.wt_rel, &s->wt_rel);
        count_merge(&total.e_zero, &s->e_zero);
        count_merge(&total.special, &s->special);
        count_merge(&total.vec_scalar, &s->vec_scalar);
        total.checked += s->checked;
    }
    free(states);
    /* special values */
    Count special = total.special;
    float nan = f32_from(0x7fc00000u);
    if (f32_bits(bce_expf_neg(0.0f)) != f32_bits(1.0f)) count_add(&special, 1);
    if (f32_bits(bce_expf_neg(INFINITY)) != 0) count_add(&special, 2);
    if (!(bce_expf_neg(nan) != bce_expf_neg(nan))) count_add(&special, 3);
    if (!(bce_log1pf_unit(nan) != bce_log1pf_unit(nan))) count_add(&special, 4);
    if (bce_log1pf_unit(0.0f) != 0.0f || bce_log1pf_unit(1.0f) != (float)log1p(1.0)) count_add(&special, 5);
    if (bce_exp_neg_fast(0.0) != 1.0 || fabs(bce_log1p_unit_fast(1.0) - log1p(1.0)) > 0x1p-30) count_add(&special, 6);
    if (f64_bits(bce_exp_neg_fast(INFINITY)) != 0 || f64_bits(bce_log1p_unit_fast(0.0)) != 0) count_add(&special, 7);
    if (!(bce_exp_neg_fast(nan) != bce_exp_neg_fast(nan)) || !(bce_log1p_unit_fast(nan) != bce_log1p_unit_fast(nan))) count_add(&special, 8);
    print_max("expf_ulp", &total.e_ulp, 32);
    print_max("expf_rel", &total.e_rel, 32);
    print_max("expf_subnormal_abs", &total.e_sub, 32);
    print_count("expf_underflow_not_zero", &total.e_zero);
    print_max("composite_ulp", &total.t_ulp, 32);
    print_max("composite_rel", &total.t_rel, 32);
    print_max("composite_subnormal_abs", &total.t_sub, 32);
    print_max("fast_e_rel", &total.we_rel, 32);
    print_max("fast_t_rel", &total.wt_rel, 32);
    print_count("exp32_special_wrong", &special);
    if (full) print_count("exp32_vector_vs_scalar", &total.vec_scalar);
    printf("exp32_reference %s\n", full ? "libm" : "own_double");
    printf("exp32_inputs_checked %llu\n", (unsigned long long)total.checked);
    printf("time_exp32 %.1f\n", seconds() - t0);
}

/* ------------------------------------------------------------------------------------------- */
/* float32 log1p: every float e in [0, 1] */

typedef struct {
    Max ulp, rel, fast_log_rel, fast_log1m_rel;
    Count vec_scalar, special;
    uint64_t checked;
    float e[CHUNK], t[CHUNK];
    double in[CHUNK], r[CHUNK], lq[CHUNK], l1[CHUNK], rq[CHUNK], r1[CHUNK];
} LogState;

static void log_chunk(void *state, uint64_t start, uint64_t count) {
    LogState *s = state;
    int n = (int)count;
    if (start + count <= A_SMALL && (start / CHUNK) % stride != 0) return; /* --stride: below 2**-25 */
    s->checked += count;
    for (int i = 0; i < n; i++) {
        s->e[i] = f32_from((uint32_t)(start + i));
        s->in[i] = s->e[i];
    }
    vec_log1pf(s->e, s->t, n);
    vec_neg_logs_fast(s->in, s->lq, s->l1, n);
    if (full) {
        for (int i = 0; i < n; i++) {
            s->r[i] = log1p(s->in[i]);
            s->rq[i] = -log(s->in[i]);
            s->r1[i] = -log1p(-s->in[i]);
        }
    } else {
        vec_log1p(s->in, s->r, n);
        for (int i = 0; i < n; i++) { /* the double route's pair (0.66 ulp log, exact correction) */
            double u = 1.0 - s->in[i];
            s->rq[i] = -bce_log_unit(s->in[i]);
            s->r1[i] = -bce_log_unit(u) - ((1.0 - u) - s->in[i]) / u;
        }
    }
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)(start + i);
        double r = s->r[i], t = s->t[i];
        if (r > 0) {
            max_ratio(&s->ulp, fabs(t - r), ulp32(r), u);
            if (r >= 0x1p-126) max_ratio(&s->rel, fabs(t - r), r * 0x1p-24, u);
        } else if (t != 0) {
            max_update(&s->ulp, INFINITY, u);
        }
        if (full && f32_bits(one_log1pf(s->e[i])) != f32_bits(s->t[i])) count_add(&s->vec_scalar, u);
        /* the probabilities' pair: q normal in (0, 1); q = 1 gives -log q = 0 */
        double q = s->in[i];
        if (q >= 0x1p-126 && q < 1.0) max_ratio(&s->fast_log_rel, fabs(s->lq[i] - s->rq[i]), s->rq[i] * 0x1p-24, u);
        if (q > 0.0 && q < 1.0) max_ratio(&s->fast_log1m_rel, fabs(s->l1[i] - s->r1[i]), s->r1[i] * 0x1p-24, u);
        if (q == 1.0 && s->lq[i] != 0.0) count_add(&s->special, u);
    }
}

static void check_log32(void) {
    double t0 = seconds();
    LogState *states = calloc((size_t)threads, sizeof(LogState));
    run_pool(log_chunk, states, sizeof(LogState), 0x3f800001ull, CHUNK); /* 0 .. 1 */
    LogState total;
    memset(&total, 0, sizeof total);
    for (int t = 0; t < threads; t++) {
        max_merge(&total.ulp, &states[t].ulp);
        max_merge(&total.rel, &states[t].rel);
        max_merge(&total.fast_log_rel, &states[t].fast_log_rel);
        max_merge(&total.fast_log1m_rel, &states[t].fast_log1m_rel);
        count_merge(&total.vec_scalar, &states[t].vec_scalar);
        count_merge(&total.special, &states[t].special);
        total.checked += states[t].checked;
    }
    free(states);
    print_max("log1pf_ulp", &total.ulp, 32);
    print_max("log1pf_rel", &total.rel, 32);
    print_max("fast_log_rel", &total.fast_log_rel, 32);
    print_max("fast_log1m_rel", &total.fast_log1m_rel, 32);
    double nan = f64_from(0x7ff8000000000000ull);
    if (!(bce_log_unit_fast(nan) != bce_log_unit_fast(nan)) || !(bce_log_unit_fast(INFINITY) != bce_log_unit_fast(INFINITY)))
        count_add(&total.special, 1);
    if (fabs(bce_log_unit_fast(0x1p1000) - 1000 * log(2.0)) > 1e-8 || fabs(bce_log_unit_fast(0x1p-1000) + 1000 * log(2.0)) > 1e-8)
        count_add(&total.special, 2);
    print_count("fast_log_special_wrong", &total.special);
    if (full) print_count("log1pf_vector_vs_scalar", &total.vec_scalar);
    printf("log32_inputs_checked %llu\n", (unsigned long long)total.checked);
    printf("time_log32 %.1f\n", seconds() - t0);
}

/* ------------------------------------------------------------------------------------------- */
/* float64: random inputs against long double */

static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state) { return (splitmix(state) >> 11) * 0x1p-53; }

/* a double with bits uniform in [lo, hi]: uniform in exponent and mantissa */
static double bits_between(uint64_t *state, double lo, double hi) {
    uint64_t a = f64_bits(lo), b = f64_bits(hi);
    return f64_from(a + splitmix(state) % (b - a + 1));
}

static const double GAMMAS[] = {0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0};
#define NGAMMAS (sizeof GAMMAS / sizeof GAMMAS[0])

typedef struct {
    Max exp_ulp, exp_sub, log1p_ulp, log_ulp, pow_ulp[NGAMMAS + 1], pow_sub;
    Count exp_special, log_special, vec_scalar;
    double x[CHUNK], y[CHUNK], g[CHUNK], out[CHUNK];
} F64State;

static double exp_input(uint64_t *rng, int64_t i) {
    switch (i % 6) {
    case 0: return bits_between(rng, 0.0, 746.0);           /* uniform bits: every exponent */
    case 1: return 746.0 * uniform01(rng);                  /* every reduction m */
    case 2: return -709.0 * uniform01(rng);                 /* exp of a positive number */
    case 3: return 708.0 + 38.0 * uniform01(rng);           /* subnormal results */
    case 4: {                                               /* next to the reduction's edges */
        double k = floor(2148.0 * uniform01(rng)) - 1100.0;
        double v = (k + 0.5) * 0x1.62e42fefa39efp-1;
        return v + (uniform01(rng) - 0.5) * 64.0 * ldexp(1.0, -52) * (fabs(v) > 1 ? fabs(v) : 1);
    }
    default: return bits_between(rng, 0.0, 1e-3);           /* small a */
    }
}

static double log1p_input(uint64_t *rng, int64_t i) {
    switch (i % 4) {
    case 0: return bits_between(rng, 0.0, 1.0);
    case 1: return uniform01(rng);
    case 2: return 0.5 + (uniform01(rng) - 0.5) * 0x1p-20; /* the k = 0 / k = 1 edge */
    default: return 1.0 - uniform01(rng) * 0x1p-10;
    }
}

static double log_input(uint64_t *rng, int64_t i) {
    switch (i % 5) {
    case 0: return bits_between(rng, 0x1p-1074, 1.0);      /* subnormals included */
    case 1: return uniform01(rng);
    case 2: return 1.0 - uniform01(rng) * 0x1p-20;          /* log m near 0 */
    case 3: return 0x1.6a09e667f3bcdp-1 * (1.0 + (uniform01(rng) - 0.5) * 0x1p-30); /* sqrt(1/2) edge */
    default: return bits_between(rng, 1.0, DBL_MAX);        /* beyond the unit interval */
    }
}

static void f64_chunk(void *state, uint64_t start, uint64_t count) {
    F64State *s = state;
    int n = (int)count;
    uint64_t rng = 0x5eed0000ull + start;
    /* exp */
    for (int i = 0; i < n; i++) s->x[i] = exp_input(&rng, (int64_t)(start + i));
    vec_exp(s->x, s->out, n);
    for (int i = 0; i < n; i++) {
        long double ref = expl(-(long double)s->x[i]);
        double got = s->out[i];
        uint64_t u = f64_bits(s->x[i]);
        if (ref > (long double)DBL_MAX) {
            if (got != INFINITY) count_add(&s->exp_special, u);
        } else if (ref < 0x1p-1022L) {
            max_update(&s->exp_sub, (double)(fabsl((long double)got - ref) * 0x1p1074L), u);
        } else {
            max_update(&s->exp_ulp, (double)(fabsl((long double)got - ref) / ulp64(ref)), u);
        }
        if (full && f64_bits(one_exp(s->x[i])) != f64_bits(got)) count_add(&s->vec_scalar, u);
    }
    /* log1p on [0, 1] */
    for (int i = 0; i < n; i++) s->x[i] = log1p_input(&rng, (int64_t)(start + i));
    vec_log1p(s->x, s->out, n);
    for (int i = 0; i < n; i++) {
        long double ref = log1pl((long double)s->x[i]);
        uint64_t u = f64_bits(s->x[i]);
        if (ref == 0) {
            if (f64_bits(s->out[i]) != f64_bits(s->x[i])) count_add(&s->log_special, u);
        } else {
            max_update(&s->log1p_ulp, (double)(fabsl((long double)s->out[i] - ref) / ulp64(ref)), u);
        }
        if (full && f64_bits(one_log1p(s->x[i])) != f64_bits(s->out[i])) count_add(&s->vec_scalar, u);
    }
    /* log on (0, DBL_MAX] */
    for (int i = 0; i < n; i++) s->x[i] = log_input(&rng, (int64_t)(start + i));
    vec_log(s->x, s->out, n);
    for (int i = 0; i < n; i++) {
        long double ref = logl((long double)s->x[i]);
        uint64_t u = f64_bits(s->x[i]);
        if (ref == 0) {
            if (f64_bits(s->out[i]) != 0) count_add(&s->log_special, u);
        } else {
            max_update(&s->log_ulp, (double)(fabsl((long double)s->out[i] - ref) / ulp64(ref)), u);
        }
        if (full && f64_bits(one_log(s->x[i])) != f64_bits(s->out[i])) count_add(&s->vec_scalar, u);
    }
    /* pow: m in (0, 1], g from GAMMAS or uniform in [0, 8] */
    for (int i = 0; i < n; i++) {
        int64_t j = (int64_t)(start + i);
        s->x[i] = (j & 1) ? bits_between(&rng, 0x1p-1074, 1.0) : uniform01(&rng);
        int which = (int)((j >> 1) % (NGAMMAS + 1));
        s->g[i] = which < (int)NGAMMAS ? GAMMAS[which] : 8.0 * uniform01(&rng);
    }
    vec_pow(s->x, s->g, s->out, n);
    for (int i = 0; i < n; i++) {
        int64_t j = (int64_t)(start + i);
        int which = (int)((j >> 1) % (NGAMMAS + 1));
        long double ref = powl((long double)s->x[i], (long double)s->g[i]);
        uint64_t u = f64_bits(s->x[i]);
        if (ref < 0x1p-1022L) {
            max_update(&s->pow_sub, (double)(fabsl((long double)s->out[i] - ref) * 0x1p1074L), u);
        } else {
            max_update(&s->pow_ulp[which], (double)(fabsl((long double)s->out[i] - ref) / ulp64(ref)), u);
        }
    }
}

static void check_f64(void) {
    double t0 = seconds();
    if (LDBL_MANT_DIG < 64) {
        printf("f64_skipped long_double_has_%d_bits\n", LDBL_MANT_DIG);
        return;
    }
    F64State *states = calloc((size_t)threads, sizeof(F64State));
    run_pool(f64_chunk, states, sizeof(F64State), (uint64_t)samples, 4096);
    F64State total;
    memset(&total, 0, sizeof total);
    for (int t = 0; t < threads; t++) {
        F64State *s = &states[t];
        max_merge(&total.exp_ulp, &s->exp_ulp);
        max_merge(&total.exp_sub, &s->exp_sub);
        max_merge(&total.log1p_ulp, &s->log1p_ulp);
        max_merge(&total.log_ulp, &s->log_ulp);
        for (size_t k = 0; k <= NGAMMAS; k++) max_merge(&total.pow_ulp[k], &s->pow_ulp[k]);
        max_merge(&total.pow_sub, &s->pow_sub);
        count_merge(&total.exp_special, &s->exp_special);
        count_merge(&total.log_special, &s->log_special);
        count_merge(&total.vec_scalar, &s->vec_scalar);
    }
    free(states);
    /* special values */
    Count special = total.exp_special;
    double nan = f64_from(0x7ff8000000000000ull), inf = INFINITY;
    if (f64_bits(bce_exp_neg(0.0)) != f64_bits(1.0) || f64_bits(bce_exp_neg(-0.0)) != f64_bits(1.0)) count_add(&special, 1);
    if (f64_bits(bce_exp_neg(inf)) != 0 || bce_exp_neg(-inf) != inf) count_add(&special, 2);
    if (f64_bits(bce_exp_neg(745.2)) != 0 || bce_exp_neg(745.1) != 0x1p-1074) count_add(&special, 3);
    if (!(bce_exp_neg(nan) != bce_exp_neg(nan))) count_add(&special, 4);
    if (f64_bits(bce_log1p_unit(0.0)) != 0 || !(bce_log1p_unit(nan) != bce_log1p_unit(nan))) count_add(&special, 5);
    if (bce_log_unit(0.0) != -inf || bce_log_unit(-0.0) != -inf || bce_log_unit(inf) != inf) count_add(&special, 6);
    if (!(bce_log_unit(-1.0) != bce_log_unit(-1.0)) || !(bce_log_unit(nan) != bce_log_unit(nan))) count_add(&special, 7);
    if (f64_bits(bce_log_unit(1.0)) != 0) count_add(&special, 8);
    if (bce_pow_unit(0.0, 2.0) != 0.0 || bce_pow_unit(0.0, 0.0) != 1.0 || bce_pow_unit(1.0, 2.5) != 1.0) count_add(&special, 9);
    if (bce_pow_unit(0.3, 0.0) != 1.0 || bce_pow_unit(0x1p-1074, 0.0) != 1.0 || bce_pow_unit(0x1p-1074, 2.0) != 0.0) count_add(&special, 10);
    if (!(bce_pow_unit(nan, 2.0) != bce_pow_unit(nan, 2.0)) || !(bce_pow_unit(0.5, nan) != bce_pow_unit(0.5, nan))) count_add(&special, 11);
    print_max("exp_ulp", &total.exp_ulp, 64);
    print_max("exp_subnormal_abs", &total.exp_sub, 64);
    print_max("log1p_ulp", &total.log1p_ulp, 64);
    print_max("log_ulp", &total.log_ulp, 64);
    for (size_t k = 0; k <= NGAMMAS; k++) {
        char name[64];
        if (k < NGAMMAS)
            snprintf(name, sizeof name, "pow_ulp_g%g", GAMMAS[k]);
        else
            snprintf(name, sizeof name, "pow_ulp_g0to8");
        print_max(name, &total.pow_ulp[k], 64);
    }
    print_max("pow_subnormal_abs", &total.pow_sub, 64);
    print_count("f64_special_wrong", &special);
    print_count("log_special_wrong", &total.log_special);
    if (full) print_count("f64_vector_vs_scalar", &total.vec_scalar);
    printf("f64_samples %lld\n", samples);
    printf("time_f64 %.1f\n", seconds() - t0);
}

/* ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    int samples_set = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0) {
            full = 1;
        } else if (strcmp(argv[i], "--stride") == 0 && i + 1 < argc) {
            stride = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
            samples = atoll(argv[++i]);
            samples_set = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--full] [--stride K] [--threads N] [--samples N] [--only conv|exp32|log32|f64]\n",
                    argv[0]);
            return 2;
        }
    }
    if (full && !samples_set) samples = 100000000;
    if (threads < 1) threads = 1;
    if (stride < 1 || full) stride = 1;
    printf("mode %s\nthreads %d\nfma %d\nfloat16 %d\n", full ? "full" : "quick", threads,
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
           1,
#else
           0,
#endif
           HAVE_FLOAT16);
    fflush(stdout);
    if (!only || strcmp(only, "conv") == 0) check_conversions();
    fflush(stdout);
    if (!only || strcmp(only, "exp32") == 0) check_exp32();
    fflush(stdout);
    if (!only || strcmp(only, "log32") == 0) check_log32();
    fflush(stdout);
    if (!only || strcmp(only, "f64") == 0) check_f64();
    printf("done\n");
    return 0;
}
