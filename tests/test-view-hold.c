/*
 * Held-expunge view syncs (engine/view.c, mix_view_sync_flags with
 * MIX_VIEW_SYNC_HOLD_EXPUNGES; docs/api.md "Held expunges"; issue 14
 * item 2).  Single-threaded model test:
 *
 * A writer makes random commits (appends, flag REPLACE and keyword
 * ADD/REMOVE on UID ranges, expunges of ranges) and a model of the
 * mailbox follows them from the commit results (UIDs, flags, keywords,
 * each message's modseq, the modseq that expunged it).  Two views sync
 * at random, in holding or releasing mode, and each has a reference
 * "client": the messages an IMAP client was told about, in sequence
 * order, with the state it was told and a mark for held expunges.  After
 * every sync the report and the view are compared with what the client
 * must be told:
 *   - holding: no expunges; new UIDs = the model's UIDs above the
 *     client's; changed UIDs = the client's live messages whose modseq
 *     moved; EXISTS counts held messages; every held message keeps its
 *     sequence number and last told state; HIGHESTMODSEQ is below the
 *     first held expunge's modseq and never goes backwards;
 *   - releasing: expunged_seqs = the client's held and gone messages
 *     (descending, client numbering), expunged_uids the same UIDs;
 *   - the view's lookups by every sequence number and every UID agree
 *     with the client (return code, UID, seq, flags, keywords), and
 *     UIDs in gaps are absent with the right insertion seq;
 *   - with a tiny expunge history (full comparison) the same, except
 *     that HIGHESTMODSEQ only has to stay below the first held expunge.
 * MIX_SEED replays a run; MIX_TEST_SCALE lengthens it.  A failure names
 * the step and prints seen vs expected.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

#define MAXUID 65536u
#define NVIEW 2

static uint64_t rng;

/* The mailbox as the commits made it. */
struct model {
	uint8_t exists[MAXUID];
	uint8_t flags[MAXUID];
	uint8_t kw[MAXUID];        /* bit 0 "ka", bit 1 "kb" */
	uint64_t modseq[MAXUID];
	uint64_t xmodseq[MAXUID];  /* modseq of the expunge */
	uint64_t ext[MAXUID];      /* record data of extension x0 */
	uint32_t next_uid;
	uint32_t nreg, x0;         /* extensions registered, x0's id */
	uint32_t nkw;              /* fresh keyword names used */
};

/* What one client was told. */
struct centry {
	uint32_t uid;
	uint8_t flags, kw;
	uint64_t modseq, ext;
	int held;
};

struct client {
	struct mix_view *view;
	struct centry *e;
	uint32_t n, cap;
	uint64_t hms;              /* HIGHESTMODSEQ announced last */
	uint32_t next_uid;         /* above every UID it knows */
};

