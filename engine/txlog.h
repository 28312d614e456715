/*
 * mix.index.log: creating, appending to, reading and decoding the
 * transaction log, docs/format.md §3 and §4.  This module knows the log
 * layout only; applying operations to a snapshot is done by the caller.
 *
 * Calling context: a struct mix_log_writer is used by the one thread that
 * owns the mailbox (holding the log lock across processes); a struct
 * mix_log_reader, a struct mix_buf and the decoder belong to the calling
 * thread and touch no shared state.  Errors set the calling thread's
 * message (mix_last_error()).
 */
#ifndef MIX_TXLOG_H
#define MIX_TXLOG_H

#include <stddef.h>
#include <stdint.h>
#include "crc32c.h"
#include "format.h"

#define MIX_LOG_FILENAME "mix.index.log"
#define MIX_LOG2_FILENAME "mix.index.log.2"
#define MIX_LOG_TMP_FILENAME "mix.index.log.newtmp"

/* ---- growable byte buffer (encoding) --------------------------------- */
/* A zeroed struct is an empty buffer.  data is malloc'd (so 8-aligned). */
struct mix_buf {
	uint8_t *data;
	size_t len, cap;
};
int mix_buf_reserve(struct mix_buf *b, size_t more);   /* 0 or -ENOMEM */
int mix_buf_append(struct mix_buf *b, const void *p, size_t n); /* same */
/* Free data and zero *b. */
void mix_buf_free(struct mix_buf *b);

/* ---- writing --------------------------------------------------------- */

struct mix_log_writer {
	int fd;
	char *path;           /* dir/mix.index.log */
	char *dir;
	struct mix_log_header hdr;
	uint64_t offset;      /* append position == end of valid data */
	/* set by a failed append or sync: the bytes at offset may have been
	 * seen by other processes, and a failed fsync cannot be retried, so
	 * the file takes no more appends (MIX_EPANIC); rotate to a new log */
	int failed;
	/* every byte of the file before this offset is known durable: the
	 * header end after mix_log_rotate_to* (which fsyncs it), w->offset
	 * after a successful mix_log_sync; never moved by a failure.  When
	 * synced == offset, the next transaction written may carry
	 * PREV_SYNCED (mix_logenc_mark_prev_synced, §3.2). */
	uint64_t synced;
};

/*
 * Start a new active log (§3.5): write dir/mix.index.log.newtmp with a
 * header (indexid, file_seq, prev_file_seq, prev_file_offset,
 * create_stamp = now), fsync it, rename dir/mix.index.log (if any) to
 * mix.index.log.2 and fsync dir, rename the new file to mix.index.log and
 * fsync dir.  The caller must own the log lock and must have checkpointed
 * mix.index past the old mix.index.log.2 (mix.index's log_file_seq >= the
 * file_seq of the log being renamed), because that file is replaced.
 * *w_r is overwritten (close an older writer separately).
 * Returns 0 and an open writer positioned after the header; MIX_EINVAL
 * (file_seq 0 or prev_file_seq >= file_seq); MIX_ELIMIT (indexid +
 * file_seq >= 2^31, §4); -errno.  On error *w_r is closed (fd -1), the
 * temporary file removed, and: the old log is still mix.index.log if the
 * first rename did not happen; if it did, the old log is mix.index.log.2
 * and there is no mix.index.log (what recovery after a crash at that step
 * also sees, §3.5) — also when only the last directory fsync failed: the
 * new log is removed again.  So a caller whose old log file is no longer
 * mix.index.log after an error must not append to it any more.
 */
int mix_log_rotate_to(const char *dir, uint32_t indexid, uint32_t file_seq,
		      uint32_t prev_file_seq, uint32_t prev_file_offset,
		      struct mix_log_writer *w_r);
/* The same, writing uid_floor into the header (§3.1, major 3: every UID
 * handed out while this file is the active log will be below it unless a
 * UID_FLOOR record raises it; 0 claims nothing).  mix_log_rotate_to is
 * this with uid_floor 0.  Same returns.  dfd: the directory dir held
 * open, in which every name is taken (fileio.h "the _in calls"), or -1
 * (mix_log_rotate_to): names under the path dir; the same for the dfd of
 * the calls below. */
