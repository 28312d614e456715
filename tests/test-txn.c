/*
 * Transactions and the engine API at their edges (engine/txn.c,
 * engine/engine.c, engine/index.c): every bad argument returns the
 * documented error with a message and changes nothing; asynchronous
 * commits call back exactly once with the same result a synchronous
 * commit would give; extension registration is idempotent; a commit
 * inside a read-side section is refused; read-only indexes refuse writes;
 * the engine refuses to be freed with an index open.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mix/mix.h"
#include "txn.h"
#include "tap.h"
#include "testutil.h"

static struct mix_engine *engine;

struct async_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls, ret;
	struct mix_commit_result res;
};

static void on_commit(void *ctx, int ret, const struct mix_commit_result *r)
{
	struct async_state *a = ctx;
	pthread_mutex_lock(&a->lock);
	a->calls++;
	a->ret = ret;
	if (r)
		a->res = *r;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void test_bad_args(struct mix_index *idx)
{
	struct mix_txn *t;
	struct mix_uid_range bad[] = { { 0, 5 }, { 9, 3 } }, good = { 1, 2 };
	const char *kw_space[] = { "has space", NULL };
	const char *kw_paren[] = { "a(b", NULL };
	const char *kw_slash[] = { "\\Seen", NULL };
	const char *kw_empty[] = { "", NULL };
	char longkw[300];
	const char *kw_long[] = { longkw, NULL };
	uint32_t before = tu_messages(idx);
	uint8_t data[8] = { 0 };

	memset(longkw, 'x', sizeof(longkw) - 1);
	longkw[sizeof(longkw) - 1] = '\0';
	is(mix_txn_begin(idx, &t), 0, "begin");
	is(mix_txn_append(t, 0x40, NULL, NULL), MIX_EINVAL, "flag 0x40 refused");
	ok(strstr(mix_last_error(), "flags") != NULL, "message: %s",
	   mix_last_error());
	is(mix_txn_flags(t, &bad[0], 1, MIX_MODIFY_ADD, MIX_FLAG_SEEN),
	   MIX_EINVAL, "UID range starting at 0 refused");
	is(mix_txn_flags(t, &bad[1], 1, MIX_MODIFY_ADD, MIX_FLAG_SEEN),
	   MIX_EINVAL, "UID range 9:3 refused");
	is(mix_txn_flags(t, &good, 1, (enum mix_modify)7, MIX_FLAG_SEEN),
	   MIX_EINVAL, "unknown modify type refused");
	is(mix_txn_keywords(t, &good, 1, MIX_MODIFY_ADD, kw_space), MIX_EINVAL,
	   "keyword with a space refused");
	is(mix_txn_keywords(t, &good, 1, MIX_MODIFY_ADD, kw_paren), MIX_EINVAL,
	   "keyword with an atom-special refused");
	is(mix_txn_keywords(t, &good, 1, MIX_MODIFY_ADD, kw_slash), MIX_EINVAL,
	   "system flag as keyword refused");
	is(mix_txn_keywords(t, &good, 1, MIX_MODIFY_ADD, kw_empty), MIX_EINVAL,
	   "empty keyword refused");
	is(mix_txn_append(t, 0, kw_long, NULL), MIX_EINVAL,
	   "299-byte keyword refused");
	is(mix_txn_ext_set(t, 1, 99, data, 8), MIX_EINVAL,
	   "unknown extension refused");
	is(mix_txn_ext_set(t, 0, MIX_EXT_FIRST, data, 8), MIX_EINVAL,
	   "uid 0 refused");
	is(mix_txn_append_ext(t, 5, MIX_EXT_FIRST, data, 8), MIX_EINVAL,
	   "append_ext of an append that does not exist refused");
	is(mix_txn_hdr_set(t, MIX_HDR_UID_VALIDITY, 0), MIX_EINVAL,
	   "uid_validity 0 refused");
	is(mix_txn_hdr_set(t, (enum mix_hdr_field)9, 1), MIX_EINVAL,
	   "unknown header field refused");
	is(mix_txn_commit(&t, (enum mix_durability)5, NULL), MIX_EINVAL,
	   "unknown durability refused");
	is(t, NULL, "commit cleared the pointer");
	is(tu_messages(idx), before, "nothing was committed");

	is(mix_txn_begin(idx, &t), 0, "begin");
	mix_txn_append(t, 0, NULL, NULL);
	mix_read_lock();
	is(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL), MIX_EDEADLK,
	   "commit inside a read-side section refused");
	mix_read_unlock();
	is(tu_messages(idx), before, "and did not commit");
	is(mix_txn_begin(idx, &t), 0, "begin");
	mix_txn_append(t, 0, NULL, NULL);
	mix_txn_abort(&t);
	ok(t == NULL && tu_messages(idx) == before, "abort commits nothing");
}

/* Extension data of appends: the column path (right after the append)
 * and the operation path (after another operation) refuse the same bad
 * input, and both land on the right messages. */
