/* SPDX-License-Identifier: MIT */
// asmjit_client.cpp: a JIT that nobody here wrote, running on the execmem
// heap. asmjit (Debian's libasmjit-dev) assembles functions; each is
// relocated to the rx address of an execmem block, copied through the
// block's rw pointer, published and called. The heap is created `near` this
// program, so asmjit's calls into the host program are plain rel32 calls.
//
// Built and run by `make check` when libasmjit-dev is installed.
#include <asmjit/x86.h>
#include <execmem.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

using namespace asmjit;

static int64_t host_scale(int64_t x) { return x * 10; }

// Assembles one function into `code` (not yet relocated).
typedef void (*build_fn)(x86::Assembler &a);

// int64 f(int64 x) { return 3 * x + 7; }
static void build_affine(x86::Assembler &a)
{
    a.imul(x86::rax, x86::rdi, 3);
    a.add(x86::rax, 7);
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

static void *jit(xm_heap *h, build_fn build, size_t *size_out)
{
    CodeHolder code;
    code.init(Environment::host());
    x86::Assembler a(&code);
    build(a);
    if (code.flatten() || code.resolveUnresolvedLinks())
        return nullptr;
    // The size can only grow with relocation (address tables), so allocate
    // for the upper bound, then relocate to where the code will run.
    size_t bound = code.codeSize() + 64;
    xm_block b;
    if (xm_alloc(h, bound, 0, &b) != XM_OK)
        return nullptr;
    if (code.relocateToBase(reinterpret_cast<uint64_t>(b.rx)) ||
        code.codeSize() > b.size ||
        code.copyFlattenedData(b.rw, code.codeSize(), CopySectionFlags::kPadSectionBuffer) ||
        xm_publish(h, b.rx, XM_PROT_RX) != XM_OK) {
        xm_free(h, b.rx);
        return nullptr;
    }
    *size_out = code.codeSize();
    return b.rx;
}

int main()
{
    xm_options o = XM_OPTIONS_INIT;
    o.near = reinterpret_cast<const void *>(&host_scale);
    xm_heap *h = nullptr;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK) {
        std::printf("xm_heap_create: %s\n", xm_strerror(r));
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
    void *fns[3];
    for (int i = 0; i < 3; i++) {
        size_t size = 0;
        fns[i] = jit(h, cases[i].build, &size);
        if (!fns[i]) {
            std::printf("asmjit client: could not JIT %s\n", cases[i].name);
            return 1;
        }
        int64_t (*f)(int64_t);
        std::memcpy(&f, &fns[i], sizeof f);
        int64_t got = f(cases[i].arg);
        std::printf("asmjit client: %-16s %zu bytes at %p: f(%lld) = %lld%s\n",
                    cases[i].name, size, fns[i], (long long)cases[i].arg,
                    (long long)got, got == cases[i].want ? "" : "  WRONG");
        bad += got != cases[i].want;
    }
    for (void *f : fns)
        xm_free(h, f);
    xm_purge(h);
    xm_audit_report a;
    xm_audit(0, &a);
    xm_heap_destroy(h);
    std::printf("asmjit client: %s; audit: %zu W+X mappings\n",
                bad ? "WRONG RESULTS" : "all results right", a.wx_mappings);
    return bad || a.wx_mappings ? 1 : 0;
}
