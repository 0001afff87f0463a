/* One fused pass of BCE-with-logits on the CPU: loss, its sum per block, and d loss / d x.
 *
 * The formula is numpy_fast's (see its docstring). With e = exp(-|x|), t = log1p(e),
 * c+ = p*y (or y), c- = 1 - y, s = c+ + c-:
 *
 *     loss = s*t + k*x            k = c- where x > 0, else -c+
 *     dloss/dx = (k + j*e) / (1 + e)   j = -c+ where x > 0, else c-
 *
 * Everything is computed in double. Two routes for exp and log1p:
 *   - fast (precise == 0): the branch-free polynomials below, which the compiler vectorises.
 *     Their error is below 2e-10 relative, under 0.004 of a float32 ulp: for float16/float32
 *     results the loss still rounds within docs/contract.md section 4.
 *   - precise (precise == 1): libm's exp and log1p, for float64 results, where a double ulp
 *     counts. Same pass, no temporaries; only the two calls are scalar.
 *
 * The input is cut into blocks of BLOCK elements (the unit of a reduction's partial sums, so
 * the sum does not depend on how many threads ran), and blocks into chunks of CHUNK elements
 * that stay in L1: operands are gathered into double buffers, the math runs over them, then the
 * results are stored in the output dtype.
 *
 * Operands y, weight, pos_weight and upstream are each None, a number, or (buffer, repeat):
 * element i of x uses buffer[(i / repeat) % len(buffer)]. That covers a full array (repeat 1,
 * len N), pos_weight[C] over [B, C] (repeat 1, len C) and a per-row weight[B, 1] (repeat C).
 */
#define PY_SSIZE_T_CLEAN
/* Only CPython 3.11's limited API: setup.py builds this for the stable ABI (Py_LIMITED_API). */
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define CHUNK 512
/* 8 Ki: the host team can split an input only from two blocks, and with 16 Ki blocks a 2**14
 * input ran on one thread at 1.07-1.11x torch's two-thread op (bench/README.md). */
#define BLOCK 8192

#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

typedef struct {
    const char *data;  /* NULL: a constant */
    int is_double;
    Py_ssize_t length;  /* elements in the buffer */
    Py_ssize_t repeat;
    double constant;
    int present;
    Py_buffer view;
    int has_view;
} Operand;

typedef struct {
    char *data;  /* NULL: not wanted */
    int is_double;
    Py_buffer view;
    int has_view;
} Output;

static inline double as_double(uint64_t bits) { double d; memcpy(&d, &bits, 8); return d; }
static inline uint64_t as_bits(double d) { uint64_t b; memcpy(&b, &d, 8); return b; }

/* The fast route's exp and log1p. They need a relative error far below a float32 ulp (2**-24,
 * 6e-8), not a double ulp: each is within 1.1e-10 of exact, which moves a float32 result by
 * under 0.004 ulp. Higher degrees buy accuracy no float32 result can show: the earlier
 * degree-10 exp and degree-15 log1p (near 1e-13) took 8-10 % longer (bench/README.md).
 * Polynomials are evaluated in Estrin's scheme (short dependency chains: the loop is
 * latency-bound otherwise). The coefficients are Chebyshev interpolants fitted with mpmath. */

/* exp(a) for a <= 0 or NaN: 2**n * P(r), r = a - n*ln2, |r| <= ln2/2, P(r) = 1 + r*Q(r) with Q
 * the degree-6 interpolant of expm1(r)/r (relative error 1.1e-10; exp(0) is exactly 1).
 * Below -708 it gives exp(-708), 3e-308 (the loss is then
 * below float32's range whatever the coefficients: even times 1e77 it rounds to 0), NaN stays NaN. */
