/*
 * Recovery across lifecycles (engine/index.c, engine/index-commit.c;
 * docs/format.md §3.5 "Which logs belong", docs/reliability.md):
 *  - idle writable sessions (open, close, no change) leave every file as
 *    it was, any number of times, and a crash after idle sessions loses
 *    nothing acknowledged;
 *  - every log lost while mix.index survives: the open says so and the
 *    next modseq is above every modseq issued before;
 *  - logs that do not belong (swapped, from another index, a mix.index
 *    from elsewhere or pointing past its logs): MIX_ECORRUPT naming the
 *    file and the field, for writable and read-only opens, and mixctl
 *    check agrees with the library.
 *
 * Every scenario step runs in a child process of this single-threaded
 * parent (a crash is the child's _exit without closing, which is what
 * kill -9 leaves: the page cache keeps every write), so the parent never
 * forks with engine threads running.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "crc32c.h"
#include "fileio.h"
#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

/* What children report to the parent (shared memory). */
struct shared {
	uint64_t max_modseq;    /* highest modseq any commit returned */
	uint32_t max_uid;       /* highest UID ever appended */
	uint32_t count;         /* messages seen by the last check */
	uint64_t modseq;        /* a step's own result */
	uint32_t uid;
	int ret;
	int logs_missing;
	char err[512];
	char warnings[2048];
};

static struct shared *sh;
static uint64_t child_rotate_size;   /* engine config of the children */

static void on_warning(void *ctx, const char *msg)
{
	size_t n = strlen(sh->warnings);
	(void)ctx;
	snprintf(sh->warnings + n, sizeof(sh->warnings) - n, "%s\n", msg);
}

typedef int (*step_fn)(struct mix_engine *e, const char *dir, int arg);

/* Run fn in a child with its own engine; the child's exit code is fn's
 * result (0 good, else a step-specific failure code). */
