/*
 * Mailbox list index (engine/mlist*.c, docs/mailbox-list.md): a model
 * test.  Random creates, deletes, renames of subtrees (INBOX included),
 * subscriptions and special-use changes go to the list and to an
 * in-memory reference (names -> flags and ids, with the rules of
 * mailbox-list.md "Changes" written again in the simplest way); after
 * every step every name is looked up, every entry is enumerated with its
 * derived flags and id, and LIST patterns (with and without SUBSCRIBED /
 * RECURSIVEMATCH selection) are compared with a reference matcher over
 * the model.  The list is closed and reopened, and crashed (a child
 * process changes it and dies with _exit) and recovered, along the way.
 * MIX_SEED replays; MIX_TEST_SCALE runs more steps.
 */
#include <ctype.h>
#include <errno.h>
#include <sys/wait.h>

#include "mix/mix.h"
#include "mix/list.h"
#include "tap.h"
#include "testutil.h"

/* The crash children need fork() among mix's threads: skipped where
 * testutil.h defines TU_FORK_SKIP_WHY (TSan, ASan). */

#define MAXN 2000
#include "list-model.h"

/* ---- reference LIST ------------------------------------------------- */

static int inbox_first(const char *n)
{
	return strncmp(n, "INBOX", 5) == 0 && (n[5] == 0 || n[5] == SEP);
}

static int rmatch(const char *p, const char *n, size_t pos, int inbox)
{
	if (*p == 0)
		return *n == 0;
	if (*p == '*') {
		for (size_t k = 0;; k++) {
			if (rmatch(p + 1, n + k, pos + k, inbox))
				return 1;
			if (n[k] == 0)
				return 0;
		}
	}
	if (*p == '%') {
		for (size_t k = 0;; k++) {
			if (rmatch(p + 1, n + k, pos + k, inbox))
				return 1;
			if (n[k] == 0 || n[k] == SEP)
				return 0;
		}
	}
	if (*n == 0)
		return 0;
	if (inbox && pos < 5 ? tolower((unsigned char)*p) ==
				       tolower((unsigned char)*n)
			     : *p == *n)
		return rmatch(p + 1, n + 1, pos + 1, inbox);
	return 0;
}

static int ref_match(const char *p, const char *n)
{
	return rmatch(p, n, 0, inbox_first(n));
}

static int selected(int i, unsigned sel)
{
	if ((sel & MIX_LIST_SELECT_SUBSCRIBED) &&
	    !(M[i].flags & MIX_LIST_SUBSCRIBED))
		return 0;
	if ((sel & MIX_LIST_SELECT_SPECIAL_USE) &&
	    !(M[i].flags & MIX_LIST_SPECIAL_USE))
		return 0;
	return 1;
}

static void ref_list(const char *pat, unsigned sel, struct got *g)
{
	size_t pl = strlen(pat);
	int pct = pl > 0 && pat[pl - 1] == '%';

	g->n = 0;
	for (int i = 0; i < mn; i++) {
		uint32_t extra = 0;
		if (!ref_match(pat, M[i].name))
			continue;
		if (sel) {
			if (!selected(i, sel)) {
				int ci = 0;
				if (sel & MIX_LIST_SELECT_RECURSIVEMATCH)
					for (int j = 0; j < mn && !ci; j++)
						ci = is_under(M[j].name,
							      M[i].name) &&
						     selected(j, sel) &&
						     !ref_match(pat, M[j].name);
				if (!ci)
					continue;
				extra = MIX_LIST_CHILDINFO;
			}
		} else if ((M[i].flags & MIX_LIST_NONEXISTENT) &&
			   !(pct && has_kids(M[i].name))) {
			continue;
		}
		snprintf(g->lines[g->n++], 160, "%.127s %x %u", M[i].name,
			 mflags(i) | extra, M[i].id);
	}
}


