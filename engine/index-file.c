/*
 * mix.index, the main index file: verifying a mapped file and writing a
 * checkpoint.  docs/format.md §2 is the authority; checks cite it.
 *
 * The file is a checkpoint: base header, extension headers, then one
 * fixed-size record per message in UID order.  It is never changed in
 * place (invariant 3): mix_ifile_write builds a whole new file as
 * mix.index.tmp, fsyncs it and renames it over mix.index, so a mapping of
 * the old file stays a consistent image for as long as someone holds it.
 * Only the writer thread that owns the mailbox calls mix_ifile_write;
 * mix_ifile_open and mix_ifile_parse run on any thread and share nothing.
 *
 * Every byte of the file is untrusted (invariant 6).  Verification walks
 * the file once in the order of §2.5; each size and offset is checked
 * against the end of the buffer with 64-bit arithmetic before it is used,
 * nothing is read through a struct pointer into the buffer (copies or
 * memcpy loads instead, so an unaligned buffer is fine), and every failure
 * returns an error whose message names the file, the field and the
 * offset.  The checkpoint writer runs the same checks, with MIX_EINVAL
 * instead of MIX_ECORRUPT, on the header it built and on every record it
 * writes, so it cannot produce a file the reader refuses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bytes.h"
#include "crc32c.h"
#include "err.h"
#include "fileio.h"
#include "index-file.h"
#include "regfile.h"

#define HDR_OFF(field) offsetof(struct mix_index_header, field)
#define BASE_SIZE ((uint32_t)sizeof(struct mix_index_header))
#define EXT_HDR_SIZE ((uint32_t)sizeof(struct mix_index_ext_header))
#define FIXED_SIZE ((uint32_t)sizeof(struct mix_index_record))
/* §2.3: the keywords header is bounded by the keyword limits of mix.h */
#define KW_HDR_MAX (4u + MIX_MAX_KEYWORDS * (MIX_MAX_KEYWORD_LEN + 1u))
#define MODSEQ_LIMIT (UINT64_C(1) << 63)
#define KNOWN_HDR_FLAGS \
	(MIX_HDR_FLAG_CORRUPTED | MIX_HDR_FLAG_HAVE_DIRTY | MIX_HDR_FLAG_FSCK)
#define WRITE_BUF_SIZE ((size_t)1 << 20)

/* The §2.1 table, field by field (format.h asserts only some). */
_Static_assert(HDR_OFF(magic) == 0, "magic");
_Static_assert(HDR_OFF(major_version) == 4, "major_version");
_Static_assert(HDR_OFF(minor_version) == 5, "minor_version");
_Static_assert(HDR_OFF(base_header_size) == 6, "base_header_size");
_Static_assert(HDR_OFF(header_size) == 8, "header_size");
_Static_assert(HDR_OFF(record_size) == 12, "record_size");
_Static_assert(HDR_OFF(compat_flags) == 14, "compat_flags");
_Static_assert(HDR_OFF(unused0) == 15, "unused0");
_Static_assert(HDR_OFF(flags) == 20, "flags");
_Static_assert(HDR_OFF(uid_validity) == 24, "uid_validity");
_Static_assert(HDR_OFF(next_uid) == 28, "next_uid");
_Static_assert(HDR_OFF(messages_count) == 32, "messages_count");
_Static_assert(HDR_OFF(seen_messages_count) == 36, "seen");
_Static_assert(HDR_OFF(deleted_messages_count) == 40, "deleted");
_Static_assert(HDR_OFF(first_recent_uid) == 44, "first_recent_uid");
_Static_assert(HDR_OFF(first_unseen_uid_lowwater) == 48, "unseen lw");
_Static_assert(HDR_OFF(first_deleted_uid_lowwater) == 52, "deleted lw");
_Static_assert(HDR_OFF(log_file_head_offset) == 60, "log head");
_Static_assert(HDR_OFF(day_stamp) == 72, "day_stamp");
_Static_assert(offsetof(struct mix_index_ext_header, record_offset) == 8,
	       "ext record_offset");
_Static_assert(offsetof(struct mix_index_ext_header, name_size) == 14,
	       "ext name_size");
_Static_assert(offsetof(struct mix_index_record, flags) == 4, "rec flags");
_Static_assert(offsetof(struct mix_index_record, modseq) ==
	       MIX_REC_MODSEQ_OFFSET, "rec modseq");

/* What one verification pass works on. */
struct vctx {
	const char *path;           /* first word of every message */
	int code;                   /* MIX_ECORRUPT reading, MIX_EINVAL writing */
	const uint8_t *buf;         /* the file (or the header being written) */
	size_t size;                /* bytes at buf */
	struct mix_index_header h;  /* aligned copy of the base header */
};

/* Running state of the record checks (§2.5 steps 16-17). */
struct rec_state {
	uint32_t n;                 /* records checked so far */
	uint32_t prev_uid;
	uint32_t seen, deleted;
	uint32_t first_unseen, first_deleted;  /* UIDs; 0 = none yet */
};

static int verr(const struct vctx *v, const char *fmt, ...) MIX_PRINTF(2, 3);
static int verr(const struct vctx *v, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return mix_err(v->code, "%s: %s", v->path, msg);
}

static inline uint64_t align8(uint64_t n)
{
	return (n + 7u) & ~(uint64_t)7u;
}

/* ---- §2.5 steps 1-5: identity ---------------------------------------- */

