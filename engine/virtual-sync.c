/*
 * Virtual mailbox sync (docs/virtual.md "Sync"): read what changed in each
 * backend since the state saved in the vmap header, and write the remap
 * to the virtual index as ONE transaction, header included.
 *
 * Phases: (1) match the definition's backends to the header's entries by
 * name (new names get new mailbox ids, names gone drop their messages);
 * (2) inside one read-side section, for each backend: skip it if
 * (uid_validity, next_uid, highest_modseq) is unchanged, else take its
 * expunges from the expunge history and examine only the records with
 * modseq above the saved one (mix_changed_iter skips unchanged chunks);
 * (3) outside the section, commit expunges, flag/keyword mirrors, appends
 * in received-date order and the new header in one transaction; (4) on
 * success apply the new virtual UIDs to the in-memory map, on failure
 * forget the map so the next sync derives it again from the index.
 *
 * Thread: the one using the struct mix_virtual.  The transaction is the
 * only writer of the virtual index, and its publish (the index's RCU
 * snapshot) is what makes the remap atomic for readers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "snapshot.h"
#include "virtual.h"

struct vadd {
	uint64_t received;
	uint32_t id, ruid;
	uint8_t flags;
	char **kws;              /* NULL-terminated, owned */
};

struct vupd {
	uint32_t vuid;
	uint8_t flags;
	char **kws;              /* NULL-terminated, owned */
};

struct kwpair {
	uint32_t idx, slot;
};

struct vsync {
	struct mix_virtual *v;
	unsigned flags;
	struct mix_virtual_sync_result *res;
	uint64_t now;
	int hdr_changed;
	const struct mix_snap *vsnap;
	uint32_t vmap_ext;
	uint32_t *xp;            /* virtual UIDs to expunge */
	uint32_t xp_count, xp_cap;
	struct vadd *adds;
	uint32_t add_count, add_cap;
	struct vupd *upds;
	uint32_t upd_count, upd_cap;
	/* the backend being examined */
	const struct mix_snap *bs;
	uint32_t recv_ext;
	int have_recv;
	struct kwpair *kw;
	uint32_t kw_count, kw_cap;
	/* a backend with messages was unavailable when the delayed-removal
	 * marks were recovered: recover them again at the next sync */
	int recover_again;
};

static int grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t c;
	void *n;

	if (need <= *cap)
		return 0;
	c = *cap ? *cap * 2 : 64;
	while (c < need)
		c *= 2;
	if ((n = realloc(*p, (size_t)c * size)) == NULL)
		return MIX_ENOMEM();
	*p = n;
	*cap = c;
	return 0;
}

static void kws_free(char **k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; k[i]; i++)
		free(k[i]);
	free(k);
}

static void vsync_free(struct vsync *c)
{
	uint32_t i;

	for (i = 0; i < c->add_count; i++)
		kws_free(c->adds[i].kws);
	for (i = 0; i < c->upd_count; i++)
		kws_free(c->upds[i].kws);
	free(c->adds);
	free(c->upds);
	free(c->xp);
	free(c->kw);
}

static int expunge_vuid(struct vsync *c, uint32_t vuid)
{
	int ret = grow((void **)&c->xp, &c->xp_cap, c->xp_count + 1,
		       sizeof(*c->xp));
	if (ret == 0) {
		c->xp[c->xp_count++] = vuid;
		c->res->expunged++;
	}
	return ret;
}

/* The virtual message of entry pos of b goes in this sync. */
static int entry_expunge(struct vsync *c, struct vbackend *b, uint32_t pos)
{
	int ret = expunge_vuid(c, b->e[pos].vuid);

	if (b->e[pos].nomatch) {
		b->e[pos].nomatch = 0;
		b->pending--;
	}
	b->e[pos].vuid = 0;
	b->compact = 1;
	return ret;
}

