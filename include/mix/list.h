/*
 * mix mailbox list index (docs/mailbox-list.md): one user's mailboxes —
 * hierarchical names, a mailbox id (never reused) and GUID per mailbox,
 * flags, and a STATUS cache — so that LIST, LIST-EXTENDED, LIST-STATUS and
 * STATUS need not open a mailbox.
 *
 * The list is a mix index in its own directory whose records are
 * mailboxes: a record's UID is the mailbox id, and its `mlist` extension
 * holds the parent's id, the LAST name component, the GUID, the stored
 * flags and the STATUS fields (docs/format.md "Mailbox list index").  A
 * rename of a subtree changes one record, so it is atomic by construction.
 *
 * Threads: changes (create, delete, rename, subscribe, special-use, sync,
 * attach/detach) may come from any number of threads at once; each one's
 * checks and its enqueueing are serialized by a list-level mutex and its
 * transaction goes to the list index's writer, so concurrent SYNC changes
 * share one fdatasync.  A change returns once it is published to readers
 * (and durable with MIX_DURABILITY_SYNC).  Changes wait for the writer:
 * never call them inside a read-side section (MIX_EDEADLK), from a commit
 * callback or from a warning callback.
 * Reads (lookup, children, walk, status) take no lock and allocate
 * nothing; each takes a read-side section itself (they nest inside the
 * caller's mix_read_lock()), sees one published state of the list whole
 * (never half a change), and two calls may see two different states.
 *
 * Return conventions as in mix.h.  Name arguments are checked and
 * normalised (mix/mailbox-name.h): "inbox" finds INBOX; a bad name is
 * MIX_EINVAL with the problem and byte position in mix_last_error().
 */
#ifndef MIX_LIST_H
#define MIX_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "mix/mix.h"
#include "mix/mailbox-name.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mix_list;
/* mailbox-name.h declares it; declared here too, for a file that
 * includes mailbox-name.h first (which includes mix.h, which includes
 * this header before mailbox-name.h's own declarations) */
struct mix_mbox_pattern;

/* Longest name component in bytes: a record holds the last component in
 * a fixed field (docs/mailbox-list.md "Limits"). */
#define MIX_LIST_COMPONENT_MAX 255u

/* Flags of a list entry.  Stored: NONEXISTENT, NOSELECT, SUBSCRIBED and
 * the special-use bits.  Derived on every read: CHILDREN / NOCHILDREN,
 * and NOSELECT beside NONEXISTENT (RFC 5258: \NonExistent implies
 * \Noselect). */
enum mix_list_flags {
	/* no mailbox by this name: a hierarchy level kept for its children
	 * (a placeholder), or a subscription to a name that does not exist */
	MIX_LIST_NONEXISTENT = 0x0001,
	/* a name that cannot be selected: a deleted mailbox whose children
	 * remain (RFC 9051 §6.3.4), and every NONEXISTENT name */
	MIX_LIST_NOSELECT    = 0x0002,
	MIX_LIST_SUBSCRIBED  = 0x0004,
	/* derived: has a child that is a mailbox, a \Noselect name or a
	 * level above one (not only nonexistent subscriptions) */
	MIX_LIST_CHILDREN    = 0x0008,
	MIX_LIST_NOCHILDREN  = 0x0010,
	/* LIST walk only: returned for RECURSIVEMATCH (RFC 5258 CHILDINFO):
	 * the entry does not meet the selection, a descendant that does not
	 * match the pattern does */
	MIX_LIST_CHILDINFO   = 0x0020,
	/* RFC 6154 special-use attributes */
	MIX_LIST_ALL         = 0x0100,
	MIX_LIST_ARCHIVE     = 0x0200,
	MIX_LIST_DRAFTS      = 0x0400,
	MIX_LIST_FLAGGED     = 0x0800,
	MIX_LIST_JUNK        = 0x1000,
	MIX_LIST_SENT        = 0x2000,
	MIX_LIST_TRASH       = 0x4000,
};
#define MIX_LIST_SPECIAL_USE 0x7f00u

