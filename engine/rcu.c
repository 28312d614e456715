/*
 * RCU thread registration, grace periods, deferred calls, and fork (see
 * rcu.h).  Any thread that calls into mix is registered on its first
 * read-side section and unregistered by a pthread key destructor when it
 * exits, so users never call liburcu.  The writer threads register
 * explicitly at start.  The reclaim thread "mix-reclaim" runs deferred
 * calls after grace periods.  docs/design.md §"Fork and the reclaim
 * thread".
 *
 * fork(): liburcu 0.13's urcu-memb has no before/after-fork hooks (only
 * urcu-bp and the call_rcu threads have them), and a child of a
 * multi-threaded process used to inherit (a) rcu_gp_lock and
 * rcu_registry_lock held by a thread inside synchronize_rcu, (b) the
 * registry entries of threads that do not exist in the child — one that
 * was inside a read-side section at the fork holds every grace period of
 * the child forever, and its entry lives in that thread's TLS, which
 * glibc reuses for the child's next thread — and (c) the reclaim queue's
 * mutex and condition variables with the parent's waiters counted in
 * them.  So one pthread_atfork triple (rcu_setup) does this:
 *   prepare: take the fork gate exclusively — every synchronize_rcu,
 *            register and unregister holds it shared, so none is in
 *            progress and liburcu's locks are free and its registry
 *            whole — then the reclaim queue's lock;
 *   parent:  release both;
 *   child:   unlink from liburcu's registry every thread mix registered
 *            except the one that forked; give the gate, the registration
 *            lock and the reclaim queue fresh mutexes and condition
 *            variables; drop the parent's queued calls (they free the
 *            parent's snapshots, which the child must not touch and whose
 *            locks a parent thread may have held); no reclaim thread
 *            until the child's first deferred call or barrier.
 * Rule for callers (mix.h): fork outside any read-side section, since
 * prepare may wait for a grace period in progress.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* the per-thread reader slot (struct urcu_reader urcu_memb_reader), for
 * unlinking dead threads in a child; also included by rcu.h outside
 * TSan builds */
#include <urcu/list.h>
#include <urcu/static/urcu-memb.h>

#include "probes.h"
#include "rcu.h"
#include "stats.h"

_Thread_local int mix_rcu_registered;
#ifdef MIX_TSAN
char mix_rcu_tsan_token;
#endif

static pthread_key_t rcu_key;
static int rcu_key_ok;

/* ---- the fork gate and the registered threads ------------------------- */

/*
 * ORDER(fork-gate): urcu_memb_synchronize_rcu, _register_thread and
 * _unregister_thread run with fork_gate held shared (gp_wait,
 * mix_rcu_register_slow, rcu_thread_exit); fork_prepare takes it
 * exclusively, so when fork() copies the process no thread is inside
 * one of them: rcu_gp_lock and rcu_registry_lock are unlocked, the gp
 * futex is 0, no grace period has spliced the registry into its private
 * lists, and the rcu_threads list below matches liburcu's registry.
 * Writer-preferring, so a stream of grace periods cannot starve a fork.
 */
static pthread_rwlock_t fork_gate = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* Threads registered through mix, with their liburcu reader slots.
 * Changed under reg_lock inside the gate (shared); read by the child
 * handler, when no other thread exists. */
