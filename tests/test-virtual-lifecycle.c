/*
 * Virtual mailbox lifecycles (engine/virtual*.c, docs/virtual.md
 * "Lifecycle test"): three backend indexes take random appends, flag
 * changes and expunges while the virtual mailbox (rule "UNSEEN") is
 * open, closed, or being synced by a child process that is killed with
 * SIGKILL at a random moment (or _exits without closing) — the child
 * also commits to the backends, so they crash too.  After every step
 * the virtual mailbox is (re)opened if needed and synced with
 * MIX_VIRTUAL_SYNC_EXPUNGE, and its view must equal the truth read from
 * the backends: exactly the backend messages without \Seen, each once,
 * with the backend's system flags; a message that stays in the view
 * keeps its virtual UID; a new virtual UID is above every virtual UID
 * seen before (never reused); the virtual mailbox always opens and never
 * reports damage (result.rebuilt stays 0).  A backend also loses a
 * tail of NONE commits the virtual mailbox had mirrored (a power cut:
 * its durable files come back with a lock file of another boot), and
 * the view must follow the backend as it is after recovery.  Seen vs
 * expected printed on
 * failure.  MIX_SEED replays, MIX_TEST_SCALE runs more steps.  Crash
 * children need fork among threads: skipped under TSan and ASan.  Single
 * test thread plus the engine's writer (and the child processes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#include "fileio.h"          /* the I/O trace hook: faithful cuts only */
#include "mix/mix.h"
#include "mix/virtual.h"
#include "stepfail.h"
#include "tap.h"
#include "testutil.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FORK_SKIP 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define FORK_SKIP 1
#endif
#endif

#define NB 3
#define MAXV 4096
#define SYSFLAGS (MIX_FLAG_ANSWERED | MIX_FLAG_FLAGGED | MIX_FLAG_DELETED | \
		  MIX_FLAG_SEEN | MIX_FLAG_DRAFT)

static const char *const bnames[NB] = { "INBOX", "Work", "Lists" };
/* which backends the definition lists now (one may be dropped and come
 * back: with a new mailbox id, its messages with new virtual UIDs) */
static int in_def[NB] = { 1, 1, 1 };
/* a backend given as NULL (cannot be opened now) at the next open, or -1 */
static int unavailable = -1;
static char *base;

/* What the test remembers across steps: the virtual UID of each backend
 * message while it is in the view, and the highest virtual UID seen. */
struct vmsg {
	uint32_t mbid, ruid, vuid;
	uint8_t flags;
};
static struct vmsg known[MAXV];
static int nknown;
static uint32_t max_vuid;


static char *dir_of(const char *name)
{
	static char p[4][4200];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", base, name);
	return p[k];
}

/* ---- backends ------------------------------------------------------------ */

/* Writable opens of a backend that skipped UIDs (format.md §2.7: the
 * last writer may have lost writes).  Only then may a sync take the
 * backend for one that lost writes.  Besides the simulated power cuts,
 * a child killed inside its open between the lock file's truncation and
 * its rewrite (engine/index.c lock_write) leaves an empty lock file,
 * which the next open takes for another boot. */
static long opens_skipped;

static void note_open(struct mix_index *ix)
{
	struct mix_open_info oi;
	mix_index_open_info(ix, &oi);
	if (oi.uids_skipped > 0)
		opens_skipped++;
}

static void open_backends(struct mix_engine *e, struct mix_index **b)
{
	for (int i = 0; i < NB; i++) {
		int ret;
		mkdir(dir_of(bnames[i]), 0700);
		if ((ret = mix_index_open(e, dir_of(bnames[i]),
					  MIX_OPEN_CREATE, &b[i])) < 0)
			BAIL("open backend %s: %s", bnames[i],
			     mix_last_error());
		note_open(b[i]);
	}
}

static void close_backends(struct mix_index **b)
{
	for (int i = 0; i < NB; i++)
		if (b[i] && mix_index_close(&b[i]) < 0)
			fail("close backend %s: %s", bnames[i],
			     mix_last_error());
}

