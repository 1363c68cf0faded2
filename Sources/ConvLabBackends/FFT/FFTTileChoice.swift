import ConvLabCore

/// Chooses the tile size of `fft-tiled` by predicted time.
///
/// NNPACK picks 8×8 over 16×16 when tiles₈ ≤ 4·tiles₁₆, a rule that counts tiles but not what a tile costs. Here a
/// tile size T costs
///     N·tiles·(C + K)·(t(T) + o)                        forward and inverse transforms, o the per-tile copy, scatter
///                                                       and gather around each,
///   + G·bins·K·(C/G)·N·tiles / rate                     per-bin complex multiply-adds,
///   + filter spectra bytes / bandwidth                    streamed once per execution (slower past the last cache),
/// and the smallest predicted time wins. Larger tiles waste less overlap (T − extent + 1 useful rows of T) but do
/// more work per output in the transforms and need more filter spectra; the model weighs exactly that.
///
/// t(T) and the product rate are fixed numbers under the default `estimate` effort — `roundTripNanosecondsPerPoint`
/// and `estimatedProductRate` — so the choice never depends on a timing and is the same on every run; under
/// `measure` and `patient` they are measured on this machine once per process. o, the rate and the bandwidth were
/// fitted (least squares, relative error) to 45 forced-tile runs of eight layers on the Intel machine at 2 threads
/// (64→64 at 64² with 7×7, 9×9, 13×13; a 1024² image with 15×15; 128→128 at 28² with 7×7; 256→256 at 56² with 3×3;
/// AlexNet's 96→256 5×5 and 11×11/4 stem): the estimated choice is the fastest tile on seven and within 11% on the
/// eighth (64→64 13×13 at 64²: one 80×80 tile, 5.9 ms, against 32×32 tiles, 5.3 ms).
enum FFTTileChoice {
    static let candidateSizes = [8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256]

    /// Bytes per second for streaming the filter spectra, from cache and, past the last cache level, from memory.
    static let cachedBandwidth = 60e9
    static let memoryBandwidth = 20e9
    /// Seconds per transform spent around it: copying the tile in or out, scattering or gathering its spectrum.
    static let perTransformOverhead = 70e-9

    /// FFTW's estimate-mode round trip (r2c + c2r) per point of a T×T tile, in nanoseconds, measured once on the
    /// Intel machine (min of three runs; Debian's FFTW 3.3.10, the same build on every machine of the project). Sizes
    /// with hard-coded codelets run 2–3× faster per point than their neighbours (32: 3.3 ns, 40: 10.1, 48: 6.6,
    /// 64: 3.9), which no count of radix passes predicts — so the tile candidates carry their measured cost instead
    /// of a formula. Only ratios matter: to each other, to `estimatedProductRate` and to the bandwidths.
    static let roundTripNanosecondsPerPoint: [Int: Double] = [
        8: 2.29, 12: 2.36, 16: 3.28, 20: 3.02, 24: 6.24, 32: 3.32, 40: 10.08, 48: 6.60, 64: 3.86, 80: 4.17, 96: 7.63,
        128: 4.47, 160: 4.65, 192: 5.42, 256: 4.94,
    ]

    /// Seconds per unit of `FFTSizes.estimatedCost`, for tile sizes outside the table (`--fft-tile`).
    static let secondsPerCostUnit = 1.2e-10
    /// Complex multiply-adds per second of one thread's `SpectralProduct` relative to the table: fitted on the
    /// forced-tile runs (a cache-resident product alone measured 1.7e10 for 4m, 1.6e10 for 3m).
    static let estimatedProductRate = 2.0e10

    static func bestTile(for d: ConvolutionDescriptor, product: ComplexProduct, effort: FFTPlanningEffort) throws -> Int {
        let extent = max(d.kernelExtentHeight, d.kernelExtentWidth)
        let denseHeight = (d.outputHeight - 1) * d.strideHeight + 1
        let denseWidth = (d.outputWidth - 1) * d.strideWidth + 1
        let whole = max(denseHeight + d.kernelExtentHeight - 1, denseWidth + d.kernelExtentWidth - 1)
        var best: (size: Int, seconds: Double)?
        for size in candidateSizes where size > extent {
            let seconds = try predictedSeconds(descriptor: d, tileSize: size, product: product, effort: effort)
            if best == nil || seconds < best!.seconds { best = (size, seconds) }
            if size >= whole { break }  // one tile already covers the image; larger tiles only add work
        }
        if let best { return best.size }
        // Kernel larger than every candidate: one tile per image at a fast size.
        return FFTSizes.candidates(atLeast: max(whole, extent + 1), count: 1)[0]
    }

