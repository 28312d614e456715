/*
 * validate — concurrency validation of mix indexes under load
 * (docs/design.md §1 invariants 1, 4, 5; §3; §4 snapshots, views,
 * watchers).  Uses only include/mix/mix.h.
 *
 * Setup: an engine with --writers writer threads whose log rotates every
 * --rotate bytes (default 64 KiB, so checkpoints, remaps and rotations
 * happen many times a second while readers run), and --mailboxes indexes
 * (in --dir itself when there is one, else in DIR/mbox.N), each filled
 * with --messages appends in transactions of 1,000.
 *
 * Then for --seconds:
 *
 * - Committer threads run random transactions, each on a mailbox picked
 *   at random (so one thread commits through several writers): flag
 *   ADD/REMOVE/REPLACE on a UID range, keyword ADD/REMOVE/REPLACE (a
 *   pool of 20 names) on a range, appends of 1-10 messages, expunges of small ranges (as many
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
 * - The shadow log (with --view-readers): every acknowledged commit that
 *   changed something is also recorded in its mailbox's shadow log (a
 *   mutex-protected array sorted by modseq): modseq, appended UIDs, the
 *   expunged, flag and keyword ranges.  The committer marks itself "in
 *   flight" (an odd generation number) from before its commit is queued
 *   until the record is in the log, so a view reader whose snapshot
 *   reaches modseq H waits for the committers that are in flight on that
 *   mailbox and then knows every commit <= H is in the log.  Entries no
 *   view can ask about again (modseq at or below every view's
 *   HIGHESTMODSEQ) are trimmed, so the log does not grow with the run.
 *
 * - View readers (--view-readers) hold one mix_view per mailbox.  Even-
 *   numbered ones ("busy") sync a random view in a loop and now and then
 *   close and reopen it; odd-numbered ones ("idle", IMAP IDLE) also hold a
 *   watcher per mailbox, sleep in poll() and rearm + sync the views whose
 *   eventfd woke.  Each view keeps the UID list it believes its snapshot
 *   has (the opening snapshot, then + new - expunged from each report),
 *   and every sync is checked:
 *     visibility: the view's HIGHESTMODSEQ after the sync is >= every
 *       modseq acknowledged to a committer before the sync started;
 *     the report's old_highest_modseq / old_messages_count are the view's
 *       previous ones, new_* are its new snapshot's, HIGHESTMODSEQ never
 *       goes backwards, new count = old - expunged + new;
 *     expunged_seqs strictly descending, each a sequence of the old
 *       snapshot whose UID (from the believed list) is the matching
 *       reported expunged UID (the k-th highest seq <-> the k-th highest
 *       UID); expunged_uids sorted disjoint ranges holding expunged_count
 *       UIDs;
 *     new_uids strictly ascending, at or above the old next_uid and below
 *       the new one (so a UID is reported new once);
 *     changed_uids strictly ascending, each in the old snapshot and the new;
 *     nothing reported that was not committed: every expunged / new UID is
 *       in the expunge / append range of a shadow entry with modseq in
 *       (old, new highest_modseq]; a changed UID's record modseq m is in
 *       that window and the shadow entry with modseq m has it in its flag
 *       or keyword range;
 *     each change reported exactly once, none missed: after applying the
 *       report, the believed UID list equals the new snapshot's UIDs
 *       (iterated), and every record of the old snapshot with a modseq
 *       above the old HIGHESTMODSEQ is in changed_uids;
 *   plus the plain readers' header and transaction-effect checks on the
 *   view's snapshot, read without mix_read_lock (views pin snapshots).
 *   Idle readers also check for lost wake-ups: an index whose newest
 *   snapshot is ahead of the view while the watcher stays silent for 5 s.
 *   The time spent in mix_view_sync is measured (mean ns per call).
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
 * - Hold readers (--hold-readers, default 2): IMAP sessions in the
 *   middle of non-UID FETCH/STORE/SEARCH commands, syncing a view with
 *   MIX_VIEW_SYNC_HOLD_EXPUNGES 1-4 times per command and once without
 *   at its end; sequence numbers must stay stable, held messages keep
 *   answering lookups, HIGHESTMODSEQ stays below every held expunge
 *   (RFC 7162 errata 1810), and the release reports every held message
 *   in the client's numbering (the checks are listed at struct
 *   hreader).
 *
 * - --ro-readers N: a second process (forked before the engine starts)
 *   opens every mailbox MIX_OPEN_READONLY and N threads follow the writer
 *   with mix_index_refresh while rotations happen: after a refresh the
 *   snapshot must reach every modseq acknowledged to a committer of the
 *   owning process before the refresh started (the committers' rings and
 *   the acknowledged maxima live in shared memory), plus the plain
 *   readers' header, iteration and transaction-effect checks.  Off by
 *   default (the default run is one process); make check runs one such
 *   thread, make stress-long two.  It found a refresh that missed
 *   acknowledged commits when it raced with a rotation
 *   (docs/benchmarks.md, "Engine bugs found"; fixed in 236abb3).
 *
 * - --rss-check samples VmRSS (and each mailbox's message count, to show
 *   the load is steady: committers expunge about as much as they append)
 *   --rss-at seconds into the run (default 10) and at its end, and fails
 *   when the end is above 1.5 times the first sample: reclamation must
 *   keep up with a steady load.
 *
 * - After the threads stop (views closed), every index must come down to
 *   at most 2 live snapshots within 10 s (mix_index_stats): held views
 *   released their snapshots and the grace periods freed them.
 *
 * - At the end, for each mailbox, the main thread makes small commits
 *   scattered over the mailbox until 40 of them are in the active log
 *   (so the log tail after the last checkpoint touches many chunks),
 *   copies the final state, and copies the index's files as they are
 *   (the writer is idle: this is what kill -9 would leave, every
 *   acknowledged commit being in the page cache).  Then it closes the
 *   index, reopens it writable (flags 0) and compares
 *   (count, next_uid, highest_modseq, keyword names, every record's uid,
 *   flags, modseq and keywords); then it opens the copy, which makes
 *   recovery replay the log tail, and compares again.  After each open
 *   one more commit must get a modseq above every earlier one (a reopened
 *   writer continues in a new log file: a modseq is never issued twice).
 *   --skip-crash-recovery leaves the copy out (to bisect).
 *
 * --inject-fault KIND plants one fault in what the checkers see, once, to
 * show the view checks can fail (each must end in a VIOLATION and exit
 * 1; `make stress-long` runs them): drop-changed (a changed UID removed
 * from a report), drop-new (a new UID removed), swap-expunged (two
 * expunged seqs out of order), unlogged (a committer leaves one commit
 * out of the shadow log), no-rearm (an idle reader drains its eventfd
 * without rearming the watcher: a lost wake-up, found after 5 s),
 * hold-modseq (a hold reader sees its snapshot's HIGHESTMODSEQ while it
 * holds an expunge below it).
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
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <mix/mix.h>

#include "stress.h"

/* ---- options ------------------------------------------------------------ */

struct options {
	const char *dir;
	unsigned readers;
	unsigned committers;
	unsigned view_readers;
	unsigned hold_readers;
	unsigned ro_readers;
	unsigned mailboxes;
	unsigned writers;
	int rss_check;
	double rss_at;
	double seconds;
	uint32_t messages;
	enum mix_durability durability;
	uint64_t rotate;
	unsigned full_every;
	int skip_crash_recovery;
	int inject;
	uint64_t seed;
};

enum inject_kind {
	INJ_NONE, INJ_DROP_CHANGED, INJ_DROP_NEW, INJ_SWAP_EXPUNGED,
	INJ_UNLOGGED, INJ_NO_REARM, INJ_HOLD_MODSEQ,
};
static const char *const inject_names[] = {
	"none", "drop-changed", "drop-new", "swap-expunged", "unlogged",
	"no-rearm", "hold-modseq",
};


static struct options opt = {
	.readers = 16,
	.committers = 4,
	.view_readers = 4,
	.hold_readers = 2,
	.ro_readers = 0,
	.mailboxes = 1,
	.writers = 1,
	.rss_at = 10,
	.seconds = 10,
	.messages = 100000,
	.durability = MIX_DURABILITY_NONE,
	.rotate = 65536,
	.full_every = 4,
};

/* --inject-fault: 1 until the fault was planted */
static atomic_int g_inject_pending = 1;

/* 1 once, for the first caller that can plant fault kind. */
static int inject_now(int kind)
{
	return opt.inject == kind && atomic_load(&g_inject_pending) &&
	       atomic_exchange(&g_inject_pending, 0);
}

/* ---- shared state ------------------------------------------------------- */

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

/* ---- the shadow log of acknowledged commits (for view readers) ----------- */

/* Test code, so a mutex: committers add, view readers copy windows out. */
struct shadow {
	pthread_mutex_t lock;
	struct txdesc *e;          /* e[start..len) live, sorted by modseq */
	size_t start, len, cap;
	uint64_t added, max_live;
	/* each view reader's HIGHESTMODSEQ of its view of this mailbox (0
	 * until the view is open; it only grows, and a reader stores it
	 * after its checks): no view asks about modseqs at or below the
	 * minimum again, so those entries are dropped */
	atomic_uint_fast64_t *floor;
};

/* One index under test and what the checkers know about it. */
struct mailbox {
	unsigned id;
	char *dir;
	struct mix_index *idx;
	struct ring *rings;           /* one per committer */
	struct shadow shadow;
	/* the highest modseq acknowledged to a committer so far: stored
	 * (atomic max, seq_cst) after the commit returned, loaded by a view
	 * reader before it syncs (in the shared memory, like rings) */
	atomic_uint_fast64_t *acked_max;
};

static struct mailbox *g_mb;

/* Memory shared with the read-only process (MAP_SHARED, made before the
 * fork), followed by each mailbox's acknowledged maximum and its rings:
 * lock-free atomics work across processes. */
struct shared {
	atomic_int filled;       /* parent: the indexes exist, filled */
	atomic_int stop;         /* parent: the run is over */
	atomic_int ro_failed;    /* child: it found a violation */
};

static struct shared *g_shared;

static void shadow_trim(struct shadow *sh)
{
	uint64_t floor = UINT64_MAX;
	unsigned i;

	for (i = 0; i < opt.view_readers; i++) {
		uint64_t f = atomic_load(&sh->floor[i]);
		if (f < floor)
			floor = f;
	}
	while (sh->start < sh->len && sh->e[sh->start].modseq <= floor)
		sh->start++;
}

static void shadow_add(struct shadow *sh, const struct txdesc *d)
{
	size_t i;

	pthread_mutex_lock(&sh->lock);
	if (sh->len == sh->cap) {
		if (sh->cap && sh->start >= sh->cap / 2) {
			memmove(sh->e, sh->e + sh->start,
				(sh->len - sh->start) * sizeof(*sh->e));
			sh->len -= sh->start;
			sh->start = 0;
		} else {
			size_t cap = sh->cap ? sh->cap * 2 : 4096;
			struct txdesc *e = realloc(sh->e, cap * sizeof(*e));
			if (!e)
				st_die("out of memory (shadow log of %zu)",
				       cap);
			sh->e = e;
			sh->cap = cap;
		}
	}
	/* acknowledged nearly in modseq order: insert from the end */
	i = sh->len++;
	while (i > sh->start && sh->e[i - 1].modseq > d->modseq) {
		sh->e[i] = sh->e[i - 1];
		i--;
	}
	sh->e[i] = *d;
	if (++sh->added % 256 == 0)
		shadow_trim(sh);
	if (sh->len - sh->start > sh->max_live)
		sh->max_live = sh->len - sh->start;
	pthread_mutex_unlock(&sh->lock);
}

/* A growable array of descriptions (a view reader's scratch). */
struct txvec {
	struct txdesc *v;
	size_t n, cap;
};

/* Copy the entries with modseq in (lo, hi] into w (sorted by modseq). */
static void shadow_window(struct shadow *sh, uint64_t lo, uint64_t hi,
			  struct txvec *w)
{
	size_t a, b, n;

