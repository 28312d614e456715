/*
 * Opening and closing an index (docs/design.md "Recovery and modseqs",
 * invariants 2-5; docs/format.md §3.4-§3.5).
 *
 * A writable open takes the directory's write lock (invariant 2), has
 * recovery.c build the state the files hold, publishes it, and then
 * (writer_setup) makes sure mix.index covers everything replayed and the
 * session's log gets a file_seq no log ever had, so that no modseq a
 * reader may have seen before a crash is ever issued again (invariant
 * 4).  A read-only open takes no lock and writes nothing; refresh.c
 * follows the writer afterwards.  Close hands the index to its writer
 * for a last checkpoint, releases the lock at once, and frees memory
 * after a grace period.
 *
 * Runs on the opening thread before any writer has the index, and close
 * runs after the writer let it go: no concurrency but readers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "commit.h"
#include "engine.h"
#include "err.h"
#include "ext-neutral.h"
#include "fileio.h"
#include "format.h"
#include "index-commit.h"
#include "index.h"
#include "index-registry.h"
#include "recovery.h"
#include "txn.h"

/* ---- the lock (invariant 2) ------------------------------------------ */

static int lock_same_boot(int fd);
static void lock_write(int fd, const char *boot);

static int lock_take(struct mix_index *idx)
{
	char path[4096], pidbuf[32] = "";
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd, n;

	mix_dir_path(path, sizeof(path), idx->dir, MIX_LOCK_FILENAME);
	fd = mix_io_open_own(idx->dirfd, path, O_RDWR, 0644);
	if (fd < 0)
		return fd;
	{
		/* wait for the holder up to lock_timeout_ms, polling */
		unsigned waited = 0, limit = idx->engine->cfg.lock_timeout_ms;
		while (fcntl(fd, F_OFD_SETLK, &fl) < 0 &&
		       (errno == EAGAIN || errno == EACCES) && waited < limit) {
			usleep(5000);
			waited += 5;
		}
	}
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		int e = errno;
		n = (int)pread(fd, pidbuf, sizeof(pidbuf) - 1, 0);
		pidbuf[n > 0 ? n : 0] = '\0';
		pidbuf[strcspn(pidbuf, " \n")] = '\0';
		close(fd);
		if (e == EAGAIN || e == EACCES)
			return mix_err(MIX_ELOCKED, "%s: locked for writing by "
				       "pid %s", path,
				       pidbuf[0] ? pidbuf : "(unknown)");
		errno = e;
		return mix_err_sys("fcntl(%s, F_OFD_SETLK)", path);
	}
	idx->lock_fd = fd;
	idx->same_boot = lock_same_boot(fd);
	return 0;
}

/* Write "<pid> <boot>" into the lock file (best effort: the lock holds
 * either way; only messages and the boot test read it).  One pwrite of
 * a fixed LOCK_TEXT_SIZE bytes (the line, then spaces; readers stop at
 * the newline) and no ftruncate: a process killed in between used to
 * leave an empty file, which the next open took for another boot,
 * skipping UIDs and setting a lost point for nothing (reliability.md
 * finding 11).  The file is never longer: every writer writes this
 * size. */
#define LOCK_TEXT_SIZE 96
static void lock_write(int fd, const char *boot)
{
	char buf[LOCK_TEXT_SIZE];
	int n = snprintf(buf, sizeof(buf), "%ld %.60s\n", (long)getpid(),
			 boot);
	if (n < 0 || n >= LOCK_TEXT_SIZE)
		n = LOCK_TEXT_SIZE - 1;
	memset(buf + n, ' ', sizeof(buf) - (size_t)n);
	buf[n > 0 ? n - 1 : 0] = '\n';
	if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf)) {
		/* a second writer's ELOCKED names no pid; the next open
		 * after a crash assumes another boot and skips UIDs it did
		 * not have to */
	}
}

/* The kernel's boot id (a new random UUID at every boot), or "". */
static void boot_id(char *buf, size_t size)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* The lock file says "<pid> <boot id>" of the last writer that finished
 * opening.  The same boot id means that writer ran since the last boot:
 * if it died, the page cache kept every write it made, so every UID it
 * handed out is in the log (format.md §2.7).  Anything else (another
 * boot, an old or unreadable file) may follow a power cut. */
