/*
 * Recovery at open (engine/index.c; docs/format.md §3.4-§3.5):
 *  - a child process commits and dies without closing (as after kill -9);
 *    the parent cuts the log at every byte offset of the last transaction
 *    and reopens: the committed prefix is intact, the torn transaction is
 *    gone and reported, and the next commit's modseq is above every modseq
 *    issued before the crash (no modseq is ever reused);
 *  - mix.index damaged while the logs reach back to creation: rebuilt;
 *    damaged when they do not: a clear error naming the file;
 *  - a missing log in the chain, a log of another index, a newer major
 *    version: clear errors, never a crash;
 *  - a second writable open of the same index: MIX_ELOCKED naming the pid;
 *  - replay of flag, keyword and expunge records onto records that live
 *    in the read-only mapping of mix.index (regression: replay once wrote
 *    into the mapping and crashed), for writable and read-only opens.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "mix/mix.h"
#include "crc32c.h"
#include "tap.h"
#include "testutil.h"

#define K 6

static struct mix_engine *engine;
static char warnings[4096];

static void on_warning(void *ctx, const char *msg)
{
	(void)ctx;
	snprintf(warnings + strlen(warnings), sizeof(warnings) - strlen(warnings),
		 "%s\n", msg);
}

static int commit_one(struct mix_index *idx, int i, uint64_t *modseq_r)
{
	struct mix_txn *t;
	struct mix_commit_result res;
	char kw[16];
	const char *kws[] = { kw, NULL };
	struct mix_uid_range r = { (uint32_t)i, (uint32_t)i };
	int j, ret;

	snprintf(kw, sizeof(kw), "k%d", i);
	if ((ret = mix_txn_begin(idx, &t)) < 0)
		return ret;
	for (j = 0; j < 3; j++)
		mix_txn_append(t, i % 2 ? MIX_FLAG_SEEN : 0, kws, NULL);
	mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_FLAGGED);
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	*modseq_r = res.modseq;
	return ret;
}

/* Child: create the index, commit K transactions, report their modseqs,
 * die without closing anything. */
static void child_commits(const char *dir, int fd)
{
	struct mix_engine *e;
	struct mix_index *idx;
	uint64_t m;
	int i;
	if (mix_engine_create(NULL, &e) < 0 ||
	    mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		_exit(2);
	for (i = 1; i <= K; i++) {
		if (commit_one(idx, i, &m) < 0)
			_exit(3);
		if (write(fd, &m, sizeof(m)) != sizeof(m))
			_exit(4);
	}
	_exit(0);
}

/* Child: 2048 messages checkpointed, then changes to mapped records,
 * then death without closing. */
static void child_mapped_changes(const char *dir)
{
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_txn *t;
	struct mix_uid_range r1 = { 1, 1 }, r2 = { 2, 2 }, r3 = { 3, 3 };
	const char *kw[] = { "$Junk", NULL };
	int i;
	if (mix_engine_create(NULL, &e) < 0 ||
	    mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		_exit(2);
	mix_txn_begin(idx, &t);
	for (i = 0; i < 2048; i++)
		mix_txn_append(t, 0, NULL, NULL);
	if (mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL) < 0 ||
	    mix_index_close(&idx) < 0 || mix_index_open(e, dir, 0, &idx) < 0)
		_exit(3);
	mix_txn_begin(idx, &t);
	mix_txn_flags(t, &r1, 1, MIX_MODIFY_ADD, MIX_FLAG_SEEN);
	mix_txn_keywords(t, &r2, 1, MIX_MODIFY_ADD, kw);
	mix_txn_expunge(t, &r3, 1);
	if (mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL) < 0)
		_exit(4);
	_exit(0);
}

static void crash_child_mapped(const char *dir)
{
	int st;
	pid_t pid = fork();
	if (pid == 0)
		child_mapped_changes(dir);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child changed checkpointed "
	   "records and died (status %d)", st);
}

