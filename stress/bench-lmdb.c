/*
 * bench-lmdb — the same workloads on mix and on LMDB, in one run, side by
 * side (issue 6; docs/benchmarks.md "mix vs LMDB" and "Scaling").  Only
 * measures; never part of `make check` (`make bench` runs it).  libmix is
 * used through include/mix/mix.h only; LMDB (liblmdb-dev) is linked into
 * this program alone, never into libmix.
 *
 * Output: one "name value unit" line per figure, as stress/bench does;
 * "#" lines are comments (parameters, targets).  Every ratio is
 * "mix_over_lmdb": mix's throughput divided by LMDB's, measured in this
 * run, so > 1 means mix is faster.  Repeated measurements interleave the
 * two sides (mix run, LMDB run, mix run, ...) so that noise from other
 * processes on the machine hits both, and report the median.
 *
 * The data, the same on both sides
 * --------------------------------
 * A mailbox of N messages with UIDs 1..N.  Each message has flags, a
 * modseq and a received date (u64).  mix: the record's flags, the
 * built-in modseq, and a registered 8-byte extension "received" set at
 * append (mix_txn_append_ext).  LMDB: one unnamed database with
 * MDB_INTEGERKEY, key = UID (u32), value = 20 bytes {flags u32, modseq
 * u64, received u64} (packed, read and written with memcpy).  LMDB has no
 * modseqs of its own: each write transaction takes the next number of a
 * counter (serialized by LMDB's writer lock) and stores it in every value
 * it changes.  LMDB keeps no HIGHESTMODSEQ or message-count header record
 * (mix does); where in doubt, the choice spares LMDB work.
 *
 * LMDB settings (0.9.24, Debian 12)
 * ---------------------------------
 * - One environment per data set, a directory (data.mdb + lock.mdb) below
 *   --dir, on the same filesystem as mix's indexes.
 * - Map size 2 GiB (sparse; the 1,000,000-message database uses 34 MB),
 *   maxreaders 256 (the scaling run has 64 readers), maxdbs 0.
 * - Page size: LMDB 0.9 always uses the OS page size (4096 here); it is
 *   not configurable.
 * - MDB_NOTLS on every environment: a read transaction is tied to its
 *   MDB_txn object, not the thread, so each reader keeps one txn and
 *   mdb_txn_reset / mdb_txn_renew it every 1,000 lookups (the cheapest
 *   legal way to see newer data; no malloc per read txn).
 * - No MDB_WRITEMAP (the default and the documented safe mode: dirty
 *   pages are written with pwrite/writev at commit), no MDB_MAPASYNC.
 * - "No fsync": MDB_NOSYNC (mdb_env_set_flags), which also skips the
 *   meta-page sync.  A commit has written its pages into the page cache
 *   and is visible to new read transactions: the same promise as mix's
 *   MIX_DURABILITY_NONE (visible, in the page cache, lost by a machine
 *   crash, not by a process crash).
 * - "With fsync": LMDB's default: at commit, fdatasync of the data file,
 *   then the meta page is written through an O_DSYNC descriptor — two
 *   sync points per commit, and the commit survives power loss.  That is
 *   mix's MIX_DURABILITY_SYNC (fdatasync of the log before the commit is
 *   acknowledged; one fdatasync per batch of commits).  For reference,
 *   also LMDB with MDB_NOMETASYNC (one fdatasync per commit, but the last
 *   commit may be lost by a system crash: weaker than mix SYNC).
 * - Appends: MDB_APPEND (keys arrive in increasing order, LMDB fills
 *   pages to the end instead of splitting them in half).
 *
 * mix settings
 * ------------
 * Engine defaults: one writer thread, log rotated (checkpoint) at 4 MiB,
 * queue_max 4096.  An index per data set in --dir.  Durability NONE for
 * "no fsync", SYNC for "with fsync".
 *
 * Workloads
 * ---------
 * calib    not a workload: a CPU-bound loop on 1 and then 2 threads; the
 *          speedup (machine_cpu_speedup_2thr) says how much of its second
 *          CPU the machine gives this run.
 * append   100,000 appends in transactions of 1,000 into a fresh index /
 *          environment (open outside the timing): mix NONE vs LMDB
 *          MDB_APPEND + MDB_NOSYNC (msgs/s, median of 3).  Target: mix
 *          >= 2x LMDB.  Also mix without the received date (no
 *          mix_txn_append_ext), to show what the extension costs, and
 *          mix with mix_txn_commit_async (each transaction built while
 *          the writer applies the previous one; a bulk import can do
 *          this, an LMDB writer cannot: not what the target compares).
 * commit   one committer, one flag change per transaction, on 10,000
 *          messages: mix NONE vs LMDB NOSYNC (intervals of 0.5 s) and mix
 *          SYNC vs LMDB default sync (and NOMETASYNC) (intervals of 1 s);
 *          commits/s, median of 3 intervals; and the disk's raw rate
 *          of 64-byte append + fdatasync on a file in --dir.  An LMDB
 *          flag change is a write txn: mdb_get, new flags and modseq,
 *          mdb_put, commit.  The flags alternate between two values, so
 *          every commit changes something on both sides.
 * commit16 16 committer threads, one flag change per transaction, with
 *          fsync, 3 rounds of 1 s per side, interleaved (commits/s,
 *          median): mix's group commit against LMDB's one writer at a
 *          time.  Target: mix >= 10x.
 * lookup   random UID lookups (uniform over 1..N) on N = 100,000 and
 *          1,000,000 with 1 and 2 reader threads; mix:
 *          mix_snap_lookup_uid, 1,000 per mix_read_lock section; LMDB:
 *          mdb_get, 1,000 per read txn (renew ... reset).  Both read the
 *          flags and the modseq of each hit.  ns per lookup per thread
 *          and total lookups/s, median of 5 runs of 0.3 s.  Target: mix
 *          >= 5x LMDB (every case; the worst one is reported).
 * refresh  2 reader threads each repeatedly moving to the newest state
 *          and doing 1,000 lookups, while one thread commits flag
 *          changes as fast as it can (NONE / NOSYNC), on 100,000
 *          messages: mix mix_view_refresh + mix_view_snap + 1,000
 *          lookups; LMDB mdb_txn_renew + 1,000 mdb_get + mdb_txn_reset.
 *          Reader lookups/s, writer commits/s, and how often a refresh
 *          found a newer state; median of 3 runs of 1 s.
 * scale    the refresh setup with 1, 2, 4, 8, 16 and 64 readers using
 *          read-side sections (mix) / read txns (LMDB) on 1,000,000
 *          messages: total lookups/s, mean per-thread lookups/s, CPU ns
 *          per lookup (thread CPU time / lookups, median over threads:
 *          flat when the read path shares no cache line), and the
 *          writer's commit rate; median of 3 runs of 0.5 s.
 * latency  commit-to-acknowledge: mix_txn_begin .. mix_txn_commit's
 *          return (mdb_txn_begin .. mdb_txn_commit's return, which
 *          includes waiting for LMDB's writer lock), measured with
 *          CLOCK_MONOTONIC around every commit of "commit" and
 *          "commit16" into a log-linear histogram (32 buckets per power
 *          of two, < 3.2% error); p50, p90, p99, p99.9 and max in us
 *          (latency_commit_*).  mix's side also from the engine itself
 *          (mix_engine_latency; latency_engine_*): VISIBLE = handed to
 *          the writer .. published to readers, ACK = .. committer woken.
 *          Each mix phase runs on a fresh engine (the index is closed
 *          and reopened on it), so its histograms hold that phase only.
 * busy     commits while readers saturate the CPUs (issue 11 item 3): 2
 *          reader threads per online CPU, each doing 1,000 lookups per
 *          section without pause, on 10,000 messages of the same side.
 *          (1) one committer, one flag change per transaction, mix NONE
 *          vs LMDB NOSYNC, interleaved, 5 intervals of 0.5 s per side
 *          (commits/s, median; p99 of every commit).  Target: mix >=
 *          LMDB.  (2) 16 mix SYNC committers (as commit16) with and
 *          without the readers, interleaved, 3 rounds of 1 s; target:
 *          with >= 80% of without; p99 of both; each phase's mean batch
 *          and fdatasyncs/s (how full the batches stay, how many the
 *          disk path completes).  (3) 16 LMDB committers with fsync at
 *          commit, with and without LMDB readers: what the reference
 *          engine keeps.  A single thread's append + fdatasync loop,
 *          with and without the readers, for the disk path alone.
 *          --reader-nice N runs the readers at nice N: a control that
 *          shows what the committers lose to the scheduler.
 * callgrind (only with --only callgrind, for tools/callgrind-lookup.sh):
 *          fills 100,000 messages on each side and runs --lookups random
 *          lookups in cg_mix_lookups() and cg_lmdb_lookups(), which the
 *          script has valgrind count.
 *
 * The machine has few cores and other work runs on it: each figure is a
 * median, each ratio comes from figures of this run.
 *
 * Options: --dir DIR (required), --quick (shorter, 100,000 instead of
 * 1,000,000 messages; names say which), --only NAME, --seed N,
 * --lookups N (callgrind), --reader-nice N (busy).  Full run ~1.5 minutes, --quick ~20 s.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lmdb.h>
#include <mix/mix.h>

#include "stress.h"

#ifdef __clang__
#define BENCH_NOCLONE
#else
#define BENCH_NOCLONE __attribute__((noclone))
#endif
/* a function valgrind must find under its own name */
#define BENCH_MEASURED __attribute__((noinline, used)) BENCH_NOCLONE

