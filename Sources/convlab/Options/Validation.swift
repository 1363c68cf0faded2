import ConvLab

/// Checks on numeric flags, shared by every subcommand so that the same flag is held to the same range everywhere.
/// Each throws `.invalidArgument` naming the flag, which the CLI prints as one `Error:` line — before anything is
/// allocated or run.
enum Validation {
    /// `--threads`: 1...`Parallel.maxThreads`.
    static func threads(_ value: Int) throws {
        try Parallel.validate(threads: value)
    }

    /// An integer flag within `range`.
    static func integer(_ value: Int, _ name: String, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ConvLabError.invalidArgument(name: name, reason: "must be \(range.lowerBound)...\(range.upperBound) "
                                               + "(got \(value))")
        }
    }

    /// Seconds: finite, ≥ 0 (or > 0), at most an hour (a longer timing of one backend is a typo, not a plan).
    static func seconds(_ value: Double, _ name: String, allowZero: Bool = false) throws {
        guard value.isFinite, allowZero ? value >= 0 : value > 0, value <= maximumSeconds else {
            throw ConvLabError.invalidArgument(
                name: name, reason: "must be a number of seconds in \(allowZero ? "[0" : "(0"), \(Int(maximumSeconds))] "
                    + "(got \(value))")
        }
    }

    static let maximumSeconds = 3600.0

    /// A positive, finite number (a tolerance, an error target).
    static func positive(_ value: Double, _ name: String) throws {
        guard value.isFinite, value > 0 else {
            throw ConvLabError.invalidArgument(name: name, reason: "must be a positive finite number (got \(value))")
        }
    }

    /// Repeats of a timed run: enough for any median, and few enough that a typo cannot run for days.
    static let maximumRepeats = 100_000
}
