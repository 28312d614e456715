/*
 * virtual-stress: the atomic remap of virtual mailboxes under load
 * (docs/virtual.md "Atomic remap", issue 12).  Three backend indexes get
 * appends, flag and keyword changes and expunges from one committer
 * thread each while a sync thread brings a virtual mailbox (rule
 * `OR UNSEEN OR FLAGGED KEYWORD todo`) up to date in a loop, every other
 * sync with expunges allowed.  Reader threads take the virtual index's
 * snapshot, then each backend's, in one read-side section, and check on
 * every snapshot they take:
 *
 *   - virtual UIDs strictly increase in sequence order;
 *   - every virtual message maps forward (mix_virtual_lookup) to a
 *     backend of the definition, below the recorded next_uid;
 *   - each (mailbox, real UID) appears at most once;
 *   - both directions agree: sampled mix_virtual_lookup_real() of mapped
 *     pairs give their virtual UID, of unmapped pairs nothing;
 *   - no recorded backend modseq (the snapshot's vmap header,
 *     mix_virtual_snap_backend) is above that backend's published
 *     highest modseq, read after it;
 *   - when a backend's published state equals the recorded one (it has
 *     not changed since the sync that built the map), its virtual
 *     messages exist in it with the same flags and `todo` keyword, and
 *     every backend message that matches the rule is in the map.
 *
 * After the run a last sync with expunges must leave exactly the matching
 * messages.  --live: live mode does the syncs (after every backend
 * publish, without expunges) and the sync thread adds an expunge sync
 * every 20 ms.  --writes: a thread stores flags and keywords (half with
 * UNCHANGEDSINCE) and expunges on random virtual UIDs through the
 * virtual mailbox (mix_virtual_store) meanwhile.  The first broken rule prints "VIOLATION: ..." and exits 1;
 * setup failures exit 2; figures are printed as `name value unit`.
 * Options: --dir D (required) --seconds S --readers N --messages M
 * (per backend) --seed X (or MIX_SEED) --live --writes.  Uses only the
 * public API.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "mix/mix.h"
#include "mix/virtual.h"
#include "stress.h"

#define NB 3
#define RULE "OR UNSEEN OR FLAGGED KEYWORD todo"
#define MIRROR (MIX_FLAG_ANSWERED | MIX_FLAG_FLAGGED | MIX_FLAG_DELETED | \
		MIX_FLAG_SEEN | MIX_FLAG_DRAFT)
#define SAMPLES 8

static struct {
	const char *dir;
	double seconds;
	unsigned readers;
	uint32_t messages;
	uint64_t seed;
	int live, writes;
} opt = { NULL, 3.0, 4, 2000, 0, 0, 0 };

static struct mix_engine *engine;
static struct mix_index *bk[NB];
static uint32_t bk_id[NB];
static struct mix_virtual *vm;
static atomic_int g_stop, g_failed;
static atomic_uint_fast64_t n_snaps, n_fwd, n_rev, n_rev_ns, n_syncs,
	n_commits, n_full_checks, n_stores, n_modified;

static void violation(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	if (atomic_exchange(&g_failed, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		fprintf(stderr, "VIOLATION: %s\n# replay choices with --seed "
			"%" PRIu64 "\n", msg, opt.seed);
		fflush(stderr);
	}
	atomic_store(&g_stop, 1);
}

static void must(int ret, const char *what)
{
	if (ret < 0)
		violation("%s: observed %d (%s: %s) expected 0", what, ret,
			  mix_strerror(ret), mix_last_error());
}

static int rule_match(const struct mix_snap *s, const struct mix_record *r)
{
	uint32_t idx;

	return !(r->flags & MIX_FLAG_SEEN) || (r->flags & MIX_FLAG_FLAGGED) ||
	       (mix_snap_keyword_lookup(s, "todo", &idx) &&
		mix_record_has_keyword(r, idx));
}

static int has_todo(const struct mix_snap *s, const struct mix_record *r)
{
	uint32_t idx;

	return mix_snap_keyword_lookup(s, "todo", &idx) &&
	       mix_record_has_keyword(r, idx);
}

/* ---- backend committers -------------------------------------------------- */

static uint8_t rand_flags(uint64_t *rng)
{
	uint8_t f = 0;

	if (st_chance(rng, 60))
		f |= MIX_FLAG_SEEN;
	if (st_chance(rng, 15))
		f |= MIX_FLAG_FLAGGED;
	if (st_chance(rng, 10))
		f |= MIX_FLAG_ANSWERED;
	return f;
}