#define LOOKUPS_PER_SECTION 1000u
#define LMDB_MAPSIZE (2ull << 30)
#define LMDB_MAXREADERS 256u
#define LVAL_SIZE 20u
#define RECEIVED_BASE 1700000000ull

static const char *g_dir;
static const char *g_only;
static int g_quick;
/* --reader-nice: the busy section's spinning readers run at this nice
 * value (a control, not a setting of the engine: it shows what the
 * committers lose to the scheduler's wake-up placement) */
static int g_reader_nice;
static uint64_t g_seed;
static struct mix_engine *g_engine;

/* ---- helpers ------------------------------------------------------------ */

static void fail_ret(int ret, const char *what)
{
	if (ret != 0)
		st_die("bench-lmdb: %s: %s: %s", what, mix_strerror(ret),
		       mix_last_error());
}

static void mdb_ok(int rc, const char *what)
{
	if (rc != 0)
		st_die("bench-lmdb: %s: %s", what, mdb_strerror(rc));
}

static int want(const char *name)
{
	return g_only ? !strcmp(g_only, name) : strcmp(name, "callgrind");
}


/* One "name value unit" line; the name is printf-formatted. */
static void figure(const char *unit, double value, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void figure(const char *unit, double value, const char *fmt, ...)
{
	char name[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (value != 0 && (value >= 1e7 || value < 0.01))
		printf("%s %.3e %s\n", name, value, unit);
	else
		printf("%s %.4g %s\n", name, value, unit);
	fflush(stdout);
}

static double ratio(double mix, double lmdb)
{
	return lmdb > 0 ? mix / lmdb : 0;
}

/* Targets, printed together at the end. */
struct target {
	const char *what;
	double goal, got;
	int measured;
};
static struct target g_targets[] = {
	{ "lookups (worst of 100k/1m x 1/2 threads), mix/LMDB", 5, 0, 0 },
	{ "16 committers with fsync, mix/LMDB commits/s", 10, 0, 0 },
	{ "appends (LMDB with MDB_APPEND, NOSYNC), mix/LMDB", 2, 0, 0 },
	{ "1 committer beside 2 spinning readers per CPU, mix NONE/LMDB "
	  "NOSYNC commits/s", 1, 0, 0 },
	{ "16 SYNC committers beside 2 spinning readers per CPU, mix "
	  "with/without readers", 0.8, 0, 0 },
};

static void target_set(unsigned i, double got)
{
	if (!g_targets[i].measured || got < g_targets[i].got)
		g_targets[i].got = got;
	g_targets[i].measured = 1;
}

static void sleep_secs(double secs)
{
	struct timespec ts;
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram -------------------------------------------------- */

/* Log-linear: values below 32 ns exact, then 32 buckets per power of two
 * (relative width 1/32).  Percentiles report a bucket's upper bound,
 * capped at the maximum seen. */
#define HIST_SUB_BITS 5u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64u * HIST_SUB)

struct hist {
	uint64_t n, max;
	uint64_t count[HIST_BUCKETS];
};

static unsigned hist_bucket(uint64_t v)
{
	unsigned e;
	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB +
	       (unsigned)(v >> (e - HIST_SUB_BITS)) - HIST_SUB;
}

static uint64_t hist_bucket_high(unsigned b)
{
	unsigned e, m;
	if (b < HIST_SUB)
		return b;
	e = b / HIST_SUB + HIST_SUB_BITS - 1;
	m = b % HIST_SUB + HIST_SUB;
	return ((uint64_t)(m + 1) << (e - HIST_SUB_BITS)) - 1;
}

static struct hist *hist_new(void)
{
	struct hist *h = calloc(1, sizeof(*h));
	if (!h)
		st_die("out of memory");
	return h;
}

static void hist_add(struct hist *h, uint64_t ns)
{
	h->count[hist_bucket(ns)]++;
	h->n++;
	if (ns > h->max)
		h->max = ns;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	unsigned i;
	for (i = 0; i < HIST_BUCKETS; i++)
		to->count[i] += from->count[i];
	to->n += from->n;
	if (from->max > to->max)
		to->max = from->max;
}

/* The p-th percentile (0 < p <= 100) in ns. */
static uint64_t hist_pct(const struct hist *h, double p)
{
	uint64_t rank = (uint64_t)((double)h->n * p / 100.0 + 0.999999), c = 0;
	unsigned i;
	if (rank == 0)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		c += h->count[i];
		if (c >= rank) {
			uint64_t hi = hist_bucket_high(i);
			return hi < h->max ? hi : h->max;
		}
	}
	return h->max;
}

static void hist_print(const struct hist *h, const char *name)
{
	static const struct { const char *tag; double p; } pcts[] = {
		{ "p50", 50 }, { "p90", 90 }, { "p99", 99 }, { "p999", 99.9 },
	};
	size_t i;
	figure("commits", (double)h->n, "latency_%s_count", name);
	for (i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		figure("us", (double)hist_pct(h, pcts[i].p) / 1e3,
		       "latency_%s_%s", name, pcts[i].tag);
	figure("us", (double)h->max / 1e3, "latency_%s_max", name);
}

/* ---- mix side ----------------------------------------------------------- */

struct mixdb {
	struct mix_index *idx;
	struct mix_engine *engine;
	uint32_t ext;       /* "received", u64 */
	int no_date;        /* mixdb_fill leaves "received" unset */
	uint32_t messages;
	char *path;
};

static void mixdb_attach(struct mixdb *m, struct mix_engine *e)
{
	m->engine = e;
	fail_ret(mix_index_open(e, m->path, MIX_OPEN_CREATE, &m->idx),
		 "mix_index_open");
	fail_ret(mix_index_ext_register(m->idx, "received", 8, 8, 0, &m->ext),
		 "mix_index_ext_register");
}

static void mixdb_open(struct mixdb *m, const char *name)
{
	memset(m, 0, sizeof(*m));
	if (asprintf(&m->path, "%s/mix-%s", g_dir, name) < 0)
		st_die("out of memory");
	st_rmdir_r(m->path);
	st_mkdir(m->path);
	mixdb_attach(m, g_engine);
}

/* Close the index and open it again on engine e (the commit workloads
 * give each phase a fresh engine, whose latency histograms then hold
 * that phase's commits and nothing else). */
static void mixdb_move(struct mixdb *m, struct mix_engine *e)
{
	fail_ret(mix_index_close(&m->idx), "mix_index_close");
	mixdb_attach(m, e);
}

static void mixdb_close(struct mixdb *m)
{
	fail_ret(mix_index_close(&m->idx), "mix_index_close");
	st_rmdir_r(m->path);
	free(m->path);
	m->path = NULL;
}

/* Append n messages (flags 0, a received date unless m->no_date) in
 * transactions of k. */
/* A transaction of step appends (flags 0, a received date unless
 * m->no_date) after the m->messages already there. */
static struct mix_txn *mixdb_appends(struct mixdb *m, uint32_t step)
{
	struct mix_txn *t;
	uint32_t i, a;
	fail_ret(mix_txn_begin(m->idx, &t), "mix_txn_begin");
	for (i = 0; i < step; i++) {
		uint64_t date = RECEIVED_BASE + 60ull * (m->messages + i + 1);
		fail_ret(mix_txn_append(t, 0, NULL, &a), "mix_txn_append");
		if (!m->no_date)
			fail_ret(mix_txn_append_ext(t, a, m->ext, &date,
						    sizeof(date)),
				 "mix_txn_append_ext");
	}
	m->messages += step;
	return t;
}

static uint32_t g_async_done;

static void async_done(void *ctx, int ret,
		       const struct mix_commit_result *res)
{
	(void)ctx;
	(void)res;
	if (ret != 0)
		st_die("bench-lmdb: async commit failed: %d", ret);
	__atomic_add_fetch(&g_async_done, 1, __ATOMIC_RELEASE);
}

/* Append n messages in transactions of k.  async: commit each with
 * mix_txn_commit_async, so the next transaction is built while the
 * writer applies the previous one (a bulk import can do this; an LMDB
 * writer cannot), and wait for all of them at the end. */
static void mixdb_fill_mode(struct mixdb *m, uint32_t n, uint32_t k,
			    int async)
{
	uint32_t done = 0, txns = 0;
	__atomic_store_n(&g_async_done, 0, __ATOMIC_RELAXED);
	while (done < n) {
		uint32_t step = n - done < k ? n - done : k;
		struct mix_txn *t = mixdb_appends(m, step);
		if (async)
			fail_ret(mix_txn_commit_async(&t, MIX_DURABILITY_NONE,
						      async_done, NULL),
				 "mix_txn_commit_async");
		else
			fail_ret(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL),
				 "mix_txn_commit");
		txns++;
		done += step;
	}
	while (async && __atomic_load_n(&g_async_done, __ATOMIC_ACQUIRE) < txns)
		sched_yield();
}

static void mixdb_fill(struct mixdb *m, uint32_t n, uint32_t k)
{
	mixdb_fill_mode(m, n, k, 0);
}

static struct mix_engine *engine_new(void)
{
	struct mix_engine *e;
	fail_ret(mix_engine_create(NULL, &e), "mix_engine_create");
	return e;
}

/* The engine's own view of its commits (mix_engine_latency, kept by the
 * writer: VISIBLE = handed over .. published, ACK = handed over ..
 * committer woken), as latency_engine_NAME_{visible,ack}_* figures. */
static void engine_latency_print(struct mix_engine *e, const char *name)
{
	static const struct {
		enum mix_latency_kind kind;
		const char *tag;
	} kinds[] = {
		{ MIX_LATENCY_VISIBLE, "visible" },
		{ MIX_LATENCY_ACK, "ack" },
	};
	size_t i;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct mix_latency lat;
		fail_ret(mix_engine_latency(e, kinds[i].kind, &lat),
			 "mix_engine_latency");
		figure("commits", (double)lat.count, "latency_engine_%s_%s_count",
		       name, kinds[i].tag);
		figure("us", (double)lat.p50_ns / 1e3, "latency_engine_%s_%s_p50",
		       name, kinds[i].tag);
		figure("us", (double)lat.p99_ns / 1e3, "latency_engine_%s_%s_p99",
		       name, kinds[i].tag);
		figure("us", (double)lat.p999_ns / 1e3,
		       "latency_engine_%s_%s_p999", name, kinds[i].tag);
		figure("us", (double)lat.max_ns / 1e3, "latency_engine_%s_%s_max",
		       name, kinds[i].tag);
	}
}

/* ---- LMDB side ---------------------------------------------------------- */

enum ldb_sync { LDB_NOSYNC, LDB_SYNC, LDB_NOMETASYNC };

struct ldb {
	MDB_env *env;
	MDB_dbi dbi;
	uint32_t messages;
	uint64_t modseq;    /* changed only inside write txns */
	char *path;
};

static void lval_put(unsigned char *b, uint32_t flags, uint64_t modseq,
		     uint64_t received)
{
	memcpy(b, &flags, 4);
	memcpy(b + 4, &modseq, 8);
	memcpy(b + 12, &received, 8);
}

static void ldb_set_sync(struct ldb *l, enum ldb_sync s)
{
	mdb_ok(mdb_env_set_flags(l->env, MDB_NOSYNC | MDB_NOMETASYNC, 0),
	       "mdb_env_set_flags");
	if (s == LDB_NOSYNC)
		mdb_ok(mdb_env_set_flags(l->env, MDB_NOSYNC, 1),
		       "mdb_env_set_flags");
	else if (s == LDB_NOMETASYNC)
		mdb_ok(mdb_env_set_flags(l->env, MDB_NOMETASYNC, 1),
		       "mdb_env_set_flags");
}

static void ldb_open(struct ldb *l, const char *name)
{
	MDB_txn *txn;
	memset(l, 0, sizeof(*l));
	if (asprintf(&l->path, "%s/lmdb-%s", g_dir, name) < 0)
		st_die("out of memory");
	st_rmdir_r(l->path);
	st_mkdir(l->path);
	mdb_ok(mdb_env_create(&l->env), "mdb_env_create");
	mdb_ok(mdb_env_set_mapsize(l->env, LMDB_MAPSIZE), "mdb_env_set_mapsize");
	mdb_ok(mdb_env_set_maxreaders(l->env, LMDB_MAXREADERS),
	       "mdb_env_set_maxreaders");
	mdb_ok(mdb_env_open(l->env, l->path, MDB_NOTLS | MDB_NOSYNC, 0600),
	       "mdb_env_open");
	mdb_ok(mdb_txn_begin(l->env, NULL, 0, &txn), "mdb_txn_begin");
	mdb_ok(mdb_dbi_open(txn, NULL, MDB_INTEGERKEY, &l->dbi), "mdb_dbi_open");
	mdb_ok(mdb_txn_commit(txn), "mdb_txn_commit");
}

static void ldb_close(struct ldb *l)
{
	mdb_env_close(l->env);
	l->env = NULL;
	st_rmdir_r(l->path);
	free(l->path);
	l->path = NULL;
}

/* Append n messages with MDB_APPEND in write txns of k (one modseq per
 * txn), with whatever sync mode the environment has. */
static void ldb_fill(struct ldb *l, uint32_t n, uint32_t k)
{
	uint32_t done = 0, i;
	unsigned char buf[LVAL_SIZE];
	while (done < n) {
		uint32_t step = n - done < k ? n - done : k;
		MDB_txn *txn;
		mdb_ok(mdb_txn_begin(l->env, NULL, 0, &txn), "mdb_txn_begin");
		l->modseq++;
		for (i = 0; i < step; i++) {
			uint32_t uid = l->messages + i + 1;
			MDB_val key = { sizeof(uid), &uid };
			MDB_val val = { LVAL_SIZE, buf };
			lval_put(buf, 0, l->modseq, RECEIVED_BASE + 60ull * uid);
			mdb_ok(mdb_put(txn, l->dbi, &key, &val, MDB_APPEND),
			       "mdb_put(MDB_APPEND)");
		}
		mdb_ok(mdb_txn_commit(txn), "mdb_txn_commit");
		done += step;
		l->messages += step;
	}
}

/* ---- flag changes (both sides) ----------------------------------------- */

/* One mix flag change; returns begin..acknowledge in ns. */
static uint64_t mix_toggle(struct mixdb *m, struct toggler *tg,
			   enum mix_durability d)
{
	struct mix_uid_range r = { tg->uid, tg->uid };
	struct mix_commit_result res;
	struct mix_txn *t;
	uint64_t t0 = st_now_ns();

	fail_ret(mix_txn_begin(m->idx, &t), "mix_txn_begin");
	fail_ret(mix_txn_flags(t, &r, 1, MIX_MODIFY_REPLACE,
			       toggler_flags(tg)), "mix_txn_flags");
	fail_ret(mix_txn_commit(&t, d, &res), "mix_txn_commit");
	t0 = st_now_ns() - t0;
	if (res.no_changes)
		st_die("bench-lmdb: mix flag change on uid %u was a no-op",
		       tg->uid);
	toggler_next(tg);
	return t0;
}

/* One LMDB flag change (get, modify, put, commit); ns as above. */
static uint64_t ldb_toggle(struct ldb *l, struct toggler *tg)
{
	uint32_t uid = tg->uid, flags = toggler_flags(tg);
	unsigned char buf[LVAL_SIZE];
	MDB_val key = { sizeof(uid), &uid }, val;
	MDB_txn *txn;
	uint64_t t0 = st_now_ns();

	mdb_ok(mdb_txn_begin(l->env, NULL, 0, &txn), "mdb_txn_begin");
	mdb_ok(mdb_get(txn, l->dbi, &key, &val), "mdb_get");
	if (val.mv_size != LVAL_SIZE)
		st_die("bench-lmdb: uid %u: value of %zu bytes", uid,
		       val.mv_size);
	memcpy(buf, val.mv_data, LVAL_SIZE);
	l->modseq++;
	memcpy(buf, &flags, 4);
	memcpy(buf + 4, &l->modseq, 8);
	val.mv_size = LVAL_SIZE;
	val.mv_data = buf;
	mdb_ok(mdb_put(txn, l->dbi, &key, &val, 0), "mdb_put");
	mdb_ok(mdb_txn_commit(txn), "mdb_txn_commit");
	t0 = st_now_ns() - t0;
	toggler_next(tg);
	return t0;
}

/* ---- how parallel the machine is ---------------------------------------- */

struct spinner {
	pthread_t thread;
	uint64_t iters, ns, sink;
};

static void *spinner_main(void *arg)
{
	struct spinner *sp = arg;
	uint64_t x = 1, i, t0 = st_now_ns();
	for (i = 0; i < sp->iters; i++)
		x = st_rand(&x) | 1;
	sp->ns = st_now_ns() - t0;
	sp->sink = x;
	return NULL;
}

/* A fixed CPU-bound loop (xorshift, no memory traffic) on 1 thread, then
 * on 2 at once: the speedup says how much of a second CPU the machine
 * really gives this run (2.0 = two free cores; ~1.2 = two hyperthreads
 * of one core, or a busy neighbour).  It explains the 2-thread figures. */
static void bench_calib(void)
{
	uint64_t iters = g_quick ? 20000000 : 50000000;
	double one[3], two[3];
	unsigned run, i;

	for (run = 0; run < 3; run++) {
		struct spinner sp[2];
		uint64_t slowest = 0;
		memset(sp, 0, sizeof(sp));
		sp[0].iters = iters;
		spinner_main(&sp[0]);
		one[run] = (double)sp[0].ns;
		for (i = 0; i < 2; i++) {
			sp[i].iters = iters;
			if (pthread_create(&sp[i].thread, NULL, spinner_main,
					   &sp[i]))
				st_die("pthread_create failed");
		}
		for (i = 0; i < 2; i++) {
			pthread_join(sp[i].thread, NULL);
			if (sp[i].ns > slowest)
				slowest = sp[i].ns;
		}
		two[run] = (double)slowest;
	}
	figure("ratio", 2 * st_median(one, 3) / st_median(two, 3),
	       "machine_cpu_speedup_2thr");
}

/* ---- (a) appends -------------------------------------------------------- */

static void bench_append(void)
{
	double mv[3], lv[3], nv[3], av[3], mmed, lmed;
	unsigned run, runs = g_quick ? 2 : 3;

	for (run = 0; run < runs; run++) {
		struct mixdb m;
		struct ldb l;
		uint64_t t0;

		mixdb_open(&m, "append");
		t0 = st_now_ns();
		mixdb_fill(&m, 100000, 1000);
		mv[run] = 100000 / st_secs_since(t0);
		mixdb_close(&m);

		/* the same, pipelined with mix_txn_commit_async */
		mixdb_open(&m, "append-async");
		t0 = st_now_ns();
		mixdb_fill_mode(&m, 100000, 1000, 1);
		av[run] = 100000 / st_secs_since(t0);
		mixdb_close(&m);

		/* diagnostic: the same without the received date */
		mixdb_open(&m, "append-nodate");
		m.no_date = 1;
		t0 = st_now_ns();
		mixdb_fill(&m, 100000, 1000);
		nv[run] = 100000 / st_secs_since(t0);
		mixdb_close(&m);

		ldb_open(&l, "append");
		ldb_set_sync(&l, LDB_NOSYNC);
		t0 = st_now_ns();
		ldb_fill(&l, 100000, 1000);
		lv[run] = 100000 / st_secs_since(t0);
		ldb_close(&l);
	}
	mmed = st_median(mv, runs);
	lmed = st_median(lv, runs);
	figure("msgs/s", mmed, "append_100k_txn1000_mix_none");
	figure("msgs/s", lmed, "append_100k_txn1000_lmdb_append_nosync");
	figure("ratio", ratio(mmed, lmed), "append_100k_txn1000_mix_over_lmdb");
	figure("msgs/s", st_median(nv, runs),
	       "append_100k_txn1000_mix_none_without_date");
	figure("msgs/s", st_median(av, runs),
	       "append_100k_txn1000_mix_none_async");
	figure("ratio", ratio(st_median(av, runs), lmed),
	       "append_100k_txn1000_mix_async_over_lmdb");
	target_set(2, ratio(mmed, lmed));
}

/* ---- (b) one committer -------------------------------------------------- */

static double mix_commit_rate(struct mixdb *m, struct toggler *tg,
			      enum mix_durability d, double secs,
			      struct hist *h)
{
	uint64_t t0 = st_now_ns(), n = 0;
	while (n % 16 != 0 || st_secs_since(t0) < secs) {
		hist_add(h, mix_toggle(m, tg, d));
		n++;
	}
	return n / st_secs_since(t0);
}

static double ldb_commit_rate(struct ldb *l, struct toggler *tg,
			      double secs, struct hist *h)
{
	uint64_t t0 = st_now_ns(), n = 0;
	while (n % 16 != 0 || st_secs_since(t0) < secs) {
		uint64_t ns = ldb_toggle(l, tg);
		if (h)
			hist_add(h, ns);
		n++;
	}
	return n / st_secs_since(t0);
}


static void bench_commit(void)
{
	double s_none = g_quick ? 0.15 : 0.5, s_sync = g_quick ? 0.3 : 1.0;
	double mn[3], ln[3], ms[3], ls[3], lm[3], raw[3], mnm, lnm, msm, lsm;
	struct hist *h_mn = hist_new(), *h_ln = hist_new();
	struct hist *h_ms = hist_new(), *h_ls = hist_new();
	struct toggler mtg, ltg;
	struct mix_engine *e;
	struct mixdb m;
	struct ldb l;
	unsigned i;

	mixdb_open(&m, "commit10k");
	mixdb_fill(&m, 10000, 1000);
	ldb_open(&l, "commit10k");
	ldb_fill(&l, 10000, 1000);
	toggler_init(&mtg, 10000, 1, 0, 1);
	toggler_init(&ltg, 10000, 1, 0, 0);

	e = engine_new();
	mixdb_move(&m, e);
	ldb_set_sync(&l, LDB_NOSYNC);
	for (i = 0; i < 3; i++) {
		mn[i] = mix_commit_rate(&m, &mtg, MIX_DURABILITY_NONE, s_none,
					h_mn);
		ln[i] = ldb_commit_rate(&l, &ltg, s_none, h_ln);
	}
	mixdb_move(&m, g_engine);
	engine_latency_print(e, "commit_1thr_mix_none");
	fail_ret(mix_engine_free(&e), "mix_engine_free");
	e = engine_new();
	mixdb_move(&m, e);
	for (i = 0; i < 3; i++) {
		ms[i] = mix_commit_rate(&m, &mtg, MIX_DURABILITY_SYNC, s_sync,
					h_ms);
		ldb_set_sync(&l, LDB_SYNC);
		ls[i] = ldb_commit_rate(&l, &ltg, s_sync, h_ls);
		ldb_set_sync(&l, LDB_NOMETASYNC);
		lm[i] = ldb_commit_rate(&l, &ltg, s_sync / 2, NULL);
		raw[i] = st_fdatasync_rate(g_dir, s_sync / 2);
	}
	mixdb_close(&m);
	ldb_close(&l);
	engine_latency_print(e, "commit_1thr_mix_sync");
	fail_ret(mix_engine_free(&e), "mix_engine_free");

	mnm = st_median(mn, 3);
	lnm = st_median(ln, 3);
	msm = st_median(ms, 3);
	lsm = st_median(ls, 3);
	figure("commits/s", mnm, "commit_1thr_10k_mix_none");
	figure("commits/s", lnm, "commit_1thr_10k_lmdb_nosync");
	figure("ratio", ratio(mnm, lnm),
	       "commit_1thr_10k_nofsync_mix_over_lmdb");
	figure("commits/s", msm, "commit_1thr_10k_mix_sync");
	figure("commits/s", lsm, "commit_1thr_10k_lmdb_sync");
	figure("ratio", ratio(msm, lsm),
	       "commit_1thr_10k_fsync_mix_over_lmdb");
	figure("commits/s", st_median(lm, 3),
	       "commit_1thr_10k_lmdb_nometasync");
	figure("syncs/s", st_median(raw, 3), "fdatasync_raw_append64");
	hist_print(h_mn, "commit_1thr_mix_none");
	hist_print(h_ln, "commit_1thr_lmdb_nosync");
	hist_print(h_ms, "commit_1thr_mix_sync");
	hist_print(h_ls, "commit_1thr_lmdb_sync");
	free(h_mn);
	free(h_ln);
	free(h_ms);
	free(h_ls);
}

/* ---- (c) 16 committers -------------------------------------------------- */

struct committer {
	pthread_t thread;
	struct mixdb *m;          /* one of m, l */
	struct ldb *l;
	enum mix_durability durability;
	pthread_barrier_t *start;
	const atomic_int *stop;
	struct toggler tg;
	struct hist *h;           /* may be NULL */
	uint64_t commits;
	char pad[64];             /* keep neighbours' counters apart */
};

static void *committer_main(void *arg)
{
	struct committer *c = arg;
	if (c->m) { /* register with mix's RCU domain before the clock */
		mix_read_lock();
		mix_read_unlock();
	}
	pthread_barrier_wait(c->start);
	while (!atomic_load_explicit(c->stop, memory_order_relaxed)) {
		uint64_t ns = c->m ? mix_toggle(c->m, &c->tg, c->durability) :
				     ldb_toggle(c->l, &c->tg);
		if (c->h)
			hist_add(c->h, ns);
		c->commits++;
	}
	return NULL;
}

/* nthreads committers for secs; commits/s; latencies into h. */
static double multi_commit(struct mixdb *m, struct ldb *l, unsigned nthreads,
			   double secs, struct hist *h)
{
	struct committer *c = calloc(nthreads, sizeof(*c));
	pthread_barrier_t start;
	atomic_int stop = 0;
	uint64_t total = 0, t0;
	unsigned i;

	if (!c)
		st_die("out of memory");
	pthread_barrier_init(&start, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		c[i].m = m;
		c[i].l = l;
		c[i].durability = MIX_DURABILITY_SYNC;
		c[i].start = &start;
		c[i].stop = &stop;
		c[i].h = hist_new();
		toggler_init(&c[i].tg, 10000, nthreads, i, i == 0);
		if (pthread_create(&c[i].thread, NULL, committer_main, &c[i]))
			st_die("pthread_create failed");
	}
	pthread_barrier_wait(&start);
	t0 = st_now_ns();
	sleep_secs(secs);
	atomic_store_explicit(&stop, 1, memory_order_relaxed);
	for (i = 0; i < nthreads; i++) {
		pthread_join(c[i].thread, NULL);
		total += c[i].commits;
		hist_merge(h, c[i].h);
		free(c[i].h);
	}
	secs = st_secs_since(t0);
	pthread_barrier_destroy(&start);
	free(c);
	return total / secs;
}

static void bench_commit16(void)
{
	unsigned runs = g_quick ? 1 : 3, i;
	double secs = 1.0, mv[3], lv[3], mr, lr, mix_secs = 0;
	struct hist *hm = hist_new(), *hl = hist_new();
	struct mix_engine_stats a, b;
	struct mix_engine *e;
	struct mixdb m;
	struct ldb l;

	mixdb_open(&m, "commit16");
	mixdb_fill(&m, 10000, 1000);
	ldb_open(&l, "commit16");
	ldb_fill(&l, 10000, 1000);
	ldb_set_sync(&l, LDB_SYNC);

	e = engine_new();
	mixdb_move(&m, e);
	mix_engine_stats(e, &a);
	for (i = 0; i < runs; i++) {
		uint64_t t0 = st_now_ns();
		mv[i] = multi_commit(&m, NULL, 16, secs, hm);
		mix_secs += st_secs_since(t0);
		lv[i] = multi_commit(NULL, &l, 16, secs, hl);
	}
	mix_engine_stats(e, &b);
	mixdb_close(&m);
	ldb_close(&l);
	mr = st_median(mv, runs);
	lr = st_median(lv, runs);

	figure("commits/s", mr, "commit_16thr_10k_mix_sync");
	figure("commits/s", lr, "commit_16thr_10k_lmdb_sync");
	figure("ratio", ratio(mr, lr), "commit_16thr_10k_fsync_mix_over_lmdb");
	if (b.batches > a.batches)
		figure("commits/batch", (double)(b.commits - a.commits) /
		       (double)(b.batches - a.batches),
		       "commit_16thr_mix_mean_batch");
	figure("fsyncs/s", (double)(b.fsyncs - a.fsyncs) / mix_secs,
	       "commit_16thr_mix_fsyncs");
	hist_print(hm, "commit_16thr_mix_sync");
	hist_print(hl, "commit_16thr_lmdb_sync");
	engine_latency_print(e, "commit_16thr_mix_sync");
	fail_ret(mix_engine_free(&e), "mix_engine_free");
	target_set(1, ratio(mr, lr));
	free(hm);
	free(hl);
}

/* ---- readers (lookup, refresh, scale) ----------------------------------- */

enum rmode { R_MIX_SECTION, R_MIX_VIEW, R_LMDB };

struct reader {
	pthread_t thread;
	enum rmode mode;
	struct mixdb *m;
	struct ldb *l;
	uint32_t messages;
	int nice;               /* setpriority of this thread, if not 0 */
	pthread_barrier_t *start;
	const atomic_int *stop;
	uint64_t rng;
	/* results */
	uint64_t lookups, found, refreshes, moved, wall_ns, cpu_ns, sink;
	char pad[64];
};

/* 1,000 lookups in one section of snapshot s; returns hits. */
static uint32_t mix_lookup_batch(const struct mix_snap *s, uint32_t n,
				 uint64_t *rng, uint64_t *sink)
{
	struct mix_record rec;
	uint32_t k, hits = 0;
	for (k = 0; k < LOOKUPS_PER_SECTION; k++) {
		uint32_t uid = 1 + (uint32_t)(st_rand(rng) % n);
		if (mix_snap_lookup_uid(s, uid, &rec) == 1) {
			hits++;
			*sink += rec.flags + rec.modseq;
		}
	}
	return hits;
}

/* 1,000 mdb_get in the (renewed) read txn; returns hits. */
static uint32_t ldb_lookup_batch(struct ldb *l, MDB_txn *txn, uint32_t n,
				 uint64_t *rng, uint64_t *sink)
{
	uint32_t k, hits = 0;
	for (k = 0; k < LOOKUPS_PER_SECTION; k++) {
		uint32_t uid = 1 + (uint32_t)(st_rand(rng) % n), flags;
		MDB_val key = { sizeof(uid), &uid }, val;
		uint64_t modseq;
		if (mdb_get(txn, l->dbi, &key, &val) == 0 &&
		    val.mv_size == LVAL_SIZE) {
			memcpy(&flags, val.mv_data, 4);
			memcpy(&modseq, (const char *)val.mv_data + 4, 8);
			hits++;
			*sink += flags + modseq;
		}
	}
	return hits;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct mix_view *view = NULL;
	MDB_txn *txn = NULL;
	size_t last_txnid = 0;
	uint64_t t0, c0;

	/* Linux: a thread's nice value is its own (PRIO_PROCESS of a tid) */
	if (r->nice && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
				   r->nice) != 0)
		st_die("setpriority failed");
	if (r->mode == R_LMDB) {
		mdb_ok(mdb_txn_begin(r->l->env, NULL, MDB_RDONLY, &txn),
		       "mdb_txn_begin(RDONLY)");
		mdb_txn_reset(txn);
	} else {
		mix_read_lock(); /* registers the thread */
		mix_read_unlock();
		if (r->mode == R_MIX_VIEW)
			fail_ret(mix_view_open(r->m->idx, &view),
				 "mix_view_open");
	}
	pthread_barrier_wait(r->start);
	t0 = st_now_ns();
	c0 = thread_cpu_ns();
	while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
		switch (r->mode) {
		case R_MIX_SECTION:
			mix_read_lock();
			r->found += mix_lookup_batch(mix_index_snap(r->m->idx),
						     r->messages, &r->rng,
						     &r->sink);
			mix_read_unlock();
			break;
		case R_MIX_VIEW:
			r->moved += mix_view_refresh(view) == 1;
			r->found += mix_lookup_batch(mix_view_snap(view),
						     r->messages, &r->rng,
						     &r->sink);
			break;
		case R_LMDB:
			mdb_ok(mdb_txn_renew(txn), "mdb_txn_renew");
			r->moved += mdb_txn_id(txn) != last_txnid;
			last_txnid = mdb_txn_id(txn);
			r->found += ldb_lookup_batch(r->l, txn, r->messages,
						     &r->rng, &r->sink);
			mdb_txn_reset(txn);
			break;
		}
		r->lookups += LOOKUPS_PER_SECTION;
		r->refreshes++;
	}
	r->cpu_ns = thread_cpu_ns() - c0;
	r->wall_ns = st_now_ns() - t0;
	if (view)
		mix_view_close(&view);
	if (txn)
		mdb_txn_abort(txn);
	return NULL;
}

