/* The CPU pass of every bce_compat engine: one fused loop over the inputs that writes the
 * element-wise loss, its per-block sums and d loss / d input, for the three kinds of the
 * canonical problem (logits, probabilities, torchvision's focal loss) with their options.
 * The Python side is bce_compat.backends.cpu_pass; the math is in _cpu_math.h.
 *
 * THE TRUST BOUNDARY. Every array reaches C as an object C verifies itself, never as an address
 * or a length computed in Python:
 *   - an object with the buffer protocol (a NumPy array): shape, strides, format and memory come
 *     from its exporter;
 *   - an object whose type has the DLPack C exchange API (__dlpack_c_exchange_api__, torch >= 2.10
 *     and Paddle >= 3.2 tensors): its dltensor_from_py_object_no_sync fills a DLTensor from the
 *     framework's own C++ tensor (shape, strides, dtype, device, data): a Python subclass that
 *     overrides .shape cannot change what C reads;
 *   - a DLPack capsule ("dltensor" / "dltensor_versioned"), for frameworks without that API;
 *   - any of these as (object, capacity): capacity is the number of bytes from the data pointer
 *     that the framework's storage holds (its allocation, read from the storage object); C
 *     refuses a view that reaches past it (a freed or shrunk storage).
 * C checks: device CPU, dtype float16/bfloat16/float32/float64 (one lane), a non-null data
 * pointer when there are elements, strides that are whole elements, operands that broadcast to
 * the input's shape without enlarging it, outputs of exactly the input's shape, and for
 * capacities the whole extent of the view. What DLPack cannot carry is the Python side's to
 * resolve before the call: torch's negative and conjugate view bits (cpu_pass does).
 *
 * ITERATION. The logical elements of x are visited in the order of x's memory (dimensions sorted
 * by x's strides), each operand through its own collapsed strides (a full array, a tiling such as
 * pos_weight[C] over [B, C], a per-row weight[B, 1], a transposed or strided view all read in
 * place; a broadcast is a stride of 0). Elements go in blocks of BLOCK (the unit of a reduction's
 * partial sum: sums never depend on how many threads ran) and chunks of CHUNK (gathered into L1
 * scratch, converted to the compute type, computed, then stored in the output dtype).
 *
 * ROUTES (by result dtype):
 *   - HALF (float16/bfloat16 results): everything in float32, rounded once to the result dtype.
 *   - SINGLE (float32 results): double lanes with an exp and log1p of float32-grade accuracy
 *     (1.2e-10 relative), rounded once. See the accuracy note at logits_single_loss.
 *   - DOUBLE (float64 results): everything in double.
 * The gradient is written in grad_out's dtype: float32 or float64, rounded once from the route's
 * arithmetic, or float16/bfloat16, that float32 value rounded once more (the bits a float32
 * grad_out converted afterwards gives). An engine hands a half gradient over as it is where the
 * upstream gradient is exactly 1; else it recomputes in float32 and multiplies by the upstream.
 */
/* setup.py builds this file on CPython 3.11's stable ABI (Py_LIMITED_API): it uses that API only. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_cpu_f16c.h"
#include "_cpu_math.h"
#include "_cpu_team.h"

#define CHUNK 512
#define BLOCK 2048
#define MAXDIM 16
typedef char chunks_start_at_multiples_of_chunk[BLOCK % CHUNK == 0 ? 1 : -1]; /* same_every_chunk relies on it */
#define PREFETCH_BYTES (32 * 1024 * 1024) /* x's and y's bytes from which the pass prefetches (see prefetch) */

#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif

/* The math loops' arrays never overlap (outputs are scratch); saying so spares the vectoriser
 * runtime overlap checks, of which it makes only a few (it gives up on a loop with more). */
#if defined(_MSC_VER)
#define RESTRICT __restrict
#else
#define RESTRICT restrict
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

enum { DT_F16, DT_BF16, DT_F32, DT_F64 };
static const int ITEMSIZE[4] = {2, 2, 4, 8};
enum { KIND_LOGITS, KIND_PROBS, KIND_FOCAL };
enum { ROUTE_HALF, ROUTE_SINGLE, ROUTE_DOUBLE };
enum { STAT_SUM, STAT_KEPT, STAT_BAD_X, STAT_BAD_Y, NSTATS };
enum { TEAM_NONE, TEAM_HOST, TEAM_OWN }; /* run's team argument: one thread, the host's, ours */

/* ---------------------------------------------------------------------------------------------
 * DLPack, as much of it as this file reads (the struct layouts are DLPack's ABI, version 1.x).
 */
typedef struct { uint32_t major, minor; } DLPackVersion;
typedef struct { int32_t device_type, device_id; } DLDevice;
typedef struct { uint8_t code, bits; uint16_t lanes; } DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape, *strides;
    uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *);
} DLManagedTensor;
typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;
typedef struct DLPackExchangeAPIHeader {
    DLPackVersion version;
    struct DLPackExchangeAPIHeader *prev_api;
} DLPackExchangeAPIHeader;
typedef struct {
    DLPackExchangeAPIHeader header;
    void *managed_tensor_allocator;
    void *managed_tensor_from_py_object_no_sync;
    void *managed_tensor_to_py_object_no_sync;
    int (*dltensor_from_py_object_no_sync)(void *py_object, DLTensor *out);
    void *current_work_stream;
} DLPackExchangeAPI;
enum { kDLCPU = 1, kDLCUDAHost = 3, kDLROCMHost = 11, kDLFloat = 2, kDLBfloat = 4 };

/* ---------------------------------------------------------------------------------------------
 * Verified views of arrays.
 */
typedef struct {
    char *data;           /* element [0, ..., 0] */
    int dtype, ndim;
    Py_ssize_t shape[MAXDIM], strides[MAXDIM]; /* strides in elements */
    Py_buffer buffer;     /* released by release_view when has_buffer */
    int has_buffer;
} View;

static void release_view(View *v) {
    if (v->has_buffer) PyBuffer_Release(&v->buffer);
    v->has_buffer = 0;
}

/* The exchange API of a type, looked up once per type (a type may define it or not). */
#define API_CACHE 16
static PyObject *api_types[API_CACHE];
static const DLPackExchangeAPI *api_tables[API_CACHE];
static int api_count = 0;

static const DLPackExchangeAPI *exchange_api(PyTypeObject *type) {
    for (int i = 0; i < api_count; i++)
        if (api_types[i] == (PyObject *)type) return api_tables[i];
    const DLPackExchangeAPI *api = NULL;
    PyObject *capsule = PyObject_GetAttrString((PyObject *)type, "__dlpack_c_exchange_api__");
    if (capsule == NULL) {
        PyErr_Clear();
    } else {
        if (PyCapsule_IsValid(capsule, "dlpack_exchange_api")) {
            const DLPackExchangeAPI *table = PyCapsule_GetPointer(capsule, "dlpack_exchange_api");
            if (table && table->header.version.major == 1 && table->dltensor_from_py_object_no_sync) api = table;
        }
        Py_DECREF(capsule);
    }
    if (api_count < API_CACHE) { /* a type is kept alive while cached, so its address is never reused */
        Py_INCREF((PyObject *)type);
        api_types[api_count] = (PyObject *)type;
        api_tables[api_count] = api;
        api_count++;
    }
    return api;
}

static int fail(PyObject *kind, const char *what, const char *message) {
    PyErr_Format(kind, "%s: %s", what, message);
    return -1;
}

/* shape, strides (elements) and dtype of a DLTensor, checked */
static int view_from_dltensor(const DLTensor *t, View *v, const char *what) {
    /* CPU memory: plain, or pinned for a GPU (torch's pin_memory), which the CPU reads alike */
    if (t->device.device_type != kDLCPU && t->device.device_type != kDLCUDAHost && t->device.device_type != kDLROCMHost)
        return fail(PyExc_ValueError, what, "the array is not in CPU memory");
    if (t->dtype.lanes != 1) return fail(PyExc_TypeError, what, "vector dtypes are not supported");
    if (t->dtype.code == kDLFloat && t->dtype.bits == 16) v->dtype = DT_F16;
    else if (t->dtype.code == kDLBfloat && t->dtype.bits == 16) v->dtype = DT_BF16;
    else if (t->dtype.code == kDLFloat && t->dtype.bits == 32) v->dtype = DT_F32;
    else if (t->dtype.code == kDLFloat && t->dtype.bits == 64) v->dtype = DT_F64;
    else return fail(PyExc_TypeError, what, "the dtype is not float16, bfloat16, float32 or float64");
    if (t->ndim < 0 || t->ndim > MAXDIM) return fail(PyExc_ValueError, what, "too many dimensions");
    v->ndim = t->ndim;
    Py_ssize_t compact = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] < 0) return fail(PyExc_ValueError, what, "a negative dimension");
        v->shape[d] = (Py_ssize_t)t->shape[d];
        v->strides[d] = t->strides ? (Py_ssize_t)t->strides[d] : compact;
        compact *= v->shape[d] ? v->shape[d] : 1;
    }
    if (t->byte_offset % (uint64_t)ITEMSIZE[v->dtype]) return fail(PyExc_ValueError, what, "a misaligned byte offset");
    v->data = (char *)t->data + t->byte_offset;
    return 0;
}

