/*
 * An index's directory renamed, removed or replaced while the index is
 * open (engine/fileio.c "the _in calls", docs/reliability.md finding 18).
 *
 * A mail server renames a mailbox's directory on IMAP RENAME, and
 * removes it on DELETE, while other sessions may still have the mailbox
 * selected; a CREATE of the same name then makes a new directory at the
 * old path.  An open index holds its directory and takes every name in
 * it, so:
 *
 *  - renamed: the open index follows it.  Its later commits, rotations,
 *    checkpoints and its close land in the directory under its new name
 *    (a reopen there shows every commit), and nothing appears at the old
 *    path; a read-only follower follows it too;
 *  - removed, and a new mailbox created at the old path: the old index
 *    never writes into the new one, whatever order the sessions close
 *    in, however much the old one commits (rotations included).  The new
 *    mailbox opens with exactly its own messages, mixctl check agrees,
 *    and the old index's failure says that its directory was removed;
 *    a follower of the old one refreshes to an error, never to the new
 *    mailbox's messages.
 *
 * And the engine's own scratch names holding a symbolic link or a FIFO
 * (test_scratch).
 *
 * One engine, one process: these are the sessions of one server (the
 * scratch cases write in a child, under an alarm).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

static struct mix_engine *eng;

static struct mix_index *open_or_bail(const char *dir, unsigned flags)
{
	struct mix_index *idx;
	if (mix_index_open(eng, dir, flags, &idx) < 0)
		BAIL("open %s: %s", dir, mix_last_error());
	return idx;
}

/* n commits of one append each (SYNC); returns how many failed. */
static int commits(struct mix_index *idx, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++)
		if (tu_append_commit(idx, 1, MIX_DURABILITY_SYNC, NULL) < 0)
			bad++;
	return bad;
}

static uint32_t count_at(const char *dir)
{
	struct mix_index *idx;
	uint32_t n;
	if (mix_index_open(eng, dir, 0, &idx) < 0) {
		diag("reopen %s: %s", dir, mix_last_error());
		return UINT32_MAX;
	}
	n = tu_messages(idx);
	mix_index_close(&idx);
	return n;
}

static const char *mixctl_path(void)
{
	static char buf[4096];
	const char *b = getenv("MIX_BUILD");
	snprintf(buf, sizeof(buf), "%s/mixctl", b ? b : "build");
	return access(buf, X_OK) == 0 ? buf : NULL;
}

static void test_rename(const char *base)
{
	char *from = tu_subdir(base, "from"), *to, *p;
	struct mix_index *idx, *ro;
	int bad, ret;

	if (asprintf(&to, "%s/to", base) < 0)
		BAIL("out of memory");
	idx = open_or_bail(from, MIX_OPEN_CREATE);
	ro = open_or_bail(from, MIX_OPEN_READONLY);
	commits(idx, 5);
	if (rename(from, to) < 0)
		BAIL("rename: %s", strerror(errno));
	/* enough to rotate several times (4 KiB logs) */
	bad = commits(idx, 300);
	is(bad, 0, "rename: every commit after the directory was renamed is "
	   "acknowledged");
	ret = mix_index_refresh(ro);
	ok(ret >= 0 && tu_messages(ro) == 305, "rename: a read-only follower "
	   "follows the directory: refresh %d (%s), %u messages, expected 305",
	   ret, ret < 0 ? mix_last_error() : "", tu_messages(ro));
	mix_index_close(&ro);
	ret = mix_index_close(&idx);
	is(ret, 0, "rename: close writes its checkpoint into the renamed "
	   "directory (%s)", ret ? mix_last_error() : "");
	if (asprintf(&p, "%s/mix.index", from) < 0)
		BAIL("out of memory");
	ok(access(from, F_OK) != 0 && access(p, F_OK) != 0,
	   "rename: nothing appears at the old path");
	is(count_at(to), 305, "rename: a reopen under the new name shows "
	   "every commit");
	ok(!mixctl_path() || tu_mixctl_ok(mixctl_path(), to),
	   "rename: mixctl check agrees");
	free(p);
	free(from);
	free(to);
}

/* DELETE and CREATE while the old mailbox is open; order: which of the
 * two sessions closes first; old_commits: what the old session commits
 * after the new mailbox exists. */
static void test_replace(const char *base, int old_first, int old_commits)
{
	char tag[64], *dir, *sub;
	struct mix_index *old, *ro, *nw;
	int ret, ret_ro;
	char msg[512] = "";

	snprintf(tag, sizeof(tag), "replace-%d-%d", old_first, old_commits);
	dir = tu_subdir(base, tag);
	old = open_or_bail(dir, MIX_OPEN_CREATE);
	ro = open_or_bail(dir, MIX_OPEN_READONLY);
	commits(old, 7);
	if (mix_index_refresh(ro) != 1 || tu_messages(ro) != 7)
		BAIL("%s: the follower did not see the 7 commits", tag);
	tu_rmdir_r(dir);                    /* IMAP DELETE */
	sub = tu_subdir(base, tag);         /* IMAP CREATE, same name */
	nw = open_or_bail(sub, MIX_OPEN_CREATE);
	commits(nw, 3);
	if (!old_first)
		mix_index_close(&nw);
	(void)commits(old, old_commits);
	ret = mix_index_close(&old);
	if (ret < 0)
		snprintf(msg, sizeof(msg), "%s", mix_last_error());
	if (old_first)
		mix_index_close(&nw);
	ret_ro = mix_index_refresh(ro);
	ok(ret_ro == MIX_ENOTFOUND && tu_messages(ro) == 7 &&
	   strstr(mix_last_error(), "removed"),
	   "%s: a follower of the old mailbox refreshes to MIX_ENOTFOUND "
	   "saying its directory was removed, keeping its 7 messages, never "
	   "the new mailbox's (refresh %d: %s; %u messages)", tag, ret_ro,
	   mix_last_error(), tu_messages(ro));
	mix_index_close(&ro);
	ok(ret == 0 || strstr(msg, "removed") != NULL,
	   "%s: the old index's close: %d; a failure says its directory was "
	   "removed (%s)", tag, ret, msg);
	is(count_at(sub), 3, "%s: the new mailbox opens with its own 3 "
	   "messages", tag);
	ok(!mixctl_path() || tu_mixctl_ok(mixctl_path(), sub),
	   "%s: mixctl check of the new mailbox agrees", tag);
	free(dir);
	free(sub);
}

