/*
 * The power-loss simulator's mailbox-list mode (powercut --list;
 * docs/reliability.md "Power-loss simulation", docs/mailbox-list.md
 * "Power cuts").  Header-only, included after stress/powercut.h by
 * stress/powercut.c and tests/test-powercut.c; it plugs a workload and a
 * check into struct pc_opts (workload, check), and reuses the rest: the
 * trace of the engine's file-system calls, the file-system model and the
 * enumeration of crash states at every cut point.
 *
 * Workload: a mailbox list (engine/mlist*.c) in the traced directory,
 * opened with MIX_DURABILITY_SYNC or NONE (drawn per session), taking
 * random creates (with placeholder parents), deletes, renames of
 * subtrees and of INBOX, subscriptions, special-use changes and storage
 * syncs; sessions end with a close and start with a reopen; mailboxes
 * (in untraced directories beside it) are attached, take commits, are
 * flushed and detached, or stay attached over the list's close.  Each
 * successful change is a step (a SYNC one is durable when acknowledged;
 * attach is always SYNC); its state is a digest of the list index's raw
 * records (UID and the whole mlist record: parent, flags, GUID, STATUS
 * fields and marks, name) and mlist header (the change counter).
 *
 * Check of a crash state (its lock file names another boot: a power
 * cut is a reboot, so recovery applies the UID floor): a read-only open
 * of the index must show the
 * state after some step between the last durable one and the last one
 * started (every acknowledged SYNC change is there, a NONE one whole or
 * absent; the digests compare whole records, so a chained change that
 * lost its predecessor shows as a state of no step); mix_list_open must
 * succeed (it validates every record: no child without its parent, no
 * duplicate name, no cycle) and not change that state; every record must
 * be reachable by the children walk from the top; one more SYNC create
 * must get an id above every id acknowledged before the cut (counted as
 * uid_reuse) and be there after a reopen.
 *
 * Single-threaded apart from the engine's writer.
 */
#ifndef MIX_POWERCUT_LIST_H
#define MIX_POWERCUT_LIST_H

#include "mix/list.h"
#include "powercut.h"

struct pcl_work {
	struct mix_list *list;
	enum mix_durability dur;
	struct mix_index *box;      /* the attached mailbox, or NULL */
	uint32_t box_id;
	char boxdir[4200];
	uint32_t nboxdirs;
};

/* The list index's records and mlist header, hashed; hdr_zero_r: the
 * header is missing or all zeros (mix_list_open writes it). */
static inline void pcl_digest(struct mix_index *ix, uint64_t d[5],
			      int *hdr_zero_r)
{
	static const uint8_t zero[16];
	const struct mix_snap *s;
	struct mix_iter it;
	struct mix_record r;
	uint32_t ext = 0;
	uint64_t h = PC_FNV0;
	int has;

	mix_read_lock();
	s = mix_index_snap(ix);
	has = mix_snap_ext_lookup(s, "mlist", &ext);
	PC_HV(h, has);
	*hdr_zero_r = 1;
	if (has) {
		size_t sz = 0;
		const void *hd = mix_snap_ext_hdr(s, ext, &sz);
		if (hd) {
			h = pc_fnv(h, hd, sz);
			*hdr_zero_r = sz != 16 || memcmp(hd, zero, 16) == 0;
		}
	}
	PC_HV(h, mix_snap_messages_count(s));
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r)) {
		size_t sz = 0;
		const void *rd = has ? mix_record_ext(s, &r, ext, &sz) : NULL;
		PC_HV(h, r.uid);
		PC_HV(h, r.flags);
		if (rd)
			h = pc_fnv(h, rd, sz);
	}
	d[0] = d[1] = h;
	d[2] = mix_snap_next_uid(s);
	d[3] = 0;
	d[4] = 0;
	mix_read_unlock();
}

static inline struct pcl_work *pcl_of(struct pc_work *w)
{
	return w->user;
}

