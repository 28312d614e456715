/* CRC32C (Castagnoli), as used by every checksum in docs/format.md. */
#ifndef MIX_CRC32C_H
#define MIX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc over buf (start with crc = 0).  Uses the SSE4.2 crc32
 * instruction when the CPU has it, a table otherwise; both give the same
 * values (tests/test-crc32c.c checks the standard test vectors). */
uint32_t mix_crc32c(uint32_t crc, const void *buf, size_t len);

/* For tests: the table implementation alone (same values as mix_crc32c),
 * and whether mix_crc32c uses the SSE4.2 instruction on this CPU. */
uint32_t mix_crc32c_sw(uint32_t crc, const void *buf, size_t len);
int mix_crc32c_have_hw(void);

#endif
