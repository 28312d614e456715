/*
 * Asynchronous checkpoints (engine/checkpoint.c; docs/design.md
 * "Checkpoints off the writer thread", docs/format.md §3.5): the writer
 * role pins a snapshot, the engine's checkpointer thread writes mix.index
 * from it while commits go on, and a later batch republishes the state
 * into the new mapping and rotates the log.  Model tests with a
 * log_rotate_size of 4 KiB, so that a checkpoint is in flight most of
 * the time:
 *
 *  1. commits of appends and flag changes (NONE and SYNC) compared with a
 *     reference model every few steps, through the writer's snapshots and
 *     through a read-only follower refreshed as the logs rotate under it
 *     (mix.index then names a position inside mix.index.log.2);
 *  2. closes and reopens right after the log passed the rotation size
 *     (a checkpoint queued or running when close writes its own);
 *  3. crashes: a child (this program re-executed with --child) commits
 *     until SIGKILL at a random point, reporting each acknowledged
 *     commit; every acknowledged commit must survive (SIGKILL keeps the
 *     page cache), the one in flight may or may not;
 *  4. a checkpoint that fails on the checkpointer thread (a directory in
 *     the way of mix.index.tmp) is reported as before (warning callback,
 *     checkpoint_failures) while commits go on, and the next ones
 *     succeed once the obstacle is gone;
 *  5. no checkpoint ever wrote mix.index while another of the same index
 *     did (mix_ckpt_overlaps, counted in checkpoint.c).
 *
 * The operation sequence is a function of the seed (MIX_SEED, printed)
 * and the step number, so parent and child agree on it.  A failure
 * names the test, the step and the first differing message.
 * MIX_TEST_SCALE scales the step counts.  Runs in a few seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mix/mix.h>

#include "checkpoint.h"
#include "format.h"
#include "index.h"
#include "tap.h"
#include "testutil.h"

#define MAXUID (1u << 18)
#define ROTATE 4096

struct model {
	uint32_t next_uid;
	uint8_t present[MAXUID];
	uint8_t flags[MAXUID];
};

struct op {
	int append;        /* else a flag change */
	uint32_t n;        /* appends */
	uint32_t uid;      /* flag change */
	uint8_t flags;
	int sync;
};

static uint64_t g_seed;
static const char *g_self;

/* The operation of step i, from the seed and the model's state. */
static void op_gen(const struct model *m, uint64_t seed, uint64_t i,
		   struct op *o)
{
	uint64_t r = seed ^ (i * 0x9e3779b97f4a7c15ull);
	r = tu_rand(&r) ^ tu_rand(&r);
	memset(o, 0, sizeof(*o));
	o->append = (m->next_uid <= 1 || r % 3 == 0) &&
		    m->next_uid + 8 < MAXUID;
	o->n = 1 + (uint32_t)(r >> 8) % 5;
	o->uid = m->next_uid > 1 ? 1 + (uint32_t)(r >> 16) % (m->next_uid - 1)
				 : 1;
	o->flags = (uint8_t)((r >> 40) & (MIX_FLAG_SEEN | MIX_FLAG_FLAGGED |
					  MIX_FLAG_ANSWERED));
	o->sync = (r >> 50) % 16 == 0;
}

static void op_model(struct model *m, const struct op *o)
{
	uint32_t k;
	if (o->append) {
		for (k = 0; k < o->n; k++) {
			m->present[m->next_uid] = 1;
			m->flags[m->next_uid] = o->flags;
			m->next_uid++;
		}
	} else if (m->present[o->uid]) {
		m->flags[o->uid] = o->flags;
	}
}

static int op_commit(struct mix_index *idx, const struct op *o)
{
	struct mix_txn *t;
	uint32_t k;
	int ret = mix_txn_begin(idx, &t);
	if (ret < 0)
		return ret;
	if (o->append) {
		for (k = 0; k < o->n && ret >= 0; k++)
			ret = mix_txn_append(t, o->flags, NULL, NULL);
	} else {
		struct mix_uid_range r = { o->uid, o->uid };
		ret = mix_txn_flags(t, &r, 1, MIX_MODIFY_REPLACE, o->flags);
	}
	if (ret < 0) {
		mix_txn_abort(&t);
		return ret;
	}
	return mix_txn_commit(&t, o->sync ? MIX_DURABILITY_SYNC
					  : MIX_DURABILITY_NONE, NULL);
}

