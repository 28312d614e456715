/*
 * The next log (docs/format.md §3.5 "A rotation in two steps"; engine/
 * checkpoint.c rot_begin and mix_index_rot_settle, engine/recovery.c
 * replay_next and mix_recovery_adopt_next).  An asynchronous rotation
 * switches the writer to mix.index.log.newtmp without a flush and
 * renames it into place later, so a crash can leave acknowledged
 * transactions in a file of that name.  The states are built by hand
 * from a real log, as the switch leaves them (the transactions from one
 * boundary on moved into a newtmp whose header continues the log there),
 * so every case is reached on every run:
 *
 *  1. a newtmp that continues the chain (a kill -9 before the
 *     completion): a read-only open reads it, mixctl check passes, a
 *     writable open keeps every transaction, finishes the renames and
 *     goes on above every modseq the newtmp issued;
 *  2. a newtmp whose old log lost its tail (a power cut): nothing of it
 *     is read (no gap is papered over), and the next log's file_seq, and
 *     so every new modseq, is above the newtmp's;
 *  3. an empty newtmp (created by the checkpointer, header never
 *     written): ignored, and its file_seq counts as used;
 *  4. a read-only follower sees transactions while they are in the
 *     newtmp, follows the completion's renames and then a new writer;
 *  5. fault injection at every I/O call of the writable open that adopts
 *     a newtmp (its checkpoint, fdatasyncs, renames, directory fsyncs):
 *     whatever failed, the next opens (read-only, then writable) hold
 *     every transaction, and mixctl check passes;
 *  6. MIX_OPEN_SALVAGE keeps the newtmp's transactions too;
 *  7. MIX_OPEN_RECREATE beside a newtmp: the new indexid starts above
 *     every modseq the newtmp issued;
 *  8. the adopting open makes the newtmp's data and name durable before
 *     its checkpoint's mix.index names a position in it.
 *
 * Deterministic but for the directory names.  MIX_BUILD (for mixctl)
 * is optional: without it the mixctl checks are skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mix/mix.h>

#include "err.h"
#include "fileio.h"
#include "index-file.h"
#include "index.h"
#include "recovery.h"
#include "tap.h"
#include "testutil.h"
#include "txlog.h"

#define NTX 12        /* transactions in the log */
#define PER 3         /* appends in each */

static const char *g_mixctl;

static struct mix_engine *engine_new(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	mix_engine_config_init(&cfg);
	if (mix_engine_create(&cfg, &e) < 0)
		BAIL("mix_engine_create: %s", mix_last_error());
	return e;
}

static char *path_in(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		BAIL("out of memory");
	return p;
}

/* A directory's files as a writer killed in this boot leaves them: NTX
 * NONE commits of PER appends each in the session's log. */
static void build(struct tu_files *f)
{
	char *dir = tu_tmpdir("nextlog-build");
	struct mix_engine *e = engine_new();
	struct mix_index *idx;
	uint32_t i;

	if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open: %s", mix_last_error());
	for (i = 0; i < NTX; i++)
		if (tu_append_commit(idx, PER, MIX_DURABILITY_NONE, NULL) < 0)
			BAIL("commit: %s", mix_last_error());
	tu_files_save(dir, f);   /* the kill -9 */
	mix_index_close(&idx);
	mix_engine_free(&e);
	tu_rmdir_r(dir);
	free(dir);
}

struct split {
	struct mix_log_header h;   /* the old log's */
	uint64_t off[NTX + 1];     /* transaction offsets, off[NTX]: end */
	uint32_t n;
};

