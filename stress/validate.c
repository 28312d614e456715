/*
 * validate — concurrency validation of one mix index under load
 * (docs/design.md §1 invariants 1, 4, 5; §3; §4).  Uses only
 * include/mix/mix.h.
 *
 * Setup: an engine whose log rotates every --rotate bytes (default 64 KiB,
 * so checkpoints, remaps and rotations happen many times a second while
 * readers run), an index created in --dir and filled with --messages
 * appends in transactions of 1,000.
 *
 * Then for --seconds:
 *
 * - Committer threads run random transactions: flag ADD/REMOVE/REPLACE on
 *   a UID range, keyword ADD/REMOVE/REPLACE (a pool of 20 names) on a
 *   range, appends of 1-10 messages, expunges of small ranges (as many
 *   expunged as appended on average, so the mailbox stays near its size),
 *   one to four of these per transaction.  Ranges are taken from a
 *   snapshot read just before, so they lie below the next_uid seen then and
 *   never cover the transaction's own appends.  Each commit result is
 *   checked: ret 0; a modseq above every modseq the committer saw before
 *   (snapshots and its own commits) unless no_changes, and never below them;
 *   the appended UIDs are consecutive, at or above that next_uid.  After
 *   the commit returns, a new read-side section in the same thread must
 *   show the commit (highest_modseq >= its modseq) and its effects (below).
 *
 * - Every committed transaction is described in the committer's ring
 *   (a single-writer seqlock of atomics).  Readers pick descriptions and
 *   check them against their snapshot when it contains the transaction
 *   (highest_modseq >= M, its modseq).  The check relies on invariant 4
 *   only: every record a transaction changes gets its modseq, and only
 *   effective changes raise a record's modseq.  So a present record in the
 *   transaction's range with modseq <= M is in the state the transaction
 *   left (== M) or was already in that state and unchanged since (< M):
 *   its flags/keywords must show the operation's effect.  A record with
 *   modseq > M was changed later and is skipped.  An expunged range must
 *   stay empty (UIDs are never reused); an appended message with modseq M
 *   has exactly the flags and keyword it was appended with, and none has a
 *   modseq below M.  A half-applied transaction, a lost update or a record
 *   published before its transaction fails this check.
 *
 * - Reader threads loop: mix_read_lock(); s = mix_index_snap(); checks;
 *   mix_read_unlock().  On every snapshot: highest_modseq and next_uid
 *   never decrease for one reader, equal highest_modseq means an equal
 *   header (count, next_uid), counts fit the message count.  Half of the
 *   readers ("full") iterate every --full-every'th snapshot with mix_iter:
 *   seq 1..n consecutive, UIDs strictly increasing and < next_uid, record
 *   modseq <= highest_modseq, no keyword bit beyond the keyword count,
 *   n == messages_count, seen/deleted == mix_snap_counts, the low-water
 *   UIDs at or below the first unseen/deleted UID; every few records
 *   lookup_uid and lookup_seq return the same record, a UID in a gap is not
 *   found and reports the right insertion seq, uid_range_to_seq agrees.
 *   The other half ("fast") do random UID and seq lookups (counted) with
 *   lighter checks: found UIDs map to a seq that maps back, absent UIDs lie
 *   between their neighbours.
 *
 * - At the end the main thread makes small commits scattered over the
 *   mailbox until 40 of them are in the active log (so the log tail after
 *   the last checkpoint touches many chunks), copies the final state, and
 *   copies the index's files as they are (the writer is idle: this is
 *   what kill -9 would leave, every acknowledged commit being in the page
 *   cache).  Then
 *   it closes the index, reopens it writable (flags 0) and compares
 *   (count, next_uid, highest_modseq, keyword names, every record's uid,
 *   flags, modseq and keywords); then it opens the copy, which makes
 *   recovery replay the log tail, and compares again.  After each open
 *   one more commit must get a modseq above every earlier one (a reopened
 *   writer continues in a new log file: a modseq is never issued twice).
 *   --skip-crash-recovery leaves the copy out (to bisect).
 *
 * The first violation prints "VIOLATION: <what>: observed X expected Y" to
 * stderr, stops every thread and makes the exit status 1.  A crash
 * (SIGSEGV, SIGBUS, SIGFPE, SIGABRT) prints "VIOLATION: <phase>: observed
 * SIGSEGV expected no crash" and dies of the signal.  Checks are plain
 * ifs, not assert(), so they survive NDEBUG.  Setup failures (bad
 * options, an engine call failing outside the checked paths) exit 2.
 * The seed is printed; --seed N (or MIX_SEED) replays each thread's
 * choices, not the interleaving.
 *
 * Output: "# " comment lines, then one figure per line as
 * "name value unit".
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mix/mix.h>

#include "stress.h"

/* ---- options ------------------------------------------------------------ */

struct options {
	const char *dir;
	unsigned readers;
	unsigned committers;
	double seconds;
	uint32_t messages;
	enum mix_durability durability;
	uint64_t rotate;
	unsigned full_every;
	int skip_crash_recovery;
	uint64_t seed;
};

static struct options opt = {
	.readers = 16,
	.committers = 4,
	.seconds = 10,
	.messages = 100000,
	.durability = MIX_DURABILITY_NONE,
	.rotate = 65536,
	.full_every = 4,
};

/* ---- shared state ------------------------------------------------------- */

static struct mix_index *g_idx;
static atomic_int g_stop;
static atomic_int g_failed;
static atomic_uint g_violations;
static uint64_t g_start_ns;
static _Thread_local char t_name[32] = "main";

static const char *const kw_pool[] = {
	"$Label1", "$Label2", "$Label3", "$Label4", "$Label5", "$Junk",
	"$NotJunk", "$Forwarded", "$MDNSent", "$Important", "work", "home",
	"todo", "later", "travel", "bills", "family", "friends", "news",
	"receipts",
};
#define KW_POOL ((uint32_t)(sizeof(kw_pool) / sizeof(kw_pool[0])))
#define KW_NONE 0xffu

static inline int stopping(void)
{
	return atomic_load_explicit(&g_stop, memory_order_relaxed);
}

/* The first violation is printed; every one is counted; all threads stop. */
static void violation(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;
	atomic_fetch_add(&g_violations, 1);
	if (atomic_exchange(&g_failed, 1) == 0) {
		char msg[1024];
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		fprintf(stderr, "VIOLATION: %s\n", msg);
		fprintf(stderr, "# in %s at %.3f s; replay choices with "
			"--seed %" PRIu64 "\n", t_name,
			st_secs_since(g_start_ns), opt.seed);
		fflush(stderr);
	}
	atomic_store(&g_stop, 1);
}

/* An engine call that must succeed. */
static int check_ret(int ret, const char *what)
{
	if (ret != 0)
		violation("%s: observed %d (%s: %s) expected 0", what, ret,
			  mix_strerror(ret), mix_last_error());
	return ret;
}

/* ---- transaction descriptions (the committers' rings) ------------------- */

enum { OP_NONE, OP_ADD, OP_REMOVE, OP_REPLACE };

/* What one committed transaction did, as far as readers can check it. */
struct txdesc {
	uint64_t modseq;
	uint32_t f_first, f_last;   /* flag op range */
	uint32_t k_first, k_last;   /* keyword op range */
	uint32_t x_first, x_last;   /* expunge range (x_first 0: none) */
	uint32_t a_first, a_last;   /* appended UIDs (a_first 0: none) */
	uint8_t f_mode, f_flags;
	uint8_t k_mode, k_kw;
	uint8_t a_flags, a_kw;      /* a_kw KW_NONE: appended without */
	uint8_t committer;
};