/* End step j with the live list's state. */
static inline void pcl_step_end(struct pc_work *w, size_t j)
{
	struct pc_step *s = &w->t->steps[j];
	struct pcl_work *p = pcl_of(w);
	uint64_t d[5];
	int hz;

	s->ack_ev = pc_trace_len(w->t);
	/* a change that changed nothing (subscribing a subscribed name)
	 * returns without a commit: it makes nothing durable, not even a
	 * NONE flush before it */
	if (s->kind == PC_STEP_COMMIT && s->ack_ev == s->start_ev)
		s->sync = 0;
	if (p->list == NULL) {
		/* after a close (which may have detached a mailbox): read
		 * the closed index, untraced (nothing else writes it) */
		struct mix_index *ix = NULL;
		pthread_mutex_lock(&w->t->lock);
		w->t->on = 0;
		pthread_mutex_unlock(&w->t->lock);
		if (mix_index_open(w->eng, w->dir, MIX_OPEN_READONLY,
				   &ix) < 0)
			st_die("powercut --list: read-only open after close: "
			       "%s", mix_last_error());
		pcl_digest(ix, d, &hz);
		mix_index_close(&ix);
		pthread_mutex_lock(&w->t->lock);
		w->t->on = 1;
		pthread_mutex_unlock(&w->t->lock);
	} else {
		pcl_digest(mix_list_index(p->list), d, &hz);
	}
	s->digest = d[0];
	s->digest_nm = d[1];
	s->next_uid = d[2];
	s->last_uid = (uint32_t)d[2] - 1;
	snprintf(s->hdr, sizeof(s->hdr), "next id %llu",
		 (unsigned long long)d[2]);
}

static const char *const pcl_comps[] = { "a", "b", "c", "INBOX" };

static inline void pcl_name(struct pc_work *w, char *n)
{
	uint32_t d = st_rand_range(&w->rng, 1, 3);
	n[0] = '\0';
	for (uint32_t i = 0; i < d; i++) {
		const char *c = pcl_comps[st_rand_below(&w->rng,
							i == 0 ? 4 : 3)];
		if (i > 0)
			strcat(n, "/");
		strcat(n, c);
	}
}

/* The mailboxes of the live list (for sync and attach). */
struct pcl_names {
	char n[256][64];
	uint32_t id[256];
	int count;
};

static inline int pcl_collect(void *ctx, const struct mix_list_entry *e)
{
	struct pcl_names *s = ctx;
	if (!(e->flags & (MIX_LIST_NONEXISTENT | MIX_LIST_NOSELECT)) &&
	    s->count < 256 && e->name_len < 64) {
		snprintf(s->n[s->count], 64, "%s", e->name);
		s->id[s->count++] = e->id;
	}
	return 0;
}

static inline void pcl_mailboxes(struct mix_list *l, struct pcl_names *s)
{
	struct mix_mbox_pattern *pat;
	s->count = 0;
	if (mix_mbox_name_pattern_new("", 0, "*", 1, '/', &pat) < 0)
		return;
	mix_list_walk(l, pat, 0, pcl_collect, s);
	mix_mbox_name_pattern_free(&pat);
}

struct pcl_sync {
	struct pcl_names *s;
	int i;
};

static inline int pcl_next(void *ctx, const char **name_r, size_t *len_r,
			   const uint8_t **guid_r)
{
	struct pcl_sync *y = ctx;
	if (y->i == y->s->count)
		return 0;
	*name_r = y->s->n[y->i++];
	*len_r = strlen(*name_r);
	*guid_r = NULL;
	return 1;
}

static inline int pcl_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* A storage sync naming about 80% of the mailboxes and one new name. */
static inline int pcl_sync(struct pc_work *w, struct mix_list *l)
{
	static struct pcl_names s, keep;
	struct pcl_sync y = { &keep, 0 };
	pcl_mailboxes(l, &s);
	keep.count = 0;
	for (int i = 0; i < s.count; i++)
		if (st_chance(&w->rng, 80))
			memcpy(keep.n[keep.count++], s.n[i], 64);
	if (keep.count < 256)
		pcl_name(w, keep.n[keep.count++]);
	qsort(keep.n, (size_t)keep.count, 64, pcl_cmp);
	for (int i = 1; i < keep.count; i++)   /* each name once */
		if (strcmp(keep.n[i], keep.n[i - 1]) == 0) {
			memmove(keep.n[i], keep.n[i + 1],
				(size_t)(keep.count - i - 1) * 64);
			keep.count--, i--;
		}
	return mix_list_sync(l, NULL, 0, pcl_next, &y, NULL);
}

