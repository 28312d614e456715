/*
 * Helpers shared by the test programs: temporary directories, seeds,
 * file utilities, the sanitizers that rule out a fork among threads, and
 * small operations on a mix index or mailbox list that many tests need
 * (appends, highest modseq, counts, UID sets as text, a list opened).
 * Header-only (static functions); the setup helpers stop the test with
 * BAIL (tap.h) when mix fails.  Any thread, outside a read-side section
 * (each reader helper takes its own).
 */
#ifndef MIX_TESTUTIL_H
#define MIX_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mix/mix.h"
#include "tap.h"

/* A fresh directory under $TMPDIR (or /tmp); removed by tu_rmdir_r. */
static inline char *tu_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p;
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/mix-%s.XXXXXX", base, tag) < 0 || !mkdtemp(p)) {
		perror("mkdtemp");
		exit(255);
	}
	return p;
}

static inline void tu_rmdir_r(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *path;
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
			continue;
		if (unlink(path) < 0 && errno == EISDIR)
			tu_rmdir_r(path);
		free(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Seed from $MIX_SEED or the clock; always printed so a failure can be
 * replayed with MIX_SEED=<n>. */
static inline uint64_t tu_seed(void)
{
	const char *s = getenv("MIX_SEED");
	uint64_t seed;
	if (s && *s)
		seed = strtoull(s, NULL, 0);
	else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
	}
	printf("# seed: MIX_SEED=%llu\n", (unsigned long long)seed);
	return seed;
}

/* xorshift64* */
static inline uint64_t tu_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}
static inline uint32_t tu_rand_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(tu_rand(s) % n) : 0;
}

/* Whole file into malloc'd memory; returns NULL on error. */
static inline uint8_t *tu_read_file(const char *path, size_t *size_r)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *buf;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0) close(fd);
		return NULL;
	}
	buf = malloc(st.st_size ? st.st_size : 1);
	if (buf && pread(fd, buf, st.st_size, 0) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*size_r = st.st_size;
	return buf;
}

static inline int tu_write_file(const char *path, const void *buf, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int ok;
	if (fd < 0)
		return -1;
	ok = write(fd, buf, size) == (ssize_t)size;
	close(fd);
	return ok ? 0 : -1;
}

/* Scale of the randomized tests: $MIX_TEST_SCALE (default 1). */
static inline double tu_scale(void)
{
	const char *s = getenv("MIX_TEST_SCALE");
	double v = s ? atof(s) : 1.0;
	return v > 0 ? v : 1.0;
}

/* The files of an index directory, as a crash leaves them: mix.index,
 * the two logs, the lock file, which says in which boot the last
 * writer ran (format.md §2.7: a copy without it looks like a power cut,
 * and next_uid skips what the writer had reserved), and the next log of
 * a rotation still completing (format.md §3.5), which holds acknowledged
 * commits.  Restoring also removes mix.index.tmp, which a crash can
 * leave. */
#define TU_NFILES 5

static inline const char *tu_file_name(int i)
{
	static const char *const names[TU_NFILES] = { "mix.index",
		"mix.index.log", "mix.index.log.2", "mix.index.lock",
		"mix.index.log.newtmp" };
	return names[i];
}

struct tu_files {
	uint8_t *data[TU_NFILES];   /* NULL: the file was absent */
	size_t size[TU_NFILES];
};

/* Identity of each file (inode, size, change time; zeros if absent). */
static inline void tu_files_ids(const char *dir, struct stat *st)
{
	char p[4200];
	int i;
	for (i = 0; i < TU_NFILES; i++) {
		snprintf(p, sizeof(p), "%.4000s/%s", dir, tu_file_name(i));
		if (stat(p, &st[i]) < 0)
			memset(&st[i], 0, sizeof(st[i]));
	}
}

/* The files as they are at one moment: read again until none changed
 * while they were read (with the writer idle, the checkpointer may still
 * be completing a rotation, whose renames move the logs: format.md §3.5
 * "A rotation in two steps"). */
