/*
 * Tests of engine/txlog.c, the transaction log (docs/format.md §3, §4):
 * encoding every record type and decoding it back field by field; log
 * framing through real files; CRC and torn-tail detection at every byte;
 * zero-filled and garbage tails; rotation, including an I/O fault at each
 * step; append and sync failures; bad headers; malformed records of every
 * type, under both major versions (§3.1: the run records APPEND_RUN and
 * EXT_RUN exist from major version 2 on); the replay of the run records
 * into a builder (engine/replay.c) against the per-message records they
 * stand for; and a seeded fuzz loop (MIX_SEED=<n> replays it,
 * MIX_TEST_SCALE scales it).  Run under ASan/UBSan by `make asan`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"
#include "tap.h"
#include "testutil.h"

#include "crc32c.h"
#include "err.h"
#include "fileio.h"
#include "index.h"
#include "snapshot.h"
#include "txlog.h"

static char *tdir;

/* ---- helpers --------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* The CRC definitions of §3.1 and §3.2, written independently of
 * txlog.c: CRC32C over the bytes with the checksum field as 0. */
static void fix_txn_crc(uint8_t *txn, uint32_t size)
{
	put32(txn + 12, 0);
	put32(txn + 12, mix_crc32c(0, txn, size));
}

static void fix_hdr_crc(uint8_t *hdr)
{
	put32(hdr + 44, 0);
	put32(hdr + 44, mix_crc32c(0, hdr, 48));
}

static int has(const char *msg, const char *what)
{
	return strstr(msg, what) != NULL;
}

static char *path_in(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		BAIL("asprintf");
	return p;
}

static int file_exists(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	int ret = access(p, F_OK) == 0;
	free(p);
	return ret;
}

/* ---- a model of one operation record --------------------------------- */

#define MOP_MAXN 12
#define MOP_MAXDATA 1024

/* type is the record the decoder must give back.  APPEND_RUN and EXT_RUN
 * keep their flags / record data in data[].  An EXT_REC with run_count
 * above 0 is encoded by mix_logenc_ext_rec_run from the run_count
 * messages from first_uid with run_data[] and a partial set[]; count,
 * uids[] and data[] are then the entries it must hold. */
struct mop {
	uint16_t type;
	uint32_t count;
	struct mix_log_append app[MOP_MAXN];
	struct mix_log_uid_range rng[MOP_MAXN];
	uint8_t add, remove, modify;
	char name[300];
	struct mix_log_ext_intro intro;
	uint32_t ext_id, offset, size, rec_size;
	uint32_t uids[MOP_MAXN];
	uint8_t data[MOP_MAXDATA];
	uint32_t first_uid;     /* APPEND_RUN, EXT_RUN, a run's EXT_REC */
	uint32_t run_count;     /* a run's EXT_REC */
	int with_set;           /* EXT_RUN: encoded with all set, not NULL */
	uint8_t set[MOP_MAXDATA];
	uint8_t run_data[MOP_MAXDATA];
};

/* The EXT_REC that mix_logenc_ext_rec_run must make of a partial set:
 * the entries of the set messages, in UID order. */
static void mop_run_to_ext_rec(struct mop *m)
{
	m->type = MIX_LOG_EXT_REC;
	m->count = 0;
	for (uint32_t i = 0; i < m->run_count; i++) {
		if (!m->set[i])
			continue;
		m->uids[m->count] = m->first_uid + i;
		memcpy(m->data + m->count * m->rec_size,
		       m->run_data + i * m->rec_size, m->rec_size);
		m->count++;
	}
}

#define ALL_SET_N 2048
static uint8_t all_set[ALL_SET_N];        /* every byte 1 (main) */

static int enc_mop(struct mix_buf *b, const struct mop *m)
{
	switch (m->type) {
	case MIX_LOG_APPEND:
		return mix_logenc_append(b, m->app, m->count);
	case MIX_LOG_EXPUNGE:
		return mix_logenc_expunge(b, m->rng, m->count);
	case MIX_LOG_FLAGS:
		return mix_logenc_flags(b, m->add, m->remove, m->rng, m->count);
	case MIX_LOG_KEYWORD:
		return mix_logenc_keyword(b, m->modify, m->name, m->rng,
					  m->count);
	case MIX_LOG_KEYWORD_RESET:
		return mix_logenc_keyword_reset(b, m->rng, m->count);
	case MIX_LOG_EXT_INTRO:
		return mix_logenc_ext_intro(b, &m->intro, m->name);
	case MIX_LOG_EXT_HDR:
		return mix_logenc_ext_hdr(b, m->ext_id, m->offset, m->data,
					  m->size);
	case MIX_LOG_EXT_REC:
		if (m->run_count)
			return mix_logenc_ext_rec_run(b, m->ext_id, m->rec_size,
						      m->first_uid, m->run_data,
						      m->set, m->run_count);
		return mix_logenc_ext_rec(b, m->ext_id, m->rec_size, m->uids,
					  m->data, m->count);
	case MIX_LOG_HDR:
		return mix_logenc_hdr(b, m->offset, m->data, m->size);
	case MIX_LOG_APPEND_RUN:
		return mix_logenc_append_run(b, m->first_uid, m->data,
					     m->count);
	case MIX_LOG_EXT_RUN:
		return mix_logenc_ext_rec_run(b, m->ext_id, m->rec_size,
					      m->first_uid, m->data,
					      m->with_set ? all_set : NULL,
					      m->count);
	}
	return -1;
}

#define MISMATCH(...) do { snprintf(why, n, __VA_ARGS__); return -1; } while (0)

static int cmp_ranges(const struct mop *m, const struct mix_log_op *op,
		      char *why, size_t n)
{
	if (op->count != m->count)
		MISMATCH("range count %u, expected %u", op->count, m->count);
	for (uint32_t i = 0; i < m->count; i++) {
		if (op->ranges[i].first != m->rng[i].first ||
		    op->ranges[i].last != m->rng[i].last)
			MISMATCH("range %u is %u:%u, expected %u:%u", i,
				 op->ranges[i].first, op->ranges[i].last,
				 m->rng[i].first, m->rng[i].last);
	}
	return 0;
}

static int cmp_name(const struct mop *m, const struct mix_log_op *op,
		    char *why, size_t n)
{
	size_t len = strlen(m->name);
	if (op->name_size != len || memcmp(op->name, m->name, len) != 0)
		MISMATCH("name '%.*s' (%u bytes), expected '%.40s' (%zu)",
			 op->name_size > 40 ? 40 : (int)op->name_size,
			 op->name, op->name_size, m->name, len);
	return 0;
}

static int cmp_ext(const struct mop *m, const struct mix_log_op *op,
		   char *why, size_t n)
{
	const struct mix_log_ext_intro *a = &op->intro, *e = &m->intro;

	switch (m->type) {
	case MIX_LOG_EXT_INTRO:
		if (a->ext_id != e->ext_id || a->reset_id != e->reset_id ||
		    a->hdr_size != e->hdr_size ||
		    a->record_size != e->record_size ||
		    a->record_align != e->record_align ||
		    op->ext_id != e->ext_id)
			MISMATCH("intro %u/%u/%u/%u/%u, expected %u/%u/%u/%u/%u",
				 a->ext_id, a->reset_id, a->hdr_size,
				 a->record_size, a->record_align, e->ext_id,
				 e->reset_id, e->hdr_size, e->record_size,
				 e->record_align);
		return cmp_name(m, op, why, n);
	case MIX_LOG_EXT_HDR:
	case MIX_LOG_HDR:
		if ((m->type == MIX_LOG_EXT_HDR && op->ext_id != m->ext_id) ||
		    op->offset != m->offset || op->size != m->size ||
		    (m->size && memcmp(op->data, m->data, m->size) != 0))
			MISMATCH("ext %u offset %u size %u or data differ, "
				 "expected ext %u offset %u size %u", op->ext_id,
				 op->offset, op->size, m->ext_id, m->offset,
				 m->size);
		return 0;
	}
	/* EXT_REC */
	if (op->ext_id != m->ext_id || op->rec_size != m->rec_size ||
	    op->count != m->count || op->stride != mix_align4(4 + m->rec_size))
		MISMATCH("ext %u rec_size %u count %u stride %u, expected "
			 "%u %u %u", op->ext_id, op->rec_size, op->count,
			 op->stride, m->ext_id, m->rec_size, m->count);
	for (uint32_t i = 0; i < m->count; i++) {
		const uint8_t *e2 = op->data + (size_t)i * op->stride;
		if (get32(e2) != m->uids[i] ||
		    memcmp(e2 + 4, m->data + i * m->rec_size, m->rec_size))
			MISMATCH("ext-rec entry %u: uid %u, expected %u (or data "
				 "differs)", i, get32(e2), m->uids[i]);
	}
	return 0;
}

/* 0 if op is what m encoded; else -1 with the difference in why. */
static int cmp_mop(const struct mop *m, const struct mix_log_op *op,
		   char *why, size_t n)
{
	if (op->type != m->type)
		MISMATCH("type %u, expected %u", op->type, m->type);
	switch (m->type) {
	case MIX_LOG_APPEND:
		if (op->count != m->count ||
		    memcmp(op->appends, m->app, m->count * 8) != 0)
			MISMATCH("appends differ (count %u, expected %u)",
				 op->count, m->count);
		return 0;
	case MIX_LOG_EXPUNGE:
	case MIX_LOG_KEYWORD_RESET:
		return cmp_ranges(m, op, why, n);
	case MIX_LOG_FLAGS:
		if (op->add != m->add || op->remove != m->remove)
			MISMATCH("add/remove 0x%x/0x%x, expected 0x%x/0x%x",
				 op->add, op->remove, m->add, m->remove);
		return cmp_ranges(m, op, why, n);
	case MIX_LOG_KEYWORD:
		if (op->modify != m->modify)
			MISMATCH("modify %u, expected %u", op->modify,
				 m->modify);
		if (cmp_name(m, op, why, n) < 0)
			return -1;
		return cmp_ranges(m, op, why, n);
	case MIX_LOG_APPEND_RUN:
		if (op->first_uid != m->first_uid || op->count != m->count ||
		    memcmp(op->data, m->data, m->count) != 0)
			MISMATCH("append-run of UID %u + %u (or its flags) "
				 "differs, expected %u + %u", op->first_uid,
				 op->count, m->first_uid, m->count);
		return 0;
	case MIX_LOG_EXT_RUN:
		if (op->ext_id != m->ext_id || op->rec_size != m->rec_size ||
		    op->first_uid != m->first_uid || op->count != m->count ||
		    memcmp(op->data, m->data,
			   (size_t)m->count * m->rec_size) != 0)
			MISMATCH("ext-run ext %u rec_size %u UID %u + %u (or "
				 "its data) differs, expected %u %u %u + %u",
				 op->ext_id, op->rec_size, op->first_uid,
				 op->count, m->ext_id, m->rec_size,
				 m->first_uid, m->count);
		return 0;
	default:
		return cmp_ext(m, op, why, n);
	}
}

static int is_run_type(uint16_t type)
{
	return type == MIX_LOG_APPEND_RUN || type == MIX_LOG_EXT_RUN;
}

/* Decode the whole transaction as a file of major version major and
 * compare with ops[0..nops).  In a major-1 file the first run record
 * must be refused (§3.3: types 11 and 12 only from version 2), the
 * records before it decoded.  0 or -1 with why. */
static int check_txn_major(const uint8_t *txn, uint32_t size,
			   const struct mop *ops, int nops, uint8_t major,
			   char *why, size_t n)
{
	struct mix_log_op op;
	uint32_t pos = 0, before;
	int i = 0, ret;

	for (;;) {
		before = pos;
		ret = mix_log_txn_next_op(txn, size, major, &pos, &op);
		if (i < nops && major < 2 && is_run_type(ops[i].type)) {
			if (ret != MIX_ECORRUPT || pos != before ||
			    !strstr(mix_last_error(), "major version 2 record"))
				MISMATCH("major %u, record %d (type %u): got "
					 "%d (pos %u -> %u), expected "
					 "MIX_ECORRUPT 'major version 2 "
					 "record': %s", major,
					 i, ops[i].type, ret, before, pos,
					 ret < 0 ? mix_last_error() : "");
			return 0;
		}
		if (ret != 1)
			break;
		if (i >= nops)
			MISMATCH("more than the %d encoded records", nops);
		if (cmp_mop(&ops[i], &op, why, n) < 0) {
			char tmp[200];
			snprintf(tmp, sizeof(tmp), "%s", why);
			MISMATCH("record %d: %s", i, tmp);
		}
		i++;
	}
	if (ret != 0)
		MISMATCH("decode failed (%d): %s", ret, mix_last_error());
	if (i != nops)
		MISMATCH("decoded %d records, expected %d", i, nops);
	if (pos != size)
		MISMATCH("ended at %u, transaction is %u bytes", pos, size);
	return 0;
}

static int check_txn(const uint8_t *txn, uint32_t size, const struct mop *ops,
		     int nops, char *why, size_t n)
{
	return check_txn_major(txn, size, ops, nops, MIX_LOG_MAJOR, why, n);
}

/* ---- random valid operations ----------------------------------------- */

static uint32_t rand_uid_step(uint64_t *s)
{
	if (tu_rand_below(s, 10) == 0)
		return 1 + tu_rand_below(s, 300000000);
	return 1 + tu_rand_below(s, 5);
}

static void rand_ranges(uint64_t *s, struct mop *m)
{
	uint32_t uid = 0;
	m->count = tu_rand_below(s, MOP_MAXN + 1);
	for (uint32_t i = 0; i < m->count; i++) {
		m->rng[i].first = uid + rand_uid_step(s);
		m->rng[i].last = m->rng[i].first +
			(tu_rand_below(s, 3) ? tu_rand_below(s, 100) : 0);
		uid = m->rng[i].last;
	}
}

static void rand_name(uint64_t *s, char *name, uint32_t max)
{
	uint32_t len = tu_rand_below(s, 8) ? 1 + tu_rand_below(s, 20)
					   : 1 + tu_rand_below(s, max);
	for (uint32_t i = 0; i < len; i++) {
		name[i] = (char)(tu_rand_below(s, 4) ? 0x21 + tu_rand_below(s, 94)
					     : 0x80 + tu_rand_below(s, 128));
	}
	name[len] = '\0';
}

static void rand_ext(uint64_t *s, struct mop *m)
{
	static const uint16_t aligns[] = { 1, 2, 4, 8 };
	static const uint32_t hdrs[][2] = {
		{ 24, 4 }, { 28, 4 }, { 24, 8 }, { 44, 4 }, { 0, 0 }, { 120, 0 },
		{ 72, 36 }, { 76, 32 }
	};
	uint32_t uid = 0, i, h;

	switch (m->type) {
	case MIX_LOG_EXT_INTRO:
		m->intro.ext_id = tu_rand_below(s, 40);
		m->intro.reset_id = (uint32_t)tu_rand(s);
		m->intro.hdr_size = tu_rand_below(s, MIX_EXT_HDR_MAX + 1);
		m->intro.record_size = tu_rand_below(s, MIX_EXT_REC_MAX + 1);
		m->intro.record_align = aligns[tu_rand_below(s, 4)];
		rand_name(s, m->name, MIX_EXT_NAME_MAX);
		break;
	case MIX_LOG_EXT_HDR:
		m->ext_id = tu_rand_below(s, 40);
		m->size = tu_rand_below(s, 8) ? tu_rand_below(s, 65)
					      : tu_rand_below(s, MOP_MAXDATA + 1);
		m->offset = tu_rand_below(s, MIX_EXT_HDR_MAX - m->size + 1);
		for (i = 0; i < m->size; i++)
			m->data[i] = (uint8_t)tu_rand(s);
		break;
	case MIX_LOG_EXT_REC:
		m->ext_id = tu_rand_below(s, 40);
		m->rec_size = 1 + tu_rand_below(s, 64);
		m->count = tu_rand_below(s, MOP_MAXN + 1);
		for (i = 0; i < m->count; i++)
			m->uids[i] = uid += rand_uid_step(s);
		for (i = 0; i < m->count * m->rec_size; i++)
			m->data[i] = (uint8_t)tu_rand(s);
		break;
	case MIX_LOG_HDR:
		h = tu_rand_below(s, sizeof(hdrs) / sizeof(hdrs[0]));
		m->offset = hdrs[h][0];
		m->size = hdrs[h][1];
		for (i = 0; i < m->size; i++)
			m->data[i] = (uint8_t)tu_rand(s);
		break;
	}
}

/* A first UID for a run of count: small, or near the top (§3.3.1: the
 * last UID below 2^32 - 1 for APPEND_RUN, at most 2^32 - 1 for EXT_RUN). */
static uint32_t rand_run_uid(uint64_t *s, uint32_t count, int append)
{
	uint32_t top = UINT32_MAX - count + (append ? 0 : 1);

	switch (tu_rand_below(s, 4)) {
	case 0:
		return top - tu_rand_below(s, 3);
	case 1:
		return 1 + tu_rand_below(s, 0x7fffffffu);
	default:
		return 1 + tu_rand_below(s, 5000);
	}
}

/* APPEND_RUN; EXT_RUN (set NULL or all set); or, a third of the time for
 * EXT_RUN, a run with some messages left out, which must become EXT_REC. */
static void rand_run(uint64_t *s, struct mop *m)
{
	uint32_t i, bytes, max;

	if (m->type == MIX_LOG_APPEND_RUN) {
		m->count = 1 + (tu_rand_below(s, 4) ? tu_rand_below(s, 20)
						    : tu_rand_below(s, 400));
		m->first_uid = rand_run_uid(s, m->count, 1);
		for (i = 0; i < m->count; i++)
			m->data[i] = (uint8_t)tu_rand(s) & MIX_FLAGS_ALL;
		return;
	}
	m->ext_id = tu_rand_below(s, 40);
	max = tu_rand_below(s, 8) ? 16 : MIX_EXT_REC_MAX;
	m->rec_size = 1 + tu_rand_below(s, max);
	if (tu_rand_below(s, 3) == 0 && m->rec_size <= MOP_MAXDATA / MOP_MAXN) {
		/* a partial set: at least one in and one out */
		m->run_count = 2 + tu_rand_below(s, MOP_MAXN - 1);
		m->first_uid = rand_run_uid(s, m->run_count, 0);
		for (i = 0; i < m->run_count; i++)
			m->set[i] = (uint8_t)tu_rand_below(s, 2);
		m->set[tu_rand_below(s, m->run_count)] = 1;
		for (i = 0; i < m->run_count && m->set[i]; i++)
			;
		if (i == m->run_count)
			m->set[tu_rand_below(s, m->run_count)] = 0;
		for (i = 0; i < m->run_count * m->rec_size; i++)
			m->run_data[i] = (uint8_t)tu_rand(s);
		mop_run_to_ext_rec(m);
		return;
	}
	m->count = 1 + tu_rand_below(s, MOP_MAXDATA / m->rec_size);
	m->first_uid = rand_run_uid(s, m->count, 0);
	m->with_set = (int)tu_rand_below(s, 2);
	bytes = m->count * m->rec_size;
	for (i = 0; i < bytes; i++)
		m->data[i] = (uint8_t)tu_rand(s);
}

static void rand_mop(uint64_t *s, struct mop *m)
{
	uint32_t uid = 0;

	memset(m, 0, sizeof(*m));
	m->type = MIX_LOG_APPEND + tu_rand_below(s, MIX_LOG_EXT_RUN - 1);
	switch (m->type) {
	case MIX_LOG_APPEND:
		m->count = tu_rand_below(s, MOP_MAXN + 1);
		for (uint32_t i = 0; i < m->count; i++) {
			m->app[i].uid = uid += rand_uid_step(s);
			m->app[i].flags = (uint32_t)tu_rand(s) & MIX_FLAGS_ALL;
		}
		break;
	case MIX_LOG_FLAGS:
		m->add = (uint8_t)tu_rand(s) & MIX_FLAGS_ALL;
		m->remove = (uint8_t)tu_rand(s) & MIX_FLAGS_ALL & ~m->add;
		/* fall through */
	case MIX_LOG_EXPUNGE:
	case MIX_LOG_KEYWORD_RESET:
		rand_ranges(s, m);
		break;
	case MIX_LOG_KEYWORD:
		m->modify = 1 + tu_rand_below(s, 2);
		rand_name(s, m->name, MIX_MAX_KEYWORD_LEN);
		rand_ranges(s, m);
		break;
	case MIX_LOG_APPEND_RUN:
	case MIX_LOG_EXT_RUN:
		rand_run(s, m);
		break;
	default:
		rand_ext(s, m);
		break;
	}
}

/* One random transaction appended to b: its ops go to ops[] (room for 8),
 * *nops their number.  Returns its start in b, or BAILs. */
static size_t rand_txn(uint64_t *s, struct mix_buf *b, struct mop *ops,
		       int *nops)
{
	size_t start;
	int n = (int)tu_rand_below(s, 9);

	if (mix_logenc_begin(b, &start) < 0)
		BAIL("mix_logenc_begin: %s", mix_last_error());
	for (int i = 0; i < n; i++) {
		rand_mop(s, &ops[i]);
		if (enc_mop(b, &ops[i]) < 0)
			BAIL("encoding random op type %u: %s", ops[i].type,
			     mix_last_error());
	}
	mix_logenc_end(b, start);
	*nops = n;
	return start;
}

/* ---- tests: buffer and encode/decode --------------------------------- */

static void test_buf(void)
{
	struct mix_buf b;
	memset(&b, 0, sizeof(b));
	is(mix_buf_append(&b, "abc", 3), 0, "buf: append to a zeroed buffer");
	ok(b.len == 3 && b.cap >= 3 && memcmp(b.data, "abc", 3) == 0,
	   "buf: holds the bytes (len %zu)", b.len);
	is(mix_buf_reserve(&b, 100000), 0, "buf: reserve 100000");
	ok(b.cap >= 100003 && b.len == 3, "buf: cap %zu, len unchanged", b.cap);
	is(mix_buf_reserve(&b, SIZE_MAX), -ENOMEM, "buf: reserve SIZE_MAX fails");
	is(mix_buf_append(&b, NULL, 0), 0, "buf: append 0 bytes");
	mix_buf_free(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0, "buf: free zeroes it");
	mix_buf_free(&b);
}

#define FIXED_MAX 32

