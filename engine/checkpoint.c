/*
 * Checkpoints and log rotation of one index (docs/design.md "Snapshots and the read path" and
 * "Checkpoints off the writer thread", docs/format.md §2, §3.5): write a
 * snapshot to mix.index at a durable log position, republish the state
 * with chunks in the new mapping, and start the next log file.
 *
 * Two ways:
 * - synchronous (mix_index_checkpoint): the current snapshot, on the
 *   thread that has the writer role, or on the opening/closing thread
 *   while no writer has the index (open, close, the first write);
 * - asynchronous (mix_index_ckpt_tick, when the log passes rotate_size):
 *   the writer role pins the current snapshot s (a reference, so that
 *   reclamation keeps s and everything it reaches) and queues a job for
 *   the engine's checkpointer thread, which fdatasyncs the log up to
 *   s's position (through a descriptor of its own), writes mix.index
 *   from s, maps it and builds chunk structs over it, touching nothing
 *   of the index but s and dir.  A later tick by the writer role
 *   collects the finished job: it records the position, republishes the
 *   current state with every chunk unchanged since s in the new mapping
 *   (mix_builder_rebase), makes the active log durable and rotates.
 *
 * One job per index at a time (idx->ckpt_job, writer-role state), and a
 * synchronous checkpoint or a close first cancels or waits for it, so two
 * writers of mix.index never overlap and no pinned snapshot outlives the
 * index.  The checkpointer thread holds its lock only around the queue,
 * never across I/O, and never enters a read-side section (s is pinned).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "engine.h"
#include "err.h"
#include "fileio.h"
#include "index-commit.h"
#include "index-file.h"
#include "index.h"
#include "probes.h"
#include "stats.h"

/* A checkpoint or rotation after the batch failed: nothing acknowledged
 * is lost (the log has it), but the operator must hear of it, and past
 * half the offset range the log must not grow further. */
static void checkpoint_failed(struct mix_index *idx)
{
	const struct mix_engine_config *c = &idx->engine->cfg;
	char msg[512];
	snprintf(msg, sizeof(msg), "%s: checkpoint or rotation failed, will "
		 "retry after the next batch: %s", idx->dir, mix_last_error());
	if (idx->writer)
		__atomic_add_fetch(&idx->writer->stat_ckpt_failures, 1,
				   __ATOMIC_RELAXED);
	if (c->warning)
		c->warning(c->warning_ctx, msg);
	if (idx->log.offset > MIX_LOG_OFFSET_MAX / 2)
		mix_index_poison(idx); /* cannot rotate and must */
}

/* §2.7: the UID floor a checkpoint of s states.  A close states that
 * nothing was handed out beyond next_uid; any other checkpoint states the
 * session's reservation, which a later crash may have used. */
static uint32_t ckpt_uid_floor(const struct mix_index *idx,
			       const struct mix_snap *s)
{
	return idx->closing || idx->uid_floor < s->hdr.next_uid ?
	       s->hdr.next_uid : idx->uid_floor;
}

/* Write s to dir/mix.index stating log position (seq, off) and UID floor
 * uid_floor.  Reads only s, which must stay alive (current or pinned). */
static int checkpoint_write(int dfd, const char *dir, const struct mix_snap *s,
			    uint32_t seq, uint64_t off, uint32_t uid_floor)
{
	const struct mix_layout *l = s->layout;
	struct mix_ifile_ext *exts;
	struct mix_snap_runs runs = { s, 0 };
	struct mix_ifile_src src;
	uint8_t *xh = NULL;
	uint32_t i, xh_size, floor[2] = { 0, 0 };
	int ret;

	if ((ret = mix_xhist_encode(&s->xhist, &xh, &xh_size)) < 0)
		return ret;
	exts = calloc(l->ext_count + 2, sizeof(*exts));
	if (!exts) {
		free(xh);
		return MIX_ENOMEM();
	}
	for (i = 0; i < l->ext_count; i++) {
		memcpy(exts[i].name, l->exts[i].name, sizeof(exts[i].name));
		exts[i].reset_id = l->exts[i].reset_id;
		exts[i].hdr_size = s->exthdrs->e[i].size;
		exts[i].hdr = s->exthdrs->e[i].data;
		exts[i].rec_offset = l->exts[i].rec_offset;
		exts[i].rec_size = l->exts[i].rec_size;
		exts[i].rec_align = l->exts[i].rec_align;
	}
	/* §2.7: the UID floor */
	floor[0] = uid_floor;
	snprintf(exts[i].name, sizeof(exts[i].name), "%s", MIX_EXT_NAME_UIDS);
	exts[i].hdr = (const uint8_t *)floor;
	exts[i].hdr_size = sizeof(floor);
	exts[i].rec_align = 1;
	i++;
	/* §2.6: the expunge history, always last */
	snprintf(exts[i].name, sizeof(exts[i].name), "%s",
		 MIX_EXT_NAME_EXPUNGES);
	exts[i].hdr = xh;
	exts[i].hdr_size = xh_size;
	exts[i].rec_align = 1;
	memset(&src, 0, sizeof(src));
	src.hdr = s->hdr;
	src.hdr.log_file_seq = seq;
	src.hdr.log_file_head_offset = (uint32_t)off;
	src.record_size = s->record_size;
	src.ext_count = l->ext_count + 2;
	src.exts = exts;
	src.keyword_count = s->kw->count;
	src.keywords = s->kw->names;
	src.next_run = mix_snap_next_run;
	src.ctx = &runs;
	ret = mix_ifile_write(dfd, dir, &src);
	free(exts);
	free(xh);
	return ret;
}

