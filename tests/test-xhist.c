/*
 * Expunge history under a tiny bound (engine/snapshot-build.c xhist code,
 * engine/modseq.c; docs/format.md §2.6).  A model test: random
 * transactions that append, store flags, or expunge with several
 * mix_txn_expunge calls on separate ranges (several EXPUNGE records with
 * one modseq), run with expunge_history_max 1..8 so that the history is
 * trimmed all the time, also between the records of one transaction.
 * After every step the index is closed and reopened (the history goes
 * through mix.index and back through the loader), and at each of these
 * points, for every modseq a client may hold (every HIGHESTMODSEQ seen)
 * and for the history's oldest_modseq itself:
 *  - the index opens (the loader accepts what the writer wrote);
 *  - mix_snap_expunged_since answers exactly for a modseq at or above
 *    oldest (the UIDs whose expunge has a higher modseq, from the model)
 *    and refuses below it;
 *  - mix_snap_qresync is precise exactly then, with the same VANISHED.
 * Then the same in one long session, reopened only at the end: the small
 * log_rotate_size makes the writer rotate, checkpoint and remap onto the
 * new mix.index mid-session (the live history is then the loader's); no
 * warning (a failed checkpoint) may come.
 * Seed from MIX_SEED, printed.
 *
 * And a mix.index written before the rule (an entry at oldest_modseq:
 * the rest of a transaction trimmed between its records) opens, and
 * answers from oldest_modseq on without that entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mix.h"
#include "crc32c.h"
#include "tap.h"
#include "testutil.h"

#define MAX_UID 400
#define MAX_PROBES 512

static unsigned warnings;
static char last_warning[512];

static void on_warning(void *ctx, const char *msg)
{
	(void)ctx;
	__atomic_add_fetch(&warnings, 1, __ATOMIC_RELAXED);
	snprintf(last_warning, sizeof(last_warning), "%s", msg);
}

struct model {
	uint32_t next_uid;
	uint8_t alive[MAX_UID + 1];
	uint64_t xmodseq[MAX_UID + 1]; /* modseq of the UID's expunge */
	uint64_t probes[MAX_PROBES];   /* HIGHESTMODSEQs a client saw */
	uint32_t nprobes;
};

static void probe_add(struct model *m, uint64_t v)
{
	if (m->nprobes && m->probes[m->nprobes - 1] == v)
		return;
	if (m->nprobes < MAX_PROBES)
		m->probes[m->nprobes++] = v;
}

/* A random live UID range start..end (may include expunged UIDs). */
static void pick_range(struct model *m, uint64_t *seed,
		       struct mix_uid_range *r)
{
	uint32_t a = 1 + tu_rand_below(seed, m->next_uid - 1);
	uint32_t len = tu_rand_below(seed, 3);
	r->first = a;
	r->last = a + len < m->next_uid ? a + len : m->next_uid - 1;
}