/* A random UID range of backend ix (may name no message). */
static struct mix_uid_range some_uids(struct mix_index *ix, uint64_t *rng)
{
	struct mix_uid_range r;
	uint32_t nu;
	mix_read_lock();
	nu = mix_snap_next_uid(mix_index_snap(ix));
	mix_read_unlock();
	r.first = 1 + tu_rand_below(rng, nu);
	r.last = r.first + tu_rand_below(rng, 3);
	return r;
}

/* One random backend commit: appends, a flag change or an expunge,
 * with durability dur (-1: drawn). */
static int backend_op_dur(struct mix_index *ix, uint64_t *rng, int dur)
{
	struct mix_txn *t;
	struct mix_uid_range r = some_uids(ix, rng);
	uint32_t k = tu_rand_below(rng, 10);
	int ret = mix_txn_begin(ix, &t);

	if (ret < 0)
		return ret;
	if (k < 4) {
		for (uint32_t n = 1 + tu_rand_below(rng, 3); n > 0 && !ret; n--)
			ret = mix_txn_append(t, (uint8_t)(tu_rand_below(rng, 2)
					     ? MIX_FLAG_SEEN : 0) |
					     (tu_rand_below(rng, 3) ? 0 :
					      MIX_FLAG_FLAGGED), NULL, NULL);
	} else if (k < 8) {
		static const uint8_t f[] = { MIX_FLAG_SEEN, MIX_FLAG_FLAGGED,
					     MIX_FLAG_ANSWERED };
		ret = mix_txn_flags(t, &r, 1, tu_rand_below(rng, 2) ?
				    MIX_MODIFY_ADD : MIX_MODIFY_REMOVE,
				    f[tu_rand_below(rng, 3)]);
	} else {
		ret = mix_txn_expunge(t, &r, 1);
	}
	if (ret < 0) {
		mix_txn_abort(&t);
		return ret;
	}
	if (dur < 0)
		dur = tu_rand_below(rng, 2) ? MIX_DURABILITY_SYNC
					    : MIX_DURABILITY_NONE;
	return mix_txn_commit(&t, (enum mix_durability)dur, NULL);
}

static int backend_op(struct mix_index *ix, uint64_t *rng)
{
	return backend_op_dur(ix, rng, -1);
}

/* Copy the regular files of directory from into to (created). */
static void copy_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *de;
	char a[4400], b[4400], buf[65536];

	mkdir(to, 0700);
	if (!d)
		BAIL("opendir %s", from);
	while ((de = readdir(d)) != NULL) {
		int in, out;
		ssize_t n;
		if (de->d_name[0] == '.')
			continue;
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		if ((in = open(a, O_RDONLY)) < 0)
			continue;
		if ((out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
			BAIL("create %s", b);
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				BAIL("write %s", b);
		close(in);
		close(out);
	}
	closedir(d);
}

/* ---- the virtual mailbox ------------------------------------------------- */

/* Warnings that a backend may have lost writes: only after a power cut
 * (a false alarm would cost a full pass at every sync). */
static long lost_warnings;

static void on_warning(void *ctx, const char *msg)
{
	(void)ctx;
	if (strstr(msg, "may have lost writes"))
		lost_warnings++;
}

static struct mix_virtual *open_virtual(struct mix_engine *e,
					struct mix_index **b)
{
	struct mix_virtual_backend vb[NB];
	struct mix_virtual_def def = { 0 };
	struct mix_virtual *v;
	int ret;

	uint32_t n = 0;

	for (int i = 0; i < NB; i++) {
		if (!in_def[i])
			continue;
		vb[n].name = bnames[i];
		vb[n++].index = i == unavailable ? NULL : b[i];
	}
	def.backends = vb;
	def.backend_count = n;
	def.rule = "UNSEEN";
	def.warning = on_warning;
	mkdir(dir_of("virtual"), 0700);
	if ((ret = mix_virtual_open(e, dir_of("virtual"), &def, &v)) < 0) {
		fail("virtual open: %s (%s)", mix_strerror(ret),
		     mix_last_error());
		BAIL("the virtual mailbox does not open");
	}
	return v;
}

static int vsync(struct mix_virtual *v, unsigned flags)
{
	struct mix_virtual_sync_result res;
	int ret = mix_virtual_sync(v, flags, &res);
	if (ret < 0)
		fail("virtual sync: %s (%s)", mix_strerror(ret),
		     mix_last_error());
	else if (res.rebuilt)
		fail("virtual sync rebuilt the virtual mailbox (%d: %s)",
		     res.rebuilt, res.rebuilt == 2 ? "damage" : "rule");
	return ret;
}

static int vmsg_cmp(const void *a, const void *b)
{
	const struct vmsg *x = a, *y = b;
	if (x->mbid != y->mbid)
		return x->mbid < y->mbid ? -1 : 1;
	return x->ruid < y->ruid ? -1 : x->ruid > y->ruid;
}

static struct vmsg seen_v[MAXV], want_v[MAXV];

/* Every virtual UID ever seen and the message it named, by vuid. */
static struct vmsg *ever;
static size_t never, capever;

static int vuid_cmp(const void *a, const void *b)
{
	const struct vmsg *x = a, *y = b;
	return x->vuid < y->vuid ? -1 : x->vuid > y->vuid;
}

static struct vmsg *ever_find(uint32_t vuid)
{
	struct vmsg key = { .vuid = vuid };
	return never ? bsearch(&key, ever, never, sizeof(*ever), vuid_cmp)
		     : NULL;
}

static void ever_add(const struct vmsg *m)
{
	size_t lo = 0, hi = never;
	if (ever_find(m->vuid))
		return;
	if (never == capever) {
		capever = capever ? capever * 2 : 1024;
		if ((ever = realloc(ever, capever * sizeof(*ever))) == NULL)
			BAIL("out of memory");
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ever[mid].vuid < m->vuid)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&ever[lo + 1], &ever[lo], (never - lo) * sizeof(*ever));
	ever[lo] = *m;
	never++;
}

