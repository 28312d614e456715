/*
 * crashtest — kill -9 torture of durable commits (shared/DESIGN.md
 * invariant 5; docs/format.md §3.4-§3.5; docs/reliability.md).
 *
 * Three kinds of process, so that no process that forks has threads
 * (liburcu and the writer threads are not fork-safe):
 *
 * - The supervisor (main) never calls into mix.  It keeps the model: the
 *   state that every acknowledged commit so far has produced.  Per cycle
 *   it forks a writer, reads the writer's reports from a pipe, SIGKILLs
 *   it at a random moment, then forks a verifier and reads its reports.
 * - The writer opens the index (log_rotate_size tiny, so checkpoints and
 *   rotations happen every few commits) and commits random transactions
 *   with MIX_DURABILITY_SYNC, one at a time.  Before each commit it sends
 *   an INTENT (the operations; it is the only writer, so their effect is
 *   fully determined), after it an ACK (modseq, UIDs).  Messages are
 *   shorter than PIPE_BUF, so a kill never leaves half of one in the pipe.
 * - The verifier, forked after the kill (it inherits the model), opens
 *   the index — recovery runs here — and compares every record with the
 *   model: UIDs, flags, keywords, extension data, modseqs, counts,
 *   next_uid.  The one commit that may have been in flight (INTENT without
 *   ACK) is either entirely present or entirely absent; anything else is
 *   a loss or a half-applied transaction.  Then it commits a probe
 *   transaction (a new writer can continue) and reports it like a writer.
 *
 * SIGKILL never tears a write (the kernel finishes the pwrite), so in
 * --tear-percent of the cycles where a commit was in flight the supervisor
 * also simulates a power loss of what was not yet acknowledged: it cuts
 * or zeroes the active log at a random byte after the end of the last
 * acknowledged transaction (never below what mix.index already covers,
 * which was synced).  Recovery must then drop exactly the torn tail.
 *
 * Every transaction appends 1..3 messages whose extension record encodes
 * (transaction number, position, count) and a pattern, so a transaction
 * that is present in part is visible, plus random flag / keyword changes
 * and expunges on existing messages.  Every acknowledged modseq must be
 * above the previous one, across kills, rotations and reopens.
 *
 * Usage: crashtest [--cycles N] [--seed S] [--dir D] [--keep]
 *                  [--rotate BYTES] [--max-delay-ms MS] [--tear-percent P]
 *                  [--mixctl PATH]
 * Defaults: 1000 cycles, rotate 4096 (the minimum), 150 ms, 30 %.
 * With --mixctl, `mixctl check DIR` runs on every crashed directory
 * before recovery and must find no corruption.  Exit 0 only when every
 * cycle verified; the first failure prints observed vs expected.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mix/mix.h"

#define EXT_NAME "crashtest"
#define EXT_SIZE 128u           /* makes transactions big: rotations */
#define MAX_APPENDS 3u
#define MAX_OPS 4u
#define KW_POOL 6u
#define FLAG_POOL (MIX_FLAG_ANSWERED | MIX_FLAG_FLAGGED | MIX_FLAG_DELETED | \
		   MIX_FLAG_SEEN | MIX_FLAG_DRAFT)
#define TARGET_MESSAGES 600u    /* expunges keep the mailbox near this */

static const char *const kw_names[KW_POOL] = {
	"$Label1", "$Junk", "todo", "work", "later", "$Forwarded",
};

/* ---- the report protocol ------------------------------------------------ */

enum op_type { OP_FLAGS = 1, OP_KW, OP_EXPUNGE };

struct op {
	uint8_t type;           /* enum op_type */
	uint8_t modify;         /* enum mix_modify (FLAGS, KW) */
	uint8_t mask;           /* flags, or keyword pool bits */
	uint8_t pad;
	uint32_t first, last;
};

/* One transaction, exactly as committed. */
struct intent {
	uint32_t txn_no;
	uint32_t nappend;
	uint8_t aflags[MAX_APPENDS];
	uint8_t akw[MAX_APPENDS];   /* keyword pool bits of each append */
	uint32_t nops;
	struct op ops[MAX_OPS];
};

enum msg_kind {
	MSG_INTENT = 1,   /* about to commit in */
	MSG_ACK,          /* in committed: modseq, first/last UID */
	MSG_RESOLVE,      /* verifier: the pending intent was present? */
	MSG_READY,        /* writer opened the index */
	MSG_FAIL,         /* a child failed; text follows in the message */
};

struct msg {
	uint32_t kind;
	uint32_t present;           /* RESOLVE */
	uint64_t modseq;            /* ACK; RESOLVE: of the pending one */
	uint32_t first_uid, last_uid;
	uint64_t dropped_bytes;     /* RESOLVE: torn tail cut at open */
	uint64_t replayed;          /* RESOLVE */
	uint32_t rebuilt;           /* RESOLVE */
	struct intent in;           /* INTENT */
	char text[512];             /* FAIL */
};
_Static_assert(sizeof(struct msg) <= PIPE_BUF, "atomic pipe writes");

/* ---- small helpers -------------------------------------------------------- */

