/*
 * The engine's only contact with liburcu.  The flavor is chosen here:
 * urcu-memb (sys_membarrier; read-side sections are a thread-local counter
 * update and a compiler barrier).  QSBR is out because a library cannot
 * make its users announce quiescent states; urcu-bp would register threads
 * itself, but its read side is slower — we register automatically instead
 * (mix_rcu_read_lock's first call in a thread), and unregister from a
 * pthread key destructor at thread exit.  docs/design.md "RCU flavor".
 *
 * Deferred calls run on a thread of our own (rcu.c), not liburcu's.
 *
 * fork(): rcu.c's fork handlers (fork.c registers them) make a child's RCU domain
 * usable (liburcu 0.13's urcu-memb has no fork hooks of its own): no
 * fork while a grace period, a registration or an unregistration is in
 * progress (ORDER(fork-gate)); the child unlinks the threads it does not
 * have from liburcu's registry, gets fresh locks and condition
 * variables, drops the parent's deferred calls and starts its own
 * reclaim thread when it needs one.  Callers fork outside any read-side
 * section (include/mix/mix.h "Fork").
 *
 * ThreadSanitizer does not see liburcu's grace periods (membarrier and
 * futexes in uninstrumented code).  Under TSan we tell it what they
 * order: every read-side unlock "releases" a shared token and every
 * reclamation "acquires" it, and deferred frees release/acquire their
 * object; the publish/subscribe pair uses C11 release/consume atomics,
 * which compile to the same instructions as rcu_assign_pointer /
 * rcu_dereference on x86 and which TSan understands.
 */
#ifndef MIX_RCU_H
#define MIX_RCU_H

#if defined(__SANITIZE_THREAD__)
#define MIX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MIX_TSAN 1
#endif
#endif

/* Inline read-side fast paths, except under TSan: there liburcu's code
 * stays in the (uninstrumented) library and tests/tsan.supp silences what
 * TSan's malloc interceptors see of its internals. */
#ifndef MIX_TSAN
#define _LGPL_SOURCE 1
#endif
#include <urcu/urcu-memb.h>
#include <urcu/compiler.h>

#include "intake.h"

#ifdef MIX_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char mix_rcu_tsan_token;
#define MIX_TSAN_RELEASE(p) __tsan_release((void *)(p))
#define MIX_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#else
#define MIX_TSAN_RELEASE(p) ((void)0)
#define MIX_TSAN_ACQUIRE(p) ((void)0)
#endif

extern _Thread_local int mix_rcu_registered;
void mix_rcu_register_slow(void);

/* Register the calling thread with the RCU domain if it is not yet. */
static inline void mix_rcu_thread_ensure(void)
{
	if (caa_unlikely(!mix_rcu_registered))
		mix_rcu_register_slow();
}

static inline void mix_rcu_read_lock(void)
{
	mix_rcu_thread_ensure();
	urcu_memb_read_lock();
}

static inline void mix_rcu_read_unlock(void)
{
#ifdef MIX_TSAN
	/* ORDER(rcu-gp): everything this section read happens before any
	 * reclamation that acquires the token after a grace period. */
	__tsan_release(&mix_rcu_tsan_token);
#endif
	urcu_memb_read_unlock();
}

static inline int mix_rcu_read_ongoing(void)
{
	return mix_rcu_registered && urcu_memb_read_ongoing();
}

/* Publish p = v: v's contents are complete before the store.  Pairs with
 * MIX_RCU_DEREF.  (rcu_assign_pointer: a release store would do; it is
 * seq_cst, one xchg on x86 per publish, because the snapshot pointer also
 * takes part in the watchers' store-load ordering, watch.c ORDER(watch).) */
#define MIX_RCU_PUBLISH(p, v) __atomic_store_n(&(p), (v), __ATOMIC_SEQ_CST)
/* Subscribe: read p once; what it points to was complete at publish.
 * (rcu_dereference; a consume load, plain mov on x86.) */
#define MIX_RCU_DEREF(p) __atomic_load_n(&(p), __ATOMIC_CONSUME)

/* Deferred call after a grace period (call_rcu), from the engine's
 * reclaim thread "mix-reclaim" (rcu.c says why not liburcu's call_rcu
 * thread).  Calls run in the order they were queued.  Any thread, inside
 * a section or not; takes no lock (a CAS, and a futex wake-up when the
 * reclaim thread sleeps), except the first call of a process. */
struct mix_rcu_head {
	struct mix_intake_node node;   /* the lock-free queue (intake.h) */
	void (*fn)(struct mix_rcu_head *h);
};
void mix_rcu_defer(struct mix_rcu_head *h, void (*fn)(struct mix_rcu_head *h));

/* Wait for a grace period (synchronize_rcu; holds the fork gate shared
 * meanwhile, so a fork waits for it).  Not inside a section. */
void mix_rcu_synchronize(void);

/* Wait until every deferred call queued so far has run (rcu_barrier). */
void mix_rcu_barrier(void);

/* ---- stall diagnostics (issue 11 item 1) ------------------------------ */

#include <stdint.h>
#include <sys/types.h>

/* The grace period the reclaim thread is waiting for now: when it began
 * (mix_now_ns() clock, engine/stats.h; 0 if none in progress) and its
 * number in *seq_r when seq_r is not NULL (increments per grace period
 * of the reclaim thread, from 1; when none is in progress, the number of
 * the last one; lets a caller report a stall once).  Any thread, no
 * lock, never waits for the reclaim thread (rcu.c ORDER(gp-stall)); the
 * two values belong to the same grace period. */
uint64_t mix_rcu_gp_started(uint64_t *seq_r);

/* Threads registered through mix that are inside a read-side section
 * right now: returns how many, and stores up to max of their kernel tids
 * (gettid) in tids.  Any thread; takes the registration lock; racy by
 * nature (a snapshot of the moment), for diagnostics only. */
unsigned mix_rcu_readers_inside(pid_t *tids, unsigned max);

/* Before freeing anything that readers reached through a published
 * pointer, after its grace period: tells TSan about the grace period. */
static inline void mix_rcu_gp_acquire(void)
{
#ifdef MIX_TSAN
	__tsan_acquire(&mix_rcu_tsan_token);
#endif
}

/* fork(): what the RCU domain does around it (rcu.c); fork.c calls them,
 * prepare before every other module's, parent and child after. */
void mix_rcu_fork_prepare(void);
void mix_rcu_fork_parent(void);
void mix_rcu_fork_child(void);

#endif
