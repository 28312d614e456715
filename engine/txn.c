/*
 * Transactions, committer side: collecting operations and validating
 * caller input (docs/api.md "Transactions").  Committing them, the
 * hand-over to the writer role and the wait, is commit.c.
 *
 * A transaction is private to its thread until commit.  Everything a
 * caller passes is checked here, so the writer only sees well-formed
 * operations: flags within MIX_FLAGS_ALL, keyword names that are IMAP
 * atoms, UID ranges sorted and merged, extension ids and sizes that match
 * the index.  Extensions never disappear, so a check against the snapshot
 * of the moment stays true at apply time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "index.h"
#include "ranges.h"
#include "txn.h"

MIX_API int mix_txn_begin(struct mix_index *idx, struct mix_txn **txn_r)
{
	struct mix_txn *t;
	*txn_r = NULL;
	if (idx->flags & MIX_OPEN_READONLY)
		return mix_err(MIX_EREADONLY, "%s: opened read-only", idx->dir);
	/* ORDER(poison) */
	if (__atomic_load_n(&idx->poisoned, __ATOMIC_RELAXED))
		return mix_err(MIX_EPANIC, "%s: an earlier write failed; "
			       "reopen the index", idx->dir);
	t = calloc(1, sizeof(*t));
	if (!t)
		return MIX_ENOMEM();
	t->index = idx;
	*txn_r = t;
	return 0;
}

void mix_txn_free(struct mix_txn *t)
{
	if (!t)
		return;
	free(t->ops);
	free(t->append_uids);
	free(t->app_flags);
	free(t->appkw);
	for (uint32_t i = 0; i < t->ncols; i++) {
		free(t->cols[i].data);
		free(t->cols[i].set);
	}
	free(t->cols);
	free(t->modified);
	free(t->changed.r);
	free(t->expunged.r);
	mix_buf_free(&t->arena);
	free(t);
}

MIX_API void mix_txn_abort(struct mix_txn **txn)
{
	mix_txn_free(*txn);
	*txn = NULL;
}

static struct txn_op *op_add(struct mix_txn *t, uint8_t type)
{
	struct txn_op *op;
	if (t->nops == t->ops_cap) {
		uint32_t ncap = t->ops_cap ? t->ops_cap * 2 : 8;
		struct txn_op *n = realloc(t->ops, ncap * sizeof(*n));
		if (!n)
			return NULL;
		t->ops = n;
		t->ops_cap = ncap;
	}
	op = &t->ops[t->nops++];
	memset(op, 0, sizeof(*op));
	op->type = type;
	return op;
}

/* Copy n bytes into the arena (8-aligned); returns the offset, or
 * MIX_ELIMIT / -ENOMEM as a negative int64. */
static int64_t arena_put(struct mix_txn *t, const void *p, size_t n)
{
	static const uint8_t zero[8];
	size_t pad = (8 - t->arena.len % 8) % 8, off;
	if (t->arena.len + pad + n > UINT32_MAX)
		return mix_err(MIX_ELIMIT, "transaction: its operations' data "
			       "would pass 4 GiB (%zu more bytes)", n);
	if (mix_buf_append(&t->arena, zero, pad) < 0 ||
	    mix_buf_reserve(&t->arena, n) < 0)
		return MIX_ENOMEM();
	off = t->arena.len;
	if (n)
		memcpy(t->arena.data + off, p, n);
	t->arena.len += n;
	return (int64_t)off;
}

/* Validate, sort and merge ranges into the arena. */
static int put_ranges(struct mix_txn *t, struct txn_op *op,
		      const struct mix_uid_range *ranges, size_t count)
{
	struct mix_uid_range *r;
	size_t i, n = 0;
	int64_t off;

	if (count > (UINT32_MAX / sizeof(*r)) || (count && !ranges))
		return mix_err(MIX_EINVAL, "bad UID range list (%zu)", count);
	for (i = 0; i < count; i++)
		if (ranges[i].first == 0 || ranges[i].first > ranges[i].last)
			return mix_err(MIX_EINVAL, "bad UID range %u:%u",
				       ranges[i].first, ranges[i].last);
	off = arena_put(t, ranges, count * sizeof(*r));
	if (off < 0)
		return (int)off;
	r = txn_ptr(t, (uint32_t)off);
	n = mix_uid_ranges_normalize(r, (uint32_t)count);
	op->ranges = (uint32_t)off;
	op->nranges = (uint32_t)n;
	return 0;
}

