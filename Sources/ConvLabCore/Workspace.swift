/// Scratch memory for one plan execution at a time. Plans report how many bytes they need
/// (`ConvolutionPlan.workspaceBytes`) and the caller owns the memory, as with cuDNN's workspace argument: executing
/// a plan never allocates, and several threads can execute one plan at once, each with its own workspace.
public final class Workspace: @unchecked Sendable {
    public let byteCount: Int
    package let base: UnsafeMutableRawPointer

    /// The memory (64-byte aligned, `byteCount` bytes), e.g. for a `MatrixMultiplier` call.
    public var baseAddress: UnsafeMutableRawPointer { base }

    /// Allocates `byteCount` bytes (64-byte aligned, zeroed). Throws when over `limits.maxWorkspaceBytes`.
    public init(byteCount: Int, limits: ResourceLimits = .default) throws {
        if byteCount < 0 {
            throw ConvLabError.invalidArgument(name: "workspace size", reason: "negative (\(byteCount))")
        }
        try ResourceLimits.check("the workspace", bytes: byteCount, limit: limits.maxWorkspaceBytes)
        self.byteCount = byteCount
        base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 64))
    }

    deinit { base.deallocate() }
}

/// Carves typed, 64-byte-aligned regions out of a workspace. A plan builds its layout once (at plan time),
/// reports `layout.byteCount` as its workspace size, and resolves region pointers at execution.
package struct WorkspaceLayout: Sendable {
    package private(set) var byteCount = 0

    package init() {}

    package mutating func reserve<T>(_: T.Type, count: Int) -> WorkspaceRegion<T> {
        let offset = byteCount
        byteCount += (max(count, 0) * MemoryLayout<T>.stride + 63) / 64 * 64
        return WorkspaceRegion(offset: offset, count: count)
    }
}

package struct WorkspaceRegion<T>: Sendable {
    let offset: Int
    let count: Int

    package func pointer(in workspace: Workspace) -> UnsafeMutablePointer<T> {
        (workspace.base + offset).bindMemory(to: T.self, capacity: max(count, 1))
    }
}
