/*
 * The reference model of the mailbox list for tests/test-list.c and
 * tests/test-list-lifecycle.c (docs/mailbox-list.md "Changes", written
 * again in the simplest way): names -> stored flags and ids, the changes
 * as the list applies them, walking the list into sorted lines, random
 * names.  A test defines MAXN (the most entries) before including it.
 * Header-only and static, like testutil.h; one test thread.
 */
#ifndef MIX_TEST_LIST_MODEL_H
#define MIX_TEST_LIST_MODEL_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/list.h"
#include "stepfail.h"
#include "testutil.h"

#ifndef MAXN
#error "define MAXN before including list-model.h"
#endif

#define SEP '/'
#define NOTMBOX (MIX_LIST_NONEXISTENT | MIX_LIST_NOSELECT)

struct ment {
	char name[128];
	uint32_t flags;          /* stored flags */
	uint32_t id;
};

/* The model: the entries and the next id it expects the list to give. */
struct model {
	struct ment e[MAXN];
	int n;
	uint32_t next_id;
};

static struct model MD;
#define M MD.e
#define mn MD.n
#define next_id MD.next_id



/* ---- the reference model (as tests/test-list.c) ----------------------- */

static int mfind(const char *n)
{
	for (int i = 0; i < mn; i++)
		if (strcmp(M[i].name, n) == 0)
			return i;
	return -1;
}

static int is_under(const char *n, const char *p)
{
	size_t l = strlen(p);
	return strncmp(n, p, l) == 0 && n[l] == SEP;
}

static int has_kids(const char *n)
{
	for (int i = 0; i < mn; i++)
		if (is_under(M[i].name, n))
			return 1;
	return 0;
}

static int is_child(const char *c, const char *p)
{
	return is_under(c, p) && strchr(c + strlen(p) + 1, SEP) == NULL;
}

static int real_kids(const char *n)
{
	for (int i = 0; i < mn; i++)
		if (is_child(M[i].name, n) &&
		    (!(M[i].flags & MIX_LIST_NONEXISTENT) ||
		     has_kids(M[i].name)))
			return 1;
	return 0;
}

static uint32_t mflags(int i)
{
	uint32_t f = M[i].flags;
	if (f & MIX_LIST_NONEXISTENT)
		f |= MIX_LIST_NOSELECT;
	return f | (real_kids(M[i].name) ? MIX_LIST_CHILDREN
					 : MIX_LIST_NOCHILDREN);
}

static void madd(const char *n, uint32_t flags)
{
	if (mn == MAXN)
		BAIL("model full");
	snprintf(M[mn].name, sizeof(M[mn].name), "%s", n);
	M[mn].flags = flags;
	M[mn].id = next_id++;
	mn++;
}

static void mdel(int i)
{
	M[i] = M[--mn];
}

static void parent_of(const char *n, char *p)
{
	const char *s = strrchr(n, SEP);
	size_t l = s ? (size_t)(s - n) : 0;
	memmove(p, n, l);
	p[l] = '\0';
}

static void ensure_parents(const char *n)
{
	char p[128];
	for (const char *s = strchr(n, SEP); s; s = strchr(s + 1, SEP)) {
		memcpy(p, n, (size_t)(s - n));
		p[s - n] = '\0';
		if (mfind(p) < 0)
			madd(p, MIX_LIST_NONEXISTENT);
	}
}

static void prune_up(const char *start)
{
	char n[128];
	int i;

	snprintf(n, sizeof(n), "%s", start);
	while (n[0] && (i = mfind(n)) >= 0) {
		if (has_kids(n) || !(M[i].flags & NOTMBOX))
			return;
		if (M[i].flags & MIX_LIST_SUBSCRIBED) {
			if (!(M[i].flags & MIX_LIST_NONEXISTENT))
				M[i].flags = (M[i].flags & ~MIX_LIST_NOSELECT) |
					     MIX_LIST_NONEXISTENT;
			return;
		}
		mdel(i);
		parent_of(n, n);
	}
}

static int m_make(const char *n)
{
	int i = mfind(n);
	if (i >= 0 && !(M[i].flags & NOTMBOX))
		return -EEXIST;
	if (i >= 0) {
		M[i].flags &= MIX_LIST_SUBSCRIBED;
		M[i].id = next_id++;
		return 0;
	}
	ensure_parents(n);
	madd(n, 0);
	return 0;
}

static void m_vanish(int i)
{
	uint32_t sub = M[i].flags & MIX_LIST_SUBSCRIBED;
	char p[128];
	if (real_kids(M[i].name) || has_kids(M[i].name) || sub) {
		M[i].flags = sub | (real_kids(M[i].name) ? MIX_LIST_NOSELECT
							 : MIX_LIST_NONEXISTENT);
		return;
	}
	parent_of(M[i].name, p);
	mdel(i);
	prune_up(p);
}