static void fixed_ops(struct mop *o, int *n)
{
	int i = 0;
	memset(o, 0, sizeof(*o) * FIXED_MAX);
	o[i].type = MIX_LOG_APPEND; o[i].count = 3;
	o[i].app[0] = (struct mix_log_append){ 10, MIX_FLAG_SEEN };
	o[i].app[1] = (struct mix_log_append){ 11, MIX_FLAG_FLAGGED | MIX_FLAG_DIRTY };
	/* the largest UID an append may have: next_uid must fit after it
	 * (format.md §3.3.2) */
	o[i++].app[2] = (struct mix_log_append){ 0xfffffffeu, 0 };
	o[i++].type = MIX_LOG_APPEND;   /* empty */
	o[i].type = MIX_LOG_EXPUNGE; o[i].count = 3;
	o[i].rng[0] = (struct mix_log_uid_range){ 1, 3 };
	o[i].rng[1] = (struct mix_log_uid_range){ 4, 4 };   /* adjacent */
	o[i++].rng[2] = (struct mix_log_uid_range){ 6, 0xffffffffu };
	o[i].type = MIX_LOG_FLAGS; o[i].count = 2;
	o[i].add = MIX_FLAG_SEEN | MIX_FLAG_ANSWERED; o[i].remove = MIX_FLAG_DELETED;
	o[i].rng[0] = (struct mix_log_uid_range){ 2, 4 };
	o[i++].rng[1] = (struct mix_log_uid_range){ 100, 200 };
	o[i].type = MIX_LOG_KEYWORD; o[i].modify = MIX_LOG_KW_ADD; o[i].count = 1;
	strcpy(o[i].name, "$Important");
	o[i++].rng[0] = (struct mix_log_uid_range){ 1, 1 };
	o[i].type = MIX_LOG_KEYWORD; o[i].modify = MIX_LOG_KW_REMOVE; o[i].count = 1;
	strcpy(o[i].name, "todo");
	o[i++].rng[0] = (struct mix_log_uid_range){ 7, 4000000000u };
	o[i].type = MIX_LOG_KEYWORD; o[i].modify = MIX_LOG_KW_ADD;
	memset(o[i++].name, 'k', 255);          /* longest, no ranges */
	o[i].type = MIX_LOG_KEYWORD_RESET; o[i].count = 1;
	o[i++].rng[0] = (struct mix_log_uid_range){ 3, 3 };
	o[i].type = MIX_LOG_EXT_INTRO; strcpy(o[i].name, "vmap");
	o[i++].intro = (struct mix_log_ext_intro){ .ext_id = 2, .reset_id = 7,
		.hdr_size = 16, .record_size = 12, .record_align = 4 };
	o[i].type = MIX_LOG_EXT_INTRO; memset(o[i].name, 'e', 63);
	o[i++].intro = (struct mix_log_ext_intro){ .ext_id = 3,
		.hdr_size = MIX_EXT_HDR_MAX, .record_size = MIX_EXT_REC_MAX,
		.record_align = 8 };
	o[i].type = MIX_LOG_EXT_HDR; o[i].ext_id = 2; o[i].offset = 4;
	o[i].size = 5; memcpy(o[i++].data, "abcde", 5);
	o[i].type = MIX_LOG_EXT_HDR; o[i].ext_id = 3;   /* empty */
	o[i++].offset = MIX_EXT_HDR_MAX;
	o[i].type = MIX_LOG_EXT_REC; o[i].ext_id = 2; o[i].rec_size = 5;
	o[i].count = 3; o[i].uids[0] = 3; o[i].uids[1] = 9; o[i].uids[2] = 12;
	memcpy(o[i++].data, "AAAAABBBBBCCCCC", 15);
	o[i].type = MIX_LOG_EXT_REC; o[i].ext_id = 4; o[i].rec_size = 8;
	o[i].count = 1; o[i].uids[0] = 1; memcpy(o[i++].data, "12345678", 8);
	o[i].type = MIX_LOG_HDR; o[i].offset = 24; o[i].size = 8;
	memcpy(o[i++].data, "\x01\0\0\0\x02\0\0\0", 8);
	o[i].type = MIX_LOG_HDR; o[i].offset = 44; o[i].size = 4;
	memcpy(o[i++].data, "\x05\0\0\0", 4);
	/* §3.3.11, §3.3.12: the run records */
	o[i].type = MIX_LOG_APPEND_RUN; o[i].first_uid = 20; o[i].count = 5;
	memcpy(o[i++].data, "\x08\x00\xbf\x80\x21", 5);
	/* the last UID of an APPEND_RUN is below 2^32-1 */
	o[i].type = MIX_LOG_APPEND_RUN; o[i].first_uid = 0xfffffffcu;
	o[i].count = 3; memcpy(o[i++].data, "\x01\x02\x04", 3);
	o[i].type = MIX_LOG_APPEND_RUN; o[i].first_uid = 1; o[i].count = 4;
	memcpy(o[i++].data, "\x08\x08\x08\x08", 4);   /* no padding */
	o[i].type = MIX_LOG_EXT_RUN; o[i].ext_id = 2; o[i].rec_size = 3;
	o[i].first_uid = 20; o[i].count = 3;                /* set NULL */
	memcpy(o[i++].data, "abcdefghi", 9);
	o[i].type = MIX_LOG_EXT_RUN; o[i].ext_id = 4; o[i].rec_size = 8;
	o[i].first_uid = 7; o[i].count = 2; o[i].with_set = 1; /* all set */
	memcpy(o[i++].data, "0123456789abcdef", 16);
	/* the last UID of an EXT_RUN may be 2^32-1 */
	o[i].type = MIX_LOG_EXT_RUN; o[i].ext_id = 3;
	o[i].rec_size = MIX_EXT_REC_MAX; o[i].first_uid = 0xffffffffu;
	o[i].count = 1; memset(o[i++].data, 0x5a, MIX_EXT_REC_MAX);
	/* a run with messages left out: EXT_REC of exactly the set ones */
	o[i].ext_id = 2; o[i].rec_size = 3; o[i].first_uid = 30;
	o[i].run_count = 5; memcpy(o[i].set, "\1\0\1\1\0", 5);
	memcpy(o[i].run_data, "AAABBBCCCDDDEEE", 15);
	mop_run_to_ext_rec(&o[i++]);
	o[i].ext_id = 5; o[i].rec_size = 1; o[i].first_uid = 0xfffffffeu;
	o[i].run_count = 2; memcpy(o[i].set, "\0\1", 2);  /* UID 2^32-1 */
	memcpy(o[i].run_data, "xy", 2);
	mop_run_to_ext_rec(&o[i++]);
	*n = i;
}

static void test_encode_decode(void)
{
	static struct mop ops[FIXED_MAX];
	struct mix_buf b = { 0 };
	struct mix_log_op op;
	uint32_t pos = 0, txn_size;
	size_t start;
	char why[300];
	int n, i, ret;

	fixed_ops(ops, &n);
	is(mix_logenc_begin(&b, &start), 0, "enc: begin");
	for (i = 0; i < n; i++) {
		ret = enc_mop(&b, &ops[i]);
		if (ret != 0)
			diag("op %d: %s", i, mix_last_error());
		is(ret, 0, "enc: record %d (type %u)", i, ops[i].type);
	}
	mix_logenc_end(&b, start);
	txn_size = (uint32_t)b.len;
	is(b.len % 4, 0, "enc: transaction size %zu is a multiple of 4", b.len);
	is(get32(b.data), 16, "enc: boundary size 16");
	is(get32(b.data + 4), MIX_LOG_BOUNDARY, "enc: boundary type/flags");
	is(get32(b.data + 8), txn_size, "enc: boundary txn_size");
	{
		uint8_t *copy = malloc(b.len);
		memcpy(copy, b.data, b.len);
		fix_txn_crc(copy, txn_size);
		is(get32(b.data + 12), get32(copy + 12),
		   "enc: boundary CRC is CRC32C with the crc field as 0");
		free(copy);
	}
	for (i = 0; i < n; i++) {
		uint32_t before = pos;
		ret = mix_log_txn_next_op(b.data, txn_size, MIX_LOG_MAJOR, &pos, &op);
		if (ret != 1) {
			diag("decode: %s", mix_last_error());
			ok(0, "dec: record %d decodes", i);
			break;
		}
		ret = cmp_mop(&ops[i], &op, why, sizeof(why));
		if (!ok(ret == 0 && pos > before && pos % 4 == 0,
			"dec: record %d (type %u) matches", i, ops[i].type))
			diag("  %s (pos %u -> %u)", ret ? why : "", before, pos);
	}
	is(mix_log_txn_next_op(b.data, txn_size, MIX_LOG_MAJOR, &pos, &op), 0, "dec: end");
	is(pos, txn_size, "dec: pos at the end");
	is(mix_log_txn_next_op(b.data, txn_size, MIX_LOG_MAJOR, &pos, &op), 0,
	   "dec: end again");

	/* record sizes: ext_intro name "vmap" is 8 + 20 + 4 */
	{
		struct mix_buf b2 = { 0 };
		mix_logenc_ext_intro(&b2, &ops[8].intro, "vmap");
		is(get32(b2.data), 32, "enc: ext-intro record is 32 bytes");
		mix_buf_free(&b2);
		mix_logenc_keyword(&b2, 1, "abcde", NULL, 0);
		is(get32(b2.data), 20, "enc: keyword 'abcde' record is 20 bytes, "
		   "zero padded");
		ok(b2.len == 20 && b2.data[17] == 0 && b2.data[18] == 0 &&
		   b2.data[19] == 0, "enc: padding bytes are 0");
		mix_buf_free(&b2);
	}
	mix_buf_free(&b);
}

/* The bytes of the run records as format.md §3.3.11-§3.3.12 lay them out,
 * written here independently of the encoder; and which record
 * mix_logenc_ext_rec_run chooses for set NULL, all set, some set, none. */
static void test_encode_runs(void)
{
	static const uint8_t want_app[24] = {
		24, 0, 0, 0, MIX_LOG_APPEND_RUN, 0, 0, 0,
		20, 0, 0, 0, 5, 0, 0, 0,
		0x08, 0x00, 0xbf, 0x80, 0x21, 0, 0, 0 };
	static const uint8_t want_run[36] = {
		36, 0, 0, 0, MIX_LOG_EXT_RUN, 0, 0, 0,
		2, 0, 0, 0, 3, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0,
		'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 0, 0, 0 };
	static const uint8_t want_rec[40] = {
		40, 0, 0, 0, MIX_LOG_EXT_REC, 0, 0, 0,
		2, 0, 0, 0, 3, 0, 0, 0,
		30, 0, 0, 0, 'A', 'A', 'A', 0,
		32, 0, 0, 0, 'C', 'C', 'C', 0,
		33, 0, 0, 0, 'D', 'D', 'D', 0 };
	static const uint8_t set_some[5] = { 1, 0, 1, 1, 0 };
	static const uint8_t set_none[5] = { 0 };
	struct mix_buf b = { 0 };
	int ret;

	ret = mix_logenc_append_run(&b, 20, (const uint8_t *)"\x08\x00\xbf"
				    "\x80\x21", 5);
	ok(ret == 0 && b.len == sizeof(want_app) &&
	   memcmp(b.data, want_app, sizeof(want_app)) == 0,
	   "enc: append-run of 5 is 24 bytes: first_uid, count, the flags, "
	   "zero padding (ret %d, %zu bytes)", ret, b.len);
	b.len = 0;
	ret = mix_logenc_ext_rec_run(&b, 2, 3, 20,
				     (const uint8_t *)"abcdefghi", NULL, 3);
	ok(ret == 0 && b.len == sizeof(want_run) &&
	   memcmp(b.data, want_run, sizeof(want_run)) == 0,
	   "enc: ext-rec-run, set NULL: one EXT_RUN of 36 bytes (ret %d, "
	   "%zu bytes)", ret, b.len);
	b.len = 0;
	ret = mix_logenc_ext_rec_run(&b, 2, 3, 20,
				     (const uint8_t *)"abcdefghi", all_set, 3);
	ok(ret == 0 && b.len == sizeof(want_run) &&
	   memcmp(b.data, want_run, sizeof(want_run)) == 0,
	   "enc: ext-rec-run, every message set: the same EXT_RUN (ret %d, "
	   "%zu bytes)", ret, b.len);
	b.len = 0;
	ret = mix_logenc_ext_rec_run(&b, 2, 3, 30,
				     (const uint8_t *)"AAABBBCCCDDDEEE",
				     set_some, 5);
	ok(ret == 0 && b.len == sizeof(want_rec) &&
	   memcmp(b.data, want_rec, sizeof(want_rec)) == 0,
	   "enc: ext-rec-run, 3 of 5 set: an EXT_REC of UIDs 30, 32, 33 "
	   "only (ret %d, %zu bytes)", ret, b.len);
	b.len = 0;
	ret = mix_logenc_ext_rec_run(&b, 2, 3, 30,
				     (const uint8_t *)"AAABBBCCCDDDEEE",
				     set_none, 5);
	ok(ret == 0 && b.len == 0, "enc: ext-rec-run, none set: no record "
	   "(ret %d, %zu bytes)", ret, b.len);
	ret = mix_logenc_ext_rec_run(&b, 2, 3, 30,
				     (const uint8_t *)"AAA", NULL, 0);
	ok(ret == 0 && b.len == 0, "enc: ext-rec-run of 0 messages: no "
	   "record (ret %d, %zu bytes)", ret, b.len);
	ret = mix_logenc_append_run(&b, 30, (const uint8_t *)"", 0);
	ok(ret == 0 && b.len == 0, "enc: append-run of 0 messages: no record "
	   "(ret %d, %zu bytes)", ret, b.len);
	mix_buf_free(&b);
}

static void test_encode_random(uint64_t seed)
{
	static struct mop ops[8];
	struct mix_buf b = { 0 };
	char why[300];
	int iters = (int)(500 * tu_scale()), fails = 0, nops;
	int fails1 = 0, runs = 0, partial = 0;

	for (int it = 0; it < iters; it++) {
		b.len = 0;
		size_t start = rand_txn(&seed, &b, ops, &nops);
		if (check_txn(b.data + start, (uint32_t)(b.len - start), ops, nops,
			      why, sizeof(why)) < 0 && fails++ == 0)
			diag("iteration %d: %s", it, why);
		if (check_txn_major(b.data + start, (uint32_t)(b.len - start),
				    ops, nops, 1, why, sizeof(why)) < 0 &&
		    fails1++ == 0)
			diag("iteration %d, major 1: %s", it, why);
		for (int k = 0; k < nops; k++) {
			runs += is_run_type(ops[k].type);
			partial += ops[k].run_count > 0;
		}
	}
	is(fails, 0, "enc/dec: %d random transactions decode to what was "
	   "encoded", iters);
	is(fails1, 0, "enc/dec: as records of a major-1 file, the same decode "
	   "up to their first run record, which is refused");
	ok(runs > 0 && partial > 0, "enc/dec: they held %d append-run and "
	   "ext-run records and %d ext-recs made from a partial run", runs,
	   partial);
	mix_buf_free(&b);
}

#define REJECT(call, what) do {						\
	size_t l0_ = b.len;						\
	int r_ = (call);						\
	if (!ok(r_ == MIX_EINVAL && b.len == l0_,			\
		"enc rejects %s", what))				\
		diag("  got %d (len %zu -> %zu): %s", r_, l0_, b.len,	\
		     mix_last_error());					\
} while (0)

static void test_encode_reject(void)
{
	struct mix_buf b = { 0 };
	struct mix_log_append ap[2] = { { 5, 0 }, { 5, 0 } };
	struct mix_log_append ap0[1] = { { 0, 0 } };
	struct mix_log_append apf[1] = { { 1, 0x40 } };
	struct mix_log_uid_range ov[2] = { { 1, 5 }, { 5, 7 } };
	struct mix_log_uid_range rev[1] = { { 5, 4 } };
	struct mix_log_uid_range zero[1] = { { 0, 4 } };
	struct mix_log_ext_intro in = { .ext_id = 2, .record_align = 4 };
	uint32_t uids0[1] = { 0 }, uids_rev[2] = { 5, 4 };
	uint8_t data[2048] = { 0 };
	char longname[300];
	size_t start;

	mix_logenc_begin(&b, &start);
	REJECT(mix_logenc_append(&b, ap, 2), "append: equal UIDs");
	REJECT(mix_logenc_append(&b, ap0, 1), "append: UID 0");
	REJECT(mix_logenc_append(&b, apf, 1), "append: flag 0x40");
	REJECT(mix_logenc_append(&b, &(struct mix_log_append){ 0xffffffffu, 0 },
				 1), "append: UID 2^32-1 (no next_uid after it)");
	REJECT(mix_logenc_expunge(&b, ov, 2), "expunge: overlapping ranges");
	REJECT(mix_logenc_expunge(&b, rev, 1), "expunge: first > last");
	REJECT(mix_logenc_expunge(&b, zero, 1), "expunge: first 0");
	REJECT(mix_logenc_keyword_reset(&b, ov, 2), "keyword-reset: overlap");
	REJECT(mix_logenc_flags(&b, 0x08, 0x08, NULL, 0), "flags: add & remove");
	REJECT(mix_logenc_flags(&b, 0x40, 0, NULL, 0), "flags: add 0x40");
	REJECT(mix_logenc_flags(&b, 0, 0, ov, 2), "flags: overlapping ranges");
	REJECT(mix_logenc_keyword(&b, 3, "a", NULL, 0), "keyword: modify 3");
	REJECT(mix_logenc_keyword(&b, 1, "", NULL, 0), "keyword: empty name");
	REJECT(mix_logenc_keyword(&b, 1, "a b", NULL, 0), "keyword: space");
	REJECT(mix_logenc_keyword(&b, 1, "a\tb", NULL, 0), "keyword: tab");
	REJECT(mix_logenc_keyword(&b, 1, NULL, NULL, 0), "keyword: NULL name");
	memset(longname, 'x', 256);
	longname[256] = '\0';
	REJECT(mix_logenc_keyword(&b, 1, longname, NULL, 0), "keyword: 256 bytes");
	REJECT(mix_logenc_ext_intro(&b, &in, ""), "ext-intro: empty name");
	REJECT(mix_logenc_ext_intro(&b, &in, "a b"), "ext-intro: space");
	longname[64] = '\0';
	REJECT(mix_logenc_ext_intro(&b, &in, longname), "ext-intro: 64 bytes");
	in.record_align = 3;
	REJECT(mix_logenc_ext_intro(&b, &in, "x"), "ext-intro: align 3");
	in.record_align = 8;
	in.record_size = MIX_EXT_REC_MAX + 1;
	REJECT(mix_logenc_ext_intro(&b, &in, "x"), "ext-intro: record_size");
	in.record_size = 8;
	in.hdr_size = MIX_EXT_HDR_MAX + 1;
	REJECT(mix_logenc_ext_intro(&b, &in, "x"), "ext-intro: hdr_size");
	REJECT(mix_logenc_ext_hdr(&b, 2, 0, data, MIX_EXT_HDR_MAX + 1),
	       "ext-hdr: size above max");
	REJECT(mix_logenc_ext_hdr(&b, 2, MIX_EXT_HDR_MAX - 1, data, 2),
	       "ext-hdr: offset + size above max");
	REJECT(mix_logenc_ext_hdr(&b, 2, 0xffffffffu, data, 4),
	       "ext-hdr: offset overflow");
	REJECT(mix_logenc_ext_rec(&b, 2, 0, NULL, NULL, 0), "ext-rec: size 0");
	REJECT(mix_logenc_ext_rec(&b, 2, MIX_EXT_REC_MAX + 1, NULL, NULL, 0),
	       "ext-rec: size 1025");
	REJECT(mix_logenc_ext_rec(&b, 2, 4, uids0, data, 1), "ext-rec: UID 0");
	REJECT(mix_logenc_ext_rec(&b, 2, 4, uids_rev, data, 2),
	       "ext-rec: UIDs decreasing");
	REJECT(mix_logenc_hdr(&b, 2, data, 4), "hdr: offset 2");
	REJECT(mix_logenc_hdr(&b, 24, data, 2), "hdr: size 2");
	REJECT(mix_logenc_hdr(&b, 0, data, 4), "hdr: writes magic");
	REJECT(mix_logenc_hdr(&b, 24, data, 12), "hdr: writes messages_count");
	REJECT(mix_logenc_hdr(&b, 116, data, 8), "hdr: past the header");
	REJECT(mix_logenc_hdr(&b, 108, data, 4), "hdr: writes checksum");
	REJECT(mix_logenc_hdr(&b, 0, data, 200), "hdr: size 200");
	REJECT(mix_logenc_append_run(&b, 0, data, 1),
	       "append-run: first UID 0");
	REJECT(mix_logenc_append_run(&b, 0xfffffffeu, data, 2),
	       "append-run: last UID 2^32-1");
	REJECT(mix_logenc_append_run(&b, 0xffffffffu, data, 1),
	       "append-run: UID 2^32-1");
	REJECT(mix_logenc_append_run(&b, 1, (const uint8_t *)"\x08\x40", 2),
	       "append-run: flag 0x40");
	REJECT(mix_logenc_ext_rec_run(&b, 2, 0, 1, data, NULL, 1),
	       "ext-rec-run: rec_size 0");
	REJECT(mix_logenc_ext_rec_run(&b, 2, MIX_EXT_REC_MAX + 1, 1, data, NULL,
				      1), "ext-rec-run: rec_size 1025");
	REJECT(mix_logenc_ext_rec_run(&b, 2, 4, 0, data, NULL, 2),
	       "ext-run: first UID 0");
	REJECT(mix_logenc_ext_rec_run(&b, 2, 4, 0xffffffffu, data, NULL, 2),
	       "ext-run: last UID past 2^32-1");
	REJECT(mix_logenc_ext_rec_run(&b, 2, 4, 0, data,
				      (const uint8_t *)"\1\0\1", 3),
	       "ext-rec-run, some set: UID 0 set");
	REJECT(mix_logenc_ext_rec_run(&b, 2, 4, 0xfffffffeu, data,
				      (const uint8_t *)"\1\0\1", 3),
	       "ext-rec-run, some set: UIDs wrap past 2^32-1");
	is(b.len, 16, "enc: after all rejections only the boundary is there");
	b.len = 17;
	REJECT(mix_logenc_begin(&b, &start), "begin on an unaligned buffer");
	REJECT(mix_logenc_expunge(&b, NULL, 0), "record on an unaligned buffer");
	mix_buf_free(&b);
}

/* ---- tests: log files ------------------------------------------------- */

struct wtxn {
	uint64_t offset;
	uint32_t size;
	uint8_t *bytes;
	struct mop ops[8];
	int nops;
};

/* Build n random transactions. */
static struct wtxn *make_txns(uint64_t *seed, int n)
{
	struct wtxn *t = calloc((size_t)n, sizeof(*t));
	struct mix_buf b = { 0 };

	for (int i = 0; i < n; i++) {
		b.len = 0;
		rand_txn(seed, &b, t[i].ops, &t[i].nops);
		t[i].size = (uint32_t)b.len;
		t[i].bytes = malloc(b.len);
		memcpy(t[i].bytes, b.data, b.len);
	}
	mix_buf_free(&b);
	return t;
}

static void free_txns(struct wtxn *t, int n)
{
	for (int i = 0; i < n; i++)
		free(t[i].bytes);
	free(t);
}

/* Append t[from..to) in one mix_log_append call; records offsets. */
static int append_batch(struct mix_log_writer *w, struct wtxn *t, int from,
			int to)
{
	struct mix_buf b = { 0 };
	uint64_t off = w->offset;
	int ret;

	for (int i = from; i < to; i++) {
		t[i].offset = off + b.len;
		mix_buf_append(&b, t[i].bytes, t[i].size);
	}
	ret = mix_log_append(w, b.data, b.len);
	mix_buf_free(&b);
	return ret;
}

/* Read r to the end, comparing with t[0..n).  Returns the number of
 * transactions that matched in order; a mismatch is reported in why. */
static int read_and_compare(struct mix_log_reader *r, const struct wtxn *t,
			    int n, int decode, char *why, size_t wn)
{
	const uint8_t *txn;
	uint32_t size;
	uint64_t off;
	int i = 0;

	why[0] = '\0';
	while (mix_log_reader_next(r, &txn, &size, &off) == 1) {
		if (i >= n) {
			snprintf(why, wn, "extra transaction at %llu",
				 (unsigned long long)off);
			return -1;
		}
		if (off != t[i].offset || size != t[i].size ||
		    memcmp(txn, t[i].bytes, size) != 0) {
			snprintf(why, wn, "txn %d: offset %llu size %u, expected "
				 "%llu %u (or bytes differ)", i,
				 (unsigned long long)off, size,
				 (unsigned long long)t[i].offset, t[i].size);
			return -1;
		}
		if (decode && check_txn(txn, size, t[i].ops, t[i].nops, why,
					wn) < 0)
			return -1;
		i++;
	}
	return i;
}

