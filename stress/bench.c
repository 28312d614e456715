/*
 * bench — figures for mix (docs/design.md "The write path", "Snapshots and the read path").
 * Only measures; never part of `make check` (`make bench` runs it).  Uses
 * only include/mix/mix.h.  One line per figure: "name value unit", the
 * parameters in the name.  Repeated measurements report the median.
 *
 *   append    100,000 appends in transactions of 1,000, durability NONE,
 *             fresh index each run (msgs/s, median of 3).
 *   commit    one committer thread, one flag change per transaction, on a
 *             10,000-message index: NONE and SYNC (commits/s, median of 3
 *             intervals); the raw rate of the same disk (64-byte append +
 *             fdatasync in a loop on a file in --dir) and the ratio
 *             SYNC commits / raw fdatasyncs (1.0 = one fdatasync per
 *             commit and nothing else).
 *   sync16    16 committer threads, SYNC, ~3 s (commits/s); also NONE.
 *             The mean group-commit batch (commits per published batch)
 *             and the fdatasync count come from mix_engine_stats()
 *             sampled around the 16-thread SYNC run.
 *   lookup    random mix_snap_lookup_uid (1,000 per read-side section) on
 *             100,000 and 1,000,000 messages with 1 and 2 reader threads
 *             (ns per lookup per thread, including a xorshift step to
 *             pick the UID; median of 5 runs of >= 0.3 s).
 *   publish   per-commit latency of a one-message flag change, NONE, at
 *             1,000, 100,000 and 1,000,000 messages (median and p99 in µs,
 *             and the ratios to 1,000).  This is the whole round trip:
 *             queue handoff, writer wake-up, log write, building and
 *             publishing the snapshot, waking the committer; a checkpoint
 *             when the log passes its rotation size lands in the p99.
 *   checkpoint  one-flag NONE commits on the 1,000,000-message index until
 *             the log passes its rotation size and the writer checkpoints
 *             (writes and fsyncs mix.index) and rotates, on its own
 *             thread: the longest commit (the one that waited for it) and
 *             the median, in ms and µs.
 *   ckptasync  issue 11 item 4: for 12 s (--quick 4 s) one thread
 *             commits one-flag NONE changes on the 1,000,000-message index
 *             back to back while another commits on a 1,000-message
 *             mailbox of the same writer, pausing 100 µs after each;
 *             with the default 4 MiB rotation size the big one
 *             checkpoints every second or two.  Median, p99, p99.9 and max
 *             commit latency of both (µs), the checkpoints done and the
 *             commits of each.
 *   refresh   a READONLY open of the 100,000-message index in this
 *             process, after 50,000 one-flag commits (a log of ~2 MB):
 *             mix_index_refresh with nothing new, and a commit followed by
 *             a refresh (µs, median of 1,000); the log's size is printed.
 *   lowwater  100,000 (quick) or 1,000,000 messages all \Seen but the
 *             last; toggling \Seen on UID 1 makes the writer find the next
 *             unseen message each time (µs per commit, median of 400).
 *   rss       the 1,000,000-message index is closed, then opened
 *             READONLY in a fresh process (this program re-executed), every
 *             record touched by iteration; resident memory after minus
 *             before (VmRSS, also split into anonymous and file-backed),
 *             per message, and mix.index's size per message for
 *             comparison (records are mapped from it).
 *
 * Options: --dir DIR (required; indexes are created below it),
 * --quick (shorter and fewer runs, and 100,000 instead of 1,000,000
 * messages: the names say which), --only NAME (one workload of the list
 * above).  Full run under ~3 minutes, --quick under 30 s.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <mix/mix.h>

#include "stress.h"

static const char *g_dir;
static const char *g_only;
static int g_quick;
static struct mix_engine *g_engine;
static uint64_t g_seed;

/* ---- helpers ------------------------------------------------------------ */

static void fail_ret(int ret, const char *what)
{
	if (ret != 0)
		st_die("bench: %s: %s: %s", what, mix_strerror(ret),
		       mix_last_error());
}

static int want(const char *name)
{
	return !g_only || !strcmp(g_only, name);
}



