/*
 * Committing a transaction (commit.c): the hand-over to the writer role,
 * the committer's wait, and the writer side's completion and wake-up.
 */
#ifndef MIX_COMMIT_H
#define MIX_COMMIT_H

#include "txn.h"

/* Commit t (already filled) and wait for the writer.  Internal variant of
 * mix_txn_commit that keeps t alive for the caller to read results. */
int mix_txn_commit_wait(struct mix_txn *t);

/* Writer side: complete t with ret (and t->result filled): wake the
 * committer or run the callback.  t must not be touched afterwards. */
void mix_txn_complete(struct mix_txn *t, int ret);
/* The role holder, after completing transactions: wake the writer's
 * committers that went to sleep, with one system call (txn.c). */
struct mix_writer;
void mix_txn_wake_sleepers(struct mix_writer *w);

#endif