static struct model M;
static const char *const kw_names[2] = { "ka", "kb" };
static int step;
static int failures;
static int precise_modseq;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (failures++ >= 5)
		return;
	printf("# step %d: ", step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* ---- the writer ---------------------------------------------------------- */

static void random_range(struct mix_uid_range *r)
{
	uint32_t span = M.next_uid > 1 ? M.next_uid - 1 : 1;
	r->first = 1 + tu_rand_below(&rng, span);
	r->last = r->first + tu_rand_below(&rng, 4);
}

enum op {
	OP_APPEND, OP_FLAGS, OP_KW, OP_EXPUNGE, OP_EXT, OP_NEWKW,
};

struct opdesc {
	enum op op;
	struct mix_uid_range r;
	uint8_t fl;          /* OP_FLAGS */
	int kwi, add;        /* OP_KW */
	uint64_t val;        /* OP_EXT */
};

/* The model's side of a committed operation on a range. */
static void model_apply(const struct opdesc *d, uint64_t modseq)
{
	uint32_t u;
	uint8_t k;

	for (u = d->r.first; u <= d->r.last && u < M.next_uid; u++) {
		if (!M.exists[u])
			continue;
		if (d->op == OP_FLAGS && M.flags[u] != d->fl) {
			M.flags[u] = d->fl;
			M.modseq[u] = modseq;
		} else if (d->op == OP_KW) {
			k = d->add ? M.kw[u] | (1u << d->kwi) :
				     M.kw[u] & ~(1u << d->kwi);
			if (k != M.kw[u]) {
				M.kw[u] = k;
				M.modseq[u] = modseq;
			}
		} else if (d->op == OP_EXT && M.ext[u] != d->val) {
			M.ext[u] = d->val;
			M.modseq[u] = modseq;
		} else if (d->op == OP_NEWKW) {
			M.modseq[u] = modseq;   /* a name nobody had */
		} else if (d->op == OP_EXPUNGE) {
			M.exists[u] = 0;
			M.xmodseq[u] = modseq;
		}
	}
}

/* Now and then a new extension with record data: every record grows
 * (the layout changes while views may hold copies of old records). */
static void maybe_register(struct mix_index *idx)
{
	char name[16];
	uint32_t id;
	int ret;

	if (M.nreg >= 6 || tu_rand_below(&rng, 300) != 0)
		return;
	snprintf(name, sizeof(name), "x%u", M.nreg);
	ret = mix_index_ext_register(idx, name, 8, 8, 0, &id);
	if (ret < 0) {
		fail("mix_index_ext_register(%s): observed %d (%s) expected 0",
		     name, ret, mix_strerror(ret));
		return;
	}
	if (M.nreg++ == 0)
		M.x0 = id;
}

static void add_op(struct mix_txn *t, struct opdesc *d)
{
	const char *kws[2] = { NULL, NULL };
	char fresh[16];
	uint32_t i, n;

	switch (d->op) {
	case OP_APPEND:
		n = 1 + tu_rand_below(&rng, 3);
		for (i = 0; i < n; i++)
			mix_txn_append(t, MIX_FLAG_SEEN, NULL, NULL);
		break;
	case OP_FLAGS:
		d->fl = (uint8_t)tu_rand_below(&rng, 32);
		mix_txn_flags(t, &d->r, 1, MIX_MODIFY_REPLACE, d->fl);
		break;
	case OP_KW:
		d->kwi = (int)tu_rand_below(&rng, 2);
		d->add = (int)tu_rand_below(&rng, 2);
		kws[0] = kw_names[d->kwi];
		mix_txn_keywords(t, &d->r, 1, d->add ? MIX_MODIFY_ADD :
				 MIX_MODIFY_REMOVE, kws);
		break;
	case OP_EXT:
		d->val = tu_rand(&rng) | 1;
		for (i = d->r.first; i <= d->r.last; i++)
			mix_txn_ext_set(t, i, M.x0, &d->val, 8);
		break;
	case OP_NEWKW:
		snprintf(fresh, sizeof(fresh), "n%u", M.nkw++);
		kws[0] = fresh;
		mix_txn_keywords(t, &d->r, 1, MIX_MODIFY_ADD, kws);
		break;
	case OP_EXPUNGE:
		mix_txn_expunge(t, &d->r, 1);
		break;
	}
}

static void writer_step(struct mix_index *idx)
{
	static const enum op ops[12] = { OP_APPEND, OP_APPEND, OP_APPEND,
		OP_FLAGS, OP_FLAGS, OP_FLAGS, OP_KW, OP_KW, OP_EXPUNGE,
		OP_EXPUNGE, OP_EXT, OP_NEWKW };
	struct mix_commit_result res;
	struct opdesc d;
	struct mix_txn *t;
	uint32_t u;
	int ret;

	maybe_register(idx);
	memset(&d, 0, sizeof(d));
	d.op = ops[tu_rand_below(&rng, 12)];
	random_range(&d.r);
	if ((d.op == OP_APPEND && M.next_uid + 3 >= MAXUID) ||
	    (d.op == OP_EXT && M.nreg == 0) ||
	    (d.op == OP_NEWKW && (M.nkw >= 40 || tu_rand_below(&rng, 8))))
		d.op = OP_FLAGS;   /* full, unregistered, or rare enough */
	if (mix_txn_begin(idx, &t) < 0) {
		fail("mix_txn_begin failed");
		return;
	}
	add_op(t, &d);
	memset(&res, 0, sizeof(res));
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	if (ret < 0) {
		fail("commit: observed %d (%s) expected 0", ret,
		     mix_strerror(ret));
		return;
	}
	if (d.op == OP_APPEND) {
		for (u = res.first_uid; u && u <= res.last_uid; u++) {
			M.exists[u] = 1;
			M.flags[u] = MIX_FLAG_SEEN;
			M.modseq[u] = res.modseq;
		}
		M.next_uid = res.last_uid + 1;
	} else {
		model_apply(&d, res.modseq);
	}
	mix_commit_result_free(&res);
}

/* ---- the client and its checks --------------------------------------------- */

static void client_push(struct client *c, uint32_t uid)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->e = realloc(c->e, c->cap * sizeof(*c->e));
		if (!c->e)
			exit(255);
	}
	c->e[c->n].uid = uid;
	c->e[c->n].flags = M.flags[uid];
	c->e[c->n].kw = M.kw[uid];
	c->e[c->n].modseq = M.modseq[uid];
	c->e[c->n].ext = M.ext[uid];
	c->e[c->n].held = 0;
	c->n++;
}

