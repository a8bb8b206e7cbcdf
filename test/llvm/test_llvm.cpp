// test_llvm.cpp: LLVM's JIT (LLJIT + JITLink) on execmem through
// adapters/llvm (make check-llvm). Every test runs in every backend: DUAL,
// DUAL + XM_STRICT, FLIP and DUAL + XM_INPLACE. It observes behaviour: runs
// the JIT code against the C++ reference of examples/llvm_jit.cpp, forks
// children that must die by a signal, audits /proc/self/maps, and reads the
// heap's counters. The last line is "llvm: N passed, N failed".
//
//   test_llvm [substring...]   runs the tests whose "name backend" contains
//                              one of the substrings
#define LLVM_JIT_NO_MAIN
#include "../../examples/llvm_jit.cpp"

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

using namespace ex;

namespace {

int test_failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            std::printf("    %s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                        #cond);                                                \
            test_failed++;                                                     \
            return;                                                            \
        }                                                                      \
    } while (0)
#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            std::printf("    %s:%d: %s == %lld, expected %s == %lld\n",        \
                        __FILE__, __LINE__, #a, a_, #b, b_);                   \
            test_failed++;                                                     \
            return;                                                            \
        }                                                                      \
    } while (0)
#define CHECK_OK_ERR(expr)                                                     \
    do {                                                                       \
        if (Error E_ = (expr)) {                                               \
            std::printf("    %s:%d: %s: %s\n", __FILE__, __LINE__, #expr,      \
                        toString(std::move(E_)).c_str());                      \
            test_failed++;                                                     \
            return;                                                            \
        }                                                                      \
    } while (0)

const char *const kBackends[] = {"dual", "strict", "flip", "inplace"};

// A heap, a memory manager on it and an LLJIT on that, torn down in the
// right order (JIT, manager, heap) also when a check returns early.
struct Env {
    const char *backend = nullptr;
    xm_heap *heap = nullptr;
    std::unique_ptr<execmem_llvm::ExecmemMemoryManager> mm;
    std::unique_ptr<LLJIT> jit;
    std::string error;
    std::string session_errors;

    Env(const char *b, bool small = false) : backend(b)
    {
        heap = make_heap(b);
        if (!heap) {
            error = "no heap";
            return;
        }
        mm = std::make_unique<execmem_llvm::ExecmemMemoryManager>(heap);
        auto J = make_jit(mm.get(), small);
        if (!J) {
            error = toString(J.takeError());
            return;
        }
        jit = std::move(*J);
        // link errors are reported here too: keep them for the checks
        jit->getExecutionSession().setErrorReporter(
            [this](Error E) { session_errors += toString(std::move(E)) + "\n"; });
    }
    ~Env()
    {
        jit.reset();
        mm.reset();
        xm_heap_destroy(heap);
    }
    bool ok() const { return jit != nullptr; }
    bool strict() const { return !std::strcmp(backend, "strict"); }
    bool flip() const { return !std::strcmp(backend, "flip"); }
    xm_stats hstats() const
    {
        xm_stats s;
        std::memset(&s, 0, sizeof s);
        xm_heap_stats(heap, &s);
        return s;
    }
};

