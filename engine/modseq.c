/*
 * CONDSTORE and QRESYNC on the read side (RFC 7162; docs/condstore.md):
 * CHANGEDSINCE iteration with chunk skipping, "expunged since" from the
 * snapshot's expunge history, and what SELECT (QRESYNC ...) must send.
 *
 * Everything here reads one immutable snapshot inside a read-side
 * section; nothing shared is written (results are malloc'd for the
 * caller).  Modseqs come from log positions (docs/format.md §4).
 *
 * The lost point (format.md §2.9, docs/condstore.md "What a power cut
 * takes back"): a modseq below it may belong to a change a power cut
 * took back, so a question asked from it is answered as from 0: every
 * message is "changed" and the expunge history cannot answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ranges.h"
#include "snapshot.h"

/* ---- UID range sets ------------------------------------------------------ */

struct rset {
	struct mix_uid_range *r;
	uint32_t n, cap;
};

/* Append without merging (normalize afterwards if out of order). */
static int rset_push(struct rset *s, uint32_t first, uint32_t last)
{
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 16;
		void *p = realloc(s->r, cap * sizeof(*s->r));
		if (!p)
			return MIX_ENOMEM();
		s->r = p;
		s->cap = cap;
	}
	s->r[s->n].first = first;
	s->r[s->n].last = last;
	s->n++;
	return 0;
}

/* Append in ascending order, merging with the last range. */
static int rset_add(struct rset *s, uint32_t first, uint32_t last)
{
	if (s->n && (uint64_t)s->r[s->n - 1].last + 1 >= first) {
		if (last > s->r[s->n - 1].last)
			s->r[s->n - 1].last = last;
		return 0;
	}
	return rset_push(s, first, last);
}

/* Sort and merge in place. */
static void rset_normalize(struct rset *s)
{
	s->n = mix_uid_ranges_normalize(s->r, s->n);
}

/* out = a ∩ b (both normalized). */
static int rset_intersect(const struct rset *a, const struct rset *b,
			  struct rset *out)
{
	uint32_t i = 0, j = 0;
	while (i < a->n && j < b->n) {
		uint32_t lo = a->r[i].first > b->r[j].first ? a->r[i].first
							    : b->r[j].first;
		uint32_t hi = a->r[i].last < b->r[j].last ? a->r[i].last
							  : b->r[j].last;
		if (lo <= hi && rset_add(out, lo, hi) < 0)
			return MIX_ENOMEM();
		if (a->r[i].last < b->r[j].last)
			i++;
		else
			j++;
	}
	return 0;
}

static int rset_copy(struct rset *s, const struct mix_uid_range *r,
		     uint32_t n)
{
	uint32_t i;
	for (i = 0; i < n; i++) {
		if (r[i].first == 0 || r[i].first > r[i].last)
			return mix_err(MIX_EINVAL, "bad UID range %u:%u",
				       r[i].first, r[i].last);
		if (rset_push(s, r[i].first, r[i].last) < 0)
			return MIX_ENOMEM();
	}
	rset_normalize(s);
	return 0;
}

/* ---- the lost point -------------------------------------------------------- */

MIX_API uint64_t mix_snap_lost_modseq(const struct mix_snap *s)
{
	return s->lost_modseq;   /* read from mix.lost when s was built */
}

/* since, or 0 when it is below the lost point. */
static uint64_t since_kept(const struct mix_snap *s, uint64_t since)
{
	return since < mix_snap_lost_modseq(s) ? 0 : since;
}

/* ---- CHANGEDSINCE ---------------------------------------------------------- */

MIX_API void mix_changed_iter_init(struct mix_changed_iter *it,
				   const struct mix_snap *snap, uint64_t since)
{
	it->snap = snap;
	it->since = since_kept(snap, since);
	it->chunk = 0;
	it->pos = 0;
}

