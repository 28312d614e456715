/*
 * The writer's work on one index (docs/design.md "The write path"): apply a batch of
 * transactions to a builder, write them to the log with one write(), sync
 * once if any asked for it, publish the next snapshot, complete the
 * committers; checkpoint and rotate when the log is big.
 *
 * Runs on the index's writer thread only (and on the opening/closing
 * thread while no writer has the index), so everything here but the
 * published snapshot pointer is single-threaded.
 *
 * Failure rule: a transaction that cannot be applied fails alone (the
 * build is redone without it).  A failed write or sync fails the whole
 * batch and poisons the index (MIX_EPANIC until reopened): after a failed
 * fdatasync the kernel may have dropped the dirty pages, so nothing can
 * be assumed about what is on disk, and a retry that "succeeds" would lie.
 * One exception: a write that ran out of space (ENOSPC, EDQUOT) before a
 * whole transaction of the batch had landed, and was cut off again
 * (mix_log_append_batch), fails the batch alone; nothing of it was ever
 * visible, and the index goes on once there is space.
 *
 * Checkpoints and rotation are in checkpoint.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checkpoint.h"
#include "commit.h"
#include "engine.h"
#include "err.h"
#include "fileio.h"
#include "index-commit.h"
#include "index-file.h"
#include "index.h"
#include "probes.h"
#include "recovery.h"
#include "txn-apply.h"
#include "txlog.h"
#include "txn.h"
#include "watch.h"

/* A batch is flushed once its encoding passes this (keeps offsets far
 * below 2^32 with the largest rotation size). */
#define BATCH_BYTES_MAX (64u << 20)
/* Replaced snapshots waiting for their grace period beyond which an
 * index's publishes are spaced ("Coalescing" below). */
#define SNAP_BACKLOG_MAX 256

void mix_index_poison(struct mix_index *idx)
{
	/* ORDER(poison): relaxed.  The flag is the whole message (refuse
	 * with MIX_EPANIC); no reader of it reads anything written before
	 * it.  The writer role itself sees it through the role handoff
	 * (ORDER(role)); committers and mix_index_ckpt_tick read it
	 * relaxed too, and one that misses it queues a transaction the
	 * role holder then fails. */
	__atomic_store_n(&idx->poisoned, 1, __ATOMIC_RELAXED);
}

int mix_index_publish(struct mix_index *idx, struct mix_builder *b)
{
	struct mix_snap *s, *prev = idx->snap;
	struct mix_robj *retired;
	int ret;

	b->hdr.log_file_seq = idx->log.hdr.file_seq;
	b->hdr.log_file_head_offset = (uint32_t)idx->log.offset;
	if ((ret = mix_builder_finish(b, &s, &retired)) < 0)
		return ret;
	mix_reclaim_publish(&idx->reclaim, s, prev, retired);
	/* ORDER(snap-publish): s and everything it points to are complete
	 * and never written again; pairs with MIX_RCU_DEREF in
	 * mix_index_snap(); seq_cst for ORDER(watch) (see rcu.h). */
	MIX_RCU_PUBLISH(idx->snap, s);
	MIX_PROBE2(publish, s->gen, s->hdr.highest_modseq);
	if (prev)
		mix_reclaim_unpublish(prev);
	mix_watch_notify(idx);
	return 0;
}

/* Apply txns[start..n) (skipping failed ones) until the batch is full.
 * Returns the end of what was applied (>= start + 1 unless a transaction
 * failed, in which case *failed_r is set and the build must be redone). */
static uint32_t apply_some(struct mix_index *idx, struct mix_builder *b,
			   struct mix_txn **txns, uint32_t start, uint32_t n,
			   int *need_sync_r, int *failed_r)
{
	const struct mix_log_header *lh = &idx->log.hdr;
	uint32_t i;
	int ret;

	for (i = start; i < n; i++) {
		struct mix_txn *t = txns[i];
		uint64_t off = idx->log.offset + idx->batch.len;
		if (t->failed)
			continue;
		if (off > MIX_LOG_OFFSET_MAX) {
			if (i == start) {
				t->failed = 1;
				t->ret = mix_err(MIX_ELIMIT, "%s: log offset "
						 "%llu too large", idx->dir,
						 (unsigned long long)off);
				*failed_r = 1;
			}
			return i;
		}
		ret = mix_txn_apply(b, t, mix_modseq_make(lh->indexid,
							  lh->file_seq,
							  (uint32_t)off),
				    &idx->batch);
		if (ret < 0) {
			t->failed = 1;
			t->ret = ret;
			mix_err_copy(t->errmsg, sizeof(t->errmsg));
			*failed_r = 1;
			return i;
		}
		if (t->durability == MIX_DURABILITY_SYNC)
			*need_sync_r = 1;
		if (idx->batch.len > BATCH_BYTES_MAX)
			return i + 1;
	}
	return n;
}

