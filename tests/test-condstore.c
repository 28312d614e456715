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
 *  - two threads racing conditional stores on the same messages: for
 *    every message and round exactly one wins.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

static struct mix_engine *engine;

static uint64_t hms(struct mix_index *idx)
{
	uint64_t v;
	mix_read_lock();
	v = mix_snap_highest_modseq(mix_index_snap(idx));
	mix_read_unlock();
	return v;
}

static uint64_t modseq_of(struct mix_index *idx, uint32_t uid)
{
	struct mix_record rec;
	uint64_t v = 0;
	mix_read_lock();
	if (mix_snap_lookup_uid(mix_index_snap(idx), uid, &rec))
		v = rec.modseq;
	mix_read_unlock();
	return v;
}

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

static void append(struct mix_index *idx, uint32_t n)
{
	struct mix_txn *t;
	uint32_t i;
	mix_txn_begin(idx, &t);
	for (i = 0; i < n; i++)
		mix_txn_append(t, 0, NULL, NULL);
	mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
}

static const char *fmt_set(const struct mix_uid_range *r, uint32_t n)
{
	static char buf[512];
	size_t len = 0;
	uint32_t i;
	buf[0] = '\0';
	for (i = 0; i < n && len < sizeof(buf) - 24; i++) {
		if (r[i].last != r[i].first)
			snprintf(buf + len, sizeof(buf) - len, "%s%u:%u",
				 i ? "," : "", r[i].first, r[i].last);
		else
			snprintf(buf + len, sizeof(buf) - len, "%s%u",
				 i ? "," : "", r[i].first);
		len = strlen(buf);
	}
	return buf;
}

static void test_highestmodseq_and_store(struct mix_index *idx)
{
	struct mix_commit_result res, a;
	uint64_t h0 = hms(idx), m;
	ok(h0 > 0 && (h0 & 0xffffffffu) == 0, "HIGHESTMODSEQ of a mailbox that "
	   "never changed: (indexid + first log seq) << 32 = %llx",
	   (unsigned long long)h0);
	append(idx, 7);
	ok(hms(idx) > h0, "appends raise HIGHESTMODSEQ");
	/* RFC 7162 §3.1.3 example: messages 1:7; some modified later */
	store(idx, 2, 2, MIX_MODIFY_ADD, MIX_FLAG_FLAGGED, 0, 0, NULL);
	m = hms(idx);
	store(idx, 5, 5, MIX_MODIFY_ADD, MIX_FLAG_ANSWERED, 0, 0, NULL);
	store(idx, 7, 7, MIX_MODIFY_ADD, MIX_FLAG_SEEN, 0, 0, NULL);
	ok(store(idx, 1, 7, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 1, m, &res) == 0,
	   "STORE 1:7 (UNCHANGEDSINCE m) +FLAGS (\\Deleted)");
	ok(res.modified_count == 2 && res.modified[0].first == 5 &&
	   res.modified[0].last == 5 && res.modified[1].first == 7,
	   "MODIFIED 5,7: %s", fmt_set(res.modified, res.modified_count));
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
	ok(res.modified == NULL, "result freed");
	store(idx, 1, 3, MIX_MODIFY_ADD, MIX_FLAG_DRAFT, 1, 0, &res);
	ok(res.modified_count == 1 && res.modified[0].first == 1 &&
	   res.modified[0].last == 3 && res.no_changes,
	   "UNCHANGEDSINCE 0: every message fails (MODIFIED %s)",
	   fmt_set(res.modified, res.modified_count));
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
		   "merged: %s", fmt_set(res.modified, res.modified_count));
		mix_commit_result_free(&res);
	}
	m = modseq_of(idx, 1);
	store(idx, 1, 1, MIX_MODIFY_ADD, MIX_FLAG_DELETED, 0, 0, &a);
	ok(a.no_changes && modseq_of(idx, 1) == m && a.modseq == hms(idx),
	   "a no-op STORE changes no modseq and reports no_changes");
	m = hms(idx);
	ok(expunge(idx, 3, 3, &res) == 0 && res.modseq > m && hms(idx) ==
	   res.modseq, "an expunge raises HIGHESTMODSEQ to its modseq");
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

	m = hms(idx);
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
	append(idx, 10);           /* UIDs 8..17 */
	m = hms(idx);
	expunge(idx, 1, 1, NULL);
	expunge(idx, 9, 10, NULL);
	store(idx, 12, 12, MIX_MODIFY_ADD, MIX_FLAG_SEEN, 0, 0, NULL);
	mix_read_lock();
	uidv = mix_snap_uid_validity(mix_index_snap(idx));
	p.uid_validity = uidv;
	p.modseq = m;
	ok(mix_snap_qresync(mix_index_snap(idx), &p, &res) == 0, "qresync");
	ok(res.precise && res.vanished_count == 2 &&
	   res.vanished[0].first == 1 && res.vanished[0].last == 1 &&
	   res.vanished[1].first == 9 && res.vanished[1].last == 10,
	   "VANISHED (EARLIER) 1,9:10 precise: %s",
	   fmt_set(res.vanished, res.vanished_count));
	ok(res.changed_count == 1 && res.changed[0].first == 12,
	   "changed: 12 (%s)", fmt_set(res.changed, res.changed_count));
	mix_qresync_result_free(&res);
	p.known_uids = known;
	p.known_uids_count = 2;
	mix_snap_qresync(mix_index_snap(idx), &p, &res);
	ok(res.precise && res.vanished_count == 2 &&
	   res.vanished[0].first == 1 && res.vanished[1].first == 9,
	   "with known UIDs 1:2,8:20: VANISHED %s",
	   fmt_set(res.vanished, res.vanished_count));
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
	   fmt_set(res.vanished, res.vanished_count));
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
	   "matching pair)", fmt_set(res.vanished, res.vanished_count));
	mix_qresync_result_free(&res);
	p.match_count = 0;
	mix_snap_qresync(mix_index_snap(idx), &p, &res);
	ok(!res.precise && res.vanished_count >= 2 &&
	   res.vanished[0].first == 1 && res.vanished[0].last == 1,
	   "fallback without: every missing UID below UIDNEXT: %s",
	   fmt_set(res.vanished, res.vanished_count));
	mix_qresync_result_free(&res);
	mix_read_unlock();
	mix_index_close(&idx);
}

/* ---- the race ----------------------------------------------------------- */

#define RACE_MSGS 20
#define RACE_ROUNDS 300

static struct mix_index *race_idx;
static pthread_barrier_t barrier;
static uint64_t race_m[RACE_ROUNDS];
static uint8_t lost[2][RACE_ROUNDS][RACE_MSGS + 1];
static int race_errors;

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
			race_m[round] = hms(race_idx);
		pthread_barrier_wait(&barrier);
		snprintf(kw, sizeof(kw), "t%dr%d", me, round);
		mix_txn_begin(race_idx, &t);
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
	append(race_idx, RACE_MSGS);
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
	pthread_barrier_destroy(&barrier);
	mix_index_close(&race_idx);
}

int main(void)
{
	struct mix_engine_config cfg;
	struct mix_index *idx;
	char *dir = tu_tmpdir("condstore"), *dir2 = tu_tmpdir("race");

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 8192;
	if (mix_engine_create(&cfg, &engine) < 0)
		BAIL("engine");
	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	test_highestmodseq_and_store(idx);
	test_changedsince(idx);
	test_qresync(idx, dir);
	test_race(dir2);
	mix_engine_free(&engine);
	tu_rmdir_r(dir);
	tu_rmdir_r(dir2);
	free(dir);
	free(dir2);
	return tap_done();
}
