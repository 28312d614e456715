/*
 * fork() while mix's threads run (issue 11; docs/api.md "Fork",
 * docs/design.md "Fork and the reclaim thread").
 *
 * The parent keeps a writable index busy: committer threads append,
 * flag and expunge with mix_txn_commit (so the writer thread publishes
 * and the reclaim thread "mix-reclaim" runs grace periods and frees
 * snapshots all the time), and reader threads sit in read-side sections
 * through the public API.  Meanwhile the main thread forks again and
 * again.  Each child does what mix.h allows a child to do: creates its
 * own engine, opens the index read-only with a view on it, follows two
 * of the parent's commits with mix_index_refresh (two snapshots with a
 * higher highest modseq; none lower), moves the view to the last one,
 * closes the view and the index (mix_rcu_barrier on a reclaim
 * thread of its own) and frees the engine, then _exit(0).  Every 50th
 * child also checks that a writable open gets MIX_ELOCKED (the parent
 * still owns the index), and every 50th (others) creates an index of
 * its own in a new directory, commits to it and closes it.  The parent
 * waits for each child with a per-child limit on waiting (a hang is the
 * bug this test is about; the limit only turns it into a failure
 * instead of a stuck make check) and names the fork that failed.
 *
 * Environment: MIX_FORK_ITERS (forks; default 200, 50 under ASan, 20
 * under TSan), MIX_FORK_TIMEOUT (seconds a child may take, default 10),
 * MIX_FORK_KEEP_HUNG=1 (leave a hung child running for gdb instead of
 * killing it), MIX_SEED.
 *
 * ThreadSanitizer cannot start threads in the child of a multi-threaded
 * fork, and ASan's allocator (GCC 12) is not fork-safe, so under either
 * the children only enter and leave a section and exit; the parent side
 * (the fork handlers against busy threads) still runs, and the child
 * part is reported as a TAP skip (FORK_LIGHT_CHILD).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"

#include <mix/mix.h>

#if defined(__SANITIZE_THREAD__)
#define FORK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FORK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORK_ASAN 1
#endif
#endif

#ifdef FORK_TSAN
#define DEFAULT_ITERS 20
#elif defined(FORK_ASAN)
#define DEFAULT_ITERS 50
#else
#define DEFAULT_ITERS 200
#endif

/* Children that only enter and leave a section: under TSan, which
 * cannot start threads in the child of a multi-threaded fork, and under
 * ASan, whose allocator (GCC 12's libsanitizer) does not lock itself
 * around fork: a child hangs in malloc when a parent thread was inside
 * it at the fork (seen in test-rcu: a child stuck in
 * SizeClassAllocator64::GetFromAllocator), an artefact of the tool. */
#if defined(FORK_TSAN) || defined(FORK_ASAN)
#define FORK_LIGHT_CHILD 1
#ifdef FORK_TSAN
#define FORK_LIGHT_WHY "ThreadSanitizer cannot start threads in the child " \
	"of a multi-threaded fork"
#else
#define FORK_LIGHT_WHY "ASan's allocator (GCC 12) is not locked around " \
	"fork: a child can hang in malloc"
#endif
#endif

#define COMMITTERS 2
#define READERS 2
#define KEEP_MESSAGES 1000   /* committers expunge below the newest ones */

static const char *dir;
static struct mix_index *widx;
static int stop;
static uint64_t seed;

/* ---- the parent's threads ------------------------------------------------ */

struct worker {
	pthread_t tid;
	int id;
	uint64_t ops;          /* atomic: main polls a committer's */
	int err;               /* first error: mix error code */
	char msg[200];
};

static void worker_fail(struct worker *w, int err, const char *what)
{
	if (!w->err) {
		w->err = err;
		snprintf(w->msg, sizeof(w->msg), "%s: %s (%s)", what,
			 mix_strerror(err), mix_last_error());
	}
}