int mix_log_rotate_to_floor(int dfd, const char *dir, uint32_t indexid,
			    uint32_t file_seq, uint32_t prev_file_seq,
			    uint32_t prev_file_offset, uint32_t uid_floor,
			    struct mix_log_writer *w_r);

/* fdatasync the file at path through a descriptor of its own (read-only:
 * enough for fdatasync on Linux, and what a read-only open of the index
 * may have): a log another descriptor wrote (the checkpointer's sync of
 * the writer's log, a rotation's completion), or a dead process did (a
 * recovering open).  Write-back errors are reported once per open file
 * description, and a new one still gets an error nobody has seen yet:
 * the writer's descriptor keeps reporting what this one reports, and the
 * reverse, so neither consumes an error the other must see (§3.2).
 * Returns 0 or a negative error (-ENOENT when there is no such file, with
 * the error message set). */
int mix_log_sync_path(int dfd, const char *path);

/* Create dir/mix.index.log.newtmp (tmp), empty.  A file left under that
 * name keeps it (its name tells recovery that its file_seq may have been
 * used, §3.5, until the new file replaces it) and is truncated with an
 * fsync, so that after a power cut no old transaction can show under a
 * new header (recovery reads a newtmp that continues the chain).
 * Returns the descriptor (read-write) or a negative error. */
int mix_log_tmp_create(int dfd, const char *tmp);

/*
 * An asynchronous rotation (§3.5 "A rotation in two steps"; docs/design.md
 * "Checkpoints off the writer thread"), step 1, the switch, which makes no
 * flush.  fd is mix.index.log.newtmp, which the checkpointer created empty
 * before the directory fsync of its mix.index (so that after any crash
 * the file is there to say that its file_seq may have been used); the
 * header is written into it (prev_file_offset: the old log's end, final
 * now).  *w_r appends to it from now on (w_r->synced 0: nothing of it is
 * durable, not even the header); its path names mix.index.log, the name
 * it will have.  The caller keeps the old log's descriptor for
 * mix_log_switch_complete and must not let a sync, a checkpoint or
 * another rotation happen before that completed.  Same returns as
 * mix_log_rotate_to_floor; fd belongs to *w_r on success and stays the
 * caller's on error, when nothing changed and the old log stays active.
 */
int mix_log_switch_begin(const char *dir, int fd, uint32_t indexid,
			 uint32_t file_seq, uint32_t prev_file_seq,
			 uint32_t prev_file_offset, uint32_t uid_floor,
			 struct mix_log_writer *w_r);
/*
 * Step 2, the flushes: fdatasync the old log (old_fd, the writer's former
 * descriptor, or a recovering open's; -1 when that log is gone) to its end, fdatasync mix.index.log.newtmp through a
 * descriptor of its own, rename mix.index.log to .log.2, fsync dir, rename
 * newtmp to mix.index.log, fsync dir.  Only then is the new log's header
 * (its UID floor among it) durable and may a mix.index name a position in
 * it.  Any thread.  A failure leaves a state recovery handles (newtmp is
 * adopted when it continues the chain); the caller poisons the index,
 * because a failed flush cannot be retried (§3.2).
 */
int mix_log_switch_complete(int dfd, const char *dir, int old_fd);

/* Append len bytes (one or more whole transactions, so len is a multiple
 * of 4) at w->offset with one write and advance w->offset.  Returns 0;
 * MIX_EINVAL (writer not open, len not a multiple of 4); MIX_ELIMIT (the
 * file would pass MIX_LOG_SIZE_MAX; nothing written, rotate first);
 * MIX_EPANIC (an earlier append or sync failed); -errno.  On an I/O error
 * the file is truncated back to the old offset (best effort), w->offset is
 * unchanged and w->failed is set. */
int mix_log_append(struct mix_log_writer *w, const void *buf, size_t len);
/* The same for a batch whose first transaction is first_txn bytes: a
 * write that failed for lack of space (ENOSPC, EDQUOT) after fewer than
 * first_txn bytes had landed, and that was cut off again, leaves the log
 * usable (w->failed stays 0): no reader can have taken any of it for a
 * transaction, so the caller may fail the batch alone and append again
 * at the same offset later.  Any other failure sets w->failed as
 * mix_log_append does. */