static int check_ident(struct vctx *v)
{
	uint32_t magic;
	uint8_t major, compat;

	if (v->size < 8)
		return verr(v, "file is %zu bytes, shorter than the %u-byte "
			    "base header", v->size, BASE_SIZE);
	magic = mix_get_u32(v->buf);
	if (magic == __builtin_bswap32(MIX_INDEX_MAGIC))
		return mix_err(MIX_EVERSION, "%s: field magic at offset 0: "
			       "the file was written in the other byte order",
			       v->path);
	if (magic != MIX_INDEX_MAGIC)
		return verr(v, "field magic at offset 0: 0x%08x is not "
			    "0x%08x", magic, MIX_INDEX_MAGIC);
	major = v->buf[HDR_OFF(major_version)];
	if (major > MIX_INDEX_MAJOR)
		return mix_err(MIX_EVERSION, "%s: field major_version at "
			       "offset 4: %u is newer than version %u, the "
			       "newest this library reads", v->path, major,
			       MIX_INDEX_MAJOR);
	if (major != MIX_INDEX_MAJOR)
		return verr(v, "field major_version at offset 4: %u is not "
			    "a version (expected %u)", major, MIX_INDEX_MAJOR);
	if (v->size < BASE_SIZE)
		return verr(v, "file is %zu bytes, shorter than the %u-byte "
			    "base header", v->size, BASE_SIZE);
	memcpy(&v->h, v->buf, sizeof(v->h));
	compat = v->h.compat_flags;
	if ((compat & MIX_COMPAT_LITTLE_ENDIAN) == 0)
		return mix_err(MIX_EVERSION, "%s: field compat_flags at "
			       "offset 14: 0x%02x lacks LITTLE_ENDIAN (0x01): "
			       "the file was written in the other byte order",
			       v->path, compat);
	if ((compat & ~MIX_COMPAT_LITTLE_ENDIAN) != 0)
		return mix_err(MIX_EVERSION, "%s: field compat_flags at "
			       "offset 14: unknown compatibility flags 0x%02x",
			       v->path, compat & ~MIX_COMPAT_LITTLE_ENDIAN);
	return 0;
}

/* ---- §2.5 steps 6-7: sizes ------------------------------------------- */

/* Layout sizes that do not depend on the file's length. */
static int check_sizes(const struct vctx *v)
{
	const struct mix_index_header *h = &v->h;

	if (h->base_header_size < BASE_SIZE || h->base_header_size % 8 != 0)
		return verr(v, "field base_header_size at offset 6: %u is not "
			    "a multiple of 8 of at least %u",
			    h->base_header_size, BASE_SIZE);
	if (h->header_size % 8 != 0)
		return verr(v, "field header_size at offset 8: %u is not a "
			    "multiple of 8", h->header_size);
	if (h->header_size < h->base_header_size)
		return verr(v, "field header_size at offset 8: %u is below "
			    "base_header_size %u", h->header_size,
			    h->base_header_size);
	if (h->record_size % 8 != 0)
		return verr(v, "field record_size at offset 12: %u is not a "
			    "multiple of 8", h->record_size);
	if (h->record_size < FIXED_SIZE)
		return verr(v, "field record_size at offset 12: %u is below "
			    "the %u-byte fixed part", h->record_size,
			    FIXED_SIZE);
	return 0;
}

/* The sizes against the length of the file (reading only). */
static int check_length(const struct vctx *v)
{
	const struct mix_index_header *h = &v->h;
	uint64_t total;

	if (h->file_size != v->size)
		return verr(v, "field file_size at offset 112: %llu, but the "
			    "file is %zu bytes", (unsigned long long)
			    h->file_size, v->size);
	if (h->header_size > v->size)
		return verr(v, "field header_size at offset 8: %u is beyond "
			    "the end of the %zu-byte file", h->header_size,
			    v->size);
	/* u32 + u32 * u16 cannot overflow 64 bits */
	total = h->header_size + (uint64_t)h->messages_count * h->record_size;
	if (total != v->size)
		return verr(v, "fields header_size + messages_count * "
			    "record_size at offsets 8, 32, 12: %u + %u * %u = "
			    "%llu, not file_size %zu", h->header_size,
			    h->messages_count, h->record_size,
			    (unsigned long long)total, v->size);
	return 0;
}

/* §2.5 step 8; §1 defines the CRC. */
static int check_crc(const struct vctx *v)
{
	static const uint8_t zero[4];
	const size_t at = HDR_OFF(checksum);
	uint32_t crc;

	crc = mix_crc32c(0, v->buf, at);
	crc = mix_crc32c(crc, zero, sizeof(zero));
	crc = mix_crc32c(crc, v->buf + at + 4, v->size - at - 4);
	if (crc != v->h.checksum)
		return verr(v, "field checksum at offset 108: 0x%08x, but the "
			    "file's CRC32C is 0x%08x", v->h.checksum, crc);
	return 0;
}

/* ---- §2.5 step 9: the other header fields ---------------------------- */

static int check_fields(const struct vctx *v)
{
	const struct mix_index_header *h = &v->h;
	/* §1: reserved bits may be used by a newer minor version */
	int ours = h->minor_version <= MIX_INDEX_MINOR;

	if (ours && h->unused0 != 0)
		return verr(v, "field unused0 at offset 15: %u is not 0",
			    h->unused0);
	if ((h->flags & MIX_HDR_FLAG_CORRUPTED) != 0)
		return verr(v, "field flags at offset 20: CORRUPTED is set");
	if (ours && (h->flags & ~(uint32_t)KNOWN_HDR_FLAGS) != 0)
		return verr(v, "field flags at offset 20: unknown flags 0x%x",
			    h->flags & ~(uint32_t)KNOWN_HDR_FLAGS);
	if (h->next_uid == 0)
		return verr(v, "field next_uid at offset 28: 0, must be at "
			    "least 1");
	if (h->highest_modseq >= MODSEQ_LIMIT)
		return verr(v, "field highest_modseq at offset 64: %llu is "
			    "not below 2^63", (unsigned long long)
			    h->highest_modseq);
	return 0;
}

/* ---- §2.5 steps 10-14: extension headers ----------------------------- */

/* Offset of the extension header whose data e->hdr points at (§2.2: the
 * data starts at the 8-aligned end of header and name). */
static uint32_t ext_offset(const struct vctx *v, const struct mix_ifile_ext *e)
{
	uint32_t data = (uint32_t)(e->hdr - v->buf);
	return data - (uint32_t)align8(EXT_HDR_SIZE + strlen(e->name));
}

static int check_zero(const struct vctx *v, uint32_t i, uint32_t off,
		      uint64_t from, uint64_t to)
{
	for (uint64_t p = from; p < to; p++) {
		if (v->buf[p] != 0)
			return verr(v, "extension %u at offset %u: padding "
				    "byte at offset %llu is 0x%02x, not 0", i,
				    off, (unsigned long long)p, v->buf[p]);
	}
	return 0;
}

