/*
 * Mailbox list versions: the immutable derived state that readers of a
 * list index walk without locks (docs/mailbox-list.md "Concurrency").
 *
 * A version has two linear-probing hash tables of entry pointers — by
 * (parent id, last component) and by id — each cut in pages of 512
 * slots behind a directory, and per entry an immutable children array
 * sorted by component bytes (the top level's is in the version).  The
 * writer side (one thread at a time, under the list's wlock) builds
 * version n+1 from n by copying the two directories and copying on write
 * the pages, entries and children arrays it changes: a create copies
 * about four 4 KiB pages, a rename of a subtree changes one entry (the
 * children refer to it by id), whatever the list size.
 *
 * Invariants: an object whose gen is below the version being built is
 * never written; readers see a version only after MIX_RCU_PUBLISH of it
 * (mlist.c ORDER(mlist-publish)), so plain loads suffice inside it.
 * Lifetime rules: mlist.h.  Deletion from a table uses backward-shift,
 * so a probe ends at the first empty slot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mlist.h"

/* ---- small helpers ----------------------------------------------------- */

static int vec_push(struct mlvec *v, void *p)
{
	if (v->n == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 16;
		void **n = realloc(v->p, cap * sizeof(*n));
		if (n == NULL)
			return MIX_ENOMEM();
		v->p = n;
		v->cap = cap;
	}
	v->p[v->n++] = p;
	return 0;
}

static void vec_free_all(struct mlvec *v)
{
	uint32_t i;

	for (i = 0; i < v->n; i++)
		free(v->p[i]);
	free(v->p);
	v->p = NULL;
	v->n = v->cap = 0;
}

/* An object of nv born now. */
static int born(struct mlver *nv, void *obj)
{
	*(uint64_t *)obj = nv->gen;
	return vec_push(&nv->created, obj);
}

/* An object replaced in nv. */
static void retire(struct mlver *nv, const void *obj)
{
	if (obj != NULL)
		(void)vec_push(&nv->garbage, (void *)obj); /* leak on ENOMEM */
}

uint32_t mlist_hash(uint32_t parent, const char *name, size_t len)
{
	uint32_t h = 2166136261u ^ (parent * 0x9e3779b1u);
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (uint8_t)name[i];
		h *= 16777619u;
	}
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h;
}

static inline uint32_t id_home(uint32_t id)
{
	return id * 0x9e3779b1u;
}

static inline uint32_t npages(uint32_t bits)
{
	return 1u << (bits - MLP_BITS);
}

static inline const struct mlent *slot(struct mlpage *const *t, uint32_t i)
{
	return t[i >> MLP_BITS]->s[i & (MLP_SLOTS - 1)];
}

static inline uint16_t slot_tag(struct mlpage *const *t, uint32_t i)
{
	return t[i >> MLP_BITS]->tag[i & (MLP_SLOTS - 1)];
}

static inline uint16_t tag_of(uint32_t home)
{
	return (uint16_t)(home >> 16);
}

/* Write slot i of table t (nv's directory) with e and its tag, copying
 * the page first. */
static int slot_set(struct mlver *nv, struct mlpage **t, uint32_t i,
		    const struct mlent *e, uint16_t tag)
{
	struct mlpage *p = t[i >> MLP_BITS];

	if (p->gen != nv->gen) {
		struct mlpage *c = malloc(sizeof(*c));
		if (c == NULL || born(nv, c) < 0) {
			free(c);
			return MIX_ENOMEM();
		}
		memcpy(c->s, p->s, sizeof(c->s));
		memcpy(c->tag, p->tag, sizeof(c->tag));
		c->gen = nv->gen;
		retire(nv, p);
		t[i >> MLP_BITS] = p = c;
	}
	p->s[i & (MLP_SLOTS - 1)] = e;
	p->tag[i & (MLP_SLOTS - 1)] = tag;
	return 0;
}

static int table_add(struct mlver *nv, struct mlpage **t, uint32_t home,
		     const struct mlent *e)
{
	uint32_t mask = (1u << nv->bits) - 1, i = home & mask;

	while (slot(t, i) != NULL)
		i = (i + 1) & mask;
	return slot_set(nv, t, i, e, tag_of(home));
}