int mix_log_append_batch(struct mix_log_writer *w, const void *buf,
			 size_t len, size_t first_txn);

/* fdatasync the log.  Returns 0 (and sets w->synced = w->offset),
 * MIX_EINVAL, MIX_EPANIC (an earlier append or sync failed) or -errno (and
 * sets w->failed; w->synced stays). */
int mix_log_sync(struct mix_log_writer *w);

/* Close the fd and free the strings; leaves *w zeroed with fd -1.  Safe on
 * a zeroed struct (fd 0 is not closed: only a writer with path set owns
 * its fd), on one a failed mix_log_rotate_to returned, and twice. */
void mix_log_writer_close(struct mix_log_writer *w);

/* ---- encoding one transaction into a buffer --------------------------- */

/* Every mix_logenc_* call appends to b, whose len must be a multiple of 4
 * (so records stay 4-aligned), and returns 0, -ENOMEM, or MIX_EINVAL when
 * the record would not pass mix_log_txn_next_op's validation (the message
 * says why; records are checked by the decoder's own code).  On error b is
 * unchanged.  An empty record (count 0) is allowed. */

/* Start a transaction at the end of b: reserves the boundary record.
 * Returns the transaction's start position in b via *start_r. */
int mix_logenc_begin(struct mix_buf *b, size_t *start_r);
/* Fill in the boundary (txn_size, crc) of the transaction at start: the
 * transaction is everything from start to b->len.  A transaction of 4 GiB
 * or more gets txn_size 0 (invalid; mix_log_append refuses it anyway). */
void mix_logenc_end(struct mix_buf *b, size_t start);

int mix_logenc_append(struct mix_buf *b, const struct mix_log_append *recs,
		      uint32_t count);
/* APPEND of UIDs uid0 .. uid0+count-1 with flags[i]. */
int mix_logenc_append_run(struct mix_buf *b, uint32_t uid0,
			  const uint8_t *flags, uint32_t count);
int mix_logenc_expunge(struct mix_buf *b, const struct mix_log_uid_range *r,
		       uint32_t count);
int mix_logenc_flags(struct mix_buf *b, uint8_t add, uint8_t remove,
		     const struct mix_log_uid_range *r, uint32_t count);
int mix_logenc_keyword(struct mix_buf *b, uint8_t modify, const char *name,
		       const struct mix_log_uid_range *r, uint32_t count);
int mix_logenc_keyword_reset(struct mix_buf *b,
			     const struct mix_log_uid_range *r, uint32_t count);
/* intro's name_size and pad are ignored: name_size = strlen(name). */
int mix_logenc_ext_intro(struct mix_buf *b,
			 const struct mix_log_ext_intro *intro,
			 const char *name);
int mix_logenc_ext_hdr(struct mix_buf *b, uint32_t ext_id, uint32_t offset,
		       const void *data, uint32_t size);
/* EXT_REC with count entries; uids[i] gets data + i * rec_size. */
int mix_logenc_ext_rec(struct mix_buf *b, uint32_t ext_id, uint32_t rec_size,
		       const uint32_t *uids, const uint8_t *data,
		       uint32_t count);
/* EXT_REC of UIDs uid0 + i for i < count with set[i] (every i if set is
 * NULL), with data + i * rec_size. */
int mix_logenc_ext_rec_run(struct mix_buf *b, uint32_t ext_id,
			   uint32_t rec_size, uint32_t uid0,
			   const uint8_t *data, const uint8_t *set,
			   uint32_t count);
int mix_logenc_hdr(struct mix_buf *b, uint32_t offset, const void *data,
		   uint32_t size);
/* UID_FLOOR (§3.3.13, major 3): raise the file's UID floor to floor
 * (>= 1; MIX_EINVAL for 0). */
int mix_logenc_uid_floor(struct mix_buf *b, uint32_t floor);
/* Set PREV_SYNCED (§3.2) on the complete transaction at start (after
 * mix_logenc_end) and recompute its CRC.  Only for a transaction that
 * will be written at w->offset while w->synced == w->offset: the flag
 * states that every byte before it is durable, and a reader takes a bad
 * transaction before a flagged one as damage, not a torn tail (§3.4).
 * Returns 0, or MIX_EINVAL when no complete transaction is at start. */