static void test_framing(uint64_t seed, struct wtxn **t_r, int *n_r,
			 uint8_t **file_r, size_t *file_size_r)
{
	enum { N = 30 };
	struct wtxn *t = make_txns(&seed, N);
	struct mix_log_writer w;
	struct mix_log_reader r;
	char why[300], *path = path_in(tdir, MIX_LOG_FILENAME);
	time_t t0 = time(NULL);
	int i, ret, fails = 0;

	is(mix_log_rotate_to(tdir, 1000, 1, 0, 0, &w), 0, "log: create");
	ok(w.fd >= 0 && w.offset == 48 && w.hdr.file_seq == 1,
	   "log: writer open at offset %llu", (unsigned long long)w.offset);
	ok(!file_exists(tdir, MIX_LOG_TMP_FILENAME), "log: no newtmp left");
	ok(!file_exists(tdir, MIX_LOG2_FILENAME), "log: no .2 for a first log");
	for (i = 0; i < 10; i++) {          /* one by one */
		ret = append_batch(&w, t, i, i + 1);
		if (ret != 0 || w.offset != t[i].offset + t[i].size)
			fails++;
	}
	for (i = 10; i < 20; i += 4) {      /* batches of up to 4 */
		int to = i + 4 < 20 ? i + 4 : 20;
		ret = append_batch(&w, t, i, to);
		if (ret != 0 || w.offset != t[to - 1].offset + t[to - 1].size)
			fails++;
	}
	if (append_batch(&w, t, 20, N) != 0)  /* one batch of 10 */
		fails++;
	is(fails, 0, "log: 30 transactions appended (single and batched)");
	is(w.offset, t[N - 1].offset + t[N - 1].size, "log: writer offset");
	is(mix_log_sync(&w), 0, "log: sync");
	mix_log_writer_close(&w);
	ok(w.fd == -1 && w.path == NULL, "log: writer closed");
	mix_log_writer_close(&w);

	ret = mix_log_reader_open(path, &r);
	is(ret, 0, "log: reader opens: %s", ret ? mix_last_error() : "ok");
	ok(r.hdr.magic == MIX_LOG_MAGIC && r.hdr.indexid == 1000 &&
	   r.hdr.file_seq == 1 && r.hdr.prev_file_seq == 0 &&
	   r.hdr.hdr_size == 48 && r.hdr.compat_flags == MIX_COMPAT_LITTLE_ENDIAN &&
	   r.hdr.create_stamp >= (uint64_t)t0 - 1 &&
	   r.hdr.create_stamp <= (uint64_t)time(NULL) + 1,
	   "log: header fields as written");
	is(r.pos, 48, "log: reader positioned after the header");
	ret = read_and_compare(&r, t, N, 1, why, sizeof(why));
	if (ret != N)
		diag("%s", why);
	is(ret, N, "log: reader returns every transaction at its offset, "
	   "decoding to what was encoded");
	ok(!r.torn && r.pos == r.size, "log: clean end (torn %d)", r.torn);
	is(mix_log_reader_seek(&r, t[15].offset), 0, "log: seek to txn 15");
	ret = read_and_compare(&r, t + 15, N - 15, 0, why, sizeof(why));
	is(ret, N - 15, "log: after seek, reading continues at txn 15 %s", why);
	is(mix_log_reader_seek(&r, 44), MIX_ECORRUPT, "log: seek into header");
	is(mix_log_reader_seek(&r, t[3].offset + 2), MIX_ECORRUPT,
	   "log: seek unaligned");
	is(mix_log_reader_seek(&r, r.size + 4), MIX_ECORRUPT, "log: seek past end");
	ok(has(mix_last_error(), path) && has(mix_last_error(), "offset"),
	   "log: seek error names file and offset: %s", mix_last_error());
	mix_log_reader_close(&r);
	mix_log_reader_close(&r);

	*file_r = tu_read_file(path, file_size_r);
	ok(*file_r && *file_size_r == t[N - 1].offset + t[N - 1].size,
	   "log: file is exactly header + transactions");
	*t_r = t;
	*n_r = N;
	free(path);
}

/* Flip every byte (each bit and 0xff) of transaction k: the reader must
 * return the k transactions before it and stop there, torn. */
static void test_crc_flips(const uint8_t *file, size_t fsize,
			   const struct wtxn *t, int k)
{
	uint8_t *copy = malloc(fsize);
	struct mix_log_reader r;
	char why[300];
	int fails = 0, tries = 0;

	for (uint64_t i = t[k].offset; i < t[k].offset + t[k].size; i++) {
		for (int m = 0; m < 9; m++) {
			uint8_t mask = m < 8 ? (uint8_t)(1u << m) : 0xff;
			int got;

			memcpy(copy, file, fsize);
			copy[i] ^= mask;
			tries++;
			if (mix_log_reader_from_buf(copy, fsize, "flip.log", &r)) {
				fails++;
				continue;
			}
			got = read_and_compare(&r, t, k, 0, why, sizeof(why));
			if ((got != k || !r.torn || r.torn_offset != t[k].offset)
			    && fails++ == 0)
				diag("byte %llu ^ 0x%02x: %d txns, torn %d at %llu "
				     "(%s) %s", (unsigned long long)i, mask, got,
				     r.torn, (unsigned long long)r.torn_offset,
				     r.torn_reason, why);
			mix_log_reader_close(&r);
		}
	}
	is(fails, 0, "crc: %d single-bit and byte flips in txn %d (offset "
	   "%llu, %u bytes) all stop the reader there, torn, with the %d "
	   "earlier transactions returned", tries, k,
	   (unsigned long long)t[k].offset, t[k].size, k);
	free(copy);
}

/* Every prefix of the file from the header on: complete transactions are
 * returned; the reader is torn exactly when the prefix ends inside one. */
static void test_every_prefix(const uint8_t *file, size_t fsize,
			      const struct wtxn *t, int n)
{
	struct mix_log_reader r;
	char why[300];
	int fails = 0;

	for (size_t len = 48; len <= fsize; len++) {
		int whole = 0, got, at_end;
		while (whole < n && t[whole].offset + t[whole].size <= len)
			whole++;
		at_end = whole == 0 ? len == 48
			 : t[whole - 1].offset + t[whole - 1].size == len;
		if (mix_log_reader_from_buf(file, len, "p.log", &r) != 0) {
			fails++;
			continue;
		}
		got = read_and_compare(&r, t, n, 0, why, sizeof(why));
		if ((got != whole || r.torn != !at_end ||
		     (!at_end && r.torn_offset != t[whole].offset)) &&
		    fails++ == 0)
			diag("length %zu: %d txns (expected %d), torn %d: %s",
			     len, got, whole, r.torn, r.torn_reason);
		mix_log_reader_close(&r);
	}
	is(fails, 0, "torn: all %zu prefixes of the log read back to the last "
	   "whole transaction, torn iff cut inside one", fsize - 47);
}

/* The brief's torn-tail test through real files: truncated copies at every
 * length inside the last transaction. */
static void test_torn_last(const uint8_t *file, const struct wtxn *t, int n)
{
	char *path = path_in(tdir, "torn.log"), why[300], off[32];
	uint64_t last = t[n - 1].offset, end = last + t[n - 1].size;
	struct mix_log_reader r;
	int fails = 0, ret;

	snprintf(off, sizeof(off), "offset %llu", (unsigned long long)last);
	for (uint64_t len = last; len <= end; len++) {
		int want = len == end ? n : n - 1, torn = len != last && len != end;
		if (tu_write_file(path, file, (size_t)len) < 0)
			BAIL("write %s", path);
		if ((ret = mix_log_reader_open(path, &r)) != 0) {
			diag("len %llu: open %d %s", (unsigned long long)len,
			     ret, mix_last_error());
			fails++;
			continue;
		}
		ret = read_and_compare(&r, t, n, len == end, why, sizeof(why));
		if ((ret != want || r.torn != torn ||
		     (torn && (r.torn_offset != last ||
			       !has(r.torn_reason, off) ||
			       !has(r.torn_reason, path)))) && fails++ == 0)
			diag("len %llu: %d txns, torn %d at %llu: %s %s",
			     (unsigned long long)len, ret, r.torn,
			     (unsigned long long)r.torn_offset, r.torn_reason, why);
		mix_log_reader_close(&r);
	}
	is(fails, 0, "torn: files cut at each of the %u lengths of the last "
	   "transaction keep the %d before it; torn at %llu except at its "
	   "start and end", t[n - 1].size + 1, n - 1, (unsigned long long)last);
	unlink(path);
	free(path);
}

/* Tails that are not a transaction: zeros, garbage, broken boundaries. */
static void tail_case(const uint8_t *file, size_t fsize, const struct wtxn *t,
		      int n, const uint8_t *tail, size_t tlen, const char *expect,
		      const char *what)
{
	uint8_t *buf = malloc(fsize + tlen);
	struct mix_log_reader r;
	char why[300];
	int got, ret;

	memcpy(buf, file, fsize);
	memcpy(buf + fsize, tail, tlen);
	ret = mix_log_reader_from_buf(buf, fsize + tlen, "tail.log", &r);
	got = ret == 0 ? read_and_compare(&r, t, n, 0, why, sizeof(why)) : -1;
	if (!ok(got == n && r.torn && r.torn_offset == fsize &&
		has(r.torn_reason, expect) && has(r.torn_reason, "tail.log"),
		"tail: %s → torn at the end of valid data", what))
		diag("  %d txns, torn %d at %llu: '%s' (want '%s')", got, r.torn,
		     (unsigned long long)r.torn_offset, r.torn_reason, expect);
	if (ret == 0) {
		const uint8_t *x;
		uint32_t s;
		uint64_t o;
		ok(mix_log_reader_next(&r, &x, &s, &o) == 0 && r.torn,
		   "tail: %s → next again still stops", what);
	}
	mix_log_reader_close(&r);
	free(buf);
}

static void boundary_tail(uint8_t *b, uint32_t size, uint16_t type,
			  uint16_t flags, uint32_t txn_size)
{
	memset(b, 0, 64);
	put32(b, size);
	memcpy(b + 4, &type, 2);
	memcpy(b + 6, &flags, 2);
	put32(b + 8, txn_size);
	if (txn_size >= 16 && txn_size <= 64 && txn_size % 4 == 0)
		fix_txn_crc(b, txn_size);
}

static void test_tails(const uint8_t *file, size_t fsize,
		       const struct wtxn *t, int n)
{
	static uint8_t zeros[8192];
	static const size_t zlen[] = { 1, 3, 4, 15, 16, 17, 4096, 8192 };
	uint8_t b[64], garbage[100];
	uint64_t s = 42;

	for (size_t i = 0; i < sizeof(zlen) / sizeof(zlen[0]); i++) {
		char what[64];
		snprintf(what, sizeof(what), "%zu zero bytes", zlen[i]);
		tail_case(file, fsize, t, n, zeros, zlen[i], "zero bytes", what);
	}
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)tu_rand(&s) | 1;
	tail_case(file, fsize, t, n, garbage, sizeof(garbage), "no boundary",
		  "garbage");
	tail_case(file, fsize, t, n, garbage, 12, "less than a boundary",
		  "12 garbage bytes");
	boundary_tail(b, 16, MIX_LOG_APPEND, 0, 32);
	tail_case(file, fsize, t, n, b, 32, "no boundary", "wrong type");
	boundary_tail(b, 20, MIX_LOG_BOUNDARY, 0, 32);
	tail_case(file, fsize, t, n, b, 32, "size 20", "boundary size 20");
	/* 0x1 is PREV_SYNCED from major 3 on (§3.2); 0x2 is no flag */
	boundary_tail(b, 16, MIX_LOG_BOUNDARY, 2, 32);
	tail_case(file, fsize, t, n, b, 32, "flags 0x2", "boundary flags");
	boundary_tail(b, 16, MIX_LOG_BOUNDARY, 0, 8);
	tail_case(file, fsize, t, n, b, 32, "txn_size 8", "txn_size 8");
	boundary_tail(b, 16, MIX_LOG_BOUNDARY, 0, 18);
	tail_case(file, fsize, t, n, b, 32, "txn_size 18", "txn_size 18");
	boundary_tail(b, 16, MIX_LOG_BOUNDARY, 0, 9000);
	tail_case(file, fsize, t, n, b, 32, "runs past end of file",
		  "txn_size past the end");
	boundary_tail(b, 16, MIX_LOG_BOUNDARY, 0, 16);
	b[12] ^= 1;
	tail_case(file, fsize, t, n, b, 16, "CRC32C", "bad CRC");
	boundary_tail(b, 16, MIX_LOG_BOUNDARY, 0, 48);
	tail_case(file, fsize, t, n, b, 32, "runs past", "boundary then zeros");
}

/* Control for test_tails: a boundary-only transaction is valid. */
static void test_empty_txn_valid(const uint8_t *file, size_t fsize, int n)
{
	uint8_t b[64], *buf = malloc(fsize + 16);
	struct mix_log_reader r;
	const uint8_t *x;
	uint32_t s, pos = 0;
	uint64_t o;
	struct mix_log_op op;
	int got = 0;

	boundary_tail(b, 16, MIX_LOG_BOUNDARY, 0, 16);
	memcpy(buf, file, fsize);
	memcpy(buf + fsize, b, 16);
	mix_log_reader_from_buf(buf, fsize + 16, "e.log", &r);
	while (mix_log_reader_next(&r, &x, &s, &o) == 1)
		got++;
	ok(got == n + 1 && !r.torn && s == 16 && o == fsize,
	   "an empty transaction (boundary only) is valid");
	is(mix_log_txn_next_op(x, s, MIX_LOG_MAJOR, &pos, &op), 0, "it has no records");
	mix_log_reader_close(&r);
	free(buf);
}

/* ---- rotation --------------------------------------------------------- */

static int read_log(const char *dir, const char *name,
		    struct mix_log_reader *r)
{
	char *p = path_in(dir, name);
	int ret = mix_log_reader_open(p, r);
	free(p);
	return ret;
}

static void test_rotation(uint64_t seed)
{
	char *dir = tu_tmpdir("txlog-rot"), why[300];
	struct wtxn *a = make_txns(&seed, 3), *b = make_txns(&seed, 2);
	struct mix_log_writer w;
	struct mix_log_reader r;
	uint64_t end1, end2, last_modseq1;

	is(mix_log_rotate_to(dir, 500, 1, 0, 0, &w), 0, "rot: first log");
	append_batch(&w, a, 0, 3);
	end1 = w.offset;
	last_modseq1 = mix_modseq_make(500, 1, (uint32_t)a[2].offset);
	mix_log_writer_close(&w);
	is(mix_log_rotate_to(dir, 500, 2, 1, (uint32_t)end1, &w), 0,
	   "rot: rotate to file_seq 2");
	ok(mix_modseq_make(500, 2, 48) > last_modseq1,
	   "rot: first modseq of file 2 is above the last of file 1");
	append_batch(&w, b, 0, 2);
	end2 = w.offset;
	mix_log_writer_close(&w);
	is(read_log(dir, MIX_LOG_FILENAME, &r), 0, "rot: active log reads");
	ok(r.hdr.file_seq == 2 && r.hdr.prev_file_seq == 1 &&
	   r.hdr.prev_file_offset == end1 && r.hdr.indexid == 500,
	   "rot: active log header: seq %u prev %u prev_offset %u",
	   r.hdr.file_seq, r.hdr.prev_file_seq, r.hdr.prev_file_offset);
	is(read_and_compare(&r, b, 2, 1, why, sizeof(why)), 2,
	   "rot: active log has file 2's transactions %s", why);
	mix_log_reader_close(&r);
	is(read_log(dir, MIX_LOG2_FILENAME, &r), 0, "rot: .2 reads");
	ok(r.hdr.file_seq == 1 && r.size == end1, "rot: .2 is file_seq 1");
	is(read_and_compare(&r, a, 3, 1, why, sizeof(why)), 3,
	   "rot: .2 holds file 1's transactions %s", why);
	ok(!r.torn, "rot: .2 ends cleanly");
	mix_log_reader_close(&r);

	is(mix_log_rotate_to(dir, 500, 3, 2, (uint32_t)end2, &w), 0,
	   "rot: rotate to file_seq 3");
	mix_log_writer_close(&w);
	is(read_log(dir, MIX_LOG2_FILENAME, &r), 0, "rot: new .2 reads");
	ok(r.hdr.file_seq == 2 &&
	   read_and_compare(&r, b, 2, 0, why, sizeof(why)) == 2,
	   "rot: .2 is now file 2 with its transactions");
	mix_log_reader_close(&r);
	ok(!file_exists(dir, MIX_LOG_TMP_FILENAME), "rot: no newtmp left");

	is(mix_log_rotate_to(dir, 500, 0, 0, 0, &w), MIX_EINVAL,
	   "rot: file_seq 0 refused");
	ok(w.fd == -1 && w.path == NULL, "rot: failed rotate leaves a closed "
	   "writer");
	mix_log_writer_close(&w);
	is(mix_log_rotate_to(dir, 500, 4, 4, 0, &w), MIX_EINVAL,
	   "rot: prev_file_seq == file_seq refused");
	is(mix_log_rotate_to(dir, 0x7fffffffu, 1, 0, 0, &w), MIX_ELIMIT,
	   "rot: indexid + file_seq = 2^31 refused (§4)");
	ok(mix_modseq_file_ok(0x7ffffffeu, 1) && !mix_modseq_file_ok(0x7ffffffeu, 2),
	   "mix_modseq_file_ok: limit is indexid + file_seq < 2^31");
	is(read_log(dir, MIX_LOG_FILENAME, &r), 0, "rot: log still there");
	is(r.hdr.file_seq, 3, "rot: refused rotations changed nothing");
	mix_log_reader_close(&r);
	{
		char *nodir = path_in(dir, "missing");
		is(mix_log_rotate_to(nodir, 1, 1, 0, 0, &w), -ENOENT,
		   "rot: missing directory → -ENOENT");
		free(nodir);
	}
	free_txns(a, 3);
	free_txns(b, 2);
	tu_rmdir_r(dir);
	free(dir);
}

/* What a directory holds after a rotation from file 2 to 3 failed. */
static int rotation_state(const char *dir, const struct wtxn *b)
{
	struct mix_log_reader r;
	char why[300];
	int log_seq = 0, log2_seq = 0, b_ok = 0;

	if (read_log(dir, MIX_LOG_FILENAME, &r) == 0) {
		log_seq = (int)r.hdr.file_seq;
		if (log_seq == 2)
			b_ok = read_and_compare(&r, b, 2, 0, why, 300) == 2;
		mix_log_reader_close(&r);
	}
	if (read_log(dir, MIX_LOG2_FILENAME, &r) == 0) {
		log2_seq = (int)r.hdr.file_seq;
		if (log2_seq == 2)
			b_ok = read_and_compare(&r, b, 2, 0, why, 300) == 2;
		mix_log_reader_close(&r);
	}
	if (!b_ok || file_exists(dir, MIX_LOG_TMP_FILENAME))
		return -1;
	if (log_seq == 2 && log2_seq == 1)
		return 0;       /* first rename not done: old log active */
	if (log_seq == 0 && log2_seq == 2)
		return 1;       /* between the renames */
	return -1;
}

static void test_rotation_faults(uint64_t seed)
{
	struct wtxn *b = make_txns(&seed, 2);
	int seen[2] = { 0 }, bad = 0, first_ok = 0;

	for (unsigned c = 1; c <= 12 && !first_ok; c++) {
		char *dir = tu_tmpdir("txlog-fault");
		struct mix_log_writer w;
		int ret, st;

		mix_log_rotate_to(dir, 9, 1, 0, 0, &w);
		mix_log_writer_close(&w);
		mix_log_rotate_to(dir, 9, 2, 1, 48, &w);
		append_batch(&w, b, 0, 2);
		mix_log_writer_close(&w);
		mix_io_fault_set(c, -EIO);
		ret = mix_log_rotate_to(dir, 9, 3, 2, 100, &w);
		mix_io_fault_set(0, 0);
		if (ret == 0) {
			first_ok = (int)c;
		} else {
			st = rotation_state(dir, b);
			if (st < 0 || w.fd != -1 || w.path != NULL) {
				if (bad++ == 0)
					diag("fault at I/O call %u: bad state "
					     "(%s)", c, mix_last_error());
			} else {
				seen[st]++;
			}
		}
		mix_log_writer_close(&w);
		tu_rmdir_r(dir);
		free(dir);
	}
	is(bad, 0, "rot faults: every failed rotation leaves file 2's "
	   "transactions readable, no newtmp, a closed writer");
	/* a failure of the last fsync_dir takes the new log away again, so
	 * "renamed" is never left behind (the caller would keep appending to
	 * the old file; see rotate_renames in engine/txlog.c) */
	ok(seen[0] && seen[1], "rot faults: both failure states reached (old "
	   "active %d, between renames %d), never the new log in place",
	   seen[0], seen[1]);
	/* create, header, fsync, rename, fsync_dir, rename, fsync_dir */
	is(first_ok, 8, "rot faults: rotation makes 7 I/O calls, succeeds "
	   "when the 8th would fail");
	free_txns(b, 2);
}

static uint64_t file_size_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
}

