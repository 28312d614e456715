/*
 * bench-views — figures for views (docs/design.md "Views, watchers, other processes", issue 3)
 * and CHANGEDSINCE (issue 4).  Only measures; never part of `make check`
 * (`make bench-views` runs it).  Uses only include/mix/mix.h.  One line
 * per figure, "name value unit", the parameters in the name; repeated
 * measurements report the median.
 *
 *   refresh  The figure to beat: 2 reader threads each hold a view and
 *            loop { mix_view_refresh(); 1,000 random mix_snap_lookup_uid
 *            on mix_view_snap() } while one thread commits one flag
 *            change per transaction (durability NONE) as fast as it can,
 *            on a --messages index (default 100,000).  Figures: lookups/s
 *            of both readers together (target >= 37 M/s); the mean cost
 *            of mix_view_refresh (target < 0.1 µs), also split into
 *            refreshes that moved and those that found nothing new; the
 *            committer's rate; and the same loop without the committer
 *            (the lookup rate when the two readers have the 2 cores to
 *            themselves).  Median of 5 runs of 2 s (--quick: 3 of 1 s).
 *
 *            How refresh is timed: each refresh call in the loop is
 *            bracketed by lfence;rdtsc and rdtscp;lfence (clock_gettime
 *            elsewhere).  The bracket's own cost is measured in the same
 *            thread just before the run (the median of 100,000 empty
 *            brackets: a mean would take in every interrupt and
 *            preemption of the calibration loop, which is nothing but
 *            brackets, while the run's brackets cover ~0.1% of its time)
 *            and subtracted from each sample; TSC ticks are converted to
 *            ns with the ratio of TSC ticks to CLOCK_MONOTONIC ns over the
 *            run.  The mean and the median of the samples are printed.  The
 *            brackets add ~2 x 10 ns to a round of ~20 µs, so they do not
 *            change the lookup figure.  Timing 1,000 rounds of
 *            refresh + lookups and subtracting a lookup-only baseline
 *            would not do: the baseline's noise (a 1% of 20 µs is 200 ns)
 *            is larger than what is measured.  A second method needs no
 *            timer at all: each reader calls mix_view_refresh 5,000,000
 *            times in a tight loop while the committer runs, and the
 *            loop's time is divided by the calls (refresh_tight_*): most
 *            of those find nothing new, so it is the cost of "a pointer
 *            load and a comparison" plus how often the committer makes
 *            it move.
 *
 *   sync10   mix_view_sync after 10 changes on 100,000 and 1,000,000
 *            messages (--quick: 10,000 and 100,000): a view is synced,
 *            10 transactions each change one message picked at random
 *            (10 different chunks, most likely), and the next sync is
 *            timed (clock_gettime around it; median of 200, p90 too).
 *            Two mixes: "flags" (10 flag changes) and "mixed" (6 flag
 *            changes, 2 single-message expunges, 2 appends: the expunge
 *            history and new messages too).  The report is checked (10
 *            changes, no full comparison).  The ratio of the large to the
 *            small mailbox must stay near 1: the cost follows the
 *            changes, not the mailbox.  Also: a sync with nothing new
 *            (tight loop, mean ns).
 *
 *   changedsince10  A CHANGEDSINCE iteration (mix_changed_iter) from the
 *            HIGHESTMODSEQ before 10 one-message flag changes, on the same
 *            two mailboxes (median of 200, µs, and the ratio).  Also
 *            changedsince_none: the same iteration from the current
 *            HIGHESTMODSEQ (nothing to find): the walk over the chunk
 *            directory alone, one entry per ~1,000 messages, which is the
 *            part of both figures that grows with the mailbox.
 *
 * Options: --dir DIR (required), --quick, --only NAME, --messages N
 * (the refresh figure's mailbox), --seed N.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include <mix/mix.h>

#include "stress.h"

static const char *g_dir;
static const char *g_only;
static int g_quick;
static uint32_t g_messages = 100000;
static struct mix_engine *g_engine;
static uint64_t g_seed;

/* ---- helpers ------------------------------------------------------------ */

