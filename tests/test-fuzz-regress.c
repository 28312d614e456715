/*
 * The fuzz targets without libFuzzer (docs/reliability.md): every file of
 * tests/fuzz/corpus-ifile and regress-ifile goes through mix_fuzz_ifile,
 * every file of corpus-log and regress-log through mix_fuzz_log, every
 * file of corpus-vmap and regress-vmap through mix_fuzz_vmap, every file
 * of corpus-mlist and regress-mlist through mix_fuzz_mlist — the same
 * entry functions `make fuzz` runs (tests/fuzz/fuzz-*.c, included here
 * with MIX_FUZZ_NO_MAIN).  regress-* hold the inputs of fixed findings;
 * each must pass.
 *
 * Then a deterministic corruption sweep over the corpus, deeper than the
 * per-module flip tests: every byte of every corpus file flipped (xor
 * 0xff and xor 0x01), and every truncation.  The targets run each input
 * also with its checksums recomputed (the whole-file CRC of mix.index,
 * format.md §2.1; the log header's and each transaction's, §3.1-§3.2), so
 * the flips get past the checksums to the field checks, the decoder and
 * the replayer.  The answer must be success with a consistent state, or a
 * documented error naming the file.  `make asan` runs this under ASan
 * and UBSan.  The mailbox list target writes and opens a list index for
 * each input (milliseconds, not microseconds), so its sweep is narrower:
 * the header and the fields before the name bytes of every record of one
 * corpus file (corpus-mlist/separator-dot.mlist) inverted, and every
 * truncation at a record boundary.
 *
 * MIX_FUZZ_DIR overrides where the directories are (default tests/fuzz,
 * relative to the top of the tree, where make check runs).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIX_FUZZ_NO_MAIN 1
#include "fuzz/fuzz-ifile.c"
#include "fuzz/fuzz-log.c"
#include "fuzz/fuzz-vmap.c"
#include "fuzz/fuzz-mlist.c"

#include "tap.h"
#include "testutil.h"

typedef int fuzz_fn(const uint8_t *data, size_t size, char *why,
		    size_t why_size);

struct input {
	char *name;
	uint8_t *data;
	size_t size;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct input *)a)->name,
		      ((const struct input *)b)->name);
}

/* All regular files of dir, sorted by name; *n_r = 0 if none. */
static struct input *load_dir(const char *dir, size_t *n_r)
{
	struct input *in = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d = opendir(dir);

	*n_r = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		char *path;
		if (e->d_name[0] == '.')
			continue;
		if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
			BAIL("out of memory");
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			if (!(in = realloc(in, cap * sizeof(*in))))
				BAIL("out of memory");
		}
		in[n].name = path;
		in[n].data = tu_read_file(path, &in[n].size);
		if (!in[n].data)
			BAIL("cannot read %s", path);
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(in, n, sizeof(*in), name_cmp);
	*n_r = n;
	return in;
}

static void free_inputs(struct input *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(in[i].name);
		free(in[i].data);
	}
	free(in);
}

/* Run fn on every file of base/sub; one check for the directory. */
static void run_dir(const char *base, const char *sub, fuzz_fn *fn,
		    int must_exist)
{
	char dir[4096], why[512];
	size_t n, bad = 0;
	struct input *in;

	snprintf(dir, sizeof(dir), "%s/%s", base, sub);
	in = load_dir(dir, &n);
	if (n == 0 && !must_exist) {
		ok(1, "%s: no inputs", dir);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (fn(in[i].data, in[i].size, why, sizeof(why)) < 0 &&
		    bad++ < 5)
			diag("  %s: %s", in[i].name, why);
	}
	ok(n > 0 && bad == 0, "%s: %zu inputs, %zu break a rule", dir, n, bad);
	free_inputs(in, n);
}

/* ---- the corruption sweep ------------------------------------------------ */

struct sweep {
	unsigned long runs, bad;
};

static void sweep_one(struct sweep *sw, fuzz_fn *fn, const char *name,
		      const uint8_t *buf, size_t size, const char *how,
		      size_t at)
{
	char why[512];

	sw->runs++;
	if (fn(buf, size, why, sizeof(why)) < 0 && sw->bad++ < 5)
		diag("  %s %s at %zu: %s", name, how, at, why);
}

