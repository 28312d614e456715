/*
 * Writer threads (docs/design.md §3).  Each writer owns a set of indexes;
 * committers of those indexes enqueue transactions on its intake queue
 * (intake.h: lock-free push, the writer takes the whole queue at once).  A batch is everything spliced; it is split per index,
 * preserving each index's commit order, and each part is applied, written
 * with one write(), synced at most once and published as one snapshot by
 * mix_index_process_batch.
 *
 * Sleeping: an idle writer sets `sleeping`, re-checks the queue and waits
 * on `wake`.  A committer that enqueued checks `sleeping` after its
 * enqueue (both are seq_cst, so either the writer sees the new node or
 * the committer sees sleeping) and signals under the lock.
 *
 * Bound: `queued` counts transactions not yet completed; a committer that
 * would exceed queue_max waits on `space` (signalled after each batch).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "err.h"
#include "index.h"
#include "probes.h"
#include "txn.h"

void mix_writer_enqueue(struct mix_writer *w, struct mix_txn *t)
{
	uint32_t max = w->engine->cfg.queue_max;

	if (__atomic_add_fetch(&w->queued, 1, __ATOMIC_SEQ_CST) > max) {
		pthread_mutex_lock(&w->lock);
		__atomic_add_fetch(&w->space_waiters, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&w->queued, __ATOMIC_SEQ_CST) > max &&
		       !w->stop)
			pthread_cond_wait(&w->space, &w->lock);
		__atomic_sub_fetch(&w->space_waiters, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&w->lock);
	}
	t->enq_ns = mix_now_ns();
	MIX_PROBE1(commit_enqueue, t);
	/* ORDER(intake): the transaction is complete before it is linked;
	 * pairs with the acquire in mix_intake_take_all. */
	mix_intake_push(&w->intake, &t->node);
	/* ORDER(wake): seq_cst push-then-load here against the writer's
	 * seq_cst store of sleeping then re-check of the queue: one of the
	 * two sees the other (Dekker), so no wakeup is lost. */
	if (__atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&w->lock);
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
	}
}

/* Poll for new work this long before sleeping: a committer that commits
 * again right after its acknowledgement then finds the writer awake (no
 * futex round trip, ~50-100 us on a busy VM), while an idle writer still
 * sleeps after a few tens of microseconds.  Time, not a count of pause
 * instructions: pause costs 10 to 140 cycles depending on the CPU. */
#define WRITER_SPIN_NS 50000

/* Wait until the queue is non-empty or stop is set.  Returns 0 to go on,
 * 1 to exit. */
static int writer_sleep(struct mix_writer *w)
{
	uint64_t now = mix_now_ns(), end = now + WRITER_SPIN_NS;
	uint64_t yield_from = now + 2000;
	unsigned i;
	int stop;
	for (i = 0;; i++) {
		if (!mix_intake_empty(&w->intake))
			return 0;
		if (i % 32 == 31) {
			now = mix_now_ns();
			if (now > end)
				break;
			/* a committer that shares our CPU gets to run */
			if (now > yield_from)
				sched_yield();
		}
		caa_cpu_relax();
	}
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&w->sleeping, 1, __ATOMIC_SEQ_CST);
	while (mix_intake_empty(&w->intake) && !w->stop)
		pthread_cond_wait(&w->wake, &w->lock);
	__atomic_store_n(&w->sleeping, 0, __ATOMIC_SEQ_CST);
	stop = w->stop && mix_intake_empty(&w->intake);
	pthread_mutex_unlock(&w->lock);
	return stop;
}

/* One index's share of a batch. */
struct part {
	struct mix_index *idx;
	struct mix_txn **txns;
	uint32_t count, cap;
};