/* Replace the current snapshot by one whose chunks point into the new
 * mix.index mapping (same content, next generation). */
int mix_index_remap(struct mix_index *idx)
{
	struct mix_ifile f;
	struct mix_builder b;
	struct mix_map *map;
	char path[4096];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", idx->dir, MIX_INDEX_FILENAME);
	if ((ret = mix_ifile_open_in(idx->dirfd, path, &f)) < 0)
		return ret;
	map = calloc(1, sizeof(*map));
	if (!map) {
		mix_ifile_free(&f);
		return MIX_ENOMEM();
	}
	map->robj.kind = MIX_ROBJ_MAP;
	map->robj.born_gen = idx->snap->gen + 1;
	map->addr = f.map;
	map->size = f.map_size;
	if ((ret = mix_builder_from_ifile(&b, idx->snap->gen + 1, &f, map)) < 0) {
		mix_ifile_free(&f);
		free(map);
		return ret;
	}
	mix_ifile_free_keep_map(&f);
	mix_builder_retire_all(&b, idx->snap, idx->map);
	idx->map = map;
	return mix_index_publish(idx, &b);
}

/* docs/format.md §2: the log is durable up to a checkpoint's position
 * before the mix.index that names it is written.  Otherwise a power cut
 * could keep the new mix.index and lose the log's unsynced tail: the
 * position would point past the end of the log (an index that no longer
 * opens), and the next log's prev_file_offset likewise.  Transactions
 * committed without a sync (MIX_DURABILITY_NONE, extension registration)
 * are what leaves such a tail. */
static int log_durable(struct mix_index *idx)
{
	int ret;
	if (idx->log.fd < 0 || idx->log.synced >= idx->log.offset)
		return 0;
	if ((ret = mix_log_sync(&idx->log)) < 0) {
		mix_index_poison(idx);   /* a failed fdatasync cannot be retried (§3.2) */
		return ret;
	}
	return 0;
}

static void ckpt_discard(struct mix_index *idx);
static void ckpt_finish(struct mix_index *idx);

uint32_t mix_ckpt_overlaps;
int mix_ckpt_sync_only;

/* Around every write of mix.index: two at once would be a bug of the
 * cancel/wait protocol below (counted for the tests, not prevented). */
static void writing_enter(struct mix_index *idx)
{
	if (__atomic_fetch_add(&idx->ckpt_writing, 1, __ATOMIC_SEQ_CST) != 0)
		__atomic_add_fetch(&mix_ckpt_overlaps, 1, __ATOMIC_RELAXED);
}

static void writing_leave(struct mix_index *idx)
{
	__atomic_sub_fetch(&idx->ckpt_writing, 1, __ATOMIC_SEQ_CST);
}

/* A writer that died (kill -9) may have left renames and creations
 * without the directory fsync that follows them: the rename of its last
 * mix.index, of a rotation's logs, the creation of a newtmp.  This
 * session read the files under those names and builds on them; if a
 * power cut kept a rename of ours but lost one of theirs, the names
 * would no longer fit (the old mix.index back, naming a .log.2 our
 * rotation replaced: "a log is missing").  So before its first change of
 * a name, a session makes the names it found durable.  An open that
 * changes nothing pays nothing; powercut --kill-nested cuts such
 * recoveries. */
int mix_index_dir_found_durable(struct mix_index *idx)
{
	int ret;
	if (idx->dir_found_durable)
		return 0;
	if ((ret = mix_io_fsync_dir_in(idx->dirfd, idx->dir)) < 0)
		return ret;
	idx->dir_found_durable = 1;
	return 0;
}

int mix_index_checkpoint(struct mix_index *idx, int do_remap)
{
	int ret;

	/* one writer of mix.index at a time: this one supersedes an
	 * asynchronous one in flight; a close first finishes it (rotation
	 * included), so that a session whose log passed rotate_size has
	 * rotated by the time it closed, as when checkpoints were
	 * synchronous */
	if ((ret = mix_index_rot_settle(idx)) < 0 ||
	    (ret = mix_index_dir_found_durable(idx)) < 0)
		return ret;
	if (idx->closing)
		ckpt_finish(idx);
	else
		ckpt_discard(idx);
	ret = log_durable(idx);
	if (ret == 0) {
		writing_enter(idx);
		ret = checkpoint_write(idx->dirfd, idx->dir, idx->snap,
				       idx->log.hdr.file_seq, idx->log.offset,
				       ckpt_uid_floor(idx, idx->snap));
		writing_leave(idx);
	}
	MIX_PROBE2(checkpoint, idx->snap->hdr.messages_count, ret);
	if (ret < 0)
		return ret;
	idx->ckpt_seq = idx->log.hdr.file_seq;
	idx->ckpt_off = idx->log.offset;
	idx->ckpt_uid_floor = ckpt_uid_floor(idx, idx->snap);
	if (idx->writer)
		__atomic_add_fetch(&idx->writer->stat_checkpoints, 1,
				   __ATOMIC_RELAXED);
	if (do_remap)
		ret = mix_index_remap_checked(idx);
	return ret;
}