/* The model from an index's current state. */
static void model_load(struct model *m, struct mix_index *idx)
{
	const struct mix_snap *s;
	struct mix_record rec;
	uint32_t i, n;
	memset(m, 0, sizeof(*m));
	mix_read_lock();
	s = mix_index_snap(idx);
	n = mix_snap_messages_count(s);
	m->next_uid = mix_snap_next_uid(s);
	for (i = 1; i <= n; i++)
		if (mix_snap_lookup_seq(s, i, &rec) && rec.uid < MAXUID) {
			m->present[rec.uid] = 1;
			m->flags[rec.uid] = rec.flags;
		}
	mix_read_unlock();
}

/* 1 if idx's state is the model's; else diag() says where it differs. */
static int model_cmp(const struct model *m, struct mix_index *idx,
		     const char *what, int quiet)
{
	const struct mix_snap *s;
	struct mix_record rec;
	uint32_t uid, seq = 0, n;
	int ok = 1;

	mix_read_lock();
	s = mix_index_snap(idx);
	n = mix_snap_messages_count(s);
	if (mix_snap_next_uid(s) != m->next_uid) {
		if (!quiet)
			diag("%s: next_uid %u, expected %u", what,
			     mix_snap_next_uid(s), m->next_uid);
		ok = 0;
	}
	for (uid = 1; ok && uid < m->next_uid; uid++) {
		if (!m->present[uid])
			continue;
		seq++;
		if (!mix_snap_lookup_seq(s, seq, &rec) || rec.uid != uid ||
		    rec.flags != m->flags[uid]) {
			if (!quiet)
				diag("%s: seq %u: uid %u flags 0x%x, expected "
				     "uid %u flags 0x%x", what, seq,
				     seq <= n ? rec.uid : 0,
				     seq <= n ? rec.flags : 0, uid,
				     m->flags[uid]);
			ok = 0;
		}
	}
	if (ok && seq != n) {
		if (!quiet)
			diag("%s: %u messages, expected %u", what, n, seq);
		ok = 0;
	}
	mix_read_unlock();
	return ok;
}

static struct mix_engine *engine_new(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = ROTATE;
	if (mix_engine_create(&cfg, &e) < 0)
		BAIL("mix_engine_create: %s", mix_last_error());
	return e;
}

static uint64_t checkpoints(struct mix_engine *e)
{
	struct mix_engine_stats st;
	mix_engine_stats(e, &st);
	return st.checkpoints;
}

static uint64_t ckpt_failures(struct mix_engine *e)
{
	struct mix_engine_stats st;
	mix_engine_stats(e, &st);
	return st.checkpoint_failures;
}

/* ---- 1: commits against the model, with a follower -------------------- */

static void test_model(const char *dir, struct model *m, uint32_t steps)
{
	struct mix_engine *e = engine_new();
	struct mix_index *idx, *ro = NULL;
	uint32_t i, bad = 0, robad = 0;
	uint64_t c0;
	char what[64];
	struct op o;

	if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open %s: %s", dir, mix_last_error());
	c0 = checkpoints(e);
	model_load(m, idx);
	if (mix_index_open(e, dir, MIX_OPEN_READONLY, &ro) < 0)
		BAIL("read-only open %s: %s", dir, mix_last_error());
	for (i = 0; i < steps; i++) {
		op_gen(m, g_seed, i, &o);
		if (op_commit(idx, &o) < 0) {
			diag("step %u: commit: %s", i, mix_last_error());
			bad++;
			break;
		}
		op_model(m, &o);
		if (i % 37 == 0) {
			snprintf(what, sizeof(what), "model step %u", i);
			bad += !model_cmp(m, idx, what, bad > 0);
		}
		if (i % 101 == 0) {
			int ret = mix_index_refresh(ro);
			snprintf(what, sizeof(what), "follower step %u", i);
			if (ret < 0) {
				diag("%s: refresh: %s", what, mix_last_error());
				robad++;
			} else {
				robad += !model_cmp(m, ro, what, robad > 0);
			}
		}
	}
	bad += !model_cmp(m, idx, "model end", 0);
	is(bad, 0, "commits match the model while checkpoints run "
	   "asynchronously (%u mismatches)", bad);
	if (mix_index_refresh(ro) < 0)
		robad++;
	else
		robad += !model_cmp(m, ro, "follower end", 0);
	is(robad, 0, "a read-only follower follows rotations after "
	   "asynchronous checkpoints (%u mismatches)", robad);
	ok(checkpoints(e) - c0 >= 3 && ckpt_failures(e) == 0,
	   "checkpoints happened: %llu (at least 3), failed: %llu (0)",
	   (unsigned long long)(checkpoints(e) - c0),
	   (unsigned long long)ckpt_failures(e));
	mix_index_close(&ro);
	if (mix_index_close(&idx) < 0)
		diag("close: %s", mix_last_error());
	mix_engine_free(&e);
}

