/*
 * Backends of a virtual mailbox by name pattern (engine/virtual-list.c,
 * docs/virtual.md "Backends by name pattern"): mix_virtual_resolve over a
 * mailbox list, with exclusions, placeholders left out, each mailbox
 * once; and a virtual mailbox whose backends are named by list id keeps
 * its virtual UIDs when a backend is renamed, while a rename out of the
 * pattern drops it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mix/mix.h"
#include "tap.h"
#include "testutil.h"

static struct mix_engine *E;

/* "a,b,c" of the resolved names, for comparison */
static void names(const struct mix_virtual_match *m, uint32_t n, char *buf,
		  size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i ? "," : "", m[i].name);
}

static void check(struct mix_list *l, const char *const *pats, uint32_t n,
		  const char *want, const char *what)
{
	struct mix_virtual_match *m = NULL;
	uint32_t count = 0;
	char got[512];
	int ret = mix_virtual_resolve(l, pats, n, &m, &count);
	if (!is(ret, 0, "%s: resolved (%s)", what, ret ? mix_last_error()
		: "ok"))
		return;
	names(m, count, got, sizeof(got));
	is_str(got, want, "%s", what);
	mix_virtual_matches_free(m, count);
}

static uint32_t create(struct mix_list *l, const char *name)
{
	uint32_t id = 0;
	if (mix_list_create(l, name, strlen(name), NULL, &id) < 0)
		BAIL("create %s: %s", name, mix_last_error());
	return id;
}

/* The virtual UIDs of the messages of backend id_name... simply: the
 * list of (virtual uid) of the virtual index, as "1,2,3". */
static void vuids(struct mix_virtual *v, char *buf, size_t size)
{
	struct mix_iter it;
	struct mix_record rec;
	size_t len = 0;
	buf[0] = '\0';
	mix_read_lock();
	mix_iter_init(&it, mix_index_snap(mix_virtual_index(v)), 1);
	while (mix_iter_next(&it, &rec) && len < size)
		len += (size_t)snprintf(buf + len, size - len, "%s%u",
					len ? "," : "", rec.uid);
	mix_read_unlock();
}

static void test_follow(const char *dir, struct mix_list *l)
{
	static const char *const pats[] = { "Work/*" };
	struct mix_virtual_backend b[4];
	char bname[4][16];
	struct mix_index *idx[4] = { NULL };
	struct mix_virtual_match *m = NULL;
	struct mix_virtual_def def;
	struct mix_virtual *v;
	uint32_t n = 0, i;
	char before[256], after[256], *vdir, *bdir;

	create(l, "Work/a");
	create(l, "Work/b");
	if (mix_virtual_resolve(l, pats, 1, &m, &n) < 0 || n != 2)
		BAIL("resolve Work/*: %s (%u)", mix_last_error(), n);
	for (i = 0; i < n; i++) {
		/* the storage names mailboxes by id: a rename moves no file */
		bdir = tu_subdir(dir, m[i].id_name + 1);
		if (mix_index_open(E, bdir, MIX_OPEN_CREATE, &idx[i]) < 0)
			BAIL("open %s: %s", bdir, mix_last_error());
		free(bdir);
		tu_append(idx[i], 2 + i, 0);
		snprintf(bname[i], sizeof(bname[i]), "%s", m[i].id_name);
		b[i].name = bname[i];
		b[i].index = idx[i];
	}
	vdir = tu_subdir(dir, "virtual");
	memset(&def, 0, sizeof(def));
	def.backends = b;
	def.backend_count = n;
	def.rule = "ALL";
	if (mix_virtual_open(E, vdir, &def, &v) < 0 ||
	    mix_virtual_sync(v, MIX_VIRTUAL_SYNC_EXPUNGE, NULL) < 0)
		BAIL("virtual: %s", mix_last_error());
	free(vdir);
	vuids(v, before, sizeof(before));
	is_str(before, "1,2,3,4,5", "5 virtual messages from Work/a and "
	       "Work/b");
	mix_virtual_matches_free(m, n);

	/* rename Work/b -> Work/c: same id, same backend name, same UIDs */
	if (mix_list_rename(l, "Work/b", 6, "Work/c", 6, NULL, NULL) < 0)
		BAIL("rename: %s", mix_last_error());
	if (mix_virtual_resolve(l, pats, 1, &m, &n) < 0)
		BAIL("resolve: %s", mix_last_error());
	is(n, 2, "after the rename: still two backends");
	is_str(n == 2 ? m[1].name : "", "Work/c", "the renamed one by its "
	       "new name");
	is_str(n == 2 ? m[1].id_name : "", b[1].name, "with the same id name");
	mix_virtual_matches_free(m, n);
	is(mix_virtual_set_backends(v, b, 2), 0, "same backends set again");
	mix_virtual_sync(v, MIX_VIRTUAL_SYNC_EXPUNGE, NULL);
	vuids(v, after, sizeof(after));
	is_str(after, before, "a rename keeps the virtual UIDs");

	/* rename out of the pattern: resolved without it, its messages go */
	if (mix_list_rename(l, "Work/c", 6, "Old", 3, NULL, NULL) < 0)
		BAIL("rename out: %s", mix_last_error());
	if (mix_virtual_resolve(l, pats, 1, &m, &n) < 0)
		BAIL("resolve: %s", mix_last_error());
	is(n, 1, "renamed out of Work/*: one backend left");
	mix_virtual_matches_free(m, n);
	is(mix_virtual_set_backends(v, b, 1), 0, "backends set to Work/a");
	mix_virtual_sync(v, MIX_VIRTUAL_SYNC_EXPUNGE, NULL);
	vuids(v, after, sizeof(after));
	is_str(after, "1,2", "its messages left the virtual mailbox");

	mix_virtual_close(&v);
	for (i = 0; i < 2; i++)
		mix_index_close(&idx[i]);
}

