/*
 * The expunge history (docs/format.md §2.6, docs/condstore.md): which
 * UID ranges each expunging transaction removed, newest last, kept by the
 * builder within b->xhist_max ranges (a transaction's entries are dropped
 * together), encoded into and decoded from mix.index's "mix.expunges"
 * extension header.  Its nodes are reclaimable objects shared by the
 * snapshots that can reach them (reclaim.h).
 *
 * Writer role (builder) and opener (decode); readers use the published
 * list through modseq.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "format.h"
#include "snapshot.h"

static struct mix_xhist_node *xhist_node(uint64_t gen, uint64_t modseq,
					 const struct mix_log_uid_range *r,
					 uint32_t n)
{
	struct mix_xhist_node *x = malloc(sizeof(*x) + n * sizeof(x->r[0]));
	if (!x)
		return NULL;
	mix_robj_init(&x->robj, MIX_ROBJ_XHIST, gen);
	x->next = NULL;
	x->modseq = modseq;
	x->nranges = n;
	if (n)
		memcpy(x->r, r, n * sizeof(x->r[0]));
	return x;
}

/* Forget the oldest entries until at most half the bound is left (the
 * halving makes trimming O(1) amortized per entry).  docs/format.md §2.6:
 * oldest becomes the modseq of the newest forgotten entry and every kept
 * entry is strictly above it, so the entries of one transaction (several
 * EXPUNGE records, one modseq, adjacent in the list) go together: a
 * transaction is never half in the history.  That may forget every
 * entry, the newest transaction's included, when it alone passes the
 * bound; the history then answers from its modseq on. */
static void xhist_trim(struct mix_builder *b)
{
	struct mix_xhist *h = &b->xhist;
	const struct mix_xhist_node *x = h->head, *xn;
	uint32_t kept = 0, ranges = 0, i;
	uint64_t cut;

	for (; kept < h->count; kept++, x = x->next) {
		if (kept > 0 && ranges + x->nranges > b->xhist_max / 2)
			break;
		ranges += x->nranges;
	}
	if (kept == h->count)
		return;
	cut = x->modseq; /* the newest forgotten one */
	/* give back the kept entries of the transaction being cut */
	for (kept = 0, ranges = 0, x = h->head; kept < h->count &&
	     x->modseq > cut; kept++, x = x->next)
		ranges += x->nranges;
	h->oldest = cut;
	for (i = kept; i < h->count; i++, x = xn) {
		xn = x->next;
		mix_builder_retire(b, (struct mix_robj *)&x->robj);
	}
	if (kept == 0)
		h->head = NULL;
	h->count = kept;
	h->nranges = ranges;
}

int mix_builder_xhist_add(struct mix_builder *b, uint64_t modseq,
			  const struct mix_log_uid_range *r, uint32_t n)
{
	struct mix_xhist_node *x;
	/* not above oldest: the rest of a transaction the bound already
	 * forgot (§2.6), which no query would list */
	if (n == 0 || modseq <= b->xhist.oldest)
		return 0;
	if (!(x = xhist_node(b->gen, modseq, r, n)))
		return MIX_ENOMEM();
	x->next = b->xhist.head;
	b->xhist.head = x;
	b->xhist.count++;
	b->xhist.nranges += n;
	if (b->xhist_max && b->xhist.nranges > b->xhist_max)
		xhist_trim(b);
	return 0;
}

