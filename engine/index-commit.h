/*
 * The writer's work on one index (index-commit.c): batches, publish,
 * coalescing, the index's poison flag.  Writer role only, except
 * mix_index_poison's flag, which committers read.
 */
#ifndef MIX_INDEX_COMMIT_H
#define MIX_INDEX_COMMIT_H

#include <stdint.h>

#include "index.h"
#include "snapshot.h"

struct mix_txn;

/* MIX_EPANIC from now on (a failed write or sync, index-commit.c). */
void mix_index_poison(struct mix_index *idx);

/* Writer role: apply and publish a batch of transactions of idx, or hold
 * them back while reclamation lags (then mix_writer_hold is told).
 * Returns how many were completed (0 if held). */
uint32_t mix_index_process_batch(struct mix_index *idx, struct mix_txn **txns,
				 uint32_t count);
/* Writer role: when idx's held batch is due; apply it now (returns how
 * many were completed; a held close may free idx). */
uint64_t mix_index_held_due(const struct mix_index *idx);
uint32_t mix_index_run_held(struct mix_index *idx);

/* Publish the builder's state as the next snapshot. */
int mix_index_publish(struct mix_index *idx, struct mix_builder *b);

/* Make durable everything idx's current snapshot shows, so that a
 * record of it may lose its doubt (the mailbox list's STATUS).
 * Writable: an empty SYNC commit (the log durable to its end).
 * Read-only: what it replayed was written by another process, perhaps
 * one that died with it in the page cache: each log file present is
 * fdatasync'ed, then the directory.  *upto_r: the highest modseq of
 * the state now durable (writable: the state the empty commit was
 * applied to, which includes every commit queued before it; read-only:
 * the snapshot's as it was before the flushes), or 0 on error.
 * Returns 0 or a mix error. */
int mix_index_make_durable(struct mix_index *idx, uint64_t *upto_r);

/* Start the log a writable open deferred (rotate_pending_seq), after a
 * checkpoint when mix.index does not cover the active log (§3.5). */
int mix_index_rotate_pending(struct mix_index *idx);

#endif
