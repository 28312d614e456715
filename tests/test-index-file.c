/*
 * Tests of engine/index-file.c: mix.index as docs/format.md §2 defines it.
 *
 * - round trips: a model (header, extensions, keywords, records) is
 *   written with mix_ifile_write in runs and read back with
 *   mix_ifile_open; every header field is compared at the offset §2.1
 *   gives, every extension and keyword, every record byte;
 * - verification (§2.5): every truncation and every single-byte flip of a
 *   small file, garbage, and one case per rule with the checksum
 *   recomputed so that the rule itself (not the CRC) must catch it; the
 *   error message must name the field;
 * - the checkpoint writer refuses what the reader would refuse and leaves
 *   the old file untouched on every error, including injected I/O
 *   failures.
 * Random parts print their seed (MIX_SEED replays them).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mix/mix.h"
#include "crc32c.h"
#include "fileio.h"
#include "index-file.h"
#include "tap.h"
#include "testutil.h"

#define MAX_EXTS 16
#define HIGHEST_MODSEQ UINT64_C(0x0123456789abcdef)

static uint64_t seed;
static char *tmp_root;

/* ---- little helpers ------------------------------------------------- */

static uint64_t rd(const uint8_t *p, size_t off, unsigned size)
{
	uint64_t x = 0;
	memcpy(&x, p + off, size);      /* little-endian host */
	return x;
}

static void wr(uint8_t *p, size_t off, unsigned size, uint64_t x)
{
	memcpy(p + off, &x, size);
}

static uint64_t up8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

/* §1: CRC32C of the file with the checksum field as 0, via the table
 * implementation (the writer may have used the instruction). */
static uint32_t file_crc(const uint8_t *buf, size_t size)
{
	uint8_t *copy = malloc(size);
	uint32_t crc;
	if (copy == NULL)
		BAIL("out of memory");
	memcpy(copy, buf, size);
	wr(copy, 108, 4, 0);
	crc = mix_crc32c_sw(0, copy, size);
	free(copy);
	return crc;
}

static void fix_crc(uint8_t *buf, size_t size)
{
	wr(buf, 108, 4, file_crc(buf, size));
}

static char *subdir(const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", tmp_root, name) < 0 || mkdir(p, 0700) < 0)
		BAIL("mkdir %s", name);
	return p;
}

static char *path_in(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		BAIL("out of memory");
	return p;
}

/* ---- the model ------------------------------------------------------ */

struct model {
	struct mix_index_header hdr;
	uint16_t record_size;
	uint32_t rec_end;               /* end of the record data placed */
	uint32_t ext_count;
	struct mix_ifile_ext exts[MAX_EXTS];
	uint8_t *ext_data[MAX_EXTS];
	uint32_t keyword_count;
	char **keywords;
	uint8_t *recs;
	uint32_t rec_count;
};

/* Keyword i: long, punctuated and UTF-8 names among plain ones. */
static char *keyword_name(uint32_t i)
{
	char *s;
	if (i == 0) {
		s = malloc(MIX_MAX_KEYWORD_LEN + 1);
		if (s == NULL)
			BAIL("out of memory");
		memset(s, 'L', MIX_MAX_KEYWORD_LEN);
		s[MIX_MAX_KEYWORD_LEN] = '\0';
		return s;
	}
	if (i == 1)
		return strdup("$Important");
	if (i == 2)
		return strdup("\xc3\x9cnic\xc3\xb6" "de");
	if (asprintf(&s, "kw-%u-%c", i, 'a' + (char)(i % 26)) < 0)
		BAIL("out of memory");
	return s;
}

static void model_init(struct model *m, uint32_t keyword_count,
		       uint16_t kw_bytes)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->exts[0].name, sizeof(m->exts[0].name), "modseq");
	m->exts[0].rec_offset = 8;
	m->exts[0].rec_size = 8;
	m->exts[0].rec_align = 8;
	snprintf(m->exts[1].name, sizeof(m->exts[1].name), "keywords");
	m->exts[1].rec_offset = 16;
	m->exts[1].rec_size = kw_bytes;
	m->exts[1].rec_align = 4;
	m->exts[1].reset_id = 3;
	m->ext_count = 2;
	m->rec_end = 16u + kw_bytes;
	m->keyword_count = keyword_count;
	m->keywords = calloc(keyword_count + 1, sizeof(char *));
	for (uint32_t i = 0; i < keyword_count; i++)
		m->keywords[i] = keyword_name(i);
}

/* Add an extension; its record data goes after the last one, aligned. */
static void model_add_ext(struct model *m, const char *name, uint16_t rec_size,
			  uint16_t align, uint32_t hdr_size, uint32_t reset_id)
{
	struct mix_ifile_ext *e = &m->exts[m->ext_count];
	uint8_t *data = malloc(hdr_size ? hdr_size : 1);

	if (m->ext_count == MAX_EXTS || data == NULL)
		BAIL("model_add_ext");
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->reset_id = reset_id;
	e->rec_size = rec_size;
	e->rec_align = align;
	if (rec_size > 0) {
		e->rec_offset = (uint16_t)((m->rec_end + align - 1) / align *
					   align);
		m->rec_end = e->rec_offset + rec_size;
	}
	for (uint32_t i = 0; i < hdr_size; i++)
		data[i] = (uint8_t)tu_rand(&seed);
	e->hdr = data;
	e->hdr_size = hdr_size;
	m->ext_data[m->ext_count++] = data;
}

/* Distinctive values in every header field the caller provides. */
static void model_header(struct model *m)
{
	struct mix_index_header *h = &m->hdr;

	h->indexid = 0x0a0b0c0du;
	h->flags = MIX_HDR_FLAG_HAVE_DIRTY | MIX_HDR_FLAG_FSCK;
	h->uid_validity = 0x5eed0001u;
	h->first_recent_uid = 0x00000777u;
	h->log_file_seq = 0x00001234u;
	h->log_file_head_offset = 0x00abcdefu;
	h->highest_modseq = HIGHEST_MODSEQ;
	h->day_stamp = 0x61000000u;
	for (int i = 0; i < 8; i++)
		h->day_first_uid[i] = 0x100u * (uint32_t)(i + 1) + (uint32_t)i;
}

/* Counts and low-water marks from the records (§2.1). */
static void model_summarize(struct model *m)
{
	struct mix_index_header *h = &m->hdr;
	uint32_t last = 0, unseen = 0, deleted = 0;

	h->messages_count = m->rec_count;
	h->seen_messages_count = h->deleted_messages_count = 0;
	for (uint32_t i = 0; i < m->rec_count; i++) {
		const uint8_t *r = m->recs + (size_t)i * m->record_size;
		uint32_t uid = (uint32_t)rd(r, 0, 4);
		if (r[4] & MIX_FLAG_SEEN)
			h->seen_messages_count++;
		else if (unseen == 0)
			unseen = uid;
		if (r[4] & MIX_FLAG_DELETED) {
			h->deleted_messages_count++;
			if (deleted == 0)
				deleted = uid;
		}
		last = uid;
	}
	h->next_uid = last + 8;
	h->first_unseen_uid_lowwater = unseen ? unseen : h->next_uid;
	h->first_deleted_uid_lowwater = deleted ? deleted : h->next_uid;
}

