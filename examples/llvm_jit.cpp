// llvm_jit.cpp: LLVM's JIT (ORC LLJIT, JITLink) on execmem.
//
// Builds an LLJIT whose ObjectLinkingLayer allocates through
// execmem_llvm::ExecmemMemoryManager (adapters/llvm/), compiles a module of
// LLVM IR (functions calling each other and into this program, a jump table,
// a constant pool, a read-only table, a writable global), runs every
// function against a C++ reference, and unloads the module (ResourceTracker
// remove) in a churn loop. Afterwards it prints what the heap did: system
// calls and revocations (page-right removals, each a possible TLB shootdown).
//
//   llvm_jit [--backend dual|strict|flip|inplace] [--iterations N]
//
// Built by `make check-llvm` where llvm-config-14 exists. The test program
// test/llvm/test_llvm.cpp includes this file for its JIT and reference
// (LLVM_JIT_NO_MAIN).
#include "execmem_jitlink.h"

#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/JITLink/EHFrameSupport.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IRReader/IRReader.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace ex {

using namespace llvm;
using namespace llvm::orc;

// The host function the JIT code calls (through a JITLink PLT stub).
extern "C" int64_t host_scale(int64_t x) { return x * 10 + 3; }

// One module: every kind of segment a small compiled function produces.
static const char kModuleIR[] = R"IR(
declare i64 @host_scale(i64)

@counter = global i64 0
@ro_table = constant [8 x i64] [i64 2, i64 3, i64 5, i64 7, i64 11, i64 13, i64 17, i64 19]

define i64 @fib(i64 %n) {
entry:
  %c = icmp slt i64 %n, 2
  br i1 %c, label %base, label %rec
base:
  ret i64 %n
rec:
  %n1 = sub i64 %n, 1
  %a = call i64 @fib(i64 %n1)
  %n2 = sub i64 %n, 2
  %b = call i64 @fib(i64 %n2)
  %s = add i64 %a, %b
  ret i64 %s
}

define internal i64 @square(i64 %x) noinline {
  %r = mul i64 %x, %x
  ret i64 %r
}

define i64 @sum_squares(i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [1, %entry], [%i1, %loop]
  %acc = phi i64 [0, %entry], [%acc1, %loop]
  %sq = call i64 @square(i64 %i)
  %acc1 = add i64 %acc, %sq
  %i1 = add i64 %i, 1
  %done = icmp sgt i64 %i1, %n
  br i1 %done, label %exit, label %loop
exit:
  ret i64 %acc1
}

define i64 @host_call(i64 %x) {
  %y = call i64 @host_scale(i64 %x)
  %z = add i64 %y, 1
  ret i64 %z
}

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

define i64 @bump(i64 %d) {
  %v = load i64, i64* @counter
  %n = add i64 %v, %d
  store i64 %n, i64* @counter
  ret i64 %n
}
)IR";

// The same functions in C++.
static int64_t ref_fib(int64_t n) { return n < 2 ? n : ref_fib(n - 1) + ref_fib(n - 2); }
static int64_t ref_sum_squares(int64_t n)
{
    int64_t acc = 0, i = 1;
    do {
        acc += i * i;
        i++;
    } while (i <= n);
    return acc;
}
static int64_t ref_host_call(int64_t x) { return host_scale(x) + 1; }
static int64_t ref_classify(int64_t x)
{
    switch (x) {
    case 0: return x * 3;
    case 1: return x + 17;
    case 2: return x ^ 5;
    case 3: return x * x;
    case 4: return host_scale(x);
    case 5: return 42;
    case 6: return x - 100;
    case 7: return x << 4;
    default: return -1;
    }
}
static double ref_poly(double x) { return (x * 1.5 + 0.25) * x - 3.125; }
static const int64_t ref_table[8] = {2, 3, 5, 7, 11, 13, 17, 19};

[[noreturn]] [[maybe_unused]] static void die(Error E, const char *what)
{
    errs() << "llvm_jit: " << what << ": " << toString(std::move(E)) << "\n";
    std::exit(2);
}

