/*
 * Opening a file that must be a regular file (a log, mix.index) without
 * ever blocking on something else that has its name: docs/format.md §3
 * ("Files") for the logs, and the same rule for mix.index.
 *
 * Calling context: any thread; touches no shared state.  Errors set the
 * calling thread's message (mix_last_error()).
 */
#ifndef MIX_REGFILE_H
#define MIX_REGFILE_H

#include <stdint.h>

/* Open path read-only.  The name is followed if it is a symbolic link;
 * what it names must be a regular file.  The open itself never blocks
 * (O_NONBLOCK, so a FIFO without a writer or a device cannot hang it); the
 * returned fd is in blocking mode again.  *size_r (when not NULL) gets
 * the file size from the same fstat.  Returns the fd (>= 0, O_CLOEXEC);
 * -ENOENT (no such name) and other -errno from open(2) (through
 * mix_io_open, so fault injection sees it); MIX_ECORRUPT naming path and
 * its file type (FIFO, directory, character device, block device, socket,
 * or a symbolic link whose target does not exist) when it is not a
 * regular file; -errno from fstat or fcntl. */
int mix_regfile_open_ro(const char *path, uint64_t *size_r);
/* The same for the name of path in the directory held as dfd (-1: path
 * as it is; fileio.h "the _in calls"). */
int mix_regfile_open_ro_in(int dfd, const char *path, uint64_t *size_r);

#endif