/* List configuration: always start from mix_list_config_init() (or pass
 * NULL for the defaults), so fields added later in the reserved space get
 * their defaults (docs/api.md "ABI", docs/abi.md). */
struct mix_list_config {
	/* hierarchy separator (mix_mbox_name_sep_check; default '/').  It
	 * is stored in the list index: opening with another one fails with
	 * MIX_EINVAL */
	char separator;
	/* MIX_OPEN_CREATE (default) and/or MIX_OPEN_SALVAGE for the index,
	 * or MIX_OPEN_READONLY: a follower of the writer in another process
	 * (mix_list_refresh), which writes nothing and refuses every
	 * change and mix_list_attach with MIX_EINVAL */
	unsigned open_flags;
	/* durability of every change (default MIX_DURABILITY_SYNC) */
	enum mix_durability durability;
	/* optional: repairs made at open, failed status refreshes */
	mix_warning_fn *warning;
	void *warning_ctx;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[8];
};

/* Fill *cfg with the defaults, every field (those added in later minor
 * versions too: the reserved space is zeroed).  Cannot fail.  Any
 * thread. */
MIX_API void mix_list_config_init(struct mix_list_config *cfg);

/* Open (creating with MIX_OPEN_CREATE) the list index in directory dir
 * (which must exist).  Every record is validated (docs/mailbox-list.md
 * "Recovery"): damage is MIX_ECORRUPT naming the record (mailbox id) and
 * field.  cfg may be NULL for the defaults.  Returns 0; MIX_EINVAL (bad
 * separator, or not the one stored, or MIX_OPEN_RECREATE); MIX_ECORRUPT;
 * MIX_ENOTFOUND (read-only, and no writer has set the list up yet); any
 * error of mix_index_open() or mix_index_ext_register(); -ENOMEM.  Not inside a
 * read-side section. */
MIX_API int mix_list_open(struct mix_engine *engine, const char *dir,
			  const struct mix_list_config *cfg,
			  struct mix_list **list_r);

/* A list opened with MIX_OPEN_READONLY catches up with its writer in
 * another process (mix_index_refresh of the list index, then a new
 * version built and checked from the records, as at open, published
 * whole).  Returns 1 (something changed), 0 (nothing new), MIX_EINVAL
 * (not a read-only list), MIX_ECORRUPT (the new records are damaged: the
 * list keeps its version), any error of mix_index_refresh(), -ENOMEM.
 * One refresh of a list at a time; readers go on meanwhile.  Not inside
 * a read-side section. */
MIX_API int mix_list_refresh(struct mix_list *list);

/* Detach every attached mailbox (as mix_list_detach), close the list
 * index and free list.  Sets *list to NULL.  Returns the first error of
 * those steps (the list is closed either way).  No change may be running
 * on another thread.  Not inside a read-side section. */
MIX_API int mix_list_close(struct mix_list **list);

/* The list's mix index (for mixctl, watchers: IDLE on the list).  Do not
 * commit to it.  Returns it (valid until close); cannot fail.  Any
 * thread. */
MIX_API struct mix_index *mix_list_index(struct mix_list *list);

/* ---- changes ------------------------------------------------------------ */

