/*
 * The writer-side IMAP operations (issue 14; engine/txn.c,
 * engine/txn-apply.c; docs/condstore.md, docs/api.md "Transactions"):
 *  - conditional EXPUNGE / UID EXPUNGE (mix_txn_expunge_deleted): only
 *    messages with \Deleted when the writer applies it, UID sets, the
 *    transaction's own earlier operations, nothing to expunge, replay;
 *  - the race: threads setting and clearing \Deleted while others
 *    expunge; for every message and round, the results and the final
 *    state agree on exactly one outcome, checked against the order of
 *    the commits' modseqs;
 *  - STORE's changed set (mix_txn_want_changed): only effective,
 *    visible changes, with the transaction's modseq; nothing when not
 *    asked; disjoint from MODIFIED and covering the request together;
 *  - \Recent claims (mix_txn_claim_recent): one claimer per UID, also
 *    when claimers race appends; persisted across reopen;
 *  - modseq-neutral extensions (mix_index_ext_register_flags): their
 *    record and header data change no modseq, live, after replay (a
 *    read-only open) and after reopen (the checkpoint); registration
 *    rules; a normal extension beside one still raises.
 * Seed: $MIX_SEED (printed); size: $MIX_TEST_SCALE.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

static struct mix_engine *engine;
static uint64_t seed;

/* ---- helpers -------------------------------------------------------------- */

static int store(struct mix_index *idx, uint32_t first, uint32_t last,
		 enum mix_modify mod, uint8_t flags, int want,
		 struct mix_commit_result *res)
{
	struct mix_txn *t;
	struct mix_uid_range r = { first, last };
	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	if (want)
		mix_txn_want_changed(t);
	mix_txn_flags(t, &r, 1, mod, flags);
	return mix_txn_commit(&t, MIX_DURABILITY_NONE, res);
}

static int xdel(struct mix_index *idx, const struct mix_uid_range *r,
		size_t n, struct mix_commit_result *res)
{
	struct mix_txn *t;
	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	if (mix_txn_expunge_deleted(t, r, n) < 0) {
		mix_txn_abort(&t);
		return -1;
	}
	return mix_txn_commit(&t, MIX_DURABILITY_NONE, res);
}

/* The UIDs present, as a set string. */
static const char *uids_now(struct mix_index *idx)
{
	static struct mix_uid_range r[256];
	struct mix_iter it;
	struct mix_record rec;
	uint32_t n = 0;
	const char *s;
	mix_read_lock();
	mix_iter_init(&it, mix_index_snap(idx), 1);
	while (mix_iter_next(&it, &rec) && n < 256) {
		if (n && r[n - 1].last + 1 == rec.uid)
			r[n - 1].last = rec.uid;
		else
			r[n].first = r[n].last = rec.uid, n++;
	}
	mix_read_unlock();
	s = tu_fmt_set(r, n);
	return s;
}

/* ---- conditional expunge ---------------------------------------------------- */

