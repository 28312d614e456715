/*
 * Model test of the whole write path: random transactions (appends with
 * flags and keywords, flag and keyword add/remove/replace over UID
 * ranges, expunges, extension record and header data, header fields) are
 * applied to the engine and to a plain in-memory model.  After every
 * commit every record, every lookup and every header counter of the
 * published snapshot must agree with the model; the index is closed and
 * reopened (replaying the log, checkpointing, rotating) every few thousand
 * commits and must still agree.  The rotation size is tiny so checkpoints
 * and rotations happen all the time.
 *
 * The model decides on its own which records a transaction changes; the
 * engine's modseqs must match: a changed record gets the commit's modseq,
 * an unchanged one keeps its old one, and a transaction that changes
 * nothing reports no_changes and raises nothing.
 *
 * IMAP operations (issue 14): conditional expunges (EXPUNGE and UID
 * EXPUNGE: only messages with \Deleted at that point of the transaction)
 * and \Recent claims are among the random operations; half of the
 * transactions ask for the changed set, and the result's changed,
 * expunged and claimed UIDs must be the model's.
 *
 * CONDSTORE: after every commit, "changed since m" and "expunged since m"
 * for random m (among the modseqs issued so far) must equal the model's
 * answer; the engine may say it cannot answer an expunge question only
 * for an m below the oldest modseq its bounded history covers.
 *
 * MIX_SEED replays a run; MIX_TEST_SCALE scales the number of operations
 * (default 100,000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

#define KW_POOL 80
#define MAX_KW 128
#define EXT_SIZE 8
#define EXT_HDR 16
#define EXT2_SIZE 3   /* a second extension, odd size, no header */

struct mrec {
	uint32_t uid;
	uint8_t flags;
	uint64_t modseq;
	uint8_t kw[MAX_KW / 8];       /* bit i = model keyword i */
	uint8_t ext[EXT_SIZE];
	uint8_t ext2[EXT2_SIZE];
	uint8_t vis;   /* flags or keywords changed in the pending txn */
};

struct model {
	struct mrec *r;
	uint32_t n, cap;
	uint32_t next_uid, uid_validity, first_recent_uid;
	uint64_t highest_modseq;
	char *kw[MAX_KW];
	uint32_t nkw;
	uint8_t ext_hdr[EXT_HDR];
};

static uint64_t rng;
static struct model M;
/* every expunge: (modseq, uid); PENDING until the commit */
static struct { uint64_t modseq; uint32_t uid; } *xh;
static uint32_t nxh, capxh;
/* modseqs issued so far (candidates for m) */
static uint64_t *issued;
static uint32_t nissued, capissued;
static uint32_t ext_id, ext2_id;
static char pool[KW_POOL][16];
static long step;
static int failures;

#define FAIL(...) do { \
	if (failures++ < 10) { \
		printf("# step %ld: ", step); printf(__VA_ARGS__); \
		printf("\n"); \
	} \
} while (0)

/* ---- the model ---------------------------------------------------------- */

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

static int m_kw_idx(const char *name, int create)
{
	uint32_t i;
	for (i = 0; i < M.nkw; i++)
		if (strcmp(M.kw[i], name) == 0)
			return (int)i;
	if (!create)
		return -1;
	M.kw[M.nkw] = strdup(name);
	return (int)M.nkw++;
}

