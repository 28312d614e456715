/*
 * USDT probes (systemtap-sdt-dev's <sys/sdt.h>) at the engine's
 * milestones, for perf/bpftrace/systemtap:
 *
 *   mix:commit_enqueue(txn)        a committer hands a transaction over
 *   mix:batch_start(count)         the writer took `count` transactions
 *   mix:log_write(bytes)           one write() of a batch to the log
 *   mix:fsync_start / fsync_end(ret)
 *   mix:publish(gen, highest_modseq)
 *   mix:grace_period(calls)        the reclaim thread's grace period
 *                                  ended; it runs `calls` deferred calls
 *   mix:snapshot_free(gen)         a snapshot's grace period (and views)
 *                                  ended and it was freed
 *   mix:checkpoint(messages, ret)
 *   mix:rotate(file_seq, ret)
 *
 * A probe is a nop instruction plus an ELF note; without <sys/sdt.h> at
 * build time (MIX_HAVE_SDT unset) they compile to nothing.
 */
#ifndef MIX_PROBES_H
#define MIX_PROBES_H

#ifdef MIX_HAVE_SDT
#include <sys/sdt.h>
#define MIX_PROBE0(n) DTRACE_PROBE(mix, n)
#define MIX_PROBE1(n, a) DTRACE_PROBE1(mix, n, a)
#define MIX_PROBE2(n, a, b) DTRACE_PROBE2(mix, n, a, b)
#else
#define MIX_PROBE0(n) ((void)0)
#define MIX_PROBE1(n, a) ((void)(a))
#define MIX_PROBE2(n, a, b) ((void)(a), (void)(b))
#endif

#endif
