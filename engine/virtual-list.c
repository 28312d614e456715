/*
 * Backends of a virtual mailbox by name pattern (docs/virtual.md
 * "Backends by name pattern"): the mailboxes of a mailbox list index that
 * match LIST patterns, minus those of exclusion patterns ("-Trash").
 *
 * The virtual mailbox itself takes a list of named backends
 * (mix_virtual_set_backends); this resolves patterns into that list on
 * one version of the mailbox list, so a create, delete or rename is
 * followed by resolving again (cheap: the walk skips subtrees no pattern
 * can match) and setting the backends that came out.  Each match carries
 * the mailbox id, which a rename keeps: a caller that names its backends
 * by id (mix_virtual_match.id_name) keeps a renamed mailbox's virtual
 * UIDs.
 *
 * Threads: any; it reads the list inside a read-side section of its own
 * and allocates the result.  Patterns are compiled with the list's
 * separator; they follow LIST's rules (`*`, `%`, INBOX in any case).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mlist.h"
#include "virtual.h"

struct resolve {
	struct mix_virtual_match *m;
	uint32_t n, cap;
	int failed;
};

static int add_match(void *ctx, const struct mix_list_entry *e)
{
	struct resolve *r = ctx;
	struct mix_virtual_match *m;

	if (e->flags & (MIX_LIST_NOSELECT | MIX_LIST_NONEXISTENT))
		return 0;   /* no messages: not a backend */
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 16;
		void *p = realloc(r->m, cap * sizeof(*r->m));
		if (p == NULL)
			return r->failed = 1;
		r->m = p;
		r->cap = cap;
	}
	m = &r->m[r->n];
	memset(m, 0, sizeof(*m));
	if ((m->name = strndup(e->name, e->name_len)) == NULL)
		return r->failed = 1;
	m->list_id = e->id;
	snprintf(m->id_name, sizeof(m->id_name), "#%u", e->id);
	r->n++;
	return 0;
}

static int match_cmp(const void *a, const void *b)
{
	const struct mix_virtual_match *x = a, *y = b;
	return strcmp(x->name, y->name);
}

/* Sort by name and drop duplicates (a mailbox several patterns match). */
static void sort_unique(struct resolve *r)
{
	uint32_t i, n = 0;
	if (r->n > 1)
		qsort(r->m, r->n, sizeof(*r->m), match_cmp);
	for (i = 0; i < r->n; i++) {
		if (n > 0 && strcmp(r->m[n - 1].name, r->m[i].name) == 0) {
			free(r->m[i].name);
			continue;
		}
		r->m[n++] = r->m[i];
	}
	r->n = n;
}

/* Remove from r the matches of exclusion pattern pat. */
static void exclude(struct resolve *r, const struct mix_mbox_pattern *pat)
{
	uint32_t i, n = 0;
	for (i = 0; i < r->n; i++) {
		if (mix_mbox_name_match(pat, r->m[i].name,
					strlen(r->m[i].name))) {
			free(r->m[i].name);
			continue;
		}
		r->m[n++] = r->m[i];
	}
	r->n = n;
}

MIX_API void mix_virtual_matches_free(struct mix_virtual_match *m,
				      uint32_t count)
{
	uint32_t i;
	for (i = 0; m != NULL && i < count; i++)
		free(m[i].name);
	free(m);
}

MIX_API int mix_virtual_resolve(struct mix_list *list,
				const char *const *patterns, uint32_t count,
				struct mix_virtual_match **matches_r,
				uint32_t *count_r)
{
	struct resolve r = { NULL, 0, 0, 0 };
	uint32_t i;
	int ret = 0, pass;

	*matches_r = NULL;
	*count_r = 0;
	if (list == NULL || (count > 0 && patterns == NULL))
		return mix_err(MIX_EINVAL, "mix_virtual_resolve: no list or "
			       "no patterns");
	if (mix_rcu_read_ongoing())
		return mix_err(MIX_EDEADLK, "mix_virtual_resolve inside a "
			       "read-side section");
	for (i = 0; i < count; i++)
		if (patterns[i] == NULL)
			return mix_err(MIX_EINVAL, "pattern %u is NULL", i);
	/* includes first, then exclusions ("-name"), whatever the order */
	for (pass = 0; pass < 2 && ret == 0; pass++) {
		for (i = 0; i < count && ret == 0; i++) {
			const char *p = patterns[i];
			struct mix_mbox_pattern *pat;
			int excl;
			excl = p[0] == '-';
			if (excl != pass)
				continue;
			p += excl;
			if ((ret = mix_mbox_name_pattern_new("", 0, p,
							     strlen(p),
							     list->sep,
							     &pat)) < 0)
				break;
			if (excl) {
				exclude(&r, pat);
			} else {
				mix_read_lock();
				ret = mix_list_walk(list, pat, 0, add_match,
						    &r);
				mix_read_unlock();
				if (r.failed)
					ret = MIX_ENOMEM();
			}
			mix_mbox_name_pattern_free(&pat);
		}
		if (pass == 0 && ret == 0)
			sort_unique(&r);
	}
	if (ret != 0) {
		mix_virtual_matches_free(r.m, r.n);
		return ret < 0 ? ret : MIX_ENOMEM();
	}
	*matches_r = r.m;
	*count_r = r.n;
	return 0;
}
