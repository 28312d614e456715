/*
 * Mailbox list changes: create, delete, rename, subscribe, special-use
 * and the storage sync (docs/mailbox-list.md "Changes", "Sync with the
 * storage").  Each runs as one change of the pipeline in mlist.c: under
 * list->wlock it checks its arguments against the newest version built,
 * edits the next version with the primitives of mlist-ver.c, notes every
 * record it changed, and commits them as one transaction.
 *
 * Invariants kept by every change (and checked by the load): each
 * entry's parent exists; no two entries share (parent, component); a
 * NONEXISTENT entry has children or is SUBSCRIBED; a NOSELECT one has
 * children or is SUBSCRIBED (then it turns NONEXISTENT); a mailbox id is
 * never given to a second mailbox — a name that becomes a mailbox again
 * gets a new record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mlist.h"

#define NAMEBUF (MIX_MBOX_NAME_MAX_LEN + 1)
#define NOTMBOX (MIX_LIST_NONEXISTENT | MIX_LIST_NOSELECT)

struct pname {
	char buf[NAMEBUF];
	struct mix_mbox_name_component c[MIX_MBOX_NAME_MAX_DEPTH];
	uint32_t n;
	size_t len;
};

static int pname_init(const struct mix_list *list, struct pname *p,
		      const char *name, size_t len)
{
	p->len = len;
	return mlist_name_prepare(list, name, len, p->buf, p->c, &p->n);
}

static const char *last(const struct pname *p, size_t *len_r)
{
	*len_r = p->c[p->n - 1].len;
	return p->buf + p->c[p->n - 1].offset;
}

static int is_inbox(const struct pname *p)
{
	return p->n == 1 && p->len == 5 && memcmp(p->buf, "INBOX", 5) == 0;
}

/* The parent entry of p's last component, creating placeholders. */
static int ensure_parents(struct mlop *op, const struct pname *p,
			  uint32_t *parent_r)
{
	const struct mlent *e;
	uint32_t i, id = 0;
	int ret;

	for (i = 0; i + 1 < p->n; i++) {
		e = mlist_find(op->nv, id, p->buf + p->c[i].offset,
			       p->c[i].len);
		if (e == NULL) {
			e = mlist_insert(op->nv, id, p->buf + p->c[i].offset,
					 p->c[i].len, MIX_LIST_NONEXISTENT,
					 NULL);
			if (e == NULL)
				return MIX_ENOMEM();
		}
		id = e->id;
	}
	*parent_r = id;
	(void)ret;
	return 0;
}

/* Remove id and then its ancestors while they are childless names that
 * are not mailboxes; a childless subscribed \Noselect name turns into a
 * nonexistent subscription instead. */
static int prune_up(struct mlop *op, uint32_t id)
{
	const struct mlent *e;
	struct mlent *m;
	uint32_t parent;
	int ret;

	while (id != 0 && (e = mlist_find_id(op->nv, id)) != NULL) {
		if ((e->kids != NULL && e->kids->n > 0) ||
		    !(e->flags & NOTMBOX))
			return 0;
		if (e->flags & MIX_LIST_SUBSCRIBED) {
			if (e->flags & MIX_LIST_NONEXISTENT)
				return 0;
			if ((m = mlist_mut(op->nv, id)) == NULL)
				return MIX_ENOMEM();
			m->flags = (m->flags & ~MIX_LIST_NOSELECT) |
				   MIX_LIST_NONEXISTENT;
			return mlist_op_touch(op, id);
		}
		parent = e->parent;
		if ((ret = mlist_remove(op->nv, id)) < 0 ||
		    (ret = mlist_op_touch(op, id)) < 0)
			return ret;
		id = parent;
	}
	return 0;
}

/* Replace entry e (a placeholder, \Noselect name or subscription) by a
 * new mailbox record under the same name: its children move to it. */