static int in_child(step_fn fn, const char *dir, int arg)
{
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		BAIL("fork");
	if (pid == 0) {
		struct mix_engine_config cfg;
		struct mix_engine *e;
		mix_engine_config_init(&cfg);
		cfg.warning = on_warning;
		if (child_rotate_size)
			cfg.log_rotate_size = child_rotate_size;
		if (mix_engine_create(&cfg, &e) < 0)
			_exit(100);
		_exit(fn(e, dir, arg));
	}
	if (waitpid(pid, &st, 0) < 0)
		BAIL("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

static void note_err(int ret)
{
	sh->ret = ret;
	snprintf(sh->err, sizeof(sh->err), "%s", mix_last_error());
}

/* Append n messages with durability d; record modseq and UIDs. */
static int commit_n(struct mix_index *idx, int n, enum mix_durability d)
{
	struct mix_commit_result res;
	struct mix_txn *t;
	int i, ret;

	if ((ret = mix_txn_begin(idx, &t)) < 0)
		return ret;
	for (i = 0; i < n; i++)
		mix_txn_append(t, MIX_FLAG_SEEN, NULL, NULL);
	if ((ret = mix_txn_commit(&t, d, &res)) < 0)
		return ret;
	if (res.modseq > sh->max_modseq)
		sh->max_modseq = res.modseq;
	sh->modseq = res.modseq;
	sh->uid = res.last_uid;
	if (res.last_uid > sh->max_uid)
		sh->max_uid = res.last_uid;
	return 0;
}

/* ---- steps (run in children) ------------------------------------------ */

/* arg: 0 create + 3 SYNC messages + close */
static int st_create(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	int ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx);
	(void)arg;
	if (ret < 0 || commit_n(idx, 3, MIX_DURABILITY_SYNC) < 0) {
		note_err(ret);
		return 1;
	}
	return mix_index_close(&idx) == 0 ? 0 : 2;
}

/* open writable, close without a change */
static int st_idle(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	int ret = mix_index_open(e, dir, arg, &idx);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	sh->count = tu_messages(idx);
	return mix_index_close(&idx) == 0 ? 0 : 2;
}

/* open, commit arg messages with SYNC, die without closing */
static int st_commit_crash(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	int ret = mix_index_open(e, dir, 0, &idx);
	if (ret < 0 || (ret = commit_n(idx, arg, MIX_DURABILITY_SYNC)) < 0) {
		note_err(ret);
		return 1;
	}
	_exit(0);
}

/* the same with NONE */
static int st_commit_none_crash(struct mix_engine *e, const char *dir,
				int arg)
{
	struct mix_index *idx;
	int ret = mix_index_open(e, dir, 0, &idx), i;
	for (i = 0; ret == 0 && i < arg; i++)
		ret = commit_n(idx, 1, MIX_DURABILITY_NONE);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	_exit(0);
}

/* open with flags arg; report count, logs_missing and, if writable, the
 * modseq and UID of one more commit */
static int st_open_commit(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	struct mix_open_info info;
	int ret;

	sh->warnings[0] = '\0';
	sh->modseq = 0;
	sh->uid = 0;
	ret = mix_index_open(e, dir, (unsigned)arg, &idx);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	sh->ret = 0;
	mix_index_open_info(idx, &info);
	sh->logs_missing = info.logs_missing;
	sh->count = tu_messages(idx);
	if (!(arg & MIX_OPEN_READONLY)) {
		struct mix_commit_result res;
		struct mix_txn *t;
		if (mix_txn_begin(idx, &t) < 0)
			return 2;
		mix_txn_append(t, 0, NULL, NULL);
		if ((ret = mix_txn_commit(&t, MIX_DURABILITY_SYNC, &res)) < 0) {
			note_err(ret);
			return 3;
		}
		sh->modseq = res.modseq;
		sh->uid = res.last_uid;
	}
	return mix_index_close(&idx) == 0 ? 0 : 4;
}

static int mixctl_check(const char *dir);

/* ---- what a power cut keeps ------------------------------------------------
 * The trace hook of engine/fileio.c tells which bytes of each file were
 * made durable: a file's size at its last fsync/fdatasync.  The parent
 * cuts every file written by the child back to that size: the log's
 * unsynced tail is lost, an fsynced mix.index is kept.  (The simulator in
 * stress/powercut.c builds every state; this is the one that matters.) */
struct durable {
	uint64_t ino[16], size[16];
	int n;
};

/* Called from the writer role's thread and the checkpointer thread
 * (which syncs the log up to a checkpoint's position): under a lock, and
 * a file's durable size only grows (a sync up to an earlier position may
 * finish after a later one). */
static pthread_mutex_t durable_lock = PTHREAD_MUTEX_INITIALIZER;

static void trace_durable(void *ctx, const struct mix_io_event *ev)
{
	struct durable *d = ctx;
	struct stat st;
	int i;
	if ((ev->kind != MIX_IO_EV_FDATASYNC && ev->kind != MIX_IO_EV_FSYNC) ||
	    fstat(ev->fd, &st) < 0)
		return;
	pthread_mutex_lock(&durable_lock);
	for (i = 0; i < d->n && d->ino[i] != (uint64_t)st.st_ino; i++)
		;
	if (i == d->n && d->n < 16)
		d->ino[d->n++] = (uint64_t)st.st_ino;
	if (i < 16 && (uint64_t)st.st_size > d->size[i])
		d->size[i] = (uint64_t)st.st_size;
	pthread_mutex_unlock(&durable_lock);
}

static struct durable *durable;   /* shared with the parent */

static void power_cut(const char *dir)
{
	static const char *const names[2] = { "mix.index.log",
					      "mix.index.log.2" };
	char p[4096];
	struct stat st;
	int i, j;
	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%.4000s/%s", dir, names[i]);
		if (stat(p, &st) < 0)
			continue;
		for (j = 0; j < durable->n; j++)
			if (durable->ino[j] == (uint64_t)st.st_ino &&
			    durable->size[j] < (uint64_t)st.st_size) {
				diag("power cut: %s %llu -> %llu bytes", names[i],
				     (unsigned long long)st.st_size,
				     (unsigned long long)durable->size[j]);
				if (truncate(p, (off_t)durable->size[j]) < 0)
					BAIL("truncate");
			}
	}
}

/* arg 0: SYNC, NONE, close.  1: SYNC, extension registration, close.
 * 2: NONE commits past the rotation size, then SYNC commits in the next
 * log, crash. */
static int st_unsynced(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	uint32_t ext;
	int ret, i;

	memset(durable, 0, sizeof(*durable));
	mix_io_trace_set(trace_durable, durable);
	ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx);
	if (ret == 0)
		ret = commit_n(idx, 2, MIX_DURABILITY_SYNC);
	if (ret == 0 && arg == 0)
		ret = commit_n(idx, 2, MIX_DURABILITY_NONE);
	if (ret == 0 && arg == 1)
		ret = mix_index_ext_register(idx, "x.test", 8, 8, 0, &ext);
	for (i = 0; ret == 0 && arg == 2 && i < 150; i++)
		ret = commit_n(idx, 1, MIX_DURABILITY_NONE);
	for (i = 0; ret == 0 && arg == 2 && i < 3; i++)
		ret = commit_n(idx, 1, MIX_DURABILITY_SYNC);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	if (arg == 2)
		_exit(0);   /* the power goes while it runs */
	ret = mix_index_close(&idx);
	mix_io_trace_set(NULL, NULL);
	return ret == 0 ? 0 : 2;
}