int mix_logenc_mark_prev_synced(struct mix_buf *b, size_t start);

/* §3.2: CRC32C of the txn_size (>= 16) bytes at txn with the boundary's
 * crc field taken as 0.  Inline: the reader calls it once per
 * transaction. */
static inline uint32_t mix_log_txn_crc(const uint8_t *txn, uint32_t txn_size)
{
	static const uint8_t zero[4];
	const size_t crc_off = offsetof(struct mix_log_boundary, crc);
	uint32_t crc;

	crc = mix_crc32c(0, txn, crc_off);
	crc = mix_crc32c(crc, zero, sizeof(zero));
	return mix_crc32c(crc, txn + crc_off + 4, txn_size - (crc_off + 4));
}

/* ---- reading --------------------------------------------------------- */

struct mix_log_reader {
	char *path;
	/* A window of the file: data holds the bytes [base, base + have).
	 * Open reads the first MIX_LOG_READ_HEAD bytes (the header); later
	 * reads take MIX_LOG_WINDOW bytes from the position (fewer at the
	 * end), or one whole transaction when it is larger, so memory stays
	 * below the largest transaction plus the window, whatever the file
	 * size.  A reader made from a buffer holds all of it. */
	uint8_t *data;
	uint64_t base, have;
	int fd;               /* the file, when own_fd */
	int own_fd;           /* 0 for a buffer and a zeroed struct */
	uint64_t size;        /* file size at open (or where it ended) */
	struct mix_log_header hdr;
	uint64_t pos;         /* next transaction */
	/* Set when reading stopped at a transaction that fails §3.4's
	 * checks (torn or CRC): torn_offset is where.  torn_reason names the
	 * file and offset, says why, and what follows (below). */
	int torn;
	uint64_t torn_offset;
	char torn_reason[512];
	uint64_t cap;         /* bytes allocated at data */
	/* What the reader found after torn_offset (§3.4), scanning the rest
	 * of the file for well-framed transactions (checks 1-4): */
	uint64_t next_valid;  /* the first one, or 0 if none */
	uint32_t valid_after; /* how many: following each one's txn_size,
			       * scanning on past a bad one */
	/* 1 when one of them is marked PREV_SYNCED (damage_proof is the
	 * first such): the bytes at torn_offset had been durable before it
	 * was written, so they are damage, not a torn tail.  A caller
	 * recovering the index treats that as MIX_ECORRUPT unless told to
	 * salvage (mix_log_reader_skip_damage). */
	int damaged;
	uint64_t damage_proof;
	/* the scan stopped at its work limit (crafted files): more may
	 * follow than valid_after says (the reason says so) */
	int scan_partial;
};

/* Bytes read at open: the header, with room for a newer minor's larger
 * one, and one page (a follower that seeks near the end never reads
 * more of the start). */
#define MIX_LOG_READ_HEAD 4096u
#define MIX_LOG_WINDOW (1u << 20)

/* Open path and verify its header (§3.1: magic, version, byte order,
 * checksum, hdr_size, file_seq).  Returns 0; -ENOENT; MIX_EVERSION;
 * MIX_ECORRUPT naming path and field (also for a file larger than
 * MIX_LOG_SIZE_MAX, and naming the file type for anything but a regular
 * file: a symlink is followed, a FIFO is refused without blocking, §3);
 * -errno.  Positions the reader at the first
 * transaction.  On error *r_r is zeroed (closing it is harmless). */
int mix_log_reader_open(const char *path, struct mix_log_reader *r_r);
/* The same for the name of path in the directory held as dfd (fileio.h
 * "the _in calls"). */
int mix_log_reader_open_in(int dfd, const char *path,
			   struct mix_log_reader *r_r);
/* The same over a copy of buf (tests, fuzzer). */
int mix_log_reader_from_buf(const void *buf, size_t size, const char *path,
			    struct mix_log_reader *r_r);
/* Move to offset, which must be >= hdr_size, <= size and a multiple of 4
 * (MIX_ECORRUPT naming path and offset otherwise).  Clears torn. */
