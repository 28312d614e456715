/*
 * libFuzzer target: the vmap header decoder and checker of a virtual
 * index (engine/virtual.c mix_virtual_hdr_decode, engine/virtual-check.c;
 * docs/format.md §5).  Input: a 2-byte little-endian header length H,
 * then H bytes of vmap header data (fewer if the input ends first; at
 * most 16384), then the records' vmap data, 8 bytes each for virtual UIDs
 * 1, 2, ... (a shorter tail is a record without vmap data).  Each input
 * runs as it is and with the header checksum recomputed (fuzz-common.h).
 *
 * Rules (besides ASan/UBSan): the checker reports exactly the problems it
 * counts, each with a field and an offset inside the header (or -1); the
 * load's decoder accepts a header exactly when the checker finds no
 * header problem, and then both read the same backend ids; with a sound
 * header the checker finds record problems exactly when a record breaks
 * §5.1 (compared with a direct reading of the rules for small inputs).
 * Built by `make fuzz`; tests/test-fuzz-regress.c replays corpus-vmap and
 * regress-vmap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-common.h"
#include "virtual.h"

#define FUZZ_VMAP_BRUTE_MAX 256   /* records compared with the rules */

struct fuzz_vmap_seen {
	size_t hdr_size;
	unsigned calls;
	int bad;
	char why[256];
};

static void fuzz_vmap_report(void *ctx, long long off, const char *field,
			     const char *msg)
{
	struct fuzz_vmap_seen *s = ctx;

	s->calls++;
	if (!s->bad && (field == NULL || !*field || msg == NULL || !*msg ||
			off < -1 || (off >= 0 && (size_t)off >= s->hdr_size))) {
		s->bad = 1;
		snprintf(s->why, sizeof(s->why), "report at offset %lld of a "
			 "%zu-byte header: field '%s' msg '%s'", off,
			 s->hdr_size, field ? field : "(null)",
			 msg ? msg : "(null)");
	}
}

/* The header length field and the split of the input. */
static void fuzz_vmap_split(const uint8_t *data, size_t size,
			    const uint8_t **h, size_t *hsize,
			    const uint8_t **recs, size_t *rsize)
{
	size_t n = size >= 2 ? (size_t)(data[0] | data[1] << 8) : 0;

	if (n > MIX_VIRTUAL_HDR_SIZE)
		n = MIX_VIRTUAL_HDR_SIZE;
	if (size < 2)
		size = 2;
	if (n > size - 2)
		n = size - 2;
	*h = data + 2;
	*hsize = n;
	*recs = data + 2 + n;
	*rsize = size - 2 - n;
}

static int fuzz_vmap_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* The load's decoder against the checker's verdict on the header. */
static int fuzz_vmap_decode(const uint8_t *h, size_t hsize,
			    const struct mix_vcheck *c, unsigned hdr_problems,
			    char *why, size_t why_size)
{
	struct mix_virtual v;
	char dwhy[256];
	int ret;

	if (hsize == 0 || fuzz_vmap_all_zero(h, hsize))
		return 0;       /* the load does not decode those */
	memset(&v, 0, sizeof(v));
	ret = mix_virtual_hdr_decode(&v, h, hsize, dwhy, sizeof(dwhy));
	if (ret == -ENOMEM) {
		mix_virtual_bk_free_all(&v);
		free(v.bk);
		return 0;
	}
	if ((ret == 0) != (hdr_problems == 0)) {
		mix_virtual_bk_free_all(&v);
		free(v.bk);
		return fuzz_bad(why, why_size, "the load's decoder says %s, "
				"the checker found %u header problems",
				ret == 0 ? "sound" : dwhy, hdr_problems);
	}
	if (ret != 0) {         /* both call it damage */
		mix_virtual_bk_free_all(&v);
		free(v.bk);
		return 0;
	}
	if (!c->hdr_ok || c->count != v.bk_count)
		ret = fuzz_bad(why, why_size, "decoder: %u backends, checker: "
			       "%u (hdr_ok %d)", v.bk_count, c->count,
			       c->hdr_ok);
	for (uint32_t i = 0; ret == 0 && i < v.bk_count; i++)
		if (v.bk[i].id != c->ent[i].id ||
		    v.bk[i].next_uid != c->ent[i].next_uid)
			ret = fuzz_bad(why, why_size, "entry %u: decoder id %u "
				       "next_uid %u, checker %u %u", i,
				       v.bk[i].id, v.bk[i].next_uid,
				       c->ent[i].id, c->ent[i].next_uid);
	mix_virtual_bk_free_all(&v);
	free(v.bk);
	return ret < 0 ? -1 : 0;
}

