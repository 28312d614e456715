/*
 * bench-rcu — what the RCU flavour costs (docs/design.md "RCU flavor",
 * issue 6: "urcu-bp vs urcu-memb not measured").  A benchmark of the RCU
 * layer itself, so unlike the other stress programs it calls liburcu
 * directly.  Only measures; built by `make check` so that it keeps
 * compiling, never run by it (`make bench-rcu` runs it).  One line per
 * figure, "name value unit", the parameters in the name; '#' lines give
 * the parameters and every run behind a median.
 *
 * Flavours, each through its prefixed API with the _LGPL_SOURCE inline
 * read side, as engine/rcu.h uses urcu-memb:
 *   memb   urcu-memb: the flavour mix uses.
 *   mix    urcu-memb through engine/rcu.h (mix_rcu_read_lock adds the
 *          thread-local "registered yet?" test; publish is a seq_cst
 *          store; deferred frees go through mix_rcu_defer).  What the
 *          engine pays today.
 *   bp     urcu-bp: registers threads itself; its read lock tests a
 *          thread-local pointer to the reader's slot and goes through it.
 *   qsbr   urcu-qsbr: empty read side, a reference floor only — readers
 *          must announce quiescent states (here every BRCU_CHUNK
 *          sections), which a library that does not own its threads
 *          cannot make them do.
 * The flavours' symbols (rcu_head users, call_rcu, the rcu_* maps) collide
 * in one translation unit, so the part between "#ifdef BENCH_RCU_FLAVOUR"
 * and its #else is compiled once per flavour (-DBENCH_RCU_FLAVOUR=memb
 * ...) into its own object, which exports one struct brcu_ops; the rest is
 * the harness (see the Makefile's bench-rcu rule).
 *
 * Figures, for 1 and 2 reader threads, median of --runs runs (5) of
 * --secs seconds (0.3); the runs of the flavours are interleaved, so
 * that a noisy stretch of the machine falls on all of them:
 *   rcu_read_pair_F_Nthr        ns per empty lock/unlock pair
 *   rcu_read_deref_F_Nthr       ns per section that rcu_dereferences the
 *                               published struct and reads two fields
 *   rcu_read_{pair,deref}_writer_F_Nthr
 *                               the same while one writer thread
 *                               publishes a new struct and frees the old
 *                               one with call_rcu in a loop (at most
 *                               BRCU_BACKLOG frees pending: past that the
 *                               writer waits in rcu_barrier, as the
 *                               engine bounds its snapshot backlog)
 *   rcu_writer_F_Nthr           the writer's updates/s in the deref runs
 *   rcu_sync_F_Nidle            µs per synchronize_rcu from the main
 *                               thread (registered only by mix, which
 *                               registers any caller), with N = 2, 16
 *                               registered reader threads parked outside
 *                               any section (qsbr: offline)
 *   rcu_sync_F_Nbusy            the same with the N readers looping
 *                               deref sections
 * Read-side ns are per thread: the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID) over its sections, averaged over the readers,
 * so a reader that waits for a vCPU is not charged for it; the '#' line
 * gives the parallelism (reader CPU time / wall time).  The loops keep a
 * compiler barrier per section, so qsbr's figure is the loop itself.  A
 * reader that finds a freed struct (the free callback poisons it first)
 * stops the program with exit 1: each flavour's grace periods are checked
 * while they are measured.
 *
 * With more busy readers than CPUs, synchronize_rcu waits for readers
 * preempted inside a section or (qsbr) before their next quiescent state:
 * the busy figures then measure the scheduler as much as the flavour.
 *
 * What is measured is the code as linked here: the flavour objects are
 * built with the engine's flags (-fPIC) into an executable, where the
 * linker turns liburcu's thread-locals into initial-exec accesses.
 * Inside a shared library (libmix.so) every such access is a call to
 * __tls_get_addr instead, several per section, for every flavour alike.
 *
 * Instructions per section: --callgrind N runs N empty pairs and N deref
 * sections per flavour in functions named brcu_F_cg_empty and
 * brcu_F_cg_deref (and brcu_cg_baseline: the same loop, no RCU), then
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out \
 *       build/stress/bench-rcu --callgrind 1000000
 *   callgrind_annotate --inclusive=yes cg.out | grep brcu_
 * and divide by N.
 *
 * Options: --runs N, --secs S, --quick (3 runs of 0.1 s), --flavour F
 * (one of memb, mix, bp, qsbr), --only read|sync|defer, --callgrind N.
 * --only defer: the publish path's mix_rcu_defer and chunk buffer cache
 * (issue 11 item 5; the comment above bench_defer).
 * Full run ~75 s.
 */
#include <stdatomic.h>
#include <stdint.h>

/* One flavour's side of the benchmark; every function is called from a
 * thread that did thread_begin unless said otherwise. */
