/*
 * Mailbox list index, internal (docs/mailbox-list.md, docs/format.md
 * "Mailbox list index").
 *
 * mlist-ver.c: the derived, immutable state readers use (a "version"):
 *   entries by (parent id, last component) and by id in two linear-probing
 *   hash tables cut in pages of 512 slots, children arrays sorted by name.
 *   Every object (entry, children array, page) is immutable once its
 *   version is committed; a new version copies the two page directories
 *   and copies on write only the pages, entries and arrays it changes.
 * mlist.c: open, close, the record codec, validation and (re)load of a
 *   version from the index's records, the change pipeline (begin under
 *   list->wlock, commit_async, publish from the commit callback, wait).
 * mlist-ops.c: create, delete, rename, subscribe, special-use, sync.
 * mlist-read.c: lookup, children, the LIST walk.
 * mlist-status.c: the STATUS cache (attach, the publish hook, detach).
 *
 * Object lifetime: each object is in the `created` list of the version it
 * was born in (its gen) and, once replaced, in the `garbage` list of the
 * version that replaced it.  Publishing version n retires every older
 * version: after a grace period their structs and the garbage lists of
 * the versions up to n are freed (nothing in them is reachable from n).
 * A version never published (its commit failed, or close) frees its
 * `created` list instead.
 */
#ifndef MIX_MLIST_H
#define MIX_MLIST_H

#include <pthread.h>
#include <stdint.h>

#include "mix/list.h"
#include "rcu.h"

#define MLIST_EXT       "mlist"
#define MLIST_MAGIC     0x3154534cu   /* "LST1" little-endian */
#define MLIST_VERSION   1u
#define MLIST_HDR_SIZE  16u
#define MLIST_HDR_CTR   12u           /* offset of the change counter */
#define MLIST_REC_SIZE  328u
#define MLIST_REC_NAME  66u           /* offset of the name bytes */

/* Stored flags (format.md): the public bits that may be in a record. */
#define MLIST_STORED_FLAGS (MIX_LIST_NONEXISTENT | MIX_LIST_NOSELECT | \
			    MIX_LIST_SUBSCRIBED | MIX_LIST_SPECIAL_USE)
/* status_flags in a record: VALID and INDOUBT only */
#define MLIST_STORED_SFLAGS (MIX_LIST_STATUS_VALID | MIX_LIST_STATUS_INDOUBT)

#define MLP_BITS 9u
#define MLP_SLOTS (1u << MLP_BITS)

struct mlstat {
	uint32_t messages, unseen, recent, uidnext, uidvalidity;
	uint32_t sflags;
	uint64_t highestmodseq, size;
};

struct mlkids {
	uint64_t gen;
	uint32_t n;
	uint32_t ids[];
};

struct mlent {
	uint64_t gen;
	uint32_t id, parent;
	uint32_t flags;          /* stored flags */
	uint32_t hash;           /* mlist_hash(parent, name) */
	uint8_t guid[16];
	struct mlstat st;
	const struct mlkids *kids;   /* NULL: none */
	uint16_t len;
	char name[];             /* last component, NUL-terminated */
};

struct mlpage {
	uint64_t gen;
	/* the top 16 bits of each slot's hash (home), so a probe loads only
	 * the entries whose tag matches */
	uint16_t tag[MLP_SLOTS];
	const struct mlent *s[MLP_SLOTS];
};

struct mlvec {
	void **p;
	uint32_t n, cap;
};

struct mlver {
	uint64_t gen;
	uint32_t count;          /* entries */
	uint32_t bits;           /* each table has 2^bits slots */
	struct mlpage **byname, **byid;
	const struct mlkids *top;
	uint32_t next_id;        /* the id the next insert gets (UID) */
	/* builder-only */
	struct mlver *next;      /* the version built after this one */
	struct mlvec created, garbage;
	struct mlvec *dead;      /* retire: freed with the struct */
	struct mix_rcu_head rcu;
};

/* ---- mlist-ver.c ------------------------------------------------------ */

uint32_t mlist_hash(uint32_t parent, const char *name, size_t len);
/* An empty version of generation gen with room for expect entries. */
struct mlver *mlist_ver_empty(uint32_t next_id, uint32_t expect, uint64_t gen);
/* A new version from v, with room for `extra` more entries.  NULL on
 * -ENOMEM. */
struct mlver *mlist_ver_begin(struct mlver *v, uint32_t extra);
/* Drop a version never committed: its created objects and itself. */
void mlist_ver_abort(struct mlver *nv);
/* Free a version never published (after its commit failed): created
 * objects and the struct (not its garbage: those live in older ones). */
void mlist_ver_free_unpublished(struct mlver *v);
/* Free everything reachable from v and v itself (no reader may hold
 * it). */
void mlist_ver_free_all(struct mlver *v);

const struct mlent *mlist_find(const struct mlver *v, uint32_t parent,
			       const char *name, size_t len);
const struct mlent *mlist_find_id(const struct mlver *v, uint32_t id);
/* Children of id (0: top), or NULL when none. */
const struct mlkids *mlist_kids(const struct mlver *v, uint32_t id);

/* Builder: insert a new entry (its id = nv->next_id++); returns it
 * (mutable in nv) or NULL (-ENOMEM).  Adds it to its parent's children. */
struct mlent *mlist_insert(struct mlver *nv, uint32_t parent,
			   const char *name, size_t len, uint32_t flags,
			   const uint8_t *guid);
/* Builder: a mutable copy of entry id in nv (same key), or NULL. */
struct mlent *mlist_mut(struct mlver *nv, uint32_t id);
/* Builder: give entry id a new parent and/or name (its subtree follows:
 * children refer to it by id).  0 or -ENOMEM. */
