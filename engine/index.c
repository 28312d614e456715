/*
 * Opening, recovering and closing an index (docs/design.md §2, invariants
 * 2-5; docs/format.md §3.4-§3.5).
 *
 * Open maps and verifies mix.index, then replays the logs from the
 * index's log position: mix.index.log.2 (if the position is in it), then
 * mix.index.log.  A torn transaction at the tail is cut off (reported,
 * never appended after).  A writable open then makes sure the index
 * covers everything replayed (checkpoint) and continues in a new log file
 * (file_seq + 1), so that no modseq a reader may have seen before a crash
 * is ever issued again (invariant 4).
 *
 * Runs on the opening thread before any writer has the index, and close
 * runs after the writer let it go: no concurrency but readers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "commit.h"
#include "engine.h"
#include "err.h"
#include "fileio.h"
#include "index-commit.h"
#include "index-file.h"
#include "index.h"
#include "index-registry.h"
#include "regfile.h"
#include "replay.h"
#include "txn.h"

#define LOCK_FILENAME "mix.index.lock"

struct recovery {
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
	struct salvage_skips *skips;
	struct mix_log_reader logs[2]; /* [0] .log.2, [1] .log */
	int have_log[2];
};

struct salvage_skips {
	uint32_t n, cap;
	struct { uint32_t seq; uint64_t off; } *e;
};

/* Internal: replay_one found a transaction salvage must skip; run the
 * recovery again (recover_retry). */
#define SALVAGE_RESTART (-EAGAIN)
/* At most this many transactions skipped by one salvage. */
#define SALVAGE_SKIPS_MAX 4096