static int view_from_buffer(PyObject *obj, View *v, int writable, const char *what) {
    if (PyObject_GetBuffer(obj, &v->buffer, PyBUF_RECORDS_RO | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    v->has_buffer = 1;
    const char *f = v->buffer.format ? v->buffer.format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    Py_ssize_t item = v->buffer.itemsize;
    if (strcmp(f, "e") == 0 && item == 2) v->dtype = DT_F16;
    else if (strcmp(f, "f") == 0 && item == 4) v->dtype = DT_F32;
    else if (strcmp(f, "d") == 0 && item == 8) v->dtype = DT_F64;
    else return fail(PyExc_TypeError, what, "the buffer is not float16, float32 or float64");
    if (v->buffer.ndim > MAXDIM) return fail(PyExc_ValueError, what, "too many dimensions");
    v->ndim = v->buffer.ndim;
    for (int d = 0; d < v->ndim; d++) {
        v->shape[d] = v->buffer.shape[d];
        Py_ssize_t s = v->buffer.strides[d];
        if (s % item) return fail(PyExc_ValueError, what, "strides that are not whole elements");
        v->strides[d] = s / item;
    }
    v->data = v->buffer.buf;
    return 0;
}

/* Elements, and the span [lo, hi) of element offsets the view touches (0, 0 when empty). */
static int view_extent(const View *v, Py_ssize_t *count, Py_ssize_t *lo, Py_ssize_t *hi, const char *what) {
    Py_ssize_t n = 1, low = 0, high = 0;
    for (int d = 0; d < v->ndim; d++) {
        if (v->shape[d] == 0) { *count = 0; *lo = *hi = 0; return 0; }
        if (n > PY_SSIZE_T_MAX / v->shape[d]) return fail(PyExc_OverflowError, what, "too many elements");
        n *= v->shape[d];
        Py_ssize_t stride = v->strides[d], span = v->shape[d] - 1;
        if (span && (stride > PY_SSIZE_T_MAX / span || stride < -(PY_SSIZE_T_MAX / span)))
            return fail(PyExc_OverflowError, what, "strides too large to address");
        Py_ssize_t reach = span * stride;
        if (reach < 0) low += reach; else high += reach;
    }
    *count = n;
    *lo = low;
    *hi = high + 1;
    return 0;
}

/* obj -> a verified view. capacity < 0: none given. */
static int acquire(PyObject *obj, View *v, int writable, const char *what) {
    memset(v, 0, sizeof(*v));
    Py_ssize_t capacity = -1;
    if (PyTuple_Check(obj)) {
        if (PyTuple_Size(obj) != 2) return fail(PyExc_TypeError, what, "expected (array, capacity in bytes)");
        capacity = PyLong_AsSsize_t(PyTuple_GetItem(obj, 1));
        if (capacity == -1 && PyErr_Occurred()) return -1;
        if (capacity < 0) return fail(PyExc_ValueError, what, "a negative capacity");
        obj = PyTuple_GetItem(obj, 0);
    }
    if (PyCapsule_IsValid(obj, "dltensor")) {
        DLManagedTensor *m = PyCapsule_GetPointer(obj, "dltensor");
        if (!m || view_from_dltensor(&m->dl_tensor, v, what) < 0) return -1;
    } else if (PyCapsule_IsValid(obj, "dltensor_versioned")) {
        DLManagedTensorVersioned *m = PyCapsule_GetPointer(obj, "dltensor_versioned");
        if (!m) return -1;
        if (m->version.major != 1) return fail(PyExc_TypeError, what, "an unknown DLPack major version");
        if (writable && (m->flags & 1)) return fail(PyExc_ValueError, what, "a read-only output");
        if (view_from_dltensor(&m->dl_tensor, v, what) < 0) return -1;
    } else {
        const DLPackExchangeAPI *api = exchange_api(Py_TYPE(obj));
        if (api) {
            DLTensor t;
            if (api->dltensor_from_py_object_no_sync(obj, &t) != 0) return -1;
            if (view_from_dltensor(&t, v, what) < 0) return -1;
        } else if (PyObject_CheckBuffer(obj)) {
            if (view_from_buffer(obj, v, writable, what) < 0) return -1;
        } else {
            return fail(PyExc_TypeError, what, "expected an array with the buffer protocol or DLPack");
        }
    }
    Py_ssize_t count, lo, hi;
    if (view_extent(v, &count, &lo, &hi, what) < 0) return -1;
    if (count > 0 && v->data == NULL) return fail(PyExc_ValueError, what, "its memory is not allocated (a freed storage?)");
    if (capacity >= 0 && count > 0 && (lo < 0 || hi > capacity / ITEMSIZE[v->dtype]))
        return fail(PyExc_ValueError, what, "the view reaches past the memory its storage holds (a freed or shrunk storage?)");
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Walkers: one operand or output over the logical elements in iteration order.
 */
typedef struct {
    const char *base; /* NULL: a constant (or absent) */
    int dtype, nd;
    Py_ssize_t dims[MAXDIM], steps[MAXDIM]; /* collapsed, outer to inner; steps in elements */
    double constant;
} Walker;

typedef struct {
    int ndim;                   /* iteration dims (size-1 dims dropped) */
    Py_ssize_t shape[MAXDIM];   /* x's dims in iteration order */
    int source[MAXDIM];         /* x's dim behind each iteration dim */
    Py_ssize_t size;
} Order;

/* x's dims sorted by decreasing |stride| (stable), size-1 dims dropped: x's memory order. */
static void make_order(const View *x, Order *o) {
    o->ndim = 0;
    o->size = 1;
    for (int d = 0; d < x->ndim; d++) {
        o->size *= x->shape[d];
        if (x->shape[d] != 1) o->source[o->ndim++] = d;
    }
    for (int i = 1; i < o->ndim; i++) { /* insertion sort: a handful of dims */
        int d = o->source[i], j = i;
        Py_ssize_t s = x->strides[d] < 0 ? -x->strides[d] : x->strides[d];
        while (j > 0) {
            Py_ssize_t t = x->strides[o->source[j - 1]];
            if ((t < 0 ? -t : t) >= s) break;
            o->source[j] = o->source[j - 1];
            j--;
        }
        o->source[j] = d;
    }
    for (int i = 0; i < o->ndim; i++) o->shape[i] = x->shape[o->source[i]];
}

/* A view laid over the iteration order: it must broadcast to x's shape (exact, when is_output). */
static int make_walker(const View *v, const View *x, const Order *o, int is_output, Walker *w, const char *what) {
    memset(w, 0, sizeof(*w));
    int offset = x->ndim - v->ndim;
    if (offset < 0 || (is_output && offset != 0)) return fail(PyExc_ValueError, what, "a shape that does not fit the input's");
    for (int d = 0; d < v->ndim; d++) {
        Py_ssize_t n = v->shape[d], m = x->shape[d + offset];
        if (n != m && (is_output || n != 1)) return fail(PyExc_ValueError, what, "a shape that does not fit the input's");
    }
    Py_ssize_t dims[MAXDIM], steps[MAXDIM];
    for (int i = 0; i < o->ndim; i++) {
        int d = o->source[i] - offset;
        dims[i] = o->shape[i];
        steps[i] = (d < 0 || v->shape[d] == 1) ? 0 : v->strides[d];
    }
    int nd = 0; /* collapse: merge an outer dim into the inner one where their steps chain */
    for (int i = 0; i < o->ndim; i++) {
        if (nd > 0 && w->steps[nd - 1] == steps[i] * dims[i]) {
            w->dims[nd - 1] *= dims[i];
            w->steps[nd - 1] = steps[i];
        } else {
            w->dims[nd] = dims[i];
            w->steps[nd] = steps[i];
            nd++;
        }
    }
    if (nd == 1 && w->steps[0] == 0) nd = 0; /* one element, repeated */
    w->nd = nd;
    w->base = v->data;
    w->dtype = v->dtype;
    return 0;
}

static void constant_walker(Walker *w, double value) {
    memset(w, 0, sizeof(*w));
    w->constant = value;
}

/* The element offset of logical position pos, and its index in each collapsed dim. */
static Py_ssize_t locate(const Walker *w, Py_ssize_t pos, Py_ssize_t *index) {
    Py_ssize_t offset = 0;
    for (int k = w->nd - 1; k >= 0; k--) {
        index[k] = pos % w->dims[k];
        pos /= w->dims[k];
        offset += index[k] * w->steps[k];
    }
    return offset;
}

/* Advance index/offset by `run` along the innermost dim, carrying into the outer ones. */
static Py_ssize_t advance(const Walker *w, Py_ssize_t *index, Py_ssize_t offset, Py_ssize_t run) {
    int k = w->nd - 1;
    index[k] += run;
    offset += run * w->steps[k];
    while (k > 0 && index[k] == w->dims[k]) {
        offset -= index[k] * w->steps[k];
        index[k] = 0;
        k--;
        index[k]++;
        offset += w->steps[k];
    }
    return offset;
}

#define LOAD_LOOP(T, CONVERT)                                                                      \
    do {                                                                                           \
        const T *src = (const T *)w->base + offset;                                                \
        if (step == 1) for (Py_ssize_t m = 0; m < run; m++) dst[m] = CONVERT(src[m]);              \
        else if (step == 0) { T v0 = src[0]; for (Py_ssize_t m = 0; m < run; m++) dst[m] = CONVERT(v0); } \
        else for (Py_ssize_t m = 0; m < run; m++) dst[m] = CONVERT(src[m * step]);                 \
    } while (0)

#define AS_IS(v) (v)
#define F16_IN(v) bce_f16_to_f32(v)
#define BF16_IN(v) bce_bf16_to_f32(v)

/* Gather `count` elements from logical position pos, converted to float (F) or double (D);
 * F16_RUN(src, dst, n) converts a contiguous float16 run at once where it can (_cpu_f16c.h). */
#define DEFINE_GATHER(NAME, T, F16_RUN)                                                           \
    VECTOR_CLONES static void NAME(const Walker *w, Py_ssize_t pos, Py_ssize_t count, T *dst) {   \
        if (!w->base) {                                                                            \
            T c = (T)w->constant;                                                                  \
            for (Py_ssize_t m = 0; m < count; m++) dst[m] = c;                                     \
            return;                                                                                \
        }                                                                                          \
        Py_ssize_t index[MAXDIM], offset = 0;                                                      \
        if (w->nd == 0) {                                                                          \
            T c;                                                                                   \
            switch (w->dtype) {                                                                    \
            case DT_F16: c = (T)bce_f16_to_f32(*(const uint16_t *)w->base); break;                \
            case DT_BF16: c = (T)bce_bf16_to_f32(*(const uint16_t *)w->base); break;              \
            case DT_F32: c = (T) * (const float *)w->base; break;                                  \
            default: c = (T) * (const double *)w->base; break;                                     \
            }                                                                                      \
            for (Py_ssize_t m = 0; m < count; m++) dst[m] = c;                                     \
            return;                                                                                \
        }                                                                                          \
        offset = locate(w, pos, index);                                                            \
        Py_ssize_t inner = w->dims[w->nd - 1], step = w->steps[w->nd - 1];                         \
        while (count > 0) {                                                                        \
            Py_ssize_t run = inner - index[w->nd - 1];                                             \
            if (run > count) run = count;                                                          \
            switch (w->dtype) {                                                                    \
            case DT_F16:                                                                           \
                if (step == 1 && F16_RUN((const uint16_t *)w->base + offset, dst, run)) break;     \
                LOAD_LOOP(uint16_t, F16_IN);                                                       \
                break;                                                                             \
            case DT_BF16: LOAD_LOOP(uint16_t, BF16_IN); break;                                     \
            case DT_F32: LOAD_LOOP(float, AS_IS); break;                                           \
            default: LOAD_LOOP(double, AS_IS); break;                                              \
            }                                                                                      \
            dst += run;                                                                            \
            count -= run;                                                                          \
            if (count > 0) offset = advance(w, index, offset, run);                                \
        }                                                                                          \
    }

/* float16 to double, and double to float16, have no F16C route: value by value */
static inline int no_f16_run(const uint16_t *src, double *dst, Py_ssize_t n) {
    (void)src, (void)dst, (void)n;
    return 0;
}

DEFINE_GATHER(gather_f, float, bce_f16_run_to_f32)
DEFINE_GATHER(gather_d, double, no_f16_run)

/* The walker's memory itself when it holds these elements contiguously in type T, else NULL. */
/* Whether the walker's elements lie one after another in memory, in iteration order. */
static int contiguous(const Walker *w) { return w->base && w->nd == 1 && w->steps[0] == 1; }

static const void *direct(const Walker *w, Py_ssize_t pos, Py_ssize_t count, int dtype) {
    (void)count;
    if (!contiguous(w) || w->dtype != dtype) return NULL;
    return w->base + pos * ITEMSIZE[dtype];
}

static const float *fetch_f(const Walker *w, Py_ssize_t pos, Py_ssize_t count, float *scratch) {
    const float *p = direct(w, pos, count, DT_F32);
    if (p) return p;
    gather_f(w, pos, count, scratch);
    return scratch;
}

static const double *fetch_d(const Walker *w, Py_ssize_t pos, Py_ssize_t count, double *scratch) {
    const double *p = direct(w, pos, count, DT_F64);
    if (p) return p;
    gather_d(w, pos, count, scratch);
    return scratch;
}

#define STORE_LOOP(T, CONVERT)                                                                     \
    do {                                                                                           \
        T *out = (T *)w->base + offset;                                                            \
        if (step == 1) for (Py_ssize_t m = 0; m < run; m++) out[m] = CONVERT(src[m]);              \
        else for (Py_ssize_t m = 0; m < run; m++) out[m * step] = CONVERT(src[m]);                 \
    } while (0)

#define F16_OUT(v) bce_f32_to_f16((float)(v))
#define BF16_OUT(v) bce_f32_to_bf16((float)(v))
#define TO_FLOAT(v) ((float)(v))
#define TO_DOUBLE(v) ((double)(v))

/* Store `count` values at logical position pos, rounded once to the output's dtype; a double
 * source to a half dtype goes through float32 (a half loss comes from the float32 route; a half
 * gradient from the double routes is the float32 gradient rounded once more). */
#define DEFINE_SCATTER(NAME, T, F16_RUN)                                                          \
    VECTOR_CLONES static void NAME(const Walker *w, Py_ssize_t pos, Py_ssize_t count, const T *src) { \
        Py_ssize_t index[MAXDIM];                                                                  \
        Py_ssize_t offset = locate(w, pos, index);                                                 \
        Py_ssize_t inner = w->nd ? w->dims[w->nd - 1] : 1, step = w->nd ? w->steps[w->nd - 1] : 1; \
        while (count > 0) {                                                                        \
            Py_ssize_t run = w->nd ? inner - index[w->nd - 1] : count;                             \
            if (run > count) run = count;                                                          \
            switch (w->dtype) {                                                                    \
            case DT_F16:                                                                           \
                if (step == 1 && F16_RUN(src, (uint16_t *)w->base + offset, run)) break;           \
                STORE_LOOP(uint16_t, F16_OUT);                                                     \
                break;                                                                             \
            case DT_BF16: STORE_LOOP(uint16_t, BF16_OUT); break;                                   \
            case DT_F32: STORE_LOOP(float, TO_FLOAT); break;                                       \
            default: STORE_LOOP(double, TO_DOUBLE); break;                                         \
            }                                                                                      \
            src += run;                                                                            \
            count -= run;                                                                          \
            if (count > 0) offset = advance(w, index, offset, run);                                \
        }                                                                                          \
    }

static inline int no_f16_store_run(const double *src, uint16_t *dst, Py_ssize_t n) {
    (void)src, (void)dst, (void)n;
    return 0;
}

DEFINE_SCATTER(scatter_f, float, bce_f32_run_to_f16)
DEFINE_SCATTER(scatter_d, double, no_f16_store_run)

/* ---------------------------------------------------------------------------------------------
 * The math of one chunk. Coefficients: cp = p*y+ (the positive term's), cn = y- (the negative
 * term's), with y+ = y, y- = 1 - y, or Keras' smoothing y+ = y*(1-eps) + eps/2,
 * y- = (1-y)*(1-eps) + eps/2. A term whose coefficient is exactly 0 contributes exactly 0 (the
 * zero-coefficient rule of docs/contract.md section 3), even where its log is infinite.
 *
 * Each kind has a loss loop and a gradient loop. The loss loop is the same code whether or not a
 * gradient is wanted, so the loss has the same bits either way (the compiler may fuse multiply-
 * adds differently in different loops); it also leaves e = exp(-|x|) (and what else the gradient
 * reuses) in scratch for the gradient loop.
 */
typedef struct {
    int kind, route, want_loss, want_grad, smooth;
    double keep, shift;      /* smoothing: y+ = y*keep + shift */
    double alpha, gamma;     /* focal */
    double scale;            /* the gradient's factor: 1, or 1/count for a mean */
} Params;

#define SMOOTHED(T, y, keep, shift, smooth, ypos, yneg)                                            \
    T ypos = smooth ? (y) * (keep) + (shift) : (y);                                                \
    T yneg = smooth ? ((T)1 - (y)) * (keep) + (shift) : (T)1 - (y)

/* HALF: float32 throughout, rounded once to float16/bfloat16 by the store. */
static inline ALWAYS_INLINE void logits_half_loss(const float *RESTRICT x, const float *RESTRICT y, const float *RESTRICT w, const float *RESTRICT p,
                                                  float *RESTRICT loss, float *RESTRICT es, Py_ssize_t n, const int smooth,
                                                  const Params *pr) {
    float keep = (float)pr->keep, shift = (float)pr->shift;
    for (Py_ssize_t i = 0; i < n; i++) {
        float xi = x[i], yi = y[i];
        float e = bce_expf_neg(fabsf(xi));
        SMOOTHED(float, yi, keep, shift, smooth, ypos, cn);
        float cp = p[i] * ypos;
        int positive = xi > 0.0f;
        float t = bce_log1pf_unit(e);
        float sp_pos = (positive ? xi : 0.0f) + t, sp_neg = (positive ? 0.0f : -xi) + t;
        float a = cp == 0.0f ? 0.0f : cp * sp_neg, b = cn == 0.0f ? 0.0f : cn * sp_pos;
        loss[i] = w[i] * (a + b);
        es[i] = e;
    }
}

static inline ALWAYS_INLINE void logits_half_grad(const float *RESTRICT x, const float *RESTRICT y, const float *RESTRICT w, const float *RESTRICT p,
                                                  const float *RESTRICT es, float *RESTRICT grad, Py_ssize_t n, const int smooth,
                                                  const Params *pr) {
    float keep = (float)pr->keep, shift = (float)pr->shift, scale = (float)pr->scale;
    for (Py_ssize_t i = 0; i < n; i++) {
        float xi = x[i], yi = y[i], e = es[i];
        SMOOTHED(float, yi, keep, shift, smooth, ypos, cn);
        float cp = p[i] * ypos;
        int positive = xi > 0.0f;
        float r = 1.0f / (1.0f + e);
        float sig_pos = positive ? r : e * r, sig_neg = positive ? e * r : r;
        grad[i] = scale * w[i] * (cn * sig_pos - cp * sig_neg);
    }
}

/* SINGLE (float32 results): in double lanes, with e = exp(-|x|) and t = log1p(e) from
 * bce_exp_neg_fast and bce_log1p_unit_fast (each within 1.2e-10 relative of exact, a 0.002 part
 * of float32's u = 2**-24; double's exponent range, so e keeps its precision where a float32 e
 * would be subnormal, |x| > 87.3), the rest in double, rounded once to float32.
 * Accuracy: t is within 1.5e-10 relative (log1p's condition number in e is at most 1), every
 * other quantity is formed in double from float32 inputs (p*y and 1 - y exact, the few sums and
 * products round at 2**-53), and the loss is the sum of two non-negative terms
 * cp*softplus(-x) + cn*softplus(x), softplus(+-x) = max(+-x, 0) + t, so its relative error does
 * not grow in the sum: within 1.6e-10 relative before its one rounding to float32, i.e. within
 * half an ulp plus 0.003 ulp of exact (docs/contract.md section 4 promises 4). The gradient
 * w*(cn*sig(x) - cp*sig(-x)) takes e's error through sig = 1/(1+e) or e/(1+e) (a relative
 * error at most that), so it is within 1.3e-10 of the larger of its two terms before its one
 * rounding. Where |x| > 708 e is exp(-708), not exact: every term it enters is then below
 * 3.4e38**2 * 3.3e-308, far under float32's smallest subnormal, and rounds to 0 as the exact one does. */
static inline ALWAYS_INLINE void logits_single_loss(const float *RESTRICT x, const float *RESTRICT y, const double *RESTRICT w, const double *RESTRICT p,
                                                    double *RESTRICT loss, double *RESTRICT es, Py_ssize_t n, const int smooth,
                                                    const Params *pr) {
    double keep = pr->keep, shift = pr->shift;
    for (Py_ssize_t i = 0; i < n; i++) {
        double xi = x[i], yi = y[i];
        double e = bce_exp_neg_fast(fabs(xi));
        double t = bce_log1p_unit_fast(e);
        SMOOTHED(double, yi, keep, shift, smooth, ypos, cn);
        double cp = p[i] * ypos;
        int positive = xi > 0.0;
        double sp_pos = (positive ? xi : 0.0) + t, sp_neg = (positive ? 0.0 : -xi) + t;
        double a = cp == 0.0 ? 0.0 : cp * sp_neg, b = cn == 0.0 ? 0.0 : cn * sp_pos;
        loss[i] = w[i] * (a + b);
        es[i] = e;
    }
}

static inline ALWAYS_INLINE void logits_single_grad(const float *RESTRICT x, const float *RESTRICT y, const double *RESTRICT w, const double *RESTRICT p,
                                                    const double *RESTRICT es, double *RESTRICT grad, Py_ssize_t n, const int smooth,
                                                    const Params *pr) {
    double keep = pr->keep, shift = pr->shift, scale = pr->scale;
    for (Py_ssize_t i = 0; i < n; i++) {
        double yi = y[i], e = es[i];
        SMOOTHED(double, yi, keep, shift, smooth, ypos, cn);
        double cp = p[i] * ypos;
        int positive = x[i] > 0.0f;
        double r = 1.0 / (1.0 + e);
        double sig_pos = positive ? r : e * r, sig_neg = positive ? e * r : r;
        grad[i] = scale * w[i] * (cn * sig_pos - cp * sig_neg);
    }
}

/* DOUBLE (float64 results): e and t in double lanes (bce_exp_neg within 0.53 ulp, bce_log1p_unit
 * within 0.7 ulp, so t within 2.5 x 2**-53 relative: t's condition number in e is at most 1),
 * and the loss summed without rounding error but t's and the last one.
 * With a = |x| and c1, c2 the coefficients of the terms with and without a (cn, cp for x > 0;
 * cp, cn otherwise), the loss is w * (c1*a + (c1 + c2)*t). Each product and sum below is formed
 * with its exact error (TwoProd by fma, TwoSum), cp = p*y and cn = 1 - y included, so the only
 * errors are t's (at most 2.5 x 2**-53 relative, scaled by the t terms' share of the loss), the
 * second-order terms (below 2**-100 relative) and the final rounding (half an ulp): within 3 ulp
 * of the exact value (docs/contract.md section 4 promises 4), for results above 2**-960 (below,
 * the error terms underflow). With label smoothing, the smoothed targets are rounded once each
 * (two more roundings). Where x is infinite or the plain sum is not finite (an infinite weight or
 * coefficient, NaN), the plain sum is the result: it applies the zero-coefficient rule and
 * IEEE's specials. */
static inline ALWAYS_INLINE void two_sum(double a, double b, double *s, double *err) {
    double sum = a + b, bb = sum - a;
    *s = sum;
    *err = (a - (sum - bb)) + (b - bb);
}

static inline ALWAYS_INLINE double precise_loss(double a, double t, double c1h, double c1l, double c2h, double c2l,
                                                double w) {
    double ph = c1h * a, pl = fma(c1h, a, -ph) + c1l * a;
    double sh, sl;
    two_sum(c1h, c2h, &sh, &sl);
    sl += c1l + c2l;
    double qh = sh * t, ql = fma(sh, t, -qh) + sl * t;
    double lh, ll;
    two_sum(ph, qh, &lh, &ll);
    ll += pl + ql;
    double wh = w * lh;
    return wh + (fma(w, lh, -wh) + w * ll);
}

static inline ALWAYS_INLINE void logits_double_loss(const double *RESTRICT x, const double *RESTRICT y, const double *RESTRICT w,
                                                    const double *RESTRICT p, double *RESTRICT loss, double *RESTRICT es, Py_ssize_t n,
                                                    const int smooth, const Params *pr) {
    double keep = pr->keep, shift = pr->shift;
    for (Py_ssize_t i = 0; i < n; i++) {
        double xi = x[i], yi = y[i], ax = fabs(xi);
        double e = bce_exp_neg(ax);
        double t = bce_log1p_unit(e);
        SMOOTHED(double, yi, keep, shift, smooth, ypos, cn);
        double cl = 0.0, cpl;
        if (!smooth) { /* 1 - y exactly, as a sum of two doubles */
            double s;
            two_sum(1.0, -yi, &s, &cl);
        }
        double cp = p[i] * ypos;
        cpl = fma(p[i], ypos, -cp);
        int positive = xi > 0.0;
        double sp_pos = (positive ? xi : 0.0) + t, sp_neg = (positive ? 0.0 : -xi) + t;
        double a = cp == 0.0 ? 0.0 : cp * sp_neg, b = cn == 0.0 ? 0.0 : cn * sp_pos;
        double plain = w[i] * (a + b);
        /* the coefficients chosen first: one precise_loss, not two blended (a vector loop computes both sides of a select) */
        double c1h = positive ? cn : cp, c1l = positive ? cl : cpl, c2h = positive ? cp : cn, c2l = positive ? cpl : cl;
        double precise = precise_loss(ax, t, c1h, c1l, c2h, c2l, w[i]);
        loss[i] = (isfinite(plain) & (ax < INFINITY)) ? precise : plain; /* an infinite x: 0 * inf in the error terms */
        es[i] = e;
    }
}

static inline ALWAYS_INLINE void logits_double_grad(const double *RESTRICT x, const double *RESTRICT y, const double *RESTRICT w,
                                                    const double *RESTRICT p, const double *RESTRICT es, double *RESTRICT grad, Py_ssize_t n,
                                                    const int smooth, const Params *pr) {
    double keep = pr->keep, shift = pr->shift, scale = pr->scale;
    for (Py_ssize_t i = 0; i < n; i++) {
        double yi = y[i], e = es[i];
        SMOOTHED(double, yi, keep, shift, smooth, ypos, cn);
        double cp = p[i] * ypos;
        int positive = x[i] > 0.0;
        double r = 1.0 / (1.0 + e);
        double sig_pos = positive ? r : e * r, sig_neg = positive ? e * r : r;
        grad[i] = scale * w[i] * (cn * sig_pos - cp * sig_neg);
    }
}

/* Probabilities, in double: -log(q) and -log(1 - q), each clamped at 100 as torch and Paddle do
 * (the derivative is 0 where the clamp holds). 1 - q is formed as u = 1 - q rounded plus the
 * exact correction c = (1 - u) - q, so that small q keeps its digits (log1p):
 * -log(1 - q) = -log(u) - log1p(c/u).
 *   - double results (FAST 0): bce_log_unit (0.66 ulp) and the correction c/u.
 *   - float32 and half results (FAST 1): bce_log_unit_fast (2e-11 relative) and the correction c
 *     (c/u - c = c*q/u is below 2**-53 of -log(1 - q) >= q, as |c| <= 2**-54 and u >= 1/2 where
 *     c != 0; q > 1/2 gives u exact and c = 0). Each term is within 4e-11 relative (twice the
 *     log's error where u rounds next to 1: tests/native/check_cpu_math.c measures every float32
 *     q), and the loss, a weighted sum of the two non-negative terms, keeps that relative error
 *     before its one rounding to float32: within 1/2 ulp + 0.001 ulp. No division. */
#define LOG_CLAMP 100.0
#define SMALLEST_UNCLAMPED 3.720075976020836e-44 /* exp(-100) */
/* The arguments of the two logs: q and u = 1 - q, each replaced by 1 where below exp(-100) (its
 * k is 0 there, else 1), and the rounding error of u (0 where u is replaced). Branch-free
 * (bitwise conditions), so that the loops over these helpers vectorise. */
static inline ALWAYS_INLINE void log_arguments(double q, double *q_in, double *kq, double *u_in, double *ku,
                                               double *correction) {
    double u = 1.0 - q;
    *kq = q >= SMALLEST_UNCLAMPED ? 1.0 : 0.0;
    *ku = u >= SMALLEST_UNCLAMPED ? 1.0 : 0.0;
    *q_in = q * *kq + (1.0 - *kq);
    *u_in = u * *ku + (1.0 - *ku);
    *correction = ((1.0 - *u_in) - q) * *ku;
}

static inline ALWAYS_INLINE double neg_log(double arg, const int fast) {
    return fast ? -bce_log_unit_fast(arg) : -bce_log_unit(arg);
}

/* -log(1 - q) from -log(u_in) and u's rounding error */
static inline ALWAYS_INLINE double neg_log_1mq(double nlog_u, double correction, double u_in, const int fast) {
    return fast ? nlog_u - correction : nlog_u - correction / u_in;
}

/* A term's -log clamped at 100: where it exceeds 100, or where its argument was replaced (k = 0).
 * The blend is arithmetic (v*(1 - c) + 100*c), not a select: GCC vectorises the loop only so. It
 * adds +0.0 or 100, so the result is never -0.0. */
static inline ALWAYS_INLINE double clamped(double nlog, double k) {
    double c = nlog > LOG_CLAMP ? 1.0 : 1.0 - k;
    return nlog * (1.0 - c) + LOG_CLAMP * c;
}

/* (-log q, -log(1 - q)), each clamped at 100. */
static inline ALWAYS_INLINE void neg_logs(double q, double *nlog_q, double *nlog_1mq, const int fast) {
    double q_in, kq, u_in, ku, correction;
    log_arguments(q, &q_in, &kq, &u_in, &ku, &correction);
    *nlog_q = clamped(neg_log(q_in, fast), kq);
    *nlog_1mq = clamped(neg_log_1mq(neg_log(u_in, fast), correction, u_in, fast), ku);
}

static inline ALWAYS_INLINE void probs_loss(const double *RESTRICT q, const double *RESTRICT y, const double *RESTRICT w, double *RESTRICT loss,
                                            Py_ssize_t n, const int smooth, const int fast, const Params *pr) {
    double keep = pr->keep, shift = pr->shift;
    for (Py_ssize_t i = 0; i < n; i++) {
        double qi = q[i], yi = y[i], a, b;
        SMOOTHED(double, yi, keep, shift, smooth, ypos, cn);
        neg_logs(qi, &a, &b, fast);
        a = ypos == 0.0 ? 0.0 : ypos * a;
        b = cn == 0.0 ? 0.0 : cn * b;
        double l = w[i] * (a + b);
        loss[i] = qi != qi ? qi : l;
    }
}

/* Hard targets (every y of the chunk 0 or 1, no smoothing): one log an element, of q where y = 1
 * and of 1 - q where y = 0, through the helpers neg_logs uses for the term probs_loss keeps; the
 * other term is exactly +0.0 there (its coefficient is 0), and the kept one is never -0.0
 * (clamped), so the bits are probs_loss's with half the logs. */
static inline ALWAYS_INLINE void probs_loss_hard(const double *RESTRICT q, const double *RESTRICT y,
                                                 const double *RESTRICT w, double *RESTRICT loss, Py_ssize_t n,
                                                 const int fast) {
    for (Py_ssize_t i = 0; i < n; i++) {
        double qi = q[i], q_in, kq, u_in, ku, correction;
        int positive = y[i] != 0.0;
        log_arguments(qi, &q_in, &kq, &u_in, &ku, &correction);
        double lg = neg_log(positive ? q_in : u_in, fast);
        double v = clamped(positive ? lg : neg_log_1mq(lg, correction, u_in, fast), positive ? kq : ku);
        loss[i] = qi != qi ? qi : w[i] * v;
    }
}

/* Whether every target of the chunk is 0 or 1 (NaN is neither). */
static inline int all_hard(const double *y, Py_ssize_t n) {
    int hard = 1;
    for (Py_ssize_t i = 0; i < n; i++) hard &= (y[i] == 0.0) | (y[i] == 1.0);
    return hard;
}

/* The derivative: -y+/q + y-/(1 - q) where the log is not clamped (q and 1 - q from exp(-100)
 * up), else 0 there; no log is taken. */
static inline ALWAYS_INLINE void probs_grad(const double *RESTRICT q, const double *RESTRICT y, const double *RESTRICT w, double *RESTRICT grad,
                                            Py_ssize_t n, const int smooth, const Params *pr) {
    double keep = pr->keep, shift = pr->shift, scale = pr->scale;
    for (Py_ssize_t i = 0; i < n; i++) {
        double qi = q[i], yi = y[i], u = 1.0 - qi;
        SMOOTHED(double, yi, keep, shift, smooth, ypos, cn);
        /* a zero coefficient gives 0 (no 0 * inf); arithmetic blends, as in clamped */
        double kq = (qi >= SMALLEST_UNCLAMPED ? 1.0 : 0.0) * (ypos != 0.0 ? 1.0 : 0.0);
        double ku = (u >= SMALLEST_UNCLAMPED ? 1.0 : 0.0) * (cn != 0.0 ? 1.0 : 0.0);
        double ga = -ypos / (qi * kq + (1.0 - kq)) * kq;
        double gb = cn / (u * ku + (1.0 - ku)) * ku;
        double g = scale * w[i] * (ga + gb);
        grad[i] = qi != qi ? qi : g;
    }
}

/* Hard targets, as probs_loss_hard: one division an element, of the term whose coefficient is 1,
 * with probs_grad's bits. probs_grad adds the other term: +0.0 where y = 1, which turns a masked
 * -0.0 into +0.0, as `+ 0.0` does here; -0.0 where y = 0, which changes nothing, nor does `+ 0.0`
 * (the kept term 1/(1 - q) is never -0.0). */
static inline ALWAYS_INLINE void probs_grad_hard(const double *RESTRICT q, const double *RESTRICT y,
                                                 const double *RESTRICT w, double *RESTRICT grad, Py_ssize_t n,
                                                 const Params *pr) {
    double scale = pr->scale;
    for (Py_ssize_t i = 0; i < n; i++) {
        double qi = q[i], u = 1.0 - qi;
        int positive = y[i] != 0.0;
        double kq = qi >= SMALLEST_UNCLAMPED ? 1.0 : 0.0, ku = u >= SMALLEST_UNCLAMPED ? 1.0 : 0.0;
        double k = positive ? kq : ku;
        double den = positive ? qi * kq + (1.0 - kq) : u * ku + (1.0 - ku);
        double num = positive ? -1.0 : 1.0;
        double g = scale * w[i] * (num / den * k + 0.0);
        grad[i] = qi != qi ? qi : g;
    }
}

/* torchvision's focal loss, alpha_t * ce * m**gamma with ce the BCE with logits and
 * m = 1 - p_t = y- * sig(x) + y+ * sig(-x), in double. Its derivative,
 * alpha_t * m**gamma * (ce' + gamma * ce * m'/m), uses m'/m in closed form (finite where m
 * underflows); where ce is infinite the modulator counts as the constant 1, as in the portable
 * path. The power is m*m for gamma = 2 (``square``), else bce_pow_unit (within about 0.5 ulp +
 * gamma x 2**-56 relative). Branch-free, so that the loops vectorise. */
/* gs: gamma in an array, not the loop-invariant number (GCC then unswitches the power's special
 * cases out of the loop and no longer vectorises it) */
static inline ALWAYS_INLINE void focal_loss(const double *RESTRICT x, const double *RESTRICT y, const double *RESTRICT w, const double *RESTRICT gs,
                                            double *RESTRICT loss, double *RESTRICT es, double *RESTRICT ces, double *RESTRICT mods, Py_ssize_t n,
                                            const int smooth, const int square, const Params *pr) {
    double keep = pr->keep, shift = pr->shift, alpha = pr->alpha;
    double weighted = alpha >= 0.0 ? 1.0 : 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double xi = x[i], yi = y[i];
        SMOOTHED(double, yi, keep, shift, smooth, ypos, yneg);
        double e = bce_exp_neg(fabs(xi));
        double t = bce_log1p_unit(e);
        int positive = xi > 0.0;
        double sp_pos = (positive ? xi : 0.0) + t, sp_neg = (positive ? 0.0 : -xi) + t;
        double a = ypos == 0.0 ? 0.0 : ypos * sp_neg, b = yneg == 0.0 ? 0.0 : yneg * sp_pos;
        double ce = a + b;
        double r = 1.0 / (1.0 + e);
        /* arithmetic blends (not selects) on what reaches the power's log: GCC vectorises the
         * loop only so (see _cpu_math.h); sig(+-x) are finite, so no 0 * inf arises */
        double kp = positive ? 1.0 : 0.0;
        double sig_pos = r * kp + e * r * (1.0 - kp), sig_neg = e * r * kp + r * (1.0 - kp);
        double m = yneg * sig_pos + ypos * sig_neg;
        /* where ce is infinite the modulator is 1 (m**gamma is finite) */
        double kinf = fabs(ce) == INFINITY ? 1.0 : 0.0;
        double power = square ? m * m : bce_pow_unit(m, gs[i]);
        double mod = power * (1.0 - kinf) + kinf;
        double at = (alpha * ypos + (1.0 - alpha) * yneg) * weighted + (1.0 - weighted);
        double l = at == 0.0 ? 0.0 : at * (ce * mod);
        loss[i] = w[i] * l;
        es[i] = e;
        ces[i] = ce;
        mods[i] = mod;
    }
}

/* The derivative, from the loss loop's e, ce and m**gamma. */
static inline ALWAYS_INLINE void focal_grad(const double *RESTRICT x, const double *RESTRICT y, const double *RESTRICT w, const double *RESTRICT es,
                                            const double *RESTRICT ces, const double *RESTRICT mods, double *RESTRICT grad, Py_ssize_t n,
                                            const int smooth, const Params *pr) {
    double keep = pr->keep, shift = pr->shift, gamma = pr->gamma, scale = pr->scale, alpha = pr->alpha;
    for (Py_ssize_t i = 0; i < n; i++) {
        double yi = y[i], e = es[i], ce = ces[i], mod = mods[i];
        SMOOTHED(double, yi, keep, shift, smooth, ypos, yneg);
        int positive = x[i] > 0.0;
        double r = 1.0 / (1.0 + e);
        double sig_pos = positive ? r : e * r, sig_neg = positive ? e * r : r;
        double dce = yneg * sig_pos - ypos * sig_neg;
        /* m'/m = (y- - y+) e / ((1 + e) D), D = y- + y+ e (x > 0) or y- e + y+ (x <= 0); where
         * D = 0 (y- = 0 for x > 0, or y+ = 0 otherwise, and e = 0), its limit: -r or r */
        double big = positive ? yneg : ypos, small = positive ? ypos : yneg;
        double d = big + small * e;
        double safe_d = d > 0.0 ? d : 1.0;
        double limit = ((big == 0.0) & (small > 0.0)) ? (positive ? -r : r) : 0.0;
        double ratio = d > 0.0 ? (yneg - ypos) * e / ((1.0 + e) * safe_d) : limit;
        int infinite = fabs(ce) == INFINITY;
        double inner = (infinite | (gamma == 0.0)) ? dce : dce + gamma * ce * ratio;
        double at = alpha >= 0.0 ? alpha * ypos + (1.0 - alpha) * yneg : 1.0;
        double g = at == 0.0 ? 0.0 : at * mod * inner;
        grad[i] = scale * w[i] * g;
    }
}

/* ---------------------------------------------------------------------------------------------
 * One call: the walkers, the parameters, and a loop over [start, stop).
 */
typedef struct {
    Walker x, y, w, p, loss, grad;
    int has_loss, has_grad, want_sum, ignore, check_range, prefetch;
    double ignore_value;
    Params pr;
    /* a weight or pos_weight with the same values in every chunk (same_every_chunk): one chunk
     * of it, filled once per call; NULL otherwise */
    const double *w_row_d, *p_row_d;
    const float *w_row_f, *p_row_f;
} Call;

/* One chunk of an operand with the same values in every chunk, in the route's compute type (Call's rows). */
typedef struct {
    double d[CHUNK];
    float f[CHUNK];
} ChunkRow;

typedef struct {
    float fx[CHUNK], fy[CHUNK], fw[CHUNK], fp[CHUNK], floss[CHUNK], fgrad[CHUNK], fe[CHUNK];
    double dx[CHUNK], dy[CHUNK], dw[CHUNK], dp[CHUNK], dloss[CHUNK], dgrad[CHUNK], de[CHUNK], dt[CHUNK], dm[CHUNK];
} Scratch;

static double chunk_sum_d(const double *v, Py_ssize_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int m = 0; m < 8; m++) acc[m] += v[i + m];
    double total = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) total += v[i];
    return total;
}

