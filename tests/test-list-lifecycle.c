/*
 * Mailbox list index lifecycles (engine/mlist*.c, docs/mailbox-list.md
 * "Lifecycle test"): the model of tests/test-list.c (names -> stored
 * flags and ids, the rules of mailbox-list.md "Changes" written again in
 * the simplest way), driven through what a server's life does to a list
 * rather than through operations alone:
 *
 * - random changes (create with placeholder parents, delete, rename of
 *   subtrees and of INBOX, subscribe, special-use, storage sync) on a
 *   list opened with MIX_DURABILITY_SYNC or NONE (drawn at every open);
 * - close and reopen, idle opens (open + close with nothing changed),
 *   a MIX_OPEN_READONLY open beside the writer, which must equal the
 *   model, follow a few more changes with mix_list_refresh, and refuse
 *   changes;
 * - crashes: a child process opens the list (either durability),
 *   maybe attaches a mailbox and appends to it, then makes changes and
 *   acknowledges each one on a pipe; the parent kills it with SIGKILL
 *   after a random number of acknowledgements (or it _exits without a
 *   close).  The reopened list must be the model after every
 *   acknowledged change, plus possibly the one in flight, whole;
 * - mailboxes attached with mix_list_attach that take commits and are
 *   then detached, closed with the list, or crashed: a cleanly detached
 *   mailbox's STATUS equals its index; a crashed one is INDOUBT until
 *   mix_list_refresh_status, which makes it exact.
 *
 * After every step: every entry (children walk) and every lookup equal
 * the model (names, ids, derived flags, parents through the walk), the
 * list opens (never MIX_ECORRUPT), and no id is ever given twice (the
 * list's next id stays above every id any acknowledged state held).
 * Seen vs expected printed on failure.  MIX_SEED replays, MIX_TEST_SCALE
 * runs more steps.  Crash children need fork among threads: skipped
 * under ThreadSanitizer and ASan (as test-list).  Single test thread
 * plus the engine's writer (and the child processes).
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#include "mix/mix.h"
#include "mix/list.h"
#include "tap.h"
#include "testutil.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FORK_SKIP 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define FORK_SKIP 1
#endif
#endif

#define MAXN 600
#include "list-model.h"

static char *base;
static uint32_t max_id_seen;     /* highest id of any state seen */

/* ---- comparing the list with the model -------------------------------- */

/* 0 when the list equals the model; else the first difference in why. */
static int differs(struct mix_list *l, char *why, size_t size)
{
	struct mix_list_info info;
	int i;

	G1.n = 0;
	if (all_rec(l, 0, &G1) != 0) {
		snprintf(why, size, "children walk failed: %s",
			 mix_last_error());
		return 1;
	}
	G2.n = 0;
	for (i = 0; i < mn; i++)
		snprintf(G2.lines[G2.n++], 160, "%.127s %x %u", M[i].name,
			 mflags(i), M[i].id);
	qsort(G1.lines, (size_t)G1.n, 160, line_cmp);
	qsort(G2.lines, (size_t)G2.n, 160, line_cmp);
	for (i = 0; i < G1.n || i < G2.n; i++) {
		const char *a = i < G1.n ? G1.lines[i] : "(none)";
		const char *b = i < G2.n ? G2.lines[i] : "(none)";
		if (strcmp(a, b) != 0) {
			snprintf(why, size, "entries: seen '%s' expected '%s' "
				 "(%d vs %d entries)", a, b, G1.n, G2.n);
			return 1;
		}
	}
	for (i = 0; i < mn; i++) {
		char p[128];
		int r = mix_list_lookup(l, M[i].name, strlen(M[i].name), &info);
		int pi;
		if (r != 1 || info.id != M[i].id || info.flags != mflags(i)) {
			snprintf(why, size, "lookup %s: ret %d id %u flags %x, "
				 "expected 1 %u %x", M[i].name, r, info.id,
				 info.flags, M[i].id, mflags(i));
			return 1;
		}
		parent_of(M[i].name, p);
		pi = p[0] ? mfind(p) : -1;
		if (info.parent != (pi >= 0 ? M[pi].id : 0)) {
			snprintf(why, size, "lookup %s: parent %u, expected "
				 "%u", M[i].name, info.parent,
				 pi >= 0 ? M[pi].id : 0);
			return 1;
		}
		if (M[i].id > max_id_seen)
			max_id_seen = M[i].id;
	}
	return 0;
}