static void sweep_dir(const char *base, const char *sub, fuzz_fn *fn)
{
	static const uint8_t masks[2] = { 0xff, 0x01 };
	struct sweep sw = { 0, 0 };
	char dir[4096];
	size_t n;
	struct input *in;

	snprintf(dir, sizeof(dir), "%s/%s", base, sub);
	in = load_dir(dir, &n);
	for (size_t f = 0; f < n; f++) {
		const struct input *x = &in[f];
		uint8_t *buf = malloc(x->size ? x->size : 1);

		if (!buf)
			BAIL("out of memory");
		for (size_t at = 0; at < x->size; at++) {
			for (int k = 0; k < 2; k++) {
				memcpy(buf, x->data, x->size);
				buf[at] ^= masks[k];
				sweep_one(&sw, fn, x->name, buf, x->size,
					  k ? "bit 0 flipped" : "byte inverted",
					  at);
			}
			/* truncation: a fresh copy, so ASan sees the end */
			memcpy(buf, x->data, at);
			sweep_one(&sw, fn, x->name, buf, at, "truncated", at);
		}
		free(buf);
	}
	ok(n > 0 && sw.bad == 0, "%s: %lu corrupted variants (each also with "
	   "checksums recomputed) of %zu files: success with a consistent state or a "
	   "documented error naming the file (%lu break a rule)", dir,
	   sw.runs, n, sw.bad);
	free_inputs(in, n);
}

/* The mailbox list's narrower sweep (the top comment says why). */
static void sweep_mlist(const char *base, const char *file)
{
	struct sweep sw = { 0, 0 };
	char path[4096];
	size_t size;
	uint8_t *data, *buf;

	snprintf(path, sizeof(path), "%s/corpus-mlist/%s", base, file);
	if (!(data = tu_read_file(path, &size)) || !(buf = malloc(size + 1)))
		BAIL("cannot read %s", path);
	for (size_t at = 0; at < size; at++) {
		size_t in_rec = at < 16 ? 0 : (at - 16) % 328;
		if (in_rec >= 66)
			continue;       /* the name bytes: left to make fuzz */
		memcpy(buf, data, size);
		buf[at] ^= 0xff;
		sweep_one(&sw, mix_fuzz_mlist, path, buf, size, "byte inverted",
			  at);
	}
	for (size_t at = 0; at < size; at += at < 16 ? 16 : 328) {
		memcpy(buf, data, at);
		sweep_one(&sw, mix_fuzz_mlist, path, buf, at, "truncated", at);
	}
	ok(size > 16 && sw.bad == 0, "%s: %lu corrupted variants (each also "
	   "with the header's magic made right): a valid open or a "
	   "documented error naming the directory (%lu break a rule)", path,
	   sw.runs, sw.bad);
	free(buf);
	free(data);
}

/*
 * The snapshot builder refuses an append of UID 2^32-1, which would wrap
 * next_uid to 0 (a fuzzer finding).  The log decoder stops that input
 * first (tests/fuzz/regress-log/append-uid-4294967295.log); the builder is
 * the second line of defence (engine/snapshot-build.c).
 */
static void builder_uid_max(void)
{
	struct mix_index_header h;
	struct mix_builder b;
	int ret, good;

	memset(&h, 0, sizeof(h));
	h.indexid = 1;
	h.next_uid = h.first_recent_uid = 1;
	h.first_unseen_uid_lowwater = h.first_deleted_uid_lowwater = 1;
	if (mix_builder_init_empty(&b, 1, &h) < 0)
		BAIL("out of memory");
	ret = mix_builder_append(&b, UINT32_MAX, 0, (UINT64_C(2) << 32) | 48);
	good = ret < 0 && b.hdr.next_uid != 0;
	ok(good, "builder: append of UID 2^32-1 refused (ret %d, next_uid %u)",
	   ret, b.hdr.next_uid);
	mix_builder_abort(&b);
}

int main(void)
{
	const char *base = getenv("MIX_FUZZ_DIR");

	if (!base || !*base)
		base = "tests/fuzz";
	run_dir(base, "corpus-ifile", mix_fuzz_ifile, 1);
	run_dir(base, "corpus-log", mix_fuzz_log, 1);
	run_dir(base, "regress-ifile", mix_fuzz_ifile, 0);
	run_dir(base, "regress-log", mix_fuzz_log, 0);
	run_dir(base, "corpus-vmap", mix_fuzz_vmap, 1);
	run_dir(base, "regress-vmap", mix_fuzz_vmap, 0);
	run_dir(base, "corpus-mlist", mix_fuzz_mlist, 1);
	run_dir(base, "regress-mlist", mix_fuzz_mlist, 0);
	sweep_dir(base, "corpus-ifile", mix_fuzz_ifile);
	sweep_dir(base, "corpus-log", mix_fuzz_log);
	sweep_dir(base, "corpus-vmap", mix_fuzz_vmap);
	sweep_mlist(base, "separator-dot.mlist");
	builder_uid_max();
	return tap_done();
}