/* One random change as a step (failed ones changed nothing: no step). */
static inline int pcl_change(struct pc_work *w)
{
	struct pcl_work *p = pcl_of(w);
	struct mix_list *l = p->list;
	char a[32], b[32], what[96];
	uint32_t k = st_rand_below(&w->rng, 100), id;
	size_t j;
	int ret;

	pcl_name(w, a);
	pcl_name(w, b);
	if (k < 40)
		snprintf(what, sizeof(what), "create %s", a);
	else if (k < 55)
		snprintf(what, sizeof(what), "delete %s", a);
	else if (k < 72) {
		if (st_chance(&w->rng, 15))
			strcpy(a, "INBOX");
		snprintf(what, sizeof(what), "rename %s %s", a, b);
	} else if (k < 84)
		snprintf(what, sizeof(what), "subscribe %s", a);
	else if (k < 92)
		snprintf(what, sizeof(what), "special-use %s", a);
	else
		snprintf(what, sizeof(what), "sync");
	snprintf(what + strlen(what), sizeof(what) - strlen(what), " (%s)",
		 p->dur == MIX_DURABILITY_SYNC ? "SYNC" : "NONE");
	j = pc_step_begin(w->t, PC_STEP_COMMIT, what);
	w->t->steps[j].sync = p->dur == MIX_DURABILITY_SYNC;
	if (k < 40)
		ret = mix_list_create(l, a, strlen(a), NULL, &id);
	else if (k < 55)
		ret = mix_list_delete(l, a, strlen(a));
	else if (k < 72)
		ret = mix_list_rename(l, a, strlen(a), b, strlen(b), NULL,
				      &id);
	else if (k < 84)
		ret = mix_list_subscribe(l, a, strlen(a),
					 (int)st_rand_below(&w->rng, 2));
	else if (k < 92)
		ret = mix_list_set_special_use(l, a, strlen(a),
					       MIX_LIST_ALL <<
					       st_rand_below(&w->rng, 7));
	else
		ret = pcl_sync(w, l);
	if (ret == -EEXIST || ret == MIX_ENOTFOUND || ret == MIX_EINVAL) {
		w->t->nsteps--;          /* refused: nothing was written */
		return 0;
	}
	if (ret < 0)
		return pc_work_fail(w, what, ret);
	pcl_step_end(w, j);
	return 0;
}

static inline int pcl_open(struct pc_work *w, int create)
{
	struct pcl_work *p = pcl_of(w);
	struct mix_list_config cfg;
	size_t j;
	int ret;

	p->dur = st_chance(&w->rng, 50) ? MIX_DURABILITY_SYNC
					: MIX_DURABILITY_NONE;
	j = pc_step_begin(w->t, create ? PC_STEP_CREATE : PC_STEP_OPEN,
			  p->dur == MIX_DURABILITY_SYNC ? "list open (SYNC)"
							: "list open (NONE)");
	mix_list_config_init(&cfg);
	cfg.durability = p->dur;
	if ((ret = mix_list_open(w->eng, w->dir, &cfg, &p->list)) < 0)
		return pc_work_fail(w, "mix_list_open", ret);
	pcl_step_end(w, j);
	return 0;
}

/* Close the list (detaching a mailbox still attached), then the
 * mailbox. */
static inline int pcl_close(struct pc_work *w)
{
	struct pcl_work *p = pcl_of(w);
	size_t j = pc_step_begin(w->t, PC_STEP_CLOSE, p->box ?
				 "list close (a mailbox attached)" :
				 "list close");
	int ret = mix_list_close(&p->list);
	if (ret < 0)
		return pc_work_fail(w, "mix_list_close", ret);
	pcl_step_end(w, j);
	if (p->box && (ret = mix_index_close(&p->box)) < 0)
		return pc_work_fail(w, "mailbox close", ret);
	p->box = NULL;
	return 0;
}

/* Commits to the attached mailbox (untraced: not a list step; the hook
 * changes only the in-memory slot). */
static inline int pcl_box_commit(struct pc_work *w)
{
	struct pcl_work *p = pcl_of(w);
	struct mix_txn *t;
	int ret = mix_txn_begin(p->box, &t);
	for (uint32_t n = st_rand_range(&w->rng, 1, 3); ret == 0 && n > 0; n--)
		ret = mix_txn_append(t, st_chance(&w->rng, 50) ?
				     MIX_FLAG_SEEN : 0, NULL, NULL);
	if (ret == 0)
		ret = mix_txn_commit(&t, st_chance(&w->rng, 50) ?
				     MIX_DURABILITY_SYNC :
				     MIX_DURABILITY_NONE, NULL);
	else
		mix_txn_abort(&t);
	return ret < 0 ? pc_work_fail(w, "mailbox commit", ret) : 0;
}

/* Attach a mailbox (SYNC step), commit to it, maybe flush (NONE step);
 * detach now (step) or leave it attached over the next close. */