/* The slot holding e, probing from home; or UINT32_MAX. */
static uint32_t table_pos(const struct mlver *v, struct mlpage *const *t,
			  uint32_t home, const struct mlent *e)
{
	uint32_t mask = (1u << v->bits) - 1, i = home & mask;
	const struct mlent *x;

	while ((x = slot(t, i)) != NULL) {
		if (x == e)
			return i;
		i = (i + 1) & mask;
	}
	return UINT32_MAX;
}

static uint32_t home_of(const struct mlver *v, struct mlpage *const *t,
			const struct mlent *e)
{
	return t == v->byid ? id_home(e->id) : e->hash;
}

/* Backward-shift deletion of e. */
static int table_del(struct mlver *nv, struct mlpage **t, uint32_t home,
		     const struct mlent *e)
{
	uint32_t mask = (1u << nv->bits) - 1, i, j, k;
	const struct mlent *x;

	i = table_pos(nv, t, home, e);
	if (i == UINT32_MAX)
		return 0;
	for (j = (i + 1) & mask; (x = slot(t, j)) != NULL; j = (j + 1) & mask) {
		k = home_of(nv, t, x) & mask;
		/* x may move to i if i lies cyclically in [k, j) */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			if (slot_set(nv, t, i, x, slot_tag(t, j)) < 0)
				return MIX_ENOMEM();
			i = j;
		}
	}
	return slot_set(nv, t, i, NULL, 0);
}

static int table_replace(struct mlver *nv, struct mlpage **t, uint32_t home,
			 const struct mlent *old, const struct mlent *e)
{
	uint32_t i = table_pos(nv, t, home, old);

	return i == UINT32_MAX ? -EINVAL : slot_set(nv, t, i, e, tag_of(home));
}

/* ---- versions ---------------------------------------------------------- */

static struct mlpage **dir_new(struct mlver *nv, uint32_t bits)
{
	uint32_t n = npages(bits), i;
	struct mlpage **d = calloc(n, sizeof(*d));

	if (d == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		d[i] = calloc(1, sizeof(struct mlpage));
		if (d[i] == NULL || born(nv, d[i]) < 0) {
			free(d[i]);
			free(d);
			return NULL;
		}
	}
	return d;
}

struct mlver *mlist_ver_empty(uint32_t next_id, uint32_t expect, uint64_t gen)
{
	struct mlver *v = calloc(1, sizeof(*v));
	uint32_t bits = MLP_BITS;

	if (v == NULL)
		return NULL;
	while ((uint64_t)expect * 10 > (uint64_t)7 << bits && bits < 30)
		bits++;
	v->gen = gen;
	v->bits = bits;
	v->next_id = next_id;
	v->byname = dir_new(v, v->bits);
	v->byid = v->byname ? dir_new(v, v->bits) : NULL;
	if (v->byid == NULL) {
		mlist_ver_abort(v);
		return NULL;
	}
	return v;
}

/* Rehash every entry of v into nv's fresh tables of 2^bits slots. */
static int rehash(struct mlver *nv, const struct mlver *v, uint32_t bits)
{
	uint32_t i, n = 1u << v->bits, old = npages(v->bits);
	const struct mlent *e;

	nv->bits = bits;
	nv->byname = dir_new(nv, bits);
	nv->byid = nv->byname ? dir_new(nv, bits) : NULL;
	if (nv->byid == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < n; i++) {
		if ((e = slot(v->byid, i)) == NULL)
			continue;
		if (table_add(nv, nv->byid, id_home(e->id), e) < 0 ||
		    table_add(nv, nv->byname, e->hash, e) < 0)
			return MIX_ENOMEM();
	}
	for (i = 0; i < old; i++) {
		retire(nv, v->byid[i]);
		retire(nv, v->byname[i]);
	}
	return 0;
}

struct mlver *mlist_ver_begin(struct mlver *v, uint32_t extra)
{
	struct mlver *nv = calloc(1, sizeof(*nv));
	uint64_t want = (uint64_t)v->count + extra;
	uint32_t bits = v->bits;

