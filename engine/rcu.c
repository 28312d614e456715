/*
 * RCU thread registration, grace periods, deferred calls, and fork (see
 * rcu.h).  Any thread that calls into mix is registered on its first
 * read-side section and unregistered by a pthread key destructor when it
 * exits, so users never call liburcu.  The writer threads register
 * explicitly at start.  The reclaim thread "mix-reclaim" runs deferred
 * calls after grace periods.  docs/design.md "Fork and the reclaim
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
 * them.  So one pthread_atfork triple (mix_rcu_fork_*, registered by
 * fork.c, which calls it first) does this:
 *   prepare: take the fork gate exclusively — every synchronize_rcu,
 *            register and unregister holds it shared, so none is in
 *            progress and liburcu's locks are free and its registry
 *            whole — then the reclaim thread's lock (barriers, start);
 *   parent:  release both;
 *   child:   unlink from liburcu's registry every thread mix registered
 *            except the one that forked; give the gate, the registration
 *            lock and the reclaim queue fresh mutexes and condition
 *            variables; drop the parent's queued calls (they free the
 *            parent's snapshots, which the child must not touch and whose
 *            locks a parent thread may have held); no reclaim thread
 *            until the child's first deferred call.
 * Rule for callers (mix.h): fork outside any read-side section, since
 * prepare may wait for a grace period in progress.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* the per-thread reader slot (struct urcu_reader urcu_memb_reader), for
 * unlinking dead threads in a child; also included by rcu.h outside
 * TSan builds */
#include <urcu/list.h>
#include <urcu/static/urcu-memb.h>

#include "fork.h"
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
static struct rcu_thread rcu_threads = { &rcu_threads, &rcu_threads, NULL, 0 };
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
 * ORDER(gp-stall): the reclaim thread stamps each grace period it waits
 * for twice, at its start (start time, number) and at its end (0, same
 * number).  A stamp goes to the slot the readers are not told to read,
 * gp_slot[(gp_idx + 1) & 1], and then gp_idx moves to it (release): a
 * double buffer with one writer.  mix_rcu_gp_started reads gp_idx
 * (acquire), that slot, and gp_idx again.  The slot's fields are stored
 * with release and loaded with acquire (no fences: ThreadSanitizer does
 * not model them), so a reader that read any value of a newer stamp
 * also sees the gp_idx store that came before that stamp in the writer,
 * finds gp_idx moved, and reads again.  It retries only when the writer made progress in
 * between, never while the writer is preempted half-way (a seqlock's
 * odd count would make it spin then, and the writer path calls this):
 * lock-free.  So the time and the number belong to the same stamp.
 */
static struct {
	uint64_t start, num;      /* atomics */
} gp_slot[2];
static uint64_t gp_idx;       /* atomic; written by the reclaim thread */
static uint64_t gp_num;       /* grace periods stamped; reclaim thread */

static void gp_stamp(uint64_t start)
{
	uint64_t i = __atomic_load_n(&gp_idx, __ATOMIC_RELAXED) + 1;
	/* ORDER(gp-stall): release, so that the previous gp_idx store is
	 * seen by a reader that sees these */
	__atomic_store_n(&gp_slot[i & 1].start, start, __ATOMIC_RELEASE);
	__atomic_store_n(&gp_slot[i & 1].num, gp_num, __ATOMIC_RELEASE);
	/* ORDER(gp-stall): the slot is written before readers go to it */
	__atomic_store_n(&gp_idx, i, __ATOMIC_RELEASE);
}