/* The view after a sync with expunges must be the truth. */
static void compare(struct mix_virtual *v, struct mix_index **b)
{
	const struct mix_snap *s;
	struct mix_iter it;
	struct mix_record rec;
	int ns = 0, nw = 0, i;

	mix_read_lock();
	s = mix_index_snap(mix_virtual_index(v));
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &rec) && ns < MAXV) {
		struct vmsg *m = &seen_v[ns++];
		m->vuid = rec.uid;
		m->flags = rec.flags & SYSFLAGS;
		if (mix_virtual_lookup(s, rec.uid, &m->mbid, &m->ruid) != 1)
			m->mbid = m->ruid = 0;
	}
	mix_read_unlock();
	for (int k = 0; k < NB; k++) {
		uint32_t mbid = 0;
		if (!in_def[k])
			continue;
		if (mix_virtual_mailbox_id(v, bnames[k], &mbid) != 1) {
			fail("backend %s has no mailbox id after a sync",
			     bnames[k]);
			continue;
		}
		mix_read_lock();
		s = mix_index_snap(b[k]);
		mix_iter_init(&it, s, 1);
		while (mix_iter_next(&it, &rec) && nw < MAXV) {
			if (rec.flags & MIX_FLAG_SEEN)
				continue;
			want_v[nw].mbid = mbid;
			want_v[nw].ruid = rec.uid;
			want_v[nw].flags = rec.flags & SYSFLAGS;
			want_v[nw++].vuid = 0;
		}
		mix_read_unlock();
	}
	qsort(seen_v, (size_t)ns, sizeof(seen_v[0]), vmsg_cmp);
	qsort(want_v, (size_t)nw, sizeof(want_v[0]), vmsg_cmp);
	for (i = 0; i < ns || i < nw; i++) {
		const struct vmsg *a = i < ns ? &seen_v[i] : NULL;
		const struct vmsg *w = i < nw ? &want_v[i] : NULL;
		if (!a || !w || vmsg_cmp(a, w) != 0 || a->flags != w->flags) {
			fail("view: seen (mailbox %u, uid %u, flags %x, vuid "
			     "%u) expected (mailbox %u, uid %u, flags %x) "
			     "[%d vs %d messages]", a ? a->mbid : 0,
			     a ? a->ruid : 0, a ? a->flags : 0,
			     a ? a->vuid : 0, w ? w->mbid : 0,
			     w ? w->ruid : 0, w ? w->flags : 0, ns, nw);
			return;
		}
	}
	/* virtual UIDs: kept while in the view; one seen before names the
	 * same message as then; an unseen one is above all seen */
	{
		uint32_t newmax = max_vuid;
		for (i = 0; i < ns; i++) {
			struct vmsg *k = bsearch(&seen_v[i], known,
						 (size_t)nknown,
						 sizeof(known[0]), vmsg_cmp);
			struct vmsg *o = ever_find(seen_v[i].vuid);
			if (k && k->vuid != seen_v[i].vuid)
				fail("mailbox %u uid %u: virtual UID %u, it "
				     "was %u", seen_v[i].mbid, seen_v[i].ruid,
				     seen_v[i].vuid, k->vuid);
			if (o && (o->mbid != seen_v[i].mbid ||
				  o->ruid != seen_v[i].ruid))
				fail("virtual UID %u names mailbox %u uid %u, "
				     "it named mailbox %u uid %u (reused)",
				     seen_v[i].vuid, seen_v[i].mbid,
				     seen_v[i].ruid, o->mbid, o->ruid);
			if (!o && seen_v[i].vuid <= max_vuid)
				fail("mailbox %u uid %u: new virtual UID %u, "
				     "not above %u seen before (reused)",
				     seen_v[i].mbid, seen_v[i].ruid,
				     seen_v[i].vuid, max_vuid);
			if (seen_v[i].vuid > newmax)
				newmax = seen_v[i].vuid;
		}
		for (i = 0; i < ns; i++)
			ever_add(&seen_v[i]);
		max_vuid = newmax;
		memcpy(known, seen_v, (size_t)ns * sizeof(known[0]));
		nknown = ns;
	}
}