/* Offsets of the transactions of the log in f. */
static void log_offsets(const struct tu_files *f, struct split *sp)
{
	struct mix_log_reader r;
	const uint8_t *txn;
	uint32_t size;
	uint64_t off;

	memset(sp, 0, sizeof(*sp));
	if (!f->data[1] || mix_log_reader_from_buf(f->data[1], f->size[1],
						   "mix.index.log", &r) < 0)
		BAIL("the built log does not read: %s", mix_last_error());
	sp->h = r.hdr;
	while (sp->n < NTX && mix_log_reader_next(&r, &txn, &size, &off) > 0)
		sp->off[sp->n++] = off;
	sp->off[sp->n] = f->size[1];
	mix_log_reader_close(&r);
	if (sp->n != NTX)
		BAIL("the built log holds %u transactions, expected %u", sp->n,
		     NTX);
}

enum { NEXT_WHOLE, NEXT_TAIL_LOST, NEXT_EMPTY, NEXT_NONE };

/* dir gets f with the log's transactions from k on moved into a newtmp
 * continuing it at their offset (NEXT_WHOLE); with the old log cut one
 * transaction earlier as well (NEXT_TAIL_LOST); or the log whole and an
 * empty newtmp (NEXT_EMPTY); or the log cut at k and no newtmp
 * (NEXT_NONE: the moment before the switch). */
static void make_state(const char *dir, const struct tu_files *f,
		       const struct split *sp, uint32_t k, int how)
{
	char *log = path_in(dir, MIX_LOG_FILENAME);
	char *tmp = path_in(dir, MIX_LOG_TMP_FILENAME);
	uint64_t e = sp->off[k];
	int fd;

	tu_files_restore(dir, f);
	unlink(tmp);
	if (how == NEXT_EMPTY) {
		if ((fd = mix_log_tmp_create(-1, tmp)) < 0)
			BAIL("create %s: %s", tmp, mix_last_error());
		close(fd);
	} else if (how != NEXT_NONE) {
		struct mix_log_writer w;
		if ((fd = mix_log_tmp_create(-1, tmp)) < 0 ||
		    mix_log_switch_begin(dir, fd, sp->h.indexid,
					 sp->h.file_seq + 1, sp->h.file_seq,
					 (uint32_t)e, sp->h.uid_floor, &w) < 0 ||
		    mix_log_append(&w, f->data[1] + e, f->size[1] - e) < 0)
			BAIL("switch: %s", mix_last_error());
		mix_log_writer_close(&w);
	}
	if (how != NEXT_EMPTY &&
	    truncate(log, (off_t)(how == NEXT_TAIL_LOST ? sp->off[k - 1]
							 : e)) < 0)
		BAIL("truncate %s: %s", log, strerror(errno));
	free(log);
	free(tmp);
}

static int mixctl_ok(const char *dir)
{
	return tu_mixctl_ok(g_mixctl, dir);
}

/* The file_seq of dir's file name, 0 if it has no readable header. */
static uint32_t seq_of(const char *dir, const char *name)
{
	struct mix_log_reader r;
	char *p = path_in(dir, name);
	uint32_t seq = 0;
	if (mix_log_reader_open(p, &r) == 0) {
		seq = r.hdr.file_seq;
		mix_log_reader_close(&r);
	} else {
		mix_err_clear();
	}
	free(p);
	return seq;
}

static int exists(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	int ret = access(p, F_OK) == 0;
	free(p);
	return ret;
}

/* Read-only open: messages and whether the replay read the newtmp. */
static int ro_look(struct mix_engine *e, const char *dir, uint32_t *msgs,
		   int *adopted)
{
	struct mix_index *idx;
	struct mix_recovered rec;
	int ret = mix_index_open(e, dir, MIX_OPEN_READONLY, &idx);
	if (ret < 0) {
		diag("read-only open %s: %s", dir, mix_last_error());
		return ret;
	}
	*msgs = tu_messages(idx);
	mix_index_recovered(idx, &rec);
	*adopted = rec.next_adopted;
	mix_index_close(&idx);
	return 0;
}

/* Writable open, one more commit; its messages before the commit and
 * the commit's modseq. */
