// execmem_jitlink.cpp: ExecmemMemoryManager (see execmem_jitlink.h).
//
// An allocation is one LinkGraph's segments, laid out by BasicLayout (one
// segment per (protection, lifetime) group; segments need not be contiguous,
// JITLink only needs each segment's working memory and address). allocate()
// gets one execmem block (or ordinary allocation) per segment and applies the
// layout; finalize() publishes the execmem blocks, then runs the graph's
// finalize actions (EH frame registration and the like: they see the code
// and data at their final rights), then frees the segments whose lifetime
// ends at finalize. deallocate() runs the dealloc actions, then frees the
// blocks: xm_free makes every byte trap at once and leaves the page rights
// to execmem's batched purge, so an unload makes no system call in steady
// state. abandon() (a failed link) frees everything; nothing was published.
//
// Invariant: no segment is ever writable and executable; a segment whose
// protection asks for both is refused.
#include "execmem_jitlink.h"

#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/JITLink/JITLink.h>
#include <llvm/ExecutionEngine/Orc/Shared/AllocationActions.h>
#include <llvm/Support/Error.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace llvm;
using namespace llvm::jitlink;

namespace execmem_llvm {

namespace {

// The interface's names moved between versions: MemProt and the segment
// lifetime policy went to the orc namespace in LLVM 17 and were renamed in
// 17 and 18 (not compiled here; LLVM 14 is).
#if LLVM_VERSION_MAJOR >= 17
using Prot = llvm::orc::MemProt;
#else
using Prot = llvm::jitlink::MemProt;
#endif

template <typename Group> bool endsAtFinalize(const Group &AG)
{
#if LLVM_VERSION_MAJOR >= 18
    return AG.getMemLifetime() == llvm::orc::MemLifetime::Finalize;
#elif LLVM_VERSION_MAJOR >= 17
    return AG.getMemLifetimePolicy() == llvm::orc::MemLifetimePolicy::Finalize;
#else
    return AG.getMemDeallocPolicy() == MemDeallocPolicy::Finalize;
#endif
}

bool has(Prot P, Prot Bit) { return (P & Bit) != Prot::None; }

Error fail(const Twine &Msg)
{
    return make_error<StringError>("execmem: " + Msg, inconvertibleErrorCode());
}

Error xmError(const char *What, xm_result R)
{
    return fail(Twine(What) + ": " + xm_strerror(R));
}

// One segment's memory.
struct Segment {
    enum Kind { Code, Data, RW } kind;
    void *addr;    // rx for execmem blocks, the allocation for RW
    bool at_finalize; // lifetime ends when finalize returns
};

Error freeSegments(xm_heap *H, std::vector<Segment> &Segs)
{
    Error Err = Error::success();
    for (auto &S : Segs) {
        if (S.kind == Segment::RW) {
            std::free(S.addr);
            continue;
        }
        xm_result R = xm_free(H, S.addr);
        if (R != XM_OK)
            Err = joinErrors(std::move(Err), xmError("xm_free", R));
    }
    Segs.clear();
    return Err;
}

// What a FinalizedAlloc's address points to.
struct FinalizedInfo {
    std::vector<Segment> segments;
    std::vector<orc::shared::WrapperFunctionCall> dealloc_actions;
};

class InFlight final : public JITLinkMemoryManager::InFlightAlloc {
public:
    InFlight(ExecmemMemoryManager &MM, LinkGraph &G,
             std::vector<Segment> Segs)
        : MM(MM), G(G), Segs(std::move(Segs)) {}

    ~InFlight() override
    {
        // Neither finalized nor abandoned (the interface says this must not
        // happen): give the memory back rather than leak it.
        consumeError(freeSegments(MM.heap(), Segs));
    }

    void finalize(OnFinalizedFunction OnFinalized) override
    {
        // 1. Make the code and read-only data appear at their addresses.
        for (auto &S : Segs) {
            if (S.kind == Segment::RW)
                continue;
            int Prot = S.kind == Segment::Code ? XM_PROT_RX : XM_PROT_R;
            xm_result R = xm_publish(MM.heap(), S.addr, Prot);
            if (R != XM_OK) {
                Error E = xmError("xm_publish", R);
                consumeError(freeSegments(MM.heap(), Segs));
                OnFinalized(std::move(E));
                return;
            }
        }
        // 2. Finalize actions (EH frame registration ...) after publish.
        auto DeallocActions = orc::shared::runFinalizeActions(G.allocActions());
        if (!DeallocActions) {
            Error E = DeallocActions.takeError();
            consumeError(freeSegments(MM.heap(), Segs));
            OnFinalized(std::move(E));
            return;
        }
        // 3. Segments that only live until finalize.
        auto *Info = new FinalizedInfo;
        std::vector<Segment> Transient;
        for (auto &S : Segs)
            (S.at_finalize ? Transient : Info->segments).push_back(S);
        Segs.clear();
        if (Error E = freeSegments(MM.heap(), Transient)) {
            consumeError(orc::shared::runDeallocActions(*DeallocActions));
            consumeError(freeSegments(MM.heap(), Info->segments));
            delete Info;
            OnFinalized(std::move(E));
            return;
        }
        Info->dealloc_actions = std::move(*DeallocActions);
        MM.counters().finalized++;
        MM.counters().live++;
        OnFinalized(JITLinkMemoryManager::FinalizedAlloc(
            orc::ExecutorAddr::fromPtr(Info)));
    }