static void model_record(struct model *m, uint8_t *r, uint32_t uid)
{
	const struct mix_ifile_ext *kw = &m->exts[1];

	wr(r, 0, 4, uid);
	r[4] = (uint8_t)tu_rand(&seed) & MIX_FLAGS_ALL;
	wr(r, 8, 8, tu_rand(&seed) % (HIGHEST_MODSEQ + 1));
	for (uint32_t b = 0; b < kw->rec_size; b++) {
		uint32_t bit0 = b * 8;
		uint8_t x = (uint8_t)tu_rand(&seed);
		if (bit0 + 8 > m->keyword_count)
			x &= bit0 >= m->keyword_count ? 0 :
				(uint8_t)((1u << (m->keyword_count - bit0)) - 1);
		r[16 + b] = x;
	}
	for (uint32_t e = 2; e < m->ext_count; e++) {
		for (uint32_t k = 0; k < m->exts[e].rec_size; k++)
			r[m->exts[e].rec_offset + k] = (uint8_t)tu_rand(&seed);
	}
}

/* count random records with increasing UIDs. */
static void model_fill(struct model *m, uint32_t count)
{
	uint32_t uid = 0;

	m->record_size = (uint16_t)up8(m->rec_end);
	m->rec_count = count;
	m->recs = calloc(count ? count : 1, m->record_size);
	if (m->recs == NULL)
		BAIL("out of memory");
	for (uint32_t i = 0; i < count; i++) {
		uid += 1 + tu_rand_below(&seed, 5);
		model_record(m, m->recs + (size_t)i * m->record_size, uid);
	}
	model_header(m);
	model_summarize(m);
}

static void model_free(struct model *m)
{
	for (uint32_t i = 0; i < m->ext_count; i++)
		free(m->ext_data[i]);
	for (uint32_t i = 0; i < m->keyword_count; i++)
		free(m->keywords[i]);
	free(m->keywords);
	free(m->recs);
	memset(m, 0, sizeof(*m));
}

/* The record source: runs of random length (seeded), or all at once. */
struct runs {
	const uint8_t *recs;
	uint32_t count, record_size, pos;
	uint64_t rseed;                 /* 0: one run */
};

static int next_run(void *ctx, const uint8_t **recs_r, uint32_t *count_r)
{
	struct runs *r = ctx;
	uint32_t n = r->count - r->pos;

	if (n == 0)
		return 0;
	if (r->rseed != 0) {
		uint32_t k = 1 + tu_rand_below(&r->rseed, 3000);
		n = k < n ? k : n;
	}
	*recs_r = r->recs + (size_t)r->pos * r->record_size;
	*count_r = n;
	r->pos += n;
	return 1;
}

static void model_src(const struct model *m, struct runs *r,
		      struct mix_ifile_src *src)
{
	*r = (struct runs){ .recs = m->recs, .count = m->rec_count,
			    .record_size = m->record_size,
			    .rseed = tu_rand(&seed) | 1 };
	memset(src, 0, sizeof(*src));
	src->hdr = m->hdr;
	src->record_size = m->record_size;
	src->ext_count = m->ext_count;
	src->exts = m->exts;
	src->keyword_count = m->keyword_count;
	src->keywords = (const char *const *)m->keywords;
	src->next_run = next_run;
	src->ctx = r;
}

static int model_write(const struct model *m, const char *dir)
{
	struct runs r;
	struct mix_ifile_src src;
	model_src(m, &r, &src);
	return mix_ifile_write(-1, dir, &src);
}

/* ---- comparing a file with its model -------------------------------- */

/* The keywords header data §2.3 prescribes. */
static uint32_t kw_hdr_size(const struct model *m)
{
	uint32_t n = 4;
	for (uint32_t i = 0; i < m->keyword_count; i++)
		n += (uint32_t)strlen(m->keywords[i]) + 1;
	return n;
}

/* header_size computed from §2.2 independently of the writer. */
static uint32_t model_header_size(const struct model *m)
{
	uint64_t n = 120;
	for (uint32_t i = 0; i < m->ext_count; i++) {
		n += up8(16 + strlen(m->exts[i].name));
		n += up8(i == 1 ? kw_hdr_size(m) : m->exts[i].hdr_size);
	}
	return (uint32_t)n;
}

struct hfield {
	const char *name;
	unsigned off, size;
	uint64_t want;
};

/* Every §2.1 field, read at the offset the document gives. */
static void check_header(const char *what, const uint8_t *raw,
			 const struct model *m)
{
	const struct mix_index_header *h = &m->hdr;
	uint32_t hs = model_header_size(m);
	const struct hfield t[] = {
		{ "magic", 0, 4, MIX_INDEX_MAGIC },
		{ "major_version", 4, 1, MIX_INDEX_MAJOR },
		{ "minor_version", 5, 1, MIX_INDEX_MINOR },
		{ "base_header_size", 6, 2, 120 },
		{ "header_size", 8, 4, hs },
		{ "record_size", 12, 2, m->record_size },
		{ "compat_flags", 14, 1, MIX_COMPAT_LITTLE_ENDIAN },
		{ "unused0", 15, 1, 0 },
		{ "indexid", 16, 4, h->indexid },
		{ "flags", 20, 4, h->flags },
		{ "uid_validity", 24, 4, h->uid_validity },
		{ "next_uid", 28, 4, h->next_uid },
		{ "messages_count", 32, 4, m->rec_count },
		{ "seen_messages_count", 36, 4, h->seen_messages_count },
		{ "deleted_messages_count", 40, 4, h->deleted_messages_count },
		{ "first_recent_uid", 44, 4, h->first_recent_uid },
		{ "first_unseen_uid_lowwater", 48, 4,
		  h->first_unseen_uid_lowwater },
		{ "first_deleted_uid_lowwater", 52, 4,
		  h->first_deleted_uid_lowwater },
		{ "log_file_seq", 56, 4, h->log_file_seq },
		{ "log_file_head_offset", 60, 4, h->log_file_head_offset },
		{ "highest_modseq", 64, 8, h->highest_modseq },
		{ "day_stamp", 72, 4, h->day_stamp },
		{ "checksum", 108, 4, 0 /* below */ },
		{ "file_size", 112, 8,
		  hs + (uint64_t)m->rec_count * m->record_size },
	};
	size_t size = (size_t)t[23].want;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t want = i == 22 ? file_crc(raw, size) : t[i].want;
		is(rd(raw, t[i].off, t[i].size), want, "%s: header %s at "
		   "offset %u", what, t[i].name, t[i].off);
	}
	for (unsigned i = 0; i < 8; i++)
		is(rd(raw, 76 + 4 * i, 4), h->day_first_uid[i], "%s: header "
		   "day_first_uid[%u] at offset %u", what, i, 76 + 4 * i);
}

/* Walk the extension headers from the raw bytes (§2.2); offs gets each
 * header's offset.  Returns the count. */
static uint32_t walk_exts(const uint8_t *raw, uint32_t *offs, uint32_t max)
{
	uint32_t off = (uint32_t)rd(raw, 6, 2), end = (uint32_t)rd(raw, 8, 4);
	uint32_t n = 0;

	while (off < end && n < max) {
		offs[n++] = off;
		off = (uint32_t)up8(up8(off + 16 + rd(raw, off + 14, 2)) +
				    rd(raw, off, 4));
	}
	return n;
}

