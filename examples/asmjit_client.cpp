/* SPDX-License-Identifier: MIT */
// asmjit_client.cpp: a JIT that nobody here wrote, running on the execmem
// heap through adapters/asmjit/execmem_jitruntime.h, a drop-in with
// asmjit's JitRuntime shape (add(&fn, &code), release(fn)). asmjit
// (Debian's libasmjit-dev) assembles functions; the runtime relocates each
// to the rx address of an execmem block, copies it through rw and
// publishes it. Then a constant of published code is patched the way
// offset-based JITs do: write through rw (rx + offset), xm_commit. Runs in
// every backend: DUAL, DUAL + XM_STRICT, FLIP (argument dual|strict|flip;
// none: all three). The heap is created `near` this program, so calls
// into the host program are plain rel32 calls.
//
// Built and run by `make check` when libasmjit-dev is installed.
#include <asmjit/x86.h>
#include <execmem.h>
#include <execmem_jitruntime.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

using namespace asmjit;

static int64_t host_scale(int64_t x) { return x * 10; }

typedef void (*build_fn)(x86::Assembler &a);

// int64 f(int64 x) { return 3 * x + 7; } (the 7 a 32-bit immediate at the
// end of the add: patched below)
static void build_affine(x86::Assembler &a)
{
    a.imul(x86::rax, x86::rdi, 3);
    a.long_().add(x86::rax, 7);
    a.ret();
}

// int64 f(int64 n) { s = 0; for (i = 1; i <= n; i++) s += i; return s; }
static void build_loop(x86::Assembler &a)
{
    Label loop = a.newLabel(), done = a.newLabel();
    a.xor_(x86::eax, x86::eax);
    a.test(x86::rdi, x86::rdi);
    a.jle(done);
    a.bind(loop);
    a.add(x86::rax, x86::rdi);
    a.dec(x86::rdi);
    a.jnz(loop);
    a.bind(done);
    a.ret();
}

// int64 f(int64 x) { return host_scale(x) + 1; }: a call into the host.
static void build_call(x86::Assembler &a)
{
    a.sub(x86::rsp, 8);
    a.call(Imm(reinterpret_cast<uint64_t>(&host_scale)));
    a.add(x86::rsp, 8);
    a.add(x86::rax, 1);
    a.ret();
}

static int run(const char *mode)
{
    xm_options o = XM_OPTIONS_INIT;
    o.near = reinterpret_cast<const void *>(&host_scale);
    if (!std::strcmp(mode, "strict"))
        o.flags = XM_STRICT;
    else if (!std::strcmp(mode, "flip"))
        o.backend = XM_BACKEND_FLIP;
    execmem_asmjit::JitRuntime rt(&o);
    if (!rt.ok()) {
        std::printf("asmjit client [%s]: heap: %s\n", mode, xm_strerror(rt.result()));
        return 1;
    }
    struct {
        const char *name;
        build_fn build;
        int64_t arg, want;
    } cases[] = {
        {"3x+7", build_affine, 5, 22},
        {"sum 1..n", build_loop, 100, 5050},
        {"host_scale(x)+1", build_call, 4, 41},
    };
    int bad = 0;
    int64_t (*fns[3])(int64_t);
    for (int i = 0; i < 3; i++) {
        CodeHolder code;
        code.init(rt.environment());
        x86::Assembler a(&code);
        cases[i].build(a);
        if (rt.add(&fns[i], &code) != kErrorOk) {
            std::printf("asmjit client [%s]: could not JIT %s\n", mode, cases[i].name);
            return 1;
        }
        int64_t got = fns[i](cases[i].arg);
        std::printf("asmjit client [%s]: %-16s at %p: f(%lld) = %lld%s\n", mode,
                    cases[i].name, reinterpret_cast<void *>(fns[i]),
                    (long long)cases[i].arg, (long long)got,
                    got == cases[i].want ? "" : "  WRONG");
        bad += got != cases[i].want;
    }
    // patch the published 3x+7 into 3x+100: imul r64, r/m64, imm8 is 4
    // bytes, then REX.W 81 /0 id: the imm32 at offset 7
    char *site = reinterpret_cast<char *>(fns[0]) + 7;
    int32_t imm = 100;
    std::memcpy(rt.rw(site), &imm, sizeof imm);
    if (rt.commit(site, sizeof imm) != XM_OK) {
        std::printf("asmjit client [%s]: commit failed\n", mode);
        return 1;
    }
    int64_t got = fns[0](5);
    std::printf("asmjit client [%s]: patched 3x+100: f(5) = %lld%s\n", mode,
                (long long)got, got == 115 ? "" : "  WRONG");
    bad += got != 115;
    for (auto f : fns)
        rt.release(f);
    xm_purge(rt.heap());
    xm_audit_report rep;
    xm_audit(0, &rep);
    std::printf("asmjit client [%s]: %s; audit: %zu W+X mappings\n", mode,
                bad ? "WRONG RESULTS" : "all results right", rep.wx_mappings);
    return bad || rep.wx_mappings ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return run(argv[1]);
    int bad = 0;
    for (const char *m : {"dual", "strict", "flip"})
        bad |= run(m);
    return bad;
}
