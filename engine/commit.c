/*
 * Committing a transaction: the hand-over to the writer role and the
 * committer's wait for its acknowledgement, the writer side's completion
 * and wake-up, and the public mix_txn_commit / mix_txn_commit_async
 * (docs/design.md "The writer role", docs/api.md "Transactions").
 *
 * Threads: the committer (mix_txn_commit*, mix_txn_commit_wait) and the
 * role holder that applies its transaction (mix_txn_complete,
 * mix_txn_wake_sleepers).  The protocol between them is ORDER(txn-done)
 * and ORDER(txn-wake) below: a committer polls for a while (NONE), then
 * sleeps on its writer's done_seq; the applier marks each transaction
 * done and, once per batch, wakes every sleeper with one system call.
 * The path reads one way: txn.c builds a transaction, this file hands it
 * to writer.c, which applies it through index-commit.c and txn-apply.c
 * and completes it here.
 */
#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "commit.h"
#include "engine.h"
#include "err.h"
#include "index.h"
#include "txn.h"

/* How long a NONE committer polls for its acknowledgement before it
 * sleeps.  It must cover the writer's work for a large transaction, not
 * just a small one: 1,000 appends take the writer ~15-30 µs, and a
 * committer that gave up at 30 µs went to sleep on most of them and paid
 * a futex wake-up and a context switch each time (bench-lmdb appends
 * 1.9x -> 2.3-3.0x LMDB with 100 µs).
 *
 * The poll never yields the CPU.  It used to call sched_yield at every
 * check after 2 µs, so that a writer or reader on the same CPU would not
 * wait for it; but a yield hands the CPU to whatever else is runnable
 * for the rest of a time slice, and the checkpointer's long CPU bursts
 * are: tools/offcpu.sh showed the side mailbox's committer of `bench
 * --only ckptasync` preempted in sched_yield 57-82 times for 1-6 ms in
 * 12 s, and without the yield that mailbox's commit p99.9 fell from
 * 1.6-1.7 ms to 0.2-0.37 ms (docs/benchmarks.md "Where the commit maxima
 * come from").  The poll ends after COMMIT_SPIN_NS at most, and the
 * futex sleep after it gives the CPU back. */
#define COMMIT_SPIN_NS 100000

static void futex_wait(uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

/* Woken by a batch that did not complete t: t is still queued, or in
 * the holder's hands.  A holder that leaves work behind releases the role
 * right after this wake-up and wakes the writer thread; a committer that
 * is already awake and tries the role for a moment usually gets there
 * first, which spares a wake-up of the writer thread on a busy machine. */
#define HELP_SPIN_NS 20000

/* Poll for t's acknowledgement for up to spin_ns, trying the writer role
 * (a holder that left t behind woke the writer thread; on a busy machine
 * we may be quicker) every 32 polls.  Returns 1 once t is done. */
static int spin_for(struct mix_writer *w, struct mix_txn *t, uint64_t spin_ns)
{
	uint64_t end = mix_now_ns() + spin_ns;
	unsigned i;
	for (i = 0;; i++) {
		if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE) == TXN_DONE)
			return 1;
		if (i % 32 == 31) {
			if (mix_now_ns() > end)
				return 0;
			if (mix_writer_help(w))
				continue;
		}
		caa_cpu_relax();
	}
}

int mix_txn_commit_wait(struct mix_txn *t)
{
	mix_writer_commit(t->index->writer, t);
	/* Short spin (by time): a NONE commit is usually done within a few
	 * tens of µs, sooner than a futex sleep and wake-up round trip.  A
	 * SYNC commit waits for an fdatasync (~100 µs or more): spinning
	 * would only take the CPU from the writer and other committers. */
	if (t->durability != MIX_DURABILITY_SYNC)
		(void)spin_for(t->index->writer, t, COMMIT_SPIN_NS);
	/* Announce the sleep (TXN_SLEEPING) so that the applier wakes the
	 * writer's sleepers once its batch is done (ORDER(txn-wake)); a CAS
	 * that fails found TXN_DONE.  The sleep is on the writer's done_seq,
	 * shared by every committer of the writer: one wake-up call serves
	 * a whole batch, and the applier is not preempted by the first
	 * committer it wakes before it has woken the others. */
	{
		struct mix_writer *w = t->index->writer;
		uint32_t exp = TXN_PENDING;
		if (__atomic_compare_exchange_n(&t->done, &exp, TXN_SLEEPING,
						0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			for (;;) {
				uint32_t seq = __atomic_load_n(&w->done_seq,
							       __ATOMIC_SEQ_CST);
				if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)
				    == TXN_DONE)
					break;
				futex_wait(&w->done_seq, seq);
				(void)spin_for(w, t, HELP_SPIN_NS);
			}
	}
	if (t->ret < 0)
		mix_err_set(t->ret, t->errmsg);
	return t->ret;
}

