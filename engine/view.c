/*
 * Views (docs/design.md §Views): a pinned snapshot per IMAP session, and
 * the change report that moves it to the newest one.
 *
 * A view holds one reference on its snapshot, taken inside a read-side
 * section while the snapshot was reachable from index->snap, so the
 * grace-period callback that drops the "current" reference cannot have
 * run yet: once taken, the reference alone keeps the snapshot (and,
 * through reclaim.c's generation rule, every chunk it uses) alive.  No
 * read-side section is held between calls.
 *
 * mix_view_sync's report is computed from the two pinned snapshots: the
 * new snapshot's expunge history and CHANGEDSINCE iteration (chunk
 * skipping) give the expunges, changes and new messages since the old
 * snapshot's HIGHESTMODSEQ, so the cost follows the number of changes.
 * When the history no longer reaches back, both snapshots are compared
 * whole.  A view reports its own snapshot's HIGHESTMODSEQ, so it never
 * announces one above an expunge it has not reported (RFC 7162 errata
 * 1810).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "index.h"
#include "reclaim.h"

struct mix_view {
	struct mix_index *idx;
	struct mix_snap *snap;   /* one reference held */
};

/* The newest snapshot of idx with a reference taken, or NULL if it is
 * cur (no reference taken then). */
static struct mix_snap *newest_ref(struct mix_index *idx,
				   const struct mix_snap *cur)
{
	struct mix_snap *s;
	mix_rcu_read_lock();
	/* ORDER(snap-publish): pairs with MIX_RCU_PUBLISH */
	s = MIX_RCU_DEREF(idx->snap);
	if (s == cur) {
		mix_rcu_read_unlock();
		return NULL;
	}
	/* ORDER(view-ref): inside the section, so the unpublish callback
	 * (after a grace period) cannot have dropped the current reference
	 * yet: refs is >= 1 here and cannot reach 0 before our decrement */
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	mix_rcu_read_unlock();
	return s;
}

MIX_API int mix_view_open(struct mix_index *idx, struct mix_view **view_r)
{
	struct mix_view *v = calloc(1, sizeof(*v));
	*view_r = NULL;
	if (!v)
		return -ENOMEM;
	v->idx = idx;
	__atomic_add_fetch(&idx->users, 1, __ATOMIC_RELAXED);
	v->snap = newest_ref(idx, NULL);
	*view_r = v;
	return 0;
}

MIX_API void mix_view_close(struct mix_view **vp)
{
	struct mix_view *v = *vp;
	if (!v)
		return;
	*vp = NULL;
	mix_snap_unref(v->snap);
	__atomic_sub_fetch(&v->idx->users, 1, __ATOMIC_RELEASE);
	free(v);
}

MIX_API const struct mix_snap *mix_view_snap(struct mix_view *v)
{
	return v->snap;
}

MIX_API int mix_view_refresh(struct mix_view *v)
{
	struct mix_snap *s = newest_ref(v->idx, v->snap), *old = v->snap;
	if (!s)
		return 0;
	v->snap = s;
	mix_snap_unref(old);
	return 1;
}

/* ---- the change report -------------------------------------------------- */

struct u32v {
	uint32_t *v;
	uint32_t n, cap;
};

static int u32v_add(struct u32v *a, uint32_t x)
{
	if (a->n == a->cap) {
		uint32_t cap = a->cap ? a->cap * 2 : 16;
		void *p = realloc(a->v, cap * sizeof(*a->v));
		if (!p)
			return -ENOMEM;
		a->v = p;
		a->cap = cap;
	}
	a->v[a->n++] = x;
	return 0;
}

static int cmp_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* UIDs as sorted ranges of consecutive numbers. */
static int uids_to_ranges(const uint32_t *u, uint32_t n,
			  struct mix_uid_range **r_r, uint32_t *count_r)
{
	struct mix_uid_range *r = NULL;
	uint32_t i, k = 0;
	if (n && !(r = malloc(n * sizeof(*r))))
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (k && r[k - 1].last + 1 == u[i])
			r[k - 1].last = u[i];
		else {
			r[k].first = r[k].last = u[i];
			k++;
		}
	}
	*r_r = r;
	*count_r = k;
	return 0;
}

struct report {
	struct u32v exp_seqs, exp_uids, changed, added;
};

