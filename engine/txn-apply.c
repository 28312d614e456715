/*
 * Transactions, writer side: resolving a committed transaction against
 * the state being built and encoding what it actually changed
 * (docs/design.md §3).  Runs on the index's writer thread only.
 *
 * Operations apply in the order the committer added them.  UIDs are
 * assigned here.  Only effective changes are logged (a flag that is
 * already set changes nothing, gets no record and raises no modseq); a
 * transaction that changes nothing is not logged at all.  A change of
 * internal flag bits only (DIRTY) is logged but raises no modseq: the
 * records keep theirs, and a transaction whose records are all FLAGS
 * records with no visible effect leaves highest_modseq (replay.c applies
 * the same rule to the same records; docs/condstore.md lists what raises
 * a modseq).  A keyword name
 * new to the index is declared by a KEYWORD record with no ranges at the
 * moment it is created, so replay creates names in the same order.
 *
 * Decisions made here, atomically with every other commit: the
 * UNCHANGEDSINCE test (MODIFIED set), which messages a conditional
 * EXPUNGE removes (those with \Deleted now), and which UIDs a \Recent
 * claim gets.  Each is logged as the ordinary records of its effect
 * (EXPUNGE, FLAGS, HDR), so replay needs no rule of its own.  What the
 * result reports beyond that (changed and expunged UIDs) is collected
 * only when the committer asked for it (docs/condstore.md).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "ext-neutral.h"
#include "index.h"
#include "ranges.h"
#include "replay.h"
#include "txn-apply.h"
#include "txn.h"

/* Index of keyword name, creating (and declaring in the log) if asked. */
static int kw_idx(struct mix_builder *b, struct mix_buf *buf, const char *name,
		  int create, uint32_t *idx_r)
{
	uint32_t before = b->kw->count;
	int ret = mix_builder_keyword_idx(b, name, strlen(name), create, idx_r);
	if (ret > 0 && b->kw->count > before) {
		int r = mix_logenc_keyword(buf, MIX_LOG_KW_ADD, name, NULL, 0);
		if (r < 0)
			return r;
	}
	return ret;
}

/* Day fields (docs/format.md §2.1): on the first append of a UTC day. */
static int day_update(struct mix_builder *b, struct mix_buf *buf,
		      uint32_t first_uid)
{
	struct mix_index_header *h = &b->hdr;
	uint32_t today = (uint32_t)(time(NULL) / 86400 * 86400);
	uint32_t v[9], i;
	int ret;
	if (today <= h->day_stamp)
		return 0;
	v[0] = today;
	for (i = 7; i > 0; i--)
		v[1 + i] = h->day_first_uid[i - 1];
	v[1] = first_uid;
	if ((ret = mix_hdr_apply(b, offsetof(struct mix_index_header,
						     day_stamp),
				 (const uint8_t *)v, sizeof(v))) < 0)
		return ret;
	return mix_logenc_hdr(buf, offsetof(struct mix_index_header, day_stamp),
			      v, sizeof(v));
}

/* Keywords of the appends in the run starting at append number a0 (n
 * appends, UIDs from uid0): the transaction's appkw entries, in order. */
static int append_keywords(struct mix_builder *b, struct mix_txn *t,
			   uint32_t a0, uint32_t n, uint32_t uid0,
			   uint64_t modseq, struct mix_buf *buf)
{
	int ret = 0;
	for (; t->appkw_pos < t->nappkw && ret >= 0; t->appkw_pos++) {
		const struct txn_appkw *k = &t->appkw[t->appkw_pos];
		uint32_t uid = uid0 + (k->append - a0), q, idx;
		struct mix_log_uid_range r = { uid, uid };
		if (k->append >= a0 + n)
			break;
		for (q = 0; q < k->nkw && ret >= 0; q++) {
			const char *name = txn_kwname(t, k->kw, q);
			ret = kw_idx(b, buf, name, 1, &idx);
			if (ret >= 0)
				ret = mix_builder_keyword(b, uid, uid, idx, 1,
							  modseq, NULL);
			if (ret >= 0)
				ret = mix_logenc_keyword(buf, MIX_LOG_KW_ADD,
							 name, &r, 1);
		}
	}
	return ret < 0 ? ret : 0;
}