	pthread_mutex_lock(&sh->lock);
	a = sh->start;
	b = sh->len;
	while (a < b) {                /* first entry above lo */
		size_t mid = a + (b - a) / 2;
		if (sh->e[mid].modseq <= lo)
			a = mid + 1;
		else
			b = mid;
	}
	for (b = a; b < sh->len && sh->e[b].modseq <= hi; b++)
		;
	n = b - a;
	if (n > w->cap) {
		free(w->v);
		w->cap = n * 2;
		if (!(w->v = malloc(w->cap * sizeof(*w->v))))
			st_die("out of memory (shadow window of %zu)", n);
	}
	if (n)  /* memcpy from/to NULL is undefined even for 0 bytes */
		memcpy(w->v, sh->e + a, n * sizeof(*w->v));
	w->n = n;
	pthread_mutex_unlock(&sh->lock);
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

/* Check up to n descriptions picked at random from mailbox mb's rings
 * against s, a snapshot of mb. */
static uint64_t check_some_txdescs(const struct mailbox *mb,
				   const struct mix_snap *s, uint64_t *rng,
				   unsigned n, const char *who)
{
	struct txdesc d;
	uint64_t checked = 0;
	unsigned i;

	for (i = 0; i < n && !stopping(); i++) {
		struct ring *r = &mb->rings[st_rand_below(rng, opt.committers)];
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

/* Each round reads one mailbox (taken in turn); what the reader saw
 * last is kept per mailbox. */
static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct last_seen *last = calloc(opt.mailboxes, sizeof(*last));
	const struct mix_snap *s;
	unsigned m = rd->id % opt.mailboxes, i;
	char (*names)[64] = calloc(opt.mailboxes, sizeof(*names));

	if (!last || !names)
		st_die("out of memory");
	snprintf(t_name, sizeof(t_name), "%s reader %u",
		 rd->full ? "full" : "fast", rd->id);
	for (i = 0; i < opt.mailboxes; i++)
		snprintf(names[i], sizeof(names[i]), "%s, mailbox %u", t_name,
			 i);
	while (!stopping()) {
		struct mailbox *mb = &g_mb[m];
		uint64_t prev_h = last[m].highest_modseq;
		const char *who = names[m];
		mix_read_lock();
		s = mix_index_snap(mb->idx);
		rd->snapshots++;
		if (check_header(s, &last[m], who) == 0) {
			if (last[m].highest_modseq != prev_h)
				rd->modseq_changes++;
			if (rd->full) {
				if (rd->snapshots % opt.full_every == 0) {
					rd->iterations++;
					(void)check_iterate(s, &rd->rng, who);
				}
				rd->txd_checked += check_some_txdescs(
					mb, s, &rd->rng, 16, who);
			} else {
				rd->lookups += check_lookups(s, &rd->rng, 256,
							     who);
				rd->txd_checked += check_some_txdescs(
					mb, s, &rd->rng, 2, who);
			}
		}
		mix_read_unlock();
		m = (m + 1) % opt.mailboxes;
	}
	free(last);
	free(names);
	return NULL;
}

/* ---- committers --------------------------------------------------------- */

struct committer {
	pthread_t thread;
	unsigned id;
	uint64_t rng;
	uint64_t *last_modseq;   /* per mailbox: the highest this thread saw */
	/* In flight: odd from before a commit is queued until its effects
	 * are in the shadow log, then even (seq_cst stores, mailbox first).
	 * A view reader whose snapshot contains a commit of this thread saw
	 * the odd value or a later one (the queue push, the writer's publish
	 * and the reader's load of the snapshot order them); see
	 * wait_in_flight(). */
	atomic_uint_fast64_t gen;
	atomic_uint mailbox;
	/* results */
	uint64_t commits, no_changes, appended, expunge_ops;
};

static struct committer *g_committers;

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

static int build_txn(struct mix_index *idx, const struct txdesc *d,
		     uint32_t napp, struct mix_txn **t_r)
{
	struct mix_txn *t;
	const char *kws[2] = { NULL, NULL };
	struct mix_uid_range r;
	uint32_t i;
	int ret;

	if ((ret = mix_txn_begin(idx, &t)) != 0)
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
static int check_result(struct committer *c, unsigned m,
			const struct mix_commit_result *res, uint32_t napp,
			uint64_t h0, uint32_t nu0)
{
	uint64_t floor = c->last_modseq[m] > h0 ? c->last_modseq[m] : h0;

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

/* Record an acknowledged commit where view readers look for it, and
 * raise the mailbox's acknowledged maximum.  The in-flight generation
 * goes even after both. */
static void record_commit(struct committer *c, struct mailbox *mb,
			  const struct txdesc *d, int no_changes)
{
	uint64_t cur = atomic_load(mb->acked_max);

	if (opt.view_readers && !no_changes &&
	    !(c->commits > 100 && inject_now(INJ_UNLOGGED)))
		shadow_add(&mb->shadow, d);
	while (cur < d->modseq &&
	       !atomic_compare_exchange_weak(mb->acked_max, &cur, d->modseq))
		;
}

/* One transaction on mailbox mb, checked.  The generation is odd around
 * it (c->gen is only read by view readers, so tail_commits' committer
 * may use it without anyone looking). */
static void committer_step(struct committer *c, struct mailbox *mb)
{
	struct mix_commit_result res;
	struct txdesc d;
	struct mix_txn *t = NULL;
	const struct mix_snap *s;
	uint64_t h0;
	uint32_t nu0, napp;
	unsigned m = mb->id;
	int ret;

	mix_read_lock();
	s = mix_index_snap(mb->idx);
	h0 = mix_snap_highest_modseq(s);
	nu0 = mix_snap_next_uid(s);
	napp = plan_txn(c, s, &d);
	mix_read_unlock();
	if (h0 < c->last_modseq[m]) {
		violation("%s: mailbox %u: highest_modseq of a snapshot taken "
			  "after this thread's commit: observed %" PRIu64
			  " expected >= %" PRIu64, t_name, m, h0,
			  c->last_modseq[m]);
		return;
	}
	if (build_txn(mb->idx, &d, napp, &t) < 0)
		return;
	/* ORDER(in-flight): odd before the commit is queued */
	atomic_store(&c->mailbox, m);
	atomic_fetch_add(&c->gen, 1);
	ret = mix_txn_commit(&t, opt.durability, &res);
	if (check_ret(ret, "mix_txn_commit") == 0 && t == NULL &&
	    check_result(c, m, &res, napp, h0, nu0) == 0) {
		d.modseq = res.modseq;
		d.a_first = res.first_uid;
		d.a_last = res.last_uid;
		record_commit(c, mb, &d, res.no_changes);
	}
	/* ORDER(in-flight): even once the shadow log has it */
	atomic_fetch_add(&c->gen, 1);
	if (ret != 0 || atomic_load(&g_failed))
		return;
	c->commits++;
	c->no_changes += res.no_changes != 0;
	c->appended += napp;
	c->expunge_ops += d.x_first != 0;
	c->last_modseq[m] = res.modseq;
	ring_publish(&mb->rings[c->id], &d);

	/* visibility: an acknowledged commit is in every later snapshot */
	mix_read_lock();
	s = mix_index_snap(mb->idx);
	if (mix_snap_highest_modseq(s) < res.modseq)
		violation("%s: mailbox %u: highest_modseq right after commit "
			  "returned: observed %" PRIu64 " expected >= %" PRIu64
			  " (the commit's modseq)", t_name, m,
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
		committer_step(c, &g_mb[st_rand_below(&c->rng,
						      opt.mailboxes)]);
	return NULL;
}

/* ---- view readers ------------------------------------------------------- */

/* Sorted UIDs: what a view believes its snapshot holds. */
struct uidvec {
	uint32_t *v;
	uint32_t n, cap;
};

static void uidvec_push(struct uidvec *u, uint32_t uid)
{
	if (u->n == u->cap) {
		uint32_t cap = u->cap ? u->cap * 2 : 1024;
		uint32_t *v = realloc(u->v, cap * sizeof(*v));
		if (!v)
			st_die("out of memory");
		u->v = v;
		u->cap = cap;
	}
	u->v[u->n++] = uid;
}

/* One view of one mailbox, held by a view reader. */
struct vstate {
	struct mix_view *view;
	struct mix_watch *watch;     /* idle readers only */
	struct uidvec uids;          /* believed UIDs of the view's snapshot */
	uint64_t h;                  /* the view's HIGHESTMODSEQ */
	uint32_t next_uid, count;
	uint64_t ahead_since_ns;     /* idle: index ahead, watcher silent */
	struct last_seen last;
};

struct vreader {
	pthread_t thread;
	unsigned id;
	int idle;
	uint64_t rng;
	struct vstate *vs;           /* one per mailbox */
	/* scratch: the shadow window, its merged expunge and append ranges,
	 * the reported expunged UIDs flattened */
	struct txvec win;
	struct mix_uid_range *xr, *ar;
	uint32_t nxr, nar;
	struct uidvec xu;
	/* results, read by main after join */
	uint64_t syncs, moved, sync_ns, moved_ns, full_compares, reopens;
	uint64_t wakeups, rep_expunged, rep_new, rep_changed, txd_checked;
	uint64_t waits;
};

static int cmp_range(const void *a, const void *b)
{
	const struct mix_uid_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* The union of the window's ranges of one kind (x: expunge, else append),
 * sorted and merged, into *r_r (grown with realloc). */
static uint32_t window_ranges(const struct txvec *w, int x,
			      struct mix_uid_range **r_r)
{
	struct mix_uid_range *r;
	uint32_t n = 0, k = 0;
	size_t i;

	r = realloc(*r_r, (w->n ? w->n : 1) * sizeof(*r));
	if (!r)
		st_die("out of memory");
	*r_r = r;
	for (i = 0; i < w->n; i++) {
		const struct txdesc *d = &w->v[i];
		uint32_t first = x ? d->x_first : d->a_first;
		if (first) {
			r[n].first = first;
			r[n].last = x ? d->x_last : d->a_last;
			n++;
		}
	}
	if (n > 1)
		qsort(r, n, sizeof(*r), cmp_range);
	for (i = 0; i < n; i++) {
		if (k && r[i].first <= r[k - 1].last + 1) {
			if (r[i].last > r[k - 1].last)
				r[k - 1].last = r[i].last;
		} else {
			r[k++] = r[i];
		}
	}
	return k;
}

static int ranges_cover(const struct mix_uid_range *r, uint32_t n,
			uint32_t uid)
{
	uint32_t a = 0, b = n;
	while (a < b) {
		uint32_t mid = a + (b - a) / 2;
		if (r[mid].last < uid)
			a = mid + 1;
		else
			b = mid;
	}
	return a < n && r[a].first <= uid;
}

/* The window's entry with this exact modseq, or NULL. */
static const struct txdesc *window_find(const struct txvec *w,
					uint64_t modseq)
{
	size_t a = 0, b = w->n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (w->v[mid].modseq < modseq)
			a = mid + 1;
		else
			b = mid;
	}
	return a < w->n && w->v[a].modseq == modseq ? &w->v[a] : NULL;
}

/* Open the view of mailbox m and learn its UIDs. */
static int view_open(struct vreader *vr, unsigned m, const char *who)
{
	struct vstate *vs = &vr->vs[m];
	const struct mix_snap *s;
	struct mix_record r;
	struct mix_iter it;

	if (check_ret(mix_view_open(g_mb[m].idx, &vs->view), "mix_view_open"))
		return -1;
	s = mix_view_snap(vs->view);
	/* a reopened view is not older than the one before it */
	if (check_header(s, &vs->last, who) < 0)
		return -1;
	vs->h = mix_snap_highest_modseq(s);
	vs->next_uid = mix_snap_next_uid(s);
	vs->count = mix_snap_messages_count(s);
	vs->uids.n = 0;
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r))
		uidvec_push(&vs->uids, r.uid);
	if (vs->uids.n != vs->count) {
		violation("%s: a new view's snapshot: observed %u records "
			  "iterated expected messages_count %u", who,
			  vs->uids.n, vs->count);
		return -1;
	}
	atomic_store(&g_mb[m].shadow.floor[vr->id], vs->h);
	return 0;
}

/* Wait until every commit on mailbox m that was queued before this call
 * is in the shadow log (struct committer's gen).  A committer whose
 * in-flight commit is on another mailbox is skipped: reading a mailbox
 * number other than m after an odd gen means either that, or that the
 * committer has since finished (the mailbox store that we read comes
 * after its shadow log entry, and synchronizes with our load). */
static void wait_in_flight(struct vreader *vr, unsigned m)
{
	unsigned c;

	for (c = 0; c < opt.committers; c++) {
		struct committer *k = &g_committers[c];
		uint64_t g = atomic_load(&k->gen);
		if (!(g & 1) || atomic_load(&k->mailbox) != m)
			continue;
		vr->waits++;
		while (atomic_load(&k->gen) == g && !stopping())
			sched_yield();
	}
}

/* The expunges of a report: seqs against the believed UID list, UIDs
 * against the shadow window.  Marks the expunged UIDs 0 in the list. */
static int check_expunges(struct vreader *vr, struct vstate *vs,
			  const struct mix_view_changes *ch, const char *who)
{
	uint32_t i, j, prev_seq = UINT32_MAX, n = ch->expunged_count;

	vr->xu.n = 0;
	for (i = 0; i < ch->expunged_uid_ranges; i++) {
		const struct mix_uid_range *r = &ch->expunged_uids[i];
		if (r->first == 0 || r->first > r->last ||
		    (i && r->first <= ch->expunged_uids[i - 1].last) ||
		    r->last - r->first >= n || vr->xu.n > n) {
			violation("%s: expunged_uids range %u of %u: observed "
				  "%u..%u (previous last %u) expected sorted "
				  "disjoint ranges holding %u UIDs", who, i,
				  ch->expunged_uid_ranges, r->first, r->last,
				  i ? ch->expunged_uids[i - 1].last : 0, n);
			return -1;
		}
		for (j = r->first; j <= r->last && vr->xu.n <= n; j++)
			uidvec_push(&vr->xu, j);
	}
	if (vr->xu.n != n) {
		violation("%s: expunged_uids: observed %u UIDs expected "
			  "expunged_count %u", who, vr->xu.n, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		uint32_t seq = ch->expunged_seqs[i], uid = vr->xu.v[n - 1 - i];
		if (seq >= prev_seq || seq == 0 || seq > vs->count) {
			violation("%s: expunged_seqs[%u]: observed %u (previous "
				  "%u) expected strictly descending seqs in "
				  "1..%u (the old snapshot's)", who, i, seq,
				  prev_seq == UINT32_MAX ? 0 : prev_seq,
				  vs->count);
			return -1;
		}
		prev_seq = seq;
		if (vs->uids.v[seq - 1] != uid) {
			violation("%s: expunged seq %u reported with uid %u: "
				  "observed the old snapshot's uid at seq %u "
				  "%u expected %u (each expunge reported once, "
				  "at its seq)", who, seq, uid, seq,
				  vs->uids.v[seq - 1], uid);
			return -1;
		}
		if (!ranges_cover(vr->xr, vr->nxr, uid)) {
			violation("%s: expunged uid %u reported between "
				  "highest_modseq %" PRIu64 " and %" PRIu64
				  ": observed no acknowledged commit in that "
				  "window expunging it (%zu commits) expected "
				  "one", who, uid, ch->old_highest_modseq,
				  ch->new_highest_modseq, vr->win.n);
			return -1;
		}
		vs->uids.v[seq - 1] = 0;
	}
	return 0;
}

/* New UIDs: ascending, above the old next_uid, below the new one,
 * appended by a commit of the window.  Appends them to the list (after
 * the expunged ones are squeezed out). */
static int check_new(struct vreader *vr, struct vstate *vs,
		     const struct mix_view_changes *ch, uint32_t new_nu,
		     const char *who)
{
	uint32_t i, k = 0, prev = 0;

	for (i = 0; i < vs->uids.n; i++)
		if (vs->uids.v[i])
			vs->uids.v[k++] = vs->uids.v[i];
	vs->uids.n = k;
	for (i = 0; i < ch->new_count; i++) {
		uint32_t uid = ch->new_uids[i];
		if (uid <= prev || uid < vs->next_uid || uid >= new_nu) {
			violation("%s: new_uids[%u]: observed %u (previous %u) "
				  "expected ascending UIDs in [%u, %u) (old and "
				  "new next_uid: a new UID is reported once)",
				  who, i, uid, prev, vs->next_uid, new_nu);
			return -1;
		}
		if (!ranges_cover(vr->ar, vr->nar, uid)) {
			violation("%s: new uid %u reported between "
				  "highest_modseq %" PRIu64 " and %" PRIu64
				  ": observed no acknowledged commit in that "
				  "window appending it expected one", who, uid,
				  ch->old_highest_modseq,
				  ch->new_highest_modseq);
			return -1;
		}
		prev = uid;
		uidvec_push(&vs->uids, uid);
	}
	return 0;
}

/* A changed UID's record: its modseq is the modseq of the commit that
 * last changed it, which must be in the window with the UID in its flag
 * or keyword range. */
static int check_changed_rec(struct vreader *vr, const struct mix_record *r,
			     const struct mix_view_changes *ch,
			     const char *who)
{
	const struct txdesc *d = window_find(&vr->win, r->modseq);

	if (d && ((d->f_mode && r->uid >= d->f_first && r->uid <= d->f_last) ||
		  (d->k_mode && r->uid >= d->k_first && r->uid <= d->k_last)))
		return 0;
	violation("%s: changed uid %u with record modseq %" PRIu64 " (report "
		  "window %" PRIu64 "..%" PRIu64 "): observed %s expected an "
		  "acknowledged commit with that modseq changing its flags or "
		  "keywords", who, r->uid, r->modseq, ch->old_highest_modseq,
		  ch->new_highest_modseq, d ? "a commit with that modseq not "
		  "covering it" : "no commit with that modseq");
	return -1;
}

/* The new snapshot against the believed UIDs and the changed list:
 * equal UID lists; every old record changed since the old HIGHESTMODSEQ
 * is reported changed, and only those. */
static int check_against_snapshot(struct vreader *vr, struct vstate *vs,
				  const struct mix_snap *s,
				  const struct mix_view_changes *ch,
				  const char *who)
{
	uint64_t new_h = ch->new_highest_modseq;
	uint32_t i = 0, ci = 0, cc = ch->changed_count;
	struct mix_record r;
	struct mix_iter it;

	for (ci = 1; ci < cc; ci++) {
		if (ch->changed_uids[ci] <= ch->changed_uids[ci - 1]) {
			violation("%s: changed_uids[%u]: observed %u after %u "
				  "expected strictly ascending", who, ci,
				  ch->changed_uids[ci],
				  ch->changed_uids[ci - 1]);
			return -1;
		}
	}
	ci = 0;
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r)) {
		int changed = r.uid < vs->next_uid && r.modseq > vs->h;
		int reported;
		if (i >= vs->uids.n || r.uid != vs->uids.v[i]) {
			violation("%s: the view's new snapshot at seq %u: "
				  "observed uid %u expected %s%u (old snapshot "
				  "+ new - expunged as reported)", who, i + 1,
				  r.uid, i < vs->uids.n ? "uid " : "the end: ",
				  i < vs->uids.n ? vs->uids.v[i] : vs->uids.n);
			return -1;
		}
		if (r.modseq > new_h || (r.uid >= vs->next_uid &&
					 r.modseq <= vs->h)) {
			violation("%s: uid %u in the view's new snapshot: "
				  "observed modseq %" PRIu64 " expected <= %"
				  PRIu64 "%s", who, r.uid, r.modseq, new_h,
				  r.uid >= vs->next_uid ? " and above the old "
				  "highest_modseq (a new message)" : "");
			return -1;
		}
		if (ci < cc && ch->changed_uids[ci] < r.uid) {
			violation("%s: changed uid %u: observed not in the "
				  "view's new snapshot expected present", who,
				  ch->changed_uids[ci]);
			return -1;
		}
		reported = ci < cc && ch->changed_uids[ci] == r.uid;
		if (changed != reported) {
			violation("%s: uid %u (modseq %" PRIu64 ", old "
				  "highest_modseq %" PRIu64 ", old next_uid %u):"
				  " observed %sin changed_uids expected %s",
				  who, r.uid, r.modseq, vs->h, vs->next_uid,
				  reported ? "" : "not ", changed ?
				  "reported once" : "not reported");
			return -1;
		}
		if (reported) {
			if (check_changed_rec(vr, &r, ch, who) < 0)
				return -1;
			ci++;
		}
		i++;
	}
	if (i != vs->uids.n || ci != cc) {
		violation("%s: the view's new snapshot: observed %u records, "
			  "%u changed UIDs matched expected %u records (old + "
			  "new - expunged), %u changed UIDs", who, i, ci,
			  vs->uids.n, cc);
		return -1;
	}
	return 0;
}

/* Every check of one moved sync's report; updates the view's state. */
static int check_report(struct vreader *vr, unsigned m,
			const struct mix_view_changes *ch,
			const struct mix_snap *s, const char *who)
{
	struct vstate *vs = &vr->vs[m];
	uint32_t new_n = mix_snap_messages_count(s);
	uint32_t new_nu = mix_snap_next_uid(s);
	uint64_t new_h = mix_snap_highest_modseq(s);

	if (ch->old_highest_modseq != vs->h || ch->old_messages_count !=
	    vs->count || ch->new_highest_modseq != new_h ||
	    ch->new_messages_count != new_n) {
		violation("%s: sync report: observed old highest_modseq %"
			  PRIu64 " count %u, new %" PRIu64 " %u expected old %"
			  PRIu64 " %u, new %" PRIu64 " %u (the view's old and "
			  "new snapshots)", who, ch->old_highest_modseq,
			  ch->old_messages_count, ch->new_highest_modseq,
			  ch->new_messages_count, vs->h, vs->count, new_h,
			  new_n);
		return -1;
	}
	if (new_h < vs->h || new_nu < vs->next_uid) {
		violation("%s: view HIGHESTMODSEQ / next_uid after sync: "
			  "observed %" PRIu64 " / %u expected >= %" PRIu64
			  " / %u (never backwards)", who, new_h, new_nu, vs->h,
			  vs->next_uid);
		return -1;
	}
	if ((uint64_t)vs->count + ch->new_count !=
	    (uint64_t)new_n + ch->expunged_count) {
		violation("%s: sync report counts: observed new count %u "
			  "expected old %u - expunged %u + new %u", who, new_n,
			  vs->count, ch->expunged_count, ch->new_count);
		return -1;
	}
	shadow_window(&g_mb[m].shadow, vs->h, new_h, &vr->win);
	vr->nxr = window_ranges(&vr->win, 1, &vr->xr);
	vr->nar = window_ranges(&vr->win, 0, &vr->ar);
	if (check_expunges(vr, vs, ch, who) < 0 ||
	    check_new(vr, vs, ch, new_nu, who) < 0 ||
	    check_against_snapshot(vr, vs, s, ch, who) < 0)
		return -1;
	vr->rep_expunged += ch->expunged_count;
	vr->rep_new += ch->new_count;
	vr->rep_changed += ch->changed_count;
	vs->h = new_h;
	vs->next_uid = new_nu;
	vs->count = new_n;
	return 0;
}

/* --inject-fault: spoil one report the way a buggy engine might. */
static void inject_report(struct mix_view_changes *ch)
{
	if (ch->changed_count && inject_now(INJ_DROP_CHANGED)) {
		ch->changed_count--;
	} else if (ch->new_count && inject_now(INJ_DROP_NEW)) {
		ch->new_count--;
	} else if (ch->expunged_count >= 2 && inject_now(INJ_SWAP_EXPUNGED)) {
		uint32_t t = ch->expunged_seqs[0];
		ch->expunged_seqs[0] = ch->expunged_seqs[1];
		ch->expunged_seqs[1] = t;
	}
}

/* Sync the view of mailbox m and check everything about it. */
static void view_sync_check(struct vreader *vr, unsigned m, const char *who)
{
	struct mailbox *mb = &g_mb[m];
	struct vstate *vs = &vr->vs[m];
	struct mix_view_changes ch;
	const struct mix_snap *s;
	uint64_t acked, t0, h, ns;
	int ret;

	/* ORDER(acked): pairs with record_commit's store; the commit was
	 * published before it was acknowledged */
	acked = atomic_load(mb->acked_max);
	t0 = st_now_ns();
	ret = mix_view_sync(vs->view, &ch);
	ns = st_now_ns() - t0;
	vr->sync_ns += ns;
	vr->moved_ns += ret > 0 ? ns : 0;
	vr->syncs++;
	if (ret < 0) {
		violation("%s: mix_view_sync: observed %d (%s) expected 0 or 1",
			  who, ret, mix_strerror(ret));
		return;
	}
	s = mix_view_snap(vs->view);
	h = mix_snap_highest_modseq(s);
	if (h < acked) {
		violation("%s: HIGHESTMODSEQ after mix_view_sync returned %d: "
			  "observed %" PRIu64 " expected >= %" PRIu64 " (a "
			  "commit acknowledged before the sync started)", who,
			  ret, h, acked);
	} else if (ret == 0) {
		if (h != vs->h || ch.expunged_count || ch.new_count ||
		    ch.changed_count || ch.expunged_uid_ranges)
			violation("%s: mix_view_sync returned 0: observed "
				  "highest_modseq %" PRIu64 ", %u expunged, %u "
				  "new, %u changed expected the view's %" PRIu64
				  " and an empty report", who, h,
				  ch.expunged_count, ch.new_count,
				  ch.changed_count, vs->h);
	} else {
		vr->moved++;
		vr->full_compares += ch.full_compare != 0;
		inject_report(&ch);
		wait_in_flight(vr, m);
		if (!stopping() && check_report(vr, m, &ch, s, who) == 0)
			atomic_store(&mb->shadow.floor[vr->id], vs->h);
	}
	mix_view_changes_free(&ch);
	/* the plain readers' checks, on the pinned snapshot, no read lock */
	if (!stopping() && check_header(s, &vs->last, who) == 0)
		vr->txd_checked += check_some_txdescs(mb, s, &vr->rng, 4, who);
}

/* An idle reader: the index is ahead of the view while the watcher's
 * eventfd stays silent.  A publish writes the eventfd just after it
 * stores the snapshot, so allow it 5 s. */
static void check_lost_wakeup(struct vreader *vr, unsigned m, const char *who)
{
	struct vstate *vs = &vr->vs[m];
	uint64_t h, now;

	mix_read_lock();
	h = mix_snap_highest_modseq(mix_index_snap(g_mb[m].idx));
	mix_read_unlock();
	if (h <= vs->h) {
		vs->ahead_since_ns = 0;
		return;
	}
	now = st_now_ns();
	if (!vs->ahead_since_ns)
		vs->ahead_since_ns = now;
	else if (now - vs->ahead_since_ns > 5000000000ull)
		violation("%s: watcher: observed no wake-up for 5 s while the "
			  "index is at highest_modseq %" PRIu64 " and the view "
			  "at %" PRIu64 " expected the eventfd readable", who,
			  h, vs->h);
}

static void idle_round(struct vreader *vr, struct pollfd *pfd,
		       char (*names)[64])
{
	unsigned m;
	int n = poll(pfd, opt.mailboxes, 50);

	if (n < 0 && errno != EINTR) {
		violation("%s: poll on watcher fds: observed %s expected "
			  "success", t_name, strerror(errno));
		return;
	}
	for (m = 0; m < opt.mailboxes && !stopping(); m++) {
		if (n > 0 && (pfd[m].revents & ~POLLIN)) {
			violation("%s: watcher fd revents: observed 0x%x "
				  "expected POLLIN or nothing", names[m],
				  pfd[m].revents);
			return;
		}
		if (n > 0 && (pfd[m].revents & POLLIN)) {
			vr->wakeups++;
			vr->vs[m].ahead_since_ns = 0;
			/* rearm before the sync: a publish after the sync's
			 * load of the snapshot writes the eventfd again */
			if (inject_now(INJ_NO_REARM)) {
				uint64_t v;
				while (read(pfd[m].fd, &v, sizeof(v)) > 0)
					;
			} else {
				mix_watch_rearm(vr->vs[m].watch);
			}
			view_sync_check(vr, m, names[m]);
		} else {
			check_lost_wakeup(vr, m, names[m]);
		}
	}
}

static void busy_round(struct vreader *vr, char (*names)[64])
{
	unsigned m = st_rand_below(&vr->rng, opt.mailboxes);

	if (st_chance(&vr->rng, 1) && st_chance(&vr->rng, 20)) {
		/* now and then a session ends and a new one starts */
		vr->reopens++;
		mix_view_close(&vr->vs[m].view);
		if (view_open(vr, m, names[m]) < 0)
			return;
	}
	view_sync_check(vr, m, names[m]);
}

static void *vreader_main(void *arg)
{
	struct vreader *vr = arg;
	char (*names)[64] = calloc(opt.mailboxes, sizeof(*names));
	struct pollfd *pfd = calloc(opt.mailboxes, sizeof(*pfd));
	unsigned m;

	vr->vs = calloc(opt.mailboxes, sizeof(*vr->vs));
	if (!names || !pfd || !vr->vs)
		st_die("out of memory");
	snprintf(t_name, sizeof(t_name), "%s view reader %u",
		 vr->idle ? "idle" : "busy", vr->id);
	for (m = 0; m < opt.mailboxes; m++) {
		snprintf(names[m], sizeof(names[m]), "%s, mailbox %u", t_name,
			 m);
		/* the watcher first: it starts armed, so no publish after
		 * the view's snapshot goes unnoticed */
		if (vr->idle &&
		    check_ret(mix_watch_open(g_mb[m].idx, &vr->vs[m].watch),
			      "mix_watch_open"))
			goto out;
		if (vr->idle) {
			pfd[m].fd = mix_watch_fd(vr->vs[m].watch);
			pfd[m].events = POLLIN;
		}
		if (view_open(vr, m, names[m]) < 0)
			goto out;
	}
	while (!stopping()) {
		if (vr->idle)
			idle_round(vr, pfd, names);
		else
			busy_round(vr, names);
	}
out:
	for (m = 0; m < opt.mailboxes; m++) {
		mix_view_close(&vr->vs[m].view);
		mix_watch_close(&vr->vs[m].watch);
		free(vr->vs[m].uids.v);
	}
	free(vr->vs);
	free(vr->win.v);
	free(vr->xr);
	free(vr->ar);
	free(vr->xu.v);
	free(names);
	free(pfd);
	return NULL;
}

/* ---- hold readers (held-expunge syncs) ----------------------------------- */

/* A hold reader is an IMAP session running non-UID FETCH/STORE/SEARCH
 * commands: each round it syncs one view 1-4 times with
 * MIX_VIEW_SYNC_HOLD_EXPUNGES while committers expunge, then once
 * without (NOOP).  It keeps the sequence -> UID list the client was told
 * (+ new UIDs at each sync, - reported expunges at the release).
 * After every holding sync: no expunge reported; EXISTS = the list's
 * length; every sequence number still gives the list's UID through
 * mix_view_lookup_seq (numbers never move), MIX_VIEW_EXPUNGED exactly
 * for held messages, which are absent from the view's snapshot and
 * whose count is held_count and never shrinks inside the phase;
 * changed UIDs are live messages of the view, ascending;
 * HIGHESTMODSEQ never goes backwards and is below the modseq of every
 * held expunge (RFC 7162 errata 1810): the newest snapshot's expunge
 * history, asked for the UIDs expunged above the announced value, must
 * list every held UID.  After the release: expunged_seqs strictly
 * descending in the client's numbering, covering every held message,
 * each seq's UID the matching expunged UID; the list, after removing
 * them, equals the view's snapshot; nothing held; HIGHESTMODSEQ the
 * snapshot's.  --inject-fault hold-modseq makes the checker see the
 * snapshot's HIGHESTMODSEQ while expunges are held (must fail). */
struct hreader {
	pthread_t thread;
	unsigned id;
	uint64_t rng;
	unsigned m;                  /* the mailbox of the view */
	struct mix_view *view;
	struct uidvec uids;          /* the client's seq -> UID */
	struct uidvec held;          /* held UIDs, ascending (scratch) */
	uint64_t hms;                /* HIGHESTMODSEQ announced last */
	uint32_t next_uid;           /* above every UID the client knows */
	char name[64];
	/* results, read by main after join */
	uint64_t rounds, hold_syncs, releases, held_max, held_released;
	uint64_t modseq_checked, modseq_unknown;
};

static int hold_open(struct hreader *hr, unsigned m)
{
	const struct mix_snap *s;
	struct mix_record r;
	struct mix_iter it;

	mix_view_close(&hr->view);
	hr->m = m;
	snprintf(hr->name, sizeof(hr->name), "hold reader %u, mailbox %u",
		 hr->id, m);
	if (check_ret(mix_view_open(g_mb[m].idx, &hr->view), "mix_view_open"))
		return -1;
	s = mix_view_snap(hr->view);
	hr->uids.n = 0;
	hr->held.n = 0;
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r))
		uidvec_push(&hr->uids, r.uid);
	hr->next_uid = mix_snap_next_uid(s);
	hr->hms = mix_view_highest_modseq(hr->view);
	return 0;
}