/* A new index in DIR/name (removed first if it exists). */
static struct mix_index *index_new(const char *name, char **path_r)
{
	struct mix_index *idx;
	char *path;
	if (asprintf(&path, "%s/%s", g_dir, name) < 0)
		st_die("out of memory");
	st_rmdir_r(path);
	st_mkdir(path);
	fail_ret(mix_index_open(g_engine, path, MIX_OPEN_CREATE, &idx),
		 "mix_index_open");
	if (path_r)
		*path_r = path;
	else
		free(path);
	return idx;
}

/* Append n messages (flags 0) in transactions of txn_size. */
static void index_fill(struct mix_index *idx, uint32_t n, uint32_t txn_size)
{
	uint32_t done = 0, i, k;
	while (done < n) {
		struct mix_txn *t;
		k = n - done < txn_size ? n - done : txn_size;
		fail_ret(mix_txn_begin(idx, &t), "mix_txn_begin");
		for (i = 0; i < k; i++)
			fail_ret(mix_txn_append(t, 0, NULL, NULL),
				 "mix_txn_append");
		fail_ret(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL),
			 "mix_txn_commit");
		done += k;
	}
}

/* Commit one flag change; returns its latency in ns. */
static uint64_t toggle_commit(struct mix_index *idx, struct toggler *tg,
			      enum mix_durability d)
{
	struct mix_uid_range r = { tg->uid, tg->uid };
	uint8_t flags = toggler_flags(tg);
	struct mix_commit_result res;
	struct mix_txn *t;
	uint64_t t0 = st_now_ns();

	fail_ret(mix_txn_begin(idx, &t), "mix_txn_begin");
	fail_ret(mix_txn_flags(t, &r, 1, MIX_MODIFY_REPLACE, flags),
		 "mix_txn_flags");
	fail_ret(mix_txn_commit(&t, d, &res), "mix_txn_commit");
	t0 = st_now_ns() - t0;
	if (res.no_changes)
		st_die("bench: flag change on uid %u was a no-op", tg->uid);
	toggler_next(tg);
	return t0;
}

/* ---- (a) appends -------------------------------------------------------- */

static void bench_append(void)
{
	double v[3];
	unsigned run;

	for (run = 0; run < 3; run++) {
		struct mix_index *idx;
		char *path;
		uint64_t t0;

		idx = index_new("append", &path);
		t0 = st_now_ns();
		index_fill(idx, 100000, 1000);
		v[run] = 100000 / st_secs_since(t0);
		fail_ret(mix_index_close(&idx), "mix_index_close");
		st_rmdir_r(path);
		free(path);
	}
	st_figure("append_100k_txn1000_none", st_median(v, 3), "msgs/s");
}

/* ---- (b) single committer, raw fdatasync -------------------------------- */

/* Commits per second of one thread over `secs`. */
static double commit_rate(struct mix_index *idx, struct toggler *tg,
			  enum mix_durability d, double secs)
{
	uint64_t t0 = st_now_ns(), n = 0;
	while (n % 16 != 0 || st_secs_since(t0) < secs) {
		toggle_commit(idx, tg, d);
		n++;
	}
	return n / st_secs_since(t0);
}


static double g_sync1_rate; /* 1-thread SYNC rate, for comparison */
static double g_sync16_batch, g_sync16_fsyncs;

static void bench_commit(void)
{
	double none[3], sync[3], raw[3], s_none = g_quick ? 0.15 : 0.5;
	double s_sync = g_quick ? 0.3 : 1.0;
	struct toggler tg;
	struct mix_index *idx = index_new("commit10k", NULL);
	unsigned i;

	index_fill(idx, 10000, 1000);
	toggler_init(&tg, 10000, 1, 0, 1);
	for (i = 0; i < 3; i++)
		none[i] = commit_rate(idx, &tg, MIX_DURABILITY_NONE, s_none);
	for (i = 0; i < 3; i++)
		sync[i] = commit_rate(idx, &tg, MIX_DURABILITY_SYNC, s_sync);
	for (i = 0; i < 3; i++)
		raw[i] = st_fdatasync_rate(g_dir, s_sync);
	fail_ret(mix_index_close(&idx), "mix_index_close");
	g_sync1_rate = st_median(sync, 3);
	st_figure("commit_none_1thr_10k_flag1", st_median(none, 3), "commits/s");
	st_figure("commit_sync_1thr_10k_flag1", g_sync1_rate, "commits/s");
	st_figure("fdatasync_raw_append64", st_median(raw, 3), "syncs/s");
	st_figure("commit_sync_over_fdatasync_raw",
	       g_sync1_rate / st_median(raw, 3), "ratio");
}

