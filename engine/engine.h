/*
 * The engine: configuration and writer threads (engine.c, writer.c).
 * docs/design.md "The write path".
 */
#ifndef MIX_ENGINE_H
#define MIX_ENGINE_H

#include <pthread.h>
#include <stdint.h>

#include "mix/mix.h"
#include "intake.h"
#include "rcu.h"
#include "stats.h"

struct mix_txn;

struct mix_writer {
	struct mix_engine *engine;
	unsigned id;
	pthread_t thread;
	int started;
	/* intake: multi-producer, drained whole by the writer (intake.h).
	 * queued counts transactions enqueued and not yet completed;
	 * committers wait while it is at queue_max. */
	struct mix_intake intake;
	uint32_t queued;        /* atomic */
	pthread_mutex_t lock;   /* sleeping writer, waiting committers */
	pthread_cond_t wake;    /* writer waits here when idle */
	pthread_cond_t space;   /* committers wait here when queue is full */
	int sleeping;           /* atomic; writer is (about to be) waiting */
	uint32_t space_waiters; /* atomic */
	int stop;               /* under lock */
	/* ORDER(role): 1 while one thread applies this writer's queue: the
	 * writer thread, or a committer that found the role free
	 * (writer.c).  Everything below up to the statistics, the indexes'
	 * writer-only state and the histograms belong to the holder; the
	 * acquiring CAS and the releasing store order one holder's work
	 * before the next one's. */
	uint32_t role;
	uint32_t last_batch;    /* size of the previous batch */
	int by_committer;       /* the holder is a committing thread */
	/* ORDER(txn-wake): committers of this writer that sleep wait on
	 * done_seq (atomic), bumped and woken once per completed batch when
	 * wake_pending (holder-only) says one of its transactions had a
	 * sleeping committer */
	uint32_t done_seq;
	int wake_pending;
	struct mix_wpart *parts;   /* one index's share of a batch */
	uint32_t parts_cap;
	/* indexes whose transactions are held back while reclamation lags
	 * (index-commit.c "Coalescing"), and when the first is due (atomic:
	 * the sleeping writer thread reads it; 0 = none) */
	struct mix_index **held;
	uint32_t nheld, held_cap;
	uint64_t next_due_ns;
	/* statistics, written by the role holder only (relaxed atomics) */
	uint64_t stat_by_committer; /* publishes a committer made */
	uint64_t stat_held;         /* batches held back (coalesced) */
	uint64_t stat_txns;
	uint64_t stat_fsyncs;
	uint64_t stat_bytes;
	uint64_t stat_publishes;
	uint64_t stat_checkpoints;
	uint64_t stat_ckpt_failures;
	uint64_t batch_hist[MIX_BATCH_BUCKETS];
	struct mix_hist lat_visible;
	struct mix_hist lat_ack;
};

struct mix_engine {
	struct mix_engine_config cfg;
	struct mix_writer *writers;
	unsigned nwriters;
	uint32_t next_writer;   /* atomic round robin */
	uint32_t open_indexes;  /* atomic */
	/* read stalls (stats.c): the last grace period reported, and how
	 * many were (atomics) */
	uint64_t stall_seq;
	uint64_t stat_read_stalls;
	/* the checkpointer thread (checkpoint.c; NULL until started) */
	struct mix_ckpter *ckpter;
};

/* Report a grace period that has waited cfg.read_stall_ms or more, once
 * (counter and callback).  Returns when the one in progress becomes a
 * stall (mix_now_ns clock) if it is not one yet, else 0.  Any thread
 * outside a read-side section. */
uint64_t mix_engine_stall_check(struct mix_engine *e, uint64_t now);

int mix_writer_start(struct mix_engine *e, struct mix_writer *w, unsigned id);
void mix_writer_stop(struct mix_writer *w);
/* Hand t to w (waits while w's queue is full) and wake the writer
 * thread if it sleeps: an asynchronous commit. */
void mix_writer_enqueue(struct mix_writer *w, struct mix_txn *t);
/* Hand t to w and, if no thread holds w's writer role, take it and
 * apply what is queued (t among it) on the calling thread.  The caller
 * then waits for t as usual (it may be done already).  Not inside a
 * read-side section. */
void mix_writer_commit(struct mix_writer *w, struct mix_txn *t);
/* If no thread holds w's writer role, take it and apply what is queued
 * (a committer whose transaction waits).  Returns 1 if it did. */
int mix_writer_help(struct mix_writer *w);
/* The role holder, after a batch left transactions of idx held back
 * until due_ns (index-commit.c). */
int mix_writer_hold(struct mix_writer *w, struct mix_index *idx,
		    uint64_t due_ns);
/* The role holder, before applying idx's held batch out of turn. */
void mix_writer_unhold(struct mix_writer *w, struct mix_index *idx);

#endif
