/*
 * list-stress: the mailbox list's atomic subtree rename under concurrent
 * readers (docs/mailbox-list.md "Concurrency").  A validate program:
 * exits 1 at the first violation, printing what was seen and expected.
 *
 * Setup: a subtree "A/t" with --subtree mailboxes below it (two levels),
 * plus unrelated mailboxes.  One writer renames the subtree root between
 * "A/t" and "B/t" (the parents A and B come and go as placeholders) and
 * creates/deletes unrelated mailboxes; a second writer thread sets
 * special-use flags inside the subtree and subscriptions outside it.  Readers (--readers) loop
 * over:
 *   - LIST "*": every id at most once; the subtree's entries are all
 *     under exactly one of A/t and B/t (never some under each, never a
 *     missing one), and their count is the subtree size;
 *   - LIST "%/t/%" and "%/t": the same rule one level down;
 *   - lookup of a random subtree member under A/t or B/t; when found,
 *     its id looked up again (mix_list_lookup_id, a later version) must
 *     still exist and be named the same member under A/t or B/t (ids
 *     survive renames; a member is never elsewhere).
 *   - STATUS of an attached mailbox (an appender commits to it) is never
 *     ahead of the mailbox snapshot read after it, never goes back.
 * Figures (name value unit): renames, rename latency median, reader
 * walks and lookups per second.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>

#include "mix/mix.h"
#include "mix/list.h"
#include "stress.h"

static struct {
	const char *dir;
	double seconds;
	unsigned readers;
	uint32_t subtree;
	uint64_t seed;
	int sync;
} opt = { NULL, 2, 4, 200, 0, 0 };

static struct mix_list *L;
static struct mix_index *MB;     /* the attached mailbox */
static uint32_t mb_id;
static uint64_t appends;
static int stop_flag;             /* atomic */
static struct mix_engine *E;
static int violations;
static uint32_t nfan;            /* first-level children of t */
static uint64_t renames, walks, lookups;
static double *lat;
static size_t nlat, caplat;

static int stopping(void)
{
	return __atomic_load_n(&stop_flag, __ATOMIC_RELAXED);
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(&violations, 1, __ATOMIC_SEQ_CST) > 0)
		return;
	printf("VIOLATION: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
}

static void member(uint32_t i, char *buf, size_t size, char top)
{
	if (i < nfan)
		snprintf(buf, size, "%c/t/m%u", top, i);
	else
		snprintf(buf, size, "%c/t/m%u/n%u", top, i % nfan, i);
}

static void setup(void)
{
	char n[64];
	uint32_t i;
	struct mix_list_config cfg;

	mix_list_config_init(&cfg);
	cfg.durability = opt.sync ? MIX_DURABILITY_SYNC : MIX_DURABILITY_NONE;
	if (mix_engine_create(NULL, &E) < 0 ||
	    mix_list_open(E, opt.dir, &cfg, &L) < 0)
		st_die("open: %s", mix_last_error());
	nfan = opt.subtree / 10 ? opt.subtree / 10 : 1;
	if (mix_list_create(L, "A/t", 3, NULL, NULL) < 0)
		st_die("create: %s", mix_last_error());
	for (i = 0; i < opt.subtree; i++) {
		member(i, n, sizeof(n), 'A');
		if (mix_list_create(L, n, strlen(n), NULL, NULL) < 0)
			st_die("create %s: %s", n, mix_last_error());
	}
	for (i = 0; i < 50; i++) {
		snprintf(n, sizeof(n), "other/x%u", i);
		mix_list_create(L, n, strlen(n), NULL, NULL);
	}
	/* a mailbox whose STATUS the readers check against its snapshots */
	{
		char *md = st_subdir(opt.dir, "mbox");
		if (mix_list_create(L, "other/box", 9, NULL, &mb_id) < 0 ||
		    mix_index_open(E, md, MIX_OPEN_CREATE, &MB) < 0 ||
		    mix_list_attach(L, mb_id, MB) < 0)
			st_die("attach: %s", mix_last_error());
		free(md);
	}
}