static void client_open(struct client *c, struct mix_index *idx)
{
	uint32_t u;
	mix_view_open(idx, &c->view);
	c->n = 0;
	for (u = 1; u < M.next_uid; u++)
		if (M.exists[u])
			client_push(c, u);
	c->next_uid = M.next_uid;
	c->hms = mix_view_highest_modseq(c->view);
}

static uint8_t rec_kw(const struct mix_snap *s, const struct mix_record *r)
{
	uint8_t k = 0;
	uint32_t i, idx;
	for (i = 0; i < 2; i++)
		if (mix_snap_keyword_lookup(s, kw_names[i], &idx) &&
		    mix_record_has_keyword(r, idx))
			k |= 1u << i;
	return k;
}

/* Extension x0's data of a record read with snapshot s (0 if none). */
static uint64_t rec_ext(const struct mix_snap *s, const struct mix_record *r)
{
	size_t size = 0;
	const void *p = mix_record_ext(s, r, M.x0, &size);
	uint64_t v = 0;
	if (p && size == 8)
		memcpy(&v, p, 8);
	return v;
}

/* One known message by seq and by UID; the UID below it if in a gap. */
static int check_entry(struct client *c, int v, uint32_t i)
{
	const struct centry *e = &c->e[i];
	const struct mix_snap *s = NULL;
	struct mix_record rec;
	int want = e->held ? MIX_VIEW_EXPUNGED : 1, got;

	memset(&rec, 0, sizeof(rec));
	got = mix_view_lookup_seq(c->view, i + 1, &rec, &s);
	if (got != want || rec.uid != e->uid || rec.seq != i + 1 ||
	    rec.flags != e->flags || !s || rec_kw(s, &rec) != e->kw) {
		fail("view %d: lookup_seq(%u): observed ret %d uid %u seq %u "
		     "flags 0x%x kw %u expected ret %d uid %u flags 0x%x kw "
		     "%u", v, i + 1, got, rec.uid, rec.seq, rec.flags,
		     s ? rec_kw(s, &rec) : 99, want, e->uid, e->flags, e->kw);
		return -1;
	}
	got = mix_view_lookup_uid(c->view, e->uid, &rec, &s);
	if (got != want || rec.seq != i + 1 || rec.flags != e->flags) {
		fail("view %d: lookup_uid(%u): observed ret %d seq %u flags "
		     "0x%x expected ret %d seq %u flags 0x%x", v, e->uid, got,
		     rec.seq, rec.flags, want, i + 1, e->flags);
		return -1;
	}
	if (M.nreg && rec_ext(s, &rec) != e->ext) {
		fail("view %d: uid %u (ret %d): observed extension x0 data "
		     "%llx expected %llx", v, e->uid, got,
		     (unsigned long long)rec_ext(s, &rec),
		     (unsigned long long)e->ext);
		return -1;
	}
	if (mix_view_is_expunged(c->view, e->uid) != e->held) {
		fail("view %d: is_expunged(%u): observed %d expected %d", v,
		     e->uid, !e->held, e->held);
		return -1;
	}
	if ((i == 0 ? 1 : c->e[i - 1].uid + 1) < e->uid) {
		got = mix_view_lookup_uid(c->view, e->uid - 1, &rec, NULL);
		if (got != 0 || rec.seq != i + 1) {
			fail("view %d: lookup_uid(%u) in a gap: observed ret "
			     "%d seq %u expected 0, seq %u", v, e->uid - 1,
			     got, rec.seq, i + 1);
			return -1;
		}
	}
	return 0;
}

