/*
 * Error reporting inside the engine: every failing path returns a code and
 * records a message for the calling thread (mix_last_error()).  Messages
 * name the file, the field or offset, and what was expected.
 */
#ifndef MIX_ERR_H
#define MIX_ERR_H

#include <errno.h>

#include "mix/mix.h"

#if defined(__GNUC__)
#define MIX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MIX_PRINTF(f, a)
#endif

#define MIX_INTERNAL __attribute__((visibility("hidden")))

/* Record a message for the calling thread and return code (negative). */
int mix_err(int code, const char *fmt, ...) MIX_PRINTF(2, 3);

/* Same, for a system error: the message gets ": strerror(errno)" appended
 * and -errno is returned (errno must be set; EIO if it is 0). */
int mix_err_sys(const char *fmt, ...) MIX_PRINTF(1, 2);

/* Out of memory: -ENOMEM with a message naming the function, so that
 * mix_last_error() never shows an earlier call's message for it. */
#define MIX_ENOMEM() mix_err(-ENOMEM, "out of memory (%s)", __func__)

/* Clear the calling thread's message. */
void mix_err_clear(void);

/* Copy the calling thread's current message (for handing it to another
 * thread, e.g. from the writer to a committer). */
void mix_err_copy(char *buf, size_t size);

/* Set the calling thread's message to msg verbatim and return code. */
int mix_err_set(int code, const char *msg);

#endif
