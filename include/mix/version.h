/*
 * mix — version of the public API (included by mix/mix.h).
 *
 * MIX_VERSION_MAJOR/MINOR/PATCH are the version of the headers a program
 * was compiled with; mix_version() returns the version of the library it
 * runs with.  The shared library's SONAME is libmix.so.MIX_VERSION_MAJOR
 * (docs/abi.md): a program built against major N runs with any libmix.so.N
 * whose minor is at least the headers' minor.  A program that needs a
 * function added in minor M checks at run time:
 *
 *	int major, minor;
 *	mix_version(&major, &minor, NULL);
 *	if (major != MIX_VERSION_MAJOR || minor < M) ...
 *
 * The Makefile reads the three numbers from this file (VERSION, SONAME,
 * mix.pc); change them here only.
 */
#ifndef MIX_VERSION_H
#define MIX_VERSION_H

#define MIX_VERSION_MAJOR 0
#define MIX_VERSION_MINOR 1
#define MIX_VERSION_PATCH 0

/* One number that compares in version order, e.g.
 * #if MIX_VERSION_NUMBER >= MIX_VERSION_ENCODE(0, 2, 0) */
#define MIX_VERSION_ENCODE(major, minor, patch) \
	(((major) << 16) | ((minor) << 8) | (patch))
#define MIX_VERSION_NUMBER \
	MIX_VERSION_ENCODE(MIX_VERSION_MAJOR, MIX_VERSION_MINOR, \
			   MIX_VERSION_PATCH)

#define MIX_VERSION_STR_(x) #x
#define MIX_VERSION_STR(x) MIX_VERSION_STR_(x)
/* "MAJOR.MINOR.PATCH" */
#define MIX_VERSION_STRING \
	MIX_VERSION_STR(MIX_VERSION_MAJOR) "." \
	MIX_VERSION_STR(MIX_VERSION_MINOR) "." \
	MIX_VERSION_STR(MIX_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

#ifndef MIX_API
#if defined(__GNUC__)
#define MIX_API __attribute__((visibility("default")))
#else
#define MIX_API
#endif
#endif

/* The version of the library linked at run time (not of these headers):
 * stores its numbers in *major_r, *minor_r and *patch_r (each may be
 * NULL) and returns "MAJOR.MINOR.PATCH", a static string.  Any thread,
 * any context (inside a read-side section, from a callback, before any
 * engine exists); cannot fail. */
MIX_API const char *mix_version(int *major_r, int *minor_r, int *patch_r);

#ifdef __cplusplus
}
#endif

#endif
