/*
 * Writer-side statistics: latency histograms and counters (stats.c).
 * Each histogram has one writer thread (relaxed load + store, no locked
 * instruction); readers of the statistics sum them with relaxed loads.
 * Nothing here is touched on the read path.
 */
#ifndef MIX_STATS_H
#define MIX_STATS_H

#include <stdint.h>

/* Log-linear buckets: exact below 64 ns, then 8 per power of two
 * (12.5% resolution) up to 2^64 ns. */
#define MIX_HIST_BUCKETS 528

struct mix_hist {
	uint64_t b[MIX_HIST_BUCKETS];
	uint64_t max;
};

static inline unsigned mix_hist_bucket(uint64_t v)
{
	unsigned e;
	if (v < 64)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return 64u + (e - 6u) * 8u + (unsigned)((v >> (e - 3u)) & 7u);
}

/* Lowest value of a bucket. */
static inline uint64_t mix_hist_value(unsigned i)
{
	unsigned e;
	if (i < 64)
		return i;
	e = (i - 64u) / 8u + 6u;
	return (1ull << e) | ((uint64_t)((i - 64u) % 8u) << (e - 3u));
}

/* Single writer per histogram. */
static inline void mix_hist_add(struct mix_hist *h, uint64_t v)
{
	unsigned i = mix_hist_bucket(v);
	__atomic_store_n(&h->b[i], __atomic_load_n(&h->b[i], __ATOMIC_RELAXED)
			 + 1, __ATOMIC_RELAXED);
	if (v > __atomic_load_n(&h->max, __ATOMIC_RELAXED))
		__atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
}

uint64_t mix_now_ns(void);

/* Process-wide counters of the reclaimers and builders (not the read
 * path): snapshots freed, heap bytes held by chunks. */
extern uint64_t mix_stat_snapshots_freed;
extern int64_t mix_stat_chunk_heap_bytes;

#endif