/* Set or clear the delayed-removal mark, keeping b->pending exact. */
static void entry_mark(struct vbackend *b, uint32_t pos, int nomatch)
{
	if (b->e[pos].nomatch == nomatch)
		return;
	b->e[pos].nomatch = (uint8_t)nomatch;
	if (nomatch)
		b->pending++;
	else
		b->pending--;
}

/* Expunge every virtual message of b and forget b's sync state. */
static int bk_reset(struct vsync *c, struct vbackend *b)
{
	uint32_t i;
	int ret;

	for (i = 0; i < b->count; i++)
		if (b->e[i].vuid != 0 && (ret = expunge_vuid(c, b->e[i].vuid)) < 0)
			return ret;
	mix_virtual_bk_clear(b);
	c->hdr_changed = 1;
	return 0;
}

/* ---- reading one backend record --------------------------------------- */

/* Pairs (backend keyword index, rule slot) whose names are equal ignoring
 * case (IMAP keywords; mix's own are case-sensitive). */
static int kwmap_build(struct vsync *c)
{
	const struct mix_vrule *r = c->v->rule;
	uint32_t n = mix_snap_keyword_count(c->bs), i, s;
	int ret;

	c->kw_count = 0;
	for (i = 0; i < n && r->keyword_count > 0; i++) {
		const char *name = mix_snap_keyword_name(c->bs, i);
		for (s = 0; s < r->keyword_count; s++) {
			if (!mix_vrule_kw_equal(name, r->keywords[s]))
				continue;
			if ((ret = grow((void **)&c->kw, &c->kw_cap,
					c->kw_count + 1, sizeof(*c->kw))) < 0)
				return ret;
			c->kw[c->kw_count].idx = i;
			c->kw[c->kw_count].slot = s;
			c->kw_count++;
		}
	}
	c->have_recv = mix_snap_ext_lookup(c->bs, c->v->received_ext,
					   &c->recv_ext);
	return 0;
}

static void rule_msg(const struct vsync *c, const struct mix_record *rec,
		     struct mix_vrule_msg *m)
{
	uint32_t i;

	memset(m, 0, sizeof(*m));
	m->uid = rec->uid;
	m->flags = rec->flags;
	m->modseq = rec->modseq;
	for (i = 0; i < c->kw_count; i++)
		if (mix_record_has_keyword(rec, c->kw[i].idx))
			m->kw_mask |= UINT64_C(1) << c->kw[i].slot;
	if (c->have_recv) {
		size_t size = 0;
		const void *d = mix_record_ext(c->bs, rec, c->recv_ext, &size);
		if (d != NULL && size == sizeof(m->received))
			memcpy(&m->received, d, sizeof(m->received));
	}
}

/* The keyword names of rec in snap, copied, NULL-terminated. */
static int kws_copy(const struct mix_snap *snap, const struct mix_record *rec,
		    char ***kws_r)
{
	uint32_t i, n = 0;
	char **k;

	for (i = 0; i < rec->keywords_bits; i++)
		n += mix_record_has_keyword(rec, i);
	if ((k = calloc(n + 1, sizeof(*k))) == NULL)
		return MIX_ENOMEM();
	for (i = 0, n = 0; i < rec->keywords_bits; i++) {
		if (!mix_record_has_keyword(rec, i))
			continue;
		if ((k[n++] = strdup(mix_snap_keyword_name(snap, i))) == NULL) {
			kws_free(k);
			return MIX_ENOMEM();
		}
	}
	*kws_r = k;
	return 0;
}

/* 1 if the keyword sets of a (in sa) and b (in sb) differ by name. */
static int kws_differ(const struct mix_snap *sa, const struct mix_record *a,
		      const struct mix_snap *sb, const struct mix_record *b)
{
	uint32_t i, na = 0, nb = 0, idx;

	for (i = 0; i < a->keywords_bits; i++) {
		if (!mix_record_has_keyword(a, i))
			continue;
		na++;
		if (!mix_snap_keyword_lookup(sb, mix_snap_keyword_name(sa, i),
					     &idx) ||
		    !mix_record_has_keyword(b, idx))
			return 1;
	}
	for (i = 0; i < b->keywords_bits; i++)
		nb += mix_record_has_keyword(b, i);
	return na != nb;
}

