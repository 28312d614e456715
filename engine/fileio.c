/*
 * The engine's file I/O layer (see fileio.h).  Every call that can fail
 * passes through fault_hit(), which tests arm with mix_io_fault_set() to
 * make the n-th call from now fail: the fault-injection tests
 * (tests/test-faults.c, docs/reliability.md) walk the countdown over
 * every call site in turn.  An injected error sets errno and goes through
 * the same message path as a real one, so callers cannot tell them
 * apart.  mix_io_trace_set() installs a hook that sees every mutating
 * call after it succeeded (the power-loss simulator, stress/powercut.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fileio.h"

/* Fault countdown; tests only.  The test thread arms it, engine threads
 * (writer) count it down: the CAS makes exactly one call see 1.  err and
 * the fired name are relaxed: ORDER(fault-arm): err is stored before the
 * release store of the countdown, and read after the acquire CAS that
 * took the countdown to 0. */
static unsigned fault_countdown;
static int fault_err;
static const char *fault_fired_op;
static unsigned long io_calls;

/* Trace hook; tests only.  ORDER(trace-set): ctx is stored before the
 * release store of fn, and read after the acquire load that saw fn. */
static mix_io_trace_fn *trace_fn;
static void *trace_ctx;

void mix_io_trace_set(mix_io_trace_fn *fn, void *ctx)
{
	__atomic_store_n(&trace_fn, (mix_io_trace_fn *)NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&trace_ctx, ctx, __ATOMIC_RELAXED);
	__atomic_store_n(&trace_fn, fn, __ATOMIC_RELEASE);
}

/* Report a call that succeeded; ev->dev/ino are filled from fd here. */
static void trace_emit(mix_io_trace_fn *fn, struct mix_io_event *ev)
{
	struct stat st;
	int e = errno;
	if (ev->fd >= 0 && fstat(ev->fd, &st) == 0) {
		ev->dev = (uint64_t)st.st_dev;
		ev->ino = (uint64_t)st.st_ino;
	}
	fn(__atomic_load_n(&trace_ctx, __ATOMIC_RELAXED), ev);
	errno = e;
}

#define TRACE(fd_, ...) do { \
	mix_io_trace_fn *fn_ = __atomic_load_n(&trace_fn, __ATOMIC_ACQUIRE); \
	if (fn_ != NULL) { \
		struct mix_io_event ev_ = { .fd = (fd_), __VA_ARGS__ }; \
		trace_emit(fn_, &ev_); \
	} \
} while (0)

void mix_io_fault_set(unsigned countdown, int err)
{
	__atomic_store_n(&fault_err, err, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_fired_op, (const char *)NULL,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&fault_countdown, countdown, __ATOMIC_RELEASE);
}

unsigned mix_io_fault_pending(void)
{
	return __atomic_load_n(&fault_countdown, __ATOMIC_ACQUIRE);
}

const char *mix_io_fault_fired(void)
{
	return __atomic_load_n(&fault_fired_op, __ATOMIC_ACQUIRE);
}

unsigned long mix_io_calls(void)
{
	return __atomic_load_n(&io_calls, __ATOMIC_RELAXED);
}

/* Returns 0, or the injected error (with errno set) when the countdown
 * reaches this call, which is op. */
