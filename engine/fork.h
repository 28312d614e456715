/*
 * fork(): the library's one set of pthread_atfork handlers (fork.c).
 */
#ifndef MIX_FORK_H
#define MIX_FORK_H

/* Register them.  Called once, from rcu.c's constructor: at load, before
 * any thread of ours exists, so that no fork finds them half set up; and
 * from a file every program that uses mix links, so that a static link
 * cannot leave fork.o out (nothing else refers to it). */
void mix_fork_setup(void);

#endif