static void test_unsynced(const char *base)
{
	static const char *const what[3] = {
		"SYNC then NONE commits, close",
		"SYNC commit then extension registration, close",
		"NONE commits past a rotation, then SYNC commits" };
	static const uint32_t want[3] = { 2, 2, 5 };
	char dir[4096];
	int i, ret;

	durable = mmap(NULL, sizeof(*durable), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (durable == MAP_FAILED)
		BAIL("mmap");
	for (i = 0; i < 3; i++) {
		snprintf(dir, sizeof(dir), "%.4000s/u%d", base, i);
		mkdir(dir, 0755);
		child_rotate_size = i == 2 ? 4096 : 0;
		ret = in_child(st_unsynced, dir, i);
		child_rotate_size = 0;
		is(ret, 0, "%s (exit %d: %s)", what[i], ret, ret ? sh->err : "ok");
		power_cut(dir);
		ret = in_child(st_open_commit, dir, MIX_OPEN_READONLY);
		ok(ret == 0 && sh->count >= want[i], "%s, power cut: opens "
		   "with the %u SYNC-acknowledged messages (ret %d, %u "
		   "messages, %s)", what[i], want[i], ret, sh->count,
		   ret ? sh->err : "ok");
		ret = in_child(st_open_commit, dir, 0);
		is(ret, 0, "%s, power cut: writable open (%s)", what[i],
		   ret ? sh->err : "ok");
	}
	munmap(durable, sizeof(*durable));
}

/* 12 SYNC commits of one message each, then a crash */
static int st_twelve(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	int ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx), i;
	(void)arg;
	for (i = 0; ret == 0 && i < 12; i++)
		ret = commit_n(idx, 1, MIX_DURABILITY_SYNC);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	_exit(0);
}

/* open with flags arg and report what open_info says about salvage */
static int st_salvage(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	struct mix_open_info info;
	int ret;

	sh->warnings[0] = '\0';
	ret = mix_index_open(e, dir, (unsigned)arg, &idx);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	mix_index_open_info(idx, &info);
	sh->count = tu_messages(idx);
	sh->ret = info.salvaged;
	sh->modseq = info.salvage_skipped_bytes;
	return mix_index_close(&idx) == 0 ? 0 : 2;
}

/* Issue 10 item 6: one flipped byte at offset 300 of a log of 12
 * SYNC-acknowledged transactions used to drop 11 of them with a
 * warning.  It is damage (later transactions say everything before them
 * was durable): MIX_ECORRUPT naming file and offset; salvage keeps the
 * other 11 and reports the skipped bytes; the open after it is clean. */