/* One random transaction; returns -1 when the commit failed. */
static int step(struct mix_index *idx, struct model *m, uint64_t *seed,
		char *what, size_t wsize)
{
	struct mix_commit_result res;
	struct mix_txn *t;
	struct mix_uid_range r[4];
	uint32_t op = tu_rand_below(seed, 10), n = 0, i, u;
	size_t len;

	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	if (m->next_uid < 4 || op < 3) {
		n = 1 + tu_rand_below(seed, 6);
		if (m->next_uid + n > MAX_UID)
			n = 0;
		for (i = 0; i < n; i++)
			mix_txn_append(t, 0, NULL, NULL);
		snprintf(what, wsize, "append %u", n);
	} else if (op < 4) {
		pick_range(m, seed, &r[0]);
		mix_txn_flags(t, &r[0], 1, MIX_MODIFY_ADD, MIX_FLAG_SEEN);
		snprintf(what, wsize, "store %u:%u +Seen", r[0].first,
			 r[0].last);
	} else {
		/* several expunge calls, each its own EXPUNGE record */
		n = 1 + tu_rand_below(seed, 4);
		len = (size_t)snprintf(what, wsize, "expunge");
		for (i = 0; i < n; i++) {
			pick_range(m, seed, &r[i]);
			mix_txn_expunge(t, &r[i], 1);
			if (len < wsize)
				len += (size_t)snprintf(what + len, wsize - len,
							" %u:%u", r[i].first,
							r[i].last);
		}
	}
	if (mix_txn_commit(&t, MIX_DURABILITY_NONE, &res) < 0)
		return -1;
	if (op < 3 || m->next_uid < 4) {
		for (u = res.first_uid; res.first_uid && u <= res.last_uid;
		     u++)
			m->alive[u] = 1;
		if (res.first_uid)
			m->next_uid = res.last_uid + 1;
	} else if (op >= 4) {
		for (i = 0; i < n; i++)
			for (u = r[i].first; u <= r[i].last; u++)
				if (m->alive[u]) {
					m->alive[u] = 0;
					m->xmodseq[u] = res.modseq;
				}
	}
	mix_commit_result_free(&res);
	probe_add(m, tu_highest_modseq(idx));
	return 0;
}

/* Ranges into a bitmap of UIDs; 0 when a range is out of bounds. */
static int to_bits(const struct mix_uid_range *r, uint32_t n, uint8_t *bits)
{
	uint32_t i, u;
	memset(bits, 0, MAX_UID + 1);
	for (i = 0; i < n; i++) {
		if (r[i].first == 0 || r[i].last > MAX_UID ||
		    r[i].first > r[i].last)
			return 0;
		for (u = r[i].first; u <= r[i].last; u++)
			bits[u] = 1;
	}
	return 1;
}

/* The first UID where bits and the model for `since` differ, or 0. */
static uint32_t differs(const struct model *m, uint64_t since,
			const uint8_t *bits)
{
	uint32_t u;
	for (u = 1; u <= MAX_UID; u++)
		if (bits[u] != (m->xmodseq[u] > since))
			return u;
	return 0;
}

/* One query (expunged_since and qresync) against the model; returns 0
 * when it agrees, and prints why not otherwise. */
static int check_since(const struct mix_snap *s, const struct model *m,
		       uint64_t since, const char *when)
{
	struct mix_qresync_params p = { 0 };
	struct mix_qresync_result q;
	struct mix_uid_range *x = NULL;
	uint8_t bits[MAX_UID + 1];
	uint64_t oldest = 0;
	uint32_t n = 0, bad = 0;
	int r = mix_snap_expunged_since(s, since, &x, &n, &oldest), bad_q = 0;

	if (r < 0 || r != (since >= oldest)) {
		diag("%s: expunged since %llx: returned %d with oldest %llx "
		     "(expected %d)", when, (unsigned long long)since, r,
		     (unsigned long long)oldest, since >= oldest);
		free(x);
		return -1;
	}
	if (r == 1 && (!to_bits(x, n, bits) ||
		       (bad = differs(m, since, bits)) != 0)) {
		diag("%s: expunged since %llx: uid %u %s (expected %s)", when,
		     (unsigned long long)since, bad, bits[bad] ? "listed" :
		     "not listed", bits[bad] ? "absent" : "listed");
		free(x);
		return -1;
	}
	free(x);
	p.uid_validity = mix_snap_uid_validity(s);
	p.modseq = since;
	if (mix_snap_qresync(s, &p, &q) < 0)
		return -1;
	if (q.precise != r)
		bad_q = 1;
	else if (r == 1 && (!to_bits(q.vanished, q.vanished_count, bits) ||
			    differs(m, since, bits)))
		bad_q = 2;
	if (bad_q)
		diag("%s: QRESYNC modseq %llx: precise %d (expected %d)%s",
		     when, (unsigned long long)since, q.precise, r,
		     bad_q == 2 ? ", VANISHED differs from the model" : "");
	mix_qresync_result_free(&q);
	return bad_q ? -1 : 0;
}