static void test_append_faults(uint64_t seed)
{
	char *dir = tu_tmpdir("txlog-app"), *path = path_in(dir, MIX_LOG_FILENAME);
	struct wtxn *t = make_txns(&seed, 3);
	struct mix_log_writer w, z;
	struct mix_log_reader r;
	uint64_t off;
	int ret, stdin_open;

	for (int e = 0; e < 2; e++) {
		int err = e == 0 ? -EIO : -ENOSPC;
		mix_log_rotate_to(dir, 7, 1 + e, e, 0, &w);
		is(append_batch(&w, t, 0, 1), 0, "append: first txn");
		off = w.offset;
		mix_io_fault_set(1, err);
		ret = append_batch(&w, t, 1, 3);
		mix_io_fault_set(0, 0);
		is(ret, err, "append: injected %s fails", e ? "ENOSPC" : "EIO");
		ok(w.offset == off && w.failed, "append: offset unchanged, "
		   "writer marked failed");
		is(file_size_of(path), off, "append: a half-written batch is "
		   "truncated away");
		ok(has(mix_last_error(), path), "append: error names the file: "
		   "%s", mix_last_error());
		is(append_batch(&w, t, 1, 2), MIX_EPANIC, "append: no more "
		   "appends after a failure");
		is(mix_log_sync(&w), MIX_EPANIC, "append: nor syncs");
		mix_log_writer_close(&w);
		mix_log_reader_open(path, &r);
		ok(read_and_compare(&r, t, 1, 0, (char[300]){0}, 300) == 1 &&
		   !r.torn, "append: the log holds the first txn, cleanly");
		mix_log_reader_close(&r);
	}
	/* mix_log_append_batch: out of space before the first transaction
	 * landed leaves the log usable; anything else does not */
	for (int e = 0; e < 3; e++) {
		int err = e == 1 ? -EIO : -ENOSPC;
		struct mix_buf b = { 0 };
		uint32_t first = e == 2 ? 0 : t[1].size;
		mix_log_rotate_to(dir, 7, 10 + e, 0, 0, &w);
		is(append_batch(&w, t, 0, 1), 0, "batch: first txn");
		off = w.offset;
		for (int i = 1; i < 3; i++)
			mix_buf_append(&b, t[i].bytes, t[i].size);
		mix_io_fault_set(1, err);
		ret = mix_log_append_batch(&w, b.data, b.len, first);
		mix_io_fault_set(0, 0);
		is(ret, err, "batch: injected %s (first txn %u bytes) fails",
		   e == 1 ? "EIO" : "ENOSPC", first);
		is(file_size_of(path), off, "batch: nothing of it is left");
		ok(w.offset == off && w.failed == (e != 0), "batch: the writer "
		   "is %s", e == 0 ? "still usable (out of space, nothing of "
		   "a transaction landed)" : e == 1 ? "failed (EIO)" :
		   "failed (no first-transaction size given)");
		if (e == 0) {
			t[1].offset = off;
			t[2].offset = off + t[1].size;
			is(mix_log_append_batch(&w, b.data, b.len, first), 0,
			   "batch: the same batch goes through later, at the "
			   "same offset");
			mix_log_writer_close(&w);
			mix_log_reader_open(path, &r);
			ok(read_and_compare(&r, t, 3, 0, (char[300]){0}, 300) ==
			   3 && !r.torn, "batch: the log holds all three, "
			   "cleanly");
			mix_log_reader_close(&r);
		} else {
			mix_log_writer_close(&w);
		}
		mix_buf_free(&b);
	}
	/* EDQUOT lands half the batch first: usable only if that half was
	 * less than the first transaction */
	for (int e = 0; e < 2; e++) {
		struct mix_buf b = { 0 };
		uint32_t first;
		int clean;
		mix_log_rotate_to(dir, 7, 20 + e, 0, 0, &w);
		off = w.offset;
		for (int i = 1; i < 3; i++)
			mix_buf_append(&b, t[i].bytes, t[i].size);
		/* e == 0: the batch's first transaction is said to be the
		 * whole batch (half of it is less); e == 1: 4 bytes (half
		 * of the batch is more: a reader might have seen one) */
		first = e == 0 ? (uint32_t)b.len : 4;
		clean = b.len / 2 < first;
		mix_io_fault_set(1, -EDQUOT);
		ret = mix_log_append_batch(&w, b.data, b.len, first);
		mix_io_fault_set(0, 0);
		ok(ret == -EDQUOT && file_size_of(path) == off &&
		   w.failed == !clean, "batch: EDQUOT after %zu of %zu bytes, "
		   "first txn %u: cut off, writer %s", b.len / 2, b.len, first,
		   clean ? "usable" : "failed");
		mix_log_writer_close(&w);
		mix_buf_free(&b);
	}
	mix_log_rotate_to(dir, 7, 3, 2, 0, &w);
	mix_io_fault_set(1, -EIO);
	is(mix_log_sync(&w), -EIO, "sync: injected failure");
	mix_io_fault_set(0, 0);
	ok(w.failed, "sync: writer marked failed");
	is(append_batch(&w, t, 0, 1), MIX_EPANIC, "sync: no appends after "
	   "a failed sync");
	mix_log_writer_close(&w);

	mix_log_rotate_to(dir, 7, 4, 3, 0, &w);
	is(mix_log_append(&w, t[0].bytes, 6), MIX_EINVAL,
	   "append: length not a multiple of 4");
	off = w.offset;
	w.offset = MIX_LOG_SIZE_MAX - 8;
	is(mix_log_append(&w, t[0].bytes, 16), MIX_ELIMIT,
	   "append: refuses to pass 4 GiB");
	ok(!w.failed && w.offset == MIX_LOG_SIZE_MAX - 8,
	   "append: the refusal changes nothing");
	w.offset = off;
	is(mix_log_append(&w, t[0].bytes, 0), 0, "append: 0 bytes is a no-op");
	mix_log_writer_close(&w);
	is(mix_log_append(&w, t[0].bytes, 16), MIX_EINVAL,
	   "append: closed writer");
	is(mix_log_sync(&w), MIX_EINVAL, "sync: closed writer");
	stdin_open = fcntl(0, F_GETFD) != -1;
	memset(&z, 0, sizeof(z));
	mix_log_writer_close(&z);
	mix_log_writer_close(&z);
	is(fcntl(0, F_GETFD) != -1, stdin_open,
	   "close: a zeroed writer does not close fd 0");
	free_txns(t, 3);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

/* ---- reading a long log: the window --------------------------------------- */

/* A log past MIX_LOG_READ_HEAD: the reader reads the header at open and
 * the rest from the position on; every transaction is found from the
 * start and from a seek into the middle; a file cut shorter after open
 * ends where it ends (torn, not an error); a failed read is an error,
 * never a torn tail. */
static void test_reader_window(uint64_t seed)
{
	char *dir = tu_tmpdir("txlog-window"), *path = path_in(dir, MIX_LOG_FILENAME);
	int n = 0, cap = 4096, k, got, ret;
	struct wtxn *t = make_txns(&seed, cap);
	struct mix_log_writer w;
	struct mix_log_reader r;
	const uint8_t *x;
	uint32_t sz;
	uint64_t o;

	mix_log_rotate_to(dir, 7, 1, 0, 0, &w);
	while (n < cap && w.offset < 3 * 65536) {
		if (append_batch(&w, t, n, n + 1) < 0)
			BAIL("append: %s", mix_last_error());
		n++;
	}
	mix_log_writer_close(&w);
	ok(file_size_of(path) > 2 * 65536, "window: a log of %llu "
	   "bytes, %d transactions", (unsigned long long)file_size_of(path), n);

	mix_log_reader_open(path, &r);
	is(r.have, MIX_LOG_READ_HEAD, "window: open read %llu bytes, not "
	   "the whole file", (unsigned long long)r.have);
	ok(read_and_compare(&r, t, n, 0, (char[300]){0}, 300) == n && !r.torn,
	   "window: every transaction from the start");
	mix_log_reader_close(&r);

	k = n / 2;
	mix_log_reader_open(path, &r);
	ret = mix_log_reader_seek(&r, t[k].offset);
	got = 0;
	while (ret == 0 && mix_log_reader_next(&r, &x, &sz, &o) == 1) {
		if (o != t[k + got].offset || sz != t[k + got].size ||
		    memcmp(x, t[k + got].bytes, sz) != 0)
			break;
		got++;
	}
	ok(got == n - k && !r.torn && r.base == (t[k].offset & ~63ull),
	   "window: from "
	   "a seek to transaction %d: %d of %d, window from %llu", k, got,
	   n - k, (unsigned long long)r.base);
	mix_log_reader_close(&r);

	/* cut the file in the middle of transaction k + 3 after open */
	mix_log_reader_open(path, &r);
	if (truncate(path, (off_t)(t[k + 3].offset + t[k + 3].size / 2)) < 0)
		BAIL("truncate");
	ret = mix_log_reader_seek(&r, t[k].offset);
	got = 0;
	while (ret == 0 && mix_log_reader_next(&r, &x, &sz, &o) == 1)
		got++;
	ok(got == 3 && r.torn && r.size == t[k + 3].offset +
	   t[k + 3].size / 2, "window: a file cut after open ends at the "
	   "cut: %d transactions, torn at %llu", got,
	   (unsigned long long)r.torn_offset);
	mix_log_reader_close(&r);

	/* a failed read of the window */
	mix_log_reader_open(path, &r);
	mix_log_reader_seek(&r, t[k].offset);
	mix_io_fault_set(1, -EIO);
	ret = mix_log_reader_next(&r, &x, &sz, &o);
	mix_io_fault_set(0, 0);
	ok(ret == -EIO && !r.torn && r.pos == t[k].offset, "window: a failed "
	   "read is an error (%d), not a torn tail; the position stays", ret);
	ok(mix_log_reader_next(&r, &x, &sz, &o) == 1 && o == t[k].offset,
	   "window: the next call reads again");
	mix_log_reader_close(&r);

	free_txns(t, cap);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

/* ---- headers ---------------------------------------------------------- */

static int open_buf(const uint8_t *buf, size_t size, struct mix_log_reader *r)
{
	int ret = mix_log_reader_from_buf(buf, size, "hdr.log", r);
	if (ret == 0)
		mix_log_reader_close(r);
	return ret;
}

#define HDR_CASE(expect_ret, substr, ...) do {				\
	int r_ = open_buf(h, hs, &r);					\
	if (!ok(r_ == (expect_ret) && has(mix_last_error(), substr) &&	\
		has(mix_last_error(), "hdr.log"), __VA_ARGS__))		\
		diag("  got %d: %s", r_, mix_last_error());		\
} while (0)

static void test_headers(const uint8_t *file)
{
	uint8_t good[128] = { 0 }, h[128] = { 0 };
	size_t hs = 48;
	struct mix_log_reader r;
	int fails = 0;

	memcpy(good, file, 48);
	memcpy(h, good, 48);
	is(open_buf(h, 48, &r), 0, "hdr: a header-only log opens");
	for (size_t len = 0; len < 48; len++)
		if (open_buf(good, len, &r) != MIX_ECORRUPT ||
		    !has(mix_last_error(), "shorter than"))
			fails++;
	is(fails, 0, "hdr: truncated at each length 0..47 → MIX_ECORRUPT");
	fails = 0;
	for (size_t i = 0; i < 48; i++) {
		memcpy(h, good, 48);
		h[i] ^= 0xff;
		int ret = open_buf(h, 48, &r);
		if (ret != MIX_ECORRUPT && ret != MIX_EVERSION && fails++ == 0)
			diag("byte %zu flipped: %d", i, ret);
	}
	is(fails, 0, "hdr: flipping any header byte is refused");

	memcpy(h, good, 48); put32(h, 0x12345678); fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "magic", "hdr: wrong magic → MIX_ECORRUPT");
	memcpy(h, good, 48); put32(h, __builtin_bswap32(MIX_LOG_MAGIC));
	HDR_CASE(MIX_EVERSION, "byte order", "hdr: byte-swapped magic → "
		 "MIX_EVERSION");
	is(good[4], 3, "hdr: the writer writes major version 3 (§3.1)");
	memcpy(h, good, 48); h[4] = MIX_LOG_MAJOR + 1; fix_hdr_crc(h);
	HDR_CASE(MIX_EVERSION, "major_version", "hdr: newer major → "
		 "MIX_EVERSION");
	memcpy(h, good, 48); h[4] = 4; fix_hdr_crc(h);
	HDR_CASE(MIX_EVERSION, "major_version at offset 4 is 4", "hdr: major 4 "
		 "→ MIX_EVERSION");
	memcpy(h, good, 48); h[4] = 255; fix_hdr_crc(h);
	HDR_CASE(MIX_EVERSION, "major_version at offset 4 is 255", "hdr: major "
		 "255 → MIX_EVERSION");
	memcpy(h, good, 48); h[4] = 0; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "major_version at offset 4 is 0, expected 1..3",
		 "hdr: major 0 → MIX_ECORRUPT, saying 1..3 are read");
	memcpy(h, good, 48); h[4] = 2; fix_hdr_crc(h);
	is(open_buf(h, 48, &r), 0, "hdr: major 2 still opens");
	memcpy(h, good, 48); h[4] = 1; fix_hdr_crc(h);
	is(open_buf(h, 48, &r), 0, "hdr: major 1 still opens");
	memcpy(h, good, 48); h[4] = 1;
	HDR_CASE(MIX_ECORRUPT, "checksum", "hdr: major 1 with the major-2 "
		 "checksum → MIX_ECORRUPT (byte 4 is checksummed)");
	memcpy(h, good, 48); h[32] = 0; fix_hdr_crc(h);
	HDR_CASE(MIX_EVERSION, "byte order", "hdr: no little-endian flag → "
		 "MIX_EVERSION");
	memcpy(h, good, 48); h[32] = 3; fix_hdr_crc(h);
	HDR_CASE(MIX_EVERSION, "unknown compatibility", "hdr: unknown compat "
		 "bit → MIX_EVERSION");
	memcpy(h, good, 48); h[35] = 1; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "reserved", "hdr: unused byte set in a minor-0 "
		 "file");
	memcpy(h, good, 48); h[4] = 2; h[40] = 1; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "reserved", "hdr: reserved (offset 40) set in a "
		 "major-2 minor-0 file");
	memcpy(h, good, 48); h[4] = 1; h[43] = 1; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "40..43", "hdr: reserved (offset 40) set in a "
		 "major-1 minor-0 file");
	memcpy(h, good, 48); put32(h + 40, 0xfffffff0u); fix_hdr_crc(h);
	if (!ok(mix_log_reader_from_buf(h, 48, "hdr.log", &r) == 0 &&
		r.hdr.uid_floor == 0xfffffff0u && r.hdr.reserved == 0xfffffff0u,
		"hdr: offset 40 in a major-3 file is uid_floor (any value)"))
		diag("  %s", mix_last_error());
	mix_log_reader_close(&r);
	memcpy(h, good, 48); h[5] = MIX_LOG_MINOR + 1; h[35] = 1; h[40] = 1;
	fix_hdr_crc(h);
	is(open_buf(h, 48, &r), 0, "hdr: reserved bytes set in a newer minor "
	   "version are accepted");
	memcpy(h, good, 48); h[24] ^= 1;
	HDR_CASE(MIX_ECORRUPT, "checksum", "hdr: bad checksum → MIX_ECORRUPT "
		 "naming the field");
	memcpy(h, good, 48); h[6] = 44; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "hdr_size", "hdr: hdr_size 44");
	memcpy(h, good, 48); h[6] = 50; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "hdr_size", "hdr: hdr_size 50");
	memcpy(h, good, 48); h[6] = 52; h[5] = MIX_LOG_MINOR + 1; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "hdr_size", "hdr: hdr_size past the file");
	memcpy(h, good, 56); h[6] = 56; fix_hdr_crc(h); hs = 56;
	HDR_CASE(MIX_ECORRUPT, "hdr_size", "hdr: hdr_size 56 in a minor-0 file");
	hs = 48;
	memcpy(h, good, 48); put32(h + 12, 0); put32(h + 16, 0); fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "file_seq", "hdr: file_seq 0");
	memcpy(h, good, 48); put32(h + 16, get32(h + 12)); fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "prev_file_seq", "hdr: prev_file_seq == file_seq");
	memcpy(h, good, 48); put32(h + 8, 0x7fffffffu); fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "2^63", "hdr: indexid + file_seq reaches 2^31");
}

/* A newer minor version with a larger header: the extra bytes are not
 * checksummed and are skipped. */
static void test_header_minor(const uint8_t *file, const struct wtxn *t)
{
	uint8_t *buf = malloc(56 + t[0].size);
	struct mix_log_reader r;
	const uint8_t *x;
	uint32_t s;
	uint64_t o;

	memcpy(buf, file, 48);
	buf[5] = MIX_LOG_MINOR + 3;
	buf[6] = 56;
	fix_hdr_crc(buf);
	memset(buf + 48, 0xab, 8);
	memcpy(buf + 56, t[0].bytes, t[0].size);
	is(mix_log_reader_from_buf(buf, 56 + t[0].size, "minor.log", &r), 0,
	   "hdr: newer minor with a 56-byte header opens");
	ok(r.pos == 56 && mix_log_reader_next(&r, &x, &s, &o) == 1 &&
	   o == 56 && s == t[0].size, "hdr: its first transaction is at 56");
	mix_log_reader_close(&r);
	free(buf);
}

/* A log of major version 1 (§3.1: still read): the header of a real log
 * patched to 1, then transactions.  The reader frames every one of them
 * (framing does not depend on the version); the decoder, given the
 * header's major_version, refuses the run records and only them. */
static void test_header_major1(const uint8_t *file, size_t fsize,
			       const struct wtxn *t, int n)
{
	static struct mop ops[3];
	uint8_t *buf = malloc(fsize);
	struct mix_buf b = { 0 };
	struct mix_log_reader r;
	const uint8_t *x;
	uint32_t s, v1_size;
	uint64_t o;
	size_t start, len;
	char why[300];
	int ret, runs = 0, v1 = 0, bad = 0;

	/* the framing test's file: random transactions, run records too */
	memcpy(buf, file, fsize);
	buf[4] = 1;
	fix_hdr_crc(buf);
	ret = mix_log_reader_from_buf(buf, fsize, "major1.log", &r);
	is(ret, 0, "major 1: the log opens (%s)",
	   ret ? mix_last_error() : "ok");
	if (ret == 0) {
		is(r.hdr.major_version, 1, "major 1: header major_version");
		for (int i = 0; i < n; i++) {
			int has_run = 0;
			if (mix_log_reader_next(&r, &x, &s, &o) != 1 ||
			    o != t[i].offset || s != t[i].size) {
				bad++;
				break;
			}
			for (int k = 0; k < t[i].nops; k++)
				has_run |= is_run_type(t[i].ops[k].type);
			runs += has_run;
			v1 += !has_run;
			if (check_txn_major(x, s, t[i].ops, t[i].nops,
					    r.hdr.major_version, why,
					    sizeof(why)) < 0 && bad++ == 0)
				diag("  txn %d: %s", i, why);
		}
		ok(bad == 0 && runs > 0 && v1 > 0 && !r.torn &&
		   mix_log_reader_next(&r, &x, &s, &o) == 0,
		   "major 1: all %d transactions framed; the %d without run "
		   "records decode to what was encoded, the %d with them are "
		   "refused at the first", n, v1, runs);
		mix_log_reader_close(&r);
	}

	/* a version-1 transaction, then one with APPEND_RUN and EXT_RUN */
	memset(ops, 0, sizeof(ops));
	ops[0].type = MIX_LOG_APPEND; ops[0].count = 1;
	ops[0].app[0] = (struct mix_log_append){ 1, MIX_FLAG_SEEN };
	ops[1].type = MIX_LOG_APPEND_RUN; ops[1].first_uid = 2;
	ops[1].count = 2; memcpy(ops[1].data, "\x08\x00", 2);
	ops[2].type = MIX_LOG_EXT_RUN; ops[2].ext_id = 2; ops[2].rec_size = 4;
	ops[2].first_uid = 2; ops[2].count = 2;
	memcpy(ops[2].data, "abcdefgh", 8);
	mix_buf_append(&b, file, 48);
	b.data[4] = 1;
	fix_hdr_crc(b.data);
	mix_logenc_begin(&b, &start);
	enc_mop(&b, &ops[0]);
	mix_logenc_end(&b, start);
	v1_size = (uint32_t)(b.len - start);
	mix_logenc_begin(&b, &start);
	enc_mop(&b, &ops[1]);
	enc_mop(&b, &ops[2]);
	mix_logenc_end(&b, start);
	len = b.len;
	ret = mix_log_reader_from_buf(b.data, len, "major1.log", &r);
	ok(ret == 0 && mix_log_reader_next(&r, &x, &s, &o) == 1 && o == 48 &&
	   s == v1_size && check_txn_major(x, s, ops, 1, r.hdr.major_version,
					   why, sizeof(why)) == 0,
	   "major 1: a transaction of version-1 records reads and decodes");
	ok(ret == 0 && mix_log_reader_next(&r, &x, &s, &o) == 1 &&
	   check_txn_major(x, s, ops + 1, 2, r.hdr.major_version, why,
			   sizeof(why)) == 0 &&
	   check_txn_major(x, s, ops + 1, 2, 2, why, sizeof(why)) == 0,
	   "major 1: the next, append-run + ext-run, is framed, refused by "
	   "the decoder as a major-1 record and decoded as a major-2 one");
	if (ret == 0)
		mix_log_reader_close(&r);
	b.data[4] = 2;
	fix_hdr_crc(b.data);
	ret = mix_log_reader_from_buf(b.data, len, "major2.log", &r);
	ok(ret == 0 && r.hdr.major_version == 2 &&
	   mix_log_reader_next(&r, &x, &s, &o) == 1 &&
	   mix_log_reader_next(&r, &x, &s, &o) == 1 &&
	   check_txn_major(x, s, ops + 1, 2, r.hdr.major_version, why,
			   sizeof(why)) == 0,
	   "major 2: the same bytes decode: %s", ret ? mix_last_error() : "ok");
	if (ret == 0)
		mix_log_reader_close(&r);
	mix_buf_free(&b);
	free(buf);
}

static void test_header_files(void)
{
	char *p = path_in(tdir, "nope.log");
	struct mix_log_reader r;
	int fd;

	is(mix_log_reader_open(p, &r), -ENOENT, "open: missing file → -ENOENT");
	ok(has(mix_last_error(), p), "open: error names the file");
	mix_log_reader_close(&r);
	fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);
	if (fd >= 0 && ftruncate(fd, (off_t)MIX_LOG_SIZE_MAX + 4) == 0) {
		is(mix_log_reader_open(p, &r), MIX_ECORRUPT,
		   "open: a file over 4 GiB → MIX_ECORRUPT");
		ok(has(mix_last_error(), "4 GiB"), "open: says why: %s",
		   mix_last_error());
	} else {
		ok(1, "# skip cannot make a sparse 4 GiB file");
		ok(1, "# skip cannot make a sparse 4 GiB file");
	}
	if (fd >= 0)
		close(fd);
	if (tu_write_file(p, "MLOG", 4) == 0)
		is(mix_log_reader_open(p, &r), MIX_ECORRUPT,
		   "open: a 4-byte file → MIX_ECORRUPT");
	unlink(p);
	free(p);
}

/* ---- malformed records ------------------------------------------------- */

#define W4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | \
			(uint32_t)(c) << 16 | (uint32_t)(d) << 24)

struct bad_case {
	const char *what;
	uint16_t type;
	uint16_t flags;
	uint32_t size;          /* declared size; 0 = 8 + 4 * nwords */
	uint32_t nwords;
	uint32_t w[20];
	const char *expect;     /* in the message; NULL = must decode */
};