static void test_midlog(const char *base)
{
	char dir[4096], p[4200];
	uint8_t *d;
	size_t size;
	int ret;

	snprintf(dir, sizeof(dir), "%.4000s/mid", base);
	mkdir(dir, 0755);
	is(in_child(st_twelve, dir, 0), 0, "12 SYNC commits, crash");
	snprintf(p, sizeof(p), "%s/mix.index.log", dir);
	d = tu_read_file(p, &size);
	ok(d && size > 400, "the log holds them (%zu bytes)", size);
	if (!d)
		return;
	d[300] ^= 0x01;
	tu_write_file(p, d, size);
	free(d);
	ret = in_child(st_salvage, dir, MIX_OPEN_READONLY);
	ok(ret == 1 && sh->ret == MIX_ECORRUPT && strstr(sh->err, "mix.index.log") &&
	   strstr(sh->err, "offset"), "a flipped byte mid-log: MIX_ECORRUPT "
	   "naming file and offset: %s", ret == 1 ? sh->err : "it opened");
	ret = in_child(st_salvage, dir, 0);
	ok(ret == 1 && sh->ret == MIX_ECORRUPT, "writable open refuses too "
	   "(%s)", ret == 1 ? sh->err : "it opened");
	ok(mixctl_check(dir) != 0, "mixctl check agrees");
	{	/* the same through mixctl salvage, on a copy */
		char d2[4200], cmd[17000];
		const char *b = getenv("MIX_BUILD");
		int st;
		snprintf(d2, sizeof(d2), "%s2", dir);
		snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && %s/mixctl "
			 "salvage '%s' >/dev/null", dir, d2, b ? b : "build",
			 d2);
		st = system(cmd);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
		   mixctl_check(d2) <= 0, "mixctl salvage, then mixctl "
		   "check is clean (status %d)", st);
		ret = in_child(st_open_commit, d2, MIX_OPEN_READONLY);
		ok(ret == 0 && sh->count == 11, "with the 11 messages (%u)",
		   sh->count);
	}
	ret = in_child(st_salvage, dir, MIX_OPEN_SALVAGE);
	ok(ret == 0 && sh->count == 11 && sh->ret == 1 && sh->modseq > 0 &&
	   strstr(sh->warnings, "salvage"), "salvage keeps the other 11 "
	   "messages and reports %llu skipped bytes (ret %d, %u messages; "
	   "%s)", (unsigned long long)sh->modseq, ret, sh->count,
	   sh->warnings);
	ret = in_child(st_open_commit, dir, MIX_OPEN_READONLY);
	ok(ret == 0 && sh->count == 11 && !sh->logs_missing &&
	   !sh->warnings[0], "the open after the salvage is clean (ret %d, "
	   "%u messages, logs_missing %d, warnings: %s)", ret, sh->count,
	   sh->logs_missing, sh->warnings);
	ret = in_child(st_open_commit, dir, 0);
	/* the salvage skipped a transaction that was acknowledged: the
	 * UIDs it may have handed out are skipped too, up to the session's
	 * reservation (format.md §2.7, reliability.md finding 16) */
	ok(ret == 0 && sh->count == 11 && sh->uid > 12, "and takes the "
	   "next commit above every UID handed out before (ret %d, UID %u)",
	   ret, sh->uid);
	ok(mixctl_check(dir) <= 0, "mixctl check clean after the salvage");
}

/* MIX_OPEN_RECREATE, then close */
static int st_recreate(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	int ret = mix_index_open(e, dir, MIX_OPEN_RECREATE, &idx);
	(void)arg;
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	return mix_index_close(&idx) == 0 ? 0 : 2;
}


/* A RECREATE interrupted after the new mix.index was written and before
 * the old logs were removed: the old logs are set aside by the next
 * writer, and stay out of every later open. */
static void test_recreate_leftover(const char *base);

/* arg messages appended with NONE in transactions of 1,000 after one
 * SYNC commit, then the power goes (the child dies; power_cut() drops
 * what was never synced) */
static int st_uids(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	int ret, done;

	memset(durable, 0, sizeof(*durable));
	mix_io_trace_set(trace_durable, durable);
	ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx);
	if (ret == 0)
		ret = commit_n(idx, 1, MIX_DURABILITY_SYNC);
	for (done = 0; ret == 0 && done < arg; done += 1000)
		ret = commit_n(idx, arg - done < 1000 ? arg - done : 1000,
			       MIX_DURABILITY_NONE);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	_exit(0);
}

/* Issue 10 item 9: a UID handed out (APPENDUID, EXISTS) and lost to a
 * power cut is never given to another message (RFC 9051 §2.3.1.1); a
 * process crash loses no write, so it skips nothing. */
