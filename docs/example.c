/*
 * docs/example.c — the smallest complete mix program (docs/api.md).
 * Creates an index in argv[1] (an empty directory; a new one under /tmp
 * if none is given), appends three messages, sets \Seen on one, then
 * reads everything back and checks it; last, an IMAP EXPUNGE.  `make check` builds and runs this
 * (tests/run-example.sh), so it cannot drift from the library.
 * Outside the tree:  cc example.c $(pkg-config --cflags --libs mix)
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <mix/mix.h>

static const char *const flag_names[] = { "\\Answered", "\\Flagged",
	"\\Deleted", "\\Seen", "\\Draft", "\\Recent" };  /* bits 0x01..0x20 */
static int failures;

/* Report a failed call: the code's name and this thread's message (which
 * names the file and field).  Returns the exit status for main. */
static int fail(const char *what, int ret)
{
	fprintf(stderr, "%s: %s: %s\n", what, mix_strerror(ret),
		mix_last_error());
	return 1;
}

static void expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "example: check failed: %s\n", what);
		failures++;
	}
}

int main(int argc, char **argv)
{
	static const char *const keywords[] = { "$Important", "todo", NULL };
	static const uint8_t want_flags[3] = { MIX_FLAG_SEEN,
					       MIX_FLAG_FLAGGED, 0 };
	char tmpl[] = "/tmp/mix-example.XXXXXX";
	const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
	struct mix_engine *engine;
	struct mix_index *index;
	struct mix_txn *txn = NULL;
	struct mix_commit_result app, seen, xp;
	struct mix_view *view;
	struct mix_view_changes ch;
	struct mix_uid_range range;
	struct mix_iter it;
	struct mix_record rec;
	const struct mix_snap *snap;
	uint32_t count, n = 0, k, nkw;
	uint64_t highest;
	int ret;

	if (dir == NULL) {
		perror("mkdtemp");
		return 1;
	}
	printf("index in %s\n", dir);
	if ((ret = mix_engine_create(NULL, &engine)) < 0)
		return fail("mix_engine_create", ret);
	if ((ret = mix_index_open(engine, dir, MIX_OPEN_CREATE, &index)) < 0)
		return fail("mix_index_open", ret);

	/* Three appends in one transaction; UIDs are assigned at commit. */
	if ((ret = mix_txn_begin(index, &txn)) < 0 ||
	    (ret = mix_txn_append(txn, 0, NULL, NULL)) < 0 ||
	    (ret = mix_txn_append(txn, MIX_FLAG_FLAGGED, keywords, NULL)) < 0 ||
	    (ret = mix_txn_append(txn, 0, NULL, NULL)) < 0 ||
	    (ret = mix_txn_commit(&txn, MIX_DURABILITY_SYNC, &app)) < 0)
		return fail("append", ret); /* exiting: no need to abort txn */
	printf("appended UIDs %" PRIu32 "..%" PRIu32 " at modseq %" PRIu64 "\n",
	       app.first_uid, app.last_uid, app.modseq);
	expect(app.last_uid - app.first_uid == 2 && !app.no_changes, "3 UIDs");

	/* \Seen on the first message; NONE: acknowledged once visible. */
	range.first = range.last = app.first_uid;
	if ((ret = mix_txn_begin(index, &txn)) < 0 ||
	    (ret = mix_txn_flags(txn, &range, 1, MIX_MODIFY_ADD,
				 MIX_FLAG_SEEN)) < 0 ||
	    (ret = mix_txn_commit(&txn, MIX_DURABILITY_NONE, &seen)) < 0)
		return fail("flags", ret);
	printf("\\Seen on UID %" PRIu32 " at modseq %" PRIu64 "\n",
	       range.first, seen.modseq);
	expect(seen.modseq > app.modseq, "a higher modseq for the 2nd commit");

	/* Read: no locks; the snapshot is valid until mix_read_unlock(). */
	mix_read_lock();
	snap = mix_index_snap(index);
	count = mix_snap_messages_count(snap);
	highest = mix_snap_highest_modseq(snap);
	printf("messages %" PRIu32 ", highest modseq %" PRIu64 "\n", count,
	       highest);
	mix_iter_init(&it, snap, 1);
	while (n < 3 && mix_iter_next(&it, &rec)) {
		printf("uid %" PRIu32 " flags", rec.uid);
		for (k = 0; k < 6; k++)
			if (rec.flags & (1u << k))
				printf(" %s", flag_names[k]);
		printf(" modseq %" PRIu64 " keywords", rec.modseq);
		for (k = 0, nkw = 0; k < mix_snap_keyword_count(snap); k++) {
			if (mix_record_has_keyword(&rec, k)) {
				printf(" %s", mix_snap_keyword_name(snap, k));
				nkw++;
			}
		}
		printf("\n");
		expect(rec.uid == app.first_uid + n &&
		       rec.flags == want_flags[n] &&
		       rec.modseq == (n == 0 ? seen.modseq : app.modseq) &&
		       nkw == (n == 1 ? 2u : 0u), "the record as committed");
		n++;
	}
	mix_read_unlock();
	expect(count == 3 && n == 3, "3 messages");
	expect(highest == seen.modseq, "highest modseq = the last commit's");

	/* A session's view (SELECT): its sequence numbers stay put until it
	 * syncs. */
	if ((ret = mix_view_open(index, &view)) < 0)
		return fail("mix_view_open", ret);

	/* IMAP EXPUNGE: \Deleted on the last message, then an expunge the
	 * writer applies to the messages that have \Deleted when it runs
	 * (had another session cleared it in between, the message would
	 * stay); the result names what went. */
	range.first = range.last = app.last_uid;
	if ((ret = mix_txn_begin(index, &txn)) < 0 ||
	    (ret = mix_txn_flags(txn, &range, 1, MIX_MODIFY_ADD,
				 MIX_FLAG_DELETED)) < 0 ||
	    (ret = mix_txn_commit(&txn, MIX_DURABILITY_NONE, NULL)) < 0 ||
	    (ret = mix_txn_begin(index, &txn)) < 0 ||
	    (ret = mix_txn_expunge_deleted(txn, NULL, 0)) < 0 ||
	    (ret = mix_txn_commit(&txn, MIX_DURABILITY_NONE, &xp)) < 0)
		return fail("expunge", ret);
	for (k = 0; k < xp.expunged_count; k++)
		printf("EXPUNGE removed UIDs %" PRIu32 "..%" PRIu32 "\n",
		       xp.expunged[k].first, xp.expunged[k].last);
	expect(xp.expunged_count == 1 &&
	       xp.expunged[0].first == app.last_uid &&
	       xp.expunged[0].last == app.last_uid, "the \\Deleted one went");
	mix_commit_result_free(&xp);
	mix_read_lock();
	count = mix_snap_messages_count(mix_index_snap(index));
	mix_read_unlock();
	expect(count == 2, "2 messages after EXPUNGE");

	/* The session is in the middle of a FETCH, where IMAP forbids
	 * EXPUNGE responses: a holding sync reports flag changes and new
	 * messages but keeps the expunged message, with its sequence number
	 * and last state, until a sync that may send EXPUNGE. */
	if ((ret = mix_view_sync_flags(view, MIX_VIEW_SYNC_HOLD_EXPUNGES,
				       &ch)) < 0)
		return fail("holding sync", ret);
	printf("holding sync: EXISTS %" PRIu32 ", %" PRIu32 " held, "
	       "HIGHESTMODSEQ %" PRIu64 "\n", ch.new_messages_count,
	       ch.held_count, ch.new_highest_modseq);
	expect(ch.expunged_count == 0 && ch.new_messages_count == 3 &&
	       mix_view_lookup_seq(view, 3, &rec, NULL) == MIX_VIEW_EXPUNGED &&
	       rec.uid == app.last_uid, "seq 3 is held, not expunged yet");
	expect(ch.new_highest_modseq < xp.modseq,
	       "HIGHESTMODSEQ stays below the held expunge");
	mix_view_changes_free(&ch);
	/* NOOP: now the EXPUNGE goes out. */
	if ((ret = mix_view_sync(view, &ch)) < 0)
		return fail("sync", ret);
	for (k = 0; k < ch.expunged_count; k++)
		printf("* %" PRIu32 " EXPUNGE\n", ch.expunged_seqs[k]);
	expect(ch.expunged_count == 1 && ch.expunged_seqs[0] == 3 &&
	       ch.new_messages_count == 2, "the held EXPUNGE at NOOP");
	mix_view_changes_free(&ch);
	mix_view_close(&view);

	if ((ret = mix_index_close(&index)) < 0)
		return fail("mix_index_close", ret);
	if ((ret = mix_engine_free(&engine)) < 0)
		return fail("mix_engine_free", ret);
	return failures ? 1 : 0;
}