static int kw_has(const uint8_t *bm, uint32_t i) { return bm[i / 8] >> (i % 8) & 1; }
static void kw_set(uint8_t *bm, uint32_t i, int on)
{
	if (on)
		bm[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		bm[i / 8] &= (uint8_t)~(1u << (i % 8));
}

/* A pending transaction as the model applies it. */
struct mtxn {
	uint64_t modseq;   /* unknown until commit: records get a marker */
	int changed;
	uint32_t first_uid, last_uid;
	uint32_t app_uid[64]; /* UID of each append number */
	uint32_t napps;
	/* the result's expunged set (ascending: UIDs appended later are
	 * higher, but several expunges interleave: sorted at the end) and
	 * the \Recent claim */
	uint32_t *xuids;
	uint32_t nx, capx;
	int want_x;
	uint32_t recent_first, recent_last;
};

/* Model changes are applied to a copy and then stamped with the commit's
 * modseq; records touched get this marker first. */
#define PENDING UINT64_MAX

static void m_touch(struct mrec *r, struct mtxn *mt)
{
	r->modseq = PENDING;
	mt->changed = 1;
}

/* A change a client sees of flags or keywords (the changed set). */
static void m_touch_vis(struct mrec *r, struct mtxn *mt)
{
	m_touch(r, mt);
	r->vis = 1;
}

static const char **pick_keywords(const char **out, uint32_t max)
{
	uint32_t n = tu_rand_below(&rng, max + 1), i;
	for (i = 0; i < n; i++)
		out[i] = pool[tu_rand_below(&rng, KW_POOL)];
	out[n] = NULL;
	return out;
}

static uint8_t rand_flags(void)
{
	static const uint8_t f[] = { MIX_FLAG_ANSWERED, MIX_FLAG_FLAGGED,
				     MIX_FLAG_DELETED, MIX_FLAG_SEEN,
				     MIX_FLAG_DRAFT, MIX_FLAG_RECENT };
	uint8_t v = 0;
	unsigned i;
	for (i = 0; i < sizeof(f); i++)
		if (tu_rand_below(&rng, 3) == 0)
			v |= f[i];
	return v;
}

static void rand_ranges(struct mix_uid_range *r, uint32_t *n_r)
{
	uint32_t n = 1 + tu_rand_below(&rng, 3), i;
	uint32_t top = M.next_uid + 3;
	for (i = 0; i < n; i++) {
		uint32_t a = 1 + tu_rand_below(&rng, top);
		uint32_t len = tu_rand_below(&rng, 4) == 0 ?
			tu_rand_below(&rng, top) : tu_rand_below(&rng, 8);
		r[i].first = a;
		r[i].last = a + len < a ? UINT32_MAX : a + len;
	}
	*n_r = n;
}

static int in_ranges(uint32_t uid, const struct mix_uid_range *r, uint32_t n)
{
	uint32_t i;
	for (i = 0; i < n; i++)
		if (uid >= r[i].first && uid <= r[i].last)
			return 1;
	return 0;
}

/* ---- operations: each applies to the engine txn and the model ----------- */

static int op_append(struct mix_txn *t, struct mtxn *mt)
{
	uint32_t n = 1 + tu_rand_below(&rng, 4), i, j, no;
	for (i = 0; i < n; i++) {
		const char *kws[4];
		uint8_t flags = rand_flags();
		struct mrec r;
		pick_keywords(kws, 3);
		if (mix_txn_append(t, flags, kws, &no) < 0)
			return -1;
		if (M.n == M.cap) {
			M.cap = M.cap ? M.cap * 2 : 256;
			M.r = realloc(M.r, M.cap * sizeof(*M.r));
		}
		memset(&r, 0, sizeof(r));
		r.uid = M.next_uid++;
		r.flags = flags;
		for (j = 0; kws[j]; j++)
			kw_set(r.kw, (uint32_t)m_kw_idx(kws[j], 1), 1);
		if (tu_rand_below(&rng, 4) == 0) {
			uint64_t v = tu_rand(&rng);
			memcpy(r.ext, &v, EXT_SIZE);
			if (mix_txn_append_ext(t, no, ext_id, r.ext,
					       EXT_SIZE) < 0)
				return -1;
		}
		if (tu_rand_below(&rng, 3) == 0) {
			/* sometimes twice: the second value wins */
			uint64_t v = tu_rand(&rng);
			memcpy(r.ext2, &v, EXT2_SIZE);
			if (tu_rand_below(&rng, 4) == 0 &&
			    mix_txn_append_ext(t, no, ext2_id, &rng,
					       EXT2_SIZE) < 0)
				return -1;
			if (mix_txn_append_ext(t, no, ext2_id, r.ext2,
					       EXT2_SIZE) < 0)
				return -1;
		}
		if (no < 64)
			mt->app_uid[no] = r.uid;
		mt->napps = no + 1;
		if (mt->first_uid == 0)
			mt->first_uid = r.uid;
		mt->last_uid = r.uid;
		m_touch(&r, mt);
		M.r[M.n++] = r;
	}
	return 0;
}

static int op_flags(struct mix_txn *t, struct mtxn *mt)
{
	struct mix_uid_range r[3];
	uint32_t n, i;
	enum mix_modify mod = tu_rand_below(&rng, 3);
	uint8_t f = rand_flags();
	rand_ranges(r, &n);
	if (mix_txn_flags(t, r, n, mod, f) < 0)
		return -1;
	for (i = 0; i < M.n; i++) {
		struct mrec *m = &M.r[i];
		uint8_t nf;
		if (!in_ranges(m->uid, r, n))
			continue;
		nf = mod == MIX_MODIFY_ADD ? m->flags | f :
		     mod == MIX_MODIFY_REMOVE ? m->flags & ~f : f;
		if (nf != m->flags) {
			m->flags = nf;
			m_touch_vis(m, mt);
		}
	}
	return 0;
}

static int op_keywords(struct mix_txn *t, struct mtxn *mt)
{
	struct mix_uid_range r[3];
	const char *kws[4];
	uint32_t n, i, j;
	enum mix_modify mod = tu_rand_below(&rng, 3);
	uint8_t want[MAX_KW / 8] = { 0 };
	int idx;

	rand_ranges(r, &n);
	pick_keywords(kws, 3);
	if (mix_txn_keywords(t, r, n, mod, kws) < 0)
		return -1;
	for (j = 0; kws[j]; j++) {
		uint32_t before = M.nkw;
		idx = m_kw_idx(kws[j], mod != MIX_MODIFY_REMOVE);
		if (idx < 0)
			continue;
		if (M.nkw > before)
			mt->changed = 1; /* a new name is logged */
		kw_set(want, (uint32_t)idx, 1);
	}
	for (i = 0; i < M.n; i++) {
		struct mrec *m = &M.r[i];
		uint8_t nk[MAX_KW / 8];
		if (!in_ranges(m->uid, r, n))
			continue;
		memcpy(nk, m->kw, sizeof(nk));
		for (j = 0; j < sizeof(nk); j++)
			nk[j] = mod == MIX_MODIFY_ADD ? nk[j] | want[j] :
				mod == MIX_MODIFY_REMOVE ? nk[j] & ~want[j] :
				want[j];
		if (memcmp(nk, m->kw, sizeof(nk)) != 0) {
			memcpy(m->kw, nk, sizeof(nk));
			m_touch_vis(m, mt);
		}
	}
	return 0;
}

/* Plain expunge of random ranges, or (half the time) the conditional
 * one: UID EXPUNGE of random ranges or EXPUNGE of all, removing only the
 * messages that have \Deleted now (after the transaction's earlier
 * operations). */
static int op_expunge(struct mix_txn *t, struct mtxn *mt)
{
	struct mix_uid_range r[3] = { { 1, UINT32_MAX } };
	uint32_t n = 1, i, k = 0;
	int cond = (int)tu_rand_below(&rng, 2), all = 0;
	if (cond && tu_rand_below(&rng, 4) == 0)
		all = 1;
	else
		rand_ranges(r, &n);
	if ((cond ? mix_txn_expunge_deleted(t, all ? NULL : r, all ? 0 : n)
		  : mix_txn_expunge(t, r, n)) < 0)
		return -1;
	if (cond && !mt->want_x)
		mt->want_x = 1;
	for (i = 0; i < M.n; i++) {
		if (in_ranges(M.r[i].uid, r, n) &&
		    (!cond || (M.r[i].flags & MIX_FLAG_DELETED))) {
			mt->changed = 1;
			if (mt->nx == mt->capx) {
				mt->capx = mt->capx ? mt->capx * 2 : 64;
				mt->xuids = realloc(mt->xuids, mt->capx *
						    sizeof(*mt->xuids));
			}
			mt->xuids[mt->nx++] = M.r[i].uid;
			if (nxh == capxh) {
				capxh = capxh ? capxh * 2 : 1024;
				xh = realloc(xh, capxh * sizeof(*xh));
			}
			xh[nxh].modseq = PENDING;
			xh[nxh++].uid = M.r[i].uid;
		} else {
			M.r[k++] = M.r[i];
		}
	}
	M.n = k;
	return 0;
}

static int op_ext(struct mix_txn *t, struct mtxn *mt)
{
	uint64_t v = tu_rand_below(&rng, 4) ? tu_rand(&rng) : 0;
	uint32_t uid;
	struct mrec *m;
	if (tu_rand_below(&rng, 3) == 0) {
		uint32_t off = tu_rand_below(&rng, EXT_HDR - 3), sz = 1 +
			tu_rand_below(&rng, EXT_HDR - off);
		uint8_t d[EXT_HDR];
		memcpy(d, &v, 8);
		memcpy(d + 8, &v, 8);
		if (mix_txn_ext_hdr_set(t, ext_id, off, d, sz) < 0)
			return -1;
		if (memcmp(M.ext_hdr + off, d, sz) != 0) {
			memcpy(M.ext_hdr + off, d, sz);
			mt->changed = 1;
		}
		return 0;
	}
	uid = 1 + tu_rand_below(&rng, M.next_uid + 1);
	if (M.n && tu_rand_below(&rng, 2))
		uid = M.r[tu_rand_below(&rng, M.n)].uid;
	if (mix_txn_ext_set(t, uid, ext_id, &v, EXT_SIZE) < 0)
		return -1;
	m = m_find(uid);
	if (m && memcmp(m->ext, &v, EXT_SIZE) != 0) {
		memcpy(m->ext, &v, EXT_SIZE);
		m_touch(m, mt);
	}
	return 0;
}

/* Extension data of an append of this transaction given later, often
 * after other operations (which may have expunged the message). */
static int op_append_late(struct mix_txn *t, struct mtxn *mt)
{
	uint64_t v = tu_rand_below(&rng, 4) ? tu_rand(&rng) : 0;
	uint32_t no, two = tu_rand_below(&rng, 2);
	struct mrec *m;
	if (mt->napps == 0 || mt->napps > 64)
		return 0;
	no = tu_rand_below(&rng, mt->napps);
	if (mix_txn_append_ext(t, no, two ? ext2_id : ext_id, &v,
			       two ? EXT2_SIZE : EXT_SIZE) < 0)
		return -1;
	m = m_find(mt->app_uid[no]);
	if (m && memcmp(two ? m->ext2 : m->ext, &v,
			two ? EXT2_SIZE : EXT_SIZE) != 0) {
		memcpy(two ? m->ext2 : m->ext, &v, two ? EXT2_SIZE : EXT_SIZE);
		m_touch(m, mt);
	}
	return 0;
}

static int op_hdr(struct mix_txn *t, struct mtxn *mt)
{
	uint32_t which = tu_rand_below(&rng, 4), v;
	if (which == 3) {
		/* \Recent claim: [first_recent_uid, next_uid) */
		uint32_t first = M.first_recent_uid ? M.first_recent_uid : 1;
		if (mix_txn_claim_recent(t) < 0)
			return -1;
		if (first < M.next_uid) {
			if (mt->recent_first == 0)
				mt->recent_first = first;
			mt->recent_last = M.next_uid - 1;
			M.first_recent_uid = M.next_uid;
			mt->changed = 1;
		}
	} else if (which == 0) {
		v = 1 + tu_rand_below(&rng, 3);
		if (mix_txn_hdr_set(t, MIX_HDR_UID_VALIDITY, v) < 0)
			return -1;
		if (v != M.uid_validity) {
			M.uid_validity = v;
			mt->changed = 1;
		}
	} else if (which == 1) {
		v = M.next_uid + tu_rand_below(&rng, 3);
		if (mix_txn_hdr_set(t, MIX_HDR_NEXT_UID, v) < 0)
			return -1;
		if (v > M.next_uid) {
			M.next_uid = v;
			mt->changed = 1;
		}
	} else {
		v = tu_rand_below(&rng, M.next_uid + 1);
		if (mix_txn_hdr_set(t, MIX_HDR_FIRST_RECENT_UID, v) < 0)
			return -1;
		if (v > M.first_recent_uid) {
			M.first_recent_uid = v;
			mt->changed = 1;
		}
	}
	return 0;
}

/* ---- comparison ----------------------------------------------------------- */

static uint32_t first_with(uint8_t flag, int set)
{
	uint32_t i;
	for (i = 0; i < M.n; i++)
		if (!!(M.r[i].flags & flag) == set)
			return M.r[i].uid;
	return M.next_uid;
}

/* engine keyword index of model keyword i (-1: engine lacks it) */
static int64_t kwmap[MAX_KW];

static void compare_record(const struct mix_snap *s, const struct mix_record *rec,
			   const struct mrec *m, uint32_t seq)
{
	uint32_t i;
	const void *ext;
	size_t size;

	if (rec->uid != m->uid || rec->seq != seq || rec->flags != m->flags ||
	    rec->modseq != m->modseq) {
		FAIL("seq %u: uid %u flags 0x%x modseq %llx, model uid %u "
		     "flags 0x%x modseq %llx", seq, rec->uid, rec->flags,
		     (unsigned long long)rec->modseq, m->uid, m->flags,
		     (unsigned long long)m->modseq);
		return;
	}
	for (i = 0; i < M.nkw; i++) {
		int has = kwmap[i] >= 0 &&
			  mix_record_has_keyword(rec, (uint32_t)kwmap[i]);
		if (has != kw_has(m->kw, i))
			FAIL("uid %u keyword %s: %d, model %d", m->uid,
			     M.kw[i], has, kw_has(m->kw, i));
	}
	ext = mix_record_ext(s, rec, ext_id, &size);
	if (!ext || size != EXT_SIZE || memcmp(ext, m->ext, EXT_SIZE) != 0)
		FAIL("uid %u: extension data differs: %016llx vs model %016llx (size %zu)", m->uid, ext ? (unsigned long long)*(const uint64_t *)ext : 0ull, (unsigned long long)*(const uint64_t *)m->ext, size);
	ext = mix_record_ext(s, rec, ext2_id, &size);
	if (!ext || size != EXT2_SIZE || memcmp(ext, m->ext2, EXT2_SIZE) != 0)
		FAIL("uid %u: second extension's data differs", m->uid);
}

static void compare_header(const struct mix_snap *s)
{
	struct mix_snap_counts c;
	uint32_t i, seen = 0, del = 0;
	const void *h;
	size_t hs;

	for (i = 0; i < M.n; i++) {
		seen += !!(M.r[i].flags & MIX_FLAG_SEEN);
		del += !!(M.r[i].flags & MIX_FLAG_DELETED);
	}
	mix_snap_counts(s, &c);
	if (mix_snap_messages_count(s) != M.n ||
	    mix_snap_next_uid(s) != M.next_uid ||
	    mix_snap_uid_validity(s) != M.uid_validity ||
	    mix_snap_highest_modseq(s) != M.highest_modseq)
		FAIL("header: count %u next_uid %u uidv %u hms %llx; model "
		     "%u %u %u %llx", mix_snap_messages_count(s),
		     mix_snap_next_uid(s), mix_snap_uid_validity(s),
		     (unsigned long long)mix_snap_highest_modseq(s), M.n,
		     M.next_uid, M.uid_validity,
		     (unsigned long long)M.highest_modseq);
	if (c.seen != seen || c.deleted != del ||
	    c.first_unseen_uid_lowwater != first_with(MIX_FLAG_SEEN, 0) ||
	    c.first_deleted_uid_lowwater != first_with(MIX_FLAG_DELETED, 1) ||
	    c.first_recent_uid != M.first_recent_uid)
		FAIL("counters: seen %u deleted %u lw-unseen %u lw-deleted %u "
		     "recent %u; model %u %u %u %u %u", c.seen, c.deleted,
		     c.first_unseen_uid_lowwater, c.first_deleted_uid_lowwater,
		     c.first_recent_uid, seen, del,
		     first_with(MIX_FLAG_SEEN, 0),
		     first_with(MIX_FLAG_DELETED, 1), M.first_recent_uid);
	if (mix_snap_keyword_count(s) != M.nkw)
		FAIL("keyword count %u, model %u", mix_snap_keyword_count(s),
		     M.nkw);
	for (i = 0; i < M.nkw && i < mix_snap_keyword_count(s); i++)
		if (strcmp(mix_snap_keyword_name(s, i), M.kw[i]) != 0)
			FAIL("keyword %u: %s, model %s", i,
			     mix_snap_keyword_name(s, i), M.kw[i]);
	h = mix_snap_ext_hdr(s, ext_id, &hs);
	if (!h || hs != EXT_HDR || memcmp(h, M.ext_hdr, EXT_HDR) != 0)
		FAIL("extension header differs");
}

static void compare_lookups(const struct mix_snap *s)
{
	struct mix_record rec;
	uint32_t k, s1, s2;
	for (k = 0; k < 8; k++) {
		uint32_t uid = 1 + tu_rand_below(&rng, M.next_uid + 2), i;
		const struct mrec *m = m_find(uid);
		int found = mix_snap_lookup_uid(s, uid, &rec);
		for (i = 0; i < M.n && M.r[i].uid < uid; i++)
			;
		if (found != !!m || rec.seq != i + 1)
			FAIL("lookup uid %u: found %d seq %u; model %d seq %u",
			     uid, found, rec.seq, !!m, i + 1);
		if (M.n) {
			uint32_t seq = 1 + tu_rand_below(&rng, M.n);
			if (!mix_snap_lookup_seq(s, seq, &rec) ||
			    rec.uid != M.r[seq - 1].uid)
				FAIL("lookup seq %u: uid %u, model %u", seq,
				     rec.uid, M.r[seq - 1].uid);
		}
		{
			uint32_t a = 1 + tu_rand_below(&rng, M.next_uid + 2);
			uint32_t b = a + tu_rand_below(&rng, 20), lo = 0, hi = 0;
			for (i = 0; i < M.n; i++) {
				if (M.r[i].uid >= a && M.r[i].uid <= b) {
					if (!lo)
						lo = i + 1;
					hi = i + 1;
				}
			}
			found = mix_snap_uid_range_to_seq(s, a, b, &s1, &s2);
			if (found != !!lo || (lo && (s1 != lo || s2 != hi)))
				FAIL("range %u:%u -> %d %u:%u; model %u:%u", a,
				     b, found, s1, s2, lo, hi);
		}
	}
	if (mix_snap_lookup_seq(s, M.n + 1, &rec) || mix_snap_lookup_seq(s, 0, &rec))
		FAIL("lookup of seq out of range succeeded");
}

static int in_uidset(const struct mix_uid_range *r, uint32_t n, uint32_t uid)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (r[mid].last < uid)
			lo = mid + 1;
		else if (r[mid].first > uid)
			hi = mid;
		else
			return 1;
	}
	return 0;
}