static void compare(struct mix_list *l)
{
	char why[512];
	if (differs(l, why, sizeof(why)))
		fail("%s", why);
}

/* ---- random changes ------------------------------------------------- */

static void m_sync(char (*n)[128], int count)
{
	static char gone[MAXN][128];
	int ng = 0, i, j;

	for (i = 0; i < count; i++)
		m_make(n[i]);
	for (i = 0; i < mn; i++) {
		if (M[i].flags & NOTMBOX)
			continue;
		for (j = 0; j < count && strcmp(n[j], M[i].name); j++)
			;
		if (j == count)
			snprintf(gone[ng++], 128, "%.127s", M[i].name);
	}
	qsort(gone, (size_t)ng, 128, depth_cmp);
	for (i = 0; i < ng; i++)
		if ((j = mfind(gone[i])) >= 0 && !(M[j].flags & NOTMBOX))
			m_vanish(j);
}

static int sync_op(struct mix_list *l, uint64_t *rng)
{
	static char n[MAXN + 1][128];
	struct snames s = { n, 0, 0 };
	int r = 0;

	for (int i = 0; i < mn; i++)
		if (!(M[i].flags & NOTMBOX) && tu_rand_below(rng, 10) < 8)
			snprintf(n[s.count++], 128, "%.127s", M[i].name);
	rand_name(rng, n[s.count++], 3);
	qsort(n, (size_t)s.count, 128, line_cmp);
	if (l != NULL)
		r = mix_list_sync(l, NULL, 0, snext, &s, NULL);
	m_sync(n, s.count);
	return r;
}

/* One random change on the list and the model (the model only when l is
 * NULL: the replay of what a crashed child did).  Returns 0, or 1 when
 * the list's answer differs from the model's. */
static int random_op(struct mix_list *l, uint64_t *rng)
{
	char a[128], b[128];
	int k = (int)tu_rand_below(rng, 21), r = 0, w;
	uint32_t id = 0;

	rand_name(rng, a, 3);
	rand_name(rng, b, 3);
	if (k <= 6) {
		snprintf(lastop, sizeof(lastop), "create %s", a);
		if (l)
			r = mix_list_create(l, a, strlen(a), NULL, &id);
		w = m_make(a);
	} else if (k <= 9) {
		snprintf(lastop, sizeof(lastop), "delete %s", a);
		if (l)
			r = mix_list_delete(l, a, strlen(a));
		w = m_delete(a);
	} else if (k <= 13) {
		if (tu_rand_below(rng, 6) == 0)
			strcpy(a, "INBOX");
		snprintf(lastop, sizeof(lastop), "rename %.90s %.90s", a, b);
		if (l)
			r = mix_list_rename(l, a, strlen(a), b, strlen(b),
					    NULL, &id);
		w = m_rename(a, b);
	} else if (k <= 16) {
		int on = (int)tu_rand_below(rng, 2);
		snprintf(lastop, sizeof(lastop), "%ssubscribe %s",
			 on ? "" : "un", a);
		if (l)
			r = mix_list_subscribe(l, a, strlen(a), on);
		w = m_subscribe(a, on);
	} else if (k <= 18) {
		uint32_t su = tu_rand_below(rng, 3) == 0 ? 0 :
			      MIX_LIST_ALL << tu_rand_below(rng, 7);
		snprintf(lastop, sizeof(lastop), "special-use %s %x", a, su);
		if (l)
			r = mix_list_set_special_use(l, a, strlen(a), su);
		w = m_special(a, su);
	} else {
		snprintf(lastop, sizeof(lastop), "sync");
		r = sync_op(l, rng);
		w = 0;
	}
	if (l != NULL && r != w) {
		fail("%s returned %d (%s), expected %d", lastop, r,
		     r ? mix_last_error() : "", w);
		return 1;
	}
	return 0;
}

/* ---- opening --------------------------------------------------------- */

static const char *dur_name(enum mix_durability d)
{
	return d == MIX_DURABILITY_NONE ? "NONE" : "SYNC";
}

static char *list_dir(void)
{
	static char p[4200];
	snprintf(p, sizeof(p), "%s/list", base);
	return p;
}

