/*
 * Snapshots: the immutable, self-contained state of one index that readers
 * traverse under RCU (docs/design.md "Snapshots and the read path").
 *
 * The record table is chunked copy-on-write: records (in the file's record
 * layout) live in chunks of at most MIX_CHUNK_MAX records sorted by UID; a
 * snapshot holds a directory (first UID, cumulative count, highest modseq
 * and pointer per chunk).  After a checkpoint every chunk points into the
 * read-only mapping of mix.index; a batch copies only the chunks it
 * changes, so publishing one change costs one chunk copy plus the
 * directory, not the whole table.
 *
 * Everything reachable from a published snapshot is immutable.  Objects
 * shared between snapshots (chunks, layouts, keyword lists, extension
 * headers, mappings) carry a struct mix_robj and are freed by reclaim.c
 * once no live snapshot can reach them.
 */
#ifndef MIX_SNAPSHOT_H
#define MIX_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "mix/mix.h"
#include "format.h"
#include "ranges.h"
#include "rcu.h"

#define MIX_CHUNK_MAX 1024u

/* Flag bits no IMAP client sees: a change of only these moves no modseq
 * and is logged in FLAGS records of their own (docs/condstore.md). */
#define MIX_FLAGS_INTERNAL ((uint8_t)MIX_FLAG_DIRTY)

struct mix_index;
struct mix_reclaim;

/* ---- reclaimable objects ---------------------------------------------- */

enum mix_robj_kind {
	MIX_ROBJ_CHUNK = 1,
	MIX_ROBJ_LAYOUT,
	MIX_ROBJ_KWLIST,
	MIX_ROBJ_EXTHDRS,
	MIX_ROBJ_MAP,
	MIX_ROBJ_XHIST,
};

/* Header of every object shared between snapshots.  The object is
 * reachable from the snapshots with gen in [born_gen, dead_gen). */
struct mix_robj {
	struct mix_robj *next;      /* on a snapshot's retired list */
	uint64_t born_gen;
	uint64_t dead_gen;
	uint32_t kind;
};

/* A run of records.  Immutable once published.  Heap chunks own recs;
 * mapped chunks point into a mix_map. */
struct mix_chunk {
	struct mix_robj robj;
	uint32_t count;
	uint32_t cap;        /* records recs can hold; 0 = mapped (read-only) */
	uint32_t first_uid;  /* valid when count > 0 */
	uint32_t last_uid;
	uint64_t max_modseq;
	/* records without \Seen and with \Deleted: the writer skips chunks
	 * without any when it looks for the next low-water mark (the read
	 * path never reads them) */
	uint32_t n_unseen, n_deleted;
	uint8_t *recs;
	size_t heap_bytes;   /* allocated for recs (0 if mapped) */
};

/* The mapping of one mix.index, kept until no chunk points into it. */
struct mix_map {
	struct mix_robj robj;
	void *addr;
	size_t size;
};

struct mix_ext {
	char name[MIX_EXT_NAME_MAX + 1];
	uint32_t reset_id;
	uint32_t hdr_size;
	uint16_t rec_offset;
	uint16_t rec_size;
	uint16_t rec_align;
};

/* Record layout and extension registry.  exts[0] = modseq, [1] = keywords
 * (rec_size = bitmap bytes). */
struct mix_layout {
	struct mix_robj robj;
	uint16_t record_size;
	/* the id of the engine extension mix.lost (format.md §2.9), 0 if
	 * none: set by mix_layout_derive, so that building a snapshot
	 * reads the lost point without a name lookup */
	uint32_t lost_ext;
	uint32_t ext_count;
	struct mix_ext exts[];
};

/* Keyword names; bit i of a record's bitmap is names[i]. */
struct mix_kwlist {
	struct mix_robj robj;
	uint32_t count;
	const char *names[];  /* strings stored after the array */
};

/* Extension header data, one blob per extension of the layout. */
struct mix_exthdrs {
	struct mix_robj robj;
	uint32_t count;
	struct { uint32_t size; const uint8_t *data; } e[];
};