/* CHANGEDSINCE and expunged-since for a random m against the model. */
static long xh_answered, xh_refused;

static void compare_condstore(const struct mix_snap *s)
{
	struct mix_changed_iter it;
	struct mix_record rec;
	struct mix_uid_range *ex;
	uint32_t i, k = 0, nex, total = 0;
	uint64_t m, oldest;
	int ret;

	if (nissued == 0)
		return;
	/* mostly recent modseqs (what real clients resync from), sometimes
	 * any */
	i = tu_rand_below(&rng, 32) ? nissued - 1 -
		tu_rand_below(&rng, nissued < 300 ? nissued : 300) :
		tu_rand_below(&rng, nissued);
	m = issued[i] - (tu_rand_below(&rng, 2) ? 0 : 1);
	mix_changed_iter_init(&it, s, m);
	while (mix_changed_iter_next(&it, NULL, &rec)) {
		while (k < M.n && M.r[k].modseq <= m)
			k++;
		if (k == M.n || M.r[k].uid != rec.uid) {
			FAIL("changed since %llx: engine gives uid %u, model %u",
			     (unsigned long long)m, rec.uid,
			     k < M.n ? M.r[k].uid : 0);
			return;
		}
		k++;
	}
	while (k < M.n && M.r[k].modseq <= m)
		k++;
	if (k != M.n)
		FAIL("changed since %llx: engine misses uid %u",
		     (unsigned long long)m, M.r[k].uid);
	ret = mix_snap_expunged_since(s, m, &ex, &nex, &oldest);
	if (ret == 0) {
		xh_refused++;
		if (m >= oldest)
			FAIL("expunged since %llx refused, oldest %llx",
			     (unsigned long long)m,
			     (unsigned long long)oldest);
		return;
	}
	xh_answered++;
	{
		/* xh is in commit (modseq) order: start at the first > m */
		uint32_t lo = 0, hi = nxh;
		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;
			if (xh[mid].modseq <= m)
				lo = mid + 1;
			else
				hi = mid;
		}
		i = lo;
	}
	for (; i < nxh; i++) {
		int want = 1;
		total++;
		if (!in_uidset(ex, nex, xh[i].uid))
			FAIL("expunged since %llx: uid %u (modseq %llx) %s",
			     (unsigned long long)m, xh[i].uid,
			     (unsigned long long)xh[i].modseq,
			     want ? "missing" : "reported");
	}
	for (i = 0; i < nex; i++)
		total -= ex[i].last - ex[i].first + 1;
	if (total != 0)
		FAIL("expunged since %llx: ranges hold UIDs never expunged",
		     (unsigned long long)m);
	free(ex);
}