/* ---- (c) 16 committers -------------------------------------------------- */

struct mthread {
	pthread_t thread;
	struct mix_index *idx;
	pthread_barrier_t *start;
	struct toggler tg;
	enum mix_durability durability;
	double secs;
	uint64_t commits;
};

static void *committer_main(void *arg)
{
	struct mthread *m = arg;
	uint64_t t0;
	pthread_barrier_wait(m->start);
	t0 = st_now_ns();
	while (st_secs_since(t0) < m->secs) {
		toggle_commit(m->idx, &m->tg, m->durability);
		m->commits++;
	}
	return NULL;
}

static double multi_commit_rate(struct mix_index *idx, unsigned nthreads,
				enum mix_durability d, double secs)
{
	struct mthread *m = calloc(nthreads, sizeof(*m));
	pthread_barrier_t start;
	uint64_t total = 0, t0;
	unsigned i;

	if (!m)
		st_die("out of memory");
	pthread_barrier_init(&start, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		m[i].idx = idx;
		m[i].start = &start;
		m[i].durability = d;
		m[i].secs = secs;
		toggler_init(&m[i].tg, 10000, nthreads, i, i == 0);
		if (pthread_create(&m[i].thread, NULL, committer_main, &m[i]))
			st_die("pthread_create failed");
	}
	pthread_barrier_wait(&start);
	t0 = st_now_ns();
	for (i = 0; i < nthreads; i++) {
		pthread_join(m[i].thread, NULL);
		total += m[i].commits;
	}
	secs = st_secs_since(t0);
	pthread_barrier_destroy(&start);
	free(m);
	return total / secs;
}

static void bench_sync16(void)
{
	struct mix_index *idx = index_new("commit16", NULL);
	double sync16, none16;

	index_fill(idx, 10000, 1000);
	if (g_sync1_rate == 0) {
		struct toggler tg;
		toggler_init(&tg, 10000, 1, 0, 1);
		g_sync1_rate = commit_rate(idx, &tg, MIX_DURABILITY_SYNC,
					   g_quick ? 0.3 : 1.0);
	}
	{
		struct mix_engine_stats a, b;
		mix_engine_stats(g_engine, &a);
		sync16 = multi_commit_rate(idx, 16, MIX_DURABILITY_SYNC,
					   g_quick ? 1.0 : 3.0);
		mix_engine_stats(g_engine, &b);
		g_sync16_batch = b.batches > a.batches ?
			(double)(b.commits - a.commits) /
			(double)(b.batches - a.batches) : 0;
		g_sync16_fsyncs = (double)(b.fsyncs - a.fsyncs);
	}
	none16 = multi_commit_rate(idx, 16, MIX_DURABILITY_NONE,
				   g_quick ? 0.3 : 1.0);
	fail_ret(mix_index_close(&idx), "mix_index_close");
	st_figure("commit_sync_16thr_10k_flag1", sync16, "commits/s");
	/* from the engine's counters around the 16-thread run */
	st_figure("commit_sync_16thr_mean_batch", g_sync16_batch,
	       "commits/batch");
	st_figure("commit_sync_16thr_fsyncs", g_sync16_fsyncs, "fsyncs");
	st_figure("commit_none_16thr_10k_flag1", none16, "commits/s");
}

/* ---- (d) lookups -------------------------------------------------------- */

struct lthread {
	pthread_t thread;
	struct mix_index *idx;
	pthread_barrier_t *start;
	double secs;
	uint64_t rng, lookups, ns, sink;
};