static int append_some(struct mix_txn *txn, uint64_t *rng, uint32_t n)
{
	static const char *const todo[] = { "todo", NULL };
	uint32_t i, uid;
	int ret = 0;

	for (i = 0; i < n && ret == 0; i++)
		ret = mix_txn_append(txn, rand_flags(rng),
				     st_chance(rng, 10) ? todo : NULL, &uid);
	return ret;
}

/* One random change of backend index. */
static int backend_step(struct mix_index *index, uint64_t *rng)
{
	static const char *const todo[] = { "todo", NULL };
	struct mix_uid_range r[2];
	struct mix_txn *txn;
	uint32_t next, count, op;
	int ret;

	mix_read_lock();
	next = mix_snap_next_uid(mix_index_snap(index));
	count = mix_snap_messages_count(mix_index_snap(index));
	mix_read_unlock();
	if ((ret = mix_txn_begin(index, &txn)) < 0)
		return ret;
	op = st_rand_below(rng, 100);
	r[0].first = st_rand_range(rng, 1, next > 1 ? next - 1 : 1);
	r[0].last = r[0].first + st_rand_below(rng, 8);
	r[1].first = r[0].last + 2 + st_rand_below(rng, 50);
	r[1].last = r[1].first + st_rand_below(rng, 4);
	if (count < opt.messages / 2 || (op < 35 && count < opt.messages * 2))
		ret = append_some(txn, rng, 1 + st_rand_below(rng, 4));
	else if (op < 70)
		ret = mix_txn_flags(txn, r, 1, st_chance(rng, 50) ?
				    MIX_MODIFY_ADD : MIX_MODIFY_REMOVE,
				    st_chance(rng, 70) ? MIX_FLAG_SEEN :
				    MIX_FLAG_FLAGGED);
	else if (op < 82)
		ret = mix_txn_keywords(txn, r, 1, st_chance(rng, 50) ?
				       MIX_MODIFY_ADD : MIX_MODIFY_REMOVE,
				       todo);
	else
		ret = mix_txn_expunge(txn, r, 2);
	if (ret < 0) {
		mix_txn_abort(&txn);
		return ret;
	}
	return mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL);
}

static void *committer(void *arg)
{
	uintptr_t k = (uintptr_t)arg;
	uint64_t rng = st_seed_derive(opt.seed, 100 + k);

	while (!atomic_load(&g_stop)) {
		int ret = backend_step(bk[k], &rng);
		if (ret < 0) {
			must(ret, "backend commit");
			break;
		}
		atomic_fetch_add(&n_commits, 1);
		if (st_chance(&rng, 50))
			sched_yield();
	}
	return NULL;
}

/* ---- the syncer ---------------------------------------------------------- */

/* Without --live: syncs in a loop, every other one with expunges.  With
 * --live: the live thread syncs (without expunges) after every backend
 * publish; this thread only runs an expunge sync every 20 ms, as a
 * server would where it may send EXPUNGE. */
static void *syncer(void *arg)
{
	unsigned i = 0;

	(void)arg;
	while (!atomic_load(&g_stop)) {
		int ret = mix_virtual_sync(vm, (opt.live || (i++ & 1)) ?
					   MIX_VIRTUAL_SYNC_EXPUNGE : 0, NULL);
		if (ret < 0) {
			must(ret, "mix_virtual_sync");
			break;
		}
		atomic_fetch_add(&n_syncs, 1);
		if (opt.live)
			usleep(20000);
		else
			sched_yield();
	}
	return NULL;
}

/* --writes: flag and keyword stores (half with UNCHANGEDSINCE) and
 * expunges on random virtual UIDs through the virtual mailbox. */
