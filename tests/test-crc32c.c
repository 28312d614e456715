/*
 * Tests of engine/crc32c.c (docs/format.md §1): the standard CRC32C test
 * vectors on both implementations, and the continuation property
 * crc(crc(a), b) == crc(a||b) on random buffers, lengths and alignments,
 * comparing the SSE4.2 path (mix_crc32c, when the CPU has it) with the
 * table path (mix_crc32c_sw).  The seed is printed; replay with MIX_SEED.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "tap.h"
#include "testutil.h"

typedef uint32_t crc_fn(uint32_t, const void *, size_t);

struct vector {
	const char *name;
	uint8_t data[48];
	size_t len;
	uint32_t crc;
};

/* RFC 3720 B.4 and the usual check value. */
static void make_vectors(struct vector *v)
{
	static const uint8_t read_pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
		0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	memset(v, 0, 6 * sizeof(*v));
	v[0].name = "\"123456789\"";
	memcpy(v[0].data, "123456789", 9);
	v[0].len = 9;
	v[0].crc = 0xe3069283u;
	v[1].name = "32 zero bytes";
	v[1].len = 32;
	v[1].crc = 0x8a9136aau;
	v[2].name = "32 0xff bytes";
	memset(v[2].data, 0xff, 32);
	v[2].len = 32;
	v[2].crc = 0x62a8ab43u;
	v[3].name = "incrementing 0..31";
	for (int i = 0; i < 32; i++)
		v[3].data[i] = (uint8_t)i;
	v[3].len = 32;
	v[3].crc = 0x46dd794eu;
	v[4].name = "decrementing 31..0";
	for (int i = 0; i < 32; i++)
		v[4].data[i] = (uint8_t)(31 - i);
	v[4].len = 32;
	v[4].crc = 0x113fdb5cu;
	v[5].name = "iSCSI read PDU";
	memcpy(v[5].data, read_pdu, sizeof(read_pdu));
	v[5].len = 48;
	v[5].crc = 0xd9963a56u;
}

static void test_vectors(crc_fn *fn, const char *impl)
{
	struct vector v[6];
	make_vectors(v);
	for (int i = 0; i < 6; i++)
		is(fn(0, v[i].data, v[i].len), v[i].crc, "%s: %s", impl,
		   v[i].name);
	is(fn(0, NULL, 0), 0, "%s: empty input gives 0", impl);
	is(fn(0x12345678u, "", 0), 0x12345678u,
	   "%s: empty input leaves a running CRC unchanged", impl);
	/* byte at a time through the continuation */
	{
		uint32_t c = 0;
		for (int i = 0; i < 9; i++)
			c = fn(c, &"123456789"[i], 1);
		is(c, 0xe3069283u, "%s: \"123456789\" one byte per call", impl);
	}
}

/* Random buffer contents, lengths 0..4200, start offsets 0..15, split at
 * a random point: all four (hw/sw x whole/split) must agree. */
static void test_random(uint64_t *seed, int rounds)
{
	uint8_t *mem = malloc(4200 + 16);
	int bad = 0;
	if (!mem)
		BAIL("out of memory");
	for (int r = 0; r < rounds && !bad; r++) {
		size_t len = tu_rand_below(seed, 4201);
		size_t align = tu_rand_below(seed, 16);
		size_t cut = tu_rand_below(seed, (uint32_t)len + 1);
		uint8_t *p = mem + align;
		uint32_t whole, sw, hw_split, sw_split;
		for (size_t i = 0; i < len; i++)
			p[i] = (uint8_t)tu_rand(seed);
		whole = mix_crc32c(0, p, len);
		sw = mix_crc32c_sw(0, p, len);
		hw_split = mix_crc32c(mix_crc32c(0, p, cut), p + cut, len - cut);
		sw_split = mix_crc32c_sw(mix_crc32c_sw(0, p, cut), p + cut,
					 len - cut);
		/* mixing the implementations across the cut must work too */
		if (whole != sw || whole != hw_split || whole != sw_split ||
		    mix_crc32c_sw(mix_crc32c(0, p, cut), p + cut, len - cut) !=
			    whole) {
			diag("round %d: len %zu align %zu cut %zu: default "
			     "0x%08x table 0x%08x split 0x%08x/0x%08x", r, len,
			     align, cut, whole, sw, hw_split, sw_split);
			bad = 1;
		}
	}
	ok(!bad, "%d random buffers: default and table paths agree, whole "
	   "and split", rounds);
	free(mem);
}

/* A large buffer in uneven pieces. */
static void test_large(uint64_t *seed)
{
	size_t len = 3u << 20;
	uint8_t *p = malloc(len);
	uint32_t whole, pieces = 0, sw;
	size_t off = 0;
	if (!p)
		BAIL("out of memory");
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)tu_rand(seed);
	whole = mix_crc32c(0, p, len);
	sw = mix_crc32c_sw(0, p, len);
	while (off < len) {
		size_t n = 1 + tu_rand_below(seed, 100000);
		if (n > len - off)
			n = len - off;
		pieces = mix_crc32c(pieces, p + off, n);
		off += n;
	}
	is(whole, sw, "3 MiB: default path equals table path");
	is(pieces, whole, "3 MiB: random pieces equal one call");
	p[len / 2] ^= 0x10;
	ok(mix_crc32c(0, p, len) != whole, "3 MiB: one flipped bit changes "
	   "the CRC");
	free(p);
}

int main(void)
{
	uint64_t seed = tu_seed();
	diag("SSE4.2 crc32 instruction: %s",
	     mix_crc32c_have_hw() ? "used" : "not available (both paths "
	     "are the table)");
	test_vectors(mix_crc32c, "default");
	test_vectors(mix_crc32c_sw, "table");
	test_random(&seed, (int)(20000 * tu_scale()));
	test_large(&seed);
	return tap_done();
}