static void *committer(void *arg)
{
	struct worker *w = arg;
	uint64_t rs = seed + (uint64_t)w->id * 7919;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE) && !w->err) {
		struct mix_commit_result res;
		struct mix_txn *t;
		int ret;
		if ((ret = mix_txn_begin(widx, &t)) < 0) {
			worker_fail(w, ret, "mix_txn_begin");
			break;
		}
		ret = mix_txn_append(t, (uint8_t)(tu_rand(&rs) & MIX_FLAG_SEEN),
				     NULL, NULL);
		if (ret == 0 && w->ops % 4 == 3) {
			/* flag and expunge among the older messages, so
			 * that chunks are copied and snapshots retire them */
			uint32_t next;
			mix_read_lock();
			next = mix_snap_next_uid(mix_index_snap(widx));
			mix_read_unlock();
			if (next > KEEP_MESSAGES + 2) {
				struct mix_uid_range old = {
					1, next - KEEP_MESSAGES - 1 };
				struct mix_uid_range one;
				one.first = one.last = next - 1 -
					tu_rand_below(&rs, KEEP_MESSAGES);
				ret = mix_txn_flags(t, &one, 1, MIX_MODIFY_ADD,
						    MIX_FLAG_FLAGGED);
				if (ret == 0)
					ret = mix_txn_expunge(t, &old, 1);
			}
		}
		if (ret < 0) {
			mix_txn_abort(&t);
			worker_fail(w, ret, "building a transaction");
			break;
		}
		if ((ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res)) < 0) {
			worker_fail(w, ret, "mix_txn_commit");
			break;
		}
		mix_commit_result_free(&res);
		/* a short pause: thousands of commits a second still, but
		 * the children's replays stay short on a loaded machine */
		if (__atomic_add_fetch(&w->ops, 1, __ATOMIC_RELAXED) % 4 == 0)
			usleep(100);
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct worker *w = arg;
	uint64_t last = 0, rs = seed + (uint64_t)w->id * 104729;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE) && !w->err) {
		const struct mix_snap *s;
		struct mix_record rec;
		uint64_t h;
		uint32_t n, i;
		mix_read_lock();
		s = mix_index_snap(widx);
		h = mix_snap_highest_modseq(s);
		n = mix_snap_messages_count(s);
		/* a few lookups, so the section lasts a little */
		for (i = 0; i < 16 && n > 0; i++)
			if (mix_snap_lookup_seq(s, 1 + tu_rand_below(&rs, n),
						&rec) != 1)
				worker_fail(w, MIX_EINVAL, "lookup_seq in range "
					    "found nothing");
		mix_read_unlock();
		if (h < last) {
			snprintf(w->msg, sizeof(w->msg), "highest modseq went "
				 "back from %llu to %llu",
				 (unsigned long long)last, (unsigned long long)h);
			w->err = MIX_EINVAL;
		}
		last = h;
		/* busy, but leaving the two cores of a CI machine to the
		 * writer and the children now and then */
		if (++w->ops % 64 == 0)
			usleep(100);
	}
	return NULL;
}

/* ---- the child ------------------------------------------------------------- */

/* Exit codes of a child: which step failed. */
enum {
	CH_OK = 0,
	CH_ENGINE = 10,       /* mix_engine_create */
	CH_OPEN = 11,         /* read-only open */
	CH_REFRESH = 12,      /* mix_index_refresh failed */
	CH_MODSEQ = 13,       /* a refresh went back in modseqs */
	CH_CLOSE = 14,        /* mix_index_close */
	CH_FREE = 15,         /* mix_engine_free */
	CH_NOTLOCKED = 16,    /* a writable open did not get MIX_ELOCKED */
	CH_OWN = 17,          /* a writable index of the child's own failed */
	CH_VIEW = 18,         /* a view did not follow the refreshes */
};

static const char *child_step(int code)
{
	switch (code) {
	case CH_ENGINE: return "mix_engine_create failed";
	case CH_OPEN: return "read-only mix_index_open failed";
	case CH_REFRESH: return "mix_index_refresh failed";
	case CH_MODSEQ: return "a refreshed snapshot went back in modseq";
	case CH_CLOSE: return "mix_index_close failed";
	case CH_FREE: return "mix_engine_free failed";
	case CH_NOTLOCKED: return "a writable open did not get MIX_ELOCKED";
	case CH_VIEW: return "a view did not move to the refreshed snapshot";
	case CH_OWN: return "create/commit/close of an index of its own "
			    "failed";
	default: return "unknown exit code";
	}
}