/* STATUS of the attached mailbox: never ahead of its newest snapshot
 * read afterwards (a view opened now sees at least as much), and never
 * going back for one reader. */
static void check_status(uint64_t *last_hms)
{
	struct mix_list_status st;
	const struct mix_snap *snap;
	uint32_t msgs, next;
	uint64_t hms;

	if (mix_list_status(L, mb_id, &st) != 1) {
		violation("status of attached mailbox %u: not found", mb_id);
		return;
	}
	mix_read_lock();
	snap = mix_index_snap(MB);
	msgs = mix_snap_messages_count(snap);
	next = mix_snap_next_uid(snap);
	hms = mix_snap_highest_modseq(snap);
	mix_read_unlock();
	if (!(st.flags & MIX_LIST_STATUS_LIVE) || st.messages > msgs ||
	    st.uidnext > next || st.highestmodseq > hms)
		violation("STATUS ahead of the mailbox: flags %x messages %u "
			  "uidnext %u hms %" PRIu64 "; the snapshot after it: "
			  "%u %u %" PRIu64, st.flags, st.messages, st.uidnext,
			  st.highestmodseq, msgs, next, hms);
	if (st.highestmodseq < *last_hms)
		violation("STATUS went back: hms %" PRIu64 " after %" PRIu64,
			  st.highestmodseq, *last_hms);
	*last_hms = st.highestmodseq;
}

static void *appender(void *arg)
{
	uint64_t rng = *(uint64_t *)arg;
	struct mix_txn *t;
	uint64_t n = 0;

	while (!stopping()) {
		uint32_t k = 1 + st_rand_below(&rng, 4);
		if (mix_txn_begin(MB, &t) < 0)
			break;
		for (uint32_t i = 0; i < k; i++)
			mix_txn_append(t, st_rand_below(&rng, 2) ?
				       MIX_FLAG_SEEN : 0, NULL, NULL);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0) {
			violation("append: %s", mix_last_error());
			break;
		}
		n += k;
		usleep(100);     /* leave the shared writer to the renames */
	}
	__atomic_add_fetch(&appends, n, __ATOMIC_RELAXED);
	return NULL;
}

/* ---- readers ---------------------------------------------------------- */

struct seen {
	uint32_t *ids;
	uint32_t n, cap;
	uint32_t under_a, under_b;
	int fail;
};

static int walk_cb(void *ctx, const struct mix_list_entry *e)
{
	struct seen *s = ctx;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->ids = realloc(s->ids, s->cap * sizeof(*s->ids));
		if (s->ids == NULL)
			st_die("memory");
	}
	s->ids[s->n++] = e->id;
	if (strncmp(e->name, "A/t", 3) == 0 &&
	    (e->name[3] == 0 || e->name[3] == '/'))
		s->under_a++;
	if (strncmp(e->name, "B/t", 3) == 0 &&
	    (e->name[3] == 0 || e->name[3] == '/'))
		s->under_b++;
	return 0;
}

static int u32cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void check_walk(struct mix_mbox_pattern *p, struct seen *s,
		       uint32_t want, const char *what)
{
	uint32_t i;

	s->n = s->under_a = s->under_b = 0;
	mix_list_walk(L, p, 0, walk_cb, s);
	if (s->n > 1)
		qsort(s->ids, s->n, sizeof(*s->ids), u32cmp);
	for (i = 1; i < s->n; i++)
		if (s->ids[i] == s->ids[i - 1]) {
			violation("LIST %s: id %u listed twice (%u entries)",
				  what, s->ids[i], s->n);
			return;
		}
	if (!((s->under_a == want && s->under_b == 0) ||
	      (s->under_b == want && s->under_a == 0)))
		violation("LIST %s: %u entries under A/t and %u under B/t, "
			  "expected %u under exactly one (half a rename)",
			  what, s->under_a, s->under_b, want);
}

