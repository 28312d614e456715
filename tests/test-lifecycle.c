/*
 * Lifecycle model test (issue 10): random sequences of whole mailbox
 * lifecycles, not single operations, applied to the engine and to a
 * plain reference model, compared after every reopen and after every
 * commit.
 *
 * Operations (one per step, chosen at random):
 *  - writable opens (CREATE the first time, sometimes RECREATE), a second
 *    writable open beside the first (must be MIX_ELOCKED), read-only opens
 *    beside the writable one (up to RO_MAX), closes of either;
 *  - idle cycles: open for writing and close without any commit, 1-4
 *    times in a row;
 *  - commits, MIX_DURABILITY_NONE and _SYNC, waited for or async, holding
 *    appends (with extension data), flag and keyword changes, extension
 *    record data, next_uid raises and multi-range expunges (several
 *    mix_txn_expunge calls on separate ranges in one transaction);
 *    extension registration; UIDVALIDITY set after every CREATE/RECREATE;
 *  - engine restarts with a new config: log_rotate_size 4-64 KiB (so the
 *    writer checkpoints and rotates all the time), expunge_history_max
 *    1..8 (or unbounded), one or two writer threads;
 *  - crashes: a child process (this program re-executed with --child)
 *    opens the index for writing and commits (sometimes closes and opens
 *    again, or re-creates the index), reporting each transaction
 *    to the parent through a pipe before it commits it and its result
 *    after; the parent kills it with SIGKILL after a random number of
 *    reports.  SIGKILL keeps the page cache, so every commit the child
 *    acknowledged, of any durability, must survive; the one in flight may
 *    or may not (decided by the engine's HIGHESTMODSEQ);
 *  - losing both logs after a clean close (mix.index covers everything
 *    then, so nothing may be lost and the index must open).
 *
 * First, fixed scenarios (one TAP line each) replay the lifecycles that
 * once broke mailboxes or followers: six idle writable sessions; three
 * expunge calls in one transaction with expunge_history_max 1; both logs
 * lost after a clean close; a follower opened after a reopen across a
 * RECREATE; a follower after both logs were lost; the two logs swapped
 * (refused naming them, or opened whole); a follower after an open that
 * skipped UIDs; a follower across a RECREATE that left the old logs,
 * mixctl check on that state, and the follower again when the new
 * mix.index has the old one's inode number.
 *
 * Then the random run.  Checked (one TAP line per kind, failing when any
 * step failed it):
 * every acknowledged commit present and whole after every reopen and
 * crash; a changing commit's modseq above every modseq seen before
 * (across reopens, crashes and RECREATE); UIDs never reused (next_uid
 * exact, except that a writable open that warns may skip UIDs a lost
 * writer could have handed out, format.md §2.7); every record modseq <=
 * HIGHESTMODSEQ; the expunge history exact for every
 * modseq at or above its oldest bound (mix_snap_expunged_since and
 * QRESYNC); read-only handles equal to the model after refresh;
 * `mixctl check DIR` exit 0 after closes and crashes (one in
 * MIX_LIFECYCLE_MIXCTL, and before the logs are deleted).
 *
 * Single-threaded apart from the engine's writers (async commits are
 * waited for).  A failure prints the step, the last OPLOG_N operations,
 * what was seen and what was expected; the model then adopts the
 * engine's state (or the index is re-created when it cannot be opened)
 * so later steps can find other problems.
 *
 * MIX_LIFECYCLE_SEED replays a run's choices (always printed; where the
 * child is killed depends on scheduling too); MIX_LIFECYCLE_STEPS sets its
 * length (default 250, 150 under ASan/TSan); MIX_LIFECYCLE_MIXCTL=N runs
 * mixctl check after one close or crash in N (default 3, 6 under ASan/TSan;
 * 1 = every one: a sanitizer build's mixctl costs 0.1-0.7 s a run); MIX_LIFECYCLE_STOP=1 ends it at the first
 * failure; MIX_LIFECYCLE_LOG=FILE writes every operation and failure to
 * FILE.  $MIX_BUILD/mixctl is run for the checks (make check sets it).
 * See docs/api.md (Opening and recovery), docs/design.md "Invariants" ( 4
 * and 5), docs/condstore.md (Expunge history).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

#define KW_POOL 10
#define MAXOPS 10
#define MAXR 4
#define RO_MAX 3
#define OPLOG_N 50
#define EXT_A_SIZE 8
#define EXT_B_SIZE 3
#define XH_MAX 4096
/* Defaults: a sanitizer build starts every child and mixctl several
 * times slower, so it runs fewer steps and fewer mixctl checks. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_STEPS 150
#define DEFAULT_MIXCTL_EVERY 6
#else
#define DEFAULT_STEPS 250
#define DEFAULT_MIXCTL_EVERY 3
#endif

static const char *const kw_pool[KW_POOL] = {
	"$Junk", "$NotJunk", "$Forwarded", "$MDNSent", "Work",
	"Home", "todo", "later", "x-1", "x-2",
};
static const char *const ext_name[2] = { "lc.a", "lc.b" };
static const uint16_t ext_size[2] = { EXT_A_SIZE, EXT_B_SIZE };
static const uint16_t ext_align[2] = { 8, 1 };
static const uint32_t ext_hdr[2] = { 16, 0 };

/* ---- failures, the operation log --------------------------------------- */

enum cat {
	C_OPEN, C_CLOSE, C_COMMIT, C_STATE, C_LIVE, C_RO, C_MODSEQ, C_UID,
	C_HMS, C_XHIST, C_MIXCTL, C_CHILD, C_LOCK, C_RECREATE, C_LOGS_LOST,
	C_COUNT
};
static const char *const cat_name[C_COUNT] = {
	[C_OPEN] = "every open of an existing index succeeds",
	[C_CLOSE] = "every close returns 0",
	[C_COMMIT] = "every commit succeeds and reports what the model expects",
	[C_STATE] = "after reopen or crash: every acknowledged commit present and whole",
	[C_LIVE] = "writable handle's snapshot equals the model after commits",
	[C_RO] = "read-only handles equal the model after refresh",
	[C_MODSEQ] = "modseqs never reused or going backwards (reopens, crashes, RECREATE)",
	[C_UID] = "UIDs never reused, next_uid never goes back",
	[C_HMS] = "HIGHESTMODSEQ >= every record modseq",
	[C_XHIST] = "expunge history exact at or above its oldest bound",
	[C_MIXCTL] = "mixctl check clean after closes and crashes",
	[C_CHILD] = "the crashing child opens and commits",
	[C_LOCK] = "a second writable open gets MIX_ELOCKED",
	[C_RECREATE] = "RECREATE starts a new UIDVALIDITY above the old modseqs",
	[C_LOGS_LOST] = "a cleanly closed index opens after losing its logs",
};
static long cat_fail[C_COUNT], cat_runs[C_COUNT];
static long step, nsteps, total_fail;
static long oplog_printed_step = -1, oplogs_printed;
static int stop_at_fail;   /* MIX_LIFECYCLE_STOP=1: end at the first */
static char oplog[OPLOG_N][200];
static unsigned oplog_n;
static FILE *oplog_file;   /* MIX_LIFECYCLE_LOG: every operation */

static void opf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void opf(const char *fmt, ...)
{
	va_list ap;
	char *p = oplog[oplog_n++ % OPLOG_N];
	int n = snprintf(p, 200, "%ld: ", step);
	va_start(ap, fmt);
	vsnprintf(p + n, 200 - (size_t)n, fmt, ap);
	va_end(ap);
	if (oplog_file)
		fprintf(oplog_file, "%s\n", p);
}

/* msg as TAP diagnostics: every line starts with "# " (mixctl's output
 * has several). */
static void print_lines(const char *lead, const char *msg)
{
	const char *nl;
	fputs(lead, stdout);
	while ((nl = strchr(msg, '\n'))) {
		printf("%.*s\n#     ", (int)(nl - msg), msg);
		msg = nl + 1;
	}
	printf("%s\n", msg);
}

static void print_oplog(void)
{
	unsigned i = oplog_n > OPLOG_N ? oplog_n - OPLOG_N : 0;
	printf("#   the last %u operations:\n", oplog_n - i);
	for (; i < oplog_n; i++)
		printf("#     %s\n", oplog[i % OPLOG_N]);
}

/* A failure's kind: its category and its message without digits and
 * paths, cut short.  Returns 1 the first time a kind is seen. */
static int new_kind(enum cat c, const char *msg)
{
	static char kinds[64][120];
	static unsigned nkinds;
	char k[120];
	size_t n = 0;
	k[n++] = (char)('A' + c);
	for (; *msg && n < sizeof(k) - 1; msg++)
		if ((*msg < '0' || *msg > '9') && *msg != '/')
			k[n++] = *msg;
	k[n] = '\0';
	for (unsigned i = 0; i < nkinds; i++)
		if (strcmp(kinds[i], k) == 0)
			return 0;
	if (nkinds < 64)
		memcpy(kinds[nkinds++], k, sizeof(k));
	return 1;
}