static int check_ext_name(const struct vctx *v, uint32_t i, uint32_t off,
			  uint32_t len)
{
	const uint8_t *name = v->buf + off + EXT_HDR_SIZE;

	for (uint32_t k = 0; k < len; k++) {
		if (name[k] <= 0x20 || name[k] == 0x7f)
			return verr(v, "extension %u at offset %u: name byte "
				    "at offset %u is 0x%02x, a NUL, space or "
				    "control character", i, off,
				    off + EXT_HDR_SIZE + k, name[k]);
	}
	return 0;
}

/* Parse extension i, whose header is at off, into *e; *next_r gets the
 * offset of the next one.  §2.2. */
static int parse_ext(const struct vctx *v, uint32_t i, uint32_t off,
		     struct mix_ifile_ext *e, uint32_t *next_r)
{
	const uint32_t end = v->h.header_size;
	struct mix_index_ext_header eh;
	uint64_t name_end, data_off, data_end;
	int ret;

	if (end - off < EXT_HDR_SIZE)
		return verr(v, "extension %u at offset %u: its %u-byte header "
			    "runs past header_size %u", i, off, EXT_HDR_SIZE,
			    end);
	memcpy(&eh, v->buf + off, sizeof(eh));
	if (eh.name_size == 0 || eh.name_size > MIX_EXT_NAME_MAX)
		return verr(v, "extension %u at offset %u: field name_size at "
			    "offset %u: %u is not 1..%u", i, off, off + 14,
			    eh.name_size, MIX_EXT_NAME_MAX);
	name_end = (uint64_t)off + EXT_HDR_SIZE + eh.name_size;
	if (name_end > end)
		return verr(v, "extension %u at offset %u: field name_size at "
			    "offset %u: the %u-byte name runs past "
			    "header_size %u", i, off, off + 14, eh.name_size,
			    end);
	if ((ret = check_ext_name(v, i, off, eh.name_size)) < 0)
		return ret;
	data_off = align8(name_end);
	data_end = data_off + eh.hdr_size;
	if (data_end > end)
		return verr(v, "extension %u at offset %u: field hdr_size at "
			    "offset %u: %u bytes of data at offset %llu run "
			    "past header_size %u", i, off, off, eh.hdr_size,
			    (unsigned long long)data_off, end);
	/* end is 8-aligned, so align8(data_end) <= end */
	if ((ret = check_zero(v, i, off, name_end, data_off)) < 0 ||
	    (ret = check_zero(v, i, off, data_end, align8(data_end))) < 0)
		return ret;
	memset(e, 0, sizeof(*e));
	memcpy(e->name, v->buf + off + EXT_HDR_SIZE, eh.name_size);
	e->reset_id = eh.reset_id;
	e->hdr_size = eh.hdr_size;
	e->hdr = v->buf + data_off;
	e->rec_offset = eh.record_offset;
	e->rec_size = eh.record_size;
	e->rec_align = eh.record_align;
	*next_r = (uint32_t)align8(data_end);
	return 0;
}

/* §2.5 step 10 (§2.2): the extension headers tile [base_header_size,
 * header_size). */
static int parse_exts(const struct vctx *v, struct mix_ifile *f)
{
	uint32_t off = v->h.base_header_size, cap = 0;
	int ret;

	while (off < v->h.header_size) {
		if (f->ext_count == cap) {
			uint32_t ncap = cap ? cap * 2 : 8;
			struct mix_ifile_ext *n;
			n = reallocarray(f->exts, ncap, sizeof(*n));
			if (n == NULL)
				return mix_err(-ENOMEM, "%s: out of memory for "
					       "%u extensions", v->path, ncap);
			f->exts = n;
			cap = ncap;
		}
		ret = parse_ext(v, f->ext_count, off,
				&f->exts[f->ext_count], &off);
		if (ret < 0)
			return ret;
		f->ext_count++;
	}
	return 0;
}

/* §2.5 step 11 (§2.2, §2.3): the built-in extensions come first, with
 * fixed layouts. */
static int check_builtins(const struct vctx *v, const struct mix_ifile *f)
{
	const struct mix_ifile_ext *m, *k;

	if (f->ext_count < 2)
		return verr(v, "field header_size at offset 8: %u holds %u "
			    "extension header(s); \"modseq\" and \"keywords\" "
			    "are required", v->h.header_size, f->ext_count);
	m = &f->exts[0];
	k = &f->exts[1];
	if (strcmp(m->name, MIX_EXT_NAME_MODSEQ) != 0)
		return verr(v, "extension 0 at offset %u: name \"%s\" is not "
			    "\"modseq\"", ext_offset(v, m), m->name);
	if (m->rec_offset != MIX_REC_MODSEQ_OFFSET || m->rec_size != 8 ||
	    m->rec_align != 8 || m->hdr_size != 0)
		return verr(v, "extension 0 \"modseq\" at offset %u: "
			    "record_offset %u, record_size %u, record_align "
			    "%u, hdr_size %u; must be 8, 8, 8, 0",
			    ext_offset(v, m), m->rec_offset, m->rec_size,
			    m->rec_align, m->hdr_size);
	if (strcmp(k->name, MIX_EXT_NAME_KEYWORDS) != 0)
		return verr(v, "extension 1 at offset %u: name \"%s\" is not "
			    "\"keywords\"", ext_offset(v, k), k->name);
	if (k->rec_offset != MIX_REC_KEYWORDS_OFFSET || k->rec_size % 4 != 0 ||
	    k->rec_align != 4)
		return verr(v, "extension 1 \"keywords\" at offset %u: "
			    "record_offset %u, record_size %u, record_align "
			    "%u; must be 16, a multiple of 4, 4",
			    ext_offset(v, k), k->rec_offset, k->rec_size,
			    k->rec_align);
	if (k->hdr_size < 4)
		return verr(v, "extension 1 \"keywords\" at offset %u: field "
			    "hdr_size at offset %u: %u is below the 4-byte "
			    "keyword count", ext_offset(v, k),
			    ext_offset(v, k), k->hdr_size);
	return 0;
}