/* Create mailbox name with guid (16 bytes; NULL = all zero).  Missing
 * parents are created as NONEXISTENT placeholders.  A name that exists
 * only as a placeholder, a \Noselect name or a nonexistent subscription
 * becomes a mailbox with a NEW id (the old record is replaced and its
 * children move to the new id; SUBSCRIBED carries over).  *id_r (may be
 * NULL) gets the id.  Returns 0; MIX_EINVAL (bad name, a component over
 * MIX_LIST_COMPONENT_MAX); -EEXIST (a mailbox by that name exists);
 * MIX_ELIMIT (the list's ids are used up: the last is 2^32 - 2, and a
 * change that may need more than are left is refused whole); any
 * error of mix_txn_commit_async() or of the commit.  Nothing changes on
 * an error. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_create(struct mix_list *list, const char *name,
			    size_t len, const uint8_t *guid, uint32_t *id_r);

/* Delete mailbox name.  With children it stays as a \Noselect name
 * (RFC 9051 §6.3.4); subscribed and childless it stays as a nonexistent
 * subscription; otherwise its record goes, and so do parents left as
 * placeholders with no children.  Returns 0; MIX_EINVAL (bad name;
 * INBOX, which cannot be deleted); MIX_ENOTFOUND (no mailbox by that
 * name, including placeholders and nonexistent subscriptions); -EEXIST
 * (a \Noselect name with children, RFC 9051: deleting it is an error);
 * commit errors. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_delete(struct mix_list *list, const char *name,
			    size_t len);

/* Rename the mailbox or \Noselect name `from` and its whole subtree to
 * `to`, atomically for readers (one record changes).  Missing parents of
 * `to` are created as placeholders; parents of `from` left as childless
 * placeholders go.  The renamed entry keeps its id, GUID, status and
 * SUBSCRIBED.  Renaming INBOX (RFC 9051 §6.3.6) creates mailbox `to`
 * with a new id and new_guid (NULL = zero) and leaves INBOX and its
 * children in place: the caller moves the messages.  *id_r (may be NULL)
 * gets the id of the mailbox now named `to`.  Returns 0; MIX_EINVAL (bad
 * name; `to` inside `from`'s subtree; to INBOX; a mailbox of the subtree
 * would be deeper than MIX_MBOX_NAME_MAX_DEPTH levels or longer than
 * MIX_MBOX_NAME_MAX_LEN bytes under the new name); MIX_ELIMIT (renaming
 * INBOX when the ids are used up); MIX_ENOTFOUND (no
 * mailbox or \Noselect name `from`); -EEXIST (`to` exists, other than as
 * a childless nonexistent subscription, which it replaces); commit
 * errors. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_rename(struct mix_list *list, const char *from,
			    size_t from_len, const char *to, size_t to_len,
			    const uint8_t *new_guid, uint32_t *id_r);

/* Subscribe (on = 1) or unsubscribe (on = 0) name.  Subscribing a name
 * that does not exist creates a NONEXISTENT|SUBSCRIBED record (RFC 9051
 * allows it); unsubscribing one removes it.  Returns 0 (also when
 * nothing changed); MIX_EINVAL (bad name); MIX_ENOTFOUND (unsubscribe of
 * a name that has no record); commit errors. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_subscribe(struct mix_list *list, const char *name,
			       size_t len, int on);

/* Set the special-use attributes (MIX_LIST_SPECIAL_USE bits only) of
 * mailbox name, replacing the old ones.  Returns 0; MIX_EINVAL (bad
 * name or flags); MIX_ENOTFOUND (no mailbox by that name); commit
 * errors. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_set_special_use(struct mix_list *list, const char *name,
				     size_t len, uint32_t special_use);

/* Storage sync (docs/mailbox-list.md "Sync with the storage"): the
 * mailboxes that really exist, one per call of next, all at or below
 * root (NULL or "" = the whole list).  next returns 1 with *name_r,
 * *len_r and *guid_r (NULL: unknown) set, 0 at the end, or a negative
 * error that ends the sync with nothing changed.  In ONE transaction:
 * missing mailboxes are created (with placeholders), placeholders that
 * exist in the storage become mailboxes (new ids), a mailbox whose known
 * GUID differs from a non-zero given one is replaced (new id), and
 * mailboxes at or below root that were not named vanish as
 * mix_list_delete would make them.  result_r (may be NULL) gets the
 * counts.  Returns 0; MIX_EINVAL (bad name, a name outside root); next's
 * error; commit errors.  next runs on the calling thread, before the
 * list's mutex is taken. Any thread, not inside a read-side section, not from a commit
 * callback. */