/* Republish from the mix.index just written.  Out of memory is harmless
 * (readers keep the heap chunks); a file that does not load again is a
 * writer bug the operator must hear of, and the rotation that would
 * make the logs depend on it must not happen: MIX_ECORRUPT is returned
 * (the index keeps working from memory and its logs). */
int mix_index_remap_checked(struct mix_index *idx)
{
	const struct mix_engine_config *c = &idx->engine->cfg;
	char msg[768];
	int ret = mix_index_remap(idx);

	if (ret == 0)
		return 0;
	snprintf(msg, sizeof(msg), "%s: mix.index written but it cannot be "
		 "loaded again (remap): %s", idx->dir, mix_last_error());
	if (idx->writer)
		__atomic_add_fetch(&idx->writer->stat_ckpt_failures, 1,
				   __ATOMIC_RELAXED);
	if (c->warning)
		c->warning(c->warning_ctx, msg);
	return ret == MIX_ECORRUPT ? mix_err_set(ret, msg) : 0;
}

int mix_index_rotate(struct mix_index *idx)
{
	const struct mix_log_header *h = &idx->log.hdr;

	/* §3.5 precondition, enforced: the active log becomes .log.2 and the
	 * old .log.2 is replaced, so mix.index must need nothing of the old
	 * .log.2: its position is in the active log (anywhere: an
	 * asynchronous checkpoint names a position the log has since
	 * passed, and recovery replays .log.2 from it).  The active log is
	 * durable to its end, which the new log's prev_file_offset names
	 * (log_durable), so mix.index's position is durable too. */
	if (idx->ckpt_seq < h->file_seq ||
	    (idx->ckpt_seq == h->file_seq && idx->ckpt_off > idx->log.offset) ||
	    idx->log.synced < idx->log.offset)
		return mix_err(MIX_EINVAL, "%s: rotation from log seq %u offset "
			       "%llu before a checkpoint there (mix.index is at "
			       "seq %u offset %llu) (format.md §3.5)", idx->dir,
			       h->file_seq, (unsigned long long)idx->log.offset,
			       idx->ckpt_seq,
			       (unsigned long long)idx->ckpt_off);
	return mix_index_rotate_to(idx, h->file_seq + 1);
}

uint32_t mix_index_uid_reserve(const struct mix_index *idx,
			       uint32_t next_uid)
{
	uint32_t step = next_uid / 8, floor;
	if (step < MIX_UID_STEP_MIN)
		step = MIX_UID_STEP_MIN;
	if (step > MIX_UID_STEP_MAX)
		step = MIX_UID_STEP_MAX;
	floor = next_uid > UINT32_MAX - step ? UINT32_MAX : next_uid + step;
	return floor > idx->uid_floor ? floor : idx->uid_floor;
}

int mix_index_rotate_to(struct mix_index *idx, uint32_t file_seq)
{
	struct mix_log_writer nw;
	const struct mix_log_header *h = &idx->log.hdr;
	uint32_t floor = mix_index_uid_reserve(idx, idx->snap->hdr.next_uid);
	int ret = mix_index_rot_settle(idx);

	if (ret == 0)
		ret = mix_index_dir_found_durable(idx);
	if (ret < 0)
		return ret;
	ret = mix_log_rotate_to_floor(idx->dirfd, idx->dir, h->indexid,
				      file_seq, h->file_seq,
				      (uint32_t)idx->log.offset, floor, &nw);
	MIX_PROBE2(rotate, file_seq, ret);
	if (ret < 0)
		return ret;
	mix_log_writer_close(&idx->log);
	idx->log = nw;
	idx->uid_floor = floor;   /* durable: the header was fsynced */
	return 0;
}

/* After a failed rotation: is there no mix.index.log any more (the old
 * log renamed away, the new one not in place)? */
static int active_log_gone(const struct mix_index *idx)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", idx->dir, MIX_LOG_FILENAME);
	return !mix_io_access_in(idx->dirfd, path);
}

int mix_index_checkpoint_rotate(struct mix_index *idx)
{
	int ret = mix_index_checkpoint(idx, 1);
	if (ret == 0 && (ret = mix_index_rotate(idx)) < 0) {
		/* If the old log was renamed away but the new one is not in
		 * place, further appends would go to a file nobody reads: the
		 * next batch starts the new log first (the rename of a missing
		 * active log is skipped, §3.5), as after a writable open. */
		if (active_log_gone(idx))
			idx->rotate_pending_seq = idx->log.hdr.file_seq + 1;
	}
	return ret;
}


/* ---- asynchronous checkpoints ---------------------------------------- */

/* Once the log has grown to twice the rotation size (at most this
 * offset) with the checkpoint still in flight, the writer role waits for
 * it instead of appending on: the log a slow or starved checkpointer
 * lets grow stays bounded (replay time after a crash, disk), and the
 * first rotation comes within one rotation size of where it would have
 * come synchronously; far below checkpoint_failed's poison at half the
 * offset range.  A 1,000,000-message checkpoint takes 40-100 ms, the log
 * grows 4 MiB in about a second at full speed, so this wait is for
 * pathological cases only. */
#define CKPT_WAIT_OFFSET (MIX_LOG_OFFSET_MAX / 4)