static void test_expunge_deleted(const char *dir)
{
	struct mix_index *idx;
	struct mix_commit_result res;
	struct mix_uid_range r[2] = { { 4, 10 }, { 12, 12 } };
	struct mix_txn *t;
	uint64_t before;
	int ret;

	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	tu_append(idx, 12, 0);
	store(idx, 2, 3, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, NULL);
	store(idx, 5, 5, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, NULL);
	store(idx, 9, 9, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, NULL);
	before = tu_highest_modseq(idx);
	ret = xdel(idx, NULL, 0, &res);
	ok(ret == 0 && tu_set_is(res.expunged, res.expunged_count, "2:3,5,9"),
	   "EXPUNGE removes the \\Deleted messages and names them: %s "
	   "(expected 2:3,5,9)", tu_fmt_set(res.expunged, res.expunged_count));
	ok(res.modseq > before && tu_highest_modseq(idx) == res.modseq,
	   "and raises HIGHESTMODSEQ to its modseq");
	is_str(uids_now(idx), "1,4,6:8,10:12", "left: the others");
	mix_commit_result_free(&res);
	ok(res.expunged == NULL && res.expunged_count == 0,
	   "mix_commit_result_free clears the expunged set");

	store(idx, 1, 1, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, NULL);
	store(idx, 4, 4, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, NULL);
	store(idx, 6, 8, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, NULL);
	store(idx, 11, 12, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, NULL);
	ret = xdel(idx, r, 2, &res);
	ok(ret == 0 && tu_set_is(res.expunged, res.expunged_count, "4,6:8,12"),
	   "UID EXPUNGE 4:10,12 removes only those: %s (expected 4,6:8,12)",
	   tu_fmt_set(res.expunged, res.expunged_count));
	is_str(uids_now(idx), "1,10:11", "1 and 11 keep \\Deleted, stay");
	mix_commit_result_free(&res);

	before = tu_highest_modseq(idx);
	r[0].first = r[0].last = 10;
	ret = xdel(idx, r, 1, &res);
	ok(ret == 0 && res.no_changes && res.expunged == NULL &&
	   res.modseq == before, "nothing \\Deleted in the set: no change, "
	   "no expunged set, HIGHESTMODSEQ kept (%d %u)", res.no_changes,
	   res.expunged_count);

	/* the transaction's own order counts */
	mix_txn_begin(idx, &t);
	r[0].first = r[0].last = 1;
	mix_txn_flags(t, r, 1, MIX_MODIFY_REMOVE, MIX_FLAG_DELETED);
	r[0].first = r[0].last = 10;
	mix_txn_flags(t, r, 1, MIX_MODIFY_ADD, MIX_FLAG_DELETED);
	mix_txn_expunge_deleted(t, NULL, 0);
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	ok(ret == 0 && tu_set_is(res.expunged, res.expunged_count, "10:11"),
	   "-\\Deleted 1, +\\Deleted 10, EXPUNGE in one transaction: %s "
	   "(expected 10:11)", tu_fmt_set(res.expunged, res.expunged_count));
	mix_commit_result_free(&res);
	is_str(uids_now(idx), "1", "left: 1");

	{
		struct mix_uid_range *xr = NULL;
		uint32_t xn = 0;
		mix_read_lock();
		ret = mix_snap_expunged_since(mix_index_snap(idx), before,
					      &xr, &xn, NULL);
		mix_read_unlock();
		ok(ret == 1 && tu_set_is(xr, xn, "10:11"),
		   "the expunge history has them: %s", tu_fmt_set(xr, xn));
		free(xr);
	}
	ret = mix_txn_begin(idx, &t);
	if (ret == 0) {
		struct mix_uid_range bad = { 5, 2 };
		ok(mix_txn_expunge_deleted(t, &bad, 1) == MIX_EINVAL &&
		   mix_txn_expunge_deleted(t, NULL, 3) == MIX_EINVAL,
		   "a bad range or NULL ranges with a count: MIX_EINVAL");
		mix_txn_abort(&t);
	}
	mix_index_close(&idx);
	if (mix_index_open(engine, dir, 0, &idx) < 0)
		BAIL("reopen: %s", mix_last_error());
	is_str(uids_now(idx), "1", "after reopen (replay/checkpoint): 1");
	mix_index_close(&idx);
}

/* ---- the expunge race ------------------------------------------------------- */

#define RX_MSGS 12
#define RX_TOGGLERS 2
#define RX_EXPUNGERS 2
#define RX_TOGGLES 12   /* per toggler and round */
#define RX_EXPUNGES 4   /* per expunger and round */
#define RX_EVENTS (RX_TOGGLES + RX_EXPUNGES * RX_MSGS + RX_MSGS)

/* An effective change of one message: \Deleted set (1) or cleared (0),
 * or expunged (2), by the commit with modseq. */
struct rx_event {
	uint64_t modseq;
	uint32_t uid;
	int what;
};

struct rx_thread {
	int id;
	uint64_t rng;
	struct rx_event ev[RX_EVENTS];
	uint32_t nev;
	int errors;
};

static struct mix_index *rx_idx;
static pthread_barrier_t rx_barrier;
static uint32_t rx_uid0; /* first UID of the round */
static uint32_t rx_rounds;

static void rx_note(struct rx_thread *th, const struct mix_commit_result *res,
		    const struct mix_uid_range *set, uint32_t n, int what)
{
	uint32_t i, u;
	for (i = 0; i < n; i++)
		for (u = set[i].first; u <= set[i].last; u++) {
			if (th->nev == RX_EVENTS) {
				th->errors++;
				return;
			}
			th->ev[th->nev].modseq = res->modseq;
			th->ev[th->nev].uid = u;
			th->ev[th->nev++].what = what;
		}
}