static inline double exp_nonpositive(double a) {
    const double shifter = 0x1.8p52, inv_ln2 = 0x1.71547652b82fep0;
    /* fdlibm's split of ln2: n*ln2_hi is exact for |n| < 2**11 */
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double clamped = a < -708.0 ? -708.0 : a;  /* NaN is not below: it stays NaN */
    double shifted = clamped * inv_ln2 + shifter;
    double n = shifted - shifter;
    double r = (clamped - n * ln2_hi) - n * ln2_lo;
    double r2 = r * r, r4 = r2 * r2;
    double q01 = 0x1.0000000000000p+0 + r * 0x1.00000028794dfp-1, q23 = 0x1.5555556750672p-3 + r * 0x1.5554ace120b86p-5;
    double q45 = 0x1.1110c63a4eed0p-7 + r * 0x1.6d7531eae5468p-10;
    double q = (q01 + r2 * q23) + r4 * (q45 + r2 * 0x1.a15169e096556p-13);
    double p = 1.0 + r * q;
    int64_t k = (int64_t)(as_bits(shifted) - as_bits(shifter));  /* n, as an integer */
    double scale = as_double((uint64_t)(k + 1023) << 52);
    return p * scale;
}

/* log1p(e) for 0 <= e <= 1 or NaN, without a division: e * Q(2e - 1), Q the degree-12 Chebyshev
 * interpolant of log1p(e)/e on [0, 1] (relative error 2.2e-11; the coefficients are its monomial
 * form in t = 2e - 1). A division costs more than the extra multiply-adds on the CPUs measured. */
static inline double log1p_unit(double e) {
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

/* buffer[(i / repeat) % length] for i in [start, start + count), as doubles */
VECTOR_CLONES
static void gather(const Operand *op, Py_ssize_t start, Py_ssize_t count, double *dst) {
    if (!op->data) {
        for (Py_ssize_t i = 0; i < count; i++) dst[i] = op->constant;
        return;
    }
    Py_ssize_t i = 0;
    while (i < count) {
        Py_ssize_t g = start + i;
        Py_ssize_t index = (g / op->repeat) % op->length;
        Py_ssize_t run;
        if (op->repeat == 1) {  /* a contiguous run up to the buffer's end */
            run = op->length - index;
            if (run > count - i) run = count - i;
            if (op->is_double) {
                memcpy(dst + i, (const double *)op->data + index, run * sizeof(double));
            } else {
                const float *src = (const float *)op->data + index;
                for (Py_ssize_t m = 0; m < run; m++) dst[i + m] = src[m];
            }
        } else {  /* one value repeated up to the next multiple of repeat */
            run = op->repeat - g % op->repeat;
            if (run > count - i) run = count - i;
            double v = op->is_double ? ((const double *)op->data)[index] : ((const float *)op->data)[index];
            for (Py_ssize_t m = 0; m < run; m++) dst[i + m] = v;
        }
        i += run;
    }
}

VECTOR_CLONES
static void store(const Output *out, Py_ssize_t start, Py_ssize_t count, const double *src) {
    if (out->is_double) {
        memcpy((double *)out->data + start, src, count * sizeof(double));
    } else {
        float *dst = (float *)out->data + start;
        for (Py_ssize_t i = 0; i < count; i++) dst[i] = (float)src[i];
    }
}

typedef struct {
    double x[CHUNK], y[CHUNK], w[CHUNK], p[CHUNK], u[CHUNK], loss[CHUNK], grad[CHUNK];
} Scratch;

/* The formula over one chunk of gathered doubles. Absent weight and upstream are gathered as
 * 1.0 (a multiplication by 1 is exact); pos_weight is a flag, because without it the factor
 * s = y + (1 - y) is not always exactly 1. Inlined with constant flags into the routes below,
 * so that each loop has no branches or calls and vectorises. */
static inline ALWAYS_INLINE double chunk_math(
    Scratch *s, Py_ssize_t count, const int has_p, const int has_w, const int want_loss, const int want_grad,
    double scale, const int precise) {
    for (Py_ssize_t i = 0; i < count; i++) {
        double x = s->x[i], y = s->y[i];
        double a = -fabs(x);
        double e = precise ? exp(a) : exp_nonpositive(a);
        int positive = x > 0.0;
        double cp = has_p ? y * s->p[i] : y;
        double cn = 1.0 - y;
        double k = positive ? cn : -cp;
        if (want_loss) {
            double t = precise ? log1p(e) : log1p_unit(e);
            if (has_p) t *= cp + cn;
            double kx = (k == 0.0 && fabs(x) == INFINITY) ? 0.0 : k * x;  /* the zero-coefficient rule */
            s->loss[i] = has_w ? (t + kx) * s->w[i] : t + kx;
        }
        if (want_grad) {
            double j = positive ? -cp : cn;
            double g = (k + j * e) / (1.0 + e);
            s->grad[i] = g * s->w[i] * s->u[i] * scale;
        }
    }
    if (!want_loss) return 0.0;
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int m = 0; m < 8; m++) acc[m] += s->loss[i + m];
    double total = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < count; i++) total += s->loss[i];
    return total;
}