static int rw_commit(struct mix_engine *e, const char *dir, unsigned flags,
		     uint32_t *msgs, uint64_t *modseq)
{
	struct mix_index *idx;
	struct mix_commit_result res;
	int ret = mix_index_open(e, dir, flags, &idx);
	if (ret < 0) {
		diag("writable open %s: %s", dir, mix_last_error());
		return ret;
	}
	*msgs = tu_messages(idx);
	ret = tu_append_commit(idx, 1, MIX_DURABILITY_NONE, &res);
	*modseq = ret == 0 ? res.modseq : 0;
	if (ret < 0)
		diag("commit: %s", mix_last_error());
	mix_index_close(&idx);
	return ret;
}

/* The first modseq a log of file_seq seq can issue (format.md §4). */
static uint64_t seq_floor(uint32_t indexid, uint32_t seq)
{
	return ((uint64_t)indexid + seq) << 32;
}

static void test_whole(struct mix_engine *e, const struct tu_files *f,
		       const struct split *sp)
{
	char *dir = tu_tmpdir("nextlog-whole");
	uint32_t msgs = 0, k = NTX / 2;
	uint64_t modseq = 0;
	int adopted = 0, ret;

	make_state(dir, f, sp, k, NEXT_WHOLE);
	ret = ro_look(e, dir, &msgs, &adopted);
	ok(ret == 0 && msgs == NTX * PER &&
	   adopted, "whole: a read-only open reads the newtmp (%u messages, "
	   "expected %u; adopted %d)", msgs, NTX * PER, adopted);
	ok(mixctl_ok(dir), "whole: mixctl check passes");
	ret = rw_commit(e, dir, 0, &msgs, &modseq);
	ok(ret == 0 && msgs == NTX * PER,
	   "whole: the writable open keeps every transaction (%u messages)",
	   msgs);
	ok(!exists(dir, MIX_LOG_TMP_FILENAME) &&
	   seq_of(dir, MIX_LOG2_FILENAME) == sp->h.file_seq + 1 &&
	   seq_of(dir, MIX_LOG_FILENAME) == sp->h.file_seq + 2,
	   "whole: renamed into place, then the session's log (.log.2 seq "
	   "%u, .log seq %u; the newtmp was seq %u)",
	   seq_of(dir, MIX_LOG2_FILENAME), seq_of(dir, MIX_LOG_FILENAME),
	   sp->h.file_seq + 1);
	ok(modseq >= seq_floor(sp->h.indexid, sp->h.file_seq + 2),
	   "whole: the next commit's modseq %llu is above the newtmp's "
	   "(from %llu)", (unsigned long long)modseq,
	   (unsigned long long)seq_floor(sp->h.indexid, sp->h.file_seq + 1));
	ret = ro_look(e, dir, &msgs, &adopted);
	ok(ret == 0 && msgs == NTX * PER + 1 &&
	   !adopted, "whole: and it stays (%u messages)", msgs);
	ok(mixctl_ok(dir), "whole: mixctl check passes after");
	tu_rmdir_r(dir);
	free(dir);
}

/* The order of the adopting open's flushes (a trace of its I/O). */
struct order {
	int n;              /* events seen */
	int tmp_sync;       /* first fdatasync of the newtmp, or -1 */
	int dir_after;      /* first directory fsync after it, or -1 */
	int index_rename;   /* first rename onto mix.index, or -1 */
};

static const char *base_of(const char *path)
{
	const char *p = path ? strrchr(path, '/') : NULL;
	return p ? p + 1 : path ? path : "";
}

static void order_hook(void *ctx, const struct mix_io_event *ev)
{
	struct order *o = ctx;
	int i = o->n++;
	if (ev->kind == MIX_IO_EV_FDATASYNC && o->tmp_sync < 0 &&
	    !strcmp(base_of(ev->path), MIX_LOG_TMP_FILENAME))
		o->tmp_sync = i;
	if (ev->kind == MIX_IO_EV_FSYNC_DIR && o->tmp_sync >= 0 &&
	    o->dir_after < 0)
		o->dir_after = i;
	if (ev->kind == MIX_IO_EV_RENAME && o->index_rename < 0 &&
	    !strcmp(base_of(ev->path2), MIX_INDEX_FILENAME))
		o->index_rename = i;
}

