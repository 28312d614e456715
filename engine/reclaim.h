/*
 * Reclamation of snapshots and of the objects they share (chunks,
 * layouts, keyword lists, extension headers, mappings).
 *
 * Each snapshot has a generation.  An object replaced at generation d was
 * reachable from the snapshots [born_gen, d); the writer hangs it on
 * snapshot d-1's retired list when it publishes d.  A snapshot dies when
 * its last reference goes (the "current" reference, dropped one grace
 * period after the next publish, and view references).  When it dies,
 * each object on its list moves to the newest older snapshot still alive
 * if that one can reach it (its gen >= born_gen), and is freed otherwise:
 * then no live snapshot is in [born_gen, d).  Cost: O(1) per object per
 * hop; no reference counts on chunks, nothing on the read path.
 */
#ifndef MIX_RECLAIM_H
#define MIX_RECLAIM_H

#include <pthread.h>
#include <stdint.h>

#include "snapshot.h"

struct mix_reclaim {
	pthread_mutex_t lock;
	/* live snapshots, oldest first */
	struct mix_snap *head, *tail;
	uint32_t live;
	/* snapshots unpublished and waiting for their grace period (atomic;
	 * the writer reads it without the lock to bound the backlog) */
	uint32_t waiting;
	/* statistics (under lock) */
	uint64_t snaps_freed;
	uint64_t objs_freed;
};

int mix_reclaim_init(struct mix_reclaim *r);

/* Writer, before publishing next (which replaces prev, may be NULL):
 * next becomes live; retired (objects replaced by next) goes on prev. */
void mix_reclaim_publish(struct mix_reclaim *r, struct mix_snap *next,
			 struct mix_snap *prev, struct mix_robj *retired);

/* Writer, after publishing prev's successor: drop prev's "current"
 * reference once every reader that may have loaded prev has left its
 * read-side section (mix_rcu_defer). */
void mix_reclaim_unpublish(struct mix_snap *prev);

/* Drop one reference (views).  The last one reclaims. */
void mix_snap_unref(struct mix_snap *s);

/* Index close, after the last snapshot was unpublished and a barrier:
 * free the last snapshot, everything reachable from it and extra (a
 * list of objects only it used, e.g. the mapping).  Returns the number of snapshots still live
 * (held by views) — 0 when everything was freed. */
uint32_t mix_reclaim_destroy(struct mix_reclaim *r, struct mix_snap *last,
			     struct mix_robj *extra);

#endif
