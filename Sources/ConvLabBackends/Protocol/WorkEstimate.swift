/// What executing a plan costs, in machine-independent units: the stages it runs one after another, each with the
/// work it does and the number of independent tasks it can be spread over. A backend derives it from the same
/// geometry its plan executes (tiles, register blocks, transform sizes), so the selector's cost model, which turns
/// each stage into seconds with this machine's rates, never keeps a second copy of any plan.
public struct WorkEstimate: Sendable, Hashable {
    public enum Stage: Sendable, Hashable {
        /// SIMD direct convolution bound by FMAs: `flops` counts the register-block waste, `reduction` is the
        /// length of each output's dot product (short ones leave the kernel's loop overhead unamortised).
        case directKernel(flops: Double, reduction: Int, tasks: Int)
        /// SIMD convolution bound by loads (about one vector load per FMA): depthwise and other narrow groups.
        /// `taps` is the length of each output's sum over one input plane (R·S for a depthwise or few-output-channel
        /// layer, N·Ho·Wo for a weight gradient): per-row and per-plane overheads weigh less on long ones.
        case loadBoundKernel(flops: Double, taps: Int, tasks: Int)
        /// Matrix products of m×k by k×n, `flops` in all (register-block padding included).
        case gemm(flops: Double, m: Int, n: Int, k: Int, tasks: Int)
        /// Bytes streamed once (lowered columns, packed inputs, spectra, buffers between phases). `footprint` is the
        /// most of them live at once, which decides the cache level they stream from: all of them by default; a
        /// schedule that streams one pass after another through the same buffer gives one pass's bytes.
        case memory(bytes: Double, footprint: Double? = nil)
        /// Winograd input transforms, in units of one F(4,3) 6×6 tile of 16 channels (n²·(n_h + n_w) FMAs each).
        case winogradInputTransform(units: Double, tasks: Int)
        /// Winograd's copy of the input into 16-channel blocks, in 16-channel tile columns.
        case winogradBlocking(units: Double, tasks: Int)
        /// Winograd output transforms, in units of F(4,3)'s 6×6 → 4×4 tile of 16 channels (m_h·n_w·(n_h + m_w) FMAs each).
        case winogradOutputTransform(units: Double, tasks: Int)
        /// Real 2-D FFTs: Σ n·log₂n over every transform (n points each).
        case fftTransforms(pointLogPoints: Double, tasks: Int)
        /// Per-bin complex multiply-adds of the FFT's products.
        case complexProducts(multiplyAdds: Double, tasks: Int)
    }

    public var stages: [Stage]
    /// Whether the work runs a depthwise kernel (one input channel per output, summed over taps in place): such
    /// kernels get their own fitted correction (`CostModel.correctionKeys`), since the same descriptor class run
    /// by dense kernels with one-channel blocks costs twice as much per estimated second.
    public var depthwiseKernels: Bool

    public init(_ stages: [Stage], depthwiseKernels: Bool = false) {
        self.stages = stages
        self.depthwiseKernels = depthwiseKernels
    }
}

extension WorkEstimate.Stage {
    /// The stage's kind, for reports (`select --model-check --dump`).
    public var name: String {
        switch self {
        case .directKernel: "direct"
        case .loadBoundKernel: "load-bound"
        case .gemm: "gemm"
        case .memory: "memory"
        case .winogradInputTransform: "winograd-input"
        case .winogradBlocking: "winograd-blocking"
        case .winogradOutputTransform: "winograd-output"
        case .fftTransforms: "fft"
        case .complexProducts: "complex-products"
        }
    }
}
