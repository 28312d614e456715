/*
 * The open registry (index-registry.c): which directories this process
 * has open for writing, in which engine, and how many handles each has.
 * mix_index_open() and mix_index_close() are defined there, around the
 * open and close of index.c (docs/api.md "Opening an index twice").
 */
#ifndef MIX_INDEX_REGISTRY_H
#define MIX_INDEX_REGISTRY_H

#include "mix/mix.h"

/* index.c: mix_index_open() and mix_index_close() of one handle, as
 * documented in mix.h but without the registry (a second writable open
 * of the same directory fails with MIX_ELOCKED there; close always
 * closes).  Called by the registry only. */
int mix_index_open_one(struct mix_engine *e, const char *dir,
		       unsigned flags, struct mix_index **idx_r);
int mix_index_close_one(struct mix_index **idxp);

/* fork(): take the registry's lock around it, after the fork gate
 * (fork.c); the child forgets the parent's handles. */
void mix_registry_fork_prepare(void);
void mix_registry_fork_parent(void);
void mix_registry_fork_child(void);

#endif
