/*
 * CONDSTORE and QRESYNC at the engine level (RFC 7162; engine/modseq.c,
 * engine/txn-apply.c; docs/condstore.md).  The RFC's examples restated
 * against the engine:
 *  - HIGHESTMODSEQ of a mailbox that never changed, raised by every
 *    change and by expunges; a no-op STORE raises nothing;
 *  - STORE (UNCHANGEDSINCE m): messages modified after m are left alone
 *    and come back as MODIFIED, the others change; UNCHANGEDSINCE 0
 *    fails for every message;
 *  - FETCH (CHANGEDSINCE m) and SEARCH MODSEQ with flag/keyword filters;
 *  - SELECT (QRESYNC ...): VANISHED (EARLIER) and changed UIDs, with and
 *    without known UIDs, precise and fallback (bounded history, sequence
 *    match data), UIDVALIDITY mismatch;
 *  - the expunge history survives close/reopen (it is persisted);
 *  - MIX_FLAG_DIRTY is internal: changing only it raises no modseq,
 *    live, after replay and after reopen;
 *  - two threads racing conditional stores on the same messages: for
 *    every message and round exactly one wins, and each store's changed
 *    set (mix_txn_want_changed) is exactly the messages it did not get
 *    back as MODIFIED.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

static struct mix_engine *engine;

static int store(struct mix_index *idx, uint32_t first, uint32_t last,
		 enum mix_modify mod, uint8_t flags, int cond, uint64_t m,
		 struct mix_commit_result *res)
{
	struct mix_txn *t;
	struct mix_uid_range r = { first, last };
	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	if (cond)
		mix_txn_flags_unchangedsince(t, &r, 1, mod, flags, m);
	else
		mix_txn_flags(t, &r, 1, mod, flags);
	return mix_txn_commit(&t, MIX_DURABILITY_NONE, res);
}

static int expunge(struct mix_index *idx, uint32_t first, uint32_t last,
		   struct mix_commit_result *res)
{
	struct mix_txn *t;
	struct mix_uid_range r = { first, last };
	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	mix_txn_expunge(t, &r, 1);
	return mix_txn_commit(&t, MIX_DURABILITY_NONE, res);
}

static void test_highestmodseq_and_store(struct mix_index *idx)
{
	struct mix_commit_result res, a;
	uint64_t h0 = tu_highest_modseq(idx), m;
	ok(h0 > 0 && (h0 & 0xffffffffu) == 0, "HIGHESTMODSEQ of a mailbox that "
	   "never changed: (indexid + first log seq) << 32 = %llx",
	   (unsigned long long)h0);
	tu_append(idx, 7, 0);
	ok(tu_highest_modseq(idx) > h0, "appends raise HIGHESTMODSEQ");
	/* RFC 7162 §3.1.3 example: messages 1:7; some modified later */
	store(idx, 2, 2, MIX_MODIFY_ADD, MIX_FLAG_FLAGGED, 0, 0, NULL);
	m = tu_highest_modseq(idx);
	store(idx, 5, 5, MIX_MODIFY_ADD, MIX_FLAG_ANSWERED, 0, 0, NULL);
	store(idx, 7, 7, MIX_MODIFY_ADD, MIX_FLAG_SEEN, 0, 0, NULL);
	is(store(idx, 1, 7, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 1, m, &res), 0,
	   "STORE 1:7 (UNCHANGEDSINCE m) +FLAGS (\\Deleted)");
	ok(res.modified_count == 2 && res.modified[0].first == 5 &&
	   res.modified[0].last == 5 && res.modified[1].first == 7,
	   "MODIFIED 5,7: %s", tu_fmt_set(res.modified, res.modified_count));
	{
		struct mix_record rec;
		int good = 1;
		uint32_t uid;
		mix_read_lock();
		for (uid = 1; uid <= 7; uid++) {
			mix_snap_lookup_uid(mix_index_snap(idx), uid, &rec);
			good &= !!(rec.flags & MIX_FLAG_DELETED) ==
				(uid != 5 && uid != 7);
		}
		mix_read_unlock();
		ok(good, "the others got \\Deleted, 5 and 7 did not");
	}
	mix_commit_result_free(&res);
	is(res.modified, NULL, "result freed");
	store(idx, 1, 3, MIX_MODIFY_ADD, MIX_FLAG_DRAFT, 1, 0, &res);
	ok(res.modified_count == 1 && res.modified[0].first == 1 &&
	   res.modified[0].last == 3 && res.no_changes,
	   "UNCHANGEDSINCE 0: every message fails (MODIFIED %s)",
	   tu_fmt_set(res.modified, res.modified_count));
	mix_commit_result_free(&res);
	{
		/* two conditional operations in one transaction: one MODIFIED
		 * set, sorted and merged */
		struct mix_txn *t;
		struct mix_uid_range r1 = { 4, 7 }, r2 = { 1, 5 };
		mix_txn_begin(idx, &t);
		mix_txn_flags_unchangedsince(t, &r1, 1, MIX_MODIFY_ADD,
					     MIX_FLAG_ANSWERED, 0);
		mix_txn_flags_unchangedsince(t, &r2, 1, MIX_MODIFY_ADD,
					     MIX_FLAG_ANSWERED, 0);
		mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
		ok(res.modified_count == 1 && res.modified[0].first == 1 &&
		   res.modified[0].last == 7, "MODIFIED of two operations "
		   "merged: %s", tu_fmt_set(res.modified, res.modified_count));
		mix_commit_result_free(&res);
	}
	m = tu_modseq_of(idx, 1);
	store(idx, 1, 1, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, 0, &a);
	ok(a.no_changes && tu_modseq_of(idx, 1) == m &&
	   a.modseq == tu_highest_modseq(idx),
	   "a no-op STORE changes no modseq and reports no_changes");
	m = tu_highest_modseq(idx);
	ok(expunge(idx, 3, 3, &res) == 0 && res.modseq > m &&
	   tu_highest_modseq(idx) == res.modseq,
	   "an expunge raises HIGHESTMODSEQ to its modseq");
}

