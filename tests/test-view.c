/*
 * Views, watchers, other processes and several writer threads
 * (engine/view.c, engine/watch.c, engine/index.c refresh; issue 3):
 *  - a view held across thousands of commits, checkpoints and remaps
 *    still reads its old records (clean under ASan), and its snapshots
 *    are freed once it is closed;
 *  - mix_view_sync reports exactly what changed between the two
 *    snapshots (expunges as descending valid sequence numbers, changed
 *    and new UIDs), through the expunge history and through the whole
 *    comparison when a small history no longer reaches back;
 *  - a thread blocked in epoll_wait on a watcher wakes after another
 *    thread's commit and sees it after syncing;
 *  - a second process opens the index READONLY while this one writes and
 *    follows it with mix_index_refresh across rotations;
 *  - a second writer gets MIX_ELOCKED naming the holder's pid, or waits
 *    for it with lock_timeout_ms;
 *  - 4 writer threads serving 12 mailboxes with 8 committers lose
 *    nothing.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

static uint64_t rng;

struct urec {
	uint32_t uid;
	uint64_t modseq;
	uint8_t flags;
};

/* The records of a snapshot as a plain array. */
static struct urec *snap_list(const struct mix_snap *s, uint32_t *n_r)
{
	uint32_t n = mix_snap_messages_count(s), i = 0;
	struct urec *v = calloc(n + 1, sizeof(*v)); /* padding too: memcmp */
	struct mix_iter it;
	struct mix_record rec;
	mix_iter_init(&it, s, 1);
	while (i < n && mix_iter_next(&it, &rec)) {
		v[i].uid = rec.uid;
		v[i].modseq = rec.modseq;
		v[i].flags = rec.flags;
		i++;
	}
	*n_r = i;
	return v;
}

static void random_txn(struct mix_index *idx)
{
	struct mix_txn *t;
	uint32_t next, op = tu_rand_below(&rng, 4), i;
	mix_read_lock();
	next = mix_snap_next_uid(mix_index_snap(idx));
	mix_read_unlock();
	mix_txn_begin(idx, &t);
	if (op == 0) {
		for (i = 0; i < 1 + tu_rand_below(&rng, 5); i++)
			mix_txn_append(t, 0, NULL, NULL);
	} else {
		uint32_t a = 1 + tu_rand_below(&rng, next);
		struct mix_uid_range r = { a, a + tu_rand_below(&rng, 4) };
		if (op == 1)
			mix_txn_expunge(t, &r, 1);
		else
			mix_txn_flags(t, &r, 1, MIX_MODIFY_REPLACE,
				      (uint8_t)tu_rand_below(&rng, 32));
	}
	mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
}

static void test_pin(struct mix_engine *e, const char *dir)
{
	struct mix_index *idx;
	struct mix_view *v;
	struct mix_index_stats st0, st1, st2;
	struct urec *before, *after;
	uint32_t nb, na, i;
	int same, waited;

	is(mix_index_open(e, dir, MIX_OPEN_CREATE, &idx), 0, "index");
	tu_append(idx, 3000, 0);
	mix_view_open(idx, &v);
	before = snap_list(mix_view_snap(v), &nb);
	mix_index_stats(idx, &st0);
	for (i = 0; i < 3000; i++)
		random_txn(idx);
	after = snap_list(mix_view_snap(v), &na);
	same = na == nb && memcmp(before, after, nb * sizeof(*before)) == 0;
	ok(same, "a view held across 3000 commits (with checkpoints and "
	   "remaps) still reads its %u old records", nb);
	mix_index_stats(idx, &st1);
	ok(st1.snapshots_live >= 2, "its snapshot is alive (%u live)",
	   st1.snapshots_live);
	is(mix_index_close(&idx), MIX_EINVAL, "close with a view open refused");
	mix_view_close(&v);
	for (waited = 0; waited < 5000; waited += 10) {
		mix_index_stats(idx, &st2);
		if (st2.snapshots_live == 1)
			break;
		usleep(10000);
	}
	ok(st2.snapshots_live == 1 && st2.objects_freed > st1.objects_freed,
	   "closing it frees its snapshot: %u live, %llu more objects freed",
	   st2.snapshots_live,
	   (unsigned long long)(st2.objects_freed - st1.objects_freed));
	(void)st0;
	free(before);
	free(after);
	is(mix_index_close(&idx), 0, "closed");
}