static void *lookup_main(void *arg)
{
	struct lthread *l = arg;
	struct mix_record rec;
	uint64_t t0, sum = 0, n = 0;

	/* register this thread with the engine before the clock starts */
	mix_read_lock();
	mix_read_unlock();
	pthread_barrier_wait(l->start);
	t0 = st_now_ns();
	do {
		const struct mix_snap *s;
		uint32_t nu, k;
		mix_read_lock();
		s = mix_index_snap(l->idx);
		nu = mix_snap_next_uid(s) - 1;
		for (k = 0; k < 1000; k++) {
			uint32_t uid = 1 + (uint32_t)(st_rand(&l->rng) % nu);
			sum += (uint64_t)mix_snap_lookup_uid(s, uid, &rec) +
			       rec.seq;
		}
		mix_read_unlock();
		n += 1000;
	} while (st_now_ns() - t0 < (uint64_t)(l->secs * 1e9));
	l->ns = st_now_ns() - t0;
	l->lookups = n;
	l->sink = sum;
	return NULL;
}

/* One run: mean ns per lookup over the threads; *agg_r gets lookups/s of
 * all threads together. */
static double lookup_run(struct mix_index *idx, unsigned nthreads,
			 double secs, double *agg_r)
{
	struct lthread l[2];
	pthread_barrier_t start;
	double ns = 0, agg = 0;
	unsigned i;

	pthread_barrier_init(&start, NULL, nthreads);
	for (i = 0; i < nthreads; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		l[i].idx = idx;
		l[i].start = &start;
		l[i].secs = secs;
		l[i].rng = st_seed_derive(g_seed, i + 100);
		if (pthread_create(&l[i].thread, NULL, lookup_main, &l[i]))
			st_die("pthread_create failed");
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(l[i].thread, NULL);
		if (l[i].sink == 0)
			st_die("bench: lookups found nothing");
		ns += (double)l[i].ns / l[i].lookups;
		agg += l[i].lookups / (l[i].ns / 1e9);
	}
	pthread_barrier_destroy(&start);
	*agg_r = agg;
	return ns / nthreads;
}

static void bench_lookup_one(struct mix_index *idx, uint32_t messages)
{
	unsigned runs = g_quick ? 3 : 5, i, nthreads;
	double secs = g_quick ? 0.1 : 0.3, ns[5], agg[5];
	char name[128], sz[16];

	st_size_name(messages, sz, sizeof(sz));
	for (nthreads = 1; nthreads <= 2; nthreads++) {
		for (i = 0; i < runs; i++)
			ns[i] = lookup_run(idx, nthreads, secs, &agg[i]);
		snprintf(name, sizeof(name), "lookup_uid_%s_%uthr", sz,
			 nthreads);
		st_figure(name, st_median(ns, runs), "ns/lookup");
		snprintf(name, sizeof(name), "lookup_uid_%s_%uthr_total", sz,
			 nthreads);
		st_figure(name, st_median(agg, runs), "lookups/s");
	}
}

/* ---- (e) publish cost --------------------------------------------------- */

static double g_publish_1k;

static void bench_publish_one(struct mix_index *idx, uint32_t messages)
{
	unsigned n = g_quick ? 300 : 3000, i;
	double *lat = calloc(n, sizeof(*lat)), med, p99;
	struct toggler tg;
	char name[128], sz[16];

	if (!lat)
		st_die("out of memory");
	/* spread over the mailbox: each commit touches another chunk */
	toggler_init(&tg, messages, messages > 1000 ? 997 : 1, 0, 1);
	for (i = 0; i < 20; i++) /* warm-up */
		toggle_commit(idx, &tg, MIX_DURABILITY_NONE);
	for (i = 0; i < n; i++)
		lat[i] = toggle_commit(idx, &tg, MIX_DURABILITY_NONE) / 1e3;
	p99 = st_percentile(lat, n, 99);
	med = st_median(lat, n);
	free(lat);
	st_size_name(messages, sz, sizeof(sz));
	snprintf(name, sizeof(name), "publish_flag1_none_%s_median", sz);
	st_figure(name, med, "us");
	snprintf(name, sizeof(name), "publish_flag1_none_%s_p99", sz);
	st_figure(name, p99, "us");
	if (messages == 1000)
		g_publish_1k = med;
	else if (g_publish_1k > 0) {
		snprintf(name, sizeof(name), "publish_flag1_none_%s_over_1k",
			 sz);
		st_figure(name, med / g_publish_1k, "ratio");
	}
}

