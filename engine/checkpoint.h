/*
 * Checkpoints and log rotation of one index, and the engine's
 * checkpointer thread (checkpoint.c; docs/design.md "Checkpoints off the
 * writer thread").  Writer role, or the opening/closing thread while no
 * writer has the index.
 */
#ifndef MIX_CHECKPOINT_H
#define MIX_CHECKPOINT_H

#include <stdint.h>

#include "index.h"

struct mix_engine;

/* Writer: before the first change a writable session makes to a name in
 * the directory, make the directory as the open found it durable (one
 * fsync of it, once per session).  Returns 0 or a mix error. */
int mix_index_dir_found_durable(struct mix_index *idx);
/* Writer: write the current snapshot to mix.index at the log's current
 * position; with do_remap, republish it with chunks in the new mapping.
 * Cancels or first waits for an asynchronous checkpoint in flight. */
int mix_index_checkpoint(struct mix_index *idx, int do_remap);
/* Republish the current state with chunks in mix.index's mapping. */
int mix_index_remap(struct mix_index *idx);
/* mix_index_remap, with a failure reported (warning callback and the
 * writer's checkpoint_failures); returns MIX_ECORRUPT when the file just
 * written does not load, else 0. */
int mix_index_remap_checked(struct mix_index *idx);
/* Writer: start a new log file (file_seq + 1); the old one becomes
 * mix.index.log.2.  Only after a checkpoint at the old log's end. */
int mix_index_rotate(struct mix_index *idx);
/* Start log file_seq now (its header reserves UIDs, format.md §2.7),
 * after the checks of the caller. */
int mix_index_rotate_to(struct mix_index *idx, uint32_t file_seq);
/* UIDs reserved ahead of next_uid at each new log and UID_FLOOR record
 * (format.md §2.7, §3.3.13): an eighth of the UIDs in use, within these
 * bounds, so that a bulk import pays one sync per many thousand appends
 * and a crash skips at most MIX_UID_STEP_MAX UIDs. */
#define MIX_UID_STEP_MIN (1u << 17)
#define MIX_UID_STEP_MAX (1u << 22)
/* The UID floor a new reservation at next_uid gets. */
uint32_t mix_index_uid_reserve(const struct mix_index *idx, uint32_t next_uid);
/* The writer role, after each batch it published: when the log has
 * passed rotate_size, queue an asynchronous checkpoint of the current
 * snapshot; collect a finished one (republish with chunks in the new
 * mapping, rotate).  Synchronous when no checkpointer runs in this
 * process (checkpoint.c). */
void mix_index_ckpt_tick(struct mix_index *idx);
/* Both, as the writer does when the log passed rotate_size. */
int mix_index_checkpoint_rotate(struct mix_index *idx);
/* Writer role (or the closing thread): complete an asynchronous
 * rotation's flushes and renames now if the checkpointer has not begun
 * them, else wait for it, and collect the result; 0 when none is pending.
 * Before anything that needs the log durable or renamed: a sync of a
 * batch, a checkpoint, another rotation, the close.  A failure has
 * poisoned the index (checkpoint.c). */
int mix_index_rot_settle(struct mix_index *idx);
/* Index close (index_free), before the final barriers: cancel or wait
 * for idx's asynchronous checkpoint and drop its pin (checkpoint.c). */
void mix_index_ckpt_cancel(struct mix_index *idx);
/* Engine create/free: start and stop the checkpointer thread that writes
 * asynchronous checkpoints (checkpoint.c).  Stop only when no index is
 * open. */
int mix_ckpter_start(struct mix_engine *e);
/* Times a checkpoint began writing mix.index while another of the same
 * index was writing it (must stay 0; tests/test-checkpoint.c reads it). */
extern uint32_t mix_ckpt_overlaps;
/* Set (before any index opens) by tests that walk fault injection over
 * the I/O calls of a commit, checkpoint and rotation in one thread's
 * order (tests/test-faults.c): every checkpoint then runs on the writer
 * role, as before the checkpointer existed. */
extern int mix_ckpt_sync_only;
void mix_ckpter_stop(struct mix_engine *e);

#endif
