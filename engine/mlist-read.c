/*
 * Mailbox list reads: lookup by name and id, children, the LIST walk
 * (docs/mailbox-list.md "Reading", "LIST").  Any thread, no lock, no
 * allocation: each call takes a read-side section, loads the published
 * version once (MIX_RCU_DEREF, pairs with ORDER(mlist-publish) in
 * mlist.c) and answers from that one immutable version, so a walk never
 * sees half a change.  Names are built in a stack buffer of
 * MIX_MBOX_NAME_MAX_LEN + 1 bytes.
 */
#include <string.h>

#include "err.h"
#include "mlist.h"

#define NOTMBOX (MIX_LIST_NONEXISTENT | MIX_LIST_NOSELECT)

static void info_fill(const struct mlver *v, const struct mlent *e,
		      struct mix_list_info *info)
{
	memset(info, 0, sizeof(*info));     /* the reserved space too */
	info->id = e->id;
	info->parent = e->parent;
	info->flags = mlist_flags(v, e);
	memcpy(info->guid, e->guid, 16);
}

/* INBOX folding without the full check: the caller's bytes are valid
 * when the lookup finds them (every stored name is), so only a name that
 * is not found needs checking, to tell "absent" from "invalid". */
MIX_API int mix_list_lookup(struct mix_list *list, const char *name,
			    size_t len, struct mix_list_info *info_r)
{
	char inbox[5];
	const struct mlver *v;
	const struct mlent *e = NULL;
	const char *p = name, *end = name + len, *s;
	uint32_t parent = 0;
	int first = 1;

	if (name == NULL || len == 0 || len > MIX_MBOX_NAME_MAX_LEN)
		return mix_mbox_name_check(name ? name : "", name ? len : 0,
					   list->sep);
	mix_read_lock();
	v = MIX_RCU_DEREF(list->pub);
	while (p < end) {
		size_t clen;
		const char *c = p;
		s = memchr(p, list->sep, (size_t)(end - p));
		clen = (size_t)((s ? s : end) - p);
		if (first && clen == 5 && strncasecmp(p, "INBOX", 5) == 0) {
			memcpy(inbox, "INBOX", 5);
			c = inbox;
		}
		first = 0;
		e = mlist_find(v, parent, c, clen);
		if (e == NULL)
			break;
		parent = e->id;
		p = s ? s + 1 : end;
		if (s != NULL && p == end)
			e = NULL;       /* trailing separator */
	}
	if (e != NULL && info_r != NULL)
		info_fill(v, e, info_r);
	mix_read_unlock();
	if (e != NULL)
		return 1;
	return mix_mbox_name_check(name, len, list->sep) < 0 ? MIX_EINVAL : 0;
}

MIX_API int mix_list_lookup_id(struct mix_list *list, uint32_t id,
			       struct mix_list_info *info_r, char *buf,
			       size_t size, size_t *len_r)
{
	char tmp[MIX_MBOX_NAME_MAX_LEN + 2];
	const struct mlver *v;
	const struct mlent *e;
	int len = 0;

	mix_read_lock();
	v = MIX_RCU_DEREF(list->pub);
	e = mlist_find_id(v, id);
	if (e != NULL) {
		if (info_r != NULL)
			info_fill(v, e, info_r);
		if (buf != NULL)
			len = mlist_fullname(v, e, list->sep, tmp,
					     sizeof(tmp));
	}
	mix_read_unlock();
	if (e == NULL)
		return 0;
	if (buf != NULL && size > 0) {
		size_t n = len < 0 ? 0 : (size_t)len;
		if (n >= size)
			n = size - 1;
		memcpy(buf, tmp, n);
		buf[n] = '\0';
		if (len_r != NULL)
			*len_r = n;
	}
	return 1;
}

/* ---- walks --------------------------------------------------------------- */

struct walk {
	struct mix_list *list;
	const struct mlver *v;
	const struct mix_mbox_pattern *pat;
	unsigned select;
	int pct_end;             /* the pattern ends in '%' */
	mix_list_entry_fn *fn;
	void *ctx;
	char buf[MIX_MBOX_NAME_MAX_LEN + 2];
};

static int emit(struct walk *w, const struct mlent *e, size_t len,
		uint32_t depth, uint32_t extra)
{
	struct mix_list_entry ent;

	memset(&ent, 0, sizeof(ent));       /* the reserved space too */
	ent.name = w->buf;
	ent.name_len = len;
	ent.id = e->id;
	ent.parent = e->parent;
	ent.flags = mlist_flags(w->v, e) | extra;
	ent.depth = depth;
	ent.guid = e->guid;
	return w->fn(w->ctx, &ent);
}