#ifndef FORK_LIGHT_CHILD
/* A writable index of the child's own, with the child's engine: create,
 * commit, close. */
static int child_own_index(struct mix_engine *e)
{
	char *own = tu_tmpdir("fork-child");
	struct mix_index *idx;
	struct mix_txn *t;
	int ret;
	if ((ret = mix_index_open(e, own, MIX_OPEN_CREATE, &idx)) == 0) {
		if ((ret = mix_txn_begin(idx, &t)) == 0) {
			ret = mix_txn_append(t, 0, NULL, NULL);
			if (ret == 0)
				ret = mix_txn_commit(&t, MIX_DURABILITY_SYNC,
						     NULL);
			else
				mix_txn_abort(&t);
		}
		if (mix_index_close(&idx) < 0 && ret == 0)
			ret = -1;
	}
	tu_rmdir_r(own);
	free(own);
	return ret;
}
#endif

static void child(int iter)
{
#ifdef FORK_LIGHT_CHILD
	/* no thread, no malloc (FORK_LIGHT_WHY): a section on the forking
	 * thread is all (registration with the child's RCU domain) */
	(void)iter;
	mix_read_lock();
	mix_read_unlock();
	_exit(CH_OK);
#else
	struct mix_engine *e;
	struct mix_index *ro, *rw;
	struct mix_view *v;
	uint64_t last;
	int seen = 0, ret;

	if (mix_engine_create(NULL, &e) < 0)
		_exit(CH_ENGINE);
	if (iter % 50 == 0) {
		ret = mix_index_open(e, dir, 0, &rw);
		if (ret != MIX_ELOCKED)
			_exit(CH_NOTLOCKED);
	}
	if (mix_index_open(e, dir, MIX_OPEN_READONLY, &ro) < 0)
		_exit(CH_OPEN);
	if (mix_view_open(ro, &v) < 0)
		_exit(CH_VIEW);
	mix_read_lock();
	last = mix_snap_highest_modseq(mix_index_snap(ro));
	mix_read_unlock();
	/* follow two of the parent's commits (snapshots with a higher
	 * modseq) */
	while (seen < 2) {
		uint64_t h;
		ret = mix_index_refresh(ro);
		if (ret < 0)
			_exit(CH_REFRESH);
		if (ret == 0) {
			usleep(200);
			continue;
		}
		mix_read_lock();
		h = mix_snap_highest_modseq(mix_index_snap(ro));
		mix_read_unlock();
		/* a refresh may publish without a new transaction (a
		 * reload of mix.index after the writer's checkpoint), but
		 * never go back */
		if (h < last) {
			printf("# child of fork %d: highest modseq %llu after "
			       "%llu\n", iter, (unsigned long long)h,
			       (unsigned long long)last);
			fflush(stdout);
			_exit(CH_MODSEQ);
		}
		seen += h > last;
		last = h;
	}
	/* the view still pins the snapshot of the open; it moves to the
	 * last refreshed one */
	if (mix_view_refresh(v) != 1 ||
	    mix_snap_highest_modseq(mix_view_snap(v)) != last)
		_exit(CH_VIEW);
	mix_view_close(&v);
	if (mix_index_close(&ro) < 0)
		_exit(CH_CLOSE);
	if (iter % 50 == 25 && child_own_index(e) < 0)
		_exit(CH_OWN);
	if (mix_engine_free(&e) < 0)
		_exit(CH_FREE);
	_exit(CH_OK);
#endif
}

/* Wait for pid for at most timeout_s seconds (polling).  Returns the
 * status, or -1 when it is still running (then killed unless keep). */
static int wait_child(pid_t pid, unsigned timeout_s, int keep)
{
	struct timespec start, now;
	int status;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			BAIL("waitpid(%d): %s", (int)pid, strerror(errno));
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((unsigned)(now.tv_sec - start.tv_sec) >= timeout_s)
			break;
		usleep(500);
	}
	if (!keep) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	return -1;
}

/* ---- a reader frees into the buffer cache while another thread forks ----- */

