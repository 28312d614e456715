/*
 * Fault injection (issue 5; shared/DESIGN.md invariants 5 and 6;
 * docs/reliability.md).  engine/fileio.c can fail its n-th I/O call from
 * now (mix_io_fault_set); each walk below arms n = 1, 2, ... until the
 * operation makes fewer than n calls, so every call site of the operation
 * fails once, with -EIO (a write then lands half: a short write) and with
 * -ENOSPC (a write lands nothing).  Operations walked:
 *
 *  (a) a commit with MIX_DURABILITY_SYNC (and one with NONE);
 *  (b) a commit that starts a checkpoint + log rotation (tiny rotate size);
 *  (c) open with recovery (mix.index + mix.index.log.2 + a log tail left
 *      by a process that died without closing), writable and read-only;
 *  (d) close (its final checkpoint);
 *  (e) open with MIX_OPEN_RECREATE.
 *
 * For each fault: the failure reaches the committer / opener as an error
 * (never a crash, never success with lost data); readers in the process
 * see the state of the acknowledged commits, all of a failed commit or
 * none of it; after a failed write or fdatasync later commits return
 * MIX_EPANIC until reopen (a failed fdatasync is never retried as if it
 * had worked); after the fault is cleared a reopen shows every
 * acknowledged commit (compared with a model), and a new commit works.
 * Modseqs of the reopened index stay above every modseq issued before.
 *
 * Random transactions from MIX_SEED (printed).  No timing assumptions.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/wait.h>

#include "mix/mix.h"
#include "checkpoint.h"
#include "fileio.h"
#include "index.h"
#include "tap.h"
#include "testutil.h"

#define KW_POOL 3u
#define FLAG_POOL (MIX_FLAG_ANSWERED | MIX_FLAG_FLAGGED | MIX_FLAG_DELETED | \
		   MIX_FLAG_SEEN)
#define CRASH_TXNS 120
#define ROTATE_SMALL 4096u

static const char *const kw_names[KW_POOL] = { "kwa", "kwb", "kwc" };
static const int errs[2] = { -EIO, -ENOSPC };
static uint64_t rng;
static unsigned long total_sites;

/* Remove an index directory (the files mix makes, then the directory). */
static void rm_index_dir(const char *dir)
{
	static const char *const names[] = { "mix.index", "mix.index.tmp",
		"mix.index.log", "mix.index.log.2", "mix.index.log.newtmp",
		"mix.index.lock" };
	char *p;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (asprintf(&p, "%s/%s", dir, names[i]) < 0)
			BAIL("out of memory");
		unlink(p);
		free(p);
	}
	if (rmdir(dir) < 0)
		diag("rmdir %s: %s", dir, strerror(errno));
}


static int dir_has(const char *dir, const char *name)
{
	char *p;
	int r;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		BAIL("out of memory");
	r = access(p, F_OK) == 0;
	free(p);
	return r;
}

/* ---- model ---------------------------------------------------------------- */

struct frec {
	uint8_t present, flags, kw;
	uint64_t modseq;
};

struct fmodel {
	struct frec *r;          /* by UID */
	uint32_t cap, next_uid, count;
	uint64_t last_modseq;    /* highest acknowledged modseq */
};

enum { OP_NONE, OP_FLAGS, OP_KW, OP_EXPUNGE, OP_NOOP };

/* A transaction: 0..8 appends, then one operation on existing UIDs. */
struct ftxn {
	uint32_t nappend;
	uint8_t aflags[8];
	uint8_t op, modify, mask;
	uint32_t first, last;
};

static void model_copy(struct fmodel *dst, const struct fmodel *src)
{
	*dst = *src;
	dst->r = malloc(src->cap * sizeof(*dst->r));
	if (!dst->r)
		BAIL("out of memory");
	memcpy(dst->r, src->r, src->cap * sizeof(*dst->r));
}

static void model_free(struct fmodel *m)
{
	free(m->r);
	memset(m, 0, sizeof(*m));
	m->next_uid = 1;
}

static void model_grow(struct fmodel *m, uint32_t uid)
{
	uint32_t ncap = m->cap ? m->cap : 256;
	if (uid < m->cap)
		return;
	while (ncap <= uid)
		ncap *= 2;
	m->r = realloc(m->r, ncap * sizeof(*m->r));
	if (!m->r)
		BAIL("out of memory");
	memset(m->r + m->cap, 0, (ncap - m->cap) * sizeof(*m->r));
	m->cap = ncap;
}

static uint8_t modify(uint8_t old, uint8_t how, uint8_t mask)
{
	return how == MIX_MODIFY_ADD ? old | mask :
	       how == MIX_MODIFY_REMOVE ? old & (uint8_t)~mask : mask;
}

/* The engine's semantics (docs/api.md): appends, then the operation;
 * only effective changes take the modseq. */
