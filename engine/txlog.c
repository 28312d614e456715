/*
 * mix.index.log — the transaction log (docs/format.md §3 and §4).
 *
 * What: creating and rotating the log file, appending encoded
 * transactions, and encoding / decoding the operation records inside one
 * transaction.  Reading a log file back is engine/txlog-read.c.  Applying
 * operations to a snapshot is the caller's job.
 *
 * Who may change what: only the thread that owns the mailbox (and, across
 * processes, holds the log lock) calls mix_log_rotate_to, mix_log_append
 * and mix_log_sync, on its own struct mix_log_writer.  Readers, encoders
 * and the decoder touch no shared state: a struct mix_log_reader or
 * struct mix_buf belongs to one thread, and the decoder only reads the
 * transaction it is handed.
 *
 * Invariants:
 * - A batch of transactions is written with one pwrite at the end of
 *   valid data.  After a failed append or sync the writer takes no more
 *   appends (MIX_EPANIC): bytes at that offset may have been seen by
 *   another process, so the offset, and with it the modseq, must not be
 *   given to different bytes (§4); the caller rotates to a new file.
 * - The encoders emit only what the decoder accepts: every record is run
 *   through the decoder's own checks before the encoder returns.
 * - Every byte read from a file is hostile.  The decoder checks every
 *   record size, count and field (§3.3); failures are MIX_ECORRUPT naming
 *   the record and offset, never an assert.
 * - w->synced only moves forward on a completed fsync/fdatasync: a
 *   PREV_SYNCED flag (§3.2) set from it is never a false claim.
 * - Transactions are 4-aligned in 4-aligned buffers (the reader's buffer
 *   is malloc'd; hdr_size and every txn_size are multiples of 4), so the
 *   typed pointers handed out in struct mix_log_op are aligned.  Fields
 *   are read with memcpy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "crc32c.h"
#include "err.h"
#include "fileio.h"
#include "txlog.h"

/* ---- growable buffer --------------------------------------------------- */

