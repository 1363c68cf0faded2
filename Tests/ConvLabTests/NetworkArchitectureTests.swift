import ConvLab
import Foundation
import Testing

/// The architecture tables against the counts their papers and torchvision publish, the shapes their definitions
/// imply, and the table machinery (suite round trip, forced policies, measured rows) on small inputs.
@Suite struct NetworkArchitectureTests {
    /// (network, convolutions, multiply-adds at 1×3×224×224 in G, tolerance in G).
    static let published: [(String, Int, Double, Double)] = [
        ("resnet50", 53, 4.09, 0.01),        // He et al.; torchvision's 4.09 GFLOPS (multiply-adds)
        ("vgg16", 13, 15.35, 0.01),          // Simonyan & Zisserman's 15.3 G in the convolutions
        ("mobilenetv2", 52, 0.300, 0.003),   // Sandler et al. Table 3: 300 M
        ("shufflenetv2", 56, 0.146, 0.003),  // Ma et al. Table 5: 146 M for 1.0x
        ("convnext-t", 58, 4.5, 0.06),       // Liu et al. Table 1: 4.5 G
        ("alexnet", 5, 0.656, 0.005),        // torchvision's 0.71 G less the 58.6 M of the classifier
        ("efficientnet-lite0", 49, 0.385, 0.005),
    ]

    @Test(arguments: published)
    func countsMatchPublished(_ entry: (String, Int, Double, Double)) throws {
        let (name, convolutions, gigaMultiplyAdds, tolerance) = entry
        let layers = try NetworkCatalog.named(name).layers()
        #expect(layers.count == convolutions)
        let total = Double(layers.reduce(0) { $0 + $1.multiplyAdds }) / 1e9
        #expect(abs(total - gigaMultiplyAdds) <= tolerance, "\(name): \(total) G multiply-adds")
        #expect(Set(layers.map(\.name)).count == layers.count, "layer names repeat in \(name)")
    }