struct rcu_thread {
	struct rcu_thread *prev, *next;
	struct urcu_reader *reader;
	pid_t tid;               /* gettid() at registration */
};
static _Thread_local struct rcu_thread rcu_self;
static struct rcu_thread rcu_threads = { &rcu_threads, &rcu_threads, NULL };
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static void gate_init(void)
{
	pthread_rwlockattr_t a;
	if (pthread_rwlockattr_init(&a) == 0) {
		(void)pthread_rwlockattr_setkind_np(&a,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		(void)pthread_rwlock_init(&fork_gate, &a);
		pthread_rwlockattr_destroy(&a);
	} else {
		(void)pthread_rwlock_init(&fork_gate, NULL);
	}
}

static void rcu_thread_exit(void *arg)
{
	(void)arg;
	if (mix_rcu_registered) {
		pthread_rwlock_rdlock(&fork_gate);
		urcu_memb_unregister_thread();
		pthread_mutex_lock(&reg_lock);
		rcu_self.prev->next = rcu_self.next;
		rcu_self.next->prev = rcu_self.prev;
		rcu_self.prev = rcu_self.next = NULL;
		pthread_mutex_unlock(&reg_lock);
		pthread_rwlock_unlock(&fork_gate);
		mix_rcu_registered = 0;
	}
}

void mix_rcu_register_slow(void)
{
	pthread_rwlock_rdlock(&fork_gate);
	urcu_memb_register_thread();
	pthread_mutex_lock(&reg_lock);
	rcu_self.reader = &URCU_TLS(urcu_memb_reader);
	rcu_self.tid = gettid();
	rcu_self.next = &rcu_threads;
	rcu_self.prev = rcu_threads.prev;
	rcu_threads.prev->next = &rcu_self;
	rcu_threads.prev = &rcu_self;
	pthread_mutex_unlock(&reg_lock);
	pthread_rwlock_unlock(&fork_gate);
	mix_rcu_registered = 1;
	/* any non-NULL value makes the destructor run at thread exit.
	 * pthread_key_create fails only when PTHREAD_KEYS_MAX keys exist;
	 * then threads stay registered when they exit (as liburcu's own
	 * users who forget rcu_unregister_thread do). */
	if (rcu_key_ok)
		(void)pthread_setspecific(rcu_key, &mix_rcu_registered);
}

/* A grace period (urcu_memb_synchronize_rcu) inside the fork gate. */
static void gp_wait(void)
{
	/* ORDER(fork-gate): no fork while liburcu's locks are held */
	pthread_rwlock_rdlock(&fork_gate);
	urcu_memb_synchronize_rcu();
	pthread_rwlock_unlock(&fork_gate);
}

/* ---- grace-period stall diagnostics ------------------------------------- */

/*
 * ORDER(gp-stall): the reclaim thread, around each grace period it waits
 * for, bumps gp_seq to odd, stores gp_start, bumps gp_seq to even
 * (gp_begin), and at the end stores gp_start = 0 inside the same kind of
 * odd/even bracket (gp_end): a seqlock with one writer.  mix_rcu_gp_started
 * retries until it read gp_start between two equal even values of
 * gp_seq, so the time and the number it returns belong to the same grace
 * period.  All seq_cst: diagnostics, a few times per batch, not per call.
 * The number reported is gp_seq / 4 + 1 while a grace period runs.
 */
static uint64_t gp_seq, gp_start;

static void gp_stamp(uint64_t start)
{
	__atomic_add_fetch(&gp_seq, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&gp_start, start, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&gp_seq, 1, __ATOMIC_SEQ_CST);
}

uint64_t mix_rcu_gp_started(uint64_t *seq_r)
{
	uint64_t s1, s2, t;
	do {
		s1 = __atomic_load_n(&gp_seq, __ATOMIC_SEQ_CST);
		t = __atomic_load_n(&gp_start, __ATOMIC_SEQ_CST);
		s2 = __atomic_load_n(&gp_seq, __ATOMIC_SEQ_CST);
	} while (s1 != s2 || (s1 & 1));
	if (seq_r)
		*seq_r = s1 / 4 + (t != 0);
	return t;
}

unsigned mix_rcu_readers_inside(pid_t *tids, unsigned max)
{
	struct rcu_thread *t;
	unsigned n = 0;
	pthread_mutex_lock(&reg_lock);
	for (t = rcu_threads.next; t != &rcu_threads; t = t->next) {
		/* the reader's own slot, written by its read lock/unlock:
		 * relaxed, a snapshot of the moment */
		unsigned long ctr = __atomic_load_n(&t->reader->ctr,
						    __ATOMIC_RELAXED);
		if (!(ctr & URCU_GP_CTR_NEST_MASK))
			continue;
		if (n < max && tids)
			tids[n] = t->tid;
		n++;
	}
	pthread_mutex_unlock(&reg_lock);
	return n;
}

/* ---- deferred calls ------------------------------------------------------ */

/*
 * Deferred calls run on one reclaim thread per process, not on liburcu's
 * call_rcu thread: that one sleeps 10 ms after every batch of callbacks
 * (poll(NULL, 0, 10) in urcu-call-rcu-impl.h, 0.13), so under a steady
 * stream of publishes snapshots were freed in 10 ms waves, and a writer
 * that bounds its backlog of unfreed snapshots (index-commit.c) stalled
 * for up to 10 ms per wave: 25 k publishes/s at most and a 10 ms p99.9
 * commit latency (docs/benchmarks.md).  This thread takes what is
 * queued once DQ_BATCH calls are waiting, DQ_DELAY_NS after the first of
 * them, or at once when someone waits in mix_rcu_barrier; waits for one
 * grace period; runs the batch.  Batching keeps the cost per deferred
 * call low (one wake-up and one grace period, i.e. one membarrier, per
 * batch, not per publish); the delay bounds how long memory waits.
 *
 * ORDER(rcu-defer): the queue is under dq.lock, so a caller's writes
 * before mix_rcu_defer happen before the call (mutex release/acquire;
 * TSan sees it).  ORDER(rcu-gp): the grace period starts after the batch
 * was taken, so every reader that could still see an object of the batch
 * has left its section before the call.
 */
#define DQ_BATCH 64
#define DQ_DELAY_NS 2000000 /* 2 ms */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* signalled when a call is queued */
	pthread_cond_t done;      /* broadcast when a batch has run */
	struct mix_rcu_head *head, **tail;
	uint64_t queued;          /* calls ever queued */
	uint64_t finished;        /* calls that have run */
	uint32_t qlen;            /* calls queued, not yet taken */
	uint32_t urgent;          /* threads waiting in mix_rcu_barrier */
	int running;              /* the thread exists in this process */
	int work_monotonic;       /* work's clock is CLOCK_MONOTONIC */
} dq = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.tail = &dq.head,
};

