import ConvLabCore

/// Moves spectra between FFTW's interleaved layout (re, im pairs, bins contiguous) and the blocked planar layout of
/// `SpectralProduct` (M[plane][binBlock][entry][16]), choosing the planes each product form reads.
enum SpectrumPlanes {
    /// (re, im): the 4-multiplication form, and the output spectra of both forms.
    case realImaginary
    /// (re + im, im, re): Gauss input planes.
    case gaussInput
    /// (re, re + im, im − re): Gauss filter planes.
    case gaussFilter

    /// Writes the interleaved spectrum of one transform (with `binBlocks·16` bins; bins past the transform's own are
    /// don't-care) to entry `entry` of the blocked planes. `conjugate` negates the imaginary parts first.
    static func scatter(_ spectrum: UnsafePointer<Float>, as layout: SpectrumPlanes, conjugate: Bool, binBlocks: Int,
                        into matrix: UnsafeMutablePointer<Float>, planeStride: Int, entry: Int, entriesPerBlock: Int) {
        for block in 0..<binBlocks {
            let (low, high) = (loadVector(spectrum + block * 32), loadVector(spectrum + block * 32 + 16))
            let re = evenLanes(low, high)
            let im = conjugate ? -oddLanes(low, high) : oddLanes(low, high)
            let target = matrix + (block * entriesPerBlock + entry) * 16
            switch layout {
            case .realImaginary:
                SpectralProduct.store(re, target)
                SpectralProduct.store(im, target + planeStride)
            case .gaussInput:
                SpectralProduct.store(re + im, target)
                SpectralProduct.store(im, target + planeStride)
                SpectralProduct.store(re, target + 2 * planeStride)
            case .gaussFilter:
                SpectralProduct.store(re, target)
                SpectralProduct.store(re + im, target + planeStride)
                SpectralProduct.store(im - re, target + 2 * planeStride)
            }
        }
    }

    /// Reads entry `entry` of blocked (re, im) planes back into an interleaved spectrum for FFTW.
    static func gather(from matrix: UnsafePointer<Float>, planeStride: Int, entry: Int, entriesPerBlock: Int,
                       binBlocks: Int, into spectrum: UnsafeMutablePointer<Float>) {
        for block in 0..<binBlocks {
            let source = matrix + (block * entriesPerBlock + entry) * 16
            let re = SpectralProduct.load(source)
            let im = SpectralProduct.load(source + planeStride)
            var pairs = SIMD32<Float>()
            for lane in 0..<16 {
                pairs[2 * lane] = re[lane]
                pairs[2 * lane + 1] = im[lane]
            }
            UnsafeMutableRawPointer(spectrum + block * 32).storeBytes(of: pairs, as: SIMD32<Float>.self)
        }
    }
}