static struct mlent *replace_entry(struct mlop *op, const struct mlent *e,
				   uint32_t flags, const uint8_t *guid)
{
	uint32_t old = e->id, parent = e->parent, i, n;
	uint32_t *kids = NULL;
	char name[MIX_LIST_COMPONENT_MAX + 1];
	size_t len = e->len;
	struct mlent *ne;
	const struct mlent *c;

	memcpy(name, e->name, len);
	n = e->kids ? e->kids->n : 0;
	if (n > 0) {
		if ((kids = malloc(n * sizeof(*kids))) == NULL)
			return NULL;
		memcpy(kids, e->kids->ids, n * sizeof(*kids));
	}
	ne = mlist_insert(op->nv, parent, name, len, flags, guid);
	for (i = 0; ne != NULL && i < n; i++) {
		if ((c = mlist_find_id(op->nv, kids[i])) == NULL ||
		    mlist_move(op->nv, c->id, ne->id, c->name, c->len) < 0 ||
		    mlist_op_touch(op, kids[i]) < 0)
			ne = NULL;
	}
	free(kids);
	if (ne == NULL || mlist_remove(op->nv, old) < 0 ||
	    mlist_op_touch(op, old) < 0)
		return NULL;
	/* mlist_move/remove may have copied ne: return the current one */
	return mlist_mut(op->nv, ne->id);
}

/* Make the name p a mailbox (create and sync).  *created_r: 1 if a record
 * was made. */
static int make_mailbox(struct mlop *op, const struct pname *p,
			const uint8_t *guid, uint32_t *id_r, int *created_r)
{
	static const uint8_t zero[16];
	const struct mlent *e = mlist_resolve(op->nv, p->buf, p->c, p->n,
					      NULL);
	struct mlent *m;
	uint32_t parent;
	size_t len;
	const char *nm;
	int ret;

	*created_r = 0;
	if (e != NULL && !(e->flags & NOTMBOX)) {
		*id_r = e->id;
		if (guid == NULL || memcmp(guid, zero, 16) == 0 ||
		    memcmp(e->guid, guid, 16) == 0)
			return -EEXIST;
		if (memcmp(e->guid, zero, 16) == 0) {
			if ((m = mlist_mut(op->nv, e->id)) == NULL)
				return MIX_ENOMEM();
			memcpy(m->guid, guid, 16);
			if ((ret = mlist_op_touch(op, e->id)) < 0)
				return ret;
			return -EEXIST;
		}
		/* another mailbox under the same name: a new id */
	}
	*created_r = 1;
	if (e != NULL) {
		m = replace_entry(op, e, e->flags & MIX_LIST_SUBSCRIBED, guid);
		if (m == NULL)
			return MIX_ENOMEM();
		*id_r = m->id;
		return 0;
	}
	if ((ret = ensure_parents(op, p, &parent)) < 0)
		return ret;
	nm = last(p, &len);
	if ((m = mlist_insert(op->nv, parent, nm, len, 0, guid)) == NULL)
		return MIX_ENOMEM();
	*id_r = m->id;
	return 0;
}

MIX_API int mix_list_create(struct mix_list *list, const char *name,
			    size_t len, const uint8_t *guid, uint32_t *id_r)
{
	struct pname p;
	struct mlop op;
	uint32_t id = 0;
	int ret, created;

	if ((ret = pname_init(list, &p, name, len)) < 0 ||
	    (ret = mlist_op_begin(list, &op, p.n + 1)) < 0)
		return ret;
	ret = make_mailbox(&op, &p, guid, &id, &created);
	if (ret == -EEXIST) {
		mlist_op_abort(&op);
		return mix_err(-EEXIST, "mailbox %.*s exists", (int)len, name);
	}
	if (ret < 0) {
		mlist_op_abort(&op);
		return ret;
	}
	if ((ret = mlist_op_commit(&op)) == 0 && id_r != NULL)
		*id_r = id;
	return ret;
}

/* The entry stops being a mailbox (delete, or gone from the storage). */
static int vanish(struct mlop *op, uint32_t id)
{
	const struct mlent *e = mlist_find_id(op->nv, id);
	struct mlent *m;
	uint32_t sub, parent;
	int ret;

	if (e == NULL)
		return 0;
	sub = e->flags & MIX_LIST_SUBSCRIBED;
	if (mlist_has_children(op->nv, e) ||
	    (e->kids != NULL && e->kids->n > 0) || sub) {
		if ((m = mlist_mut(op->nv, id)) == NULL)
			return MIX_ENOMEM();
		m->flags = sub | (mlist_has_children(op->nv, m) ?
				  MIX_LIST_NOSELECT : MIX_LIST_NONEXISTENT);
		memset(&m->st, 0, sizeof(m->st));
		return mlist_op_touch(op, id);
	}
	parent = e->parent;
	if ((ret = mlist_remove(op->nv, id)) < 0 ||
	    (ret = mlist_op_touch(op, id)) < 0)
		return ret;
	return prune_up(op, parent);
}