int mix_buf_reserve(struct mix_buf *b, size_t more)
{
	size_t need, cap;
	uint8_t *p;

	if (more <= b->cap - b->len)
		return 0;
	if (more > SIZE_MAX - b->len)
		return mix_err(-ENOMEM, "log buffer: %zu + %zu bytes overflows",
			       b->len, more);
	need = b->len + more;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return mix_err(-ENOMEM, "log buffer: cannot grow to %zu bytes",
			       cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int mix_buf_append(struct mix_buf *b, const void *p, size_t n)
{
	int ret = mix_buf_reserve(b, n);

	if (ret < 0)
		return ret;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void mix_buf_free(struct mix_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ---- record validation (shared by the decoder and the encoders) -------- */

static const char *const log_type_names[] = {
	[MIX_LOG_BOUNDARY] = "boundary",
	[MIX_LOG_APPEND] = "append",
	[MIX_LOG_EXPUNGE] = "expunge",
	[MIX_LOG_FLAGS] = "flags",
	[MIX_LOG_KEYWORD] = "keyword",
	[MIX_LOG_KEYWORD_RESET] = "keyword-reset",
	[MIX_LOG_EXT_INTRO] = "ext-intro",
	[MIX_LOG_EXT_HDR] = "ext-hdr",
	[MIX_LOG_EXT_REC] = "ext-rec",
	[MIX_LOG_HDR] = "hdr",
	[MIX_LOG_APPEND_RUN] = "append-run",
	[MIX_LOG_EXT_RUN] = "ext-run",
	[MIX_LOG_UID_FLOOR] = "uid-floor",
};

static const char *log_type_name(uint16_t type)
{
	size_t n = sizeof(log_type_names) / sizeof(log_type_names[0]);

	if (type < n && log_type_names[type] != NULL)
		return log_type_names[type];
	return "of unknown type";
}

/* Where a record is, for messages.  encoding: the record was just built
 * by mix_logenc_* (a bad one is the caller's MIX_EINVAL, not corruption). */
struct rec_ctx {
	const char *name;
	uint32_t off;
	int encoding;
	uint8_t major;   /* the file's major version */
};

static int rec_bad(const struct rec_ctx *c, const char *fmt, ...)
	MIX_PRINTF(2, 3);
static int rec_bad(const struct rec_ctx *c, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (c->encoding)
		return mix_err(MIX_EINVAL, "cannot encode %s record: %s",
			       c->name, detail);
	return mix_err(MIX_ECORRUPT, "transaction record %s at offset %u: %s",
		       c->name, c->off, detail);
}

/* The payload (n bytes) holds at least its fixed header of hsize bytes. */
static int need_header(const struct rec_ctx *c, uint32_t n, size_t hsize)
{
	if (n >= hsize)
		return 0;
	return rec_bad(c, "payload of %u bytes is shorter than its %zu-byte "
		       "header", n, hsize);
}

/* The payload (n bytes at p) is its hsize-byte header, bytes of data
 * (what describes them: "5 flag bytes") and zero padding to 4. */
static int sized_payload(const struct rec_ctx *c, const uint8_t *p,
			 uint32_t n, size_t hsize, uint64_t bytes,
			 const char *what, ...) MIX_PRINTF(6, 7);
static int sized_payload(const struct rec_ctx *c, const uint8_t *p,
			 uint32_t n, size_t hsize, uint64_t bytes,
			 const char *what, ...)
{
	uint64_t want = hsize + ((bytes + 3) & ~3ull);
	char desc[96];
	va_list ap;

	if (n == want)
		return mix_all_zero(p + hsize + bytes, want - hsize - bytes) ? 0 :
		       rec_bad(c, "padding after the data is not zero");
	va_start(ap, what);
	vsnprintf(desc, sizeof(desc), what, ap);
	va_end(ap);
	return rec_bad(c, "payload is %u bytes, expected %llu for %s", n,
		       (unsigned long long)want, desc);
}

/* §3.3.1: n bytes of UID ranges, each first >= 1 and first <= last,
 * sorted and not overlapping (first > the previous range's last). */
static int dec_ranges(const struct rec_ctx *c, const uint8_t *p, uint32_t n,
		      struct mix_log_op *op)
{
	uint32_t count, prev_last = 0;

	if (n % sizeof(struct mix_log_uid_range) != 0)
		return rec_bad(c, "%u bytes of UID ranges is not a multiple "
			       "of 8", n);
	count = n / sizeof(struct mix_log_uid_range);
	for (uint32_t i = 0; i < count; i++) {
		uint32_t first = mix_get_u32(p + (size_t)i * 8);
		uint32_t last = mix_get_u32(p + (size_t)i * 8 + 4);

		if (first == 0)
			return rec_bad(c, "range %u: first UID is 0", i);
		if (first > last)
			return rec_bad(c, "range %u: first UID %u > last UID %u",
				       i, first, last);
		if (i > 0 && first <= prev_last)
			return rec_bad(c, "range %u: first UID %u is not above "
				       "the previous range's last UID %u "
				       "(ranges must be sorted, not overlapping)",
				       i, first, prev_last);
		prev_last = last;
	}
	op->ranges = (const struct mix_log_uid_range *)p;
	op->count = count;
	return 0;
}

/* §3.3.2 APPEND */
static int dec_append(const struct rec_ctx *c, const uint8_t *p, uint32_t n,
		      struct mix_log_op *op)
{
	uint32_t count, prev_uid = 0;

	if (n % sizeof(struct mix_log_append) != 0)
		return rec_bad(c, "payload of %u bytes is not a multiple of 8",
			       n);
	count = n / sizeof(struct mix_log_append);
	for (uint32_t i = 0; i < count; i++) {
		uint32_t uid = mix_get_u32(p + (size_t)i * 8);
		uint32_t flags = mix_get_u32(p + (size_t)i * 8 + 4);

		if (uid == 0)
			return rec_bad(c, "entry %u: UID is 0", i);
		if (uid <= prev_uid)
			return rec_bad(c, "entry %u: UID %u is not above the "
				       "previous UID %u", i, uid, prev_uid);
		/* next_uid becomes uid + 1, which must fit (found by
		 * tests/fuzz/fuzz-log.c: replay wrapped next_uid to 0) */
		if (uid == UINT32_MAX)
			return rec_bad(c, "entry %u: UID %u leaves no next_uid "
				       "(expected below %u)", i, uid,
				       UINT32_MAX);
		if (flags > 0xff || (flags & ~(uint32_t)MIX_FLAGS_ALL) != 0)
			return rec_bad(c, "entry %u (UID %u): flags 0x%x outside "
				       "0x%x", i, uid, flags,
				       (unsigned)MIX_FLAGS_ALL);
		prev_uid = uid;
	}
	op->appends = (const struct mix_log_append *)p;
	op->count = count;
	return 0;
}

/* §3.3.11 APPEND_RUN: the header, then count flag bytes padded to 4. */
static int dec_append_run(const struct rec_ctx *c, const uint8_t *p,
			  uint32_t n, struct mix_log_op *op)
{
	struct mix_log_append_run h;
	int ret;

	if ((ret = need_header(c, n, sizeof(h))) < 0)
		return ret;
	memcpy(&h, p, sizeof(h));
	if (h.first_uid == 0 || h.count == 0)
		return rec_bad(c, "first_uid %u, count %u: both must be above 0",
			       h.first_uid, h.count);
	/* next_uid becomes the last UID + 1, which must fit */
	if ((uint64_t)h.first_uid + h.count - 1 >= UINT32_MAX)
		return rec_bad(c, "UIDs %u + %u reach %u (expected the last "
			       "below %u)", h.first_uid, h.count, UINT32_MAX,
			       UINT32_MAX);
	if ((ret = sized_payload(c, p, n, sizeof(h), h.count,
				 "%u flag bytes", h.count)) < 0)
		return ret;
	for (uint32_t i = 0; i < h.count; i++)
		if ((p[sizeof(h) + i] & ~MIX_FLAGS_ALL) != 0)
			return rec_bad(c, "entry %u (UID %u): flags 0x%x "
				       "outside 0x%x", i, h.first_uid + i,
				       p[sizeof(h) + i],
				       (unsigned)MIX_FLAGS_ALL);
	op->first_uid = h.first_uid;
	op->count = h.count;
	op->data = p + sizeof(h);
	return 0;
}

/* §3.3.12 EXT_RUN: the header, then count × rec_size bytes padded to 4. */
static int dec_ext_run(const struct rec_ctx *c, const uint8_t *p, uint32_t n,
		       struct mix_log_op *op)
{
	struct mix_log_ext_run h;
	int ret;

	if ((ret = need_header(c, n, sizeof(h))) < 0)
		return ret;
	memcpy(&h, p, sizeof(h));
	if (h.rec_size == 0 || h.rec_size > MIX_EXT_REC_MAX)
		return rec_bad(c, "rec_size %u outside 1..%u", h.rec_size,
			       MIX_EXT_REC_MAX);
	if (h.first_uid == 0 || h.count == 0)
		return rec_bad(c, "first_uid %u, count %u: both must be above 0",
			       h.first_uid, h.count);
	if ((uint64_t)h.first_uid + h.count - 1 > UINT32_MAX)
		return rec_bad(c, "UIDs %u + %u pass %u", h.first_uid, h.count,
			       UINT32_MAX);
	if ((ret = sized_payload(c, p, n, sizeof(h),
				 (uint64_t)h.count * h.rec_size,
				 "%u records of %u bytes", h.count,
				 h.rec_size)) < 0)
		return ret;
	op->ext_id = h.ext_id;
	op->rec_size = h.rec_size;
	op->stride = h.rec_size;
	op->first_uid = h.first_uid;
	op->count = h.count;
	op->data = p + sizeof(h);
	return 0;
}

/* §3.3.4 FLAGS */
static int dec_flags(const struct rec_ctx *c, const uint8_t *p, uint32_t n,
		     struct mix_log_op *op)
{
	struct mix_log_flags f;
	int ret;

	if ((ret = need_header(c, n, sizeof(f))) < 0)
		return ret;
	memcpy(&f, p, sizeof(f));
	if ((f.add & ~MIX_FLAGS_ALL) != 0 || (f.remove & ~MIX_FLAGS_ALL) != 0)
		return rec_bad(c, "add 0x%02x / remove 0x%02x outside 0x%02x",
			       f.add, f.remove, (unsigned)MIX_FLAGS_ALL);
	if ((f.add & f.remove) != 0)
		return rec_bad(c, "add 0x%02x and remove 0x%02x overlap",
			       f.add, f.remove);
	if (f.pad != 0)
		return rec_bad(c, "pad is 0x%x, expected 0", f.pad);
	op->add = f.add;
	op->remove = f.remove;
	return dec_ranges(c, p + sizeof(f), n - sizeof(f), op);
}

/* §3.3.5 / §3.3.7: a name of size bytes at p, padded with zeros to
 * align4(size) bytes.  Keyword and extension names have the byte rules of
 * mix.index (format.md §2.2, §2.3): every byte above 0x20 and not 0x7f, so
 * that a checkpoint can always write what the log declared. */
static int dec_name(const struct rec_ctx *c, const uint8_t *p, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++) {
		if (p[i] == 0)
			return rec_bad(c, "name byte %u is NUL", i);
		if (p[i] <= 0x20 || p[i] == 0x7f)
			return rec_bad(c, "name byte %u is 0x%02x (control or "
				       "space)", i, p[i]);
	}
	if (!mix_all_zero(p + size, mix_align4(size) - size))
		return rec_bad(c, "padding after the name is not zero");
	return 0;
}

/* §3.3.5 KEYWORD */
static int dec_keyword(const struct rec_ctx *c, const uint8_t *p, uint32_t n,
		       struct mix_log_op *op)
{
	struct mix_log_keyword k;
	uint32_t name_end;
	int ret;

	if ((ret = need_header(c, n, sizeof(k))) < 0)
		return ret;
	memcpy(&k, p, sizeof(k));
	if (k.modify != MIX_LOG_KW_ADD && k.modify != MIX_LOG_KW_REMOVE)
		return rec_bad(c, "modify is %u, expected 1 (add) or 2 (remove)",
			       k.modify);
	if (k.pad != 0)
		return rec_bad(c, "pad is 0x%x, expected 0", k.pad);
	if (k.name_size == 0 || k.name_size > MIX_MAX_KEYWORD_LEN)
		return rec_bad(c, "name_size %u outside 1..%u", k.name_size,
			       MIX_MAX_KEYWORD_LEN);
	name_end = sizeof(k) + mix_align4(k.name_size);
	if (name_end > n)
		return rec_bad(c, "name of %u bytes runs past the record's %u "
			       "payload bytes", k.name_size, n);
	ret = dec_name(c, p + sizeof(k), k.name_size);
	if (ret < 0)
		return ret;
	op->modify = k.modify;
	op->name = (const char *)(p + sizeof(k));
	op->name_size = k.name_size;
	return dec_ranges(c, p + name_end, n - name_end, op);
}

/* §3.3.7 EXT_INTRO */
static int dec_ext_intro(const struct rec_ctx *c, const uint8_t *p,
			 uint32_t n, struct mix_log_op *op)
{
	struct mix_log_ext_intro in;
	uint32_t a;
	int ret;

	if ((ret = need_header(c, n, sizeof(in))) < 0)
		return ret;
	memcpy(&in, p, sizeof(in));
	if (in.name_size == 0 || in.name_size > MIX_EXT_NAME_MAX)
		return rec_bad(c, "name_size %u outside 1..%u", in.name_size,
			       MIX_EXT_NAME_MAX);
	if (n != sizeof(in) + mix_align4(in.name_size))
		return rec_bad(c, "payload is %u bytes, expected %u for a "
			       "%u-byte name", n,
			       (unsigned)sizeof(in) + mix_align4(in.name_size),
			       in.name_size);
	if (in.record_size > MIX_EXT_REC_MAX)
		return rec_bad(c, "record_size %u above %u", in.record_size,
			       MIX_EXT_REC_MAX);
	a = in.record_align;
	if (a != 1 && a != 2 && a != 4 && a != 8)
		return rec_bad(c, "record_align %u is not 1, 2, 4 or 8", a);
	if (in.hdr_size > MIX_EXT_HDR_MAX)
		return rec_bad(c, "hdr_size %u above %u", in.hdr_size,
			       MIX_EXT_HDR_MAX);
	if (in.pad != 0)
		return rec_bad(c, "pad is 0x%x, expected 0", in.pad);
	op->intro = in;
	op->ext_id = in.ext_id;
	op->name = (const char *)(p + sizeof(in));
	op->name_size = in.name_size;
	return dec_name(c, p + sizeof(in), in.name_size);
}

/* §3.3.8 EXT_HDR */
static int dec_ext_hdr(const struct rec_ctx *c, const uint8_t *p, uint32_t n,
		       struct mix_log_op *op)
{
	struct mix_log_ext_hdr h;
	int ret;

	if ((ret = need_header(c, n, sizeof(h))) < 0)
		return ret;
	memcpy(&h, p, sizeof(h));
	if (h.size > MIX_EXT_HDR_MAX ||
	    (uint64_t)h.offset + h.size > MIX_EXT_HDR_MAX)
		return rec_bad(c, "offset %u + size %u passes the %u-byte limit "
			       "of extension header data", h.offset, h.size,
			       MIX_EXT_HDR_MAX);
	if ((ret = sized_payload(c, p, n, sizeof(h), h.size,
				 "%u bytes of data", h.size)) < 0)
		return ret;
	op->ext_id = h.ext_id;
	op->offset = h.offset;
	op->size = h.size;
	op->data = p + sizeof(h);
	return 0;
}

/* §3.3.9 EXT_REC: entries of { u32 uid; data[rec_size]; zero pad }. */
static int dec_ext_rec(const struct rec_ctx *c, const uint8_t *p, uint32_t n,
		       struct mix_log_op *op)
{
	struct mix_log_ext_rec h;
	uint32_t stride, count, prev_uid = 0;
	int ret;

	if ((ret = need_header(c, n, sizeof(h))) < 0)
		return ret;
	memcpy(&h, p, sizeof(h));
	if (h.rec_size == 0 || h.rec_size > MIX_EXT_REC_MAX)
		return rec_bad(c, "rec_size %u outside 1..%u", h.rec_size,
			       MIX_EXT_REC_MAX);
	stride = mix_align4(4 + h.rec_size);
	if ((n - sizeof(h)) % stride != 0)
		return rec_bad(c, "%u bytes of entries is not a multiple of "
			       "the %u-byte entry", n - (unsigned)sizeof(h),
			       stride);
	count = (n - sizeof(h)) / stride;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = p + sizeof(h) + (size_t)i * stride;
		uint32_t uid = mix_get_u32(e);

		if (uid == 0 || uid <= prev_uid)
			return rec_bad(c, "entry %u: UID %u is not above the "
				       "previous UID %u (or is 0)", i, uid,
				       prev_uid);
		if (!mix_all_zero(e + 4 + h.rec_size, stride - 4 - h.rec_size))
			return rec_bad(c, "entry %u: padding is not zero", i);
		prev_uid = uid;
	}
	op->ext_id = h.ext_id;
	op->rec_size = h.rec_size;
	op->stride = stride;
	op->count = count;
	op->data = p + sizeof(h);
	return 0;
}

/* §3.3.10: the base header fields a HDR record may write. */
static int hdr_word_writable(uint32_t off)
{
	return off == offsetof(struct mix_index_header, uid_validity) ||
	       off == offsetof(struct mix_index_header, next_uid) ||
	       off == offsetof(struct mix_index_header, first_recent_uid) ||
	       (off >= offsetof(struct mix_index_header, day_stamp) &&
		off < offsetof(struct mix_index_header, checksum));
}

/* §3.3.10 HDR */
static int dec_hdr(const struct rec_ctx *c, const uint8_t *p, uint32_t n,
		   struct mix_log_op *op)
{
	struct mix_log_hdr h;
	int ret;

	if ((ret = need_header(c, n, sizeof(h))) < 0)
		return ret;
	memcpy(&h, p, sizeof(h));
	if (h.offset % 4 != 0 || h.size % 4 != 0)
		return rec_bad(c, "offset %u / size %u not multiples of 4",
			       h.offset, h.size);
	if ((uint64_t)h.offset + h.size > sizeof(struct mix_index_header))
		return rec_bad(c, "offset %u + size %u passes the %u-byte base "
			       "header", h.offset, h.size,
			       (unsigned)sizeof(struct mix_index_header));
	if ((ret = sized_payload(c, p, n, sizeof(h), h.size,
				 "%u bytes of data", h.size)) < 0)
		return ret;
	for (uint32_t o = h.offset; o < h.offset + h.size; o += 4) {
		if (!hdr_word_writable(o))
			return rec_bad(c, "writes base header offset %u; only "
				       "uid_validity, next_uid, "
				       "first_recent_uid, day_stamp and "
				       "day_first_uid may be written", o);
	}
	op->offset = h.offset;
	op->size = h.size;
	op->data = p + sizeof(h);
	return 0;
}

/* §3.3.13 UID_FLOOR (major 3): uid_floor >= 1, pad 0. */
static int dec_uid_floor(const struct rec_ctx *c, const uint8_t *p,
			 uint32_t n, struct mix_log_op *op)
{
	struct mix_log_uid_floor f;

	if (c->major < 3)
		return rec_bad(c, "type %u is a major version 3 record in a "
			       "file of major version %u", MIX_LOG_UID_FLOOR,
			       c->major);
	if (n != sizeof(f))
		return rec_bad(c, "payload is %u bytes, expected %zu", n,
			       sizeof(f));
	memcpy(&f, p, sizeof(f));
	if (f.uid_floor == 0)
		return rec_bad(c, "uid_floor is 0, expected at least 1");
	if (f.pad != 0)
		return rec_bad(c, "pad is 0x%x, expected 0", f.pad);
	op->uid_floor = f.uid_floor;
	return 0;
}

/* Validate the payload (n bytes at p) of a record of type and fill op. */
static int rec_decode(const struct rec_ctx *c, uint16_t type,
		      const uint8_t *p, uint32_t n, struct mix_log_op *op)
{
	memset(op, 0, sizeof(*op));
	op->type = type;
	switch (type) {
	case MIX_LOG_APPEND:
		return dec_append(c, p, n, op);
	case MIX_LOG_EXPUNGE:
	case MIX_LOG_KEYWORD_RESET:
		return dec_ranges(c, p, n, op);
	case MIX_LOG_FLAGS:
		return dec_flags(c, p, n, op);
	case MIX_LOG_KEYWORD:
		return dec_keyword(c, p, n, op);
	case MIX_LOG_EXT_INTRO:
		return dec_ext_intro(c, p, n, op);
	case MIX_LOG_EXT_HDR:
		return dec_ext_hdr(c, p, n, op);
	case MIX_LOG_EXT_REC:
		return dec_ext_rec(c, p, n, op);
	case MIX_LOG_HDR:
		return dec_hdr(c, p, n, op);
	case MIX_LOG_APPEND_RUN:
	case MIX_LOG_EXT_RUN:
		if (c->major < 2)
			return rec_bad(c, "type %u is a major version 2 record "
				       "in a file of major version %u", type,
				       c->major);
		return type == MIX_LOG_APPEND_RUN ? dec_append_run(c, p, n, op)
						  : dec_ext_run(c, p, n, op);
	case MIX_LOG_UID_FLOOR:
		return dec_uid_floor(c, p, n, op);
	default:
		/* §3.3: there are no optional record types; a BOUNDARY is
		 * only valid as a transaction's first record */
		return rec_bad(c, "type %u is not an operation record", type);
	}
}

/* ---- decoding a transaction -------------------------------------------- */

/* §3.2: the boundary record at the start of the transaction; its flags
 * may be PREV_SYNCED in a file of major version 3 or later. */
static int txn_check_boundary(const uint8_t *txn, uint32_t txn_size,
			      uint8_t major)
{
	struct rec_ctx c = { .name = "boundary", .off = 0 };
	uint16_t ok_flags = mix_log_boundary_flags_valid(major);
	struct mix_log_boundary bd;

	if (txn_size < sizeof(bd) || txn_size % 4 != 0)
		return rec_bad(&c, "transaction size %u is below 16 or not a "
			       "multiple of 4", txn_size);
	memcpy(&bd, txn, sizeof(bd));
	if (bd.rec.type != MIX_LOG_BOUNDARY || bd.rec.size != sizeof(bd) ||
	    (bd.rec.flags & ~ok_flags) != 0)
		return rec_bad(&c, "first record has type %u, size %u, flags "
			       "0x%x; expected a boundary (type 1, size 16, "
			       "flags within 0x%x)", bd.rec.type, bd.rec.size,
			       bd.rec.flags, ok_flags);
	if (bd.txn_size != txn_size)
		return rec_bad(&c, "txn_size %u does not match the transaction's "
			       "%u bytes", bd.txn_size, txn_size);
	return 0;
}

int mix_log_txn_next_op(const uint8_t *txn, uint32_t txn_size, uint8_t major,
			uint32_t *pos, struct mix_log_op *op_r)
{
	struct rec_ctx c = { .name = "header", .major = major };
	uint32_t p = *pos, size, left;
	uint16_t type, flags;
	int ret;

	if (((uintptr_t)txn & 3) != 0 || p % 4 != 0 || p > txn_size ||
	    (p > 0 && p < sizeof(struct mix_log_boundary)))
		return mix_err(MIX_EINVAL, "mix_log_txn_next_op: position %u "
			       "in a %u-byte transaction at %p is not a record "
			       "boundary, or the transaction is not 4-aligned",
			       p, txn_size, (const void *)txn);
	if (p == 0) {
		ret = txn_check_boundary(txn, txn_size, major);
		if (ret < 0)
			return ret;
		p = sizeof(struct mix_log_boundary);
	}
	if (p == txn_size) {
		*pos = p;
		return 0;
	}
	c.off = p;
	left = txn_size - p;
	if (left < sizeof(struct mix_log_rec))
		return rec_bad(&c, "only %u bytes left in the transaction, less "
			       "than a record header", left);
	/* §3.3: the record header */
	size = mix_get_u32(txn + p);
	type = mix_get_u16(txn + p + 4);
	flags = mix_get_u16(txn + p + 6);
	c.name = log_type_name(type);
	if (size < sizeof(struct mix_log_rec) || size % 4 != 0)
		return rec_bad(&c, "size %u is below 8 or not a multiple of 4",
			       size);
	if (size > left)
		return rec_bad(&c, "size %u runs past the transaction's end "
			       "(%u bytes left)", size, left);
	if (flags != 0)
		return rec_bad(&c, "flags 0x%x, expected 0", flags);
	ret = rec_decode(&c, type, txn + p + 8, size - 8, op_r);
	if (ret < 0)
		return ret;
	*pos = p + size;
	return 1;
}

/* ---- encoding ---------------------------------------------------------- */

static int enc_check_aligned(const struct mix_buf *b)
{
	if (b->len % 4 != 0)
		return mix_err(MIX_EINVAL, "log buffer length %zu is not a "
			       "multiple of 4", b->len);
	return 0;
}

int mix_logenc_begin(struct mix_buf *b, size_t *start_r)
{
	struct mix_log_boundary bd = {
		.rec = { .size = sizeof(bd), .type = MIX_LOG_BOUNDARY },
	};
	size_t start = b->len;
	int ret;

	ret = enc_check_aligned(b);
	if (ret == 0)
		ret = mix_buf_append(b, &bd, sizeof(bd));
	if (ret < 0)
		return ret;
	*start_r = start;
	return 0;
}

void mix_logenc_end(struct mix_buf *b, size_t start)
{
	uint8_t *txn;
	size_t size;

	if (start > b->len || b->len - start < sizeof(struct mix_log_boundary))
		return;
	txn = b->data + start;
	size = b->len - start;
	if (size > UINT32_MAX)
		size = 0;   /* unreadable on purpose; see txlog.h */
	mix_put_u32(txn + offsetof(struct mix_log_boundary, txn_size),
		(uint32_t)size);
	mix_put_u32(txn + offsetof(struct mix_log_boundary, crc), 0);
	if (size != 0)
		mix_put_u32(txn + offsetof(struct mix_log_boundary, crc),
			mix_log_txn_crc(txn, (uint32_t)size));
}

/* Append a record of type with a zero-filled payload of payload bytes
 * (padded to 4); *start_r gets the record's position in b. */
static int rec_open(struct mix_buf *b, uint16_t type, uint64_t payload,
		    size_t *start_r)
{
	uint64_t size = sizeof(struct mix_log_rec) + ((payload + 3) & ~3ull);
	struct mix_log_rec rec = { .type = type };
	int ret;

	ret = enc_check_aligned(b);
	if (ret < 0)
		return ret;
	if (size > UINT32_MAX)
		return mix_err(MIX_EINVAL, "cannot encode %s record: %llu bytes "
			       "is too large", log_type_name(type),
			       (unsigned long long)size);
	ret = mix_buf_reserve(b, (size_t)size);
	if (ret < 0)
		return ret;
	rec.size = (uint32_t)size;
	*start_r = b->len;
	memcpy(b->data + b->len, &rec, sizeof(rec));
	memset(b->data + b->len + sizeof(rec), 0, (size_t)size - sizeof(rec));
	b->len += (size_t)size;
	return 0;
}

/* Check the record just built at start with the decoder; on failure drop
 * it (b->len = start) and return MIX_EINVAL. */
static int rec_close(struct mix_buf *b, size_t start)
{
	const uint8_t *rec = b->data + start;
	uint16_t type = mix_get_u16(rec + 4);
	struct rec_ctx c = { .name = log_type_name(type), .encoding = 1,
			     .major = MIX_LOG_MAJOR };
	struct mix_log_op op;
	int ret;

	ret = rec_decode(&c, type, rec + 8, mix_get_u32(rec) - 8, &op);
	if (ret < 0)
		b->len = start;
	return ret;
}

int mix_logenc_append(struct mix_buf *b, const struct mix_log_append *recs,
		      uint32_t count)
{
	uint64_t n = (uint64_t)count * sizeof(*recs);
	size_t start = 0;
	int ret = rec_open(b, MIX_LOG_APPEND, n, &start);

	if (ret < 0)
		return ret;
	if (n > 0)
		memcpy(b->data + start + 8, recs, (size_t)n);
	return rec_close(b, start);
}

int mix_logenc_append_run(struct mix_buf *b, uint32_t uid0,
			  const uint8_t *flags, uint32_t count)
{
	struct mix_log_append_run h = { uid0, count };
	size_t start = 0;
	int ret;

	if (count == 0)
		return 0;
	ret = rec_open(b, MIX_LOG_APPEND_RUN, sizeof(h) + (uint64_t)count,
		       &start);
	if (ret < 0)
		return ret;
	memcpy(b->data + start + 8, &h, sizeof(h));
	memcpy(b->data + start + 8 + sizeof(h), flags, count);
	return rec_close(b, start);
}

/* EXPUNGE and KEYWORD_RESET: a payload of ranges only (§3.3.3, §3.3.6). */
static int enc_ranges_rec(struct mix_buf *b, uint16_t type,
			  const struct mix_log_uid_range *r, uint32_t count)
{
	uint64_t n = (uint64_t)count * sizeof(*r);
	size_t start = 0;
	int ret = rec_open(b, type, n, &start);

	if (ret < 0)
		return ret;
	if (n > 0)
		memcpy(b->data + start + 8, r, (size_t)n);
	return rec_close(b, start);
}

int mix_logenc_expunge(struct mix_buf *b, const struct mix_log_uid_range *r,
		       uint32_t count)
{
	return enc_ranges_rec(b, MIX_LOG_EXPUNGE, r, count);
}

int mix_logenc_keyword_reset(struct mix_buf *b,
			     const struct mix_log_uid_range *r, uint32_t count)
{
	return enc_ranges_rec(b, MIX_LOG_KEYWORD_RESET, r, count);
}

int mix_logenc_flags(struct mix_buf *b, uint8_t add, uint8_t remove,
		     const struct mix_log_uid_range *r, uint32_t count)
{
	struct mix_log_flags f = { .add = add, .remove = remove };
	uint64_t n = (uint64_t)count * sizeof(*r);
	size_t start = 0;
	int ret = rec_open(b, MIX_LOG_FLAGS, sizeof(f) + n, &start);

	if (ret < 0)
		return ret;
	memcpy(b->data + start + 8, &f, sizeof(f));
	if (n > 0)
		memcpy(b->data + start + 8 + sizeof(f), r, (size_t)n);
	return rec_close(b, start);
}

int mix_logenc_keyword(struct mix_buf *b, uint8_t modify, const char *name,
		       const struct mix_log_uid_range *r, uint32_t count)
{
	struct mix_log_keyword k = { .modify = modify };
	uint64_t n = (uint64_t)count * sizeof(*r);
	size_t nlen, start = 0, rpos;
	int ret;

	if (name == NULL || (nlen = strlen(name)) > MIX_MAX_KEYWORD_LEN)
		return mix_err(MIX_EINVAL, "cannot encode keyword record: name "
			       "missing or longer than %u bytes",
			       MIX_MAX_KEYWORD_LEN);
	k.name_size = (uint16_t)nlen;
	ret = rec_open(b, MIX_LOG_KEYWORD,
		       sizeof(k) + mix_align4((uint32_t)nlen) + n, &start);
	if (ret < 0)
		return ret;
	memcpy(b->data + start + 8, &k, sizeof(k));
	memcpy(b->data + start + 8 + sizeof(k), name, nlen);
	rpos = start + 8 + sizeof(k) + mix_align4((uint32_t)nlen);
	if (n > 0)
		memcpy(b->data + rpos, r, (size_t)n);
	return rec_close(b, start);
}

int mix_logenc_ext_intro(struct mix_buf *b,
			 const struct mix_log_ext_intro *intro,
			 const char *name)
{
	struct mix_log_ext_intro in = *intro;
	size_t nlen, start = 0;
	int ret;

	if (name == NULL || (nlen = strlen(name)) > MIX_EXT_NAME_MAX)
		return mix_err(MIX_EINVAL, "cannot encode ext-intro record: "
			       "name missing or longer than %u bytes",
			       MIX_EXT_NAME_MAX);
	in.name_size = (uint16_t)nlen;
	in.pad = 0;
	ret = rec_open(b, MIX_LOG_EXT_INTRO,
		       sizeof(in) + mix_align4((uint32_t)nlen), &start);
	if (ret < 0)
		return ret;
	memcpy(b->data + start + 8, &in, sizeof(in));
	memcpy(b->data + start + 8 + sizeof(in), name, nlen);
	return rec_close(b, start);
}

int mix_logenc_ext_hdr(struct mix_buf *b, uint32_t ext_id, uint32_t offset,
		       const void *data, uint32_t size)
{
	struct mix_log_ext_hdr h = { ext_id, offset, size };
	size_t start = 0;
	int ret;

	if (size > MIX_EXT_HDR_MAX)
		return mix_err(MIX_EINVAL, "cannot encode ext-hdr record: size "
			       "%u above %u", size, MIX_EXT_HDR_MAX);
	ret = rec_open(b, MIX_LOG_EXT_HDR, sizeof(h) + mix_align4(size), &start);
	if (ret < 0)
		return ret;
	memcpy(b->data + start + 8, &h, sizeof(h));
	if (size > 0)
		memcpy(b->data + start + 8 + sizeof(h), data, size);
	return rec_close(b, start);
}

int mix_logenc_ext_rec(struct mix_buf *b, uint32_t ext_id, uint32_t rec_size,
		       const uint32_t *uids, const uint8_t *data,
		       uint32_t count)
{
	struct mix_log_ext_rec h = { ext_id, rec_size };
	uint32_t stride;
	size_t start = 0;
	uint8_t *e;
	int ret;

	if (rec_size == 0 || rec_size > MIX_EXT_REC_MAX)
		return mix_err(MIX_EINVAL, "cannot encode ext-rec record: "
			       "rec_size %u outside 1..%u", rec_size,
			       MIX_EXT_REC_MAX);
	stride = mix_align4(4 + rec_size);
	ret = rec_open(b, MIX_LOG_EXT_REC,
		       sizeof(h) + (uint64_t)count * stride, &start);
	if (ret < 0)
		return ret;
	memcpy(b->data + start + 8, &h, sizeof(h));
	e = b->data + start + 8 + sizeof(h);
	for (uint32_t i = 0; i < count; i++, e += stride) {
		mix_put_u32(e, uids[i]);
		memcpy(e + 4, data + (size_t)i * rec_size, rec_size);
	}
	return rec_close(b, start);
}

int mix_logenc_ext_rec_run(struct mix_buf *b, uint32_t ext_id,
			   uint32_t rec_size, uint32_t uid0,
			   const uint8_t *data, const uint8_t *set,
			   uint32_t count)
{
	uint32_t stride, n = count, i;
	size_t start = 0;
	uint8_t *e;
	int ret;

	if (rec_size == 0 || rec_size > MIX_EXT_REC_MAX)
		return mix_err(MIX_EINVAL, "cannot encode ext-run record: "
			       "rec_size %u outside 1..%u", rec_size,
			       MIX_EXT_REC_MAX);
	if (set)
		for (n = 0, i = 0; i < count; i++)
			n += set[i] != 0;
	if (n == 0)
		return 0;
	if (n == count) {
		/* every message of the run: EXT_RUN, the data as it is */
		struct mix_log_ext_run h = { ext_id, rec_size, uid0, count };
		uint64_t bytes = (uint64_t)count * rec_size;
		ret = rec_open(b, MIX_LOG_EXT_RUN, sizeof(h) + bytes, &start);
		if (ret < 0)
			return ret;
		memcpy(b->data + start + 8, &h, sizeof(h));
		memcpy(b->data + start + 8 + sizeof(h), data, (size_t)bytes);
		return rec_close(b, start);
	}
	/* some: EXT_REC, a UID per entry */
	{
		struct mix_log_ext_rec h = { ext_id, rec_size };
		stride = mix_align4(4 + rec_size);
		ret = rec_open(b, MIX_LOG_EXT_REC,
			       sizeof(h) + (uint64_t)n * stride, &start);
		if (ret < 0)
			return ret;
		memcpy(b->data + start + 8, &h, sizeof(h));
		e = b->data + start + 8 + sizeof(h);
		for (i = 0; i < count; i++) {
			if (!set[i])
				continue;
			mix_put_u32(e, uid0 + i);
			memcpy(e + 4, data + (size_t)i * rec_size, rec_size);
			e += stride;
		}
	}
	return rec_close(b, start);
}

int mix_logenc_hdr(struct mix_buf *b, uint32_t offset, const void *data,
		   uint32_t size)
{
	struct mix_log_hdr h = { offset, size };
	size_t start = 0;
	int ret;

	if (size > sizeof(struct mix_index_header))
		return mix_err(MIX_EINVAL, "cannot encode hdr record: size %u "
			       "above the base header's %u bytes", size,
			       (unsigned)sizeof(struct mix_index_header));
	ret = rec_open(b, MIX_LOG_HDR, sizeof(h) + mix_align4(size), &start);
	if (ret < 0)
		return ret;
	memcpy(b->data + start + 8, &h, sizeof(h));
	if (size > 0)
		memcpy(b->data + start + 8 + sizeof(h), data, size);
	return rec_close(b, start);
}

int mix_logenc_uid_floor(struct mix_buf *b, uint32_t floor)
{
	struct mix_log_uid_floor f = { .uid_floor = floor };
	size_t start = 0;
	int ret = rec_open(b, MIX_LOG_UID_FLOOR, sizeof(f), &start);

	if (ret < 0)
		return ret;
	memcpy(b->data + start + 8, &f, sizeof(f));
	return rec_close(b, start);
}

int mix_logenc_mark_prev_synced(struct mix_buf *b, size_t start)
{
	struct mix_log_boundary bd;
	uint8_t *txn;

	if (start > b->len || b->len - start < sizeof(bd) || start % 4 != 0)
		return mix_err(MIX_EINVAL, "mix_logenc_mark_prev_synced: no "
			       "transaction at %zu of a %zu-byte buffer", start,
			       b->len);
	txn = b->data + start;
	memcpy(&bd, txn, sizeof(bd));
	if (bd.rec.type != MIX_LOG_BOUNDARY || bd.rec.size != sizeof(bd) ||
	    bd.txn_size < sizeof(bd) || bd.txn_size > b->len - start ||
	    bd.crc != mix_log_txn_crc(txn, bd.txn_size))
		return mix_err(MIX_EINVAL, "mix_logenc_mark_prev_synced: the "
			       "transaction at %zu is not complete (call "
			       "mix_logenc_end first)", start);
	bd.rec.flags |= MIX_LOG_PREV_SYNCED;
	memcpy(txn + offsetof(struct mix_log_rec, flags), &bd.rec.flags,
	       sizeof(bd.rec.flags));
	mix_put_u32(txn + offsetof(struct mix_log_boundary, crc),
		mix_log_txn_crc(txn, bd.txn_size));
	return 0;
}

/* ---- writing ----------------------------------------------------------- */

/* §3.1: a fresh header with its checksum. */
static void log_hdr_init(struct mix_log_header *h, uint32_t indexid,
			 uint32_t file_seq, uint32_t prev_file_seq,
			 uint32_t prev_file_offset, uint32_t uid_floor)
{
	memset(h, 0, sizeof(*h));
	h->magic = MIX_LOG_MAGIC;
	h->major_version = MIX_LOG_MAJOR;
	h->minor_version = MIX_LOG_MINOR;
	h->hdr_size = sizeof(*h);
	h->indexid = indexid;
	h->file_seq = file_seq;
	h->prev_file_seq = prev_file_seq;
	h->prev_file_offset = prev_file_offset;
	h->create_stamp = (uint64_t)time(NULL);
	h->compat_flags = MIX_COMPAT_LITTLE_ENDIAN;
	h->uid_floor = uid_floor;
	h->checksum = mix_crc32c(0, h, sizeof(*h));
}

/* dir/name in malloc'd memory, or NULL. */
static char *path_join(const char *dir, const char *name)
{
	char *p;

	/* asprintf leaves p undefined on failure */
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* Run an I/O call for cleanup without losing the current error message. */
static void unlink_keep_err(int dfd, const char *path)
{
	char msg[512];

	mix_err_copy(msg, sizeof(msg));
	(void)mix_io_unlink_in(dfd, path);
	(void)mix_err_set(0, msg);
}

int mix_log_sync_path(int dfd, const char *path)
{
	int fd = mix_io_open_in(dfd, path, O_RDONLY, 0), ret;
	if (fd < 0)
		return fd;
	ret = mix_io_fdatasync(fd, path);
	mix_io_close(&fd);
	return ret;
}

int mix_log_tmp_create(int dfd, const char *tmp)
{
	int fd = mix_io_open_in(dfd, tmp, O_CREAT | O_EXCL | O_RDWR |
				O_NOFOLLOW, 0644), ret;

	if (fd != -EEXIST)
		return fd;
	/* One a crash left: its name must stay (recovery counted its
	 * file_seq as used, and a crash before the new file is in place
	 * must find it again), and its old content must never show under
	 * the new header: empty, durably, before anything is written. */
	mix_err_clear();
	if ((fd = mix_io_open_own(dfd, tmp, O_RDWR | O_TRUNC, 0644)) < 0)
		return fd;
	if ((ret = mix_io_fsync(fd, tmp)) < 0) {
		mix_io_close(&fd);
		return ret;
	}
	return fd;
}

/* Write and fsync the new log under tmp; w->fd stays open on it. */
static int rotate_write_tmp(int dfd, struct mix_log_writer *w,
			    const char *tmp)
{
	int ret;

	w->fd = mix_log_tmp_create(dfd, tmp);
	if (w->fd < 0) {
		ret = w->fd;
		w->fd = -1;
		return ret;
	}
	ret = mix_io_pwrite(w->fd, tmp, &w->hdr, sizeof(w->hdr), 0);
	if (ret == 0)
		ret = mix_io_fsync(w->fd, tmp);
	return ret;
}

/* §3.5 steps 2 and 3, shared by both kinds of rotation: path (if any) to
 * log2, directory fsync, tmp to path, directory fsync; *placed says
 * whether the second rename happened.
 *
 * §3.5: the two renames.  The old log's rename is made durable before the
 * new file takes its name: otherwise a crash could keep the second rename
 * and lose the first, and the old log (with transactions mix.index may not
 * have yet) would be gone.
 *
 * If the directory fsync after the second rename fails, the new log is in
 * place but its name may not be durable.  Leaving it there was a bug: the
 * caller could not tell this failure from one before the first rename
 * (mix.index.log exists in both), kept appending to the old file, now
 * mix.index.log.2, past the prev_file_offset the new log records — where
 * recovery never reads — and a crash lost those acknowledged commits
 * (tests/test-faults.c, "crash after a rotation whose last directory fsync
 * failed").  So the new (empty) log is taken away again: every failure
 * after the first rename leaves no mix.index.log, the state a crash after
 * step 2 leaves, which recovery handles by rotating again. */
static int renames_into_place(int dfd, const char *dir, const char *path,
			      const char *tmp, const char *log2, int *placed)
{
	int ret = mix_io_rename_in(dfd, path, log2);

	*placed = 0;
	if (ret == -ENOENT)
		mix_err_clear();        /* no active log yet */
	else if (ret < 0)
		return ret;
	else if ((ret = mix_io_fsync_dir_in(dfd, dir)) < 0)
		return ret;
	if ((ret = mix_io_rename_in(dfd, tmp, path)) < 0)
		return ret;
	*placed = 1;
	return mix_io_fsync_dir_in(dfd, dir);
}

static int rotate_renames(int dfd, struct mix_log_writer *w,
			  const char *tmp, const char *log2)
{
	int placed, ret = renames_into_place(dfd, w->dir, w->path, tmp, log2,
					     &placed);

	if (ret < 0 && placed)
		unlink_keep_err(dfd, w->path);   /* empty: nothing lost (above) */
	return ret;
}

static int rotate_check_args(const char *dir, uint32_t indexid,
			     uint32_t file_seq, uint32_t prev_file_seq)
{
	if (file_seq == 0 || prev_file_seq >= file_seq)
		return mix_err(MIX_EINVAL, "%s/%s: cannot create log with "
			       "file_seq %u after prev_file_seq %u", dir,
			       MIX_LOG_FILENAME, file_seq, prev_file_seq);
	if (!mix_modseq_file_ok(indexid, file_seq))
		return mix_err(MIX_ELIMIT, "%s/%s: indexid %u + file_seq %u "
			       "reaches 2^31: its modseqs would pass 2^63 (§4)",
			       dir, MIX_LOG_FILENAME, indexid, file_seq);
	return 0;
}

int mix_log_rotate_to(const char *dir, uint32_t indexid, uint32_t file_seq,
		      uint32_t prev_file_seq, uint32_t prev_file_offset,
		      struct mix_log_writer *w_r)
{
	return mix_log_rotate_to_floor(-1, dir, indexid, file_seq,
				       prev_file_seq, prev_file_offset, 0,
				       w_r);
}

int mix_log_rotate_to_floor(int dfd, const char *dir, uint32_t indexid,
			    uint32_t file_seq, uint32_t prev_file_seq,
			    uint32_t prev_file_offset, uint32_t uid_floor,
			    struct mix_log_writer *w_r)
{
	struct mix_log_writer w = { .fd = -1 };
	char *tmp = NULL, *log2 = NULL;
	int ret;

	memset(w_r, 0, sizeof(*w_r));
	w_r->fd = -1;
	ret = rotate_check_args(dir, indexid, file_seq, prev_file_seq);
	if (ret < 0)
		return ret;
	w.path = path_join(dir, MIX_LOG_FILENAME);
	tmp = path_join(dir, MIX_LOG_TMP_FILENAME);
	log2 = path_join(dir, MIX_LOG2_FILENAME);
	w.dir = strdup(dir);
	if (w.path == NULL || tmp == NULL || log2 == NULL || w.dir == NULL) {
		ret = mix_err(-ENOMEM, "%s: out of memory", dir);
		goto out;
	}
	log_hdr_init(&w.hdr, indexid, file_seq, prev_file_seq,
		     prev_file_offset, uid_floor);
	w.offset = sizeof(w.hdr);
	/* rotate_write_tmp fsyncs the header before the file is used */
	w.synced = w.offset;
	ret = rotate_write_tmp(dfd, &w, tmp);
	if (ret == 0)
		ret = rotate_renames(dfd, &w, tmp, log2);
out:
	if (ret < 0) {
		if (tmp != NULL)
			unlink_keep_err(dfd, tmp);
		mix_log_writer_close(&w);
	} else {
		*w_r = w;
	}
	free(tmp);
	free(log2);
	return ret;
}

int mix_log_switch_begin(const char *dir, int fd, uint32_t indexid,
			 uint32_t file_seq, uint32_t prev_file_seq,
			 uint32_t prev_file_offset, uint32_t uid_floor,
			 struct mix_log_writer *w_r)
{
	struct mix_log_writer w = { .fd = -1 };
	char *tmp = NULL;
	int ret;

	memset(w_r, 0, sizeof(*w_r));
	w_r->fd = -1;
	if ((ret = rotate_check_args(dir, indexid, file_seq, prev_file_seq)) < 0)
		return ret;
	w.path = path_join(dir, MIX_LOG_FILENAME);
	tmp = path_join(dir, MIX_LOG_TMP_FILENAME);
	w.dir = strdup(dir);
	if (w.path == NULL || tmp == NULL || w.dir == NULL) {
		ret = mix_err(-ENOMEM, "%s: out of memory", dir);
		goto out;
	}
	log_hdr_init(&w.hdr, indexid, file_seq, prev_file_seq,
		     prev_file_offset, uid_floor);
	w.offset = sizeof(w.hdr);
	w.synced = 0;   /* nothing durable until mix_log_switch_complete */
	ret = mix_io_pwrite(fd, tmp, &w.hdr, sizeof(w.hdr), 0);
	if (ret == 0)
		w.fd = fd;   /* ours from here on */
out:
	if (ret < 0)
		mix_log_writer_close(&w);
	else
		*w_r = w;
	free(tmp);
	return ret;
}

int mix_log_switch_complete(int dfd, const char *dir, int old_fd)
{
	char *path = path_join(dir, MIX_LOG_FILENAME);
	char *tmp = path_join(dir, MIX_LOG_TMP_FILENAME);
	char *log2 = path_join(dir, MIX_LOG2_FILENAME);
	int ret = 0;

	if (path == NULL || tmp == NULL || log2 == NULL) {
		ret = mix_err(-ENOMEM, "%s: out of memory", dir);
		goto out;
	}
	/* §3.5: the old log is durable to the end the new one names, and
	 * the new one's header (its UID floor) before it takes the name */
	if (old_fd >= 0)
		ret = mix_io_fdatasync(old_fd, path);
	if (ret == 0)
		ret = mix_log_sync_path(dfd, tmp);
	/* the two renames, as a synchronous rotation makes them; but a
	 * failure never takes the new log away: transactions were
	 * acknowledged in it (recovery adopts it where it is) */
	if (ret == 0) {
		int placed;
		ret = renames_into_place(dfd, dir, path, tmp, log2, &placed);
	}
out:
	free(path);
	free(tmp);
	free(log2);
	return ret;
}

int mix_log_append_batch(struct mix_log_writer *w, const void *buf,
			 size_t len, size_t first_txn)
{
	char msg[512];
	size_t done = 0;
	int ret, cut;

	if (w->path == NULL || w->fd < 0 || len % 4 != 0)
		return mix_err(MIX_EINVAL, "mix_log_append: writer not open or "
			       "length %zu not a multiple of 4", len);
	if (w->failed)
		return mix_err(MIX_EPANIC, "%s: an earlier append or sync failed; "
			       "the log takes no more writes (§4)", w->path);
	if (w->offset > MIX_LOG_SIZE_MAX || len > MIX_LOG_SIZE_MAX - w->offset)
		return mix_err(MIX_ELIMIT, "%s: appending %zu bytes at offset "
			       "%llu would pass the 4 GiB log limit (§3.4)",
			       w->path, len, (unsigned long long)w->offset);
	if (len == 0)
		return 0;
	ret = mix_io_pwrite_part(w->fd, w->path, buf, len, w->offset, &done);
	if (ret == 0) {
		w->offset += len;
		return 0;
	}
	/* part of the batch may be on disk: cut it so that recovery cannot
	 * replay a transaction whose committer was told it failed */
	mix_err_copy(msg, sizeof(msg));
	cut = mix_io_ftruncate(w->fd, w->path, w->offset);
	if (cut == 0 && (ret == -ENOSPC || ret == -EDQUOT) && done < first_txn)
		/* What landed was less than one transaction and is gone
		 * again: a reader in another process saw at most a torn
		 * tail ("the end for now"), so the offset (the modseq) of
		 * the failed batch was never visible and may be used by the
		 * next one.  Out of space is the one failure worth riding
		 * out: the operator frees space and commits go on. */
		return mix_err_set(ret, msg);
	w->failed = 1;
	return mix_err_set(ret, msg);
}

int mix_log_append(struct mix_log_writer *w, const void *buf, size_t len)
{
	return mix_log_append_batch(w, buf, len, 0);
}

int mix_log_sync(struct mix_log_writer *w)
{
	int ret;

	if (w->path == NULL || w->fd < 0)
		return mix_err(MIX_EINVAL, "mix_log_sync: writer not open");
	if (w->failed)
		return mix_err(MIX_EPANIC, "%s: an earlier append or sync failed; "
			       "the log cannot be made durable (§4)", w->path);
	ret = mix_io_fdatasync(w->fd, w->path);
	if (ret < 0)
		w->failed = 1;   /* a failed fsync cannot be retried */
	else
		w->synced = w->offset;   /* §3.2 PREV_SYNCED */
	return ret;
}

void mix_log_writer_close(struct mix_log_writer *w)
{
	if (w->path != NULL)
		mix_io_close(&w->fd);
	free(w->path);
	free(w->dir);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}
