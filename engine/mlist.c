/*
 * Mailbox list index: open and close, the `mlist` record and header codec
 * (docs/format.md "Mailbox list index"), the validating load of a version
 * from the index's records, and the change pipeline.
 *
 * Change pipeline (docs/mailbox-list.md "Concurrency"): a change takes
 * list->wlock, checks its arguments against the newest version BUILT
 * (wver: everything enqueued so far, in intake order), builds the next
 * version, encodes the records it touched into one transaction and hands
 * it to mix_txn_commit_async; then releases wlock and waits.  The writer
 * applies transactions in intake order, so the checks of each change
 * held against the state its transaction is applied to; record UIDs (the
 * mailbox ids) are predicted from next_uid and verified in the callback.
 * The commit callback publishes the change's version (ORDER(mlist-
 * publish)) before waking the committer, so a change is visible to the
 * thread that made it when it returns and never before it is published in
 * the index.  Concurrent SYNC changes land in one batch: one fdatasync.
 *
 * A failed commit marks the list broken: later versions are not
 * published, and the next change (or close) waits for the commits in
 * flight and reloads the version from the records.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "err.h"
#include "mlist.h"
#include "txn.h"

void mlist_warn(struct mix_list *list, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (list->warning == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	list->warning(list->warning_ctx, msg);
}

MIX_API void mix_list_config_init(struct mix_list_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->separator = '/';
	cfg->open_flags = MIX_OPEN_CREATE;
	cfg->durability = MIX_DURABILITY_SYNC;
}

/* ---- the record (format.md "Mailbox list index", record) --------------- */

static void rec_encode(const struct mlent *e, uint8_t *r)
{
	memset(r, 0, MLIST_REC_SIZE);
	mix_put_u32(r + 0, e->parent);
	mix_put_u32(r + 4, e->flags);
	memcpy(r + 8, e->guid, 16);
	mix_put_u32(r + 24, e->st.messages);
	mix_put_u32(r + 28, e->st.unseen);
	mix_put_u32(r + 32, e->st.recent);
	mix_put_u32(r + 36, e->st.uidnext);
	mix_put_u32(r + 40, e->st.uidvalidity);
	mix_put_u32(r + 44, e->st.sflags);
	mix_put_u64(r + 48, e->st.highestmodseq);
	mix_put_u64(r + 56, e->st.size);
	mix_put_u16(r + 64, e->len);
	memcpy(r + MLIST_REC_NAME, e->name, e->len);
}

static int corrupt(const struct mix_list *list, uint32_t id, uint32_t off,
		   const char *field, const char *fmt, ...)
	MIX_PRINTF(5, 6);