/* Check one sync report against the two snapshots' contents. */
static int check_report(const struct urec *o, uint32_t no,
			const struct urec *n, uint32_t nn, uint64_t old_hms,
			const struct mix_view_changes *ch)
{
	uint32_t i = 0, j = 0, ei = 0, ci = 0, ni = 0, k, prev = UINT32_MAX;
	uint32_t *eseq = malloc((no + 1) * 4), ne = 0;
	int bad = 0;

	while (i < no || j < nn) {
		if (j == nn || (i < no && o[i].uid < n[j].uid)) {
			eseq[ne++] = i + 1; /* expunged: old seq */
			i++;
		} else if (i == no || n[j].uid < o[i].uid) {
			if (ni >= ch->new_count || ch->new_uids[ni] != n[j].uid)
				bad |= 1;
			ni++;
			j++;
		} else {
			if (n[j].modseq > old_hms) {
				if (ci >= ch->changed_count ||
				    ch->changed_uids[ci] != n[j].uid)
					bad |= 2;
				ci++;
			}
			i++;
			j++;
		}
	}
	if (ni != ch->new_count || ci != ch->changed_count)
		bad |= 4;
	if (ne != ch->expunged_count)
		bad |= 8;
	for (k = 0; k < ch->expunged_count && !(bad & 8); k++) {
		/* descending, and the set is the expected one */
		if (ch->expunged_seqs[k] >= prev ||
		    ch->expunged_seqs[k] != eseq[ne - 1 - k])
			bad |= 16;
		prev = ch->expunged_seqs[k];
	}
	(void)ei;
	if (ch->old_messages_count != no || ch->new_messages_count != nn)
		bad |= 32;
	free(eseq);
	return bad;
}

static void test_sync_reports(struct mix_engine *e, const char *dir,
			      const char *what)
{
	struct mix_index *idx;
	struct mix_view *views[4];
	int i, round, bad = 0, syncs = 0, full = 0;

	is(mix_index_open(e, dir, MIX_OPEN_CREATE, &idx), 0, "index");
	tu_append(idx, 500, 0);
	for (i = 0; i < 4; i++)
		mix_view_open(idx, &views[i]);
	for (round = 0; round < (int)(1500 * tu_scale()); round++) {
		int w = (int)tu_rand_below(&rng, 4), r;
		struct mix_view_changes ch;
		struct urec *o, *n;
		uint32_t no, nn;
		uint64_t old_hms;

		random_txn(idx);
		if (tu_rand_below(&rng, 3))
			continue;
		o = snap_list(mix_view_snap(views[w]), &no);
		old_hms = mix_snap_highest_modseq(mix_view_snap(views[w]));
		r = mix_view_sync(views[w], &ch);
		n = snap_list(mix_view_snap(views[w]), &nn);
		if (r == 1) {
			int b = check_report(o, no, n, nn, old_hms, &ch);
			syncs++;
			full += ch.full_compare;
			if (b && bad++ < 3)
				diag("round %d view %d: report mismatch 0x%x "
				     "(%u expunged, %u changed, %u new)", round,
				     w, b, ch.expunged_count, ch.changed_count,
				     ch.new_count);
			mix_view_changes_free(&ch);
		} else if (r < 0) {
			bad++;
		}
		free(o);
		free(n);
	}
	ok(bad == 0 && syncs > 100, "%s: %d view syncs report exactly what "
	   "changed (%d by whole comparison)", what, syncs, full);
	for (i = 0; i < 4; i++)
		mix_view_close(&views[i]);
	mix_index_close(&idx);
}

/* ---- watcher ---------------------------------------------------------- */

static struct mix_index *w_idx;

static void *committer_later(void *arg)
{
	(void)arg;
	usleep(50000);
	tu_append(w_idx, 1, 0);
	return NULL;
}

