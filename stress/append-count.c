/*
 * append-count — the appends benchmark's shape (stress/bench-lmdb.c
 * "append": 100,000 messages in transactions of 1,000, durability NONE,
 * into a fresh index) with nothing else, for counting instructions with
 * callgrind (tools/callgrind-append.sh): a count does not depend on the
 * machine's noise, so a change to the append path can be held to a
 * budget (issue 10: the UID floor within 3 % of before).
 *
 *   append-count DIR [MESSAGES [PER_TXN]]
 *
 * Prints "append_count_messages N msgs" on success; exits 1 on an error
 * (with the library's message).
 */
#include <stdio.h>
#include <stdlib.h>

#include "mix/mix.h"

int main(int argc, char **argv)
{
	struct mix_engine *e;
	struct mix_index *idx;
	unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 100000;
	unsigned long k = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
	unsigned long done = 0, i;

	if (argc < 2 || k == 0) {
		fprintf(stderr, "usage: append-count DIR [MESSAGES [PER_TXN]]\n");
		return 2;
	}
	if (mix_engine_create(NULL, &e) < 0 ||
	    mix_index_open(e, argv[1], MIX_OPEN_CREATE, &idx) < 0) {
		fprintf(stderr, "append-count: %s\n", mix_last_error());
		return 1;
	}
	while (done < n) {
		struct mix_txn *t;
		unsigned long step = n - done < k ? n - done : k;
		if (mix_txn_begin(idx, &t) < 0)
			break;
		for (i = 0; i < step; i++)
			mix_txn_append(t, 0, NULL, NULL);
		if (mix_txn_commit(&t, MIX_DURABILITY_NONE, NULL) < 0)
			break;
		done += step;
	}
	if (done < n || mix_index_close(&idx) < 0 || mix_engine_free(&e) < 0) {
		fprintf(stderr, "append-count: %s\n", mix_last_error());
		return 1;
	}
	printf("append_count_messages %lu msgs\n", done);
	return 0;
}