#define TXD_WORDS 6
#define RING_SLOTS 1024u

/* One slot: a seqlock whose data words are atomics (so the reader's racy
 * copy is not a data race).  Writer: seq odd (relaxed), data (release:
 * the odd seq is visible before any new word), seq even (release).
 * Reader: seq (acquire), data (acquire: the second seq load is not done
 * before them), seq again; equal and even means a consistent copy. */
struct txslot {
	atomic_uint_fast64_t seq;
	atomic_uint_fast64_t w[TXD_WORDS];
};

struct ring {
	atomic_uint_fast64_t head;   /* descriptions published so far */
	struct txslot slot[RING_SLOTS];
};

static struct ring *g_rings;

static void txd_pack(const struct txdesc *d, uint64_t w[TXD_WORDS])
{
	w[0] = d->modseq;
	w[1] = d->f_first | (uint64_t)d->f_last << 32;
	w[2] = d->k_first | (uint64_t)d->k_last << 32;
	w[3] = d->x_first | (uint64_t)d->x_last << 32;
	w[4] = d->a_first | (uint64_t)d->a_last << 32;
	w[5] = d->f_mode | (uint64_t)d->f_flags << 8 |
	       (uint64_t)d->k_mode << 16 | (uint64_t)d->k_kw << 24 |
	       (uint64_t)d->a_flags << 32 | (uint64_t)d->a_kw << 40 |
	       (uint64_t)d->committer << 48;
}

static void txd_unpack(const uint64_t w[TXD_WORDS], struct txdesc *d)
{
	d->modseq = w[0];
	d->f_first = (uint32_t)w[1];
	d->f_last = (uint32_t)(w[1] >> 32);
	d->k_first = (uint32_t)w[2];
	d->k_last = (uint32_t)(w[2] >> 32);
	d->x_first = (uint32_t)w[3];
	d->x_last = (uint32_t)(w[3] >> 32);
	d->a_first = (uint32_t)w[4];
	d->a_last = (uint32_t)(w[4] >> 32);
	d->f_mode = (uint8_t)w[5];
	d->f_flags = (uint8_t)(w[5] >> 8);
	d->k_mode = (uint8_t)(w[5] >> 16);
	d->k_kw = (uint8_t)(w[5] >> 24);
	d->a_flags = (uint8_t)(w[5] >> 32);
	d->a_kw = (uint8_t)(w[5] >> 40);
	d->committer = (uint8_t)(w[5] >> 48);
}

/* Single writer: the committer that owns the ring. */
static void ring_publish(struct ring *r, const struct txdesc *d)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	struct txslot *s = &r->slot[h % RING_SLOTS];
	uint64_t w[TXD_WORDS], seq;
	int i;

	txd_pack(d, w);
	seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
	for (i = 0; i < TXD_WORDS; i++)
		atomic_store_explicit(&s->w[i], w[i], memory_order_release);
	atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

/* Copy the description k places back from the newest (0 = newest).
 * Returns 1 on a consistent copy, 0 if there is none or it was being
 * rewritten. */
static int ring_read(struct ring *r, uint32_t back, struct txdesc *d)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t w[TXD_WORDS], s1, s2;
	struct txslot *s;
	int i;

	if (back >= h || back >= RING_SLOTS - 1)
		return 0;
	s = &r->slot[(h - 1 - back) % RING_SLOTS];
	s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
	if (s1 == 0 || (s1 & 1))
		return 0;
	for (i = 0; i < TXD_WORDS; i++)
		w[i] = atomic_load_explicit(&s->w[i], memory_order_acquire);
	s2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
	if (s1 != s2)
		return 0;
	txd_unpack(w, d);
	return 1;
}

/* ---- checking one transaction's effects against a snapshot -------------- */

static const char *mode_name(uint8_t m)
{
	return m == OP_ADD ? "ADD" : m == OP_REMOVE ? "REMOVE" : "REPLACE";
}

static int rec_has_kw(const struct mix_record *r, uint32_t k)
{
	return mix_record_has_keyword(r, k);
}

/* Number of keyword bits set in a record, and the first one. */
static uint32_t rec_kw_count(const struct mix_record *r, uint32_t *first_r)
{
	uint32_t i, n = 0;
	*first_r = UINT32_MAX;
	for (i = 0; i < r->keywords_bits; i++) {
		if (mix_record_has_keyword(r, i)) {
			if (n++ == 0)
				*first_r = i;
		}
	}
	return n;
}

static int check_flag_op(const struct mix_snap *s, const struct txdesc *d,
			 const char *who)
{
	struct mix_record r;
	uint32_t seq1, seq2, q;

	if (!mix_snap_uid_range_to_seq(s, d->f_first, d->f_last, &seq1, &seq2))
		return 0;
	for (q = seq1; q <= seq2; q++) {
		int ok;
		if (!mix_snap_lookup_seq(s, q, &r)) {
			violation("%s: lookup_seq(%u) inside uid_range_to_seq"
				  "(%u, %u) = %u..%u: observed not found "
				  "expected a record", who, q, d->f_first,
				  d->f_last, seq1, seq2);
			return -1;
		}
		if (r.modseq > d->modseq)
			continue;
		ok = d->f_mode == OP_ADD ? (r.flags & d->f_flags) == d->f_flags :
		     d->f_mode == OP_REMOVE ? (r.flags & d->f_flags) == 0 :
		     r.flags == d->f_flags;
		if (!ok) {
			violation("%s: committer %u's txn modseq %" PRIu64
				  " flags %s 0x%02x on uids %u..%u, uid %u "
				  "(record modseq %" PRIu64 ", snapshot "
				  "highest_modseq %" PRIu64 "): observed flags "
				  "0x%02x expected the %s applied", who,
				  d->committer, d->modseq, mode_name(d->f_mode),
				  d->f_flags, d->f_first, d->f_last, r.uid,
				  r.modseq, mix_snap_highest_modseq(s), r.flags,
				  mode_name(d->f_mode));
			return -1;
		}
	}
	return 0;
}

static int check_kw_op(const struct mix_snap *s, const struct txdesc *d,
		       const char *who)
{
	struct mix_record r;
	uint32_t seq1, seq2, q, k, n, first;
	const char *name = kw_pool[d->k_kw];

	if (!mix_snap_keyword_lookup(s, name, &k)) {
		if (d->k_mode == OP_REMOVE)
			return 0;
		violation("%s: committer %u's txn modseq %" PRIu64 " keyword "
			  "%s %s: observed keyword unknown to a snapshot with "
			  "highest_modseq %" PRIu64 " expected it declared",
			  who, d->committer, d->modseq, mode_name(d->k_mode),
			  name, mix_snap_highest_modseq(s));
		return -1;
	}
	if (!mix_snap_uid_range_to_seq(s, d->k_first, d->k_last, &seq1, &seq2))
		return 0;
	for (q = seq1; q <= seq2; q++) {
		int ok;
		if (!mix_snap_lookup_seq(s, q, &r)) {
			violation("%s: lookup_seq(%u) inside uid_range_to_seq: "
				  "observed not found expected a record", who,
				  q);
			return -1;
		}
		if (r.modseq > d->modseq)
			continue;
		if (d->k_mode == OP_ADD)
			ok = rec_has_kw(&r, k);
		else if (d->k_mode == OP_REMOVE)
			ok = !rec_has_kw(&r, k);
		else
			ok = rec_kw_count(&r, &n) == 1 && n == k;
		if (!ok) {
			violation("%s: committer %u's txn modseq %" PRIu64
				  " keyword %s %s (index %u) on uids %u..%u, "
				  "uid %u (record modseq %" PRIu64 "): observed "
				  "has-keyword=%d (%u keywords set) expected the "
				  "%s applied", who, d->committer, d->modseq,
				  mode_name(d->k_mode), name, k, d->k_first,
				  d->k_last, r.uid, r.modseq, rec_has_kw(&r, k),
				  rec_kw_count(&r, &first), mode_name(d->k_mode));
			return -1;
		}
	}
	return 0;
}