static void test_watch(struct mix_engine *e, const char *dir)
{
	struct mix_watch *w;
	struct mix_view *v;
	struct mix_view_changes ch;
	struct epoll_event ev = { .events = EPOLLIN }, out;
	pthread_t th;
	int ep, n, r;

	is(mix_index_open(e, dir, MIX_OPEN_CREATE, &w_idx), 0, "index");
	tu_append(w_idx, 10, 0);
	is(mix_watch_open(w_idx, &w), 0, "watcher");
	mix_view_open(w_idx, &v);
	ep = epoll_create1(0);
	epoll_ctl(ep, EPOLL_CTL_ADD, mix_watch_fd(w), &ev);
	mix_watch_rearm(w);
	n = epoll_wait(ep, &out, 1, 0);
	is(n, 0, "not readable before a commit");
	pthread_create(&th, NULL, committer_later, NULL);
	n = epoll_wait(ep, &out, 1, 10000);
	is(n, 1, "epoll_wait woke after another thread's commit");
	pthread_join(th, NULL);
	mix_watch_rearm(w);
	r = mix_view_sync(v, &ch);
	ok(r == 1 && ch.new_count == 1 && ch.new_uids[0] == 11,
	   "the view sees the new message after syncing");
	mix_view_changes_free(&ch);
	n = epoll_wait(ep, &out, 1, 0);
	is(n, 0, "re-armed: quiet again");
	close(ep);
	mix_view_close(&v);
	mix_watch_close(&w);
	mix_index_close(&w_idx);
}

/* ---- another process ------------------------------------------------- */

#define CHILD_COMMITS 400

/* Child: the writer.  Tells the parent when the index exists, commits,
 * reports the final state, holds the lock until told to close. */
static void child_writer(const char *dir, int to_parent, int from_parent)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *idx;
	uint64_t msg[2];
	char c;
	int i;

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	if (mix_engine_create(&cfg, &e) < 0 ||
	    mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		_exit(2);
	tu_append(idx, 100, 0);
	if (write(to_parent, "r", 1) != 1 || read(from_parent, &c, 1) != 1)
		_exit(3);
	for (i = 0; i < CHILD_COMMITS; i++) {
		random_txn(idx);
		if (i % 50 == 0)
			usleep(2000);
	}
	mix_read_lock();
	msg[0] = mix_snap_highest_modseq(mix_index_snap(idx));
	msg[1] = mix_snap_messages_count(mix_index_snap(idx));
	mix_read_unlock();
	if (write(to_parent, msg, sizeof(msg)) != sizeof(msg) ||
	    read(from_parent, &c, 1) != 1)
		_exit(4);
	mix_index_close(&idx);
	mix_engine_free(&e);
	_exit(0);
}

