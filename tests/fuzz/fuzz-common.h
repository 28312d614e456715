/*
 * Shared by the libFuzzer targets (fuzz-ifile.c, fuzz-log.c, fuzz-vmap.c,
 * fuzz-mlist.c)
 * and by their regression replayer (tests/test-fuzz-regress.c, which
 * includes the
 * targets with MIX_FUZZ_NO_MAIN): the oracle that a snapshot built from
 * fuzzed input is self-consistent, and its freeing.  docs/reliability.md.
 *
 * A target returns 0, or -1 with a description in why when the engine
 * broke a rule on hostile input (shared/DESIGN.md invariant 6): an error
 * without the file's name in its message, an error code outside the
 * documented ones, or a snapshot that contradicts itself.  Crashes,
 * leaks and undefined behaviour are left to ASan and UBSan.
 */
#ifndef MIX_FUZZ_COMMON_H
#define MIX_FUZZ_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mix.h"
#include "crc32c.h"
#include "reclaim.h"
#include "snapshot.h"

int mix_fuzz_ifile(const uint8_t *data, size_t size, char *why,
		   size_t why_size);
int mix_fuzz_log(const uint8_t *data, size_t size, char *why,
		 size_t why_size);
int mix_fuzz_vmap(const uint8_t *data, size_t size, char *why,
		  size_t why_size);
int mix_fuzz_mlist(const uint8_t *data, size_t size, char *why,
		   size_t why_size);

