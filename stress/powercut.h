/*
 * The power-loss simulator's core (issue 10; docs/reliability.md
 * "Power-loss simulation"), in the spirit of CrashMonkey and ALICE.
 * Header-only so that stress/powercut.c (make powercut) and
 * tests/test-powercut.c share it.
 *
 * 1. Workload.  A fresh index directory, an engine with a tiny
 *    log_rotate_size, random sessions (writable opens with commits of
 *    both durabilities, async bursts the writer groups into batches,
 *    extension registrations, idle open+close, MIX_OPEN_RECREATE) with
 *    engine/fileio.c's trace hook on: every open, write, sync, truncate,
 *    rename, unlink and directory fsync of the engine is recorded with
 *    its data.  Each step records the trace length when it started and
 *    when it was acknowledged, and the live state after it (digests with
 *    and without modseqs, next_uid, the expunge history); inside an
 *    async burst the state comes from an untraced shadow index that gets
 *    every transaction synchronously (equal but for modseqs).
 * 2. File-system model.  Files by identity (inode; renames move names):
 *    durable content plus the writes and truncates since their last
 *    fsync/fdatasync; the directory: its durable name->file map plus the
 *    creates, renames and unlinks since its last fsync.
 * 3. Crash states.  For every cut point k (after k events): durable
 *    state only, everything, prefixes of each file's pending operations,
 *    the next write torn at a 512-byte or 4 KiB boundary (the rest absent,
 *    zeros or garbage), prefixes of the directory operations, and random
 *    subsets (reordering; a directory operation is left out together with
 *    every later one on the same name or file).  Duplicate states (same
 *    files, same expectations) are checked once.
 * 4. Checks.  Each state is written to a scratch directory, opened
 *    read-only and then writable: both opens must succeed (an index must
 *    exist once its creating open returned) and see the same state, that
 *    after some step j with lo <= j <= hi, where lo is the last step made
 *    durable before the cut (a SYNC commit, close or (re)create
 *    acknowledged) and hi the last step started before it — so an
 *    acknowledged SYNC commit is present and a NONE one is missing or
 *    whole, never half-applied; next_uid not below step j's; one more
 *    commit must get a modseq above every modseq acknowledged before the
 *    cut, and an appended UID above every UID handed out in the state's
 *    epoch (counted apart: uid_reuse); a read-only reopen must hold it.
 *    Sampled states also go through `mixctl check`, and get the check's
 *    own recovery session cut again (a second power cut, depth 1).
 *
 * Single-threaded apart from the engine's writer, whose I/O the trace
 * hook records under a mutex and whose async-commit callbacks write the
 * acknowledgement of their step (steps[] is not reallocated meanwhile).
 */
#ifndef MIX_POWERCUT_H
#define MIX_POWERCUT_H

#include <pthread.h>
#include <sys/wait.h>

#include "fileio.h"
#include "mix/mix.h"
#include "stress.h"

#define PC_NAME_MAX 48
#define PC_MAX_FAIL_PRINT 40
#define PC_MAX_FAIL_SAVE 12

/* ---- the recorded trace -------------------------------------------------- */

struct pc_event {
	enum mix_io_event_kind kind;
	char name[PC_NAME_MAX], name2[PC_NAME_MAX];
	int flags;
	uint64_t ino;
	uint64_t offset, len;
	uint8_t *data;
};

enum pc_step_kind { PC_STEP_CREATE, PC_STEP_OPEN, PC_STEP_COMMIT,
		    PC_STEP_EXT, PC_STEP_CLOSE, PC_STEP_RECREATE };

/* UIDs start again at 1 after MIX_OPEN_RECREATE: the UID check compares
 * within the epoch (count of re-creations) of the state found. */
#define PC_EPOCHS 64

struct pc_step {
	enum pc_step_kind kind;
	int sync;                /* COMMIT with MIX_DURABILITY_SYNC */
	size_t start_ev, ack_ev; /* trace length at call and return */
	uint64_t modseq;         /* COMMIT: the result's modseq */
	uint32_t last_uid;       /* COMMIT: highest UID handed out */
	uint64_t digest;         /* live state after the step; 0: not
				  * known (inside an async burst) */
	uint64_t digest_nm;      /* the same without modseqs (from the
				  * shadow index for async bursts) */
	uint64_t next_uid;
	uint64_t xhist;          /* pc_xhist() after the step */
	unsigned epoch;
	char what[96];
	char hdr[160];           /* pc_hdr_desc() after it, or "" */
};

struct pc_trace {
	pthread_mutex_t lock;
	const char *dir;
	size_t dirlen;
	int on;
	struct pc_event *ev;
	size_t nev, cap;
	struct pc_step *steps;
	size_t nsteps, capsteps;
	unsigned epoch;
};

static inline void pc_name_of(char *dst, const char *path, const char *dir,
			      size_t dirlen)
{
	const char *n = path;
	if (strncmp(path, dir, dirlen) == 0 && path[dirlen] == '/')
		n = path + dirlen + 1;
	snprintf(dst, PC_NAME_MAX, "%s", n);
}

/* The fileio.c hook: copy the event (engine's writer or our thread). */
static void pc_trace_hook(void *ctx, const struct mix_io_event *io)
{
	struct pc_trace *t = ctx;
	struct pc_event *e;

	pthread_mutex_lock(&t->lock);
	if (!t->on || strncmp(io->path, t->dir, t->dirlen) != 0) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (io->kind == MIX_IO_EV_OPEN &&
	    (io->flags & (O_CREAT | O_TRUNC)) == 0) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (t->nev == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->ev = realloc(t->ev, t->cap * sizeof(*t->ev));
		if (!t->ev)
			st_die("out of memory");
	}
	e = &t->ev[t->nev++];
	memset(e, 0, sizeof(*e));
	e->kind = io->kind;
	if (io->kind == MIX_IO_EV_FSYNC_DIR)
		snprintf(e->name, PC_NAME_MAX, ".");
	else
		pc_name_of(e->name, io->path, t->dir, t->dirlen);
	if (io->path2)
		pc_name_of(e->name2, io->path2, t->dir, t->dirlen);
	e->flags = io->flags;
	e->ino = io->ino;
	e->offset = io->offset;
	e->len = io->len;
	if (io->kind == MIX_IO_EV_PWRITE) {
		e->data = malloc(io->len ? io->len : 1);
		if (!e->data)
			st_die("out of memory");
		memcpy(e->data, io->data, io->len);
	}
	pthread_mutex_unlock(&t->lock);
}

static inline size_t pc_trace_len(struct pc_trace *t)
{
	size_t n;
	pthread_mutex_lock(&t->lock);
	n = t->nev;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static inline void pc_trace_free(struct pc_trace *t)
{
	for (size_t i = 0; i < t->nev; i++)
		free(t->ev[i].data);
	free(t->ev);
	free(t->steps);
	pthread_mutex_destroy(&t->lock);
}

/* ---- state digests ----------------------------------------------------- */

static inline uint64_t pc_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}
#define PC_FNV0 0xcbf29ce484222325ull
#define PC_HV(h, v) do { __typeof__(v) v_ = (v); \
	(h) = pc_fnv((h), &v_, sizeof(v_)); } while (0)

static const char *const pc_ext_names[2] = { "pc.alpha", "pc.beta" };
static const uint16_t pc_ext_rec[2] = { 8, 4 };
static const uint32_t pc_ext_hdr[2] = { 16, 0 };

/* Everything a client can see of the index, hashed.  The lowwater
 * hints are left out (they may be recomputed). */
static inline uint64_t pc_digest_mode(struct mix_index *ix, int modseqs)
{
	const struct mix_snap *s;
	struct mix_snap_counts c;
	struct mix_iter it;
	struct mix_record r;
	uint32_t ext[2], has[2];
	uint64_t h = PC_FNV0;

	mix_read_lock();
	s = mix_index_snap(ix);
	mix_snap_counts(s, &c);
	/* next_uid and highest_modseq are compared apart: a writable open
	 * after a crash may raise next_uid above UIDs the lost writer may
	 * have handed out, and log that (a UID floor) with a new
	 * highest_modseq */
	PC_HV(h, mix_snap_messages_count(s));
	PC_HV(h, mix_snap_uid_validity(s));
	PC_HV(h, c.seen);
	PC_HV(h, c.deleted);
	PC_HV(h, c.first_recent_uid);
	for (int i = 0; i < 2; i++) {
		size_t sz = 0;
		const void *d;
		has[i] = mix_snap_ext_lookup(s, pc_ext_names[i], &ext[i]);
		PC_HV(h, has[i]);
		if (has[i] && (d = mix_snap_ext_hdr(s, ext[i], &sz)) != NULL)
			h = pc_fnv(h, d, sz);
	}
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r)) {
		PC_HV(h, r.uid);
		PC_HV(h, r.flags);
		if (modseqs)
			PC_HV(h, r.modseq);
		for (uint32_t k = 0; k < r.keywords_bits; k++) {
			if (mix_record_has_keyword(&r, k)) {
				const char *n = mix_snap_keyword_name(s, k);
				h = pc_fnv(h, n, strlen(n) + 1);
			}
		}
		for (int i = 0; i < 2; i++) {
			size_t sz = 0;
			const void *d = has[i] ?
				mix_record_ext(s, &r, ext[i], &sz) : NULL;
			if (d)
				h = pc_fnv(h, d, sz);
		}
	}
	mix_read_unlock();
	return h;
}

static inline uint64_t pc_digest(struct mix_index *ix)
{
	return pc_digest_mode(ix, 1);
}

/* The header values of ix, for failure messages. */
static inline void pc_hdr_desc(struct mix_index *ix, char *buf, size_t size)
{
	const struct mix_snap *s;
	struct mix_snap_counts c;

	mix_read_lock();
	s = mix_index_snap(ix);
	mix_snap_counts(s, &c);
	snprintf(buf, size, "messages %u next_uid %u uidvalidity %u "
		 "hms %llu seen %u deleted %u first_recent %u",
		 mix_snap_messages_count(s), mix_snap_next_uid(s),
		 mix_snap_uid_validity(s),
		 (unsigned long long)mix_snap_highest_modseq(s), c.seen,
		 c.deleted, c.first_recent_uid);
	mix_read_unlock();
}

static inline uint64_t pc_hms(struct mix_index *ix)
{
	uint64_t m;
	mix_read_lock();
	m = mix_snap_highest_modseq(mix_index_snap(ix));
	mix_read_unlock();
	return m;
}

static inline uint32_t pc_next_uid(struct mix_index *ix)
{
	uint32_t n;
	mix_read_lock();
	n = mix_snap_next_uid(mix_index_snap(ix));
	mix_read_unlock();
	return n;
}

/* The expunge history (QRESYNC) as a hash of mix_snap_expunged_since(0)
 * (UIDs, no modseqs), or 0 when it cannot answer that far back. */
static inline uint64_t pc_xhist(struct mix_index *ix)
{
	struct mix_uid_range *rg = NULL;
	uint32_t n = 0;
	uint64_t h = PC_FNV0;
	int ret;

	mix_read_lock();
	ret = mix_snap_expunged_since(mix_index_snap(ix), 0, &rg, &n, NULL);
	mix_read_unlock();
	if (ret != 1)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		PC_HV(h, rg[i].first);
		PC_HV(h, rg[i].last);
	}
	free(rg);
	return h | 1;
}