static void test_other_process(const char *dir)
{
	int up[2], down[2], st, ret, bad = 0, refreshes = 0;
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *ro, *w2;
	uint64_t msg[2], last = 0;
	char c;
	pid_t pid;

	if (pipe(up) < 0 || pipe(down) < 0)
		BAIL("pipe");
	pid = fork();
	if (pid == 0)
		child_writer(dir, up[1], down[0]);
	if (read(up[0], &c, 1) != 1)
		BAIL("child did not start");
	mix_engine_config_init(&cfg);
	if (mix_engine_create(&cfg, &e) < 0)
		BAIL("engine");
	ret = mix_index_open(e, dir, 0, &w2);
	{
		char want[32];
		snprintf(want, sizeof(want), "pid %d", (int)pid);
		ok(ret == MIX_ELOCKED && strstr(mix_last_error(), want),
		   "second writer: %s", mix_last_error());
	}
	is(mix_index_open(e, dir, MIX_OPEN_READONLY, &ro), 0,
	   "READONLY open beside the writing process");
	if (write(down[1], "g", 1) != 1)
		BAIL("pipe");
	for (;;) {
		const struct mix_snap *s;
		uint64_t h;
		fd_set rs;
		struct timeval tv = { 0, 1000 };
		ret = mix_index_refresh(ro);
		if (ret < 0) {
			diag("refresh: %s", mix_last_error());
			bad++;
			break;
		}
		refreshes += ret;
		mix_read_lock();
		s = mix_index_snap(ro);
		h = mix_snap_highest_modseq(s);
		if (h < last)
			bad++;
		last = h;
		{
			struct mix_iter it;
			struct mix_record rec;
			uint32_t n = 0, prev = 0;
			mix_iter_init(&it, s, 1);
			while (mix_iter_next(&it, &rec)) {
				if (rec.uid <= prev || rec.modseq > h)
					bad++;
				prev = rec.uid;
				n++;
			}
			if (n != mix_snap_messages_count(s))
				bad++;
		}
		mix_read_unlock();
		FD_ZERO(&rs);
		FD_SET(up[0], &rs);
		if (select(up[0] + 1, &rs, NULL, NULL, &tv) > 0)
			break;
	}
	if (read(up[0], msg, sizeof(msg)) != sizeof(msg))
		BAIL("child final state");
	ret = mix_index_refresh(ro);
	mix_read_lock();
	ok(ret >= 0 && mix_snap_highest_modseq(mix_index_snap(ro)) == msg[0] &&
	   mix_snap_messages_count(mix_index_snap(ro)) == msg[1],
	   "after a last refresh the reader has the writer's final state "
	   "(%llu messages)", (unsigned long long)msg[1]);
	mix_read_unlock();
	ok(bad == 0 && refreshes > 1, "%d refreshes across rotations: never "
	   "a torn or inconsistent snapshot", refreshes);
	mix_index_close(&ro);
	/* the writer closes in 300 ms; wait for its lock */
	mix_engine_free(&e);
	cfg.lock_timeout_ms = 10000;
	mix_engine_create(&cfg, &e);
	if (write(down[1], "c", 1) != 1)
		BAIL("pipe");
	ret = mix_index_open(e, dir, 0, &w2);
	is(ret, 0, "writable open waited for the other process's lock: %s",
	   ret ? mix_last_error() : "ok");
	if (ret == 0)
		mix_index_close(&w2);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer process exited "
	   "cleanly (status %d)", st);
	mix_engine_free(&e);
}

/* ---- read-only refresh across rotations (regression) ------------------- */

static struct mix_index *rr_idx;
static uint64_t rr_acked;
static int rr_stop;

static void *rr_committer(void *arg)
{
	uint32_t i = 0;
	(void)arg;
	while (!__atomic_load_n(&rr_stop, __ATOMIC_ACQUIRE)) {
		struct mix_txn *t;
		struct mix_commit_result res;
		struct mix_uid_range r = { 1 + i % 50, 1 + i % 50 };
		mix_txn_begin(rr_idx, &t);
		mix_txn_flags(t, &r, 1, (i / 50) % 2 ? MIX_MODIFY_REMOVE
						      : MIX_MODIFY_ADD,
			      MIX_FLAG_SEEN);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, &res) == 0)
			__atomic_store_n(&rr_acked, res.modseq,
					 __ATOMIC_RELEASE);
		i++;
	}
	return NULL;
}

/* A read-only refresh that starts after a commit was acknowledged sees
 * it, even while the writer is between the two renames of a rotation
 * (found by stress/validate --ro-readers). */