static void compare_list(struct mix_list *l, const char *ref,
			 const char *pat, unsigned sel)
{
	struct mix_mbox_pattern *p;
	char full[300];

	if (mix_mbox_name_pattern_new(ref, strlen(ref), pat, strlen(pat), SEP,
				      &p) < 0) {
		fail("pattern %s%s: %s", ref, pat, mix_last_error());
		return;
	}
	snprintf(full, sizeof(full), "%s", mix_mbox_name_pattern_text(p,
								     NULL));
	G1.n = 0;
	if (mix_list_walk(l, p, sel, collect, &G1) != 0)
		fail("walk %s: %s", full, mix_last_error());
	mix_mbox_name_pattern_free(&p);
	ref_list(full, sel, &G2);
	qsort(G1.lines, (size_t)G1.n, 160, line_cmp);
	qsort(G2.lines, (size_t)G2.n, 160, line_cmp);
	for (int i = 0; i < G1.n || i < G2.n; i++) {
		const char *a = i < G1.n ? G1.lines[i] : "(none)";
		const char *b = i < G2.n ? G2.lines[i] : "(none)";
		if (strcmp(a, b) != 0) {
			fail("LIST \"%s\" select %x: seen '%s' expected '%s' "
			     "(%d vs %d lines)", full, sel, a, b, G1.n, G2.n);
			return;
		}
	}
}

static const char *const pats[][2] = {
	{ "", "*" }, { "", "%" }, { "", "a/%" }, { "", "*/b" }, { "", "a*" },
	{ "", "%/%" }, { "", "inbox*" }, { "a/", "*" }, { "", "%b%" },
	{ "", "*/" }, { "", "a/b/%" }, { "", "Inbox/%" }, { "b/", "%" },
};

static void compare(struct mix_list *l)
{
	struct mix_list_info info;
	int i;

	G1.n = 0;
	if (all_rec(l, 0, &G1) != 0)
		fail("children walk failed: %s", mix_last_error());
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
			fail("entries: seen '%s' expected '%s' (%d vs %d)", a,
			     b, G1.n, G2.n);
			break;
		}
	}
	for (i = 0; i < mn; i++) {
		char lc[128];
		int r = mix_list_lookup(l, M[i].name, strlen(M[i].name), &info);
		if (r != 1 || info.id != M[i].id || info.flags != mflags(i))
			fail("lookup %s: ret %d id %u flags %x, expected 1 %u "
			     "%x", M[i].name, r, info.id, info.flags, M[i].id,
			     mflags(i));
		if (inbox_first(M[i].name)) {   /* INBOX in another case */
			snprintf(lc, sizeof(lc), "iNbOx%s", M[i].name + 5);
			r = mix_list_lookup(l, lc, strlen(lc), &info);
			if (r != 1 || info.id != M[i].id)
				fail("lookup %s: ret %d id %u, expected %u",
				     lc, r, info.id, M[i].id);
		}
	}
	for (i = 0; i < (int)(sizeof(pats) / sizeof(pats[0])); i++) {
		compare_list(l, pats[i][0], pats[i][1], 0);
		compare_list(l, pats[i][0], pats[i][1],
			     MIX_LIST_SELECT_SUBSCRIBED);
		compare_list(l, pats[i][0], pats[i][1],
			     MIX_LIST_SELECT_SUBSCRIBED |
			     MIX_LIST_SELECT_RECURSIVEMATCH);
		compare_list(l, pats[i][0], pats[i][1],
			     MIX_LIST_SELECT_SPECIAL_USE);
	}
}

/* ---- random operations ---------------------------------------------- */

/* ---- storage sync ---------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The storage holds about 70% of the mailboxes and one random name: the
 * model makes every given name a mailbox (in byte order, as the list
 * does: the ids follow that order), then every mailbox not given
 * vanishes. */
static int m_sync(char (*n)[128], int count)
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
	/* descendants before ancestors, as the list does (a parent that
	 * vanished while its child was a mailbox stays \Noselect) */
	qsort(gone, (size_t)ng, 128, depth_cmp);
	for (i = 0; i < ng; i++)
		if ((j = mfind(gone[i])) >= 0 && !(M[j].flags & NOTMBOX))
			m_vanish(j);
	return 0;
}