/* New UIDs of a report: ascending, above what the client knew. */
static int hold_new(struct hreader *hr, const struct mix_view_changes *ch)
{
	uint32_t i, prev = 0;

	for (i = 0; i < ch->new_count; i++) {
		uint32_t uid = ch->new_uids[i];
		if (uid <= prev || uid < hr->next_uid) {
			violation("%s: new_uids[%u]: observed %u (previous %u) "
				  "expected ascending UIDs >= %u", hr->name, i,
				  uid, prev, hr->next_uid);
			return -1;
		}
		prev = uid;
		uidvec_push(&hr->uids, uid);
	}
	if (prev)
		hr->next_uid = prev + 1;
	return 0;
}

/* Every sequence number against the client's list; collects the held
 * UIDs (ascending) into hr->held. */
static int hold_scan(struct hreader *hr)
{
	const struct mix_snap *s = mix_view_snap(hr->view);
	uint32_t i;

	hr->held.n = 0;
	for (i = 0; i < hr->uids.n; i++) {
		struct mix_record rec;
		int r = mix_view_lookup_seq(hr->view, i + 1, &rec, NULL);
		if ((r != 1 && r != MIX_VIEW_EXPUNGED) ||
		    rec.uid != hr->uids.v[i] || rec.seq != i + 1) {
			violation("%s: mix_view_lookup_seq(%u) while holding: "
				  "observed ret %d uid %u seq %u expected 1 or "
				  "%d, uid %u (sequence numbers never move "
				  "while expunges are held)", hr->name, i + 1,
				  r, r > 0 ? rec.uid : 0, r > 0 ? rec.seq : 0,
				  MIX_VIEW_EXPUNGED, hr->uids.v[i]);
			return -1;
		}
		if (r == MIX_VIEW_EXPUNGED) {
			if (mix_snap_lookup_uid(s, rec.uid, NULL) ||
			    !mix_view_is_expunged(hr->view, rec.uid)) {
				violation("%s: held uid %u: observed in the "
					  "view's snapshot %d, is_expunged %d "
					  "expected 0, 1", hr->name, rec.uid,
					  mix_snap_lookup_uid(s, rec.uid, NULL),
					  mix_view_is_expunged(hr->view,
							       rec.uid));
				return -1;
			}
			uidvec_push(&hr->held, rec.uid);
		}
	}
	return 0;
}

