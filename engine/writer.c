/*
 * Writer threads and the writer role (docs/design.md "The write path").
 * Each writer owns a set of indexes; committers of those indexes enqueue
 * transactions on its intake queue (intake.h: lock-free push; the
 * applier takes the whole queue at once).  A batch is everything taken;
 * it is split per index, preserving each index's commit order, and each
 * part is applied, written with one write(), synced at most once and
 * published as one snapshot by mix_index_process_batch.
 *
 * The writer role: one thread at a time applies a writer's queue — the
 * one that holds `role`.  A committer that enqueued and finds the role
 * free takes it and applies the queue itself (its own transaction and
 * whatever others queued: group commit), so a commit on a busy machine
 * needs no second thread to be scheduled; the writer thread takes the
 * role for asynchronous commits, for work a committer left behind, and
 * for held batches that come due (index-commit.c "Coalescing").  The
 * invariants of a single writer stay: one applier per index at a time,
 * transactions applied in intake order, no lock on the read side.
 *
 * ORDER(role-wake): a holder that releases the role stores role = 0 and
 * then loads `sleeping`; the writer thread stores sleeping = 1 (under
 * lock) and then loads role and the queue.  All seq_cst, so either the
 * releaser sees the writer asleep and signals it (under the lock), or
 * the writer sees the role free and the work queued.  A committer's
 * push then CAS of the role against a holder's release then queue check
 * is the same pattern: either the committer gets the role, or the
 * holder sees its transaction.
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

#include "commit.h"
#include "engine.h"
#include "err.h"
#include "index-commit.h"
#include "index.h"
#include "probes.h"
#include "txn.h"

struct mix_wpart {
	struct mix_index *idx;
	struct mix_txn **txns;
	uint32_t count, cap;
};

/* Wait while w's queue is full (queue_max). */
static void wait_space(struct mix_writer *w)
{
	uint32_t max = w->engine->cfg.queue_max;

	/* ORDER(queue-space): a Dekker pair with batch_done.  Here: add to
	 * space_waiters, then load queued; there: subtract from queued, then
	 * load space_waiters; all seq_cst, so either this thread sees the
	 * room or batch_done sees the waiter and broadcasts (under w->lock,
	 * which this thread holds from before its load until it sleeps, so
	 * the broadcast cannot fall between the load and the wait). */
	if (__atomic_add_fetch(&w->queued, 1, __ATOMIC_SEQ_CST) <= max)
		return;
	pthread_mutex_lock(&w->lock);
	__atomic_add_fetch(&w->space_waiters, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&w->queued, __ATOMIC_SEQ_CST) > max && !w->stop)
		pthread_cond_wait(&w->space, &w->lock);
	__atomic_sub_fetch(&w->space_waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&w->lock);
}

static void push(struct mix_writer *w, struct mix_txn *t)
{
	wait_space(w);
	t->enq_ns = mix_now_ns();
	MIX_PROBE1(commit_enqueue, t);
	/* ORDER(intake): the transaction is complete before it is linked;
	 * pairs with the acquire in mix_intake_take_all. */
	mix_intake_push(&w->intake, &t->node);
}

/* Wake the writer thread if it sleeps.  ORDER(wake): the caller's
 * seq_cst push (or role release) before this seq_cst load, against the
 * writer's seq_cst store of sleeping before its re-check: one of the two
 * sees the other (Dekker), so no wakeup is lost. */
static void wake_writer(struct mix_writer *w)
{
	if (__atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&w->lock);
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
	}
}

void mix_writer_enqueue(struct mix_writer *w, struct mix_txn *t)
{
	push(w, t);
	wake_writer(w);
}

