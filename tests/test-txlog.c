/*
 * Tests of engine/txlog.c, the transaction log (docs/format.md §3, §4):
 * encoding every record type and decoding it back field by field; log
 * framing through real files; CRC and torn-tail detection at every byte;
 * zero-filled and garbage tails; rotation, including an I/O fault at each
 * step; append and sync failures; bad headers; malformed records of every
 * type; and a seeded fuzz loop (MIX_SEED=<n> replays it, MIX_TEST_SCALE
 * scales it).  Run under ASan/UBSan by `make asan`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"

#include "crc32c.h"
#include "err.h"
#include "fileio.h"
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
};

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
		return mix_logenc_ext_rec(b, m->ext_id, m->rec_size, m->uids,
					  m->data, m->count);
	case MIX_LOG_HDR:
		return mix_logenc_hdr(b, m->offset, m->data, m->size);
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
	default:
		return cmp_ext(m, op, why, n);
	}
}

/* Decode the whole transaction and compare with ops[0..nops).  0 or -1
 * with why. */
static int check_txn(const uint8_t *txn, uint32_t size, const struct mop *ops,
		     int nops, char *why, size_t n)
{
	struct mix_log_op op;
	uint32_t pos = 0;
	int i = 0, ret;

	while ((ret = mix_log_txn_next_op(txn, size, MIX_LOG_MAJOR, &pos, &op)) == 1) {
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

static void rand_mop(uint64_t *s, struct mop *m)
{
	uint32_t uid = 0;

	memset(m, 0, sizeof(*m));
	m->type = MIX_LOG_APPEND + tu_rand_below(s, MIX_LOG_HDR - 1);
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

static void fixed_ops(struct mop *o, int *n)
{
	int i = 0;
	memset(o, 0, sizeof(*o) * 20);
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
	*n = i;
}

static void test_encode_decode(void)
{
	static struct mop ops[20];
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
	ok(b.len % 4 == 0, "enc: transaction size %zu is a multiple of 4", b.len);
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

static void test_encode_random(uint64_t seed)
{
	static struct mop ops[8];
	struct mix_buf b = { 0 };
	char why[300];
	int iters = (int)(500 * tu_scale()), fails = 0, nops;

	for (int it = 0; it < iters; it++) {
		b.len = 0;
		size_t start = rand_txn(&seed, &b, ops, &nops);
		if (check_txn(b.data + start, (uint32_t)(b.len - start), ops, nops,
			      why, sizeof(why)) < 0 && fails++ == 0)
			diag("iteration %d: %s", it, why);
	}
	is(fails, 0, "enc/dec: %d random transactions decode to what was "
	   "encoded", iters);
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
	boundary_tail(b, 16, MIX_LOG_BOUNDARY, 1, 32);
	tail_case(file, fsize, t, n, b, 32, "flags 0x1", "boundary flags");
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
	memcpy(h, good, 48); h[4] = MIX_LOG_MAJOR + 1; fix_hdr_crc(h);
	HDR_CASE(MIX_EVERSION, "major_version", "hdr: newer major → "
		 "MIX_EVERSION");
	memcpy(h, good, 48); h[4] = 0; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "major_version", "hdr: major 0 → MIX_ECORRUPT");
	memcpy(h, good, 48); h[32] = 0; fix_hdr_crc(h);
	HDR_CASE(MIX_EVERSION, "byte order", "hdr: no little-endian flag → "
		 "MIX_EVERSION");
	memcpy(h, good, 48); h[32] = 3; fix_hdr_crc(h);
	HDR_CASE(MIX_EVERSION, "unknown compatibility", "hdr: unknown compat "
		 "bit → MIX_EVERSION");
	memcpy(h, good, 48); h[35] = 1; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "reserved", "hdr: unused byte set in a minor-0 "
		 "file");
	memcpy(h, good, 48); h[40] = 1; fix_hdr_crc(h);
	HDR_CASE(MIX_ECORRUPT, "reserved", "hdr: reserved set in a minor-0 file");
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
	{ "type 13", 13, 0, 0, 0, { 0 }, "type 13 is not" },
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
		ret = mix_log_txn_next_op(b.data, (uint32_t)b.len, MIX_LOG_MAJOR, &pos, &op);
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
	mix_buf_free(&b);
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

/* Decode a (possibly garbage) transaction: 0 if every result was legal. */
static int fuzz_decode(const uint8_t *txn, uint32_t size, int *n_ok)
{
	struct mix_log_op op;
	uint32_t pos = 0, prev;
	int ret;

	for (int guard = 0; guard < 100000; guard++) {
		prev = pos;
		ret = mix_log_txn_next_op(txn, size, MIX_LOG_MAJOR, &pos, &op);
		if (ret == 0) {
			(*n_ok)++;
			return 0;
		}
		if (ret == MIX_ECORRUPT)
			return 0;
		if (ret != 1 || pos <= prev || pos > size ||
		    !op_in_bounds(&op, txn, size))
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
	int n_ok = 0, reader_bad = 0, nops;
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
		if (check_txn(b.data + 48, size, ops, nops, why, 300) < 0 &&
		    model_bad++ == 0)
			diag("fuzz iteration %d: unmutated: %s", it, why);
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
		if (fuzz_decode(b.data + 48, size, &n_ok) < 0 && bad++ == 0)
			diag("fuzz iteration %d: illegal decoder result", it);
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
	   "its model");
	is(bad, 0, "fuzz: mutated transactions decode or give MIX_ECORRUPT; "
	   "ops stay inside the transaction");
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

int main(void)
{
	uint64_t seed = tu_seed();
	struct wtxn *t;
	uint8_t *file;
	size_t fsize;
	int n;

	tdir = tu_tmpdir("txlog");
	test_buf();
	test_encode_decode();
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
	test_headers(file);
	test_header_minor(file, t);
	test_header_files();
	test_bad_records();
	test_bad_txn();
	test_fuzz(seed + 5);
	test_fuzz_reader(seed + 6, file);
	free_txns(t, n);
	free(file);
	tu_rmdir_r(tdir);
	free(tdir);
	return tap_done();
}