/* ---- 2: close with a checkpoint in flight ------------------------------ */

static void test_close(const char *dir, struct model *m, uint32_t rounds)
{
	uint32_t r, i, bad = 0, step = 1000000;
	struct op o;

	for (r = 0; r < rounds && !bad; r++) {
		struct mix_engine *e = engine_new();
		struct mix_index *idx;
		uint64_t c0;
		char what[64];
		if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
			BAIL("open %s: %s", dir, mix_last_error());
		snprintf(what, sizeof(what), "close round %u reopen", r);
		bad += !model_cmp(m, idx, what, 0);
		c0 = checkpoints(e);
		/* until a checkpoint was queued and maybe collected; then a
		 * few more so that one is likely in flight at the close */
		for (i = 0; i < 2000 && !bad; i++) {
			op_gen(m, g_seed, step++, &o);
			o.sync = 0;
			if (op_commit(idx, &o) < 0) {
				diag("round %u: commit: %s", r, mix_last_error());
				bad++;
			}
			op_model(m, &o);
			if (checkpoints(e) > c0 &&
			    i % 50 == (r * 7) % 50)
				break;
		}
		if (mix_index_close(&idx) < 0) {
			diag("round %u: close: %s", r, mix_last_error());
			bad++;
		}
		mix_engine_free(&e);
	}
	{
		struct mix_engine *e = engine_new();
		struct mix_index *idx;
		if (mix_index_open(e, dir, 0, &idx) < 0)
			BAIL("open %s: %s", dir, mix_last_error());
		bad += !model_cmp(m, idx, "after the close rounds", 0);
		mix_index_close(&idx);
		mix_engine_free(&e);
	}
	is(bad, 0, "%u closes with a checkpoint in flight lose nothing",
	   rounds);
}

/* ---- 4: a checkpoint that fails on the checkpointer ------------------- */

static uint32_t g_warnings;

static void on_warning(void *ctx, const char *msg)
{
	(void)ctx;
	if (strstr(msg, "checkpoint"))
		__atomic_add_fetch(&g_warnings, 1, __ATOMIC_RELAXED);
}

/* A directory named mix.index.tmp makes every write of mix.index fail
 * (EISDIR) on the checkpointer thread; commits go on, the failure is
 * reported as before (warning callback, checkpoint_failures), and once
 * the obstacle is gone the next checkpoint succeeds. */
static void test_fail(const char *dir, struct model *m)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *idx;
	char tmp[4096];
	uint32_t i, bad = 0, step = 3000000;
	uint64_t f0, c0;
	struct op o;

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = ROTATE;
	cfg.warning = on_warning;
	if (mix_engine_create(&cfg, &e) < 0 ||
	    mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("open %s: %s", dir, mix_last_error());
	snprintf(tmp, sizeof(tmp), "%s/mix.index.tmp", dir);
	if (mkdir(tmp, 0700) < 0)
		BAIL("mkdir %s", tmp);
	f0 = ckpt_failures(e);
	for (i = 0; i < 5000 && ckpt_failures(e) < f0 + 2 && !bad; i++) {
		op_gen(m, g_seed, step++, &o);
		if (op_commit(idx, &o) < 0) {
			diag("commit with failing checkpoints: %s",
			     mix_last_error());
			bad++;
		}
		op_model(m, &o);
	}
	ok(ckpt_failures(e) >= f0 + 2 && g_warnings >= 2 && bad == 0 &&
	   model_cmp(m, idx, "while checkpoints fail", 0),
	   "failed asynchronous checkpoints are reported (%llu failures, %u "
	   "warnings) and commits go on", (unsigned long long)
	   (ckpt_failures(e) - f0), g_warnings);
	rmdir(tmp);
	c0 = checkpoints(e);
	for (i = 0; i < 5000 && checkpoints(e) < c0 + 2 && !bad; i++) {
		op_gen(m, g_seed, step++, &o);
		if (op_commit(idx, &o) < 0)
			bad++;
		op_model(m, &o);
	}
	mix_index_close(&idx);
	if (mix_index_open(e, dir, 0, &idx) < 0)
		BAIL("reopen %s: %s", dir, mix_last_error());
	ok(checkpoints(e) >= c0 + 2 && bad == 0 &&
	   model_cmp(m, idx, "after the failures", 0),
	   "checkpoints succeed again afterwards and nothing was lost");
	mix_index_close(&idx);
	mix_engine_free(&e);
}

