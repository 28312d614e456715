/*
 * Damage to whole index directories (issue 10, "Permanent evidence";
 * docs/reliability.md, docs/format.md §2.1, §3, §3.4).
 *
 * tests/test-fuzz-regress.c corrupts single files in memory; this test
 * damages whole directories and opens them through the public API only.
 *
 * A child process builds a base directory: it creates an index, registers
 * an extension and commits a known sequence of transactions with
 * MIX_DURABILITY_SYNC (appends with flags, keywords and extension data,
 * flag and keyword changes, expunges, extension data set), with
 * log_rotate_size 4096 so that one rotation happens and both
 * mix.index.log and mix.index.log.2 exist; then one more append with
 * MIX_DURABILITY_NONE (the "sentinel": not acknowledged as durable, so
 * losing it is allowed, and its boundary carries the PREV_SYNCED proof of
 * format.md §3.4 for the SYNC transactions before it); then it dies
 * without closing (_exit).  A reference model of the sequence gives the
 * expected state after every commit.
 *
 * For each damage (kinds below) a copy of the base directory is damaged
 * and opened read-only, then writable, then (when the writable open
 * succeeded, after its close) read-only again, in a child process (its
 * own engine; the parent never starts an engine thread, so it forks
 * safely) under alarm(10) per step.  The rule for every open: it
 * succeeds and the state holds every SYNC-acknowledged commit whole
 * (exactly the model's final state, with or without the sentinel), or
 * it fails with MIX_ECORRUPT or MIX_EVERSION and mix_last_error() names
 * a file of the directory ("mix.index").  After a flip, an open that
 * drops the sentinel (a torn tail whose bytes are still there) must say
 * so in mix_index_open_info's dropped_bytes.  A child killed by a signal
 * (a crash, or SIGALRM: a hang) or exiting with a sanitizer's status is
 * a failure.
 *
 * One allowance, for truncations only: a log cut at or after its header
 * and after mix.index's checkpoint looks exactly like a log whose writer
 * crashed while appending (no byte after the cut is left to prove
 * otherwise), so an open that loses exactly the transactions the cut
 * removed — and nothing before the cut — is counted apart ("lost to the
 * cut", printed per kind) and not as a failure.  MIX_DAMAGE_STRICT=1
 * counts it as a failure too.  Byte flips get no allowance: a flipped
 * byte inside an acknowledged transaction followed by later transactions
 * must be refused, not cut off as a torn tail.
 *
 * Environment: MIX_SEED (the random sample of offsets), MIX_DAMAGE_FULL=1
 * (every offset instead of a sample), MIX_DAMAGE_STRICT=1 (above),
 * MIX_DAMAGE_MAX_FAIL (failures printed in full per kind, default 3),
 * MIX_DAMAGE_ONLY=text (only the kinds whose name contains it),
 * MIX_DAMAGE_VERBOSE=1 (every open's answer).  The scratch directory is
 * under $TMPDIR, else /dev/shm (the writable opens fsync), else /tmp.
 *
 * Kinds: every byte of mix.index.log after its header and a sample of
 * mix.index.log.2 and mix.index flipped (xor 0xff); each log cut at
 * 4-byte offsets; the logs swapped; a log, and mix.index, from an index
 * created a second later or earlier; mix.index's log_file_head_offset
 * past the end of its log and its log_file_seq +1 and -1 (checksum
 * fixed); each file a FIFO, a symlink to a copy of itself, a dangling
 * symlink; mix.index.log a sparse file of 4 GiB - 4 bytes (skipped where
 * the file system keeps no holes; the child's peak RSS must stay below
 * 512 MiB); an empty directory (MIX_ENOTFOUND expected) and one with only
 * the logs.  Without MIX_DAMAGE_FULL the offsets are sampled so that the
 * run stays within seconds under ASan.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "crc32c.h"
#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

#define MAX_MSG 256
#define MAX_COMMITS 160
#define OPEN_ALARM 10          /* seconds per step of a child */
#define MAXRSS_LIMIT_KB (512L * 1024)
#define LOG_HDR 48

static const char *const kw_names[4] = { "$Junk", "todo", "work", "later" };
static const char *const ext_name = "x.damage";


/* ---- the reference model ---------------------------------------------- */

struct msg {
	uint32_t uid;
	uint8_t flags;
	uint8_t kw;          /* bit i: kw_names[i] */
	uint64_t ext;
};

struct state {
	uint32_t n;
	struct msg m[MAX_MSG];
};

static struct msg *model_find(struct state *s, uint32_t uid)
{
	uint32_t i;
	for (i = 0; i < s->n; i++)
		if (s->m[i].uid == uid)
			return &s->m[i];
	return NULL;
}

static void model_flags(struct state *s, uint32_t first, uint32_t last,
			enum mix_modify mod, uint8_t flags)
{
	uint32_t i;
	for (i = 0; i < s->n; i++) {
		struct msg *m = &s->m[i];
		if (m->uid < first || m->uid > last)
			continue;
		m->flags = mod == MIX_MODIFY_ADD ? m->flags | flags :
			   mod == MIX_MODIFY_REMOVE ? m->flags & ~flags : flags;
	}
}

static void model_kw_add(struct state *s, uint32_t first, uint32_t last,
			 uint8_t mask)
{
	uint32_t i;
	for (i = 0; i < s->n; i++)
		if (s->m[i].uid >= first && s->m[i].uid <= last)
			s->m[i].kw |= mask;
}

static void model_expunge(struct state *s, uint32_t first, uint32_t last)
{
	uint32_t i, j = 0;
	for (i = 0; i < s->n; i++)
		if (s->m[i].uid < first || s->m[i].uid > last)
			s->m[j++] = s->m[i];
	s->n = j;
}

/* ---- what children report (MAP_SHARED) -------------------------------- */

struct commit {
	uint64_t modseq;
	struct state after;     /* the model after this commit */
};