// Forks; the child runs fn and exits 0. Returns the signal that killed the
// child, 0 if it exited, -1 on error.
template <typename F> int child_signal(F fn)
{
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        std::signal(SIGTRAP, SIG_DFL);
        std::signal(SIGSEGV, SIG_DFL);
        std::signal(SIGILL, SIG_DFL);
        fn();
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

bool in_heap(xm_heap *h, const void *p)
{
    xm_block b;
    return xm_query(h, p, &b) == XM_OK;
}

// ---- the tests ----------------------------------------------------------

// The example's module: every function against the reference; code and
// read-only data in execmem blocks, the writable global outside the heap;
// the read-only table cannot be written.
void test_results(const char *backend)
{
    Env env(backend);
    if (!env.ok())
        std::printf("    %s\n", env.error.c_str());
    CHECK(env.ok());
    auto RT = add_module(*env.jit);
    CHECK_OK_ERR(RT.takeError());
    Fns f{};
    CHECK_OK_ERR(lookup_all(*env.jit, f));
    long calls = 0;
    CHECK_EQ(check_all(f, &calls), 0);
    CHECK(calls > 80);
    CHECK(in_heap(env.heap, reinterpret_cast<const void *>(f.fib)));
    CHECK(in_heap(env.heap, reinterpret_cast<const void *>(f.classify)));
    CHECK(in_heap(env.heap, f.ro_table));
    CHECK(!in_heap(env.heap, f.counter));
    auto s = env.mm->stats();
    CHECK_EQ(s.code_segments, 1);
    CHECK_EQ(s.data_segments, 1);
    CHECK_EQ(s.rw_segments, 1);
    CHECK(s.remarked_sections >= 2); // .rodata*, .eh_frame at least
    CHECK_EQ(s.live, 1);
    // read-only data is read-only, and never executable
    const int64_t *ro = f.ro_table;
    CHECK_EQ(child_signal([&] { *const_cast<volatile int64_t *>(ro) = 1; }), SIGSEGV);
    CHECK_EQ(child_signal([&] {
                 auto g = reinterpret_cast<int64_t (*)()>(const_cast<int64_t *>(ro));
                 g();
             }),
             SIGSEGV);
    // control: the child can run the code itself
    auto fib = f.fib;
    CHECK_EQ(child_signal([&] { _exit(fib(10) == 55 ? 0 : 1); }), 0);
    CHECK_OK_ERR((*RT)->remove());
    CHECK_EQ(env.mm->stats().live, 0);
    CHECK_EQ(env.mm->stats().deallocated, 1);
    CHECK_EQ(env.hstats().live_blocks, 0);
}

// After ResourceTracker::remove the old code traps (at its entry and inside
// it), and execmem no longer knows the addresses.
void test_unload_traps(const char *backend)
{
    Env env(backend);
    CHECK(env.ok());
    auto RT = add_module(*env.jit);
    CHECK_OK_ERR(RT.takeError());
    Fns f{};
    CHECK_OK_ERR(lookup_all(*env.jit, f));
    CHECK_EQ(f.fib(20), 6765);
    auto fib = f.fib;
    auto classify = f.classify;
    CHECK_OK_ERR((*RT)->remove());
    CHECK(!in_heap(env.heap, reinterpret_cast<const void *>(fib)));
    for (auto fn : {fib, classify}) {
        int sig = child_signal([&] { fn(10); });
        if (sig != SIGTRAP && sig != SIGSEGV && sig != SIGILL)
            std::printf("    the unloaded function at %p: child ended with signal %d\n",
                        reinterpret_cast<void *>(fn), sig);
        CHECK(sig == SIGTRAP || sig == SIGSEGV || sig == SIGILL);
    }
    // a byte inside the old function, not only its entry
    const char *mid = reinterpret_cast<const char *>(fib) + 5;
    int sig = child_signal([&] { reinterpret_cast<void (*)()>(const_cast<char *>(mid))(); });
    CHECK(sig == SIGTRAP || sig == SIGSEGV || sig == SIGILL);
    // the symbols are gone from the JIT as well
    auto again = env.jit->lookup("fib");
    CHECK(!again);
    consumeError(again.takeError());
}

// With a module loaded and after unloading it: no mapping of this process
// is writable and executable; with XM_STRICT no W+X alias either (DUAL and
// INPLACE keep their documented writable alias).
void test_audit(const char *backend)
{
    Env env(backend);
    CHECK(env.ok());
    auto RT = add_module(*env.jit);
    CHECK_OK_ERR(RT.takeError());
    Fns f{};
    CHECK_OK_ERR(lookup_all(*env.jit, f));
    CHECK_EQ(check_all(f, nullptr), 0);
    for (int stage = 0; stage < 2; stage++) {
        xm_audit_report a;
        CHECK_EQ(xm_audit(0, &a), XM_OK);
        if (a.wx_mappings || (env.strict() && a.wx_aliases)) {
            std::printf("    stage %d: %zu W+X mappings, %zu W+X aliases\n", stage,
                        a.wx_mappings, a.wx_aliases);
            for (size_t i = 0; i < a.nranges; i++)
                std::printf("      %#lx-%#lx kind %u %s\n", (unsigned long)a.ranges[i].start,
                            (unsigned long)a.ranges[i].end, a.ranges[i].kind,
                            a.ranges[i].path);
        }
        CHECK_EQ(a.wx_mappings, 0);
        if (env.strict())
            CHECK_EQ(a.wx_aliases, 0);
        if (stage == 0)
            CHECK_OK_ERR((*RT)->remove());
    }
}

// Churn: load, check, unload the module many times. After a warm-up, an
// unload makes no revocation (no page loses a right, so no TLB shootdown);
// FLIP changes rights per block by design (README: about one revocation per
// published block freed), so there the bound is the blocks freed.
void test_churn_revocations(const char *backend)
{
    Env env(backend);
    CHECK(env.ok());
    const int warmup = 10, rounds = 40;
    uint64_t rev = 0, sys = 0, blocks = 0;
    for (int i = 0; i < warmup + rounds; i++) {
        auto RT = add_module(*env.jit);
        CHECK_OK_ERR(RT.takeError());
        Fns f{};
        CHECK_OK_ERR(lookup_all(*env.jit, f));
        CHECK_EQ(check_all(f, nullptr), 0);
        xm_stats before = env.hstats();
        CHECK_OK_ERR((*RT)->remove());
        xm_stats after = env.hstats();
        if (i >= warmup) {
            rev += after.revocations - before.revocations;
            sys += after.syscalls - before.syscalls;
            blocks += after.frees - before.frees;
        }
    }
    std::printf("    %s: %d unloads after warm-up: %llu revocations, %llu system calls, "
                "%llu execmem blocks freed\n",
                backend, rounds, (unsigned long long)rev, (unsigned long long)sys,
                (unsigned long long)blocks);
    CHECK_EQ(blocks, 2 * rounds); // one code block and one data block each
    if (env.flip())
        CHECK(rev <= blocks);
    else
        CHECK_EQ(rev, 0);
    CHECK_EQ(env.mm->stats().live, 0);
    CHECK_EQ(env.hstats().live_blocks, 0);
}

// A link that fails after allocation (an undefined symbol) abandons the
// in-flight allocation: its blocks are freed and the heap keeps working.
void test_abandon(const char *backend)
{
    static const char kBad[] = R"IR(
declare i64 @no_such_function(i64)
@tbl = constant [4 x i64] [i64 1, i64 2, i64 3, i64 4]
define i64 @bad(i64 %x) {
  %y = call i64 @no_such_function(i64 %x)
  ret i64 %y
}
)IR";
    Env env(backend);
    CHECK(env.ok());
    auto RT = add_module(*env.jit, kBad);
    CHECK_OK_ERR(RT.takeError());
    auto S = env.jit->lookup("bad");
    CHECK(!S);
    consumeError(S.takeError());
    CHECK(env.session_errors.find("no_such_function") != std::string::npos);
    auto s = env.mm->stats();
    CHECK_EQ(s.finalized, 0);
    CHECK_EQ(s.live, 0);
    if (s.allocations) // JITLink allocated before resolving externals
        CHECK_EQ(s.abandoned, s.allocations);
    CHECK_EQ(env.hstats().live_blocks, 0);
    CHECK_OK_ERR((*RT)->remove());
    // the heap and the JIT still work
    auto RT2 = add_module(*env.jit);
    CHECK_OK_ERR(RT2.takeError());
    Fns f{};
    CHECK_OK_ERR(lookup_all(*env.jit, f));
    CHECK_EQ(check_all(f, nullptr), 0);
    CHECK_OK_ERR((*RT2)->remove());
}

