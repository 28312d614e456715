/*
 * libFuzzer target: the main index parser (engine/index-file.c,
 * mix_ifile_parse; docs/format.md §2.5).  Each input runs as it is and
 * with its checksum recomputed (fuzz-common.h).  It must give 0 or a
 * documented error whose message names the file; a file that passes is
 * loaded into a snapshot (mix_builder_from_ifile, as open does) and the
 * snapshot must agree with itself (fuzz-common.h).  Built by `make fuzz`;
 * tests/test-fuzz-regress.c replays the corpus and past findings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-common.h"
#include "index-file.h"

#define FUZZ_IFILE_PATH "fuzz/mix.index"

static int fuzz_ifile_one(const uint8_t *data, size_t size, char *why,
			  size_t why_size)
{
	struct mix_builder b;
	struct mix_ifile f;
	int ret;

	ret = mix_ifile_parse(data, size, FUZZ_IFILE_PATH, &f);
	if (ret < 0)
		return fuzz_check_error(ret, FUZZ_IFILE_PATH, why, why_size);
	if (mix_builder_from_ifile(&b, 1, &f, NULL) < 0) {
		mix_ifile_free(&f);
		return 0;       /* out of memory */
	}
	ret = fuzz_finish(&b, why, why_size);
	mix_ifile_free(&f);
	return ret;
}

int mix_fuzz_ifile(const uint8_t *data, size_t size, char *why,
		   size_t why_size)
{
	return fuzz_both(fuzz_ifile_one, fuzz_fix_ifile, data, size, why,
			 why_size);
}

#ifndef MIX_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512];

	if (mix_fuzz_ifile(data, size, why, sizeof(why)) < 0) {
		fprintf(stderr, "fuzz-ifile: %s\n", why);
		abort();
	}
	return 0;
}
#endif
