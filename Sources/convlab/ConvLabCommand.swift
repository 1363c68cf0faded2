import ArgumentParser
import ConvLab

@main
struct ConvLabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convlab",
        abstract: "Fast 2-D convolution research: run one layer through every algorithm, compare time and error.",
        subcommands: [Compare.self, Conv.self, Bench.self, Matmul.self, Accuracy.self, Transforms.self, Sweep.self, Select.self, Tune.self, Layers.self, Decompose.self],
        defaultSubcommand: nil
    )
}