/* What a state is compared by: digests with and without modseqs,
 * next_uid (which must not be below the matched step's) and the
 * expunge history (which must be the matched step's when it answers). */
#define PC_STATE_OF(ix) { pc_digest(ix), pc_digest_mode(ix, 0), \
			  pc_next_uid(ix), pc_xhist(ix), pc_hms(ix) }

/* ---- options, counters ------------------------------------------------- */

struct pc_work;
struct pc_run;
struct pc_trace;

struct pc_opts {
	uint64_t seed;
	unsigned traces;        /* traces of one run (profiles in turn) */
	unsigned ops;           /* workload steps per trace */
	unsigned prefix_max;    /* prefixes of one file tried per cut */
	unsigned random_per_cut;
	unsigned cut_stride;    /* check every cut_stride-th cut (1 = all) */
	unsigned nested_every;  /* cut the recovery of every n-th state */
	/* cut the recovery of every n-th "everything" state (what a kill -9
	 * leaves) with what was not durable at the cut still pending: the
	 * dead writer's page cache, which the recovery must make durable
	 * before it names it (0: never) */
	unsigned kill_nested_every;
	const char *mixctl;     /* run `mixctl check` on ... */
	unsigned mixctl_every;  /* ... every n-th state (0: never) */
	int strict_uids;        /* UID reuse is a failure */
	int verbose;
	int quiet;              /* no per-failure lines (TAP) */
	const char *tmp;        /* scratch parent directory */
	const char *findings;   /* append failures to this file, or NULL */
	const char *pfx;        /* before every output line ("# " in TAP) */
	/* another workload and check (stress/powercut-list.h: --list);
	 * NULL: the index workload below.  mode prefixes trace names */
	int (*workload)(struct pc_work *w, unsigned ops);
	int (*check)(struct pc_run *r, struct pc_trace *nt, char *err,
		     size_t esize);
	const char *mode;
};

#define PC_PFX(o) ((o)->pfx ? (o)->pfx : "")

struct pc_totals {
	uint64_t events, steps, cuts, states, dup_states, no_index;
	uint64_t failures, uid_reuse, modseq_reuse, open_fail, mismatch;
	uint64_t torn, subsets, nested_runs, nested_states;
	/* of nested_*: recoveries after a kill -9 (kill_nested_every), and
	 * their states that were one the kill's cut alone could leave */
	uint64_t kill_runs, kill_states, kill_fallbacks, kill_candidates;
	uint64_t commits, commits_sync, commits_async, recreates, idle;
	uint64_t xhist_lost;    /* history could answer, recovered cannot */
	uint64_t mixctl_runs, mixctl_fail;
	uint64_t uid_reuse_recovery;   /* of uid_reuse: at depth 1 */
	/* opens that skipped UIDs, so set a lost point (format.md §2.9),
	 * and of those, lost points not above what the workload saw */
	uint64_t lost_points, lost_point_low;
};

/* Engine warnings of the check in progress (for failure reports). */
static char pc_warnings[2048];
static void pc_warning(void *ctx, const char *msg)
{
	size_t n = strlen(pc_warnings);
	if (n + 4 < sizeof(pc_warnings))
		snprintf(pc_warnings + n, sizeof(pc_warnings) - n, "%s%s",
			 n ? " | " : "", msg);
}

/* ---- workload ------------------------------------------------------------ */

static const char *const pc_profile_names[4] = {
	"sync", "none", "idle-ext", "bulk"
};

struct pc_work {
	struct pc_trace *t;
	struct mix_engine *eng;
	struct mix_index *ix;
	char *dir;
	/* the shadow: an untraced index that gets every transaction too,
	 * synchronously, so that the state after each commit of an async
	 * burst is known (but for modseqs, which follow log offsets) */
	struct mix_index *sh;
	char *shdir;
	uint64_t rng;
	int profile;
	int created;
	uint32_t ext_id[2], sh_ext_id[2];
	int ext_have[2];       /* registered in this session */
	int ext_ever[2];       /* registered in some session */
	char err[512];
	void *user;            /* the other workload's (o->workload) */
	char *base;            /* the trace's scratch parent */
};

static inline size_t pc_step_begin(struct pc_trace *t, enum pc_step_kind k,
				   const char *what)
{
	struct pc_step *s;
	if (t->nsteps == t->capsteps) {
		t->capsteps = t->capsteps ? t->capsteps * 2 : 256;
		t->steps = realloc(t->steps, t->capsteps * sizeof(*t->steps));
		if (!t->steps)
			st_die("out of memory");
	}
	s = &t->steps[t->nsteps];
	memset(s, 0, sizeof(*s));
	s->kind = k;
	s->start_ev = pc_trace_len(t);
	if (k == PC_STEP_RECREATE && t->epoch + 1 < PC_EPOCHS)
		t->epoch++;
	s->epoch = t->epoch;
	snprintf(s->what, sizeof(s->what), "%s", what);
	return t->nsteps++;
}

/* The step is acknowledged: the trace length now, the live state. */
static inline void pc_step_end(struct pc_work *w, size_t j)
{
	struct pc_step *s = &w->t->steps[j];
	s->ack_ev = pc_trace_len(w->t);
	if (w->ix) {
		s->digest = pc_digest(w->ix);
		s->digest_nm = pc_digest_mode(w->ix, 0);
		s->next_uid = pc_next_uid(w->ix);
		s->xhist = pc_xhist(w->ix);
		pc_hdr_desc(w->ix, s->hdr, sizeof(s->hdr));
	} else if (j > 0) {
		s->digest = w->t->steps[j - 1].digest;
		s->digest_nm = w->t->steps[j - 1].digest_nm;
		s->next_uid = w->t->steps[j - 1].next_uid;
		s->xhist = w->t->steps[j - 1].xhist;
		memcpy(s->hdr, w->t->steps[j - 1].hdr, sizeof(s->hdr));
	}
}

static inline int pc_work_fail(struct pc_work *w, const char *what, int ret)
{
	snprintf(w->err, sizeof(w->err), "%s: %s (%s)", what,
		 mix_strerror(ret), mix_last_error());
	return -1;
}

/* A random existing UID range of the live index, or 0 if empty. */
static inline int pc_pick_range(struct pc_work *w, struct mix_uid_range *r)
{
	const struct mix_snap *s;
	struct mix_record rec;
	uint32_t n;
	int found = 0;

	mix_read_lock();
	s = mix_index_snap(w->ix);
	n = mix_snap_messages_count(s);
	if (n > 0 && mix_snap_lookup_seq(s, 1 + st_rand_below(&w->rng, n),
					 &rec)) {
		r->first = rec.uid;
		r->last = rec.uid + st_rand_below(&w->rng, 4);
		found = 1;
	}
	mix_read_unlock();
	return found;
}

static const char *const pc_keywords[6] = {
	"$Junk", "$NotJunk", "work", "home", "$Forwarded", "later"
};

/* The same call on the live transaction (T = tx[0], extension ids E =
 * w->ext_id) and the shadow's (tx[1], w->sh_ext_id). */
#define PC_BOTH(call) do { \
	for (int k_ = 0; k_ < 2 && ret == 0; k_++) { \
		struct mix_txn *T = tx[k_]; \
		const uint32_t *E = k_ ? w->sh_ext_id : w->ext_id; \
		(void)E; \
		ret = (call); \
	} \
} while (0)

static inline int pc_add_append(struct pc_work *w, struct mix_txn **tx,
				const uint8_t *data)
{
	const char *kw[3] = { NULL, NULL, NULL };
	uint8_t flags = (uint8_t)(st_rand(&w->rng) & 0x1f);
	uint32_t a = 0;
	int ret = 0;

	if (st_chance(&w->rng, 30))
		kw[0] = pc_keywords[st_rand_below(&w->rng, 6)];
	PC_BOTH(mix_txn_append(T, flags, kw, &a));
	for (int e = 0; e < 2 && ret == 0; e++)
		if (w->ext_have[e] && pc_ext_rec[e] && st_chance(&w->rng, 60))
			PC_BOTH(mix_txn_append_ext(T, a, E[e], data,
						   pc_ext_rec[e]));
	return ret;
}

/* Add one random operation to both transactions; describe it. */
static inline int pc_add_op(struct pc_work *w, struct mix_txn **tx,
			    char *what, size_t wsize)
{
	struct mix_uid_range r;
	unsigned kind = st_rand_below(&w->rng, 10);
	int ret = 0;
	uint8_t data[16];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)st_rand(&w->rng);
	if (kind >= 4 && !pc_pick_range(w, &r))
		kind = 0;
	if (kind < 4) {
		unsigned n = w->profile == 3 ? st_rand_range(&w->rng, 4, 24)
					     : st_rand_range(&w->rng, 1, 3);
		for (unsigned i = 0; i < n && ret == 0; i++)
			ret = pc_add_append(w, tx, data);
		snprintf(what, wsize, "append %u", n);
	} else if (kind < 6) {
		enum mix_modify m = (enum mix_modify)st_rand_below(&w->rng, 3);
		uint8_t fl = (uint8_t)(st_rand(&w->rng) & 0x1f);
		PC_BOTH(mix_txn_flags(T, &r, 1, m, fl));
		snprintf(what, wsize, "flags %u:%u", r.first, r.last);
	} else if (kind == 6) {
		const char *kw[3] = { pc_keywords[st_rand_below(&w->rng, 6)],
				      pc_keywords[st_rand_below(&w->rng, 6)],
				      NULL };
		enum mix_modify m = (enum mix_modify)st_rand_below(&w->rng, 3);
		PC_BOTH(mix_txn_keywords(T, &r, 1, m, kw));
		snprintf(what, wsize, "keywords %u:%u", r.first, r.last);
	} else if (kind == 7) {
		PC_BOTH(mix_txn_expunge(T, &r, 1));
		snprintf(what, wsize, "expunge %u:%u", r.first, r.last);
	} else if (kind == 8 && (w->ext_have[0] || w->ext_have[1])) {
		int e = w->ext_have[0] ? 0 : 1;
		uint32_t off = st_rand_below(&w->rng, 8);
		PC_BOTH(mix_txn_ext_set(T, r.first, E[e], data,
					pc_ext_rec[e]));
		if (pc_ext_hdr[e])
			PC_BOTH(mix_txn_ext_hdr_set(T, E[e], off, data, 8));
		snprintf(what, wsize, "ext %s uid %u", pc_ext_names[e],
			 r.first);
	} else {
		PC_BOTH(mix_txn_hdr_set(T, MIX_HDR_FIRST_RECENT_UID, r.first));
		snprintf(what, wsize, "first_recent %u", r.first);
	}
	return ret;
}

/* An async commit's acknowledgement (writer thread). */
struct pc_async {
	struct pc_trace *t;
	size_t step;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	unsigned *left;
	int *ret;
};

static void pc_async_done(void *ctx, int ret, const struct mix_commit_result *res)
{
	struct pc_async *a = ctx;
	size_t len = pc_trace_len(a->t);
	pthread_mutex_lock(a->lock);
	if (ret == 0) {
		a->t->steps[a->step].ack_ev = len;
		a->t->steps[a->step].modseq = res->modseq;
		a->t->steps[a->step].last_uid = res->last_uid;
	} else if (*a->ret == 0) {
		*a->ret = ret;
	}
	if (--*a->left == 0)
		pthread_cond_signal(a->cond);
	pthread_mutex_unlock(a->lock);
}

