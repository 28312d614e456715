/*
 * Building the next snapshot, part 3: the states a build starts from
 * (writer thread, or the opening thread before any writer has the index;
 * docs/design.md "Snapshots and the read path"): an empty index, the records of a mapped mix.index,
 * and the rebase that moves the current state's unchanged chunks into the
 * mapping an asynchronous checkpoint wrote (checkpoint.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "index-file.h"
#include "snapshot-build.h"
#include "snapshot.h"

static int base_objects(struct mix_builder *b, uint32_t ext_count,
			const char *const *kw, uint32_t kw_count)
{
	static const struct mix_exthdrs none = { .count = 0 };
	b->layout = mix_layout_alloc(b, ext_count);
	b->kw = mix_kwlist_make(b->gen, kw, kw_count, NULL, 0);
	b->exthdrs = mix_exthdrs_make(b->gen, &none, ext_count, 0);
	if (!b->layout || !b->kw || !b->exthdrs) {
		free(b->layout);
		free(b->kw);
		free(b->exthdrs);
		return MIX_ENOMEM();
	}
	return 0;
}

int mix_builder_init_empty(struct mix_builder *b, uint64_t gen,
			   const struct mix_index_header *hdr)
{
	struct mix_layout *l;
	memset(b, 0, sizeof(*b));
	b->gen = gen;
	b->hdr = *hdr;
	b->xhist.oldest = hdr->highest_modseq;
	if (base_objects(b, MIX_EXT_FIRST, NULL, 0) < 0)
		return MIX_ENOMEM();
	l = b->layout;
	snprintf(l->exts[0].name, sizeof(l->exts[0].name), "%s",
		 MIX_EXT_NAME_MODSEQ);
	l->exts[0].rec_size = 8;
	l->exts[0].rec_align = 8;
	snprintf(l->exts[1].name, sizeof(l->exts[1].name), "%s",
		 MIX_EXT_NAME_KEYWORDS);
	l->exts[1].rec_align = 4;
	return mix_layout_compute(l);
}

/* Extension header data of a verified file, copied out of the mapping
 * (the "keywords" header lives in the keyword list instead). */
static struct mix_exthdrs *exthdrs_from_ifile(uint64_t gen,
					      const struct mix_ifile *f,
					      uint32_t n)
{
	struct mix_exthdrs *x;
	size_t bytes = 0;
	uint32_t i;
	uint8_t *p;

	for (i = 0; i < n; i++)
		bytes += i == MIX_EXT_KEYWORDS ? 0 : f->exts[i].hdr_size;
	x = calloc(1, sizeof(*x) + n * sizeof(x->e[0]) + bytes);
	if (!x)
		return NULL;
	mix_robj_init(&x->robj, MIX_ROBJ_EXTHDRS, gen);
	x->count = n;
	p = (uint8_t *)&x->e[n];
	for (i = 0; i < n; i++) {
		x->e[i].data = p;
		x->e[i].size = i == MIX_EXT_KEYWORDS ? 0 : f->exts[i].hdr_size;
		if (x->e[i].size)
			memcpy(p, f->exts[i].hdr, x->e[i].size);
		p += x->e[i].size;
	}
	return x;
}

/* Chunks of at most MIX_CHUNK_MAX records pointing into the mapping. */
static int chunks_from_ifile(struct mix_builder *b, const struct mix_ifile *f)
{
	uint32_t i, n = f->hdr->messages_count, rs = f->hdr->record_size;

	for (i = 0; i < n; i += MIX_CHUNK_MAX) {
		uint32_t cnt = n - i < MIX_CHUNK_MAX ? n - i : MIX_CHUNK_MAX, j;
		struct mix_chunk *c;
		if (mix_builder_dir_reserve(b, 1) < 0 || !(c = calloc(1, sizeof(*c))))
			return MIX_ENOMEM();
		mix_robj_init(&c->robj, MIX_ROBJ_CHUNK, b->gen);
		c->recs = (uint8_t *)f->records + (size_t)i * rs;
		c->count = cnt;
		c->first_uid = r_uid(c->recs);
		c->last_uid = r_uid(c->recs + (size_t)(cnt - 1) * rs);
		for (j = 0; j < cnt; j++) {
			const uint8_t *r = c->recs + (size_t)j * rs;
			uint64_t m;
			memcpy(&m, r + MIX_REC_MODSEQ_OFFSET, 8);
			if (m > c->max_modseq)
				c->max_modseq = m;
			chunk_count(c, r[4], 1);
		}
		b->chunks[b->nchunks++] = c;
	}
	return 0;
}

