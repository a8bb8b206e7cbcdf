// SPDX-License-Identifier: MIT
// execmem_jitruntime.h: a header-only drop-in for asmjit's JitRuntime whose
// code lives in an execmem heap (W^X by construction), in every backend.
//
//   execmem_asmjit::JitRuntime rt;          // XM_INPLACE heap, DUAL
//   asmjit::CodeHolder code;
//   code.init(rt.environment());
//   ... assemble ...
//   Fn fn; rt.add(&fn, &code);              // relocate to rx, copy through
//                                           // rw, publish
//   rt.release(fn);                          // xm_free: the bytes trap
//
// Patching published code (what asmjit users do with an executable offset):
// write through rw(p) = p + offset() (the heap's one rw - rx distance), then
// commit(p, n) copies the bytes in with xm_patch's rules (xm_commit). The
// constructor takes xm_options (flags get XM_INPLACE added): pass
// XM_STRICT or backend XM_BACKEND_FLIP for the modes in which rw is a
// private, never-executable copy. Needs asmjit (Debian libasmjit-dev) and
// libexecmem; C++17.
#ifndef EXECMEM_JITRUNTIME_H
#define EXECMEM_JITRUNTIME_H

#include <asmjit/core.h>
#include <execmem.h>

#include <cstddef>
#include <cstdint>

namespace execmem_asmjit {

class JitRuntime {
public:
    explicit JitRuntime(const xm_options *opt = nullptr) noexcept
    {
        xm_options o = XM_OPTIONS_INIT;
        if (opt)
            o = *opt;
        o.flags |= XM_INPLACE;
        _result = xm_heap_create(&o, &_heap);
        if (_result == XM_OK)
            _result = xm_alias_offset(_heap, &_offset);
    }
    ~JitRuntime() noexcept { xm_heap_destroy(_heap); }
    JitRuntime(const JitRuntime &) = delete;
    JitRuntime &operator=(const JitRuntime &) = delete;

    // As asmjit::JitRuntime.
    const asmjit::Environment &environment() const noexcept { return _env; }
    bool ok() const noexcept { return _heap && _result == XM_OK; }
    xm_result result() const noexcept { return _result; }
    xm_heap *heap() const noexcept { return _heap; }

    template <typename Func>
    asmjit::Error add(Func *dst, asmjit::CodeHolder *code) noexcept
    {
        void *p = nullptr;
        asmjit::Error e = _add(&p, code);
        *dst = reinterpret_cast<Func>(p);
        return e;
    }
    template <typename Func>
    asmjit::Error release(Func p) noexcept
    {
        return _release(reinterpret_cast<void *>(p));
    }

    // Patching: the writable address of executable address p (valid until
    // release), and the copy-in of [p, p+n) once written there.
    ptrdiff_t offset() const noexcept { return _offset; }
    void *rw(void *p) const noexcept { return static_cast<char *>(p) + _offset; }
    xm_result commit(void *p, size_t n) noexcept { return xm_commit(_heap, p, n); }

    asmjit::Error _add(void **dst, asmjit::CodeHolder *code) noexcept
    {
        using namespace asmjit;
        *dst = nullptr;
        if (!ok())
            return kErrorInvalidState;
        Error e = code->flatten();
        if (!e)
            e = code->resolveUnresolvedLinks();
        if (e)
            return e;
        // relocation can only add address tables: the upper bound first
        size_t bound = code->codeSize() + 64;
        xm_block b;
        if (xm_alloc(_heap, bound, 0, &b) != XM_OK)
            return kErrorOutOfMemory;
        e = code->relocateToBase(reinterpret_cast<uint64_t>(b.rx));
        if (!e && code->codeSize() > b.size)
            e = kErrorTooLarge;
        if (!e)
            e = code->copyFlattenedData(b.rw, code->codeSize(),
                                        CopySectionFlags::kPadSectionBuffer);
        if (!e && xm_publish(_heap, b.rx, XM_PROT_RX) != XM_OK)
            e = kErrorInvalidState;
        if (e) {
            xm_free(_heap, b.rx);
            return e;
        }
        *dst = b.rx;
        return kErrorOk;
    }
    asmjit::Error _release(void *p) noexcept
    {
        return xm_free(_heap, p) == XM_OK ? asmjit::kErrorOk
                                          : asmjit::kErrorInvalidArgument;
    }

private:
    xm_heap *_heap = nullptr;
    ptrdiff_t _offset = 0;
    xm_result _result = XM_EINVAL;
    asmjit::Environment _env = asmjit::Environment::host();
};

} // namespace execmem_asmjit

#endif
