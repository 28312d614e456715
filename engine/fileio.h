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

/*
 * Names in a directory held open (the "_in" calls).  An open index holds
 * its directory (mix_io_dir_open) and makes every change of a name in
 * it (create, rename, unlink, the directory's fsync) relative to that
 * descriptor: the index follows its directory if it is renamed, and
 * never writes into another directory put at its old path (IMAP DELETE
 * and CREATE of the same name while a session still has the old
 * mailbox open: docs/reliability.md finding 18).  Once the directory is
 * removed, creating a name in it fails (ENOENT) and the message says
 * so.  path is still the whole "dir/name": the name used is what follows
 * its last '/', and path is what messages and traces show.  dfd -1
 * means no directory held: path is used as it is.
 */
int mix_io_dir_open(const char *dir);   /* O_DIRECTORY fd or -errno */
int mix_io_open_in(int dfd, const char *path, int flags, mode_t mode);
int mix_io_rename_in(int dfd, const char *from, const char *to);
int mix_io_unlink_in(int dfd, const char *path);
int mix_io_fsync_dir_in(int dfd, const char *dir);
/* Open (creating it if needed) one of the engine's own files that it
 * writes: the checkpoint's mix.index.tmp, the next log's newtmp, the
 * lock file.  Only a regular file is used: a symbolic link, a FIFO or a
 * device at that name is removed (the name, never what it points to)
 * and a new file made, so the writer never writes outside the directory
 * and never waits for a FIFO's reader.  Returns the fd or -errno (a
 * directory at the name stays an error). */
int mix_io_open_own(int dfd, const char *path, int flags, mode_t mode);
/* 1 if the name of path exists in the directory (no fault injection,
 * no message: a probe). */
int mix_io_access_in(int dfd, const char *path);
/* stat(2) of the name (following a symbolic link): 0 or -errno, no
 * fault injection, no message (a probe). */
struct stat;
int mix_io_stat_in(int dfd, const char *path, struct stat *st);

/* Write all len bytes at offset (loops over short writes).  A write that
 * cannot complete returns -errno (ENOSPC for a write that made no progress
 * on a full disk). */
int mix_io_pwrite(int fd, const char *path, const void *buf, size_t len,
		  uint64_t offset);
/* The same, and *done_r gets how many bytes landed before an error (all
 * len on success). */
int mix_io_pwrite_part(int fd, const char *path, const void *buf,
		       size_t len, uint64_t offset, size_t *done_r);

/* Read up to len bytes at offset, stopping early only at the end of the
 * file; *got_r gets how many.  Returns 0 or -errno. */
int mix_io_pread_upto(int fd, const char *path, void *buf, size_t len,
		      uint64_t offset, uint64_t *got_r);

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
/* mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0); returns 0 and *addr_r,
 * or -errno with the message naming path. */
int mix_io_mmap_ro(int fd, const char *path, size_t size, void **addr_r);

/*
 * Fault injection for tests (docs/reliability.md): when set, the
 * countdown-th call from now to any function above that does I/O (all of
 * them but mix_io_close) fails with err (a negative errno) instead of
 * doing its work — except mix_io_pwrite with an err other than -ENOSPC,
 * which first writes half of the buffer (a short write) and then fails
 * with -EIO.  countdown 0 disables.  Process-wide, counted across all
 * threads; for tests only.
 */
void mix_io_fault_set(unsigned countdown, int err);
/* Calls left before the armed fault fires; 0 once it fired (or when
 * none is armed). */
unsigned mix_io_fault_pending(void);
/* Name of the call the last injected fault hit ("pwrite", "fdatasync",
 * "fsync", "fsync_dir", "rename", "open", "ftruncate", "unlink", "pread",
 * "fstat", "mmap"), or NULL if none fired since the last
 * mix_io_fault_set().  A static string. */
const char *mix_io_fault_fired(void);
/* Calls that could have been failed so far (process-wide): tests count
 * the I/O sites of an operation by the difference. */
unsigned long mix_io_calls(void);

/*
 * Tracing for tests (stress/powercut.c, docs/reliability.md "Power-loss
 * simulation"): when a hook is set, every mutating call above reports
 * itself after it succeeded (a pwrite that failed part-way reports the
 * bytes that landed).  Reads, fstat and mmap are not reported.  The hook
 * runs on the thread that made the call (the opening thread or a
 * writer), synchronously, with the call's own buffers: it must copy what
 * it keeps.  Unset, the cost is one load of a pointer per call.
 * Process-wide; for tests only.
 */
enum mix_io_event_kind {
	MIX_IO_EV_OPEN,      /* path, fd, flags (O_CREAT, O_TRUNC...), ino */
	MIX_IO_EV_PWRITE,    /* path, fd, ino, offset, len, data */
	MIX_IO_EV_FDATASYNC, /* path, fd, ino */
	MIX_IO_EV_FSYNC,     /* path, fd, ino */
	MIX_IO_EV_FTRUNCATE, /* path, fd, ino, offset = the new size */
	MIX_IO_EV_RENAME,    /* path = from, path2 = to */
	MIX_IO_EV_UNLINK,    /* path (also when it did not exist) */
	MIX_IO_EV_FSYNC_DIR, /* path = the directory */
};

struct mix_io_event {
	enum mix_io_event_kind kind;
	const char *path;
	const char *path2;
	int fd;              /* -1 for the path-only calls */
	int flags;           /* open(2) flags of MIX_IO_EV_OPEN */
	uint64_t dev, ino;   /* fstat of fd after the call; 0 without fd */
	uint64_t offset;
	uint64_t len;
	const void *data;
};

typedef void mix_io_trace_fn(void *ctx, const struct mix_io_event *ev);
/* Set (fn non-NULL) or clear the hook.  Set it while no engine thread
 * does I/O (before opening, after closing); ctx is published with fn. */
void mix_io_trace_set(mix_io_trace_fn *fn, void *ctx);

#endif