static void compare(struct mix_index *idx)
{
	const struct mix_snap *s;
	struct mix_iter it;
	struct mix_record rec;
	uint32_t seq = 0;

	mix_read_lock();
	s = mix_index_snap(idx);
	compare_header(s);
	for (seq = 0; seq < M.nkw; seq++) {
		uint32_t e;
		kwmap[seq] = mix_snap_keyword_lookup(s, M.kw[seq], &e) ? (int64_t)e : -1;
	}
	seq = 0;
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &rec)) {
		if (seq >= M.n) {
			FAIL("more records than the model's %u", M.n);
			break;
		}
		compare_record(s, &rec, &M.r[seq], seq + 1);
		seq++;
	}
	if (seq != M.n)
		FAIL("iterated %u records, model has %u", seq, M.n);
	compare_lookups(s);
	compare_condstore(s);
	mix_read_unlock();
}

/* ---- the run ---------------------------------------------------------------- */

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The UIDs of a result set, one by one, against a sorted list. */
static void compare_set(const char *what, const struct mix_uid_range *r,
			uint32_t n, const uint32_t *want, uint32_t nwant)
{
	uint32_t i, k = 0, u;
	for (i = 0; i < n; i++) {
		if (i && r[i].first <= r[i - 1].last + 1) {
			FAIL("%s set not sorted and merged at %u", what,
			     r[i].first);
			return;
		}
		for (u = r[i].first; u <= r[i].last; u++, k++)
			if (k >= nwant || want[k] != u) {
				FAIL("%s set has UID %u, model expects %u", what,
				     u, k < nwant ? want[k] : 0);
				return;
			}
	}
	if (k != nwant)
		FAIL("%s set has %u UIDs, model %u (first missing %u)", what, k,
		     nwant, want[k]);
}

