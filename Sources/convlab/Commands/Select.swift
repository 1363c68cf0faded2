import ArgumentParser
import ConvLab
import Foundation

/// `convlab select`: which backend for this layer, and why.
struct Select: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Choose the backend for a layer (from wisdom, else the cost model) and explain the choice.",
        discussion: """
        Candidates must support the shape, have a declared error bound within --tolerance (default: 32x the float32 \
        direct-method bound) and, when planned, a workspace within --max-workspace. --evaluate --suite PATH measures \
        every candidate on each row and reports the heuristic's regret (time of its choice / best time − 1). \
        --model-check CSV compares the cost model with the measurements in a sweep or bench CSV.
        """)

    @OptionGroup var shape: ShapeOptions
    @OptionGroup var accuracy: AccuracyOptions

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(help: ArgumentHelp(stringLiteral: PassOption.help))
    var pass = "forward"

    @Option(help: "Largest acceptable error bound (relative to Σ|w|·|x|); default 32× the direct-method bound.")
    var tolerance: Double?

    @Option(name: .customLong("tolerance-mode"),
            help: "Compare the tolerance with each plan's worst-case bound (worst) or its typical-error estimate (typical; default tolerance 32x the direct method's).")
    var toleranceMode = "worst"

    @Option(name: .customLong("max-workspace"), help: "Largest acceptable workspace (e.g. 64M, 1G).")
    var maxWorkspace: String?

    @Flag(help: "Print every candidate's predicted (or measured) time and why the others lost.")
    var explain = false

    @Option(help: ArgumentHelp(stringLiteral: "Cost-model profile: auto (calibrated on this machine, else the built-in "
        + "profile of its kind or the closest one), a built-in name ("
        + MachineProfiles.builtIn.map(\.name).joined(separator: ", ") + ") or a profile store JSON."))
    var profile = "auto"

    @Option(help: "Wisdom file to consult (default: \(WisdomStore.defaultPath) if it exists).")
    var wisdom: String?

    @Flag(name: .customLong("no-wisdom"), help: "Ignore wisdom: use the cost model only.")
    var noWisdom = false

    @Flag(help: "Measure every candidate on each suite row and report the heuristic's regret.")
    var evaluate = false

    @Option(help: "Suite CSV for --evaluate.")
    var suite: String?

    @Option(name: .customLong("model-check"), help: "Compare the cost model with the measurements in this CSV.")
    var modelCheck: String?

    @Flag(help: ArgumentHelp(stringLiteral: "With --model-check: print each row's correction class, shape, measured "
        + "and physical seconds and every stage's physical seconds (CSV: correction,key,measured_s,physical_s,stages)."))
    var dump = false

    @Option(name: .customLong("max-time"), help: "With --evaluate: stop timing a candidate after this many seconds.")
    var maxTime = 1.0

    func run() throws {
        try Validation.threads(threads)
        let passes = try PassOption.passes(self.pass)
        if let tolerance { try Validation.positive(tolerance, "tolerance") }
        let mode = try parsedToleranceMode()
        try Validation.seconds(maxTime, "max-time")
        if let modelCheck {
            for pass in passes { try runModelCheck(modelCheck, pass: pass) }
            return
        }
        if evaluate {
            guard let suite else { throw ConvLabError.invalidArgument(name: "suite", reason: "--evaluate needs --suite PATH") }
            try runEvaluation(suite, passes: passes)
            return
        }
        let d = try shape.descriptor()
        let store = noWisdom ? nil : WisdomStore(path: wisdom ?? WisdomStore.defaultPath)
        if let warning = store?.warning { printError("select: \(warning)") }
        let cap = try maxWorkspace.map { try ByteCount.parse($0, name: "max-workspace") }
        let resolution = try costProfile()
        let selector = Selector(costModel: CostModel(machine: resolution.profile.model), tolerance: tolerance,
                                maxWorkspaceBytes: cap, wisdom: store, accuracy: try accuracy.ceiling(),
                                toleranceMode: mode)
        if explain { print("cost model: \(resolution.reason)\n") }
        var stepSeconds: Double? = 0
        for (index, pass) in passes.enumerated() {
            if index > 0 { print("") }
            let seconds = try explainChoice(for: d, pass: pass, selector: selector, cap: cap)
            stepSeconds = seconds.flatMap { s in stepSeconds.map { $0 + s } }
        }
        if PassOption.isTraining(self.pass) {
            print("\ntraining step: \(Format.ms(stepSeconds.map { $0 * 1e3 })) ms for the three passes")
        }
    }

    /// The profile `--profile` names.
    private func costProfile() throws -> MachineProfiles.Resolution {
        if profile == "auto" {
            if let warning = MachineProfiles.current.warning { printError("select: \(warning)") }
            return MachineProfiles.current
        }
        if let builtIn = MachineProfiles.builtIn(named: profile) {
            return MachineProfiles.Resolution(profile: builtIn, reason: "built-in profile '\(builtIn.name)' (--profile)")
        }
        guard FileManager.default.fileExists(atPath: profile) else {
            throw ConvLabError.unknownName(kind: "cost-model profile", name: profile,
                                           known: ["auto"] + MachineProfiles.builtIn.map(\.name) + ["a profile JSON path"])
        }
        let store = MachineProfileStore(path: profile)
        if let warning = store.warning { throw ConvLabError.invalidFile(path: profile, reason: warning) }
        // This machine's kind, or the file's only profile (e.g. `calibrate --output` from another machine).
        guard let chosen = store.profiles.first(where: { $0.identity.isSameKind(as: .current) })
                ?? (store.profiles.count == 1 ? store.profiles.first : nil) else {
            throw ConvLabError.invalidFile(path: profile, reason: "holds no profile for this machine (\(MachineIdentity.current))")
        }
        return MachineProfiles.Resolution(profile: chosen, reason: "profile '\(chosen.name)' from \(profile) (--profile)")
    }

    private func parsedToleranceMode() throws -> Selector.ToleranceMode {
        guard let mode = Selector.ToleranceMode(rawValue: toleranceMode.lowercased()) else {
            throw ConvLabError.unknownName(kind: "tolerance mode", name: toleranceMode,
                                           known: Selector.ToleranceMode.allCases.map(\.rawValue))
        }
        return mode
    }

    /// Prints the choice for one pass (and with --explain every candidate); returns its time.
    private func explainChoice(for d: ConvolutionDescriptor, pass: ConvolutionPass, selector: Selector,
                               cap: Int?) throws -> Double? {
        let selection = selector.select(for: d, threads: threads, pass: pass)
        guard let choice = selection.choice, let plan = choice.plan else {
            throw ConvLabError.unsupported(backend: "selector", reason: "no backend meets tolerance "
                                           + "\(Format.error(selection.tolerance))"
                                           + (cap.map { " and workspace cap \(formatBytes($0))" } ?? ""))
        }
        let source = selection.source == .wisdom ? "measured (wisdom)" : "predicted (cost model)"
        print("\(choice.backend.name)  \(plan.variant)")
        print("  \(d)" + (pass == .forward ? "" : ", \(pass)"))
        let judged = selection.toleranceMode == .worst ? "error bound \(Format.error(choice.errorBound))"
            : "typical error \(Format.error(choice.typicalError)) (bound \(Format.error(choice.errorBound)))"
        print("  \(source) \(Format.ms(choice.seconds.map { $0 * 1e3 })) ms, \(judged) "
              + "≤ tolerance \(Format.error(selection.tolerance)), workspace \(Format.bytes(plan.workspaceBytes))")
        guard explain else { return choice.seconds }
        print("")
        var table = TextTable(header: ["candidate", selection.source == .wisdom ? "measured ms" : "predicted ms",
                                       "error bound", "typical", "workspace", "outcome", "variant"])
        for candidate in selection.all {
            let outcome: String
            switch candidate.status {
            case .eligible where candidate.backend.name == choice.backend.name: outcome = "chosen"
            case .eligible:
                let ratio = (candidate.seconds ?? .infinity) / (choice.seconds ?? 1)
                outcome = candidate.seconds == nil ? "no estimate" : String(format: "%.2fx slower", ratio)
            case .unsupported(let reason): outcome = "unsupported: \(reason)"
            case .tooInaccurate(let bound, let tolerance):
                outcome = (selection.toleranceMode == .worst ? "bound" : "typical")
                    + " \(Format.error(bound)) > tolerance \(Format.error(tolerance))"
            case .workspaceOverCap(let bytes, let cap):
                outcome = "workspace \(formatBytes(bytes)) > --max-workspace \(formatBytes(cap))"
            case .failedWhenMeasured(let message): outcome = "failed when measured: \(message)"
            case .noEstimate: outcome = "no estimate"
            }
            table.add([candidate.backend.name, Format.ms(candidate.seconds.map { $0 * 1e3 }),
                       candidate.errorBound.isFinite ? Format.error(candidate.errorBound) : "",
                       candidate.typicalError.isFinite ? Format.error(candidate.typicalError) : "",
                       Format.bytes(candidate.plan?.workspaceBytes), outcome, candidate.plan?.variant ?? ""])
        }
        print(table.render())
        return choice.seconds
    }

    private func runModelCheck(_ path: String, pass: ConvolutionPass) throws {
        let text = try FileInput.text(at: path, what: "the CSV to check the model against")
        let resolution = try costProfile()
        printError("select: cost model: \(resolution.reason)")
        let check = try ModelCheck(csv: text, model: CostModel(machine: resolution.profile.model), pass: pass)
        if dump {
            print("correction,key,measured_s,physical_s,stages")
            for line in check.dump { print(line) }
            return
        }
        var table = TextTable(header: ["backend", "rows", "measured/predicted median", "p10", "p90"])
        for fit in check.fits {
            table.add([fit.backend, "\(fit.rows)", String(format: "%.2f", fit.medianRatio),
                       String(format: "%.2f", fit.lowRatio), String(format: "%.2f", fit.highRatio)])
        }
        print(table.render())
        let regrets = check.regrets.map(\.regret)
        let within = regrets.filter { $0 <= 0.10 }.count
        print("\nshapes \(regrets.count): regret ≤ 10% on \(within), mean \(String(format: "%.3f", regrets.reduce(0, +) / Double(max(regrets.count, 1)))), "
              + "worst \(String(format: "%.3f", regrets.max() ?? 0))")
        for r in check.regrets.sorted(by: { $0.regret > $1.regret }).prefix(12) where r.regret > 0.1 {
            print("  \(r.name): chose \(r.chosen), best \(r.best), regret \(String(format: "%.2f", r.regret))")
        }
    }

    /// Measures every candidate of every pass on each row; regret per pass, and with `training` also of the
    /// step (the sum of the chosen backends' times over the sum of the best ones).
    private func runEvaluation(_ suitePath: String, passes: [ConvolutionPass]) throws {
        let rows = try SuiteFile.read(contentsOf: suitePath)
        let resolution = try costProfile()
        printError("select: cost model: \(resolution.reason)")
        let selector = Selector(costModel: CostModel(machine: resolution.profile.model), tolerance: tolerance,
                                accuracy: try accuracy.ceiling(), toleranceMode: try parsedToleranceMode())
        let timing = TimingPolicy(minRepeats: 5, maxSeconds: maxTime)
        var table = TextTable(header: ["row", "pass", "heuristic choice", "measured best", "choice ms", "best ms",
                                       "regret"])
        var regrets: [Double] = []
        var regretsByPass: [ConvolutionPass: [Double]] = [:]
        var steps: [(chosen: Double, best: Double)] = []
        for row in rows {
            var step: (chosen: Double, best: Double)? = (0, 0)
            for pass in passes {
                let selection = selector.select(for: row.descriptor, threads: threads, pass: pass)
                guard let choice = selection.choice else {
                    step = nil
                    continue
                }
                let runner = ComparisonRunner(descriptor: row.descriptor,
                                              options: PlanOptions(threads: threads, accuracy: selector.accuracy),
                                              timing: timing, checkAccuracy: false, pass: pass)
                let measured = try runner.run(backends: selection.ranked.map(\.backend))
                    .filter { $0.timing != nil }
                guard let best = measured.min(by: { $0.timing!.median < $1.timing!.median }),
                      let chosen = measured.first(where: { $0.backend == choice.backend.name }),
                      let chosenTime = chosen.timing?.median, let bestTime = best.timing?.median else {
                    step = nil
                    continue
                }
                let regret = chosenTime / bestTime - 1
                regrets.append(regret)
                regretsByPass[pass, default: []].append(regret)
                step = step.map { ($0.chosen + chosenTime, $0.best + bestTime) }
                table.add([row.name, pass.rawValue, choice.backend.name, best.backend, Format.ms(chosenTime * 1e3),
                           Format.ms(bestTime * 1e3), String(format: "%.3f", regret)])
                printError("select: \(row.name) \(pass) done")
            }
            if passes.count > 1, let step { steps.append(step) }
        }
        print(table.render())
        if passes.count > 1 {
            for pass in passes {
                let r = regretsByPass[pass] ?? []
                print("\(pass): regret ≤ 10% on \(r.filter { $0 <= 0.10 }.count) of \(r.count) rows, mean "
                      + "\(String(format: "%.3f", r.reduce(0, +) / Double(max(r.count, 1)))), worst "
                      + "\(String(format: "%.3f", r.max() ?? 0))")
            }
            let stepRegrets = steps.map { $0.chosen / $0.best - 1 }
            print("training step: regret ≤ 10% on \(stepRegrets.filter { $0 <= 0.10 }.count) of \(stepRegrets.count) "
                  + "rows, mean \(String(format: "%.3f", stepRegrets.reduce(0, +) / Double(max(stepRegrets.count, 1)))), "
                  + "worst \(String(format: "%.3f", stepRegrets.max() ?? 0))")
        }
        let within = regrets.filter { $0 <= 0.10 }.count
        let mean = regrets.reduce(0, +) / Double(max(regrets.count, 1))
        print("\nregret ≤ 10% on \(within) of \(regrets.count) rows; mean \(String(format: "%.3f", mean)), "
              + "worst \(String(format: "%.3f", regrets.max() ?? 0))")
        print("summary: rows=\(regrets.count) within10=\(within) mean_regret=\(String(format: "%.2f", mean)) "
              + "worst_regret=\(String(format: "%.2f", regrets.max() ?? 0))")
    }
}
