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
 * checked like any file.
 */
#include <errno.h>
#include <fcntl.h>
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

int mix_regfile_open_ro(const char *path)
{
	struct stat st;
	int fd, fl;

	/* O_NONBLOCK: opening a FIFO for reading would wait for a writer */
	fd = mix_io_open(path, O_RDONLY | O_NONBLOCK, 0);
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
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int ret = mix_err_sys("fcntl(%s, O_NONBLOCK)", path);
		mix_io_close(&fd);
		return ret;
	}
	return fd;
}