// An LLJIT linking through `mm`, or through LLVM's own in-process JITLink
// memory manager when mm is null. `small` selects the small code model with
// PIC (the JIT default on x86-64 is the large code model).
static Expected<std::unique_ptr<LLJIT>>
make_jit(jitlink::JITLinkMemoryManager *mm, bool small = false)
{
    auto JTMB = JITTargetMachineBuilder::detectHost();
    if (!JTMB)
        return JTMB.takeError();
    if (small) {
        // small + static would use absolute 32-bit addresses (code in the
        // low 2 GiB); small + PIC is RIP-relative, and reaches what is not
        // dso_local through the GOT JITLink builds
        JTMB->setCodeModel(CodeModel::Small);
        JTMB->setRelocationModel(Reloc::PIC_);
    }
    auto J = LLJITBuilder()
                 .setJITTargetMachineBuilder(std::move(*JTMB))
                 // generic: the creator's parameters changed across versions
                 .setObjectLinkingLayerCreator(
                     [mm](ExecutionSession &ES, auto &&...)
                         -> Expected<std::unique_ptr<ObjectLayer>> {
                         std::unique_ptr<ObjectLinkingLayer> L;
                         if (mm)
                             L = std::make_unique<ObjectLinkingLayer>(ES, *mm);
                         else
                             L = std::make_unique<ObjectLinkingLayer>(ES);
                         // unwind tables registered after publish, so C++
                         // exceptions can cross JIT frames
                         L->addPlugin(std::make_unique<EHFrameRegistrationPlugin>(
                             ES, std::make_unique<jitlink::InProcessEHFrameRegistrar>()));
                         return std::unique_ptr<ObjectLayer>(std::move(L));
                     })
                 .create();
    if (!J)
        return J.takeError();
    auto &ES = (*J)->getExecutionSession();
    MangleAndInterner Mangle(ES, (*J)->getDataLayout());
    SymbolMap Host;
#if LLVM_VERSION_MAJOR >= 17
    Host[Mangle("host_scale")] = {ExecutorAddr::fromPtr(&host_scale),
                                  JITSymbolFlags::Exported};
#else
    Host[Mangle("host_scale")] = JITEvaluatedSymbol(
        pointerToJITTargetAddress(&host_scale), JITSymbolFlags::Exported);
#endif
    if (Error E = (*J)->getMainJITDylib().define(absoluteSymbols(std::move(Host))))
        return E;
    return J;
}

// Parses `ir` and adds it under a new resource tracker of the main JITDylib.
static Expected<ResourceTrackerSP> add_module(LLJIT &J, const char *ir = kModuleIR)
{
    auto Ctx = std::make_unique<LLVMContext>();
    SMDiagnostic Diag;
    auto M = parseIR(MemoryBufferRef(ir, "llvm_jit_module"), Diag, *Ctx);
    if (!M) {
        std::string S;
        raw_string_ostream OS(S);
        Diag.print("llvm_jit", OS);
        return make_error<StringError>(OS.str(), inconvertibleErrorCode());
    }
    auto RT = J.getMainJITDylib().createResourceTracker();
    if (Error E = J.addIRModule(RT, ThreadSafeModule(std::move(M), std::move(Ctx))))
        return E;
    return RT;
}

template <typename T> static Expected<T> lookup_as(LLJIT &J, StringRef name)
{
    auto S = J.lookup(name);
    if (!S)
        return S.takeError();
#if LLVM_VERSION_MAJOR >= 15
    return S->template toPtr<T>();
#else
    return jitTargetAddressToPointer<T>(S->getAddress());
#endif
}

// The module's entry points, looked up after add_module.
struct Fns {
    int64_t (*fib)(int64_t);
    int64_t (*sum_squares)(int64_t);
    int64_t (*host_call)(int64_t);
    int64_t (*classify)(int64_t);
    double (*poly)(double);
    int64_t (*lookup)(int64_t);
    int64_t (*bump)(int64_t);
    const int64_t *ro_table;
    int64_t *counter;
};