/* IMAP atom (RFC 3501 flag-keyword): printable ASCII without atom-specials
 * and without '\\' (system flags are not keywords). */
static int keyword_valid(const char *k)
{
	size_t len = strlen(k), i;
	if (len == 0 || len > MIX_MAX_KEYWORD_LEN)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
			return 0;
	}
	return 1;
}

/* Keyword names go into the arena one by one; *kw_r is the offset of a
 * u32 array of their offsets, *nkw_r their number. */
static int put_keywords(struct mix_txn *t, const char *const *kw,
			uint32_t *kw_r, uint32_t *nkw_r)
{
	uint32_t offs[64], *big = NULL, *o = offs;
	size_t i, n;
	int64_t off;
	int ret = 0;

	for (n = 0; kw && kw[n]; n++) {
		if (!keyword_valid(kw[n]))
			return mix_err(MIX_EINVAL, "invalid keyword name '%.64s'",
				       kw[n]);
		if (n >= MIX_MAX_KEYWORDS)
			return mix_err(MIX_ELIMIT, "more than %u keywords",
				       MIX_MAX_KEYWORDS);
	}
	if (n > 64 && !(o = big = malloc(n * sizeof(*o))))
		return MIX_ENOMEM();
	for (i = 0; i < n && ret == 0; i++) {
		off = arena_put(t, kw[i], strlen(kw[i]) + 1);
		if (off < 0)
			ret = (int)off;
		else
			o[i] = (uint32_t)off;
	}
	if (ret == 0) {
		off = arena_put(t, o, n * sizeof(*o));
		if (off < 0)
			ret = (int)off;
		else {
			*kw_r = (uint32_t)off;
			*nkw_r = (uint32_t)n;
		}
	}
	free(big);
	return ret;
}

/* Room for append number a in t->app_flags. */
static int app_reserve(struct mix_txn *t, uint32_t a)
{
	uint64_t cap;
	uint8_t *n;
	if (a < t->app_cap)
		return 0;
	cap = t->app_cap ? t->app_cap : 64;
	while (cap <= a)
		cap *= 2;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	if (!(n = realloc(t->app_flags, (size_t)cap)))
		return MIX_ENOMEM();
	t->app_flags = n;
	t->app_cap = (uint32_t)cap;
	return 0;
}

static int appkw_add(struct mix_txn *t, uint32_t a, const char *const *kw)
{
	struct txn_appkw *k;
	int ret;
	if (t->nappkw == t->appkw_cap) {
		uint32_t cap = t->appkw_cap ? t->appkw_cap * 2 : 8;
		void *n = realloc(t->appkw, cap * sizeof(*t->appkw));
		if (!n)
			return MIX_ENOMEM();
		t->appkw = n;
		t->appkw_cap = cap;
	}
	k = &t->appkw[t->nappkw];
	k->append = a;
	if ((ret = put_keywords(t, kw, &k->kw, &k->nkw)) < 0)
		return ret;
	if (k->nkw)
		t->nappkw++;
	return 0;
}

MIX_API int mix_txn_append(struct mix_txn *t, uint8_t flags,
			   const char *const *keywords, uint32_t *append_r)
{
	struct txn_op *last = t->nops ? &t->ops[t->nops - 1] : NULL;
	uint32_t a = t->appends;
	int ret;
	if (flags & ~MIX_FLAGS_ALL)
		return mix_err(MIX_EINVAL, "invalid flags 0x%x", flags);
	if (a == UINT32_MAX)
		return mix_err(MIX_ELIMIT, "too many appends in one "
			       "transaction");
	if (app_reserve(t, a) < 0)
		return MIX_ENOMEM();
	if (keywords && keywords[0] && (ret = appkw_add(t, a, keywords)) < 0)
		return ret;
	/* consecutive appends are one run (one operation) */
	if (last && last->type == TXN_APPEND) {
		last->size++;
	} else {
		if (!(last = op_add(t, TXN_APPEND))) {
			if (t->nappkw && t->appkw[t->nappkw - 1].append == a)
				t->nappkw--;
			return MIX_ENOMEM();
		}
		last->uid = a;
		last->size = 1;
	}
	t->app_flags[a] = flags;
	if (append_r)
		*append_r = a;
	t->appends++;
	return 0;
}