/* ---- 3: crashes --------------------------------------------------------- */

static const char *g_mixctl;   /* $MIX_BUILD/mixctl, or NULL */
static uint32_t g_inside_log2; /* crash states with mix.index inside .log.2 */
static uint32_t g_with_next;   /* crash states with a next log (§3.5) */

/* Does the crash state hold a mix.index.log.newtmp with a log header
 * (a rotation switched and not completed: format.md §3.5 "A rotation in
 * two steps")?  Such states are read through the newtmp. */
static int has_next_log(const char *dir)
{
	struct mix_log_header lh;
	char path[4096];
	uint8_t *a;
	size_t na = 0;
	int has = 0;

	snprintf(path, sizeof(path), "%s/mix.index.log.newtmp", dir);
	a = tu_read_file(path, &na);
	if (a && na >= sizeof(lh)) {
		memcpy(&lh, a, sizeof(lh));
		has = lh.magic == MIX_LOG_MAGIC;
	}
	free(a);
	return has;
}

/* Is mix.index's position inside mix.index.log.2, before its end (the
 * state an asynchronous checkpoint and its rotation leave, §3.5)? */
static int position_inside_log2(const char *dir)
{
	struct mix_index_header ih;
	struct mix_log_header lh;
	char path[4096];
	uint8_t *a, *b;
	size_t na = 0, nb = 0;
	int inside = 0;

	snprintf(path, sizeof(path), "%s/mix.index", dir);
	a = tu_read_file(path, &na);
	snprintf(path, sizeof(path), "%s/mix.index.log.2", dir);
	b = tu_read_file(path, &nb);
	if (a && b && na >= sizeof(ih) && nb >= sizeof(lh)) {
		memcpy(&ih, a, sizeof(ih));
		memcpy(&lh, b, sizeof(lh));
		inside = ih.log_file_seq == lh.file_seq &&
			 ih.log_file_head_offset < nb;
	}
	free(a);
	free(b);
	return inside;
}

/* mixctl check on a crash state: exit 0 (warnings allowed). */
static int mixctl_ok(const char *dir)
{
	return tu_mixctl_ok(g_mixctl, dir);
}

/* --child DIR SEED FIRST FD: commit steps FIRST.. until killed, writing
 * the count of acknowledged ones to FD after each. */
static int child_main(char **argv)
{
	static struct model cm;
	const char *dir = argv[2];
	uint64_t seed = strtoull(argv[3], NULL, 0);
	uint64_t step = strtoull(argv[4], NULL, 0);
	int fd = atoi(argv[5]);
	struct mix_engine *e = engine_new();
	struct mix_index *idx;
	uint32_t acked = 0;
	struct op o;

	if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0) {
		fprintf(stderr, "child: open: %s\n", mix_last_error());
		return 3;
	}
	model_load(&cm, idx);
	for (;;) {
		op_gen(&cm, seed, step++, &o);
		if (op_commit(idx, &o) < 0) {
			fprintf(stderr, "child: commit: %s\n", mix_last_error());
			return 4;
		}
		op_model(&cm, &o);
		acked++;
		if (write(fd, &acked, sizeof(acked)) != sizeof(acked))
			return 5;
	}
}