static double chunk_sum_f(const float *v, Py_ssize_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int m = 0; m < 8; m++) acc[m] += v[i + m];
    double total = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) total += v[i];
    return total;
}

/* The compute loops, cloned per instruction set; each instantiates its math with a constant
 * smoothing flag, so that every instance is a branch-free loop the compiler vectorises. */
#define SMOOTH_CASES(CALL)    \
    do {                      \
        if (pr->smooth) {     \
            CALL(1);          \
        } else {              \
            CALL(0);          \
        }                     \
    } while (0)

VECTOR_CLONES static void logits_half(const float *x, const float *y, const float *w, const float *p, float *loss,
                                      float *es, float *grad, Py_ssize_t n, const Params *pr) {
#define LOSS(S) logits_half_loss(x, y, w, p, loss, es, n, S, pr)
#define GRAD(S) logits_half_grad(x, y, w, p, es, grad, n, S, pr)
    SMOOTH_CASES(LOSS);
    if (pr->want_grad) SMOOTH_CASES(GRAD);
#undef LOSS
#undef GRAD
}

VECTOR_CLONES static void logits_single(const float *x, const float *y, const double *w, const double *p,
                                        double *loss, double *es, double *grad, Py_ssize_t n, const Params *pr) {
#define LOSS(S) logits_single_loss(x, y, w, p, loss, es, n, S, pr)
#define GRAD(S) logits_single_grad(x, y, w, p, es, grad, n, S, pr)
    SMOOTH_CASES(LOSS);
    if (pr->want_grad) SMOOTH_CASES(GRAD);
#undef LOSS
#undef GRAD
}