/* The extension ext_id as the current snapshot has it. */
static int ext_check(struct mix_txn *t, uint32_t ext_id, size_t rec_size,
		     int want_rec, uint32_t hdr_off)
{
	const struct mix_snap *s;
	int ret = 0;
	mix_read_lock();
	s = mix_index_snap(t->index);
	if (ext_id < MIX_EXT_FIRST || ext_id >= s->layout->ext_count)
		ret = mix_err(MIX_EINVAL, "unknown extension id %u", ext_id);
	else if (strncmp(s->layout->exts[ext_id].name, "mix.", 4) == 0 &&
		 !t->engine)
		/* the engine's own (mix.neutral: which are modseq-neutral) */
		ret = mix_err(MIX_EINVAL, "extension %s belongs to the engine",
			      s->layout->exts[ext_id].name);
	else if (want_rec && s->layout->exts[ext_id].rec_size != rec_size)
		ret = mix_err(MIX_EINVAL, "extension %s: record size is %u, "
			      "not %zu", s->layout->exts[ext_id].name,
			      s->layout->exts[ext_id].rec_size, rec_size);
	else if (!want_rec && (hdr_off > s->layout->exts[ext_id].hdr_size ||
			       rec_size > s->layout->exts[ext_id].hdr_size -
						  hdr_off))
		ret = mix_err(MIX_EINVAL, "extension %s: header write %u+%zu "
			      "outside its %u bytes",
			      s->layout->exts[ext_id].name, hdr_off, rec_size,
			      s->layout->exts[ext_id].hdr_size);
	mix_read_unlock();
	return ret;
}

static int put_data_op(struct mix_txn *t, uint8_t type, uint32_t ext_id,
		       uint32_t uid, uint32_t offset, const void *data,
		       size_t size)
{
	struct txn_op *op;
	int64_t off;
	if (!data && size)
		return mix_err(MIX_EINVAL, "NULL data");
	off = arena_put(t, data, size);
	if (off < 0)
		return (int)off;
	if (!(op = op_add(t, type)))
		return MIX_ENOMEM();
	op->ext_id = ext_id;
	op->uid = uid;
	op->offset = offset;
	op->data = (uint32_t)off;
	op->size = (uint32_t)size;
	return 0;
}

/* The column of extension ext_id, created (after checking the
 * extension against the snapshot once) at first use. */
static int col_get(struct mix_txn *t, uint32_t ext_id, size_t size,
		   struct txn_col **col_r)
{
	struct txn_col *c;
	uint32_t i;
	int ret;
	for (i = 0; i < t->ncols; i++) {
		if (t->cols[i].ext_id != ext_id)
			continue;
		if (t->cols[i].size != size)
			return mix_err(MIX_EINVAL, "extension %u: record size "
				       "is %u, not %zu", ext_id,
				       t->cols[i].size, size);
		*col_r = &t->cols[i];
		return 0;
	}
	if ((ret = ext_check(t, ext_id, size, 1, 0)) < 0)
		return ret;
	if (size == 0)
		return mix_err(MIX_EINVAL, "extension %u has no record data",
			       ext_id);
	if (!(c = realloc(t->cols, (t->ncols + 1) * sizeof(*c))))
		return MIX_ENOMEM();
	t->cols = c;
	c = &t->cols[t->ncols++];
	memset(c, 0, sizeof(*c));
	c->ext_id = ext_id;
	c->size = (uint32_t)size;
	*col_r = c;
	return 0;
}

