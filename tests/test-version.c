/*
 * Versions (engine/version.c, include/mix/version.h; docs/abi.md):
 * mix_version() returns the numbers and the string of the headers this
 * library was built from, accepts NULL pointers, and the macros agree
 * with each other.  A library and headers of different versions (a stale
 * install) fail here as "library ... headers ...".  No randomness.
 */
#include <stdio.h>
#include <string.h>

#include "mix/mix.h"
#include "tap.h"

int main(void)
{
	int major = -1, minor = -1, patch = -1;
	const char *s;
	char want[64];

	tap_plan(8);
	s = mix_version(&major, &minor, &patch);
	is(major, MIX_VERSION_MAJOR, "library major vs headers");
	is(minor, MIX_VERSION_MINOR, "library minor vs headers");
	is(patch, MIX_VERSION_PATCH, "library patch vs headers");
	is_str(s, MIX_VERSION_STRING, "library string vs MIX_VERSION_STRING");
	snprintf(want, sizeof(want), "%d.%d.%d", MIX_VERSION_MAJOR,
		 MIX_VERSION_MINOR, MIX_VERSION_PATCH);
	is_str(MIX_VERSION_STRING, want, "MIX_VERSION_STRING is MAJOR.MINOR.PATCH");
	is_str(mix_version(NULL, NULL, NULL), s, "NULL pointers are allowed");
	is(MIX_VERSION_NUMBER, (MIX_VERSION_MAJOR << 16) |
	   (MIX_VERSION_MINOR << 8) | MIX_VERSION_PATCH,
	   "MIX_VERSION_NUMBER encodes the three numbers");
	ok(MIX_VERSION_ENCODE(0, 2, 0) > MIX_VERSION_ENCODE(0, 1, 255) &&
	   MIX_VERSION_ENCODE(1, 0, 0) > MIX_VERSION_ENCODE(0, 255, 255),
	   "MIX_VERSION_ENCODE compares in version order");
	return tap_failed || tap_n != tap_planned;
}