struct read_result {
	double total;       /* lookups/s, all readers */
	double per_thread;  /* mean lookups/s of one reader */
	double ns;          /* mean wall ns per lookup of one reader */
	double cpu_ns;      /* median over readers of CPU ns per lookup */
	double moved_pct;   /* refreshes that found a newer state, % */
	double min_share;   /* fewest lookups of one reader / the mean */
	double writer;      /* writer commits/s (0 without one) */
};

/* nreaders readers (and a writer if with_writer) for secs. */
static struct read_result read_run(enum rmode mode, struct mixdb *m,
				   struct ldb *l, unsigned nreaders,
				   int with_writer, double secs)
{
	struct reader *r = calloc(nreaders, sizeof(*r));
	double *cpu = calloc(nreaders, sizeof(*cpu)), wall_max = 0;
	struct read_result res = { 0, 0, 0, 0, 0, 0, 0 };
	uint64_t lookups = 0, refreshes = 0, moved = 0, min_lookups = 0, t0;
	struct committer w;
	pthread_barrier_t start;
	atomic_int stop = 0;
	unsigned i, ran = 0;

	if (!r || !cpu)
		st_die("out of memory");
	pthread_barrier_init(&start, NULL, nreaders + 1 + !!with_writer);
	for (i = 0; i < nreaders; i++) {
		r[i].mode = mode;
		r[i].m = m;
		r[i].l = l;
		r[i].messages = m ? m->messages : l->messages;
		r[i].start = &start;
		r[i].stop = &stop;
		r[i].rng = st_seed_derive(g_seed, 1000 + i);
		if (pthread_create(&r[i].thread, NULL, reader_main, &r[i]))
			st_die("pthread_create failed");
	}
	if (with_writer) {
		memset(&w, 0, sizeof(w));
		w.m = mode == R_LMDB ? NULL : m;
		w.l = mode == R_LMDB ? l : NULL;
		w.durability = MIX_DURABILITY_NONE;
		w.start = &start;
		w.stop = &stop;
		toggler_init(&w.tg, r[0].messages, 1, 0, 1);
		if (pthread_create(&w.thread, NULL, committer_main, &w))
			st_die("pthread_create failed");
	}
	pthread_barrier_wait(&start);
	t0 = st_now_ns();
	sleep_secs(secs);
	atomic_store_explicit(&stop, 1, memory_order_relaxed);
	for (i = 0; i < nreaders; i++) {
		double wall;
		pthread_join(r[i].thread, NULL);
		if (r[i].found != r[i].lookups ||
		    (r[i].lookups && r[i].sink == 0))
			st_die("bench-lmdb: a reader found %" PRIu64 " of %"
			       PRIu64 " UIDs that exist", r[i].found,
			       r[i].lookups);
		wall = (double)r[i].wall_ns / 1e9;
		if (wall > wall_max)
			wall_max = wall;
		if (i == 0 || r[i].lookups < min_lookups)
			min_lookups = r[i].lookups;
		lookups += r[i].lookups;
		refreshes += r[i].refreshes;
		moved += r[i].moved;
		res.per_thread += (double)r[i].lookups / wall / nreaders;
		/* a reader the scheduler never ran (64 readers on 2 CPUs
		 * in a short run) has no time per lookup */
		if (r[i].lookups) {
			res.ns += (double)r[i].wall_ns / (double)r[i].lookups;
			cpu[ran++] = (double)r[i].cpu_ns /
				     (double)r[i].lookups;
		}
	}
	res.ns = ran ? res.ns / ran : 0;
	res.min_share = lookups ? (double)min_lookups * nreaders /
				  (double)lookups : 0;
	if (with_writer) {
		pthread_join(w.thread, NULL);
		res.writer = (double)w.commits / st_secs_since(t0);
	}
	res.total = (double)lookups / wall_max;
	res.cpu_ns = st_median(cpu, ran);
	res.moved_pct = refreshes ? 100.0 * (double)moved / refreshes : 0;
	pthread_barrier_destroy(&start);
	free(cpu);
	free(r);
	return res;
}