static void *vwriter(void *arg)
{
	static const char *const todo[] = { "todo", NULL };
	uint64_t rng = st_seed_derive(opt.seed, 300);

	(void)arg;
	while (!atomic_load(&g_stop)) {
		struct mix_virtual_store st;
		struct mix_virtual_store_result res;
		struct mix_uid_range r;
		uint32_t next;
		uint64_t h;
		int ret;

		mix_read_lock();
		next = mix_snap_next_uid(mix_index_snap(mix_virtual_index(vm)));
		h = mix_snap_highest_modseq(mix_index_snap(
			mix_virtual_index(vm)));
		mix_read_unlock();
		memset(&st, 0, sizeof(st));
		r.first = st_rand_range(&rng, 1, next > 1 ? next - 1 : 1);
		r.last = r.first + st_rand_below(&rng, 20);
		st.op = st_chance(&rng, 10) ? MIX_VIRTUAL_STORE_EXPUNGE :
			st_chance(&rng, 70) ? MIX_VIRTUAL_STORE_FLAGS :
			MIX_VIRTUAL_STORE_KEYWORDS;
		st.modify = st_chance(&rng, 50) ? MIX_MODIFY_ADD :
			    MIX_MODIFY_REMOVE;
		st.flags = st_chance(&rng, 50) ? MIX_FLAG_SEEN :
			   MIX_FLAG_FLAGGED;
		st.keywords = todo;
		st.unchangedsince = st_chance(&rng, 50) ? h : 0;
		if ((ret = mix_virtual_store(vm, &r, 1, &st, &res)) < 0) {
			must(ret, "mix_virtual_store");
			break;
		}
		atomic_fetch_add(&n_stores, 1);
		atomic_fetch_add(&n_modified, res.modified_count);
		mix_virtual_store_result_free(&res);
		usleep(1000);
	}
	return NULL;
}

/* ---- the checks ---------------------------------------------------------- */

struct pair {
	uint32_t mb, ruid, vuid;
	uint8_t flags;
	uint8_t todo;
};

struct rstate {
	uint64_t rng;
	struct pair *p;
	size_t cap;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	if (x->mb != y->mb)
		return x->mb < y->mb ? -1 : 1;
	return x->ruid < y->ruid ? -1 : x->ruid > y->ruid;
}

static const struct pair *pair_find(const struct pair *p, size_t n,
				    uint32_t mb, uint32_t ruid)
{
	struct pair key = { mb, ruid, 0, 0, 0 };

	return bsearch(&key, p, n, sizeof(*p), pair_cmp);
}

static int bk_of(uint32_t mb)
{
	int k;

	for (k = 0; k < NB; k++)
		if (bk_id[k] == mb)
			return k;
	return -1;
}

/* Collect vs's map; checks UID order and the forward map.  -1 on a
 * violation. */
static int collect(struct rstate *st, const struct mix_snap *vs, size_t *n_r)
{
	struct mix_iter it;
	struct mix_record rec;
	uint32_t prev = 0;
	size_t n = 0;

	if (st->cap < mix_snap_messages_count(vs)) {
		st->cap = mix_snap_messages_count(vs) * 2 + 64;
		if ((st->p = realloc(st->p, st->cap * sizeof(*st->p))) == NULL)
			st_die("out of memory");
	}
	mix_iter_init(&it, vs, 1);
	while (mix_iter_next(&it, &rec)) {
		struct pair *q = &st->p[n];
		if (n >= st->cap)
			break;
		if (rec.uid <= prev) {
			violation("virtual UIDs in sequence order: observed %u "
				  "after %u expected increasing", rec.uid, prev);
			return -1;
		}
		prev = rec.uid;
		if (!mix_virtual_lookup(vs, rec.uid, &q->mb, &q->ruid) ||
		    bk_of(q->mb) < 0 || q->ruid == 0) {
			violation("forward map of virtual UID %u: observed "
				  "mailbox %u real UID %u expected a backend's "
				  "message", rec.uid, q->mb, q->ruid);
			return -1;
		}
		q->vuid = rec.uid;
		q->flags = rec.flags & MIRROR;
		q->todo = (uint8_t)has_todo(vs, &rec);
		n++;
	}
	atomic_fetch_add(&n_fwd, n);
	*n_r = n;
	return 0;
}