/* One extension, raw and as parsed, against the model. */
static void check_ext(const char *what, const uint8_t *raw, uint32_t off,
		      const struct mix_ifile_ext *got, const struct model *m,
		      uint32_t i, const uint8_t *kw)
{
	const struct mix_ifile_ext *e = &m->exts[i];
	uint32_t nlen = (uint32_t)strlen(e->name);
	uint32_t hsize = i == 1 ? kw_hdr_size(m) : e->hdr_size;
	const uint8_t *hdata = i == 1 ? kw : e->hdr;
	uint32_t data = (uint32_t)up8(off + 16 + nlen);
	int raw_ok = rd(raw, off, 4) == hsize && rd(raw, off + 4, 4) ==
		e->reset_id && rd(raw, off + 8, 2) == e->rec_offset &&
		rd(raw, off + 10, 2) == e->rec_size && rd(raw, off + 12, 2) ==
		e->rec_align && rd(raw, off + 14, 2) == nlen &&
		memcmp(raw + off + 16, e->name, nlen) == 0 &&
		(hsize == 0 || memcmp(raw + data, hdata, hsize) == 0);

	ok(raw_ok, "%s: ext %u \"%s\" at offset %u: raw fields and data as "
	   "§2.2 lays them out", what, i, e->name, off);
	ok(off % 8 == 0 && data % 8 == 0 && got->hdr == raw + data &&
	   (e->rec_size == 0 || e->rec_offset % e->rec_align == 0),
	   "%s: ext %u: header at %u and data at %u 8-aligned, record_offset "
	   "%u aligned to %u", what, i, off, data, e->rec_offset,
	   e->rec_align);
	ok(strcmp(got->name, e->name) == 0 && got->reset_id == e->reset_id &&
	   got->hdr_size == hsize && got->rec_offset == e->rec_offset &&
	   got->rec_size == e->rec_size && got->rec_align == e->rec_align,
	   "%s: ext %u parsed: name \"%s\" reset_id %u hdr_size %u "
	   "record %u+%u align %u", what, i, got->name, got->reset_id,
	   got->hdr_size, got->rec_offset, got->rec_size, got->rec_align);
}

static void check_body(const char *what, const struct mix_ifile *f,
		       const struct model *m)
{
	uint32_t offs[MAX_EXTS], n;
	uint8_t *kw = NULL;
	uint32_t kw_size = 0, bad = UINT32_MAX;
	const uint8_t *raw = f->map;
	size_t bytes = (size_t)m->rec_count * m->record_size;

	n = walk_exts(raw, offs, MAX_EXTS);
	is(f->ext_count, m->ext_count, "%s: ext_count", what);
	is(n, m->ext_count, "%s: extension headers walked", what);
	if (mix_ifile_keywords_encode((const char *const *)m->keywords,
				      m->keyword_count, &kw, &kw_size) < 0)
		BAIL("encode");
	for (uint32_t i = 0; i < n && i < f->ext_count; i++)
		check_ext(what, raw, offs[i], &f->exts[i], m, i, kw);
	free(kw);
	is(f->keyword_count, m->keyword_count, "%s: keyword_count", what);
	for (uint32_t i = 0; i < f->keyword_count && bad == UINT32_MAX; i++)
		if (strcmp(f->keywords[i], m->keywords[i]) != 0)
			bad = i;
	is(bad, UINT32_MAX, "%s: all %u keyword names", what,
	   f->keyword_count);
	ok(f->records == raw + model_header_size(m), "%s: records start at "
	   "header_size", what);
	bad = UINT32_MAX;
	for (size_t i = 0; i < bytes && bad == UINT32_MAX; i++)
		if (f->records[i] != m->recs[i])
			bad = (uint32_t)i;
	is(bad, UINT32_MAX, "%s: all %u records, every byte", what,
	   m->rec_count);
	if (bad != UINT32_MAX)
		diag("  first difference at record byte %u", bad);
}

/* ---- round trips ----------------------------------------------------- */

static void build_big(struct model *m, uint32_t records)
{
	model_init(m, 200, 32);
	model_add_ext(m, "u64", 16, 8, 0, 1);
	model_add_ext(m, "u32", 12, 4, 33, 2);
	model_add_ext(m, "u16", 6, 2, 0, 3);
	model_add_ext(m, "u8", 1, 1, 7, 4);
	model_add_ext(m, "header-only", 0, 1, 100, 5);
	model_add_ext(m, "future-unknown-ext", 100, 8, 4000, 6);
	model_add_ext(m, "vmap", 8, 4, MIX_EXT_HDR_MAX, 7);
	model_fill(m, records);
}

static void test_roundtrip_big(void)
{
	struct model m;
	struct mix_ifile f;
	char *dir = subdir("big"), *path = path_in(dir, "mix.index");
	int ret;

	build_big(&m, 20000);
	diag("big: %u records of %u bytes, %u keywords, %u extensions",
	     m.rec_count, m.record_size, m.keyword_count, m.ext_count);
	ret = model_write(&m, dir);
	is(ret, 0, "big: mix_ifile_write (%s)", ret ? mix_last_error() : "");
	ret = mix_ifile_open(path, &f);
	is(ret, 0, "big: mix_ifile_open (%s)", ret ? mix_last_error() : "");
	if (ret == 0) {
		ok(f.map != NULL && f.hdr == f.map && f.map_size ==
		   model_header_size(&m) + (size_t)m.rec_count * m.record_size,
		   "big: mapped the whole file");
		check_header("big", f.map, &m);
		check_body("big", &f, &m);
		mix_ifile_free(&f);
		ok(f.map == NULL && f.exts == NULL && f.keywords == NULL,
		   "big: mix_ifile_free zeroes the struct");
	}
	model_free(&m);
	free(path);
	free(dir);
}

/* Read a file, write it back from what was read (as a snapshot would
 * after a checkpoint), and compare the two files byte for byte: unknown
 * extensions and all header data are preserved (§1). */
static void test_rewrite_identical(void)
{
	struct model m;
	struct mix_ifile f;
	struct mix_ifile_src src;
	struct runs r;
	char *d1 = subdir("rw1"), *d2 = subdir("rw2");
	char *p1 = path_in(d1, "mix.index"), *p2 = path_in(d2, "mix.index");
	uint8_t *a, *b;
	size_t na = 0, nb = 0;

	build_big(&m, 3000);
	if (model_write(&m, d1) < 0 || mix_ifile_open(p1, &f) < 0)
		BAIL("rewrite: %s", mix_last_error());
	memset(&src, 0, sizeof(src));
	src.hdr = *f.hdr;
	src.record_size = f.hdr->record_size;
	src.ext_count = f.ext_count;
	src.exts = f.exts;
	src.keyword_count = f.keyword_count;
	src.keywords = f.keywords;
	r = (struct runs){ .recs = f.records, .count = f.hdr->messages_count,
			   .record_size = f.hdr->record_size, .rseed = 99 };
	src.next_run = next_run;
	src.ctx = &r;
	is(mix_ifile_write(-1, d2, &src), 0, "rewrite from a parsed file");
	mix_ifile_free(&f);
	a = tu_read_file(p1, &na);
	b = tu_read_file(p2, &nb);
	ok(a && b && na == nb && memcmp(a, b, na) == 0, "rewrite: the two "
	   "files are identical (%zu and %zu bytes), unknown extension "
	   "included", na, nb);
	free(a);
	free(b);
	model_free(&m);
	free(p1);
	free(p2);
	free(d1);
	free(d2);
}

static void test_empty(void)
{
	struct model m;
	struct mix_ifile f;
	char *dir = subdir("empty"), *path = path_in(dir, "mix.index");
	int ret;

	model_init(&m, 0, 0);
	model_fill(&m, 0);
	is(model_write(&m, dir), 0, "empty: write 0 messages, 0 keywords");
	ret = mix_ifile_open(path, &f);
	is(ret, 0, "empty: open (%s)", ret ? mix_last_error() : "");
	if (ret == 0) {
		check_header("empty", f.map, &m);
		check_body("empty", &f, &m);
		is(f.map_size, rd(f.map, 8, 4), "empty: file is the header");
		is(f.exts[1].rec_size, 0, "empty: keywords record_size 0");
		mix_ifile_free(&f);
	}
	model_free(&m);
	free(path);
	free(dir);
}