/* xorshift64* */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint32_t below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(rnd(s) % n) : 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void send_msg(int fd, const struct msg *m)
{
	/* one write of <= PIPE_BUF bytes: atomic, all or nothing */
	if (write(fd, m, sizeof(*m)) != (ssize_t)sizeof(*m))
		_exit(5);
}

static void send_fail(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void send_fail(int fd, const char *fmt, ...)
{
	struct msg m;
	va_list ap;

	memset(&m, 0, sizeof(m));
	m.kind = MSG_FAIL;
	va_start(ap, fmt);
	vsnprintf(m.text, sizeof(m.text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "crashtest: %s\n", m.text);
	send_msg(fd, &m);
}

/* Byte j of the extension record of append idx of transaction txn. */
static uint8_t ext_byte(uint32_t txn, uint32_t idx, uint32_t j)
{
	return (uint8_t)(txn * 31u + idx * 7u + j * 13u + (txn >> 8));
}

static void ext_fill(uint8_t *d, uint32_t txn, uint32_t idx, uint32_t count)
{
	memcpy(d, &txn, 4);
	memcpy(d + 4, &idx, 4);
	memcpy(d + 8, &count, 4);
	for (uint32_t j = 12; j < EXT_SIZE; j++)
		d[j] = ext_byte(txn, idx, j);
}

/* ---- the model (supervisor memory, inherited by the verifier) ---------- */

struct mrec {
	uint8_t present, flags, kw;
	uint32_t txn_no, idx, count;
	uint64_t modseq;
};

struct model {
	struct mrec *r;         /* indexed by UID */
	uint32_t cap;
	uint32_t next_uid;
	uint32_t count;         /* present records */
	uint64_t last_modseq;   /* of the last acknowledged commit */
	uint64_t acked;         /* acknowledged commits */
	uint32_t txn_next;      /* next transaction number */
	int have_pending;
	struct intent pending;  /* sent, not acknowledged */
};

static void model_grow(struct model *m, uint32_t uid)
{
	if (uid < m->cap)
		return;
	uint32_t ncap = m->cap ? m->cap : 1024;
	while (ncap <= uid)
		ncap *= 2;
	m->r = realloc(m->r, ncap * sizeof(*m->r));
	if (!m->r) {
		perror("crashtest: realloc");
		exit(2);
	}
	memset(m->r + m->cap, 0, (ncap - m->cap) * sizeof(*m->r));
	m->cap = ncap;
}

static uint8_t modify_mask(uint8_t old, uint8_t modify, uint8_t mask)
{
	switch (modify) {
	case MIX_MODIFY_ADD:
		return old | mask;
	case MIX_MODIFY_REMOVE:
		return old & (uint8_t)~mask;
	default:
		return mask;
	}
}

/* Apply in with modseq, with the engine's semantics (docs/api.md "What a
 * commit does"): appends first (they come first in every intent), then
 * the operations in order; only effective changes take the modseq. */
static void model_apply(struct model *m, const struct intent *in,
			uint64_t modseq)
{
	uint32_t k, uid;

	for (k = 0; k < in->nappend; k++) {
		uid = m->next_uid++;
		model_grow(m, uid);
		m->r[uid] = (struct mrec){ 1, in->aflags[k], in->akw[k],
					   in->txn_no, k, in->nappend, modseq };
		m->count++;
	}
	for (k = 0; k < in->nops; k++) {
		const struct op *op = &in->ops[k];
		for (uid = op->first; uid <= op->last && uid < m->next_uid;
		     uid++) {
			struct mrec *r = &m->r[uid];
			uint8_t v;
			if (!r->present)
				continue;
			switch (op->type) {
			case OP_FLAGS:
				v = modify_mask(r->flags, op->modify, op->mask);
				if (v != r->flags) {
					r->flags = v;
					r->modseq = modseq;
				}
				break;
			case OP_KW:
				v = modify_mask(r->kw, op->modify, op->mask);
				if (v != r->kw) {
					r->kw = v;
					r->modseq = modseq;
				}
				break;
			case OP_EXPUNGE:
				r->present = 0;
				m->count--;
				break;
			}
		}
	}
	if (in->txn_no >= m->txn_next)
		m->txn_next = in->txn_no + 1;
}

/* ---- the writer ------------------------------------------------------------ */

static uint32_t snap_random_uid(const struct mix_snap *s, uint64_t *rng)
{
	struct mix_record rec;
	uint32_t n = mix_snap_messages_count(s);
	if (n == 0 || !mix_snap_lookup_seq(s, 1 + below(rng, n), &rec))
		return 1;
	return rec.uid;
}

/* A random transaction against the current state. */
static void make_intent(struct mix_index *idx, uint32_t txn_no, uint64_t *rng,
			struct intent *in)
{
	const struct mix_snap *s;
	uint32_t count, k;

	memset(in, 0, sizeof(*in));
	in->txn_no = txn_no;
	in->nappend = 1 + below(rng, MAX_APPENDS);
	for (k = 0; k < in->nappend; k++) {
		in->aflags[k] = (uint8_t)(rnd(rng) & FLAG_POOL);
		in->akw[k] = below(rng, 3) == 0 ?
			(uint8_t)(rnd(rng) & ((1u << KW_POOL) - 1)) : 0;
	}
	mix_read_lock();
	s = mix_index_snap(idx);
	count = mix_snap_messages_count(s);
	in->nops = count ? below(rng, MAX_OPS) : 0;
	for (k = 0; k < in->nops; k++) {
		struct op *op = &in->ops[k];
		uint32_t r = below(rng, 10);
		op->first = snap_random_uid(s, rng);
		op->last = op->first + below(rng, 8);
		if (r < 2 || (count > TARGET_MESSAGES && r < 6)) {
			op->type = OP_EXPUNGE;
			continue;
		}
		op->type = r < 7 ? OP_FLAGS : OP_KW;
		op->modify = (uint8_t)below(rng, 3);
		op->mask = op->type == OP_FLAGS ?
			(uint8_t)(rnd(rng) & FLAG_POOL) :
			(uint8_t)(rnd(rng) & ((1u << KW_POOL) - 1));
		if (op->mask == 0 && op->modify != MIX_MODIFY_REPLACE)
			op->mask = op->type == OP_FLAGS ? MIX_FLAG_SEEN : 1;
	}
	mix_read_unlock();
}

static int kw_list(uint8_t mask, const char **out)
{
	int n = 0;
	for (unsigned i = 0; i < KW_POOL; i++)
		if (mask & (1u << i))
			out[n++] = kw_names[i];
	out[n] = NULL;
	return n;
}

/* Build and commit in.  Returns the commit's result. */
static int run_intent(struct mix_index *idx, uint32_t ext_id,
		      const struct intent *in, struct mix_commit_result *res)
{
	const char *kws[KW_POOL + 1];
	uint8_t data[EXT_SIZE];
	struct mix_txn *t;
	uint32_t k, num;
	int ret;

	if ((ret = mix_txn_begin(idx, &t)) < 0)
		return ret;
	for (k = 0; k < in->nappend && ret == 0; k++) {
		kw_list(in->akw[k], kws);
		ret = mix_txn_append(t, in->aflags[k], kws, &num);
		ext_fill(data, in->txn_no, k, in->nappend);
		if (ret == 0)
			ret = mix_txn_append_ext(t, num, ext_id, data,
						 sizeof(data));
	}
	for (k = 0; k < in->nops && ret == 0; k++) {
		const struct op *op = &in->ops[k];
		struct mix_uid_range r = { op->first, op->last };
		switch (op->type) {
		case OP_FLAGS:
			ret = mix_txn_flags(t, &r, 1, op->modify, op->mask);
			break;
		case OP_KW:
			kw_list(op->mask, kws);
			ret = mix_txn_keywords(t, &r, 1, op->modify, kws);
			break;
		default:
			ret = mix_txn_expunge(t, &r, 1);
			break;
		}
	}
	if (ret < 0) {
		mix_txn_abort(&t);
		return ret;
	}
	return mix_txn_commit(&t, MIX_DURABILITY_SYNC, res);
}

/* Intent, commit, acknowledgement; exits the process on failure. */
static void commit_reported(int fd, struct mix_index *idx, uint32_t ext_id,
			    const struct intent *in)
{
	struct mix_commit_result res;
	struct msg m;
	int ret;

	memset(&m, 0, sizeof(m));
	m.kind = MSG_INTENT;
	m.in = *in;
	send_msg(fd, &m);
	ret = run_intent(idx, ext_id, in, &res);
	if (ret < 0) {
		send_fail(fd, "commit of transaction %u failed: %s (%s)",
			  in->txn_no, mix_strerror(ret), mix_last_error());
		_exit(3);
	}
	memset(&m, 0, sizeof(m));
	m.kind = MSG_ACK;
	m.modseq = res.modseq;
	m.first_uid = res.first_uid;
	m.last_uid = res.last_uid;
	send_msg(fd, &m);
}

static struct mix_engine *child_engine(int fd, uint64_t rotate)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	int ret;

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = rotate;
	if ((ret = mix_engine_create(&cfg, &e)) < 0) {
		send_fail(fd, "mix_engine_create: %s", mix_strerror(ret));
		_exit(2);
	}
	return e;
}

static void writer_child(const char *dir, int fd, uint64_t rotate,
			 uint64_t seed, uint32_t txn_no)
{
	struct mix_engine *e = child_engine(fd, rotate);
	struct mix_index *idx;
	struct intent in;
	struct msg m;
	uint32_t ext_id;
	int ret;

	if ((ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx)) < 0) {
		send_fail(fd, "writer: open %s: %s (%s)", dir,
			  mix_strerror(ret), mix_last_error());
		_exit(2);
	}
	if ((ret = mix_index_ext_register(idx, EXT_NAME, EXT_SIZE, 8, 0,
					  &ext_id)) < 0) {
		send_fail(fd, "writer: ext_register: %s (%s)",
			  mix_strerror(ret), mix_last_error());
		_exit(2);
	}
	memset(&m, 0, sizeof(m));
	m.kind = MSG_READY;
	send_msg(fd, &m);
	for (;; txn_no++) {
		make_intent(idx, txn_no, &seed, &in);
		commit_reported(fd, idx, ext_id, &in);
	}
}

