/*
 * UID range lists (ranges.h).  Pure: any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ranges.h"

int mix_ranges_add(struct mix_ranges *rs, uint32_t first, uint32_t last)
{
	if (rs->count == rs->cap) {
		uint32_t ncap = rs->cap ? rs->cap * 2 : 16;
		void *n = realloc(rs->r, ncap * sizeof(*rs->r));
		if (!n)
			return MIX_ENOMEM();
		rs->r = n;
		rs->cap = ncap;
	}
	rs->r[rs->count].first = first;
	rs->r[rs->count].last = last;
	rs->count++;
	return 0;
}

void mix_ranges_free(struct mix_ranges *rs)
{
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
}

static int range_cmp(const void *a, const void *b)
{
	const struct mix_uid_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

uint32_t mix_uid_ranges_normalize(struct mix_uid_range *r, uint32_t count)
{
	uint32_t i, n = 0;
	if (count < 2)
		return count;
	qsort(r, count, sizeof(*r), range_cmp);
	for (i = 0; i < count; i++) {
		if (n && (uint64_t)r[n - 1].last + 1 >= r[i].first) {
			if (r[i].last > r[n - 1].last)
				r[n - 1].last = r[i].last;
		} else {
			r[n++] = r[i];
		}
	}
	return n;
}