/* Lookups by every seq and every known UID. */
static void check_lookups(struct client *c, int v)
{
	uint32_t i, held = 0, s1 = 0, s2 = 0;

	if (mix_view_messages_count(c->view) != c->n)
		fail("view %d: mix_view_messages_count: observed %u expected "
		     "%u", v, mix_view_messages_count(c->view), c->n);
	for (i = 0; i < c->n; i++) {
		held += c->e[i].held;
		if (check_entry(c, v, i) < 0)
			return;
	}
	if (mix_view_lookup_seq(c->view, c->n + 1, NULL, NULL) != 0)
		fail("view %d: lookup_seq(%u) past the end: observed found "
		     "expected 0", v, c->n + 1);
	if (mix_view_held_count(c->view) != held)
		fail("view %d: mix_view_held_count: observed %u expected %u",
		     v, mix_view_held_count(c->view), held);
	if (c->n && (!mix_view_uid_range_to_seq(c->view, c->e[0].uid,
						c->e[c->n - 1].uid, &s1, &s2) ||
		     s1 != 1 || s2 != c->n))
		fail("view %d: uid_range_to_seq(%u, %u): observed %u..%u "
		     "expected 1..%u", v, c->e[0].uid, c->e[c->n - 1].uid,
		     s1, s2, c->n);
}

/* The reported UID list must equal the expected one. */
static void check_list(int v, const char *what, const uint32_t *got,
		       uint32_t ngot, const uint32_t *want, uint32_t nwant)
{
	uint32_t i;
	for (i = 0; i < ngot || i < nwant; i++) {
		if (i >= ngot || i >= nwant || got[i] != want[i]) {
			fail("view %d: %s[%u]: observed %u (of %u) expected %u "
			     "(of %u)", v, what, i, i < ngot ? got[i] : 0,
			     ngot, i < nwant ? want[i] : 0, nwant);
			return;
		}
	}
}

/* Expected changed and new UIDs; updates the client's live entries. */
static void expect_changes(struct client *c, uint32_t *chg, uint32_t *nchg,
			   uint32_t *nw, uint32_t *nnw)
{
	uint32_t i, u;
	*nchg = *nnw = 0;
	for (i = 0; i < c->n; i++) {
		struct centry *e = &c->e[i];
		if (e->held || !M.exists[e->uid] ||
		    M.modseq[e->uid] == e->modseq)
			continue;
		chg[(*nchg)++] = e->uid;
		e->flags = M.flags[e->uid];
		e->kw = M.kw[e->uid];
		e->ext = M.ext[e->uid];
		e->modseq = M.modseq[e->uid];
	}
	for (u = c->next_uid; u < M.next_uid; u++)
		if (M.exists[u])
			nw[(*nnw)++] = u;
}

static void check_hold(struct client *c, int v,
		       const struct mix_view_changes *ch, uint32_t old_n)
{
	uint64_t first_x = 0, snap_h, want_h;
	uint32_t i;

	if (ch->expunged_count || ch->expunged_uid_ranges)
		fail("view %d: holding sync: observed %u expunges expected "
		     "none", v, ch->expunged_count);
	for (i = 0; i < c->n; i++) {
		struct centry *e = &c->e[i];
		if (!M.exists[e->uid])
			e->held = 1;
		if (e->held && (!first_x || M.xmodseq[e->uid] < first_x))
			first_x = M.xmodseq[e->uid];
	}
	if (ch->old_messages_count != old_n ||
	    ch->new_messages_count != c->n)
		fail("view %d: holding sync EXISTS: observed %u -> %u expected "
		     "%u -> %u", v, ch->old_messages_count,
		     ch->new_messages_count, old_n, c->n);
	snap_h = mix_snap_highest_modseq(mix_view_snap(c->view));
	want_h = first_x && first_x - 1 < snap_h ? first_x - 1 : snap_h;
	if (first_x && ch->new_highest_modseq >= first_x)
		fail("view %d: HIGHESTMODSEQ while holding: observed %llu "
		     "expected below the first held expunge's %llu", v,
		     (unsigned long long)ch->new_highest_modseq,
		     (unsigned long long)first_x);
	else if (precise_modseq && ch->new_highest_modseq != want_h)
		fail("view %d: HIGHESTMODSEQ while holding: observed %llu "
		     "expected %llu = min(snapshot %llu, first held expunge "
		     "%llu - 1)", v, (unsigned long long)ch->new_highest_modseq,
		     (unsigned long long)want_h, (unsigned long long)snap_h,
		     (unsigned long long)first_x);
}