/* Room for append number a in column c. */
static int col_reserve(struct txn_col *c, uint32_t a, uint32_t appends)
{
	uint32_t cap;
	uint8_t *d, *s;
	if (a < c->cap)
		return 0;
	cap = c->cap ? c->cap : 64;
	while (cap <= a || cap < appends)
		cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
	if ((uint64_t)cap * c->size > SIZE_MAX / 2)
		return MIX_ENOMEM();
	if (!(d = realloc(c->data, (size_t)cap * c->size)))
		return MIX_ENOMEM();
	c->data = d;
	if (!(s = realloc(c->set, cap)))
		return MIX_ENOMEM();
	memset(s + c->cap, 0, cap - c->cap);
	c->set = s;
	c->cap = cap;
	return 0;
}

MIX_API int mix_txn_append_ext(struct mix_txn *t, uint32_t append,
			       uint32_t ext_id, const void *data, size_t size)
{
	const struct txn_op *last;
	struct txn_col *c = NULL;
	int ret;
	if (append >= t->appends)
		return mix_err(MIX_EINVAL, "no append number %u in this "
			       "transaction", append);
	if (!data)
		return mix_err(MIX_EINVAL, "NULL data");
	last = &t->ops[t->nops - 1]; /* an append exists: nops >= 1 */
	/* after another operation: an operation of its own, in order */
	if (last->type != TXN_APPEND || append < last->uid) {
		if ((ret = ext_check(t, ext_id, size, 1, 0)) < 0)
			return ret;
		if (size == 0)
			return mix_err(MIX_EINVAL, "extension %u has no record "
				       "data", ext_id);
		if ((ret = put_data_op(t, TXN_APPEND_EXT, ext_id, append, 0,
				       data, size)) == 0)
			t->late_exts++;
		return ret;
	}
	if ((ret = col_get(t, ext_id, size, &c)) < 0)
		return ret;
	if (col_reserve(c, append, t->appends) < 0)
		return MIX_ENOMEM();
	if (c->size == 8) /* a date, a size, a UID: copied inline */
		memcpy(c->data + (size_t)append * 8, data, 8);
	else
		memcpy(c->data + (size_t)append * c->size, data, c->size);
	c->set[append] = 1;
	return 0;
}

MIX_API int mix_txn_flags(struct mix_txn *t, const struct mix_uid_range *ranges,
			  size_t count, enum mix_modify modify, uint8_t flags)
{
	struct txn_op *op;
	int ret;
	if (flags & ~MIX_FLAGS_ALL)
		return mix_err(MIX_EINVAL, "invalid flags 0x%x", flags);
	if (modify > MIX_MODIFY_REPLACE)
		return mix_err(MIX_EINVAL, "invalid modify type %d", modify);
	if (!(op = op_add(t, TXN_FLAGS)))
		return MIX_ENOMEM();
	op->modify = (uint8_t)modify;
	op->flags = flags;
	if ((ret = put_ranges(t, op, ranges, count)) < 0)
		t->nops--;
	return ret;
}

MIX_API int mix_txn_flags_unchangedsince(struct mix_txn *t,
					 const struct mix_uid_range *ranges,
					 size_t count, enum mix_modify modify,
					 uint8_t flags, uint64_t unchangedsince)
{
	int ret = mix_txn_flags(t, ranges, count, modify, flags);
	if (ret == 0) {
		t->ops[t->nops - 1].cond = 1;
		t->ops[t->nops - 1].unchangedsince = unchangedsince;
	}
	return ret;
}

MIX_API int mix_txn_keywords_unchangedsince(struct mix_txn *t,
					    const struct mix_uid_range *ranges,
					    size_t count, enum mix_modify modify,
					    const char *const *keywords,
					    uint64_t unchangedsince)
{
	int ret = mix_txn_keywords(t, ranges, count, modify, keywords);
	if (ret == 0) {
		t->ops[t->nops - 1].cond = 1;
		t->ops[t->nops - 1].unchangedsince = unchangedsince;
	}
	return ret;
}

MIX_API void mix_commit_result_free(struct mix_commit_result *r)
{
	free(r->modified);
	r->modified = NULL;
	r->modified_count = 0;
	free(r->changed);
	r->changed = NULL;
	r->changed_count = 0;
	free(r->expunged);
	r->expunged = NULL;
	r->expunged_count = 0;
}

