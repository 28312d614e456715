/*
 * stall — one read-side section held for a long time while committers
 * run on several mailboxes and writer threads (issue 11 item 1;
 * docs/design.md "Reclamation", "Coalescing" in engine/index-commit.c).
 *
 * A held section stops every grace period of the process, so no replaced
 * snapshot can be freed while it lasts.  The writer must not wait for it:
 * every mailbox keeps committing (its publishes spaced once the backlog
 * is large, so memory grows by the documented bound), the stall is
 * reported once (read_stall callback with the holder's thread id, the
 * read_stalls counter), the snapshot the holder reads stays intact, and
 * once the section ends everything waiting is freed.
 *
 * Phases: fill; 1 s of commits (the baseline rate); the section held for
 * --hold seconds with commits going on; 1 s more; stop; wait for the
 * frees.  Prints `name value unit` figures and exits 1 with a VIOLATION
 * line on the first broken rule, 0 otherwise.  `make stress` runs it
 * with the defaults (a 10 s section, 8 committers on 4 mailboxes of 2
 * writer threads); tests/run-stall.sh runs a short one under make check.
 *
 * Rules checked: each mailbox acknowledged commits during the section,
 * and no mailbox went longer than --max-gap seconds (default 2) without
 * an acknowledgement then; the stall callback came once for the section,
 * naming the holder's tid; read_stalls counted it; batches were held;
 * the held snapshot read the same before and after; after the section,
 * snapshot heap bytes fell back below half of their peak (or to the
 * baseline).
 *
 * Closes during the section: one more thread cycles a mailbox of its own
 * (open, a burst of asynchronous appends, some of them held back by the
 * coalescing, close at once, reopen and count) while the section is
 * held.  Every append acknowledged as committed must be there after the
 * reopen, every callback must have come by the time close returned, and
 * closes must complete while the section is still held (a close never
 * waits for readers: docs/design.md "Coalescing").
 */
#include <inttypes.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mix/mix.h"
#include "stress.h"

#define MAX_MB 64
#define MAX_COMMITTERS 256

static const char *g_dir;
static double g_hold = 10, g_max_gap = 2;
static unsigned g_mailboxes = 4, g_committers = 8, g_writers = 2;
static uint32_t g_messages = 1000;
static uint64_t g_seed;

static struct mix_index *g_mb[MAX_MB];
static atomic_int g_stop;
/* the section: [hold_start, hold_end) in st_now_ns; 0 while not set */
static _Atomic uint64_t g_hold_start, g_hold_end;
static atomic_int g_holder_tid;

/* what the stall callback saw */
static atomic_int g_stall_calls, g_stall_named_holder;
static _Atomic uint64_t g_stall_waited_ms;

/* the close/reopen cycler */
#define CYCLE_BURST 600
static atomic_uint g_cyc_acked, g_cyc_failed, g_cyc_done;
static uint64_t g_cyc_cycles, g_cyc_in_hold, g_cyc_close_max_ns;

struct committer {
	pthread_t thread;
	unsigned mb;
	uint64_t rng;
	uint64_t commits, in_hold, last_ack, max_gap_ns;
	char pad[64];
};

static void violation(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static void violation(const char *fmt, ...)
{
	va_list ap;
	printf("VIOLATION ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (seed %" PRIu64 ")\n", g_seed);
	fflush(stdout);
	exit(1);
}

static void on_stall(void *ctx, const struct mix_read_stall *st)
{
	unsigned i;
	(void)ctx;
	atomic_fetch_add(&g_stall_calls, 1);
	g_stall_waited_ms = st->waited_ms;
	for (i = 0; i < st->readers && i < 8; i++)
		if (st->tids[i] == atomic_load(&g_holder_tid))
			atomic_store(&g_stall_named_holder, 1);
}

static void ok_or_die(int ret, const char *what)
{
	if (ret < 0)
		st_die("stall: %s: %s (%s)", what, mix_strerror(ret),
		       mix_last_error());
}

static void *committer_main(void *arg)
{
	struct committer *c = arg;
	struct mix_index *idx = g_mb[c->mb];
	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		uint32_t uid = 1 + st_rand_below(&c->rng, g_messages);
		struct mix_uid_range r = { uid, uid };
		struct mix_txn *t;
		uint64_t now, hs, he;
		ok_or_die(mix_txn_begin(idx, &t), "mix_txn_begin");
		ok_or_die(mix_txn_flags(t, &r, 1, st_chance(&c->rng, 50) ?
					MIX_MODIFY_ADD : MIX_MODIFY_REMOVE,
					MIX_FLAG_SEEN), "mix_txn_flags");
		ok_or_die(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL),
			  "mix_txn_commit");
		now = st_now_ns();
		__atomic_add_fetch(&c->commits, 1, __ATOMIC_RELAXED);
		hs = atomic_load(&g_hold_start);
		he = atomic_load(&g_hold_end);
		if (hs && now >= hs && (!he || now < he)) {
			uint64_t from = c->last_ack > hs ? c->last_ack : hs;
			if (now - from > c->max_gap_ns)
				c->max_gap_ns = now - from;
			c->in_hold++;
		}
		c->last_ack = now;
	}
	return NULL;
}

