/*
 * Watchers (docs/api.md "Watchers"): eventfds that become readable after
 * an index publishes a snapshot, for IMAP IDLE and epoll-based servers;
 * and the publish hook through which layers of the library (the mailbox
 * list's STATUS cache) learn of each publish.
 *
 * Each watcher has its own eventfd and an `armed` flag.  After a publish
 * the publisher writes to every armed watcher's eventfd and disarms it,
 * so a burst of commits costs one write per waiting session, not one per
 * commit.  The session re-arms (draining the fd) before it syncs its view.
 *
 * ORDER(watch): publisher: seq_cst store of index->snap, then seq_cst
 * exchange of armed.  Watcher: seq_cst store of armed, then seq_cst load
 * of index->snap (mix_watch_rearm), then its view sync.  One of the two
 * sees the other: either the watcher's sync sees the snapshot or the
 * publisher sees the armed flag and writes the eventfd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "err.h"
#include "index.h"
#include "watch.h"

struct mix_watch {
	struct mix_index *idx;
	int fd;
	int armed;   /* atomic */
};

MIX_API int mix_watch_open(struct mix_index *idx, struct mix_watch **w_r)
{
	struct mix_watch *w = calloc(1, sizeof(*w));
	int ret = 0;

	*w_r = NULL;
	if (!w)
		return MIX_ENOMEM();
	w->idx = idx;
	w->armed = 1;
	w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->fd < 0) {
		ret = mix_err_sys("eventfd");
		free(w);
		return ret;
	}
	pthread_mutex_lock(&idx->watch_lock);
	if (idx->nwatches == idx->watches_cap) {
		uint32_t cap = idx->watches_cap ? idx->watches_cap * 2 : 8;
		void *p = realloc(idx->watches, cap * sizeof(*idx->watches));
		if (!p)
			ret = -ENOMEM;
		else {
			idx->watches = p;
			idx->watches_cap = cap;
		}
	}
	if (ret == 0) {
		idx->watches[idx->nwatches] = w;
		/* ORDER(watch): seq_cst, read by mix_watch_notify
		 * without the lock after its seq_cst publish: a publish
		 * that misses the new watcher is one whose snapshot the
		 * watcher's first sync sees (it starts armed) */
		__atomic_store_n(&idx->nwatches, idx->nwatches + 1,
				 __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&idx->watch_lock);
	if (ret < 0) {
		close(w->fd);
		free(w);
		return ret;
	}
	__atomic_add_fetch(&idx->users, 1, __ATOMIC_RELAXED);
	*w_r = w;
	return 0;
}

MIX_API int mix_watch_fd(struct mix_watch *w)
{
	return w->fd;
}

MIX_API void mix_watch_rearm(struct mix_watch *w)
{
	uint64_t v;
	while (read(w->fd, &v, sizeof(v)) == sizeof(v))
		;
	__atomic_store_n(&w->armed, 1, __ATOMIC_SEQ_CST);
	/* ORDER(watch): the armed store is ordered before the caller's next
	 * look at the published snapshot */
	(void)__atomic_load_n(&w->idx->snap, __ATOMIC_SEQ_CST);
}

MIX_API void mix_watch_close(struct mix_watch **wp)
{
	struct mix_watch *w = *wp;
	struct mix_index *idx;
	uint32_t i;

	if (!w)
		return;
	*wp = NULL;
	idx = w->idx;
	pthread_mutex_lock(&idx->watch_lock);
	for (i = 0; i < idx->nwatches; i++) {
		if (idx->watches[i] == w) {
			idx->watches[i] = idx->watches[idx->nwatches - 1];
			/* ORDER(watch): as in mix_watch_open */
			__atomic_store_n(&idx->nwatches, idx->nwatches - 1,
					 __ATOMIC_SEQ_CST);
			break;
		}
	}
	pthread_mutex_unlock(&idx->watch_lock);
	close(w->fd);
	free(w);
	/* ORDER(users): release: this watcher's last use of idx happens
	 * before a close that sees the count drop (its acquire load in
	 * mix_index_close) frees idx */
	__atomic_sub_fetch(&idx->users, 1, __ATOMIC_RELEASE);
}

int mix_index_set_publish_hook(struct mix_index *idx, mix_publish_hook_fn *fn,
			       void *ctx)
{
	int ret = 0;

	pthread_mutex_lock(&idx->watch_lock);
	if (fn != NULL && idx->pub_hook != NULL)
		ret = mix_err(MIX_EINVAL, "%s: the index already has a "
			      "publish hook", idx->dir);
	else {
		idx->pub_hook = fn;
		idx->pub_hook_ctx = ctx;
		/* ORDER(pub-hook): relaxed is enough: the publisher reads
		 * the hook itself under watch_lock; a publish that misses a
		 * hook being set sees the next one (the caller reads the
		 * current snapshot itself after setting it) */
		__atomic_store_n(&idx->has_hook, fn != NULL,
				 __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&idx->watch_lock);
	return ret;
}

/* The publish hook, under watch_lock so that clearing it waits for a call
 * in progress. */
static void call_hook(struct mix_index *idx)
{
	if (!__atomic_load_n(&idx->has_hook, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&idx->watch_lock);
	if (idx->pub_hook != NULL)
		idx->pub_hook(idx->pub_hook_ctx, idx, idx->snap);
	pthread_mutex_unlock(&idx->watch_lock);
}

void mix_watch_notify(struct mix_index *idx)
{
	static const uint64_t one = 1;
	uint32_t i;

	call_hook(idx);
	/* ORDER(watch): after the seq_cst publish of idx->snap; pairs
	 * with the seq_cst stores of nwatches in open and close */
	if (__atomic_load_n(&idx->nwatches, __ATOMIC_SEQ_CST) == 0)
		return;
	pthread_mutex_lock(&idx->watch_lock);
	for (i = 0; i < idx->nwatches; i++) {
		struct mix_watch *w = idx->watches[i];
		if (__atomic_exchange_n(&w->armed, 0, __ATOMIC_SEQ_CST) &&
		    write(w->fd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is full, so it is readable */
		}
	}
	pthread_mutex_unlock(&idx->watch_lock);
}
