import ArgumentParser
import ConvLab
import Foundation

/// `convlab transforms`: Winograd matrices generated from interpolation points, and a search for better points.
struct Transforms: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the Winograd F(m, r) matrices Aᵀ, G, Bᵀ generated from interpolation points, or search points.",
        discussion: """
        The matrices are built in exact rational arithmetic (Cook–Toom, as wincnn does) and verified exactly before \
        printing. --search ranks candidate point sets by measured float32 error (2-D tiles, channel accumulation) and \
        checks the best against the default through the Winograd backend on a real layer.
        """)

    @Option(help: "Output tile size m.")
    var m = 4

    @Option(help: "Filter size r.")
    var r = 3

    @Option(help: "Comma-separated finite points, e.g. \"0,1,-1,1/2,-1/2\" (m + r − 2 of them; default: built-in set).")
    var points: String?

    @Option(help: "Which matrix carries the fractions: G, A or B.")
    var fractions = "G"

    @Flag(help: "Rank candidate point sets by measured float32 error.")
    var search = false

    @Option(help: "With --search: how many ranked sets to print.")
    var top = 8

    @Option(help: "Output format: text or json.")
    var format: TransformFormat = .text

    enum TransformFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

    func run() throws {
        try Validation.integer(m, "m", in: 1...16)
        try Validation.integer(r, "r", in: 1...16)
        try Validation.integer(top, "top", in: 1...10_000)
        guard let placement = WinogradTransform.FractionPlacement(rawValue: fractions.uppercased()) else {
            throw ConvLabError.unknownName(kind: "fraction placement", name: fractions, known: ["G", "A", "B"])
        }
        if search {
            try runSearch(placement)
            return
        }
        let parsed = try points.map { try $0.split(separator: ",").map { try Rational(parsing: String($0)) } }
        let t = try WinogradTransform(outputSize: m, kernelSize: r, points: parsed, fractions: placement)
        let verified = try t.verify()
        let counts = t.multiplications2D
        switch format {
        case .json:
            func decimals(_ matrix: [[Rational]]) -> [[Double]] { matrix.map { $0.map(\.doubleValue) } }
            let report = TransformReport(m: m, r: r, points: t.points.map(\.doubleValue),
                                         pointsExact: t.points.map(\.description), fractions: placement.rawValue,
                                         AT: decimals(t.AT), G: decimals(t.G), BT: decimals(t.BT), verified: verified,
                                         multiplications: .init(winograd: counts.winograd, direct: counts.direct),
                                         errorGrowth1D: t.errorGrowth)
            print(report.json)
        case .text:
            print("Winograd F(\(m),\(r)): tile n = \(t.tileSize), points [\(t.points.map(\.description).joined(separator: ", ")), ∞], "
                  + "fractions in \(placement.rawValue)")
            for (name, matrix) in [("AT", t.AT), ("G", t.G), ("BT", t.BT)] {
                print("\n\(name) (\(matrix.count)x\(matrix[0].count)):")
                print(render(matrix))
            }
            print("\nexact identity AT[(G g) ⊙ (BT d)] = correlation(d, g): \(verified ? "verified" : "FAILED")")
            print("multiplications per 2-D tile: \(counts.winograd) vs \(counts.direct) direct "
                  + "(\(String(format: "%.2f", Double(counts.direct) / Double(counts.winograd)))x fewer); "
                  + "per 1-D tile: \(t.tileSize) vs \(m * r)")
            print("error growth (1-D, vs direct): \(String(format: "%.2f", t.errorGrowth))")
        }
        if !verified {
            throw ConvLabError.invalidArgument(name: "points", reason: "the generated transforms failed verification")
        }
    }

    private func render(_ matrix: [[Rational]]) -> String {
        let cells = matrix.map { $0.map(\.description) }
        let width = cells.flatMap { $0 }.map(\.count).max() ?? 1
        return cells.map { row in
            "  [" + row.map { String(repeating: " ", count: width - $0.count) + $0 }.joined(separator: " ") + "]"
        }.joined(separator: "\n")
    }

    private func runSearch(_ placement: WinogradTransform.FractionPlacement) throws {
        let ranked = try WinogradPointSearch.search(outputSize: m, kernelSize: r, fractions: placement)
        let defaults = try WinogradTransform(outputSize: m, kernelSize: r, fractions: placement)
        let baseline = WinogradPointSearch.measureError(defaults, channels: 32, tiles: 256, seed: 1)
        var table = TextTable(header: ["rank", "points", "mean rel err", "max rel err", "vs default (mean)"])
        for (index, candidate) in ranked.prefix(max(top, 1)).enumerated() {
            table.add(["\(index + 1)", candidate.points.map(\.description).joined(separator: ","),
                       Format.error(candidate.meanRelativeError), Format.error(candidate.maxRelativeError),
                       String(format: "%.2fx", baseline.mean / candidate.meanRelativeError)])
        }
        print("F(\(m),\(r)) point search: \(ranked.count) candidate sets, float32 2-D tiles, 32 channels, fractions in "
              + "\(placement.rawValue)")
        print("default [\(defaults.points.map(\.description).joined(separator: ","))]: mean \(Format.error(baseline.mean)), "
              + "max \(Format.error(baseline.max))\n")
        print(table.render())
        guard let best = ranked.first else { return }
        // End to end through the backend: a 64-channel 3-layer-like shape, Gaussian data.
        let d = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 32, inputWidth: 32, outputChannels: 64,
                                          kernelHeight: r, kernelWidth: r, padding: .same)
        let records = try AccuracyStudy.run(
            descriptor: d, backends: [WinogradBackend(outputTile: m, fractions: placement),
                                      WinogradBackend(outputTile: m, points: best.points, fractions: placement)],
            distributions: [.normal(mean: 0, standardDeviation: 1)], seeds: 3)
        if records.count == 2 {
            print("\nthrough the backend (64→64 channels, 32×32, normal data, 3 seeds): default mean "
                  + "\(Format.error(records[0].meanRelativeError)) max \(Format.error(records[0].maxRelativeError)); "
                  + "best mean \(Format.error(records[1].meanRelativeError)) max \(Format.error(records[1].maxRelativeError))"
                  + " (\(String(format: "%.2fx", records[0].meanRelativeError / records[1].meanRelativeError)) lower mean)")
        }
    }
}