#define CHUNK_FLAGS(p, w, precise)                                                                  \
    (want_loss && want_grad ? chunk_math(s, count, p, w, 1, 1, scale, precise)                         \
     : want_loss            ? chunk_math(s, count, p, w, 1, 0, scale, precise)                         \
                            : chunk_math(s, count, p, w, 0, 1, scale, precise))

#define CHUNK_ROUTE(name, precise)                                                                    \
    static double name(Scratch *s, Py_ssize_t count, int has_p, int has_w, int want_loss, int want_grad, \
                       double scale) {                                                                \
        if (has_p) return has_w ? CHUNK_FLAGS(1, 1, precise) : CHUNK_FLAGS(1, 0, precise);            \
        return has_w ? CHUNK_FLAGS(0, 1, precise) : CHUNK_FLAGS(0, 0, precise);                        \
    }

VECTOR_CLONES
CHUNK_ROUTE(chunk_fast, 0)
CHUNK_ROUTE(chunk_precise, 1)

/* Returns the loss summed over [start, stop) when want_sum (block by block; with more than one
 * block, callers wanting bits independent of the split use the per-block sums instead). */
static double run(Scratch *s, const Operand *xo, const Operand *ops, Output *loss_out, Output *grad_out, int want_sum,
                  double *sums, Py_ssize_t start, Py_ssize_t stop, double scale, int precise) {
    int has_y = ops[0].present, has_w = ops[1].present, has_p = ops[2].present, has_u = ops[3].present;
    int want_loss = loss_out->data != NULL || want_sum;
    double total = 0.0;
    int want_grad = grad_out->data != NULL;
    (void)has_y;
    int first = 1;
    for (Py_ssize_t block = start; block < stop; block += BLOCK) {
        Py_ssize_t block_end = block + BLOCK < stop ? block + BLOCK : stop;
        double sum = 0.0, compensation = 0.0;  /* Neumaier: chunk sums, in a fixed order */
        for (Py_ssize_t c = block; c < block_end; c += CHUNK) {
            Py_ssize_t count = c + CHUNK < block_end ? CHUNK : block_end - c;
            gather(xo, c, count, s->x);
            gather(&ops[0], c, count, s->y);
            if (has_w || first) gather(&ops[1], c, count, s->w);  /* absent: 1.0, gathered once */
            if (has_p) gather(&ops[2], c, count, s->p);
            if (has_u || first) gather(&ops[3], c, count, s->u);
            first = 0;
            double part = precise ? chunk_precise(s, count, has_p, has_w, want_loss, want_grad, scale)
                                  : chunk_fast(s, count, has_p, has_w, want_loss, want_grad, scale);
            if (loss_out->data) store(loss_out, c, count, s->loss);
            if (want_grad) store(grad_out, c, count, s->grad);
            double t = sum + part;
            compensation += fabs(sum) >= fabs(part) ? (sum - t) + part : (part - t) + sum;
            sum = t;
        }
        double block_sum = isfinite(sum) ? sum + compensation : sum;  /* inf - inf in the compensation */
        if (sums) sums[block / BLOCK] = block_sum;
        total += block_sum;
    }
    return total;
}

