import ConvLab
import Foundation
import Testing

/// Trained-model graphs: the tiny fixture network (every operation and convolution feature, written with NumPy's
/// float64 logits by scripts/models/make-test-model.py) end to end under every policy, the float64 run against NumPy,
/// and every malformed manifest a typed error naming the node or tensor.
@Suite struct ModelGraphTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-model").path

    static func numpyLogits() throws -> [Double] {
        try NumpyArray.read(contentsOf: fixture + "/numpy-logits.npy").values
    }

    static func input() throws -> Tensor<Float> {
        try NumpyArray.read(contentsOf: fixture + "/input.npy").float32Tensor()
    }

    static func relativeError<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(_ a: [A], _ b: [B]) -> Double {
        let scale = b.map { abs(Double($0)) }.max() ?? 1
        return zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / scale
    }

    @Test(arguments: [NetworkPolicy.selector, .only("direct"), .only("im2col"), .preferring("fft"),
                      .preferring("fft-tiled"), .preferring("winograd")])
    func tinyNetworkMatchesNumPy(_ policy: NetworkPolicy) throws {
        let graph = try ModelGraph.load(directory: Self.fixture)
        #expect(graph.labels.count == 10)
        let x = try Self.input()
        let inference = try ModelInference(graph: graph, batch: 2, policy: policy, options: PlanOptions(threads: 2))
        let expected = try Self.numpyLogits()
        let (logits, seconds) = try inference.run(x)
        #expect(logits.shape == [2, 10])
        #expect(seconds.count == graph.steps.count && seconds.allSatisfy { $0 >= 0 })
        // float32 through six convolutions: about 1e-7 relative; 1e-5 fails on any indexing or transform error.
        #expect(Self.relativeError(logits.scalars, expected) < 1e-5, "\(policy)")
        // The float64 run and NumPy's evaluate the same definitions in float64: they agree to rounding.
        #expect(Self.relativeError(try inference.float64(x).scalars, expected) < 1e-12)
        if case .only(let name) = policy {
            #expect(inference.backends.compactMap { $0 }.allSatisfy { $0.hasPrefix(name) })
        }
        let report = try InferenceReport.measure(inference, input: x, top: 3, repeats: 2).report
        #expect(report.top1Agreement == 2 && report.topKAgreement == 2)
        #expect(report.top.map(\.classIndex) == report.referenceTop.map(\.classIndex))
        #expect(abs(report.top.filter { $0.image == 0 }.reduce(0) { $0 + $1.probability } - 1) < 1)
    }

    /// One image alone gives that image's logits in the batch; a wrong-shaped input is a typed error.
    @Test func batchIndependenceAndInputShape() throws {
        let graph = try ModelGraph.load(directory: Self.fixture)
        let x = try Self.input()
        let second = try Tensor<Float>(shape: [1, 3, 17, 15], scalars: Array(x.scalars[(3 * 17 * 15)...]))
        let single = try ModelInference(graph: graph, batch: 1).run(second).output.scalars
        #expect(Self.relativeError(single, Array(try Self.numpyLogits()[10...])) < 1e-5)
        #expect(throws: ConvLabError.self) { try ModelInference(graph: graph, batch: 1).run(x) }
    }

    @Test func manifestRoundTrip() throws {
        let manifest = try ModelManifest.read(directory: Self.fixture)
        let data = try JSONEncoder().encode(manifest)
        let again = try JSONDecoder().decode(ModelManifest.self, from: data)
        #expect(again.nodes.map(\.name) == manifest.nodes.map(\.name))
        #expect(again.nodes.map(\.op) == manifest.nodes.map(\.op))
        #expect(again.nodes.map(\.padding) == manifest.nodes.map(\.padding))
        #expect(try ModelGraph.load(directory: Self.fixture).steps.count == manifest.nodes.count)
    }

    /// Each case edits the fixture's manifest (or a tensor) in a copy; loading must throw an error whose text names
    /// what is wrong.
    static let malformed: [(String, String)] = [
        ("not json", "not valid JSON"),
        ("missing field", "missing field 'nodes[1].op'"),
        ("wrong type", "nodes[0].stride"),
        ("wrong format", "format"),
        ("future version", "version 2"),
        ("duplicate name", "node 'stem'"),
        ("unknown input", "input 'nowhere'"),
        ("add arity", "add takes 2"),
        ("no weight", "needs a weight"),
        ("missing tensor", "tensor 'gone.npy' of node 'stem' is missing"),
        ("path escape", "plain file name"),
        ("weight rank", "node 'pointwise' weight"),
        ("bias shape", "node 'stem' bias"),
        ("channel mismatch", "node 'pointwise' input channels"),
        ("add shapes", "node 'residual' input"),
        ("bad padding", "padding must be four"),
        ("unknown output", "output 'logits'"),
        ("corrupt tensor", "tensor 'depthwise.weight.npy' of node 'depthwise'"),
        ("bad input shape", "input.shape"),
        ("pool kernel", "needs a kernel"),
    ]

    @Test(arguments: malformed)
    func malformedModelsAreTypedErrors(_ entry: (String, String)) throws {
        let (name, expected) = entry
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("convlab-model-\(name.replacingOccurrences(of: " ", with: "-"))-\(getpid())").path
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifestPath = directory + "/manifest.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            as! [String: Any]
        var nodes = json["nodes"] as! [[String: Any]]
        func index(_ node: String) -> Int { nodes.firstIndex { $0["name"] as? String == node }! }
        var raw: String?
        switch name {
        case "not json": raw = "{ \"format\": "
        case "missing field": nodes[1].removeValue(forKey: "op")
        case "wrong type": nodes[0]["stride"] = "two"
        case "wrong format": json["format"] = "onnx"
        case "future version": json["version"] = 2
        case "duplicate name": nodes[1]["name"] = "stem"
        case "unknown input": nodes[2]["inputs"] = ["nowhere"]
        case "add arity": nodes[index("residual")]["inputs"] = ["stem"]
        case "no weight": nodes[0].removeValue(forKey: "weight")
        case "missing tensor": nodes[0]["weight"] = "gone.npy"
        case "path escape": nodes[0]["weight"] = "../tiny-model/stem.weight.npy"
        case "weight rank": nodes[index("pointwise")]["weight"] = "stem.bias.npy"
        case "bias shape": nodes[0]["bias"] = "classifier.bias.npy"
        case "channel mismatch": nodes[index("pointwise")]["inputs"] = ["input"]
        case "add shapes": nodes[index("residual")]["inputs"] = ["input", "stem"]
        case "bad padding": nodes[0]["padding"] = [1, 1]
        case "unknown output": json["output"] = "logits"
        case "corrupt tensor": try Data("not a numpy file".utf8).write(to: URL(fileURLWithPath: directory + "/depthwise.weight.npy"))
        case "bad input shape": json["input"] = ["name": "input", "shape": [3, 17]]
        case "pool kernel": nodes[index("maxpool")].removeValue(forKey: "kernel")
        default: Issue.record("unknown case \(name)")
        }
        json["nodes"] = nodes
        let text = try raw ?? String(decoding: JSONSerialization.data(withJSONObject: json), as: UTF8.self)
        try text.write(toFile: manifestPath, atomically: true, encoding: .utf8)
        do {
            _ = try ModelGraph.load(directory: directory)
            Issue.record("\(name): loaded")
        } catch let error as ConvLabError {
            #expect(error.description.contains(expected), "\(name): \(error)")
        }
    }

    /// `convlab infer` on the fixture: CSV with the issue's columns; a missing model is one error line.
    @Test func commandLine() throws {
        let csv = try CLITests.run(["infer", "--model", Self.fixture, "--input", Self.fixture + "/input.npy",
                                    "--top", "2", "--format", "csv", "--repeat", "1"])
        #expect(csv.status == 0, "\(csv.stderr)")
        let lines = csv.stdout.split(separator: "\n")
        #expect(lines.first == "rank,class,probability,label,image")
        #expect(lines.count == 1 + 2 * 2)
        let missing = try CLITests.run(["infer", "--model", "/nonexistent", "--input", Self.fixture + "/input.npy"])
        #expect(missing.status != 0 && missing.stderr.contains("manifest.json"))
    }

    /// A trained model fetched by .ci/run (scripts/fetch-models.sh mobilenetv2): its top-5 classes on a shipped photo
    /// through the selector's plans equal NumPy's float64 network (CONVLAB_MODEL_TOP5, from numpy_net.py).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CONVLAB_MODEL_DIR"] != nil))
    func trainedModelTop5MatchesFloat64() throws {
        let environment = ProcessInfo.processInfo.environment
        let graph = try ModelGraph.load(directory: try #require(environment["CONVLAB_MODEL_DIR"]))
        let x = try NumpyArray.read(contentsOf: try #require(environment["CONVLAB_MODEL_INPUT"])).float32Tensor()
        let expected = try #require(environment["CONVLAB_MODEL_TOP5"]).split(separator: ",").map { Int($0)! }
        let inference = try ModelInference(graph: graph, batch: x.shape[0])
        let report = try InferenceReport.measure(inference, input: x, top: 5, repeats: 1).report
        #expect(report.top.map(\.classIndex) == expected)
        #expect(report.referenceTop.map(\.classIndex) == expected)
        let relative = try #require(report.relativeLogitError)
        #expect(relative < 1e-4)
    }
}
