/*
 * mix.index.log, reading (docs/format.md §3.1, §3.4): opening a log file,
 * checking its header, and handing out its transactions one at a time;
 * what follows a transaction that fails its framing or CRC check: a torn
 * tail, or damage.
 *
 * What: struct mix_log_reader reads a window of the file at a time
 * (MIX_LOG_WINDOW bytes, or one transaction when it is larger), so
 * reading a log costs memory bounded by its largest transaction plus the
 * window, never by the file: a sparse log of 4 GiB opens in microseconds.
 * When a transaction fails its checks at offset P, the reader scans the
 * rest of the file (4-aligned offsets, skipping holes with SEEK_DATA,
 * bounded work) for well-framed transactions, so that a caller can tell a
 * torn tail from damage (a later transaction marked PREV_SYNCED proves the
 * bytes at P were durable) and can salvage what follows.
 *
 * Who: a reader belongs to the thread that opened it; nothing shared.
 *
 * Invariants:
 * - Every byte read is hostile: header checks (§3.1), framing and CRC of
 *   each transaction (§3.2, §3.4) before a pointer into it is handed out.
 * - data holds the file bytes [base, base + have); have <= cap.  The
 *   window only grows to fit one transaction that passed its framing and
 *   (when larger than the window) a CRC computed in window-sized pieces,
 *   holes taken as zeros without reading them (crc32c_zeros), so a
 *   forged txn_size never costs memory, nor gigabytes of reading.
 * - size is the file size at open; it only shrinks (a read that ends
 *   early: the writer cut a failed write, §3.2).  Bytes appended after
 *   open are not read by this reader: the caller opens a new one.
 * - An I/O error is an error (negative return), never a torn tail:
 *   recovery must not cut a log it could not read.
 * - The damage scan does at most (size - P) + MIX_LOG_SCAN_SLACK bytes of
 *   CRC work on candidates that fail, so a crafted file cannot make it
 *   quadratic; when it stops early it says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "crc32c.h"
#include "err.h"
#include "fileio.h"
#include "regfile.h"
#include "txlog.h"

/* Transactions up to this size are read into the window directly;
 * larger ones are CRC-checked a piece at a time first (a window starts up
 * to 63 bytes before what it is read for, see reader_fill_read). */
#define TXN_IN_WINDOW_MAX (MIX_LOG_WINDOW - 64)

/* CRC work the damage scan may spend on failed candidates beyond the
 * bytes it scans */
#define MIX_LOG_SCAN_SLACK (UINT64_C(64) << 20)

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- header (§3.1) ------------------------------------------------------ */

/* §3.1: the version and byte order fields, checked before the checksum
 * (a newer major version may checksum differently). */
static int reader_check_version(const struct mix_log_reader *r,
				const struct mix_log_header *h)
{
	const char *p = r->path;

	if (h->magic == __builtin_bswap32(MIX_LOG_MAGIC))
		return mix_err(MIX_EVERSION, "%s: magic at offset 0 is "
			       "byte-swapped: log written with the other byte "
			       "order (§3.1)", p);
	if (h->magic != MIX_LOG_MAGIC)
		return mix_err(MIX_ECORRUPT, "%s: magic at offset 0 is 0x%08x, "
			       "expected 0x%08x (§3.1)", p, h->magic,
			       MIX_LOG_MAGIC);
	if (h->major_version > MIX_LOG_MAJOR)
		return mix_err(MIX_EVERSION, "%s: major_version at offset 4 is "
			       "%u; this library reads up to %u (§3.1)", p,
			       h->major_version, MIX_LOG_MAJOR);
	if (h->major_version < MIX_LOG_MAJOR_MIN)
		return mix_err(MIX_ECORRUPT, "%s: major_version at offset 4 is "
			       "%u, expected %u..%u (§3.1)", p,
			       h->major_version, MIX_LOG_MAJOR_MIN,
			       MIX_LOG_MAJOR);
	if ((h->compat_flags & MIX_COMPAT_LITTLE_ENDIAN) == 0)
		return mix_err(MIX_EVERSION, "%s: compat_flags at offset 32 is "
			       "0x%02x without little-endian: log written with "
			       "the other byte order (§3.1)", p, h->compat_flags);
	if (h->compat_flags != MIX_COMPAT_LITTLE_ENDIAN)
		return mix_err(MIX_EVERSION, "%s: compat_flags at offset 32 is "
			       "0x%02x: unknown compatibility bits (§3.1)", p,
			       h->compat_flags);
	return 0;
}