/* Open the list (never MIX_ECORRUPT) and take the next id from it: it
 * must be above every id any state ever held. */
static struct mix_list *open_list(struct mix_engine *e,
				  enum mix_durability d)
{
	struct mix_list_config cfg;
	struct mix_list *l;
	uint32_t nu;
	int ret;

	mix_list_config_init(&cfg);
	cfg.durability = d;
	if ((ret = mix_list_open(e, list_dir(), &cfg, &l)) < 0) {
		fail("open (%s): %s (%s)", dur_name(d), mix_strerror(ret),
		     mix_last_error());
		BAIL("the list does not open");
	}
	mix_read_lock();
	nu = mix_snap_next_uid(mix_index_snap(mix_list_index(l)));
	mix_read_unlock();
	if (nu <= max_id_seen || nu < next_id)
		fail("after open the next id is %u, expected above %u and "
		     "not below %u (ids never reused)", nu, max_id_seen,
		     next_id);
	next_id = nu;
	return l;
}

/* ---- mailboxes and the STATUS cache ------------------------------------ */

/* The mailboxes the test made, by list id: their directory exists and
 * only attached sessions wrote them (the contract of the cache). */
#define MAXBOX 64
static uint32_t boxes[MAXBOX];
static int nboxes;

static char *box_dir(uint32_t id)
{
	static char p[4200];
	snprintf(p, sizeof(p), "%s/mb-%u", base, id);
	return p;
}

static void box_note(uint32_t id)
{
	for (int i = 0; i < nboxes; i++)
		if (boxes[i] == id)
			return;
	if (nboxes < MAXBOX)
		boxes[nboxes++] = id;
}

/* A random mailbox of the model (not a placeholder), or 0. */
static uint32_t pick_mailbox(uint64_t *rng)
{
	int cand[MAXN], nc = 0;
	for (int i = 0; i < mn; i++)
		if (!(M[i].flags & NOTMBOX))
			cand[nc++] = i;
	return nc ? M[cand[tu_rand_below(rng, (uint32_t)nc)]].id : 0;
}

static int model_has_mailbox(uint32_t id)
{
	for (int i = 0; i < mn; i++)
		if (M[i].id == id)
			return !(M[i].flags & NOTMBOX);
	return 0;
}

/* n appends (random \Seen) and a flag change, with durability d. */
static int box_commit(struct mix_index *ix, uint64_t *rng, int n,
		      enum mix_durability d)
{
	struct mix_txn *t;
	struct mix_uid_range r = { 1, UINT32_MAX };
	int ret;

	if ((ret = mix_txn_begin(ix, &t)) < 0)
		return ret;
	for (int i = 0; i < n && ret == 0; i++)
		ret = mix_txn_append(t, tu_rand_below(rng, 2) ? MIX_FLAG_SEEN
							      : 0, NULL, NULL);
	if (ret == 0 && tu_rand_below(rng, 3) == 0)
		ret = mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_FLAGGED);
	if (ret < 0) {
		mix_txn_abort(&t);
		return ret;
	}
	return mix_txn_commit(&t, d, NULL);
}

/* The status a mailbox's index says (as mix_list_attach computes it). */
static void snap_status(struct mix_index *ix, struct mix_list_status *st)
{
	const struct mix_snap *s;
	struct mix_snap_counts c;

	memset(st, 0, sizeof(*st));
	mix_read_lock();
	s = mix_index_snap(ix);
	mix_snap_counts(s, &c);
	st->messages = mix_snap_messages_count(s);
	st->unseen = st->messages - c.seen;
	st->uidnext = mix_snap_next_uid(s);
	st->uidvalidity = mix_snap_uid_validity(s);
	st->highestmodseq = mix_snap_highest_modseq(s);
	mix_read_unlock();
}

static int status_differs(const struct mix_list_status *a,
			  const struct mix_list_status *b, char *why,
			  size_t size)
{
	if (a->messages == b->messages && a->unseen == b->unseen &&
	    a->uidnext == b->uidnext && a->uidvalidity == b->uidvalidity &&
	    a->highestmodseq == b->highestmodseq)
		return 0;
	snprintf(why, size, "messages %u unseen %u uidnext %u uidvalidity %u "
		 "hms %llu, expected %u %u %u %u %llu", a->messages, a->unseen,
		 a->uidnext, a->uidvalidity,
		 (unsigned long long)a->highestmodseq, b->messages, b->unseen,
		 b->uidnext, b->uidvalidity,
		 (unsigned long long)b->highestmodseq);
	return 1;
}

