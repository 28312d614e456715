/*
 * Transactions as committers build them (txn.c) and as the writer applies
 * them (txn-apply.c).  A transaction belongs to one thread until commit;
 * then to the writer until it is completed (done is set), after which the
 * committer reads the result (sync commit) or the callback gets it.
 */
#ifndef MIX_TXN_H
#define MIX_TXN_H

#include <stdint.h>

#include "mix/mix.h"
#include "intake.h"
#include "txlog.h"

enum txn_op_type {
	TXN_APPEND = 1,      /* a run of appends: numbers uid .. uid+size-1 */
	TXN_APPEND_EXT,      /* data of an append given after later ops */
	TXN_FLAGS,
	TXN_KEYWORDS,
	TXN_EXPUNGE,
	TXN_EXT_SET,
	TXN_EXT_HDR,
	TXN_HDR,
	TXN_EXT_REGISTER,
	TXN_EXPUNGE_DELETED, /* expunge those of ranges with \Deleted now */
	TXN_RECENT_CLAIM,    /* [first_recent_uid, next_uid) to the caller */
	TXN_EXT_HDR_REQUIRE, /* fail unless extension header bytes equal */
};

/* One operation; variable data lives in the transaction's arena at the
 * given offsets (the arena may move while the transaction is built). */
struct txn_op {
	uint8_t type;
	uint8_t modify;      /* enum mix_modify */
	uint8_t flags;
	uint32_t nranges;    /* ranges: sorted, merged struct mix_uid_range */
	uint32_t ranges;
	/* keywords: kw is the arena offset of u32[nkw], the offsets of
	 * NUL-terminated names */
	uint32_t nkw;
	uint32_t kw;
	uint32_t ext_id;
	uint32_t uid;        /* EXT_SET; APPEND: the run's first append;
			      * APPEND_EXT: the append number */
	uint32_t offset;     /* EXT_HDR */
	uint32_t value;      /* HDR: value; field in ext_id */
	uint32_t data, size; /* EXT_SET, APPEND_EXT, EXT_HDR; REGISTER: name;
			      * APPEND: size is the number of appends */
	uint16_t rec_size, rec_align;
	uint32_t hdr_size;
	/* FLAGS, KEYWORDS: CONDSTORE UNCHANGEDSINCE when cond is set */
	uint8_t cond;
	uint64_t unchangedsince;
};

/* Appended messages are kept by append number, in columns, not as one
 * operation each: a transaction of 1,000 appends is one TXN_APPEND op,
 * 1,000 flag bytes and, per extension given data, one array of records
 * (the writer copies them into the snapshot and the log a run at a
 * time).  Data given while the append's run is the transaction's last
 * operation goes into the column and is applied with the append, which
 * is the same as applying it in order; data given after some other
 * operation is a TXN_APPEND_EXT operation of its own, applied in its
 * place. */
struct txn_col {
	uint32_t ext_id;
	uint32_t size;       /* the extension's record size */
	uint32_t cap;        /* appends data and set have room for */
	uint8_t *data;       /* cap × size bytes, by append number */
	uint8_t *set;        /* cap bytes: 1 where data was given */
};

/* Keywords of one append (appends with keywords are rare). */
struct txn_appkw {
	uint32_t append;
	uint32_t nkw, kw;    /* as in struct txn_op */
};

/* A UID range list the writer fills for the result (sorted and merged
 * by txn_rlist_normalize before the commit completes). */
struct txn_rlist {
	struct mix_log_uid_range *r;
	uint32_t count, cap;
};

enum { TXN_PENDING = 0, TXN_DONE = 1, TXN_SLEEPING = 2 };

enum txn_kind {
	TXN_KIND_NORMAL = 0,
	TXN_KIND_CLOSE,      /* index close: drain, checkpoint, detach */
};

struct mix_txn {
	struct mix_intake_node node;
	struct mix_index *index;
	uint32_t kind;
	struct txn_op *ops;
	uint32_t nops, ops_cap;
	struct mix_buf arena;
	uint32_t appends;
	/* the engine's own transaction (mix_txn_engine): it may write the
	 * data of "mix." extensions, which callers may not */
	uint8_t engine;
	uint8_t *app_flags;  /* by append number */
	uint32_t app_cap;
	struct txn_appkw *appkw;  /* sorted by append number */
	uint32_t nappkw, appkw_cap;
	struct txn_col *cols;
	uint32_t ncols;
	enum mix_durability durability;

	/* set by the writer before done */
	int ret;
	struct mix_commit_result result;
	uint32_t ext_id;     /* TXN_EXT_REGISTER result */
	char errmsg[256];
	/* futex word: TXN_PENDING, TXN_SLEEPING (the committer waits in
	 * futex_wait), TXN_DONE.  ORDER(txn-done): the writer's stores above
	 * happen before its release exchange to TXN_DONE; the committer's
	 * acquire loads (and CAS) of done pair with it. */
	uint32_t done;
	mix_commit_fn *cb;
	void *cb_ctx;
	uint64_t enq_ns;     /* when the committer handed it over */
	uint32_t late_exts;  /* TXN_APPEND_EXT operations */
	/* writer-private during apply: next appkw entry to apply; the UID
	 * of each append (only with late_exts) */
	uint32_t appkw_pos;
	uint32_t *append_uids;
	/* MODIFIED set of conditional operations (writer fills it) */
	struct mix_log_uid_range *modified;
	uint32_t modified_count, modified_cap;
	/* committer's opt-ins (mix_txn_want_changed, a conditional
	 * expunge): the writer collects these lists only when set, so a
	 * transaction that did not ask pays nothing */
	uint8_t want_changed;
	uint8_t want_expunged;
	/* writer fills: UIDs whose visible flags or keywords changed, UIDs
	 * expunged (both moved to the caller's result by mix_txn_commit) */
	struct txn_rlist changed;
	struct txn_rlist expunged;
	int failed;
};

static inline void *txn_ptr(const struct mix_txn *t, uint32_t off)
{
	return t->arena.data + off;
}

/* Name i of a keyword list stored as (kw, nkw) in the arena. */
static inline const char *txn_kwname(const struct mix_txn *t, uint32_t kw,
				     uint32_t i)
{
	const uint32_t *offs = txn_ptr(t, kw);
	return (const char *)txn_ptr(t, offs[i]);
}

static inline const char *txn_kw(const struct mix_txn *t,
				 const struct txn_op *op, uint32_t i)
{
	return txn_kwname(t, op->kw, i);
}

void mix_txn_free(struct mix_txn *t);

/* A precondition, checked by the writer when it applies the transaction,
 * atomically with every other commit: size bytes at offset of extension
 * ext_id's header data must equal data then, or the whole transaction
 * fails alone with -EAGAIN and changes nothing.  For layers inside the
 * library that chain their changes (the mailbox list: each change
 * requires the change counter its predecessor set, so a change built on
 * one that failed fails too, instead of landing on a state it was not
 * built for).  Put it first.  Returns 0, MIX_EINVAL, -ENOMEM. */
int mix_txn_ext_hdr_require(struct mix_txn *t, uint32_t ext_id,
			    uint32_t offset, const void *data, size_t size);

/* Mark t as the engine's own: its mix_txn_ext_* calls may write the
 * engine's "mix." extensions (the lost point, index.c). */
static inline void mix_txn_engine(struct mix_txn *t)
{
	t->engine = 1;
}


#endif