static void model_apply(struct fmodel *m, const struct ftxn *t, uint64_t ms)
{
	for (uint32_t k = 0; k < t->nappend; k++) {
		model_grow(m, m->next_uid);
		m->r[m->next_uid++] = (struct frec){ 1, t->aflags[k], 0, ms };
		m->count++;
	}
	for (uint32_t u = t->first; t->op != OP_NONE && t->op != OP_NOOP &&
	     u <= t->last && u < m->next_uid; u++) {
		struct frec *r = &m->r[u];
		uint8_t v;
		if (!r->present)
			continue;
		if (t->op == OP_EXPUNGE) {
			r->present = 0;
			m->count--;
			continue;
		}
		if (t->op == OP_FLAGS) {
			v = modify(r->flags, t->modify, t->mask);
			if (v != r->flags) {
				r->flags = v;
				r->modseq = ms;
			}
		} else {
			v = modify(r->kw, t->modify, t->mask);
			if (v != r->kw) {
				r->kw = v;
				r->modseq = ms;
			}
		}
	}
	if (ms > m->last_modseq)
		m->last_modseq = ms;
}

static uint32_t model_random_uid(const struct fmodel *m)
{
	for (int i = 0; i < 16 && m->count; i++) {
		uint32_t u = 1 + tu_rand_below(&rng, m->next_uid - 1);
		if (m->r[u].present)
			return u;
	}
	return 1;
}

static void gen_txn(const struct fmodel *m, struct ftxn *t, uint32_t nappend)
{
	memset(t, 0, sizeof(*t));
	t->nappend = nappend;
	for (uint32_t k = 0; k < nappend; k++)
		t->aflags[k] = (uint8_t)(tu_rand(&rng) & FLAG_POOL);
	if (m->count == 0)
		return;
	t->op = (uint8_t)(1 + tu_rand_below(&rng, 3));
	t->first = model_random_uid(m);
	t->last = t->first + tu_rand_below(&rng, 4);
	t->modify = (uint8_t)tu_rand_below(&rng, 3);
	t->mask = (uint8_t)(t->op == OP_FLAGS ? tu_rand(&rng) & FLAG_POOL :
			    tu_rand(&rng) & ((1u << KW_POOL) - 1));
	if (t->op == OP_EXPUNGE && tu_rand_below(&rng, 2))
		t->op = OP_FLAGS;   /* keep most messages */
}

/* ---- engine side ---------------------------------------------------------- */

static int run_txn(struct mix_index *idx, const struct ftxn *t,
		   enum mix_durability d, struct mix_commit_result *res)
{
	const char *kws[KW_POOL + 1];
	struct mix_uid_range r = { t->first, t->last };
	struct mix_txn *txn;
	int ret, n = 0;

	memset(res, 0, sizeof(*res));
	if ((ret = mix_txn_begin(idx, &txn)) < 0)
		return ret;
	for (uint32_t k = 0; k < t->nappend && ret == 0; k++)
		ret = mix_txn_append(txn, t->aflags[k], NULL, NULL);
	for (unsigned i = 0; i < KW_POOL; i++)
		if (t->mask & (1u << i))
			kws[n++] = kw_names[i];
	kws[n] = NULL;
	if (ret == 0 && t->op == OP_FLAGS)
		ret = mix_txn_flags(txn, &r, 1, t->modify, t->mask);
	else if (ret == 0 && t->op == OP_KW)
		ret = mix_txn_keywords(txn, &r, 1, t->modify, kws);
	else if (ret == 0 && t->op == OP_EXPUNGE)
		ret = mix_txn_expunge(txn, &r, 1);
	else if (ret == 0 && t->op == OP_NOOP) {
		/* UIDs that never exist: reaches the writer, changes nothing */
		struct mix_uid_range far = { 4000000000u, 4000000000u };
		ret = mix_txn_flags(txn, &far, 1, MIX_MODIFY_ADD,
				    MIX_FLAG_SEEN);
	}
	if (ret < 0) {
		mix_txn_abort(&txn);
		return ret;
	}
	return mix_txn_commit(&txn, d, res);
}

/* Commit t; on success apply it to m.  Returns the commit's result. */
static int commit_model(struct mix_index *idx, struct fmodel *m,
			const struct ftxn *t, enum mix_durability d,
			struct mix_commit_result *res_r)
{
	struct mix_commit_result res;
	int ret = run_txn(idx, t, d, &res);
	if (ret == 0 && !res.no_changes)
		model_apply(m, t, res.modseq);
	if (res_r)
		*res_r = res;
	return ret;
}

/* Wait until the writer has finished everything queued before (and the
 * checkpoint a batch may have started): a no-op transaction went through
 * it.  MIX_EPANIC (a poisoned index) also means it went through; returns
 * another error only. */
static int barrier(struct mix_index *idx)
{
	struct ftxn t = { .op = OP_NOOP };
	struct mix_commit_result res;
	int ret = run_txn(idx, &t, MIX_DURABILITY_NONE, &res);
	return ret == MIX_EPANIC ? 0 : ret;
}

static uint8_t rec_kw(const struct mix_snap *s, const struct mix_record *r,
		      int *stray)
{
	uint8_t mask = 0;
	for (uint32_t i = 0; i < r->keywords_bits; i++) {
		const char *name = mix_snap_keyword_name(s, i);
		unsigned k;
		if (!mix_record_has_keyword(r, i))
			continue;
		for (k = 0; k < KW_POOL; k++)
			if (name && !strcmp(name, kw_names[k]))
				break;
		if (k == KW_POOL)
			(*stray)++;
		else
			mask |= (uint8_t)(1u << k);
	}
	return mask;
}

/* 1 if the snapshot is exactly m; else 0 with the first difference in
 * why (observed vs expected). */