/* §3.1: the header fields, once the checksum matched. */
static int reader_check_fields(const struct mix_log_reader *r,
			       const struct mix_log_header *h)
{
	/* a file of our own minor version has exactly our header, with
	 * reserved bytes 0; a newer minor may have used them (format.md §1) */
	int newer = h->minor_version > MIX_LOG_MINOR;

	if (h->hdr_size < sizeof(*h) || h->hdr_size % 4 != 0 ||
	    h->hdr_size > r->size || (!newer && h->hdr_size != sizeof(*h)))
		return mix_err(MIX_ECORRUPT, "%s: hdr_size at offset 6 is %u; "
			       "expected %s, and at most the file size %llu "
			       "(§3.1)", r->path, h->hdr_size,
			       newer ? "a multiple of 4 >= 48" : "48",
			       (unsigned long long)r->size);
	if (!newer && !mix_all_zero(h->unused, sizeof(h->unused)))
		return mix_err(MIX_ECORRUPT, "%s: reserved bytes at offsets "
			       "33..39 are not 0 (§3.1)", r->path);
	/* offset 40 is uid_floor from major 3 on, reserved before */
	if (!newer && h->major_version < 3 && h->reserved != 0)
		return mix_err(MIX_ECORRUPT, "%s: reserved bytes at offsets "
			       "40..43 are not 0 in a major version %u file "
			       "(§3.1)", r->path, h->major_version);
	if (h->file_seq == 0 || h->prev_file_seq >= h->file_seq)
		return mix_err(MIX_ECORRUPT, "%s: file_seq at offset 12 is %u "
			       "and prev_file_seq at 16 is %u; expected 0 < "
			       "prev_file_seq < file_seq or prev 0 (§3.1)",
			       r->path, h->file_seq, h->prev_file_seq);
	if (!mix_modseq_file_ok(h->indexid, h->file_seq))
		return mix_err(MIX_ECORRUPT, "%s: indexid %u + file_seq %u "
			       "reaches 2^31: modseqs would pass 2^63 (§4)",
			       r->path, h->indexid, h->file_seq);
	return 0;
}

/* §3.1: verify the header and position the reader after it. */
static int reader_check_header(struct mix_log_reader *r)
{
	const size_t crc_off = offsetof(struct mix_log_header, checksum);
	struct mix_log_header h;
	uint8_t raw[sizeof(h)];
	uint32_t crc;
	int ret;

	if (r->size < sizeof(h))
		return mix_err(MIX_ECORRUPT, "%s: file is %llu bytes, shorter "
			       "than the %zu-byte log header (§3.1)", r->path,
			       (unsigned long long)r->size, sizeof(h));
	memcpy(&h, r->data, sizeof(h));
	ret = reader_check_version(r, &h);
	if (ret < 0)
		return ret;
	memcpy(raw, r->data, sizeof(raw));
	memset(raw + crc_off, 0, sizeof(h.checksum));
	crc = mix_crc32c(0, raw, sizeof(raw));
	if (crc != h.checksum)
		return mix_err(MIX_ECORRUPT, "%s: header checksum at offset 44 "
			       "is 0x%08x, computed 0x%08x (§3.1)", r->path,
			       h.checksum, crc);
	ret = reader_check_fields(r, &h);
	if (ret < 0)
		return ret;
	r->hdr = h;
	r->pos = h.hdr_size;
	return 0;
}