static int corrupt(const struct mix_list *list, uint32_t id, uint32_t off,
		   const char *field, const char *fmt, ...)
{
	char what[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return mix_err(MIX_ECORRUPT, "%s: mailbox list record uid %u "
		       "(ext %s offset %u, %s): %s", list->dir, id,
		       MLIST_EXT, off, field, what);
}

/* Decode and check one record's fields that need no other record. */
static int rec_check(const struct mix_list *list, uint32_t id,
		     const uint8_t *r, size_t size)
{
	uint32_t flags, sflags, len;
	const char *name = (const char *)r + MLIST_REC_NAME;

	if (r == NULL || size != MLIST_REC_SIZE)
		return corrupt(list, id, 0, "record", "%s extension data "
			       "missing or %zu bytes, expected %u", MLIST_EXT,
			       r ? size : 0, MLIST_REC_SIZE);
	flags = mix_get_u32(r + 4);
	sflags = mix_get_u32(r + 44);
	len = mix_get_u16(r + 64);
	if (mix_get_u32(r) == id)
		return corrupt(list, id, 0, "parent", "is the record itself");
	if (flags & ~MLIST_STORED_FLAGS)
		return corrupt(list, id, 4, "flags", "0x%x has bits that are "
			       "never stored (0x%x)", flags,
			       flags & ~MLIST_STORED_FLAGS);
	if (sflags & ~MLIST_STORED_SFLAGS)
		return corrupt(list, id, 44, "status_flags", "0x%x has "
			       "unknown bits", sflags);
	if (len == 0 || len > MIX_LIST_COMPONENT_MAX)
		return corrupt(list, id, 64, "name_len", "%u, expected "
			       "1..%u", len, MIX_LIST_COMPONENT_MAX);
	if (memchr(name, list->sep, len) != NULL ||
	    mix_mbox_name_check(name, len, list->sep) < 0)
		return corrupt(list, id, MLIST_REC_NAME, "name",
			       "not a valid name component");
	if (mix_get_u32(r) == 0 && len == 5 && strncasecmp(name, "INBOX", 5) == 0 &&
	    memcmp(name, "INBOX", 5) != 0)
		return corrupt(list, id, MLIST_REC_NAME, "name",
			       "INBOX not in normal form");
	return 0;
}

static void rec_fill(struct mlent *e, const uint8_t *r)
{
	e->flags = mix_get_u32(r + 4);
	memcpy(e->guid, r + 8, 16);
	e->st.messages = mix_get_u32(r + 24);
	e->st.unseen = mix_get_u32(r + 28);
	e->st.recent = mix_get_u32(r + 32);
	e->st.uidnext = mix_get_u32(r + 36);
	e->st.uidvalidity = mix_get_u32(r + 40);
	e->st.sflags = mix_get_u32(r + 44);
	e->st.highestmodseq = mix_get_u64(r + 48);
	e->st.size = mix_get_u64(r + 56);
}

/* ---- load --------------------------------------------------------------- */

static int load_records(struct mix_list *list, const struct mix_snap *snap,
			struct mlver *v)
{
	struct mix_iter it;
	struct mix_record rec;
	const struct mlent *dup;
	struct mlent *e;
	size_t size;
	int ret;

	mix_iter_init(&it, snap, 1);
	while (mix_iter_next(&it, &rec)) {
		const uint8_t *r = mix_record_ext(snap, &rec, list->ext_id,
						  &size);
		if ((ret = rec_check(list, rec.uid, r, size)) < 0)
			return ret;
		e = mlist_load_insert(v, rec.uid, mix_get_u32(r),
				      (const char *)r + MLIST_REC_NAME,
				      mix_get_u16(r + 64), &dup);
		if (e == NULL && dup != NULL)
			return corrupt(list, rec.uid, MLIST_REC_NAME, "name",
				       "the same name as record uid %u under "
				       "parent %u", dup->id, mix_get_u32(r));
		if (e == NULL)
			return MIX_ENOMEM();
		rec_fill(e, r);
	}
	return 0;
}

/* Every parent exists, no cycle, names within the limits. */
static int load_check_tree(struct mix_list *list, struct mlver *v,
			   const struct mix_snap *snap)
{
	char buf[MIX_MBOX_NAME_MAX_LEN + 2];
	struct mix_iter it;
	struct mix_record rec;
	const struct mlent *e;

	mix_iter_init(&it, snap, 1);
	while (mix_iter_next(&it, &rec)) {
		if ((e = mlist_find_id(v, rec.uid)) == NULL)
			continue;
		if (e->parent != 0 && mlist_find_id(v, e->parent) == NULL)
			return corrupt(list, e->id, 0, "parent", "%u is no "
				       "record", e->parent);
		if (mlist_fullname(v, e, list->sep, buf, sizeof(buf)) < 0)
			return corrupt(list, e->id, 0, "parent", "the parent "
				       "chain loops or makes a name longer "
				       "than %u bytes or %u levels",
				       MIX_MBOX_NAME_MAX_LEN,
				       MIX_MBOX_NAME_MAX_DEPTH);
	}
	return 0;
}

/* A new version of everything the index's newest snapshot holds, with
 * generation gen. */
static int load_version(struct mix_list *list, uint64_t gen,
			struct mlver **v_r)
{
	const struct mix_snap *snap;
	struct mlver *v;
	int ret;

	mix_read_lock();
	snap = mix_index_snap(list->index);
	v = mlist_ver_empty(mix_snap_next_uid(snap),
			    mix_snap_messages_count(snap), gen);
	if (v == NULL) {
		mix_read_unlock();
		return MIX_ENOMEM();
	}
	ret = load_records(list, snap, v);
	if (ret == 0)
		ret = load_check_tree(list, v, snap);
	if (ret == 0) {
		size_t size = 0;
		const uint8_t *h = mix_snap_ext_hdr(snap, list->ext_id, &size);
		list->wctr = h && size == MLIST_HDR_SIZE ?
			     mix_get_u32(h + MLIST_HDR_CTR) : 0;
	}
	mix_read_unlock();
	if (ret == 0)
		ret = mlist_link_all(v);
	if (ret < 0) {
		mlist_ver_abort(v);     /* every object is in v->created */
		return ret;
	}
	/* every object is v's, reachable from it: nothing to track */
	free(v->created.p);
	free(v->garbage.p);
	memset(&v->created, 0, sizeof(v->created));
	memset(&v->garbage, 0, sizeof(v->garbage));
	*v_r = v;
	return 0;
}

/* ---- publish and retire -------------------------------------------------- */

static void retire_cb(struct mix_rcu_head *h)
{
	struct mlver *k = caa_container_of(h, struct mlver, rcu);
	uint32_t i;

	/* after a grace period since k stopped being published: no reader
	 * holds k or any object replaced on the way to the published one */
	mix_rcu_gp_acquire();
	for (i = 0; i < k->garbage.n; i++)
		free(k->garbage.p[i]);
	free(k->garbage.p);
	free(k->created.p);
	free(k->byname);
	free(k->byid);
	free(k);
}

/* Publish nv if it is newer than the published version (pub_lock). */
static void publish_locked(struct mix_list *list, struct mlver *nv)
{
	struct mlver *k = list->pub, *kn;

	if (nv->gen <= k->gen)
		return;
	/* ORDER(mlist-publish): nv and everything it points to were
	 * complete before its commit was enqueued (the intake queue orders
	 * them before this callback); pairs with the readers' MIX_RCU_DEREF
	 * of list->pub (mlist-read.c, mlist-status.c). */
	MIX_RCU_PUBLISH(list->pub, nv);
	/* k .. nv's predecessor are unreachable for new readers: free each
	 * one's struct and the objects its successor replaced, after a
	 * grace period (retire_cb).  k->garbage is k's own: retired with
	 * k's predecessor already, so it is empty or reused here. */
	for (; k != nv; k = kn) {
		kn = k->next;
		free(k->garbage.p);
		k->garbage = kn->garbage;
		memset(&kn->garbage, 0, sizeof(kn->garbage));
		free(k->created.p);
		memset(&k->created, 0, sizeof(k->created));
		mix_rcu_defer(&k->rcu, retire_cb);
	}
}

static void commit_cb(void *ctx, int ret, const struct mix_commit_result *res)
{
	struct mlop *op = ctx;
	struct mix_list *list = op->list;

	if (ret == 0 && op->nv->next_id > op->first_id &&
	    res->first_uid != op->first_id) {
		mlist_warn(list, "%s: mailbox ids diverged: expected %u, "
			   "the index gave %u", list->dir, op->first_id,
			   res->first_uid);
		ret = mix_err(MIX_ECORRUPT, "%s: mailbox list ids diverged "
			      "(expected uid %u, got %u)", list->dir,
			      op->first_id, res->first_uid);
	}
	if (ret != 0)
		__atomic_store_n(&list->broken, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&list->broken, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&list->pub_lock);
		publish_locked(list, op->nv);
		pthread_mutex_unlock(&list->pub_lock);
	}
	pthread_mutex_lock(&list->done_lock);
	op->ret = ret;
	op->done = 1;
	__atomic_sub_fetch(&list->pending, 1, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&list->done_cond);
	pthread_mutex_unlock(&list->done_lock);
}

