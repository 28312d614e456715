/*
 * Helpers shared by the stress programs (stress/validate.c, stress/bench.c):
 * a monotonic clock in nanoseconds, a xorshift64* generator with a
 * printed, replayable seed, strict option parsing that exits with status 2
 * on a bad value, directory helpers, medians, the process's resident
 * set size and malloc's bytes in use.  Header-only: every function is
 * static inline, so a program that does not use one gets no warning and
 * no code.
 *
 * Nothing here calls into mix; the programs use only include/mix/mix.h.
 */
#ifndef MIX_STRESS_H
#define MIX_STRESS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- time --------------------------------------------------------------- */

static inline uint64_t st_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double st_secs_since(uint64_t start_ns)
{
	return (double)(st_now_ns() - start_ns) / 1e9;
}

/* ---- failures of the program itself (not of the engine) ----------------- */

/* Print "prog: message" and exit 2: a setup step failed (bad option, cannot
 * create a directory, the engine refused to open).  Distinct from exit 1,
 * which the validate program keeps for a violated invariant. */
static inline void st_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static inline void st_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* ---- random numbers ----------------------------------------------------- */

/* xorshift64*: tiny, good enough for picking UIDs, never zero state. */
static inline uint64_t st_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform-ish in [0, n); 0 when n == 0. */
static inline uint32_t st_rand_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)((st_rand(s) >> 11) % n) : 0;
}

/* Uniform-ish in [lo, hi]. */
static inline uint32_t st_rand_range(uint64_t *s, uint32_t lo, uint32_t hi)
{
	return lo + st_rand_below(s, hi - lo + 1);
}

/* 1 with probability pct/100. */
static inline int st_chance(uint64_t *s, unsigned pct)
{
	return st_rand_below(s, 100) < pct;
}

/* A per-thread stream derived from the run's seed (splitmix64 step), so
 * that threads do not share a generator and a seed replays the choices
 * each thread makes (not their interleaving). */
static inline uint64_t st_seed_derive(uint64_t seed, uint64_t stream)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull * (stream + 1);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}

/* The run's seed: the --seed option if given, else $MIX_SEED, else the
 * clock.  The caller prints it. */
static inline uint64_t st_seed_pick(const char *opt)
{
	const char *s = opt ? opt : getenv("MIX_SEED");
	struct timespec ts;
	if (s && *s) {
		char *end;
		unsigned long long v;
		errno = 0;
		v = strtoull(s, &end, 0);
		if (errno || *end)
			st_die("bad seed '%s'", s);
		return v;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
}

/* ---- option parsing ----------------------------------------------------- */

/* Parse an unsigned decimal/hex option value in [min, max] or exit 2. */
static inline uint64_t st_opt_u64(const char *name, const char *arg,
				  uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v;
	if (!arg || !*arg || *arg == '-')
		st_die("--%s: expected a number, got '%s'", name,
		       arg ? arg : "");
	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || *end)
		st_die("--%s: expected a number, got '%s'", name, arg);
	if (v < min || v > max)
		st_die("--%s: %llu is outside %llu..%llu", name, v,
		       (unsigned long long)min, (unsigned long long)max);
	return v;
}

/* Parse a non-negative decimal number of seconds (fractions allowed). */
static inline double st_opt_secs(const char *name, const char *arg,
				 double min, double max)
{
	char *end;
	double v;
	if (!arg || !*arg)
		st_die("--%s: expected seconds", name);
	errno = 0;
	v = strtod(arg, &end);
	if (errno || *end || !(v >= min && v <= max))
		st_die("--%s: '%s' is not a number of seconds in %g..%g",
		       name, arg, min, max);
	return v;
}

/* ---- directories -------------------------------------------------------- */

/* Make sure dir exists (creating one level) or exit 2. */
static inline void st_mkdir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		st_die("mkdir %s: %s", dir, strerror(errno));
}

/* base/name as a new malloc'd string; the directory is created. */
static inline char *st_subdir(const char *base, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", base, name) < 0)
		st_die("out of memory");
	st_mkdir(p);
	return p;
}

/* Remove dir and everything below it (best effort). */
static inline void st_rmdir_r(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     e->d_name) >= sizeof(path))
			continue;   /* cannot be ours: too long */
		if (unlink(path) < 0 && errno == EISDIR)
			st_rmdir_r(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Size of dir/name in bytes, or 0 if it cannot be stat()ed. */
static inline uint64_t st_file_size(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Copy from_dir/name to to_dir/name.  Returns 0 or -errno (-ENOENT when
 * the source does not exist). */
static inline int st_copy_file(const char *from_dir, const char *to_dir,
			       const char *name)
{
	char src[4096], dst[4096], buf[65536];
	FILE *in, *out;
	size_t n;
	int ret = 0;

	snprintf(src, sizeof(src), "%s/%s", from_dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", to_dir, name);
	if (!(in = fopen(src, "rb")))
		return -errno;
	if (!(out = fopen(dst, "wb"))) {
		ret = -errno;
		fclose(in);
		return ret;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			ret = -EIO;
			break;
		}
	if (ferror(in))
		ret = -EIO;
	if (fclose(out) != 0 && ret == 0)
		ret = -errno;
	fclose(in);
	return ret;
}

/* ---- statistics --------------------------------------------------------- */

static inline int st_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v in place); 0 when n == 0. */
static inline double st_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), st_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The p-th percentile (0..100, nearest rank) of v[0..n) (sorts v). */
static inline double st_percentile(double *v, size_t n, double p)
{
	size_t i;
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), st_cmp_double);
	i = (size_t)(p / 100.0 * (double)n);
	return v[i < n ? i : n - 1];
}