static int filter_match(const struct mix_snap *s, const uint8_t *r,
			const struct mix_filter *f)
{
	uint32_t i;
	if ((r[4] & f->flags_set) != f->flags_set || (r[4] & f->flags_unset))
		return 0;
	for (i = 0; i < f->keyword_count; i++) {
		uint32_t k = f->keywords[i];
		if (k >= s->kw_bits ||
		    !(r[MIX_REC_KEYWORDS_OFFSET + k / 8] >> (k % 8) & 1))
			return 0;
	}
	return 1;
}

MIX_API int mix_changed_iter_next(struct mix_changed_iter *it,
				  const struct mix_filter *filter,
				  struct mix_record *rec_r)
{
	const struct mix_snap *s = it->snap;

	for (; it->chunk < s->nchunks; it->chunk++, it->pos = 0) {
		uint32_t ci = it->chunk;
		uint32_t count = s->c_seq[ci + 1] - s->c_seq[ci];
		/* the directory's modseq bounds the chunk: skip it unread */
		if (s->c_max_modseq[ci] <= it->since)
			continue;
		while (it->pos < count) {
			const uint8_t *r = s->c_recs[ci] +
					   (size_t)it->pos * s->record_size;
			uint64_t ms;
			it->pos++;
			memcpy(&ms, r + MIX_REC_MODSEQ_OFFSET, 8);
			if (ms <= it->since ||
			    (filter && !filter_match(s, r, filter)))
				continue;
			mix_snap_fill_record(s, ci, it->pos - 1, rec_r);
			return 1;
		}
	}
	return 0;
}

/* ---- expunge history ------------------------------------------------------- */

static int expunged_since(const struct mix_snap *s, uint64_t since,
			  struct rset *out)
{
	const struct mix_xhist_node *x = s->xhist.head;
	uint32_t i, j;

	if (since < s->xhist.oldest || since < mix_snap_lost_modseq(s))
		return 0;
	/* newest first: stop at the first entry not above since */
	for (i = 0; i < s->xhist.count && x->modseq > since; i++, x = x->next)
		for (j = 0; j < x->nranges; j++)
			if (rset_push(out, x->r[j].first, x->r[j].last) < 0)
				return MIX_ENOMEM();
	rset_normalize(out);
	return 1;
}

MIX_API int mix_snap_expunged_since(const struct mix_snap *s, uint64_t since,
				    struct mix_uid_range **ranges_r,
				    uint32_t *count_r, uint64_t *oldest_r)
{
	struct rset out = { 0 };
	int ret = expunged_since(s, since, &out);

	uint64_t lost = mix_snap_lost_modseq(s);

	*ranges_r = NULL;
	*count_r = 0;
	if (oldest_r)
		*oldest_r = s->xhist.oldest > lost ? s->xhist.oldest : lost;
	if (ret <= 0) {
		free(out.r);
		return ret;
	}
	*ranges_r = out.r;
	*count_r = out.n;
	return 1;
}

/* ---- QRESYNC --------------------------------------------------------------- */

/* Highest UID of a sequence-match pair that still has the client's
 * sequence number: no message below it was expunged since (RFC 7162
 * §3.2.5.2). */
static uint32_t match_floor(const struct mix_snap *s,
			    const struct mix_qresync_params *p)
{
	uint32_t i;
	for (i = p->match_count; i-- > 0;) {
		struct mix_record rec;
		if (mix_snap_lookup_uid(s, p->match_uids[i], &rec) &&
		    rec.seq == p->match_seqs[i])
			return p->match_uids[i];
	}
	return 0;
}