/* §2.5 step 12 (§2.2): limits, alignment and bounds of extension i. */
static int check_ext(const struct vctx *v, const struct mix_ifile_ext *e,
		     uint32_t i)
{
	uint32_t off = ext_offset(v, e);
	uint32_t hdr_max = i == 1 ? KW_HDR_MAX :
			   strcmp(e->name, MIX_EXT_NAME_EXPUNGES) == 0 ?
			   MIX_XHIST_HDR_MAX : MIX_EXT_HDR_MAX;
	uint16_t a = e->rec_align;

	if (e->hdr_size > hdr_max)
		return verr(v, "extension %u \"%s\" at offset %u: field "
			    "hdr_size at offset %u: %u is above %u", i,
			    e->name, off, off, e->hdr_size, hdr_max);
	if (a != 1 && a != 2 && a != 4 && a != 8)
		return verr(v, "extension %u \"%s\" at offset %u: field "
			    "record_align at offset %u: %u is not 1, 2, 4 or "
			    "8", i, e->name, off, off + 12, a);
	if (e->rec_size > MIX_EXT_REC_MAX)
		return verr(v, "extension %u \"%s\" at offset %u: field "
			    "record_size at offset %u: %u is above %u", i,
			    e->name, off, off + 10, e->rec_size,
			    MIX_EXT_REC_MAX);
	if (e->rec_size == 0 && e->rec_offset != 0 && i != 1)
		return verr(v, "extension %u \"%s\" at offset %u: field "
			    "record_offset at offset %u: %u, but the extension "
			    "has no record data (must be 0)", i, e->name, off,
			    off + 8, e->rec_offset);
	if (e->rec_offset % a != 0)
		return verr(v, "extension %u \"%s\" at offset %u: field "
			    "record_offset at offset %u: %u is not a multiple "
			    "of record_align %u", i, e->name, off, off + 8,
			    e->rec_offset, a);
	if ((uint32_t)e->rec_offset + e->rec_size > v->h.record_size)
		return verr(v, "extension %u \"%s\" at offset %u: field "
			    "record_offset at offset %u: bytes %u..%u are "
			    "outside the %u-byte record (record_size at "
			    "offset 12)", i, e->name, off, off + 8,
			    e->rec_offset, e->rec_offset + e->rec_size - 1,
			    v->h.record_size);
	return 0;
}

struct span {
	uint32_t start, end;        /* [start, end) of a record */
	uint32_t ext;               /* UINT32_MAX: the fixed part */
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->ext > y->ext) - (x->ext < y->ext);
}

static void span_name(const struct mix_ifile *f, const struct span *s,
		      char *buf, size_t size)
{
	if (s->ext == UINT32_MAX)
		snprintf(buf, size, "the fixed part (bytes 0..%u)", s->end - 1);
	else
		snprintf(buf, size, "extension %u \"%s\" (bytes %u..%u)",
			 s->ext, f->exts[s->ext].name, s->start, s->end - 1);
}

/* §2.5 step 13 (§2.2): record data of extensions 1.. do not overlap each
 * other or the fixed part ("modseq" is the fixed part's modseq field). */
static int check_overlap(const struct vctx *v, const struct mix_ifile *f)
{
	struct span *s = malloc((size_t)f->ext_count * sizeof(*s));
	char a[120], b[120];
	uint32_t n = 0;
	int ret = 0;

	if (s == NULL)
		return mix_err(-ENOMEM, "%s: out of memory", v->path);
	s[n++] = (struct span){ 0, FIXED_SIZE, UINT32_MAX };
	for (uint32_t i = 1; i < f->ext_count; i++) {
		const struct mix_ifile_ext *e = &f->exts[i];
		if (e->rec_size > 0)
			s[n++] = (struct span){ e->rec_offset,
						e->rec_offset + e->rec_size, i };
	}
	qsort(s, n, sizeof(*s), span_cmp);
	for (uint32_t j = 1; j < n && ret == 0; j++) {
		if (s[j].start < s[j - 1].end) {
			span_name(f, &s[j - 1], a, sizeof(a));
			span_name(f, &s[j], b, sizeof(b));
			ret = verr(v, "record layout: %s overlaps %s", b, a);
		}
	}
	free(s);
	return ret;
}

struct name_ref {
	const char *name;
	uint32_t idx;
};