uint64_t mix_rcu_gp_started(uint64_t *seq_r)
{
	uint64_t i, j, t, n;
	do {
		/* ORDER(gp-stall) */
		i = __atomic_load_n(&gp_idx, __ATOMIC_ACQUIRE);
		t = __atomic_load_n(&gp_slot[i & 1].start, __ATOMIC_ACQUIRE);
		n = __atomic_load_n(&gp_slot[i & 1].num, __ATOMIC_ACQUIRE);
		j = __atomic_load_n(&gp_idx, __ATOMIC_RELAXED);
	} while (i != j);
	if (seq_r)
		*seq_r = n;
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
 * The queue takes no lock (issue 11 item 5, docs/design.md "Locks on
 * the publish path"): mix_rcu_defer counts the call (dq.queued), pushes
 * it with a CAS on the list head (engine/intake.h, the writer's intake
 * pattern), and wakes the thread only when it sleeps (a futex on
 * dq.sleeping); the thread takes the whole list with one exchange and
 * reverses it, so calls still run in the order they were pushed.  The
 * mutex that remains (dq.lock) is for starting the thread, for
 * mix_rcu_barrier's waits and for fork, never taken per call.
 *
 * ORDER(rcu-defer): the push's CAS (release) publishes the caller's
 * writes before mix_rcu_defer, h->fn and h's container to the thread's
 * exchange (acquire) in mix_intake_take_all; TSan sees both.
 * ORDER(rcu-gp): the grace period starts after the batch was taken, so
 * every reader that could still see an object of the batch has left its
 * section before the call.
 * ORDER(dq-count): a call is counted in dq.queued before it is pushed,
 * so a barrier that reads dq.queued never misses a call whose
 * mix_rcu_defer returned; see mix_rcu_barrier for why a count taken
 * early (counted, not yet pushed) still ends.
 * ORDER(dq-wake): the pusher's seq_cst add to dq.queued and CAS on the
 * head come before its seq_cst load of dq.sleeping; the thread's
 * seq_cst store of dq.sleeping comes before its seq_cst re-check of the
 * head and of dq.queued (dq_idle, dq_gather).  In the single total order
 * one of the two sees the other (Dekker, as writer.c ORDER(wake)): the
 * thread does not sleep, or the pusher sees it asleep and wakes it.  The
 * waker moves dq.sleeping to DQ_AWAKE with a CAS before FUTEX_WAKE, so
 * a futex_wait that comes after the CAS returns at once (the word is no
 * longer the value it waits on) and one wake-up per sleep is made.
 */
#define DQ_BATCH 64
#define DQ_DELAY_NS 2000000 /* 2 ms */

/* dq.sleeping: what the reclaim thread is waiting for */
enum {
	DQ_AWAKE = 0,   /* running, or woken */
	DQ_IDLE = 1,    /* the queue to become non-empty */
	DQ_GATHER = 2,  /* DQ_BATCH calls, a barrier, or the delay's end */
};

static struct {
	struct mix_intake q;      /* pushed calls (head atomic) */
	uint64_t queued;          /* calls ever counted; atomic */
	uint64_t taken;           /* calls the thread took; atomic, its own */
	uint32_t sleeping;        /* DQ_*; futex word; atomic */
	uint32_t urgent;          /* threads waiting in mix_rcu_barrier */
	int running;              /* the thread exists here; atomic */
	pthread_mutex_t lock;     /* dq_start, finished, barrier waits */
	pthread_cond_t done;      /* broadcast when a batch has run */
	uint64_t finished;        /* calls that have run; under lock */
} dq = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
};

static void dq_futex_wait(uint32_t val, const struct timespec *rel)
{
	syscall(SYS_futex, &dq.sleeping, FUTEX_WAIT_PRIVATE, val, rel,
		NULL, 0);
}

/* Wake the thread if it still waits in state s (ORDER(dq-wake)). */
static void dq_wake(uint32_t s)
{
	if (__atomic_compare_exchange_n(&dq.sleeping, &s, DQ_AWAKE, 0,
					__ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		syscall(SYS_futex, &dq.sleeping, FUTEX_WAKE_PRIVATE, 1, NULL,
			NULL, 0);
}

/* The thread: sleep until the queue is not empty. */
static void dq_idle(void)
{
	for (;;) {
		/* ORDER(dq-wake): the store, then the re-check */
		__atomic_store_n(&dq.sleeping, DQ_IDLE, __ATOMIC_SEQ_CST);
		if (!mix_intake_empty(&dq.q))
			break;
		dq_futex_wait(DQ_IDLE, NULL);
	}
	__atomic_store_n(&dq.sleeping, DQ_AWAKE, __ATOMIC_SEQ_CST);
}

/* The thread: let a batch gather, until DQ_BATCH calls are counted
 * past the last batch, a barrier waits, or DQ_DELAY_NS have passed. */
static void dq_gather(uint64_t taken)
{
	uint64_t deadline = mix_now_ns() + DQ_DELAY_NS, now;
	for (;;) {
		struct timespec rel;
		/* ORDER(dq-wake): the store, then the re-checks */
		__atomic_store_n(&dq.sleeping, DQ_GATHER, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&dq.queued, __ATOMIC_SEQ_CST) - taken >=
			    DQ_BATCH ||
		    __atomic_load_n(&dq.urgent, __ATOMIC_SEQ_CST) ||
		    (now = mix_now_ns()) >= deadline)
			break;
		rel.tv_sec = 0;
		rel.tv_nsec = (long)(deadline - now);
		dq_futex_wait(DQ_GATHER, &rel);
	}
	__atomic_store_n(&dq.sleeping, DQ_AWAKE, __ATOMIC_SEQ_CST);
}

static void *defer_thread(void *arg)
{
	uint64_t taken = 0;
	(void)arg;
	(void)pthread_setname_np(pthread_self(), "mix-reclaim");
	for (;;) {
		struct mix_rcu_head *h, *next;
		uint64_t n = 0;
		dq_idle();
		dq_gather(taken);
		/* ORDER(rcu-defer): acquire what the pushers wrote */
		h = (struct mix_rcu_head *)mix_intake_take_all(&dq.q);
		for (next = h; next; next = (struct mix_rcu_head *)next->node.next)
			n++;
		taken += n;
		/* relaxed: only the batch trigger of dq_gather's pushers
		 * reads it, and a stale value only makes them wake the
		 * thread a batch early */
		__atomic_store_n(&dq.taken, taken, __ATOMIC_RELAXED);

		/* a fork from here to the lock below leaves this batch to
		 * the parent: the child drops its copy (fork_child) */
		gp_num++;
		gp_stamp(mix_now_ns() | 1);   /* never 0 while one runs */
		gp_wait();
		gp_stamp(0);
		/* ORDER(rcu-gp): the grace period is over; tell TSan */
		mix_rcu_gp_acquire();
		MIX_PROBE1(grace_period, n);
		for (; h; h = next) {
			next = (struct mix_rcu_head *)h->node.next;
			h->fn(h);
		}

		pthread_mutex_lock(&dq.lock);
		dq.finished += n;
		pthread_cond_broadcast(&dq.done);
		pthread_mutex_unlock(&dq.lock);
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
	/* ORDER(dq-running): pairs with mix_rcu_defer's acquire load, which
	 * then pushes without the lock */
	__atomic_store_n(&dq.running, 1, __ATOMIC_RELEASE);
	return 0;
}

/* ---- fork ------------------------------------------------------------------ */

/* ORDER(fork-gate), then dq.lock (and then, fork.c, the registry's and
 * the buffer cache's locks): the gate first, because a grace
 * period in progress holds the gate shared and waits for readers, and a
 * reader inside its section may be about to take dq.lock (mix_rcu_defer
 * starting the thread, or a barrier); the other order could wait for
 * that reader forever.  The lock-free queue needs nothing here: the
 * child empties it. */
void mix_rcu_fork_prepare(void)
{
	pthread_rwlock_wrlock(&fork_gate);
	pthread_mutex_lock(&dq.lock);
}

void mix_rcu_fork_parent(void)
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
 * on it can block forever).  The parent's queued, half-pushed (counted
 * by a thread that does not exist here) and in-flight calls
 * are dropped: they free the parent's snapshots, which the child may
 * not use (mix.h), under locks a parent thread may have held at the
 * fork; their memory stays allocated in the child, freed by neither
 * process twice.  No reclaim thread until the child's first deferred
 * call (dq_start). */
void mix_rcu_fork_child(void)
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
	pthread_cond_init(&dq.done, NULL);
	dq.q.head = NULL;
	dq.queued = dq.taken = dq.finished = 0;
	dq.sleeping = DQ_AWAKE;
	dq.urgent = 0;
	dq.running = 0;
	/* the parent's reclaim thread may have been in a grace period or
	 * half-way through a stamp: the child has neither; numbers go on */
	gp_slot[0].start = gp_slot[1].start = 0;
	gp_slot[0].num = gp_slot[1].num = gp_num;
}

