/*
 * mix virtual mailboxes (docs/virtual.md): the messages of several backend
 * indexes that match a rule in IMAP SEARCH syntax, shown as one mix index
 * with its own UIDVALIDITY, UIDs and modseqs.
 *
 * The virtual mailbox is a mix index (in its own directory) whose records
 * carry the `vmap` extension (mailbox_id, real_uid) and mirror the flags
 * and keywords of the backend message; the extension header lists the
 * backends with the (uid_validity, next_uid, highest_modseq, guid) each was
 * last synced at (docs/format.md §5).  mix_virtual_sync() brings it up to
 * date in ONE transaction, so a reader of the virtual index sees each
 * remap whole: the map, the mirrored flags and the backend modseqs it was
 * built from are published together.
 *
 * Threads: a struct mix_virtual is used by one thread at a time (open,
 * sync, set_backends, close; there is one per directory and process:
 * a second mix_virtual_open of it is refused), besides its own live thread when live mode
 * is on (mix_virtual_live_start); any thread may read the virtual index
 * (mix_virtual_index() with mix_read_lock or a view) at the same time.
 * Return conventions as in mix.h.
 */
#ifndef MIX_VIRTUAL_H
#define MIX_VIRTUAL_H

#include "mix/mix.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mix_virtual;

/* One backend (an array element, so fixed: it never grows).  An index
 * that is a virtual mailbox (it has the `vmap` extension), this one or
 * another, cannot be a backend: MIX_EINVAL.  name
 * (1..255 bytes, unique in the definition) identifies
 * it across syncs and opens: the virtual mailbox gives each new name a
 * mailbox id that is never reused (highest_mailbox_id in the header).
 * index is borrowed: it must stay open until the backend list is replaced
 * or the virtual mailbox closed.  NULL: the backend cannot be opened now;
 * it is reported (warning) and skipped, its messages stay as they were. */
struct mix_virtual_backend {
	const char *name;
	struct mix_index *index;
};

struct mix_virtual_def {
	const struct mix_virtual_backend *backends;
	uint32_t backend_count;
	/* IMAP SEARCH keys (docs/virtual.md "Rule syntax") */
	const char *rule;
	/* name of the backends' record extension holding the received date
	 * (u64, seconds since the epoch); NULL = "received".  A backend
	 * without it has received date 0 for every message. */
	const char *received_ext;
	/* optional: damage found and rebuilt, backends skipped */
	mix_warning_fn *warning;
	void *warning_ctx;
	/* optional: the clock for YOUNGER/OLDER (seconds since the epoch);
	 * NULL = time() */
	uint64_t (*now)(void *ctx);
	void *now_ctx;
	/* optional: the name of the backend that appends to the virtual
	 * mailbox go to (mix_virtual_save_target); NULL = appends are
	 * refused */
	const char *save_target;
	/* room for fields added later (docs/api.md "ABI of the public
	 * structs"): zero-initialize the struct (= { 0 }); never set it */
	uint64_t reserved[4];
};

/* Open (creating if needed) the virtual mailbox index in directory dir
 * (which must exist) and check def (the rule is parsed here).  Nothing is
 * synced yet: call mix_virtual_sync().  def and the strings in it are
 * copied; the backend indexes are borrowed.  Returns 0; MIX_EINVAL (bad
 * rule: the message names the byte position; bad or duplicate backend
 * name; backends NULL with a count; a backend that is a virtual mailbox,
 * this one included; dir holds an index with messages
 * but no `vmap` extension: "not a virtual index", left untouched);
 * MIX_ELOCKED (a struct mix_virtual of this process has dir open: one
 * open per directory and process, which the sessions showing it share;
 * it opens again after mix_virtual_close); any error of mix_index_open() or mix_index_ext_register() (an index whose
 * `vmap` extension has another layout: MIX_EINVAL).  Not inside a
 * read-side section. */
MIX_API int mix_virtual_open(struct mix_engine *engine, const char *dir,
			     const struct mix_virtual_def *def,
			     struct mix_virtual **v_r);

/* Close the virtual index and free v (the backends stay open).  Sets *v
 * to NULL.  Returns what mix_index_close() returns.  Not inside a
 * read-side section. */
MIX_API int mix_virtual_close(struct mix_virtual **v);