static int role_take(struct mix_writer *w)
{
	uint32_t exp = 0;
	/* ORDER(role): acquire the previous holder's work */
	return __atomic_load_n(&w->role, __ATOMIC_RELAXED) == 0 &&
	       __atomic_compare_exchange_n(&w->role, &exp, 1, 0,
					   __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

/* Work for a role holder: something queued, or a held batch due. */
static int work_ready(struct mix_writer *w, uint64_t now)
{
	uint64_t due = __atomic_load_n(&w->next_due_ns, __ATOMIC_SEQ_CST);
	return !mix_intake_empty(&w->intake) || (due && now >= due);
}

/* ORDER(role): release; then ORDER(role-wake): anything queued or held
 * meanwhile is the writer thread's, unless it will look anyway. */
static void role_release(struct mix_writer *w)
{
	__atomic_store_n(&w->role, 0, __ATOMIC_SEQ_CST);
	if (!mix_intake_empty(&w->intake) ||
	    __atomic_load_n(&w->next_due_ns, __ATOMIC_SEQ_CST))
		wake_writer(w);
}

int mix_writer_hold(struct mix_writer *w, struct mix_index *idx,
		    uint64_t due_ns)
{
	uint64_t due = __atomic_load_n(&w->next_due_ns, __ATOMIC_RELAXED);
	if (w->nheld == w->held_cap) {
		uint32_t nc = w->held_cap ? w->held_cap * 2 : 8;
		struct mix_index **n = realloc(w->held, nc * sizeof(*n));
		if (!n)
			return MIX_ENOMEM();
		w->held = n;
		w->held_cap = nc;
	}
	w->held[w->nheld++] = idx;
	if (!due || due_ns < due)
		__atomic_store_n(&w->next_due_ns, due_ns, __ATOMIC_SEQ_CST);
	return 0;
}

void mix_writer_unhold(struct mix_writer *w, struct mix_index *idx)
{
	uint32_t i;
	for (i = 0; i < w->nheld; i++)
		if (w->held[i] == idx) {
			w->held[i] = w->held[--w->nheld];
			break;
		}
	if (!w->nheld)
		__atomic_store_n(&w->next_due_ns, 0, __ATOMIC_SEQ_CST);
}

/* Apply the held batches that are due (force: all).  Returns how many
 * transactions were completed. */
static uint32_t run_held(struct mix_writer *w, uint64_t now, int force)
{
	uint64_t next = 0;
	uint32_t i = 0, done = 0;

	while (i < w->nheld) {
		struct mix_index *idx = w->held[i];
		uint64_t due = mix_index_held_due(idx);
		if (!force && now < due) {
			if (!next || due < next)
				next = due;
			i++;
			continue;
		}
		/* off the list first: a held close frees idx once done */
		w->held[i] = w->held[--w->nheld];
		done += mix_index_run_held(idx);
	}
	__atomic_store_n(&w->next_due_ns, next, __ATOMIC_SEQ_CST);
	return done;
}

static int part_add(struct mix_writer *w, uint32_t *nparts, struct mix_txn *t)
{
	uint32_t i;
	struct mix_wpart *p = NULL;
	for (i = 0; i < *nparts; i++)
		if (w->parts[i].idx == t->index) {
			p = &w->parts[i];
			break;
		}
	if (!p) {
		if (*nparts == w->parts_cap) {
			uint32_t nc = w->parts_cap ? w->parts_cap * 2 : 8;
			struct mix_wpart *n = realloc(w->parts,
						      nc * sizeof(*n));
			if (!n)
				return MIX_ENOMEM();
			memset(n + w->parts_cap, 0,
			       (nc - w->parts_cap) * sizeof(*n));
			w->parts = n;
			w->parts_cap = nc;
		}
		/* the slot keeps its txns array from earlier batches: no
		 * allocation per batch once the writer has warmed up */
		p = &w->parts[(*nparts)++];
		p->idx = t->index;
		p->count = 0;
	}
	if (p->count == p->cap) {
		uint32_t nc = p->cap ? p->cap * 2 : 16;
		struct mix_txn **n = realloc(p->txns, nc * sizeof(*n));
		if (!n)
			return MIX_ENOMEM();
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

/* Add the transactions of list to the parts; returns how many were
 * taken, *failed_r how many of them failed at once (out of memory), and
 * whether any asked for SYNC. */
static uint32_t take_list(struct mix_writer *w, struct mix_intake_node *node,
			  uint32_t *nparts, int *sync_r, uint32_t *failed_r)
{
	struct mix_intake_node *next;
	uint32_t total = 0;
	for (; node; node = next) {
		struct mix_txn *t = caa_container_of(node, struct mix_txn,
						     node);
		next = node->next; /* t may be freed once completed */
		total++;
		*sync_r |= t->durability == MIX_DURABILITY_SYNC;
		if (part_add(w, nparts, t) < 0) {
			mix_err(-ENOMEM, "writer: out of memory");
			mix_txn_complete(t, -ENOMEM);
			++*failed_r;
		}
	}
	return total;
}

static void count_batch(struct mix_writer *w, uint32_t total)
{
	unsigned k = 31u - (unsigned)__builtin_clz(total);
	if (k >= MIX_BATCH_BUCKETS)
		k = MIX_BATCH_BUCKETS - 1;
	__atomic_store_n(&w->batch_hist[k],
			 __atomic_load_n(&w->batch_hist[k], __ATOMIC_RELAXED)
			 + 1, __ATOMIC_RELAXED);
}

/* Role holder: drain and process everything queued now, and the held
 * batches that are due.  Returns the transactions completed. */
static uint32_t writer_batch(struct mix_writer *w)
{
	struct mix_intake_node *node;
	uint32_t nparts = 0, i, total = 0, done = 0;
	int sync = 0;

	node = mix_intake_take_all(&w->intake);
	if (node)
		total = take_list(w, node, &nparts, &sync, &done);
	if (sync && total < w->last_batch) {
		uint64_t end = mix_now_ns() + GATHER_NS;
		while (total < w->last_batch && mix_now_ns() < end) {
			node = mix_intake_take_all(&w->intake);
			if (node)
				total += take_list(w, node, &nparts, &sync,
						   &done);
			else
				caa_cpu_relax();
		}
	}
	if (total) {
		w->last_batch = total;
		MIX_PROBE1(batch_start, total);
		count_batch(w, total);
	}
	for (i = 0; i < nparts; i++) {
		struct mix_wpart *p = &w->parts[i];
		done += mix_index_process_batch(p->idx, p->txns, p->count);
	}
	if (w->nheld)
		done += run_held(w, mix_now_ns(), 0);
	mix_txn_wake_sleepers(w);   /* those failed in take_list */
	return done;
}

/* Role holder: account for done completed transactions. */
static void batch_done(struct mix_writer *w, uint32_t done)
{
	if (!done)
		return;
	/* ORDER(queue-space): pairs with wait_space */
	__atomic_sub_fetch(&w->queued, done, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&w->space_waiters, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&w->lock);
		pthread_cond_broadcast(&w->space);
		pthread_mutex_unlock(&w->lock);
	}
}

/* Batches a committer applies before it leaves the rest to the writer
 * thread: its own, and one for those who queued while it worked (they
 * wait for it; a third round would make its own commit pay for others'
 * without end). */
#define COMMITTER_ROUNDS 2

void mix_writer_commit(struct mix_writer *w, struct mix_txn *t)
{
	push(w, t);
	/* if the role is taken, its holder sees t (ORDER(role-wake)) */
	(void)mix_writer_help(w);
}

int mix_writer_help(struct mix_writer *w)
{
	unsigned rounds = 0;

	if (!role_take(w))
		return 0;
	w->by_committer = 1;
	do {
		batch_done(w, writer_batch(w));
	} while (++rounds < COMMITTER_ROUNDS && !mix_intake_empty(&w->intake));
	w->by_committer = 0;
	role_release(w);
	return 1;
}

/* Wait until there is work and the role is free, a held batch is due,
 * or stop is set.  Returns 0 to go on, 1 to exit. */
static int writer_sleep(struct mix_writer *w)
{
	int stop;

	/* a grace period in progress that becomes a stall while we sleep
	 * is reported then (not only at the next publish) */
	uint64_t stall_at = mix_engine_stall_check(w->engine, mix_now_ns());

	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&w->sleeping, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		uint64_t now = mix_now_ns();
		uint64_t due = __atomic_load_n(&w->next_due_ns,
					       __ATOMIC_SEQ_CST);
		int free = __atomic_load_n(&w->role, __ATOMIC_SEQ_CST) == 0;
		if (w->stop || (free && work_ready(w, now)) ||
		    (stall_at && now >= stall_at))
			break;
		if (!free)
			due = 0;   /* the holder wakes us if it leaves work */
		if (stall_at && (!due || stall_at < due))
			due = stall_at;
		if (due) {
			/* wake is on CLOCK_MONOTONIC, mix_now_ns's clock */
			struct timespec ts;
			ts.tv_sec = (time_t)(due / 1000000000u);
			ts.tv_nsec = (long)(due % 1000000000u);
			pthread_cond_timedwait(&w->wake, &w->lock, &ts);
		} else {
			/* idle, or a holder works and will wake us if it
			 * leaves anything behind (ORDER(role-wake)) */
			pthread_cond_wait(&w->wake, &w->lock);
		}
	}
	__atomic_store_n(&w->sleeping, 0, __ATOMIC_SEQ_CST);
	stop = w->stop && mix_intake_empty(&w->intake) &&
	       !__atomic_load_n(&w->next_due_ns, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&w->lock);
	return stop;
}

static void *writer_main(void *arg)
{
	struct mix_writer *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "mix-writer-%u", w->id);
	pthread_setname_np(pthread_self(), name);
	mix_rcu_thread_ensure();
	for (;;) {
		if (role_take(w)) {
			uint32_t done = writer_batch(w);
			batch_done(w, done);
			role_release(w);
			if (done)
				continue;
		}
		if (writer_sleep(w))
			break;
	}
	return NULL;
}

/* wake runs on CLOCK_MONOTONIC, the clock of mix_now_ns and of the
 * held batches' due times. */
static int wake_init(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int ret = pthread_condattr_init(&a);
	if (ret != 0)
		return ret;
	if ((ret = pthread_condattr_setclock(&a, CLOCK_MONOTONIC)) == 0)
		ret = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return ret;
}

int mix_writer_start(struct mix_engine *e, struct mix_writer *w, unsigned id)
{
	int ret;
	memset(w, 0, sizeof(*w));
	w->engine = e;
	w->id = id;
	if ((ret = pthread_mutex_init(&w->lock, NULL)) != 0 ||
	    (ret = wake_init(&w->wake)) != 0 ||
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
	uint32_t i;

	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->wake);
	pthread_cond_broadcast(&w->space);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	for (i = 0; i < w->parts_cap; i++)
		free(w->parts[i].txns);
	free(w->parts);
	free(w->held);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->space);
	w->started = 0;
}
