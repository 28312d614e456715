/*
 * mixctl — look at and check an index directory (docs/reliability.md,
 * docs/format.md).  The project's own tool: it uses the engine's internal
 * headers and readers, and writes to the directory only for salvage.
 *
 *   mixctl check DIR   verify everything the files promise; print each
 *                      problem as "FILE: offset N: field: what is wrong
 *                      (expected X)"; exit 0 only when clean
 *   mixctl dump DIR    mix.index: header fields, extensions, keywords,
 *                      records
 *   mixctl log DIR     one line per log transaction: file_seq, offset,
 *                      modseq, size, records (.log.2, .log, then a
 *                      mix.index.log.newtmp if there is one)
 *   mixctl salvage DIR the library's MIX_OPEN_SALVAGE: keep every valid
 *                      transaction of a damaged index and say what was
 *                      skipped (the only command that writes)
 *
 * check — the library's verdict first, then mixctl's own file checks:
 *  - the library: mix_index_open(MIX_OPEN_READONLY), with the engine's
 *    warning callback collecting what recovery repaired or worked around
 *    (a torn tail cut off, a rebuilt index).  This is the authority: if
 *    the library refuses the directory, check says NOT CLEAN with the
 *    library's error; what it warns about is reported as warnings.  The
 *    rules of recovery live in the library only, so the two cannot drift
 *    apart; mixctl's checks below add detail (every problem, not the
 *    first, with its offset), and if they disagree with the library
 *    (they call damaged what the library opens, or the reverse) that is
 *    itself a problem, reported with both reasons;
 *  - mix.index: its own field checks (sizes, checksum, header counters,
 *    UID order, record modseqs against highest_modseq, low-water marks),
 *    which report every problem, then the engine's full verification
 *    (mix_ifile_parse, format.md §2.5), which stops at the first;
 *  - each log (§3.1-§3.4): header fields and checksum, indexid equal to
 *    the index's, every transaction's framing, CRC and records (decoded
 *    with the engine's decoder);
 *  - across files (§3.4-§3.5, §4): the chain mix.index.log.2 ->
 *    mix.index.log (file_seq, prev_file_seq, prev_file_offset), the
 *    index's log position inside the chain, transactions that mix.index
 *    contains having modseqs at most its highest_modseq and the first one
 *    after it a higher one;
 *  - the library's recovered state (mixctl never replays by itself:
 *    which position to start from, which logs belong and how far to read
 *    are engine/recovery.c's rules, and mix_index_recovered says what it
 *    chose): torn transactions are judged from where its replay started,
 *    its replay must end where the last log's intact transactions end,
 *    and the snapshot it published must agree with itself (UID order,
 *    modseqs, counters).
 *  - a virtual index (one with the vmap extension, format.md §5): the
 *    vmap header and every record's vmap data in the newest snapshot,
 *    by the library's checker (mix_virtual_check_snap): each problem as
 *    "DIR: vmap header: offset N: field: ..." or "DIR: vmap record: UID
 *    N: ...".  The library opens such an index (the vmap is the virtual
 *    mailbox's data), so these are problems but no disagreement.
 *  A torn tail where a crash can leave one (after the index's position,
 *  in the last log of the chain) and stray temporary files are warnings:
 *  recovery handles them without losing anything durable.
 *
 * Exit status: 0 clean (warnings allowed), 1 problems found, 2 usage or
 * a directory that cannot be read.  Every non-zero exit says why on
 * stderr (for check: the library's verdict and the first problem).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mix/mix.h"
#include "bytes.h"
#include "crc32c.h"
#include "format.h"
#include "index-file.h"
#include "recovery.h"
#include "txlog.h"
#include "virtual.h"

#define MAX_REPORTS_PER_KIND 10

/* ---- reporting ------------------------------------------------------------ */

static unsigned n_errors, n_warnings;
static char first_problem[512];   /* mixctl's own first, for stderr */

/* Offsets already reported (per run), so the engine's verdict on the
 * same field is not printed twice. */
static long long reported[64];
static unsigned n_reported;

static int was_reported(long long off)
{
	for (unsigned i = 0; i < n_reported; i++)
		if (reported[i] == off)
			return 1;
	return 0;
}