/* Both directions agree on SAMPLES mapped and SAMPLES unmapped pairs. */
static int check_reverse(struct rstate *st, const struct mix_snap *vs,
			 const struct pair *sorted, size_t n)
{
	uint64_t t0 = st_now_ns();
	uint32_t i, vuid, lookups = 0;

	for (i = 0; i < SAMPLES && n > 0; i++) {
		const struct pair *q = &sorted[st_rand_below(&st->rng,
							     (uint32_t)n)];
		vuid = 0;
		lookups++;
		if (!mix_virtual_lookup_real(vs, q->mb, q->ruid, &vuid) ||
		    vuid != q->vuid) {
			violation("reverse map of mailbox %u real UID %u: "
				  "observed virtual UID %u expected %u (the "
				  "forward map's)", q->mb, q->ruid, vuid,
				  q->vuid);
			return -1;
		}
	}
	for (i = 0; i < SAMPLES; i++) {
		uint32_t mb = bk_id[st_rand_below(&st->rng, NB)];
		uint32_t ruid = 1 + st_rand_below(&st->rng,
						  opt.messages * 4 + 100);
		if (pair_find(sorted, n, mb, ruid) != NULL)
			continue;
		lookups++;
		if (mix_virtual_lookup_real(vs, mb, ruid, &vuid)) {
			violation("reverse map of mailbox %u real UID %u: "
				  "observed virtual UID %u expected none (not "
				  "in the forward map)", mb, ruid, vuid);
			return -1;
		}
	}
	atomic_fetch_add(&n_rev, lookups);
	atomic_fetch_add(&n_rev_ns, st_now_ns() - t0);
	return 0;
}

/* The backend k part of the map against backend snapshot bs, which has
 * not changed since the recorded state. */
static int check_unchanged(const struct mix_snap *bs, int k,
			   const struct pair *sorted, size_t n)
{
	struct mix_iter it;
	struct mix_record rec;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct pair *q = &sorted[i];
		if (q->mb != bk_id[k])
			continue;
		if (!mix_snap_lookup_uid(bs, q->ruid, &rec)) {
			violation("virtual UID %u: mailbox %u real UID %u: "
				  "observed absent from the backend expected "
				  "present (backend unchanged since the sync)",
				  q->vuid, q->mb, q->ruid);
			return -1;
		}
		if ((rec.flags & MIRROR) != q->flags ||
		    has_todo(bs, &rec) != q->todo) {
			violation("virtual UID %u flags/todo: observed %#x/%u "
				  "expected the backend's %#x/%u (mailbox %u "
				  "real UID %u, unchanged since the sync)",
				  q->vuid, q->flags, q->todo, rec.flags & MIRROR,
				  has_todo(bs, &rec), q->mb, q->ruid);
			return -1;
		}
	}
	mix_iter_init(&it, bs, 1);
	while (mix_iter_next(&it, &rec)) {
		if (rule_match(bs, &rec) &&
		    pair_find(sorted, n, bk_id[k], rec.uid) == NULL) {
			violation("mailbox %u real UID %u matches the rule: "
				  "observed not in the virtual mailbox expected "
				  "in it (backend unchanged since the sync)",
				  bk_id[k], rec.uid);
			return -1;
		}
	}
	atomic_fetch_add(&n_full_checks, 1);
	return 0;
}

/* Every rule on one virtual snapshot vs and backend snapshots bs taken
 * after it. */
static int check_snap(struct rstate *st, const struct mix_snap *vs,
		      const struct mix_snap *const *bs)
{
	struct mix_virtual_backend_state s;
	size_t n, i;
	int k;

	if (collect(st, vs, &n) < 0)
		return -1;
	qsort(st->p, n, sizeof(*st->p), pair_cmp);
	for (i = 1; i < n; i++) {
		if (pair_cmp(&st->p[i - 1], &st->p[i]) == 0) {
			violation("mailbox %u real UID %u: observed at virtual "
				  "UIDs %u and %u expected at most once",
				  st->p[i].mb, st->p[i].ruid, st->p[i - 1].vuid,
				  st->p[i].vuid);
			return -1;
		}
	}
	for (k = 0; k < NB; k++) {
		if (!mix_virtual_snap_backend(vs, bk_id[k], &s)) {
			violation("vmap header: observed no state for mailbox "
				  "%u expected one", bk_id[k]);
			return -1;
		}
		if (s.highest_modseq > mix_snap_highest_modseq(bs[k]) ||
		    s.next_uid > mix_snap_next_uid(bs[k])) {
			violation("mailbox %u recorded modseq/next_uid: observed "
				  "%" PRIu64 "/%u expected at most the backend's "
				  "published %" PRIu64 "/%u", bk_id[k],
				  s.highest_modseq, s.next_uid,
				  mix_snap_highest_modseq(bs[k]),
				  mix_snap_next_uid(bs[k]));
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (st->p[i].mb == bk_id[k] &&
			    st->p[i].ruid >= s.next_uid) {
				violation("virtual UID %u: real UID %u of "
					  "mailbox %u observed at or above the "
					  "recorded next_uid %u", st->p[i].vuid,
					  st->p[i].ruid, bk_id[k], s.next_uid);
				return -1;
			}
		}
		if (s.highest_modseq == mix_snap_highest_modseq(bs[k]) &&
		    s.next_uid == mix_snap_next_uid(bs[k]) &&
		    s.uid_validity == mix_snap_uid_validity(bs[k]) &&
		    check_unchanged(bs[k], k, st->p, n) < 0)
			return -1;
	}
	if (check_reverse(st, vs, st->p, n) < 0)
		return -1;
	atomic_fetch_add(&n_snaps, 1);
	return 0;
}