    static func predictedSeconds(descriptor d: ConvolutionDescriptor, tileSize: Int, product: ComplexProduct,
                                 effort: FFTPlanningEffort) throws -> Double {
        let tiling = FFTTiling(descriptor: d, transformHeight: tileSize, transformWidth: tileSize)
        let columns = Double(d.batch) * Double(tiling.tilesPerImage)
        let rows = SpectralProduct.blockRows(outputChannelsPerGroup: d.outputChannelsPerGroup)
        let paddedK = Double((d.outputChannelsPerGroup + rows - 1) / rows * rows * d.groups)
        let transformSeconds = effort == .estimate
            ? estimatedTransformSeconds(tileSize)
            : try FFTSizes.roundTripSeconds(height: tileSize, width: tileSize) / 2
        let transforms = columns * Double(d.inputChannels + d.outputChannels) * (transformSeconds + perTransformOverhead)
        let multiplyAdds = Double(tiling.paddedBins) * paddedK * Double(d.channelsPerGroup) * columns
        let products = multiplyAdds / (effort == .estimate ? estimatedProductRate : try productRate(product))
        let filterBytes = Double(product.planes) * Double(tiling.paddedBins) * paddedK * Double(d.channelsPerGroup) * 4
        let bandwidth = filterBytes > Double(MachineCaches.current.lastLevelBytes) ? memoryBandwidth : cachedBandwidth
        return transforms + products + filterBytes / bandwidth
    }

    /// One transform of a T×T tile under `estimate`: the table where it has T, else the formula.
    static func estimatedTransformSeconds(_ t: Int) -> Double {
        if let perPoint = roundTripNanosecondsPerPoint[t] { return Double(t * t) * perPoint * 1e-9 / 2 }
        return FFTSizes.estimatedCost(height: t, width: t) * secondsPerCostUnit
    }

    private static let measuredRates = Locked<[ComplexProduct: Double]>([:])

    /// Complex multiply-adds per second of one thread's `SpectralProduct` on a cache-resident block (measured once).
    static func productRate(_ form: ComplexProduct) throws -> Double {
        if let rate = measuredRates.withLock({ $0[form] }) { return rate }
        let (binBlocks, kBlocks, channels, columns) = (4, 8, 32, 16)
        let wPlane = binBlocks * kBlocks * 4 * channels * 16
        let xPlane = binBlocks * channels * columns * 16
        let yPlane = binBlocks * kBlocks * 4 * columns * 16
        let multiplyAdds = Double(binBlocks * 16 * kBlocks * 4 * channels * columns)
        let w = AlignedStorage<Float>(count: form.planes * wPlane), x = AlignedStorage<Float>(count: form.planes * xPlane)
        let y = AlignedStorage<Float>(count: 2 * yPlane + 16)
        w.pointer.update(repeating: 0.01, count: form.planes * wPlane)
        x.pointer.update(repeating: 0.5, count: form.planes * xPlane)
        FFTSizes.timedMeasurements.add(1, ordering: .relaxed)
        var best = Double.infinity
        for _ in 0..<5 {
            let start = MonotonicClock.now()
            for block in 0..<binBlocks {
                SpectralProduct.multiply(form: form, rows: 4, w: w.pointer + block * kBlocks * 4 * channels * 16,
                                         wPlaneStride: wPlane, x: x.pointer + block * channels * columns * 16,
                                         xPlaneStride: xPlane, y: y.pointer + block * kBlocks * 4 * columns * 16,
                                         yPlaneStride: yPlane, kBlocks: kBlocks, channels: channels, columns: columns)
            }
            best = min(best, MonotonicClock.now() - start)
        }
        let rate = multiplyAdds / best
        measuredRates.withLock { $0[form] = rate }
        return rate
    }
}