/* ---- (e) commits beside saturating readers ------------------------------ */

/* Readers that run until busy_stop(); mode and data as read_run's. */
struct busy {
	struct reader *r;
	unsigned n;
	pthread_barrier_t start;
	atomic_int stop;
};

static void busy_start(struct busy *b, enum rmode mode, struct mixdb *m,
		       struct ldb *l, unsigned n)
{
	unsigned i;
	b->r = calloc(n, sizeof(*b->r));
	b->n = n;
	atomic_store(&b->stop, 0);
	if (!b->r)
		st_die("out of memory");
	pthread_barrier_init(&b->start, NULL, n + 1);
	for (i = 0; i < n; i++) {
		b->r[i].mode = mode;
		b->r[i].m = m;
		b->r[i].l = l;
		b->r[i].messages = m ? m->messages : l->messages;
		b->r[i].start = &b->start;
		b->r[i].stop = &b->stop;
		b->r[i].rng = st_seed_derive(g_seed, 2000 + i);
		b->r[i].nice = g_reader_nice;
		if (pthread_create(&b->r[i].thread, NULL, reader_main,
				   &b->r[i]))
			st_die("pthread_create failed");
	}
	pthread_barrier_wait(&b->start);
}

static void busy_stop(struct busy *b)
{
	unsigned i;
	atomic_store(&b->stop, 1);
	for (i = 0; i < b->n; i++) {
		pthread_join(b->r[i].thread, NULL);
		if (b->r[i].found != b->r[i].lookups)
			st_die("bench-lmdb: a busy reader found %" PRIu64
			       " of %" PRIu64 " UIDs that exist",
			       b->r[i].found, b->r[i].lookups);
	}
	pthread_barrier_destroy(&b->start);
	free(b->r);
}