static int snap_is(const struct mix_snap *s, const struct fmodel *m,
		   char *why, size_t size)
{
	struct mix_record r;
	struct mix_iter it;
	uint32_t n = 0;

	if (mix_snap_next_uid(s) != m->next_uid) {
		snprintf(why, size, "next_uid %u, expected %u",
			 mix_snap_next_uid(s), m->next_uid);
		return 0;
	}
	if (mix_snap_highest_modseq(s) < m->last_modseq) {
		snprintf(why, size, "highest_modseq %" PRIu64 " below the "
			 "acknowledged %" PRIu64, mix_snap_highest_modseq(s),
			 m->last_modseq);
		return 0;
	}
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r)) {
		const struct frec *x = r.uid < m->next_uid ? &m->r[r.uid] : NULL;
		int stray = 0;
		uint8_t kw = rec_kw(s, &r, &stray);
		n++;
		if (!x || !x->present) {
			snprintf(why, size, "UID %u present, expected absent",
				 r.uid);
			return 0;
		}
		if (r.flags != x->flags || kw != x->kw || stray ||
		    r.modseq != x->modseq) {
			snprintf(why, size, "UID %u: flags 0x%02x kw 0x%02x "
				 "(+%d) modseq %" PRIu64 ", expected 0x%02x 0x%02x "
				 "%" PRIu64, r.uid, r.flags, kw, stray, r.modseq,
				 x->flags, x->kw, x->modseq);
			return 0;
		}
	}
	if (n != m->count || mix_snap_messages_count(s) != m->count) {
		snprintf(why, size, "%u records (messages_count %u), expected "
			 "%u", n, mix_snap_messages_count(s), m->count);
		return 0;
	}
	return 1;
}

/*
 * The index shows m, or m plus all of x (a commit that failed: it may or
 * may not have made it, but never in part).  Returns 0 (m), 1 (m + x;
 * then m becomes m + x) or -1 with why set.
 */
static int state_check(struct mix_index *idx, struct fmodel *m,
		       const struct ftxn *x, char *why, size_t size)
{
	const struct mix_snap *s;
	struct fmodel mx;
	int ret = -1;

	mix_read_lock();
	s = mix_index_snap(idx);
	if (snap_is(s, m, why, size)) {
		ret = 0;
	} else if (x && mix_snap_next_uid(s) == m->next_uid + x->nappend) {
		/* x's modseq is the highest: it was the last change */
		model_copy(&mx, m);
		model_apply(&mx, x, mix_snap_highest_modseq(s));
		if (snap_is(s, &mx, why, size)) {
			free(m->r);
			*m = mx;
			ret = 1;
		} else {
			free(mx.r);
		}
	}
	mix_read_unlock();
	return ret;
}

static struct mix_engine *engine_new(uint64_t rotate)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = rotate;
	if (mix_engine_create(&cfg, &e) < 0)
		BAIL("engine: %s", mix_last_error());
	return e;
}

static struct mix_index *open_or_bail(struct mix_engine *e, const char *dir,
				      unsigned flags)
{
	struct mix_index *idx;
	if (mix_index_open(e, dir, flags, &idx) < 0)
		BAIL("open %s: %s", dir, mix_last_error());
	return idx;
}

/* Names of the call sites a walk failed, in order, for diag. */
struct sites {
	char list[1024];
	unsigned n;
};

static void sites_add(struct sites *s, const char *op)
{
	size_t len = strlen(s->list);
	snprintf(s->list + len, sizeof(s->list) - len, "%s%s",
		 s->n ? " " : "", op ? op : "?");
	s->n++;
	total_sites++;
}

/* Problems of one walk; the first few are printed. */
struct bad {
	unsigned n;
};

static void bad_at(struct bad *b, const char *what, unsigned n,
		   const char *site, const char *detail)
{
	if (b->n++ < 5)
		diag("  %s: fault %u (%s): %s", what, n, site ? site : "?",
		     detail);
}

/* ---- (a) commit ------------------------------------------------------------ */

static int site_is(const char *site, const char *name)
{
	return site && strcmp(site, name) == 0;
}