/* 4096 keywords of 255 bytes: the limits of mix.h, and a keywords header
 * of more than the writer's 1 MiB buffer. */
static void test_keyword_limits(void)
{
	struct model m;
	struct mix_ifile f;
	char *dir = subdir("kwmax"), *path = path_in(dir, "mix.index");
	int ret;

	model_init(&m, MIX_MAX_KEYWORDS, MIX_MAX_KEYWORDS / 8);
	for (uint32_t i = 0; i < m.keyword_count; i++) {
		size_t n = strlen(m.keywords[i]);
		char *s = realloc(m.keywords[i], MIX_MAX_KEYWORD_LEN + 1);
		if (s == NULL)
			BAIL("out of memory");
		memset(s + n, 'z', MIX_MAX_KEYWORD_LEN - n);
		s[MIX_MAX_KEYWORD_LEN] = '\0';
		m.keywords[i] = s;
	}
	model_fill(&m, 50);
	m.recs[16 + MIX_MAX_KEYWORDS / 8 - 1] = 0x80;   /* keyword 4095 */
	ok(kw_hdr_size(&m) > (1u << 20), "kwmax: keywords header is %u "
	   "bytes", kw_hdr_size(&m));
	ret = model_write(&m, dir);
	is(ret, 0, "kwmax: write (%s)", ret ? mix_last_error() : "");
	ret = mix_ifile_open(path, &f);
	is(ret, 0, "kwmax: open (%s)", ret ? mix_last_error() : "");
	if (ret == 0) {
		check_body("kwmax", &f, &m);
		mix_ifile_free(&f);
	}
	m.keywords = realloc(m.keywords, (m.keyword_count + 1) *
			     sizeof(char *));
	m.keywords[m.keyword_count++] = strdup("one-too-many");
	is(model_write(&m, dir), MIX_EINVAL, "kwmax: %u keywords refused",
	   m.keyword_count);
	model_free(&m);
	free(path);
	free(dir);
}

static void test_encode(void)
{
	const char *names[] = { "a", "bc" };
	const uint8_t want[] = { 2, 0, 0, 0, 'a', 0, 'b', 'c', 0 };
	uint8_t *buf = NULL;
	uint32_t size = 0;

	is(mix_ifile_keywords_encode(names, 2, &buf, &size), 0,
	   "keywords_encode");
	ok(size == sizeof(want) && memcmp(buf, want, size) == 0,
	   "keywords_encode: count then NUL-terminated names (§2.3)");
	free(buf);
}

/* ---- the small file for the corruption tests ----------------------- */

/* 2 keywords, extensions "x" (4-byte records, 5-byte header) and "y"
 * (header-only, empty), records uid 5 (SEEN), 6, 9 (SEEN|DELETED),
 * next_uid 17.  header_size 240, record_size 24, 312 bytes. */
static uint8_t *small_file(size_t *size_r)
{
	static const uint32_t uids[3] = { 5, 6, 9 };
	static const uint8_t flags[3] = { MIX_FLAG_SEEN, 0,
					  MIX_FLAG_SEEN | MIX_FLAG_DELETED };
	struct model m;
	char *dir = subdir("small"), *path = path_in(dir, "mix.index");
	uint8_t *buf;

	model_init(&m, 2, 4);
	free(m.keywords[0]);
	free(m.keywords[1]);
	m.keywords[0] = strdup("ab");
	m.keywords[1] = strdup("ac");
	model_add_ext(&m, "x", 4, 4, 5, 7);
	model_add_ext(&m, "y", 0, 1, 0, 0);
	model_fill(&m, 3);
	for (int i = 0; i < 3; i++) {
		uint8_t *r = m.recs + i * m.record_size;
		wr(r, 0, 4, uids[i]);
		r[4] = flags[i];
		wr(r, 8, 8, 100u * (uint32_t)(i + 1));
	}
	model_summarize(&m);
	if (model_write(&m, dir) < 0 || !(buf = tu_read_file(path, size_r)))
		BAIL("small file: %s", mix_last_error());
	model_free(&m);
	free(path);
	free(dir);
	return buf;
}

static int parse_buf(const uint8_t *buf, size_t size, struct mix_ifile *f)
{
	return mix_ifile_parse(buf, size, "small", f);
}

static int is_zeroed(const struct mix_ifile *f)
{
	return f->map == NULL && f->exts == NULL && f->keywords == NULL &&
		f->hdr == NULL && f->records == NULL && f->ext_count == 0;
}

static void test_small_valid(const uint8_t *good, size_t size)
{
	struct mix_ifile f;
	uint8_t *odd = malloc(size + 1);
	int ret;

	is(size, 312, "small: file is 312 bytes");
	ret = parse_buf(good, size, &f);
	is(ret, 0, "small: parses (%s)", ret ? mix_last_error() : "");
	ok(f.map == NULL && f.records == good + 240 && f.keyword_count == 2,
	   "small: parse takes no mapping; records at 240");
	mix_ifile_free(&f);
	/* nothing is read through a misaligned struct pointer */
	memcpy(odd + 1, good, size);
	ret = parse_buf(odd + 1, size, &f);
	is(ret, 0, "small: parses from an odd address (%s)",
	   ret ? mix_last_error() : "");
	mix_ifile_free_keep_map(&f);
	free(odd);
}

/* Every prefix of the file, from memory and from disk. */
static void test_truncations(const uint8_t *good, size_t size)
{
	char *dir = subdir("trunc"), *path = path_in(dir, "mix.index");
	struct mix_ifile f;
	size_t bad_mem = SIZE_MAX, bad_disk = SIZE_MAX;

	for (size_t n = 0; n < size; n++) {
		int r1 = parse_buf(good, n, &f);
		int r2;
		if ((r1 != MIX_ECORRUPT || !is_zeroed(&f)) && bad_mem == SIZE_MAX)
			bad_mem = n;
		if (tu_write_file(path, good, n) < 0)
			BAIL("write %s", path);
		r2 = mix_ifile_open(path, &f);
		if ((r2 != MIX_ECORRUPT || !is_zeroed(&f)) &&
		    bad_disk == SIZE_MAX)
			bad_disk = n;
	}
	is(bad_mem, SIZE_MAX, "every truncation 0..%zu: MIX_ECORRUPT "
	   "from mix_ifile_parse", size - 1);
	if (bad_mem != SIZE_MAX)
		diag("  first bad length %zu: %s", bad_mem, mix_last_error());
	is(bad_disk, SIZE_MAX, "every truncation 0..%zu: MIX_ECORRUPT "
	   "from mix_ifile_open", size - 1);
	if (bad_disk != SIZE_MAX)
		diag("  first bad length %zu", bad_disk);
	(void)parse_buf(good, 200, &f);
	ok(strstr(mix_last_error(), "file_size") != NULL, "truncated at 200: "
	   "message names file_size (%s)", mix_last_error());
	free(path);
	free(dir);
}