static void *defer_thread(void *arg)
{
	(void)arg;
	(void)pthread_setname_np(pthread_self(), "mix-reclaim");
	pthread_mutex_lock(&dq.lock);
	for (;;) {
		struct mix_rcu_head *h, *next;
		uint64_t n = 0;
		while (!dq.head)
			pthread_cond_wait(&dq.work, &dq.lock);
		if (dq.qlen < DQ_BATCH && !dq.urgent) {
			/* let a batch gather, for at most DQ_DELAY_NS */
			struct timespec ts;
			clock_gettime(dq.work_monotonic ? CLOCK_MONOTONIC
							: CLOCK_REALTIME, &ts);
			ts.tv_nsec += DQ_DELAY_NS;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			while (dq.qlen < DQ_BATCH && !dq.urgent &&
			       pthread_cond_timedwait(&dq.work, &dq.lock,
						      &ts) == 0)
				;
		}
		h = dq.head;
		dq.head = NULL;
		dq.tail = &dq.head;
		dq.qlen = 0;
		for (next = h; next; next = next->next)
			n++;
		pthread_mutex_unlock(&dq.lock);

		/* a fork from here to the re-lock below leaves this batch
		 * to the parent: the child drops its copy (fork_child) */
		gp_stamp(mix_now_ns() | 1);   /* never 0 while one runs */
		gp_wait();
		gp_stamp(0);
		/* ORDER(rcu-gp): the grace period is over; tell TSan */
		mix_rcu_gp_acquire();
		MIX_PROBE1(grace_period, n);
		for (; h; h = next) {
			next = h->next;
			h->fn(h);
		}

		pthread_mutex_lock(&dq.lock);
		dq.finished += n;
		pthread_cond_broadcast(&dq.done);
	}
	return NULL;
}

/* Start the thread if this process has none (first call, or in a child
 * after fork).  Called with dq.lock held; 0 or -errno. */
static int dq_start(void)
{
	pthread_attr_t a;
	pthread_t tid;
	int ret;
	if (dq.running)
		return 0;
	if ((ret = pthread_attr_init(&a)) != 0)
		return -ret;
	(void)pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&tid, &a, defer_thread, NULL);
	pthread_attr_destroy(&a);
	if (ret != 0)
		return -ret;
	dq.running = 1;
	return 0;
}

/* dq.work on CLOCK_MONOTONIC: the gathering timeout must not follow
 * wall-clock jumps.  Falls back to the default clock. */
static void dq_work_init(void)
{
	pthread_condattr_t ca;
	dq.work_monotonic = 0;
	if (pthread_condattr_init(&ca) == 0) {
		if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
		    pthread_cond_init(&dq.work, &ca) == 0)
			dq.work_monotonic = 1;
		pthread_condattr_destroy(&ca);
	}
	if (!dq.work_monotonic)
		pthread_cond_init(&dq.work, NULL);
}

/* ---- fork ------------------------------------------------------------------ */

/* ORDER(fork-gate) then ORDER(rcu-defer): the gate first, because a
 * grace period in progress holds the gate shared and waits for readers,
 * and a reader inside its section may be about to take dq.lock in
 * mix_rcu_defer; the other order could wait for that reader forever. */
static void fork_prepare(void)
{
	pthread_rwlock_wrlock(&fork_gate);
	pthread_mutex_lock(&dq.lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&dq.lock);
	pthread_rwlock_unlock(&fork_gate);
}