/* The engine's own scratch names (the checkpoint's mix.index.tmp, the
 * next log's newtmp, the lock file) holding a symbolic link to a file
 * outside the mailbox, or a FIFO: the writer replaces the name and never
 * writes through it or waits on it (finding 23: it overwrote the
 * outside file, or hung in open(2)).  Each case runs in a child with an
 * alarm, so a hang is a failure. */
static int scratch_child(const char *dir, int create)
{
	struct mix_engine_config cfg;
	struct mix_engine *ce;
	struct mix_index *idx;
	uint32_t n;

	alarm(30);
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	if (mix_engine_create(&cfg, &ce) < 0 ||
	    mix_index_open(ce, dir, create ? MIX_OPEN_CREATE : 0, &idx) < 0)
		return 2;
	if (commits(idx, create ? 20 : 200) != 0)
		return 3;
	if (mix_index_close(&idx) < 0)
		return 4;
	if (create)
		return 0;
	if (mix_index_open(ce, dir, 0, &idx) < 0)
		return 5;
	n = tu_messages(idx);
	mix_index_close(&idx);
	return n == 220 ? 0 : 6;
}

static int scratch_run(const char *dir, int create)
{
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) == 0)
		_exit(scratch_child(dir, create));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		BAIL("fork");
	return status;
}

static void test_scratch(const char *base)
{
	static const char *const names[3] = { "mix.index.tmp",
		"mix.index.log.newtmp", "mix.index.lock" };
	static const char victim_text[] = "precious, outside the mailbox\n";

	for (int kind = 0; kind < 2; kind++)
		for (int i = 0; i < 3; i++) {
			char tag[64], *dir, *victim, *p;
			size_t vsize = 0;
			uint8_t *v;
			int status;

			snprintf(tag, sizeof(tag), "scratch-%d-%d", kind, i);
			dir = tu_subdir(base, tag);
			if (asprintf(&victim, "%s/%s.victim", base, tag) < 0 ||
			    asprintf(&p, "%s/%s", dir, names[i]) < 0)
				BAIL("out of memory");
			if (tu_write_file(victim, victim_text,
					  sizeof(victim_text) - 1) < 0)
				BAIL("victim");
			if (scratch_run(dir, 1) != 0)
				BAIL("scratch: setup of %s failed", dir);
			unlink(p);
			if (kind == 0 ? symlink(victim, p) : mkfifo(p, 0644))
				BAIL("%s: %s", p, strerror(errno));
			status = scratch_run(dir, 0);
			v = tu_read_file(victim, &vsize);
			ok(status == 0 && v && vsize == sizeof(victim_text) - 1 &&
			   !memcmp(v, victim_text, vsize),
			   "scratch: %s a %s: the writer opens, commits 200 "
			   "times through rotations, closes, and a reopen has "
			   "the 220 messages (status %#x: exit 2 open, 3 "
			   "commit, 4 close, 5 reopen, 6 count, signal 14 a "
			   "hang); the file outside is untouched (%zu bytes)",
			   names[i], kind == 0 ? "symbolic link to a file "
			   "outside" : "FIFO", status, vsize);
			free(v);
			free(victim);
			free(p);
			free(dir);
		}
}

int main(void)
{
	struct mix_engine_config cfg;
	char *base = tu_tmpdir("dir");

	test_scratch(base);   /* first: forks while this process has no threads */
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	if (mix_engine_create(&cfg, &eng) < 0)
		BAIL("engine: %s", mix_last_error());
	{
		/* a directory that is not there holds no index */
		struct mix_index *none = NULL;
		char *missing;
		int ret;
		if (asprintf(&missing, "%s/missing", base) < 0)
			BAIL("out of memory");
		ret = mix_index_open(eng, missing, MIX_OPEN_READONLY, &none);
		is(ret, MIX_ENOTFOUND, "a read-only open of a directory that "
		   "does not exist: MIX_ENOTFOUND (%s)", mix_last_error());
		free(missing);
	}
	test_rename(base);
	for (int first = 0; first < 2; first++) {
		test_replace(base, first, 0);
		test_replace(base, first, 1);
		test_replace(base, first, 300);
	}
	if (mix_engine_free(&eng) < 0)
		BAIL("engine free: %s", mix_last_error());
	tu_rmdir_r(base);
	free(base);
	return tap_done();
}