static void test_append_ext(struct mix_index *idx, uint32_t id)
{
	struct mix_commit_result res;
	struct mix_uid_range r;
	struct mix_txn *t;
	uint8_t a[12], b[12], c[12];
	uint32_t hdr_only, n0, n1, n2;
	const struct mix_snap *s;
	struct mix_record rec;
	const void *p;
	size_t size;
	int ret;

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	memset(c, 0xcc, sizeof(c));
	ok(mix_index_ext_register(idx, "x.hdronly", 0, 1, 8, &hdr_only) == 0,
	   "registered a header-only extension");
	is(mix_txn_begin(idx, &t), 0, "begin");
	is(mix_txn_append(t, 0, NULL, &n0), 0, "append 0");
	is(mix_txn_append_ext(t, n0, id, a, 8), MIX_EINVAL,
	   "append data of the wrong size refused (first use)");
	is(mix_txn_append_ext(t, n0, id, a, 12), 0, "append data");
	is(mix_txn_append_ext(t, n0, id, a, 8), MIX_EINVAL,
	   "append data of the wrong size refused (column exists)");
	is(mix_txn_append_ext(t, n0, id, NULL, 12), MIX_EINVAL,
	   "NULL append data refused");
	is(mix_txn_append_ext(t, n0, hdr_only, a, 0), MIX_EINVAL,
	   "append data of a header-only extension refused");
	is(mix_txn_append_ext(t, n0, 99, a, 12), MIX_EINVAL,
	   "append data of an unknown extension refused");
	is(mix_txn_append(t, MIX_FLAG_SEEN, NULL, &n1), 0, "append 1");
	is(mix_txn_append(t, 0, NULL, &n2), 0, "append 2");
	is(mix_txn_append_ext(t, n2, id, b, 12), 0,
	   "data of append 2, none for append 1");
	r.first = 1;
	r.last = 1;
	is(mix_txn_flags(t, &r, 1, MIX_MODIFY_ADD, MIX_FLAG_FLAGGED), 0,
	   "another operation");
	is(mix_txn_append_ext(t, n1, id, a, 8), MIX_EINVAL,
	   "late append data of the wrong size refused");
	is(mix_txn_append_ext(t, n1, id, c, 12), 0,
	   "late data of append 1");
	is(mix_txn_append_ext(t, n0, id, c, 12), 0,
	   "late data of append 0 replaces the first");
	ret = mix_txn_commit(&t, MIX_DURABILITY_NONE, &res);
	ok(ret == 0 && res.last_uid == res.first_uid + 2, "committed: %s",
	   ret ? mix_last_error() : "uids ok");
	if (ret)
		return;
	mix_read_lock();
	s = mix_index_snap(idx);
	ok(mix_snap_lookup_uid(s, res.first_uid, &rec) &&
	   (p = mix_record_ext(s, &rec, id, &size)) && size == 12 &&
	   memcmp(p, c, 12) == 0, "append 0 has the late data");
	ok(mix_snap_lookup_uid(s, res.first_uid + 1, &rec) &&
	   (p = mix_record_ext(s, &rec, id, &size)) && size == 12 &&
	   memcmp(p, c, 12) == 0 && rec.flags == MIX_FLAG_SEEN,
	   "append 1 has its late data and its flags");
	ok(mix_snap_lookup_uid(s, res.first_uid + 2, &rec) &&
	   (p = mix_record_ext(s, &rec, id, &size)) && size == 12 &&
	   memcmp(p, b, 12) == 0, "append 2 has its data");
	mix_read_unlock();
}