static int ckpt_must_wait(const struct mix_index *idx)
{
	uint64_t lim = 2 * idx->rotate_size;
	return idx->log.offset >= (lim < CKPT_WAIT_OFFSET ? lim
							 : CKPT_WAIT_OFFSET);
}

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };
/* a checkpoint of a pinned snapshot, or an asynchronous rotation's
 * completion (its flushes and renames) */
enum { JOB_CKPT, JOB_ROTATE };
/* what failed, for the report */
enum { STAGE_NONE, STAGE_SYNC, STAGE_WRITE, STAGE_LOAD };

struct mix_ckpt_job {
	struct mix_ckpt_job *next;   /* the checkpointer's queue (lock) */
	int kind;                    /* JOB_CKPT or JOB_ROTATE */
	int old_fd;                  /* JOB_ROTATE: the old log, ours */
	int prep_fd;                 /* JOB_CKPT: mix.index.log.newtmp,
				      * created for the rotation that
				      * follows, or -1 */
	struct mix_index *idx;       /* only idx->dir and dirfd are read,
				      * and poison */
	struct mix_snap *snap;       /* pinned (one reference of ours)
				      * until the checkpointer is done with
				      * it, then NULL */
	uint64_t gen;                /* snap's generation */
	uint32_t seq;                /* the position mix.index states: */
	uint64_t off;                /*   snap's, durable before writing */
	uint32_t uid_floor;          /* what mix.index states (§2.7) */
	char *sync_path;             /* the log to fdatasync first, or
				      * NULL (it stays in place: rotation
				      * waits for the job) */
	/* ORDER(ckpt-done): the checkpointer fills the results, then stores
	 * JOB_DONE with release under the lock; the writer role reads them
	 * after an acquire load of JOB_DONE.  Atomic everywhere (the tick
	 * reads it without the lock); changed under the lock. */
	int state;
	int ret, stage;
	char errmsg[512];
	struct mix_map *map;         /* the new mix.index, mapped */
	/* snap's non-empty chunks in UID order: their pointer values
	 * (keys, never followed once snap is released), first UIDs, and
	 * chunk structs over the same records in map (mix_builder_rebase) */
	struct mix_chunk **keys, **mapped;
	uint32_t *first;
	uint32_t n;
};

struct mix_ckpter {
	pthread_mutex_t lock;
	pthread_cond_t work;         /* the thread waits for a job */
	pthread_cond_t done;         /* waiters for a job to finish */
	struct mix_ckpt_job *head, *tail;
	int stop;
	pid_t pid;                   /* the process the thread runs in */
	pthread_t thread;
};

/* Checkpointer: open the mix.index just written and make a chunk struct
 * over each non-empty chunk's records in it (s's directory: same
 * counts, so the rebase can swap chunk for chunk).  A file that does not
 * load, or holds other records than s, is MIX_ECORRUPT. */
static int job_load(struct mix_ckpt_job *j)
{
	const struct mix_snap *s = j->snap;
	struct mix_ifile f;
	char path[4096];
	uint32_t i, k = 0, rs = s->record_size, uid;
	size_t cap = s->nchunks ? s->nchunks : 1;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", j->idx->dir, MIX_INDEX_FILENAME);
	if ((ret = mix_ifile_open_in(j->idx->dirfd, path, &f)) < 0)
		return ret;
	if (f.hdr->messages_count != s->c_seq[s->nchunks] ||
	    f.hdr->record_size != rs) {
		mix_ifile_free(&f);
		return mix_err(MIX_ECORRUPT, "%s: %u records of %u bytes, but "
			       "the checkpoint wrote %u of %u", path,
			       f.hdr->messages_count, f.hdr->record_size,
			       s->c_seq[s->nchunks], rs);
	}
	j->map = calloc(1, sizeof(*j->map));
	j->keys = calloc(cap, sizeof(*j->keys));
	j->mapped = calloc(cap, sizeof(*j->mapped));
	j->first = calloc(cap, sizeof(*j->first));
	ret = j->map && j->keys && j->mapped && j->first ? 0 : -ENOMEM;
	for (i = 0; ret == 0 && i < s->nchunks; i++) {
		const struct mix_chunk *c = s->chunks[i];
		struct mix_chunk *m;
		if (c->count == 0)
			continue;
		if (!(m = calloc(1, sizeof(*m)))) {
			ret = -ENOMEM;
			break;
		}
		/* cap 0: read-only, in a mapping; the rest is c's */
		m->robj.kind = MIX_ROBJ_CHUNK;
		m->recs = (uint8_t *)f.records + (size_t)s->c_seq[i] * rs;
		mix_chunk_meta_copy(m, c);
		j->keys[k] = s->chunks[i];
		j->first[k] = c->first_uid;
		j->mapped[k++] = m;
		memcpy(&uid, m->recs, 4);
		if (uid != c->first_uid)
			ret = mix_err(MIX_ECORRUPT, "%s: record %u has UID %u, "
				      "but the checkpoint wrote %u", path,
				      s->c_seq[i], uid, c->first_uid);
	}
	j->n = k;
	if (ret < 0) {
		mix_ifile_free(&f);
		return ret;   /* job_free frees the rest */
	}
	j->map->robj.kind = MIX_ROBJ_MAP;
	j->map->addr = f.map;
	j->map->size = f.map_size;
	mix_ifile_free_keep_map(&f);
	return 0;
}