static int check_appends(const struct mix_snap *s, const struct txdesc *d,
			 const char *who)
{
	struct mix_record r;
	uint32_t uid, n, first, k = UINT32_MAX;

	if (mix_snap_next_uid(s) <= d->a_last) {
		violation("%s: next_uid of a snapshot containing txn modseq %"
			  PRIu64 ": observed %u expected > %u (its last "
			  "appended uid)", who, d->modseq, mix_snap_next_uid(s),
			  d->a_last);
		return -1;
	}
	if (d->a_kw != KW_NONE &&
	    !mix_snap_keyword_lookup(s, kw_pool[d->a_kw], &k)) {
		violation("%s: keyword %s appended by txn modseq %" PRIu64
			  ": observed unknown expected declared", who,
			  kw_pool[d->a_kw], d->modseq);
		return -1;
	}
	for (uid = d->a_first; uid <= d->a_last; uid++) {
		if (!mix_snap_lookup_uid(s, uid, &r) || r.modseq > d->modseq)
			continue; /* expunged or changed later */
		n = rec_kw_count(&r, &first);
		if (r.modseq < d->modseq || r.flags != d->a_flags ||
		    (k == UINT32_MAX ? n != 0 : (n != 1 || first != k))) {
			violation("%s: uid %u appended by committer %u's txn "
				  "modseq %" PRIu64 ": observed modseq %"
				  PRIu64 " flags 0x%02x %u keywords (first %d) "
				  "expected modseq %" PRIu64 " flags 0x%02x "
				  "keyword %d", who, uid, d->committer,
				  d->modseq, r.modseq, r.flags, n, (int)first,
				  d->modseq, d->a_flags, (int)k);
			return -1;
		}
	}
	return 0;
}

/* Check d against s if s contains it.  Returns 1 if checked, 0 if s is
 * older than d, -1 on a violation. */
static int check_txdesc(const struct mix_snap *s, const struct txdesc *d,
			const char *who)
{
	uint32_t seq1, seq2;

	if (mix_snap_highest_modseq(s) < d->modseq)
		return 0;
	if (d->f_mode && check_flag_op(s, d, who) < 0)
		return -1;
	if (d->k_mode && check_kw_op(s, d, who) < 0)
		return -1;
	if (d->x_first &&
	    mix_snap_uid_range_to_seq(s, d->x_first, d->x_last, &seq1, &seq2)) {
		struct mix_record r;
		(void)mix_snap_lookup_seq(s, seq1, &r);
		violation("%s: uids %u..%u expunged by committer %u's txn "
			  "modseq %" PRIu64 ", snapshot highest_modseq %"
			  PRIu64 ": observed uid %u present (seq %u..%u) "
			  "expected none", who, d->x_first, d->x_last,
			  d->committer, d->modseq, mix_snap_highest_modseq(s),
			  r.uid, seq1, seq2);
		return -1;
	}
	if (d->a_first && check_appends(s, d, who) < 0)
		return -1;
	return 1;
}

/* Check up to n descriptions picked at random from all rings. */
static uint64_t check_some_txdescs(const struct mix_snap *s, uint64_t *rng,
				   unsigned n, const char *who)
{
	struct txdesc d;
	uint64_t checked = 0;
	unsigned i;

	for (i = 0; i < n && !stopping(); i++) {
		struct ring *r = &g_rings[st_rand_below(rng, opt.committers)];
		/* mostly recent ones: those are the likeliest to be wrong */
		uint32_t back = st_chance(rng, 50) ? st_rand_below(rng, 8)
						   : st_rand_below(rng, 512);
		int ret;
		if (!ring_read(r, back, &d))
			continue;
		ret = check_txdesc(s, &d, who);
		if (ret < 0)
			return checked;
		checked += (uint64_t)ret;
	}
	return checked;
}

/* ---- readers ------------------------------------------------------------ */

struct reader {
	pthread_t thread;
	unsigned id;
	int full;
	uint64_t rng;
	/* results, read by main after join */
	uint64_t snapshots, iterations, lookups, txd_checked, modseq_changes;
};

/* What a reader remembers of its previous snapshot. */
struct last_seen {
	uint64_t highest_modseq;
	uint32_t next_uid, count;
	int valid;
};

static int check_header(const struct mix_snap *s, struct last_seen *last,
			const char *who)
{
	uint64_t h = mix_snap_highest_modseq(s);
	uint32_t nu = mix_snap_next_uid(s), n = mix_snap_messages_count(s);
	struct mix_snap_counts c;

	mix_snap_counts(s, &c);
	if (h >> 63) {
		violation("%s: highest_modseq: observed %" PRIu64 " expected "
			  "< 2^63", who, h);
		return -1;
	}
	if (nu == 0 || n > nu - 1) {
		violation("%s: messages_count with next_uid %u: observed %u "
			  "expected <= %u", who, nu, n, nu ? nu - 1 : 0);
		return -1;
	}
	if (c.seen > n || c.deleted > n) {
		violation("%s: seen/deleted counts: observed %u/%u expected "
			  "<= messages_count %u", who, c.seen, c.deleted, n);
		return -1;
	}
	if (last->valid) {
		if (h < last->highest_modseq) {
			violation("%s: highest_modseq went backwards: observed "
				  "%" PRIu64 " expected >= %" PRIu64, who, h,
				  last->highest_modseq);
			return -1;
		}
		if (nu < last->next_uid) {
			violation("%s: next_uid went backwards: observed %u "
				  "expected >= %u", who, nu, last->next_uid);
			return -1;
		}
		if (h == last->highest_modseq &&
		    (nu != last->next_uid || n != last->count)) {
			violation("%s: two snapshots with highest_modseq %"
				  PRIu64 ": observed next_uid %u count %u "
				  "expected next_uid %u count %u (the same)",
				  who, h, nu, n, last->next_uid, last->count);
			return -1;
		}
	}
	last->highest_modseq = h;
	last->next_uid = nu;
	last->count = n;
	last->valid = 1;
	return 0;
}

static int same_record(const struct mix_record *a, const struct mix_record *b)
{
	uint32_t i, bits = a->keywords_bits > b->keywords_bits ?
			   a->keywords_bits : b->keywords_bits;
	if (a->uid != b->uid || a->seq != b->seq || a->flags != b->flags ||
	    a->modseq != b->modseq)
		return 0;
	for (i = 0; i < bits; i++)
		if (mix_record_has_keyword(a, i) != mix_record_has_keyword(b, i))
			return 0;
	return 1;
}