/* Errata 1810: every held UID was expunged above the announced
 * HIGHESTMODSEQ, by the newest snapshot's expunge history. */
static int hold_modseq(struct hreader *hr, uint64_t h)
{
	struct mix_uid_range *x = NULL;
	uint32_t nx = 0, i, k = 0;
	int ret;

	if (!hr->held.n)
		return 0;
	mix_read_lock();
	ret = mix_snap_expunged_since(mix_index_snap(g_mb[hr->m].idx), h, &x,
				      &nx, NULL);
	mix_read_unlock();
	if (ret < 0)
		st_die("mix_snap_expunged_since: %s", mix_strerror(ret));
	if (ret == 0) {
		hr->modseq_unknown++;
		return 0;
	}
	hr->modseq_checked++;
	for (i = 0; i < hr->held.n; i++) {
		uint32_t u = hr->held.v[i];
		while (k < nx && x[k].last < u)
			k++;
		if (k == nx || x[k].first > u) {
			violation("%s: announced HIGHESTMODSEQ %" PRIu64 " with "
				  "uid %u held: observed its expunge at or "
				  "below it (not in expunged_since(%" PRIu64
				  ")) expected HIGHESTMODSEQ below every held "
				  "expunge (RFC 7162 errata 1810)", hr->name,
				  h, u, h);
			free(x);
			return -1;
		}
	}
	free(x);
	return 0;
}

