/*
 * Writes through a virtual mailbox (docs/virtual.md "Writes through"):
 * flags, keywords (optionally with UNCHANGEDSINCE) and expunges given on
 * virtual UIDs are split by backend and committed to each backend in a
 * transaction of its own; they come back to the virtual mailbox by the
 * next sync (the caller's or live mode's).  Appends go to the definition's
 * save target, or are refused.
 *
 * UNCHANGEDSINCE: a virtual message whose virtual modseq is above it is
 * MODIFIED at once.  The others go to their backend with UNCHANGEDSINCE =
 * the backend's highest modseq recorded in the same virtual snapshot
 * (mix_virtual_snap_backend): a backend message changed after the state
 * the virtual mailbox mirrors, a change the client cannot have seen, is
 * MODIFIED too, checked by the backend's writer atomically with its other
 * commits.  MODIFIED real UIDs are reported as virtual UIDs.
 *
 * Thread: the one using the struct mix_virtual; holds v->lock (so a live
 * sync waits), takes the virtual snapshot in a read-side section, and
 * commits outside it.  Each backend's part is atomic on its own; a store
 * over several backends is not one transaction.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "virtual.h"

struct spair {
	uint32_t ruid, vuid;
};

struct sbk {
	uint32_t id;
	struct mix_index *index;
	uint64_t recorded;       /* backend highest modseq in the snapshot */
	struct spair *p;
	uint32_t count, cap;
};

struct sctx {
	struct sbk *b;
	uint32_t nb;
	uint32_t *mod;           /* MODIFIED virtual UIDs */
	uint32_t mod_count, mod_cap;
};

static int push_u32(uint32_t **a, uint32_t *n, uint32_t *cap, uint32_t x)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 32;
		void *p = realloc(*a, c * sizeof(**a));
		if (p == NULL)
			return MIX_ENOMEM();
		*a = p;
		*cap = c;
	}
	(*a)[(*n)++] = x;
	return 0;
}

static int sbk_push(struct sbk *b, uint32_t ruid, uint32_t vuid)
{
	if (b->count == b->cap) {
		uint32_t c = b->cap ? b->cap * 2 : 32;
		void *p = realloc(b->p, c * sizeof(*b->p));
		if (p == NULL)
			return MIX_ENOMEM();
		b->p = p;
		b->cap = c;
	}
	b->p[b->count].ruid = ruid;
	b->p[b->count].vuid = vuid;
	b->count++;
	return 0;
}

static void sctx_free(struct sctx *c)
{
	uint32_t i;

	for (i = 0; i < c->nb; i++)
		free(c->b[i].p);
	free(c->b);
	free(c->mod);
}

/* The backends of v, with their recorded modseq in vs.  A backend whose
 * index now is another mailbox than the one vs's map was built from (the
 * name's mailbox deleted and created again, given by set_backends before
 * the next sync: another UIDVALIDITY or guid) is unavailable: the real
 * UIDs vs records for it name messages of the old mailbox, and the same
 * numbers in the new one are other messages the client never saw.  The
 * guid (indexid) of an open struct mix_index never changes, so a
 * re-created mailbox is caught for the whole store; a UIDVALIDITY set on
 * the same open index by another writer between this check and the
 * backend's commit is not (a transaction has no precondition on header
 * fields). */
static int sctx_init(struct sctx *c, struct mix_virtual *v,
		     const struct mix_snap *vs)
{
	struct mix_virtual_backend_state st;
	uint8_t guid[16], cur[16];
	uint32_t i;

	if ((c->b = calloc(v->bk_count + 1, sizeof(*c->b))) == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < v->bk_count; i++) {
		const struct mix_snap *bs;
		uint32_t j;
		c->b[i].id = v->bk[i].id;
		/* the current definition's index: one replaced by
		 * set_backends may be closed already */
		for (j = 0; j < v->def_count; j++)
			if (strcmp(v->def[j].name, v->bk[i].name) == 0)
				c->b[i].index = v->def[j].index;
		if (c->b[i].index == NULL)
			continue;
		if (!mix_virtual_snap_entry(vs, v->bk[i].id, &st, guid)) {
			c->b[i].index = NULL;   /* vs never synced it */
			continue;
		}
		c->b[i].recorded = st.highest_modseq;
		bs = mix_index_snap(c->b[i].index);
		mix_virtual_snap_guid(bs, cur);
		if (mix_snap_uid_validity(bs) != st.uid_validity ||
		    memcmp(cur, guid, 16) != 0)
			c->b[i].index = NULL;
	}
	c->nb = v->bk_count;
	return 0;
}

static struct sbk *sctx_bk(struct sctx *c, uint32_t id)
{
	uint32_t i;

	for (i = 0; i < c->nb; i++)
		if (c->b[i].id == id)
			return &c->b[i];
	return NULL;
}