static int name_ref_cmp(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Sort refs by name; returns 1 with the indexes of two equal names
 * (*a_r < *b_r), or 0 if all are unique.  O(n log n), so that a hostile
 * file with many names cannot make verification quadratic. */
static int find_duplicate(struct name_ref *refs, uint32_t n, uint32_t *a_r,
			  uint32_t *b_r)
{
	if (n < 2)
		return 0;
	qsort(refs, n, sizeof(*refs), name_ref_cmp);
	for (uint32_t i = 1; i < n; i++) {
		if (strcmp(refs[i - 1].name, refs[i].name) == 0) {
			*a_r = refs[i - 1].idx;
			*b_r = refs[i].idx;
			return 1;
		}
	}
	return 0;
}

/* §2.5 step 14 (§2.2): extension names are unique. */
static int check_ext_names(const struct vctx *v, const struct mix_ifile *f)
{
	struct name_ref *r = malloc((size_t)f->ext_count * sizeof(*r));
	uint32_t a, b;
	int ret = 0;

	if (r == NULL)
		return mix_err(-ENOMEM, "%s: out of memory", v->path);
	for (uint32_t i = 0; i < f->ext_count; i++)
		r[i] = (struct name_ref){ f->exts[i].name, i };
	if (find_duplicate(r, f->ext_count, &a, &b))
		ret = verr(v, "extension %u at offset %u: name \"%s\" is "
			   "already used by extension %u", b,
			   ext_offset(v, &f->exts[b]), f->exts[b].name, a);
	free(r);
	return ret;
}

/* ---- §2.5 step 15: keywords ------------------------------------------ */

static int check_keyword_name(const struct vctx *v, uint32_t i,
			      const uint8_t *p, size_t len)
{
	size_t off = (size_t)(p - v->buf);

	if (len == 0 || len > MIX_MAX_KEYWORD_LEN)
		return verr(v, "keyword %u at offset %zu: length %zu is not "
			    "1..%u", i, off, len, MIX_MAX_KEYWORD_LEN);
	for (size_t k = 0; k < len; k++) {
		if (p[k] <= 0x20 || p[k] == 0x7f)
			return verr(v, "keyword %u at offset %zu: byte at "
				    "offset %zu is 0x%02x, a space or control "
				    "character", i, off, off + k, p[k]);
	}
	return 0;
}

static int check_keyword_dups(const struct vctx *v, const struct mix_ifile *f)
{
	struct name_ref *r;
	uint32_t a, b, n = f->keyword_count;
	int ret = 0;

	if (n < 2)
		return 0;
	if ((r = malloc((size_t)n * sizeof(*r))) == NULL)
		return mix_err(-ENOMEM, "%s: out of memory", v->path);
	for (uint32_t i = 0; i < n; i++)
		r[i] = (struct name_ref){ f->keywords[i], i };
	if (find_duplicate(r, n, &a, &b))
		ret = verr(v, "keyword %u at offset %zu: \"%s\" is the same "
			   "as keyword %u", b,
			   (size_t)((const uint8_t *)f->keywords[b] - v->buf),
			   f->keywords[b], a);
	free(r);
	return ret;
}

/* §2.5 step 15 (§2.3): u32 count, then count NUL-terminated names filling
 * hdr_size. */
static int parse_keywords(const struct vctx *v, struct mix_ifile *f)
{
	const struct mix_ifile_ext *e = &f->exts[1];
	const uint8_t *p = e->hdr + 4, *end = e->hdr + e->hdr_size;
	size_t off = (size_t)(e->hdr - v->buf);
	uint32_t count = mix_get_u32(e->hdr);
	int ret;

	if (count > MIX_MAX_KEYWORDS)
		return verr(v, "keywords header at offset %zu: count %u is "
			    "above %u", off, count, MIX_MAX_KEYWORDS);
	if (count > (uint32_t)e->rec_size * 8)
		return verr(v, "keywords header at offset %zu: %u keywords do "
			    "not fit the %u-bit bitmap of extension "
			    "\"keywords\" (record_size %u)", off, count,
			    e->rec_size * 8u, e->rec_size);
	f->keywords = calloc(count ? count : 1, sizeof(*f->keywords));
	if (f->keywords == NULL)
		return mix_err(-ENOMEM, "%s: out of memory", v->path);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
		if (nul == NULL)
			return verr(v, "keyword %u at offset %zu: no NUL "
				    "before the end of the keywords header "
				    "(hdr_size %u)", i, (size_t)(p - v->buf),
				    e->hdr_size);
		ret = check_keyword_name(v, i, p, (size_t)(nul - p));
		if (ret < 0)
			return ret;
		f->keywords[i] = (const char *)p;
		f->keyword_count = i + 1;
		p = nul + 1;
	}
	if (p != end)
		return verr(v, "keywords header at offset %zu: %zu bytes after "
			    "the last of %u keywords (hdr_size %u)", off,
			    (size_t)(end - p), count, e->hdr_size);
	return check_keyword_dups(v, f);
}

/* §2.5 steps 10-15: everything between the base header and the
 * records. */
static int verify_exts(const struct vctx *v, struct mix_ifile *f)
{
	int ret;

	if ((ret = parse_exts(v, f)) < 0 || (ret = check_builtins(v, f)) < 0)
		return ret;
	for (uint32_t i = 0; i < f->ext_count; i++) {
		if ((ret = check_ext(v, &f->exts[i], i)) < 0)
			return ret;
	}
	if ((ret = check_overlap(v, f)) < 0 ||
	    (ret = check_ext_names(v, f)) < 0)
		return ret;
	return parse_keywords(v, f);
}

/* ---- §2.5 steps 16-17: records --------------------------------------- */

/* The first bit at or above count that is set in the bitmap, or
 * UINT32_MAX. */
static uint32_t kw_stray_bit(const uint8_t *bm, uint32_t bytes, uint32_t count)
{
	for (uint32_t b = count / 8; b < bytes; b++) {
		uint8_t x = bm[b];
		if (b == count / 8)
			x &= (uint8_t)(0xffu << (count % 8));
		if (x != 0)
			return b * 8 + (uint32_t)__builtin_ctz(x);
	}
	return UINT32_MAX;
}

static int check_record(const struct vctx *v, const struct mix_ifile *f,
			struct rec_state *st, const uint8_t *rec)
{
	unsigned long long off = v->h.header_size +
		(unsigned long long)st->n * v->h.record_size;
	uint32_t uid = mix_get_u32(rec), bit;
	uint8_t flags = rec[4];
	uint64_t modseq = mix_get_u64(rec + MIX_REC_MODSEQ_OFFSET);

	if (uid <= st->prev_uid)
		return verr(v, "record %u at offset %llu: uid %u not above "
			    "previous uid %u", st->n, off, uid, st->prev_uid);
	if (uid >= v->h.next_uid)
		return verr(v, "record %u at offset %llu: uid %u not below "
			    "next_uid %u", st->n, off, uid, v->h.next_uid);
	if ((flags & ~MIX_FLAGS_ALL) != 0)
		return verr(v, "record %u at offset %llu: flags 0x%02x has "
			    "unknown bits 0x%02x", st->n, off, flags,
			    flags & ~MIX_FLAGS_ALL);
	if (modseq > v->h.highest_modseq)
		return verr(v, "record %u at offset %llu: modseq %llu above "
			    "highest_modseq %llu", st->n, off,
			    (unsigned long long)modseq,
			    (unsigned long long)v->h.highest_modseq);
	bit = kw_stray_bit(rec + MIX_REC_KEYWORDS_OFFSET, f->exts[1].rec_size,
			   f->keyword_count);
	if (bit != UINT32_MAX)
		return verr(v, "record %u at offset %llu: keyword bit %u is "
			    "set, but there are only %u keywords", st->n, off,
			    bit, f->keyword_count);
	if ((flags & MIX_FLAG_SEEN) != 0)
		st->seen++;
	else if (st->first_unseen == 0)
		st->first_unseen = uid;
	if ((flags & MIX_FLAG_DELETED) != 0) {
		st->deleted++;
		if (st->first_deleted == 0)
			st->first_deleted = uid;
	}
	st->prev_uid = uid;
	st->n++;
	return 0;
}