struct base_report {
	uint32_t ncommits;      /* SYNC commits */
	struct commit c[MAX_COMMITS];
	uint32_t sentinel_uid;
	uint64_t sentinel_modseq;
	int rounds;
	int ret;
	char err[512];
};

/* The opens of a damaged directory, in order: read-only, writable, and
 * read-only again after the writable session closed (what its
 * checkpoint and new log left must hold everything too). */
enum { M_RO, M_RW, M_REOPEN, NMODES };
static const char *const mode_names[NMODES] = {
	"read-only open", "writable open",
	"read-only reopen after the writable session" };

enum stage { ST_ENGINE, ST_OPEN, ST_CHECK, ST_CLOSE, ST_DONE };
static const char *const stage_names[] = { "engine create", "open", "check",
					   "close", "done" };

struct probe {
	int mode;               /* M_RO, M_RW, M_REOPEN: where it is */
	int stage;
	int ret[NMODES];
	char err[NMODES][512];
	char diff[NMODES][512];
	int which[NMODES];      /* 0 complete, 1 lost to the cut, 2 other */
	int no_sentinel[NMODES];   /* complete, without the NONE append */
	uint64_t dropped[NMODES];  /* mix_open_info dropped_bytes */
	long maxrss_kb;
	long start_rss_kb;      /* VmRSS when the child started */
};

static struct base_report *br;
static struct probe *pr;

/* ---- reading a snapshot ------------------------------------------------- */

static void snap_read(struct mix_index *idx, struct state *s)
{
	const struct mix_snap *snap;
	struct mix_iter it;
	struct mix_record rec;
	uint32_t kwi[4], ext_id = 0;
	int kwhave[4], i, have_ext;

	memset(s, 0, sizeof(*s));
	mix_read_lock();
	snap = mix_index_snap(idx);
	for (i = 0; i < 4; i++)
		kwhave[i] = mix_snap_keyword_lookup(snap, kw_names[i], &kwi[i]);
	have_ext = mix_snap_ext_lookup(snap, ext_name, &ext_id);
	mix_iter_init(&it, snap, 1);
	while (mix_iter_next(&it, &rec)) {
		struct msg *m;
		size_t sz = 0;
		const void *d;
		if (s->n == MAX_MSG) {
			s->n++;   /* more than the model can hold: differs */
			break;
		}
		m = &s->m[s->n++];
		m->uid = rec.uid;
		m->flags = rec.flags;
		for (i = 0; i < 4; i++)
			if (kwhave[i] && mix_record_has_keyword(&rec, kwi[i]))
				m->kw |= 1u << i;
		d = have_ext ? mix_record_ext(snap, &rec, ext_id, &sz) : NULL;
		if (d && sz == 8)
			memcpy(&m->ext, d, 8);
	}
	mix_read_unlock();
}

/* "" when equal, else how many messages are missing, extra and
 * changed, with the first of each. */
static void state_diff(const struct state *got, const struct state *want,
		       char *buf, size_t size)
{
	uint32_t i = 0, j = 0, nmiss = 0, nextra = 0, nchg = 0;
	uint32_t gn = got->n < MAX_MSG ? got->n : MAX_MSG;
	const struct msg *miss = NULL, *extra = NULL, *cg = NULL, *cw = NULL;
	char chg[160] = "";

	buf[0] = '\0';
	while (i < gn || j < want->n) {
		const struct msg *g = i < gn ? &got->m[i] : NULL,
				 *w = j < want->n ? &want->m[j] : NULL;
		if (g && (!w || g->uid < w->uid)) {
			nextra++, i++;
			extra = extra ? extra : g;
		} else if (w && (!g || w->uid < g->uid)) {
			nmiss++, j++;
			miss = miss ? miss : w;
		} else {
			if ((g->flags != w->flags || g->kw != w->kw ||
			     g->ext != w->ext) && nchg++ == 0)
				cg = g, cw = w;
			i++, j++;
		}
	}
	if (!nmiss && !nextra && !nchg && got->n == want->n)
		return;
	if (cg)
		snprintf(chg, sizeof(chg), " (first UID %u: flags 0x%x "
			 "keywords 0x%x ext %llx, expected 0x%x 0x%x %llx)",
			 cg->uid, cg->flags, cg->kw,
			 (unsigned long long)cg->ext, cw->flags, cw->kw,
			 (unsigned long long)cw->ext);
	snprintf(buf, size, "%u messages, expected %u: %u missing (first UID "
		 "%u), %u extra (first UID %u), %u changed%s", got->n,
		 want->n, nmiss, miss ? miss->uid : 0, nextra,
		 extra ? extra->uid : 0, nchg, chg);
}

/* ---- building the base directory (in a child) ------------------------- */

static int commit_txn(struct mix_txn **t, enum mix_durability d,
		      struct mix_commit_result *res)
{
	int ret = mix_txn_commit(t, d, res);
	if (ret < 0) {
		br->ret = ret;
		snprintf(br->err, sizeof(br->err), "commit: %s",
			 mix_last_error());
	}
	return ret;
}

/* After a SYNC commit: keep its modseq and the model state. */
static void note_commit(uint64_t modseq, const struct state *s)
{
	if (br->ncommits < MAX_COMMITS) {
		br->c[br->ncommits].modseq = modseq;
		br->c[br->ncommits].after = *s;
	}
	br->ncommits++;
}

/* One round of the known sequence: 4 or 5 SYNC transactions. */
static int base_round(struct mix_index *idx, uint32_t ext, int r,
		      struct state *s)
{
	struct mix_commit_result res;
	struct mix_txn *t;
	const char *kw[2] = { kw_names[r % 4], NULL };
	uint8_t fl = (uint8_t)((r % 2 ? MIX_FLAG_SEEN : 0) |
			       (r % 3 == 0 ? MIX_FLAG_FLAGGED : 0));
	uint32_t i, u;
	uint64_t v;
	struct mix_uid_range rg;