static void fail_ret(int ret, const char *what)
{
	if (ret != 0)
		st_die("bench-views: %s: %s: %s", what, mix_strerror(ret),
		       mix_last_error());
}

static int want(const char *name)
{
	return !g_only || !strcmp(g_only, name);
}



/* The cycle counter, bracketed so the timed call cannot move out of the
 * bracket (lfence waits for earlier instructions; rdtscp waits for them
 * too, the lfence after it keeps later ones out).  Elsewhere: the
 * monotonic clock in ns. */
#if defined(__x86_64__) || defined(__i386__)
static inline uint64_t tick_begin(void)
{
	uint64_t t;
	_mm_lfence();
	t = __rdtsc();
	_mm_lfence();
	return t;
}

static inline uint64_t tick_end(void)
{
	unsigned aux;
	uint64_t t = __rdtscp(&aux);
	_mm_lfence();
	return t;
}
#else
static inline uint64_t tick_begin(void)
{
	return st_now_ns();
}

static inline uint64_t tick_end(void)
{
	return st_now_ns();
}
#endif

/* Median ticks of an empty bracket in this thread. */
static double tick_overhead(void)
{
	enum { N = 100000 };
	double *v = malloc(N * sizeof(*v)), med;
	unsigned i;

	if (!v)
		st_die("out of memory");
	for (i = 0; i < N; i++) {
		uint64_t t0 = tick_begin();
		v[i] = (double)(tick_end() - t0);
	}
	med = st_median(v, N);
	free(v);
	return med;
}

static struct mix_index *index_new(const char *name)
{
	struct mix_index *idx;
	char *path;
	if (asprintf(&path, "%s/%s", g_dir, name) < 0)
		st_die("out of memory");
	st_rmdir_r(path);
	st_mkdir(path);
	fail_ret(mix_index_open(g_engine, path, MIX_OPEN_CREATE, &idx),
		 "mix_index_open");
	free(path);
	return idx;
}

static void index_fill(struct mix_index *idx, uint32_t n)
{
	uint32_t done = 0, i, k;
	while (done < n) {
		struct mix_txn *t;
		k = n - done < 1000 ? n - done : 1000;
		fail_ret(mix_txn_begin(idx, &t), "mix_txn_begin");
		for (i = 0; i < k; i++)
			fail_ret(mix_txn_append(t, 0, NULL, NULL),
				 "mix_txn_append");
		fail_ret(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL),
			 "mix_txn_commit");
		done += k;
	}
}

/* The UID at a random sequence of the current snapshot (0 if empty). */
static uint32_t random_uid(struct mix_index *idx, uint64_t *rng)
{
	struct mix_record r;
	uint32_t uid = 0, n;
	mix_read_lock();
	n = mix_snap_messages_count(mix_index_snap(idx));
	if (n && mix_snap_lookup_seq(mix_index_snap(idx),
				     1 + st_rand_below(rng, n), &r))
		uid = r.uid;
	mix_read_unlock();
	return uid;
}

/* One transaction toggling \Flagged on uid: always an effective change
 * (only this program's one committing thread changes that message). */
static void flag_flip(struct mix_index *idx, uint32_t uid)
{
	struct mix_uid_range rg = { uid, uid };
	struct mix_commit_result res;
	struct mix_record r;
	struct mix_txn *t;
	uint8_t f = 0;

	mix_read_lock();
	if (mix_snap_lookup_uid(mix_index_snap(idx), uid, &r))
		f = r.flags;
	mix_read_unlock();
	fail_ret(mix_txn_begin(idx, &t), "mix_txn_begin");
	fail_ret(mix_txn_flags(t, &rg, 1, MIX_MODIFY_REPLACE,
			       (uint8_t)(f ^ MIX_FLAG_FLAGGED)), "mix_txn_flags");
	fail_ret(mix_txn_commit(&t, MIX_DURABILITY_NONE, &res),
		 "mix_txn_commit");
	if (res.no_changes)
		st_die("bench-views: flag flip of uid %u changed nothing", uid);
}