/* Only the forking thread exists.  Take every other registered thread
 * out of liburcu's registry: none of them runs here, a copy of one that
 * was inside a section would hold every grace period of the child, and
 * their slots are in TLS that glibc hands to the child's next threads.
 * The registry is whole and unlocked (ORDER(fork-gate)), so unlinking
 * is the same cds_list_del that urcu_memb_unregister_thread does. */
static void fork_child_prune(void)
{
	struct rcu_thread *t, *next;
	for (t = rcu_threads.next; t != &rcu_threads; t = next) {
		next = t->next;
		if (t != &rcu_self)
			cds_list_del(&t->reader->node);
	}
	rcu_threads.next = rcu_threads.prev = &rcu_threads;
	if (mix_rcu_registered) {
		rcu_self.tid = gettid();   /* the child's own */
		rcu_self.next = rcu_self.prev = &rcu_threads;
		rcu_threads.next = rcu_threads.prev = &rcu_self;
	}
}

/* The child: fresh locks and condition variables, never the parent's
 * (a copied condvar counts waiters that do not exist here, and a signal
 * on it can block forever).  The parent's queued and in-flight calls
 * are dropped: they free the parent's snapshots, which the child may
 * not use (mix.h), under locks a parent thread may have held at the
 * fork; their memory stays allocated in the child, freed by neither
 * process twice.  No reclaim thread until the child's first deferred
 * call or barrier (dq_start). */
static void fork_child(void)
{
	fork_child_prune();
	/* the two locks fork_prepare took are this thread's: release them
	 * before making them new, so that a checker (ThreadSanitizer) that
	 * follows lock states sees no initialisation of a held lock */
	pthread_mutex_unlock(&dq.lock);
	pthread_rwlock_unlock(&fork_gate);
	gate_init();
	pthread_mutex_init(&reg_lock, NULL);
	pthread_mutex_init(&dq.lock, NULL);
	dq_work_init();
	pthread_cond_init(&dq.done, NULL);
	dq.head = NULL;
	dq.tail = &dq.head;
	dq.queued = dq.finished = 0;
	dq.qlen = 0;
	dq.urgent = 0;
	dq.running = 0;
	/* the parent's reclaim thread may have been inside gp_stamp (odd
	 * gp_seq) or a grace period: the child has neither */
	gp_seq = (gp_seq + 3) & ~(uint64_t)3;
	gp_start = 0;
}

/* At load, before any thread of ours exists: the key that unregisters
 * exiting threads, dq.work's clock, and the fork handlers (registered
 * here rather than at first use so that no fork can find them half
 * set up). */
__attribute__((constructor)) static void rcu_setup(void)
{
	rcu_key_ok = pthread_key_create(&rcu_key, rcu_thread_exit) == 0;
	pthread_cond_destroy(&dq.work);
	dq_work_init();
	(void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- the calls --------------------------------------------------------- */

void mix_rcu_defer(struct mix_rcu_head *h, void (*fn)(struct mix_rcu_head *h))
{
	h->fn = fn;
	h->next = NULL;
	pthread_mutex_lock(&dq.lock);
	if (dq_start() < 0) {
		/* no thread: wait for the grace period here */
		pthread_mutex_unlock(&dq.lock);
		mix_rcu_synchronize();
		fn(h);
		return;
	}
	*dq.tail = h;
	dq.tail = &h->next;
	dq.queued++;
	/* wake the thread to start a batch, and when the batch is full */
	if (++dq.qlen == 1 || dq.qlen == DQ_BATCH)
		pthread_cond_signal(&dq.work);
	pthread_mutex_unlock(&dq.lock);
}

void mix_rcu_synchronize(void)
{
	gp_wait();
	mix_rcu_gp_acquire();
}

void mix_rcu_barrier(void)
{
	uint64_t target;
	pthread_mutex_lock(&dq.lock);
	target = dq.queued;
	if (dq.finished < target && dq_start() < 0) {
		/* calls queued, and no thread can start: run them here */
		struct mix_rcu_head *h = dq.head, *next;
		dq.head = NULL;
		dq.tail = &dq.head;
		dq.qlen = 0;
		pthread_mutex_unlock(&dq.lock);
		mix_rcu_synchronize();
		for (; h; h = next) {
			next = h->next;
			h->fn(h);
		}
		pthread_mutex_lock(&dq.lock);
		dq.finished = target;
	}
	if (dq.finished < target) {
		/* no gathering while someone waits */
		dq.urgent++;
		pthread_cond_signal(&dq.work);
		while (dq.finished < target)
			pthread_cond_wait(&dq.done, &dq.lock);
		dq.urgent--;
	}
	pthread_mutex_unlock(&dq.lock);
}