struct brcu_ops {
	const char *name;
	/* 1 when the flavour's read side relies on sys_membarrier, 0 when it
	 * fell back to fences, -1 when the flavour has no such choice. */
	int (*has_membarrier)(void);
	/* Publish the first struct / free the last one (main thread, no
	 * reader or writer running). */
	void (*setup)(void);
	void (*teardown)(void);
	void (*thread_begin)(void);
	void (*thread_end)(void);
	/* qsbr: go offline / online around a wait; no-ops elsewhere. */
	void (*thread_idle)(void);
	void (*thread_busy)(void);
	/* Read-side loops until *stop, BRCU_CHUNK sections at a time; return
	 * the sections run.  read_deref adds to *bad_r every struct it found
	 * poisoned. */
	uint64_t (*read_empty)(atomic_int *stop);
	uint64_t (*read_deref)(atomic_int *stop, uint64_t *bad_r);
	/* The writer's loop until *stop; returns the updates made. */
	uint64_t (*write_loop)(atomic_int *stop);
	/* Any thread, registered or not, outside a section. */
	void (*synchronize)(void);
	/* n sections in a separately named function (callgrind). */
	void (*cg_empty)(uint64_t n);
	void (*cg_deref)(uint64_t n);
};

extern const struct brcu_ops brcu_ops_memb, brcu_ops_mix, brcu_ops_bp,
	brcu_ops_qsbr;

/* sections between two looks at the stop flag (and qsbr's quiescent
 * state announcements) */
#define BRCU_CHUNK 256
/* frees waiting for a grace period before the writer waits them out */
#define BRCU_BACKLOG 1024
/* what the free callback writes over a struct's check field */
#define BRCU_POISON 0xdeadbeefdeadbeefull

#define BRCU_CAT_(a, b) a##b
#define BRCU_CAT(a, b) BRCU_CAT_(a, b)

#ifdef BENCH_RCU_FLAVOUR
/* ==== one flavour ======================================================== */
#include "stress.h"

#define BRCU_memb 1
#define BRCU_mix 2
#define BRCU_bp 3
#define BRCU_qsbr 4
#define BRCU_THIS BRCU_CAT(BRCU_, BENCH_RCU_FLAVOUR)
#define BRCU_STR_(x) #x
#define BRCU_STR(x) BRCU_STR_(x)
/* brcu_memb_read_empty ...: readable names in profiles */
#define FN(name) BRCU_CAT(BRCU_CAT(brcu_, BENCH_RCU_FLAVOUR), BRCU_CAT(_, name))

#if BRCU_THIS == BRCU_memb
#define _LGPL_SOURCE 1
#include <urcu/urcu-memb.h>
#define FL_HEAD struct rcu_head
#define FL_MEMBARRIER() urcu_memb_has_sys_membarrier
#define FL_REGISTER() urcu_memb_register_thread()
#define FL_UNREGISTER() urcu_memb_unregister_thread()
#define FL_LOCK() urcu_memb_read_lock()
#define FL_UNLOCK() urcu_memb_read_unlock()
#define FL_DEREF(p) rcu_dereference(p)
#define FL_PUBLISH(p, v) rcu_assign_pointer(p, v)
#define FL_CALL_RCU(h, fn) urcu_memb_call_rcu(h, fn)
#define FL_BARRIER() urcu_memb_barrier()
#define FL_SYNC() urcu_memb_synchronize_rcu()
#elif BRCU_THIS == BRCU_mix
#include "rcu.h"
#define FL_HEAD struct mix_rcu_head
#ifdef MIX_TSAN
#define FL_MEMBARRIER() (-1)
#else
#define FL_MEMBARRIER() urcu_memb_has_sys_membarrier
#endif
/* mix registers on the first section; do it before the clock starts */
#define FL_REGISTER() mix_rcu_thread_ensure()
/* engine/rcu.c unregisters from a pthread key destructor at exit */
#define FL_UNREGISTER() ((void)0)
#define FL_LOCK() mix_rcu_read_lock()
#define FL_UNLOCK() mix_rcu_read_unlock()
#define FL_DEREF(p) MIX_RCU_DEREF(p)
#define FL_PUBLISH(p, v) MIX_RCU_PUBLISH(p, v)
#define FL_CALL_RCU(h, fn) mix_rcu_defer(h, fn)
#define FL_BARRIER() mix_rcu_barrier()
#define FL_SYNC() mix_rcu_synchronize()
#elif BRCU_THIS == BRCU_bp
#define _LGPL_SOURCE 1
#include <urcu/urcu-bp.h>
#define FL_HEAD struct rcu_head
#define FL_MEMBARRIER() urcu_bp_has_sys_membarrier
#define FL_REGISTER() urcu_bp_register_thread()
#define FL_UNREGISTER() urcu_bp_unregister_thread()
#define FL_LOCK() urcu_bp_read_lock()
#define FL_UNLOCK() urcu_bp_read_unlock()
#define FL_DEREF(p) rcu_dereference(p)
#define FL_PUBLISH(p, v) rcu_assign_pointer(p, v)
#define FL_CALL_RCU(h, fn) urcu_bp_call_rcu(h, fn)
#define FL_BARRIER() urcu_bp_barrier()
#define FL_SYNC() urcu_bp_synchronize_rcu()
#elif BRCU_THIS == BRCU_qsbr
#define _LGPL_SOURCE 1
#include <urcu/urcu-qsbr.h>
#define FL_HEAD struct rcu_head
#define FL_MEMBARRIER() (-1)
#define FL_REGISTER() urcu_qsbr_register_thread()
#define FL_UNREGISTER() urcu_qsbr_unregister_thread()
#define FL_LOCK() urcu_qsbr_read_lock()
#define FL_UNLOCK() urcu_qsbr_read_unlock()
#define FL_DEREF(p) rcu_dereference(p)
#define FL_PUBLISH(p, v) rcu_assign_pointer(p, v)
#define FL_CALL_RCU(h, fn) urcu_qsbr_call_rcu(h, fn)
#define FL_BARRIER() urcu_qsbr_barrier()
#define FL_SYNC() urcu_qsbr_synchronize_rcu()
#define FL_QSBR 1
#else
#error "BENCH_RCU_FLAVOUR must be memb, mix, bp or qsbr"
#endif