/* Append e's component to the name of length blen; the new length, or 0
 * when it would not fit (a damaged version; never for loaded ones). */
static size_t name_push(struct walk *w, size_t blen, const struct mlent *e)
{
	size_t len = blen;

	if (blen + e->len + 2 > sizeof(w->buf))
		return 0;
	if (blen > 0)
		w->buf[len++] = w->list->sep;
	memcpy(w->buf + len, e->name, e->len);
	len += e->len;
	w->buf[len] = '\0';
	return len;
}

static int selected(const struct walk *w, const struct mlent *e)
{
	if ((w->select & MIX_LIST_SELECT_SUBSCRIBED) &&
	    !(e->flags & MIX_LIST_SUBSCRIBED))
		return 0;
	if ((w->select & MIX_LIST_SELECT_SPECIAL_USE) &&
	    !(e->flags & MIX_LIST_SPECIAL_USE))
		return 0;
	return 1;
}

/* RECURSIVEMATCH: has e a descendant that meets the selection and does
 * not match the pattern?  The name buffer holds e's name (length blen)
 * and is restored on return. */
static int childinfo(struct walk *w, const struct mlent *e, size_t blen,
		     uint32_t depth)
{
	const struct mlkids *k = e->kids;
	uint32_t i;

	for (i = 0; k != NULL && i < k->n && depth < MIX_MBOX_NAME_MAX_DEPTH;
	     i++) {
		const struct mlent *c = mlist_find_id(w->v, k->ids[i]);
		size_t len;
		if (c == NULL || (len = name_push(w, blen, c)) == 0)
			continue;
		if ((selected(w, c) &&
		     !mix_mbox_name_match(w->pat, w->buf, len)) ||
		    childinfo(w, c, len, depth + 1)) {
			w->buf[blen] = '\0';
			return 1;
		}
	}
	w->buf[blen] = '\0';
	return 0;
}

/* What to report for e, whose name matches: 0 nothing, 1 e, 2 e with
 * CHILDINFO. */
static int verdict(struct walk *w, const struct mlent *e, size_t len,
		   uint32_t depth)
{
	if (w->select & (MIX_LIST_SELECT_SUBSCRIBED |
			 MIX_LIST_SELECT_SPECIAL_USE)) {
		if (selected(w, e))
			return 1;
		if ((w->select & MIX_LIST_SELECT_RECURSIVEMATCH) &&
		    childinfo(w, e, len, depth))
			return 2;
		return 0;
	}
	if (!(e->flags & MIX_LIST_NONEXISTENT))
		return 1;
	/* a placeholder: a matching level of hierarchy under '%' */
	return w->pct_end && e->kids != NULL && e->kids->n > 0;
}

static int walk_level(struct walk *w, const struct mlkids *k, size_t blen,
		      uint32_t depth)
{
	uint32_t i;
	int ret;

	for (i = 0; k != NULL && i < k->n; i++) {
		const struct mlent *e = mlist_find_id(w->v, k->ids[i]);
		size_t len;
		if (e == NULL || (len = name_push(w, blen, e)) == 0)
			continue;
		if (mix_mbox_name_match(w->pat, w->buf, len)) {
			int vd = verdict(w, e, len, depth);
			if (vd && (ret = emit(w, e, len, depth,
					      vd == 2 ? MIX_LIST_CHILDINFO
						      : 0)) != 0)
				return ret;
		}
		if (e->kids != NULL && depth < MIX_MBOX_NAME_MAX_DEPTH &&
		    mix_mbox_name_match_children(w->pat, w->buf, len) &&
		    (ret = walk_level(w, e->kids, len, depth + 1)) != 0)
			return ret;
		w->buf[blen] = '\0';
	}
	return 0;
}

/* A pattern whose leading components have no wildcard starts at that
 * entry: returns its children array, the name length and depth, or
 * NULL with *none_r = 1 when that entry does not exist. */
