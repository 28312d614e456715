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
 * Usage: mkcorpus OUT   (make fuzz-corpus runs it with OUT = tests/fuzz)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mix/mix.h"
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

	CHECK(mix_log_rotate_to_floor(dir, 100, 1, 0, 0, 50, &w));
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
	printf("mkcorpus: corpora written under %s\n", out_dir);
	return 0;
}