static void fail(enum cat c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(enum cat c, const char *fmt, ...)
{
	va_list ap;
	char msg[2048];
	int fresh;
	total_fail++;
	cat_fail[c]++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* every new kind of failure in full, with the operations; of the
	 * others the first few of each category */
	fresh = new_kind(c, msg);
	if (!fresh && cat_fail[c] > 8)
		return;
	if (oplog_file)
		fprintf(oplog_file, "FAIL [%s]: %s\n", cat_name[c], msg);
	printf("# FAIL step %ld [%s]: ", step, cat_name[c]);
	print_lines("", msg);
	if (oplog_printed_step != step &&
	    (fresh || oplogs_printed < 12 || stop_at_fail)) {
		oplog_printed_step = step;
		oplogs_printed++;
		print_oplog();
	}
	fflush(stdout);
	if (stop_at_fail)
		nsteps = step;   /* this step is the last */
}

static void check(enum cat c, int cond, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check(enum cat c, int cond, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];
	cat_runs[c]++;
	if (cond)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail(c, "%s", msg);
}

/* ---- transaction descriptions (shared with the child) ------------------ */

enum op_type { OP_APPEND, OP_FLAGS, OP_KW, OP_EXPUNGE, OP_EXT,
	       OP_UIDV,     /* UIDVALIDITY = uid, after CREATE / RECREATE */
	       OP_NEXT_UID  /* raise next_uid to uid (a no-op if lower) */ };

struct op {
	uint8_t type, modify, flags, ext_mask; /* ext_mask: APPEND data given */
	uint16_t kw;                           /* mask over kw_pool */
	uint8_t ext, nr;                       /* OP_EXT: which extension */
	uint32_t uid;                          /* OP_EXT */
	struct mix_uid_range r[MAXR];
	uint8_t a[EXT_A_SIZE], b[EXT_B_SIZE];  /* OP_EXT uses a or b */
};

struct tdesc {
	uint32_t nops;
	uint8_t durability, async;
	struct op ops[MAXOPS];
};

/* What the generator needs to know: taken from the model (parent) or a
 * snapshot (child). */
struct genctx {
	uint32_t next_uid, n;
	uint32_t *uids;
	int ext[2];
};

static uint8_t rand_flags(uint64_t *rng)
{
	static const uint8_t f[] = { MIX_FLAG_ANSWERED, MIX_FLAG_FLAGGED,
				     MIX_FLAG_DELETED, MIX_FLAG_SEEN,
				     MIX_FLAG_DRAFT, MIX_FLAG_RECENT };
	uint8_t v = 0;
	for (unsigned i = 0; i < sizeof(f); i++)
		if (tu_rand_below(rng, 3) == 0)
			v |= f[i];
	return v;
}

static uint16_t rand_kw(uint64_t *rng, unsigned max)
{
	uint16_t m = 0;
	unsigned n = tu_rand_below(rng, max + 1);
	while (n--)
		m |= (uint16_t)(1u << tu_rand_below(rng, KW_POOL));
	return m;
}

static void rand_range(uint64_t *rng, const struct genctx *g,
		       struct mix_uid_range *r)
{
	if (g->n && tu_rand_below(rng, 4)) {
		r->first = g->uids[tu_rand_below(rng, g->n)];
		r->last = r->first + tu_rand_below(rng, 4);
	} else {
		r->first = 1 + tu_rand_below(rng, g->next_uid + 3);
		r->last = r->first + tu_rand_below(rng, 12);
	}
}

static void gen_op(uint64_t *rng, const struct genctx *g, struct op *o)
{
	unsigned w = tu_rand_below(rng, 100), i;
	int big = g->n > 300;
	memset(o, 0, sizeof(*o));
	if (w < (big ? 15u : 35u)) {
		o->type = OP_APPEND;
		o->flags = rand_flags(rng);
		o->kw = rand_kw(rng, 2);
		for (i = 0; i < 2; i++)
			if (g->ext[i] && tu_rand_below(rng, 2))
				o->ext_mask |= (uint8_t)(1u << i);
		for (i = 0; i < EXT_A_SIZE; i++)
			o->a[i] = (uint8_t)tu_rand(rng);
		for (i = 0; i < EXT_B_SIZE; i++)
			o->b[i] = (uint8_t)tu_rand(rng);
		return;
	}
	o->nr = (uint8_t)(1 + tu_rand_below(rng, 2));
	for (i = 0; i < o->nr; i++)
		rand_range(rng, g, &o->r[i]);
	o->modify = (uint8_t)tu_rand_below(rng, 3);
	if (w < 55) {
		o->type = OP_FLAGS;
		o->flags = rand_flags(rng);
	} else if (w < 70) {
		o->type = OP_KW;
		o->kw = rand_kw(rng, 3);
	} else if (w < 84 || !(g->ext[0] || g->ext[1])) {
		o->type = OP_EXPUNGE;
	} else if (w < 86) {
		o->type = OP_NEXT_UID;
		o->nr = 0;
		o->uid = g->next_uid + tu_rand_below(rng, 4);
	} else {
		o->type = OP_EXT;
		o->ext = g->ext[0] && g->ext[1] ? (uint8_t)tu_rand_below(rng, 2) :
			 g->ext[0] ? 0 : 1;
		o->uid = g->n && tu_rand_below(rng, 4) ?
			 g->uids[tu_rand_below(rng, g->n)] :
			 1 + tu_rand_below(rng, g->next_uid + 2);
		for (i = 0; i < EXT_A_SIZE; i++)
			o->a[i] = tu_rand_below(rng, 4) ? (uint8_t)tu_rand(rng) : 0;
		memcpy(o->b, o->a, EXT_B_SIZE);
	}
}

static void gen_txn(uint64_t *rng, const struct genctx *g, struct tdesc *t)
{
	memset(t, 0, sizeof(*t));
	t->durability = (uint8_t)tu_rand_below(rng, 2);
	t->async = tu_rand_below(rng, 5) == 0;
	if (tu_rand_below(rng, 5) == 0) {
		/* a multi-range expunge: separate calls, separate ranges */
		uint32_t k = 2 + tu_rand_below(rng, 3), i, j;
		for (i = 0; i < k; i++) {
			struct op *o = &t->ops[t->nops++];
			memset(o, 0, sizeof(*o));
			o->type = OP_EXPUNGE;
			o->nr = (uint8_t)(1 + tu_rand_below(rng, 3));
			for (j = 0; j < o->nr; j++)
				rand_range(rng, g, &o->r[j]);
		}
		if (tu_rand_below(rng, 2))
			gen_op(rng, g, &t->ops[t->nops++]);
		return;
	}
	t->nops = 1 + tu_rand_below(rng, 6);
	for (uint32_t i = 0; i < t->nops; i++)
		gen_op(rng, g, &t->ops[i]);
}

static void kw_list(uint16_t mask, const char **out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < KW_POOL; i++)
		if (mask & (1u << i))
			out[n++] = kw_pool[i];
	out[n] = NULL;
}

static const char *const mod_name[3] = { "add", "remove", "replace" };

/* One line per transaction for the operation log. */
static void txn_describe(const struct tdesc *t, char *buf, size_t size)
{
	size_t n = 0;
	n += (size_t)snprintf(buf + n, size - n, "%s%s:",
			      t->durability ? "SYNC" : "NONE",
			      t->async ? " async" : "");
	for (uint32_t i = 0; i < t->nops && n < size; i++) {
		const struct op *o = &t->ops[i];
		switch (o->type) {
		case OP_APPEND:
			n += (size_t)snprintf(buf + n, size - n, " app(f%x,k%x,e%x)",
					      o->flags, o->kw, o->ext_mask);
			break;
		case OP_EXT:
			n += (size_t)snprintf(buf + n, size - n, " ext%c(%u)",
					      'a' + o->ext, o->uid);
			break;
		case OP_UIDV:
			n += (size_t)snprintf(buf + n, size - n,
					      " uidvalidity(%u)", o->uid);
			break;
		case OP_NEXT_UID:
			n += (size_t)snprintf(buf + n, size - n,
					      " next_uid(%u)", o->uid);
			break;
		default:
			n += (size_t)snprintf(buf + n, size - n, " %s%s[",
					      o->type == OP_FLAGS ? "flags-" :
					      o->type == OP_KW ? "kw-" : "expunge",
					      o->type == OP_EXPUNGE ? "" :
					      mod_name[o->modify]);
			for (uint32_t j = 0; j < o->nr && n < size; j++)
				n += (size_t)snprintf(buf + n, size - n, "%s%u:%u",
						      j ? "," : "", o->r[j].first,
						      o->r[j].last);
			if (n < size)
				n += (size_t)snprintf(buf + n, size - n, "]");
		}
	}
}

/* ---- running a transaction on the engine ------------------------------- */

struct acb {
	pthread_mutex_t m;
	pthread_cond_t c;
	int done, ret;
	struct mix_commit_result res;
};

static void async_done(void *ctx, int ret, const struct mix_commit_result *r)
{
	struct acb *a = ctx;
	pthread_mutex_lock(&a->m);
	a->ret = ret;
	if (r) {
		a->res = *r;
		a->res.modified = NULL;
		a->res.modified_count = 0;
	}
	a->done = 1;
	pthread_cond_signal(&a->c);
	pthread_mutex_unlock(&a->m);
}

static int ext_ids(struct mix_index *idx, uint32_t *ids)
{
	const struct mix_snap *s;
	int have = 0;
	mix_read_lock();
	s = mix_index_snap(idx);
	for (int i = 0; i < 2; i++)
		if (mix_snap_ext_lookup(s, ext_name[i], &ids[i]))
			have |= 1 << i;
	mix_read_unlock();
	return have;
}

/* Build and commit t; returns the commit's result code. */
static int txn_run(struct mix_index *idx, const struct tdesc *t,
		   struct mix_commit_result *res)
{
	struct mix_txn *tx;
	uint32_t ids[2] = { 0, 0 }, no;
	const char *kws[KW_POOL + 1];
	int ret, have = ext_ids(idx, ids);

	memset(res, 0, sizeof(*res));
	if ((ret = mix_txn_begin(idx, &tx)) < 0)
		return ret;
	for (uint32_t i = 0; i < t->nops && ret == 0; i++) {
		const struct op *o = &t->ops[i];
		kw_list(o->kw, kws);
		switch (o->type) {
		case OP_APPEND:
			ret = mix_txn_append(tx, o->flags, kws, &no);
			if (ret == 0 && (o->ext_mask & 1) && (have & 1))
				ret = mix_txn_append_ext(tx, no, ids[0], o->a,
							 EXT_A_SIZE);
			if (ret == 0 && (o->ext_mask & 2) && (have & 2))
				ret = mix_txn_append_ext(tx, no, ids[1], o->b,
							 EXT_B_SIZE);
			break;
		case OP_FLAGS:
			ret = mix_txn_flags(tx, o->r, o->nr, o->modify, o->flags);
			break;
		case OP_KW:
			ret = mix_txn_keywords(tx, o->r, o->nr, o->modify, kws);
			break;
		case OP_EXPUNGE:
			ret = mix_txn_expunge(tx, o->r, o->nr);
			break;
		case OP_EXT:
			if (have & (1 << o->ext))
				ret = mix_txn_ext_set(tx, o->uid, ids[o->ext],
						      o->ext ? o->b : o->a,
						      ext_size[o->ext]);
			break;
		case OP_UIDV:
			ret = mix_txn_hdr_set(tx, MIX_HDR_UID_VALIDITY, o->uid);
			break;
		case OP_NEXT_UID:
			ret = mix_txn_hdr_set(tx, MIX_HDR_NEXT_UID, o->uid);
			break;
		}
	}
	if (ret < 0) {
		mix_txn_abort(&tx);
		return ret;
	}
	if (!t->async)
		return mix_txn_commit(&tx, t->durability, res);
	{
		/* static: the writer may still be inside the callback's
		 * unlock when the wait returns */
		static struct acb a = { PTHREAD_MUTEX_INITIALIZER,
					PTHREAD_COND_INITIALIZER, 0, 0, { 0 } };
		a.done = 0;
		ret = mix_txn_commit_async(&tx, t->durability, async_done, &a);
		if (ret < 0)
			return ret;
		pthread_mutex_lock(&a.m);
		while (!a.done)
			pthread_cond_wait(&a.c, &a.m);
		*res = a.res;
		ret = a.ret;
		pthread_mutex_unlock(&a.m);
		return ret;
	}
}

/* ---- the model --------------------------------------------------------- */

struct mrec {
	uint32_t uid;
	uint8_t flags;
	uint16_t kw;
	uint64_t modseq;
	uint8_t a[EXT_A_SIZE], b[EXT_B_SIZE];
};

struct model {
	struct mrec *r;
	uint32_t n, cap;
	uint32_t next_uid, uid_validity;
	uint64_t hms;
	uint16_t kw_known;
	int ext[2];
	/* expunges of this UIDVALIDITY known to the model, modseq order */
	struct { uint64_t modseq; uint32_t uid; } xh[XH_MAX];
	uint32_t nxh;
	/* the model's expunge knowledge starts here (create, RECREATE,
	 * adoption of the engine's state) */
	uint64_t xfloor;
	/* recent commit modseqs: candidates for "since" */
	uint64_t issued[32];
	uint32_t nissued;
	int exists;   /* an index is in the directory */
};

static struct model M;
static struct mix_index *W, *RO[RO_MAX];
/* The HIGHESTMODSEQ each follower showed last: it never goes back,
 * whatever the writer does (rotation, crash, RECREATE). */
static uint64_t ro_hms[RO_MAX];
static uint64_t max_seen;       /* every modseq seen so far, any incarnation */
static uint32_t uidv_counter;   /* the last UIDVALIDITY given */
static uint64_t rng;

#define PENDING UINT64_MAX

static struct mrec *m_find(uint32_t uid)
{
	uint32_t lo = 0, hi = M.n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (M.r[mid].uid < uid)
			lo = mid + 1;
		else if (M.r[mid].uid > uid)
			hi = mid;
		else
			return &M.r[mid];
	}
	return NULL;
}

static int in_ranges(uint32_t uid, const struct mix_uid_range *r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (uid >= r[i].first && uid <= r[i].last)
			return 1;
	return 0;
}

static void xh_add(uint64_t modseq, uint32_t uid)
{
	if (M.nxh == XH_MAX) {
		/* forget the oldest half; the floor moves up with it */
		uint32_t h = XH_MAX / 2;
		M.xfloor = M.xh[h - 1].modseq;
		memmove(M.xh, M.xh + h, (XH_MAX - h) * sizeof(M.xh[0]));
		M.nxh -= h;
	}
	M.xh[M.nxh].modseq = modseq;
	M.xh[M.nxh++].uid = uid;
}

static void m_reset(void)
{
	free(M.r);
	memset(&M, 0, sizeof(M));
	M.next_uid = 1;
}