static void test_uids(const char *base)
{
	static const int counts[2] = { 500, 140000 };
	char dir[4096], p[4200];
	uint32_t seen;
	int i, ret, fd;

	durable = mmap(NULL, sizeof(*durable), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (durable == MAP_FAILED)
		BAIL("mmap");
	for (i = 0; i < 2; i++) {
		snprintf(dir, sizeof(dir), "%.4000s/uid%d", base, i);
		mkdir(dir, 0755);
		sh->max_uid = 0;
		ret = in_child(st_uids, dir, counts[i]);
		seen = sh->max_uid;
		ok(ret == 0 && seen == (uint32_t)counts[i] + 1, "%d NONE "
		   "appends after a SYNC one: UIDs up to %u handed out (%s)",
		   counts[i], seen, ret ? sh->err : "ok");
		power_cut(dir);
		/* the lock file says which boot wrote: a power cut is a new
		 * boot */
		snprintf(p, sizeof(p), "%s/mix.index.lock", dir);
		fd = open(p, O_WRONLY | O_TRUNC);
		if (fd >= 0) {
			if (write(fd, "1 another-boot\n", 15) != 15)
				diag("write %s", p);
			close(fd);
		}
		ret = in_child(st_open_commit, dir, 0);
		ok(ret == 0 && sh->uid > seen, "after the power cut the next "
		   "UID %u is above every UID handed out (%u) (%s)", sh->uid,
		   seen, ret ? sh->err : "ok");
		ok(ret == 0 && strstr(sh->warnings, "UIDs"), "and the open "
		   "says so: %s", sh->warnings);
	}
	/* a process crash in the same boot keeps next_uid */
	snprintf(dir, sizeof(dir), "%.4000s/uid-kill", base);
	mkdir(dir, 0755);
	sh->max_uid = 0;
	ret = in_child(st_uids, dir, 1500);
	seen = sh->max_uid;
	ret = in_child(st_open_commit, dir, 0);
	ok(ret == 0 && sh->uid == seen + 1, "after kill -9 in the same boot "
	   "the next UID is %u, expected %u (%s)", sh->uid, seen + 1,
	   ret ? sh->err : "ok");
	munmap(durable, sizeof(*durable));
}

/* Two mailboxes created back to back by one process (the same second,
 * as a server creating a user's folders), dir and dir + "b", each with
 * a SYNC commit, then a crash. */
static int st_twins(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *a, *b;
	char other[4200];
	int ret;
	(void)arg;
	snprintf(other, sizeof(other), "%sb", dir);
	mkdir(other, 0755);
	ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &a);
	if (ret == 0)
		ret = mix_index_open(e, other, MIX_OPEN_CREATE, &b);
	if (ret == 0)
		ret = commit_n(a, 2, MIX_DURABILITY_SYNC);
	if (ret == 0)
		ret = commit_n(b, 3, MIX_DURABILITY_SYNC);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	_exit(0);
}

static void expect_corrupt(const char *dir, const char *what,
			   const char *field);

/* A log copied between two mailboxes the same process created in the
 * same second is refused too: their indexids differ. */
static void test_twins(const char *base)
{
	char dir[4096], p[4300], q[4300];
	uint8_t *d;
	size_t size;
	int ret;

	snprintf(dir, sizeof(dir), "%.4000s/twin", base);
	mkdir(dir, 0755);
	ret = in_child(st_twins, dir, 0);
	is(ret, 0, "two mailboxes created back to back, a commit in each "
	   "(%s)", ret ? sh->err : "ok");
	snprintf(p, sizeof(p), "%sb/mix.index.log", dir);
	snprintf(q, sizeof(q), "%s/mix.index.log", dir);
	d = tu_read_file(p, &size);
	if (d)
		tu_write_file(q, d, size);
	free(d);
	expect_corrupt(dir, "the log of a mailbox created the same second",
		       "indexid");
}

/* append (SYNC), extension registration (logged, not synced), one
 * transaction appending a message with data of that extension (SYNC),
 * append (SYNC), crash */
static int st_ext_chain(struct mix_engine *e, const char *dir, int arg)
{
	struct mix_index *idx;
	struct mix_txn *t;
	uint32_t ext, a;
	uint64_t v = 42;
	int ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx);
	(void)arg;
	if (ret == 0)
		ret = commit_n(idx, 1, MIX_DURABILITY_SYNC);
	if (ret == 0)
		ret = mix_index_ext_register(idx, "x.chain", 8, 8, 0, &ext);
	if (ret == 0 && (ret = mix_txn_begin(idx, &t)) == 0) {
		mix_txn_append(t, 0, NULL, &a);
		mix_txn_append_ext(t, a, ext, &v, sizeof(v));
		ret = mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL);
	}
	if (ret == 0)
		ret = commit_n(idx, 1, MIX_DURABILITY_SYNC);
	if (ret < 0) {
		note_err(ret);
		return 1;
	}
	_exit(0);
}

/* Salvage never keeps half a transaction: the extension's registration
 * is damaged, so the transaction that appends a message with data of
 * that extension no longer applies; its append (the first of its
 * records) must not stay either. */