static void *reader(void *arg)
{
	uint64_t rng = *(uint64_t *)arg, w = 0, lk = 0;
	struct mix_mbox_pattern *all, *lvl, *top;
	struct seen s = { NULL, 0, 0, 0, 0, 0 };
	char n[64], got[1100];
	struct mix_list_info info;
	uint64_t last_hms = 0;

	if (mix_mbox_name_pattern_new("", 0, "*", 1, '/', &all) < 0 ||
	    mix_mbox_name_pattern_new("", 0, "%/t/%", 5, '/', &lvl) < 0 ||
	    mix_mbox_name_pattern_new("", 0, "%/t", 3, '/', &top) < 0)
		st_die("pattern");
	while (!stopping()) {
		uint32_t i = st_rand_below(&rng, opt.subtree);
		check_status(&last_hms);
		check_walk(all, &s, opt.subtree + 1, "*");
		check_walk(lvl, &s, nfan, "%/t/%");
		check_walk(top, &s, 1, "%/t");
		w += 3;
		for (int k = 0; k < 20 && !stopping(); k++, lk++) {
			char top_c = st_rand_below(&rng, 2) ? 'A' : 'B';
			size_t len;
			member(i, n, sizeof(n), top_c);
			if (mix_list_lookup(L, n, strlen(n), &info) != 1)
				continue;
			if (mix_list_lookup_id(L, info.id, NULL, got,
					       sizeof(got), &len) != 1) {
				violation("id %u of %s vanished (a mailbox id "
					  "must stay through renames)",
					  info.id, n);
				break;
			}
			if (strcmp(got + 1, n + 1) != 0 ||
			    (got[0] != 'A' && got[0] != 'B'))
				violation("id %u: looked up as %s, its name is "
					  "%s", info.id, n, got);
		}
	}
	__atomic_add_fetch(&walks, w, __ATOMIC_RELAXED);
	__atomic_add_fetch(&lookups, lk, __ATOMIC_RELAXED);
	mix_mbox_name_pattern_free(&all);
	mix_mbox_name_pattern_free(&lvl);
	mix_mbox_name_pattern_free(&top);
	free(s.ids);
	return NULL;
}

/* ---- writers ---------------------------------------------------------- */

static void *renamer(void *arg)
{
	uint64_t rng = *(uint64_t *)arg;
	char n[64];
	int at_a = 1;

	while (!stopping()) {
		uint64_t t0 = st_now_ns();
		int r = at_a ? mix_list_rename(L, "A/t", 3, "B/t", 3, NULL, NULL)
			     : mix_list_rename(L, "B/t", 3, "A/t", 3, NULL, NULL);
		if (r < 0) {
			violation("rename failed: %s", mix_last_error());
			break;
		}
		if (nlat == caplat) {
			caplat = caplat ? caplat * 2 : 4096;
			lat = realloc(lat, caplat * sizeof(*lat));
		}
		lat[nlat++] = (double)(st_now_ns() - t0) / 1e6;
		at_a = !at_a;
		renames++;
		snprintf(n, sizeof(n), "other/y%u", st_rand_below(&rng, 20));
		if (mix_list_create(L, n, strlen(n), NULL, NULL) == -EEXIST)
			mix_list_delete(L, n, strlen(n));
	}
	return NULL;
}