static void rx_toggle(struct rx_thread *th)
{
	struct mix_commit_result res;
	uint32_t uid = rx_uid0 + tu_rand_below(&th->rng, RX_MSGS);
	int set = (int)tu_rand_below(&th->rng, 2);
	if (store(rx_idx, uid, uid, set ? MIX_MODIFY_ADD : MIX_MODIFY_REMOVE,
		  MIX_FLAG_DELETED, 1, &res) < 0) {
		th->errors++;
		return;
	}
	/* only an effective change is an event (the changed set says) */
	rx_note(th, &res, res.changed, res.changed_count, set);
	mix_commit_result_free(&res);
}

static void rx_expunge(struct rx_thread *th)
{
	struct mix_commit_result res;
	/* one expunger uses UID EXPUNGE on the round's UIDs, one EXPUNGE */
	struct mix_uid_range r = { rx_uid0, rx_uid0 + RX_MSGS - 1 };
	if (xdel(rx_idx, th->id % 2 ? &r : NULL, th->id % 2, &res) < 0) {
		th->errors++;
		return;
	}
	rx_note(th, &res, res.expunged, res.expunged_count, 2);
	mix_commit_result_free(&res);
}

static void *rx_run(void *arg)
{
	struct rx_thread *th = arg;
	uint32_t round;
	int i;
	for (round = 0; round < rx_rounds; round++) {
		pthread_barrier_wait(&rx_barrier); /* main appended */
		th->nev = 0;
		for (i = 0; i < RX_TOGGLES; i++) {
			if (th->id < RX_TOGGLERS)
				rx_toggle(th);
			else if (i % (RX_TOGGLES / RX_EXPUNGES) == 0)
				rx_expunge(th);
		}
		pthread_barrier_wait(&rx_barrier); /* main checks */
		pthread_barrier_wait(&rx_barrier);
	}
	return NULL;
}

static int ev_cmp(const void *a, const void *b)
{
	const struct rx_event *x = a, *y = b;
	return x->modseq < y->modseq ? -1 : x->modseq > y->modseq;
}

/* One round: the events of every thread plus a final EXPUNGE, in modseq
 * order (the writer's order), must be a valid history of each message:
 * an expunge only while \Deleted is set, at most one, nothing after it,
 * and the message present at the end exactly when no expunge names it. */
static int rx_check(struct rx_thread *th, uint32_t round, int *bad)
{
	static struct rx_event all[(RX_TOGGLERS + RX_EXPUNGERS + 1) *
				   RX_EVENTS];
	struct rx_thread fin = { .id = 0 };
	struct mix_commit_result res;
	uint32_t n = 0, i, k;
	int state[RX_MSGS], gone[RX_MSGS], errors = 0;

	if (xdel(rx_idx, NULL, 0, &res) < 0)
		errors++;
	else
		rx_note(&fin, &res, res.expunged, res.expunged_count, 2);
	mix_commit_result_free(&res);
	for (k = 0; k < RX_TOGGLERS + RX_EXPUNGERS; k++) {
		memcpy(all + n, th[k].ev, th[k].nev * sizeof(*all));
		n += th[k].nev;
		errors += th[k].errors;
	}
	memcpy(all + n, fin.ev, fin.nev * sizeof(*all));
	n += fin.nev;
	qsort(all, n, sizeof(*all), ev_cmp);
	memset(state, 0, sizeof(state));
	memset(gone, 0, sizeof(gone));
	for (i = 0; i < n; i++) {
		uint32_t m = all[i].uid - rx_uid0;
		if (m >= RX_MSGS) {
			if ((*bad)++ < 5)
				diag("round %u: UID %u of another round", round,
				     all[i].uid);
			continue;
		}
		if (gone[m] || (all[i].what == 2 && !state[m])) {
			if ((*bad)++ < 5)
				diag("round %u uid %u: %s at modseq %llx while "
				     "%s", round, all[i].uid,
				     all[i].what == 2 ? "expunged" : "toggled",
				     (unsigned long long)all[i].modseq,
				     gone[m] ? "expunged already"
					     : "\\Deleted clear");
			continue;
		}
		if (all[i].what == 2)
			gone[m] = 1;
		else
			state[m] = all[i].what;
	}
	mix_read_lock();
	for (k = 0; k < RX_MSGS; k++) {
		int present = mix_snap_lookup_uid(mix_index_snap(rx_idx),
						  rx_uid0 + k, NULL);
		if (present == gone[k] && (*bad)++ < 5)
			diag("round %u uid %u: present %d, expected %d", round,
			     rx_uid0 + k, present, !gone[k]);
		if (!gone[k] && state[k] && (*bad)++ < 5)
			diag("round %u uid %u: \\Deleted after the final "
			     "EXPUNGE", round, rx_uid0 + k);
	}
	mix_read_unlock();
	return errors;
}