static void expunge_one(struct mix_index *idx, uint32_t uid)
{
	struct mix_uid_range rg = { uid, uid };
	struct mix_txn *t;
	fail_ret(mix_txn_begin(idx, &t), "mix_txn_begin");
	fail_ret(mix_txn_expunge(t, &rg, 1), "mix_txn_expunge");
	fail_ret(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL),
		 "mix_txn_commit");
}

static void append_one(struct mix_index *idx)
{
	struct mix_txn *t;
	fail_ret(mix_txn_begin(idx, &t), "mix_txn_begin");
	fail_ret(mix_txn_append(t, 0, NULL, NULL), "mix_txn_append");
	fail_ret(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL),
		 "mix_txn_commit");
}

/* ---- refresh: the figure to beat ---------------------------------------- */

struct committer {
	pthread_t thread;
	struct mix_index *idx;
	atomic_int stop;
	uint64_t commits, ns;
};

static void *committer_main(void *arg)
{
	struct committer *c = arg;
	uint32_t n, uid = 0;
	uint64_t t0 = st_now_ns();

	mix_read_lock();
	n = mix_snap_messages_count(mix_index_snap(c->idx));
	mix_read_unlock();
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		/* walk the mailbox with a large odd stride: every commit
		 * touches another chunk, as sessions would */
		uid = (uid + 7919) % n;
		flag_flip(c->idx, uid + 1);
		c->commits++;
	}
	c->ns = st_now_ns() - t0;
	return NULL;
}

#define MAX_SAMPLES ((size_t)1 << 20)

struct rthread {
	pthread_t thread;
	struct mix_index *idx;
	pthread_barrier_t *start;
	double secs;
	uint64_t rng;
	/* results */
	uint64_t lookups, rounds, moved, ticks, ticks_moved, ns, sink;
	uint64_t tsc0, tsc1, ns0, ns1;
	double overhead;             /* ticks of an empty bracket */
	double *samples;             /* ticks of each refresh (the first
				      * MAX_SAMPLES) */
	size_t nsamples;
	/* tight loop */
	uint64_t tight_calls, tight_moved, tight_ns;
};

static void *reader_main(void *arg)
{
	struct rthread *r = arg;
	struct mix_view *v;
	struct mix_record rec;
	uint64_t t0, deadline, sum = 0;

	fail_ret(mix_view_open(r->idx, &v), "mix_view_open");
	r->overhead = tick_overhead();
	pthread_barrier_wait(r->start);
	r->tsc0 = tick_begin();
	r->ns0 = t0 = st_now_ns();
	deadline = t0 + (uint64_t)(r->secs * 1e9);
	do {
		const struct mix_snap *s;
		uint64_t a, b;
		uint32_t nu, k;
		int moved;

		a = tick_begin();
		moved = mix_view_refresh(v);
		b = tick_end();
		r->ticks += b - a;
		r->rounds++;
		if (r->nsamples < MAX_SAMPLES)
			r->samples[r->nsamples++] = (double)(b - a);
		if (moved) {
			r->moved++;
			r->ticks_moved += b - a;
		}
		s = mix_view_snap(v);
		nu = mix_snap_next_uid(s) - 1;
		for (k = 0; k < 1000; k++) {
			uint32_t uid = 1 + (uint32_t)(st_rand(&r->rng) % nu);
			sum += (uint64_t)mix_snap_lookup_uid(s, uid, &rec) +
			       rec.seq;
		}
		r->lookups += 1000;
		r->ns1 = st_now_ns();
	} while (r->ns1 < deadline);
	r->tsc1 = tick_end();
	r->ns = r->ns1 - t0;
	r->sink = sum;

	/* the second method: refresh alone, timed as a whole */
	{
		uint64_t i, n = g_quick ? 1000000 : 5000000, moved = 0;
		t0 = st_now_ns();
		for (i = 0; i < n; i++)
			moved += (uint64_t)mix_view_refresh(v);
		r->tight_ns = st_now_ns() - t0;
		r->tight_calls = n;
		r->tight_moved = moved;
	}
	mix_view_close(&v);
	return NULL;
}

struct refresh_run {
	double lookups_per_s, refresh_ns, refresh_median_ns, refresh_moved_ns;
	double refresh_unmoved_ns, moved_frac, commits_per_s;
	double tight_ns, tight_moved_frac;
};