/* Each single-byte change, without fixing the CRC. */
static void test_flips(const uint8_t *good, size_t size)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff, 0x5a };
	uint8_t *buf = malloc(size);
	struct mix_ifile f;
	unsigned corrupt = 0, version = 0, bad = 0;

	for (size_t i = 0; i < size; i++) {
		for (size_t k = 0; k < sizeof(masks); k++) {
			int ret;
			memcpy(buf, good, size);
			buf[i] ^= masks[k];
			ret = parse_buf(buf, size, &f);
			if (ret == MIX_ECORRUPT)
				corrupt++;
			else if (ret == MIX_EVERSION)
				version++;
			if ((ret != MIX_ECORRUPT && ret != MIX_EVERSION) ||
			    !is_zeroed(&f)) {
				if (bad++ == 0)
					diag("  byte %zu ^ 0x%02x: %d", i,
					     masks[k], ret);
				mix_ifile_free(&f);
			}
		}
	}
	is(bad, 0, "every byte of %zu flipped 4 ways: MIX_ECORRUPT (%u) or "
	   "MIX_EVERSION (%u), never success", size, corrupt, version);
	free(buf);
}

/* A successful parse of a hostile buffer must only point inside it. */
static int parse_is_sane(const struct mix_ifile *f, const uint8_t *buf,
			 size_t size)
{
	const uint8_t *end = buf + size;
	if ((const uint8_t *)f->hdr != buf || f->records > end ||
	    (size_t)(end - f->records) != (size_t)f->hdr->messages_count *
	    f->hdr->record_size)
		return 0;
	for (uint32_t i = 0; i < f->ext_count; i++)
		if (f->exts[i].hdr < buf || f->exts[i].hdr_size >
		    (size_t)(f->records - f->exts[i].hdr))
			return 0;
	for (uint32_t i = 0; i < f->keyword_count; i++)
		if ((const uint8_t *)f->keywords[i] < buf ||
		    (const uint8_t *)f->keywords[i] +
		    strlen(f->keywords[i]) >= f->records)
			return 0;
	return 1;
}

/* Random mutations with the checksum recomputed: field checks only. */
static void test_fuzz(const uint8_t *good, size_t size)
{
	int rounds = (int)(20000 * tu_scale());
	uint8_t *buf = malloc(size);
	struct mix_ifile f;
	unsigned accepted = 0, bad = 0;

	for (int r = 0; r < rounds; r++) {
		int n = 1 + (int)tu_rand_below(&seed, 4), ret;
		memcpy(buf, good, size);
		for (int k = 0; k < n; k++) {
			size_t at = tu_rand_below(&seed, (uint32_t)size);
			if (at >= 108 && at < 112)
				continue;
			buf[at] = tu_rand_below(&seed, 3) == 0 ? 0 :
				(uint8_t)tu_rand(&seed);
		}
		fix_crc(buf, size);
		ret = parse_buf(buf, size, &f);
		if (ret == 0) {
			accepted++;
			if (!parse_is_sane(&f, buf, size) && bad++ == 0)
				diag("  round %d: accepted with a pointer "
				     "outside the buffer", r);
			mix_ifile_free(&f);
		} else if (ret != MIX_ECORRUPT && ret != MIX_EVERSION) {
			if (bad++ == 0)
				diag("  round %d: %d", r, ret);
		}
	}
	is(bad, 0, "%d random mutations with the checksum fixed: errors "
	   "or sane results (%u accepted)", rounds, accepted);
	free(buf);
}

static void test_garbage(const uint8_t *good, size_t size)
{
	uint8_t *buf = malloc(size);
	struct mix_ifile f;
	int bad = 0;

	memset(buf, 0, size);
	is(parse_buf(buf, size, &f), MIX_ECORRUPT, "all-zero file");
	memset(buf, 0xff, size);
	is(parse_buf(buf, size, &f), MIX_ECORRUPT, "all-0xff file");
	for (int r = 0; r < 2000; r++) {
		size_t n = tu_rand_below(&seed, (uint32_t)size + 1);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)tu_rand(&seed);
		if (r % 2 == 1 && n >= 15)
			memcpy(buf, good, 15);      /* magic .. compat_flags */
		if (r % 4 == 3 && n >= 120)
			fix_crc(buf, n);
		if (parse_buf(buf, n, &f) != MIX_ECORRUPT && bad++ == 0)
			diag("  round %d (%zu bytes): %s", r, n,
			     mix_last_error());
	}
	is(bad, 0, "2000 garbage buffers, some with a valid magic and "
	   "checksum: MIX_ECORRUPT");
	free(buf);
}

/* ---- one case per verification rule ------------------------------- */

enum base { B_FILE, B_EXT0, B_EXT1, B_EXT2, B_EXT3, B_KW, B_REC0, B_REC1,
	    B_REC2, B_COUNT };

struct ccase {
	const char *what;
	enum base base;
	unsigned delta, size;
	uint64_t val;
	int fix_crc;
	int want;
	const char *needle;
};