static void test_salvage_whole(const char *base)
{
	char dir[4096], p[4200];
	uint32_t off = 48, sz;
	uint8_t *d;
	size_t size;
	int ret, i;

	snprintf(dir, sizeof(dir), "%.4000s/whole", base);
	mkdir(dir, 0755);
	ret = in_child(st_ext_chain, dir, 0);
	is(ret, 0, "append, registration, append with its data, append "
	   "(%s)", ret ? sh->err : "ok");
	snprintf(p, sizeof(p), "%s/mix.index.log", dir);
	d = tu_read_file(p, &size);
	for (i = 0; d && i < 1 && off + 16 <= size; i++) {
		memcpy(&sz, d + off + 8, 4);   /* boundary txn_size */
		off += sz;
	}
	if (!d || off + 24 > size) {
		ok(0, "the log holds the registration (%zu bytes)", size);
		free(d);
		return;
	}
	d[off + 20] ^= 0xff;   /* inside the registration transaction */
	tu_write_file(p, d, size);
	free(d);
	ret = in_child(st_salvage, dir, MIX_OPEN_SALVAGE);
	ok(ret == 0 && sh->count == 2, "salvage keeps the 2 messages whose "
	   "transactions apply whole, not the append of the one that no "
	   "longer applies (ret %d, %u messages; %s)", ret, sh->count,
	   sh->warnings);
	ret = in_child(st_open_commit, dir, MIX_OPEN_READONLY);
	ok(ret == 0 && sh->count == 2, "and the next open agrees (%u)",
	   sh->count);
}

/* ---- helpers ------------------------------------------------------------ */
/* mix.index and the logs equal (not the lock file: each writable open
 * records itself there) */
static int files_equal(const struct tu_files *a, const struct tu_files *b,
		       char *why, size_t whysize)
{
	int i;
	for (i = 0; i < 3; i++) {
		if (!a->data[i] != !b->data[i] ||
		    (a->data[i] && (a->size[i] != b->size[i] ||
				    memcmp(a->data[i], b->data[i],
					   a->size[i])))) {
			snprintf(why, whysize, "%s: %zu bytes before, %zu after%s",
				 tu_file_name(i), a->size[i], b->size[i],
				 a->size[i] == b->size[i] ? " (contents differ)"
							  : "");
			return 0;
		}
	}
	return 1;
}

