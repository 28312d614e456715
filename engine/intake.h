/*
 * The writer's intake: a multi-producer, single-consumer batch queue.
 * Producers push with a CAS on the head (lock-free); the consumer takes
 * the whole list with one exchange and reverses it into commit order.
 * That is exactly what a group-committing writer needs (it always drains
 * everything), it never blocks a producer on another producer, and it is
 * made of C11 atomics only, so ThreadSanitizer checks its ordering (the
 * reason it replaced liburcu's wfcqueue, whose inline assembly TSan
 * cannot see).
 */
#ifndef MIX_INTAKE_H
#define MIX_INTAKE_H

#include <stddef.h>

struct mix_intake_node {
	struct mix_intake_node *next;
};

struct mix_intake {
	struct mix_intake_node *head; /* newest first; atomic */
};

/* Push n; returns 1 if the queue was empty before.  Any thread.
 * ORDER(intake): the CAS publishes everything written to the node's
 * container before the push (release; pairs with the acquire exchange in
 * mix_intake_take_all).  It is seq_cst so that a producer's later seq_cst
 * load of the consumer's "sleeping" flag cannot be ordered before it
 * (writer.c ORDER(wake)); on x86 a locked cmpxchg either way. */
static inline int mix_intake_push(struct mix_intake *q,
				  struct mix_intake_node *n)
{
	struct mix_intake_node *old = __atomic_load_n(&q->head,
						      __ATOMIC_RELAXED);
	do {
		n->next = old;
	} while (!__atomic_compare_exchange_n(&q->head, &old, n, 1,
					      __ATOMIC_SEQ_CST,
					      __ATOMIC_RELAXED));
	return old == NULL;
}

/* Take everything queued, oldest first (NULL if empty).  Consumer only. */
static inline struct mix_intake_node *mix_intake_take_all(struct mix_intake *q)
{
	struct mix_intake_node *n = __atomic_exchange_n(&q->head, NULL,
							__ATOMIC_ACQUIRE);
	struct mix_intake_node *rev = NULL;
	while (n) {
		struct mix_intake_node *next = n->next;
		n->next = rev;
		rev = n;
		n = next;
	}
	return rev;
}

/* seq_cst: see ORDER(wake) in writer.c. */
static inline int mix_intake_empty(struct mix_intake *q)
{
	return __atomic_load_n(&q->head, __ATOMIC_SEQ_CST) == NULL;
}

#endif
