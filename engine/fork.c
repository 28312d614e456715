/*
 * fork(): the one set of pthread_atfork handlers of the library, so that
 * the locks taken around a fork are taken in one order, whatever order
 * the linker runs constructors in.
 *
 * Each module that a thread of another process must find unlocked in the
 * child takes its lock in prepare and releases (or re-creates) it in the
 * parent and the child.  The order is fixed here:
 *
 *   1. rcu.c: the fork gate, exclusively — it waits for a grace period in
 *      progress, which waits for the read-side sections open at that
 *      moment — then the reclaim queue's lock;
 *   2. index-registry.c: the registry of open indexes;
 *   3. bufcache.c: the buffer cache.
 *
 * The gate must come first.  A reader inside its section may take the
 * registry's or the cache's lock (a view's refresh or close frees a
 * snapshot into the cache), and the grace period that holds the gate
 * shared waits for that reader: with the cache's lock taken first, the
 * forking thread waited for the gate while holding the lock the reader
 * needed, and the reader held up the grace period that held the gate
 * (a deadlock of the whole process, seen with the static library, whose
 * constructors registered three separate handler sets in the other
 * order: docs/reliability.md finding 19).  No thread holds the registry's
 * or the cache's lock while it waits for the gate or a grace period, so
 * taking them after the gate cannot wait for the fork's own waiters.
 *
 * The parent and the child release in the reverse order.
 */
#include <pthread.h>

#include "bufcache.h"
#include "fork.h"
#include "index-registry.h"
#include "rcu.h"

static void fork_prepare(void)
{
	mix_rcu_fork_prepare();
	mix_registry_fork_prepare();
	mix_bufcache_fork_prepare();
}

static void fork_parent(void)
{
	mix_bufcache_fork_parent();
	mix_registry_fork_parent();
	mix_rcu_fork_parent();
}

static void fork_child(void)
{
	mix_bufcache_fork_child();
	mix_registry_fork_child();
	mix_rcu_fork_child();
}

void mix_fork_setup(void)
{
	(void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}