/* ---- opening -------------------------------------------------------------- */

/* Take ownership of data (have bytes from offset 0 of a size-byte file,
 * or of a buffer) and fd (-1 for a buffer), and verify the header. */
static int reader_init(struct mix_log_reader *r, const char *path,
		       uint8_t *data, uint64_t have, uint64_t size, int fd)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->data = data;
	r->have = have;
	r->cap = have;
	r->size = size;
	r->fd = fd;
	r->own_fd = fd >= 0;
	r->path = strdup(path);
	if (r->path == NULL) {
		mix_log_reader_close(r);
		return mix_err(-ENOMEM, "%s: out of memory", path);
	}
	ret = reader_check_header(r);
	if (ret < 0)
		mix_log_reader_close(r);
	return ret;
}

static int log_size_check(const char *path, uint64_t size)
{
	if (size > MIX_LOG_SIZE_MAX || size > SIZE_MAX)
		return mix_err(MIX_ECORRUPT, "%s: file is %llu bytes, larger "
			       "than the 4 GiB limit of a log file (§3.4)", path,
			       (unsigned long long)size);
	return 0;
}

int mix_log_reader_open(const char *path, struct mix_log_reader *r_r)
{
	return mix_log_reader_open_in(-1, path, r_r);
}

int mix_log_reader_open_in(int dfd, const char *path,
			   struct mix_log_reader *r_r)
{
	uint8_t *data = NULL;
	uint64_t size = 0, head;
	int fd, ret;

	memset(r_r, 0, sizeof(*r_r));
	r_r->fd = -1;
	/* §3: a regular file (a symlink to one is followed); a FIFO or a
	 * device is refused without blocking */
	fd = mix_regfile_open_ro_in(dfd, path, &size);
	if (fd < 0)
		return fd;
	ret = log_size_check(path, size);
	head = size < MIX_LOG_READ_HEAD ? size : MIX_LOG_READ_HEAD;
	if (ret == 0 && (data = malloc(head > 0 ? (size_t)head : 1)) == NULL)
		ret = mix_err(-ENOMEM, "%s: cannot allocate %llu bytes", path,
			      (unsigned long long)head);
	if (ret == 0)
		ret = mix_io_pread(fd, path, data, (size_t)head, 0);
	if (ret < 0) {
		free(data);
		mix_io_close(&fd);
		return ret;
	}
	return reader_init(r_r, path, data, head, size, fd);
}

int mix_log_reader_from_buf(const void *buf, size_t size, const char *path,
			    struct mix_log_reader *r_r)
{
	uint8_t *data;

	memset(r_r, 0, sizeof(*r_r));
	r_r->fd = -1;
	if (log_size_check(path, size) < 0)
		return MIX_ECORRUPT;
	data = malloc(size > 0 ? size : 1);
	if (data == NULL)
		return mix_err(-ENOMEM, "%s: cannot allocate %zu bytes", path,
			       size);
	if (size > 0)
		memcpy(data, buf, size);
	return reader_init(r_r, path, data, size, size, -1);
}

/* ---- the window ------------------------------------------------------------ */

/* Make the window hold [off, off + len) (off + len <= r->size): read
 * max(len, MIX_LOG_WINDOW) bytes from off, fewer at the end of the file,
 * into a buffer grown only when that is more than it holds.  A file that
 * became shorter since open ends where the read ended (r->size shrinks),
 * so the caller checks the window again: what was cut was never a
 * transaction a reader may keep (§3.2).  A buffer reader holds all of its
 * bytes already. */
static inline int in_window(const struct mix_log_reader *r, uint64_t off,
			    uint64_t len)
{
	return off >= r->base && off + len <= r->base + r->have;
}

static int reader_fill_read(struct mix_log_reader *r, uint64_t off,
			    uint64_t len);

