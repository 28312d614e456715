/*
 * The engine: configuration and writer threads (engine.c, writer.c).
 * docs/design.md §3.
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
	uint32_t last_batch;    /* writer only: size of the previous batch */
	/* statistics, written by the writer only (relaxed atomics) */
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
};

int mix_writer_start(struct mix_engine *e, struct mix_writer *w, unsigned id);
void mix_writer_stop(struct mix_writer *w);
/* Hand t to w (waits while w's queue is full).  Returns 0. */
void mix_writer_enqueue(struct mix_writer *w, struct mix_txn *t);

#endif