static const struct ccase cases[] = {
	{ "wrong magic", B_FILE, 0, 4, 0x12345678, 1, MIX_ECORRUPT,
	  "field magic at offset 0" },
	{ "byte-swapped magic", B_FILE, 0, 4, 0x4d495849, 1, MIX_EVERSION,
	  "other byte order" },
	{ "compat_flags without LITTLE_ENDIAN", B_FILE, 14, 1, 0, 1,
	  MIX_EVERSION, "other byte order" },
	{ "unknown compat flag", B_FILE, 14, 1, 3, 1, MIX_EVERSION,
	  "compat_flags" },
	{ "newer major version", B_FILE, 4, 1, 2, 1, MIX_EVERSION,
	  "major_version at offset 4: 2 is newer" },
	{ "major version 0", B_FILE, 4, 1, 0, 1, MIX_ECORRUPT,
	  "major_version" },
	{ "newer minor version", B_FILE, 5, 1, 7, 1, 0, NULL },
	{ "base_header_size 121", B_FILE, 6, 2, 121, 1, MIX_ECORRUPT,
	  "field base_header_size at offset 6" },
	{ "base_header_size 112", B_FILE, 6, 2, 112, 1, MIX_ECORRUPT,
	  "field base_header_size at offset 6" },
	{ "base_header_size above header_size", B_FILE, 6, 2, 0xfff8, 1,
	  MIX_ECORRUPT, "base_header_size" },
	{ "header_size huge", B_FILE, 8, 4, 0xfffffff8, 1, MIX_ECORRUPT,
	  "field header_size at offset 8" },
	{ "header_size unaligned", B_FILE, 8, 4, 241, 1, MIX_ECORRUPT,
	  "header_size at offset 8: 241 is not a multiple of 8" },
	{ "header_size + 8", B_FILE, 8, 4, 248, 1, MIX_ECORRUPT,
	  "header_size" },
	{ "record_size 20", B_FILE, 12, 2, 20, 1, MIX_ECORRUPT,
	  "field record_size at offset 12: 20 is not a multiple of 8" },
	{ "record_size 8", B_FILE, 12, 2, 8, 1, MIX_ECORRUPT,
	  "field record_size at offset 12: 8 is below" },
	{ "record_size huge", B_FILE, 12, 2, 0xfff8, 1, MIX_ECORRUPT,
	  "record_size" },
	{ "messages_count huge", B_FILE, 32, 4, 0xffffffff, 1, MIX_ECORRUPT,
	  "messages_count" },
	{ "messages_count one short", B_FILE, 32, 4, 2, 1, MIX_ECORRUPT,
	  "messages_count" },
	{ "file_size + 8", B_FILE, 112, 8, 320, 1, MIX_ECORRUPT,
	  "field file_size at offset 112" },
	{ "file_size huge", B_FILE, 112, 8, UINT64_MAX, 1, MIX_ECORRUPT,
	  "file_size" },
	{ "checksum wrong", B_FILE, 108, 4, 0xdeadbeef, 0, MIX_ECORRUPT,
	  "field checksum at offset 108" },
	{ "unused0 set", B_FILE, 15, 1, 1, 1, MIX_ECORRUPT, "unused0" },
	{ "flag CORRUPTED", B_FILE, 20, 4, MIX_HDR_FLAG_CORRUPTED, 1,
	  MIX_ECORRUPT, "CORRUPTED" },
	{ "unknown header flag", B_FILE, 20, 4, 0x100, 1, MIX_ECORRUPT,
	  "field flags at offset 20" },
	{ "next_uid 0", B_FILE, 28, 4, 0, 1, MIX_ECORRUPT,
	  "field next_uid at offset 28" },
	{ "next_uid = last uid", B_FILE, 28, 4, 9, 1, MIX_ECORRUPT,
	  "uid 9 not below next_uid 9" },
	{ "highest_modseq 2^63", B_FILE, 64, 8, UINT64_C(1) << 63, 1,
	  MIX_ECORRUPT, "field highest_modseq at offset 64" },
	{ "highest_modseq below a record's", B_FILE, 64, 8, 250, 1,
	  MIX_ECORRUPT, "modseq 300 above highest_modseq 250" },
	{ "seen_messages_count", B_FILE, 36, 4, 1, 1, MIX_ECORRUPT,
	  "field seen_messages_count at offset 36" },
	{ "deleted_messages_count", B_FILE, 40, 4, 0, 1, MIX_ECORRUPT,
	  "field deleted_messages_count at offset 40" },
	{ "unseen low-water above first unseen", B_FILE, 48, 4, 7, 1,
	  MIX_ECORRUPT, "field first_unseen_uid_lowwater at offset 48" },
	{ "deleted low-water above first deleted", B_FILE, 52, 4, 10, 1,
	  MIX_ECORRUPT, "field first_deleted_uid_lowwater at offset 52" },
	{ "low-waters below: fine", B_FILE, 48, 4, 1, 1, 0, NULL },
	{ "ext hdr_size huge", B_EXT2, 0, 4, 0xffffffff, 1, MIX_ECORRUPT,
	  "field hdr_size at offset 184" },
	{ "ext name_size huge", B_EXT2, 14, 2, 0xffff, 1, MIX_ECORRUPT,
	  "field name_size at offset 198" },
	{ "ext name_size 0", B_EXT2, 14, 2, 0, 1, MIX_ECORRUPT,
	  "name_size" },
	{ "ext name_size 64", B_EXT2, 14, 2, 64, 1, MIX_ECORRUPT,
	  "name_size" },
	{ "ext record_align 3", B_EXT2, 12, 2, 3, 1, MIX_ECORRUPT,
	  "field record_align at offset 196" },
	{ "ext record_offset misaligned", B_EXT2, 8, 2, 18, 1, MIX_ECORRUPT,
	  "not a multiple of record_align" },
	{ "ext record overlapping keywords", B_EXT2, 8, 2, 16, 1,
	  MIX_ECORRUPT, "overlaps extension 1 \"keywords\"" },
	{ "ext record overlapping the fixed part", B_EXT2, 8, 2, 12, 1,
	  MIX_ECORRUPT, "overlaps the fixed part" },
	{ "ext record outside the record", B_EXT2, 8, 2, 24, 1,
	  MIX_ECORRUPT, "outside the 24-byte record" },
	{ "ext record_size huge", B_EXT2, 10, 2, 0xffff, 1, MIX_ECORRUPT,
	  "field record_size at offset 194" },
	{ "ext record_size 0 with an offset", B_EXT2, 10, 2, 0, 1,
	  MIX_ECORRUPT, "no record data" },
	{ "ext name with NUL", B_EXT2, 16, 1, 0, 1, MIX_ECORRUPT,
	  "control character" },
	{ "ext name with newline", B_EXT2, 16, 1, '\n', 1, MIX_ECORRUPT,
	  "control character" },
	{ "ext name with a space", B_EXT2, 16, 1, ' ', 1, MIX_ECORRUPT,
	  "space" },
	{ "ext name with a byte >= 0x80: fine", B_EXT2, 16, 1, 0xc3, 1, 0,
	  NULL },
	{ "ext name duplicate", B_EXT3, 16, 1, 'x', 1, MIX_ECORRUPT,
	  "already used by extension 2" },
	{ "ext name padding", B_EXT2, 17, 1, 1, 1, MIX_ECORRUPT, "padding" },
	{ "ext data padding", B_EXT2, 29, 1, 1, 1, MIX_ECORRUPT, "padding" },
	{ "ext reset_id: any value", B_EXT2, 4, 4, 0xffffffff, 1, 0, NULL },
	{ "modseq ext renamed", B_EXT0, 16, 1, 'M', 1, MIX_ECORRUPT,
	  "is not \"modseq\"" },
	{ "modseq ext record_offset", B_EXT0, 8, 2, 16, 1, MIX_ECORRUPT,
	  "\"modseq\"" },
	{ "modseq ext hdr_size", B_EXT0, 0, 4, 8, 1, MIX_ECORRUPT, NULL },
	{ "keywords ext renamed", B_EXT1, 16, 1, 'K', 1, MIX_ECORRUPT,
	  "is not \"keywords\"" },
	{ "keywords ext record_align", B_EXT1, 12, 2, 8, 1, MIX_ECORRUPT,
	  "\"keywords\"" },
	{ "keywords ext record_size 6", B_EXT1, 10, 2, 6, 1, MIX_ECORRUPT,
	  "\"keywords\"" },
	{ "keyword count 3", B_KW, 0, 4, 3, 1, MIX_ECORRUPT,
	  "keyword 2 at offset 178: no NUL" },
	{ "keyword count 1", B_KW, 0, 4, 1, 1, MIX_ECORRUPT,
	  "after the last of 1 keywords" },
	{ "keyword count beyond the bitmap", B_KW, 0, 4, 33, 1, MIX_ECORRUPT,
	  "32-bit bitmap" },
	{ "keyword count beyond the limit", B_KW, 0, 4, 5000, 1,
	  MIX_ECORRUPT, "count 5000 is above 4096" },
	{ "keyword duplicate", B_KW, 8, 1, 'b', 1, MIX_ECORRUPT,
	  "keyword 1 at offset 175: \"ab\" is the same as keyword 0" },
	{ "keyword with a space", B_KW, 4, 1, ' ', 1, MIX_ECORRUPT,
	  "space or control" },
	{ "keyword empty", B_KW, 4, 1, 0, 1, MIX_ECORRUPT,
	  "keyword 0 at offset 172: length 0" },
	{ "record uid not increasing", B_REC1, 0, 4, 5, 1, MIX_ECORRUPT,
	  "record 1 at offset 264: uid 5 not above previous uid 5" },
	{ "record uid 0", B_REC0, 0, 4, 0, 1, MIX_ECORRUPT,
	  "record 0 at offset 240: uid 0 not above previous uid 0" },
	{ "record uid = next_uid", B_REC2, 0, 4, 17, 1, MIX_ECORRUPT,
	  "record 2 at offset 288: uid 17 not below next_uid 17" },
	{ "record flag 0x40", B_REC0, 4, 1, 0x48, 1, MIX_ECORRUPT,
	  "flags 0x48 has unknown bits 0x40" },
	{ "record modseq above highest", B_REC2, 8, 8, HIGHEST_MODSEQ + 1, 1,
	  MIX_ECORRUPT, "above highest_modseq" },
	{ "record keyword bit 2 of 2", B_REC0, 16, 1, 0x04, 1, MIX_ECORRUPT,
	  "keyword bit 2 is set, but there are only 2" },
	{ "record keyword bit 31", B_REC1, 19, 1, 0x80, 1, MIX_ECORRUPT,
	  "keyword bit 31" },
	{ "record pad: ignored", B_REC0, 5, 1, 0xaa, 1, 0, NULL },
	{ "record ext data: opaque", B_REC2, 20, 4, 0xffffffff, 1, 0, NULL },
};