VECTOR_CLONES static void logits_double(const double *x, const double *y, const double *w, const double *p,
                                        double *loss, double *es, double *grad, Py_ssize_t n, const Params *pr) {
#define LOSS(S) logits_double_loss(x, y, w, p, loss, es, n, S, pr)
#define GRAD(S) logits_double_grad(x, y, w, p, es, grad, n, S, pr)
    SMOOTH_CASES(LOSS);
    if (pr->want_grad) SMOOTH_CASES(GRAD);
#undef LOSS
#undef GRAD
}

VECTOR_CLONES static void probs(const double *q, const double *y, const double *w, double *loss, double *grad,
                                Py_ssize_t n, const Params *pr) {
#define LOSS(S) probs_loss(q, y, w, loss, n, S, 0, pr)
#define LOSS_FAST(S) probs_loss(q, y, w, loss, n, S, 1, pr)
#define GRAD(S) probs_grad(q, y, w, grad, n, S, pr)
    int hard = !pr->smooth && all_hard(y, n);
    if (pr->want_loss && hard) {
        if (pr->route == ROUTE_DOUBLE) probs_loss_hard(q, y, w, loss, n, 0);
        else probs_loss_hard(q, y, w, loss, n, 1);
    } else if (pr->want_loss && pr->route == ROUTE_DOUBLE) {
        SMOOTH_CASES(LOSS);
    } else if (pr->want_loss) {
        SMOOTH_CASES(LOSS_FAST);
    }
    if (pr->want_grad && hard) {
        probs_grad_hard(q, y, w, grad, n, pr);
    } else if (pr->want_grad) {
        SMOOTH_CASES(GRAD);
    }
#undef LOSS
#undef LOSS_FAST
#undef GRAD
}

