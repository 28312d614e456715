/*
 * One open index (index.c: open, recovery, checkpoint, rotation, close;
 * replay.c: applying logged transactions; txn-apply.c: the writer's
 * resolution of transactions).  docs/design.md "Recovery and modseqs", "The write path", "Snapshots and the read path".
 */
#ifndef MIX_INDEX_H
#define MIX_INDEX_H

#include <pthread.h>
#include <stdint.h>

#include "mix/mix.h"
#include "reclaim.h"
#include "snapshot.h"
#include "txlog.h"

/* No transaction may start beyond this log offset (the modseq's low
 * half); past half of it a log must rotate. */
#define MIX_LOG_OFFSET_MAX 0xf0000000u

struct mix_index;
/* A publish hook (mix_index_set_publish_hook). */
typedef void mix_publish_hook_fn(void *ctx, struct mix_index *idx,
				 const struct mix_snap *snap);

struct mix_index {
	struct mix_engine *engine;
	struct mix_writer *writer;   /* the one writer thread that owns it */
	char *dir;
	unsigned flags;

	/* ORDER(snap-publish): the current snapshot.  Stored with
	 * MIX_RCU_PUBLISH by the writer (or open) after the snapshot is
	 * complete; loaded with MIX_RCU_DEREF inside read-side sections. */
	struct mix_snap *snap;

	/* writer-only state (open and close run when no writer has it) */
	struct mix_log_writer log;
	struct mix_map *map;         /* mapping of the current mix.index */
	struct mix_reclaim reclaim;
	int lock_fd;
	uint64_t rotate_size;
	uint32_t xhist_max;          /* engine's expunge_history_max */
	struct mix_buf batch;        /* encoded transactions of a batch */
	/* The log position mix.index was last written at (or loaded with):
	 * a rotation replaces mix.index.log.2, so it may only run once
	 * mix.index covers the active log (ckpt_seq >= its file_seq,
	 * docs/format.md §3.5). */
	uint32_t ckpt_seq;
	uint64_t ckpt_off;
	/* A writable open starts its new log at the first write, not at
	 * open, so idle sessions change no file (§3.5): the file_seq that
	 * log will get, or 0 once it exists. */
	uint32_t rotate_pending_seq;
	/* UIDs below uid_floor may be handed out: the durable reservation
	 * (the active log's header or a UID_FLOOR record; format.md §2.7).
	 * ckpt_uid_floor: what mix.index says; closing: the checkpoint is
	 * the close's (it states next_uid: nothing beyond was handed out). */
	uint32_t uid_floor, ckpt_uid_floor;
	int closing;
	/* the last writer ran in this boot (lock file, index.c): a crash
	 * of it lost no write, so no UID needs skipping */
	int same_boot;

	/* Coalescing (index-commit.c): transactions held back while
	 * reclamation lags, in commit order; when they are due; when the
	 * last batch was published.  Writer-role state. */
	struct mix_txn **held;
	uint32_t held_n, held_cap;
	uint64_t held_due_ns, last_publish_ns;

	/* views and watchers open on it (atomic); close refuses while > 0 */
	uint32_t users;
	/* watchers (watch.c); nwatches is read without the lock */
	pthread_mutex_t watch_lock;
	struct mix_watch **watches;
	uint32_t nwatches, watches_cap;
	/* the publish hook (mix_index_set_publish_hook): under watch_lock;
	 * has_hook is read without it (ORDER(pub-hook)) */
	mix_publish_hook_fn *pub_hook;
	void *pub_hook_ctx;
	uint32_t has_hook;
	/* the mix.index file the state was loaded from (read-only
	 * followers: refresh_recreated in index.c); under refresh_lock */
	struct mix_file_id {
		uint64_t dev, ino, size;
		int64_t ctime_sec, ctime_nsec;
	} ifile_id;
	/* MIX_OPEN_READONLY: mix_index_refresh callers, one at a time */
	pthread_mutex_t refresh_lock;

	/* MIX_EPANIC once set; atomic (committers read it) */
	int poisoned;
	struct mix_open_info info;

	/* the free after close (index.c index_free): deferred calls */
	struct mix_rcu_head free_rcu;

	/* checkpointer (checkpoint.c) */
	/* the asynchronous checkpoint in flight or finished and not yet
	 * collected (writer-role state; NULL if none) */
	struct mix_ckpt_job *ckpt_job;
	/* checkpoints writing mix.index right now (atomic; at most 1) */
	uint32_t ckpt_writing;
};

/* MIX_EPANIC from now on (a failed write or sync, index-commit.c). */
void mix_index_poison(struct mix_index *idx);

/* After a publish: call the publish hook, then wake the armed watchers
 * (watch.c). */
void mix_watch_notify(struct mix_index *idx);

/* Set (fn != NULL) or clear (fn == NULL) the index's publish hook, for
 * layers inside the library (the mailbox list's STATUS cache).  After
 * every publish of idx, on the thread that published (the writer thread
 * or a committer holding the writer role), before the batch's committers
 * are acknowledged, fn(ctx, idx, snap) is called with the snapshot just
 * published (valid during the call: the caller holds it).  fn must be
 * short, must not block on the writer of idx (no synchronous commit to
 * idx or to an index of the same writer; an asynchronous commit to
 * another index is fine) and must not set or clear hooks.  Clearing
 * waits for a call in progress: once it returns, fn is not called again.
 * Returns 0, or MIX_EINVAL when setting while another hook is set. */
