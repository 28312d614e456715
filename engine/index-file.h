/*
 * mix.index: reading (map + verify) and writing (checkpoint) of the main
 * index file, docs/format.md §2.  This module knows the file layout only;
 * it does not know snapshots.  Readers of the result get validated data:
 * every offset and size below is inside the mapping.
 */
#ifndef MIX_INDEX_FILE_H
#define MIX_INDEX_FILE_H

#include <stddef.h>
#include <stdint.h>
#include "format.h"

#define MIX_INDEX_FILENAME "mix.index"

/* One extension as the file describes it. */
struct mix_ifile_ext {
	char name[MIX_EXT_NAME_MAX + 1];   /* NUL-terminated copy */
	uint32_t reset_id;
	uint32_t hdr_size;
	const uint8_t *hdr;                /* hdr_size bytes (in the map) */
	uint16_t rec_offset;
	uint16_t rec_size;
	uint16_t rec_align;
};

/* A verified mix.index. */
struct mix_ifile {
	void *map;                 /* the whole file, PROT_READ */
	size_t map_size;
	const struct mix_index_header *hdr;   /* == map */
	uint32_t ext_count;        /* >= 2: [0] "modseq", [1] "keywords" */
	struct mix_ifile_ext *exts;           /* malloc'd array */
	uint32_t keyword_count;
	const char **keywords;     /* malloc'd array of pointers into the map;
				    * each NUL-terminated, unique, 1..255 bytes */
	const uint8_t *records;    /* messages_count * record_size bytes */
};

/*
 * Map and verify path.  On success *f_r owns the mapping and arrays (free
 * with mix_ifile_free).  Returns 0; -ENOENT (no such file; message set);
 * MIX_EVERSION (other byte order, newer major version); MIX_ECORRUPT with
 * a message naming path, field and offset, or path and its file type when
 * it is not a regular file (a symbolic link is followed; opening never
 * blocks, so a FIFO is refused at once); other -errno.
 *
 * Verification (docs/format.md §2.5): magic; versions; compat flags;
 * base_header_size >= 120 and 8-aligned; header_size, record_size (>= 16,
 * multiple of 8) and file_size agree with the file length; checksum;
 * extension headers well formed (8-aligned, inside header_size, names
 * 1..63 bytes and unique, record data inside the record, aligned, not
 * overlapping each other or the fixed 16 bytes); the first two are
 * "modseq" (offset 8, size 8) and "keywords" (offset 16); keyword names
 * valid and fitting the bitmap; records: UIDs > 0, strictly increasing,
 * below next_uid; flags within MIX_FLAGS_ALL; modseq <= highest_modseq;
 * seen/deleted counts equal to the records'; low-water marks not above
 * the first matching UID.
 */
int mix_ifile_open(const char *path, struct mix_ifile *f_r);
/* The same for the name of path in the directory held as dfd (fileio.h
 * "the _in calls"). */
int mix_ifile_open_in(int dfd, const char *path, struct mix_ifile *f_r);
/* The same without the checksum (§2.5 step 8), every other check kept:
 * for MIX_OPEN_SALVAGE only, when nothing else can bring the state back
 * (recovery.c). */
int mix_ifile_open_nocrc_in(int dfd, const char *path,
			    struct mix_ifile *f_r);

/* Same verification on a buffer (no mapping is taken: f_r->map is NULL and
 * pointers point into buf, which must outlive f_r).  For tests and the
 * fuzzer.  path is only used in messages. */
int mix_ifile_parse(const void *buf, size_t size, const char *path,
		    struct mix_ifile *f_r);

/* Free the arrays and unmap (if mapped).  Safe on a zeroed struct. */
void mix_ifile_free(struct mix_ifile *f);

/* Free the arrays but keep the mapping: the caller took f->map and will
 * munmap(map, map_size) itself (snapshots keep records in the map). */
void mix_ifile_free_keep_map(struct mix_ifile *f);

/* What a checkpoint writes. */
struct mix_ifile_src {
	/* header fields; mix_ifile_write sets magic, versions,
	 * base_header_size, header_size, record_size, compat_flags, checksum
	 * and file_size itself and takes the rest from here */
	struct mix_index_header hdr;
	uint16_t record_size;
	/* extensions in order, [0] "modseq" and [1] "keywords"; the
	 * "keywords" header data is encoded from keywords[] below (its hdr
	 * and hdr_size here are ignored) */
	uint32_t ext_count;
	const struct mix_ifile_ext *exts;
	uint32_t keyword_count;
	const char *const *keywords;
	/* records in UID order, handed out in runs: returns 1 and a run of
	 * *count_r records (record_size each), or 0 at the end */
	int (*next_run)(void *ctx, const uint8_t **recs_r, uint32_t *count_r);
	void *ctx;
};

/*
 * Checkpoint: write dir/mix.index.tmp, fsync it, rename it over
 * dir/mix.index and fsync dir (invariant 3).  The record count written
 * must equal hdr.messages_count (MIX_EINVAL otherwise, nothing renamed).
 * On error the old mix.index is untouched and the temp file removed.
 * dfd: dir held open, in which the names are taken (fileio.h "the _in
 * calls"), or -1: under the path dir.
 */
int mix_ifile_write(int dfd, const char *dir,
		    const struct mix_ifile_src *src);

/* Encode the "keywords" extension header data (§2.3) into a malloc'd
 * buffer; returns 0 or -ENOMEM.  Exposed for tests. */
int mix_ifile_keywords_encode(const char *const *names, uint32_t count,
			      uint8_t **buf_r, uint32_t *size_r);

#endif
