/*
 * Mailbox names and LIST patterns, engine side (engine/mbox-name.c,
 * docs/mailbox-list.md "Names and patterns").  The public calls are in
 * include/mix/mailbox-name.h; this adds the matcher with its step count,
 * which tests use to show that no pattern makes it backtrack.
 *
 * Pure functions: any thread, any context.
 */
#ifndef MIX_MBOX_NAME_INTERNAL_H
#define MIX_MBOX_NAME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mix/mailbox-name.h"

/* mix_mbox_name_match() (children = 0) or mix_mbox_name_match_children()
 * (children = 1), adding to *steps_r (may be NULL) the number of
 * (name byte, pattern state) pairs examined: at most
 * (len + 2) x (pattern length + 1). */
int mix_mbox_match_counted(const struct mix_mbox_pattern *pat,
			   const char *name, size_t len, int children,
			   uint64_t *steps_r);

#endif