/* §5.1 read directly: does any record break a rule? */
static int fuzz_vmap_rules_broken(const struct mix_vcheck *c,
				  const uint8_t *recs, size_t rsize)
{
	size_t n = rsize / 8;

	if (rsize % 8)
		return 1;       /* a record without vmap data */
	for (size_t i = 0; i < n; i++) {
		uint32_t id = fuzz_ld32(recs + i * 8);
		uint32_t ruid = fuzz_ld32(recs + i * 8 + 4);
		uint32_t k;
		for (k = 0; k < c->count && c->ent[k].id != id; k++)
			;
		if (ruid == 0 || k == c->count || ruid >= c->ent[k].next_uid)
			return 1;
		for (size_t j = 0; j < i; j++)
			if (memcmp(recs + j * 8, recs + i * 8, 8) == 0)
				return 1;
	}
	return 0;
}

static int fuzz_vmap_one(const uint8_t *data, size_t size, char *why,
			 size_t why_size)
{
	struct fuzz_vmap_seen seen;
	struct mix_vcheck c;
	const uint8_t *h, *recs;
	size_t hsize, rsize, n, i;
	unsigned hdr_problems;
	int ret = 0;

	fuzz_vmap_split(data, size, &h, &hsize, &recs, &rsize);
	n = rsize / 8 + (rsize % 8 != 0);
	memset(&seen, 0, sizeof(seen));
	seen.hdr_size = hsize;
	mix_vcheck_init(&c, fuzz_vmap_report, &seen);
	if (mix_vcheck_hdr(&c, hsize ? h : NULL, hsize, (uint32_t)n) < 0)
		goto out;       /* out of memory */
	hdr_problems = c.problems;
	if (fuzz_vmap_decode(h, hsize, &c, hdr_problems, why, why_size) < 0) {
		ret = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		size_t left = rsize - i * 8;
		if (mix_vcheck_rec(&c, (uint32_t)i + 1, recs + i * 8,
				   left < 8 ? left : 8) < 0)
			goto out;
	}
	mix_vcheck_finish(&c);
	if (seen.bad) {
		ret = fuzz_bad(why, why_size, "%s", seen.why);
	} else if (c.rec_problems <= 20 && seen.calls != c.problems) {
		ret = fuzz_bad(why, why_size, "%u problems counted, %u "
			       "reported", c.problems, seen.calls);
	} else if (c.hdr_ok && n <= FUZZ_VMAP_BRUTE_MAX &&
		   (c.rec_problems != 0) !=
		   fuzz_vmap_rules_broken(&c, recs, rsize)) {
		ret = fuzz_bad(why, why_size, "the checker found %u record "
			       "problems, the rules say %s", c.rec_problems,
			       c.rec_problems ? "none" : "some");
	}
out:
	mix_vcheck_free(&c);
	return ret;
}

/* The vmap header checksum at offset 8 of the header (§5.2), over
 * [0, used) when used is in range. */
static void fuzz_fix_vmap(uint8_t *buf, size_t size)
{
	const uint8_t *h, *recs;
	size_t hsize, rsize;
	uint32_t used;

	fuzz_vmap_split(buf, size, &h, &hsize, &recs, &rsize);
	if (hsize < MIX_VIRTUAL_HDR_FIXED)
		return;
	used = fuzz_ld32(h + 12);
	if (used >= 12 && used <= hsize)
		fuzz_put_crc(buf + 2, used, 8);
}

int mix_fuzz_vmap(const uint8_t *data, size_t size, char *why,
		  size_t why_size)
{
	return fuzz_both(fuzz_vmap_one, fuzz_fix_vmap, data, size, why,
			 why_size);
}

#ifndef MIX_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512];

	if (mix_fuzz_vmap(data, size, why, sizeof(why)) < 0) {
		fprintf(stderr, "fuzz-vmap: %s\n", why);
		abort();
	}
	return 0;
}
#endif
