/*
 * Virtual mailboxes: the definition, open and close, the vmap extension
 * header (docs/format.md §5) and the in-memory map derived from the
 * virtual index (docs/virtual.md).  The sync is in virtual-sync.c.
 *
 * Thread: one thread at a time uses a struct mix_virtual (mix/virtual.h);
 * readers of the virtual index never touch it.  Invariants: the virtual
 * index is written only by mix_virtual_sync, so the in-memory map, once
 * loaded, equals what the newest snapshot of the index holds; every byte
 * of the header and vmap data is checked before use, and anything
 * inconsistent makes the load report damage (and the sync rebuild)
 * instead of failing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "crc32c.h"
#include "err.h"
#include "format.h"
#include "index.h"
#include "snapshot.h"
#include "virtual.h"

void mix_virtual_warn(struct mix_virtual *v, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (v->warning == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->warning(v->warning_ctx, msg);
}

/* ---- backends ---------------------------------------------------------- */

struct vbackend *mix_virtual_bk_find(struct mix_virtual *v, uint32_t id)
{
	uint32_t i;

	for (i = 0; i < v->bk_count; i++)
		if (v->bk[i].id == id)
			return &v->bk[i];
	return NULL;
}

struct vbackend *mix_virtual_bk_add(struct mix_virtual *v, uint32_t id,
				    const char *name, size_t name_len)
{
	struct vbackend *b;
	uint32_t i;

	if (v->bk_count == v->bk_cap) {
		uint32_t cap = v->bk_cap ? v->bk_cap * 2 : 8;
		void *n = realloc(v->bk, cap * sizeof(*v->bk));
		if (n == NULL)
			return NULL;
		v->bk = n;
		v->bk_cap = cap;
	}
	for (i = v->bk_count; i > 0 && v->bk[i - 1].id > id; i--)
		;
	memmove(&v->bk[i + 1], &v->bk[i], (v->bk_count - i) * sizeof(*b));
	b = &v->bk[i];
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->name = strndup(name, name_len);
	if (b->name == NULL) {
		memmove(&v->bk[i], &v->bk[i + 1], (v->bk_count - i) * sizeof(*b));
		return NULL;
	}
	v->bk_count++;
	return b;
}

void mix_virtual_bk_clear(struct vbackend *b)
{
	free(b->e);
	b->e = NULL;
	b->count = b->cap = 0;
	b->pending = 0;
	b->compact = 0;
	b->uid_validity = b->next_uid = 0;
	b->highest_modseq = 0;
	memset(b->guid, 0, sizeof(b->guid));
}

void mix_virtual_bk_remove(struct mix_virtual *v, uint32_t i)
{
	mix_virtual_bk_clear(&v->bk[i]);
	free(v->bk[i].name);
	memmove(&v->bk[i], &v->bk[i + 1],
		(v->bk_count - i - 1) * sizeof(v->bk[0]));
	v->bk_count--;
}

void mix_virtual_bk_free_all(struct mix_virtual *v)
{
	while (v->bk_count > 0)
		mix_virtual_bk_remove(v, v->bk_count - 1);
}