typedef int mix_list_sync_next_fn(void *ctx, const char **name_r,
				  size_t *len_r, const uint8_t **guid_r);
struct mix_list_sync_result {
	uint32_t seen;       /* names next gave that were already mailboxes */
	uint32_t created;    /* mailboxes created or replaced */
	uint32_t vanished;   /* mailboxes gone from the storage */
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it; filled with 0 by mix */
	uint64_t reserved[4];
};
MIX_API int mix_list_sync(struct mix_list *list, const char *root,
			  size_t root_len, mix_list_sync_next_fn *next,
			  void *ctx, struct mix_list_sync_result *result_r);

/* ---- reads (no lock, no allocation) ------------------------------------- */

struct mix_list_info {
	uint32_t id;         /* mailbox id = the record's UID */
	uint32_t parent;     /* parent's id; 0 at the top level */
	uint32_t flags;      /* enum mix_list_flags, derived ones included */
	uint8_t guid[16];
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it; filled with 0 by mix */
	uint64_t reserved[4];
};

/* Look up name.  Returns 1 and *info_r (may be NULL), 0 when the list
 * has no entry by that name (placeholders and nonexistent subscriptions
 * ARE entries: see flags), MIX_EINVAL for a bad name.  Any thread. */
MIX_API int mix_list_lookup(struct mix_list *list, const char *name,
			    size_t len, struct mix_list_info *info_r);

/* The entry with id: returns 1 and *info_r, or 0.  When buf is not NULL, its
 * full name is written there NUL-terminated (size >= 1001 always
 * suffices; a longer name is cut) and its length to *len_r (may be
 * NULL).  Any thread. */
MIX_API int mix_list_lookup_id(struct mix_list *list, uint32_t id,
			       struct mix_list_info *info_r, char *buf,
			       size_t size, size_t *len_r);

/* One entry as children and walk report it (allocated by mix, passed to
 * the callback).  name is the full name, name_len bytes, NUL-terminated,
 * valid during the callback only. */
struct mix_list_entry {
	const char *name;
	size_t name_len;
	uint32_t id;
	uint32_t parent;
	uint32_t flags;      /* as in mix_list_info, plus CHILDINFO */
	uint32_t depth;      /* 1 at the top level */
	const uint8_t *guid;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it; filled with 0 by mix */
	uint64_t reserved[4];
};
/* Return 0 to go on, anything else to stop (the walk returns it). */
typedef int mix_list_entry_fn(void *ctx, const struct mix_list_entry *e);

/* Call fn for each child of parent_id (0 = the top level) in byte order
 * of their names.  Returns 0, fn's non-zero value, or MIX_ENOTFOUND (no
 * entry parent_id).  fn runs inside a read-side section: it must not
 * wait for a commit.  Any thread. */
MIX_API int mix_list_children(struct mix_list *list, uint32_t parent_id,
			      mix_list_entry_fn *fn, void *ctx);

/* LIST selection options (RFC 5258, RFC 6154). */
enum mix_list_select {
	MIX_LIST_SELECT_SUBSCRIBED  = 0x01,
	MIX_LIST_SELECT_SPECIAL_USE = 0x02,
	MIX_LIST_SELECT_RECURSIVEMATCH = 0x04,
};

/* LIST: call fn for each entry whose name matches pat (compiled with
 * this list's separator), parents before children, siblings in byte
 * order.  Without selection: mailboxes and \Noselect names, and, when
 * the pattern ends in '%', placeholders that match (as NONEXISTENT |
 * NOSELECT: "matching levels of hierarchy", RFC 9051 §6.3.9).  With
 * SUBSCRIBED / SPECIAL-USE: the entries that are subscribed / have a
 * special-use attribute (nonexistent subscriptions included, flagged
 * NONEXISTENT); with RECURSIVEMATCH also entries that do not meet the
 * selection but have a descendant that does and does not match the
 * pattern (flag CHILDINFO).  Subtrees that cannot match are skipped
 * (mix_mbox_name_match_children), and a pattern with a literal first
 * component(s) starts at that entry: `%` at one level costs that level's
 * children.  Returns 0, fn's non-zero value, or MIX_EINVAL (select bits
 * unknown, RECURSIVEMATCH without a selection).  Any thread. */