static const struct bad_case bad_cases[] = {
	{ "record size 4", MIX_LOG_APPEND, 0, 4, 0, { 0 }, "size 4 is below 8" },
	{ "record size 14", MIX_LOG_APPEND, 0, 14, 2, { 1, 0 }, "size 14 is below 8 or not a multiple" },
	{ "record past the txn", MIX_LOG_APPEND, 0, 64, 2, { 1, 0 }, "size 64 runs past" },
	{ "record of 2^31 bytes", MIX_LOG_EXPUNGE, 0, 0x80000000u, 2, { 1, 1 },
	  "runs past" },
	{ "record flags", MIX_LOG_EXPUNGE, 1, 0, 0, { 0 }, "flags 0x1" },
	{ "type 0", 0, 0, 0, 0, { 0 }, "type 0 is not" },
	{ "type 14", 14, 0, 0, 0, { 0 }, "type 14 is not" },
	{ "type 0xffff", 0xffff, 0, 0, 0, { 0 }, "type 65535 is not" },
	{ "boundary inside", MIX_LOG_BOUNDARY, 0, 0, 2, { 16, 0 },
	  "record boundary at offset 16: type 1 is not" },
	{ "append: 12 bytes", MIX_LOG_APPEND, 0, 0, 3, { 1, 0, 2 }, "multiple of 8" },
	{ "append: UID 0", MIX_LOG_APPEND, 0, 0, 2, { 0, 0 }, "UID is 0" },
	{ "append: equal UIDs", MIX_LOG_APPEND, 0, 0, 4, { 5, 0, 5, 0 }, "not above" },
	{ "append: UIDs down", MIX_LOG_APPEND, 0, 0, 4, { 6, 0, 5, 0 }, "not above" },
	{ "append: flags 0x40", MIX_LOG_APPEND, 0, 0, 2, { 1, 0x40 }, "flags 0x40" },
	{ "append: flags 0x100", MIX_LOG_APPEND, 0, 0, 2, { 1, 0x100 }, "flags 0x100" },
	{ "append: ok", MIX_LOG_APPEND, 0, 0, 4, { 1, 0xbf, 2, 0 }, NULL },
	{ "expunge: 12 bytes", MIX_LOG_EXPUNGE, 0, 0, 3, { 1, 2, 3 }, "multiple of 8" },
	{ "expunge: first 0", MIX_LOG_EXPUNGE, 0, 0, 2, { 0, 5 }, "first UID is 0" },
	{ "expunge: first > last", MIX_LOG_EXPUNGE, 0, 0, 2, { 5, 4 },
	  "first UID 5 > last UID 4" },
	{ "expunge: overlap", MIX_LOG_EXPUNGE, 0, 0, 4, { 1, 5, 5, 7 }, "range 1" },
	{ "expunge: unsorted", MIX_LOG_EXPUNGE, 0, 0, 4, { 10, 12, 1, 2 }, "sorted" },
	{ "expunge: adjacent ok", MIX_LOG_EXPUNGE, 0, 0, 4, { 1, 5, 6, 7 }, NULL },
	{ "keyword-reset: overlap", MIX_LOG_KEYWORD_RESET, 0, 0, 4, { 1, 5, 3, 4 },
	  "not above" },
	{ "keyword-reset: 4 bytes", MIX_LOG_KEYWORD_RESET, 0, 0, 1, { 1 },
	  "multiple of 8" },
	{ "flags: no header", MIX_LOG_FLAGS, 0, 0, 0, { 0 }, "shorter" },
	{ "flags: add 0x40", MIX_LOG_FLAGS, 0, 0, 1, { 0x40 }, "outside" },
	{ "flags: remove 0x40", MIX_LOG_FLAGS, 0, 0, 1, { 0x4000 }, "outside" },
	{ "flags: add & remove", MIX_LOG_FLAGS, 0, 0, 1, { 0x0908 }, "overlap" },
	{ "flags: pad", MIX_LOG_FLAGS, 0, 0, 1, { 0x10008 }, "pad" },
	{ "flags: bad range", MIX_LOG_FLAGS, 0, 0, 3, { 8, 5, 3 }, "> last" },
	{ "flags: 4 trailing bytes", MIX_LOG_FLAGS, 0, 0, 2, { 8, 5 }, "multiple of 8" },
	{ "flags: ok", MIX_LOG_FLAGS, 0, 0, 3, { 0x0408, 5, 6 }, NULL },
	{ "keyword: no header", MIX_LOG_KEYWORD, 0, 0, 0, { 0 }, "shorter" },
	{ "keyword: modify 0", MIX_LOG_KEYWORD, 0, 0, 2, { 0 | 1 << 16, 'a' },
	  "modify is 0" },
	{ "keyword: modify 3", MIX_LOG_KEYWORD, 0, 0, 2, { 3 | 1 << 16, 'a' },
	  "modify is 3" },
	{ "keyword: pad", MIX_LOG_KEYWORD, 0, 0, 2, { 1 | 1 << 8 | 1 << 16, 'a' },
	  "pad" },
	{ "keyword: name_size 0", MIX_LOG_KEYWORD, 0, 0, 1, { 1 }, "name_size 0" },
	{ "keyword: name_size 256", MIX_LOG_KEYWORD, 0, 0, 1, { 1 | 256u << 16 },
	  "name_size 256" },
	{ "keyword: name past record", MIX_LOG_KEYWORD, 0, 0, 2,
	  { 1 | 200u << 16, W4('a', 'b', 'c', 'd') }, "runs past" },
	{ "keyword: NUL", MIX_LOG_KEYWORD, 0, 0, 2, { 1 | 3 << 16, W4('a', 0, 'b', 0) },
	  "NUL" },
	{ "keyword: space", MIX_LOG_KEYWORD, 0, 0, 2,
	  { 1 | 3 << 16, W4('a', ' ', 'b', 0) }, "0x20" },
	{ "keyword: control", MIX_LOG_KEYWORD, 0, 0, 2,
	  { 1 | 3 << 16, W4('a', 1, 'b', 0) }, "0x01" },
	{ "keyword: DEL", MIX_LOG_KEYWORD, 0, 0, 2,
	  { 1 | 3 << 16, W4('a', 0x7f, 'b', 0) }, "0x7f" },
	{ "keyword: padding", MIX_LOG_KEYWORD, 0, 0, 2,
	  { 1 | 1 << 16, W4('a', 'x', 0, 0) }, "padding" },
	{ "keyword: bad range", MIX_LOG_KEYWORD, 0, 0, 4,
	  { 2 | 2 << 16, W4('a', 'b', 0, 0), 3, 2 }, "> last" },
	{ "keyword: 4 trailing bytes", MIX_LOG_KEYWORD, 0, 0, 3,
	  { 2 | 2 << 16, W4('a', 'b', 0, 0), 3 }, "multiple of 8" },
	{ "keyword: 8-bit ok", MIX_LOG_KEYWORD, 0, 0, 4,
	  { 2 | 2 << 16, W4('a', 0xe9, 0, 0), 3, 4 }, NULL },
	{ "ext-intro: 16 bytes", MIX_LOG_EXT_INTRO, 0, 0, 4, { 2, 0, 0, 4 << 16 },
	  "shorter" },
	{ "ext-intro: name_size 0", MIX_LOG_EXT_INTRO, 0, 0, 5,
	  { 2, 0, 0, 4 << 16, 0 }, "name_size 0" },
	{ "ext-intro: name_size 64", MIX_LOG_EXT_INTRO, 0, 0, 5,
	  { 2, 0, 0, 4 << 16, 64 }, "name_size 64" },
	{ "ext-intro: size mismatch", MIX_LOG_EXT_INTRO, 0, 0, 7,
	  { 2, 0, 0, 4 << 16, 4, W4('v', 'm', 'a', 'p'), 0 }, "expected 24" },
	{ "ext-intro: record_size", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 1025 | 4 << 16, 4, W4('v', 'm', 'a', 'p') }, "record_size 1025" },
	{ "ext-intro: align 3", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 3 << 16, 4, W4('v', 'm', 'a', 'p') }, "record_align 3" },
	{ "ext-intro: align 0", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 0, 4, W4('v', 'm', 'a', 'p') }, "record_align 0" },
	{ "ext-intro: align 16", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 16 << 16, 4, W4('v', 'm', 'a', 'p') }, "record_align 16" },
	{ "ext-intro: hdr_size", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 65537, 4 << 16, 4, W4('v', 'm', 'a', 'p') }, "hdr_size 65537" },
	{ "ext-intro: pad", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 4 << 16, 4 | 1 << 16, W4('v', 'm', 'a', 'p') }, "pad" },
	{ "ext-intro: NUL", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 4 << 16, 4, W4('v', 0, 'a', 'p') }, "NUL" },
	{ "ext-intro: space", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 4 << 16, 4, W4('v', ' ', 'a', 'p') }, "0x20" },
	{ "ext-intro: control", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 4 << 16, 4, W4('v', 'm', 'a', 0x1b) }, "0x1b" },
	{ "ext-intro: padding", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 0, 4 << 16, 3, W4('v', 'm', 'a', 'p') }, "padding" },
	{ "ext-intro: ok", MIX_LOG_EXT_INTRO, 0, 0, 6,
	  { 2, 0, 65536, 1024 | 8 << 16, 4, W4('v', 'm', 'a', 'p') }, NULL },
	{ "ext-hdr: 8 bytes", MIX_LOG_EXT_HDR, 0, 0, 2, { 2, 0 }, "shorter" },
	{ "ext-hdr: size 65537", MIX_LOG_EXT_HDR, 0, 0, 3, { 2, 0, 65537 }, "passes" },
	{ "ext-hdr: offset + size", MIX_LOG_EXT_HDR, 0, 0, 4, { 2, 65535, 2, 0 },
	  "passes" },
	{ "ext-hdr: offset overflow", MIX_LOG_EXT_HDR, 0, 0, 4,
	  { 2, 0xffffffffu, 4, 0 }, "passes" },
	{ "ext-hdr: size mismatch", MIX_LOG_EXT_HDR, 0, 0, 5, { 2, 0, 4, 1, 2 },
	  "expected 16" },
	{ "ext-hdr: padding", MIX_LOG_EXT_HDR, 0, 0, 5, { 2, 0, 5, 1, 0x200 },
	  "padding" },
	{ "ext-hdr: ok", MIX_LOG_EXT_HDR, 0, 0, 5, { 2, 0, 5, 1, 0xff }, NULL },
	{ "ext-rec: 4 bytes", MIX_LOG_EXT_REC, 0, 0, 1, { 2 }, "shorter" },
	{ "ext-rec: rec_size 0", MIX_LOG_EXT_REC, 0, 0, 2, { 2, 0 }, "rec_size 0" },
	{ "ext-rec: rec_size 1025", MIX_LOG_EXT_REC, 0, 0, 2, { 2, 1025 },
	  "rec_size 1025" },
	{ "ext-rec: rec_size 2^32-1", MIX_LOG_EXT_REC, 0, 0, 2, { 2, 0xffffffffu },
	  "rec_size 4294967295" },
	{ "ext-rec: partial entry", MIX_LOG_EXT_REC, 0, 0, 5, { 2, 4, 1, 0, 2 },
	  "multiple" },
	{ "ext-rec: UID 0", MIX_LOG_EXT_REC, 0, 0, 4, { 2, 4, 0, 0 }, "UID 0" },
	{ "ext-rec: UIDs down", MIX_LOG_EXT_REC, 0, 0, 6, { 2, 4, 5, 0, 4, 0 },
	  "UID 4 is not above" },
	{ "ext-rec: padding", MIX_LOG_EXT_REC, 0, 0, 4, { 2, 1, 1, 0x0100aa },
	  "padding" },
	{ "ext-rec: ok", MIX_LOG_EXT_REC, 0, 0, 6, { 2, 1, 1, 0xaa, 2, 0xbb }, NULL },
	{ "hdr: 4 bytes", MIX_LOG_HDR, 0, 0, 1, { 24 }, "shorter" },
	{ "hdr: offset 2", MIX_LOG_HDR, 0, 0, 3, { 2, 4, 0 }, "multiples of 4" },
	{ "hdr: size 2", MIX_LOG_HDR, 0, 0, 3, { 24, 2, 0 }, "multiples of 4" },
	{ "hdr: past header", MIX_LOG_HDR, 0, 0, 4, { 116, 8, 0, 0 }, "passes" },
	{ "hdr: offset overflow", MIX_LOG_HDR, 0, 0, 4, { 0xfffffffcu, 8, 0, 0 },
	  "passes" },
	{ "hdr: magic", MIX_LOG_HDR, 0, 0, 3, { 0, 4, 0 }, "offset 0; only" },
	{ "hdr: messages_count", MIX_LOG_HDR, 0, 0, 5, { 24, 12, 1, 2, 3 },
	  "offset 32; only" },
	{ "hdr: size mismatch", MIX_LOG_HDR, 0, 0, 4, { 24, 4, 1, 2 }, "expected 12" },
	{ "hdr: ok", MIX_LOG_HDR, 0, 0, 4, { 24, 8, 1, 2 }, NULL },
	{ "hdr: first_recent_uid ok", MIX_LOG_HDR, 0, 0, 3, { 44, 4, 9 }, NULL },
	{ "hdr: day fields ok", MIX_LOG_HDR, 0, 0, 11,
	  { 72, 36, 86400, 1, 2, 3, 4, 5, 6, 7, 8 }, NULL },
	{ "hdr: checksum", MIX_LOG_HDR, 0, 0, 4, { 104, 8, 1, 2 },
	  "offset 108; only" },
	{ "hdr: flags", MIX_LOG_HDR, 0, 0, 3, { 20, 4, 1 }, "offset 20; only" },
	{ "hdr: highest_modseq", MIX_LOG_HDR, 0, 0, 3, { 64, 4, 1 },
	  "offset 64; only" },
	/* §3.3.11 APPEND_RUN: first_uid, count, count flag bytes, padding */
	{ "append-run: no header", MIX_LOG_APPEND_RUN, 0, 0, 0, { 0 },
	  "payload of 0 bytes is shorter than its 8-byte header" },
	{ "append-run: 4 bytes", MIX_LOG_APPEND_RUN, 0, 0, 1, { 1 },
	  "payload of 4 bytes is shorter" },
	{ "append-run: first_uid 0", MIX_LOG_APPEND_RUN, 0, 0, 3, { 0, 1, 0 },
	  "first_uid 0, count 1" },
	{ "append-run: count 0", MIX_LOG_APPEND_RUN, 0, 0, 2, { 5, 0 },
	  "first_uid 5, count 0" },
	{ "append-run: last UID 2^32-1", MIX_LOG_APPEND_RUN, 0, 0, 3,
	  { 0xfffffffeu, 2, 0 }, "reach 4294967295" },
	{ "append-run: UID 2^32-1", MIX_LOG_APPEND_RUN, 0, 0, 3,
	  { 0xffffffffu, 1, 0 }, "reach 4294967295" },
	{ "append-run: count 2^32-1", MIX_LOG_APPEND_RUN, 0, 0, 3,
	  { 1, 0xffffffffu, 0 }, "reach 4294967295" },
	{ "append-run: last UID 2^32-2 ok", MIX_LOG_APPEND_RUN, 0, 0, 3,
	  { 0xfffffffdu, 2, W4(0x08, 0x01, 0, 0) }, NULL },
	{ "append-run: 4 flags short", MIX_LOG_APPEND_RUN, 0, 0, 3, { 1, 5, 0 },
	  "payload is 12 bytes, expected 16 for 5 flag bytes" },
	{ "append-run: 4 bytes long", MIX_LOG_APPEND_RUN, 0, 0, 4,
	  { 1, 4, 0, 0 }, "payload is 16 bytes, expected 12" },
	{ "append-run: no flag bytes", MIX_LOG_APPEND_RUN, 0, 0, 2, { 1, 1 },
	  "payload is 8 bytes, expected 12" },
	/* count + 3 wraps in 32 bits to a payload of 8: computed in 64 */
	{ "append-run: count 2^32-2, payload 8", MIX_LOG_APPEND_RUN, 0, 0, 2,
	  { 1, 0xfffffffeu }, "expected 4294967304" },
	{ "append-run: flag 0x40", MIX_LOG_APPEND_RUN, 0, 0, 3,
	  { 7, 3, W4(0x08, 0x40, 0x01, 0) },
	  "entry 1 (UID 8): flags 0x40 outside 0xbf" },
	{ "append-run: flags 0xff", MIX_LOG_APPEND_RUN, 0, 0, 3,
	  { 7, 1, 0xff }, "flags 0xff outside" },
	{ "append-run: flags 0x41 in the last entry", MIX_LOG_APPEND_RUN, 0, 0,
	  4, { 7, 5, 0, 0x41 }, "entry 4 (UID 11): flags 0x41" },
	{ "append-run: padding", MIX_LOG_APPEND_RUN, 0, 0, 3,
	  { 7, 3, W4(1, 2, 4, 0x08) }, "padding" },
	{ "append-run: padding of 3", MIX_LOG_APPEND_RUN, 0, 0, 3,
	  { 7, 1, W4(1, 0, 0, 0x80) }, "padding" },
	{ "append-run: ok", MIX_LOG_APPEND_RUN, 0, 0, 4,
	  { 7, 5, W4(0xbf, 0, 0x08, 0x80), 0x20 }, NULL },
	/* §3.3.12 EXT_RUN: ext_id, rec_size, first_uid, count, data,
	 * padding */
	{ "ext-run: 12 bytes", MIX_LOG_EXT_RUN, 0, 0, 3, { 2, 4, 1 },
	  "payload of 12 bytes is shorter than its 16-byte header" },
	{ "ext-run: rec_size 0", MIX_LOG_EXT_RUN, 0, 0, 4, { 2, 0, 1, 1 },
	  "rec_size 0 outside 1..1024" },
	{ "ext-run: rec_size 1025", MIX_LOG_EXT_RUN, 0, 0, 5,
	  { 2, 1025, 1, 1, 0 }, "rec_size 1025 outside" },
	{ "ext-run: rec_size 2^32-1", MIX_LOG_EXT_RUN, 0, 0, 5,
	  { 2, 0xffffffffu, 1, 1, 0 }, "rec_size 4294967295 outside" },
	{ "ext-run: first_uid 0", MIX_LOG_EXT_RUN, 0, 0, 5, { 2, 4, 0, 1, 9 },
	  "first_uid 0, count 1" },
	{ "ext-run: count 0", MIX_LOG_EXT_RUN, 0, 0, 4, { 2, 4, 1, 0 },
	  "first_uid 1, count 0" },
	{ "ext-run: past 2^32-1", MIX_LOG_EXT_RUN, 0, 0, 6,
	  { 2, 4, 0xffffffffu, 2, 1, 2 }, "pass 4294967295" },
	{ "ext-run: UID 2^32-1 ok", MIX_LOG_EXT_RUN, 0, 0, 5,
	  { 2, 4, 0xffffffffu, 1, 7 }, NULL },
	{ "ext-run: data short", MIX_LOG_EXT_RUN, 0, 0, 5, { 2, 4, 1, 2, 9 },
	  "payload is 20 bytes, expected 24 for 2 records of 4 bytes" },
	{ "ext-run: data long", MIX_LOG_EXT_RUN, 0, 0, 7,
	  { 2, 4, 1, 2, 9, 9, 9 }, "payload is 28 bytes, expected 24" },
	{ "ext-run: no data", MIX_LOG_EXT_RUN, 0, 0, 4, { 2, 1, 1, 1 },
	  "payload is 16 bytes, expected 20" },
	/* count × rec_size is 2^32 + 4: 4 bytes if it wrapped in 32 bits */
	{ "ext-run: count x rec_size wraps 32 bits", MIX_LOG_EXT_RUN, 0, 0, 5,
	  { 2, 4, 1, 0x40000001u, 9 }, "expected 4294967316" },
	{ "ext-run: padding", MIX_LOG_EXT_RUN, 0, 0, 5,
	  { 2, 3, 1, 1, W4('a', 'b', 'c', 1) }, "padding" },
	{ "ext-run: padding of 1 record of 1", MIX_LOG_EXT_RUN, 0, 0, 5,
	  { 2, 1, 1, 1, W4('a', 0, 1, 0) }, "padding" },
	{ "ext-run: ok", MIX_LOG_EXT_RUN, 0, 0, 6,
	  { 3, 3, 5, 2, W4(1, 2, 3, 4), W4(5, 6, 0, 0) }, NULL },
};

static void build_raw(struct mix_buf *b, const struct bad_case *c)
{
	uint32_t size = c->size ? c->size : 8 + 4 * c->nwords;
	size_t start;

	if (c->expect == NULL)
		size = 8 + 4 * c->nwords;
	b->len = 0;
	mix_logenc_begin(b, &start);
	mix_buf_append(b, &size, 4);
	mix_buf_append(b, &c->type, 2);
	mix_buf_append(b, &c->flags, 2);
	mix_buf_append(b, c->w, 4 * c->nwords);
	mix_logenc_end(b, start);
}

/* Every case again as a record of a major-1 file (§3.1, §3.3): the run
 * types are corrupt whatever their payload, the others get the verdict
 * they get in a major-2 file. */
static void test_bad_records_major1(struct mix_buf *b)
{
	size_t n = sizeof(bad_cases) / sizeof(bad_cases[0]), same = 0, v1 = 0;
	struct mix_log_op op;
	char msg2[512];

	for (size_t i = 0; i < n; i++) {
		const struct bad_case *c = &bad_cases[i];
		uint32_t pos = 0, pos2 = 0;
		char want[80];
		int ret, ret2;

		build_raw(b, c);
		ret2 = mix_log_txn_next_op(b->data, (uint32_t)b->len, 2, &pos2,
					   &op);
		snprintf(msg2, sizeof(msg2), "%s", mix_last_error());
		ret = mix_log_txn_next_op(b->data, (uint32_t)b->len, 1, &pos,
					  &op);
		if (!is_run_type(c->type)) {
			v1++;
			if (ret == ret2 && pos == pos2 &&
			    (ret == 1 || strcmp(msg2, mix_last_error()) == 0))
				same++;
			else
				diag("  %s: major 1 gives %d '%s', major 2 %d "
				     "'%s'", c->what, ret, mix_last_error(),
				     ret2, msg2);
			continue;
		}
		snprintf(want, sizeof(want), "type %u is a major version 2 "
			 "record in a file of major version 1", c->type);
		if (!ok(ret == MIX_ECORRUPT && pos == 0 &&
			has(mix_last_error(), want) &&
			has(mix_last_error(), "at offset 16"),
			"dec, major 1, rejects %s (%s in major 2)", c->what,
			c->expect ? "rejected" : "accepted"))
			diag("  got %d: '%s' (want '%s')", ret,
			     mix_last_error(), want);
	}
	ok(v1 > 0 && same == v1, "dec, major 1: %zu of the %zu cases of "
	   "version-1 types get the same verdict and message as in major 2",
	   same, v1);
}

/* A run record after a version-1 record: the first decodes in a major-1
 * file, the second is refused at its own offset. */
static void test_run_after_v1_record(void)
{
	static const struct mix_log_append ap = { 3, MIX_FLAG_SEEN };
	struct mix_buf b = { 0 };
	struct mix_log_op op;
	uint32_t pos = 0;
	size_t start;
	int r1, r2;

	mix_logenc_begin(&b, &start);
	mix_logenc_append(&b, &ap, 1);
	mix_logenc_ext_rec_run(&b, 2, 1, 4, (const uint8_t *)"z", NULL, 1);
	mix_logenc_end(&b, start);
	r1 = mix_log_txn_next_op(b.data, (uint32_t)b.len, 1, &pos, &op);
	r2 = mix_log_txn_next_op(b.data, (uint32_t)b.len, 1, &pos, &op);
	ok(r1 == 1 && r2 == MIX_ECORRUPT && pos == 32 &&
	   has(mix_last_error(), "ext-run at offset 32: type 12 is a major "
	       "version 2 record"),
	   "dec, major 1: append decodes, the ext-run after it is refused at "
	   "offset 32 (%d, %d, pos %u: %s)", r1, r2, pos, mix_last_error());
	pos = 0;
	r1 = mix_log_txn_next_op(b.data, (uint32_t)b.len, 2, &pos, &op);
	r2 = mix_log_txn_next_op(b.data, (uint32_t)b.len, 2, &pos, &op);
	ok(r1 == 1 && r2 == 1 && op.type == MIX_LOG_EXT_RUN &&
	   mix_log_txn_next_op(b.data, (uint32_t)b.len, 2, &pos, &op) == 0,
	   "dec, major 2: both decode (%d, %d)", r1, r2);
	mix_buf_free(&b);
}

static void test_bad_records(void)
{
	struct mix_buf b = { 0 };
	struct mix_log_op op;
	size_t n = sizeof(bad_cases) / sizeof(bad_cases[0]);

	for (size_t i = 0; i < n; i++) {
		const struct bad_case *c = &bad_cases[i];
		uint32_t pos = 0;
		int ret;

		build_raw(&b, c);
		ret = mix_log_txn_next_op(b.data, (uint32_t)b.len, 2, &pos,
					  &op);
		if (c->expect == NULL) {
			if (!ok(ret == 1 && pos == b.len && op.type == c->type,
				"dec accepts %s", c->what))
				diag("  got %d: %s", ret, mix_last_error());
			continue;
		}
		if (!ok(ret == MIX_ECORRUPT && pos == 0 &&
			has(mix_last_error(), c->expect) &&
			has(mix_last_error(), "at offset 16"),
			"dec rejects %s", c->what))
			diag("  got %d: '%s' (want '%s')", ret, mix_last_error(),
			     c->expect);
	}
	test_bad_records_major1(&b);
	mix_buf_free(&b);
	test_run_after_v1_record();
}

/* Transaction-level errors and caller errors. */
static void test_bad_txn(void)
{
	struct mix_buf b = { 0 };
	struct mix_log_op op;
	uint32_t pos = 0;
	size_t start;
	uint8_t *t;
	static const struct mix_log_uid_range r1 = { 1, 2 };

	mix_logenc_begin(&b, &start);
	mix_logenc_expunge(&b, &r1, 1);
	mix_logenc_end(&b, start);
	t = b.data;
	put32(t + 4, MIX_LOG_EXPUNGE);
	is(mix_log_txn_next_op(t, (uint32_t)b.len, MIX_LOG_MAJOR, &pos, &op), MIX_ECORRUPT,
	   "dec: first record not a boundary");
	ok(has(mix_last_error(), "record boundary at offset 0"),
	   "dec: names the boundary: %s", mix_last_error());
	put32(t + 4, MIX_LOG_BOUNDARY);
	ok(mix_log_txn_next_op(t, (uint32_t)b.len - 8, MIX_LOG_MAJOR, &pos, &op) ==
	   MIX_ECORRUPT && has(mix_last_error(), "does not match"),
	   "dec: txn_size differs from the size given: %s", mix_last_error());
	is(mix_log_txn_next_op(t, 12, MIX_LOG_MAJOR, &pos, &op), MIX_ECORRUPT,
	   "dec: transaction shorter than a boundary");
	put32(t + 8, 34);
	is(mix_log_txn_next_op(t, 34, MIX_LOG_MAJOR, &pos, &op), MIX_ECORRUPT,
	   "dec: txn_size not a multiple of 4");
	put32(t + 8, (uint32_t)b.len + 4);
	mix_buf_append(&b, "\0\0\0\0", 4);
	t = b.data;
	pos = 0;
	ok(mix_log_txn_next_op(t, (uint32_t)b.len, MIX_LOG_MAJOR, &pos, &op) == 1 &&
	   mix_log_txn_next_op(t, (uint32_t)b.len, MIX_LOG_MAJOR, &pos, &op) == MIX_ECORRUPT &&
	   has(mix_last_error(), "4 bytes left"),
	   "dec: 4 stray bytes after the last record: %s", mix_last_error());
	pos = 8;
	is(mix_log_txn_next_op(t, (uint32_t)b.len, MIX_LOG_MAJOR, &pos, &op), MIX_EINVAL,
	   "dec: position inside the boundary → MIX_EINVAL");
	pos = 1000;
	is(mix_log_txn_next_op(t, (uint32_t)b.len, MIX_LOG_MAJOR, &pos, &op), MIX_EINVAL,
	   "dec: position past the end → MIX_EINVAL");
	pos = 0;
	is(mix_log_txn_next_op(t + 1, 16, MIX_LOG_MAJOR, &pos, &op), MIX_EINVAL,
	   "dec: unaligned transaction → MIX_EINVAL");
	mix_buf_free(&b);
}