#ifdef FL_QSBR
#define FL_QUIESCENT() urcu_qsbr_quiescent_state()
#define FL_OFFLINE() urcu_qsbr_thread_offline()
#define FL_ONLINE() urcu_qsbr_thread_online()
#else
#define FL_QUIESCENT() ((void)0)
#define FL_OFFLINE() ((void)0)
#define FL_ONLINE() ((void)0)
#endif

/* Keeps the compiler from merging or dropping sections (qsbr's are
 * empty); no instruction. */
#define FL_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

/* What readers reach through FN(ptr): check == ~gen while it is live;
 * the free callback writes BRCU_POISON into check before free(). */
struct payload {
	uint64_t gen;
	uint64_t check;
	FL_HEAD head;
};

static struct payload *FN(ptr);
/* frees queued and not yet run: the writer's backlog bound */
static atomic_uint FN(pending);

static struct payload *FN(payload_new)(uint64_t gen)
{
	struct payload *p = malloc(sizeof(*p));
	if (!p)
		st_die("bench-rcu: out of memory");
	p->gen = gen;
	p->check = ~gen;
	return p;
}

static void FN(payload_free)(FL_HEAD *h)
{
	struct payload *p = caa_container_of(h, struct payload, head);
	p->check = BRCU_POISON;
	free(p);
	atomic_fetch_sub_explicit(&FN(pending), 1, memory_order_relaxed);
}

static int FN(has_membarrier)(void)
{
	return FL_MEMBARRIER();
}

static void FN(setup)(void)
{
	/* ORDER(brcu-publish): see write_loop */
	FL_PUBLISH(FN(ptr), FN(payload_new)(1));
}

static void FN(teardown)(void)
{
	struct payload *p = FN(ptr);
	/* every reader and the writer have been joined: nothing else can
	 * reach p, and the barrier lets the queued frees finish */
	FL_BARRIER();
	FN(ptr) = NULL;
	free(p);
}

static void FN(thread_begin)(void)
{
	FL_REGISTER();
}

static void FN(thread_end)(void)
{
	FL_ONLINE();
	FL_UNREGISTER();
}

static void FN(thread_idle)(void)
{
	FL_OFFLINE();
}

static void FN(thread_busy)(void)
{
	FL_ONLINE();
}

static uint64_t FN(read_empty)(atomic_int *stop)
{
	uint64_t n = 0;
	int i;

	do {
		for (i = 0; i < BRCU_CHUNK; i++) {
			FL_LOCK();
			FL_COMPILER_BARRIER();
			FL_UNLOCK();
		}
		n += BRCU_CHUNK;
		FL_QUIESCENT();
	} while (!atomic_load_explicit(stop, memory_order_relaxed));
	return n;
}

static uint64_t FN(read_deref)(atomic_int *stop, uint64_t *bad_r)
{
	struct payload *p;
	uint64_t n = 0, bad = 0;
	int i;

	do {
		for (i = 0; i < BRCU_CHUNK; i++) {
			FL_LOCK();
			/* ORDER(brcu-publish): pairs with write_loop's
			 * publish; gen and check were written before it */
			p = FL_DEREF(FN(ptr));
			bad += p->check != ~p->gen;
			FL_UNLOCK();
		}
		n += BRCU_CHUNK;
		FL_QUIESCENT();
	} while (!atomic_load_explicit(stop, memory_order_relaxed));
	*bad_r += bad;
	return n;
}