/* A rotation's completion (mix_log_switch_complete), on the
 * checkpointer or on the writer role that needed it first.  A failed
 * flush cannot be retried (§3.2) and a half-done rotation is for
 * recovery to finish: the index is poisoned at once, before any batch
 * can be acknowledged as durable in the new log. */
static void rot_run(struct mix_ckpt_job *j)
{
	int ret = mix_log_switch_complete(j->idx->dirfd, j->idx->dir,
					  j->old_fd);

	MIX_PROBE2(rotate, j->seq, ret);
	mix_io_close(&j->old_fd);
	j->old_fd = -1;
	if (ret < 0) {
		mix_err_copy(j->errmsg, sizeof(j->errmsg));
		mix_index_poison(j->idx);
	}
	j->ret = ret;
}

/* Checkpointer: the job's I/O.  Touches only the pinned snapshot, the
 * index directory's files and the job. */
static void job_run(struct mix_ckpt_job *j)
{
	int ret = 0;

	if (j->kind == JOB_ROTATE) {
		rot_run(j);
		return;
	}

	j->stage = STAGE_SYNC;
	if (j->sync_path &&
	    (ret = mix_log_sync_path(j->idx->dirfd, j->sync_path)) < 0)
		/* §3.2: a failed fdatasync cannot be retried; at once, so
		 * that no later batch is acknowledged as durable */
		mix_index_poison(j->idx);
	if (ret == 0) {
		/* The next log's file, empty, before mix.index's directory
		 * fsync makes its name durable: from the switch on, the
		 * writer hands out modseqs of its file_seq, and after a
		 * power cut that loses everything of it but the name, the
		 * name alone tells recovery that the file_seq was used
		 * (§3.5).  Without it the rotation stays synchronous. */
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s/%s", j->idx->dir,
			 MIX_LOG_TMP_FILENAME);
		j->prep_fd = mix_log_tmp_create(j->idx->dirfd, tmp);
		if (j->prep_fd < 0) {
			j->prep_fd = -1;
			mix_err_clear();
		}
	}
	if (ret == 0) {
		j->stage = STAGE_WRITE;
		writing_enter(j->idx);
		ret = checkpoint_write(j->idx->dirfd, j->idx->dir, j->snap,
				       j->seq, j->off,
				       j->uid_floor);
		writing_leave(j->idx);
		MIX_PROBE2(checkpoint, j->snap->hdr.messages_count, ret);
	}
	if (ret == 0) {
		j->stage = STAGE_LOAD;
		ret = job_load(j);
	}
	if (ret == 0)
		j->stage = STAGE_NONE;
	else
		mix_err_copy(j->errmsg, sizeof(j->errmsg));
	j->ret = ret;
	/* Done with s: the collection needs only the keys.  Dropping the
	 * pin now, not when a later batch collects the job, keeps an idle
	 * index from holding an old snapshot (and all it reaches) until
	 * its next commit.  Often the last reference: s and the objects
	 * the state replaced while it was pinned are freed here, off the
	 * writer role (snap_die takes only the reclaim lock). */
	mix_snap_unref(j->snap);
	j->snap = NULL;
}

static void *ckpter_main(void *arg)
{
	struct mix_ckpter *ck = arg;
	struct mix_ckpt_job *j;

	/* Normal priority, on purpose: the writer role waits for this
	 * thread once the log reaches twice the rotation size, and a
	 * lower priority would then be an inversion on saturated CPUs
	 * (spinning readers, issue 11 item 3): a niced thread beside
	 * CPU-bound ones may wait seconds for its ~40 ms of CPU. */
	(void)pthread_setname_np(pthread_self(), "mix-ckpt");
	pthread_mutex_lock(&ck->lock);
	for (;;) {
		while (!ck->head && !ck->stop)
			pthread_cond_wait(&ck->work, &ck->lock);
		if (!(j = ck->head))
			break;
		ck->head = j->next;
		if (!ck->head)
			ck->tail = NULL;
		__atomic_store_n(&j->state, JOB_RUNNING, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&ck->lock);
		job_run(j);
		pthread_mutex_lock(&ck->lock);
		/* ORDER(ckpt-done): results before the state */
		__atomic_store_n(&j->state, JOB_DONE, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&ck->done);
	}
	pthread_mutex_unlock(&ck->lock);
	return NULL;
}

int mix_ckpter_start(struct mix_engine *e)
{
	struct mix_ckpter *ck = calloc(1, sizeof(*ck));
	int ret;

	if (!ck)
		return MIX_ENOMEM();
	pthread_mutex_init(&ck->lock, NULL);
	pthread_cond_init(&ck->work, NULL);
	pthread_cond_init(&ck->done, NULL);
	ck->pid = getpid();
	if ((ret = pthread_create(&ck->thread, NULL, ckpter_main, ck)) != 0) {
		pthread_cond_destroy(&ck->done);
		pthread_cond_destroy(&ck->work);
		pthread_mutex_destroy(&ck->lock);
		free(ck);
		return mix_err(-ret, "checkpointer: pthread_create failed");
	}
	e->ckpter = ck;
	return 0;
}