VECTOR_CLONES static void focal(const double *x, const double *y, const double *w, double *gs, double *loss,
                                double *grad, double *es, double *ces, double *mods, Py_ssize_t n, const Params *pr) {
    int square = pr->gamma == 2.0;
    for (Py_ssize_t i = 0; i < n; i++) gs[i] = pr->gamma;
#define LOSS(S) (square ? focal_loss(x, y, w, gs, loss, es, ces, mods, n, S, 1, pr) \
                        : focal_loss(x, y, w, gs, loss, es, ces, mods, n, S, 0, pr))
#define GRAD(S) focal_grad(x, y, w, es, ces, mods, grad, n, S, pr)
    SMOOTH_CASES(LOSS);
    if (pr->want_grad) SMOOTH_CASES(GRAD);
#undef LOSS
#undef GRAD
}

/* cloned, as count_outside: the baseline build leaves these loops scalar */
#define DEFINE_DROP(NAME, TX, TW)                                                                  \
    VECTOR_CLONES static Py_ssize_t NAME(TX *x, TX *y, TW *w, Py_ssize_t n, double value) {        \
        Py_ssize_t kept = 0;                                                                       \
        for (Py_ssize_t i = 0; i < n; i++) {                                                       \
            int drop = (double)y[i] == value;                                                      \
            kept += !drop;                                                                         \
            x[i] = drop ? (TX)0 : x[i];                                                            \
            y[i] = drop ? (TX)0 : y[i];                                                            \
            w[i] = drop ? (TW)0 : w[i];                                                            \
        }                                                                                          \
        return kept;                                                                               \
    }
