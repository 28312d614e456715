/*
 * Building the next snapshot (writer thread only; docs/design.md "Snapshots and the read path").
 *
 * A builder starts from the current snapshot's directory and changes it
 * copy-on-write: a chunk born in this build (robj.born_gen == gen) is
 * private and changed in place; any other chunk is copied on its first
 * change and the original goes on the builder's retired list, to be freed
 * by reclaim.c once no snapshot that holds it is alive.  Layout, keyword
 * list and extension headers follow the same rule.  Nothing a published
 * snapshot can reach is ever written.
 *
 * Every mutation keeps the header exact: messages_count, seen/deleted
 * counts, the unseen/deleted low-water UIDs (= first such UID, or next_uid
 * when there is none) and highest_modseq.  Mutations report the UIDs they
 * actually changed, so the writer logs only effective changes and a no-op
 * never raises a modseq; replay runs the same functions on the logged
 * ranges, so the live state and a replayed state cannot diverge.
 *
 * This file: chunks and the directory, begin/abort/finish, records
 * (append, expunge, per-record changes).  Layout, keywords and extension
 * headers are in snapshot-layout.c; the states a build starts from
 * (empty, mix.index, rebase after a checkpoint) in snapshot-load.c; the
 * expunge history in xhist.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bufcache.h"
#include "err.h"
#include "index-file.h"
#include "snapshot-build.h"
#include "snapshot.h"
#include "stats.h"

static inline void r_set_modseq(uint8_t *r, uint64_t modseq)
{
	memcpy(r + MIX_REC_MODSEQ_OFFSET, &modseq, 8);
}

static inline uint16_t b_rs(const struct mix_builder *b)
{
	return b->layout->record_size;
}

static inline uint8_t *c_rec(const struct mix_builder *b, struct mix_chunk *c,
			     uint32_t pos)
{
	return c->recs + (size_t)pos * b_rs(b);
}

/* Tracks maximal runs of changed records whose UIDs are consecutive
 * numbers, so a range names exactly the changed UIDs (the expunge history
 * answers QRESYNC with them). */
struct run {
	struct mix_ranges *out;
	int open;
};

static int run_changed(struct run *run, uint32_t uid)
{
	if (!run->out)
		return 0;
	if (run->open && run->out->r[run->out->count - 1].last + 1 == uid) {
		run->out->r[run->out->count - 1].last = uid;
		return 0;
	}
	run->open = 1;
	return mix_ranges_add(run->out, uid, uid);
}

/* ---- object lifetime inside a build ----------------------------------- */

void mix_chunk_meta_copy(struct mix_chunk *to, const struct mix_chunk *from)
{
	to->count = from->count;
	to->first_uid = from->first_uid;
	to->last_uid = from->last_uid;
	to->max_modseq = from->max_modseq;
	to->n_unseen = from->n_unseen;
	to->n_deleted = from->n_deleted;
}

void mix_robj_init(struct mix_robj *o, uint32_t kind, uint64_t gen)
{
	o->next = NULL;
	o->born_gen = gen;
	o->dead_gen = 0;
	o->kind = kind;
}

/* o leaves the state being built: free it now if no snapshot ever saw it,
 * else hand it to the reclaimer with the generation it died in. */
void mix_builder_retire(struct mix_builder *b, struct mix_robj *o)
{
	if (o->born_gen == b->gen) {
		mix_robj_free(o);
		return;
	}
	o->dead_gen = b->gen;
	o->next = b->retired;
	b->retired = o;
}

static struct mix_chunk *chunk_new(struct mix_builder *b, uint32_t cap)
{
	struct mix_chunk *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->recs = mix_bufcache_get((size_t)cap * b_rs(b));
	if (!c->recs)
		c->recs = malloc((size_t)cap * b_rs(b));
	if (!c->recs) {
		free(c);
		return NULL;
	}
	mix_robj_init(&c->robj, MIX_ROBJ_CHUNK, b->gen);
	c->cap = cap;
	c->heap_bytes = (size_t)cap * b_rs(b);
	__atomic_add_fetch(&mix_stat_chunk_heap_bytes, (int64_t)c->heap_bytes,
			   __ATOMIC_RELAXED);
	return c;
}

/* A chunk the build may change in place: born in this build and on the
 * heap.  A chunk that points into a mapping (cap 0) is read-only even in
 * the build that created it (recovery replays on the generation that
 * loaded mix.index). */
static int chunk_writable(const struct mix_builder *b,
			  const struct mix_chunk *c)
{
	return c->robj.born_gen == b->gen && c->cap > 0;
}