static void wait_idle(struct mix_list *list)
{
	pthread_mutex_lock(&list->done_lock);
	while (__atomic_load_n(&list->pending, __ATOMIC_SEQ_CST) > 0)
		pthread_cond_wait(&list->done_cond, &list->done_lock);
	pthread_mutex_unlock(&list->done_lock);
}

/* Drop the versions built after the published one (never published). */
static void drop_unpublished(struct mix_list *list)
{
	struct mlver *k = list->pub->next, *kn;

	for (; k != NULL; k = kn) {
		kn = k->next;
		mlist_ver_free_unpublished(k);
	}
	list->pub->next = NULL;
	list->wver = list->pub;
}

static void free_all_cb(struct mix_rcu_head *h)
{
	struct mlver *v = caa_container_of(h, struct mlver, rcu);

	mix_rcu_gp_acquire();
	mlist_ver_free_all(v);
}

/* wlock held, nothing unpublished: a new version from the records,
 * published whole in place of the old one, which is freed with all its
 * objects after a grace period (nothing is shared between them). */
static int reload_version(struct mix_list *list)
{
	struct mlver *v, *old;
	int ret;

	if ((ret = load_version(list, list->pub->gen + 1, &v)) < 0)
		return ret;
	pthread_mutex_lock(&list->pub_lock);
	old = list->pub;
	/* ORDER(mlist-publish): v is complete; as in publish_locked */
	MIX_RCU_PUBLISH(list->pub, v);
	pthread_mutex_unlock(&list->pub_lock);
	/* old (and its objects) is unreachable for new readers */
	mix_rcu_defer(&old->rcu, free_all_cb);
	list->wver = v;
	return 0;
}