int mix_virtual_bk_lookup(const struct vbackend *b, uint32_t ruid,
			  uint32_t *pos_r)
{
	uint32_t lo = 0, hi = b->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (b->e[mid].ruid < ruid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos_r = lo;
	return lo < b->count && b->e[lo].ruid == ruid;
}

int mix_virtual_bk_push(struct vbackend *b, uint32_t ruid, uint32_t vuid)
{
	if (b->count == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 64;
		void *n = realloc(b->e, cap * sizeof(*b->e));
		if (n == NULL)
			return MIX_ENOMEM();
		b->e = n;
		b->cap = cap;
	}
	b->e[b->count].ruid = ruid;
	b->e[b->count].vuid = vuid;
	b->e[b->count].nomatch = 0;
	b->count++;
	return 0;
}

static int ventry_cmp(const void *a, const void *b)
{
	const struct ventry *x = a, *y = b;
	return x->ruid < y->ruid ? -1 : x->ruid > y->ruid;
}

void mix_virtual_bk_sort(struct vbackend *b)
{
	if (b->count > 1)
		qsort(b->e, b->count, sizeof(*b->e), ventry_cmp);
}

/* ---- the header (docs/format.md §5.2) ---------------------------------- */


int mix_virtual_hdr_encode(const struct mix_virtual *v, uint8_t *buf,
			   uint32_t *used_r)
{
	uint32_t i, used, names;
	uint8_t *ent;

	used = MIX_VIRTUAL_HDR_FIXED + v->bk_count * MIX_VIRTUAL_HDR_ENTRY;
	for (i = 0; i < v->bk_count; i++)
		used += (uint32_t)strlen(v->bk[i].name);
	if (used > MIX_VIRTUAL_HDR_SIZE)
		return mix_err(MIX_ELIMIT, "virtual %s: %u backends need %u "
			       "header bytes, more than %u", v->dir,
			       v->bk_count, used, MIX_VIRTUAL_HDR_SIZE);
	memset(buf, 0, used);
	mix_put_u32(buf + 0, MIX_VIRTUAL_MAGIC);
	mix_put_u32(buf + 4, MIX_VIRTUAL_VERSION);
	mix_put_u32(buf + 12, used);
	mix_put_u32(buf + 16, v->change_counter);
	mix_put_u32(buf + 20, v->bk_count);
	mix_put_u32(buf + 24, v->highest_mailbox_id);
	mix_put_u32(buf + 28, v->rule_crc);
	names = MIX_VIRTUAL_HDR_FIXED + v->bk_count * MIX_VIRTUAL_HDR_ENTRY;
	for (i = 0; i < v->bk_count; i++) {
		const struct vbackend *b = &v->bk[i];
		uint32_t len = (uint32_t)strlen(b->name);
		ent = buf + MIX_VIRTUAL_HDR_FIXED + i * MIX_VIRTUAL_HDR_ENTRY;
		mix_put_u32(ent + 0, b->id);
		mix_put_u32(ent + 4, len);
		mix_put_u32(ent + 8, b->uid_validity);
		mix_put_u32(ent + 12, b->next_uid);
		mix_put_u64(ent + 16, b->highest_modseq);
		memcpy(ent + 24, b->guid, 16);
		memcpy(buf + names, b->name, len);
		names += len;
	}
	mix_put_u32(buf + 8, mix_crc32c(0, buf, used));
	*used_r = used;
	return 0;
}

/* Check the fixed part; 0 or a message in why. */
static int hdr_check_fixed(const uint8_t *h, size_t size, char *why,
			   size_t why_size)
{
	uint32_t used, count, crc;
	uint8_t tmp[4] = { 0 };

	if (size < MIX_VIRTUAL_HDR_FIXED) {
		snprintf(why, why_size, "header size %zu", size);
		return -1;
	}
	used = mix_get_u32(h + 12);
	count = mix_get_u32(h + 20);
	if (mix_get_u32(h + 0) != MIX_VIRTUAL_MAGIC || mix_get_u32(h + 4) !=
	    MIX_VIRTUAL_VERSION) {
		snprintf(why, why_size, "magic/version at offset 0: %#x/%u",
			 mix_get_u32(h), mix_get_u32(h + 4));
		return -1;
	}
	if (used < MIX_VIRTUAL_HDR_FIXED || used > size ||
	    count > (used - MIX_VIRTUAL_HDR_FIXED) / MIX_VIRTUAL_HDR_ENTRY) {
		snprintf(why, why_size, "used %u / mailbox_count %u at offset "
			 "12/20 (header %zu bytes)", used, count, size);
		return -1;
	}
	crc = mix_crc32c(mix_crc32c(0, h, 8), tmp, 4);
	crc = mix_crc32c(crc, h + 12, used - 12);
	if (crc != mix_get_u32(h + 8)) {
		snprintf(why, why_size, "checksum at offset 8: %#x, computed "
			 "%#x", mix_get_u32(h + 8), crc);
		return -1;
	}
	return 0;
}

/* Decode the backend list into v->bk.  0, -1 (damage: why), -ENOMEM. */
int mix_virtual_hdr_decode(struct mix_virtual *v, const uint8_t *h,
			   size_t size, char *why, size_t why_size)
{
	uint32_t used, count, i, names, prev = 0;

	if (hdr_check_fixed(h, size, why, why_size) < 0)
		return -1;
	used = mix_get_u32(h + 12);
	count = mix_get_u32(h + 20);
	v->change_counter = mix_get_u32(h + 16);
	v->highest_mailbox_id = mix_get_u32(h + 24);
	names = MIX_VIRTUAL_HDR_FIXED + count * MIX_VIRTUAL_HDR_ENTRY;
	for (i = 0; i < count; i++) {
		const uint8_t *ent = h + MIX_VIRTUAL_HDR_FIXED +
				     i * MIX_VIRTUAL_HDR_ENTRY;
		uint32_t id = mix_get_u32(ent), len = mix_get_u32(ent + 4);
		struct vbackend *b;
		if (id <= prev || id > v->highest_mailbox_id) {
			snprintf(why, why_size, "mailbox id %u of entry %u at "
				 "offset %u (previous %u, highest %u)", id, i,
				 MIX_VIRTUAL_HDR_FIXED + i * MIX_VIRTUAL_HDR_ENTRY,
				 prev, v->highest_mailbox_id);
			return -1;
		}
		if (len == 0 || len > MIX_VIRTUAL_NAME_MAX ||
		    len > used - names || memchr(h + names, 0, len)) {
			snprintf(why, why_size, "name_len %u of entry %u at "
				 "offset %u", len, i, MIX_VIRTUAL_HDR_FIXED +
				 i * MIX_VIRTUAL_HDR_ENTRY + 4);
			return -1;
		}
		if ((b = mix_virtual_bk_add(v, id, (const char *)h + names,
					    len)) == NULL)
			return MIX_ENOMEM();
		b->uid_validity = mix_get_u32(ent + 8);
		b->next_uid = mix_get_u32(ent + 12);
		b->highest_modseq = mix_get_u64(ent + 16);
		memcpy(b->guid, ent + 24, 16);
		names += len;
		prev = id;
	}
	if (names != used) {
		snprintf(why, why_size, "names end at %u, used says %u", names,
			 used);
		return -1;
	}
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Every vmap record into its backend's list; 0, -1 (damage: why). */
static int load_records(struct mix_virtual *v, const struct mix_snap *snap,
			char *why, size_t why_size)
{
	struct mix_iter it;
	struct mix_record rec;
	uint32_t i, j;
	int ret;

	mix_iter_init(&it, snap, 1);
	while (mix_iter_next(&it, &rec)) {
		size_t size = 0;
		const void *d = mix_record_ext(snap, &rec, v->ext_id, &size);
		struct vmap_rec m;
		struct vbackend *b;
		if (d == NULL || size != sizeof(m)) {
			snprintf(why, why_size, "vmap of UID %u missing",
				 rec.uid);
			return -1;
		}
		memcpy(&m, d, sizeof(m));
		b = mix_virtual_bk_find(v, m.mailbox_id);
		if (b == NULL || m.real_uid == 0 ||
		    m.real_uid >= b->next_uid) {
			snprintf(why, why_size, "vmap of UID %u: mailbox_id %u "
				 "real_uid %u not in the header", rec.uid,
				 m.mailbox_id, m.real_uid);
			return -1;
		}
		if ((ret = mix_virtual_bk_push(b, m.real_uid, rec.uid)) < 0)
			return ret;
	}
	for (i = 0; i < v->bk_count; i++) {
		struct vbackend *b = &v->bk[i];
		mix_virtual_bk_sort(b);
		for (j = 1; j < b->count; j++) {
			if (b->e[j].ruid == b->e[j - 1].ruid) {
				snprintf(why, why_size, "vmap of UIDs %u and %u: "
					 "both mailbox_id %u real_uid %u",
					 b->e[j - 1].vuid, b->e[j].vuid, b->id,
					 b->e[j].ruid);
				return -1;
			}
		}
	}
	return 0;
}

/* After damage: keep mailbox ids above any the records name. */
static void damaged_highest(struct mix_virtual *v, const struct mix_snap *snap)
{
	struct mix_iter it;
	struct mix_record rec;

	mix_iter_init(&it, snap, 1);
	while (mix_iter_next(&it, &rec)) {
		size_t size = 0;
		const void *d = mix_record_ext(snap, &rec, v->ext_id, &size);
		struct vmap_rec m;
		if (d == NULL || size != sizeof(m))
			continue;
		memcpy(&m, d, sizeof(m));
		if (m.mailbox_id > v->highest_mailbox_id &&
		    m.mailbox_id != UINT32_MAX)
			v->highest_mailbox_id = m.mailbox_id;
	}
}

static int load_snap(struct mix_virtual *v, const struct mix_snap *snap)
{
	char why[256];
	size_t size = 0;
	const uint8_t *h = mix_snap_ext_hdr(snap, v->ext_id, &size);
	uint32_t count = mix_snap_messages_count(snap);
	int ret;

	mix_virtual_bk_free_all(v);
	v->change_counter = 0;
	v->highest_mailbox_id = 0;
	if (h == NULL || size == 0 || all_zero(h, size)) {
		if (count == 0)
			return 0;
		snprintf(why, sizeof(why), "no header but %u messages", count);
		ret = -1;
	} else {
		ret = mix_virtual_hdr_decode(v, h, size, why, sizeof(why));
		if (ret == 0 && mix_get_u32(h + 28) != v->rule_crc) {
			mix_virtual_bk_free_all(v);
			return 1;
		}
		if (ret == 0)
			ret = load_records(v, snap, why, sizeof(why));
	}
	if (ret == -1) {
		uint32_t highest = v->highest_mailbox_id;
		mix_virtual_bk_free_all(v);
		v->highest_mailbox_id = highest;
		damaged_highest(v, snap);
		mix_virtual_warn(v, "virtual %s: vmap damaged (%s); rebuilding "
				 "the virtual mailbox", v->dir, why);
		return 2;
	}
	return ret;
}

int mix_virtual_load(struct mix_virtual *v)
{
	int ret;

	mix_read_lock();
	ret = load_snap(v, mix_index_snap(v->index));
	mix_read_unlock();
	return ret;
}

/* ---- definition, open, close ------------------------------------------- */

static void def_free(struct mix_virtual_backend *b, uint32_t count)
{
	uint32_t i;

	for (i = 0; i < count; i++)
		free((char *)b[i].name);
	free(b);
}

/* A backend must be an ordinary mailbox: the virtual index itself would
 * add its own messages again at every sync (and wake its own live thread
 * forever), and another virtual index's records map to messages of its
 * backends, which writes through and its sync do not follow.  What marks
 * an index virtual is its vmap extension (index_prepare). */
static int backend_check(const struct mix_virtual *v,
			 const struct mix_virtual_backend *b)
{
	uint32_t ext;
	int is_virtual;

	if (b->index == NULL)
		return 0;
	if (b->index == v->index)
		return mix_err(MIX_EINVAL, "virtual %s: backend '%s' is the "
			       "virtual mailbox itself", v->dir, b->name);
	mix_read_lock();
	is_virtual = mix_snap_ext_lookup(mix_index_snap(b->index),
					 MIX_VIRTUAL_EXT, &ext);
	mix_read_unlock();
	if (is_virtual)
		return mix_err(MIX_EINVAL, "virtual %s: backend '%s' is a "
			       "virtual mailbox (it has the '%s' extension); "
			       "virtual mailboxes do not nest", v->dir,
			       b->name, MIX_VIRTUAL_EXT);
	return 0;
}

MIX_API int mix_virtual_set_backends(struct mix_virtual *v,
				     const struct mix_virtual_backend *b,
				     uint32_t count)
{
	struct mix_virtual_backend *d;
	uint32_t i, j;
	int ret;

	if (b == NULL && count > 0)
		return mix_err(MIX_EINVAL, "virtual %s: %u backends but no "
			       "backend array (NULL)", v->dir, count);
	for (i = 0; i < count; i++) {
		size_t len = b[i].name ? strlen(b[i].name) : 0;
		if (len == 0 || len > MIX_VIRTUAL_NAME_MAX)
			return mix_err(MIX_EINVAL, "virtual %s: backend %u: "
				       "name must be 1..255 bytes", v->dir, i);
		for (j = 0; j < i; j++)
			if (strcmp(b[i].name, b[j].name) == 0)
				return mix_err(MIX_EINVAL, "virtual %s: backend "
					       "'%s' listed twice", v->dir,
					       b[i].name);
		if ((ret = backend_check(v, &b[i])) < 0)
			return ret;
	}
	d = calloc(count ? count : 1, sizeof(*d));
	if (d == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < count; i++) {
		d[i].index = b[i].index;
		if ((d[i].name = strdup(b[i].name)) == NULL) {
			def_free(d, i);
			return MIX_ENOMEM();
		}
	}
	pthread_mutex_lock(&v->lock);
	if (v->live != NULL) {
		pthread_mutex_unlock(&v->lock);
		def_free(d, count);
		return mix_err(MIX_EINVAL, "virtual %s: backends cannot change "
			       "in live mode (mix_virtual_live_stop first)",
			       v->dir);
	}
	def_free(v->def, v->def_count);
	v->def = d;
	v->def_count = count;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

static void virtual_free(struct mix_virtual *v)
{
	mix_virtual_bk_free_all(v);
	free(v->bk);
	def_free(v->def, v->def_count);
	mix_vrule_free(&v->rule);
	free(v->received_ext);
	free(v->save_target);
	free(v->dir);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* The engine shares one struct mix_index per directory (index-
 * registry.c), so a second mix_virtual_open of the same directory in one
 * engine would get the same index with a map of its own: the two maps
 * would each add the same backend messages (duplicates, then a
 * rebuild).  Sharing the struct mix_virtual would need one definition
 * for both opens; the second open is refused instead (MIX_ELOCKED): the
 * index records which struct mix_virtual owns it
 * (mix_index_claim_virtual). */
static int vindex_open(struct mix_engine *engine, struct mix_virtual *v)
{
	int ret = mix_index_open(engine, v->dir, MIX_OPEN_CREATE, &v->index);

	if (ret == 0 && mix_index_claim_virtual(v->index, v) < 0) {
		mix_index_close(&v->index);
		v->index = NULL;
		ret = mix_err(MIX_ELOCKED, "virtual %s: already open as a "
			      "virtual mailbox in this engine (one "
			      "mix_virtual_open per directory; share that "
			      "struct mix_virtual)", v->dir);
	}
	return ret;
}

/* Close v->index; keeps its claim if nothing was closed (views open). */
static int vindex_close(struct mix_virtual *v)
{
	int ret;

	mix_index_release_virtual(v->index, v);
	ret = mix_index_close(&v->index);
	if (v->index != NULL)
		(void)mix_index_claim_virtual(v->index, v);
	return ret;
}

/* Register vmap and give a new index its UIDVALIDITY. */
static int index_prepare(struct mix_virtual *v)
{
	struct mix_txn *txn;
	uint32_t uv, indexid, ext, messages;
	int ret, is_virtual;

	/* What makes an index virtual is the vmap extension: the first
	 * open registers it, before any sync can append, so a virtual
	 * index with messages always has it (damaged data or not).  An
	 * index with messages and no vmap is an ordinary mailbox (a
	 * directory given by mistake): adopting it would make the first
	 * sync take its messages for damage and expunge them all. */
	mix_read_lock();
	is_virtual = mix_snap_ext_lookup(mix_index_snap(v->index),
					 MIX_VIRTUAL_EXT, &ext);
	messages = mix_snap_messages_count(mix_index_snap(v->index));
	mix_read_unlock();
	if (!is_virtual && messages > 0)
		return mix_err(MIX_EINVAL, "virtual %s: not a virtual index "
			       "(%u messages and no '%s' extension): the "
			       "directory of an ordinary mailbox?", v->dir,
			       messages, MIX_VIRTUAL_EXT);
	if ((ret = mix_index_ext_register(v->index, MIX_VIRTUAL_EXT,
					  sizeof(struct vmap_rec), 4,
					  MIX_VIRTUAL_HDR_SIZE,
					  &v->ext_id)) < 0)
		return ret;
	mix_read_lock();
	uv = mix_snap_uid_validity(mix_index_snap(v->index));
	indexid = mix_index_snap(v->index)->hdr.indexid;
	mix_read_unlock();
	if (uv != 0)
		return 0;
	if ((ret = mix_txn_begin(v->index, &txn)) < 0)
		return ret;
	/* The creation time as the index's indexid states it (format.md
	 * §2.1), which is unique among the indexes this process creates:
	 * time(NULL) gave a virtual index deleted and created again within
	 * the same second the same UIDVALIDITY while its UIDs named other
	 * messages (RFC 9051 §2.3.1.1; found by a lifecycle check).  Two
	 * processes creating one in the same second can still collide. */
	uv = MIX_INDEXID_EPOCH + indexid;
	if ((ret = mix_txn_hdr_set(txn, MIX_HDR_UID_VALIDITY, uv)) < 0) {
		mix_txn_abort(&txn);
		return ret;
	}
	return mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL);
}

static int def_copy(struct mix_virtual *v, const struct mix_virtual_def *def)
{
	const char *rx = def->received_ext ? def->received_ext : "received";
	size_t errpos;
	int ret;

	if ((ret = mix_vrule_parse(def->rule, &v->rule, &errpos)) < 0) {
		char msg[256];
		mix_err_copy(msg, sizeof(msg));
		return mix_err(ret, "virtual %s: %s", v->dir, msg);
	}
	if ((v->received_ext = strdup(rx)) == NULL)
		return MIX_ENOMEM();
	if (def->save_target != NULL &&
	    (v->save_target = strdup(def->save_target)) == NULL)
		return MIX_ENOMEM();
	/* the rule text and the received extension decide what matches:
	 * either changing rebuilds (format.md §5.2 rule_crc) */
	v->rule_crc = mix_crc32c(0, def->rule, strlen(def->rule) + 1);
	v->rule_crc = mix_crc32c(v->rule_crc, rx, strlen(rx));
	v->warning = def->warning;
	v->warning_ctx = def->warning_ctx;
	v->now = def->now;
	v->now_ctx = def->now_ctx;
	return mix_virtual_set_backends(v, def->backends, def->backend_count);
}

MIX_API int mix_virtual_open(struct mix_engine *engine, const char *dir,
			     const struct mix_virtual_def *def,
			     struct mix_virtual **v_r)
{
	struct mix_virtual *v;
	uint32_t i;
	int ret;

	*v_r = NULL;
	if (def == NULL || def->rule == NULL)
		return mix_err(MIX_EINVAL, "virtual %s: no rule", dir);
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return MIX_ENOMEM();
	if ((v->dir = strdup(dir)) == NULL) {
		free(v);
		return MIX_ENOMEM();
	}
	pthread_mutex_init(&v->lock, NULL);
	if ((ret = def_copy(v, def)) < 0 ||
	    (ret = vindex_open(engine, v)) < 0) {
		virtual_free(v);
		return ret;
	}
	/* the definition was checked before v->index existed: a backend
	 * that is this very index (opened by the caller as an ordinary
	 * index, shared by the engine) is caught only now */
	for (i = 0; ret == 0 && i < v->def_count; i++)
		ret = backend_check(v, &v->def[i]);
	if (ret < 0 || (ret = index_prepare(v)) < 0) {
		vindex_close(v);
		virtual_free(v);
		return ret;
	}
	*v_r = v;
	return 0;
}

MIX_API int mix_virtual_close(struct mix_virtual **vp)
{
	struct mix_virtual *v = *vp;
	int ret;

	if (v == NULL)
		return 0;
	mix_virtual_live_stop(v);
	ret = vindex_close(v);
	if (v->index != NULL)
		return ret;      /* nothing closed (views open, -ENOMEM) */
	virtual_free(v);
	*vp = NULL;
	return ret;
}

MIX_API struct mix_index *mix_virtual_index(struct mix_virtual *v)
{
	return v->index;
}

MIX_API int mix_virtual_mailbox_id(struct mix_virtual *v, const char *name,
				   uint32_t *id_r)
{
	uint32_t i;
	int found = 0;

	pthread_mutex_lock(&v->lock);
	for (i = 0; i < v->bk_count && !found; i++) {
		if (strcmp(v->bk[i].name, name) == 0 && v->bk[i].id != 0) {
			*id_r = v->bk[i].id;
			found = 1;
		}
	}
	pthread_mutex_unlock(&v->lock);
	return found;
}

/* The vmap extension of snap's layout with its record data in bounds,
 * or NULL.  Read-path helper of the lookups: no strcmp, no struct
 * mix_record filled (exts[0] and [1] are modseq and keywords). */
static const struct mix_ext *vmap_ext(const struct mix_snap *snap)
{
	const struct mix_layout *l = snap->layout;
	uint32_t i;

	for (i = 2; i < l->ext_count; i++) {
		const struct mix_ext *e = &l->exts[i];
		if (memcmp(e->name, MIX_VIRTUAL_EXT, sizeof(MIX_VIRTUAL_EXT)))
			continue;
		if (e->rec_size != sizeof(struct vmap_rec) ||
		    (size_t)e->rec_offset + sizeof(struct vmap_rec) >
		    snap->record_size)
			return NULL;
		return e;
	}
	return NULL;
}

MIX_API int mix_virtual_lookup(const struct mix_snap *snap, uint32_t vuid,
			       uint32_t *mailbox_id_r, uint32_t *real_uid_r)
{
	const struct mix_ext *e = vmap_ext(snap);
	struct vmap_rec m;
	uint32_t ci, pos;

	if (e == NULL || !mix_snap_find_uid(snap, vuid, &ci, &pos))
		return 0;
	memcpy(&m, snap->c_recs[ci] + (size_t)pos * snap->record_size +
	       e->rec_offset, sizeof(m));
	*mailbox_id_r = m.mailbox_id;
	*real_uid_r = m.real_uid;
	return 1;
}

/* The reverse map reads the records in place (snapshot.h): one pass over
 * the chunks comparing the 8-byte vmap field, no struct mix_record filled
 * per message.  Virtual UIDs are given in received-date order, so real
 * UIDs are not sorted in virtual UID order and no search can narrow it. */
MIX_API int mix_virtual_lookup_real(const struct mix_snap *snap,
				    uint32_t mailbox_id, uint32_t real_uid,
				    uint32_t *vuid_r)
{
	const struct mix_ext *e = vmap_ext(snap);
	struct vmap_rec want = { mailbox_id, real_uid };
	struct mix_record rec;
	uint32_t ci, pos, n;

	if (e == NULL)
		return 0;
	for (ci = 0; ci < snap->nchunks; ci++) {
		const uint8_t *r = snap->c_recs[ci] + e->rec_offset;
		n = snap->c_seq[ci + 1] - snap->c_seq[ci];
		for (pos = 0; pos < n; pos++, r += snap->record_size) {
			if (memcmp(r, &want, sizeof(want)) != 0)
				continue;
			mix_snap_fill_record(snap, ci, pos, &rec);
			*vuid_r = rec.uid;
			return 1;
		}
	}
	return 0;
}

struct rwant {
	uint32_t ruid, i;
};

static int rwant_cmp(const void *a, const void *b)
{
	const struct rwant *x = a, *y = b;
	return x->ruid < y->ruid ? -1 : x->ruid > y->ruid;
}

MIX_API int mix_virtual_lookup_real_many(const struct mix_snap *snap,
					 uint32_t mailbox_id,
					 const uint32_t *real_uids, uint32_t n,
					 uint32_t *vuids_r)
{
	const struct mix_ext *e = vmap_ext(snap);
	struct mix_record rec;
	struct rwant *w;
	uint32_t ci, pos, cn, i;
	int found = 0;

	/* n == 0 may come with NULL arrays: memset(NULL, 0, 0) is
	 * undefined behaviour too */
	if (n == 0)
		return 0;
	memset(vuids_r, 0, (size_t)n * sizeof(*vuids_r));
	if (e == NULL)
		return 0;
	if ((w = malloc((size_t)n * sizeof(*w))) == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < n; i++) {
		w[i].ruid = real_uids[i];
		w[i].i = i;
	}
	qsort(w, n, sizeof(*w), rwant_cmp);
	for (ci = 0; ci < snap->nchunks; ci++) {
		const uint8_t *r = snap->c_recs[ci] + e->rec_offset;
		cn = snap->c_seq[ci + 1] - snap->c_seq[ci];
		for (pos = 0; pos < cn; pos++, r += snap->record_size) {
			struct vmap_rec m;
			struct rwant key, *hit;
			memcpy(&m, r, sizeof(m));
			if (m.mailbox_id != mailbox_id)
				continue;
			key.ruid = m.real_uid;
			if ((hit = bsearch(&key, w, n, sizeof(*w),
					   rwant_cmp)) == NULL)
				continue;
			mix_snap_fill_record(snap, ci, pos, &rec);
			/* duplicates in real_uids: fill every copy */
			while (hit > w && hit[-1].ruid == m.real_uid)
				hit--;
			for (; hit < w + n && hit->ruid == m.real_uid; hit++) {
				vuids_r[hit->i] = rec.uid;
				found++;
			}
		}
	}
	free(w);
	return found;
}

void mix_virtual_snap_guid(const struct mix_snap *s, uint8_t guid[16])
{
	memset(guid, 0, 16);
	memcpy(guid, &s->hdr.indexid, sizeof(s->hdr.indexid));
}

int mix_virtual_snap_entry(const struct mix_snap *snap, uint32_t mailbox_id,
			   struct mix_virtual_backend_state *state_r,
			   uint8_t guid_r[16])
{
	char why[160];
	const uint8_t *h, *ent;
	size_t size = 0;
	uint32_t ext, count, i;

	if (!mix_snap_ext_lookup(snap, MIX_VIRTUAL_EXT, &ext) ||
	    (h = mix_snap_ext_hdr(snap, ext, &size)) == NULL ||
	    hdr_check_fixed(h, size, why, sizeof(why)) < 0)
		return 0;
	count = mix_get_u32(h + 20);
	for (i = 0; i < count; i++) {
		ent = h + MIX_VIRTUAL_HDR_FIXED + i * MIX_VIRTUAL_HDR_ENTRY;
		if (mix_get_u32(ent) != mailbox_id)
			continue;
		memset(state_r, 0, sizeof(*state_r));   /* reserved too */
		state_r->uid_validity = mix_get_u32(ent + 8);
		state_r->next_uid = mix_get_u32(ent + 12);
		state_r->highest_modseq = mix_get_u64(ent + 16);
		if (guid_r != NULL)
			memcpy(guid_r, ent + 24, 16);
		return 1;
	}
	return 0;
}

MIX_API int mix_virtual_snap_backend(const struct mix_snap *snap,
				     uint32_t mailbox_id,
				     struct mix_virtual_backend_state *state_r)
{
	return mix_virtual_snap_entry(snap, mailbox_id, state_r, NULL);
}