static uint64_t FN(write_loop)(atomic_int *stop)
{
	struct payload *np, *old;
	uint64_t n = 0;

	while (!atomic_load_explicit(stop, memory_order_relaxed)) {
		/* the only updater: reading the pointer needs no section */
		old = FL_DEREF(FN(ptr));
		np = FN(payload_new)(old->gen + 1);
		/* ORDER(brcu-publish): np's fields are written before this
		 * store; pairs with read_deref's dereference */
		FL_PUBLISH(FN(ptr), np);
		atomic_fetch_add_explicit(&FN(pending), 1,
					  memory_order_relaxed);
		/* old is unreachable since the publish; a reader that still
		 * holds it entered its section before, and the callback runs
		 * only after a grace period, i.e. after that section ends */
		FL_CALL_RCU(&old->head, FN(payload_free));
		n++;
		FL_QUIESCENT();
		if (atomic_load_explicit(&FN(pending), memory_order_relaxed) >=
		    BRCU_BACKLOG) {
			FL_OFFLINE();
			FL_BARRIER();
			FL_ONLINE();
		}
	}
	return n;
}

static void FN(synchronize)(void)
{
	FL_SYNC();
}

static __attribute__((noinline)) void FN(cg_empty)(uint64_t n)
{
	uint64_t i;
	for (i = 0; i < n; i++) {
		FL_LOCK();
		FL_COMPILER_BARRIER();
		FL_UNLOCK();
	}
}

static __attribute__((noinline)) void FN(cg_deref)(uint64_t n)
{
	struct payload *p;
	uint64_t i, bad = 0;
	for (i = 0; i < n; i++) {
		FL_LOCK();
		p = FL_DEREF(FN(ptr));
		bad += p->check != ~p->gen;
		FL_UNLOCK();
	}
	if (bad)	/* nothing frees in this mode */
		st_die("bench-rcu: a live struct reads as freed");
}

const struct brcu_ops BRCU_CAT(brcu_ops_, BENCH_RCU_FLAVOUR) = {
	.name = BRCU_STR(BENCH_RCU_FLAVOUR),
	.has_membarrier = FN(has_membarrier),
	.setup = FN(setup),
	.teardown = FN(teardown),
	.thread_begin = FN(thread_begin),
	.thread_end = FN(thread_end),
	.thread_idle = FN(thread_idle),
	.thread_busy = FN(thread_busy),
	.read_empty = FN(read_empty),
	.read_deref = FN(read_deref),
	.write_loop = FN(write_loop),
	.synchronize = FN(synchronize),
	.cg_empty = FN(cg_empty),
	.cg_deref = FN(cg_deref),
};

#else
/* ==== the harness ======================================================== */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

#include "bufcache.h"
#include "rcu.h"

#define MAX_RUNS 15
#define MAX_READERS 16

static const struct brcu_ops *const g_all[] = {
	&brcu_ops_memb, &brcu_ops_mix, &brcu_ops_bp, &brcu_ops_qsbr,
};
#define N_FLAVOURS (sizeof(g_all) / sizeof(g_all[0]))

static const struct brcu_ops *g_fl[N_FLAVOURS];
static size_t g_nfl;
static unsigned g_runs = 5;
static double g_secs = 0.3;

