/*
 * libFuzzer target: the mailbox list's validation of its records on open
 * (engine/mlist.c rec_check, load_records, load_check_tree; the header
 * check hdr_prepare; docs/mailbox-list.md "Recovery", docs/format.md §6).
 * Input: 16 bytes of `mlist` extension header data (zero-padded if the
 * input is shorter), then the records' `mlist` data, 328 bytes each, for
 * mailbox ids (UIDs) 1, 2, ... (at most 80); a shorter tail is one more
 * record without `mlist` data.  The target writes them into a list index
 * through the public API (one transaction on a recreated index in a
 * private temporary directory, on /dev/shm when it exists), closes it and
 * opens it with mix_list_open, with the separator byte 8 of the header
 * names when it is a valid separator, '/' otherwise.
 *
 * Rules (besides ASan/UBSan): the open succeeds exactly when the header
 * and every record obey §6.1-§6.2 as read here directly (fuzz_mlist_rules,
 * a second reading of the rules with its own parent-chain walk), else it
 * fails with MIX_ECORRUPT (MIX_EINVAL for a separator other than the one
 * asked for) and a message naming the directory (shared/DESIGN.md
 * invariant 6); -ENOMEM and MIX_ELIMIT pass.  Each input runs as it is
 * and again with the header's magic and version made right (as the other
 * targets recompute checksums), so mutations reach the records.  A list
 * that opened holds every record once: the children walk from the top
 * reaches each id once, at the depth its name has, and each entry's full
 * name looks up to its id; LIST with each selection and a create and
 * delete under the first entry must not break.
 *
 * Threads: one engine for the process (its writer and reclaim threads),
 * created on the first input; libFuzzer calls the target on one thread.
 * Built by `make fuzz`; tests/test-fuzz-regress.c replays corpus-mlist
 * and regress-mlist (made by tests/fuzz/mkcorpus.c, scenario_mlist).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-common.h"
#include "mix/list.h"

#define FUZZ_MLIST_HDR   16u
#define FUZZ_MLIST_REC   328u
#define FUZZ_MLIST_NAME  66u
#define FUZZ_MLIST_MAX   80u          /* records read from one input */
#define FUZZ_MLIST_MAGIC 0x3154534cu  /* "LST1" */
#define FUZZ_MLIST_STORED (MIX_LIST_NONEXISTENT | MIX_LIST_NOSELECT | \
			   MIX_LIST_SUBSCRIBED | MIX_LIST_SPECIAL_USE)

static struct mix_engine *fuzz_mlist_engine;
static char fuzz_mlist_dir[256];

static void fuzz_mlist_cleanup(void)
{
	static const char *const files[] = { "mix.index", "mix.index.log",
		"mix.index.log.2", "mix.index.lock", "mix.index.tmp",
		"mix.index.log.newtmp" };
	char p[320];

	if (fuzz_mlist_engine != NULL)
		mix_engine_free(&fuzz_mlist_engine);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fuzz_mlist_dir, files[i]);
		unlink(p);
	}
	rmdir(fuzz_mlist_dir);
}

/* The engine and the directory, once per process. */
static int fuzz_mlist_setup(void)
{
	const char *base = getenv("TMPDIR");
	struct stat st;

	if (fuzz_mlist_engine != NULL)
		return 0;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	else if (base == NULL || *base == '\0')
		base = "/tmp";
	snprintf(fuzz_mlist_dir, sizeof(fuzz_mlist_dir),
		 "%s/mix-fuzz-mlist.XXXXXX", base);
	if (mkdtemp(fuzz_mlist_dir) == NULL) {
		perror("fuzz-mlist: mkdtemp");
		return -1;
	}
	if (mix_engine_create(NULL, &fuzz_mlist_engine) < 0) {
		fprintf(stderr, "fuzz-mlist: engine: %s\n", mix_last_error());
		rmdir(fuzz_mlist_dir);
		return -1;
	}
	atexit(fuzz_mlist_cleanup);
	return 0;
}

/* The input as header and records. */
struct fuzz_mlist_in {
	uint8_t hdr[FUZZ_MLIST_HDR];
	const uint8_t *rec[FUZZ_MLIST_MAX];   /* NULL: no mlist data */
	uint32_t n;
	char sep;
};

static void fuzz_mlist_split(const uint8_t *data, size_t size,
			     struct fuzz_mlist_in *in)
{
	size_t h = size < FUZZ_MLIST_HDR ? size : FUZZ_MLIST_HDR;

