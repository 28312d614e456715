/*
 * After a publish: the publish hook of layers inside the library and the
 * eventfd watchers (watch.c; docs/api.md "Watchers").
 */
#ifndef MIX_WATCH_H
#define MIX_WATCH_H

#include "index.h"

/* After a publish: call the publish hook, then wake the armed watchers
 * (watch.c). */
void mix_watch_notify(struct mix_index *idx);

/* Set (fn != NULL) or clear (fn == NULL) the index's publish hook, for
 * layers inside the library (the mailbox list's STATUS cache).  After
 * every publish of idx, on the thread that published (the writer thread
 * or a committer holding the writer role), before the batch's committers
 * are acknowledged, fn(ctx, idx, snap) is called with the snapshot just
 * published (valid during the call: the caller holds it).  fn must be
 * short, must not block on the writer of idx (no synchronous commit to
 * idx or to an index of the same writer; an asynchronous commit to
 * another index is fine) and must not set or clear hooks.  Clearing
 * waits for a call in progress: once it returns, fn is not called again.
 * Returns 0, or MIX_EINVAL when setting while another hook is set. */
int mix_index_set_publish_hook(struct mix_index *idx, mix_publish_hook_fn *fn,
			       void *ctx);

#endif