static void test_changedsince(struct mix_index *idx)
{
	struct mix_changed_iter it;
	struct mix_record rec;
	struct mix_filter f = { 0 };
	uint64_t m;
	uint32_t got[16], n = 0, kw;
	const char *kws[] = { "$Important", NULL };
	struct mix_txn *t;
	struct mix_uid_range r = { 6, 6 };

	m = tu_highest_modseq(idx);
	store(idx, 2, 2, MIX_MODIFY_REMOVE, MIX_FLAG_FLAGGED, 0, 0, NULL);
	store(idx, 4, 4, MIX_MODIFY_ADD, MIX_FLAG_FLAGGED, 0, 0, NULL);
	mix_txn_begin(idx, &t);
	mix_txn_keywords(t, &r, 1, MIX_MODIFY_ADD, kws);
	mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
	mix_read_lock();
	mix_changed_iter_init(&it, mix_index_snap(idx), m);
	while (n < 16 && mix_changed_iter_next(&it, NULL, &rec))
		got[n++] = rec.uid;
	ok(n == 3 && got[0] == 2 && got[1] == 4 && got[2] == 6,
	   "FETCH 1:* (CHANGEDSINCE m): UIDs 2,4,6 (%u found)", n);
	f.flags_set = MIX_FLAG_FLAGGED;
	mix_changed_iter_init(&it, mix_index_snap(idx), m);
	n = 0;
	while (n < 16 && mix_changed_iter_next(&it, &f, &rec))
		got[n++] = rec.uid;
	ok(n == 1 && got[0] == 4, "SEARCH MODSEQ m FLAGGED: UID 4");
	ok(mix_snap_keyword_lookup(mix_index_snap(idx), "$Important", &kw),
	   "keyword known");
	memset(&f, 0, sizeof(f));
	f.keywords = &kw;
	f.keyword_count = 1;
	mix_changed_iter_init(&it, mix_index_snap(idx), m);
	n = 0;
	while (n < 16 && mix_changed_iter_next(&it, &f, &rec))
		got[n++] = rec.uid;
	ok(n == 1 && got[0] == 6, "SEARCH MODSEQ m KEYWORD $Important: UID 6");
	mix_changed_iter_init(&it, mix_index_snap(idx),
			      mix_snap_highest_modseq(mix_index_snap(idx)));
	ok(!mix_changed_iter_next(&it, NULL, &rec),
	   "nothing changed since HIGHESTMODSEQ");
	mix_read_unlock();
}

