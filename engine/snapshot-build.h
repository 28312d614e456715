/*
 * What the three parts of the snapshot builder share (snapshot-build.c,
 * snapshot-layout.c, snapshot-load.c): record accessors and the builder's
 * object constructors.  Writer thread only; not for other files (the
 * builder's interface is in snapshot.h).
 */
#ifndef MIX_SNAPSHOT_BUILD_H
#define MIX_SNAPSHOT_BUILD_H

#include <string.h>

#include "snapshot.h"

#define KW_STEP 8u /* keyword bitmap grows in steps of 64 keywords */

static inline uint32_t r_uid(const uint8_t *r)
{
	uint32_t u;
	memcpy(&u, r, 4);
	return u;
}

static inline uint32_t b_kwb(const struct mix_builder *b)
{
	return b->layout->exts[MIX_EXT_KEYWORDS].rec_size;
}

/* Count (sign +1) or uncount (-1) a record with flags in c's summary. */
static inline void chunk_count(struct mix_chunk *c, uint8_t flags, int sign)
{
	c->n_unseen += (uint32_t)(sign * !(flags & MIX_FLAG_SEEN));
	c->n_deleted += (uint32_t)(sign * !!(flags & MIX_FLAG_DELETED));
}

/* An object born in this build (private, may be changed in place). */
static inline int mix_builder_is_private(const struct mix_builder *b,
					 const struct mix_robj *o)
{
	return o->born_gen == b->gen;
}

/* Room for more chunks in the directory.  0 or -ENOMEM. */
int mix_builder_dir_reserve(struct mix_builder *b, uint32_t more);

/* New objects of generation gen (b->gen), or NULL when out of memory:
 * a layout with room for ext_count extensions (zeroed); a keyword list
 * of names[0..count) plus extra (extra_len bytes) when not NULL; extension
 * headers copying old's blobs, new ones (up to count) of new_size zero
 * bytes. */
struct mix_layout *mix_layout_alloc(const struct mix_builder *b,
				    uint32_t ext_count);
struct mix_kwlist *mix_kwlist_make(uint64_t gen, const char *const *names,
				   uint32_t count, const char *extra,
				   size_t extra_len);
struct mix_exthdrs *mix_exthdrs_make(uint64_t gen,
				     const struct mix_exthdrs *old,
				     uint32_t count, uint32_t new_size);

/* Assign the record offsets of l's extensions and its record size.
 * 0, or MIX_ELIMIT when the record passes 65,528 bytes. */
int mix_layout_compute(struct mix_layout *l);
/* The fields of l derived from its extension names (lost_ext): by
 * mix_layout_compute, and by the loader, which takes offsets from the
 * file instead of computing them. */
void mix_layout_derive(struct mix_layout *l);

#endif