/* Returns the virtual index, for reading (snapshots, views, watchers):
 * owned by v, valid until mix_virtual_close.  Do not commit to it: only
 * mix_virtual_sync() writes it.  Any thread; cannot fail. */
MIX_API struct mix_index *mix_virtual_index(struct mix_virtual *v);

/* Replace the backend list (same rules as in the definition).  Takes
 * effect at the next sync: backends no longer listed drop their messages
 * then, new names get new mailbox ids.  Returns 0, MIX_EINVAL (a bad
 * backend entry: NULL array with a count, bad or duplicate name, a
 * virtual mailbox; or live mode is on), -ENOMEM; on error the list is as
 * before.  The thread using v, any context. */
MIX_API int mix_virtual_set_backends(struct mix_virtual *v,
				     const struct mix_virtual_backend *b,
				     uint32_t count);

enum mix_virtual_sync_flags {
	/* remove messages that no longer match the rule (IMAP: only when
	 * expunges may be sent, docs/virtual.md "Delayed removal") */
	MIX_VIRTUAL_SYNC_EXPUNGE = 0x01,
};

struct mix_virtual_sync_result {
	/* backends skipped because (uid_validity, next_uid,
	 * highest_modseq) had not changed: no record of them was read */
	uint32_t backends_skipped;
	/* backends whose part was built from scratch (first sync, changed
	 * uid_validity or guid, rebuilt virtual mailbox) */
	uint32_t backends_rebuilt;
	/* backends no longer in the definition whose messages were dropped */
	uint32_t backends_dropped;
	/* backends with a NULL index (reported, skipped) */
	uint32_t backends_unavailable;
	/* backend records this sync read to evaluate the rule */
	uint64_t examined;
	/* backend records read to recover the match state of messages
	 * already in the virtual mailbox, once after open or rebuild */
	uint64_t loaded;
	/* virtual messages added, expunged, with flags/keywords updated */
	uint32_t added, expunged, updated;
	/* messages that no longer match but stay until a sync with
	 * MIX_VIRTUAL_SYNC_EXPUNGE */
	uint32_t pending_removal;
	/* the whole virtual mailbox was rebuilt: 1 the rule (or received
	 * extension name) changed, 2 its header or vmap data was damaged
	 * (also reported through the warning callback) */
	int rebuilt;
	/* modseq of the sync's transaction on the virtual index; 0 if
	 * nothing needed writing */
	uint64_t modseq;
	/* room for fields added later; filled with 0 by mix */
	uint64_t reserved[4];
};

/* Bring the virtual mailbox up to date with its backends in one
 * transaction (docs/virtual.md "Sync").  flags: enum
 * mix_virtual_sync_flags.  result_r may be NULL.  Returns 0; MIX_ELIMIT
 * (the backend list does not fit the header, or the virtual index ran out
 * of keywords or UIDs); any error of mix_txn_commit(); -ENOMEM.  After an
 * error nothing of the sync is visible, and the next sync starts again
 * from what the virtual index holds.  Not inside a read-side section. */
MIX_API int mix_virtual_sync(struct mix_virtual *v, unsigned flags,
			     struct mix_virtual_sync_result *result_r);

/* The mailbox id the virtual mailbox gave backend name.  Returns 1 and
 * *id_r, or 0 if name has none yet (before its first sync).  The thread
 * using v (serialized with the live thread). */
MIX_API int mix_virtual_mailbox_id(struct mix_virtual *v, const char *name,
				   uint32_t *id_r);

/* Map a virtual UID of snap (a snapshot of mix_virtual_index()) to its
 * backend message.  Returns 1 and sets *mailbox_id_r, *real_uid_r; 0 if
 * vuid is not in snap (or snap has no vmap data).  Inside the read-side
 * section that got snap, or on a view's snapshot. */
MIX_API int mix_virtual_lookup(const struct mix_snap *snap, uint32_t vuid,
			       uint32_t *mailbox_id_r, uint32_t *real_uid_r);

/* The reverse map: the virtual UID of backend message (mailbox_id,
 * real_uid) in snap.  Derived from the same snapshot's vmap records, so it
 * agrees with mix_virtual_lookup() on snap by construction: both read one
 * immutable, atomically published state.  Lock-free; costs a scan of
 * snap's records (docs/virtual.md "Atomic remap": 56-60 us at 300,000
 * virtual messages).  Returns 1 and *vuid_r, or 0 if the message is not in snap.
 * Inside the read-side section that got snap, or on a view's snapshot. */
