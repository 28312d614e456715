# mix — build, test, stress.  See README.md.
#
#   make              libmix.a, libmix.so, mix.pc, mixctl
#   make check        install missing deps, build, run every TAP test (prove)
#   make asan / tsan  the same tests under ASan+UBSan / ThreadSanitizer
#   make stress       stress/validate with defaults, then stress/stall (a 10 s
#                     read-side section), in temporary directories
#                     (VIRTUAL=1: also stress/virtual-stress)
#   make bench        stress/bench figures (name value unit), then mix vs
#                     LMDB, scaling, read-path check, plots (bench-lmdb)
#   make perf         perf record of a short stress run, if perf works
#   make install PREFIX=/usr/local

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
SAN     ?=
OPT     ?= -O2
VERSION := 0.1.0

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-unused-parameter
CFLAGS  ?= $(OPT) -g
# USDT probes when systemtap-sdt-dev's <sys/sdt.h> is there (engine/probes.h)
SDT     := $(shell printf '\043include <sys/sdt.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo -DMIX_HAVE_SDT)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fno-omit-frame-pointer $(WARN) $(SDT) \
           -fvisibility=hidden -fPIC -Iinclude -Iengine $(SAN) $(CFLAGS)
LIBS    := -lurcu-memb -lurcu-common -lpthread
LDFLAGS += $(SAN)

ENGINE_SRC := $(sort $(wildcard engine/*.c))
ENGINE_OBJ := $(ENGINE_SRC:engine/%.c=$(BUILD)/obj/%.o)
TEST_SRC   := $(sort $(wildcard tests/test-*.c))
TEST_BIN   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
STRESS_SRC := $(sort $(wildcard stress/*.c))
# bench-lmdb links LMDB, which make check does not need (see make bench)
STRESS_BIN := $(filter-out $(BUILD)/stress/bench-lmdb,$(STRESS_SRC:stress/%.c=$(BUILD)/stress/%))
TOOLS_BIN  := $(BUILD)/mixctl

.PHONY: all deps check asan tsan stress bench install clean example
.DEFAULT_GOAL := all

all: deps-ok $(BUILD)/libmix.a $(BUILD)/libmix.so $(BUILD)/mix.pc $(BUILD)/mixctl

deps:
	@sh tools/install-deps.sh
# build targets check deps once per build dir
deps-ok: $(BUILD)/.deps-ok
$(BUILD)/.deps-ok: tools/install-deps.sh
	@sh tools/install-deps.sh
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/obj/%.o: engine/%.c $(wildcard engine/*.h) $(wildcard include/mix/*.h) | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libmix.a: $(ENGINE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libmix.so: $(ENGINE_OBJ) engine/libmix.map
	$(CC) -shared -Wl,--version-script=engine/libmix.map -Wl,-soname,libmix.so.0 \
		$(LDFLAGS) -o $@ $(ENGINE_OBJ) $(LIBS)

$(BUILD)/mix.pc: Makefile
	@mkdir -p $(BUILD)
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: mix\nDescription: lock-free mail index engine\nVersion: %s\nRequires.private: liburcu-memb\nLibs: -L$${libdir} -lmix\nLibs.private: %s\nCflags: -I$${includedir}\n' \
		'$(PREFIX)' '$(VERSION)' '$(LIBS)' > $@

$(BUILD)/tests/%: tests/%.c tests/tap.h tests/testutil.h $(BUILD)/libmix.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests $< -o $@ $(BUILD)/libmix.a $(LDFLAGS) $(LIBS)

$(BUILD)/stress/%: stress/%.c $(wildcard stress/*.h) $(BUILD)/libmix.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Istress $< -o $@ $(BUILD)/libmix.a $(LDFLAGS) $(LIBS) -lm

$(BUILD)/mixctl: tools/mixctl.c $(BUILD)/libmix.a
	$(CC) $(ALL_CFLAGS) $< -o $@ $(BUILD)/libmix.a $(LDFLAGS) $(LIBS)

# The README's example, compiled against the installed-style header path.
$(BUILD)/tests/example: docs/example.c $(BUILD)/libmix.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(BUILD)/libmix.a $(LDFLAGS) $(LIBS)

check: all $(TEST_BIN) $(STRESS_BIN) $(BUILD)/tests/example
	MIX_BUILD=$(BUILD) prove -f --exec '' $(TEST_BIN) tests/run-example.sh tests/run-validate.sh \
		tests/run-stall.sh tests/run-virtual-stress.sh

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
		SAN='-fsanitize=address,undefined -fno-sanitize-recover=all' check

# liburcu's grace periods are invisible to TSan; engine/rcu.h annotates
# them under __SANITIZE_THREAD__ (see the comment there).
tsan:
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1" \
	$(MAKE) BUILD=build-tsan OPT=-O1 SAN='-fsanitize=thread' check

# stress/validate, then stress/stall (a 10 s read-side section beside 8
# committers on 4 mailboxes: no mailbox may go 2 s without a commit)
stress: all $(BUILD)/stress/validate $(BUILD)/stress/stall
	@d=$$(mktemp -d /tmp/mix-stress.XXXXXX) && \
	  $(BUILD)/stress/validate --dir "$$d" $(STRESS_ARGS); rc=$$?; rm -rf "$$d"; \
	  [ $$rc -eq 0 ] || exit $$rc; \
	  d=$$(mktemp -d /tmp/mix-stall.XXXXXX) && \
	  $(BUILD)/stress/stall --dir "$$d" $(STALL_ARGS); rc=$$?; rm -rf "$$d"; exit $$rc
	@if [ -n "$(VIRTUAL)" ]; then $(MAKE) --no-print-directory BUILD=$(BUILD) stress-virtual; fi

# make stress-virtual [VIRTUAL_ARGS=...]: stress/virtual-stress, the atomic
# remap of virtual mailboxes (docs/virtual.md "Atomic remap"): readers
# check both map directions on every snapshot while 3 backends commit and
# the virtual mailbox syncs in a loop, then again with live mode syncing
# and writes through the virtual mailbox.  `make stress VIRTUAL=1` runs it
# after the others; `make stress-long` runs both for 30 s.
VIRTUAL_ARGS ?= --seconds 10 --readers 4
.PHONY: stress-virtual
stress-virtual: all $(BUILD)/stress/virtual-stress
	@d=$$(mktemp -d /tmp/mix-vstress.XXXXXX) && \
	  $(BUILD)/stress/virtual-stress --dir "$$d/run" $(VIRTUAL_ARGS) && \
	  $(BUILD)/stress/virtual-stress --dir "$$d/live" $(VIRTUAL_ARGS) --live --writes; \
	  rc=$$?; rm -rf "$$d"; exit $$rc

bench: all $(BUILD)/stress/bench
	@d=$$(mktemp -d /tmp/mix-bench.XXXXXX) && \
	  $(BUILD)/stress/bench --dir "$$d" $(BENCH_ARGS) | tee $(BUILD)/bench.txt; rc=$$?; rm -rf "$$d"; exit $$rc
	@$(MAKE) --no-print-directory bench-lmdb

install: all
	install -d $(DESTDIR)$(PREFIX)/include/mix $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/mixctl $(DESTDIR)$(PREFIX)/bin/
	install -m 644 include/mix/*.h $(DESTDIR)$(PREFIX)/include/mix/
	install -m 644 $(BUILD)/libmix.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libmix.so $(DESTDIR)$(PREFIX)/lib/libmix.so.0
	ln -sf libmix.so.0 $(DESTDIR)$(PREFIX)/lib/libmix.so
	install -m 644 $(BUILD)/mix.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

clean:
	rm -rf build build-asan build-tsan

# ---- reliability (issue 5, docs/reliability.md) ----------------------------
# make crashtest [CRASH_ARGS='--cycles 200 --seed N']: kill -9 torture;
# then tests/test-lifecycle long: LIFECYCLE_STEPS steps for each seed of
# LIFECYCLE_SEEDS (issue 10; about 5 min per 20,000 steps on 2 busy cores)
LIFECYCLE_SEEDS ?= 1 2 3
LIFECYCLE_STEPS ?= 20000
.PHONY: crashtest
crashtest: all $(BUILD)/stress/crashtest $(BUILD)/tests/test-lifecycle
	$(BUILD)/stress/crashtest --mixctl $(BUILD)/mixctl $(CRASH_ARGS)
	@rc=0; for s in $(LIFECYCLE_SEEDS); do \
	  MIX_BUILD=$(BUILD) MIX_LIFECYCLE_SEED=$$s \
	    MIX_LIFECYCLE_STEPS=$(LIFECYCLE_STEPS) \
	    $(BUILD)/tests/test-lifecycle || rc=1; \
	done; exit $$rc

# make fuzz [FUZZ_SECONDS=60]: the libFuzzer targets of tests/fuzz, each
# run FUZZ_SECONDS with ASan+UBSan, seeded from tests/fuzz/corpus-*;
# findings go to build-fuzz/artifacts.  Needs clang and libclang-rt-14-dev
# (MIX_DEPS_FUZZ=1 tools/install-deps.sh); make check does not.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := ifile log vmap
.PHONY: fuzz fuzz-build fuzz-lib fuzz-corpus
fuzz-lib:
	@MIX_DEPS_FUZZ=1 CC=$(FUZZ_CC) sh tools/install-deps.sh
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT=-O1 \
		SAN='$(FUZZ_SAN) -fsanitize=fuzzer-no-link' $(FUZZ_BUILD)/libmix.a
$(FUZZ_BUILD)/fuzz-%: tests/fuzz/fuzz-%.c tests/fuzz/fuzz-common.h fuzz-lib
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Iengine -g -O1 \
		$(FUZZ_SAN) -fsanitize=fuzzer $< -o $@ $(FUZZ_BUILD)/libmix.a $(LIBS)
fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$t $(FUZZ_BUILD)/artifacts; \
	  echo "fuzz-$$t: $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -max_len=16384 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
	    $(FUZZ_BUILD)/corpus-$$t tests/fuzz/corpus-$$t tests/fuzz/regress-$$t \
	    || exit 1; \
	done
# Regenerate the seed corpora from the engine (then review and commit).
fuzz-corpus: $(BUILD)/libmix.a
	$(CC) $(ALL_CFLAGS) tests/fuzz/mkcorpus.c -o $(BUILD)/tests/fuzz-mkcorpus \
		$(BUILD)/libmix.a $(LDFLAGS) $(LIBS)
	$(BUILD)/tests/fuzz-mkcorpus tests/fuzz
# the regression replayer includes the fuzz targets' sources
$(BUILD)/tests/test-fuzz-regress: $(wildcard tests/fuzz/*.c tests/fuzz/*.h)

# ---- mix vs LMDB, scaling, plots, profiles (issue 6, docs/benchmarks.md) ----
# make bench-lmdb [BENCH_LMDB_ARGS=--quick]: stress/bench-lmdb (LMDB is
# linked into that program only, never into libmix), the read-path check
# (tools/check-readpath.sh), instructions per lookup (callgrind), all
# appended to $(BUILD)/bench.txt; plots into docs/ (gnuplot).  make bench
# runs it after stress/bench.  Needs liblmdb-dev, gnuplot-nox and valgrind
# (MIX_DEPS_BENCH=1 MIX_DEPS_VALGRIND=1 tools/install-deps.sh, done here);
# make and make check do not.
BENCH_LMDB_ARGS ?=
.PHONY: bench-deps bench-lmdb perf
bench-deps:
	@MIX_DEPS_BENCH=1 MIX_DEPS_VALGRIND=1 sh tools/install-deps.sh
$(BUILD)/stress/bench-lmdb: stress/bench-lmdb.c $(wildcard stress/*.h) $(BUILD)/libmix.a | bench-deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Istress $< -o $@ $(BUILD)/libmix.a $(LDFLAGS) $(LIBS) -llmdb -lm
bench-lmdb: all bench-deps $(BUILD)/stress/bench-lmdb
	@sh tools/bench-report.sh $(BUILD) $(BENCH_LMDB_ARGS)

# make perf [PERF_VALIDATE_ARGS=...]: perf record -g of a short
# stress/validate run into $(BUILD)/perf.data, report in $(BUILD)/perf.txt;
# says so (and exits 0) when perf cannot count on this machine.  Debian's
# perf is linux-perf (MIX_DEPS_PERF=1).
perf: all $(BUILD)/stress/validate
	@MIX_DEPS_PERF=1 sh tools/install-deps.sh
	@sh tools/perf-profile.sh $(BUILD)

# ---- views and the stress harness (issue 3, docs/benchmarks.md) ------------
# make stress-long: stress/stress-long.sh — 64 readers + 8 committers for
# 10 s; 60 s of steady load with the resident-memory check; every
# --inject-fault kind (each must be caught: the view checks can fail); a
# read-only process following the writer through rotations.  Runs every
# step, names the failed ones.  make bench-views: refresh, view sync and
# CHANGEDSINCE figures (stress/bench-views.c).
.PHONY: stress-long bench-views
stress-long: all $(BUILD)/stress/validate $(BUILD)/stress/stall $(BUILD)/stress/virtual-stress
	@sh stress/stress-long.sh $(BUILD)
bench-views: all $(BUILD)/stress/bench-views
	@d=$$(mktemp -d /tmp/mix-bench.XXXXXX) && \
	  $(BUILD)/stress/bench-views --dir "$$d" $(BENCH_VIEWS_ARGS) | tee $(BUILD)/bench-views.txt; \
	  rc=$$?; rm -rf "$$d"; exit $$rc

# make bench-rcu [BENCH_RCU_ARGS=--quick]: stress/bench-rcu, read-side and
# grace-period costs of urcu-memb (as engine/rcu.h uses it), urcu-bp and
# urcu-qsbr (docs/design.md §RCU flavor).  The flavours' symbols collide in
# one unit, so the flavour part is compiled once per flavour.
BENCH_RCU_FL := memb mix bp qsbr
.PHONY: bench-rcu
$(BUILD)/stress/bench-rcu: stress/bench-rcu.c $(wildcard stress/*.h) $(wildcard engine/*.h) $(BUILD)/libmix.a
	@mkdir -p $(dir $@)
	for f in $(BENCH_RCU_FL); do $(CC) $(ALL_CFLAGS) -Istress \
	  -DBENCH_RCU_FLAVOUR=$$f -c $< -o $@-$$f.o || exit 1; done
	$(CC) $(ALL_CFLAGS) -Istress $< $(BENCH_RCU_FL:%=$@-%.o) -o $@ \
		$(BUILD)/libmix.a $(LDFLAGS) -lurcu-bp -lurcu-qsbr $(LIBS) -lm
bench-rcu: all $(BUILD)/stress/bench-rcu
	$(BUILD)/stress/bench-rcu $(BENCH_RCU_ARGS)
fuzz-clean:
	rm -rf $(FUZZ_BUILD)
.PHONY: fuzz-clean

# ---- power-loss simulation (issue 10, docs/reliability.md) -----------------
# make powercut [POWERCUT_ARGS='--seed N --traces N --ops N --strict-uids']:
# stress/powercut records the engine's file-system calls (engine/fileio.c
# trace hook), builds every crash state a file system could leave at each
# cut point, opens each and checks the acknowledged commits.  Scratch
# directories under $TMPDIR (else /dev/shm, else /tmp); failing states are
# kept there and their paths printed.  Every 20th state also goes through
# mixctl check (--mixctl-every N).
POWERCUT_ARGS ?=
.PHONY: powercut
powercut: all $(BUILD)/stress/powercut
	$(BUILD)/stress/powercut --mixctl $(BUILD)/mixctl $(POWERCUT_ARGS)

# ---- fork (issue 11, docs/design.md "Fork and the reclaim thread") ----------
# make rcu-loop [RCU_LOOP_RUNS=200]: $(BUILD)/tests/test-rcu that many times
# in a row, stopping at the first failure (its output is then printed).
RCU_LOOP_RUNS ?= 200
.PHONY: rcu-loop
rcu-loop: $(BUILD)/tests/test-rcu
	@i=0; while [ $$i -lt $(RCU_LOOP_RUNS) ]; do i=$$((i + 1)); \
	  if ! $(BUILD)/tests/test-rcu > $(BUILD)/rcu-loop.out 2>&1; then \
	    cat $(BUILD)/rcu-loop.out; \
	    echo "rcu-loop: run $$i of $(RCU_LOOP_RUNS) failed"; exit 1; \
	  fi; \
	done; echo "rcu-loop: $(RCU_LOOP_RUNS) runs of $(BUILD)/tests/test-rcu passed"
# the short TAP version (make check) shares the simulator's core
$(BUILD)/tests/test-powercut: stress/powercut.h stress/stress.h
