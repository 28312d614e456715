/*
 * Snapshot and shared-object reclamation (see reclaim.h for the rule).
 *
 * Threads: mix_reclaim_publish runs on the writer; snapshot deaths run on
 * the engine's reclaim thread (rcu.c; after a grace period) or on a thread closing
 * a view.  Both take r->lock; readers never do.  A snapshot's refs is
 * only incremented inside a read-side section while it is reachable
 * (views), so once the grace-period callback has dropped the current
 * reference, refs can only go down.
 */
#include <stdlib.h>

#include "probes.h"
#include "reclaim.h"
#include "stats.h"

int mix_reclaim_init(struct mix_reclaim *r)
{
	r->head = r->tail = NULL;
	r->live = 0;
	r->waiting = 0;
	r->snaps_freed = r->objs_freed = 0;
	return -pthread_mutex_init(&r->lock, NULL);
}

void mix_reclaim_publish(struct mix_reclaim *r, struct mix_snap *next,
			 struct mix_snap *prev, struct mix_robj *retired)
{
	struct mix_robj *o, *n;

	next->reclaim = r;
	pthread_mutex_lock(&r->lock);
	next->live_prev = r->tail;
	next->live_next = NULL;
	if (r->tail)
		r->tail->live_next = next;
	else
		r->head = next;
	r->tail = next;
	r->live++;
	for (o = retired; o; o = n) {
		n = o->next;
		if (prev) {
			o->next = prev->retired;
			prev->retired = o;
		} else {
			mix_robj_free(o);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

/* s is dead: no reader, no view.  Hand its retired objects down or free
 * them, unlink it and free it. */
static void snap_die(struct mix_snap *s)
{
	struct mix_reclaim *r = s->reclaim;
	struct mix_robj *o, *n, *to_free = NULL;
	struct mix_snap *p;

	/* ORDER(rcu-gp): every reader of s and of what it retired has left
	 * its section (grace period, or the view's unref). */
	mix_rcu_gp_acquire();
	pthread_mutex_lock(&r->lock);
	p = s->live_prev;
	for (o = s->retired; o; o = n) {
		n = o->next;
		if (p && p->gen >= o->born_gen) {
			o->next = p->retired;
			p->retired = o;
		} else {
			o->next = to_free;
			to_free = o;
			r->objs_freed++;
		}
	}
	if (p)
		p->live_next = s->live_next;
	else
		r->head = s->live_next;
	if (s->live_next)
		s->live_next->live_prev = p;
	else
		r->tail = p;
	r->live--;
	r->snaps_freed++;
	pthread_mutex_unlock(&r->lock);
	for (o = to_free; o; o = n) {
		n = o->next;
		mix_robj_free(o);
	}
	MIX_PROBE1(snapshot_free, s->gen);
	__atomic_add_fetch(&mix_stat_snapshots_freed, 1, __ATOMIC_RELAXED);
	mix_snap_free_shell(s);
}

void mix_snap_unref(struct mix_snap *s)
{
	/* ORDER(snap-refs): acq_rel: every holder's release of its uses of
	 * s happens before the last one's acquire, which frees it */
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		snap_die(s);
}

static void unpublish_cb(struct mix_rcu_head *h)
{
	struct mix_snap *s = caa_container_of(h, struct mix_snap, rcu);
	struct mix_reclaim *r = s->reclaim;
	mix_snap_unref(s);   /* may free s, never r */
	__atomic_sub_fetch(&r->waiting, 1, __ATOMIC_RELAXED);
}

void mix_reclaim_unpublish(struct mix_snap *prev)
{
	/* ORDER(snap-retire): prev is no longer reachable through
	 * index->snap (the successor was published before this call);
	 * readers that loaded it before are covered by the grace period. */
	__atomic_add_fetch(&prev->reclaim->waiting, 1, __ATOMIC_RELAXED);
	mix_rcu_defer(&prev->rcu, unpublish_cb);
}

uint32_t mix_reclaim_destroy(struct mix_reclaim *r, struct mix_snap *last,
			     struct mix_robj *extra)
{
	uint32_t i, live;
	if (last) {
		/* objects reachable from the last snapshot die with it */
		struct mix_robj *objs = extra;
		for (i = 0; i < last->nchunks; i++) {
			struct mix_robj *o = (struct mix_robj *)
				&last->chunks[i]->robj;
			o->next = objs;
			objs = o;
		}
		((struct mix_robj *)&last->layout->robj)->next = objs;
		objs = (struct mix_robj *)&last->layout->robj;
		((struct mix_robj *)&last->kw->robj)->next = objs;
		objs = (struct mix_robj *)&last->kw->robj;
		((struct mix_robj *)&last->exthdrs->robj)->next = objs;
		objs = (struct mix_robj *)&last->exthdrs->robj;
		{
			const struct mix_xhist_node *x = last->xhist.head;
			for (i = 0; i < last->xhist.count; i++, x = x->next) {
				struct mix_robj *o = (struct mix_robj *)&x->robj;
				o->next = objs;
				objs = o;
			}
		}
		pthread_mutex_lock(&r->lock);
		while (objs) {
			struct mix_robj *n = objs->next;
			objs->born_gen = 0; /* nobody older can keep it */
			objs->next = last->retired;
			last->retired = objs;
			objs = n;
		}
		pthread_mutex_unlock(&r->lock);
		mix_snap_unref(last);
	}
	pthread_mutex_lock(&r->lock);
	live = r->live;
	pthread_mutex_unlock(&r->lock);
	if (live == 0)
		pthread_mutex_destroy(&r->lock);
	return live;
}
