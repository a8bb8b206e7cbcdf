# SPDX-License-Identifier: MIT
# execmem: plain GNU make.
#   make              static + shared library, the execmem example programs
#   make run          build everything and run `execmem demo` (a small JIT)
#   make check        build and run every test (ends with "N passed, N failed, N skipped")
#   make check-asan / check-ubsan / check-tsan / check-valgrind
#   make check-llvm   LLVM's JIT on execmem (adapters/llvm; needs llvm-14-dev);
#                     check-llvm-asan: the same under ASan + UBSan
#   make install PREFIX=/usr/local LIBDIR=$(PREFIX)/lib DESTDIR=
#   make uninstall (the same variables)
# PREFIX: where the files go; LIBDIR (default $(PREFIX)/lib; Debian's is
# $(PREFIX)/lib/<triplet>), INCLUDEDIR, BINDIR, MANDIR: each directory alone;
# DESTDIR: a staging root prepended to every path at install time only (for
# packages), never written into execmem.pc or the CMake package files.
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
# -DXM_BUILDING: every library file exports the header's XM_API functions
# (defined here, on the command line, so that no file can miss it).
LIB_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DXM_BUILDING -DXM_DEBUG=$(XM_DEBUG) -Iinclude
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
# libdir and includedir are written as ${prefix}/... when they lie under
# PREFIX, so that pkg-config's --define-prefix and relocation work.
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PC_LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|'
# The CMake package (find_package(execmem) -> execmem::execmem) finds the
# prefix from its own place, $(LIBDIR)/cmake/execmem, when LIBDIR and
# INCLUDEDIR lie under PREFIX; otherwise it holds absolute paths.
CMAKEDIR = $(LIBDIR)/cmake/execmem
CMAKE_UP = $(shell p='$(patsubst $(PREFIX)/%,%,$(LIBDIR))'; echo "$$p/cmake/execmem" | sed 's|[^/][^/]*|..|g')
CMAKE_REL = $(and $(filter $(PREFIX)/%,$(LIBDIR)),$(filter $(PREFIX)/%,$(INCLUDEDIR)),yes)
CMAKE_SED = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SOMAJOR@|$(SOMAJOR)|g' \
	    -e 's|@ABS_LIBDIR@|$(LIBDIR)|g' -e 's|@ABS_INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION_MAJOR@|$(word 1,$(subst ., ,$(VERSION)))|g' \
	    -e 's|@VERSION_MINOR@|$(word 2,$(subst ., ,$(VERSION)))|g' \
	    $(if $(CMAKE_REL),-e 's|@PREFIX_EXPR@|$${CMAKE_CURRENT_LIST_DIR}/$(CMAKE_UP)|' \
	        -e 's|@LIBDIR@|$${_execmem_prefix}/$(patsubst $(PREFIX)/%,%,$(LIBDIR))|' \
	        -e 's|@INCLUDEDIR@|$${_execmem_prefix}/$(patsubst $(PREFIX)/%,%,$(INCLUDEDIR))|', \
	      -e 's|@PREFIX_EXPR@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|')