/* Build one random transaction for the live index and the shadow; the
 * shadow's is committed at once (its state is the step's digest_nm). */
static inline int pc_build_txn(struct pc_work *w, int sync, int async,
			       struct mix_txn **live, char *what,
			       size_t wsize, uint64_t *nm_r)
{
	struct mix_txn *tx[2] = { NULL, NULL };
	char op[64] = "";
	unsigned nops = st_rand_range(&w->rng, 1, 3);
	size_t len;
	int ret;

	if ((ret = mix_txn_begin(w->ix, &tx[0])) < 0 ||
	    (ret = mix_txn_begin(w->sh, &tx[1])) < 0) {
		mix_txn_abort(&tx[0]);
		return pc_work_fail(w, "mix_txn_begin", ret);
	}
	len = (size_t)snprintf(what, wsize, "commit %s%s:",
			       sync ? "SYNC" : "NONE", async ? " async" : "");
	for (unsigned i = 0; i < nops; i++) {
		if ((ret = pc_add_op(w, tx, op, sizeof(op))) < 0) {
			mix_txn_abort(&tx[0]);
			mix_txn_abort(&tx[1]);
			return pc_work_fail(w, op, ret);
		}
		if (len < wsize)
			len += (size_t)snprintf(what + len, wsize - len, " %s",
						op);
	}
	if ((ret = mix_txn_commit(&tx[1], MIX_DURABILITY_NONE, NULL)) < 0) {
		mix_txn_abort(&tx[0]);
		return pc_work_fail(w, "shadow commit", ret);
	}
	nm_r[0] = pc_digest_mode(w->sh, 0);
	nm_r[1] = pc_xhist(w->sh);
	*live = tx[0];
	return 0;
}

static inline int pc_commit(struct pc_work *w, int sync_pct)
{
	struct mix_txn *txn = NULL;
	struct mix_commit_result res;
	char what[96];
	int sync = st_chance(&w->rng, (unsigned)sync_pct), ret;
	uint64_t nm[2];
	size_t j;

	if (pc_build_txn(w, sync, 0, &txn, what, sizeof(what), nm) < 0)
		return -1;
	j = pc_step_begin(w->t, PC_STEP_COMMIT, what);
	ret = mix_txn_commit(&txn, sync ? MIX_DURABILITY_SYNC :
				      MIX_DURABILITY_NONE, &res);
	if (ret < 0)
		return pc_work_fail(w, what, ret);
	w->t->steps[j].sync = sync;
	w->t->steps[j].modseq = res.modseq;
	w->t->steps[j].last_uid = res.last_uid;
	mix_commit_result_free(&res);
	pc_step_end(w, j);
	if (w->t->steps[j].digest_nm != nm[0] || w->t->steps[j].xhist != nm[1])
		return pc_work_fail(w, "the shadow index disagrees with the "
				    "live one", MIX_EINVAL);
	return 0;
}

/* 2..6 commits handed over with mix_txn_commit_async before any is
 * acknowledged: the writer groups them into batches (one write, one
 * sync).  Only the last one's full state is known; the others are
 * matched without modseqs against the shadow. */
static inline int pc_commit_burst(struct pc_work *w, int sync_pct)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct pc_async a[6];
	unsigned n = st_rand_range(&w->rng, 2, 6), left = 0, sent = 0;
	int aret = 0, ret = 0;
	size_t first = w->t->nsteps;

	/* the writer's callbacks write into steps[]: no realloc meanwhile */
	if (w->t->capsteps < w->t->nsteps + 8) {
		w->t->capsteps = 2 * w->t->capsteps + 8;
		w->t->steps = realloc(w->t->steps,
				      w->t->capsteps * sizeof(*w->t->steps));
		if (!w->t->steps)
			st_die("out of memory");
	}

	for (unsigned i = 0; i < n && ret == 0; i++) {
		struct mix_txn *txn = NULL;
		char what[96];
		uint64_t nm[2];
		int sync = st_chance(&w->rng, (unsigned)sync_pct);
		size_t j;
		if (pc_build_txn(w, sync, 1, &txn, what, sizeof(what), nm) < 0)
			break;
		j = pc_step_begin(w->t, PC_STEP_COMMIT, what);
		w->t->steps[j].sync = sync;
		w->t->steps[j].digest_nm = nm[0];
		w->t->steps[j].xhist = nm[1];
		w->t->steps[j].ack_ev = SIZE_MAX;
		a[i] = (struct pc_async){ w->t, j, &lock, &cond, &left, &aret };
		pthread_mutex_lock(&lock);
		left++;
		pthread_mutex_unlock(&lock);
		ret = mix_txn_commit_async(&txn, sync ? MIX_DURABILITY_SYNC :
					   MIX_DURABILITY_NONE, pc_async_done,
					   &a[i]);
		if (ret < 0) {
			pthread_mutex_lock(&lock);
			left--;
			pthread_mutex_unlock(&lock);
			pc_work_fail(w, "mix_txn_commit_async", ret);
		} else {
			sent++;
		}
	}
	pthread_mutex_lock(&lock);
	while (left > 0)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	if (ret < 0 || w->err[0] || sent == 0)
		return ret < 0 || w->err[0] ? -1 : 0;
	if (aret < 0)
		return pc_work_fail(w, "async commit", aret);
	/* the last one's full state is the live one now */
	w->t->steps[first + sent - 1].digest = pc_digest(w->ix);
	w->t->steps[first + sent - 1].next_uid = pc_next_uid(w->ix);
	pc_hdr_desc(w->ix, w->t->steps[first + sent - 1].hdr,
		    sizeof(w->t->steps[0].hdr));
	if (pc_digest_mode(w->ix, 0) != w->t->steps[first + sent - 1].digest_nm)
		return pc_work_fail(w, "the shadow index disagrees with the "
				    "live one after a burst", MIX_EINVAL);
	return 0;
}

static inline int pc_ext_register(struct pc_work *w, int e)
{
	char what[64];
	size_t j;
	int ret;

	snprintf(what, sizeof(what), "ext_register %s", pc_ext_names[e]);
	j = pc_step_begin(w->t, PC_STEP_EXT, what);
	ret = mix_index_ext_register(w->ix, pc_ext_names[e], pc_ext_rec[e],
				     pc_ext_rec[e], pc_ext_hdr[e],
				     &w->ext_id[e]);
	if (ret == 0)
		ret = mix_index_ext_register(w->sh, pc_ext_names[e],
					     pc_ext_rec[e], pc_ext_rec[e],
					     pc_ext_hdr[e], &w->sh_ext_id[e]);
	if (ret < 0)
		return pc_work_fail(w, what, ret);
	w->ext_have[e] = w->ext_ever[e] = 1;
	pc_step_end(w, j);
	return 0;
}

static inline int pc_session_open(struct pc_work *w)
{
	int re = w->created && w->profile >= 2 && st_chance(&w->rng, 12);
	size_t j = pc_step_begin(w->t, re ? PC_STEP_RECREATE : w->created ?
				 PC_STEP_OPEN : PC_STEP_CREATE,
				 re ? "open (recreate)" : w->created ? "open" :
				 "open (create)");
	int ret = mix_index_open(w->eng, w->dir, re ? MIX_OPEN_RECREATE :
				 w->created ? 0 : MIX_OPEN_CREATE, &w->ix);
	if (ret < 0)
		return pc_work_fail(w, "mix_index_open", ret);
	if (re || !w->created) {
		/* the shadow starts afresh with the live index */
		if (w->sh)
			mix_index_close(&w->sh);
		ret = mix_index_open(w->eng, w->shdir, re ? MIX_OPEN_RECREATE
				     : MIX_OPEN_CREATE, &w->sh);
		if (ret < 0)
			return pc_work_fail(w, "shadow open", ret);
		w->ext_ever[0] = w->ext_ever[1] = 0;
	}
	w->created = 1;
	w->ext_have[0] = w->ext_have[1] = 0;
	pc_step_end(w, j);
	/* extensions of earlier sessions: look their ids up again */
	for (int e = 0; e < 2; e++)
		if (w->ext_ever[e] && pc_ext_register(w, e) < 0)
			return -1;
	return 0;
}

static inline int pc_session_close(struct pc_work *w)
{
	size_t j = pc_step_begin(w->t, PC_STEP_CLOSE, "close");
	int ret = mix_index_close(&w->ix);
	w->ix = NULL;
	if (ret < 0)
		return pc_work_fail(w, "mix_index_close", ret);
	pc_step_end(w, j);
	return 0;
}

/* Run the workload of one trace: sessions until ops steps were made. */
static inline int pc_workload(struct pc_work *w, unsigned ops)
{
	static const unsigned sync_pct[4] = { 90, 15, 50, 40 };
	static const unsigned idle_pct[4] = { 10, 15, 45, 10 };
	static const unsigned burst_pct[4] = { 15, 20, 10, 25 };
	unsigned p = (unsigned)w->profile;

	while (w->t->nsteps < ops) {
		unsigned n;
		if (pc_session_open(w) < 0)
			return -1;
		n = st_chance(&w->rng, idle_pct[p]) ? 0 :
		    st_rand_range(&w->rng, p == 2 ? 1 : 2,
				  p == 1 ? 40 : p == 2 ? 8 : 20);
		for (unsigned i = 0; i < n; i++) {
			int e = (int)st_rand_below(&w->rng, 2), ret;
			if (!w->ext_have[e] &&
			    st_chance(&w->rng, p == 2 ? 20 : 5))
				ret = pc_ext_register(w, e);
			else if (st_chance(&w->rng, burst_pct[p]))
				ret = pc_commit_burst(w, (int)sync_pct[p]);
			else
				ret = pc_commit(w, (int)sync_pct[p]);
			if (ret < 0)
				return -1;
		}
		if (pc_session_close(w) < 0)
			return -1;
	}
	return 0;
}

/* ---- the file-system model ------------------------------------------------ */

struct pc_pop {                 /* a pending write or truncate */
	int trunc;
	uint64_t off, len;      /* trunc: off = the new size */
	const uint8_t *data;    /* into the trace */
};

struct pc_file {
	uint64_t ino;
	uint8_t *dur;           /* durable content */
	size_t dsize, dcap;
	struct pc_pop *pend;    /* since the last fsync/fdatasync */
	size_t npend, cap;
};

enum pc_dop_kind { PC_DOP_CREATE, PC_DOP_RENAME, PC_DOP_UNLINK };
struct pc_dop {                 /* a pending directory operation */
	enum pc_dop_kind kind;
	char name[PC_NAME_MAX], name2[PC_NAME_MAX];
	int file;
};

#define PC_NAMES 16
struct pc_map {
	char name[PC_NAMES][PC_NAME_MAX];
	int file[PC_NAMES];
	int n;
};

struct pc_model {
	struct pc_file *files;
	size_t nfiles, cap;
	struct pc_map cur, dur;   /* the live directory, the durable one */
	struct pc_dop *dops;
	size_t ndops, capd;
};

static inline int pc_map_get(const struct pc_map *m, const char *name)
{
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->name[i], name) == 0)
			return m->file[i];
	return -1;
}

