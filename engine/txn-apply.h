/*
 * The writer's resolution of a transaction (txn-apply.c; docs/design.md
 * "The write path").  Writer role only.
 */
#ifndef MIX_TXN_APPLY_H
#define MIX_TXN_APPLY_H

#include <stdint.h>

#include "snapshot.h"
#include "txlog.h"

/* Resolve and apply one transaction in the writer (txn-apply.c): apply it
 * to b and encode its effective changes at the end of buf.  modseq is the
 * transaction's.  Returns 0 (t->result filled; nothing encoded if it
 * changed nothing) or an error (b may be partly changed: the caller
 * aborts the build). */
struct mix_txn;
int mix_txn_apply(struct mix_builder *b, struct mix_txn *t, uint64_t modseq,
		  struct mix_buf *buf);

#endif