	if (mix_txn_begin(idx, &t) < 0)
		return -1;
	for (i = 0; i < 3; i++) {
		v = 0x1000u + (uint64_t)r * 16 + i;
		mix_txn_append(t, fl, i == 0 ? kw : NULL, NULL);
		mix_txn_append_ext(t, i, ext, &v, 8);
	}
	if (commit_txn(&t, MIX_DURABILITY_SYNC, &res) < 0)
		return -1;
	for (u = res.first_uid; u <= res.last_uid && s->n < MAX_MSG; u++) {
		struct msg m = { u, fl, 0, 0 };
		m.kw = u == res.first_uid ? (uint8_t)(1u << (r % 4)) : 0;
		m.ext = 0x1000u + (uint64_t)r * 16 + (u - res.first_uid);
		s->m[s->n++] = m;
	}
	note_commit(res.modseq, s);
	u = res.first_uid;

	/* flags: ANSWERED on the round's messages, DELETED off one */
	rg.first = u;
	rg.last = u + 2;
	if (mix_txn_begin(idx, &t) < 0 ||
	    mix_txn_flags(t, &rg, 1, MIX_MODIFY_ADD, MIX_FLAG_ANSWERED) < 0 ||
	    commit_txn(&t, MIX_DURABILITY_SYNC, &res) < 0)
		return -1;
	model_flags(s, rg.first, rg.last, MIX_MODIFY_ADD, MIX_FLAG_ANSWERED);
	note_commit(res.modseq, s);

	/* a keyword on the first two, and one more flag replaced */
	kw[0] = kw_names[(r + 1) % 4];
	rg.last = u + 1;
	if (mix_txn_begin(idx, &t) < 0 ||
	    mix_txn_keywords(t, &rg, 1, MIX_MODIFY_ADD, kw) < 0)
		return -1;
	rg.first = rg.last = u + 2;
	if (mix_txn_flags(t, &rg, 1, MIX_MODIFY_REPLACE, MIX_FLAG_DRAFT) < 0 ||
	    commit_txn(&t, MIX_DURABILITY_SYNC, &res) < 0)
		return -1;
	model_kw_add(s, u, u + 1, (uint8_t)(1u << ((r + 1) % 4)));
	model_flags(s, u + 2, u + 2, MIX_MODIFY_REPLACE, MIX_FLAG_DRAFT);
	note_commit(res.modseq, s);

	/* extension data set on the round's third message */
	v = 0xabc0000u + (uint64_t)r;
	if (mix_txn_begin(idx, &t) < 0 ||
	    mix_txn_ext_set(t, u + 2, ext, &v, 8) < 0 ||
	    commit_txn(&t, MIX_DURABILITY_SYNC, &res) < 0)
		return -1;
	model_find(s, u + 2)->ext = v;
	note_commit(res.modseq, s);

	/* every other round: expunge the previous round's second message */
	if (r % 2 == 1) {
		rg.first = rg.last = u - 2;
		if (mix_txn_begin(idx, &t) < 0 ||
		    mix_txn_expunge(t, &rg, 1) < 0 ||
		    commit_txn(&t, MIX_DURABILITY_SYNC, &res) < 0)
			return -1;
		model_expunge(s, u - 2, u - 2);
		note_commit(res.modseq, s);
	}
	return 0;
}

/* Rounds until the first rotation, 3 more, the sentinel; then die. */
static int base_child(struct mix_engine *e, const char *dir)
{
	static struct state s;   /* zeroed */
	struct mix_commit_result res;
	struct mix_index *idx;
	struct mix_txn *t;
	struct state got;
	char p[4096], diff[400];
	struct stat st;
	uint32_t ext;
	int r, after = -1, ret;

	if ((ret = mix_index_open(e, dir, MIX_OPEN_CREATE, &idx)) < 0 ||
	    (ret = mix_index_ext_register(idx, ext_name, 8, 8, 0, &ext)) < 0) {
		br->ret = ret;
		snprintf(br->err, sizeof(br->err), "%s", mix_last_error());
		return 1;
	}
	snprintf(p, sizeof(p), "%s/mix.index.log.2", dir);
	for (r = 0; r < 60 && (after < 0 || r < after + 3); r++) {
		if (base_round(idx, ext, r, &s) < 0)
			return 2;
		if (after < 0 && stat(p, &st) == 0)
			after = r;
	}
	br->rounds = r;
	if (after < 0 || br->ncommits > MAX_COMMITS)
		return 3;
	snap_read(idx, &got);
	state_diff(&got, &s, diff, sizeof(diff));
	if (diff[0]) {
		snprintf(br->err, sizeof(br->err), "model: %s", diff);
		return 4;
	}
	if (mix_txn_begin(idx, &t) < 0 ||
	    mix_txn_append(t, MIX_FLAG_FLAGGED, NULL, NULL) < 0 ||
	    commit_txn(&t, MIX_DURABILITY_NONE, &res) < 0)
		return 5;
	br->sentinel_uid = res.first_uid;
	br->sentinel_modseq = res.modseq;
	_exit(0);   /* dies without closing: no final checkpoint */
}