static inline int pcl_attach(struct pc_work *w)
{
	static struct pcl_names s;
	struct pcl_work *p = pcl_of(w);
	char what[64];
	size_t j;
	int ret;

	if (p->box)
		return 0;
	pcl_mailboxes(p->list, &s);
	if (s.count == 0)
		return 0;
	p->box_id = s.id[st_rand_below(&w->rng, (uint32_t)s.count)];
	snprintf(p->boxdir, sizeof(p->boxdir), "%s/mbox-%u", w->base,
		 p->box_id);
	mkdir(p->boxdir, 0700);
	if ((ret = mix_index_open(w->eng, p->boxdir, MIX_OPEN_CREATE,
				  &p->box)) < 0)
		return pc_work_fail(w, "mailbox open", ret);
	snprintf(what, sizeof(what), "attach %u (SYNC)", p->box_id);
	j = pc_step_begin(w->t, PC_STEP_COMMIT, what);
	w->t->steps[j].sync = 1;
	if ((ret = mix_list_attach(p->list, p->box_id, p->box)) < 0)
		return pc_work_fail(w, what, ret);
	pcl_step_end(w, j);
	if (pcl_box_commit(w) < 0)
		return -1;
	if (st_chance(&w->rng, 50)) {
		j = pc_step_begin(w->t, PC_STEP_COMMIT, "flush (NONE)");
		if ((ret = mix_list_flush(p->list)) < 0)
			return pc_work_fail(w, "flush", ret);
		pcl_step_end(w, j);
	}
	if (st_chance(&w->rng, 30))
		return 0;                /* stays attached until the close */
	snprintf(what, sizeof(what), "detach %u (%s)", p->box_id,
		 p->dur == MIX_DURABILITY_SYNC ? "SYNC" : "NONE");
	j = pc_step_begin(w->t, PC_STEP_COMMIT, what);
	w->t->steps[j].sync = p->dur == MIX_DURABILITY_SYNC;
	if ((ret = mix_list_detach(p->list, p->box_id)) < 0)
		return pc_work_fail(w, what, ret);
	pcl_step_end(w, j);
	if ((ret = mix_index_close(&p->box)) < 0)
		return pc_work_fail(w, "mailbox close", ret);
	p->box = NULL;
	return 0;
}

/* The workload: sessions of list changes until ops steps were made. */
static inline int pcl_workload(struct pc_work *w, unsigned ops)
{
	struct pcl_work p = { 0 };
	int ret = 0, created = 0;

	w->user = &p;
	while (ret == 0 && w->t->nsteps < ops) {
		uint32_t n = st_rand_range(&w->rng, 0, 14);
		if ((ret = pcl_open(w, !created)) < 0)
			break;
		if (!created) {
			size_t j = pc_step_begin(w->t, PC_STEP_COMMIT,
						 "create INBOX");
			w->t->steps[j].sync = p.dur == MIX_DURABILITY_SYNC;
			if ((ret = mix_list_create(p.list, "INBOX", 5, NULL,
						   NULL)) < 0) {
				ret = pc_work_fail(w, "create INBOX", ret);
				break;
			}
			pcl_step_end(w, j);
			created = 1;
		}
		for (uint32_t i = 0; i < n && ret == 0; i++)
			ret = st_chance(&w->rng, 8) ? pcl_attach(w)
						    : pcl_change(w);
		if (ret == 0)
			ret = pcl_close(w);
	}
	if (p.list)
		mix_list_close(&p.list);
	if (p.box)
		mix_index_close(&p.box);
	/* the mailboxes are not part of the traced state */
	{
		char d[4200];
		for (uint32_t id = 1; id < 4096; id++) {
			snprintf(d, sizeof(d), "%s/mbox-%u", w->base, id);
			if (access(d, F_OK) == 0)
				st_rmdir_r(d);
		}
	}
	w->user = NULL;
	return ret;
}

struct pcl_kids {
	uint32_t id[512];
	uint32_t n;
};

static inline int pcl_kid(void *ctx, const struct mix_list_entry *e)
{
	struct pcl_kids *k = ctx;
	if (k->n < 512)
		k->id[k->n++] = e->id;
	return 0;
}

/* How many entries the children walk reaches below id. */
static inline uint32_t pcl_reachable(struct mix_list *l, uint32_t id)
{
	struct pcl_kids *k = calloc(1, sizeof(*k));
	uint32_t n = 0;

	if (k == NULL)
		st_die("out of memory");
	mix_list_children(l, id, pcl_kid, k);
	for (uint32_t i = 0; i < k->n; i++)
		n += 1 + pcl_reachable(l, k->id[i]);
	free(k);
	return n;
}

/* A power cut is a reboot: the lock file names another boot, so the
 * recovery applies the UID floor (format.md §2.7) as after a real one
 * (the traced lock file names this process's boot). */