/* ---- the verifier ------------------------------------------------------------ */

static int vfail;

static void verr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void verr(const char *fmt, ...)
{
	va_list ap;

	if (vfail++ >= 10)
		return;
	fputs("crashtest: verify: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint8_t rec_kw_mask(const struct mix_snap *s, const struct mix_record *r,
			   uint32_t *stray_r)
{
	uint8_t mask = 0;
	for (uint32_t i = 0; i < r->keywords_bits; i++) {
		const char *name;
		unsigned k;
		if (!mix_record_has_keyword(r, i))
			continue;
		name = mix_snap_keyword_name(s, i);
		for (k = 0; k < KW_POOL; k++)
			if (name && strcmp(name, kw_names[k]) == 0)
				break;
		if (k == KW_POOL)
			(*stray_r)++;
		else
			mask |= (uint8_t)(1u << k);
	}
	return mask;
}

/* Compare one record with the model. */
static void check_record(const struct model *m, const struct mix_snap *s,
			 const struct mix_record *r, int have_ext,
			 uint32_t ext_id, uint64_t highest)
{
	const struct mrec *x;
	const uint8_t *d;
	uint8_t want[EXT_SIZE];
	uint32_t stray = 0;
	uint8_t kw;
	size_t size = 0;

	if (r->uid >= m->next_uid || !m->r[r->uid].present) {
		verr("UID %u is in the index, the model has no such message "
		     "(next_uid %u)", r->uid, m->next_uid);
		return;
	}
	x = &m->r[r->uid];
	if (r->flags != x->flags)
		verr("UID %u (txn %u): flags 0x%02x, expected 0x%02x", r->uid,
		     x->txn_no, r->flags, x->flags);
	kw = rec_kw_mask(s, r, &stray);
	if (kw != x->kw || stray)
		verr("UID %u (txn %u): keywords 0x%02x (+%u unknown), "
		     "expected 0x%02x", r->uid, x->txn_no, kw, stray, x->kw);
	if (r->modseq != x->modseq)
		verr("UID %u (txn %u): modseq %" PRIu64 ", expected %" PRIu64,
		     r->uid, x->txn_no, r->modseq, x->modseq);
	if (r->modseq > highest)
		verr("UID %u: modseq %" PRIu64 " above highest_modseq %" PRIu64,
		     r->uid, r->modseq, highest);
	d = have_ext ? mix_record_ext(s, r, ext_id, &size) : NULL;
	ext_fill(want, x->txn_no, x->idx, x->count);
	if (!d || size != EXT_SIZE || memcmp(d, want, EXT_SIZE) != 0) {
		uint32_t got_txn = 0, got_idx = 0;
		if (d && size >= 8) {
			memcpy(&got_txn, d, 4);
			memcpy(&got_idx, (const uint8_t *)d + 4, 4);
		}
		verr("UID %u: extension data of txn %u #%u (size %zu), "
		     "expected txn %u #%u of %u", r->uid, got_txn, got_idx,
		     size, x->txn_no, x->idx, x->count);
	}
}

/* Every record and the header against the model. */
static void check_state(const struct model *m, const struct mix_snap *s)
{
	struct mix_snap_counts c;
	struct mix_record r;
	struct mix_iter it;
	uint32_t n = 0, seen = 0, deleted = 0, prev = 0, ext_id = 0;
	uint64_t highest = mix_snap_highest_modseq(s);
	int have_ext = mix_snap_ext_lookup(s, EXT_NAME, &ext_id);

	if (mix_snap_next_uid(s) != m->next_uid)
		verr("next_uid %u, expected %u", mix_snap_next_uid(s),
		     m->next_uid);
	if (highest < m->last_modseq)
		verr("highest_modseq %" PRIu64 " is below the last "
		     "acknowledged modseq %" PRIu64, highest, m->last_modseq);
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r)) {
		if (r.uid <= prev)
			verr("UID %u after UID %u", r.uid, prev);
		prev = r.uid;
		n++;
		seen += (r.flags & MIX_FLAG_SEEN) != 0;
		deleted += (r.flags & MIX_FLAG_DELETED) != 0;
		check_record(m, s, &r, have_ext, ext_id, highest);
	}
	if (n != m->count || mix_snap_messages_count(s) != m->count)
		verr("%u records (messages_count %u), expected %u: "
		     "acknowledged messages lost or extra ones present", n,
		     mix_snap_messages_count(s), m->count);
	mix_snap_counts(s, &c);
	if (c.seen != seen || c.deleted != deleted)
		verr("header counts seen %u deleted %u, records have %u, %u",
		     c.seen, c.deleted, seen, deleted);
}

