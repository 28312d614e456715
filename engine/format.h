/*
 * On-disk structures of mix.index and mix.index.log.
 *
 * docs/format.md is normative; every struct here cites its section.  All
 * integers are little-endian; the engine is built for little-endian hosts
 * only (checked below), so these structs are read directly from a mapping
 * after their size and offsets have been validated against the mapping's
 * end.  Nothing here is trusted before validation.
 */
#ifndef MIX_FORMAT_H
#define MIX_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mix's file format is little-endian; big-endian hosts are not supported"
#endif

/* ---- mix.index (docs/format.md §2) ----------------------------------- */

#define MIX_INDEX_MAGIC 0x4958494du /* "MIXI" */
#define MIX_INDEX_MAJOR 1
#define MIX_INDEX_MINOR 0

/* compat_flags */
#define MIX_COMPAT_LITTLE_ENDIAN 0x01

/* header flags */
#define MIX_HDR_FLAG_CORRUPTED 0x01
#define MIX_HDR_FLAG_HAVE_DIRTY 0x02
#define MIX_HDR_FLAG_FSCK 0x04

struct mix_index_header {
	uint32_t magic;                      /*   0 */
	uint8_t major_version;               /*   4 */
	uint8_t minor_version;               /*   5 */
	uint16_t base_header_size;           /*   6 */
	uint32_t header_size;                /*   8 base + extension headers */
	uint16_t record_size;                /*  12 */
	uint8_t compat_flags;                /*  14 */
	uint8_t unused0;                     /*  15 must be 0 */
	uint32_t indexid;                    /*  16 seconds since 2020-01-01 */
	uint32_t flags;                      /*  20 MIX_HDR_FLAG_* */
	uint32_t uid_validity;               /*  24 */
	uint32_t next_uid;                   /*  28 */
	uint32_t messages_count;             /*  32 */
	uint32_t seen_messages_count;        /*  36 */
	uint32_t deleted_messages_count;     /*  40 */
	uint32_t first_recent_uid;           /*  44 */
	uint32_t first_unseen_uid_lowwater;  /*  48 */
	uint32_t first_deleted_uid_lowwater; /*  52 */
	uint32_t log_file_seq;               /*  56 */
	uint32_t log_file_head_offset;       /*  60 */
	uint64_t highest_modseq;             /*  64 */
	uint32_t day_stamp;                  /*  72 */
	uint32_t day_first_uid[8];           /*  76 */
	uint32_t checksum;                   /* 108 CRC32C of the whole file
					      *     with this field as 0 */
	uint64_t file_size;                  /* 112 total bytes of the file */
};                                           /* 120 */

_Static_assert(sizeof(struct mix_index_header) == 120, "index header size");
_Static_assert(offsetof(struct mix_index_header, indexid) == 16, "indexid");
_Static_assert(offsetof(struct mix_index_header, log_file_seq) == 56, "lfs");
_Static_assert(offsetof(struct mix_index_header, highest_modseq) == 64, "hm");
_Static_assert(offsetof(struct mix_index_header, day_first_uid) == 76, "dfu");
_Static_assert(offsetof(struct mix_index_header, checksum) == 108, "crc");
_Static_assert(offsetof(struct mix_index_header, file_size) == 112, "size");

/* Extension header (§2.2), starting 8-aligned at base_header_size, then
 * each next one 8-aligned after the previous one's data.  Layout:
 *   struct mix_index_ext_header; name[name_size] (no NUL); pad to 8;
 *   data[hdr_size]; pad to 8. */
struct mix_index_ext_header {
	uint32_t hdr_size;      /* 0 bytes of data[] */
	uint32_t reset_id;      /* 4 */
	uint16_t record_offset; /* 8 offset of the ext's data in a record */
	uint16_t record_size;   /* 10 0 = header-only extension */
	uint16_t record_align;  /* 12 1, 2, 4 or 8 */
	uint16_t name_size;     /* 14 1..63 */
};
_Static_assert(sizeof(struct mix_index_ext_header) == 16, "ext header");

#define MIX_EXT_NAME_MAX 63
#define MIX_EXT_REC_MAX 1024
#define MIX_EXT_HDR_MAX 65536

/* Names of the built-in extensions, always first, in this order. */
#define MIX_EXT_NAME_MODSEQ "modseq"
#define MIX_EXT_NAME_KEYWORDS "keywords"

