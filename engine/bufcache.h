/*
 * A small cache of record buffers of freed chunks, reused by the next
 * chunks of the same size (bufcache.c).  Any thread: the writer takes,
 * the reclaim thread and threads closing views give back.
 */
#ifndef MIX_BUFCACHE_H
#define MIX_BUFCACHE_H

#include <stddef.h>

/* A buffer of exactly size bytes that was given back, or NULL.  Its
 * contents are whatever the last chunk left there. */
void *mix_bufcache_get(size_t size);

/* Keep p (size bytes) for a later mix_bufcache_get: returns 1, or 0 when
 * the cache is full (then the caller frees p). */
int mix_bufcache_put(void *p, size_t size);

/* Free every cached buffer (engine free; also fine at any time). */
void mix_bufcache_drain(void);

/* fork(): take the cache's lock around it, after the fork gate (fork.c). */
void mix_bufcache_fork_prepare(void);
void mix_bufcache_fork_parent(void);
void mix_bufcache_fork_child(void);

#endif