static inline int reader_fill(struct mix_log_reader *r, uint64_t off,
			      uint64_t len)
{
	if (in_window(r, off, len))
		return 0;
	return reader_fill_read(r, off, len);
}

/* The window starts at off rounded down to 64 bytes, so that a
 * transaction has the same alignment in the buffer as in the file (the
 * CRC runs 8 bytes at a time). */
static int reader_fill_read(struct mix_log_reader *r, uint64_t off,
			    uint64_t len)
{
	uint64_t want, got, lead = off & 63;
	int ret;

	off -= lead;
	len += lead;
	if (!r->own_fd)
		return mix_err(MIX_EINVAL, "%s: bytes %llu..%llu outside the "
			       "buffer", r->path, (unsigned long long)off,
			       (unsigned long long)(off + len));
	want = min_u64(len > MIX_LOG_WINDOW ? len : MIX_LOG_WINDOW,
		       r->size - off);
	if (want > r->cap) {
		/* the new buffer first: a failure leaves the old window */
		uint8_t *data = malloc(want > 0 ? (size_t)want : 1);
		if (data == NULL)
			return mix_err(-ENOMEM, "%s: cannot allocate %llu "
				       "bytes", r->path,
				       (unsigned long long)want);
		free(r->data);
		r->data = data;
		r->cap = want;
		r->base = off;
		r->have = 0;
	}
	ret = mix_io_pread_upto(r->fd, r->path, r->data, (size_t)want, off,
				&got);
	r->base = off;
	if (ret < 0) {
		r->have = 0;
		return ret;
	}
	r->have = got;
	if (got < want)
		r->size = off + got;
	return 0;
}

/* ---- CRC32C over holes -------------------------------------------------- */

#define CRC32C_POLY_REFLECTED 0x82f63b78u

/* a * b modulo the CRC32C polynomial, both bit-reflected (x^0 is bit 31);
 * a is not 0.  (zlib's multmodp, for the Castagnoli polynomial.) */
static uint32_t crc_multmodp(uint32_t a, uint32_t b)
{
	uint32_t m = UINT32_C(1) << 31, p = 0;

	for (;;) {
		if (a & m) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = b & 1 ? (b >> 1) ^ CRC32C_POLY_REFLECTED : b >> 1;
	}
	return p;
}

/* The CRC32C (mix_crc32c's convention) of what crc covers followed by n
 * zero bytes, in O(log n) instead of O(n): a zero bit multiplies the
 * CRC register by x modulo the polynomial, so n zero bytes multiply it by
 * x^(8n).  Lets a hole of gigabytes be checked without reading it. */
static uint32_t crc32c_zeros(uint32_t crc, uint64_t n)
{
	uint32_t sq = UINT32_C(1) << 30;        /* x^1 */
	uint32_t xn = UINT32_C(1) << 31;        /* x^0 */

	for (uint64_t bits = n * 8; bits != 0; bits >>= 1) {
		if (bits & 1)
			xn = crc_multmodp(sq, xn);
		sq = crc_multmodp(sq, sq);
	}
	return ~crc_multmodp(xn, ~crc);
}

/* At o (< end, inside the file): the bytes of a hole that starts there,
 * up to end (0 when data starts at o or the file system cannot tell);
 * *data_r the bytes of data from o before the next hole (end - o if not
 * known).  Returns -1 when the file now ends before end (it shrank). */
static int64_t stream_hole(struct mix_log_reader *r, uint64_t o,
			   uint64_t end, uint64_t *data_r)
{
	off_t d, h;

	*data_r = end - o;
	d = lseek(r->fd, (off_t)o, SEEK_DATA);
	if (d < 0 && errno == ENXIO) {
		/* nothing but a hole up to the end of the file, or o is
		 * past it */
		off_t eof = lseek(r->fd, 0, SEEK_END);
		return eof >= 0 && (uint64_t)eof >= end ? (int64_t)(end - o)
							 : -1;
	}
	if (d < 0)
		return 0;
	if ((uint64_t)d > o)
		return (int64_t)(min_u64((uint64_t)d, end) - o);
	h = lseek(r->fd, (off_t)o, SEEK_HOLE);
	if (h > (off_t)o)
		*data_r = min_u64((uint64_t)h, end) - o;
	return 0;
}