	memset(in, 0, sizeof(*in));
	memcpy(in->hdr, data, h);
	data += h;
	size -= h;
	while (size > 0 && in->n < FUZZ_MLIST_MAX) {
		in->rec[in->n++] = size >= FUZZ_MLIST_REC ? data : NULL;
		if (size < FUZZ_MLIST_REC)
			break;
		data += FUZZ_MLIST_REC;
		size -= FUZZ_MLIST_REC;
	}
	in->sep = mix_mbox_name_sep_check((char)in->hdr[8]) == 0 ?
		  (char)in->hdr[8] : '/';
}

/* Write the input into a fresh list index in dir. */
static int fuzz_mlist_write(const struct fuzz_mlist_in *in)
{
	struct mix_index *idx;
	struct mix_txn *t;
	uint32_t ext, app, i;
	int ret;

	ret = mix_index_open(fuzz_mlist_engine, fuzz_mlist_dir,
			     MIX_OPEN_CREATE | MIX_OPEN_RECREATE, &idx);
	if (ret < 0)
		return ret;
	if ((ret = mix_index_ext_register(idx, "mlist", FUZZ_MLIST_REC, 8,
					  FUZZ_MLIST_HDR, &ext)) < 0 ||
	    (ret = mix_txn_begin(idx, &t)) < 0) {
		mix_index_close(&idx);
		return ret;
	}
	ret = mix_txn_ext_hdr_set(t, ext, 0, in->hdr, FUZZ_MLIST_HDR);
	for (i = 0; ret == 0 && i < in->n; i++) {
		ret = mix_txn_append(t, 0, NULL, &app);
		if (ret == 0 && in->rec[i] != NULL)
			ret = mix_txn_append_ext(t, app, ext, in->rec[i],
						 FUZZ_MLIST_REC);
	}
	if (ret == 0)
		ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL);
	else
		mix_txn_abort(&t);
	mix_index_close(&idx);
	return ret;
}

static uint32_t fuzz_mlist_u32(const uint8_t *p)
{
	return fuzz_ld32(p);
}

static uint32_t fuzz_mlist_len(const uint8_t *r)
{
	return (uint32_t)(r[64] | r[65] << 8);
}

/* One record's own fields (§6.2). */
static int fuzz_mlist_rec_ok(const struct fuzz_mlist_in *in, uint32_t i)
{
	const uint8_t *r = in->rec[i];
	const char *name;
	uint32_t len;

	if (r == NULL || fuzz_mlist_u32(r) == i + 1)
		return 0;
	if ((fuzz_mlist_u32(r + 4) & ~(uint32_t)FUZZ_MLIST_STORED) ||
	    (fuzz_mlist_u32(r + 44) & ~(uint32_t)(MIX_LIST_STATUS_VALID |
						  MIX_LIST_STATUS_INDOUBT)))
		return 0;
	len = fuzz_mlist_len(r);
	name = (const char *)r + FUZZ_MLIST_NAME;
	if (len == 0 || len > MIX_LIST_COMPONENT_MAX ||
	    memchr(name, in->sep, len) != NULL ||
	    mix_mbox_name_check(name, len, in->sep) < 0)
		return 0;
	if (fuzz_mlist_u32(r) == 0 && len == 5 &&
	    strncasecmp(name, "INBOX", 5) == 0 && memcmp(name, "INBOX", 5))
		return 0;
	return 1;
}

/* The levels and bytes of record i's full name; 0 when its parent chain
 * leaves the records, loops or passes the limits. */
static int fuzz_mlist_chain(const struct fuzz_mlist_in *in, uint32_t i,
			    uint32_t *depth_r, size_t *len_r)
{
	uint32_t depth = 0, id = i + 1;
	size_t len = 0;

	while (id != 0) {
		const uint8_t *r;
		if (id > in->n || ++depth > MIX_MBOX_NAME_MAX_DEPTH)
			return 0;
		r = in->rec[id - 1];
		len += fuzz_mlist_len(r) + (depth > 1);
		id = fuzz_mlist_u32(r);
	}
	*depth_r = depth;
	*len_r = len;
	return len <= MIX_MBOX_NAME_MAX_LEN;
}

/* §6.1-§6.2 read directly: 1 if the list must open, 0 if it must be
 * refused; *einval_r = 1 when the refusal is the separator's. */
