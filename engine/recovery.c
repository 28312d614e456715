/*
 * Recovery: from an index directory's files to the state they hold
 * (docs/design.md "Recovery and modseqs", invariants 2-5; docs/format.md
 * §3.4-§3.5; recovery.h says who calls what).
 *
 * mix.index is mapped and verified, then the logs are replayed from the
 * index's log position: mix.index.log.2 (if the position is in it), then
 * mix.index.log.  A torn transaction at the tail is cut off (reported,
 * never appended after).  Logs that do not belong (swapped, copied from
 * another index, a mix.index from elsewhere) are MIX_ECORRUPT naming the
 * file and field.  Without a usable mix.index the state starts from the
 * first log if the chain reaches back to the index's creation.  A
 * writable open then lets index.c's writer_setup make mix.index cover
 * what was replayed and continue in a log file_seq no log ever had, so
 * that no modseq a reader may have seen before a crash is issued again
 * (invariant 4).
 *
 * Runs on the opening (or refreshing) thread before any writer has the
 * index: no concurrency but readers of earlier snapshots.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "engine.h"
#include "err.h"
#include "fileio.h"
#include "index-file.h"
#include "index.h"
#include "recovery.h"
#include "regfile.h"
#include "replay.h"


/* Internal: replay_one found a transaction salvage must skip; run the
 * recovery again (recover_retry). */
#define SALVAGE_RESTART (-EAGAIN)
/* At most this many transactions skipped by one salvage. */
#define SALVAGE_SKIPS_MAX 4096

static void warn(struct mix_index *idx, const char *msg)
{
	const struct mix_engine_config *c = &idx->engine->cfg;
	if (c->warning)
		c->warning(c->warning_ctx, msg);
}

void mix_recovery_warn(const struct mix_recovery *rc, const char *msg)
{
	if (!rc->warnings ||
	    mix_buf_append(rc->warnings, msg, strlen(msg) + 1) < 0)
		warn(rc->idx, msg);
}

void mix_recovery_warnings_flush(struct mix_index *idx, struct mix_buf *w)
{
	size_t at;
	for (at = 0; at < w->len; at += strlen((char *)w->data + at) + 1)
		warn(idx, (char *)w->data + at);
	w->len = 0;
}

/* ---- initial states ---------------------------------------------------- */

/* The indexid of a new index: seconds since 2020 (format.md §2.1, §4),
 * but never one this process gave out before, so that two mailboxes a
 * process creates in the same second still differ, and a log copied
 * between them is refused for its indexid (§3.5).  (Indexes created by
 * two processes in the same second can still share one.)  The counter
 * may run ahead of the clock by the number of creates in a burst, which
 * only moves modseqs up. */