static void test_expunge_race(const char *dir)
{
	struct rx_thread th[RX_TOGGLERS + RX_EXPUNGERS];
	pthread_t tid[RX_TOGGLERS + RX_EXPUNGERS];
	uint32_t round, k, nthreads = RX_TOGGLERS + RX_EXPUNGERS;
	int bad = 0, errors = 0;
	uint64_t expunged_total = 0;

	rx_rounds = (uint32_t)(150 * tu_scale());
	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &rx_idx) < 0)
		BAIL("open: %s", mix_last_error());
	pthread_barrier_init(&rx_barrier, NULL, nthreads + 1);
	for (k = 0; k < nthreads; k++) {
		memset(&th[k], 0, sizeof(th[k]));
		th[k].id = (int)k;
		th[k].rng = seed + k * 7919 + 1;
		pthread_create(&tid[k], NULL, rx_run, &th[k]);
	}
	for (round = 0; round < rx_rounds; round++) {
		mix_read_lock();
		rx_uid0 = mix_snap_next_uid(mix_index_snap(rx_idx));
		mix_read_unlock();
		tu_append(rx_idx, RX_MSGS, 0);
		pthread_barrier_wait(&rx_barrier);
		pthread_barrier_wait(&rx_barrier);
		for (k = RX_TOGGLERS; k < nthreads; k++)
			expunged_total += th[k].nev;
		errors += rx_check(th, round, &bad);
		pthread_barrier_wait(&rx_barrier);
	}
	for (k = 0; k < nthreads; k++)
		pthread_join(tid[k], NULL);
	ok(errors == 0 && bad == 0, "%u rounds x %d messages, %d threads "
	   "toggling \\Deleted and %d expunging: every message expunged at "
	   "most once, only while \\Deleted, present exactly when no "
	   "expunge named it (%llu expunged by the racers; errors %d, "
	   "bad %d)", rx_rounds, RX_MSGS, RX_TOGGLERS, RX_EXPUNGERS,
	   (unsigned long long)expunged_total, errors, bad);
	ok(expunged_total > 0, "the racing expungers expunged something "
	   "(%llu)", (unsigned long long)expunged_total);
	pthread_barrier_destroy(&rx_barrier);
	mix_index_close(&rx_idx);
}

/* ---- STORE's changed set ----------------------------------------------------- */

