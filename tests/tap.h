/*
 * A small TAP producer for mix's tests (run by prove).  Every check prints
 * what it saw and what it expected when it fails.  Header-only.
 */
#ifndef MIX_TAP_H
#define MIX_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed, tap_planned;

static inline void tap_plan(int n) { tap_planned = n; printf("1..%d\n", n); fflush(stdout); }

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* is(): integers; prints both values on failure. */
#define is(got, want, ...) do { \
	long long tap_g_ = (long long)(got), tap_w_ = (long long)(want); \
	if (!tap_ok(tap_g_ == tap_w_, __FILE__, __LINE__, __VA_ARGS__)) \
		diag("  got: %lld (0x%llx)  expected: %lld (0x%llx)", \
		     tap_g_, (unsigned long long)tap_g_, tap_w_, (unsigned long long)tap_w_); \
} while (0)

#define is_str(got, want, ...) do { \
	const char *tap_g_ = (got), *tap_w_ = (want); \
	int tap_c_ = tap_g_ && tap_w_ && strcmp(tap_g_, tap_w_) == 0; \
	if (!tap_ok(tap_c_, __FILE__, __LINE__, __VA_ARGS__)) \
		diag("  got: '%s'  expected: '%s'", tap_g_ ? tap_g_ : "(null)", \
		     tap_w_ ? tap_w_ : "(null)"); \
} while (0)

/* Stop the whole test with a failure (setup went wrong). */
#define BAIL(...) do { printf("Bail out! "); printf(__VA_ARGS__); putchar('\n'); exit(255); } while (0)

/* End: with no plan given, print it now; exit status = failures. */
static inline int tap_done(void)
{
	if (!tap_planned)
		printf("1..%d\n", tap_n);
	else if (tap_planned != tap_n)
		printf("# planned %d tests but ran %d\n", tap_planned, tap_n);
	fflush(stdout);
	return tap_failed ? 1 : (tap_planned && tap_planned != tap_n) ? 1 : 0;
}

#endif
