/*
 * The engine's file I/O: every open, write, sync, rename and truncate of
 * index files goes through here, so that tests can make any call fail
 * (fault injection, issue 5) and so that every error message names the
 * file.  All functions return 0 or a negative error with the message set.
 */
#ifndef MIX_FILEIO_H
#define MIX_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* open(2); returns the fd (>= 0) or -errno.  A missing file with no
 * O_CREAT returns -ENOENT with the message set. */
int mix_io_open(const char *path, int flags, mode_t mode);
void mix_io_close(int *fd);

/* Write all len bytes at offset (loops over short writes).  A write that
 * cannot complete returns -errno (ENOSPC for a write that made no progress
 * on a full disk). */
int mix_io_pwrite(int fd, const char *path, const void *buf, size_t len,
		  uint64_t offset);

/* Read exactly len bytes at offset; a short file returns MIX_ECORRUPT
 * with a message naming path and offset. */
int mix_io_pread(int fd, const char *path, void *buf, size_t len,
		 uint64_t offset);

int mix_io_fdatasync(int fd, const char *path);
int mix_io_fsync(int fd, const char *path);
int mix_io_ftruncate(int fd, const char *path, uint64_t size);
int mix_io_rename(const char *from, const char *to);
int mix_io_unlink(const char *path);   /* a missing file is not an error */
/* fsync the directory dir (after a rename or create in it). */
int mix_io_fsync_dir(const char *dir);
/* fstat size. */
int mix_io_size(int fd, const char *path, uint64_t *size_r);

/* Fault injection for tests: when set, the countdown-th call from now to
 * any function above that does I/O fails with err (a negative errno).
 * countdown 0 disables.  Process-wide; for tests only. */
void mix_io_fault_set(unsigned countdown, int err);

#endif
