import ConvLabCore
import Foundation

/// A network's layers as a benchmark suite (the columns of `shared/bench/suite.csv` plus dilation), so a whole
/// network can go through `bench`, `tune`, `select --evaluate` and `shared/anchors/run_onednn.sh`.
public enum NetworkSuite {
    public static let header = "name,N,C,H,W,K,R,S,stride,pad,groups,dilation"

    /// One suite line per layer; pairs are written `h x w` (`2x1`) only where the two differ, asymmetric padding as
    /// `t x b x l x r`.
    public static func line(_ layer: NetworkLayer) -> String { fields(layer).joined(separator: ",") }

    /// The suite columns of one layer, in `header` order.
    public static func fields(_ layer: NetworkLayer) -> [String] {
        let d = layer.descriptor
        func pair(_ h: Int, _ w: Int) -> String { h == w ? "\(h)" : "\(h)x\(w)" }
        let p = d.padding
        let pad = p.top == p.bottom && p.top == p.left && p.top == p.right ? "\(p.top)"
            : "\(p.top)x\(p.bottom)x\(p.left)x\(p.right)"
        return [layer.name, "\(d.batch)", "\(d.inputChannels)", "\(d.inputHeight)", "\(d.inputWidth)",
                "\(d.outputChannels)", "\(d.kernelHeight)", "\(d.kernelWidth)", pair(d.strideHeight, d.strideWidth),
                pad, "\(d.groups)", pair(d.dilationHeight, d.dilationWidth)]
    }

    public static func text(_ layers: [NetworkLayer]) -> String {
        ([header] + layers.map(line)).joined(separator: "\n") + "\n"
    }

    public static func write(_ layers: [NetworkLayer], to path: String) throws {
        do {
            try text(layers).write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw ConvLabError.invalidFile(path: path, reason: "cannot write the suite: \(error.localizedDescription)")
        }
    }
}