DEFINE_DROP(drop_ff, float, float)
DEFINE_DROP(drop_fd, float, double)
DEFINE_DROP(drop_dd, double, double)

/* Values outside [0, 1] (NaN is not outside). */
/* cloned: in the baseline build GCC leaves this loop scalar (it was half of a probability pass's time) */
VECTOR_CLONES static Py_ssize_t count_outside(const double *v, Py_ssize_t n) {
    Py_ssize_t bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) bad += (v[i] < 0.0) | (v[i] > 1.0);
    return bad;
}

/* Whether an operand has the same values in every chunk: one number, or a row repeated along
 * the outer dim (pos_weight[C] over [B, C]) whose length divides CHUNK. Chunks start at multiples
 * of CHUNK (blocks at multiples of BLOCK, a multiple of CHUNK), and a last, shorter chunk reads
 * the row's beginning. */
static int same_every_chunk(const Walker *w) {
    return w->nd == 0 || (w->nd == 2 && w->steps[0] == 0 && w->dims[1] <= CHUNK && CHUNK % w->dims[1] == 0);
}

/* Such an operand's first `count` values (a chunk, or the whole input where it is shorter), read
 * once, in the compute type the route reads: Call's row for it. */
static void fill_row(const Walker *w, ChunkRow *row, Py_ssize_t count, int in_float, const double **d,
                     const float **f) {
    if (in_float) {
        gather_f(w, 0, count, row->f);
        *f = row->f;
    } else {
        gather_d(w, 0, count, row->d);
        *d = row->d;
    }
}

/* The chunk's weights: the call's row where there is one and it may be read as it is (not where
 * ignore_index rewrites them in scratch), else gathered into scratch. */
#define DEFINE_WEIGHTS(NAME, T, GATHER)                                                            \
    static const T *NAME(const Walker *w, const T *row, int shared, Py_ssize_t pos, Py_ssize_t n, T *scratch) { \
        if (row && shared) return row;                                                             \
        GATHER(w, pos, n, scratch);                                                                \
        return scratch;                                                                            \
    }
DEFINE_WEIGHTS(weights_d, double, gather_d)
DEFINE_WEIGHTS(weights_f, float, gather_f)

/* One chunk of n elements at logical position pos; stats[] accumulates kept and bad counts.
 * Returns the chunk's loss sum (0 unless a sum is wanted). */
static double run_chunk(const Call *c, Scratch *s, Py_ssize_t pos, Py_ssize_t n, double *stats) {
    const Params *pr = &c->pr;
    double part = 0.0;
    Py_ssize_t kept = n;
    int copy = c->ignore; /* the ignored elements are rewritten in scratch, never in the inputs */
    if (pr->kind == KIND_LOGITS && pr->route != ROUTE_DOUBLE) {
        const float *x, *y;
        if (copy) {
            gather_f(&c->x, pos, n, s->fx);
            gather_f(&c->y, pos, n, s->fy);
            x = s->fx, y = s->fy;
        } else {
            x = fetch_f(&c->x, pos, n, s->fx);
            y = fetch_f(&c->y, pos, n, s->fy);
        }
        if (pr->route == ROUTE_HALF) {
            const float *w = weights_f(&c->w, c->w_row_f, !copy, pos, n, s->fw);
            const float *p = weights_f(&c->p, c->p_row_f, 1, pos, n, s->fp);
            if (copy) kept = drop_ff(s->fx, s->fy, s->fw, n, c->ignore_value);
            logits_half(x, y, w, p, s->floss, s->fe, s->fgrad, n, pr);
            if (c->want_sum) part = chunk_sum_f(s->floss, n);
            if (c->has_loss) scatter_f(&c->loss, pos, n, s->floss);
            if (c->has_grad) scatter_f(&c->grad, pos, n, s->fgrad);
        } else {
            const double *w = weights_d(&c->w, c->w_row_d, !copy, pos, n, s->dw);
            const double *p = weights_d(&c->p, c->p_row_d, 1, pos, n, s->dp);
            if (copy) kept = drop_fd(s->fx, s->fy, s->dw, n, c->ignore_value);
            logits_single(x, y, w, p, s->dloss, s->de, s->dgrad, n, pr);
            if (c->want_sum) part = chunk_sum_d(s->dloss, n);
            if (c->has_loss) scatter_d(&c->loss, pos, n, s->dloss);
            if (c->has_grad) scatter_d(&c->grad, pos, n, s->dgrad);
        }
    } else {
        const double *x, *y;
        if (copy || c->check_range) {
            gather_d(&c->x, pos, n, s->dx);
            gather_d(&c->y, pos, n, s->dy);
            x = s->dx, y = s->dy;
        } else {
            x = fetch_d(&c->x, pos, n, s->dx);
            y = fetch_d(&c->y, pos, n, s->dy);
        }
        const double *w = weights_d(&c->w, c->w_row_d, !copy, pos, n, s->dw);
        if (c->check_range) stats[STAT_BAD_X] += (double)count_outside(x, n); /* every probability */
        if (copy) kept = drop_dd(s->dx, s->dy, s->dw, n, c->ignore_value);
        if (c->check_range) stats[STAT_BAD_Y] += (double)count_outside(y, n); /* the kept targets */
        if (pr->kind == KIND_LOGITS) {
            logits_double(x, y, w, weights_d(&c->p, c->p_row_d, 1, pos, n, s->dp), s->dloss, s->de, s->dgrad, n, pr);
        } else if (pr->kind == KIND_PROBS) {
            probs(x, y, w, s->dloss, s->dgrad, n, pr);
        } else {
            focal(x, y, w, s->dp, s->dloss, s->dgrad, s->de, s->dt, s->dm, n, pr);
        }
        if (c->want_sum) part = chunk_sum_d(s->dloss, n);
        if (c->has_loss) scatter_d(&c->loss, pos, n, s->dloss);
        if (c->has_grad) scatter_d(&c->grad, pos, n, s->dgrad);
    }
    stats[STAT_KEPT] += (double)kept;
    return part;
}