static void test_qresync(struct mix_index *idx, const char *dir)
{
	struct mix_qresync_params p = { 0 };
	struct mix_qresync_result res;
	struct mix_txn *t;
	uint64_t m;
	uint32_t uidv;
	struct mix_uid_range known[] = { { 1, 2 }, { 8, 20 } };

	mix_txn_begin(idx, &t);
	mix_txn_hdr_set(t, MIX_HDR_UID_VALIDITY, 67890007);
	mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
	tu_append(idx, 10, 0);           /* UIDs 8..17 */
	m = tu_highest_modseq(idx);
	expunge(idx, 1, 1, NULL);
	expunge(idx, 9, 10, NULL);
	store(idx, 12, 12, MIX_MODIFY_ADD, MIX_FLAG_SEEN, 0, 0, NULL);
	mix_read_lock();
	uidv = mix_snap_uid_validity(mix_index_snap(idx));
	p.uid_validity = uidv;
	p.modseq = m;
	is(mix_snap_qresync(mix_index_snap(idx), &p, &res), 0, "qresync");
	ok(res.precise && res.vanished_count == 2 &&
	   res.vanished[0].first == 1 && res.vanished[0].last == 1 &&
	   res.vanished[1].first == 9 && res.vanished[1].last == 10,
	   "VANISHED (EARLIER) 1,9:10 precise: %s",
	   tu_fmt_set(res.vanished, res.vanished_count));
	ok(res.changed_count == 1 && res.changed[0].first == 12,
	   "changed: 12 (%s)", tu_fmt_set(res.changed, res.changed_count));
	mix_qresync_result_free(&res);
	p.known_uids = known;
	p.known_uids_count = 2;
	mix_snap_qresync(mix_index_snap(idx), &p, &res);
	ok(res.precise && res.vanished_count == 2 &&
	   res.vanished[0].first == 1 && res.vanished[1].first == 9,
	   "with known UIDs 1:2,8:20: VANISHED %s",
	   tu_fmt_set(res.vanished, res.vanished_count));
	mix_qresync_result_free(&res);
	p.uid_validity = uidv + 1;
	mix_snap_qresync(mix_index_snap(idx), &p, &res);
	ok(res.uid_validity_mismatch && !res.vanished && !res.changed,
	   "UIDVALIDITY mismatch: that fact and nothing else");
	mix_qresync_result_free(&res);
	mix_read_unlock();

	/* the history is persisted: same answer after reopen */
	mix_index_close(&idx);
	if (mix_index_open(engine, dir, 0, &idx) < 0)
		BAIL("reopen: %s", mix_last_error());
	mix_read_lock();
	p.uid_validity = uidv;
	p.known_uids = NULL;
	p.known_uids_count = 0;
	mix_snap_qresync(mix_index_snap(idx), &p, &res);
	ok(res.precise && res.vanished_count == 2 && res.vanished[1].first == 9,
	   "after reopen the expunge history still answers: %s",
	   tu_fmt_set(res.vanished, res.vanished_count));
	mix_qresync_result_free(&res);
	/* older than the history: the fallback */
	{
		struct mix_uid_range *ex;
		uint32_t n;
		uint64_t oldest;
		int r = mix_snap_expunged_since(mix_index_snap(idx), 1, &ex, &n,
						&oldest);
		ok(r == 0 && oldest > 1, "expunged since 1: cannot, oldest %llx",
		   (unsigned long long)oldest);
	}
	p.modseq = 1;
	{
		/* client's view: seq 1 = uid 2, seq 2 = uid 4, seq 5 = uid 8 */
		static const uint32_t seqs[] = { 1, 2, 5 }, uids[] = { 2, 4, 8 };
		p.match_seqs = seqs;
		p.match_uids = uids;
		p.match_count = 3;
	}
	mix_snap_qresync(mix_index_snap(idx), &p, &res);
	ok(!res.precise && res.vanished_count >= 1 &&
	   res.vanished[0].first == 9 && res.vanished[0].last == 10,
	   "fallback with sequence match data: VANISHED %s (above the last "
	   "matching pair)", tu_fmt_set(res.vanished, res.vanished_count));
	mix_qresync_result_free(&res);
	p.match_count = 0;
	mix_snap_qresync(mix_index_snap(idx), &p, &res);
	ok(!res.precise && res.vanished_count >= 2 &&
	   res.vanished[0].first == 1 && res.vanished[0].last == 1,
	   "fallback without: every missing UID below UIDNEXT: %s",
	   tu_fmt_set(res.vanished, res.vanished_count));
	mix_qresync_result_free(&res);
	mix_read_unlock();
	mix_index_close(&idx);
}

