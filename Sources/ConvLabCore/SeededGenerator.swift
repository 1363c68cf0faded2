import Foundation

/// xoshiro256** seeded through SplitMix64: a fast generator whose stream depends only on the seed, on every
/// platform and Swift version, so every experiment and every random test case is reproducible from its seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var splitMix = seed
        func next() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Standard normal by Box–Muller (one of the pair; simplicity over speed, this is not a hot path).
    public mutating func nextNormal() -> Double {
        let u1 = 1.0 - nextUnit()  // (0, 1], keeps log finite
        let u2 = nextUnit()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }
}

/// Distributions for filling test and benchmark data.
public enum Distribution: Hashable, Sendable, CustomStringConvertible {
    case uniform(low: Double, high: Double)
    case normal(mean: Double, standardDeviation: Double)
    /// max(0, N(0, 1)): activations after a ReLU, half of them exactly zero. Winograd's error behaves differently on
    /// such data than on Gaussian data, so accuracy studies use both.
    case rectifiedNormal

    public func sample(_ generator: inout SeededGenerator) -> Double {
        switch self {
        case let .uniform(low, high):
            return low + (high - low) * generator.nextUnit()
        case let .normal(mean, deviation):
            return mean + deviation * generator.nextNormal()
        case .rectifiedNormal:
            return max(0, generator.nextNormal())
        }
    }

    public var description: String {
        switch self {
        case let .uniform(low, high): return "uniform(\(low), \(high))"
        case let .normal(mean, deviation): return "normal(\(mean), \(deviation))"
        case .rectifiedNormal: return "relu(normal(0, 1))"
        }
    }
}

extension Tensor {
    /// A tensor of independent samples; the same (shape, distribution, seed) always gives the same values.
    public static func random(shape: [Int], distribution: Distribution = .uniform(low: -1, high: 1),
                              seed: UInt64) throws -> Tensor {
        var tensor = try Tensor(shape: shape)
        var generator = SeededGenerator(seed: seed)
        tensor.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = Scalar(distribution.sample(&generator)) }
        }
        return tensor
    }
}