static int sync_op(struct mix_list *l, uint64_t *rng)
{
	static char n[MAXN + 1][128];
	struct snames s = { n, 0, 0 };
	int i;

	for (i = 0; i < mn; i++)
		if (!(M[i].flags & NOTMBOX) && tu_rand_below(rng, 10) < 7)
			snprintf(n[s.count++], 128, "%.127s", M[i].name);
	rand_name(rng, n[s.count++], 3);
	qsort(n, (size_t)s.count, 128, name_cmp);
	if (l != NULL) {
		int r = mix_list_sync(l, NULL, 0, snext, &s, NULL);
		int w = m_sync(n, s.count);
		return r != w ? r : 0;
	}
	return m_sync(n, s.count);
}

/* One random operation on both (on the model only when l is NULL: the
 * replay of what a crashed child did); the results must agree. */
static void random_op(struct mix_list *l, uint64_t *rng)
{
	char a[128], b[128];
	int k = (int)tu_rand_below(rng, 21), r = 0, w;
	uint32_t id = 0;

	rand_name(rng, a, 3);
	rand_name(rng, b, 3);
	if (k <= 5) {
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
		if (tu_rand_below(rng, 8) == 0)
			strcpy(a, "INBOX");
		snprintf(lastop, sizeof(lastop), "rename %.90s %.90s", a, b);
		if (l)
			r = mix_list_rename(l, a, strlen(a), b, strlen(b),
					    NULL, &id);
		w = m_rename(a, b);
	} else if (k <= 17) {
		int on = (int)tu_rand_below(rng, 2);
		snprintf(lastop, sizeof(lastop), "%ssubscribe %s",
			 on ? "" : "un", a);
		if (l)
			r = mix_list_subscribe(l, a, strlen(a), on);
		w = m_subscribe(a, on);
	} else if (k <= 19) {
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
	if (l != NULL && r != w)
		fail("returned %d (%s), expected %d", r,
		     r ? mix_last_error() : "", w);
}

/* Open, and follow the list's next UID in the model (a writable open
 * after a crash skips UIDs, format.md §2.7). */
static struct mix_list *open_list(struct mix_engine *e, const char *dir)
{
	static unsigned opens;
	struct mix_list_config cfg;
	struct mix_list *l;

	/* every other open commits with NONE: the synchronous path */
	mix_list_config_init(&cfg);
	cfg.durability = opens++ % 2 ? MIX_DURABILITY_NONE
				     : MIX_DURABILITY_SYNC;
	l = tu_list_open(e, dir, &cfg);
	next_id = tu_next_uid(mix_list_index(l));
	return l;
}

/* A child changes the list and dies without closing; the parent replays
 * on its model what the child reported done. */
static __attribute__((unused)) struct mix_list *crash_cycle(struct mix_engine **ep,
				    struct mix_list *l, const char *dir,
				    uint64_t *rng, int nops)
{
	int fd[2], st, done = 0;
	uint64_t crng = *rng;
	pid_t pid;

	mix_list_close(&l);
	mix_engine_free(ep);
	if (pipe(fd) < 0)
		BAIL("pipe");
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		struct mix_engine *ce;
		struct mix_list *cl;
		close(fd[0]);
		if (mix_engine_create(NULL, &ce) < 0 ||
		    mix_list_open(ce, dir, NULL, &cl) < 0)
			_exit(3);
		for (int i = 0; i < nops; i++) {
			random_op(cl, &crng);
			if (write(fd[1], "x", 1) != 1)
				_exit(4);
		}
		_exit(0);   /* no close: the index is left as after a crash */
	}
	close(fd[1]);
	{
		char c;
		while (read(fd[0], &c, 1) == 1)
			done++;
	}
	close(fd[0]);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("crash child exited with status %d", st);
	/* the same operations on the model */
	for (int i = 0; i < done; i++)
		random_op(NULL, rng);
	if (mix_engine_create(NULL, ep) < 0)
		BAIL("engine");
	return open_list(*ep, dir);
}