static const struct mlkids *walk_start(struct walk *w, size_t *blen_r,
				       uint32_t *depth_r, int *none_r)
{
	size_t plen, lit = 0, cut = 0, i;
	const char *p = mix_mbox_name_pattern_text(w->pat, &plen);
	const struct mlent *e = NULL;
	uint32_t parent = 0, depth = 0;
	char sep = w->list->sep;

	*none_r = 0;
	*blen_r = 0;
	*depth_r = 1;
	while (lit < plen && p[lit] != '*' && p[lit] != '%')
		lit++;
	for (i = 0; i < lit; i++)
		if (p[i] == sep)
			cut = i;
	if (cut == 0 || cut > MIX_MBOX_NAME_MAX_LEN)
		return w->v->top;
	if (p[cut - 1] == sep) {
		*none_r = 1;    /* an empty component: no valid name matches */
		return NULL;
	}
	/* p[0..cut) names an entry; INBOX in any case as the first */
	for (i = 0; i < cut; ) {
		const char *c = p + i, *s = memchr(c, sep, cut - i);
		size_t clen = (size_t)((s ? s : p + cut) - c);
		if (depth == 0 && clen == 5 && strncasecmp(c, "INBOX", 5) == 0)
			c = "INBOX";
		if (clen == 0 ||
		    (e = mlist_find(w->v, parent, c, clen)) == NULL) {
			*none_r = 1;
			return NULL;
		}
		memcpy(w->buf + i, c, clen);
		parent = e->id;
		depth++;
		i += clen;
		if (i < cut)
			w->buf[i++] = sep;
	}
	w->buf[cut] = '\0';
	*blen_r = cut;
	*depth_r = depth + 1;
	return e->kids;
}

MIX_API int mix_list_walk(struct mix_list *list,
			  const struct mix_mbox_pattern *pat, unsigned select,
			  mix_list_entry_fn *fn, void *ctx)
{
	struct walk w;
	const struct mlkids *k;
	size_t plen, blen;
	uint32_t depth;
	const char *p;
	int none, ret = 0;

	if ((select & ~7u) ||
	    ((select & MIX_LIST_SELECT_RECURSIVEMATCH) &&
	     !(select & (MIX_LIST_SELECT_SUBSCRIBED |
			 MIX_LIST_SELECT_SPECIAL_USE))))
		return mix_err(MIX_EINVAL, "LIST selection 0x%x: unknown bits "
			       "or RECURSIVEMATCH alone", select);
	if (pat == NULL || fn == NULL)
		return mix_err(MIX_EINVAL, "LIST walk: NULL pattern or "
			       "callback");
	w.list = list;
	w.pat = pat;
	w.select = select;
	w.fn = fn;
	w.ctx = ctx;
	p = mix_mbox_name_pattern_text(pat, &plen);
	w.pct_end = plen > 0 && p[plen - 1] == '%';
	w.buf[0] = '\0';
	mix_read_lock();
	w.v = MIX_RCU_DEREF(list->pub);
	k = walk_start(&w, &blen, &depth, &none);
	if (!none)
		ret = walk_level(&w, k, blen, depth);
	mix_read_unlock();
	return ret;
}

MIX_API int mix_list_children(struct mix_list *list, uint32_t parent_id,
			      mix_list_entry_fn *fn, void *ctx)
{
	struct walk w;
	const struct mlent *pe = NULL, *e;
	const struct mlkids *k;
	uint32_t i, depth = 1;
	int blen = 0, ret = 0;

	w.list = list;
	w.fn = fn;
	w.ctx = ctx;
	mix_read_lock();
	w.v = MIX_RCU_DEREF(list->pub);
	if (parent_id != 0) {
		pe = mlist_find_id(w.v, parent_id);
		if (pe == NULL) {
			mix_read_unlock();
			return mix_err(MIX_ENOTFOUND, "no list entry %u",
				       parent_id);
		}
		blen = mlist_fullname(w.v, pe, list->sep, w.buf,
				      sizeof(w.buf));
		for (e = pe; e != NULL && e->parent != 0 && depth < 64;
		     e = mlist_find_id(w.v, e->parent))
			depth++;
		depth++;
	}
	k = parent_id ? pe->kids : w.v->top;
	for (i = 0; blen >= 0 && k != NULL && i < k->n && ret == 0; i++) {
		size_t len;
		if ((e = mlist_find_id(w.v, k->ids[i])) == NULL ||
		    (len = name_push(&w, (size_t)blen, e)) == 0)
			continue;
		ret = emit(&w, e, len, depth, 0);
		w.buf[blen] = '\0';
	}
	mix_read_unlock();
	return ret;
}
