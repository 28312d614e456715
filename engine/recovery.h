/*
 * Recovery: the state an index's files hold (recovery.c; docs/design.md
 * "Recovery and modseqs", docs/format.md §3.4-§3.5, invariants 2-5).
 *
 * One struct mix_recovery is the work of reading mix.index and replaying
 * the logs from its position.  Three callers use it, so the rules live
 * once: the open (index.c: mix_recovery_run, then a writable open's
 * writer_setup), a read-only follower's refresh (refresh.c: the load,
 * log and replay steps alone), and through them mixctl check, which
 * reads what the library recovered (mix_index_recovered) instead of
 * walking the chain itself.
 *
 * Runs on the opening or refreshing thread with no writer on the index:
 * no concurrency but readers, who see only what is published afterwards.
 */
#ifndef MIX_RECOVERY_H
#define MIX_RECOVERY_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "index.h"
#include "snapshot.h"
#include "txlog.h"

/* The writer's lock file (index.c; recovery asks whether it is held). */
#define MIX_LOCK_FILENAME "mix.index.lock"

struct mix_recovery {
	struct mix_index *idx;
	struct mix_builder b;
	int have_state;
	int have_index;      /* mix.index was loaded */
	struct mix_map *map;
	uint32_t indexid;
	/* the log position the state has reached */
	uint32_t pos_seq;
	uint64_t pos_off;
	uint32_t max_seq;    /* highest log file_seq ever seen */
	uint32_t idx_seq;    /* mix.index's own log position (have_index) */
	uint32_t uid_floor;  /* §2.7: UIDs below may have been handed out */
	uint64_t idx_off;
	int need_checkpoint;
	uint64_t gen;        /* generation of the state built (1 at open) */
	int quiet;           /* refresh: a torn tail is a write in progress */
	int gap;             /* replay_chain found a log missing or of
			      * another indexid (refresh: read again) */
	int recreate;        /* MIX_OPEN_RECREATE: a new index replaces it */
	int salvage;         /* MIX_OPEN_SALVAGE: keep what is valid */
	unsigned leftover;   /* bit i: logs[i] was an interrupted RECREATE's */
	uint32_t uid_jump;   /* next_uid a writable open must skip to (§2.7) */
	uint32_t idx_uid_floor; /* what mix.index states (§2.7) */
	/* open: warnings are kept here (NUL-separated) and given to the
	 * callback once the open succeeded, so that a recovery run again
	 * (rotation race, salvage restart) reports each thing once */
	struct mix_buf *warnings;
	/* MIX_OPEN_SALVAGE: transactions that did not apply, skipped whole
	 * by the next pass (mix_replay_txn is not atomic) */
	struct mix_salvage_skips *skips;
	struct mix_log_reader logs[2]; /* [0] .log.2, [1] .log */
	int have_log[2];
	/* mix.index.log.newtmp (format.md §3.5 "A rotation in two steps"):
	 * opened when it has a header (have_next); replayed when it
	 * continues the chain exactly where the logs end (next_adopted);
	 * otherwise its file_seq (or, without a header, the one after the
	 * active log's) counts as used (next_stale: a writable open skips it
	 * and replaces the file) */
	struct mix_log_reader next;
	int have_next, next_adopted, next_stale;
};

struct mix_salvage_skips {
	uint32_t n, cap;
	struct { uint32_t seq; uint64_t off; } *e;
	/* salvage: mix.index failed its checksum and the logs do not reach
	 * back to creation, so the next pass loads it without the checksum
	 * (every other check still applies) */
	int index_nocrc;
};

/* "dir/name" into buf (paths longer than size are cut, and then fail to
 * open). */
static inline void mix_dir_path(char *buf, size_t size, const char *dir,
				const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

/* A recovery for idx opened with flags, with the open's warning buffer
 * and salvage skip list (both kept across mix_recovery_run's restarts). */
void mix_recovery_init(struct mix_recovery *rc, struct mix_index *idx,
		       unsigned flags, struct mix_buf *warnings,
		       struct mix_salvage_skips *skips);

/* A whole recovery for mix_index_open with flags: mix.index (or the
 * first log when it is missing or damaged), the logs that belong, the
 * replay, the UID floor of a writable open; a read-only open that meets
 * a writer's rotation reads everything again (rc from
 * mix_recovery_init).  Records in idx->recovered where the state started
 * and where the replay ended.  0, or the error that refuses
 * the open (the state built so far stays in rc for mix_recovery_free). */
int mix_recovery_run(struct mix_recovery *rc, unsigned flags);

/* The steps refresh uses alone: mix.index into rc->b (and rc->map), both
 * logs opened, the replay from rc's position (rc->gap: a log is missing
 * or of another indexid, read everything again). */
int mix_recovery_load_index(struct mix_recovery *rc);
int mix_recovery_open_logs(struct mix_recovery *rc);
int mix_recovery_replay_chain(struct mix_recovery *rc);

/* Where the open's recovery started (mix.index's log position, or the
 * first log of a chain that reaches back to the index's creation) and
 * where its replay ended: mixctl check's positions, so that its checks
 * of the files follow the library's own choice (recovery.h top). */
void mix_index_recovered(const struct mix_index *idx,
			 struct mix_recovered *r);

/* A writable open whose replay adopted mix.index.log.newtmp, after the
 * checkpoint that covers it: make the log it continues and it durable
 * and finish the rotation's renames (format.md §3.5 "A rotation in two
 * steps"); rc's readers then follow the files (logs[1] is the adopted
 * one).  0 or the I/O error. */
int mix_recovery_adopt_next(struct mix_recovery *rc);

/* Close the logs rc opened (the builder and map are the caller's). */
void mix_recovery_free(struct mix_recovery *rc);

/* Give the warnings an open kept (rc->warnings) to the engine's
 * callback, in order, and empty w. */
void mix_recovery_warnings_flush(struct mix_index *idx, struct mix_buf *w);
/* A warning of the open or refresh rc runs: kept for the end of an open
 * (given only if the open succeeds), at once otherwise. */
void mix_recovery_warn(const struct mix_recovery *rc, const char *msg);

/* A file's identity (device, inode, size, change time): a follower
 * notices a replaced mix.index by it (refresh.c). */
struct mix_file_id mix_file_id_of(const struct stat *st);
int mix_file_id_eq(const struct mix_file_id *a, const struct mix_file_id *b);

#endif
