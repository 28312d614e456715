/*
 * Read-only followers (mix_index_refresh; docs/design.md "Recovery and
 * modseqs", docs/format.md §3.5): a MIX_OPEN_READONLY index catches up
 * with the writer of another process by replaying the log from the
 * position of its current snapshot, with recovery.c's steps, and
 * publishes the result.  A writer that rotated twice meanwhile, or
 * re-created the index, makes it load mix.index again.
 *
 * Any thread, one refresh of an index at a time (refresh_lock), never
 * inside a read-side section; readers see only the published snapshot.
 */
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fileio.h"
#include "index-commit.h"
#include "index-file.h"
#include "index.h"
#include "rcu.h"
#include "recovery.h"
#include "regfile.h"



/* A writer rotating renames mix.index.log to .log.2, fsyncs the
 * directory, then renames the new log into place: for those milliseconds
 * there is no mix.index.log, and a .log.2 opened just before may be the
 * older one.  A refresh that opens the logs then would miss acknowledged
 * commits, so when mix.index.log is missing it opens both again, for up
 * to 200 ms (after that the writer died mid-rotation: recovery's rules
 * apply as at open). */
static int open_logs_settled(struct mix_recovery *rc)
{
	int tries, ret = 0, i;
	for (tries = 0; tries < 100; tries++) {
		ret = mix_recovery_open_logs(rc);
		if (ret < 0 || rc->have_log[1])
			return ret;
		for (i = 0; i < 2; i++)
			if (rc->have_log[i]) {
				mix_log_reader_close(&rc->logs[i]);
				rc->have_log[i] = 0;
			}
		if (rc->have_next)
			mix_log_reader_close(&rc->next);
		rc->have_next = rc->next_stale = 0;
		usleep(2000);
	}
	return mix_recovery_open_logs(rc);
}

/* The logs moved past what this process has seen (two rotations): start
 * again from the writer's newer mix.index.  *gap_r: the logs moved on
 * again while this ran (worth another try). */
static int refresh_reload(struct mix_index *idx, const struct mix_snap *cur,
			  int *gap_r)
{
	struct mix_recovery rc;
	int ret;

	memset(&rc, 0, sizeof(rc));
	rc.idx = idx;
	rc.gen = cur->gen + 1;
	rc.quiet = 1;
	ret = mix_recovery_load_index(&rc);
	rc.b.xhist_max = idx->xhist_max;
	if (ret == 0)
		ret = open_logs_settled(&rc);
	if (ret == 0)
		ret = mix_recovery_replay_chain(&rc);
	if (ret == 0) {
		mix_builder_retire_all(&rc.b, cur, idx->map);
		idx->map = rc.map;
		rc.map = NULL;
		idx->log.hdr.file_seq = rc.pos_seq;
		idx->log.offset = rc.pos_off;
		ret = mix_index_publish(idx, &rc.b);
		rc.have_state = ret < 0;
	}
	if (rc.have_state)
		mix_builder_abort(&rc.b);
	if (rc.map)
		mix_robj_free(&rc.map->robj);
	*gap_r = rc.gap;
	mix_recovery_free(&rc);
	return ret < 0 ? ret : 1;
}

#define REFRESH_RELOAD_TRIES 50

/* Is mix.index now another index's (a RECREATE)?  A stat per refresh;
 * the header is read only when the file was replaced (every checkpoint
 * replaces it). */
static int refresh_recreated(struct mix_index *idx, uint32_t indexid)
{
	struct mix_file_id now;
	char path[4096];
	struct stat st;
	uint32_t id;
	int fd, other = 0;

	mix_dir_path(path, sizeof(path), idx->dir, MIX_INDEX_FILENAME);
	if (mix_io_stat_in(idx->dirfd, path, &st) < 0)
		return 0;
	now = mix_file_id_of(&st);
	if (mix_file_id_eq(&now, &idx->ifile_id))
		return 0;
	if ((fd = mix_regfile_open_ro_in(idx->dirfd, path, NULL)) < 0) {
		mix_err_clear();
		return 0;
	}
	if (pread(fd, &id, sizeof(id), offsetof(struct mix_index_header,
						  indexid)) == sizeof(id))
		other = id != indexid;
	close(fd);
	if (!other)   /* a checkpoint of the same index */
		idx->ifile_id = now;
	return other;
}