static inline void pc_map_del(struct pc_map *m, const char *name)
{
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->name[i], name) == 0) {
			m->n--;
			if (i != m->n) {
				memcpy(m->name[i], m->name[m->n], PC_NAME_MAX);
				m->file[i] = m->file[m->n];
			}
			return;
		}
}

static inline void pc_map_set(struct pc_map *m, const char *name, int f)
{
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->name[i], name) == 0) {
			m->file[i] = f;
			return;
		}
	if (m->n == PC_NAMES)
		st_die("powercut: more than %d names in the directory",
		       PC_NAMES);
	snprintf(m->name[m->n], PC_NAME_MAX, "%s", name);
	m->file[m->n++] = f;
}

static inline void pc_dop_apply(struct pc_map *m, const struct pc_dop *d)
{
	switch (d->kind) {
	case PC_DOP_CREATE:
		pc_map_set(m, d->name, d->file);
		break;
	case PC_DOP_RENAME:
		if (pc_map_get(m, d->name) == d->file)
			pc_map_del(m, d->name);
		pc_map_set(m, d->name2, d->file);
		break;
	case PC_DOP_UNLINK:
		if (pc_map_get(m, d->name) == d->file)
			pc_map_del(m, d->name);
		break;
	}
}

static inline void pc_dop_add(struct pc_model *m, enum pc_dop_kind k,
			      const char *name, const char *name2, int f)
{
	struct pc_dop *d;
	if (m->ndops == m->capd) {
		m->capd = m->capd ? m->capd * 2 : 16;
		m->dops = realloc(m->dops, m->capd * sizeof(*m->dops));
		if (!m->dops)
			st_die("out of memory");
	}
	d = &m->dops[m->ndops++];
	memset(d, 0, sizeof(*d));
	d->kind = k;
	snprintf(d->name, PC_NAME_MAX, "%s", name);
	snprintf(d->name2, PC_NAME_MAX, "%s", name2 ? name2 : "");
	d->file = f;
	pc_dop_apply(&m->cur, d);
}

/* Grow buf to hold size bytes (new bytes zero). */
static inline void pc_buf_size(uint8_t **buf, size_t *size, size_t *cap,
			       size_t want)
{
	if (want > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < want)
			c *= 2;
		*buf = realloc(*buf, c);
		if (!*buf)
			st_die("out of memory");
		*cap = c;
	}
	if (want > *size)
		memset(*buf + *size, 0, want - *size);
	*size = want;
}

/* Apply a write (only its first keep bytes) or truncate to a buffer. */
static inline void pc_pop_apply(uint8_t **buf, size_t *size, size_t *cap,
				const struct pc_pop *op, uint64_t keep)
{
	if (op->trunc) {
		pc_buf_size(buf, size, cap, (size_t)op->off);
		return;
	}
	if (keep == 0)
		return;
	if (op->off + keep > *size)
		pc_buf_size(buf, size, cap, (size_t)(op->off + keep));
	memcpy(*buf + op->off, op->data, (size_t)keep);
}

static inline int pc_file_by_ino(struct pc_model *m, uint64_t ino)
{
	for (size_t i = m->nfiles; i-- > 0;)
		if (m->files[i].ino == ino)
			return (int)i;
	return -1;
}

static inline int pc_file_new(struct pc_model *m, uint64_t ino)
{
	if (m->nfiles == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->files = realloc(m->files, m->cap * sizeof(*m->files));
		if (!m->files)
			st_die("out of memory");
	}
	memset(&m->files[m->nfiles], 0, sizeof(m->files[0]));
	m->files[m->nfiles].ino = ino;
	return (int)m->nfiles++;
}

static inline void pc_pend_add(struct pc_file *f, int trunc, uint64_t off,
			       uint64_t len, const uint8_t *data)
{
	if (f->npend == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->pend = realloc(f->pend, f->cap * sizeof(*f->pend));
		if (!f->pend)
			st_die("out of memory");
	}
	f->pend[f->npend++] = (struct pc_pop){ trunc, off, len, data };
}

static inline void pc_file_sync(struct pc_file *f)
{
	for (size_t i = 0; i < f->npend; i++)
		pc_pop_apply(&f->dur, &f->dsize, &f->dcap, &f->pend[i],
			     f->pend[i].len);
	f->npend = 0;
}

/* Apply one traced event to the model.  Returns 0, or -1 for an event
 * the model cannot place (reported by the caller). */
static inline int pc_model_event(struct pc_model *m, const struct pc_event *e)
{
	int f;

	switch (e->kind) {
	case MIX_IO_EV_OPEN:
		f = pc_map_get(&m->cur, e->name);
		if (f < 0 || m->files[f].ino != e->ino) {
			f = pc_file_new(m, e->ino);
			pc_dop_add(m, PC_DOP_CREATE, e->name, NULL, f);
		} else if (e->flags & O_TRUNC) {
			pc_pend_add(&m->files[f], 1, 0, 0, NULL);
		}
		return 0;
	case MIX_IO_EV_PWRITE:
	case MIX_IO_EV_FTRUNCATE:
	case MIX_IO_EV_FDATASYNC:
	case MIX_IO_EV_FSYNC:
		if ((f = pc_file_by_ino(m, e->ino)) < 0)
			return -1;
		if (e->kind == MIX_IO_EV_PWRITE)
			pc_pend_add(&m->files[f], 0, e->offset, e->len,
				    e->data);
		else if (e->kind == MIX_IO_EV_FTRUNCATE)
			pc_pend_add(&m->files[f], 1, e->offset, 0, NULL);
		else
			pc_file_sync(&m->files[f]);
		return 0;
	case MIX_IO_EV_RENAME:
		if ((f = pc_map_get(&m->cur, e->name)) < 0)
			return -1;
		pc_dop_add(m, PC_DOP_RENAME, e->name, e->name2, f);
		return 0;
	case MIX_IO_EV_UNLINK:
		if ((f = pc_map_get(&m->cur, e->name)) >= 0)
			pc_dop_add(m, PC_DOP_UNLINK, e->name, NULL, f);
		return 0;
	case MIX_IO_EV_FSYNC_DIR:
		m->dur = m->cur;
		m->ndops = 0;
		return 0;
	}
	return -1;
}

static inline void pc_model_free(struct pc_model *m)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		free(m->files[i].dur);
		free(m->files[i].pend);
	}
	free(m->files);
	free(m->dops);
	memset(m, 0, sizeof(*m));
}

/* ---- crash states ------------------------------------------------------- */

/* Which pending operations a crash state keeps: sel[] has one byte per
 * pending file operation (file by file, in order) and then one per
 * directory operation; torn_f/torn_i name a kept write of which only
 * torn_keep bytes landed, the rest absent (fill 0), zeros (1) or
 * garbage (2). */
struct pc_choice {
	uint8_t *sel;
	size_t nsel;
	int torn_f;
	size_t torn_i;
	uint64_t torn_keep;
	int torn_fill;
	int random;             /* a random subset (counted apart) */
	int all;                /* every pending operation: a kill -9 */
	char desc[256];
};

struct pc_run {
	const struct pc_opts *o;
	struct pc_totals *tot;     /* this trace's */
	struct mix_engine *eng;
	struct pc_trace *t;
	char name[128];
	uint64_t seed;
	char *base, *state;        /* scratch parent, the state directory */
	uint64_t rng;
	unsigned saved;
	/* dedup of (state, expectation) */
	uint64_t *seen;
	size_t nseen, capseen;
	/* the cut being enumerated */
	size_t cut;
	struct pc_model m;
	size_t *foff;              /* first sel index of each file */
	size_t lo, hi;
	uint64_t max_modseq;
	uint32_t max_uid;          /* for the epoch of the state found */
	uint32_t uid_by_epoch[PC_EPOCHS];
	int must_exist;
	/* the state being built: names, contents, inodes once written */
	struct pc_map map;
	uint8_t *buf[PC_NAMES];
	size_t bsize[PC_NAMES], bcap[PC_NAMES];
	uint64_t bino[PC_NAMES];
	/* 0: cuts of the workload; 1: cuts of a check's recovery session
	 * (a second power cut), whose modseqs and UIDs must stay above
	 * what the workload had seen (floor_*) */
	int depth;
	uint64_t floor_modseq;
	uint32_t floor_uid;
	/* a recovery after a kill -9 (kill_nested_every): the workload's
	 * run at the kill's cut, whose states this one's may also be */
	struct pc_run *killed;
};

/* 1 if key was new (and is now in the set). */
static inline int pc_seen_add(struct pc_run *r, uint64_t key)
{
	size_t i;
	key |= 1;
	if (2 * (r->nseen + 1) > r->capseen) {
		uint64_t *old = r->seen;
		size_t oldcap = r->capseen;
		r->capseen = oldcap ? oldcap * 2 : 4096;
		r->seen = calloc(r->capseen, sizeof(*r->seen));
		if (!r->seen)
			st_die("out of memory");
		r->nseen = 0;
		for (i = 0; i < oldcap; i++)
			if (old[i])
				pc_seen_add(r, old[i]);
		free(old);
	}
	for (i = (size_t)(key % r->capseen);; i = (i + 1) % r->capseen) {
		if (r->seen[i] == key)
			return 0;
		if (r->seen[i] == 0) {
			r->seen[i] = key;
			r->nseen++;
			return 1;
		}
	}
}

/* The content of file f in the state c into buf. */
static inline void pc_content(struct pc_run *r, const struct pc_choice *c,
			      int f, uint8_t **buf, size_t *size, size_t *cap)
{
	const struct pc_file *pf = &r->m.files[f];
	const uint8_t *sel = c->sel + r->foff[f];

	*size = 0;
	pc_buf_size(buf, size, cap, pf->dsize);
	if (pf->dsize > 0)
		memcpy(*buf, pf->dur, pf->dsize);
	for (size_t i = 0; i < pf->npend; i++) {
		const struct pc_pop *op = &pf->pend[i];
		uint64_t keep = op->len;
		if (!sel[i])
			continue;
		if (c->torn_f == f && c->torn_i == i)
			keep = c->torn_keep;
		pc_pop_apply(buf, size, cap, op, keep);
		if (keep < op->len && c->torn_fill > 0) {
			uint64_t g = 0x5eed ^ (uint64_t)r->cut ^ (i << 20);
			if (op->off + op->len > *size)
				pc_buf_size(buf, size, cap,
					    (size_t)(op->off + op->len));
			for (uint64_t b = op->off + keep; b < op->off + op->len;
			     b++)
				(*buf)[b] = c->torn_fill == 1 ? 0 :
					    (uint8_t)st_rand(&g);
		}
	}
}