static int build_base(const char *dir)
{
	int st;
	pid_t pid;

	memset(br, 0, sizeof(*br));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		BAIL("fork");
	if (pid == 0) {
		struct mix_engine_config cfg;
		struct mix_engine *e;
		mix_engine_config_init(&cfg);
		cfg.log_rotate_size = 4096;
		if (mix_engine_create(&cfg, &e) < 0)
			_exit(100);
		_exit(base_child(e, dir));
	}
	if (waitpid(pid, &st, 0) < 0)
		BAIL("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

/* ---- the files of a directory ------------------------------------------ */

enum { F_INDEX, F_LOG, F_LOG2, NFILES };
static const char *const fnames[NFILES] = { "mix.index", "mix.index.log",
					    "mix.index.log.2" };

struct fileset {
	uint8_t *data[NFILES];   /* NULL: the file is absent */
	size_t size[NFILES];
};

static void fs_load(const char *dir, struct fileset *f)
{
	char p[4096];
	int i;
	for (i = 0; i < NFILES; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, fnames[i]);
		f->data[i] = tu_read_file(p, &f->size[i]);
		if (!f->data[i])
			f->size[i] = 0;
	}
}

/* A copy whose buffers the caller may change; fs_free it. */
static void fs_dup(struct fileset *dst, const struct fileset *src)
{
	int i;
	for (i = 0; i < NFILES; i++) {
		dst->size[i] = src->size[i];
		dst->data[i] = NULL;
		if (src->data[i]) {
			dst->data[i] = malloc(src->size[i] ? src->size[i] : 1);
			if (!dst->data[i])
				BAIL("malloc");
			memcpy(dst->data[i], src->data[i], src->size[i]);
		}
	}
}

static void fs_free(struct fileset *f)
{
	int i;
	for (i = 0; i < NFILES; i++) {
		free(f->data[i]);
		f->data[i] = NULL;
	}
}

static void fs_write(const char *dir, const struct fileset *f)
{
	char p[4096];
	int i;
	tu_rmdir_r(dir);
	if (mkdir(dir, 0755) < 0)
		BAIL("mkdir %s", dir);
	for (i = 0; i < NFILES; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, fnames[i]);
		if (f->data[i] && tu_write_file(p, f->data[i], f->size[i]) < 0)
			BAIL("write %s", p);
	}
}

static uint32_t get32(const uint8_t *d, size_t size, size_t off)
{
	uint32_t v = 0;
	if (d && off + 4 <= size)
		memcpy(&v, d + off, 4);
	return v;
}

static void put32(uint8_t *d, size_t off, uint32_t v)
{
	memcpy(d + off, &v, 4);
}

/* mix.index's checksum (format.md §2.1: offset 108, CRC32C of the whole
 * file with the field as 0) */
static void index_fix_crc(uint8_t *d, size_t size)
{
	uint32_t crc;
	put32(d, 108, 0);
	crc = mix_crc32c(0, d, size);
	put32(d, 108, crc);
}

/* ---- what the base directory holds -------------------------------------- */

static struct fileset base, newer, older;
static uint32_t indexid, ck_seq, ck_head;   /* mix.index's checkpoint */
static uint32_t log_seq[NFILES];            /* file_seq of each log */

/* The end of the transaction at off in a log, or 0. */
static uint32_t txn_end(int file, uint32_t off)
{
	uint32_t sz = get32(base.data[file], base.size[file], off + 8);
	return sz ? off + sz : 0;
}

/* Which log file holds file_seq seq (F_LOG, F_LOG2), or -1. */
static int file_of_seq(uint32_t seq)
{
	return seq == log_seq[F_LOG] ? F_LOG :
	       seq == log_seq[F_LOG2] ? F_LOG2 : -1;
}

/* The model state a log cut at off leaves when the cut is a crash's
 * (everything before the cut kept, everything after it lost): the
 * index of the last commit wholly before it, -1 for the state before
 * the first commit, or -2 when the cut cannot pass for a crash (inside
 * the header, or before mix.index's checkpoint, or a log the checkpoint
 * covers). */
static int cut_state(int file, uint32_t off)
{
	uint32_t seq = log_seq[file], i;
	int last = -1;

	if (off < LOG_HDR || seq < ck_seq || (seq == ck_seq && off < ck_head))
		return -2;
	for (i = 0; i < br->ncommits; i++) {
		uint64_t m = br->c[i].modseq;
		uint32_t s = (uint32_t)(m >> 32) - indexid, o = (uint32_t)m;
		if (s < seq || (s == seq && txn_end(file, o) <= off))
			last = (int)i;
	}
	return last;
}

/* ---- opening a damaged directory (in a child) --------------------------- */

static int accepted_error(int ret, const char *err)
{
	return (ret == MIX_ECORRUPT || ret == MIX_EVERSION) &&
	       strstr(err, "mix.index") != NULL;
}

/* The state with the sentinel appended. */
static void with_sentinel(struct state *s)
{
	struct msg m = { br->sentinel_uid, MIX_FLAG_FLAGGED, 0, 0 };
	if (s->n < MAX_MSG)
		s->m[s->n++] = m;
}

static void probe_check(struct mix_index *idx, int mode, int cut)
{
	static struct state got, want;
	char d2[512];

	struct mix_open_info info;

	mix_index_open_info(idx, &info);
	pr->dropped[mode] = info.dropped_bytes;
	snap_read(idx, &got);
	want = br->c[br->ncommits - 1].after;
	state_diff(&got, &want, pr->diff[mode], sizeof(pr->diff[mode]));
	if (!pr->diff[mode][0]) {
		pr->no_sentinel[mode] = 1;
		return;
	}
	with_sentinel(&want);
	state_diff(&got, &want, d2, sizeof(d2));
	if (!d2[0]) {
		pr->diff[mode][0] = '\0';
		return;
	}
	if (cut >= -1) {
		if (cut >= 0)
			want = br->c[cut].after;
		else
			memset(&want, 0, sizeof(want));
		state_diff(&got, &want, d2, sizeof(d2));
		if (!d2[0])
			pr->which[mode] = 1;
	}
	if (pr->which[mode] != 1)
		pr->which[mode] = 2;
}

/* A forked child starts with its parent's peak RSS as its own; writing
 * 5 to clear_refs (Linux 4.0+) sets the peak to the current RSS, so
 * getrusage's maxrss then tells what the child itself needed.  Where it
 * fails, maxrss includes the parent's peak (an overestimate). */
static void rss_peak_reset(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	FILE *f;
	char line[128];

	if (fd >= 0) {
		if (write(fd, "5", 1) != 1)
			pr->maxrss_kb = -1;
		close(fd);
	}
	/* what it starts with: the parent's pages count until written */
	if ((f = fopen("/proc/self/status", "r"))) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmRSS: %ld", &pr->start_rss_kb) == 1)
				break;
		fclose(f);
	}
}