static void refresh_run(struct mix_index *idx, int with_committer,
			double secs, unsigned run, struct refresh_run *out)
{
	struct rthread r[2];
	struct committer c;
	pthread_barrier_t start;
	uint64_t rounds = 0, moved = 0, tight_calls = 0, tight_moved = 0;
	double ticks = 0, ticks_moved = 0, tight_ns = 0, tpn = 0;
	double *all = malloc(2 * MAX_SAMPLES * sizeof(*all));
	size_t nall = 0, k;
	unsigned i;

	if (!all)
		st_die("out of memory");
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	atomic_init(&c.stop, 0);
	c.idx = idx;
	if (with_committer && pthread_create(&c.thread, NULL, committer_main,
					     &c))
		st_die("pthread_create failed");
	pthread_barrier_init(&start, NULL, 2);
	for (i = 0; i < 2; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].idx = idx;
		r[i].start = &start;
		r[i].secs = secs;
		r[i].rng = st_seed_derive(g_seed, 100 * run + i);
		r[i].samples = all + i * MAX_SAMPLES;
		if (pthread_create(&r[i].thread, NULL, reader_main, &r[i]))
			st_die("pthread_create failed");
	}
	for (i = 0; i < 2; i++) {
		pthread_join(r[i].thread, NULL);
		if (r[i].sink == 0)
			st_die("bench-views: lookups found nothing");
		out->lookups_per_s += r[i].lookups / (r[i].ns / 1e9);
		/* TSC ticks per ns over this thread's run */
		tpn = (double)(r[i].tsc1 - r[i].tsc0) /
		      (double)(r[i].ns1 - r[i].ns0);
		ticks += ((double)r[i].ticks - r[i].overhead * r[i].rounds) /
			 tpn;
		ticks_moved += ((double)r[i].ticks_moved -
				r[i].overhead * r[i].moved) / tpn;
		for (k = 0; k < r[i].nsamples; k++)
			all[nall++] = (r[i].samples[k] - r[i].overhead) / tpn;
		rounds += r[i].rounds;
		moved += r[i].moved;
		tight_calls += r[i].tight_calls;
		tight_moved += r[i].tight_moved;
		tight_ns += (double)r[i].tight_ns;
	}
	atomic_store(&c.stop, 1);
	if (with_committer) {
		pthread_join(c.thread, NULL);
		out->commits_per_s = c.commits / (c.ns / 1e9);
	}
	pthread_barrier_destroy(&start);
	out->refresh_ns = ticks / rounds;
	out->refresh_median_ns = st_median(all, nall);
	free(all);
	out->refresh_moved_ns = moved ? ticks_moved / moved : 0;
	out->refresh_unmoved_ns = rounds > moved ?
				  (ticks - ticks_moved) / (rounds - moved) : 0;
	out->moved_frac = (double)moved / rounds;
	out->tight_ns = tight_ns / tight_calls;
	out->tight_moved_frac = (double)tight_moved / tight_calls;
}

#define MEDIAN_OF(field) do {                                         \
		for (i = 0; i < runs; i++)                             \
			v[i] = res[i].field;                           \
		med = st_median(v, runs);                              \
	} while (0)