static void check_release(struct client *c, int v,
			  const struct mix_view_changes *ch, uint32_t old_n)
{
	uint32_t i, k = 0, ne = 0, r, u;
	uint32_t *want = calloc(c->n + 1, sizeof(*want));

	for (i = c->n; i-- > 0;)
		if (c->e[i].held || !M.exists[c->e[i].uid])
			want[ne++] = i + 1;
	check_list(v, "expunged_seqs", ch->expunged_seqs, ch->expunged_count,
		   want, ne);
	/* expunged_uids: the same messages, ascending */
	for (r = 0; r < ch->expunged_uid_ranges && k <= ne; r++)
		for (u = ch->expunged_uids[r].first;
		     u <= ch->expunged_uids[r].last && k <= ne; u++, k++)
			if (k == ne || c->e[want[ne - 1 - k] - 1].uid != u) {
				k = ne + 1;
				break;
			}
	if (k != ne)
		fail("view %d: expunged_uids: observed %u ranges not the %u "
		     "expunged UIDs expected", v, ch->expunged_uid_ranges, ne);
	for (i = 0, k = 0; i < c->n; i++)
		if (!c->e[i].held && M.exists[c->e[i].uid])
			c->e[k++] = c->e[i];
	c->n = k;
	if (ch->old_messages_count != old_n || ch->held_count ||
	    ch->new_messages_count != c->n)
		fail("view %d: releasing sync EXISTS: observed %u -> %u, %u "
		     "held expected %u -> %u, 0 held", v,
		     ch->old_messages_count, ch->new_messages_count,
		     ch->held_count, old_n, c->n);
	free(want);
}

static void check_modseq(struct client *c, int v, int ret,
			 const struct mix_view_changes *ch, uint64_t old_hms)
{
	c->hms = mix_view_highest_modseq(c->view);
	if (ret == 1 && (ch->old_highest_modseq != old_hms ||
			 ch->new_highest_modseq != c->hms))
		fail("view %d: report HIGHESTMODSEQ: observed %llu -> %llu "
		     "expected %llu -> %llu (the view's)", v,
		     (unsigned long long)ch->old_highest_modseq,
		     (unsigned long long)ch->new_highest_modseq,
		     (unsigned long long)old_hms,
		     (unsigned long long)c->hms);
	if (c->hms < old_hms)
		fail("view %d: HIGHESTMODSEQ went backwards: observed %llu "
		     "expected >= %llu", v, (unsigned long long)c->hms,
		     (unsigned long long)old_hms);
}

static void client_sync(struct client *c, int v, int hold)
{
	struct mix_view_changes ch;
	uint32_t *chg = malloc((c->n + 1) * 4), nchg, i;
	uint32_t *nw = malloc((M.next_uid + 1) * 4), nnw, old_n = c->n;
	int ret;

	ret = mix_view_sync_flags(c->view, hold ?
				  MIX_VIEW_SYNC_HOLD_EXPUNGES : 0, &ch);
	if (ret < 0) {
		fail("view %d: sync: observed %d expected 0 or 1", v, ret);
		goto out;
	}
	expect_changes(c, chg, &nchg, nw, &nnw);
	for (i = 0; i < nnw; i++)
		client_push(c, nw[i]);
	c->next_uid = M.next_uid;
	check_list(v, "changed_uids", ch.changed_uids, ch.changed_count, chg,
		   nchg);
	check_list(v, "new_uids", ch.new_uids, ch.new_count, nw, nnw);
	if (ret == 1 && hold)
		check_hold(c, v, &ch, old_n);
	else if (ret == 1)
		check_release(c, v, &ch, old_n);
	for (i = 0; ret == 0 && !hold && i < c->n; i++)
		if (c->e[i].held || !M.exists[c->e[i].uid]) {
			fail("view %d: releasing sync returned 0: observed "
			     "nothing reported expected uid %u expunged", v,
			     c->e[i].uid);
			break;
		}
	check_modseq(c, v, ret, &ch, c->hms);
	mix_view_changes_free(&ch);
	check_lookups(c, v);
out:
	free(chg);
	free(nw);
}