static uint32_t now_indexid(void)
{
	static uint32_t last;   /* atomic: any opening thread */
	time_t now = time(NULL);
	uint32_t id = now > MIX_INDEXID_EPOCH ?
		      (uint32_t)(now - MIX_INDEXID_EPOCH) : 1;
	uint32_t prev = __atomic_load_n(&last, __ATOMIC_RELAXED);

	/* relaxed: the value is the whole message, nothing is published
	 * with it */
	do {
		if (id <= prev)
			id = prev + 1;
	} while (!__atomic_compare_exchange_n(&last, &prev, id, 0,
					      __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return id;
}

/* The header of a new, empty index whose first log is file_seq. */
static void empty_header(struct mix_index_header *h, uint32_t indexid,
			 uint32_t file_seq)
{
	memset(h, 0, sizeof(*h));
	h->indexid = indexid;
	h->next_uid = 1;
	h->first_recent_uid = 1;
	h->first_unseen_uid_lowwater = 1;
	h->first_deleted_uid_lowwater = 1;
	/* docs/format.md §4: below every modseq this index will issue */
	h->highest_modseq = mix_modseq_make(indexid, file_seq, 0);
}

static int state_empty(struct mix_recovery *rc, uint32_t indexid,
		       uint32_t file_seq)
{
	struct mix_index_header h;
	empty_header(&h, indexid, file_seq);
	rc->indexid = indexid;
	rc->have_state = 1;
	return mix_builder_init_empty(&rc->b, rc->gen, &h);
}

/* §2.7: the UID floor mix.index states (0: none, a file written before
 * it existed; a malformed one is treated as none). */
static uint32_t ifile_uid_floor(const struct mix_ifile *f)
{
	uint32_t i, v = 0;
	for (i = MIX_EXT_FIRST; i < f->ext_count; i++)
		if (strcmp(f->exts[i].name, MIX_EXT_NAME_UIDS) == 0 &&
		    f->exts[i].hdr_size == 8)
			memcpy(&v, f->exts[i].hdr, sizeof(v));
	return v;
}

/* A file's identity for refresh_recreated: device, inode, size and
 * change time (an inode number alone may be reused by the next file). */
struct mix_file_id mix_file_id_of(const struct stat *st)
{
	struct mix_file_id id = { (uint64_t)st->st_dev, (uint64_t)st->st_ino,
				  (uint64_t)st->st_size,
				  (int64_t)st->st_ctim.tv_sec,
				  (int64_t)st->st_ctim.tv_nsec };
	return id;
}

int mix_file_id_eq(const struct mix_file_id *a,
		      const struct mix_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec;
}

/* The identity of the mix.index file a state came from (a follower
 * notices a re-created index by it, refresh_recreated). */
static void ifile_note(struct mix_index *idx, const char *path)
{
	struct stat st;
	if (mix_io_stat_in(idx->dirfd, path, &st) == 0)
		idx->ifile_id = mix_file_id_of(&st);
}

int mix_recovery_load_index(struct mix_recovery *rc)
{
	struct mix_index *idx = rc->idx;
	struct mix_ifile f;
	char path[4096];
	int ret;

	mix_dir_path(path, sizeof(path), idx->dir, MIX_INDEX_FILENAME);
	if (rc->skips != NULL && rc->skips->index_nocrc) {
		ret = mix_ifile_open_nocrc_in(idx->dirfd, path, &f);
		if (ret == 0) {
			char msg[4400];
			snprintf(msg, sizeof(msg), "%s: field checksum at "
				 "offset 108 does not match, and the logs do "
				 "not reach back to the index's creation: "
				 "salvage loaded it without its checksum "
				 "(every other check passed; clients resync "
				 "below the lost point)", path);
			mix_recovery_warn(rc, msg);
			idx->info.salvaged = 1;
		}
	} else {
		ret = mix_ifile_open_in(idx->dirfd, path, &f);
	}
	if (ret < 0)
		return ret;
	rc->map = calloc(1, sizeof(*rc->map));
	if (!rc->map) {
		mix_ifile_free(&f);
		return MIX_ENOMEM();
	}
	rc->map->robj.kind = MIX_ROBJ_MAP;
	rc->map->robj.born_gen = rc->gen;
	rc->map->addr = f.map;
	rc->map->size = f.map_size;
	rc->uid_floor = rc->idx_uid_floor = ifile_uid_floor(&f);
	ifile_note(idx, path);
	ret = mix_builder_from_ifile(&rc->b, rc->gen, &f, rc->map);
	if (ret < 0) {
		mix_ifile_free(&f);
		free(rc->map);
		rc->map = NULL;
		return ret;
	}
	mix_ifile_free_keep_map(&f);
	rc->have_state = rc->have_index = 1;
	rc->indexid = rc->b.hdr.indexid;
	rc->pos_seq = rc->idx_seq = rc->b.hdr.log_file_seq;
	rc->pos_off = rc->idx_off = rc->b.hdr.log_file_head_offset;
	rc->max_seq = rc->pos_seq;
	return 0;
}

/* A log left over from the index this one re-created (MIX_OPEN_RECREATE
 * interrupted before it removed the old logs): an older indexid whose
 * every modseq is below this index's.  It is ignored, and replaced at the
 * next rotation. */
static int stale_log(const struct mix_recovery *rc, const struct mix_log_header *h)
{
	return h->indexid < rc->indexid &&
	       (uint64_t)h->indexid + h->file_seq <
		       (uint64_t)rc->indexid + (rc->pos_seq ? rc->pos_seq : 1);
}

/* §3.5 "A rotation in two steps": the next log, appended to before its
 * rename.  Opened after .log.2 and before .log: files move from newtmp
 * to .log to .log.2, so a completion racing with a follower either
 * leaves newtmp where it is found, or has already moved it to .log,
 * which is opened after; opened last, it could be gone to a name already
 * read, and the commits in it missed without a gap to show for it.  A
 * file without a usable header was created for a switch that went no
 * further: never read, but its file_seq may have been used. */
static int open_next(struct mix_recovery *rc)
{
	char path[4096];
	int ret;

	mix_dir_path(path, sizeof(path), rc->idx->dir, MIX_LOG_TMP_FILENAME);
	ret = mix_log_reader_open_in(rc->idx->dirfd, path, &rc->next);
	if (ret == 0)
		rc->have_next = 1;
	else if (ret == MIX_ECORRUPT)
		rc->next_stale = 1;   /* no header, or not a log's */
	else if (ret != -ENOENT)
		return ret;   /* unread, it could hold acknowledged commits */
	if (ret < 0)
		mix_err_clear();
	return 0;
}

int mix_recovery_open_logs(struct mix_recovery *rc)
{
	static const char *const names[2] = { MIX_LOG2_FILENAME,
					      MIX_LOG_FILENAME };
	char path[4096];
	int i, ret;

	for (i = 0; i < 2; i++) {
		if (i == 1 && (ret = open_next(rc)) < 0)
			return ret;
		mix_dir_path(path, sizeof(path), rc->idx->dir, names[i]);
		ret = mix_log_reader_open_in(rc->idx->dirfd, path,
					     &rc->logs[i]);
		if (ret == -ENOENT)
			continue;
		if (ret < 0)
			return ret;
		/* at open, check_logs decides what a log of another
		 * indexid is */
		if (rc->quiet && rc->have_state &&
		    stale_log(rc, &rc->logs[i].hdr)) {
			mix_log_reader_close(&rc->logs[i]);
			continue;
		}
		rc->have_log[i] = 1;
		if (rc->logs[i].hdr.file_seq > rc->max_seq)
			rc->max_seq = rc->logs[i].hdr.file_seq;
	}
	return 0;
}

/* mix.index names a position in the next log (a writable open that
 * adopted it checkpointed before its renames, and crashed between). */
static int next_at_pos(const struct mix_recovery *rc)
{
	return rc->have_next && rc->next.hdr.indexid == rc->indexid &&
	       rc->next.hdr.file_seq == rc->pos_seq;
}

static void drop_log(struct mix_recovery *rc, int i)
{
	mix_log_reader_close(&rc->logs[i]);
	rc->have_log[i] = 0;
}

/* Logs that do not belong (docs/format.md §3.5 "Which logs belong"):
 * every state a crash or a rotation can leave passes; a log swapped,
 * copied from another index or another time, or a mix.index from
 * elsewhere, is MIX_ECORRUPT naming the file and the field, because
 * opening it would silently drop acknowledged commits.  Runs at open,
 * after mix.index (if any) gave the state. */
static int check_logs(struct mix_recovery *rc)
{
	struct mix_log_reader *l2 = &rc->logs[0], *l = &rc->logs[1];
	const char *dir = rc->idx->dir;
	int i;

	for (i = 0; i < 2 && rc->have_index; i++) {
		const struct mix_log_header *h = &rc->logs[i].hdr;
		if (!rc->have_log[i] || h->indexid == rc->indexid)
			continue;
		/* MIX_OPEN_RECREATE writes the new mix.index, then removes
		 * the old logs: a crash between leaves them beside an index
		 * that has logged nothing yet */
		if (rc->pos_seq == 1 && rc->pos_off ==
		    sizeof(struct mix_log_header) && stale_log(rc, h)) {
			rc->leftover |= 1u << i;   /* a writer removes it */
			drop_log(rc, i);
			continue;
		}
		return mix_err(MIX_ECORRUPT, "%s: field indexid (offset 8) is "
			       "%u, but %s/%s has indexid %u: the log belongs "
			       "to another index (or mix.index does)",
			       rc->logs[i].path, h->indexid, dir,
			       MIX_INDEX_FILENAME, rc->indexid);
	}
	if (rc->have_log[0] && rc->have_log[1]) {
		if (l2->hdr.indexid != l->hdr.indexid)
			return mix_err(MIX_ECORRUPT, "%s: field indexid (offset "
				       "8) is %u, but %s has %u: the logs "
				       "belong to different indexes", l2->path,
				       l2->hdr.indexid, l->path,
				       l->hdr.indexid);
		if (l2->hdr.file_seq >= l->hdr.file_seq)
			return mix_err(MIX_ECORRUPT, "%s: field file_seq "
				       "(offset 12) is %u, not below %s's %u: "
				       "the logs were swapped or copied",
				       l2->path, l2->hdr.file_seq, l->path,
				       l->hdr.file_seq);
		if (l->hdr.prev_file_seq != l2->hdr.file_seq) {
			if (rc->have_state && l2->hdr.file_seq >= rc->pos_seq)
				return mix_err(MIX_ECORRUPT, "%s: field "
					       "prev_file_seq (offset 16) is "
					       "%u, but %s is file_seq %u: the "
					       "logs do not form a chain",
					       l->path, l->hdr.prev_file_seq,
					       l2->path, l2->hdr.file_seq);
			drop_log(rc, 0);  /* history nobody needs */
		}
	}
	if (rc->have_index && rc->have_log[1] && l->hdr.file_seq < rc->pos_seq &&
	    !next_at_pos(rc))
		return mix_err(MIX_ECORRUPT, "%s/%s: field log_file_seq (offset "
			       "56) is %u, beyond the active log %s (file_seq "
			       "%u): mix.index is from a later state than its "
			       "logs", dir, MIX_INDEX_FILENAME, rc->pos_seq,
			       l->path, l->hdr.file_seq);
	return 0;
}

/* Every log mix.index's position needs is gone (neither log is at or
 * after it).  What was logged after the checkpoint cannot be recovered,
 * but nothing may be issued twice: the next log skips every file_seq
 * the lost ones can have had (writer_setup), and the open says so. */
static void check_logs_lost(struct mix_recovery *rc)
{
	struct mix_index *idx = rc->idx;
	char msg[512];

	if (!rc->have_index || rc->have_log[1] || next_at_pos(rc) ||
	    (rc->have_log[0] && rc->logs[0].hdr.file_seq >= rc->pos_seq))
		return;
	if (rc->leftover) {
		/* a RECREATE interrupted before its first log: nothing of
		 * the new index was ever logged, so nothing is missing */
		snprintf(msg, sizeof(msg), "%s: old logs left by an interrupted "
			 "re-creation are ignored (the next writer removes "
			 "them)", idx->dir);
		mix_recovery_warn(rc, msg);
		return;
	}
	idx->info.logs_missing = 1;
	snprintf(msg, sizeof(msg), "%s: %s and %s are missing: changes "
		 "logged after mix.index's checkpoint (log seq %u offset "
		 "%llu), if there were any, are lost; new changes continue "
		 "above every modseq the lost logs can have issued", idx->dir,
		 MIX_LOG_FILENAME, MIX_LOG2_FILENAME, rc->pos_seq,
		 (unsigned long long)rc->pos_off);
	mix_recovery_warn(rc, msg);
}

/* ---- replay ------------------------------------------------------------ */

/* MIX_OPEN_SALVAGE: say what was lost, once per damaged range. */
static void salvage_note(struct mix_recovery *rc, const char *what);

/* Salvage across a break in the chain: the log continues from another
 * position than the state reached; whatever lay between is lost. */
static void gap_salvaged(struct mix_recovery *rc, const struct mix_log_reader *r)
{
	char msg[768];
	snprintf(msg, sizeof(msg), "salvage: %s continues from log seq %u "
		 "offset %u, but the state reached seq %u offset %llu: what "
		 "was logged between is lost", r->path, r->hdr.prev_file_seq,
		 r->hdr.prev_file_offset, rc->pos_seq,
		 (unsigned long long)rc->pos_off);
	salvage_note(rc, msg);
}

/* MIX_OPEN_SALVAGE: say what was lost, once per damaged range. */
static void salvage_note(struct mix_recovery *rc, const char *what)
{
	struct mix_index *idx = rc->idx;
	idx->info.salvaged = 1;
	mix_recovery_warn(rc, what);
}

/* Replay one transaction; in salvage mode a transaction that does not
 * apply (it depended on a lost one, or breaks §3.3) is skipped and
 * reported instead of failing the open. */
static int salvage_skipped(const struct mix_salvage_skips *sk, uint32_t seq,
			   uint64_t off)
{
	uint32_t i;
	for (i = 0; i < sk->n; i++)
		if (sk->e[i].seq == seq && sk->e[i].off == off)
			return 1;
	return 0;
}

/* Salvage: a transaction that did not apply.  mix_replay_txn may have
 * applied some of its records before the one that failed, so the state
 * built so far is not used: the transaction goes on the skip list and
 * recovery runs again from the start (recover_retry), skipping it whole. */
static int salvage_skip_add(struct mix_recovery *rc, struct mix_log_reader *r,
			    uint32_t size, uint64_t off)
{
	struct mix_salvage_skips *sk = rc->skips;
	char msg[768];

	if (sk->n == SALVAGE_SKIPS_MAX)
		return mix_err(MIX_ECORRUPT, "%s: salvage gives up after "
			       "%u transactions that do not apply",
			       r->path, sk->n);
	if (sk->n == sk->cap) {
		uint32_t cap = sk->cap ? 2 * sk->cap : 16;
		void *e = realloc(sk->e, cap * sizeof(sk->e[0]));
		if (!e)
			return MIX_ENOMEM();
		sk->e = e;
		sk->cap = cap;
	}
	sk->e[sk->n].seq = r->hdr.file_seq;
	sk->e[sk->n++].off = off;
	snprintf(msg, sizeof(msg), "salvage: transaction at offset %llu "
		 "(%u bytes) of %s skipped: %s", (unsigned long long)off, size,
		 r->path, mix_last_error());
	/* given now: the pass that found it is thrown away with its list */
	warn(rc->idx, msg);
	return SALVAGE_RESTART;
}

/* Replay one transaction; in salvage mode a transaction that does not
 * apply (it depended on a lost one, or breaks §3.3) is skipped whole and
 * reported instead of failing the open. */
static int replay_one(struct mix_recovery *rc, struct mix_log_reader *r,
		      const uint8_t *txn, uint32_t size, uint64_t off)
{
	struct mix_index *idx = rc->idx;
	int ret;

	if (rc->salvage && salvage_skipped(rc->skips, r->hdr.file_seq, off)) {
		idx->info.salvaged = 1;
		idx->info.salvage_skipped_txns++;
		idx->info.salvage_skipped_bytes += size;
		return 0;
	}
	ret = mix_replay_txn(&rc->b, txn, size, r->hdr.major_version,
			     mix_modseq_make(rc->indexid, r->hdr.file_seq,
					     (uint32_t)off),
			     r->path, off);
	if (ret == 0 || ret == -ENOMEM || !rc->salvage)
		return ret;
	return salvage_skip_add(rc, r, size, off);
}

/* docs/format.md §3.4: a stop before the end of the valid data.  A torn
 * tail of the last log is dropped and reported; damage (a bad transaction
 * that a later PREV_SYNCED one proves was durable), or a stop before the
 * position the next log records, is MIX_ECORRUPT, unless salvaging:
 * then the reader moves to the next well-framed transaction and the
 * skipped bytes are reported.  Returns 1 to go on reading, 0 at the end,
 * or an error. */
static int replay_stop(struct mix_recovery *rc, struct mix_log_reader *r,
		       uint64_t limit, int last)
{
	struct mix_index *idx = rc->idx;
	char msg[768];

	if (!r->torn || r->pos >= limit || rc->quiet)
		return 0;
	if (rc->salvage && r->next_valid && r->next_valid < limit) {
		uint64_t from = r->torn_offset, to = r->next_valid;
		snprintf(msg, sizeof(msg), "salvage: %s: bytes %llu..%llu "
			 "skipped (%s)", r->path, (unsigned long long)from,
			 (unsigned long long)to, r->torn_reason);
		idx->info.salvage_skipped_bytes += to - from;
		salvage_note(rc, msg);
		return mix_log_reader_skip_damage(r);
	}
	if (r->damaged && !rc->salvage)
		return mix_err(MIX_ECORRUPT, "%s (open with MIX_OPEN_SALVAGE "
			       "or mixctl salvage to keep every valid "
			       "transaction)", r->torn_reason);
	if (!last && !rc->salvage)
		return mix_err(MIX_ECORRUPT, "%s; the next log says valid data "
			       "runs to offset %llu", r->torn_reason,
			       (unsigned long long)limit);
	if (!last) {
		snprintf(msg, sizeof(msg), "salvage: %s: bytes %llu..%llu "
			 "lost (%s)", r->path,
			 (unsigned long long)r->torn_offset,
			 (unsigned long long)limit, r->torn_reason);
		idx->info.salvage_skipped_bytes += limit - r->torn_offset;
		salvage_note(rc, msg);
		return 0;
	}
	idx->info.dropped_bytes = r->size - r->torn_offset;
	idx->info.dropped_file_seq = r->hdr.file_seq;
	idx->info.dropped_offset = (uint32_t)r->torn_offset;
	mix_recovery_warn(rc, r->torn_reason);
	return 0;
}

static int replay_log(struct mix_recovery *rc, struct mix_log_reader *r,
		      uint64_t from, uint64_t limit, int last)
{
	struct mix_index *idx = rc->idx;
	const uint8_t *txn;
	uint32_t size;
	uint64_t off;
	int ret;

	if ((ret = mix_log_reader_seek(r, from)) < 0) {
		if (from > r->size)
			return mix_err(MIX_ECORRUPT, "%s: the log ends at offset "
				       "%llu, before the position %llu that %s "
				       "says it holds (§3.4)", r->path,
				       (unsigned long long)r->size,
				       (unsigned long long)from,
				       from == rc->idx_off ? MIX_INDEX_FILENAME
							   : "the chain");
		return ret;
	}
	do {
		while (r->pos < limit &&
		       (ret = mix_log_reader_next(r, &txn, &size, &off)) > 0) {
			if ((ret = replay_one(rc, r, txn, size, off)) < 0)
				return ret;
			idx->info.replayed_txns++;
			rc->need_checkpoint = 1;
		}
		if (ret < 0)
			return ret;
	} while ((ret = replay_stop(rc, r, limit, last)) > 0);
	if (ret < 0)
		return ret;
	rc->pos_seq = r->hdr.file_seq;
	rc->pos_off = r->pos;
	return 0;
}

/* §3.5 "A rotation in two steps": mix.index.log.newtmp is the next log
 * when it continues exactly where the replay of the others ended (or
 * holds the state's position itself: a follower already read some of
 * it, or mix.index names it); its transactions were visible, and after
 * a crash in the same boot they were acknowledged, so they are
 * replayed.  Otherwise it is what a power cut left of a switch whose
 * completion did not happen: the old log lost the tail the new one
 * continues, or its header never reached the disk.  Then nothing of it
 * is read, and its file_seq counts as used (next_stale): nothing it
 * held was durable, and the lost point (format.md §2.9) covers what
 * clients saw of it.  Salvage adopts it on the same terms (it keeps
 * every valid transaction; a gap before the next log is not crossed). */
static int replay_next(struct mix_recovery *rc)
{
	struct mix_log_reader *r = &rc->next;
	int i, at_pos = 0, ret;

	if (!rc->have_next || rc->next_adopted)
		return 0;
	if (r->hdr.indexid == rc->indexid && r->hdr.file_seq == rc->pos_seq) {
		at_pos = 1;
		for (i = 0; i < 2; i++)
			if (rc->have_log[i] &&
			    rc->logs[i].hdr.file_seq == rc->pos_seq)
				at_pos = 0;   /* that log was the one read */
	}
	if (r->hdr.indexid != rc->indexid ||
	    (!at_pos && (r->hdr.file_seq <= rc->pos_seq ||
			 r->hdr.prev_file_seq != rc->pos_seq ||
			 r->hdr.prev_file_offset != rc->pos_off))) {
		rc->next_stale = 1;
		return 0;
	}
	ret = replay_log(rc, r, at_pos ? rc->pos_off : r->hdr.hdr_size, r->size,
			 1);
	if (ret == 0)
		rc->next_adopted = 1;
	return ret;
}

/* Replay every log at or after the state's position, checking that the
 * chain (file_seq, prev_file_seq, prev_file_offset) has no gap. */
int mix_recovery_replay_chain(struct mix_recovery *rc)
{
	int i, ret;
	for (i = 0; i < 2; i++) {
		struct mix_log_reader *r = &rc->logs[i];
		uint64_t limit = r->size;
		if (!rc->have_log[i] || r->hdr.file_seq < rc->pos_seq)
			continue;
		if (r->hdr.indexid != rc->indexid) {
			/* to a follower's refresh, a writer in the middle
			 * of a RECREATE (a new mix.index or a new log read
			 * with an old one): read everything again (only
			 * refresh reads gap) */
			rc->gap = 1;
			return mix_err(MIX_ECORRUPT, "%s: field indexid: %u, "
				       "but the index is %u", r->path,
				       r->hdr.indexid, rc->indexid);
		}
		if (i == 0 && rc->have_log[1] &&
		    rc->logs[1].hdr.prev_file_seq == r->hdr.file_seq)
			limit = rc->logs[1].hdr.prev_file_offset;
		if (r->hdr.file_seq == rc->pos_seq) {
			ret = replay_log(rc, r, rc->pos_off, limit, i == 1 ||
					 !rc->have_log[1]);
		} else if ((r->hdr.prev_file_seq == rc->pos_seq &&
			    r->hdr.prev_file_offset == rc->pos_off) ||
			   rc->salvage) {
			/* §3.5: a log continues exactly where the state
			 * is.  A prev_file_offset below it means the state
			 * holds transactions the chain lost (a follower
			 * that saw commits whose logs were then lost): not
			 * a continuation. */
			if (r->hdr.prev_file_seq != rc->pos_seq ||
			    r->hdr.prev_file_offset != rc->pos_off)
				gap_salvaged(rc, r);
			ret = replay_log(rc, r, r->hdr.hdr_size, limit, i == 1);
		} else {
			rc->gap = 1;
			return mix_err(MIX_ECORRUPT, "%s: log file_seq %u "
				       "(prev %u offset %u) does not continue "
				       "from seq %u offset %llu: a log is "
				       "missing", r->path, r->hdr.file_seq,
				       r->hdr.prev_file_seq,
				       r->hdr.prev_file_offset, rc->pos_seq,
				       (unsigned long long)rc->pos_off);
		}
		if (ret < 0)
			return ret;
	}
	return replay_next(rc);
}

/* No usable mix.index: start from the first log of the chain if the logs
 * reach back to the index's creation (prev_file_seq == 0). */
static int rebuild_start(struct mix_recovery *rc)
{
	int i;
	for (i = 0; i < 2; i++) {
		struct mix_log_reader *r = &rc->logs[i];
		if (rc->have_log[i] && r->hdr.prev_file_seq == 0) {
			if (state_empty(rc, r->hdr.indexid, r->hdr.file_seq) < 0)
				return MIX_ENOMEM();
			rc->pos_seq = r->hdr.file_seq;
			rc->pos_off = r->hdr.hdr_size;
			rc->need_checkpoint = 1;
			return 1;
		}
	}
	return 0;
}

/* ---- a whole recovery ---------------------------------------------------- */


/* RECREATE: the indexid of the new index, above every modseq the old
 * one (its logs and its mix.index) can have issued.  Nothing is removed
 * here: the new mix.index replaces the old one first (writer_setup), so a
 * failure at any step leaves either the old index or the new one, never
 * an old state that would issue a modseq again. */
static int recreate_indexid(struct mix_index *idx, uint32_t *indexid_r)
{
	static const char *const names[3] = { MIX_LOG_FILENAME,
					      MIX_LOG2_FILENAME,
					      MIX_LOG_TMP_FILENAME };
	struct mix_index_header h;
	uint64_t floor = 0;
	char path[4096];
	int i, fd;

	for (i = 0; i < 3; i++) {
		struct mix_log_reader r;
		mix_dir_path(path, sizeof(path), idx->dir, names[i]);
		if (mix_log_reader_open_in(idx->dirfd, path, &r) == 0) {
			uint64_t top = (uint64_t)r.hdr.indexid + r.hdr.file_seq;
			if (top > floor)
				floor = top;
			mix_log_reader_close(&r);
		}
	}
	mix_dir_path(path, sizeof(path), idx->dir, MIX_INDEX_FILENAME);
	/* never blocks on a FIFO */
	fd = mix_regfile_open_ro_in(idx->dirfd, path, NULL);
	if (fd < 0)
		mix_err_clear();   /* no usable old mix.index: no floor from it */
	if (fd >= 0) {
		if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
		    h.magic == MIX_INDEX_MAGIC &&
		    (uint64_t)h.indexid + h.log_file_seq + 1 > floor)
			floor = (uint64_t)h.indexid + h.log_file_seq + 1;
		close(fd);
	}
	/* modseq = (indexid + seq) << 32: the new index's first log (seq 1)
	 * must start above everything the old one issued */
	*indexid_r = now_indexid();
	if (floor >= *indexid_r)
		*indexid_r = floor > 0x7ffffff0u ? 0x7ffffff1u : (uint32_t)floor;
	if (*indexid_r > 0x7ffffff0u)
		return mix_err(MIX_ELIMIT, "%s: indexid exhausted", idx->dir);
	return 0;
}

static int recover_states(struct mix_recovery *rc, unsigned flags);

/* §2.7: the highest UID that may have been handed out, after replay:
 * mix.index's floor, the header floor of every log started after it,
 * and the UID_FLOOR records replayed.  Lost logs may have raised it by
 * up to MIX_UID_STEP_MAX more per reservation; they add that much. */
static uint32_t recovered_uid_floor(const struct mix_recovery *rc)
{
	uint64_t f = rc->uid_floor;
	int i;
	for (i = 0; i < 2; i++)
		if (rc->have_log[i] && (!rc->have_index ||
					rc->logs[i].hdr.file_seq > rc->idx_seq) &&
		    rc->logs[i].hdr.uid_floor > f)
			f = rc->logs[i].hdr.uid_floor;
	if (rc->next_adopted && rc->next.hdr.uid_floor > f)
		f = rc->next.hdr.uid_floor;
	if (rc->b.uid_floor > f)
		f = rc->b.uid_floor;
	if (rc->idx->info.logs_missing)
		f = (f > rc->b.hdr.next_uid ? f : rc->b.hdr.next_uid) +
		    MIX_UID_STEP_MAX;
	return f > UINT32_MAX ? UINT32_MAX : (uint32_t)f;
}

/* A writable open after a crash: UIDs up to the floor may have been
 * handed out (APPENDUID, EXISTS) in transactions the crash lost; next_uid
 * starts above them (RFC 9051 §2.3.1.1), and the open says so. */
static void uid_floor_apply(struct mix_recovery *rc)
{
	struct mix_index *idx = rc->idx;
	uint32_t f = recovered_uid_floor(rc);
	char msg[512];

	/* whether or not next_uid skips now, the session must not state a
	 * lower floor in a checkpoint before its own reservation covers it:
	 * a second crash would forget UIDs the first lost writer may have
	 * handed out (the logs that said so are then behind mix.index) */
	rc->uid_floor = f;
	/* a writer that died in this boot lost no write (the page cache
	 * kept them all), unless logs are missing or salvage skipped what
	 * it could not read: acknowledged appends, flag changes and
	 * expunges a client saw (found by a lifecycle check: a salvage in
	 * the same boot handed out an acknowledged UID again and set no
	 * lost point) */
	if (f <= rc->b.hdr.next_uid ||
	    (idx->same_boot && !idx->info.logs_missing &&
	     !idx->info.salvaged))
		return;
	idx->info.uids_skipped = f - rc->b.hdr.next_uid;
	snprintf(msg, sizeof(msg), "%s: UIDs %u..%u may have been handed out "
		 "before the last writer stopped without closing; next_uid "
		 "continues at %u (format.md §2.7)", idx->dir,
		 rc->b.hdr.next_uid, f - 1, f);
	mix_recovery_warn(rc, msg);
	/* done by a logged transaction once the writer has the index
	 * (uid_jump_commit): followers in other processes read the jump from
	 * the log like any change */
	rc->uid_jump = f;
}

static int recover(struct mix_recovery *rc, unsigned flags)
{
	struct mix_recovered *rd = &rc->idx->recovered;
	int ret = recover_states(rc, flags);
	rc->b.xhist_max = rc->idx->xhist_max;
	if (ret < 0)
		return ret;
	rd->from_index = rc->have_index;
	rd->start_seq = rc->pos_seq;
	rd->start_off = rc->pos_off;
	if ((ret = mix_recovery_replay_chain(rc)) < 0)
		return ret;
	rd->end_seq = rc->pos_seq;
	rd->end_off = rc->pos_off;
	rd->next_adopted = rc->next_adopted;
	if (!(flags & MIX_OPEN_READONLY) && !rc->idx->info.created)
		uid_floor_apply(rc);
	return 0;
}

static int recover_states(struct mix_recovery *rc, unsigned flags)
{
	struct mix_index *idx = rc->idx;
	char msg[512] = "";
	uint32_t new_id = 0;
	int ret, index_err = 0, i;

	if (flags & MIX_OPEN_RECREATE) {
		if ((ret = recreate_indexid(idx, &new_id)) < 0)
			return ret;
		idx->info.created = 1;
		rc->recreate = 1;
		return state_empty(rc, new_id, 1);
	}
	ret = mix_recovery_load_index(rc);
	if (ret == MIX_EVERSION || (ret < 0 && ret != -ENOENT &&
				    ret != MIX_ECORRUPT))
		return ret;
	if (ret < 0) {
		index_err = ret;
		mix_err_copy(msg, sizeof(msg));
	}
	if ((ret = mix_recovery_open_logs(rc)) < 0 || (ret = check_logs(rc)) < 0)
		return ret;
	if (rc->have_index) {   /* without the logs check_logs set aside */
		rc->max_seq = rc->pos_seq;
		for (i = 0; i < 2; i++)
			if (rc->have_log[i] &&
			    rc->logs[i].hdr.file_seq > rc->max_seq)
				rc->max_seq = rc->logs[i].hdr.file_seq;
	}
	check_logs_lost(rc);
	if (!rc->have_state) {
		ret = rebuild_start(rc);
		if (ret < 0)
			return ret;
		if (ret == 0 && index_err == -ENOENT && !rc->have_log[0] &&
		    !rc->have_log[1]) {
			if (!(flags & (MIX_OPEN_CREATE | MIX_OPEN_RECREATE)))
				return mix_err(MIX_ENOTFOUND, "%s: no index",
					       idx->dir);
			idx->info.created = 1;
			return state_empty(rc, now_indexid(), 1);
		}
		/* a corrupt mix.index is all there is: salvage tries it once
		 * more without its checksum, on a pass of its own (the
		 * restart below); if the checksum was not all that was
		 * wrong, that pass fails on what else is */
		if (ret == 0 && index_err == MIX_ECORRUPT &&
		    (flags & MIX_OPEN_SALVAGE) && rc->skips != NULL &&
		    !rc->skips->index_nocrc) {
			rc->skips->index_nocrc = 1;
			return SALVAGE_RESTART;
		}
		if (ret == 0)
			return index_err == MIX_ECORRUPT ?
				mix_err_set(MIX_ECORRUPT, msg) :
				mix_err(MIX_ECORRUPT, "%s/%s is missing and the "
					"logs do not reach back to the index's "
					"creation", idx->dir,
					MIX_INDEX_FILENAME);
		if (index_err == MIX_ECORRUPT) {
			idx->info.rebuilt = 1;
			mix_recovery_warn(rc, msg);
		}
	}
	return 0;
}

int mix_recovery_adopt_next(struct mix_recovery *rc)
{
	struct mix_index *idx = rc->idx;
	int i, fd = -1, ret;

	if (!rc->next_adopted || !rc->have_next)
		return 0;
	/* the log the next one continues, which the dead writer may have
	 * left in the page cache only; then the completion a live writer's
	 * checkpointer makes (txlog.c) */
	for (i = 1; i >= 0 && fd < 0; i--)
		if (rc->have_log[i] &&
		    rc->logs[i].hdr.file_seq == rc->next.hdr.prev_file_seq &&
		    (fd = mix_io_open_in(idx->dirfd, rc->logs[i].path, O_RDWR,
					 0)) < 0)
			return fd;
	/* fd < 0: that log is gone (mix.index names the next one) */
	ret = mix_log_switch_complete(idx->dirfd, idx->dir, fd);
	mix_io_close(&fd);
	if (ret < 0)
		return ret;
	/* the readers follow the files: .log is now .log.2, next is .log */
	if (rc->have_log[0])
		mix_log_reader_close(&rc->logs[0]);
	rc->logs[0] = rc->logs[1];
	rc->have_log[0] = rc->have_log[1];
	rc->logs[1] = rc->next;
	rc->have_log[1] = 1;
	memset(&rc->next, 0, sizeof(rc->next));
	rc->next.fd = -1;
	rc->have_next = 0;
	if (rc->logs[1].hdr.file_seq > rc->max_seq)
		rc->max_seq = rc->logs[1].hdr.file_seq;
	return 0;
}

void mix_recovery_free(struct mix_recovery *rc)
{
	int i;
	for (i = 0; i < 2; i++)
		if (rc->have_log[i])
			mix_log_reader_close(&rc->logs[i]);
	if (rc->have_next)
		mix_log_reader_close(&rc->next);
	rc->have_next = 0;
}

/* Is a writer (another process, or this one) holding the index's write
 * lock right now?  Only asks: F_OFD_GETLK takes nothing. */
static int writer_active(int dfd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd, active = 0;

	fd = openat(dfd, MIX_LOCK_FILENAME,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		active = 1;
	close(fd);
	return active;
}

#define OPEN_RO_TRIES 50

/* Salvage restarts when it finds a transaction to skip (replay_one).
 * A read-only open reads mix.index, then the logs, while a writer in
 * another process may checkpoint and rotate between the two: the logs
 * then continue from a later position than the mix.index it read, or a
 * rotation is half done.  Like mix_index_refresh, it reads everything
 * again (up to OPEN_RO_TRIES times, 2 ms apart) when that happened while
 * a writer holds the lock; a writable open holds the lock itself, and
 * with no writer the files do not move, so their error stands. */
void mix_recovery_init(struct mix_recovery *rc, struct mix_index *idx,
		       unsigned flags, struct mix_buf *warnings,
		       struct mix_salvage_skips *skips)
{
	memset(rc, 0, sizeof(*rc));
	rc->idx = idx;
	rc->gen = 1;
	rc->salvage = (flags & MIX_OPEN_SALVAGE) != 0;
	rc->warnings = warnings;
	rc->skips = skips;
}

void mix_index_recovered(const struct mix_index *idx,
			 struct mix_recovered *r)
{
	*r = idx->recovered;
}

int mix_recovery_run(struct mix_recovery *rc, unsigned flags)
{
	struct mix_index *idx = rc->idx;
	int ret, tries;

	for (tries = 1;; tries++) {
		ret = recover(rc, flags);
		if (ret == SALVAGE_RESTART)
			tries = 0;  /* bounded by SALVAGE_SKIPS_MAX */
		else if (ret != MIX_ECORRUPT || !(flags & MIX_OPEN_READONLY) ||
			 tries >= OPEN_RO_TRIES || !writer_active(idx->dirfd))
			return ret;
		if (rc->have_state)
			mix_builder_abort(&rc->b);
		if (rc->map)
			mix_robj_free(&rc->map->robj);
		mix_recovery_free(rc);
		mix_recovery_init(rc, idx, flags, rc->warnings, rc->skips);
		rc->warnings->len = 0;
		memset(&idx->info, 0, sizeof(idx->info));
		mix_err_clear();
		if (ret != SALVAGE_RESTART)
			usleep(2000);
	}
}