static void case_bases(const uint8_t *good, size_t b[B_COUNT])
{
	uint32_t offs[8];
	if (walk_exts(good, offs, 8) != 4)
		BAIL("small file: expected 4 extensions");
	b[B_FILE] = 0;
	b[B_EXT0] = offs[0];
	b[B_EXT1] = offs[1];
	b[B_EXT2] = offs[2];
	b[B_EXT3] = offs[3];
	b[B_KW] = up8(offs[1] + 16 + 8);
	b[B_REC0] = 240;
	b[B_REC1] = 264;
	b[B_REC2] = 288;
}

static void run_case(const uint8_t *good, size_t size, const size_t *bases,
		     const struct ccase *c)
{
	uint8_t *buf = malloc(size);
	struct mix_ifile f;
	const char *msg;
	int ret;

	memcpy(buf, good, size);
	wr(buf, bases[c->base] + c->delta, c->size, c->val);
	if (c->fix_crc)
		fix_crc(buf, size);
	ret = parse_buf(buf, size, &f);
	msg = mix_last_error();
	if (c->want == 0)
		is(ret, 0, "%s: accepted (%s)", c->what, ret ? msg : "");
	else
		ok(ret == c->want && is_zeroed(&f) &&
		   strncmp(msg, "small: ", 7) == 0 &&
		   (c->needle == NULL || strstr(msg, c->needle) != NULL),
		   "%s: %s \"%s\"", c->what, mix_strerror(ret), msg);
	if (ret != c->want)
		diag("  got %d, expected %d", ret, c->want);
	else if (c->needle && !strstr(msg, c->needle))
		diag("  message lacks \"%s\"", c->needle);
	mix_ifile_free(&f);
	free(buf);
}

static void test_cases(const uint8_t *good, size_t size)
{
	size_t bases[B_COUNT];
	case_bases(good, bases);
	is(bases[B_EXT2], 184, "small: extension \"x\" at offset 184");
	is(bases[B_KW], 168, "small: keywords header data at offset 168");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(good, size, bases, &cases[i]);
}

/* §1: a newer minor version may use what this one reserves. */
static void test_newer_minor(const uint8_t *good, size_t size)
{
	uint8_t *buf = malloc(size);
	struct mix_ifile f;
	int ret;

	memcpy(buf, good, size);
	buf[5] = MIX_INDEX_MINOR + 1;
	buf[15] = 0x42;                 /* unused0 */
	wr(buf, 20, 4, 0x1000);         /* an unknown header flag */
	fix_crc(buf, size);
	ret = parse_buf(buf, size, &f);
	is(ret, 0, "newer minor version with unused0 and a new flag set: "
	   "accepted (%s)", ret ? mix_last_error() : "");
	mix_ifile_free(&f);
	free(buf);
}

/* ---- the writer's refusals and failures ---------------------------- */

static int same_file(const char *path, const uint8_t *want, size_t size)
{
	size_t n = 0;
	uint8_t *got = tu_read_file(path, &n);
	int same = got != NULL && n == size && memcmp(got, want, n) == 0;
	free(got);
	return same;
}

/* Write src (expecting code), then check that the old file is unchanged
 * and that no temp file is left. */
static void write_refused(const char *dir, struct mix_ifile_src *src,
			  int code, const char *needle, const char *what)
{
	char *path = path_in(dir, "mix.index");
	char *tmp = path_in(dir, "mix.index.tmp");
	size_t size = 0;
	uint8_t *old = tu_read_file(path, &size);
	int ret = mix_ifile_write(-1, dir, src);

	ok(ret == code && (needle == NULL ||
			   strstr(mix_last_error(), needle) != NULL),
	   "%s: %s \"%s\"", what, mix_strerror(ret), mix_last_error());
	ok(old != NULL && same_file(path, old, size) &&
	   access(tmp, F_OK) < 0, "%s: old mix.index unchanged, no "
	   "mix.index.tmp", what);
	free(old);
	free(path);
	free(tmp);
}

static void test_write_refusals(void)
{
	struct model m;
	struct mix_ifile_src src;
	struct runs r;
	char *dir = subdir("refuse");

	model_init(&m, 5, 4);
	model_add_ext(&m, "e", 4, 4, 10, 0);
	model_fill(&m, 500);
	if (model_write(&m, dir) < 0)
		BAIL("refuse: %s", mix_last_error());

	model_src(&m, &r, &src);
	r.count--;
	write_refused(dir, &src, MIX_EINVAL, "gave 499 records, not "
		      "messages_count 500", "one record too few");
	model_src(&m, &r, &src);
	src.hdr.messages_count--;
	write_refused(dir, &src, MIX_EINVAL, "more than messages_count 499",
		      "one record too many");
	model_src(&m, &r, &src);
	wr(m.recs, m.record_size * 7, 4, (uint32_t)rd(m.recs,
	   m.record_size * 6, 4));
	write_refused(dir, &src, MIX_EINVAL, "checkpoint of", "duplicate uid");
	model_free(&m);

	model_init(&m, 5, 4);
	model_add_ext(&m, "e", 4, 4, 10, 0);
	model_fill(&m, 10);
	model_src(&m, &r, &src);
	src.hdr.seen_messages_count++;
	write_refused(dir, &src, MIX_EINVAL, "seen_messages_count",
		      "wrong seen count");
	model_src(&m, &r, &src);
	m.exts[2].rec_offset = 16;
	write_refused(dir, &src, MIX_EINVAL, "overlaps", "overlapping ext");
	m.exts[2].rec_offset = 20;
	model_src(&m, &r, &src);
	m.exts[2].rec_align = 16;
	write_refused(dir, &src, MIX_EINVAL, "record_align", "ext align 16");
	m.exts[2].rec_align = 4;
	model_src(&m, &r, &src);
	m.keywords[3][1] = ' ';
	write_refused(dir, &src, MIX_EINVAL, "space", "keyword with space");
	m.keywords[3][1] = 'w';
	model_src(&m, &r, &src);
	src.ext_count = 1;
	write_refused(dir, &src, MIX_EINVAL, NULL, "no keywords extension");
	model_src(&m, &r, &src);
	src.record_size = 20;
	write_refused(dir, &src, MIX_EINVAL, "record_size", "record_size 20");
	model_src(&m, &r, &src);
	src.hdr.flags = MIX_HDR_FLAG_CORRUPTED;
	write_refused(dir, &src, MIX_EINVAL, "CORRUPTED", "CORRUPTED flag");
	model_free(&m);
	free(dir);
}

/* Fail the n-th I/O call of a checkpoint, for every n: before the rename
 * the old file must survive and the temp file be gone; the last call
 * (fsync of the directory) comes after the rename, so then the new file
 * is in place. */