static void m_append(const struct op *o, int *changed, uint32_t *first,
		     uint32_t *last)
{
	struct mrec r;
	memset(&r, 0, sizeof(r));
	if (M.n == M.cap) {
		M.cap = M.cap ? M.cap * 2 : 256;
		M.r = realloc(M.r, M.cap * sizeof(*M.r));
		if (!M.r)
			BAIL("out of memory");
	}
	r.uid = M.next_uid++;
	r.flags = o->flags;
	r.kw = o->kw;
	M.kw_known |= o->kw;
	if ((o->ext_mask & 1) && M.ext[0])
		memcpy(r.a, o->a, EXT_A_SIZE);
	if ((o->ext_mask & 2) && M.ext[1])
		memcpy(r.b, o->b, EXT_B_SIZE);
	r.modseq = PENDING;
	M.r[M.n++] = r;
	if (!*first)
		*first = r.uid;
	*last = r.uid;
	*changed = 1;
}

static void m_modify(const struct op *o, int *changed)
{
	uint16_t want = o->kw;
	if (o->type == OP_KW && o->modify != MIX_MODIFY_REMOVE &&
	    (want & ~M.kw_known)) {
		M.kw_known |= want;   /* a new name is logged */
		*changed = 1;
	}
	for (uint32_t i = 0; i < M.n; i++) {
		struct mrec *m = &M.r[i];
		if (!in_ranges(m->uid, o->r, o->nr))
			continue;
		if (o->type == OP_FLAGS) {
			uint8_t nf = o->modify == MIX_MODIFY_ADD ? m->flags | o->flags :
				     o->modify == MIX_MODIFY_REMOVE ?
				     m->flags & (uint8_t)~o->flags : o->flags;
			if (nf == m->flags)
				continue;
			m->flags = nf;
		} else {
			uint16_t nk = o->modify == MIX_MODIFY_ADD ? m->kw | want :
				      o->modify == MIX_MODIFY_REMOVE ?
				      m->kw & (uint16_t)~want : want;
			if (nk == m->kw)
				continue;
			m->kw = nk;
		}
		m->modseq = PENDING;
		*changed = 1;
	}
}

static void m_expunge(const struct op *o, int *changed)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < M.n; i++) {
		if (in_ranges(M.r[i].uid, o->r, o->nr)) {
			xh_add(PENDING, M.r[i].uid);
			*changed = 1;
		} else {
			M.r[k++] = M.r[i];
		}
	}
	M.n = k;
}

static void m_ext(const struct op *o, int *changed)
{
	struct mrec *m = m_find(o->uid);
	uint8_t *dst;
	const uint8_t *src = o->ext ? o->b : o->a;
	if (!m || !M.ext[o->ext])
		return;
	dst = o->ext ? m->b : m->a;
	if (memcmp(dst, src, ext_size[o->ext]) == 0)
		return;
	memcpy(dst, src, ext_size[o->ext]);
	m->modseq = PENDING;
	*changed = 1;
}

/* Apply t to the model; records it touched get PENDING until
 * m_stamp().  Returns 1 if it changes anything. */
static int m_apply(const struct tdesc *t, uint32_t *first, uint32_t *last)
{
	int changed = 0;
	*first = *last = 0;
	for (uint32_t i = 0; i < t->nops; i++) {
		const struct op *o = &t->ops[i];
		switch (o->type) {
		case OP_APPEND:
			m_append(o, &changed, first, last);
			break;
		case OP_FLAGS:
		case OP_KW:
			m_modify(o, &changed);
			break;
		case OP_EXPUNGE:
			m_expunge(o, &changed);
			break;
		case OP_EXT:
			m_ext(o, &changed);
			break;
		case OP_UIDV:
			if (o->uid != M.uid_validity) {
				M.uid_validity = o->uid;
				changed = 1;
			}
			break;
		case OP_NEXT_UID:
			if (o->uid > M.next_uid) {
				M.next_uid = o->uid;
				changed = 1;
			}
			break;
		}
	}
	return changed;
}

static void m_stamp(uint64_t modseq)
{
	for (uint32_t i = 0; i < M.n; i++)
		if (M.r[i].modseq == PENDING)
			M.r[i].modseq = modseq;
	for (uint32_t i = 0; i < M.nxh; i++)
		if (M.xh[i].modseq == PENDING)
			M.xh[i].modseq = modseq;
	M.issued[M.nissued++ % 32] = modseq;
	M.hms = modseq;
}

/* A new modseq was issued (or seen): it must be above every one before. */
static void modseq_issued(uint64_t modseq, const char *what)
{
	check(C_MODSEQ, modseq > max_seen, "%s: modseq %#llx not above the "
	      "highest seen before %#llx", what, (unsigned long long)modseq,
	      (unsigned long long)max_seen);
	if (modseq > max_seen)
		max_seen = modseq;
}

/* The engine's result of t, checked against the model and applied to it.
 * ret < 0: the commit failed (reported by the caller). */
static void m_commit(const struct tdesc *t, const struct mix_commit_result *res,
		     const char *who)
{
	uint32_t first, last;
	uint32_t want_first = M.next_uid;
	int changed = m_apply(t, &first, &last);

	if (first)
		check(C_UID, res->first_uid == first && res->last_uid == last &&
		      first >= want_first, "%s: appends got UIDs %u..%u, model "
		      "%u..%u", who, res->first_uid, res->last_uid, first, last);
	check(C_COMMIT, changed == !res->no_changes, "%s: no_changes %d, model "
	      "says the transaction %s", who, res->no_changes,
	      changed ? "changes something" : "changes nothing");
	if (changed) {
		modseq_issued(res->modseq, who);
		m_stamp(res->modseq);
	} else {
		check(C_COMMIT, res->modseq == M.hms, "%s: a transaction "
		      "without changes reports modseq %#llx, model's "
		      "HIGHESTMODSEQ %#llx", who,
		      (unsigned long long)res->modseq,
		      (unsigned long long)M.hms);
	}
}

static void m_genctx(struct genctx *g)
{
	static uint32_t *uids;
	static uint32_t cap;
	if (cap < M.n + 1) {
		cap = M.n + 256;
		uids = realloc(uids, cap * sizeof(*uids));
		if (!uids)
			BAIL("out of memory");
	}
	for (uint32_t i = 0; i < M.n; i++)
		uids[i] = M.r[i].uid;
	g->uids = uids;
	g->n = M.n;
	g->next_uid = M.next_uid;
	g->ext[0] = M.ext[0];
	g->ext[1] = M.ext[1];
}

/* ---- comparing a snapshot with the model ------------------------------- */

static int kw_of(const struct mix_snap *s, const struct mix_record *rec,
		 uint16_t *mask, char *bad, size_t badsize)
{
	uint32_t i, n = mix_snap_keyword_count(s);
	*mask = 0;
	bad[0] = '\0';
	for (i = 0; i < rec->keywords_bits && i < n; i++) {
		const char *name;
		unsigned j;
		if (!mix_record_has_keyword(rec, i))
			continue;
		name = mix_snap_keyword_name(s, i);
		for (j = 0; j < KW_POOL; j++)
			if (name && strcmp(name, kw_pool[j]) == 0)
				break;
		if (j == KW_POOL) {
			snprintf(bad, badsize, "%s", name ? name : "(null)");
			return -1;
		}
		*mask |= (uint16_t)(1u << j);
	}
	return 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	if (!n)
		out[0] = '\0';
}

/* Records of s against the model; returns the number of differences. */
static int cmp_records(const struct mix_snap *s, enum cat c, const char *who)
{
	struct mix_iter it;
	struct mix_record rec;
	uint32_t ids[2], i = 0;
	int have[2], bad = 0;
	uint64_t hms = mix_snap_highest_modseq(s);

	for (int e = 0; e < 2; e++)
		have[e] = mix_snap_ext_lookup(s, ext_name[e], &ids[e]);
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &rec)) {
		const struct mrec *m = i < M.n ? &M.r[i] : NULL;
		uint16_t kw;
		char badkw[300];
		i++;
		check(C_HMS, rec.modseq <= hms, "%s: uid %u has modseq %#llx "
		      "above HIGHESTMODSEQ %#llx", who, rec.uid,
		      (unsigned long long)rec.modseq, (unsigned long long)hms);
		if (!m || rec.uid != m->uid) {
			fail(c, "%s: seq %u is uid %u, model uid %u%s", who, i,
			     rec.uid, m ? m->uid : 0,
			     m && m->uid < rec.uid ? " (a model message is "
			     "missing)" : " (a message the model lacks)");
			return bad + 1;
		}
		if (kw_of(s, &rec, &kw, badkw, sizeof(badkw)) < 0) {
			fail(c, "%s: uid %u has keyword '%s' nobody set", who,
			     rec.uid, badkw);
			bad++;
		}
		if (rec.flags != m->flags || kw != m->kw ||
		    rec.modseq != m->modseq) {
			fail(c, "%s: uid %u flags %#x keywords %#x modseq "
			     "%#llx; model flags %#x keywords %#x modseq %#llx",
			     who, rec.uid, rec.flags, kw,
			     (unsigned long long)rec.modseq, m->flags, m->kw,
			     (unsigned long long)m->modseq);
			bad++;
		}
		for (int e = 0; e < 2 && bad < 5; e++) {
			size_t size = 0;
			const void *d;
			char g[40], w[40];
			if (!have[e] || !M.ext[e])
				continue;
			d = mix_record_ext(s, &rec, ids[e], &size);
			if (d && size == ext_size[e] &&
			    memcmp(d, e ? m->b : m->a, size) == 0)
				continue;
			hex(d ? d : (const uint8_t *)"", d ? size : 0, g);
			hex(e ? m->b : m->a, ext_size[e], w);
			fail(c, "%s: uid %u extension %s data %s (size %zu), "
			     "model %s", who, rec.uid, ext_name[e], g, size, w);
			bad++;
		}
		if (bad >= 5)
			return bad;
	}
	if (i != M.n) {
		fail(c, "%s: %u messages, model %u (first missing uid %u)", who,
		     i, M.n, M.r[i].uid);
		bad++;
	}
	return bad;
}

/* Set for the comparison after a writable open that warned: recovery
 * may skip UIDs a lost writer could have handed out (format.md §2.7,
 * RFC 9051 §2.3.1.1), so next_uid may be above the model's, never below;
 * likewise HIGHESTMODSEQ, above modseqs lost logs may have issued. */
static int uid_skip_ok;

static int cmp_header(const struct mix_snap *s, enum cat c, const char *who)
{
	uint32_t nkw = mix_snap_keyword_count(s), i;
	uint16_t known = 0;
	int bad = 0;
	uint64_t hms = mix_snap_highest_modseq(s);

	if (uid_skip_ok && mix_snap_next_uid(s) > M.next_uid) {
		opf("(%s: next_uid skipped %u -> %u, announced by a warning)",
		    who, M.next_uid, mix_snap_next_uid(s));
		M.next_uid = mix_snap_next_uid(s);
	}
	if (uid_skip_ok && hms > M.hms) {
		opf("(%s: HIGHESTMODSEQ raised %#llx -> %#llx, announced by a "
		    "warning)", who, (unsigned long long)M.hms,
		    (unsigned long long)hms);
		M.hms = hms;
		if (hms > max_seen)
			max_seen = hms;
	}
	/* a stale follower is its own failure, not the writer's */
	check(c == C_RO ? C_RO : C_UID, mix_snap_next_uid(s) >= M.next_uid,
	      "%s: next_uid %u "
	      "below the model's %u (%s)", who, mix_snap_next_uid(s), M.next_uid,
	      c == C_RO ? "a stale follower" : "UIDs would be issued twice");
	check(c == C_RO ? C_RO : C_MODSEQ, hms >= M.hms,
	      "%s: HIGHESTMODSEQ %#llx below the "
	      "model's %#llx (went backwards)", who, (unsigned long long)hms,
	      (unsigned long long)M.hms);
	if (mix_snap_messages_count(s) != M.n ||
	    mix_snap_next_uid(s) != M.next_uid || hms != M.hms ||
	    mix_snap_uid_validity(s) != M.uid_validity) {
		fail(c, "%s: header count %u next_uid %u hms %#llx uidvalidity "
		     "%u; model %u %u %#llx %u", who,
		     mix_snap_messages_count(s), mix_snap_next_uid(s),
		     (unsigned long long)hms, mix_snap_uid_validity(s), M.n,
		     M.next_uid, (unsigned long long)M.hms, M.uid_validity);
		bad++;
	}
	for (i = 0; i < nkw; i++) {
		const char *name = mix_snap_keyword_name(s, i);
		for (unsigned j = 0; j < KW_POOL; j++)
			if (name && strcmp(name, kw_pool[j]) == 0)
				known |= (uint16_t)(1u << j);
	}
	if (known != M.kw_known || nkw != (uint32_t)__builtin_popcount(known)) {
		fail(c, "%s: keyword names %#x (%u), model %#x", who, known,
		     nkw, M.kw_known);
		bad++;
	}
	for (int e = 0; e < 2; e++) {
		uint32_t id;
		int has = mix_snap_ext_lookup(s, ext_name[e], &id);
		if (has != M.ext[e]) {
			fail(c, "%s: extension %s %s, model %s", who,
			     ext_name[e], has ? "registered" : "missing",
			     M.ext[e] ? "registered" : "not registered");
			bad++;
		}
	}
	return bad;
}