/* ---- replay of the run records (engine/replay.c) ------------------------ */

#define REPLAY_PATH "replay.log"
#define RUN_N 1500      /* appends of the first run: past one chunk */
_Static_assert(RUN_N <= ALL_SET_N && MOP_MAXDATA <= ALL_SET_N, "all_set");

/* An empty index whose first log is being replayed (as fuzz-log.c). */
static void replay_builder(struct mix_builder *b)
{
	struct mix_index_header h;

	memset(&h, 0, sizeof(h));
	h.indexid = 1;
	h.next_uid = h.first_recent_uid = 1;
	h.first_unseen_uid_lowwater = h.first_deleted_uid_lowwater = 1;
	h.highest_modseq = mix_modseq_make(1, 1, 0);
	if (mix_builder_init_empty(b, 1, &h) < 0)
		BAIL("mix_builder_init_empty: out of memory");
}

static uint64_t replay_modseq(uint32_t off)
{
	return mix_modseq_make(1, 1, off);
}

/* Replay the transaction in buf (from 0) as the one at offset off of a
 * file of major version major. */
static int replay_buf(struct mix_builder *b, const struct mix_buf *buf,
		      uint8_t major, uint32_t off)
{
	return mix_replay_txn(b, buf->data, (uint32_t)buf->len, major,
			      replay_modseq(off), REPLAY_PATH, off);
}

static void txn_begin(struct mix_buf *buf)
{
	size_t start;

	buf->len = 0;
	if (mix_logenc_begin(buf, &start) < 0)
		BAIL("mix_logenc_begin: %s", mix_last_error());
}

static void txn_end(struct mix_buf *buf)
{
	mix_logenc_end(buf, 0);
}

#define ENC(call) do {							\
	if ((call) < 0)							\
		BAIL("%s: %s", #call, mix_last_error());		\
} while (0)

/* The record of uid in b, or NULL. */
static const uint8_t *brec(const struct mix_builder *b, uint32_t uid)
{
	size_t rs = b->layout->record_size;

	for (uint32_t ci = 0; ci < b->nchunks; ci++) {
		const struct mix_chunk *c = b->chunks[ci];
		if (c->count == 0 || uid < c->first_uid || uid > c->last_uid)
			continue;
		for (uint32_t i = 0; i < c->count; i++)
			if (get32(c->recs + i * rs) == uid)
				return c->recs + i * rs;
	}
	return NULL;
}

static uint64_t rec_modseq(const uint8_t *r)
{
	uint64_t m;

	memcpy(&m, r + MIX_REC_MODSEQ_OFFSET, 8);
	return m;
}

static const uint8_t *rec_ext(const struct mix_builder *b, const uint8_t *r,
			      uint32_t ext_id)
{
	return r + b->layout->exts[ext_id].rec_offset;
}

static uint32_t builder_count(const struct mix_builder *b)
{
	uint32_t n = 0;

	for (uint32_t ci = 0; ci < b->nchunks; ci++)
		n += b->chunks[ci]->count;
	return n;
}

/* 0 if a and b hold the same records, byte for byte, and the same header;
 * else -1 with the first difference in why. */
static int same_state(const struct mix_builder *a, const struct mix_builder *b,
		      char *why, size_t n)
{
	size_t rs = a->layout->record_size;
	const struct mix_index_header *ha = &a->hdr, *hb = &b->hdr;

	if (rs != b->layout->record_size)
		MISMATCH("record size %zu and %u", rs, b->layout->record_size);
	if (builder_count(a) != builder_count(b))
		MISMATCH("%u records and %u", builder_count(a),
			 builder_count(b));
	for (uint32_t ci = 0; ci < a->nchunks; ci++) {
		const struct mix_chunk *c = a->chunks[ci];
		for (uint32_t i = 0; i < c->count; i++) {
			const uint8_t *ra = c->recs + i * rs;
			const uint8_t *rb = brec(b, get32(ra));
			if (!rb || memcmp(ra, rb, rs) != 0)
				MISMATCH("UID %u: %s (flags 0x%x/0x%x, modseq "
					 "%llx/%llx)", get32(ra),
					 rb ? "records differ" : "missing",
					 ra[4], rb ? rb[4] : 0,
					 (unsigned long long)rec_modseq(ra),
					 rb ? (unsigned long long)rec_modseq(rb)
					    : 0ull);
		}
	}
	if (memcmp(ha, hb, sizeof(*ha)) != 0)
		MISMATCH("headers differ: next_uid %u/%u messages %u/%u seen "
			 "%u/%u deleted %u/%u low-water unseen %u/%u deleted "
			 "%u/%u highest_modseq %llx/%llx", ha->next_uid,
			 hb->next_uid, ha->messages_count, hb->messages_count,
			 ha->seen_messages_count, hb->seen_messages_count,
			 ha->deleted_messages_count, hb->deleted_messages_count,
			 ha->first_unseen_uid_lowwater,
			 hb->first_unseen_uid_lowwater,
			 ha->first_deleted_uid_lowwater,
			 hb->first_deleted_uid_lowwater,
			 (unsigned long long)ha->highest_modseq,
			 (unsigned long long)hb->highest_modseq);
	return 0;
}

/* UIDs first..first+count-1 with flags, ext 2 (8 bytes) and ext 3
 * (3 bytes) data, modseq m, as one append transaction gave them. */
static int check_appended(const struct mix_builder *b, uint32_t first,
			  uint32_t count, const uint8_t *flags,
			  const uint8_t *d8, const uint8_t *d3, uint64_t m,
			  char *why, size_t n)
{
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *r = brec(b, first + i);
		if (!r)
			MISMATCH("UID %u is missing", first + i);
		if (r[4] != flags[i] || rec_modseq(r) != m)
			MISMATCH("UID %u: flags 0x%x modseq %llx, expected "
				 "0x%x %llx", first + i, r[4],
				 (unsigned long long)rec_modseq(r), flags[i],
				 (unsigned long long)m);
		if (memcmp(rec_ext(b, r, 2), d8 + (size_t)i * 8, 8) != 0 ||
		    memcmp(rec_ext(b, r, 3), d3 + (size_t)i * 3, 3) != 0)
			MISMATCH("UID %u: extension data differs", first + i);
	}
	return 0;
}

static void intro_exts(struct mix_buf *buf)
{
	struct mix_log_ext_intro in8 = { .ext_id = 2, .record_size = 8,
					 .record_align = 8 };
	struct mix_log_ext_intro in3 = { .ext_id = 3, .record_size = 3,
					 .record_align = 1 };

	txn_begin(buf);
	ENC(mix_logenc_ext_intro(buf, &in8, "date8"));
	ENC(mix_logenc_ext_intro(buf, &in3, "odd3"));
	txn_end(buf);
}

/* random bytes, every 5th record of rec_size left zero (as new records
 * are: setting it changes nothing) */
static void rand_recs(uint64_t *s, uint8_t *d, uint32_t count,
		      uint32_t rec_size)
{
	for (uint32_t i = 0; i < count; i++)
		for (uint32_t k = 0; k < rec_size; k++)
			d[(size_t)i * rec_size + k] =
				i % 5 == 0 ? 0 : (uint8_t)tu_rand(s);
}

/*
 * §3.3.11-§3.3.12: "otherwise exactly an APPEND / EXT_REC of those
 * entries".  Two builders replay the same history, one through the run
 * records (R), one through APPEND and EXT_REC (P); after each transaction
 * both must hold the same records and header, and R what the
 * transactions said.
 *   1  two extensions (8 and 3 bytes)
 *   2  RUN_N appends with random flags and data for both (R: APPEND_RUN,
 *      two EXT_RUN), crossing a chunk boundary
 *   3  700 appends after a UID gap, into the half-full last chunk; data
 *      for some of them (R: mix_logenc_ext_rec_run with a partial set)
 *   4  data for UIDs 1400..1799, 1501..1599 missing (R: EXT_RUN)
 */
static void test_replay_equiv(uint64_t seed)
{
	enum { N2 = 700, G = 1600, E0 = 1400, EN = 400 };
	static uint8_t flags[RUN_N], d8[RUN_N * 8], d3[RUN_N * 3];
	static uint8_t f2[N2], e3[N2 * 3], set[N2], x8[EN * 8];
	static struct mix_log_append app[RUN_N];
	static uint32_t uids[RUN_N];
	struct mix_builder R, P;
	struct mix_buf buf = { 0 };
	uint32_t i, n, seen = 0;
	char why[300];
	int r1, r2;

	diag("replay equivalence: seed %llu", (unsigned long long)seed);
	replay_builder(&R);
	replay_builder(&P);
	intro_exts(&buf);
	r1 = replay_buf(&R, &buf, 2, 48);
	r2 = replay_buf(&P, &buf, 2, 48);
	if (r1 < 0 || r2 < 0 || R.layout->ext_count != 4)
		BAIL("replay of two ext-intros: %d %d: %s", r1, r2,
		     mix_last_error());

	/* 2 */
	for (i = 0; i < RUN_N; i++) {
		flags[i] = (uint8_t)tu_rand(&seed) & MIX_FLAGS_ALL;
		seen += (flags[i] & MIX_FLAG_SEEN) != 0;
		app[i] = (struct mix_log_append){ 1 + i, flags[i] };
		uids[i] = 1 + i;
	}
	rand_recs(&seed, d8, RUN_N, 8);
	rand_recs(&seed, d3, RUN_N, 3);
	txn_begin(&buf);
	ENC(mix_logenc_append_run(&buf, 1, flags, RUN_N));
	ENC(mix_logenc_ext_rec_run(&buf, 2, 8, 1, d8, NULL, RUN_N));
	ENC(mix_logenc_ext_rec_run(&buf, 3, 3, 1, d3, all_set, RUN_N));
	txn_end(&buf);
	r1 = replay_buf(&R, &buf, 2, 1000);
	txn_begin(&buf);
	ENC(mix_logenc_append(&buf, app, RUN_N));
	ENC(mix_logenc_ext_rec(&buf, 2, 8, uids, d8, RUN_N));
	ENC(mix_logenc_ext_rec(&buf, 3, 3, uids, d3, RUN_N));
	txn_end(&buf);
	r2 = replay_buf(&P, &buf, 2, 1000);
	ok(r1 == 0 && r2 == 0, "replay: append-run + 2 ext-runs of %u and "
	   "the same as append + ext-recs (%d, %d: %s)", RUN_N, r1, r2,
	   r1 || r2 ? mix_last_error() : "ok");
	if (!is(check_appended(&R, 1, RUN_N, flags, d8, d3,
			       replay_modseq(1000), why, sizeof(why)), 0,
		"replay: the run's %u messages have their flags, the "
		"transaction's modseq and their data for both extensions",
		RUN_N))
		diag("  %s", why);
	ok(R.hdr.messages_count == RUN_N && R.hdr.next_uid == RUN_N + 1 &&
	   R.hdr.seen_messages_count == seen &&
	   R.hdr.highest_modseq == replay_modseq(1000) && R.nchunks >= 2,
	   "replay: header after the run: %u messages, next_uid %u, %u seen "
	   "(expected %u), %u chunks", R.hdr.messages_count, R.hdr.next_uid,
	   R.hdr.seen_messages_count, seen, R.nchunks);
	if (!is(same_state(&R, &P, why, sizeof(why)), 0, "replay: runs and "
		"per-message records give the same records and header"))
		diag("  %s", why);

	/* 3 */
	for (i = 0; i < N2; i++) {
		f2[i] = (uint8_t)tu_rand(&seed) & MIX_FLAGS_ALL;
		set[i] = i == 0 || (i < N2 - 1 && tu_rand_below(&seed, 3) != 0);
		app[i] = (struct mix_log_append){ G + i, f2[i] };
	}
	rand_recs(&seed, e3, N2, 3);
	txn_begin(&buf);
	ENC(mix_logenc_append_run(&buf, G, f2, N2));
	ENC(mix_logenc_ext_rec_run(&buf, 3, 3, G, e3, set, N2));
	txn_end(&buf);
	r1 = replay_buf(&R, &buf, 2, 200000);
	txn_begin(&buf);
	ENC(mix_logenc_append(&buf, app, N2));
	for (i = 0, n = 0; i < N2; i++)
		if (set[i]) {
			uids[n] = G + i;
			memcpy(d3 + (size_t)n++ * 3, e3 + (size_t)i * 3, 3);
		}
	ENC(mix_logenc_ext_rec(&buf, 3, 3, uids, d3, n));
	txn_end(&buf);
	r2 = replay_buf(&P, &buf, 2, 200000);
	ok(r1 == 0 && r2 == 0 && R.hdr.next_uid == G + N2 &&
	   brec(&R, RUN_N + 1) == NULL && brec(&R, G) != NULL,
	   "replay: append-run of %u after a UID gap, data for %u of them "
	   "(%d, %d, next_uid %u)", N2, n, r1, r2, R.hdr.next_uid);
	if (!is(same_state(&R, &P, why, sizeof(why)), 0, "replay: the same "
		"records and header after it"))
		diag("  %s", why);

	/* 4 */
	for (i = 0; i < EN; i++) {
		const uint8_t *r = brec(&R, E0 + i);
		uids[i] = E0 + i;
		if (r && i % 3 == 0)
			/* the data it has: no change */
			memcpy(x8 + i * 8, rec_ext(&R, r, 2), 8);
		else
			for (int k = 0; k < 8; k++)
				x8[i * 8 + k] = (uint8_t)tu_rand(&seed);
	}
	txn_begin(&buf);
	ENC(mix_logenc_ext_rec_run(&buf, 2, 8, E0, x8, NULL, EN));
	txn_end(&buf);
	r1 = replay_buf(&R, &buf, 2, 300000);
	txn_begin(&buf);
	ENC(mix_logenc_ext_rec(&buf, 2, 8, uids, x8, EN));
	txn_end(&buf);
	r2 = replay_buf(&P, &buf, 2, 300000);
	ok(r1 == 0 && r2 == 0 && R.hdr.messages_count == RUN_N + N2,
	   "replay: ext-run over UIDs %u..%u, some missing (%d, %d, %u "
	   "messages)", E0, E0 + EN - 1, r1, r2, R.hdr.messages_count);
	if (!is(same_state(&R, &P, why, sizeof(why)), 0, "replay: the same "
		"records and header as the ext-rec of those UIDs"))
		diag("  %s", why);
	mix_builder_abort(&R);
	mix_builder_abort(&P);
	mix_buf_free(&buf);
}

/* The header counters and low-water marks after runs whose flags leave
 * them "none" (every message seen, none deleted) or not: the same as
 * after the APPEND of those messages, run after run. */
static void test_replay_equiv_flags(void)
{
	static const struct { const char *what; uint8_t first, rest; } pat[] = {
		{ "all seen", MIX_FLAG_SEEN, MIX_FLAG_SEEN },
		{ "all seen and deleted", MIX_FLAG_SEEN | MIX_FLAG_DELETED,
		  MIX_FLAG_SEEN | MIX_FLAG_DELETED },
		{ "no flags", 0, 0 },
		{ "first seen, rest deleted", MIX_FLAG_SEEN, MIX_FLAG_DELETED },
		{ "first unseen, rest seen", 0, MIX_FLAG_SEEN },
	};
	static const uint32_t first[3] = { 1, 20, 31 };
	struct mix_log_append app[10];
	uint8_t fl[10];
	struct mix_builder R, P;
	struct mix_buf buf = { 0 };
	char why[300];

	for (size_t k = 0; k < sizeof(pat) / sizeof(pat[0]); k++) {
		int bad = 0, r1 = 0, r2 = 0;

		replay_builder(&R);
		replay_builder(&P);
		for (int t = 0; t < 3 && !bad; t++) {
			for (uint32_t i = 0; i < 10; i++) {
				fl[i] = i ? pat[k].rest : pat[k].first;
				app[i] = (struct mix_log_append){ first[t] + i,
								  fl[i] };
			}
			txn_begin(&buf);
			ENC(mix_logenc_append_run(&buf, first[t], fl, 10));
			txn_end(&buf);
			r1 = replay_buf(&R, &buf, 2, 48 + 100 * (uint32_t)t);
			txn_begin(&buf);
			ENC(mix_logenc_append(&buf, app, 10));
			txn_end(&buf);
			r2 = replay_buf(&P, &buf, 2, 48 + 100 * (uint32_t)t);
			if (r1 < 0 || r2 < 0 ||
			    same_state(&R, &P, why, sizeof(why)) < 0) {
				diag("  run %d: %d %d %s", t, r1, r2,
				     r1 < 0 || r2 < 0 ? mix_last_error() : why);
				bad = 1;
			}
		}
		ok(!bad, "replay: three append-runs of 10, %s: the same "
		   "records, counters and low-water marks as appends",
		   pat[k].what);
		mix_builder_abort(&R);
		mix_builder_abort(&P);
	}
	mix_buf_free(&buf);
}

/* §3.3.12: an EXT_RUN sets the data of the messages of its run that
 * exist, ignores the others, and gives the transaction's modseq only to
 * the messages whose data changed. */
static void test_replay_ext_run_gaps(void)
{
	static const struct mix_log_append app[6] = {
		{ 1, 0 }, { 2, 0 }, { 3, 0 }, { 6, 0 }, { 7, 0 }, { 10, 0 } };
	static const uint32_t uid3 = 3;
	struct mix_log_ext_intro in = { .ext_id = 2, .record_size = 4,
					.record_align = 4 };
	/* UIDs 2..9: 4, 5, 8, 9 do not exist; 3 and 7 keep their data */
	static const char data[] = "bbbbCCCCddddeeeeffff\0\0\0\0hhhhiiii";
	static const struct { uint32_t uid; const char *data; uint32_t off; }
	want[6] = { { 1, "\0\0\0\0", 48 }, { 2, "bbbb", 100 },
		    { 3, "CCCC", 48 }, { 6, "ffff", 100 },
		    { 7, "\0\0\0\0", 48 }, { 10, "\0\0\0\0", 48 } };
	struct mix_builder b;
	struct mix_buf buf = { 0 };
	uint32_t bad = 0;
	int ret;

	replay_builder(&b);
	txn_begin(&buf);
	ENC(mix_logenc_ext_intro(&buf, &in, "gap4"));
	ENC(mix_logenc_append(&buf, app, 6));
	ENC(mix_logenc_ext_rec(&buf, 2, 4, &uid3, (const uint8_t *)"CCCC", 1));
	txn_end(&buf);
	if (replay_buf(&b, &buf, 2, 48) < 0)
		BAIL("replay of the first transaction: %s", mix_last_error());
	txn_begin(&buf);
	ENC(mix_logenc_ext_rec_run(&buf, 2, 4, 2, (const uint8_t *)data, NULL,
				   8));
	txn_end(&buf);
	ok(buf.len > 16 && get32(buf.data + 20) == MIX_LOG_EXT_RUN,
	   "replay gaps: the transaction holds an ext-run");
	ret = replay_buf(&b, &buf, 2, 100);
	is(ret, 0, "replay gaps: ext-run over UIDs 2..9, 4 of them missing: "
	   "%s", ret ? mix_last_error() : "ok");
	for (int i = 0; i < 6; i++) {
		const uint8_t *r = brec(&b, want[i].uid);
		if (!r || memcmp(rec_ext(&b, r, 2), want[i].data, 4) != 0 ||
		    rec_modseq(r) != replay_modseq(want[i].off)) {
			diag("  UID %u: %s, modseq %llx (expected '%.4s', "
			     "%llx)", want[i].uid, r ? "data" : "missing",
			     r ? (unsigned long long)rec_modseq(r) : 0ull,
			     want[i].data,
			     (unsigned long long)replay_modseq(want[i].off));
			bad++;
		}
	}
	is(bad, 0, "replay gaps: UIDs 2 and 6 changed and got the new "
	   "modseq; 3 and 7 (same data) and 1 and 10 (outside) kept theirs");
	ok(b.hdr.messages_count == 6 && builder_count(&b) == 6 &&
	   b.hdr.next_uid == 11 && !brec(&b, 4) && !brec(&b, 9) &&
	   b.hdr.highest_modseq == replay_modseq(100),
	   "replay gaps: no message made for the missing UIDs (%u messages, "
	   "next_uid %u), highest_modseq is the transaction's",
	   b.hdr.messages_count, b.hdr.next_uid);
	mix_builder_abort(&b);

	/* a run to 2^32-1, the last UID an EXT_RUN may name */
	replay_builder(&b);
	txn_begin(&buf);
	ENC(mix_logenc_ext_intro(&buf, &in, "gap4"));
	ENC(mix_logenc_append_run(&buf, 0xfffffffcu, (const uint8_t *)"\0\0",
				  2));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 2, 48);
	is(ret, 0, "replay: append-run of UIDs 2^32-4 and 2^32-3: %s",
	   ret ? mix_last_error() : "ok");
	is(b.hdr.next_uid, 0xfffffffeu, "replay: next_uid is 2^32-2 after it");
	txn_begin(&buf);
	ENC(mix_logenc_ext_rec_run(&buf, 2, 4, 0xfffffffdu,
				   (const uint8_t *)"PPPPQQQQRRRR", NULL, 3));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 2, 100);
	{
		const uint8_t *r4 = brec(&b, 0xfffffffcu);
		const uint8_t *r3 = brec(&b, 0xfffffffdu);
		ok(ret == 0 && r4 && r3 &&
		   memcmp(rec_ext(&b, r4, 2), "\0\0\0\0", 4) == 0 &&
		   rec_modseq(r4) == replay_modseq(48) &&
		   memcmp(rec_ext(&b, r3, 2), "PPPP", 4) == 0 &&
		   rec_modseq(r3) == replay_modseq(100) &&
		   b.hdr.messages_count == 2,
		   "replay: ext-run of UIDs 2^32-3..2^32-1 sets the one that "
		   "exists (%s)", ret ? mix_last_error() : "ok");
	}
	mix_builder_abort(&b);
	mix_buf_free(&buf);
}

/* What a replay refuses (format.md §3.3: checked against the state), and
 * the run records in a major-1 file (§3.1). */