static int fault_hit(const char *op)
{
	unsigned c;

	__atomic_add_fetch(&io_calls, 1, __ATOMIC_RELAXED);
	c = __atomic_load_n(&fault_countdown, __ATOMIC_ACQUIRE);
	while (c != 0) {
		if (__atomic_compare_exchange_n(&fault_countdown, &c, c - 1, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			if (c == 1) {
				__atomic_store_n(&fault_fired_op, op,
						 __ATOMIC_RELEASE);
				errno = -__atomic_load_n(&fault_err,
							 __ATOMIC_RELAXED);
				return -errno;
			}
			return 0;
		}
	}
	return 0;
}

/* The name path has in its directory: what follows the last '/'. */
static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* An error of a call in the directory held as dfd: if the directory was
 * removed (no link left), say so, since the path then names whatever
 * was put there since, or nothing. */
static int err_in(int dfd, const char *what, const char *path,
		  const char *path2)
{
	struct stat st;
	int e = errno;

	if (dfd >= 0 && fstat(dfd, &st) == 0 && st.st_nlink == 0) {
		errno = e;
		return mix_err_sys("%s(%s%s%s): the index's directory was "
				   "removed while it was open", what, path,
				   path2 ? ", " : "", path2 ? path2 : "");
	}
	errno = e;
	return mix_err_sys("%s(%s%s%s)", what, path, path2 ? ", " : "",
			   path2 ? path2 : "");
}

int mix_io_open_in(int dfd, const char *path, int flags, mode_t mode)
{
	int fd;
	if (fault_hit("open") < 0)
		return mix_err_sys("open(%s) (injected)", path);
	fd = dfd >= 0 ? openat(dfd, base_name(path), flags | O_CLOEXEC, mode)
		      : open(path, flags | O_CLOEXEC, mode);
	if (fd < 0)   /* a missing name it only reads is no news */
		return err_in(flags & O_CREAT ? dfd : -1, "open", path, NULL);
	TRACE(fd, .kind = MIX_IO_EV_OPEN, .path = path, .flags = flags);
	return fd;
}

int mix_io_open(const char *path, int flags, mode_t mode)
{
	return mix_io_open_in(-1, path, flags, mode);
}

int mix_io_open_own(int dfd, const char *path, int flags, mode_t mode)
{
	struct stat st;
	int fd;

	/* never follow a link, never wait for a FIFO's reader; a regular
	 * file ignores O_NONBLOCK */
	flags |= O_CREAT | O_NOFOLLOW | O_NONBLOCK;
	fd = mix_io_open_in(dfd, path, flags, mode);
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			return fd;
		mix_io_close(&fd);   /* a FIFO with a reader, a device */
	} else if (fd != -ELOOP && fd != -ENXIO) {   /* a link; a FIFO */
		return fd;
	}
	/* the name is the engine's own and holds no file of it: replace
	 * what someone put there (the link itself, not its target) */
	mix_err_clear();
	if ((fd = mix_io_unlink_in(dfd, path)) < 0)
		return fd;
	return mix_io_open_in(dfd, path, (flags & ~O_TRUNC) | O_EXCL, mode);
}

/* The directory's own descriptor, or -errno with the message set. */
static int dir_open(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : mix_err_sys("open(%s)", dir);
}

int mix_io_dir_open(const char *dir)
{
	if (fault_hit("open") < 0)
		return mix_err_sys("open(%s) (injected)", dir);
	return dir_open(dir);
}

void mix_io_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int pwrite_part(int fd, const char *path, const void *buf,
		       size_t len, uint64_t offset, size_t *done_r)
{
	const char *p = buf;
	*done_r = 0;
	while (len > 0) {
		ssize_t n;
		if (fault_hit("pwrite") < 0) {
			/* a short write: half of it lands, then the error
			 * (EIO; EDQUOT stays EDQUOT, a quota hit mid-write);
			 * an injected ENOSPC lands nothing, a full disk */
			int e = errno;
			if (len > 1 && e != ENOSPC) {
				n = pwrite(fd, p, len / 2, (off_t)offset);
				if (n > 0)
					*done_r += (size_t)n;
				errno = e == EDQUOT ? EDQUOT : EIO;
			}
			return mix_err_sys("write(%s, offset %llu) (injected)",
					   path, (unsigned long long)offset);
		}
		n = pwrite(fd, p, len, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return mix_err_sys("write(%s, offset %llu)", path,
					   (unsigned long long)offset);
		}
		if (n == 0) {
			errno = ENOSPC;
			return mix_err_sys("write(%s, offset %llu)", path,
					   (unsigned long long)offset);
		}
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
		*done_r += (size_t)n;
	}
	return 0;
}

int mix_io_pwrite_part(int fd, const char *path, const void *buf,
		       size_t len, uint64_t offset, size_t *done_r)
{
	int ret = pwrite_part(fd, path, buf, len, offset, done_r);
	if (*done_r > 0)
		TRACE(fd, .kind = MIX_IO_EV_PWRITE, .path = path,
		      .offset = offset, .len = *done_r, .data = buf);
	return ret;
}

int mix_io_pwrite(int fd, const char *path, const void *buf, size_t len,
		  uint64_t offset)
{
	size_t done;
	return mix_io_pwrite_part(fd, path, buf, len, offset, &done);
}

int mix_io_pread_upto(int fd, const char *path, void *buf, size_t len,
		      uint64_t offset, uint64_t *got_r)
{
	char *p = buf;
	*got_r = 0;
	if (fault_hit("pread") < 0)
		return mix_err_sys("read(%s, offset %llu) (injected)", path,
				   (unsigned long long)offset);
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return mix_err_sys("read(%s, offset %llu)", path,
					   (unsigned long long)offset);
		}
		if (n == 0)
			break;
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
		*got_r += (uint64_t)n;
	}
	return 0;
}