/* The expunge history (§2.6): a header-only extension, always written
 * last.  Data: struct mix_xhist_header, then count entries, oldest first:
 * struct mix_xhist_entry followed by nranges struct mix_log_uid_range.
 * Every expunge with a modseq above oldest_modseq is listed. */
#define MIX_EXT_NAME_EXPUNGES "mix.expunges"
/* §2.7: the UID floor at the checkpoint, an engine extension of 8 bytes
 * of header data just before mix.expunges */
#define MIX_EXT_NAME_UIDS "mix.uids"
/* §2.9: the lost point, an ordinary engine extension (logged, replayed,
 * checkpointed) with 8 bytes of header data: a modseq, 0 if none */
#define MIX_EXT_NAME_LOST "mix.lost"
#define MIX_XHIST_HDR_MAX (64u << 20)
struct mix_xhist_header {
	uint64_t oldest_modseq;
	uint32_t count;
	uint32_t pad;
};
struct mix_xhist_entry {
	uint64_t modseq;
	uint32_t nranges;
	uint32_t pad;
};
_Static_assert(sizeof(struct mix_xhist_header) == 16, "xhist header");
_Static_assert(sizeof(struct mix_xhist_entry) == 16, "xhist entry");

/* The "keywords" extension header data (§2.3): u32 count; then count
 * NUL-terminated names back to back.  Bit i of a record's keyword bitmap
 * is keyword i. */

/* Record (§2.4): the fixed part, then extension data at the offsets the
 * extension headers give.  modseq is at offset 8, keywords at 16. */
struct mix_index_record {
	uint32_t uid;
	uint8_t flags;
	uint8_t pad[3];
	uint64_t modseq;
};
_Static_assert(sizeof(struct mix_index_record) == 16, "record");
#define MIX_REC_MODSEQ_OFFSET 8
#define MIX_REC_KEYWORDS_OFFSET 16

/* ---- mix.index.log (docs/format.md §3) ------------------------------- */

#define MIX_LOG_MAGIC 0x474f4c4du /* "MLOG" */
#define MIX_LOG_MAJOR 3      /* written */
#define MIX_LOG_MAJOR_MIN 1  /* the oldest major version still read */
#define MIX_LOG_MINOR 0

/* A log file is at most 4 GiB, so that every transaction's offset fits the
 * low 32 bits of its modseq (§3.4, §4). */
#define MIX_LOG_SIZE_MAX (UINT64_C(1) << 32)

/* Log header (§3.1).  Writers write 0 into unused; readers check it is 0
 * unless the minor version is newer.  Offset 40 is uid_floor from major
 * version 3 on (every UID handed out while this file was the active log is
 * below it, unless a UID_FLOOR record raises it; 0: no claim) and reserved
 * (0) before: both names address the same field. */
struct mix_log_header {
	uint32_t magic;            /*  0 */
	uint8_t major_version;     /*  4 */
	uint8_t minor_version;     /*  5 */
	uint16_t hdr_size;         /*  6 48 here; >= 48, multiple of 4;
				    *    transactions start here */
	uint32_t indexid;          /*  8 */
	uint32_t file_seq;         /* 12 */
	uint32_t prev_file_seq;    /* 16 0 for the first log of an index */
	uint32_t prev_file_offset; /* 20 end of valid data in the previous log */
	uint64_t create_stamp;     /* 24 Unix seconds */
	uint8_t compat_flags;      /* 32 MIX_COMPAT_LITTLE_ENDIAN */
	uint8_t unused[7];         /* 33 */
	union {
		uint32_t uid_floor; /* 40 major >= 3 */
		uint32_t reserved;  /* 40 major 1 and 2: 0 */
	};
	uint32_t checksum;         /* 44 CRC32C of bytes 0..47 with this
				    *    field as 0 (bytes past 48 of a newer
				    *    minor's larger header are not covered) */
};
_Static_assert(sizeof(struct mix_log_header) == 48, "log header");
_Static_assert(offsetof(struct mix_log_header, hdr_size) == 6, "hdr_size");
_Static_assert(offsetof(struct mix_log_header, indexid) == 8, "indexid");
_Static_assert(offsetof(struct mix_log_header, file_seq) == 12, "file_seq");
_Static_assert(offsetof(struct mix_log_header, prev_file_seq) == 16, "pfs");
_Static_assert(offsetof(struct mix_log_header, prev_file_offset) == 20, "pfo");
_Static_assert(offsetof(struct mix_log_header, create_stamp) == 24, "stamp");
_Static_assert(offsetof(struct mix_log_header, compat_flags) == 32, "compat");
_Static_assert(offsetof(struct mix_log_header, reserved) == 40, "reserved");
_Static_assert(offsetof(struct mix_log_header, uid_floor) == 40, "uid_floor");
_Static_assert(offsetof(struct mix_log_header, checksum) == 44, "log crc");