/* Mirror rec's flags and keywords onto virtual UID vuid if they differ. */
static int mirror(struct vsync *c, const struct mix_record *rec,
		  uint32_t vuid)
{
	struct mix_record vrec;
	struct vupd *u;
	int ret;

	if (!mix_snap_lookup_uid(c->vsnap, vuid, &vrec))
		return 0;       /* cannot happen: the map equals the index */
	if ((vrec.flags & MIX_VIRTUAL_MIRROR_FLAGS) ==
	    (rec->flags & MIX_VIRTUAL_MIRROR_FLAGS) &&
	    !kws_differ(c->bs, rec, c->vsnap, &vrec))
		return 0;
	if ((ret = grow((void **)&c->upds, &c->upd_cap, c->upd_count + 1,
			sizeof(*c->upds))) < 0)
		return ret;
	u = &c->upds[c->upd_count];
	u->vuid = vuid;
	u->flags = rec->flags & MIX_VIRTUAL_MIRROR_FLAGS;
	if ((ret = kws_copy(c->bs, rec, &u->kws)) < 0)
		return ret;
	c->upd_count++;
	c->res->updated++;
	return 0;
}

static int add_match(struct vsync *c, const struct vbackend *b,
		     const struct mix_record *rec, uint64_t received)
{
	struct vadd *a;
	int ret;

	if ((ret = grow((void **)&c->adds, &c->add_cap, c->add_count + 1,
			sizeof(*c->adds))) < 0)
		return ret;
	a = &c->adds[c->add_count];
	a->received = received;
	a->id = b->id;
	a->ruid = rec->uid;
	a->flags = rec->flags & MIX_VIRTUAL_MIRROR_FLAGS;
	if ((ret = kws_copy(c->bs, rec, &a->kws)) < 0)
		return ret;
	c->add_count++;
	return 0;
}

/* One examined backend record. */
static int examine(struct vsync *c, struct vbackend *b,
		   const struct mix_record *rec)
{
	struct mix_vrule_msg m;
	uint32_t pos;
	int match;

	c->res->examined++;
	rule_msg(c, rec, &m);
	match = mix_vrule_eval(c->v->rule, &m, c->now);
	if (!mix_virtual_bk_lookup(b, rec->uid, &pos) || b->e[pos].vuid == 0)
		return match ? add_match(c, b, rec, m.received) : 0;
	if (!match && (c->flags & MIX_VIRTUAL_SYNC_EXPUNGE))
		return entry_expunge(c, b, pos);
	entry_mark(b, pos, !match);
	return mirror(c, rec, b->e[pos].vuid);
}

/* ---- one backend ------------------------------------------------------- */

static int bk_expunges_lookup(struct vsync *c, struct vbackend *b);

/* The backend's expunges since the saved modseq go at once. */
static int bk_expunges(struct vsync *c, struct vbackend *b)
{
	struct mix_uid_range *r = NULL;
	uint32_t n = 0, i, pos;
	int ret;

	ret = mix_snap_expunged_since(c->bs, b->highest_modseq, &r, &n, NULL);
	if (ret < 0)
		return ret;
	if (ret == 0)        /* the history does not reach back */
		return bk_expunges_lookup(c, b);
	for (i = 0; i < n && ret >= 0; i++) {
		mix_virtual_bk_lookup(b, r[i].first, &pos);
		for (; pos < b->count && b->e[pos].ruid <= r[i].last; pos++) {
			if (b->e[pos].vuid == 0)
				continue;
			if ((ret = entry_expunge(c, b, pos)) < 0)
				break;
		}
	}
	free(r);
	return ret < 0 ? ret : 0;
}

/* Every virtual message of b whose backend message is gone goes (a
 * lookup each: when the expunge history cannot say). */