static void test_replay_bad_runs(void)
{
	struct mix_log_ext_intro in = { .ext_id = 2, .record_size = 4,
					.record_align = 4 };
	static const uint8_t f5[5] = { 0 };
	struct mix_builder b;
	struct mix_buf buf = { 0 };
	int ret;

	replay_builder(&b);
	txn_begin(&buf);
	ENC(mix_logenc_ext_intro(&buf, &in, "four"));
	ENC(mix_logenc_append_run(&buf, 1, f5, 5));
	txn_end(&buf);
	if (replay_buf(&b, &buf, 2, 48) < 0 || b.hdr.next_uid != 6)
		BAIL("replay of append-run 1..5: %s", mix_last_error());

	txn_begin(&buf);
	ENC(mix_logenc_append_run(&buf, 5, f5, 2));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 2, 100);
	ok(ret == MIX_ECORRUPT && has(mix_last_error(), REPLAY_PATH) &&
	   has(mix_last_error(), "offset 100") &&
	   has(mix_last_error(), "next_uid 6"),
	   "replay: append-run from UID 5, below next_uid 6 → MIX_ECORRUPT "
	   "naming file, offset and next_uid (%d: %s)", ret, mix_last_error());
	txn_begin(&buf);
	ENC(mix_logenc_append_run(&buf, 1, f5, 1));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 2, 100);
	is(ret, MIX_ECORRUPT, "replay: append-run of UID 1 again → "
	   "MIX_ECORRUPT");
	txn_begin(&buf);
	ENC(mix_logenc_append_run(&buf, 6, f5, 2));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 2, 100);
	ok(ret == 0 && b.hdr.next_uid == 8, "replay: append-run from "
	   "next_uid itself is fine (%d, next_uid %u)", ret, b.hdr.next_uid);

	txn_begin(&buf);
	ENC(mix_logenc_ext_rec_run(&buf, 7, 4, 1, (const uint8_t *)"abcd",
				   NULL, 1));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 2, 200);
	ok(ret == MIX_ECORRUPT && has(mix_last_error(), "extension 7"),
	   "replay: ext-run of an unknown extension → MIX_ECORRUPT (%d: %s)",
	   ret, mix_last_error());
	txn_begin(&buf);
	ENC(mix_logenc_ext_rec_run(&buf, 2, 8, 1, (const uint8_t *)"abcdefgh",
				   NULL, 1));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 2, 200);
	ok(ret == MIX_ECORRUPT && has(mix_last_error(), "size 8"),
	   "replay: ext-run of 8 bytes for a 4-byte extension → "
	   "MIX_ECORRUPT (%d: %s)", ret, mix_last_error());
	txn_begin(&buf);
	ENC(mix_logenc_ext_rec_run(&buf, MIX_EXT_MODSEQ, 8, 1,
				   (const uint8_t *)"abcdefgh", NULL, 1));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 2, 200);
	ok(ret == MIX_ECORRUPT && has(mix_last_error(), "extension 0"),
	   "replay: ext-run of the built-in modseq extension → MIX_ECORRUPT "
	   "(%d: %s)", ret, mix_last_error());

	/* the same records in a major-1 file */
	txn_begin(&buf);
	ENC(mix_logenc_append_run(&buf, 8, f5, 1));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 1, 300);
	ok(ret == MIX_ECORRUPT && has(mix_last_error(), "major version 2 "
				       "record"),
	   "replay, major 1: append-run → MIX_ECORRUPT (%d: %s)", ret,
	   mix_last_error());
	txn_begin(&buf);
	ENC(mix_logenc_ext_rec_run(&buf, 2, 4, 1, (const uint8_t *)"abcd", NULL,
				   1));
	txn_end(&buf);
	ret = replay_buf(&b, &buf, 1, 300);
	ok(ret == MIX_ECORRUPT && has(mix_last_error(), "major version 2 "
				       "record"),
	   "replay, major 1: ext-run → MIX_ECORRUPT (%d: %s)", ret,
	   mix_last_error());
	ret = replay_buf(&b, &buf, 2, 300);
	ok(ret == 0 && memcmp(rec_ext(&b, brec(&b, 1), 2), "abcd", 4) == 0,
	   "replay, major 2: the same ext-run applies (%d)", ret);
	mix_builder_abort(&b);
	mix_buf_free(&buf);
}

/* ---- fuzz ------------------------------------------------------------- */

/* Every pointer an op hands out must be inside [txn, txn + size). */
static int op_in_bounds(const struct mix_log_op *op, const uint8_t *txn,
			uint32_t size)
{
	const uint8_t *end = txn + size, *p = NULL;
	uint64_t len = 0;

	switch (op->type) {
	case MIX_LOG_APPEND:
		p = (const uint8_t *)op->appends; len = (uint64_t)op->count * 8;
		break;
	case MIX_LOG_EXPUNGE: case MIX_LOG_FLAGS: case MIX_LOG_KEYWORD:
	case MIX_LOG_KEYWORD_RESET:
		p = (const uint8_t *)op->ranges; len = (uint64_t)op->count * 8;
		break;
	case MIX_LOG_EXT_HDR: case MIX_LOG_HDR:
		p = op->data; len = op->size;
		break;
	case MIX_LOG_EXT_REC:
		p = op->data; len = (uint64_t)op->count * op->stride;
		break;
	case MIX_LOG_APPEND_RUN:
	case MIX_LOG_EXT_RUN:
		/* §3.3.1: a run the decoder hands out is a valid one */
		if (op->count == 0 || op->first_uid == 0 ||
		    (uint64_t)op->first_uid + op->count - 1 >
		    UINT32_MAX - (op->type == MIX_LOG_APPEND_RUN))
			return 0;
		p = op->data;
		len = (uint64_t)op->count *
		      (op->type == MIX_LOG_APPEND_RUN ? 1 : op->rec_size);
		break;
	case MIX_LOG_EXT_INTRO:
		break;
	default:
		return 0;
	}
	if (p != NULL && (p < txn || (uint64_t)(end - p) < len))
		return 0;
	if ((op->type == MIX_LOG_KEYWORD || op->type == MIX_LOG_EXT_INTRO) &&
	    ((const uint8_t *)op->name < txn ||
	     (uint64_t)(end - (const uint8_t *)op->name) < op->name_size))
		return 0;
	return 1;
}

/* Decode a (possibly garbage) transaction as a record of a file of major
 * version major: 0 if every result was legal (in a major-1 file, no run
 * record is ever returned). */
static int fuzz_decode(const uint8_t *txn, uint32_t size, uint8_t major,
		       int *n_ok)
{
	struct mix_log_op op;
	uint32_t pos = 0, prev;
	int ret;

	for (int guard = 0; guard < 100000; guard++) {
		prev = pos;
		ret = mix_log_txn_next_op(txn, size, major, &pos, &op);
		if (ret == 0) {
			(*n_ok)++;
			return 0;
		}
		if (ret == MIX_ECORRUPT)
			return 0;
		if (ret != 1 || pos <= prev || pos > size ||
		    !op_in_bounds(&op, txn, size) ||
		    (major < 2 && is_run_type(op.type)))
			return -1;
	}
	return -1;
}

static void test_fuzz(uint64_t seed)
{
	static struct mop ops[8];
	struct mix_buf b = { 0 };
	uint8_t hdr[48];
	int iters = (int)(20000 * tu_scale()), bad = 0, model_bad = 0;
	int n_ok = 0, n_ok1 = 0, reader_bad = 0, nops, with_runs = 0;
	char why[300];
	struct mix_log_writer w;
	struct mix_log_reader r;

	mix_log_rotate_to(tdir, 1, 1, 0, 0, &w);
	memcpy(hdr, &w.hdr, 48);
	mix_log_writer_close(&w);
	diag("fuzz: %d iterations", iters);
	for (int it = 0; it < iters; it++) {
		uint32_t size, flips;
		b.len = 0;
		mix_buf_append(&b, hdr, 48);
		rand_txn(&seed, &b, ops, &nops);
		size = (uint32_t)b.len - 48;
		if ((check_txn(b.data + 48, size, ops, nops, why, 300) < 0 ||
		     check_txn_major(b.data + 48, size, ops, nops, 1, why,
				     300) < 0) && model_bad++ == 0)
			diag("fuzz iteration %d: unmutated: %s", it, why);
		for (int k = 0; k < nops; k++)
			if (is_run_type(ops[k].type)) {
				with_runs++;
				break;
			}
		flips = 1 + tu_rand_below(&seed, 4);
		for (uint32_t f = 0; f < flips; f++) {
			uint32_t at = tu_rand_below(&seed, size);
			if (at >= 12 && at < 16)
				continue;       /* the crc: fixed below */
			if (tu_rand_below(&seed, 2))
				b.data[48 + at] ^= (uint8_t)(1u << tu_rand_below(&seed, 8));
			else
				b.data[48 + at] = (uint8_t)tu_rand(&seed);
		}
		fix_txn_crc(b.data + 48, size);
		if (fuzz_decode(b.data + 48, size, 2, &n_ok) < 0 && bad++ == 0)
			diag("fuzz iteration %d: illegal decoder result", it);
		if (fuzz_decode(b.data + 48, size, 1, &n_ok1) < 0 && bad++ == 0)
			diag("fuzz iteration %d: illegal decoder result in a "
			     "major-1 file", it);
		if (mix_log_reader_from_buf(b.data, b.len, "fuzz.log", &r) == 0) {
			const uint8_t *x;
			uint32_t s;
			uint64_t o;
			int got = mix_log_reader_next(&r, &x, &s, &o);
			if (got < 0 || (got == 1 && (o != 48 || s > size)))
				reader_bad++;
			mix_log_reader_close(&r);
		} else {
			reader_bad++;
		}
	}
	is(model_bad, 0, "fuzz: every unmutated random transaction decodes to "
	   "its model (in a major-1 file: up to its first run record, which "
	   "is refused)");
	ok(with_runs > 0 && with_runs < iters, "fuzz: %d of the %d random "
	   "transactions have run records", with_runs, iters);
	is(bad, 0, "fuzz: mutated transactions decode or give MIX_ECORRUPT; "
	   "ops stay inside the transaction; no run record from a major-1 "
	   "file");
	ok(n_ok1 > 0 && n_ok1 <= n_ok, "fuzz: no more mutations decode in a "
	   "major-1 file (%d) than in a major-2 one (%d)", n_ok1, n_ok);
	is(reader_bad, 0, "fuzz: the reader frames mutated transactions sanely");
	ok(n_ok > 0 && n_ok < iters, "fuzz: some mutations still decode (%d), "
	   "some do not", n_ok);
	mix_buf_free(&b);
}

/* Random bytes after a valid header: the reader must stop, never crash. */
static void test_fuzz_reader(uint64_t seed, const uint8_t *file)
{
	uint8_t buf[48 + 512];
	int iters = (int)(3000 * tu_scale()), bad = 0;
	struct mix_log_reader r;

	for (int it = 0; it < iters; it++) {
		size_t len = 48 + tu_rand_below(&seed, 512);
		const uint8_t *x;
		uint32_t s;
		uint64_t o;
		int n = 0;

		memcpy(buf, file, 48);
		for (size_t i = 48; i < len; i++)
			buf[i] = (uint8_t)(tu_rand_below(&seed, 3) ? 0 : tu_rand(&seed));
		if (len >= 64 && tu_rand_below(&seed, 2)) {
			/* a plausible boundary with a fixed CRC */
			uint32_t ts = 16 + 4 * tu_rand_below(&seed, (uint32_t)(len - 64) / 4 + 1);
			boundary_tail(buf + 48, 16, MIX_LOG_BOUNDARY, 0, 0);
			put32(buf + 56, ts);
			fix_txn_crc(buf + 48, ts);
		}
		if (mix_log_reader_from_buf(buf, len, "rnd.log", &r) != 0) {
			bad++;
			continue;
		}
		while (mix_log_reader_next(&r, &x, &s, &o) == 1 && n < 1000) {
			if (o + s > len || s < 16)
				bad++;
			n++;
		}
		if (n >= 1000 || (r.pos != len && !r.torn))
			bad++;
		mix_log_reader_close(&r);
	}
	is(bad, 0, "fuzz: %d random tails after a header are framed or "
	   "reported torn", iters);
}

/* ---- major version 3: UID_FLOOR, PREV_SYNCED, uid_floor (§3.1-§3.3) ---- */

static void test_v3_records(void)
{
	struct mix_buf b = { 0 };
	struct mix_log_op op;
	uint32_t pos = 0, floor = 12345, pad = 0;
	size_t start;
	int ret;

	mix_logenc_begin(&b, &start);
	is(mix_logenc_uid_floor(&b, 0), MIX_EINVAL, "v3: uid_floor 0 is not "
	   "encoded");
	is(b.len, 16, "v3: the refused record left the buffer as it was");
	is(mix_logenc_uid_floor(&b, 12345), 0, "v3: uid_floor encodes");
	mix_logenc_end(&b, start);
	ok(b.len == 32 && get32(b.data + 16) == 16 && get32(b.data + 20) == 13,
	   "v3: UID_FLOOR is size 16, type 13 (%zu bytes)", b.len);
	ret = mix_log_txn_next_op(b.data, (uint32_t)b.len, 3, &pos, &op);
	ok(ret == 1 && op.type == MIX_LOG_UID_FLOOR && op.uid_floor == 12345 &&
	   op.count == 0 && pos == 32, "v3: decodes with op.uid_floor %u (%d)",
	   op.uid_floor, ret);
	pos = 0;
	ret = mix_log_txn_next_op(b.data, (uint32_t)b.len, 2, &pos, &op);
	ok(ret == MIX_ECORRUPT && has(mix_last_error(), "type 13 is a major "
	   "version 3 record in a file of major version 2"),
	   "v3: UID_FLOOR in a major-2 file is corrupt: %s", mix_last_error());
	/* a pad word set, a floor of 0, a payload of 12 bytes */
	put32(b.data + 28, 1);
	fix_txn_crc(b.data, 32);
	pos = 0;
	ok(mix_log_txn_next_op(b.data, 32, 3, &pos, &op) == MIX_ECORRUPT &&
	   has(mix_last_error(), "pad"), "v3: UID_FLOOR pad 1 → corrupt: %s",
	   mix_last_error());
	put32(b.data + 28, pad);
	put32(b.data + 24, 0);
	pos = 0;
	ok(mix_log_txn_next_op(b.data, 32, 3, &pos, &op) == MIX_ECORRUPT &&
	   has(mix_last_error(), "uid_floor is 0"), "v3: UID_FLOOR 0 → "
	   "corrupt: %s", mix_last_error());
	put32(b.data + 24, floor);
	put32(b.data + 16, 20);
	mix_buf_append(&b, &pad, 4);
	put32(b.data + 8, 36);
	pos = 0;
	ok(mix_log_txn_next_op(b.data, 36, 3, &pos, &op) == MIX_ECORRUPT &&
	   has(mix_last_error(), "expected 8"), "v3: UID_FLOOR of 12 payload "
	   "bytes → corrupt: %s", mix_last_error());
	mix_buf_free(&b);
}

static void test_v3_prev_synced_enc(void)
{
	struct mix_buf b = { 0 };
	struct mix_log_op op;
	uint8_t copy[64];
	uint32_t pos = 0;
	size_t s0, s1;
	uint16_t flags;

	mix_logenc_begin(&b, &s0);
	mix_logenc_uid_floor(&b, 7);
	is(mix_logenc_mark_prev_synced(&b, s0), MIX_EINVAL, "v3: marking a "
	   "transaction before mix_logenc_end is refused");
	mix_logenc_end(&b, s0);
	mix_logenc_begin(&b, &s1);
	mix_logenc_end(&b, s1);
	is(mix_logenc_mark_prev_synced(&b, s1), 0, "v3: mark the second "
	   "transaction PREV_SYNCED");
	memcpy(&flags, b.data + s1 + 6, 2);
	memcpy(copy, b.data + s1, 16);
	fix_txn_crc(copy, 16);
	ok(flags == MIX_LOG_PREV_SYNCED && memcmp(copy, b.data + s1, 16) == 0,
	   "v3: flags 0x%x and the CRC computed again over them", flags);
	ok(get32(b.data + s0 + 12) == mix_log_txn_crc(b.data + s0, 32) &&
	   b.data[s0 + 6] == 0, "v3: the first transaction is untouched");
	is(mix_logenc_mark_prev_synced(&b, b.len), MIX_EINVAL, "v3: marking "
	   "past the buffer is refused");
	is(mix_logenc_mark_prev_synced(&b, s0 + 4), MIX_EINVAL, "v3: marking "
	   "where no transaction starts is refused");
	pos = 0;
	is(mix_log_txn_next_op(b.data + s1, 16, 3, &pos, &op), 0,
	   "v3: a PREV_SYNCED boundary decodes in a major-3 file");
	pos = 0;
	ok(mix_log_txn_next_op(b.data + s1, 16, 2, &pos, &op) == MIX_ECORRUPT &&
	   has(mix_last_error(), "flags 0x1"), "v3: and not in a major-2 one: "
	   "%s", mix_last_error());
	put32(b.data + s1 + 4, MIX_LOG_BOUNDARY | 2u << 16);
	fix_txn_crc(b.data + s1, 16);
	pos = 0;
	is(mix_log_txn_next_op(b.data + s1, 16, 3, &pos, &op), MIX_ECORRUPT,
	   "v3: boundary flag 0x2 is corrupt in a major-3 file too");
	mix_buf_free(&b);
}

