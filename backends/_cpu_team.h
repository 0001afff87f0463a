/* The pass's own thread team, for inputs that must not use the host framework's (NumPy, Paddle,
 * TensorFlow: see cpu_pass.py). team_parallel(fn, data, threads) runs fn(data) on the calling
 * thread and on up to threads - 1 workers at once, and returns when every one has left fn.
 *
 * Why native threads: a Python thread pool hands work over in ~150 µs (the worker must take the
 * GIL), which made two threads slower than one below 2**18 elements. These workers touch no
 * Python state: they start within a futex wake-up, they work while the interpreter shuts down,
 * and any Python thread may call.
 *
 * - Waiting: after a job a worker spins for TEAM_SPIN_NS on the job counter (a call right after
 *   another starts at once), then sleeps on a condition variable: an idle process uses no CPU,
 *   and a woken sleeper is scheduled ahead of a thread that spins (another runtime's). A longer
 *   spin does not pay on a machine with as many busy threads as CPUs: there a spinning worker
 *   only takes turns with them (measured with torch's OpenMP workers, which spin ~10 ms after
 *   each op: bench/README.md, "Threads").
 * - Parts: job_worker takes small parts, so a worker that starts late (or not at all) leaves its
 *   share to the others instead of being waited for.
 * - One job at a time: a caller that finds the team busy (another Python thread's call) runs
 *   its job alone; fn must therefore be right for any number of threads (job_worker takes parts
 *   until none is left).
 * - Fork: a child has none of its parent's workers; pthread_atfork's child handler resets the
 *   team (in the child's only thread, before anything else runs), which starts afresh on use.
 * - Signals are blocked in the workers, so they go to the threads that handle them.
 *
 * POSIX threads with GCC's atomics (Linux, macOS, musl); elsewhere TEAM_AVAILABLE is 0 and
 * cpu_pass.py uses its Python pool. */
#ifndef BCE_CPU_TEAM_H
#define BCE_CPU_TEAM_H

#if defined(__GNUC__) && !defined(_WIN32)
#define TEAM_AVAILABLE 1

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define TEAM_MAX 64              /* workers at most */
#define TEAM_STACK (1 << 20)     /* a worker's stack: job_worker needs a few KiB (its scratch is on the heap) */
#define TEAM_SPIN_NS 50000        /* a worker's spin after a job before it sleeps */
#define TEAM_WAIT_SPIN_NS 2000000 /* the caller's wait for the workers (yielding) before it sleeps */

typedef void (*TeamFn)(void *);

typedef struct {
    pthread_mutex_t dispatch; /* held by the caller whose job the team runs */
    pthread_mutex_t lock;     /* guards the fields below; the atomics are read without it */
    pthread_cond_t wake;      /* a new job (workers wait) */
    pthread_cond_t idle;      /* busy reached 0 (the caller waits) */
    TeamFn fn;                /* the open job, NULL when none */
    void *data;
    unsigned long generation; /* bumped per job: a worker's spin watches it (atomic) */
    int wanted;               /* workers the open job may take: those with index < wanted */
    int busy;                 /* workers inside fn (atomic) */
    int started;              /* workers created */
    int sleepers;             /* workers waiting on wake */
} Team;

static Team team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                    PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0, 0, 0};

static inline void team_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long team_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Spin until *value != unwanted (1) or ns have passed (0). */
static int team_spin_until_changed(const unsigned long *value, unsigned long unwanted, long long ns) {
    long long until = team_now_ns() + ns;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (__atomic_load_n(value, __ATOMIC_ACQUIRE) != unwanted) return 1;
            team_relax();
        }
        if (team_now_ns() > until) return 0;
    }
}