/* Lookups around one iterated record (and the gap before it). */
static int check_record_lookups(const struct mix_snap *s,
				const struct mix_record *r, uint32_t prev_uid,
				const char *who)
{
	struct mix_record l;
	uint32_t s1, s2;

	if (!mix_snap_lookup_uid(s, r->uid, &l) || !same_record(&l, r)) {
		violation("%s: lookup_uid(%u) of iterated seq %u: observed "
			  "found=%d seq %u uid %u flags 0x%02x modseq %" PRIu64
			  " expected seq %u flags 0x%02x modseq %" PRIu64, who,
			  r->uid, r->seq, mix_snap_lookup_uid(s, r->uid, NULL),
			  l.seq, l.uid, l.flags, l.modseq, r->seq, r->flags,
			  r->modseq);
		return -1;
	}
	if (!mix_snap_lookup_seq(s, r->seq, &l) || !same_record(&l, r)) {
		violation("%s: lookup_seq(%u) of iterated uid %u: observed "
			  "uid %u expected uid %u (same record)", who, r->seq,
			  r->uid, l.uid, r->uid);
		return -1;
	}
	if (r->uid - prev_uid > 1) {
		uint32_t gap = prev_uid + 1 + (r->uid - prev_uid - 1) / 2;
		if (mix_snap_lookup_uid(s, gap, &l) || l.seq != r->seq) {
			violation("%s: lookup_uid(%u), absent (between uids %u "
				  "and %u): observed found=%d seq %u expected "
				  "not found, seq %u", who, gap, prev_uid,
				  r->uid, mix_snap_lookup_uid(s, gap, NULL),
				  l.seq, r->seq);
			return -1;
		}
		if (!mix_snap_uid_range_to_seq(s, prev_uid + 1, r->uid, &s1,
					       &s2) ||
		    s1 != r->seq || s2 != r->seq) {
			violation("%s: uid_range_to_seq(%u, %u): observed "
				  "%u..%u expected %u..%u", who, prev_uid + 1,
				  r->uid, s1, s2, r->seq, r->seq);
			return -1;
		}
	}
	return 0;
}

/* Full check of one snapshot by iteration. */
static int check_iterate(const struct mix_snap *s, uint64_t *rng,
			 const char *who)
{
	uint64_t h = mix_snap_highest_modseq(s);
	uint32_t n = mix_snap_messages_count(s), nu = mix_snap_next_uid(s);
	uint32_t kwc = mix_snap_keyword_count(s);
	uint32_t seq = 0, prev_uid = 0, seen = 0, deleted = 0, i;
	uint32_t first_unseen = 0, first_deleted = 0, next_probe;
	struct mix_snap_counts c;
	struct mix_record r;
	struct mix_iter it;

	next_probe = 1 + st_rand_below(rng, 64);
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r)) {
		seq++;
		if (r.seq != seq || r.uid <= prev_uid || r.uid >= nu ||
		    r.modseq > h || r.modseq == 0 ||
		    (r.flags & ~MIX_FLAGS_ALL)) {
			violation("%s: iterated record %u of %u: observed seq "
				  "%u uid %u modseq %" PRIu64 " flags 0x%02x "
				  "expected seq %u, uid in (%u, %u), modseq in "
				  "[1, %" PRIu64 "], flags within 0x%02x", who,
				  seq, n, r.seq, r.uid, r.modseq, r.flags, seq,
				  prev_uid, nu, h, MIX_FLAGS_ALL);
			return -1;
		}
		for (i = kwc; i < r.keywords_bits; i++) {
			if (mix_record_has_keyword(&r, i)) {
				violation("%s: uid %u keyword bit %u: observed "
					  "set expected clear (only %u "
					  "keywords)", who, r.uid, i, kwc);
				return -1;
			}
		}
		if (r.flags & MIX_FLAG_SEEN)
			seen++;
		else if (!first_unseen)
			first_unseen = r.uid;
		if (r.flags & MIX_FLAG_DELETED) {
			deleted++;
			if (!first_deleted)
				first_deleted = r.uid;
		}
		if (seq == next_probe || r.uid - prev_uid > 1) {
			if (check_record_lookups(s, &r, prev_uid, who) < 0)
				return -1;
			if (seq == next_probe)
				next_probe += 1 + st_rand_below(rng, 64);
		}
		prev_uid = r.uid;
		if (seq > n)
			break;
	}
	mix_snap_counts(s, &c);
	if (seq != n) {
		violation("%s: records iterated: observed %u expected "
			  "messages_count %u", who, seq, n);
		return -1;
	}
	if (c.seen != seen || c.deleted != deleted) {
		violation("%s: mix_snap_counts seen/deleted: observed %u/%u "
			  "expected %u/%u (counted by iteration)", who, c.seen,
			  c.deleted, seen, deleted);
		return -1;
	}
	if ((first_unseen && c.first_unseen_uid_lowwater > first_unseen) ||
	    (first_deleted && c.first_deleted_uid_lowwater > first_deleted)) {
		violation("%s: low-water uids unseen/deleted: observed %u/%u "
			  "expected <= %u/%u (first unseen/deleted uid)", who,
			  c.first_unseen_uid_lowwater,
			  c.first_deleted_uid_lowwater, first_unseen,
			  first_deleted);
		return -1;
	}
	if (mix_snap_lookup_seq(s, n + 1, &r)) {
		violation("%s: lookup_seq(%u) past the end: observed uid %u "
			  "expected not found", who, n + 1, r.uid);
		return -1;
	}
	if (mix_snap_lookup_uid(s, nu, &r) || r.seq != n + 1) {
		violation("%s: lookup_uid(next_uid %u): observed found=%d seq "
			  "%u expected not found, seq %u", who, nu,
			  mix_snap_lookup_uid(s, nu, NULL), r.seq, n + 1);
		return -1;
	}
	return 0;
}

/* Random lookups with light checks; returns the lookups made. */
static uint64_t check_lookups(const struct mix_snap *s, uint64_t *rng,
			      unsigned rounds, const char *who)
{
	uint32_t n = mix_snap_messages_count(s), nu = mix_snap_next_uid(s);
	uint64_t h = mix_snap_highest_modseq(s), lookups = 0;
	struct mix_record r, l;
	unsigned i;

	for (i = 0; i < rounds; i++) {
		uint32_t uid = 1 + st_rand_below(rng, nu - 1);
		int found = mix_snap_lookup_uid(s, uid, &r);
		lookups++;
		if (found) {
			if (r.uid != uid || r.seq == 0 || r.seq > n ||
			    r.modseq > h) {
				violation("%s: lookup_uid(%u): observed uid %u "
					  "seq %u modseq %" PRIu64 " expected "
					  "uid %u, seq in 1..%u, modseq <= %"
					  PRIu64, who, uid, r.uid, r.seq,
					  r.modseq, uid, n, h);
				return lookups;
			}
			lookups++;
			if (!mix_snap_lookup_seq(s, r.seq, &l) || l.uid != uid) {
				violation("%s: lookup_seq(%u) for uid %u: "
					  "observed uid %u expected %u", who,
					  r.seq, uid, l.uid, uid);
				return lookups;
			}
		} else {
			if (r.seq == 0 || r.seq > n + 1) {
				violation("%s: lookup_uid(%u) absent: observed "
					  "seq %u expected 1..%u", who, uid,
					  r.seq, n + 1);
				return lookups;
			}
			lookups += 2;
			if ((r.seq <= n && (!mix_snap_lookup_seq(s, r.seq, &l) ||
					    l.uid <= uid)) ||
			    (r.seq > 1 && (!mix_snap_lookup_seq(s, r.seq - 1, &l) ||
					   l.uid >= uid))) {
				violation("%s: lookup_uid(%u) absent at seq %u: "
					  "observed neighbour uid %u expected "
					  "seq %u's uid > %u and seq %u's < %u",
					  who, uid, r.seq, l.uid, r.seq, uid,
					  r.seq - 1, uid);
				return lookups;
			}
		}
	}
	return lookups;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct last_seen last = { 0 };
	const struct mix_snap *s;
	uint64_t prev_h = 0;

	snprintf(t_name, sizeof(t_name), "%s reader %u",
		 rd->full ? "full" : "fast", rd->id);
	while (!stopping()) {
		mix_read_lock();
		s = mix_index_snap(g_idx);
		rd->snapshots++;
		if (check_header(s, &last, t_name) == 0) {
			if (last.highest_modseq != prev_h)
				rd->modseq_changes++;
			prev_h = last.highest_modseq;
			if (rd->full) {
				if (rd->snapshots % opt.full_every == 0) {
					rd->iterations++;
					(void)check_iterate(s, &rd->rng, t_name);
				}
				rd->txd_checked += check_some_txdescs(
					s, &rd->rng, 16, t_name);
			} else {
				rd->lookups += check_lookups(s, &rd->rng, 256,
							     t_name);
				rd->txd_checked += check_some_txdescs(
					s, &rd->rng, 2, t_name);
			}
		}
		mix_read_unlock();
	}
	return NULL;
}