void mix_txn_complete(struct mix_txn *t, int ret)
{
	t->ret = ret;
	if (ret < 0) {
		mix_err_copy(t->errmsg, sizeof(t->errmsg));
		/* a failed commit has no modseq or UIDs: what apply put
		 * here was never visible (and may be issued again) */
		memset(&t->result, 0, sizeof(t->result));
	}
	if (t->cb) {
		t->cb(t->cb_ctx, ret, &t->result);
		mix_txn_free(t);
		return;
	}
	/* ORDER(txn-done): results above are visible before done; pairs
	 * with the acquire loads and the CAS in mix_txn_commit_wait.  The
	 * exchange tells whether the committer went to sleep; a spinning
	 * one needs no system call, a sleeping one is woken with the others
	 * of the batch (mix_txn_wake_sleepers).  t is the committer's once
	 * done: w is read first. */
	{
		struct mix_writer *w = t->index->writer;
		if (__atomic_exchange_n(&t->done, TXN_DONE, __ATOMIC_ACQ_REL) ==
		    TXN_SLEEPING && w)
			w->wake_pending = 1;
	}
}

void mix_txn_wake_sleepers(struct mix_writer *w)
{
	if (!w || !w->wake_pending)
		return;
	w->wake_pending = 0;
	/* ORDER(txn-wake): the TXN_DONE stores of the batch, then this
	 * seq_cst increment, then the wake-up; a committer loads done_seq,
	 * then its done, then sleeps only while done_seq is unchanged: it
	 * either sees its TXN_DONE or is woken (or finds done_seq moved). */
	__atomic_add_fetch(&w->done_seq, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &w->done_seq, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL,
		NULL, 0);
}

static int commit_check(struct mix_txn *t)
{
	if (mix_rcu_read_ongoing())
		return mix_err(MIX_EDEADLK, "commit inside a read-side "
			       "section");
	/* ORDER(poison) */
	if (__atomic_load_n(&t->index->poisoned, __ATOMIC_RELAXED))
		return mix_err(MIX_EPANIC, "%s: an earlier write failed; "
			       "reopen the index", t->index->dir);
	return 0;
}

MIX_API int mix_txn_commit(struct mix_txn **txn, enum mix_durability d,
			   struct mix_commit_result *result_r)
{
	struct mix_txn *t = *txn;
	int ret;
	*txn = NULL;
	if (d > MIX_DURABILITY_SYNC)
		ret = mix_err(MIX_EINVAL, "invalid durability %d", d);
	else
		ret = commit_check(t);
	if (ret == 0) {
		t->durability = d;
		ret = mix_txn_commit_wait(t);
		if (ret == 0 && result_r) {
			/* the MODIFIED, changed and expunged sets move to
			 * the caller */
			*result_r = t->result;
			if (result_r->modified)
				t->modified = NULL;
			if (result_r->changed)
				t->changed.r = NULL;
			if (result_r->expunged)
				t->expunged.r = NULL;
		}
	}
	mix_txn_free(t);
	return ret;
}

MIX_API int mix_txn_commit_async(struct mix_txn **txn, enum mix_durability d,
				 mix_commit_fn *cb, void *ctx)
{
	struct mix_txn *t = *txn;
	int ret;
	if (!cb || d > MIX_DURABILITY_SYNC) {
		mix_txn_abort(txn);
		return mix_err(MIX_EINVAL, "no callback or invalid durability");
	}
	*txn = NULL;
	if ((ret = commit_check(t)) < 0) {
		mix_txn_free(t);
		return ret;
	}
	t->durability = d;
	t->cb = cb;
	t->cb_ctx = ctx;
	mix_writer_enqueue(t->index->writer, t);
	return 0;
}