# Section 3 pages (man/*.3); each other name a page covers is a symlink to it.
MAN3 := $(wildcard man/*.3)
MAN3_LINKS := xm_heap_destroy:xm_heap_create xm_options:xm_heap_create \
	xm_alloc_data:xm_alloc xm_publish:xm_alloc xm_load:xm_alloc xm_free:xm_alloc \
	xm_free_async:xm_alloc xm_purge:xm_alloc xm_block:xm_alloc \
	xm_write_begin:xm_patch xm_write_end:xm_patch \
	xm_heap_stats:xm_query xm_stats:xm_query \
	xm_audit_ex:xm_audit xm_audit_report:xm_audit \
	xm_last_errno:xm_strerror xm_version:xm_strerror \
	xm_alias_offset:xm_commit xm_block_state:xm_commit
$(O)/execmem.pc: execmem.pc.in include/execmem.h
	$(PC_SED) $< > $@

$(O)/hello: examples/hello.c $(O)/libexecmem.a include/execmem.h
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Iinclude $< -o $@ $(O)/libexecmem.a $(LDLIBS)

# The execmem command, every tools/*.c: main.c (dispatch), one file per
# command (info.c, audit.c, demo.c: tools/cmd.h), out.c (text/JSON/progress:
# tools/out.h), and the demo's expression compiler, expr.c with one back end
# per architecture (each compiles to nothing elsewhere: tools/expr.h).
TOOL_SRCS := $(sort $(wildcard tools/*.c))
TOOL_HDRS := $(wildcard tools/*.h)
$(O)/execmem: $(TOOL_SRCS) $(TOOL_HDRS) $(O)/libexecmem.a include/execmem.h
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Iinclude $(TOOL_SRCS) -o $@ $(O)/libexecmem.a $(LDLIBS)

# asmjit (Debian libasmjit-dev: header + static archive) is optional: the
# client example is built and run by make check only where it is installed.
ASMJIT_LIB := $(firstword $(wildcard /usr/lib/*/libasmjit.a /usr/lib/libasmjit.a /usr/local/lib/libasmjit.a))
ASMJIT_INC := $(wildcard /usr/include/asmjit/x86.h /usr/local/include/asmjit/x86.h)
CXX ?= c++
$(O)/asmjit_client: examples/asmjit_client.cpp adapters/asmjit/execmem_jitruntime.h $(O)/libexecmem.a include/execmem.h
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -Werror -Iinclude -Iadapters/asmjit $< -o $@ \
	    $(O)/libexecmem.a $(ASMJIT_LIB) -lpthread -lrt
asmjit-example:
ifneq ($(and $(ASMJIT_LIB),$(ASMJIT_INC)),)
	$(MAKE) -s $(O)/asmjit_client
	./$(O)/asmjit_client
else
	@echo "asmjit client: libasmjit-dev not installed, skipped (apt-get install libasmjit-dev)"
endif

# LLVM's JIT on execmem (adapters/llvm: an ORC JITLink memory manager, C++17).
# Built and tested where llvm-config-14 exists (Debian llvm-14-dev); make check
# runs check-llvm, which says SKIP with the reason elsewhere. LLVM's headers
# are system headers (-isystem: they do not pass -Wextra); Debian's LLVM is
# built without RTTI and exceptions, so the adapter is too.
LLVM_CONFIG ?= llvm-config-14
LLVM_VERSION := $(shell $(LLVM_CONFIG) --version 2>/dev/null)
ifneq ($(LLVM_VERSION),)
LLVM_INCDIR := $(shell $(LLVM_CONFIG) --includedir)
LLVM_LIBDIR := $(shell $(LLVM_CONFIG) --libdir)
LLVM_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror -Iinclude -Iadapters/llvm \
    -isystem $(LLVM_INCDIR) -D_GNU_SOURCE -D__STDC_CONSTANT_MACROS \
    -D__STDC_FORMAT_MACROS -D__STDC_LIMIT_MACROS -fno-exceptions \
    $(if $(filter NO,$(shell $(LLVM_CONFIG) --has-rtti)),-fno-rtti)
LLVM_LDLIBS := -L$(LLVM_LIBDIR) -Wl,-rpath,$(LLVM_LIBDIR) $(shell $(LLVM_CONFIG) --libs) -lpthread
endif
LLVM_ADAPTER := adapters/llvm/execmem_jitlink.cpp adapters/llvm/execmem_jitlink.h
$(O)/llvm/execmem_jitlink.o: $(LLVM_ADAPTER) include/execmem.h
	@mkdir -p $(dir $@)
	$(CXX) $(LLVM_CXXFLAGS) -c $< -o $@
$(O)/llvm/llvm_jit: examples/llvm_jit.cpp $(O)/llvm/execmem_jitlink.o $(O)/libexecmem.a
	$(CXX) $(LLVM_CXXFLAGS) $< -o $@ $(O)/llvm/execmem_jitlink.o $(O)/libexecmem.a $(LLVM_LDLIBS)
# (with exceptions: a test throws through JIT frames)
$(O)/llvm/test_llvm: test/llvm/test_llvm.cpp examples/llvm_jit.cpp $(O)/llvm/execmem_jitlink.o $(O)/libexecmem.a
	$(CXX) $(LLVM_CXXFLAGS) -fexceptions $< -o $@ $(O)/llvm/execmem_jitlink.o $(O)/libexecmem.a $(LLVM_LDLIBS)