MIX_API int mix_list_delete(struct mix_list *list, const char *name,
			    size_t len)
{
	const struct mlent *e;
	struct pname p;
	struct mlop op;
	int ret;

	if ((ret = pname_init(list, &p, name, len)) < 0)
		return ret;
	if (is_inbox(&p))
		return mix_err(MIX_EINVAL, "INBOX cannot be deleted");
	if ((ret = mlist_op_begin(list, &op, 0)) < 0)
		return ret;
	e = mlist_resolve(op.nv, p.buf, p.c, p.n, NULL);
	if (e == NULL || (e->flags & MIX_LIST_NONEXISTENT)) {
		mlist_op_abort(&op);
		return mix_err(MIX_ENOTFOUND, "no mailbox %.*s", (int)len,
			       name);
	}
	if (e->flags & MIX_LIST_NOSELECT) {
		mlist_op_abort(&op);
		return mix_err(-EEXIST, "%.*s is \\Noselect and has inferior "
			       "names", (int)len, name);
	}
	if ((ret = vanish(&op, e->id)) < 0) {
		mlist_op_abort(&op);
		return ret;
	}
	return mlist_op_commit(&op);
}

/* Checks of a rename; 0 or an error (op still open). */
/* The deepest descendant of e below it (levels) and the longest name
 * suffix a descendant adds to e's name (bytes, separators included).
 * The list is valid (every chain within the limits), so the recursion
 * is at most MIX_MBOX_NAME_MAX_DEPTH deep. */
static void subtree_extent(const struct mlver *v, const struct mlent *e,
			   uint32_t depth, size_t len, uint32_t *depth_max,
			   size_t *len_max)
{
	uint32_t i;

	if (depth > *depth_max)
		*depth_max = depth;
	if (len > *len_max)
		*len_max = len;
	for (i = 0; e->kids != NULL && i < e->kids->n; i++) {
		const struct mlent *k = mlist_find_id(v, e->kids->ids[i]);
		if (k != NULL)
			subtree_extent(v, k, depth + 1, len + 1 + k->len,
				       depth_max, len_max);
	}
}

static int rename_check(struct mlop *op, const struct pname *f,
			const struct pname *t, const struct mlent **src_r,
			const struct mlent **dst_r)
{
	const struct mlent *dst;

	if (is_inbox(t))
		return mix_err(MIX_EINVAL, "cannot rename to INBOX");
	if (t->len > f->len && memcmp(t->buf, f->buf, f->len) == 0 &&
	    t->buf[f->len] == op->list->sep)
		return mix_err(MIX_EINVAL, "cannot rename %s into its own "
			       "subtree (%s)", f->buf, t->buf);
	*src_r = mlist_resolve(op->nv, f->buf, f->c, f->n, NULL);
	if (*src_r == NULL || ((*src_r)->flags & MIX_LIST_NONEXISTENT))
		return mix_err(MIX_ENOTFOUND, "no mailbox %s", f->buf);
	*dst_r = dst = mlist_resolve(op->nv, t->buf, t->c, t->n, NULL);
	if (dst != NULL && (!(dst->flags & MIX_LIST_NONEXISTENT) ||
			    (dst->kids != NULL && dst->kids->n > 0) ||
			    dst == *src_r))
		return mix_err(-EEXIST, "mailbox %s exists", t->buf);
	/* the whole subtree moves: every name under the new one must stay
	 * a valid name (format.md §6.2: each parent chain within 64 levels
	 * and 1,000 bytes), or the list would not open again.  Every name
	 * is valid now, so a new name no deeper and no longer than the old
	 * keeps them so: the walk (O(subtree)) only for one that grows */
	if (t->n > f->n || t->len > f->len) {
		uint32_t depth = 0;
		size_t len = 0;
		subtree_extent(op->nv, *src_r, 0, 0, &depth, &len);
		if (t->n + depth > MIX_MBOX_NAME_MAX_DEPTH ||
		    t->len + len > MIX_MBOX_NAME_MAX_LEN)
			return mix_err(MIX_EINVAL, "cannot rename %s to %s: a "
				       "mailbox under it would be %u levels "
				       "deep and %zu bytes long (at most %u "
				       "and %u)", f->buf, t->buf,
				       t->n + depth, t->len + len,
				       MIX_MBOX_NAME_MAX_DEPTH,
				       MIX_MBOX_NAME_MAX_LEN);
	}
	return 0;
}