/* The dead writer may have left the newtmp's transactions, and even its
 * name (a synchronous rotation cut short before its directory fsync), in
 * the page cache only.  The adopting open's checkpoint names a position
 * in the newtmp, so both must be durable before mix.index is renamed
 * into place: otherwise a power cut right after it leaves a mix.index
 * beyond its logs, which no open accepts (found by an independent
 * lifecycle check: a kill -9 between the switch and the completion,
 * then the open, then a power cut).  powercut --kill-nested cuts every
 * such recovery; this checks the order on every run. */
static void test_adopt_order(struct mix_engine *e, const struct tu_files *f,
			     const struct split *sp)
{
	char *dir = tu_tmpdir("nextlog-order");
	struct order o = { 0, -1, -1, -1 };
	struct mix_index *idx = NULL;
	int ret;

	make_state(dir, f, sp, NTX / 2, NEXT_WHOLE);
	mix_io_trace_set(order_hook, &o);
	ret = mix_index_open(e, dir, 0, &idx);
	mix_io_trace_set(NULL, NULL);
	if (ret == 0)
		mix_index_close(&idx);
	ok(ret == 0 && o.index_rename >= 0 && o.tmp_sync >= 0 &&
	   o.tmp_sync < o.index_rename && o.dir_after >= 0 &&
	   o.dir_after < o.index_rename,
	   "order: the adopting open makes the newtmp's data (I/O call %d) "
	   "and name (directory fsync, call %d) durable before it renames "
	   "mix.index into place (call %d)", o.tmp_sync, o.dir_after,
	   o.index_rename);
	tu_rmdir_r(dir);
	free(dir);
}

static void test_not_adopted(struct mix_engine *e, const struct tu_files *f,
			     const struct split *sp, int how)
{
	const char *what = how == NEXT_EMPTY ? "empty" : "tail lost";
	char *dir = tu_tmpdir("nextlog-stale");
	uint32_t msgs = 0, k = NTX / 2, expect;
	uint64_t modseq = 0;
	int adopted = 1, ret;

	expect = how == NEXT_EMPTY ? NTX * PER : (k - 1) * PER;
	make_state(dir, f, sp, k, how);
	ret = ro_look(e, dir, &msgs, &adopted);
	ok(ret == 0 && msgs == expect && !adopted,
	   "%s: a read-only open reads the log alone (%u messages, expected "
	   "%u; adopted %d)", what, msgs, expect, adopted);
	ok(mixctl_ok(dir), "%s: mixctl check passes (a warning)", what);
	ret = rw_commit(e, dir, 0, &msgs, &modseq);
	ok(ret == 0 && msgs == expect,
	   "%s: the writable open has the same (%u messages)", what, msgs);
	ok(modseq >= seq_floor(sp->h.indexid, sp->h.file_seq + 2),
	   "%s: the next commit's modseq %llu is above every one the "
	   "newtmp's file_seq %u could issue (from %llu)", what,
	   (unsigned long long)modseq, sp->h.file_seq + 1,
	   (unsigned long long)seq_floor(sp->h.indexid, sp->h.file_seq + 2));
	ok(!exists(dir, MIX_LOG_TMP_FILENAME),
	   "%s: the newtmp was replaced by the session's log", what);
	ret = ro_look(e, dir, &msgs, &adopted);
	ok(ret == 0 && msgs == expect + 1,
	   "%s: a reopen holds it (%u messages)", what, msgs);
	tu_rmdir_r(dir);
	free(dir);
}