/* Model's UIDs expunged by transactions above since, as a sorted array. */
static uint32_t m_expunged_since(uint64_t since, uint32_t *out)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < M.nxh; i++)
		if (M.xh[i].modseq > since)
			out[n++] = M.xh[i].uid;
	for (uint32_t i = 1; i < n; i++)   /* insertion sort: small */
		for (uint32_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
			uint32_t x = out[j];
			out[j] = out[j - 1];
			out[j - 1] = x;
		}
	return n;
}

static int ranges_equal(const struct mix_uid_range *r, uint32_t nr,
			const uint32_t *u, uint32_t nu, char *why, size_t size)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < nr; i++)
		for (uint64_t x = r[i].first; x <= r[i].last; x++, k++)
			if (k >= nu || u[k] != x) {
				snprintf(why, size, "engine has uid %llu, model "
					 "%s%u", (unsigned long long)x,
					 k < nu ? "uid " : "nothing; count ",
					 k < nu ? u[k] : nu);
				return 0;
			}
	if (k != nu) {
		snprintf(why, size, "engine lists %u UIDs, model %u (first "
			 "missing %u)", k, nu, u[k]);
		return 0;
	}
	return 1;
}

static int cmp_xhist_at(const struct mix_snap *s, uint64_t since,
			const char *who)
{
	static uint32_t want[XH_MAX];
	struct mix_uid_range *r = NULL;
	uint32_t nr = 0, nw;
	uint64_t oldest = 0;
	char why[200];
	int ret = mix_snap_expunged_since(s, since, &r, &nr, &oldest);
	int bad = 0;

	if (ret < 0) {
		fail(C_XHIST, "%s: expunged_since(%#llx) failed: %s", who,
		     (unsigned long long)since, mix_strerror(ret));
		return 1;
	}
	check(C_XHIST, ret == (since >= oldest), "%s: expunged_since(%#llx) "
	      "returned %d with oldest %#llx", who, (unsigned long long)since,
	      ret, (unsigned long long)oldest);
	if (ret == 1 && since >= M.xfloor) {
		nw = m_expunged_since(since, want);
		if (!ranges_equal(r, nr, want, nw, why, sizeof(why))) {
			fail(C_XHIST, "%s: expunged since %#llx (oldest %#llx, "
			     "hms %#llx): %s", who, (unsigned long long)since,
			     (unsigned long long)oldest,
			     (unsigned long long)mix_snap_highest_modseq(s),
			     why);
			bad++;
		}
	}
	free(r);
	/* QRESYNC gives the same answer when it is precise */
	if (ret == 1 && since >= M.xfloor && !bad && since > 0) {
		struct mix_qresync_params p = { 0 };
		struct mix_qresync_result q;
		p.uid_validity = mix_snap_uid_validity(s);
		p.modseq = since;
		if (mix_snap_qresync(s, &p, &q) == 0) {
			nw = m_expunged_since(since, want);
			if (q.precise &&
			    !ranges_equal(q.vanished, q.vanished_count, want,
					  nw, why, sizeof(why))) {
				fail(C_XHIST, "%s: QRESYNC since %#llx VANISHED: "
				     "%s", who, (unsigned long long)since, why);
				bad++;
			}
			check(C_XHIST, q.precise, "%s: QRESYNC since %#llx not "
			      "precise although the history reaches back",
			      who, (unsigned long long)since);
			mix_qresync_result_free(&q);
		}
	}
	return bad;
}

static int cmp_xhist(const struct mix_snap *s, const char *who)
{
	uint64_t oldest = 0, hms = mix_snap_highest_modseq(s);
	struct mix_uid_range *r = NULL;
	uint32_t nr;
	int bad = 0;

	mix_snap_expunged_since(s, hms, &r, &nr, &oldest);
	free(r);
	bad += cmp_xhist_at(s, hms, who);
	bad += cmp_xhist_at(s, oldest, who);
	if (oldest > 0)
		bad += cmp_xhist_at(s, oldest - 1, who);
	bad += cmp_xhist_at(s, M.xfloor, who);
	for (uint32_t i = 0; i < 3 && M.nissued; i++) {
		uint32_t n = M.nissued < 32 ? M.nissued : 32;
		bad += cmp_xhist_at(s, M.issued[tu_rand_below(&rng, n)], who);
	}
	return bad;
}

/* The whole state of s against the model. */
static int cmp_snap(const struct mix_snap *s, enum cat c, const char *who)
{
	int bad = cmp_header(s, c, who);
	bad += cmp_records(s, c, who);
	cat_runs[c]++;
	if (!bad)
		bad += cmp_xhist(s, who);
	return bad;
}

/* Adopt the engine's state after a difference was reported, so later
 * steps test what happens next instead of repeating the difference. */
static void m_adopt(const struct mix_snap *s)
{
	struct mix_iter it;
	struct mix_record rec;
	uint32_t ids[2], nkw = mix_snap_keyword_count(s);
	int have[2];

	M.n = 0;
	M.next_uid = mix_snap_next_uid(s);
	M.uid_validity = mix_snap_uid_validity(s);
	M.hms = mix_snap_highest_modseq(s);
	if (M.hms > max_seen)
		max_seen = M.hms;
	M.kw_known = 0;
	for (uint32_t i = 0; i < nkw; i++)
		for (unsigned j = 0; j < KW_POOL; j++)
			if (!strcmp(mix_snap_keyword_name(s, i), kw_pool[j]))
				M.kw_known |= (uint16_t)(1u << j);
	for (int e = 0; e < 2; e++)
		M.ext[e] = have[e] = mix_snap_ext_lookup(s, ext_name[e], &ids[e]);
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &rec)) {
		struct mrec m;
		char badkw[300];
		memset(&m, 0, sizeof(m));
		m.uid = rec.uid;
		m.flags = rec.flags;
		m.modseq = rec.modseq;
		kw_of(s, &rec, &m.kw, badkw, sizeof(badkw));
		for (int e = 0; e < 2; e++) {
			size_t size = 0;
			const void *d = have[e] ?
				mix_record_ext(s, &rec, ids[e], &size) : NULL;
			if (d && size == ext_size[e])
				memcpy(e ? m.b : m.a, d, size);
		}
		if (M.n == M.cap) {
			M.cap = M.cap ? M.cap * 2 : 256;
			M.r = realloc(M.r, M.cap * sizeof(*M.r));
			if (!M.r)
				BAIL("out of memory");
		}
		M.r[M.n++] = m;
	}
	M.nxh = 0;
	M.xfloor = M.hms;
	M.nissued = 0;
	opf("(model adopted the engine's state: %u messages, hms %#llx)",
	    M.n, (unsigned long long)M.hms);
}

/* A read-only follower's difference is its own (the model stays); any
 * other difference makes the model adopt the engine's state. */
static int cmp_index(struct mix_index *idx, enum cat c, const char *who)
{
	const struct mix_snap *s;
	int bad;
	mix_read_lock();
	s = mix_index_snap(idx);
	bad = cmp_snap(s, c, who);
	if (bad && c != C_RO)
		m_adopt(s);
	mix_read_unlock();
	if (bad && c == C_RO) {
		/* the follower is wrong: drop it rather than report it
		 * again at every refresh */
		for (int i = 0; i < RO_MAX; i++)
			if (RO[i] == idx) {
				opf("(read-only #%d closed after the difference)",
				    i);
				mix_index_close(&RO[i]);
			}
	}
	return bad;
}

static uint64_t idx_hms(struct mix_index *idx)
{
	uint64_t h;
	mix_read_lock();
	h = mix_snap_highest_modseq(mix_index_snap(idx));
	mix_read_unlock();
	return h;
}

/* ---- mixctl ------------------------------------------------------------ */

static char *mixctl;
/* mixctl runs after 1 in mixctl_every closes and crashes, chosen by a
 * stream of its own so the operations do not depend on it */
static unsigned mixctl_every = DEFAULT_MIXCTL_EVERY;
static uint64_t mixctl_rng;

/* Returns 1 when mixctl check says the directory is clean. */
/* Run mixctl check on d; its output goes to out.  Returns its exit status
 * (128: killed or not run). */
