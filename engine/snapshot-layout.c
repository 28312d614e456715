/*
 * Building the next snapshot, part 2: the record layout, the keyword list
 * and the extension headers (writer thread only; docs/design.md "Snapshots and the read path").
 *
 * Same rule as snapshot-build.c: an object born in this build is private
 * and changed in place, any other is copied on its first change and the
 * original retired.  A layout change (a new extension, a wider keyword
 * bitmap) rewrites every record into the new layout (relayout), so every
 * chunk of the snapshot has one record size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "snapshot-build.h"
#include "snapshot.h"
#include "stats.h"

struct mix_layout *mix_layout_alloc(const struct mix_builder *b,
				       uint32_t ext_count)
{
	struct mix_layout *l = calloc(1, sizeof(*l) +
					     ext_count * sizeof(l->exts[0]));
	if (!l)
		return NULL;
	mix_robj_init(&l->robj, MIX_ROBJ_LAYOUT, b->gen);
	l->ext_count = ext_count;
	return l;
}

/* Assign record offsets: modseq at 8, keywords at 16, the rest in order
 * at their alignment; record_size rounded up to 8 (docs/format.md §2.4). */
void mix_layout_derive(struct mix_layout *l)
{
	uint32_t i;

	l->lost_ext = 0;
	for (i = MIX_EXT_FIRST; i < l->ext_count; i++)
		if (strcmp(l->exts[i].name, MIX_EXT_NAME_LOST) == 0)
			l->lost_ext = i;
}

int mix_layout_compute(struct mix_layout *l)
{
	uint32_t off = MIX_REC_KEYWORDS_OFFSET, i;
	l->exts[MIX_EXT_MODSEQ].rec_offset = MIX_REC_MODSEQ_OFFSET;
	l->exts[MIX_EXT_KEYWORDS].rec_offset = MIX_REC_KEYWORDS_OFFSET;
	off += l->exts[MIX_EXT_KEYWORDS].rec_size;
	mix_layout_derive(l);
	for (i = MIX_EXT_FIRST; i < l->ext_count; i++) {
		struct mix_ext *e = &l->exts[i];
		if (e->rec_size == 0) {
			e->rec_offset = 0;
			continue;
		}
		off = (off + e->rec_align - 1) & ~(uint32_t)(e->rec_align - 1);
		e->rec_offset = (uint16_t)off;
		off += e->rec_size;
		if (off > 0xfff8)
			return mix_err(MIX_ELIMIT, "record size %u too large "
				       "with extension %s", off, e->name);
	}
	l->record_size = (uint16_t)mix_align8(off);
	return 0;
}

/* Copy one record from layout ol to layout nl. */
static void relay_record(const struct mix_layout *ol,
			 const struct mix_layout *nl, const uint8_t *src,
			 uint8_t *dst)
{
	uint32_t i, okw = ol->exts[MIX_EXT_KEYWORDS].rec_size;
	uint32_t nkw = nl->exts[MIX_EXT_KEYWORDS].rec_size;
	memset(dst, 0, nl->record_size);
	memcpy(dst, src, sizeof(struct mix_index_record));
	memcpy(dst + MIX_REC_KEYWORDS_OFFSET, src + MIX_REC_KEYWORDS_OFFSET,
	       okw < nkw ? okw : nkw);
	for (i = MIX_EXT_FIRST; i < ol->ext_count; i++)
		if (ol->exts[i].rec_size)
			memcpy(dst + nl->exts[i].rec_offset,
			       src + ol->exts[i].rec_offset,
			       ol->exts[i].rec_size);
}

/* Switch to layout nl, copying every record into new private chunks. */
static int relayout(struct mix_builder *b, struct mix_layout *nl)
{
	struct mix_layout *ol = b->layout;
	uint32_t ci, pos;

	for (ci = 0; ci < b->nchunks; ci++) {
		struct mix_chunk *c = b->chunks[ci], *n;
		uint32_t cap = ci + 1 == b->nchunks ? MIX_CHUNK_MAX : c->count;
		n = calloc(1, sizeof(*n));
		if (!n || !(n->recs = malloc((size_t)cap * nl->record_size))) {
			free(n);
			return MIX_ENOMEM();
		}
		mix_robj_init(&n->robj, MIX_ROBJ_CHUNK, b->gen);
		n->cap = cap;
		n->heap_bytes = (size_t)cap * nl->record_size;
		__atomic_add_fetch(&mix_stat_chunk_heap_bytes,
				   (int64_t)n->heap_bytes, __ATOMIC_RELAXED);
		for (pos = 0; pos < c->count; pos++)
			relay_record(ol, nl,
				     c->recs + (size_t)pos * ol->record_size,
				     n->recs + (size_t)pos * nl->record_size);
		mix_chunk_meta_copy(n, c);
		b->chunks[ci] = n;
		mix_builder_retire(b, &c->robj);
	}
	b->layout = nl;
	mix_builder_retire(b, &ol->robj);
	return 0;
}

