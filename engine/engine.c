/*
 * The engine: configuration, writer threads, and the public entry points
 * of the read side (docs/api.md "Engine", "Reading").
 *
 * Threads: create and free run on any application thread; free joins
 * the writer and checkpointer threads, so never inside a read-side
 * section or from a callback (those threads may be waiting for it), and
 * only once every index is closed (open_indexes, counted by index.c's
 * open and close; an index opened twice counts once, index-registry.c).
 * The read entry points (mix_read_lock/unlock, mix_index_snap) run on
 * any thread and take nothing: mix_index_snap only inside a section.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bufcache.h"
#include "checkpoint.h"
#include "engine.h"
#include "err.h"
#include "index-commit.h"
#include "index.h"

MIX_API void mix_engine_config_init(struct mix_engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->writer_threads = 1;
	cfg->log_rotate_size = 4u << 20;
	cfg->queue_max = 4096;
	cfg->expunge_history_max = 100000;
	cfg->read_stall_ms = 5000;
}

MIX_API int mix_engine_create(const struct mix_engine_config *cfg,
			      struct mix_engine **engine_r)
{
	struct mix_engine *e;
	unsigned i;
	int ret;

	*engine_r = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return MIX_ENOMEM();
	if (cfg)
		e->cfg = *cfg;
	else
		mix_engine_config_init(&e->cfg);
	if (e->cfg.writer_threads == 0 || e->cfg.writer_threads > 256 ||
	    e->cfg.log_rotate_size < 4096 ||
	    e->cfg.log_rotate_size > (1u << 30) || e->cfg.queue_max == 0) {
		free(e);
		return mix_err(MIX_EINVAL, "engine config out of range "
			       "(writer_threads 1..256, log_rotate_size 4 KiB.."
			       "1 GiB, queue_max >= 1)");
	}
	e->writers = calloc(e->cfg.writer_threads, sizeof(*e->writers));
	if (!e->writers) {
		free(e);
		return MIX_ENOMEM();
	}
	/* one checkpointer thread per engine (checkpoint.c,
	 * docs/design.md "Checkpoints off the writer thread") */
	if ((ret = mix_ckpter_start(e)) < 0) {
		free(e->writers);
		free(e);
		return ret;
	}
	for (i = 0; i < e->cfg.writer_threads; i++) {
		if ((ret = mix_writer_start(e, &e->writers[i], i)) < 0) {
			while (i-- > 0)
				mix_writer_stop(&e->writers[i]);
			mix_ckpter_stop(e);
			free(e->writers);
			free(e);
			return ret;
		}
	}
	e->nwriters = e->cfg.writer_threads;
	*engine_r = e;
	return 0;
}

MIX_API int mix_engine_free(struct mix_engine **ep)
{
	struct mix_engine *e = *ep;
	uint32_t nopen;
	unsigned i;
	if (!e)
		return 0;
	/* relaxed: a check of the caller's contract, not a message.  The
	 * closes that brought it to 0 happen before this call through the
	 * caller's own synchronisation (a join, a lock), which also orders
	 * everything those closes freed; the count publishes nothing. */
	nopen = __atomic_load_n(&e->open_indexes, __ATOMIC_RELAXED);
	if (nopen != 0)
		return mix_err(MIX_EINVAL, "mix_engine_free: %u indexes still "
			       "open", nopen);
	for (i = 0; i < e->nwriters; i++)
		mix_writer_stop(&e->writers[i]);
	mix_ckpter_stop(e);   /* no index open: nothing queued */
	/* closed indexes free their memory after a grace period, on the
	 * reclaim thread (index.c index_free): wait for those frees, so
	 * that nothing of this engine's is left queued.  This waits for
	 * read-side sections in progress, as any barrier. */
	mix_rcu_barrier();
	free(e->writers);
	free(e);
	*ep = NULL;
	/* chunk buffers kept for reuse (bufcache.c); another engine of the
	 * process refills the cache if it needs it */
	mix_bufcache_drain();
	return 0;
}

MIX_API void mix_read_lock(void)
{
	mix_rcu_read_lock();
}

MIX_API void mix_read_unlock(void)
{
	mix_rcu_read_unlock();
}

MIX_API const struct mix_snap *mix_index_snap(struct mix_index *idx)
{
	/* ORDER(snap-publish): pairs with MIX_RCU_PUBLISH in
	 * mix_index_publish(); the snapshot stays valid until the caller's
	 * mix_read_unlock() (its unpublish waits for a grace period). */
	return MIX_RCU_DEREF(idx->snap);
}