/* At load, before any thread of ours exists: the key that unregisters
 * exiting threads, and the fork handlers (fork.c: the handlers above
 * with the other modules', in one fixed order). */
__attribute__((constructor)) static void rcu_setup(void)
{
	rcu_key_ok = pthread_key_create(&rcu_key, rcu_thread_exit) == 0;
	mix_fork_setup();
}

/* ---- the calls --------------------------------------------------------- */

/* First call in this process (or in a child after fork): start the
 * thread.  0 or -errno. */
static int dq_ensure_started(void)
{
	int ret;
	pthread_mutex_lock(&dq.lock);
	ret = dq_start();
	pthread_mutex_unlock(&dq.lock);
	return ret;
}

void mix_rcu_defer(struct mix_rcu_head *h, void (*fn)(struct mix_rcu_head *h))
{
	uint64_t q;
	uint32_t s;
	h->fn = fn;
	/* ORDER(dq-running) */
	if (caa_unlikely(!__atomic_load_n(&dq.running, __ATOMIC_ACQUIRE)) &&
	    dq_ensure_started() < 0) {
		/* no thread: wait for the grace period here */
		mix_rcu_synchronize();
		fn(h);
		return;
	}
	/* ORDER(dq-count): counted, then pushed */
	q = __atomic_add_fetch(&dq.queued, 1, __ATOMIC_SEQ_CST);
	/* ORDER(rcu-defer), ORDER(dq-wake): a seq_cst CAS */
	mix_intake_push(&dq.q, &h->node);
	/* ORDER(dq-wake): wake the thread to start a batch, and when the
	 * batch is full */
	s = __atomic_load_n(&dq.sleeping, __ATOMIC_SEQ_CST);
	if (s == DQ_IDLE ||
	    (s == DQ_GATHER &&
	     q - __atomic_load_n(&dq.taken, __ATOMIC_RELAXED) >= DQ_BATCH))
		dq_wake(s);
}