static int bk_expunges_lookup(struct vsync *c, struct vbackend *b)
{
	uint32_t i;
	int ret;

	for (i = 0; i < b->count; i++) {
		if (b->e[i].vuid == 0 ||
		    mix_snap_lookup_uid(c->bs, b->e[i].ruid, NULL))
			continue;
		if ((ret = entry_expunge(c, b, i)) < 0)
			return ret;
	}
	return 0;
}

static int bk_examine(struct vsync *c, struct vbackend *b, int full)
{
	struct mix_record rec;
	int ret = 0;

	if ((ret = kwmap_build(c)) < 0)
		return ret;
	if (full) {
		struct mix_iter it;
		mix_iter_init(&it, c->bs, 1);
		while (ret == 0 && mix_iter_next(&it, &rec))
			ret = examine(c, b, &rec);
	} else {
		struct mix_changed_iter it;
		mix_changed_iter_init(&it, c->bs, b->highest_modseq);
		while (ret == 0 && mix_changed_iter_next(&it, NULL, &rec))
			ret = examine(c, b, &rec);
	}
	return ret;
}

static int bk_sync(struct vsync *c, struct vbackend *b)
{
	uint32_t uv, nu;
	uint64_t hms;
	uint8_t guid[16];
	int synced, ret, lost = 0;

	if (b->index == NULL) {
		c->res->backends_unavailable++;
		mix_virtual_warn(c->v, "virtual %s: backend '%s' is not open; "
				 "its messages are kept as they were",
				 c->v->dir, b->name);
		return 0;
	}
	c->bs = mix_index_snap(b->index);
	uv = mix_snap_uid_validity(c->bs);
	nu = mix_snap_next_uid(c->bs);
	hms = mix_snap_highest_modseq(c->bs);
	mix_virtual_snap_guid(c->bs, guid);
	synced = b->uid_validity != 0 || b->next_uid != 0 ||
		 b->highest_modseq != 0;
	if (synced && (uv != b->uid_validity || memcmp(guid, b->guid, 16) ||
		       nu < b->next_uid)) {
		if ((ret = bk_reset(c, b)) < 0)
			return ret;
		synced = 0;
	}
	/* The backend may have lost writes the saved state had seen (docs/
	 * virtual.md "Backends that lost writes").  A power cut's loss needs
	 * nothing here: below the backend's lost point (format.md §2.9)
	 * mix_changed_iter and mix_snap_expunged_since answer as from 0, so
	 * the ordinary pass below examines every record and looks every
	 * message up.  What the lost point cannot say: highest_modseq went
	 * down with next_uid not (a state restored from elsewhere), where
	 * the saved modseq is above everything; then a full pass, which
	 * keeps the survivors' virtual UIDs. */
	if (synced && hms < b->highest_modseq)
		lost = 1;
	if (synced && nu == b->next_uid && hms == b->highest_modseq &&
	    !c->v->rule->time_relative) {
		c->res->backends_skipped++;
		return 0;
	}
	if (lost) {
		/* a full pass: every virtual message looked up, every
		 * record examined; virtual UIDs of survivors stay */
		mix_virtual_warn(c->v, "virtual %s: backend '%s' may have lost "
				 "writes since the last sync (highest_modseq "
				 "%llu -> %llu): checking all its messages",
				 c->v->dir, b->name,
				 (unsigned long long)b->highest_modseq,
				 (unsigned long long)hms);
		if ((ret = bk_expunges_lookup(c, b)) < 0)
			return ret;
	} else if (!synced) {
		c->res->backends_rebuilt++;
	} else if ((ret = bk_expunges(c, b)) < 0) {
		return ret;
	}
	if ((ret = bk_examine(c, b, !synced || lost ||
			      c->v->rule->time_relative)) < 0)
		return ret;
	b->uid_validity = uv;
	b->next_uid = nu;
	b->highest_modseq = hms;
	memcpy(b->guid, guid, 16);
	c->hdr_changed = 1;
	return 0;
}