/* Every noted mailbox that is still one: VALID, and exact unless
 * INDOUBT; an INDOUBT one is refreshed and must then be exact and
 * without the mark. */
static void check_boxes(struct mix_engine *e, struct mix_list *l)
{
	struct mix_list_status st, want;
	struct mix_index *ix;
	char why[300];
	int ret;

	for (int i = 0; i < nboxes; i++) {
		uint32_t id = boxes[i];
		if (!model_has_mailbox(id))
			continue;
		if (mix_list_status(l, id, &st) != 1) {
			fail("status of mailbox %u: none", id);
			continue;
		}
		if (!(st.flags & MIX_LIST_STATUS_VALID)) {
			fail("status of mailbox %u: flags %x, expected VALID "
			     "(it was attached)", id, st.flags);
			continue;
		}
		if ((ret = mix_index_open(e, box_dir(id), 0, &ix)) < 0) {
			fail("open mailbox %u: %s (%s)", id, mix_strerror(ret),
			     mix_last_error());
			continue;
		}
		snap_status(ix, &want);
		if (!(st.flags & MIX_LIST_STATUS_INDOUBT) &&
		    status_differs(&st, &want, why, sizeof(why)))
			fail("status of mailbox %u (not in doubt): %s", id,
			     why);
		if (st.flags & MIX_LIST_STATUS_INDOUBT) {
			if ((ret = mix_list_refresh_status(l, id, ix)) < 0)
				fail("refresh %u: %s", id, mix_last_error());
			mix_list_status(l, id, &st);
			if (st.flags & MIX_LIST_STATUS_INDOUBT)
				fail("status of mailbox %u: still INDOUBT "
				     "after refresh", id);
			if (status_differs(&st, &want, why, sizeof(why)))
				fail("status of mailbox %u after refresh: %s",
				     id, why);
		}
		mix_index_close(&ix);
	}
}

/* Attach a random mailbox, commit to it, and end the session in one of
 * three ways: detach then close; close the list (which detaches); or
 * random list changes while attached, then detach.  Returns the list,
 * maybe reopened. */
static struct mix_list *attach_cycle(struct mix_engine *e, struct mix_list *l,
				     uint64_t *rng)
{
	struct mix_list_status st, want;
	struct mix_index *ix;
	uint32_t id = pick_mailbox(rng);
	int how = (int)tu_rand_below(rng, 3), ret;
	char why[300];

	if (id == 0)
		return l;
	snprintf(lastop, sizeof(lastop), "attach %u (end %d)", id, how);
	mkdir(box_dir(id), 0700);
	if ((ret = mix_index_open(e, box_dir(id), MIX_OPEN_CREATE, &ix)) < 0) {
		fail("open mailbox %u: %s", id, mix_last_error());
		return l;
	}
	if ((ret = mix_list_attach(l, id, ix)) < 0) {
		fail("attach %u: %s (%s)", id, mix_strerror(ret),
		     mix_last_error());
		mix_index_close(&ix);
		return l;
	}
	box_note(id);
	for (int k = (int)tu_rand_below(rng, 3) + 1; k > 0; k--)
		if ((ret = box_commit(ix, rng, 1 + (int)tu_rand_below(rng, 4),
				      tu_rand_below(rng, 2) ?
				      MIX_DURABILITY_SYNC :
				      MIX_DURABILITY_NONE)) < 0)
			fail("commit to mailbox %u: %s", id, mix_last_error());
	snap_status(ix, &want);
	if (mix_list_status(l, id, &st) != 1 ||
	    !(st.flags & MIX_LIST_STATUS_LIVE) ||
	    status_differs(&st, &want, why, sizeof(why)))
		fail("live status of %u (flags %x): %s", id, st.flags,
		     why[0] ? why : "not LIVE");
	if (tu_rand_below(rng, 2) && (ret = mix_list_flush(l)) < 0)
		fail("flush: %s", mix_last_error());
	if (how == 1) {
		enum mix_durability d = tu_rand_below(rng, 2) ?
					MIX_DURABILITY_SYNC :
					MIX_DURABILITY_NONE;
		if ((ret = mix_list_close(&l)) < 0)
			fail("list close with %u attached: %s", id,
			     mix_last_error());
		l = open_list(e, d);
	} else {
		if (how == 2)
			for (int k = 0; k < 3; k++)
				random_op(l, rng);
		if ((ret = mix_list_detach(l, id)) < 0)
			fail("detach %u: %s", id, mix_last_error());
	}
	if ((ret = mix_index_close(&ix)) < 0)
		fail("close mailbox %u after detach: %s", id,
		     mix_last_error());
	if (model_has_mailbox(id) &&
	    (mix_list_status(l, id, &st) != 1 ||
	     (st.flags & MIX_LIST_STATUS_INDOUBT) ||
	     status_differs(&st, &want, why, sizeof(why))))
		fail("status of %u after a clean detach (flags %x): %s", id,
		     st.flags, why[0] ? why : "in doubt");
	return l;
}