static int mixctl_check(const char *d, char *out, size_t size)
{
	int fds[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0)
		BAIL("pipe");
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		execl(mixctl, mixctl, "check", d, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (got + 1 < size &&
	       (n = read(fds[0], out + got, size - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	while (read(fds[0], &(char){ 0 }, 1) > 0)
		;
	close(fds[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) != 127 ?
	       WEXITSTATUS(status) : 128;
}

static int run_mixctl(const char *dir, const char *when, int force)
{
	static char out[16384];
	int status;

	if (tu_rand_below(&mixctl_rng, mixctl_every) != 0 && !force)
		return 1;   /* not checked this time */
	status = mixctl_check(dir, out, sizeof(out));
	opf("mixctl check (%s): exit %d", when, status);
	check(C_MIXCTL, status == 0, "mixctl check (%s): %s, expected exit 0 "
	      "(clean); %s said:\n%s", when, status == 1 ? "exit 1 (problems)" :
	      status == 2 ? "exit 2 (could not check)" : "killed or not run",
	      dir, out);
	return status == 0;
}

/* ---- the parent's handles and engine ----------------------------------- */

static struct mix_engine *engine;
static struct mix_engine_config cfg;
static char *dir;
static char warnbuf[2048];

static void on_warning(void *ctx, const char *msg)
{
	(void)ctx;
	snprintf(warnbuf, sizeof(warnbuf), "%s", msg);
}

static void pick_config(void)
{
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096u << tu_rand_below(&rng, 5);
	cfg.writer_threads = 1 + tu_rand_below(&rng, 2);
	cfg.expunge_history_max = tu_rand_below(&rng, 6) == 0 ? 0 :
				  1 + tu_rand_below(&rng, 8);
	cfg.warning = on_warning;
}

static void engine_start(void)
{
	int ret;
	pick_config();
	if ((ret = mix_engine_create(&cfg, &engine)) < 0)
		BAIL("mix_engine_create: %s", mix_strerror(ret));
	opf("engine: log_rotate_size %llu expunge_history_max %u writers %u",
	    (unsigned long long)cfg.log_rotate_size, cfg.expunge_history_max,
	    cfg.writer_threads);
}

static void close_ro(int i)
{
	int ret = mix_index_close(&RO[i]);
	opf("close read-only #%d: %d", i, ret);
	check(C_CLOSE, ret == 0, "close of read-only handle #%d: %s (%s)", i,
	      mix_strerror(ret), mix_last_error());
	RO[i] = NULL;
}

static int close_w(void)
{
	int ret = mix_index_close(&W);
	opf("close writable: %d", ret);
	check(C_CLOSE, ret == 0, "close of the writable handle: %s (%s)",
	      mix_strerror(ret), mix_last_error());
	W = NULL;
	run_mixctl(dir, "after a close", 0);
	return ret;
}

static void engine_restart(void)
{
	int ret;
	if (W)
		close_w();
	for (int i = 0; i < RO_MAX; i++)
		if (RO[i])
			close_ro(i);
	if ((ret = mix_engine_free(&engine)) < 0)
		BAIL("mix_engine_free: %s", mix_strerror(ret));
	engine_start();
}

/* A fresh incarnation was just opened: reset the model to it. */
static void m_new_incarnation(struct mix_index *idx, const char *how)
{
	const struct mix_snap *s;
	uint64_t hms;

	m_reset();
	M.exists = 1;
	mix_read_lock();
	s = mix_index_snap(idx);
	hms = mix_snap_highest_modseq(s);
	M.uid_validity = mix_snap_uid_validity(s);
	M.next_uid = mix_snap_next_uid(s);
	M.hms = hms;
	M.xfloor = hms;
	check(C_RECREATE, mix_snap_messages_count(s) == 0 && M.next_uid == 1 &&
	      M.uid_validity == 0, "%s: a new index has %u messages, next_uid "
	      "%u, UIDVALIDITY %u (docs/api.md: empty, 1, 0)", how,
	      mix_snap_messages_count(s), M.next_uid, M.uid_validity);
	mix_read_unlock();
	check(C_RECREATE, hms >= max_seen, "%s: the new index's HIGHESTMODSEQ "
	      "%#llx is below a modseq issued before %#llx", how,
	      (unsigned long long)hms, (unsigned long long)max_seen);
	if (hms > max_seen)
		max_seen = hms;
	/* as a mail server does: the first transaction sets UIDVALIDITY */
	{
		struct tdesc t;
		struct mix_commit_result res;
		int ret;
		memset(&t, 0, sizeof(t));
		t.nops = 1;
		t.durability = MIX_DURABILITY_SYNC;
		t.ops[0].type = OP_UIDV;
		t.ops[0].uid = ++uidv_counter;
		ret = txn_run(idx, &t, &res);
		opf("commit SYNC: uidvalidity(%u) -> %d modseq %#llx", t.ops[0].uid,
		    ret, (unsigned long long)res.modseq);
		if (ret < 0) {
			fail(C_COMMIT, "setting UIDVALIDITY: %s (%s)",
			     mix_strerror(ret), mix_last_error());
			return;
		}
		m_commit(&t, &res, "UIDVALIDITY");
	}
}

/* The index cannot be opened: say so, then start a new incarnation so the
 * run can go on. */
static void recover_unopenable(void)
{
	int ret = mix_index_open(engine, dir, MIX_OPEN_RECREATE, &W);
	opf("(the index could not be opened: RECREATE: %d)", ret);
	if (ret < 0)
		BAIL("RECREATE after a failed open: %s (%s)", mix_strerror(ret),
		     mix_last_error());
	m_new_incarnation(W, "RECREATE after a failed open");
}

struct msg;
static void resolve_pending(struct mix_index *idx, const struct msg *p);

/* Open W; a RECREATE or CREATE starts a new model incarnation, any other
 * open is compared with the model (after deciding whether the crashed
 * child's in-flight transaction, pending, landed). */
static int open_w_pending(unsigned flags, const char *why,
			  const struct msg *pending)
{
	int ret;
	warnbuf[0] = '\0';
	cat_runs[C_OPEN]++;
	ret = mix_index_open(engine, dir, flags, &W);
	opf("open writable%s%s (%s): %d%s%s", flags & MIX_OPEN_CREATE ?
	    " CREATE" : "", flags & MIX_OPEN_RECREATE ? " RECREATE" : "", why,
	    ret, warnbuf[0] ? " warning: " : "", warnbuf);
	if (ret < 0) {
		fail(C_OPEN, "writable open (%s): %s: %s", why,
		     mix_strerror(ret), mix_last_error());
		W = NULL;
		recover_unopenable();
		return -1;
	}
	if (flags & (MIX_OPEN_CREATE | MIX_OPEN_RECREATE)) {
		m_new_incarnation(W, flags & MIX_OPEN_RECREATE ? "RECREATE" :
				  "CREATE");
		return 0;
	}
	if (pending)
		resolve_pending(W, pending);
	uid_skip_ok = warnbuf[0] != '\0';
	cmp_index(W, C_STATE, "writable open");
	uid_skip_ok = 0;
	return 0;
}

static int open_w(unsigned flags, const char *why)
{
	return open_w_pending(flags, why, NULL);
}

/* ---- steps ------------------------------------------------------------- */

static void st_commit(void)
{
	struct genctx g;
	struct tdesc t;
	struct mix_commit_result res;
	char desc[160];
	int ret;

	m_genctx(&g);
	gen_txn(&rng, &g, &t);
	txn_describe(&t, desc, sizeof(desc));
	ret = txn_run(W, &t, &res);
	opf("commit %s -> %d modseq %#llx uids %u..%u%s", desc, ret,
	    (unsigned long long)res.modseq, res.first_uid, res.last_uid,
	    res.no_changes ? " no_changes" : "");
	if (ret < 0) {
		fail(C_COMMIT, "commit %s: %s (%s)", desc, mix_strerror(ret),
		     mix_last_error());
		/* state unknown: compare (and adopt) */
		cmp_index(W, C_LIVE, "after a failed commit");
		return;
	}
	m_commit(&t, &res, "commit");
	mix_commit_result_free(&res);
	cmp_index(W, C_LIVE, "after a commit");
}

static void st_register(void)
{
	int e = (int)tu_rand_below(&rng, 2), ret;
	uint32_t id = 0, old = 0;
	uint64_t before = idx_hms(W), after;
	int had = ext_ids(W, (uint32_t[2]){ 0, 0 }) >> e & 1;

	if (had) {
		uint32_t ids[2];
		ext_ids(W, ids);
		old = ids[e];
	}
	ret = mix_index_ext_register(W, ext_name[e], ext_size[e], ext_align[e],
				     ext_hdr[e], &id);
	after = idx_hms(W);
	opf("register %s -> %d id %u (hms %#llx -> %#llx)", ext_name[e], ret,
	    id, (unsigned long long)before, (unsigned long long)after);
	check(C_COMMIT, ret == 0 && (!had || id == old), "register %s: %s, id "
	      "%u (registered before as %u)", ext_name[e], mix_strerror(ret),
	      id, old);
	if (ret == 0)
		M.ext[e] = 1;
	if (after != before) {
		modseq_issued(after, "extension registration");
		M.hms = after;
	}
	cmp_index(W, C_LIVE, "after a registration");
}

static void st_open_ro(void)
{
	int i, ret;
	for (i = 0; i < RO_MAX && RO[i]; i++)
		;
	if (i == RO_MAX) {
		close_ro((int)tu_rand_below(&rng, RO_MAX));
		return;
	}
	cat_runs[C_OPEN]++;
	ret = mix_index_open(engine, dir, MIX_OPEN_READONLY, &RO[i]);
	opf("open read-only #%d: %d", i, ret);
	if (ret < 0) {
		fail(C_OPEN, "read-only open: %s: %s", mix_strerror(ret),
		     mix_last_error());
		RO[i] = NULL;
		return;
	}
	ro_hms[i] = idx_hms(RO[i]);
	cmp_index(RO[i], C_RO, "read-only open");
}

/* Refresh follower i; returns the refresh's result. */
static int ro_follow(int i, const char *when)
{
	int ret = mix_index_refresh(RO[i]);
	uint64_t h;
	opf("refresh read-only #%d%s: %d", i, when, ret);
	if (ret < 0) {
		fail(C_RO, "refresh of read-only #%d%s: %s: %s", i, when,
		     mix_strerror(ret), mix_last_error());
		return ret;
	}
	h = idx_hms(RO[i]);
	check(C_RO, h >= ro_hms[i], "read-only #%d%s: HIGHESTMODSEQ %#llx "
	      "went back from %#llx", i, when, (unsigned long long)h,
	      (unsigned long long)ro_hms[i]);
	ro_hms[i] = h;
	return ret;
}

static void st_refresh_ro(void)
{
	int i = (int)tu_rand_below(&rng, RO_MAX);
	char who[64];
	if (!RO[i] || ro_follow(i, "") < 0)
		return;
	snprintf(who, sizeof(who), "read-only #%d after refresh", i);
	cmp_index(RO[i], C_RO, who);
}

/* A second writer of the directory: another engine of this process (the
 * same engine would hand out W again, counted: test-open-twice). */
static void st_second_writer(void)
{
	struct mix_index *w2 = NULL;
	struct mix_engine *e2;
	int ret;
	if ((ret = mix_engine_create(NULL, &e2)) < 0) {
		fail(C_LOCK, "second engine: %s", mix_last_error());
		return;
	}
	ret = mix_index_open(e2, dir, 0, &w2);
	opf("second writable open: %d", ret);
	check(C_LOCK, ret == MIX_ELOCKED, "second writable open: %s, expected "
	      "MIX_ELOCKED", mix_strerror(ret));
	if (ret == 0)
		mix_index_close(&w2);
	mix_engine_free(&e2);
}

static void st_idle_cycles(void)
{
	unsigned k = 1 + tu_rand_below(&rng, 4);
	if (W)
		close_w();
	for (unsigned i = 0; i < k; i++) {
		if (open_w(0, "idle cycle") < 0)
			return;
		if (tu_rand_below(&rng, 2) == 0)
			st_second_writer();
		close_w();
	}
}

static void st_recreate(void)
{
	if (W)
		close_w();
	open_w(MIX_OPEN_RECREATE, "recreate");
}

static void st_lose_logs(void)
{
	char p[4096];
	if (!W && open_w(0, "before losing the logs") < 0)
		return;
	if (close_w() < 0 || !run_mixctl(dir, "before deleting the logs", 1))
		return;   /* only after a clean close (the rest is reported) */
	snprintf(p, sizeof(p), "%s/mix.index.log", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/mix.index.log.2", dir);
	unlink(p);
	opf("both logs deleted after a clean close");
	warnbuf[0] = '\0';
	{
		int ret = mix_index_open(engine, dir, 0, &W);
		opf("open writable (logs lost): %d%s%s", ret,
		    warnbuf[0] ? " warning: " : "", warnbuf);
		check(C_LOGS_LOST, ret == 0, "open after losing both logs: %s: "
		      "%s", mix_strerror(ret), mix_last_error());
		if (ret < 0) {
			W = NULL;
			recover_unopenable();
			return;
		}
		uid_skip_ok = warnbuf[0] != '\0';
		cmp_index(W, C_LOGS_LOST, "open after losing both logs");
		uid_skip_ok = 0;
	}
}

/* ---- the crashing child ------------------------------------------------ */

enum { MSG_OPEN = 'O', MSG_TXN = 'T', MSG_ACK = 'A', MSG_REG = 'E',
       MSG_REGACK = 'e', MSG_CLOSE = 'C', MSG_RECREATE = 'R',
       MSG_RECREATED = 'r' };

struct msg {
	char type;
	int32_t ret;
	uint32_t arg;              /* extension index, ext id */
	uint64_t modseq;
	uint32_t first_uid, last_uid;
	int32_t no_changes;
	struct tdesc t;
	char err[240];             /* mix_last_error() of a failure */
};

static void send_msg(int fd, struct msg *m)
{
	if (m->ret < 0)
		snprintf(m->err, sizeof(m->err), "%s", mix_last_error());
	if (write(fd, m, sizeof(*m)) != (ssize_t)sizeof(*m))
		_exit(20);
}

static void child_genctx(struct mix_index *idx, struct genctx *g)
{
	static uint32_t *uids;
	static uint32_t cap;
	const struct mix_snap *s;
	struct mix_iter it;
	struct mix_record rec;
	uint32_t ids[2];

	mix_read_lock();
	s = mix_index_snap(idx);
	g->n = 0;
	g->next_uid = mix_snap_next_uid(s);
	if (cap < mix_snap_messages_count(s) + 1) {
		cap = mix_snap_messages_count(s) + 256;
		uids = realloc(uids, cap * sizeof(*uids));
		if (!uids)
			_exit(21);
	}
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &rec) && g->n < cap)
		uids[g->n++] = rec.uid;
	for (int e = 0; e < 2; e++)
		g->ext[e] = mix_snap_ext_lookup(s, ext_name[e], &ids[e]);
	mix_read_unlock();
	g->uids = uids;
}

static void child_reopen(struct mix_engine *e, const char *d,
			 struct mix_index **idx, int fd)
{
	struct msg m;
	memset(&m, 0, sizeof(m));
	m.type = MSG_CLOSE;
	m.ret = mix_index_close(idx);
	send_msg(fd, &m);
	m.type = MSG_OPEN;
	m.ret = mix_index_open(e, d, 0, idx);
	send_msg(fd, &m);
	if (m.ret < 0)
		_exit(24);
}

static void child_register(struct mix_index *idx, int fd, uint64_t *r)
{
	struct msg m;
	uint32_t id = 0;
	memset(&m, 0, sizeof(m));
	m.type = MSG_REG;
	m.arg = tu_rand_below(r, 2);
	send_msg(fd, &m);
	m.type = MSG_REGACK;
	m.ret = mix_index_ext_register(idx, ext_name[m.arg], ext_size[m.arg],
				       ext_align[m.arg], ext_hdr[m.arg], &id);
	m.modseq = idx_hms(idx);
	send_msg(fd, &m);
}

/* A generated transaction, or t when given. */
static void child_commit(struct mix_index *idx, int fd, uint64_t *r,
			 const struct tdesc *t)
{
	struct genctx g;
	struct mix_commit_result res;
	struct msg m;
	memset(&m, 0, sizeof(m));
	m.type = MSG_TXN;
	if (t) {
		m.t = *t;
	} else {
		child_genctx(idx, &g);
		gen_txn(r, &g, &m.t);
	}
	send_msg(fd, &m);
	m.type = MSG_ACK;
	m.ret = txn_run(idx, &m.t, &res);
	m.modseq = res.modseq;
	m.first_uid = res.first_uid;
	m.last_uid = res.last_uid;
	m.no_changes = res.no_changes;
	mix_commit_result_free(&res);
	send_msg(fd, &m);
}

/* Close and open RECREATE, then set a UIDVALIDITY of the child's own
 * range (the parent's are small numbers). */
static void child_recreate(struct mix_engine *e, const char *d,
			   struct mix_index **idx, int fd, uint64_t *r)
{
	struct msg m;
	struct tdesc t;
	memset(&m, 0, sizeof(m));
	m.type = MSG_RECREATE;
	send_msg(fd, &m);
	mix_index_close(idx);
	m.type = MSG_RECREATED;
	m.ret = mix_index_open(e, d, MIX_OPEN_RECREATE, idx);
	m.modseq = m.ret == 0 ? idx_hms(*idx) : 0;
	send_msg(fd, &m);
	if (m.ret < 0)
		_exit(25);
	memset(&t, 0, sizeof(t));
	t.nops = 1;
	t.durability = MIX_DURABILITY_SYNC;
	t.ops[0].type = OP_UIDV;
	t.ops[0].uid = 0x40000000u + tu_rand_below(r, 0x3fffffff);
	child_commit(*idx, fd, r, &t);
}

/* --child DIR FD SEED ROTATE XHMAX: commit until killed. */
static int child_main(char **argv)
{
	struct mix_engine_config c;
	struct mix_engine *e;
	struct mix_index *idx;
	uint64_t r = strtoull(argv[4], NULL, 0);
	int fd = atoi(argv[3]);
	struct msg m;

	mix_engine_config_init(&c);
	c.log_rotate_size = strtoull(argv[5], NULL, 0);
	c.expunge_history_max = (uint32_t)strtoul(argv[6], NULL, 0);
	if (mix_engine_create(&c, &e) < 0)
		_exit(22);
	memset(&m, 0, sizeof(m));
	m.type = MSG_OPEN;
	m.ret = mix_index_open(e, argv[2], 0, &idx);
	send_msg(fd, &m);
	if (m.ret < 0)
		_exit(23);
	for (int i = 0; i < 400; i++) {
		unsigned w = tu_rand_below(&r, 100);
		if (w < 3)
			child_reopen(e, argv[2], &idx, fd);
		else if (w < 5)
			child_recreate(e, argv[2], &idx, fd, &r);
		else if (w < 8)
			child_register(idx, fd, &r);
		else
			child_commit(idx, fd, &r, NULL);
	}
	for (;;)
		pause();
}

/* The child re-created the index: a new incarnation, empty, UIDVALIDITY
 * 0 until its first transaction, modseqs from hms on. */
static void m_recreated(uint64_t hms, const char *how)
{
	m_reset();
	M.exists = 1;
	M.hms = M.xfloor = hms;
	check(C_RECREATE, hms >= max_seen, "%s: the new index's HIGHESTMODSEQ "
	      "%#llx is below a modseq issued before %#llx", how,
	      (unsigned long long)hms, (unsigned long long)max_seen);
	if (hms > max_seen)
		max_seen = hms;
}

static int read_msg(int fd, struct msg *m)
{
	size_t got = 0;
	while (got < sizeof(*m)) {
		ssize_t n = read(fd, (char *)m + got, sizeof(*m) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;   /* EOF; a partial message was never sent */
		got += (size_t)n;
	}
	return 1;
}

/* One message from the child, applied to the model.  *pending: the
 * transaction or registration announced and not yet acknowledged. */
static void child_apply(const struct msg *m, struct msg *pending,
			int *have_pending)
{
	char desc[160], who[64];
	switch (m->type) {
	case MSG_OPEN:
		opf("child: open writable: %d", m->ret);
		check(C_CHILD, m->ret == 0, "the child's writable open: %s: %s",
		      mix_strerror(m->ret), m->err);
		break;
	case MSG_CLOSE:
		opf("child: idle close: %d", m->ret);
		check(C_CLOSE, m->ret == 0, "the child's close: %s: %s",
		      mix_strerror(m->ret), m->err);
		break;
	case MSG_TXN:
	case MSG_REG:
	case MSG_RECREATE:
		*pending = *m;
		*have_pending = 1;
		break;
	case MSG_RECREATED:
		*have_pending = 0;
		opf("child: close, open RECREATE: %d hms %#llx", m->ret,
		    (unsigned long long)m->modseq);
		check(C_CHILD, m->ret == 0, "the child's RECREATE: %s: %s",
		      mix_strerror(m->ret), m->err);
		if (m->ret == 0)
			m_recreated(m->modseq, "the child's RECREATE");
		break;
	case MSG_ACK:
		*have_pending = 0;
		txn_describe(&m->t, desc, sizeof(desc));
		opf("child: commit %s -> %d modseq %#llx uids %u..%u%s", desc,
		    m->ret, (unsigned long long)m->modseq, m->first_uid,
		    m->last_uid, m->no_changes ? " no_changes" : "");
		if (m->ret < 0) {
			fail(C_CHILD, "the child's commit %s: %s: %s", desc,
			     mix_strerror(m->ret), m->err);
			break;
		}
		snprintf(who, sizeof(who), "child's commit");
		{
			struct mix_commit_result res = { 0 };
			res.modseq = m->modseq;
			res.first_uid = m->first_uid;
			res.last_uid = m->last_uid;
			res.no_changes = m->no_changes;
			m_commit(&m->t, &res, who);
		}
		break;
	case MSG_REGACK:
		*have_pending = 0;
		opf("child: register %s -> %d", ext_name[m->arg & 1], m->ret);
		check(C_CHILD, m->ret == 0, "the child's registration of %s: "
		      "%s: %s", ext_name[m->arg & 1], mix_strerror(m->ret),
		      m->err);
		if (m->ret == 0)
			M.ext[m->arg & 1] = 1;
		if (m->ret == 0 && m->modseq != M.hms) {
			check(C_MODSEQ, m->modseq > M.hms, "the child's "
			      "registration: HIGHESTMODSEQ %#llx went back "
			      "from %#llx", (unsigned long long)m->modseq,
			      (unsigned long long)M.hms);
			modseq_issued(m->modseq, "child's registration");
			M.hms = m->modseq;
		}
		break;
	}
}

/* The crashed child's last transaction or registration, announced but
 * not acknowledged: decide from the engine's state whether it landed. */
static void resolve_pending(struct mix_index *idx, const struct msg *p)
{
	const struct mix_snap *s;
	uint64_t hms;
	uint32_t id;
	int landed;
	char desc[160];

	mix_read_lock();
	s = mix_index_snap(idx);
	hms = mix_snap_highest_modseq(s);
	if (p->type == MSG_RECREATE) {
		/* the new incarnation is empty, without UIDVALIDITY and
		 * above every modseq of the old one */
		landed = mix_snap_messages_count(s) == 0 &&
			 mix_snap_uid_validity(s) == 0 && hms > M.hms;
		mix_read_unlock();
		opf("child's RECREATE in flight at the kill: %s",
		    landed ? "done" : "not done");
		if (landed)
			m_recreated(hms, "in-flight RECREATE");
		return;
	}
	if (p->type == MSG_REG) {
		landed = mix_snap_ext_lookup(s, ext_name[p->arg & 1], &id);
		mix_read_unlock();
		opf("child's registration of %s in flight at the kill: %s",
		    ext_name[p->arg & 1], landed ? "landed" : "lost");
		if (landed)
			M.ext[p->arg & 1] = 1;
		if (hms > M.hms) {
			modseq_issued(hms, "in-flight registration");
			M.hms = hms;
		}
		return;
	}
	mix_read_unlock();
	txn_describe(&p->t, desc, sizeof(desc));
	landed = hms > M.hms;
	opf("child's commit in flight at the kill: %s: %s", desc,
	    landed ? "landed" : "lost or no changes");
	if (landed) {
		uint32_t f, l;
		m_apply(&p->t, &f, &l);
		modseq_issued(hms, "in-flight commit");
		m_stamp(hms);
	}
}

static char *self_exe;

/* Follower i refreshed while the child commits: it shows at least every
 * commit the child acknowledged (written to the log before the
 * acknowledgement), and when it shows exactly those, it equals the
 * model.  More means the child's next commit landed already. */
static void follow_child(int i)
{
	uint64_t h;
	if (ro_follow(i, " while the child commits") < 0)
		return;
	h = idx_hms(RO[i]);
	check(C_RO, h >= M.hms, "read-only #%d while the child commits: "
	      "HIGHESTMODSEQ %#llx misses the child's acknowledged commit "
	      "%#llx", i, (unsigned long long)h, (unsigned long long)M.hms);
	if (h == M.hms)
		cmp_index(RO[i], C_RO, "read-only while the child commits");
}

/* Run the child, apply what it reports to the model, kill it after a
 * random number of reports.  Returns 1 with *pending set when a
 * transaction or registration was in flight. */
static int crash_child(struct msg *pending)
{
	int fds[2], st, have_pending = 0, got = 0;
	unsigned kill_after = tu_rand_below(&rng, 60);
	unsigned delay = tu_rand_below(&rng, 3) ? tu_rand_below(&rng, 3000) : 0;
	char a_fd[16], a_seed[32], a_rot[32], a_xh[16];
	struct msg m;
	pid_t pid;

	if (pipe(fds) < 0)
		BAIL("pipe");
	snprintf(a_fd, sizeof(a_fd), "%d", fds[1]);
	snprintf(a_seed, sizeof(a_seed), "%llu", (unsigned long long)tu_rand(&rng));
	snprintf(a_rot, sizeof(a_rot), "%llu",
		 (unsigned long long)cfg.log_rotate_size);
	snprintf(a_xh, sizeof(a_xh), "%u", cfg.expunge_history_max);
	opf("crash: child (seed %s) killed after %u reports + %u us", a_seed,
	    kill_after, delay);
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		close(fds[0]);
		execl(self_exe, self_exe, "--child", dir, a_fd, a_seed, a_rot,
		      a_xh, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((unsigned)got < kill_after && read_msg(fds[0], &m)) {
		int i = (int)tu_rand_below(&rng, 3 * RO_MAX);
		child_apply(&m, pending, &have_pending);
		got++;
		/* followers follow the live writer of another process */
		if (i < RO_MAX && RO[i])
			follow_child(i);
	}
	if (delay)
		usleep(delay);
	kill(pid, SIGKILL);
	while (read_msg(fds[0], &m))
		child_apply(&m, pending, &have_pending);
	close(fds[0]);
	waitpid(pid, &st, 0);
	check(C_CHILD, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child "
	      "ended with status %#x before it was killed", st);
	return have_pending;
}

/* kill -9 of a committing writer, then: mixctl, a fresh read-only open,
 * the open read-only handles refreshed, a writable open (recovery), each
 * compared with the model. */
static void st_crash(void)
{
	struct msg pending;
	struct mix_index *tmp = NULL;
	int have_pending, ret;

	if (W)
		close_w();
	have_pending = crash_child(&pending);
	run_mixctl(dir, "after kill -9", 0);

	/* a fresh read-only open sees the crashed writer's state */
	ret = mix_index_open(engine, dir, MIX_OPEN_READONLY, &tmp);
	opf("read-only open after the crash: %d", ret);
	if (ret == 0) {
		if (have_pending)
			resolve_pending(tmp, &pending);
		have_pending = 0;
		cmp_index(tmp, C_STATE, "read-only open after kill -9");
		mix_index_close(&tmp);
	} else {
		fail(C_OPEN, "read-only open after kill -9: %s: %s",
		     mix_strerror(ret), mix_last_error());
	}
	for (int i = 0; i < RO_MAX; i++) {
		if (!RO[i])
			continue;
		ret = ro_follow(i, " after the crash");
		if (ret >= 0) {
			char who[64];
			snprintf(who, sizeof(who), "read-only #%d refreshed "
				 "after kill -9", i);
			cmp_index(RO[i], C_RO, who);
		}
	}
	open_w_pending(0, "recovery after kill -9",
		       have_pending ? &pending : NULL);
}

/* ---- fixed scenarios: the lifecycles that broke mailboxes -------------- */

/* Each builds its own index with its own engine and says in one TAP line
 * whether the lifecycle ended in an index that opens with every commit. */

struct scen {
	struct mix_engine *e;
	char *dir;
	char why[4096];
};

static void sc_start(struct scen *sc, uint32_t xmax)
{
	struct mix_engine_config c;
	int ret;
	mix_engine_config_init(&c);
	c.expunge_history_max = xmax;
	c.log_rotate_size = 4096;
	c.warning = on_warning;
	if ((ret = mix_engine_create(&c, &sc->e)) < 0)
		BAIL("mix_engine_create: %s", mix_strerror(ret));
	sc->dir = tu_tmpdir("lifecycle-sc");
	sc->why[0] = '\0';
}

static int sc_end(struct scen *sc, int good, const char *name)
{
	ok(good && !sc->why[0], "scenario: %s", name);
	if (sc->why[0])
		print_lines("#   ", sc->why);
	mix_engine_free(&sc->e);
	tu_rmdir_r(sc->dir);
	free(sc->dir);
	return good;
}

static void sc_failf(struct scen *sc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sc_failf(struct scen *sc, const char *fmt, ...)
{
	va_list ap;
	if (sc->why[0])
		return;   /* the first reason is the one that counts */
	va_start(ap, fmt);
	vsnprintf(sc->why, sizeof(sc->why), fmt, ap);
	va_end(ap);
}

static struct mix_index *sc_open(struct scen *sc, unsigned flags, const char *what)
{
	struct mix_index *idx = NULL;
	int ret;
	warnbuf[0] = '\0';
	ret = mix_index_open(sc->e, sc->dir, flags, &idx);
	if (ret < 0) {
		sc_failf(sc, "%s: open failed: %s: %s", what, mix_strerror(ret),
			 mix_last_error());
		return NULL;
	}
	return idx;
}

/* Commit n appends, or an expunge of each range in its own call. */
static uint64_t sc_commit(struct scen *sc, struct mix_index *idx, uint32_t n,
			  const struct mix_uid_range *xr, uint32_t nx)
{
	struct mix_txn *t;
	struct mix_commit_result res = { 0 };
	int ret;
	if (!idx || mix_txn_begin(idx, &t) < 0)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		mix_txn_append(t, 0, NULL, NULL);
	for (uint32_t i = 0; i < nx; i++)
		mix_txn_expunge(t, &xr[i], 1);
	if ((ret = mix_txn_commit(&t, MIX_DURABILITY_SYNC, &res)) < 0)
		sc_failf(sc, "commit: %s", mix_strerror(ret));
	return res.modseq;
}

static void sc_close(struct scen *sc, struct mix_index **idx, const char *what)
{
	int ret;
	if (!*idx)
		return;
	if ((ret = mix_index_close(idx)) < 0)
		sc_failf(sc, "%s: close: %s", what, mix_strerror(ret));
	*idx = NULL;
}

/* next_uid and HIGHESTMODSEQ may be above the expected ones only when
 * uid_skip_ok. */
static void sc_expect(struct scen *sc, struct mix_index *idx, const char *what,
		      uint32_t count, uint32_t next_uid, uint64_t hms)
{
	const struct mix_snap *s;
	uint32_t nu;
	uint64_t h;
	if (!idx)
		return;
	mix_read_lock();
	s = mix_index_snap(idx);
	nu = mix_snap_next_uid(s);
	h = mix_snap_highest_modseq(s);
	if (mix_snap_messages_count(s) != count ||
	    (uid_skip_ok ? nu < next_uid : nu != next_uid) ||
	    (uid_skip_ok ? h < hms : h != hms))
		sc_failf(sc, "%s: %u messages, next_uid %u, HIGHESTMODSEQ %#llx; "
			 "expected %u, %u, %#llx", what,
			 mix_snap_messages_count(s), mix_snap_next_uid(s),
			 (unsigned long long)mix_snap_highest_modseq(s), count,
			 next_uid, (unsigned long long)hms);
	mix_read_unlock();
}

/* Open for writing and close without a commit, again and again. */
static void sc_idle_closes(void)
{
	struct scen sc;
	struct mix_index *w;
	uint64_t hms;
	sc_start(&sc, 0);
	w = sc_open(&sc, MIX_OPEN_CREATE, "create");
	hms = sc_commit(&sc, w, 3, NULL, 0);
	sc_close(&sc, &w, "create");
	for (int i = 1; i <= 6 && !sc.why[0]; i++) {
		char what[32];
		snprintf(what, sizeof(what), "idle open %d", i);
		w = sc_open(&sc, 0, what);
		sc_expect(&sc, w, what, 3, 4, hms);
		sc_close(&sc, &w, what);
	}
	sc_end(&sc, 1, "six idle writable sessions, then the index still opens "
	       "with its commits");
}

/* Several expunge calls on separate ranges in one transaction while the
 * expunge history keeps one range. */
static void sc_multi_expunge(void)
{
	static const struct mix_uid_range xr[3] = { { 2, 2 }, { 5, 6 }, { 9, 9 } };
	struct scen sc;
	struct mix_index *w;
	uint64_t hms;
	sc_start(&sc, 1);
	w = sc_open(&sc, MIX_OPEN_CREATE, "create");
	sc_commit(&sc, w, 10, NULL, 0);
	hms = sc_commit(&sc, w, 0, xr, 3);
	sc_close(&sc, &w, "after the expunge");
	for (int i = 1; i <= 3 && !sc.why[0]; i++) {
		w = sc_open(&sc, 0, "reopen");
		if (w && warnbuf[0])
			sc_failf(&sc, "reopen %d warned: %s", i, warnbuf);
		sc_expect(&sc, w, "reopen", 6, 11, hms);
		sc_close(&sc, &w, "reopen");
	}
	sc_end(&sc, 1, "three expunge calls in one transaction with "
	       "expunge_history_max 1: reopens clean, without a warning");
}

/* Both logs lost after a clean close: mix.index holds everything. */
static void sc_logs_lost(void)
{
	struct scen sc;
	struct mix_index *w;
	char p[4096];
	uint64_t hms, m2, h1 = 0;
	uint32_t nu1 = 0;
	sc_start(&sc, 0);
	w = sc_open(&sc, MIX_OPEN_CREATE, "create");
	sc_commit(&sc, w, 2, NULL, 0);
	hms = sc_commit(&sc, w, 2, NULL, 0);
	sc_close(&sc, &w, "create");
	snprintf(p, sizeof(p), "%s/mix.index.log", sc.dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/mix.index.log.2", sc.dir);
	unlink(p);
	w = sc_open(&sc, 0, "open without logs");
	uid_skip_ok = warnbuf[0] != '\0';
	sc_expect(&sc, w, "open without logs", 4, 5, hms);
	uid_skip_ok = 0;
	if (w) {
		mix_read_lock();
		nu1 = mix_snap_next_uid(mix_index_snap(w));
		h1 = mix_snap_highest_modseq(mix_index_snap(w));
		mix_read_unlock();
	}
	m2 = sc_commit(&sc, w, 1, NULL, 0);
	if (w && (m2 <= hms || m2 <= h1))
		sc_failf(&sc, "a commit after losing the logs got modseq %#llx, "
			 "not above %#llx and %#llx", (unsigned long long)m2,
			 (unsigned long long)hms, (unsigned long long)h1);
	sc_close(&sc, &w, "open without logs");
	w = sc_open(&sc, 0, "reopen");
	sc_expect(&sc, w, "reopen", 5, nu1 + 1, m2);
	sc_close(&sc, &w, "reopen");
	sc_end(&sc, 1, "both logs lost after a clean close: opens with every "
	       "commit, modseqs go on above");
}

/* A follower opened on an index with two log files sees a RECREATE. */
static void sc_follower_recreate(void)
{
	struct scen sc;
	struct mix_index *w, *ro;
	uint64_t hms;
	int ret;
	sc_start(&sc, 0);
	w = sc_open(&sc, MIX_OPEN_CREATE, "create");
	sc_commit(&sc, w, 1, NULL, 0);
	sc_close(&sc, &w, "create");
	w = sc_open(&sc, 0, "reopen");
	sc_commit(&sc, w, 1, NULL, 0);
	sc_close(&sc, &w, "reopen");
	ro = sc_open(&sc, MIX_OPEN_READONLY, "read-only");
	w = sc_open(&sc, MIX_OPEN_RECREATE, "recreate");
	hms = sc_commit(&sc, w, 3, NULL, 0);
	if (ro && w) {
		ret = mix_index_refresh(ro);
		if (ret != 1)
			sc_failf(&sc, "refresh after RECREATE returned %d, "
				 "expected 1 (a new snapshot)", ret);
		sc_expect(&sc, ro, "follower after RECREATE", 3, 4, hms);
	}
	sc_close(&sc, &w, "recreate");
	sc_close(&sc, &ro, "read-only");
	sc_end(&sc, 1, "a read-only follower opened after a reopen follows a "
	       "RECREATE");
}

/* A follower after both logs were lost and mix.index moved on. */
static void sc_follower_logs_lost(void)
{
	struct scen sc;
	struct mix_index *w, *ro;
	char p[4096];
	uint64_t hms;
	int ret;
	sc_start(&sc, 0);
	w = sc_open(&sc, MIX_OPEN_CREATE, "create");
	sc_commit(&sc, w, 1, NULL, 0);
	ro = sc_open(&sc, MIX_OPEN_READONLY, "read-only");
	hms = sc_commit(&sc, w, 2, NULL, 0);
	sc_close(&sc, &w, "create");
	snprintf(p, sizeof(p), "%s/mix.index.log", sc.dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/mix.index.log.2", sc.dir);
	unlink(p);
	w = sc_open(&sc, 0, "open without logs");
	sc_close(&sc, &w, "open without logs");
	w = sc_open(&sc, 0, "reopen");
	if (ro && w) {
		ret = mix_index_refresh(ro);
		if (ret != 1)
			sc_failf(&sc, "refresh returned %d, expected 1 (a new "
				 "snapshot from mix.index)", ret);
		uid_skip_ok = 1;   /* the writer's open may have skipped */
		sc_expect(&sc, ro, "follower after the logs were lost", 3, 4, hms);
		uid_skip_ok = 0;
	}
	sc_close(&sc, &w, "reopen");
	sc_close(&sc, &ro, "read-only");
	sc_end(&sc, 1, "a read-only follower catches up after both logs were "
	       "lost");
}

/* mix.index.log and mix.index.log.2 swapped after a rotation (an
 * operator's or a backup tool's mistake): the open must refuse with an
 * error, or open with every commit and issue modseqs above them; never
 * open with a silently different state. */
static void sc_logs_swapped(void)
{
	struct scen sc;
	struct mix_index *w;
	char a[4096], b[4096], t[4096];
	uint64_t hms, m2;
	int ret;
	sc_start(&sc, 0);
	w = sc_open(&sc, MIX_OPEN_CREATE, "create");
	sc_commit(&sc, w, 1, NULL, 0);
	sc_close(&sc, &w, "create");
	w = sc_open(&sc, 0, "reopen");
	sc_commit(&sc, w, 1, NULL, 0);
	hms = sc_commit(&sc, w, 1, NULL, 0);
	sc_close(&sc, &w, "reopen");
	snprintf(a, sizeof(a), "%s/mix.index.log", sc.dir);
	snprintf(b, sizeof(b), "%s/mix.index.log.2", sc.dir);
	snprintf(t, sizeof(t), "%s/mix.index.log.swap", sc.dir);
	if (rename(a, t) < 0 || rename(b, a) < 0 || rename(t, b) < 0)
		sc_failf(&sc, "could not swap the logs: %s", strerror(errno));
	ret = mix_index_open(sc.e, sc.dir, 0, &w);
	if (ret == 0) {
		sc_expect(&sc, w, "open with swapped logs", 3, 4, hms);
		m2 = sc_commit(&sc, w, 1, NULL, 0);
		if (m2 <= hms)
			sc_failf(&sc, "a commit after the swap got modseq %#llx, "
				 "not above %#llx", (unsigned long long)m2,
				 (unsigned long long)hms);
		sc_close(&sc, &w, "open with swapped logs");
	} else if (!strstr(mix_last_error(), "mix.index.log")) {
		sc_failf(&sc, "refused (%s) without naming the logs: %s",
			 mix_strerror(ret), mix_last_error());
	}
	sc_end(&sc, 1, "swapped logs: refused naming them, or opened with "
	       "every commit");
}

/* A follower refreshed after an open that skipped UIDs (both logs lost,
 * format.md §2.7) shows the skipped next_uid, as the writer does. */
static void sc_follower_uid_skip(void)
{
	struct scen sc;
	struct mix_index *w, *ro;
	char p[4096];
	uint32_t want = 0;
	int ret;
	sc_start(&sc, 0);
	w = sc_open(&sc, MIX_OPEN_CREATE, "create");
	sc_commit(&sc, w, 1, NULL, 0);
	sc_close(&sc, &w, "create");
	ro = sc_open(&sc, MIX_OPEN_READONLY, "read-only");
	snprintf(p, sizeof(p), "%s/mix.index.log", sc.dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/mix.index.log.2", sc.dir);
	unlink(p);
	w = sc_open(&sc, 0, "open without logs");
	if (w) {
		mix_read_lock();
		want = mix_snap_next_uid(mix_index_snap(w));
		mix_read_unlock();
	}
	sc_close(&sc, &w, "open without logs");
	if (ro && want) {
		uint32_t got;
		ret = mix_index_refresh(ro);
		mix_read_lock();
		got = mix_snap_next_uid(mix_index_snap(ro));
		mix_read_unlock();
		if (ret < 0 || got != want)
			sc_failf(&sc, "follower refresh %d: next_uid %u, the "
				 "writer's %u", ret, got, want);
	}
	sc_close(&sc, &ro, "read-only");
	sc_end(&sc, 1, "a follower shows the next_uid an open without logs "
	       "skipped to");
}

/* The state a RECREATE leaves when it is interrupted after its new
 * mix.index, before it removed the old logs (a crash there): the old
 * logs put back in place of the new ones.  *ro_r: a follower opened on
 * the old incarnation (when ro_r); returns the new HIGHESTMODSEQ.  With
 * same_inode the new mix.index gets the inode number of the one the
 * follower read (file systems reuse freed inode numbers at once; a hard
 * link keeps it allocated here). */
static uint64_t sc_recreate_torn(struct scen *sc, struct mix_index **ro_r,
				 int same_inode)
{
	struct mix_index *w;
	char p1[4096], p2[4096], ix[4096], keep[4096];
	uint8_t *l1, *l2, *nb;
	size_t s1 = 0, s2 = 0, ns = 0;
	uint64_t hms = 0;
	w = sc_open(sc, MIX_OPEN_CREATE, "create");
	sc_commit(sc, w, 2, NULL, 0);
	sc_close(sc, &w, "create");
	w = sc_open(sc, 0, "reopen");
	sc_commit(sc, w, 1, NULL, 0);
	sc_close(sc, &w, "reopen");
	snprintf(p1, sizeof(p1), "%s/mix.index.log", sc->dir);
	snprintf(p2, sizeof(p2), "%s/mix.index.log.2", sc->dir);
	l1 = tu_read_file(p1, &s1);
	l2 = tu_read_file(p2, &s2);
	if (ro_r)
		*ro_r = sc_open(sc, MIX_OPEN_READONLY, "read-only");
	snprintf(ix, sizeof(ix), "%s/mix.index", sc->dir);
	snprintf(keep, sizeof(keep), "%s/mix.index.keep", sc->dir);
	if (same_inode && link(ix, keep) < 0)
		sc_failf(sc, "link: %s", strerror(errno));
	w = sc_open(sc, MIX_OPEN_RECREATE, "recreate");
	if (w) {
		hms = idx_hms(w);
		sc_close(sc, &w, "recreate");
	}
	if (same_inode) {
		nb = tu_read_file(ix, &ns);
		if (!nb || tu_write_file(keep, nb, ns) < 0 ||
		    rename(keep, ix) < 0)
			sc_failf(sc, "could not move the new mix.index into the "
				 "old inode");
		free(nb);
	}
	unlink(p1);
	unlink(p2);
	if ((l1 && tu_write_file(p1, l1, s1) < 0) ||
	    (l2 && tu_write_file(p2, l2, s2) < 0))
		sc_failf(sc, "could not put the old logs back");
	free(l1);
	free(l2);
	return hms;
}

/* A follower of the old incarnation moves to the new one, as a fresh
 * open does. */
static void sc_follower_recreate_torn(int same_inode)
{
	struct scen sc;
	struct mix_index *ro = NULL;
	uint64_t hms;
	int ret;
	sc_start(&sc, 0);
	hms = sc_recreate_torn(&sc, &ro, same_inode);
	if (ro && hms) {
		ret = mix_index_refresh(ro);
		if (ret < 0)
			sc_failf(&sc, "refresh: %s: %s", mix_strerror(ret),
				 mix_last_error());
		sc_expect(&sc, ro, "follower after the interrupted RECREATE",
			  0, 1, hms);
	}
	sc_close(&sc, &ro, "read-only");
	sc_end(&sc, 1, same_inode ? "a follower moves to the new incarnation "
	       "when a RECREATE left the old logs and its mix.index has the "
	       "old one's inode number" : "a follower moves to the new "
	       "incarnation when a RECREATE left the old logs behind");
}

/* mixctl agrees with the library, which opens that state (the old logs
 * are the interrupted RECREATE's leftovers): warnings at most. */
static void sc_mixctl_recreate_torn(void)
{
	static char out[16384];
	struct scen sc;
	int status;
	sc_start(&sc, 0);
	if (sc_recreate_torn(&sc, NULL, 0) &&
	    (status = mixctl_check(sc.dir, out, sizeof(out))) != 0)
		sc_failf(&sc, "mixctl check: exit %d, expected 0 (leftovers "
			 "of an interrupted RECREATE are warnings); it "
			 "said:\n%s", status, out);
	sc_end(&sc, 1, "mixctl check calls a RECREATE that left the old "
	       "logs behind clean (warnings allowed)");
}

#define N_SCENARIOS 10

static void run_scenarios(void)
{
	sc_idle_closes();
	sc_multi_expunge();
	sc_logs_lost();
	sc_follower_recreate();
	sc_follower_logs_lost();
	sc_logs_swapped();
	sc_follower_uid_skip();
	sc_follower_recreate_torn(0);
	sc_mixctl_recreate_torn();
	sc_follower_recreate_torn(1);
}

/* ---- the run ----------------------------------------------------------- */

static void one_step(void)
{
	unsigned w = tu_rand_below(&rng, 1000);
	int ro_open = 0;
	for (int i = 0; i < RO_MAX; i++)
		ro_open += RO[i] != NULL;

	if (!M.exists) {
		open_w(MIX_OPEN_CREATE, "create");
		return;
	}
	if (!W && w < 700) {
		open_w(0, "reopen");
		return;
	}
	if (w < 550 && W)
		st_commit();
	else if (w < 600 && W)
		st_register();
	else if (w < 640)
		st_open_ro();
	else if (w < 700 && ro_open)
		st_refresh_ro();
	else if (w < 720 && ro_open) {
		int i = (int)tu_rand_below(&rng, RO_MAX);
		while (!RO[i])
			i = (i + 1) % RO_MAX;
		close_ro(i);
	}
	else if (w < 740 && W)
		st_second_writer();
	else if (w < 800 && W)
		close_w();
	else if (w < 850)
		st_idle_cycles();
	else if (w < 900)
		st_crash();
	else if (w < 920)
		st_recreate();
	else if (w < 950)
		engine_restart();
	else if (w < 960)
		st_lose_logs();
	else if (W)
		cmp_index(W, C_LIVE, "periodic comparison");
}

int main(int argc, char **argv)
{
	const char *s = getenv("MIX_LIFECYCLE_SEED");
	const char *n = getenv("MIX_LIFECYCLE_STEPS");
	const char *b = getenv("MIX_BUILD");
	uint64_t seed;

	if (argc == 7 && strcmp(argv[1], "--child") == 0)
		return child_main(argv);
	if (s && *s) {
		seed = strtoull(s, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
	}
	nsteps = n && *n ? strtol(n, NULL, 0) : DEFAULT_STEPS;
	if (getenv("MIX_LIFECYCLE_MIXCTL") && atoi(getenv("MIX_LIFECYCLE_MIXCTL")) > 0)
		mixctl_every = (unsigned)atoi(getenv("MIX_LIFECYCLE_MIXCTL"));
	stop_at_fail = getenv("MIX_LIFECYCLE_STOP") &&
		       atoi(getenv("MIX_LIFECYCLE_STOP")) > 0;
	if (getenv("MIX_LIFECYCLE_LOG") &&
	    !(oplog_file = fopen(getenv("MIX_LIFECYCLE_LOG"), "w")))
		BAIL("cannot write %s", getenv("MIX_LIFECYCLE_LOG"));
	printf("# seed: MIX_LIFECYCLE_SEED=%llu MIX_LIFECYCLE_STEPS=%ld\n",
	       (unsigned long long)seed, nsteps);
	rng = seed ? seed : 1;
	mixctl_rng = rng ^ 0x6d6978636c746cull;
	if (asprintf(&mixctl, "%s/mixctl", b && *b ? b : "build") < 0)
		BAIL("asprintf");
	if (access(mixctl, X_OK) != 0)
		BAIL("%s is not built (MIX_BUILD names the build directory)",
		     mixctl);
	self_exe = realpath("/proc/self/exe", NULL);
	if (!self_exe)
		BAIL("realpath /proc/self/exe");
	tap_plan(N_SCENARIOS + C_COUNT);
	run_scenarios();
	dir = tu_tmpdir("lifecycle");
	m_reset();
	engine_start();

	for (step = 1; step <= nsteps; step++)
		one_step();
	step = nsteps + 1;
	opf("end: close everything");
	if (W)
		close_w();
	for (int i = 0; i < RO_MAX; i++)
		if (RO[i])
			close_ro(i);
	if (open_w(0, "final reopen") == 0)
		close_w();
	mix_engine_free(&engine);

	for (int c = 0; c < C_COUNT; c++)
		is(cat_fail[c], 0, "%s (%ld checks, %ld failed)", cat_name[c],
		   cat_runs[c], cat_fail[c]);
	if (total_fail)
		diag("replay: MIX_LIFECYCLE_SEED=%llu MIX_LIFECYCLE_STEPS=%ld",
		     (unsigned long long)seed, nsteps);
	tu_rmdir_r(dir);
	free(dir);
	free(mixctl);
	free(self_exe);
	if (oplog_file)
		fclose(oplog_file);
	return tap_done();
}
