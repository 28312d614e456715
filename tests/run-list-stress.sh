#!/bin/sh
# TAP: stress/list-stress, small — 3 readers listing ("*", "%/t/%",
# "%/t") and looking up while one writer renames a 201-mailbox subtree
# between A/t and B/t for 2 s (with creates and deletes beside it) and
# another sets special-use flags inside it and subscriptions outside it,
# while an attached mailbox takes appends and the readers check its
# STATUS is never ahead of its snapshot nor goes back; once with
# durability NONE, once SYNC.  A reader that sees half a
# rename, a mailbox in two places or an id listed twice makes
# list-stress exit non-zero (docs/mailbox-list.md "Concurrency").  Its
# output (seed, figures, the VIOLATION line) is printed as diagnostics;
# MIX_SEED=<n> replays a run's choices.
# Run by `make check` through prove, with MIX_BUILD set to the build
# directory.
. "$(dirname "$0")/tap-stress.sh"
tap_stress list-stress "--seconds 2 --readers 3 --subtree 200" \
	"--seconds 1 --readers 2 --subtree 200 --sync"