static int lock_same_boot(int fd)
{
	char buf[96] = "", cur[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	const char *sp;
	int same;
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	boot_id(cur, sizeof(cur));
	sp = strchr(buf, ' ');
	same = cur[0] && sp && strcmp(sp + 1, cur) == 0;
	/* our pid for ELOCKED messages at once, but the old boot until the
	 * open is done (lock_sign): a crash during recovery must leave the
	 * next open the same verdict */
	lock_write(fd, sp ? sp + 1 : "-");
	return same;
}

/* After a writable open completed (any UID jump is durable): sign the
 * lock file with this process and boot. */
static void lock_sign(struct mix_index *idx)
{
	char cur[64];
	boot_id(cur, sizeof(cur));
	lock_write(idx->lock_fd, cur[0] ? cur : "-");
}

/* ---- open ---------------------------------------------------------------- */

/* RECREATE, after the new mix.index is in place: the old logs go. */
static int recreate_drop_logs(struct mix_index *idx)
{
	static const char *const names[2] = { MIX_LOG2_FILENAME,
					      MIX_LOG_FILENAME };
	char path[4096];
	int i, ret;
	for (i = 0; i < 2; i++) {
		mix_dir_path(path, sizeof(path), idx->dir, names[i]);
		if ((ret = mix_io_unlink_in(idx->dirfd, path)) < 0)
			return ret;
	}
	return 0;
}


/* The jump uid_floor_apply decided, as a header transaction through the
 * writer (logged, synced, published; replay gives the same state), and
 * in the same transaction the lost point (format.md §2.9): the last
 * writer may have lost writes a client saw, so no modseq issued before
 * this session's first log (lost_at) can be answered incrementally.  The
 * jump is decided exactly then (a reboot, an unreadable lock file or
 * lost logs, and a reservation above next_uid, which a close never
 * leaves).  Raising next_uid raises HIGHESTMODSEQ above lost_at, so a
 * client that synchronizes afterwards is incremental again. */
static int uid_jump_commit(struct mix_index *idx, uint32_t next_uid,
			   uint64_t lost_at)
{
	struct mix_txn *t;
	uint32_t lost_id;
	int ret = mix_index_ext_register_engine(idx, MIX_EXT_NAME_LOST,
						sizeof(lost_at), &lost_id);
	if (ret < 0 || (ret = mix_txn_begin(idx, &t)) < 0)
		return ret;
	mix_txn_engine(t);
	if ((ret = mix_txn_hdr_set(t, MIX_HDR_NEXT_UID, next_uid)) < 0 ||
	    (ret = mix_txn_ext_hdr_set(t, lost_id, 0, &lost_at,
				       sizeof(lost_at))) < 0) {
		mix_txn_free(t);
		return ret;
	}
	return mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL);
}



/* A writable salvage, once mix.index holds what was kept: the damaged
 * logs are renamed to mix.index.log.salvaged.<file_seq> (kept for the
 * operator, never read again), so the chain the next open reads is clean;
 * the next log skips a file_seq as after any lost active log. */
static int salvage_set_aside(struct mix_recovery *rc)
{
	static const char *const names[2] = { MIX_LOG2_FILENAME,
					      MIX_LOG_FILENAME };
	struct mix_index *idx = rc->idx;
	char from[4096], to[4200];
	int i, ret;

	idx->rotate_pending_seq = rc->max_seq + 2;
	for (i = 0; i < 2; i++) {
		if (!rc->have_log[i])
			continue;
		mix_dir_path(from, sizeof(from), idx->dir, names[i]);
		snprintf(to, sizeof(to), "%s.salvaged.%u", from,
			 rc->logs[i].hdr.file_seq);
		if ((ret = mix_io_rename_in(idx->dirfd, from, to)) < 0)
			return ret;
	}
	if ((ret = mix_io_fsync_dir_in(idx->dirfd, idx->dir)) < 0)
		return ret;
	return mix_index_rotate_pending(idx);
}

/* A writable open on a full disk (docs/reliability.md "A full disk"):
 * the recovery's checkpoint of what it replayed, and the session's new
 * log where the directory has no active one, only save later opens work;
 * the state they would record is whole on disk already (the logs,
 * fdatasync'ed above).  Out of room (ENOSPC, EDQUOT, nothing written:
 * the failed checkpoint removed its temporary file, a failed rotation
 * its new log), the open goes on without them and leaves the directory
 * as it found it: the first batch starts the session's log
 * (rotate_pending, which checkpoints first when the active log must
 * become .log.2), and until the room is there its commits fail with
 * -ENOSPC and nothing else, like any commit on a full disk.  Read-only
 * opens never write.  Other errors stay errors. */
