/*
 * Statistics the engine exposes (mix_engine_stats, mix_engine_latency):
 * counters and histograms kept by the writers, plus process-wide counters
 * kept by the reclaimers and builders.  The read path keeps none.
 */
#include <string.h>
#include <time.h>

#include "engine.h"
#include "err.h"
#include "rcu.h"
#include "stats.h"

uint64_t mix_stat_snapshots_freed;
int64_t mix_stat_chunk_heap_bytes;

uint64_t mix_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mix_engine_stall_check(struct mix_engine *e, uint64_t now)
{
	uint64_t seq, last, start = mix_rcu_gp_started(&seq);
	uint64_t limit = (uint64_t)e->cfg.read_stall_ms * 1000000u;
	struct mix_read_stall st;
	pid_t tids[8];
	unsigned i;

	if (!start || !limit)
		return 0;
	last = __atomic_load_n(&e->stall_seq, __ATOMIC_RELAXED);
	if (last == seq)
		return 0;                   /* reported */
	if (now < start + limit)
		return start + limit;
	/* once per grace period, whoever gets here first */
	if (!__atomic_compare_exchange_n(&e->stall_seq, &last, seq, 0,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return 0;
	__atomic_add_fetch(&e->stat_read_stalls, 1, __ATOMIC_RELAXED);
	if (!e->cfg.read_stall)
		return 0;
	memset(&st, 0, sizeof(st));
	st.waited_ms = (now - start) / 1000000u;
	st.readers = mix_rcu_readers_inside(tids, 8);
	for (i = 0; i < st.readers && i < 8; i++)
		st.tids[i] = (int)tids[i];
	st.snapshot_heap_bytes = (uint64_t)__atomic_load_n(
		&mix_stat_chunk_heap_bytes, __ATOMIC_RELAXED);
	e->cfg.read_stall(e->cfg.read_stall_ctx, &st);
	return 0;
}

MIX_API void mix_engine_stats(struct mix_engine *e, struct mix_engine_stats *st)
{
	uint64_t now = mix_now_ns(), start;
	unsigned i, k;
	memset(st, 0, sizeof(*st));
	for (i = 0; i < e->nwriters; i++) {
		const struct mix_writer *w = &e->writers[i];
		st->commits += __atomic_load_n(&w->stat_txns, __ATOMIC_RELAXED);
		st->batches += __atomic_load_n(&w->stat_publishes,
					       __ATOMIC_RELAXED);
		st->fsyncs += __atomic_load_n(&w->stat_fsyncs, __ATOMIC_RELAXED);
		st->bytes_logged += __atomic_load_n(&w->stat_bytes,
						    __ATOMIC_RELAXED);
		st->checkpoints += __atomic_load_n(&w->stat_checkpoints,
						   __ATOMIC_RELAXED);
		st->checkpoint_failures += __atomic_load_n(
			&w->stat_ckpt_failures, __ATOMIC_RELAXED);
		for (k = 0; k < MIX_BATCH_BUCKETS; k++)
			st->batch_size_hist[k] += __atomic_load_n(
				&w->batch_hist[k], __ATOMIC_RELAXED);
		st->batches_by_committer += __atomic_load_n(
			&w->stat_by_committer, __ATOMIC_RELAXED);
		st->batches_held += __atomic_load_n(&w->stat_held,
						    __ATOMIC_RELAXED);
	}
	(void)mix_engine_stall_check(e, now);
	st->read_stalls = __atomic_load_n(&e->stat_read_stalls,
					  __ATOMIC_RELAXED);
	start = mix_rcu_gp_started(NULL);
	st->read_stall_ms = start && now > start ? (now - start) / 1000000u : 0;
	st->snapshots_freed = __atomic_load_n(&mix_stat_snapshots_freed,
					      __ATOMIC_RELAXED);
	st->snapshot_heap_bytes = (uint64_t)__atomic_load_n(
		&mix_stat_chunk_heap_bytes, __ATOMIC_RELAXED);
}

MIX_API int mix_engine_latency(struct mix_engine *e, enum mix_latency_kind kind,
			       struct mix_latency *r)
{
	uint64_t total = 0, seen = 0, want[3];
	uint64_t *out[3] = { &r->p50_ns, &r->p99_ns, &r->p999_ns };
	unsigned i, w, q = 0;
	uint64_t b[MIX_HIST_BUCKETS];

	if (kind != MIX_LATENCY_VISIBLE && kind != MIX_LATENCY_ACK)
		return mix_err(MIX_EINVAL, "unknown latency kind %d", kind);
	memset(r, 0, sizeof(*r));
	memset(b, 0, sizeof(b));
	for (w = 0; w < e->nwriters; w++) {
		const struct mix_hist *h = kind == MIX_LATENCY_VISIBLE ?
			&e->writers[w].lat_visible : &e->writers[w].lat_ack;
		uint64_t m = __atomic_load_n(&h->max, __ATOMIC_RELAXED);
		for (i = 0; i < MIX_HIST_BUCKETS; i++)
			b[i] += __atomic_load_n(&h->b[i], __ATOMIC_RELAXED);
		if (m > r->max_ns)
			r->max_ns = m;
	}
	for (i = 0; i < MIX_HIST_BUCKETS; i++)
		total += b[i];
	r->count = total;
	if (total == 0)
		return 0;
	want[0] = (total * 50 + 99) / 100;
	want[1] = (total * 99 + 99) / 100;
	want[2] = (total * 999 + 999) / 1000;
	for (i = 0; i < MIX_HIST_BUCKETS && q < 3; i++) {
		seen += b[i];
		while (q < 3 && seen >= want[q])
			*out[q++] = mix_hist_value(i);
	}
	return 0;
}