static void bench_refresh(void)
{
	unsigned runs = g_quick ? 3 : 5, i;
	double secs = g_quick ? 1 : 2, v[5], med;
	struct refresh_run res[5];
	struct mix_index *idx = index_new("refresh");
	char name[128], sz[16];

	st_size_name(g_messages, sz, sizeof(sz));
	index_fill(idx, g_messages);
	for (i = 0; i < runs; i++)
		refresh_run(idx, 1, secs, i, &res[i]);
	snprintf(name, sizeof(name), "refresh_2readers_1committer_%s_lookups",
		 sz);
	MEDIAN_OF(lookups_per_s);
	st_figure(name, med, "lookups/s");
	printf("# target >= 3.7e7 lookups/s: %s\n", med >= 37e6 ? "met"
							     : "NOT met");
	snprintf(name, sizeof(name), "refresh_2readers_1committer_%s_mean",
		 sz);
	MEDIAN_OF(refresh_ns);
	st_figure(name, med, "ns");
	printf("# target < 100 ns: %s\n", med < 100 ? "met" : "NOT met");
	snprintf(name, sizeof(name), "refresh_2readers_1committer_%s_median",
		 sz);
	MEDIAN_OF(refresh_median_ns);
	st_figure(name, med, "ns");
	snprintf(name, sizeof(name),
		 "refresh_2readers_1committer_%s_moved_mean", sz);
	MEDIAN_OF(refresh_moved_ns);
	st_figure(name, med, "ns");
	snprintf(name, sizeof(name),
		 "refresh_2readers_1committer_%s_unmoved_mean", sz);
	MEDIAN_OF(refresh_unmoved_ns);
	st_figure(name, med, "ns");
	snprintf(name, sizeof(name),
		 "refresh_2readers_1committer_%s_moved_fraction", sz);
	MEDIAN_OF(moved_frac);
	st_figure(name, med, "ratio");
	snprintf(name, sizeof(name), "refresh_2readers_1committer_%s_commits",
		 sz);
	MEDIAN_OF(commits_per_s);
	st_figure(name, med, "commits/s");
	snprintf(name, sizeof(name), "refresh_tight_1committer_%s_mean", sz);
	MEDIAN_OF(tight_ns);
	st_figure(name, med, "ns");
	snprintf(name, sizeof(name),
		 "refresh_tight_1committer_%s_moved_fraction", sz);
	MEDIAN_OF(tight_moved_frac);
	st_figure(name, med, "ratio");

	for (i = 0; i < runs; i++)
		refresh_run(idx, 0, secs, 50 + i, &res[i]);
	snprintf(name, sizeof(name), "refresh_2readers_nocommitter_%s_lookups",
		 sz);
	MEDIAN_OF(lookups_per_s);
	st_figure(name, med, "lookups/s");
	snprintf(name, sizeof(name), "refresh_2readers_nocommitter_%s_mean",
		 sz);
	MEDIAN_OF(refresh_ns);
	st_figure(name, med, "ns");
	snprintf(name, sizeof(name), "refresh_tight_nocommitter_%s_mean", sz);
	MEDIAN_OF(tight_ns);
	st_figure(name, med, "ns");
	fail_ret(mix_index_close(&idx), "mix_index_close");
}

/* ---- sync10 and changedsince10 ------------------------------------------ */

/* 10 changes as 10 transactions on distinct random messages: all flag
 * changes, or (mixed) 6 flag changes, 2 expunges, 2 appends. */
static void ten_changes(struct mix_index *idx, uint64_t *rng, int mixed)
{
	uint32_t uids[8], i, j, k = mixed ? 8 : 10;

	if (!mixed) {
		uint32_t u[10];
		for (i = 0; i < 10; i++) {
			do {
				u[i] = random_uid(idx, rng);
				for (j = 0; j < i && u[j] != u[i]; j++)
					;
			} while (j < i);
			flag_flip(idx, u[i]);
		}
		return;
	}
	for (i = 0; i < k; i++) {
		do {
			uids[i] = random_uid(idx, rng);
			for (j = 0; j < i && uids[j] != uids[i]; j++)
				;
		} while (j < i);
	}
	for (i = 0; i < 6; i++)
		flag_flip(idx, uids[i]);
	expunge_one(idx, uids[6]);
	expunge_one(idx, uids[7]);
	append_one(idx);
	append_one(idx);
}