/* A sync the test does not compare (the view may hold delayed
 * removals): the messages it took out of the view leave known[] (they
 * may come back later with a new virtual UID). */
static void forget_gone(struct mix_virtual *v)
{
	const struct mix_snap *s;
	int i, n = 0;

	mix_read_lock();
	s = mix_index_snap(mix_virtual_index(v));
	for (i = 0; i < nknown; i++) {
		uint32_t mb, ru;
		if (mix_virtual_lookup(s, known[i].vuid, &mb, &ru) == 1 &&
		    mb == known[i].mbid && ru == known[i].ruid)
			known[n++] = known[i];
	}
	mix_read_unlock();
	nknown = n;
}

/* ---- crashes ------------------------------------------------------------- */

/* A child opens backends and the virtual mailbox, commits to the
 * backends and syncs, acknowledging each sync with 'x'; it is killed
 * after a random number of them or _exits without closing. */
static __attribute__((unused)) void
crash_cycle(struct mix_engine **ep, struct mix_index **b,
	    struct mix_virtual **vp, uint64_t *rng)
{
	uint64_t crng = tu_rand(rng);
	int rounds = 1 + (int)tu_rand_below(rng, 6);
	int kill_after = (int)tu_rand_below(rng, (uint32_t)rounds + 2);
	int fd[2], st, acked = 0, killed = 0;
	char c;
	pid_t pid;