/* The header fields that summarize the records. */
static int check_totals(const struct vctx *v, const struct rec_state *st)
{
	const struct mix_index_header *h = &v->h;

	if (h->seen_messages_count != st->seen)
		return verr(v, "field seen_messages_count at offset 36: %u, "
			    "but %u records have SEEN", h->seen_messages_count,
			    st->seen);
	if (h->deleted_messages_count != st->deleted)
		return verr(v, "field deleted_messages_count at offset 40: "
			    "%u, but %u records have DELETED",
			    h->deleted_messages_count, st->deleted);
	if (st->first_unseen != 0 &&
	    h->first_unseen_uid_lowwater > st->first_unseen)
		return verr(v, "field first_unseen_uid_lowwater at offset 48: "
			    "%u is above uid %u, the first record without "
			    "SEEN", h->first_unseen_uid_lowwater,
			    st->first_unseen);
	if (st->first_deleted != 0 &&
	    h->first_deleted_uid_lowwater > st->first_deleted)
		return verr(v, "field first_deleted_uid_lowwater at offset "
			    "52: %u is above uid %u, the first record with "
			    "DELETED", h->first_deleted_uid_lowwater,
			    st->first_deleted);
	return 0;
}

static int verify_records(const struct vctx *v, const struct mix_ifile *f)
{
	const uint8_t *rec = v->buf + v->h.header_size;
	struct rec_state st = { 0 };
	int ret;

	for (uint32_t i = 0; i < v->h.messages_count; i++) {
		if ((ret = check_record(v, f, &st, rec)) < 0)
			return ret;
		rec += v->h.record_size;
	}
	return check_totals(v, &st);
}

/* ---- reading --------------------------------------------------------- */

static int parse(const void *buf, size_t size, const char *path, int crc,
		 struct mix_ifile *f_r)
{
	struct vctx v = { .path = path, .code = MIX_ECORRUPT, .buf = buf,
			  .size = size };
	int ret;

	memset(f_r, 0, sizeof(*f_r));
	/* §2.5, in order */
	if ((ret = check_ident(&v)) < 0 || (ret = check_sizes(&v)) < 0 ||
	    (ret = check_length(&v)) < 0 || (crc && (ret = check_crc(&v)) < 0) ||
	    (ret = check_fields(&v)) < 0 || (ret = verify_exts(&v, f_r)) < 0 ||
	    (ret = verify_records(&v, f_r)) < 0) {
		mix_ifile_free_keep_map(f_r);
		return ret;
	}
	f_r->hdr = buf;
	f_r->records = v.buf + v.h.header_size;
	return 0;
}

int mix_ifile_parse(const void *buf, size_t size, const char *path,
		    struct mix_ifile *f_r)
{
	return parse(buf, size, path, 1, f_r);
}

int mix_ifile_open(const char *path, struct mix_ifile *f_r)
{
	return mix_ifile_open_in(-1, path, f_r);
}

static int ifile_open(int dfd, const char *path, int crc,
		      struct mix_ifile *f_r);

int mix_ifile_open_in(int dfd, const char *path, struct mix_ifile *f_r)
{
	return ifile_open(dfd, path, 1, f_r);
}

int mix_ifile_open_nocrc_in(int dfd, const char *path, struct mix_ifile *f_r)
{
	return ifile_open(dfd, path, 0, f_r);
}

static int ifile_open(int dfd, const char *path, int crc,
		      struct mix_ifile *f_r)
{
	uint64_t size;
	void *map;
	int fd, ret;

	memset(f_r, 0, sizeof(*f_r));
	/* a regular file only, and never block opening (a FIFO would) */
	if ((fd = mix_regfile_open_ro_in(dfd, path, &size)) < 0)
		return fd;
	if (size == 0 || size > SIZE_MAX) {
		/* nothing to map; parse says what is wrong with an empty one */
		mix_io_close(&fd);
		if (size > SIZE_MAX)
			return mix_err(MIX_ECORRUPT, "%s: file is %llu bytes, "
				       "too large to map", path,
				       (unsigned long long)size);
		return parse("", 0, path, crc, f_r);
	}
	/* MAP_SHARED of a file that is only ever replaced by rename, never
	 * written or truncated in place (invariant 3) */
	if ((ret = mix_io_mmap_ro(fd, path, (size_t)size, &map)) < 0) {
		mix_io_close(&fd);
		return ret;
	}
	mix_io_close(&fd);
	if ((ret = parse(map, (size_t)size, path, crc, f_r)) < 0) {
		munmap(map, (size_t)size);
		return ret;
	}
	f_r->map = map;
	f_r->map_size = (size_t)size;
	return 0;
}

void mix_ifile_free_keep_map(struct mix_ifile *f)
{
	free(f->exts);
	free(f->keywords);
	memset(f, 0, sizeof(*f));
}

void mix_ifile_free(struct mix_ifile *f)
{
	if (f->map != NULL)
		munmap(f->map, f->map_size);
	mix_ifile_free_keep_map(f);
}

/* ---- writing --------------------------------------------------------- */

int mix_ifile_keywords_encode(const char *const *names, uint32_t count,
			      uint8_t **buf_r, uint32_t *size_r)
{
	uint64_t size = 4;
	uint8_t *buf, *p;

	for (uint32_t i = 0; i < count; i++)
		size += strlen(names[i]) + 1;
	if (size > UINT32_MAX)
		return mix_err(-ENOMEM, "keywords header: %llu bytes do not "
			       "fit hdr_size", (unsigned long long)size);
	if ((buf = malloc((size_t)size)) == NULL)
		return mix_err(-ENOMEM, "keywords header: out of memory for "
			       "%llu bytes", (unsigned long long)size);
	memcpy(buf, &count, 4);
	p = buf + 4;
	for (uint32_t i = 0; i < count; i++) {
		size_t len = strlen(names[i]) + 1;
		memcpy(p, names[i], len);
		p += len;
	}
	*buf_r = buf;
	*size_r = (uint32_t)size;
	return 0;
}

