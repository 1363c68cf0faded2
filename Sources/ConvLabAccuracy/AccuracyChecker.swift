import ConvLabBackends
import ConvLabCore

/// Compares backends against the float64 reference (`ReferenceConvolution`).
///
/// Normalisation (`ErrorNormalisation`): output i of image n, channel k is divided by max(Σ|w|·|x| of that output,
/// `scaleFloor` · local),
/// scaleFloor = 1/4, local = the larger of the channel's typical scale Σ|w_k| · rms(x)
/// (`ReferenceResult.typicalMagnitude`) and the largest Σ|w|·|x| among outputs within `neighbourhoodRadius` rows and
/// columns. Without the floor, methods whose rounding error is spread over a tile — the FFT over its transform,
/// Winograd over an m×m output tile, Strassen over output channels — would be judged by a division by ~0 at outputs
/// whose window lies in the padding or holds only zeros (post-ReLU data) while their tile-mates are large. Direct
/// methods are unaffected: their error is at most γₙ·Σ|w|·|x| of the output itself, below γₙ times any larger
/// denominator; and a wrong value is still caught, because bugs err by O(1) of the scale, not by 10⁻⁶ of it.
///
/// NaN and Inf: a reference output that is NaN must be NaN in the result and vice versa, likewise ±Inf; such outputs
/// are counted as mismatches (which fail the check) and are otherwise left out of the error statistics, as are
/// outputs whose scale Σ|w|·|x| is infinite. An output with zero scale has an exact reference of 0 and must be 0.
public enum AccuracyChecker {
    /// Measures `output` against `reference` for a backend whose declared bound is `errorBound`, run under the
    /// accuracy `ceiling` (a bound above it makes the verdict `unbounded`, never `pass`).
    public static func compare(output: Tensor<Float>, reference: ReferenceResult, errorBound: Double,
                               ceiling: Double = AccuracyCeiling.defaultCeiling, typicalError: Double? = nil) throws
        -> AccuracyReport {
        guard output.shape == reference.output.shape else {
            throw ConvLabError.shapeMismatch(what: "output compared with the reference",
                                             expected: "\(reference.output.shape)", actual: "\(output.shape)")
        }
        var report = AccuracyReport(errorBound: errorBound, typicalError: typicalError, ceiling: ceiling)
        let typical = reference.typicalMagnitude?.scalars
        let planeSize = output.shape.count == 4 ? output.shape[2] * output.shape[3] : output.count
        let neighbourhood = output.shape.count == 4
            ? neighbourhoodMaximum(reference.magnitude.scalars, planes: output.count / max(planeSize, 1),
                                   height: output.shape[2], width: output.shape[3], radius: neighbourhoodRadius)
            : reference.magnitude.scalars
        var sumRelative = 0.0
        var sumSquares = 0.0
        output.withUnsafeBufferPointer { y in
            reference.output.withUnsafeBufferPointer { ref in
                reference.magnitude.withUnsafeBufferPointer { scale in
                    for i in 0..<y.count {
                        let value = Double(y[i])
                        let exact = ref[i]
                        if exact.isNaN || value.isNaN {
                            if exact.isNaN != value.isNaN { report.nanMismatches += 1 }
                            continue
                        }
                        if exact.isInfinite || value.isInfinite {
                            // A finite exact value can overflow float32 legitimately only if |exact| ≥ max float.
                            let roundedExact = Double(Float(exact))
                            if roundedExact != value { report.infinityMismatches += 1 }
                            continue
                        }
                        if !scale[i].isFinite { continue }
                        let absolute = abs(value - exact)
                        let channelScale = typical.map { $0[min(i / planeSize, $0.count - 1)] } ?? 0
                        let denominator = ErrorNormalisation.denominator(
                            scale: scale[i], typical: channelScale,
                            neighbourhood: neighbourhood[i].isFinite ? neighbourhood[i] : 0)
                        let relative = denominator > 0 ? absolute / denominator : (absolute == 0 ? 0 : .infinity)
                        report.maxAbsoluteError = max(report.maxAbsoluteError, absolute)
                        report.maxRelativeError = max(report.maxRelativeError, relative)
                        report.maxULPDistance = max(report.maxULPDistance, ulpDistance(y[i], Float(exact)))
                        sumRelative += relative
                        sumSquares += relative * relative
                        report.comparedCount += 1
                    }
                }
            }
        }
        if report.comparedCount > 0 {
            report.meanRelativeError = sumRelative / Double(report.comparedCount)
            report.rmsRelativeError = (sumSquares / Double(report.comparedCount)).squareRoot()
        }
        return report
    }

    /// Fraction of the local scale below which outputs are normalised by the floor (see `ErrorNormalisation`).
    public static var scaleFloor: Double { ErrorNormalisation.scaleFloor }
    /// Rows and columns around an output whose scales count as its neighbourhood: enough to span the output tiles of
    /// the selectable Winograd variants (up to F(6,3)'s 6 wide) and F(8,3). Larger tiles forced with
    /// `--winograd-tile` (up to 14) reach past it; there the floor falls back to the channel's typical scale.
    public static let neighbourhoodRadius = 8