/* changed_uids of a holding sync: ascending, each a message the client
 * knows that is live (not held) in the view. */
static int hold_changed(struct hreader *hr, const struct mix_view_changes *ch)
{
	uint32_t i, prev = 0;

	for (i = 0; i < ch->changed_count; i++) {
		uint32_t uid = ch->changed_uids[i];
		int r = mix_view_lookup_uid(hr->view, uid, NULL, NULL);
		if (uid <= prev || r != 1) {
			violation("%s: holding sync changed_uids[%u]: observed "
				  "uid %u (previous %u), lookup %d expected "
				  "ascending UIDs of live messages (1)", hr->name,
				  i, uid, prev, r);
			return -1;
		}
		prev = uid;
	}
	return 0;
}

static int hold_check(struct hreader *hr, const struct mix_view_changes *ch,
		      uint32_t old_n, uint32_t held_before)
{
	uint64_t h = ch->new_highest_modseq;
	uint64_t snap_h = mix_snap_highest_modseq(mix_view_snap(hr->view));

	if (ch->expunged_count || ch->expunged_uid_ranges ||
	    ch->old_messages_count != old_n ||
	    ch->new_messages_count != hr->uids.n ||
	    mix_view_messages_count(hr->view) != hr->uids.n) {
		violation("%s: holding sync: observed %u expunges, EXISTS %u "
			  "-> %u (view %u) expected 0 expunges, %u -> %u",
			  hr->name, ch->expunged_count, ch->old_messages_count,
			  ch->new_messages_count,
			  mix_view_messages_count(hr->view), old_n,
			  hr->uids.n);
		return -1;
	}
	if (hold_scan(hr) < 0)
		return -1;
	if (hr->held.n != ch->held_count || hr->held.n < held_before ||
	    mix_view_held_count(hr->view) != hr->held.n) {
		violation("%s: held messages: observed %u by lookup, %u in the "
			  "report, %u by mix_view_held_count expected equal and "
			  ">= %u (before this sync)", hr->name, hr->held.n,
			  ch->held_count, mix_view_held_count(hr->view),
			  held_before);
		return -1;
	}
	if (hold_changed(hr, ch) < 0)
		return -1;
	if (hr->held.n && snap_h > h && inject_now(INJ_HOLD_MODSEQ))
		h = snap_h;   /* as if the view announced its snapshot's */
	if (h < hr->hms || ch->new_highest_modseq !=
	    mix_view_highest_modseq(hr->view)) {
		violation("%s: HIGHESTMODSEQ while holding: observed %" PRIu64
			  " (view %" PRIu64 ") expected >= %" PRIu64 " and "
			  "the view's", hr->name, h,
			  mix_view_highest_modseq(hr->view), hr->hms);
		return -1;
	}
	hr->hms = h;
	return hold_modseq(hr, h);
}

/* The release: all held messages and the expunges since, reported in
 * the client's numbering; then the list equals the snapshot. */
static int hold_release_check(struct hreader *hr,
			      const struct mix_view_changes *ch)
{
	uint32_t i, j, k = 0, n = ch->expunged_count, prev = UINT32_MAX, r;
	uint32_t total = 0;
	const struct mix_snap *s = mix_view_snap(hr->view);
	struct mix_record rec;
	struct mix_iter it;

	for (i = 0; i < n; i++) {
		uint32_t seq = ch->expunged_seqs[i];
		if (seq >= prev || seq == 0 || seq > hr->uids.n) {
			violation("%s: release expunged_seqs[%u]: observed %u "
				  "(previous %u) expected strictly descending "
				  "in 1..%u", hr->name, i, seq, prev, hr->uids.n);
			return -1;
		}
		prev = seq;
	}
	/* the k-th highest seq's UID is the k-th highest expunged UID */
	for (r = 0; r < ch->expunged_uid_ranges; r++)
		total += ch->expunged_uids[r].last - ch->expunged_uids[r].first
			 + 1;
	for (r = ch->expunged_uid_ranges; r-- > 0;)
		for (j = ch->expunged_uids[r].last; k < n &&
		     j >= ch->expunged_uids[r].first; j--, k++)
			if (hr->uids.v[ch->expunged_seqs[k] - 1] != j) {
				violation("%s: release: expunged seq %u: "
					  "observed uid %u in the client's list "
					  "expected the matching expunged uid %u",
					  hr->name, ch->expunged_seqs[k],
					  hr->uids.v[ch->expunged_seqs[k] - 1],
					  j);
				return -1;
			}
	for (i = 0; i < n; i++)
		hr->uids.v[ch->expunged_seqs[i] - 1] = 0;
	/* a held UID left out stays in the list, and the snapshot
	 * comparison below fails: hold_scan saw it absent from it */
	for (i = 0, j = 0; i < hr->uids.n; i++)
		if (hr->uids.v[i])
			hr->uids.v[j++] = hr->uids.v[i];
	hr->uids.n = j;
	if (k != n || total != n) {
		violation("%s: release: observed %u expunged UIDs in ranges "
			  "(%u matched) expected expunged_count %u", hr->name,
			  total, k, n);
		return -1;
	}
	if (hold_new(hr, ch) < 0)
		return -1;
	mix_iter_init(&it, s, 1);
	for (i = 0; mix_iter_next(&it, &rec); i++)
		if (i >= hr->uids.n || hr->uids.v[i] != rec.uid)
			break;
	if (i != hr->uids.n || mix_snap_messages_count(s) != hr->uids.n ||
	    mix_view_held_count(hr->view) || ch->held_count ||
	    ch->new_highest_modseq != mix_snap_highest_modseq(s)) {
		violation("%s: after the release: observed the client's list "
			  "matching the snapshot for %u of %u messages (%u "
			  "in it), %u held, HIGHESTMODSEQ %" PRIu64 " expected "
			  "all, 0 held, the snapshot's %" PRIu64, hr->name, i,
			  hr->uids.n, mix_snap_messages_count(s),
			  mix_view_held_count(hr->view),
			  ch->new_highest_modseq, mix_snap_highest_modseq(s));
		return -1;
	}
	hr->held_released += hr->held.n;
	hr->hms = ch->new_highest_modseq;
	return 0;
}

/* One holding (hold 1) or releasing sync and its checks. */
static int hold_sync(struct hreader *hr, int hold)
{
	struct mix_view_changes ch;
	uint32_t old_n = hr->uids.n, held_before = hr->held.n;
	int ret = mix_view_sync_flags(hr->view, hold ?
				      MIX_VIEW_SYNC_HOLD_EXPUNGES : 0, &ch);

	if (ret < 0) {
		violation("%s: mix_view_sync_flags(%d): observed %d (%s) "
			  "expected 0 or 1", hr->name, hold, ret,
			  mix_strerror(ret));
		return -1;
	}
	if (ret == 1 && hold) {
		hr->hold_syncs++;
		ret = hold_new(hr, &ch);
		if (ret == 0)
			ret = hold_check(hr, &ch, old_n, held_before);
		if (hr->held.n > hr->held_max)
			hr->held_max = hr->held.n;
	} else if (ret == 1) {
		hr->releases++;
		ret = hold_release_check(hr, &ch);
		hr->held.n = 0;
	} else if (!hold && hr->held.n) {
		violation("%s: releasing sync returned 0 with %u held: "
			  "observed nothing reported expected them expunged",
			  hr->name, hr->held.n);
		ret = -1;
	}
	mix_view_changes_free(&ch);
	return ret;
}

static void *hreader_main(void *arg)
{
	struct hreader *hr = arg;
	struct timespec pause = { 0, 200 * 1000 };

	snprintf(t_name, sizeof(t_name), "hold reader %u", hr->id);
	if (hold_open(hr, hr->id % opt.mailboxes) < 0)
		goto out;
	while (!stopping()) {
		unsigned k, n = 1 + st_rand_below(&hr->rng, 4);
		hr->rounds++;
		if (st_chance(&hr->rng, 2) &&
		    hold_open(hr, st_rand_below(&hr->rng, opt.mailboxes)) < 0)
			break;
		for (k = 0; k < n && !stopping(); k++) {
			nanosleep(&pause, NULL);   /* commits land meanwhile */
			if (hold_sync(hr, 1) < 0)
				goto out;
		}
		if (!stopping() && hold_sync(hr, 0) < 0)
			break;
	}
out:
	mix_view_close(&hr->view);
	free(hr->uids.v);
	free(hr->held.v);
	return NULL;
}

static struct hreader *g_hreaders;
static unsigned g_hstarted;

static void hold_start(void)
{
	unsigned i;
	int ret;

	g_hreaders = calloc(opt.hold_readers ? opt.hold_readers : 1,
			    sizeof(*g_hreaders));
	if (!g_hreaders)
		st_die("out of memory");
	for (i = 0; i < opt.hold_readers && !stopping(); i++) {
		g_hreaders[i].id = i;
		g_hreaders[i].rng = st_seed_derive(opt.seed, 7000 + i);
		if ((ret = pthread_create(&g_hreaders[i].thread, NULL,
					  hreader_main, &g_hreaders[i])) != 0)
			st_die("pthread_create: %s", strerror(ret));
		g_hstarted++;
	}
}

static void hold_join(void)
{
	unsigned i;
	for (i = 0; i < g_hstarted; i++)
		pthread_join(g_hreaders[i].thread, NULL);
}

static void hold_figures(void)
{
	uint64_t t[7] = { 0 };
	unsigned i;

	for (i = 0; i < g_hstarted; i++) {
		const struct hreader *h = &g_hreaders[i];
		t[0] += h->rounds;
		t[1] += h->hold_syncs;
		t[2] += h->releases;
		t[3] = h->held_max > t[3] ? h->held_max : t[3];
		t[4] += h->held_released;
		t[5] += h->modseq_checked;
		t[6] += h->modseq_unknown;
	}
	printf("validate_param_hold_readers %u threads\n", opt.hold_readers);
	printf("validate_hold_rounds %" PRIu64 " commands\n", t[0]);
	printf("validate_hold_syncs_moved %" PRIu64 " syncs\n", t[1]);
	printf("validate_hold_releases %" PRIu64 " syncs\n", t[2]);
	printf("validate_hold_held_max %" PRIu64 " msgs\n", t[3]);
	printf("validate_hold_released %" PRIu64 " msgs\n", t[4]);
	printf("validate_hold_modseq_checked %" PRIu64 " syncs\n", t[5]);
	printf("validate_hold_modseq_unknown %" PRIu64 " syncs\n", t[6]);
	free(g_hreaders);
}