int main(void)
{
	static const char *const all[] = { "*" };
	static const char *const no_trash[] = { "-Trash", "*" };
	static const char *const inbox_kids[] = { "INBOX/*" };
	static const char *const top[] = { "inbox", "%", "-Junk" };
	static const char *const twice[] = { "INBOX*", "*/a" };
	static const char *const bad[] = { "ok", NULL };
	struct mix_virtual_match *m = (void *)1;
	struct mix_list_config cfg;
	struct mix_list *l;
	uint32_t n = 7;
	char *dir = tu_tmpdir("vlist"), *ldir;

	if (mix_engine_create(NULL, &E) < 0)
		BAIL("engine: %s", mix_last_error());
	ldir = tu_subdir(dir, "list");
	mix_list_config_init(&cfg);
	cfg.durability = MIX_DURABILITY_NONE;
	l = tu_list_open(E, ldir, &cfg);
	free(ldir);
	create(l, "INBOX");
	create(l, "INBOX/a");
	create(l, "INBOX/b");
	create(l, "Trash");
	create(l, "Junk");
	create(l, "Archive/2024");  /* Archive: a \Noselect placeholder */

	check(l, all, 1, "Archive/2024,INBOX,INBOX/a,INBOX/b,Junk,Trash",
	      "*: every selectable mailbox, no placeholder");
	check(l, no_trash, 2, "Archive/2024,INBOX,INBOX/a,INBOX/b,Junk",
	      "-Trash first: exclusions apply after the includes");
	check(l, inbox_kids, 1, "INBOX/a,INBOX/b", "INBOX/*");
	check(l, top, 3, "INBOX,Trash", "inbox (any case), %, -Junk");
	check(l, twice, 2, "INBOX,INBOX/a,INBOX/b",
	      "a mailbox two patterns match is listed once");
	check(l, NULL, 0, "", "no patterns: nothing");
	is(mix_virtual_resolve(l, bad, 2, &m, &n), MIX_EINVAL,
	   "a NULL pattern refused (%s)", mix_last_error());
	ok(m == NULL && n == 0, "nothing returned on error");
	mix_read_lock();
	is(mix_virtual_resolve(l, all, 1, &m, &n), MIX_EDEADLK,
	   "inside a read-side section: MIX_EDEADLK");
	mix_read_unlock();

	test_follow(dir, l);

	is(mix_list_close(&l), 0, "list closed");
	is(mix_engine_free(&E), 0, "engine freed");
	tu_rmdir_r(dir);
	free(dir);
	return tap_done();
}
