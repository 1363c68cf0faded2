import ConvLabAccuracy
import ConvLabBackends
import ConvLabBenchmark
import ConvLabCore
import ConvLabSelection

/// One convolution of a network table: what it costs on paper (FLOPs, parameters, memory access) beside, per pass,
/// what the selector chose and, when run, what that choice measured.
public struct NetworkTableRow: Sendable, Codable {
    public var name: String
    public var descriptor: ConvolutionDescriptor
    public var flops: Int
    public var multiplyAdds: Int
    public var parameters: Int
    /// Memory access cost: input, weights and output crossing memory once, in bytes (ShuffleNet V2's MAC).
    public var macBytes: Int
    public var passes: [PassResult]

    public struct PassResult: Sendable, Codable {
        public var pass: ConvolutionPass
        /// The selector's (or the forced policy's) backend; nil when nothing can run the pass.
        public var backend: String?
        public var variant: String?
        /// Why nothing ran, or why the measurement failed.
        public var note: String?
        public var seconds: Double?
        public var accuracy: AccuracyReport?

        /// Direct-method FLOPs over the measured time, the same count for every pass.
        public func gflops(flops: Int) -> Double? { seconds.map { Double(flops) / $0 / 1e9 } }
    }
}

/// Network totals: the sums, and for each pass the total of the measured times (nil if any layer did not run).
public struct NetworkTotals: Sendable, Codable {
    public var layers: Int
    public var flops: Int
    public var multiplyAdds: Int
    public var parameters: Int
    public var macBytes: Int
    /// Keyed by the pass's name (`forward`, `backward-data`, ...).
    public var seconds: [String: Double]

    public init(_ rows: [NetworkTableRow]) {
        layers = rows.count
        flops = rows.reduce(0) { $0 + $1.flops }
        multiplyAdds = rows.reduce(0) { $0 + $1.multiplyAdds }
        parameters = rows.reduce(0) { $0 + $1.parameters }
        macBytes = rows.reduce(0) { $0 + $1.macBytes }
        var seconds: [String: Double] = [:]
        for pass in rows.first?.passes.map(\.pass) ?? [] {
            let times = rows.compactMap { $0.passes.first { $0.pass == pass }?.seconds }
            if times.count == rows.count { seconds[pass.rawValue] = times.reduce(0, +) }
        }
        self.seconds = seconds
    }
}

/// Which backend runs each layer: the selector's choice, or one backend everywhere ("direct-only").
public enum NetworkPolicy: Sendable, Hashable, CustomStringConvertible {
    case selector
    /// This backend on every layer; a layer it cannot run is reported, not rerouted.
    case only(String)
    /// This backend wherever it supports the layer (and its plan passes the accuracy ceiling), the selector elsewhere:
    /// "FFT wherever it applies".
    case preferring(String)

    public var description: String {
        switch self {
        case .selector: return "selector"
        case .only(let name): return "\(name)-only"
        case .preferring(let name): return "\(name)-where-it-applies"
        }
    }

    /// The backend this policy runs `pass` of `d` on (and its plan's variant), or nil and the reason. One resolver for
    /// the network tables and for trained-model inference, so a policy means the same in both.
    public func resolve(_ pass: ConvolutionPass, of d: ConvolutionDescriptor, selector: Selector,
                        options: PlanOptions) throws -> (backend: (any Convolution)?, variant: String?, note: String?) {
        switch self {
        case .only(let name):
            let backend = try selector.registry.backend(named: name)
            if case .unsupported(let reason) = backend.support(for: d, pass: pass) { return (nil, nil, "\(name): \(reason)") }
            return (backend, nil, nil)
        case .preferring(let name):
            // describe runs the plan's own geometry, workspace and accuracy-ceiling checks, so it fails exactly
            // where making the plan would.
            let backend = try selector.registry.backend(named: name)
            if backend.support(for: d, pass: pass) == .supported,
               let plan = try? backend.describe(d, pass: pass, options: options) {
                return (backend, plan.variant, nil)
            }
            fallthrough
        case .selector:
            let selection = selector.select(for: d, threads: options.threads, pass: pass)
            guard let choice = selection.choice else {
                return (nil, nil, "no backend meets tolerance \(selection.tolerance)")
            }
            return (choice.backend, choice.plan?.variant, nil)
        }
    }
}

/// Builds network tables: counts for every layer, the policy's backend per pass and, when asked, each layer timed
/// and checked against the float64 reference on seeded random data.
public struct NetworkTable: Sendable {
    public var passes: [ConvolutionPass]
    public var options: PlanOptions
    public var policy: NetworkPolicy
    public var selector: Selector
    public var timing: TimingPolicy
    public var checkAccuracy: Bool
    public var seed: UInt64

    public init(passes: [ConvolutionPass] = [.forward], options: PlanOptions = PlanOptions(),
                policy: NetworkPolicy = .selector, selector: Selector = Selector(),
                timing: TimingPolicy = TimingPolicy(maxSeconds: 0.3), checkAccuracy: Bool = true, seed: UInt64 = 1) {
        self.passes = passes
        self.options = options
        self.policy = policy
        self.selector = selector
        self.timing = timing
        self.checkAccuracy = checkAccuracy
        self.seed = seed
    }

    /// Counts and choices only: nothing is allocated or run.
    public func plan(_ layers: [NetworkLayer]) throws -> [NetworkTableRow] {
        try layers.map { layer in
            var row = Self.counted(layer)
            row.passes = try passes.map { try choose($0, for: layer.descriptor).result }
            return row
        }
    }

    /// Counts, choices and measurements; `onEach` sees every row as it completes (for progress).
    public func measure(_ layers: [NetworkLayer], onEach: (NetworkTableRow) -> Void = { _ in }) throws
        -> [NetworkTableRow] {
        var rows: [NetworkTableRow] = []
        for layer in layers {
            var row = Self.counted(layer)
            for pass in passes {
                let (backend, chosen) = try choose(pass, for: layer.descriptor)
                var result = chosen
                if let backend {
                    let runner = ComparisonRunner(descriptor: layer.descriptor, options: options, timing: timing,
                                                  seed: seed, checkAccuracy: checkAccuracy, pass: pass)
                    if let measured = try runner.run(backends: [backend]).first {
                        result.seconds = measured.timing?.median
                        result.accuracy = measured.accuracy
                        result.variant = measured.variant
                        result.note = measured.statusMessage
                    }
                }
                row.passes.append(result)
            }
            onEach(row)
            rows.append(row)
        }
        return rows
    }

    static func counted(_ layer: NetworkLayer) -> NetworkTableRow {
        let d = layer.descriptor
        return NetworkTableRow(name: layer.name, descriptor: d, flops: d.directFLOPs, multiplyAdds: layer.multiplyAdds,
                               parameters: d.parameterCount, macBytes: d.naiveBytesMoved, passes: [])
    }

    /// The policy's backend for one pass of one layer, with the reason when there is none.
    func choose(_ pass: ConvolutionPass, for d: ConvolutionDescriptor) throws
        -> (backend: (any Convolution)?, result: NetworkTableRow.PassResult) {
        let choice = try policy.resolve(pass, of: d, selector: selector, options: options)
        var result = NetworkTableRow.PassResult(pass: pass)
        (result.backend, result.variant, result.note) = (choice.backend?.name, choice.variant, choice.note)
        return (choice.backend, result)
    }
}
