import ConvLabAccuracy
import ConvLabCore

/// One backend measured on one problem: what `compare`, `bench` and `sweep` print a row for.
public struct BackendMeasurement: Sendable {
    public enum Status: Hashable, Sendable {
        case measured
        /// The backend declined the descriptor; the reason is its `SupportStatus` text.
        case unsupported(String)
        /// Planning or execution threw; the message is the error's description.
        case failed(String)
        /// Refused before allocating because it would exceed a memory limit (`ResourceLimits`); the message says
        /// how much it needed.
        case skipped(String)
    }

    public var backend: String
    public var pass: ConvolutionPass
    public var descriptor: ConvolutionDescriptor
    public var threads: Int
    public var status: Status
    public var timing: TimingResult?
    public var planSeconds: Double?
    public var workspaceBytes: Int?
    public var isDeterministic: Bool?
    /// The plan's chosen variant (`ConvolutionPlan.variant`).
    public var variant: String?
    /// The layout of the timed tensors (nChw16c rows take and return blocked tensors).
    public var layout: TensorLayout = .nchw
    public var accuracy: AccuracyReport?
    /// Per-phase seconds of one profiled execution, when asked for.
    public var phases: [(name: String, seconds: Double)] = []

    /// Direct-method FLOPs / median time, in GFLOP/s: comparable across algorithms (see `directFLOPs`).
    public var effectiveGFLOPs: Double? {
        timing.map { Double(descriptor.directFLOPs) / $0.median / 1e9 }
    }

    /// A one-word status for tables and CSV: ok, unsupported, error, skipped.
    public init(backend: String, descriptor: ConvolutionDescriptor, threads: Int, status: Status,
                pass: ConvolutionPass = .forward) {
        self.backend = backend
        self.pass = pass
        self.descriptor = descriptor
        self.threads = threads
        self.status = status
    }

    public var statusWord: String {
        switch status {
        case .measured: return "ok"
        case .unsupported: return "unsupported"
        case .failed: return "error"
        case .skipped: return "skipped"
        }
    }

    public var statusMessage: String? {
        switch status {
        case .measured: return nil
        case .unsupported(let reason), .failed(let reason), .skipped(let reason): return reason
        }
    }
}
