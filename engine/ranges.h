/*
 * UID range lists (ranges.c): the growable list the builder reports its
 * changes in, and the one sort-and-merge every caller of a set of ranges
 * uses (the committer's validation, the writer's result sets, the
 * CHANGEDSINCE and QRESYNC sets).  Pure: any thread, on the caller's own
 * memory.
 */
#ifndef MIX_RANGES_H
#define MIX_RANGES_H

#include <stdint.h>

#include "format.h"
#include "mix/mix.h"

/* The log's range and the public one are the same two u32s, so one
 * normalize serves both. */
_Static_assert(sizeof(struct mix_uid_range) ==
	       sizeof(struct mix_log_uid_range), "range layouts");

struct mix_ranges {
	struct mix_log_uid_range *r;
	uint32_t count, cap;
};
int mix_ranges_add(struct mix_ranges *rs, uint32_t first, uint32_t last);
void mix_ranges_free(struct mix_ranges *rs);

/* Sort r[0..count) by first UID and merge overlapping and adjacent
 * ranges, in place; returns the new count.  Each range must have
 * first <= last. */
uint32_t mix_uid_ranges_normalize(struct mix_uid_range *r, uint32_t count);

static inline uint32_t mix_log_ranges_normalize(struct mix_log_uid_range *r,
						uint32_t count)
{
	return mix_uid_ranges_normalize((struct mix_uid_range *)(void *)r,
					count);
}

#endif