static void probe_child(const char *dir, int cut)
{
	struct mix_engine *e;
	struct mix_index *idx;
	struct rusage ru;
	int mode;

	rss_peak_reset();
	pr->stage = ST_ENGINE;
	alarm(OPEN_ALARM);
	if (mix_engine_create(NULL, &e) < 0)
		_exit(100);
	for (mode = 0; mode < NMODES; mode++) {
		if (mode == M_REOPEN && pr->ret[M_RW] != 0)
			break;   /* nothing was written */
		pr->mode = mode;
		pr->stage = ST_OPEN;
		alarm(OPEN_ALARM);
		pr->ret[mode] = mix_index_open(e, dir, mode == M_RW ? 0 :
					       MIX_OPEN_READONLY, &idx);
		if (pr->ret[mode] < 0) {
			snprintf(pr->err[mode], sizeof(pr->err[mode]), "%s",
				 mix_last_error());
			continue;
		}
		pr->stage = ST_CHECK;
		alarm(OPEN_ALARM);
		probe_check(idx, mode, cut);
		pr->stage = ST_CLOSE;
		alarm(OPEN_ALARM);
		mix_index_close(&idx);
	}
	pr->stage = ST_ENGINE;
	alarm(OPEN_ALARM);
	mix_engine_free(&e);
	pr->stage = ST_DONE;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		pr->maxrss_kb = ru.ru_maxrss;
	_exit(0);
}

/* ---- one damage, counted per kind ---------------------------------------- */

struct kind {
	const char *name;
	int damages, opens, complete, refused, cut_lost, failures, printed;
	long maxrss_kb;
};

static int max_print = 3, strict;
/* Flips: the bytes of a torn tail are still there, so an open that
 * drops the NONE append must report it (mix_open_info dropped_bytes,
 * docs/api.md).  A cut leaves nothing to report. */
static int must_report;

static void kind_fail(struct kind *k, const char *what, const char *why)
{
	k->failures++;
	if (k->printed++ < max_print)
		diag("FAIL %s: %s: %s", k->name, what, why);
}

/* Judge one open of the probe. */
static void judge_open(struct kind *k, const char *what, int mode)
{
	char why[1400];

	k->opens++;
	if (pr->ret[mode] == 0 && pr->which[mode] == 0 &&
	    (!must_report || mode == M_REOPEN || !pr->no_sentinel[mode] ||
	     pr->dropped[mode])) {
		k->complete++;
		return;
	}
	if (pr->ret[mode] == 0 && pr->which[mode] == 1 && !strict) {
		if (k->cut_lost++ == 0)
			diag("  e.g. %s: %s lost only what the cut "
			     "removed: %s", what, mode_names[mode],
			     pr->diff[mode]);
		return;
	}
	if (pr->ret[mode] < 0 && accepted_error(pr->ret[mode], pr->err[mode])) {
		k->refused++;
		return;
	}
	if (pr->ret[mode] == 0 && pr->which[mode] == 0)
		snprintf(why, sizeof(why), "%s dropped the NONE append "
			 "(a torn tail) without saying so: "
			 "mix_open_info dropped_bytes 0", mode_names[mode]);
	else if (pr->ret[mode] == 0)
		snprintf(why, sizeof(why), "%s succeeded with data "
			 "missing or different%s: %s", mode_names[mode],
			 pr->which[mode] == 1 ? " (only what the cut removed)"
					      : "", pr->diff[mode]);
	else
		snprintf(why, sizeof(why), "%s returned %d (%s) with "
			 "\"%s\"; expected success with everything, or "
			 "MIX_ECORRUPT/MIX_EVERSION naming a mix.index file",
			 mode_names[mode], pr->ret[mode],
			 mix_strerror(pr->ret[mode]), pr->err[mode]);
	kind_fail(k, what, why);
}

/* Open dir (already damaged) in a child.  Returns 1 when the child ran
 * to its end (its answers are in *pr), 0 after counting a crash or a
 * hang as a failure of k. */
static int run_child(struct kind *k, const char *what, const char *dir,
		     int cut)
{
	char why[256];
	pid_t pid;
	int st;

	k->damages++;
	memset(pr, 0, sizeof(*pr));
	pr->ret[M_RO] = pr->ret[M_RW] = pr->ret[M_REOPEN] = 1; /* not reached */
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		BAIL("fork");
	if (pid == 0)
		probe_child(dir, cut);
	if (waitpid(pid, &st, 0) < 0)
		BAIL("waitpid");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && pr->stage == ST_DONE) {
		if (pr->maxrss_kb > k->maxrss_kb)
			k->maxrss_kb = pr->maxrss_kb;
		return 1;
	}
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		snprintf(why, sizeof(why), "HANG in the %s (step: %s): over %d s",
			 mode_names[pr->mode],
			 stage_names[pr->stage], OPEN_ALARM);
	else
		snprintf(why, sizeof(why), "CRASH in the %s (step: %s): %s %d",
			 mode_names[pr->mode],
			 stage_names[pr->stage],
			 WIFSIGNALED(st) ? "signal" : "exit status",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	k->opens += pr->mode + 1;
	kind_fail(k, what, why);
	return 0;
}

/* Every outcome, with MIX_DAMAGE_VERBOSE=1. */
static void say_outcome(const char *what)
{
	int m;
	for (m = 0; m < NMODES && pr->ret[m] != 1; m++)
		diag("  %s, %s: %s%s%s%s", what, mode_names[m],
		     pr->ret[m] ? "refused: " : pr->which[m] ? "opened, "
		     "differs: " : "opened complete", pr->ret[m] ? pr->err[m] :
		     "", pr->ret[m] ? "" : pr->diff[m],
		     pr->ret[m] || !pr->no_sentinel[m] ? "" :
		     pr->dropped[m] ? " (NONE append dropped, reported)" :
		     " (NONE append dropped, not reported)");
}