static void test_changed(const char *dir)
{
	struct mix_index *idx;
	struct mix_commit_result res;
	struct mix_txn *t;
	struct mix_uid_range r = { 1, 10 };
	const char *kw[] = { "$Junk", NULL };
	uint64_t m, ms5;
	int ret, good;
	uint32_t u;

	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	tu_append(idx, 10, 0);
	store(idx, 1, 5, MIX_MODIFY_ADD, MIX_FLAG_SEEN, 0, NULL);
	ms5 = tu_modseq_of(idx, 5);
	ret = store(idx, 1, 10, MIX_MODIFY_ADD, MIX_FLAG_SEEN, 1, &res);
	ok(ret == 0 && tu_set_is(res.changed, res.changed_count, "6:10"),
	   "STORE 1:10 +FLAGS \\Seen, 1:5 had it: changed %s (expected "
	   "6:10)", tu_fmt_set(res.changed, res.changed_count));
	good = tu_modseq_of(idx, 5) == ms5;
	for (u = 6; u <= 10; u++)
		good &= tu_modseq_of(idx, u) == res.modseq;
	ok(good, "the changed messages have the result's modseq, the others "
	   "kept theirs");
	mix_commit_result_free(&res);

	ret = store(idx, 1, 10, MIX_MODIFY_REMOVE, MIX_FLAG_SEEN, 0, &res);
	ok(ret == 0 && res.changed == NULL && res.changed_count == 0 &&
	   res.expunged == NULL, "not asked for: no changed set");
	ret = store(idx, 1, 10, MIX_MODIFY_REMOVE, MIX_FLAG_SEEN, 1, &res);
	ok(ret == 0 && res.no_changes && res.changed == NULL,
	   "a no-op STORE reports nothing changed (%u)", res.changed_count);
	ret = store(idx, 3, 4, MIX_MODIFY_ADD, MIX_FLAG_DIRTY, 1, &res);
	ok(ret == 0 && res.changed == NULL, "a DIRTY-only change is not "
	   "reported (%s)", tu_fmt_set(res.changed, res.changed_count));
	mix_commit_result_free(&res);
	ret = store(idx, 2, 4, MIX_MODIFY_ADD, MIX_FLAG_DIRTY |
		    MIX_FLAG_FLAGGED, 1, &res);
	ok(ret == 0 && tu_set_is(res.changed, res.changed_count, "2:4"),
	   "DIRTY with a visible flag: reported (%s)",
	   tu_fmt_set(res.changed, res.changed_count));
	mix_commit_result_free(&res);

	/* keywords, add and replace */
	mix_txn_begin(idx, &t);
	mix_txn_want_changed(t);
	r.first = 7, r.last = 8;
	mix_txn_keywords(t, &r, 1, MIX_MODIFY_ADD, kw);
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	ok(ret == 0 && tu_set_is(res.changed, res.changed_count, "7:8"),
	   "+KEYWORD on 7:8: %s", tu_fmt_set(res.changed, res.changed_count));
	mix_commit_result_free(&res);
	mix_txn_begin(idx, &t);
	mix_txn_want_changed(t);
	r.first = 6, r.last = 9;
	mix_txn_keywords(t, &r, 1, MIX_MODIFY_REPLACE, kw);
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	ok(ret == 0 && tu_set_is(res.changed, res.changed_count, "6,9"),
	   "KEYWORDS ($Junk) on 6:9, 7:8 had exactly that: %s (expected "
	   "6,9)", tu_fmt_set(res.changed, res.changed_count));
	mix_commit_result_free(&res);

	/* UNCHANGEDSINCE: MODIFIED and changed split the request */
	m = tu_highest_modseq(idx);
	store(idx, 2, 2, MIX_MODIFY_ADD, MIX_FLAG_ANSWERED, 0, NULL);
	store(idx, 4, 4, MIX_MODIFY_ADD, MIX_FLAG_ANSWERED, 0, NULL);
	mix_txn_begin(idx, &t);
	mix_txn_want_changed(t);
	r.first = 1, r.last = 10;
	mix_txn_flags_unchangedsince(t, &r, 1, MIX_MODIFY_ADD,
				     MIX_FLAG_DRAFT, m);
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	ok(ret == 0 && tu_set_is(res.modified, res.modified_count, "2,4") &&
	   tu_set_is(res.changed, res.changed_count, "1,3,5:10"),
	   "STORE 1:10 (UNCHANGEDSINCE m) +FLAGS \\Draft after 2 and 4 "
	   "changed: MODIFIED %s, changed %s (expected 2,4 and 1,3,5:10: "
	   "disjoint, together the request)",
	   tu_fmt_set(res.modified, res.modified_count),
	   tu_fmt_set(res.changed, res.changed_count));
	mix_commit_result_free(&res);

	/* changed, then expunged by the same transaction: expunged only */
	mix_txn_begin(idx, &t);
	mix_txn_want_changed(t);
	r.first = 1, r.last = 10;
	mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_DELETED);
	r.first = 4, r.last = 5;
	mix_txn_expunge(t, &r, 1);
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	ok(ret == 0 && tu_set_is(res.changed, res.changed_count, "1:3,6:10") &&
	   tu_set_is(res.expunged, res.expunged_count, "4:5"),
	   "+\\Deleted 1:10 then expunge 4:5: changed %s, expunged %s",
	   tu_fmt_set(res.changed, res.changed_count),
	   tu_fmt_set(res.expunged, res.expunged_count));
	mix_commit_result_free(&res);
	mix_index_close(&idx);
}

/* ---- \Recent claims ------------------------------------------------------------ */

static int claim(struct mix_index *idx, uint32_t *first_r, uint32_t *last_r)
{
	struct mix_txn *t;
	struct mix_commit_result res;
	int ret;
	if (mix_txn_begin(idx, &t) < 0 || mix_txn_claim_recent(t) < 0)
		return -1;
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	*first_r = ret == 0 ? res.recent_first : 0;
	*last_r = ret == 0 ? res.recent_last : 0;
	return ret;
}