/* Make chunk ci private (copy on write) with room for at least cap. */
static struct mix_chunk *chunk_private(struct mix_builder *b, uint32_t ci,
				       uint32_t cap)
{
	struct mix_chunk *old = b->chunks[ci], *c;
	if (chunk_writable(b, old) && old->cap >= cap)
		return old;
	c = chunk_new(b, cap > old->count ? cap : old->count);
	if (!c)
		return NULL;
	memcpy(c->recs, old->recs, (size_t)old->count * b_rs(b));
	mix_chunk_meta_copy(c, old);
	b->chunks[ci] = c;
	mix_builder_retire(b, &old->robj);
	return c;
}

int mix_builder_dir_reserve(struct mix_builder *b, uint32_t more)
{
	uint32_t need = b->nchunks + more, ncap;
	struct mix_chunk **n;
	if (need <= b->chunks_cap)
		return 0;
	ncap = b->chunks_cap ? b->chunks_cap : 16;
	while (ncap < need)
		ncap *= 2;
	n = realloc(b->chunks, ncap * sizeof(*n));
	if (!n)
		return MIX_ENOMEM();
	b->chunks = n;
	b->chunks_cap = ncap;
	return 0;
}

static void dir_remove(struct mix_builder *b, uint32_t ci)
{
	memmove(&b->chunks[ci], &b->chunks[ci + 1],
		(b->nchunks - ci - 1) * sizeof(b->chunks[0]));
	b->nchunks--;
}

/* ---- begin / abort / finish ------------------------------------------- */

int mix_builder_begin(struct mix_builder *b, const struct mix_snap *base)
{
	memset(b, 0, sizeof(*b));
	b->gen = base->gen + 1;
	b->hdr = base->hdr;
	b->layout = (struct mix_layout *)base->layout;
	b->kw = (struct mix_kwlist *)base->kw;
	b->exthdrs = (struct mix_exthdrs *)base->exthdrs;
	b->xhist = base->xhist;
	if (mix_builder_dir_reserve(b, base->nchunks + 1) < 0)
		return MIX_ENOMEM();
	memcpy(b->chunks, base->chunks, base->nchunks * sizeof(b->chunks[0]));
	b->nchunks = base->nchunks;
	return 0;
}

void mix_builder_abort(struct mix_builder *b)
{
	uint32_t i;
	struct mix_robj *o, *next;
	const struct mix_xhist_node *x = b->xhist.head, *xn;
	for (i = 0; i < b->nchunks; i++)
		if (mix_builder_is_private(b, &b->chunks[i]->robj))
			mix_robj_free(&b->chunks[i]->robj);
	for (i = 0; i < b->xhist.count && x && mix_builder_is_private(b, &x->robj);
	     i++, x = xn) {
		xn = x->next;
		mix_robj_free((struct mix_robj *)&x->robj);
	}
	if (b->layout && mix_builder_is_private(b, &b->layout->robj))
		mix_robj_free(&b->layout->robj);
	if (b->kw && mix_builder_is_private(b, &b->kw->robj))
		mix_robj_free(&b->kw->robj);
	if (b->exthdrs && mix_builder_is_private(b, &b->exthdrs->robj))
		mix_robj_free(&b->exthdrs->robj);
	/* retired shared objects are still reachable from the base */
	for (o = b->retired; o; o = next) {
		next = o->next;
		o->next = NULL;
		o->dead_gen = 0;
	}
	free(b->chunks);
	memset(b, 0, sizeof(*b));
}

/* Merge neighbours that are both small (after expunges). */
static int merge_small(struct mix_builder *b)
{
	uint32_t i = 0;
	while (i + 1 < b->nchunks) {
		struct mix_chunk *x = b->chunks[i], *y = b->chunks[i + 1], *m;
		if (x->count + y->count > MIX_CHUNK_MAX / 2 ||
		    (!mix_builder_is_private(b, &x->robj) && !mix_builder_is_private(b, &y->robj))) {
			i++;
			continue;
		}
		m = chunk_new(b, i + 2 == b->nchunks ? MIX_CHUNK_MAX
						      : x->count + y->count);
		if (!m)
			return MIX_ENOMEM();
		memcpy(m->recs, x->recs, (size_t)x->count * b_rs(b));
		memcpy(c_rec(b, m, x->count), y->recs,
		       (size_t)y->count * b_rs(b));
		m->count = x->count + y->count;
		m->first_uid = x->first_uid;
		m->last_uid = y->last_uid;
		m->max_modseq = x->max_modseq > y->max_modseq ? x->max_modseq
							      : y->max_modseq;
		m->n_unseen = x->n_unseen + y->n_unseen;
		m->n_deleted = x->n_deleted + y->n_deleted;
		b->chunks[i] = m;
		dir_remove(b, i + 1);
		mix_builder_retire(b, &x->robj);
		mix_builder_retire(b, &y->robj);
	}
	return 0;
}