/* CRC32C (§3.2) of the n-byte transaction at off, read a window at a time
 * so that a transaction larger than the window is checked before a
 * buffer that large is allocated; holes are taken as the zeros they read
 * as, without reading them.  Returns 1 and *crc_r; 0 if the file ended
 * first; -errno. */
static int reader_stream_crc(struct mix_log_reader *r, uint64_t off,
			     uint64_t n, uint32_t *crc_r)
{
	static const uint8_t zero[4];
	const size_t crc_off = offsetof(struct mix_log_boundary, crc);
	uint64_t o = off, end = off + n;
	uint32_t crc = 0;
	int ret;

	while (o < end) {
		uint64_t len = min_u64(TXN_IN_WINDOW_MAX, end - o), data;
		const uint8_t *p;

		if (o > off && r->own_fd) {
			int64_t z = stream_hole(r, o, end, &data);
			if (z < 0)
				return 0;
			if (z > 0) {
				crc = crc32c_zeros(crc, (uint64_t)z);
				o += (uint64_t)z;
				continue;
			}
			len = min_u64(len, data);
		}

		if ((ret = reader_fill(r, o, len)) < 0)
			return ret;
		if (o + len > r->base + r->have)
			return 0;
		p = r->data + (o - r->base);
		if (o == off) {
			/* the boundary: the crc field taken as 0 (n >= 16) */
			crc = mix_crc32c(0, p, crc_off);
			crc = mix_crc32c(crc, zero, sizeof(zero));
			crc = mix_crc32c(crc, p + crc_off + 4,
					 (size_t)len - (crc_off + 4));
		} else {
			crc = mix_crc32c(crc, p, (size_t)len);
		}
		o += len;
	}
	*crc_r = crc;
	return 1;
}

/* ---- one transaction (§3.4 checks 1-4) ---------------------------------- */

/* The common case of reader_frame, kept short because it runs once per
 * transaction: a plain boundary, the whole transaction in the window, the
 * CRC right.  Returns its size, or 0 to take the full path (which checks
 * and says everything again). */
static inline uint32_t reader_frame_fast(const struct mix_log_reader *r)
{
	uint64_t wend = r->base + r->have;
	struct mix_log_boundary bd;
	const uint8_t *txn;

	if (r->pos < r->base || r->pos + sizeof(bd) > wend)
		return 0;
	txn = r->data + (r->pos - r->base);
	memcpy(&bd, txn, sizeof(bd));
	if (bd.rec.type != MIX_LOG_BOUNDARY || bd.rec.size != sizeof(bd) ||
	    bd.txn_size < sizeof(bd) || bd.txn_size % 4 != 0 ||
	    bd.txn_size > wend - r->pos || bd.rec.flags != 0)
		return 0;
	return mix_log_txn_crc(txn, bd.txn_size) == bd.crc ? bd.txn_size : 0;
}

/* Is there a whole, CRC-valid transaction at r->pos?  Returns its size
 * with the window holding it; 0 after writing why not into detail; or
 * -errno when the file could not be read. */
