import ConvLabCore
import Foundation

/// The JSON graph of a trained model directory (written by `scripts/fetch-models.sh`, format "convlab-model" 1):
/// nodes in execution order, each naming its inputs (earlier nodes or the model input) and its tensors (.npy files
/// beside the manifest). Batch norm is already folded into the convolutions, so a model is convolutions with biases,
/// activations, residual adds, concatenations, pooling and a linear classifier.
public struct ModelManifest: Codable, Sendable {
    public var format: String
    public var version: Int
    public var name: String
    public var input: Input
    public var output: String
    public var nodes: [Node]
    /// A text file with one class name per line, in class order.
    public var labels: String?
    public var source: String?
    public var licence: String?

    public struct Input: Codable, Sendable {
        public var name: String
        /// C, H, W of one image; the batch is the input file's.
        public var shape: [Int]
    }

    public enum Operation: String, Codable, Sendable, CaseIterable {
        case conv, linear, add, concat
        case maxPool = "max_pool", averagePool = "average_pool", globalAveragePool = "global_average_pool"
    }

    public enum Activation: String, Codable, Sendable {
        case relu, relu6
    }

    public struct Node: Codable, Sendable {
        public var name: String
        public var op: Operation
        public var inputs: [String]
        public var activation: Activation?
        public var weight: String?
        public var bias: String?
        /// [h, w] (conv, pools).
        public var stride: [Int]?
        /// [top, bottom, left, right] (conv, pools).
        public var padding: [Int]?
        public var dilation: [Int]?
        public var groups: Int?
        /// [h, w] (pools).
        public var kernel: [Int]?
    }

    public static let formatName = "convlab-model"
    public static let supportedVersion = 1
    /// A manifest is a few hundred nodes; anything far larger is not one.
    public static let maxManifestBytes = 16 << 20

    /// Reads and decodes `directory/manifest.json`; a malformed file is `.invalidFile` naming the field.
    public static func read(directory: String) throws -> ModelManifest {
        let path = (directory as NSString).appendingPathComponent("manifest.json")
        let data = try FileInput.data(at: path, limit: maxManifestBytes, what: "the model manifest")
        let manifest: ModelManifest
        do {
            manifest = try JSONDecoder().decode(ModelManifest.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw ConvLabError.invalidFile(path: path, reason: "missing field '\(Self.path(context, key))'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw ConvLabError.invalidFile(path: path, reason: "field '\(Self.path(context))' has the wrong type")
        } catch let DecodingError.dataCorrupted(context) {
            throw ConvLabError.invalidFile(path: path, reason: context.codingPath.isEmpty ? "not valid JSON"
                                           : "field '\(Self.path(context))': \(context.debugDescription)")
        } catch {
            throw ConvLabError.invalidFile(path: path, reason: "not a model manifest: \(error)")
        }
        guard manifest.format == formatName else {
            throw ConvLabError.invalidFile(path: path, reason: "format '\(manifest.format)' is not '\(formatName)'")
        }
        guard manifest.version == supportedVersion else {
            throw ConvLabError.invalidFile(path: path, reason: "version \(manifest.version) is not supported "
                                           + "(this convlab reads version \(supportedVersion))")
        }
        return manifest
    }

    private static func path(_ context: DecodingError.Context, _ key: CodingKey? = nil) -> String {
        (context.codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }
}