static size_t up8(size_t n) { return (n + 7) & ~(size_t)7; }

/* The lost point in b's extension headers (format.md §2.9), or 0: a
 * load and a compare per publish (the layout knows the id). */
uint64_t mix_builder_lost_modseq(const struct mix_builder *b)
{
	uint32_t id = b->layout->lost_ext;
	uint64_t v = 0;

	if (id != 0 && id < b->exthdrs->count &&
	    b->exthdrs->e[id].size == sizeof(v))
		memcpy(&v, b->exthdrs->e[id].data, sizeof(v));
	return v;
}

int mix_builder_finish(struct mix_builder *b, struct mix_snap **snap_r,
		       struct mix_robj **retired_r)
{
	struct mix_snap *s;
	uint32_t n, i, seq = 0;
	size_t off_first, off_last, off_recs, off_seq, off_mod, off_chunks;
	size_t total;
	uint8_t *mem;

	if (merge_small(b) < 0)
		return MIX_ENOMEM();
	n = b->nchunks;
	off_mod = up8(sizeof(*s));
	off_chunks = off_mod + (size_t)n * 8;
	off_recs = off_chunks + (size_t)n * sizeof(void *);
	off_first = off_recs + (size_t)n * sizeof(void *);
	off_last = off_first + (size_t)n * 4;
	off_seq = off_last + (size_t)n * 4;
	total = off_seq + (size_t)(n + 1) * 4;
	mem = calloc(1, total);
	if (!mem)
		return MIX_ENOMEM();
	s = (struct mix_snap *)mem;
	s->c_max_modseq = (const uint64_t *)(mem + off_mod);
	s->chunks = (struct mix_chunk *const *)(mem + off_chunks);
	s->c_first_uid = (const uint32_t *)(mem + off_first);
	s->c_last_uid = (const uint32_t *)(mem + off_last);
	s->c_recs = (const uint8_t *const *)(mem + off_recs);
	s->c_seq = (const uint32_t *)(mem + off_seq);
	for (i = 0; i < n; i++) {
		struct mix_chunk *c = b->chunks[i];
		((uint64_t *)(mem + off_mod))[i] = c->max_modseq;
		((struct mix_chunk **)(mem + off_chunks))[i] = c;
		((uint32_t *)(mem + off_first))[i] = c->first_uid;
		((uint32_t *)(mem + off_last))[i] = c->last_uid;
		((const uint8_t **)(mem + off_recs))[i] = c->recs;
		((uint32_t *)(mem + off_seq))[i] = seq;
		seq += c->count;
	}
	((uint32_t *)(mem + off_seq))[n] = seq;
	s->nchunks = n;
	s->gen = b->gen;
	s->hdr = b->hdr;
	s->hdr.messages_count = seq;
	s->record_size = b->layout->record_size;
	s->kw_bits = b_kwb(b) * 8;
	s->layout = b->layout;
	s->kw = b->kw;
	s->exthdrs = b->exthdrs;
	s->xhist = b->xhist;
	s->lost_modseq = mix_builder_lost_modseq(b);
	s->refs = 1;
	*snap_r = s;
	*retired_r = b->retired;
	free(b->chunks);
	memset(b, 0, sizeof(*b));
	return 0;
}

void mix_builder_touch(struct mix_builder *b, uint64_t modseq)
{
	if (modseq > b->hdr.highest_modseq)
		b->hdr.highest_modseq = modseq;
	b->changed = 1;
}

/* ---- locating records ------------------------------------------------- */

/* First chunk that may hold uid or a larger one: the last chunk whose
 * first UID is <= uid (or 0). */