enum read_kind { READ_EMPTY, READ_DEREF };

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_secs(double secs)
{
	struct timespec ts = { (time_t)secs,
			       (long)((secs - (double)(time_t)secs) * 1e9) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int err = pthread_create(t, NULL, fn, arg);
	if (err)
		st_die("bench-rcu: pthread_create: %s", strerror(err));
}

/* ---- read side ---------------------------------------------------------- */

struct reader {
	const struct brcu_ops *ops;
	enum read_kind kind;
	int idle;			/* sync: park instead of reading */
	pthread_barrier_t *start, *done;
	atomic_int *stop;
	uint64_t sections, cpu_ns, bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t t0;

	r->ops->thread_begin();
	if (r->idle) {
		r->ops->thread_idle();
		pthread_barrier_wait(r->start);
		pthread_barrier_wait(r->done);
		r->ops->thread_end();
		return NULL;
	}
	pthread_barrier_wait(r->start);
	t0 = thread_cpu_ns();
	r->sections = r->kind == READ_EMPTY ?
		r->ops->read_empty(r->stop) :
		r->ops->read_deref(r->stop, &r->bad);
	r->cpu_ns = thread_cpu_ns() - t0;
	r->ops->thread_end();
	return NULL;
}

struct writer {
	const struct brcu_ops *ops;
	pthread_barrier_t *start;
	atomic_int *stop;
	uint64_t updates, wall_ns;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t t0;

	w->ops->thread_begin();
	pthread_barrier_wait(w->start);
	t0 = st_now_ns();
	w->updates = w->ops->write_loop(w->stop);
	w->wall_ns = st_now_ns() - t0;
	w->ops->thread_end();
	return NULL;
}

struct read_result {
	double ns;		/* per section, per reader (CPU time) */
	double parallel;	/* readers' CPU time / wall time */
	double updates_s;	/* the writer's, 0 without one */
};

static void check_bad(const struct brcu_ops *ops, const struct reader *r,
		      unsigned n)
{
	uint64_t bad = 0;
	unsigned i;
	for (i = 0; i < n; i++)
		bad += r[i].bad;
	if (bad) {
		fprintf(stderr, "bench-rcu: %s: %" PRIu64 " sections read "
			"a struct whose check was not ~gen (freed ones read "
			"0x%llx), expected 0: a free ran before a section "
			"holding the struct ended\n", ops->name, bad,
			(unsigned long long)BRCU_POISON);
		exit(1);
	}
}

static struct read_result read_run(const struct brcu_ops *ops,
				   enum read_kind kind, unsigned nreaders,
				   int with_writer)
{
	pthread_t rt[MAX_READERS], wt;
	struct reader r[MAX_READERS];
	struct writer w;
	struct read_result res = { 0, 0, 0 };
	pthread_barrier_t start;
	atomic_int stop = 0;
	uint64_t t0, wall, cpu = 0;
	unsigned i;

	pthread_barrier_init(&start, NULL, nreaders + !!with_writer + 1);
	for (i = 0; i < nreaders; i++) {
		r[i] = (struct reader){ .ops = ops, .kind = kind,
					.start = &start, .stop = &stop };
		spawn(&rt[i], reader_main, &r[i]);
	}
	if (with_writer) {
		w = (struct writer){ .ops = ops, .start = &start,
				     .stop = &stop };
		spawn(&wt, writer_main, &w);
	}
	pthread_barrier_wait(&start);
	t0 = st_now_ns();
	sleep_secs(g_secs);
	atomic_store(&stop, 1);
	for (i = 0; i < nreaders; i++)
		pthread_join(rt[i], NULL);
	wall = st_now_ns() - t0;
	if (with_writer) {
		pthread_join(wt, NULL);
		res.updates_s = (double)w.updates * 1e9 / (double)w.wall_ns;
	}
	pthread_barrier_destroy(&start);
	check_bad(ops, r, nreaders);
	for (i = 0; i < nreaders; i++) {
		res.ns += (double)r[i].cpu_ns / (double)r[i].sections;
		cpu += r[i].cpu_ns;
	}
	res.ns /= nreaders;
	res.parallel = (double)cpu / (double)wall;
	return res;
}

/* The median as the figure, then every run on a '#' line. */
static void report(const char *name, double *v, unsigned n, const char *unit)
{
	double sorted[MAX_RUNS];
	unsigned i;

	memcpy(sorted, v, n * sizeof(*v));
	st_figure(name, st_median(sorted, n), unit);
	printf("#   runs:");
	for (i = 0; i < n; i++)
		printf(" %.4g", sorted[i]);
	printf("\n");
}

static void bench_read(enum read_kind kind, unsigned nreaders,
		       int with_writer)
{
	double ns[N_FLAVOURS][MAX_RUNS], par[N_FLAVOURS][MAX_RUNS];
	double ups[N_FLAVOURS][MAX_RUNS];
	const char *what = kind == READ_EMPTY ? "pair" : "deref";
	char name[128];
	unsigned run;
	size_t f;

	for (run = 0; run < g_runs; run++) {
		for (f = 0; f < g_nfl; f++) {
			struct read_result res = read_run(g_fl[f], kind,
							  nreaders,
							  with_writer);
			ns[f][run] = res.ns;
			par[f][run] = res.parallel;
			ups[f][run] = res.updates_s;
		}
	}
	for (f = 0; f < g_nfl; f++) {
		snprintf(name, sizeof(name), "rcu_read_%s%s_%s_%uthr", what,
			 with_writer ? "_writer" : "", g_fl[f]->name,
			 nreaders);
		report(name, ns[f], g_runs, "ns");
		printf("#   readers' parallelism (CPU/wall), median: %.2f\n",
		       st_median(par[f], g_runs));
		if (with_writer && kind == READ_DEREF) {
			snprintf(name, sizeof(name), "rcu_writer_%s_%uthr",
				 g_fl[f]->name, nreaders);
			report(name, ups[f], g_runs, "updates/s");
		}
	}
}

/* ---- grace periods ------------------------------------------------------ */

/* µs per synchronize_rcu called from the main thread while
 * nreaders registered readers are parked (idle) or read. */
static double sync_run(const struct brcu_ops *ops, unsigned nreaders,
		       int idle)
{
	pthread_t rt[MAX_READERS];
	struct reader r[MAX_READERS];
	pthread_barrier_t start, done;
	atomic_int stop = 0;
	uint64_t t0, n = 0, el;
	unsigned i;

	pthread_barrier_init(&start, NULL, nreaders + 1);
	pthread_barrier_init(&done, NULL, nreaders + 1);
	for (i = 0; i < nreaders; i++) {
		r[i] = (struct reader){ .ops = ops, .kind = READ_DEREF,
					.idle = idle, .start = &start,
					.done = &done, .stop = &stop };
		spawn(&rt[i], reader_main, &r[i]);
	}
	pthread_barrier_wait(&start);
	t0 = st_now_ns();
	do {
		ops->synchronize();
		n++;
	} while ((el = st_now_ns() - t0) < (uint64_t)(g_secs * 1e9));
	atomic_store(&stop, 1);
	if (idle)
		pthread_barrier_wait(&done);
	for (i = 0; i < nreaders; i++)
		pthread_join(rt[i], NULL);
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&done);
	if (!idle)
		check_bad(ops, r, nreaders);
	return (double)el / 1e3 / (double)n;
}