/* One transaction's expunges (docs/format.md §2.6).  Immutable; a list
 * from newest to oldest.  A snapshot reads only its first `count` nodes:
 * older ones may already be freed (the history is bounded). */
struct mix_xhist_node {
	struct mix_robj robj;
	const struct mix_xhist_node *next;
	uint64_t modseq;
	uint32_t nranges;
	struct mix_log_uid_range r[];
};

struct mix_xhist {
	const struct mix_xhist_node *head;
	uint32_t count;      /* nodes readable from head */
	uint32_t nranges;    /* ranges in them */
	uint64_t oldest;     /* every expunge above this modseq is listed */
};

/* ---- the snapshot ----------------------------------------------------- */

struct mix_snap {
	uint64_t gen;               /* publish counter of the index */
	struct mix_index_header hdr; /* counters, next_uid, highest_modseq,
				      * indexid, log position (log_file_seq,
				      * log_file_head_offset = end of the
				      * last applied transaction) */
	uint16_t record_size;
	uint32_t kw_bits;           /* bits in a record's keyword bitmap */
	const struct mix_layout *layout;
	const struct mix_kwlist *kw;
	const struct mix_exthdrs *exthdrs;
	struct mix_xhist xhist;
	/* the lost point (format.md §2.9; 0 if none), read once from the
	 * mix.lost extension header when the snapshot was built, so that
	 * CHANGEDSINCE and QRESYNC pay a load, not a name lookup */
	uint64_t lost_modseq;
	uint32_t nchunks;
	/* the directory, as arrays so that a lookup touches no chunk
	 * struct: first/last UID, records, cumulative counts */
	const uint32_t *c_first_uid;  /* [nchunks] */
	const uint32_t *c_last_uid;   /* [nchunks] */
	const uint8_t *const *c_recs; /* [nchunks] */
	const uint32_t *c_seq;        /* [nchunks + 1]: messages before chunk */
	const uint64_t *c_max_modseq; /* [nchunks] */
	struct mix_chunk *const *chunks; /* [nchunks] */

	/* lifetime (reclaim.c): not part of the immutable state */
	struct mix_rcu_head rcu;
	long refs;                  /* 1 while current + views; atomic */
	struct mix_reclaim *reclaim;
	struct mix_snap *live_prev, *live_next; /* under reclaim lock */
	struct mix_robj *retired;   /* under reclaim lock */
};

static inline const uint8_t *mix_chunk_rec(const struct mix_snap *s,
					   const struct mix_chunk *c,
					   uint32_t pos)
{
	return c->recs + (size_t)pos * s->record_size;
}

/* Free a snapshot's own allocation (directory arrays included).  Shared
 * objects are not touched. */
void mix_snap_free_shell(struct mix_snap *s);

/* Free a shared object (any kind). */
void mix_robj_free(struct mix_robj *o);

/* Find the chunk holding uid or, if absent, the chunk and position where
 * it would go.  Returns 1 when found.  *ci_r in [0, nchunks], *pos_r. */
int mix_snap_find_uid(const struct mix_snap *s, uint32_t uid,
		      uint32_t *ci_r, uint32_t *pos_r);

/* Fill a public record from chunk ci, position pos. */
void mix_snap_fill_record(const struct mix_snap *s, uint32_t ci, uint32_t pos,
			  struct mix_record *rec_r);

/* ---- building the next snapshot (writer thread only) ------------------ */

/* A writer-private, mutable state derived from the current snapshot.
 * Chunks born in this build (robj.born_gen == gen) are private and
 * mutable; others are copied on first write and retired. */
struct mix_builder {
	uint64_t gen;
	struct mix_index_header hdr;
	struct mix_layout *layout;        /* may be private (born_gen == gen) */
	struct mix_kwlist *kw;
	struct mix_exthdrs *exthdrs;
	struct mix_xhist xhist;
	uint32_t xhist_max;  /* bound on xhist.nranges (0 = unbounded) */
	struct mix_chunk **chunks;
	uint32_t nchunks, chunks_cap;
	/* objects replaced in this build that an older snapshot can reach */
	struct mix_robj *retired;
	int changed;   /* anything changed since begin */
	/* recovery only: the highest UID_FLOOR record replayed (not part of
	 * the snapshot; index.c) */
	uint32_t uid_floor;
};