/* After a load: which messages already in the virtual mailbox no longer
 * match (the delayed-removal marks are not stored). */
static int bk_recover(struct vsync *c, struct vbackend *b)
{
	struct mix_record rec;
	struct mix_vrule_msg m;
	uint8_t guid[16];
	uint32_t i;
	int ret;

	if (b->index == NULL) {
		/* its marks cannot be known now; without them a message of
		 * it that stopped matching before the open would stay after
		 * every sync with expunges until it changes again */
		if (b->count > 0)
			c->recover_again = 1;
		return 0;
	}
	c->bs = mix_index_snap(b->index);
	mix_virtual_snap_guid(c->bs, guid);
	if (mix_snap_uid_validity(c->bs) != b->uid_validity ||
	    memcmp(guid, b->guid, 16) != 0)
		return 0;        /* bk_sync rebuilds it */
	if ((ret = kwmap_build(c)) < 0)
		return ret;
	for (i = 0; i < b->count; i++) {
		if (!mix_snap_lookup_uid(c->bs, b->e[i].ruid, &rec))
			continue;
		c->res->loaded++;
		rule_msg(c, &rec, &m);
		entry_mark(b, i, !mix_vrule_eval(c->v->rule, &m, c->now));
	}
	return 0;
}

/* ---- phases ------------------------------------------------------------ */

/* Phase 1: the definition's names against the header's entries. */
static int match_definition(struct vsync *c)
{
	struct mix_virtual *v = c->v;
	uint32_t i, j;
	int ret;

	for (i = 0; i < v->bk_count; i++)
		v->bk[i].in_def = 0;
	for (j = 0; j < v->def_count; j++) {
		struct vbackend *b = NULL;
		for (i = 0; i < v->bk_count && b == NULL; i++)
			if (strcmp(v->bk[i].name, v->def[j].name) == 0)
				b = &v->bk[i];
		if (b == NULL) {
			if (v->highest_mailbox_id == UINT32_MAX)
				return mix_err(MIX_ELIMIT, "virtual %s: mailbox "
					       "ids exhausted", v->dir);
			b = mix_virtual_bk_add(v, ++v->highest_mailbox_id,
					       v->def[j].name,
					       strlen(v->def[j].name));
			if (b == NULL)
				return MIX_ENOMEM();
			c->hdr_changed = 1;
		}
		b->in_def = 1;
		b->index = v->def[j].index;
	}
	for (i = v->bk_count; i-- > 0;) {
		if (v->bk[i].in_def)
			continue;
		if ((ret = bk_reset(c, &v->bk[i])) < 0)
			return ret;
		mix_virtual_bk_remove(v, i);
		c->res->backends_dropped++;
	}
	return 0;
}

/* Every message of the virtual index goes (a rebuild). */
static int expunge_all(struct vsync *c)
{
	struct mix_iter it;
	struct mix_record rec;
	int ret = 0;

	mix_iter_init(&it, c->vsnap, 1);
	while (ret == 0 && mix_iter_next(&it, &rec))
		ret = expunge_vuid(c, rec.uid);
	return ret;
}