static int defer_on_full_disk(struct mix_recovery *rc, int ret,
			      const char *what)
{
	char msg[768];

	if (ret != -ENOSPC && ret != -EDQUOT)
		return ret;
	snprintf(msg, sizeof(msg), "%s: the disk is full: the open's %s is "
		 "left to the first commit (%s)", rc->idx->dir, what,
		 mix_last_error());
	mix_recovery_warn(rc, msg);
	return 0;
}

/* Every modseq the session gives must be above the state's
 * HIGHESTMODSEQ, which its log position bounds in a file the engine
 * wrote.  One above it (a writer bug, a crafted or restored file) would
 * otherwise have the session hand out modseqs below what clients were
 * shown and report the old HIGHESTMODSEQ for every commit after: the
 * session's log starts high enough instead, or past 2^31 (refused by
 * the caller's mix_modseq_file_ok). */
static void session_seq_above_modseq(struct mix_recovery *rc)
{
	struct mix_index *idx = rc->idx;
	uint64_t hm = idx->snap->hdr.highest_modseq, seq;
	char msg[512];

	if ((hm >> 32) < rc->indexid)
		return;
	seq = (hm >> 32) + 1 - rc->indexid;
	if (seq <= idx->rotate_pending_seq)
		return;
	snprintf(msg, sizeof(msg), "%s: HIGHESTMODSEQ %llu is above the log "
		 "position of mix.index (seq %u): the session's log starts "
		 "at seq %llu, above it", idx->dir, (unsigned long long)hm,
		 rc->idx_seq, (unsigned long long)seq);
	mix_recovery_warn(rc, msg);
	idx->rotate_pending_seq = seq > UINT32_MAX ? UINT32_MAX : (uint32_t)seq;
}

/* §4: the session's log gets a file_seq no log ever had.  Without an
 * active log, a rotation may have been cut short after it created (and
 * maybe used, if mix.index.log was since lost) max_seq + 1: skip it.  A
 * next log (mix.index.log.newtmp, §3.5) was used up to its file_seq when
 * adopted; one not adopted may have been used too, as the one after the
 * active log when its header is unreadable. */
static uint32_t session_log_seq(const struct mix_recovery *rc)
{
	uint32_t top = rc->max_seq;
	int active = rc->have_log[1] || rc->next_adopted;

	if (rc->next_adopted && rc->next.hdr.file_seq > top)
		top = rc->next.hdr.file_seq;
	if (rc->next_stale) {
		uint32_t t = rc->have_next &&
			     rc->next.hdr.indexid == rc->indexid ?
			     rc->next.hdr.file_seq : 0;
		top = t > top + 1 ? t : top + 1;
	}
	return top + (active ? 1 : 2);
}

/* Writable open: make mix.index cover everything replayed.  The new log
 * file (file_seq above every log that may ever have existed, §4) is
 * started by the first write (rotate_pending in index-commit.c), so an
 * open and close without a change leaves every file as it was. */