/* Install nl: re-lay records only if any record position changed. */
static int layout_install(struct mix_builder *b, struct mix_layout *nl)
{
	const struct mix_layout *ol = b->layout;
	uint32_t i;
	int same = ol->record_size == nl->record_size &&
		   ol->exts[MIX_EXT_KEYWORDS].rec_size ==
			   nl->exts[MIX_EXT_KEYWORDS].rec_size;
	for (i = MIX_EXT_FIRST; same && i < ol->ext_count; i++)
		same = ol->exts[i].rec_offset == nl->exts[i].rec_offset;
	if (!same)
		return relayout(b, nl);
	b->layout = nl;
	mix_builder_retire(b, (struct mix_robj *)&ol->robj);
	return 0;
}

static struct mix_layout *layout_copy(const struct mix_builder *b,
				      uint32_t ext_count)
{
	struct mix_layout *l = mix_layout_alloc(b, ext_count);
	if (l)
		memcpy(l->exts, b->layout->exts,
		       b->layout->ext_count * sizeof(l->exts[0]));
	return l;
}

struct mix_kwlist *mix_kwlist_make(uint64_t gen, const char *const *names,
				      uint32_t count, const char *extra,
				      size_t extra_len)
{
	size_t bytes = 0, i, n = count + (extra ? 1 : 0);
	struct mix_kwlist *k;
	char *p;
	for (i = 0; i < count; i++)
		bytes += strlen(names[i]) + 1;
	bytes += extra ? extra_len + 1 : 0;
	k = malloc(sizeof(*k) + n * sizeof(k->names[0]) + bytes);
	if (!k)
		return NULL;
	mix_robj_init(&k->robj, MIX_ROBJ_KWLIST, gen);
	k->count = (uint32_t)n;
	p = (char *)&k->names[n];
	for (i = 0; i < n; i++) {
		size_t len = i < count ? strlen(names[i]) : extra_len;
		memcpy(p, i < count ? names[i] : extra, len);
		p[len] = '\0';
		k->names[i] = p;
		p += len + 1;
	}
	return k;
}

int mix_builder_keyword_idx(struct mix_builder *b, const char *name,
			    size_t len, int create, uint32_t *idx_r)
{
	struct mix_kwlist *k;
	uint32_t i, kwb = b_kwb(b);

	for (i = 0; i < b->kw->count; i++) {
		if (strncmp(b->kw->names[i], name, len) == 0 &&
		    b->kw->names[i][len] == '\0') {
			*idx_r = i;
			return 1;
		}
	}
	if (!create)
		return 0;
	if (b->kw->count >= MIX_MAX_KEYWORDS)
		return mix_err(MIX_ELIMIT, "more than %u keywords",
			       MIX_MAX_KEYWORDS);
	k = mix_kwlist_make(b->gen, b->kw->names, b->kw->count, name, len);
	if (!k)
		return MIX_ENOMEM();
	if (k->count > kwb * 8) {
		struct mix_layout *nl = layout_copy(b, b->layout->ext_count);
		int ret;
		if (!nl) {
			free(k);
			return MIX_ENOMEM();
		}
		nl->exts[MIX_EXT_KEYWORDS].rec_size = (uint16_t)(kwb + KW_STEP);
		ret = mix_layout_compute(nl);
		if (ret == 0)
			ret = layout_install(b, nl);
		if (ret < 0) {
			free(nl);
			free(k);
			return ret;
		}
	}
	mix_builder_retire(b, &b->kw->robj);
	b->kw = k;
	*idx_r = k->count - 1;
	b->changed = 1;
	return 1;
}

