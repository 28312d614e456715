#!/bin/sh
# TAP: stress/virtual-stress, short — 3 readers checking every virtual
# snapshot they take (both map directions agree, virtual UIDs increase,
# no backend message twice, recorded backend modseqs not above the
# backends' published ones, flags equal the backend's when it has not
# changed since the sync) while 3 backends of 1,000 messages commit and
# the virtual mailbox syncs in a loop, for 2 s (docs/virtual.md "Atomic
# remap"); then the same with live mode doing the syncs and a thread
# storing flags, keywords and expunges through the virtual mailbox.  Its exit status is the test; its output (seed, figures, the
# VIOLATION line) is printed as diagnostics; MIX_SEED=<n> replays a run's
# choices.  Run by `make check` through prove, with MIX_BUILD set to the
# build directory.
. "$(dirname "$0")/tap-stress.sh"
tap_stress virtual-stress "--seconds 2 --readers 3 --messages 1000" \
	"--seconds 2 --readers 3 --messages 1000 --live --writes"