    void abandon(OnAbandonedFunction OnAbandoned) override
    {
        MM.counters().abandoned++;
        OnAbandoned(freeSegments(MM.heap(), Segs));
    }

private:
    ExecmemMemoryManager &MM;
    LinkGraph &G;
    std::vector<Segment> Segs;
};

} // namespace

ExecmemMemoryManager::ExecmemMemoryManager(xm_heap *heap)
    : ExecmemMemoryManager(heap, Options())
{
}

ExecmemMemoryManager::ExecmemMemoryManager(xm_heap *heap, Options opts)
    : heap_(heap), opts_(opts), page_size_(4096)
{
    xm_sysinfo si;
    if (xm_system_info(&si) == XM_OK && si.page_size)
        page_size_ = si.page_size;
}

ExecmemMemoryManager::~ExecmemMemoryManager() = default;

bool ExecmemMemoryManager::isReadOnlySectionName(StringRef N)
{
    auto family = [&](StringRef Base) {
        return N == Base || N.startswith((Base + ".").str());
    };
    return family(".rodata") || family(".lrodata") || family(".eh_frame") ||
           N == ".eh_frame_hdr" || family(".gcc_except_table") ||
           family(".data.rel.ro") || family(".ldata.rel.ro");
}

MemoryManagerStats ExecmemMemoryManager::stats() const
{
    MemoryManagerStats s;
    s.allocations = counters_.allocations;
    s.finalized = counters_.finalized;
    s.abandoned = counters_.abandoned;
    s.deallocated = counters_.deallocated;
    s.code_segments = counters_.code_segments;
    s.data_segments = counters_.data_segments;
    s.rw_segments = counters_.rw_segments;
    s.remarked_sections = counters_.remarked_sections;
    s.live = counters_.live;
    return s;
}

void ExecmemMemoryManager::allocate(const JITLinkDylib *, LinkGraph &G,
                                    OnAllocatedFunction OnAllocated)
{
    if (opts_.remark_read_only) {
        for (auto &Sec : G.sections()) {
            if (Sec.getMemProt() == (Prot::Read | Prot::Write) &&
                isReadOnlySectionName(Sec.getName())) {
                Sec.setMemProt(Prot::Read);
                counters_.remarked_sections++;
            }
        }
    }

    BasicLayout BL(G);
    std::vector<Segment> Segs;
    auto failWith = [&](Error E) {
        consumeError(freeSegments(heap_, Segs));
        OnAllocated(std::move(E));
    };
    for (auto &KV : BL.segments()) {
        auto &AG = KV.first;
        auto &Seg = KV.second;
        Prot P = AG.getMemProt();
        uint64_t Align = Seg.Alignment.value();
        uint64_t Size = Seg.ContentSize + Seg.ZeroFillSize;
        if (Size == 0)
            Size = 1;
        if (Align > page_size_)
            return failWith(fail("segment alignment " + Twine(Align) +
                                 " exceeds the page size " +
                                 Twine(uint64_t(page_size_))));
        if (has(P, Prot::Write) && has(P, Prot::Exec))
            return failWith(fail("refusing a writable and executable segment "
                                 "in graph " + G.getName()));
        Segment S;
        S.at_finalize = endsAtFinalize(AG);
        char *Working;
        if (has(P, Prot::Exec) || !has(P, Prot::Write)) {
            bool Code = has(P, Prot::Exec);
            xm_block B;
            size_t A = Align < 16 ? 16 : Align;
            xm_result R = Code ? xm_alloc(heap_, Size, A, &B)
                               : xm_alloc_data(heap_, Size, A, &B);
            if (R != XM_OK)
                return failWith(xmError(Code ? "xm_alloc" : "xm_alloc_data", R));
            S.kind = Code ? Segment::Code : Segment::Data;
            S.addr = B.rx;
            Working = static_cast<char *>(B.rw);
            // Padding between functions traps (x86-64 INT3); zero-fill
            // blocks and data read as zero.
#if defined(__x86_64__)
            std::memset(Working, Code ? 0xCC : 0, Size);
#else
            std::memset(Working, 0, Size);
#endif
            std::memset(Working + Seg.ContentSize, 0, Size - Seg.ContentSize);
            (Code ? counters_.code_segments : counters_.data_segments)++;
        } else {
            void *M = nullptr;
            size_t A = Align < sizeof(void *) ? sizeof(void *) : Align;
            if (posix_memalign(&M, A, Size) != 0)
                return failWith(fail("out of memory for a read-write segment"));
            std::memset(M, 0, Size);
            S.kind = Segment::RW;
            S.addr = M;
            Working = static_cast<char *>(M);
            counters_.rw_segments++;
        }
        Segs.push_back(S);
        Seg.WorkingMem = Working;
        Seg.Addr = orc::ExecutorAddr::fromPtr(S.addr);
    }
    if (Error E = BL.apply())
        return failWith(std::move(E));
    counters_.allocations++;
    OnAllocated(std::make_unique<InFlight>(*this, G, std::move(Segs)));
}

void ExecmemMemoryManager::deallocate(std::vector<FinalizedAlloc> Allocs,
                                      OnDeallocatedFunction OnDeallocated)
{
    Error Err = Error::success();
    for (auto I = Allocs.rbegin(); I != Allocs.rend(); ++I) {
        auto *Info = I->release().toPtr<FinalizedInfo *>();
        Err = joinErrors(std::move(Err),
                         orc::shared::runDeallocActions(Info->dealloc_actions));
        Err = joinErrors(std::move(Err), freeSegments(heap_, Info->segments));
        delete Info;
        counters_.deallocated++;
        counters_.live--;
    }
    OnDeallocated(std::move(Err));
}

} // namespace execmem_llvm