static int rename_apply(struct mlop *op, const struct pname *t,
			const struct mlent *src, const struct mlent *dst)
{
	uint32_t id = src->id, oldp = src->parent, newp, sub = 0;
	struct mlent *m;
	const char *nm;
	size_t len;
	int ret;

	if (dst != NULL) {       /* a childless nonexistent subscription */
		sub = dst->flags & MIX_LIST_SUBSCRIBED;
		if ((ret = mlist_remove(op->nv, dst->id)) < 0 ||
		    (ret = mlist_op_touch(op, dst->id)) < 0)
			return ret;
	}
	if ((ret = ensure_parents(op, t, &newp)) < 0)
		return ret;
	nm = last(t, &len);
	if ((ret = mlist_move(op->nv, id, newp, nm, len)) < 0 ||
	    (ret = mlist_op_touch(op, id)) < 0)
		return ret;
	if (sub) {
		if ((m = mlist_mut(op->nv, id)) == NULL)
			return MIX_ENOMEM();
		m->flags |= sub;
	}
	return prune_up(op, oldp);
}

MIX_API int mix_list_rename(struct mix_list *list, const char *from,
			    size_t from_len, const char *to, size_t to_len,
			    const uint8_t *new_guid, uint32_t *id_r)
{
	struct pname *f = malloc(2 * sizeof(*f)), *t;
	const struct mlent *src = NULL, *dst = NULL;
	struct mlop op;
	uint32_t id = 0;
	int ret, created;

	if (f == NULL)
		return MIX_ENOMEM();
	t = f + 1;
	if ((ret = pname_init(list, f, from, from_len)) < 0 ||
	    (ret = pname_init(list, t, to, to_len)) < 0 ||
	    (ret = mlist_op_begin(list, &op, t->n + 1)) < 0) {
		free(f);
		return ret;
	}
	if (is_inbox(f)) {
		/* RFC 9051 §6.3.6: a new mailbox; INBOX stays */
		ret = is_inbox(t) ? mix_err(MIX_EINVAL, "cannot rename INBOX "
					    "to INBOX")
				  : make_mailbox(&op, t, new_guid, &id,
						 &created);
		if (ret == -EEXIST)
			ret = mix_err(-EEXIST, "mailbox %s exists", t->buf);
	} else {
		ret = rename_check(&op, f, t, &src, &dst);
		if (ret == 0) {
			id = src->id;
			ret = rename_apply(&op, t, src, dst);
		}
	}
	free(f);
	if (ret < 0) {
		mlist_op_abort(&op);
		return ret;
	}
	if ((ret = mlist_op_commit(&op)) == 0 && id_r != NULL)
		*id_r = id;
	return ret;
}

MIX_API int mix_list_subscribe(struct mix_list *list, const char *name,
			       size_t len, int on)
{
	const struct mlent *e;
	struct mlent *m;
	struct pname p;
	struct mlop op;
	uint32_t parent;
	size_t clen;
	const char *nm;
	int ret;

	if ((ret = pname_init(list, &p, name, len)) < 0 ||
	    (ret = mlist_op_begin(list, &op, p.n + 1)) < 0)
		return ret;
	e = mlist_resolve(op.nv, p.buf, p.c, p.n, NULL);
	if (e == NULL && on) {
		nm = last(&p, &clen);
		ret = ensure_parents(&op, &p, &parent);
		if (ret == 0 && mlist_insert(op.nv, parent, nm, clen,
					     MIX_LIST_NONEXISTENT |
					     MIX_LIST_SUBSCRIBED, NULL) == NULL)
			ret = -ENOMEM;
	} else if (e == NULL) {
		ret = mix_err(MIX_ENOTFOUND, "%.*s is not subscribed",
			      (int)len, name);
	} else if (!on == !(e->flags & MIX_LIST_SUBSCRIBED)) {
		/* nothing to change */
	} else if ((m = mlist_mut(op.nv, e->id)) == NULL) {
		ret = -ENOMEM;
	} else {
		m->flags ^= MIX_LIST_SUBSCRIBED;
		ret = mlist_op_touch(&op, m->id);
		if (ret == 0 && !on)
			ret = prune_up(&op, m->id);
	}
	if (ret < 0) {
		mlist_op_abort(&op);
		return ret;
	}
	return mlist_op_commit(&op);
}