	if (*vp)
		mix_virtual_close(vp);
	close_backends(b);
	mix_engine_free(ep);
	if (pipe(fd) < 0)
		BAIL("pipe");
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		struct mix_engine *ce;
		struct mix_index *cb[NB];
		struct mix_virtual *cv;
		close(fd[0]);
		if (mix_engine_create(NULL, &ce) < 0)
			_exit(3);
		open_backends(ce, cb);
		cv = open_virtual(ce, cb);
		for (int i = 0; i < rounds; i++) {
			for (int k = (int)tu_rand_below(&crng, 4); k >= 0; k--)
				backend_op(cb[tu_rand_below(&crng, NB)], &crng);
			if (mix_virtual_sync(cv, tu_rand_below(&crng, 2) ?
					     MIX_VIRTUAL_SYNC_EXPUNGE : 0,
					     NULL) < 0 ||
			    write(fd[1], "x", 1) != 1)
				_exit(4);
		}
		_exit(0);
	}
	close(fd[1]);
	while (acked < kill_after && read(fd[0], &c, 1) == 1)
		acked++;
	if (acked == kill_after && kill_after < rounds) {
		kill(pid, SIGKILL);
		killed = 1;
	}
	waitpid(pid, &st, 0);
	while (read(fd[0], &c, 1) == 1)
		acked++;
	close(fd[0]);
	snprintf(lastop, sizeof(lastop), "crash: child of %d syncs %s after "
		 "%d", rounds, killed ? "SIGKILLed" : "exited", acked);
	if (!killed && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		fail("the crash child exited with status %d", st);
	if (mix_engine_create(NULL, ep) < 0)
		BAIL("engine");
	/* the child's syncs may have taken messages out of the view and
	 * back in (new virtual UIDs): only "never reused" holds across it */
	nknown = 0;
	open_backends(*ep, b);
	*vp = open_virtual(*ep, b);
}

/* Set when the backend being cut syncs a file or directory after its
 * copy was taken: a power cut would keep that, the copy does not. */
static const char *cut_dir;
static long cuts_skipped, vcuts, bcuts;
static int cut_synced;

static void cut_hook(void *ctx, const struct mix_io_event *ev)
{
	(void)ctx;
	if ((ev->kind == MIX_IO_EV_FDATASYNC || ev->kind == MIX_IO_EV_FSYNC ||
	     ev->kind == MIX_IO_EV_FSYNC_DIR || ev->kind == MIX_IO_EV_RENAME ||
	     ev->kind == MIX_IO_EV_UNLINK) &&
	    strncmp(ev->path, cut_dir, strlen(cut_dir)) == 0)
		__atomic_store_n(&cut_synced, 1, __ATOMIC_SEQ_CST);
}

/* A power cut of one backend: after a SYNC commit its files are copied
 * (what the disk holds), then it takes NONE commits that the virtual
 * mailbox syncs and mirrors, and then the copy comes back as the
 * backend, with a lock file of another boot (docs/format.md §2.7: the
 * last writer may have lost writes, so the reopen skips UIDs).  The
 * virtual mailbox must follow the backend as it is now: the lost
 * messages out, reverted flags mirrored, lost expunges undone. */
static void backend_powercut(struct mix_engine *e, struct mix_index **b,
			     struct mix_virtual **vp, uint64_t *rng)
{
	int k = (int)tu_rand_below(rng, NB), fd;
	struct mix_txn *t;
	char copy[4200], bd[4200], lock[4300];