/* ---- memory ------------------------------------------------------------- */

/* A "Name:   N kB" field of /proc/self/status in bytes, or 0. */
static inline uint64_t st_proc_status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t len = strlen(field);
	uint64_t v = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, len) && line[len] == ':') {
			v = strtoull(line + len + 1, NULL, 10) * 1024;
			break;
		}
	}
	fclose(f);
	return v;
}

/* Resident set size in bytes (VmRSS = RssAnon + RssFile + RssShmem). */
static inline uint64_t st_rss_bytes(void)
{
	return st_proc_status_kb("VmRSS");
}

/* Bytes malloc has handed out and not had back (all arenas, mmapped
 * blocks included), or 0 where glibc's mallinfo2 is missing.  Unlike
 * VmRSS it falls when memory is freed: glibc keeps freed pages resident
 * until it trims them, so VmRSS is close to a high-water mark.  Takes
 * every arena's lock: call it now and then, not in a loop. */
static inline uint64_t st_heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
	struct mallinfo2 mi = mallinfo2();
	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#else
	return 0;
#endif
}

/* ---- figures (benchmark programs) ------------------------------------- */

/* "1k", "100k", "1m" for names of figures. */
static inline const char *st_size_name(uint32_t n, char *buf, size_t size)
{
	if (n % 1000000 == 0)
		snprintf(buf, size, "%um", n / 1000000);
	else if (n % 1000 == 0)
		snprintf(buf, size, "%uk", n / 1000);
	else
		snprintf(buf, size, "%u", n);
	return buf;
}

/* One `name value unit` line. */
static inline void st_figure(const char *name, double value, const char *unit)
{
	if (value != 0 && (value >= 1e7 || value < 0.01))
		printf("%s %.3e %s\n", name, value, unit);
	else
		printf("%s %.4g %s\n", name, value, unit);
	fflush(stdout);
}

/* The disk's own rate: 64-byte append + fdatasync in a loop on a file in
 * dir for about secs (what one durable commit cannot beat without
 * grouping).  Syncs per second. */
static inline double st_fdatasync_rate(const char *dir, double secs)
{
	char path[4096], buf[64];
	uint64_t t0, n = 0;
	off_t off = 0;
	int fd;

	memset(buf, 'x', sizeof(buf));
	snprintf(path, sizeof(path), "%s/fdatasync.test", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		st_die("open %s: %s", path, strerror(errno));
	t0 = st_now_ns();
	while (n % 16 != 0 || st_secs_since(t0) < secs) {
		if (pwrite(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf) ||
		    fdatasync(fd) < 0)
			st_die("write/fdatasync %s: %s", path, strerror(errno));
		off += (off_t)sizeof(buf);
		n++;
	}
	secs = st_secs_since(t0);
	close(fd);
	unlink(path);
	return n / secs;
}

/* ---- flag changes that always change something ------------------------ */

/* Walks UIDs offset+1, offset+1+stride, ... of 1..messages and gives
 * each pass flags different from the previous one, so that every REPLACE
 * is an effective change (no no-op commits in the figures).  Every
 * st_toggler_init(..., new_phase = 1) takes a flag pair no earlier phase
 * used (records start with flags 0), so a new set of togglers never
 * repeats what an old one left behind.  Not thread-safe to init. */
struct toggler {
	uint32_t messages, stride, offset, uid, pass;
	uint8_t flags[2];
};

static inline void toggler_init(struct toggler *tg, uint32_t messages,
				uint32_t stride, uint32_t offset,
				int new_phase)
{
	static unsigned phase;
	unsigned p;
	if (new_phase)
		phase++;
	p = phase % 31; /* pairs of values in 1..0x3e */
	tg->messages = messages;
	tg->stride = stride;
	tg->offset = offset;
	tg->uid = offset + 1;
	tg->pass = 0;
	tg->flags[0] = (uint8_t)(2 * p + 1);
	tg->flags[1] = (uint8_t)(2 * p + 2);
}

/* The flags of the current UID. */
static inline uint8_t toggler_flags(const struct toggler *tg)
{
	return tg->flags[tg->pass & 1];
}

/* On to the next UID (and the next pass after the last). */
static inline void toggler_next(struct toggler *tg)
{
	tg->uid += tg->stride;
	if (tg->uid > tg->messages) {
		tg->uid = tg->offset + 1;
		tg->pass++;
	}
}

#endif