void mix_ckpter_stop(struct mix_engine *e)
{
	struct mix_ckpter *ck = e->ckpter;

	if (!ck)
		return;
	e->ckpter = NULL;
	if (ck->pid != getpid())
		return;   /* a forked child: the thread is the parent's */
	pthread_mutex_lock(&ck->lock);
	ck->stop = 1;   /* no index is open: the queue is empty */
	pthread_cond_signal(&ck->work);
	pthread_mutex_unlock(&ck->lock);
	pthread_join(ck->thread, NULL);
	pthread_cond_destroy(&ck->done);
	pthread_cond_destroy(&ck->work);
	pthread_mutex_destroy(&ck->lock);
	free(ck);
}

/* The engine's checkpointer, if it runs in this process (a forked child
 * has none: its checkpoints stay synchronous). */
static struct mix_ckpter *ckpter_of(const struct mix_index *idx)
{
	struct mix_ckpter *ck = idx->engine->ckpter;
	return ck && ck->pid == getpid() ? ck : NULL;
}

/* Free a job the checkpointer is done with (or never started). */
static void job_free(struct mix_ckpt_job *j)
{
	uint32_t i;

	for (i = 0; j->mapped && i < j->n; i++)
		free(j->mapped[i]);   /* never published */
	free(j->mapped);
	free(j->keys);
	free(j->first);
	if (j->map)
		mix_robj_free(&j->map->robj);
	if (j->snap)
		mix_snap_unref(j->snap);   /* cancelled before it ran */
	free(j->sync_path);
	if (j->kind == JOB_ROTATE && j->old_fd >= 0)
		mix_io_close(&j->old_fd);   /* never ran (a forked child) */
	if (j->kind == JOB_CKPT && j->prep_fd >= 0) {
		/* prepared, not used (a failed job, a discarded one); after
		 * a synchronous rotation, which took the name itself, the
		 * unlink finds nothing */
		char tmp[4096], msg[512];
		snprintf(tmp, sizeof(tmp), "%s/%s", j->idx->dir,
			 MIX_LOG_TMP_FILENAME);
		mix_err_copy(msg, sizeof(msg));   /* the caller's error */
		mix_io_close(&j->prep_fd);
		(void)mix_io_unlink_in(j->idx->dirfd, tmp);
		(void)mix_err_set(0, msg);
	}
	free(j);
}

/* Append j to the checkpointer's queue and wake it. */
static void job_queue(struct mix_ckpter *ck, struct mix_ckpt_job *j)
{
	pthread_mutex_lock(&ck->lock);
	__atomic_store_n(&j->state, JOB_QUEUED, __ATOMIC_RELAXED);
	if (ck->tail)
		ck->tail->next = j;
	else
		ck->head = j;
	ck->tail = j;
	pthread_cond_signal(&ck->work);
	pthread_mutex_unlock(&ck->lock);
}

/* Under ck->lock: take a queued j off the queue. */
static void job_unqueue(struct mix_ckpter *ck, struct mix_ckpt_job *j)
{
	struct mix_ckpt_job **pp = &ck->head, *prev = NULL;

	while (*pp != j) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = j->next;
	if (ck->tail == j)
		ck->tail = prev;
}

/* Writer role: pin the current snapshot and queue its checkpoint.
 * Returns 0, or < 0 when it cannot run asynchronously. */
static int ckpt_start(struct mix_index *idx)
{
	struct mix_ckpter *ck = ckpter_of(idx);
	struct mix_snap *s = idx->snap;
	struct mix_ckpt_job *j;

	if (!ck || mix_ckpt_sync_only || !(j = calloc(1, sizeof(*j))))
		return MIX_ENOMEM();
	j->idx = idx;
	j->prep_fd = -1;
	/* s is the current snapshot: the writer role's "current" reference
	 * keeps refs >= 1 until s's successor is published and a grace
	 * period has passed, so this increment cannot race with its death;
	 * from now on reclamation keeps s and all it reaches.
	 * ORDER(snap-refs): acq_rel like every change of refs; the release
	 * of the decrement that reaches 0 (mix_snap_unref) pairs with the
	 * acquire of the others, so every use of s happens before it dies */
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	j->snap = s;
	j->gen = s->gen;
	j->seq = s->hdr.log_file_seq;
	j->off = s->hdr.log_file_head_offset;
	j->uid_floor = ckpt_uid_floor(idx, s);
	if (j->seq == idx->log.hdr.file_seq && idx->log.synced < j->off &&
	    !(j->sync_path = strdup(idx->log.path))) {
		job_free(j);
		return MIX_ENOMEM();
	}
	job_queue(ck, j);
	idx->ckpt_job = j;
	return 0;
}

/* Is the job done?  With wait, wait until it is; with cancel, a job not
 * started yet is taken off the queue (and done, cancelled). */