static void verifier_child(const char *dir, int fd, struct model *m,
			   uint64_t rotate, uint64_t seed)
{
	struct mix_engine *e = child_engine(fd, rotate);
	struct mix_open_info info;
	const struct mix_snap *s;
	struct mix_index *idx;
	struct intent probe;
	struct msg res;
	uint32_t next_uid, ext_id;
	uint64_t highest;
	int ret;

	ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx);
	if (ret < 0) {
		send_fail(fd, "verify: open %s after the kill: %s (%s)", dir,
			  mix_strerror(ret), mix_last_error());
		_exit(1);
	}
	mix_index_open_info(idx, &info);
	if (info.created && m->acked > 0) {
		send_fail(fd, "verify: the index was gone after the kill "
			  "(re-created), %" PRIu64 " acknowledged commits lost",
			  m->acked);
		_exit(1);
	}
	memset(&res, 0, sizeof(res));
	res.kind = MSG_RESOLVE;
	res.dropped_bytes = info.dropped_bytes;
	res.replayed = info.replayed_txns;
	res.rebuilt = (uint32_t)info.rebuilt;

	mix_read_lock();
	s = mix_index_snap(idx);
	next_uid = mix_snap_next_uid(s);
	highest = mix_snap_highest_modseq(s);
	if (m->have_pending &&
	    next_uid == m->next_uid + m->pending.nappend) {
		/* the commit in flight made it, all of it or the check
		 * below fails; it is the last change, so highest_modseq
		 * is its modseq */
		if (highest <= m->last_modseq)
			verr("the in-flight transaction %u is present but "
			     "highest_modseq %" PRIu64 " is not above the last "
			     "acknowledged %" PRIu64, m->pending.txn_no,
			     highest, m->last_modseq);
		model_apply(m, &m->pending, highest);
		m->last_modseq = highest;
		res.present = 1;
		res.modseq = highest;
	} else if (next_uid != m->next_uid) {
		verr("next_uid %u: neither the acknowledged state (%u) nor "
		     "that plus the in-flight transaction (%u)", next_uid,
		     m->next_uid, m->have_pending ?
		     m->next_uid + m->pending.nappend : m->next_uid);
	}
	check_state(m, s);
	mix_read_unlock();
	if (vfail) {
		send_fail(fd, "verify: %d mismatches against %" PRIu64
			  " acknowledged commits (details above)", vfail,
			  m->acked);
		_exit(1);
	}
	send_msg(fd, &res);

	/* a new writer can continue */
	if ((ret = mix_index_ext_register(idx, EXT_NAME, EXT_SIZE, 8, 0,
					  &ext_id)) < 0) {
		send_fail(fd, "verify: ext_register after recovery: %s (%s)",
			  mix_strerror(ret), mix_last_error());
		_exit(1);
	}
	make_intent(idx, m->txn_next, &seed, &probe);
	commit_reported(fd, idx, ext_id, &probe);
	if ((ret = mix_index_close(&idx)) < 0 ||
	    (ret = mix_engine_free(&e)) < 0) {
		send_fail(fd, "verify: close: %s (%s)", mix_strerror(ret),
			  mix_last_error());
		_exit(1);
	}
	_exit(0);
}