/* Phase 2, inside one read-side section. */
static int collect(struct vsync *c, int rebuild, int recover)
{
	struct mix_virtual *v = c->v;
	uint32_t i, j;
	int ret = 0;

	mix_read_lock();
	c->vsnap = mix_index_snap(v->index);
	if (!mix_snap_ext_lookup(c->vsnap, MIX_VIRTUAL_EXT, &c->vmap_ext))
		ret = mix_err(MIX_EINVAL, "virtual %s: no vmap", v->dir);
	if (ret == 0 && rebuild)
		ret = expunge_all(c);
	for (i = 0; ret == 0 && recover && i < v->bk_count; i++)
		ret = bk_recover(c, &v->bk[i]);
	for (i = 0; ret == 0 && i < v->bk_count; i++)
		ret = bk_sync(c, &v->bk[i]);
	/* delayed removals: only backends that have any are scanned */
	for (i = 0; ret == 0 && i < v->bk_count; i++) {
		struct vbackend *b = &v->bk[i];
		if (!(c->flags & MIX_VIRTUAL_SYNC_EXPUNGE)) {
			c->res->pending_removal += b->pending;
			continue;
		}
		for (j = 0; j < b->count && b->pending > 0 && ret == 0; j++)
			if (b->e[j].vuid != 0 && b->e[j].nomatch)
				ret = entry_expunge(c, b, j);
	}
	mix_read_unlock();
	return ret;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Received date, then mailbox id, then real UID (docs/virtual.md). */
static int add_cmp(const void *pa, const void *pb)
{
	const struct vadd *a = pa, *b = pb;

	if (a->received != b->received)
		return a->received < b->received ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->ruid < b->ruid ? -1 : a->ruid > b->ruid;
}

static int txn_expunges(struct vsync *c, struct mix_txn *txn)
{
	struct mix_uid_range *r;
	uint32_t i, n = 0;
	int ret;

	if (c->xp_count == 0)
		return 0;
	qsort(c->xp, c->xp_count, sizeof(*c->xp), u32_cmp);
	if ((r = malloc(c->xp_count * sizeof(*r))) == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < c->xp_count; i++) {
		if (n > 0 && c->xp[i] <= r[n - 1].last + 1) {
			if (c->xp[i] > r[n - 1].last)
				r[n - 1].last = c->xp[i];
			continue;
		}
		r[n].first = r[n].last = c->xp[i];
		n++;
	}
	ret = mix_txn_expunge(txn, r, n);
	free(r);
	return ret;
}

static int txn_fill(struct vsync *c, struct mix_txn *txn)
{
	static const char *const none[] = { NULL };
	uint8_t hdr[MIX_VIRTUAL_HDR_SIZE];
	uint32_t i, used, n;
	int ret;

	if ((ret = txn_expunges(c, txn)) < 0)
		return ret;
	for (i = 0; i < c->upd_count; i++) {
		struct mix_uid_range r = { c->upds[i].vuid, c->upds[i].vuid };
		if ((ret = mix_txn_flags(txn, &r, 1, MIX_MODIFY_REPLACE,
					 c->upds[i].flags)) < 0 ||
		    (ret = mix_txn_keywords(txn, &r, 1, MIX_MODIFY_REPLACE,
					    (const char *const *)
					    (c->upds[i].kws[0] ? c->upds[i].kws
					     : (char **)none))) < 0)
			return ret;
	}
	if (c->add_count > 0)
		qsort(c->adds, c->add_count, sizeof(*c->adds), add_cmp);
	for (i = 0; i < c->add_count; i++) {
		struct vmap_rec m = { c->adds[i].id, c->adds[i].ruid };
		if ((ret = mix_txn_append(txn, c->adds[i].flags,
					  (const char *const *)c->adds[i].kws,
					  &n)) < 0 ||
		    (ret = mix_txn_append_ext(txn, n, c->vmap_ext, &m,
					      sizeof(m))) < 0)
			return ret;
	}
	c->v->change_counter++;
	if ((ret = mix_virtual_hdr_encode(c->v, hdr, &used)) < 0)
		return ret;
	return mix_txn_ext_hdr_set(txn, c->vmap_ext, 0, hdr, used);
}

/* Phase 3: one transaction; returns its first appended UID in *first_r. */
static int commit(struct vsync *c, uint32_t *first_r)
{
	struct mix_commit_result cr;
	struct mix_txn *txn;
	int ret;

	if ((ret = mix_txn_begin(c->v->index, &txn)) < 0)
		return ret;
	if ((ret = txn_fill(c, txn)) < 0) {
		mix_txn_abort(&txn);
		return ret;
	}
	memset(&cr, 0, sizeof(cr));
	if ((ret = mix_txn_commit(&txn, MIX_DURABILITY_NONE, &cr)) < 0)
		return ret;
	c->res->modseq = cr.modseq;
	*first_r = cr.first_uid;
	ret = 0;
	if (c->add_count > 0 && cr.last_uid - cr.first_uid + 1 != c->add_count)
		ret = mix_err(MIX_EINVAL, "virtual %s: %u appends got UIDs "
			      "%u..%u", c->v->dir, c->add_count, cr.first_uid,
			      cr.last_uid);
	mix_commit_result_free(&cr);
	return ret;
}

/* Phase 4: the map takes the committed state. */
static int apply(struct vsync *c, uint32_t first)
{
	struct mix_virtual *v = c->v;
	uint32_t i, j, n;
	int ret;

	for (i = 0; i < v->bk_count; i++) {
		struct vbackend *b = &v->bk[i];
		if (!b->compact)
			continue;
		for (j = 0, n = 0; j < b->count; j++)
			if (b->e[j].vuid != 0)
				b->e[n++] = b->e[j];
		b->count = n;
		b->compact = 0;
	}
	for (i = 0; i < c->add_count; i++) {
		struct vbackend *b = mix_virtual_bk_find(v, c->adds[i].id);
		if ((ret = mix_virtual_bk_push(b, c->adds[i].ruid,
					       first + i)) < 0)
			return ret;
		/* sorted already unless it went below the last real UID */
		if (b->count > 1 && b->e[b->count - 2].ruid > c->adds[i].ruid)
			b->compact = 1;
	}
	for (i = 0; i < v->bk_count; i++) {
		if (v->bk[i].compact)
			mix_virtual_bk_sort(&v->bk[i]);
		v->bk[i].compact = 0;
	}
	c->res->added = c->add_count;
	return 0;
}

MIX_API int mix_virtual_sync(struct mix_virtual *v, unsigned flags,
			     struct mix_virtual_sync_result *result_r)
{
	int ret;

	pthread_mutex_lock(&v->lock);
	ret = mix_virtual_sync_locked(v, flags, result_r);
	pthread_mutex_unlock(&v->lock);
	return ret;
}

int mix_virtual_sync_locked(struct mix_virtual *v, unsigned flags,
			    struct mix_virtual_sync_result *result_r)
{
	struct mix_virtual_sync_result res_local;
	struct vsync c;
	int rebuild = 0, recover = 0, ret;
	uint32_t first = 0;

	memset(&res_local, 0, sizeof(res_local));
	memset(&c, 0, sizeof(c));
	c.v = v;
	c.flags = flags;
	c.res = result_r ? result_r : &res_local;
	memset(c.res, 0, sizeof(*c.res));
	c.now = v->now ? v->now(v->now_ctx) : (uint64_t)time(NULL);
	if (!v->loaded) {
		if ((ret = mix_virtual_load(v)) < 0)
			return ret;
		rebuild = ret;
		recover = ret == 0;
		c.res->rebuilt = ret;
		c.hdr_changed = ret != 0;
		v->loaded = 1;
	}
	if ((ret = match_definition(&c)) < 0 ||
	    (ret = collect(&c, rebuild, recover)) < 0)
		goto fail;
	if (c.xp_count > 0 || c.upd_count > 0 || c.add_count > 0 ||
	    c.hdr_changed) {
		if ((ret = commit(&c, &first)) < 0)
			goto fail;
	}
	if ((ret = apply(&c, first)) < 0)
		goto fail;
	/* the next sync loads the map from the index again and recovers
	 * the marks of every backend then available (docs/virtual.md
	 * "Reopen") */
	if (c.recover_again)
		v->loaded = 0;
	v->synced = 1;
	vsync_free(&c);
	return 0;
fail:
	/* nothing of this sync is in the index (or, after MIX_EPANIC, maybe
	 * all of it): derive the map again next time */
	v->loaded = 0;
	vsync_free(&c);
	return ret;
}