static void test_ext(struct mix_index *idx)
{
	uint32_t id1, id2, id3;
	const void *p;
	size_t size;
	struct mix_txn *t;
	uint8_t hdr[4] = { 1, 2, 3, 4 };

	ok(mix_index_ext_register(idx, "x.cache", 12, 4, 32, &id1) == 0,
	   "registered x.cache");
	ok(mix_index_ext_register(idx, "x.cache", 12, 4, 32, &id2) == 0 &&
	   id1 == id2, "registering again returns the same id %u", id2);
	is(mix_index_ext_register(idx, "x.cache", 16, 4, 32, &id3), MIX_EINVAL,
	   "registering with another size refused");
	is(mix_index_ext_register(idx, "bad name", 4, 4, 0, &id3), MIX_EINVAL,
	   "name with a space refused");
	is(mix_index_ext_register(idx, "x.y", 4, 3, 0, &id3), MIX_EINVAL,
	   "alignment 3 refused");
	is(mix_index_ext_register(idx, "x.y", 2000, 4, 0, &id3), MIX_EINVAL,
	   "record of 2000 bytes refused");
	is(mix_txn_begin(idx, &t), 0, "begin");
	is(mix_txn_ext_hdr_set(t, id1, 30, hdr, 4), MIX_EINVAL,
	   "header write past the end refused");
	is(mix_txn_ext_set(t, 1, id1, hdr, 4), MIX_EINVAL,
	   "record data of the wrong size refused");
	is(mix_txn_ext_hdr_set(t, id1, 28, hdr, 4), 0, "header write");
	is(mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL), 0, "committed");
	mix_read_lock();
	p = mix_snap_ext_hdr(mix_index_snap(idx), id1, &size);
	ok(p && size == 32 && memcmp((const uint8_t *)p + 28, hdr, 4) == 0,
	   "header data visible");
	ok(mix_snap_ext_lookup(mix_index_snap(idx), "x.cache", &id3) &&
	   id3 == id1, "lookup by name");
	mix_read_unlock();
	test_append_ext(idx, id1);
}

static void test_async(struct mix_index *idx)
{
	struct async_state a = { PTHREAD_MUTEX_INITIALIZER,
				 PTHREAD_COND_INITIALIZER, 0, 0, { 0 } };
	struct mix_txn *t;
	uint32_t before = tu_messages(idx), next;

	mix_read_lock();
	next = mix_snap_next_uid(mix_index_snap(idx));
	mix_read_unlock();
	is(mix_txn_begin(idx, &t), 0, "begin");
	mix_txn_append(t, MIX_FLAG_SEEN, NULL, NULL);
	mix_txn_append(t, 0, NULL, NULL);
	ok(mix_txn_commit_async(&t, MIX_DURABILITY_SYNC, on_commit, &a) == 0 &&
	   t == NULL, "async commit queued");
	pthread_mutex_lock(&a.lock);
	while (a.calls == 0)
		pthread_cond_wait(&a.cond, &a.lock);
	pthread_mutex_unlock(&a.lock);
	usleep(20000);
	ok(a.calls == 1 && a.ret == 0, "callback called once, ret %d", a.ret);
	ok(a.res.first_uid == next && a.res.last_uid == next + 1 &&
	   a.res.modseq != 0, "result: uids %u-%u", a.res.first_uid,
	   a.res.last_uid);
	is(tu_messages(idx), before + 2, "visible after the callback");
	is(mix_txn_begin(idx, &t), 0, "begin");
	is(mix_txn_commit_async(&t, MIX_DURABILITY_NONE, NULL, NULL),
	   MIX_EINVAL, "async commit without callback refused");
	is(t, NULL, "and the transaction was freed");
}

static void test_readonly(const char *dir)
{
	struct mix_index *ro;
	struct mix_txn *t;
	uint32_t id;
	int ret = mix_index_open(engine, dir, MIX_OPEN_READONLY, &ro);
	is(ret, 0, "read-only open beside the writer: %s",
	   ret ? mix_last_error() : "ok");
	if (ret)
		return;
	ok(tu_messages(ro) > 0, "read-only index sees %u messages",
	   tu_messages(ro));
	is(mix_txn_begin(ro, &t), MIX_EREADONLY, "begin refused");
	is(mix_index_ext_register(ro, "x.z", 4, 4, 0, &id), MIX_EREADONLY,
	   "register refused");
	is(mix_index_close(&ro), 0, "closed");
	is(mix_index_open(engine, dir, MIX_OPEN_READONLY | MIX_OPEN_CREATE, &ro),
	   MIX_EINVAL, "READONLY|CREATE refused");
}