/*
 * docs/reliability.md finding 19: a view holds the last reference of a
 * replaced snapshot; its owner enters a section, a commit starts a grace
 * period that waits for that section, another thread forks (its prepare
 * handlers wait for the grace period), and the owner, still inside its
 * section, refreshes the view: the snapshot dies into the buffer cache.
 * With the cache's fork lock taken before the fork gate (the order the
 * static library's constructors gave), the fork held the lock the reader
 * needed and the process hung.  Runs in a child of the still
 * single-threaded test, so that a hang is a failure, not a stuck make
 * check.  The sleeps only make the interleaving likely; the check is
 * that everything finishes.
 */
static struct mix_index *bc_idx;
static struct mix_view *bc_view;
static int bc_in_section;

static int flag_one(struct mix_index *idx, uint32_t uid)
{
	struct mix_uid_range r = { uid, uid };
	struct mix_txn *t;
	int ret;
	if ((ret = mix_txn_begin(idx, &t)) < 0)
		return ret;
	if ((ret = mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD,
				 MIX_FLAG_SEEN)) < 0) {
		mix_txn_abort(&t);
		return ret;
	}
	return mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
}

static void *bc_reader(void *arg)
{
	(void)arg;
	mix_read_lock();
	__atomic_store_n(&bc_in_section, 1, __ATOMIC_SEQ_CST);
	usleep(200 * 1000);
	(void)mix_view_refresh(bc_view);   /* "any context, never waits" */
	mix_read_unlock();
	return NULL;
}

static void bc_scenario(const char *base)
{
	struct mix_engine *e;
	pthread_t rt;
	pid_t pid;
	int st;

	if (mix_engine_create(NULL, &e) < 0 ||
	    mix_index_open(e, base, MIX_OPEN_CREATE, &bc_idx) < 0 ||
	    tu_append_commit(bc_idx, 10, MIX_DURABILITY_NONE, NULL) < 0 ||
	    mix_view_open(bc_idx, &bc_view) < 0 ||
	    flag_one(bc_idx, 1) < 0)
		_exit(2);
	usleep(50 * 1000);   /* the replaced snapshot: the view's alone */
	if (pthread_create(&rt, NULL, bc_reader, NULL) != 0)
		_exit(3);
	while (!__atomic_load_n(&bc_in_section, __ATOMIC_SEQ_CST))
		usleep(1000);
	if (flag_one(bc_idx, 2) < 0)   /* a grace period waits for it */
		_exit(4);
	usleep(30 * 1000);
	if ((pid = fork()) < 0)
		_exit(5);
	if (pid == 0)
		_exit(0);
	if (waitpid(pid, &st, 0) != pid || st != 0)
		_exit(6);
	pthread_join(rt, NULL);
	mix_view_close(&bc_view);
	if (mix_index_close(&bc_idx) < 0 || mix_engine_free(&e) < 0)
		_exit(7);
	_exit(0);
}

static void test_bufcache_fork(unsigned timeout_s)
{
	char *base = tu_tmpdir("fork-bc");
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork: %s", strerror(errno));
	if (pid == 0)
		bc_scenario(base);
	status = wait_child(pid, timeout_s, 0);
	ok(status == 0, "a fork while a reader, inside its section, frees a "
	   "view's last snapshot into the buffer cache while a grace period "
	   "waits for that section: the fork, the reader and the grace "
	   "period all finish (status %d%s)", status,
	   status == -1 ? ": hung" : "");
	tu_rmdir_r(base);
	free(base);
}

/* ---- main ------------------------------------------------------------------ */

