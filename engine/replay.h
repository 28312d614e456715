/*
 * Applying logged transactions to a builder (replay.c): recovery, the
 * read-only followers' refresh, mixctl.
 */
#ifndef MIX_REPLAY_H
#define MIX_REPLAY_H

#include <stdint.h>

#include "snapshot.h"

/* Apply a HDR record's words to b's header (replay.c). */
int mix_hdr_apply(struct mix_builder *b, uint32_t offset, const uint8_t *data,
		  uint32_t size);

/* Apply one logged transaction (replay.c). */
int mix_replay_txn(struct mix_builder *b, const uint8_t *txn, uint32_t size,
		   uint8_t major, uint64_t modseq, const char *path,
		   uint64_t offset);

#endif