/* The section: hold the first mailbox's snapshot for g_hold seconds and
 * check it still reads the same. */
static void *holder_main(void *arg)
{
	const struct mix_snap *s;
	struct mix_snap_counts c0, c1;
	uint64_t m0, m1;
	(void)arg;
	atomic_store(&g_holder_tid, (int)syscall(SYS_gettid));
	mix_read_lock();
	s = mix_index_snap(g_mb[0]);
	mix_snap_counts(s, &c0);
	m0 = mix_snap_highest_modseq(s);
	atomic_store(&g_hold_start, st_now_ns());
	while (st_secs_since(atomic_load(&g_hold_start)) < g_hold)
		usleep(10000);
	mix_snap_counts(s, &c1);
	m1 = mix_snap_highest_modseq(s);
	mix_read_unlock();
	atomic_store(&g_hold_end, st_now_ns());
	if (c0.seen != c1.seen || m0 != m1)
		violation("the held snapshot changed: %u seen, highest modseq "
			  "%" PRIu64 ", then %u, %" PRIu64, c0.seen, m0,
			  c1.seen, m1);
	return NULL;
}

static void cyc_done(void *ctx, int ret, const struct mix_commit_result *res)
{
	(void)ctx;
	(void)res;
	atomic_fetch_add(ret == 0 ? &g_cyc_acked : &g_cyc_failed, 1);
	atomic_fetch_add(&g_cyc_done, 1);
}

static uint32_t messages_of(struct mix_index *idx)
{
	uint32_t n;
	mix_read_lock();
	n = mix_snap_messages_count(mix_index_snap(idx));
	mix_read_unlock();
	return n;
}

/* Open, append CYCLE_BURST messages asynchronously, close at once (the
 * close completes what is queued or held), reopen: every acknowledged
 * append is there. */
static void cycle_once(struct mix_engine *e, const char *dir)
{
	struct mix_index *idx;
	uint32_t before, after, i;
	uint64_t t0, t1, hs, he;

	atomic_store(&g_cyc_acked, 0);
	atomic_store(&g_cyc_failed, 0);
	atomic_store(&g_cyc_done, 0);
	ok_or_die(mix_index_open(e, dir, MIX_OPEN_CREATE, &idx), "cycle open");
	before = messages_of(idx);
	for (i = 0; i < CYCLE_BURST; i++) {
		struct mix_txn *t;
		ok_or_die(mix_txn_begin(idx, &t), "cycle begin");
		ok_or_die(mix_txn_append(t, 0, NULL, NULL), "cycle append");
		ok_or_die(mix_txn_commit_async(&t, MIX_DURABILITY_NONE,
					       cyc_done, NULL), "cycle commit");
	}
	t0 = st_now_ns();
	ok_or_die(mix_index_close(&idx), "cycle close");
	t1 = st_now_ns();
	if (t1 - t0 > g_cyc_close_max_ns)
		g_cyc_close_max_ns = t1 - t0;
	hs = atomic_load(&g_hold_start);
	he = atomic_load(&g_hold_end);
	if (hs && t0 >= hs && !he)
		g_cyc_in_hold++;   /* began and ended inside the section */
	if (atomic_load(&g_cyc_done) != CYCLE_BURST)
		violation("close returned with %u of %u asynchronous commits "
			  "not called back", CYCLE_BURST -
			  atomic_load(&g_cyc_done), CYCLE_BURST);
	ok_or_die(mix_index_open(e, dir, 0, &idx), "cycle reopen");
	after = messages_of(idx);
	ok_or_die(mix_index_close(&idx), "cycle close after reopen");
	if (after != before + atomic_load(&g_cyc_acked))
		violation("after close and reopen: %u messages, expected %u "
			  "(%u before, %u appends acknowledged, %u failed)",
			  after, before + atomic_load(&g_cyc_acked), before,
			  atomic_load(&g_cyc_acked),
			  atomic_load(&g_cyc_failed));
	g_cyc_cycles++;
}

struct cycler {
	struct mix_engine *e;
	char *dir;
};

static void *cycler_main(void *arg)
{
	struct cycler *c = arg;
	while (!atomic_load(&g_hold_start))
		usleep(1000);
	while (!atomic_load(&g_hold_end) && !atomic_load(&g_stop))
		cycle_once(c->e, c->dir);
	return NULL;
}