static void bench_sync(unsigned nreaders, int idle)
{
	double us[N_FLAVOURS][MAX_RUNS];
	char name[128];
	unsigned run;
	size_t f;

	for (run = 0; run < g_runs; run++)
		for (f = 0; f < g_nfl; f++)
			us[f][run] = sync_run(g_fl[f], nreaders, idle);
	for (f = 0; f < g_nfl; f++) {
		snprintf(name, sizeof(name), "rcu_sync_%s_%u%s",
			 g_fl[f]->name, nreaders, idle ? "idle" : "busy");
		report(name, us[f], g_runs, "us");
	}
}

/* ---- the publish path's own costs (issue 11 item 5) -------------------- */

/*
 * --only defer: what a writer pays per publish besides the snapshot, with
 * N = 1, 2, 4 threads doing it at once (the engine has one writer thread
 * per writer, and threads closing views also give chunk buffers back):
 *   rcu_defer_Nthr          ns per mix_rcu_defer (the caller's CPU time;
 *                           the reclaim thread runs the grace periods and
 *                           the calls meanwhile, as in the engine)
 *   rcu_defer_p999_Nthr     the 99.9th percentile and the maximum of one
 *   rcu_defer_max_Nthr      call's wall time, clock reads included (a
 *                           lock holder preempted shows here)
 *   bufcache_getput_Nthr    ns per mix_bufcache_put + mix_bufcache_get
 *                           pair of one chunk-sized buffer
 * and, in the same run, what the primitives cost on this machine:
 *   ref_mutex_pair          an uncontended pthread_mutex lock + unlock
 *   ref_cas                 one uncontended seq_cst compare-and-swap
 * Each thread defers DEFER_POOL calls, then waits in mix_rcu_barrier
 * (not timed) so that its heads can be reused.
 */
#define DEFER_POOL 4096
#define DEFER_MAX_THREADS 4
#define BUF_SIZE (1024 * 64)   /* a chunk of 1024 records of 64 bytes */

struct dworker {
	pthread_barrier_t *start;
	atomic_int *stop;
	int bufcache;                  /* 1: get/put, 0: defer */
	uint64_t calls, cpu_ns, misses;
	uint64_t *lat;                 /* DEFER_POOL per round, kept: last */
	uint64_t lat_n;
	double p999, max;
};

static atomic_uint_fast64_t g_deferred_ran;

static void bench_defer_cb(struct mix_rcu_head *h)
{
	(void)h;
	atomic_fetch_add_explicit(&g_deferred_ran, 1, memory_order_relaxed);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void *defer_main(void *arg)
{
	struct dworker *w = arg;
	struct mix_rcu_head *pool = calloc(DEFER_POOL, sizeof(*pool));
	uint64_t cpu = 0, i, t0, t1;

	if (!pool)
		st_die("bench-rcu: out of memory");
	mix_rcu_read_lock();   /* register before the clock starts */
	mix_rcu_read_unlock();
	pthread_barrier_wait(w->start);
	while (!atomic_load(w->stop)) {
		uint64_t c0 = thread_cpu_ns();
		t0 = st_now_ns();
		for (i = 0; i < DEFER_POOL; i++) {
			mix_rcu_defer(&pool[i], bench_defer_cb);
			t1 = st_now_ns();
			w->lat[w->lat_n++ % (DEFER_POOL * 64)] = t1 - t0;
			t0 = t1;
		}
		cpu += thread_cpu_ns() - c0;
		w->calls += DEFER_POOL;
		mix_rcu_barrier();
	}
	w->cpu_ns = cpu;
	free(pool);
	return NULL;
}

static void *bufcache_main(void *arg)
{
	struct dworker *w = arg;
	void *p = malloc(BUF_SIZE);
	uint64_t c0;

	if (!p)
		st_die("bench-rcu: out of memory");
	pthread_barrier_wait(w->start);
	c0 = thread_cpu_ns();
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		for (int i = 0; i < 256; i++) {
			if (!mix_bufcache_put(p, BUF_SIZE))
				free(p);
			p = mix_bufcache_get(BUF_SIZE);
			if (!p) {
				w->misses++;
				if (!(p = malloc(BUF_SIZE)))
					st_die("bench-rcu: out of memory");
			}
		}
		w->calls += 256;
	}
	w->cpu_ns = thread_cpu_ns() - c0;
	free(p);
	return NULL;
}