static void walk_commit(struct mix_engine *e, int err, enum mix_durability d)
{
	const char *ename = err == -EIO ? "EIO" : "ENOSPC";
	const char *dname = d == MIX_DURABILITY_SYNC ? "SYNC" : "NONE";
	char *dir = tu_tmpdir("faults-commit"), why[512], what[64];
	struct mix_index *idx = open_or_bail(e, dir, MIX_OPEN_CREATE);
	struct fmodel m = { .next_uid = 1 };
	struct sites sites = { "", 0 };
	struct bad bad = { 0 };
	struct ftxn t, y;
	unsigned n, present = 0, nospace = 0;
	int done = 0, epanic_after_sync = 0, fdatasync_faults = 0;

	snprintf(what, sizeof(what), "commit %s %s", dname, ename);
	for (int i = 0; i < 3; i++) {
		gen_txn(&m, &t, 2);
		if (commit_model(idx, &m, &t, MIX_DURABILITY_SYNC, NULL) < 0)
			BAIL("setup commit: %s", mix_last_error());
	}
	for (n = 1; n < 50 && !done; n++) {
		struct mix_commit_result res;
		const char *site;
		int ret, ret2, st;

		gen_txn(&m, &t, 1 + tu_rand_below(&rng, 2));
		mix_io_fault_set(n, err);
		ret = run_txn(idx, &t, d, &res);
		site = mix_io_fault_fired();
		done = mix_io_fault_pending() != 0;
		mix_io_fault_set(0, 0);
		if (done) {
			if (ret != 0)
				bad_at(&bad, what, n, "none", mix_last_error());
			else if (!res.no_changes)
				model_apply(&m, &t, res.modseq);
			break;
		}
		sites_add(&sites, site);
		if (ret != err) {
			snprintf(why, sizeof(why), "commit returned %d (%s), "
				 "expected the injected %d", ret,
				 mix_strerror(ret), err);
			bad_at(&bad, what, n, site, why);
		}
		/* readers: the acknowledged state, or all of t */
		if (state_check(idx, &m, &t, why, sizeof(why)) < 0)
			bad_at(&bad, what, n, site, why);
		/* poisoned: no retry of the failed write or sync; except a
		 * log write that ran out of space before anything landed:
		 * that batch failed alone and the next commit goes through */
		gen_txn(&m, &y, 1);
		ret2 = run_txn(idx, &y, MIX_DURABILITY_SYNC, &res);
		if (site_is(site, "pwrite") && err == -ENOSPC) {
			nospace++;
			if (ret2 != 0) {
				snprintf(why, sizeof(why), "next commit after a "
					 "write out of space returned %d (%s), "
					 "expected 0", ret2, mix_strerror(ret2));
				bad_at(&bad, what, n, site, why);
			} else {
				if (!res.no_changes)
					model_apply(&m, &y, res.modseq);
				if (state_check(idx, &m, NULL, why,
						sizeof(why)) < 0)
					bad_at(&bad, what, n, site, why);
			}
		} else if (ret2 != MIX_EPANIC) {
			snprintf(why, sizeof(why), "next commit returned %d "
				 "(%s), expected MIX_EPANIC", ret2,
				 mix_strerror(ret2));
			bad_at(&bad, what, n, site, why);
			if (ret2 == 0 && !res.no_changes)
				model_apply(&m, &y, res.modseq);
		}
		if (site && !strcmp(site, "fdatasync")) {
			struct mix_txn *tx = NULL;
			int rb = mix_txn_begin(idx, &tx);
			if (rb == 0)
				mix_txn_abort(&tx);
			fdatasync_faults++;
			epanic_after_sync += ret2 == MIX_EPANIC &&
					     rb == MIX_EPANIC;
		}
		mix_index_close(&idx);
		/* reopen: every acknowledged commit, the failed one whole or
		 * not at all */
		idx = open_or_bail(e, dir, 0);
		st = state_check(idx, &m, &t, why, sizeof(why));
		if (st < 0)
			bad_at(&bad, what, n, site, why);
		present += st == 1;
		gen_txn(&m, &y, 1);
		{
			uint64_t top = m.last_modseq;
			ret = commit_model(idx, &m, &y, MIX_DURABILITY_SYNC,
					   &res);
			if (ret < 0 || (!res.no_changes && res.modseq <= top)) {
				snprintf(why, sizeof(why), "commit after "
					 "reopen: %d (%s), modseq %" PRIu64
					 " (must be above %" PRIu64 ")", ret,
					 mix_strerror(ret), res.modseq, top);
				bad_at(&bad, what, n, site, why);
			}
		}
	}
	diag("%s: %u sites: %s; the failed commit was there after reopen "
	     "%u times", what, sites.n, sites.list, present);
	is(bad.n, 0, "%s: every fault is the committer's error, readers see "
	   "no part of the failed commit, later commits get MIX_EPANIC (after "
	   "a log write out of space: succeed), reopen shows every "
	   "acknowledged commit", what);
	ok(done, "%s: the walk passed the last I/O call (%u)", what, n - 1);
	if (err == -ENOSPC)
		ok(nospace > 0, "%s: %u log writes ran out of space and the "
		   "index went on", what, nospace);
	if (d == MIX_DURABILITY_SYNC) {
		ok(strstr(sites.list, "pwrite") &&
		   strstr(sites.list, "fdatasync") &&
		   strstr(sites.list, "pwrite") < strstr(sites.list,
							  "fdatasync"),
		   "%s: the commit writes, then fdatasyncs (sites: %s)", what,
		   sites.list);
		is(epanic_after_sync, fdatasync_faults, "%s: after a failed "
		   "fdatasync, begin and commit return MIX_EPANIC until "
		   "reopen (%d of %d)", what, epanic_after_sync,
		   fdatasync_faults);
	} else {
		ok(!strstr(sites.list, "sync"), "%s: a NONE commit does not "
		   "sync (sites: %s)", what, sites.list);
	}
	mix_index_close(&idx);
	model_free(&m);
	rm_index_dir(dir);
	free(dir);
}

/* ---- (b) checkpoint + rotation ------------------------------------------- */

/* Commit 8-append fillers (all the same size) until the next one will
 * take the log past the rotate size.  Returns the filler's size. */
static void fill_to_edge(struct mix_index *idx, struct fmodel *m)
{
	struct mix_commit_result res;
	uint32_t file = 0, prev = 0, size = 0;
	struct ftxn f = { .nappend = 8 };

	for (int i = 0; i < 100000; i++) {
		uint32_t off;
		if (commit_model(idx, m, &f, MIX_DURABILITY_NONE, &res) < 0)
			BAIL("filler: %s", mix_last_error());
		off = (uint32_t)res.modseq;
		if ((uint32_t)(res.modseq >> 32) != file) {
			file = (uint32_t)(res.modseq >> 32);
			prev = 0;
			continue;
		}
		if (prev)
			size = off - prev;
		prev = off;
		/* this one ends at off + size; the next at off + 2 size */
		if (size && off + size < ROTATE_SMALL &&
		    off + 2 * size >= ROTATE_SMALL)
			return;
	}
	BAIL("filler never reached the rotate size");
}

