/*
 * mix_version(): the library's own version, compiled in from
 * include/mix/version.h, so that a program can compare the headers it was
 * built with (MIX_VERSION_*) against the library it runs with
 * (docs/abi.md).  No state; any thread.
 */
#include <stddef.h>

#include "mix/version.h"

MIX_API const char *mix_version(int *major_r, int *minor_r, int *patch_r)
{
	if (major_r)
		*major_r = MIX_VERSION_MAJOR;
	if (minor_r)
		*minor_r = MIX_VERSION_MINOR;
	if (patch_r)
		*patch_r = MIX_VERSION_PATCH;
	return MIX_VERSION_STRING;
}
