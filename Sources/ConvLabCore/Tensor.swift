/// 64-byte-aligned, zero-initialised storage shared copy-on-write by `Tensor` values, and the packed weights of the
/// vector kernels. 64 bytes is one cache line and one AVX-512 register, so row starts never split a vector load. (A
/// Swift array's elements start 16 or 48 bytes past a line: every 64-byte load from one touches two lines.)
package final class AlignedStorage<Scalar>: @unchecked Sendable {
    static var alignment: Int { 64 }

    package let count: Int
    package let pointer: UnsafeMutablePointer<Scalar>

    package init(count: Int) {
        self.count = count
        let bytes = max(count * MemoryLayout<Scalar>.stride, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Scalar.self, capacity: max(count, 1))
    }

    /// The elements, with the storage kept alive while `body` runs.
    package func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeBufferPointer(start: pointer, count: count)) }
    }

    func copy() -> AlignedStorage {
        let clone = AlignedStorage(count: count)
        clone.pointer.update(from: pointer, count: count)
        return clone
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// A dense, row-major (C-order) tensor: float32 NCHW activations, KCRS weights, or their float64 counterparts
/// used by the reference. Value semantics with copy-on-write; storage is 64-byte aligned.
public struct Tensor<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
    public let shape: [Int]
    private var storage: AlignedStorage<Scalar>

    /// A zero-filled tensor. Throws for negative dimensions, overflowing sizes or more memory than
    /// `ResourceLimits.default.maxTensorBytes`.
    public init(shape: [Int]) throws {
        var count = 1
        for (axis, dimension) in shape.enumerated() {
            if dimension < 0 {
                throw ConvLabError.invalidArgument(name: "shape", reason: "dimension \(axis) is negative (\(dimension))")
            }
            let (next, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow {
                throw ConvLabError.invalidArgument(name: "shape", reason: "\(shape) has more elements than fit in Int")
            }
            count = next
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Scalar>.stride)
        try ResourceLimits.check("a tensor of shape \(shape)", bytes: overflow ? Int.max : bytes,
                                 limit: ResourceLimits.default.maxTensorBytes)
        self.shape = shape
        self.storage = AlignedStorage(count: count)
    }

    /// A tensor holding `scalars` in row-major order; their count must match the shape.
    public init(shape: [Int], scalars: [Scalar]) throws {
        try self.init(shape: shape)
        guard scalars.count == count else {
            throw ConvLabError.shapeMismatch(what: "scalars for shape \(shape)", expected: "\(count) values",
                                             actual: "\(scalars.count)")
        }
        scalars.withUnsafeBufferPointer { source in
            storage.pointer.update(from: source.baseAddress!, count: count)
        }
    }

    public var count: Int { storage.count }

    /// The elements in row-major order (a copy).
    public var scalars: [Scalar] {
        Array(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Scalar>) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// Row-major offset of a multi-index, or nil when it is out of range or has the wrong rank.
    public func offset(of indices: [Int]) -> Int? {
        guard indices.count == shape.count else { return nil }
        var offset = 0
        for (index, dimension) in zip(indices, shape) {
            guard index >= 0 && index < dimension else { return nil }
            offset = offset * dimension + index
        }
        return offset
    }

    /// The element at a multi-index, or nil when out of range.
    public func element(at indices: Int...) -> Scalar? {
        offset(of: indices).map { storage.pointer[$0] }
    }

    /// Same elements, other precision (e.g. float32 → float64 for the reference).
    public func converted<Other: BinaryFloatingPoint & Sendable>(to _: Other.Type = Other.self) -> Tensor<Other> {
        // The shape was already validated for a type at least as wide as `Scalar` in all uses here.
        var result = Tensor<Other>(unvalidatedShape: shape, count: count)
        result.withUnsafeMutableBufferPointer { target in
            for i in 0..<count { target[i] = Other(storage.pointer[i]) }
        }
        return result
    }

    /// Same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let newCount = newShape.reduce(1, *)
        guard newShape.allSatisfy({ $0 >= 0 }), newCount == count else {
            throw ConvLabError.shapeMismatch(what: "reshape of \(shape)", expected: "\(count) elements",
                                             actual: "\(newShape)")
        }
        return Tensor(shape: newShape, storage: storage)
    }

    private init(shape: [Int], storage: AlignedStorage<Scalar>) {
        self.shape = shape
        self.storage = storage
    }

    init(unvalidatedShape shape: [Int], count: Int) {
        self.shape = shape
        self.storage = AlignedStorage(count: count)
    }
}

extension Tensor: Equatable {
    /// Element-wise equality (bitwise for NaN-free data); shapes must match.
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        lhs.shape == rhs.shape && lhs.withUnsafeBufferPointer { a in
            rhs.withUnsafeBufferPointer { b in a.elementsEqual(b) }
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        "Tensor<\(Scalar.self)>(shape: \(shape))"
    }
}
