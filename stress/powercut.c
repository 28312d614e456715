/*
 * make powercut: the power-loss simulator (issue 10; docs/reliability.md
 * "Power-loss simulation").  Records every file-system call the engine
 * makes while a random workload runs, builds the states a file system
 * could leave at each cut point (stress/powercut.h says which), opens
 * each and checks the acknowledged commits.
 *
 *   powercut [--seed N] [--traces N] [--ops N] [--prefix-max N]
 *            [--random N] [--stride N] [--nested N] [--kill-nested N]
 *            [--mixctl PATH]
 *            [--mixctl-every N] [--only N] [--tmp DIR] [--findings FILE]
 *            [--strict-uids] [--list] [--verbose]
 *
 * --list: the mailbox list workload and check instead of the index's
 * (stress/powercut-list.h): list changes of both durabilities, attached
 * mailboxes, and every crash state's list must open and hold every
 * acknowledged SYNC change.
 *
 * --kill-nested N: every N-th "everything" state (what a kill -9 leaves)
 * gets its recovery session cut too, with what was not durable at the
 * kill still pending in the model (0: never; default 10).  The states of
 * such a session may also be any the kill's cut alone could leave.
 * MIX_POWERCUT_DEBUG=SUBSTRING prints the model and the events of the
 * recovery sessions whose names contain it (a FAIL line's name).
 *
 * The seed is printed; MIX_POWERCUT_SEED (or --seed) replays a run, and
 * with --only N only its trace N (the N of a FAIL line's "tN-...").
 * UID reuse fails the run (MIX_POWERCUT_STRICT_UIDS=0: only counted;
 * --strict-uids is the default, kept for old scripts).  Output: one line per
 * trace, a FAIL block per failing state (with the saved state directory),
 * then totals as "name value unit" lines.  Exit 0 when nothing failed
 * (UID reuse counts as a failure unless MIX_POWERCUT_STRICT_UIDS=0), 1 on a
 * failure, 2 on a setup error.
 *
 * Single-threaded apart from the engine's writer thread.
 */
#include "powercut.h"
#include "powercut-list.h"

static void usage(void)
{
	fprintf(stderr, "usage: powercut [--seed N] [--traces N] [--ops N] "
		"[--prefix-max N] [--random N] [--stride N] [--nested N] "
		"[--kill-nested N] [--mixctl PATH] "
		"[--mixctl-every N] [--only N] [--tmp DIR] "
		"[--findings FILE] [--strict-uids] [--list] [--verbose]\n");
	exit(2);
}

/* --only N: run trace N of the run alone (replaying a FAIL line's
 * "tN-..." with the run's seed). */
static long only = -1;
/* --list: the mailbox list mode (stress/powercut-list.h) */
static int list_mode;

static void parse(int argc, char **argv, struct pc_opts *o)
{
	const char *seed = getenv("MIX_POWERCUT_SEED");
	const char *strict = getenv("MIX_POWERCUT_STRICT_UIDS");

	o->traces = 8;
	o->ops = 200;
	o->prefix_max = 12;
	o->random_per_cut = 6;
	o->cut_stride = 1;
	o->nested_every = 50;
	o->kill_nested_every = 10;
	o->mixctl_every = 20;
	/* UID reuse fails the run (format.md §2.7); MIX_POWERCUT_STRICT_UIDS=0
	 * only counts it */
	o->strict_uids = !(strict && strcmp(strict, "0") == 0);
	o->tmp = getenv("TMPDIR");
	if (!o->tmp || !*o->tmp)
		o->tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--seed") && v)
			seed = v, i++;
		else if (!strcmp(a, "--traces") && v)
			o->traces = (unsigned)st_opt_u64("traces", v, 1, 10000), i++;
		else if (!strcmp(a, "--ops") && v)
			o->ops = (unsigned)st_opt_u64("ops", v, 1, 100000), i++;
		else if (!strcmp(a, "--prefix-max") && v)
			o->prefix_max = (unsigned)st_opt_u64("prefix-max", v, 2,
							     100000), i++;
		else if (!strcmp(a, "--random") && v)
			o->random_per_cut = (unsigned)st_opt_u64("random", v, 0,
								 100000), i++;
		else if (!strcmp(a, "--stride") && v)
			o->cut_stride = (unsigned)st_opt_u64("stride", v, 1,
							     100000), i++;
		else if (!strcmp(a, "--nested") && v)
			o->nested_every = (unsigned)st_opt_u64("nested", v, 0,
							       1000000), i++;
		else if (!strcmp(a, "--kill-nested") && v)
			o->kill_nested_every = (unsigned)st_opt_u64(
				"kill-nested", v, 0, 1000000), i++;
		else if (!strcmp(a, "--mixctl") && v)
			o->mixctl = v, i++;
		else if (!strcmp(a, "--mixctl-every") && v)
			o->mixctl_every = (unsigned)st_opt_u64("mixctl-every", v,
							       0, 1000000), i++;
		else if (!strcmp(a, "--only") && v)
			only = (long)st_opt_u64("only", v, 0, 9999), i++;
		else if (!strcmp(a, "--tmp") && v)
			o->tmp = v, i++;
		else if (!strcmp(a, "--findings") && v)
			o->findings = v, i++;
		else if (!strcmp(a, "--strict-uids"))
			o->strict_uids = 1;
		else if (!strcmp(a, "--list"))
			list_mode = 1;
		else if (!strcmp(a, "--verbose"))
			o->verbose = 1;
		else
			usage();
	}
	o->seed = st_seed_pick(seed ? seed : "");
	if (!seed || !*seed)
		o->seed = st_seed_pick(NULL);
	if (list_mode)
		pcl_opts(o);
}