static void walk_checkpoint(struct mix_engine *e, int err)
{
	const char *ename = err == -EIO ? "EIO" : "ENOSPC";
	char *dir = tu_tmpdir("faults-ckpt"), why[512], what[64];
	struct mix_index *idx = open_or_bail(e, dir, MIX_OPEN_CREATE);
	struct fmodel m = { .next_uid = 1 };
	struct sites sites = { "", 0 };
	struct bad bad = { 0 };
	struct ftxn x = { .nappend = 8 }, z;
	unsigned n, poisoned = 0, continued = 0;
	int done = 0;

	snprintf(what, sizeof(what), "checkpoint+rotation %s", ename);
	for (n = 1; n < 100 && !done; n++) {
		struct mix_commit_result res;
		const char *site;
		uint64_t before;
		int ret, ret2, st;

		fill_to_edge(idx, &m);
		before = m.last_modseq;
		mix_io_fault_set(n, err);
		ret = run_txn(idx, &x, MIX_DURABILITY_SYNC, &res);
		/* the checkpoint runs on the writer after the ack: wait */
		if (barrier(idx) < 0)
			BAIL("barrier: %s", mix_last_error());
		site = mix_io_fault_fired();
		done = mix_io_fault_pending() != 0;
		mix_io_fault_set(0, 0);
		if (ret == 0)
			model_apply(&m, &x, res.modseq);
		if (ret == 0 && (uint32_t)(res.modseq >> 32) ==
		    (uint32_t)(before >> 32) && (uint32_t)res.modseq +
		    ((uint32_t)res.modseq - (uint32_t)before) < ROTATE_SMALL)
			BAIL("the armed commit did not reach the rotate size");
		if (done)
			break;
		sites_add(&sites, site);
		if (n <= 2 ? ret != err : ret != 0) {
			/* calls 1-2 are the commit's own write and sync; a
			 * checkpoint failure is not the committer's */
			snprintf(why, sizeof(why), "commit returned %d (%s), "
				 "expected %d", ret, mix_strerror(ret),
				 n <= 2 ? err : 0);
			bad_at(&bad, what, n, site, why);
		}
		if (state_check(idx, &m, ret == 0 ? NULL : &x, why,
				sizeof(why)) < 0)
			bad_at(&bad, what, n, site, why);
		/* the engine goes on, or refuses until reopened */
		gen_txn(&m, &z, 1);
		ret2 = commit_model(idx, &m, &z, MIX_DURABILITY_SYNC, &res);
		if (ret2 == MIX_EPANIC) {
			poisoned++;
		} else if (ret2 == 0) {
			continued++;
			if (barrier(idx) < 0)
				bad_at(&bad, what, n, site, "barrier failed");
			if (state_check(idx, &m, NULL, why, sizeof(why)) < 0)
				bad_at(&bad, what, n, site, why);
		} else {
			snprintf(why, sizeof(why), "next commit returned %d "
				 "(%s), expected 0 or MIX_EPANIC", ret2,
				 mix_strerror(ret2));
			bad_at(&bad, what, n, site, why);
		}
		/* a log write out of space before anything of the batch
		 * landed fails the batch alone (format.md / design.md); any
		 * other failed log write or sync poisons */
		if (n <= 2 && ret2 != MIX_EPANIC &&
		    !(site_is(site, "pwrite") && err == -ENOSPC))
			bad_at(&bad, what, n, site, "a failed log write or "
			       "sync did not poison the index");
		if (n <= 2 && site_is(site, "pwrite") && err == -ENOSPC &&
		    ret2 != 0)
			bad_at(&bad, what, n, site, "a log write out of "
			       "space poisoned the index");
		mix_index_close(&idx);
		idx = open_or_bail(e, dir, 0);
		st = state_check(idx, &m, ret == 0 ? NULL : &x, why,
				 sizeof(why));
		if (st < 0) {
			char d2[600];
			snprintf(d2, sizeof(d2), "after reopen: %s (next commit "
				 "had returned %d)", why, ret2);
			bad_at(&bad, what, n, site, d2);
			/* resynchronise the model to go on walking */
			break;
		}
	}
	diag("%s: %u sites: %s", what, sites.n, sites.list);
	diag("%s: afterwards the engine continued %u times, refused "
	     "(MIX_EPANIC) %u times", what, continued, poisoned);
	is(bad.n, 0, "%s: the commit fails only for its own write/sync, "
	   "readers see the acknowledged state, the engine continues or "
	   "refuses, reopen shows every acknowledged commit", what);
	ok(done && strstr(sites.list, "rename") &&
	   strstr(sites.list, "fsync_dir"), "%s: the walk passed the last "
	   "I/O call (%u) and covered the checkpoint's and the rotation's "
	   "renames", what, n - 1);
	mix_index_close(&idx);
	model_free(&m);
	rm_index_dir(dir);
	free(dir);
}