/* ---- the read-only process ---------------------------------------------- */

/* Forked before the engine exists (no threads to lose), it opens every
 * mailbox MIX_OPEN_READONLY with its own engine once the parent has
 * filled them, and its threads follow the writer with mix_index_refresh
 * (log tail, rotation, new mix.index) while the parent's committers run.
 * Each round, on one mailbox: load the acknowledged maximum from the
 * shared memory, refresh, and then the snapshot must reach that modseq
 * (what a commit's write() put in the log before it was acknowledged is
 * there for other processes to read); the plain readers' header checks
 * (never backwards); the effects of the committers' transactions, read
 * from the shared rings (a torn or half-applied transaction fails them);
 * every other thread iterates every --full-every'th snapshot. */
struct roreader {
	pthread_t thread;
	unsigned id;
	uint64_t rng;
	uint64_t refreshes, moved, iterations, txd_checked;
};

static void *ro_reader_main(void *arg)
{
	struct roreader *rr = arg;
	struct last_seen *last = calloc(opt.mailboxes, sizeof(*last));
	char (*names)[64] = calloc(opt.mailboxes, sizeof(*names));
	unsigned m = rr->id % opt.mailboxes, i;

	if (!last || !names)
		st_die("out of memory");
	snprintf(t_name, sizeof(t_name), "read-only process reader %u",
		 rr->id);
	for (i = 0; i < opt.mailboxes; i++)
		snprintf(names[i], sizeof(names[i]), "%s, mailbox %u", t_name,
			 i);
	while (!stopping()) {
		struct mailbox *mb = &g_mb[m];
		const struct mix_snap *s;
		uint64_t acked = atomic_load(mb->acked_max);
		int ret = mix_index_refresh(mb->idx);

		rr->refreshes++;
		if (ret < 0) {
			violation("%s: mix_index_refresh: observed %d (%s: %s) "
				  "expected 0 or 1", names[m], ret,
				  mix_strerror(ret), mix_last_error());
			break;
		}
		rr->moved += ret == 1;
		mix_read_lock();
		s = mix_index_snap(mb->idx);
		if (mix_snap_highest_modseq(s) < acked) {
			violation("%s: HIGHESTMODSEQ after mix_index_refresh: "
				  "observed %" PRIu64 " expected >= %" PRIu64
				  " (acknowledged to a committer of the owning "
				  "process before the refresh)", names[m],
				  mix_snap_highest_modseq(s), acked);
		} else if (check_header(s, &last[m], names[m]) == 0) {
			if (rr->id % 2 == 0 &&
			    rr->refreshes % opt.full_every == 0) {
				rr->iterations++;
				(void)check_iterate(s, &rr->rng, names[m]);
			}
			rr->txd_checked += check_some_txdescs(mb, s, &rr->rng,
							      8, names[m]);
		}
		mix_read_unlock();
		m = (m + 1) % opt.mailboxes;
	}
	free(last);
	free(names);
	return NULL;
}

/* The child's whole life; exits 0, or 1 after a violation. */
static void ro_process(void)
	__attribute__((noreturn));
static void ro_process(void)
{
	struct roreader *rr = calloc(opt.ro_readers, sizeof(*rr));
	struct mix_engine *engine = NULL;
	uint64_t refreshes = 0, moved = 0, iterations = 0, txd = 0;
	unsigned m, i, n = 0;
	int ret;

	/* the parent may die of st_die before it says "filled" */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(t_name, sizeof(t_name), "read-only process");
	if (!rr)
		st_die("out of memory");
	while (!atomic_load(&g_shared->filled)) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		if (atomic_load(&g_shared->stop))
			exit(0);
		nanosleep(&ts, NULL);
	}
	if ((ret = mix_engine_create(NULL, &engine)) != 0)
		st_die("read-only process: mix_engine_create: %s",
		       mix_strerror(ret));
	for (m = 0; m < opt.mailboxes && !stopping(); m++) {
		char what[256];
		snprintf(what, sizeof(what), "read-only process: "
			 "mix_index_open(%s, READONLY)", g_mb[m].dir);
		(void)check_ret(mix_index_open(engine, g_mb[m].dir,
					       MIX_OPEN_READONLY, &g_mb[m].idx),
				what);
	}
	for (i = 0; i < opt.ro_readers && !stopping(); i++, n++) {
		rr[i].id = i;
		rr[i].rng = st_seed_derive(opt.seed, 9000 + i);
		if ((ret = pthread_create(&rr[i].thread, NULL, ro_reader_main,
					  &rr[i])) != 0)
			st_die("pthread_create: %s", strerror(ret));
	}
	while (!stopping() && !atomic_load(&g_shared->stop)) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&g_failed))
		atomic_store(&g_shared->ro_failed, 1);
	atomic_store(&g_stop, 1);
	for (i = 0; i < n; i++) {
		pthread_join(rr[i].thread, NULL);
		refreshes += rr[i].refreshes;
		moved += rr[i].moved;
		iterations += rr[i].iterations;
		txd += rr[i].txd_checked;
	}
	for (m = 0; m < opt.mailboxes; m++)
		if (g_mb[m].idx)
			(void)mix_index_close(&g_mb[m].idx);
	(void)mix_engine_free(&engine);
	printf("validate_ro_refreshes %" PRIu64 " calls\n", refreshes);
	printf("validate_ro_refreshes_moved %" PRIu64 " calls\n", moved);
	printf("validate_ro_full_iterations %" PRIu64 " iterations\n",
	       iterations);
	printf("validate_ro_txn_effects_checked %" PRIu64 " txns\n", txd);
	fflush(stdout);
	free(rr);
	exit(atomic_load(&g_failed) ? 1 : 0);
}

/* Parent: start the read-only process (before any thread exists). */
static pid_t ro_start(void)
{
	pid_t pid;

	if (!opt.ro_readers)
		return 0;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		st_die("fork: %s", strerror(errno));
	if (pid == 0)
		ro_process();
	return pid;
}

/* Parent: stop it and judge its exit. */
static void ro_finish(pid_t pid)
{
	int status;

	if (!pid)
		return;
	atomic_store(&g_shared->stop, 1);
	if (waitpid(pid, &status, 0) != pid)
		violation("read-only process: waitpid: observed %s expected "
			  "its exit", strerror(errno));
	else if (WIFSIGNALED(status))
		violation("read-only process: observed death by signal %d "
			  "expected exit 0", WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		violation("read-only process: observed exit %d expected 0 "
			  "(its VIOLATION line is above)", WEXITSTATUS(status));
}

/* ---- setup, final state, reopen ----------------------------------------- */

static void engine_warning(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "# engine warning: %s\n", message);
}