/* A run of appends (op->size of them from append number op->uid): one
 * APPEND record, the keywords, then one EXT_REC record per extension
 * given data.  Builder and log both take the run whole. */
static int apply_appends(struct mix_builder *b, struct mix_txn *t,
			 const struct txn_op *op, uint64_t modseq,
			 struct mix_buf *buf)
{
	uint32_t n = op->size, a0 = op->uid, uid0 = b->hdr.next_uid, i;
	const uint8_t *flags = t->app_flags + a0;
	int ret;

	if (uid0 == 0 || (uint64_t)uid0 + n > UINT32_MAX)
		return mix_err(MIX_ELIMIT, "UIDs exhausted (next_uid %u)",
			       uid0);
	if (t->result.first_uid == 0) {
		t->result.first_uid = uid0;
		if ((ret = day_update(b, buf, uid0)) < 0)
			return ret;
	}
	t->result.last_uid = uid0 + n - 1;
	if (t->append_uids)
		for (i = 0; i < n; i++)
			t->append_uids[a0 + i] = uid0 + i;
	if ((ret = mix_builder_append_run(b, uid0, n, flags, modseq)) < 0 ||
	    (ret = mix_logenc_append_run(buf, uid0, flags, n)) < 0 ||
	    (ret = append_keywords(b, t, a0, n, uid0, modseq, buf)) < 0)
		return ret;
	for (i = 0; i < t->ncols; i++) {
		const struct txn_col *c = &t->cols[i];
		const uint8_t *data, *set;
		uint32_t m;
		if (c->cap <= a0)
			continue; /* no data for appends this far */
		/* only the appends the column has room for can be set */
		m = n < c->cap - a0 ? n : c->cap - a0;
		data = c->data + (size_t)a0 * c->size;
		set = c->set + a0;
		if ((ret = mix_builder_ext_run(b, uid0, m, c->ext_id, data,
					       set)) < 0 ||
		    (ret = mix_logenc_ext_rec_run(buf, c->ext_id, c->size,
						  uid0, data, set, m)) < 0)
			return ret;
	}
	return 0;
}

/* The UID ranges an operation applies to.  For a conditional one
 * (UNCHANGEDSINCE) only the messages whose modseq is not above the
 * limit, right now; the others go to the transaction's MODIFIED set. */
struct op_ranges {
	const struct mix_uid_range *r;
	uint32_t n;
	struct mix_ranges tmp;
};

static int modified_add(struct mix_txn *t, const struct mix_ranges *gt)
{
	uint32_t need = t->modified_count + gt->count;
	if (gt->count == 0)
		return 0;
	if (need > t->modified_cap) {
		uint32_t cap = t->modified_cap ? t->modified_cap : 8;
		void *n;
		while (cap < need)
			cap *= 2;
		if (!(n = realloc(t->modified, cap * sizeof(*t->modified))))
			return MIX_ENOMEM();
		t->modified = n;
		t->modified_cap = cap;
	}
	memcpy(t->modified + t->modified_count, gt->r,
	       gt->count * sizeof(*gt->r));
	t->modified_count = need;
	return 0;
}

/* Append ranges (any order) to a result list; normalized at the end. */
static int rlist_add(struct txn_rlist *l, const struct mix_log_uid_range *r,
		     uint32_t n)
{
	uint64_t need = (uint64_t)l->count + n;
	if (n == 0)
		return 0;
	if (need > UINT32_MAX / sizeof(*l->r))
		return MIX_ENOMEM();
	if (need > l->cap) {
		uint32_t cap = l->cap ? l->cap : 8;
		void *p;
		while (cap < need)
			cap *= 2;
		if (!(p = realloc(l->r, cap * sizeof(*l->r))))
			return MIX_ENOMEM();
		l->r = p;
		l->cap = cap;
	}
	memcpy(l->r + l->count, r, n * sizeof(*r));
	l->count = (uint32_t)need;
	return 0;
}