/* ---- committers --------------------------------------------------------- */

struct committer {
	pthread_t thread;
	unsigned id;
	uint64_t rng;
	uint64_t last_modseq;        /* highest modseq this thread saw */
	/* results */
	uint64_t commits, no_changes, appended, expunge_ops;
};

/* A UID range [first, last] covering up to len messages from a random seq
 * of s (ranges therefore lie below s's next_uid). */
static void pick_range(const struct mix_snap *s, uint64_t *rng, uint32_t len,
		       uint32_t *first_r, uint32_t *last_r)
{
	uint32_t n = mix_snap_messages_count(s);
	uint32_t a = 1 + st_rand_below(rng, n), b = a + len - 1;
	struct mix_record r;
	if (b > n)
		b = n;
	(void)mix_snap_lookup_seq(s, a, &r);
	*first_r = r.uid;
	(void)mix_snap_lookup_seq(s, b, &r);
	*last_r = r.uid;
}

static uint8_t random_flags(uint64_t *rng, int allow_zero)
{
	static const uint8_t f[] = { MIX_FLAG_SEEN, MIX_FLAG_DELETED,
				     MIX_FLAG_FLAGGED, MIX_FLAG_ANSWERED,
				     MIX_FLAG_DRAFT, MIX_FLAG_RECENT };
	uint8_t v = 0;
	do {
		v = 0;
		for (size_t i = 0; i < sizeof(f); i++)
			if (st_chance(rng, i < 2 ? 50 : 25))
				v |= f[i];
	} while (!v && !allow_zero);
	return v;
}

/* Decide a transaction from snapshot s: fills d (ranges, modes) and the
 * append count.  Returns the number of appends. */
static uint32_t plan_txn(struct committer *c, const struct mix_snap *s,
			 struct txdesc *d)
{
	uint64_t *rng = &c->rng;
	uint32_t n = mix_snap_messages_count(s), napp = 0;
	unsigned mode;

	memset(d, 0, sizeof(*d));
	d->committer = (uint8_t)c->id;
	d->a_kw = KW_NONE;
	do {
		if (n > 0 && st_chance(rng, 50)) {
			uint32_t len = st_chance(rng, 5) ?
				       st_rand_range(rng, 64, 1000) :
				       st_rand_range(rng, 1, 64);
			pick_range(s, rng, len, &d->f_first, &d->f_last);
			mode = st_rand_below(rng, 10);
			d->f_mode = mode < 4 ? OP_ADD : mode < 8 ? OP_REMOVE
								 : OP_REPLACE;
			d->f_flags = random_flags(rng, d->f_mode == OP_REPLACE);
		}
		if (n > 0 && st_chance(rng, 40)) {
			pick_range(s, rng, st_rand_range(rng, 1, 64),
				   &d->k_first, &d->k_last);
			mode = st_rand_below(rng, 20);
			d->k_mode = mode < 9 ? OP_ADD : mode < 18 ? OP_REMOVE
								  : OP_REPLACE;
			d->k_kw = (uint8_t)st_rand_below(rng, KW_POOL);
		}
		if (st_chance(rng, 30) || n == 0)
			napp = st_rand_range(rng, 1, 10);
		/* expunge about as much as is appended: more often while the
		 * mailbox is above its initial size */
		if (n > 0 && st_chance(rng, n >= opt.messages ? 30 : 15))
			pick_range(s, rng, st_rand_range(rng, 1, 10),
				   &d->x_first, &d->x_last);
	} while (!d->f_mode && !d->k_mode && !napp && !d->x_first);
	if (napp) {
		d->a_flags = random_flags(rng, 1);
		if (st_chance(rng, 50))
			d->a_kw = (uint8_t)st_rand_below(rng, KW_POOL);
	}
	return napp;
}

static int build_txn(const struct txdesc *d, uint32_t napp,
		     struct mix_txn **t_r)
{
	struct mix_txn *t;
	const char *kws[2] = { NULL, NULL };
	struct mix_uid_range r;
	uint32_t i;
	int ret;

	if ((ret = mix_txn_begin(g_idx, &t)) != 0)
		return check_ret(ret, "mix_txn_begin");
	if (d->f_mode) {
		r.first = d->f_first;
		r.last = d->f_last;
		ret = mix_txn_flags(t, &r, 1, d->f_mode == OP_ADD ? MIX_MODIFY_ADD :
				    d->f_mode == OP_REMOVE ? MIX_MODIFY_REMOVE :
				    MIX_MODIFY_REPLACE, d->f_flags);
		if (check_ret(ret, "mix_txn_flags"))
			goto fail;
	}
	if (d->k_mode) {
		r.first = d->k_first;
		r.last = d->k_last;
		kws[0] = kw_pool[d->k_kw];
		ret = mix_txn_keywords(t, &r, 1, d->k_mode == OP_ADD ?
				       MIX_MODIFY_ADD : d->k_mode == OP_REMOVE ?
				       MIX_MODIFY_REMOVE : MIX_MODIFY_REPLACE,
				       kws);
		if (check_ret(ret, "mix_txn_keywords"))
			goto fail;
	}
	for (i = 0; i < napp; i++) {
		kws[0] = d->a_kw == KW_NONE ? NULL : kw_pool[d->a_kw];
		ret = mix_txn_append(t, d->a_flags, kws[0] ? kws : NULL, NULL);
		if (check_ret(ret, "mix_txn_append"))
			goto fail;
	}
	if (d->x_first) {
		r.first = d->x_first;
		r.last = d->x_last;
		if (check_ret(mix_txn_expunge(t, &r, 1), "mix_txn_expunge"))
			goto fail;
	}
	*t_r = t;
	return 0;
fail:
	mix_txn_abort(&t);
	return -1;
}

/* Check a commit's result against what the committer knew before. */
static int check_result(struct committer *c,
			const struct mix_commit_result *res, uint32_t napp,
			uint64_t h0, uint32_t nu0)
{
	uint64_t floor = c->last_modseq > h0 ? c->last_modseq : h0;

	if (res->modseq >> 63) {
		violation("%s: commit modseq: observed %" PRIu64 " expected "
			  "< 2^63", t_name, res->modseq);
		return -1;
	}
	if (res->no_changes ? res->modseq < floor : res->modseq <= floor) {
		violation("%s: commit modseq (no_changes=%d): observed %"
			  PRIu64 " expected %s %" PRIu64 " (the highest this "
			  "committer saw before)", t_name, res->no_changes,
			  res->modseq, res->no_changes ? ">=" : ">", floor);
		return -1;
	}
	if (napp == 0 ? (res->first_uid || res->last_uid) :
	    (res->no_changes || res->first_uid < nu0 ||
	     res->last_uid < res->first_uid ||
	     res->last_uid - res->first_uid + 1 != napp)) {
		violation("%s: commit of %u appends (next_uid was %u): observed "
			  "first_uid %u last_uid %u no_changes %d expected %u "
			  "consecutive uids >= %u", t_name, napp, nu0,
			  res->first_uid, res->last_uid, res->no_changes, napp,
			  nu0);
		return -1;
	}
	return 0;
}