/* ---- crashes ---------------------------------------------------------- */

/* The child: open the list with durability d, maybe attach a mailbox
 * and commit to it ('A' once acknowledged), then nops random changes,
 * each acknowledged with 'x' ('F' when the list's answer was not the
 * model's); then _exit without closing, unless killed first. */
static void crash_child(int fd, enum mix_durability d, uint64_t crng,
			uint32_t attach_id, int nops)
{
	struct mix_list_config cfg;
	struct mix_engine *ce;
	struct mix_list *cl;
	struct mix_index *ix;

	mix_list_config_init(&cfg);
	cfg.durability = d;
	if (mix_engine_create(NULL, &ce) < 0 ||
	    mix_list_open(ce, list_dir(), &cfg, &cl) < 0)
		_exit(3);
	if (attach_id) {
		uint64_t r2 = crng ^ 0x5555;
		mkdir(box_dir(attach_id), 0700);
		if (mix_index_open(ce, box_dir(attach_id), MIX_OPEN_CREATE,
				   &ix) < 0 ||
		    mix_list_attach(cl, attach_id, ix) < 0 ||
		    box_commit(ix, &r2, 3, MIX_DURABILITY_SYNC) < 0)
			_exit(5);
		if (write(fd, "A", 1) != 1)
			_exit(4);
	}
	for (int i = 0; i < nops; i++) {
		int bad = random_op(cl, &crng);
		if (write(fd, bad ? "F" : "x", 1) != 1)
			_exit(4);
		if (attach_id && i % 3 == 0) {
			uint64_t r2 = crng ^ (uint64_t)i;
			box_commit(ix, &r2, 1, d);
		}
	}
	_exit(0);
}

/* Close the list, let a child change it and die, reopen it: the state
 * must be the model after every acknowledged change, or after one more
 * (the one in flight), whole. */