int main(void)
{
	const char *s;
	int iters = DEFAULT_ITERS, i, failed_iter = -1, ret;
	unsigned timeout_s = 10;
	int keep = (s = getenv("MIX_FORK_KEEP_HUNG")) && *s == '1';
	struct worker cw[COMMITTERS], rw[READERS];
	struct mix_engine_config cfg;
	struct mix_engine *e;
	char why[300] = "";
	uint64_t commits = 0, reads = 0;
	int thread_err = 0;

	if ((s = getenv("MIX_FORK_ITERS")) && *s)
		iters = atoi(s);
	if ((s = getenv("MIX_FORK_TIMEOUT")) && *s)
		timeout_s = (unsigned)atoi(s);
	seed = tu_seed();
	diag("%d forks, %u s per child at most%s", iters, timeout_s,
#ifdef FORK_LIGHT_CHILD
	     " (children only enter a section: " FORK_LIGHT_WHY ")"
#else
	     ""
#endif
	     );

	test_bufcache_fork(timeout_s);   /* before this process has threads */

	dir = tu_tmpdir("fork");
	mix_engine_config_init(&cfg);
	/* rotations and checkpoints too, and short logs for the children
	 * to replay */
	cfg.log_rotate_size = 64u << 10;
	if ((ret = mix_engine_create(&cfg, &e)) < 0)
		BAIL("mix_engine_create: %s", mix_strerror(ret));
	if ((ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &widx)) < 0)
		BAIL("mix_index_open: %s", mix_last_error());

	memset(cw, 0, sizeof(cw));
	memset(rw, 0, sizeof(rw));
	for (i = 0; i < COMMITTERS; i++) {
		cw[i].id = i;
		if (pthread_create(&cw[i].tid, NULL, committer, &cw[i]) != 0)
			BAIL("pthread_create");
	}
	for (i = 0; i < READERS; i++) {
		rw[i].id = COMMITTERS + i;
		if (pthread_create(&rw[i].tid, NULL, reader, &rw[i]) != 0)
			BAIL("pthread_create");
	}
	/* let the writer and the reclaim thread get going */
	while (__atomic_load_n(&cw[0].ops, __ATOMIC_RELAXED) < 100 &&
	       !cw[0].err)
		usleep(1000);

	for (i = 0; i < iters; i++) {
		pid_t pid;
		int status;
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			BAIL("fork %d: %s", i, strerror(errno));
		if (pid == 0)
			child(i);
		status = wait_child(pid, timeout_s, keep);
		if (status == -1) {
			snprintf(why, sizeof(why), "fork %d: child %d still "
				 "running after %u s: it hung%s", i, (int)pid,
				 timeout_s, keep ? " (left running)" : "");
		} else if (WIFSIGNALED(status)) {
			snprintf(why, sizeof(why), "fork %d: child %d killed "
				 "by signal %d", i, (int)pid, WTERMSIG(status));
		} else if (WEXITSTATUS(status) != CH_OK) {
			snprintf(why, sizeof(why), "fork %d: child %d exit %d: "
				 "%s", i, (int)pid, WEXITSTATUS(status),
				 child_step(WEXITSTATUS(status)));
		}
		if (why[0]) {
			failed_iter = i;
			diag("%s", why);
			break;
		}
	}

	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < COMMITTERS; i++) {
		pthread_join(cw[i].tid, NULL);
		commits += cw[i].ops;
		if (cw[i].err) {
			diag("committer %d: %s", i, cw[i].msg);
			thread_err = 1;
		}
	}
	for (i = 0; i < READERS; i++) {
		pthread_join(rw[i].tid, NULL);
		reads += rw[i].ops;
		if (rw[i].err) {
			diag("reader %d: %s", i, rw[i].msg);
			thread_err = 1;
		}
	}
	diag("parent: %llu commits, %llu read sections during the forks",
	     (unsigned long long)commits, (unsigned long long)reads);

	ok(failed_iter < 0, "%d forks while %d committers, %d readers and "
	   "the reclaim thread ran: every child exited 0 in time%s "
	   "(first failure: %s)", iters, COMMITTERS, READERS,
#ifdef FORK_LIGHT_CHILD
	   " (children only entered a section)",
#else
	   ", each with its own engine, a read-only open and a view, two "
	   "refreshes that followed commits, a close",
#endif
	   failed_iter < 0 ? "none" : why);
#ifdef FORK_LIGHT_CHILD
	ok(1, "children open, refresh and close the index # SKIP "
	   FORK_LIGHT_WHY);
#endif
	ok(!thread_err, "the parent's committers and readers saw no error");
	ok(commits > 0, "the parent committed during the forks (%llu)",
	   (unsigned long long)commits);

	ret = mix_index_close(&widx);
	is(ret, 0, "the parent closes its index after the forks (%s)",
	   ret ? mix_last_error() : "ok");
	ret = mix_engine_free(&e);
	is(ret, 0, "and frees its engine");
	tu_rmdir_r(dir);
	return tap_done();
}