/* ---- the supervisor ------------------------------------------------------- */

struct opts {
	unsigned cycles;
	unsigned tear_percent;
	uint64_t seed;
	uint64_t rotate;
	unsigned max_delay_ms;
	const char *dir;
	const char *mixctl;
	int keep;
};

struct stats {
	unsigned cycles;
	uint64_t commits_checked;   /* sum over verifications */
	unsigned kills_targeted;    /* kills aimed at a checkpoint */
	unsigned kills_in_ckpt;     /* evidence: tmp file / no active log */
	unsigned kills_after_trigger; /* no ack after a rotating commit */
	unsigned pending_present, pending_absent;
	unsigned torn_tails, rebuilt;
	unsigned tears;             /* tails torn by the supervisor */
	uint64_t replayed;
	unsigned rotations_seen;
	unsigned mixctl_runs;
};

struct cycle_ctx {
	struct model *m;
	uint32_t last_file;         /* high half of the previous ack */
	uint32_t prev_off;
	int triggered;              /* last ack probably started a rotation */
	int failed;
	unsigned acks;
};

static void fail(struct cycle_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(struct cycle_ctx *c, const char *fmt, ...)
{
	va_list ap;

	fputs("crashtest: FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	c->failed = 1;
}

/* Apply one report to the model. */
static void handle_msg(struct cycle_ctx *c, struct stats *st,
		       const struct msg *msg, uint64_t rotate)
{
	struct model *m = c->m;
	uint32_t file, off;

	switch (msg->kind) {
	case MSG_INTENT:
		m->pending = msg->in;
		m->have_pending = 1;
		break;
	case MSG_ACK:
		if (!m->have_pending) {
			fail(c, "acknowledgement without an intent");
			break;
		}
		if (msg->modseq <= m->last_modseq)
			fail(c, "transaction %u: modseq %" PRIu64 " is not "
			     "above the previous acknowledged %" PRIu64,
			     m->pending.txn_no, msg->modseq, m->last_modseq);
		if (msg->first_uid != m->next_uid ||
		    msg->last_uid != m->next_uid + m->pending.nappend - 1)
			fail(c, "transaction %u: UIDs %u..%u, expected "
			     "%u..%u", m->pending.txn_no, msg->first_uid,
			     msg->last_uid, m->next_uid,
			     m->next_uid + m->pending.nappend - 1);
		model_apply(m, &m->pending, msg->modseq);
		m->have_pending = 0;
		m->last_modseq = msg->modseq;
		m->acked++;
		c->acks++;
		/* modseq = (indexid + file_seq) << 32 | offset (§4): a
		 * commit ending past the rotate size starts a checkpoint */
		file = (uint32_t)(msg->modseq >> 32);
		off = (uint32_t)msg->modseq;
		if (file != c->last_file) {
			if (c->last_file)
				st->rotations_seen++;
			c->last_file = file;
			c->prev_off = 0;
		}
		c->triggered = c->prev_off && off > c->prev_off &&
			       off + (off - c->prev_off) >= rotate;
		c->prev_off = off;
		break;
	case MSG_RESOLVE:
		if (m->have_pending) {
			if (msg->present) {
				model_apply(m, &m->pending, msg->modseq);
				m->last_modseq = msg->modseq;
				st->pending_present++;
			} else {
				st->pending_absent++;
			}
		}
		m->have_pending = 0;
		st->torn_tails += msg->dropped_bytes > 0;
		st->rebuilt += msg->rebuilt != 0;
		st->replayed += msg->replayed;
		st->commits_checked += m->acked;
		break;
	case MSG_READY:
		break;
	case MSG_FAIL:
		fail(c, "child: %s", msg->text);
		break;
	default:
		fail(c, "unknown report kind %u", msg->kind);
	}
}

/* Read whole messages from fd until EOF, or until deadline (ms, 0 = none)
 * or stop_on_trigger and an ack that triggers a checkpoint.  Returns 1 at
 * EOF, 0 otherwise. */
static int pump(int fd, struct cycle_ctx *c, struct stats *st, double deadline,
		int stop_on_trigger, uint64_t rotate)
{
	static struct msg buf;
	static size_t have;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int timeout = -1;
		ssize_t n;

		if (deadline > 0) {
			double left = deadline - now_ms();
			if (left <= 0)
				return 0;
			timeout = (int)left + 1;
		}
		if (poll(&p, 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			perror("crashtest: poll");
			exit(2);
		}
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		n = read(fd, (char *)&buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			have = 0;
			return 1;
		}
		have += (size_t)n;
		if (have < sizeof(buf))
			continue;
		have = 0;
		handle_msg(c, st, &buf, rotate);
		if (stop_on_trigger && buf.kind == MSG_ACK && c->triggered)
			return 0;
	}
}


/* Identity of a file, to tell a fresh temporary file from a stale one. */
struct fid {
	int exists;
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
};

static struct fid fid_of(const char *dir, const char *name)
{
	char path[4096];
	struct stat sb;
	struct fid f = { 0 };

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &sb) == 0) {
		f.exists = 1;
		f.dev = sb.st_dev;
		f.ino = sb.st_ino;
		f.mtime = sb.st_mtim;
	}
	return f;
}

