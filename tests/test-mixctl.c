/*
 * mixctl check, dump and log (tools/mixctl.c; docs/reliability.md).
 *
 * An index made by the engine (several rotations, keywords, flags) must
 * check clean; then each kind of damage, made in a copy of its files
 * with the checksums that would otherwise hide it recomputed, must give
 * exit status 1 and a line naming the file, the offset and the field:
 * an index header counter, record UID order, a record modseq above
 * highest_modseq, the index checksum, a log header, a gap in the log
 * chain, a log transaction's CRC inside what mix.index covers, a
 * CRC-valid transaction whose record is invalid, a log of another index.
 * A torn tail after the index's position (what a crash leaves) is a
 * warning with exit 0.  Every non-zero exit says why on stderr (the
 * library's verdict and the first problem); the library's read-only open
 * is the authority: a mix.expunges it refuses (issue 10 item 3) is NOT
 * CLEAN, one it accepts (an entry at oldest_modseq, dropped on load) and
 * a DIRTY-only transaction inside mix.index are clean; a corrupt
 * mix.index, a missing directory and an unknown command give a reason.
 * A virtual index (docs/virtual.md "Checking") checks clean with its vmap
 * header and records; a vmap header checksum, a record naming a mailbox
 * id the header does not list, and two records with the same (mailbox
 * id, real UID) are each reported (exit 1) with the field or the UIDs.
 * A mailbox list index checks clean with its records ("mlist: a mailbox
 * list"); one record's mlist data zeroed is NOT CLEAN ("the mailbox list
 * does not open"), though the index itself is sound.
 * Runs $MIX_BUILD/mixctl (make check sets it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "mix/mix.h"
#include "mix/virtual.h"
#include "crc32c.h"
#include "format.h"
#include "tap.h"
#include "testutil.h"

static const char *const fnames[3] = { "mix.index", "mix.index.log",
				       "mix.index.log.2" };

struct files {
	uint8_t *data[3];
	size_t size[3];
};

static char *mixctl;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* CRC32C of n bytes at p with the field at off as 0, stored there. */
static void fix_crc(uint8_t *p, size_t n, size_t off)
{
	static const uint8_t zero[4];
	uint32_t crc = mix_crc32c(0, p, off);
	crc = mix_crc32c(crc, zero, 4);
	crc = mix_crc32c(crc, p + off + 4, n - off - 4);
	put32(p + off, crc);
}

static char *path_in(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		BAIL("out of memory");
	return p;
}

static void rm_dir(const char *dir)
{
	static const char *const all[] = { "mix.index", "mix.index.log",
		"mix.index.log.2", "mix.index.lock", "mix.index.tmp",
		"mix.index.log.newtmp" };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		char *p = path_in(dir, all[i]);
		unlink(p);
		free(p);
	}
	rmdir(dir);
}

/* An index with history: rotations, keywords, flags, expunges. */
static void make_index(const char *dir, uint64_t *seed)
{
	static const char *const kw[] = { "$Junk", "todo", NULL };
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_txn *t;

	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	if (mix_engine_create(&cfg, &e) < 0 ||
	    mix_index_open(e, dir, MIX_OPEN_CREATE, &idx) < 0)
		BAIL("setup: %s", mix_last_error());
	for (int i = 0; i < 60; i++) {
		struct mix_uid_range r = { 1 + tu_rand_below(seed, 5 * (i + 1)),
					   0 };
		r.last = r.first + tu_rand_below(seed, 4);
		if (mix_txn_begin(idx, &t) < 0)
			BAIL("begin: %s", mix_last_error());
		for (int k = 0; k < 5; k++)
			mix_txn_append(t, (uint8_t)(tu_rand(seed) &
				       (MIX_FLAG_SEEN | MIX_FLAG_DELETED)),
				       k == 0 ? kw : NULL, NULL);
		mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_FLAGGED);
		if (i % 7 == 6)
			mix_txn_expunge(t, &r, 1);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
			BAIL("commit: %s", mix_last_error());
	}
	/* Where the last rotation fell depends on the seed; reopen (which
	 * starts a new log, the old one becoming .log.2) and commit a few
	 * small transactions, so that mix.index.log always holds
	 * transactions from offset 48 that mix.index covers. */
	if (mix_index_close(&idx) < 0 || mix_index_open(e, dir, 0, &idx) < 0)
		BAIL("reopen: %s", mix_last_error());
	for (int i = 0; i < 3; i++) {
		struct mix_uid_range r = { 1, 3 };
		if (mix_txn_begin(idx, &t) < 0)
			BAIL("begin: %s", mix_last_error());
		mix_txn_append(t, MIX_FLAG_SEEN, NULL, NULL);
		mix_txn_flags(t, &r, 1, i % 2 ? MIX_MODIFY_REMOVE
					      : MIX_MODIFY_ADD, MIX_FLAG_DRAFT);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
			BAIL("commit: %s", mix_last_error());
	}
	if (mix_index_close(&idx) < 0 || mix_engine_free(&e) < 0)
		BAIL("close: %s", mix_last_error());
}

