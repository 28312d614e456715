/*
 * Record buffers of freed chunks, kept for the next chunks.
 *
 * Every publish that changes a chunk allocates a new one (copy on
 * write, or a new chunk for appends), and the old one is freed a grace
 * period later on the reclaim thread, in batches.  With malloc alone
 * the freed space sat at the top of the heap, glibc returned it to the
 * kernel (M_TRIM_THRESHOLD), and the next chunks faulted their pages in
 * again: bench-lmdb appends ran 17-20% faster with trimming off.  A
 * library must not change malloc's settings for its host process, so it
 * keeps a bounded number of chunk buffers itself and hands them back
 * out by exact size (chunks of one index all have the same size; a few
 * sizes at once are normal).
 *
 * A mutex guards a small array: get and put are a few dozen
 * instructions, far below the malloc and page faults they replace, and
 * the read path never comes here.  Measured for issue 11 item 5 and kept
 * (docs/design.md "Locks on the publish path, and Concurrency Kit"):
 * about 95 instructions per get and 99 per put (callgrind, one publish
 * is ~12,000), 30 ns per put + get pair, and in a 5 s stress/validate run
 * with 2 writers and ~4,700 publishes 1 to 5 waits on the lock in all.
 * A lock-free list would need ABA protection (double-width CAS, or a
 * batch pop that pushes the rest back) and takes as many locked
 * instructions as the mutex; per-thread caches do not fit, since the
 * writer takes and the reclaim thread gives back.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "bufcache.h"

#define BUFCACHE_SLOTS 256
#define BUFCACHE_BYTES (16u << 20)   /* at most 16 MiB kept */

static struct {
	pthread_mutex_t lock;
	uint32_t n;
	size_t bytes;
	struct { void *p; size_t size; } slot[BUFCACHE_SLOTS];
} bc = { .lock = PTHREAD_MUTEX_INITIALIZER };

void *mix_bufcache_get(size_t size)
{
	void *p = NULL;
	uint32_t i;
	pthread_mutex_lock(&bc.lock);
	/* newest first: the most recently freed buffer is the warmest */
	for (i = bc.n; i-- > 0;) {
		if (bc.slot[i].size != size)
			continue;
		p = bc.slot[i].p;
		bc.bytes -= size;
		bc.slot[i] = bc.slot[--bc.n];
		break;
	}
	pthread_mutex_unlock(&bc.lock);
	return p;
}

int mix_bufcache_put(void *p, size_t size)
{
	int kept = 0;
	pthread_mutex_lock(&bc.lock);
	if (bc.n < BUFCACHE_SLOTS && size <= BUFCACHE_BYTES - bc.bytes) {
		bc.slot[bc.n].p = p;
		bc.slot[bc.n].size = size;
		bc.n++;
		bc.bytes += size;
		kept = 1;
	}
	pthread_mutex_unlock(&bc.lock);
	return kept;
}

/* fork: a writer, a reader or the reclaim thread may hold bc.lock when
 * another thread forks; the child has none of them but may use the
 * cache (its own engine's opens, refreshes and frees), so the forking
 * thread takes the lock around the fork and releases it in both
 * processes.  Only after the fork gate (fork.c): a reader inside its
 * section frees into the cache (mix_bufcache_put) while a grace period
 * that holds the gate waits for that reader.  Nothing is taken while
 * bc.lock is held.  The cached buffers stay valid in both processes
 * (each has its own copy of the heap). */
void mix_bufcache_fork_prepare(void)
{
	pthread_mutex_lock(&bc.lock);
}

void mix_bufcache_fork_parent(void)
{
	pthread_mutex_unlock(&bc.lock);
}

void mix_bufcache_fork_child(void)
{
	/* the forking thread, the child's only thread, holds it: release it
	 * (a re-initialisation of a held lock confuses ThreadSanitizer) */
	pthread_mutex_unlock(&bc.lock);
}

void mix_bufcache_drain(void)
{
	pthread_mutex_lock(&bc.lock);
	while (bc.n > 0)
		free(bc.slot[--bc.n].p);
	bc.bytes = 0;
	pthread_mutex_unlock(&bc.lock);
}