static int fuzz_mlist_rules(const struct fuzz_mlist_in *in, int *einval_r)
{
	static const uint8_t zero[FUZZ_MLIST_HDR];
	uint32_t i, j, depth;
	size_t len;

	*einval_r = 0;
	if (memcmp(in->hdr, zero, sizeof(zero)) != 0) {
		if (fuzz_mlist_u32(in->hdr) != FUZZ_MLIST_MAGIC ||
		    fuzz_mlist_u32(in->hdr + 4) != 1)
			return 0;
		if ((char)in->hdr[8] != in->sep) {
			*einval_r = 1;
			return 0;
		}
	}
	for (i = 0; i < in->n; i++)
		if (!fuzz_mlist_rec_ok(in, i))
			return 0;
	for (i = 0; i < in->n; i++) {
		const uint8_t *a = in->rec[i];
		for (j = 0; j < i; j++) {
			const uint8_t *b = in->rec[j];
			if (fuzz_mlist_u32(a) == fuzz_mlist_u32(b) &&
			    fuzz_mlist_len(a) == fuzz_mlist_len(b) &&
			    memcmp(a + FUZZ_MLIST_NAME, b + FUZZ_MLIST_NAME,
				   fuzz_mlist_len(a)) == 0)
				return 0;
		}
		if (!fuzz_mlist_chain(in, i, &depth, &len))
			return 0;
	}
	return 1;
}

/* ---- a list that opened -------------------------------------------------- */

struct fuzz_mlist_walk {
	struct mix_list *list;
	const struct fuzz_mlist_in *in;
	uint8_t seen[FUZZ_MLIST_MAX];
	uint32_t depth;
	int bad;
	char why[256];
};

static int fuzz_mlist_visit(void *ctx, const struct mix_list_entry *e);

static int fuzz_mlist_visit(void *ctx, const struct mix_list_entry *e)
{
	struct fuzz_mlist_walk *w = ctx;
	struct mix_list_info info;
	uint32_t depth;
	size_t len;

	if (e->id == 0 || e->id > w->in->n || w->seen[e->id - 1]++) {
		snprintf(w->why, sizeof(w->why), "children walk: id %u "
			 "unknown or reached twice", e->id);
		return w->bad = 1;
	}
	if (!fuzz_mlist_chain(w->in, e->id - 1, &depth, &len) ||
	    depth != w->depth + 1 || len != e->name_len) {
		snprintf(w->why, sizeof(w->why), "id %u '%s': depth %u "
			 "length %zu, its records say %u %zu", e->id, e->name,
			 w->depth + 1, e->name_len, depth, len);
		return w->bad = 1;
	}
	if (mix_list_lookup(w->list, e->name, e->name_len, &info) != 1 ||
	    info.id != e->id) {
		snprintf(w->why, sizeof(w->why), "'%s' does not look up to "
			 "id %u", e->name, e->id);
		return w->bad = 1;
	}
	w->depth++;
	if (mix_list_children(w->list, e->id, fuzz_mlist_visit, w) < 0 &&
	    !w->bad) {
		snprintf(w->why, sizeof(w->why), "children of %u: %s", e->id,
			 mix_last_error());
		w->bad = 1;
	}
	w->depth--;
	return w->bad;
}

static int fuzz_mlist_count(void *ctx, const struct mix_list_entry *e)
{
	struct mix_list_status st;

	(void)mix_list_status(((struct fuzz_mlist_walk *)ctx)->list, e->id,
			      &st);
	return 0;
}

/* LIST with each selection, then a create and delete under the first
 * record's name: damage the validation let through must not break them
 * (errors are fine, crashes and lost records are not). */
static void fuzz_mlist_use(struct fuzz_mlist_walk *w)
{
	static const unsigned sel[] = { 0, MIX_LIST_SELECT_SUBSCRIBED,
		MIX_LIST_SELECT_SUBSCRIBED | MIX_LIST_SELECT_RECURSIVEMATCH,
		MIX_LIST_SELECT_SPECIAL_USE };
	struct mix_mbox_pattern *p;
	char name[MIX_MBOX_NAME_MAX_LEN + 8];
	size_t len = 0;

	for (size_t i = 0; i < sizeof(sel) / sizeof(sel[0]); i++) {
		if (mix_mbox_name_pattern_new("", 0, i & 1 ? "%" : "*", 1,
					      w->in->sep, &p) < 0)
			return;
		(void)mix_list_walk(w->list, p, sel[i], fuzz_mlist_count, w);
		mix_mbox_name_pattern_free(&p);
	}
	if (w->in->n == 0 ||
	    mix_list_lookup_id(w->list, 1, NULL, name, sizeof(name) - 4,
			       &len) != 1)
		return;
	name[len++] = w->in->sep;
	name[len++] = 'z';
	if (mix_list_create(w->list, name, len, NULL, NULL) == 0)
		(void)mix_list_delete(w->list, name, len);
}

