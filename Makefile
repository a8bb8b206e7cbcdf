# execmem: plain GNU make.
#   make              static + shared library, the execmem example programs
#   make run          build everything and run `execmem demo` (a small JIT)
#   make check        build and run every test (ends with "N passed, N failed, N skipped")
#   make check-asan / check-ubsan / check-tsan / check-valgrind
#   make install PREFIX=/usr/local DESTDIR=
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CC ?= cc
O ?= build
XM_DEBUG ?= 1

VERSION := $(shell sed -n 's/^\#define XM_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' include/execmem.h | paste -sd.)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))

WARN := -Wall -Wextra -Wpedantic -Werror
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -g
OPT ?= -O2
CFLAGS ?=
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
LIB_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DXM_DEBUG=$(XM_DEBUG) -Iinclude
LDLIBS := -lpthread

SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=$(O)/obj/%.o)
HDRS := include/execmem.h $(wildcard src/*.h)
TEST_SRCS := test/runner.c test/fuzz_api.c $(wildcard test/test_*.c)

all: $(O)/libexecmem.a $(O)/libexecmem.so $(O)/hello $(O)/execmem $(O)/execmem.pc

$(O)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(O)/libexecmem.a: $(OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(O)/libexecmem.so: $(OBJS)
	$(CC) -shared -Wl,-soname,libexecmem.so.$(SOMAJOR) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The prefix is substituted again at install time (PREFIX may differ).
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|'
$(O)/execmem.pc: execmem.pc.in include/execmem.h
	$(PC_SED) $< > $@

$(O)/hello: examples/hello.c $(O)/libexecmem.a include/execmem.h
	$(CC) $(ALL_CFLAGS) -Iinclude $< -o $@ $(O)/libexecmem.a $(LDLIBS)

$(O)/execmem: tools/execmem.c tools/proc_tlb.h $(O)/libexecmem.a include/execmem.h
	$(CC) $(ALL_CFLAGS) -Iinclude $< -o $@ $(O)/libexecmem.a $(LDLIBS)

# asmjit (Debian libasmjit-dev: header + static archive) is optional: the
# client example is built and run by make check only where it is installed.
ASMJIT_LIB := $(firstword $(wildcard /usr/lib/*/libasmjit.a /usr/lib/libasmjit.a /usr/local/lib/libasmjit.a))
ASMJIT_INC := $(wildcard /usr/include/asmjit/x86.h /usr/local/include/asmjit/x86.h)
CXX ?= c++
$(O)/asmjit_client: examples/asmjit_client.cpp $(O)/libexecmem.a include/execmem.h
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -Werror -Iinclude $< -o $@ \
	    $(O)/libexecmem.a $(ASMJIT_LIB) -lpthread -lrt
asmjit-example:
ifneq ($(and $(ASMJIT_LIB),$(ASMJIT_INC)),)
	$(MAKE) -s $(O)/asmjit_client
	./$(O)/asmjit_client
else
	@echo "asmjit client: libasmjit-dev not installed, skipped (apt-get install libasmjit-dev)"
endif

# make bench [BENCH_ARGS=--quick]: execmem against its peers (bench/bench.c).
ifneq ($(and $(ASMJIT_LIB),$(ASMJIT_INC)),)
BENCH_ASMJIT = $(O)/asmjit_shim.o $(ASMJIT_LIB) -lstdc++ -lrt
BENCH_DEFS = -DHAVE_ASMJIT
$(O)/asmjit_shim.o: bench/asmjit_shim.cpp
	@mkdir -p $(O)
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -Werror -c $< -o $@
$(O)/bench: $(O)/asmjit_shim.o
endif
$(O)/bench: bench/bench.c bench/floor_model.h tools/proc_tlb.h $(O)/libexecmem.a include/execmem.h
	$(CC) $(ALL_CFLAGS) $(BENCH_DEFS) -Iinclude $< -o $@ $(O)/libexecmem.a $(BENCH_ASMJIT) $(LDLIBS)
BENCH_ARGS ?=
bench: $(O)/bench
	@test -n "$(ASMJIT_LIB)" || echo "note: libasmjit-dev is not installed; asmjit rows will say so (make bench-deps)"
	./$(O)/bench $(BENCH_ARGS)
bench-deps:
	apt-get install -y libasmjit-dev

$(O)/wx_helper: test/wx_helper.c
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LDLIBS)

# The test runner links the static archive: white-box tests may call the
# library's internal (hidden) xm__ functions such as the fault injector.
$(O)/runner: $(TEST_SRCS) test/test.h $(O)/libexecmem.a
	$(CC) $(ALL_CFLAGS) -DXM_DEBUG=$(XM_DEBUG) -Iinclude -Isrc $(TEST_SRCS) -o $@ $(O)/libexecmem.a $(LDLIBS)