static void *subscriber(void *arg)
{
	uint64_t rng = *(uint64_t *)arg;
	char n[64];
	int r;

	while (!stopping()) {
		uint32_t i = st_rand_below(&rng, opt.subtree);
		/* special-use inside the moving subtree (the name may be
		 * gone by then: MIX_ENOTFOUND), subscriptions outside it (a
		 * subscription to a missing name would make a record that
		 * blocks the next rename) */
		member(i, n, sizeof(n), st_rand_below(&rng, 2) ? 'A' : 'B');
		r = mix_list_set_special_use(L, n, strlen(n),
					     st_rand_below(&rng, 2) ?
					     MIX_LIST_ARCHIVE : 0);
		if (r < 0 && r != MIX_ENOTFOUND) {
			violation("special-use %s: %s", n, mix_last_error());
			break;
		}
		snprintf(n, sizeof(n), "other/x%u", st_rand_below(&rng, 50));
		r = mix_list_subscribe(L, n, strlen(n),
				       (int)st_rand_below(&rng, 2));
		if (r < 0) {
			violation("subscribe %s: %s", n, mix_last_error());
			break;
		}
	}
	return NULL;
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", 1, NULL, 'd' }, { "seconds", 1, NULL, 's' },
		{ "readers", 1, NULL, 'r' }, { "subtree", 1, NULL, 'n' },
		{ "seed", 1, NULL, 'S' }, { "sync", 0, NULL, 'y' },
		{ NULL, 0, NULL, 0 },
	};
	const char *seed = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': opt.dir = optarg; break;
		case 's': opt.seconds = st_opt_secs("seconds", optarg, 0,
						    86400); break;
		case 'r': opt.readers = (unsigned)st_opt_u64("readers", optarg,
							     1, 256); break;
		case 'n': opt.subtree = (uint32_t)st_opt_u64("subtree", optarg,
							     1, 100000); break;
		case 'S': seed = optarg; break;
		case 'y': opt.sync = 1; break;
		default: st_die("usage: list-stress --dir D [--seconds S] "
				"[--readers N] [--subtree N] [--seed X] "
				"[--sync]");
		}
	}
	if (opt.dir == NULL)
		st_die("list-stress: --dir is required");
	opt.seed = st_seed_pick(seed);
}

int main(int argc, char **argv)
{
	pthread_t *rt, wt, sb, ap;
	uint64_t *seeds;
	double secs;
	uint64_t start;
	unsigned i;

	parse(argc, argv);
	printf("seed %" PRIu64 "\n", opt.seed);
	st_mkdir(opt.dir);
	setup();
	rt = calloc(opt.readers, sizeof(*rt));
	seeds = calloc(opt.readers + 3, sizeof(*seeds));
	for (i = 0; i < opt.readers + 3; i++)
		seeds[i] = st_seed_derive(opt.seed, i + 1);
	start = st_now_ns();
	for (i = 0; i < opt.readers; i++)
		pthread_create(&rt[i], NULL, reader, &seeds[i]);
	pthread_create(&wt, NULL, renamer, &seeds[opt.readers]);
	pthread_create(&sb, NULL, subscriber, &seeds[opt.readers + 1]);
	pthread_create(&ap, NULL, appender, &seeds[opt.readers + 2]);
	while (!stopping() && st_secs_since(start) < opt.seconds)
		usleep(10000);
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
	for (i = 0; i < opt.readers; i++)
		pthread_join(rt[i], NULL);
	pthread_join(wt, NULL);
	pthread_join(sb, NULL);
	pthread_join(ap, NULL);
	secs = st_secs_since(start);
	printf("list_stress_renames %" PRIu64 " count (subtree %u, %s)\n",
	       renames, opt.subtree + 1, opt.sync ? "SYNC" : "NONE");
	printf("list_stress_rename_median %.3f ms\n", st_median(lat, nlat));
	printf("list_stress_walks %.0f per_s (%u readers)\n",
	       (double)walks / secs, opt.readers);
	printf("list_stress_lookups %.0f per_s\n", (double)lookups / secs);
	printf("list_stress_appends %" PRIu64 " count (attached mailbox)\n",
	       appends);
	if (mix_list_detach(L, mb_id) < 0 || mix_index_close(&MB) < 0) {
		printf("VIOLATION: detach: %s\n", mix_last_error());
		violations++;
	}
	if (mix_list_close(&L) < 0) {
		printf("VIOLATION: close: %s\n", mix_last_error());
		violations++;
	}
	mix_engine_free(&E);
	free(rt);
	free(seeds);
	free(lat);
	return violations ? 1 : 0;
}