# -rdynamic: the benchmark's mmap/munmap/mprotect/mremap counters must also
# catch the calls LLVM's shared library makes
$(O)/llvm/llvm_bench: bench/llvm_bench.cpp examples/llvm_jit.cpp tools/proc_tlb.h $(O)/llvm/execmem_jitlink.o $(O)/libexecmem.a
	$(CXX) $(LLVM_CXXFLAGS) -rdynamic $< -o $@ $(O)/llvm/execmem_jitlink.o $(O)/libexecmem.a $(LLVM_LDLIBS)
check-llvm:
ifneq ($(LLVM_VERSION),)
	$(MAKE) -s O=$(O) $(O)/llvm/llvm_jit $(O)/llvm/test_llvm
	sh test/llvm/llvm_check.sh $(O)
else
	@echo "llvm: SKIP: $(LLVM_CONFIG) not found (Debian: apt-get install llvm-14-dev)"
endif
# sljit's own test suite (138 tests) on execmem through adapters/sljit, once
# per XM_INPLACE mode (test/sljit_check.sh); SLJIT_DIR: a sljit source tree
# (never copied into this repository; built under $(O)/sljit).
SLJIT_DIR ?= ../shared/third_party/sljit
check-sljit: $(O)/libexecmem.a
	sh test/sljit_check.sh $(O) $(SLJIT_DIR)

# The same under AddressSanitizer and UBSan (the adapter, the example, the
# tests and the library instrumented; LLVM's shared library is not).
check-llvm-asan:
	$(MAKE) O=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" \
	    CXX="$(CXX) -fsanitize=address,undefined -fno-omit-frame-pointer" check-llvm
LLVM_BENCH_ARGS ?=
bench-llvm:
ifneq ($(LLVM_VERSION),)
	$(MAKE) -s O=$(O) $(O)/llvm/llvm_bench
	./$(O)/llvm/llvm_bench $(LLVM_BENCH_ARGS)
else
	@echo "bench-llvm: SKIP: $(LLVM_CONFIG) not found (Debian: apt-get install llvm-14-dev)"
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
# Both programs: their workloads, bench/common.c (clock, medians, command
# line, JSON) and every contender, bench/ct_*.c behind bench/contender.h (a
# new contender is a new ct_ file and a row in a table). bench alone counts
# system calls by interposition (bench/syscount.c).
BENCH_CT := $(sort $(wildcard bench/ct_*.c))
BENCH_HDRS := bench/contender.h bench/common.h bench/syscount.h bench/floor_model.h \
	tools/proc_tlb.h include/execmem.h
$(O)/bench: bench/bench.c bench/syscount.c bench/common.c $(BENCH_CT) $(BENCH_HDRS) $(O)/libexecmem.a
	$(CC) $(ALL_CFLAGS) $(BENCH_DEFS) -Iinclude bench/bench.c bench/syscount.c bench/common.c \
	    $(BENCH_CT) -o $@ $(O)/libexecmem.a $(BENCH_ASMJIT) $(LDLIBS)
$(O)/bench_matrix: bench/matrix.c bench/common.c $(BENCH_CT) $(BENCH_HDRS) $(O)/libexecmem.a $(if $(BENCH_DEFS),$(O)/asmjit_shim.o)
	$(CC) $(ALL_CFLAGS) $(BENCH_DEFS) -Iinclude bench/matrix.c bench/common.c $(BENCH_CT) \
	    -o $@ $(O)/libexecmem.a $(BENCH_ASMJIT) $(LDLIBS)
# sljit rows (bench/sljit_bench.c): one file compiled per allocator, each
# part with a private static copy of sljit from SLJIT_DIR; skipped without it.
SLJIT_BENCH_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O2 -w -I$(SLJIT_DIR)/sljit_src
$(O)/sljit/bench_part%.o: bench/sljit_bench.c adapters/sljit/sljit_execmem.h
	@mkdir -p $(dir $@)
	$(CC) $(SLJIT_BENCH_CFLAGS) -DSLJIT_BENCH_PART=$* \
	    $(if $(filter 3,$*),-include adapters/sljit/sljit_execmem.h) -c $< -o $@