static int64_t reader_frame(struct mix_log_reader *r, char *detail,
			    size_t dn)
{
	struct mix_log_boundary bd;
	uint64_t left;
	uint32_t crc = 0;
	int ret;

	ret = reader_fill(r, r->pos, min_u64(sizeof(bd), r->size - r->pos));
	if (ret < 0)
		return ret;
	left = r->size - r->pos;
	if (left < sizeof(bd)) {
		snprintf(detail, dn, "only %llu bytes left, less than a "
			 "boundary record", (unsigned long long)left);
		return 0;
	}
	memcpy(&bd, r->data + (r->pos - r->base), sizeof(bd));
	if (bd.rec.type != MIX_LOG_BOUNDARY || bd.rec.size != sizeof(bd) ||
	    (bd.rec.flags != 0 &&
	     (bd.rec.flags & ~mix_log_boundary_flags_valid(
		     r->hdr.major_version)) != 0)) {
		snprintf(detail, dn, "no boundary record (type %u, size %u, "
			 "flags 0x%x)", bd.rec.type, bd.rec.size, bd.rec.flags);
		return 0;
	}
	if (bd.txn_size < sizeof(bd) || bd.txn_size % 4 != 0) {
		snprintf(detail, dn, "txn_size %u is below 16 or not a "
			 "multiple of 4", bd.txn_size);
		return 0;
	}
	if (bd.txn_size > left) {
		snprintf(detail, dn, "txn_size %u runs past end of file (%llu)",
			 bd.txn_size, (unsigned long long)r->size);
		return 0;
	}
	if (bd.txn_size > TXN_IN_WINDOW_MAX) {
		/* a forged txn_size must not cost its size in memory */
		ret = reader_stream_crc(r, r->pos, bd.txn_size, &crc);
		if (ret < 0)
			return ret;
		if (ret == 0 || crc != bd.crc)
			goto bad_crc;
	}
	if ((ret = reader_fill(r, r->pos, bd.txn_size)) < 0)
		return ret;
	if (r->pos + bd.txn_size > r->base + r->have) {
		snprintf(detail, dn, "txn_size %u runs past end of file (%llu)",
			 bd.txn_size, (unsigned long long)r->size);
		return 0;
	}
	crc = mix_log_txn_crc(r->data + (r->pos - r->base), bd.txn_size);
	if (crc == bd.crc)
		return bd.txn_size;
bad_crc:
	snprintf(detail, dn, "CRC32C is 0x%08x, boundary says 0x%08x", crc,
		 bd.crc);
	return 0;
}

/* ---- after a bad transaction: torn tail or damage (§3.4) ---------------- */

struct scan {
	uint64_t first;      /* first well-framed transaction after P, or 0 */
	uint32_t count;      /* well-framed transactions found after P */
	uint64_t proof;      /* first of them marked PREV_SYNCED, or 0 */
	int nonzero;         /* a byte in [P, size) is not 0 */
	int partial;         /* stopped at its CRC budget */
	uint64_t spent, budget;
};

/* Move *q to the next data at or after it (SEEK_DATA): the bytes skipped
 * are a hole, zeros, where no transaction starts.  Returns 1, or 0 when
 * nothing but holes is left before r->size.  A file system without
 * SEEK_DATA has data everywhere. */
