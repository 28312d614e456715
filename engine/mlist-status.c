/*
 * The mailbox list's STATUS cache (docs/mailbox-list.md "STATUS cache",
 * "Staleness rule").
 *
 * A mailbox attached with mix_list_attach() has a slot: the status
 * computed from its index's newest snapshot, an immutable box published
 * by RCU (ORDER(mlist-slot)) from the index's publish hook, which runs on
 * the mailbox's publishing thread after each publish and before its
 * committers are acknowledged — so the slot is never ahead of what a
 * view can see, and is current by the time a committer returns.  The
 * hook only computes, allocates one box and defers the old one: it never
 * commits (a commit could wait on a full intake queue of the same
 * writer).  Records are written by attach (status + the durable in-doubt
 * mark, SYNC), flush (coalesced, mark kept) and detach (final status
 * after an empty SYNC commit to the mailbox made its state durable; mark
 * cleared).  After a crash the mark is still on disk: readers are told
 * (MIX_LIST_STATUS_INDOUBT) until attach or refresh recomputes.
 *
 * The set of attached mailboxes is an immutable sorted array published
 * by RCU (ORDER(mlist-att)), replaced under list->att_lock.  Each slot's
 * box is replaced under its att->lock (hook, attach, set_size, refresh),
 * only to a status whose highest modseq is not lower (monotonic).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "index.h"
#include "index-commit.h"
#include "mlist.h"
#include "watch.h"

#define NOTMBOX (MIX_LIST_NONEXISTENT | MIX_LIST_NOSELECT)

struct mlbox {
	struct mlstat st;
	struct mix_rcu_head rcu;
};

struct mlatt {
	uint32_t id;
	struct mix_list *list;
	struct mix_index *index;
	pthread_mutex_t lock;
	uint64_t size;
	/* ORDER(mlist-slot): the live status; stored with MIX_RCU_PUBLISH
	 * under lock once the box is filled, read with MIX_RCU_DEREF */
	struct mlbox *cur;
	struct mix_rcu_head rcu;
};

static void stat_from_snap(const struct mix_snap *snap, struct mlstat *st)
{
	struct mix_snap_counts c;
	uint32_t s1, s2, fr;

	mix_snap_counts(snap, &c);
	memset(st, 0, sizeof(*st));
	st->messages = mix_snap_messages_count(snap);
	st->unseen = st->messages - (c.seen <= st->messages ? c.seen
							     : st->messages);
	fr = c.first_recent_uid ? c.first_recent_uid : 1;
	if (mix_snap_uid_range_to_seq(snap, fr, UINT32_MAX, &s1, &s2))
		st->recent = s2 - s1 + 1;
	st->uidnext = mix_snap_next_uid(snap);
	st->uidvalidity = mix_snap_uid_validity(snap);
	st->highestmodseq = mix_snap_highest_modseq(snap);
	st->sflags = MIX_LIST_STATUS_VALID;
}

static void box_free_cb(struct mix_rcu_head *h)
{
	mix_rcu_gp_acquire();
	free(caa_container_of(h, struct mlbox, rcu));
}

/* att->lock held: publish st as the slot unless it is older. */
static void slot_set(struct mlatt *a, const struct mlstat *st, int force)
{
	struct mlbox *old = a->cur, *b;

	if (!force && old != NULL &&
	    st->highestmodseq < old->st.highestmodseq)
		return;
	if ((b = malloc(sizeof(*b))) == NULL)
		return;           /* the old status stays: behind, not ahead */
	b->st = *st;
	b->st.size = a->size;
	/* ORDER(mlist-slot): b is filled; pairs with mlist_att_status */
	MIX_RCU_PUBLISH(a->cur, b);
	/* the old box is unreachable now; a reader that loaded it before
	 * the store is inside its section: free after a grace period */
	if (old != NULL)
		mix_rcu_defer(&old->rcu, box_free_cb);
}

static void hook(void *ctx, struct mix_index *idx, const struct mix_snap *snap)
{
	struct mlatt *a = ctx;
	struct mlstat st;

	stat_from_snap(snap, &st);
	pthread_mutex_lock(&a->lock);
	slot_set(a, &st, 0);
	pthread_mutex_unlock(&a->lock);
}

/* ---- the attached set ----------------------------------------------------- */