/* ---- checkpoint, read-only refresh, low-water ---------------------------- */

static void bench_checkpoint(struct mix_index *idx, uint32_t messages)
{
	struct mix_engine_stats before, now;
	unsigned cap = 1u << 22, n = 0;
	double *lat = calloc(cap, sizeof(*lat)), max = 0;
	struct toggler tg;
	char name[128], sz[16];

	if (!lat)
		st_die("out of memory");
	toggler_init(&tg, messages, messages > 1000 ? 997 : 1, 1, 1);
	mix_engine_stats(g_engine, &before);
	do {
		lat[n] = toggle_commit(idx, &tg, MIX_DURABILITY_NONE) / 1e3;
		if (lat[n] > max)
			max = lat[n];
		n++;
		mix_engine_stats(g_engine, &now);
	} while (now.checkpoints == before.checkpoints && n < cap);
	st_size_name(messages, sz, sizeof(sz));
	printf("# checkpoint: %u commits until the checkpoint\n", n);
	snprintf(name, sizeof(name), "checkpoint_%s_commit_max", sz);
	st_figure(name, max / 1e3, "ms");
	snprintf(name, sizeof(name), "checkpoint_%s_commit_median", sz);
	st_figure(name, st_median(lat, n), "us");
	free(lat);
}

static void bench_refresh(const char *path, struct mix_index *w,
			  uint32_t messages)
{
	unsigned n = g_quick ? 200 : 1000, i;
	double *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b));
	struct mix_index *ro;
	struct toggler tg;
	char name[128], sz[16], logp[4096];
	struct stat st;

	if (!a || !b)
		st_die("out of memory");
	fail_ret(mix_index_open(g_engine, path, MIX_OPEN_READONLY, &ro),
		 "mix_index_open READONLY");
	snprintf(logp, sizeof(logp), "%s/mix.index.log", path);
	toggler_init(&tg, messages, messages > 1000 ? 997 : 1, 2, 1);
	/* a log of ~2 MB, as a busy mailbox has between checkpoints */
	for (i = 0; i < (g_quick ? 10000u : 50000u); i++)
		toggle_commit(w, &tg, MIX_DURABILITY_NONE);
	if (stat(logp, &st) == 0)
		printf("# refresh: mix.index.log is %lld bytes\n",
		       (long long)st.st_size);
	fail_ret(mix_index_refresh(ro) < 0 ? -1 : 0, "mix_index_refresh");
	for (i = 0; i < n; i++) {
		uint64_t t0 = st_now_ns();
		if (mix_index_refresh(ro) < 0)
			fail_ret(-1, "mix_index_refresh");
		a[i] = (st_now_ns() - t0) / 1e3;
	}
	for (i = 0; i < n; i++) {
		uint64_t t0 = st_now_ns();
		toggle_commit(w, &tg, MIX_DURABILITY_NONE);
		if (mix_index_refresh(ro) < 0)
			fail_ret(-1, "mix_index_refresh");
		b[i] = (st_now_ns() - t0) / 1e3;
	}
	st_size_name(messages, sz, sizeof(sz));
	snprintf(name, sizeof(name), "ro_refresh_%s_nothing_new", sz);
	st_figure(name, st_median(a, n), "us");
	snprintf(name, sizeof(name), "ro_refresh_%s_after_one_commit", sz);
	st_figure(name, st_median(b, n), "us");
	fail_ret(mix_index_close(&ro), "mix_index_close");
	free(a);
	free(b);
}