/* A checkpoint being written: a 1 MiB buffer in front of the file, and
 * the CRC of everything flushed so far. */
struct ckpt {
	char *path;                 /* dir/mix.index.tmp */
	int dfd;                    /* dir held open, or -1 */
	int fd;
	uint8_t *buf;
	size_t len;                 /* bytes in buf */
	uint64_t off;               /* file offset of buf[0] */
	uint32_t crc;
};

static int ckpt_flush(struct ckpt *c)
{
	int ret;

	if (c->len == 0)
		return 0;
	c->crc = mix_crc32c(c->crc, c->buf, c->len);
	if ((ret = mix_io_pwrite(c->fd, c->path, c->buf, c->len, c->off)) < 0)
		return ret;
	c->off += c->len;
	c->len = 0;
	return 0;
}

static int ckpt_put(struct ckpt *c, const uint8_t *data, size_t n)
{
	int ret;

	while (n > 0) {
		size_t k = WRITE_BUF_SIZE - c->len;
		if (k > n)
			k = n;
		memcpy(c->buf + c->len, data, k);
		c->len += k;
		data += k;
		n -= k;
		if (c->len == WRITE_BUF_SIZE && (ret = ckpt_flush(c)) < 0)
			return ret;
	}
	return 0;
}

/* §2.4: records are written as given except pad, which is written 0. */
static int ckpt_put_record(struct ckpt *c, const uint8_t *rec, uint32_t size)
{
	uint8_t *p;
	int ret;

	if (WRITE_BUF_SIZE - c->len < size && (ret = ckpt_flush(c)) < 0)
		return ret;
	p = c->buf + c->len;
	memcpy(p, rec, size);
	memset(p + offsetof(struct mix_index_record, pad), 0,
	       sizeof(((struct mix_index_record *)0)->pad));
	c->len += size;
	return 0;
}

/* What the caller passes that the verification of the built header could
 * not see, or that would make building it unsafe. */
static int check_src(const struct vctx *v, const struct mix_ifile_src *src)
{
	if (src->next_run == NULL || src->ext_count < 2 || src->exts == NULL)
		return verr(v, "no record source, or fewer than the 2 "
			    "built-in extensions");
	if (src->keyword_count > MIX_MAX_KEYWORDS)
		return verr(v, "%u keywords; at most %u", src->keyword_count,
			    MIX_MAX_KEYWORDS);
	if (src->keyword_count > 0 && src->keywords == NULL)
		return verr(v, "%u keywords but no names", src->keyword_count);
	for (uint32_t i = 0; i < src->keyword_count; i++) {
		if (src->keywords[i] == NULL)
			return verr(v, "keyword %u is NULL", i);
	}
	for (uint32_t i = 0; i < src->ext_count; i++) {
		const struct mix_ifile_ext *e = &src->exts[i];
		size_t len = strnlen(e->name, sizeof(e->name));
		if (len == 0 || len > MIX_EXT_NAME_MAX)
			return verr(v, "extension %u: name is empty or not "
				    "NUL-terminated within %u bytes", i,
				    MIX_EXT_NAME_MAX);
		uint32_t hdr_max = strcmp(e->name, MIX_EXT_NAME_EXPUNGES) == 0 ?
				   MIX_XHIST_HDR_MAX : MIX_EXT_HDR_MAX;
		if (i != 1 && e->hdr_size > hdr_max)
			return verr(v, "extension %u \"%s\": hdr_size %u is "
				    "above %u", i, e->name, e->hdr_size,
				    hdr_max);
		if (i != 1 && e->hdr_size > 0 && e->hdr == NULL)
			return verr(v, "extension %u \"%s\": hdr is NULL", i,
				    e->name);
	}
	return 0;
}

/* Write extension e with header data hdr[hdr_size] at off; returns the
 * offset after it.  §2.2. */
static uint32_t put_ext(uint8_t *buf, uint32_t off,
			const struct mix_ifile_ext *e, const uint8_t *hdr,
			uint32_t hdr_size)
{
	struct mix_index_ext_header eh = {
		.hdr_size = hdr_size, .reset_id = e->reset_id,
		.record_offset = e->rec_offset, .record_size = e->rec_size,
		.record_align = e->rec_align,
		.name_size = (uint16_t)strlen(e->name),
	};

	memcpy(buf + off, &eh, sizeof(eh));
	memcpy(buf + off + EXT_HDR_SIZE, e->name, eh.name_size);
	off += (uint32_t)align8(EXT_HDR_SIZE + eh.name_size);
	if (hdr_size > 0)
		memcpy(buf + off, hdr, hdr_size);
	return off + (uint32_t)align8(hdr_size);
}

/* Base header and extension headers (§2.1-2.3) into a zeroed buffer. */
static int build_header(const struct vctx *v, const struct mix_ifile_src *src,
			const uint8_t *kw, uint32_t kw_size, uint8_t **buf_r)
{
	struct mix_index_header h = src->hdr;
	uint64_t size = BASE_SIZE;
	uint32_t off = BASE_SIZE;
	uint8_t *buf;

	for (uint32_t i = 0; i < src->ext_count; i++) {
		size += align8(EXT_HDR_SIZE + strlen(src->exts[i].name));
		size += align8(i == 1 ? kw_size : src->exts[i].hdr_size);
	}
	if (size > UINT32_MAX - 7u)
		return verr(v, "extension headers of %llu bytes do not fit "
			    "header_size", (unsigned long long)size);
	if ((buf = calloc(1, (size_t)size)) == NULL)
		return mix_err(-ENOMEM, "%s: out of memory for a %llu-byte "
			       "header", v->path, (unsigned long long)size);
	h.magic = MIX_INDEX_MAGIC;
	h.major_version = MIX_INDEX_MAJOR;
	h.minor_version = MIX_INDEX_MINOR;
	h.base_header_size = BASE_SIZE;
	h.header_size = (uint32_t)size;
	h.record_size = src->record_size;
	h.compat_flags = MIX_COMPAT_LITTLE_ENDIAN;
	h.unused0 = 0;
	h.checksum = 0;
	h.file_size = size + (uint64_t)h.messages_count * src->record_size;
	memcpy(buf, &h, sizeof(h));
	for (uint32_t i = 0; i < src->ext_count; i++) {
		const struct mix_ifile_ext *e = &src->exts[i];
		off = i == 1 ? put_ext(buf, off, e, kw, kw_size) :
			       put_ext(buf, off, e, e->hdr, e->hdr_size);
	}
	*buf_r = buf;
	return 0;
}