/* One run: ns per call per thread (CPU time), and the latency figures of
 * the defer runs in *p999_r / *max_r (ns). */
static double defer_run(unsigned n, int bufcache, double *p999_r,
			double *max_r, double *miss_r)
{
	pthread_t t[DEFER_MAX_THREADS];
	struct dworker w[DEFER_MAX_THREADS];
	pthread_barrier_t start;
	atomic_int stop = 0;
	double ns = 0, p999 = 0, max = 0;
	uint64_t misses = 0, calls = 0;
	unsigned i;

	pthread_barrier_init(&start, NULL, n + 1);
	for (i = 0; i < n; i++) {
		w[i] = (struct dworker){ .start = &start, .stop = &stop,
					 .bufcache = bufcache };
		if (!bufcache && !(w[i].lat = malloc(DEFER_POOL * 64 *
						     sizeof(uint64_t))))
			st_die("bench-rcu: out of memory");
		spawn(&t[i], bufcache ? bufcache_main : defer_main, &w[i]);
	}
	pthread_barrier_wait(&start);
	sleep_secs(g_secs);
	atomic_store(&stop, 1);
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		ns += (double)w[i].cpu_ns / (double)w[i].calls;
		misses += w[i].misses;
		calls += w[i].calls;
		if (!bufcache) {
			uint64_t k = w[i].lat_n < DEFER_POOL * 64 ?
				w[i].lat_n : DEFER_POOL * 64;
			qsort(w[i].lat, k, sizeof(uint64_t), cmp_u64);
			if (k && (double)w[i].lat[k * 999 / 1000] > p999)
				p999 = (double)w[i].lat[k * 999 / 1000];
			if (k && (double)w[i].lat[k - 1] > max)
				max = (double)w[i].lat[k - 1];
			free(w[i].lat);
		}
	}
	pthread_barrier_destroy(&start);
	mix_rcu_barrier();
	*p999_r = p999;
	*max_r = max;
	*miss_r = calls ? (double)misses / (double)calls : 0;
	return ns / n;
}

static double ref_mutex(void)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	uint64_t c0 = thread_cpu_ns(), i, n = 1000000;
	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&m);
		__asm__ __volatile__("" ::: "memory");
		pthread_mutex_unlock(&m);
	}
	return (double)(thread_cpu_ns() - c0) / (double)n;
}

static double ref_cas(void)
{
	static uint64_t word;
	uint64_t c0 = thread_cpu_ns(), i, n = 1000000;
	for (i = 0; i < n; i++) {
		uint64_t old = __atomic_load_n(&word, __ATOMIC_RELAXED);
		__atomic_compare_exchange_n(&word, &old, old + 1, 0,
					    __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED);
	}
	return (double)(thread_cpu_ns() - c0) / (double)n;
}

static void bench_defer(void)
{
	static const unsigned nthr[] = { 1, 2, 4 };
	double ns[3][MAX_RUNS], p999[3][MAX_RUNS], mx[3][MAX_RUNS];
	double bc[3][MAX_RUNS], miss[3][MAX_RUNS], rm[MAX_RUNS], rc[MAX_RUNS];
	double dummy, dummy2;
	char name[128];
	unsigned run, k;

	for (run = 0; run < g_runs; run++) {
		rm[run] = ref_mutex();
		rc[run] = ref_cas();
		for (k = 0; k < 3; k++) {
			ns[k][run] = defer_run(nthr[k], 0, &p999[k][run],
					       &mx[k][run], &dummy);
			bc[k][run] = defer_run(nthr[k], 1, &dummy, &dummy2,
					       &miss[k][run]);
		}
	}
	report("ref_mutex_pair", rm, g_runs, "ns");
	report("ref_cas", rc, g_runs, "ns");
	for (k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "rcu_defer_%uthr", nthr[k]);
		report(name, ns[k], g_runs, "ns");
		snprintf(name, sizeof(name), "rcu_defer_p999_%uthr", nthr[k]);
		report(name, p999[k], g_runs, "ns");
		snprintf(name, sizeof(name), "rcu_defer_max_%uthr", nthr[k]);
		report(name, mx[k], g_runs, "ns");
	}
	for (k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "bufcache_getput_%uthr", nthr[k]);
		report(name, bc[k], g_runs, "ns");
		printf("#   gets that found nothing, median: %.4f\n",
		       st_median(miss[k], g_runs));
	}
	printf("# deferred calls run: %llu\n", (unsigned long long)
	       atomic_load(&g_deferred_ran));
}