/* Split the virtual UIDs of ranges (in vs) by backend. */
static int split(struct sctx *c, const struct mix_snap *vs, uint32_t ext,
		 const struct mix_uid_range *r, uint32_t count,
		 uint64_t unchangedsince, struct mix_virtual_store_result *res)
{
	struct mix_record rec;
	struct mix_iter it;
	uint32_t i, s1, s2;
	int ret = 0, below_lost;

	/* UNCHANGEDSINCE below the virtual index's lost point acts as
	 * UNCHANGEDSINCE 0 (docs/condstore.md "What a power cut takes
	 * back"): a virtual message may have changed since it without a
	 * higher modseq to show it, so every message is MODIFIED and
	 * nothing is stored, as a backend's own writer answers */
	below_lost = unchangedsince != 0 &&
		     unchangedsince < mix_snap_lost_modseq(vs);
	for (i = 0; i < count && ret == 0; i++) {
		if (!mix_snap_uid_range_to_seq(vs, r[i].first, r[i].last, &s1,
					       &s2))
			continue;
		mix_iter_init(&it, vs, s1);
		while (ret == 0 && mix_iter_next(&it, &rec) && rec.seq <= s2) {
			size_t size = 0;
			const void *d = mix_record_ext(vs, &rec, ext, &size);
			struct vmap_rec m;
			struct sbk *b;
			if (d == NULL || size != sizeof(m))
				continue;
			memcpy(&m, d, sizeof(m));
			if (unchangedsince != 0 &&
			    (below_lost || rec.modseq > unchangedsince)) {
				ret = push_u32(&c->mod, &c->mod_count,
					       &c->mod_cap, rec.uid);
				continue;
			}
			b = sctx_bk(c, m.mailbox_id);
			if (b == NULL || b->index == NULL) {
				res->unavailable++;
				continue;
			}
			ret = sbk_push(b, m.real_uid, rec.uid);
		}
	}
	return ret;
}