/* Every log record starts with this; records are 4-aligned and size
 * (which includes this header and any padding) is a multiple of 4 and
 * exactly what the record's payload needs (§3.3).  Padding bytes, pad
 * fields and flags are 0 in major version 1 and checked. */
struct mix_log_rec {
	uint32_t size;
	uint16_t type;
	uint16_t flags; /* 0 */
};
_Static_assert(sizeof(struct mix_log_rec) == 8, "log record header");
_Static_assert(offsetof(struct mix_log_rec, type) == 4, "rec type");

enum mix_log_type {
	MIX_LOG_BOUNDARY = 1,
	MIX_LOG_APPEND = 2,
	MIX_LOG_EXPUNGE = 3,
	MIX_LOG_FLAGS = 4,
	MIX_LOG_KEYWORD = 5,
	MIX_LOG_KEYWORD_RESET = 6,
	MIX_LOG_EXT_INTRO = 7,
	MIX_LOG_EXT_HDR = 8,
	MIX_LOG_EXT_REC = 9,
	MIX_LOG_HDR = 10,
	/* major version 2 */
	MIX_LOG_APPEND_RUN = 11,
	MIX_LOG_EXT_RUN = 12,
	/* major version 3 */
	MIX_LOG_UID_FLOOR = 13,
};

/* A transaction (§3.2) is a BOUNDARY record followed by operation
 * records; txn_size covers all of them.  crc is CRC32C over the txn_size
 * bytes with the crc field taken as 0.  rec.flags is 0, or from major
 * version 3 on MIX_LOG_PREV_SYNCED; any other bit makes it no boundary. */
struct mix_log_boundary {
	struct mix_log_rec rec; /* type BOUNDARY, size 16 */
	uint32_t txn_size;
	uint32_t crc;
};
_Static_assert(sizeof(struct mix_log_boundary) == 16, "boundary");
_Static_assert(offsetof(struct mix_log_boundary, txn_size) == 8, "txn_size");
_Static_assert(offsetof(struct mix_log_boundary, crc) == 12, "txn crc");

/* Boundary flag (major >= 3, §3.2): every byte of the file before this
 * transaction had been made durable (fdatasync completed) before this
 * transaction was written. */
#define MIX_LOG_PREV_SYNCED 0x0001u
/* The boundary flags valid in a file of major version major. */
static inline uint16_t mix_log_boundary_flags_valid(uint8_t major)
{
	return major >= 3 ? MIX_LOG_PREV_SYNCED : 0;
}

struct mix_log_uid_range {
	uint32_t first, last;
};
_Static_assert(sizeof(struct mix_log_uid_range) == 8, "uid range");

/* APPEND: n × { u32 uid; u32 flags } — UIDs > 0 and strictly
 * increasing (checked by the decoder) and >= next_uid (checked by the
 * applier, which knows next_uid); flags within MIX_FLAGS_ALL.  New records
 * get the txn's modseq, no keywords and zeroed extension data. */
struct mix_log_append {
	uint32_t uid;
	uint32_t flags;
};
_Static_assert(sizeof(struct mix_log_append) == 8, "append entry");

/* APPEND_RUN (major 2): this, then count flag bytes, zero-padded to 4:
 * UIDs first_uid .. first_uid + count - 1 (count >= 1, the last below
 * 2^32 - 1), each with its flags byte.  The same as an APPEND of those
 * entries in 1 byte per message instead of 8. */
struct mix_log_append_run {
	uint32_t first_uid;
	uint32_t count;
};
_Static_assert(sizeof(struct mix_log_append_run) == 8, "append run");

/* EXPUNGE: n × struct mix_log_uid_range, sorted, not overlapping. */