static void bench_lowwater(uint32_t messages)
{
	unsigned n = 400, i;
	double *lat = calloc(n, sizeof(*lat));
	struct mix_index *idx = index_new("lowwater", NULL);
	uint32_t done = 0, k, j;
	char name[128], sz[16];

	if (!lat)
		st_die("out of memory");
	while (done < messages) {
		struct mix_txn *t;
		k = messages - done < 10000 ? messages - done : 10000;
		fail_ret(mix_txn_begin(idx, &t), "mix_txn_begin");
		for (j = 0; j < k; j++)
			fail_ret(mix_txn_append(t, done + j + 1 == messages ? 0 :
						MIX_FLAG_SEEN, NULL, NULL),
				 "mix_txn_append");
		fail_ret(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL),
			 "mix_txn_commit");
		done += k;
	}
	for (i = 0; i < n; i++) {
		struct mix_uid_range r = { 1, 1 };
		struct mix_txn *t;
		uint64_t t0 = st_now_ns();
		fail_ret(mix_txn_begin(idx, &t), "mix_txn_begin");
		fail_ret(mix_txn_flags(t, &r, 1, i & 1 ? MIX_MODIFY_ADD :
				       MIX_MODIFY_REMOVE, MIX_FLAG_SEEN),
			 "mix_txn_flags");
		fail_ret(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL),
			 "mix_txn_commit");
		lat[i] = (st_now_ns() - t0) / 1e3;
	}
	st_size_name(messages, sz, sizeof(sz));
	snprintf(name, sizeof(name), "lowwater_toggle_seen_uid1_%s", sz);
	st_figure(name, st_median(lat, n), "us");
	fail_ret(mix_index_close(&idx), "mix_index_close");
	free(lat);
}

/* ---- (f) resident memory (in a fresh process) --------------------------- */

/* The child: open dir READONLY, touch every record, print the figures. */
static int rss_child(const char *dir, const char *sz)
{
	uint64_t before, anon0, file0, after, anon1, file1, sum = 0;
	struct mix_engine *e;
	struct mix_index *idx;
	const struct mix_snap *s;
	struct mix_record rec;
	struct mix_iter it;
	uint32_t n = 0, count;
	char name[128];

	fail_ret(mix_engine_create(NULL, &e), "mix_engine_create");
	before = st_rss_bytes();
	anon0 = st_proc_status_kb("RssAnon");
	file0 = st_proc_status_kb("RssFile");
	fail_ret(mix_index_open(e, dir, MIX_OPEN_READONLY, &idx),
		 "mix_index_open(READONLY)");
	mix_read_lock();
	s = mix_index_snap(idx);
	count = mix_snap_messages_count(s);
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &rec)) {
		sum += rec.uid + rec.flags + rec.modseq;
		if (rec.keywords_bits)
			sum += rec.keywords[0];
		n++;
	}
	mix_read_unlock();
	after = st_rss_bytes();
	anon1 = st_proc_status_kb("RssAnon");
	file1 = st_proc_status_kb("RssFile");
	if (n != count || n == 0 || sum == 0)
		st_die("rss: iterated %u of %u records", n, count);
	snprintf(name, sizeof(name), "rss_readonly_%s_bytes", sz);
	st_figure(name, (double)(after - before), "bytes");
	snprintf(name, sizeof(name), "rss_readonly_%s_per_message", sz);
	st_figure(name, (double)(after - before) / n, "bytes/msg");
	snprintf(name, sizeof(name), "rss_readonly_%s_anon_bytes", sz);
	st_figure(name, (double)anon1 - (double)anon0, "bytes");
	snprintf(name, sizeof(name), "rss_readonly_%s_file_bytes", sz);
	st_figure(name, (double)file1 - (double)file0, "bytes");
	snprintf(name, sizeof(name), "index_file_%s_per_message", sz);
	st_figure(name, (double)st_file_size(dir, "mix.index") / n, "bytes/msg");
	fail_ret(mix_index_close(&idx), "mix_index_close");
	fail_ret(mix_engine_free(&e), "mix_engine_free");
	return 0;
}