static int fid_changed(const struct fid *a, const struct fid *b)
{
	return b->exists && (!a->exists || a->ino != b->ino ||
			     a->dev != b->dev ||
			     a->mtime.tv_sec != b->mtime.tv_sec ||
			     a->mtime.tv_nsec != b->mtime.tv_nsec);
}

static pid_t fork_child(int *rfd_r, int *wfd_r)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0) {
		perror("crashtest: pipe");
		exit(2);
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("crashtest: fork");
		exit(2);
	}
	if (pid == 0) {
		close(p[0]);
		*wfd_r = p[1];
		return 0;
	}
	close(p[1]);
	*rfd_r = p[0];
	return pid;
}

static int wait_child(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("crashtest: waitpid");
			exit(2);
		}
	}
	return status;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* mixctl check on the crashed directory: torn tails are fine, corruption
 * is not.  127: mixctl could not be executed (a build may be replacing
 * it in a shared tree): retried a few times, then not the index's fault. */
static int run_mixctl(const char *mixctl, const char *dir)
{
	int status = 0, rc = 127;
	pid_t pid;

	for (int attempt = 0; attempt < 20 && rc == 127; attempt++) {
		if (attempt)
			sleep_us(250000);
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			if (null >= 0)
				dup2(null, STDOUT_FILENO);
			execl(mixctl, mixctl, "check", dir, (char *)NULL);
			_exit(127);
		}
		status = wait_child(pid);
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	}
	return rc;
}

static int has_index_files(const char *dir)
{
	struct fid a = fid_of(dir, "mix.index"), b = fid_of(dir, "mix.index.log"),
		   c = fid_of(dir, "mix.index.log.2");
	return a.exists || b.exists || c.exists;
}

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Read n bytes at off of dir/name; 0 or -1. */
static int read_at(const char *dir, const char *name, void *buf, size_t n,
		   off_t off, off_t *size_r)
{
	char path[4096];
	struct stat sb;
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY)) < 0)
		return -1;
	ok = fstat(fd, &sb) == 0 && pread(fd, buf, n, off) == (ssize_t)n;
	if (size_r)
		*size_r = sb.st_size;
	close(fd);
	return ok ? 0 : -1;
}