static int op_ranges_get(struct mix_builder *b, struct mix_txn *t,
			 const struct txn_op *op, struct op_ranges *o)
{
	const struct mix_uid_range *r = txn_ptr(t, op->ranges);
	struct mix_ranges gt = { 0 };
	uint64_t since = op->unchangedsince;
	uint32_t i;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	if (!op->cond) {
		o->r = r;
		o->n = op->nranges;
		return 0;
	}
	/* Below the lost point a message may have changed since the
	 * client's modseq without a higher modseq to show it (a power cut
	 * took a change back, format.md §2.9): every message is then
	 * MODIFIED, so the client fetches them again, as CHANGEDSINCE,
	 * expunged-since and QRESYNC answer such a modseq (found by a
	 * lifecycle check) */
	if (since < mix_builder_lost_modseq(b))
		since = 0;
	for (i = 0; i < op->nranges && ret == 0; i++)
		ret = mix_builder_split_modseq(b, r[i].first, r[i].last,
					       since, &o->tmp, &gt);
	if (ret == 0)
		ret = modified_add(t, &gt);
	mix_ranges_free(&gt);
	/* struct mix_log_uid_range and struct mix_uid_range are the same
	 * pair of u32s */
	o->r = (const struct mix_uid_range *)o->tmp.r;
	o->n = o->tmp.count;
	return ret;
}

/* One FLAGS record for the messages of o whose bits in mask change. */
static int apply_flags_mask(struct mix_builder *b, const struct op_ranges *o,
			    uint8_t add, uint8_t remove, uint8_t mask,
			    uint64_t modseq, struct mix_buf *buf,
			    struct txn_rlist *changed)
{
	struct mix_ranges out = { 0 };
	uint32_t i;
	int ret = 0;

	add &= mask;
	remove &= mask;
	if (!add && !remove)
		return 0;
	for (i = 0; i < o->n && ret == 0; i++)
		ret = mix_builder_flags(b, o->r[i].first, o->r[i].last, add,
					remove, modseq, &out);
	if (ret == 0 && out.count)
		ret = mix_logenc_flags(buf, add, remove, out.r, out.count);
	if (ret == 0 && changed)
		ret = rlist_add(changed, out.r, out.count);
	mix_ranges_free(&out);
	return ret;
}

/* Visible flags and internal ones (DIRTY) in two FLAGS records, so that a
 * record whose masks hold internal bits only is one that moved no modseq,
 * on replay and for mixctl alike (docs/condstore.md); the bits are
 * independent, so the split changes no result. */
static int apply_flags(struct mix_builder *b, struct mix_txn *t,
		       const struct txn_op *op, uint64_t modseq,
		       struct mix_buf *buf)
{
	struct op_ranges o;
	uint8_t add = 0, remove = 0;
	int ret = op_ranges_get(b, t, op, &o);

	if (op->modify == MIX_MODIFY_ADD)
		add = op->flags;
	else if (op->modify == MIX_MODIFY_REMOVE)
		remove = op->flags;
	else {
		add = op->flags;
		remove = (uint8_t)(MIX_FLAGS_ALL & ~op->flags);
	}
	/* only the visible record's messages changed for a client (a
	 * message whose DIRTY alone changed kept its modseq) */
	if (ret == 0)
		ret = apply_flags_mask(b, &o, add, remove,
				       (uint8_t)~MIX_FLAGS_INTERNAL, modseq,
				       buf, t->want_changed ? &t->changed
							    : NULL);
	if (ret == 0)
		ret = apply_flags_mask(b, &o, add, remove, MIX_FLAGS_INTERNAL,
				       modseq, buf, NULL);
	mix_ranges_free(&o.tmp);
	return ret;
}

