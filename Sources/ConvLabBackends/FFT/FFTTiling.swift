import ConvLabCore

/// Overlap-save tiling of a convolution for FFT: the padded input is cut into overlapping Th×Tw tiles whose
/// circular correlation with the (dilated) filter is exact on its first Mh×Mw outputs, Mh = Th − extentH + 1.
///
/// Cross-correlation y[i] = Σ_r w[r]·x[i + r] becomes Y = X·conj(W) in frequency; for output i < Mh the indices
/// i + r stay below Th, so the circular wrap never touches a kept output and no extra zero padding is needed.
/// A whole-image FFT is the one-tile case (Th ≥ padded height). Stride is applied by computing the stride-1 outputs
/// of the tile and keeping every sh-th row and sw-th column: the transforms cost the same as at stride 1.
struct FFTTiling: Sendable {
    let descriptor: ConvolutionDescriptor
    let transformHeight: Int
    let transformWidth: Int
    /// Valid stride-1 outputs per tile: T − extent + 1.
    let outputTileHeight: Int
    let outputTileWidth: Int
    /// Stride-1 output rows/columns that must be computed to cover every strided output: (Ho − 1)·sh + 1.
    let denseOutputHeight: Int
    let denseOutputWidth: Int
    let tileRows: Int
    let tileColumns: Int
    /// Complex bins of one real Th×Tw transform, Th·(Tw/2 + 1), and that count rounded up to whole 16-lane blocks.
    let bins: Int
    let paddedBins: Int
    /// Floats between consecutive real tiles (64-byte multiple, so every tile starts aligned for FFTW).
    let realTileStride: Int

    init(descriptor d: ConvolutionDescriptor, transformHeight: Int, transformWidth: Int) {
        descriptor = d
        self.transformHeight = transformHeight
        self.transformWidth = transformWidth
        outputTileHeight = transformHeight - d.kernelExtentHeight + 1
        outputTileWidth = transformWidth - d.kernelExtentWidth + 1
        denseOutputHeight = (d.outputHeight - 1) * d.strideHeight + 1
        denseOutputWidth = (d.outputWidth - 1) * d.strideWidth + 1
        tileRows = (denseOutputHeight + outputTileHeight - 1) / outputTileHeight
        tileColumns = (denseOutputWidth + outputTileWidth - 1) / outputTileWidth
        bins = FFTW.bins(height: transformHeight, width: transformWidth)
        paddedBins = (bins + 15) / 16 * 16
        realTileStride = (transformHeight * transformWidth + 15) / 16 * 16
    }

    var tilesPerImage: Int { tileRows * tileColumns }
    var binBlocks: Int { paddedBins / 16 }

    /// Per-worker scratch: one real tile and one interleaved spectrum of `paddedBins` bins.
    var scratchFloats: Int { realTileStride + 2 * paddedBins }

    func scratchBuffers(_ base: UnsafeMutablePointer<Float>, worker: Int)
        -> (real: UnsafeMutablePointer<Float>, spectrum: UnsafeMutablePointer<Float>) {
        let real = base + worker * scratchFloats
        return (real, real + realTileStride)
    }

    /// Copies the Th×Tw window of tile `tile` from one input channel plane (H×W), with zeros where the window
    /// covers padding or lies past the padded input.
    func extractTile(_ tile: Int, from plane: UnsafePointer<Float>, into real: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let (Th, Tw) = (transformHeight, transformWidth)
        let top = (tile / tileColumns) * outputTileHeight - d.padding.top
        let left = (tile % tileColumns) * outputTileWidth - d.padding.left
        for u in 0..<Th {
            let ih = top + u
            copyPaddedRow(ih >= 0 && ih < d.inputHeight ? plane + ih * d.inputWidth : nil, width: d.inputWidth,
                          offset: left, into: real + u * Tw, count: Tw)
        }
    }

    /// Writes the kept outputs of tile `tile` (from its inverse transform, already scaled) into one output plane.
    func storeTile(_ tile: Int, from real: UnsafePointer<Float>, into plane: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let (sh, sw, Wo) = (d.strideHeight, d.strideWidth, d.outputWidth)
        let firstRow = (tile / tileColumns) * outputTileHeight
        let firstColumn = (tile % tileColumns) * outputTileWidth
        let rowEnd = min(firstRow + outputTileHeight, denseOutputHeight)
        let columnEnd = min(firstColumn + outputTileWidth, denseOutputWidth)
        // First dense row/column of the tile that lands on the strided output grid.
        var i = (firstRow + sh - 1) / sh * sh
        let firstJ = (firstColumn + sw - 1) / sw * sw
        while i < rowEnd {
            let source = real + (i - firstRow) * transformWidth
            let target = plane + (i / sh) * Wo
            if sw == 1 {
                (target + firstJ).update(from: source + (firstJ - firstColumn), count: columnEnd - firstJ)
            } else {
                var j = firstJ
                while j < columnEnd {
                    target[j / sw] = source[j - firstColumn]
                    j += sw
                }
            }
            i += sh
        }
    }
}