static void test_crash(const char *dir, struct model *m, uint32_t rounds)
{
	uint64_t rs = g_seed ^ 0x5eed, step = 2000000;
	uint32_t r, bad = 0;

	for (r = 0; r < rounds && !bad; r++) {
		uint32_t want = 200 + tu_rand_below(&rs, 600), acked = 0, v, k;
		struct model *alt = malloc(sizeof(*alt));
		char a_seed[32], a_step[32], a_fd[16], what[64];
		struct mix_engine *e;
		struct mix_index *idx;
		int p[2], st;
		pid_t pid;
		struct op o;

		if (!alt || pipe(p) < 0)
			BAIL("pipe/malloc");
		snprintf(a_seed, sizeof(a_seed), "%llu",
			 (unsigned long long)g_seed);
		snprintf(a_step, sizeof(a_step), "%llu",
			 (unsigned long long)step);
		snprintf(a_fd, sizeof(a_fd), "%d", p[1]);
		pid = fork();
		if (pid < 0)
			BAIL("fork");
		if (pid == 0) {
			close(p[0]);
			execl(g_self, g_self, "--child", dir, a_seed, a_step,
			      a_fd, (char *)NULL);
			_exit(127);
		}
		close(p[1]);
		while (acked < want &&
		       read(p[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
			acked = v;
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		/* acknowledgements written before the kill */
		while (read(p[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
			acked = v;
		close(p[0]);
		if (!WIFSIGNALED(st)) {
			diag("round %u: child exited with %d before the kill",
			     r, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			bad++;
		}
		for (k = 0; k < acked; k++) {
			op_gen(m, g_seed, step + k, &o);
			op_model(m, &o);
		}
		/* the commit in flight at the kill may have landed */
		g_inside_log2 += position_inside_log2(dir);
		g_with_next += has_next_log(dir);
		if (!mixctl_ok(dir))
			bad++;
		memcpy(alt, m, sizeof(*alt));
		op_gen(alt, g_seed, step + acked, &o);
		op_model(alt, &o);
		step += 1000000;
		e = engine_new();
		if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0) {
			diag("round %u: open after the crash (%u acked): %s", r,
			     acked, mix_last_error());
			bad++;
			mix_engine_free(&e);
			free(alt);
			break;
		}
		if (model_cmp(m, idx, "crash", 1)) {
			/* as acknowledged */
		} else if (model_cmp(alt, idx, "crash", 1)) {
			memcpy(m, alt, sizeof(*m));
		} else {
			snprintf(what, sizeof(what), "round %u after %u "
				 "acknowledged commits", r, acked);
			model_cmp(m, idx, what, 0);
			bad++;
		}
		mix_index_close(&idx);
		mix_engine_free(&e);
		free(alt);
	}
	is(bad, 0, "%u crashes during asynchronous checkpoints lose no "
	   "acknowledged commit%s", rounds,
	   g_mixctl ? " (mixctl check passes on each)" : "");
	ok(g_inside_log2 > 0, "crash states with mix.index inside "
	   "mix.index.log.2: %u (at least 1)", g_inside_log2);
	/* timing decides how many kills land between a switch and its
	 * completion (tests/test-nextlog.c builds those states by hand) */
	diag("crash states with a next log (mix.index.log.newtmp) to "
	     "adopt: %u of %u", g_with_next, rounds);
}

int main(int argc, char **argv)
{
	static struct model m;
	double scale = tu_scale();
	char *dir;

	if (argc == 6 && strcmp(argv[1], "--child") == 0)
		return child_main(argv);
	g_self = realpath("/proc/self/exe", NULL);
	if (!g_self)
		BAIL("realpath /proc/self/exe");
	g_seed = tu_seed();
	if (getenv("MIX_BUILD") && *getenv("MIX_BUILD")) {
		static char mixctl[4096];
		snprintf(mixctl, sizeof(mixctl), "%s/mixctl",
			 getenv("MIX_BUILD"));
		if (access(mixctl, X_OK) == 0)
			g_mixctl = mixctl;
	}
	if (!g_mixctl)
		diag("no $MIX_BUILD/mixctl: crash states are not checked "
		     "with mixctl");
	tap_plan(9);
	dir = tu_tmpdir("ckpt");
	test_model(dir, &m, (uint32_t)(6000 * scale));
	test_close(dir, &m, (uint32_t)(12 * scale));
	test_fail(dir, &m);
	test_crash(dir, &m, (uint32_t)(10 * scale));
	is(__atomic_load_n(&mix_ckpt_overlaps, __ATOMIC_RELAXED), 0,
	   "no two checkpoints of one index wrote mix.index at once (%u)",
	   mix_ckpt_overlaps);
	tu_rmdir_r(dir);
	free(dir);
	free((void *)g_self);
	return tap_done();
}