static int verbose;

/* Open dir in a child; judge and count both opens. */
static void probe(struct kind *k, const char *what, const char *dir, int cut)
{
	if (!run_child(k, what, dir, cut))
		return;
	if (verbose)
		say_outcome(what);
	judge_open(k, what, M_RO);
	judge_open(k, what, M_RW);
	if (pr->ret[M_RW] == 0)
		judge_open(k, what, M_REOPEN);
}

static void kind_report(struct kind *k)
{
	diag("%-24s damages %4d, opens %4d: complete %4d, refused %4d, lost "
	     "to the cut %4d, failures %4d (max rss %ld KiB)", k->name,
	     k->damages, k->opens, k->complete, k->refused, k->cut_lost,
	     k->failures, k->maxrss_kb);
	ok(k->failures == 0, "%s: %d failures in %d opens", k->name,
	   k->failures, k->opens);
}

static const char *work;   /* the scratch directory */

static void try_set(struct kind *k, const char *what,
		    const struct fileset *f, int cut)
{
	fs_write(work, f);
	probe(k, what, work, cut);
}

/* ---- sampling offsets --------------------------------------------------- */

static int full;
static uint64_t seed;

/* Offsets in [lo, hi) with the given step: all when MIX_DAMAGE_FULL or
 * few enough, else a deterministic stride and a seeded random sample,
 * budget in all.  Returns the count; *out is malloc'd. */
static size_t sample(uint32_t lo, uint32_t hi, uint32_t step, size_t budget,
		     uint32_t **out)
{
	size_t n = hi > lo ? (hi - lo + step - 1) / step : 0, k = 0, i;
	uint32_t *v = malloc((budget + n + 1) * sizeof(*v));
	if (!v)
		BAIL("malloc");
	if (full || n <= budget) {
		for (i = 0; i < n; i++)
			v[k++] = lo + (uint32_t)i * step;
	} else {
		size_t stride = n / (budget / 2) + 1;
		for (i = 0; i < n; i += stride)
			v[k++] = lo + (uint32_t)i * step;
		while (k < budget)
			v[k++] = lo + tu_rand_below(&seed, (uint32_t)n) * step;
	}
	*out = v;
	return k;
}

/* ---- the damages ------------------------------------------------------- */

static const char *only;   /* MIX_DAMAGE_ONLY: kinds whose name has it */

/* 1 (after a TAP skip) when MIX_DAMAGE_ONLY leaves the kind out. */
static int skipped(const char *name)
{
	if (!only || strstr(name, only))
		return 0;
	printf("ok %d # skip %s (MIX_DAMAGE_ONLY=%s)\n", ++tap_n, name, only);
	return 1;
}

static void damage_flips(int file, uint32_t lo, size_t budget)
{
	struct kind k = { 0 };
	struct fileset f;
	uint32_t *offs;
	size_t n, i;
	char name[64], what[128];

	snprintf(name, sizeof(name), "flip %s", fnames[file]);
	k.name = name;
	if (skipped(name))
		return;
	n = sample(lo, (uint32_t)base.size[file], 1, budget, &offs);
	must_report = 1;
	for (i = 0; i < n; i++) {
		fs_dup(&f, &base);
		f.data[file][offs[i]] ^= 0xff;
		snprintf(what, sizeof(what), "%s byte %u (0x%x) xor 0xff",
			 fnames[file], offs[i], offs[i]);
		try_set(&k, what, &f, -2);
		fs_free(&f);
	}
	must_report = 0;
	free(offs);
	kind_report(&k);
}

static void damage_truncs(int file, size_t budget)
{
	struct kind k = { 0 };
	struct fileset f;
	uint32_t *offs;
	size_t n, i;
	char name[64], what[128];

	snprintf(name, sizeof(name), "truncate %s", fnames[file]);
	k.name = name;
	if (skipped(name))
		return;
	n = sample(0, (uint32_t)base.size[file], 4, budget, &offs);
	for (i = 0; i < n; i++) {
		fs_dup(&f, &base);
		f.size[file] = offs[i];
		snprintf(what, sizeof(what), "%s cut to %u bytes (of %zu)",
			 fnames[file], offs[i], base.size[file]);
		try_set(&k, what, &f, cut_state(file, offs[i]));
		fs_free(&f);
	}
	free(offs);
	kind_report(&k);
}

static void damage_swap(void)
{
	struct kind k = { .name = "logs swapped" };
	struct fileset f = base;

	if (skipped(k.name))
		return;
	f.data[F_LOG] = base.data[F_LOG2];
	f.size[F_LOG] = base.size[F_LOG2];
	f.data[F_LOG2] = base.data[F_LOG];
	f.size[F_LOG2] = base.size[F_LOG];
	try_set(&k, "mix.index.log and mix.index.log.2 swapped", &f, -2);
	kind_report(&k);
}

/* Replace file of the base by file2 of other. */
static void try_foreign(struct kind *k, int file, const struct fileset *other,
			int file2, const char *whose)
{
	struct fileset f = base;
	char what[160];
	f.data[file] = other->data[file2];
	f.size[file] = other->size[file2];
	snprintf(what, sizeof(what), "%s replaced by %s of an index created "
		 "a second %s", fnames[file], fnames[file2], whose);
	try_set(k, what, &f, -2);
}

static void damage_foreign(void)
{
	struct kind kl = { .name = "foreign logs" },
		    ki = { .name = "foreign mix.index" };
	int w, file;

	if (skipped("foreign logs, foreign mix.index"))
		return;
	for (w = 0; w < 2; w++) {
		const struct fileset *o = w ? &older : &newer;
		const char *whose = w ? "earlier" : "later";
		for (file = F_LOG; file <= F_LOG2; file++)
			try_foreign(&kl, file, o, file, whose);
		try_foreign(&kl, F_LOG, o, F_LOG2, whose);
		try_foreign(&ki, F_INDEX, o, F_INDEX, whose);
	}
	kind_report(&kl);
	kind_report(&ki);
}