static void test_mapped_replay(const char *dir)
{
	static const unsigned modes[2] = { MIX_OPEN_READONLY, 0 };
	int i;
	for (i = 0; i < 2; i++) {
		struct mix_index *idx;
		struct mix_record r1, r2;
		uint32_t kw;
		const struct mix_snap *s;
		int ret = mix_index_open(engine, dir, modes[i], &idx);
		is(ret, 0, "%s open replays onto mapped records: %s",
		   i ? "writable" : "read-only", ret ? mix_last_error() : "ok");
		if (ret)
			continue;
		mix_read_lock();
		s = mix_index_snap(idx);
		ok(mix_snap_messages_count(s) == 2047 &&
		   mix_snap_lookup_uid(s, 1, &r1) &&
		   (r1.flags & MIX_FLAG_SEEN) && mix_snap_lookup_uid(s, 2, &r2) &&
		   mix_snap_keyword_lookup(s, "$Junk", &kw) &&
		   mix_record_has_keyword(&r2, kw) &&
		   !mix_snap_lookup_uid(s, 3, NULL),
		   "flag, keyword and expunge replayed");
		mix_read_unlock();
		mix_index_close(&idx);
	}
}

static int check_state(struct mix_index *idx, int k, uint64_t hms)
{
	const struct mix_snap *s;
	int good;
	mix_read_lock();
	s = mix_index_snap(idx);
	good = mix_snap_messages_count(s) == (uint32_t)(3 * k) &&
	       mix_snap_next_uid(s) == (uint32_t)(3 * k + 1) &&
	       mix_snap_highest_modseq(s) == hms &&
	       mix_snap_keyword_count(s) == (uint32_t)k;
	if (!good)
		diag("state: count %u next_uid %u hms %llx kw %u; expected "
		     "k=%d hms %llx", mix_snap_messages_count(s),
		     mix_snap_next_uid(s),
		     (unsigned long long)mix_snap_highest_modseq(s),
		     mix_snap_keyword_count(s), k, (unsigned long long)hms);
	mix_read_unlock();
	return good;
}

/* Run before the parent starts any thread, so fork() is safe. */
static void crash_child(const char *dir, uint64_t *modseq)
{
	int fds[2], st, i;
	pid_t pid;

	if (pipe(fds) < 0)
		BAIL("pipe");
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child_commits(dir, fds[1]);
	}
	close(fds[1]);
	for (i = 0; i < K; i++)
		if (read(fds[0], &modseq[i], 8) != 8)
			BAIL("child died after %d commits", i);
	close(fds[0]);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child committed %d "
	   "transactions and died without closing", K);
}

static void test_torn_tail(const char *dir, const uint64_t *modseq)
{
	uint64_t maxseen = 0, m;
	struct tu_files base;
	int i, bad = 0, cuts = 0;
	uint32_t start, end, cut;
	for (i = 0; i < K; i++)
		if (modseq[i] > maxseen)
			maxseen = modseq[i];
	tu_files_save(dir, &base);
	ok(base.data[1] != NULL, "the active log exists (%zu bytes)",
	   base.size[1]);
	start = (uint32_t)modseq[K - 1];  /* offset of the last transaction */
	end = (uint32_t)base.size[1];
	ok(start > 48 && start < end, "last transaction at %u..%u", start, end);

	for (cut = start; cut <= end; cut++) {
		struct mix_index *idx;
		struct mix_open_info info;
		int whole = cut == end;
		char p[4096];
		tu_files_restore(dir, &base);
		snprintf(p, sizeof(p), "%s/mix.index.log", dir);
		if (truncate(p, cut) < 0)
			BAIL("truncate");
		warnings[0] = '\0';
		if (mix_index_open(engine, dir, 0, &idx) < 0) {
			diag("cut %u: open failed: %s", cut, mix_last_error());
			bad++;
			continue;
		}
		cuts++;
		mix_index_open_info(idx, &info);
		if (!check_state(idx, whole ? K : K - 1,
				 modseq[whole ? K - 1 : K - 2]))
			bad++;
		if (info.dropped_bytes != (whole ? 0 : cut - start) ||
		    (cut > start && !whole && (info.dropped_offset != start ||
					       !strstr(warnings, "offset")))) {
			diag("cut %u: dropped %llu at %u, warning '%s'", cut,
			     (unsigned long long)info.dropped_bytes,
			     info.dropped_offset, warnings);
			bad++;
		}
		if (commit_one(idx, 99, &m) < 0 || m <= maxseen) {
			diag("cut %u: next modseq %llx not above %llx", cut,
			     (unsigned long long)m, (unsigned long long)maxseen);
			bad++;
		}
		if (mix_index_close(&idx) < 0)
			bad++;
	}
	ok(bad == 0 && cuts == (int)(end - start + 1),
	   "log cut at each of %d offsets of the last transaction: prefix "
	   "intact, torn transaction dropped and reported, no modseq reused",
	   cuts);
	tu_files_free(&base);
}