static void *team_worker(void *arg) {
    int index = (int)(intptr_t)arg;
    pthread_mutex_lock(&team.lock);
    unsigned long seen = team.generation;
    for (;;) {
        pthread_mutex_unlock(&team.lock);
        team_spin_until_changed(&team.generation, seen, TEAM_SPIN_NS);
        pthread_mutex_lock(&team.lock);
        while (team.generation == seen) {
            team.sleepers++;
            pthread_cond_wait(&team.wake, &team.lock);
            team.sleepers--;
        }
        seen = team.generation;
        if (team.fn == NULL || index >= team.wanted) continue; /* closed before this worker came */
        TeamFn fn = team.fn;
        void *data = team.data;
        __atomic_store_n(&team.busy, team.busy + 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&team.lock);
        fn(data);
        pthread_mutex_lock(&team.lock);
        __atomic_store_n(&team.busy, team.busy - 1, __ATOMIC_RELEASE);
        if (team.busy == 0) pthread_cond_signal(&team.idle);
    }
    return NULL;
}

/* Start workers up to `workers` (the caller holds team.dispatch). Returns how many there are. */
static int team_grow(int workers) {
    if (workers > TEAM_MAX) workers = TEAM_MAX;
    if (team.started >= workers) return team.started;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the workers inherit this mask */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, TEAM_STACK); /* the platform's default varies (musl: 128 KiB) */
    while (team.started < workers) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, team_worker, (void *)(intptr_t)team.started) != 0) break;
#if defined(__linux__) && defined(__GLIBC__)
        char name[16];
        snprintf(name, sizeof(name), "bce_compat_%d", team.started);
        pthread_setname_np(thread, name);
#endif
        __atomic_store_n(&team.started, team.started + 1, __ATOMIC_RELEASE);
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return team.started;
}

/* fn(data) on this thread and up to threads - 1 workers; returns when all have left fn. */
static void team_parallel(TeamFn fn, void *data, unsigned threads) {
    if (threads < 2 || pthread_mutex_trylock(&team.dispatch) != 0) { /* busy: another caller's job */
        fn(data);
        return;
    }
    int workers = team_grow((int)threads - 1);
    if (workers > (int)threads - 1) workers = (int)threads - 1;
    pthread_mutex_lock(&team.lock);
    team.fn = fn;
    team.data = data;
    team.wanted = workers;
    __atomic_store_n(&team.generation, team.generation + 1, __ATOMIC_RELEASE);
    if (team.sleepers > 0) pthread_cond_broadcast(&team.wake);
    pthread_mutex_unlock(&team.lock);
    fn(data);
    long long until = team_now_ns() + TEAM_WAIT_SPIN_NS;
    while (__atomic_load_n(&team.busy, __ATOMIC_ACQUIRE) > 0 && team_now_ns() < until)
        sched_yield(); /* a worker may share this CPU: let it finish its part */
    pthread_mutex_lock(&team.lock);
    team.fn = NULL; /* a worker that wakes from now on finds no job */
    while (team.busy > 0) pthread_cond_wait(&team.idle, &team.lock);
    pthread_mutex_unlock(&team.lock);
    pthread_mutex_unlock(&team.dispatch);
}

/* In a forked child (its only thread): the parent's workers do not exist here, and the locks may
 * have been held by threads that do not either. Start from nothing. */
static void team_after_fork_in_child(void) {
    pthread_mutex_init(&team.dispatch, NULL);
    pthread_mutex_init(&team.lock, NULL);
    pthread_cond_init(&team.wake, NULL);
    pthread_cond_init(&team.idle, NULL);
    team.fn = NULL;
    team.data = NULL;
    team.generation = 0;
    team.wanted = team.busy = team.started = team.sleepers = 0;
}

static int team_init(void) { return pthread_atfork(NULL, NULL, team_after_fork_in_child) == 0 ? 0 : -1; }

static int team_started(void) { return __atomic_load_n(&team.started, __ATOMIC_ACQUIRE); }

#else /* no POSIX threads or no GCC atomics: cpu_pass.py's Python pool splits the work */
#define TEAM_AVAILABLE 0
typedef void (*TeamFn)(void *);
static void team_parallel(TeamFn fn, void *data, unsigned threads) {
    (void)threads;
    fn(data);
}
static int team_init(void) { return 0; }
static int team_started(void) { return 0; }
#endif

#endif