/* Effective change ranges returned by mutations (for encoding the log). */

/* Start building generation base->gen + 1 from base. */
int mix_builder_begin(struct mix_builder *b, const struct mix_snap *base);
/* Start from nothing: an empty index (indexid etc. in hdr). */
int mix_builder_init_empty(struct mix_builder *b, uint64_t gen,
			   const struct mix_index_header *hdr);
/* Drop the build: frees private objects, keeps shared ones. */
void mix_builder_abort(struct mix_builder *b);
/* Make the immutable snapshot (b is consumed; its retired list moves to
 * *retired_r for the reclaimer). */
int mix_builder_finish(struct mix_builder *b, struct mix_snap **snap_r,
		       struct mix_robj **retired_r);

/* The lost point in the builder's state (format.md §2.9), or 0. */
uint64_t mix_builder_lost_modseq(const struct mix_builder *b);

/* Mutations.  All take the transaction's modseq for the records they
 * change and add the UIDs actually changed to out (may be NULL).  They
 * keep the header counters (seen, deleted, low-water marks,
 * highest_modseq) exact. */
int mix_builder_append(struct mix_builder *b, uint32_t uid, uint8_t flags,
		       uint64_t modseq);
/* Append n messages with UIDs uid0 .. uid0+n-1 and flags[i]: the same as
 * n mix_builder_append calls, a chunk at a time. */
int mix_builder_append_run(struct mix_builder *b, uint32_t uid0, uint32_t n,
			   const uint8_t *flags, uint64_t modseq);
/* Extension record data of the n messages uid0 .. uid0+n-1 appended by
 * the last mix_builder_append_run: data[i × rec_size] for each i with
 * set[i] (every i if set is NULL).  No modseq of its own: the records
 * carry the append's. */
int mix_builder_ext_run(struct mix_builder *b, uint32_t uid0, uint32_t n,
			uint32_t ext_id, const uint8_t *data,
			const uint8_t *set);
int mix_builder_expunge(struct mix_builder *b, uint32_t first, uint32_t last,
			uint64_t modseq, struct mix_ranges *out);
int mix_builder_flags(struct mix_builder *b, uint32_t first, uint32_t last,
		      uint8_t add, uint8_t remove, uint64_t modseq,
		      struct mix_ranges *out);
/* kw_idx must be < b->kw->count. */
int mix_builder_keyword(struct mix_builder *b, uint32_t first, uint32_t last,
			uint32_t kw_idx, int add, uint64_t modseq,
			struct mix_ranges *out);
/* Set exactly the keywords in bitmap want (b->layout->exts[1].rec_size
 * bytes) on the messages in the range. */
int mix_builder_keywords_set(struct mix_builder *b, uint32_t first,
			     uint32_t last, const uint8_t *want,
			     uint64_t modseq, struct mix_ranges *out);
/* CONDSTORE: split the existing messages in [first, last] into runs with
 * modseq <= m (le) and > m (gt).  Changes nothing. */
int mix_builder_split_modseq(struct mix_builder *b, uint32_t first,
			     uint32_t last, uint64_t m, struct mix_ranges *le,
			     struct mix_ranges *gt);
/* Set extension record data (ext's rec_size bytes) of uid; *changed_r. */
int mix_builder_ext_rec(struct mix_builder *b, uint32_t uid, uint32_t ext_id,
			const uint8_t *data, uint64_t modseq, int *changed_r);
/* Set extension record data of the messages in first .. first+count-1
 * that exist: UID first + i gets data + i * rec_size (replay of an
 * EXT_RUN record).  Those whose data changes get modseq. */
int mix_builder_ext_range(struct mix_builder *b, uint32_t first,
			  uint32_t count, uint32_t ext_id,
			  const uint8_t *data, uint64_t modseq);
int mix_builder_ext_hdr(struct mix_builder *b, uint32_t ext_id,
			uint32_t offset, const uint8_t *data, uint32_t size,
			int *changed_r);