int mix_builder_from_ifile(struct mix_builder *b, uint64_t gen,
			   const struct mix_ifile *f, struct mix_map *map)
{
	uint32_t i, n = f->ext_count, xh = f->ext_count;
	int ret;
	(void)map; /* chunks point into it; the caller manages its life */

	memset(b, 0, sizeof(*b));
	b->gen = gen;
	b->hdr = *f->hdr;
	b->xhist.oldest = f->hdr->highest_modseq;
	/* §2.6: the expunge history is the last extension, not a layout one;
	 * §2.7: the UID floor just before it is not one either (index.c
	 * reads it) */
	if (n > MIX_EXT_FIRST &&
	    strcmp(f->exts[n - 1].name, MIX_EXT_NAME_EXPUNGES) == 0)
		xh = --n;
	if (n > MIX_EXT_FIRST &&
	    strcmp(f->exts[n - 1].name, MIX_EXT_NAME_UIDS) == 0)
		n--;
	if (base_objects(b, n, f->keywords, f->keyword_count) < 0)
		return MIX_ENOMEM();
	if (xh < f->ext_count &&
	    (ret = mix_xhist_decode(b, f->exts[xh].hdr, f->exts[xh].hdr_size)) < 0) {
		mix_builder_abort(b);
		return ret;
	}
	for (i = 0; i < n; i++) {
		struct mix_ext *e = &b->layout->exts[i];
		memcpy(e->name, f->exts[i].name, sizeof(e->name));
		e->reset_id = f->exts[i].reset_id;
		e->hdr_size = f->exts[i].hdr_size;
		e->rec_offset = f->exts[i].rec_offset;
		e->rec_size = f->exts[i].rec_size;
		e->rec_align = f->exts[i].rec_align;
	}
	b->layout->record_size = f->hdr->record_size;
	mix_layout_derive(b->layout);
	free(b->exthdrs);
	b->exthdrs = exthdrs_from_ifile(gen, f, n);
	if (!b->exthdrs || chunks_from_ifile(b, f) < 0) {
		mix_builder_abort(b);
		return MIX_ENOMEM();
	}
	return 0;
}

/* All shared objects of old leave the state at this build's generation
 * (used after a checkpoint, when every chunk is replaced by one that
 * points into the new mapping). */
void mix_builder_retire_all(struct mix_builder *b, const struct mix_snap *old,
			    struct mix_map *old_map)
{
	uint32_t i;
	for (i = 0; i < old->nchunks; i++)
		mix_builder_retire(b, (struct mix_robj *)&old->chunks[i]->robj);
	mix_builder_retire(b, (struct mix_robj *)&old->layout->robj);
	mix_builder_retire(b, (struct mix_robj *)&old->kw->robj);
	mix_builder_retire(b, (struct mix_robj *)&old->exthdrs->robj);
	{
		const struct mix_xhist_node *x = old->xhist.head, *xn;
		for (i = 0; i < old->xhist.count; i++, x = xn) {
			xn = x->next;
			mix_builder_retire(b, (struct mix_robj *)&x->robj);
		}
	}
	if (old_map)
		mix_builder_retire(b, &old_map->robj);
}

/* ---- rebase after an asynchronous checkpoint (checkpoint.c) ------------ */

/* Chunks are copy on write, and a chunk is reachable from the snapshots
 * of one interval of generations [born_gen, dead_gen): a chunk of cur
 * born at or before base's generation was therefore in base's directory,
 * unchanged, and mix.index holds its records as they are (written from
 * base).  Its pointer value finds it among base's chunks (keys): compared
 * only, never followed, since base may be gone; born_gen rules out a
 * newer chunk that reuses the address of one of base's freed ones.  Both
 * directories are in UID order (non-empty chunks have strictly
 * increasing first UIDs), so one walk pairs them. */
int mix_builder_rebase(struct mix_builder *b, const struct mix_snap *cur,
		       uint64_t base_gen, struct mix_chunk *const *keys,
		       const uint32_t *first, struct mix_chunk **mapped,
		       uint32_t n, struct mix_map *map,
		       struct mix_map *old_map, uint32_t *replaced_r)
{
	uint32_t k = 0, j, replaced = 0;
	int ret;

	*replaced_r = 0;
	if ((ret = mix_builder_begin(b, cur)) < 0)
		return ret;
	for (j = 0; j < b->nchunks; j++) {
		struct mix_chunk *c = b->chunks[j], *m;
		if (c->count == 0 || c->robj.born_gen > base_gen)
			continue;
		while (k < n && first[k] < c->first_uid)
			k++;
		if (k == n || keys[k] != c || !mapped[k] ||
		    mapped[k]->count != c->count)
			continue;
		m = mapped[k];
		mapped[k] = NULL;
		mix_robj_init(&m->robj, MIX_ROBJ_CHUNK, b->gen);
		b->chunks[j] = m;
		mix_builder_retire(b, &c->robj);
		replaced++;
	}
	/* Every chunk in a mapping was born at or before base (only a
	 * checkpoint creates them, and none was collected since base was
	 * taken), so it was replaced above: the old mapping is unreachable
	 * from the new state.  Checked, not assumed: a chunk left in it
	 * would be unmapped under a reader. */
	for (j = 0; j < b->nchunks; j++)
		if (b->chunks[j]->cap == 0 &&
		    b->chunks[j]->robj.born_gen != b->gen) {
			mix_builder_abort(b);
			return mix_err(MIX_EINVAL, "rebase: chunk %u (UIDs "
				       "%u..%u) still points into the old "
				       "mix.index mapping", j,
				       b->chunks[j]->first_uid,
				       b->chunks[j]->last_uid);
		}
	map->robj.born_gen = b->gen;
	if (old_map)
		mix_builder_retire(b, &old_map->robj);
	b->changed = 1;
	*replaced_r = replaced;
	return 0;
}