static void test_rebuild(const char *dir)
{
	struct mix_index *idx;
	struct mix_open_info info;
	uint64_t m, last = 0;
	char p[4096];
	int i, ret;

	is(mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx), 0,
	   "fresh index");
	for (i = 1; i <= 3; i++)
		commit_one(idx, i, &last);
	mix_index_close(&idx);
	/* the logs now start at the index's creation (prev_file_seq 0):
	 * .log.2 is the first log, .log the one after the reopen */
	snprintf(p, sizeof(p), "%s/mix.index", dir);
	{
		size_t size;
		uint8_t *d = tu_read_file(p, &size);
		d[size - 1] ^= 0x55; /* checksum no longer matches */
		tu_write_file(p, d, size);
		free(d);
	}
	warnings[0] = '\0';
	ret = mix_index_open(engine, dir, 0, &idx);
	is(ret, 0, "damaged mix.index with logs reaching back: open works "
	   "(%s)", ret ? mix_last_error() : "ok");
	if (ret == 0) {
		mix_index_open_info(idx, &info);
		ok(info.rebuilt == 1 && strstr(warnings, "mix.index"),
		   "rebuilt from the logs and warned: %s", warnings);
		ok(check_state(idx, 3, last), "rebuilt state is complete");
		ok(commit_one(idx, 4, &m) == 0 && m > last, "and writable");
		mix_index_close(&idx);
	}
	/* now the first log is gone (two writing sessions rotated it away;
	 * an idle one changes no file) */
	is(mix_index_open(engine, dir, 0, &idx), 0, "reopen");
	is(commit_one(idx, 5, &m), 0, "commit after the reopen");
	mix_index_close(&idx);
	{
		size_t size;
		uint8_t *d = tu_read_file(p, &size);
		d[40] ^= 0x01;
		tu_write_file(p, d, size);
		free(d);
	}
	ret = mix_index_open(engine, dir, 0, &idx);
	ok(ret == MIX_ECORRUPT && strstr(mix_last_error(), "mix.index"),
	   "damaged mix.index, logs not reaching back: MIX_ECORRUPT naming "
	   "the file: %s", mix_last_error());
}