#define RC_CLAIMERS 3

static struct mix_index *rc_idx;
static uint32_t rc_stop;
static uint8_t *rc_owner;   /* by UID: 0 none, else claimer + 1 */
static uint32_t rc_cap;
static int rc_bad, rc_errors;

static void rc_mark(int me, uint32_t f, uint32_t l)
{
	uint32_t u;
	if (f == 0)
		return;
	for (u = f; u <= l; u++) {
		uint8_t prev;
		if (u >= rc_cap) {
			__atomic_add_fetch(&rc_errors, 1, __ATOMIC_RELAXED);
			return;
		}
		prev = __atomic_exchange_n(&rc_owner[u], (uint8_t)(me + 1),
					   __ATOMIC_RELAXED);
		if (prev && __atomic_add_fetch(&rc_bad, 1,
					       __ATOMIC_RELAXED) <= 5)
			diag("UID %u claimed by %d and %d", u, prev - 1, me);
	}
}

static void *rc_run(void *arg)
{
	int me = (int)(uintptr_t)arg;
	uint32_t f, l;
	while (!__atomic_load_n(&rc_stop, __ATOMIC_ACQUIRE)) {
		if (claim(rc_idx, &f, &l) < 0) {
			__atomic_add_fetch(&rc_errors, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		rc_mark(me, f, l);
	}
	return NULL;
}

static void test_recent(const char *dir)
{
	struct mix_index *idx;
	struct mix_snap_counts c;
	pthread_t th[RC_CLAIMERS];
	uint32_t f = 0, l = 0, u, i, appends, next, missing = 0;
	uint64_t rng = seed ^ 0x5ec;
	int ret;

	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	tu_append(idx, 5, 0);
	ret = claim(idx, &f, &l);
	ok(ret == 0 && f == 1 && l == 5, "first claim gets 1:5 (got %u:%u)",
	   f, l);
	ret = claim(idx, &f, &l);
	ok(ret == 0 && f == 0 && l == 0, "second claim gets nothing (got "
	   "%u:%u)", f, l);
	tu_append(idx, 3, 0);
	ret = claim(idx, &f, &l);
	ok(ret == 0 && f == 6 && l == 8, "after 3 appends: 6:8 (got %u:%u)",
	   f, l);
	mix_read_lock();
	mix_snap_counts(mix_index_snap(idx), &c);
	mix_read_unlock();
	is(c.first_recent_uid, 9, "first_recent_uid is next_uid");
	mix_index_close(&idx);
	if (mix_index_open(engine, dir, 0, &idx) < 0)
		BAIL("reopen: %s", mix_last_error());
	ret = claim(idx, &f, &l);
	ok(ret == 0 && f == 0, "after reopen nothing is claimed twice (got "
	   "%u:%u)", f, l);

	/* racing claimers while messages arrive */
	appends = (uint32_t)(300 * tu_scale());
	rc_cap = 16 + appends * 4;
	rc_owner = calloc(rc_cap, 1);
	rc_idx = idx;
	for (i = 0; i < RC_CLAIMERS; i++)
		pthread_create(&th[i], NULL, rc_run, (void *)(uintptr_t)i);
	for (i = 0; i < appends; i++)
		tu_append(idx, 1 + tu_rand_below(&rng, 3), 0);
	__atomic_store_n(&rc_stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < RC_CLAIMERS; i++)
		pthread_join(th[i], NULL);
	if (claim(idx, &f, &l) == 0)
		rc_mark(RC_CLAIMERS, f, l);
	else
		rc_errors++;
	mix_read_lock();
	next = mix_snap_next_uid(mix_index_snap(idx));
	mix_read_unlock();
	for (u = 9; u < next && u < rc_cap; u++)
		if (!rc_owner[u] && missing++ < 5)
			diag("UID %u claimed by nobody", u);
	ok(rc_bad == 0 && missing == 0 && rc_errors == 0 && next < rc_cap,
	   "%d claimers racing %u appends: every UID 9..%u claimed exactly "
	   "once (twice: %d, never: %u, errors %d)", RC_CLAIMERS, appends,
	   next - 1, rc_bad, missing, rc_errors);
	free(rc_owner);
	mix_index_close(&idx);
}

/* ---- modseq-neutral extensions ------------------------------------------------ */

struct nstate {
	uint64_t modseq[6], highest, cache[6];
	uint8_t hdr[16];
};

static void nstate(struct mix_index *idx, uint32_t cache_id,
		   struct nstate *st)
{
	const struct mix_snap *s;
	struct mix_record rec;
	const void *p;
	uint32_t u;
	memset(st, 0, sizeof(*st));
	mix_read_lock();
	s = mix_index_snap(idx);
	for (u = 1; u <= 5; u++)
		if (mix_snap_lookup_uid(s, u, &rec)) {
			st->modseq[u] = rec.modseq;
			if ((p = mix_record_ext(s, &rec, cache_id, NULL)))
				memcpy(&st->cache[u], p, 8);
		}
	st->highest = mix_snap_highest_modseq(s);
	if ((p = mix_snap_ext_hdr(s, cache_id, NULL)))
		memcpy(st->hdr, p, sizeof(st->hdr));
	mix_read_unlock();
}

static int nsame(const struct nstate *a, const struct nstate *b,
		 const char *what)
{
	uint32_t u;
	for (u = 1; u <= 5; u++)
		if (a->modseq[u] != b->modseq[u] || a->cache[u] != b->cache[u]) {
			diag("%s: uid %u modseq %llx cache %llx (expected %llx "
			     "%llx)", what, u, (unsigned long long)a->modseq[u],
			     (unsigned long long)a->cache[u],
			     (unsigned long long)b->modseq[u],
			     (unsigned long long)b->cache[u]);
			return 0;
		}
	if (a->highest != b->highest || memcmp(a->hdr, b->hdr, 16)) {
		diag("%s: HIGHESTMODSEQ %llx (expected %llx) or header data "
		     "differs", what, (unsigned long long)a->highest,
		     (unsigned long long)b->highest);
		return 0;
	}
	return 1;
}

static int ext_set(struct mix_index *idx, uint32_t uid, uint32_t ext,
		   uint64_t v, struct mix_commit_result *res)
{
	struct mix_txn *t;
	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	if (mix_txn_ext_set(t, uid, ext, &v, 8) < 0) {
		mix_txn_abort(&t);
		return -1;
	}
	return mix_txn_commit(&t, MIX_DURABILITY_NONE, res);
}

static void test_neutral(const char *dir)
{
	struct mix_index *idx, *ro;
	struct mix_commit_result res;
	struct nstate a, b, live;
	struct mix_txn *t;
	struct mix_uid_range r4 = { 4, 4 };
	uint32_t cache, vis, id2, nid = 0;
	uint64_t v = 0x1122334455667788ull;
	int ret;

	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	ret = mix_index_ext_register_flags(idx, "test.cache", 8, 8, 16,
					   MIX_EXT_FLAG_NO_MODSEQ, &cache);
	is(ret, 0, "neutral extension registered: %s",
	   ret ? mix_last_error() : "ok");
	ret = mix_index_ext_register(idx, "test.vis", 8, 8, 0, &vis);
	ok(ret == 0 && vis != cache, "a normal one beside it");
	tu_append(idx, 5, 0);
	/* the checkpoint holds the registration; what follows is replayed */
	mix_index_close(&idx);
	if (mix_index_open(engine, dir, 0, &idx) < 0)
		BAIL("reopen: %s", mix_last_error());

	ok(mix_index_ext_register_flags(idx, "test.cache", 8, 8, 16,
					MIX_EXT_FLAG_NO_MODSEQ, &id2) == 0 &&
	   id2 == cache, "registering it again with the flag: the same id");
	ok(mix_index_ext_register(idx, "test.cache", 8, 8, 16, &id2) ==
	   MIX_EINVAL && mix_index_ext_register_flags(idx, "test.vis", 8, 8,
	   0, MIX_EXT_FLAG_NO_MODSEQ, &id2) == MIX_EINVAL,
	   "a registration that differs in neutrality: MIX_EINVAL");
	ok(mix_index_ext_register_flags(idx, "test.x", 8, 8, 0, 0x80, &id2) ==
	   MIX_EINVAL, "unknown flags: MIX_EINVAL");
	mix_read_lock();
	mix_snap_ext_lookup(mix_index_snap(idx), "mix.neutral", &nid);
	mix_read_unlock();
	ok(nid >= MIX_EXT_FIRST && ext_set(idx, 1, nid, 0, NULL) < 0,
	   "the engine's mix.neutral (id %u) is not the caller's to write",
	   nid);

	nstate(idx, cache, &a);
	ret = ext_set(idx, 2, cache, v, &res);
	nstate(idx, cache, &b);
	ok(ret == 0 && !res.no_changes && b.cache[2] == v,
	   "neutral record data written (no_changes %d)", res.no_changes);
	ok(b.modseq[2] == a.modseq[2] && b.highest == a.highest &&
	   res.modseq == a.highest, "its message keeps its modseq %llx, "
	   "HIGHESTMODSEQ stays %llx, the commit reports it (%llx, %llx, "
	   "%llx)", (unsigned long long)a.modseq[2],
	   (unsigned long long)a.highest, (unsigned long long)b.modseq[2],
	   (unsigned long long)b.highest, (unsigned long long)res.modseq);
	mix_txn_begin(idx, &t);
	mix_txn_ext_hdr_set(t, cache, 4, &v, 8);
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	nstate(idx, cache, &b);
	ok(ret == 0 && b.highest == a.highest && memcmp(b.hdr + 4, &v, 8) == 0,
	   "neutral header data written, HIGHESTMODSEQ kept");
	ret = ext_set(idx, 3, vis, v, &res);
	nstate(idx, cache, &b);
	ok(ret == 0 && b.modseq[3] == res.modseq && res.modseq > a.highest &&
	   b.highest == res.modseq, "a normal extension's data raises both");
	/* both in one transaction, with a flag change */
	a = b;
	mix_txn_begin(idx, &t);
	mix_txn_ext_set(t, 1, cache, &v, 8);
	mix_txn_flags(t, &r4, 1, MIX_MODIFY_ADD, MIX_FLAG_SEEN);
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	nstate(idx, cache, &b);
	ok(ret == 0 && b.modseq[1] == a.modseq[1] && b.modseq[4] == res.modseq
	   && b.highest == res.modseq && b.cache[1] == v, "neutral data beside "
	   "\\Seen: only the \\Seen message gets the modseq");
	/* and a neutral-only transaction last, so the log ends with one */
	v++;
	ext_set(idx, 5, cache, v, NULL);
	nstate(idx, cache, &live);
	ok(live.highest == res.modseq && live.cache[5] == v, "a neutral-only "
	   "transaction at the end: HIGHESTMODSEQ still %llx",
	   (unsigned long long)res.modseq);

	ret = mix_index_open(engine, dir, MIX_OPEN_READONLY, &ro);
	is(ret, 0, "read-only open replays the log: %s",
	   ret ? mix_last_error() : "ok");
	if (ret == 0) {
		nstate(ro, cache, &b);
		ok(nsame(&b, &live, "replayed"), "replay gives the live data, "
		   "modseqs and HIGHESTMODSEQ");
		mix_index_close(&ro);
	}
	mix_index_close(&idx);
	if (mix_index_open(engine, dir, 0, &idx) < 0)
		BAIL("reopen: %s", mix_last_error());
	nstate(idx, cache, &b);
	ok(nsame(&b, &live, "reopened"), "after close and reopen: the same");
	v++;
	ret = ext_set(idx, 2, cache, v, &res);
	nstate(idx, cache, &b);
	ok(ret == 0 && b.highest == live.highest && b.modseq[2] ==
	   live.modseq[2], "and still neutral after the checkpoint");
	mix_index_close(&idx);
}

int main(void)
{
	char *d1 = tu_tmpdir("imap-x"), *d2 = tu_tmpdir("imap-race");
	char *d3 = tu_tmpdir("imap-chg"), *d4 = tu_tmpdir("imap-rec");
	char *d5 = tu_tmpdir("imap-neutral");

	seed = tu_seed();
	if (mix_engine_create(NULL, &engine) < 0)
		BAIL("engine");
	test_expunge_deleted(d1);
	test_expunge_race(d2);
	test_changed(d3);
	test_recent(d4);
	test_neutral(d5);
	mix_engine_free(&engine);
	tu_rmdir_r(d1);
	tu_rmdir_r(d2);
	tu_rmdir_r(d3);
	tu_rmdir_r(d4);
	tu_rmdir_r(d5);
	free(d5);
	free(d1);
	free(d2);
	free(d3);
	free(d4);
	return tap_done();
}