/* Median (and p90) µs of a view sync after ten_changes. */
static double sync10(struct mix_index *idx, int mixed, unsigned reps,
		     double *p90_r)
{
	struct mix_view_changes ch;
	struct mix_view *v;
	double *us = calloc(reps, sizeof(*us)), med;
	uint64_t rng = st_seed_derive(g_seed, 7 + (unsigned)mixed);
	unsigned i;

	if (!us)
		st_die("out of memory");
	fail_ret(mix_view_open(idx, &v), "mix_view_open");
	for (i = 0; i < reps; i++) {
		uint64_t t0;
		int ret;
		ten_changes(idx, &rng, mixed);
		t0 = st_now_ns();
		ret = mix_view_sync(v, &ch);
		us[i] = (double)(st_now_ns() - t0) / 1e3;
		if (ret != 1 || ch.full_compare ||
		    ch.changed_count != (mixed ? 6u : 10u) ||
		    ch.expunged_count != (mixed ? 2u : 0u) ||
		    ch.new_count != (mixed ? 2u : 0u))
			st_die("bench-views: sync after 10 changes: ret %d, "
			       "%u changed, %u expunged, %u new, full_compare "
			       "%d", ret, ch.changed_count, ch.expunged_count,
			       ch.new_count, ch.full_compare);
		mix_view_changes_free(&ch);
	}
	mix_view_close(&v);
	*p90_r = st_percentile(us, reps, 90);
	med = st_median(us, reps);
	free(us);
	return med;
}

/* Mean ns of a view sync that finds nothing new. */
static double sync_nochange(struct mix_index *idx)
{
	struct mix_view_changes ch;
	struct mix_view *v;
	uint64_t i, n = 2000000, t0, sum = 0;

	fail_ret(mix_view_open(idx, &v), "mix_view_open");
	t0 = st_now_ns();
	for (i = 0; i < n; i++)
		sum += (uint64_t)mix_view_sync(v, &ch);
	t0 = st_now_ns() - t0;
	mix_view_close(&v);
	if (sum)
		st_die("bench-views: an idle index's view moved");
	return (double)t0 / (double)n;
}

/* Median µs of a CHANGEDSINCE iteration that finds nothing: the chunk
 * directory walk alone. */
static double changedsince_none(struct mix_index *idx, unsigned reps)
{
	double *us = calloc(reps, sizeof(*us)), med;
	unsigned i;

	if (!us)
		st_die("out of memory");
	mix_read_lock();
	for (i = 0; i < reps; i++) {
		const struct mix_snap *s = mix_index_snap(idx);
		struct mix_changed_iter it;
		struct mix_record r;
		uint64_t t0 = st_now_ns();
		mix_changed_iter_init(&it, s, mix_snap_highest_modseq(s));
		if (mix_changed_iter_next(&it, NULL, &r))
			st_die("bench-views: CHANGEDSINCE HIGHESTMODSEQ found "
			       "uid %u", r.uid);
		us[i] = (double)(st_now_ns() - t0) / 1e3;
	}
	mix_read_unlock();
	med = st_median(us, reps);
	free(us);
	return med;
}

/* Median µs of a CHANGEDSINCE iteration over 10 one-message changes. */
static double changedsince10(struct mix_index *idx, unsigned reps)
{
	double *us = calloc(reps, sizeof(*us)), med;
	uint64_t rng = st_seed_derive(g_seed, 9);
	unsigned i;

	if (!us)
		st_die("out of memory");
	for (i = 0; i < reps; i++) {
		struct mix_changed_iter it;
		struct mix_record r;
		uint64_t since, t0;
		unsigned n = 0;

		mix_read_lock();
		since = mix_snap_highest_modseq(mix_index_snap(idx));
		mix_read_unlock();
		ten_changes(idx, &rng, 0);
		mix_read_lock();
		t0 = st_now_ns();
		mix_changed_iter_init(&it, mix_index_snap(idx), since);
		while (mix_changed_iter_next(&it, NULL, &r))
			n++;
		us[i] = (double)(st_now_ns() - t0) / 1e3;
		mix_read_unlock();
		if (n != 10)
			st_die("bench-views: CHANGEDSINCE after 10 changes "
			       "found %u", n);
	}
	med = st_median(us, reps);
	free(us);
	return med;
}