static int fuzz_bad(char *why, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fuzz_bad(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return -1;
}

/* An error from parsing hostile bytes: a documented code and a message
 * that names the file (invariant 6). */
static int fuzz_check_error(int ret, const char *path, char *why,
			    size_t size)
{
	const char *msg = mix_last_error();

	if (ret != MIX_ECORRUPT && ret != MIX_EVERSION && ret != -ENOMEM &&
	    ret != MIX_ELIMIT)
		return fuzz_bad(why, size, "error %d (%s) is not MIX_ECORRUPT, "
				"MIX_EVERSION, MIX_ELIMIT or -ENOMEM: %s", ret,
				mix_strerror(ret), msg);
	if (strstr(msg, path) == NULL)
		return fuzz_bad(why, size, "error message does not name the "
				"file '%s': \"%s\"", path, msg);
	return 0;
}

static inline uint32_t fuzz_ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* CRC32C of n bytes at p with the 4 bytes at field taken as 0 (format.md
 * §1), stored at field. */
static void fuzz_put_crc(uint8_t *p, size_t n, size_t field)
{
	static const uint8_t zero[4];
	uint32_t crc = mix_crc32c(0, p, field);
	crc = mix_crc32c(crc, zero, 4);
	crc = mix_crc32c(crc, p + field + 4, n - field - 4);
	memcpy(p + field, &crc, 4);
}

/*
 * A mutated file almost never has a valid checksum, so a fuzzer would
 * mostly test the checksum.  The targets run each input as it is and
 * again with its checksums recomputed, which lets mutations reach the
 * field checks, the decoder and the replayer.
 */
/* mix.index: the whole-file checksum at offset 108 (§2.1). */
static inline void fuzz_fix_ifile(uint8_t *buf, size_t size)
{
	if (size >= 120)
		fuzz_put_crc(buf, size, 108);
}

/* mix.index.log: the header checksum at 44 (§3.1), then the CRC of every
 * transaction the boundary records frame (§3.2), as far as they do. */
static inline void fuzz_fix_log(uint8_t *buf, size_t size)
{
	size_t pos;

	if (size < 48)
		return;
	fuzz_put_crc(buf, 48, 44);
	pos = (size_t)(buf[6] | buf[7] << 8);    /* hdr_size */
	while (pos >= 48 && pos % 4 == 0 && size - pos >= 16 && pos < size) {
		uint32_t tsize = fuzz_ld32(buf + pos + 8);
		if (tsize < 16 || tsize % 4 || tsize > size - pos)
			break;
		fuzz_put_crc(buf + pos, tsize, 12);
		pos += tsize;
	}
}

/* Run one target on data and on a copy with fixed checksums. */
static int fuzz_both(int (*one)(const uint8_t *, size_t, char *, size_t),
		     void (*fix)(uint8_t *, size_t), const uint8_t *data,
		     size_t size, char *why, size_t why_size)
{
	uint8_t *copy;
	int ret = one(data, size, why, why_size);

	if (ret < 0 || size == 0 || !(copy = malloc(size)))
		return ret;
	memcpy(copy, data, size);
	fix(copy, size);
	if (memcmp(copy, data, size) != 0)
		ret = one(copy, size, why, why_size);
	free(copy);
	return ret;
}

/* Every record against the header and the other lookups (format.md
 * §2.4-§2.5: what a verified index promises, and what the builder keeps
 * exact after any replay). */
static int fuzz_check_snap(const struct mix_snap *s, char *why, size_t size)
{
	uint32_t n = 0, seen = 0, deleted = 0, prev = 0, first_unseen = 0,
		 first_deleted = 0, kwc = mix_snap_keyword_count(s);
	uint64_t highest = mix_snap_highest_modseq(s);
	struct mix_snap_counts c;
	struct mix_record r, q;
	struct mix_iter it;

	for (uint32_t i = 0; i < kwc; i++) {
		const char *k = mix_snap_keyword_name(s, i);
		uint32_t j;
		if (!k || !*k || !mix_snap_keyword_lookup(s, k, &j) || j != i)
			return fuzz_bad(why, size, "keyword %u: name '%s' does "
					"not look up to itself", i, k ? k : "");
	}
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r)) {
		n++;
		if (r.seq != n || r.uid <= prev || r.uid >= mix_snap_next_uid(s))
			return fuzz_bad(why, size, "record %u: seq %u uid %u "
					"after uid %u, next_uid %u", n, r.seq,
					r.uid, prev, mix_snap_next_uid(s));
		if (r.modseq > highest || (r.flags & ~MIX_FLAGS_ALL))
			return fuzz_bad(why, size, "uid %u: modseq %llu "
					"(highest %llu) flags 0x%x", r.uid,
					(unsigned long long)r.modseq,
					(unsigned long long)highest, r.flags);
		for (uint32_t b = kwc; b < r.keywords_bits; b++)
			if (mix_record_has_keyword(&r, b))
				return fuzz_bad(why, size, "uid %u: keyword bit "
						"%u set, %u keywords", r.uid, b,
						kwc);
		if (mix_snap_lookup_uid(s, r.uid, &q) != 1 || q.seq != r.seq ||
		    mix_snap_lookup_seq(s, r.seq, &q) != 1 || q.uid != r.uid)
			return fuzz_bad(why, size, "uid %u seq %u: lookups "
					"disagree", r.uid, r.seq);
		if (r.flags & MIX_FLAG_SEEN)
			seen++;
		else if (!first_unseen)
			first_unseen = r.uid;
		if (r.flags & MIX_FLAG_DELETED) {
			deleted++;
			if (!first_deleted)
				first_deleted = r.uid;
		}
		prev = r.uid;
	}
	mix_snap_counts(s, &c);
	if (n != mix_snap_messages_count(s) || seen != c.seen ||
	    deleted != c.deleted)
		return fuzz_bad(why, size, "%u records, %u seen, %u deleted; "
				"header says %u, %u, %u", n, seen, deleted,
				mix_snap_messages_count(s), c.seen, c.deleted);
	if ((first_unseen && c.first_unseen_uid_lowwater > first_unseen) ||
	    (first_deleted && c.first_deleted_uid_lowwater > first_deleted))
		return fuzz_bad(why, size, "low-water marks %u / %u above the "
				"first unseen %u / deleted %u",
				c.first_unseen_uid_lowwater,
				c.first_deleted_uid_lowwater, first_unseen,
				first_deleted);
	return 0;
}

/* Finish b into a snapshot, check it and free everything. */
static int fuzz_finish(struct mix_builder *b, char *why, size_t size)
{
	struct mix_reclaim rc;
	struct mix_robj *retired;
	struct mix_snap *s;
	int ret;

	if (mix_builder_finish(b, &s, &retired) < 0) {
		mix_builder_abort(b);
		return 0;       /* out of memory: nothing to check */
	}
	ret = fuzz_check_snap(s, why, size);
	/* the reclaimer frees a snapshot and what it reaches, as close
	 * does (a default mutex: init cannot fail) */
	(void)mix_reclaim_init(&rc);
	mix_reclaim_publish(&rc, s, NULL, retired);
	mix_reclaim_destroy(&rc, s, NULL);
	return ret;
}

#endif