MIX_API int mix_virtual_lookup_real(const struct mix_snap *snap,
				    uint32_t mailbox_id, uint32_t real_uid,
				    uint32_t *vuid_r);

/* The reverse map for many real UIDs of one backend in one scan of snap:
 * vuids_r[i] = the virtual UID of (mailbox_id, real_uids[i]), 0 if that
 * message is not in snap.  real_uids need not be sorted.  Returns how
 * many were found, or -ENOMEM.  Costs one scan plus O(n log n): use it
 * when a backend change concerns many messages (a backend EXPUNGE fanned
 * out to sessions of the virtual mailbox).  Inside the read-side
 * section that got snap, or on a view's snapshot. */
MIX_API int mix_virtual_lookup_real_many(const struct mix_snap *snap,
					 uint32_t mailbox_id,
					 const uint32_t *real_uids, uint32_t n,
					 uint32_t *vuids_r);

/* The state of one backend that snap's map was built from (the vmap
 * header of the same snapshot, docs/format.md §5.2). */
struct mix_virtual_backend_state {
	uint32_t uid_validity;
	uint32_t next_uid;
	uint64_t highest_modseq;
	/* room for fields added later; filled with 0 by mix */
	uint64_t reserved[2];
};

/* The state backend mailbox_id was last synced at, as recorded in snap.
 * Returns 1 and *state_r; 0 if snap has no valid vmap header or no such
 * backend.  Inside the read-side section that got snap, or on a view's
 * snapshot. */
MIX_API int mix_virtual_snap_backend(const struct mix_snap *snap,
				     uint32_t mailbox_id,
				     struct mix_virtual_backend_state *state_r);

/* Writes through the virtual mailbox (docs/virtual.md "Writes
 * through"). */
enum mix_virtual_store_op {
	MIX_VIRTUAL_STORE_FLAGS = 1,     /* modify, flags */
	MIX_VIRTUAL_STORE_KEYWORDS,      /* modify, keywords */
	/* expunge the messages, whatever their flags */
	MIX_VIRTUAL_STORE_EXPUNGE,
	/* IMAP EXPUNGE / UID EXPUNGE through the virtual mailbox: each
	 * backend's part is mix_txn_expunge_deleted() on its real UIDs, so
	 * its writer expunges only the messages that have \Deleted when
	 * it applies the transaction (one whose \Deleted another session
	 * cleared stays); what IMAP EXPUNGE should use */
	MIX_VIRTUAL_STORE_EXPUNGE_DELETED,
};

struct mix_virtual_store {
	enum mix_virtual_store_op op;
	enum mix_modify modify;
	uint8_t flags;
	const char *const *keywords;     /* NULL-terminated */
	/* CONDSTORE UNCHANGEDSINCE on virtual modseqs; 0 = unconditional
	 * (ignored for both expunge ops) */
	uint64_t unchangedsince;
	/* room for fields added later: zero-initialize; never set it */
	uint64_t reserved[2];
};

struct mix_virtual_store_result {
	/* virtual UIDs left unchanged by UNCHANGEDSINCE (RFC 7162
	 * MODIFIED), sorted ranges; free with mix_virtual_store_result_free */
	struct mix_uid_range *modified;
	uint32_t modified_count;
	/* backend transactions committed */
	uint32_t backends;
	/* virtual messages of backends not open, no longer in the
	 * definition, or re-created since the sync the virtual snapshot
	 * records (another UIDVALIDITY or guid: its real UIDs would name
	 * other messages): left unchanged */
	uint32_t unavailable;
	/* room for fields added later; filled with 0 by mix */
	uint64_t reserved[4];
};

/* Apply st to the virtual UIDs in ranges (of the newest snapshot; UIDs
 * not in it are ignored): split by backend, each backend's part committed
 * to the backend in one transaction of its own (a store over several
 * backends is not atomic as a whole).  The changes reach the virtual
 * mailbox at the next sync (or at once in live mode).  With
 * unchangedsince, a message is MODIFIED if its virtual modseq is above it
 * or its backend message changed after the state the virtual mailbox
 * mirrors (the backend's writer checks it atomically); unchangedsince
 * below the virtual index's lost point (mix_snap_lost_modseq) makes
 * every message MODIFIED and stores nothing.  Returns 0 and *res (free
 * it); MIX_EINVAL (bad op, no successful sync since open); any error of
 * a backend's mix_txn_commit() (backends before it are committed);
 * -ENOMEM.  Not inside a read-side section. */
