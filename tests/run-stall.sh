#!/bin/sh
# TAP: stress/stall, short — a read-side section held 2 s while 8
# committers run on 4 mailboxes of 2 writer threads.  stall checks that
# every mailbox keeps acknowledging commits, that the stall is reported
# once naming the holder's thread (read_stall callback, read_stalls),
# that publishes were spaced (batches_held), that the held snapshot reads
# the same throughout, and that what waited is freed after the section;
# it exits non-zero with a VIOLATION line otherwise.  No timing limit
# here (--max-gap 600): `make stress` runs the 10 s section with the 2 s
# gap limit.  MIX_SEED=<n> replays a run's choices.
# Run by `make check` through prove, with MIX_BUILD set to the build
# directory.
. "$(dirname "$0")/tap-stress.sh"
tap_stress stall "--hold 2 --committers 8 --mailboxes 4 --writers 2 --max-gap 600"