/* Make the view hold something, then refresh: nothing is held after. */
static void check_refresh(struct mix_index *idx, struct client *c,
			  const char *what)
{
	struct mix_view_changes ch;
	int i;

	for (i = 0; i < 200 && !mix_view_held_count(c->view); i++) {
		struct mix_uid_range r = { 1, M.next_uid };
		struct mix_txn *t;
		mix_txn_begin(idx, &t);
		mix_txn_expunge(t, &r, 1);
		mix_txn_append(t, 0, NULL, NULL);
		mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
		mix_view_sync_flags(c->view, MIX_VIEW_SYNC_HOLD_EXPUNGES, &ch);
		mix_view_changes_free(&ch);
	}
	ok(mix_view_held_count(c->view) > 0, "%s: a view holds %u after an "
	   "expunge-all", what, mix_view_held_count(c->view));
	mix_view_refresh(c->view);
	is(mix_view_held_count(c->view), 0,
	   "%s: mix_view_refresh drops held expunges", what);
	is(mix_view_messages_count(c->view),
	   mix_snap_messages_count(mix_view_snap(c->view)),
	   "%s: and counts the snapshot's messages", what);
}

static void run(struct mix_engine *e, const char *dir, const char *what,
		int steps)
{
	struct mix_index *idx;
	struct client cl[NVIEW];
	struct mix_view_changes ch;
	int v, f0 = failures, holds = 0, maxheld = 0;

	memset(&M, 0, sizeof(M));
	memset(cl, 0, sizeof(cl));
	M.next_uid = 1;
	if (!is(mix_index_open(e, dir, MIX_OPEN_CREATE, &idx), 0,
		"%s: index opened", what))
		return;
	for (step = 0; step < 30; step++)
		writer_step(idx);
	for (v = 0; v < NVIEW; v++)
		client_open(&cl[v], idx);
	for (step = 0; step < steps && failures - f0 < 5; step++) {
		writer_step(idx);
		if (tu_rand_below(&rng, 3) == 0) {
			int hold = tu_rand_below(&rng, 4) != 0;
			v = (int)tu_rand_below(&rng, NVIEW);
			holds += hold;
			client_sync(&cl[v], v, hold);
			if ((int)mix_view_held_count(cl[v].view) > maxheld)
				maxheld = (int)mix_view_held_count(cl[v].view);
		}
	}
	is(failures, f0, "%s: %d steps, %d holding syncs: every report "
	   "and lookup as the client model expects", what, step, holds);
	ok(maxheld > 0, "%s: the run held expunges (up to %d at once)", what,
	   maxheld);
	for (v = 0; v < NVIEW; v++) {
		client_sync(&cl[v], v, 0);
		if (mix_view_messages_count(cl[v].view) !=
		    mix_snap_messages_count(mix_view_snap(cl[v].view)))
			fail("view %d: after a release: observed %u messages "
			     "expected the snapshot's %u", v,
			     mix_view_messages_count(cl[v].view),
			     mix_snap_messages_count(mix_view_snap(cl[v].view)));
	}
	is(failures, f0, "%s: a final release leaves the views equal to "
	   "their snapshots", what);
	is(mix_view_sync_flags(cl[0].view, 0x80, &ch), MIX_EINVAL,
	   "%s: an unknown sync flag is refused", what);
	check_refresh(idx, &cl[1], what);
	for (v = 0; v < NVIEW; v++) {
		mix_view_close(&cl[v].view);
		free(cl[v].e);
	}
	is(mix_index_close(&idx), 0, "%s: index closed", what);
}

int main(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	char *d1 = tu_tmpdir("vhold1"), *d2 = tu_tmpdir("vhold2");
	int steps;

	rng = tu_seed();
	steps = (int)(3000 * tu_scale());
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 16384;
	if (mix_engine_create(&cfg, &e) < 0)
		return 255;
	precise_modseq = 1;
	run(e, d1, "expunge history", steps);
	mix_engine_free(&e);
	cfg.expunge_history_max = 2;
	if (mix_engine_create(&cfg, &e) < 0)
		return 255;
	precise_modseq = 0;
	run(e, d2, "tiny history", steps);
	mix_engine_free(&e);
	tu_rmdir_r(d1);
	tu_rmdir_r(d2);
	free(d1);
	free(d2);
	return tap_done();
}