/* Build the state's directory and file contents; returns its hash. */
static inline uint64_t pc_build(struct pc_run *r, const struct pc_choice *c)
{
	const uint8_t *dsel = c->sel + r->foff[r->m.nfiles];
	int order[PC_NAMES];
	uint64_t h = PC_FNV0;

	r->map = r->m.dur;
	for (size_t i = 0; i < r->m.ndops; i++)
		if (dsel[i])
			pc_dop_apply(&r->map, &r->m.dops[i]);
	for (int i = 0; i < r->map.n; i++) {
		int k = i;
		while (k > 0 && strcmp(r->map.name[order[k - 1]],
				       r->map.name[i]) > 0) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	for (int k = 0; k < r->map.n; k++) {
		int i = order[k];
		pc_content(r, c, r->map.file[i], &r->buf[i], &r->bsize[i],
			   &r->bcap[i]);
		h = pc_fnv(h, r->map.name[i], strlen(r->map.name[i]) + 1);
		PC_HV(h, r->bsize[i]);
		h = pc_fnv(h, r->buf[i], r->bsize[i]);
	}
	return h;
}

/* Write the state built into dir (created). */
static inline void pc_write_dir(struct pc_run *r, const char *dir)
{
	char path[4096];
	st_rmdir_r(dir);
	st_mkdir(dir);
	for (int i = 0; i < r->map.n; i++) {
		int fd;
		snprintf(path, sizeof(path), "%s/%s", dir, r->map.name[i]);
		struct stat st;
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || (r->bsize[i] &&
			       write(fd, r->buf[i], r->bsize[i]) !=
			       (ssize_t)r->bsize[i]) || fstat(fd, &st) < 0)
			st_die("powercut: cannot write %s: %s", path,
			       strerror(errno));
		r->bino[i] = (uint64_t)st.st_ino;
		close(fd);
	}
}

static inline void pc_materialize(struct pc_run *r)
{
	pc_write_dir(r, r->state);
}

/* ---- checking one state -------------------------------------------------- */

static inline const char *pc_ev_desc(const struct pc_event *e, char *buf,
				     size_t size)
{
	static const char *const k[] = { "open", "pwrite", "fdatasync",
		"fsync", "ftruncate", "rename", "unlink", "fsync_dir" };
	snprintf(buf, size, "%s %s%s%s off %llu len %llu", k[e->kind],
		 e->name, e->name2[0] ? " -> " : "", e->name2,
		 (unsigned long long)e->offset, (unsigned long long)e->len);
	return buf;
}

/* highest_modseq hms holds the last commit the state after step j
 * holds: -1, or the commit step whose modseq it is below. */
static inline long pc_hms_short(const struct pc_run *r, long j, uint64_t hms)
{
	for (long k = j; k >= 0; k--) {
		const struct pc_step *c = &r->t->steps[k];
		if (c->kind != PC_STEP_COMMIT || c->ack_ev == SIZE_MAX)
			continue;
		return hms < c->modseq ? k : -1;
	}
	return -1;
}

/* Which step's state d (pc_state_of) is: the last step in lo..hi with
 * its digests, a next_uid not above d's (a writable open raises
 * next_uid in memory before it is durable) and a highest_modseq that
 * holds its last commit, else -1.  Several steps can leave equal
 * digests (an empty mailbox after a create and after expunging all):
 * the state is the one of them its highest_modseq allows.  *any_r gets
 * the step with those digests anywhere, *hms_r the last in lo..hi that
 * only the highest_modseq rules out, or -1.  Steps inside an async
 * burst are known without modseqs only. */
static inline long pc_match(struct pc_run *r, const uint64_t d[5],
			    long *any_r, long *hms_r)
{
	*any_r = *hms_r = -1;
	for (size_t j = r->t->nsteps; j-- > 0;) {
		const struct pc_step *s = &r->t->steps[j];
		if (s->digest ? s->digest != d[0] : s->digest_nm != d[1])
			continue;
		if (j >= r->lo && j <= r->hi && d[2] >= s->next_uid) {
			if (pc_hms_short(r, (long)j, d[4]) < 0)
				return (long)j;
			if (*hms_r < 0)
				*hms_r = (long)j;
			continue;
		}
		if (*any_r < 0)
			*any_r = (long)j;
	}
	return -1;
}

static inline int pc_match_err(struct pc_run *r, const char *which,
			       const uint64_t d[5], char *err, size_t esize)
{
	long any, hms, j = pc_match(r, d, &any, &hms);
	if (j < 0 && hms >= 0) {
		long k = pc_hms_short(r, hms, d[4]);
		snprintf(err, esize, "%s open: highest_modseq %llu is "
			 "below modseq %llu of step %ld (%s), which the "
			 "state holds (it is that after step %ld)",
			 which, (unsigned long long)d[4],
			 (unsigned long long)r->t->steps[k].modseq, k,
			 r->t->steps[k].what, hms);
		r->tot->mismatch++;
		return -1;
	}
	if (j < 0 && any >= (long)r->lo && any <= (long)r->hi) {
		snprintf(err, esize, "%s open: next_uid %llu is below %llu, "
			 "that of the state found (after step %ld, %s)", which,
			 (unsigned long long)d[2],
			 (unsigned long long)r->t->steps[any].next_uid, any,
			 r->t->steps[any].what);
		r->tot->mismatch++;
		return -1;
	}
	if (j >= 0 && d[3] && r->t->steps[j].xhist &&
	    d[3] != r->t->steps[j].xhist) {
		snprintf(err, esize, "%s open: the expunge history "
			 "(mix_snap_expunged_since 0) differs from that after "
			 "step %ld (%s)", which, j, r->t->steps[j].what);
		return -1;
	}
	if (j >= 0 && !d[3] && r->t->steps[j].xhist)
		r->tot->xhist_lost++;
	if (j >= 0)
		return (int)j;
	r->tot->mismatch++;
	if (any >= 0)
		snprintf(err, esize, "%s open: the state is that after step "
			 "%ld (%s), expected one of steps %zu (%s) .. %zu",
			 which, any, r->t->steps[any].what, r->lo,
			 r->t->steps[r->lo].what, r->hi);
	else
		snprintf(err, esize, "%s open: the state matches no step "
			 "(half-applied or corrupt); expected one of steps "
			 "%zu (%s: %s) .. %zu (%s: %s)", which, r->lo,
			 r->t->steps[r->lo].what, r->t->steps[r->lo].hdr,
			 r->hi, r->t->steps[r->hi].what,
			 r->t->steps[r->hi].hdr);
	return -1;
}

/* pc_match_err, and in a recovery after a kill -9 (r->killed) also a
 * state that the kill's cut alone could leave (a power cut before the
 * recovery made the dead writer's page cache durable): 0 then, the
 * session's first step. */
static inline int pc_match_state(struct pc_run *r, const char *which,
				 const uint64_t d[5], char *err, size_t esize)
{
	long any, hms;
	if (r->killed && pc_match(r, d, &any, &hms) < 0 &&
	    pc_match(r->killed, d, &any, &hms) >= 0) {
		r->tot->kill_fallbacks++;
		return 0;
	}
	return pc_match_err(r, which, d, err, esize);
}

/* The end of a step of a check's recovery session (nested trace). */
static inline void pc_nt_end(struct pc_trace *nt, size_t j,
			     const uint64_t d[5])
{
	nt->steps[j].ack_ev = pc_trace_len(nt);
	nt->steps[j].digest = d[0];
	nt->steps[j].digest_nm = d[1];
	nt->steps[j].next_uid = d[2];
	nt->steps[j].xhist = d[3];
}

/* One more commit on the recovered index: modseq and UID above all the
 * workload saw before the cut. */
static inline int pc_check_commit(struct pc_run *r, struct mix_index *ix,
				  struct pc_trace *nt, uint32_t *uid_r,
				  uint64_t *modseq_r, char *err, size_t esize)
{
	struct mix_txn *txn = NULL;
	struct mix_commit_result res;
	int ret = mix_txn_begin(ix, &txn);
	size_t j = 0;

	if (ret == 0 && (ret = mix_txn_append(txn, 0, NULL, NULL)) < 0)
		mix_txn_abort(&txn);
	if (ret == 0) {
		if (nt)
			j = pc_step_begin(nt, PC_STEP_COMMIT,
					  "check commit: SYNC append 1");
		ret = mix_txn_commit(&txn, MIX_DURABILITY_SYNC, &res);
		if (ret == 0 && nt) {
			nt->steps[j].sync = 1;
			nt->steps[j].modseq = res.modseq;
			nt->steps[j].last_uid = res.last_uid;
			uint64_t d[5] = PC_STATE_OF(ix);
			pc_nt_end(nt, j, d);
		}
	}
	if (ret < 0) {
		snprintf(err, esize, "commit after recovery: %s (%s)",
			 mix_strerror(ret), mix_last_error());
		return -1;
	}
	mix_commit_result_free(&res);
	*uid_r = res.last_uid;
	*modseq_r = res.modseq;
	if (res.modseq <= r->max_modseq) {
		r->tot->modseq_reuse++;
		snprintf(err, esize, "modseq reuse: commit after recovery got "
			 "modseq %llu, the workload had seen %llu",
			 (unsigned long long)res.modseq,
			 (unsigned long long)r->max_modseq);
		return -1;
	}
	{
		/* §2.9: an open that skipped UIDs may follow lost writes a
		 * client saw: its lost point is above all of them */
		struct mix_open_info oi;
		uint64_t lost;
		mix_index_open_info(ix, &oi);
		mix_read_lock();
		lost = mix_snap_lost_modseq(mix_index_snap(ix));
		mix_read_unlock();
		if (oi.uids_skipped && r->depth == 0) {
			r->tot->lost_points++;
			if (lost <= r->max_modseq) {
				r->tot->lost_point_low++;
				snprintf(err, esize, "lost point %llu after an "
					 "open that skipped %u UIDs, not above "
					 "the workload's modseq %llu",
					 (unsigned long long)lost,
					 oi.uids_skipped,
					 (unsigned long long)r->max_modseq);
				return -1;
			}
		}
	}
	if (res.last_uid <= r->max_uid) {
		r->tot->uid_reuse++;
		r->tot->uid_reuse_recovery += r->depth > 0;
		snprintf(err, esize, "UID reuse: append after recovery got "
			 "UID %u, the workload had been handed UID %u",
			 res.last_uid, r->max_uid);
		return r->o->strict_uids ? -1 : 1;
	}
	return 0;
}

/* The index reopened read-only after the check's commit: it opens and
 * has the appended UID. */
static inline int pc_check_reopen(struct pc_run *r, uint32_t uid,
				  uint64_t modseq, char *err, size_t esize)
{
	struct mix_index *ix = NULL;
	int ret = mix_index_open(r->eng, r->state, MIX_OPEN_READONLY, &ix);
	uint64_t hms;
	int found;

	if (ret < 0) {
		r->tot->open_fail++;
		snprintf(err, esize, "read-only reopen after the check's "
			 "commit: %s (%s)", mix_strerror(ret),
			 mix_last_error());
		return -1;
	}
	mix_read_lock();
	found = mix_snap_lookup_uid(mix_index_snap(ix), uid, NULL);
	hms = mix_snap_highest_modseq(mix_index_snap(ix));
	mix_read_unlock();
	mix_index_close(&ix);
	if (!found) {
		snprintf(err, esize, "read-only reopen after the check's "
			 "commit: its SYNC append (UID %u) is missing", uid);
		return -1;
	}
	if (hms < modseq) {
		snprintf(err, esize, "read-only reopen after the check's "
			 "commit: highest_modseq %llu is below the commit's "
			 "modseq %llu", (unsigned long long)hms,
			 (unsigned long long)modseq);
		return -1;
	}
	return 0;
}

static int pc_cuts(struct pc_run *r);