static inline void tu_files_save(const char *dir, struct tu_files *f)
{
	struct stat before[TU_NFILES], after[TU_NFILES];
	char p[4200];
	int i, tries, same = 0;

	for (tries = 0; tries < 100 && !same; tries++) {
		if (tries)
			usleep(2000);
		memset(f, 0, sizeof(*f));
		tu_files_ids(dir, before);
		for (i = 0; i < TU_NFILES; i++) {
			snprintf(p, sizeof(p), "%.4000s/%s", dir,
				 tu_file_name(i));
			f->data[i] = tu_read_file(p, &f->size[i]);
		}
		tu_files_ids(dir, after);
		same = 1;
		for (i = 0; i < TU_NFILES; i++)
			if (before[i].st_ino != after[i].st_ino ||
			    before[i].st_size != after[i].st_size ||
			    before[i].st_ctim.tv_sec != after[i].st_ctim.tv_sec ||
			    before[i].st_ctim.tv_nsec != after[i].st_ctim.tv_nsec)
				same = 0;
		if (!same)
			for (i = 0; i < TU_NFILES; i++)
				free(f->data[i]);
	}
	if (!same)
		BAIL("%s: its files kept changing while they were copied", dir);
}

static inline void tu_files_restore(const char *dir, const struct tu_files *f)
{
	static const char *const tmp[1] = { "mix.index.tmp" };
	char p[4200];
	int i;
	for (i = 0; i < TU_NFILES; i++) {
		snprintf(p, sizeof(p), "%.4000s/%s", dir, tu_file_name(i));
		unlink(p);
		if (f->data[i] && tu_write_file(p, f->data[i], f->size[i]) < 0) {
			perror(p);
			exit(255);
		}
	}
	for (i = 0; i < 1; i++) {
		snprintf(p, sizeof(p), "%.4000s/%s", dir, tmp[i]);
		unlink(p);
	}
}

static inline void tu_files_free(struct tu_files *f)
{
	int i;
	for (i = 0; i < TU_NFILES; i++)
		free(f->data[i]);
}

/* `mixctl check dir` exits 0 (warnings allowed); 1 when mixctl is NULL
 * (not built: the check is skipped).  A failure's status goes to diag. */
static inline int tu_mixctl_ok(const char *mixctl, const char *dir)
{
	char cmd[8192];
	int st;
	if (!mixctl)
		return 1;
	snprintf(cmd, sizeof(cmd), "'%s' check '%s' > /dev/null 2>&1",
		 mixctl, dir);
	st = system(cmd);
	if (st != 0)
		diag("mixctl check %s: status %d", dir, st);
	return st == 0;
}

/* A directory base/name, created (it may exist); malloc'd. */
static inline char *tu_subdir(const char *base, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", base, name) < 0)
		BAIL("out of memory");
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		BAIL("mkdir %s failed", p);
	return p;
}

/* ---- fork among mix's threads ------------------------------------------- */

/* A child that starts an engine (threads) after a multi-threaded fork:
 * ThreadSanitizer cannot, and GCC 12's ASan allocator may hang there
 * (tests/test-fork.c says more).  TU_FORK_SKIP_WHY is defined, to the
 * reason, under either (GCC's and clang's spellings); tests skip their
 * fork checks then. */
#if defined(__SANITIZE_THREAD__)
#define TU_FORK_SKIP_WHY "ThreadSanitizer cannot start threads in the " \
	"child of a multi-threaded fork"
#elif defined(__SANITIZE_ADDRESS__)
#define TU_FORK_SKIP_WHY "ASan's allocator (GCC 12) is not locked around " \
	"fork: a child can hang in malloc"
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_FORK_SKIP_WHY "ThreadSanitizer cannot start threads in the " \
	"child of a multi-threaded fork"
#elif __has_feature(address_sanitizer)
#define TU_FORK_SKIP_WHY "ASan's allocator is not locked around fork: a " \
	"child can hang in malloc"
#endif
#endif

/* ---- a mix index ------------------------------------------------------- */

/* Append n messages in one transaction (MIX_DURABILITY_NONE), the first
 * `seen` of them with \Seen.  Test setup: an error bails. */
static inline void tu_append(struct mix_index *idx, uint32_t n,
			     uint32_t seen)
{
	struct mix_txn *t;
	uint32_t i;
	if (mix_txn_begin(idx, &t) < 0)
		BAIL("append: begin: %s", mix_last_error());
	for (i = 0; i < n; i++)
		if (mix_txn_append(t, i < seen ? MIX_FLAG_SEEN : 0, NULL,
				   NULL) < 0)
			BAIL("append: %s", mix_last_error());
	if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
		BAIL("append: commit: %s", mix_last_error());
}

