/*
 * mkcorpus — seed corpora for the fuzz targets, made by the engine itself
 * (docs/reliability.md).  Each scenario creates an index in a temporary
 * directory through the public API, closes it, and copies mix.index into
 * OUT/corpus-ifile/NAME.index and the logs into OUT/corpus-log/NAME.log
 * (and NAME.log2 when a rotation left one).  Between them the files hold
 * every log record type (append, expunge, flags, keyword, keyword-reset,
 * ext-intro, ext-hdr, ext-rec, hdr) and index files with keywords and
 * registered extensions.  Deterministic but for indexids and time stamps.
 *
 * The logs it writes are of the current major version (3: appends are
 * APPEND_RUN and EXT_RUN records; scenario_v3 adds a header uid_floor,
 * UID_FLOOR and PREV_SYNCED, and a damaged copy).  corpus-log/v1-*.log and
 * v2-*.log are logs of major versions 1 (APPEND and EXT_REC for every
 * append) and 2 (no major-3 feature) kept from before: the reader still
 * reads them, and nothing writes them any more, so they are not
 * regenerated.
 *
 * scenario_vmap writes OUT/corpus-vmap/NAME.vmap for fuzz-vmap.c: a synced
 * virtual mailbox's vmap header (its used bytes) and every record's vmap
 * data, in that target's input format.
 *
 * scenario_mlist writes OUT/corpus-mlist/NAME.mlist for fuzz-mlist.c:
 * a mailbox list's `mlist` header (16 bytes) and every record's `mlist`
 * data (328 bytes), the mailbox ids renumbered 1, 2, ... in UID order
 * (parents too), as that target gives them back to records 1, 2, ...;
 * and copies just past the limits that mix cannot make (65 levels, a
 * 1,001-byte name, a cycle, a record without mlist data).
 *
 * Usage: mkcorpus OUT   (make fuzz-corpus runs it with OUT = tests/fuzz)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mix/mix.h"
#include "mix/list.h"
#include "mix/virtual.h"
#include "txlog.h"

static const char *out_dir;

static void die(const char *what, int ret)
{
	fprintf(stderr, "mkcorpus: %s: %s (%s)\n", what, mix_strerror(ret),
		mix_last_error());
	exit(1);
}

#define CHECK(call) do { int r_ = (call); if (r_ < 0) die(#call, r_); } while (0)

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out;
	size_t n;

	if (!in)
		return;         /* a log that does not exist */
	if (!(out = fopen(to, "wb"))) {
		perror(to);
		exit(1);
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			perror(to);
			exit(1);
		}
	fclose(in);
	if (fclose(out) != 0) {
		perror(to);
		exit(1);
	}
}

/* Copy the index's files to the corpora under name. */
static void save(const char *dir, const char *name)
{
	static const struct { const char *file, *sub, *ext; } map[] = {
		{ "mix.index", "corpus-ifile", "index" },
		{ "mix.index.log", "corpus-log", "log" },
		{ "mix.index.log.2", "corpus-log", "log2" },
	};
	char from[4096], to[4096];

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		snprintf(from, sizeof(from), "%s/%s", dir, map[i].file);
		snprintf(to, sizeof(to), "%s/%s/%s.%s", out_dir, map[i].sub, name,
			 map[i].ext);
		copy_file(from, to);
	}
}