static int apply_kw_one(struct mix_builder *b, const struct op_ranges *o,
			const char *name, int add, uint64_t modseq,
			struct mix_buf *buf, struct txn_rlist *changed)
{
	const struct mix_uid_range *r = o->r;
	struct mix_ranges out = { 0 };
	uint32_t i, idx;
	int ret = kw_idx(b, buf, name, add, &idx);

	if (ret <= 0)
		return ret; /* error, or removing an unknown keyword */
	ret = 0;
	for (i = 0; i < o->n && ret == 0; i++)
		ret = mix_builder_keyword(b, r[i].first, r[i].last, idx, add,
					  modseq, &out);
	if (ret == 0 && out.count)
		ret = mix_logenc_keyword(buf, add ? MIX_LOG_KW_ADD
						  : MIX_LOG_KW_REMOVE,
					 name, out.r, out.count);
	if (ret == 0 && changed)
		ret = rlist_add(changed, out.r, out.count);
	mix_ranges_free(&out);
	return ret;
}

static int apply_kw_replace(struct mix_builder *b, struct mix_txn *t,
			    const struct txn_op *op, const struct op_ranges *o,
			    uint64_t modseq, struct mix_buf *buf)
{
	const struct mix_uid_range *r = o->r;
	struct mix_ranges out = { 0 };
	uint32_t i, idx;
	uint8_t *want = NULL;
	int ret = 0;

	for (i = 0; i < op->nkw && ret >= 0; i++)
		ret = kw_idx(b, buf, txn_kw(t, op, i), 1, &idx);
	if (ret < 0)
		return ret;
	/* the bitmap size is final now that every name exists */
	want = calloc(1, b->layout->exts[MIX_EXT_KEYWORDS].rec_size + 1);
	if (!want)
		return MIX_ENOMEM();
	for (i = 0; i < op->nkw; i++) {
		(void)kw_idx(b, buf, txn_kw(t, op, i), 0, &idx);
		want[idx / 8] |= (uint8_t)(1u << (idx % 8));
	}
	ret = 0;
	for (i = 0; i < o->n && ret == 0; i++)
		ret = mix_builder_keywords_set(b, r[i].first, r[i].last, want,
					       modseq, &out);
	if (ret == 0 && out.count) {
		ret = mix_logenc_keyword_reset(buf, out.r, out.count);
		for (i = 0; i < op->nkw && ret == 0; i++)
			ret = mix_logenc_keyword(buf, MIX_LOG_KW_ADD,
						 txn_kw(t, op, i), out.r,
						 out.count);
	}
	if (ret == 0 && t->want_changed)
		ret = rlist_add(&t->changed, out.r, out.count);
	free(want);
	mix_ranges_free(&out);
	return ret;
}

static int apply_keywords(struct mix_builder *b, struct mix_txn *t,
			  const struct txn_op *op, uint64_t modseq,
			  struct mix_buf *buf)
{
	struct op_ranges o;
	uint32_t i;
	/* the condition is checked once, before any keyword changes */
	int ret = op_ranges_get(b, t, op, &o);

	if (ret == 0 && op->modify == MIX_MODIFY_REPLACE)
		ret = apply_kw_replace(b, t, op, &o, modseq, buf);
	else
		for (i = 0; i < op->nkw && ret == 0; i++)
			ret = apply_kw_one(b, &o, txn_kw(t, op, i),
					   op->modify == MIX_MODIFY_ADD,
					   modseq, buf, t->want_changed ?
					   &t->changed : NULL);
	mix_ranges_free(&o.tmp);
	return ret;
}

/* Expunge the messages of r[0..n) that exist: one EXPUNGE record and
 * one history entry for those actually removed. */
