/*
 * Virtual mailboxes (engine/virtual.c, engine/virtual-sync.c;
 * docs/virtual.md), as a model test: three backends get random appends
 * (with received dates), flag and keyword changes, multi-range expunges,
 * removal from the definition and re-creation (new UIDVALIDITY); the
 * virtual mailbox is synced after each step, with and without expunges
 * allowed, and compared with the model: which messages, in which order of
 * virtual UIDs (received date, mailbox id, real UID for new matches), the
 * UIDs of messages already there unchanged, flags and keywords mirrored,
 * no-longer-matching messages kept until an expunge-allowed sync.  The
 * virtual mailbox is closed and reopened in the middle, and reopened with
 * another rule (a rebuild).  Separate checks: an unchanged backend is
 * skipped without reading a record; a damaged header or vmap rebuilds and
 * says so.  compare() also checks the reverse map
 * (mix_virtual_lookup_real) and the recorded backend states
 * (mix_virtual_snap_backend) on the same snapshot.  live_check: in live
 * mode a backend append, flag change and expunge reach the virtual
 * mailbox (and its watcher) with no sync call, waited for generously.
 * writes_check: flags, keywords and expunges on virtual UIDs reach the
 * backends and come back by sync; UNCHANGEDSINCE over three backends
 * reports MODIFIED per virtual UID (a backend change the virtual mailbox
 * has not mirrored, a virtual modseq above it); appends need a save
 * target that is one of the backends.
 * Seed from MIX_SEED
 * (always printed); MIX_VIRTUAL_STEPS sets the number of steps.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mix/mix.h"
#include "mix/virtual.h"
#include "tap.h"
#include "testutil.h"
#include "crc32c.h"

#define NB 3
#define DAY 86400u
#define FEB1 UINT64_C(1769904000)
#define MIRROR (MIX_FLAG_ANSWERED | MIX_FLAG_FLAGGED | MIX_FLAG_DELETED | \
		MIX_FLAG_SEEN | MIX_FLAG_DRAFT)

static const char *kw_pool[] = { "todo", "TODO", "other", "Work" };
#define KW_POOL 4

static const char *rules[] = {
	"OR FLAGGED (KEYWORD todo SINCE 1-Feb-2026)",
	"UNSEEN NOT KEYWORD other",
};

struct mmsg {
	uint32_t uid;
	uint8_t flags;
	unsigned kws;
	uint64_t received;
};

struct mbk {
	const char *name;
	char *dir;
	struct mix_index *index;
	int in_def;
	uint32_t gen;             /* bumped by re-creation */
	uint32_t id;              /* the model's mailbox id (0: none) */
	uint32_t uid_validity;
	struct mmsg *m;
	uint32_t count, cap;
	int touched;              /* changed since the last sync */
	int recreated;            /* re-created since the last sync */
	uint32_t touched_msgs;    /* messages changed (upper bound) */
};

struct ment {
	int b;
	uint32_t gen, ruid, vuid; /* vuid 0: not yet known */
};

static struct mix_engine *engine;
static struct mbk bk[NB];
static struct ment *vl;
static uint32_t vl_count, vl_cap;
static uint32_t highest_id;
static int rule_no;
static char *vdir;
static struct mix_virtual *vm;
static char warnings[4096];
static uint64_t rng;
static uint32_t checks;
static struct {
	uint64_t added, expunged, updated, pending, skipped, examined;
	uint32_t max;
} st;

static void on_warning(void *ctx, const char *msg)
{
	size_t n = strlen(warnings);
	(void)ctx;
	snprintf(warnings + n, sizeof(warnings) - n, "%s%s", n ? "; " : "",
		 msg);
}

static int kw_has(unsigned kws, const char *name)
{
	int i;
	for (i = 0; i < KW_POOL; i++)
		if ((kws >> i & 1) && strcmp(kw_pool[i], name) == 0)
			return 1;
	return 0;
}

/* The rules, written out by hand. */
static int model_match(const struct mmsg *m)
{
	if (rule_no == 0)
		return (m->flags & MIX_FLAG_FLAGGED) ||
		       ((kw_has(m->kws, "todo") || kw_has(m->kws, "TODO")) &&
			m->received >= FEB1);
	return !(m->flags & MIX_FLAG_SEEN) && !kw_has(m->kws, "other");
}

static struct mmsg *model_find(struct mbk *b, uint32_t uid)
{
	uint32_t i;
	for (i = 0; i < b->count; i++)
		if (b->m[i].uid == uid)
			return &b->m[i];
	return NULL;
}

/* ---- backends ---------------------------------------------------------- */

