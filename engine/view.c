/*
 * Views (docs/design.md §Views): a pinned snapshot per IMAP session, and
 * the change report that moves it to the newest one.  Owned by one thread
 * at a time (the session's); the writer never touches a view.
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
 * whole.  A view reports its own snapshot's HIGHESTMODSEQ (less while it
 * holds expunges, below), so it never announces one above an expunge it
 * has not reported (RFC 7162 errata 1810).
 *
 * Held expunges (MIX_VIEW_SYNC_HOLD_EXPUNGES; docs/api.md "Views",
 * "Held expunges"): a holding sync moves the view to the newest snapshot
 * but keeps the messages expunged since in the view, sorted by UID in
 * `held`, each with the view sequence number the session knows it by and
 * a copy of its last record (in `recs`, 8-byte aligned).  The view's
 * messages are the snapshot's plus the held ones, merged by UID; since
 * new UIDs are above every UID the session knows, a holding sync never
 * renumbers a message.  A record copy is read with the layout of the
 * snapshot it came from: the view's own snapshot while that has the
 * same record layout (HELD_CUR), else a snapshot the view keeps a
 * reference on for it (`pins`: one per layout change during a holding
 * period — an extension registered, the keyword bitmap grown — not one
 * per sync).  Invariants: held[] is sorted by uid and by seq;
 * held[i].seq = (messages of snap with a smaller UID) + i + 1; no held
 * UID is in snap; a HELD_CUR copy has snap's record layout;
 * held_modseq (the lowest modseq of a transaction that expunged a held
 * message, or a safe lower bound) is 0 iff nothing is held, and the
 * HIGHESTMODSEQ the view reports stays below it.  A sync that allows
 * expunges reports every held message and drops copies and pins.  Cost:
 * O(held * log messages) per sync on top of the report; memory O(held
 * records), not O(mailbox).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "index.h"
#include "reclaim.h"

#define HELD_CUR UINT32_MAX

struct held {
	uint32_t uid;
	uint32_t seq;    /* the session's sequence number of it */
	uint32_t pin;    /* the layout of its copy: pins[pin], or HELD_CUR */
	size_t rec;      /* offset of its record copy in recs */
};

