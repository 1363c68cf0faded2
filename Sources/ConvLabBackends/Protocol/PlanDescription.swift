import ConvLabCore

/// What a backend will do for a problem, known before any weights exist — oneDNN's primitive descriptor, NNPACK's
/// workspace query: the variant it picks, its error bound, the workspace and persistent memory it needs and the
/// work it will do. `Convolution.describe` returns it from the same geometry `makePlan` builds the plan from, so the
/// selector ranks exactly what would run.
public struct PlanDescription: Sendable {
    public var backend: String
    /// The computation the plan performs.
    public var pass: ConvolutionPass
    /// The chosen variant, as the plan reports it (e.g. "16x16 4m 16 tiles"); empty when there is no choice.
    public var variant: String
    /// Largest relative error, in the checker's normalisation, the matrix engine's growth included.
    public var errorBound: Double
    /// What makes `errorBound` as large as it is, in words a refusal can print (e.g. "F(2x2,15x15) transforms grow
    /// rounding error up to 1.7e+07x"); empty when it is the plain length of the sums.
    public var errorSource: String
    /// The mean relative error expected on zero-mean random data (`TypicalError`): what users see, typically
    /// 10²–10⁴× below the worst case.
    public var typicalError: Double
    /// Scratch bytes `execute` needs.
    public var workspaceBytes: Int
    /// Bytes the plan keeps besides the caller's workspace (transformed weights, filter spectra).
    public var persistentBytes: Int
    public var isDeterministic: Bool
    /// The work it does, for the cost model; nil when the backend does not estimate it (the reference).
    public var work: WorkEstimate?

    public init(backend: String, pass: ConvolutionPass = .forward, variant: String = "", errorBound: Double,
                errorSource: String = "", typicalError: Double, workspaceBytes: Int, persistentBytes: Int = 0, isDeterministic: Bool = true, work: WorkEstimate?) {
        self.backend = backend
        self.pass = pass
        self.variant = variant
        self.errorBound = errorBound
        self.errorSource = errorSource
        self.typicalError = typicalError
        self.workspaceBytes = workspaceBytes
        self.persistentBytes = persistentBytes
        self.isDeterministic = isDeterministic
        self.work = work
    }
}