static int writer_setup(struct mix_recovery *rc)
{
	struct mix_index *idx = rc->idx;
	struct mix_log_writer *lw = &idx->log;
	int ret;

	if (idx->info.created && rc->recreate) {
		/* the new mix.index first: from here on the old logs belong to
		 * another indexid and can never be continued */
		lw->hdr.indexid = rc->indexid;
		lw->hdr.file_seq = 1;
		lw->offset = sizeof(struct mix_log_header);
		if ((ret = mix_index_checkpoint(idx, 0)) < 0 ||
		    (ret = recreate_drop_logs(idx)) < 0)
			return ret;
	}
	if (idx->info.created) {
		idx->uid_floor = mix_index_uid_reserve(idx, 1);
		ret = mix_log_rotate_to_floor(idx->dirfd, idx->dir,
					      rc->indexid, 1, 0, 0,
					      idx->uid_floor, lw);
		if (ret < 0)
			return ret;
		return mix_index_checkpoint(idx, 1);
	}
	/* the old active log, as the position the state reached */
	lw->hdr.indexid = rc->indexid;
	lw->hdr.file_seq = rc->pos_seq;
	lw->hdr.hdr_size = sizeof(struct mix_log_header);
	lw->offset = rc->pos_off;
	idx->ckpt_seq = rc->idx_seq;
	idx->ckpt_off = rc->idx_off;
	idx->ckpt_uid_floor = rc->idx_uid_floor;
	/* every UID a crashed writer may have handed out stays below what
	 * this session's checkpoints state (§2.7) */
	idx->uid_floor = rc->uid_floor > idx->snap->hdr.next_uid ?
			 rc->uid_floor : idx->snap->hdr.next_uid;
	/* What we replayed must be on disk before mix.index or a new log
	 * says where it ended: the process that wrote it may have died with
	 * it in the page cache only (§2, §3.5).  That is the active log,
	 * and an adopted next log, in which the checkpoint below names the
	 * position — its data and its name, which the dead writer may have
	 * created without a directory fsync (a synchronous rotation cut
	 * short): synced only by the completion after the checkpoint, a
	 * power cut between the two left a mix.index beyond its logs.  The
	 * name, and every other the dead writer may have left pending, is
	 * made durable before this session's first change of a name: the
	 * checkpoint's, or the leftover unlinks below
	 * (mix_index_dir_found_durable). */
	if (rc->have_log[1] && (ret = mix_log_sync_path(idx->dirfd,
							rc->logs[1].path)) < 0)
		return ret;
	if (rc->next_adopted && (ret = mix_log_sync_path(idx->dirfd,
							rc->next.path)) < 0)
		return ret;
	lw->synced = lw->offset;   /* fdatasync'ed above, or not ours */
	/* an interrupted RECREATE's old logs: finish removing them, once
	 * its new mix.index is durable by name too */
	if (rc->leftover) {
		static const char *const names[2] = { MIX_LOG2_FILENAME,
						      MIX_LOG_FILENAME };
		char path[4096];
		int i;
		if ((ret = mix_index_dir_found_durable(idx)) < 0)
			return ret;
		for (i = 0; i < 2; i++) {
			if (!(rc->leftover & (1u << i)))
				continue;
			mix_dir_path(path, sizeof(path), idx->dir, names[i]);
			if ((ret = mix_io_unlink_in(idx->dirfd, path)) < 0)
				return ret;
		}
		if ((ret = mix_io_fsync_dir_in(idx->dirfd, idx->dir)) < 0)
			return ret;
	}
	idx->rotate_pending_seq = session_log_seq(rc);
	session_seq_above_modseq(rc);
	if (!mix_modseq_file_ok(rc->indexid, idx->rotate_pending_seq))
		return mix_err(MIX_ELIMIT, "%s: indexid %u + file_seq %u "
			       "reaches 2^31 (format.md §4)", idx->dir,
			       rc->indexid, idx->rotate_pending_seq);
	/* an adopted next log: mix.index covers it before the renames
	 * replace .log.2, which it then no longer needs (§3.5) */
	if (rc->need_checkpoint || !rc->have_index || idx->info.salvaged ||
	    rc->next_adopted) {
		ret = mix_index_checkpoint(idx, 0);
		/* chunks into the new mapping */
		if (ret == 0)
			ret = mix_index_remap_checked(idx);
		else if (!rc->next_adopted && !idx->info.salvaged)
			ret = defer_on_full_disk(rc, ret, "checkpoint");
		if (ret < 0)
			return ret;
	}
	if (rc->next_adopted && (ret = mix_recovery_adopt_next(rc)) < 0)
		return ret;
	if (idx->info.salvaged)
		return salvage_set_aside(rc);
	/* no active log (lost, or a rotation cut short), or a next log
	 * that was not adopted: start the session's log now, not at the
	 * first write, so that the directory is whole again even if this
	 * session changes nothing (every later open would find the logs
	 * missing otherwise, or the stale newtmp) */
	if (!rc->have_log[1] || rc->next_stale)
		return defer_on_full_disk(rc, mix_index_rotate_pending(idx),
					  "new log");
	return 0;
}


/* The index's own memory, once nothing can reach it. */
static void index_free_mem(struct mix_index *idx)
{
	mix_buf_free(&idx->batch);
	free(idx->watches);
	free(idx->held);
	pthread_mutex_destroy(&idx->watch_lock);
	pthread_mutex_destroy(&idx->refresh_lock);
	free(idx->dir);
	free(idx);
}

static void index_free_late(struct mix_rcu_head *h)
{
	index_free_mem(caa_container_of(h, struct mix_index, free_rcu));
}

