/*
 * test-powercut: a short run of the power-loss simulator (stress/powercut.h,
 * docs/reliability.md "Power-loss simulation"): four small traces, one of
 * each workload profile, every cut point of each, a few hundred crash
 * states, every 60th state's recovery cut again.  One TAP line per trace
 * (no failing state) and three for the run: enough states were checked,
 * no modseq issued twice, no UID handed out twice (a TODO with
 * MIX_POWERCUT_STRICT_UIDS=0).  Then two short traces of the mailbox
 * list mode (stress/powercut-list.h: every crash state's list opens and
 * holds every acknowledged SYNC change, ids above every acknowledged
 * one).  `make powercut` is the long version.
 *
 * Seed: MIX_POWERCUT_SEED, else MIX_SEED, else the clock (printed).
 * Single test thread plus the engine's writer.
 */
#include "../stress/powercut.h"
#include "../stress/powercut-list.h"

#include "tap.h"
#include "testutil.h"

/* UID reuse fails unless MIX_POWERCUT_STRICT_UIDS=0 (then a TODO). */
static int strict_uids(void)
{
	const char *s = getenv("MIX_POWERCUT_STRICT_UIDS");
	return !(s && strcmp(s, "0") == 0);
}

int main(void)
{
	struct pc_opts o = { 0 };
	struct pc_totals all = { 0 }, one;
	struct mix_engine_config cfg;
	struct mix_engine *eng = NULL;
	const char *env = getenv("MIX_POWERCUT_SEED");
	int ret;

	o.seed = env && *env ? strtoull(env, NULL, 0) : tu_seed();
	printf("# powercut seed %llu (MIX_POWERCUT_SEED=%llu replays)\n",
	       (unsigned long long)o.seed, (unsigned long long)o.seed);
	o.traces = 4;
	o.ops = (unsigned)(24 * tu_scale());
	o.prefix_max = 8;
	o.random_per_cut = 2;
	o.cut_stride = 1;
	o.nested_every = 60;
	o.kill_nested_every = 6;
	o.strict_uids = 0;
	o.pfx = "# ";
	o.tmp = getenv("TMPDIR");
	if (!o.tmp || !*o.tmp)
		o.tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	tap_plan((int)o.traces + 5 + 2);
	mix_engine_config_init(&cfg);
	cfg.log_rotate_size = 4096;
	cfg.warning = pc_warning;
	ret = mix_engine_create(&cfg, &eng);
	is(ret, 0, "engine created");
	if (ret < 0)
		return tap_done();
	for (unsigned i = 0; i < o.traces; i++) {
		pc_run_trace(&o, eng, i, &one);
		pc_totals_add(&all, &one);
		if (!is(one.failures, 0, "trace %u (%s): %llu crash states, "
			"none fails", i, pc_profile_names[i % 4],
			(unsigned long long)one.states))
			diag("  %llu failing states (FAIL lines above; seed "
			     "%llu)", (unsigned long long)one.failures,
			     (unsigned long long)o.seed);
	}
	{
		/* the mailbox list mode: one SYNC-leaning, one NONE-leaning
		 * trace (the profile only names them; durability is drawn
		 * per session) */
		struct pc_opts lo = o;
		pcl_opts(&lo);
		lo.ops = (unsigned)(40 * tu_scale());
		lo.strict_uids = 1;
		for (unsigned i = 0; i < 2; i++) {
			pc_run_trace(&lo, eng, i, &one);
			if (!is(one.failures + one.uid_reuse, 0, "list trace %u: "
				"%llu crash states open and hold every "
				"acknowledged SYNC change, ids never reused",
				i, (unsigned long long)one.states))
				diag("  FAIL lines above; seed %llu",
				     (unsigned long long)o.seed);
		}
	}
	mix_engine_free(&eng);
	pc_classes_print(stdout, "# ");
	diag("states %llu (%llu torn, %llu in recovery sessions), "
	     "uid_reuse %llu, modseq_reuse %llu",
	     (unsigned long long)all.states, (unsigned long long)all.torn,
	     (unsigned long long)all.nested_states,
	     (unsigned long long)all.uid_reuse,
	     (unsigned long long)all.modseq_reuse);
	ok(all.states >= 200, "at least 200 distinct crash states checked "
	   "(%llu)", (unsigned long long)all.states);
	/* a kill -9, its recovery, a power cut in it: the recovery must
	 * make the dead writer's page cache durable before it names it */
	ok(all.kill_runs > 0 && all.kill_states > 0, "recoveries after a "
	   "kill -9 cut with its page cache pending (%llu sessions, %llu "
	   "states)", (unsigned long long)all.kill_runs,
	   (unsigned long long)all.kill_states);
	is(all.modseq_reuse, 0, "no modseq issued again after a cut "
	   "(%llu states did)", (unsigned long long)all.modseq_reuse);
	/* UIDs: the UID floor (format.md §2.7) covers cuts inside recovery
	 * too since a2d96f3 (reliability.md, power-loss finding 6);
	 * MIX_POWERCUT_STRICT_UIDS=0 turns a failure into a TODO */
	if (all.uid_reuse == 0 || strict_uids())
		is(all.uid_reuse, 0, "no UID handed out again after a cut "
		   "(%llu states did)", (unsigned long long)all.uid_reuse);
	else
		printf("not ok %d - no UID handed out again after a cut "
		       "(%llu states did) # TODO UID floor across a cut in "
		       "recovery\n", ++tap_n,
		       (unsigned long long)all.uid_reuse);
	return tap_done();
}