$(O)/sljit/sljit_execmem_bench.o: adapters/sljit/sljit_execmem.c adapters/sljit/sljit_execmem.h include/execmem.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iinclude -Iadapters/sljit -c $< -o $@
$(O)/bench_sljit: bench/sljit_bench.c $(O)/sljit/bench_part1.o $(O)/sljit/bench_part2.o \
	    $(O)/sljit/bench_part3.o $(O)/sljit/sljit_execmem_bench.o $(O)/libexecmem.a
	$(CC) $(ALL_CFLAGS) -Iinclude -Iadapters/sljit $< -o $@ $(filter %.o,$^) $(O)/libexecmem.a $(LDLIBS)
# The alternative to staging for whole pages, measured without the library
# (bench/remap_vs_copy.c: issue 15's question, README "Costs").
$(O)/bench_remap: bench/remap_vs_copy.c
	@mkdir -p $(O)
	$(CC) $(ALL_CFLAGS) $< -o $@
BENCH_ARGS ?=
bench: $(O)/bench $(O)/bench_matrix $(O)/bench_remap
	@test -n "$(ASMJIT_LIB)" || echo "note: libasmjit-dev is not installed; asmjit rows will say so (make bench-deps)"
	./$(O)/bench $(BENCH_ARGS)
	./$(O)/bench_matrix $(BENCH_ARGS)
	./$(O)/bench_remap
	@$(MAKE) -s O=$(O) BENCH_ARGS="$(BENCH_ARGS)" bench-sljit
# bench_sljit, or SKIP with the reason when SLJIT_DIR has no sljit tree
# (make bench, .ci/run)
bench-sljit:
	@if [ -f $(SLJIT_DIR)/sljit_src/sljitLir.c ]; then $(MAKE) -s O=$(O) $(O)/bench_sljit && \
	    ./$(O)/bench_sljit $(BENCH_ARGS); \
	else echo "bench_sljit: SKIP: no sljit source tree at SLJIT_DIR=$(SLJIT_DIR)"; fi
bench-deps:
	apt-get install -y libasmjit-dev

$(O)/wx_helper: test/wx_helper.c
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LDLIBS)
# The same program with text and data in one file page (a private writable
# view of a file that is also mapped executable: not an alias, issue 16).
# Built without the sanitizers (OPT): it is a process to audit, not code
# under test, and their runtime would push its data off the text's page.
# Always gcc (cc): clang's layout (check-tsan builds with CC=clang) puts the
# data at the next file page even so.
$(O)/wx_nosep: test/wx_helper.c
	@mkdir -p $(O)
	cc $(BASE_CFLAGS) -O2 -Wl,-z,noseparate-code -Wl,-z,norelro $< -o $@

# The test runner links the static archive: white-box tests may call the
# library's internal (hidden) xm__ functions such as the fault injector.
$(O)/runner: $(TEST_SRCS) test/test.h test/snippets.h $(O)/libexecmem.a $(O)/wx_nosep
	$(CC) $(ALL_CFLAGS) -DXM_DEBUG=$(XM_DEBUG) -Iinclude -Isrc $(TEST_SRCS) -o $@ $(O)/libexecmem.a $(LDLIBS)

run: all
	./$(O)/execmem demo

# The churn operation alone, for callgrind and perf (bench/churn_loop.c).
$(O)/churn_loop: bench/churn_loop.c $(O)/libexecmem.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Iinclude $< -o $@ $(O)/libexecmem.a $(LDLIBS)
# What the same operation costs at the least under the byte-level rules
# (bench/churn_floor.c: a model, not the library).
$(O)/churn_floor: bench/churn_floor.c bench/floor_model.h
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LDLIBS)

# A tiny JIT that names its code, for the real perf and gdb (sym_check.sh).
$(O)/jitsym: test/jitsym.c $(O)/libexecmem.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Iinclude $< -o $@ $(O)/libexecmem.a $(LDLIBS)

check: $(O)/runner $(O)/hello $(O)/wx_helper $(O)/wx_nosep $(O)/jitsym all
	./$(O)/hello > /dev/null
	@if command -v mandoc >/dev/null 2>&1; then $(MAKE) -s man-check; \
	else echo "man-check: mandoc not installed, manual pages not linted (apt-get install mandoc groff)"; fi
	sh test/install_check.sh $(O)
	sh test/cli_check.sh $(O)
	sh test/sym_check.sh $(O)
	$(MAKE) -s O=$(O) asmjit-example
	$(MAKE) -s O=$(O) check-llvm
	./$(O)/runner $(TESTS)