int mix_index_set_publish_hook(struct mix_index *idx, mix_publish_hook_fn *fn,
			       void *ctx);

/* Writer role: apply and publish a batch of transactions of idx, or hold
 * them back while reclamation lags (then mix_writer_hold is told).
 * Returns how many were completed (0 if held). */
uint32_t mix_index_process_batch(struct mix_index *idx, struct mix_txn **txns,
				 uint32_t count);
/* Writer role: when idx's held batch is due; apply it now (returns how
 * many were completed; a held close may free idx). */
uint64_t mix_index_held_due(const struct mix_index *idx);
uint32_t mix_index_run_held(struct mix_index *idx);

/* Writer: write the current snapshot to mix.index at the log's current
 * position; with do_remap, republish it with chunks in the new mapping.
 * Cancels or first waits for an asynchronous checkpoint in flight. */
int mix_index_checkpoint(struct mix_index *idx, int do_remap);
/* Republish the current state with chunks in mix.index's mapping. */
int mix_index_remap(struct mix_index *idx);
/* mix_index_remap, with a failure reported (warning callback and the
 * writer's checkpoint_failures); returns MIX_ECORRUPT when the file just
 * written does not load, else 0. */
int mix_index_remap_checked(struct mix_index *idx);
/* Writer: start a new log file (file_seq + 1); the old one becomes
 * mix.index.log.2.  Only after a checkpoint at the old log's end. */
int mix_index_rotate(struct mix_index *idx);
/* Start the log a writable open deferred (rotate_pending_seq), after a
 * checkpoint when mix.index does not cover the active log (§3.5). */
int mix_index_rotate_pending(struct mix_index *idx);
/* Start log file_seq now (its header reserves UIDs, format.md §2.7),
 * after the checks of the caller. */
int mix_index_rotate_to(struct mix_index *idx, uint32_t file_seq);
/* UIDs reserved ahead of next_uid at each new log and UID_FLOOR record
 * (format.md §2.7, §3.3.13): an eighth of the UIDs in use, within these
 * bounds, so that a bulk import pays one sync per many thousand appends
 * and a crash skips at most MIX_UID_STEP_MAX UIDs. */
#define MIX_UID_STEP_MIN (1u << 17)
#define MIX_UID_STEP_MAX (1u << 22)
/* The UID floor a new reservation at next_uid gets. */
uint32_t mix_index_uid_reserve(const struct mix_index *idx, uint32_t next_uid);
/* The writer role, after each batch it published: when the log has
 * passed rotate_size, queue an asynchronous checkpoint of the current
 * snapshot; collect a finished one (republish with chunks in the new
 * mapping, rotate).  Synchronous when no checkpointer runs in this
 * process (checkpoint.c). */
void mix_index_ckpt_tick(struct mix_index *idx);
/* Both, as the writer does when the log passed rotate_size. */
int mix_index_checkpoint_rotate(struct mix_index *idx);
/* Index close (index_free), before the final barriers: cancel or wait
 * for idx's asynchronous checkpoint and drop its pin (checkpoint.c). */
void mix_index_ckpt_cancel(struct mix_index *idx);
/* Engine create/free: start and stop the checkpointer thread that writes
 * asynchronous checkpoints (checkpoint.c).  Stop only when no index is
 * open. */
struct mix_engine;
int mix_ckpter_start(struct mix_engine *e);
/* Times a checkpoint began writing mix.index while another of the same
 * index was writing it (must stay 0; tests/test-checkpoint.c reads it). */
extern uint32_t mix_ckpt_overlaps;
/* Set (before any index opens) by tests that walk fault injection over
 * the I/O calls of a commit, checkpoint and rotation in one thread's
 * order (tests/test-faults.c): every checkpoint then runs on the writer
 * role, as before the checkpointer existed. */
extern int mix_ckpt_sync_only;
void mix_ckpter_stop(struct mix_engine *e);

/* Publish the builder's state as the next snapshot. */
int mix_index_publish(struct mix_index *idx, struct mix_builder *b);

/* Apply a HDR record's words to b's header (replay.c). */
int mix_hdr_apply(struct mix_builder *b, uint32_t offset, const uint8_t *data,
		  uint32_t size);

/* Apply one logged transaction (replay.c). */
int mix_replay_txn(struct mix_builder *b, const uint8_t *txn, uint32_t size,
		   uint8_t major, uint64_t modseq, const char *path,
		   uint64_t offset);

/* Resolve and apply one transaction in the writer (txn-apply.c): apply it
 * to b and encode its effective changes at the end of buf.  modseq is the
 * transaction's.  Returns 0 (t->result filled; nothing encoded if it
 * changed nothing) or an error (b may be partly changed: the caller
 * aborts the build). */
struct mix_txn;
int mix_txn_apply(struct mix_builder *b, struct mix_txn *t, uint64_t modseq,
		  struct mix_buf *buf);

#endif