int mlist_move(struct mlver *nv, uint32_t id, uint32_t parent,
	       const char *name, size_t len);
/* Builder: remove entry id (it must have no children).  0 or -ENOMEM. */
int mlist_remove(struct mlver *nv, uint32_t id);
/* Builder: move every child of `from` under `to` (same names). */
int mlist_adopt(struct mlver *nv, uint32_t from, uint32_t to);
/* Builder, for a load: insert an entry with a given id (ids ascending),
 * without linking it to its parent; mlist_link_all() links everything
 * afterwards.  Returns the entry, NULL (-ENOMEM) or sets *dup_r to the
 * entry with the same (parent, name). */
struct mlent *mlist_load_insert(struct mlver *nv, uint32_t id,
				uint32_t parent, const char *name, size_t len,
				const struct mlent **dup_r);
int mlist_link_all(struct mlver *nv);

/* Derived flags of e in v: stored | CHILDREN or NOCHILDREN | NOSELECT
 * with NONEXISTENT. */
uint32_t mlist_flags(const struct mlver *v, const struct mlent *e);
/* Has e a child that is not a childless nonexistent subscription? */
int mlist_has_children(const struct mlver *v, const struct mlent *e);

/* Full name of e into buf (size >= MIX_MBOX_NAME_MAX_LEN + 1); returns
 * its length, or -1 if the chain is broken or too long. */
int mlist_fullname(const struct mlver *v, const struct mlent *e, char sep,
		   char *buf, size_t size);

/* ---- mlist.c ---------------------------------------------------------- */

struct mlatt;

/* Attached mailboxes, published by RCU, sorted by id. */
struct mlatt_set {
	uint32_t n;
	struct mix_rcu_head rcu;
	struct mlatt *a[];
};

struct mix_list {
	struct mix_engine *engine;
	struct mix_index *index;
	char *dir;
	uint32_t ext_id;
	char sep;
	/* opened with MIX_OPEN_READONLY: a follower of a writer in another
	 * process (mix_list_refresh); every change is refused */
	int readonly;
	/* read-only: the last reload failed (damaged records), so the
	 * index is ahead of the published version; under wlock */
	int ro_behind;
	enum mix_durability durability;
	mix_warning_fn *warning;
	void *warning_ctx;

	/* ORDER(mlist-publish): the newest published version; stored with
	 * MIX_RCU_PUBLISH under pub_lock (commit callback, open, reload)
	 * once complete; read with MIX_RCU_DEREF in read-side sections. */
	struct mlver *pub;
	pthread_mutex_t pub_lock;

	/* writer side: checks and enqueueing, one change at a time */
	pthread_mutex_t wlock;
	struct mlver *wver;      /* the newest version built (wlock) */
	/* the change counter (format.md §6.1, header offset 12) the next
	 * change requires and moves on by one (wlock): a change built on
	 * one that failed fails too (-EAGAIN), see op_encode */
	uint32_t wctr;
	/* a commit failed (atomic): the versions built after the published
	 * one are wrong; the next change reloads from the records */
	int broken;
	/* commits enqueued and not completed (atomic); done_lock/cond wake
	 * waiters of a change and of a reload */
	uint32_t pending;
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;

	/* the STATUS cache (mlist-status.c): att published by RCU
	 * (ORDER(mlist-att)), changed under att_lock */
	struct mlatt_set *att;
	pthread_mutex_t att_lock;
};

/* One change being built (mlist.c / mlist-ops.c). */
struct mlop {
	struct mix_list *list;
	struct mlver *nv;
	uint32_t first_id;       /* nv->next_id when the change began */
	uint32_t *touched;       /* ids whose record must be written */
	uint32_t ntouched, cap;
	enum mix_durability dur; /* list->durability unless changed */
	/* completion (done_lock) */
	int done, ret;
	struct mix_commit_result res;
};

void mlist_warn(struct mix_list *list, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Begin a change: takes wlock, reloads a broken list, starts nv with
 * room for extra entries.  On error wlock is released. */
int mlist_op_begin(struct mix_list *list, struct mlop *op, uint32_t extra);
/* Note that record id must be written by this change. */
int mlist_op_touch(struct mlop *op, uint32_t id);
/* Cancel (wlock released, nv dropped). */
void mlist_op_abort(struct mlop *op);
/* Encode the touched records into one transaction, enqueue it, release
 * wlock and wait until it is published.  Returns the commit's result. */
int mlist_op_commit(struct mlop *op);

/* Normalise and check a name argument into buf (MIX_MBOX_NAME_MAX_LEN +
 * 1 bytes) and split it; components over MIX_LIST_COMPONENT_MAX are
 * MIX_EINVAL. */
int mlist_name_prepare(const struct mix_list *list, const char *name,
		       size_t len, char *buf, struct mix_mbox_name_component *c,
		       uint32_t *n_r);
/* The entry named by the components, or NULL (*depth_r: how many
 * components were found). */
const struct mlent *mlist_resolve(const struct mlver *v, const char *buf,
				  const struct mix_mbox_name_component *c,
				  uint32_t n, uint32_t *depth_r);

/* ---- mlist-status.c --------------------------------------------------- */

/* The live status of id if attached: 1 and *st_r, else 0.  Inside a
 * read-side section. */
int mlist_att_status(struct mix_list *list, uint32_t id,
		     struct mlstat *st_r);
/* Close: detach everything. */
int mlist_att_close(struct mix_list *list);
void mlist_att_free_set(struct mix_list *list);

#endif