static void test_bad_logs(const char *dir)
{
	struct mix_index *idx, *idx2;
	char p[4096], p2[4096];
	size_t size;
	uint8_t *d;
	uint64_t m;
	int ret;

	is(mix_index_open(engine, dir, MIX_OPEN_RECREATE, &idx), 0,
	   "recreated");
	commit_one(idx, 1, &m);
	/* a second writer: another engine of the process (the same engine
	 * would return this index again, counted: test-open-twice) */
	{
		struct mix_engine *e2;
		if (mix_engine_create(NULL, &e2) < 0)
			BAIL("second engine: %s", mix_last_error());
		ret = mix_index_open(e2, dir, 0, &idx2);
		ok(ret == MIX_ELOCKED && strstr(mix_last_error(), "pid"),
		   "second writer: MIX_ELOCKED: %s", mix_last_error());
		if (ret == 0)
			mix_index_close(&idx2);
		mix_engine_free(&e2);
	}
	mix_index_close(&idx);

	/* newer major version of the active log */
	snprintf(p, sizeof(p), "%s/mix.index.log", dir);
	d = tu_read_file(p, &size);
	d[4] = 9;
	tu_write_file(p, d, size);
	ret = mix_index_open(engine, dir, 0, &idx);
	is(ret, MIX_EVERSION, "log of a newer major version: %s (%s)",
	   mix_strerror(ret), mix_last_error());
	/* garbage */
	memset(d, 0xa5, size);
	tu_write_file(p, d, size);
	ret = mix_index_open(engine, dir, 0, &idx);
	ok(ret == MIX_ECORRUPT && strstr(mix_last_error(), "mix.index.log"),
	   "garbage log: MIX_ECORRUPT naming it: %s", mix_last_error());
	free(d);
	unlink(p);

	/* a log from elsewhere in the chain missing: move .log.2 away after
	 * making the index point into it */
	is(mix_index_open(engine, dir, MIX_OPEN_RECREATE, &idx), 0, "again");
	commit_one(idx, 1, &m);
	mix_index_close(&idx);
	snprintf(p2, sizeof(p2), "%s/mix.index.log.2", dir);
	unlink(p2);
	is(mix_index_open(engine, dir, 0, &idx), 0,
	   "an old log no longer needed may go");
	commit_one(idx, 2, &m);
	/* crash-like: copy files while open, then drop the log the index
	 * needs */
	{
		struct tu_files f;
		tu_files_save(dir, &f);
		mix_index_close(&idx);
		tu_files_restore(dir, &f);
		unlink(p);   /* the active log with the commit is gone */
		rename(p2, p); /* and the older one takes its name */
		ret = mix_index_open(engine, dir, 0, &idx);
		ok(ret == 0 || ret == MIX_ECORRUPT,
		   "shuffled logs: success or MIX_ECORRUPT, not a crash (%s)",
		   ret ? mix_last_error() : "ok");
		if (ret == 0)
			mix_index_close(&idx);
		tu_files_free(&f);
	}
	ret = mix_index_open(engine, "/nonexistent/dir", 0, &idx);
	ok(ret == MIX_ENOTFOUND || ret < 0, "missing directory: %s",
	   mix_strerror(ret));
}

/* A mix.index whose HIGHESTMODSEQ is above what its log position allows
 * (a writer bug, a crafted or restored file; its checksum is right): the
 * next writer's modseqs go above it, each commit reports its own, and
 * the open says so (finding 24: every commit reported the old value and
 * the new records got lower modseqs, so CHANGEDSINCE missed them). */