static struct mlatt *set_find(const struct mlatt_set *s, uint32_t id)
{
	uint32_t lo = 0, hi = s ? s->n : 0;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->a[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return s && lo < s->n && s->a[lo]->id == id ? s->a[lo] : NULL;
}

static void set_free_cb(struct mix_rcu_head *h)
{
	mix_rcu_gp_acquire();
	free(caa_container_of(h, struct mlatt_set, rcu));
}

/* att_lock held: publish the set with a added (add) or removed. */
static int set_change(struct mix_list *list, struct mlatt *a, int add)
{
	struct mlatt_set *old = list->att, *s;
	uint32_t n = old ? old->n : 0, i, j = 0;

	s = malloc(sizeof(*s) + (n + 1) * sizeof(s->a[0]));
	if (s == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < n; i++) {
		if (add && a != NULL && old->a[i]->id > a->id) {
			s->a[j++] = a;
			a = NULL;
		}
		if (!add && old->a[i] == a)
			continue;
		s->a[j++] = old->a[i];
	}
	if (add && a != NULL)
		s->a[j++] = a;
	s->n = j;
	/* ORDER(mlist-att): s is filled; pairs with mlist_att_status */
	MIX_RCU_PUBLISH(list->att, s);
	/* readers that loaded the old set are inside their sections:
	 * free it (not its members, still in s or freed apart) after a
	 * grace period */
	if (old != NULL)
		mix_rcu_defer(&old->rcu, set_free_cb);
	return 0;
}

int mlist_att_status(struct mix_list *list, uint32_t id, struct mlstat *st_r)
{
	const struct mlatt_set *s = MIX_RCU_DEREF(list->att);
	struct mlatt *a = set_find(s, id);
	const struct mlbox *b;

	if (a == NULL || (b = MIX_RCU_DEREF(a->cur)) == NULL)
		return 0;
	*st_r = b->st;
	st_r->sflags = MIX_LIST_STATUS_VALID | MIX_LIST_STATUS_LIVE;
	return 1;
}

MIX_API int mix_list_status(struct mix_list *list, uint32_t id,
			    struct mix_list_status *st_r)
{
	const struct mlver *v;
	const struct mlent *e;
	struct mlstat st;

	mix_read_lock();
	v = MIX_RCU_DEREF(list->pub);
	if ((e = mlist_find_id(v, id)) == NULL) {
		mix_read_unlock();
		return 0;
	}
	if (!mlist_att_status(list, id, &st))
		st = e->st;
	mix_read_unlock();
	memset(st_r, 0, sizeof(*st_r));     /* the reserved space too */
	st_r->messages = st.messages;
	st_r->unseen = st.unseen;
	st_r->recent = st.recent;
	st_r->uidnext = st.uidnext;
	st_r->uidvalidity = st.uidvalidity;
	st_r->highestmodseq = st.highestmodseq;
	st_r->size = st.size;
	st_r->flags = st.sflags;
	return 1;
}

/* ---- persisting ------------------------------------------------------------ */

/* Write st (with sflags) into mailbox id's record. */
static int persist(struct mix_list *list, uint32_t id, const struct mlstat *st,
		   enum mix_durability dur)
{
	const struct mlent *e;
	struct mlent *m;
	struct mlop op;
	int ret;

	if ((ret = mlist_op_begin(list, &op, 0)) < 0)
		return ret;
	op.dur = dur;
	e = mlist_find_id(op.nv, id);
	if (e == NULL || (e->flags & NOTMBOX)) {
		mlist_op_abort(&op);
		return mix_err(MIX_ENOTFOUND, "%s: no mailbox with id %u",
			       list->dir, id);
	}
	if (memcmp(&e->st, st, sizeof(*st)) == 0) {
		mlist_op_abort(&op);
		return 0;
	}
	if ((m = mlist_mut(op.nv, id)) == NULL) {
		mlist_op_abort(&op);
		return MIX_ENOMEM();
	}
	m->st = *st;
	if ((ret = mlist_op_touch(&op, id)) < 0) {
		mlist_op_abort(&op);
		return ret;
	}
	return mlist_op_commit(&op);
}

static void snap_status(struct mix_index *index, struct mlstat *st)
{
	mix_read_lock();
	stat_from_snap(mix_index_snap(index), st);
	mix_read_unlock();
}

/* index's status into *st, and durable in the mailbox: a record
 * without the in-doubt mark must be exact after a power cut too.  The
 * flush first, then the status, which is checked against what the flush
 * covered: a status taken first missed the commits still queued when
 * detach was called (the flush made them durable, the record did not
 * show them: finding 20), and one taken later may show commits made
 * after the flush, which a second flush then covers.  A mailbox that
 * keeps committing meanwhile (it is being written without being
 * attached) keeps the mark.  Returns 0 (st durable and exact), 1 (st
 * not shown durable: the caller keeps INDOUBT) or the flush's error. */
static int durable_status(struct mix_index *index, struct mlstat *st)
{
	uint64_t upto;
	int i, ret;

	for (i = 0; i < 2; i++) {
		ret = mix_index_make_durable(index, &upto);
		snap_status(index, st);
		if (ret < 0)
			return ret;
		if (st->highestmodseq <= upto)
			return 0;
	}
	return 1;
}

static struct mlatt *att_get(struct mix_list *list, uint32_t id)
{
	struct mlatt *a;