/* Expunges from the new snapshot's history: 1 done, 0 cannot. */
static int report_expunges(const struct mix_snap *old, const struct mix_snap *s,
			   struct report *r)
{
	struct mix_uid_range *x;
	uint32_t n, i, u;
	int ret = mix_snap_expunged_since(s, old->hdr.highest_modseq, &x, &n,
					  NULL);
	if (ret <= 0)
		return ret;
	for (i = 0; i < n && ret >= 0; i++) {
		uint32_t seq1, seq2;
		/* only what the old snapshot had (not appended-then-gone) */
		if (!mix_snap_uid_range_to_seq(old, x[i].first, x[i].last,
					       &seq1, &seq2))
			continue;
		for (; seq1 <= seq2 && ret >= 0; seq1++) {
			struct mix_record rec;
			mix_snap_lookup_seq(old, seq1, &rec);
			u = rec.uid;
			ret = u32v_add(&r->exp_uids, u);
			if (ret >= 0)
				ret = u32v_add(&r->exp_seqs, seq1);
		}
	}
	free(x);
	return ret < 0 ? ret : 1;
}

/* Changes and new messages: CHANGEDSINCE old's HIGHESTMODSEQ. */
static int report_changes(const struct mix_snap *old, const struct mix_snap *s,
			  struct report *r)
{
	struct mix_changed_iter it;
	struct mix_record rec;
	int ret = 0;

	mix_changed_iter_init(&it, s, old->hdr.highest_modseq);
	while (ret == 0 && mix_changed_iter_next(&it, NULL, &rec)) {
		if (rec.uid >= old->hdr.next_uid ||
		    !mix_snap_lookup_uid(old, rec.uid, NULL))
			ret = u32v_add(&r->added, rec.uid);
		else
			ret = u32v_add(&r->changed, rec.uid);
	}
	return ret;
}

/* Both snapshots compared whole (the history did not reach back). */
static int report_full(const struct mix_snap *old, const struct mix_snap *s,
		       struct report *r)
{
	struct mix_iter a, b;
	struct mix_record ra, rb;
	int ha, hb, ret = 0;

	mix_iter_init(&a, old, 1);
	mix_iter_init(&b, s, 1);
	ha = mix_iter_next(&a, &ra);
	hb = mix_iter_next(&b, &rb);
	while (ret == 0 && (ha || hb)) {
		if (ha && (!hb || ra.uid < rb.uid)) {
			ret = u32v_add(&r->exp_uids, ra.uid);
			if (ret == 0)
				ret = u32v_add(&r->exp_seqs, ra.seq);
			ha = mix_iter_next(&a, &ra);
		} else if (hb && (!ha || rb.uid < ra.uid)) {
			ret = u32v_add(&r->added, rb.uid);
			hb = mix_iter_next(&b, &rb);
		} else {
			if (rb.modseq > old->hdr.highest_modseq)
				ret = u32v_add(&r->changed, rb.uid);
			ha = mix_iter_next(&a, &ra);
			hb = mix_iter_next(&b, &rb);
		}
	}
	return ret;
}

static int report_fill(const struct mix_snap *old, const struct mix_snap *s,
		       struct mix_view_changes *ch)
{
	struct report r;
	int ret;

	memset(&r, 0, sizeof(r));
	ch->old_messages_count = old->hdr.messages_count;
	ch->new_messages_count = s->hdr.messages_count;
	ch->old_highest_modseq = old->hdr.highest_modseq;
	ch->new_highest_modseq = s->hdr.highest_modseq;
	ret = report_expunges(old, s, &r);
	if (ret == 1)
		ret = report_changes(old, s, &r);
	else if (ret == 0) {
		ch->full_compare = 1;
		ret = report_full(old, s, &r);
	}
	if (ret == 0) {
		/* descending: each EXPUNGE is valid when it is sent */
		if (r.exp_seqs.n > 1)
			qsort(r.exp_seqs.v, r.exp_seqs.n, sizeof(uint32_t),
			      cmp_desc);
		ret = uids_to_ranges(r.exp_uids.v, r.exp_uids.n,
				     &ch->expunged_uids,
				     &ch->expunged_uid_ranges);
	}
	free(r.exp_uids.v);
	ch->expunged_seqs = r.exp_seqs.v;
	ch->expunged_count = r.exp_seqs.n;
	ch->changed_uids = r.changed.v;
	ch->changed_count = r.changed.n;
	ch->new_uids = r.added.v;
	ch->new_count = r.added.n;
	return ret;
}

MIX_API int mix_view_sync(struct mix_view *v, struct mix_view_changes *ch)
{
	struct mix_snap *s = newest_ref(v->idx, v->snap), *old = v->snap;
	int ret;

	memset(ch, 0, sizeof(*ch));
	if (!s)
		return 0;
	ret = report_fill(old, s, ch);
	if (ret < 0) {
		mix_view_changes_free(ch);
		mix_snap_unref(s);   /* the view stays where it was */
		return ret;
	}
	v->snap = s;
	mix_snap_unref(old);
	return 1;
}

MIX_API void mix_view_changes_free(struct mix_view_changes *ch)
{
	free(ch->expunged_seqs);
	free(ch->expunged_uids);
	free(ch->changed_uids);
	free(ch->new_uids);
	memset(ch, 0, sizeof(*ch));
}
