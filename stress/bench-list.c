/*
 * bench-list: figures of the mailbox list index (docs/mailbox-list.md
 * "Figures"), one `name value unit` line each, medians of --runs runs.
 * Only measures (never part of make check).
 *
 * The list: "big" with 1,000 children, "small" with 10, and 90 folders
 * "fNN" with 99 children each: 10,013 entries.  Figures:
 *   lookup by name (random names of the list), LIST "*", LIST "%" at the
 *   top and "small/%", "fNN/%", "big/%" (cost follows the level's
 *   children), STATUS from the records and from an attached mailbox's
 *   live slot, rename of the 1,001-entry subtree (NONE and SYNC), one
 *   create at 10,000 entries (NONE: the copy-on-write cost), open (a full
 *   load of every record: what a rebuild per change would cost), and
 *   creates per second with SYNC from 1 and --threads threads.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>

#include "mix/mix.h"
#include "mix/list.h"
#include "stress.h"

static struct {
	const char *dir;
	unsigned runs, threads;
	uint32_t creates;
	uint64_t seed;
} opt = { NULL, 5, 4, 1000, 0 };

static struct mix_engine *E;
static char **names;
static uint32_t nnames;

static struct mix_list *lopen(const char *dir, enum mix_durability d)
{
	struct mix_list_config cfg;
	struct mix_list *l;

	mix_list_config_init(&cfg);
	cfg.durability = d;
	if (mix_list_open(E, dir, &cfg, &l) < 0)
		st_die("open %s: %s", dir, mix_last_error());
	return l;
}

static void add(struct mix_list *l, const char *n)
{
	if (mix_list_create(l, n, strlen(n), NULL, NULL) < 0)
		st_die("create %s: %s", n, mix_last_error());
	names[nnames++] = strdup(n);
}

static void populate(struct mix_list *l)
{
	char n[64];
	uint32_t i, j;

	add(l, "big");
	for (i = 0; i < 1000; i++) {
		snprintf(n, sizeof(n), "big/m%03u", i);
		add(l, n);
	}
	add(l, "small");
	for (i = 0; i < 10; i++) {
		snprintf(n, sizeof(n), "small/s%u", i);
		add(l, n);
	}
	for (i = 0; i < 90; i++) {
		snprintf(n, sizeof(n), "f%02u", i);
		add(l, n);
		for (j = 0; j < 99; j++) {
			snprintf(n, sizeof(n), "f%02u/m%02u", i, j);
			add(l, n);
		}
	}
}

static int count_cb(void *ctx, const struct mix_list_entry *e)
{
	(*(uint32_t *)ctx)++;
	return 0;
}

/* One LIST: ms and the number of entries reported. */
static double list_ms(struct mix_list *l, const char *pat, uint32_t *n_r)
{
	struct mix_mbox_pattern *p;
	uint64_t t0;
	int reps = 0;

	if (mix_mbox_name_pattern_new("", 0, pat, strlen(pat), '/', &p) < 0)
		st_die("pattern %s", pat);
	t0 = st_now_ns();
	do {
		*n_r = 0;
		mix_list_walk(l, p, 0, count_cb, n_r);
		reps++;
	} while (st_now_ns() - t0 < 20000000 && reps < 10000);
	mix_mbox_name_pattern_free(&p);
	return (double)(st_now_ns() - t0) / 1e6 / reps;
}

static double median_of(double (*fn)(void *), void *ctx)
{
	double v[64];
	unsigned i;

	for (i = 0; i < opt.runs && i < 64; i++)
		v[i] = fn(ctx);
	return st_median(v, i);
}

struct lctx {
	struct mix_list *l;
	const char *pat;
	uint32_t n;
	uint64_t rng;
	uint32_t *ids;
};

static double run_list(void *c)
{
	struct lctx *x = c;
	return list_ms(x->l, x->pat, &x->n);
}