/* changed (asked for: every UID whose flags or keywords changed and that
 * is still there), expunged (asked for or with a conditional expunge),
 * the \Recent claim. */
static void compare_result(const struct mix_commit_result *res,
			   struct mtxn *mt)
{
	uint32_t i, *vis = NULL, nvis = 0;
	if (mt->want_x == 2) {
		vis = malloc((M.n + 1) * sizeof(*vis));
		for (i = 0; i < M.n; i++)
			if (M.r[i].vis)
				vis[nvis++] = M.r[i].uid;
		compare_set("changed", res->changed, res->changed_count, vis,
			    nvis);
		free(vis);
	} else if (res->changed) {
		FAIL("a changed set (%u ranges) nobody asked for",
		     res->changed_count);
	}
	for (i = 0; i < M.n; i++)
		M.r[i].vis = 0;
	if (mt->want_x) {
		if (mt->nx) /* NULL when nothing was expunged */
			qsort(mt->xuids, mt->nx, sizeof(*mt->xuids), u32_cmp);
		compare_set("expunged", res->expunged, res->expunged_count,
			    mt->xuids, mt->nx);
	} else if (res->expunged) {
		FAIL("an expunged set (%u ranges) nobody asked for",
		     res->expunged_count);
	}
	if (res->recent_first != mt->recent_first ||
	    res->recent_last != mt->recent_last)
		FAIL("\\Recent claim %u:%u, model %u:%u", res->recent_first,
		     res->recent_last, mt->recent_first, mt->recent_last);
}