static void bench_rss(const char *dir, uint32_t messages)
{
	char sz[16];
	pid_t pid;
	int status;

	st_size_name(messages, sz, sizeof(sz));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		st_die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* exec right away: the child of a threaded process */
		execl("/proc/self/exe", "bench", "--rss-child", dir,
		      "--rss-size", sz, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		st_die("bench: rss child failed (status 0x%x)", status);
}

/* issue 11 item 4: commit latency on a big mailbox across checkpoints,
 * and on a small one that shares its writer. */
struct lat_run {
	struct mix_index *idx;
	struct toggler tg;
	double secs;
	long pause_ns;     /* between commits (0: back to back) */
	double *lat;
	size_t n, cap;
	pthread_barrier_t *start;
	pthread_t thread;
};

static void *lat_run_main(void *arg)
{
	struct lat_run *r = arg;
	uint64_t t0;
	if (r->start)
		pthread_barrier_wait(r->start);
	t0 = st_now_ns();
	while (st_secs_since(t0) < r->secs && r->n < r->cap) {
		r->lat[r->n++] = toggle_commit(r->idx, &r->tg,
					       MIX_DURABILITY_NONE) / 1e3;
		if (r->pause_ns) {
			struct timespec ts = { 0, r->pause_ns };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static void lat_report(const char *prefix, struct lat_run *r)
{
	char name[160];
	double max = 0;
	size_t i;
	for (i = 0; i < r->n; i++)
		if (r->lat[i] > max)
			max = r->lat[i];
	snprintf(name, sizeof(name), "%s_commits", prefix);
	st_figure(name, (double)r->n, "commits");
	snprintf(name, sizeof(name), "%s_commit_median", prefix);
	st_figure(name, st_median(r->lat, r->n), "us");
	snprintf(name, sizeof(name), "%s_commit_p99", prefix);
	st_figure(name, st_percentile(r->lat, r->n, 99), "us");
	snprintf(name, sizeof(name), "%s_commit_p99.9", prefix);
	st_figure(name, st_percentile(r->lat, r->n, 99.9), "us");
	snprintf(name, sizeof(name), "%s_commit_max", prefix);
	st_figure(name, max, "us");
}

static void bench_ckptasync(struct mix_index *big, uint32_t messages)
{
	struct mix_engine_stats before, after;
	struct lat_run r[2];
	pthread_barrier_t start;
	struct mix_index *side = index_new("idxside", NULL);
	char prefix[96], sz[16];
	double secs = g_quick ? 4 : 12;
	int i;

	index_fill(side, 1000, 1000);
	{
		FILE *la = fopen("/proc/loadavg", "r");
		char buf[128];
		if (la && fgets(buf, sizeof(buf), la))
			printf("# ckptasync: load average before: %s", buf);
		if (la)
			fclose(la);
	}
	memset(r, 0, sizeof(r));
	pthread_barrier_init(&start, NULL, 3);
	for (i = 0; i < 2; i++) {
		r[i].idx = i == 0 ? big : side;
		r[i].secs = secs;
		/* the small mailbox commits at a moderate pace, so that its
		 * latency shows stalls of the shared writer rather than the
		 * two committers fighting for 2 CPUs */
		r[i].pause_ns = i == 0 ? 0 : 100000;
		r[i].cap = 1u << 23;
		r[i].start = &start;
		r[i].lat = calloc(r[i].cap, sizeof(double));
		if (!r[i].lat)
			st_die("out of memory");
		toggler_init(&r[i].tg, i == 0 ? messages : 1000,
			     i == 0 && messages > 1000 ? 997 : 1, 0, 1);
		if (pthread_create(&r[i].thread, NULL, lat_run_main, &r[i]))
			st_die("pthread_create failed");
	}
	mix_engine_stats(g_engine, &before);
	pthread_barrier_wait(&start);
	for (i = 0; i < 2; i++)
		pthread_join(r[i].thread, NULL);
	mix_engine_stats(g_engine, &after);
	pthread_barrier_destroy(&start);
	st_size_name(messages, sz, sizeof(sz));
	snprintf(prefix, sizeof(prefix), "ckptasync_%s", sz);
	{
		char name[160];
		snprintf(name, sizeof(name), "%s_checkpoints", prefix);
		st_figure(name, (double)(after.checkpoints -
					 before.checkpoints), "checkpoints");
		snprintf(name, sizeof(name), "%s_secs", prefix);
		st_figure(name, secs, "s");
	}
	lat_report(prefix, &r[0]);
	snprintf(prefix, sizeof(prefix), "ckptasync_%s_side1k", sz);
	lat_report(prefix, &r[1]);
	for (i = 0; i < 2; i++)
		free(r[i].lat);
	fail_ret(mix_index_close(&side), "mix_index_close");
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out, "usage: bench --dir DIR [--quick] [--only append|commit|"
		"sync16|lookup|publish|checkpoint|ckptasync|refresh|lowwater|rss]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "quick", no_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 'S' },
		{ "rss-child", required_argument, NULL, 'C' },
		{ "rss-size", required_argument, NULL, 'Z' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "append", "commit", "sync16",
					     "lookup", "publish", "checkpoint",
					     "ckptasync", "refresh", "lowwater",
					     "rss" };
	const char *seed = NULL, *rss_dir = NULL, *rss_size = "?";
	uint32_t big;
	uint64_t t0 = st_now_ns();
	size_t i;
	int ch, known = 0;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': g_dir = optarg; break;
		case 'q': g_quick = 1; break;
		case 'o': g_only = optarg; break;
		case 'S': seed = optarg; break;
		case 'C': rss_dir = optarg; break;
		case 'Z': rss_size = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (rss_dir)
		return rss_child(rss_dir, rss_size);
	if (!g_dir || optind < argc) {
		usage(stderr);
		return 2;
	}
	for (i = 0; g_only && i < sizeof(names) / sizeof(names[0]); i++)
		known |= !strcmp(g_only, names[i]);
	if (g_only && !known) {
		usage(stderr);
		return 2;
	}
	g_seed = st_seed_pick(seed);
	printf("# bench: dir %s%s seed %" PRIu64 "\n", g_dir,
	       g_quick ? " quick" : "", g_seed);
	st_mkdir(g_dir);
	fail_ret(mix_engine_create(NULL, &g_engine), "mix_engine_create");

	if (want("append"))
		bench_append();
	if (want("commit"))
		bench_commit();
	if (want("sync16"))
		bench_sync16();

	big = g_quick ? 100000 : 1000000;
	if (want("lookup") || want("publish") || want("rss") ||
	    want("checkpoint") || want("ckptasync") || want("refresh")) {
		struct mix_index *small = NULL, *mid, *large;
		char *large_path;
		uint64_t tf;

		if (want("publish")) {
			small = index_new("idx1k", NULL);
			index_fill(small, 1000, 1000);
		}
		char *mid_path;
		mid = index_new("idx100k", &mid_path);
		index_fill(mid, 100000, 1000);
		large = mid;
		large_path = NULL;
		if (big != 100000) {
			tf = st_now_ns();
			large = index_new("idx1m", &large_path);
			index_fill(large, big, 1000);
			printf("# filled %u messages in %.2f s\n", big,
			       st_secs_since(tf));
		} else if (asprintf(&large_path, "%s/idx100k", g_dir) < 0) {
			st_die("out of memory");
		}
		if (want("lookup")) {
			bench_lookup_one(mid, 100000);
			if (large != mid)
				bench_lookup_one(large, big);
		}
		if (want("publish")) {
			bench_publish_one(small, 1000);
			bench_publish_one(mid, 100000);
			if (large != mid)
				bench_publish_one(large, big);
			fail_ret(mix_index_close(&small), "mix_index_close");
		}
		if (want("checkpoint"))
			bench_checkpoint(large, big);
		if (want("ckptasync"))
			bench_ckptasync(large, big);
		if (want("refresh"))
			bench_refresh(mid_path, mid, 100000);
		free(mid_path);
		if (large != mid)
			fail_ret(mix_index_close(&large), "mix_index_close");
		fail_ret(mix_index_close(&mid), "mix_index_close");
		if (want("rss"))
			bench_rss(large_path, big);
		free(large_path);
	}
	if (want("lowwater"))
		bench_lowwater(big);
	fail_ret(mix_engine_free(&g_engine), "mix_engine_free");
	printf("# bench: %.1f s\n", st_secs_since(t0));
	return 0;
}
