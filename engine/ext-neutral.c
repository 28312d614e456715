/*
 * Extension registration with flags, and modseq-neutral extensions
 * (issue 14 item 5; docs/format.md §2.8, docs/condstore.md "What raises a
 * modseq", docs/api.md "Extensions").
 *
 * An extension registered with MIX_EXT_FLAG_NO_MODSEQ holds data no IMAP
 * client sees (a cache, a backend's bookkeeping): changing its record or
 * header data moves no modseq, neither the message's nor HIGHESTMODSEQ,
 * exactly like a DIRTY-only flag change.  The change is still logged in
 * ordinary EXT_REC / EXT_HDR records.  Which extensions are neutral is
 * state, not a record flag: the engine extension "mix.neutral" holds a
 * bitmap of extension ids in its header data, set (once, never cleared)
 * in the transaction that registers the extension.  It is logged and
 * checkpointed like any extension header, so replay (replay.c) and every
 * reader of mix.index know the set at every point of the log, and a
 * record's neutrality is decided the same way live and on replay.  No
 * record layout or log record changed: an older library reads such an
 * index, but it would give neutral changes modseqs (format.md §2.8).
 *
 * Registration runs in the writer (txn-apply.c apply_register, which
 * calls mix_ext_neutral_mark); the rest runs wherever a builder does.
 * Nothing here touches the read path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "err.h"
#include "ext-neutral.h"
#include "index.h"
#include "rcu.h"
#include "txn.h"

/* The id of mix.neutral in b, or 0 when the index has none. */
static uint32_t neutral_ext(const struct mix_builder *b)
{
	uint32_t id;
	if (!mix_builder_ext_find(b, MIX_EXT_NAME_NEUTRAL,
				  strlen(MIX_EXT_NAME_NEUTRAL), &id))
		return 0;
	return id;
}

int mix_ext_neutral(const struct mix_builder *b, uint32_t ext_id)
{
	uint32_t nid = neutral_ext(b);
	if (nid == 0 || ext_id >= MIX_NEUTRAL_HDR_SIZE * 8 ||
	    nid >= b->exthdrs->count ||
	    b->exthdrs->e[nid].size < MIX_NEUTRAL_HDR_SIZE)
		return 0;
	return b->exthdrs->e[nid].data[ext_id / 8] >> (ext_id % 8) & 1;
}

int mix_ext_op_neutral(const struct mix_builder *b, const struct mix_log_op *op)
{
	if (op->type != MIX_LOG_EXT_REC && op->type != MIX_LOG_EXT_HDR)
		return 0;
	return mix_ext_neutral(b, op->ext_id);
}