int mix_builder_ext_find(const struct mix_builder *b, const char *name,
			 size_t len, uint32_t *ext_id_r)
{
	uint32_t i;
	for (i = 0; i < b->layout->ext_count; i++) {
		const char *n = b->layout->exts[i].name;
		if (strncmp(n, name, len) == 0 && n[len] == '\0') {
			*ext_id_r = i;
			return 1;
		}
	}
	return 0;
}

struct mix_exthdrs *mix_exthdrs_make(uint64_t gen,
					const struct mix_exthdrs *old,
					uint32_t count, uint32_t new_size)
{
	size_t bytes = 0, i;
	struct mix_exthdrs *x;
	uint8_t *p;
	for (i = 0; i < count; i++)
		bytes += i < old->count ? old->e[i].size : new_size;
	x = calloc(1, sizeof(*x) + count * sizeof(x->e[0]) + bytes);
	if (!x)
		return NULL;
	mix_robj_init(&x->robj, MIX_ROBJ_EXTHDRS, gen);
	x->count = count;
	p = (uint8_t *)&x->e[count];
	for (i = 0; i < count; i++) {
		x->e[i].size = i < old->count ? old->e[i].size : new_size;
		x->e[i].data = p;
		if (i < old->count && old->e[i].size)
			memcpy(p, old->e[i].data, old->e[i].size);
		p += x->e[i].size;
	}
	return x;
}

int mix_builder_ext_add(struct mix_builder *b, const char *name, size_t len,
			uint32_t reset_id, uint32_t hdr_size, uint16_t rec_size,
			uint16_t rec_align, uint32_t *ext_id_r)
{
	uint32_t id = b->layout->ext_count;
	struct mix_layout *nl;
	struct mix_exthdrs *x;
	struct mix_ext *e;
	int ret;

	if (len == 0 || len > MIX_EXT_NAME_MAX || rec_size > MIX_EXT_REC_MAX ||
	    hdr_size > MIX_EXT_HDR_MAX ||
	    (rec_align != 1 && rec_align != 2 && rec_align != 4 &&
	     rec_align != 8))
		return mix_err(MIX_EINVAL, "extension '%.*s': bad sizes "
			       "(record %u align %u header %u)", (int)len,
			       name, rec_size, rec_align, hdr_size);
	nl = layout_copy(b, id + 1);
	if (!nl)
		return MIX_ENOMEM();
	e = &nl->exts[id];
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	e->reset_id = reset_id;
	e->hdr_size = hdr_size;
	e->rec_size = rec_size;
	e->rec_align = rec_align;
	x = mix_exthdrs_make(b->gen, b->exthdrs, id + 1, hdr_size);
	if (!x || (ret = mix_layout_compute(nl)) < 0 ||
	    (ret = layout_install(b, nl)) < 0) {
		free(x);
		free(nl);
		return x ? ret : -ENOMEM;
	}
	mix_builder_retire(b, &b->exthdrs->robj);
	b->exthdrs = x;
	b->changed = 1;
	*ext_id_r = id;
	return 0;
}

int mix_builder_ext_hdr(struct mix_builder *b, uint32_t ext_id,
			uint32_t offset, const uint8_t *data, uint32_t size,
			int *changed_r)
{
	struct mix_exthdrs *x = b->exthdrs;
	*changed_r = 0;
	if (ext_id == MIX_EXT_KEYWORDS || ext_id >= x->count ||
	    offset > x->e[ext_id].size || size > x->e[ext_id].size - offset)
		return mix_err(MIX_EINVAL, "extension %u header update at %u+%u "
			       "outside its %u bytes", ext_id, offset, size,
			       ext_id < x->count ? x->e[ext_id].size : 0);
	if (memcmp(x->e[ext_id].data + offset, data, size) == 0)
		return 0;
	if (!mix_builder_is_private(b, &x->robj)) {
		x = mix_exthdrs_make(b->gen, b->exthdrs, b->exthdrs->count, 0);
		if (!x)
			return MIX_ENOMEM();
		mix_builder_retire(b, &b->exthdrs->robj);
		b->exthdrs = x;
	}
	memcpy((uint8_t *)x->e[ext_id].data + offset, data, size);
	*changed_r = 1;
	b->changed = 1;
	return 0;
}