/* Fallback VANISHED: the candidate UIDs above floor that do not exist. */
static int vanished_fallback(const struct mix_snap *s, const struct rset *cand,
			     uint32_t floor, struct rset *out)
{
	uint32_t i;
	for (i = 0; i < cand->n; i++) {
		uint32_t a = cand->r[i].first, b = cand->r[i].last, seq1, seq2;
		struct mix_record rec;
		if (b <= floor)
			continue;
		if (a <= floor)
			a = floor + 1;
		if (!mix_snap_uid_range_to_seq(s, a, b, &seq1, &seq2)) {
			if (rset_add(out, a, b) < 0)
				return MIX_ENOMEM();
			continue;
		}
		for (; seq1 <= seq2; seq1++) {
			mix_snap_lookup_seq(s, seq1, &rec);
			if (rec.uid > a && rset_add(out, a, rec.uid - 1) < 0)
				return MIX_ENOMEM();
			a = rec.uid + 1;
		}
		if (a <= b && a != 0 && rset_add(out, a, b) < 0)
			return MIX_ENOMEM();
	}
	return 0;
}

static int qresync_changed(const struct mix_snap *s,
			   const struct mix_qresync_params *p,
			   const struct rset *known, struct rset *out)
{
	struct mix_changed_iter it;
	struct mix_record rec;
	uint32_t k = 0, last_seq = 0;

	mix_changed_iter_init(&it, s, p->modseq);
	while (mix_changed_iter_next(&it, NULL, &rec)) {
		if (known) {
			while (k < known->n && known->r[k].last < rec.uid)
				k++;
			if (k == known->n || known->r[k].first > rec.uid)
				continue;
		}
		/* extend only over consecutive messages: the set is exact */
		if (out->n && last_seq + 1 == rec.seq)
			out->r[out->n - 1].last = rec.uid;
		else if (rset_add(out, rec.uid, rec.uid) < 0)
			return MIX_ENOMEM();
		last_seq = rec.seq;
	}
	return 0;
}

MIX_API int mix_snap_qresync(const struct mix_snap *s,
			     const struct mix_qresync_params *p,
			     struct mix_qresync_result *res)
{
	struct rset known = { 0 }, exp = { 0 }, van = { 0 }, chg = { 0 };
	int ret, have_known = p->known_uids != NULL;

	memset(res, 0, sizeof(*res));
	if (p->uid_validity != s->hdr.uid_validity) {
		res->uid_validity_mismatch = 1;
		return 0;
	}
	if (p->match_count && (!p->match_seqs || !p->match_uids))
		return mix_err(MIX_EINVAL, "sequence match data without arrays");
	if (have_known)
		ret = rset_copy(&known, p->known_uids, p->known_uids_count);
	else
		ret = s->hdr.next_uid > 1 ?
			rset_add(&known, 1, s->hdr.next_uid - 1) : 0;
	if (ret == 0)
		ret = expunged_since(s, p->modseq, &exp);
	if (ret == 1) {
		res->precise = 1;
		ret = rset_intersect(&exp, &known, &van);
	} else if (ret == 0) {
		/* The sequence-match floor rests on expunges never being
		 * undone: below the lost point they may be (a message the
		 * client saw expunged back after a power cut shifts the
		 * sequence numbers as an expunge since would, and the two
		 * cancel out), so there every known UID is looked up (found
		 * by a lifecycle check: a UID expunged after the cut was left
		 * out of VANISHED) */
		uint32_t floor = p->modseq < mix_snap_lost_modseq(s) ? 0 :
				 match_floor(s, p);
		ret = vanished_fallback(s, &known, floor, &van);
	}
	/* below the lost point a message the client saw expunged may be
	 * back (the expunge was lost): it is reported though not known, so
	 * that the client hears of it (its FETCH, and EXISTS) */
	if (ret == 0)
		ret = qresync_changed(s, p, have_known &&
				      p->modseq >= mix_snap_lost_modseq(s) ?
				      &known : NULL, &chg);
	free(known.r);
	free(exp.r);
	if (ret < 0) {
		free(van.r);
		free(chg.r);
		return ret;
	}
	res->vanished = van.r;
	res->vanished_count = van.n;
	res->changed = chg.r;
	res->changed_count = chg.n;
	return 0;
}

MIX_API void mix_qresync_result_free(struct mix_qresync_result *r)
{
	free(r->vanished);
	free(r->changed);
	memset(r, 0, sizeof(*r));
}
