# mix — build, test, stress.  See README.md.
#
#   make              libmix.a, libmix.so, mix.pc, mixctl
#   make check        install missing deps, build, run every TAP test (prove)
#   make asan / tsan  the same tests under ASan+UBSan / ThreadSanitizer
#   make stress       stress/validate with defaults in a temporary directory
#   make bench        stress/bench figures (name value unit)
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
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fno-omit-frame-pointer $(WARN) \
           -fvisibility=hidden -fPIC -Iinclude -Iengine $(SAN) $(CFLAGS)
LIBS    := -lurcu-memb -lurcu-common -lpthread
LDFLAGS += $(SAN)

ENGINE_SRC := $(sort $(wildcard engine/*.c))
ENGINE_OBJ := $(ENGINE_SRC:engine/%.c=$(BUILD)/obj/%.o)
TEST_SRC   := $(sort $(wildcard tests/test-*.c))
TEST_BIN   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
STRESS_SRC := $(sort $(wildcard stress/*.c))
STRESS_BIN := $(STRESS_SRC:stress/%.c=$(BUILD)/stress/%)
TOOLS_BIN  := $(BUILD)/mixctl

.PHONY: all deps check asan tsan stress bench install clean example
.DEFAULT_GOAL := all

all: deps-ok $(BUILD)/libmix.a $(BUILD)/libmix.so $(BUILD)/mix.pc

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
	MIX_BUILD=$(BUILD) prove -f --exec '' $(TEST_BIN) tests/run-example.sh tests/run-validate.sh

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
		SAN='-fsanitize=address,undefined -fno-sanitize-recover=all' check

# liburcu's grace periods are invisible to TSan; engine/rcu.h annotates
# them under __SANITIZE_THREAD__ (see the comment there).
tsan:
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1" \
	$(MAKE) BUILD=build-tsan OPT=-O1 SAN='-fsanitize=thread' check

stress: all $(BUILD)/stress/validate
	@d=$$(mktemp -d /tmp/mix-stress.XXXXXX) && \
	  $(BUILD)/stress/validate --dir "$$d" $(STRESS_ARGS); rc=$$?; rm -rf "$$d"; exit $$rc

bench: all $(BUILD)/stress/bench
	@d=$$(mktemp -d /tmp/mix-bench.XXXXXX) && \
	  $(BUILD)/stress/bench --dir "$$d" $(BENCH_ARGS) | tee $(BUILD)/bench.txt; rc=$$?; rm -rf "$$d"; exit $$rc

install: all
	install -d $(DESTDIR)$(PREFIX)/include/mix $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/mix/*.h $(DESTDIR)$(PREFIX)/include/mix/
	install -m 644 $(BUILD)/libmix.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libmix.so $(DESTDIR)$(PREFIX)/lib/libmix.so.0
	ln -sf libmix.so.0 $(DESTDIR)$(PREFIX)/lib/libmix.so
	install -m 644 $(BUILD)/mix.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

clean:
	rm -rf build build-asan build-tsan

# ---- reliability (issue 5, docs/reliability.md) ----------------------------
# make crashtest [CRASH_ARGS='--cycles 200 --seed N']: kill -9 torture
.PHONY: crashtest
crashtest: all $(BUILD)/stress/crashtest
	$(BUILD)/stress/crashtest $(CRASH_ARGS)