static void committer_step(struct committer *c)
{
	struct mix_commit_result res;
	struct txdesc d;
	struct mix_txn *t = NULL;
	const struct mix_snap *s;
	uint64_t h0;
	uint32_t nu0, napp;
	int ret;

	mix_read_lock();
	s = mix_index_snap(g_idx);
	h0 = mix_snap_highest_modseq(s);
	nu0 = mix_snap_next_uid(s);
	napp = plan_txn(c, s, &d);
	mix_read_unlock();
	if (h0 < c->last_modseq) {
		violation("%s: highest_modseq of a snapshot taken after this "
			  "thread's commit: observed %" PRIu64 " expected >= %"
			  PRIu64, t_name, h0, c->last_modseq);
		return;
	}
	if (build_txn(&d, napp, &t) < 0)
		return;
	ret = mix_txn_commit(&t, opt.durability, &res);
	if (check_ret(ret, "mix_txn_commit") || t != NULL)
		return;
	if (check_result(c, &res, napp, h0, nu0) < 0)
		return;
	c->commits++;
	c->no_changes += res.no_changes != 0;
	c->appended += napp;
	c->expunge_ops += d.x_first != 0;
	c->last_modseq = res.modseq;
	d.modseq = res.modseq;
	d.a_first = res.first_uid;
	d.a_last = res.last_uid;
	ring_publish(&g_rings[c->id], &d);

	/* visibility: an acknowledged commit is in every later snapshot */
	mix_read_lock();
	s = mix_index_snap(g_idx);
	if (mix_snap_highest_modseq(s) < res.modseq)
		violation("%s: highest_modseq right after commit returned: "
			  "observed %" PRIu64 " expected >= %" PRIu64
			  " (the commit's modseq)", t_name,
			  mix_snap_highest_modseq(s), res.modseq);
	else
		(void)check_txdesc(s, &d, t_name);
	mix_read_unlock();
}

static void *committer_main(void *arg)
{
	struct committer *c = arg;
	snprintf(t_name, sizeof(t_name), "committer %u", c->id);
	while (!stopping())
		committer_step(c);
	return NULL;
}

/* ---- setup, final state, reopen ----------------------------------------- */

static void engine_warning(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "# engine warning: %s\n", message);
}

static void fill(uint64_t *rng)
{
	uint32_t done = 0, expect_uid = 1;
	while (done < opt.messages) {
		struct mix_commit_result res;
		struct mix_txn *t;
		uint32_t i, n = opt.messages - done < 1000 ?
				opt.messages - done : 1000;
		int ret = mix_txn_begin(g_idx, &t);
		if (ret)
			st_die("fill: mix_txn_begin: %s", mix_strerror(ret));
		for (i = 0; i < n; i++) {
			const char *kws[2] = { NULL, NULL };
			uint8_t f = st_chance(rng, 70) ? MIX_FLAG_SEEN : 0;
			if (st_chance(rng, 5))
				f |= MIX_FLAG_DELETED;
			if (st_chance(rng, 10))
				f |= MIX_FLAG_FLAGGED;
			if (st_chance(rng, 20))
				kws[0] = kw_pool[st_rand_below(rng, KW_POOL)];
			if ((ret = mix_txn_append(t, f, kws[0] ? kws : NULL,
						  NULL)) != 0)
				st_die("fill: mix_txn_append: %s: %s",
				       mix_strerror(ret), mix_last_error());
		}
		ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
		if (ret)
			st_die("fill: mix_txn_commit: %s: %s",
			       mix_strerror(ret), mix_last_error());
		if (res.first_uid != expect_uid ||
		    res.last_uid != expect_uid + n - 1) {
			violation("fill: commit of %u appends: observed uids "
				  "%u..%u expected %u..%u", n, res.first_uid,
				  res.last_uid, expect_uid, expect_uid + n - 1);
			return;
		}
		expect_uid += n;
		done += n;
	}
}

/* After the run: small transactions scattered over the mailbox until 40
 * of them are in the active log (its size falls at a rotation; at most
 * 2,000 in all), so that the log tail after the last checkpoint — what
 * crash recovery replays — changes records in many chunks, not only the
 * last one.  Reads the log's size with stat(); nothing of the engine. */
static void tail_commits(uint64_t *rng)
{
	struct committer c;
	uint64_t size, prev = 0;
	unsigned total = 0, since = 0;

	memset(&c, 0, sizeof(c));
	c.rng = st_rand(rng);
	while (since < 40 && total < 2000 && !stopping()) {
		committer_step(&c);
		size = st_file_size(opt.dir, "mix.index.log");
		since = size < prev ? 1 : since + 1;
		prev = size;
		total++;
	}
	printf("# tail: %u commits, %u of them in the active log\n", total,
	       since);
}

struct frec {
	uint64_t modseq;
	uint64_t kw;          /* keyword bitmap (at most 64 keywords) */
	uint32_t uid;
	uint8_t flags;
};

struct final_state {
	uint32_t count, next_uid, kw_count;
	uint64_t highest_modseq;
	char *kw_names[64];
	struct frec *recs;
};

static uint64_t rec_kw_mask(const struct mix_record *r)
{
	uint64_t m = 0;
	uint32_t i;
	for (i = 0; i < r->keywords_bits && i < 64; i++)
		if (mix_record_has_keyword(r, i))
			m |= 1ull << i;
	return m;
}

static void capture(struct final_state *f)
{
	const struct mix_snap *s;
	struct mix_record r;
	struct mix_iter it;
	uint32_t i = 0;

	mix_read_lock();
	s = mix_index_snap(g_idx);
	f->count = mix_snap_messages_count(s);
	f->next_uid = mix_snap_next_uid(s);
	f->highest_modseq = mix_snap_highest_modseq(s);
	f->kw_count = mix_snap_keyword_count(s);
	if (f->kw_count > 64)
		st_die("more than 64 keywords (%u)", f->kw_count);
	for (i = 0; i < f->kw_count; i++)
		f->kw_names[i] = strdup(mix_snap_keyword_name(s, i));
	f->recs = calloc(f->count ? f->count : 1, sizeof(*f->recs));
	if (!f->recs)
		st_die("out of memory");
	mix_iter_init(&it, s, 1);
	for (i = 0; i < f->count && mix_iter_next(&it, &r); i++) {
		f->recs[i].uid = r.uid;
		f->recs[i].flags = r.flags;
		f->recs[i].modseq = r.modseq;
		f->recs[i].kw = rec_kw_mask(&r);
	}
	mix_read_unlock();
	if (i != f->count)
		violation("final state: records iterated: observed %u expected "
			  "%u", i, f->count);
}

