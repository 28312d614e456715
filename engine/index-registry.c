/*
 * The open registry: a second writable open of a directory that an
 * engine already has open for writing returns the same index, counted
 * (issue 14 item 6; docs/api.md "Opening an index twice").
 *
 * A mail server opens a mailbox once per session; before this, the
 * second session's open failed with MIX_ELOCKED naming the server's own
 * pid, and every server kept its own cache of open mailboxes.  Now
 * mix_index_open() looks the directory up (by device and inode, so any
 * spelling of the path finds it) in a process-wide list:
 *
 * - open for writing in the same engine: the same struct mix_index is
 *   returned with one more reference.  Every call takes the same index,
 *   so views, watchers, transactions and extensions need nothing new: a
 *   commit through one handle is seen through the other at once (one
 *   snapshot).  mix_index_close() drops a reference; the last one closes
 *   (checkpoint, lock released) as before, and only that one is refused
 *   while views or watchers are open.
 * - MIX_OPEN_RECREATE or MIX_OPEN_SALVAGE while it is open: MIX_ELOCKED
 *   (replacing or salvaging an index other handles use is not something
 *   to do behind their back); close it first.
 * - open for writing in another engine of this process: MIX_ELOCKED at
 *   once, saying so (two engines would be two writers of one index).
 * - being opened or closed by another thread: wait for that to finish,
 *   then look again.
 * Read-only opens are not registered and never shared: a read-only
 * handle is a follower of its own (docs/api.md "Other processes"), and
 * returning the writable index would let it write.
 *
 * Threads: any; the list is guarded by one mutex, held only to look up
 * and update entries, never across an open or a close.  Fork: the
 * child gets a fresh mutex and condition variable and an empty list
 * (it may use no handle of the parent's, docs/design.md "Fork and the
 * reclaim thread").
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "err.h"
#include "index-registry.h"

enum reg_state {
	REG_OPENING,   /* mix_index_open_one() runs; idx is NULL */
	REG_OPEN,
	REG_CLOSING,   /* the last reference's mix_index_close_one() runs */
};

struct reg_entry {
	struct reg_entry *next;
	struct mix_engine *engine;
	dev_t dev;
	ino_t ino;
	struct mix_index *idx;
	unsigned refs;             /* handles given out (REG_OPEN) */
	enum reg_state state;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;    /* an entry left OPENING/CLOSING */
	struct reg_entry *head;
} reg = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL };

static struct reg_entry *find_dir(dev_t dev, ino_t ino)
{
	struct reg_entry *r;
	for (r = reg.head; r; r = r->next)
		if (r->dev == dev && r->ino == ino)
			return r;
	return NULL;
}

static struct reg_entry *find_idx(const struct mix_index *idx)
{
	struct reg_entry *r;
	for (r = reg.head; r; r = r->next)
		if (r->idx == idx)
			return r;
	return NULL;
}

static void unlink_entry(struct reg_entry *ent)
{
	struct reg_entry **p;
	for (p = &reg.head; *p; p = &(*p)->next)
		if (*p == ent) {
			*p = ent->next;
			break;
		}
	free(ent);
	pthread_cond_broadcast(&reg.changed);
}

/* Under reg.lock: an entry for the directory may be used (found), or
 * the caller opens it itself (*ent_r: a new OPENING entry).  Waits while
 * another thread opens or closes it. */
static int lookup(struct mix_engine *e, const char *dir, const struct stat *st,
		  unsigned flags, struct mix_index **idx_r,
		  struct reg_entry **ent_r)
{
	struct reg_entry *r;