MIX_API int mix_virtual_store(struct mix_virtual *v,
			      const struct mix_uid_range *ranges,
			      uint32_t count,
			      const struct mix_virtual_store *st,
			      struct mix_virtual_store_result *res);
MIX_API void mix_virtual_store_result_free(struct mix_virtual_store_result *r);

/* Appends: the backend index an append to the virtual mailbox goes to
 * (def.save_target); the caller appends there in its own transaction and
 * the message appears in the virtual mailbox at the next sync if it
 * matches the rule.  Returns 0 and *index_r; MIX_EINVAL with a message
 * saying why (no save target: appends are refused; the target is not a
 * backend of the definition, or not open).  The thread using v; the
 * index is v's backend, owned by its opener. */
MIX_API int mix_virtual_save_target(struct mix_virtual *v,
				    struct mix_index **index_r);

/* Live mode (docs/virtual.md "Live mode"): start a thread that watches
 * every open backend of the definition (mix_watch_open) and runs
 * mix_virtual_sync(v, flags) after any of them publishes, so the virtual
 * mailbox is current within one batch of any backend commit and watchers
 * of the virtual index (IDLE) fire with no caller polling.  flags as for
 * mix_virtual_sync (IMAP: 0, and a sync with MIX_VIRTUAL_SYNC_EXPUNGE
 * from the caller where expunges may be sent).  While live: the backends
 * must stay open, mix_virtual_set_backends is refused (MIX_EINVAL), and
 * the caller's mix_virtual_sync and mix_virtual_mailbox_id are
 * serialized with the live thread's syncs.  A failed live sync goes to
 * the warning callback and is retried at the next publish.  Returns 0;
 * MIX_EINVAL (live already); -errno.  Not inside a read-side section. */
MIX_API int mix_virtual_live_start(struct mix_virtual *v, unsigned flags);

/* Stop live mode and wait for its thread (mix_virtual_close does it
 * too).  Returns 0, also when live mode is off.  Not inside a read-side
 * section, not from the warning callback. */
MIX_API int mix_virtual_live_stop(struct mix_virtual *v);

/* Returns the syncs the live thread has run since it started (0 when
 * off).  Any thread; cannot fail. */
MIX_API uint64_t mix_virtual_live_syncs(struct mix_virtual *v);

/* ---- backends by name pattern (docs/virtual.md) ---------------------- */

struct mix_list;

/* One mailbox a pattern matched (an array element: fixed). */
struct mix_virtual_match {
	char *name;          /* its name, normalised (INBOX); malloc'd */
	uint32_t list_id;    /* its mailbox id in the list: a rename keeps it */
	char id_name[12];    /* "#<list_id>": a backend name that a rename
			      * keeps, so the virtual UIDs stay */
};

/* The selectable mailboxes of list (not \Noselect, not nonexistent)
 * whose names match one of the LIST patterns (`*`, `%`, compiled with the
 * list's separator) and none of the exclusion patterns, written with a
 * leading '-' ("-Trash", "-Archive/%"), on one version of the list.
 * Sorted by name, each once.  Resolve again after the list changed (a
 * create, delete or rename) and pass the result to
 * mix_virtual_set_backends().  Returns 0 with *matches_r (free with
 * mix_virtual_matches_free; NULL when none) and *count_r; MIX_EINVAL (no
 * list, a NULL or invalid pattern: the message names it), MIX_EDEADLK
 * (inside a read-side section), -ENOMEM; on error nothing is allocated.
 * Any thread, not inside a read-side section. */
MIX_API int mix_virtual_resolve(struct mix_list *list,
				const char *const *patterns, uint32_t count,
				struct mix_virtual_match **matches_r,
				uint32_t *count_r);

/* Free what mix_virtual_resolve returned.  Any thread; cannot fail. */
MIX_API void mix_virtual_matches_free(struct mix_virtual_match *m,
				      uint32_t count);

#ifdef __cplusplus
}
#endif

#endif