/* After a grace period that began once the index was closed: no reader
 * can still be in its last snapshot, and the deferred frees of the
 * snapshots it replaced, queued before this call, have run (deferred
 * calls run in the order they were queued, rcu.h).  The index struct
 * itself goes one more turn later, after anything this queued. */
static void index_free_snaps(struct mix_rcu_head *h)
{
	struct mix_index *idx = caa_container_of(h, struct mix_index,
						 free_rcu);
	struct mix_robj *extra = idx->map ? &idx->map->robj : NULL;

	if (extra)
		extra->next = NULL;
	mix_reclaim_destroy(&idx->reclaim, idx->snap, extra);
	mix_rcu_defer(&idx->free_rcu, index_free_late);
}

/* Close the files now; free the memory after a grace period, on the
 * reclaim thread.  A close never waits for readers: a read-side section
 * held for minutes elsewhere in the process (issue 11) delays only the
 * free, not the close, the lock's release or a reopen. */
static void index_free(struct mix_index *idx)
{
	mix_index_ckpt_cancel(idx);   /* its pin goes before the snapshots */
	mix_log_writer_close(&idx->log);
	if (idx->lock_fd >= 0)
		close(idx->lock_fd);
	idx->lock_fd = -1;
	mix_io_close(&idx->dirfd);
	if (idx->snap) {
		mix_rcu_defer(&idx->free_rcu, index_free_snaps);
		return;
	}
	if (idx->map)
		mix_robj_free(&idx->map->robj);
	index_free_mem(idx);
}

static int index_alloc(struct mix_engine *e, const char *dir, unsigned flags,
		       struct mix_index **idx_r)
{
	struct mix_index *idx = calloc(1, sizeof(*idx));
	if (!idx || !(idx->dir = strdup(dir))) {
		free(idx);
		return MIX_ENOMEM();
	}
	idx->engine = e;
	idx->flags = flags;
	idx->lock_fd = -1;
	idx->dirfd = -1;
	idx->log.fd = -1;
	idx->rotate_size = e->cfg.log_rotate_size;
	idx->xhist_max = e->cfg.expunge_history_max;
	if (mix_reclaim_init(&idx->reclaim) < 0) {
		free(idx->dir);
		free(idx);
		return MIX_ENOMEM();
	}
	pthread_mutex_init(&idx->watch_lock, NULL);
	pthread_mutex_init(&idx->refresh_lock, NULL);
	*idx_r = idx;
	return 0;
}


int mix_index_open_one(struct mix_engine *e, const char *dir,
		       unsigned flags, struct mix_index **idx_r)
{
	struct mix_recovery rc;
	struct mix_index *idx;
	struct mix_buf warnings = { 0 };
	struct mix_salvage_skips skips = { 0 };
	int ret;

	*idx_r = NULL;
	if (!e || !dir || (flags & ~(MIX_OPEN_CREATE | MIX_OPEN_READONLY |
				     MIX_OPEN_RECREATE | MIX_OPEN_SALVAGE)) ||
	    ((flags & MIX_OPEN_READONLY) &&
	     (flags & (MIX_OPEN_CREATE | MIX_OPEN_RECREATE))))
		return mix_err(MIX_EINVAL, "mix_index_open: bad arguments");
	if ((ret = index_alloc(e, dir, flags, &idx)) < 0)
		return ret;
	mix_recovery_init(&rc, idx, flags, &warnings, &skips);
	/* a directory that is not there holds no index (as before the
	 * directory was held: the open looked for the index's files) */
	if ((idx->dirfd = mix_io_dir_open(dir)) == -ENOENT &&
	    !(flags & (MIX_OPEN_CREATE | MIX_OPEN_RECREATE)))
		ret = mix_err(MIX_ENOTFOUND, "%s: no index (no such "
			      "directory)", dir);
	else if (idx->dirfd < 0)
		ret = idx->dirfd;
	if (ret == 0 && !(flags & MIX_OPEN_READONLY))
		ret = lock_take(idx);
	if (ret == 0)
		ret = mix_recovery_run(&rc, flags);
	if (ret == 0) {
		idx->map = rc.map;
		rc.map = NULL;
		idx->log.hdr.file_seq = rc.pos_seq;
		idx->log.offset = rc.pos_off;
		ret = mix_index_publish(idx, &rc.b);
		rc.have_state = 0;
	}
	if (ret == 0 && !(flags & MIX_OPEN_READONLY))
		ret = writer_setup(&rc);
	if (rc.have_state)
		mix_builder_abort(&rc.b);
	if (rc.map)
		mix_robj_free(&rc.map->robj);
	mix_recovery_free(&rc);
	free(skips.e);
	/* what recovery worked around, once: the open did it (on failure
	 * the error says what stopped it) */
	if (ret == 0)
		mix_recovery_warnings_flush(idx, &warnings);
	mix_buf_free(&warnings);
	if (ret < 0) {
		char msg[512];
		mix_err_copy(msg, sizeof(msg));
		index_free(idx);
		return mix_err_set(ret, msg);
	}
	if (!(flags & MIX_OPEN_READONLY)) {
		/* the session's first log: every modseq issued before is
		 * below its start (writer_setup; read before a writer has
		 * the index) */
		uint64_t lost_at = mix_modseq_make(idx->log.hdr.indexid,
			idx->rotate_pending_seq ? idx->rotate_pending_seq
						: idx->log.hdr.file_seq, 0);
		idx->writer = &e->writers[__atomic_fetch_add(
			&e->next_writer, 1, __ATOMIC_RELAXED) % e->nwriters];
		if (rc.uid_jump &&
		    (ret = uid_jump_commit(idx, rc.uid_jump, lost_at)) < 0) {
			char msg[512];
			mix_err_copy(msg, sizeof(msg));
			__atomic_add_fetch(&e->open_indexes, 1,
					   __ATOMIC_RELAXED);
			mix_index_close(&idx);
			return mix_err_set(ret, msg);
		}
		/* only now: the jump is durable */
		lock_sign(idx);
	}
	__atomic_add_fetch(&e->open_indexes, 1, __ATOMIC_RELAXED);
	*idx_r = idx;
	return 0;
}

