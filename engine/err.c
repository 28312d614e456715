/*
 * Per-thread error messages (mix_last_error) and mix_strerror.
 * Each thread has its own buffer; nothing here is shared between threads.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static _Thread_local char err_msg[512];

static const char *const mix_err_names[] = {
	[1] = "index file corrupt",
	[2] = "invalid argument",
	[3] = "index locked by another process",
	[4] = "index poisoned by a failed write; reopen it",
	[5] = "index opened read-only",
	[6] = "unsupported file version or byte order",
	[7] = "no such index",
	[8] = "would wait inside a read-side section",
	[9] = "limit reached",
	[10] = "shutting down",
};

MIX_API const char *mix_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err <= -MIX_EBASE - 1 && err >= -MIX_EBASE - 10)
		return mix_err_names[-err - MIX_EBASE];
	if (err < 0 && err > -MIX_EBASE)
		return strerror(-err);
	return "unknown error";
}

MIX_API const char *mix_last_error(void)
{
	return err_msg;
}

int mix_err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	return code;
}

int mix_err_sys(const char *fmt, ...)
{
	int e = errno ? errno : EIO;
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(err_msg))
		snprintf(err_msg + n, sizeof(err_msg) - n, ": %s", strerror(e));
	return -e;
}

void mix_err_clear(void)
{
	err_msg[0] = '\0';
}

void mix_err_copy(char *buf, size_t size)
{
	snprintf(buf, size, "%s", err_msg);
}

int mix_err_set(int code, const char *msg)
{
	snprintf(err_msg, sizeof(err_msg), "%s", msg);
	return code;
}