static int scan_seek_data(struct mix_log_reader *r, uint64_t *q)
{
	off_t d;

	if (!r->own_fd)
		return 1;
	d = lseek(r->fd, (off_t)*q, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO ? 0 : 1;
	if ((uint64_t)d >= r->size)
		return 0;
	if ((uint64_t)d > *q)
		*q = (uint64_t)d & ~UINT64_C(3);
	return 1;
}

/* Is there a well-framed transaction (§3.4 checks 1-4) at q, whose first
 * 16 bytes are in the window?  Returns 1 with *size_r and *flags_r, 0 if
 * not, 2 when checking it would pass the scan's budget, -errno. */
static int scan_candidate(struct mix_log_reader *r, struct scan *s,
			  uint64_t q, uint32_t *size_r, uint16_t *flags_r)
{
	uint16_t ok_flags = mix_log_boundary_flags_valid(r->hdr.major_version);
	struct mix_log_boundary bd;
	uint32_t crc = 0;
	int ret;

	memcpy(&bd, r->data + (q - r->base), sizeof(bd));
	if (bd.rec.type != MIX_LOG_BOUNDARY || bd.rec.size != sizeof(bd) ||
	    (bd.rec.flags & ~ok_flags) != 0 || bd.txn_size < sizeof(bd) ||
	    bd.txn_size % 4 != 0 || bd.txn_size > r->size - q)
		return 0;
	if (s->spent + bd.txn_size > s->budget)
		return 2;
	if (bd.txn_size > TXN_IN_WINDOW_MAX) {
		ret = reader_stream_crc(r, q, bd.txn_size, &crc);
	} else {
		ret = reader_fill(r, q, bd.txn_size);
		if (ret == 0 && (ret = q + bd.txn_size <= r->base + r->have))
			crc = mix_log_txn_crc(r->data + (q - r->base),
					      bd.txn_size);
	}
	if (ret < 0)
		return ret;
	if (ret == 0 || crc != bd.crc) {
		s->spent += bd.txn_size;
		return 0;
	}
	*size_r = bd.txn_size;
	*flags_r = bd.rec.flags;
	return 1;
}

/* Scan [bad, size) for well-framed transactions: at every 4-aligned
 * offset after bad, and after a well-framed one at its end.  Returns 0 or
 * -errno. */
static int reader_scan(struct mix_log_reader *r, uint64_t bad, struct scan *s)
{
	uint64_t q = bad;
	int ret;

	memset(s, 0, sizeof(*s));
	s->budget = r->size - bad + MIX_LOG_SCAN_SLACK;
	while (q < r->size) {
		uint64_t avail;
		uint32_t size;
		uint16_t flags;

		if (q < r->base || q >= r->base + r->have ||
		    (q > bad && r->base + r->have - q < 16 &&
		     r->size - q >= 16)) {
			/* the window is used up (or holds less of a
			 * candidate than there is): skip holes, read on */
			if ((ret = scan_seek_data(r, &q)) <= 0)
				return ret;
			ret = reader_fill(r, q, min_u64(16, r->size - q));
			if (ret < 0)
				return ret;
			if (q >= r->base + r->have)
				return 0;       /* the file ended sooner */
		}
		avail = r->base + r->have - q;
		if (avail < 4) {                /* the last bytes of the file */
			s->nonzero |= !mix_all_zero(r->data + (q - r->base), avail);
			return 0;
		}
		if (mix_get_u32(r->data + (q - r->base)) == 0) {
			q += 4;
			continue;
		}
		s->nonzero = 1;
		if (q > bad && avail >= 16 &&
		    mix_get_u32(r->data + (q - r->base)) == sizeof(struct mix_log_boundary)) {
			ret = scan_candidate(r, s, q, &size, &flags);
			if (ret < 0)
				return ret;
			if (ret == 2) {
				s->partial = 1;
				return 0;
			}
			if (ret == 1) {
				if (s->count++ == 0)
					s->first = q;
				if ((flags & MIX_LOG_PREV_SYNCED) && !s->proof)
					s->proof = q;
				q += size;
				continue;
			}
		}
		q += 4;
	}
	return 0;
}

/* torn_reason, cut to fit (a long path must not lose the offsets first:
 * they come before the details in every message) */
static void reader_reason(struct mix_log_reader *r, const char *fmt, ...)
	MIX_PRINTF(2, 3);
static void reader_reason(struct mix_log_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->torn_reason, sizeof(r->torn_reason), fmt, ap);
	va_end(ap);
}

/* Record the stop at r->pos: detail says why the transaction there is
 * invalid, s what follows it (§3.4). */