/* Complete txns[start..end) with ret (failed ones with their own).  w
 * (may be NULL) records the latencies: visible_ns is when the batch was
 * published (0: it was not). */
static void complete_range(struct mix_writer *w, struct mix_txn **txns,
			   uint32_t start, uint32_t end, int ret,
			   uint64_t visible_ns)
{
	uint32_t i;
	/* counted before the committers are acknowledged, so a committer
	 * that returned sees its commit in mix_engine_stats() */
	if (w)
		__atomic_add_fetch(&w->stat_txns, end - start,
				   __ATOMIC_RELAXED);
	for (i = start; i < end; i++) {
		struct mix_txn *t = txns[i];
		uint64_t enq = t->enq_ns; /* t is gone once completed */
		int ok = !t->failed && ret == 0;
		if (t->failed) {
			mix_err_set(t->ret, t->errmsg);
			mix_txn_complete(t, t->ret);
		} else {
			mix_txn_complete(t, ret);
		}
		if (w && ok && visible_ns) {
			mix_hist_add(&w->lat_visible, visible_ns - enq);
			mix_hist_add(&w->lat_ack, mix_now_ns() - enq);
		}
	}
	if (w)
		mix_txn_wake_sleepers(w);
}

/* Write, sync and publish what b holds for txns[start..end). */
static int flush(struct mix_index *idx, struct mix_builder *b, int need_sync)
{
	struct mix_writer *w = idx->writer;
	int ret = 0, clean = 0;

	if (idx->batch.len > 0) {
		/* the batch starts with its first transaction's boundary
		 * record, whose txn_size is that transaction's length */
		uint32_t first = 0;
		memcpy(&first, idx->batch.data + offsetof(struct
			mix_log_boundary, txn_size), sizeof(first));
		/* §3.2 PREV_SYNCED: everything before this batch is durable,
		 * so a reader that later finds a bad transaction before this
		 * one knows it is damage, not a torn tail (§3.4).  Costs one
		 * CRC of the first transaction, only after a sync. */
		if (idx->log.synced == idx->log.offset)
			ret = mix_logenc_mark_prev_synced(&idx->batch, 0);
		MIX_PROBE1(log_write, idx->batch.len);
		if (ret == 0)
			ret = mix_log_append_batch(&idx->log, idx->batch.data,
						   idx->batch.len, first);
		clean = ret < 0 && !idx->log.failed;
		if (ret == 0 && w)
			__atomic_add_fetch(&w->stat_bytes, idx->batch.len,
					   __ATOMIC_RELAXED);
	}
	if (ret == 0 && need_sync) {
		MIX_PROBE0(fsync_start);
		/* a batch acknowledged as durable in a log whose rotation is
		 * still completing needs that completion: the old log's tail
		 * and the new log's name and header (checkpoint.c) */
		if (idx->rot_job)
			ret = mix_index_rot_settle(idx);
		if (ret == 0)
			ret = mix_log_sync(&idx->log);
		MIX_PROBE1(fsync_end, ret);
		if (ret == 0 && w)
			__atomic_add_fetch(&w->stat_fsyncs, 1,
					   __ATOMIC_RELAXED);
	}
	if (ret == 0)
		ret = mix_index_publish(idx, b);
	if (ret == 0 && w) {
		__atomic_add_fetch(&w->stat_publishes, 1, __ATOMIC_RELAXED);
		if (w->by_committer)
			__atomic_add_fetch(&w->stat_by_committer, 1,
					   __ATOMIC_RELAXED);
	}
	if (ret < 0) {
		/* Out of space before any transaction of the batch could be
		 * seen (mix_log_append_batch left the log usable): the batch
		 * fails and the index goes on.  Anything else poisons it. */
		if (!clean)
			mix_index_poison(idx);
		mix_builder_abort(b);
	}
	return ret;
}