static int expunge_ranges(struct mix_builder *b, struct mix_txn *t,
			  const struct mix_uid_range *r, uint32_t n,
			  uint64_t modseq, struct mix_buf *buf)
{
	struct mix_ranges out = { 0 };
	uint32_t i;
	int ret = 0;
	for (i = 0; i < n && ret == 0; i++)
		ret = mix_builder_expunge(b, r[i].first, r[i].last, modseq,
					  &out);
	if (ret == 0 && out.count)
		ret = mix_logenc_expunge(buf, out.r, out.count);
	if (ret == 0)
		ret = mix_builder_xhist_add(b, modseq, out.r, out.count);
	if (ret == 0 && t->want_expunged)
		ret = rlist_add(&t->expunged, out.r, out.count);
	mix_ranges_free(&out);
	return ret;
}

static int apply_expunge(struct mix_builder *b, struct mix_txn *t,
			 const struct txn_op *op, uint64_t modseq,
			 struct mix_buf *buf)
{
	return expunge_ranges(b, t, txn_ptr(t, op->ranges), op->nranges,
			      modseq, buf);
}

/* The first chunk whose last UID is >= uid (b->nchunks if none). */
static uint32_t chunk_from(const struct mix_builder *b, uint32_t uid)
{
	uint32_t lo = 0, hi = b->nchunks;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (b->chunks[mid]->last_uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Runs of consecutive UIDs in [first, last] whose record has \Deleted
 * now, added to out.  Chunks without a \Deleted record are skipped by
 * their summary (n_deleted), so an EXPUNGE with few deleted messages
 * reads few chunks.  Reads only: nothing is copied. */
static int deleted_runs(const struct mix_builder *b, uint32_t first,
			uint32_t last, struct mix_ranges *out)
{
	size_t rs = b->layout->record_size;
	uint32_t ci, pos, uid;
	int open = 0;

	for (ci = chunk_from(b, first);
	     ci < b->nchunks && b->chunks[ci]->first_uid <= last; ci++) {
		const struct mix_chunk *c = b->chunks[ci];
		if (c->n_deleted == 0) {
			open = 0;
			continue;
		}
		for (pos = 0; pos < c->count; pos++) {
			const uint8_t *r = c->recs + (size_t)pos * rs;
			memcpy(&uid, r, 4);
			if (uid < first)
				continue;
			if (uid > last)
				break;
			if (!(r[4] & MIX_FLAG_DELETED)) {
				open = 0;
			} else if (open && out->r[out->count - 1].last + 1 ==
					   uid) {
				out->r[out->count - 1].last = uid;
			} else {
				if (mix_ranges_add(out, uid, uid) < 0)
					return MIX_ENOMEM();
				open = 1;
			}
		}
	}
	return 0;
}

/* IMAP EXPUNGE: decided here, in the writer, so that the \Deleted test
 * and the removal are one step with respect to every other commit. */
static int apply_expunge_deleted(struct mix_builder *b, struct mix_txn *t,
				 const struct txn_op *op, uint64_t modseq,
				 struct mix_buf *buf)
{
	const struct mix_uid_range *r = txn_ptr(t, op->ranges);
	struct mix_ranges del = { 0 };
	uint32_t i;
	int ret = 0;

	for (i = 0; i < op->nranges && ret == 0; i++)
		ret = deleted_runs(b, r[i].first, r[i].last, &del);
	/* struct mix_log_uid_range and struct mix_uid_range are the same
	 * pair of u32s */
	if (ret == 0 && del.count)
		ret = expunge_ranges(b, t,
				     (const struct mix_uid_range *)del.r,
				     del.count, modseq, buf);
	mix_ranges_free(&del);
	return ret;
}

/* \Recent: [first_recent_uid, next_uid) goes to this claimer, and
 * first_recent_uid moves to next_uid in the same step (a HDR record, as
 * MIX_HDR_FIRST_RECENT_UID logs it, so replay needs nothing new). */
static int apply_recent_claim(struct mix_builder *b, struct mix_txn *t,
			      struct mix_buf *buf)
{
	struct mix_index_header *h = &b->hdr;
	uint32_t first = h->first_recent_uid ? h->first_recent_uid : 1;
	uint32_t next = h->next_uid, off;
	int ret;

	if (first >= next)
		return 0;
	off = offsetof(struct mix_index_header, first_recent_uid);
	if ((ret = mix_hdr_apply(b, off, (const uint8_t *)&next, 4)) < 0)
		return ret;
	if (t->result.recent_first == 0)
		t->result.recent_first = first;
	t->result.recent_last = next - 1;
	return mix_logenc_hdr(buf, off, &next, 4);
}

static int apply_ext_set(struct mix_builder *b, const struct mix_txn *t,
			 const struct txn_op *op, uint32_t uid,
			 uint64_t modseq, struct mix_buf *buf)
{
	const uint8_t *data = txn_ptr(t, op->data);
	int changed = 0;
	int ret = mix_ext_rec_apply(b, uid, op->ext_id, data, modseq,
				    &changed);
	if (ret == 0 && changed)
		ret = mix_logenc_ext_rec(buf, op->ext_id, op->size, &uid, data,
					 1);
	return ret;
}

static int apply_hdr(struct mix_builder *b, const struct txn_op *op,
		     struct mix_buf *buf)
{
	struct mix_index_header *h = &b->hdr;
	uint32_t off, cur;
	int ret;
	switch (op->ext_id) {
	case MIX_HDR_UID_VALIDITY:
		off = offsetof(struct mix_index_header, uid_validity);
		cur = h->uid_validity;
		if (op->value == cur)
			return 0;
		break;
	case MIX_HDR_NEXT_UID:
		off = offsetof(struct mix_index_header, next_uid);
		if (op->value <= h->next_uid)
			return 0;
		break;
	default:
		off = offsetof(struct mix_index_header, first_recent_uid);
		if (op->value <= h->first_recent_uid)
			return 0;
		break;
	}
	if ((ret = mix_hdr_apply(b, off, (const uint8_t *)&op->value, 4)) < 0)
		return ret;
	return mix_logenc_hdr(buf, off, &op->value, 4);
}

static int apply_register(struct mix_builder *b, struct mix_txn *t,
			  const struct txn_op *op, struct mix_buf *buf)
{
	const char *name = txn_ptr(t, op->data);
	struct mix_log_ext_intro in;
	uint32_t id;
	int ret;

	int neutral = !!(op->flags & MIX_EXT_FLAG_NO_MODSEQ);

	if (mix_builder_ext_find(b, name, op->size, &id)) {
		const struct mix_ext *e = &b->layout->exts[id];
		int was = mix_ext_neutral(b, id);
		t->ext_id = id;
		if (id >= MIX_EXT_FIRST && e->rec_size == op->rec_size &&
		    (e->rec_size == 0 || e->rec_align == op->rec_align) &&
		    e->hdr_size == op->hdr_size && was == neutral)
			return 0;
		return mix_err(MIX_EINVAL, "extension %s exists with record "
			       "size %u align %u header %u%s", e->name,
			       e->rec_size, e->rec_align, e->hdr_size,
			       was ? ", modseq-neutral" : "");
	}
	if ((ret = mix_builder_ext_add(b, name, op->size, 0, op->hdr_size,
				       op->rec_size, op->rec_align, &id)) < 0)
		return ret;
	memset(&in, 0, sizeof(in));
	in.ext_id = id;
	in.hdr_size = op->hdr_size;
	in.record_size = op->rec_size;
	in.record_align = op->rec_align;
	in.name_size = (uint16_t)op->size;
	t->ext_id = id;
	ret = mix_logenc_ext_intro(buf, &in, name);
	/* in the same transaction: no record of the extension can come
	 * before it is known to be neutral */
	if (ret == 0 && neutral)
		ret = mix_ext_neutral_mark(b, id, buf);
	return ret;
}

/* A precondition (mix_txn_ext_hdr_require): checked against the state
 * the earlier transactions of the batch left; logs nothing. */
static int apply_require(const struct mix_builder *b, const struct mix_txn *t,
			 const struct txn_op *op)
{
	const struct mix_exthdrs *x = b->exthdrs;

	if (op->ext_id >= x->count || op->offset > x->e[op->ext_id].size ||
	    op->size > x->e[op->ext_id].size - op->offset)
		return mix_err(MIX_EINVAL, "precondition on extension %u "
			       "header at %u+%u outside its data", op->ext_id,
			       op->offset, op->size);
	if (memcmp(x->e[op->ext_id].data + op->offset, txn_ptr(t, op->data),
		   op->size) != 0)
		return mix_err(-EAGAIN, "precondition failed: extension %u "
			       "header bytes %u..%u changed since the "
			       "transaction was built", op->ext_id, op->offset,
			       op->offset + op->size - 1);
	return 0;
}

static int apply_op(struct mix_builder *b, struct mix_txn *t, uint32_t *i,
		    uint64_t modseq, struct mix_buf *buf)
{
	const struct txn_op *op = &t->ops[*i];

	switch (op->type) {
	case TXN_APPEND:
		return apply_appends(b, t, op, modseq, buf);
	case TXN_APPEND_EXT:
		return apply_ext_set(b, t, op, t->append_uids[op->uid], modseq,
				     buf);
	case TXN_FLAGS:
		return apply_flags(b, t, op, modseq, buf);
	case TXN_KEYWORDS:
		return apply_keywords(b, t, op, modseq, buf);
	case TXN_EXPUNGE:
		return apply_expunge(b, t, op, modseq, buf);
	case TXN_EXT_SET:
		return apply_ext_set(b, t, op, op->uid, modseq, buf);
	case TXN_EXT_HDR: {
		int changed, ret = mix_builder_ext_hdr(b, op->ext_id, op->offset,
						       txn_ptr(t, op->data),
						       op->size, &changed);
		if (ret == 0 && changed)
			ret = mix_logenc_ext_hdr(buf, op->ext_id, op->offset,
						 txn_ptr(t, op->data),
						 op->size);
		return ret;
	}
	case TXN_EXT_HDR_REQUIRE:
		return apply_require(b, t, op);
	case TXN_HDR:
		return apply_hdr(b, op, buf);
	case TXN_EXT_REGISTER:
		return apply_register(b, t, op, buf);
	case TXN_EXPUNGE_DELETED:
		return apply_expunge_deleted(b, t, op, modseq, buf);
	case TXN_RECENT_CLAIM:
		return apply_recent_claim(b, t, buf);
	}
	return mix_err(MIX_EINVAL, "unknown operation %u", op->type);
}

/* Ranges gathered from several operations (MODIFIED sets, changed or
 * expunged UIDs), as one sorted, merged set; returns the new count. */
static uint32_t ranges_normalize(struct mix_log_uid_range *r, uint32_t count)
{
	return mix_log_ranges_normalize(r, count);
}

/* Remove from l (normalized) every UID in x (normalized), in place: a
 * message changed, then expunged by the same transaction is reported as
 * expunged only.  At most one extra range per range of x. */
static int rlist_subtract(struct txn_rlist *l, const struct txn_rlist *x)
{
	struct mix_log_uid_range *out;
	uint32_t i, j = 0, k, n = 0, cap;

	if (l->count == 0 || x->count == 0)
		return 0;
	cap = l->count + x->count;
	if (cap < l->count || !(out = malloc((size_t)cap * sizeof(*out))))
		return MIX_ENOMEM();
	for (i = 0; i < l->count; i++) {
		uint32_t f = l->r[i].first, e = l->r[i].last;
		int left = 1;    /* [f, e] still has UIDs to keep */
		while (j < x->count && x->r[j].last < f)
			j++;
		/* x->r[j..] may cut [f, e]; j stays for the next range */
		for (k = j; left && k < x->count && x->r[k].first <= e; k++) {
			if (x->r[k].first > f) {
				out[n].first = f;
				out[n++].last = x->r[k].first - 1;
			}
			if (x->r[k].last >= e)
				left = 0;
			else
				f = x->r[k].last + 1;
		}
		if (left) {
			out[n].first = f;
			out[n++].last = e;
		}
	}
	free(l->r);
	l->r = out;
	l->count = n;
	l->cap = cap;
	return 0;
}

/* Sort the result lists and point t->result at them. */
static int results_finish(struct mix_txn *t)
{
	if (t->modified_count) {
		t->modified_count = ranges_normalize(t->modified,
						     t->modified_count);
		t->result.modified = (struct mix_uid_range *)t->modified;
		t->result.modified_count = t->modified_count;
	}
	t->changed.count = ranges_normalize(t->changed.r, t->changed.count);
	t->expunged.count = ranges_normalize(t->expunged.r,
					     t->expunged.count);
	if (rlist_subtract(&t->changed, &t->expunged) < 0)
		return MIX_ENOMEM();
	if (t->changed.count) {
		t->result.changed = (struct mix_uid_range *)t->changed.r;
		t->result.changed_count = t->changed.count;
	}
	if (t->expunged.count) {
		t->result.expunged = (struct mix_uid_range *)t->expunged.r;
		t->result.expunged_count = t->expunged.count;
	}
	return 0;
}

/* EXT_SET, APPEND_EXT or EXT_HDR of a modseq-neutral extension: its
 * records (EXT_REC, EXT_HDR) raise nothing.  Neutrality is fixed at
 * registration, so it is the same before and after the operation. */
static int ext_op_neutral(const struct mix_builder *b, const struct txn_op *op)
{
	return (op->type == TXN_EXT_SET || op->type == TXN_APPEND_EXT ||
		op->type == TXN_EXT_HDR) && mix_ext_neutral(b, op->ext_id);
}

int mix_txn_apply(struct mix_builder *b, struct mix_txn *t, uint64_t modseq,
		  struct mix_buf *buf)
{
	size_t start, body, before;
	uint32_t i;
	int ret, raise = 0;

	memset(&t->result, 0, sizeof(t->result));
	t->modified_count = 0;
	t->changed.count = 0;
	t->expunged.count = 0;
	t->appkw_pos = 0;
	if (t->late_exts && !t->append_uids &&
	    !(t->append_uids = calloc(t->appends, sizeof(uint32_t))))
		return MIX_ENOMEM();
	if ((ret = mix_logenc_begin(buf, &start)) < 0)
		return ret;
	body = buf->len;
	for (i = 0; i < t->nops; i++) {
		/* a logged record other than FLAGS raises highest_modseq
		 * (FLAGS records raise it themselves, when visible), except
		 * the data of a modseq-neutral extension (replay.c decides
		 * the same from the records: mix_ext_op_neutral) */
		int flags_op = t->ops[i].type == TXN_FLAGS ||
			       ext_op_neutral(b, &t->ops[i]);
		before = buf->len;
		ret = apply_op(b, t, &i, modseq, buf);
		if (ret < 0) {
			buf->len = start;
			return ret;
		}
		if (buf->len != before && !flags_op)
			raise = 1;
	}
	if ((ret = results_finish(t)) < 0) {
		buf->len = start;
		return ret;
	}
	if (buf->len == body) {
		buf->len = start;
		t->result.no_changes = 1;
		t->result.modseq = b->hdr.highest_modseq;
		return 0;
	}
	mix_logenc_end(buf, start);
	if (raise)
		mix_builder_touch(b, modseq);
	/* modseq, or for a DIRTY-only transaction the unchanged highest */
	t->result.modseq = b->hdr.highest_modseq;
	return 0;
}