/* MIX_POWERCUT_DEBUG=SUBSTRING: for each recovery session whose name
 * contains it, the workload's last events before its cut, the session's
 * starting model (files, durable and live names) and its events. */
static inline void pc_nested_debug(const struct pc_run *r,
				   const struct pc_run *n,
				   const struct pc_trace *nt)
{
	const char *want = getenv("MIX_POWERCUT_DEBUG");
	char b[300];

	if (!want || !*want || !strstr(n->name, want))
		return;
	printf("%sdebug %s: the workload's events before cut %zu:\n",
	       PC_PFX(r->o), n->name, r->cut);
	for (size_t k = r->cut > 12 ? r->cut - 12 : 0; k < r->cut; k++)
		printf("%s  w%zu %s\n", PC_PFX(r->o), k,
		       pc_ev_desc(&r->t->ev[k], b, sizeof(b)));
	for (size_t f = 0; f < n->m.nfiles; f++)
		if (n->m.files[f].npend || n->m.files[f].ino < UINT64_MAX / 2)
			printf("%s  file %zu: %zu bytes durable, %zu writes "
			       "pending\n", PC_PFX(r->o), f,
			       n->m.files[f].dsize, n->m.files[f].npend);
	for (int i = 0; i < n->m.dur.n; i++)
		printf("%s  durable name %s: file %d\n", PC_PFX(r->o),
		       n->m.dur.name[i], n->m.dur.file[i]);
	for (int i = 0; i < n->m.cur.n; i++)
		printf("%s  live name %s: file %d\n", PC_PFX(r->o),
		       n->m.cur.name[i], n->m.cur.file[i]);
	for (size_t k = 0; k < nt->nev; k++)
		printf("%s  r%zu %s\n", PC_PFX(r->o), k,
		       pc_ev_desc(&nt->ev[k], b, sizeof(b)));
}

/* Every crash state of the check's recovery session nt on the state
 * just checked (r->map, r->buf).  Either all of that state was durable
 * when the session started (a power cut, then recovery, then another),
 * or, killed: the state is what a kill -9 at r's cut left, and only what
 * was durable at that cut is durable in the session's model, the rest
 * (r->m's pending writes and directory operations) still pending: the
 * recovery reads the dead writer's page cache, and a power cut during it
 * may keep any part of that, until the recovery's own flushes. */
static inline void pc_nested(struct pc_run *r, struct pc_trace *nt,
			     int killed)
{
	struct pc_run n = { .o = r->o, .tot = r->tot, .eng = r->eng, .t = nt,
			    .seed = r->seed, .base = r->base, .depth = 1,
			    .floor_modseq = r->max_modseq,
			    .floor_uid = r->max_uid,
			    .killed = killed ? r : NULL };

	snprintf(n.name, sizeof(n.name), "%.80s-cut%zu-%s", r->name,
		 r->cut, killed ? "kill-recovery" : "recovery");
	n.rng = st_seed_derive(r->rng, r->cut);
	if (asprintf(&n.state, "%s/state2", r->base) < 0)
		st_die("out of memory");
	if (killed) {
		/* the model's files in r->m's order (so that its maps and
		 * directory operations keep their file numbers), with the
		 * inodes the state was written with; a file with no name in
		 * the state gets one no trace event can carry */
		for (size_t f = 0; f < r->m.nfiles; f++) {
			const struct pc_file *of = &r->m.files[f];
			uint64_t ino = UINT64_MAX - f;
			struct pc_file *pf;
			int nf;
			for (int i = 0; i < r->map.n; i++)
				if (r->map.file[i] == (int)f)
					ino = r->bino[i];
			nf = pc_file_new(&n.m, ino);   /* may move files */
			pf = &n.m.files[nf];
			pc_buf_size(&pf->dur, &pf->dsize, &pf->dcap,
				    of->dsize);
			if (of->dsize > 0)
				memcpy(pf->dur, of->dur, of->dsize);
			for (size_t k = 0; k < of->npend; k++)
				pc_pend_add(pf, of->pend[k].trunc,
					    of->pend[k].off, of->pend[k].len,
					    of->pend[k].data);
		}
		/* the live names are the durable ones with the pending
		 * directory operations applied, as in r->m */
		n.m.dur = n.m.cur = r->m.dur;
		for (size_t k = 0; k < r->m.ndops; k++) {
			const struct pc_dop *d = &r->m.dops[k];
			pc_dop_add(&n.m, d->kind, d->name, d->name2, d->file);
		}
		r->tot->kill_runs++;
	} else {
		for (int i = 0; i < r->map.n; i++) {
			int f = pc_file_new(&n.m, r->bino[i]);
			struct pc_file *pf = &n.m.files[f];
			pc_buf_size(&pf->dur, &pf->dsize, &pf->dcap,
				    r->bsize[i]);
			if (r->bsize[i] > 0)
				memcpy(pf->dur, r->buf[i], r->bsize[i]);
			pc_map_set(&n.m.cur, r->map.name[i], f);
		}
		n.m.dur = n.m.cur;
	}
	r->tot->nested_runs++;
	pc_nested_debug(r, &n, nt);
	n.saved = r->saved;
	pc_cuts(&n);
	r->saved = n.saved;
	st_rmdir_r(n.state);
	for (int k = 0; k < PC_NAMES; k++)
		free(n.buf[k]);
	free(n.foff);
	free(n.seen);
	free(n.state);
	pc_model_free(&n.m);
}

/* `mixctl check` on the state as the cut left it (an independent
 * reader of the files): exit 0 required (torn tails are warnings). */
static inline int pc_mixctl(struct pc_run *r, char *err, size_t esize)
{
	char cmd[4400], line[512] = "";
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' check '%s' 2>&1 >/dev/null",
		 r->o->mixctl, r->state);
	if ((p = popen(cmd, "r")) == NULL)
		st_die("powercut: popen %s: %s", cmd, strerror(errno));
	if (!fgets(line, sizeof(line), p))
		line[0] = '\0';
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	r->tot->mixctl_runs++;
	if (st == 0)
		return 0;
	r->tot->mixctl_fail++;
	line[strcspn(line, "\n")] = '\0';
	snprintf(err, esize, "mixctl check: exit %d: %s",
		 WIFEXITED(st) ? WEXITSTATUS(st) : -1, line);
	return -1;
}

/* Open the materialized state read-only, then writable (both must see
 * the same state, one of steps lo..hi), commit, close, reopen read-only;
 * 0 ok, -1 failed (err says why), 1 only UID reuse (counted, not a
 * failure).  With nt, the writable session is traced into it (its
 * steps: the state found, the open, the commit, the close). */
static inline int pc_check(struct pc_run *r, struct pc_trace *nt, char *err,
			   size_t esize)
{
	struct mix_index *ix = NULL;
	uint64_t d_ro[5], d_rw[5];
	char hdr_ro[256], hdr_rw[256];
	uint64_t check_modseq = 0;
	uint32_t uid = 0;
	size_t j = 0;
	int ret, cret;

	pc_warnings[0] = '\0';
	ret = mix_index_open(r->eng, r->state, MIX_OPEN_READONLY, &ix);
	if (ret == MIX_ENOTFOUND && !r->must_exist) {
		r->tot->no_index++;
		return 0;
	}
	if (ret < 0) {
		r->tot->open_fail++;
		snprintf(err, esize, "read-only open: %s (%s)",
			 mix_strerror(ret), mix_last_error());
		return -1;
	}
	d_ro[0] = pc_digest(ix);
	d_ro[1] = pc_digest_mode(ix, 0);
	d_ro[2] = pc_next_uid(ix);
	d_ro[3] = pc_xhist(ix);
	d_ro[4] = pc_hms(ix);
	pc_hdr_desc(ix, hdr_ro, sizeof(hdr_ro));
	mix_index_close(&ix);
	if ((ret = pc_match_state(r, "read-only", d_ro, err, esize)) < 0) {
		size_t n = strlen(err);
		snprintf(err + n, esize - n, " [found: %s]", hdr_ro);
		return -1;
	}
	if (r->o->mixctl && r->o->mixctl_every &&
	    r->tot->states % r->o->mixctl_every == 0 &&
	    pc_mixctl(r, err, esize) < 0)
		return -1;
	r->max_uid = r->uid_by_epoch[r->t->steps[ret].epoch];
	if (r->floor_uid > r->max_uid)
		r->max_uid = r->floor_uid;
	if (nt) {
		pc_nt_end(nt, pc_step_begin(nt, PC_STEP_CREATE, "the state "
					    "found by recovery"), d_ro);
		nt->on = 1;
		mix_io_trace_set(pc_trace_hook, nt);
		j = pc_step_begin(nt, PC_STEP_OPEN, "check: writable open");
	}
	ret = mix_index_open(r->eng, r->state, 0, &ix);
	if (ret < 0) {
		mix_io_trace_set(NULL, NULL);
		r->tot->open_fail++;
		snprintf(err, esize, "writable open: %s (%s)",
			 mix_strerror(ret), mix_last_error());
		return -1;
	}
	d_rw[0] = pc_digest(ix);
	d_rw[1] = pc_digest_mode(ix, 0);
	d_rw[2] = pc_next_uid(ix);
	d_rw[3] = pc_xhist(ix);
	d_rw[4] = pc_hms(ix);
	if (nt)
		pc_nt_end(nt, j, d_rw);
	pc_hdr_desc(ix, hdr_rw, sizeof(hdr_rw));
	if (pc_match_state(r, "writable", d_rw, err, esize) < 0 ||
	    (d_rw[0] != d_ro[0] && snprintf(err, esize, "the read-only open "
					    "saw another state than the "
					    "writable open") > 0) ||
	    (d_rw[4] < d_ro[4] && snprintf(err, esize, "the writable open's "
					   "highest_modseq is below the "
					   "read-only open's") > 0)) {
		size_t n = strlen(err);
		snprintf(err + n, esize - n, " [read-only: %s; writable: %s]",
			 hdr_ro, hdr_rw);
		mix_io_trace_set(NULL, NULL);
		if (d_rw[0] != d_ro[0] || d_rw[4] < d_ro[4])
			r->tot->mismatch++;
		mix_index_close(&ix);
		return -1;
	}
	cret = pc_check_commit(r, ix, nt, &uid, &check_modseq, err, esize);
	if (nt)
		j = pc_step_begin(nt, PC_STEP_CLOSE, "check: close");
	ret = mix_index_close(&ix);
	mix_io_trace_set(NULL, NULL);
	if (nt) {
		nt->on = 0;
		uint64_t d[5] = { nt->steps[j - 1].digest,
				  nt->steps[j - 1].digest_nm,
				  nt->steps[j - 1].next_uid,
				  nt->steps[j - 1].xhist, 0 };
		pc_nt_end(nt, j, d);
	}
	if (cret >= 0 && ret < 0) {
		snprintf(err, esize, "close after recovery: %s (%s)",
			 mix_strerror(ret), mix_last_error());
		return -1;
	}
	if (cret >= 0 && pc_check_reopen(r, uid, check_modseq, err, esize) < 0)
		return -1;
	return cret;
}

/* Failures by kind: the error with numbers and the scratch path taken
 * out, its count and the first example. */
#define PC_CLASSES 32
struct pc_class {
	char key[256];
	uint64_t count;
	char example[1024];
};
static struct pc_class pc_classes[PC_CLASSES];
static unsigned pc_nclasses;