static void fill(struct mix_index *idx)
{
	struct mix_txn *t;
	uint32_t i;
	ok_or_die(mix_txn_begin(idx, &t), "mix_txn_begin");
	for (i = 0; i < g_messages; i++)
		ok_or_die(mix_txn_append(t, 0, NULL, NULL), "mix_txn_append");
	ok_or_die(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL), "fill");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: stall --dir DIR [--hold SECS] [--mailboxes N] "
		"[--committers N] [--writers N] [--messages N] [--max-gap "
		"SECS] [--seed N]\n");
}

static void parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "hold", required_argument, NULL, 'H' },
		{ "mailboxes", required_argument, NULL, 'm' },
		{ "committers", required_argument, NULL, 'c' },
		{ "writers", required_argument, NULL, 'w' },
		{ "messages", required_argument, NULL, 'n' },
		{ "max-gap", required_argument, NULL, 'g' },
		{ "seed", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *seed = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': g_dir = optarg; break;
		case 'H': g_hold = st_opt_secs("hold", optarg, 0.1, 3600); break;
		case 'm': g_mailboxes = (unsigned)st_opt_u64("mailboxes",
					optarg, 1, MAX_MB); break;
		case 'c': g_committers = (unsigned)st_opt_u64("committers",
					optarg, 1, MAX_COMMITTERS); break;
		case 'w': g_writers = (unsigned)st_opt_u64("writers", optarg,
							  1, 64); break;
		case 'n': g_messages = (uint32_t)st_opt_u64("messages", optarg,
							   1, 1000000); break;
		case 'g': g_max_gap = st_opt_secs("max-gap", optarg, 0.01,
						  3600); break;
		case 'S': seed = optarg; break;
		default: usage(stderr); exit(2);
		}
	}
	if (!g_dir || optind < argc) {
		usage(stderr);
		exit(2);
	}
	g_seed = st_seed_pick(seed);
}

static uint64_t heap_bytes(struct mix_engine *e)
{
	struct mix_engine_stats st;
	mix_engine_stats(e, &st);
	return st.snapshot_heap_bytes;
}