static int job_wait(struct mix_ckpter *ck, struct mix_ckpt_job *j, int wait,
		    int cancel)
{
	int done;

	/* ORDER(ckpt-done): pairs with the release store in ckpter_main */
	if (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == JOB_DONE)
		return 1;
	if (!wait && !cancel)
		return 0;
	pthread_mutex_lock(&ck->lock);
	if (cancel && __atomic_load_n(&j->state, __ATOMIC_RELAXED) ==
		      JOB_QUEUED) {
		job_unqueue(ck, j);
		j->ret = MIX_EINVAL;
		snprintf(j->errmsg, sizeof(j->errmsg), "%s: checkpoint "
			 "cancelled", j->idx->dir);
		__atomic_store_n(&j->state, JOB_DONE, __ATOMIC_RELEASE);
	}
	while (wait && __atomic_load_n(&j->state, __ATOMIC_ACQUIRE) !=
		       JOB_DONE)
		pthread_cond_wait(&ck->done, &ck->lock);
	done = __atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == JOB_DONE;
	pthread_mutex_unlock(&ck->lock);
	return done;
}

/* Writer role or close: no asynchronous checkpoint of idx in flight
 * afterwards.  One not started is cancelled, a running one waited for;
 * the result is dropped (the caller writes its own or closes). */
static void ckpt_discard(struct mix_index *idx)
{
	struct mix_ckpt_job *j = idx->ckpt_job;
	struct mix_ckpter *ck;

	if (!j)
		return;
	idx->ckpt_job = NULL;
	if (!(ck = ckpter_of(idx)))
		return;   /* a forked child: the job is the parent's */
	job_wait(ck, j, 1, 1);
	job_free(j);
}

static void ckpt_collect(struct mix_index *idx, struct mix_ckpt_job *j);

/* Writer role (close): wait for idx's asynchronous checkpoint and
 * collect it. */
static void ckpt_finish(struct mix_index *idx)
{
	struct mix_ckpt_job *j = idx->ckpt_job;
	struct mix_ckpter *ck = ckpter_of(idx);

	if (!j || !ck) {
		ckpt_discard(idx);
		return;
	}
	job_wait(ck, j, 1, 0);
	idx->ckpt_job = NULL;
	ckpt_collect(idx, j);
	job_free(j);
}

void mix_index_ckpt_cancel(struct mix_index *idx)
{
	/* a rotation cannot be left half done by a close that succeeded:
	 * complete it (its failure has poisoned the index already) */
	(void)mix_index_rot_settle(idx);
	ckpt_discard(idx);
}

/* Writer role: republish the current state with the chunks it shares
 * with the checkpointed snapshot in the new mapping. */
static int ckpt_rebase(struct mix_index *idx, struct mix_ckpt_job *j)
{
	struct mix_builder b;
	uint32_t n;
	int ret = mix_builder_rebase(&b, idx->snap, j->gen, j->keys, j->first,
				     j->mapped, j->n, j->map, idx->map, &n);
	if (ret < 0)
		return ret;
	b.xhist_max = idx->xhist_max;
	if ((ret = mix_index_publish(idx, &b)) < 0)
		return ret;
	idx->map = j->map;   /* retired above when the old one was set */
	j->map = NULL;
	MIX_PROBE2(ckpt_rebase, idx->snap->gen, n);
	return 0;
}

/* Writer role: report a mapping that cannot be used: the file does not
 * load again (MIX_ECORRUPT from the job: the rotation that would make
 * the logs depend on it must not happen), or the republish failed (the
 * state stays in memory and the old mapping; harmless). */
static void remap_failed(struct mix_index *idx, const char *what)
{
	const struct mix_engine_config *c = &idx->engine->cfg;
	char msg[768];

	snprintf(msg, sizeof(msg), "%s: mix.index written but %s: %s",
		 idx->dir, what, mix_last_error());
	if (idx->writer)
		__atomic_add_fetch(&idx->writer->stat_ckpt_failures, 1,
				   __ATOMIC_RELAXED);
	if (c->warning)
		c->warning(c->warning_ctx, msg);
}

/* Writer role: switch to the next log without a flush and queue the
 * rotation's completion (design.md "Checkpoints off the writer thread",
 * format.md §3.5 "A rotation in two steps").  The old log's end is final
 * here: the new header names it.  The header repeats the session's UID
 * reservation rather than making a new one: it is not durable before the
 * completion, and a batch that passes the reservation syncs (a UID_FLOOR
 * record), which settles the rotation first.  Falls back to the
 * synchronous rotation when the job cannot be allocated. */
static int rot_begin(struct mix_index *idx, struct mix_ckpter *ck,
		     struct mix_ckpt_job *cj)
{
	const struct mix_log_header *h = &idx->log.hdr;
	struct mix_log_writer nw;
	struct mix_ckpt_job *j;
	int ret;

	/* §3.5 precondition, as in mix_index_rotate: mix.index needs
	 * nothing of the old .log.2 (the completion replaces it) */
	if (idx->ckpt_seq != h->file_seq || idx->ckpt_off > idx->log.offset)
		return mix_index_rotate(idx);   /* reports it */
	if (cj->prep_fd < 0 || !(j = calloc(1, sizeof(*j)))) {
		/* nothing prepared, or out of memory: synchronously */
		if ((ret = log_durable(idx)) < 0)
			return ret;
		return mix_index_rotate(idx);
	}
	ret = mix_log_switch_begin(idx->dir, cj->prep_fd, h->indexid,
				   h->file_seq + 1, h->file_seq,
				   (uint32_t)idx->log.offset, idx->uid_floor,
				   &nw);
	if (ret < 0) {
		free(j);
		return ret;   /* nothing changed: the old log stays active */
	}
	cj->prep_fd = -1;   /* the log writer's now */
	j->kind = JOB_ROTATE;
	j->prep_fd = -1;
	j->idx = idx;
	j->seq = nw.hdr.file_seq;
	j->old_fd = idx->log.fd;   /* the job's now: synced, then closed */
	idx->log.fd = -1;
	mix_log_writer_close(&idx->log);
	idx->log = nw;
	idx->rot_job = j;
	job_queue(ck, j);
	return 0;
}