/* The modseq uid's record has in b, or 0 if there is no such message. */
static uint64_t rec_modseq(const struct mix_builder *b, uint32_t uid)
{
	uint32_t lo = 0, hi = b->nchunks, n;
	const struct mix_chunk *c;
	size_t rs = b->layout->record_size;
	uint64_t ms;

	while (lo < hi) {          /* first chunk whose last UID >= uid */
		uint32_t mid = lo + (hi - lo) / 2;
		if (b->chunks[mid]->last_uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == b->nchunks || b->chunks[lo]->first_uid > uid)
		return 0;
	c = b->chunks[lo];
	for (lo = 0, hi = c->count; lo < hi;) {
		uint32_t mid = lo + (hi - lo) / 2;
		memcpy(&n, c->recs + (size_t)mid * rs, 4);
		if (n < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == c->count)
		return 0;
	memcpy(&n, c->recs + (size_t)lo * rs, 4);
	if (n != uid)
		return 0;
	memcpy(&ms, c->recs + (size_t)lo * rs + MIX_REC_MODSEQ_OFFSET, 8);
	return ms;
}

int mix_ext_rec_apply(struct mix_builder *b, uint32_t uid, uint32_t ext_id,
		      const uint8_t *data, uint64_t modseq, int *changed_r)
{
	/* the record "changes" to the modseq it has: not above
	 * highest_modseq, so neither moves (mix_builder_touch only raises) */
	if (mix_ext_neutral(b, ext_id)) {
		uint64_t cur = rec_modseq(b, uid);
		if (cur != 0)
			modseq = cur;
	}
	return mix_builder_ext_rec(b, uid, ext_id, data, modseq, changed_r);
}

int mix_ext_neutral_mark(struct mix_builder *b, uint32_t ext_id,
			 struct mix_buf *buf)
{
	uint8_t byte;
	uint32_t nid = neutral_ext(b);
	int changed, ret;

	if (ext_id >= MIX_NEUTRAL_HDR_SIZE * 8)
		return mix_err(MIX_ELIMIT, "extension id %u: only ids below %u "
			       "can be modseq-neutral", ext_id,
			       MIX_NEUTRAL_HDR_SIZE * 8);
	if (nid == 0) {
		struct mix_log_ext_intro in;
		size_t len = strlen(MIX_EXT_NAME_NEUTRAL);
		if (mix_builder_ext_add(b, MIX_EXT_NAME_NEUTRAL, len, 0,
					MIX_NEUTRAL_HDR_SIZE, 0, 1, &nid) < 0)
			return -EINVAL;
		memset(&in, 0, sizeof(in));
		in.ext_id = nid;
		in.hdr_size = MIX_NEUTRAL_HDR_SIZE;
		in.record_align = 1;
		in.name_size = (uint16_t)len;
		if ((ret = mix_logenc_ext_intro(buf, &in,
						MIX_EXT_NAME_NEUTRAL)) < 0)
			return ret;
	}
	if (nid >= b->exthdrs->count ||
	    b->exthdrs->e[nid].size < MIX_NEUTRAL_HDR_SIZE)
		return mix_err(MIX_ECORRUPT, "extension %s has %u bytes of "
			       "header data, not %u", MIX_EXT_NAME_NEUTRAL,
			       nid < b->exthdrs->count ?
			       b->exthdrs->e[nid].size : 0,
			       MIX_NEUTRAL_HDR_SIZE);
	byte = (uint8_t)(b->exthdrs->e[nid].data[ext_id / 8] |
			 1u << (ext_id % 8));
	if ((ret = mix_builder_ext_hdr(b, nid, ext_id / 8, &byte, 1,
				       &changed)) < 0)
		return ret;
	return changed ? mix_logenc_ext_hdr(buf, nid, ext_id / 8, &byte, 1)
		       : 0;
}

/* ---- registration (any thread; the writer applies it) ------------------- */

/* Names as format.md §2.2 wants them; those starting with "mix." are the
 * engine's own. */
static int ext_name_valid(const char *name)
{
	if (strncmp(name, "mix.", 4) == 0)
		return 0;
	for (; *name; name++)
		if ((unsigned char)*name <= 0x20 || *name == 0x7f)
			return 0;
	return 1;
}

static int ext_register(struct mix_index *idx, const char *name,
			uint16_t record_size, uint16_t record_align,
			uint32_t hdr_size, unsigned flags, int engine,
			uint32_t *ext_id_r);

MIX_API int mix_index_ext_register_flags(struct mix_index *idx,
					 const char *name,
					 uint16_t record_size,
					 uint16_t record_align,
					 uint32_t hdr_size, unsigned flags,
					 uint32_t *ext_id_r)
{
	return ext_register(idx, name, record_size, record_align, hdr_size,
			    flags, 0, ext_id_r);
}

int mix_index_ext_register_engine(struct mix_index *idx, const char *name,
				  uint32_t hdr_size, uint32_t *ext_id_r)
{
	return ext_register(idx, name, 0, 1, hdr_size, 0, 1, ext_id_r);
}

/* engine: one of the engine's own "mix." extensions (their names are
 * refused to callers). */
static int ext_register(struct mix_index *idx, const char *name,
			uint16_t record_size, uint16_t record_align,
			uint32_t hdr_size, unsigned flags, int engine,
			uint32_t *ext_id_r)
{
	struct mix_txn *t;
	struct txn_op *op;
	size_t len = name ? strlen(name) : 0;
	int ret;

	if (len == 0 || len > MIX_EXT_NAME_MAX || record_size > MIX_EXT_REC_MAX ||
	    hdr_size > MIX_EXT_HDR_MAX ||
	    (record_align != 1 && record_align != 2 && record_align != 4 &&
	     record_align != 8) ||
	    (engine ? strncmp(name, "mix.", 4) != 0 : !ext_name_valid(name)))
		return mix_err(MIX_EINVAL, "extension '%.64s': bad name or "
			       "sizes", name ? name : "");
	if (flags & ~(unsigned)MIX_EXT_FLAG_NO_MODSEQ)
		return mix_err(MIX_EINVAL, "extension '%.64s': unknown flags "
			       "0x%x", name, flags);
	if (mix_rcu_read_ongoing())
		return mix_err(MIX_EDEADLK, "extension '%.64s': registered "
			       "inside a read-side section", name);
	if ((ret = mix_txn_begin(idx, &t)) < 0)
		return ret;
	ret = -ENOMEM;
	if (mix_buf_append(&t->arena, name, len + 1) == 0 &&
	    (t->ops = calloc(1, sizeof(*t->ops)))) {
		op = &t->ops[0];
		t->nops = t->ops_cap = 1;
		op->type = TXN_EXT_REGISTER;
		op->data = 0;
		op->size = (uint32_t)len;
		op->rec_size = record_size;
		op->rec_align = record_align;
		op->hdr_size = hdr_size;
		op->flags = (uint8_t)flags;
		ret = mix_txn_commit_wait(t);
		if (ret == 0)
			*ext_id_r = t->ext_id;
	}
	mix_txn_free(t);
	return ret;
}

MIX_API int mix_index_ext_register(struct mix_index *idx, const char *name,
				   uint16_t record_size, uint16_t record_align,
				   uint32_t hdr_size, uint32_t *ext_id_r)
{
	return mix_index_ext_register_flags(idx, name, record_size,
					    record_align, hdr_size, 0,
					    ext_id_r);
}