/*
 * (b2) A crash right after a rotation whose last step (the directory
 * fsync after the second rename) failed.  The new log is in place and
 * says the old one ends where it ended; a commit the writer acknowledged
 * after that must not go to the old file past that end, where recovery
 * never reads (docs/format.md §3.5).  The walk above cannot see this: the
 * next batch retries the checkpoint and covers the commit.  Here the
 * retry fails too, and the files are copied as a crash would leave them.
 */
static void copy_files(const char *from, const char *to)
{
	struct tu_files f = { { 0 }, { 0 } };
	tu_files_save(from, &f);
	tu_files_restore(to, &f);
	tu_files_free(&f);
}

static void crash_after_failed_rotation(struct mix_engine *e)
{
	char *dir = tu_tmpdir("faults-rot"), *copy = tu_tmpdir("faults-rotc");
	char why[512];
	struct mix_index *idx = open_or_bail(e, dir, MIX_OPEN_CREATE);
	struct fmodel m = { .next_uid = 1 };
	struct mix_commit_result res;
	struct ftxn x = { .nappend = 8 }, z;
	unsigned long calls0, calls;
	int ret, ret_z, st;

	/* count the I/O calls of a commit + checkpoint + rotation */
	fill_to_edge(idx, &m);
	calls0 = mix_io_calls();
	if (commit_model(idx, &m, &x, MIX_DURABILITY_SYNC, NULL) < 0 ||
	    barrier(idx) < 0)
		BAIL("rotation: %s", mix_last_error());
	calls = mix_io_calls() - calls0;
	/* again, failing the last call: the rotation's final fsync_dir */
	fill_to_edge(idx, &m);
	mix_io_fault_set((unsigned)calls, -EIO);
	ret = commit_model(idx, &m, &x, MIX_DURABILITY_SYNC, NULL);
	/* wait for the writer to reach the rotation's last call without
	 * queueing a batch (a batch would retry the rotation) */
	while (mix_io_fault_pending())
		sched_yield();
	ok(ret == 0 && mix_io_fault_fired() &&
	   !strcmp(mix_io_fault_fired(), "fsync_dir"), "failed rotation: "
	   "the commit that started it is acknowledged (%d), the fault hit "
	   "the rotation's last call (%s)", ret,
	   mix_io_fault_fired() ? mix_io_fault_fired() : "none");
	/* Z: its write and sync work, the checkpoint the batch retries
	 * fails at once (third call from now) */
	gen_txn(&m, &z, 2);
	mix_io_fault_set(3, -EIO);
	ret_z = commit_model(idx, &m, &z, MIX_DURABILITY_SYNC, &res);
	while (ret_z == 0 && mix_io_fault_pending())
		sched_yield();   /* the retry has not reached its call yet */
	mix_io_fault_set(0, 0);
	/* kill -9 now: the files as they are */
	copy_files(dir, copy);
	mix_index_close(&idx);
	idx = open_or_bail(e, copy, 0);
	st = state_check(idx, &m, NULL, why, sizeof(why));
	ok(ret_z == MIX_EPANIC || st == 0, "crash after a rotation whose "
	   "last directory fsync failed: a later commit is refused (%d) or "
	   "survives the crash%s%s", ret_z, st ? ": " : "", st ? why : "");
	mix_index_close(&idx);
	model_free(&m);
	rm_index_dir(dir);
	rm_index_dir(copy);
	free(dir);
	free(copy);
}

/* ---- (c) open / recovery ------------------------------------------------------ */

/* The transactions of the crashed process, generated before the fork. */
static struct ftxn crash_txns[CRASH_TXNS];

/* Child: commit the transactions with SYNC, report each modseq (0 for no
 * change), die without closing (as after kill -9).  No threads exist in
 * the parent yet, so fork() is safe. */
static void crash_child(const char *dir, int fd)
{
	struct mix_engine *e = engine_new(ROTATE_SMALL);
	struct mix_index *idx;
	struct mix_commit_result res;

	if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		_exit(2);
	for (int i = 0; i < CRASH_TXNS; i++) {
		uint64_t ms;
		if (run_txn(idx, &crash_txns[i], MIX_DURABILITY_SYNC, &res) < 0)
			_exit(3);
		ms = res.no_changes ? 0 : res.modseq;
		if (write(fd, &ms, sizeof(ms)) != (ssize_t)sizeof(ms))
			_exit(4);
	}
	/* let any checkpoint of the last batch finish: its state is what
	 * the walk restores */
	if (barrier(idx) < 0)
		_exit(5);
	_exit(0);
}

/* Build the crashed directory and its model. */
static void make_crash(const char *dir, struct fmodel *m, struct tu_files *f)
{
	struct fmodel gen = { .next_uid = 1 };
	int fds[2], status;
	pid_t pid;

	for (int i = 0; i < CRASH_TXNS; i++) {
		gen_txn(&gen, &crash_txns[i], 1 + tu_rand_below(&rng, 8));
		model_apply(&gen, &crash_txns[i], 1);
	}
	model_free(&gen);
	if (pipe(fds) < 0)
		BAIL("pipe");
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		close(fds[0]);
		crash_child(dir, fds[1]);
	}
	close(fds[1]);
	for (int i = 0; i < CRASH_TXNS; i++) {
		uint64_t ms;
		if (read(fds[0], &ms, sizeof(ms)) != (ssize_t)sizeof(ms))
			BAIL("crash child died after %d commits", i);
		if (ms)
			model_apply(m, &crash_txns[i], ms);
	}
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		BAIL("crash child: status 0x%x", status);
	tu_files_save(dir, f);
	if (!f->data[0] || !f->data[1] || !f->data[2])
		BAIL("crash child left no mix.index, .log and .log.2");
}

