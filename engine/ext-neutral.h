/*
 * Modseq-neutral extensions (ext-neutral.c; docs/format.md §2.8,
 * docs/condstore.md "What raises a modseq").  Writer and replay side:
 * every function takes a builder, i.e. runs on the writer role or in
 * open/refresh, never on the read path.
 */
#ifndef MIX_EXT_NEUTRAL_H
#define MIX_EXT_NEUTRAL_H

#include <stdint.h>

#include "snapshot.h"
#include "txlog.h"

/* The engine extension that lists the neutral ones: header data only,
 * a bitmap (bit i = extension id i), MIX_NEUTRAL_HDR_SIZE bytes. */
#define MIX_EXT_NAME_NEUTRAL "mix.neutral"
#define MIX_NEUTRAL_HDR_SIZE 256u

/* 1 if extension ext_id of b's state is modseq-neutral. */
int mix_ext_neutral(const struct mix_builder *b, uint32_t ext_id);

/* 1 if the logged operation op changes only modseq-neutral data
 * (EXT_REC or EXT_HDR of a neutral extension): it raises no modseq. */
int mix_ext_op_neutral(const struct mix_builder *b, const struct mix_log_op *op);

/* mix_builder_ext_rec, except that for a neutral extension the record
 * keeps its modseq (and so highest_modseq is not raised). */
int mix_ext_rec_apply(struct mix_builder *b, uint32_t uid, uint32_t ext_id,
		      const uint8_t *data, uint64_t modseq, int *changed_r);

/* Writer: mark ext_id neutral in b, creating mix.neutral if needed, and
 * encode the records that do it (EXT_INTRO, EXT_HDR) at the end of buf.
 * MIX_ELIMIT if ext_id is beyond the bitmap. */
int mix_ext_neutral_mark(struct mix_builder *b, uint32_t ext_id,
			 struct mix_buf *buf);

/* Register one of the engine's own header-only extensions (a "mix."
 * name, which mix_index_ext_register refuses to callers), as a
 * transaction through the writer; opener or any thread outside a
 * read-side section. */
struct mix_index;
int mix_index_ext_register_engine(struct mix_index *idx, const char *name,
				  uint32_t hdr_size, uint32_t *ext_id_r);

#endif