/* Ask for the cache lines of elements [start, stop) of a contiguous operand: the next chunk's,
 * while this one computes (the hardware prefetcher restarts at each chunk's short loops). Without
 * it one thread took 1.9 times as long per element at 2**24 float32 elements as at 2**20, with it
 * 1.3 times (bench/README.md); within the caches the prefetches cost ~10 %, hence PREFETCH_BYTES. */
static void prefetch(const Walker *w, Py_ssize_t start, Py_ssize_t stop) {
#if defined(__GNUC__)
    if (!contiguous(w)) return;
    const char *line = w->base + start * ITEMSIZE[w->dtype], *last = w->base + stop * ITEMSIZE[w->dtype];
    for (; line < last; line += 64) __builtin_prefetch(line, 0, 3);
#else
    (void)w, (void)start, (void)stop;
#endif
}

/* Blocks [start, stop): each block's stats (sum by Neumaier over its chunks, in a fixed order)
 * into rows[block] (NSTATS doubles a row, rows indexed from block 0 of the whole input). */
static void run_range(const Call *c, Scratch *s, Py_ssize_t start, Py_ssize_t stop, double *rows) {
    for (Py_ssize_t block = start; block < stop; block += BLOCK) {
        Py_ssize_t end = block + BLOCK < stop ? block + BLOCK : stop;
        double stats[NSTATS] = {0, 0, 0, 0}, sum = 0.0, compensation = 0.0;
        for (Py_ssize_t pos = block; pos < end; pos += CHUNK) {
            Py_ssize_t n = pos + CHUNK < end ? CHUNK : end - pos;
            if (c->prefetch) {
                Py_ssize_t next = pos + n + CHUNK < stop ? pos + n + CHUNK : stop;
                prefetch(&c->x, pos + n, next);
                prefetch(&c->y, pos + n, next);
                prefetch(&c->w, pos + n, next);
                prefetch(&c->p, pos + n, next);
            }
            double part = run_chunk(c, s, pos, n, stats);
            double t = sum + part;
            compensation += fabs(sum) >= fabs(part) ? (sum - t) + part : (part - t) + sum;
            sum = t;
        }
        stats[STAT_SUM] = isfinite(sum) ? sum + compensation : sum; /* inf - inf in the compensation */
        memcpy(rows + (block / BLOCK) * NSTATS, stats, sizeof(stats));
    }
}

/* The exactly rounded sum of n doubles (Shewchuk's partials, as Python's math.fsum), so that a
 * reduction does not depend on how the blocks were split over threads. */
static double exact_sum(const double *v, Py_ssize_t n, int stride) {
    double partials[128]; /* non-overlapping partials of doubles: at most ~40 */
    int count = 0;
    double special = 0.0; /* inf and NaN: their IEEE sum */
    int has_special = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = v[i * stride];
        if (!isfinite(x)) {
            special = has_special ? special + x : x;
            has_special = 1;
            continue;
        }
        int j = 0;
        for (int k = 0; k < count; k++) {
            double y = partials[k];
            if (fabs(x) < fabs(y)) { double t = x; x = y; y = t; }
            double hi = x + y, lo = y - (hi - x);
            if (lo != 0.0) partials[j++] = lo;
            x = hi;
        }
        if (!isfinite(x)) { /* the finite sum overflowed */
            special = has_special ? special + x : x;
            has_special = 1;
            count = 0;
            continue;
        }
        if (j < 128) partials[j++] = x;
        count = j;
    }
    if (has_special) return special;
    double hi = 0.0;
    if (count > 0) { /* round the partials' sum once, as math.fsum */
        hi = partials[--count];
        double lo = 0.0;
        while (count > 0) {
            double x = hi, y = partials[--count];
            hi = x + y;
            double yr = hi - x;
            lo = y - yr;
            if (lo != 0.0) break;
        }
        if (count > 0 && ((lo < 0.0 && partials[count - 1] < 0.0) || (lo > 0.0 && partials[count - 1] > 0.0))) {
            double y = lo * 2.0, x = hi + y, yr = x - hi;
            if (y == yr) hi = x;
        }
    }
    return hi;
}

/* The pass split over a team of threads: the host framework's OpenMP team (torch's), whose
 * workers spin-wait after each of its ops and so take parts of the range at once, or this
 * module's own (_cpu_team.h) for every other caller. GOMP_parallel is the libgomp ABI behind
 * "#pragma omp parallel" (Intel's and LLVM's runtimes export it too); its address comes from the
 * process (set_host_parallel), so this module links no OpenMP runtime. Only torch tensors use it
 * (cpu_pass): a NumPy caller never touches torch's team, which a forked child could not use. */