static uint32_t dir_find(const struct mix_builder *b, uint32_t uid)
{
	uint32_t lo = 0, hi = b->nchunks;
	if (hi == 0 || b->chunks[0]->first_uid >= uid)
		return 0;
	/* the newest messages (appends, their data) are in the last chunk */
	if (b->chunks[hi - 1]->first_uid <= uid)
		return hi - 1;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (b->chunks[mid]->first_uid <= uid)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* First position in c with uid >= uid. */
static uint32_t chunk_lower_bound(const struct mix_builder *b,
				  struct mix_chunk *c, uint32_t uid)
{
	uint32_t lo = 0, hi = c->count;
	if (hi && c->last_uid - c->first_uid + 1 == hi) {
		/* dense: UID first + i is at position i */
		if (uid <= c->first_uid)
			return 0;
		return uid > c->last_uid ? hi : uid - c->first_uid;
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r_uid(c_rec(b, c, mid)) < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- header counters -------------------------------------------------- */

static void counters_add(struct mix_index_header *h, uint32_t uid,
			 uint8_t flags, int sign)
{
	if (flags & MIX_FLAG_SEEN)
		h->seen_messages_count += sign;
	if (flags & MIX_FLAG_DELETED)
		h->deleted_messages_count += sign;
	(void)uid;
}

/* First UID >= from whose flag bit is (set ? set : clear), or next_uid. */
static uint32_t scan_first(const struct mix_builder *b, uint32_t from,
			   uint8_t flag, int set)
{
	uint32_t ci = dir_find(b, from), pos;
	for (; ci < b->nchunks; ci++) {
		struct mix_chunk *c = b->chunks[ci];
		/* the chunk summary says whether any record can match */
		if ((flag == MIX_FLAG_SEEN && !set && c->n_unseen == 0) ||
		    (flag == MIX_FLAG_DELETED && set && c->n_deleted == 0))
			continue;
		pos = c->first_uid >= from ? 0 : chunk_lower_bound(b, c, from);
		for (; pos < c->count; pos++) {
			const uint8_t *r = c_rec(b, c, pos);
			if (!!(r[4] & flag) == set)
				return r_uid(r);
		}
	}
	return b->hdr.next_uid;
}

/* After uid's flags went from old to new (or it was added/expunged with
 * old/new = 0 meaning "not present"): keep the low-water marks exact. */
static void lowwater_update(struct mix_builder *b, uint32_t uid, int present,
			    uint8_t flags, int was_present, uint8_t oldflags)
{
	struct mix_index_header *h = &b->hdr;
	int unseen = present && !(flags & MIX_FLAG_SEEN);
	int was_unseen = was_present && !(oldflags & MIX_FLAG_SEEN);
	int del = present && (flags & MIX_FLAG_DELETED);
	int was_del = was_present && (oldflags & MIX_FLAG_DELETED);

	if (unseen && uid < h->first_unseen_uid_lowwater)
		h->first_unseen_uid_lowwater = uid;
	else if (was_unseen && !unseen && uid == h->first_unseen_uid_lowwater)
		h->first_unseen_uid_lowwater =
			scan_first(b, uid + 1, MIX_FLAG_SEEN, 0);
	if (del && uid < h->first_deleted_uid_lowwater)
		h->first_deleted_uid_lowwater = uid;
	else if (was_del && !del && uid == h->first_deleted_uid_lowwater)
		h->first_deleted_uid_lowwater =
			scan_first(b, uid + 1, MIX_FLAG_DELETED, 1);
}

static void set_record_modseq(struct mix_chunk *c, uint8_t *r,
			      uint64_t modseq)
{
	r_set_modseq(r, modseq);
	if (modseq > c->max_modseq)
		c->max_modseq = modseq;
}

/* ---- append ----------------------------------------------------------- */

int mix_builder_append(struct mix_builder *b, uint32_t uid, uint8_t flags,
		       uint64_t modseq)
{
	struct mix_chunk *c = b->nchunks ? b->chunks[b->nchunks - 1] : NULL;
	struct mix_index_header *h = &b->hdr;
	uint8_t *r;

	/* UID 2^32-1 would wrap next_uid to 0 */
	if (uid == 0 || uid == UINT32_MAX || uid < h->next_uid ||
	    (flags & ~MIX_FLAGS_ALL))
		return mix_err(MIX_ECORRUPT, "append of uid %u: below next_uid "
			       "%u, the last UID, or with bad flags 0x%x", uid,
			       h->next_uid, flags);
	if (c && c->count < MIX_CHUNK_MAX) {
		c = chunk_private(b, b->nchunks - 1, MIX_CHUNK_MAX);
		if (!c)
			return MIX_ENOMEM();
	} else {
		if (mix_builder_dir_reserve(b, 1) < 0 || !(c = chunk_new(b, MIX_CHUNK_MAX)))
			return MIX_ENOMEM();
		b->chunks[b->nchunks++] = c;
	}
	r = c_rec(b, c, c->count);
	memset(r, 0, b_rs(b));
	memcpy(r, &uid, 4);
	r[4] = flags;
	chunk_count(c, flags, 1);
	if (c->count == 0)
		c->first_uid = uid;
	c->last_uid = uid;
	c->count++;
	set_record_modseq(c, r, modseq);
	/* low-water marks that said "none" pointed at next_uid */
	if (h->first_unseen_uid_lowwater >= h->next_uid)
		h->first_unseen_uid_lowwater = uid + 1;
	if (h->first_deleted_uid_lowwater >= h->next_uid)
		h->first_deleted_uid_lowwater = uid + 1;
	h->next_uid = uid + 1;
	h->messages_count++;
	counters_add(h, uid, flags, 1);
	lowwater_update(b, uid, 1, flags, 0, 0);
	mix_builder_touch(b, modseq);
	return 0;
}

int mix_builder_append_run(struct mix_builder *b, uint32_t uid0, uint32_t n,
			   const uint8_t *flags, uint64_t modseq)
{
	struct mix_index_header *h = &b->hdr;
	uint32_t done = 0, i, seen = 0, deleted = 0;
	uint32_t lw_unseen = h->first_unseen_uid_lowwater;
	uint32_t lw_del = h->first_deleted_uid_lowwater;
	size_t rs = b_rs(b);

	if (n == 0)
		return 0;
	/* UID 2^32-1 would wrap next_uid to 0 */
	if (uid0 == 0 || uid0 < h->next_uid ||
	    (uint64_t)uid0 + n - 1 >= UINT32_MAX)
		return mix_err(MIX_ECORRUPT, "append of uids %u..+%u: below "
			       "next_uid %u or reaching the last UID", uid0, n,
			       h->next_uid);
	for (i = 0; i < n; i++)
		if (flags[i] & ~MIX_FLAGS_ALL)
			return mix_err(MIX_ECORRUPT, "append of uid %u with bad "
				       "flags 0x%x", uid0 + i, flags[i]);
	/* low-water marks that said "none" pointed at next_uid; after the
	 * run "none" is uid0 + n, and the first unseen (deleted) message
	 * of the run lowers them */
	if (lw_unseen >= h->next_uid)
		lw_unseen = uid0 + n;
	if (lw_del >= h->next_uid)
		lw_del = uid0 + n;
	while (done < n) {
		struct mix_chunk *c = b->nchunks ? b->chunks[b->nchunks - 1]
						 : NULL;
		uint32_t k;
		uint8_t *r;
		/* Fill the last chunk if it is this build's own, or if the
		 * rest of the run fits in it, or if it is less than half
		 * full; otherwise start a new chunk rather than copy a
		 * nearly full one (copy on write) to add a few records:
		 * 1,000 appends after 1,000 appends would otherwise copy
		 * 24 KB per transaction.  A chunk left short is made full
		 * again by the next checkpoint's remap. */
		if (c && c->count < MIX_CHUNK_MAX &&
		    (chunk_writable(b, c) ||
		     n - done <= MIX_CHUNK_MAX - c->count ||
		     c->count < MIX_CHUNK_MAX / 2)) {
			if (!(c = chunk_private(b, b->nchunks - 1,
						MIX_CHUNK_MAX)))
				return MIX_ENOMEM();
		} else {
			if (mix_builder_dir_reserve(b, 1) < 0 ||
			    !(c = chunk_new(b, MIX_CHUNK_MAX)))
				return MIX_ENOMEM();
			b->chunks[b->nchunks++] = c;
		}
		k = MIX_CHUNK_MAX - c->count;
		if (k > n - done)
			k = n - done;
		r = c_rec(b, c, c->count);
		memset(r, 0, k * rs);
		for (i = 0; i < k; i++, r += rs) {
			uint32_t uid = uid0 + done + i;
			uint8_t f = flags[done + i];
			memcpy(r, &uid, 4);
			r[4] = f;
			r_set_modseq(r, modseq);
			chunk_count(c, f, 1);
			seen += !!(f & MIX_FLAG_SEEN);
			deleted += !!(f & MIX_FLAG_DELETED);
			if (!(f & MIX_FLAG_SEEN) && uid < lw_unseen)
				lw_unseen = uid;
			if ((f & MIX_FLAG_DELETED) && uid < lw_del)
				lw_del = uid;
		}
		if (c->count == 0)
			c->first_uid = uid0 + done;
		c->count += k;
		done += k;
		c->last_uid = uid0 + done - 1;
		if (modseq > c->max_modseq)
			c->max_modseq = modseq;
	}
	h->first_unseen_uid_lowwater = lw_unseen;
	h->first_deleted_uid_lowwater = lw_del;
	h->next_uid = uid0 + n;
	h->messages_count += n;
	h->seen_messages_count += seen;
	h->deleted_messages_count += deleted;
	mix_builder_touch(b, modseq);
	return 0;
}

int mix_builder_ext_run(struct mix_builder *b, uint32_t uid0, uint32_t n,
			uint32_t ext_id, const uint8_t *data,
			const uint8_t *set)
{
	const struct mix_ext *e;
	uint32_t ci, pos, i = 0, rec_size;
	size_t rs = b_rs(b);

	if (ext_id < MIX_EXT_FIRST || ext_id >= b->layout->ext_count ||
	    b->layout->exts[ext_id].rec_size == 0)
		return mix_err(MIX_EINVAL, "extension %u has no record data",
			       ext_id);
	if (n == 0)
		return 0;
	e = &b->layout->exts[ext_id];
	rec_size = e->rec_size;
	ci = dir_find(b, uid0);
	if (ci >= b->nchunks)
		return mix_err(MIX_EINVAL, "extension data of uid %u: no such "
			       "message", uid0);
	pos = chunk_lower_bound(b, b->chunks[ci], uid0);
	for (; i < n && ci < b->nchunks; ci++, pos = 0) {
		struct mix_chunk *c = b->chunks[ci];
		uint32_t k = c->count > pos ? c->count - pos : 0, j;
		uint8_t *r;
		if (k > n - i)
			k = n - i;
		/* the run was appended by this build: its chunks are the
		 * build's own, and UIDs ascend, so matching first and last
		 * UIDs mean the k records are uid0 + i .. in order */
		if (!chunk_writable(b, c) || k == 0 ||
		    r_uid(c_rec(b, c, pos)) != uid0 + i ||
		    r_uid(c_rec(b, c, pos + k - 1)) != uid0 + i + k - 1)
			return mix_err(MIX_EINVAL, "extension data of uid %u: "
				       "not a message appended in this build",
				       uid0 + i);
		r = c_rec(b, c, pos) + e->rec_offset;
		for (j = 0; j < k; j++, i++, r += rs)
			if (!set || set[i])
				memcpy(r, data + (size_t)i * rec_size,
				       rec_size);
	}
	if (i < n)
		return mix_err(MIX_EINVAL, "extension data of uids %u..+%u: "
			       "past the last message", uid0, n);
	return 0;
}

/* ---- expunge ---------------------------------------------------------- */

/* Remove the records of c in [first, last]; returns removed count. */
static int expunge_chunk(struct mix_builder *b, uint32_t ci, uint32_t first,
			 uint32_t last, struct run *run, uint32_t *removed_r)
{
	uint32_t gone_unseen, gone_deleted;
	struct mix_chunk *c = b->chunks[ci], *n;
	uint32_t pos = chunk_lower_bound(b, c, first), end = pos, i;
	size_t rs = b_rs(b);

	while (end < c->count && r_uid(c_rec(b, c, end)) <= last)
		end++;
	*removed_r = end - pos;
	if (end == pos)
		return 0;
	gone_unseen = gone_deleted = 0;
	for (i = pos; i < end; i++) {
		const uint8_t *r = c_rec(b, c, i);
		counters_add(&b->hdr, r_uid(r), r[4], -1);
		gone_unseen += !(r[4] & MIX_FLAG_SEEN);
		gone_deleted += !!(r[4] & MIX_FLAG_DELETED);
		if (run_changed(run, r_uid(r)) < 0)
			return MIX_ENOMEM();
	}
	if (end - pos == c->count) {
		dir_remove(b, ci);
		mix_builder_retire(b, &c->robj);
		return 0;
	}
	n = chunk_new(b, ci + 1 == b->nchunks ? MIX_CHUNK_MAX
					      : c->count - (end - pos));
	if (!n)
		return MIX_ENOMEM();
	memcpy(n->recs, c->recs, pos * rs);
	memcpy(n->recs + pos * rs, c->recs + end * rs, (c->count - end) * rs);
	n->count = c->count - (end - pos);
	n->first_uid = r_uid(n->recs);
	n->last_uid = r_uid(c_rec(b, n, n->count - 1));
	n->max_modseq = c->max_modseq;
	n->n_unseen = c->n_unseen - gone_unseen;
	n->n_deleted = c->n_deleted - gone_deleted;
	b->chunks[ci] = n;
	mix_builder_retire(b, &c->robj);
	return 0;
}

int mix_builder_expunge(struct mix_builder *b, uint32_t first, uint32_t last,
			uint64_t modseq, struct mix_ranges *out)
{
	struct run run = { out, 0 };
	uint32_t ci = dir_find(b, first), removed, total = 0;
	struct mix_index_header *h = &b->hdr;

	while (ci < b->nchunks && b->chunks[ci]->first_uid <= last) {
		uint32_t before = b->nchunks;
		if (b->chunks[ci]->last_uid < first) {
			ci++;
			continue;
		}
		if (expunge_chunk(b, ci, first, last, &run, &removed) < 0)
			return MIX_ENOMEM();
		total += removed;
		if (b->nchunks == before)
			ci++;
	}
	if (total == 0)
		return 0;
	h->messages_count -= total;
	if (h->first_unseen_uid_lowwater >= first &&
	    h->first_unseen_uid_lowwater <= last)
		h->first_unseen_uid_lowwater =
			scan_first(b, first, MIX_FLAG_SEEN, 0);
	if (h->first_deleted_uid_lowwater >= first &&
	    h->first_deleted_uid_lowwater <= last)
		h->first_deleted_uid_lowwater =
			scan_first(b, first, MIX_FLAG_DELETED, 1);
	mix_builder_touch(b, modseq);
	return 0;
}

/* ---- per-record changes ----------------------------------------------- */

/* Apply fn to every record in [first, last]; fn returns non-zero if it
 * would change the record (then it is called again on the private copy
 * with apply=1).  Changed records are listed in out (the log records
 * them); those with a visible change (REC_VISIBLE) get modseq and raise
 * highest_modseq, those whose change is internal only (REC_HIDDEN: the
 * DIRTY flag, docs/condstore.md) keep their modseq. */
/* A mutation callback: with apply 0, whether r would change (0, or
 * REC_VISIBLE / REC_HIDDEN); with apply 1, change r, which is in chunk c
 * (private by then). */
typedef int rec_fn(struct mix_builder *b, struct mix_chunk *c, uint8_t *r,
		   int apply, void *ctx);

enum { REC_VISIBLE = 1, REC_HIDDEN = 2 };

static int for_range(struct mix_builder *b, uint32_t first, uint32_t last,
		     uint64_t modseq, struct mix_ranges *out, rec_fn *fn,
		     void *ctx)
{
	struct run run = { out, 0 };
	uint32_t ci = dir_find(b, first), pos;
	int any = 0, kind;

	for (; ci < b->nchunks && b->chunks[ci]->first_uid <= last; ci++) {
		struct mix_chunk *c = b->chunks[ci];
		if (c->last_uid < first)
			continue;
		pos = chunk_lower_bound(b, c, first);
		for (; pos < c->count; pos++) {
			uint8_t *r = c_rec(b, c, pos);
			if (r_uid(r) > last)
				break;
			if (!(kind = fn(b, c, r, 0, ctx))) {
				run.open = 0;
				continue;
			}
			if (!chunk_writable(b, c)) {
				c = chunk_private(b, ci, ci + 1 == b->nchunks ?
						  MIX_CHUNK_MAX : 0);
				if (!c)
					return MIX_ENOMEM();
				r = c_rec(b, c, pos);
			}
			fn(b, c, r, 1, ctx);
			if (kind == REC_VISIBLE) {
				set_record_modseq(c, r, modseq);
				any = 1;
			}
			if (run_changed(&run, r_uid(r)) < 0)
				return MIX_ENOMEM();
			b->changed = 1;
		}
	}
	if (any)
		mix_builder_touch(b, modseq);
	return 0;
}

int mix_builder_split_modseq(struct mix_builder *b, uint32_t first,
			     uint32_t last, uint64_t m, struct mix_ranges *le,
			     struct mix_ranges *gt)
{
	struct run rle = { le, 0 }, rgt = { gt, 0 };
	uint32_t ci = dir_find(b, first), pos;

	for (; ci < b->nchunks && b->chunks[ci]->first_uid <= last; ci++) {
		struct mix_chunk *c = b->chunks[ci];
		if (c->last_uid < first)
			continue;
		for (pos = chunk_lower_bound(b, c, first); pos < c->count;
		     pos++) {
			const uint8_t *r = c_rec(b, c, pos);
			uint64_t ms;
			if (r_uid(r) > last)
				break;
			memcpy(&ms, r + MIX_REC_MODSEQ_OFFSET, 8);
			if (ms > m) {
				rle.open = 0;
				if (run_changed(&rgt, r_uid(r)) < 0)
					return MIX_ENOMEM();
			} else {
				rgt.open = 0;
				if (run_changed(&rle, r_uid(r)) < 0)
					return MIX_ENOMEM();
			}
		}
	}
	return 0;
}

struct flags_ctx { uint8_t add, remove; };

static int flags_fn(struct mix_builder *b, struct mix_chunk *c,
			uint8_t *r, int apply, void *ctx)
{
	const struct flags_ctx *f = ctx;
	uint8_t old = r[4], nf = (uint8_t)((old | f->add) & ~f->remove);
	if (!apply)
		return nf == old ? 0 : ((nf ^ old) & ~MIX_FLAGS_INTERNAL)
			? REC_VISIBLE : REC_HIDDEN;
	r[4] = nf;
	counters_add(&b->hdr, r_uid(r), old, -1);
	counters_add(&b->hdr, r_uid(r), nf, 1);
	/* the chunk summary first: lowwater_update may skip chunks by it */
	chunk_count(c, old, -1);
	chunk_count(c, nf, 1);
	lowwater_update(b, r_uid(r), 1, nf, 1, old);
	return 1;
}

int mix_builder_flags(struct mix_builder *b, uint32_t first, uint32_t last,
		      uint8_t add, uint8_t remove, uint64_t modseq,
		      struct mix_ranges *out)
{
	struct flags_ctx f = { add, remove };
	return for_range(b, first, last, modseq, out, flags_fn, &f);
}

struct kw_ctx { uint32_t idx; int add; const uint8_t *want; };

static int kw_fn(struct mix_builder *b, struct mix_chunk *c,
			uint8_t *r, int apply, void *ctx)
{
	const struct kw_ctx *k = ctx;
	uint8_t *bm = r + MIX_REC_KEYWORDS_OFFSET;
	uint8_t bit = (uint8_t)(1u << (k->idx % 8));
	int has = !!(bm[k->idx / 8] & bit);
	(void)b;
	if (!apply)
		return has != k->add;
	if (k->add)
		bm[k->idx / 8] |= bit;
	else
		bm[k->idx / 8] &= (uint8_t)~bit;
	return 1;
}

int mix_builder_keyword(struct mix_builder *b, uint32_t first, uint32_t last,
			uint32_t kw_idx, int add, uint64_t modseq,
			struct mix_ranges *out)
{
	struct kw_ctx k = { kw_idx, !!add, NULL };
	if (kw_idx >= b->kw->count)
		return mix_err(MIX_ECORRUPT, "keyword index %u out of range",
			       kw_idx);
	return for_range(b, first, last, modseq, out, kw_fn, &k);
}

static int kwset_fn(struct mix_builder *b, struct mix_chunk *c,
			uint8_t *r, int apply, void *ctx)
{
	const struct kw_ctx *k = ctx;
	uint8_t *bm = r + MIX_REC_KEYWORDS_OFFSET;
	if (!apply)
		return memcmp(bm, k->want, b_kwb(b)) != 0;
	memcpy(bm, k->want, b_kwb(b));
	return 1;
}

int mix_builder_keywords_set(struct mix_builder *b, uint32_t first,
			     uint32_t last, const uint8_t *want,
			     uint64_t modseq, struct mix_ranges *out)
{
	struct kw_ctx k = { 0, 0, want };
	return for_range(b, first, last, modseq, out, kwset_fn, &k);
}

struct ext_ctx {
	uint16_t off, size;
	const uint8_t *data;
	int changed;
};

static int ext_fn(struct mix_builder *b, struct mix_chunk *c,
			uint8_t *r, int apply, void *ctx)
{
	struct ext_ctx *x = ctx;
	(void)b;
	if (!apply)
		return memcmp(r + x->off, x->data, x->size) != 0;
	memcpy(r + x->off, x->data, x->size);
	x->changed = 1;
	return 1;
}

int mix_builder_ext_rec(struct mix_builder *b, uint32_t uid, uint32_t ext_id,
			const uint8_t *data, uint64_t modseq, int *changed_r)
{
	const struct mix_ext *e;
	struct ext_ctx x;
	int ret;

	if (ext_id < MIX_EXT_FIRST || ext_id >= b->layout->ext_count ||
	    b->layout->exts[ext_id].rec_size == 0)
		return mix_err(MIX_EINVAL, "extension %u has no record data",
			       ext_id);
	e = &b->layout->exts[ext_id];
	x.off = e->rec_offset;
	x.size = e->rec_size;
	x.data = data;
	x.changed = 0;
	ret = for_range(b, uid, uid, modseq, NULL, ext_fn, &x);
	*changed_r = ret == 0 && x.changed;
	return ret;
}

struct ext_range_ctx {
	uint16_t off, size;
	uint32_t first;
	const uint8_t *data;
};

static int ext_range_fn(struct mix_builder *b, struct mix_chunk *c,
			uint8_t *r, int apply, void *ctx)
{
	struct ext_range_ctx *x = ctx;
	const uint8_t *d = x->data + (size_t)(r_uid(r) - x->first) * x->size;
	(void)b;
	if (!apply)
		return memcmp(r + x->off, d, x->size) != 0;
	memcpy(r + x->off, d, x->size);
	return 1;
}

int mix_builder_ext_range(struct mix_builder *b, uint32_t first,
			  uint32_t count, uint32_t ext_id,
			  const uint8_t *data, uint64_t modseq)
{
	const struct mix_ext *e;
	struct ext_range_ctx x;

	if (ext_id < MIX_EXT_FIRST || ext_id >= b->layout->ext_count ||
	    b->layout->exts[ext_id].rec_size == 0)
		return mix_err(MIX_EINVAL, "extension %u has no record data",
			       ext_id);
	if (count == 0 || (uint64_t)first + count - 1 > UINT32_MAX)
		return mix_err(MIX_EINVAL, "extension data of UIDs %u + %u",
			       first, count);
	e = &b->layout->exts[ext_id];
	x.off = e->rec_offset;
	x.size = e->rec_size;
	x.first = first;
	x.data = data;
	return for_range(b, first, first + count - 1, modseq, NULL,
			 ext_range_fn, &x);
}