/* Simulated power loss of what was not acknowledged: cut or zero the
 * active log from a random byte after the last acknowledged transaction
 * (docs/format.md §3.1, §3.2 and §2.1 give the offsets read here).
 * Returns 1 if it tore something. */
static int tear_tail(const char *dir, const struct model *m, uint64_t *rng)
{
	uint8_t hdr[48], bd[16], ihdr[120];
	uint32_t file, end, ack_file = (uint32_t)(m->last_modseq >> 32);
	uint32_t ack_off = (uint32_t)m->last_modseq;
	off_t size = 0, cut;
	char path[4096];
	int fd, ok;

	if (m->acked == 0 || read_at(dir, "mix.index.log", hdr, sizeof(hdr),
				     0, &size) < 0)
		return 0;
	file = ld32(hdr + 8) + ld32(hdr + 12);   /* indexid + file_seq */
	if (file == ack_file) {
		if (read_at(dir, "mix.index.log", bd, sizeof(bd), ack_off,
			    NULL) < 0)
			return 0;
		end = ack_off + ld32(bd + 8);    /* + txn_size */
	} else if (file > ack_file) {
		end = (uint16_t)(hdr[6] | hdr[7] << 8);   /* hdr_size */
	} else {
		return 0;
	}
	/* mix.index (synced before its rename) may already cover more */
	if (read_at(dir, "mix.index", ihdr, sizeof(ihdr), 0, NULL) == 0 &&
	    ld32(ihdr + 56) == ld32(hdr + 12) && ld32(ihdr + 60) > end)
		end = ld32(ihdr + 60);
	if ((off_t)end >= size)
		return 0;
	cut = end + 1 + (off_t)below(rng, (uint32_t)(size - end - 1));
	snprintf(path, sizeof(path), "%s/mix.index.log", dir);
	if ((fd = open(path, O_WRONLY)) < 0)
		return 0;
	if (below(rng, 2)) {
		ok = ftruncate(fd, cut) == 0;
	} else {
		static const uint8_t zero[4096];
		off_t p = cut;
		ok = 1;
		while (ok && p < size) {
			size_t n = size - p < (off_t)sizeof(zero) ?
				(size_t)(size - p) : sizeof(zero);
			ok = pwrite(fd, zero, n, p) == (ssize_t)n;
			p += (off_t)n;
		}
	}
	close(fd);
	return ok;
}

/* One kill/recover cycle.  Returns 0, or 1 on a failure. */
static int cycle(const struct opts *o, struct model *m, struct stats *st,
		 unsigned n, uint64_t *rng)
{
	struct cycle_ctx c = { .m = m };
	struct fid tmp0 = fid_of(o->dir, "mix.index.tmp");
	struct fid new0 = fid_of(o->dir, "mix.index.log.newtmp");
	struct fid tmp1, new1;
	int rfd = -1, wfd = -1, status, targeted, eof;
	uint64_t wseed = rnd(rng), vseed = rnd(rng);
	double start;
	pid_t pid;

	/* the writer, killed */
	pid = fork_child(&rfd, &wfd);
	if (pid == 0)
		writer_child(o->dir, wfd, o->rotate, wseed, m->txn_next);
	targeted = below(rng, 2);
	start = now_ms();
	if (targeted) {
		/* wait for a commit that starts a checkpoint + rotation,
		 * then kill within ~1.5 ms of it */
		eof = pump(rfd, &c, st, start + 4.0 * o->max_delay_ms, 1,
			   o->rotate);
		if (!eof && c.triggered) {
			sleep_us(below(rng, 1500));
			st->kills_targeted++;
		}
	} else {
		eof = pump(rfd, &c, st, start + 1 + below(rng, o->max_delay_ms),
			   0, o->rotate);
	}
	kill(pid, SIGKILL);
	status = wait_child(pid);
	if (!eof)
		pump(rfd, &c, st, 0, 0, o->rotate);   /* drain to EOF */
	close(rfd);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		fail(&c, "cycle %u: the writer exited before the kill "
		     "(status 0x%x)", n, status);
		return 1;
	}
	if (c.failed)
		return 1;
	tmp1 = fid_of(o->dir, "mix.index.tmp");
	new1 = fid_of(o->dir, "mix.index.log.newtmp");
	if (fid_changed(&tmp0, &tmp1) || fid_changed(&new0, &new1) ||
	    (!fid_of(o->dir, "mix.index.log").exists &&
	     fid_of(o->dir, "mix.index.log.2").exists))
		st->kills_in_ckpt++;
	if (c.triggered)
		st->kills_after_trigger++;
	if (m->have_pending && below(rng, 100) < o->tear_percent)
		st->tears += tear_tail(o->dir, m, rng);

	if (o->mixctl && has_index_files(o->dir)) {
		int rc = run_mixctl(o->mixctl, o->dir);
		st->mixctl_runs++;
		if (rc == 127) {
			fprintf(stderr, "crashtest: cannot execute %s\n",
				o->mixctl);
			exit(2);
		}
		if (rc != 0) {
			fail(&c, "cycle %u: `%s check %s` exited %d on the "
			     "crashed index (expected 0)", n, o->mixctl,
			     o->dir, rc);
			return 1;
		}
	}

	/* the verifier */
	pid = fork_child(&rfd, &wfd);
	if (pid == 0)
		verifier_child(o->dir, wfd, m, o->rotate, vseed);
	pump(rfd, &c, st, 0, 0, o->rotate);
	close(rfd);
	status = wait_child(pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail(&c, "cycle %u: verifier exit status 0x%x", n, status);
	else if (m->have_pending)
		fail(&c, "cycle %u: verifier's probe commit not acknowledged",
		     n);
	return c.failed;
}