// The small code model: code reaches its read-only data (jump tables,
// constant pools, the table) with rel32, and both live in the one heap
// reserve (at most 2 GiB), so a module without writable data links and
// runs. The writable global lives in ordinary memory: the link must then
// either fail with an error or have it within reach (never a silent
// truncation).
void test_small_code_model(const char *backend)
{
    static const char kNoRW[] = R"IR(
declare i64 @host_scale(i64)
@ro_table = constant [8 x i64] [i64 2, i64 3, i64 5, i64 7, i64 11, i64 13, i64 17, i64 19]
define i64 @classify(i64 %x) {
entry:
  switch i64 %x, label %other [
    i64 0, label %c0
    i64 1, label %c1
    i64 2, label %c2
    i64 3, label %c3
    i64 4, label %c4
    i64 5, label %c5
    i64 6, label %c6
    i64 7, label %c7
  ]
c0:
  %r0 = mul i64 %x, 3
  ret i64 %r0
c1:
  %r1 = add i64 %x, 17
  ret i64 %r1
c2:
  %r2 = xor i64 %x, 5
  ret i64 %r2
c3:
  %r3 = mul i64 %x, %x
  ret i64 %r3
c4:
  %r4 = call i64 @host_scale(i64 %x)
  ret i64 %r4
c5:
  ret i64 42
c6:
  %r6 = sub i64 %x, 100
  ret i64 %r6
c7:
  %r7 = shl i64 %x, 4
  ret i64 %r7
other:
  ret i64 -1
}
define double @poly(double %x) {
  %a = fmul double %x, 1.5
  %b = fadd double %a, 2.5e-1
  %c = fmul double %b, %x
  %d = fsub double %c, 3.125
  ret double %d
}
define i64 @lookup(i64 %i) {
  %j = and i64 %i, 7
  %p = getelementptr [8 x i64], [8 x i64]* @ro_table, i64 0, i64 %j
  %v = load i64, i64* %p
  ret i64 %v
}
)IR";
    Env env(backend, /*small=*/true);
    CHECK(env.ok());
    {
        auto RT = add_module(*env.jit, kNoRW);
        CHECK_OK_ERR(RT.takeError());
        auto classify = lookup_as<int64_t (*)(int64_t)>(*env.jit, "classify");
        CHECK_OK_ERR(classify.takeError());
        auto poly = lookup_as<double (*)(double)>(*env.jit, "poly");
        CHECK_OK_ERR(poly.takeError());
        auto lookup = lookup_as<int64_t (*)(int64_t)>(*env.jit, "lookup");
        CHECK_OK_ERR(lookup.takeError());
        for (int64_t x = -2; x < 10; x++) {
            CHECK_EQ((*classify)(x), ref_classify(x));
            CHECK_EQ((*lookup)(x), ref_table[x & 7]);
            CHECK((*poly)(x * 0.5) == ref_poly(x * 0.5));
        }
        CHECK_EQ(env.mm->stats().rw_segments, 0);
        CHECK_OK_ERR((*RT)->remove());
    }
    // the example's module: its writable global is not dso_local, so the
    // code reaches it through the GOT (any distance); and the same module
    // with the global dso_local, which code reaches with rel32 directly
    std::string local = kModuleIR;
    size_t at = local.find("@counter = global");
    CHECK(at != std::string::npos);
    local.replace(at, std::strlen("@counter = global"), "@counter = dso_local global");
    for (const char *ir : {static_cast<const char *>(kModuleIR), local.c_str()}) {
        env.session_errors.clear();
        auto RT = add_module(*env.jit, ir);
        CHECK_OK_ERR(RT.takeError());
        Fns f{};
        Error E = lookup_all(*env.jit, f);
        if (E) {
            consumeError(std::move(E));
            std::printf("    %s: small code model, %s writable global: link refused: %.120s\n",
                        backend, ir == kModuleIR ? "GOT-reached" : "dso_local",
                        env.session_errors.c_str());
            CHECK(env.session_errors.find("out of range") != std::string::npos);
            CHECK(ir != kModuleIR); // through the GOT it always links
        } else {
            long long d = reinterpret_cast<const char *>(f.counter) -
                          reinterpret_cast<const char *>(f.bump);
            std::printf("    %s: small code model, %s writable global linked (code to "
                        "data: %lld bytes)\n",
                        backend, ir == kModuleIR ? "GOT-reached" : "dso_local", d);
            if (ir != kModuleIR) // rel32 reach, or the link would have failed
                CHECK(d > -(1LL << 31) && d < (1LL << 31));
            CHECK_EQ(check_all(f, nullptr), 0);
        }
        CHECK_OK_ERR((*RT)->remove());
    }
    CHECK_EQ(env.hstats().live_blocks, 0);
}

