/*
 * The engine's file I/O layer (see fileio.h).  Every call that can fail
 * passes through fault_hit(), which tests arm with mix_io_fault_set() to
 * make the n-th call from now fail: the fault-injection tests walk the
 * countdown over every call site in turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fileio.h"

/* Fault countdown; tests only.  Relaxed atomics: the tests that arm it
 * are single-writer, but engine threads read it. */
static unsigned fault_countdown;
static int fault_err;

void mix_io_fault_set(unsigned countdown, int err)
{
	__atomic_store_n(&fault_err, err, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_countdown, countdown, __ATOMIC_RELEASE);
}

/* Returns 0, or the injected error (with errno set) when the countdown
 * reaches this call. */
static int fault_hit(void)
{
	unsigned c = __atomic_load_n(&fault_countdown, __ATOMIC_ACQUIRE);
	while (c != 0) {
		if (__atomic_compare_exchange_n(&fault_countdown, &c, c - 1, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			if (c == 1) {
				errno = -__atomic_load_n(&fault_err,
							 __ATOMIC_RELAXED);
				return -errno;
			}
			return 0;
		}
	}
	return 0;
}

int mix_io_open(const char *path, int flags, mode_t mode)
{
	int fd;
	if (fault_hit() < 0)
		return mix_err_sys("open(%s) (injected)", path);
	fd = open(path, flags | O_CLOEXEC, mode);
	if (fd < 0)
		return mix_err_sys("open(%s)", path);
	return fd;
}

void mix_io_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int mix_io_pwrite(int fd, const char *path, const void *buf, size_t len,
		  uint64_t offset)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n;
		if (fault_hit() < 0) {
			/* a short write: half of it lands, then the error */
			if (len > 1 && errno != ENOSPC) {
				n = pwrite(fd, p, len / 2, (off_t)offset);
				(void)n;
				errno = EIO;
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
	}
	return 0;
}

int mix_io_pread(int fd, const char *path, void *buf, size_t len,
		 uint64_t offset)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return mix_err_sys("read(%s, offset %llu)", path,
					   (unsigned long long)offset);
		}
		if (n == 0)
			return mix_err(MIX_ECORRUPT,
				       "%s: file ends at offset %llu, %zu bytes "
				       "short", path,
				       (unsigned long long)offset, len);
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

int mix_io_fdatasync(int fd, const char *path)
{
	if (fault_hit() < 0 || fdatasync(fd) < 0)
		return mix_err_sys("fdatasync(%s)", path);
	return 0;
}

int mix_io_fsync(int fd, const char *path)
{
	if (fault_hit() < 0 || fsync(fd) < 0)
		return mix_err_sys("fsync(%s)", path);
	return 0;
}

int mix_io_ftruncate(int fd, const char *path, uint64_t size)
{
	if (fault_hit() < 0 || ftruncate(fd, (off_t)size) < 0)
		return mix_err_sys("ftruncate(%s, %llu)", path,
				   (unsigned long long)size);
	return 0;
}

int mix_io_rename(const char *from, const char *to)
{
	if (fault_hit() < 0 || rename(from, to) < 0)
		return mix_err_sys("rename(%s, %s)", from, to);
	return 0;
}

int mix_io_unlink(const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return mix_err_sys("unlink(%s)", path);
	return 0;
}

int mix_io_fsync_dir(const char *dir)
{
	int fd, ret;
	if (fault_hit() < 0)
		return mix_err_sys("fsync(%s) (injected)", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return mix_err_sys("open(%s)", dir);
	ret = fsync(fd) < 0 ? mix_err_sys("fsync(%s)", dir) : 0;
	close(fd);
	return ret;
}

int mix_io_size(int fd, const char *path, uint64_t *size_r)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return mix_err_sys("fstat(%s)", path);
	*size_r = (uint64_t)st.st_size;
	return 0;
}