/* Who applied the publishes between a and b (the writer role, design.md)
 * and how many batches were held back (coalescing). */
static void role_figures(const char *prefix, const struct mix_engine_stats *a,
			 const struct mix_engine_stats *b)
{
	if (b->batches > a->batches)
		figure("%", 100.0 * (double)(b->batches_by_committer -
					    a->batches_by_committer) /
		       (double)(b->batches - a->batches),
		       "%s_mix_applied_by_committer", prefix);
	figure("batches", (double)(b->batches_held - a->batches_held),
	       "%s_mix_batches_held", prefix);
}

/* A phase's commits, batches and fdatasyncs, summed over its runs. */
struct phase {
	uint64_t commits, batches, fsyncs;
	double secs;
};

static void phase_add(struct phase *p, const struct mix_engine_stats *a,
		      const struct mix_engine_stats *b, double secs)
{
	p->commits += b->commits - a->commits;
	p->batches += b->batches - a->batches;
	p->fsyncs += b->fsyncs - a->fsyncs;
	p->secs += secs;
}

static void phase_print(const struct phase *p, const char *prefix)
{
	if (p->batches)
		figure("commits/batch", (double)p->commits /
		       (double)p->batches, "%s_mix_mean_batch", prefix);
	if (p->secs > 0)
		figure("fsyncs/s", (double)p->fsyncs / p->secs,
		       "%s_mix_fsyncs", prefix);
}