/* Compare the snapshot of idx with the captured final state. */
static int compare_final(struct mix_index *idx, const struct final_state *f,
			 const char *label)
{
	const struct mix_snap *s;
	struct mix_record r;
	struct mix_iter it;
	uint32_t i;
	int ret = -1;

	mix_read_lock();
	s = mix_index_snap(idx);
	if (mix_snap_messages_count(s) != f->count ||
	    mix_snap_next_uid(s) != f->next_uid ||
	    mix_snap_highest_modseq(s) != f->highest_modseq ||
	    mix_snap_keyword_count(s) != f->kw_count) {
		violation("%s: header: observed count %u next_uid %u "
			  "highest_modseq %" PRIu64 " keywords %u expected "
			  "%u %u %" PRIu64 " %u", label,
			  mix_snap_messages_count(s), mix_snap_next_uid(s),
			  mix_snap_highest_modseq(s), mix_snap_keyword_count(s),
			  f->count, f->next_uid, f->highest_modseq, f->kw_count);
		goto out;
	}
	for (i = 0; i < f->kw_count; i++) {
		const char *name = mix_snap_keyword_name(s, i);
		if (!name || strcmp(name, f->kw_names[i])) {
			violation("%s: keyword %u: observed '%s' expected "
				  "'%s'", label, i, name ? name : "(null)",
				  f->kw_names[i]);
			goto out;
		}
	}
	mix_iter_init(&it, s, 1);
	for (i = 0; i < f->count; i++) {
		const struct frec *e = &f->recs[i];
		if (!mix_iter_next(&it, &r)) {
			violation("%s: iteration ended at seq %u: observed %u "
				  "records expected %u", label, i + 1, i,
				  f->count);
			goto out;
		}
		if (r.uid != e->uid || r.flags != e->flags ||
		    r.modseq != e->modseq || rec_kw_mask(&r) != e->kw) {
			violation("%s: seq %u: observed uid %u flags 0x%02x "
				  "modseq %" PRIu64 " keywords 0x%" PRIx64
				  " expected uid %u flags 0x%02x modseq %"
				  PRIu64 " keywords 0x%" PRIx64, label, i + 1,
				  r.uid, r.flags, r.modseq, rec_kw_mask(&r),
				  e->uid, e->flags, e->modseq, e->kw);
			goto out;
		}
	}
	ret = 0;
out:
	mix_read_unlock();
	return ret;
}

/* A commit on a (re)opened index must get a modseq above every earlier
 * one and the next UID (the writer continues in a new log file, so no
 * modseq is issued twice; invariant 4).  An append always changes
 * something. */
static void check_first_commit(struct mix_index *idx,
			       const struct final_state *f, const char *label)
{
	struct mix_commit_result res;
	struct mix_txn *t = NULL;

	if (check_ret(mix_txn_begin(idx, &t), "mix_txn_begin") != 0)
		return;
	if (check_ret(mix_txn_append(t, 0, NULL, NULL), "mix_txn_append")) {
		mix_txn_abort(&t);
		return;
	}
	if (check_ret(mix_txn_commit(&t, MIX_DURABILITY_SYNC, &res),
		      "mix_txn_commit") == 0 &&
	    (res.no_changes || res.modseq <= f->highest_modseq ||
	     res.first_uid != f->next_uid))
		violation("%s: first commit: observed modseq %" PRIu64
			  " no_changes %d uid %u expected modseq > %" PRIu64
			  ", uid %u", label, res.modseq, res.no_changes,
			  res.first_uid, f->highest_modseq, f->next_uid);
}

/* Open dir writable, compare with f, commit once, close. */
static void reopen_and_compare(struct mix_engine *engine, const char *dir,
			       const struct final_state *f, const char *label,
			       int clean)
{
	struct mix_open_info info;
	struct mix_index *idx = NULL;
	char what[256];
	int ret;

	snprintf(what, sizeof(what), "%s: mix_index_open(%s, 0)", label, dir);
	ret = mix_index_open(engine, dir, 0, &idx);
	if (check_ret(ret, what))
		return;
	mix_index_open_info(idx, &info);
	printf("# %s: replayed %" PRIu64 " transactions, dropped %" PRIu64
	       " bytes, rebuilt %d\n", label, info.replayed_txns,
	       info.dropped_bytes, info.rebuilt);
	if (info.dropped_bytes || info.rebuilt || (clean && info.replayed_txns))
		violation("%s: open info: observed dropped_bytes %" PRIu64
			  " rebuilt %d replayed %" PRIu64 " expected 0 0 %s",
			  label, info.dropped_bytes, info.rebuilt,
			  info.replayed_txns, clean ? "0" : "any");
	else if (compare_final(idx, f, label) == 0)
		check_first_commit(idx, f, label);
	snprintf(what, sizeof(what), "%s: mix_index_close", label);
	check_ret(mix_index_close(&idx), what);
}

/* Copy the index's files as they are now (the writer is idle, so this is
 * what a kill -9 would leave: everything acknowledged is in the page
 * cache) into dir/crash-copy.  Returns the copy's path or NULL. */
static char *crash_copy(void)
{
	static const char *const files[] = { "mix.index", "mix.index.log",
					     "mix.index.log.2" };
	char *copy = st_subdir(opt.dir, "crash-copy");
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int ret = st_copy_file(opt.dir, copy, files[i]);
		if (ret < 0 && ret != -ENOENT) {
			violation("copying %s/%s: observed %s expected a copy",
				  opt.dir, files[i], strerror(-ret));
			st_rmdir_r(copy);
			free(copy);
			return NULL;
		}
	}
	return copy;
}

static _Atomic(const char *) g_phase = "setup";

static void set_phase(const char *phase)
{
	atomic_store(&g_phase, phase);
}

/* A crash is a violation too: say in which phase, then die of the same
 * signal (core dumps stay useful).  Only async-signal-safe calls. */