/* ---- callgrind ---------------------------------------------------------- */

static __attribute__((noinline)) void brcu_cg_baseline(uint64_t n)
{
	uint64_t i;
	for (i = 0; i < n; i++)
		__asm__ __volatile__("" ::: "memory");
}

struct cg_arg {
	const struct brcu_ops *ops;
	uint64_t n;
};

/* Each flavour in a thread of its own: mix and memb share urcu-memb's
 * registration, which a thread may do only once. */
static void *cg_main(void *arg)
{
	struct cg_arg *a = arg;
	a->ops->thread_begin();
	a->ops->cg_empty(a->n);
	a->ops->cg_deref(a->n);
	a->ops->thread_end();
	return NULL;
}

static void run_callgrind(uint64_t n)
{
	struct cg_arg a;
	pthread_t t;
	size_t f;

	brcu_cg_baseline(n);
	for (f = 0; f < g_nfl; f++) {
		a = (struct cg_arg){ g_fl[f], n };
		spawn(&t, cg_main, &a);
		pthread_join(t, NULL);
	}
	printf("# bench-rcu --callgrind: %" PRIu64 " sections per function; "
	       "divide brcu_*_cg_* inclusive Ir by that\n", n);
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out, "usage: bench-rcu [--runs N] [--secs S] [--quick] "
		"[--flavour memb|mix|bp|qsbr] [--only read|sync|defer] "
		"[--callgrind N]\n");
}

static void print_params(void)
{
	size_t f;
	int m;

	printf("# bench-rcu: %u runs of %.2f s per figure (median), flavours "
	       "interleaved; %ld CPUs online; section loops of %d between "
	       "stop checks (qsbr: one quiescent state each); writer backlog "
	       "%d frees\n", g_runs, g_secs, sysconf(_SC_NPROCESSORS_ONLN),
	       BRCU_CHUNK, BRCU_BACKLOG);
	for (f = 0; f < g_nfl; f++) {
		m = g_fl[f]->has_membarrier();
		printf("# %s: read side %s\n", g_fl[f]->name,
		       m < 0 ? "has no fence to drop" :
		       m ? "uses sys_membarrier (compiler barriers only)" :
		       "falls back to fences (no sys_membarrier)");
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "secs", required_argument, NULL, 's' },
		{ "quick", no_argument, NULL, 'q' },
		{ "flavour", required_argument, NULL, 'f' },
		{ "only", required_argument, NULL, 'o' },
		{ "callgrind", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *only = NULL, *flavour = NULL;
	uint64_t cg = 0, t0 = st_now_ns();
	size_t f;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			g_runs = (unsigned)st_opt_u64("runs", optarg, 1,
						      MAX_RUNS);
			break;
		case 's': g_secs = st_opt_secs("secs", optarg, 0.01, 60); break;
		case 'q': g_runs = 3; g_secs = 0.1; break;
		case 'f': flavour = optarg; break;
		case 'o': only = optarg; break;
		case 'c':
			cg = st_opt_u64("callgrind", optarg, 1, UINT64_MAX);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || (only && strcmp(only, "read") &&
			      strcmp(only, "sync") && strcmp(only, "defer"))) {
		usage(stderr);
		return 2;
	}
	for (f = 0; f < N_FLAVOURS; f++)
		if (!flavour || !strcmp(flavour, g_all[f]->name))
			g_fl[g_nfl++] = g_all[f];
	if (!g_nfl) {
		usage(stderr);
		return 2;
	}
	for (f = 0; f < g_nfl; f++)
		g_fl[f]->setup();
	if (cg) {
		run_callgrind(cg);
	} else {
		print_params();
		if (!only || !strcmp(only, "read")) {
			bench_read(READ_EMPTY, 1, 0);
			bench_read(READ_EMPTY, 2, 0);
			bench_read(READ_DEREF, 1, 0);
			bench_read(READ_DEREF, 2, 0);
			bench_read(READ_EMPTY, 1, 1);
			bench_read(READ_EMPTY, 2, 1);
			bench_read(READ_DEREF, 1, 1);
			bench_read(READ_DEREF, 2, 1);
		}
		if (!only || !strcmp(only, "sync")) {
			bench_sync(2, 1);
			bench_sync(16, 1);
			bench_sync(2, 0);
			bench_sync(16, 0);
		}
		if (!only || !strcmp(only, "defer"))
			bench_defer();
	}
	for (f = 0; f < g_nfl; f++)
		g_fl[f]->teardown();
	printf("# bench-rcu: %.1f s\n", st_secs_since(t0));
	return 0;
}
#endif