/* Build the header area into *hbuf_r and verify it as the reader would
 * (§2.5 steps 6 and 9-15), filling *f with pointers into it. */
static int ckpt_prepare(struct vctx *v, const struct mix_ifile_src *src,
			struct mix_ifile *f, uint8_t **hbuf_r)
{
	uint8_t *kw = NULL;
	uint32_t kw_size = 0;
	int ret;

	if ((ret = check_src(v, src)) < 0)
		return ret;
	ret = mix_ifile_keywords_encode(src->keywords, src->keyword_count,
					&kw, &kw_size);
	if (ret < 0)
		return ret;
	ret = build_header(v, src, kw, kw_size, hbuf_r);
	free(kw);
	if (ret < 0)
		return ret;
	v->buf = *hbuf_r;
	memcpy(&v->h, v->buf, sizeof(v->h));
	v->size = v->h.header_size;
	if ((ret = check_sizes(v)) < 0 || (ret = check_fields(v)) < 0)
		return ret;
	return verify_exts(v, f);
}

/* Take the records from src->next_run, check each as the reader would
 * (§2.5 steps 16-17) and buffer it. */
static int ckpt_records(struct ckpt *c, const struct vctx *v,
			const struct mix_ifile *f,
			const struct mix_ifile_src *src)
{
	const uint32_t rs = v->h.record_size, want = v->h.messages_count;
	struct rec_state st = { 0 };
	const uint8_t *recs = NULL;
	uint32_t n = 0;
	int ret;

	while ((ret = src->next_run(src->ctx, &recs, &n)) > 0) {
		if (n > 0 && recs == NULL)
			return verr(v, "the record source gave a NULL run");
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *rec = recs + (size_t)i * rs;
			if (st.n == want)
				return verr(v, "the record source gave more "
					    "than messages_count %u records",
					    want);
			if ((ret = check_record(v, f, &st, rec)) < 0 ||
			    (ret = ckpt_put_record(c, rec, rs)) < 0)
				return ret;
		}
	}
	if (ret < 0)
		return ret;
	if (st.n != want)
		return verr(v, "the record source gave %u records, not "
			    "messages_count %u", st.n, want);
	return check_totals(v, &st);
}

/* Flush, fill in the checksum (§1: CRC32C of the file with the field
 * as 0, which is how it was written), fsync and close. */
static int ckpt_finish(struct ckpt *c)
{
	uint8_t crc[4];
	int ret;

	if ((ret = ckpt_flush(c)) < 0)
		return ret;
	memcpy(crc, &c->crc, sizeof(crc));
	ret = mix_io_pwrite(c->fd, c->path, crc, sizeof(crc),
			    HDR_OFF(checksum));
	if (ret < 0 || (ret = mix_io_fsync(c->fd, c->path)) < 0)
		return ret;
	mix_io_close(&c->fd);
	return 0;
}

/* Create the temp file and write all of it; on error the caller removes
 * it. */
static int ckpt_write(struct ckpt *c, const struct vctx *v,
		      const struct mix_ifile *f,
		      const struct mix_ifile_src *src, int *created_r)
{
	int ret;

	if ((c->buf = malloc(WRITE_BUF_SIZE)) == NULL)
		return mix_err(-ENOMEM, "%s: out of memory", c->path);
	c->fd = mix_io_open_own(c->dfd, c->path, O_WRONLY | O_TRUNC, 0600);
	if (c->fd < 0)
		return c->fd;
	*created_r = 1;
	if ((ret = ckpt_put(c, v->buf, v->h.header_size)) < 0 ||
	    (ret = ckpt_records(c, v, f, src)) < 0)
		return ret;
	return ckpt_finish(c);
}

/* Close and unlink the temp file, keeping the message of the error that
 * made us give up. */
static void ckpt_abort(struct ckpt *c, int created)
{
	char msg[512];

	mix_err_copy(msg, sizeof(msg));
	mix_io_close(&c->fd);
	if (created)
		(void)mix_io_unlink_in(c->dfd, c->path);
	mix_err_set(0, msg);
}

int mix_ifile_write(int dfd, const char *dir, const struct mix_ifile_src *src)
{
	struct ckpt c = { .fd = -1, .dfd = dfd };
	struct vctx v = { .code = MIX_EINVAL };
	struct mix_ifile f;
	uint8_t *hbuf = NULL;
	char *dst = NULL, *label = NULL;
	int ret, created = 0;

	memset(&f, 0, sizeof(f));
	if (asprintf(&c.path, "%s/%s.tmp", dir, MIX_INDEX_FILENAME) < 0)
		c.path = NULL;
	if (asprintf(&dst, "%s/%s", dir, MIX_INDEX_FILENAME) < 0)
		dst = NULL;
	if (asprintf(&label, "checkpoint of %s/%s", dir,
		     MIX_INDEX_FILENAME) < 0)
		label = NULL;
	if (c.path == NULL || dst == NULL || label == NULL) {
		ret = mix_err(-ENOMEM, "%s: out of memory", dir);
		goto out;
	}
	v.path = label;
	ret = ckpt_prepare(&v, src, &f, &hbuf);
	if (ret == 0)
		ret = ckpt_write(&c, &v, &f, src, &created);
	/* invariant 3: the one commit point is this rename */
	if (ret == 0)
		ret = mix_io_rename_in(dfd, c.path, dst);
	if (ret < 0)
		ckpt_abort(&c, created);
	else
		ret = mix_io_fsync_dir_in(dfd, dir);
out:
	mix_ifile_free_keep_map(&f);
	free(hbuf);
	free(c.buf);
	free(c.path);
	free(dst);
	free(label);
	return ret;
}