static int check_all(struct mix_index *idx, const struct model *m,
		     const char *when)
{
	const struct mix_snap *s;
	uint64_t oldest = 0;
	uint32_t i, n;
	struct mix_uid_range *x;
	int ret = 0;

	mix_read_lock();
	s = mix_index_snap(idx);
	(void)mix_snap_expunged_since(s, 0, &x, &n, &oldest);
	if (oldest > mix_snap_highest_modseq(s)) {
		diag("%s: oldest %llx above HIGHESTMODSEQ %llx", when,
		     (unsigned long long)oldest,
		     (unsigned long long)mix_snap_highest_modseq(s));
		ret = -1;
	}
	if (ret == 0)
		ret = check_since(s, m, oldest, when);
	for (i = 0; i < m->nprobes && ret == 0; i++)
		ret = check_since(s, m, m->probes[i], when);
	mix_read_unlock();
	return ret;
}

/* One run with bound max: returns 0 or -1 (diagnostics printed). */
static int run(struct mix_engine *e, uint32_t max, uint64_t *seed,
	       uint32_t steps, int reopen_each)
{
	struct model *m = calloc(1, sizeof(*m));
	struct mix_index *idx;
	char *dir = tu_tmpdir("xhist"), what[160], when[256];
	uint32_t i;
	int ret = 0;

	if (!m)
		BAIL("out of memory");
	m->next_uid = 1;
	if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open %s: %s", dir, mix_last_error());
	probe_add(m, tu_highest_modseq(idx));
	for (i = 0; i < steps && ret == 0; i++) {
		if (step(idx, m, seed, what, sizeof(what)) < 0) {
			diag("max %u step %u (%s): commit: %s", max, i, what,
			     mix_last_error());
			ret = -1;
			break;
		}
		snprintf(when, sizeof(when), "max %u step %u (%s), live%s",
			 max, i, what, reopen_each ? "" : " (long session)");
		if ((ret = check_all(idx, m, when)) < 0)
			break;
		/* a long session instead: the log rotates, each rotation
		 * checkpoints and remaps onto the new mix.index (so the live
		 * history is the loader's); reopened at the end */
		if (!reopen_each && i + 1 < steps)
			continue;
		if (mix_index_close(&idx) < 0) {
			diag("max %u step %u (%s): close: %s", max, i, what,
			     mix_last_error());
			ret = -1;
			break;
		}
		if (mix_index_open(e, dir, 0, &idx) < 0) {
			diag("max %u step %u (%s): reopen: %s", max, i, what,
			     mix_last_error());
			idx = NULL;
			ret = -1;
			break;
		}
		snprintf(when, sizeof(when), "max %u step %u (%s), reopened",
			 max, i, what);
		ret = check_all(idx, m, when);
	}
	if (idx)
		mix_index_close(&idx);
	tu_rmdir_r(dir);
	free(dir);
	free(m);
	return ret;
}

/* The modseq of the first entry of mix.expunges in a copy of mix.index
 * becomes its oldest_modseq (what the trimming before the §2.6 rule
 * wrote); the checksum (§1, offset 108) is recomputed. */
static int make_old_file(const char *dir, uint64_t *first_r)
{
	static const uint8_t zero[4];
	char *path;
	uint8_t *f, *name;
	size_t size;
	uint32_t crc;
	int ret = -1;

	if (asprintf(&path, "%s/mix.index", dir) < 0)
		BAIL("out of memory");
	f = tu_read_file(path, &size);
	name = f ? memmem(f, size, "mix.expunges", 12) : NULL;
	/* name_size 12 padded to 16, then the data (§2.2) */
	if (name && (size_t)(name - f) + 16 + 24 <= size) {
		uint8_t *d = name + 16;
		memcpy(first_r, d + 16, 8);
		memcpy(d, d + 16, 8);       /* oldest_modseq := entry 0 */
		crc = mix_crc32c(0, f, 108);
		crc = mix_crc32c(crc, zero, 4);
		crc = mix_crc32c(crc, f + 112, size - 112);
		memcpy(f + 108, &crc, 4);
		ret = tu_write_file(path, f, size);
	}
	free(f);
	free(path);
	return ret;
}