/* ---- DIRTY is internal ---------------------------------------------------- */

static uint8_t flags_of(struct mix_index *idx, uint32_t uid)
{
	struct mix_record rec;
	uint8_t v = 0;
	mix_read_lock();
	if (mix_snap_lookup_uid(mix_index_snap(idx), uid, &rec))
		v = rec.flags;
	mix_read_unlock();
	return v;
}

/* What a client could see of messages 1..5: flags, modseqs, HIGHEST. */
struct seen_state {
	uint8_t flags[6];
	uint64_t modseq[6];
	uint64_t highest;
};

static void seen_state(struct mix_index *idx, struct seen_state *st)
{
	uint32_t u;
	for (u = 1; u <= 5; u++) {
		st->flags[u] = flags_of(idx, u);
		st->modseq[u] = tu_modseq_of(idx, u);
	}
	st->highest = tu_highest_modseq(idx);
}

/* The same flags (DIRTY included), modseqs and HIGHESTMODSEQ in idx as in
 * want; prints the first difference. */
static int same_state(struct mix_index *idx, const struct seen_state *want,
		      const char *what)
{
	struct seen_state got;
	uint32_t u;
	seen_state(idx, &got);
	for (u = 1; u <= 5; u++)
		if (got.flags[u] != want->flags[u] ||
		    got.modseq[u] != want->modseq[u]) {
			diag("%s: uid %u flags 0x%02x modseq %llx (expected "
			     "0x%02x, %llx)", what, u, got.flags[u],
			     (unsigned long long)got.modseq[u], want->flags[u],
			     (unsigned long long)want->modseq[u]);
			return 0;
		}
	if (got.highest != want->highest) {
		diag("%s: HIGHESTMODSEQ %llx (expected %llx)", what,
		     (unsigned long long)got.highest,
		     (unsigned long long)want->highest);
		return 0;
	}
	return 1;
}

/* MIX_FLAG_DIRTY is index-internal (docs/condstore.md): setting or
 * clearing it alone changes no record modseq and not HIGHESTMODSEQ, live
 * and after replay (a read-only open applies the log tail) and after a
 * reopen; a visible flag change beside it still raises both. */