static void walk_open(struct mix_engine *e, int err, unsigned flags,
		      const struct fmodel *crash, const struct tu_files *f)
{
	const char *ename = err == -EIO ? "EIO" : "ENOSPC";
	char *dir = tu_tmpdir("faults-open"), why[512], what[64];
	struct sites sites = { "", 0 };
	struct bad bad = { 0 };
	unsigned n;
	int done = 0;

	snprintf(what, sizeof(what), "open%s %s",
		 flags & MIX_OPEN_READONLY ? " read-only" : "", ename);
	for (n = 1; n < 200 && !done; n++) {
		struct mix_index *idx = NULL;
		struct fmodel m;
		struct ftxn t;
		const char *site;
		int ret;

		tu_files_restore(dir, f);
		mix_io_fault_set(n, err);
		ret = mix_index_open(e, dir, flags, &idx);
		site = mix_io_fault_fired();
		done = mix_io_fault_pending() != 0;
		mix_io_fault_set(0, 0);
		model_copy(&m, crash);
		if (!done)
			sites_add(&sites, site);
		if (ret == 0) {
			/* a fault the open may survive (e.g. the remap of the
			 * new checkpoint): then the state must be right */
			if (state_check(idx, &m, NULL, why, sizeof(why)) != 0)
				bad_at(&bad, what, n, site, why);
			mix_index_close(&idx);
		} else if (done || idx != NULL || !*mix_last_error()) {
			snprintf(why, sizeof(why), "open returned %d (%s) "
				 "without a fault, or no message, or set "
				 "*index", ret, mix_strerror(ret));
			bad_at(&bad, what, n, site, why);
		} else if (ret != err && ret != MIX_EPANIC) {
			snprintf(why, sizeof(why), "open returned %d (%s: %s), "
				 "expected the injected %d", ret,
				 mix_strerror(ret), mix_last_error(), err);
			bad_at(&bad, what, n, site, why);
		}
		/* cleared: a writable open recovers everything, and a new
		 * writer can commit with a modseq above all before */
		idx = open_or_bail(e, dir, 0);
		if (state_check(idx, &m, NULL, why, sizeof(why)) != 0) {
			char d2[600];
			snprintf(d2, sizeof(d2), "reopen: %s", why);
			bad_at(&bad, what, n, site, d2);
		}
		gen_txn(&m, &t, 1);
		{
			struct mix_commit_result res;
			uint64_t top = m.last_modseq;
			ret = commit_model(idx, &m, &t, MIX_DURABILITY_SYNC,
					   &res);
			if (ret < 0 || res.modseq <= top) {
				snprintf(why, sizeof(why), "commit after "
					 "reopen: %d, modseq %" PRIu64 " (must "
					 "be above %" PRIu64 ")", ret,
					 res.modseq, top);
				bad_at(&bad, what, n, site, why);
			}
		}
		mix_index_close(&idx);
		model_free(&m);
	}
	diag("%s: %u sites: %s", what, sites.n, sites.list);
	is(bad.n, 0, "%s: every fault fails the open with the injected error "
	   "(or is survived with the right state); a later open recovers "
	   "every acknowledged commit and continues", what);
	ok(done, "%s: the walk passed the last I/O call (%u)", what, n - 1);
	rm_index_dir(dir);
	free(dir);
}

/* ---- (d) close ------------------------------------------------------------- */

static void walk_close(struct mix_engine *e, int err)
{
	const char *ename = err == -EIO ? "EIO" : "ENOSPC";
	char *dir = tu_tmpdir("faults-close"), why[512], what[64];
	struct fmodel m = { .next_uid = 1 };
	struct sites sites = { "", 0 };
	struct bad bad = { 0 };
	struct mix_index *idx = open_or_bail(e, dir, MIX_OPEN_CREATE);
	unsigned n;
	int done = 0;

	snprintf(what, sizeof(what), "close %s", ename);
	for (n = 1; n < 100 && !done; n++) {
		const char *site;
		struct ftxn t;
		int ret;

		for (int i = 0; i < 4; i++) {
			gen_txn(&m, &t, 1 + tu_rand_below(&rng, 3));
			if (commit_model(idx, &m, &t, MIX_DURABILITY_SYNC,
					 NULL) < 0)
				BAIL("close setup: %s", mix_last_error());
		}
		mix_io_fault_set(n, err);
		ret = mix_index_close(&idx);
		site = mix_io_fault_fired();
		done = mix_io_fault_pending() != 0;
		mix_io_fault_set(0, 0);
		if (idx != NULL)
			bad_at(&bad, what, n, site, "close did not clear *index");
		if (!done) {
			sites_add(&sites, site);
			if (ret >= 0 && (!site || strcmp(site, "unlink"))) {
				snprintf(why, sizeof(why), "close returned %d, "
					 "expected the checkpoint's error", ret);
				bad_at(&bad, what, n, site, why);
			}
		} else if (ret != 0) {
			bad_at(&bad, what, n, "none", mix_last_error());
		}
		idx = open_or_bail(e, dir, 0);
		if (state_check(idx, &m, NULL, why, sizeof(why)) != 0)
			bad_at(&bad, what, n, site, why);
	}
	diag("%s: %u sites: %s", what, sites.n, sites.list);
	is(bad.n, 0, "%s: a failed final checkpoint is reported and loses "
	   "nothing acknowledged", what);
	ok(done, "%s: the walk passed the last I/O call (%u)", what, n - 1);
	mix_index_close(&idx);
	model_free(&m);
	rm_index_dir(dir);
	free(dir);
}

