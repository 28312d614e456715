/*
 * Opening logs and mix.index: regular files only (docs/format.md §3,
 * "Files"; engine/regfile.h).
 *
 * What: mix_regfile_open_ro opens with O_NONBLOCK, checks with fstat that
 * the descriptor is a regular file, and only then clears O_NONBLOCK.
 * Without it a FIFO named mix.index.log hung every open of the index
 * forever (open(2) of a FIFO for reading waits for a writer), and a
 * character device could feed the reader endless bytes.
 *
 * Who: any thread; no shared state.
 *
 * Invariants: the type is checked on the descriptor (fstat), not the name
 * (stat), so a rename between the check and the open cannot slip another
 * file in.  A symbolic link is followed (as open(2) does); its target is
 * checked like any file, and a dangling one is corrupt, not missing: the
 * caller would take a missing log for one that never existed and drop
 * what it held.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fileio.h"
#include "regfile.h"

static const char *file_type_name(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "unknown";
}

int mix_regfile_open_ro(const char *path, uint64_t *size_r)
{
	return mix_regfile_open_ro_in(-1, path, size_r);
}

int mix_regfile_open_ro_in(int dfd, const char *path, uint64_t *size_r)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: opening a FIFO for reading would wait for a writer.
	 * O_NOFOLLOW first, so that a name that is not there costs one
	 * system call (a follower's refresh tries mix.index.log.newtmp,
	 * usually absent, every time); a symbolic link (ELOOP) is then
	 * followed, and one that leads nowhere is not a file that was
	 * never written */
	fd = mix_io_open_in(dfd, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW, 0);
	if (fd == -ELOOP) {
		fd = mix_io_open_in(dfd, path, O_RDONLY | O_NONBLOCK, 0);
		if (fd == -ENOENT)
			return mix_err(MIX_ECORRUPT, "%s: file type: a "
				       "symbolic link to a file that does "
				       "not exist, expected a regular file "
				       "(format.md §3)", path);
	}
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int ret = mix_err_sys("fstat(%s)", path);
		mix_io_close(&fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		mix_io_close(&fd);
		return mix_err(MIX_ECORRUPT, "%s: file type: %s, expected a "
			       "regular file (format.md §3)", path,
			       file_type_name(st.st_mode));
	}
	/* the file status flags are O_NONBLOCK alone (O_RDONLY is the
	 * access mode, which F_SETFL leaves; O_CLOEXEC is a descriptor
	 * flag), so 0 clears it without an F_GETFL first: this runs twice
	 * per mix_index_refresh */
	if (fcntl(fd, F_SETFL, 0) < 0) {
		int ret = mix_err_sys("fcntl(%s, F_SETFL)", path);
		mix_io_close(&fd);
		return ret;
	}
	if (size_r != NULL)
		*size_r = (uint64_t)st.st_size;
	return fd;
}