static inline void pc_class_add(const char *err, const char *example)
{
	char key[256];
	size_t n = 0;

	for (const char *q = err; *q && n < sizeof(key) - 1; q++) {
		if (*q == '/') {
			/* a path: keep its last component only */
			const char *e = q + strcspn(q, " :),");
			const char *last = q;
			for (const char *x = q; x < e; x++)
				if (*x == '/')
					last = x;
			q = last;
			continue;
		}
		if (*q >= '0' && *q <= '9') {
			if (n == 0 || key[n - 1] != '#')
				key[n++] = '#';
			continue;
		}
		key[n++] = *q;
	}
	key[n] = '\0';
	for (unsigned i = 0; i < pc_nclasses; i++)
		if (strcmp(pc_classes[i].key, key) == 0) {
			pc_classes[i].count++;
			return;
		}
	if (pc_nclasses == PC_CLASSES)
		return;
	snprintf(pc_classes[pc_nclasses].key, sizeof(key), "%s", key);
	snprintf(pc_classes[pc_nclasses].example,
		 sizeof(pc_classes[0].example), "%s", example);
	pc_classes[pc_nclasses++].count = 1;
}

static inline void pc_classes_print(FILE *f, const char *pfx)
{
	for (unsigned i = 0; i < pc_nclasses; i++)
		fprintf(f, "%sfailure class %u: %llu states: %s\n%s  first: "
			"%s\n", pfx, i + 1,
			(unsigned long long)pc_classes[i].count,
			pc_classes[i].key, pfx, pc_classes[i].example);
}

static inline void pc_report(struct pc_run *r, const struct pc_choice *c,
			     const char *err)
{
	char example[1024];
	char path[4096] = "", ev[160] = "(none)";
	FILE *f;

	if (r->cut > 0)
		pc_ev_desc(&r->t->ev[r->cut - 1], ev, sizeof(ev));
	snprintf(example, sizeof(example), "%s seed %llu cut %zu/%zu "
		 "(after: %s) state: %s", r->name,
		 (unsigned long long)r->seed, r->cut, r->t->nev, ev, c->desc);
	pc_class_add(err, example);
	if (r->saved < PC_MAX_FAIL_SAVE) {
		/* the state as the crash left it, and as the checks left it */
		char after[4200];
		snprintf(path, sizeof(path), "%s/fail-%s-cut%zu-%u", r->base,
			 r->name, r->cut, r->saved);
		snprintf(after, sizeof(after), "%s.after-check", path);
		st_rmdir_r(after);
		if (rename(r->state, after) == 0)
			r->saved++;
		pc_write_dir(r, path);
	}
	if (r->tot->failures > PC_MAX_FAIL_PRINT || r->o->quiet)
		return;
	printf("%sFAIL %s seed %llu cut %zu/%zu (after: %s) state: %s\n"
	       "%s  error: %s\n%s  warnings: %s\n%s  saved: %s\n",
	       PC_PFX(r->o), r->name, (unsigned long long)r->seed, r->cut,
	       r->t->nev, ev, c->desc, PC_PFX(r->o), err, PC_PFX(r->o),
	       pc_warnings[0] ? pc_warnings : "(none)", PC_PFX(r->o),
	       path[0] ? path : "(not saved)");
	fflush(stdout);
	if (r->o->findings && (f = fopen(r->o->findings, "a")) != NULL) {
		fprintf(f, "- %s seed %llu cut %zu/%zu (after: %s)\n"
			"  state: %s\n  error: %s\n  warnings: %s\n"
			"  saved: %s\n", r->name,
			(unsigned long long)r->seed, r->cut, r->t->nev, ev,
			c->desc, err,
			pc_warnings[0] ? pc_warnings : "(none)",
			path[0] ? path : "(not saved)");
		fclose(f);
	}
}

/* Build, dedup, materialize and check the state c; every
 * nested_every-th state of the workload also gets its recovery cut. */
static inline void pc_try(struct pc_run *r, const struct pc_choice *c)
{
	struct pc_trace nt = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char err[1024];
	uint64_t key = pc_build(r, c);
	int ret, nest, killed = 0;

	PC_HV(key, r->lo);
	PC_HV(key, r->hi);
	PC_HV(key, r->max_modseq);
	key = pc_fnv(key, r->uid_by_epoch, sizeof(r->uid_by_epoch));
	PC_HV(key, r->must_exist);
	if (!pc_seen_add(r, key)) {
		r->tot->dup_states++;
		return;
	}
	r->tot->states++;
	if (r->depth > 0)
		r->tot->nested_states++;
	if (c->torn_f >= 0)
		r->tot->torn++;
	if (c->random)
		r->tot->subsets++;
	nest = r->depth == 0 && r->o->nested_every > 0 &&
	       r->tot->states % r->o->nested_every == 0;
	/* a kill -9 with something not yet durable: its recovery is cut
	 * with that still pending */
	if (r->depth == 0 && c->all && r->o->kill_nested_every > 0 &&
	    c->nsel > 0 &&
	    ++r->tot->kill_candidates % r->o->kill_nested_every == 0)
		killed = 1;
	if (r->killed)
		r->tot->kill_states++;
	nt.dir = r->state;
	nt.dirlen = strlen(r->state);
	pc_materialize(r);
	err[0] = '\0';
	nest |= killed;
	ret = r->o->check ? r->o->check(r, nest ? &nt : NULL, err,
					sizeof(err))
			  : pc_check(r, nest ? &nt : NULL, err, sizeof(err));
	if (ret < 0) {
		r->tot->failures++;
		pc_report(r, c, err);
	}
	if (r->o->verbose)
		printf("%s  %scut %zu: %s: %s\n", PC_PFX(r->o),
		       r->depth ? "  recovery " : "",
		       r->cut, c->desc, ret < 0 ? err : "ok");
	if (nest && ret >= 0 && nt.nev > 0)
		pc_nested(r, &nt, killed);
	pc_trace_free(&nt);
}

/* ---- enumerating the states of one cut ----------------------------------- */

static inline void pc_sel_all(struct pc_run *r, struct pc_choice *c, int v)
{
	memset(c->sel, v, c->nsel);
	c->torn_f = -1;
}

static inline void pc_sel_file(struct pc_run *r, struct pc_choice *c, int f,
			       size_t from, size_t to, int v)
{
	memset(c->sel + r->foff[f] + from, v, to - from);
}

/* A random subset of the directory operations, closed under order: an
 * operation left out leaves out every later one on the same name or
 * file (a rename cannot land without the create it moves). */
static inline void pc_sel_dops_random(struct pc_run *r, struct pc_choice *c)
{
	uint8_t *d = c->sel + r->foff[r->m.nfiles];
	for (size_t i = 0; i < r->m.ndops; i++) {
		const struct pc_dop *op = &r->m.dops[i];
		d[i] = (uint8_t)st_chance(&r->rng, 50);
		for (size_t k = 0; k < i && d[i]; k++) {
			const struct pc_dop *p = &r->m.dops[k];
			if (!d[k] && (p->file == op->file ||
				      !strcmp(p->name, op->name) ||
				      !strcmp(p->name, op->name2) ||
				      (p->name2[0] &&
				       (!strcmp(p->name2, op->name) ||
					!strcmp(p->name2, op->name2)))))
				d[i] = 0;
		}
	}
}

static inline const char *pc_file_name(struct pc_run *r, int f)
{
	for (int i = 0; i < r->m.cur.n; i++)
		if (r->m.cur.file[i] == f)
			return r->m.cur.name[i];
	for (int i = 0; i < r->m.dur.n; i++)
		if (r->m.dur.file[i] == f)
			return r->m.dur.name[i];
	return "(unlinked)";
}

/* The torn variants of write i of file f (kept, later ones left out). */
static inline void pc_try_torn(struct pc_run *r, struct pc_choice *c, int f,
			       size_t i)
{
	static const char *const fills[3] = { "absent", "zeros", "garbage" };
	const struct pc_pop *op = &r->m.files[f].pend[i];
	uint64_t cuts[3];
	size_t n = r->m.files[f].npend;

	if (op->trunc || op->len < 2)
		return;
	cuts[0] = (op->off / 512 + 1) * 512;
	cuts[1] = (op->off / 4096 + 1) * 4096;
	cuts[2] = cuts[0] + 512 * st_rand_below(&r->rng, (uint32_t)
						(op->len / 512 + 1));
	for (int k = 0; k < 3; k++) {
		uint64_t keep = cuts[k] - op->off;
		if (keep >= op->len || (k > 0 && cuts[k] == cuts[0]))
			continue;
		for (int fill = 0; fill < 3; fill++) {
			pc_sel_all(r, c, 1);
			pc_sel_file(r, c, f, i + 1, n, 0);
			c->torn_f = f;
			c->torn_i = i;
			c->torn_keep = keep;
			c->torn_fill = fill;
			snprintf(c->desc, sizeof(c->desc), "all but %s "
				 "(file %d): ops 1..%zu of %zu, op %zu a "
				 "torn write (%llu of %llu bytes at %llu, "
				 "rest %s)", pc_file_name(r, f), f, i + 1,
				 n, i + 1, (unsigned long long)keep,
				 (unsigned long long)op->len,
				 (unsigned long long)op->off, fills[fill]);
			pc_try(r, c);
		}
	}
}

static inline void pc_try_file(struct pc_run *r, struct pc_choice *c, int f)
{
	size_t n = r->m.files[f].npend, last_w = n;
	unsigned pm = r->o->prefix_max;

	for (size_t p = 0; p < n; p++) {
		/* all prefixes of short lists; the first and last ones
		 * and a random sample of long ones */
		if (n > pm && p >= pm / 2 && p + pm / 2 < n &&
		    !st_chance(&r->rng, 100 * pm / (unsigned)n / 2 + 1))
			continue;
		pc_sel_all(r, c, 1);
		pc_sel_file(r, c, f, p, n, 0);
		snprintf(c->desc, sizeof(c->desc), "all but %s (file %d): "
			 "first %zu of %zu pending ops", pc_file_name(r, f),
			 f, p, n);
		pc_try(r, c);
		pc_sel_all(r, c, 0);
		pc_sel_file(r, c, f, 0, p, 1);
		snprintf(c->desc, sizeof(c->desc), "durable, plus %s (file "
			 "%d): first %zu of %zu pending ops",
			 pc_file_name(r, f), f, p, n);
		pc_try(r, c);
	}
	for (size_t i = 0; i < n; i++)
		if (!r->m.files[f].pend[i].trunc)
			last_w = i;
	if (last_w < n) {
		pc_try_torn(r, c, f, last_w);
		pc_try_torn(r, c, f, st_rand_below(&r->rng, (uint32_t)n));
	}
}