static void test_refresh_rotation(const char *dir)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *ro;
	pthread_t th;
	uint64_t misses = 0, refreshes = 0, t_end;
	struct timespec ts;

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	mix_engine_create(&cfg, &e);
	mix_index_open(e, dir, MIX_OPEN_CREATE, &rr_idx);
	tu_append(rr_idx, 50, 0);
	if (mix_index_open(e, dir, MIX_OPEN_READONLY, &ro) < 0)
		BAIL("ro: %s", mix_last_error());
	pthread_create(&th, NULL, rr_committer, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t_end = (uint64_t)ts.tv_sec + 2;
	do {
		uint64_t acked = __atomic_load_n(&rr_acked, __ATOMIC_ACQUIRE);
		uint64_t h;
		if (mix_index_refresh(ro) < 0) {
			misses++;
			diag("refresh: %s", mix_last_error());
			break;
		}
		refreshes++;
		mix_read_lock();
		h = mix_snap_highest_modseq(mix_index_snap(ro));
		mix_read_unlock();
		if (h < acked && misses++ < 3)
			diag("after refresh %llu: highest %llx < acknowledged "
			     "%llx", (unsigned long long)refreshes,
			     (unsigned long long)h, (unsigned long long)acked);
		clock_gettime(CLOCK_MONOTONIC, &ts);
	} while ((uint64_t)ts.tv_sec < t_end);
	__atomic_store_n(&rr_stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	is(misses, 0, "%llu read-only refreshes during rotations every "
	   "4 KiB: each sees every commit acknowledged before it",
	   (unsigned long long)refreshes);
	mix_index_close(&ro);
	mix_index_close(&rr_idx);
	mix_engine_free(&e);
}

/* ---- several writer threads -------------------------------------------- */

#define NBOX 12
static struct mix_index *boxes[NBOX];
static uint32_t appended[NBOX];

static void *multi_committer(void *arg)
{
	uint64_t r = (uintptr_t)arg * 7777 + 1;
	int i;
	for (i = 0; i < 500; i++) {
		int b = (int)tu_rand_below(&r, NBOX);
		uint32_t n = 1 + tu_rand_below(&r, 3), k;
		struct mix_txn *t;
		mix_txn_begin(boxes[b], &t);
		for (k = 0; k < n; k++)
			mix_txn_append(t, 0, NULL, NULL);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) == 0)
			__atomic_add_fetch(&appended[b], n, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_writers(const char *base)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	pthread_t th[8];
	char dirs[NBOX][4096];
	int i, bad = 0;
	uintptr_t k;

	mix_engine_config_init(&cfg);
	cfg.writer_threads = 4;
	cfg.log_rotate_size = 8192;
	mix_engine_create(&cfg, &e);
	for (i = 0; i < NBOX; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "%s/box%d", base, i);
		mkdir(dirs[i], 0700);
		if (mix_index_open(e, dirs[i], MIX_OPEN_CREATE, &boxes[i]) < 0)
			BAIL("open %s", dirs[i]);
	}
	for (k = 0; k < 8; k++)
		pthread_create(&th[k], NULL, multi_committer, (void *)k);
	for (k = 0; k < 8; k++)
		pthread_join(th[k], NULL);
	for (i = 0; i < NBOX; i++) {
		mix_index_close(&boxes[i]);
		mix_index_open(e, dirs[i], 0, &boxes[i]);
		mix_read_lock();
		if (mix_snap_messages_count(mix_index_snap(boxes[i])) !=
		    appended[i])
			bad++;
		mix_read_unlock();
		mix_index_close(&boxes[i]);
		tu_rmdir_r(dirs[i]);
	}
	is(bad, 0, "4 writer threads, %d mailboxes, 8 committers: every "
	   "append of every mailbox is there after reopen", NBOX);
	mix_engine_free(&e);
}

int main(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	char *d1 = tu_tmpdir("view1"), *d2 = tu_tmpdir("view2"),
	     *d3 = tu_tmpdir("view3"), *d4 = tu_tmpdir("view4"),
	     *d5 = tu_tmpdir("view5"), *d6 = tu_tmpdir("view6");

	rng = tu_seed();
	/* fork first: the parent has no threads yet */
	test_other_process(d5);
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 8192;
	mix_engine_create(&cfg, &e);
	test_pin(e, d1);
	test_sync_reports(e, d2, "expunge history");
	test_watch(e, d4);
	mix_engine_free(&e);
	cfg.expunge_history_max = 4;
	mix_engine_create(&cfg, &e);
	test_sync_reports(e, d3, "tiny history");
	mix_engine_free(&e);
	test_writers(d6);
	{
		char *d7 = tu_tmpdir("view7");
		test_refresh_rotation(d7);
		tu_rmdir_r(d7);
		free(d7);
	}
	tu_rmdir_r(d1);
	tu_rmdir_r(d2);
	tu_rmdir_r(d3);
	tu_rmdir_r(d4);
	tu_rmdir_r(d5);
	tu_rmdir_r(d6);
	free(d1);
	free(d2);
	free(d3);
	free(d4);
	free(d5);
	free(d6);
	return tap_done();
}
