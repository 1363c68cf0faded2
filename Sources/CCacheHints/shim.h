// Software prefetch for the kernels: Swift has no spelling of x86's prefetch instructions. Header-only (inlined at
// the call), no library to link.
#ifndef CONVLAB_CACHE_HINTS_H
#define CONVLAB_CACHE_HINTS_H

/// Asks for the 64-byte line holding `address` in L2 and the caches below it (`prefetcht1`), without waiting for it and
/// without faulting: an address past an allocation is dropped.
static inline __attribute__((always_inline)) void convlab_prefetch_to_l2(const void *address) {
    __builtin_prefetch(address, 0, 2);
}

/// Prefetches (`convlab_prefetch_to_l2`) slice `part` of `parts` of the `bytes` bytes from `base`, in whole lines:
/// spread over the `parts` steps of a loop, a region arrives while the loop computes on the one before.
static inline __attribute__((always_inline)) void convlab_prefetch_slice_to_l2(const void *base, long bytes,
                                                                               long part, long parts) {
    if (bytes <= 0 || part < 0 || part >= parts) return;
    long lines = (bytes + 63) / 64;
    const char *start = (const char *)base;
    for (long line = part * lines / parts; line < (part + 1) * lines / parts; line++) {
        __builtin_prefetch(start + line * 64, 0, 2);
    }
}

#endif