static inline void pc_try_random(struct pc_run *r, struct pc_choice *c)
{
	size_t nf = r->foff[r->m.nfiles];
	size_t ndesc = 0;

	pc_sel_all(r, c, 0);
	for (size_t i = 0; i < nf; i++)
		c->sel[i] = (uint8_t)st_chance(&r->rng, 50);
	pc_sel_dops_random(r, c);
	ndesc = (size_t)snprintf(c->desc, sizeof(c->desc), "random subset:");
	for (size_t i = 0; i < c->nsel && ndesc < sizeof(c->desc) - 2; i++)
		c->desc[ndesc++] = c->sel[i] ? '1' : '0', c->desc[ndesc] = 0;
	if (nf > 0 && st_chance(&r->rng, 30)) {
		size_t i = st_rand_below(&r->rng, (uint32_t)nf);
		int f = 0;
		while (r->foff[f + 1] <= i)
			f++;
		if (c->sel[i] && !r->m.files[f].pend[i - r->foff[f]].trunc &&
		    r->m.files[f].pend[i - r->foff[f]].len > 512) {
			const struct pc_pop *op =
				&r->m.files[f].pend[i - r->foff[f]];
			c->torn_f = f;
			c->torn_i = i - r->foff[f];
			c->torn_keep = (op->off / 512 + 1) * 512 - op->off;
			c->torn_fill = (int)st_rand_below(&r->rng, 3);
			if (c->torn_keep >= op->len)
				c->torn_f = -1;
		}
	}
	c->random = 1;
	pc_try(r, c);
	c->random = 0;
}

/* Expectations at the cut: steps lo..hi, what the workload had seen. */
static inline void pc_expect(struct pc_run *r)
{
	r->lo = r->hi = 0;
	r->max_modseq = 0;
	r->max_uid = 0;
	memset(r->uid_by_epoch, 0, sizeof(r->uid_by_epoch));
	r->must_exist = r->t->nsteps > 0 && r->t->steps[0].ack_ev <= r->cut;
	for (size_t j = 0; j < r->t->nsteps; j++) {
		const struct pc_step *s = &r->t->steps[j];
		/* started before the cut, or done at it without I/O */
		if (s->start_ev < r->cut || s->ack_ev <= r->cut)
			r->hi = j;
		if (s->ack_ev > r->cut)
			continue;
		if ((s->kind == PC_STEP_COMMIT && s->sync) ||
		    s->kind == PC_STEP_CLOSE || s->kind == PC_STEP_CREATE ||
		    s->kind == PC_STEP_RECREATE)
			r->lo = j;
		if (s->kind == PC_STEP_COMMIT) {
			if (s->modseq > r->max_modseq)
				r->max_modseq = s->modseq;
			if (s->last_uid > r->uid_by_epoch[s->epoch])
				r->uid_by_epoch[s->epoch] = s->last_uid;
		}
	}
	if (r->floor_modseq > r->max_modseq)
		r->max_modseq = r->floor_modseq;
	/* after a kill -9 during the creation, nothing may be durable */
	if (r->killed && !r->killed->must_exist)
		r->must_exist = 0;
}

/* Every state of the current cut. */
static inline void pc_cut(struct pc_run *r)
{
	struct pc_choice c = { .torn_f = -1 };
	size_t nf = 0;

	r->foff = realloc(r->foff, (r->m.nfiles + 1) * sizeof(*r->foff));
	if (!r->foff)
		st_die("out of memory");
	for (size_t f = 0; f < r->m.nfiles; f++) {
		r->foff[f] = nf;
		nf += r->m.files[f].npend;
	}
	r->foff[r->m.nfiles] = nf;
	c.nsel = nf + r->m.ndops;
	c.sel = malloc(c.nsel + 1);
	if (!c.sel)
		st_die("out of memory");
	pc_expect(r);
	pc_sel_all(r, &c, 0);
	snprintf(c.desc, sizeof(c.desc), "durable only");
	pc_try(r, &c);
	pc_sel_all(r, &c, 1);
	snprintf(c.desc, sizeof(c.desc), "everything");
	c.all = 1;
	pc_try(r, &c);
	c.all = 0;
	for (size_t f = 0; f < r->m.nfiles; f++)
		if (r->m.files[f].npend > 0)
			pc_try_file(r, &c, (int)f);
	for (size_t q = 0; q < r->m.ndops; q++) {
		for (int v = 0; v < 2; v++) {
			pc_sel_all(r, &c, v);
			memset(c.sel + nf, 1, q);
			memset(c.sel + nf + q, 0, r->m.ndops - q);
			snprintf(c.desc, sizeof(c.desc), "%s file data, first "
				 "%zu of %zu directory ops", v ? "all" :
				 "durable", q, r->m.ndops);
			pc_try(r, &c);
		}
	}
	for (unsigned i = 0; i < r->o->random_per_cut && c.nsel > 1; i++)
		pc_try_random(r, &c);
	free(c.sel);
}

/* Every cut of r->t, from the model's start. */
static int pc_cuts(struct pc_run *r)
{
	struct pc_trace *t = r->t;
	for (r->cut = 0; r->cut <= t->nev; r->cut++) {
		if (r->cut > 0 &&
		    pc_model_event(&r->m, &t->ev[r->cut - 1]) < 0) {
			char ev[160], ex[256];
			r->tot->failures++;
			pc_ev_desc(&t->ev[r->cut - 1], ev, sizeof(ev));
			printf("%sFAIL %s seed %llu: the model cannot place "
			       "event %zu (%s)\n", PC_PFX(r->o), r->name,
			       (unsigned long long)r->seed, r->cut - 1, ev);
			snprintf(ex, sizeof(ex), "%.128s seed %llu event %zu",
				 r->name, (unsigned long long)r->seed,
				 r->cut - 1);
			pc_class_add("the model cannot place an event", ex);
			return -1;
		}
		if (r->depth == 0 && r->o->cut_stride > 1 &&
		    r->cut % r->o->cut_stride != 0 && r->cut != t->nev)
			continue;
		if (r->depth == 0)
			r->tot->cuts++;
		pc_cut(r);
	}
	return 0;
}

/* ---- one trace ------------------------------------------------------------- */

static inline void pc_totals_add(struct pc_totals *a, const struct pc_totals *b)
{
	uint64_t *pa = (uint64_t *)a;
	const uint64_t *pb = (const uint64_t *)b;
	for (size_t i = 0; i < sizeof(*a) / sizeof(uint64_t); i++)
		pa[i] += pb[i];
}

/* Record trace number i of the run (profile i % 4) and check every cut.
 * Traces 4..7 (mod 8) run on an engine of their own whose expunge
 * history keeps 3 UID ranges (trims in every session); the others on
 * eng.  Returns 0, or -1 when the workload itself failed (counted as a
 * failure). */
static inline int pc_run_trace(const struct pc_opts *o,
			       struct mix_engine *eng, unsigned i,
			       struct pc_totals *tot)
{
	struct mix_engine *own = NULL;
	int small_xhist = (i / 4) % 2 == 1;
	struct pc_trace t = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct pc_work w = { .t = &t, .eng = eng };
	struct pc_run r = { .o = o, .tot = tot, .eng = eng, .t = &t };
	char tmpl[4096];
	uint64_t t0 = st_now_ns();
	int ret;

	memset(tot, 0, sizeof(*tot));
	r.seed = st_seed_derive(o->seed, i);
	w.rng = r.seed;
	r.rng = st_seed_derive(r.seed, 1);
	w.profile = (int)(i % 4);
	snprintf(r.name, sizeof(r.name), "%st%u-%s%s",
		 o->mode ? o->mode : "", i,
		 pc_profile_names[w.profile], small_xhist ? "-xh3" : "");
	if (small_xhist) {
		struct mix_engine_config cfg;
		mix_engine_config_init(&cfg);
		cfg.log_rotate_size = 4096;
		cfg.expunge_history_max = 3;
		cfg.warning = pc_warning;
		if ((ret = mix_engine_create(&cfg, &own)) < 0)
			st_die("mix_engine_create: %s", mix_strerror(ret));
		eng = own;
		w.eng = r.eng = own;
	}
	snprintf(tmpl, sizeof(tmpl), "%s/powercut-%s.XXXXXX", o->tmp,
		 r.name);
	if (!mkdtemp(tmpl))
		st_die("powercut: mkdtemp %s: %s", tmpl, strerror(errno));
	r.base = strdup(tmpl);
	w.dir = st_subdir(r.base, "work");
	w.shdir = st_subdir(r.base, "shadow");
	r.state = st_subdir(r.base, "state");
	t.dir = w.dir;
	t.dirlen = strlen(w.dir);

	t.on = 1;
	mix_io_trace_set(pc_trace_hook, &t);
	w.base = r.base;
	ret = o->workload ? o->workload(&w, o->ops) : pc_workload(&w, o->ops);
	if (w.ix)
		mix_index_close(&w.ix);
	if (w.sh)
		mix_index_close(&w.sh);
	mix_io_trace_set(NULL, NULL);
	t.on = 0;
	if (ret < 0) {
		char ex[256];
		tot->failures++;
		printf("%sFAIL %s seed %llu: the workload failed at step %zu: "
		       "%s\n", PC_PFX(o), r.name, (unsigned long long)r.seed,
		       t.nsteps, w.err);
		snprintf(ex, sizeof(ex), "%s seed %llu step %zu", r.name,
			 (unsigned long long)r.seed, t.nsteps);
		pc_class_add(w.err, ex);
	}
	tot->events = t.nev;
	tot->steps = t.nsteps;
	for (size_t j = 0; j < t.nsteps; j++) {
		const struct pc_step *s = &t.steps[j];
		tot->commits += s->kind == PC_STEP_COMMIT;
		tot->commits_sync += s->kind == PC_STEP_COMMIT && s->sync;
		tot->commits_async += s->kind == PC_STEP_COMMIT &&
				      strstr(s->what, " async:") != NULL;
		tot->recreates += s->kind == PC_STEP_RECREATE;
		tot->idle += s->kind == PC_STEP_CLOSE && j > 0 &&
			     (s[-1].kind == PC_STEP_OPEN ||
			      s[-1].kind == PC_STEP_EXT);
	}
	pc_cuts(&r);
	printf("%strace %s seed %llu: %llu events, %llu steps (%llu commits: "
	       "%llu SYNC, %llu async; %llu idle sessions, %llu recreates), "
	       "%llu cuts, "
	       "%llu states (%llu torn, %llu random subsets), %llu failures, "
	       "%llu uid_reuse, %llu modseq_reuse, %.1f s\n", PC_PFX(o), r.name,
	       (unsigned long long)r.seed, (unsigned long long)tot->events,
	       (unsigned long long)tot->steps, (unsigned long long)tot->commits,
	       (unsigned long long)tot->commits_sync,
	       (unsigned long long)tot->commits_async,
	       (unsigned long long)tot->idle,
	       (unsigned long long)tot->recreates, (unsigned long long)tot->cuts,
	       (unsigned long long)tot->states, (unsigned long long)tot->torn,
	       (unsigned long long)tot->subsets,
	       (unsigned long long)tot->failures,
	       (unsigned long long)tot->uid_reuse,
	       (unsigned long long)tot->modseq_reuse, st_secs_since(t0));
	fflush(stdout);
	st_rmdir_r(r.state);
	st_rmdir_r(w.dir);
	st_rmdir_r(w.shdir);
	if (r.saved == 0)
		rmdir(r.base);
	for (int k = 0; k < PC_NAMES; k++)
		free(r.buf[k]);
	free(r.foff);
	free(r.seen);
	free(r.base);
	free(r.state);
	free(w.dir);
	free(w.shdir);
	pc_model_free(&r.m);
	pc_trace_free(&t);
	if (own)
		mix_engine_free(&own);
	return ret;
}

#endif