int mix_index_rot_settle(struct mix_index *idx)
{
	struct mix_ckpt_job *j = idx->rot_job;
	struct mix_ckpter *ck;
	int run = 0, ret;

	if (!j)
		return 0;
	idx->rot_job = NULL;
	if (!(ck = ckpter_of(idx))) {
		/* a forked child: the job is the parent's, and so are the
		 * files it renames */
		job_free(j);
		return 0;
	}
	pthread_mutex_lock(&ck->lock);
	if (__atomic_load_n(&j->state, __ATOMIC_RELAXED) == JOB_QUEUED) {
		/* not begun (behind another index's checkpoint, say): do
		 * it here rather than wait for that */
		job_unqueue(ck, j);
		__atomic_store_n(&j->state, JOB_RUNNING, __ATOMIC_RELAXED);
		run = 1;
	}
	pthread_mutex_unlock(&ck->lock);
	if (run) {
		job_run(j);
		__atomic_store_n(&j->state, JOB_DONE, __ATOMIC_RELEASE);
	} else {
		job_wait(ck, j, 1, 0);
	}
	ret = j->ret;
	if (ret < 0) {
		mix_err_set(ret, j->errmsg);
		checkpoint_failed(idx);
		/* the report above may have replaced the message */
		mix_err_set(ret, j->errmsg);
	}
	job_free(j);
	return ret;
}

/* Writer role: a finished job.  Mirrors the synchronous path: a failed
 * write is reported (checkpoint_failed) and retried after a later
 * batch; a file that does not load again is reported and blocks the
 * rotation.  Then the active log is made durable to its end and rotated
 * (§3.5), and only then is the state republished into the new mapping:
 * the republish retires the old mapping, whose munmap frees the old
 * mix.index's blocks (a journal transaction the rotation's directory
 * fsyncs would otherwise wait for). */
static void ckpt_collect(struct mix_index *idx, struct mix_ckpt_job *j)
{
	int ret = j->ret;

	if (ret < 0 && j->stage != STAGE_LOAD) {
		mix_err_set(ret, j->errmsg);
		checkpoint_failed(idx);
		return;
	}
	/* mix.index is at the job's position from now on */
	idx->ckpt_seq = j->seq;
	idx->ckpt_off = j->off;
	idx->ckpt_uid_floor = j->uid_floor;
	if (idx->writer)
		__atomic_add_fetch(&idx->writer->stat_checkpoints, 1,
				   __ATOMIC_RELAXED);
	if (ret < 0) {
		mix_err_set(ret, j->errmsg);
		remap_failed(idx, "it cannot be loaded again (remap)");
		if (ret == MIX_ECORRUPT)
			return;   /* the logs must not come to depend on it */
	}
	if (!idx->closing && ckpter_of(idx) && !mix_ckpt_sync_only)
		ret = rot_begin(idx, ckpter_of(idx), j);
	else if ((ret = log_durable(idx)) == 0)
		ret = mix_index_rotate(idx);
	if (ret < 0) {
		if (ret != MIX_EINVAL && active_log_gone(idx))
			idx->rotate_pending_seq = idx->log.hdr.file_seq + 1;
		checkpoint_failed(idx);
	}
	if (j->map && ckpt_rebase(idx, j) < 0)
		remap_failed(idx, "republishing the state into it failed");
}

void mix_index_ckpt_tick(struct mix_index *idx)
{
	struct mix_ckpt_job *j = idx->rot_job;

	/* A rotation still completing: no checkpoint may name a position
	 * in the new log before its name and header are durable, so the
	 * next one waits; collect it once done (or once the log grew to
	 * twice the rotation size: then complete it here). */
	if (j) {
		/* ORDER(ckpt-done): pairs with the release of JOB_DONE */
		if (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) != JOB_DONE &&
		    !ckpt_must_wait(idx))
			return;
		if (mix_index_rot_settle(idx) < 0)
			return;   /* poisoned and reported */
	}
	j = idx->ckpt_job;
	if (j) {
		struct mix_ckpter *ck;
		/* ORDER(ckpt-done): pairs with the release in ckpter_main */
		if (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) != JOB_DONE &&
		    !ckpt_must_wait(idx))
			return;   /* the common case: no system call */
		if (!(ck = ckpter_of(idx))) {   /* a forked child */
			idx->ckpt_job = NULL;
			return;
		}
		job_wait(ck, j, 1, 0);
		idx->ckpt_job = NULL;
		ckpt_collect(idx, j);
		job_free(j);
		return;
	}
	if (idx->log.offset < idx->rotate_size ||
	    /* ORDER(poison) */
	    __atomic_load_n(&idx->poisoned, __ATOMIC_RELAXED))
		return;
	if (ckpt_start(idx) == 0)
		return;
	/* no checkpointer here, or out of memory: on this thread */
	if (mix_index_checkpoint_rotate(idx) < 0)
		checkpoint_failed(idx);
}