int mix_io_pread(int fd, const char *path, void *buf, size_t len,
		 uint64_t offset)
{
	uint64_t got;
	int ret = mix_io_pread_upto(fd, path, buf, len, offset, &got);
	if (ret == 0 && got < len)
		return mix_err(MIX_ECORRUPT, "%s: file ends at offset %llu, "
			       "%llu bytes short", path,
			       (unsigned long long)(offset + got),
			       (unsigned long long)(len - got));
	return ret;
}

int mix_io_fdatasync(int fd, const char *path)
{
	if (fault_hit("fdatasync") < 0 || fdatasync(fd) < 0)
		return mix_err_sys("fdatasync(%s)", path);
	TRACE(fd, .kind = MIX_IO_EV_FDATASYNC, .path = path);
	return 0;
}

int mix_io_fsync(int fd, const char *path)
{
	if (fault_hit("fsync") < 0 || fsync(fd) < 0)
		return mix_err_sys("fsync(%s)", path);
	TRACE(fd, .kind = MIX_IO_EV_FSYNC, .path = path);
	return 0;
}

int mix_io_ftruncate(int fd, const char *path, uint64_t size)
{
	if (fault_hit("ftruncate") < 0 || ftruncate(fd, (off_t)size) < 0)
		return mix_err_sys("ftruncate(%s, %llu)", path,
				   (unsigned long long)size);
	TRACE(fd, .kind = MIX_IO_EV_FTRUNCATE, .path = path, .offset = size);
	return 0;
}

int mix_io_rename_in(int dfd, const char *from, const char *to)
{
	if (fault_hit("rename") < 0)
		return mix_err_sys("rename(%s, %s) (injected)", from, to);
	if ((dfd >= 0 ? renameat(dfd, base_name(from), dfd, base_name(to))
		      : rename(from, to)) < 0)
		return err_in(dfd, "rename", from, to);
	TRACE(-1, .kind = MIX_IO_EV_RENAME, .path = from, .path2 = to);
	return 0;
}

int mix_io_rename(const char *from, const char *to)
{
	return mix_io_rename_in(-1, from, to);
}

int mix_io_unlink_in(int dfd, const char *path)
{
	if (fault_hit("unlink") < 0)
		return mix_err_sys("unlink(%s) (injected)", path);
	if ((dfd >= 0 ? unlinkat(dfd, base_name(path), 0) : unlink(path)) < 0 &&
	    errno != ENOENT)
		return err_in(dfd, "unlink", path, NULL);
	TRACE(-1, .kind = MIX_IO_EV_UNLINK, .path = path);
	return 0;
}

int mix_io_unlink(const char *path)
{
	return mix_io_unlink_in(-1, path);
}

int mix_io_fsync_dir_in(int dfd, const char *dir)
{
	int fd, ret;
	if (fault_hit("fsync_dir") < 0)
		return mix_err_sys("fsync(%s) (injected)", dir);
	if ((fd = dfd >= 0 ? dfd : dir_open(dir)) < 0)
		return fd;
	ret = fsync(fd) < 0 ? err_in(dfd, "fsync", dir, NULL) : 0;
	if (fd != dfd)
		close(fd);
	if (ret == 0)
		TRACE(-1, .kind = MIX_IO_EV_FSYNC_DIR, .path = dir);
	return ret;
}

int mix_io_fsync_dir(const char *dir)
{
	return mix_io_fsync_dir_in(-1, dir);
}

int mix_io_stat_in(int dfd, const char *path, struct stat *st)
{
	if ((dfd >= 0 ? fstatat(dfd, base_name(path), st, 0)
		      : stat(path, st)) < 0)
		return -errno;
	return 0;
}

int mix_io_access_in(int dfd, const char *path)
{
	return (dfd >= 0 ? faccessat(dfd, base_name(path), F_OK, 0)
			 : access(path, F_OK)) == 0;
}

int mix_io_size(int fd, const char *path, uint64_t *size_r)
{
	struct stat st;
	if (fault_hit("fstat") < 0 || fstat(fd, &st) < 0)
		return mix_err_sys("fstat(%s)", path);
	*size_r = (uint64_t)st.st_size;
	return 0;
}

int mix_io_mmap_ro(int fd, const char *path, size_t size, void **addr_r)
{
	void *p;
	if (fault_hit("mmap") < 0)
		return mix_err_sys("mmap(%s, %zu bytes) (injected)", path, size);
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return mix_err_sys("mmap(%s, %zu bytes)", path, size);
	*addr_r = p;
	return 0;
}