	if (nv == NULL)
		return NULL;
	nv->gen = v->gen + 1;
	nv->count = v->count;
	nv->top = v->top;
	nv->next_id = v->next_id;
	/* load factor at most 0.7 */
	while (want * 10 > (uint64_t)7 << bits && bits < 30)
		bits++;
	if (bits != v->bits) {
		if (rehash(nv, v, bits) < 0)
			goto fail;
		return nv;
	}
	nv->bits = bits;
	nv->byname = malloc(npages(bits) * sizeof(*nv->byname));
	nv->byid = malloc(npages(bits) * sizeof(*nv->byid));
	if (nv->byname == NULL || nv->byid == NULL)
		goto fail;
	memcpy(nv->byname, v->byname, npages(bits) * sizeof(*nv->byname));
	memcpy(nv->byid, v->byid, npages(bits) * sizeof(*nv->byid));
	return nv;
fail:
	mlist_ver_abort(nv);
	return NULL;
}

static void ver_struct_free(struct mlver *v)
{
	free(v->byname);
	free(v->byid);
	free(v->created.p);
	free(v->garbage.p);
	free(v);
}

void mlist_ver_abort(struct mlver *nv)
{
	if (nv == NULL)
		return;
	vec_free_all(&nv->created);
	ver_struct_free(nv);
}

void mlist_ver_free_unpublished(struct mlver *v)
{
	mlist_ver_abort(v);
}

void mlist_ver_free_all(struct mlver *v)
{
	uint32_t i, n = 1u << v->bits, np = npages(v->bits);
	const struct mlent *e;

	for (i = 0; i < n; i++) {
		if ((e = slot(v->byid, i)) == NULL)
			continue;
		free((void *)e->kids);
		free((void *)e);
	}
	free((void *)v->top);
	for (i = 0; i < np; i++) {
		free(v->byid[i]);
		free(v->byname[i]);
	}
	ver_struct_free(v);
}

/* ---- lookups (any version; readers inside a read-side section) ---------- */

const struct mlent *mlist_find(const struct mlver *v, uint32_t parent,
			       const char *name, size_t len)
{
	uint32_t h = mlist_hash(parent, name, len);
	uint32_t mask = (1u << v->bits) - 1, i = h & mask;
	uint16_t tag = tag_of(h);
	const struct mlent *e;

	while ((e = slot(v->byname, i)) != NULL) {
		if (slot_tag(v->byname, i) == tag && e->hash == h &&
		    e->parent == parent && e->len == len &&
		    memcmp(e->name, name, len) == 0)
			return e;
		i = (i + 1) & mask;
	}
	return NULL;
}

const struct mlent *mlist_find_id(const struct mlver *v, uint32_t id)
{
	uint32_t home = id_home(id), mask = (1u << v->bits) - 1, i = home & mask;
	uint16_t tag = tag_of(home);
	const struct mlent *e;

	while ((e = slot(v->byid, i)) != NULL) {
		if (slot_tag(v->byid, i) == tag && e->id == id)
			return e;
		i = (i + 1) & mask;
	}
	return NULL;
}

const struct mlkids *mlist_kids(const struct mlver *v, uint32_t id)
{
	const struct mlent *e;

	if (id == 0)
		return v->top;
	e = mlist_find_id(v, id);
	return e ? e->kids : NULL;
}

int mlist_has_children(const struct mlver *v, const struct mlent *e)
{
	const struct mlkids *k = e->kids;
	const struct mlent *c;
	uint32_t i;

	if (k == NULL)
		return 0;
	for (i = 0; i < k->n; i++) {
		c = mlist_find_id(v, k->ids[i]);
		if (c != NULL && (!(c->flags & MIX_LIST_NONEXISTENT) ||
				  (c->kids != NULL && c->kids->n > 0)))
			return 1;
	}
	return 0;
}

uint32_t mlist_flags(const struct mlver *v, const struct mlent *e)
{
	uint32_t f = e->flags;

	if (f & MIX_LIST_NONEXISTENT)
		f |= MIX_LIST_NOSELECT;
	f |= mlist_has_children(v, e) ? MIX_LIST_CHILDREN
				      : MIX_LIST_NOCHILDREN;
	return f;
}

int mlist_fullname(const struct mlver *v, const struct mlent *e, char sep,
		   char *buf, size_t size)
{
	const struct mlent *chain[MIX_MBOX_NAME_MAX_DEPTH];
	uint32_t n = 0;
	size_t len = 0;

	while (e != NULL) {
		if (n == MIX_MBOX_NAME_MAX_DEPTH)
			return -1;
		chain[n++] = e;
		e = e->parent ? mlist_find_id(v, e->parent) : NULL;
		if (e == NULL && chain[n - 1]->parent != 0)
			return -1;
	}
	while (n > 0) {
		e = chain[--n];
		if (len + e->len + 2 > size)
			return -1;
		memcpy(buf + len, e->name, e->len);
		len += e->len;
		if (n > 0)
			buf[len++] = sep;
	}
	buf[len] = '\0';
	return (int)len;
}