/* A count as a `name value unit` line, every digit shown. */
static void figure(const char *name, uint64_t value, const char *unit)
{
	printf("%s %llu %s\n", name, (unsigned long long)value, unit);
}

int main(int argc, char **argv)
{
	struct pc_opts o = { 0 };
	struct pc_totals all = { 0 }, one;
	struct mix_engine_config cfg;
	struct mix_engine *eng;
	uint64_t t0 = st_now_ns();
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse(argc, argv, &o);
	printf("powercut: seed %llu (MIX_POWERCUT_SEED=%llu replays), %u "
	       "traces of %u steps, scratch in %s%s%s\n",
	       (unsigned long long)o.seed, (unsigned long long)o.seed,
	       o.traces, o.ops, o.tmp, o.strict_uids ? ", strict UIDs" : "",
	       list_mode ? ", mailbox list workload" : "");
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	cfg.warning = pc_warning;
	if ((ret = mix_engine_create(&cfg, &eng)) < 0)
		st_die("mix_engine_create: %s", mix_strerror(ret));
	for (unsigned i = 0; i < o.traces; i++) {
		if (only >= 0 && (unsigned)only != i)
			continue;
		pc_run_trace(&o, eng, i, &one);
		pc_totals_add(&all, &one);
	}
	mix_engine_free(&eng);
	pc_classes_print(stdout, "");
	figure("traces", o.traces, "traces");
	figure("events", all.events, "calls");
	figure("steps", all.steps, "steps");
	figure("commits", all.commits, "commits");
	figure("commits_sync", all.commits_sync, "commits");
	figure("commits_async", all.commits_async, "commits");
	figure("idle_sessions", all.idle, "sessions");
	figure("recreates", all.recreates, "opens");
	figure("cuts", all.cuts, "cuts");
	figure("states", all.states, "states");
	figure("states_torn", all.torn, "states");
	figure("states_random_subset", all.subsets, "states");
	figure("states_duplicate_skipped", all.dup_states, "states");
	figure("states_without_index", all.no_index, "states");
	figure("recovery_sessions_cut", all.nested_runs, "sessions");
	figure("states_at_workload_cuts", all.states - all.nested_states,
	       "states");
	figure("states_in_recovery", all.nested_states, "states");
	figure("recoveries_after_kill_cut", all.kill_runs, "sessions");
	figure("states_in_recovery_after_kill", all.kill_states, "states");
	figure("states_after_kill_as_the_kill_left", all.kill_fallbacks,
	       "opens");
	figure("mixctl_checks", all.mixctl_runs, "states");
	figure("mixctl_failures", all.mixctl_fail, "states");
	figure("failures", all.failures, "states");
	figure("open_failures", all.open_fail, "states");
	figure("state_mismatches", all.mismatch, "opens");
	figure("modseq_reuse", all.modseq_reuse, "states");
	figure("uid_reuse", all.uid_reuse, "states");
	figure("uid_reuse_in_recovery", all.uid_reuse_recovery, "states");
	figure("expunge_history_shortened", all.xhist_lost, "opens");
	figure("lost_points_set", all.lost_points, "opens");
	figure("lost_points_too_low", all.lost_point_low, "opens");
	st_figure("seconds", st_secs_since(t0), "s");
	if (all.failures > 0)
		return 1;
	return o.strict_uids && all.uid_reuse > 0 ? 1 : 0;
}