static void bk_open(struct mbk *b, unsigned flags)
{
	struct mix_txn *t;
	uint32_t ext;

	if (mix_index_open(engine, b->dir, flags, &b->index) < 0)
		BAIL("open %s: %s", b->dir, mix_last_error());
	if (mix_index_ext_register(b->index, "received", 8, 8, 0, &ext) < 0)
		BAIL("register received: %s", mix_last_error());
	/* half the re-creations keep the UIDVALIDITY: then only the guid
	 * (mix's indexid) tells the virtual mailbox */
	if (b->gen == 0 || tu_rand_below(&rng, 2))
		b->uid_validity = 1000 + b->gen * 10 + (uint32_t)(b - bk);
	if (mix_txn_begin(b->index, &t) < 0 ||
	    mix_txn_hdr_set(t, MIX_HDR_UID_VALIDITY, b->uid_validity) < 0 ||
	    mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("uid_validity: %s", mix_last_error());
}

/* The backends the model's definition has now, into d; how many. */
static uint32_t def_backends(struct mix_virtual_backend *d)
{
	uint32_t n = 0;
	int i;

	for (i = 0; i < NB; i++) {
		if (!bk[i].in_def)
			continue;
		d[n].name = bk[i].name;
		d[n].index = bk[i].index;
		n++;
	}
	return n;
}

static void set_backends(void)
{
	struct mix_virtual_backend d[NB];
	uint32_t n = def_backends(d);

	if (mix_virtual_set_backends(vm, d, n) < 0)
		BAIL("set_backends: %s", mix_last_error());
}

static void virtual_open(void)
{
	struct mix_virtual_backend d[NB];
	struct mix_virtual_def def;
	uint32_t n = def_backends(d);

	memset(&def, 0, sizeof(def));
	def.backends = d;
	def.backend_count = n;
	def.rule = rules[rule_no];
	def.warning = on_warning;
	if (mix_virtual_open(engine, vdir, &def, &vm) < 0)
		BAIL("virtual open: %s", mix_last_error());
}

static void op_append(struct mbk *b)
{
	uint32_t n = 1 + tu_rand_below(&rng, 8), i, j, a;
	struct mix_commit_result cr;
	struct mix_txn *t;
	struct mmsg *m = calloc(n, sizeof(*m));
	uint32_t ext;

	mix_read_lock();
	if (!mix_snap_ext_lookup(mix_index_snap(b->index), "received", &ext))
		BAIL("no received ext");
	mix_read_unlock();
	if (mix_txn_begin(b->index, &t) < 0)
		BAIL("begin");
	for (i = 0; i < n; i++) {
		const char *kws[KW_POOL + 1];
		uint32_t k = 0;
		m[i].flags = (uint8_t)(tu_rand_below(&rng, 32) & MIRROR);
		m[i].kws = tu_rand_below(&rng, 1u << KW_POOL);
		/* few distinct dates: ties exercise the mailbox id/UID order */
		m[i].received = FEB1 + ((int64_t)tu_rand_below(&rng, 9) - 4) *
					       (int64_t)(DAY / 2);
		for (j = 0; j < KW_POOL; j++)
			if (m[i].kws >> j & 1)
				kws[k++] = kw_pool[j];
		kws[k] = NULL;
		if (mix_txn_append(t, m[i].flags, kws, &a) < 0 ||
		    mix_txn_append_ext(t, a, ext, &m[i].received, 8) < 0)
			BAIL("append: %s", mix_last_error());
	}
	if (mix_txn_commit(&t, MIX_DURABILITY_NONE, &cr) < 0)
		BAIL("commit: %s", mix_last_error());
	for (i = 0; i < n; i++) {
		m[i].uid = cr.first_uid + i;
		if (b->count == b->cap) {
			b->cap = b->cap ? b->cap * 2 : 64;
			b->m = realloc(b->m, b->cap * sizeof(*b->m));
		}
		b->m[b->count++] = m[i];
	}
	mix_commit_result_free(&cr);
	free(m);
	b->touched = 1;
	b->touched_msgs += n;
}

/* 1..3 random UID ranges within the backend's UIDs. */
static uint32_t random_ranges(struct mbk *b, struct mix_uid_range *r)
{
	uint32_t n = 1 + tu_rand_below(&rng, 3), i, top;

	top = b->count ? b->m[b->count - 1].uid + 2 : 3;
	for (i = 0; i < n; i++) {
		r[i].first = 1 + tu_rand_below(&rng, top);
		r[i].last = r[i].first + tu_rand_below(&rng, 6);
	}
	/* mix wants them sorted and apart for expunge; keep them so */
	for (i = 1; i < n; i++)
		if (r[i].first <= r[i - 1].last + 1) {
			r[i].first = r[i - 1].last + 2;
			r[i].last = r[i].first + tu_rand_below(&rng, 6);
		}
	return n;
}

static int in_ranges(const struct mix_uid_range *r, uint32_t n, uint32_t uid)
{
	uint32_t i;
	for (i = 0; i < n; i++)
		if (uid >= r[i].first && uid <= r[i].last)
			return 1;
	return 0;
}

static void op_change(struct mbk *b)
{
	static const uint8_t fl[] = { MIX_FLAG_FLAGGED, MIX_FLAG_SEEN,
				      MIX_FLAG_DELETED };
	struct mix_uid_range r[3];
	uint32_t n = random_ranges(b, r), i;
	int add = tu_rand_below(&rng, 2), kw = tu_rand_below(&rng, 2);
	uint32_t which = tu_rand_below(&rng, kw ? KW_POOL : 3);
	struct mix_txn *t;
	int ret;

	if (mix_txn_begin(b->index, &t) < 0)
		BAIL("begin");
	if (kw) {
		const char *k[2] = { kw_pool[which], NULL };
		ret = mix_txn_keywords(t, r, n, add ? MIX_MODIFY_ADD :
				       MIX_MODIFY_REMOVE, k);
	} else {
		ret = mix_txn_flags(t, r, n, add ? MIX_MODIFY_ADD :
				    MIX_MODIFY_REMOVE, fl[which]);
	}
	if (ret < 0 || mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("change: %s", mix_last_error());
	/* a keyword new to the index moves highest_modseq even when no
	 * message in the ranges exists: count the backend as changed */
	b->touched = 1;
	for (i = 0; i < b->count; i++) {
		struct mmsg *m = &b->m[i];
		uint8_t f0 = m->flags;
		unsigned k0 = m->kws;
		if (!in_ranges(r, n, m->uid))
			continue;
		if (kw)
			m->kws = add ? m->kws | 1u << which
				     : m->kws & ~(1u << which);
		else
			m->flags = add ? (uint8_t)(m->flags | fl[which])
				       : (uint8_t)(m->flags & ~fl[which]);
		if (f0 != m->flags || k0 != m->kws) {
			b->touched = 1;
			b->touched_msgs++;
		}
	}
}

static void op_expunge(struct mbk *b)
{
	struct mix_uid_range r[3];
	uint32_t n = random_ranges(b, r), i, j;
	struct mix_txn *t;

	if (mix_txn_begin(b->index, &t) < 0 || mix_txn_expunge(t, r, n) < 0 ||
	    mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("expunge: %s", mix_last_error());
	b->touched = 1;
	for (i = 0, j = 0; i < b->count; i++)
		if (!in_ranges(r, n, b->m[i].uid))
			b->m[j++] = b->m[i];
	b->count = j;
}

static void op_recreate(struct mbk *b)
{
	uint32_t old_next = tu_next_uid(b->index), old_uv = b->uid_validity;

	if (mix_index_close(&b->index) < 0)
		BAIL("close: %s", mix_last_error());
	b->gen++;
	bk_open(b, MIX_OPEN_RECREATE);
	b->count = 0;
	b->touched = 1;
	if (b->in_def)
		set_backends();
	/* same UIDVALIDITY and UIDs past the old next_uid before the next
	 * sync: only the guid says it is another mailbox */
	if (b->uid_validity == old_uv)
		while (tu_next_uid(b->index) <= old_next)
			op_append(b);
}

/* ---- the model's virtual mailbox ---------------------------------------- */

static int madd_cmp(const void *pa, const void *pb)
{
	const struct ment *a = pa, *b = pb;
	const struct mmsg *ma = model_find(&bk[a->b], a->ruid);
	const struct mmsg *mb = model_find(&bk[b->b], b->ruid);

	if (ma->received != mb->received)
		return ma->received < mb->received ? -1 : 1;
	if (bk[a->b].id != bk[b->b].id)
		return bk[a->b].id < bk[b->b].id ? -1 : 1;
	return a->ruid < b->ruid ? -1 : a->ruid > b->ruid;
}

static void vl_push(struct ment e)
{
	if (vl_count == vl_cap) {
		vl_cap = vl_cap ? vl_cap * 2 : 256;
		vl = realloc(vl, vl_cap * sizeof(*vl));
	}
	vl[vl_count++] = e;
}

/* What the sync must produce.  rebuild: every message gets a new UID. */
static void model_sync(int expunge, int rebuild)
{
	struct ment *adds = NULL;
	uint32_t i, j, n = 0, nadd = 0;
	int b;

	if (rebuild)
		vl_count = 0;
	for (b = 0; b < NB; b++)
		if (bk[b].in_def && bk[b].id == 0)
			bk[b].id = ++highest_id;
	for (i = 0; i < vl_count; i++) {
		struct mbk *k = &bk[vl[i].b];
		struct mmsg *m = model_find(k, vl[i].ruid);
		if (!k->in_def || vl[i].gen != k->gen || m == NULL)
			continue;
		if (expunge && !model_match(m))
			continue;
		vl[n++] = vl[i];
	}
	vl_count = n;
	for (b = 0; b < NB; b++) {
		if (!bk[b].in_def)
			continue;
		for (i = 0; i < bk[b].count; i++) {
			int have = 0;
			if (!model_match(&bk[b].m[i]))
				continue;
			for (j = 0; j < vl_count && !have; j++)
				have = vl[j].b == b && vl[j].ruid ==
				       bk[b].m[i].uid;
			if (have)
				continue;
			adds = realloc(adds, (nadd + 1) * sizeof(*adds));
			adds[nadd].b = b;
			adds[nadd].gen = bk[b].gen;
			adds[nadd].ruid = bk[b].m[i].uid;
			adds[nadd].vuid = 0;
			nadd++;
		}
	}
	if (nadd > 0)
		qsort(adds, nadd, sizeof(*adds), madd_cmp);
	for (i = 0; i < nadd; i++)
		vl_push(adds[i]);
	free(adds);
}

static unsigned rec_kws(const struct mix_snap *s, const struct mix_record *r)
{
	unsigned mask = 0;
	uint32_t i, j;

	for (i = 0; i < r->keywords_bits; i++) {
		const char *name;
		if (!mix_record_has_keyword(r, i))
			continue;
		name = mix_snap_keyword_name(s, i);
		for (j = 0; j < KW_POOL; j++)
			if (strcmp(name, kw_pool[j]) == 0)
				mask |= 1u << j;
		if (j == KW_POOL && (mask & (1u << KW_POOL)) == 0) {
			for (j = 0; j < KW_POOL; j++)
				if (strcmp(name, kw_pool[j]) == 0)
					break;
			if (j == KW_POOL)
				mask |= 1u << KW_POOL;   /* unknown name */
		}
	}
	return mask;
}

/* Compare the virtual index with vl; learn the UIDs of new entries. */
/* mix_virtual_lookup_real_many over every model message of backend b
 * (and one absent UID, in reverse order) equals one lookup_real each. */
static int many_agree(const struct mix_snap *s, int b)
{
	uint32_t n = bk[b].count + 1, i, one, *u, *got;
	int ok_ = 1, found = 0, want = 0;

	u = calloc(n, sizeof(*u));
	got = calloc(n, sizeof(*got));
	if (u == NULL || got == NULL)
		BAIL("calloc");
	for (i = 0; i < bk[b].count; i++)
		u[bk[b].count - 1 - i] = bk[b].m[i].uid;
	u[bk[b].count] = UINT32_MAX - 1;
	found = mix_virtual_lookup_real_many(s, bk[b].id, u, n, got);
	for (i = 0; i < n; i++) {
		if (!mix_virtual_lookup_real(s, bk[b].id, u[i], &one))
			one = 0;
		want += one != 0;
		if (got[i] != one)
			ok_ = 0;
	}
	free(u);
	free(got);
	return ok_ && found == want;
}

static int compare(const char *step)
{
	struct mix_iter it;
	struct mix_record rec;
	const struct mix_snap *s;
	uint32_t i = 0, prev = 0, id, ruid, vuid = 0;
	int bad = 0, b;

	for (b = 0; b < NB; b++) {
		uint32_t got = 0;
		int have = mix_virtual_mailbox_id(vm, bk[b].name, &got);
		if (bk[b].in_def && (!have || got != bk[b].id)) {
			diag("%s: backend %s: mailbox id %u, expected %u", step,
			     bk[b].name, have ? got : 0, bk[b].id);
			bad = 1;
		}
	}
	mix_read_lock();
	s = mix_index_snap(mix_virtual_index(vm));
	if (mix_snap_messages_count(s) != vl_count) {
		diag("%s: %u virtual messages, expected %u", step,
		     mix_snap_messages_count(s), vl_count);
		bad = 1;
	}
	mix_iter_init(&it, s, 1);
	while (!bad && mix_iter_next(&it, &rec)) {
		struct ment *e = &vl[i];
		struct mmsg *m;
		if (!mix_virtual_lookup(s, rec.uid, &id, &ruid) ||
		    id != bk[e->b].id || ruid != e->ruid ||
		    (e->vuid != 0 && e->vuid != rec.uid) || rec.uid <= prev) {
			diag("%s: virtual #%u: UID %u -> (%u, %u), expected "
			     "UID %u -> (%u, %u)", step, i + 1, rec.uid, id,
			     ruid, e->vuid, bk[e->b].id, e->ruid);
			bad = 1;
			break;
		}
		if (!mix_virtual_lookup_real(s, id, ruid, &vuid) ||
		    vuid != rec.uid) {
			diag("%s: reverse map of (%u, %u): UID %u, expected %u",
			     step, id, ruid, vuid, rec.uid);
			bad = 1;
		}
		m = model_find(&bk[e->b], e->ruid);
		if ((rec.flags & MIRROR) != m->flags ||
		    rec_kws(s, &rec) != m->kws) {
			diag("%s: virtual UID %u: flags %#x keywords %#x, "
			     "backend %s UID %u has %#x %#x", step, rec.uid,
			     rec.flags & MIRROR, rec_kws(s, &rec),
			     bk[e->b].name, e->ruid, m->flags, m->kws);
			bad = 1;
		}
		e->vuid = rec.uid;
		prev = rec.uid;
		i++;
	}
	/* no reverse entry for what the forward map lacks, and the header
	 * state as the public accessor gives it */
	for (b = 0; b < NB && !bad; b++) {
		struct mix_virtual_backend_state bst;
		if (!bk[b].in_def || bk[b].id == 0)
			continue;
		if (!many_agree(s, b)) {
			diag("%s: backend %s: lookup_real_many differs from "
			     "lookup_real", step, bk[b].name);
			bad = 1;
		}
		if (mix_virtual_lookup_real(s, bk[b].id, UINT32_MAX - 1,
					    &vuid) ||
		    mix_virtual_lookup_real(s, highest_id + 1, 1, &vuid)) {
			diag("%s: reverse map of an absent message: UID %u",
			     step, vuid);
			bad = 1;
		}
		if (bk[b].index != NULL &&
		    (!mix_virtual_snap_backend(s, bk[b].id, &bst) ||
		     bst.uid_validity != bk[b].uid_validity ||
		     bst.highest_modseq > mix_snap_highest_modseq(
			     mix_index_snap(bk[b].index)))) {
			diag("%s: backend %s: recorded state missing or "
			     "uid_validity %u (expected %u)", step, bk[b].name,
			     bst.uid_validity, bk[b].uid_validity);
			bad = 1;
		}
	}
	mix_read_unlock();
	return !bad;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t x;
	memcpy(&x, p, 4);
	return x;
}

/* The sync was one transaction, and the vmap header (docs/format.md §5.2)
 * holds each backend's state as of the sync. */
static void hdr_check(const char *step, const struct mix_virtual_sync_result *res)
{
	const struct mix_snap *s;
	const uint8_t *h;
	size_t size = 0;
	uint32_t ext, count, i, b;
	int bad = 0;

	mix_read_lock();
	s = mix_index_snap(mix_virtual_index(vm));
	if (res->modseq != 0 && mix_snap_highest_modseq(s) != res->modseq) {
		diag("%s: virtual highest modseq %llu, the sync's %llu", step,
		     (unsigned long long)mix_snap_highest_modseq(s),
		     (unsigned long long)res->modseq);
		bad = 1;
	}
	if (!mix_snap_ext_lookup(s, "vmap", &ext) ||
	    (h = mix_snap_ext_hdr(s, ext, &size)) == NULL || size < 32) {
		bad = 1;
		goto out;
	}
	count = get32(h + 20);
	for (i = 0; i < count && 32 + (i + 1) * 40 <= size; i++) {
		const uint8_t *e = h + 32 + i * 40;
		uint64_t m;
		memcpy(&m, e + 16, 8);
		for (b = 0; b < NB; b++) {
			uint32_t id;
			if (!bk[b].in_def || bk[b].index == NULL ||
			    !mix_virtual_mailbox_id(vm, bk[b].name, &id) ||
			    id != get32(e))
				continue;
			if (get32(e + 8) != bk[b].uid_validity ||
			    m != mix_snap_highest_modseq(
				    mix_index_snap(bk[b].index))) {
				diag("%s: header entry %u (%s): uid_validity %u "
				     "modseq %llu, backend has %u %llu", step, i,
				     bk[b].name, get32(e + 8),
				     (unsigned long long)m, bk[b].uid_validity,
				     (unsigned long long)mix_snap_highest_modseq(
					     mix_index_snap(bk[b].index)));
				bad = 1;
			}
		}
	}
out:
	mix_read_unlock();
	if (bad)
		ok(0, "%s: one transaction, header as the backends", step);
}

static void sync_check(const char *step, int expunge, int rebuild)
{
	struct mix_virtual_sync_result res;
	uint32_t untouched = 0;
	uint64_t bound = 0;
	int b;

	for (b = 0; b < NB; b++) {
		if (!bk[b].in_def)
			continue;
		if (rebuild || bk[b].id == 0 || bk[b].recreated)
			bound += bk[b].count;
		else if (bk[b].touched)
			bound += bk[b].touched_msgs;
		else
			untouched++;
	}
	if (mix_virtual_sync(vm, expunge ? MIX_VIRTUAL_SYNC_EXPUNGE : 0,
			     &res) < 0)
		BAIL("%s: sync: %s", step, mix_last_error());
	if (rebuild)
		for (b = 0; b < NB; b++)
			bk[b].id = 0;
	hdr_check(step, &res);
	model_sync(expunge, rebuild);
	if (!compare(step))
		ok(0, "%s: virtual mailbox equals the model", step);
	if (res.backends_skipped < untouched)
		ok(0, "%s: %u backends skipped, %u were unchanged", step,
		   res.backends_skipped, untouched);
	if (res.examined > bound)
		ok(0, "%s: examined %llu records, at most %llu changed", step,
		   (unsigned long long)res.examined,
		   (unsigned long long)bound);
	if (rebuild && checks > 0 && res.rebuilt != 1)
		ok(0, "%s: rebuilt %d, expected 1 (rule changed)", step,
		   res.rebuilt);
	for (b = 0; b < NB; b++) {
		bk[b].touched = 0;
		bk[b].touched_msgs = 0;
		bk[b].recreated = 0;
	}
	checks++;
	st.added += res.added;
	st.expunged += res.expunged;
	st.updated += res.updated;
	st.pending += res.pending_removal;
	st.skipped += res.backends_skipped;
	st.examined += res.examined;
	if (vl_count > st.max)
		st.max = vl_count;
}

/* ---- a reader beside the syncs ----------------------------------------- */

/* vm is replaced by reopen(): the reader holds vm_mutex while it uses it */
static pthread_mutex_t vm_mutex = PTHREAD_MUTEX_INITIALIZER;
static atomic_int reader_stop;
static uint64_t reader_snaps;
static char reader_err[512];

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* One published state of the virtual index is consistent on its own:
 * the header is whole (checksum), every record names a backend of that
 * header below its saved next_uid, no backend message appears twice. */
static int snap_consistent(const struct mix_snap *s, char *err, size_t n)
{
	uint32_t ext, count, used, i, j, nrec = 0, id, ruid;
	uint64_t *keys;
	const uint8_t *h;
	size_t size = 0;
	struct mix_iter it;
	struct mix_record rec;
	uint8_t zero[4] = { 0 };
	int ret = 1;

	if (!mix_snap_ext_lookup(s, "vmap", &ext))
		return 1;      /* not registered yet */
	h = mix_snap_ext_hdr(s, ext, &size);
	if (h == NULL || size < 32 || get32(h) == 0) {
		if (mix_snap_messages_count(s) == 0)
			return 1;
		snprintf(err, n, "%u messages without a header",
			 mix_snap_messages_count(s));
		return 0;
	}
	used = get32(h + 12);
	count = get32(h + 20);
	if (used > size || used < 32 + count * 40 ||
	    mix_crc32c(mix_crc32c(mix_crc32c(0, h, 8), zero, 4), h + 12,
		       used - 12) != get32(h + 8)) {
		snprintf(err, n, "header not whole (used %u, count %u)", used,
			 count);
		return 0;
	}
	keys = malloc((mix_snap_messages_count(s) + 1) * sizeof(*keys));
	mix_iter_init(&it, s, 1);
	while (ret && mix_iter_next(&it, &rec)) {
		if (!mix_virtual_lookup(s, rec.uid, &id, &ruid)) {
			snprintf(err, n, "UID %u without vmap", rec.uid);
			ret = 0;
			break;
		}
		for (j = 0; j < count && get32(h + 32 + j * 40) != id; j++)
			;
		if (j == count || ruid == 0 ||
		    ruid >= get32(h + 32 + j * 40 + 12)) {
			snprintf(err, n, "UID %u -> (%u, %u): not in the header "
				 "of the same snapshot", rec.uid, id, ruid);
			ret = 0;
		}
		keys[nrec++] = (uint64_t)id << 32 | ruid;
	}
	if (ret && nrec > 1)
		qsort(keys, nrec, sizeof(*keys), key_cmp);
	for (i = 1; ret && i < nrec; i++) {
		if (keys[i] == keys[i - 1]) {
			snprintf(err, n, "(%u, %u) twice",
				 (uint32_t)(keys[i] >> 32), (uint32_t)keys[i]);
			ret = 0;
		}
	}
	free(keys);
	return ret;
}

static void *reader_main(void *arg)
{
	char err[256];
	(void)arg;
	while (!atomic_load(&reader_stop) && reader_err[0] == '\0') {
		int good = 1;
		pthread_mutex_lock(&vm_mutex);
		if (vm != NULL) {
			mix_read_lock();
			good = snap_consistent(mix_index_snap(
					mix_virtual_index(vm)), err, sizeof(err));
			mix_read_unlock();
			reader_snaps++;
		}
		pthread_mutex_unlock(&vm_mutex);
		if (!good)
			snprintf(reader_err, sizeof(reader_err), "%s", err);
		sched_yield();
	}
	return NULL;
}

static void reopen(int new_rule)
{
	pthread_mutex_lock(&vm_mutex);
	if (mix_virtual_close(&vm) < 0 || vm != NULL)
		BAIL("virtual close: %s", mix_last_error());
	if (new_rule)
		rule_no = 1 - rule_no;
	virtual_open();
	pthread_mutex_unlock(&vm_mutex);
}

static void model_run(uint32_t steps)
{
	uint32_t step;
	char name[64];

	for (step = 0; step < steps; step++) {
		struct mbk *b = &bk[tu_rand_below(&rng, NB)];
		uint32_t op = tu_rand_below(&rng, 100);
		int rebuild = 0;

		if (op < 40)
			op_append(b);
		else if (op < 80)
			op_change(b);
		else if (op < 90)
			op_expunge(b);
		else if (op < 92) {
			/* out of the definition, or back in with a new id */
			b->in_def = !b->in_def;
			if (!b->in_def)
				b->id = 0;
			set_backends();
		} else if (op < 93) {
			op_recreate(b);
			b->recreated = 1;
		} else if (op < 97) {
			reopen(0);
		} else if (op < 98) {
			reopen(1);
			rebuild = 1;
		}
		snprintf(name, sizeof(name), "step %u (op %u, %s)", step, op,
			 b->name);
		sync_check(name, tu_rand_below(&rng, 4) == 0, rebuild);
		if (tap_failed)
			break;
	}
	is(tap_failed, 0, "%u steps, %u syncs agree with the model", step,
	   checks);
	diag("added %llu, expunged %llu, updated %llu, pending removals "
	     "seen %llu, backends skipped %llu, records examined %llu, at "
	     "most %u virtual messages", (unsigned long long)st.added,
	     (unsigned long long)st.expunged, (unsigned long long)st.updated,
	     (unsigned long long)st.pending, (unsigned long long)st.skipped,
	     (unsigned long long)st.examined, st.max);
}

/* An unchanged backend is skipped without reading a record; a change to
 * one message of one backend reads that message only. */
static void skip_check(void)
{
	struct mix_virtual_sync_result res;
	struct mix_uid_range r;
	struct mix_txn *t;
	int b, i, avail = 0;

	for (b = 0; b < NB && (!bk[b].in_def || bk[b].count == 0); b++)
		;
	if (b == NB) {
		b = 0;
		op_append(&bk[0]);
		if (!bk[0].in_def) {
			bk[0].in_def = 1;
			set_backends();
		}
	}
	for (i = 0; i < NB; i++)
		avail += bk[i].in_def;
	sync_check("skip: settle", 1, 0);
	memset(&res, 0xff, sizeof(res));
	is(mix_virtual_sync(vm, 0, &res), 0, "sync with nothing new");
	is(res.backends_skipped, avail, "every backend skipped");
	is(res.examined, 0, "no record examined");
	is(res.modseq, 0, "nothing written");
	r.first = r.last = bk[b].m[0].uid;
	if (mix_txn_begin(bk[b].index, &t) < 0 ||
	    mix_txn_flags(t, &r, 1, (bk[b].m[0].flags & MIX_FLAG_ANSWERED) ?
			  MIX_MODIFY_REMOVE : MIX_MODIFY_ADD,
			  MIX_FLAG_ANSWERED) < 0 ||
	    mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("flag: %s", mix_last_error());
	bk[b].m[0].flags ^= MIX_FLAG_ANSWERED;
	is(mix_virtual_sync(vm, 0, &res), 0, "sync after one change");
	is(res.backends_skipped, avail - 1, "the others skipped");
	is(res.examined, 1, "one record examined");
	model_sync(0, 0);
	ok(compare("skip: one change"), "the change is mirrored");
}

/* A damaged header, then a damaged vmap record: rebuilt, and said. */
static void damage_check(void)
{
	struct mix_virtual_sync_result res;
	struct mix_index *vi;
	struct mix_txn *t;
	uint32_t ext, junk[2] = { 999999, 7 }, first = 0;
	int b, kind;

	/* every backend in the definition, so that after the rebuild the
	 * highest mailbox id is the highest of the ids it gives them */
	for (b = 0; b < NB; b++)
		bk[b].in_def = 1;
	set_backends();
	for (kind = 0; kind < 2; kind++) {
		sync_check("damage: settle", 0, 0);
		vi = mix_virtual_index(vm);
		mix_read_lock();
		mix_snap_ext_lookup(mix_index_snap(vi), "vmap", &ext);
		if (mix_snap_messages_count(mix_index_snap(vi)) > 0) {
			struct mix_record rec;
			mix_snap_lookup_seq(mix_index_snap(vi), 1, &rec);
			first = rec.uid;
		}
		mix_read_unlock();
		if (kind == 1 && first == 0) {
			ok(1, "# SKIP no virtual message to damage");
			continue;
		}
		if (mix_txn_begin(vi, &t) < 0)
			BAIL("begin");
		if (kind == 0)
			mix_txn_ext_hdr_set(t, ext, 20, junk, 4);
		else
			mix_txn_ext_set(t, first, ext, junk, 8);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
			BAIL("damage: %s", mix_last_error());
		reopen(0);
		warnings[0] = '\0';
		is(mix_virtual_sync(vm, 0, &res), 0, "sync after damage");
		is(res.rebuilt, 2, "%s damage: rebuilt", kind ? "vmap" :
		   "header");
		ok(strstr(warnings, "damaged") != NULL, "and said so");
		diag("warning: %s", warnings);
		for (b = 0; b < NB; b++)
			if (bk[b].in_def &&
			    !mix_virtual_mailbox_id(vm, bk[b].name, &bk[b].id))
				BAIL("no id for %s", bk[b].name);
		if (kind == 1)
			ok(bk[0].id > junk[0] && bk[1].id > junk[0] &&
			   bk[2].id > junk[0], "ids after the rebuild (%u %u %u) "
			   "are above the %u the damaged record named",
			   bk[0].id, bk[1].id, bk[2].id, junk[0]);
		/* new ids continue above any the damaged data named */
		highest_id = 0;
		for (b = 0; b < NB; b++)
			if (bk[b].id > highest_id)
				highest_id = bk[b].id;
		model_sync(0, 1);
		ok(compare(kind ? "vmap damage" : "header damage"),
		   "rebuilt virtual mailbox equals the model");
	}
}

/* Headers with a valid checksum but random bytes (what a bug, not a
 * disk, would write): every sync succeeds, and what it publishes is
 * consistent; then a rule change brings the model back in step. */
static void header_fuzz(void)
{
	uint8_t h[16384], zero[4] = { 0 };
	uint32_t ext, used, iter, k, crc;
	struct mix_virtual_sync_result res;
	char err[256];
	int b, good, rebuilt = 0;

	for (iter = 0; iter < 200; iter++) {
		const uint8_t *cur;
		size_t size = 0;
		struct mix_txn *t;
		mix_read_lock();
		mix_snap_ext_lookup(mix_index_snap(mix_virtual_index(vm)),
				    "vmap", &ext);
		cur = mix_snap_ext_hdr(mix_index_snap(mix_virtual_index(vm)),
				       ext, &size);
		memcpy(h, cur, size < sizeof(h) ? size : sizeof(h));
		mix_read_unlock();
		used = get32(h + 12);
		if (used < 13 || used > sizeof(h))
			used = 32;
		for (k = 0; k < 1 + tu_rand_below(&rng, 3); k++)
			h[12 + tu_rand_below(&rng, used - 12)] ^=
				(uint8_t)(1u << tu_rand_below(&rng, 8));
		used = get32(h + 12) <= sizeof(h) && get32(h + 12) >= 12 ?
		       get32(h + 12) : used;
		crc = mix_crc32c(mix_crc32c(mix_crc32c(0, h, 8), zero, 4),
				 h + 12, used - 12);
		memcpy(h + 8, &crc, 4);
		if (mix_txn_begin(mix_virtual_index(vm), &t) < 0 ||
		    mix_txn_ext_hdr_set(t, ext, 0, h, used) < 0 ||
		    mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
			BAIL("fuzz write: %s", mix_last_error());
		reopen(0);
		if (mix_virtual_sync(vm, tu_rand_below(&rng, 2), &res) < 0) {
			ok(0, "fuzz %u: sync: %s", iter, mix_last_error());
			return;
		}
		rebuilt += res.rebuilt == 2;
		mix_read_lock();
		good = snap_consistent(mix_index_snap(mix_virtual_index(vm)),
				       err, sizeof(err));
		mix_read_unlock();
		if (!good) {
			ok(0, "fuzz %u: published state consistent: %s", iter,
			   err);
			return;
		}
	}
	ok(1, "200 fuzzed headers with valid checksums: every sync "
	   "succeeded and published a consistent state (%d rebuilt)",
	   rebuilt);
	reopen(1);
	if (mix_virtual_sync(vm, 0, &res) < 0)
		BAIL("sync: %s", mix_last_error());
	highest_id = 0;
	for (b = 0; b < NB; b++) {
		if (bk[b].in_def &&
		    !mix_virtual_mailbox_id(vm, bk[b].name, &bk[b].id))
			BAIL("no id for %s", bk[b].name);
		if (bk[b].id > highest_id)
			highest_id = bk[b].id;
	}
	model_sync(0, 1);
	ok(compare("after the fuzz"), "a rule change rebuilds it to the model");
}

/* A backend that cannot be opened is reported and skipped; its messages
 * stay. */
static void unavailable_check(void)
{
	struct mix_virtual_sync_result res;
	struct mix_virtual_backend d[NB];
	uint32_t before, after;
	int b;

	for (b = 0; b < NB; b++)
		bk[b].in_def = 1;
	set_backends();
	sync_check("unavailable: settle", 0, 0);
	for (b = 0; b < NB; b++) {
		d[b].name = bk[b].name;
		d[b].index = b == 0 ? NULL : bk[b].index;
	}
	if (mix_virtual_set_backends(vm, d, NB) < 0)
		BAIL("set_backends: %s", mix_last_error());
	mix_read_lock();
	before = mix_snap_messages_count(mix_index_snap(mix_virtual_index(vm)));
	mix_read_unlock();
	op_append(&bk[0]);
	op_expunge(&bk[0]);
	warnings[0] = '\0';
	is(mix_virtual_sync(vm, 0, &res), 0,
	   "sync with one backend unavailable");
	is(res.backends_unavailable, 1, "reported in the result");
	is(res.backends_skipped, NB - 1, "the others unchanged");
	ok(strstr(warnings, "not open") != NULL, "and through the warning");
	mix_read_lock();
	after = mix_snap_messages_count(mix_index_snap(mix_virtual_index(vm)));
	mix_read_unlock();
	is(after, before, "its messages stay as they were");
	set_backends();
	sync_check("unavailable: back", 1, 0);
}

/* Definitions that are refused, with a message that says why. */
static void def_errors_check(const char *root)
{
	struct mix_virtual_backend d[2] = { { "A", bk[0].index },
					    { "A", bk[1].index } };
	struct mix_virtual_def def;
	struct mix_virtual *t = (struct mix_virtual *)&def;
	char *dir, longname[300];

	if (asprintf(&dir, "%s/deferr", root) < 0 || mkdir(dir, 0700) < 0)
		BAIL("mkdir");
	memset(&def, 0, sizeof(def));
	def.backends = d;
	def.backend_count = 1;
	def.rule = "UNSEEN FLAGGD";
	is(mix_virtual_open(engine, dir, &def, &t), MIX_EINVAL, "bad rule");
	is(t, NULL, "no virtual mailbox returned");
	ok(strstr(mix_last_error(), "position 7") != NULL,
	   "the message names the position: %s", mix_last_error());
	def.rule = "ALL";
	def.backend_count = 2;
	is(mix_virtual_open(engine, dir, &def, &t), MIX_EINVAL,
	   "a name listed twice");
	memset(longname, 'x', sizeof(longname));
	longname[256] = '\0';
	d[0].name = longname;
	def.backend_count = 1;
	is(mix_virtual_open(engine, dir, &def, &t), MIX_EINVAL,
	   "a name of 256 bytes");
	d[0].name = "A";
	ok(mix_virtual_open(engine, dir, &def, &t) == 0 && t != NULL,
	   "the same definition, fixed, opens");
	mix_virtual_close(&t);
	is(t, NULL, "close sets the pointer to NULL");
	free(dir);
}

static uint64_t fake_now;
static uint64_t get_now(void *ctx)
{
	(void)ctx;
	return fake_now;
}

/* YOUNGER/OLDER depend on the clock: backends are read every sync, a
 * message that ages out is kept until an expunge-allowed sync, one that
 * ages in is added without any backend change. */
static void time_check(const char *root)
{
	struct mix_virtual_def def;
	struct mix_virtual_backend d = { bk[1].name, bk[1].index };
	struct mix_virtual_sync_result res;
	struct mix_virtual *t;
	struct mix_txn *txn;
	uint64_t recv[2] = { FEB1, FEB1 + DAY };
	uint32_t ext, i, a;
	char *dir;
	int ret;

	if (asprintf(&dir, "%s/time", root) < 0 || mkdir(dir, 0700) < 0)
		BAIL("mkdir");
	mix_read_lock();
	mix_snap_ext_lookup(mix_index_snap(bk[1].index), "received", &ext);
	mix_read_unlock();
	/* two fresh messages in a fresh backend */
	if (mix_index_close(&bk[1].index) < 0)
		BAIL("close: %s", mix_last_error());
	bk[1].gen++;
	bk_open(&bk[1], MIX_OPEN_RECREATE);
	d.index = bk[1].index;
	if (mix_txn_begin(bk[1].index, &txn) < 0)
		BAIL("begin");
	for (i = 0; i < 2; i++)
		if (mix_txn_append(txn, 0, NULL, &a) < 0 ||
		    mix_txn_append_ext(txn, a, ext, &recv[i], 8) < 0)
			BAIL("append: %s", mix_last_error());
	if (mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("commit: %s", mix_last_error());
	memset(&def, 0, sizeof(def));
	def.backends = &d;
	def.backend_count = 1;
	def.rule = "YOUNGER 86400";
	def.now = get_now;
	if (mix_virtual_open(engine, dir, &def, &t) < 0)
		BAIL("open: %s", mix_last_error());
	fake_now = FEB1 + DAY + 10;   /* only the second is younger */
	ret = mix_virtual_sync(t, 0, &res);
	ok(ret == 0 && res.added == 1,
	   "YOUNGER: one message (added %u)", res.added);
	fake_now = FEB1 + 2 * DAY + 10;   /* now neither */
	ret = mix_virtual_sync(t, 0, &res);
	ok(ret == 0 && res.backends_skipped == 0 &&
	   res.examined == 2 && res.pending_removal == 1,
	   "time passed: backend read again (skipped %u, examined %llu), "
	   "the message is kept (pending %u)", res.backends_skipped,
	   (unsigned long long)res.examined, res.pending_removal);
	ret = mix_virtual_sync(t, MIX_VIRTUAL_SYNC_EXPUNGE, &res);
	ok(ret == 0 &&
	   res.expunged == 1, "and goes at an expunge-allowed sync");
	mix_virtual_close(&t);
	def.rule = "OLDER 86400";
	if (mix_virtual_open(engine, dir, &def, &t) < 0)
		BAIL("open: %s", mix_last_error());
	fake_now = FEB1 + DAY + 10;   /* only the first is older */
	ret = mix_virtual_sync(t, 0, &res);
	ok(ret == 0 && res.rebuilt == 1 &&
	   res.added == 1, "new rule: rebuilt (%d), one message older (added "
	   "%u)", res.rebuilt, res.added);
	fake_now = FEB1 + 3 * DAY;
	ret = mix_virtual_sync(t, 0, &res);
	ok(ret == 0 && res.added == 1,
	   "time passed: the other one ages in (added %u)", res.added);
	mix_virtual_close(&t);
	free(dir);
}

/* Wait (generously: this is no timing assertion) until the live virtual
 * mailbox t has virtual message (id, ruid) with mirrored flags `flags`
 * (want 1), or does not have it (want 0). */
static int live_wait(struct mix_virtual *t, uint32_t id, uint32_t ruid,
		     int want, uint8_t flags)
{
	int i, have = 0;

	for (i = 0; i < 60000; i++) {
		const struct mix_snap *s;
		struct mix_record rec;
		uint32_t vuid;
		mix_read_lock();
		s = mix_index_snap(mix_virtual_index(t));
		have = mix_virtual_lookup_real(s, id, ruid, &vuid) &&
		       mix_snap_lookup_uid(s, vuid, &rec) &&
		       (rec.flags & MIRROR) == flags;
		if (!want)
			have = mix_virtual_lookup_real(s, id, ruid, &vuid);
		mix_read_unlock();
		if (have == want)
			return 1;
		usleep(1000);
	}
	return 0;
}

static int live_commit(struct mix_index *idx, int op, uint32_t *uid)
{
	struct mix_uid_range r = { *uid, *uid };
	struct mix_commit_result cr;
	struct mix_txn *txn;
	uint32_t n;
	int ret;

	if ((ret = mix_txn_begin(idx, &txn)) < 0)
		return ret;
	if (op == 0)
		ret = mix_txn_append(txn, 0, NULL, &n);
	else if (op == 1)
		ret = mix_txn_flags(txn, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_SEEN);
	else
		ret = mix_txn_expunge(txn, &r, 1);
	if (ret < 0) {
		mix_txn_abort(&txn);
		return ret;
	}
	memset(&cr, 0, sizeof(cr));
	if ((ret = mix_txn_commit(&txn, MIX_DURABILITY_NONE, &cr)) < 0)
		return ret;
	if (op == 0)
		*uid = cr.first_uid;
	mix_commit_result_free(&cr);
	return 0;
}

/* Live mode: backend commits reach the virtual mailbox, and its watcher,
 * with no sync call from here. */
static void live_check(const char *root)
{
	struct mix_virtual_backend d[NB];
	struct mix_virtual_def def;
	struct mix_virtual *t;
	struct mix_watch *w;
	struct pollfd p;
	uint32_t id = 0, uid = 0, last;
	char *dir;
	int b, i, ret;

	if (asprintf(&dir, "%s/live", root) < 0 || mkdir(dir, 0700) < 0)
		BAIL("mkdir");
	for (b = 0; b < NB; b++) {
		d[b].name = bk[b].name;
		d[b].index = bk[b].index;
	}
	memset(&def, 0, sizeof(def));
	def.backends = d;
	def.backend_count = NB;
	def.rule = "UNSEEN";
	if (mix_virtual_open(engine, dir, &def, &t) < 0 ||
	    mix_watch_open(mix_virtual_index(t), &w) < 0)
		BAIL("live open: %s", mix_last_error());
	is(mix_virtual_live_start(t, 0), 0, "live mode starts");
	is(mix_virtual_live_start(t, 0), MIX_EINVAL, "not twice");
	for (i = 0; i < 60000 && !mix_virtual_mailbox_id(t, "Work", &id); i++)
		usleep(1000);
	ok(id != 0, "the live thread's first sync gave Work mailbox id %u",
	   id);
	mix_watch_rearm(w);
	ret = live_commit(bk[1].index, 0, &uid);
	ok(ret == 0 && live_wait(t, id, uid, 1, 0),
	   "an unseen message appended to Work (UID %u) appears, no sync "
	   "called", uid);
	p.fd = mix_watch_fd(w);
	p.events = POLLIN;
	is(poll(&p, 1, 60000), 1, "and the virtual index's watcher fired");
	ok(live_commit(bk[1].index, 1, &uid) == 0 &&
	   live_wait(t, id, uid, 1, MIX_FLAG_SEEN),
	   "\\Seen set in Work is mirrored (the message stays: delayed "
	   "removal)");
	ok(live_commit(bk[1].index, 2, &uid) == 0 &&
	   live_wait(t, id, uid, 0, 0), "expunged in Work: gone");
	is(mix_virtual_set_backends(t, d, NB), MIX_EINVAL,
	   "the backend list cannot change while live");
	is(mix_virtual_sync(t, MIX_VIRTUAL_SYNC_EXPUNGE, NULL), 0,
	   "the caller's sync runs beside the live thread");
	last = (uint32_t)mix_virtual_live_syncs(t);
	ok(last >= 3, "the live thread synced %u times", last);
	ok(mix_virtual_live_stop(t) == 0 && mix_virtual_live_syncs(t) == 0,
	   "live mode stops");
	is(mix_virtual_set_backends(t, d, NB), 0,
	   "and the backend list can change again");
	mix_watch_close(&w);
	is(mix_virtual_live_start(t, 0), 0, "live again");
	ok(mix_virtual_close(&t) == 0 && t == NULL,
	   "close stops live mode and closes");
	free(dir);
}

static int key_cmp_range(const void *a, const void *b)
{
	const struct mix_uid_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* Virtual UID of the first message of backend name in t, and its flags
 * and keyword `urgent`; 0 if none. */
static uint32_t vfirst(struct mix_virtual *t, const char *name, uint8_t *fl,
		       int *urgent)
{
	const struct mix_snap *s;
	struct mix_iter it;
	struct mix_record rec;
	uint32_t id, mb, ruid, idx, vuid = 0;

	if (!mix_virtual_mailbox_id(t, name, &id))
		return 0;
	mix_read_lock();
	s = mix_index_snap(mix_virtual_index(t));
	mix_iter_init(&it, s, 1);
	while (vuid == 0 && mix_iter_next(&it, &rec)) {
		if (mix_virtual_lookup(s, rec.uid, &mb, &ruid) && mb == id) {
			vuid = rec.uid;
			*fl = rec.flags & MIRROR;
			*urgent = mix_snap_keyword_lookup(s, "urgent", &idx) &&
				  mix_record_has_keyword(&rec, idx);
		}
	}
	mix_read_unlock();
	return vuid;
}

static uint8_t vflags(struct mix_virtual *t, uint32_t vuid, int *present)
{
	struct mix_record rec;

	mix_read_lock();
	*present = mix_snap_lookup_uid(mix_index_snap(mix_virtual_index(t)),
				       vuid, &rec);
	mix_read_unlock();
	return *present ? rec.flags & MIRROR : 0;
}

static uint64_t vhighest(struct mix_virtual *t)
{
	uint64_t h;

	mix_read_lock();
	h = mix_snap_highest_modseq(mix_index_snap(mix_virtual_index(t)));
	mix_read_unlock();
	return h;
}

static int one_range(const struct mix_virtual_store_result *r, uint32_t uid)
{
	return r->modified_count == 1 && r->modified[0].first == uid &&
	       r->modified[0].last == uid;
}

/* Flags, keywords (UNCHANGEDSINCE) and expunges on virtual UIDs go to
 * the backends and come back by sync; appends need a save target. */
static void writes_check(const char *root)
{
	static const char *const urgent[] = { "urgent", NULL };
	struct mix_virtual_backend d[NB];
	struct mix_virtual_def def;
	struct mix_virtual_store sto;
	struct mix_virtual_store_result res;
	struct mix_uid_range all = { 1, UINT32_MAX }, r[3];
	struct mix_virtual *t;
	struct mix_index *target;
	uint32_t vu[NB], ruid, mb, id1 = 0, x;
	uint64_t h1;
	uint8_t fl;
	int b, kw, present, ret;
	char *dir;

	if (asprintf(&dir, "%s/writes", root) < 0 || mkdir(dir, 0700) < 0)
		BAIL("mkdir");
	for (b = 0; b < NB; b++) {
		d[b].name = bk[b].name;
		d[b].index = bk[b].index;
		x = 0;
		if (live_commit(bk[b].index, 0, &x) < 0)
			BAIL("append: %s", mix_last_error());
	}
	memset(&def, 0, sizeof(def));
	def.backends = d;
	def.backend_count = NB;
	def.rule = "ALL";
	if (mix_virtual_open(engine, dir, &def, &t) < 0)
		BAIL("writes open: %s", mix_last_error());
	memset(&sto, 0, sizeof(sto));
	sto.op = MIX_VIRTUAL_STORE_FLAGS;
	sto.modify = MIX_MODIFY_ADD;
	sto.flags = MIX_FLAG_FLAGGED;
	is(mix_virtual_store(t, &all, 1, &sto, &res), MIX_EINVAL,
	   "store before the first sync is refused");
	is(mix_virtual_sync(t, MIX_VIRTUAL_SYNC_EXPUNGE, NULL), 0, "sync");
	is(mix_virtual_save_target(t, &target), MIX_EINVAL,
	   "append without a save target is refused");
	ok(strstr(mix_last_error(), "save target") != NULL,
	   "saying why: %s", mix_last_error());

	ret = mix_virtual_store(t, &all, 1, &sto, &res);
	ok(ret == 0 && res.backends == NB && res.modified_count == 0,
	   "\\Flagged on 1:* goes to %u backends (expected %u)",
	   res.backends, NB);
	mix_virtual_store_result_free(&res);
	is(mix_virtual_sync(t, 0, NULL), 0, "sync");
	for (b = 0; b < NB; b++) {
		vu[b] = vfirst(t, bk[b].name, &fl, &kw);
		if (vu[b] == 0 || !(fl & MIX_FLAG_FLAGGED))
			break;
	}
	is(b, NB, "it came back by sync in every backend's messages");
	if (b != NB)
		goto out;
	h1 = vhighest(t);
	/* Work's message changes behind the virtual mailbox's back */
	mix_read_lock();
	mix_virtual_lookup(mix_index_snap(mix_virtual_index(t)), vu[1], &mb,
			   &ruid);
	mix_read_unlock();
	is(live_commit(bk[1].index, 1, &ruid), 0, "Work's message changed "
	   "in the backend");
	for (b = 0; b < NB; b++)
		r[b].first = r[b].last = vu[b];
	qsort(r, NB, sizeof(r[0]), key_cmp_range);
	sto.modify = MIX_MODIFY_REMOVE;
	sto.unchangedsince = h1;
	ret = mix_virtual_store(t, r, NB, &sto, &res);
	ok(ret == 0 && one_range(&res, vu[1]),
	   "UNCHANGEDSINCE over 3 backends: MODIFIED is the virtual UID %u "
	   "changed in its backend since the sync (got %u ranges, first %u)",
	   vu[1], res.modified_count,
	   res.modified_count ? res.modified[0].first : 0);
	mix_virtual_store_result_free(&res);
	is(mix_virtual_sync(t, 0, NULL), 0, "sync");
	ok(!(vflags(t, vu[0], &present) & MIX_FLAG_FLAGGED) && present &&
	   !(vflags(t, vu[2], &present) & MIX_FLAG_FLAGGED) && present,
	   "the others lost \\Flagged");
	fl = vflags(t, vu[1], &present);
	ok(present && (fl & MIX_FLAG_FLAGGED) && (fl & MIX_FLAG_SEEN),
	   "the MODIFIED one kept it, with the backend's change mirrored "
	   "(%#x)", fl);
	sto.modify = MIX_MODIFY_ADD;
	sto.flags = MIX_FLAG_ANSWERED;
	ret = mix_virtual_store(t, &r[0], 1, &sto, &res);
	ok(ret == 0 && res.modified_count == 1 && res.backends == 0,
	   "UNCHANGEDSINCE below the virtual modseq: MODIFIED, no backend "
	   "touched");
	mix_virtual_store_result_free(&res);
	sto.op = MIX_VIRTUAL_STORE_KEYWORDS;
	sto.keywords = urgent;
	sto.unchangedsince = vhighest(t);
	r[0].first = r[0].last = vu[2];
	ret = mix_virtual_store(t, &r[0], 1, &sto, &res);
	ok(ret == 0 && res.modified_count == 0 && res.backends == 1,
	   "keyword with a current UNCHANGEDSINCE: stored");
	mix_virtual_store_result_free(&res);
	ok(mix_virtual_sync(t, 0, NULL) == 0 &&
	   vfirst(t, bk[2].name, &fl, &kw) == vu[2] && kw,
	   "the keyword came back by sync");
	memset(&sto, 0, sizeof(sto));
	sto.op = MIX_VIRTUAL_STORE_EXPUNGE;
	r[0].first = r[0].last = vu[0];
	ok(mix_virtual_store(t, &r[0], 1, &sto, &res) == 0 &&
	   res.backends == 1, "expunge on a virtual UID");
	mix_virtual_store_result_free(&res);
	ok(mix_virtual_sync(t, 0, NULL) == 0 &&
	   (vflags(t, vu[0], &present), !present),
	   "the backend expunged it and the sync removed it");
out:
	mix_virtual_close(&t);
	def.save_target = "Nope";
	if (mix_virtual_open(engine, dir, &def, &t) < 0)
		BAIL("writes reopen: %s", mix_last_error());
	is(mix_virtual_save_target(t, &target), MIX_EINVAL,
	   "a save target that is no backend is refused");
	ok(strstr(mix_last_error(), "not one of the backends") != NULL,
	   "saying so: %s", mix_last_error());
	mix_virtual_close(&t);
	def.save_target = "Work";
	if (mix_virtual_open(engine, dir, &def, &t) < 0)
		BAIL("writes reopen: %s", mix_last_error());
	ok(mix_virtual_save_target(t, &target) == 0 &&
	   target == bk[1].index, "the save target Work is given");
	ok(mix_virtual_sync(t, 0, NULL) == 0 &&
	   mix_virtual_mailbox_id(t, "Work", &id1), "sync");
	x = 0;
	ok(live_commit(target, 0, &x) == 0 &&
	   mix_virtual_sync(t, 0, NULL) == 0 &&
	   (mix_read_lock(), ret = mix_virtual_lookup_real(mix_index_snap(
		   mix_virtual_index(t)), id1, x, &ruid), mix_read_unlock(),
	    ret == 1), "a message appended there is in the virtual mailbox");
	mix_virtual_close(&t);
	free(dir);
}

/* A virtual index deleted and created again at once (the remedy
 * virtual.md gives for a changed rule) gets a new UIDVALIDITY: its UIDs
 * name other messages now.  With UIDVALIDITY = time(NULL) both
 * incarnations of one second had the same (found by a lifecycle check). */
static void uidvalidity_check(const char *root)
{
	char *dir;
	uint32_t uv[3];
	int i;

	if (asprintf(&dir, "%s/uv-virtual", root) < 0)
		BAIL("asprintf");
	for (i = 0; i < 3; i++) {
		struct mix_virtual_backend d[NB];
		struct mix_virtual_def def;
		struct mix_virtual *v;
		memset(&def, 0, sizeof(def));
		def.backends = d;
		def.backend_count = def_backends(d);
		def.rule = rules[0];
		def.warning = on_warning;
		if (mkdir(dir, 0700) < 0 ||
		    mix_virtual_open(engine, dir, &def, &v) < 0)
			BAIL("virtual open %d: %s", i, mix_last_error());
		mix_read_lock();
		uv[i] = mix_snap_uid_validity(mix_index_snap(
			mix_virtual_index(v)));
		mix_read_unlock();
		if (mix_virtual_close(&v) < 0)
			BAIL("virtual close: %s", mix_last_error());
		tu_rmdir_r(dir);
	}
	ok(uv[0] && uv[1] != uv[0] && uv[2] != uv[1] && uv[2] != uv[0],
	   "a virtual index created three times in a row gets three "
	   "UIDVALIDITYs (%u, %u, %u)", uv[0], uv[1], uv[2]);
	free(dir);
}

/* ---- regressions of the review of virtual mailboxes ------------------- */

/* A backend index in root/name with UIDVALIDITY uv and n messages. */
static struct mix_index *rv_backend(const char *root, const char *name,
				    uint32_t uv, uint32_t n)
{
	struct mix_index *ix;
	struct mix_txn *t;
	char *dir = tu_subdir(root, name);

	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &ix) < 0 ||
	    mix_txn_begin(ix, &t) < 0 ||
	    mix_txn_hdr_set(t, MIX_HDR_UID_VALIDITY, uv) < 0 ||
	    mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("backend %s: %s", dir, mix_last_error());
	if (n > 0)
		tu_append(ix, n, 0);
	free(dir);
	return ix;
}

/* A virtual mailbox in root/name over d[0..n-1] with rule; NULL and the
 * error in *ret_r if the open failed. */
static struct mix_virtual *rv_open(const char *root, const char *name,
				   const struct mix_virtual_backend *d,
				   uint32_t n, const char *rule, int *ret_r)
{
	struct mix_virtual_def def;
	struct mix_virtual *t = NULL;
	char *dir = tu_subdir(root, name);

	memset(&def, 0, sizeof(def));
	def.backends = d;
	def.backend_count = n;
	def.rule = rule;
	def.warning = on_warning;
	*ret_r = mix_virtual_open(engine, dir, &def, &t);
	free(dir);
	return t;
}

/* Flags of uid in ix, -1 if it is not there. */
static int rv_flags(struct mix_index *ix, uint32_t uid)
{
	struct mix_record rec;
	int f = -1;

	mix_read_lock();
	if (mix_snap_lookup_uid(mix_index_snap(ix), uid, &rec))
		f = rec.flags;
	mix_read_unlock();
	return f;
}

/* A backend array of NULL with a count crashed the open (SIGSEGV);
 * lookup_real_many with n == 0 passed NULL to memset. */
static void rv_null_backends(const char *root)
{
	struct mix_virtual *t;
	int ret, n;

	t = rv_open(root, "rv-null", NULL, 2, "ALL", &ret);
	is(ret, MIX_EINVAL, "open with backends NULL and backend_count 2");
	ok(t == NULL && strstr(mix_last_error(), "NULL") != NULL,
	   "refused, saying why: %s", mix_last_error());
	t = rv_open(root, "rv-null", NULL, 0, "ALL", &ret);
	if (t == NULL)
		BAIL("open with no backends: %s", mix_last_error());
	is(mix_virtual_set_backends(t, NULL, 1), MIX_EINVAL,
	   "set_backends(NULL, 1)");
	is(mix_virtual_sync(t, 0, NULL), 0, "sync with no backends");
	mix_read_lock();
	n = mix_virtual_lookup_real_many(mix_index_snap(mix_virtual_index(t)),
					 1, NULL, 0, NULL);
	mix_read_unlock();
	is(n, 0, "lookup_real_many of no UIDs (NULL arrays)");
	mix_virtual_close(&t);
}

/* UNCHANGEDSINCE is ignored for expunge (mix/virtual.h). */
static void rv_expunge_unchangedsince(const char *root)
{
	struct mix_index *a = rv_backend(root, "rv-xu-a", 7001, 2);
	struct mix_virtual_backend d[1] = { { "A", a } };
	struct mix_virtual_store sto;
	struct mix_virtual_store_result res;
	struct mix_uid_range r = { 1, UINT32_MAX };
	struct mix_virtual *t;
	int ret;

	t = rv_open(root, "rv-xu", d, 1, "ALL", &ret);
	if (t == NULL || mix_virtual_sync(t, 0, NULL) < 0)
		BAIL("rv-xu: %s", mix_last_error());
	memset(&sto, 0, sizeof(sto));
	sto.op = MIX_VIRTUAL_STORE_EXPUNGE;
	sto.unchangedsince = 1;
	ret = mix_virtual_store(t, &r, 1, &sto, &res);
	ok(ret == 0 && res.modified_count == 0 && res.backends == 1 &&
	   rv_flags(a, 1) < 0 && rv_flags(a, 2) < 0,
	   "expunge with unchangedsince 1: ret %d, modified %u (expected 0), "
	   "backends %u (expected 1), backend UIDs 1, 2 %s (expected gone)",
	   ret, res.modified_count, res.backends,
	   rv_flags(a, 1) < 0 && rv_flags(a, 2) < 0 ? "gone" : "still there");
	mix_virtual_store_result_free(&res);
	mix_virtual_close(&t);
	mix_index_close(&a);
}

/* mix_virtual_open on an ordinary mailbox's directory (a configuration
 * mistake) took its messages for damaged vmap data: the first sync
 * expunged them all.  An empty index without vmap may be adopted. */
static void rv_not_virtual(const char *root)
{
	struct mix_index *inbox = rv_backend(root, "rv-nv-inbox", 7101, 5);
	struct mix_index *other = rv_backend(root, "rv-nv-other", 7102, 1);
	struct mix_index *empty = rv_backend(root, "rv-nv-empty", 7103, 0);
	struct mix_virtual_backend d[1] = { { "Other", other } };
	struct mix_virtual *t;
	int ret;

	t = rv_open(root, "rv-nv-inbox", d, 1, "ALL", &ret);
	if (t != NULL)
		mix_virtual_sync(t, 0, NULL);
	ok(ret == MIX_EINVAL && t == NULL &&
	   strstr(mix_last_error(), "not a virtual index") != NULL,
	   "open on an ordinary mailbox's directory: %d (expected %d "
	   "MIX_EINVAL), %s", ret, MIX_EINVAL, mix_last_error());
	is(tu_messages(inbox), 5, "the mailbox keeps its messages");
	mix_virtual_close(&t);
	t = rv_open(root, "rv-nv-empty", d, 1, "ALL", &ret);
	ok(ret == 0 && t != NULL && mix_virtual_sync(t, 0, NULL) == 0 &&
	   tu_messages(mix_virtual_index(t)) == 1,
	   "an empty index without vmap is adopted: %d %s", ret,
	   ret < 0 ? mix_last_error() : "");
	mix_virtual_close(&t);
	mix_index_close(&inbox);
	mix_index_close(&other);
	mix_index_close(&empty);
}

/* A backend's mailbox deleted and created again (new UIDVALIDITY and
 * indexid), given by set_backends before the next sync: a store or
 * expunge by virtual UID went to the new mailbox's messages with the
 * same real UIDs, which the client never saw. */
static void rv_recreated_backend(const char *root)
{
	struct mix_index *w = rv_backend(root, "rv-re-work", 7201, 3);
	struct mix_virtual_backend d[1] = { { "Work", w } };
	struct mix_virtual_store sto;
	struct mix_virtual_store_result res;
	struct mix_uid_range r1 = { 1, 1 }, r2 = { 2, 2 };
	struct mix_virtual *t;
	struct mix_txn *txn;
	char *wdir;
	int ret, f1, f2;

	t = rv_open(root, "rv-re", d, 1, "ALL", &ret);
	if (t == NULL || mix_virtual_sync(t, MIX_VIRTUAL_SYNC_EXPUNGE, NULL) < 0)
		BAIL("rv-re: %s", mix_last_error());
	d[0].index = NULL;
	if (mix_virtual_set_backends(t, d, 1) < 0 || mix_index_close(&w) < 0)
		BAIL("rv-re: %s", mix_last_error());
	wdir = tu_subdir(root, "rv-re-work");
	if (mix_index_open(engine, wdir, MIX_OPEN_RECREATE, &w) < 0 ||
	    mix_txn_begin(w, &txn) < 0 ||
	    mix_txn_hdr_set(txn, MIX_HDR_UID_VALIDITY, 7202) < 0 ||
	    mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("rv-re recreate: %s", mix_last_error());
	free(wdir);
	tu_append(w, 3, 0);
	d[0].index = w;
	if (mix_virtual_set_backends(t, d, 1) < 0)
		BAIL("rv-re: %s", mix_last_error());
	memset(&sto, 0, sizeof(sto));
	sto.op = MIX_VIRTUAL_STORE_FLAGS;
	sto.modify = MIX_MODIFY_ADD;
	sto.flags = MIX_FLAG_DELETED;
	ret = mix_virtual_store(t, &r1, 1, &sto, &res);
	f1 = rv_flags(w, 1);
	ok(ret == 0 && res.unavailable == 1 && res.backends == 0 && f1 == 0,
	   "store on virtual UID 1 of the old Work after it was re-created: "
	   "ret %d, unavailable %u (expected 1), backends %u (expected 0), "
	   "new Work's UID 1 flags %#x (expected 0)", ret, res.unavailable,
	   res.backends, f1);
	mix_virtual_store_result_free(&res);
	memset(&sto, 0, sizeof(sto));
	sto.op = MIX_VIRTUAL_STORE_EXPUNGE;
	ret = mix_virtual_store(t, &r2, 1, &sto, &res);
	f2 = rv_flags(w, 2);
	ok(ret == 0 && res.unavailable == 1 && f2 == 0,
	   "expunge of virtual UID 2: ret %d, unavailable %u (expected 1), "
	   "new Work's UID 2 %s (expected present)", ret, res.unavailable,
	   f2 < 0 ? "gone" : "present");
	mix_virtual_store_result_free(&res);
	ok(mix_virtual_sync(t, MIX_VIRTUAL_SYNC_EXPUNGE, NULL) == 0 &&
	   tu_messages(mix_virtual_index(t)) == 3, "the sync then shows the "
	   "new Work's 3 messages");
	sto.op = MIX_VIRTUAL_STORE_FLAGS;
	sto.modify = MIX_MODIFY_ADD;
	sto.flags = MIX_FLAG_FLAGGED;
	r1.last = UINT32_MAX;
	ret = mix_virtual_store(t, &r1, 1, &sto, &res);
	ok(ret == 0 && res.backends == 1 && res.unavailable == 0 &&
	   rv_flags(w, 1) == MIX_FLAG_FLAGGED,
	   "and stores reach it again: ret %d, backends %u", ret,
	   res.backends);
	mix_virtual_store_result_free(&res);
	mix_virtual_close(&t);
	mix_index_close(&w);
}

/* STORE UNCHANGEDSINCE through the virtual mailbox below the virtual
 * index's lost point was applied: it must act as UNCHANGEDSINCE 0
 * (docs/condstore.md "What a power cut takes back").  The lost point
 * comes from a lock file of another boot, as after a power cut. */
static void rv_lost_point(const char *root)
{
	static const char line[] = "1 00000000-0000-4000-8000-000000000000\n";
	struct mix_index *a = rv_backend(root, "rv-lp-a", 7301, 2);
	struct mix_virtual_backend d[1] = { { "A", a } };
	struct mix_virtual_store sto;
	struct mix_virtual_store_result res;
	struct mix_uid_range all = { 1, UINT32_MAX };
	struct mix_virtual *t;
	struct tu_files saved;
	uint64_t m, lost;
	uint32_t x;
	char *lock, *vd;
	int ret;

	t = rv_open(root, "rv-lp", d, 1, "ALL", &ret);
	if (t == NULL || mix_virtual_sync(t, 0, NULL) < 0)
		BAIL("rv-lp: %s", mix_last_error());
	vd = tu_subdir(root, "rv-lp");
	tu_files_save(vd, &saved);          /* the durable point */
	/* what the power cut takes back: \Seen on UID 1 mirrored, the
	 * client sees HIGHESTMODSEQ m */
	x = 1;
	if (live_commit(a, 1, &x) < 0 ||
	    mix_virtual_sync(t, 0, NULL) < 0)
		BAIL("rv-lp: %s", mix_last_error());
	m = vhighest(t);
	if (mix_virtual_close(&t) < 0 ||
	    asprintf(&lock, "%s/mix.index.lock", vd) < 0)
		BAIL("rv-lp: close");
	tu_files_restore(vd, &saved);
	tu_files_free(&saved);
	if (tu_write_file(lock, line, sizeof(line) - 1) < 0)
		BAIL("rv-lp: other boot");
	free(lock);
	free(vd);
	t = rv_open(root, "rv-lp", d, 1, "ALL", &ret);
	if (t == NULL || mix_virtual_sync(t, 0, NULL) < 0)
		BAIL("rv-lp reopen: %s", mix_last_error());
	mix_read_lock();
	lost = mix_snap_lost_modseq(mix_index_snap(mix_virtual_index(t)));
	mix_read_unlock();
	ok(lost > m, "the open after another boot set the lost point %llu "
	   "above the client's modseq %llu", (unsigned long long)lost,
	   (unsigned long long)m);
	memset(&sto, 0, sizeof(sto));
	sto.op = MIX_VIRTUAL_STORE_FLAGS;
	sto.modify = MIX_MODIFY_ADD;
	sto.flags = MIX_FLAG_FLAGGED;
	sto.unchangedsince = m;
	ret = mix_virtual_store(t, &all, 1, &sto, &res);
	ok(ret == 0 && res.backends == 0 && res.modified_count == 1 &&
	   res.modified[0].last - res.modified[0].first == 1 &&
	   rv_flags(a, 1) == MIX_FLAG_SEEN && rv_flags(a, 2) == 0,
	   "UNCHANGEDSINCE below the lost point: ret %d, MODIFIED %s "
	   "(expected both messages), backends %u (expected 0), backend "
	   "flags %#x %#x (expected 0x%x 0)", ret,
	   tu_fmt_set(res.modified, res.modified_count), res.backends,
	   rv_flags(a, 1), rv_flags(a, 2), MIX_FLAG_SEEN);
	mix_virtual_store_result_free(&res);
	sto.unchangedsince = vhighest(t);
	ret = mix_virtual_store(t, &all, 1, &sto, &res);
	ok(ret == 0 && res.backends == 1 && res.modified_count == 0,
	   "UNCHANGEDSINCE at the current modseq stores: ret %d, backends %u, "
	   "MODIFIED %s", ret, res.backends,
	   tu_fmt_set(res.modified, res.modified_count));
	mix_virtual_store_result_free(&res);
	mix_virtual_close(&t);
	mix_index_close(&a);
}

/* A virtual mailbox as its own backend grew at every sync (and woke
 * its own live thread forever); as another's backend it nested.  Both
 * are refused, at set_backends and at open. */
static void rv_no_nesting(const char *root)
{
	struct mix_index *a = rv_backend(root, "rv-ns-a", 7401, 2), *self;
	struct mix_virtual_backend d[2] = { { "A", a }, { "self", NULL } };
	struct mix_virtual *t, *t2;
	char *dir;
	int ret;

	t = rv_open(root, "rv-ns", d, 1, "ALL", &ret);
	dir = tu_subdir(root, "rv-ns");
	if (t == NULL || mix_index_open(engine, dir, 0, &self) < 0)
		BAIL("rv-ns: %s", mix_last_error());
	free(dir);
	d[1].index = self;
	ret = mix_virtual_set_backends(t, d, 2);
	ok(ret == MIX_EINVAL && strstr(mix_last_error(), "itself") != NULL,
	   "the virtual mailbox as its own backend: %d (expected %d), %s",
	   ret, MIX_EINVAL, mix_last_error());
	d[1].name = "V1";
	d[1].index = mix_virtual_index(t);
	t2 = rv_open(root, "rv-ns2", d, 2, "ALL", &ret);
	ok(ret == MIX_EINVAL && t2 == NULL &&
	   strstr(mix_last_error(), "do not nest") != NULL,
	   "a virtual mailbox as another's backend at open: %d (expected "
	   "%d), %s", ret, MIX_EINVAL, mix_last_error());
	mix_virtual_close(&t2);
	t2 = rv_open(root, "rv-ns2", d, 1, "ALL", &ret);
	if (t2 == NULL)
		BAIL("rv-ns2: %s", mix_last_error());
	ret = mix_virtual_set_backends(t2, d, 2);
	ok(ret == MIX_EINVAL, "and at set_backends: %d (expected %d)", ret,
	   MIX_EINVAL);
	ret = mix_virtual_sync(t, 0, NULL);
	ok(ret == 0 && tu_messages(mix_virtual_index(t)) == 2,
	   "the first keeps its backend list: sync %d, %u messages "
	   "(expected 2)", ret, tu_messages(mix_virtual_index(t)));
	mix_virtual_close(&t2);
	mix_virtual_close(&t);
	mix_index_close(&self);
	/* the directory opened as an ordinary index first: the virtual
	 * open shares that index, and it is its own backend */
	dir = tu_subdir(root, "rv-ns3");
	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &self) < 0)
		BAIL("rv-ns3: %s", mix_last_error());
	free(dir);
	d[1].name = "self";
	d[1].index = self;
	t = rv_open(root, "rv-ns3", d, 2, "ALL", &ret);
	ok(ret == MIX_EINVAL && t == NULL,
	   "an open whose definition lists the index being opened: %d "
	   "(expected %d), %s", ret, MIX_EINVAL, mix_last_error());
	mix_virtual_close(&t);
	mix_index_close(&self);
	mix_index_close(&a);
}

/* mix_virtual_store read "the map is loaded" as "a sync succeeded":
 * after a reopen with a backend unavailable every successful sync
 * leaves the map to be loaded again, and every store failed with
 * MIX_EINVAL "store before a successful sync". */
static void rv_store_after_unavailable(const char *root)
{
	struct mix_index *a = rv_backend(root, "rv-su-a", 7501, 3);
	struct mix_index *b = rv_backend(root, "rv-su-b", 7502, 3);
	struct mix_virtual_backend d[2] = { { "A", a }, { "B", b } };
	struct mix_virtual_store sto;
	struct mix_virtual_store_result res;
	struct mix_virtual *t;
	uint32_t ida, vuid;
	int ret, i, fails = 0;

	t = rv_open(root, "rv-su", d, 2, "ALL", &ret);
	if (t == NULL || mix_virtual_sync(t, 0, NULL) < 0 ||
	    mix_virtual_close(&t) < 0)
		BAIL("rv-su: %s", mix_last_error());
	d[1].index = NULL;
	t = rv_open(root, "rv-su", d, 2, "ALL", &ret);
	if (t == NULL)
		BAIL("rv-su reopen: %s", mix_last_error());
	memset(&sto, 0, sizeof(sto));
	sto.op = MIX_VIRTUAL_STORE_FLAGS;
	sto.modify = MIX_MODIFY_ADD;
	sto.flags = MIX_FLAG_ANSWERED;
	for (i = 0; i < 2; i++) {
		struct mix_uid_range r;
		if (mix_virtual_sync(t, 0, NULL) < 0 ||
		    !mix_virtual_mailbox_id(t, "A", &ida))
			BAIL("rv-su sync: %s", mix_last_error());
		mix_read_lock();
		ret = mix_virtual_lookup_real(mix_index_snap(
			mix_virtual_index(t)), ida, 1 + i, &vuid);
		mix_read_unlock();
		r.first = r.last = vuid;
		ret = ret == 1 ? mix_virtual_store(t, &r, 1, &sto, &res) : -1;
		if (!ok(ret == 0 && res.backends == 1,
			"store after successful sync %d with B unavailable: %d "
			"(expected 0) %s", i + 1, ret,
			ret < 0 ? mix_last_error() : ""))
			fails++;
		if (ret == 0)
			mix_virtual_store_result_free(&res);
	}
	ok(fails == 0 && rv_flags(a, 1) == MIX_FLAG_ANSWERED &&
	   rv_flags(a, 2) == MIX_FLAG_ANSWERED,
	   "A's UIDs 1 and 2 got \\Answered: %#x %#x", rv_flags(a, 1),
	   rv_flags(a, 2));
	mix_virtual_close(&t);
	mix_index_close(&a);
	mix_index_close(&b);
}

/* The same virtual mailbox opened twice in one engine (once per
 * session) got the same index with two in-memory maps: both syncs added
 * the same backend messages (duplicates, then a rebuild).  The second
 * open is refused while the first is open, and works after its close. */
static void rv_open_twice(const char *root)
{
	struct mix_index *a = rv_backend(root, "rv-2-a", 7601, 2);
	struct mix_virtual_backend d[1] = { { "A", a } };
	struct mix_virtual *s1, *s2;
	int ret;

	s1 = rv_open(root, "rv-2", d, 1, "ALL", &ret);
	if (s1 == NULL || mix_virtual_sync(s1, 0, NULL) < 0)
		BAIL("rv-2: %s", mix_last_error());
	s2 = rv_open(root, "rv-2", d, 1, "ALL", &ret);
	if (s2 != NULL) {
		/* what the two maps did: each adds the new message */
		tu_append(a, 1, 0);
		mix_virtual_sync(s2, 0, NULL);
		mix_virtual_sync(s1, 0, NULL);
	}
	ok(ret == MIX_ELOCKED && s2 == NULL &&
	   strstr(mix_last_error(), "already open") != NULL,
	   "a second open of an open virtual mailbox: %d (expected %d "
	   "MIX_ELOCKED) %s; virtual messages %u (backend has %u)", ret,
	   MIX_ELOCKED, mix_last_error(), tu_messages(mix_virtual_index(s1)),
	   tu_messages(a));
	mix_virtual_close(&s2);
	ok(mix_virtual_sync(s1, 0, NULL) == 0 &&
	   tu_messages(mix_virtual_index(s1)) == tu_messages(a),
	   "the first still syncs: %u virtual messages, backend %u",
	   tu_messages(mix_virtual_index(s1)), tu_messages(a));
	mix_virtual_close(&s1);
	s2 = rv_open(root, "rv-2", d, 1, "ALL", &ret);
	ok(s2 != NULL && mix_virtual_sync(s2, 0, NULL) == 0,
	   "after its close the directory opens again: %d %s", ret,
	   ret < 0 ? mix_last_error() : "");
	mix_virtual_close(&s2);
	mix_index_close(&a);
}

/* IMAP EXPUNGE through the virtual mailbox could not be race-free:
 * MIX_VIRTUAL_STORE_EXPUNGE expunges whatever the caller names.
 * MIX_VIRTUAL_STORE_EXPUNGE_DELETED leaves to each backend's writer which
 * messages have \Deleted when it applies the expunge. */
static void rv_expunge_deleted(const char *root)
{
	struct mix_index *a = rv_backend(root, "rv-xd-a", 7701, 3);
	struct mix_virtual_backend d[1] = { { "A", a } };
	struct mix_virtual_store sto;
	struct mix_virtual_store_result res;
	struct mix_uid_range all = { 1, UINT32_MAX }, r1 = { 1, 2 };
	struct mix_virtual *t;
	struct mix_txn *txn;
	int ret;

	t = rv_open(root, "rv-xd", d, 1, "ALL", &ret);
	if (t == NULL || mix_virtual_sync(t, 0, NULL) < 0)
		BAIL("rv-xd: %s", mix_last_error());
	/* the client saw \Deleted on UIDs 1 and 2; another session then
	 * clears it on 2 in the backend, before the next sync */
	if (mix_txn_begin(a, &txn) < 0 ||
	    mix_txn_flags(txn, &r1, 1, MIX_MODIFY_ADD, MIX_FLAG_DELETED) < 0 ||
	    mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL) < 0 ||
	    mix_virtual_sync(t, 0, NULL) < 0)
		BAIL("rv-xd: %s", mix_last_error());
	r1.first = r1.last = 2;
	if (mix_txn_begin(a, &txn) < 0 ||
	    mix_txn_flags(txn, &r1, 1, MIX_MODIFY_REMOVE, MIX_FLAG_DELETED) < 0 ||
	    mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("rv-xd: %s", mix_last_error());
	memset(&sto, 0, sizeof(sto));
	sto.op = MIX_VIRTUAL_STORE_EXPUNGE_DELETED;
	ret = mix_virtual_store(t, &all, 1, &sto, &res);
	ok(ret == 0 && res.backends == 1 && rv_flags(a, 1) < 0 &&
	   rv_flags(a, 2) == 0 && rv_flags(a, 3) == 0,
	   "EXPUNGE_DELETED on 1:*: ret %d %s, backends %u; UID 1 %s "
	   "(expected gone), UID 2 %s (\\Deleted cleared by another session: "
	   "expected kept), UID 3 %s (expected kept)", ret,
	   ret < 0 ? mix_last_error() : "", res.backends,
	   rv_flags(a, 1) < 0 ? "gone" : "kept",
	   rv_flags(a, 2) < 0 ? "gone" : "kept",
	   rv_flags(a, 3) < 0 ? "gone" : "kept");
	if (ret == 0)
		mix_virtual_store_result_free(&res);
	ret = mix_virtual_sync(t, 0, NULL);
	ok(ret == 0 && tu_messages(mix_virtual_index(t)) == 2,
	   "the sync shows the 2 kept messages: sync %d, %u messages", ret,
	   tu_messages(mix_virtual_index(t)));
	mix_virtual_close(&t);
	mix_index_close(&a);
}

int main(void)
{
	const char *env = getenv("MIX_VIRTUAL_STEPS");
	uint32_t steps = env ? (uint32_t)strtoul(env, NULL, 0) : 1000;
	char *root;
	int b;

	struct mix_engine_config cfg;
	pthread_t reader;

	rng = tu_seed();
	mix_engine_config_init(&cfg);
	/* half the runs keep so little expunge history that the sync must
	 * often find expunges by looking the UIDs up instead */
	cfg.expunge_history_max = tu_rand_below(&rng, 2) ? 0 : 3;
	diag("expunge_history_max %u", cfg.expunge_history_max);
	if (mix_engine_create(&cfg, &engine) < 0)
		BAIL("engine: %s", mix_last_error());
	root = tu_tmpdir("virtual");
	for (b = 0; b < NB; b++) {
		static const char *names[NB] = { "INBOX", "Work", "Lists/x" };
		bk[b].name = names[b];
		if (asprintf(&bk[b].dir, "%s/b%d", root, b) < 0 ||
		    mkdir(bk[b].dir, 0700) < 0)
			BAIL("mkdir");
		bk[b].in_def = 1;
		bk_open(&bk[b], MIX_OPEN_CREATE);
	}
	if (asprintf(&vdir, "%s/virtual", root) < 0 || mkdir(vdir, 0700) < 0)
		BAIL("mkdir");
	virtual_open();
	if (pthread_create(&reader, NULL, reader_main, NULL) != 0)
		BAIL("pthread_create");
	model_run(steps);
	atomic_store(&reader_stop, 1);
	pthread_join(reader, NULL);
	is(reader_err[0], '\0', "a reader beside the syncs saw each "
	   "remap whole in %llu snapshots %s", (unsigned long long)reader_snaps,
	   reader_err);
	skip_check();
	damage_check();
	header_fuzz();
	unavailable_check();
	if (mix_virtual_close(&vm) < 0)
		BAIL("close: %s", mix_last_error());
	time_check(root);
	def_errors_check(root);
	live_check(root);
	writes_check(root);
	uidvalidity_check(root);
	rv_null_backends(root);
	rv_expunge_unchangedsince(root);
	rv_not_virtual(root);
	rv_recreated_backend(root);
	rv_lost_point(root);
	rv_no_nesting(root);
	rv_store_after_unavailable(root);
	rv_open_twice(root);
	rv_expunge_deleted(root);
	for (b = 0; b < NB; b++) {
		mix_index_close(&bk[b].index);
		free(bk[b].m);
		free(bk[b].dir);
	}
	mix_engine_free(&engine);
	tu_rmdir_r(root);
	free(root);
	free(vdir);
	free(vl);
	return tap_done();
}