static int one_txn(struct mix_index *idx, long *ops)
{
	static int (*const fns[])(struct mix_txn *, struct mtxn *) = {
		op_append, op_append, op_flags, op_flags, op_keywords,
		op_keywords, op_expunge, op_ext, op_hdr, op_append_late,
	};
	struct mix_txn *t;
	struct mtxn mt = { 0 };
	struct mix_commit_result res;
	uint32_t n = 1 + tu_rand_below(&rng, 4), i;
	int ret;

	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	if (tu_rand_below(&rng, 2)) {
		mix_txn_want_changed(t);
		mt.want_x = 2;
	}
	for (i = 0; i < n; i++) {
		uint32_t which = tu_rand_below(&rng, 10);
		if (which == 6 && M.n < 100)
			which = 0; /* keep the mailbox from emptying */
		if (which <= 1 && M.n > 600)
			which = 6;
		if (fns[which](t, &mt) < 0) {
			FAIL("building op %u: %s", which, mix_last_error());
			mix_txn_abort(&t);
			free(mt.xuids);
			return -1;
		}
		(*ops)++;
	}
	ret = mix_txn_commit(&t, tu_rand_below(&rng, 50) ? MIX_DURABILITY_NONE
						   : MIX_DURABILITY_SYNC, &res);
	if (ret < 0) {
		FAIL("commit: %s: %s", mix_strerror(ret), mix_last_error());
		free(mt.xuids);
		return -1;
	}
	compare_result(&res, &mt);
	mix_commit_result_free(&res);
	free(mt.xuids);
	if (res.no_changes != !mt.changed)
		FAIL("no_changes %d but the model %s", res.no_changes,
		     mt.changed ? "changed records" : "changed nothing");
	if (mt.changed) {
		if (res.modseq <= M.highest_modseq)
			FAIL("modseq %llx not above %llx",
			     (unsigned long long)res.modseq,
			     (unsigned long long)M.highest_modseq);
		M.highest_modseq = res.modseq;
	}
	if (res.first_uid != mt.first_uid || res.last_uid != mt.last_uid)
		FAIL("appended uids %u-%u, model %u-%u", res.first_uid,
		     res.last_uid, mt.first_uid, mt.last_uid);
	for (i = 0; i < M.n; i++)
		if (M.r[i].modseq == PENDING)
			M.r[i].modseq = res.modseq;
	for (i = nxh; i-- > 0 && xh[i].modseq == PENDING;)
		xh[i].modseq = res.modseq;
	if (mt.changed) {
		if (nissued == capissued) {
			capissued = capissued ? capissued * 2 : 1024;
			issued = realloc(issued, capissued * sizeof(*issued));
		}
		issued[nissued++] = res.modseq;
	}
	return 0;
}

