import ConvLabCore

/// Chooses the tile size of `fft-tiled` by predicted time, from quantities measured on this machine.
///
/// NNPACK picks 8×8 over 16×16 when tiles₈ ≤ 4·tiles₁₆, a rule that counts tiles but not what a tile costs. Here a
/// tile size T costs
///     N·tiles·(C + K)·t(T)                              forward and inverse transforms (t measured per size),
///   + G·bins·K·(C/G)·N·tiles / rate                     per-bin complex multiply-adds (rate measured once),
///   + spectra bytes written and read / bandwidth          scatter/gather of planar spectra,
///   + filter spectra bytes / bandwidth                    streamed once per execution (slower once past L3),
/// and the smallest predicted time wins. Larger tiles waste less overlap (T − extent + 1 useful rows of T) but do
/// more work per output in the transforms and need more filter spectra; the model weighs exactly that.
package enum FFTTileCostModel {
    package static let candidateSizes = [8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256]

    /// Bytes per second for streaming spectra that fit in cache, and for those that do not.
    static let cachedBandwidth = 60e9
    static let memoryBandwidth = 20e9
    static let lastLevelCacheBytes = 24 * 1024 * 1024

    static func bestTile(for d: ConvolutionDescriptor, product: ComplexProduct, threads: Int) throws -> Int {
        let extent = max(d.kernelExtentHeight, d.kernelExtentWidth)
        let denseHeight = (d.outputHeight - 1) * d.strideHeight + 1
        let denseWidth = (d.outputWidth - 1) * d.strideWidth + 1
        let whole = max(denseHeight + d.kernelExtentHeight - 1, denseWidth + d.kernelExtentWidth - 1)
        var best: (size: Int, seconds: Double)?
        for size in candidateSizes where size > extent {
            let seconds = try predictedSeconds(descriptor: d, tileSize: size, product: product)
            if best == nil || seconds < best!.seconds { best = (size, seconds) }
            if size >= whole { break }  // one tile already covers the image; larger tiles only add work
        }
        if let best { return best.size }
        // Kernel larger than every candidate: one tile per image at a fast size.
        return FFTSizes.candidates(atLeast: max(whole, extent + 1), count: 1)[0]
    }

    static func predictedSeconds(descriptor d: ConvolutionDescriptor, tileSize: Int, product: ComplexProduct) throws
        -> Double {
        let tiling = FFTTiling(descriptor: d, transformHeight: tileSize, transformWidth: tileSize)
        let columns = Double(d.batch * tiling.tilesPerImage)
        let rows = SpectralProduct.blockRows(outputChannelsPerGroup: d.outputChannelsPerGroup)
        let paddedK = Double((d.outputChannelsPerGroup + rows - 1) / rows * rows * d.groups)
        let transforms = columns * Double(d.inputChannels + d.outputChannels)
            * (try FFTSizes.roundTripSeconds(height: tileSize, width: tileSize)) / 2
        let multiplyAdds = Double(tiling.paddedBins) * paddedK * Double(d.channelsPerGroup) * columns
        let products = multiplyAdds / (try productRate(product))
        let spectraBytes = 2 * Double(product.planes) * Double(tiling.paddedBins) * 4
            * columns * Double(d.inputChannels + d.outputChannels)
        let filterBytes = Double(product.planes) * Double(tiling.paddedBins) * paddedK * Double(d.channelsPerGroup) * 4
        let filterBandwidth = filterBytes > Double(lastLevelCacheBytes) ? memoryBandwidth : cachedBandwidth
        return transforms + products + spectraBytes / cachedBandwidth + filterBytes / filterBandwidth
    }

    private static let measuredRates = Locked<[ComplexProduct: Double]>([:])

    /// Complex multiply-adds per second of one thread's `SpectralProduct` on a cache-resident block.
    static func productRate(_ form: ComplexProduct) throws -> Double {
        if let rate = measuredRates.withLock({ $0[form] }) { return rate }
        let (binBlocks, kBlocks, channels, columns) = (4, 8, 32, 16)
        let wPlane = binBlocks * kBlocks * 4 * channels * 16
        let xPlane = binBlocks * channels * columns * 16
        let yPlane = binBlocks * kBlocks * 4 * columns * 16
        let w = [Float](repeating: 0.01, count: form.planes * wPlane)
        let x = [Float](repeating: 0.5, count: form.planes * xPlane)
        var y = [Float](repeating: 0, count: 2 * yPlane + 16)
        let multiplyAdds = Double(binBlocks * 16 * kBlocks * 4 * channels * columns)
        // Arrays are not guaranteed 64-byte aligned, so copy into aligned storage first.
        let wStorage = AlignedStorage<Float>(count: w.count), xStorage = AlignedStorage<Float>(count: x.count)
        let yStorage = AlignedStorage<Float>(count: y.count)
        wStorage.pointer.update(from: w, count: w.count)
        xStorage.pointer.update(from: x, count: x.count)
        var best = Double.infinity
        for _ in 0..<5 {
            let start = MonotonicClock.now()
            for block in 0..<binBlocks {
                SpectralProduct.multiply(form: form, rows: 4, w: wStorage.pointer + block * kBlocks * 4 * channels * 16,
                                         wPlaneStride: wPlane, x: xStorage.pointer + block * channels * columns * 16,
                                         xPlaneStride: xPlane, y: yStorage.pointer + block * kBlocks * 4 * columns * 16,
                                         yPlaneStride: yPlane, kBlocks: kBlocks, channels: channels, columns: columns)
            }
            best = min(best, MonotonicClock.now() - start)
        }
        y[0] = yStorage.pointer[0]  // keep the result observable
        let rate = multiplyAdds / best
        measuredRates.withLock { $0[form] = rate }
        return rate
    }
}
