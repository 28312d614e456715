/*
 * Virtual mailboxes, live mode (docs/virtual.md "Live mode"): a thread
 * that follows the backends' publishes through watchers (engine/watch.c)
 * and syncs the virtual mailbox after each, so it is current within one
 * batch of any backend commit, and its own watchers (IDLE on the virtual
 * mailbox) fire without anyone polling.
 *
 * Thread: the live thread, started and stopped by the thread using the
 * struct mix_virtual.  v->lock serializes the live thread's syncs with
 * the caller's mix_virtual_sync and mix_virtual_mailbox_id; the backend
 * list cannot change while live (mix_virtual_set_backends refuses), so
 * the watchers opened at start stay the right ones.
 *
 * Invariant (no lost wake-up): every watcher is re-armed before the sync
 * that follows its wake-up reads the backends' snapshots (ORDER(watch) in
 * watch.c), so a publish after that read makes an fd readable again and
 * leads to another sync.  Watchers start armed and the thread syncs once
 * after opening them, so commits before the start are not missed either.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "err.h"
#include "virtual.h"

struct vlive {
	struct mix_virtual *v;
	unsigned flags;
	pthread_t thread;
	int stop_fd;
	struct mix_watch **w;
	uint32_t nw;
	atomic_uint_fast64_t syncs;
};

static void live_sync(struct vlive *l)
{
	int ret;

	pthread_mutex_lock(&l->v->lock);
	ret = mix_virtual_sync_locked(l->v, l->flags, NULL);
	pthread_mutex_unlock(&l->v->lock);
	if (ret < 0) {
		char msg[256];
		mix_err_copy(msg, sizeof(msg));
		mix_virtual_warn(l->v, "virtual %s: live sync failed (%s); "
				 "retried at the next backend publish",
				 l->v->dir, msg);
	}
	atomic_fetch_add(&l->syncs, 1);
}

static void *live_main(void *arg)
{
	struct vlive *l = arg;
	struct pollfd *p;
	uint32_t i;

	if ((p = calloc(l->nw + 1, sizeof(*p))) == NULL) {
		mix_virtual_warn(l->v, "virtual %s: live mode: out of memory",
				 l->v->dir);
		return NULL;
	}
	p[0].fd = l->stop_fd;
	p[0].events = POLLIN;
	for (i = 0; i < l->nw; i++) {
		p[i + 1].fd = mix_watch_fd(l->w[i]);
		p[i + 1].events = POLLIN;
	}
	live_sync(l);
	for (;;) {
		if (poll(p, l->nw + 1, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		for (i = 0; i < l->nw; i++)
			if (p[i + 1].revents)
				mix_watch_rearm(l->w[i]);
		live_sync(l);
	}
	free(p);
	return NULL;
}

static void live_free(struct vlive *l)
{
	uint32_t i;

	for (i = 0; i < l->nw; i++)
		mix_watch_close(&l->w[i]);
	free(l->w);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	free(l);
}

/* Watchers on every backend of the definition that is open. */
static int live_watch(struct vlive *l)
{
	struct mix_virtual *v = l->v;
	uint32_t i;
	int ret;

	if ((l->w = calloc(v->def_count + 1, sizeof(*l->w))) == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < v->def_count; i++) {
		if (v->def[i].index == NULL)
			continue;
		if ((ret = mix_watch_open(v->def[i].index, &l->w[l->nw])) < 0)
			return ret;
		l->nw++;
	}
	return 0;
}

MIX_API int mix_virtual_live_start(struct mix_virtual *v, unsigned flags)
{
	struct vlive *l;
	int ret;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return MIX_ENOMEM();
	l->v = v;
	l->flags = flags;
	l->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->stop_fd < 0) {
		ret = mix_err_sys("eventfd");
		free(l);
		return ret;
	}
	pthread_mutex_lock(&v->lock);
	if (v->live != NULL)
		ret = mix_err(MIX_EINVAL, "virtual %s: live mode is on "
			      "already", v->dir);
	else
		ret = live_watch(l);
	if (ret == 0 && (ret = -pthread_create(&l->thread, NULL, live_main,
					       l)) < 0)
		mix_err(ret, "virtual %s: pthread_create", v->dir);
	if (ret == 0)
		v->live = l;
	pthread_mutex_unlock(&v->lock);
	if (ret < 0)
		live_free(l);
	return ret;
}

MIX_API int mix_virtual_live_stop(struct mix_virtual *v)
{
	struct vlive *l;
	uint64_t one = 1;

	pthread_mutex_lock(&v->lock);
	l = v->live;
	pthread_mutex_unlock(&v->lock);
	if (l == NULL)
		return 0;
	if (write(l->stop_fd, &one, sizeof(one)) != sizeof(one))
		return mix_err_sys("virtual live stop: eventfd write");
	pthread_join(l->thread, NULL);
	pthread_mutex_lock(&v->lock);
	v->live = NULL;
	pthread_mutex_unlock(&v->lock);
	live_free(l);
	return 0;
}

MIX_API uint64_t mix_virtual_live_syncs(struct mix_virtual *v)
{
	uint64_t n = 0;

	pthread_mutex_lock(&v->lock);
	if (v->live != NULL)
		n = atomic_load(&v->live->syncs);
	pthread_mutex_unlock(&v->lock);
	return n;
}