static void fill(struct mailbox *mb, uint64_t *rng)
{
	uint32_t done = 0, expect_uid = 1;
	while (done < opt.messages) {
		struct mix_commit_result res;
		struct mix_txn *t;
		uint32_t i, n = opt.messages - done < 1000 ?
				opt.messages - done : 1000;
		int ret = mix_txn_begin(mb->idx, &t);
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
static void tail_commits(struct mailbox *mb, uint64_t *rng)
{
	struct committer c;
	uint64_t size, prev = 0;
	unsigned total = 0, since = 0;

	memset(&c, 0, sizeof(c));
	c.rng = st_rand(rng);
	c.last_modseq = calloc(opt.mailboxes, sizeof(*c.last_modseq));
	if (!c.last_modseq)
		st_die("out of memory");
	while (since < 40 && total < 2000 && !stopping()) {
		committer_step(&c, mb);
		size = st_file_size(mb->dir, "mix.index.log");
		since = size < prev ? 1 : since + 1;
		prev = size;
		total++;
	}
	free(c.last_modseq);
	printf("# mailbox %u tail: %u commits, %u of them in the active log\n",
	       mb->id, total, since);
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

static void capture(struct mailbox *mb, struct final_state *f)
{
	const struct mix_snap *s;
	struct mix_record r;
	struct mix_iter it;
	uint32_t i = 0;

	mix_read_lock();
	s = mix_index_snap(mb->idx);
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

/* The identity of each of the index's files (inode, size, change time;
 * all zero when absent). */
struct file_ids {
	struct stat st[5];
};

static const char *const g_crash_files[5] = {
	"mix.index", "mix.index.log", "mix.index.log.2", "mix.index.lock",
	"mix.index.log.newtmp"
};

static void file_ids(const char *dir, struct file_ids *ids)
{
	char p[4096];
	size_t i;

	memset(ids, 0, sizeof(*ids));
	for (i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, g_crash_files[i]);
		if (stat(p, &ids->st[i]) < 0)
			memset(&ids->st[i], 0, sizeof(ids->st[i]));
	}
}

static int file_ids_eq(const struct file_ids *a, const struct file_ids *b)
{
	size_t i;

	for (i = 0; i < 5; i++)
		if (a->st[i].st_ino != b->st[i].st_ino ||
		    a->st[i].st_size != b->st[i].st_size ||
		    a->st[i].st_ctim.tv_sec != b->st[i].st_ctim.tv_sec ||
		    a->st[i].st_ctim.tv_nsec != b->st[i].st_ctim.tv_nsec)
			return 0;
	return 1;
}

/* Copy the index's files as they are now into dir/crash-copy: what a
 * kill -9 would leave (everything acknowledged is in the page cache).
 * The writer is idle, but the checkpointer may be completing a rotation
 * (format.md §3.5 "A rotation in two steps": its renames move the logs),
 * so the copy is taken again until no file changed while it was made.
 * The next log (newtmp) comes too: it may hold acknowledged commits.
 * The lock file comes too: it says the writer ran in this boot, so
 * recovery knows no write was lost and keeps next_uid (format.md §2.7).
 * Returns the copy's path or NULL. */
static char *crash_copy(const char *dir)
{
	char *copy = st_subdir(dir, "crash-copy");
	struct file_ids before, after;
	int tries;
	size_t i;

	for (tries = 0; tries < 100; tries++) {
		file_ids(dir, &before);
		for (i = 0; i < 5; i++) {
			int ret = st_copy_file(dir, copy, g_crash_files[i]);
			if (ret < 0 && ret != -ENOENT) {
				violation("copying %s/%s: observed %s expected "
					  "a copy", dir, g_crash_files[i],
					  strerror(-ret));
				st_rmdir_r(copy);
				free(copy);
				return NULL;
			}
		}
		file_ids(dir, &after);
		if (file_ids_eq(&before, &after))
			return copy;
		st_rmdir_r(copy);
		free(copy);
		usleep(2000);
		copy = st_subdir(dir, "crash-copy");
	}
	violation("copying %s: observed its files changing for 100 tries "
		  "expected an idle writer", dir);
	st_rmdir_r(copy);
	free(copy);
	return NULL;
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

static void end_checks(struct mix_engine *engine, struct mailbox *mb,
		       const struct final_state *f)
{
	char *copy;

	set_phase("copying the files for the crash-recovery check");
	copy = crash_copy(mb->dir);
	if (!copy)
		return;

	set_phase("closing the index");
	if (check_ret(mix_index_close(&mb->idx), "mix_index_close") == 0) {
		set_phase("reopening after close");
		reopen_and_compare(engine, mb->dir, f, "reopen after close "
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

/* After the run, for one mailbox: tail commits, the final state, close,
 * reopen and crash recovery.  Returns its final message count. */
static uint32_t finish_mailbox(struct mix_engine *engine, struct mailbox *mb,
			       uint64_t *rng)
{
	struct final_state fin;
	uint32_t i;

	memset(&fin, 0, sizeof(fin));
	if (!atomic_load(&g_failed)) {
		set_phase("tail commits");
		tail_commits(mb, rng);
	}
	if (!atomic_load(&g_failed)) {
		set_phase("capturing the final state");
		capture(mb, &fin);
		printf("# mailbox %u final: %u messages, next_uid %u, "
		       "highest_modseq %" PRIu64 ", %u keywords\n", mb->id,
		       fin.count, fin.next_uid, fin.highest_modseq,
		       fin.kw_count);
	}
	if (!atomic_load(&g_failed))
		end_checks(engine, mb, &fin);
	for (i = 0; i < fin.kw_count; i++)
		free(fin.kw_names[i]);
	free(fin.recs);
	return fin.count;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: validate --dir DIR [--readers N] [--committers N] "
		"[--view-readers N]\n"
		"                [--hold-readers N] [--ro-readers N] [--mailboxes N] [--writers N] "
		"[--seconds S]\n"
		"                [--messages N] "
		"[--durability none|sync] [--rotate BYTES] "
		"[--full-every N]\n"
		"                [--rss-check] [--rss-at S] [--seed N] "
		"[--skip-crash-recovery]\n"
		"                [--inject-fault drop-changed|drop-new|"
		"swap-expunged|unlogged|no-rearm|\n"
		"                hold-modseq]\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "readers", required_argument, NULL, 'r' },
		{ "committers", required_argument, NULL, 'c' },
		{ "view-readers", required_argument, NULL, 'v' },
		{ "hold-readers", required_argument, NULL, 'H' },
		{ "ro-readers", required_argument, NULL, 'o' },
		{ "mailboxes", required_argument, NULL, 'M' },
		{ "writers", required_argument, NULL, 'w' },
		{ "seconds", required_argument, NULL, 's' },
		{ "messages", required_argument, NULL, 'm' },
		{ "durability", required_argument, NULL, 'D' },
		{ "rotate", required_argument, NULL, 'R' },
		{ "full-every", required_argument, NULL, 'f' },
		{ "rss-check", no_argument, NULL, 'X' },
		{ "rss-at", required_argument, NULL, 'A' },
		{ "seed", required_argument, NULL, 'S' },
		{ "skip-crash-recovery", no_argument, NULL, 'K' },
		{ "inject-fault", required_argument, NULL, 'I' },
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
			/* txdesc.committer is a byte */
			opt.committers = (unsigned)st_opt_u64("committers",
							      optarg, 1, 200);
			break;
		case 'v':
			opt.view_readers = (unsigned)st_opt_u64(
				"view-readers", optarg, 0, 1024);
			break;
		case 'H':
			opt.hold_readers = (unsigned)st_opt_u64(
				"hold-readers", optarg, 0, 1024);
			break;
		case 'o':
			opt.ro_readers = (unsigned)st_opt_u64("ro-readers",
							      optarg, 0, 256);
			break;
		case 'M':
			opt.mailboxes = (unsigned)st_opt_u64("mailboxes",
							     optarg, 1, 256);
			break;
		case 'w':
			opt.writers = (unsigned)st_opt_u64("writers", optarg,
							   1, 64);
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
		case 'X': opt.rss_check = 1; break;
		case 'A':
			opt.rss_at = st_opt_secs("rss-at", optarg, 0.1, 86400);
			break;
		case 'S': seed = optarg; break;
		case 'K': opt.skip_crash_recovery = 1; break;
		case 'I':
			for (opt.inject = INJ_HOLD_MODSEQ; opt.inject > INJ_NONE;
			     opt.inject--)
				if (!strcmp(optarg, inject_names[opt.inject]))
					break;
			if (opt.inject == INJ_NONE)
				st_die("--inject-fault: unknown kind '%s'",
				       optarg);
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc || !opt.dir) {
		usage(stderr);
		exit(2);
	}
	if (opt.rss_check && opt.seconds <= opt.rss_at)
		st_die("--rss-check: --seconds %g must be above --rss-at %g",
		       opt.seconds, opt.rss_at);
	opt.seed = st_seed_pick(seed);
}

/* The mailboxes' directories, rings (shared), shadow logs.  Before the
 * fork: the read-only process inherits them. */
static void mailboxes_init(void)
{
	size_t acked_size = opt.mailboxes * sizeof(atomic_uint_fast64_t);
	size_t rings_off = (sizeof(struct shared) + acked_size + 63) & ~63ul;
	size_t size = rings_off +
		      (size_t)opt.mailboxes * opt.committers * sizeof(struct ring);
	atomic_uint_fast64_t *acked;
	struct ring *rings;
	char *base;
	unsigned m, i;

	base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		st_die("mmap of %zu shared bytes: %s", size, strerror(errno));
	/* zero-filled: every flag, maximum, ring head and seq starts 0 */
	g_shared = (struct shared *)base;
	acked = (atomic_uint_fast64_t *)(base + sizeof(struct shared));
	rings = (struct ring *)(base + rings_off);
	g_mb = calloc(opt.mailboxes, sizeof(*g_mb));
	if (!g_mb)
		st_die("out of memory");
	for (m = 0; m < opt.mailboxes; m++) {
		struct mailbox *mb = &g_mb[m];
		char name[32];
		mb->id = m;
		snprintf(name, sizeof(name), "mbox.%u", m);
		mb->dir = opt.mailboxes == 1 ? strdup(opt.dir) :
			  st_subdir(opt.dir, name);
		mb->rings = rings + (size_t)m * opt.committers;
		mb->acked_max = &acked[m];
		mb->shadow.floor = calloc(opt.view_readers ? opt.view_readers
							   : 1,
					  sizeof(*mb->shadow.floor));
		if (!mb->dir || !mb->shadow.floor)
			st_die("out of memory");
		pthread_mutex_init(&mb->shadow.lock, NULL);
		for (i = 0; i < opt.view_readers; i++)
			atomic_init(&mb->shadow.floor[i], 0);
	}
}

/* Create the engine and open the mailboxes, each filled. */
static struct mix_engine *setup(uint64_t *rng)
{
	struct mix_engine_config cfg;
	struct mix_engine *engine = NULL;
	unsigned m;
	int ret;

	set_phase("creating the engine and the indexes");
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = opt.rotate;
	cfg.writer_threads = opt.writers;
	cfg.warning = engine_warning;
	if ((ret = mix_engine_create(&cfg, &engine)) != 0)
		st_die("mix_engine_create: %s: %s", mix_strerror(ret),
		       mix_last_error());
	g_start_ns = st_now_ns();
	for (m = 0; m < opt.mailboxes; m++) {
		struct mailbox *mb = &g_mb[m];
		if ((ret = mix_index_open(engine, mb->dir, MIX_OPEN_CREATE,
					  &mb->idx)))
			st_die("mix_index_open(%s, CREATE): %s: %s", mb->dir,
			       mix_strerror(ret), mix_last_error());
		set_phase("filling the indexes");
		fill(mb, rng);
	}
	printf("# filled %u x %u messages in %.2f s\n", opt.mailboxes,
	       opt.messages, st_secs_since(g_start_ns));
	return engine;
}

/* Messages in all mailboxes now. */
static uint64_t total_messages(void)
{
	uint64_t n = 0;
	unsigned m;
	mix_read_lock();
	for (m = 0; m < opt.mailboxes; m++)
		n += mix_snap_messages_count(mix_index_snap(g_mb[m].idx));
	mix_read_unlock();
	return n;
}

struct rss_sample {
	uint64_t rss, anon, file, heap, messages, shadow_live;
	uint32_t snapshots_live;
	double at;
};

/* Live snapshots of all mailboxes now, and the most seen since the last
 * call of rss_sample (the main loop looks every 10 ms with --rss-check:
 * the backlog of snapshots waiting for a grace period comes in bursts
 * that 10 s samples miss). */
static uint32_t g_live_peak, g_live_peak_run;

static uint32_t live_snapshots(void)
{
	uint32_t live = 0;
	unsigned m;
	for (m = 0; m < opt.mailboxes; m++) {
		struct mix_index_stats st;
		mix_index_stats(g_mb[m].idx, &st);
		live += st.snapshots_live;
	}
	if (live > g_live_peak)
		g_live_peak = live;
	if (live > g_live_peak_run)
		g_live_peak_run = live;
	return live;
}

static void rss_sample(struct rss_sample *r)
{
	unsigned m;

	memset(r, 0, sizeof(*r));
	r->at = st_secs_since(g_start_ns);
	r->rss = st_rss_bytes();
	r->anon = st_proc_status_kb("RssAnon");
	r->file = st_proc_status_kb("RssFile");
	r->heap = st_heap_in_use();
	r->messages = total_messages();
	r->snapshots_live = live_snapshots();
	for (m = 0; m < opt.mailboxes; m++) {
		pthread_mutex_lock(&g_mb[m].shadow.lock);
		r->shadow_live += g_mb[m].shadow.len - g_mb[m].shadow.start;
		pthread_mutex_unlock(&g_mb[m].shadow.lock);
	}
	printf("# at %.1f s: VmRSS %.1f MiB (anon %.1f, file %.1f), malloc in "
	       "use %.1f MiB, %" PRIu64 " messages, %u live snapshots (peak "
	       "%u since the last sample), %" PRIu64 " shadow log entries\n",
	       r->at, r->rss / 1048576.0, r->anon / 1048576.0,
	       r->file / 1048576.0, r->heap / 1048576.0, r->messages,
	       r->snapshots_live, g_live_peak, r->shadow_live);
	g_live_peak = 0;
}

/* After the threads are gone (views closed): every index comes down to
 * its current snapshot plus what waits for a grace period. */
static uint32_t check_snapshots_freed(void)
{
	uint64_t t0 = st_now_ns();
	uint32_t live;
	unsigned m;

	for (;;) {
		live = 0;
		for (m = 0; m < opt.mailboxes; m++) {
			struct mix_index_stats st;
			mix_index_stats(g_mb[m].idx, &st);
			live = st.snapshots_live > live ? st.snapshots_live
							: live;
		}
		if (live <= 2 || st_secs_since(t0) > 10)
			break;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (live > 2)
		violation("snapshots of an index 10 s after every view closed "
			  "and every reader left: observed %u live expected "
			  "<= 2 (the current one and one waiting for a grace "
			  "period)", live);
	return live;
}

struct totals {
	uint64_t commits, no_changes, appended, expunge_ops;
	uint64_t lookups, snapshots, iterations, txd, max_changes;
	uint64_t syncs, moved, sync_ns, moved_ns, full_compares, reopens;
	uint64_t wakeups, rep_expunged, rep_new, rep_changed, vtxd, waits;
};

static void sum_up(const struct reader *readers,
		   const struct committer *committers,
		   const struct vreader *vreaders, struct totals *t)
{
	unsigned i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < opt.committers; i++) {
		t->commits += committers[i].commits;
		t->no_changes += committers[i].no_changes;
		t->appended += committers[i].appended;
		t->expunge_ops += committers[i].expunge_ops;
	}
	for (i = 0; i < opt.readers; i++) {
		t->snapshots += readers[i].snapshots;
		t->lookups += readers[i].lookups;
		t->iterations += readers[i].iterations;
		t->txd += readers[i].txd_checked;
		if (readers[i].modseq_changes > t->max_changes)
			t->max_changes = readers[i].modseq_changes;
	}
	for (i = 0; i < opt.view_readers; i++) {
		const struct vreader *v = &vreaders[i];
		t->syncs += v->syncs;
		t->moved += v->moved;
		t->sync_ns += v->sync_ns;
		t->moved_ns += v->moved_ns;
		t->full_compares += v->full_compares;
		t->reopens += v->reopens;
		t->wakeups += v->wakeups;
		t->rep_expunged += v->rep_expunged;
		t->rep_new += v->rep_new;
		t->rep_changed += v->rep_changed;
		t->vtxd += v->txd_checked;
		t->waits += v->waits;
	}
}

static void start_threads(struct reader *readers, struct vreader *vreaders,
			  unsigned *nthreads_r)
{
	unsigned i, n = 0;
	int ret;

	for (i = 0; i < opt.readers && !stopping(); i++, n++) {
		readers[i].id = i;
		readers[i].full = i % 2 == 0;
		readers[i].rng = st_seed_derive(opt.seed, 1000 + i);
		if ((ret = pthread_create(&readers[i].thread, NULL, reader_main,
					  &readers[i])) != 0)
			st_die("pthread_create: %s", strerror(ret));
	}
	nthreads_r[0] = n;
	for (i = 0, n = 0; i < opt.view_readers && !stopping(); i++, n++) {
		vreaders[i].id = i;
		vreaders[i].idle = i % 2 == 1;
		vreaders[i].rng = st_seed_derive(opt.seed, 5000 + i);
		if ((ret = pthread_create(&vreaders[i].thread, NULL,
					  vreader_main, &vreaders[i])) != 0)
			st_die("pthread_create: %s", strerror(ret));
	}
	nthreads_r[1] = n;
	for (i = 0, n = 0; i < opt.committers && !stopping(); i++, n++) {
		struct committer *c = &g_committers[i];
		c->id = i;
		c->rng = st_seed_derive(opt.seed, 1 + i);
		if ((ret = pthread_create(&c->thread, NULL, committer_main,
					  c)) != 0)
			st_die("pthread_create: %s", strerror(ret));
	}
	nthreads_r[2] = n;
}

static void print_figures(const struct totals *t, double secs,
			  const struct mix_engine_stats *stats,
			  uint64_t final_messages, uint32_t live_end)
{
	printf("validate_param_readers %u threads\n", opt.readers);
	printf("validate_param_committers %u threads\n", opt.committers);
	printf("validate_param_view_readers %u threads\n", opt.view_readers);
	printf("validate_param_ro_readers %u threads\n", opt.ro_readers);
	printf("validate_param_mailboxes %u mailboxes\n", opt.mailboxes);
	printf("validate_param_writers %u threads\n", opt.writers);
	printf("validate_param_messages %u msgs/mailbox\n", opt.messages);
	printf("validate_param_rotate %" PRIu64 " bytes\n", opt.rotate);
	printf("validate_param_durability_sync %d bool\n",
	       opt.durability == MIX_DURABILITY_SYNC);
	printf("validate_seconds %.2f s\n", secs);
	printf("validate_commits %" PRIu64 " commits\n", t->commits);
	printf("validate_commits_per_sec %.0f commits/s\n", t->commits / secs);
	printf("validate_no_change_commits %" PRIu64 " commits\n",
	       t->no_changes);
	printf("validate_appended %" PRIu64 " msgs\n", t->appended);
	printf("validate_expunge_txns %" PRIu64 " txns\n", t->expunge_ops);
	printf("validate_lookups %" PRIu64 " lookups\n", t->lookups);
	printf("validate_lookups_per_sec %.0f lookups/s\n", t->lookups / secs);
	printf("validate_snapshots_seen %" PRIu64 " snapshots\n",
	       t->snapshots);
	printf("validate_full_iterations %" PRIu64 " iterations\n",
	       t->iterations);
	printf("validate_txn_effects_checked %" PRIu64 " txns\n",
	       t->txd + t->vtxd);
	printf("validate_modseq_changes_seen_max %" PRIu64 " publishes\n",
	       t->max_changes);
	printf("validate_view_syncs %" PRIu64 " syncs\n", t->syncs);
	printf("validate_view_syncs_moved %" PRIu64 " syncs\n", t->moved);
	/* the time inside mix_view_sync only (clock_gettime around it):
	 * all calls, those that moved (and built a report), the others */
	printf("validate_view_sync_mean %.0f ns\n",
	       t->syncs ? (double)t->sync_ns / t->syncs : 0.0);
	printf("validate_view_sync_moved_mean %.0f ns\n",
	       t->moved ? (double)t->moved_ns / t->moved : 0.0);
	printf("validate_view_sync_unmoved_mean %.0f ns\n",
	       t->syncs > t->moved ? (double)(t->sync_ns - t->moved_ns) /
	       (double)(t->syncs - t->moved) : 0.0);
	printf("validate_view_changes_per_moved_sync %.1f msgs\n",
	       t->moved ? (double)(t->rep_expunged + t->rep_new +
				   t->rep_changed) / (double)t->moved : 0.0);
	printf("validate_view_full_compares %" PRIu64 " syncs\n",
	       t->full_compares);
	printf("validate_view_reported_expunged %" PRIu64 " msgs\n",
	       t->rep_expunged);
	printf("validate_view_reported_new %" PRIu64 " msgs\n", t->rep_new);
	printf("validate_view_reported_changed %" PRIu64 " msgs\n",
	       t->rep_changed);
	printf("validate_view_reopens %" PRIu64 " views\n", t->reopens);
	printf("validate_watch_wakeups %" PRIu64 " wakeups\n", t->wakeups);
	printf("validate_in_flight_waits %" PRIu64 " waits\n", t->waits);
	printf("validate_engine_commits %" PRIu64 " txns\n", stats->commits);
	printf("validate_engine_batches %" PRIu64 " batches\n",
	       stats->batches);
	printf("validate_mean_batch %.2f txns/batch\n", stats->batches ?
	       (double)stats->commits / stats->batches : 0.0);
	printf("validate_fsyncs %" PRIu64 " fsyncs\n", stats->fsyncs);
	printf("validate_checkpoints %" PRIu64 " checkpoints\n",
	       stats->checkpoints);
	printf("validate_snapshots_live_after_close %u snapshots\n", live_end);
	printf("validate_final_messages %" PRIu64 " msgs\n", final_messages);
}

int main(int argc, char **argv)
{
	struct mix_engine *engine;
	struct reader *readers;
	struct vreader *vreaders;
	struct mix_engine_stats stats;
	struct rss_sample rss0, rss1, rss_tmp;
	double next_rss_print;
	struct totals tot;
	uint64_t rng, final_messages = 0;
	uint32_t live_end = 0;
	double secs;
	unsigned i, m, started[3];
	int ret, rss_taken = 0;
	pid_t ro_pid;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# seed: --seed %" PRIu64 "\n", opt.seed);
	printf("# validate: dir %s readers %u committers %u view-readers %u "
	       "hold-readers %u ro-readers %u mailboxes %u writers %u seconds %g messages %u "
	       "durability %s rotate %" PRIu64 " full-every %u%s\n", opt.dir,
	       opt.readers, opt.committers, opt.view_readers,
	       opt.hold_readers, opt.ro_readers, opt.mailboxes, opt.writers,
	       opt.seconds, opt.messages,
	       opt.durability == MIX_DURABILITY_SYNC ? "sync" : "none",
	       opt.rotate, opt.full_every, opt.rss_check ? " rss-check" : "");
	if (opt.inject)
		printf("# inject-fault %s: this run must fail\n",
		       inject_names[opt.inject]);
	rng = st_seed_derive(opt.seed, 0);
	st_mkdir(opt.dir);

	signal(SIGSEGV, crash_handler);
	signal(SIGBUS, crash_handler);
	signal(SIGFPE, crash_handler);
	signal(SIGABRT, crash_handler);
	mailboxes_init();
	ro_pid = ro_start();
	engine = setup(&rng);
	atomic_store(&g_shared->filled, 1);

	readers = calloc(opt.readers ? opt.readers : 1, sizeof(*readers));
	vreaders = calloc(opt.view_readers ? opt.view_readers : 1,
			  sizeof(*vreaders));
	g_committers = calloc(opt.committers, sizeof(*g_committers));
	if (!readers || !vreaders || !g_committers)
		st_die("out of memory");
	for (i = 0; i < opt.committers; i++) {
		g_committers[i].last_modseq = calloc(
			opt.mailboxes, sizeof(*g_committers[i].last_modseq));
		if (!g_committers[i].last_modseq)
			st_die("out of memory");
	}

	g_start_ns = st_now_ns();
	set_phase("the concurrent run");
	start_threads(readers, vreaders, started);
	hold_start();
	next_rss_print = opt.rss_at;
	while (!stopping() && st_secs_since(g_start_ns) < opt.seconds) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		if (atomic_load(&g_shared->ro_failed))
			break;
		if (opt.rss_check)
			(void)live_snapshots();
		if (opt.rss_check && !rss_taken &&
		    st_secs_since(g_start_ns) >= opt.rss_at) {
			rss_sample(&rss0);
			rss_taken = 1;
			next_rss_print += 10;
		} else if (opt.rss_check && rss_taken &&
			   st_secs_since(g_start_ns) >= next_rss_print &&
			   st_secs_since(g_start_ns) + 1 < opt.seconds) {
			/* the trend, printed every 10 s */
			rss_sample(&rss_tmp);
			next_rss_print += 10;
		}
	}
	if (opt.rss_check && rss_taken)
		rss_sample(&rss1);
	atomic_store(&g_stop, 1);
	ro_finish(ro_pid);
	for (i = 0; i < started[2]; i++)
		pthread_join(g_committers[i].thread, NULL);
	for (i = 0; i < started[1]; i++)
		pthread_join(vreaders[i].thread, NULL);
	hold_join();
	for (i = 0; i < started[0]; i++)
		pthread_join(readers[i].thread, NULL);
	secs = st_secs_since(g_start_ns);
	sum_up(readers, g_committers, vreaders, &tot);

	/* the threads are gone; the end checks run in this thread and
	 * stop at a violation (which sets g_stop again) */
	if (!atomic_load(&g_failed)) {
		atomic_store(&g_stop, 0);
		set_phase("waiting for snapshots to be freed");
		live_end = check_snapshots_freed();
	}
	for (m = 0; m < opt.mailboxes; m++)
		final_messages += finish_mailbox(engine, &g_mb[m], &rng);
	set_phase("freeing the engine");
	for (m = 0; m < opt.mailboxes; m++)
		if (g_mb[m].idx)
			(void)mix_index_close(&g_mb[m].idx);
	mix_engine_stats(engine, &stats);
	if ((ret = mix_engine_free(&engine)) != 0)
		violation("mix_engine_free: observed %d (%s) expected 0", ret,
			  mix_strerror(ret));

	/* Figures.  The mean batch (transactions per published batch) comes
	 * from the engine's counters, sampled around the whole run. */
	print_figures(&tot, secs, &stats, final_messages, live_end);
	hold_figures();
	if (opt.rss_check && rss_taken) {
		double ratio = (double)rss1.rss / (double)rss0.rss;
		printf("validate_rss_at_%.0fs %" PRIu64 " bytes\n", rss0.at,
		       rss0.rss);
		printf("validate_rss_at_%.0fs %" PRIu64 " bytes\n", rss1.at,
		       rss1.rss);
		printf("validate_rss_ratio %.3f ratio\n", ratio);
		printf("validate_messages_at_%.0fs %" PRIu64 " msgs\n", rss0.at,
		       rss0.messages);
		printf("validate_messages_at_%.0fs %" PRIu64 " msgs\n", rss1.at,
		       rss1.messages);
		printf("validate_malloc_in_use_at_%.0fs %" PRIu64 " bytes\n",
		       rss0.at, rss0.heap);
		printf("validate_malloc_in_use_at_%.0fs %" PRIu64 " bytes\n",
		       rss1.at, rss1.heap);
		printf("validate_snapshots_live_peak %u snapshots\n",
		       g_live_peak_run);
		if (ratio > 1.5)
			violation("VmRSS at %.0f s vs at %.0f s of steady load: "
				  "observed %.3fx (%" PRIu64 " vs %" PRIu64
				  " bytes) expected <= 1.5x", rss1.at, rss0.at,
				  ratio, rss1.rss, rss0.rss);
	}
	printf("validate_violations %u violations\n",
	       atomic_load(&g_violations));

	for (m = 0; m < opt.mailboxes; m++) {
		free(g_mb[m].dir);
		free(g_mb[m].shadow.e);
		free(g_mb[m].shadow.floor);
		pthread_mutex_destroy(&g_mb[m].shadow.lock);
	}
	for (i = 0; i < opt.committers; i++)
		free(g_committers[i].last_modseq);
	free(g_mb);
	free(g_committers);
	free(readers);
	free(vreaders);
	return atomic_load(&g_failed) ? 1 : 0;
}