static void rm_dir(const char *dir)
{
	static const char *const names[] = { "mix.index", "mix.index.log",
		"mix.index.log.2", "mix.index.lock", "mix.index.tmp",
		"mix.index.log.newtmp" };
	char p[4096];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

static struct mix_engine *engine(uint64_t rotate)
{
	struct mix_engine_config cfg;
	struct mix_engine *e;
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = rotate;
	CHECK(mix_engine_create(&cfg, &e));
	return e;
}

static char *new_dir(void)
{
	char *d = strdup("/tmp/mix-mkcorpus.XXXXXX");
	if (!d || !mkdtemp(d)) {
		perror("mkdtemp");
		exit(1);
	}
	return d;
}

static void commit(struct mix_txn **t)
{
	CHECK(mix_txn_commit(t, MIX_DURABILITY_NONE, NULL));
}

/* Appends n messages with flags cycling through the IMAP ones. */
static void appends(struct mix_index *idx, uint32_t n, const char *kw)
{
	const char *kws[] = { kw, NULL };
	struct mix_txn *t;
	CHECK(mix_txn_begin(idx, &t));
	for (uint32_t i = 0; i < n; i++)
		CHECK(mix_txn_append(t, (uint8_t)((i * 5) & 0x1f),
				     kw ? kws : NULL, NULL));
	commit(&t);
}

static void flags(struct mix_index *idx, uint32_t first, uint32_t last,
		  enum mix_modify m, uint8_t f)
{
	struct mix_uid_range r = { first, last };
	struct mix_txn *t;
	CHECK(mix_txn_begin(idx, &t));
	CHECK(mix_txn_flags(t, &r, 1, m, f));
	commit(&t);
}

static void keywords(struct mix_index *idx, uint32_t first, uint32_t last,
		     enum mix_modify m, const char *const *kws)
{
	struct mix_uid_range r = { first, last };
	struct mix_txn *t;
	CHECK(mix_txn_begin(idx, &t));
	CHECK(mix_txn_keywords(t, &r, 1, m, kws));
	commit(&t);
}

static void expunge(struct mix_index *idx, uint32_t first, uint32_t last)
{
	struct mix_uid_range r = { first, last };
	struct mix_txn *t;
	CHECK(mix_txn_begin(idx, &t));
	CHECK(mix_txn_expunge(t, &r, 1));
	commit(&t);
}

static void hdr(struct mix_index *idx, enum mix_hdr_field f, uint32_t v)
{
	struct mix_txn *t;
	CHECK(mix_txn_begin(idx, &t));
	CHECK(mix_txn_hdr_set(t, f, v));
	commit(&t);
}

static struct mix_index *open_new(struct mix_engine *e, const char *dir)
{
	struct mix_index *idx;
	CHECK(mix_index_open(e, dir, MIX_OPEN_CREATE, &idx));
	return idx;
}

static void scenario_empty(struct mix_engine *e)
{
	char *dir = new_dir();
	struct mix_index *idx = open_new(e, dir);
	CHECK(mix_index_close(&idx));
	save(dir, "empty");
	rm_dir(dir);
	free(dir);
}

static void scenario_small(struct mix_engine *e)
{
	static const char *const kw1[] = { "$Junk", "todo", NULL };
	char *dir = new_dir();
	struct mix_index *idx = open_new(e, dir);

	hdr(idx, MIX_HDR_UID_VALIDITY, 1234567);
	appends(idx, 5, "work");
	flags(idx, 1, 3, MIX_MODIFY_ADD, MIX_FLAG_SEEN | MIX_FLAG_FLAGGED);
	flags(idx, 2, 2, MIX_MODIFY_REMOVE, MIX_FLAG_SEEN);
	flags(idx, 4, 5, MIX_MODIFY_REPLACE, MIX_FLAG_DELETED);
	keywords(idx, 1, 5, MIX_MODIFY_ADD, kw1);
	expunge(idx, 3, 3);
	hdr(idx, MIX_HDR_FIRST_RECENT_UID, 4);
	CHECK(mix_index_close(&idx));
	save(dir, "small");
	rm_dir(dir);
	free(dir);
}

/* 70 keywords: the bitmap grows past 8 bytes; replace and remove. */
static void scenario_keywords(struct mix_engine *e)
{
	char names[70][16];
	const char *kws[71];
	static const char *const two[] = { "kw3", "kw65", NULL };
	char *dir = new_dir();
	struct mix_index *idx = open_new(e, dir);

	appends(idx, 12, NULL);
	for (int i = 0; i < 70; i++) {
		snprintf(names[i], sizeof(names[i]), "kw%d", i);
		kws[i] = names[i];
	}
	kws[70] = NULL;
	keywords(idx, 1, 6, MIX_MODIFY_ADD, kws);
	keywords(idx, 3, 9, MIX_MODIFY_REPLACE, two);
	keywords(idx, 1, 2, MIX_MODIFY_REMOVE, two);
	keywords(idx, 10, 12, MIX_MODIFY_REPLACE, NULL);
	CHECK(mix_index_close(&idx));
	save(dir, "keywords");
	rm_dir(dir);
	free(dir);
}

/* Registered extensions: records of 8 (aligned 8) and 3 bytes, a
 * header-only one; record data at append and later, header data. */
static void scenario_exts(struct mix_engine *e)
{
	char *dir = new_dir();
	struct mix_index *idx = open_new(e, dir);
	uint32_t a, b, c, num;
	uint64_t v = 0x1122334455667788ull;
	struct mix_txn *t;

	CHECK(mix_index_ext_register(idx, "guid8", 8, 8, 16, &a));
	CHECK(mix_index_ext_register(idx, "tiny", 3, 1, 0, &b));
	CHECK(mix_index_ext_register(idx, "hdronly", 0, 1, 100, &c));
	CHECK(mix_txn_begin(idx, &t));
	for (int i = 0; i < 4; i++) {
		CHECK(mix_txn_append(t, MIX_FLAG_SEEN, NULL, &num));
		v += (uint64_t)i;
		CHECK(mix_txn_append_ext(t, num, a, &v, 8));
	}
	commit(&t);
	CHECK(mix_txn_begin(idx, &t));
	CHECK(mix_txn_ext_set(t, 2, b, "abc", 3));
	CHECK(mix_txn_ext_set(t, 3, a, &v, 8));
	CHECK(mix_txn_ext_hdr_set(t, a, 4, "head", 4));
	CHECK(mix_txn_ext_hdr_set(t, c, 90, "0123456789", 10));
	commit(&t);
	expunge(idx, 1, 1);
	CHECK(mix_index_close(&idx));
	save(dir, "exts");
	rm_dir(dir);
	free(dir);
}

/* A few hundred messages and a tiny rotate size: mix.index.log.2 and a
 * log that continues it. */
static void scenario_rotation(void)
{
	struct mix_engine *e = engine(4096);
	char *dir = new_dir();
	struct mix_index *idx = open_new(e, dir);
	static const char *const kw[] = { "$Forwarded", NULL };

	for (uint32_t i = 0; i < 30; i++) {
		appends(idx, 10, i % 3 ? NULL : "later");
		flags(idx, 1 + i * 7, 4 + i * 9, MIX_MODIFY_ADD,
		      (uint8_t)(1u << (i % 5)));
		if (i % 4 == 3)
			expunge(idx, 1 + i * 5, 2 + i * 5);
		if (i % 5 == 4)
			keywords(idx, i, i + 20, MIX_MODIFY_ADD, kw);
	}
	hdr(idx, MIX_HDR_NEXT_UID, 1000);
	appends(idx, 2, NULL);
	CHECK(mix_index_close(&idx));
	save(dir, "rotation");
	rm_dir(dir);
	free(dir);
	CHECK(mix_engine_free(&e));
}

/* A log whose last transaction is torn (what a crash mid-write leaves). */
static void scenario_torn(struct mix_engine *e)
{
	char *dir = new_dir(), p[4096];
	struct mix_index *idx = open_new(e, dir);
	struct stat st;

	appends(idx, 3, "x");
	appends(idx, 4, NULL);
	flags(idx, 1, 7, MIX_MODIFY_ADD, MIX_FLAG_ANSWERED);
	CHECK(mix_index_close(&idx));
	snprintf(p, sizeof(p), "%s/mix.index.log", dir);
	if (stat(p, &st) == 0 && truncate(p, st.st_size - 6) < 0)
		perror("truncate");
	save(dir, "torn");
	rm_dir(dir);
	free(dir);
}

/* Major-3 features written through the log API (engine/txlog.h), since
 * whether the engine emits them depends on durability and timing: a
 * header uid_floor, a UID_FLOOR record, PREV_SYNCED boundaries (each
 * transaction written after the previous one's fdatasync); then the
 * same log with a byte of its second transaction flipped, which a
 * later PREV_SYNCED transaction proves is damage (§3.4). */
static void scenario_v3(void)
{
	static const uint8_t fl[3] = { MIX_FLAG_SEEN, 0, MIX_FLAG_FLAGGED };
	char *dir = new_dir(), from[4096], to[4096];
	struct mix_log_writer w;
	struct mix_buf b = { 0 };
	FILE *f;

	CHECK(mix_log_rotate_to_floor(-1, dir, 100, 1, 0, 0, 50, &w));
	for (uint32_t i = 0; i < 5; i++) {
		struct mix_log_uid_range rg = { 1, 3 };
		size_t start;
		b.len = 0;
		CHECK(mix_logenc_begin(&b, &start));
		if (i == 0)
			CHECK(mix_logenc_append_run(&b, 1, fl, 3));
		if (i == 2)
			CHECK(mix_logenc_uid_floor(&b, 100));
		CHECK(mix_logenc_flags(&b, i % 2 ? MIX_FLAG_ANSWERED : 0,
				       i % 2 ? 0 : MIX_FLAG_ANSWERED, &rg, 1));
		mix_logenc_end(&b, start);
		if (w.synced == w.offset)
			CHECK(mix_logenc_mark_prev_synced(&b, start));
		CHECK(mix_log_append(&w, b.data, b.len));
		CHECK(mix_log_sync(&w));
	}
	mix_log_writer_close(&w);
	mix_buf_free(&b);
	snprintf(from, sizeof(from), "%s/mix.index.log", dir);
	snprintf(to, sizeof(to), "%s/corpus-log/v3-synced.log", out_dir);
	copy_file(from, to);
	/* the second transaction starts after the header (48) and the
	 * first (16 + 24 + 16 = 56 bytes): flip a byte of its record */
	if (!(f = fopen(from, "r+b")) || fseek(f, 48 + 56 + 20, SEEK_SET) ||
	    fputc(0x7f, f) == EOF || fclose(f)) {
		perror(from);
		exit(1);
	}
	snprintf(to, sizeof(to), "%s/corpus-log/v3-damaged.log", out_dir);
	copy_file(from, to);
	rm_dir(dir);
	free(dir);
}

/* The virtual index's vmap header and records as fuzz-vmap.c reads
 * them: u16 header length, header, 8 bytes per record. */
static void save_vmap(struct mix_virtual *vm, const char *name)
{
	const struct mix_snap *s;
	struct mix_record rec;
	struct mix_iter it;
	const uint8_t *h;
	size_t size = 0;
	uint32_t ext, used = 0;
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/corpus-vmap/%s.vmap", out_dir, name);
	if (!(f = fopen(path, "wb"))) {
		perror(path);
		exit(1);
	}
	mix_read_lock();
	s = mix_index_snap(mix_virtual_index(vm));
	if (!mix_snap_ext_lookup(s, "vmap", &ext))
		die("no vmap extension", MIX_EINVAL);
	h = mix_snap_ext_hdr(s, ext, &size);
	if (h && size >= 16)
		memcpy(&used, h + 12, 4);
	if (used > size)
		used = 0;
	fputc((int)(used & 0xff), f);
	fputc((int)(used >> 8), f);
	if (used)
		fwrite(h, 1, used, f);
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &rec)) {
		const void *d = mix_record_ext(s, &rec, ext, &size);
		if (d && size == 8)
			fwrite(d, 1, 8, f);
	}
	mix_read_unlock();
	if (fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Virtual mailboxes over three backends: never synced, synced, synced
 * after expunges and a backend leaving the definition. */
static void scenario_vmap(void)
{
	struct mix_engine *e = engine(1u << 30);
	struct mix_virtual_backend d[3];
	struct mix_virtual_sync_result res;
	struct mix_virtual_def def;
	struct mix_virtual *vm;
	struct mix_index *b[3];
	static const char *const names[3] = { "INBOX", "Archive/2026",
					      "Lists/mix-dev" };
	char *dirs[3], *vdir = new_dir();

	for (int i = 0; i < 3; i++) {
		dirs[i] = new_dir();
		b[i] = open_new(e, dirs[i]);
		hdr(b[i], MIX_HDR_UID_VALIDITY, 1000 + (uint32_t)i);
		appends(b[i], 3 + 2 * (uint32_t)i, i == 1 ? "todo" : NULL);
		d[i].name = names[i];
		d[i].index = b[i];
	}
	memset(&def, 0, sizeof(def));
	def.backends = d;
	def.backend_count = 3;
	def.rule = "ALL";
	CHECK(mix_virtual_open(e, vdir, &def, &vm));
	save_vmap(vm, "never-synced");
	CHECK(mix_virtual_sync(vm, MIX_VIRTUAL_SYNC_EXPUNGE, &res));
	save_vmap(vm, "three");
	expunge(b[0], 2, 2);
	appends(b[2], 2, NULL);
	CHECK(mix_virtual_set_backends(vm, d, 2));
	CHECK(mix_virtual_sync(vm, MIX_VIRTUAL_SYNC_EXPUNGE, &res));
	save_vmap(vm, "after-changes");
	CHECK(mix_virtual_close(&vm));
	for (int i = 0; i < 3; i++) {
		CHECK(mix_index_close(&b[i]));
		rm_dir(dirs[i]);
		free(dirs[i]);
	}
	rm_dir(vdir);
	free(vdir);
	CHECK(mix_engine_free(&e));
}

/* A list index as fuzz-mlist.c reads it: the mlist header, then each
 * record's data with the ids (UIDs) renumbered 1, 2, ... */
struct mlist_seed {
	uint8_t hdr[16];
	uint8_t rec[66][328];
	uint32_t n;
};

static void load_mlist(struct mix_engine *e, const char *dir,
		       struct mlist_seed *m)
{
	uint32_t uids[64], ext;
	const struct mix_snap *s;
	struct mix_index *idx;
	struct mix_record r;
	struct mix_iter it;
	const uint8_t *h;
	size_t size = 0;

	memset(m, 0, sizeof(*m));
	CHECK(mix_index_open(e, dir, 0, &idx));
	CHECK(mix_index_ext_register(idx, "mlist", 328, 8, 16, &ext));
	mix_read_lock();
	s = mix_index_snap(idx);
	if ((h = mix_snap_ext_hdr(s, ext, &size)) != NULL && size == 16)
		memcpy(m->hdr, h, 16);
	mix_iter_init(&it, s, 1);
	while (mix_iter_next(&it, &r) && m->n < 64) {
		const void *d = mix_record_ext(s, &r, ext, &size);
		if (d == NULL || size != 328)
			die("a list record without mlist data", MIX_ECORRUPT);
		uids[m->n] = r.uid;
		memcpy(m->rec[m->n++], d, 328);
	}
	mix_read_unlock();
	CHECK(mix_index_close(&idx));
	for (uint32_t i = 0; i < m->n; i++) {
		uint32_t parent, k;
		memcpy(&parent, m->rec[i], 4);
		for (k = 0; parent != 0 && k < m->n && uids[k] != parent; k++)
			;
		parent = parent ? k + 1 : 0;
		memcpy(m->rec[i], &parent, 4);
	}
}

/* OUT/corpus-mlist/NAME.mlist, and tail bytes of one more record (a
 * record without mlist data) when tail is not 0. */
static void write_mlist(const struct mlist_seed *m, const char *name,
			size_t tail)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/corpus-mlist/%s.mlist", out_dir,
		 name);
	if (!(f = fopen(path, "wb"))) {
		perror(path);
		exit(1);
	}
	fwrite(m->hdr, 1, 16, f);
	for (uint32_t i = 0; i < m->n; i++)
		fwrite(m->rec[i], 1, 328, f);
	for (size_t i = 0; i < tail; i++)
		fputc(0, f);
	if (fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void save_mlist(struct mix_engine *e, const char *dir,
		       const char *name)
{
	struct mlist_seed m;

	load_mlist(e, dir, &m);
	write_mlist(&m, name, 0);
}

/* Record n + 1 of m: component c (len bytes) under parent. */
static void add_rec(struct mlist_seed *m, uint32_t parent, char c,
		    uint16_t len)
{
	uint8_t *r = m->rec[m->n++];

	memset(r, 0, 328);
	memcpy(r, &parent, 4);
	memcpy(r + 64, &len, 2);
	memset(r + 66, c, len);
}

/* Past the limits, made from lists at them (mix refuses to make these
 * itself): 65 levels, a full name of 1,001 bytes (and one of 1,000, at
 * the limit), two records each the other's parent, a record without
 * mlist data. */
static void mlist_edges(struct mix_engine *e, const char *dir)
{
	struct mlist_seed m;

	load_mlist(e, dir, &m);         /* component-255: 767 bytes */
	add_rec(&m, m.n, 'y', 232);
	write_mlist(&m, "name-1000", 0);
	m.n--;
	add_rec(&m, m.n, 'y', 233);
	write_mlist(&m, "name-1001", 0);
	m.n = 0;
	add_rec(&m, 2, 'p', 1);
	add_rec(&m, 1, 'q', 1);
	write_mlist(&m, "cycle", 0);
	m.n = 1;
	memset(m.rec[0], 0, 4);
	write_mlist(&m, "tail-without-data", 40);
}

static struct mix_list *list_new(struct mix_engine *e, const char *dir,
				 char sep)
{
	struct mix_list_config cfg;
	struct mix_list *l;

	rm_dir(dir);
	if (mkdir(dir, 0700) < 0) {
		perror(dir);
		exit(1);
	}
	mix_list_config_init(&cfg);
	cfg.separator = sep;
	cfg.durability = MIX_DURABILITY_NONE;
	CHECK(mix_list_open(e, dir, &cfg, &l));
	return l;
}

static void mk(struct mix_list *l, const char *name)
{
	CHECK(mix_list_create(l, name, strlen(name), NULL, NULL));
}

/* Mailbox lists: empty; a tree with placeholders, subscriptions (one to a
 * name that does not exist), special-use, a renamed subtree, a \Noselect
 * name and a STATUS from an attached mailbox; 64 levels; components of
 * 255 bytes; the separator '.'. */
static void scenario_mlist(void)
{
	struct mix_engine *e = engine(1u << 30);
	char *dir = new_dir(), *mdir = new_dir(), deep[200], big[767];
	static const uint8_t guid[16] = { 0x6d, 0x69, 0x78, 1, 2, 3 };
	struct mix_list_info info;
	struct mix_index *box;
	struct mix_list *l;
	uint32_t id;
	size_t n = 0;

	l = list_new(e, dir, '/');
	CHECK(mix_list_close(&l));
	save_mlist(e, dir, "empty");

	l = list_new(e, dir, '/');
	mk(l, "INBOX");
	mk(l, "INBOX/sub");
	mk(l, "Projects/2026");
	mk(l, "Projects");
	mk(l, "Lists/mix-dev");
	CHECK(mix_list_create(l, "Work", 4, guid, &id));
	mk(l, "Work/a");
	mk(l, "Trash");
	mk(l, "Sent");
	CHECK(mix_list_subscribe(l, "Lists/mix-dev", 13, 1));
	CHECK(mix_list_subscribe(l, "Gone", 4, 1));
	CHECK(mix_list_set_special_use(l, "Trash", 5, MIX_LIST_TRASH));
	CHECK(mix_list_set_special_use(l, "Sent", 4, MIX_LIST_SENT));
	CHECK(mix_list_rename(l, "Projects", 8, "Old/Projects", 12, NULL,
			      NULL));
	CHECK(mix_list_delete(l, "Work", 4));
	box = open_new(e, mdir);
	appends(box, 4, NULL);
	if (mix_list_lookup(l, "INBOX/sub", 9, &info) != 1)
		die("lookup INBOX/sub", MIX_ENOTFOUND);
	CHECK(mix_list_attach(l, id = info.id, box));
	appends(box, 2, NULL);
	CHECK(mix_list_set_size(l, id, 12345));
	CHECK(mix_list_detach(l, id));
	CHECK(mix_index_close(&box));
	CHECK(mix_list_close(&l));
	save_mlist(e, dir, "tree");

	for (int i = 0; i < 64; i++) {
		deep[n++] = (char)('a' + i % 26);
		if (i < 63)
			deep[n++] = '/';
	}
	l = list_new(e, dir, '/');
	CHECK(mix_list_create(l, deep, n, NULL, NULL));
	CHECK(mix_list_close(&l));
	save_mlist(e, dir, "deep-64");
	{
		struct mlist_seed m;
		load_mlist(e, dir, &m);
		add_rec(&m, m.n, 'z', 1);
		write_mlist(&m, "deep-65", 0);
	}

	memset(big, 'x', sizeof(big));
	big[255] = '/';
	big[511] = '/';
	l = list_new(e, dir, '/');
	CHECK(mix_list_create(l, big, 767, NULL, NULL));
	CHECK(mix_list_close(&l));
	save_mlist(e, dir, "component-255");
	mlist_edges(e, dir);

	l = list_new(e, dir, '.');
	mk(l, "INBOX.Drafts");
	mk(l, "Shared.Team.Plans");
	CHECK(mix_list_subscribe(l, "Shared.Team", 11, 1));
	CHECK(mix_list_close(&l));
	save_mlist(e, dir, "separator-dot");
	rm_dir(dir);
	rm_dir(mdir);
	free(dir);
	free(mdir);
	CHECK(mix_engine_free(&e));
}

int main(int argc, char **argv)
{
	struct mix_engine *e;
	char p[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus OUT\n");
		return 2;
	}
	out_dir = argv[1];
	snprintf(p, sizeof(p), "%s/corpus-ifile", out_dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/corpus-log", out_dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/corpus-vmap", out_dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/corpus-mlist", out_dir);
	mkdir(p, 0755);
	e = engine(1u << 30);
	scenario_empty(e);
	scenario_small(e);
	scenario_keywords(e);
	scenario_exts(e);
	scenario_torn(e);
	CHECK(mix_engine_free(&e));
	scenario_rotation();
	scenario_v3();
	scenario_vmap();
	scenario_mlist();
	printf("mkcorpus: corpora written under %s\n", out_dir);
	return 0;
}