static inline void pcl_other_boot(const char *dir)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/mix.index.lock", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		st_die("powercut --list: %s: %s", path, strerror(errno));
	if (write(fd, "1 another-boot\n", 15) != 15)
		st_die("powercut --list: write %s", path);
	close(fd);
}

/* The check of one crash state (see the top). */
static int pcl_check(struct pc_run *r, struct pc_trace *nt, char *err,
		     size_t esize)
{
	struct mix_index *ix = NULL;
	struct mix_list *l = NULL;
	struct mix_list_info info;
	uint64_t d_ro[5], d_rw[5];
	uint32_t id = 0, records, reach;
	long j;
	int ret, hz, hz2;

	(void)nt;
	pc_warnings[0] = '\0';
	pcl_other_boot(r->state);
	ret = mix_index_open(r->eng, r->state, MIX_OPEN_READONLY, &ix);
	if (ret == MIX_ENOTFOUND && !r->must_exist) {
		r->tot->no_index++;
		return 0;
	}
	if (ret < 0) {
		r->tot->open_fail++;
		snprintf(err, esize, "read-only index open: %s (%s)",
			 mix_strerror(ret), mix_last_error());
		return -1;
	}
	pcl_digest(ix, d_ro, &hz);
	mix_index_close(&ix);
	/* the creating open not yet acknowledged: its index may lack the
	 * mlist extension or its header (mix_list_open writes them) */
	if (hz && r->t->nsteps > 0 && r->t->steps[0].ack_ev > r->cut)
		j = 0;
	else if ((j = pc_match_state(r, "read-only", d_ro, err, esize)) < 0)
		return -1;
	ret = mix_list_open(r->eng, r->state, NULL, &l);
	if (ret < 0) {
		r->tot->open_fail++;
		snprintf(err, esize, "mix_list_open: %s (%s) [the state of "
			 "step %ld, %s]", mix_strerror(ret), mix_last_error(),
			 j, r->t->steps[j].what);
		return -1;
	}
	pcl_digest(mix_list_index(l), d_rw, &hz2);
	if (!hz && d_rw[0] != d_ro[0]) {
		r->tot->mismatch++;
		snprintf(err, esize, "mix_list_open changed the records of "
			 "the state of step %ld (%s)", j, r->t->steps[j].what);
		mix_list_close(&l);
		return -1;
	}
	mix_read_lock();
	records = mix_snap_messages_count(mix_index_snap(mix_list_index(l)));
	mix_read_unlock();
	reach = pcl_reachable(l, 0);
	if (reach != records) {
		snprintf(err, esize, "%u records, %u reachable from the top "
			 "[state of step %ld, %s]", records, reach, j,
			 r->t->steps[j].what);
		mix_list_close(&l);
		return -1;
	}
	ret = mix_list_create(l, "pc-check", 8, NULL, &id);
	if (ret < 0) {
		snprintf(err, esize, "create after recovery: %s (%s)",
			 mix_strerror(ret), mix_last_error());
		mix_list_close(&l);
		return -1;
	}
	if (id <= r->uid_by_epoch[0]) {
		r->tot->uid_reuse++;
		if (r->o->strict_uids) {
			snprintf(err, esize, "create after recovery got id "
				 "%u, not above %u acknowledged before the "
				 "cut", id, r->uid_by_epoch[0]);
			mix_list_close(&l);
			return -1;
		}
	}
	if ((ret = mix_list_close(&l)) < 0) {
		snprintf(err, esize, "close after recovery: %s (%s)",
			 mix_strerror(ret), mix_last_error());
		return -1;
	}
	if ((ret = mix_list_open(r->eng, r->state, NULL, &l)) < 0) {
		r->tot->open_fail++;
		snprintf(err, esize, "reopen after the check's create: %s "
			 "(%s)", mix_strerror(ret), mix_last_error());
		return -1;
	}
	ret = mix_list_lookup(l, "pc-check", 8, &info);
	mix_list_close(&l);
	if (ret != 1 || info.id != id) {
		snprintf(err, esize, "reopen after the check's SYNC create: "
			 "lookup gave %d id %u, expected 1 id %u", ret,
			 ret == 1 ? info.id : 0, id);
		return -1;
	}
	return (int)j;
}

/* Switch o to the list mode. */
static inline void pcl_opts(struct pc_opts *o)
{
	o->workload = pcl_workload;
	o->check = pcl_check;
	o->mode = "list-";
	o->nested_every = 0;      /* recovery sessions: the index mode's */
	o->kill_nested_every = 0;
	o->mixctl = NULL;         /* mixctl check knows no mlist records */
}

#endif