MIX_API int mix_list_set_special_use(struct mix_list *list, const char *name,
				     size_t len, uint32_t special_use)
{
	const struct mlent *e;
	struct mlent *m;
	struct pname p;
	struct mlop op;
	int ret;

	if (special_use & ~MIX_LIST_SPECIAL_USE)
		return mix_err(MIX_EINVAL, "special-use flags 0x%x: only "
			       "0x%x allowed", special_use,
			       MIX_LIST_SPECIAL_USE);
	if ((ret = pname_init(list, &p, name, len)) < 0 ||
	    (ret = mlist_op_begin(list, &op, 0)) < 0)
		return ret;
	e = mlist_resolve(op.nv, p.buf, p.c, p.n, NULL);
	if (e == NULL || (e->flags & NOTMBOX)) {
		mlist_op_abort(&op);
		return mix_err(MIX_ENOTFOUND, "no mailbox %.*s", (int)len,
			       name);
	}
	if ((e->flags & MIX_LIST_SPECIAL_USE) == special_use) {
		mlist_op_abort(&op);
		return 0;
	}
	if ((m = mlist_mut(op.nv, e->id)) == NULL) {
		mlist_op_abort(&op);
		return MIX_ENOMEM();
	}
	m->flags = (m->flags & ~MIX_LIST_SPECIAL_USE) | special_use;
	if ((ret = mlist_op_touch(&op, m->id)) < 0) {
		mlist_op_abort(&op);
		return ret;
	}
	return mlist_op_commit(&op);
}

/* ---- sync with the storage ---------------------------------------------- */

struct sync_name {
	char *name;
	size_t len;
	uint8_t guid[16];
	int has_guid;
};

struct sync_ctx {
	struct sync_name *v;
	uint32_t n, cap;
	uint64_t comps;
};

static int sname_cmp(const void *a, const void *b)
{
	const struct sync_name *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, m);

	return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

static void sync_free(struct sync_ctx *s)
{
	uint32_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
}

static int under_root(const char *name, size_t len, const char *root,
		      size_t rlen, char sep)
{
	return rlen == 0 || (len == rlen && memcmp(name, root, rlen) == 0) ||
	       (len > rlen && memcmp(name, root, rlen) == 0 &&
		name[rlen] == sep);
}

/* Collect the names next gives, normalised, sorted. */
static int sync_collect(struct mix_list *list, const char *root, size_t rlen,
			mix_list_sync_next_fn *next, void *ctx,
			struct sync_ctx *s)
{
	struct pname *p = malloc(sizeof(*p));
	const uint8_t *guid;
	const char *name;
	size_t len;
	int ret;

	if (p == NULL)
		return MIX_ENOMEM();
	while ((ret = next(ctx, &name, &len, &guid)) > 0) {
		struct sync_name *sn;
		if ((ret = pname_init(list, p, name, len)) < 0)
			break;
		if (!under_root(p->buf, len, root, rlen, list->sep)) {
			ret = mix_err(MIX_EINVAL, "sync: %s is not under %.*s",
				      p->buf, (int)rlen, root);
			break;
		}
		if (s->n == s->cap) {
			uint32_t cap = s->cap ? s->cap * 2 : 64;
			void *nv = realloc(s->v, cap * sizeof(*s->v));
			if (nv == NULL) {
				ret = -ENOMEM;
				break;
			}
			s->v = nv;
			s->cap = cap;
		}
		sn = &s->v[s->n];
		memset(sn, 0, sizeof(*sn));
		if ((sn->name = strndup(p->buf, len)) == NULL) {
			ret = -ENOMEM;
			break;
		}
		sn->len = len;
		if (guid != NULL) {
			memcpy(sn->guid, guid, 16);
			sn->has_guid = 1;
		}
		s->n++;
		s->comps += p->n;
	}
	free(p);
	if (ret == 0 && s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), sname_cmp);
	return ret;
}

/* Ids of the mailboxes at or below root in nv not named in s. */
struct gone {
	uint32_t *ids;
	uint32_t n, cap;
};

