import ConvLab

/// `--pass`: one of the three computations of a layer, or `training` — all three of one training step, each
/// reported on its own and summed. One parser for every subcommand, so the spellings and errors are the same.
enum PassOption {
    static let help = "Pass: forward, backward-data (dgrad), backward-weights (wgrad) or training (the three passes "
        + "of one step, each and their sum)."

    static func isTraining(_ text: String) -> Bool { text.lowercased() == "training" }

    /// The passes `text` names, in step order.
    static func passes(_ text: String) throws -> [ConvolutionPass] {
        if isTraining(text) { return ConvolutionPass.allCases }
        do {
            return [try ConvolutionPass(parsing: text)]
        } catch {
            throw ConvLabError.unknownName(kind: "pass", name: text,
                                           known: ConvolutionPass.allCases.map(\.rawValue) + ["training"])
        }
    }

    /// For subcommands that compute exactly one pass (`conv` writes one tensor).
    static func single(_ text: String, command: String) throws -> ConvolutionPass {
        if isTraining(text) {
            throw ConvLabError.invalidArgument(
                name: "pass", reason: "\(command) computes one pass; give forward, backward-data or backward-weights")
        }
        return try ConvolutionPass(parsing: text)
    }
}