/* mix.index's field at off set to v, the checksum fixed. */
static void try_index_field(struct kind *k, uint32_t off, uint32_t v,
			    const char *field)
{
	struct fileset f;
	char what[160];
	fs_dup(&f, &base);
	put32(f.data[F_INDEX], off, v);
	index_fix_crc(f.data[F_INDEX], f.size[F_INDEX]);
	snprintf(what, sizeof(what), "mix.index %s (offset %u) set to %u "
		 "(was %u), checksum fixed", field, off, v,
		 get32(base.data[F_INDEX], base.size[F_INDEX], off));
	try_set(k, what, &f, -2);
	fs_free(&f);
}

static void damage_index_fields(void)
{
	struct kind k = { .name = "mix.index log position" };
	int file = file_of_seq(ck_seq);
	uint32_t end = file >= 0 ? (uint32_t)base.size[file] : 0;

	if (skipped(k.name))
		return;
	try_index_field(&k, 60, (end + 4) & ~3u, "log_file_head_offset");
	try_index_field(&k, 60, end + 4096, "log_file_head_offset");
	try_index_field(&k, 60, 0xfffffff0u, "log_file_head_offset");
	try_index_field(&k, 56, ck_seq + 1, "log_file_seq");
	try_index_field(&k, 56, ck_seq - 1, "log_file_seq");
	kind_report(&k);
}