static int check_newest(struct rstate *st)
{
	const struct mix_snap *vs, *bs[NB];
	int k, ret;

	mix_read_lock();
	vs = mix_index_snap(mix_virtual_index(vm));
	for (k = 0; k < NB; k++)
		bs[k] = mix_index_snap(bk[k]);
	ret = check_snap(st, vs, bs);
	mix_read_unlock();
	return ret;
}

static void *reader(void *arg)
{
	struct rstate st = { st_seed_derive(opt.seed, (uintptr_t)arg), NULL,
			     0 };

	while (!atomic_load(&g_stop) && check_newest(&st) == 0)
		;
	free(st.p);
	return NULL;
}

/* ---- setup, run, report -------------------------------------------------- */

static void setup(void)
{
	struct mix_virtual_backend b[NB];
	struct mix_virtual_def def;
	uint64_t rng = st_seed_derive(opt.seed, 7);
	char name[16];
	int k, ret;

	if ((ret = mix_engine_create(NULL, &engine)) != 0)
		st_die("mix_engine_create: %s", mix_strerror(ret));
	for (k = 0; k < NB; k++) {
		struct mix_txn *txn;
		char *d;
		snprintf(name, sizeof(name), "b%d", k);
		d = st_subdir(opt.dir, name);
		st_mkdir(d);
		if ((ret = mix_index_open(engine, d, MIX_OPEN_CREATE,
					  &bk[k])) != 0 ||
		    (ret = mix_txn_begin(bk[k], &txn)) != 0)
			st_die("open %s: %s", d, mix_last_error());
		free(d);
		if ((ret = mix_txn_hdr_set(txn, MIX_HDR_UID_VALIDITY,
					   1000u + (uint32_t)k)) != 0 ||
		    (ret = append_some(txn, &rng, opt.messages)) != 0 ||
		    (ret = mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL)) != 0)
			st_die("fill backend %d: %s", k, mix_last_error());
		b[k].index = bk[k];
	}
	b[0].name = "INBOX";
	b[1].name = "Work";
	b[2].name = "Lists";
	memset(&def, 0, sizeof(def));
	def.backends = b;
	def.backend_count = NB;
	def.rule = RULE;
	{
		char *d = st_subdir(opt.dir, "virtual");
		st_mkdir(d);
		if ((ret = mix_virtual_open(engine, d, &def, &vm)) != 0 ||
		    (ret = mix_virtual_sync(vm, MIX_VIRTUAL_SYNC_EXPUNGE,
					    NULL)) != 0)
			st_die("virtual %s: %s", d, mix_last_error());
		free(d);
	}
	for (k = 0; k < NB; k++)
		if (!mix_virtual_mailbox_id(vm, b[k].name, &bk_id[k]))
			st_die("no mailbox id for %s", b[k].name);
}

