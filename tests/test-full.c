/*
 * A full disk across lifecycles (docs/reliability.md "A full disk";
 * docs/api.md, mix_txn_commit's -ENOSPC; engine/index.c writer_setup).
 *
 * A real full filesystem, not an injected error: a small tmpfs mounted
 * for the test (root only; the test is skipped where mount is refused)
 * holds one index and a filler file that the model grows until the
 * filesystem is full and shrinks to give some or all of the room back.
 * Random sessions, each in a child process of this single-threaded
 * parent, apply random appends, flag changes and expunges (SYNC and
 * NONE) to the engine and to a model in shared memory, fill and free
 * the disk between them, and end with a close or a crash (_exit without
 * closing, as kill -9 leaves it).  What must hold, at every step:
 *
 *  - a commit is acknowledged (0) or fails with -ENOSPC / -EDQUOT, never
 *    another error: a full disk never poisons the index, and a commit
 *    after room came back works without a reopen;
 *  - a failed commit is not seen, an acknowledged one is, by the
 *    session and by every later open (the snapshot is compared with the
 *    model after every commit and at every open);
 *  - a read-only open works on a full disk;
 *  - a writable open works on a full disk whatever the last session
 *    left (a crash whose log the recovery would checkpoint included),
 *    but for the one case that must write a new name first: a rotation
 *    cut short (no active log, or a next log to adopt), counted apart;
 *  - close returns 0 or the final checkpoint's -ENOSPC, and loses
 *    nothing either way;
 *  - modseqs and UIDs only go up, across every session.
 *
 * At the end the room comes back: the index opens, commits, closes with
 * 0, and mixctl check agrees.  MIX_SEED replays a run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

#define FS_SIZE   (1024 * 1024)   /* the tmpfs: a few rotations' worth */
#define ROTATE    (16 * 1024)     /* engine config: rotate often */
#define MAX_MSGS  600
#define SESSIONS  200
#define OPS       60

/* The model, in memory shared with the children. */
struct model {
	uint32_t n;                   /* messages */
	uint32_t uid[MAX_MSGS];       /* ascending */
	uint8_t flags[MAX_MSGS];
	uint32_t max_uid;             /* highest UID ever acknowledged */
	uint64_t max_modseq;          /* highest modseq ever acknowledged */
	/* what the sessions saw */
	unsigned acked, enospc, full_opens, cut_rotation_opens;
	unsigned close_enospc, crashes, ro_full_opens;
	unsigned fails;
	unsigned warnings;
	char first_fail[1024];
	char first_warning[1024];
};

static struct model *m;
static char *mnt, *dir, *filler;
static uint64_t rng;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (m->fails++ == 0) {
		va_start(ap, fmt);
		vsnprintf(m->first_fail, sizeof(m->first_fail), fmt, ap);
		va_end(ap);
	}
}

static void on_warning(void *ctx, const char *msg)
{
	(void)ctx;
	if (m->warnings++ == 0)
		snprintf(m->first_warning, sizeof(m->first_warning), "%s",
			 msg);
}

/* ---- the disk ----------------------------------------------------------- */

