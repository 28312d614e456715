/*
 * CRC32C (Castagnoli): the checksum of every mix file, docs/format.md §1.
 *
 * Reflected polynomial 0x82F63B78, initial value and final xor ~0, so
 * mix_crc32c(0, "123456789", 9) == 0xE3069283 (the iSCSI/ext4/SSE4.2
 * CRC).  The API continues a CRC: because the final xor of one call is
 * undone by the initial xor of the next, mix_crc32c(mix_crc32c(0, a, n),
 * b, m) is the CRC of a||b.
 *
 * Two implementations give identical results: the SSE4.2 crc32
 * instruction (x86-64, chosen at run time from CPUID) and a slice-by-8
 * table for every other CPU.  The tables and the CPU check are set up once
 * per process under pthread_once and never change afterwards, so any
 * thread may call these functions at any time; nothing else is shared.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY 0x82f63b78u

/* crc_table[k][b]: the CRC state change of byte b followed by k zero
 * bytes; [0] is the classic byte-at-a-time table. */
static uint32_t crc_table[8][256];
static int crc_have_hw;

/* The hardware path runs three independent streams of CRC_LONG bytes at
 * once (the crc32 instruction has a latency of 3 cycles and a throughput
 * of 1), then joins them: the raw state after A||B||C is
 * shift(A-state, |B|+|C|) ^ shift(B-state from 0, |C|) ^ C-state from 0,
 * where shift(x, n) is the state after n zero bytes from x, a linear map
 * of x kept as four byte tables per distance (crc_shift1: CRC_LONG bytes,
 * crc_shift2: 2 × CRC_LONG). */
#define CRC_LONG 512
static uint32_t crc_shift1[4][256], crc_shift2[4][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t len);
#if defined(__x86_64__)
static void crc_shift_init(uint32_t t[4][256], size_t n);
#endif

static void crc_init(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
		crc_table[0][b] = c;
	}
	for (uint32_t b = 0; b < 256; b++) {
		for (int k = 1; k < 8; k++) {
			uint32_t c = crc_table[k - 1][b];
			crc_table[k][b] = (c >> 8) ^ crc_table[0][c & 0xff];
		}
	}
#if defined(__x86_64__)
	/* may run before the compiler's own CPU-model constructor */
	__builtin_cpu_init();
	crc_have_hw = __builtin_cpu_supports("sse4.2") != 0;
	crc_shift_init(crc_shift1, CRC_LONG);
	crc_shift_init(crc_shift2, 2 * CRC_LONG);
#endif
}

/* Build the tables when the library is loaded, before the program can
 * have threads: a fork() while another thread ran the first checksum
 * would leave the child waiting on pthread_once forever (docs/design.md
 * "Fork and the reclaim thread").  The pthread_once calls below stay for
 * checksums computed by other constructors before this one. */
__attribute__((constructor)) static void crc_load(void)
{
	pthread_once(&crc_once, crc_init);
}

/* Table implementation; c is the raw (already inverted) state. */
static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t len)
{
	while (len > 0 && ((uintptr_t)p & 7u) != 0) {
		c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, sizeof(w));
		w ^= c;
		/* the first byte has 7 more bytes behind it: table 7 */
		c = crc_table[7][w & 0xff] ^
		    crc_table[6][(w >> 8) & 0xff] ^
		    crc_table[5][(w >> 16) & 0xff] ^
		    crc_table[4][(w >> 24) & 0xff] ^
		    crc_table[3][(w >> 32) & 0xff] ^
		    crc_table[2][(w >> 40) & 0xff] ^
		    crc_table[1][(w >> 48) & 0xff] ^
		    crc_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
#endif
	while (len > 0) {
		c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
	return c;
}

#if defined(__x86_64__)
/* Tables of shift(x, n) (see CRC_LONG): the state after n zero bytes is
 * linear in x, so it is the xor of the images of x's set bits; the image
 * of each bit comes from running the table CRC over n zeros. */
static void crc_shift_init(uint32_t t[4][256], size_t n)
{
	static const uint8_t zeros[2 * CRC_LONG];
	uint32_t bit[32];
	for (int j = 0; j < 32; j++)
		bit[j] = crc_sw(1u << j, zeros, n);
	for (int k = 0; k < 4; k++)
		for (uint32_t b = 0; b < 256; b++) {
			uint32_t v = 0;
			for (int j = 0; j < 8; j++)
				if (b & (1u << j))
					v ^= bit[8 * k + j];
			t[k][b] = v;
		}
}

static inline uint32_t crc_shift(const uint32_t t[4][256], uint32_t x)
{
	return t[0][x & 0xff] ^ t[1][(x >> 8) & 0xff] ^
	       t[2][(x >> 16) & 0xff] ^ t[3][x >> 24];
}

/* SSE4.2 implementation; only called when CPUID says the CPU has it.
 * Three streams of CRC_LONG bytes at a time, then one dependency chain
 * (about 8 bytes per 3 cycles) for the rest. */
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t len)
{
	uint64_t c64;

	while (len > 0 && ((uintptr_t)p & 7u) != 0) {
		c = __builtin_ia32_crc32qi(c, *p++);
		len--;
	}
	c64 = c;
	while (len >= 3 * CRC_LONG) {
		uint64_t c1 = 0, c2 = 0;
		for (size_t i = 0; i < CRC_LONG; i += 8) {
			uint64_t w0, w1, w2;
			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + CRC_LONG + i, 8);
			memcpy(&w2, p + 2 * CRC_LONG + i, 8);
			c64 = __builtin_ia32_crc32di(c64, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		c64 = crc_shift(crc_shift2, (uint32_t)c64) ^
		      crc_shift(crc_shift1, (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * CRC_LONG;
		len -= 3 * CRC_LONG;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, sizeof(w));
		c64 = __builtin_ia32_crc32di(c64, w);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
	if (len >= 4) {
		uint32_t w;
		memcpy(&w, p, sizeof(w));
		c = __builtin_ia32_crc32si(c, w);
		p += 4;
		len -= 4;
	}
	while (len > 0) {
		c = __builtin_ia32_crc32qi(c, *p++);
		len--;
	}
	return c;
}
#endif

uint32_t mix_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_have_hw)
		return ~crc_hw(~crc, buf, len);
#endif
	return ~crc_sw(~crc, buf, len);
}

uint32_t mix_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw(~crc, buf, len);
}

int mix_crc32c_have_hw(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_have_hw;
}