/* The 16 SYNC committers of one side alone and beside the readers:
 * commits/s (medians of runs), their ratio and p99s.  Returns the
 * ratio. */
static double alone_busy_figures(const char *side, const char *tag,
				 double *alone, double *busy, unsigned runs,
				 struct hist *ha, struct hist *hb)
{
	double a = st_median(alone, runs);   /* sorts them */
	double b = st_median(busy, runs);
	double r = a > 0 ? b / a : 0;
	figure("commits/s", a, "busy_commit_16thr_%s_sync_alone", side);
	figure("commits/s", b, "busy_commit_16thr_%s_sync_busy", side);
	figure("ratio", r, "busy_commit_16thr_%sbusy_over_alone", tag);
	figure("us", (double)hist_pct(ha, 99) / 1e3,
	       "busy_commit_16thr_%salone_p99", tag);
	figure("us", (double)hist_pct(hb, 99) / 1e3,
	       "busy_commit_16thr_%sbusy_p99", tag);
	return r;
}

static uint64_t process_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bench_busy(void)
{
	unsigned ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN), i;
	unsigned nread = 2 * (ncpu ? ncpu : 1), runs1 = g_quick ? 3 : 5;
	unsigned runs16 = g_quick ? 1 : 3;
	double s1 = g_quick ? 0.2 : 0.5, s16 = g_quick ? 0.5 : 1.0;
	double mn[5], ln[5], wo[3], wi[3], cpus[3], rawo[3], rawi[3];
	double mnm, lnm, ratio16, lo[3], li[3];
	struct hist *h_mn = hist_new(), *h_ln = hist_new();
	struct hist *h_wo = hist_new(), *h_wi = hist_new();
	struct hist *h_lo = hist_new(), *h_li = hist_new();
	struct phase alone = { 0 }, inbusy = { 0 };
	struct toggler mtg, ltg;
	struct mix_engine_stats a, b;
	struct mix_engine *e;
	struct busy bg;
	struct mixdb m;
	struct ldb l;

	printf("# busy: %u readers on %u CPUs\n", nread, ncpu);
	mixdb_open(&m, "busy10k");
	mixdb_fill(&m, 10000, 1000);
	ldb_open(&l, "busy10k");
	ldb_fill(&l, 10000, 1000);
	ldb_set_sync(&l, LDB_NOSYNC);
	toggler_init(&mtg, 10000, 1, 0, 1);
	toggler_init(&ltg, 10000, 1, 0, 0);
	e = engine_new();
	mixdb_move(&m, e);
	mix_engine_stats(e, &a);
	for (i = 0; i < runs1; i++) {
		busy_start(&bg, R_MIX_SECTION, &m, NULL, nread);
		mn[i] = mix_commit_rate(&m, &mtg, MIX_DURABILITY_NONE, s1,
					h_mn);
		busy_stop(&bg);
		busy_start(&bg, R_LMDB, NULL, &l, nread);
		ln[i] = ldb_commit_rate(&l, &ltg, s1, h_ln);
		busy_stop(&bg);
	}
	mix_engine_stats(e, &b);
	mnm = st_median(mn, runs1);
	lnm = st_median(ln, runs1);
	figure("commits/s", mnm, "busy_commit_1thr_mix_none");
	figure("commits/s", lnm, "busy_commit_1thr_lmdb_nosync");
	figure("ratio", ratio(mnm, lnm), "busy_commit_1thr_mix_over_lmdb");
	figure("us", (double)hist_pct(h_mn, 99) / 1e3,
	       "busy_commit_1thr_mix_none_p99");
	figure("us", (double)hist_pct(h_ln, 99) / 1e3,
	       "busy_commit_1thr_lmdb_nosync_p99");
	role_figures("busy_commit_1thr", &a, &b);
	target_set(3, ratio(mnm, lnm));

	/* (2) 16 SYNC committers; each phase's batches and fdatasyncs are
	 * counted apart, so the loss beside the readers splits into the
	 * fdatasyncs the disk path still completes and how full the
	 * committers, woken onto busy CPUs, keep each batch */
	mix_engine_stats(e, &a);
	for (i = 0; i < runs16; i++) {
		uint64_t c0 = process_cpu_ns(), t0 = st_now_ns();
		struct mix_engine_stats p0, p1;
		mix_engine_stats(e, &p0);
		wo[i] = multi_commit(&m, NULL, 16, s16, h_wo);
		cpus[i] = (double)(process_cpu_ns() - c0) /
			  (double)(st_now_ns() - t0);
		mix_engine_stats(e, &p1);
		phase_add(&alone, &p0, &p1, st_secs_since(t0));
		busy_start(&bg, R_MIX_SECTION, &m, NULL, nread);
		t0 = st_now_ns();
		mix_engine_stats(e, &p0);
		wi[i] = multi_commit(&m, NULL, 16, s16, h_wi);
		mix_engine_stats(e, &p1);
		phase_add(&inbusy, &p0, &p1, st_secs_since(t0));
		busy_stop(&bg);
	}
	mix_engine_stats(e, &b);
	/* the same 16 committers on LMDB with its default fsync at commit,
	 * beside LMDB readers: how much the reference engine keeps */
	ldb_set_sync(&l, LDB_SYNC);
	for (i = 0; i < runs16; i++) {
		lo[i] = multi_commit(NULL, &l, 16, s16, h_lo);
		busy_start(&bg, R_LMDB, NULL, &l, nread);
		li[i] = multi_commit(NULL, &l, 16, s16, h_li);
		busy_stop(&bg);
	}
	ldb_close(&l);
	/* what the disk path itself does beside the readers: one thread's
	 * 64-byte append + fdatasync loop, alone and busy */
	for (i = 0; i < runs16; i++) {
		rawo[i] = st_fdatasync_rate(g_dir, s16 / 2);
		busy_start(&bg, R_MIX_SECTION, &m, NULL, nread);
		rawi[i] = st_fdatasync_rate(g_dir, s16 / 2);
		busy_stop(&bg);
	}
	figure("syncs/s", st_median(rawo, runs16), "busy_fdatasync_raw_alone");
	figure("syncs/s", st_median(rawi, runs16), "busy_fdatasync_raw_busy");
	mixdb_close(&m);
	fail_ret(mix_engine_free(&e), "mix_engine_free");
	role_figures("busy_commit_16thr", &a, &b);
	ratio16 = alone_busy_figures("mix", "", wo, wi, runs16, h_wo, h_wi);
	/* how much CPU the committers need alone: with 2 spinning readers
	 * per CPU taking their fair share, more than about a third of the
	 * machine cannot be had */
	figure("CPUs", st_median(cpus, runs16), "busy_commit_16thr_alone_cpus");
	phase_print(&alone, "busy_commit_16thr_alone");
	phase_print(&inbusy, "busy_commit_16thr_busy");
	(void)alone_busy_figures("lmdb", "lmdb_", lo, li, runs16, h_lo, h_li);
	target_set(4, ratio16);
	free(h_mn);
	free(h_ln);
	free(h_wo);
	free(h_wi);
	free(h_lo);
	free(h_li);
}

