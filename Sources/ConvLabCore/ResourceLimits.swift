import Foundation

/// Memory ceilings that convlab checks *before* allocating, so a request that cannot fit fails with
/// `ConvLabError.memoryLimitExceeded` instead of the process dying of OOM half-way through.
public struct ResourceLimits: Hashable, Sendable {
    /// Upper bound on the bytes of one problem's tensors (input + weights + output, float32).
    public var maxTensorBytes: Int
    /// Upper bound on the scratch memory a plan may request (packed inputs, column buffers, spectra...).
    public var maxWorkspaceBytes: Int

    public init(maxTensorBytes: Int, maxWorkspaceBytes: Int) {
        self.maxTensorBytes = maxTensorBytes
        self.maxWorkspaceBytes = maxWorkspaceBytes
    }

    /// Half of physical memory for tensors and a quarter for one plan's workspace: a single layer then never
    /// claims the whole machine, and the float64 reference (which doubles the tensors) still fits.
    public static let `default` = ResourceLimits(
        maxTensorBytes: physicalMemoryBytes / 2,
        maxWorkspaceBytes: physicalMemoryBytes / 4
    )

    public static let physicalMemoryBytes = Int(clamping: ProcessInfo.processInfo.physicalMemory)

    /// Throws unless `bytes` fits under `limit`.
    package static func check(_ what: String, bytes: Int, limit: Int) throws {
        if bytes > limit {
            throw ConvLabError.memoryLimitExceeded(what: what, requiredBytes: bytes, limitBytes: limit)
        }
    }
}