static void reader_set_torn(struct mix_log_reader *r, const char *detail,
			    const struct scan *s)
{
	char more[160] = "";
	const char *p = r->path;
	unsigned long long at = r->pos;

	r->torn = 1;
	r->torn_offset = r->pos;
	r->next_valid = s->first;
	r->valid_after = s->count;
	r->damaged = s->proof != 0;
	r->damage_proof = s->proof;
	r->scan_partial = s->partial;
	if (!s->nonzero && !s->partial) {
		reader_reason(r, "%s: transaction at offset %llu: %llu zero "
			      "bytes up to the end of file (space never "
			      "written)", p, at,
			      (unsigned long long)(r->size - r->pos));
		return;
	}
	if (s->partial && snprintf(more, sizeof(more), "; the scan for "
				   "transactions after it stopped after %llu "
				   "bytes of checks, so more may follow",
				   (unsigned long long)s->spent) < 0)
		more[0] = '\0';
	if (r->damaged)
		reader_reason(r, "%s: transaction at offset %llu: %s; damage, "
			      "not a torn tail: the transaction at offset %llu "
			      "is marked PREV_SYNCED (every byte before it was "
			      "durable before it was written); %u well-framed "
			      "transactions from offset %llu on follow it%s",
			      p, at, detail, (unsigned long long)s->proof,
			      s->count, (unsigned long long)s->first, more);
	else if (s->count > 0)
		reader_reason(r, "%s: transaction at offset %llu: %s; torn "
			      "tail: %u well-framed transactions after it "
			      "(from offset %llu on, none marked PREV_SYNCED) "
			      "are dropped with it%s", p, at, detail, s->count,
			      (unsigned long long)s->first, more);
	else
		reader_reason(r, "%s: transaction at offset %llu: %s%s", p, at,
			      detail, more);
}

static void reader_clear_torn(struct mix_log_reader *r)
{
	r->torn = 0;
	r->torn_offset = 0;
	r->torn_reason[0] = '\0';
	r->next_valid = 0;
	r->valid_after = 0;
	r->damaged = 0;
	r->damage_proof = 0;
	r->scan_partial = 0;
}

/* ---- the reader's calls ------------------------------------------------- */

int mix_log_reader_seek(struct mix_log_reader *r, uint64_t offset)
{
	if (offset < r->hdr.hdr_size || offset > r->size || offset % 4 != 0)
		return mix_err(MIX_ECORRUPT, "%s: log offset %llu is not a "
			       "transaction position (%u..%llu, 4-aligned) "
			       "(§3.4)", r->path, (unsigned long long)offset,
			       r->hdr.hdr_size, (unsigned long long)r->size);
	r->pos = offset;
	reader_clear_torn(r);
	return 0;
}

int mix_log_reader_next(struct mix_log_reader *r, const uint8_t **txn_r,
			uint32_t *size_r, uint64_t *offset_r)
{
	char detail[160];
	struct scan s;
	int64_t size;
	int ret;

	if (r->data == NULL || r->torn || r->pos >= r->size)
		return 0;
	/* an I/O error is an error, never a torn tail: recovery must not
	 * cut a log it could not read */
	size = reader_frame_fast(r);
	if (size == 0)
		size = reader_frame(r, detail, sizeof(detail));
	if (size < 0)
		return (int)size;
	if (size > 0) {
		*txn_r = r->data + (r->pos - r->base);
		*size_r = (uint32_t)size;
		*offset_r = r->pos;
		r->pos += (uint64_t)size;
		return 1;
	}
	if (r->pos >= r->size)
		return 0;       /* the file ended at pos after all */
	if ((ret = reader_scan(r, r->pos, &s)) < 0)
		return ret;
	reader_set_torn(r, detail, &s);
	return 0;
}

int mix_log_reader_skip_damage(struct mix_log_reader *r)
{
	if (!r->torn || r->next_valid == 0)
		return 0;
	r->pos = r->next_valid;
	reader_clear_torn(r);
	return 1;
}

void mix_log_reader_close(struct mix_log_reader *r)
{
	free(r->path);
	free(r->data);
	if (r->own_fd)
		mix_io_close(&r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}