// C++ exceptions cross JIT frames: the unwind tables (.eh_frame, in a
// read-only data block) are registered after publish by LLVM's
// EHFrameRegistrationPlugin. The host throws through a JIT function and
// catches above it, in a child (without registration it would terminate).
extern "C" int64_t host_throw(int64_t x)
{
    if (x > 0)
        throw static_cast<int>(x * 2);
    return -x;
}
void test_exceptions(const char *backend)
{
    static const char kIR[] = R"IR(
declare i64 @host_throw(i64)
define i64 @through_jit(i64 %x) {
  %y = call i64 @host_throw(i64 %x)
  %z = add i64 %y, 1
  ret i64 %z
}
)IR";
    Env env(backend);
    CHECK(env.ok());
    auto &ES = env.jit->getExecutionSession();
    MangleAndInterner Mangle(ES, env.jit->getDataLayout());
    SymbolMap Host;
#if LLVM_VERSION_MAJOR >= 17
    Host[Mangle("host_throw")] = {ExecutorAddr::fromPtr(&host_throw),
                                  JITSymbolFlags::Exported};
#else
    Host[Mangle("host_throw")] = JITEvaluatedSymbol(
        pointerToJITTargetAddress(&host_throw), JITSymbolFlags::Exported);
#endif
    CHECK_OK_ERR(env.jit->getMainJITDylib().define(absoluteSymbols(std::move(Host))));
    auto RT = add_module(*env.jit, kIR);
    CHECK_OK_ERR(RT.takeError());
    auto fn = lookup_as<int64_t (*)(int64_t)>(*env.jit, "through_jit");
    CHECK_OK_ERR(fn.takeError());
    auto f = *fn;
    CHECK_EQ(f(-4), 5);
    CHECK_EQ(child_signal([&] {
                 int caught = 0;
                 try {
                     f(21);
                 } catch (int v) {
                     caught = v;
                 }
                 _exit(caught == 42 ? 0 : 3);
             }),
             0);
    CHECK_OK_ERR((*RT)->remove());
}

struct Test {
    const char *name;
    void (*fn)(const char *backend);
};
const Test kTests[] = {
    {"llvm_results", test_results},
    {"llvm_unload_traps", test_unload_traps},
    {"llvm_audit", test_audit},
    {"llvm_churn_revocations", test_churn_revocations},
    {"llvm_abandon", test_abandon},
    {"llvm_small_code_model", test_small_code_model},
    {"llvm_exceptions", test_exceptions},
};

} // namespace

int main(int argc, char **argv)
{
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    init_llvm();
    int passed = 0, failed = 0;
    for (const char *b : kBackends) {
        for (const Test &t : kTests) {
            std::string name = std::string(t.name) + " " + b;
            bool run = argc < 2;
            for (int k = 1; k < argc; k++)
                if (name.find(argv[k]) != std::string::npos)
                    run = true;
            if (!run)
                continue;
            test_failed = 0;
            t.fn(b);
            std::printf("%s %s\n", test_failed ? "FAIL" : "ok  ", name.c_str());
            (test_failed ? failed : passed)++;
        }
    }
    std::printf("llvm: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