MIX_API int mix_list_walk(struct mix_list *list,
			  const struct mix_mbox_pattern *pat, unsigned select,
			  mix_list_entry_fn *fn, void *ctx);

/* ---- STATUS cache ------------------------------------------------------- */

enum mix_list_status_flags {
	/* the fields are known (set once computed from the mailbox) */
	MIX_LIST_STATUS_VALID   = 0x01,
	/* the mailbox was attached writable and not cleanly detached (a
	 * crash): the fields may be behind the mailbox; open it and call
	 * mix_list_refresh_status() (or attach) before trusting them */
	MIX_LIST_STATUS_INDOUBT = 0x02,
	/* from an attached mailbox's latest publish */
	MIX_LIST_STATUS_LIVE    = 0x04,
};

struct mix_list_status {
	uint32_t messages, unseen, recent, uidnext, uidvalidity;
	uint64_t highestmodseq;
	uint64_t size;       /* the caller's (mix_list_set_size) */
	uint32_t flags;      /* enum mix_list_status_flags */
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it; filled with 0 by mix */
	uint64_t reserved[4];
};

/* STATUS of mailbox id from the cache: returns 1 and *st_r, 0 if no
 * entry id.
 * Never ahead of what a view of the mailbox can see (docs/mailbox-list.md
 * "Staleness rule").  Any thread. */
MIX_API int mix_list_status(struct mix_list *list, uint32_t id,
			    struct mix_list_status *st_r);

/* Attach the open (writable) mailbox index of id: from now on each of
 * its publishes updates the cached status (an in-memory slot, lock-free
 * to read); the record is marked in doubt durably until a clean detach.
 * The status is computed from the index first.  index must stay open
 * until mix_list_detach() and must not be attached twice (one hook per
 * index).  Returns 0; MIX_ENOTFOUND (no mailbox id); MIX_EINVAL (already
 * attached; the index has another hook); commit errors. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_attach(struct mix_list *list, uint32_t id,
			    struct mix_index *index);

/* Detach mailbox id: stop following its index, make the index's state
 * durable (an empty SYNC commit to a writable index; for a read-only
 * one, an fdatasync of its log files and an fsync of its directory),
 * write the final status to the record and clear the in-doubt mark.
 * Call before closing the index.  Returns 0 (also when not attached);
 * the error that kept the state from being made durable (a poisoned
 * index: MIX_EPANIC; commit and I/O errors), and then the mark stays.
 * Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_detach(struct mix_list *list, uint32_t id);

/* Recompute the status of mailbox id from index (open, attached or not)
 * and persist it; when not attached, makes the index's state durable as
 * mix_list_detach() does and then clears the in-doubt mark (an index
 * opened read-only after its writer died may show what that writer left
 * in the page cache only).  The answer to MIX_LIST_STATUS_INDOUBT.
 * Returns 0; MIX_ENOTFOUND; the error that kept the state from being made
 * durable (the status is persisted with the mark); commit errors. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_refresh_status(struct mix_list *list, uint32_t id,
				    struct mix_index *index);

/* Set the caller's size field of mailbox id (live at once; persisted at
 * the next flush or detach when attached, else now).  Returns 0,
 * MIX_ENOTFOUND, commit errors. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_set_size(struct mix_list *list, uint32_t id,
			      uint64_t size);

/* Persist the live status of every attached mailbox whose status changed
 * since the last persist, in one transaction (the in-doubt marks stay).
 * Coalescing is the caller's choice: e.g. every few seconds.  Returns 0
 * or commit errors. Any thread, not inside a read-side section, not from a commit
 * callback. */
MIX_API int mix_list_flush(struct mix_list *list);

#ifdef __cplusplus
}
#endif

#endif
