import ConvLab
import Testing

/// Every fast backend against the float64 reference on many seeded random shapes.
@Suite struct BackendAgreementTests {
    static let descriptors = RandomDescriptors.make(count: 240, seed: 20261124)

    @Test(arguments: ["im2col", "direct"])
    func agreesWithReferenceOnRandomShapes(backendName: String) throws {
        let backend = try BackendRegistry.backend(named: backendName)
        var checked = 0
        for (index, descriptor) in Self.descriptors.enumerated() where backend.support(for: descriptor).isSupported {
            let report = try AccuracyChecker.check(backend: backend, descriptor: descriptor, seed: UInt64(index),
                                                   options: PlanOptions(threads: 2))
            #expect(report.passed, "\(backendName) on \(descriptor): \(report)")
            #expect(report.comparedCount == descriptor.outputCount)
            checked += 1
        }
        #expect(checked >= 200)
    }
}