static void reopen(struct mix_engine *e, struct mix_index **idx,
		   const char *dir)
{
	int ret = mix_index_close(idx);
	if (ret < 0)
		FAIL("close: %s", mix_last_error());
	ret = mix_index_open(e, dir, 0, idx);
	if (ret < 0)
		BAIL("reopen at step %ld: %s", step, mix_last_error());
}

int main(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *idx;
	char *dir = tu_tmpdir("model");
	long ops = 0, target = (long)(100000 * tu_scale()), reopens = 0;
	uint32_t i;
	int ret;

	rng = tu_seed();
	for (i = 0; i < KW_POOL; i++)
		snprintf(pool[i], sizeof(pool[i]), i % 7 ? "kw%u" : "$Label%u", i);
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 16384;
	cfg.expunge_history_max = 2000; /* small: trimming happens */
	is(mix_engine_create(&cfg, &e), 0, "engine created");
	ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx);
	is(ret, 0, "index created: %s", mix_last_error());
	if (ret < 0)
		return tap_done();
	ret = mix_index_ext_register(idx, "test.ext", EXT_SIZE, 8, EXT_HDR,
				     &ext_id);
	ok(ret == 0 && ext_id >= MIX_EXT_FIRST, "extension registered as %u",
	   ext_id);
	ret = mix_index_ext_register(idx, "test.ext2", EXT2_SIZE, 1, 0,
				     &ext2_id);
	ok(ret == 0 && ext2_id > ext_id, "second extension registered as %u",
	   ext2_id);
	{
		struct mix_open_info info;
		mix_index_open_info(idx, &info);
		is(info.created, 1, "open info says created");
	}
	mix_read_lock();
	M.next_uid = 1;
	M.first_recent_uid = 1;
	M.highest_modseq = mix_snap_highest_modseq(mix_index_snap(idx));
	mix_read_unlock();

	for (step = 0; ops < target && failures == 0; step++) {
		if (one_txn(idx, &ops) < 0)
			break;
		compare(idx);
		if (step % 2500 == 2499) {
			reopen(e, &idx, dir);
			reopens++;
			compare(idx);
		}
	}
	is(failures, 0, "%ld random operations in %ld commits agree with "
	   "the model after every commit", ops, step);
	ok(ops >= target, "ran all %ld operations", target);
	reopen(e, &idx, dir);
	compare(idx);
	is(failures, 0, "after %ld reopens and a final one the index agrees "
	   "(%u messages, %u keywords)", reopens + 1, M.n, M.nkw);
	ok(M.nkw > 64, "more than 64 keywords in use (%u)", M.nkw);
	ok(xh_answered > 0 && nxh > 0, "expunged-since answered %ld times "
	   "(%ld refused below the bounded history), %u expunges", xh_answered,
	   xh_refused, nxh);
	ok(mix_index_close(&idx) == 0 && idx == NULL, "closed");
	ok(mix_engine_free(&e) == 0 && e == NULL, "engine freed");
	for (i = 0; i < M.nkw; i++)
		free(M.kw[i]);
	free(M.r);
	free(xh);
	free(issued);
	tu_rmdir_r(dir);
	free(dir);
	return tap_done();
}