static void usage(void)
{
	fprintf(stderr, "usage: crashtest [--cycles N] [--seed S] [--dir D] "
		"[--keep] [--rotate BYTES] [--max-delay-ms MS] "
		"[--tear-percent P] [--mixctl PATH]\n");
	exit(2);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	const char *s = getenv("MIX_SEED");

	o->cycles = 1000;
	o->tear_percent = 30;
	o->rotate = 4096;
	o->max_delay_ms = 150;
	o->seed = s && *s ? strtoull(s, NULL, 0) : 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--keep")) {
			o->keep = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--cycles"))
			o->cycles = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--seed"))
			o->seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--dir"))
			o->dir = v;
		else if (!strcmp(a, "--rotate"))
			o->rotate = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--max-delay-ms"))
			o->max_delay_ms = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--tear-percent"))
			o->tear_percent = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--mixctl"))
			o->mixctl = v;
		else
			usage();
	}
	if (o->seed == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		o->seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
	}
	if (o->max_delay_ms == 0)
		o->max_delay_ms = 1;
}

static void rm_dir(const char *dir)
{
	static const char *const names[] = {
		"mix.index", "mix.index.tmp", "mix.index.log", "mix.index.log.2",
		"mix.index.log.newtmp", "mix.index.lock",
	};
	char path[4096];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct model m = { .next_uid = 1, .txn_next = 1 };
	struct stats st = { 0 };
	char *tmpdir = NULL;
	uint64_t rng;
	double t0;
	int failed = 0;

	parse_opts(argc, argv, &o);
	rng = o.seed;
	if (!o.dir) {
		const char *base = getenv("TMPDIR");
		if (asprintf(&tmpdir, "%s/mix-crash.XXXXXX",
			     base && *base ? base : "/tmp") < 0 ||
		    !mkdtemp(tmpdir)) {
			perror("crashtest: mkdtemp");
			return 2;
		}
		o.dir = tmpdir;
	} else if (mkdir(o.dir, 0755) < 0 && errno != EEXIST) {
		perror(o.dir);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	printf("# crashtest: seed MIX_SEED=%" PRIu64 " cycles %u rotate %" PRIu64
	       " max-delay %u ms dir %s\n", o.seed, o.cycles, o.rotate,
	       o.max_delay_ms, o.dir);
	fflush(stdout);
	t0 = now_ms();
	for (unsigned n = 1; n <= o.cycles && !failed; n++) {
		failed = cycle(&o, &m, &st, n, &rng);
		st.cycles = n;
		if (failed)
			fprintf(stderr, "crashtest: failed in cycle %u; replay "
				"with --seed %" PRIu64 " (timing differs); "
				"index kept in %s\n", n, o.seed, o.dir);
	}
	printf("crashtest_cycles %u\n", st.cycles);
	printf("crashtest_acknowledged_commits %" PRIu64 "\n", m.acked);
	printf("crashtest_acknowledged_commit_checks %" PRIu64 "\n",
	       st.commits_checked);
	printf("crashtest_inflight_present %u\n", st.pending_present);
	printf("crashtest_inflight_absent %u\n", st.pending_absent);
	printf("crashtest_kills_aimed_at_checkpoint %u\n", st.kills_targeted);
	printf("crashtest_kills_after_rotating_commit %u\n",
	       st.kills_after_trigger);
	printf("crashtest_kills_inside_checkpoint_or_rotation %u\n",
	       st.kills_in_ckpt);
	printf("crashtest_rotations_seen %u\n", st.rotations_seen);
	printf("crashtest_tails_torn_by_supervisor %u\n", st.tears);
	printf("crashtest_torn_tails_cut_by_recovery %u\n", st.torn_tails);
	printf("crashtest_txns_replayed %" PRIu64 "\n", st.replayed);
	printf("crashtest_mixctl_checks %u\n", st.mixctl_runs);
	printf("crashtest_messages_final %u next_uid %u\n", m.count,
	       m.next_uid);
	printf("crashtest_seconds %.1f\n", (now_ms() - t0) / 1e3);
	printf("crashtest_losses %d\n", failed);
	if (!failed && !o.keep)
		rm_dir(o.dir);
	free(tmpdir);
	free(m.r);
	return failed ? 1 : 0;
}
