/*
 * The vmap checker (docs/format.md §5, docs/virtual.md "Checking"): every
 * rule §5.1 and §5.2 state about a virtual index's vmap header and record
 * data, each problem reported (not only the first) with the header offset
 * or the virtual UID it concerns.  Used by `mixctl check` and by the fuzz
 * target tests/fuzz/fuzz-vmap.c; the virtual mailbox's own load
 * (virtual.c, mix_virtual_hdr_decode and load_records) applies the same rules and
 * rebuilds on the first broken one.  Read-only, any thread; the snapshot
 * form runs inside the caller's read-side section (mix_read_lock).
 *
 * Not checked, because the sync does not promise it: the order of one
 * backend's real UIDs along virtual UIDs (virtual UIDs follow received
 * dates, virtual-sync.c), and the rule_crc (a changed rule is not damage).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "crc32c.h"
#include "err.h"
#include "snapshot.h"
#include "virtual.h"

#define VCHECK_REC_REPORTS 20   /* per-record problems reported in full */


static void report(struct mix_vcheck *c, long long off, const char *field,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report(struct mix_vcheck *c, long long off, const char *field,
		   const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	c->problems++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->report)
		c->report(c->ctx, off, field, msg);
}

/* A record problem, the first VCHECK_REC_REPORTS in full. */
static void rec_problem(struct mix_vcheck *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rec_problem(struct mix_vcheck *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	c->rec_problems++;
	if (c->rec_problems > VCHECK_REC_REPORTS) {
		c->problems++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(c, -1, "vmap record", "%s", msg);
}

void mix_vcheck_init(struct mix_vcheck *c, mix_vcheck_report_fn *fn,
		     void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->report = fn;
	c->ctx = ctx;
}

void mix_vcheck_free(struct mix_vcheck *c)
{
	free(c->ent);
	free(c->pairs);
	c->ent = NULL;
	c->pairs = NULL;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* magic, version, used, mailbox_count; 0 when the entries can be read. */
static int hdr_fixed(struct mix_vcheck *c, const uint8_t *h, size_t size)
{
	uint32_t used, count;

	if (size < MIX_VIRTUAL_HDR_FIXED) {
		report(c, 0, "header", "%zu bytes (expected at least %u)",
		       size, MIX_VIRTUAL_HDR_FIXED);
		return -1;
	}
	if (mix_get_u32(h) != MIX_VIRTUAL_MAGIC)
		report(c, 0, "magic", "%#x (expected %#x)", mix_get_u32(h),
		       MIX_VIRTUAL_MAGIC);
	if (mix_get_u32(h + 4) != MIX_VIRTUAL_VERSION)
		report(c, 4, "version", "%u (expected %u)", mix_get_u32(h + 4),
		       MIX_VIRTUAL_VERSION);
	used = mix_get_u32(h + 12);
	count = mix_get_u32(h + 20);
	if (used < MIX_VIRTUAL_HDR_FIXED || used > size) {
		report(c, 12, "used", "%u (expected %u..%zu)", used,
		       MIX_VIRTUAL_HDR_FIXED, size);
		return -1;
	}
	if (count > (used - MIX_VIRTUAL_HDR_FIXED) / MIX_VIRTUAL_HDR_ENTRY) {
		report(c, 20, "mailbox_count", "%u entries do not fit in used "
		       "%u (expected at most %u)", count, used,
		       (used - MIX_VIRTUAL_HDR_FIXED) / MIX_VIRTUAL_HDR_ENTRY);
		return -1;
	}
	return mix_get_u32(h) == MIX_VIRTUAL_MAGIC &&
	       mix_get_u32(h + 4) == MIX_VIRTUAL_VERSION ? 0 : -1;
}

static void hdr_checksum(struct mix_vcheck *c, const uint8_t *h)
{
	static const uint8_t zero[4];
	uint32_t used = mix_get_u32(h + 12), crc;

	crc = mix_crc32c(mix_crc32c(0, h, 8), zero, 4);
	crc = mix_crc32c(crc, h + 12, used - 12);
	if (crc != mix_get_u32(h + 8))
		report(c, 8, "checksum", "%#x (expected %#x, the CRC32C of "
		       "bytes 0..%u)", mix_get_u32(h + 8), crc, used);
}

/* The entries and names; fills c->ent. */
static int hdr_entries(struct mix_vcheck *c, const uint8_t *h)
{
	uint32_t used = mix_get_u32(h + 12), count = mix_get_u32(h + 20);
	uint32_t highest = mix_get_u32(h + 24), names, i, prev = 0;

	names = MIX_VIRTUAL_HDR_FIXED + count * MIX_VIRTUAL_HDR_ENTRY;
	if (count && (c->ent = calloc(count, sizeof(*c->ent))) == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < count; i++) {
		uint32_t off = MIX_VIRTUAL_HDR_FIXED + i * MIX_VIRTUAL_HDR_ENTRY;
		uint32_t id = mix_get_u32(h + off), len = mix_get_u32(h + off + 4);
		if (id == 0 || id <= prev || id > highest)
			report(c, off, "id", "%u of entry %u (expected above "
			       "the previous %u, at most highest_mailbox_id %u)",
			       id, i, prev, highest);
		if (len == 0 || len > MIX_VIRTUAL_NAME_MAX) {
			report(c, off + 4, "name_len", "%u of entry %u "
			       "(expected 1..%u)", len, i, MIX_VIRTUAL_NAME_MAX);
			return -1;      /* the following names cannot be found */
		}
		if (len > used - names) {
			report(c, off + 4, "name_len", "%u of entry %u: the "
			       "name at offset %u passes used %u", len, i,
			       names, used);
			return -1;
		}
		if (memchr(h + names, 0, len))
			report(c, names, "name", "of entry %u holds a NUL "
			       "byte", i);
		c->ent[i].id = id;
		c->ent[i].next_uid = mix_get_u32(h + off + 12);
		c->count = i + 1;
		names += len;
		if (id > prev)
			prev = id;
	}
	if (names != used)
		report(c, 12, "used", "%u, but the names end at %u", used,
		       names);
	return 0;
}

int mix_vcheck_hdr(struct mix_vcheck *c, const uint8_t *h, size_t size,
		   uint32_t messages)
{
	unsigned before = c->problems;
	int ret;

	c->hdr_ok = 0;
	if (h == NULL || size == 0 || all_zero(h, size)) {
		if (messages)   /* no header data: no offset in it */
			report(c, size ? 0 : -1, "header", "never written "
			       "(%s), but the index holds %u messages",
			       size ? "all zeros" : "no data", messages);
		else
			c->hdr_ok = 1;   /* never synced: no records */
		return 0;
	}
	if (hdr_fixed(c, h, size) < 0)
		return 0;
	hdr_checksum(c, h);
	if ((ret = hdr_entries(c, h)) == -ENOMEM)
		return ret;
	c->hdr_ok = ret == 0 && c->problems == before;
	return 0;
}

static const struct vcheck_ent *ent_find(const struct mix_vcheck *c,
					 uint32_t id)
{
	uint32_t lo = 0, hi = c->count;

	while (lo < hi) {            /* ids ascending when hdr_ok */
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->ent[mid].id == id)
			return &c->ent[mid];
		if (c->ent[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int mix_vcheck_rec(struct mix_vcheck *c, uint32_t vuid, const void *data,
		   size_t size)
{
	const struct vcheck_ent *e;
	struct vmap_rec m;

	if (data == NULL || size != sizeof(m)) {
		rec_problem(c, "UID %u: no vmap data (expected %zu bytes)",
			    vuid, sizeof(m));
		return 0;
	}
	memcpy(&m, data, sizeof(m));
	if (m.real_uid == 0)
		rec_problem(c, "UID %u: real_uid 0 (mailbox_id %u)", vuid,
			    m.mailbox_id);
	if (c->hdr_ok) {
		if ((e = ent_find(c, m.mailbox_id)) == NULL)
			rec_problem(c, "UID %u: mailbox_id %u is not in the "
				    "header (real_uid %u)", vuid, m.mailbox_id,
				    m.real_uid);
		else if (m.real_uid != 0 && m.real_uid >= e->next_uid)
			rec_problem(c, "UID %u: real_uid %u of mailbox_id %u "
				    "is not below its next_uid %u", vuid,
				    m.real_uid, m.mailbox_id, e->next_uid);
	}
	if (c->npairs == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 64;
		void *n = realloc(c->pairs, (size_t)cap * sizeof(*c->pairs));
		if (n == NULL)
			return MIX_ENOMEM();
		c->pairs = n;
		c->cap = cap;
	}
	c->pairs[c->npairs].mailbox_id = m.mailbox_id;
	c->pairs[c->npairs].real_uid = m.real_uid;
	c->pairs[c->npairs].vuid = vuid;
	c->npairs++;
	return 0;
}

static int pair_cmp(const void *a, const void *b)
{
	const struct vcheck_pair *x = a, *y = b;

	if (x->mailbox_id != y->mailbox_id)
		return x->mailbox_id < y->mailbox_id ? -1 : 1;
	if (x->real_uid != y->real_uid)
		return x->real_uid < y->real_uid ? -1 : 1;
	return x->vuid < y->vuid ? -1 : x->vuid > y->vuid;
}

void mix_vcheck_finish(struct mix_vcheck *c)
{
	uint32_t i;

	if (c->npairs > 1)
		qsort(c->pairs, c->npairs, sizeof(*c->pairs), pair_cmp);
	for (i = 1; i < c->npairs; i++) {
		const struct vcheck_pair *p = &c->pairs[i - 1], *q = &c->pairs[i];
		if (p->mailbox_id == q->mailbox_id &&
		    p->real_uid == q->real_uid)
			rec_problem(c, "UIDs %u and %u: both mailbox_id %u "
				    "real_uid %u", p->vuid, q->vuid,
				    q->mailbox_id, q->real_uid);
	}
	if (c->rec_problems > VCHECK_REC_REPORTS && c->report) {
		char msg[96];   /* a summary, not a problem of its own */
		snprintf(msg, sizeof(msg), "%u more record problems not shown",
			 c->rec_problems - VCHECK_REC_REPORTS);
		c->report(c->ctx, -1, "vmap record", msg);
	}
}

int mix_virtual_check_snap(const struct mix_snap *snap,
			   mix_vcheck_report_fn *fn, void *ctx,
			   unsigned *problems_r)
{
	struct mix_vcheck c;
	struct mix_iter it;
	struct mix_record rec;
	const uint8_t *h;
	size_t size = 0;
	uint32_t ext;
	int ret;

	*problems_r = 0;
	if (!mix_snap_ext_lookup(snap, MIX_VIRTUAL_EXT, &ext))
		return 0;
	mix_vcheck_init(&c, fn, ctx);
	h = mix_snap_ext_hdr(snap, ext, &size);
	ret = mix_vcheck_hdr(&c, h, size, mix_snap_messages_count(snap));
	mix_iter_init(&it, snap, 1);
	while (ret == 0 && mix_iter_next(&it, &rec)) {
		const void *d = mix_record_ext(snap, &rec, ext, &size);
		ret = mix_vcheck_rec(&c, rec.uid, d, size);
	}
	if (ret == 0)
		mix_vcheck_finish(&c);
	*problems_r = c.problems;
	mix_vcheck_free(&c);
	return ret < 0 ? ret : 1;
}