/* §3.3.13: a batch after which next_uid reaches the reservation (it
 * handed out the last reserved UID, or one above) carries a UID_FLOOR
 * transaction raising it, and is synced before it is published, so that
 * after any crash next_uid starts above every UID a client may have seen
 * (RFC 9051 §2.3.1.1).  Reaching, not passing: a session's reservation
 * then always stays strictly above next_uid, so a crash of a session
 * that wrote always leaves a floor above the recovered next_uid, which
 * is what makes the next open skip and set the lost point (format.md
 * §2.9) even when the session's appends ended exactly at the old
 * reservation.  *floor_r: the new floor, or
 * 0 if the reservation still holds. */
static int uid_floor_raise(struct mix_index *idx, const struct mix_builder *b,
			   uint32_t *floor_r)
{
	size_t st;
	int ret;

	*floor_r = 0;
	if (b->hdr.next_uid < idx->uid_floor)
		return 0;
	*floor_r = mix_index_uid_reserve(idx, b->hdr.next_uid);
	if ((ret = mix_logenc_begin(&idx->batch, &st)) < 0)
		return ret;
	if ((ret = mix_logenc_uid_floor(&idx->batch, *floor_r)) < 0) {
		idx->batch.len = st;
		return ret;
	}
	mix_logenc_end(&idx->batch, st);
	return 0;
}

/* The first write of a writable open: start the session's own log file
 * (docs/format.md §3.5, §4).  Deferred from open so that a session that
 * never writes changes no file: an idle open and close leaves the
 * directory as it was, however often it happens.  A failure fails the
 * batch; nothing was appended, so the next batch simply tries again with
 * the same file_seq (a file_seq is used once a transaction is in it). */
int mix_index_rotate_pending(struct mix_index *idx)
{
	const struct mix_log_header *h = &idx->log.hdr;
	int ret;

	/* §3.5 precondition: the active log becomes .log.2 and the old .log.2
	 * goes, so mix.index must cover the active log first */
	if (idx->ckpt_seq < h->file_seq &&
	    (ret = mix_index_checkpoint(idx, 0)) < 0)
		return ret;
	ret = mix_index_rotate_to(idx, idx->rotate_pending_seq);
	if (ret == 0)
		idx->rotate_pending_seq = 0;
	return ret;
}

static void run_batch(struct mix_index *idx, struct mix_txn **txns,
		      uint32_t n)
{
	uint32_t start = 0, end, floor;
	struct mix_builder b;
	int ret, need_sync, failed;

	while (start < n) {
		/* ORDER(poison) */
		if (__atomic_load_n(&idx->poisoned, __ATOMIC_RELAXED)) {
			mix_err(MIX_EPANIC, "%s: an earlier write failed; "
				"reopen the index", idx->dir);
			complete_range(idx->writer, txns, start, n, MIX_EPANIC, 0);
			return;
		}
		if (idx->rotate_pending_seq &&
		    (ret = mix_index_rotate_pending(idx)) < 0) {
			complete_range(idx->writer, txns, start, n, ret, 0);
			return;
		}
		if ((ret = mix_builder_begin(&b, idx->snap)) < 0) {
			complete_range(idx->writer, txns, start, n, ret, 0);
			return;
		}
		b.xhist_max = idx->xhist_max;
		idx->batch.len = 0;
		need_sync = failed = 0;
		end = apply_some(idx, &b, txns, start, n, &need_sync, &failed);
		if (failed) {
			/* redo the build without the failed transaction */
			mix_builder_abort(&b);
			continue;
		}
		ret = uid_floor_raise(idx, &b, &floor);
		if (ret == 0 && floor)
			need_sync = 1;
		if (ret == 0)
			ret = flush(idx, &b, need_sync);
		else
			mix_builder_abort(&b);
		if (ret == 0 && floor)
			idx->uid_floor = floor;
		if (ret == 0) {
			idx->last_publish_ns = mix_now_ns();
			/* replaced snapshots pile up while a section holds
			 * their grace period: say so (mix_read_stall_fn) */
			(void)mix_engine_stall_check(idx->engine,
						     idx->last_publish_ns);
		}
		complete_range(idx->writer, txns, start, end, ret,
			       ret == 0 ? idx->last_publish_ns : 0);
		start = end;
		if (ret == 0)
			mix_index_ckpt_tick(idx);
	}
}

/* Close: mix.index takes in what this session logged, so the next open
 * replays nothing.  A session that never wrote has no log of its own
 * (rotate_pending_seq) and changes nothing. */