MIX_API void mix_index_stats(struct mix_index *idx,
			     struct mix_index_stats *st)
{
	memset(st, 0, sizeof(*st));   /* reserved included */
	pthread_mutex_lock(&idx->reclaim.lock);
	st->snapshots_live = idx->reclaim.live;
	st->snapshots_freed = idx->reclaim.snaps_freed;
	st->objects_freed = idx->reclaim.objs_freed;
	pthread_mutex_unlock(&idx->reclaim.lock);
}

int mix_index_claim_virtual(struct mix_index *idx, void *owner)
{
	void *none = NULL;
	/* relaxed: the owner pointer is the whole message */
	return __atomic_compare_exchange_n(&idx->virtual_owner, &none, owner,
					   0, __ATOMIC_RELAXED,
					   __ATOMIC_RELAXED) ? 0 : -1;
}

void mix_index_release_virtual(struct mix_index *idx, void *owner)
{
	void *mine = owner;
	(void)__atomic_compare_exchange_n(&idx->virtual_owner, &mine, NULL, 0,
					  __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

MIX_API void mix_index_open_info(struct mix_index *idx,
				 struct mix_open_info *info_r)
{
	*info_r = idx->info;
}

int mix_index_close_one(struct mix_index **idxp)
{
	struct mix_index *idx = *idxp;
	int ret = 0;

	if (!idx)
		return 0;
	/* ORDER(users): pairs with the release decrements of
	 * mix_view_close and mix_watch_close */
	if (__atomic_load_n(&idx->users, __ATOMIC_ACQUIRE) != 0)
		return mix_err(MIX_EINVAL, "%s: %u views or watchers still open",
			       idx->dir, idx->users);
	/* a mailbox list's STATUS cache holds this index (mix_list_attach):
	 * closing it under the list would leave the list a dangling
	 * pointer; the list's detach clears the hook */
	if (__atomic_load_n(&idx->has_hook, __ATOMIC_RELAXED))
		return mix_err(MIX_EINVAL, "%s: attached to a mailbox list "
			       "(mix_list_attach): detach it first", idx->dir);
	if (idx->writer) {
		struct mix_txn *t = calloc(1, sizeof(*t));
		if (!t)
			return MIX_ENOMEM();   /* still open; the caller may retry */
		*idxp = NULL;
		t->index = idx;
		t->kind = TXN_KIND_CLOSE;
		ret = mix_txn_commit_wait(t);
		mix_txn_free(t);
	}
	*idxp = NULL;
	__atomic_sub_fetch(&idx->engine->open_indexes, 1, __ATOMIC_RELAXED);
	index_free(idx);
	return ret;
}