/* The pass split over the host framework's OpenMP team (torch's): the framework's own worker
 * threads, which spin-wait after each of its ops, take parts of the range at once, where a
 * thread of ours would have to share a core with one of them. GOMP_parallel is the libgomp ABI
 * behind "#pragma omp parallel" (Intel's and LLVM's runtimes export it too); its address comes
 * from the process (set_host_parallel), so this module links no OpenMP runtime of its own. */
typedef void (*HostParallel)(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
typedef int (*HostMaxThreads)(void);
static HostParallel host_parallel = NULL;
static HostMaxThreads host_max_threads = NULL;  /* omp_get_max_threads: the team's size, for threads=-1 */

#if defined(__GNUC__)
#define HOST_TEAMS 1
#define NEXT_PART(job) __atomic_fetch_add(&(job)->next_part, 1, __ATOMIC_RELAXED)
#else /* no atomics here: set_host_parallel refuses, and the team is never used */
#define HOST_TEAMS 0
#define NEXT_PART(job) ((job)->next_part++)
#endif

typedef struct {
    Scratch *scratch;  /* one per part */
    const Operand *xo, *ops;
    Output *loss_out, *grad_out;
    double *sums, scale;
    Py_ssize_t start, stop, blocks;
    int parts, precise, next_part;
} Job;

/* Each team thread takes parts until none is left: correct for any team size the runtime gives. */
static void job_worker(void *data) {
    Job *job = data;
    for (;;) {
        int part = NEXT_PART(job);
        if (part >= job->parts) return;
        Py_ssize_t lo = job->start + job->blocks * part / job->parts * BLOCK;
        Py_ssize_t hi = job->start + job->blocks * (part + 1) / job->parts * BLOCK;
        if (hi > job->stop) hi = job->stop;
        if (lo < hi)
            run(&job->scratch[part], job->xo, job->ops, job->loss_out, job->grad_out, job->sums != NULL, job->sums, lo,
                hi, job->scale, job->precise);
    }
}

PyDoc_STRVAR(set_host_parallel_doc,
"set_host_parallel(parallel, max_threads)\n--\n\n"
"The addresses of the process's GOMP_parallel and omp_get_max_threads (an OpenMP runtime\n"
"already loaded, e.g. torch's), used by logits(..., threads); 0, 0 forgets them. Returns\n"
"whether a team is set.");

static PyObject *set_host_parallel(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *parallel_obj, *max_threads_obj;
    if (!PyArg_ParseTuple(args, "OO", &parallel_obj, &max_threads_obj)) return NULL;
    void *parallel = PyLong_AsVoidPtr(parallel_obj);
    if (parallel == NULL && PyErr_Occurred()) return NULL;
    void *max_threads = PyLong_AsVoidPtr(max_threads_obj);
    if (max_threads == NULL && PyErr_Occurred()) return NULL;
    int usable = HOST_TEAMS && parallel != NULL && max_threads != NULL;
    host_parallel = usable ? (HostParallel)parallel : NULL;
    host_max_threads = usable ? (HostMaxThreads)max_threads : NULL;
    return PyBool_FromLong(usable);
}

static int float_buffer(PyObject *obj, Py_buffer *view, int writable, int *is_double) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    if ((strcmp(f, "d") == 0 && view->itemsize == 8) || (strcmp(f, "f") == 0 && view->itemsize == 4)) {
        *is_double = *f == 'd';
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "expected a float32 or float64 buffer, got format '%s'", view->format);
    PyBuffer_Release(view);
    return -1;
}

/* A float32/float64 buffer, or a raw one: (address, length, is_double), memory its caller keeps
 * alive and C-contiguous for the call (torch tensors have no buffer protocol; the torch engine
 * hands their data_ptr() and skips building NumPy views). has_view: a view to release. */