static void close_index(struct mix_index *idx, struct mix_txn *t)
{
	struct mix_writer *w = idx->writer;
	int ret = 0;
	idx->closing = 1;
	/* ORDER(poison) */
	if (!__atomic_load_n(&idx->poisoned, __ATOMIC_RELAXED) &&
	    !idx->rotate_pending_seq &&
	    (idx->ckpt_seq != idx->log.hdr.file_seq ||
	     idx->ckpt_off != idx->log.offset ||
	     idx->ckpt_uid_floor != idx->snap->hdr.next_uid))
		ret = mix_index_checkpoint(idx, 0);
	mix_txn_complete(t, ret);   /* the closer may free idx now */
	mix_txn_wake_sleepers(w);
}

/* ---- coalescing ---------------------------------------------------------
 *
 * A snapshot that was replaced waits for a grace period before it is
 * freed; a read-side section that lasts (a stuck session thread, a debugger)
 * holds every grace period, so replaced snapshots pile up at the rate of
 * publishes.  The writer never waits for readers.  Instead, once more than
 * SNAP_BACKLOG_MAX snapshots of an index wait and the grace period in
 * progress is LAG_GP_NS old (a section holds it, not just a busy CPU
 * delaying the reclaim thread), or more than SNAP_BACKLOG_HARD wait
 * whatever the cause, its publishes are spaced: a
 * batch arriving sooner than LAG_STEP_NS * waiting / SNAP_BACKLOG_MAX after
 * the last publish is held back (its committers wait), and everything that
 * arrives meanwhile joins it, so one publish serves them all.  The spacing
 * grows with the backlog, so the backlog grows as the square root of the
 * stall: w(t)^2 <= H^2 + 2 B t / LAG_STEP_NS with B = SNAP_BACKLOG_MAX and
 * H = SNAP_BACKLOG_HARD, i.e. at most about 2,350 snapshots per index after
 * 10 s and 3,900 after a minute, then one per LAG_MAX_NS beyond 6,400
 * (after about 5 minutes) (docs/design.md "Coalescing").  The thresholds
 * were set beside saturating readers (bench-lmdb --only busy): there the
 * reclaim thread waits 3.6 ms on average for a CPU after each wake-up
 * (perf sched) and a grace period can take tens of ms, so 512 snapshots
 * and 20 ms held a lone committer's batches 230 times in 2.5 s and made
 * it slower than LMDB; 2,048 and 50 ms held none.
 * Other indexes and writers are not held up by it; commits on the index
 * keep being acknowledged, LAG_MAX_NS apart at worst.
 */
#define LAG_GP_NS 50000000ull      /* a grace period this old is held */
#define SNAP_BACKLOG_HARD (8 * SNAP_BACKLOG_MAX)  /* held regardless */
#define LAG_STEP_NS 4000000ull     /* 4 ms per SNAP_BACKLOG_MAX waiting */
#define LAG_MAX_NS 100000000ull    /* 100 ms */
/* A backlog past SNAP_BACKLOG_HARD with no grace period held up: the
 * reclaim thread lacks CPU.  Spacing publishes by at most this long gives
 * it the committers' CPU without stalling them for long (100 ms maxima of
 * both mailboxes of a writer in stress/bench --only ckptasync before). */
#define LAG_BUSY_MAX_NS 5000000ull

/* Whether a batch of idx must wait; sets held_due_ns. */
static int must_hold(struct mix_index *idx)
{
	uint32_t waiting = __atomic_load_n(&idx->reclaim.waiting,
					   __ATOMIC_RELAXED);
	uint64_t gap, gp, now;
	int stuck;
	if (waiting <= SNAP_BACKLOG_MAX)
		return 0;
	now = mix_now_ns();
	/* a backlog that a busy machine makes (the reclaim thread waits for
	 * a CPU) clears by itself once it runs; one a read-side section
	 * makes does not */
	gp = mix_rcu_gp_started(NULL);
	stuck = gp && now >= gp + LAG_GP_NS;
	if (!stuck && waiting <= SNAP_BACKLOG_HARD)
		return 0;
	gap = LAG_STEP_NS * waiting / SNAP_BACKLOG_MAX;
	if (gap > (stuck ? LAG_MAX_NS : LAG_BUSY_MAX_NS))
		gap = stuck ? LAG_MAX_NS : LAG_BUSY_MAX_NS;
	idx->held_due_ns = idx->last_publish_ns + gap;
	return now < idx->held_due_ns;
}