typedef void (*HostParallel)(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
static HostParallel host_parallel = NULL;

#if defined(__GNUC__)
#define HOST_TEAMS 1
#define TAKE(counter) __atomic_fetch_add(&(counter), 1, __ATOMIC_RELAXED)
#else /* no atomics: set_host_parallel refuses, no team exists, and one thread runs a job */
#define HOST_TEAMS 0
#define TAKE(counter) ((counter)++)
#endif

/* Parts per thread: a thread that starts late (a wake-up on a busy or idle virtual CPU can take
 * hundreds of µs) finds the others have taken its share, instead of being waited for. */
#define PARTS_PER_THREAD 8
#define MAX_SLOTS 256 /* threads one call uses at most */

typedef struct {
    const Call *call;
    Scratch *scratch; /* one per thread that joins (slots) */
    double *rows;
    Py_ssize_t start, stop, blocks;
    int parts, next_part, slots, next_slot;
} Job;

static void job_worker(void *data) {
    Job *job = data;
    int slot = TAKE(job->next_slot);
    if (slot >= job->slots) return; /* more threads than asked for: the others do the work */
    for (;;) { /* each thread takes parts until none is left: right for any team size */
        int part = TAKE(job->next_part);
        if (part >= job->parts) return;
        Py_ssize_t lo = job->start + job->blocks * part / job->parts * BLOCK;
        Py_ssize_t hi = job->start + job->blocks * (part + 1) / job->parts * BLOCK;
        if (hi > job->stop) hi = job->stop;
        if (lo < hi) run_range(job->call, &job->scratch[slot], lo, hi, job->rows);
    }
}

PyDoc_STRVAR(set_host_parallel_doc,
"set_host_parallel(address)\n--\n\n"
"The address of the process's GOMP_parallel (an OpenMP runtime already loaded, torch's), used\n"
"by run(..., threads > 1); 0 forgets it. Returns whether a team is set.");

static PyObject *set_host_parallel(PyObject *self, PyObject *arg) {
    (void)self;
    void *address = PyLong_AsVoidPtr(arg);
    if (address == NULL && PyErr_Occurred()) return NULL;
    host_parallel = HOST_TEAMS ? (HostParallel)address : NULL;
    return PyBool_FromLong(host_parallel != NULL);
}

/* None, a Python number, or an array: its walker. */
static int operand(PyObject *obj, View *view, const View *x, const Order *o, Walker *w, double absent,
                   const char *what) {
    if (obj == Py_None) {
        constant_walker(w, absent);
        return 0;
    }
    if (PyFloat_Check(obj) || PyLong_Check(obj)) {
        double value = PyFloat_AsDouble(obj);
        if (value == -1.0 && PyErr_Occurred()) return -1;
        constant_walker(w, value);
        return 0;
    }
    if (acquire(obj, view, 0, what) < 0) return -1;
    return make_walker(view, x, o, 0, w, what);
}

PyDoc_STRVAR(run_doc,
"run(kind, route, x, y, weight, pos_weight, loss_out, grad_out, options, start, stop, rows, threads, team)\n--\n\n"
"The pass over the logical elements [start, stop) of x (start a multiple of BLOCK; stop -1: all).\n"
"kind: 0 logits, 1 probabilities, 2 focal; route: 0 half (float32 math), 1 single (float32\n"
"exp/log1p, double elsewhere), 2 double. x, y and the outputs are arrays (buffer protocol,\n"
"DLPack exchange API or capsule, or (array, capacity in bytes)); weight and pos_weight are\n"
"None, a number or an array broadcasting to x. loss_out (element-wise loss) and grad_out\n"
"(d loss / d x times scale; in half precision rounded to float32 first) have x's shape, or are\n"
"None. options: (want_sum, smoothing eps, ignore value or None, check range, alpha, gamma,\n"
"scale; a negative scale: 1 / size). rows:\n"
"None, or a C-contiguous\n"
"float64 array of ceil(size / BLOCK) rows of 4: each block's (loss sum, kept, probabilities\n"
"outside [0, 1], kept targets outside [0, 1]). threads > 1: the blocks are split over the team\n"
"of set_host_parallel (team 1, if set) or this module's own (team 2). Returns (loss sum, kept, bad x, bad y, size of x) over the\n"
"range, the sum exactly rounded from the blocks' sums.");

static PyObject *run(PyObject *self, PyObject *args) {
    (void)self;
    int kind, route, want_sum, check_range, threads, team_kind;
    double eps, alpha, gamma, scale;
    PyObject *x_obj, *y_obj, *w_obj, *p_obj, *loss_obj, *grad_obj, *ignore_obj, *rows_obj;
    Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "iiOOOOOO(pdOpddd)nnOii", &kind, &route, &x_obj, &y_obj, &w_obj, &p_obj, &loss_obj,
                          &grad_obj, &want_sum, &eps, &ignore_obj, &check_range, &alpha, &gamma, &scale, &start, &stop,
                          &rows_obj, &threads, &team_kind))
        return NULL;
    if (kind < KIND_LOGITS || kind > KIND_FOCAL || route < ROUTE_HALF || route > ROUTE_DOUBLE) {
        PyErr_SetString(PyExc_ValueError, "run: unknown kind or route");
        return NULL;
    }
    if (team_kind < TEAM_NONE || team_kind > TEAM_OWN) {
        PyErr_SetString(PyExc_ValueError, "run: unknown team (0 none, 1 the host's, 2 ours)");
        return NULL;
    }
    View xv, yv, wv, pv, lv, gv, rv;
    memset(&wv, 0, sizeof(wv));
    memset(&pv, 0, sizeof(pv));
    memset(&lv, 0, sizeof(lv));
    memset(&gv, 0, sizeof(gv));
    memset(&rv, 0, sizeof(rv));
    memset(&yv, 0, sizeof(yv));
    Call c;
    memset(&c, 0, sizeof(c));
    ChunkRow w_row, p_row;
    Order order;
    PyObject *result = NULL;
    double *rows = NULL, *own_rows = NULL;
    Scratch *scratch = NULL;
    if (acquire(x_obj, &xv, 0, "input") < 0) goto done;
    make_order(&xv, &order);
    if (make_walker(&xv, &xv, &order, 1, &c.x, "input") < 0) goto done;
    if (acquire(y_obj, &yv, 0, "target") < 0 || make_walker(&yv, &xv, &order, 0, &c.y, "target") < 0) goto done;
    if (operand(w_obj, &wv, &xv, &order, &c.w, 1.0, "weight") < 0) goto done;
    if (operand(p_obj, &pv, &xv, &order, &c.p, 1.0, "pos_weight") < 0) goto done;
    if (loss_obj != Py_None) {
        if (acquire(loss_obj, &lv, 1, "loss_out") < 0 || make_walker(&lv, &xv, &order, 1, &c.loss, "loss_out") < 0)
            goto done;
        c.has_loss = 1;
    }
    if (grad_obj != Py_None) {
        if (acquire(grad_obj, &gv, 1, "grad_out") < 0 || make_walker(&gv, &xv, &order, 1, &c.grad, "grad_out") < 0)
            goto done;
        c.has_grad = 1;
    }
    if (c.has_loss && route != ROUTE_HALF && lv.dtype != DT_F32 && lv.dtype != DT_F64 && kind == KIND_LOGITS) {
        PyErr_SetString(PyExc_TypeError, "loss_out: a half-precision result takes the half route");
        goto done;
    }
    Py_ssize_t size = order.size;
    if (stop == -1) stop = size;
    if (scale < 0.0) scale = size ? 1.0 / (double)size : 1.0; /* "1 / size": the size C read */
    c.pr.scale = scale;
    if (start < 0 || stop > size || start > stop || start % BLOCK != 0) {
        PyErr_SetString(PyExc_ValueError, "run: need 0 <= start <= stop <= size and start % BLOCK == 0");
        goto done;
    }
    int float_rows = kind == KIND_LOGITS && route == ROUTE_HALF; /* the one route that reads weights in float */
    Py_ssize_t row_count = size < CHUNK ? size : CHUNK;
    if (same_every_chunk(&c.w)) fill_row(&c.w, &w_row, row_count, float_rows, &c.w_row_d, &c.w_row_f);
    if (same_every_chunk(&c.p)) fill_row(&c.p, &p_row, row_count, float_rows, &c.p_row_d, &c.p_row_f);
    c.want_sum = want_sum;
    c.prefetch = (double)size * (ITEMSIZE[xv.dtype] + ITEMSIZE[yv.dtype]) >= (double)PREFETCH_BYTES;
    c.check_range = check_range && kind == KIND_PROBS;
    c.ignore = ignore_obj != Py_None;
    if (c.ignore) {
        c.ignore_value = PyFloat_AsDouble(ignore_obj);
        if (c.ignore_value == -1.0 && PyErr_Occurred()) goto done;
    }
    c.pr.kind = kind;
    c.pr.route = route;
    c.pr.want_loss = c.has_loss || want_sum;
    c.pr.want_grad = c.has_grad;
    c.pr.smooth = eps != 0.0;
    c.pr.keep = 1.0 - eps;
    c.pr.shift = eps / 2.0;
    c.pr.alpha = alpha;
    c.pr.gamma = gamma;
    Py_ssize_t blocks_total = (size + BLOCK - 1) / BLOCK, first = start / BLOCK;
    Py_ssize_t blocks = (stop - start + BLOCK - 1) / BLOCK;
    if (rows_obj != Py_None) {
        if (acquire(rows_obj, &rv, 1, "rows") < 0) goto done;
        if (rv.dtype != DT_F64 || rv.ndim != 2 || rv.shape[0] < blocks_total || rv.shape[1] != NSTATS ||
            rv.strides[1] != 1 || rv.strides[0] != NSTATS) {
            PyErr_SetString(PyExc_ValueError, "rows: need a C-contiguous float64 array of ceil(size / BLOCK) rows of 4");
            goto done;
        }
        rows = (double *)rv.data;
    } else {
        own_rows = PyMem_Malloc((size_t)(blocks_total > 0 ? blocks_total : 1) * NSTATS * sizeof(double));
        if (!own_rows) {
            PyErr_NoMemory();
            goto done;
        }
        rows = own_rows;
    }
    int use_host = team_kind == TEAM_HOST && host_parallel != NULL;
    int use_own = team_kind == TEAM_OWN && TEAM_AVAILABLE;
    int slots = threads < 2 || !(use_host || use_own) || blocks < 2 ? 1 : threads;
    if (slots > blocks) slots = (int)blocks;
    if (slots > MAX_SLOTS) slots = MAX_SLOTS;
    Py_ssize_t parts = slots == 1 ? 1 : (Py_ssize_t)slots * PARTS_PER_THREAD;
    if (parts > blocks) parts = blocks;
    scratch = PyMem_Malloc((size_t)slots * sizeof(Scratch));
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    if (stop > start) {
        Py_BEGIN_ALLOW_THREADS
        if (slots > 1) {
            Job job = {&c, scratch, rows, start, stop, blocks, (int)parts, 0, slots, 0};
            if (use_host)
                host_parallel(job_worker, &job, (unsigned)slots, 0);
            else
                team_parallel(job_worker, &job, (unsigned)slots);
        } else {
            run_range(&c, scratch, start, stop, rows);
        }
        Py_END_ALLOW_THREADS
    }
    double totals[NSTATS] = {0, 0, 0, 0};
    if (blocks > 0) totals[STAT_SUM] = exact_sum(rows + first * NSTATS + STAT_SUM, blocks, NSTATS);
    for (Py_ssize_t b = first; b < first + blocks; b++)
        for (int k = STAT_KEPT; k < NSTATS; k++) totals[k] += rows[b * NSTATS + k];
    result = Py_BuildValue("(dnnnn)", totals[STAT_SUM], (Py_ssize_t)totals[STAT_KEPT], (Py_ssize_t)totals[STAT_BAD_X],
                           (Py_ssize_t)totals[STAT_BAD_Y], size);
done:
    PyMem_Free(scratch);
    PyMem_Free(own_rows);
    release_view(&xv);
    release_view(&yv);
    release_view(&wv);
    release_view(&pv);
    release_view(&lv);
    release_view(&gv);
    release_view(&rv);
    return result;
}

PyDoc_STRVAR(is_one_doc,
"is_one(array)\n--\n\n"
"Whether a one-element float array (buffer protocol or DLPack, as run takes them) holds exactly 1.");

static PyObject *is_one(PyObject *self, PyObject *obj) {
    (void)self;
    View v;
    if (acquire(obj, &v, 0, "upstream") < 0) {
        release_view(&v);
        return NULL;
    }
    Py_ssize_t count, lo, hi;
    int one = 0;
    if (view_extent(&v, &count, &lo, &hi, "upstream") == 0 && count == 1) {
        switch (v.dtype) {
        case DT_F16: one = bce_f16_to_f32(*(const uint16_t *)v.data) == 1.0f; break;
        case DT_BF16: one = bce_bf16_to_f32(*(const uint16_t *)v.data) == 1.0f; break;
        case DT_F32: one = *(const float *)v.data == 1.0f; break;
        default: one = *(const double *)v.data == 1.0; break;
        }
    }
    release_view(&v);
    if (PyErr_Occurred()) return NULL;
    return PyBool_FromLong(one);
}

PyDoc_STRVAR(team_threads_doc,
"team_threads()\n--\n\n"
"The worker threads this module's own team has started in this process (0 in a forked child\n"
"until it runs a job there).");

static PyObject *team_threads(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLong(team_started());
}

PyDoc_STRVAR(size_doc,
"size(array)\n--\n\n"
"The number of elements of an array as run reads it (buffer protocol or DLPack).");

static PyObject *size_of(PyObject *self, PyObject *obj) {
    (void)self;
    View v;
    Py_ssize_t count, lo, hi;
    if (acquire(obj, &v, 0, "array") < 0) {
        release_view(&v);
        return NULL;
    }
    int failed = view_extent(&v, &count, &lo, &hi, "array") < 0;
    release_view(&v);
    return failed ? NULL : PyLong_FromSsize_t(count);
}

PyDoc_STRVAR(use_f16c_doc,
"use_f16c(wanted)\n--\n\n"
"Whether float16 runs convert by the F16C instructions from now on: wanted and the CPU has them\n"
"(_cpu_f16c.h; the same bits either way). Call it before any pass runs (cpu_pass does, at import).");

static PyObject *use_f16c(PyObject *self, PyObject *wanted) {
    (void)self;
    int want = PyObject_IsTrue(wanted);
    if (want < 0) return NULL;
    return PyBool_FromLong(bce_f16c_init(want));
}

static PyMethodDef methods[] = {
    {"use_f16c", use_f16c, METH_O, use_f16c_doc},
    {"run", run, METH_VARARGS, run_doc},
    {"size", size_of, METH_O, size_doc},
    {"is_one", is_one, METH_O, is_one_doc},
    {"set_host_parallel", set_host_parallel, METH_O, set_host_parallel_doc},
    {"team_threads", team_threads, METH_NOARGS, team_threads_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cpu_pass", "The CPU pass of BCE (see bce_compat.backends.cpu_pass).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cpu_pass(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "BLOCK", BLOCK) < 0 || PyModule_AddIntConstant(m, "CHUNK", CHUNK) < 0 ||
              PyModule_AddIntConstant(m, "NSTATS", NSTATS) < 0 ||
              PyModule_AddIntConstant(m, "PREFETCH_BYTES", PREFETCH_BYTES) < 0 ||
              PyModule_AddIntConstant(m, "OWN_TEAM", TEAM_AVAILABLE) < 0 ||
              (team_init() < 0 && PyErr_NoMemory() == NULL))) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
