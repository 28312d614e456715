/*
 * bench-virtual: figures of virtual mailboxes (issue 12, docs/virtual.md,
 * docs/benchmarks.md "Virtual mailboxes"), printed as `name value unit`:
 *
 *   - full build: the first sync of a virtual mailbox (rule ALL) over 3
 *     backends of --messages each, and of --small each;
 *   - incremental sync after 10 flag changes spread over the 3 backends:
 *     records examined and time (median of --rounds), at both sizes, and
 *     their ratio (issue 12: at most 2x);
 *   - forward lookup (virtual UID -> backend record) ns, random UIDs, at
 *     3 x --messages virtual messages; reverse lookup ns, one and 1,000
 *     real UIDs in one call (mix_virtual_lookup_real_many);
 *   - readers' forward lookups/s while the main thread commits 10 changes
 *     and syncs in a loop for --seconds.
 *
 * Thread: main, plus --readers reader threads in the last part.  Uses
 * only the public API.  Options: --dir D (required), --messages N
 * (100000), --small N (10000), --rounds N (21), --seconds S (2),
 * --readers N (2), --seed X.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include "mix/mix.h"
#include "mix/virtual.h"
#include "stress.h"

#define NB 3

static struct {
	const char *dir;
	uint32_t messages, small, rounds, readers;
	double seconds;
	uint64_t seed;
} opt = { NULL, 100000, 10000, 21, 2, 2.0, 0 };

static struct mix_engine *engine;
static uint64_t rng;

struct setup {
	struct mix_index *bk[NB];
	struct mix_virtual *v;
	uint32_t id[NB];
	uint32_t n;
};

static void fill(struct mix_index *idx, uint32_t n, uint32_t uv)
{
	struct mix_txn *txn;
	uint32_t i;

	if (mix_txn_begin(idx, &txn) != 0 ||
	    mix_txn_hdr_set(txn, MIX_HDR_UID_VALIDITY, uv) != 0)
		st_die("fill: %s", mix_last_error());
	for (i = 0; i < n; i++)
		if (mix_txn_append(txn, st_chance(&rng, 50) ? MIX_FLAG_SEEN : 0,
				   NULL, NULL) != 0)
			st_die("fill: %s", mix_last_error());
	if (mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL) != 0)
		st_die("fill commit: %s", mix_last_error());
}

/* 3 backends of n messages and a virtual mailbox over them; the full
 * build is timed. */
static void setup_open(struct setup *s, uint32_t n, const char *tag)
{
	static const char *names[NB] = { "INBOX", "Work", "Lists" };
	struct mix_virtual_backend b[NB];
	struct mix_virtual_def def;
	struct mix_virtual_sync_result res;
	char sub[64], *d;
	uint64_t t0;
	int k;

	s->n = n;
	for (k = 0; k < NB; k++) {
		snprintf(sub, sizeof(sub), "%s-b%d", tag, k);
		d = st_subdir(opt.dir, sub);
		st_mkdir(d);
		if (mix_index_open(engine, d, MIX_OPEN_CREATE, &s->bk[k]) != 0)
			st_die("open %s: %s", d, mix_last_error());
		free(d);
		fill(s->bk[k], n, 100u + (uint32_t)k);
		b[k].name = names[k];
		b[k].index = s->bk[k];
	}
	memset(&def, 0, sizeof(def));
	def.backends = b;
	def.backend_count = NB;
	def.rule = "ALL";
	snprintf(sub, sizeof(sub), "%s-virtual", tag);
	d = st_subdir(opt.dir, sub);
	st_mkdir(d);
	if (mix_virtual_open(engine, d, &def, &s->v) != 0)
		st_die("virtual %s: %s", d, mix_last_error());
	free(d);
	t0 = st_now_ns();
	if (mix_virtual_sync(s->v, MIX_VIRTUAL_SYNC_EXPUNGE, &res) != 0)
		st_die("full build: %s", mix_last_error());
	printf("virtual_full_build_%s %.2f ms\n", tag,
	       (double)(st_now_ns() - t0) / 1e6);
	printf("virtual_full_build_%s_examined %" PRIu64 " records\n", tag,
	       res.examined);
	for (k = 0; k < NB; k++)
		if (!mix_virtual_mailbox_id(s->v, names[k], &s->id[k]))
			st_die("no mailbox id");
}

static void setup_close(struct setup *s)
{
	int k;

	mix_virtual_close(&s->v);
	for (k = 0; k < NB; k++)
		mix_index_close(&s->bk[k]);
}