/* Random LIST patterns (wildcards in the middle and at the ends, the
 * separator at the ends, INBOX in several cases, a reference) through
 * the walk against the reference matcher over the model. */
static void random_patterns(struct mix_list *l, uint64_t *rng, int n)
{
	static const char *const tok[] = { "a", "b", "/", "*", "%", "inbox",
					   "INBOX", "InBoX", "b%", "c" };
	static const char *const refs[] = { "", "", "", "a/", "INBOX/", "a" };
	long before = nfail;

	for (int i = 0; i < n && nfail == before; i++) {
		char p[64] = "";
		int t = 1 + (int)tu_rand_below(rng, 6);
		unsigned sel = 0;
		const char *ref = refs[tu_rand_below(rng, 6)];
		for (int j = 0; j < t; j++)
			strcat(p, tok[tu_rand_below(rng, 10)]);
		switch (tu_rand_below(rng, 4)) {
		case 1: sel = MIX_LIST_SELECT_SUBSCRIBED; break;
		case 2: sel = MIX_LIST_SELECT_SUBSCRIBED |
			      MIX_LIST_SELECT_RECURSIVEMATCH; break;
		default: break;
		}
		snprintf(lastop, sizeof(lastop), "pattern %d ref '%s' '%s'",
			 i, ref, p);
		compare_list(l, ref, p, sel);
	}
	ok(nfail == before, "%d random LIST patterns agree with the "
	   "reference matcher over %d entries", n, mn);
}

static void model_test(uint64_t seed, long steps)
{
	char *dir = tu_tmpdir("list");
	struct mix_engine *e;
	struct mix_list *l;
	uint64_t rng = seed;
	uint32_t id;

	if (mix_engine_create(NULL, &e) < 0)
		BAIL("engine: %s", mix_last_error());
	l = open_list(e, dir);
	/* the first id: the model follows the list's UIDs from here */
	if (mix_list_create(l, "INBOX", 5, NULL, &id) < 0)
		BAIL("create INBOX: %s", mix_last_error());
	next_id = id;
	m_make("INBOX");
	nfail = 0;
	for (step = 1; step <= steps; step++) {
		random_op(l, &rng);
		compare(l);
		if (step % 97 == 0) {
			snprintf(lastop, sizeof(lastop), "reopen");
			mix_list_close(&l);
			l = open_list(e, dir);
			compare(l);
		}
#ifndef TU_FORK_SKIP_WHY
		if (step % 151 == 0) {
			snprintf(lastop, sizeof(lastop), "crash");
			l = crash_cycle(&e, l, dir, &rng, 5);
			compare(l);
		}
#endif
		if (nfail > 0)
			break;
	}
	ok(nfail == 0, "model: %ld steps of random changes agree with the "
	   "reference (%d entries at the end)", step - 1, mn);
	random_patterns(l, &rng, (int)(400 * tu_scale()));
	mix_list_close(&l);
	mix_engine_free(&e);
	tu_rmdir_r(dir);
	free(dir);
}

/* A rename moves a whole subtree: every name under the new one must stay
 * within 64 levels and 1,000 bytes (finding 21: renames that each
 * passed the check on the new name alone built a 65-level mailbox, and
 * the list did not open again).  Then the end of the id space (finding
 * 22: an id past 2^32 - 2 wrapped around, an acknowledged create was
 * not stored, and an id was given out twice). */
