/*
 * Modseqs (invariant 4, docs/format.md §4):
 *  - a transaction's modseq equals ((indexid + file_seq) << 32) | offset,
 *    with indexid and file_seq read from the log header on disk and a
 *    boundary record found at that offset;
 *  - strictly increasing over many commits across frequent rotations and
 *    reopens, and across MIX_OPEN_RECREATE (a new indexid);
 *  - always below 2^63; a new index's highest_modseq is below its first
 *    transaction's;
 *  - a transaction that changes nothing gets no new modseq.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"
#include "format.h"

static struct mix_engine *engine;

static int flag_commit(struct mix_index *idx, uint32_t uid, int add,
		       struct mix_commit_result *res)
{
	struct mix_txn *t;
	struct mix_uid_range r = { uid, uid };
	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	mix_txn_flags(t, &r, 1, add ? MIX_MODIFY_ADD : MIX_MODIFY_REMOVE,
		      MIX_FLAG_SEEN);
	return mix_txn_commit(&t, MIX_DURABILITY_NONE, res);
}

static void test_formula(const char *dir)
{
	struct mix_index *idx;
	struct mix_commit_result res;
	struct mix_log_header h;
	struct mix_log_boundary bd;
	uint64_t hms0;
	uint8_t *log;
	size_t size;
	char p[4096];
	uint32_t off;

	is(mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx), 0, "created");
	mix_read_lock();
	hms0 = mix_snap_highest_modseq(mix_index_snap(idx));
	mix_read_unlock();
	is(tu_append_commit(idx, 10, MIX_DURABILITY_NONE, &res), 0, "append");
	snprintf(p, sizeof(p), "%s/mix.index.log", dir);
	log = tu_read_file(p, &size);
	ok(log && size >= sizeof(h), "log read");
	memcpy(&h, log, sizeof(h));
	off = (uint32_t)res.modseq;
	is(res.modseq >> 32, (uint64_t)h.indexid + h.file_seq,
	   "high half is indexid %u + file_seq %u", h.indexid, h.file_seq);
	ok(off >= h.hdr_size && off + sizeof(bd) <= size,
	   "low half %u is an offset in the log", off);
	memcpy(&bd, log + off, sizeof(bd));
	ok(bd.rec.type == MIX_LOG_BOUNDARY && bd.rec.size == 16 &&
	   off + bd.txn_size <= size, "a transaction starts at that offset");
	is(res.modseq, mix_modseq_make(h.indexid, h.file_seq, off),
	   "modseq == formula");
	ok(hms0 < res.modseq && (hms0 >> 32) == (res.modseq >> 32),
	   "a new index's highest_modseq %llx is below its first "
	   "transaction's", (unsigned long long)hms0);
	ok(res.modseq < (1ull << 63), "below 2^63");
	{
		/* setting a flag that is already set changes nothing */
		struct mix_commit_result a, b;
		flag_commit(idx, 1, 1, &a);
		flag_commit(idx, 1, 1, &b);
		ok(!a.no_changes && b.no_changes && b.modseq == a.modseq,
		   "no-op transaction: no_changes, modseq stays %llx",
		   (unsigned long long)b.modseq);
	}
	free(log);
	mix_index_close(&idx);
}

static void test_increasing(const char *dir)
{
	struct mix_index *idx;
	struct mix_commit_result res;
	uint64_t last = 0;
	int i, bad = 0, n = (int)(20000 * tu_scale()), reopens = 0;
	uint64_t rng = tu_seed();

	is(mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx), 0, "created");
	tu_append_commit(idx, 100, MIX_DURABILITY_NONE, &res);
	last = res.modseq;
	for (i = 0; i < n; i++) {
		uint32_t uid = 1 + tu_rand_below(&rng, 100);
		if (flag_commit(idx, uid, (int)tu_rand_below(&rng, 2), &res) < 0) {
			bad++;
			break;
		}
		if (!res.no_changes) {
			if (res.modseq <= last || res.modseq >= (1ull << 63)) {
				diag("commit %d: %llx after %llx", i,
				     (unsigned long long)res.modseq,
				     (unsigned long long)last);
				bad++;
			}
			last = res.modseq;
		}
		if (i % 3000 == 2999) {
			mix_index_close(&idx);
			if (mix_index_open(engine, dir, 0, &idx) < 0)
				BAIL("reopen: %s", mix_last_error());
			reopens++;
		}
	}
	is(bad, 0, "%d commits with rotation every 4 KiB and %d reopens: "
	   "modseqs strictly increasing", n, reopens);
	mix_index_close(&idx);
	is(mix_index_open(engine, dir, MIX_OPEN_RECREATE, &idx), 0,
	   "recreated");
	tu_append_commit(idx, 1, MIX_DURABILITY_NONE, &res);
	ok(res.modseq > last, "after re-creation: %llx > %llx",
	   (unsigned long long)res.modseq, (unsigned long long)last);
	mix_read_lock();
	is(mix_snap_messages_count(mix_index_snap(idx)), 1,
	   "re-created index is new");
	mix_read_unlock();
	mix_index_close(&idx);
}

int main(void)
{
	struct mix_engine_config cfg;
	char *d1 = tu_tmpdir("modseq1"), *d2 = tu_tmpdir("modseq2");
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	if (mix_engine_create(&cfg, &engine) < 0)
		BAIL("engine");
	test_formula(d1);
	test_increasing(d2);
	mix_engine_free(&engine);
	tu_rmdir_r(d1);
	tu_rmdir_r(d2);
	free(d1);
	free(d2);
	return tap_done();
}