static void test_dirty(const char *dir)
{
	struct mix_commit_result res;
	struct mix_index *idx, *ro;
	struct mix_txn *t;
	struct mix_uid_range r1 = { 1, 1 }, r2 = { 2, 2 }, r3 = { 3, 3 };
	struct seen_state before, live;
	uint64_t h, m1;
	int ret;

	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	tu_append(idx, 5, 0);
	store(idx, 3, 3, MIX_MODIFY_ADD, MIX_FLAG_DIRTY | MIX_FLAG_SEEN, 0, 0,
	      NULL);
	/* the checkpoint holds the messages; what follows is replayed */
	mix_index_close(&idx);
	if (mix_index_open(engine, dir, 0, &idx) < 0)
		BAIL("reopen: %s", mix_last_error());
	seen_state(idx, &before);
	h = before.highest;
	m1 = before.modseq[1];

	ok(store(idx, 1, 2, MIX_MODIFY_ADD, MIX_FLAG_DIRTY, 0, 0, &res) == 0 &&
	   !res.no_changes && (flags_of(idx, 1) & MIX_FLAG_DIRTY),
	   "STORE 1:2 +DIRTY changes the records (no_changes %d)",
	   res.no_changes);
	is(tu_modseq_of(idx, 1), m1, "+DIRTY leaves the record's modseq");
	is(tu_highest_modseq(idx), h, "+DIRTY leaves HIGHESTMODSEQ");
	is(res.modseq, h, "and the commit reports HIGHESTMODSEQ as its "
	   "modseq");
	store(idx, 1, 1, MIX_MODIFY_REMOVE, MIX_FLAG_DIRTY, 0, 0, NULL);
	ok(!(flags_of(idx, 1) & MIX_FLAG_DIRTY) && tu_modseq_of(idx, 1) == m1 &&
	   tu_highest_modseq(idx) == h,
	   "-DIRTY: cleared, modseq and HIGHESTMODSEQ kept");
	/* REPLACE whose only effect is DIRTY: uid 3 has SEEN|DIRTY */
	store(idx, 3, 3, MIX_MODIFY_REPLACE, MIX_FLAG_SEEN, 0, 0, NULL);
	ok(flags_of(idx, 3) == MIX_FLAG_SEEN &&
	   tu_modseq_of(idx, 3) == before.modseq[3] &&
	   tu_highest_modseq(idx) == h,
	   "FLAGS (\\Seen) on \\Seen+DIRTY: only DIRTY changes, no modseq "
	   "moves");
	{
		/* conditional: DIRTY does not make a message "modified" */
		ok(store(idx, 2, 2, MIX_MODIFY_ADD, MIX_FLAG_FLAGGED, 1, h,
			 &res) == 0 && res.modified_count == 0,
		   "UNCHANGEDSINCE HIGHESTMODSEQ after a DIRTY change: not "
		   "MODIFIED (%u)", res.modified_count);
		mix_commit_result_free(&res);
		ok(tu_modseq_of(idx, 2) > h &&
		   tu_highest_modseq(idx) == tu_modseq_of(idx, 2),
		   "and that visible change raises the modseq and "
		   "HIGHESTMODSEQ");
		h = tu_highest_modseq(idx);
	}
	/* one transaction: DIRTY on uid 1, \Seen on uid 4 */
	mix_txn_begin(idx, &t);
	mix_txn_flags(t, &r1, 1, MIX_MODIFY_ADD, MIX_FLAG_DIRTY);
	mix_txn_flags(t, &r2, 1, MIX_MODIFY_REMOVE, MIX_FLAG_DIRTY);
	{
		struct mix_uid_range r4 = { 4, 4 };
		mix_txn_flags(t, &r4, 1, MIX_MODIFY_ADD, MIX_FLAG_SEEN);
	}
	mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	ok(res.modseq > h && tu_highest_modseq(idx) == res.modseq &&
	   tu_modseq_of(idx, 4) == res.modseq && tu_modseq_of(idx, 1) == m1 &&
	   tu_modseq_of(idx, 2) == h, "DIRTY beside \\Seen in one transaction: "
	   "only the \\Seen message gets the modseq (1: %llx, 2: %llx, 4: "
	   "%llx, txn %llx)", (unsigned long long)tu_modseq_of(idx, 1),
	   (unsigned long long)tu_modseq_of(idx, 2),
	   (unsigned long long)tu_modseq_of(idx, 4),
	   (unsigned long long)res.modseq);
	/* and a DIRTY-only transaction last, so the log ends with one */
	mix_txn_begin(idx, &t);
	mix_txn_flags(t, &r3, 1, MIX_MODIFY_ADD, MIX_FLAG_DIRTY);
	mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL);
	seen_state(idx, &live);
	ok(live.highest == res.modseq && (live.flags[3] & MIX_FLAG_DIRTY),
	   "a DIRTY-only transaction at the end: HIGHESTMODSEQ still %llx",
	   (unsigned long long)res.modseq);

	ret = mix_index_open(engine, dir, MIX_OPEN_READONLY, &ro);
	is(ret, 0, "read-only open replays the log: %s",
	   ret ? mix_last_error() : "ok");
	if (ret == 0) {
		ok(same_state(ro, &live, "replayed"), "replay gives the live "
		   "flags, modseqs and HIGHESTMODSEQ");
		mix_index_close(&ro);
	}
	mix_index_close(&idx);
	if (mix_index_open(engine, dir, 0, &idx) < 0)
		BAIL("reopen: %s", mix_last_error());
	ok(same_state(idx, &live, "reopened"), "after close and reopen: the "
	   "same flags, modseqs and HIGHESTMODSEQ");
	mix_index_close(&idx);
}

/* ---- the race ----------------------------------------------------------- */

#define RACE_MSGS 20
#define RACE_ROUNDS 300

static struct mix_index *race_idx;
static pthread_barrier_t barrier;
static uint64_t race_m[RACE_ROUNDS];
static uint8_t lost[2][RACE_ROUNDS][RACE_MSGS + 1];
static int race_errors, race_split_bad;

/* changed and MODIFIED of one store: disjoint, together 1..RACE_MSGS
 * (each store replaces the keywords with a name of its own, so every
 * message it was allowed to change did change). */