static void files_load(const char *dir, struct files *f)
{
	for (int i = 0; i < 3; i++) {
		char *p = path_in(dir, fnames[i]);
		f->data[i] = tu_read_file(p, &f->size[i]);
		free(p);
	}
}

static struct files files_copy(const struct files *f)
{
	struct files c;
	for (int i = 0; i < 3; i++) {
		c.size[i] = f->size[i];
		c.data[i] = NULL;
		if (f->data[i]) {
			c.data[i] = malloc(f->size[i] + 64);
			if (!c.data[i])
				BAIL("out of memory");
			memcpy(c.data[i], f->data[i], f->size[i]);
		}
	}
	return c;
}

static void files_free(struct files *f)
{
	for (int i = 0; i < 3; i++)
		free(f->data[i]);
}

/* What mixctl wrote to stderr in the last run (also in out). */
static char err_out[8192];

/* Run mixctl CMD ARG; returns its exit status, its stdout and stderr in
 * out and its stderr alone in err_out. */
static int run_at(const char *cmd, const char *arg, char *out, size_t size)
{
	char *errpath = path_in("/tmp", "mixctl-stderr.XXXXXX");
	int fds[2], status, efd = mkstemp(errpath);
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (efd < 0 || pipe(fds) < 0)
		BAIL("pipe or stderr file");
	fflush(stdout);
	if ((pid = fork()) < 0)
		BAIL("fork");
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(efd, STDERR_FILENO);
		close(fds[0]);
		execl(mixctl, mixctl, cmd, arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (got + 1 < size &&
	       (n = read(fds[0], out + got, size - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	while (read(fds[0], &(char){ 0 }, 1) > 0)
		;
	close(fds[0]);
	waitpid(pid, &status, 0);
	n = pread(efd, err_out, sizeof(err_out) - 1, 0);
	err_out[n > 0 ? n : 0] = '\0';
	close(efd);
	unlink(errpath);
	free(errpath);
	/* the caller's out shows both, as a terminal would */
	if (got + 1 < size)
		snprintf(out + got, size - got, "%s%s", err_out[0] ?
			 "[stderr] " : "", err_out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Run mixctl CMD on a directory holding f. */
static int run(const char *cmd, const struct files *f, char *out,
	       size_t size)
{
	char *dir = tu_tmpdir("mixctl");
	int rc;

	for (int i = 0; i < 3; i++) {
		char *p = path_in(dir, fnames[i]);
		if (f->data[i] && tu_write_file(p, f->data[i], f->size[i]) < 0)
			BAIL("write %s", p);
		free(p);
	}
	rc = run_at(cmd, dir, out, size);
	rm_dir(dir);
	free(dir);
	return rc;
}

/* Damage a copy with fn and expect exit 1 and want in the output. */
static void expect(const struct files *good, const char *what,
		   void (*fn)(struct files *), const char *want1,
		   const char *want2)
{
	struct files f = files_copy(good);
	static char out[65536];
	int rc;

	fn(&f);
	rc = run("check", &f, out, sizeof(out));
	/* and says why on stderr, with the library's verdict */
	if (!ok(rc == 1 && strstr(out, want1) && (!want2 || strstr(out, want2))
		&& strstr(err_out, "NOT CLEAN") && strstr(err_out, "library: "),
		"%s: exit %d (expected 1), reports \"%s\"%s%s, and why on "
		"stderr", what, rc, want1, want2 ? " ... " : "",
		want2 ? want2 : ""))
		diag("mixctl said:\n%s", out);
	files_free(&f);
}

/* ---- virtual indexes (format.md §5) ------------------------------------ */

/* Two backends of 3 messages each and a virtual mailbox of all of them,
 * synced and closed; the virtual index is in vdir. */
static void make_virtual(struct mix_engine *e, struct mix_index **bidx,
			 const char *vdir)
{
	struct mix_virtual_backend d[2] = { { "one", bidx[0] },
					    { "two", bidx[1] } };
	struct mix_virtual_sync_result res;
	struct mix_virtual_def def;
	struct mix_virtual *vm;

	memset(&def, 0, sizeof(def));
	def.backends = d;
	def.backend_count = 2;
	def.rule = "ALL";
	if (mix_virtual_open(e, vdir, &def, &vm) < 0 ||
	    mix_virtual_sync(vm, MIX_VIRTUAL_SYNC_EXPUNGE, &res) < 0 ||
	    mix_virtual_close(&vm) < 0)
		BAIL("virtual: %s", mix_last_error());
}

/* Damage the virtual index in vdir: kind 0 the header checksum, 1 the
 * first record's mailbox id, 2 the second record a copy of the first. */
static void damage_virtual(struct mix_engine *e, const char *vdir, int kind)
{
	struct mix_index *idx;
	struct mix_record r1, r2;
	struct mix_txn *t;
	uint32_t ext, junk = 0x12345678;
	const void *d;
	uint8_t m[8];
	size_t size = 0;

	if (mix_index_open(e, vdir, 0, &idx) < 0 ||
	    mix_index_ext_register(idx, "vmap", 8, 4, 16384, &ext) < 0)
		BAIL("virtual damage: %s", mix_last_error());
	mix_read_lock();
	if (!mix_snap_lookup_seq(mix_index_snap(idx), 1, &r1) ||
	    !mix_snap_lookup_seq(mix_index_snap(idx), 2, &r2) ||
	    (d = mix_record_ext(mix_index_snap(idx), &r1, ext, &size)) ==
	    NULL || size != 8)
		BAIL("virtual damage: fewer than 2 records with vmap data");
	memcpy(m, d, 8);
	mix_read_unlock();
	if (mix_txn_begin(idx, &t) < 0)
		BAIL("begin: %s", mix_last_error());
	if (kind == 0)
		mix_txn_ext_hdr_set(t, ext, 8, &junk, 4);
	else if (kind == 1)
		mix_txn_ext_set(t, r1.uid, ext, (uint32_t[2]){ 999999,
				get32(m + 4) }, 8);
	else
		mix_txn_ext_set(t, r2.uid, ext, m, 8);
	if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0 ||
	    mix_index_close(&idx) < 0)
		BAIL("virtual damage: %s", mix_last_error());
}

static void rm_tree(const char *dir);

/* A mailbox list index: clean, then one record's data zeroed. */
static void list_checks(void)
{
	struct mix_engine *e;
	struct mix_list *l;
	struct mix_index *ix;
	struct mix_txn *t;
	static uint8_t zero[328];
	char out[16384], *dir = tu_tmpdir("mixctl-list");
	uint32_t id, ext;
	int rc;

	if (mix_engine_create(NULL, &e) < 0 ||
	    mix_list_open(e, dir, NULL, &l) < 0 ||
	    mix_list_create(l, "a/b", 3, NULL, &id) < 0 ||
	    mix_list_create(l, "INBOX", 5, NULL, &id) < 0 ||
	    mix_list_close(&l) < 0)
		BAIL("list: %s", mix_last_error());
	rc = run_at("check", dir, out, sizeof(out));
	if (!ok(rc == 0 && strstr(out, "mlist: a mailbox list; 3 records"),
		"a clean mailbox list: exit %d (expected 0), its 3 records "
		"checked", rc))
		diag("mixctl said:\n%s", out);
	/* the record of "a/b" (id 2) written as zeros through the index */
	if (mix_index_open(e, dir, 0, &ix) < 0 ||
	    mix_index_ext_register(ix, "mlist", 328, 8, 16, &ext) < 0 ||
	    mix_txn_begin(ix, &t) < 0 ||
	    mix_txn_ext_set(t, 2, ext, zero, sizeof(zero)) < 0 ||
	    mix_txn_commit(&t, MIX_DURABILITY_SYNC, NULL) < 0 ||
	    mix_index_close(&ix) < 0)
		BAIL("damage the list: %s", mix_last_error());
	rc = run_at("check", dir, out, sizeof(out));
	if (!ok(rc == 1 && strstr(out, "mlist: the mailbox list does not "
				  "open") && strstr(err_out, "NOT CLEAN"),
		"a list record zeroed: exit %d (expected 1), \"does not "
		"open\"", rc))
		diag("mixctl said:\n%s", out);
	mix_engine_free(&e);
	rm_tree(dir);
	free(dir);
}

static void rm_tree(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		BAIL("%s", cmd);
}

static void virtual_checks(void)
{
	static const char *const what[3] = { "vmap header checksum",
		"vmap record naming an unknown mailbox id",
		"two vmap records with the same (mailbox_id, real_uid)" };
	static const char *const want[3] = { "vmap header: offset 8: "
		"checksum: ", "mailbox_id 999999 is not in the header",
		"both mailbox_id " };
	static char out[65536];
	struct mix_engine_config cfg;
	struct mix_engine *e;
	struct mix_index *bidx[2];
	char *bdir[2], *vdir;
	int rc;

	mix_engine_config_init(&cfg);
	if (mix_engine_create(&cfg, &e) < 0)
		BAIL("engine: %s", mix_last_error());
	for (int i = 0; i < 2; i++) {
		struct mix_txn *t;
		bdir[i] = tu_tmpdir("mixctl-bk");
		if (mix_index_open(e, bdir[i], MIX_OPEN_CREATE, &bidx[i]) < 0 ||
		    mix_txn_begin(bidx[i], &t) < 0)
			BAIL("backend: %s", mix_last_error());
		mix_txn_hdr_set(t, MIX_HDR_UID_VALIDITY, 100 + (uint32_t)i);
		for (int k = 0; k < 3; k++)
			mix_txn_append(t, 0, NULL, NULL);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
			BAIL("backend commit: %s", mix_last_error());
	}
	for (int kind = -1; kind < 3; kind++) {
		vdir = tu_tmpdir("mixctl-virtual");
		make_virtual(e, bidx, vdir);
		if (kind >= 0)
			damage_virtual(e, vdir, kind);
		rc = run_at("check", vdir, out, sizeof(out));
		if (kind < 0) {
			if (!ok(rc == 0 && strstr(out, "vmap: a virtual index; "
				"header and records clean") &&
				strstr(out, "clean: 0 problems"), "a clean "
				"virtual index: exit %d (expected 0), vmap "
				"checked", rc))
				diag("mixctl said:\n%s", out);
		} else if (!ok(rc == 1 && strstr(out, want[kind]) &&
			       strstr(out, "mix_virtual_sync would warn and "
				      "rebuild") &&
			       strstr(err_out, "NOT CLEAN") &&
			       !strstr(out, "disagreement"), "%s: exit %d "
			       "(expected 1), reports \"%s\"", what[kind], rc,
			       want[kind])) {
			diag("mixctl said:\n%s", out);
		}
		rm_tree(vdir);
		free(vdir);
	}
	for (int i = 0; i < 2; i++) {
		if (mix_index_close(&bidx[i]) < 0)
			BAIL("close: %s", mix_last_error());
		rm_tree(bdir[i]);
		free(bdir[i]);
	}
	mix_engine_free(&e);
}

/* ---- the damage ---------------------------------------------------------- */

#define IX 0   /* mix.index */
#define L1 1   /* mix.index.log */
#define L2 2   /* mix.index.log.2 */

static uint32_t hsz(const struct files *f)
{
	return get32(f->data[IX] + 8);            /* header_size */
}

static uint32_t rsz(const struct files *f)
{
	return (uint32_t)(f->data[IX][12] | f->data[IX][13] << 8);
}

static void fix_index(struct files *f)
{
	fix_crc(f->data[IX], f->size[IX], 108);
}

static void bump_seen(struct files *f)
{
	put32(f->data[IX] + 36, get32(f->data[IX] + 36) + 1);
	fix_index(f);
}

static void swap_uids(struct files *f)
{
	uint8_t *r1 = f->data[IX] + hsz(f) + rsz(f), *r2 = r1 + rsz(f);
	uint32_t a = get32(r1), b = get32(r2);
	put32(r1, b);
	put32(r2, a);
	fix_index(f);
}

static void modseq_above(struct files *f)
{
	uint8_t *r = f->data[IX] + hsz(f);
	put64(r + 8, get64(f->data[IX] + 64) + 1);
	fix_index(f);
}

static void flip_index_byte(struct files *f)
{
	f->data[IX][hsz(f) + 5] ^= 0x55;   /* a record's pad: only the CRC */
}

static void flip_log_header(struct files *f)
{
	f->data[L1][26] ^= 0x01;           /* create_stamp, checksum kept */
}

static void chain_gap(struct files *f)
{
	uint32_t prev = get32(f->data[L1] + 16);
	put32(f->data[L1] + 16, prev - 1);  /* as if .log.2 were not its
					     * predecessor */
	fix_crc(f->data[L1], 48, 44);
}

static void flip_covered_txn(struct files *f)
{
	f->data[L1][48 + 20] ^= 0x10;      /* first transaction's payload */
}

static void bad_record_valid_crc(struct files *f)
{
	uint8_t *t = f->data[L1] + 48;
	uint32_t tsize = get32(t + 8);
	/* the first record after the boundary: set its flags field, which
	 * must be 0 (format.md §3.3) */
	t[16 + 6] = 1;
	fix_crc(t, tsize, 12);
}

static void other_indexid(struct files *f)
{
	put32(f->data[L1] + 8, get32(f->data[L1] + 8) + 1);
	fix_crc(f->data[L1], 48, 44);
}

/* Relabel .log as major version `major`.  Below 3, also drop what only
 * major 3 has (format.md §3.1, §3.2): the header's uid_floor (offset 40,
 * reserved before) and the PREV_SYNCED boundary flag, each transaction's
 * CRC recomputed (UID_FLOOR records, if any, stay and are reported). */
static void set_log_major(struct files *f, uint8_t major)
{
	uint8_t *l = f->data[L1];
	size_t off = 48;

	l[4] = major;
	if (major < 3) {
		put32(l + 40, 0);
		while (off + 16 <= f->size[L1] && get32(l + off) == 16 &&
		       l[off + 4] == 1 && l[off + 5] == 0) {
			uint32_t tsize = get32(l + off + 8);
			if (tsize < 16 || tsize > f->size[L1] - off)
				break;
			l[off + 6] = l[off + 7] = 0;  /* boundary flags */
			fix_crc(l + off, tsize, 12);
			off += tsize;
		}
	}
	fix_crc(l, 48, 44);
}

/* .log holds APPEND_RUN records, which a major-1 log may not have */
static void log_major1_with_runs(struct files *f) { set_log_major(f, 1); }
/* a major version newer than this library writes */
static void log_major_new(struct files *f)
{
	set_log_major(f, MIX_LOG_MAJOR + 1);
}

/* Reopen the index writable and commit one flag change: the new .log
 * holds no run record, so it is valid as a major-1 log too. */
static void make_flags_only_log(const char *dir)
{
	struct mix_uid_range r = { 1, 3 };
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_txn *t;
	if (mix_engine_create(NULL, &e) < 0 ||
	    mix_index_open(e, dir, 0, &idx) < 0 ||
	    mix_txn_begin(idx, &t) < 0)
		BAIL("reopen: %s", mix_last_error());
	mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_ANSWERED);
	if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0 ||
	    mix_index_close(&idx) < 0 || mix_engine_free(&e) < 0)
		BAIL("commit: %s", mix_last_error());
}

/* The data of mix.expunges (format.md §2.2: name_size 12, padded to 16
 * after the 16-byte extension header), or NULL. */
static uint8_t *xhist_data(struct files *f)
{
	uint8_t *name = memmem(f->data[IX], f->size[IX], "mix.expunges", 12);
	if (!name || (size_t)(name - f->data[IX]) + 16 + 24 > f->size[IX])
		return NULL;
	return name + 16;
}

/* The engine's loader refuses mix.expunges (an entry below
 * oldest_modseq), which mix_ifile_parse does not read: the directory of
 * issue 10 item 3, where check used to exit 2 without a word. */
static void xhist_below_oldest(struct files *f)
{
	uint8_t *d = xhist_data(f);
	if (!d)
		BAIL("no mix.expunges in mix.index");
	put64(d, get64(f->data[IX] + 64));   /* oldest := highest_modseq */
	fix_index(f);
}

/* What the trim before format.md §2.6's rule wrote: an entry at
 * oldest_modseq (the loader drops it). */
static void xhist_entry_at_oldest(struct files *f)
{
	uint8_t *d = xhist_data(f);
	if (!d)
		BAIL("no mix.expunges in mix.index");
	put64(d, get64(d + 16));             /* oldest := entry 0's modseq */
	fix_index(f);
}

/* A mix.index that contains a transaction which changed only DIRTY: its
 * modseq is above highest_modseq (docs/condstore.md), and that is fine. */
static void make_dirty_only(const char *dir)
{
	struct mix_uid_range r = { 1, 2 };
	struct mix_engine *e;
	struct mix_index *idx;
	struct mix_txn *t;
	if (mix_engine_create(NULL, &e) < 0 ||
	    mix_index_open(e, dir, 0, &idx) < 0 ||
	    mix_txn_begin(idx, &t) < 0)
		BAIL("reopen: %s", mix_last_error());
	mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_DIRTY);
	if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0 ||
	    mix_index_close(&idx) < 0 || mix_engine_free(&e) < 0)
		BAIL("commit: %s", mix_last_error());
}

static void no_files(struct files *f)
{
	for (int i = 0; i < 3; i++) {
		free(f->data[i]);
		f->data[i] = NULL;
	}
}

int main(void)
{
	const char *b = getenv("MIX_BUILD");
	char *dir = tu_tmpdir("mixctl-src");
	uint64_t seed = tu_seed();
	static char out[262144];
	struct files good, torn, v1, dirty;
	char want[128];
	int rc;

	if (asprintf(&mixctl, "%s/mixctl", b && *b ? b : "build") < 0)
		BAIL("out of memory");
	if (access(mixctl, X_OK) != 0)
		BAIL("%s is not built", mixctl);
	make_index(dir, &seed);
	files_load(dir, &good);
	make_flags_only_log(dir);
	files_load(dir, &v1);
	make_dirty_only(dir);
	files_load(dir, &dirty);
	rm_dir(dir);
	free(dir);
	if (!good.data[IX] || !good.data[L1] || !good.data[L2])
		BAIL("the index has no mix.index, .log and .log.2");
	/* the damage below needs a transaction at offset 48 of .log */
	if (good.size[L1] < 48 + 16 ||
	    get32(good.data[L1] + 48 + 8) > good.size[L1] - 48)
		BAIL("mix.index.log holds no whole transaction at offset 48 "
		     "(%zu bytes)", good.size[L1]);

	rc = run("check", &good, out, sizeof(out));
	if (!ok(rc == 0 && strstr(out, "clean: 0 problems"), "a clean index: "
		"exit %d (expected 0)", rc))
		diag("mixctl said:\n%s", out);

	expect(&good, "index header counter", bump_seen,
	       "mix.index: offset 36: seen_messages_count: ", "(expected ");
	snprintf(want, sizeof(want), "offset %u: record 2 uid: ",
		 hsz(&good) + 2 * rsz(&good));
	expect(&good, "record UID order", swap_uids, want,
	       "is not above the previous record's uid");
	snprintf(want, sizeof(want), "offset %u: record 0 modseq: ",
		 hsz(&good) + 8);
	expect(&good, "record modseq above highest_modseq", modseq_above,
	       want, "is above highest_modseq");
	expect(&good, "index checksum", flip_index_byte,
	       "mix.index: offset 108: checksum: ", "(expected 0x");
	expect(&good, "log header", flip_log_header,
	       "mix.index.log: offset 44: checksum: ", "(expected 0x");
	expect(&good, "log chain gap", chain_gap,
	       "mix.index.log: offset 16: prev_file_seq: ",
	       "a log is missing from the chain");
	expect(&good, "log transaction CRC", flip_covered_txn,
	       "mix.index.log: offset 48: transaction: ",
	       "inside what mix.index contains");
	expect(&good, "CRC-valid transaction with a bad record",
	       bad_record_valid_crc, "mix.index.log: offset 48: transaction: ",
	       "flags");
	expect(&good, "log of another index", other_indexid,
	       "mix.index.log: offset 8: indexid: ",
	       "the indexid of mix.index");
	expect(&good, "empty directory", no_files, "holds no mix.index", NULL);
	expect(&good, "log of major version 1 with run records",
	       log_major1_with_runs, "mix.index.log: offset ",
	       "major version 2 record");
	snprintf(want, sizeof(want), "expected %u..%u", MIX_LOG_MAJOR_MIN,
		 MIX_LOG_MAJOR);
	expect(&good, "log of a newer major version", log_major_new,
	       "mix.index.log: offset 4: major_version: ", want);

	/* a major-1 log the library reads is clean for mixctl too */
	set_log_major(&v1, 1);
	rc = run("check", &v1, out, sizeof(out));
	if (!ok(rc == 0 && strstr(out, "clean: 0 problems"), "a major-1 log "
		"without run records is clean: exit %d (expected 0)", rc))
		diag("mixctl said:\n%s", out);
	files_free(&v1);

	/* the library is the authority on mix.expunges (§2.6) */
	expect(&good, "mix.expunges the library refuses (issue 10 item 3)",
	       xhist_below_oldest, "library: mix_index_open (read-only) "
	       "refuses the directory: ", "mix.expunges");
	{
		struct files f = files_copy(&good);
		xhist_entry_at_oldest(&f);
		rc = run("check", &f, out, sizeof(out));
		if (!ok(rc == 0 && strstr(out, "clean: 0 problems") &&
			strstr(out, "library: opens"), "mix.expunges with an "
			"entry at oldest_modseq (written by the old trim) opens "
			"and is clean: exit %d (expected 0)", rc))
			diag("mixctl said:\n%s", out);
		files_free(&f);
	}
	rc = run("check", &dirty, out, sizeof(out));
	if (!ok(rc == 0 && strstr(out, "clean: 0 problems"), "a DIRTY-only "
		"transaction inside mix.index, above its highest_modseq, is "
		"clean: exit %d (expected 0)", rc))
		diag("mixctl said:\n%s", out);
	files_free(&dirty);
	{
		/* a corrupt mix.index: exit 1 and why, on stderr */
		struct files f = files_copy(&good);
		f.data[IX][0] ^= 0xff;             /* magic */
		rc = run("check", &f, out, sizeof(out));
		if (!ok(rc == 1 && strstr(err_out, "NOT CLEAN") &&
			strstr(err_out, "mix.index") && strstr(err_out, "magic"),
			"corrupt mix.index: exit %d (expected 1), the reason on "
			"stderr", rc))
			diag("mixctl said:\n%s", out);
		rc = run("dump", &f, out, sizeof(out));
		if (!ok(rc == 1 && strstr(err_out, "mix.index"), "dump of it: "
			"exit %d (expected 1), the reason on stderr", rc))
			diag("mixctl said:\n%s", out);
		files_free(&f);
	}
	{
		char *gone = tu_tmpdir("mixctl-gone");
		rmdir(gone);
		rc = run_at("check", gone, out, sizeof(out));
		if (!ok(rc == 2 && strstr(err_out, gone) &&
			strstr(err_out, "No such file or directory"),
			"a missing directory: exit %d (expected 2), the reason "
			"on stderr", rc))
			diag("mixctl said:\n%s", out);
		rc = run_at("frobnicate", gone, out, sizeof(out));
		if (!ok(rc == 2 && strstr(err_out, "usage: "), "an unknown "
			"command: exit %d (expected 2), usage on stderr", rc))
			diag("mixctl said:\n%s", out);
		free(gone);
	}

	/* a torn tail after the checkpoint: what a crash leaves */
	torn = files_copy(&good);
	memset(torn.data[L1] + torn.size[L1], 0, 64);
	torn.size[L1] += 64;
	rc = run("check", &torn, out, sizeof(out));
	if (!ok(rc == 0 && strstr(out, "warning: torn tail") &&
		strstr(out, "1 warning"), "a torn tail after the index's "
		"position is a warning: exit %d (expected 0)", rc))
		diag("mixctl said:\n%s", out);
	files_free(&torn);

	virtual_checks();
	list_checks();

	rc = run("dump", &good, out, sizeof(out));
	ok(rc == 0 && strstr(out, "next_uid ") && strstr(out, "keyword 0 ") &&
	   strstr(out, "record 1 uid "), "dump: header, keywords, records "
	   "(exit %d)", rc);
	rc = run("log", &good, out, sizeof(out));
	ok(rc == 0 && strstr(out, "file_seq ") && strstr(out, " modseq ") &&
	   strstr(out, "append-run("), "log: one line per transaction (exit "
	   "%d)", rc);
	files_free(&good);
	free(mixctl);
	return tap_done();
}