/* ---- (e) recreate ---------------------------------------------------------- */

/* RECREATE must pick an indexid whose modseqs are above every modseq the
 * old index issued (docs/format.md §4), also when I/O fails on the way. */
static void walk_recreate(struct mix_engine *e, int err,
			  const struct fmodel *crash, const struct tu_files *f)
{
	const char *ename = err == -EIO ? "EIO" : "ENOSPC";
	char *dir = tu_tmpdir("faults-recreate"), why[512], what[64];
	struct sites sites = { "", 0 };
	struct bad bad = { 0 };
	unsigned n, emptied = 0;
	int done = 0;

	snprintf(what, sizeof(what), "recreate %s", ename);
	for (n = 1; n < 200 && !done; n++) {
		struct mix_commit_result res;
		struct mix_index *idx = NULL;
		struct fmodel m = { .next_uid = 1 };
		struct ftxn t;
		const char *site;
		int ret;

		tu_files_restore(dir, f);
		mix_io_fault_set(n, err);
		ret = mix_index_open(e, dir, MIX_OPEN_RECREATE, &idx);
		site = mix_io_fault_fired();
		done = mix_io_fault_pending() != 0;
		mix_io_fault_set(0, 0);
		if (!done)
			sites_add(&sites, site);
		if (ret < 0 && !dir_has(dir, "mix.index") &&
		    !dir_has(dir, "mix.index.log") &&
		    !dir_has(dir, "mix.index.log.2")) {
			/* everything old is gone: only the clock protects
			 * the next index's modseqs (docs/format.md §4) */
			emptied++;
			continue;
		}
		if (ret < 0) {
			/* the old index is partly there: whatever opens now
			 * must not issue a modseq the old one issued */
			idx = NULL;
			if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0) {
				snprintf(why, sizeof(why), "after a failed "
					 "recreate the directory does not open: "
					 "%s", mix_last_error());
				bad_at(&bad, what, n, site, why);
				continue;
			}
		}
		gen_txn(&m, &t, 1);
		ret = run_txn(idx, &t, MIX_DURABILITY_SYNC, &res);
		if (ret < 0 || res.modseq <= crash->last_modseq) {
			snprintf(why, sizeof(why), "first commit: %d, modseq "
				 "%" PRIu64 " not above the old index's highest "
				 "%" PRIu64 " (a modseq issued twice)", ret,
				 res.modseq, crash->last_modseq);
			bad_at(&bad, what, n, site, why);
		}
		mix_index_close(&idx);
	}
	diag("%s: %u sites: %s", what, sites.n, sites.list);
	diag("%s: %u failures left an empty directory (the modseq floor then "
	     "rests on the clock alone, format.md §4)", what, emptied);
	/* was a TODO: RECREATE deleted mix.index.log before mix.index; now
	 * the new mix.index replaces the old one first and leftover logs of
	 * the old indexid are ignored */
	is(bad.n, 0, "%s: whatever fails while old files remain, the next "
	   "index's modseqs stay above the old one's", what);
	ok(done, "%s: the walk passed the last I/O call (%u)", what, n - 1);
	rm_index_dir(dir);
	free(dir);
}

int main(void)
{
	struct fmodel crash = { .next_uid = 1 };
	struct mix_engine *big, *small;
	struct tu_files f = { { 0 }, { 0 } };
	char *cdir = tu_tmpdir("faults-crash");

	rng = tu_seed();
	/* the walks count the I/O calls of a commit, its checkpoint and its
	 * rotation in one thread's order: checkpoints on the writer role,
	 * as before they moved to the checkpointer thread (checkpoint.c) */
	mix_ckpt_sync_only = 1;
	/* before any thread exists in this process */
	make_crash(cdir, &crash, &f);
	diag("crashed index: %u messages, highest acknowledged modseq %" PRIu64
	     "; files %zu + %zu + %zu bytes", crash.count, crash.last_modseq,
	     f.size[0], f.size[2], f.size[1]);
	big = engine_new(1u << 30);
	small = engine_new(ROTATE_SMALL);
	for (int i = 0; i < 2; i++) {
		walk_commit(big, errs[i], MIX_DURABILITY_SYNC);
		walk_commit(big, errs[i], MIX_DURABILITY_NONE);
		walk_checkpoint(small, errs[i]);
		if (i == 0)
			crash_after_failed_rotation(small);
		walk_open(small, errs[i], 0, &crash, &f);
		walk_open(small, errs[i], MIX_OPEN_READONLY, &crash, &f);
		walk_close(big, errs[i]);
		walk_recreate(small, errs[i], &crash, &f);
	}
	diag("fault sites walked: %lu", total_sites);
	ok(mix_engine_free(&big) == 0 && mix_engine_free(&small) == 0,
	   "engines freed (every index closed)");
	tu_files_free(&f);
	model_free(&crash);
	rm_index_dir(cdir);
	free(cdir);
	return tap_done();
}