static void test_high_modseq(const char *dir)
{
	struct mix_commit_result r1, r2;
	struct mix_index *idx;
	char path[4096];
	uint64_t hm, rec_ms;
	uint32_t crc, indexid;
	uint8_t *d;
	size_t size;

	if (mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("high modseq: create: %s", mix_last_error());
	for (int i = 0; i < 5; i++)
		if (tu_append_commit(idx, 1, MIX_DURABILITY_SYNC, NULL) < 0)
			BAIL("high modseq: commit");
	mix_index_close(&idx);
	snprintf(path, sizeof(path), "%s/mix.index", dir);
	if (!(d = tu_read_file(path, &size)) || size < 120)
		BAIL("high modseq: read %s", path);
	memcpy(&indexid, d + 16, 4);
	hm = (uint64_t)(indexid + 100) << 32;
	memcpy(d + 64, &hm, 8);
	memset(d + 108, 0, 4);
	crc = mix_crc32c(0, d, size);
	memcpy(d + 108, &crc, 4);
	if (tu_write_file(path, d, size) < 0)
		BAIL("high modseq: write");
	free(d);
	warnings[0] = '\0';
	if (mix_index_open(engine, dir, 0, &idx) < 0)
		BAIL("high modseq: open: %s", mix_last_error());
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	if (tu_append_commit(idx, 1, MIX_DURABILITY_SYNC, &r1) < 0 ||
	    tu_append_commit(idx, 1, MIX_DURABILITY_SYNC, &r2) < 0)
		BAIL("high modseq: commits: %s", mix_last_error());
	rec_ms = tu_modseq_of(idx, r2.first_uid);
	ok(r1.modseq > hm && r2.modseq > r1.modseq && rec_ms == r2.modseq &&
	   tu_highest_modseq(idx) == r2.modseq,
	   "high modseq: commits after HIGHESTMODSEQ %" PRIu64 " get %"
	   PRIu64 " and %" PRIu64 " (the record has %" PRIu64 ", "
	   "HIGHESTMODSEQ %" PRIu64 ")", hm, r1.modseq, r2.modseq, rec_ms,
	   tu_highest_modseq(idx));
	ok(strstr(warnings, "HIGHESTMODSEQ") != NULL, "high modseq: the open "
	   "says so through the warning callback");
	mix_index_close(&idx);
}

/* One flipped bit in an ignored pad byte of mix.index once the logs no
 * longer reach back to creation: normal opens refuse it (the checksum),
 * MIX_OPEN_SALVAGE loads it without the checksum and keeps every
 * message (finding 26: salvage refused too, and the mailbox could not
 * be opened at all). */
static void test_salvage_crc(const char *dir)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_open_info info;
	char path[4096];
	uint32_t hsize, want;
	uint8_t *d;
	size_t size;
	int ret;

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	if (mix_engine_create(&cfg, &e) < 0 ||
	    mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("salvage crc: create: %s", mix_last_error());
	/* enough to rotate twice: the logs no longer reach back */
	for (int i = 0; i < 300; i++)
		if (tu_append_commit(idx, 1 + i % 3, MIX_DURABILITY_SYNC,
				     NULL) < 0)
			BAIL("salvage crc: commit");
	want = tu_messages(idx);
	mix_index_close(&idx);
	snprintf(path, sizeof(path), "%s/mix.index", dir);
	if (!(d = tu_read_file(path, &size)) || size < 120)
		BAIL("salvage crc: read");
	memcpy(&hsize, d + 8, 4);
	if (hsize + 6 > size)
		BAIL("salvage crc: no record");
	d[hsize + 5] ^= 1;   /* a pad byte of record 1 */
	if (tu_write_file(path, d, size) < 0)
		BAIL("salvage crc: write");
	free(d);
	ret = mix_index_open(e, dir, 0, &idx);
	ok(ret == MIX_ECORRUPT && strstr(mix_last_error(), "checksum"),
	   "salvage crc: a normal open refuses the checksum (%s)",
	   ret ? mix_last_error() : "opened");
	if (ret == 0)
		mix_index_close(&idx);
	ret = mix_index_open(e, dir, MIX_OPEN_SALVAGE, &idx);
	ok(ret == 0, "salvage crc: MIX_OPEN_SALVAGE opens it (%s)",
	   ret ? mix_last_error() : "ok");
	if (ret == 0) {
		mix_index_open_info(idx, &info);
		ok(info.salvaged && tu_messages(idx) == want,
		   "salvage crc: it says it salvaged (%d) and keeps the %u "
		   "messages (%u)", info.salvaged, want, tu_messages(idx));
		mix_index_close(&idx);
	}
	ret = mix_index_open(e, dir, 0, &idx);
	ok(ret == 0 && tu_messages(idx) == want, "salvage crc: a normal open "
	   "afterwards works (%s), %u messages",
	   ret ? mix_last_error() : "ok", want);
	if (ret == 0)
		mix_index_close(&idx);
	mix_engine_free(&e);
}

int main(void)
{
	struct mix_engine_config cfg;
	char *d1 = tu_tmpdir("recov1"), *d2 = tu_tmpdir("recov2"),
	     *d3 = tu_tmpdir("recov3");
	char *d4 = tu_tmpdir("recov4");
	uint64_t modseq[K];

	crash_child(d1, modseq);
	crash_child_mapped(d4);
	mix_engine_config_init(&cfg);
	cfg.warning = on_warning;
	if (mix_engine_create(&cfg, &engine) < 0)
		BAIL("engine: %s", mix_last_error());
	test_torn_tail(d1, modseq);
	test_rebuild(d2);
	test_bad_logs(d3);
	test_mapped_replay(d4);
	{
		char *d5 = tu_tmpdir("recov5");
		char *d6 = tu_tmpdir("recov6");
		test_high_modseq(d5);
		test_salvage_crc(d6);
		tu_rmdir_r(d5);
		tu_rmdir_r(d6);
		free(d5);
		free(d6);
	}
	is(mix_engine_free(&engine), 0, "engine freed");
	tu_rmdir_r(d1);
	tu_rmdir_r(d2);
	tu_rmdir_r(d3);
	tu_rmdir_r(d4);
	free(d4);
	free(d1);
	free(d2);
	free(d3);
	return tap_done();
}
