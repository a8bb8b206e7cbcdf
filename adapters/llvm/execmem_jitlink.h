// execmem_jitlink.h: an LLVM ORC JITLink memory manager on an execmem heap.
//
// JITLink links every object into "working memory" and runs it at the
// segments' addresses; this manager makes those two the execmem block's
// `rw` and `rx`:
//   - executable segments  -> xm_alloc code blocks, published XM_PROT_RX at
//     finalize (they hold traps until then, and padding between functions
//     stays INT3 on x86-64);
//   - read-only segments   -> xm_alloc_data blocks, published XM_PROT_R
//     (pages that never execute);
//   - read-write segments  -> ordinary memory (posix_memalign), whose
//     working memory is its address;
//   - deallocation frees the blocks (execmem's trap fill at once, page rights
//     dropped in batches at purge time) after running the dealloc actions.
// Read-only sections that LLVM 14's ELF reader marks read-write (.rodata*,
// .eh_frame, .gcc_except_table, .data.rel.ro*: constant pools, jump tables,
// unwind tables) are re-marked read-only before layout, so they land in data
// blocks and never sit writable. JITLink applies every fixup to working
// memory before finalize, so RELRO-style data needs no write afterwards.
//
// Code model: LLJIT's default on x86-64 is the large code model: code
// reaches its data through absolute 64-bit addresses, so segments may lie
// anywhere. The small code model works with PIC: code and read-only data
// are within rel32 reach of each other (one heap reserve of at most 2 GiB)
// and read-write data that is not dso_local is reached through the GOT
// JITLink builds; read-write data that is dso_local (reached with a direct
// rel32) lies in ordinary memory, out of reach, and JITLink fails that link
// with an out-of-range fixup error (never a silent truncation). See
// adapters/llvm/README.md.
//
// Thread safety: like the interface requires, every member may be called
// from any thread; execmem's calls are thread-safe and the statistics are
// atomic. The heap is borrowed: it must outlive the manager and every
// allocation made from it.
//
// Tested with LLVM 14 (Debian 12's llvm-14-dev). Newer interface changes are
// handled with LLVM_VERSION_MAJOR where known (15-18) but were not compiled
// here.
#ifndef EXECMEM_JITLINK_H
#define EXECMEM_JITLINK_H

#include <execmem.h>

#include <llvm/ExecutionEngine/JITLink/JITLinkMemoryManager.h>

#include <atomic>
#include <cstdint>

namespace execmem_llvm {

struct MemoryManagerStats {
    uint64_t allocations = 0;   // allocate() calls that succeeded
    uint64_t finalized = 0;     // in-flight allocations finalized
    uint64_t abandoned = 0;     // ... abandoned (link failures)
    uint64_t deallocated = 0;   // finalized allocations freed
    uint64_t code_segments = 0; // execmem code blocks allocated
    uint64_t data_segments = 0; // execmem data blocks allocated
    uint64_t rw_segments = 0;   // ordinary read-write allocations
    uint64_t remarked_sections = 0; // RW sections re-marked read-only
    uint64_t live = 0;          // finalized allocations not yet freed
};

class ExecmemMemoryManager : public llvm::jitlink::JITLinkMemoryManager {
public:
    struct Options {
        // Re-mark sections that are read-only by name but arrive read-write
        // (LLVM 14's ELF reader) as read-only before layout.
        bool remark_read_only = true;
    };

    // The heap is borrowed, not owned.
    explicit ExecmemMemoryManager(xm_heap *heap);
    ExecmemMemoryManager(xm_heap *heap, Options opts);
    ~ExecmemMemoryManager() override;

    void allocate(const llvm::jitlink::JITLinkDylib *JD,
                  llvm::jitlink::LinkGraph &G,
                  OnAllocatedFunction OnAllocated) override;
    using llvm::jitlink::JITLinkMemoryManager::allocate;

    void deallocate(std::vector<FinalizedAlloc> Allocs,
                    OnDeallocatedFunction OnDeallocated) override;
    using llvm::jitlink::JITLinkMemoryManager::deallocate;

    xm_heap *heap() const { return heap_; }
    MemoryManagerStats stats() const;

    // Whether an ELF section of this name holds data that is never written
    // after linking (constant pools, jump tables, unwind tables, RELRO).
    static bool isReadOnlySectionName(llvm::StringRef name);

    // implementation detail, public for the in-flight allocation class
    struct Counters {
        std::atomic<uint64_t> allocations{0}, finalized{0}, abandoned{0},
            deallocated{0}, code_segments{0}, data_segments{0},
            rw_segments{0}, remarked_sections{0}, live{0};
    };
    Counters &counters() { return counters_; }

private:
    xm_heap *heap_;
    Options opts_;
    size_t page_size_;
    Counters counters_;
};

} // namespace execmem_llvm

#endif
