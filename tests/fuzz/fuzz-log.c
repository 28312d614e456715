/*
 * libFuzzer target: the log reader, decoder and replayer (engine/txlog.c
 * mix_log_reader_from_buf / mix_log_reader_next / mix_log_txn_next_op,
 * engine/replay.c mix_replay_txn; docs/format.md §3).  The input is a
 * whole mix.index.log, run as it is and with its checksums recomputed
 * (fuzz-common.h).  Its transactions are decoded, then replayed into
 * an empty index as recovery would (a log with prev_file_seq 0 rebuilds
 * an index from nothing); a replay error ends it like a corrupt log ends
 * an open.  After a stop, salvage walks what the damage scan found
 * (fuzz_salvage, §3.4).  Errors must be documented codes naming the file; the
 * replayed state must agree with itself (fuzz-common.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-common.h"
#include "index.h"
#include "replay.h"
#include "txlog.h"

#define FUZZ_LOG_PATH "fuzz/mix.index.log"

/* Decode every record of one transaction; the decoder's verdict must be
 * the replayer's too (replay decodes with the same function). */
static int fuzz_decode(const uint8_t *txn, uint32_t size, uint8_t major,
		       char *why, size_t why_size)
{
	struct mix_log_op op;
	uint32_t pos = 0, n = 0;
	int ret;

	while ((ret = mix_log_txn_next_op(txn, size, major, &pos, &op)) > 0) {
		if (op.type == MIX_LOG_BOUNDARY || pos > size || ++n > size)
			return fuzz_bad(why, why_size, "decoder: op type %u at "
					"%u of %u", op.type, pos, size);
	}
	if (ret < 0 && ret != MIX_ECORRUPT)
		return fuzz_bad(why, why_size, "decoder returned %d (%s): %s",
				ret, mix_strerror(ret), mix_last_error());
	return 0;
}

/* §3.4: after a stop, what the reader says follows is consistent, and
 * salvage (mix_log_reader_skip_damage) walks it to the end: each skip
 * goes forward to a 4-aligned offset inside the file, reads the
 * well-framed transactions the scan counted, and a damage proof lies at
 * or after next_valid. */
static int fuzz_salvage(struct mix_log_reader *r, char *why, size_t why_size)
{
	const uint8_t *txn;
	uint32_t tsize, after, got;
	uint64_t off, at, nv;

	while (r->torn) {
		at = r->torn_offset;
		nv = r->next_valid;
		after = r->valid_after;
		if ((nv != 0) != (after != 0) ||
		    (nv != 0 && (nv <= at || nv % 4 != 0 || nv >= r->size)) ||
		    (r->damaged && r->damage_proof < nv) ||
		    (r->damaged && nv == 0))
			return fuzz_bad(why, why_size, "stop at %llu: next_valid "
					"%llu, valid_after %u, damaged %d at %llu",
					(unsigned long long)at,
					(unsigned long long)nv, after, r->damaged,
					(unsigned long long)r->damage_proof);
		if (mix_log_reader_skip_damage(r) != (nv != 0))
			return fuzz_bad(why, why_size, "skip_damage at %llu "
					"disagrees with next_valid %llu",
					(unsigned long long)at,
					(unsigned long long)nv);
		if (nv == 0)
			break;
		got = 0;
		while (mix_log_reader_next(r, &txn, &tsize, &off) > 0)
			if (got++ == 0 && off != nv)
				return fuzz_bad(why, why_size, "salvage read "
						"%llu first, not %llu",
						(unsigned long long)off,
						(unsigned long long)nv);
		if (got > after || (!r->scan_partial &&
				    (r->torn ? r->valid_after : 0) != after - got))
			return fuzz_bad(why, why_size, "salvage from %llu read "
					"%u transactions, then %u more were "
					"found; the scan counted %u",
					(unsigned long long)nv, got,
					r->torn ? r->valid_after : 0, after);
	}
	return 0;
}

static int fuzz_log_one(const uint8_t *data, size_t size, char *why,
			size_t why_size)
{
	struct mix_log_reader r;
	struct mix_index_header h;
	struct mix_builder b;
	const uint8_t *txn;
	uint32_t tsize;
	uint64_t off;
	int ret, failed = 0;

	ret = mix_log_reader_from_buf(data, size, FUZZ_LOG_PATH, &r);
	if (ret < 0)
		return fuzz_check_error(ret, FUZZ_LOG_PATH, why, why_size);
	/* an empty index whose first log this is (index.c empty_header) */
	memset(&h, 0, sizeof(h));
	h.indexid = r.hdr.indexid;
	h.next_uid = h.first_recent_uid = 1;
	h.first_unseen_uid_lowwater = h.first_deleted_uid_lowwater = 1;
	h.highest_modseq = mix_modseq_make(r.hdr.indexid, r.hdr.file_seq, 0);
	if (mix_builder_init_empty(&b, 1, &h) < 0) {
		mix_log_reader_close(&r);
		return 0;
	}
	ret = 0;
	while (mix_log_reader_next(&r, &txn, &tsize, &off) > 0) {
		int rr;
		if (fuzz_decode(txn, tsize, r.hdr.major_version, why,
				why_size) < 0) {
			ret = -1;
			failed = 1;
			break;
		}
		rr = mix_replay_txn(&b, txn, tsize, r.hdr.major_version,
				    mix_modseq_make(r.hdr.indexid,
						    r.hdr.file_seq,
						    (uint32_t)off),
				    r.path, off);
		if (rr < 0) {
			/* recovery stops here: open fails */
			if (rr != -ENOMEM)
				ret = fuzz_check_error(rr, FUZZ_LOG_PATH, why,
						       why_size);
			failed = 1;
			break;
		}
	}
	if (!failed && r.torn && strstr(r.torn_reason, FUZZ_LOG_PATH) == NULL)
		ret = fuzz_bad(why, why_size, "torn-tail reason does not name "
			       "the file: \"%s\"", r.torn_reason);
	if (!failed && ret == 0 && r.torn)
		ret = fuzz_salvage(&r, why, why_size);
	mix_log_reader_close(&r);
	if (failed || ret < 0) {
		/* a failed replay leaves the build half done: recovery
		 * aborts it, and so do we */
		mix_builder_abort(&b);
		return ret;
	}
	return fuzz_finish(&b, why, why_size);
}

int mix_fuzz_log(const uint8_t *data, size_t size, char *why,
		 size_t why_size)
{
	return fuzz_both(fuzz_log_one, fuzz_fix_log, data, size, why,
			 why_size);
}

#ifndef MIX_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512];

	if (mix_fuzz_log(data, size, why, sizeof(why)) < 0) {
		fprintf(stderr, "fuzz-log: %s\n", why);
		abort();
	}
	return 0;
}
#endif
