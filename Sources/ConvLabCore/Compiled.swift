/// A count known at compile time, for kernels specialised by it: `kernel(Compiled<8>(), …)` is its own copy of a
/// generic `kernel<let N: Int>(_: Compiled<N>, …)`, in which every `if N > i` folds and the N accumulators stay in
/// registers. A runtime `switch` over the counts a kernel supports picks the copy.
package struct Compiled<let N: Int> {
    @inlinable package init() {}
}
