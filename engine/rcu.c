/*
 * RCU thread registration and deferred calls (see rcu.h).  Any thread that
 * calls into mix is registered on its first read-side section and
 * unregistered by a pthread key destructor when it exits, so users never
 * call liburcu.  The writer threads register explicitly at start.
 */
#include <pthread.h>
#include <stdlib.h>

#include "rcu.h"

_Thread_local int mix_rcu_registered;
#ifdef MIX_TSAN
char mix_rcu_tsan_token;
#endif

static pthread_key_t rcu_key;
static pthread_once_t rcu_once = PTHREAD_ONCE_INIT;

static void rcu_thread_exit(void *arg)
{
	(void)arg;
	if (mix_rcu_registered) {
		urcu_memb_unregister_thread();
		mix_rcu_registered = 0;
	}
}

static void rcu_key_init(void)
{
	/* If this fails no thread can be unregistered at exit; liburcu then
	 * keeps a stale reader entry per exited thread, which is a leak but
	 * not a correctness problem: an unregistered-but-idle reader is never
	 * inside a section. */
	(void)pthread_key_create(&rcu_key, rcu_thread_exit);
}

void mix_rcu_register_slow(void)
{
	pthread_once(&rcu_once, rcu_key_init);
	urcu_memb_register_thread();
	mix_rcu_registered = 1;
	/* any non-NULL value makes the destructor run at thread exit */
	(void)pthread_setspecific(rcu_key, &mix_rcu_registered);
}

static void rcu_trampoline(struct rcu_head *head)
{
	struct mix_rcu_head *h = caa_container_of(head, struct mix_rcu_head,
						  head);
	/* ORDER(rcu-defer): pairs with the release in mix_rcu_defer */
	MIX_TSAN_ACQUIRE(h);
	mix_rcu_gp_acquire();
	h->fn(h);
}

void mix_rcu_defer(struct mix_rcu_head *h, void (*fn)(struct mix_rcu_head *))
{
	mix_rcu_thread_ensure();
	h->fn = fn;
	/* ORDER(rcu-defer): the caller's writes to *h's object happen before
	 * the callback, which runs on liburcu's call_rcu thread. */
	MIX_TSAN_RELEASE(h);
	urcu_memb_call_rcu(&h->head, rcu_trampoline);
}

void mix_rcu_synchronize(void)
{
	mix_rcu_thread_ensure();
	urcu_memb_synchronize_rcu();
	mix_rcu_gp_acquire();
}

void mix_rcu_barrier(void)
{
	mix_rcu_thread_ensure();
	urcu_memb_barrier();
}
