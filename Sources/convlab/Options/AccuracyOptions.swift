import ArgumentParser
import ConvLab

/// `--accuracy-ceiling` and `--allow-inaccurate`, shared by every subcommand that plans backends: a plan whose
/// declared error bound is above the ceiling is refused with the reason, unless explicitly allowed (its check then
/// says `unbounded`, never `pass`).
struct AccuracyOptions: ParsableArguments {
    @Option(name: .customLong("accuracy-ceiling"),
            help: "Refuse plans whose declared error bound (relative to Σ|w|·|x|) exceeds this (default 1e-2).")
    var accuracyCeiling = AccuracyCeiling.defaultCeiling

    @Flag(name: .customLong("allow-inaccurate"),
          help: "Run plans above the accuracy ceiling anyway; their check reports 'unbounded', never 'pass'.")
    var allowInaccurate = false

    func ceiling() throws -> AccuracyCeiling {
        let ceiling = AccuracyCeiling(ceiling: accuracyCeiling, allowsInaccurate: allowInaccurate)
        do { try ceiling.validate() } catch {
            throw ConvLabError.invalidArgument(name: "accuracy-ceiling",
                                               reason: "must be a positive finite number (got \(accuracyCeiling))")
        }
        return ceiling
    }
}
