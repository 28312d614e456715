/*
 * The RCU layer (engine/rcu.c): deferred calls on the engine's reclaim
 * thread.  A deferred call runs only after every read-side section that
 * began before it has ended; calls run in the order they were queued; a
 * lone call runs within the gathering delay without anyone asking;
 * mix_rcu_barrier waits for every call queued before it, from any number
 * of threads at once; and a child process after fork gets a working
 * reclaim thread of its own (a barrier there neither hangs nor runs the
 * parent's in-flight batch twice), also when the fork found a thread
 * inside a read-side section, and when it came in the middle of grace
 * periods, deferrals and barriers of other threads (engine/rcu.c
 * "fork").  Run under TSan by `make tsan` (the children then start no
 * thread: TSan cannot); `make rcu-loop` runs it RCU_LOOP_RUNS times.
 * MIX_RCU_FORKS sets the number of forks of the busy-fork case.
 * The stall diagnostics (mix_rcu_gp_started, mix_rcu_readers_inside) are
 * checked with a thread holding a section while a call waits.  The
 * lock-free queue's wake-ups are checked by calls that must run without
 * a barrier after random pauses (seed: MIX_SEED).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"

#include "rcu.h"
#include "stats.h"

struct call {
	struct mix_rcu_head h;
	uint32_t id;
};

/* The calls that have run, in order (written by the reclaim thread;
 * read after a barrier, whose mutex orders them). */
static uint32_t ran[100000];
static uint32_t nran;
static int order_bad;

static void record(struct mix_rcu_head *h)
{
	struct call *c = caa_container_of(h, struct call, h);
	uint32_t n = __atomic_load_n(&nran, __ATOMIC_RELAXED);
	if (n && ran[n - 1] + 1 != c->id && c->id != 0)
		order_bad = 1;
	ran[n] = c->id;
	__atomic_store_n(&nran, n + 1, __ATOMIC_RELEASE);
	free(c);
}

