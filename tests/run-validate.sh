#!/bin/sh
# TAP: stress/validate, small — 6 readers, 4 view readers (2 syncing in a
# loop, 2 woken by watchers), 2 hold readers (held-expunge syncs inside
# each simulated command, released at its end), a read-only process
# following the writer
# and 4 committers for 2 s on 3 mailboxes of 10,000 messages served by 2
# writer threads, logs rotating every 16 KiB (so checkpoints and rotations
# happen while readers run), then the close/reopen and crash-recovery
# comparisons.  validate checks the
# invariants of docs/design.md "Invariants" and the view reports itself and exits
# non-zero on the first violation; its exit status is the test.  Its
# output (seed, figures, the VIOLATION line) is printed as diagnostics;
# MIX_SEED=<n> replays a run's choices.
# Run by `make check` through prove, with MIX_BUILD set to the build
# directory.
. "$(dirname "$0")/tap-stress.sh"
tap_stress validate "--seconds 2 --readers 6 --committers 4 --view-readers 4 \
--ro-readers 1 --mailboxes 3 --writers 2 --messages 10000 --rotate 16384"