/* Returns the index of keyword name (adding it, growing the bitmap and
 * re-laying the records if needed). */
int mix_builder_keyword_idx(struct mix_builder *b, const char *name,
			    size_t name_len, int create, uint32_t *idx_r);
/* Add an extension (new layout; every record is re-laid). */
int mix_builder_ext_add(struct mix_builder *b, const char *name,
			size_t name_len, uint32_t reset_id, uint32_t hdr_size,
			uint16_t rec_size, uint16_t rec_align,
			uint32_t *ext_id_r);
/* Find an extension by name; returns 1 and its id, or 0. */
int mix_builder_ext_find(const struct mix_builder *b, const char *name,
			 size_t name_len, uint32_t *ext_id_r);
/* Record that the transaction with modseq expunged ranges (sorted, not
 * overlapping).  Keeps the history within b->xhist_max ranges by
 * forgetting the oldest entries (raising xhist.oldest). */
/* Decode a "mix.expunges" extension header into b's history (xhist.c;
 * MIX_ECORRUPT naming the offset of bad data). */
int mix_xhist_decode(struct mix_builder *b, const uint8_t *p, uint32_t size);
/* Object lifetime inside a build (snapshot-build.c): a new reclaimable
 * object born at gen; one that leaves the state being built (freed now if
 * no snapshot ever saw it, else retired with the generation it died in). */
void mix_robj_init(struct mix_robj *o, uint32_t kind, uint64_t gen);
/* A chunk's count, UID bounds, highest modseq and flag counters (not its
 * records, capacity or object header), for a copy or a mapped twin. */
void mix_chunk_meta_copy(struct mix_chunk *to, const struct mix_chunk *from);
void mix_builder_retire(struct mix_builder *b, struct mix_robj *o);
int mix_builder_xhist_add(struct mix_builder *b, uint64_t modseq,
			  const struct mix_log_uid_range *ranges, uint32_t n);

/* Raise highest_modseq (a transaction with any effective change). */
void mix_builder_touch(struct mix_builder *b, uint64_t modseq);

/* Build a snapshot whose chunks point into a verified mix.index mapping
 * (which the snapshot's chunks then own through map). */
struct mix_ifile;
int mix_builder_from_ifile(struct mix_builder *b, uint64_t gen,
			   const struct mix_ifile *f, struct mix_map *map);

/* After an asynchronous checkpoint wrote snapshot base (generation
 * base_gen) to a new mix.index (map): start building cur's successor in
 * which every chunk cur still shares with base is replaced by its record
 * run in map.  keys[k] (base's non-empty chunks in UID order, pointer
 * values only: base may be freed), first[k] (their first UIDs) and
 * mapped[k] (a chunk struct of the same records in map, count and
 * summary filled in; set to NULL when used, the rest stay the caller's),
 * k < n.  Replaced chunks and old_map (may be NULL) are retired at b's
 * generation; map is born at it.  MIX_EINVAL (b aborted) if a chunk of
 * cur would still point into old_map.  *replaced_r: chunks moved. */
int mix_builder_rebase(struct mix_builder *b, const struct mix_snap *cur,
		       uint64_t base_gen, struct mix_chunk *const *keys,
		       const uint32_t *first, struct mix_chunk **mapped,
		       uint32_t n, struct mix_map *map,
		       struct mix_map *old_map, uint32_t *replaced_r);

/* Retire every shared object of old (and old_map) at b's generation. */
void mix_builder_retire_all(struct mix_builder *b, const struct mix_snap *old,
			    struct mix_map *old_map);

/* The expunge history as the "mix.expunges" header data (§2.6), in a
 * malloc'd buffer. */
int mix_xhist_encode(const struct mix_xhist *x, uint8_t **buf_r,
		     uint32_t *size_r);

/* Records in UID order for a checkpoint: iterate (chunk, count) runs. */
struct mix_snap_runs {
	const struct mix_snap *snap;
	uint32_t next;
};
int mix_snap_next_run(void *ctx, const uint8_t **recs_r, uint32_t *count_r);

#endif
