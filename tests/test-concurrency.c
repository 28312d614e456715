/*
 * Concurrency (invariant 1, docs/design.md "The write path" and "Snapshots and the read path"): 8 reader threads look
 * up and iterate snapshots while 4 threads commit, for 2 seconds (scaled
 * by MIX_TEST_SCALE), with a tiny log rotation size so checkpoints and
 * remaps (chunks moving into a new mapping) happen under the readers.
 *
 * Readers check each snapshot: UIDs strictly increasing, iteration count
 * equals messages_count, lookups by UID and by sequence agree with
 * iteration, no record modseq above highest_modseq, no UID at or above
 * next_uid, and highest_modseq never goes backwards for a reader.
 * Committers check that their acknowledged commit is visible to their own
 * next snapshot.  Run under ThreadSanitizer by `make tsan`.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

#define READERS 8
#define COMMITTERS 4

static struct mix_index *idx;
static int stop;
static long violations;
static long lookups_total, commits_total, snaps_total;
static char first_violation[512];

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;
	if (__atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED) == 0) {
		va_start(ap, fmt);
		vsnprintf(first_violation, sizeof(first_violation), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

static int check_snapshot(const struct mix_snap *s, uint64_t *rng)
{
	struct mix_iter it;
	struct mix_record rec, r2;
	uint32_t n = 0, prev = 0, count = mix_snap_messages_count(s);
	uint64_t hms = mix_snap_highest_modseq(s);
	int lookups = 0;

	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &rec)) {
		n++;
		if (rec.uid <= prev || rec.seq != n ||
		    rec.modseq > hms || rec.uid >= mix_snap_next_uid(s)) {
			violation("record seq %u uid %u (prev %u) modseq %llx "
				  "(highest %llx) next_uid %u", rec.seq,
				  rec.uid, prev, (unsigned long long)rec.modseq,
				  (unsigned long long)hms, mix_snap_next_uid(s));
			return lookups;
		}
		prev = rec.uid;
		if (tu_rand_below(rng, 16) == 0) {
			lookups += 2;
			if (!mix_snap_lookup_uid(s, rec.uid, &r2) ||
			    r2.seq != rec.seq ||
			    !mix_snap_lookup_seq(s, rec.seq, &r2) ||
			    r2.uid != rec.uid)
				violation("lookup of uid %u / seq %u disagrees",
					  rec.uid, rec.seq);
			if (rec.uid > 1 &&
			    mix_snap_lookup_uid(s, rec.uid - 1, &r2) &&
			    r2.seq != rec.seq - 1)
				violation("uid %u found at seq %u", rec.uid - 1,
					  r2.seq);
		}
	}
	if (n != count)
		violation("iterated %u records, messages_count %u", n, count);
	return lookups;
}

static void *reader(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 1, last = 0;
	long lookups = 0, snaps = 0;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		const struct mix_snap *s;
		uint64_t hms;
		mix_read_lock();
		s = mix_index_snap(idx);
		hms = mix_snap_highest_modseq(s);
		if (hms < last)
			violation("highest_modseq went back: %llx after %llx",
				  (unsigned long long)hms,
				  (unsigned long long)last);
		last = hms;
		lookups += check_snapshot(s, &rng);
		mix_read_unlock();
		snaps++;
	}
	__atomic_add_fetch(&lookups_total, lookups, __ATOMIC_RELAXED);
	__atomic_add_fetch(&snaps_total, snaps, __ATOMIC_RELAXED);
	return NULL;
}

static void *committer(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 104729 + 3;
	long commits = 0;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct mix_txn *t;
		struct mix_commit_result res;
		uint32_t next, count, op = tu_rand_below(&rng, 4);
		int ret;

		mix_read_lock();
		next = mix_snap_next_uid(mix_index_snap(idx));
		count = mix_snap_messages_count(mix_index_snap(idx));
		mix_read_unlock();
		if (mix_txn_begin(idx, &t) < 0) {
			violation("begin: %s", mix_last_error());
			break;
		}
		if (op == 0 || count < 500) {
			uint32_t i, n = 1 + tu_rand_below(&rng, 8);
			for (i = 0; i < n; i++)
				mix_txn_append(t, MIX_FLAG_RECENT, NULL, NULL);
		} else {
			uint32_t a = 1 + tu_rand_below(&rng, next);
			struct mix_uid_range r = { a, a + tu_rand_below(&rng, 10) };
			if (op == 1 && count > 1500)
				mix_txn_expunge(t, &r, 1);
			else
				mix_txn_flags(t, &r, 1, op == 2 ? MIX_MODIFY_ADD
								 : MIX_MODIFY_REMOVE,
					      MIX_FLAG_SEEN);
		}
		ret = mix_txn_commit(&t, tu_rand_below(&rng, 20) ?
				     MIX_DURABILITY_NONE : MIX_DURABILITY_SYNC,
				     &res);
		if (ret < 0) {
			violation("commit: %s: %s", mix_strerror(ret),
				  mix_last_error());
			break;
		}
		mix_read_lock();
		if (mix_snap_highest_modseq(mix_index_snap(idx)) < res.modseq)
			violation("acknowledged modseq %llx not visible",
				  (unsigned long long)res.modseq);
		mix_read_unlock();
		commits++;
	}
	__atomic_add_fetch(&commits_total, commits, __ATOMIC_RELAXED);
	return NULL;
}

int main(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	pthread_t rt[READERS], ct[COMMITTERS];
	char *dir = tu_tmpdir("conc");
	double secs = 2.0 * tu_scale();
	struct timespec ts;
	uintptr_t i;

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 16384;
	is(mix_engine_create(&cfg, &e), 0, "engine");
	is(mix_index_open(e, dir, MIX_OPEN_CREATE, &idx), 0, "index");
	for (i = 0; i < READERS; i++)
		pthread_create(&rt[i], NULL, reader, (void *)i);
	for (i = 0; i < COMMITTERS; i++)
		pthread_create(&ct[i], NULL, committer, (void *)i);
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < READERS; i++)
		pthread_join(rt[i], NULL);
	for (i = 0; i < COMMITTERS; i++)
		pthread_join(ct[i], NULL);
	diag("%.1f s: %ld commits, %ld snapshots checked, %ld lookups", secs,
	     commits_total, snaps_total, lookups_total);
	is(violations, 0, "%d readers and %d committers: no violation%s%s",
	   READERS, COMMITTERS, violations ? ": " : "", first_violation);
	ok(commits_total > 0 && snaps_total > 0, "work was done");
	is(mix_index_close(&idx), 0, "closed");
	is(mix_engine_free(&e), 0, "engine freed");
	tu_rmdir_r(dir);
	free(dir);
	return tap_done();
}