static void bench_sync(void)
{
	uint32_t sizes[2] = { 100000, 1000000 };
	double flags[2], mixed[2], cs[2], none[2], p90, nochange;
	unsigned reps = 200, k;
	char name[128], sz[16], sz0[16], sz1[16];

	if (g_quick) {
		sizes[0] = 10000;
		sizes[1] = 100000;
	}
	for (k = 0; k < 2; k++) {
		struct mix_index *idx;
		uint64_t t0 = st_now_ns();

		st_size_name(sizes[k], sz, sizeof(sz));
		snprintf(name, sizeof(name), "sync-%s", sz);
		idx = index_new(name);
		index_fill(idx, sizes[k]);
		printf("# filled %u messages in %.2f s\n", sizes[k],
		       st_secs_since(t0));
		if (want("sync10")) {
			flags[k] = sync10(idx, 0, reps, &p90);
			snprintf(name, sizeof(name), "view_sync_10flags_%s", sz);
			st_figure(name, flags[k], "us");
			snprintf(name, sizeof(name), "view_sync_10flags_%s_p90",
				 sz);
			st_figure(name, p90, "us");
			mixed[k] = sync10(idx, 1, reps, &p90);
			snprintf(name, sizeof(name), "view_sync_10mixed_%s", sz);
			st_figure(name, mixed[k], "us");
			snprintf(name, sizeof(name), "view_sync_10mixed_%s_p90",
				 sz);
			st_figure(name, p90, "us");
			nochange = sync_nochange(idx);
			snprintf(name, sizeof(name), "view_sync_nochange_%s",
				 sz);
			st_figure(name, nochange, "ns");
		}
		if (want("changedsince10")) {
			cs[k] = changedsince10(idx, reps);
			snprintf(name, sizeof(name), "changedsince_10_%s", sz);
			st_figure(name, cs[k], "us");
			none[k] = changedsince_none(idx, reps);
			snprintf(name, sizeof(name), "changedsince_none_%s", sz);
			st_figure(name, none[k], "us");
		}
		fail_ret(mix_index_close(&idx), "mix_index_close");
	}
	st_size_name(sizes[0], sz0, sizeof(sz0));
	st_size_name(sizes[1], sz1, sizeof(sz1));
	if (want("sync10")) {
		snprintf(name, sizeof(name), "view_sync_10flags_ratio_%s_%s",
			 sz1, sz0);
		st_figure(name, flags[1] / flags[0], "ratio");
		snprintf(name, sizeof(name), "view_sync_10mixed_ratio_%s_%s",
			 sz1, sz0);
		st_figure(name, mixed[1] / mixed[0], "ratio");
	}
	if (want("changedsince10")) {
		snprintf(name, sizeof(name), "changedsince_10_ratio_%s_%s",
			 sz1, sz0);
		st_figure(name, cs[1] / cs[0], "ratio");
		snprintf(name, sizeof(name), "changedsince_none_ratio_%s_%s",
			 sz1, sz0);
		st_figure(name, none[1] / none[0], "ratio");
	}
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out, "usage: bench-views --dir DIR [--quick] "
		"[--only refresh|sync10|changedsince10] [--messages N] "
		"[--seed N]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "quick", no_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },
		{ "messages", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *seed = NULL;
	uint64_t t0 = st_now_ns();
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': g_dir = optarg; break;
		case 'q': g_quick = 1; break;
		case 'o': g_only = optarg; break;
		case 'm':
			g_messages = (uint32_t)st_opt_u64("messages", optarg,
							  1, 100000000);
			break;
		case 'S': seed = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || !g_dir) {
		usage(stderr);
		return 2;
	}
	if (g_only && strcmp(g_only, "refresh") && strcmp(g_only, "sync10") &&
	    strcmp(g_only, "changedsince10"))
		st_die("--only: unknown figure '%s'", g_only);
	g_seed = st_seed_pick(seed);
	setvbuf(stdout, NULL, _IOLBF, 0);
	st_mkdir(g_dir);
	printf("# bench-views: dir %s%s seed %" PRIu64 "\n", g_dir,
	       g_quick ? " quick" : "", g_seed);
	fail_ret(mix_engine_create(NULL, &g_engine), "mix_engine_create");
	if (want("refresh"))
		bench_refresh();
	if (want("sync10") || want("changedsince10"))
		bench_sync();
	fail_ret(mix_engine_free(&g_engine), "mix_engine_free");
	printf("# bench-views: %.1f s\n", st_secs_since(t0));
	return 0;
}