static void path2(char *buf, size_t size, const char *dir, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static void damage_fifos(void)
{
	struct kind k = { .name = "FIFO in place of a file" };
	char p[4096], what[128];
	int file;

	if (skipped(k.name))
		return;
	for (file = 0; file < NFILES; file++) {
		fs_write(work, &base);
		path2(p, sizeof(p), work, fnames[file]);
		unlink(p);
		if (mkfifo(p, 0644) < 0)
			BAIL("mkfifo %s", p);
		snprintf(what, sizeof(what), "%s is a FIFO", fnames[file]);
		probe(&k, what, work, -2);
		if (!verbose)
			say_outcome(what);
	}
	kind_report(&k);
}

static void damage_symlinks(const char *top)
{
	struct kind k = { .name = "symlinks" };
	char p[4096], real[4096], what[160];
	int file, dangling;

	if (skipped(k.name))
		return;
	for (dangling = 0; dangling < 2; dangling++)
		for (file = 0; file < NFILES; file++) {
			fs_write(work, &base);
			path2(p, sizeof(p), work, fnames[file]);
			snprintf(real, sizeof(real), "%s/real-%s", top,
				 fnames[file]);
			unlink(real);
			if (!dangling && tu_write_file(real, base.data[file],
						       base.size[file]) < 0)
				BAIL("write %s", real);
			unlink(p);
			if (symlink(real, p) < 0)
				BAIL("symlink %s", p);
			snprintf(what, sizeof(what), "%s is a %s", fnames[file],
				 dangling ? "dangling symlink"
					  : "symlink to a copy of itself");
			probe(&k, what, work, -2);
			if (!verbose)   /* either answer is allowed: say which */
				say_outcome(what);
			unlink(real);
		}
	kind_report(&k);
}

/* 1 if the file system under dir keeps holes. */
static int sparse_ok(const char *dir)
{
	char p[4096];
	struct stat st;
	int fd, ok_ = 0;
	path2(p, sizeof(p), dir, "sparse-probe");
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 0;
	if (ftruncate(fd, 64 << 20) == 0 && fstat(fd, &st) == 0)
		ok_ = (uint64_t)st.st_blocks * 512 < (1u << 20);
	close(fd);
	unlink(p);
	return ok_;
}

static void damage_sparse(const char *top)
{
	struct kind k = { .name = "sparse 4 GiB - 4 log" };
	char p[4096];
	int fd;

	if (skipped(k.name))
		return;
	if (!sparse_ok(top)) {
		printf("ok %d # skip the file system under %s keeps no holes\n",
		       ++tap_n, top);
		return;
	}
	fs_write(work, &base);
	path2(p, sizeof(p), work, fnames[F_LOG]);
	fd = open(p, O_RDWR);
	if (fd < 0 || ftruncate(fd, (off_t)(4ull << 30) - 4) < 0)
		BAIL("ftruncate %s", p);
	close(fd);
	probe(&k, "mix.index.log extended with a hole to 4 GiB - 4", work, -2);
	diag("  sparse log: read-only open %d (%s), writable open %d (%s), "
	     "max rss %ld KiB (%ld KiB above the child's start)", pr->ret[0],
	     pr->ret[0] ? pr->err[0] : "ok", pr->ret[1],
	     pr->ret[1] ? pr->err[1] : "ok", pr->maxrss_kb,
	     pr->maxrss_kb - pr->start_rss_kb);
	if (pr->maxrss_kb > MAXRSS_LIMIT_KB)
		kind_fail(&k, "sparse log", "max rss above 512 MiB");
	kind_report(&k);
}

/* An empty directory: nothing to lose and no file to name, so
 * MIX_ENOTFOUND (the documented answer for a directory without an
 * index) counts as a refusal there, besides MIX_ECORRUPT. */
static void judge_empty(struct kind *k)
{
	int m;
	/* (a reopen would follow only a writable open that succeeded,
	 * itself a failure here) */
	for (m = 0; m < 2; m++) {
		char why[700];
		k->opens++;
		if (pr->ret[m] == MIX_ENOTFOUND || pr->ret[m] == MIX_ECORRUPT) {
			k->refused++;
			continue;
		}
		snprintf(why, sizeof(why), "%s returned %d (%s), "
			 "expected MIX_ENOTFOUND", mode_names[m],
			 pr->ret[m], pr->ret[m] ? pr->err[m] : "opened");
		kind_fail(k, "empty directory", why);
	}
}

static void damage_missing(void)
{
	struct kind ke = { .name = "empty directory" },
		    kl = { .name = "only the logs" };
	struct fileset f = base, none = { { NULL }, { 0 } };

	if (skipped("empty directory, only the logs"))
		return;
	fs_write(work, &none);
	if (run_child(&ke, "empty directory", work, -2))
		judge_empty(&ke);
	diag("  empty directory: read-only %d (%s), writable %d (%s)",
	     pr->ret[0], pr->err[0], pr->ret[1], pr->err[1]);
	kind_report(&ke);

	f.data[F_INDEX] = NULL;
	f.size[F_INDEX] = 0;
	try_set(&kl, "mix.index absent, both logs there", &f, -2);
	diag("  only the logs: read-only %d (%s), writable %d (%s)",
	     pr->ret[0], pr->ret[0] ? pr->err[0] : "ok", pr->ret[1],
	     pr->ret[1] ? pr->err[1] : "ok");
	kind_report(&kl);
}

/* ---- main ---------------------------------------------------------------- */

static size_t env_size(const char *name, size_t def)
{
	const char *s = getenv(name);
	return s && *s ? (size_t)strtoul(s, NULL, 0) : def;
}

/* Wait until the clock's second changes (an indexid counts seconds). */
static void next_second(void)
{
	time_t t0 = time(NULL);
	while (time(NULL) == t0)
		usleep(20000);
}

static void build_all(const char *top)
{
	char d[4096];
	int ret;

	path2(d, sizeof(d), top, "older");
	mkdir(d, 0755);
	if ((ret = build_base(d)) != 0)
		BAIL("building the older index: %d %s", ret, br->err);
	fs_load(d, &older);
	next_second();   /* another second: another indexid */
	path2(d, sizeof(d), top, "base");
	mkdir(d, 0755);
	ret = build_base(d);
	is(ret, 0, "base index built: %d rounds, %u SYNC commits, sentinel "
	   "UID %u (exit %d %s)", br->rounds, br->ncommits, br->sentinel_uid,
	   ret, br->err);
	if (ret != 0)
		BAIL("no base index");
	fs_load(d, &base);
	next_second();
	path2(d, sizeof(d), top, "newer");
	mkdir(d, 0755);
	{
		/* the newer index's own report would overwrite br */
		static struct base_report keep;
		keep = *br;
		if ((ret = build_base(d)) != 0)
			BAIL("building the newer index: %d %s", ret, br->err);
		*br = keep;
	}
	fs_load(d, &newer);
}

static void describe_base(void)
{
	indexid = get32(base.data[F_INDEX], base.size[F_INDEX], 16);
	ck_seq = get32(base.data[F_INDEX], base.size[F_INDEX], 56);
	ck_head = get32(base.data[F_INDEX], base.size[F_INDEX], 60);
	log_seq[F_LOG] = get32(base.data[F_LOG], base.size[F_LOG], 12);
	log_seq[F_LOG2] = get32(base.data[F_LOG2], base.size[F_LOG2], 12);
	ok(base.data[F_INDEX] && base.data[F_LOG] && base.data[F_LOG2],
	   "base has mix.index (%zu bytes), mix.index.log (%zu bytes, "
	   "file_seq %u), mix.index.log.2 (%zu bytes, file_seq %u); "
	   "mix.index points at file_seq %u offset %u", base.size[F_INDEX],
	   base.size[F_LOG], log_seq[F_LOG], base.size[F_LOG2],
	   log_seq[F_LOG2], ck_seq, ck_head);
	if (!base.data[F_INDEX] || !base.data[F_LOG] || !base.data[F_LOG2])
		BAIL("base directory incomplete");
	diag("final state: %u messages; the sentinel (NONE) at modseq %llx",
	     br->c[br->ncommits - 1].after.n,
	     (unsigned long long)br->sentinel_modseq);
}

static char *top_dir;
static pid_t parent_pid;

/* A Bail out! (exit) leaves no scratch directory behind either. */
static void cleanup_at_exit(void)
{
	if (top_dir && getpid() == parent_pid)
		tu_rmdir_r(top_dir);
}

int main(void)
{
	char *top, w[4096];

	/* tmpfs when the caller names no place: the writable opens fsync,
	 * which costs a real disk seconds (tmpfs keeps holes too) */
	if (!getenv("TMPDIR") && access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 0);
	top = tu_tmpdir("damage");
	top_dir = top;
	parent_pid = getpid();
	atexit(cleanup_at_exit);

	br = mmap(NULL, sizeof(*br), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pr = mmap(NULL, sizeof(*pr), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED || pr == MAP_FAILED)
		BAIL("mmap");
	seed = tu_seed();
	full = getenv("MIX_DAMAGE_FULL") && atoi(getenv("MIX_DAMAGE_FULL"));
	strict = getenv("MIX_DAMAGE_STRICT") &&
		 atoi(getenv("MIX_DAMAGE_STRICT"));
	max_print = (int)env_size("MIX_DAMAGE_MAX_FAIL", 3);
	verbose = (int)env_size("MIX_DAMAGE_VERBOSE", 0);
	only = getenv("MIX_DAMAGE_ONLY");
	if (only && !*only)
		only = NULL;
	path2(w, sizeof(w), top, "work");
	work = w;

	build_all(top);
	describe_base();
	damage_flips(F_LOG, LOG_HDR, 100);
	damage_flips(F_LOG2, 0, 24);
	damage_flips(F_INDEX, 0, 24);
	damage_truncs(F_LOG, 32);
	damage_truncs(F_LOG2, 24);
	damage_swap();
	damage_foreign();
	damage_index_fields();
	damage_fifos();
	damage_symlinks(top);
	damage_sparse(top);
	damage_missing();

	fs_free(&base);
	fs_free(&newer);
	fs_free(&older);
	tu_rmdir_r(top);
	top_dir = NULL;
	free(top);
	return tap_done();
}
