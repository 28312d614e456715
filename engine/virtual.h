/*
 * Virtual mailboxes, internal (docs/virtual.md, docs/format.md §5).
 * virtual.c: definition, open/close, the vmap header's encoding and the
 * load of the in-memory map from the virtual index; virtual-sync.c: the
 * incremental sync; virtual-live.c: live mode (a thread syncing after
 * backend publishes, serialized with the caller through v->lock).
 *
 * The in-memory map (per backend: real UID -> virtual UID, sorted by real
 * UID, with the delayed-removal mark) belongs to the thread using the
 * struct mix_virtual.  It is derived from the virtual index, which only
 * mix_virtual_sync writes: after every successful sync the two agree, and
 * after a failed one `loaded` is cleared so the next sync derives it again.
 */
#ifndef MIX_VIRTUAL_INT_H
#define MIX_VIRTUAL_INT_H

#include <pthread.h>
#include <stdint.h>

#include "mix/mix.h"
#include "mix/virtual.h"
#include "vrule.h"

#define MIX_VIRTUAL_EXT      "vmap"
#define MIX_VIRTUAL_HDR_SIZE 16384u
#define MIX_VIRTUAL_MAGIC    0x31545256u  /* "VRT1" little-endian */
#define MIX_VIRTUAL_VERSION  1u
#define MIX_VIRTUAL_HDR_FIXED 32u
#define MIX_VIRTUAL_HDR_ENTRY 40u
#define MIX_VIRTUAL_NAME_MAX 255u

/* The flags a virtual record mirrors from its backend message. */
#define MIX_VIRTUAL_MIRROR_FLAGS ((uint8_t)(MIX_FLAG_ANSWERED | \
	MIX_FLAG_FLAGGED | MIX_FLAG_DELETED | MIX_FLAG_SEEN | MIX_FLAG_DRAFT))

struct vmap_rec {            /* the vmap record extension (format.md §5.1) */
	uint32_t mailbox_id;
	uint32_t real_uid;
};

struct ventry {
	uint32_t ruid;
	uint32_t vuid;           /* 0: removed in this sync */
	uint8_t nomatch;         /* kept for delayed removal */
};

struct vbackend {
	uint32_t id;             /* mailbox id; 0 until given one */
	char *name;
	struct mix_index *index; /* borrowed; NULL: unavailable */
	int in_def;              /* listed in the current definition */
	/* the state of the last sync (all 0: never synced) */
	uint32_t uid_validity, next_uid;
	uint64_t highest_modseq;
	uint8_t guid[16];
	struct ventry *e;
	uint32_t count, cap;
	uint32_t pending;        /* entries with nomatch set */
	int compact;             /* some entry's vuid was set to 0 */
};

struct mix_virtual {
	struct mix_index *index;
	char *dir;
	uint32_t ext_id;
	struct mix_vrule *rule;
	uint32_t rule_crc;
	char *received_ext;
	char *save_target;       /* backend name for appends, or NULL */
	mix_warning_fn *warning;
	void *warning_ctx;
	uint64_t (*now)(void *ctx);
	void *now_ctx;

	/* the definition's backends (names owned here) */
	struct mix_virtual_backend *def;
	uint32_t def_count;

	/* in-memory map, valid when loaded; cleared after a failed sync
	 * and after one that must recover delayed-removal marks again, so
	 * it does not say whether a sync ever succeeded */
	int loaded;
	/* a sync succeeded since open (under lock): the virtual index's
	 * newest snapshot has a vmap header of this definition, which
	 * mix_virtual_store maps virtual UIDs by; never cleared */
	int synced;
	struct vbackend *bk;
	uint32_t bk_count, bk_cap;
	uint32_t change_counter;
	uint32_t highest_mailbox_id;

	/* Serializes sync, set_backends and mailbox_id between the caller
	 * and the live thread (virtual-live.c). */
	pthread_mutex_t lock;
	struct vlive *live;      /* live mode; NULL when off */
};

/* The sync itself, with v->lock held (virtual-sync.c). */
int mix_virtual_sync_locked(struct mix_virtual *v, unsigned flags,
			    struct mix_virtual_sync_result *result_r);