int main(int argc, char **argv)
{
	struct committer *c;
	struct mix_engine_config cfg;
	struct mix_engine_stats a, b, he;
	struct mix_engine *e;
	pthread_t holder, cyc_thread;
	struct cycler cyc;
	uint64_t base_heap, peak_heap = 0, t0, before = 0, in_hold[MAX_MB];
	uint64_t gap[MAX_MB];
	double hold_secs;
	unsigned i;

	parse(argc, argv);
	printf("# stall: dir %s hold %.1f s, %u committers on %u mailboxes, "
	       "%u writers, seed %" PRIu64 "\n", g_dir, g_hold, g_committers,
	       g_mailboxes, g_writers, g_seed);
	st_mkdir(g_dir);
	mix_engine_config_init(&cfg);
	cfg.writer_threads = g_writers;
	cfg.read_stall_ms = 1000;
	cfg.read_stall = on_stall;
	ok_or_die(mix_engine_create(&cfg, &e), "mix_engine_create");
	for (i = 0; i < g_mailboxes; i++) {
		char name[32];
		char *dir;
		snprintf(name, sizeof(name), "mb%u", i);
		dir = st_subdir(g_dir, name);
		ok_or_die(mix_index_open(e, dir, MIX_OPEN_CREATE, &g_mb[i]),
			  "mix_index_open");
		free(dir);
		fill(g_mb[i]);
	}
	c = calloc(g_committers, sizeof(*c));
	if (!c)
		st_die("out of memory");
	for (i = 0; i < g_committers; i++) {
		c[i].mb = i % g_mailboxes;
		c[i].rng = st_seed_derive(g_seed, i);
		if (pthread_create(&c[i].thread, NULL, committer_main, &c[i]))
			st_die("pthread_create failed");
	}
	sleep(1);
	for (i = 0; i < g_committers; i++)
		before += __atomic_load_n(&c[i].commits, __ATOMIC_RELAXED);
	base_heap = heap_bytes(e);
	mix_engine_stats(e, &a);
	cyc.e = e;
	cyc.dir = st_subdir(g_dir, "cycle");
	if (pthread_create(&holder, NULL, holder_main, NULL) ||
	    pthread_create(&cyc_thread, NULL, cycler_main, &cyc))
		st_die("pthread_create failed");
	while (!atomic_load(&g_hold_end)) {
		uint64_t h = heap_bytes(e);
		if (h > peak_heap)
			peak_heap = h;
		usleep(50000);
	}
	pthread_join(holder, NULL);
	pthread_join(cyc_thread, NULL);
	free(cyc.dir);
	mix_engine_stats(e, &he);
	hold_secs = (double)(g_hold_end - g_hold_start) / 1e9;
	sleep(1);
	atomic_store(&g_stop, 1);
	for (i = 0; i < g_committers; i++)
		pthread_join(c[i].thread, NULL);
	mix_engine_stats(e, &b);

	memset(in_hold, 0, sizeof(in_hold));
	memset(gap, 0, sizeof(gap));
	for (i = 0; i < g_committers; i++) {
		in_hold[c[i].mb] += c[i].in_hold;
		if (c[i].max_gap_ns > gap[c[i].mb])
			gap[c[i].mb] = c[i].max_gap_ns;
	}
	st_figure("stall_commits_per_s_before", (double)before, "commits/s");
	for (i = 0; i < g_mailboxes; i++) {
		char name[64];
		snprintf(name, sizeof(name), "stall_mb%u_commits_per_s_held", i);
		st_figure(name, (double)in_hold[i] / hold_secs, "commits/s");
		snprintf(name, sizeof(name), "stall_mb%u_max_ack_gap_held", i);
		st_figure(name, (double)gap[i] / 1e6, "ms");
	}
	st_figure("stall_batches_held", (double)(b.batches_held -
						 a.batches_held), "batches");
	st_figure("stall_read_stalls", (double)(b.read_stalls -
						a.read_stalls), "stalls");
	st_figure("stall_callback_waited", (double)g_stall_waited_ms, "ms");
	st_figure("stall_close_cycles", (double)g_cyc_cycles, "cycles");
	st_figure("stall_close_cycles_inside_section", (double)g_cyc_in_hold,
		  "cycles");
	st_figure("stall_close_max", (double)g_cyc_close_max_ns / 1e6, "ms");
	st_figure("stall_heap_before", (double)base_heap / 1048576.0, "MiB");
	st_figure("stall_heap_peak", (double)peak_heap / 1048576.0, "MiB");
	st_figure("stall_heap_growth_per_s", (double)(peak_heap > base_heap ?
		  peak_heap - base_heap : 0) / 1048576.0 / hold_secs, "MiB/s");

	for (i = 0; i < g_mailboxes; i++) {
		if (in_hold[i] == 0)
			violation("mailbox %u acknowledged no commit during "
				  "the %.1f s section", i, hold_secs);
		if ((double)gap[i] / 1e9 > g_max_gap)
			violation("mailbox %u went %.3f s without an "
				  "acknowledgement during the section (at "
				  "most %.2f s)", i, (double)gap[i] / 1e9,
				  g_max_gap);
	}
	if (g_hold >= 1.5) {
		if (atomic_load(&g_stall_calls) < 1 ||
		    b.read_stalls - a.read_stalls < 1)
			violation("a %.1f s section with read_stall_ms 1000: "
				  "%d callbacks, %" PRIu64 " read_stalls, "
				  "expected at least 1", hold_secs,
				  atomic_load(&g_stall_calls),
				  b.read_stalls - a.read_stalls);
		if (!atomic_load(&g_stall_named_holder))
			violation("the stall callback did not name the "
				  "holder's thread %d", g_holder_tid);
		if (g_cyc_in_hold == 0)
			violation("no close completed while the %.1f s section "
				  "was held (%" PRIu64 " cycles, the longest "
				  "close %.1f ms): a close waited for readers",
				  hold_secs, g_cyc_cycles,
				  (double)g_cyc_close_max_ns / 1e6);
		if (b.batches_held == a.batches_held)
			violation("no batch was held back during a %.1f s "
				  "section", hold_secs);
	}
	/* the frees: everything that waited for the section */
	t0 = st_now_ns();
	while (heap_bytes(e) > base_heap && heap_bytes(e) > peak_heap / 2) {
		if (st_secs_since(t0) > 60)
			violation("snapshot heap %" PRIu64 " bytes a minute "
				  "after the section (peak %" PRIu64 ", before "
				  "%" PRIu64 ")", heap_bytes(e), peak_heap,
				  base_heap);
		usleep(10000);
	}
	st_figure("stall_heap_after", (double)heap_bytes(e) / 1048576.0,
		  "MiB");
	{
		struct mix_engine_stats f;
		mix_engine_stats(e, &f);
		/* freed since the section began: what waited for it, and
		 * what was published and freed in the second after it */
		st_figure("stall_snapshots_freed_after", (double)
			  (f.snapshots_freed - a.snapshots_freed), "snapshots");
		st_figure("stall_publishes_during_section", (double)
			  (he.batches - a.batches), "publishes");
	}
	for (i = 0; i < g_mailboxes; i++)
		ok_or_die(mix_index_close(&g_mb[i]), "mix_index_close");
	ok_or_die(mix_engine_free(&e), "mix_engine_free");
	free(c);
	printf("# stall: ok\n");
	return 0;
}
