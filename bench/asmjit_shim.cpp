/* SPDX-License-Identifier: MIT */
// asmjit_shim.cpp: asmjit's JitAllocator behind a C interface for the
// benchmark's asmjit contender (ct_asmjit.c). Built only where Debian's
// libasmjit-dev is installed.
#include <asmjit/core.h>

#include <cstddef>
#include <new>

using namespace asmjit;

extern "C" void *ajit_create(int dual)
{
    JitAllocator::CreateParams p{};
    if (dual)
        p.options = JitAllocatorOptions::kUseDualMapping;
    return new (std::nothrow) JitAllocator(&p);
}

extern "C" void ajit_destroy(void *a) { delete static_cast<JitAllocator *>(a); }

// rx: where the code runs; rw: where to write it (equal to rx without dual
// mapping, where the memory is read-write-execute).
extern "C" int ajit_alloc(void *a, size_t size, void **rx, void **rw)
{
    return static_cast<JitAllocator *>(a)->alloc(rx, rw, size) == kErrorOk ? 0 : -1;
}

extern "C" void ajit_release(void *a, void *rx)
{
    static_cast<JitAllocator *>(a)->release(rx);
}