/* Append n messages (no flags) in one transaction committed with d, its
 * result to *res (may be NULL).  Returns the commit's return, or the
 * error of begin or append (the transaction aborted). */
static inline int tu_append_commit(struct mix_index *idx, uint32_t n,
				   enum mix_durability d,
				   struct mix_commit_result *res)
{
	struct mix_txn *t;
	uint32_t i;
	int ret;
	if ((ret = mix_txn_begin(idx, &t)) < 0)
		return ret;
	for (i = 0; i < n; i++)
		if ((ret = mix_txn_append(t, 0, NULL, NULL)) < 0) {
			mix_txn_abort(&t);
			return ret;
		}
	return mix_txn_commit(&t, d, res);
}

/* HIGHESTMODSEQ of the index's newest snapshot. */
static inline uint64_t tu_highest_modseq(struct mix_index *idx)
{
	uint64_t v;
	mix_read_lock();
	v = mix_snap_highest_modseq(mix_index_snap(idx));
	mix_read_unlock();
	return v;
}

/* The modseq of message uid, 0 if it is not there. */
static inline uint64_t tu_modseq_of(struct mix_index *idx, uint32_t uid)
{
	struct mix_record rec;
	uint64_t v = 0;
	mix_read_lock();
	if (mix_snap_lookup_uid(mix_index_snap(idx), uid, &rec))
		v = rec.modseq;
	mix_read_unlock();
	return v;
}

/* Messages in the index's newest snapshot. */
static inline uint32_t tu_messages(struct mix_index *idx)
{
	uint32_t n;
	mix_read_lock();
	n = mix_snap_messages_count(mix_index_snap(idx));
	mix_read_unlock();
	return n;
}

/* next_uid of the index's newest snapshot. */
static inline uint32_t tu_next_uid(struct mix_index *idx)
{
	uint32_t n;
	mix_read_lock();
	n = mix_snap_next_uid(mix_index_snap(idx));
	mix_read_unlock();
	return n;
}

/* UID ranges as IMAP writes a set ("1:3,5"), "(none)" when n is 0.  A
 * ring of 8 buffers: one check may format several sets, in any order of
 * evaluation.  Longer sets are cut at a range. */
static inline const char *tu_fmt_set(const struct mix_uid_range *r,
				     uint32_t n)
{
	static char buf[8][512];
	static int which;
	char *b = buf[which = (which + 1) % 8];
	size_t len = 0;
	uint32_t i;
	b[0] = '\0';
	for (i = 0; i < n && len < sizeof(buf[0]) - 24; i++) {
		if (r[i].last != r[i].first)
			snprintf(b + len, sizeof(buf[0]) - len, "%s%u:%u",
				 i ? "," : "", r[i].first, r[i].last);
		else
			snprintf(b + len, sizeof(buf[0]) - len, "%s%u",
				 i ? "," : "", r[i].first);
		len = strlen(b);
	}
	return n ? b : "(none)";
}

/* The set r[0..n) written as tu_fmt_set writes it equals want. */
static inline int tu_set_is(const struct mix_uid_range *r, uint32_t n,
			    const char *want)
{
	return strcmp(tu_fmt_set(r, n), want) == 0;
}

/* ---- a mailbox list ---------------------------------------------------- */

/* Open (creating) the list in dir with cfg (NULL: the defaults).  Test
 * setup: an error bails. */
static inline struct mix_list *tu_list_open(struct mix_engine *e,
					    const char *dir,
					    const struct mix_list_config *cfg)
{
	struct mix_list *l;
	if (mix_list_open(e, dir, cfg, &l) < 0)
		BAIL("open %s: %s", dir, mix_last_error());
	return l;
}

#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer sleeps a second at every exit that leaves threads
 * running (atexit_sleep_ms); the tests that run each step in a child
 * (test-reopen, test-lifecycle, test-damage, ...) exit so many times
 * (the liburcu threads outlive mix_engine_free), which made make tsan
 * take minutes more.  TSAN_OPTIONS still overrides it.  Each test
 * program includes this header from one file only. */
__attribute__((visibility("default"))) /* seen by libtsan */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "atexit_sleep_ms=0";
}
#endif

#endif