/* ---- (d) lookups -------------------------------------------------------- */

static void bench_lookup_one(struct mixdb *m, struct ldb *l)
{
	unsigned runs = g_quick ? 3 : 5, i, nthr;
	double secs = g_quick ? 0.1 : 0.3;
	double mns[5], lns[5], mtot[5], ltot[5];
	char sz[16];

	st_size_name(m->messages, sz, sizeof(sz));
	for (nthr = 1; nthr <= 2; nthr++) {
		double mt, lt;
		for (i = 0; i < runs; i++) {
			struct read_result a, b;
			a = read_run(R_MIX_SECTION, m, NULL, nthr, 0, secs);
			b = read_run(R_LMDB, NULL, l, nthr, 0, secs);
			mns[i] = a.ns;
			mtot[i] = a.total;
			lns[i] = b.ns;
			ltot[i] = b.total;
		}
		figure("ns/lookup", st_median(mns, runs),
		       "lookup_uid_%s_%uthr_mix", sz, nthr);
		figure("ns/lookup", st_median(lns, runs),
		       "lookup_uid_%s_%uthr_lmdb", sz, nthr);
		figure("lookups/s", mt = st_median(mtot, runs),
		       "lookup_uid_%s_%uthr_mix_total", sz, nthr);
		figure("lookups/s", lt = st_median(ltot, runs),
		       "lookup_uid_%s_%uthr_lmdb_total", sz, nthr);
		figure("ratio", ratio(mt, lt), "lookup_uid_%s_%uthr_mix_over_lmdb",
		       sz, nthr);
		target_set(0, ratio(mt, lt));
	}
}

/* ---- (e) readers refreshing while a writer commits ---------------------- */

static void bench_refresh(struct mixdb *m, struct ldb *l)
{
	unsigned runs = g_quick ? 1 : 3, i;
	double secs = g_quick ? 0.5 : 1.0;
	double ml[3], ll[3], mw[3], lw[3], mp[3], lp[3], mlm, llm, mwm, lwm;
	char sz[16];

	st_size_name(m->messages, sz, sizeof(sz));
	ldb_set_sync(l, LDB_NOSYNC);
	for (i = 0; i < runs; i++) {
		struct read_result a, b;
		a = read_run(R_MIX_VIEW, m, NULL, 2, 1, secs);
		b = read_run(R_LMDB, NULL, l, 2, 1, secs);
		ml[i] = a.total;
		mw[i] = a.writer;
		mp[i] = a.moved_pct;
		ll[i] = b.total;
		lw[i] = b.writer;
		lp[i] = b.moved_pct;
	}
	mlm = st_median(ml, runs);
	llm = st_median(ll, runs);
	mwm = st_median(mw, runs);
	lwm = st_median(lw, runs);
	figure("lookups/s", mlm, "refresh_%s_2rd_mix_lookups", sz);
	figure("lookups/s", llm, "refresh_%s_2rd_lmdb_lookups", sz);
	figure("ratio", ratio(mlm, llm),
	       "refresh_%s_2rd_lookups_mix_over_lmdb", sz);
	figure("commits/s", mwm, "refresh_%s_2rd_mix_writer", sz);
	figure("commits/s", lwm, "refresh_%s_2rd_lmdb_writer", sz);
	figure("ratio", ratio(mwm, lwm),
	       "refresh_%s_2rd_writer_mix_over_lmdb", sz);
	figure("%", st_median(mp, runs), "refresh_%s_2rd_mix_moved", sz);
	figure("%", st_median(lp, runs), "refresh_%s_2rd_lmdb_moved", sz);
}