int mix_xhist_encode(const struct mix_xhist *h, uint8_t **buf_r,
		     uint32_t *size_r)
{
	const struct mix_xhist_node **v, *x = h->head;
	struct mix_xhist_header hd = { h->oldest, h->count, 0 };
	uint64_t size = sizeof(hd) + (uint64_t)h->count *
		sizeof(struct mix_xhist_entry) + (uint64_t)h->nranges * 8;
	uint32_t i;
	uint8_t *p;

	if (size > MIX_XHIST_HDR_MAX)
		return mix_err(MIX_ELIMIT, "expunge history of %llu bytes",
			       (unsigned long long)size);
	v = malloc((h->count + 1) * sizeof(*v));
	p = malloc(size);
	if (!v || !p) {
		free(v);
		free(p);
		return MIX_ENOMEM();
	}
	for (i = 0; i < h->count; i++, x = x->next) {
		/* §2.6, what the loader checks: above oldest, newest first
		 * here; a history that breaks it is not written at all (the
		 * checkpoint fails loudly instead of leaving a mix.index
		 * that does not open) */
		if (x->modseq <= h->oldest ||
		    (i > 0 && x->modseq > v[h->count - i]->modseq)) {
			free(v);
			free(p);
			return mix_err(MIX_ECORRUPT, "expunge history entry "
				       "%u: modseq %llu not above "
				       "oldest_modseq %llu or out of order "
				       "(format.md §2.6)", h->count - 1 - i,
				       (unsigned long long)x->modseq,
				       (unsigned long long)h->oldest);
		}
		v[h->count - 1 - i] = x;      /* oldest first in the file */
	}
	*buf_r = p;
	*size_r = (uint32_t)size;
	memcpy(p, &hd, sizeof(hd));
	p += sizeof(hd);
	for (i = 0; i < h->count; i++) {
		struct mix_xhist_entry e = { v[i]->modseq, v[i]->nranges, 0 };
		memcpy(p, &e, sizeof(e));
		memcpy(p + sizeof(e), v[i]->r, v[i]->nranges * 8);
		p += sizeof(e) + v[i]->nranges * 8;
	}
	free(v);
	return 0;
}

/* Parse the "mix.expunges" header data (hostile: from disk). */
int mix_xhist_decode(struct mix_builder *b, const uint8_t *p,
			uint32_t size)
{
	struct mix_xhist_header hd;
	uint64_t prev;
	uint32_t i, off = sizeof(hd);

	if (size < sizeof(hd))
		return mix_err(MIX_ECORRUPT, "mix.index: extension %s: "
			       "hdr_size %u below 16", MIX_EXT_NAME_EXPUNGES,
			       size);
	memcpy(&hd, p, sizeof(hd));
	if (hd.oldest_modseq > b->hdr.highest_modseq)
		return mix_err(MIX_ECORRUPT, "mix.index: extension %s: "
			       "oldest_modseq %llu above highest_modseq %llu",
			       MIX_EXT_NAME_EXPUNGES,
			       (unsigned long long)hd.oldest_modseq,
			       (unsigned long long)b->hdr.highest_modseq);
	b->xhist.oldest = prev = hd.oldest_modseq;
	for (i = 0; i < hd.count; i++) {
		struct mix_xhist_entry e;
		struct mix_xhist_node *x;
		uint32_t j;
		if (size - off < sizeof(e))
			goto bad;
		memcpy(&e, p + off, sizeof(e));
		off += sizeof(e);
		/* equal modseqs: several EXPUNGE records of one transaction */
		if (e.modseq < prev || e.modseq < hd.oldest_modseq ||
		    e.modseq > b->hdr.highest_modseq ||
		    e.nranges == 0 || (size - off) / 8 < e.nranges)
			goto bad;
		if (e.modseq == hd.oldest_modseq) {
			/* §2.6: the rest of a transaction trimmed between its
			 * records (written before the rule): it answers no
			 * query (those list modseqs above oldest), so it is
			 * dropped, and the next checkpoint writes without */
			off += e.nranges * 8;
			continue;
		}
		/* xhist_node copies the ranges with memcpy: any alignment */
		x = xhist_node(b->gen, e.modseq, (const void *)(p + off),
			       e.nranges);
		if (!x)
			return MIX_ENOMEM();
		x->next = b->xhist.head;
		b->xhist.head = x;
		b->xhist.count++;
		b->xhist.nranges += e.nranges;
		off += e.nranges * 8;
		for (j = 0; j < e.nranges; j++)
			if (x->r[j].first == 0 || x->r[j].first > x->r[j].last ||
			    (j && x->r[j].first <= x->r[j - 1].last))
				goto bad;
		prev = e.modseq;
	}
	if (off != size)
		goto bad;
	return 0;
bad:
	return mix_err(MIX_ECORRUPT, "mix.index: extension %s: entry %u at "
		       "data offset %u is malformed (modseqs must not decrease "
		       "within [oldest_modseq, highest_modseq], ranges be "
		       "sorted and inside the data; format.md §2.6)",
		       MIX_EXT_NAME_EXPUNGES, i, off);
}