static double run_lookup(void *c)
{
	struct lctx *x = c;
	enum { N = 200000 };
	struct mix_list_info info;
	uint32_t *pick = malloc(N * sizeof(*pick)), found = 0;
	uint64_t t0;

	for (int i = 0; i < N; i++)
		pick[i] = st_rand_below(&x->rng, nnames);
	t0 = st_now_ns();
	for (int i = 0; i < N; i++) {
		const char *n = names[pick[i]];
		found += (uint32_t)mix_list_lookup(x->l, n, strlen(n), &info);
	}
	t0 = st_now_ns() - t0;
	free(pick);
	if (found != N)
		st_die("lookup found %u of %u", found, N);
	return (double)t0 / N;
}

static double run_status(void *c)
{
	struct lctx *x = c;
	enum { N = 200000 };
	struct mix_list_status st;
	uint32_t *pick = malloc(N * sizeof(*pick));
	uint64_t t0;

	for (int i = 0; i < N; i++)
		pick[i] = x->ids[st_rand_below(&x->rng, 8)];
	t0 = st_now_ns();
	for (int i = 0; i < N; i++)
		if (mix_list_status(x->l, pick[i], &st) != 1)
			st_die("status");
	t0 = st_now_ns() - t0;
	free(pick);
	return (double)t0 / N;
}

static double run_rename(void *c)
{
	struct lctx *x = c;
	uint64_t t0 = st_now_ns();

	if (mix_list_rename(x->l, "big", 3, "big2/in", 7, NULL, NULL) < 0 ||
	    mix_list_rename(x->l, "big2/in", 7, "big", 3, NULL, NULL) < 0)
		st_die("rename: %s", mix_last_error());
	return (double)(st_now_ns() - t0) / 1e6 / 2;
}

static double run_create(void *c)
{
	struct lctx *x = c;
	char n[64];
	uint64_t t0;

	snprintf(n, sizeof(n), "tmp%" PRIu64, st_rand(&x->rng));
	t0 = st_now_ns();
	if (mix_list_create(x->l, n, strlen(n), NULL, NULL) < 0)
		st_die("create: %s", mix_last_error());
	t0 = st_now_ns() - t0;
	mix_list_delete(x->l, n, strlen(n));
	return (double)t0 / 1e3;
}

static struct mix_index *base_idx;

/* The baseline of a create: one plain mix commit (one append, NONE) of
 * a small index, the round trip through the writer every change pays. */
static double run_commit(void *c)
{
	struct mix_txn *t;
	uint64_t t0 = st_now_ns();

	if (mix_txn_begin(base_idx, &t) < 0 ||
	    mix_txn_append(t, 0, NULL, NULL) < 0 ||
	    mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
		st_die("commit: %s", mix_last_error());
	return (double)(st_now_ns() - t0) / 1e3;
}

struct cthr {
	struct mix_list *l;
	unsigned t, n, round;
};

static void *creator(void *arg)
{
	struct cthr *c = arg;
	char n[64];

	for (unsigned i = 0; i < c->n; i++) {
		snprintf(n, sizeof(n), "c%u/t%u/x%u", c->round, c->t, i);
		if (mix_list_create(c->l, n, strlen(n), NULL, NULL) < 0)
			st_die("create %s: %s", n, mix_last_error());
	}
	return NULL;
}

static unsigned create_round;

/* creates/s with SYNC from `threads` threads */
static double creates_per_s(struct mix_list *l, unsigned threads)
{
	pthread_t th[64];
	struct cthr c[64];
	uint64_t t0 = st_now_ns();
	unsigned i, per = opt.creates / threads;

	create_round++;
	for (i = 0; i < threads; i++) {
		c[i] = (struct cthr){ l, i, per, create_round };
		pthread_create(&th[i], NULL, creator, &c[i]);
	}
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	return (double)(per * threads) / st_secs_since(t0);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", 1, NULL, 'd' }, { "runs", 1, NULL, 'r' },
		{ "threads", 1, NULL, 't' }, { "creates", 1, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': opt.dir = optarg; break;
		case 'r': opt.runs = (unsigned)st_opt_u64("runs", optarg, 1,
							  64); break;
		case 't': opt.threads = (unsigned)st_opt_u64("threads", optarg,
							     1, 64); break;
		case 'c': opt.creates = (uint32_t)st_opt_u64("creates", optarg,
							     10, 1000000);
			break;
		default: st_die("usage: bench-list --dir D [--runs N] "
				"[--threads T] [--creates N]");
		}
	}
	if (opt.dir == NULL)
		st_die("bench-list: --dir is required");
}