/* 10 flag changes spread over the backends (4, 3, 3), one transaction
 * per backend: \Flagged added to random messages, then removed from the
 * same ones at the next call, so every change is a change. */
static uint32_t prev_uid[NB][4];
static int prev_set;

static void ten_changes(struct setup *s)
{
	int k, i;

	for (k = 0; k < NB; k++) {
		struct mix_txn *txn;
		int n = k == 0 ? 4 : 3;
		if (mix_txn_begin(s->bk[k], &txn) != 0)
			st_die("txn: %s", mix_last_error());
		for (i = 0; i < n; i++) {
			uint32_t u = prev_set ? prev_uid[k][i] :
				     st_rand_range(&rng, 1, s->n);
			struct mix_uid_range r = { u, u };
			prev_uid[k][i] = u;
			if (mix_txn_flags(txn, &r, 1, prev_set ?
					  MIX_MODIFY_REMOVE : MIX_MODIFY_ADD,
					  MIX_FLAG_FLAGGED) != 0)
				st_die("flags: %s", mix_last_error());
		}
		if (mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL) != 0)
			st_die("commit: %s", mix_last_error());
	}
	prev_set = !prev_set;
}

/* Median sync time after 10 changes; returns it in ns. */
static double incremental(struct setup *s, const char *tag)
{
	struct mix_virtual_sync_result res;
	double *t = calloc(opt.rounds, sizeof(*t));
	uint64_t examined = 0, t0;
	double med;
	uint32_t r;

	/* warm-up, untimed: the first sync after the build loads caches */
	ten_changes(s);
	if (mix_virtual_sync(s->v, MIX_VIRTUAL_SYNC_EXPUNGE, &res) != 0)
		st_die("sync: %s", mix_last_error());
	for (r = 0; r < opt.rounds; r++) {
		ten_changes(s);
		t0 = st_now_ns();
		if (mix_virtual_sync(s->v, MIX_VIRTUAL_SYNC_EXPUNGE, &res) != 0)
			st_die("sync: %s", mix_last_error());
		t[r] = (double)(st_now_ns() - t0);
		examined += res.examined;
	}
	med = st_median(t, opt.rounds);
	printf("virtual_sync_10_changes_%s %.1f us\n", tag, med / 1e3);
	printf("virtual_sync_10_changes_%s_examined %.1f records\n", tag,
	       (double)examined / opt.rounds);
	free(t);
	return med;
}

static void lookups(struct setup *s)
{
	const struct mix_snap *vs;
	uint32_t count, next, i, mb, ruid, vuid, found = 0, nrev = 200;
	uint64_t t0, iters = 1000000, sink = 0;

	mix_read_lock();
	vs = mix_index_snap(mix_virtual_index(s->v));
	count = mix_snap_messages_count(vs);
	next = mix_snap_next_uid(vs);
	t0 = st_now_ns();
	for (i = 0; i < iters; i++) {
		uint32_t u = st_rand_range(&rng, 1, next - 1);
		if (mix_virtual_lookup(vs, u, &mb, &ruid)) {
			found++;
			sink += ruid;
		}
	}
	printf("virtual_lookup_forward_%u %.1f ns\n", count,
	       (double)(st_now_ns() - t0) / (double)iters);
	/* the same loop with only the engine's UID lookup, for what the
	 * vmap part costs on top */
	t0 = st_now_ns();
	for (i = 0; i < iters; i++) {
		struct mix_record rec;
		if (mix_snap_lookup_uid(vs, st_rand_range(&rng, 1, next - 1),
					&rec))
			sink += rec.uid;
	}
	printf("virtual_lookup_uid_only_%u %.1f ns\n", count,
	       (double)(st_now_ns() - t0) / (double)iters);
	t0 = st_now_ns();
	for (i = 0; i < nrev; i++) {
		uint32_t k = st_rand_below(&rng, NB);
		if (mix_virtual_lookup_real(vs, s->id[k],
					    st_rand_range(&rng, 1, s->n),
					    &vuid))
			sink += vuid;
	}
	printf("virtual_lookup_reverse_%u %.0f ns\n", count,
	       (double)(st_now_ns() - t0) / nrev);
	{
		/* 1,000 real UIDs of one backend in one scan */
		uint32_t u[1000], got[1000], j;
		int f;
		for (j = 0; j < 1000; j++)
			u[j] = st_rand_range(&rng, 1, s->n);
		t0 = st_now_ns();
		f = mix_virtual_lookup_real_many(vs, s->id[1], u, 1000, got);
		printf("virtual_lookup_reverse_many_1000_%u %.0f ns\n", count,
		       (double)(st_now_ns() - t0));
		if (f <= 0)
			st_die("lookup_real_many found nothing");
	}
	mix_read_unlock();
	if (found == 0 || sink == 0)
		st_die("lookups found nothing");
}

