/// Scratch memory for one plan execution at a time. Plans report how many bytes they need
/// (`ConvolutionPlan.workspaceBytes`) and the caller owns the memory, as with cuDNN's workspace argument: executing
/// a plan never allocates, and several threads can execute one plan at once, each with its own workspace.
/// Plans take the memory as an `UnsafeMutableRawBufferPointer`, so its length travels with it and is checked.
public final class Workspace: @unchecked Sendable {
    /// The memory: `byteCount` bytes, 64-byte aligned, zeroed at allocation.
    public let buffer: UnsafeMutableRawBufferPointer

    public var byteCount: Int { buffer.count }

    private let allocation: UnsafeMutableRawPointer

    /// Allocates `byteCount` bytes (64-byte aligned, zeroed). Throws when over `limits.maxWorkspaceBytes`.
    public init(byteCount: Int, limits: ResourceLimits = .default) throws {
        if byteCount < 0 {
            throw ConvLabError.invalidArgument(name: "workspace size", reason: "negative (\(byteCount))")
        }
        try ResourceLimits.check("the workspace", bytes: byteCount, limit: limits.maxWorkspaceBytes)
        allocation = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: Self.alignment)
        allocation.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 64))
        buffer = UnsafeMutableRawBufferPointer(start: allocation, count: byteCount)
    }

    /// Every workspace region starts on a cache line (and AVX-512 register) boundary; FFTW's new-array execution
    /// also needs the alignment its plans were made with.
    public static let alignment = 64

    /// An empty buffer, for plans that need no workspace.
    public static var none: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: nil, count: 0) }

    deinit { allocation.deallocate() }
}

/// The regions of a plan's workspace, computed once at plan time from the plan's geometry: each region is 64-byte
/// aligned and either shared or one slice per worker. Sizes are overflow-checked, so `byteCount` is exact and a
/// buffer at least that long holds every region; `execute` checks the buffer's length once against it.
package struct WorkspaceLayout: Sendable {
    package private(set) var byteCount = 0

    package init() {}

    /// Reserves `count` elements of `T`, or `count` per worker for `workers` workers (slices 64-byte aligned).
    package mutating func reserve<T>(_: T.Type, count: Int, workers: Int = 1, what: String = "the workspace") throws
        -> WorkspaceRegion<T> {
        guard count >= 0, workers >= 1 else {
            throw ConvLabError.invalidArgument(name: "workspace region", reason: "\(count) elements × \(workers) workers")
        }
        guard let bytes = CheckedArithmetic.product(count, MemoryLayout<T>.stride),
              let slice = CheckedArithmetic.sum(bytes, Workspace.alignment - 1).map({ $0 / Workspace.alignment * Workspace.alignment }),
              let total = CheckedArithmetic.product(slice, workers),
              let end = CheckedArithmetic.sum(byteCount, total)
        else { throw ConvLabError.sizeOverflow(what: what) }
        let region = WorkspaceRegion<T>(offset: byteCount, count: count, sliceBytes: slice, workers: workers)
        byteCount = end
        return region
    }
}

/// One region of a `WorkspaceLayout`: where it starts and how many elements each worker's slice holds.
package struct WorkspaceRegion<T>: Sendable {
    package let offset: Int
    package let count: Int
    package let sliceBytes: Int
    package let workers: Int

    /// The region (worker 0's slice) in `buffer`, which must be at least the layout's `byteCount` long (plans check
    /// that once per execution, in `validateBuffers`).
    package func pointer(in buffer: UnsafeMutableRawBufferPointer, worker: Int = 0) -> UnsafeMutablePointer<T> {
        (base(of: buffer) + offset + worker * sliceBytes).bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// Worker `worker`'s slice as a raw buffer of exactly `sliceBytes`, for engines that take one (the GEMM).
    package func bytes(in buffer: UnsafeMutableRawBufferPointer, worker: Int = 0) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base(of: buffer) + offset + worker * sliceBytes, count: sliceBytes)
    }

    /// An empty buffer has no address; only empty regions can be resolved in it, and they are never dereferenced.
    private func base(of buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutableRawPointer {
        buffer.baseAddress ?? UnsafeMutableRawPointer(bitPattern: Workspace.alignment)!
    }
}