static void problem(const char *file, long long off, const char *field,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void problem(const char *file, long long off, const char *field,
		    const char *fmt, ...)
{
	va_list ap;

	char what[400];

	n_errors++;
	if (off >= 0 && n_reported < sizeof(reported) / sizeof(reported[0]))
		reported[n_reported++] = off;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (off >= 0)
		printf("%s: offset %lld: %s: %s\n", file, off, field, what);
	else
		printf("%s: %s: %s\n", file, field, what);
	if (!first_problem[0]) {
		if (off >= 0)
			snprintf(first_problem, sizeof(first_problem), "%s: "
				 "offset %lld: %s: %s", file, off, field, what);
		else
			snprintf(first_problem, sizeof(first_problem),
				 "%s: %s: %s", file, field, what);
	}
}

static void warning(const char *file, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warning(const char *file, const char *fmt, ...)
{
	va_list ap;

	n_warnings++;
	printf("%s: warning: ", file);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* An engine message ("PATH: ... offset N ...") as a problem line. */
static void engine_problem(const char *file, const char *what, const char *msg)
{
	const char *p = strstr(msg, "offset ");
	size_t flen = strlen(file);
	long long off = -1;

	if (p)
		off = strtoll(p + 7, NULL, 10);
	if (off >= 0 && was_reported(off))
		return;         /* the same field, found by our own checks */
	if (strncmp(msg, file, flen) == 0 && msg[flen] == ':')
		msg += flen + 1 + (msg[flen + 1] == ' ');
	problem(file, off, what, "%s", msg);
}

/* ---- files ---------------------------------------------------------------- */

struct file {
	char *path;
	uint8_t *data;
	size_t size;
	int present;
};

static void path_of(struct file *f, const char *dir, const char *name)
{
	if (asprintf(&f->path, "%s/%s", dir, name) < 0) {
		perror("mixctl");
		exit(2);
	}
}

/* Read the whole file; absent files are not an error. */
static void load(struct file *f, const char *dir, const char *name)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	memset(f, 0, sizeof(*f));
	path_of(f, dir, name);
	/* O_NONBLOCK: a FIFO put in a file's place must not hang the tool
	 * (the library refuses it the same way, regfile.c) */
	if ((fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		if (errno == ENOENT)
			return;
		fprintf(stderr, "mixctl: %s: %s\n", f->path, strerror(errno));
		exit(2);
	}
	errno = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size > MIX_LOG_SIZE_MAX ||
	    !(f->data = malloc(st.st_size ? (size_t)st.st_size : 1))) {
		fprintf(stderr, "mixctl: %s: cannot read (%s)\n", f->path,
			errno ? strerror(errno) :
			!S_ISREG(st.st_mode) ? "not a regular file" :
			"larger than a log file may be, format.md §3.4");
		exit(2);
	}
	while (got < (size_t)st.st_size &&
	       (n = read(fd, f->data + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	f->size = got;
	f->present = 1;
}

static void unload(struct file *f)
{
	free(f->path);
	free(f->data);
	memset(f, 0, sizeof(*f));
}

/* CRC32C of n bytes with the 4 bytes at field as 0 (format.md §1). */
static uint32_t crc_without(const uint8_t *p, size_t n, size_t field)
{
	static const uint8_t zero[4];
	uint32_t crc = mix_crc32c(0, p, field);
	crc = mix_crc32c(crc, zero, 4);
	return mix_crc32c(crc, p + field + 4, n - field - 4);
}

/* ---- mix.index: field checks (format.md §2.1, §2.4, §2.5) ---------------- */

#define HOFF(f) ((long long)offsetof(struct mix_index_header, f))

/* Header checks that do not need a sane layout.  Returns 1 if the layout
 * (sizes) can be trusted for the record walk. */
static int index_header_checks(const struct file *f,
			       const struct mix_index_header *h)
{
	const char *p = f->path;
	uint64_t total;
	int layout = 1;

	if (h->magic != MIX_INDEX_MAGIC)
		problem(p, HOFF(magic), "magic", "0x%08x (expected 0x%08x)",
			h->magic, MIX_INDEX_MAGIC);
	if (h->major_version != MIX_INDEX_MAJOR)
		problem(p, HOFF(major_version), "major_version", "%u (expected "
			"%u)", h->major_version, MIX_INDEX_MAJOR);
	if (h->compat_flags != MIX_COMPAT_LITTLE_ENDIAN)
		problem(p, HOFF(compat_flags), "compat_flags", "0x%02x "
			"(expected 0x01, little-endian)", h->compat_flags);
	if (h->base_header_size < sizeof(*h) || h->base_header_size % 8) {
		problem(p, HOFF(base_header_size), "base_header_size", "%u "
			"(expected a multiple of 8, at least %zu)",
			h->base_header_size, sizeof(*h));
		layout = 0;
	}
	if (h->header_size % 8 || h->header_size < h->base_header_size ||
	    h->header_size > f->size) {
		problem(p, HOFF(header_size), "header_size", "%u (expected a "
			"multiple of 8 from base_header_size %u to the file "
			"size %zu)", h->header_size, h->base_header_size,
			f->size);
		layout = 0;
	}
	if (h->record_size % 8 || h->record_size < 16) {
		problem(p, HOFF(record_size), "record_size", "%u (expected a "
			"multiple of 8, at least 16)", h->record_size);
		layout = 0;
	}
	if (h->file_size != f->size)
		problem(p, HOFF(file_size), "file_size", "%" PRIu64 ", but the "
			"file has %zu bytes (expected %zu)", h->file_size,
			f->size, f->size);
	total = h->header_size + (uint64_t)h->messages_count * h->record_size;
	if (total != f->size) {
		problem(p, HOFF(messages_count), "messages_count", "%u records "
			"of %u bytes after header_size %u make %" PRIu64
			" bytes, the file has %zu (expected %" PRIu64
			" records)", h->messages_count, h->record_size,
			h->header_size, total, f->size,
			h->record_size && f->size >= h->header_size ?
			(uint64_t)(f->size - h->header_size) / h->record_size
			: 0);
		layout = 0;
	}
	if (mix_get_u32(f->data + HOFF(checksum)) !=
	    crc_without(f->data, f->size, (size_t)HOFF(checksum)))
		problem(p, HOFF(checksum), "checksum", "0x%08x (expected "
			"0x%08x, the CRC32C of the file)", h->checksum,
			crc_without(f->data, f->size, (size_t)HOFF(checksum)));
	if (h->flags & MIX_HDR_FLAG_CORRUPTED)
		problem(p, HOFF(flags), "flags", "0x%x has CORRUPTED (expected "
			"it clear)", h->flags);
	if (h->next_uid == 0)
		problem(p, HOFF(next_uid), "next_uid", "0 (expected at least "
			"1)");
	if (h->highest_modseq >= (UINT64_C(1) << 63))
		problem(p, HOFF(highest_modseq), "highest_modseq", "%" PRIu64
			" (expected below 2^63)", h->highest_modseq);
	return layout;
}

struct rec_totals {
	uint32_t seen, deleted, first_unseen, first_deleted;
	unsigned reported_uid, reported_modseq, reported_flags;
};

static void index_record_check(const struct file *f,
			       const struct mix_index_header *h, uint32_t i,
			       uint32_t *prev, struct rec_totals *t)
{
	long long off = (long long)h->header_size + (long long)i * h->record_size;
	const uint8_t *r = f->data + off;
	uint32_t uid = mix_get_u32(r);
	uint8_t flags = r[4];
	uint64_t modseq = mix_get_u64(r + MIX_REC_MODSEQ_OFFSET);
	char field[48];

	if ((uid <= *prev || uid >= h->next_uid) &&
	    t->reported_uid++ < MAX_REPORTS_PER_KIND) {
		snprintf(field, sizeof(field), "record %u uid", i);
		if (uid <= *prev)
			problem(f->path, off, field, "%u is not above the "
				"previous record's uid %u (expected above %u: "
				"records are sorted by UID)", uid, *prev,
				*prev);
		else
			problem(f->path, off, field, "%u is not below next_uid "
				"%u (expected below %u)", uid, h->next_uid,
				h->next_uid);
	}
	if ((flags & ~MIX_FLAGS_ALL) && t->reported_flags++ <
	    MAX_REPORTS_PER_KIND) {
		snprintf(field, sizeof(field), "record %u flags", i);
		problem(f->path, off + 4, field, "0x%02x (expected no bit "
			"outside 0x%02x)", flags, (unsigned)MIX_FLAGS_ALL);
	}
	if (modseq > h->highest_modseq &&
	    t->reported_modseq++ < MAX_REPORTS_PER_KIND) {
		snprintf(field, sizeof(field), "record %u modseq", i);
		problem(f->path, off + MIX_REC_MODSEQ_OFFSET, field, "%" PRIu64
			" is above highest_modseq %" PRIu64 " (expected at "
			"most %" PRIu64 ")", modseq, h->highest_modseq,
			h->highest_modseq);
	}
	if (flags & MIX_FLAG_SEEN)
		t->seen++;
	else if (!t->first_unseen)
		t->first_unseen = uid;
	if (flags & MIX_FLAG_DELETED) {
		t->deleted++;
		if (!t->first_deleted)
			t->first_deleted = uid;
	}
	*prev = uid;
}

static void index_record_checks(const struct file *f,
				const struct mix_index_header *h)
{
	struct rec_totals t;
	uint32_t prev = 0;
	const char *p = f->path;

	memset(&t, 0, sizeof(t));
	for (uint32_t i = 0; i < h->messages_count; i++)
		index_record_check(f, h, i, &prev, &t);
	if (t.reported_uid > MAX_REPORTS_PER_KIND)
		problem(p, -1, "records", "%u more UID order problems",
			t.reported_uid - MAX_REPORTS_PER_KIND);
	if (t.reported_modseq > MAX_REPORTS_PER_KIND)
		problem(p, -1, "records", "%u more modseqs above "
			"highest_modseq", t.reported_modseq -
			MAX_REPORTS_PER_KIND);
	if (h->seen_messages_count != t.seen)
		problem(p, HOFF(seen_messages_count), "seen_messages_count",
			"%u (expected %u, the records with SEEN)",
			h->seen_messages_count, t.seen);
	if (h->deleted_messages_count != t.deleted)
		problem(p, HOFF(deleted_messages_count),
			"deleted_messages_count", "%u (expected %u, the "
			"records with DELETED)", h->deleted_messages_count,
			t.deleted);
	if (t.first_unseen && h->first_unseen_uid_lowwater > t.first_unseen)
		problem(p, HOFF(first_unseen_uid_lowwater),
			"first_unseen_uid_lowwater", "%u is above uid %u, the "
			"first record without SEEN (expected at most %u)",
			h->first_unseen_uid_lowwater, t.first_unseen,
			t.first_unseen);
	if (t.first_deleted && h->first_deleted_uid_lowwater > t.first_deleted)
		problem(p, HOFF(first_deleted_uid_lowwater),
			"first_deleted_uid_lowwater", "%u is above uid %u, the "
			"first record with DELETED (expected at most %u)",
			h->first_deleted_uid_lowwater, t.first_deleted,
			t.first_deleted);
}

/* All checks of mix.index; returns 1 with *ifile_r filled when the
 * engine's verification accepts it. */
static int check_index(const struct file *f, struct mix_ifile *ifile_r)
{
	struct mix_index_header h;
	unsigned before = n_errors;

	memset(ifile_r, 0, sizeof(*ifile_r));
	if (f->size < sizeof(h)) {
		problem(f->path, 0, "file", "%zu bytes (expected at least the "
			"%zu-byte base header)", f->size, sizeof(h));
		return 0;
	}
	memcpy(&h, f->data, sizeof(h));
	if (index_header_checks(f, &h))
		index_record_checks(f, &h);
	if (mix_ifile_parse(f->data, f->size, f->path, ifile_r) == 0) {
		if (n_errors != before)
			problem(f->path, -1, "verification", "the engine "
				"accepts this file despite the problems above "
				"(expected it to refuse)");
		return 1;
	}
	engine_problem(f->path, "verification", mix_last_error());
	return 0;
}

/* ---- logs (format.md §3) --------------------------------------------------- */

#define LOFF(f) ((long long)offsetof(struct mix_log_header, f))

struct log {
	struct file f;
	int hdr_ok;                  /* the engine's reader accepts it */
	struct mix_log_header h;
	struct mix_log_reader r;     /* positioned nowhere in particular */
	uint64_t end;                /* end of valid data (torn offset) */
	int torn;
	int damaged;                 /* the reader proved it damage (§3.4) */
	char torn_reason[512];
	uint32_t txns;
};

/* Header field checks (§3.1) in the order the reader applies them. */
static void log_header_checks(struct log *l, int have_index, uint32_t indexid)
{
	const char *p = l->f.path;
	struct mix_log_header h;
	uint32_t crc;

	if (l->f.size < sizeof(h)) {
		problem(p, 0, "file", "%zu bytes (expected at least the "
			"%zu-byte log header)", l->f.size, sizeof(h));
		return;
	}
	memcpy(&h, l->f.data, sizeof(h));
	if (h.magic != MIX_LOG_MAGIC)
		problem(p, LOFF(magic), "magic", "0x%08x (expected 0x%08x)",
			h.magic, MIX_LOG_MAGIC);
	if (h.major_version < MIX_LOG_MAJOR_MIN ||
	    h.major_version > MIX_LOG_MAJOR)
		problem(p, LOFF(major_version), "major_version", "%u (expected "
			"%u..%u)", h.major_version, MIX_LOG_MAJOR_MIN,
			MIX_LOG_MAJOR);
	if (h.compat_flags != MIX_COMPAT_LITTLE_ENDIAN)
		problem(p, LOFF(compat_flags), "compat_flags", "0x%02x "
			"(expected 0x01)", h.compat_flags);
	crc = crc_without(l->f.data, sizeof(h), (size_t)LOFF(checksum));
	if (crc != h.checksum)
		problem(p, LOFF(checksum), "checksum", "0x%08x (expected "
			"0x%08x, the CRC32C of the header)", h.checksum, crc);
	if (h.minor_version <= MIX_LOG_MINOR && h.hdr_size != sizeof(h))
		problem(p, LOFF(hdr_size), "hdr_size", "%u (expected %zu)",
			h.hdr_size, sizeof(h));
	if (h.file_seq == 0 || h.prev_file_seq >= h.file_seq)
		problem(p, LOFF(file_seq), "file_seq", "%u after prev_file_seq "
			"%u (expected 0 < prev_file_seq < file_seq, or "
			"prev_file_seq 0)", h.file_seq, h.prev_file_seq);
	if (h.prev_file_seq == 0 && h.prev_file_offset != 0)
		problem(p, LOFF(prev_file_offset), "prev_file_offset", "%u "
			"without a previous log (expected 0)",
			h.prev_file_offset);
	if (!mix_modseq_file_ok(h.indexid, h.file_seq))
		problem(p, LOFF(indexid), "indexid", "%u + file_seq %u reaches "
			"2^31 (expected below: modseqs must stay below 2^63)",
			h.indexid, h.file_seq);
	if (have_index && h.indexid != indexid)
		problem(p, LOFF(indexid), "indexid", "%u (expected %u, the "
			"indexid of mix.index)", h.indexid, indexid);
}

/* Every transaction: framing, CRC (the reader), then each record (the
 * decoder). */
static void log_walk(struct log *l)
{
	const uint8_t *txn;
	const char *reason;
	uint32_t size;
	uint64_t off;

	while (mix_log_reader_next(&l->r, &txn, &size, &off) > 0) {
		struct mix_log_op op;
		uint32_t pos = 0;
		int ret;

		l->txns++;
		while ((ret = mix_log_txn_next_op(txn, size,
							   l->r.hdr.major_version,
							   &pos, &op)) > 0)
			;
		if (ret < 0)
			problem(l->f.path, (long long)off, "transaction",
				"%s (expected records as format.md §3.3 "
				"describes)", mix_last_error());
	}
	l->torn = l->r.torn;
	l->damaged = l->r.damaged;
	l->end = l->r.torn ? l->r.torn_offset : l->f.size;
	reason = l->r.torn_reason;
	if (!strncmp(reason, l->f.path, strlen(l->f.path)) &&
	    reason[strlen(l->f.path)] == ':')
		reason += strlen(l->f.path) + 2;   /* "PATH: " */
	snprintf(l->torn_reason, sizeof(l->torn_reason), "%s", reason);
}

static void check_log(struct log *l, const char *dir, const char *name,
		      int have_index, uint32_t indexid)
{
	unsigned before = n_errors;
	int ret;

	load(&l->f, dir, name);
	if (!l->f.present)
		return;
	log_header_checks(l, have_index, indexid);
	ret = mix_log_reader_from_buf(l->f.data, l->f.size, l->f.path, &l->r);
	if (ret < 0) {
		if (n_errors == before)
			engine_problem(l->f.path, "header", mix_last_error());
		return;
	}
	l->hdr_ok = 1;
	l->h = l->r.hdr;
	log_walk(l);
}

/* ---- across files ------------------------------------------------------- */

struct dirstate {
	const char *dir;
	struct file index;
	struct mix_ifile ifile;
	int have_index;              /* verified */
	struct log logs[2];          /* [0] mix.index.log.2, [1] mix.index.log */
	/* mix.index.log.newtmp when the library's replay went into it
	 * (format.md §3.5 "A rotation in two steps": the next log, before
	 * its rename); otherwise it is a stray (check_strays) */
	struct log next;
	int next_adopted;
};

struct lib_verdict;
/* The next log, checked as a log only when the library read it
 * (mix_index_recovered: rec.next_adopted). */
static void load_next(struct dirstate *d, const char *dir,
		      const struct lib_verdict *v);

/* The chain .log.2 -> .log (§3.5).  Returns the limit of .log.2's valid
 * data (what .log says it was when it was created), or its size. */
static uint64_t check_chain(struct dirstate *d)
{
	struct log *l2 = &d->logs[0], *l1 = &d->logs[1];

	if (!l2->hdr_ok)
		return 0;
	if (!l1->hdr_ok)
		return l2->f.size;   /* after step 2 of a rotation: fine */
	if (l2->h.file_seq >= l1->h.file_seq) {
		problem(l2->f.path, LOFF(file_seq), "file_seq", "%u is not "
			"older than mix.index.log's %u (expected below %u)",
			l2->h.file_seq, l1->h.file_seq, l1->h.file_seq);
		return l2->f.size;
	}
	if (l1->h.prev_file_seq != l2->h.file_seq) {
		problem(l1->f.path, LOFF(prev_file_seq), "prev_file_seq", "%u, "
			"but mix.index.log.2 is file_seq %u: a log is missing "
			"from the chain (expected %u)", l1->h.prev_file_seq,
			l2->h.file_seq, l2->h.file_seq);
		return l2->f.size;
	}
	if (l1->h.prev_file_offset > l2->f.size) {
		problem(l1->f.path, LOFF(prev_file_offset), "prev_file_offset",
			"%u is beyond the end of mix.index.log.2 (expected at "
			"most %zu)", l1->h.prev_file_offset, l2->f.size);
	} else if (l2->end < l1->h.prev_file_offset) {
		problem(l2->f.path, (long long)l2->end, "transaction", "%s, "
			"but mix.index.log says valid data runs to offset %u "
			"(expected intact transactions up to %u)",
			l2->torn_reason, l1->h.prev_file_offset,
			l1->h.prev_file_offset);
	}
	return l1->h.prev_file_offset;
}

/* The "mix.neutral" bitmap of mix.index (format.md §2.8), or NULL.  Bits
 * are never cleared, so for the transactions mix.index contains it names
 * every extension that was neutral when they were applied. */
static const uint8_t *neutral_bitmap(const struct mix_ifile *f)
{
	uint32_t i;
	for (i = MIX_EXT_FIRST; i < f->ext_count; i++)
		if (strcmp(f->exts[i].name, "mix.neutral") == 0 &&
		    f->exts[i].hdr_size >= 256)
			return f->exts[i].hdr;
	return NULL;
}

/* A transaction of FLAGS records that change internal bits only (DIRTY),
 * UID_FLOOR records and data of modseq-neutral extensions: it moved no
 * modseq (docs/condstore.md, the same rule as replay.c), so
 * highest_modseq may be below its modseq though mix.index contains it. */
static int txn_internal_only(const uint8_t *txn, uint32_t size, uint8_t major,
			     const uint8_t *neutral)
{
	struct mix_log_op op;
	uint32_t pos = 0;
	int ret;

	while ((ret = mix_log_txn_next_op(txn, size, major, &pos, &op)) > 0)
		if (op.type == MIX_LOG_UID_FLOOR)
			continue;
		else if ((op.type == MIX_LOG_EXT_REC ||
			  op.type == MIX_LOG_EXT_HDR) && neutral &&
			 op.ext_id < 2048 &&
			 (neutral[op.ext_id / 8] >> (op.ext_id % 8) & 1))
			continue;
		else if (op.type != MIX_LOG_FLAGS ||
			 ((op.add | op.remove) & ~MIX_FLAGS_INTERNAL))
			return 0;
	return ret == 0;
}

/* Transactions of log l from..to against the index: those mix.index
 * contains (before its position) have modseq <= highest_modseq unless
 * they changed DIRTY only, the first one after a higher one (§4). */
static void check_modseqs(struct dirstate *d, struct log *l, uint64_t limit,
			  uint32_t pos_seq, uint64_t pos_off)
{
	const struct mix_index_header *h = d->ifile.hdr;
	const uint8_t *txn;
	uint32_t size;
	uint64_t off;
	int first_after = 1;

	if (mix_log_reader_seek(&l->r, l->h.hdr_size) < 0)
		return;
	while (l->r.pos < limit &&
	       mix_log_reader_next(&l->r, &txn, &size, &off) > 0) {
		uint64_t m = mix_modseq_make(l->h.indexid, l->h.file_seq,
					     (uint32_t)off);
		int contained = l->h.file_seq < pos_seq ||
				(l->h.file_seq == pos_seq && off < pos_off);
		if (contained && m > h->highest_modseq &&
		    !txn_internal_only(txn, size, l->r.hdr.major_version,
				       neutral_bitmap(&d->ifile)))
			problem(l->f.path, (long long)off, "modseq", "%" PRIu64
				" is above mix.index's highest_modseq %" PRIu64
				", though mix.index contains this transaction "
				"(expected at most %" PRIu64 ")", m,
				h->highest_modseq, h->highest_modseq);
		if (!contained && first_after) {
			first_after = 0;
			if (m <= h->highest_modseq)
				problem(l->f.path, (long long)off, "modseq",
					"%" PRIu64 " is not above mix.index's "
					"highest_modseq %" PRIu64 " (expected "
					"above: modseqs only grow)", m,
					h->highest_modseq);
		}
	}
}

/* A torn transaction: a warning where a crash can leave one, otherwise a
 * problem. */
static void check_torn(const struct log *l, int is_last, uint32_t pos_seq,
		       uint64_t pos_off, uint64_t limit)
{
	if (!l->torn || l->end >= limit)
		return;
	if (l->damaged)
		problem(l->f.path, (long long)l->end, "transaction", "%s "
			"(expected a torn tail at most; mixctl salvage keeps "
			"every valid transaction)", l->torn_reason);
	else if (l->h.file_seq == pos_seq && l->end < pos_off)
		problem(l->f.path, (long long)l->end, "transaction", "%s, "
			"inside what mix.index contains (expected intact up "
			"to offset %" PRIu64 ")", l->torn_reason, pos_off);
	else if (!is_last)
		problem(l->f.path, (long long)l->end, "transaction", "%s, and "
			"a newer log follows (expected intact)",
			l->torn_reason);
	else
		warning(l->f.path, "torn tail: %s; %" PRIu64 " bytes that a "
			"crash left unfinished, dropped by recovery",
			l->torn_reason, (uint64_t)l->f.size - l->end);
}

/* The replayed state agrees with itself (format.md §2.4-§2.5, the same
 * rules a checkpoint of it must pass). */
static void check_state(const char *what, const struct mix_snap *s)
{
	struct mix_snap_counts c;
	struct mix_record r;
	struct mix_iter it;
	uint32_t n = 0, seen = 0, deleted = 0, prev = 0;

	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r)) {
		n++;
		if (r.uid <= prev || r.uid >= mix_snap_next_uid(s) ||
		    r.modseq > mix_snap_highest_modseq(s))
			problem(what, -1, "replayed state", "record %u: uid %u "
				"after %u, modseq %" PRIu64 " (expected uid "
				"order below next_uid %u, modseq at most %"
				PRIu64 ")", n, r.uid, prev, r.modseq,
				mix_snap_next_uid(s),
				mix_snap_highest_modseq(s));
		seen += (r.flags & MIX_FLAG_SEEN) != 0;
		deleted += (r.flags & MIX_FLAG_DELETED) != 0;
		prev = r.uid;
	}
	mix_snap_counts(s, &c);
	if (n != mix_snap_messages_count(s) || c.seen != seen ||
	    c.deleted != deleted)
		problem(what, -1, "replayed state", "messages_count %u, seen "
			"%u, deleted %u (expected %u, %u, %u from the records)",
			mix_snap_messages_count(s), c.seen, c.deleted, n, seen,
			deleted);
}
/* ---- the library's verdict ------------------------------------------------ */

#define LIB_WARNINGS_MAX 16

struct lib_verdict {
	int ret;                     /* of mix_index_open */
	char error[1024];            /* its message when it refused */
	struct mix_open_info info;
	unsigned nwarnings;          /* warning callback calls */
	char warnings[LIB_WARNINGS_MAX][512];
	/* when it opened: the index, kept open for the checks of its state,
	 * and where its recovery started and ended (engine/recovery.h) */
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_recovered rec;
};


/* The state the library recovered, against the files: its replay must
 * end where the last log's intact transactions end (dropping none,
 * reading nothing beyond), and the state must agree with itself. */
static void check_recovered(struct dirstate *d, const struct lib_verdict *v)
{
	const struct mix_recovered *rec = &v->rec;
	uint64_t lost, hms;
	const struct log *last = d->next_adopted ? &d->next
			       : d->logs[1].hdr_ok ? &d->logs[1]
			       : d->logs[0].hdr_ok ? &d->logs[0] : NULL;

	if (last && rec->end_seq < last->h.file_seq)
		problem(last->f.path, LOFF(file_seq), "recovery", "the "
			"library's replay ended in log seq %u, before this "
			"log (file_seq %u; expected it to reach the last log)",
			rec->end_seq, last->h.file_seq);
	else if (last && rec->end_seq == last->h.file_seq &&
		 rec->end_off != last->end)
		problem(last->f.path, (long long)rec->end_off, "recovery",
			"the library's replay ended at offset %" PRIu64 ", but "
			"intact transactions run to %" PRIu64 " (expected "
			"equal)", rec->end_off, (uint64_t)last->end);
	mix_read_lock();
	check_state(d->dir, mix_index_snap(v->idx));
	lost = mix_snap_lost_modseq(mix_index_snap(v->idx));
	hms = mix_snap_highest_modseq(mix_index_snap(v->idx));
	mix_read_unlock();
	/* format.md §2.9: set with a next_uid raise, whose modseq is above */
	if (lost > hms)
		problem(d->dir, -1, "mix.lost", "lost point %" PRIu64 " is "
			"above highest_modseq %" PRIu64 " (expected at most "
			"it: the open that sets it raises next_uid after)",
			lost, hms);
	else if (lost)
		printf("%s: lost point %" PRIu64 ": clients that synchronized "
		       "below it get a full resync (format.md §2.9)\n", d->dir,
		       lost);
}

/* Checks across the files, from the position the library's recovery
 * started at (engine/recovery.c decides it: mix.index's log position,
 * or the first log when it rebuilt the index).  When the library
 * refused the directory, mix.index's own position stands in, so that
 * these checks still look for the damage. */
static void cross_checks(struct dirstate *d, const struct lib_verdict *v)
{
	struct log *l2 = &d->logs[0], *l1 = &d->logs[1];
	uint64_t limit2 = check_chain(d);
	uint32_t pos_seq = 0;
	uint64_t pos_off = 0;

	if (d->have_index) {
		const struct mix_index_header *h = d->ifile.hdr;
		struct log *at = l1->hdr_ok && l1->h.file_seq == h->log_file_seq
			? l1 : l2->hdr_ok && l2->h.file_seq == h->log_file_seq
			? l2 : d->next_adopted &&
			  d->next.h.file_seq == h->log_file_seq ? &d->next
			: NULL;
		pos_seq = h->log_file_seq;
		pos_off = h->log_file_head_offset;
		if (at && (pos_off < at->h.hdr_size || pos_off % 4 ||
			   pos_off > at->end))
			problem(d->index.path, HOFF(log_file_head_offset),
				"log_file_head_offset", "%" PRIu64 " is not a "
				"transaction position of %s (expected a "
				"multiple of 4 from %u to %" PRIu64 ")", pos_off,
				at->f.path, at->h.hdr_size, at->end);
		if (((l1->hdr_ok && pos_seq > l1->h.file_seq) ||
		     (!l1->hdr_ok && l2->hdr_ok && pos_seq > l2->h.file_seq)) &&
		    at != &d->next)
			problem(d->index.path, HOFF(log_file_seq),
				"log_file_seq", "%u is newer than every log "
				"(expected at most %u)", pos_seq,
				l1->hdr_ok ? l1->h.file_seq : l2->h.file_seq);
		if (!l1->hdr_ok && !l2->hdr_ok && !l1->f.present &&
		    !l2->f.present)
			warning(d->dir, "no log files: open continues from "
				"mix.index in a new log");
		if (l2->hdr_ok)
			check_modseqs(d, l2, limit2, pos_seq, pos_off);
		if (l1->hdr_ok)
			check_modseqs(d, l1, d->next_adopted ?
				      d->next.h.prev_file_offset : l1->f.size,
				      pos_seq, pos_off);
		if (d->next_adopted)
			check_modseqs(d, &d->next, d->next.f.size, pos_seq,
				      pos_off);
	} else if (v->ret == 0 && !v->rec.from_index && !d->index.present) {
		warning(d->index.path, "missing; the logs reach back to the "
			"index's creation, so open rebuilds it");
	}
	if (v->ret == 0) {
		pos_seq = v->rec.start_seq;
		pos_off = v->rec.start_off;
	} else if (!d->have_index) {
		return;   /* no position to check from; the library said why */
	}
	if (l2->hdr_ok)
		check_torn(l2, !l1->hdr_ok, pos_seq, pos_off, limit2);
	/* an adopted next log continues .log at its prev_file_offset: a
	 * torn tail after that is a crash's, read by nobody */
	if (l1->hdr_ok)
		check_torn(l1, !d->next_adopted, pos_seq, pos_off,
			   d->next_adopted ? d->next.h.prev_file_offset
					   : l1->f.size);
	if (d->next_adopted)
		check_torn(&d->next, 1, pos_seq, pos_off, d->next.f.size);
	if (v->ret == 0)
		check_recovered(d, v);
}

static void lib_warning(void *ctx, const char *message)
{
	struct lib_verdict *v = ctx;
	if (v->nwarnings < LIB_WARNINGS_MAX)
		snprintf(v->warnings[v->nwarnings], sizeof(v->warnings[0]),
			 "%s", message);
	v->nwarnings++;
}

/* Open dir read-only through the library, as a server would, and keep
 * what it said.  Read-only: no lock, no file written. */
static void library_open(const char *dir, struct lib_verdict *v)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *idx;

	memset(v, 0, sizeof(*v));
	mix_engine_config_init(&cfg);
	cfg.warning = lib_warning;
	cfg.warning_ctx = v;
	if ((v->ret = mix_engine_create(&cfg, &e)) < 0) {
		fprintf(stderr, "mixctl: cannot start the engine: %s\n",
			mix_last_error());
		exit(2);
	}
	v->ret = mix_index_open(e, dir, MIX_OPEN_READONLY, &idx);
	if (v->ret < 0) {
		snprintf(v->error, sizeof(v->error), "%s (%s)",
			 mix_last_error(), mix_strerror(v->ret));
		(void)mix_engine_free(&e);
		return;
	}
	mix_index_open_info(idx, &v->info);
	mix_index_recovered(idx, &v->rec);
	v->e = e;
	v->idx = idx;
}

static void library_close(struct lib_verdict *v)
{
	if (v->idx)
		(void)mix_index_close(&v->idx);
	if (v->e)
		(void)mix_engine_free(&v->e);
}

/* The library's verdict, printed before mixctl's own checks. */
static void library_report(const char *dir, const struct lib_verdict *v)
{
	unsigned i;

	if (v->ret < 0) {
		problem(dir, -1, "library", "mix_index_open (read-only) "
			"refuses the directory: %s (expected it to open)",
			v->error);
		return;
	}
	printf("%s: library: opens it read-only (%" PRIu64 " transactions "
	       "replayed)\n", dir, v->info.replayed_txns);
	/* counted apart from mixctl's own warnings (the summary line
	 * gives both): the two often describe the same torn tail */
	for (i = 0; i < v->nwarnings && i < LIB_WARNINGS_MAX; i++)
		printf("%s: library: warning: %s\n", dir, v->warnings[i]);
	if (v->nwarnings > LIB_WARNINGS_MAX)
		printf("%s: library: warning: %u more\n", dir,
		       v->nwarnings - LIB_WARNINGS_MAX);
	/* what open_info says that no warning said */
	if (v->info.rebuilt && v->nwarnings == 0)
		printf("%s: library: warning: mix.index failed verification "
		       "and was rebuilt from the logs\n", dir);
	if (v->info.dropped_bytes && v->nwarnings == 0)
		printf("%s: library: warning: %" PRIu64 " bytes of a torn "
		       "tail cut at log seq %u offset %u\n", dir,
		       v->info.dropped_bytes, v->info.dropped_file_seq,
		       v->info.dropped_offset);
}

/* mixctl's checks and the library must agree; when they do not, the
 * directory is not clean, whoever is right (both reasons are above). */
static void library_agree(const char *dir, const struct lib_verdict *v,
			  unsigned own_errors)
{
	if (v->ret < 0 && own_errors == 0)
		problem(dir, -1, "disagreement", "the library refuses the "
			"directory (%s), but mixctl's own checks found nothing "
			"wrong (expected them to find the damage)", v->error);
	else if (v->ret == 0 && own_errors > 0)
		problem(dir, -1, "disagreement", "the library opens the "
			"directory, but mixctl's own checks found %u problem%s "
			"(above; expected the library to refuse it)",
			own_errors, own_errors == 1 ? "" : "s");
}

static void load_next(struct dirstate *d, const char *dir,
		      const struct lib_verdict *v)
{
	struct log *n = &d->next;

	if (v->ret < 0 || !v->rec.next_adopted)
		return;
	check_log(n, dir, MIX_LOG_TMP_FILENAME, d->have_index,
		  d->have_index ? d->ifile.hdr->indexid : 0);
	if (!n->hdr_ok)
		return;
	d->next_adopted = n->h.file_seq == v->rec.end_seq;
	if (!d->next_adopted)
		problem(n->f.path, LOFF(file_seq), "recovery", "the library's "
			"replay ended in log seq %u, but this next log is %u "
			"(expected the same)", v->rec.end_seq, n->h.file_seq);
}

/* Temporary files an interrupted checkpoint or rotation leaves. */
static void check_strays(const char *dir)
{
	static const char *const strays[2] = { "mix.index.tmp",
					       "mix.index.log.newtmp" };
	for (int i = 0; i < 2; i++) {
		struct file s;
		path_of(&s, dir, strays[i]);
		if (access(s.path, F_OK) == 0)
			warning(s.path, "left by an interrupted %s; %s",
				i ? "rotation" : "checkpoint",
				i ? "read only when it continues the chain "
				    "(format.md §3.5)" : "never read");
		free(s.path);
	}
}

/* A log an interrupted MIX_OPEN_RECREATE left (format.md §3.5 "Which
 * logs belong", rule 1): an older indexid whose modseqs are all below the
 * new index's, beside a mix.index still at log 1 offset 48.  The library
 * ignores it and its next writer removes it: a warning, not a problem,
 * and not part of the chain. */
static int recreate_leftover(const char *dir, const char *name,
			     const struct dirstate *d)
{
	const struct mix_index_header *ih;
	struct mix_log_header h;
	char path[4096];
	int fd, ok;

	if (!d->have_index)
		return 0;
	ih = d->ifile.hdr;
	if (ih->log_file_seq != 1 ||
	    ih->log_file_head_offset != sizeof(struct mix_log_header))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return 0;
	ok = pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	     h.magic == MIX_LOG_MAGIC && h.indexid < ih->indexid &&
	     (uint64_t)h.indexid + h.file_seq < (uint64_t)ih->indexid + 1;
	close(fd);
	if (ok)
		warning(path, "left by an interrupted MIX_OPEN_RECREATE "
			"(indexid %u, mix.index's is %u): ignored, removed by "
			"the next writer", h.indexid, ih->indexid);
	return ok;
}

/* ---- virtual index: the vmap data (format.md §5) ------------------------- */

static void vmap_problem(void *ctx, long long off, const char *field,
			 const char *msg)
{
	char line[512];

	/* printed here, counted from the checker's total (check_virtual);
	 * offsets are in the vmap header data of the newest snapshot (what
	 * mix.index and the logs replayed hold), so DIR names the place */
	if (off >= 0)
		snprintf(line, sizeof(line), "%s: vmap header: offset %lld: "
			 "%s: %s", (const char *)ctx, off, field, msg);
	else
		snprintf(line, sizeof(line), "%s: %s: %s", (const char *)ctx,
			 field, msg);
	printf("%s\n", line);
	if (!first_problem[0])
		snprintf(first_problem, sizeof(first_problem), "%s", line);
}

/* A virtual index's vmap header and records, in the newest snapshot the
 * library opens read-only.  The library opens a damaged vmap (it is the
 * virtual mailbox's data, not the index's), so these problems are not a
 * disagreement with it: mix_virtual_sync would warn and rebuild. */
static void check_virtual(const char *dir, const struct lib_verdict *v)
{
	unsigned problems = 0;
	int ret;

	if (!v->idx)
		return;         /* reported by the library verdict */
	mix_read_lock();
	ret = mix_virtual_check_snap(mix_index_snap(v->idx), vmap_problem,
				     (void *)dir, &problems);
	mix_read_unlock();
	if (ret < 0)
		problem(dir, -1, "vmap", "out of memory checking the vmap "
			"data");
	else if (ret == 1 && problems == 0)
		printf("%s: vmap: a virtual index; header and records clean\n",
		       dir);
	else if (ret == 1)
		printf("%s: vmap: %u problem%s; mix_virtual_sync would warn "
		       "and rebuild the virtual mailbox\n", dir, problems,
		       problems == 1 ? "" : "s");
	n_errors += problems;
}

/* ---- mailbox list index: the mlist records (format.md §6) ------------------ */

/* A mailbox list index (one with the mlist extension): the library's
 * read-only list open checks every record (size, parent, cycle, name,
 * duplicate, INBOX spelling; docs/mailbox-list.md "Recovery"), with the
 * separator the list stores.  Its refusal is a problem: the list would
 * not open.  No disagreement with the index-level verdict: the records
 * are the list's data. */
static void check_list(const char *dir, const struct lib_verdict *v)
{
	struct mix_list_config cfg;
	struct mix_list *l = NULL;
	const uint8_t *h;
	uint32_t id, n = 0;
	size_t size = 0;
	int ret, found;

	if (!v->idx)
		return;
	mix_read_lock();
	found = mix_snap_ext_lookup(mix_index_snap(v->idx), "mlist", &id);
	n = mix_snap_messages_count(mix_index_snap(v->idx));
	h = found ? mix_snap_ext_hdr(mix_index_snap(v->idx), id, &size) : NULL;
	mix_list_config_init(&cfg);
	cfg.open_flags = MIX_OPEN_READONLY;
	if (h && size > 8)
		cfg.separator = (char)h[8];
	mix_read_unlock();
	if (!found)
		return;
	if ((ret = mix_list_open(v->e, dir, &cfg, &l)) < 0) {
		problem(dir, -1, "mlist", "the mailbox list does not open: %s "
			"(%s) (expected every record valid)", mix_last_error(),
			mix_strerror(ret));
		return;
	}
	printf("%s: mlist: a mailbox list; %u records, every one valid\n",
	       dir, n);
	mix_list_close(&l);
}

static int cmd_check(const char *dir)
{
	struct dirstate d;
	struct stat st;
	struct lib_verdict lib;
	unsigned lib_errors;

	memset(&d, 0, sizeof(d));
	d.dir = dir;
	if (stat(dir, &st) < 0) {
		fprintf(stderr, "mixctl: %s: %s\n", dir, strerror(errno));
		return 2;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mixctl: %s: not a directory\n", dir);
		return 2;
	}
	library_open(dir, &lib);
	library_report(dir, &lib);
	lib_errors = n_errors;
	first_problem[0] = '\0';   /* the library's is in lib.error */
	load(&d.index, dir, MIX_INDEX_FILENAME);
	if (d.index.present)
		d.have_index = check_index(&d.index, &d.ifile);
	if (!recreate_leftover(dir, MIX_LOG2_FILENAME, &d))
		check_log(&d.logs[0], dir, MIX_LOG2_FILENAME, d.have_index,
			  d.have_index ? d.ifile.hdr->indexid : 0);
	if (!recreate_leftover(dir, MIX_LOG_FILENAME, &d))
		check_log(&d.logs[1], dir, MIX_LOG_FILENAME, d.have_index,
			  d.have_index ? d.ifile.hdr->indexid : 0);
	load_next(&d, dir, &lib);
	if (!d.index.present && !d.logs[0].f.present && !d.logs[1].f.present) {
		problem(dir, -1, "directory", "holds no mix.index and no log "
			"(expected an index)");
	} else {
		if (!d.index.present && !(d.logs[0].hdr_ok &&
					  d.logs[0].h.prev_file_seq == 0) &&
		    !(d.logs[1].hdr_ok && d.logs[1].h.prev_file_seq == 0))
			problem(d.index.path, -1, "file", "missing, and the "
				"logs do not reach back to the index's creation "
				"(expected mix.index)");
		cross_checks(&d, &lib);
	}
	check_strays(dir);
	library_agree(dir, &lib, n_errors - lib_errors);
	check_virtual(dir, &lib);
	check_list(dir, &lib);
	printf("%s: %s: %u problem%s, %u warning%s; library: %s, %u "
	       "warning%s\n", dir, n_errors ? "NOT CLEAN" : "clean",
	       n_errors, n_errors == 1 ? "" : "s", n_warnings,
	       n_warnings == 1 ? "" : "s", lib.ret < 0 ? "refuses" : "opens",
	       lib.nwarnings, lib.nwarnings == 1 ? "" : "s");
	if (n_errors)
		fprintf(stderr, "mixctl: %s: NOT CLEAN, %u problem%s; "
			"library: %s; mixctl's first: %s\n", dir, n_errors,
			n_errors == 1 ? "" : "s", lib.ret < 0 ? lib.error :
			"opens it", first_problem[0] ? first_problem :
			"none (the library alone refuses)");
	library_close(&lib);
	mix_ifile_free(&d.ifile);
	for (int i = 0; i < 2; i++) {
		mix_log_reader_close(&d.logs[i].r);
		unload(&d.logs[i].f);
	}
	mix_log_reader_close(&d.next.r);
	unload(&d.next.f);
	unload(&d.index);
	return n_errors ? 1 : 0;
}

/* ---- dump ------------------------------------------------------------------ */

static void flags_str(uint8_t f, char *buf)
{
	static const char letters[8] = "AFDSRr?X";   /* by bit */
	int n = 0;
	for (int i = 0; i < 8; i++)
		if (f & (1u << i))
			buf[n++] = letters[i];
	if (n == 0)
		buf[n++] = '-';
	buf[n] = '\0';
}

static void hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

static int cmd_dump(const char *dir)
{
	struct file f;
	struct mix_ifile x;
	const struct mix_index_header *h;

	load(&f, dir, MIX_INDEX_FILENAME);
	if (!f.present) {
		fprintf(stderr, "mixctl: %s: no such file\n", f.path);
		unload(&f);
		return 2;
	}
	if (mix_ifile_parse(f.data, f.size, f.path, &x) < 0) {
		printf("%s\n", mix_last_error());
		fprintf(stderr, "mixctl: %s\n", mix_last_error());
		unload(&f);
		return 1;
	}
	h = x.hdr;
	printf("file %s (%zu bytes)\n", f.path, f.size);
	printf("version %u.%u\nbase_header_size %u\nheader_size %u\n"
	       "record_size %u\ncompat_flags 0x%02x\nindexid %u\nflags 0x%x\n"
	       "uid_validity %u\nnext_uid %u\nmessages_count %u\n"
	       "seen_messages_count %u\ndeleted_messages_count %u\n"
	       "first_recent_uid %u\nfirst_unseen_uid_lowwater %u\n"
	       "first_deleted_uid_lowwater %u\nlog_file_seq %u\n"
	       "log_file_head_offset %u\nhighest_modseq %" PRIu64 "\n"
	       "day_stamp %u\nday_first_uid", h->major_version,
	       h->minor_version, h->base_header_size, h->header_size,
	       h->record_size, h->compat_flags, h->indexid, h->flags,
	       h->uid_validity, h->next_uid, h->messages_count,
	       h->seen_messages_count, h->deleted_messages_count,
	       h->first_recent_uid, h->first_unseen_uid_lowwater,
	       h->first_deleted_uid_lowwater, h->log_file_seq,
	       h->log_file_head_offset, h->highest_modseq, h->day_stamp);
	for (int i = 0; i < 8; i++)
		printf(" %u", h->day_first_uid[i]);
	printf("\nchecksum 0x%08x\nfile_size %" PRIu64 "\n", h->checksum,
	       h->file_size);
	for (uint32_t i = 0; i < x.ext_count; i++) {
		const struct mix_ifile_ext *e = &x.exts[i];
		printf("ext %u %s reset_id %u hdr_size %u record_offset %u "
		       "record_size %u record_align %u", i, e->name,
		       e->reset_id, e->hdr_size, e->rec_offset, e->rec_size,
		       e->rec_align);
		if (i != MIX_EXT_KEYWORDS && e->hdr_size) {
			printf(" hdr ");
			hex(e->hdr, e->hdr_size > 64 ? 64 : e->hdr_size);
			if (e->hdr_size > 64)
				printf("...");
		}
		putchar('\n');
	}
	for (uint32_t i = 0; i < x.keyword_count; i++)
		printf("keyword %u %s\n", i, x.keywords[i]);
	for (uint32_t n = 0; n < h->messages_count; n++) {
		const uint8_t *r = x.records + (size_t)n * h->record_size;
		char fl[10];
		flags_str(r[4], fl);
		printf("record %u uid %u flags %s modseq %" PRIu64, n + 1,
		       mix_get_u32(r), fl, mix_get_u64(r + MIX_REC_MODSEQ_OFFSET));
		for (uint32_t k = 0; k < x.keyword_count; k++)
			if (r[MIX_REC_KEYWORDS_OFFSET + k / 8] & (1u << (k % 8)))
				printf(" kw:%s", x.keywords[k]);
		for (uint32_t i = MIX_EXT_FIRST; i < x.ext_count; i++) {
			if (!x.exts[i].rec_size)
				continue;
			printf(" %s:", x.exts[i].name);
			hex(r + x.exts[i].rec_offset, x.exts[i].rec_size);
		}
		putchar('\n');
	}
	mix_ifile_free(&x);
	unload(&f);
	return 0;
}

/* ---- log ------------------------------------------------------------------- */

/* next: mix.index.log.newtmp, the next log of a rotation in two steps
 * (format.md §3.5): listed when it has a header; without one it is what
 * a switch that went no further left, said in a comment, not an error. */
static int log_one(const char *dir, const char *name, int next)
{
	static const char *const tn[] = { "?", "boundary", "append", "expunge",
		"flags", "keyword", "keyword-reset", "ext-intro", "ext-hdr",
		"ext-rec", "hdr", "append-run", "ext-run", "uid-floor" };
	struct mix_log_reader r;
	const uint8_t *txn;
	uint32_t size;
	uint64_t off;
	struct file f;
	int ret = 0;

	load(&f, dir, name);
	if (!f.present) {
		unload(&f);
		return 0;
	}
	if (mix_log_reader_from_buf(f.data, f.size, f.path, &r) < 0) {
		if (next) {
			printf("# %s: no log header (%zu bytes): never read\n",
			       f.path, f.size);
			unload(&f);
			return 0;
		}
		printf("%s\n", mix_last_error());
		fprintf(stderr, "mixctl: %s\n", mix_last_error());
		unload(&f);
		return 1;
	}
	printf("# %s indexid %u file_seq %u prev_file_seq %u "
	       "prev_file_offset %u size %zu\n", f.path, r.hdr.indexid,
	       r.hdr.file_seq, r.hdr.prev_file_seq, r.hdr.prev_file_offset,
	       f.size);
	while (mix_log_reader_next(&r, &txn, &size, &off) > 0) {
		struct mix_log_op op;
		uint32_t pos = 0, nrec = 0;
		char recs[512] = "";
		size_t len = 0;
		int dr;

		while ((dr = mix_log_txn_next_op(txn, size,
							 r.hdr.major_version,
							 &pos, &op)) > 0) {
			nrec++;
			if (len < sizeof(recs) - 40)
				len += (size_t)snprintf(recs + len,
					sizeof(recs) - len, " %s",
					op.type < sizeof(tn) / sizeof(tn[0]) ?
					tn[op.type] : "?");
			if (len < sizeof(recs) - 40 && op.count)
				len += (size_t)snprintf(recs + len,
					sizeof(recs) - len, "(%u)", op.count);
		}
		printf("file_seq %u offset %" PRIu64 " modseq %" PRIu64
		       " size %u records %u:%s%s\n", r.hdr.file_seq, off,
		       mix_modseq_make(r.hdr.indexid, r.hdr.file_seq,
				       (uint32_t)off), size, nrec, recs,
		       dr < 0 ? " CORRUPT" : "");
		if (dr < 0) {
			printf("#   %s\n", mix_last_error());
			if (!ret)
				fprintf(stderr, "mixctl: %s: transaction at "
					"offset %" PRIu64 ": %s\n", f.path,
					off, mix_last_error());
			ret = 1;
		}
	}
	if (r.torn)
		printf("# torn tail: %s (%" PRIu64 " bytes)\n", r.torn_reason,
		       (uint64_t)(f.size - r.torn_offset));
	mix_log_reader_close(&r);
	unload(&f);
	return ret;
}

static int cmd_log(const char *dir)
{
	int a = log_one(dir, MIX_LOG2_FILENAME, 0);
	int b = log_one(dir, MIX_LOG_FILENAME, 0);
	int c = log_one(dir, MIX_LOG_TMP_FILENAME, 1);
	return a || b || c;
}

/* salvage: the library's MIX_OPEN_SALVAGE, writable (docs/reliability.md
 * "Salvage"): keep every valid transaction, set the damaged logs aside,
 * say exactly what was skipped.  The one mixctl command that writes. */
static void salvage_warning(void *ctx, const char *msg)
{
	(void)ctx;
	printf("%s\n", msg);
}

static int cmd_salvage(const char *dir)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_open_info info;
	int ret;

	mix_engine_config_init(&cfg);
	cfg.warning = salvage_warning;
	if ((ret = mix_engine_create(&cfg, &e)) < 0) {
		fprintf(stderr, "mixctl salvage: %s\n", mix_last_error());
		return 2;
	}
	ret = mix_index_open(e, dir, MIX_OPEN_SALVAGE, &idx);
	if (ret < 0) {
		fprintf(stderr, "mixctl salvage: %s: cannot salvage: %s\n", dir,
			mix_last_error());
		mix_engine_free(&e);
		return 1;
	}
	mix_index_open_info(idx, &info);
	printf("%s: %s; skipped %" PRIu64 " bytes of log, %u transactions "
	       "that no longer applied; %" PRIu64 " transactions replayed\n",
	       dir, info.salvaged ? "salvaged" : "nothing to salvage",
	       info.salvage_skipped_bytes, info.salvage_skipped_txns,
	       info.replayed_txns);
	ret = mix_index_close(&idx);
	mix_engine_free(&e);
	if (ret < 0) {
		fprintf(stderr, "mixctl salvage: %s: close: %s\n", dir,
			mix_last_error());
		return 1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: mixctl check DIR | dump DIR | log DIR | "
		"salvage DIR\n"
		"  salvage  open with MIX_OPEN_SALVAGE: keep every valid "
		"transaction of a\n           damaged index, report what was "
		"skipped (writes the directory)\n"
		"  check  open the index read-only through the library (its "
		"verdict counts),\n         then verify every file; exit 0 "
		"only when clean, 1 with problems\n  dump   print mix.index\n"
		"  log    one line per log transaction\nexit 2: usage or a "
		"directory that cannot be read; every non-zero\nexit says why "
		"on stderr\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argv[2]);
	if (!strcmp(argv[1], "dump"))
		return cmd_dump(argv[2]);
	if (!strcmp(argv[1], "log"))
		return cmd_log(argv[2]);
	if (!strcmp(argv[1], "salvage"))
		return cmd_salvage(argv[2]);
	usage();
	return 2;
}
