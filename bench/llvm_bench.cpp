// llvm_bench.cpp: compile + run + unload of N small IR modules with LLVM's
// own in-process memory managers and with execmem's JITLink memory manager
// (adapters/llvm). LLVM's compile time dominates every row; the point is
// what the memory side costs: system calls and TLB shootdowns per module.
//
// Rows: LLJIT's default object layer (LLVM 14 on ELF: RuntimeDyld with
// SectionMemoryManager), JITLink with LLVM's InProcessMemoryManager, and
// JITLink with ExecmemMemoryManager on DUAL, DUAL+XM_STRICT and FLIP heaps.
// Each row: a fresh LLJIT, a warm-up, then N modules (the example's module:
// 8 functions, a jump table, a constant pool, a table, a writable global),
// each compiled, linked, its functions run and checked, and removed.
//
// System calls are counted by interposing mmap, munmap, mprotect and
// mremap in this binary (LLVM's shared library and the execmem archive both
// call them through here; glibc's malloc calls the kernel directly and is
// not counted, in either row); execmem's pwrite (XM_STRICT) and the rest
// are in its own xm_heap_stats. TLB shootdowns: /proc/interrupts "TLB:"
// summed over CPUs, for the whole machine (other processes add noise). A
// second thread of this process spins during the run (--no-spinner turns it
// off), so a rights removal on present pages must interrupt its CPU, as in
// any multi-threaded JIT host.
//
//   llvm_bench [--modules N] [--no-spinner] [--only SUBSTRING]  (N = 100)
#define LLVM_JIT_NO_MAIN
#include "../examples/llvm_jit.cpp"

#include "../tools/proc_tlb.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <csignal>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

// ---- system call counting by interposition --------------------------------
static std::atomic<unsigned long> n_mmap, n_munmap, n_mprotect, n_mremap;
// calls that may remove a right from present pages: munmap, and mprotect to
// a protection without write (LLVM's managers write a segment, then protect
// it; execmem FLIP's own revocations are in its xm_heap_stats)
static std::atomic<unsigned long> n_drops;

static long forward(long r)
{
    if (r < 0 && r > -4096) {
        errno = static_cast<int>(-r);
        return -1;
    }
    return r;
}

extern "C" {
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    n_mmap++;
    long r = forward(syscall(SYS_mmap, addr, len, prot, flags, fd, off));
    return r == -1 ? reinterpret_cast<void *>(-1) : reinterpret_cast<void *>(r);
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}
int munmap(void *addr, size_t len)
{
    n_munmap++;
    n_drops++;
    return static_cast<int>(forward(syscall(SYS_munmap, addr, len)));
}
int mprotect(void *addr, size_t len, int prot)
{
    n_mprotect++;
    if (!(prot & 2 /* PROT_WRITE */))
        n_drops++;
    return static_cast<int>(forward(syscall(SYS_mprotect, addr, len, prot)));
}
void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    n_mremap++;
    void *new_addr = nullptr;
    if (flags & 2 /* MREMAP_FIXED */) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    long r = forward(syscall(SYS_mremap, old, old_len, new_len, flags, new_addr));
    return r == -1 ? reinterpret_cast<void *>(-1) : reinterpret_cast<void *>(r);
}
}

static unsigned long counted() { return n_mmap + n_munmap + n_mprotect + n_mremap; }

// ---- rows -------------------------------------------------------------------
using namespace ex;

struct Row {
    const char *name;
    const char *backend; // execmem backend, or nullptr
    bool rtdyld;         // LLJIT's default object layer
};

