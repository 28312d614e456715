/*
 * The failure report of the step-driven model tests (tests/list-model.h's
 * users, test-virtual-lifecycle.c): fail() prints "step N (last
 * operation): what was seen, what was expected" as a TAP diagnostic and
 * counts it; the test's final ok() reads nfail.  The first 10 are
 * printed.  The test sets step and lastop as it goes.
 */
#ifndef MIX_TEST_STEPFAIL_H
#define MIX_TEST_STEPFAIL_H

#include <stdarg.h>
#include <stdio.h>

static long nfail, step;
static char lastop[200];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (nfail++ >= 10)
		return;
	printf("#   step %ld (%s): ", step, lastop);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

#endif