/* ---- scaling ------------------------------------------------------------ */

static void bench_scale(struct mixdb *m, struct ldb *l)
{
	static const unsigned threads[] = { 1, 2, 4, 8, 16, 64 };
	unsigned runs = g_quick ? 1 : 3, i, t;
	double secs = g_quick ? 0.2 : 0.5;
	char sz[16];

	st_size_name(m->messages, sz, sizeof(sz));
	ldb_set_sync(l, LDB_NOSYNC);
	printf("# scale: %s messages, one writer (NONE / NOSYNC flag changes), "
	       "median of %u runs of %.1f s per point\n", sz, runs, secs);
	for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
		double v[2][5][3];
		static const char *const side[2] = { "mix", "lmdb" };
		unsigned s;
		for (i = 0; i < runs; i++) {
			struct read_result a[2];
			a[0] = read_run(R_MIX_SECTION, m, NULL, threads[t], 1,
					secs);
			a[1] = read_run(R_LMDB, NULL, l, threads[t], 1, secs);
			for (s = 0; s < 2; s++) {
				v[s][0][i] = a[s].total;
				v[s][1][i] = a[s].per_thread;
				v[s][2][i] = a[s].cpu_ns;
				v[s][3][i] = a[s].writer;
				v[s][4][i] = a[s].min_share;
			}
		}
		for (s = 0; s < 2; s++) {
			figure("lookups/s", st_median(v[s][0], runs),
			       "scale_%s_%uthr_%s_total", sz, threads[t],
			       side[s]);
			figure("lookups/s", st_median(v[s][1], runs),
			       "scale_%s_%uthr_%s_per_thread", sz, threads[t],
			       side[s]);
			figure("ns/lookup", st_median(v[s][2], runs),
			       "scale_%s_%uthr_%s_cpu_ns", sz, threads[t],
			       side[s]);
			figure("commits/s", st_median(v[s][3], runs),
			       "scale_%s_%uthr_%s_writer", sz, threads[t],
			       side[s]);
			figure("ratio", st_median(v[s][4], runs),
			       "scale_%s_%uthr_%s_min_share", sz, threads[t],
			       side[s]);
		}
	}
}

/* ---- callgrind loops ---------------------------------------------------- */

/* n random lookups in sections of 1,000, as bench_lookup's readers do.
 * tools/callgrind-lookup.sh counts the instructions under these. */
BENCH_MEASURED uint64_t cg_mix_lookups(struct mixdb *m, uint64_t n,
				       uint64_t *rng);
BENCH_MEASURED uint64_t cg_mix_lookups(struct mixdb *m, uint64_t n,
				       uint64_t *rng)
{
	uint64_t sink = 0, done;
	for (done = 0; done < n; done += LOOKUPS_PER_SECTION) {
		mix_read_lock();
		mix_lookup_batch(mix_index_snap(m->idx), m->messages, rng,
				 &sink);
		mix_read_unlock();
	}
	return sink;
}

BENCH_MEASURED uint64_t cg_lmdb_lookups(struct ldb *l, MDB_txn *txn,
					uint64_t n, uint64_t *rng);
BENCH_MEASURED uint64_t cg_lmdb_lookups(struct ldb *l, MDB_txn *txn,
					uint64_t n, uint64_t *rng)
{
	uint64_t sink = 0, done;
	for (done = 0; done < n; done += LOOKUPS_PER_SECTION) {
		mdb_ok(mdb_txn_renew(txn), "mdb_txn_renew");
		ldb_lookup_batch(l, txn, l->messages, rng, &sink);
		mdb_txn_reset(txn);
	}
	return sink;
}

static void bench_callgrind(uint64_t lookups)
{
	uint64_t rng = st_seed_derive(g_seed, 7), a, b;
	struct mixdb m;
	struct ldb l;
	MDB_txn *txn;

	mixdb_open(&m, "cg");
	mixdb_fill(&m, 100000, 1000);
	ldb_open(&l, "cg");
	ldb_fill(&l, 100000, 1000);
	mdb_ok(mdb_txn_begin(l.env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
	mdb_txn_reset(txn);
	a = cg_mix_lookups(&m, lookups, &rng);
	b = cg_lmdb_lookups(&l, txn, lookups, &rng);
	mdb_txn_abort(txn);
	printf("# callgrind: %" PRIu64 " lookups per side on 100k messages "
	       "(sinks %" PRIu64 " %" PRIu64 ")\n", lookups, a, b);
	mixdb_close(&m);
	ldb_close(&l);
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out, "usage: bench-lmdb --dir DIR [--quick] [--seed N] "
		"[--only calib|append|commit|commit16|lookup|refresh|scale|"
		"callgrind] [--lookups N] [--reader-nice 0..19]\n");
}

static void print_targets(void)
{
	size_t i;
	printf("# targets (ratios of figures measured in this run)\n");
	for (i = 0; i < sizeof(g_targets) / sizeof(g_targets[0]); i++) {
		const struct target *t = &g_targets[i];
		if (!t->measured)
			continue;
		printf("# target: %s >= %gx: %.2fx, %s\n", t->what, t->goal,
		       t->got, t->got >= t->goal ? "met" : "NOT met");
		figure("bool", t->got >= t->goal, "target_%zu_met", i);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "quick", no_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 'S' },
		{ "lookups", required_argument, NULL, 'L' },
		{ "reader-nice", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "calib", "append", "commit",
		"commit16", "busy", "lookup", "refresh", "scale",
		"callgrind" };
	const char *seed = NULL;
	uint64_t t0 = st_now_ns(), cg_lookups = 100000;
	size_t i;
	int ch, known = 0;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': g_dir = optarg; break;
		case 'q': g_quick = 1; break;
		case 'o': g_only = optarg; break;
		case 'S': seed = optarg; break;
		case 'L':
			cg_lookups = st_opt_u64("lookups", optarg, 1000,
						1000000000);
			cg_lookups -= cg_lookups % LOOKUPS_PER_SECTION;
			break;
		case 'N':
			g_reader_nice = (int)st_opt_u64("reader-nice", optarg,
							0, 19);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
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
	printf("# bench-lmdb: dir %s%s seed %" PRIu64 " lmdb %s\n", g_dir,
	       g_quick ? " quick" : "", g_seed,
	       mdb_version(NULL, NULL, NULL));
	st_mkdir(g_dir);
	fail_ret(mix_engine_create(NULL, &g_engine), "mix_engine_create");

	if (want("callgrind"))
		bench_callgrind(cg_lookups);
	if (want("calib"))
		bench_calib();
	if (want("append"))
		bench_append();
	if (want("commit"))
		bench_commit();
	if (want("commit16"))
		bench_commit16();
	if (want("busy"))
		bench_busy();
	if (want("lookup") || want("refresh") || want("scale")) {
		uint32_t big = g_quick ? 100000 : 1000000;
		struct mixdb m1, m2;
		struct ldb l1, l2;
		uint64_t tf;

		tf = st_now_ns();
		mixdb_open(&m1, "100k");
		mixdb_fill(&m1, 100000, 1000);
		ldb_open(&l1, "100k");
		ldb_fill(&l1, 100000, 1000);
		if (big != 100000) {
			mixdb_open(&m2, "1m");
			mixdb_fill(&m2, big, 1000);
			ldb_open(&l2, "1m");
			ldb_fill(&l2, big, 1000);
		}
		printf("# filled the lookup data sets in %.2f s\n",
		       st_secs_since(tf));
		if (want("lookup")) {
			bench_lookup_one(&m1, &l1);
			if (big != 100000)
				bench_lookup_one(&m2, &l2);
		}
		if (want("refresh"))
			bench_refresh(&m1, &l1);
		if (want("scale")) {
			if (big != 100000)
				bench_scale(&m2, &l2);
			else
				bench_scale(&m1, &l1);
		}
		if (big != 100000) {
			mixdb_close(&m2);
			ldb_close(&l2);
		}
		mixdb_close(&m1);
		ldb_close(&l1);
	}
	print_targets();
	fail_ret(mix_engine_free(&g_engine), "mix_engine_free");
	printf("# bench-lmdb: %.1f s\n", st_secs_since(t0));
	return 0;
}