static Error lookup_all(LLJIT &J, Fns &f)
{
#define EX_LOOKUP(field)                                                       \
    do {                                                                       \
        auto P = lookup_as<decltype(f.field)>(J, #field);                      \
        if (!P)                                                                \
            return P.takeError();                                              \
        f.field = *P;                                                          \
    } while (0)
    EX_LOOKUP(fib);
    EX_LOOKUP(sum_squares);
    EX_LOOKUP(host_call);
    EX_LOOKUP(classify);
    EX_LOOKUP(poly);
    EX_LOOKUP(lookup);
    EX_LOOKUP(bump);
    EX_LOOKUP(ro_table);
    EX_LOOKUP(counter);
#undef EX_LOOKUP
    return Error::success();
}

// Runs every function on a set of inputs; returns the number of mismatches
// (each printed) and the number of calls in *calls.
static int check_all(const Fns &f, long *calls)
{
    int bad = 0;
    long n = 0;
    auto expect = [&](const char *what, int64_t arg, int64_t got, int64_t want) {
        n++;
        if (got != want) {
            std::printf("    %s(%lld) = %lld, expected %lld\n", what, (long long)arg,
                        (long long)got, (long long)want);
            bad++;
        }
    };
    for (int64_t x = 0; x <= 20; x++)
        expect("fib", x, f.fib(x), ref_fib(x));
    for (int64_t x = 1; x <= 50; x += 7)
        expect("sum_squares", x, f.sum_squares(x), ref_sum_squares(x));
    for (int64_t x = -5; x <= 5; x++)
        expect("host_call", x, f.host_call(x), ref_host_call(x));
    for (int64_t x = -3; x <= 12; x++)
        expect("classify", x, f.classify(x), ref_classify(x));
    for (int64_t x = -4; x <= 4; x++) {
        double d = x * 0.5;
        n++;
        if (f.poly(d) != ref_poly(d)) {
            std::printf("    poly(%g) = %g, expected %g\n", d, f.poly(d), ref_poly(d));
            bad++;
        }
    }
    for (int64_t x = 0; x < 16; x++)
        expect("lookup", x, f.lookup(x), ref_table[x & 7]);
    for (int i = 0; i < 8; i++)
        expect("ro_table[i]", i, f.ro_table[i], ref_table[i]);
    // the writable global: starts at zero in every load of the module
    int64_t start = *f.counter;
    expect("counter at load", 0, start, 0);
    expect("bump", 5, f.bump(5), 5);
    expect("bump", 7, f.bump(7), 12);
    expect("counter", 0, *f.counter, 12);
    if (calls)
        *calls += n;
    return bad;
}

static xm_heap *make_heap(const char *backend)
{
    xm_options o = XM_OPTIONS_INIT;
    if (!std::strcmp(backend, "dual")) {
        o.backend = XM_BACKEND_DUAL;
    } else if (!std::strcmp(backend, "strict")) {
        o.backend = XM_BACKEND_DUAL;
        o.flags = XM_STRICT;
    } else if (!std::strcmp(backend, "flip")) {
        o.backend = XM_BACKEND_FLIP;
    } else if (!std::strcmp(backend, "inplace")) {
        o.backend = XM_BACKEND_DUAL;
        o.flags = XM_INPLACE;
    } else {
        std::fprintf(stderr, "llvm_jit: unknown backend %s\n", backend);
        return nullptr;
    }
    xm_heap *h = nullptr;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK)
        std::fprintf(stderr, "llvm_jit: xm_heap_create(%s): %s\n", backend,
                     xm_strerror(r));
    return h;
}

static void init_llvm()
{
    InitializeNativeTarget();
    InitializeNativeTargetAsmPrinter();
}

} // namespace ex

#ifndef LLVM_JIT_NO_MAIN
int main(int argc, char **argv)
{
    using namespace ex;
    const char *backend = "dual";
    long iterations = 100;
    for (int i = 1; i < argc; i++) {
        if (!std::strcmp(argv[i], "--backend") && i + 1 < argc)
            backend = argv[++i];
        else if (!std::strcmp(argv[i], "--iterations") && i + 1 < argc)
            iterations = std::atol(argv[++i]);
        else {
            std::fprintf(stderr, "usage: %s [--backend dual|strict|flip|inplace] "
                                 "[--iterations N]\n", argv[0]);
            return 2;
        }
    }
    init_llvm();
    xm_heap *heap = make_heap(backend);
    if (!heap)
        return 2;
    int bad = 0;
    long calls = 0;
    {
        execmem_llvm::ExecmemMemoryManager mm(heap);
        auto J = make_jit(&mm);
        if (!J)
            die(J.takeError(), "LLJIT");
        for (long it = 0; it < iterations; it++) {
            auto RT = add_module(**J);
            if (!RT)
                die(RT.takeError(), "add module");
            Fns f{};
            if (Error E = lookup_all(**J, f))
                die(std::move(E), "lookup");
            bad += check_all(f, &calls);
            if (Error E = (*RT)->remove())
                die(std::move(E), "unload");
        }
        auto s = mm.stats();
        xm_stats hs;
        xm_heap_stats(heap, &hs);
        std::printf("llvm_jit: %ld modules compiled, linked into execmem (%s), run and "
                    "unloaded; %ld calls checked, %d mismatches\n",
                    iterations, backend, calls, bad);
        std::printf("  segments: %llu code blocks, %llu read-only data blocks, %llu "
                    "read-write allocations; %llu sections re-marked read-only\n",
                    (unsigned long long)s.code_segments,
                    (unsigned long long)s.data_segments,
                    (unsigned long long)s.rw_segments,
                    (unsigned long long)s.remarked_sections);
        std::printf("  heap: %llu system calls, %llu revocations, %llu purges; %llu "
                    "allocations live\n",
                    (unsigned long long)hs.syscalls,
                    (unsigned long long)hs.revocations,
                    (unsigned long long)hs.purges, (unsigned long long)s.live);
    } // the JIT (and its memory manager) go before the heap
    xm_heap_destroy(heap);
    return bad ? 1 : 0;
}
#endif