static int float_data(PyObject *obj, Py_buffer *view, int *has_view, int writable, char **data, Py_ssize_t *length,
                      int *is_double) {
    *has_view = 0;
    if (PyTuple_CheckExact(obj) && PyTuple_Size(obj) == 3) {
        void *address = PyLong_AsVoidPtr(PyTuple_GetItem(obj, 0));
        Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GetItem(obj, 1));
        int wide = PyObject_IsTrue(PyTuple_GetItem(obj, 2));
        if (PyErr_Occurred() || wide < 0) return -1;
        if (address == NULL || n < 0) {
            PyErr_SetString(PyExc_ValueError, "a raw buffer needs a non-null address and a length >= 0");
            return -1;
        }
        *data = address;
        *length = n;
        *is_double = wide;
        return 0;
    }
    if (float_buffer(obj, view, writable, is_double) < 0) return -1;
    *has_view = 1;
    *data = view->buf;
    *length = view->len / view->itemsize;
    return 0;
}

/* None, a number, or (buffer, repeat) */
static int parse_operand(PyObject *obj, Operand *op) {
    memset(op, 0, sizeof(*op));
    op->repeat = 1;
    op->constant = 1.0;  /* an absent weight or upstream gathers as 1 */
    if (obj == Py_None) return 0;
    op->present = 1;
    if (PyFloat_Check(obj) || PyLong_Check(obj)) {
        op->constant = PyFloat_AsDouble(obj);
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *buffer;
    if (!PyArg_ParseTuple(obj, "On", &buffer, &op->repeat)) return -1;
    char *data;
    if (float_data(buffer, &op->view, &op->has_view, 0, &data, &op->length, &op->is_double) < 0) return -1;
    op->data = data;
    if (op->length < 1 || op->repeat < 1) {
        PyErr_SetString(PyExc_ValueError, "an operand buffer is empty or its repeat is below 1");
        return -1;
    }
    return 0;
}

static int parse_output(PyObject *obj, Output *out, Py_ssize_t size) {
    memset(out, 0, sizeof(*out));
    if (obj == Py_None) return 0;
    Py_ssize_t length;
    if (float_data(obj, &out->view, &out->has_view, 1, &out->data, &length, &out->is_double) < 0) return -1;
    if (length != size) {
        PyErr_SetString(PyExc_ValueError, "an output buffer's length differs from x's");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(logits_doc,
"logits(x, y, weight, pos_weight, upstream, loss_out, grad_out, sums, start, stop, scale, precise)\n--\n\n"
"The fused BCE-with-logits pass over x[start:stop] (a C-contiguous float32/float64 buffer).\n"
"Any buffer may also be raw: (address, length, is_double), memory the caller keeps alive.\n"
"Operands: None, a number, or (buffer, repeat). Writes the loss into loss_out and d loss/d x\n"
"times upstream and scale into grad_out (either may be None). sums: None (no sum), True\n"
"(return the loss summed over the range), or a float64 buffer with one element per BLOCK\n"
"elements of x, into which each block's sum is written as well. start is a multiple of\n"
"BLOCK. precise: libm's exp/log1p instead of the vectorised polynomials. threads (optional,\n"
"default 1): above 1, the range is cut into that many runs of whole blocks, computed by the\n"
"OpenMP team of set_host_parallel (sums must then be a buffer or None); -1: as many as the\n"
"team has threads. Without a team set, one thread computes.");

static PyObject *logits(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *x_obj, *operand_objs[4], *loss_obj, *grad_obj, *sums_obj;
    Py_ssize_t start, stop;
    double scale;
    int precise, threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnndp|i", &x_obj, &operand_objs[0], &operand_objs[1], &operand_objs[2],
                          &operand_objs[3], &loss_obj, &grad_obj, &sums_obj, &start, &stop, &scale, &precise, &threads))
        return NULL;
    Operand xo, ops[4];
    Output loss_out, grad_out;
    Py_buffer sums_view;
    int has_sums = 0, ok = 0, sums_double = 0;
    memset(&xo, 0, sizeof(xo));
    memset(ops, 0, sizeof(ops));
    memset(&loss_out, 0, sizeof(loss_out));
    memset(&grad_out, 0, sizeof(grad_out));
    char *x_data;
    if (float_data(x_obj, &xo.view, &xo.has_view, 0, &x_data, &xo.length, &xo.is_double) < 0) goto done;
    xo.data = x_data;
    xo.present = 1;
    xo.repeat = 1;
    Py_ssize_t size = xo.length;
    for (int i = 0; i < 4; i++)
        if (parse_operand(operand_objs[i], &ops[i]) < 0) goto done;
    if (!ops[0].present) {
        PyErr_SetString(PyExc_ValueError, "the target is required");
        goto done;
    }
    if (parse_output(loss_obj, &loss_out, size) < 0 || parse_output(grad_obj, &grad_out, size) < 0) goto done;
    int want_sum = sums_obj != Py_None;
    if (want_sum && sums_obj != Py_True) {
        if (float_buffer(sums_obj, &sums_view, 1, &sums_double) < 0) goto done;
        has_sums = 1;
        if (!sums_double || sums_view.len / 8 < (size + BLOCK - 1) / BLOCK) {
            PyErr_SetString(PyExc_ValueError, "sums must be float64 with one element per block");
            goto done;
        }
    }
    if (start < 0 || stop > size || start > stop || start % BLOCK != 0) {
        PyErr_SetString(PyExc_ValueError, "start and stop must satisfy 0 <= start <= stop <= len(x), start % BLOCK == 0");
        goto done;
    }
    Py_ssize_t blocks = (stop - start + BLOCK - 1) / BLOCK;
    int parts = host_parallel == NULL ? 1 : threads == -1 ? host_max_threads() : threads;
    if (parts > blocks) parts = (int)blocks;
    if (parts < 1) parts = 1;
    if (parts > 1 && want_sum && !has_sums) {
        PyErr_SetString(PyExc_ValueError, "threads > 1 needs a sums buffer (one element per block) or None");
        goto done;
    }
    double total = 0.0;
    Scratch *scratch = PyMem_Malloc(parts * sizeof(Scratch));
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    double *sums_buffer = has_sums ? (double *)sums_view.buf : NULL;
    if (parts > 1) {
        Job job = {scratch, &xo, ops, &loss_out, &grad_out, sums_buffer, scale, start, stop, blocks, parts, precise, 0};
        Py_BEGIN_ALLOW_THREADS
        host_parallel(job_worker, &job, (unsigned)parts, 0);
        Py_END_ALLOW_THREADS
        if (want_sum)  /* the block sums in block order, as run() adds them on one thread */
            for (Py_ssize_t block = start / BLOCK; block < start / BLOCK + blocks; block++) total += sums_buffer[block];
    } else {
        Py_BEGIN_ALLOW_THREADS
        total = run(scratch, &xo, ops, &loss_out, &grad_out, want_sum, sums_buffer, start, stop, scale, precise);
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(scratch);
    ok = 1;
done:
    if (xo.has_view) PyBuffer_Release(&xo.view);
    for (int i = 0; i < 4; i++)
        if (ops[i].has_view) PyBuffer_Release(&ops[i].view);
    if (loss_out.has_view) PyBuffer_Release(&loss_out.view);
    if (grad_out.has_view) PyBuffer_Release(&grad_out.view);
    if (has_sums) PyBuffer_Release(&sums_view);
    if (!ok) return NULL;
    if (want_sum) return PyFloat_FromDouble(total);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"logits", logits, METH_VARARGS, logits_doc},
    {"set_host_parallel", set_host_parallel, METH_VARARGS, set_host_parallel_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fused",
    .m_doc = "The fused CPU pass of BCE-with-logits (see numpy_fast).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fused(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "BLOCK", BLOCK) < 0 || PyModule_AddIntConstant(m, "CHUNK", CHUNK) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
