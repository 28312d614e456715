/*
 * Snapshot read path: UID and sequence lookups, iteration and the public
 * mix_snap_* accessors (docs/design.md "Snapshots and the read path").  Everything here runs inside a
 * read-side section on an immutable snapshot and writes no shared memory:
 * no reference counts, no statistics (invariant 1).
 *
 * UIDs of real mailboxes are nearly dense, so the lookup interpolates:
 * the chunk is guessed from the UID's place between the first and last
 * UID and corrected by a few steps (binary search if that fails); inside
 * a chunk whose UIDs are dense the position is uid - first_uid, otherwise
 * an interpolated guess narrows a binary search.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bufcache.h"
#include "index-file.h"
#include "snapshot.h"
#include "stats.h"

static inline uint32_t rec_uid(const uint8_t *r)
{
	uint32_t u;
	memcpy(&u, r, sizeof(u));
	return u;
}

/* Last chunk whose first UID is <= uid; the caller checked
 * uid >= c_first_uid[0]. */
static uint32_t find_chunk(const struct mix_snap *s, uint32_t uid)
{
	const uint32_t *f = s->c_first_uid;
	uint32_t n = s->nchunks, lo, hi, i;
	uint64_t span = (uint64_t)s->c_last_uid[n - 1] - f[0] + 1;
	int step;

	i = (uint32_t)((uint64_t)(uid - f[0]) * n / span);
	if (i >= n)
		i = n - 1;
	for (step = 0; step < 4; step++) {
		if (f[i] > uid)
			i--;
		else if (i + 1 < n && f[i + 1] <= uid)
			i++;
		else
			return i;
	}
	lo = 0;
	hi = n; /* answer in [lo, hi) */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (f[mid] <= uid)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Position of uid in chunk ci (first <= uid <= last), or where it would
 * be inserted. */
static int find_in_chunk(const struct mix_snap *s, uint32_t ci, uint32_t uid,
			 uint32_t *pos_r)
{
	uint32_t first = s->c_first_uid[ci], last = s->c_last_uid[ci];
	uint32_t count = s->c_seq[ci + 1] - s->c_seq[ci];
	uint32_t lo = 0, hi = count, guess, u;
	const uint8_t *recs = s->c_recs[ci];
	size_t rs = s->record_size;

	if (last - first + 1 == count) {
		/* dense: every UID in [first, last] is here */
		*pos_r = uid - first;
		return 1;
	}
	guess = (uint32_t)((uint64_t)(uid - first) * (count - 1) /
			   (last - first));
	u = rec_uid(recs + guess * rs);
	if (u == uid) {
		*pos_r = guess;
		return 1;
	}
	if (u < uid)
		lo = guess + 1;
	else
		hi = guess;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		u = rec_uid(recs + mid * rs);
		if (u < uid)
			lo = mid + 1;
		else if (u > uid)
			hi = mid;
		else {
			*pos_r = mid;
			return 1;
		}
	}
	*pos_r = lo;
	return 0;
}

int mix_snap_find_uid(const struct mix_snap *s, uint32_t uid,
		      uint32_t *ci_r, uint32_t *pos_r)
{
	uint32_t ci;

	if (s->nchunks == 0 || uid < s->c_first_uid[0]) {
		*ci_r = 0;
		*pos_r = 0;
		return 0;
	}
	ci = find_chunk(s, uid);
	*ci_r = ci;
	if (uid > s->c_last_uid[ci]) {
		*pos_r = s->c_seq[ci + 1] - s->c_seq[ci];
		return 0;
	}
	return find_in_chunk(s, ci, uid, pos_r);
}

void mix_snap_fill_record(const struct mix_snap *s, uint32_t ci, uint32_t pos,
			  struct mix_record *rec_r)
{
	const uint8_t *r = s->c_recs[ci] + (size_t)pos * s->record_size;
	rec_r->uid = rec_uid(r);
	rec_r->seq = s->c_seq[ci] + pos + 1;
	rec_r->flags = r[4];
	memcpy(&rec_r->modseq, r + MIX_REC_MODSEQ_OFFSET, 8);
	rec_r->keywords = r + MIX_REC_KEYWORDS_OFFSET;
	rec_r->keywords_bits = s->kw_bits;
	rec_r->raw = r;
}