static int m_delete(const char *n)
{
	int i = mfind(n);
	if (strcmp(n, "INBOX") == 0)
		return MIX_EINVAL;
	if (i < 0 || (M[i].flags & MIX_LIST_NONEXISTENT))
		return MIX_ENOTFOUND;
	if (M[i].flags & MIX_LIST_NOSELECT)
		return -EEXIST;
	m_vanish(i);
	return 0;
}

static int m_rename(const char *f, const char *t)
{
	int s, d;
	uint32_t sub = 0;
	char op[128];
	size_t fl = strlen(f);

	if (strcmp(f, "INBOX") == 0)
		return strcmp(t, "INBOX") == 0 ? MIX_EINVAL : m_make(t);
	if (strcmp(t, "INBOX") == 0 || is_under(t, f))
		return MIX_EINVAL;
	s = mfind(f);
	if (s < 0 || (M[s].flags & MIX_LIST_NONEXISTENT))
		return MIX_ENOTFOUND;
	d = mfind(t);
	if (d >= 0 && (!(M[d].flags & MIX_LIST_NONEXISTENT) ||
		       has_kids(t) || d == s))
		return -EEXIST;
	if (d >= 0) {
		sub = M[d].flags & MIX_LIST_SUBSCRIBED;
		mdel(d);
	}
	ensure_parents(t);
	for (int i = 0; i < mn; i++) {
		if (strcmp(M[i].name, f) == 0) {
			snprintf(M[i].name, sizeof(M[i].name), "%s", t);
			M[i].flags |= sub;
		} else if (is_under(M[i].name, f)) {
			char tmp[256];
			snprintf(tmp, sizeof(tmp), "%s%s", t, M[i].name + fl);
			snprintf(M[i].name, sizeof(M[i].name), "%.120s", tmp);
		}
	}
	parent_of(f, op);
	prune_up(op);
	return 0;
}

static int m_subscribe(const char *n, int on)
{
	int i = mfind(n);
	if (i < 0 && on) {
		ensure_parents(n);
		madd(n, MIX_LIST_NONEXISTENT | MIX_LIST_SUBSCRIBED);
		return 0;
	}
	if (i < 0)
		return MIX_ENOTFOUND;
	if (!on == !(M[i].flags & MIX_LIST_SUBSCRIBED))
		return 0;
	M[i].flags ^= MIX_LIST_SUBSCRIBED;
	if (!on)
		prune_up(n);
	return 0;
}

static int m_special(const char *n, uint32_t su)
{
	int i = mfind(n);
	if (i < 0 || (M[i].flags & NOTMBOX))
		return MIX_ENOTFOUND;
	M[i].flags = (M[i].flags & ~MIX_LIST_SPECIAL_USE) | su;
	return 0;
}

/* ---- walking the list --------------------------------------------------- */

struct got {
	char lines[MAXN * 2][160];
	int n;
};
static struct got G1, G2;

static int line_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* One line per entry: name, derived flags, id, parent's id. */
static int collect(void *ctx, const struct mix_list_entry *e)
{
	struct got *g = ctx;
	if (g->n < MAXN * 2)
		snprintf(g->lines[g->n++], 160, "%s %x %u", e->name, e->flags,
			 e->id);
	return 0;
}

static int all_rec(struct mix_list *l, uint32_t id, struct got *g)
{
	int start = g->n, end, ret;
	if ((ret = mix_list_children(l, id, collect, g)) != 0)
		return ret;
	end = g->n;
	for (int i = start; i < end; i++) {
		const char *s = strrchr(g->lines[i], ' ');
		unsigned cid = (unsigned)strtoul(s + 1, NULL, 10);
		if ((ret = all_rec(l, cid, g)) != 0)
			return ret;
	}
	return 0;
}

/* ---- random names --------------------------------------------------------- */

static const char *const comps[] = { "a", "b", "c", "INBOX", "b%" };

static void rand_name(uint64_t *rng, char *n, int maxdepth)
{
	int d = 1 + (int)tu_rand_below(rng, (uint32_t)maxdepth);
	n[0] = '\0';
	for (int i = 0; i < d; i++) {
		const char *c = comps[tu_rand_below(rng, i == 0 ? 4 : 5)];
		if (i > 0)
			strcat(n, "/");
		if (i > 0 && strcmp(c, "INBOX") == 0)
			c = "inbox";
		strcat(n, c);
	}
}

struct snames {
	char (*n)[128];
	int count, i;
};

static int snext(void *ctx, const char **name_r, size_t *len_r,
		 const uint8_t **guid_r)
{
	struct snames *s = ctx;
	if (s->i == s->count)
		return 0;
	*name_r = s->n[s->i++];
	*len_r = strlen(*name_r);
	*guid_r = NULL;
	return 1;
}

static int depth_of(const char *n)
{
	int d = 0;
	for (; *n; n++)
		d += *n == SEP;
	return d;
}

static int depth_cmp(const void *a, const void *b)
{
	return depth_of(b) - depth_of(a);
}

#endif