struct TransformReport: Codable {
    struct Counts: Codable {
        var winograd: Int
        var direct: Int
    }

    var m: Int
    var r: Int
    var points: [Double]
    var pointsExact: [String]
    var fractions: String
    var AT: [[Double]]
    var G: [[Double]]
    var BT: [[Double]]
    var verified: Bool
    var multiplications: Counts
    var errorGrowth1D: Double

    /// Compact JSON with keys in a fixed order: {"m":4,"r":3,"points":[...],"AT":[[...]],"G":[[...]],"BT":[[...]],...}.
    var json: String {
        func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
        func vector(_ v: [Double]) -> String { "[" + v.map(number).joined(separator: ",") + "]" }
        func matrix(_ m: [[Double]]) -> String { "[" + m.map(vector).joined(separator: ",") + "]" }
        let exact = "[" + pointsExact.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        return "{\"m\":\(m),\"r\":\(r),\"points\":\(vector(points)),\"AT\":\(matrix(AT)),\"G\":\(matrix(G)),"
            + "\"BT\":\(matrix(BT)),\"pointsExact\":\(exact),\"fractions\":\"\(fractions)\",\"verified\":\(verified),"
            + "\"multiplications\":{\"winograd\":\(multiplications.winograd),\"direct\":\(multiplications.direct)},"
            + "\"errorGrowth1D\":\(errorGrowth1D)}"
    }
}