	pthread_mutex_lock(&list->att_lock);
	a = set_find(list->att, id);
	pthread_mutex_unlock(&list->att_lock);
	return a;
}

MIX_API int mix_list_attach(struct mix_list *list, uint32_t id,
			    struct mix_index *index)
{
	struct mix_list_status cur;
	struct mix_list_info info;
	struct mlstat st;
	struct mlatt *a;
	int ret;

	if (index == NULL)
		return mix_err(MIX_EINVAL, "attach: NULL index");
	if (list->readonly)
		return mix_err(MIX_EINVAL, "%s: mailbox list opened read-only",
			       list->dir);
	if (mix_list_lookup_id(list, id, &info, NULL, 0, NULL) != 1 ||
	    (info.flags & NOTMBOX) || mix_list_status(list, id, &cur) != 1)
		return mix_err(MIX_ENOTFOUND, "%s: no mailbox with id %u",
			       list->dir, id);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return MIX_ENOMEM();
	a->id = id;
	a->list = list;
	a->index = index;
	a->size = cur.size;
	pthread_mutex_init(&a->lock, NULL);
	/* the in-doubt mark is durable before the hook can change a thing */
	snap_status(index, &st);
	st.size = a->size;
	st.sflags = MIX_LIST_STATUS_VALID | MIX_LIST_STATUS_INDOUBT;
	pthread_mutex_lock(&list->att_lock);
	if (set_find(list->att, id) != NULL) {
		pthread_mutex_unlock(&list->att_lock);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return mix_err(MIX_EINVAL, "%s: mailbox %u is attached "
			       "already", list->dir, id);
	}
	ret = persist(list, id, &st, MIX_DURABILITY_SYNC);
	/* the hook runs under the index's watch_lock: set it without
	 * a->lock; a publish it misses is covered by reading the newest
	 * snapshot after setting it (slot_set keeps the newer) */
	if (ret == 0)
		ret = mix_index_set_publish_hook(index, hook, a);
	if (ret == 0) {
		snap_status(index, &st);
		pthread_mutex_lock(&a->lock);
		slot_set(a, &st, 0);
		pthread_mutex_unlock(&a->lock);
		if ((ret = set_change(list, a, 1)) < 0)
			mix_index_set_publish_hook(index, NULL, NULL);
	}
	pthread_mutex_unlock(&list->att_lock);
	if (ret < 0) {
		free(a->cur);
		pthread_mutex_destroy(&a->lock);
		free(a);
	}
	return ret;
}

static void att_free_cb(struct mix_rcu_head *h)
{
	struct mlatt *a = caa_container_of(h, struct mlatt, rcu);

	mix_rcu_gp_acquire();
	free(a->cur);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

MIX_API int mix_list_detach(struct mix_list *list, uint32_t id)
{
	struct mlstat st;
	struct mlatt *a;
	int ret, ret2 = 0;

	pthread_mutex_lock(&list->att_lock);
	a = set_find(list->att, id);
	if (a == NULL) {
		pthread_mutex_unlock(&list->att_lock);
		return 0;
	}
	ret = set_change(list, a, 0);
	pthread_mutex_unlock(&list->att_lock);
	if (ret < 0)
		return ret;
	/* waits for a hook call in progress: none after this */
	mix_index_set_publish_hook(a->index, NULL, NULL);
	/* the final status, durable in the mailbox (a no-op commit raises
	 * no modseq); a failure (a poisoned index refuses the commit; an
	 * I/O error) keeps the mark */
	ret2 = durable_status(a->index, &st);
	st.size = a->size;
	if (ret2 != 0)
		st.sflags |= MIX_LIST_STATUS_INDOUBT;
	if (ret2 > 0)
		ret2 = 0;
	ret = persist(list, id, &st, list->durability);
	if (ret == MIX_ENOTFOUND)
		ret = 0;         /* deleted while attached */
	/* a left the published set in set_change above (no new reader
	 * finds it) and the hook is cleared (no writer updates it): free
	 * it and its box after a grace period, for readers still in it */
	mix_rcu_defer(&a->rcu, att_free_cb);
	return ret < 0 ? ret : ret2;
}

MIX_API int mix_list_refresh_status(struct mix_list *list, uint32_t id,
				    struct mix_index *index)
{
	struct mlstat st;
	struct mlatt *a = att_get(list, id);
	struct mix_list_status cur;
	int ret, ret2 = 0;

	if (mix_list_status(list, id, &cur) != 1)
		return mix_err(MIX_ENOTFOUND, "%s: no mailbox with id %u",
			       list->dir, id);
	if (a != NULL) {
		snap_status(index, &st);
		st.size = cur.size;
		pthread_mutex_lock(&a->lock);
		slot_set(a, &st, 0);
		pthread_mutex_unlock(&a->lock);
		st.sflags |= MIX_LIST_STATUS_INDOUBT;
	} else {
		/* a record without the mark must be exact after a power cut
		 * too: what it says must be durable in the mailbox first (a
		 * read-only open may have read a dead writer's page cache) */
		ret2 = durable_status(index, &st);
		st.size = cur.size;
		if (ret2 != 0)
			st.sflags |= MIX_LIST_STATUS_INDOUBT;
		if (ret2 > 0)
			ret2 = 0;
	}
	ret = persist(list, id, &st, list->durability);
	return ret < 0 ? ret : ret2;
}

MIX_API int mix_list_set_size(struct mix_list *list, uint32_t id,
			      uint64_t size)
{
	const struct mlver *v;
	const struct mlent *e;
	struct mlatt *a = att_get(list, id);
	struct mlstat st;

	if (a != NULL) {
		pthread_mutex_lock(&a->lock);
		a->size = size;
		if (a->cur != NULL)
			slot_set(a, &a->cur->st, 1);
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	mix_read_lock();
	v = MIX_RCU_DEREF(list->pub);
	e = mlist_find_id(v, id);
	if (e != NULL)
		st = e->st;
	mix_read_unlock();
	if (e == NULL)
		return mix_err(MIX_ENOTFOUND, "%s: no mailbox with id %u",
			       list->dir, id);
	st.size = size;
	return persist(list, id, &st, list->durability);
}

MIX_API int mix_list_flush(struct mix_list *list)
{
	const struct mlatt_set *s;
	const struct mlent *e;
	struct mlent *m;
	struct mlop op;
	struct mlstat st;
	uint32_t i;
	int ret;

	if ((ret = mlist_op_begin(list, &op, 0)) < 0)
		return ret;
	op.dur = MIX_DURABILITY_NONE;
	/* att_lock after wlock here and in attach's persist: attach takes
	 * att_lock first and then wlock — so take no att_lock: read the
	 * set as a reader does */
	mix_read_lock();
	s = MIX_RCU_DEREF(list->att);
	for (i = 0; s != NULL && i < s->n && ret == 0; i++) {
		const struct mlbox *b = MIX_RCU_DEREF(s->a[i]->cur);
		if (b == NULL)
			continue;
		st = b->st;
		st.sflags = MIX_LIST_STATUS_VALID | MIX_LIST_STATUS_INDOUBT;
		e = mlist_find_id(op.nv, s->a[i]->id);
		if (e == NULL || (e->flags & NOTMBOX) ||
		    memcmp(&e->st, &st, sizeof(st)) == 0)
			continue;
		if ((m = mlist_mut(op.nv, e->id)) == NULL)
			ret = -ENOMEM;
		else {
			m->st = st;
			ret = mlist_op_touch(&op, e->id);
		}
	}
	mix_read_unlock();
	if (ret < 0) {
		mlist_op_abort(&op);
		return ret;
	}
	return mlist_op_commit(&op);
}

int mlist_att_close(struct mix_list *list)
{
	int ret = 0, r;

	for (;;) {
		uint32_t id;
		pthread_mutex_lock(&list->att_lock);
		if (list->att == NULL || list->att->n == 0) {
			pthread_mutex_unlock(&list->att_lock);
			return ret;
		}
		id = list->att->a[0]->id;
		pthread_mutex_unlock(&list->att_lock);
		if ((r = mix_list_detach(list, id)) < 0 && ret == 0)
			ret = r;
	}
}

void mlist_att_free_set(struct mix_list *list)
{
	free(list->att);
	list->att = NULL;
}