run: all
	./$(O)/execmem demo

# The churn operation alone, for callgrind and perf (bench/churn_loop.c).
$(O)/churn_loop: bench/churn_loop.c $(O)/libexecmem.a
	$(CC) $(ALL_CFLAGS) -Iinclude $< -o $@ $(O)/libexecmem.a $(LDLIBS)
# What the same operation costs at the least under the byte-level rules
# (bench/churn_floor.c: a model, not the library).
$(O)/churn_floor: bench/churn_floor.c bench/floor_model.h
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LDLIBS)

# A tiny JIT that names its code, for the real perf and gdb (sym_check.sh).
$(O)/jitsym: test/jitsym.c $(O)/libexecmem.a
	$(CC) $(ALL_CFLAGS) -Iinclude $< -o $@ $(O)/libexecmem.a $(LDLIBS)

check: $(O)/runner $(O)/hello $(O)/wx_helper $(O)/jitsym all
	./$(O)/hello > /dev/null
	sh test/install_check.sh $(O)
	sh test/cli_check.sh $(O)
	sh test/sym_check.sh $(O)
	$(MAKE) -s O=$(O) asmjit-example
	./$(O)/runner $(TESTS)

# xm_patch_live on arm64: cross-built, run under qemu-user and booted as
# init of an arm64 kernel in qemu-system (test/arm64_check.sh).
check-arm64:
	sh test/arm64_check.sh build-arm64

check-asan:
	$(MAKE) O=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address,undefined" check-run
check-ubsan:
	$(MAKE) O=build-ubsan OPT="-O1 -fsanitize=undefined -fno-sanitize-recover=all" LDFLAGS="-fsanitize=undefined" check-run
check-tsan:
	$(MAKE) O=build-tsan CC=clang OPT="-O1 -fsanitize=thread" LDFLAGS="-fsanitize=thread" check-run
check-valgrind: $(O)/runner
	XM_HAMMER=$${XM_HAMMER:-20000} valgrind --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite --child-silent-after-fork=yes ./$(O)/runner $(TESTS)

# Instrumented runs hammer live patching exactly 20,000 times per backend
# (make check: up to a million or 5 s, at least 20,000).
check-run:
	$(MAKE) O=$(O) OPT="$(OPT)" LDFLAGS="$(LDFLAGS)" $(O)/runner
	XM_HAMMER=$${XM_HAMMER:-20000} ./$(O)/runner $(TESTS)

# Long stress: make stress SECONDS=30 THREADS=4 SEED=1
SECONDS ?= 10
THREADS ?= 4
SEED ?= 0
stress: $(O)/runner
	XM_STRESS_SECONDS=$(SECONDS) XM_STRESS_THREADS=$(THREADS) XM_STRESS_SEED=$(SEED) \
	    ./$(O)/runner stress

# Coverage-guided fuzzing of the API (clang, libFuzzer + ASan). New inputs
# land in $(O)/fuzz-new; `make fuzz-merge` folds the interesting ones into
# the committed corpus that make check replays.
FUZZ_SECONDS ?= 60
$(O)/fuzz_api: test/fuzz_api.c $(SRCS) $(HDRS)
	@mkdir -p $(O)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	    -DXM_DEBUG=2 -Iinclude -Isrc test/fuzz_api.c $(SRCS) -o $@ -lpthread
fuzz: $(O)/fuzz_api
	@mkdir -p $(O)/fuzz-new
	./$(O)/fuzz_api -max_total_time=$(FUZZ_SECONDS) -max_len=2048 $(O)/fuzz-new test/corpus
fuzz-merge: $(O)/fuzz_api
	./$(O)/fuzz_api -merge=1 test/corpus $(O)/fuzz-new

# Debug level 3: a full structure walk after every call.
check-debug:
	$(MAKE) O=build-debug XM_DEBUG=3 check-run

install: all
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(O)/execmem $(DESTDIR)$(BINDIR)/
	install -m 644 tools/execmem.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 include/execmem.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(O)/libexecmem.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(O)/libexecmem.so $(DESTDIR)$(LIBDIR)/libexecmem.so.$(VERSION)
	ln -sf libexecmem.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libexecmem.so.$(SOMAJOR)
	ln -sf libexecmem.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libexecmem.so
	$(PC_SED) execmem.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/execmem.pc

clean:
	rm -rf build build-*

.PHONY: check-arm64 bench bench-deps asmjit-example stress fuzz fuzz-merge all run check check-asan check-ubsan check-tsan check-valgrind check-run check-debug install clean