static int part_add(struct part **parts, uint32_t *nparts, uint32_t *cap,
		    struct mix_txn *t)
{
	uint32_t i;
	struct part *p = NULL;
	for (i = 0; i < *nparts; i++)
		if ((*parts)[i].idx == t->index) {
			p = &(*parts)[i];
			break;
		}
	if (!p) {
		if (*nparts == *cap) {
			uint32_t nc = *cap ? *cap * 2 : 8;
			struct part *n = realloc(*parts, nc * sizeof(*n));
			if (!n)
				return -ENOMEM;
			memset(n + *cap, 0, (nc - *cap) * sizeof(*n));
			*parts = n;
			*cap = nc;
		}
		/* the slot keeps its txns array from earlier batches: no
		 * allocation per batch once the writer has warmed up */
		p = &(*parts)[(*nparts)++];
		p->idx = t->index;
		p->count = 0;
	}
	if (p->count == p->cap) {
		uint32_t nc = p->cap ? p->cap * 2 : 16;
		struct mix_txn **n = realloc(p->txns, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->txns = n;
		p->cap = nc;
	}
	p->txns[p->count++] = t;
	return 0;
}

/* Group commit gathering: a batch that will fdatasync and is smaller
 * than the previous one waits up to this long for the committers of the
 * previous batch, who re-commit right after their acknowledgement; one
 * fdatasync then serves them all instead of two half batches alternating
 * (PostgreSQL's commit_delay, made adaptive). */
#define GATHER_NS 40000

/* Add the transactions of list to the parts; returns how many and
 * whether any asked for SYNC. */
static uint32_t take_list(struct mix_intake_node *node, struct part **parts,
			  uint32_t *nparts, uint32_t *cap, int *sync_r)
{
	struct mix_intake_node *next;
	uint32_t total = 0;
	for (; node; node = next) {
		struct mix_txn *t = caa_container_of(node, struct mix_txn,
						     node);
		next = node->next; /* t may be freed once completed */
		total++;
		*sync_r |= t->durability == MIX_DURABILITY_SYNC;
		if (part_add(parts, nparts, cap, t) < 0) {
			mix_err(-ENOMEM, "writer: out of memory");
			mix_txn_complete(t, -ENOMEM);
		}
	}
	return total;
}

/* Drain and process everything queued now.  Returns transactions done. */
static uint32_t writer_batch(struct mix_writer *w, struct part **parts,
			     uint32_t *cap)
{
	struct mix_intake_node *node;
	uint32_t nparts = 0, i, total = 0;
	int sync = 0;

	node = mix_intake_take_all(&w->intake);
	if (!node)
		return 0;
	total = take_list(node, parts, &nparts, cap, &sync);
	if (sync && total < w->last_batch) {
		uint64_t end = mix_now_ns() + GATHER_NS;
		while (total < w->last_batch && mix_now_ns() < end) {
			node = mix_intake_take_all(&w->intake);
			if (node)
				total += take_list(node, parts, &nparts, cap,
						   &sync);
			else
				caa_cpu_relax();
		}
	}
	w->last_batch = total;
	MIX_PROBE1(batch_start, total);
	{
		unsigned k = 31u - (unsigned)__builtin_clz(total);
		if (k >= MIX_BATCH_BUCKETS)
			k = MIX_BATCH_BUCKETS - 1;
		__atomic_store_n(&w->batch_hist[k],
				 __atomic_load_n(&w->batch_hist[k],
						 __ATOMIC_RELAXED) + 1,
				 __ATOMIC_RELAXED);
	}
	/* counted before the committers are acknowledged, so a committer
	 * that returned sees its commit in mix_engine_stats() */
	__atomic_add_fetch(&w->stat_txns, total, __ATOMIC_RELAXED);
	for (i = 0; i < nparts; i++) {
		struct part *p = &(*parts)[i];
		mix_index_process_batch(p->idx, p->txns, p->count);
	}
	return total;
}

static void *writer_main(void *arg)
{
	struct mix_writer *w = arg;
	struct part *parts = NULL;
	uint32_t cap = 0, done, i;
	char name[16];

	snprintf(name, sizeof(name), "mix-writer-%u", w->id);
	pthread_setname_np(pthread_self(), name);
	mix_rcu_thread_ensure();
	for (;;) {
		done = writer_batch(w, &parts, &cap);
		if (done) {
			__atomic_sub_fetch(&w->queued, done, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&w->space_waiters,
					    __ATOMIC_SEQ_CST)) {
				pthread_mutex_lock(&w->lock);
				pthread_cond_broadcast(&w->space);
				pthread_mutex_unlock(&w->lock);
			}
			continue;
		}
		if (writer_sleep(w))
			break;
	}
	for (i = 0; i < cap; i++)
		free(parts[i].txns);
	free(parts);
	return NULL;
}

int mix_writer_start(struct mix_engine *e, struct mix_writer *w, unsigned id)
{
	int ret;
	memset(w, 0, sizeof(*w));
	w->engine = e;
	w->id = id;
	if ((ret = pthread_mutex_init(&w->lock, NULL)) != 0 ||
	    (ret = pthread_cond_init(&w->wake, NULL)) != 0 ||
	    (ret = pthread_cond_init(&w->space, NULL)) != 0)
		return mix_err(-ret, "writer %u: init failed", id);
	ret = pthread_create(&w->thread, NULL, writer_main, w);
	if (ret != 0)
		return mix_err(-ret, "writer %u: pthread_create failed", id);
	w->started = 1;
	return 0;
}

void mix_writer_stop(struct mix_writer *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->wake);
	pthread_cond_broadcast(&w->space);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->space);
	w->started = 0;
}