void mix_rcu_synchronize(void)
{
	gp_wait();
	mix_rcu_gp_acquire();
}

/*
 * Wait until dq.finished reaches the count of calls queued now.  Calls
 * are counted before they are pushed (ORDER(dq-count)), so the target
 * covers every call whose mix_rcu_defer returned, and maybe some still
 * being pushed, which the thread takes when they land (the pusher wakes
 * it).  dq.finished counts whole batches, and a batch holds only calls
 * pushed before it was taken: while a call C counted in the target has
 * not run, every finished batch was taken before C was pushed, so all
 * its calls were counted before C was, i.e. before the target was read:
 * finished < target.  So finished >= target means every call counted in
 * it has run.
 */
void mix_rcu_barrier(void)
{
	uint64_t target;
	pthread_mutex_lock(&dq.lock);
	target = __atomic_load_n(&dq.queued, __ATOMIC_SEQ_CST);
	if (dq.finished < target) {
		/* no gathering while someone waits; ORDER(dq-wake): the
		 * add, then the CAS in dq_wake, against dq_gather's store
		 * then load of urgent */
		__atomic_add_fetch(&dq.urgent, 1, __ATOMIC_SEQ_CST);
		dq_wake(DQ_GATHER);
		while (dq.finished < target)
			pthread_cond_wait(&dq.done, &dq.lock);
		__atomic_sub_fetch(&dq.urgent, 1, __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&dq.lock);
}