static int hold_add(struct mix_index *idx, struct mix_txn **txns, uint32_t n)
{
	if (idx->held_n + n > idx->held_cap) {
		uint32_t nc = idx->held_cap ? idx->held_cap : 16;
		struct mix_txn **p;
		while (nc < idx->held_n + n)
			nc *= 2;
		if (!(p = realloc(idx->held, nc * sizeof(*p))))
			return MIX_ENOMEM();
		idx->held = p;
		idx->held_cap = nc;
	}
	memcpy(idx->held + idx->held_n, txns, n * sizeof(*txns));
	idx->held_n += n;
	return 0;
}

static uint32_t process_now(struct mix_index *idx, struct mix_txn **txns,
			    uint32_t count)
{
	uint32_t i, n = 0;
	struct mix_txn *close_txn = NULL;

	for (i = 0; i < count; i++) {
		if (txns[i]->kind == TXN_KIND_CLOSE)
			close_txn = txns[i];
		else
			txns[n++] = txns[i];
	}
	if (n)
		run_batch(idx, txns, n);
	if (close_txn)
		close_index(idx, close_txn);  /* idx may be freed now */
	return count;
}

static int has_close(struct mix_txn **txns, uint32_t n)
{
	while (n-- > 0)
		if (txns[n]->kind == TXN_KIND_CLOSE)
			return 1;
	return 0;
}

uint32_t mix_index_process_batch(struct mix_index *idx, struct mix_txn **txns,
				 uint32_t count)
{
	if (idx->held_n) {
		/* behind what is held (commit order); a close ends the wait,
		 * and so does a lack of memory to hold more */
		int added = hold_add(idx, txns, count) == 0;
		uint32_t done;
		if (added && !has_close(txns, count))
			return 0;
		mix_writer_unhold(idx->writer, idx);
		done = mix_index_run_held(idx);  /* idx gone after a close */
		return added ? done : done + process_now(idx, txns, count);
	}
	/* must_hold first: the common case reads one counter, no clock,
	 * and does not walk the batch */
	if (!must_hold(idx) || has_close(txns, count) ||
	    hold_add(idx, txns, count) < 0)
		return process_now(idx, txns, count);
	if (mix_writer_hold(idx->writer, idx, idx->held_due_ns) < 0) {
		idx->held_n = 0;
		return process_now(idx, txns, count);
	}
	__atomic_add_fetch(&idx->writer->stat_held, 1, __ATOMIC_RELAXED);
	return 0;
}

uint64_t mix_index_held_due(const struct mix_index *idx)
{
	return idx->held_due_ns;
}

uint32_t mix_index_run_held(struct mix_index *idx)
{
	uint32_t n = idx->held_n;
	idx->held_n = 0;
	return process_now(idx, idx->held, n);
}

int mix_index_make_durable(struct mix_index *idx, uint64_t *upto_r)
{
	static const char *const names[3] = { MIX_LOG2_FILENAME,
		MIX_LOG_TMP_FILENAME, MIX_LOG_FILENAME };
	char path[4096];
	int i, ret;

	*upto_r = 0;
	if (idx->writer) {
		struct mix_commit_result res;
		struct mix_txn *t;
		/* an empty commit's modseq is the highest modseq of the
		 * state it was applied to: every commit queued before it */
		if ((ret = mix_txn_begin(idx, &t)) == 0 &&
		    (ret = mix_txn_commit(&t, MIX_DURABILITY_SYNC, &res)) == 0) {
			*upto_r = res.modseq;
			mix_commit_result_free(&res);
		}
		return ret;
	}
	/* what the files held when this snapshot was read from them */
	mix_read_lock();
	*upto_r = mix_snap_highest_modseq(mix_index_snap(idx));
	mix_read_unlock();
	/* files move from newtmp to .log to .log.2 (a live writer's
	 * rotation): this order finds each at least once */
	for (i = 0; i < 3; i++) {
		mix_dir_path(path, sizeof(path), idx->dir, names[i]);
		ret = mix_log_sync_path(idx->dirfd, path);
		if (ret == -ENOENT)
			mix_err_clear();
		else if (ret < 0)
			return ret;
	}
	return mix_io_fsync_dir_in(idx->dirfd, idx->dir);
}