# The whole runner suite on arm64, once per backend, with live patching and
# the demo: cross-built, booted with test/arm64_init.c as init of Debian's
# arm64 kernel in qemu-system (-smp 2); live patching and the demo also
# under qemu-user, FLIP only (test/arm64_check.sh). Last line:
# "arm64: N passed, N failed".
check-arm64:
	sh test/arm64_check.sh build-arm64

# The whole runner in XM_PKEYS mode on a CPU with protection keys: booted as
# init of Debian's cloud kernel in qemu-system-x86_64 -cpu max
# (test/pkeys_check.sh); last line "pkeys: N passed, N failed".
check-pkeys:
	sh test/pkeys_check.sh build-pkeys

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
	    $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
	    $(DESTDIR)$(CMAKEDIR)
	install -m 755 $(O)/execmem $(DESTDIR)$(BINDIR)/
	install -m 644 tools/execmem.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
	for l in $(MAN3_LINKS); do \
	    ln -sf $${l#*:}.3 $(DESTDIR)$(MANDIR)/man3/$${l%%:*}.3 || exit 1; done
	$(CMAKE_SED) cmake/execmemConfig.cmake.in > $(DESTDIR)$(CMAKEDIR)/execmemConfig.cmake
	$(CMAKE_SED) cmake/execmemConfigVersion.cmake.in > $(DESTDIR)$(CMAKEDIR)/execmemConfigVersion.cmake
	install -m 644 include/execmem.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(O)/libexecmem.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(O)/libexecmem.so $(DESTDIR)$(LIBDIR)/libexecmem.so.$(VERSION)
	ln -sf libexecmem.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libexecmem.so.$(SOMAJOR)
	ln -sf libexecmem.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libexecmem.so
	$(PC_SED) execmem.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/execmem.pc

# Removes what install put there (the same PREFIX, LIBDIR, ..., DESTDIR),
# and the directories of its own that are left empty.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/execmem $(DESTDIR)$(MANDIR)/man1/execmem.1 \
	    $(DESTDIR)$(INCLUDEDIR)/execmem.h $(DESTDIR)$(LIBDIR)/libexecmem.a \
	    $(DESTDIR)$(LIBDIR)/libexecmem.so $(DESTDIR)$(LIBDIR)/libexecmem.so.$(SOMAJOR) \
	    $(DESTDIR)$(LIBDIR)/libexecmem.so.$(VERSION) $(DESTDIR)$(PKGCONFIGDIR)/execmem.pc \
	    $(DESTDIR)$(CMAKEDIR)/execmemConfig.cmake $(DESTDIR)$(CMAKEDIR)/execmemConfigVersion.cmake \
	    $(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN3)) $(foreach l,$(MAN3_LINKS),$(firstword $(subst :, ,$(l))).3))
	-rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null

# The manual pages, linted by mandoc (Debian package mandoc) and by groff
# through man --warnings (package groff): fails on any warning.
man-check:
	@command -v mandoc >/dev/null 2>&1 || { echo "man-check: mandoc not installed (apt-get install mandoc)"; exit 1; }
	mandoc -T lint -W warning tools/execmem.1 $(MAN3)
	@if command -v groff >/dev/null 2>&1; then for f in tools/execmem.1 $(MAN3); do \
	    w=$$(MANWIDTH=80 man --warnings -E UTF-8 -l $$f 2>&1 >/dev/null); \
	    [ -z "$$w" ] || { echo "$$f: $$w"; exit 1; }; done; \
	else echo "man-check: groff not installed, man --warnings skipped"; fi
	@echo "man-check: $(words tools/execmem.1 $(MAN3)) pages lint clean"

clean:
	rm -rf build build-*

.PHONY: uninstall man-check check-sljit check-llvm check-llvm-asan bench-llvm check-arm64 check-pkeys bench bench-sljit bench-deps asmjit-example stress fuzz fuzz-merge all run check check-asan check-ubsan check-tsan check-valgrind check-run check-debug install clean