static void test_follower(struct mix_engine *e, const struct tu_files *f,
			  const struct split *sp)
{
	char *dir = tu_tmpdir("nextlog-follow");
	char *side = tu_tmpdir("nextlog-side");
	char *log = path_in(dir, MIX_LOG_FILENAME);
	char *tmp = path_in(dir, MIX_LOG_TMP_FILENAME);
	char *stmp = path_in(side, MIX_LOG_TMP_FILENAME);
	struct mix_index *ro;
	uint32_t k = NTX / 2, msgs = 0;
	uint64_t modseq = 0;
	uint8_t *next;
	size_t nnext = 0;
	int fd, ret;

	/* the newtmp as the switch writes it, made aside */
	make_state(side, f, sp, k, NEXT_WHOLE);
	next = tu_read_file(stmp, &nnext);
	make_state(dir, f, sp, k, NEXT_NONE);
	if (mix_index_open(e, dir, MIX_OPEN_READONLY, &ro) < 0)
		BAIL("read-only open: %s", mix_last_error());
	is(tu_messages(ro), k * PER, "follow: before the switch");
	if (!next || tu_write_file(tmp, next, nnext) < 0)
		BAIL("cannot write %s", tmp);
	ret = mix_index_refresh(ro);
	msgs = tu_messages(ro);
	ok(ret == 1 && msgs == NTX * PER, "follow: a refresh "
	   "reads the newtmp (returned %d, %u messages, expected %u)", ret,
	   msgs, NTX * PER);
	/* the completion's flushes and renames */
	if ((fd = open(log, O_RDWR)) < 0 ||
	    mix_log_switch_complete(-1, dir, fd) < 0)
		BAIL("complete: %s", mix_last_error());
	close(fd);
	ret = mix_index_refresh(ro);
	msgs = tu_messages(ro);
	ok(ret >= 0 && msgs == NTX * PER &&
	   !exists(dir, MIX_LOG_TMP_FILENAME), "follow: the renames change "
	   "nothing it sees (returned %d, %u messages)", ret, msgs);
	ret = rw_commit(e, dir, 0, &msgs, &modseq);
	ok(ret == 0 && msgs == NTX * PER,
	   "follow: a writer takes over (%u messages)", msgs);
	ret = mix_index_refresh(ro);
	msgs = tu_messages(ro);
	ok(ret == 1 && msgs == NTX * PER + 1,
	   "follow: and the follower follows it (returned %d, %u messages)",
	   ret, msgs);
	mix_index_close(&ro);
	free(next);
	free(log);
	free(tmp);
	free(stmp);
	tu_rmdir_r(side);
	tu_rmdir_r(dir);
	free(side);
	free(dir);
}

/* Fault injection over the writable open that adopts a newtmp: after a
 * failure at any call, the state opens read-only and writable with every
 * transaction, and passes mixctl check. */
static void test_adopt_faults(struct mix_engine *e, const struct tu_files *f,
			      const struct split *sp)
{
	char *dir = tu_tmpdir("nextlog-faults");
	unsigned c, failed = 0, bad = 0, succeeded_at = 0;
	uint32_t msgs;
	uint64_t modseq;
	int adopted;

	for (c = 1; c <= 400 && !succeeded_at; c++) {
		struct mix_index *idx;
		const char *what;
		int ret, fired;
		make_state(dir, f, sp, NTX / 2, NEXT_WHOLE);
		mix_io_fault_set(c, -EIO);
		ret = mix_index_open(e, dir, 0, &idx);
		what = mix_io_fault_fired();
		fired = what != NULL;
		mix_io_fault_set(0, 0);
		if (ret == 0)
			mix_index_close(&idx);
		if (!fired) {
			succeeded_at = c;
			break;
		}
		mix_err_clear();
		failed += ret < 0;
		msgs = 0;
		if (ro_look(e, dir, &msgs, &adopted) < 0 ||
		    msgs != NTX * PER || !mixctl_ok(dir) ||
		    rw_commit(e, dir, 0, &msgs, &modseq) < 0 ||
		    msgs != NTX * PER ||
		    modseq < seq_floor(sp->h.indexid, sp->h.file_seq + 2)) {
			if (bad++ < 3)
				diag("fault at I/O call %u (%s, open returned "
				     "%d): %u messages after, modseq %llu", c,
				     what, ret, msgs,
				     (unsigned long long)modseq);
		}
	}
	ok(failed >= 8 && succeeded_at > 0, "faults: the adopting open failed "
	   "at %u of its %u I/O calls", failed, succeeded_at - 1);
	is(bad, 0, "faults: after every failure the next opens hold every "
	   "transaction and go on above the newtmp's modseqs");
	tu_rmdir_r(dir);
	free(dir);
}

