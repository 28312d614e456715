/*
 * Checkpoints and log rotation of one index (docs/design.md §4,
 * docs/format.md §2, §3.5): write the current snapshot to mix.index at
 * a durable log position, republish it with chunks in the new mapping,
 * and start the next log file once mix.index covers the active one.
 *
 * Runs with the writer role of the index (its writer thread), or on the
 * opening/closing thread while no writer has the index.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "err.h"
#include "index-file.h"
#include "index.h"
#include "probes.h"

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

static int checkpoint_write(struct mix_index *idx, const struct mix_snap *s)
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
		return -ENOMEM;
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
	floor[0] = ckpt_uid_floor(idx, s);
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
	src.hdr.log_file_seq = idx->log.hdr.file_seq;
	src.hdr.log_file_head_offset = (uint32_t)idx->log.offset;
	src.record_size = s->record_size;
	src.ext_count = l->ext_count + 2;
	src.exts = exts;
	src.keyword_count = s->kw->count;
	src.keywords = s->kw->names;
	src.next_run = mix_snap_next_run;
	src.ctx = &runs;
	ret = mix_ifile_write(idx->dir, &src);
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
	if ((ret = mix_ifile_open(path, &f)) < 0)
		return ret;
	map = calloc(1, sizeof(*map));
	if (!map) {
		mix_ifile_free(&f);
		return -ENOMEM;
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

int mix_index_checkpoint(struct mix_index *idx, int do_remap)
{
	int ret = log_durable(idx);
	if (ret == 0)
		ret = checkpoint_write(idx, idx->snap);
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
	 * old .log.2 is replaced, so mix.index must cover the active log
	 * (and its position be durable, log_durable) */
	if (idx->ckpt_seq < h->file_seq || idx->ckpt_off != idx->log.offset ||
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
	int ret = mix_log_rotate_to_floor(idx->dir, h->indexid, file_seq,
					  h->file_seq,
					  (uint32_t)idx->log.offset, floor,
					  &nw);
	MIX_PROBE2(rotate, file_seq, ret);
	if (ret < 0)
		return ret;
	mix_log_writer_close(&idx->log);
	idx->log = nw;
	idx->uid_floor = floor;   /* durable: the header was fsynced */
	return 0;
}

int mix_index_checkpoint_rotate(struct mix_index *idx)
{
	int ret = mix_index_checkpoint(idx, 1);
	if (ret == 0 && (ret = mix_index_rotate(idx)) < 0) {
		/* If the old log was renamed away but the new one is not in
		 * place, further appends would go to a file nobody reads: the
		 * next batch starts the new log first (the rename of a missing
		 * active log is skipped, §3.5), as after a writable open. */
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", idx->dir,
			 MIX_LOG_FILENAME);
		if (access(path, F_OK) != 0)
			idx->rotate_pending_seq = idx->log.hdr.file_seq + 1;
	}
	return ret;
}

void mix_index_ckpt_tick(struct mix_index *idx)
{
	if (idx->log.offset >= idx->rotate_size &&
	    mix_index_checkpoint_rotate(idx) < 0)
		checkpoint_failed(idx);
}