    /// For each element of `planes` H×W planes, the maximum within ±`radius` rows and columns (separable: rows, then
    /// columns), O(H·W·radius) per plane.
    static func neighbourhoodMaximum(_ values: [Double], planes: Int, height: Int, width: Int, radius: Int) -> [Double] {
        var rowMax = [Double](repeating: 0, count: values.count)
        var result = [Double](repeating: 0, count: values.count)
        for p in 0..<planes {
            let base = p * height * width
            for r in 0..<height {
                for c in 0..<width {
                    var m = 0.0
                    for cc in max(0, c - radius)...min(width - 1, c + radius) { m = max(m, values[base + r * width + cc]) }
                    rowMax[base + r * width + c] = m
                }
            }
            for r in 0..<height {
                for c in 0..<width {
                    var m = 0.0
                    for rr in max(0, r - radius)...min(height - 1, r + radius) { m = max(m, rowMax[base + rr * width + c]) }
                    result[base + r * width + c] = m
                }
            }
        }
        return result
    }

    /// Runs `plan` on `input` and compares it with the reference for (input, weights).
    public static func check(plan: any ConvolutionPlan, input: Tensor<Float>, reference: ReferenceResult,
                             ceiling: Double = AccuracyCeiling.defaultCeiling) throws
        -> (output: Tensor<Float>, report: AccuracyReport) {
        let output = try plan(input)
        return (output, try compare(output: output, reference: reference, errorBound: plan.expectedErrorBound,
                                    ceiling: ceiling, typicalError: plan.summary.typicalError))
    }

    /// Seeded end-to-end check: random input and weights (uniform in [−1, 1) unless given), reference, plan, compare.
    public static func check(backend: any Convolution, descriptor: ConvolutionDescriptor, seed: UInt64,
                             distribution: Distribution = .uniform(low: -1, high: 1),
                             options: PlanOptions = PlanOptions()) throws -> AccuracyReport {
        let input = try Tensor<Float>.random(shape: descriptor.inputShape, distribution: distribution, seed: seed)
        let weights = try Tensor<Float>.random(shape: descriptor.weightShape, distribution: distribution,
                                               seed: seed &+ 0x5EED)
        let reference = try ReferenceConvolution.compute(descriptor: descriptor, input: input, weights: weights,
                                                         threads: options.threads)
        let plan = try backend.makePlan(descriptor: descriptor, weights: weights, options: options)
        return try check(plan: plan, input: input, reference: reference, ceiling: options.accuracy.ceiling).report
    }
}

extension AccuracyChecker {
    /// Seeded end-to-end check of any pass: random x, w and dy (uniform in [−1, 1) unless given), the float64
    /// reference of that pass, the backend's plan for it, its output pre-filled with NaN (an element the plan forgets
    /// to write fails the check), compare.
    public static func check(backend: any Convolution, pass: ConvolutionPass, descriptor d: ConvolutionDescriptor,
                             seed: UInt64, distribution: Distribution = .uniform(low: -1, high: 1),
                             options: PlanOptions = PlanOptions()) throws -> AccuracyReport {
        if pass == .forward {
            return try check(backend: backend, descriptor: d, seed: seed, distribution: distribution, options: options)
        }
        let x = try Tensor<Float>.random(shape: d.inputShape, distribution: distribution, seed: seed)
        let w = try Tensor<Float>.random(shape: d.weightShape, distribution: distribution, seed: seed &+ 0x5EED)
        let dy = try Tensor<Float>.random(shape: d.outputShape, distribution: distribution, seed: seed &+ 0xD1)
        let input = pass == .backwardData ? dy : x
        let reference = try ReferenceConvolution.compute(pass, descriptor: d, input: input, weights: w, gradOutput: dy,
                                                         threads: options.threads)
        let plan = try backend.makePlan(pass: pass, descriptor: d, weights: w, options: options)
        var output = try Tensor<Float>(shape: d.shapes(for: pass).output)
        output.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
        try input.withUnsafeBufferPointer { a in
            try dy.withUnsafeBufferPointer { g in
                try output.withUnsafeMutableBufferPointer { y in
                    try plan.execute(PassOperands(input: a, gradOutput: pass == .backwardWeights ? g
                                                      : UnsafeBufferPointer(start: nil, count: 0), output: y),
                                     workspace: workspace.buffer, profile: nil)
                }
            }
        }
        return try compare(output: output, reference: reference, errorBound: plan.summary.errorBound,
                           ceiling: options.accuracy.ceiling, typicalError: plan.summary.typicalError)
    }
}

/// Distance between two finite floats in units in the last place: how many representable float32 values lie
/// between them (0 when equal, +0 and −0 are equal).
public func ulpDistance(_ a: Float, _ b: Float) -> UInt64 {
    func ordered(_ x: Float) -> Int64 {
        let bits = Int64(x.bitPattern)
        return bits & 0x8000_0000 != 0 ? -(bits & 0x7FFF_FFFF) : bits
    }
    return UInt64((ordered(a) - ordered(b)).magnitude)
}
