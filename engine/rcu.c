/*
 * RCU thread registration and deferred calls (see rcu.h).  Any thread that
 * calls into mix is registered on its first read-side section and
 * unregistered by a pthread key destructor when it exits, so users never
 * call liburcu.  The writer threads register explicitly at start.  And
 * the reclaim thread that runs deferred calls after grace periods.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "probes.h"
#include "rcu.h"

_Thread_local int mix_rcu_registered;
#ifdef MIX_TSAN
char mix_rcu_tsan_token;
#endif

static pthread_key_t rcu_key;
static pthread_once_t rcu_once = PTHREAD_ONCE_INIT;

static void rcu_thread_exit(void *arg)
{
	(void)arg;
	if (mix_rcu_registered) {
		urcu_memb_unregister_thread();
		mix_rcu_registered = 0;
	}
}

static void rcu_key_init(void)
{
	/* If this fails no thread can be unregistered at exit; liburcu then
	 * keeps a stale reader entry per exited thread, which is a leak but
	 * not a correctness problem: an unregistered-but-idle reader is never
	 * inside a section. */
	(void)pthread_key_create(&rcu_key, rcu_thread_exit);
}

void mix_rcu_register_slow(void)
{
	pthread_once(&rcu_once, rcu_key_init);
	urcu_memb_register_thread();
	mix_rcu_registered = 1;
	/* any non-NULL value makes the destructor run at thread exit */
	(void)pthread_setspecific(rcu_key, &mix_rcu_registered);
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
	uint64_t finished;        /* calls that have run (or were lost) */
	uint64_t inflight;        /* calls of the batch being run */
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
static pthread_once_t dq_once = PTHREAD_ONCE_INIT;

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
		dq.inflight = n;
		pthread_mutex_unlock(&dq.lock);

		urcu_memb_synchronize_rcu();
		/* ORDER(rcu-gp): the grace period is over; tell TSan */
		mix_rcu_gp_acquire();
		MIX_PROBE1(grace_period, n);
		for (; h; h = next) {
			next = h->next;
			h->fn(h);
		}

		pthread_mutex_lock(&dq.lock);
		dq.inflight = 0;
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

/* fork: the child has no reclaim thread.  Calls queued stay queued (the
 * child's next defer or barrier starts a thread for them); the batch the
 * parent's thread was running is lost to the child (its objects leak
 * there, they are not freed twice) and counted as finished so that a
 * barrier in the child does not wait for it. */
static void dq_prepare(void) { pthread_mutex_lock(&dq.lock); }
static void dq_parent(void) { pthread_mutex_unlock(&dq.lock); }
static void dq_child(void)
{
	dq.running = 0;
	dq.finished += dq.inflight;
	dq.inflight = 0;
	pthread_mutex_unlock(&dq.lock);
}

static void dq_init(void)
{
	pthread_condattr_t ca;
	/* the gathering timeout must not follow wall-clock jumps */
	if (pthread_condattr_init(&ca) == 0) {
		if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0) {
			pthread_cond_destroy(&dq.work);
			if (pthread_cond_init(&dq.work, &ca) == 0)
				dq.work_monotonic = 1;
			else
				pthread_cond_init(&dq.work, NULL);
		}
		pthread_condattr_destroy(&ca);
	}
	(void)pthread_atfork(dq_prepare, dq_parent, dq_child);
}

void mix_rcu_defer(struct mix_rcu_head *h, void (*fn)(struct mix_rcu_head *h))
{
	h->fn = fn;
	h->next = NULL;
	pthread_once(&dq_once, dq_init);
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
	urcu_memb_synchronize_rcu();
	mix_rcu_gp_acquire();
}

void mix_rcu_barrier(void)
{
	uint64_t target;
	pthread_once(&dq_once, dq_init);
	pthread_mutex_lock(&dq.lock);
	target = dq.queued;
	if (dq.finished < target && dq_start() < 0) {
		/* calls queued before a fork, and no thread can start: run
		 * them here */
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