static void defer_id(uint32_t id)
{
	struct call *c = malloc(sizeof(*c));
	if (!c)
		BAIL("out of memory");
	c->id = id;
	mix_rcu_defer(&c->h, record);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* ---- a reader holding its section ------------------------------------ */

static int reader_in, reader_release;

static void *reader(void *arg)
{
	(void)arg;
	mix_rcu_read_lock();
	__atomic_store_n(&reader_in, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&reader_release, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	mix_rcu_read_unlock();
	return NULL;
}

static void test_grace_period(void)
{
	pthread_t tid;
	uint32_t before;
	int i;

	nran = 0;
	if (pthread_create(&tid, NULL, reader, NULL) != 0)
		BAIL("pthread_create");
	while (!__atomic_load_n(&reader_in, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	before = __atomic_load_n(&nran, __ATOMIC_ACQUIRE);
	defer_id(0);
	/* ten gathering delays: the call would have run by now if the
	 * grace period did not wait for the reader */
	sleep_ms(20);
	is(__atomic_load_n(&nran, __ATOMIC_ACQUIRE), before,
	   "a deferred call does not run while a section that began "
	   "before it is open");
	__atomic_store_n(&reader_release, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2000 && __atomic_load_n(&nran, __ATOMIC_ACQUIRE) ==
				   before; i++)
		sleep_ms(1);
	is(__atomic_load_n(&nran, __ATOMIC_ACQUIRE), before + 1,
	   "it runs once the section ended, without a barrier (%d ms)", i);
	pthread_join(tid, NULL);
}

/* ---- stall diagnostics: mix_rcu_gp_started, mix_rcu_readers_inside ----- */

static pid_t holder_tid;

static void *holder(void *arg)
{
	(void)arg;
	mix_rcu_read_lock();
	__atomic_store_n(&holder_tid, gettid(), __ATOMIC_RELAXED);
	__atomic_store_n(&reader_in, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&reader_release, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	mix_rcu_read_unlock();
	return NULL;
}

/* Is tid among the n first of tids? */
static int has_tid(const pid_t *tids, unsigned n, pid_t tid)
{
	for (unsigned i = 0; i < n; i++)
		if (tids[i] == tid)
			return 1;
	return 0;
}

static void test_stall_diag(void)
{
	pthread_t tid;
	pid_t tids[16];
	uint64_t seq0, seq1 = 0, seq2 = 0, started = 0, t0;
	unsigned n, i;
	uint32_t before;

	mix_rcu_barrier();   /* nothing in flight */
	t0 = mix_rcu_gp_started(&seq0);
	is(t0, 0, "no grace period in progress when nothing is queued");
	reader_in = reader_release = 0;
	if (pthread_create(&tid, NULL, holder, NULL) != 0)
		BAIL("pthread_create");
	while (!__atomic_load_n(&reader_in, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	n = mix_rcu_readers_inside(tids, 16);
	ok(n >= 1 && has_tid(tids, n < 16 ? n : 16, holder_tid),
	   "readers_inside reports the thread holding a section (%u "
	   "inside, tid %d)", n, (int)holder_tid);
	ok(!has_tid(tids, n < 16 ? n : 16, gettid()),
	   "and not this thread, outside any section");
	mix_rcu_read_lock();
	n = mix_rcu_readers_inside(tids, 16);
	mix_rcu_read_unlock();
	ok(has_tid(tids, n < 16 ? n : 16, gettid()) && n >= 2,
	   "this thread inside a section is reported too (%u inside)", n);
	is(mix_rcu_readers_inside(NULL, 0), 1,
	   "a count with no room for tids");

	before = __atomic_load_n(&nran, __ATOMIC_ACQUIRE);
	defer_id(0);
	/* the reclaim thread starts the grace period after its gathering
	 * delay; a generous bound, no timing assertion */
	for (i = 0; i < 20000 && !started; i++) {
		started = mix_rcu_gp_started(&seq1);
		if (!started)
			sleep_ms(1);
	}
	ok(started != 0, "a deferred call queued while a section is held: "
	   "a grace period is in progress (started %llu, after %u polls)",
	   (unsigned long long)started, i);
	ok(seq1 > seq0, "with a new number (%llu, before %llu)",
	   (unsigned long long)seq1, (unsigned long long)seq0);
	ok(started <= mix_now_ns(), "its start is on mix_now_ns's clock "
	   "(%llu <= now)", (unsigned long long)started);
	sleep_ms(5);
	is(mix_rcu_gp_started(&seq2), started,
	   "the same grace period while the section is still held");
	is(seq2, seq1, "the same number");

	__atomic_store_n(&reader_release, 1, __ATOMIC_RELEASE);
	pthread_join(tid, NULL);
	for (i = 0; i < 20000 && __atomic_load_n(&nran, __ATOMIC_ACQUIRE) ==
				   before; i++)
		sleep_ms(1);
	mix_rcu_barrier();
	is(__atomic_load_n(&nran, __ATOMIC_ACQUIRE), before + 1,
	   "after the section ends the grace period completes and the call "
	   "runs");
	t0 = mix_rcu_gp_started(&seq2);
	ok(t0 == 0 && seq2 >= seq1, "no grace period in progress after the "
	   "barrier (started %llu, number %llu >= %llu)",
	   (unsigned long long)t0, (unsigned long long)seq2,
	   (unsigned long long)seq1);
	is(mix_rcu_readers_inside(tids, 16), 0, "no thread inside a section");
}

static void test_lone_call(void)
{
	uint64_t t0 = now_ns(), waited;
	nran = 0;
	defer_id(0);
	while (__atomic_load_n(&nran, __ATOMIC_ACQUIRE) == 0 &&
	       now_ns() - t0 < 5000000000ull)
		sleep_ms(1);
	waited = now_ns() - t0;
	is(nran, 1, "a lone call runs by itself after the gathering delay "
	   "(%.1f ms)", waited / 1e6);
}

static void test_order_and_barrier(void)
{
	uint32_t i, n = 50000;
	nran = 0;
	order_bad = 0;
	for (i = 1; i <= n; i++)
		defer_id(i);
	mix_rcu_barrier();
	is(nran, n, "a barrier waits for every call queued before it");
	ok(!order_bad && ran[0] == 1 && ran[n - 1] == n,
	   "calls ran in the order they were queued");
	mix_rcu_barrier();
	is(nran, n, "a barrier with nothing queued returns");
}

/* ---- no lost wake-up ------------------------------------------------------ */

/*
 * The queue takes no lock: a pusher wakes the reclaim thread only when
 * it sees it asleep (rcu.c ORDER(dq-wake)).  A lost wake-up leaves a
 * call queued with the thread asleep for good; no barrier here, so such
 * a call would never run.  Two threads each queue a call (sometimes a
 * burst of about DQ_BATCH calls, which wakes a gathering thread early)
 * after a random pause that lands in every state of the thread (idle,
 * gathering, in a grace period), then wait for their last call to run
 * by itself, with a generous bound.
 */
#define WAKE_ROUNDS 150

struct flagged {
	struct mix_rcu_head h;
	int ran;
};

static void set_ran(struct mix_rcu_head *h)
{
	struct flagged *f = caa_container_of(h, struct flagged, h);
	__atomic_store_n(&f->ran, 1, __ATOMIC_RELEASE);
}

static uint64_t wake_seed;

static void *waker(void *arg)
{
	uint64_t rnd = wake_seed + (uintptr_t)arg * 0x9e3779b97f4a7c15ull;
	static __thread struct flagged f[80];
	uint32_t round, i, n;
	for (round = 0; round < WAKE_ROUNDS; round++) {
		struct timespec ts = { 0, (long)tu_rand_below(&rnd, 3000) *
					     1000 };
		nanosleep(&ts, NULL);
		n = tu_rand_below(&rnd, 8) == 0 ? 60 + tu_rand_below(&rnd, 10)
						: 1;
		for (i = 0; i < n; i++) {
			f[i].ran = 0;
			mix_rcu_defer(&f[i].h, set_ran);
		}
		for (i = 0; i < 10000 &&
			    !__atomic_load_n(&f[n - 1].ran, __ATOMIC_ACQUIRE);
		     i++)
			sleep_ms(1);
		if (!__atomic_load_n(&f[n - 1].ran, __ATOMIC_ACQUIRE))
			return (void *)(uintptr_t)(round + 1);
		/* the others ran before it (queue order) */
		for (i = 0; i < n; i++)
			if (!__atomic_load_n(&f[i].ran, __ATOMIC_ACQUIRE))
				return (void *)(uintptr_t)(round + 1);
	}
	return NULL;
}

static void test_no_lost_wakeup(void)
{
	pthread_t t[2];
	void *r[2];
	int i;
	wake_seed = tu_seed();
	for (i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, waker,
				   (void *)(uintptr_t)i) != 0)
			BAIL("pthread_create");
	for (i = 0; i < 2; i++)
		pthread_join(t[i], &r[i]);
	ok(!r[0] && !r[1], "%d rounds of 2 threads: every call ran by "
	   "itself, no barrier (first round still waiting after 10 s: "
	   "%u and %u; 0 = none)", WAKE_ROUNDS,
	   (unsigned)(uintptr_t)r[0], (unsigned)(uintptr_t)r[1]);
}

/* ---- many threads deferring and waiting at once ----------------------- */

#define THREADS 4
#define PER_THREAD 20000

static uint32_t count_ran;

static void count(struct mix_rcu_head *h)
{
	__atomic_add_fetch(&count_ran, 1, __ATOMIC_RELAXED);
	free(h);
}

static void *deferrer(void *arg)
{
	uint32_t i, bad = 0;
	(void)arg;
	for (i = 0; i < PER_THREAD; i++) {
		struct mix_rcu_head *h = malloc(sizeof(*h));
		if (!h)
			return (void *)1;
		mix_rcu_read_lock();   /* readers defer too (outside sections
					* in the engine; here it must not
					* matter for the queue) */
		mix_rcu_read_unlock();
		mix_rcu_defer(h, count);
		if (i % 1000 == 999) {
			uint32_t before = i + 1;
			mix_rcu_barrier();
			/* at least this thread's calls have all run */
			if (__atomic_load_n(&count_ran, __ATOMIC_RELAXED) <
			    before)
				bad = 1;
		}
	}
	return (void *)(uintptr_t)bad;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	int i, bad = 0;
	void *r;
	count_ran = 0;
	for (i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, deferrer, NULL) != 0)
			BAIL("pthread_create");
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	mix_rcu_barrier();
	ok(!bad, "each thread's barrier covered that thread's calls");
	is(count_ran, THREADS * PER_THREAD, "every call of %d threads ran once",
	   THREADS);
}

/* ---- fork ----------------------------------------------------------------- */

static void test_fork(void)
{
	int status;
	pid_t pid;

#ifdef MIX_TSAN
	/* TSan cannot start threads in the child of a multi-threaded fork */
	ok(1, "after fork the child's calls run # SKIP under ThreadSanitizer");
	return;
#endif

	/* calls queued and maybe in flight in the parent at fork time */
	for (uint32_t i = 0; i < 1000; i++)
		defer_id(i);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		BAIL("fork");
	if (pid == 0) {
		/* a hang here is the failure this guards against */
		alarm(20);
		count_ran = 0;
		for (int i = 0; i < 100; i++) {
			struct mix_rcu_head *h = malloc(sizeof(*h));
			mix_rcu_defer(h, count);
		}
		mix_rcu_barrier();
		_exit(count_ran == 100 ? 0 : 3);
	}
	mix_rcu_barrier();
	if (waitpid(pid, &status, 0) != pid)
		BAIL("waitpid");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "after fork the child's calls run and its barrier returns "
	   "(status 0x%x)", status);
}

/* Wait for a child; the alarm inside it turns a hang into SIGALRM. */
static int child_status(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) != pid)
		if (errno != EINTR)
			BAIL("waitpid");
	return status;
}

/* Calls that free nothing: the children and the busy threads below do
 * not malloc.  ASan's allocator (GCC 12's libsanitizer) does not lock
 * itself around fork, so a child could hang in malloc when a parent
 * thread was inside it at the fork; that would be a test artefact, not
 * the bug looked for here. */
static void count_nofree(struct mix_rcu_head *h)
{
	(void)h;
	__atomic_add_fetch(&count_ran, 1, __ATOMIC_RELAXED);
}

static struct mix_rcu_head child_heads[100];

/* The child's part: 100 calls and a barrier on a reclaim thread of its
 * own; exit 0 when all ran exactly once. */
static void child_defer_and_exit(void)
{
	/* a hang here is the failure this guards against */
	alarm(20);
	count_ran = 0;
	for (int i = 0; i < 100; i++)
		mix_rcu_defer(&child_heads[i], count_nofree);
	mix_rcu_barrier();
	_exit(count_ran == 100 ? 0 : 3);
}

/* A thread of the parent is inside a section when the process forks:
 * the child has no such thread, and its grace periods must not wait for
 * the copy of its section (liburcu's registry entry of a dead thread). */
static void test_fork_reader_inside(void)
{
	pthread_t tid;
	pid_t pid;
	int status;

#ifdef MIX_TSAN
	ok(1, "a child's grace periods ignore the parent's readers # SKIP "
	   "ThreadSanitizer cannot start threads in the child of a "
	   "multi-threaded fork");
	return;
#endif
	mix_rcu_barrier();   /* no grace period in progress at the fork */
	reader_in = reader_release = 0;
	if (pthread_create(&tid, NULL, reader, NULL) != 0)
		BAIL("pthread_create");
	while (!__atomic_load_n(&reader_in, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		BAIL("fork");
	if (pid == 0)
		child_defer_and_exit();
	__atomic_store_n(&reader_release, 1, __ATOMIC_RELEASE);
	pthread_join(tid, NULL);
	status = child_status(pid);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a fork while another thread is inside a section: the child's "
	   "grace period does not wait for it (status 0x%x, 0 expected; "
	   "0x%x = hung)", status, SIGALRM);
}

/* Forks in the middle of everything: threads deferring, reading,
 * waiting in barriers and grace periods.  Every child must get its own
 * working reclaim thread. */
static int busy_stop;

static void *busy_thread(void *arg)
{
	/* 64 heads, reused after each barrier (which waits for them) */
	struct mix_rcu_head pool[64];
	uint32_t i = 0;
	(void)arg;
	while (!__atomic_load_n(&busy_stop, __ATOMIC_ACQUIRE)) {
		mix_rcu_read_lock();
		mix_rcu_read_unlock();
		mix_rcu_defer(&pool[i % 64], count_nofree);
		if (++i % 64 == 0)
			mix_rcu_barrier();
		if (i % 256 == 0)
			mix_rcu_synchronize();
	}
	mix_rcu_barrier();   /* the pool is on this stack */
	return (void *)(uintptr_t)i;
}

static void test_fork_busy(void)
{
	const char *env = getenv("MIX_RCU_FORKS");
	int forks = env && *env ? atoi(env) : 100, i, bad = -1, status = 0;
	pthread_t t[3];
	void *r;
	uint64_t deferred = 0;

	__atomic_store_n(&busy_stop, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&count_ran, 0, __ATOMIC_RELAXED);
	for (i = 0; i < 3; i++)
		if (pthread_create(&t[i], NULL, busy_thread, NULL) != 0)
			BAIL("pthread_create");
	for (i = 0; i < forks && bad < 0; i++) {
		pid_t pid;
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			BAIL("fork");
		if (pid == 0) {
#ifdef MIX_TSAN
			_exit(0);   /* no thread may start here under TSan */
#else
			child_defer_and_exit();
#endif
		}
		status = child_status(pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad = i;
	}
	__atomic_store_n(&busy_stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], &r);
		deferred += (uintptr_t)r;
	}
	mix_rcu_barrier();
	ok(bad < 0, "%d forks among threads deferring, reading and waiting "
	   "in barriers: every child's calls ran and its barrier returned%s",
	   forks,
#ifdef MIX_TSAN
	   " (children start no thread under TSan)"
#else
	   ""
#endif
	   );
	if (bad >= 0)
		diag("  first failure: fork %d, status 0x%x (0 expected; "
		     "0x%x = hung)", bad, status, SIGALRM);
	is(__atomic_load_n(&count_ran, __ATOMIC_RELAXED), deferred,
	   "each of the parent's %llu calls across the forks ran once there",
	   (unsigned long long)deferred);
}

int main(void)
{
	test_lone_call();
	test_grace_period();
	test_stall_diag();
	test_order_and_barrier();
	test_no_lost_wakeup();
	test_threads();
	test_fork();
	test_fork_reader_inside();
	test_fork_busy();
	return tap_done();
}
