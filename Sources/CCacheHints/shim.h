// Software prefetch for the kernels: Swift has no spelling of x86's prefetch instructions. Header-only (inlined at
// the call), no library to link.
#ifndef CONVLAB_CACHE_HINTS_H
#define CONVLAB_CACHE_HINTS_H

/// Asks for the 64-byte line holding `address` in L2 and the caches below it (`prefetcht1`), without waiting for it and
/// without faulting: an address past an allocation is dropped.
static inline __attribute__((always_inline)) void convlab_prefetch_to_l2(const void *address) {
    __builtin_prefetch(address, 0, 2);
}

#endif