/* The writer-checked precondition on extension header bytes
 * (mix_txn_ext_hdr_require, internal; the mailbox list chains its
 * changes with it): a transaction whose bytes no longer match fails
 * alone with -EAGAIN and changes nothing, even inside one batch. */
static void test_require(struct mix_index *idx)
{
	uint32_t ext, zero = 0, one = 1, two = 2, before, after;
	struct mix_txn *t1, *t2;
	int r1 = 1, r2 = 1;

	is(mix_index_ext_register(idx, "counter", 0, 4, 8, &ext), 0,
	   "require: extension registered");
	mix_read_lock();
	before = mix_snap_messages_count(mix_index_snap(idx));
	mix_read_unlock();
	/* t1 and t2 both built on counter 0; t1 moves it to 1 */
	if (mix_txn_begin(idx, &t1) < 0 || mix_txn_begin(idx, &t2) < 0)
		BAIL("txn begin: %s", mix_last_error());
	is(mix_txn_ext_hdr_require(t1, ext, 4, &zero, 4), 0, "require added");
	mix_txn_ext_hdr_set(t1, ext, 4, &one, 4);
	mix_txn_append(t1, 0, NULL, NULL);
	mix_txn_ext_hdr_require(t2, ext, 4, &zero, 4);
	mix_txn_ext_hdr_set(t2, ext, 4, &two, 4);
	mix_txn_append(t2, 0, NULL, NULL);
	r1 = mix_txn_commit(&t1, MIX_DURABILITY_NONE, NULL);
	r2 = mix_txn_commit(&t2, MIX_DURABILITY_NONE, NULL);
	is(r1, 0, "require: the first transaction built on 0 commits");
	is(r2, -EAGAIN, "require: the second, built on 0 too, fails with "
	   "-EAGAIN (%s)", mix_last_error());
	mix_read_lock();
	{
		const struct mix_snap *s = mix_index_snap(idx);
		size_t size = 0;
		const uint8_t *h = mix_snap_ext_hdr(s, ext, &size);
		uint32_t v = 0;
		if (h && size == 8)
			memcpy(&v, h + 4, 4);
		is(v, 1, "require: the counter is the first one's");
		after = mix_snap_messages_count(s);
	}
	mix_read_unlock();
	is(after, before + 1, "require: only the first one's append landed");
	is(mix_txn_begin(idx, &t1), 0, "require: begin");
	is(mix_txn_ext_hdr_require(t1, ext, 6, &zero, 4), MIX_EINVAL,
	   "require: bytes outside the header refused");
	mix_txn_abort(&t1);
}

int main(void)
{
	struct mix_engine_config cfg;
	struct mix_engine *bad;
	struct mix_index *idx;
	char *dir = tu_tmpdir("txn");

	mix_engine_config_init(&cfg);
	cfg.writer_threads = 0;
	is(mix_engine_create(&cfg, &bad), MIX_EINVAL, "0 writer threads refused");
	cfg.writer_threads = 2;
	cfg.log_rotate_size = 100;
	is(mix_engine_create(&cfg, &bad), MIX_EINVAL, "100-byte rotation refused");
	cfg.log_rotate_size = 1 << 20;
	is(mix_engine_create(&cfg, &engine), 0, "engine with 2 writers");
	is(mix_index_open(engine, dir, 0, &idx), MIX_ENOTFOUND,
	   "open without CREATE of an empty directory: MIX_ENOTFOUND");
	is(mix_index_open(engine, dir, MIX_OPEN_CREATE, &idx), 0, "created");
	test_bad_args(idx);
	test_ext(idx);
	test_async(idx);
	test_require(idx);
	test_readonly(dir);
	is(mix_engine_free(&engine), MIX_EINVAL,
	   "engine free with an open index refused");
	ok(engine != NULL, "engine still there");
	ok(mix_index_close(&idx) == 0 && idx == NULL, "closed");
	ok(mix_engine_free(&engine) == 0 && engine == NULL, "engine freed");
	ok(strcmp(mix_strerror(MIX_ECORRUPT), "index file corrupt") == 0 &&
	   strcmp(mix_strerror(-2), "No such file or directory") == 0,
	   "mix_strerror knows library and system codes");
	tu_rmdir_r(dir);
	free(dir);
	return tap_done();
}