static __attribute__((unused)) struct mix_list *
crash_cycle(struct mix_engine **ep, struct mix_list *l, uint64_t *rng)
{
	static struct model before, after_k, more;
	enum mix_durability d = tu_rand_below(rng, 2) ? MIX_DURABILITY_SYNC
						       : MIX_DURABILITY_NONE;
	uint64_t crng = tu_rand(rng);
	int nops = 2 + (int)tu_rand_below(rng, 10);
	int kill_after = (int)tu_rand_below(rng, (uint32_t)nops + 3);
	uint32_t attach_id = tu_rand_below(rng, 2) ? pick_mailbox(rng) : 0;
	int fd[2], st, acked = 0, attached = 0, bad = 0, killed = 0;
	char c, why1[512], why2[512];
	pid_t pid;

	mix_list_close(&l);
	mix_engine_free(ep);
	if (pipe(fd) < 0)
		BAIL("pipe");
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		close(fd[0]);
		crash_child(fd[1], d, crng, attach_id, nops);
	}
	close(fd[1]);
	/* read kill_after acknowledgements, then kill (the child may be in
	 * the middle of a change, or done) */
	while (acked < kill_after && read(fd[0], &c, 1) == 1) {
		if (c == 'A')
			attached = 1;
		else
			acked++, bad += c == 'F';
	}
	if (acked == kill_after && kill_after < nops) {
		kill(pid, SIGKILL);
		killed = 1;
	}
	waitpid(pid, &st, 0);
	while (read(fd[0], &c, 1) == 1) {   /* acknowledged before the kill */
		if (c == 'A')
			attached = 1;
		else
			acked++, bad += c == 'F';
	}
	close(fd[0]);
	snprintf(lastop, sizeof(lastop), "crash: child (%s, %d changes, "
		 "attach %u) %s after %d acknowledged", dur_name(d), nops,
		 attach_id, killed ? "SIGKILLed" : "exited", acked);
	if (!killed && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		fail("the crash child exited with status %d", st);
	if (bad)
		fail("%d of the child's changes answered otherwise than the "
		     "model", bad);
	if (attached)
		box_note(attach_id);
	if (mix_engine_create(NULL, ep) < 0)
		BAIL("engine");
	/* the model after the acknowledged changes, and after one more */
	before = MD;
	for (int i = 0; i < acked; i++)
		random_op(NULL, &crng);
	after_k = MD;
	if (acked < nops)
		random_op(NULL, &crng);
	more = MD;
	MD = after_k;
	l = open_list(*ep, tu_rand_below(rng, 2) ? MIX_DURABILITY_SYNC
						  : MIX_DURABILITY_NONE);
	{
		uint32_t nid = next_id;
		MD = after_k;
		next_id = nid;
		if (differs(l, why1, sizeof(why1))) {
			if (acked < nops) {
				MD = more;
				next_id = nid;
			}
			if (acked == nops || differs(l, why2, sizeof(why2))) {
				fail("after the crash the list is neither the "
				     "model after the %d acknowledged changes "
				     "(%s) nor after one more (%s)", acked,
				     why1, acked < nops ? why2 : "-");
				MD = after_k;
				next_id = nid;
			}
		}
	}
	(void)before;
	if (attached && model_has_mailbox(attach_id)) {
		struct mix_list_status s;
		if (mix_list_status(l, attach_id, &s) != 1 ||
		    (s.flags & (MIX_LIST_STATUS_VALID |
				MIX_LIST_STATUS_INDOUBT)) !=
		    (MIX_LIST_STATUS_VALID | MIX_LIST_STATUS_INDOUBT))
			fail("status of mailbox %u attached by the crashed "
			     "child: flags %x, expected VALID|INDOUBT",
			     attach_id, s.flags);
	}
	return l;
}

/* A crash inside the very first open of a new list: the child is killed
 * at a random moment while creating it; the list must open after. */
static __attribute__((unused)) void crash_create(uint64_t *rng)
{
	struct mix_engine *e;
	struct mix_list *l;
	char dir[4300];
	pid_t pid;
	int st, ret;

	snprintf(dir, sizeof(dir), "%s/fresh", base);
	tu_rmdir_r(dir);
	mkdir(dir, 0700);
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		struct mix_engine *ce;
		struct mix_list *cl;
		if (mix_engine_create(NULL, &ce) < 0 ||
		    mix_list_open(ce, dir, NULL, &cl) < 0)
			_exit(3);
		mix_list_create(cl, "INBOX", 5, NULL, NULL);
		_exit(0);
	}
	usleep(tu_rand_below(rng, 3000));
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	snprintf(lastop, sizeof(lastop), "crash inside the first open");
	if (mix_engine_create(NULL, &e) < 0)
		BAIL("engine");
	ret = mix_list_open(e, dir, NULL, &l);
	if (ret == MIX_ENOTFOUND) {
		mix_engine_free(&e);
		return;
	}
	if (ret < 0)
		fail("a list whose creation was killed does not open: %s "
		     "(%s)", mix_strerror(ret), mix_last_error());
	else {
		if ((ret = mix_list_create(l, "x", 1, NULL, NULL)) < 0)
			fail("create in a list whose creation was killed: %s",
			     mix_last_error());
		mix_list_close(&l);
	}
	mix_engine_free(&e);
}

/* ---- the test ---------------------------------------------------------- */