static void test_write_faults(void)
{
	struct model m, m2;
	char *dir = subdir("faults"), *path = path_in(dir, "mix.index");
	char *tmp = path_in(dir, "mix.index.tmp");
	char *dir_sync = NULL;
	uint8_t *old, *now;
	size_t old_size = 0, now_size = 0;
	unsigned n, bad_old = 0, bad_code = 0;
	int ret = -1;

	if (asprintf(&dir_sync, "fsync(%s)", dir) < 0)
		BAIL("out of memory");
	build_big(&m, 100);
	build_big(&m2, 6000);           /* > 1 MiB: several pwrites */
	if (model_write(&m, dir) < 0 || !(old = tu_read_file(path, &old_size)))
		BAIL("faults: %s", mix_last_error());
	for (n = 1; n < 100 && ret != 0; n++) {
		mix_io_fault_set(n, -EIO);
		ret = model_write(&m2, dir);
		mix_io_fault_set(0, 0);
		if (ret == 0)
			break;
		bad_code += ret != -EIO;
		now = tu_read_file(path, &now_size);
		if (access(tmp, F_OK) == 0 ||
		    (!same_file(path, old, old_size) &&
		     strstr(mix_last_error(), dir_sync) == NULL)) {
			if (bad_old++ == 0)
				diag("  fault %u: %s", n, mix_last_error());
		}
		free(old);
		old = now;
		old_size = now_size;
	}
	ok(ret == 0 && n > 4, "faults: checkpoint succeeded once the "
	   "countdown passed all %u I/O calls", n - 1);
	is(bad_code, 0, "faults: every failure returned the injected -EIO");
	is(bad_old, 0, "faults: every failure before the rename left the old "
	   "file and no temp file");
	free(old);
	model_free(&m);
	model_free(&m2);
	free(dir_sync);
	free(path);
	free(tmp);
	free(dir);
}

static void test_open_errors(void)
{
	char *dir = subdir("open"), *path = path_in(dir, "mix.index");
	struct mix_ifile f;
	struct model m;
	void *map;
	size_t size;

	is(mix_ifile_open(path, &f), -ENOENT, "missing file: -ENOENT");
	ok(strstr(mix_last_error(), path) != NULL, "missing file: message "
	   "names the path");
	tu_write_file(path, "", 0);
	is(mix_ifile_open(path, &f), MIX_ECORRUPT, "empty file: MIX_ECORRUPT "
	   "(%s)", mix_last_error());
	model_init(&m, 1, 4);
	model_fill(&m, 3);
	if (model_write(&m, dir) < 0)
		BAIL("open: %s", mix_last_error());
	mix_io_fault_set(1, -EIO);
	is(mix_ifile_open(path, &f), -EIO, "injected open failure: -EIO");
	mix_io_fault_set(0, 0);
	is(mix_ifile_open(path, &f), 0, "open");
	map = f.map;
	size = f.map_size;
	mix_ifile_free_keep_map(&f);
	ok(f.map == NULL && f.exts == NULL && map != NULL &&
	   rd(map, 0, 4) == MIX_INDEX_MAGIC, "free_keep_map: arrays freed, "
	   "mapping still readable");
	is(munmap(map, size), 0, "free_keep_map: the caller unmaps it");
	model_free(&m);
	free(path);
	free(dir);
}

static void on_alarm(int sig)
{
	(void)sig;
	printf("not ok - mix_ifile_open hung (alarm after 20 s)\nBail out!\n");
	fflush(stdout);
	_exit(1);
}

/* mix.index must be a regular file (format.md §3, "Files"): a FIFO is
 * refused at once (it hung every open before), a directory and a device
 * too; a symlink to a regular file is followed. */
static void test_file_types(void)
{
	char *dir = subdir("types"), *path = path_in(dir, "mix.index");
	char *real = path_in(dir, "real.index");
	struct mix_ifile f;
	struct model m;
	int ret;

	signal(SIGALRM, on_alarm);
	alarm(20);              /* hang guard, not a time limit */
	if (mkfifo(path, 0644) == 0) {
		ret = mix_ifile_open(path, &f);
		ok(ret == MIX_ECORRUPT && strstr(mix_last_error(), path) &&
		   strstr(mix_last_error(), "FIFO"), "types: a FIFO named "
		   "mix.index is refused at once (%d): %s", ret,
		   mix_last_error());
		unlink(path);
	} else {
		ok(1, "# skip mkfifo failed");
	}
	mkdir(path, 0700);
	ret = mix_ifile_open(path, &f);
	ok(ret == MIX_ECORRUPT && strstr(mix_last_error(), "directory"),
	   "types: a directory is refused (%d): %s", ret, mix_last_error());
	rmdir(path);
	if (symlink("/dev/zero", path) == 0) {
		ret = mix_ifile_open(path, &f);
		ok(ret == MIX_ECORRUPT &&
		   strstr(mix_last_error(), "character device"), "types: a "
		   "symlink to /dev/zero is refused (%d): %s", ret,
		   mix_last_error());
		unlink(path);
	} else {
		ok(1, "# skip symlink failed");
	}
	if (symlink("gone.index", path) == 0) {
		ret = mix_ifile_open(path, &f);
		ok(ret == MIX_ECORRUPT &&
		   strstr(mix_last_error(), "symbolic link"), "types: a "
		   "dangling symlink is corrupt, not missing (%d): %s", ret,
		   mix_last_error());
		unlink(path);
	} else {
		ok(1, "# skip symlink failed");
	}
	model_init(&m, 1, 4);
	model_fill(&m, 3);
	if (model_write(&m, dir) < 0 || rename(path, real) < 0)
		BAIL("types: %s", mix_last_error());
	if (symlink("real.index", path) == 0) {
		ret = mix_ifile_open(path, &f);
		ok(ret == 0 && f.hdr->messages_count == 3, "types: a symlink to "
		   "a regular mix.index is followed (%d)", ret);
		if (ret == 0)
			mix_ifile_free(&f);
	} else {
		ok(1, "# skip symlink failed");
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	model_free(&m);
	free(real);
	free(path);
	free(dir);
}

/* Nonzero pad bytes in the caller's records are written as 0 (§2.4). */
static void test_pad_zeroed(void)
{
	struct model m;
	struct mix_ifile f;
	char *dir = subdir("pad"), *path = path_in(dir, "mix.index");

	model_init(&m, 0, 0);
	model_fill(&m, 4);
	m.recs[16 * 2 + 6] = 0x77;
	is(model_write(&m, dir), 0, "pad: write records with a nonzero pad");
	if (mix_ifile_open(path, &f) < 0)
		BAIL("pad: %s", mix_last_error());
	is(f.records[16 * 2 + 6], 0, "pad: written as 0");
	mix_ifile_free(&f);
	model_free(&m);
	free(path);
	free(dir);
}

int main(void)
{
	uint8_t *small;
	size_t small_size = 0;

	seed = tu_seed();
	tmp_root = tu_tmpdir("ifile");
	test_encode();
	test_roundtrip_big();
	test_rewrite_identical();
	test_empty();
	test_keyword_limits();
	test_pad_zeroed();
	small = small_file(&small_size);
	test_small_valid(small, small_size);
	test_cases(small, small_size);
	test_newer_minor(small, small_size);
	test_truncations(small, small_size);
	test_flips(small, small_size);
	test_garbage(small, small_size);
	test_fuzz(small, small_size);
	free(small);
	test_write_refusals();
	test_write_faults();
	test_open_errors();
	test_file_types();
	tu_rmdir_r(tmp_root);
	free(tmp_root);
	return tap_done();
}