    /// Parameters of the convolutions: torchvision's totals less the classifier and batch-norm parameters.
    @Test func parameterCounts() throws {
        #expect(try NetworkCatalog.named("mobilenetv2").layers().reduce(0) { $0 + $1.descriptor.parameterCount }
                    == 2_189_760)
        #expect(try NetworkCatalog.named("vgg16").layers().reduce(0) { $0 + $1.descriptor.parameterCount }
                    == 14_710_464)
        // ResNet-50: 25,557,032 in all; the fc layer has 2,049,000 and the 53 batch norms 53,120.
        #expect(try NetworkCatalog.named("resnet50").layers().reduce(0) { $0 + $1.descriptor.parameterCount }
                    == 25_557_032 - 2_049_000 - 53_120)
    }

    /// The last convolution's output is the feature map the classifier pools, and EfficientNet-Lite0 has the nine
    /// depthwise 5×5 layers its definition gives.
    @Test func finalFeatureMapsAndKernels() throws {
        func last(_ name: String) throws -> [Int] { try NetworkCatalog.named(name).layers().last!.descriptor.outputShape }
        #expect(try last("resnet50") == [1, 2048, 7, 7])
        #expect(try last("mobilenetv2") == [1, 1280, 7, 7])
        #expect(try last("efficientnet-lite0") == [1, 1280, 7, 7])
        #expect(try last("shufflenetv2") == [1, 1024, 7, 7])
        #expect(try last("convnext-t") == [1, 768, 7, 7])
        #expect(try last("vgg16") == [1, 512, 14, 14])
        #expect(try last("alexnet") == [1, 256, 13, 13])
        let lite = try NetworkCatalog.named("efficientnet-lite0").layers()
        #expect(lite.filter { $0.descriptor.isDepthwise && $0.descriptor.kernelHeight == 5 }.count == 9)
        #expect(lite.map(\.descriptor.outputChannels).max() == 1280)
        #expect(lite.filter(\.descriptor.isDepthwise).map(\.descriptor.inputChannels).max() == 1152)
    }

    /// Batch scales every count linearly; the input size changes every map; an input too small is a typed error that
    /// names the layer that cannot be built.
    @Test func batchSizeAndInvalidInputs() throws {
        let resnet = NetworkArchitecture.resnet50
        let one = try resnet.layers(), four = try resnet.layers(batch: 4, height: 224, width: 224)
        let oneTotal = one.reduce(0) { $0 + $1.multiplyAdds }, fourTotal = four.reduce(0) { $0 + $1.multiplyAdds }
        #expect(fourTotal == 4 * oneTotal)
        let wide = try resnet.layers(height: 320, width: 256)
        #expect(wide.last!.descriptor.outputShape == [1, 2048, 10, 8])
        // 4×4 cannot hold the 11×11 stem even padded; 8×8 can, but its 2×2 output cannot hold the first pooling.
        for (size, failing) in [(4, "features.0"), (8, "features.2")] {
            #expect {
                _ = try NetworkArchitecture.alexNet.layers(height: size, width: size)
            } throws: { error in
                if case ConvLabError.invalidArgument(let name, _) = error { return name == failing }
                return false
            }
        }
        #expect(throws: ConvLabError.self) { try resnet.layers(batch: 0) }
        #expect(throws: ConvLabError.self) { try NetworkCatalog.named("resnet51") }
    }

    /// The suite a table writes reads back as the same descriptors, in order, for every network.
    @Test func suiteRoundTrip() throws {
        for architecture in NetworkCatalog.all {
            let layers = try architecture.layers(batch: 2, height: 160, width: 192)
            let rows = try SuiteFile.parse(NetworkSuite.text(layers))
            #expect(rows.map(\.descriptor) == layers.map(\.descriptor), "\(architecture.name)")
            #expect(rows.map(\.name) == layers.map(\.name))
        }
    }

    /// A forced policy puts that backend on every layer (or says why not); the selector's choice is a backend that
    /// supports the layer; measured rows have a time and pass their float64 check, for every pass.
    @Test func tableChoicesAndMeasurements() throws {
        let layers = try NetworkArchitecture.mobilenetV2.layers(batch: 2, height: 32, width: 32)
        let options = PlanOptions(threads: 2)
        let forced = try NetworkTable(passes: ConvolutionPass.allCases, options: options, policy: .only("direct"))
            .plan(layers)
        #expect(forced.allSatisfy { $0.passes.allSatisfy { $0.backend == "direct" } })
        let measured = try NetworkTable(passes: ConvolutionPass.allCases, options: options,
                                        timing: TimingPolicy(warmupRuns: 0, minRepeats: 1, maxRepeats: 1,
                                                             minSeconds: 0, maxSeconds: 0.01))
            .measure(Array(layers.prefix(8)))
        for row in measured {
            for result in row.passes {
                let backend = try BackendRegistry.standard().backend(named: try #require(result.backend))
                #expect(backend.support(for: row.descriptor, pass: result.pass) == .supported)
                #expect((result.seconds ?? 0) > 0, "\(row.name) \(result.pass): \(result.note ?? "")")
                #expect(result.accuracy?.verdict == .pass, "\(row.name) \(result.pass)")
            }
        }
        let totals = NetworkTotals(measured)
        #expect(totals.layers == 8)
        #expect(totals.flops == measured.reduce(0) { $0 + $1.flops })
        #expect(Set(totals.seconds.keys) == Set(ConvolutionPass.allCases.map(\.rawValue)))
    }

    /// `convlab network`: the CSV has the suite columns and one row per layer and pass plus the totals; an unknown
    /// network or backend is one error line.
    @Test func commandLine() throws {
        let csv = try CLITests.run(["network", "shufflenetv2", "--no-run", "--format", "csv", "--pass", "training"])
        #expect(csv.status == 0, "\(csv.stderr)")
        let lines = csv.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("name,N,C,H,W,K,R,S,stride,pad,groups,dilation,") == true)
        #expect(lines.count == 1 + 56 * 3 + 3)
        let unknown = try CLITests.run(["network", "resnet51"])
        #expect(unknown.status != 0 && unknown.stderr.contains("resnet51"))
        let badBackend = try CLITests.run(["network", "alexnet", "--no-run", "--backend", "nonesuch"])
        #expect(badBackend.status != 0 && badBackend.stderr.contains("nonesuch"))
    }
}