/* FLAGS: this, then n × struct mix_log_uid_range. */
struct mix_log_flags {
	uint8_t add;
	uint8_t remove;
	uint16_t pad;
};
_Static_assert(sizeof(struct mix_log_flags) == 4, "flags");

/* KEYWORD: this, name[name_size] padded to 4, then n × uid range.  The
 * name is added to the keyword list if new. */
struct mix_log_keyword {
	uint8_t modify; /* 1 add, 2 remove */
	uint8_t pad;
	uint16_t name_size;
};
_Static_assert(sizeof(struct mix_log_keyword) == 4, "keyword");
#define MIX_LOG_KW_ADD 1
#define MIX_LOG_KW_REMOVE 2

/* KEYWORD_RESET: n × uid range; clears every keyword of those messages. */

/* EXT_INTRO: this, then name padded to 4.  ext_id is the extension's
 * position in the list (== the number of extensions it is added after). */
struct mix_log_ext_intro {
	uint32_t ext_id;
	uint32_t reset_id;
	uint32_t hdr_size;
	uint16_t record_size;
	uint16_t record_align;
	uint16_t name_size;
	uint16_t pad;
};
_Static_assert(sizeof(struct mix_log_ext_intro) == 20, "ext intro");
_Static_assert(offsetof(struct mix_log_ext_intro, record_size) == 12, "rs");
_Static_assert(offsetof(struct mix_log_ext_intro, name_size) == 16, "ns");

/* EXT_HDR: this, then data padded to 4. */
struct mix_log_ext_hdr {
	uint32_t ext_id;
	uint32_t offset;
	uint32_t size;
};
_Static_assert(sizeof(struct mix_log_ext_hdr) == 12, "ext hdr");

/* EXT_REC: this, then n × { u32 uid; data[rec_size] padded to 4 }. */
struct mix_log_ext_rec {
	uint32_t ext_id;
	uint32_t rec_size;
};
_Static_assert(sizeof(struct mix_log_ext_rec) == 8, "ext rec");

/* EXT_RUN (major 2): this, then count × rec_size bytes, zero-padded to
 * 4: the record data of UIDs first_uid .. first_uid + count - 1
 * (count >= 1), back to back.  The same as an EXT_REC of those entries
 * without a UID per entry. */
struct mix_log_ext_run {
	uint32_t ext_id;
	uint32_t rec_size;
	uint32_t first_uid;
	uint32_t count;
};
_Static_assert(sizeof(struct mix_log_ext_run) == 16, "ext run");

/* HDR: this, then data padded to 4; offset/size address the base header
 * (only uid_validity, next_uid, first_recent_uid, day_stamp and
 * day_first_uid[] may be written). */
struct mix_log_hdr {
	uint32_t offset;
	uint32_t size;
};
_Static_assert(sizeof(struct mix_log_hdr) == 8, "hdr");

/* UID_FLOOR (major 3, §3.3.13): raises the file's UID floor (the header's
 * uid_floor) to uid_floor (at least 1; a lower value changes nothing);
 * pad is 0.  The floor of a file is the highest of its header's and its
 * UID_FLOOR records', and every UID handed out while the file was the
 * active log is below it. */
struct mix_log_uid_floor {
	uint32_t uid_floor;
	uint32_t pad;
};
_Static_assert(sizeof(struct mix_log_uid_floor) == 8, "uid floor");

/* Modseq formula (invariant 4, §4); offset is the offset of the
 * transaction's boundary record in log file file_seq. */
static inline uint64_t mix_modseq_make(uint32_t indexid, uint32_t file_seq,
				       uint32_t offset)
{
	return ((uint64_t)indexid + file_seq) << 32 | offset;
}

/* 1 if the modseqs of log file (indexid, file_seq) stay below 2^63, i.e.
 * indexid + file_seq < 2^31 (§4).  Writers refuse to create, and readers
 * refuse to read, a log file for which this is 0. */
static inline int mix_modseq_file_ok(uint32_t indexid, uint32_t file_seq)
{
	return (uint64_t)indexid + file_seq < (UINT64_C(1) << 31);
}

/* Seconds from 1970-01-01 to 2020-01-01. */
#define MIX_INDEXID_EPOCH 1577836800u

static inline uint32_t mix_align4(uint32_t n) { return (n + 3u) & ~3u; }
static inline uint32_t mix_align8(uint32_t n) { return (n + 7u) & ~7u; }

#endif
