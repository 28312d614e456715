/*
 * Unaligned little-endian loads and stores of the file formats' integer
 * fields (docs/format.md: every file is little-endian, and fields of log
 * records and mix.index may sit at any 4-byte or smaller alignment in a
 * buffer).  memcpy compiles to one plain load or store on x86-64 and
 * arm64; the formats carry MIX_COMPAT_LITTLE_ENDIAN, checked on open, so
 * host order is file order.  Any thread.
 */
#ifndef MIX_BYTES_H
#define MIX_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint16_t mix_get_u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t mix_get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t mix_get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void mix_put_u16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void mix_put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void mix_put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* 1 if the n bytes at p are all 0 (padding checks). */
static inline int mix_all_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return 0;
	}
	return 1;
}

#endif