static int gone_walk(struct mlop *op, const struct sync_ctx *s,
		     uint32_t parent, char *buf, size_t blen, struct gone *g,
		     uint32_t depth)
{
	const struct mlkids *k = mlist_kids(op->nv, parent);
	char sep = op->list->sep;
	uint32_t i;
	int ret;

	for (i = 0; k != NULL && i < k->n; i++) {
		const struct mlent *e = mlist_find_id(op->nv, k->ids[i]);
		size_t len = blen;
		if (e == NULL || depth >= MIX_MBOX_NAME_MAX_DEPTH ||
		    blen + e->len + 2 > NAMEBUF)
			continue;
		if (blen > 0)
			buf[len++] = sep;
		memcpy(buf + len, e->name, e->len);
		len += e->len;
		if (!(e->flags & NOTMBOX)) {
			struct sync_name key = { buf, len, { 0 }, 0 };
			if (bsearch(&key, s->v, s->n, sizeof(*s->v),
				    sname_cmp) == NULL) {
				if (g->n == g->cap) {
					uint32_t cap = g->cap ? g->cap * 2 : 64;
					void *n = realloc(g->ids, cap * 4);
					if (n == NULL)
						return MIX_ENOMEM();
					g->ids = n;
					g->cap = cap;
				}
				g->ids[g->n++] = e->id;
			}
		}
		if ((ret = gone_walk(op, s, e->id, buf, len, g,
				     depth + 1)) < 0)
			return ret;
	}
	return 0;
}

static int sync_apply(struct mlop *op, struct sync_ctx *s, const char *root,
		      size_t rlen, struct mix_list_sync_result *r)
{
	struct pname *p = malloc(sizeof(*p));
	char *buf = malloc(NAMEBUF);
	const struct mlent *re;
	struct gone g = { NULL, 0, 0 };
	uint32_t i, id;
	int ret = 0, created;

	if (p == NULL || buf == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s->n && ret == 0; i++) {
		if ((ret = pname_init(op->list, p, s->v[i].name,
				      s->v[i].len)) < 0)
			break;
		ret = make_mailbox(op, p, s->v[i].has_guid ? s->v[i].guid
							   : NULL,
				   &id, &created);
		if (ret == -EEXIST) {
			r->seen++;
			ret = 0;
		} else if (ret == 0) {
			r->created++;
		}
	}
	if (ret < 0)
		goto out;
	/* what vanished: at or below root */
	if (rlen > 0) {
		if ((ret = pname_init(op->list, p, root, rlen)) < 0)
			goto out;
		re = mlist_resolve(op->nv, p->buf, p->c, p->n, NULL);
		if (re != NULL) {
			struct sync_name key = { p->buf, rlen, { 0 }, 0 };
			if (!(re->flags & NOTMBOX) &&
			    bsearch(&key, s->v, s->n, sizeof(*s->v),
				    sname_cmp) == NULL) {
				g.ids = malloc(64 * 4);
				if (g.ids == NULL) {
					ret = -ENOMEM;
					goto out;
				}
				g.cap = 64;
				g.ids[g.n++] = re->id;
			}
			memcpy(buf, p->buf, rlen);
			ret = gone_walk(op, s, re->id, buf, rlen, &g, p->n);
		}
	} else {
		ret = gone_walk(op, s, 0, buf, 0, &g, 0);
	}
	/* deepest first (walk order is parents first) */
	for (i = g.n; ret == 0 && i > 0; i--) {
		ret = vanish(op, g.ids[i - 1]);
		r->vanished++;
	}
out:
	free(g.ids);
	free(p);
	free(buf);
	return ret;
}

MIX_API int mix_list_sync(struct mix_list *list, const char *root,
			  size_t root_len, mix_list_sync_next_fn *next,
			  void *ctx, struct mix_list_sync_result *result_r)
{
	struct mix_list_sync_result r = { 0 };
	struct sync_ctx s = { NULL, 0, 0, 0 };
	char rootbuf[NAMEBUF];
	struct mlop op;
	int ret;

	if (root == NULL)
		root_len = 0;
	if (root_len > 0) {
		if ((ret = mix_mbox_name_normalize(root, root_len, list->sep,
						   rootbuf,
						   sizeof(rootbuf))) < 0)
			return ret;
		root = rootbuf;
	}
	if ((ret = sync_collect(list, root, root_len, next, ctx, &s)) < 0 ||
	    (ret = mlist_op_begin(list, &op, (uint32_t)(s.comps + 1))) < 0) {
		sync_free(&s);
		return ret;
	}
	if ((ret = sync_apply(&op, &s, root, root_len, &r)) < 0) {
		mlist_op_abort(&op);
		sync_free(&s);
		return ret;
	}
	sync_free(&s);
	if ((ret = mlist_op_commit(&op)) == 0 && result_r != NULL)
		*result_r = r;
	return ret;
}