static void path_of(char *buf, size_t size, const char *dir, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static void warn(struct mix_index *idx, const char *msg)
{
	const struct mix_engine_config *c = &idx->engine->cfg;
	if (c->warning)
		c->warning(c->warning_ctx, msg);
}

/* A recovery warning: kept for the end of the open when it defers them
 * (rc->warnings), given at once otherwise (refresh). */
static void rc_warn(const struct recovery *rc, const char *msg)
{
	if (!rc->warnings ||
	    mix_buf_append(rc->warnings, msg, strlen(msg) + 1) < 0)
		warn(rc->idx, msg);
}

static void warnings_flush(struct mix_index *idx, struct mix_buf *w)
{
	size_t at;
	for (at = 0; at < w->len; at += strlen((char *)w->data + at) + 1)
		warn(idx, (char *)w->data + at);
	w->len = 0;
}

/* ---- the lock (invariant 2) ------------------------------------------ */

static int lock_same_boot(int fd);
static void lock_write(int fd, const char *boot);

static int lock_take(struct mix_index *idx)
{
	char path[4096], pidbuf[32] = "";
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd, n;

	path_of(path, sizeof(path), idx->dir, LOCK_FILENAME);
	fd = mix_io_open(path, O_RDWR | O_CREAT, 0644);
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
 * either way; only messages and the boot test read it). */
static void lock_write(int fd, const char *boot)
{
	char buf[96];
	int n = snprintf(buf, sizeof(buf), "%ld %s\n", (long)getpid(), boot);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
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

static int state_empty(struct recovery *rc, uint32_t indexid,
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
static struct mix_file_id ifile_id_of(const struct stat *st)
{
	struct mix_file_id id = { (uint64_t)st->st_dev, (uint64_t)st->st_ino,
				  (uint64_t)st->st_size,
				  (int64_t)st->st_ctim.tv_sec,
				  (int64_t)st->st_ctim.tv_nsec };
	return id;
}

static int file_id_eq(const struct mix_file_id *a,
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
	if (stat(path, &st) == 0)
		idx->ifile_id = ifile_id_of(&st);
}

static int load_index(struct recovery *rc)
{
	struct mix_index *idx = rc->idx;
	struct mix_ifile f;
	char path[4096];
	int ret;

	path_of(path, sizeof(path), idx->dir, MIX_INDEX_FILENAME);
	ret = mix_ifile_open(path, &f);
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
static int stale_log(const struct recovery *rc, const struct mix_log_header *h)
{
	return h->indexid < rc->indexid &&
	       (uint64_t)h->indexid + h->file_seq <
		       (uint64_t)rc->indexid + (rc->pos_seq ? rc->pos_seq : 1);
}

static int open_logs(struct recovery *rc)
{
	static const char *const names[2] = { MIX_LOG2_FILENAME,
					      MIX_LOG_FILENAME };
	char path[4096];
	int i, ret;

	for (i = 0; i < 2; i++) {
		path_of(path, sizeof(path), rc->idx->dir, names[i]);
		ret = mix_log_reader_open(path, &rc->logs[i]);
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

static void drop_log(struct recovery *rc, int i)
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
static int check_logs(struct recovery *rc)
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
	if (rc->have_index && rc->have_log[1] && l->hdr.file_seq < rc->pos_seq)
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
static void check_logs_lost(struct recovery *rc)
{
	struct mix_index *idx = rc->idx;
	char msg[512];

	if (!rc->have_index || rc->have_log[1] ||
	    (rc->have_log[0] && rc->logs[0].hdr.file_seq >= rc->pos_seq))
		return;
	if (rc->leftover) {
		/* a RECREATE interrupted before its first log: nothing of
		 * the new index was ever logged, so nothing is missing */
		snprintf(msg, sizeof(msg), "%s: old logs left by an interrupted "
			 "re-creation are ignored (the next writer removes "
			 "them)", idx->dir);
		rc_warn(rc, msg);
		return;
	}
	idx->info.logs_missing = 1;
	snprintf(msg, sizeof(msg), "%s: %s and %s are missing: changes "
		 "logged after mix.index's checkpoint (log seq %u offset "
		 "%llu), if there were any, are lost; new changes continue "
		 "above every modseq the lost logs can have issued", idx->dir,
		 MIX_LOG_FILENAME, MIX_LOG2_FILENAME, rc->pos_seq,
		 (unsigned long long)rc->pos_off);
	rc_warn(rc, msg);
}

/* ---- replay ------------------------------------------------------------ */

/* MIX_OPEN_SALVAGE: say what was lost, once per damaged range. */
static void salvage_note(struct recovery *rc, const char *what);

/* Salvage across a break in the chain: the log continues from another
 * position than the state reached; whatever lay between is lost. */
static void gap_salvaged(struct recovery *rc, const struct mix_log_reader *r)
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
static void salvage_note(struct recovery *rc, const char *what)
{
	struct mix_index *idx = rc->idx;
	idx->info.salvaged = 1;
	rc_warn(rc, what);
}

/* Replay one transaction; in salvage mode a transaction that does not
 * apply (it depended on a lost one, or breaks §3.3) is skipped and
 * reported instead of failing the open. */
static int salvage_skipped(const struct salvage_skips *sk, uint32_t seq,
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
static int salvage_skip_add(struct recovery *rc, struct mix_log_reader *r,
			    uint32_t size, uint64_t off)
{
	struct salvage_skips *sk = rc->skips;
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
static int replay_one(struct recovery *rc, struct mix_log_reader *r,
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
static int replay_stop(struct recovery *rc, struct mix_log_reader *r,
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
	rc_warn(rc, r->torn_reason);
	return 0;
}

static int replay_log(struct recovery *rc, struct mix_log_reader *r,
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

/* Replay every log at or after the state's position, checking that the
 * chain (file_seq, prev_file_seq, prev_file_offset) has no gap. */
static int replay_chain(struct recovery *rc)
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
	return 0;
}

/* No usable mix.index: start from the first log of the chain if the logs
 * reach back to the index's creation (prev_file_seq == 0). */
static int rebuild_start(struct recovery *rc)
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

/* ---- open ---------------------------------------------------------------- */

/* RECREATE: the indexid of the new index, above every modseq the old
 * one (its logs and its mix.index) can have issued.  Nothing is removed
 * here: the new mix.index replaces the old one first (writer_setup), so a
 * failure at any step leaves either the old index or the new one, never
 * an old state that would issue a modseq again. */
static int recreate_indexid(struct mix_index *idx, uint32_t *indexid_r)
{
	static const char *const names[2] = { MIX_LOG_FILENAME,
					      MIX_LOG2_FILENAME };
	struct mix_index_header h;
	uint64_t floor = 0;
	char path[4096];
	int i, fd;

	for (i = 0; i < 2; i++) {
		struct mix_log_reader r;
		path_of(path, sizeof(path), idx->dir, names[i]);
		if (mix_log_reader_open(path, &r) == 0) {
			uint64_t top = (uint64_t)r.hdr.indexid + r.hdr.file_seq;
			if (top > floor)
				floor = top;
			mix_log_reader_close(&r);
		}
	}
	path_of(path, sizeof(path), idx->dir, MIX_INDEX_FILENAME);
	fd = mix_regfile_open_ro(path, NULL);   /* never blocks on a FIFO */
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

/* RECREATE, after the new mix.index is in place: the old logs go. */
static int recreate_drop_logs(struct mix_index *idx)
{
	static const char *const names[2] = { MIX_LOG2_FILENAME,
					      MIX_LOG_FILENAME };
	char path[4096];
	int i, ret;
	for (i = 0; i < 2; i++) {
		path_of(path, sizeof(path), idx->dir, names[i]);
		if ((ret = mix_io_unlink(path)) < 0)
			return ret;
	}
	return 0;
}

static int recover_states(struct recovery *rc, unsigned flags);

/* §2.7: the highest UID that may have been handed out, after replay:
 * mix.index's floor, the header floor of every log started after it,
 * and the UID_FLOOR records replayed.  Lost logs may have raised it by
 * up to MIX_UID_STEP_MAX more per reservation; they add that much. */
static uint32_t recovered_uid_floor(const struct recovery *rc)
{
	uint64_t f = rc->uid_floor;
	int i;
	for (i = 0; i < 2; i++)
		if (rc->have_log[i] && (!rc->have_index ||
					rc->logs[i].hdr.file_seq > rc->idx_seq) &&
		    rc->logs[i].hdr.uid_floor > f)
			f = rc->logs[i].hdr.uid_floor;
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
static void uid_floor_apply(struct recovery *rc)
{
	struct mix_index *idx = rc->idx;
	uint32_t f = recovered_uid_floor(rc);
	char msg[512];

	/* whether or not next_uid skips now, the session must not state a
	 * lower floor in a checkpoint before its own reservation covers it:
	 * a second crash would forget UIDs the first lost writer may have
	 * handed out (the logs that said so are then behind mix.index) */
	rc->uid_floor = f;
	if (f <= rc->b.hdr.next_uid ||
	    (idx->same_boot && !idx->info.logs_missing))
		return;
	idx->info.uids_skipped = f - rc->b.hdr.next_uid;
	snprintf(msg, sizeof(msg), "%s: UIDs %u..%u may have been handed out "
		 "before the last writer stopped without closing; next_uid "
		 "continues at %u (format.md §2.7)", idx->dir,
		 rc->b.hdr.next_uid, f - 1, f);
	rc_warn(rc, msg);
	/* done by a logged transaction once the writer has the index
	 * (uid_jump_commit): followers in other processes read the jump from
	 * the log like any change */
	rc->uid_jump = f;
}

/* The jump uid_floor_apply decided, as a header transaction through the
 * writer (logged, synced, published; replay gives the same state). */
static int uid_jump_commit(struct mix_index *idx, uint32_t next_uid)
{
	struct mix_txn *t;
	int ret = mix_txn_begin(idx, &t);
	if (ret < 0)
		return ret;
	if ((ret = mix_txn_hdr_set(t, MIX_HDR_NEXT_UID, next_uid)) < 0) {
		mix_txn_free(t);
		return ret;
	}
	return mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL);
}

static int recover(struct recovery *rc, unsigned flags)
{
	int ret = recover_states(rc, flags);
	rc->b.xhist_max = rc->idx->xhist_max;
	if (ret < 0)
		return ret;
	if ((ret = replay_chain(rc)) < 0)
		return ret;
	if (!(flags & MIX_OPEN_READONLY) && !rc->idx->info.created)
		uid_floor_apply(rc);
	return 0;
}

static int recover_states(struct recovery *rc, unsigned flags)
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
	ret = load_index(rc);
	if (ret == MIX_EVERSION || (ret < 0 && ret != -ENOENT &&
				    ret != MIX_ECORRUPT))
		return ret;
	if (ret < 0) {
		index_err = ret;
		mix_err_copy(msg, sizeof(msg));
	}
	if ((ret = open_logs(rc)) < 0 || (ret = check_logs(rc)) < 0)
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
		if (ret == 0)
			return index_err == MIX_ECORRUPT ?
				mix_err_set(MIX_ECORRUPT, msg) :
				mix_err(MIX_ECORRUPT, "%s/%s is missing and the "
					"logs do not reach back to the index's "
					"creation", idx->dir,
					MIX_INDEX_FILENAME);
		if (index_err == MIX_ECORRUPT) {
			idx->info.rebuilt = 1;
			rc_warn(rc, msg);
		}
	}
	return 0;
}


/* A writable salvage, once mix.index holds what was kept: the damaged
 * logs are renamed to mix.index.log.salvaged.<file_seq> (kept for the
 * operator, never read again), so the chain the next open reads is clean;
 * the next log skips a file_seq as after any lost active log. */
static int salvage_set_aside(struct recovery *rc)
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
		path_of(from, sizeof(from), idx->dir, names[i]);
		snprintf(to, sizeof(to), "%s.salvaged.%u", from,
			 rc->logs[i].hdr.file_seq);
		if ((ret = mix_io_rename(from, to)) < 0)
			return ret;
	}
	if ((ret = mix_io_fsync_dir(idx->dir)) < 0)
		return ret;
	return mix_index_rotate_pending(idx);
}

/* Writable open: make mix.index cover everything replayed.  The new log
 * file (file_seq above every log that may ever have existed, §4) is
 * started by the first write (rotate_pending in index-commit.c), so an
 * open and close without a change leaves every file as it was. */
static int writer_setup(struct recovery *rc)
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
		ret = mix_log_rotate_to_floor(idx->dir, rc->indexid, 1, 0, 0,
					      idx->uid_floor, lw);
		if (ret < 0)
			return ret;
		return mix_index_checkpoint(idx, 1);
	}
	/* an interrupted RECREATE's old logs: finish removing them */
	if (rc->leftover) {
		static const char *const names[2] = { MIX_LOG2_FILENAME,
						      MIX_LOG_FILENAME };
		char path[4096];
		int i;
		for (i = 0; i < 2; i++) {
			if (!(rc->leftover & (1u << i)))
				continue;
			path_of(path, sizeof(path), idx->dir, names[i]);
			if ((ret = mix_io_unlink(path)) < 0)
				return ret;
		}
		if ((ret = mix_io_fsync_dir(idx->dir)) < 0)
			return ret;
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
	if (rc->have_log[1]) {
		/* What we replayed must be on disk before mix.index or a new
		 * log says where it ended: the process that wrote it may have
		 * died with it in the page cache only (§2, §3.5). */
		int fd = mix_io_open(rc->logs[1].path, O_RDWR, 0);
		if (fd < 0)
			return fd;
		ret = mix_io_fdatasync(fd, rc->logs[1].path);
		close(fd);
		if (ret < 0)
			return ret;
	}
	lw->synced = lw->offset;   /* fdatasync'ed above, or not ours */
	/* §4: the session's log gets a file_seq no log ever had.  Without an
	 * active log, a rotation may have been cut short after it created
	 * (and maybe used, if mix.index.log was since lost) max_seq + 1:
	 * skip it. */
	idx->rotate_pending_seq = rc->max_seq + (rc->have_log[1] ? 1 : 2);
	if (!mix_modseq_file_ok(rc->indexid, idx->rotate_pending_seq))
		return mix_err(MIX_ELIMIT, "%s: indexid %u + file_seq %u "
			       "reaches 2^31 (format.md §4)", idx->dir,
			       rc->indexid, idx->rotate_pending_seq);
	if (rc->need_checkpoint || !rc->have_index || idx->info.salvaged) {
		if ((ret = mix_index_checkpoint(idx, 0)) < 0)
			return ret;
		/* chunks into the new mapping */
		if ((ret = mix_index_remap_checked(idx)) < 0)
			return ret;
	}
	if (idx->info.salvaged)
		return salvage_set_aside(rc);
	/* no active log (lost, or a rotation cut short): start the session's
	 * log now, not at the first write, so that the directory is whole
	 * again even if this session changes nothing (every later open would
	 * find the logs missing otherwise) */
	if (!rc->have_log[1])
		return mix_index_rotate_pending(idx);
	return 0;
}

static void recovery_free(struct recovery *rc)
{
	int i;
	for (i = 0; i < 2; i++)
		if (rc->have_log[i])
			mix_log_reader_close(&rc->logs[i]);
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

/* Is a writer (another process, or this one) holding the index's write
 * lock right now?  Only asks: F_OFD_GETLK takes nothing. */
static int writer_active(const char *dir)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char path[4096];
	int fd, active = 0;

	path_of(path, sizeof(path), dir, LOCK_FILENAME);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
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
static int recover_retry(struct recovery *rc, unsigned flags)
{
	struct mix_index *idx = rc->idx;
	int ret, tries;

	struct mix_buf *warnings = rc->warnings;
	struct salvage_skips *skips = rc->skips;

	for (tries = 1;; tries++) {
		ret = recover(rc, flags);
		if (ret == SALVAGE_RESTART)
			tries = 0;  /* bounded by SALVAGE_SKIPS_MAX */
		else if (ret != MIX_ECORRUPT || !(flags & MIX_OPEN_READONLY) ||
			 tries >= OPEN_RO_TRIES || !writer_active(idx->dir))
			return ret;
		if (rc->have_state)
			mix_builder_abort(&rc->b);
		if (rc->map)
			mix_robj_free(&rc->map->robj);
		recovery_free(rc);
		memset(rc, 0, sizeof(*rc));
		rc->idx = idx;
		rc->gen = 1;
		rc->salvage = (flags & MIX_OPEN_SALVAGE) != 0;
		rc->warnings = warnings;
		rc->skips = skips;
		warnings->len = 0;
		memset(&idx->info, 0, sizeof(idx->info));
		mix_err_clear();
		if (ret != SALVAGE_RESTART)
			usleep(2000);
	}
}

int mix_index_open_one(struct mix_engine *e, const char *dir,
		       unsigned flags, struct mix_index **idx_r)
{
	struct recovery rc;
	struct mix_index *idx;
	struct mix_buf warnings = { 0 };
	struct salvage_skips skips = { 0 };
	int ret;

	*idx_r = NULL;
	if (!e || !dir || (flags & ~(MIX_OPEN_CREATE | MIX_OPEN_READONLY |
				     MIX_OPEN_RECREATE | MIX_OPEN_SALVAGE)) ||
	    ((flags & MIX_OPEN_READONLY) &&
	     (flags & (MIX_OPEN_CREATE | MIX_OPEN_RECREATE))))
		return mix_err(MIX_EINVAL, "mix_index_open: bad arguments");
	if ((ret = index_alloc(e, dir, flags, &idx)) < 0)
		return ret;
	memset(&rc, 0, sizeof(rc));
	rc.idx = idx;
	rc.gen = 1;
	rc.salvage = (flags & MIX_OPEN_SALVAGE) != 0;
	rc.warnings = &warnings;
	rc.skips = &skips;
	if (!(flags & MIX_OPEN_READONLY))
		ret = lock_take(idx);
	if (ret == 0)
		ret = recover_retry(&rc, flags);
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
	recovery_free(&rc);
	free(skips.e);
	/* what recovery worked around, once: the open did it (on failure
	 * the error says what stopped it) */
	if (ret == 0)
		warnings_flush(idx, &warnings);
	mix_buf_free(&warnings);
	if (ret < 0) {
		char msg[512];
		mix_err_copy(msg, sizeof(msg));
		index_free(idx);
		return mix_err_set(ret, msg);
	}
	if (!(flags & MIX_OPEN_READONLY)) {
		idx->writer = &e->writers[__atomic_fetch_add(
			&e->next_writer, 1, __ATOMIC_RELAXED) % e->nwriters];
		if (rc.uid_jump && (ret = uid_jump_commit(idx, rc.uid_jump)) < 0) {
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

/* ---- read-only refresh ---------------------------------------------------- */

/* A writer rotating renames mix.index.log to .log.2, fsyncs the
 * directory, then renames the new log into place: for those milliseconds
 * there is no mix.index.log, and a .log.2 opened just before may be the
 * older one.  A refresh that opens the logs then would miss acknowledged
 * commits, so when mix.index.log is missing it opens both again, for up
 * to 200 ms (after that the writer died mid-rotation: recovery's rules
 * apply as at open). */
static int open_logs_settled(struct recovery *rc)
{
	int tries, ret = 0, i;
	for (tries = 0; tries < 100; tries++) {
		ret = open_logs(rc);
		if (ret < 0 || rc->have_log[1])
			return ret;
		for (i = 0; i < 2; i++)
			if (rc->have_log[i]) {
				mix_log_reader_close(&rc->logs[i]);
				rc->have_log[i] = 0;
			}
		usleep(2000);
	}
	return open_logs(rc);
}

/* The logs moved past what this process has seen (two rotations): start
 * again from the writer's newer mix.index.  *gap_r: the logs moved on
 * again while this ran (worth another try). */
static int refresh_reload(struct mix_index *idx, const struct mix_snap *cur,
			  int *gap_r)
{
	struct recovery rc;
	int ret;

	memset(&rc, 0, sizeof(rc));
	rc.idx = idx;
	rc.gen = cur->gen + 1;
	rc.quiet = 1;
	ret = load_index(&rc);
	rc.b.xhist_max = idx->xhist_max;
	if (ret == 0)
		ret = open_logs_settled(&rc);
	if (ret == 0)
		ret = replay_chain(&rc);
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
	recovery_free(&rc);
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

	path_of(path, sizeof(path), idx->dir, MIX_INDEX_FILENAME);
	if (stat(path, &st) < 0)
		return 0;
	now = ifile_id_of(&st);
	if (file_id_eq(&now, &idx->ifile_id))
		return 0;
	if ((fd = mix_regfile_open_ro(path, NULL)) < 0) {
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
	struct recovery rc;
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
		ret = replay_chain(&rc);
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
	recovery_free(&rc);
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
	return ret;
}