static void test_old_file(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_txn *t;
	struct mix_uid_range r1 = { 1, 1 }, r2 = { 2, 3 }, r3 = { 5, 5 };
	struct mix_uid_range *x = NULL;
	char *dir = tu_tmpdir("xhist-old");
	uint64_t first = 0, oldest = 0;
	uint32_t n = 0;
	int r0, r1x;

	mix_engine_config_init(&cfg);
	if (mix_engine_create(&cfg, &e) < 0 ||
	    mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	tu_append(idx, 6, 0);
	/* one transaction, two EXPUNGE records; then another */
	mix_txn_begin(idx, &t);
	mix_txn_expunge(t, &r1, 1);
	mix_txn_expunge(t, &r2, 1);
	mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
	mix_txn_begin(idx, &t);
	mix_txn_expunge(t, &r3, 1);
	mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
	if (mix_index_close(&idx) < 0 || make_old_file(dir, &first) < 0)
		BAIL("close or patch: %s", mix_last_error());
	r0 = mix_index_open(e, dir, 0, &idx);
	is(r0, 0, "a mix.index with an entry at oldest_modseq (trimmed "
	   "inside a transaction) opens: %d %s", r0, r0 ? mix_last_error() :
	   "");
	if (!idx)
		goto out;
	mix_read_lock();
	r1x = mix_snap_expunged_since(mix_index_snap(idx), first, &x, &n,
				      &oldest);
	ok(r1x == 1 && oldest == first && n == 1 && x[0].first == 5 &&
	   x[0].last == 5, "it answers from oldest_modseq on, without the "
	   "dropped entries: %d, %u ranges, first %u (expected 1, 1 range, "
	   "uid 5)", r1x, n, n ? x[0].first : 0);
	free(x);
	r0 = mix_snap_expunged_since(mix_index_snap(idx), first - 1, &x, &n,
				     NULL);
	is(r0, 0, "and not below it (%d)", r0);
	free(x);
	mix_read_unlock();
	mix_index_close(&idx);
out:
	mix_engine_free(&e);
	tu_rmdir_r(dir);
	free(dir);
}

int main(void)
{
	uint64_t seed = tu_seed();
	uint32_t steps = (uint32_t)(40 * tu_scale()), max;

	for (max = 1; max <= 8; max++) {
		struct mix_engine_config cfg;
		struct mix_engine_stats st;
		struct mix_engine *e;
		int ret;

		mix_engine_config_init(&cfg);
		cfg.expunge_history_max = max;
		cfg.log_rotate_size = 4096;   /* checkpoints mid-session */
		cfg.warning = on_warning;
		warnings = 0;
		last_warning[0] = '\0';
		if (mix_engine_create(&cfg, &e) < 0)
			BAIL("engine: %s", mix_last_error());
		ret = run(e, max, &seed, steps, 1);
		is(ret, 0, "expunge_history_max %u: %u random steps, closed "
		   "and reopened after each, history answers as the model",
		   max, steps);
		ret = run(e, max, &seed, 8 * steps, 0);
		is(ret, 0, "expunge_history_max %u: %u random steps in one "
		   "session (rotations: checkpoint and remap), then reopened: "
		   "history answers as the model", max, 8 * steps);
		mix_engine_stats(e, &st);
		ok(warnings == 0 && st.checkpoint_failures == 0,
		   "expunge_history_max %u: no warning, no failed checkpoint "
		   "(%u warnings, %llu failures%s%s; %llu checkpoints)", max,
		   warnings, (unsigned long long)st.checkpoint_failures,
		   warnings ? "; last: " : "", last_warning,
		   (unsigned long long)st.checkpoints);
		mix_engine_free(&e);
	}
	test_old_file();
	return tap_done();
}