int mix_log_reader_seek(struct mix_log_reader *r, uint64_t offset);
/* Next whole, CRC-valid transaction: returns 1 with *txn_r pointing at its
 * boundary record (valid until the next call, seek or close), *size_r its
 * txn_size and *offset_r its offset in the file; 0 at the end of valid
 * data (r->torn says whether bytes after it were dropped, with
 * r->torn_reason, and next_valid, valid_after and damaged say what follows
 * them, §3.4); -errno or -ENOMEM when the rest of the file could not be
 * read (the position is unchanged; not a torn tail). */
int mix_log_reader_next(struct mix_log_reader *r, const uint8_t **txn_r,
			uint32_t *size_r, uint64_t *offset_r);
/* Salvage (§3.4): after mix_log_reader_next stopped at a torn or damaged
 * transaction, move to r->next_valid, clear torn (and next_valid,
 * valid_after, damaged, damage_proof: read them first) and return 1; the
 * bytes from torn_offset to next_valid are skipped.  Returns 0 (nothing
 * changed) when the reader is not torn or no well-framed transaction
 * follows. */
int mix_log_reader_skip_damage(struct mix_log_reader *r);
/* Free everything and zero *r.  Safe on a zeroed struct and twice. */
void mix_log_reader_close(struct mix_log_reader *r);

/* ---- decoding the records of one transaction ------------------------ */

/* A decoded operation record; pointers point into the transaction. */
struct mix_log_op {
	uint16_t type;            /* enum mix_log_type, never BOUNDARY */
	uint32_t count;           /* entries in appends / ranges / ext uids */
	const struct mix_log_append *appends;
	const struct mix_log_uid_range *ranges;
	/* FLAGS */
	uint8_t add, remove;
	/* KEYWORD */
	uint8_t modify;
	/* KEYWORD, EXT_INTRO (not NUL-terminated) */
	const char *name;
	uint16_t name_size;
	/* EXT_INTRO */
	struct mix_log_ext_intro intro;
	/* EXT_INTRO (== intro.ext_id), EXT_HDR, EXT_REC */
	uint32_t ext_id;
	uint32_t offset;          /* EXT_HDR, HDR */
	uint32_t size;            /* EXT_HDR, HDR: bytes at data */
	uint32_t rec_size;        /* EXT_REC, EXT_RUN */
	uint32_t stride;          /* EXT_REC: bytes per entry (4 + rec_size
				   * rounded up to 4) */
	uint32_t first_uid;       /* APPEND_RUN, EXT_RUN: the first of count
				   * consecutive UIDs */
	uint32_t uid_floor;       /* UID_FLOOR (major 3): the new floor, >= 1;
				   * no other field is set */
	const uint8_t *data;      /* EXT_HDR, HDR: the bytes; EXT_REC: the
				   * first entry (u32 uid then data);
				   * APPEND_RUN: count flag bytes; EXT_RUN:
				   * count × rec_size bytes */
};

/* Iterate the operation records of a transaction returned by
 * mix_log_reader_next (or built by mix_logenc_*): *pos starts at 0.
 * Returns 1 with *op_r filled, 0 at the end, MIX_ECORRUPT (message names
 * the record type and its offset within the transaction) for a record
 * whose size, type or payload is invalid (every rule of docs/format.md
 * §3.2 and §3.3): sizes inside the transaction, ranges first <= last,
 * sorted and not overlapping, appended UIDs strictly increasing and > 0,
 * flags within MIX_FLAGS_ALL, names 1..255 (keyword) or 1..63 (extension)
 * bytes, each byte above 0x20 and not 0x7f, ext intro sizes
 * and alignment within the limits of format.h, HDR writing only
 * uid_validity, next_uid or first_recent_uid, zero padding, and the run
 * types (APPEND_RUN, EXT_RUN) only in a file of major version 2 or later,
 * UID_FLOOR and the boundary flag PREV_SYNCED only in 3 or later
 * (major is the file header's major_version).  Returns MIX_EINVAL if txn
 * is not 4-aligned or *pos is not 0 or a record boundary (caller bugs).  *pos is advanced only on success.  The CRC is
 * not checked here (the reader did). */
int mix_log_txn_next_op(const uint8_t *txn, uint32_t txn_size, uint8_t major,
			uint32_t *pos, struct mix_log_op *op_r);

#endif