static int refresh_locked(struct mix_index *idx)
{
	const struct mix_snap *cur = idx->snap;
	struct mix_recovery rc;
	int ret, moved_on, tries;

	memset(&rc, 0, sizeof(rc));
	rc.idx = idx;
	rc.quiet = 1;
	rc.indexid = cur->hdr.indexid;
	rc.pos_seq = rc.max_seq = cur->hdr.log_file_seq;
	rc.pos_off = cur->hdr.log_file_head_offset;
	if ((ret = mix_builder_begin(&rc.b, cur)) < 0)
		return ret;
	rc.have_state = 1;
	rc.b.xhist_max = idx->xhist_max;
	ret = open_logs_settled(&rc);
	/* a log of another indexid, or a mix.index of another: the index was
	 * re-created (whatever file_seq its logs have now, and even before
	 * its first log, when a crash left the old logs): reload */
	if (ret == 0 && ((rc.have_log[0] && rc.logs[0].hdr.indexid != rc.indexid) ||
			 (rc.have_log[1] && rc.logs[1].hdr.indexid != rc.indexid) ||
			 refresh_recreated(idx, rc.indexid))) {
		rc.gap = 1;
		ret = mix_err(MIX_ECORRUPT, "%s: re-created", idx->dir);
	}
	if (ret == 0)
		ret = mix_recovery_replay_chain(&rc);
	if (ret == 0 && (rc.b.changed || rc.pos_seq != cur->hdr.log_file_seq ||
			 rc.pos_off != cur->hdr.log_file_head_offset)) {
		idx->log.hdr.file_seq = rc.pos_seq;
		idx->log.offset = rc.pos_off;
		ret = mix_index_publish(idx, &rc.b);
		rc.have_state = ret < 0;
		ret = ret < 0 ? ret : 1;
	}
	if (rc.have_state)
		mix_builder_abort(&rc.b);
	/* a log is gone, or the index was re-created: reload */
	moved_on = rc.gap || (rc.have_log[1] &&
			      rc.logs[1].hdr.indexid != rc.indexid);
	mix_recovery_free(&rc);
	/* A writer that rotates very often (every 4 KiB at 300 k commits/s
	 * is every few hundred µs) can move on twice more between reading
	 * mix.index and opening the logs: then read them again. */
	for (tries = 0; ret < 0 && moved_on && tries < REFRESH_RELOAD_TRIES;
	     tries++) {
		int gap = 0;
		ret = refresh_reload(idx, cur, &gap);
		moved_on = gap;
	}
	return ret;
}

/* The directory the index holds has no name left: a follower reads
 * files by their names in it (fileio.h "the _in calls"), so once it was
 * removed nothing new can come, and "nothing new" would hide that the
 * mailbox is gone (one fstat; a follower whose directory is renamed
 * follows it instead). */
static int dir_removed(const struct mix_index *idx)
{
	struct stat st;
	return fstat(idx->dirfd, &st) == 0 && st.st_nlink == 0;
}

MIX_API int mix_index_refresh(struct mix_index *idx)
{
	int ret;
	if (!(idx->flags & MIX_OPEN_READONLY))
		return mix_err(MIX_EINVAL, "%s: refresh is for read-only "
			       "opens; a writable index is always current",
			       idx->dir);
	if (mix_rcu_read_ongoing())
		return mix_err(MIX_EDEADLK, "refresh inside a read-side "
			       "section");
	pthread_mutex_lock(&idx->refresh_lock);
	ret = refresh_locked(idx);
	pthread_mutex_unlock(&idx->refresh_lock);
	if (ret == 0 && dir_removed(idx))
		ret = mix_err(MIX_ENOTFOUND, "%s: the index's directory was "
			      "removed while it was open (the mailbox was "
			      "deleted); nothing more will come", idx->dir);
	return ret;
}
