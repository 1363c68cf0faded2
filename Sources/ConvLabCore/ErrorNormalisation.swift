/// How convlab turns an output's absolute error into a relative one, in one place so that every measurement of
/// error means the same thing (the accuracy checker, the Winograd point search, the studies).
///
/// Output i is divided by max(Σ|w|·|x| of that output, ¼ · local), local being the larger of the typical scale of
/// its channel, Σ|w_k| · rms(x), and the largest Σ|w|·|x| among its neighbours. The first term is the forward-error
/// scale of its dot product; the floor keeps methods whose rounding error spreads over a tile (FFT, Winograd,
/// Strassen) from being judged by a division by ~0 at outputs in the padding or with all-zero windows (post-ReLU
/// data). RMS rather than mean|x|: a transform mixes every entry of its tile, so its error follows the L2 norm.
public enum ErrorNormalisation {
    /// Fraction of the local scale below which outputs are normalised by the floor.
    public static let scaleFloor = 0.25

    /// The denominator for an output of own scale Σ|w|·|x| = `scale`, channel scale `typical` and largest scale
    /// `neighbourhood` among its neighbours.
    @inlinable
    public static func denominator(scale: Double, typical: Double, neighbourhood: Double) -> Double {
        max(scale, scaleFloor * max(typical, neighbourhood))
    }
}