/* wlock held: rebuild the version from the records after a failure. */
static int reload_locked(struct mix_list *list)
{
	int ret;

	wait_idle(list);
	drop_unpublished(list);
	if ((ret = reload_version(list)) < 0)
		return ret;
	__atomic_store_n(&list->broken, 0, __ATOMIC_SEQ_CST);
	mlist_warn(list, "%s: mailbox list reloaded from its records after "
		   "a failed commit", list->dir);
	return 0;
}

/* ---- the change pipeline ------------------------------------------------ */

int mlist_op_begin(struct mix_list *list, struct mlop *op, uint32_t extra)
{
	int ret;

	memset(op, 0, sizeof(*op));
	op->list = list;
	if (list->readonly)
		return mix_err(MIX_EINVAL, "%s: mailbox list opened read-only",
			       list->dir);
	if (mix_rcu_read_ongoing())
		return mix_err(MIX_EDEADLK, "%s: mailbox list change inside "
			       "a read-side section", list->dir);
	pthread_mutex_lock(&list->wlock);
	if (__atomic_load_n(&list->broken, __ATOMIC_SEQ_CST) &&
	    (ret = reload_locked(list)) < 0) {
		pthread_mutex_unlock(&list->wlock);
		return ret;
	}
	/* ids are the list index's UIDs: the last one is 2^32 - 2 (the
	 * index refuses a next_uid past 2^32 - 1).  extra bounds the
	 * entries this change may create: refused here, before anything is
	 * built, an id never wraps around to one already given out */
	if ((uint64_t)list->wver->next_id + extra > UINT32_MAX) {
		pthread_mutex_unlock(&list->wlock);
		return mix_err(MIX_ELIMIT, "%s: mailbox ids exhausted (next "
			       "id %u, this change may need %u)", list->dir,
			       list->wver->next_id, extra);
	}
	if ((op->nv = mlist_ver_begin(list->wver, extra)) == NULL) {
		pthread_mutex_unlock(&list->wlock);
		return MIX_ENOMEM();
	}
	op->first_id = op->nv->next_id;
	op->dur = list->durability;
	return 0;
}

