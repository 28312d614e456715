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

/* One check: print ok / not ok with the description; count failures. */
static inline int tap_vok(int cond, const char *file, int line,
			  const char *fmt, va_list ap)
{
	tap_n++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
	vprintf(fmt, ap);
	putchar('\n');
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

static inline int tap_ok(int cond, const char *expr, const char *file, int line,
			 const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static inline int tap_ok(int cond, const char *expr, const char *file, int line,
			 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cond = tap_vok(cond, file, line, fmt, ap);
	va_end(ap);
	/* what was expected to hold; values are printed by is() and
	 * is_str(), or by a diag() the test adds */
	if (!cond && expr)
		printf("#   expected true: %s\n", expr);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), #cond, __FILE__, __LINE__, __VA_ARGS__)

/* is(): integers; prints both values on failure; returns 1 if equal. */
static inline int tap_is(long long got, long long want, const char *file,
			 int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static inline int tap_is(long long got, long long want, const char *file,
			 int line, const char *fmt, ...)
{
	va_list ap;
	int c;
	va_start(ap, fmt);
	c = tap_vok(got == want, file, line, fmt, ap);
	va_end(ap);
	if (!c)
		diag("  got: %lld (0x%llx)  expected: %lld (0x%llx)", got,
		     (unsigned long long)got, want, (unsigned long long)want);
	return c;
}
#define is(got, want, ...) \
	tap_is((long long)(got), (long long)(want), __FILE__, __LINE__, \
	       __VA_ARGS__)

/* is_str(): strings (NULL allowed); prints both on failure. */
static inline int tap_is_str(const char *got, const char *want,
			     const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static inline int tap_is_str(const char *got, const char *want,
			     const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int c;
	va_start(ap, fmt);
	c = tap_vok(got && want && strcmp(got, want) == 0, file, line, fmt,
		    ap);
	va_end(ap);
	if (!c)
		diag("  got: '%s'  expected: '%s'", got ? got : "(null)",
		     want ? want : "(null)");
	return c;
}
#define is_str(got, want, ...) \
	tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

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