/* Grow the filler until the filesystem is full. */
static void disk_fill(void)
{
	static char buf[4096];
	int fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0)
		return;
	while (write(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

/* Give back about `bytes` (all of it when 0). */
static void disk_free(uint64_t bytes)
{
	struct stat st;
	if (bytes == 0 || stat(filler, &st) < 0 ||
	    (uint64_t)st.st_size <= bytes) {
		unlink(filler);
		return;
	}
	if (truncate(filler, st.st_size - (off_t)bytes) < 0)
		unlink(filler);
}

static int disk_full(void)
{
	struct stat st;
	return stat(filler, &st) == 0;
}

/* ---- the model ---------------------------------------------------------- */

/* The engine's newest snapshot against the model: "" when they agree,
 * else what differs into why. */
static int state_check(struct mix_index *idx, char *why, size_t size)
{
	const struct mix_snap *s;
	struct mix_record rec;
	int bad = 0;

	mix_read_lock();
	s = mix_index_snap(idx);
	if (mix_snap_messages_count(s) != m->n) {
		snprintf(why, size, "%u messages, the model has %u",
			 mix_snap_messages_count(s), m->n);
		bad = 1;
	}
	for (uint32_t i = 0; !bad && i < m->n; i++) {
		if (!mix_snap_lookup_seq(s, i + 1, &rec) ||
		    rec.uid != m->uid[i] ||
		    (rec.flags & ~MIX_FLAG_RECENT) != m->flags[i]) {
			snprintf(why, size, "seq %u: uid %u flags 0x%x, the "
				 "model has uid %u flags 0x%x", i + 1,
				 rec.uid, rec.flags, m->uid[i], m->flags[i]);
			bad = 1;
		}
	}
	if (!bad && mix_snap_highest_modseq(s) < m->max_modseq) {
		snprintf(why, size, "HIGHESTMODSEQ %" PRIu64 " below the "
			 "acknowledged %" PRIu64, mix_snap_highest_modseq(s),
			 m->max_modseq);
		bad = 1;
	}
	if (!bad && mix_snap_next_uid(s) <= m->max_uid) {
		snprintf(why, size, "UIDNEXT %u, but UID %u was given out",
			 mix_snap_next_uid(s), m->max_uid);
		bad = 1;
	}
	mix_read_unlock();
	return bad;
}

/* ---- a session (in a child) --------------------------------------------- */

static struct mix_engine *engine_new(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = ROTATE;
	cfg.warning = on_warning;
	if (mix_engine_create(&cfg, &e) < 0)
		_exit(90);
	return e;
}

static int dir_has(const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* One random commit.  Returns the commit's return. */
static int random_commit(struct mix_index *idx, int step)
{
	static const enum mix_modify mods[3] = { MIX_MODIFY_ADD,
		MIX_MODIFY_REMOVE, MIX_MODIFY_REPLACE };
	enum mix_durability d = tu_rand_below(&rng, 2) ?
				MIX_DURABILITY_SYNC : MIX_DURABILITY_NONE;
	uint32_t kind = tu_rand_below(&rng, 10), k, i, j;
	struct mix_commit_result res;
	struct mix_uid_range r;
	uint8_t fl[8], f = 0;
	enum mix_modify mod = MIX_MODIFY_ADD;
	struct mix_txn *t;
	int ret;

	if (m->n + 8 > MAX_MSGS)
		kind = 9;
	if (m->n == 0)
		kind = 0;
	if ((ret = mix_txn_begin(idx, &t)) < 0) {
		fail("step %d: begin: %s", step, mix_last_error());
		return ret;
	}
	if (kind < 5) {                         /* append 1..8 */
		k = 1 + tu_rand_below(&rng, 8);
		for (i = 0; i < k; i++) {
			fl[i] = (uint8_t)(tu_rand_below(&rng, 16) &
					  (MIX_FLAG_SEEN | MIX_FLAG_FLAGGED |
					   MIX_FLAG_DELETED));
			if ((ret = mix_txn_append(t, fl[i], NULL, NULL)) < 0)
				break;
		}
	} else {                                /* a range of the model */
		i = tu_rand_below(&rng, m->n);
		j = i + tu_rand_below(&rng, m->n - i < 5 ? m->n - i : 5);
		r.first = m->uid[i];
		r.last = m->uid[j];
		k = 0;
		if (kind < 9) {
			mod = mods[tu_rand_below(&rng, 3)];
			f = (uint8_t)(tu_rand_below(&rng, 16) &
				      (MIX_FLAG_SEEN | MIX_FLAG_ANSWERED |
				       MIX_FLAG_DELETED));
			ret = mix_txn_flags(t, &r, 1, mod, f);
		} else {
			ret = mix_txn_expunge(t, &r, 1);
		}
	}
	if (ret < 0) {
		fail("step %d: building: %s", step, mix_last_error());
		mix_txn_abort(&t);
		return ret;
	}
	memset(&res, 0, sizeof(res));
	ret = mix_txn_commit(&t, d, &res);
	if (ret == -ENOSPC || ret == -EDQUOT) {
		m->enospc++;
		return ret;
	}
	if (ret < 0) {
		fail("step %d: commit (%s) returned %d (%s: %s); a full disk "
		     "must give -ENOSPC and nothing else", step,
		     d == MIX_DURABILITY_SYNC ? "SYNC" : "NONE", ret,
		     mix_strerror(ret), mix_last_error());
		return ret;
	}
	m->acked++;
	if (!res.no_changes) {
		if (res.modseq <= m->max_modseq)
			fail("step %d: modseq %" PRIu64 " not above %" PRIu64,
			     step, res.modseq, m->max_modseq);
		m->max_modseq = res.modseq;
	}
	if (kind < 5) {
		if (res.first_uid <= m->max_uid ||
		    res.last_uid != res.first_uid + k - 1)
			fail("step %d: appended UIDs %u..%u, %u given out "
			     "before", step, res.first_uid, res.last_uid,
			     m->max_uid);
		for (i = 0; i < k; i++) {
			m->uid[m->n] = res.first_uid + i;
			m->flags[m->n++] = fl[i];
		}
		m->max_uid = res.last_uid;
	} else {
		uint32_t out = 0;
		for (i = 0; i < m->n; i++) {
			if (m->uid[i] < r.first || m->uid[i] > r.last) {
				m->uid[out] = m->uid[i];
				m->flags[out++] = m->flags[i];
				continue;
			}
			if (kind == 9)
				continue;         /* expunged */
			m->uid[out] = m->uid[i];
			m->flags[out++] = mod == MIX_MODIFY_ADD ?
					  m->flags[i] | f :
					  mod == MIX_MODIFY_REMOVE ?
					  m->flags[i] & ~f : f;
		}
		m->n = out;
	}
	mix_commit_result_free(&res);
	return 0;
}

/* A read-only open of whatever the last session left, on a full disk. */
static void ro_check(struct mix_engine *e, int session)
{
	struct mix_index *idx;
	char why[512];
	int full = disk_full(), ret;

	if (full)
		disk_fill();
	ret = mix_index_open(e, dir, MIX_OPEN_READONLY, &idx);
	if (ret < 0) {
		fail("session %d: read-only open%s: %s", session,
		     full ? " (disk full)" : "", mix_last_error());
		return;
	}
	if (full)
		m->ro_full_opens++;
	if (state_check(idx, why, sizeof(why)))
		fail("session %d: read-only open: %s", session, why);
	mix_index_close(&idx);
}

static int session(int s)
{
	struct mix_engine *e = engine_new();
	struct mix_index *idx;
	char why[512];
	int full, cut, ret;

	ro_check(e, s);
	full = disk_full();
	if (full)
		disk_fill();   /* what the last session's frees left is gone */
	/* a rotation cut short must write a new name before anything */
	cut = !dir_has("mix.index.log") || dir_has("mix.index.log.newtmp");
	ret = mix_index_open(e, dir, 0, &idx);
	if (ret < 0) {
		if (full && cut && (ret == -ENOSPC || ret == -EDQUOT)) {
			m->cut_rotation_opens++;
			disk_free(0);
			ret = mix_index_open(e, dir, 0, &idx);
		}
		if (ret < 0) {
			fail("session %d: writable open%s: %d (%s)", s,
			     full ? " (disk full)" : "", ret,
			     mix_last_error());
			_exit(0);
		}
	} else if (full) {
		m->full_opens++;
	}
	if (state_check(idx, why, sizeof(why))) {
		fail("session %d: after the open: %s", s, why);
		_exit(0);
	}
	for (int i = 0; i < OPS; i++) {
		uint32_t op = tu_rand_below(&rng, 20);
		if (op == 0)
			disk_fill();
		else if (op == 1)
			disk_free(4096 * (1 + tu_rand_below(&rng, 16)));
		else if (op == 2)
			disk_free(0);
		else if ((ret = random_commit(idx, i)) < 0 &&
			 ret != -ENOSPC && ret != -EDQUOT)
			_exit(0);   /* failed; the next session goes on */
		if (state_check(idx, why, sizeof(why))) {
			fail("session %d step %d: %s", s, i, why);
			_exit(0);
		}
	}
	if (tu_rand_below(&rng, 2)) {
		m->crashes++;
		_exit(0);   /* as after kill -9 */
	}
	ret = mix_index_close(&idx);
	if (ret == -ENOSPC || ret == -EDQUOT)
		m->close_enospc++;
	else if (ret < 0)
		fail("session %d: close: %d (%s)", s, ret, mix_last_error());
	if (mix_engine_free(&e) < 0)
		fail("session %d: engine free: %s", s, mix_last_error());
	_exit(0);
}

static void run_child(int s)
{
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		rng ^= (uint64_t)s * 0x9e3779b97f4a7c15ull;
		session(s);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		fail("session %d: child status 0x%x", s, status);
}

/* ---- the end: room again ------------------------------------------------ */

static int final_child(void)
{
	struct mix_engine *e = engine_new();
	struct mix_index *idx;
	char why[512];
	int ret;

	if ((ret = mix_index_open(e, dir, 0, &idx)) < 0) {
		fail("final open: %s", mix_last_error());
		return 1;
	}
	if (state_check(idx, why, sizeof(why))) {
		fail("final open: %s", why);
		return 1;
	}
	if ((ret = random_commit(idx, -1)) < 0) {
		fail("final commit with room: %d (%s)", ret, mix_last_error());
		return 1;
	}
	if ((ret = mix_index_close(&idx)) < 0) {
		fail("final close with room: %s", mix_last_error());
		return 1;
	}
	mix_engine_free(&e);
	return 0;
}

static const char *mixctl_path(char *buf, size_t size)
{
	const char *b = getenv("MIX_BUILD");
	snprintf(buf, size, "%s/mixctl", b ? b : "build");
	return access(buf, X_OK) == 0 ? buf : NULL;
}

/* The parent's exit, a Bail out! included: never leave the mount. */
static pid_t parent_pid;

static void unmount_at_exit(void)
{
	if (getpid() == parent_pid && mnt != NULL) {
		umount2(mnt, MNT_DETACH);
		rmdir(mnt);
	}
}

int main(void)
{
	char opts[64], mc[4096];
	int status;
	pid_t pid;

	rng = tu_seed();
	mnt = tu_tmpdir("full");
	snprintf(opts, sizeof(opts), "size=%d,mode=0700", FS_SIZE);
	if (mount("mixfull", mnt, "tmpfs", 0, opts) < 0) {
		printf("1..0 # SKIP cannot mount a small tmpfs (%s): the "
		       "test needs root\n", strerror(errno));
		rmdir(mnt);
		return 0;
	}
	parent_pid = getpid();
	atexit(unmount_at_exit);
	if (asprintf(&dir, "%s/box", mnt) < 0 ||
	    asprintf(&filler, "%s/filler", mnt) < 0)
		BAIL("out of memory");
	if (mkdir(dir, 0700) < 0)
		BAIL("mkdir %s: %s", dir, strerror(errno));
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		BAIL("mmap");
	memset(m, 0, sizeof(*m));

	/* create the index while there is room */
	fflush(stdout);
	if ((pid = fork()) == 0) {
		struct mix_engine *e = engine_new();
		struct mix_index *idx;
		if (mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0) {
			printf("# create %s: %s\n", dir, mix_last_error());
			fflush(stdout);
			_exit(1);
		}
		mix_index_close(&idx);
		mix_engine_free(&e);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
		BAIL("creating the index failed");

	for (int s = 0; s < SESSIONS; s++) {
		run_child(s);
		if (m->fails)
			break;
	}
	diag("%u commits acknowledged, %u refused with ENOSPC; %u writable "
	     "and %u read-only opens on a full disk, %u of a rotation cut "
	     "short; %u crashes, %u closes with ENOSPC", m->acked, m->enospc,
	     m->full_opens, m->ro_full_opens, m->cut_rotation_opens,
	     m->crashes, m->close_enospc);
	if (m->warnings)
		diag("%u warnings, the first: %s", m->warnings,
		     m->first_warning);
	ok(m->fails == 0, "every commit on a full disk is acknowledged or "
	   "refused with -ENOSPC; every open, read-only or writable, works "
	   "on it; nothing acknowledged is lost and nothing refused is "
	   "seen, across closes and crashes");
	if (m->fails)
		diag("%u failures, the first: %s", m->fails, m->first_fail);
	ok(m->enospc > 0 && m->full_opens > 0 && m->ro_full_opens > 0,
	   "the disk was full for commits (%u), writable opens (%u) and "
	   "read-only opens (%u)", m->enospc, m->full_opens,
	   m->ro_full_opens);

	disk_free(0);
	fflush(stdout);
	if ((pid = fork()) == 0)
		_exit(final_child());
	ok(pid > 0 && waitpid(pid, &status, 0) == pid && status == 0,
	   "with room again the index opens as the model says, commits and "
	   "closes cleanly%s%s", m->fails ? ": " : "",
	   m->fails ? m->first_fail : "");
	ok(mixctl_path(mc, sizeof(mc)) == NULL || tu_mixctl_ok(mc, dir),
	   "mixctl check agrees");

	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	free(dir);
	free(filler);
	free(mnt);
	mnt = NULL;
	return tap_done();
}