static void crash_handler(int sig)
{
	const char *phase = atomic_load(&g_phase);
	const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ?
			   "SIGBUS" : sig == SIGABRT ? "SIGABRT" : "SIGFPE";
	const char *parts[] = { "VIOLATION: ", phase, ": observed ", name,
				" expected no crash\n" };
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (write(2, parts[i], strlen(parts[i])) < 0)
			break;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void end_checks(struct mix_engine *engine, const struct final_state *f)
{
	char *copy;

	set_phase("copying the files for the crash-recovery check");
	copy = crash_copy();
	if (!copy)
		return;

	set_phase("closing the index");
	if (check_ret(mix_index_close(&g_idx), "mix_index_close") == 0) {
		set_phase("reopening after close");
		reopen_and_compare(engine, opt.dir, f, "reopen after close "
				   "vs final state", 1);
	}
	if (!atomic_load(&g_failed) && !opt.skip_crash_recovery) {
		/* recovery replays the log tail after the last checkpoint */
		set_phase("crash recovery (open of a copy taken before close)");
		reopen_and_compare(engine, copy, f, "crash recovery of a copy "
				   "taken before close vs final state", 0);
	}
	st_rmdir_r(copy);
	free(copy);
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: validate --dir DIR [--readers N] [--committers N] "
		"[--seconds S]\n"
		"                [--messages N] [--durability none|sync] "
		"[--rotate BYTES]\n"
		"                [--full-every N] [--seed N] "
		"[--skip-crash-recovery]\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "readers", required_argument, NULL, 'r' },
		{ "committers", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "messages", required_argument, NULL, 'm' },
		{ "durability", required_argument, NULL, 'D' },
		{ "rotate", required_argument, NULL, 'R' },
		{ "full-every", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 'S' },
		{ "skip-crash-recovery", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *seed = NULL;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': opt.dir = optarg; break;
		case 'r':
			opt.readers = (unsigned)st_opt_u64("readers", optarg,
							   0, 1024);
			break;
		case 'c':
			opt.committers = (unsigned)st_opt_u64("committers",
							      optarg, 1, 200);
			break;
		case 's':
			opt.seconds = st_opt_secs("seconds", optarg, 0, 86400);
			break;
		case 'm':
			opt.messages = (uint32_t)st_opt_u64("messages", optarg,
							    0, 100000000);
			break;
		case 'D':
			if (!strcmp(optarg, "none"))
				opt.durability = MIX_DURABILITY_NONE;
			else if (!strcmp(optarg, "sync"))
				opt.durability = MIX_DURABILITY_SYNC;
			else
				st_die("--durability: expected none or sync, "
				       "got '%s'", optarg);
			break;
		case 'R':
			opt.rotate = st_opt_u64("rotate", optarg, 4096,
						1ull << 30);
			break;
		case 'f':
			opt.full_every = (unsigned)st_opt_u64("full-every",
							      optarg, 1, 1u << 30);
			break;
		case 'S': seed = optarg; break;
		case 'K': opt.skip_crash_recovery = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc || !opt.dir) {
		usage(stderr);
		exit(2);
	}
	opt.seed = st_seed_pick(seed);
}

int main(int argc, char **argv)
{
	struct mix_engine_config cfg;
	struct mix_engine *engine = NULL;
	struct reader *readers;
	struct committer *committers;
	struct final_state fin;
	struct mix_engine_stats stats;
	uint64_t rng, commits = 0, lookups = 0, snapshots = 0, iterations = 0;
	uint64_t txd = 0, no_changes = 0, appended = 0, expunge_ops = 0;
	uint64_t max_changes = 0;
	double secs;
	unsigned i, nreaders = 0, ncommitters = 0;
	int ret;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# seed: --seed %" PRIu64 "\n", opt.seed);
	printf("# validate: dir %s readers %u committers %u seconds %g "
	       "messages %u durability %s rotate %" PRIu64 " full-every %u\n",
	       opt.dir, opt.readers, opt.committers, opt.seconds, opt.messages,
	       opt.durability == MIX_DURABILITY_SYNC ? "sync" : "none",
	       opt.rotate, opt.full_every);
	rng = st_seed_derive(opt.seed, 0);
	st_mkdir(opt.dir);

	signal(SIGSEGV, crash_handler);
	signal(SIGBUS, crash_handler);
	signal(SIGFPE, crash_handler);
	signal(SIGABRT, crash_handler);
	set_phase("creating the engine and the index");
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = opt.rotate;
	cfg.warning = engine_warning;
	if ((ret = mix_engine_create(&cfg, &engine)) != 0)
		st_die("mix_engine_create: %s: %s", mix_strerror(ret),
		       mix_last_error());
	if ((ret = mix_index_open(engine, opt.dir, MIX_OPEN_CREATE, &g_idx)))
		st_die("mix_index_open(%s, CREATE): %s: %s", opt.dir,
		       mix_strerror(ret), mix_last_error());
	g_start_ns = st_now_ns();
	set_phase("filling the index");
	fill(&rng);
	printf("# filled %u messages in %.2f s\n", opt.messages,
	       st_secs_since(g_start_ns));

	g_rings = calloc(opt.committers, sizeof(*g_rings));
	readers = calloc(opt.readers ? opt.readers : 1, sizeof(*readers));
	committers = calloc(opt.committers, sizeof(*committers));
	if (!g_rings || !readers || !committers)
		st_die("out of memory");

	g_start_ns = st_now_ns();
	set_phase("the concurrent run");
	for (i = 0; i < opt.readers && !stopping(); i++) {
		nreaders = i + 1;
		readers[i].id = i;
		readers[i].full = i % 2 == 0;
		readers[i].rng = st_seed_derive(opt.seed, 1000 + i);
		if ((ret = pthread_create(&readers[i].thread, NULL, reader_main,
					  &readers[i])) != 0)
			st_die("pthread_create: %s", strerror(ret));
	}
	for (i = 0; i < opt.committers && !stopping(); i++) {
		ncommitters = i + 1;
		committers[i].id = i;
		committers[i].rng = st_seed_derive(opt.seed, 1 + i);
		if ((ret = pthread_create(&committers[i].thread, NULL,
					  committer_main, &committers[i])) != 0)
			st_die("pthread_create: %s", strerror(ret));
	}
	while (!stopping() && st_secs_since(g_start_ns) < opt.seconds) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&g_stop, 1);
	for (i = 0; i < ncommitters; i++)
		pthread_join(committers[i].thread, NULL);
	for (i = 0; i < nreaders; i++)
		pthread_join(readers[i].thread, NULL);
	secs = st_secs_since(g_start_ns);

	for (i = 0; i < opt.committers; i++) {
		commits += committers[i].commits;
		no_changes += committers[i].no_changes;
		appended += committers[i].appended;
		expunge_ops += committers[i].expunge_ops;
	}
	for (i = 0; i < opt.readers; i++) {
		snapshots += readers[i].snapshots;
		lookups += readers[i].lookups;
		iterations += readers[i].iterations;
		txd += readers[i].txd_checked;
		if (readers[i].modseq_changes > max_changes)
			max_changes = readers[i].modseq_changes;
	}

	memset(&fin, 0, sizeof(fin));
	/* the threads are gone; the end checks run in this thread and
	 * stop at a violation (which sets g_stop again) */
	if (!atomic_load(&g_failed))
		atomic_store(&g_stop, 0);
	if (!atomic_load(&g_failed)) {
		set_phase("tail commits");
		tail_commits(&rng);
	}
	if (!atomic_load(&g_failed)) {
		set_phase("capturing the final state");
		capture(&fin);
		printf("# final: %u messages, next_uid %u, highest_modseq %"
		       PRIu64 ", %u keywords\n", fin.count, fin.next_uid,
		       fin.highest_modseq, fin.kw_count);
	}
	if (!atomic_load(&g_failed))
		end_checks(engine, &fin);
	set_phase("freeing the engine");
	if (g_idx)
		(void)mix_index_close(&g_idx);
	mix_engine_stats(engine, &stats);
	if ((ret = mix_engine_free(&engine)) != 0)
		violation("mix_engine_free: observed %d (%s) expected 0", ret,
			  mix_strerror(ret));

	/* Figures.  The mean batch (transactions per published batch) comes
	 * from the engine's counters, sampled around the whole run. */
	printf("validate_param_readers %u threads\n", opt.readers);
	printf("validate_param_committers %u threads\n", opt.committers);
	printf("validate_param_messages %u msgs\n", opt.messages);
	printf("validate_param_rotate %" PRIu64 " bytes\n", opt.rotate);
	printf("validate_param_durability_sync %d bool\n",
	       opt.durability == MIX_DURABILITY_SYNC);
	printf("validate_seconds %.2f s\n", secs);
	printf("validate_commits %" PRIu64 " commits\n", commits);
	printf("validate_commits_per_sec %.0f commits/s\n", commits / secs);
	printf("validate_no_change_commits %" PRIu64 " commits\n", no_changes);
	printf("validate_appended %" PRIu64 " msgs\n", appended);
	printf("validate_expunge_txns %" PRIu64 " txns\n", expunge_ops);
	printf("validate_lookups %" PRIu64 " lookups\n", lookups);
	printf("validate_lookups_per_sec %.0f lookups/s\n", lookups / secs);
	printf("validate_snapshots_seen %" PRIu64 " snapshots\n", snapshots);
	printf("validate_full_iterations %" PRIu64 " iterations\n", iterations);
	printf("validate_txn_effects_checked %" PRIu64 " txns\n", txd);
	printf("validate_modseq_changes_seen_max %" PRIu64 " publishes\n",
	       max_changes);
	printf("validate_engine_commits %" PRIu64 " txns\n", stats.commits);
	printf("validate_engine_batches %" PRIu64 " batches\n", stats.batches);
	printf("validate_mean_batch %.2f txns/batch\n",
	       stats.batches ? (double)stats.commits / stats.batches : 0.0);
	printf("validate_fsyncs %" PRIu64 " fsyncs\n", stats.fsyncs);
	printf("validate_checkpoints %" PRIu64 " checkpoints\n",
	       stats.checkpoints);
	printf("validate_final_messages %u msgs\n", fin.count);
	printf("validate_violations %u violations\n",
	       atomic_load(&g_violations));

	for (i = 0; i < fin.kw_count; i++)
		free(fin.kw_names[i]);
	free(fin.recs);
	free(g_rings);
	free(readers);
	free(committers);
	return atomic_load(&g_failed) ? 1 : 0;
}