	while ((r = find_dir(st->st_dev, st->st_ino)) &&
	       r->state != REG_OPEN)
		pthread_cond_wait(&reg.changed, &reg.lock);
	if (r && r->engine != e)
		return mix_err(MIX_ELOCKED, "%s: open for writing by another "
			       "engine of this process (pid %ld)", dir,
			       (long)getpid());
	if (r && (flags & (MIX_OPEN_RECREATE | MIX_OPEN_SALVAGE)))
		return mix_err(MIX_ELOCKED, "%s: open for writing in this "
			       "engine (%u handles); MIX_OPEN_%s needs it "
			       "closed first", dir, r->refs,
			       (flags & MIX_OPEN_RECREATE) ? "RECREATE" :
			       "SALVAGE");
	if (r) {
		r->refs++;
		*idx_r = r->idx;
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return MIX_ENOMEM();
	r->engine = e;
	r->dev = st->st_dev;
	r->ino = st->st_ino;
	r->state = REG_OPENING;
	r->next = reg.head;
	reg.head = r;
	*ent_r = r;
	return 0;
}

/* The open has finished: idx, or NULL when it failed. */
static void open_done(struct reg_entry *ent, struct mix_index *idx)
{
	pthread_mutex_lock(&reg.lock);
	if (!idx) {
		unlink_entry(ent);
	} else {
		ent->idx = idx;
		ent->refs = 1;
		ent->state = REG_OPEN;
		pthread_cond_broadcast(&reg.changed);
	}
	pthread_mutex_unlock(&reg.lock);
}

MIX_API int mix_index_open(struct mix_engine *e, const char *dir,
			   unsigned flags, struct mix_index **idx_r)
{
	struct reg_entry *ent = NULL;
	struct stat st;
	int ret;

	*idx_r = NULL;
	/* read-only opens (and bad flags), and directories that are not
	 * there (the open reports it), are nobody's to share */
	if (!e || !dir || (flags & ~(unsigned)(MIX_OPEN_CREATE |
			MIX_OPEN_RECREATE | MIX_OPEN_SALVAGE)) ||
	    stat(dir, &st) < 0)
		return mix_index_open_one(e, dir, flags, idx_r);
	pthread_mutex_lock(&reg.lock);
	ret = lookup(e, dir, &st, flags, idx_r, &ent);
	pthread_mutex_unlock(&reg.lock);
	if (ret < 0 || *idx_r)
		return ret;
	ret = mix_index_open_one(e, dir, flags, idx_r);
	open_done(ent, *idx_r);
	return ret;
}

MIX_API int mix_index_close(struct mix_index **idxp)
{
	struct mix_index *idx = *idxp;
	struct reg_entry *ent;
	int ret;

	if (!idx)
		return 0;
	pthread_mutex_lock(&reg.lock);
	ent = find_idx(idx);
	if (ent && ent->refs > 1) {
		/* another handle remains: only this reference goes */
		ent->refs--;
		pthread_mutex_unlock(&reg.lock);
		*idxp = NULL;
		return 0;
	}
	if (ent)
		ent->state = REG_CLOSING;
	pthread_mutex_unlock(&reg.lock);

	ret = mix_index_close_one(idxp);
	if (!ent)
		return ret;
	pthread_mutex_lock(&reg.lock);
	if (*idxp) {
		/* refused (views open, no memory): still open, one handle */
		ent->state = REG_OPEN;
		pthread_cond_broadcast(&reg.changed);
	} else {
		unlink_entry(ent);
	}
	pthread_mutex_unlock(&reg.lock);
	return ret;
}

/* ---- fork ---------------------------------------------------------------- */

void mix_registry_fork_prepare(void)
{
	pthread_mutex_lock(&reg.lock);
}

void mix_registry_fork_parent(void)
{
	pthread_mutex_unlock(&reg.lock);
}

void mix_registry_fork_child(void)
{
	struct reg_entry *r, *next;

	/* the parent's handles are not the child's: forget them (the
	 * memory they point to is the parent's copy, left alone) */
	for (r = reg.head; r; r = next) {
		next = r->next;
		free(r);
	}
	reg.head = NULL;
	/* threads that waited in the parent do not exist here */
	pthread_cond_init(&reg.changed, NULL);
	pthread_mutex_unlock(&reg.lock);
}