/* ---- the builder -------------------------------------------------------- */

static int name_cmp(const struct mlent *e, const char *name, size_t len)
{
	size_t m = e->len < len ? e->len : len;
	int c = memcmp(e->name, name, m);

	return c ? c : (e->len < len ? -1 : e->len > len);
}

/* Set the children array of id (0: top), retiring the old one. */
static int kids_set(struct mlver *nv, uint32_t id, const struct mlkids *k)
{
	const struct mlkids *old;
	struct mlent *p;

	if (id == 0) {
		old = nv->top;
		nv->top = k;
	} else {
		if ((p = mlist_mut(nv, id)) == NULL)
			return MIX_ENOMEM();
		old = p->kids;
		p->kids = k;
	}
	retire(nv, old);
	return 0;
}

static struct mlkids *kids_alloc(struct mlver *nv, uint32_t n)
{
	struct mlkids *k = malloc(sizeof(*k) + n * sizeof(k->ids[0]));

	if (k != NULL && born(nv, k) < 0) {
		free(k);
		return NULL;
	}
	if (k != NULL)
		k->n = n;
	return k;
}

static int kids_add(struct mlver *nv, uint32_t parent, const struct mlent *c)
{
	const struct mlkids *k = mlist_kids(nv, parent);
	uint32_t n = k ? k->n : 0, lo = 0, hi = n;
	struct mlkids *nk;

	while (lo < hi) {        /* first child named above c */
		uint32_t mid = lo + (hi - lo) / 2;
		const struct mlent *m = mlist_find_id(nv, k->ids[mid]);
		if (m != NULL && name_cmp(m, c->name, c->len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if ((nk = kids_alloc(nv, n + 1)) == NULL)
		return MIX_ENOMEM();
	if (lo > 0)
		memcpy(nk->ids, k->ids, lo * sizeof(nk->ids[0]));
	nk->ids[lo] = c->id;
	if (n > lo)
		memcpy(nk->ids + lo + 1, k->ids + lo,
		       (n - lo) * sizeof(nk->ids[0]));
	return kids_set(nv, parent, nk);
}

static int kids_del(struct mlver *nv, uint32_t parent, uint32_t id)
{
	const struct mlkids *k = mlist_kids(nv, parent);
	struct mlkids *nk = NULL;
	uint32_t i, j = 0;

	if (k == NULL)
		return 0;
	if (k->n > 1) {
		if ((nk = kids_alloc(nv, k->n - 1)) == NULL)
			return MIX_ENOMEM();
		for (i = 0; i < k->n; i++)
			if (k->ids[i] != id && j < nk->n)
				nk->ids[j++] = k->ids[i];
	}
	return kids_set(nv, parent, nk);
}

static struct mlent *ent_alloc(struct mlver *nv, const char *name, size_t len)
{
	struct mlent *e = calloc(1, sizeof(*e) + len + 1);

	if (e == NULL || born(nv, e) < 0) {
		free(e);
		return NULL;
	}
	memcpy(e->name, name, len);
	e->len = (uint16_t)len;
	return e;
}

struct mlent *mlist_mut(struct mlver *nv, uint32_t id)
{
	const struct mlent *e = mlist_find_id(nv, id);
	struct mlent *c;

	if (e == NULL)
		return NULL;
	if (e->gen == nv->gen)
		return (struct mlent *)e;
	if ((c = ent_alloc(nv, e->name, e->len)) == NULL)
		return NULL;
	memcpy(c, e, sizeof(*c));
	c->gen = nv->gen;
	if (table_replace(nv, nv->byid, id_home(id), e, c) < 0 ||
	    table_replace(nv, nv->byname, e->hash, e, c) < 0)
		return NULL;
	retire(nv, e);
	return c;
}

struct mlent *mlist_insert(struct mlver *nv, uint32_t parent,
			   const char *name, size_t len, uint32_t flags,
			   const uint8_t *guid)
{
	struct mlent *e = ent_alloc(nv, name, len);

	if (e == NULL)
		return NULL;
	e->id = nv->next_id++;
	e->parent = parent;
	e->flags = flags;
	e->hash = mlist_hash(parent, name, len);
	if (guid != NULL)
		memcpy(e->guid, guid, 16);
	if (table_add(nv, nv->byid, id_home(e->id), e) < 0 ||
	    table_add(nv, nv->byname, e->hash, e) < 0 ||
	    kids_add(nv, parent, e) < 0)
		return NULL;
	nv->count++;
	return e;
}

int mlist_move(struct mlver *nv, uint32_t id, uint32_t parent,
	       const char *name, size_t len)
{
	const struct mlent *e = mlist_find_id(nv, id);
	struct mlent *c;
	uint32_t oldp;

	if (e == NULL)
		return -EINVAL;
	oldp = e->parent;
	if ((c = ent_alloc(nv, name, len)) == NULL)
		return MIX_ENOMEM();
	memcpy(c, e, sizeof(*c));
	c->gen = nv->gen;
	memcpy(c->name, name, len);
	c->name[len] = '\0';
	c->len = (uint16_t)len;
	c->parent = parent;
	c->hash = mlist_hash(parent, name, len);
	if (kids_del(nv, oldp, id) < 0 ||
	    table_del(nv, nv->byname, e->hash, e) < 0 ||
	    table_replace(nv, nv->byid, id_home(id), e, c) < 0 ||
	    table_add(nv, nv->byname, c->hash, c) < 0 ||
	    kids_add(nv, parent, c) < 0)
		return MIX_ENOMEM();
	retire(nv, e);
	return 0;
}

int mlist_remove(struct mlver *nv, uint32_t id)
{
	const struct mlent *e = mlist_find_id(nv, id);

	if (e == NULL)
		return 0;
	if (kids_del(nv, e->parent, id) < 0 ||
	    table_del(nv, nv->byname, e->hash, e) < 0 ||
	    table_del(nv, nv->byid, id_home(id), e) < 0)
		return MIX_ENOMEM();
	retire(nv, e->kids);
	retire(nv, e);
	nv->count--;
	return 0;
}

int mlist_adopt(struct mlver *nv, uint32_t from, uint32_t to)
{
	const struct mlkids *k;
	const struct mlent *c;
	int ret;

	while ((k = mlist_kids(nv, from)) != NULL && k->n > 0) {
		if ((c = mlist_find_id(nv, k->ids[0])) == NULL)
			return -EINVAL;
		if ((ret = mlist_move(nv, c->id, to, c->name, c->len)) < 0)
			return ret;
	}
	return 0;
}

struct mlent *mlist_load_insert(struct mlver *nv, uint32_t id,
				uint32_t parent, const char *name, size_t len,
				const struct mlent **dup_r)
{
	struct mlent *e;

	*dup_r = mlist_find(nv, parent, name, len);
	if (*dup_r != NULL)
		return NULL;
	if ((e = ent_alloc(nv, name, len)) == NULL)
		return NULL;
	e->id = id;
	e->parent = parent;
	e->hash = mlist_hash(parent, name, len);
	if (table_add(nv, nv->byid, id_home(id), e) < 0 ||
	    table_add(nv, nv->byname, e->hash, e) < 0)
		return NULL;
	nv->count++;
	return e;
}

struct link_pair {
	uint32_t parent;
	const struct mlent *e;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct link_pair *x = a, *y = b;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	return name_cmp(x->e, y->e->name, y->e->len);
}

int mlist_link_all(struct mlver *nv)
{
	uint32_t i, j, n = 1u << nv->bits, cnt = 0;
	struct link_pair *p = malloc((nv->count + 1) * sizeof(*p));
	const struct mlent *e;

	if (p == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < n && cnt < nv->count; i++)
		if ((e = slot(nv->byid, i)) != NULL)
			p[cnt++] = (struct link_pair){ e->parent, e };
	qsort(p, cnt, sizeof(*p), pair_cmp);
	for (i = 0; i < cnt; i = j) {
		struct mlkids *k;
		for (j = i; j < cnt && p[j].parent == p[i].parent; j++)
			;
		if ((k = kids_alloc(nv, j - i)) == NULL) {
			free(p);
			return MIX_ENOMEM();
		}
		for (uint32_t x = i; x < j; x++)
			k->ids[x - i] = p[x].e->id;
		if (kids_set(nv, p[i].parent, k) < 0) {
			free(p);
			return MIX_ENOMEM();
		}
	}
	free(p);
	return 0;
}
