/*
 * Applying logged transactions to a builder (docs/format.md §3.3).  Used
 * at open (recovery) and by read-only openers following the log.  The
 * writer applies live transactions through the same builder functions
 * (txn-apply.c) and logs exactly what they changed, so replaying the log
 * reproduces the published state record for record, modseqs included
 * (a transaction of FLAGS records that changed only DIRTY moves no
 * modseq, here as there: docs/condstore.md).
 *
 * Every record has been validated by mix_log_txn_next_op; what can still
 * be wrong is its meaning against the state (an append below next_uid, an
 * unknown extension): that is corruption, reported with file and offset.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ext-neutral.h"
#include "index.h"
#include "replay.h"

/* Base header words a HDR record may set (docs/format.md §3.3). */
static int hdr_word_ok(uint32_t off)
{
	return off == offsetof(struct mix_index_header, uid_validity) ||
	       off == offsetof(struct mix_index_header, next_uid) ||
	       off == offsetof(struct mix_index_header, first_recent_uid) ||
	       (off >= offsetof(struct mix_index_header, day_stamp) &&
		off < offsetof(struct mix_index_header, checksum));
}

int mix_hdr_apply(struct mix_builder *b, uint32_t offset, const uint8_t *data,
		  uint32_t size)
{
	struct mix_index_header *h = &b->hdr;
	uint32_t i, v;

	if (offset % 4 || size % 4 || offset > sizeof(*h) ||
	    size > sizeof(*h) - offset)
		return mix_err(MIX_ECORRUPT, "header update %u+%u", offset,
			       size);
	for (i = 0; i < size; i += 4) {
		uint32_t off = offset + i;
		if (!hdr_word_ok(off))
			return mix_err(MIX_ECORRUPT, "header update of offset "
				       "%u, which the log may not set", off);
		memcpy(&v, data + i, 4);
		if (off == offsetof(struct mix_index_header, next_uid)) {
			if (v < h->next_uid)
				return mix_err(MIX_ECORRUPT, "next_uid lowered "
					       "from %u to %u", h->next_uid, v);
			if (h->first_unseen_uid_lowwater == h->next_uid)
				h->first_unseen_uid_lowwater = v;
			if (h->first_deleted_uid_lowwater == h->next_uid)
				h->first_deleted_uid_lowwater = v;
		}
		memcpy((uint8_t *)h + off, &v, 4);
	}
	b->changed = 1;
	return 0;
}

static int replay_ranges(struct mix_builder *b, const struct mix_log_op *op,
			 uint64_t modseq, uint32_t kw_idx, const uint8_t *want)
{
	uint32_t i;
	int ret = 0;
	for (i = 0; i < op->count && ret == 0; i++) {
		uint32_t f = op->ranges[i].first, l = op->ranges[i].last;
		switch (op->type) {
		case MIX_LOG_EXPUNGE:
			ret = mix_builder_expunge(b, f, l, modseq, NULL);
			break;
		case MIX_LOG_FLAGS:
			ret = mix_builder_flags(b, f, l, op->add, op->remove,
						modseq, NULL);
			break;
		case MIX_LOG_KEYWORD:
			ret = mix_builder_keyword(b, f, l, kw_idx,
						  op->modify == MIX_LOG_KW_ADD,
						  modseq, NULL);
			break;
		case MIX_LOG_KEYWORD_RESET:
			ret = mix_builder_keywords_set(b, f, l, want, modseq,
						       NULL);
			break;
		}
	}
	return ret;
}

static int replay_ext_intro(struct mix_builder *b, const struct mix_log_op *op)
{
	const struct mix_log_ext_intro *in = &op->intro;
	uint32_t id;
	if (in->ext_id == b->layout->ext_count)
		return mix_builder_ext_add(b, op->name, op->name_size,
					   in->reset_id, in->hdr_size,
					   in->record_size, in->record_align,
					   &id);
	if (in->ext_id < b->layout->ext_count &&
	    mix_builder_ext_find(b, op->name, op->name_size, &id) &&
	    id == in->ext_id && b->layout->exts[id].rec_size == in->record_size)
		return 0;
	return mix_err(MIX_ECORRUPT, "extension intro '%.*s' as id %u does "
		       "not fit the %u known extensions", (int)op->name_size,
		       op->name, in->ext_id, b->layout->ext_count);
}