int mlist_op_touch(struct mlop *op, uint32_t id)
{
	if (op->ntouched == op->cap) {
		uint32_t cap = op->cap ? op->cap * 2 : 16;
		uint32_t *n = realloc(op->touched, cap * sizeof(*n));
		if (n == NULL)
			return MIX_ENOMEM();
		op->touched = n;
		op->cap = cap;
	}
	op->touched[op->ntouched++] = id;
	return 0;
}

void mlist_op_abort(struct mlop *op)
{
	mlist_ver_abort(op->nv);
	op->nv = NULL;
	pthread_mutex_unlock(&op->list->wlock);
	free(op->touched);
	op->touched = NULL;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Encode the change into txn: appends for new ids (in id order), record
 * updates and expunges for old ones. */
static int op_encode(struct mlop *op, struct mix_txn *txn)
{
	struct mix_list *list = op->list;
	uint8_t r[MLIST_REC_SIZE];
	const struct mlent *e;
	uint32_t i, id, app, next = list->wctr + 1;
	int ret;

	/* Chained changes: this one requires the counter its predecessor
	 * set.  A change whose commit failed (out of space) left the counter
	 * where it was, so every change built on it, already queued behind
	 * it, fails alone with -EAGAIN and changes nothing, instead of
	 * landing on a state it was not built for (a child whose new
	 * parent never came, a name twice). */
	if ((ret = mix_txn_ext_hdr_require(txn, list->ext_id, MLIST_HDR_CTR,
					   &list->wctr, 4)) < 0 ||
	    (ret = mix_txn_ext_hdr_set(txn, list->ext_id, MLIST_HDR_CTR,
				       &next, 4)) < 0)
		return ret;
	for (id = op->first_id; id < op->nv->next_id; id++) {
		e = mlist_find_id(op->nv, id);
		if ((ret = mix_txn_append(txn, 0, NULL, &app)) < 0)
			return ret;
		if (e == NULL) {    /* born and gone in this change */
			struct mix_uid_range u = { id, id };
			memset(r, 0, sizeof(r));
			mix_put_u16(r + 64, 1);
			r[MLIST_REC_NAME] = 'x';
			if ((ret = mix_txn_append_ext(txn, app, list->ext_id,
						      r, sizeof(r))) < 0 ||
			    (ret = mix_txn_expunge(txn, &u, 1)) < 0)
				return ret;
			continue;
		}
		rec_encode(e, r);
		if ((ret = mix_txn_append_ext(txn, app, list->ext_id, r,
					      sizeof(r))) < 0)
			return ret;
	}
	if (op->ntouched > 1)
		qsort(op->touched, op->ntouched, sizeof(uint32_t), u32_cmp);
	for (i = 0; i < op->ntouched; i++) {
		id = op->touched[i];
		if (id >= op->first_id || (i > 0 && op->touched[i - 1] == id))
			continue;
		if ((e = mlist_find_id(op->nv, id)) != NULL) {
			rec_encode(e, r);
			ret = mix_txn_ext_set(txn, id, list->ext_id, r,
					      sizeof(r));
		} else {
			struct mix_uid_range u = { id, id };
			ret = mix_txn_expunge(txn, &u, 1);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Durability NONE: commit synchronously under wlock (no fsync to group,
 * and the committer may apply it itself, without waking the writer
 * thread), then publish as the callback would.  Intake order is kept:
 * every change enqueues under wlock. */
static int op_commit_now(struct mlop *op, struct mix_txn *txn)
{
	struct mix_list *list = op->list;
	struct mix_commit_result res;
	int ret;

	memset(&res, 0, sizeof(res));
	ret = mix_txn_commit(&txn, MIX_DURABILITY_NONE, &res);
	if (ret == 0 && op->nv->next_id > op->first_id &&
	    res.first_uid != op->first_id)
		ret = mix_err(MIX_ECORRUPT, "%s: mailbox list ids diverged "
			      "(expected uid %u, got %u)", list->dir,
			      op->first_id, res.first_uid);
	mix_commit_result_free(&res);
	if (ret != 0 || __atomic_load_n(&list->broken, __ATOMIC_SEQ_CST)) {
		/* the next change reloads from the records */
		__atomic_store_n(&list->broken, 1, __ATOMIC_SEQ_CST);
		mlist_op_abort(op);
		return ret;
	}
	list->wctr++;
	list->wver->next = op->nv;
	list->wver = op->nv;
	pthread_mutex_lock(&list->pub_lock);
	publish_locked(list, op->nv);
	pthread_mutex_unlock(&list->pub_lock);
	pthread_mutex_unlock(&list->wlock);
	free(op->touched);
	op->touched = NULL;
	return 0;
}

int mlist_op_commit(struct mlop *op)
{
	struct mix_list *list = op->list;
	struct mix_txn *txn = NULL;
	int ret;

	if (op->ntouched == 0 && op->nv->next_id == op->first_id) {
		mlist_op_abort(op);     /* nothing changed */
		return 0;
	}
	if ((ret = mix_txn_begin(list->index, &txn)) < 0 ||
	    (ret = op_encode(op, txn)) < 0) {
		if (txn != NULL)
			mix_txn_abort(&txn);
		mlist_op_abort(op);
		return ret;
	}
	if (op->dur == MIX_DURABILITY_NONE)
		return op_commit_now(op, txn);
	__atomic_add_fetch(&list->pending, 1, __ATOMIC_SEQ_CST);
	/* linked before the enqueue: the callback (maybe before
	 * commit_async returns) walks the chain up to op->nv */
	list->wver->next = op->nv;
	if ((ret = mix_txn_commit_async(&txn, op->dur, commit_cb,
					op)) < 0) {
		list->wver->next = NULL;
		__atomic_sub_fetch(&list->pending, 1, __ATOMIC_SEQ_CST);
		mlist_op_abort(op);
		return ret;
	}
	list->wver = op->nv;
	list->wctr++;
	pthread_mutex_unlock(&list->wlock);
	free(op->touched);
	op->touched = NULL;
	pthread_mutex_lock(&list->done_lock);
	while (!op->done)
		pthread_cond_wait(&list->done_cond, &list->done_lock);
	pthread_mutex_unlock(&list->done_lock);
	if (op->ret == -EAGAIN)
		return mix_err(-EAGAIN, "%s: an earlier change of the mailbox "
			       "list failed, and this one was built on it: "
			       "nothing of it was applied; retry it",
			       list->dir);
	return op->ret;
}

/* ---- names -------------------------------------------------------------- */

int mlist_name_prepare(const struct mix_list *list, const char *name,
		       size_t len, char *buf, struct mix_mbox_name_component *c,
		       uint32_t *n_r)
{
	uint32_t i;
	int ret;

	if (name == NULL)
		return mix_err(MIX_EINVAL, "mailbox name: NULL");
	if ((ret = mix_mbox_name_normalize(name, len, list->sep, buf,
					   MIX_MBOX_NAME_MAX_LEN + 1)) < 0 ||
	    (ret = mix_mbox_name_split(buf, len, list->sep, c,
				       MIX_MBOX_NAME_MAX_DEPTH, n_r)) < 0)
		return ret;
	for (i = 0; i < *n_r; i++)
		if (c[i].len > MIX_LIST_COMPONENT_MAX)
			return mix_err(MIX_EINVAL, "mailbox name: component "
				       "longer than %u bytes at byte %u",
				       MIX_LIST_COMPONENT_MAX, c[i].offset);
	return 0;
}

const struct mlent *mlist_resolve(const struct mlver *v, const char *buf,
				  const struct mix_mbox_name_component *c,
				  uint32_t n, uint32_t *depth_r)
{
	const struct mlent *e = NULL;
	uint32_t i, p = 0;

	for (i = 0; i < n; i++) {
		e = mlist_find(v, p, buf + c[i].offset, c[i].len);
		if (e == NULL)
			break;
		p = e->id;
	}
	if (depth_r != NULL)
		*depth_r = i;
	return e;
}

/* ---- open and close ----------------------------------------------------- */

/* Check the header, or write it (and a UIDVALIDITY) into a new index. */
static int hdr_prepare(struct mix_list *list)
{
	uint8_t h[MLIST_HDR_SIZE], zero[MLIST_HDR_SIZE] = { 0 };
	const uint8_t *d;
	struct mix_txn *txn;
	size_t size = 0;
	int ret;

	mix_read_lock();
	d = mix_snap_ext_hdr(mix_index_snap(list->index), list->ext_id, &size);
	if (d != NULL && size == MLIST_HDR_SIZE)
		memcpy(h, d, sizeof(h));
	mix_read_unlock();
	if (d == NULL || size != MLIST_HDR_SIZE)
		return mix_err(MIX_ECORRUPT, "%s: %s header is %zu bytes, "
			       "expected %u", list->dir, MLIST_EXT, size,
			       MLIST_HDR_SIZE);
	if (memcmp(h, zero, sizeof(h)) == 0 && list->readonly)
		return mix_err(MIX_ENOTFOUND, "%s: no mailbox list yet (its "
			       "writer has not set it up)", list->dir);
	if (memcmp(h, zero, sizeof(h)) != 0) {
		if (mix_get_u32(h) != MLIST_MAGIC || mix_get_u32(h + 4) != MLIST_VERSION)
			return mix_err(MIX_ECORRUPT, "%s: %s header offset 0: "
				       "magic 0x%08x version %u, expected "
				       "0x%08x %u", list->dir, MLIST_EXT,
				       mix_get_u32(h), mix_get_u32(h + 4), MLIST_MAGIC,
				       MLIST_VERSION);
		if ((char)h[8] != list->sep)
			return mix_err(MIX_EINVAL, "%s: the list index uses "
				       "separator '%c', not '%c'", list->dir,
				       h[8], list->sep);
		return 0;
	}
	mix_put_u32(h, MLIST_MAGIC);
	mix_put_u32(h + 4, MLIST_VERSION);
	h[8] = (uint8_t)list->sep;
	if ((ret = mix_txn_begin(list->index, &txn)) < 0)
		return ret;
	if ((ret = mix_txn_ext_hdr_set(txn, list->ext_id, 0, h,
				       sizeof(h))) < 0 ||
	    (ret = mix_txn_hdr_set(txn, MIX_HDR_UID_VALIDITY,
				   (uint32_t)time(NULL) | 1)) < 0) {
		mix_txn_abort(&txn);
		return ret;
	}
	return mix_txn_commit(&txn, MIX_DURABILITY_SYNC, NULL);
}

/* The mlist extension: registered by a writer (a no-op once it exists),
 * looked up by a read-only open, which writes nothing. */
static int ext_find(struct mix_list *list)
{
	int found;

	if (!list->readonly)
		return mix_index_ext_register(list->index, MLIST_EXT,
					      MLIST_REC_SIZE, 8, MLIST_HDR_SIZE,
					      &list->ext_id);
	mix_read_lock();
	found = mix_snap_ext_lookup(mix_index_snap(list->index), MLIST_EXT,
				    &list->ext_id);
	mix_read_unlock();
	return found ? 0 : mix_err(MIX_ENOTFOUND, "%s: no mailbox list "
				   "yet (no %s extension)", list->dir,
				   MLIST_EXT);
}

/* ---- read-only followers --------------------------------------------------- */

MIX_API int mix_list_refresh(struct mix_list *list)
{
	int ret;

	if (!list->readonly)
		return mix_err(MIX_EINVAL, "%s: refresh is for read-only "
			       "opens; a writable list is always current",
			       list->dir);
	if ((ret = mix_index_refresh(list->index)) < 0)
		return ret;
	pthread_mutex_lock(&list->wlock);
	/* a reload that failed before left the index ahead of the version:
	 * try again even when the index has nothing newer (the writer may
	 * have repaired nothing, but the follower must not stay behind
	 * silently) */
	if (ret == 0 && !list->ro_behind) {
		pthread_mutex_unlock(&list->wlock);
		return 0;
	}
	ret = reload_version(list);
	list->ro_behind = ret < 0;
	pthread_mutex_unlock(&list->wlock);
	return ret < 0 ? ret : 1;
}

static void list_free(struct mix_list *list)
{
	pthread_mutex_destroy(&list->wlock);
	pthread_mutex_destroy(&list->pub_lock);
	pthread_mutex_destroy(&list->done_lock);
	pthread_cond_destroy(&list->done_cond);
	pthread_mutex_destroy(&list->att_lock);
	free(list->dir);
	free(list);
}

MIX_API int mix_list_open(struct mix_engine *engine, const char *dir,
			  const struct mix_list_config *cfg,
			  struct mix_list **list_r)
{
	struct mix_list_config def;
	struct mix_list *list;
	struct mlver *v;
	int ret;

	if (cfg == NULL) {
		mix_list_config_init(&def);
		cfg = &def;
	}
	if ((ret = mix_mbox_name_sep_check(cfg->separator)) < 0)
		return ret;
	if (cfg->open_flags & MIX_OPEN_RECREATE)
		return mix_err(MIX_EINVAL, "%s: mailbox list open flags 0x%x: "
			       "RECREATE is not supported", dir,
			       cfg->open_flags);
	if ((list = calloc(1, sizeof(*list))) == NULL ||
	    (list->dir = strdup(dir)) == NULL) {
		free(list);
		return MIX_ENOMEM();
	}
	list->engine = engine;
	list->sep = cfg->separator;
	list->readonly = (cfg->open_flags & MIX_OPEN_READONLY) != 0;
	list->durability = cfg->durability;
	list->warning = cfg->warning;
	list->warning_ctx = cfg->warning_ctx;
	pthread_mutex_init(&list->wlock, NULL);
	pthread_mutex_init(&list->pub_lock, NULL);
	pthread_mutex_init(&list->done_lock, NULL);
	pthread_cond_init(&list->done_cond, NULL);
	pthread_mutex_init(&list->att_lock, NULL);
	if ((ret = mix_index_open(engine, dir, cfg->open_flags,
				  &list->index)) < 0)
		goto fail;
	if ((ret = ext_find(list)) < 0 ||
	    (ret = hdr_prepare(list)) < 0 ||
	    (ret = load_version(list, 1, &v)) < 0) {
		mix_index_close(&list->index);
		goto fail;
	}
	list->pub = list->wver = v;
	*list_r = list;
	return 0;
fail:
	list_free(list);
	return ret;
}

MIX_API int mix_list_close(struct mix_list **listp)
{
	struct mix_list *list = listp ? *listp : NULL;
	int ret, r2;

	if (list == NULL)
		return 0;
	ret = mlist_att_close(list);
	wait_idle(list);
	drop_unpublished(list);
	/* no reader may use the list any more (the caller's contract); the
	 * deferred retires touch no list state, wait for them anyway */
	mix_rcu_synchronize();
	mix_rcu_barrier();
	mlist_ver_free_all(list->pub);
	mlist_att_free_set(list);
	r2 = mix_index_close(&list->index);
	if (ret == 0)
		ret = r2;
	list_free(list);
	*listp = NULL;
	return ret;
}

MIX_API struct mix_index *mix_list_index(struct mix_list *list)
{
	return list->index;
}