static void race_split(int me, int round, const struct mix_commit_result *res)
{
	uint8_t seen[RACE_MSGS + 1] = { 0 };
	uint32_t i, u;
	int bad = 0;
	for (i = 0; i < res->modified_count; i++)
		for (u = res->modified[i].first; u <= res->modified[i].last &&
		     u <= RACE_MSGS; u++)
			seen[u]++;
	for (i = 0; i < res->changed_count; i++)
		for (u = res->changed[i].first; u <= res->changed[i].last &&
		     u <= RACE_MSGS; u++)
			seen[u]++;
	for (u = 1; u <= RACE_MSGS; u++)
		if (seen[u] != 1 && bad++ == 0 &&
		    __atomic_add_fetch(&race_split_bad, 1,
				       __ATOMIC_RELAXED) <= 5)
			diag("thread %d round %d uid %u: in %u of changed and "
			     "MODIFIED (expected exactly 1)", me, round, u,
			     seen[u]);
}

static void *racer(void *arg)
{
	int me = (int)(uintptr_t)arg, round;
	for (round = 0; round < RACE_ROUNDS; round++) {
		struct mix_txn *t;
		struct mix_commit_result res;
		struct mix_uid_range r = { 1, RACE_MSGS };
		char kw[32];
		const char *kws[] = { kw, NULL };
		uint32_t i, u;

		pthread_barrier_wait(&barrier);
		if (me == 0)
			race_m[round] = tu_highest_modseq(race_idx);
		pthread_barrier_wait(&barrier);
		snprintf(kw, sizeof(kw), "t%dr%d", me, round);
		mix_txn_begin(race_idx, &t);
		mix_txn_want_changed(t);
		mix_txn_keywords_unchangedsince(t, &r, 1, MIX_MODIFY_REPLACE,
						kws, race_m[round]);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, &res) < 0) {
			__atomic_add_fetch(&race_errors, 1, __ATOMIC_RELAXED);
			continue;
		}
		for (i = 0; i < res.modified_count; i++)
			for (u = res.modified[i].first; u <= res.modified[i].last;
			     u++)
				lost[me][round][u] = 1;
		race_split(me, round, &res);
		mix_commit_result_free(&res);
	}
	return NULL;
}

static void test_race(const char *dir)
{
	pthread_t th[2];
	int round, bad = 0, a_wins = 0, b_wins = 0;
	uint32_t u;

	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &race_idx) < 0)
		BAIL("open: %s", mix_last_error());
	tu_append(race_idx, RACE_MSGS, 0);
	pthread_barrier_init(&barrier, NULL, 2);
	pthread_create(&th[0], NULL, racer, (void *)0);
	pthread_create(&th[1], NULL, racer, (void *)1);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	for (round = 0; round < RACE_ROUNDS; round++)
		for (u = 1; u <= RACE_MSGS; u++) {
			int wins = !lost[0][round][u] + !lost[1][round][u];
			if (wins != 1 && bad++ < 5)
				diag("round %d uid %u: %d winners", round, u,
				     wins);
			a_wins += !lost[0][round][u];
			b_wins += !lost[1][round][u];
		}
	ok(race_errors == 0 && bad == 0, "%d rounds x %d messages of two "
	   "racing conditional stores: exactly one wins each (%d / %d)",
	   RACE_ROUNDS, RACE_MSGS, a_wins, b_wins);
	is(race_split_bad, 0, "and each store's changed set and MODIFIED set "
	   "split the request (stores where they did not)");
	pthread_barrier_destroy(&barrier);
	mix_index_close(&race_idx);
}

int main(void)
{
	struct mix_engine_config cfg;
	struct mix_index *idx;
	char *dir = tu_tmpdir("condstore"), *dir2 = tu_tmpdir("race");
	char *dir3 = tu_tmpdir("dirty");

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 8192;
	if (mix_engine_create(&cfg, &engine) < 0)
		BAIL("engine");
	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	test_highestmodseq_and_store(idx);
	test_changedsince(idx);
	test_qresync(idx, dir);
	test_dirty(dir3);
	test_race(dir2);
	mix_engine_free(&engine);
	tu_rmdir_r(dir);
	tu_rmdir_r(dir2);
	tu_rmdir_r(dir3);
	free(dir3);
	free(dir);
	free(dir2);
	return tap_done();
}