struct mix_view {
	struct mix_index *idx;
	struct mix_snap *snap;   /* one reference held */
	struct held *held;       /* nheld, sorted by uid */
	uint32_t nheld;
	uint8_t *recs;           /* record copies of the held messages */
	size_t recs_len, recs_cap;
	struct mix_snap **pins;  /* npins, one reference held on each */
	uint32_t npins;
	uint64_t held_modseq;
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

/* Drop every held message and the references on their snapshots. */
static void held_drop(struct mix_view *v)
{
	uint32_t i;
	for (i = 0; i < v->npins; i++)
		mix_snap_unref(v->pins[i]);
	free(v->pins);
	free(v->held);
	free(v->recs);
	v->pins = NULL;
	v->held = NULL;
	v->recs = NULL;
	v->recs_len = v->recs_cap = 0;
	v->npins = v->nheld = 0;
	v->held_modseq = 0;
}

MIX_API int mix_view_open(struct mix_index *idx, struct mix_view **view_r)
{
	struct mix_view *v = calloc(1, sizeof(*v));
	*view_r = NULL;
	if (!v)
		return MIX_ENOMEM();
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
	held_drop(v);
	mix_snap_unref(v->snap);
	/* ORDER(users): release: the view's last use of the index happens
	 * before a close that sees the count drop frees it */
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
	int had = v->nheld != 0;

	held_drop(v);   /* no report: the session keeps no sequence numbers */
	if (!s)
		return had;
	v->snap = s;
	mix_snap_unref(old);
	return 1;
}

/* ---- the view's messages: the snapshot's plus the held ones ------------- */

/* Held messages with a view sequence number below seq. */
static uint32_t held_below_seq(const struct mix_view *v, uint32_t seq)
{
	uint32_t a = 0, b = v->nheld;
	while (a < b) {
		uint32_t mid = a + (b - a) / 2;
		if (v->held[mid].seq < seq)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

/* Held messages with a UID below uid. */
static uint32_t held_below_uid(const struct held *h, uint32_t n, uint32_t uid)
{
	uint32_t a = 0, b = n;
	while (a < b) {
		uint32_t mid = a + (b - a) / 2;
		if (h[mid].uid < uid)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

/* The record of held message i (its copy, as mix_snap_fill_record reads
 * a record), numbered as the session knows it. */
static int held_record(const struct mix_view *v, uint32_t i,
		       struct mix_record *rec_r, const struct mix_snap **snap_r)
{
	const struct held *h = &v->held[i];
	const struct mix_snap *p = h->pin == HELD_CUR ? v->snap
						       : v->pins[h->pin];
	const uint8_t *r = v->recs + h->rec;

	if (rec_r) {
		rec_r->uid = h->uid;
		rec_r->seq = h->seq;
		rec_r->flags = r[4];
		memcpy(&rec_r->modseq, r + MIX_REC_MODSEQ_OFFSET, 8);
		rec_r->keywords = r + MIX_REC_KEYWORDS_OFFSET;
		rec_r->keywords_bits = p->kw_bits;
		rec_r->raw = r;
	}
	if (snap_r)
		*snap_r = p;
	return MIX_VIEW_EXPUNGED;
}

MIX_API uint32_t mix_view_messages_count(struct mix_view *v)
{
	return v->snap->hdr.messages_count + v->nheld;
}

MIX_API uint64_t mix_view_highest_modseq(struct mix_view *v)
{
	uint64_t h = v->snap->hdr.highest_modseq;
	return v->nheld && v->held_modseq - 1 < h ? v->held_modseq - 1 : h;
}

MIX_API uint32_t mix_view_held_count(struct mix_view *v)
{
	return v->nheld;
}

MIX_API int mix_view_lookup_seq(struct mix_view *v, uint32_t seq,
				struct mix_record *rec_r,
				const struct mix_snap **snap_r)
{
	uint32_t j = held_below_seq(v, seq);
	struct mix_record tmp;

	if (j < v->nheld && v->held[j].seq == seq)
		return held_record(v, j, rec_r, snap_r);
	if (!rec_r)
		rec_r = &tmp;
	if (seq <= j || !mix_snap_lookup_seq(v->snap, seq - j, rec_r))
		return 0;
	rec_r->seq = seq;
	if (snap_r)
		*snap_r = v->snap;
	return 1;
}

MIX_API int mix_view_lookup_uid(struct mix_view *v, uint32_t uid,
				struct mix_record *rec_r,
				const struct mix_snap **snap_r)
{
	uint32_t j = held_below_uid(v->held, v->nheld, uid);
	struct mix_record tmp;
	int found;

	if (j < v->nheld && v->held[j].uid == uid)
		return held_record(v, j, rec_r, snap_r);
	if (!rec_r)
		rec_r = &tmp;
	found = mix_snap_lookup_uid(v->snap, uid, rec_r);
	rec_r->seq += j;
	if (snap_r)
		*snap_r = found ? v->snap : NULL;
	return found;
}

MIX_API int mix_view_is_expunged(struct mix_view *v, uint32_t uid)
{
	uint32_t j = held_below_uid(v->held, v->nheld, uid);
	return j < v->nheld && v->held[j].uid == uid;
}

MIX_API int mix_view_uid_range_to_seq(struct mix_view *v, uint32_t first_uid,
				      uint32_t last_uid, uint32_t *seq1_r,
				      uint32_t *seq2_r)
{
	struct mix_record r1, r2;
	uint32_t seq1, seq2;

	if (first_uid > last_uid)
		return 0;
	(void)mix_view_lookup_uid(v, first_uid, &r1, NULL);
	seq1 = r1.seq;   /* first message with uid >= first_uid */
	seq2 = mix_view_lookup_uid(v, last_uid, &r2, NULL) ? r2.seq
							    : r2.seq - 1;
	if (seq1 > seq2 || seq1 > mix_view_messages_count(v))
		return 0;
	*seq1_r = seq1;
	*seq2_r = seq2;
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
			return MIX_ENOMEM();
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
		return MIX_ENOMEM();
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

/* The expunges between two snapshots (exp_uids ascending, exp_seqs the
 * old snapshot's, in the same order), changes and new messages. */
struct report {
	struct u32v exp_seqs, exp_uids, changed, added;
	int full_compare;
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

static int report_compute(const struct mix_snap *old, const struct mix_snap *s,
			  struct report *r)
{
	int ret = report_expunges(old, s, r);
	if (ret == 1)
		return report_changes(old, s, r);
	if (ret == 0) {
		r->full_compare = 1;
		return report_full(old, s, r);
	}
	return ret;
}

static void report_free(struct report *r)
{
	free(r->exp_seqs.v);
	free(r->exp_uids.v);
	free(r->changed.v);
	free(r->added.v);
}

/* The lowest modseq of a transaction after old that expunged one of the
 * UIDs x[0..n) (ascending), from s's history; old's HIGHESTMODSEQ + 1
 * (a lower bound: every such expunge came after old) when the history
 * does not reach back. */
static uint64_t first_expunge_modseq(const struct mix_snap *old,
				     const struct mix_snap *s,
				     const uint32_t *x, uint32_t n)
{
	const struct mix_xhist_node *node = s->xhist.head;
	uint64_t since = old->hdr.highest_modseq, best = 0;
	uint32_t i, j;

	if (since < s->xhist.oldest)
		return since + 1;
	for (i = 0; i < s->xhist.count && node->modseq > since;
	     i++, node = node->next) {
		for (j = 0; j < node->nranges; j++) {
			uint32_t k = 0, b = n;
			while (k < b) {   /* first x >= the range's first */
				uint32_t mid = k + (b - k) / 2;
				if (x[mid] < node->r[j].first)
					k = mid + 1;
				else
					b = mid;
			}
			if (k < n && x[k] <= node->r[j].last) {
				best = node->modseq;  /* newest first */
				break;
			}
		}
	}
	return best ? best : since + 1;
}

/* The view's next held list: its held messages and the UIDs x (newly
 * expunged; their copies at rec0, rec0 + stride, ... in recs), merged
 * by UID and numbered against s. */
static int held_merge(const struct mix_view *v, const struct mix_snap *s,
		      const uint32_t *x, uint32_t nx, size_t rec0,
		      size_t stride, struct held **held_r)
{
	uint32_t n = v->nheld + nx, i = 0, j = 0, k;
	struct held *h = malloc((n ? n : 1) * sizeof(*h));
	struct mix_record rec;

	if (!h)
		return MIX_ENOMEM();
	for (k = 0; k < n; k++) {
		if (j == nx || (i < v->nheld && v->held[i].uid < x[j]))
			h[k] = v->held[i++];
		else {
			h[k].uid = x[j];
			h[k].pin = HELD_CUR;
			h[k].rec = rec0 + (size_t)j++ * stride;
		}
		(void)mix_snap_lookup_uid(s, h[k].uid, &rec);
		h[k].seq = rec.seq + k;  /* rec.seq - 1 smaller UIDs in s */
	}
	*held_r = h;
	return 0;
}

/* Release: the held messages and the new expunges x (old snapshot seqs
 * xs) as the session knows them, into r->exp_* (view seqs). */
static int held_release(const struct mix_view *v, struct report *r)
{
	struct u32v seqs = { 0 }, uids = { 0 };
	uint32_t i = 0, j = 0;
	int ret = 0;

	while (ret == 0 && (i < v->nheld || j < r->exp_uids.n)) {
		if (j == r->exp_uids.n ||
		    (i < v->nheld && v->held[i].uid < r->exp_uids.v[j])) {
			ret = u32v_add(&uids, v->held[i].uid);
			if (ret == 0)
				ret = u32v_add(&seqs, v->held[i].seq);
			i++;
		} else {
			ret = u32v_add(&uids, r->exp_uids.v[j]);
			if (ret == 0)
				ret = u32v_add(&seqs, r->exp_seqs.v[j] + i);
			j++;
		}
	}
	if (ret < 0) {
		free(seqs.v);
		free(uids.v);
		return ret;
	}
	free(r->exp_seqs.v);
	free(r->exp_uids.v);
	r->exp_seqs = seqs;
	r->exp_uids = uids;
	return 0;
}

/* Hand the report's arrays over to ch (expunges only when exp). */
static int report_out(struct report *r, int exp, struct mix_view_changes *ch)
{
	int ret = 0;
	ch->full_compare = r->full_compare;
	if (exp) {
		/* descending: each EXPUNGE is valid when it is sent */
		if (r->exp_seqs.n > 1)
			qsort(r->exp_seqs.v, r->exp_seqs.n, sizeof(uint32_t),
			      cmp_desc);
		ret = uids_to_ranges(r->exp_uids.v, r->exp_uids.n,
				     &ch->expunged_uids,
				     &ch->expunged_uid_ranges);
		ch->expunged_seqs = r->exp_seqs.v;
		ch->expunged_count = r->exp_seqs.n;
		r->exp_seqs.v = NULL;
	}
	ch->changed_uids = r->changed.v;
	ch->changed_count = r->changed.n;
	ch->new_uids = r->added.v;
	ch->new_count = r->added.n;
	r->changed.v = r->added.v = NULL;
	return ret;
}

/* Whether a record copy made with a's layout reads the same with b's:
 * same record size and keyword bitmap, a's extensions where they were,
 * b's others without record data. */
static int same_layout(const struct mix_snap *a, const struct mix_snap *b)
{
	const struct mix_layout *la = a->layout, *lb = b->layout;
	uint32_t i;

	if (la == lb)
		return 1;
	if (a->record_size != b->record_size || a->kw_bits != b->kw_bits ||
	    la->ext_count > lb->ext_count)
		return 0;
	for (i = 0; i < lb->ext_count; i++) {
		if (i >= la->ext_count ? lb->exts[i].rec_size != 0 :
		    la->exts[i].rec_offset != lb->exts[i].rec_offset ||
		    la->exts[i].rec_size != lb->exts[i].rec_size)
			return 0;
	}
	return 1;
}

/* Copy the records of the UIDs x (all in old) after the end of recs,
 * stride bytes apart; recs_len stays (the caller commits them). */
static int copy_records(struct mix_view *v, const struct mix_snap *old,
			const uint32_t *x, uint32_t nx, size_t stride)
{
	size_t need = v->recs_len + (size_t)nx * stride, cap = v->recs_cap;
	uint8_t *dst;
	uint32_t i;

	if (need > cap) {
		for (cap = cap ? cap : 4096; cap < need; cap *= 2)
			;
		if (!(dst = realloc(v->recs, cap)))
			return MIX_ENOMEM();
		v->recs = dst;   /* same content, more room */
		v->recs_cap = cap;
	}
	for (i = 0; i < nx; i++) {
		struct mix_record rec;
		dst = v->recs + v->recs_len + (size_t)i * stride;
		memset(dst, 0, stride);
		/* present: the report took x from old */
		if (mix_snap_lookup_uid(old, x[i], &rec))
			memcpy(dst, rec.raw, old->record_size);
	}
	return 0;
}

static int held_has_cur(const struct mix_view *v)
{
	uint32_t i;
	for (i = 0; i < v->nheld; i++)
		if (v->held[i].pin == HELD_CUR)
			return 1;
	return 0;
}

/* A holding sync from old to s with report r: the new expunges' record
 * copies, the view's next held list and, when s reads the copies
 * differently, a reference on old to read them with; all built before
 * anything of the view changes. */
static int sync_hold(struct mix_view *v, struct mix_snap *old,
		     struct mix_snap *s, struct report *r,
		     struct mix_view_changes *ch)
{
	size_t stride = ((size_t)old->record_size + 7) & ~(size_t)7;
	uint32_t nx = r->exp_uids.n, i;
	struct mix_snap **pins;
	struct held *h = NULL;
	int relayout, ret;

	relayout = (nx || held_has_cur(v)) && !same_layout(old, s);
	ret = report_out(r, 0, ch);   /* no expunges: cannot fail */
	if (ret == 0 && nx)
		ret = copy_records(v, old, r->exp_uids.v, nx, stride);
	if (ret == 0 && relayout) {
		pins = realloc(v->pins, (v->npins + 1) * sizeof(*pins));
		if (!pins)
			ret = -ENOMEM;
		else
			v->pins = pins;   /* same content, room for one more */
	}
	if (ret == 0)
		ret = held_merge(v, s, r->exp_uids.v, nx, v->recs_len, stride,
				 &h);
	if (ret < 0)
		return ret;
	if (nx && !v->nheld)
		v->held_modseq = first_expunge_modseq(old, s, r->exp_uids.v,
						      nx);
	free(v->held);
	v->held = h;
	v->nheld += nx;
	v->recs_len += (size_t)nx * stride;
	if (relayout) {
		/* the copies made with old's layout are read with old's */
		for (i = 0; i < v->nheld; i++)
			if (h[i].pin == HELD_CUR)
				h[i].pin = v->npins;
		v->pins[v->npins++] = old;   /* the view's reference moves */
	} else {
		mix_snap_unref(old);
	}
	v->snap = s;
	ch->held_count = v->nheld;
	return 0;
}

MIX_API int mix_view_sync_flags(struct mix_view *v, unsigned flags,
				struct mix_view_changes *ch)
{
	struct mix_snap *s, *old = v->snap;
	int hold = (flags & MIX_VIEW_SYNC_HOLD_EXPUNGES) != 0;
	struct report r;
	int ret;

	memset(ch, 0, sizeof(*ch));
	if (flags & ~(unsigned)MIX_VIEW_SYNC_HOLD_EXPUNGES)
		return mix_err(MIX_EINVAL, "mix_view_sync_flags: unknown flags "
			       "0x%x", flags);
	s = newest_ref(v->idx, old);
	if (!s && !hold && v->nheld) {
		/* nothing new, but the held expunges are due: a move to
		 * the same snapshot (we hold a reference already) */
		s = old;
		/* ORDER(view-ref): the view holds a reference on s, so refs
		 * is >= 1 and s cannot be freed meanwhile: a relaxed
		 * increment suffices (the unref pairs with acq_rel) */
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	}
	if (!s)
		return 0;
	memset(&r, 0, sizeof(r));
	ch->old_messages_count = mix_view_messages_count(v);
	ch->old_highest_modseq = mix_view_highest_modseq(v);
	ret = report_compute(old, s, &r);
	if (ret == 0 && hold)
		ret = sync_hold(v, old, s, &r, ch);
	else if (ret == 0) {
		ret = held_release(v, &r);
		if (ret == 0)
			ret = report_out(&r, 1, ch);
		if (ret == 0) {
			held_drop(v);
			v->snap = s;
			mix_snap_unref(old);
		}
	}
	report_free(&r);
	if (ret < 0) {
		mix_view_changes_free(ch);
		mix_snap_unref(s);   /* the view stays where it was */
		return ret;
	}
	ch->new_messages_count = mix_view_messages_count(v);
	ch->new_highest_modseq = mix_view_highest_modseq(v);
	return 1;
}

MIX_API int mix_view_sync(struct mix_view *v, struct mix_view_changes *ch)
{
	return mix_view_sync_flags(v, 0, ch);
}

MIX_API void mix_view_changes_free(struct mix_view_changes *ch)
{
	free(ch->expunged_seqs);
	free(ch->expunged_uids);
	free(ch->changed_uids);
	free(ch->new_uids);
	memset(ch, 0, sizeof(*ch));
}