static atomic_int g_stop;
static struct mix_virtual *g_v;

static void *reader(void *arg)
{
	uint64_t r = st_seed_derive(opt.seed, (uintptr_t)arg), n = 0;
	uint32_t mb, ruid, i;

	while (!atomic_load(&g_stop)) {
		const struct mix_snap *vs;
		mix_read_lock();
		vs = mix_index_snap(mix_virtual_index(g_v));
		for (i = 0; i < 1000; i++)
			n += mix_virtual_lookup(vs, st_rand_range(&r, 1,
					mix_snap_next_uid(vs) - 1), &mb, &ruid)
			     ? 1 : 0;
		mix_read_unlock();
	}
	return (void *)(uintptr_t)n;
}

static void during_syncs(struct setup *s)
{
	pthread_t *t = calloc(opt.readers, sizeof(*t));
	uint64_t start, total = 0, syncs = 0;
	unsigned i;
	double secs;

	g_v = s->v;
	atomic_store(&g_stop, 0);
	for (i = 0; i < opt.readers; i++)
		pthread_create(&t[i], NULL, reader, (void *)(uintptr_t)i);
	start = st_now_ns();
	while (st_secs_since(start) < opt.seconds) {
		ten_changes(s);
		if (mix_virtual_sync(s->v, MIX_VIRTUAL_SYNC_EXPUNGE, NULL) != 0)
			st_die("sync: %s", mix_last_error());
		syncs++;
	}
	atomic_store(&g_stop, 1);
	for (i = 0; i < opt.readers; i++) {
		void *n;
		pthread_join(t[i], &n);
		total += (uintptr_t)n;
	}
	secs = st_secs_since(start);
	printf("virtual_readers_lookups_during_syncs %.0f lookups/s\n",
	       (double)total / secs);
	printf("virtual_syncs_during_readers %.0f syncs/s\n",
	       (double)syncs / secs);
	free(t);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", 1, NULL, 'd' }, { "messages", 1, NULL, 'm' },
		{ "small", 1, NULL, 's' }, { "rounds", 1, NULL, 'r' },
		{ "seconds", 1, NULL, 'S' }, { "readers", 1, NULL, 'R' },
		{ "seed", 1, NULL, 'x' }, { NULL, 0, NULL, 0 },
	};
	const char *seed = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': opt.dir = optarg; break;
		case 'm': opt.messages = (uint32_t)st_opt_u64("messages",
					optarg, 100, 10000000); break;
		case 's': opt.small = (uint32_t)st_opt_u64("small", optarg,
					100, 10000000); break;
		case 'r': opt.rounds = (uint32_t)st_opt_u64("rounds", optarg,
					1, 100000); break;
		case 'S': opt.seconds = st_opt_secs("seconds", optarg, 0,
						    3600); break;
		case 'R': opt.readers = (uint32_t)st_opt_u64("readers", optarg,
					0, 256); break;
		case 'x': seed = optarg; break;
		default: st_die("usage: bench-virtual --dir D [--messages N] "
				"[--small N] [--rounds N] [--seconds S] "
				"[--readers N] [--seed X]");
		}
	}
	if (opt.dir == NULL)
		st_die("bench-virtual: --dir is required");
	opt.seed = st_seed_pick(seed);
	rng = opt.seed;
}

int main(int argc, char **argv)
{
	struct setup big, small;
	double tb, ts;
	char tag[32];

	parse(argc, argv);
	printf("# seed %" PRIu64 "\n", opt.seed);
	st_mkdir(opt.dir);
	if (mix_engine_create(NULL, &engine) != 0)
		st_die("engine: %s", mix_last_error());
	snprintf(tag, sizeof(tag), "%ux3", opt.small);
	setup_open(&small, opt.small, tag);
	ts = incremental(&small, tag);
	setup_close(&small);
	snprintf(tag, sizeof(tag), "%ux3", opt.messages);
	setup_open(&big, opt.messages, tag);
	tb = incremental(&big, tag);
	printf("virtual_sync_10_changes_ratio %.2f x\n", tb / ts);
	lookups(&big);
	during_syncs(&big);
	setup_close(&big);
	mix_engine_free(&engine);
	return 0;
}