static void limits_test(void)
{
	char *dir = tu_tmpdir("list-limits"), name[1100];
	struct mix_engine *e;
	struct mix_list *l;
	struct mix_index *ix;
	struct mix_txn *t;
	uint32_t id, id2;
	int ret, bad = 0, i;
	size_t n;

	if (mix_engine_create(NULL, &e) < 0)
		BAIL("engine");
	l = tu_list_open(e, dir, NULL);
	/* a/1/2/.../63: 64 levels, then a rename that adds two */
	n = (size_t)snprintf(name, sizeof(name), "a");
	for (i = 1; i < 64; i++)
		n += (size_t)snprintf(name + n, sizeof(name) - n, "/%d", i);
	is(mix_list_create(l, "a", 1, NULL, &id), 0, "limits: create a");
	is(mix_list_create(l, name, n, NULL, &id), 0, "limits: a 64-level "
	   "mailbox under it");
	ret = mix_list_rename(l, "a", 1, "x/y/z", 5, NULL, &id2);
	is(ret, MIX_EINVAL, "limits: renaming its top to 3 levels is refused "
	   "(%s)", ret ? mix_last_error() : "accepted");
	/* short names, one level deeper each round */
	is(mix_list_create(l, "A", 1, NULL, &id), 0, "limits: create A");
	for (i = 0; i < 70 && !bad; i++) {
		if (mix_list_create(l, "T", 1, NULL, &id2) < 0) {
			bad = 1;
			break;
		}
		ret = mix_list_rename(l, "A", 1, "T/A", 3, NULL, &id2);
		if (ret == MIX_EINVAL) {
			(void)mix_list_delete(l, "T", 1);
			break;
		}
		if (ret < 0 || mix_list_rename(l, "T", 1, "A", 1, NULL,
					       &id2) < 0)
			bad = 1;
	}
	ok(!bad && i == 63, "limits: nesting A one level deeper per round "
	   "stops at 64 levels (round %d refused)", i);
	/* a 998-byte name (components of 99 bytes), its top renamed three
	 * bytes longer */
	n = (size_t)snprintf(name, sizeof(name), "b");
	for (i = 0; i < 10; i++) {
		size_t c = i < 9 ? 99 : 96;
		name[n++] = '/';
		memset(name + n, 'n', c);
		n += c;
	}
	is(mix_list_create(l, "b", 1, NULL, &id), 0, "limits: create b");
	is(mix_list_create(l, name, n, NULL, &id), 0, "limits: a %zu-byte "
	   "mailbox under b", n);
	ret = mix_list_rename(l, "b", 1, "bbbb", 4, NULL, &id2);
	is(ret, MIX_EINVAL, "limits: renaming b to bbbb (1,001 bytes under "
	   "it) is refused");
	is(mix_list_close(&l), 0, "limits: close");
	l = tu_list_open(e, dir, NULL);
	ok(l != NULL, "limits: the list opens again");
	mix_list_close(&l);

	/* the end of the id space: the list's index at next_uid 2^32 - 2
	 * (a shortcut: mix_list_index() is not to be committed to) */
	if (mix_index_open(e, dir, 0, &ix) < 0 || mix_txn_begin(ix, &t) < 0 ||
	    mix_txn_hdr_set(t, MIX_HDR_NEXT_UID, 0xfffffffeu) < 0 ||
	    mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL) < 0)
		BAIL("limits: raising next_uid: %s", mix_last_error());
	mix_index_close(&ix);
	l = tu_list_open(e, dir, NULL);
	ret = mix_list_create(l, "c/d", 3, NULL, &id);
	is(ret, MIX_ELIMIT, "limits: a create that needs ids past the last "
	   "one is refused with MIX_ELIMIT (%s)",
	   ret ? mix_last_error() : "accepted");
	ret = mix_list_create(l, "e", 1, NULL, &id);
	ok(ret == 0 || ret == MIX_ELIMIT, "limits: so is, or works, one that "
	   "needs one id (%d, id %u)", ret, ret == 0 ? id : 0);
	is(mix_list_close(&l), 0, "limits: close");
	l = tu_list_open(e, dir, NULL);
	ok(mix_list_lookup(l, "c/d", 3, NULL) == 0 &&
	   (ret != 0 || mix_list_lookup(l, "e", 1, NULL) == 1),
	   "limits: after a reopen the list has exactly what it acknowledged");
	mix_list_close(&l);
	mix_engine_free(&e);
	tu_rmdir_r(dir);
	free(dir);
}

int main(void)
{
	uint64_t seed = tu_seed();
	long steps = (long)(1000 * tu_scale());

	model_test(seed, steps);
	limits_test();
	return tap_done();
}