/* MIX_OPEN_SALVAGE keeps the newtmp's transactions like any open. */
static void test_salvage(struct mix_engine *e, const struct tu_files *f,
			 const struct split *sp)
{
	char *dir = tu_tmpdir("nextlog-salvage");
	uint32_t msgs = 0;
	uint64_t modseq = 0;
	int adopted = 0, ret;

	make_state(dir, f, sp, NTX / 2, NEXT_WHOLE);
	ret = rw_commit(e, dir, MIX_OPEN_SALVAGE, &msgs, &modseq);
	ok(ret == 0 && msgs == NTX * PER &&
	   modseq >= seq_floor(sp->h.indexid, sp->h.file_seq + 2),
	   "salvage: keeps the newtmp's transactions (%u messages, expected "
	   "%u) and goes on above them (modseq %llu)", msgs, NTX * PER,
	   (unsigned long long)modseq);
	ret = ro_look(e, dir, &msgs, &adopted);
	ok(ret == 0 && msgs == NTX * PER + 1 && mixctl_ok(dir),
	   "salvage: a reopen holds them (%u messages), mixctl check passes",
	   msgs);
	tu_rmdir_r(dir);
	free(dir);
}

static void test_recreate(struct mix_engine *e, const struct tu_files *f,
			  const struct split *sp)
{
	char *dir = tu_tmpdir("nextlog-recreate");
	uint32_t msgs = 1;
	uint64_t modseq = 0, top;

	make_state(dir, f, sp, NTX / 2, NEXT_WHOLE);
	top = seq_floor(sp->h.indexid, sp->h.file_seq + 2);
	int ret = rw_commit(e, dir, MIX_OPEN_CREATE | MIX_OPEN_RECREATE,
			    &msgs, &modseq);
	ok(ret == 0 && msgs == 0 && modseq >= top,
	   "recreate: the new index's first modseq %llu is above the "
	   "newtmp's (below %llu)", (unsigned long long)modseq,
	   (unsigned long long)top);
	tu_rmdir_r(dir);
	free(dir);
}

int main(void)
{
	const char *b = getenv("MIX_BUILD");
	static char mixctl[4096];
	struct mix_engine *e;
	struct tu_files f;
	struct split sp;

	if (b) {
		snprintf(mixctl, sizeof(mixctl), "%s/mixctl", b);
		if (access(mixctl, X_OK) == 0)
			g_mixctl = mixctl;
	}
	if (!g_mixctl)
		diag("MIX_BUILD/mixctl not found: mixctl checks skipped");
	build(&f);
	log_offsets(&f, &sp);
	e = engine_new();
	test_whole(e, &f, &sp);
	test_adopt_order(e, &f, &sp);
	test_not_adopted(e, &f, &sp, NEXT_TAIL_LOST);
	test_not_adopted(e, &f, &sp, NEXT_EMPTY);
	test_follower(e, &f, &sp);
	test_adopt_faults(e, &f, &sp);
	test_salvage(e, &f, &sp);
	test_recreate(e, &f, &sp);
	mix_engine_free(&e);
	tu_files_free(&f);
	return tap_done();
}