static int fuzz_mlist_check_open(struct mix_list *list,
				 const struct fuzz_mlist_in *in, char *why,
				 size_t why_size)
{
	struct fuzz_mlist_walk *w = calloc(1, sizeof(*w));
	int ret = 0;

	if (w == NULL)
		return 0;
	w->list = list;
	w->in = in;
	(void)mix_list_children(list, 0, fuzz_mlist_visit, w);
	if (!w->bad)
		for (uint32_t i = 0; i < in->n; i++)
			if (!w->seen[i]) {
				snprintf(w->why, sizeof(w->why), "id %u is not "
					 "reached from the top", i + 1);
				w->bad = 1;
				break;
			}
	if (w->bad)
		ret = fuzz_bad(why, why_size, "%s", w->why);
	else
		fuzz_mlist_use(w);
	free(w);
	return ret;
}

static int fuzz_mlist_one(const uint8_t *data, size_t size, char *why,
			  size_t why_size)
{
	struct mix_list_config cfg;
	struct fuzz_mlist_in in;
	struct mix_list *list;
	int ret, want, einval;

	if (fuzz_mlist_setup() < 0)
		return fuzz_bad(why, why_size, "no engine or directory");
	fuzz_mlist_split(data, size, &in);
	if ((ret = fuzz_mlist_write(&in)) < 0)
		return ret == -ENOMEM || ret == MIX_ELIMIT ? 0 :
		       fuzz_bad(why, why_size, "writing the input: %s",
				mix_last_error());
	want = fuzz_mlist_rules(&in, &einval);
	mix_list_config_init(&cfg);
	cfg.separator = in.sep;
	cfg.open_flags = 0;
	cfg.durability = MIX_DURABILITY_NONE;
	ret = mix_list_open(fuzz_mlist_engine, fuzz_mlist_dir, &cfg, &list);
	if (ret == -ENOMEM || ret == MIX_ELIMIT)
		return 0;
	if (ret == 0) {
		int r2 = want ? fuzz_mlist_check_open(list, &in, why, why_size)
			      : fuzz_bad(why, why_size, "the list opened; the "
					 "rules refuse it");
		if (mix_list_close(&list) < 0 && r2 == 0)
			r2 = fuzz_bad(why, why_size, "close: %s",
				      mix_last_error());
		return r2;
	}
	if (want)
		return fuzz_bad(why, why_size, "open refused what the rules "
				"accept: %d (%s)", ret, mix_last_error());
	if (einval)
		return ret == MIX_EINVAL && strstr(mix_last_error(),
						   fuzz_mlist_dir) ? 0 :
		       fuzz_bad(why, why_size, "separator mismatch: %d (%s), "
				"expected MIX_EINVAL naming the directory",
				ret, mix_last_error());
	return fuzz_check_error(ret, fuzz_mlist_dir, why, why_size);
}

/* As the other targets fix checksums (fuzz-common.h), a copy with the
 * header's magic and version made right (when it is not all zero), so
 * that mutations of the header reach the records. */
static void fuzz_fix_mlist(uint8_t *buf, size_t size)
{
	static const uint8_t zero[FUZZ_MLIST_HDR];
	uint32_t v[2] = { FUZZ_MLIST_MAGIC, 1 };

	if (size >= FUZZ_MLIST_HDR && memcmp(buf, zero, sizeof(zero)) != 0)
		memcpy(buf, v, sizeof(v));      /* little-endian, as mix */
}

int mix_fuzz_mlist(const uint8_t *data, size_t size, char *why,
		   size_t why_size)
{
	(void)fuzz_finish;      /* fuzz-common.h's snapshot oracle: unused */
	return fuzz_both(fuzz_mlist_one, fuzz_fix_mlist, data, size, why,
			 why_size);
}

#ifndef MIX_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512];

	if (mix_fuzz_mlist(data, size, why, sizeof(why)) < 0) {
		fprintf(stderr, "fuzz-mlist: %s\n", why);
		abort();
	}
	return 0;
}
#endif