static int replay_ext_rec(struct mix_builder *b, const struct mix_log_op *op,
			  uint64_t modseq)
{
	uint32_t i, uid;
	int changed, ret;
	if (op->ext_id >= b->layout->ext_count ||
	    b->layout->exts[op->ext_id].rec_size != op->rec_size)
		return mix_err(MIX_ECORRUPT, "record update of extension %u "
			       "with size %u", op->ext_id, op->rec_size);
	for (i = 0; i < op->count; i++) {
		const uint8_t *e = op->data + (size_t)i * op->stride;
		memcpy(&uid, e, 4);
		/* a modseq-neutral extension's record keeps its modseq */
		ret = mix_ext_rec_apply(b, uid, op->ext_id, e + 4, modseq,
					&changed);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int replay_op(struct mix_builder *b, const struct mix_log_op *op,
		     uint64_t modseq)
{
	uint32_t i, idx = 0;
	uint8_t *want;
	int ret = 0, changed;

	switch (op->type) {
	case MIX_LOG_APPEND:
		for (i = 0; i < op->count && ret == 0; i++)
			ret = mix_builder_append(b, op->appends[i].uid,
						 (uint8_t)op->appends[i].flags,
						 modseq);
		return ret;
	case MIX_LOG_KEYWORD:
		ret = mix_builder_keyword_idx(b, op->name, op->name_size, 1,
					      &idx);
		return ret < 0 ? ret : replay_ranges(b, op, modseq, idx, NULL);
	case MIX_LOG_KEYWORD_RESET:
		want = calloc(1, b->layout->exts[MIX_EXT_KEYWORDS].rec_size + 1);
		if (!want)
			return MIX_ENOMEM();
		ret = replay_ranges(b, op, modseq, 0, want);
		free(want);
		return ret;
	case MIX_LOG_EXPUNGE:
		ret = replay_ranges(b, op, modseq, 0, NULL);
		return ret < 0 ? ret : mix_builder_xhist_add(b, modseq, op->ranges,
							     op->count);
	case MIX_LOG_FLAGS:
		return replay_ranges(b, op, modseq, 0, NULL);
	case MIX_LOG_EXT_INTRO:
		return replay_ext_intro(b, op);
	case MIX_LOG_EXT_HDR:
		return mix_builder_ext_hdr(b, op->ext_id, op->offset, op->data,
					   op->size, &changed);
	case MIX_LOG_EXT_REC:
		return replay_ext_rec(b, op, modseq);
	case MIX_LOG_APPEND_RUN:
		return mix_builder_append_run(b, op->first_uid, op->count,
					      op->data, modseq);
	case MIX_LOG_EXT_RUN:
		if (op->ext_id >= b->layout->ext_count ||
		    b->layout->exts[op->ext_id].rec_size != op->rec_size)
			return mix_err(MIX_ECORRUPT, "record update of "
				       "extension %u with size %u", op->ext_id,
				       op->rec_size);
		return mix_builder_ext_range(b, op->first_uid, op->count,
					     op->ext_id, op->data, modseq);
	case MIX_LOG_HDR:
		return mix_hdr_apply(b, op->offset, op->data, op->size);
	case MIX_LOG_UID_FLOOR:
		/* not index state: recovery raises next_uid to it after a
		 * crash (index.c, format.md §3.3.13) */
		if (op->uid_floor > b->uid_floor)
			b->uid_floor = op->uid_floor;
		return 0;
	}
	return mix_err(MIX_ECORRUPT, "record type %u", op->type);
}

int mix_replay_txn(struct mix_builder *b, const uint8_t *txn, uint32_t size,
		   uint8_t major, uint64_t modseq, const char *path,
		   uint64_t offset)
{
	struct mix_log_op op;
	uint32_t pos = 0;
	int ret, raise = 0;

	while ((ret = mix_log_txn_next_op(txn, size, major, &pos, &op)) > 0) {
		/* as txn-apply.c: FLAGS records raise highest_modseq
		 * themselves, only when visible (not DIRTY alone); a
		 * UID_FLOOR record changes nothing a client sees
		 * (format.md §3.3.13), nor does the data of a modseq-neutral
		 * extension (§2.8); every other record raises it */
		raise |= op.type != MIX_LOG_FLAGS &&
			 op.type != MIX_LOG_UID_FLOOR &&
			 !mix_ext_op_neutral(b, &op);
		ret = replay_op(b, &op, modseq);
		if (ret < 0)
			break;
	}
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		char msg[512];
		mix_err_copy(msg, sizeof(msg));
		return mix_err(MIX_ECORRUPT, "%s: transaction at offset %llu: "
			       "%s", path, (unsigned long long)offset, msg);
	}
	if (raise)
		mix_builder_touch(b, modseq);
	return 0;
}