/* Warning through the definition's callback (printf format). */
void mix_virtual_warn(struct mix_virtual *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Encode the header of v's current backend list into buf
 * (MIX_VIRTUAL_HDR_SIZE bytes); *used_r.  MIX_ELIMIT if it does not fit. */
int mix_virtual_hdr_encode(const struct mix_virtual *v, uint8_t *buf,
			   uint32_t *used_r);

/* Derive the in-memory map from the virtual index's newest snapshot.
 * Returns 0 (loaded), 1 (the rule changed: rebuild everything) or 2 (the
 * header or vmap is damaged: warned; rebuild everything), -ENOMEM.  For 1
 * and 2 the backend list is empty and highest_mailbox_id kept as high as
 * anything seen. */
int mix_virtual_load(struct mix_virtual *v);

/* The guid the vmap header records for a backend snapshot s: mix has no
 * GUID, so its indexid (format.md §2.1), which changes when the index is
 * re-created, zero-padded to 16 bytes. */
void mix_virtual_snap_guid(const struct mix_snap *s, uint8_t guid[16]);

/* The entry of backend mailbox_id in the vmap header of snap (a virtual
 * index's snapshot; inside its read-side section): 1 with *state_r and
 * guid_r (may be NULL), 0 if snap has no valid header or no such
 * backend. */
int mix_virtual_snap_entry(const struct mix_snap *snap, uint32_t mailbox_id,
			   struct mix_virtual_backend_state *state_r,
			   uint8_t guid_r[16]);

/* The backend of mailbox id, or NULL. */
struct vbackend *mix_virtual_bk_find(struct mix_virtual *v, uint32_t id);
/* Add a backend entry (sorted by id); returns it or NULL (-ENOMEM). */
struct vbackend *mix_virtual_bk_add(struct mix_virtual *v, uint32_t id,
				    const char *name, size_t name_len);
void mix_virtual_bk_clear(struct vbackend *b);
void mix_virtual_bk_remove(struct mix_virtual *v, uint32_t i);
/* Index of ruid in b->e (binary search): 1 and *pos_r if found, 0 and
 * the insert position otherwise. */
int mix_virtual_bk_lookup(const struct vbackend *b, uint32_t ruid,
			  uint32_t *pos_r);
int mix_virtual_bk_push(struct vbackend *b, uint32_t ruid, uint32_t vuid);
/* Sort b->e by ruid after pushes. */
void mix_virtual_bk_sort(struct vbackend *b);

/* ---- the vmap checker (virtual-check.c; format.md §5) ---- */

/* One problem: off is the byte offset in the vmap header, or -1 for a
 * record (msg names the virtual UID); field names the §5 field. */
typedef void mix_vcheck_report_fn(void *ctx, long long off,
				  const char *field, const char *msg);

struct vcheck_ent {
	uint32_t id, next_uid;
};

struct vcheck_pair {
	uint32_t mailbox_id, real_uid, vuid;
};

struct mix_vcheck {
	mix_vcheck_report_fn *report;
	void *ctx;
	unsigned problems;       /* every problem, reported or not */
	unsigned rec_problems;
	int hdr_ok;              /* the header is sound: records checked
				    against its entries */
	struct vcheck_ent *ent;  /* ascending ids when hdr_ok */
	uint32_t count;
	struct vcheck_pair *pairs;
	uint32_t npairs, cap;
};

void mix_vcheck_init(struct mix_vcheck *c, mix_vcheck_report_fn *fn,
		     void *ctx);
/* Check the header data (size bytes; NULL or all zeros: never synced,
 * damage only if messages > 0).  0 or -ENOMEM; problems are counted. */
int mix_vcheck_hdr(struct mix_vcheck *c, const uint8_t *h, size_t size,
		   uint32_t messages);
/* Check one record's vmap data (NULL: missing).  0 or -ENOMEM. */
int mix_vcheck_rec(struct mix_vcheck *c, uint32_t vuid, const void *data,
		   size_t size);
/* After every record: duplicate (mailbox_id, real_uid) pairs. */
void mix_vcheck_finish(struct mix_vcheck *c);
void mix_vcheck_free(struct mix_vcheck *c);
/* The whole check of snap (the caller holds the read lock): 0 if snap has
 * no vmap extension, 1 checked (*problems_r), -ENOMEM. */
int mix_virtual_check_snap(const struct mix_snap *snap,
			   mix_vcheck_report_fn *fn, void *ctx,
			   unsigned *problems_r);

/* The load's header decoder (virtual.c), for the fuzz target's
 * comparison with the checker: 0, -1 (damage: why), -ENOMEM. */
int mix_virtual_hdr_decode(struct mix_virtual *v, const uint8_t *h,
			   size_t size, char *why, size_t why_size);
/* Free v's backend list (after mix_virtual_hdr_decode). */
void mix_virtual_bk_free_all(struct mix_virtual *v);

#endif