static int spair_cmp(const void *a, const void *b)
{
	const struct spair *x = a, *y = b;
	return x->ruid < y->ruid ? -1 : x->ruid > y->ruid;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorted real UIDs of b as ranges (b->p sorted). */
static struct mix_uid_range *ruid_ranges(const struct sbk *b, uint32_t *n_r)
{
	struct mix_uid_range *r = malloc(b->count * sizeof(*r));
	uint32_t i, n = 0;

	if (r == NULL)
		return NULL;
	for (i = 0; i < b->count; i++) {
		if (n > 0 && b->p[i].ruid == r[n - 1].last + 1) {
			r[n - 1].last = b->p[i].ruid;
			continue;
		}
		if (n > 0 && b->p[i].ruid == r[n - 1].last)
			continue;
		r[n].first = r[n].last = b->p[i].ruid;
		n++;
	}
	*n_r = n;
	return r;
}

static int is_expunge(enum mix_virtual_store_op op)
{
	return op == MIX_VIRTUAL_STORE_EXPUNGE ||
	       op == MIX_VIRTUAL_STORE_EXPUNGE_DELETED;
}

static int txn_op(struct mix_txn *txn, const struct mix_uid_range *r,
		  uint32_t n, const struct mix_virtual_store *st, uint64_t us)
{
	switch (st->op) {
	case MIX_VIRTUAL_STORE_FLAGS:
		return us ? mix_txn_flags_unchangedsince(txn, r, n, st->modify,
							 st->flags, us)
			  : mix_txn_flags(txn, r, n, st->modify, st->flags);
	case MIX_VIRTUAL_STORE_KEYWORDS:
		return us ? mix_txn_keywords_unchangedsince(txn, r, n,
							    st->modify,
							    st->keywords, us)
			  : mix_txn_keywords(txn, r, n, st->modify,
					     st->keywords);
	case MIX_VIRTUAL_STORE_EXPUNGE_DELETED:
		/* the backend's writer decides by \Deleted at apply time,
		 * atomically with other sessions' commits */
		return mix_txn_expunge_deleted(txn, r, n);
	default:
		return mix_txn_expunge(txn, r, n);
	}
}

/* Backend b's part in one transaction of b; MODIFIED back to vuids. */
static int bk_commit(struct sctx *c, struct sbk *b,
		     const struct mix_virtual_store *st,
		     struct mix_virtual_store_result *res)
{
	struct mix_commit_result cr;
	struct mix_uid_range *r;
	struct mix_txn *txn;
	uint32_t n, i, u;
	uint64_t us = 0;
	int ret;

	qsort(b->p, b->count, sizeof(*b->p), spair_cmp);
	if ((r = ruid_ranges(b, &n)) == NULL)
		return MIX_ENOMEM();
	if (st->unchangedsince != 0 && !is_expunge(st->op))
		us = b->recorded ? b->recorded : 1;
	if ((ret = mix_txn_begin(b->index, &txn)) == 0 &&
	    (ret = txn_op(txn, r, n, st, us)) < 0)
		mix_txn_abort(&txn);
	free(r);
	if (ret < 0)
		return ret;
	memset(&cr, 0, sizeof(cr));
	if ((ret = mix_txn_commit(&txn, MIX_DURABILITY_NONE, &cr)) < 0)
		return ret;
	res->backends++;
	for (i = 0; i < cr.modified_count && ret == 0; i++) {
		for (u = cr.modified[i].first; ret == 0; u++) {
			struct spair key = { u, 0 }, *p;
			p = bsearch(&key, b->p, b->count, sizeof(*b->p),
				    spair_cmp);
			if (p != NULL)
				ret = push_u32(&c->mod, &c->mod_count,
					       &c->mod_cap, p->vuid);
			if (u == cr.modified[i].last)
				break;
		}
	}
	mix_commit_result_free(&cr);
	return ret;
}

/* c->mod as sorted ranges in res. */
static int modified_out(struct sctx *c, struct mix_virtual_store_result *res)
{
	struct mix_uid_range *r;
	uint32_t i, n = 0;

	if (c->mod_count == 0)
		return 0;
	qsort(c->mod, c->mod_count, sizeof(*c->mod), u32_cmp);
	if ((r = malloc(c->mod_count * sizeof(*r))) == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < c->mod_count; i++) {
		if (n > 0 && c->mod[i] <= r[n - 1].last + 1) {
			if (c->mod[i] > r[n - 1].last)
				r[n - 1].last = c->mod[i];
			continue;
		}
		r[n].first = r[n].last = c->mod[i];
		n++;
	}
	res->modified = r;
	res->modified_count = n;
	return 0;
}

static int store_locked(struct mix_virtual *v,
			const struct mix_uid_range *ranges, uint32_t count,
			const struct mix_virtual_store *st,
			struct mix_virtual_store_result *res)
{
	struct sctx c;
	const struct mix_snap *vs;
	uint32_t ext, i;
	int ret = 0;

	memset(&c, 0, sizeof(c));
	mix_read_lock();
	vs = mix_index_snap(v->index);
	if (!mix_snap_ext_lookup(vs, MIX_VIRTUAL_EXT, &ext))
		ret = mix_err(MIX_EINVAL, "virtual %s: no vmap", v->dir);
	if (ret == 0)
		ret = sctx_init(&c, v, vs);
	/* UNCHANGEDSINCE is ignored for expunge (mix/virtual.h): an
	 * expunge by UID is unconditional, as a backend's own is */
	if (ret == 0)
		ret = split(&c, vs, ext, ranges, count,
			    is_expunge(st->op) ? 0 : st->unchangedsince, res);
	mix_read_unlock();
	for (i = 0; ret == 0 && i < c.nb; i++)
		if (c.b[i].count > 0)
			ret = bk_commit(&c, &c.b[i], st, res);
	if (ret == 0)
		ret = modified_out(&c, res);
	sctx_free(&c);
	return ret;
}

MIX_API int mix_virtual_store(struct mix_virtual *v,
			      const struct mix_uid_range *ranges,
			      uint32_t count,
			      const struct mix_virtual_store *st,
			      struct mix_virtual_store_result *res)
{
	int ret;

	memset(res, 0, sizeof(*res));
	if (st->op != MIX_VIRTUAL_STORE_FLAGS &&
	    st->op != MIX_VIRTUAL_STORE_KEYWORDS &&
	    !is_expunge(st->op))
		return mix_err(MIX_EINVAL, "virtual %s: store op %d", v->dir,
			       st->op);
	pthread_mutex_lock(&v->lock);
	/* not v->loaded: a successful sync can leave the map to be loaded
	 * again (a backend unavailable at reopen); the store reads only
	 * the snapshot's map and header */
	if (!v->synced)
		ret = mix_err(MIX_EINVAL, "virtual %s: store before a "
			      "successful sync", v->dir);
	else
		ret = store_locked(v, ranges, count, st, res);
	pthread_mutex_unlock(&v->lock);
	if (ret < 0)
		mix_virtual_store_result_free(res);
	return ret;
}

MIX_API void mix_virtual_store_result_free(struct mix_virtual_store_result *r)
{
	free(r->modified);
	r->modified = NULL;
	r->modified_count = 0;
}

MIX_API int mix_virtual_save_target(struct mix_virtual *v,
				    struct mix_index **index_r)
{
	uint32_t i;
	int ret;

	*index_r = NULL;
	pthread_mutex_lock(&v->lock);
	if (v->save_target == NULL) {
		ret = mix_err(MIX_EINVAL, "virtual %s: cannot append to a "
			      "virtual mailbox without a save target "
			      "(def.save_target)", v->dir);
		goto out;
	}
	for (i = 0; i < v->def_count; i++)
		if (strcmp(v->def[i].name, v->save_target) == 0)
			break;
	if (i == v->def_count || v->def[i].index == NULL) {
		ret = mix_err(MIX_EINVAL, "virtual %s: save target '%s' is %s",
			      v->dir, v->save_target, i == v->def_count ?
			      "not one of the backends" : "not open");
		goto out;
	}
	*index_r = v->def[i].index;
	ret = 0;
out:
	pthread_mutex_unlock(&v->lock);
	return ret;
}