	snprintf(copy, sizeof(copy), "%s", dir_of("cut-copy"));
	snprintf(bd, sizeof(bd), "%s", dir_of(bnames[k]));
	snprintf(lastop, sizeof(lastop), "power cut of backend %s",
		 bnames[k]);
	if (mix_txn_begin(b[k], &t) < 0 ||
	    mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL) < 0)
		fail("SYNC commit to %s: %s", bnames[k], mix_last_error());
	tu_rmdir_r(copy);
	copy_dir(bd, copy);
	cut_dir = bd;
	cut_synced = 0;
	mix_io_trace_set(cut_hook, NULL);
	for (int n = 1 + (int)tu_rand_below(rng, 4); n > 0; n--)
		backend_op_dur(b[k], rng, MIX_DURABILITY_NONE);
	mix_io_trace_set(NULL, NULL);
	vsync(*vp, tu_rand_below(rng, 2) ? MIX_VIRTUAL_SYNC_EXPUNGE : 0);
	forget_gone(*vp);
	if (__atomic_load_n(&cut_synced, __ATOMIC_SEQ_CST)) {
		/* a NONE commit synced (a UID_FLOOR raise, a rotation): no
		 * faithful cut from this copy */
		cuts_skipped++;
		return;
	}
	mix_virtual_close(vp);
	if (mix_index_close(&b[k]) < 0)
		fail("close %s: %s", bnames[k], mix_last_error());
	tu_rmdir_r(bd);
	copy_dir(copy, bd);
	snprintf(lock, sizeof(lock), "%s/mix.index.lock", bd);
	if ((fd = open(lock, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    write(fd, "1 another-boot\n", 15) != 15)
		BAIL("lock file %s", lock);
	close(fd);
	if (mix_index_open(e, bd, 0, &b[k]) < 0)
		BAIL("reopen %s after the cut: %s", bnames[k],
		     mix_last_error());
	note_open(b[k]);
	bcuts++;
	*vp = open_virtual(e, b);
}

/* A power cut of the virtual index: a child opens it and the backends,
 * copies the virtual index's files once its open is done (what the disk
 * may hold), then commits to the backends and syncs (NONE commits to
 * the virtual index), reporting the highest virtual UID it saw after
 * each sync, and exits without closing.  The parent puts the copy back
 * with a lock file of another boot, unless the virtual index synced a
 * file after the copy (then the copy would lack what the disk kept):
 * the virtual UIDs the child's syncs handed out, lost with them, must
 * never come back for other messages. */
static __attribute__((unused)) void
virtual_powercut(struct mix_engine **ep, struct mix_index **b,
		 struct mix_virtual **vp, uint64_t *rng)
{
	uint64_t crng = tu_rand(rng);
	int fd[2], st, n, lfd;
	uint32_t top = 0, x;
	char copy[4200], vd[4200], lock[4300], flag = 0;
	pid_t pid;

	snprintf(copy, sizeof(copy), "%s", dir_of("vcut-copy"));
	snprintf(vd, sizeof(vd), "%s", dir_of("virtual"));
	snprintf(lastop, sizeof(lastop), "power cut of the virtual index");
	mix_virtual_close(vp);
	close_backends(b);
	mix_engine_free(ep);
	tu_rmdir_r(copy);
	if (pipe(fd) < 0)
		BAIL("pipe");
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		struct mix_engine *ce;
		struct mix_index *cb[NB];
		struct mix_virtual *cv;
		close(fd[0]);
		if (mix_engine_create(NULL, &ce) < 0)
			_exit(3);
		open_backends(ce, cb);
		cv = open_virtual(ce, cb);
		if (mix_virtual_sync(cv, 0, NULL) < 0)
			_exit(4);
		copy_dir(vd, copy);
		cut_dir = vd;
		cut_synced = 0;
		mix_io_trace_set(cut_hook, NULL);
		for (int i = 1 + (int)tu_rand_below(&crng, 4); i > 0; i--) {
			for (int k = (int)tu_rand_below(&crng, 3); k >= 0; k--)
				backend_op(cb[tu_rand_below(&crng, NB)], &crng);
			if (mix_virtual_sync(cv, MIX_VIRTUAL_SYNC_EXPUNGE,
					     NULL) < 0)
				_exit(4);
			mix_read_lock();
			x = mix_snap_next_uid(mix_index_snap(
					mix_virtual_index(cv))) - 1;
			mix_read_unlock();
			{
				char msg[5] = { 'v' };
				memcpy(msg + 1, &x, 4);
				if (write(fd[1], msg, 5) != 5)
					_exit(4);
			}
		}
		flag = __atomic_load_n(&cut_synced, __ATOMIC_SEQ_CST) ? 'U'
								       : 'F';
		if (write(fd[1], &flag, 1) != 1)
			_exit(4);
		_exit(0);
	}
	close(fd[1]);
	for (;;) {
		char buf[4];
		n = (int)read(fd[0], buf, 1);
		if (n != 1)
			break;
		if (buf[0] != 'v') {       /* 'U' or 'F': the end */
			flag = buf[0];
			break;
		}
		if (read(fd[0], buf, 4) != 4)
			break;
		memcpy(&x, buf, 4);
		if (x > top)
			top = x;
	}
	close(fd[0]);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("the virtual cut child exited with wait status %d", st);
	if (flag == 'F') {
		tu_rmdir_r(vd);
		copy_dir(copy, vd);
		snprintf(lock, sizeof(lock), "%s/mix.index.lock", vd);
		if ((lfd = open(lock, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
		    write(lfd, "1 another-boot\n", 15) != 15)
			BAIL("lock file %s", lock);
		close(lfd);
		vcuts++;
	} else {
		cuts_skipped++;
	}
	/* the child's virtual UIDs were handed out: none may come back */
	if (top > max_vuid)
		max_vuid = top;
	nknown = 0;
	if (mix_engine_create(NULL, ep) < 0)
		BAIL("engine");
	open_backends(*ep, b);
	*vp = open_virtual(*ep, b);
}

/* Backend k re-created (MIX_OPEN_RECREATE: a new, empty index) while
 * the virtual mailbox is closed; its old messages must all go. */
static void backend_recreate(struct mix_engine *e, struct mix_index **b,
			     struct mix_virtual **vp, uint64_t *rng)
{
	int k = (int)tu_rand_below(rng, NB), i, n = 0;
	uint32_t mbid = 0;

	snprintf(lastop, sizeof(lastop), "recreate backend %s", bnames[k]);
	mix_virtual_mailbox_id(*vp, bnames[k], &mbid);
	mix_virtual_close(vp);
	if (mix_index_close(&b[k]) < 0 ||
	    mix_index_open(e, dir_of(bnames[k]), MIX_OPEN_RECREATE, &b[k]) < 0)
		BAIL("recreate %s: %s", bnames[k], mix_last_error());
	for (int j = (int)tu_rand_below(rng, 4); j >= 0; j--)
		backend_op(b[k], rng);
	for (i = 0; i < nknown; i++)   /* (mailbox, uid) pairs start again */
		if (known[i].mbid != mbid)
			known[n++] = known[i];
	nknown = n;
	*vp = open_virtual(e, b);
}

/* A restart during which backend k cannot be opened: the virtual
 * mailbox is opened with it NULL and synced (its messages kept as they
 * were), then the backend comes back (set_backends).  Messages of it
 * that stopped matching before the restart (delayed removal, not
 * stored) must still go at the next sync with expunges. */
static void restart_unavailable(struct mix_engine *e, struct mix_index **b,
				struct mix_virtual **vp, uint64_t *rng)
{
	struct mix_virtual_backend vb[NB];
	int k = (int)tu_rand_below(rng, NB);
	uint32_t n = 0;

	if (!in_def[k])
		return;
	snprintf(lastop, sizeof(lastop), "restart with %s unavailable",
		 bnames[k]);
	for (int j = (int)tu_rand_below(rng, 4); j >= 0; j--)
		backend_op(b[k], rng);
	{                       /* some of k's messages stop matching */
		struct mix_uid_range r = some_uids(b[k], rng);
		struct mix_txn *t;
		r.last = r.first + 5;
		if (tu_rand_below(rng, 2))
			r.first = 1, r.last = UINT32_MAX;
		if (mix_txn_begin(b[k], &t) < 0 ||
		    mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_SEEN) < 0 ||
		    mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
			fail("seen on %s: %s", bnames[k], mix_last_error());
	}
	vsync(*vp, 0);          /* delayed removals of k */
	forget_gone(*vp);
	mix_virtual_close(vp);
	unavailable = k;
	*vp = open_virtual(e, b);
	unavailable = -1;
	vsync(*vp, tu_rand_below(rng, 2) ? MIX_VIRTUAL_SYNC_EXPUNGE : 0);
	forget_gone(*vp);
	for (int i = 0; i < NB; i++)
		if (in_def[i]) {
			vb[n].name = bnames[i];
			vb[n++].index = b[i];
		}
	if (mix_virtual_set_backends(*vp, vb, n) < 0)
		fail("set_backends: %s", mix_last_error());
}

/* Backend k leaves the definition (its messages go at the next sync),
 * or comes back (a new mailbox id). */
static void backend_toggle(struct mix_virtual *v, struct mix_index **b,
			   uint64_t *rng)
{
	struct mix_virtual_backend vb[NB];
	int k = (int)tu_rand_below(rng, NB);
	uint32_t n = 0;

	in_def[k] = !in_def[k];
	snprintf(lastop, sizeof(lastop), "backend %s %s the definition",
		 bnames[k], in_def[k] ? "back in" : "out of");
	for (int i = 0; i < NB; i++)
		if (in_def[i]) {
			vb[n].name = bnames[i];
			vb[n++].index = b[i];
		}
	if (mix_virtual_set_backends(v, vb, n) < 0)
		fail("set_backends: %s", mix_last_error());
}

/* ---- the test -------------------------------------------------------------- */

static void lifecycle(uint64_t seed, long steps)
{
	struct mix_engine *e;
	struct mix_index *b[NB] = { 0 };
	struct mix_virtual *v;
	uint64_t rng = seed;
	long crashes = 0, reopens = 0, closed_ops = 0;

	base = tu_tmpdir("virtual-life");
	if (mix_engine_create(NULL, &e) < 0)
		BAIL("engine: %s", mix_last_error());
	open_backends(e, b);
	v = open_virtual(e, b);
	for (step = 1; step <= steps && nfail == 0; step++) {
		uint32_t ev = tu_rand_below(&rng, 100);
		long lw = lost_warnings, os = opens_skipped;
		if (ev < 55) {
			int k = (int)tu_rand_below(&rng, NB);
			snprintf(lastop, sizeof(lastop), "commit to %s",
				 bnames[k]);
			if (backend_op(b[k], &rng) < 0)
				fail("backend commit: %s", mix_last_error());
			if (tu_rand_below(&rng, 3) == 0) {
				vsync(v, 0);       /* delayed removal */
				forget_gone(v);
			}
		} else if (ev < 75) {
			snprintf(lastop, sizeof(lastop), "changes while the "
				 "virtual mailbox is closed");
			mix_virtual_close(&v);
			for (int k = (int)tu_rand_below(&rng, 6); k >= 0; k--)
				backend_op(b[tu_rand_below(&rng, NB)], &rng);
			if (tu_rand_below(&rng, 2)) {  /* backends reopen too */
				close_backends(b);
				open_backends(e, b);
			}
			v = open_virtual(e, b);
			closed_ops++;
		} else if (ev < 80) {
			backend_powercut(e, b, &v, &rng);
		} else if (ev < 82) {
			backend_recreate(e, b, &v, &rng);
		} else if (ev < 84) {
			backend_toggle(v, b, &rng);
		} else if (ev < 87) {
			restart_unavailable(e, b, &v, &rng);
		} else if (ev < 89) {
#ifndef FORK_SKIP
			virtual_powercut(&e, b, &v, &rng);
#endif
		} else if (ev < 91) {
			snprintf(lastop, sizeof(lastop), "reopen");
			mix_virtual_close(&v);
			v = open_virtual(e, b);
			reopens++;
		} else {
#ifndef FORK_SKIP
			crash_cycle(&e, b, &v, &rng);
			crashes++;
#endif
		}
		if (vsync(v, MIX_VIRTUAL_SYNC_EXPUNGE) == 0)
			compare(v, b);
		if (lost_warnings != lw && opens_skipped == os)
			fail("a sync took a backend for one that lost writes, "
			     "though no backend open skipped UIDs (%ld "
			     "warnings)", lost_warnings - lw);
	}
	ok(nfail == 0, "virtual lifecycle: %ld steps (%ld rounds of changes "
	   "while closed, %ld reopens, %ld crashes, %ld backend and %ld "
	   "virtual power cuts) leave the view equal to the backends' unseen "
	   "messages (%d), UIDs kept and never reused", step - 1, closed_ops,
	   reopens, crashes, bcuts, vcuts, nknown);
	diag("%ld cuts not simulated (the index synced after the copy of its "
	     "files); %ld backend opens skipped UIDs", cuts_skipped,
	     opens_skipped);
	mix_virtual_close(&v);
	close_backends(b);
	mix_engine_free(&e);
	tu_rmdir_r(base);
	free(base);
	free(ever);
}

int main(void)
{
	uint64_t seed = tu_seed();
	long steps = (long)(300 * tu_scale());

#ifdef FORK_SKIP
	diag("crash children skipped (fork among threads under a sanitizer)");
#endif
	lifecycle(seed, steps);
	return tap_done();
}