static void lifecycle(uint64_t seed, long steps)
{
	struct mix_engine *e;
	struct mix_list *l, *ro;
	uint64_t rng = seed;
	uint32_t id;
	long crashes = 0, attaches = 0, reopens = 0, idles = 0;

	base = tu_tmpdir("list-life");
	mkdir(list_dir(), 0700);
	if (mix_engine_create(NULL, &e) < 0)
		BAIL("engine: %s", mix_last_error());
	l = open_list(e, MIX_DURABILITY_SYNC);
	if (mix_list_create(l, "INBOX", 5, NULL, &id) < 0)
		BAIL("create INBOX: %s", mix_last_error());
	next_id = id;
	m_make("INBOX");
	for (step = 1; step <= steps && nfail == 0; step++) {
		uint32_t ev = tu_rand_below(&rng, 100);
		if (ev < 70) {
			random_op(l, &rng);
		} else if (ev < 77) {
			snprintf(lastop, sizeof(lastop), "reopen");
			mix_list_close(&l);
			l = open_list(e, tu_rand_below(&rng, 2) ?
					 MIX_DURABILITY_SYNC :
					 MIX_DURABILITY_NONE);
			reopens++;
		} else if (ev < 80) {
			uint32_t nu;
			snprintf(lastop, sizeof(lastop), "idle opens");
			mix_list_close(&l);
			for (int k = 0; k < 3; k++) {
				l = open_list(e, MIX_DURABILITY_NONE);
				mix_list_close(&l);
			}
			l = open_list(e, MIX_DURABILITY_SYNC);
			mix_read_lock();
			nu = mix_snap_next_uid(mix_index_snap(mix_list_index(l)));
			mix_read_unlock();
			(void)nu;
			idles++;
		} else if (ev < 82) {
			struct mix_list_config cfg;
			int ret;
			snprintf(lastop, sizeof(lastop), "read-only open");
			mix_list_config_init(&cfg);
			cfg.open_flags = MIX_OPEN_READONLY;
			ro = NULL;
			ret = mix_list_open(e, list_dir(), &cfg, &ro);
			if (ret == 0) {
				char why[512];
				uint32_t rid = 0;
				int r2;
				if (differs(ro, why, sizeof(why)))
					fail("read-only list: %s", why);
				/* the writer moves on; the follower
				 * refreshes and must equal the model again */
				for (int k = 0; k < 3; k++)
					random_op(l, &rng);
				if ((r2 = mix_list_refresh(ro)) < 0)
					fail("read-only refresh: %s (%s)",
					     mix_strerror(r2),
					     mix_last_error());
				else if (differs(ro, why, sizeof(why)))
					fail("read-only list after refresh: "
					     "%s", why);
				if ((r2 = mix_list_create(ro, "ro-x", 4, NULL,
							  &rid)) != MIX_EINVAL)
					fail("a change on a read-only list "
					     "returned %d, expected MIX_EINVAL",
					     r2);
				if ((r2 = mix_list_refresh(l)) != MIX_EINVAL)
					fail("refresh of the writer's list "
					     "returned %d, expected MIX_EINVAL",
					     r2);
				mix_list_close(&ro);
			} else {
				fail("read-only open: %s (%s), expected "
				     "success", mix_strerror(ret),
				     mix_last_error());
			}
		} else if (ev < 92) {
			l = attach_cycle(e, l, &rng);
			attaches++;
		} else if (ev < 96) {
#ifndef FORK_SKIP
			crash_create(&rng);
#endif
		} else {
#ifndef FORK_SKIP
			l = crash_cycle(&e, l, &rng);
			crashes++;
#endif
		}
		compare(l);
		if (ev >= 70 && ev < 82)
			check_boxes(e, l);
	}
	snprintf(lastop, sizeof(lastop), "final reopen");
	mix_list_close(&l);
	l = open_list(e, MIX_DURABILITY_SYNC);
	compare(l);
	check_boxes(e, l);
	ok(nfail == 0, "lifecycle: %ld steps (%ld reopens, %ld idle rounds, "
	   "%ld attach sessions, %ld crashes) agree with the model (%d "
	   "entries, %d mailboxes with a status)", step - 1, reopens, idles,
	   attaches, crashes, mn, nboxes);
	mix_list_close(&l);
	mix_engine_free(&e);
	tu_rmdir_r(base);
	free(base);
}

int main(void)
{
	uint64_t seed = tu_seed();
	long steps = (long)(400 * tu_scale());

#ifdef FORK_SKIP
	diag("crash children skipped (fork among threads under a sanitizer)");
#endif
	lifecycle(seed, steps);
	return tap_done();
}
