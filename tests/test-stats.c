/*
 * Statistics (engine/stats.c, engine/stats.h): the histogram's bucket
 * arithmetic (every value falls in the bucket whose range holds it, with
 * at most 12.5% error), and the engine's counters and latency percentiles
 * after real commits (ordered p50 <= p99 <= p99.9 <= max, counts that add
 * up, heap bytes back to where they were once snapshots are freed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mix/mix.h"
#include "stats.h"
#include "tap.h"
#include "testutil.h"

static void test_buckets(void)
{
	uint64_t rng = tu_seed(), v;
	unsigned i, bad = 0, prev = 0;
	for (i = 0; i < 200000; i++) {
		unsigned b;
		v = i < 100000 ? i : tu_rand(&rng) >> tu_rand_below(&rng, 64);
		b = mix_hist_bucket(v);
		if (b >= MIX_HIST_BUCKETS || mix_hist_value(b) > v ||
		    (b + 1 < MIX_HIST_BUCKETS && mix_hist_value(b + 1) <= v) ||
		    (v >= 64 && (double)(v - mix_hist_value(b)) / v > 0.125)) {
			if (bad++ < 3)
				diag("v %llu bucket %u low %llu",
				     (unsigned long long)v, b,
				     (unsigned long long)mix_hist_value(b));
		}
		if (i < 100000 && b < prev)
			bad++;
		prev = b;
	}
	is(bad, 0, "200000 values: each in its bucket, error <= 12.5%%, "
	   "buckets monotone");
	is(mix_hist_bucket(UINT64_MAX), MIX_HIST_BUCKETS - 1,
	   "the largest value has the last bucket");
}

int main(void)
{
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_engine_stats st;
	struct mix_latency lv, la;
	char *dir = tu_tmpdir("stats");
	uint64_t sum = 0, heap0;
	int i, k;

	test_buckets();
	mix_engine_create(NULL, &e);
	mix_engine_stats(e, &st);
	heap0 = st.snapshot_heap_bytes;
	mix_index_open(e, dir, MIX_OPEN_CREATE, &idx);
	for (i = 0; i < 300; i++) {
		struct mix_txn *t;
		mix_txn_begin(idx, &t);
		mix_txn_append(t, 0, NULL, NULL);
		mix_txn_commit(&t, i % 10 ? MIX_DURABILITY_NONE
					  : MIX_DURABILITY_SYNC, NULL);
	}
	mix_engine_stats(e, &st);
	for (k = 0; k < MIX_BATCH_BUCKETS; k++)
		sum += st.batch_size_hist[k];
	ok(st.commits >= 300 && st.batches >= 1 && st.batches <= st.commits &&
	   sum >= 1 && st.fsyncs >= 1 && st.bytes_logged > 0,
	   "counters: %llu commits, %llu batches, %llu fsyncs, %llu bytes",
	   (unsigned long long)st.commits, (unsigned long long)st.batches,
	   (unsigned long long)st.fsyncs,
	   (unsigned long long)st.bytes_logged);
	ok(mix_engine_latency(e, MIX_LATENCY_VISIBLE, &lv) == 0 &&
	   mix_engine_latency(e, MIX_LATENCY_ACK, &la) == 0, "latency");
	ok(lv.count >= 300 && lv.p50_ns > 0 && lv.p50_ns <= lv.p99_ns &&
	   lv.p99_ns <= lv.p999_ns && lv.p999_ns <= lv.max_ns,
	   "visible: %llu commits, p50 %llu ns p99 %llu p99.9 %llu max %llu",
	   (unsigned long long)lv.count, (unsigned long long)lv.p50_ns,
	   (unsigned long long)lv.p99_ns, (unsigned long long)lv.p999_ns,
	   (unsigned long long)lv.max_ns);
	ok(la.count == lv.count && la.p50_ns >= lv.p50_ns,
	   "ack: p50 %llu ns (after visible)", (unsigned long long)la.p50_ns);
	is(mix_engine_latency(e, (enum mix_latency_kind)7, &la), MIX_EINVAL,
	   "unknown kind refused");
	mix_index_close(&idx);
	/* a close frees the index's memory after a grace period, on the
	 * reclaim thread (index.c index_free): wait for it, a minute at
	 * most (a wait for the frees, not a timing check) */
	for (int w = 0; w < 6000; w++) {
		mix_engine_stats(e, &st);
		if (st.snapshot_heap_bytes == heap0)
			break;
		usleep(10000);
	}
	ok(st.snapshot_heap_bytes == heap0 && st.snapshots_freed > 0,
	   "after close: heap bytes back to %llu, %llu snapshots freed",
	   (unsigned long long)st.snapshot_heap_bytes,
	   (unsigned long long)st.snapshots_freed);
	mix_engine_free(&e);
	tu_rmdir_r(dir);
	free(dir);
	return tap_done();
}