/* mixctl check's exit code, or -1 when the binary is not there */
static int mixctl_check(const char *dir)
{
	const char *b = getenv("MIX_BUILD");
	char cmd[8192];
	int st;
	snprintf(cmd, sizeof(cmd), "%s/mixctl", b ? b : "build");
	if (access(cmd, X_OK) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s/mixctl check '%s' >/dev/null 2>&1",
		 b ? b : "build", dir);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static void path_of(char *buf, size_t size, const char *dir,
		    const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

/* ---- scenarios ------------------------------------------------------------ */

static void test_idle(const char *dir)
{
	struct tu_files before, after;
	char why[256] = "";
	int i, ret, same = 1, clean = 1, mc;

	is(in_child(st_create, dir, 0), 0, "created with 3 messages");
	tu_files_save(dir, &before);
	for (i = 0; i < 10; i++) {
		ret = in_child(st_idle, dir, 0);
		if (ret != 0) {
			ok(0, "idle writable session %d: %d (%s)", i + 1, ret,
			   sh->err);
			break;
		}
		tu_files_save(dir, &after);
		if (same && !files_equal(&before, &after, why, sizeof(why)))
			same = 0;
		tu_files_free(&after);
		mc = mixctl_check(dir);
		if (mc > 0 && clean) {
			clean = 0;
			diag("mixctl check after idle session %d: exit %d",
			     i + 1, mc);
		}
	}
	is(i, 10, "ten idle writable sessions in a row open and close");
	ok(same, "idle sessions change no file (%s)", why);
	ok(clean, "mixctl check is clean after each idle session");
	ret = in_child(st_idle, dir, MIX_OPEN_READONLY);
	is(sh->count, 3u, "read-only open after them sees the 3 messages "
	   "(ret %d)", ret);
	tu_files_free(&before);

	/* two idle sessions, a SYNC commit, kill -9, three times */
	for (i = 0; i < 3; i++) {
		in_child(st_idle, dir, 0);
		in_child(st_idle, dir, 0);
		ret = in_child(st_commit_crash, dir, 2);
		if (ret != 0)
			break;
	}
	is(ret, 0, "idle, idle, SYNC commit, crash: three rounds (%s)",
	   ret ? sh->err : "ok");
	ret = in_child(st_open_commit, dir, MIX_OPEN_READONLY);
	ok(ret == 0 && sh->count == 9, "read-only open after the crashes: %u "
	   "messages, expected 9 (%s)", sh->count, ret ? sh->err : "ok");
	ret = in_child(st_open_commit, dir, 0);
	ok(ret == 0 && sh->count == 9 && sh->modseq > sh->max_modseq - 0 &&
	   sh->uid == 10, "writable open: %u messages, next commit modseq "
	   "%llx UID %u (expected 9, above %llx, 10) (%s)", sh->count,
	   (unsigned long long)sh->modseq, sh->uid,
	   (unsigned long long)sh->max_modseq, ret ? sh->err : "ok");
	mc = mixctl_check(dir);
	ok(mc <= 0, "mixctl check clean at the end (exit %d)", mc);
}

static void test_logs_lost(const char *dir)
{
	char p[4096];
	uint64_t seen;
	int ret, mc;

	sh->max_modseq = 0;
	is(in_child(st_create, dir, 0), 0, "created");
	is(in_child(st_commit_none_crash, dir, 4), 0,
	   "4 NONE commits, then a crash");
	seen = sh->max_modseq;
	path_of(p, sizeof(p), dir, tu_file_name(1));
	unlink(p);
	path_of(p, sizeof(p), dir, tu_file_name(2));
	unlink(p);
	ret = in_child(st_open_commit, dir, MIX_OPEN_READONLY);
	ok(ret == 0 && sh->logs_missing && strstr(sh->warnings, "missing"),
	   "every log lost: read-only open works and says so (ret %d %s; "
	   "logs_missing %d; warnings: %s)", ret, sh->err, sh->logs_missing,
	   sh->warnings);
	ret = in_child(st_open_commit, dir, 0);
	ok(ret == 0 && sh->logs_missing, "writable open works and says so "
	   "(ret %d %s)", ret, sh->err);
	ok(sh->modseq > seen, "the next modseq %llx is above every modseq "
	   "issued before (%llx)", (unsigned long long)sh->modseq,
	   (unsigned long long)seen);
	ret = in_child(st_open_commit, dir, 0);
	ok(ret == 0 && !sh->logs_missing, "the open after that is normal "
	   "(ret %d, logs_missing %d)", ret, sh->logs_missing);
	mc = mixctl_check(dir);
	ok(mc <= 0, "mixctl check clean afterwards (exit %d)", mc);

	/* only the active log lost: .log.2 is the newest left */
	is(in_child(st_commit_none_crash, dir, 3), 0, "3 NONE, crash");
	is(in_child(st_commit_none_crash, dir, 3), 0, "3 NONE, crash");
	seen = sh->max_modseq;
	path_of(p, sizeof(p), dir, tu_file_name(1));
	unlink(p);
	ret = in_child(st_open_commit, dir, 0);
	ok(ret == 0 && sh->modseq > seen, "active log lost: the next modseq "
	   "%llx is above %llx (ret %d %s)", (unsigned long long)sh->modseq,
	   (unsigned long long)seen, ret, sh->err);
}

/* The library and mixctl check must give the same verdict. */
static void expect_corrupt(const char *dir, const char *what,
			   const char *field)
{
	int ret = in_child(st_open_commit, dir, 0), mc;
	ok(ret == 1 && sh->ret == MIX_ECORRUPT && strstr(sh->err, field),
	   "%s: writable open fails with MIX_ECORRUPT naming %s: %s", what,
	   field, ret == 1 ? sh->err : "it opened");
	ret = in_child(st_open_commit, dir, MIX_OPEN_READONLY);
	ok(ret == 1 && sh->ret == MIX_ECORRUPT,
	   "%s: read-only open fails too: %s", what,
	   ret == 1 ? sh->err : "it opened");
	mc = mixctl_check(dir);
	ok(mc != 0, "%s: mixctl check agrees (exit %d)", what, mc);
}

/* A mailbox with commits in both logs beyond mix.index's checkpoint. */
static void make_busy(const char *dir)
{
	in_child(st_create, dir, 0);
	in_child(st_commit_crash, dir, 2);
	in_child(st_commit_crash, dir, 2);
}

static void test_foreign(const char *dir, const char *other,
			 const char *older)
{
	char p[4096], q[4096];
	struct tu_files base, f;
	uint8_t *d;
	size_t size;
	uint32_t crc;
	int ret;

	make_busy(dir);
	tu_files_save(dir, &base);
	ok(base.data[1] && base.data[2], "both logs exist");

	/* swapped */
	f = base;
	f.data[1] = base.data[2];
	f.size[1] = base.size[2];
	f.data[2] = base.data[1];
	f.size[2] = base.size[1];
	tu_files_restore(dir, &f);
	expect_corrupt(dir, "logs swapped", "file_seq");

	/* a log from another mailbox (created a second later: another
	 * indexid) */
	tu_files_restore(dir, &base);
	sleep(1);
	make_busy(other);
	path_of(p, sizeof(p), other, tu_file_name(1));
	path_of(q, sizeof(q), dir, tu_file_name(1));
	d = tu_read_file(p, &size);
	tu_write_file(q, d, size);
	free(d);
	expect_corrupt(dir, "active log from another mailbox", "indexid");
	tu_files_restore(dir, &base);
	path_of(p, sizeof(p), other, tu_file_name(2));
	path_of(q, sizeof(q), dir, tu_file_name(2));
	d = tu_read_file(p, &size);
	tu_write_file(q, d, size);
	free(d);
	expect_corrupt(dir, ".log.2 from another mailbox", "indexid");

	/* an active log from an older mailbox (a lower indexid, as the old
	 * index a MIX_OPEN_RECREATE replaced would have) */
	tu_files_restore(dir, &base);
	path_of(p, sizeof(p), older, tu_file_name(1));
	path_of(q, sizeof(q), dir, tu_file_name(1));
	d = tu_read_file(p, &size);
	tu_write_file(q, d, size);
	free(d);
	expect_corrupt(dir, "active log from an older mailbox", "indexid");

	/* mix.index from another mailbox (valid checksum) */
	tu_files_restore(dir, &base);
	path_of(p, sizeof(p), other, tu_file_name(0));
	path_of(q, sizeof(q), dir, tu_file_name(0));
	d = tu_read_file(p, &size);
	tu_write_file(q, d, size);
	free(d);
	expect_corrupt(dir, "mix.index from another mailbox", "indexid");

	/* mix.index whose log_file_seq is beyond its logs (checksum fixed) */
	tu_files_restore(dir, &base);
	d = tu_read_file(q, &size);
	d[56] += 5;
	memset(d + 108, 0, 4);
	crc = mix_crc32c(0, d, size);
	memcpy(d + 108, &crc, 4);
	tu_write_file(q, d, size);
	free(d);
	expect_corrupt(dir, "mix.index log_file_seq beyond its logs",
		       "log_file_seq");

	/* unchanged files still open, with everything */
	tu_files_restore(dir, &base);
	ret = in_child(st_open_commit, dir, MIX_OPEN_READONLY);
	ok(ret == 0 && sh->count == 7, "the original files open with all 7 "
	   "messages (ret %d, %u messages)", ret, sh->count);
	tu_files_free(&base);
}

int main(void)
{
	char *d1 = tu_tmpdir("reopen1"), *d2 = tu_tmpdir("reopen2"),
	     *d3 = tu_tmpdir("reopen3"), *d4 = tu_tmpdir("reopen4");
	char *d5 = tu_tmpdir("reopen5");

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		BAIL("mmap");
	make_busy(d5);   /* a mailbox one second older than d3 */
	sleep(1);
	test_idle(d1);
	test_logs_lost(d2);
	test_foreign(d3, d4, d5);
	test_unsynced(d1);
	test_midlog(d1);
	test_recreate_leftover(d1);
	test_uids(d1);
	test_twins(d1);
	test_salvage_whole(d1);
	tu_rmdir_r(d5);
	free(d5);
	tu_rmdir_r(d1);
	tu_rmdir_r(d2);
	tu_rmdir_r(d3);
	tu_rmdir_r(d4);
	free(d1);
	free(d2);
	free(d3);
	free(d4);
	return tap_done();
}

static void test_recreate_leftover(const char *base)
{
	char dir[4096];
	struct tu_files old, now;
	int ret, i;

	snprintf(dir, sizeof(dir), "%.4000s/left", base);
	mkdir(dir, 0755);
	make_busy(dir);
	tu_files_save(dir, &old);
	is(in_child(st_recreate, dir, 0), 0, "recreated");
	tu_files_save(dir, &now);
	/* the state the crash leaves: new mix.index, old logs */
	for (i = 1; i < 3; i++) {
		free(now.data[i]);
		now.data[i] = old.data[i];
		now.size[i] = old.size[i];
		old.data[i] = NULL;
	}
	tu_files_restore(dir, &now);
	for (i = 0; i < 3; i++) {
		ret = in_child(st_open_commit, dir, 0);
		if (ret != 0 || sh->count != (unsigned)i)
			break;
	}
	is(i, 3, "after an interrupted RECREATE: three writing sessions "
	   "open and see only the new index's messages (session %d: ret %d, "
	   "%u messages, %s)", i + 1, ret, sh->count, ret ? sh->err : "ok");
	ok(mixctl_check(dir) <= 0, "mixctl check clean");
	tu_files_free(&old);
	tu_files_free(&now);
}