/* Chunk holding sequence seq (1-based, <= messages_count). */
static uint32_t seq_chunk(const struct mix_snap *s, uint32_t seq)
{
	const uint32_t *cs = s->c_seq;
	uint32_t lo = 0, hi = s->nchunks; /* last i with cs[i] < seq */
	uint32_t guess = (uint32_t)((uint64_t)(seq - 1) * s->nchunks /
				    cs[s->nchunks]);
	if (cs[guess] < seq && seq <= cs[guess + 1])
		return guess;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (cs[mid] < seq)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* ---- public read API (include/mix/mix.h) ------------------------------ */

MIX_API uint32_t mix_snap_messages_count(const struct mix_snap *s)
{
	return s->hdr.messages_count;
}

MIX_API uint32_t mix_snap_next_uid(const struct mix_snap *s)
{
	return s->hdr.next_uid;
}

MIX_API uint32_t mix_snap_uid_validity(const struct mix_snap *s)
{
	return s->hdr.uid_validity;
}

MIX_API uint64_t mix_snap_highest_modseq(const struct mix_snap *s)
{
	return s->hdr.highest_modseq;
}

MIX_API void mix_snap_counts(const struct mix_snap *s,
			     struct mix_snap_counts *c)
{
	memset(c, 0, sizeof(*c));   /* reserved included */
	c->seen = s->hdr.seen_messages_count;
	c->deleted = s->hdr.deleted_messages_count;
	c->first_recent_uid = s->hdr.first_recent_uid;
	c->first_unseen_uid_lowwater = s->hdr.first_unseen_uid_lowwater;
	c->first_deleted_uid_lowwater = s->hdr.first_deleted_uid_lowwater;
}

MIX_API int mix_snap_lookup_uid(const struct mix_snap *s, uint32_t uid,
				struct mix_record *rec_r)
{
	uint32_t ci, pos;
	if (mix_snap_find_uid(s, uid, &ci, &pos)) {
		if (rec_r)
			mix_snap_fill_record(s, ci, pos, rec_r);
		return 1;
	}
	if (rec_r) {
		memset(rec_r, 0, sizeof(*rec_r));
		rec_r->seq = (s->nchunks ? s->c_seq[ci] : 0) + pos + 1;
	}
	return 0;
}

MIX_API int mix_snap_lookup_seq(const struct mix_snap *s, uint32_t seq,
				struct mix_record *rec_r)
{
	uint32_t ci;
	if (seq == 0 || seq > s->hdr.messages_count)
		return 0;
	ci = seq_chunk(s, seq);
	mix_snap_fill_record(s, ci, seq - 1 - s->c_seq[ci], rec_r);
	return 1;
}

MIX_API int mix_snap_uid_range_to_seq(const struct mix_snap *s,
				      uint32_t first_uid, uint32_t last_uid,
				      uint32_t *seq1_r, uint32_t *seq2_r)
{
	struct mix_record r1, r2;
	uint32_t seq1, seq2;
	if (first_uid > last_uid || s->hdr.messages_count == 0)
		return 0;
	(void)mix_snap_lookup_uid(s, first_uid, &r1);
	seq1 = r1.seq; /* first message with uid >= first_uid */
	if (mix_snap_lookup_uid(s, last_uid, &r2))
		seq2 = r2.seq;
	else
		seq2 = r2.seq - 1; /* last message with uid < last_uid */
	if (seq1 > seq2 || seq1 > s->hdr.messages_count)
		return 0;
	*seq1_r = seq1;
	*seq2_r = seq2;
	return 1;
}

MIX_API const void *mix_record_ext(const struct mix_snap *s,
				   const struct mix_record *rec,
				   uint32_t ext_id, size_t *size_r)
{
	const struct mix_ext *e;
	if (ext_id >= s->layout->ext_count)
		return NULL;
	e = &s->layout->exts[ext_id];
	if (e->rec_size == 0)
		return NULL;
	if (size_r)
		*size_r = e->rec_size;
	return (const uint8_t *)rec->raw + e->rec_offset;
}

MIX_API const void *mix_snap_ext_hdr(const struct mix_snap *s, uint32_t ext_id,
				     size_t *size_r)
{
	if (ext_id >= s->exthdrs->count || ext_id == MIX_EXT_KEYWORDS)
		return NULL;
	if (size_r)
		*size_r = s->exthdrs->e[ext_id].size;
	return s->exthdrs->e[ext_id].data;
}

MIX_API int mix_snap_ext_lookup(const struct mix_snap *s, const char *name,
				uint32_t *ext_id_r)
{
	uint32_t i;
	for (i = 0; i < s->layout->ext_count; i++) {
		if (strcmp(s->layout->exts[i].name, name) == 0) {
			*ext_id_r = i;
			return 1;
		}
	}
	return 0;
}

MIX_API uint32_t mix_snap_keyword_count(const struct mix_snap *s)
{
	return s->kw->count;
}

MIX_API const char *mix_snap_keyword_name(const struct mix_snap *s,
					  uint32_t idx)
{
	return idx < s->kw->count ? s->kw->names[idx] : NULL;
}

MIX_API int mix_snap_keyword_lookup(const struct mix_snap *s, const char *name,
				    uint32_t *idx_r)
{
	uint32_t i;
	for (i = 0; i < s->kw->count; i++) {
		if (strcmp(s->kw->names[i], name) == 0) {
			*idx_r = i;
			return 1;
		}
	}
	return 0;
}

MIX_API void mix_iter_init(struct mix_iter *it, const struct mix_snap *s,
			   uint32_t from)
{
	it->snap = s;
	it->seq = from ? from : 1;
	if (it->seq > s->hdr.messages_count) {
		it->chunk = s->nchunks;
		it->pos = 0;
		return;
	}
	it->chunk = seq_chunk(s, it->seq);
	it->pos = it->seq - 1 - s->c_seq[it->chunk];
}

MIX_API int mix_iter_next(struct mix_iter *it, struct mix_record *rec_r)
{
	const struct mix_snap *s = it->snap;
	while (it->chunk < s->nchunks &&
	       it->pos >= s->chunks[it->chunk]->count) {
		it->chunk++;
		it->pos = 0;
	}
	if (it->chunk >= s->nchunks)
		return 0;
	mix_snap_fill_record(s, it->chunk, it->pos, rec_r);
	it->pos++;
	it->seq++;
	return 1;
}

/* ---- freeing ---------------------------------------------------------- */

void mix_snap_free_shell(struct mix_snap *s)
{
	free(s);
}

void mix_robj_free(struct mix_robj *o)
{
	switch (o->kind) {
	case MIX_ROBJ_CHUNK: {
		struct mix_chunk *c = (struct mix_chunk *)o;
		/* heap_bytes is the buffer's size (cap × record size) */
		if (c->cap && !mix_bufcache_put(c->recs, c->heap_bytes))
			free(c->recs);
		__atomic_sub_fetch(&mix_stat_chunk_heap_bytes,
				   (int64_t)c->heap_bytes, __ATOMIC_RELAXED);
		free(c);
		break;
	}
	case MIX_ROBJ_MAP: {
		struct mix_map *m = (struct mix_map *)o;
		if (m->addr)
			munmap(m->addr, m->size);
		free(m);
		break;
	}
	default:
		free(o);
		break;
	}
}

int mix_snap_next_run(void *ctx, const uint8_t **recs_r, uint32_t *count_r)
{
	struct mix_snap_runs *it = ctx;
	const struct mix_snap *s = it->snap;
	while (it->next < s->nchunks && s->chunks[it->next]->count == 0)
		it->next++;
	if (it->next >= s->nchunks)
		return 0;
	*recs_r = s->chunks[it->next]->recs;
	*count_r = s->chunks[it->next]->count;
	it->next++;
	return 1;
}
