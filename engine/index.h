/*
 * One open index (index.c: open and close; recovery.c: the state the
 * files hold; refresh.c: read-only followers; checkpoint.c and
 * index-commit.c: checkpoints, rotation, publishing; replay.c: applying
 * logged transactions; txn-apply.c: the writer's resolution of
 * transactions).  docs/design.md "Recovery and modseqs", "The write path", "Snapshots and the read path".
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
/* A publish hook (watch.h mix_index_set_publish_hook). */
typedef void mix_publish_hook_fn(void *ctx, struct mix_index *idx,
				 const struct mix_snap *snap);

struct mix_index {
	struct mix_engine *engine;
	struct mix_writer *writer;   /* the one writer thread that owns it */
	char *dir;
	/* the directory, held open from open to close: every name the
	 * index reads, creates, renames or removes is taken in it, not
	 * under the path dir, which only names it in messages (fileio.h
	 * "the _in calls") */
	int dirfd;
	unsigned flags;
	/* the struct mix_virtual this index is the virtual index of, or
	 * NULL (mix_index_claim_virtual); atomic: CAS on claim and release,
	 * nothing else is ordered by it */
	void *virtual_owner;

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
	/* the directory as this writable session found it was fsynced
	 * (mix_index_dir_found_durable); writer role */
	int dir_found_durable;

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

	/* where the open's recovery started and where its replay ended
	 * (recovery.c; mixctl check reads it, mix_index_recovered) */
	struct mix_recovered {
		int from_index;      /* 1: at mix.index's log position; 0:
				      * at the first log (rebuilt, created) */
		uint32_t start_seq, end_seq;
		uint64_t start_off, end_off;
		int next_adopted;    /* the replay read mix.index.log.newtmp
				      * (format.md §3.5) */
	} recovered;

	/* MIX_EPANIC once set; atomic (committers read it) */
	int poisoned;
	struct mix_open_info info;

	/* the free after close (index.c index_free): deferred calls */
	struct mix_rcu_head free_rcu;

	/* checkpointer (checkpoint.c) */
	/* the asynchronous checkpoint in flight or finished and not yet
	 * collected (writer-role state; NULL if none) */
	struct mix_ckpt_job *ckpt_job;
	/* an asynchronous rotation switched to the new log (appends go to
	 * mix.index.log.newtmp) and not yet completed and collected: its
	 * flushes and renames are the checkpointer's job (writer-role
	 * state; NULL if none; mix_index_rot_settle) */
	struct mix_ckpt_job *rot_job;
	/* checkpoints writing mix.index right now (atomic; at most 1) */
	uint32_t ckpt_writing;
};

/* A struct mix_virtual (owner) takes idx as its virtual index: 0, or -1
 * when another one has it (one map per index, virtual.c).  Release
 * gives it up; only the owner's release does anything. */
int mix_index_claim_virtual(struct mix_index *idx, void *owner);
void mix_index_release_virtual(struct mix_index *idx, void *owner);

#endif