static Expected<std::unique_ptr<LLJIT>> make_default_jit()
{
    auto J = LLJITBuilder().create();
    if (!J)
        return J.takeError();
    MangleAndInterner Mangle((*J)->getExecutionSession(), (*J)->getDataLayout());
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

static int run_row(const Row &row, int modules)
{
    xm_heap *heap = row.backend ? make_heap(row.backend) : nullptr;
    if (row.backend && !heap)
        return 1;
    int bad = 0;
    {
        std::unique_ptr<execmem_llvm::ExecmemMemoryManager> mm;
        if (heap)
            mm = std::make_unique<execmem_llvm::ExecmemMemoryManager>(heap);
        auto J = row.rtdyld ? make_default_jit() : make_jit(mm.get());
        if (!J)
            die(J.takeError(), "LLJIT");
        auto one = [&]() {
            auto RT = add_module(**J);
            if (!RT)
                die(RT.takeError(), "add module");
            Fns f{};
            if (Error E = lookup_all(**J, f))
                die(std::move(E), "lookup");
            bad += check_all(f, nullptr);
            if (Error E = (*RT)->remove())
                die(std::move(E), "unload");
        };
        for (int i = 0; i < 10; i++) // warm-up
            one();
        xm_stats h0{}, h1{};
        if (heap)
            xm_heap_stats(heap, &h0);
        unsigned long c0 = counted(), m0 = n_mprotect, u0 = n_munmap, d0 = n_drops;
        long long t0 = proc_tlb_shootdowns();
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < modules; i++)
            one();
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        long long t1 = proc_tlb_shootdowns();
        unsigned long c1 = counted(), m1 = n_mprotect, u1 = n_munmap, d1 = n_drops;
        if (heap)
            xm_heap_stats(heap, &h1);
        double per = 1.0 / modules;
        // rights removals: execmem counts its own; for LLVM's managers the
        // interposed calls that may remove a right
        double drops = heap ? (h1.revocations - h0.revocations) * per : (d1 - d0) * per;
        std::printf("| %-40s | %7.0f | %8.2f | %8.2f | %8.2f | %9.2f | %8s |\n", row.name,
                    secs * 1e6 * per, (c1 - c0) * per, (m1 - m0) * per, (u1 - u0) * per,
                    drops,
                    t0 < 0 ? "n/a" : std::to_string((t1 - t0) * per).substr(0, 5).c_str());
        // after an unload, does the old code still run? (a forked child
        // calls it: exit status 0 and the right result means it ran)
        int64_t (*old_fib)(int64_t) = nullptr;
        {
            auto RT = add_module(**J);
            if (!RT)
                die(RT.takeError(), "add module");
            auto P = lookup_as<int64_t (*)(int64_t)>(**J, "fib");
            if (!P)
                die(P.takeError(), "lookup");
            old_fib = *P;
            if (Error E = (*RT)->remove())
                die(std::move(E), "unload");
        }
        std::fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            std::signal(SIGTRAP, SIG_DFL);
            std::signal(SIGSEGV, SIG_DFL);
            std::signal(SIGILL, SIG_DFL);
            _exit(old_fib(10) == 55 ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        std::printf("|   unloaded code called in a child: %s |\n",
                    WIFSIGNALED(st) ? (WTERMSIG(st) == SIGTRAP   ? "traps (SIGTRAP)"
                                       : WTERMSIG(st) == SIGSEGV ? "faults (SIGSEGV)"
                                                                 : "dies by a signal")
                    : WEXITSTATUS(st) == 0 ? "STILL RUNS (fib(10) == 55)"
                                           : "runs, wrong result");
        if (heap)
            std::printf("|   (execmem's own count: %.2f system calls per module, pwrite "
                        "included) |\n",
                        (h1.syscalls - h0.syscalls) * per);
    }
    xm_heap_destroy(heap);
    if (bad)
        std::printf("  %s: %d wrong results\n", row.name, bad);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    int modules = 100;
    bool spinner = true;
    const char *only = nullptr;
    for (int i = 1; i < argc; i++) {
        if (!std::strcmp(argv[i], "--modules") && i + 1 < argc)
            modules = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--no-spinner"))
            spinner = false;
        else if (!std::strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--modules N] [--no-spinner] [--only SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    if (modules < 1)
        modules = 1;
    init_llvm();
    std::atomic<bool> stop{false};
    std::thread spin;
    if (spinner)
        spin = std::thread([&] {
            while (!stop.load(std::memory_order_relaxed)) {
            }
        });
    static const Row rows[] = {
        {"LLJIT default (RuntimeDyld, SectionMM)", nullptr, true},
        {"JITLink + InProcessMemoryManager", nullptr, false},
        {"JITLink + execmem DUAL", "dual", false},
        {"JITLink + execmem DUAL+STRICT", "strict", false},
        {"JITLink + execmem FLIP", "flip", false},
    };
    std::printf("llvm_bench: %d modules per row (after 10 warm-up), LLVM %s, %s\n", modules,
                LLVM_VERSION_STRING,
                spinner ? "a second thread spinning" : "no second thread");
    std::printf("| %-40s | %7s | %8s | %8s | %8s | %9s | %8s |\n", "memory manager",
                "us/mod", "sys/mod", "mprot", "munmap", "drops/mod", "TLB/mod");
    std::printf("|%s|---------|----------|----------|----------|-----------|----------|\n",
                std::string(42, '-').c_str());
    int bad = 0;
    for (const Row &r : rows)
        if (!only || std::strstr(r.name, only))
            bad |= run_row(r, modules);
    stop = true;
    if (spin.joinable())
        spin.join();
    std::printf("sys/mod: mmap+munmap+mprotect+mremap through this binary; drops/mod: "
                "calls that remove a right from present pages (execmem: its revocations; "
                "LLVM: munmap + mprotect without write), each a TLB shootdown of every "
                "other CPU running the process; TLB/mod: /proc/interrupts, whole machine\n");
    return bad;
}