/* After the load: one sync with expunges leaves exactly the matches. */
static void final_check(void)
{
	struct mix_virtual_sync_result res;
	struct rstate st = { st_seed_derive(opt.seed, 9), NULL, 0 };
	uint64_t full = atomic_load(&n_full_checks);

	must(mix_virtual_sync(vm, MIX_VIRTUAL_SYNC_EXPUNGE, &res),
	     "final mix_virtual_sync");
	if (atomic_load(&g_failed))
		return;
	if (res.pending_removal != 0)
		violation("final sync with expunges: observed %u pending "
			  "removals expected 0", res.pending_removal);
	if (check_newest(&st) == 0 &&
	    atomic_load(&n_full_checks) != full + NB)
		violation("final check: observed %" PRIu64 " backends checked "
			  "in full expected %d (all unchanged)",
			  (uint64_t)(atomic_load(&n_full_checks) - full), NB);
	free(st.p);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", 1, NULL, 'd' }, { "seconds", 1, NULL, 's' },
		{ "readers", 1, NULL, 'r' }, { "messages", 1, NULL, 'm' },
		{ "seed", 1, NULL, 'S' }, { "live", 0, NULL, 'l' },
		{ "writes", 0, NULL, 'w' }, { NULL, 0, NULL, 0 },
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
		case 'm': opt.messages = (uint32_t)st_opt_u64("messages",
							      optarg, 10,
							      1000000); break;
		case 'S': seed = optarg; break;
		case 'l': opt.live = 1; break;
		case 'w': opt.writes = 1; break;
		default: st_die("usage: virtual-stress --dir D [--seconds S] "
				"[--readers N] [--messages M] [--seed X] "
				"[--live] [--writes]");
		}
	}
	if (opt.dir == NULL)
		st_die("virtual-stress: --dir is required");
	opt.seed = st_seed_pick(seed);
}

int main(int argc, char **argv)
{
	pthread_t *rt, ct[NB], syt, wt;
	uint64_t start;
	double secs;
	unsigned i;

	parse(argc, argv);
	printf("seed %" PRIu64 "\n", opt.seed);
	st_mkdir(opt.dir);
	setup();
	rt = calloc(opt.readers, sizeof(*rt));
	start = st_now_ns();
	for (i = 0; i < opt.readers; i++)
		pthread_create(&rt[i], NULL, reader, (void *)(uintptr_t)i);
	for (i = 0; i < NB; i++)
		pthread_create(&ct[i], NULL, committer, (void *)(uintptr_t)i);
	if (opt.live)
		must(mix_virtual_live_start(vm, 0), "mix_virtual_live_start");
	pthread_create(&syt, NULL, syncer, NULL);
	if (opt.writes)
		pthread_create(&wt, NULL, vwriter, NULL);
	while (!atomic_load(&g_stop) && st_secs_since(start) < opt.seconds)
		usleep(10000);
	atomic_store(&g_stop, 1);
	for (i = 0; i < opt.readers; i++)
		pthread_join(rt[i], NULL);
	for (i = 0; i < NB; i++)
		pthread_join(ct[i], NULL);
	pthread_join(syt, NULL);
	if (opt.writes)
		pthread_join(wt, NULL);
	secs = st_secs_since(start);
	if (opt.live) {
		printf("live_syncs %" PRIu64 " count\n",
		       mix_virtual_live_syncs(vm));
		must(mix_virtual_live_stop(vm), "mix_virtual_live_stop");
	}
	if (!atomic_load(&g_failed))
		final_check();
	printf("seconds %.2f s\n", secs);
	printf("snapshots_checked %" PRIu64 " count\n",
	       (uint64_t)atomic_load(&n_snaps));
	printf("backends_checked_unchanged %" PRIu64 " count\n",
	       (uint64_t)atomic_load(&n_full_checks));
	printf("syncs %" PRIu64 " count\n", (uint64_t)atomic_load(&n_syncs));
	printf("backend_commits %" PRIu64 " count\n",
	       (uint64_t)atomic_load(&n_commits));
	printf("virtual_stores %" PRIu64 " count\n",
	       (uint64_t)atomic_load(&n_stores));
	printf("virtual_stores_modified_ranges %" PRIu64 " count\n",
	       (uint64_t)atomic_load(&n_modified));
	printf("forward_lookups_per_s %.0f ops/s\n",
	       (double)atomic_load(&n_fwd) / secs);
	printf("reverse_lookups_per_s %.0f ops/s\n",
	       (double)atomic_load(&n_rev) / secs);
	printf("reverse_lookup_mean %.0f ns\n", atomic_load(&n_rev) ?
	       (double)atomic_load(&n_rev_ns) / (double)atomic_load(&n_rev) :
	       0.0);
	mix_read_lock();
	printf("virtual_messages %u count\n",
	       mix_snap_messages_count(mix_index_snap(mix_virtual_index(vm))));
	mix_read_unlock();
	mix_virtual_close(&vm);
	for (i = 0; i < NB; i++)
		mix_index_close(&bk[i]);
	mix_engine_free(&engine);
	free(rt);
	if (atomic_load(&g_failed)) {
		printf("virtual-stress: FAILED\n");
		return 1;
	}
	printf("virtual-stress: ok\n");
	return 0;
}