MIX_API int mix_txn_keywords(struct mix_txn *t,
			     const struct mix_uid_range *ranges, size_t count,
			     enum mix_modify modify,
			     const char *const *keywords)
{
	struct txn_op *op;
	int ret;
	if (modify > MIX_MODIFY_REPLACE)
		return mix_err(MIX_EINVAL, "invalid modify type %d", modify);
	if (!(op = op_add(t, TXN_KEYWORDS)))
		return MIX_ENOMEM();
	op->modify = (uint8_t)modify;
	if ((ret = put_ranges(t, op, ranges, count)) < 0 ||
	    (ret = put_keywords(t, keywords, &t->ops[t->nops - 1].kw,
				&t->ops[t->nops - 1].nkw)) < 0)
		t->nops--;
	return ret;
}

MIX_API int mix_txn_expunge(struct mix_txn *t,
			    const struct mix_uid_range *ranges, size_t count)
{
	struct txn_op *op;
	int ret;
	if (!(op = op_add(t, TXN_EXPUNGE)))
		return MIX_ENOMEM();
	if ((ret = put_ranges(t, op, ranges, count)) < 0)
		t->nops--;
	return ret;
}

/* IMAP EXPUNGE / UID EXPUNGE: the writer picks the messages that have
 * \Deleted when it applies the operation (txn-apply.c), so a STORE
 * -FLAGS \Deleted committed before it always wins. */
MIX_API int mix_txn_expunge_deleted(struct mix_txn *t,
				    const struct mix_uid_range *ranges,
				    size_t count)
{
	static const struct mix_uid_range all = { 1, UINT32_MAX };
	struct txn_op *op;
	int ret;
	if (!ranges && count)
		return mix_err(MIX_EINVAL, "NULL ranges with count %zu", count);
	if (!(op = op_add(t, TXN_EXPUNGE_DELETED)))
		return MIX_ENOMEM();
	if (!ranges)
		ret = put_ranges(t, op, &all, 1);
	else
		ret = put_ranges(t, op, ranges, count);
	if (ret < 0)
		t->nops--;
	else
		t->want_expunged = 1;
	return ret;
}

MIX_API void mix_txn_want_changed(struct mix_txn *t)
{
	t->want_changed = 1;
	t->want_expunged = 1;
}

MIX_API int mix_txn_claim_recent(struct mix_txn *t)
{
	return op_add(t, TXN_RECENT_CLAIM) ? 0 : -ENOMEM;
}

MIX_API int mix_txn_ext_set(struct mix_txn *t, uint32_t uid, uint32_t ext_id,
			    const void *data, size_t size)
{
	int ret;
	if (uid == 0)
		return mix_err(MIX_EINVAL, "uid 0");
	if ((ret = ext_check(t, ext_id, size, 1, 0)) < 0)
		return ret;
	return put_data_op(t, TXN_EXT_SET, ext_id, uid, 0, data, size);
}

MIX_API int mix_txn_ext_hdr_set(struct mix_txn *t, uint32_t ext_id,
				uint32_t offset, const void *data, size_t size)
{
	int ret;
	if ((ret = ext_check(t, ext_id, size, 0, offset)) < 0)
		return ret;
	return put_data_op(t, TXN_EXT_HDR, ext_id, 0, offset, data, size);
}

int mix_txn_ext_hdr_require(struct mix_txn *t, uint32_t ext_id,
			    uint32_t offset, const void *data, size_t size)
{
	int ret;
	if ((ret = ext_check(t, ext_id, size, 0, offset)) < 0)
		return ret;
	return put_data_op(t, TXN_EXT_HDR_REQUIRE, ext_id, 0, offset, data,
			   size);
}

MIX_API int mix_txn_hdr_set(struct mix_txn *t, enum mix_hdr_field field,
			    uint32_t value)
{
	struct txn_op *op;
	if (field > MIX_HDR_FIRST_RECENT_UID ||
	    (field == MIX_HDR_UID_VALIDITY && value == 0))
		return mix_err(MIX_EINVAL, "invalid header field %d or value "
			       "%u", field, value);
	if (!(op = op_add(t, TXN_HDR)))
		return MIX_ENOMEM();
	op->ext_id = field;
	op->value = value;
	return 0;
}
