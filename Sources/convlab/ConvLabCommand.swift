import ArgumentParser
import ConvLab
import Foundation

@main
struct ConvLabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convlab",
        abstract: "Fast 2-D convolution research: run one layer through every algorithm, compare time and error.",
        subcommands: [Compare.self, Conv.self, Bench.self, Matmul.self, Accuracy.self, Transforms.self, Sweep.self,
                      Select.self, Tune.self, Calibrate.self, Layers.self, Decompose.self,
                      Network.self, Infer.self],
        defaultSubcommand: nil
    )

    /// Every failure is one `Error:` line on stderr and a non-zero status: bad flags from the parser (which would add
    /// a help line) as much as convlab's own errors. `--help` still prints the full help, an interrupted sweep just
    /// exits with 130.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = Self.message(for: error).split(separator: "\n").first.map(String.init) ?? ""
            if !message.isEmpty { FileHandle.standardError.write(Data("Error: \(message)\n".utf8)) }
            Foundation.exit(code.rawValue)
        }
    }
}