int main(int argc, char **argv)
{
	static const char *const pats[] = { "*", "%", "small/%", "f07/%",
					    "big/%" };
	struct mix_list *l;
	struct mix_index *mbox;
	struct lctx x;
	char *ldir, *mdir;
	uint32_t ids[8], i;
	struct mix_list_info info;
	double v[64];
	uint64_t t0;

	parse(argc, argv);
	st_mkdir(opt.dir);
	ldir = st_subdir(opt.dir, "list");
	mdir = st_subdir(opt.dir, "mbox");
	if (mix_engine_create(NULL, &E) < 0)
		st_die("engine");
	names = calloc(20000, sizeof(*names));
	l = lopen(ldir, MIX_DURABILITY_NONE);
	memset(&x, 0, sizeof(x));
	x.l = l;
	x.rng = 0x7654321;
	add(l, "INBOX");
	printf("list_create_1 %.1f us (one create, NONE, at 1 entry)\n",
	       median_of(run_create, &x));
	nnames = 0;
	free(names[0]);
	populate(l);
	mix_list_close(&l);
	for (i = 0; i < opt.runs && i < 64; i++) {
		t0 = st_now_ns();
		l = lopen(ldir, MIX_DURABILITY_NONE);
		v[i] = (double)(st_now_ns() - t0) / 1e6;
		mix_list_close(&l);
	}
	printf("list_open_10k %.2f ms (%u entries: a full load and "
	       "derivation)\n", st_median(v, i), nnames);
	l = lopen(ldir, MIX_DURABILITY_NONE);
	memset(&x, 0, sizeof(x));
	x.l = l;
	x.rng = 0x1234567;
	printf("list_lookup %.1f ns (%u mailboxes, random names, depth 1-2)\n",
	       median_of(run_lookup, &x), nnames);
	for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		double ms;
		x.pat = pats[i];
		ms = median_of(run_list, &x);
		printf("list_walk %.4f ms (LIST \"%s\": %u entries)\n", ms,
		       pats[i], x.n);
	}
	for (i = 0; i < 8; i++) {
		mix_list_lookup(l, names[i * 1000], strlen(names[i * 1000]),
				&info);
		ids[i] = info.id;
	}
	x.ids = ids;
	printf("list_status_record %.1f ns (from the record)\n",
	       median_of(run_status, &x));
	if (mix_index_open(E, mdir, MIX_OPEN_CREATE, &mbox) < 0 ||
	    mix_list_attach(l, ids[3], mbox) < 0)
		st_die("attach: %s", mix_last_error());
	for (i = 0; i < 8; i++)
		ids[i] = ids[3];
	printf("list_status_live %.1f ns (an attached mailbox)\n",
	       median_of(run_status, &x));
	mix_list_detach(l, ids[3]);
	base_idx = mbox;
	printf("mix_commit_1 %.1f us (baseline: one append, NONE, plain "
	       "index)\n", median_of(run_commit, &x));
	mix_index_close(&mbox);
	printf("list_create_10k %.1f us (one create, NONE, at %u entries)\n",
	       median_of(run_create, &x), nnames);
	printf("list_rename_1001 %.3f ms (subtree of 1,001, NONE)\n",
	       median_of(run_rename, &x));
	mix_list_close(&l);
	l = lopen(ldir, MIX_DURABILITY_SYNC);
	x.l = l;
	printf("list_rename_1001_sync %.3f ms (SYNC)\n",
	       median_of(run_rename, &x));
	for (i = 0; i < opt.runs && i < 64; i++)
		v[i] = creates_per_s(l, 1);
	printf("list_creates_sync_1 %.0f per_s (1 thread, %u creates)\n",
	       st_median(v, i), opt.creates);
	for (i = 0; i < opt.runs && i < 64; i++)
		v[i] = creates_per_s(l, opt.threads);
	printf("list_creates_sync_%u %.0f per_s (%u threads, grouped "
	       "fsyncs)\n", opt.threads, st_median(v, i), opt.threads);
	mix_list_close(&l);
	mix_engine_free(&E);
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	free(ldir);
	free(mdir);
	return 0;
}