/* The writer's synced offset and the header's uid_floor. */
static void test_v3_writer(void)
{
	char *dir = tu_tmpdir("txlog-v3"), *path = path_in(dir, MIX_LOG_FILENAME);
	struct mix_log_writer w;
	struct mix_log_reader r;
	uint8_t txn[16] = { 16, 0, 0, 0, 1, 0, 0, 0, 16, 0, 0, 0 };
	uint64_t before;
	int ret;

	fix_txn_crc(txn, 16);
	is(mix_log_rotate_to(dir, 50, 1, 0, 0, &w), 0, "v3 writer: create");
	ok(w.synced == 48 && w.offset == 48 && w.hdr.major_version == 3 &&
	   w.hdr.uid_floor == 0, "v3 writer: synced %llu after the header's "
	   "fsync, major %u, uid_floor %u", (unsigned long long)w.synced,
	   w.hdr.major_version, w.hdr.uid_floor);
	mix_log_append(&w, txn, 16);
	ok(w.offset == 64 && w.synced == 48, "v3 writer: an append does not "
	   "move synced (%llu)", (unsigned long long)w.synced);
	is(mix_log_sync(&w), 0, "v3 writer: sync");
	is(w.synced, 64, "v3 writer: synced is the offset after a sync");
	mix_log_append(&w, txn, 16);
	before = w.synced;
	mix_io_fault_set(1, -EIO);
	ret = mix_log_sync(&w);
	mix_io_fault_set(0, 0);
	ok(ret == -EIO && w.synced == before && w.failed, "v3 writer: a failed "
	   "sync leaves synced at %llu (%d)", (unsigned long long)w.synced, ret);
	mix_log_writer_close(&w);

	is(mix_log_rotate_to_floor(-1, dir, 50, 2, 1, 80, 4242, &w), 0,
	   "v3 writer: rotate with a uid_floor");
	ok(w.hdr.uid_floor == 4242 && w.synced == 48, "v3 writer: header "
	   "uid_floor %u", w.hdr.uid_floor);
	mix_log_writer_close(&w);
	ret = mix_log_reader_open(path, &r);
	ok(ret == 0 && r.hdr.uid_floor == 4242 && r.hdr.file_seq == 2 &&
	   r.hdr.major_version == 3, "v3 writer: the reader reads uid_floor "
	   "%u back (%d)", r.hdr.uid_floor, ret);
	mix_log_reader_close(&r);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

/* ---- damage is not a torn tail (§3.4) ----------------------------------- */

/* A log in memory: a header of major version major, then n transactions,
 * each a FLAGS record on UID i + 1 with pad_bytes of EXT_HDR data (when
 * pad_bytes > 0); transaction i is marked PREV_SYNCED when synced[i].
 * offs[i] gets the offsets (offs[n] the end). */
static void build_log(struct mix_buf *b, uint8_t major, int n,
		      const uint8_t *synced, uint32_t pad_bytes, uint64_t *offs)
{
	static uint8_t pad[65536];
	uint8_t h[48] = { 0 };
	size_t start;

	put32(h, MIX_LOG_MAGIC);
	h[4] = major;
	h[6] = 48;
	put32(h + 8, 100);
	put32(h + 12, 1);
	h[32] = MIX_COMPAT_LITTLE_ENDIAN;
	fix_hdr_crc(h);
	b->len = 0;
	mix_buf_append(b, h, 48);
	for (int i = 0; i < n; i++) {
		struct mix_log_uid_range rg = { (uint32_t)i + 1, (uint32_t)i + 1 };
		offs[i] = b->len;
		mix_logenc_begin(b, &start);
		if (mix_logenc_flags(b, MIX_FLAG_SEEN, 0, &rg, 1) < 0 ||
		    (pad_bytes > 0 && mix_logenc_ext_hdr(b, 0, 0, pad,
			pad_bytes - (uint32_t)(i % 5) * 4) < 0))
			BAIL("build_log: %s", mix_last_error());
		mix_logenc_end(b, start);
		if (synced != NULL && synced[i] &&
		    mix_logenc_mark_prev_synced(b, start) < 0)
			BAIL("build_log: %s", mix_last_error());
	}
	offs[n] = b->len;
}

/* Read r to the end; returns the transactions read, *first_r the offset of
 * the first. */
static int count_txns(struct mix_log_reader *r, uint64_t *first_r)
{
	const uint8_t *x;
	uint32_t s;
	uint64_t o;
	int n = 0, ret;

	while ((ret = mix_log_reader_next(r, &x, &s, &o)) == 1)
		if (n++ == 0 && first_r != NULL)
			*first_r = o;
	return ret < 0 ? ret : n;
}

/* The issue's case: 12 SYNC-acknowledged transactions (each written after
 * the previous one's fdatasync, so each but the first is marked
 * PREV_SYNCED, as the writer does) and one flipped byte at offset 300. */
static void test_damage_issue_case(void)
{
	char *dir = tu_tmpdir("txlog-dmg"), *path = path_in(dir, MIX_LOG_FILENAME);
	struct mix_buf b = { 0 };
	struct mix_log_writer w;
	struct mix_log_reader r;
	uint64_t offs[13], first = 0;
	uint8_t *file;
	size_t fsize;
	int k, got, ret;
	char want[64];

	mix_log_rotate_to(dir, 9, 1, 0, 0, &w);
	for (int i = 0; i < 12; i++) {
		struct mix_log_uid_range rg = { (uint32_t)i + 1, (uint32_t)i + 1 };
		size_t start;
		b.len = 0;
		mix_logenc_begin(&b, &start);
		mix_logenc_flags(&b, MIX_FLAG_FLAGGED, 0, &rg, 1);
		mix_logenc_ext_hdr(&b, 0, 0, "0123456789abcdef", 16);
		mix_logenc_end(&b, start);
		if (w.synced == w.offset)      /* the lead's rule */
			mix_logenc_mark_prev_synced(&b, start);
		offs[i] = w.offset;
		if (mix_log_append(&w, b.data, b.len) < 0 || mix_log_sync(&w) < 0)
			BAIL("append/sync: %s", mix_last_error());
	}
	offs[12] = w.offset;
	mix_log_writer_close(&w);
	file = tu_read_file(path, &fsize);
	for (k = 0; offs[k + 1] <= 300; k++)
		;
	file[300] ^= 0x40;
	tu_write_file(path, file, fsize);

	ret = mix_log_reader_open(path, &r);
	got = ret == 0 ? count_txns(&r, NULL) : ret;
	snprintf(want, sizeof(want), "offset %llu", (unsigned long long)offs[k]);
	if (!ok(got == k && r.torn && r.torn_offset == offs[k] && r.damaged &&
		r.damage_proof == offs[k + 1] && r.next_valid == offs[k + 1] &&
		r.valid_after == 11 - (uint32_t)k,
		"damage: byte 300 flipped in transaction %d of 12 synced ones: "
		"%d read, then damaged (not torn) at %llu, proof at %llu, %u "
		"well-framed after", k, got, (unsigned long long)r.torn_offset,
		(unsigned long long)r.damage_proof, r.valid_after))
		diag("  damaged %d next_valid %llu: %s", r.damaged,
		     (unsigned long long)r.next_valid, r.torn_reason);
	ok(has(r.torn_reason, path) && has(r.torn_reason, want) &&
	   has(r.torn_reason, "damage") && has(r.torn_reason, "PREV_SYNCED"),
	   "damage: the reason names file, offset, proof: %s", r.torn_reason);
	is(mix_log_reader_skip_damage(&r), 1, "damage: salvage skips to the "
	   "next well-framed transaction");
	ok(!r.torn && !r.damaged && r.pos == offs[k + 1], "damage: torn "
	   "cleared, position %llu", (unsigned long long)r.pos);
	got = count_txns(&r, &first);
	ok(got == 11 - k && first == offs[k + 1] && !r.torn &&
	   r.pos == offs[12], "damage: salvage reads the %d after it (%d)",
	   11 - k, got);
	is(mix_log_reader_skip_damage(&r), 0, "damage: nothing more to skip");
	mix_log_reader_close(&r);

	/* the same bytes without PREV_SYNCED (durability NONE): a torn tail
	 * that says how many well-framed transactions it drops */
	for (int i = 0; i < 12; i++) {
		file[offs[i] + 6] = 0;
		if (offs[i] != offs[k])
			fix_txn_crc(file + offs[i], (uint32_t)(offs[i + 1] - offs[i]));
	}
	tu_write_file(path, file, fsize);
	ret = mix_log_reader_open(path, &r);
	got = ret == 0 ? count_txns(&r, NULL) : ret;
	snprintf(want, sizeof(want), "%u well-framed", 11 - k);
	ok(got == k && r.torn && !r.damaged && r.valid_after == 11 - (uint32_t)k &&
	   r.next_valid == offs[k + 1] && has(r.torn_reason, want) &&
	   has(r.torn_reason, "torn tail"), "damage: unsynced, the same flip "
	   "is a torn tail that counts what it drops: %s", r.torn_reason);
	mix_log_reader_close(&r);
	free(file);
	mix_buf_free(&b);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

/* Every byte of a middle transaction flipped (buffer reader): damaged,
 * with the rest found; a cut inside the last one: torn, nothing after. */
static void test_damage_flips(void)
{
	enum { N = 10, K = 4 };
	uint8_t synced[N];
	uint64_t offs[N + 1];
	struct mix_buf b = { 0 };
	struct mix_log_reader r;
	int fails = 0, tries = 0;

	memset(synced, 1, sizeof(synced));
	build_log(&b, 3, N, synced, 40, offs);
	for (uint64_t i = offs[K]; i < offs[K + 1]; i++) {
		uint8_t *copy = malloc(b.len);
		int got;
		memcpy(copy, b.data, b.len);
		copy[i] ^= 0x10;
		tries++;
		mix_log_reader_from_buf(copy, b.len, "flip.log", &r);
		got = count_txns(&r, NULL);
		if ((got != K || !r.torn || !r.damaged ||
		     r.torn_offset != offs[K] || r.next_valid != offs[K + 1] ||
		     r.valid_after != N - K - 1) && fails++ == 0)
			diag("byte %llu: %d txns, torn %d damaged %d next %llu "
			     "after %u: %s", (unsigned long long)i, got, r.torn,
			     r.damaged, (unsigned long long)r.next_valid,
			     r.valid_after, r.torn_reason);
		mix_log_reader_close(&r);
		free(copy);
	}
	is(fails, 0, "damage: each of %d flips in synced transaction %d is "
	   "damage with %d well-framed after it", tries, K, N - K - 1);
	mix_log_reader_from_buf(b.data, offs[N] - 5, "cut.log", &r);
	ok(count_txns(&r, NULL) == N - 1 && r.torn && !r.damaged &&
	   r.valid_after == 0 && r.next_valid == 0 &&
	   mix_log_reader_skip_damage(&r) == 0, "damage: a cut last "
	   "transaction is a torn tail with nothing after it");
	mix_log_reader_close(&r);
	/* a major-2 file: flag 0x1 is no boundary, so a flagged transaction
	 * after a bad one is not found (and proves nothing) */
	build_log(&b, 2, N, NULL, 40, offs);
	{
		uint8_t *copy = malloc(b.len);
		memcpy(copy, b.data, b.len);
		copy[offs[K] + 20] ^= 1;
		copy[offs[K + 1] + 6] = 1;
		fix_txn_crc(copy + offs[K + 1], (uint32_t)(offs[K + 2] - offs[K + 1]));
		mix_log_reader_from_buf(copy, b.len, "v2.log", &r);
		ok(count_txns(&r, NULL) == K && r.torn && !r.damaged &&
		   r.next_valid == offs[K + 2] && r.valid_after == N - K - 2,
		   "damage: in a major-2 file PREV_SYNCED is not a flag: torn, "
		   "next_valid %llu, %u after", (unsigned long long)r.next_valid,
		   r.valid_after);
		mix_log_reader_close(&r);
		free(copy);
	}
	mix_buf_free(&b);
}

/* Windows: a log of several MiB through a file, damage early and the
 * proof late (the scan crosses windows), salvage, and a second bad spot. */
static void test_damage_windows(void)
{
	enum { N = 160 };
	char *dir = tu_tmpdir("txlog-dmgw"), *path = path_in(dir, MIX_LOG_FILENAME);
	uint8_t synced[N] = { 0 };
	uint64_t offs[N + 1], first = 0;
	struct mix_buf b = { 0 };
	struct mix_log_reader r;
	int got;

	synced[150] = 1;
	build_log(&b, 3, N, synced, 40000, offs);
	b.data[offs[3] + 100] ^= 1;                /* bad CRC in txn 3 */
	memset(b.data + offs[80], 0, 16);        /* no boundary at txn 80 */
	tu_write_file(path, b.data, b.len);
	mix_log_reader_open(path, &r);
	got = count_txns(&r, NULL);
	ok(got == 3 && r.torn && r.damaged && r.torn_offset == offs[3] &&
	   r.next_valid == offs[4] && r.damage_proof == offs[150] &&
	   r.valid_after == N - 5, "windows: a %zu-byte log, damaged at txn 3, "
	   "proof at txn 150: %d read, %u well-framed after, proof %llu",
	   b.len, got, r.valid_after, (unsigned long long)r.damage_proof);
	ok(r.cap <= MIX_LOG_WINDOW, "windows: the buffer stayed at %llu bytes",
	   (unsigned long long)r.cap);
	mix_log_reader_skip_damage(&r);
	got = count_txns(&r, &first);
	ok(got == 76 && first == offs[4] && r.torn && r.torn_offset == offs[80]
	   && r.damaged && r.next_valid == offs[81] &&
	   r.valid_after == N - 81, "windows: salvage reads txns 4..79 (%d), "
	   "stops damaged at txn 80 with %u after", got, r.valid_after);
	ok(mix_log_reader_skip_damage(&r) == 1 &&
	   count_txns(&r, &first) == N - 81 && first == offs[81] && !r.torn,
	   "windows: and again to the end");
	mix_log_reader_close(&r);
	/* the same read without damage, from the start and from a seek */
	build_log(&b, 3, N, NULL, 40000, offs);
	tu_write_file(path, b.data, b.len);
	mix_log_reader_open(path, &r);
	ok(count_txns(&r, NULL) == N && !r.torn && r.pos == offs[N] &&
	   r.cap <= MIX_LOG_WINDOW, "windows: all %d transactions of %zu bytes "
	   "in a window of at most %u", N, b.len, MIX_LOG_WINDOW);
	mix_log_reader_seek(&r, offs[77]);
	ok(count_txns(&r, &first) == N - 77 && first == offs[77],
	   "windows: from a seek to txn 77");
	mix_log_reader_close(&r);
	mix_buf_free(&b);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

/* A transaction larger than the window is read whole; a forged one is
 * CRC-checked in pieces, never allocated. */
static void test_big_txn(void)
{
	enum { BIG = 3 * MIX_LOG_WINDOW / 2 };
	char *dir = tu_tmpdir("txlog-big"), *path = path_in(dir, MIX_LOG_FILENAME);
	struct mix_buf b = { 0 };
	struct mix_log_reader r;
	uint64_t offs[3];
	uint8_t *flags = calloc(1, BIG);
	const uint8_t *x;
	int got;
	uint32_t s;
	uint64_t o;
	size_t start, big_off;

	build_log(&b, 3, 2, NULL, 0, offs);
	big_off = b.len;
	mix_logenc_begin(&b, &start);
	if (mix_logenc_append_run(&b, 100, flags, BIG) < 0)
		BAIL("append_run: %s", mix_last_error());
	mix_logenc_end(&b, start);
	tu_write_file(path, b.data, b.len);
	mix_log_reader_open(path, &r);
	got = count_txns(&r, NULL);
	ok(got == 3 && !r.torn && r.cap >= b.len - big_off &&
	   r.cap <= b.len - big_off + MIX_LOG_WINDOW, "big: a %zu-byte "
	   "transaction is read whole (buffer %llu)", b.len - big_off,
	   (unsigned long long)r.cap);
	mix_log_reader_close(&r);
	b.data[b.len - 1] ^= 1;
	tu_write_file(path, b.data, b.len);
	mix_log_reader_open(path, &r);
	got = count_txns(&r, NULL);
	ok(got == 2 && r.torn && r.torn_offset == big_off &&
	   has(r.torn_reason, "CRC32C") && r.cap <= MIX_LOG_WINDOW,
	   "big: with a bad CRC it is torn, checked in pieces (buffer %llu): "
	   "%s", (unsigned long long)r.cap, r.torn_reason);
	mix_log_reader_close(&r);
	mix_log_reader_from_buf(b.data, b.len, "big.log", &r);
	ok(mix_log_reader_next(&r, &x, &s, &o) == 1 &&
	   mix_log_reader_next(&r, &x, &s, &o) == 1 &&
	   mix_log_reader_next(&r, &x, &s, &o) == 0 && r.torn,
	   "big: the same from a buffer");
	mix_log_reader_close(&r);
	/* the same transaction (its flags are zeros) with a hole in the
	 * middle: the CRC of the hole is computed, not read (§3.4) */
	b.data[b.len - 1] ^= 1;
	{
		int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
		size_t head = 8192, tail_at = (b.len - 8192) & ~(size_t)4095;
		int made = fd >= 0 && ftruncate(fd, (off_t)b.len) == 0 &&
			   pwrite(fd, b.data, head, 0) == (ssize_t)head &&
			   pwrite(fd, b.data + tail_at, b.len - tail_at,
				  (off_t)tail_at) == (ssize_t)(b.len - tail_at);
		got = -1;
		if (fd >= 0)
			close(fd);
		if (made && mix_log_reader_open(path, &r) == 0) {
			got = 0;
			while (mix_log_reader_next(&r, &x, &s, &o) == 1)
				if (++got == 3 && (s != b.len - big_off ||
				    memcmp(x, b.data + big_off, s) != 0))
					got = -2;
			mix_log_reader_close(&r);
		}
		ok(!made || got == 3, "big: a transaction with a hole inside "
		   "is read whole (%d of 3)", got);
	}
	free(flags);
	mix_buf_free(&b);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

/* ---- bad files: sparse, FIFO, directory, device, symlinks (§3) -------- */

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* A sparse log of 4 GiB - 4 bytes (inside the limit) with a header and a
 * few transactions, then a hole (and, in the second case, a PREV_SYNCED
 * transaction near the end): it must open and read without reading or
 * allocating gigabytes.  Checked by the reader's buffer size and the
 * process's peak RSS (no timing limit; the CPU time is printed). */
static void test_sparse_log(void)
{
	char *dir = tu_tmpdir("txlog-sparse"), *path = path_in(dir, MIX_LOG_FILENAME);
	const uint64_t fsize = MIX_LOG_SIZE_MAX - 4, tail_off = fsize - 4096 - 64;
	uint8_t synced[4] = { 0, 0, 0, 1 };
	struct mix_buf b = { 0 };
	struct mix_log_reader r;
	uint64_t offs[5], first = 0;
	long rss0 = maxrss_kb();
	double cpu0 = cpu_seconds();
	int fd, got, ret;

	build_log(&b, 3, 4, synced, 0, offs);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	if (fd < 0 || pwrite(fd, b.data, offs[3], 0) != (ssize_t)offs[3] ||
	    ftruncate(fd, (off_t)fsize) < 0) {
		ok(1, "# skip cannot make a sparse 4 GiB file");
		goto out;
	}
	ret = mix_log_reader_open(path, &r);
	got = ret == 0 ? count_txns(&r, NULL) : ret;
	ok(got == 3 && r.torn && r.torn_offset == offs[3] && !r.damaged &&
	   r.valid_after == 0 && has(r.torn_reason, "zero bytes") &&
	   r.size == fsize && r.cap <= MIX_LOG_WINDOW, "sparse: a %llu-byte "
	   "log: 3 transactions, then a zero tail (%s), buffer %llu",
	   (unsigned long long)fsize, r.torn_reason, (unsigned long long)r.cap);
	mix_log_reader_close(&r);
	/* the fourth transaction (PREV_SYNCED) near the end, after the hole */
	if (pwrite(fd, b.data + offs[3], offs[4] - offs[3], (off_t)tail_off) !=
	    (ssize_t)(offs[4] - offs[3]))
		BAIL("pwrite");
	ret = mix_log_reader_open(path, &r);
	got = ret == 0 ? count_txns(&r, NULL) : ret;
	ok(got == 3 && r.torn && r.torn_offset == offs[3] && r.damaged &&
	   r.next_valid == tail_off && r.valid_after == 1 &&
	   r.cap <= MIX_LOG_WINDOW, "sparse: the transaction after the hole is "
	   "found (%llu), and proves damage: %s",
	   (unsigned long long)r.next_valid, r.torn_reason);
	ok(mix_log_reader_skip_damage(&r) == 1 && count_txns(&r, &first) == 1 &&
	   first == tail_off && r.torn && r.valid_after == 0,
	   "sparse: salvage reads it, then the zero tail after it");
	mix_log_reader_close(&r);
	/* a boundary at the start that claims the whole file: its CRC is
	 * checked over the hole without reading or allocating it */
	{
		uint8_t bd[16] = { 16, 0, 0, 0, 1, 0, 0, 0 };
		put32(bd + 8, (uint32_t)(fsize - offs[0]) & ~3u);
		put32(bd + 12, 0x12345678);
		if (pwrite(fd, bd, 16, (off_t)offs[0]) != 16)
			BAIL("pwrite");
		ret = mix_log_reader_open(path, &r);
		got = ret == 0 ? count_txns(&r, NULL) : ret;
		ok(got == 0 && r.torn && r.torn_offset == offs[0] &&
		   has(r.torn_reason, "CRC32C") && r.cap <= MIX_LOG_WINDOW,
		   "sparse: a boundary claiming %u bytes is checked over the "
		   "hole, buffer %llu: %s", get32(bd + 8),
		   (unsigned long long)r.cap, r.torn_reason);
		mix_log_reader_close(&r);
	}
	ok(maxrss_kb() - rss0 < 256 * 1024, "sparse: peak RSS grew by %ld KiB "
	   "(less than 256 MiB)", maxrss_kb() - rss0);
	diag("sparse: the three reads took %.3f s of CPU", cpu_seconds() - cpu0);
out:
	if (fd >= 0)
		close(fd);
	mix_buf_free(&b);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

static void on_alarm(int sig)
{
	(void)sig;
	printf("not ok - a reader open hung (alarm after 20 s)\nBail out!\n");
	fflush(stdout);
	_exit(1);
}

static void test_bad_file_types(const uint8_t *file, size_t fsize)
{
	char *dir = tu_tmpdir("txlog-types"), *path = path_in(dir, MIX_LOG_FILENAME);
	char *real = path_in(dir, "real.log");
	struct mix_log_reader r;
	int ret;

	signal(SIGALRM, on_alarm);
	alarm(20);               /* hang guard, not a time limit */
	if (mkfifo(path, 0644) == 0) {
		ret = mix_log_reader_open(path, &r);
		ok(ret == MIX_ECORRUPT && has(mix_last_error(), path) &&
		   has(mix_last_error(), "FIFO"), "types: a FIFO is refused at "
		   "once (%d): %s", ret, mix_last_error());
		unlink(path);
	} else {
		ok(1, "# skip mkfifo: %s", strerror(errno));
	}
	mkdir(path, 0755);
	ret = mix_log_reader_open(path, &r);
	ok(ret == MIX_ECORRUPT && has(mix_last_error(), "directory"),
	   "types: a directory is refused (%d): %s", ret, mix_last_error());
	rmdir(path);
	if (symlink("/dev/zero", path) == 0) {
		ret = mix_log_reader_open(path, &r);
		ok(ret == MIX_ECORRUPT && has(mix_last_error(),
		   "character device"), "types: a symlink to /dev/zero is "
		   "refused (%d): %s", ret, mix_last_error());
		unlink(path);
	} else {
		ok(1, "# skip symlink");
	}
	if (symlink("gone.log", path) == 0) {
		ret = mix_log_reader_open(path, &r);
		ok(ret == MIX_ECORRUPT && has(mix_last_error(), "symbolic link"),
		   "types: a dangling symlink is corrupt, not a missing log "
		   "(%d): %s", ret, mix_last_error());
		unlink(path);
	} else {
		ok(1, "# skip symlink");
	}
	tu_write_file(real, file, fsize);
	if (symlink("real.log", path) == 0) {
		ret = mix_log_reader_open(path, &r);
		ok(ret == 0 && count_txns(&r, NULL) > 0 && !r.torn,
		   "types: a symlink to a regular log is followed (%d)", ret);
		mix_log_reader_close(&r);
		unlink(path);
	} else {
		ok(1, "# skip symlink");
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	free(real);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

/* A reader in another process follows the writer (mix_index_refresh
 * opens a new reader each time): a write in progress is the end for now,
 * and a new reader after it completes reads it. */
static void test_follow_writer(void)
{
	char *dir = tu_tmpdir("txlog-follow"), *path = path_in(dir, MIX_LOG_FILENAME);
	struct mix_log_writer w;
	struct mix_log_reader r;
	struct mix_buf b = { 0 };
	uint64_t offs[41];
	uint8_t synced[40];
	int got;

	memset(synced, 1, sizeof(synced));
	build_log(&b, 3, 40, synced, 30000, offs);
	mix_log_rotate_to(dir, 100, 1, 0, 0, &w);
	mix_log_append(&w, b.data + 48, offs[20] - 48);
	mix_log_reader_open(path, &r);
	got = count_txns(&r, NULL);
	ok(got == 20 && !r.torn, "follow: 20 transactions (%d)", got);
	mix_log_reader_close(&r);
	/* half of the next batch has landed */
	if (pwrite(w.fd, b.data + offs[20], (offs[30] - offs[20]) / 2 + 8,
		   (off_t)offs[20]) < 0)
		BAIL("pwrite");
	mix_log_reader_open(path, &r);
	got = count_txns(&r, NULL);
	if (!ok(got >= 20 && got < 30 && r.torn && !r.damaged, "follow: a write "
	   "in progress: %d transactions, then the end for now (torn, not "
	   "damage)", got))
		diag("  torn %d damaged %d: %s", r.torn, r.damaged,
		     r.torn_reason);
	mix_log_reader_close(&r);
	mix_log_append(&w, b.data + offs[20], offs[40] - offs[20]);
	mix_log_reader_open(path, &r);
	mix_log_reader_seek(&r, offs[18]);
	got = count_txns(&r, NULL);
	ok(got == 22 && !r.torn && r.pos == offs[40], "follow: once written, a "
	   "new reader from offset %llu reads the 22 after it (%d)",
	   (unsigned long long)offs[18], got);
	mix_log_reader_close(&r);
	mix_log_writer_close(&w);
	mix_buf_free(&b);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

/* The file reader (windows, SEEK_DATA) and the buffer reader (all of the
 * file in memory) agree on every random damage of a multi-window log:
 * the same transactions, stop, next_valid, valid_after, damaged, with
 * salvage to the end.  MIX_SEED replays it. */
static int read_all_salvage(struct mix_log_reader *r, uint64_t *sum_r,
			    int *stops_r, int *damaged_r)
{
	const uint8_t *x;
	uint32_t s;
	uint64_t o, sum = 0;
	int n = 0, ret;

	do {
		while ((ret = mix_log_reader_next(r, &x, &s, &o)) == 1) {
			n++;
			sum = sum * 31 + o + s;
		}
		if (ret < 0)
			return ret;
		sum = sum * 131 + r->torn_offset * 7 + r->next_valid * 3 +
		      r->valid_after * 5 + (uint64_t)r->damaged;
		*stops_r += r->torn;
		*damaged_r += r->damaged;
	} while (mix_log_reader_skip_damage(r) == 1);
	*sum_r = sum;
	return n;
}

static void test_damage_random(uint64_t seed)
{
	enum { N = 90, ROUNDS = 12 };
	char *dir = tu_tmpdir("txlog-dmgr"), *path = path_in(dir, MIX_LOG_FILENAME);
	uint8_t synced[N];
	uint64_t offs[N + 1], s = seed;
	struct mix_buf b = { 0 };
	int fails = 0, stops = 0, damaged = 0, unused = 0;

	printf("# damage random: seed %llu\n", (unsigned long long)seed);
	for (int round = 0; round < ROUNDS; round++) {
		struct mix_log_reader rf, rb;
		uint64_t sf = 0, sb = 0;
		int nf, nb, spots = 1 + (int)tu_rand_below(&s, 4);

		for (int i = 0; i < N; i++)
			synced[i] = tu_rand_below(&s, 4) == 0;
		build_log(&b, 3, N, synced, 40000, offs);
		for (int k = 0; k < spots; k++) {
			uint64_t at = 48 + tu_rand_below(&s, (uint32_t)(b.len - 48));
			uint32_t len = 1 + tu_rand_below(&s, 64);
			if (tu_rand_below(&s, 3) == 0)
				len = 1 + tu_rand_below(&s, 200000);
			if (at + len > b.len)
				len = (uint32_t)(b.len - at);
			if (tu_rand_below(&s, 2))
				memset(b.data + at, 0, len);
			else
				for (uint32_t i = 0; i < len; i++)
					b.data[at + i] ^= (uint8_t)(1 + tu_rand_below(&s, 255));
		}
		if (tu_rand_below(&s, 3) == 0)
			b.len -= tu_rand_below(&s, 100000);
		tu_write_file(path, b.data, b.len);
		mix_log_reader_open(path, &rf);
		mix_log_reader_from_buf(b.data, b.len, "x", &rb);
		nf = read_all_salvage(&rf, &sf, &stops, &damaged);
		nb = read_all_salvage(&rb, &sb, &unused, &unused);
		if ((nf != nb || sf != sb || nf < 0 || rf.cap > MIX_LOG_WINDOW +
		     (uint64_t)45000) && fails++ == 0)
			diag("round %d: file %d txns (sum %llx, cap %llu), buffer "
			     "%d (sum %llx)", round, nf, (unsigned long long)sf,
			     (unsigned long long)rf.cap, nb,
			     (unsigned long long)sb);
		mix_log_reader_close(&rf);
		mix_log_reader_close(&rb);
	}
	is(fails, 0, "damage random: file and buffer readers agree on %d "
	   "randomly damaged %d-transaction logs, salvage included (%d stops, "
	   "%d of them damage)", ROUNDS, N, stops, damaged);
	mix_buf_free(&b);
	free(path);
	tu_rmdir_r(dir);
	free(dir);
}

int main(void)
{
	uint64_t seed = tu_seed();
	struct wtxn *t;
	uint8_t *file;
	size_t fsize;
	int n;

	memset(all_set, 1, sizeof(all_set));
	tdir = tu_tmpdir("txlog");
	test_buf();
	test_encode_decode();
	test_encode_runs();
	test_encode_random(seed);
	test_encode_reject();
	test_framing(seed + 1, &t, &n, &file, &fsize);
	if (file == NULL)
		BAIL("cannot read back the log");
	test_crc_flips(file, fsize, t, 5);
	test_crc_flips(file, fsize, t, n - 1);
	test_every_prefix(file, fsize, t, n);
	test_torn_last(file, t, n);
	test_tails(file, fsize, t, n);
	test_empty_txn_valid(file, fsize, n);
	test_rotation(seed + 2);
	test_rotation_faults(seed + 3);
	test_append_faults(seed + 4);
	test_reader_window(seed + 8);
	test_headers(file);
	test_header_minor(file, t);
	test_header_major1(file, fsize, t, n);
	test_header_files();
	test_bad_records();
	test_bad_txn();
	test_replay_equiv(seed + 7);
	test_replay_equiv_flags();
	test_replay_ext_run_gaps();
	test_replay_bad_runs();
	test_fuzz(seed + 5);
	test_fuzz_reader(seed + 6, file);
	test_v3_records();
	test_v3_prev_synced_enc();
	test_v3_writer();
	test_damage_issue_case();
	test_damage_flips();
	test_damage_windows();
	test_big_txn();
	test_sparse_log();
	test_bad_file_types(file, fsize);
	test_follow_writer();
	test_damage_random(seed + 9);
	free_txns(t, n);
	free(file);
	tu_rmdir_r(tdir);
	free(tdir);
	return tap_done();
}
