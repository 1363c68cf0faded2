import ConvLabCore

/// The shapes of a parameter sweep: the cartesian product of kernel sizes, channel counts, image sizes and batch
/// sizes (square images and kernels, K = C unless given, "same" padding), enumerated in a fixed order so that a
/// shard (`--shard i/n`, every n-th shape starting at the i-th) is the same slice on every machine.
public struct SweepPlan: Sendable {
    public var kernels: [Int]
    public var channels: [Int]
    public var sizes: [Int]
    public var batches: [Int]
    public var outputChannels: Int?
    public var stride: Int
    public var groups: Int

    public init(kernels: [Int], channels: [Int], sizes: [Int], batches: [Int], outputChannels: Int? = nil,
                stride: Int = 1, groups: Int = 1) {
        self.kernels = kernels
        self.channels = channels
        self.sizes = sizes
        self.batches = batches
        self.outputChannels = outputChannels
        self.stride = stride
        self.groups = groups
    }

    /// Every grid point in sweep order (kernel outermost, batch innermost): a descriptor, or why the combination
    /// is not a valid problem (e.g. groups not dividing C, an image smaller than the kernel, too much memory).
    public func gridPoints() -> [(label: String, result: Result<ConvolutionDescriptor, ConvLabError>)] {
        var result: [(label: String, result: Result<ConvolutionDescriptor, ConvLabError>)] = []
        for kernel in kernels {
            for c in channels {
                for size in sizes {
                    for batch in batches {
                        let label = "k\(kernel)c\(c)s\(size)b\(batch)"
                        do {
                            result.append((label, .success(try ConvolutionDescriptor(
                                batch: batch, inputChannels: c, inputHeight: size, inputWidth: size,
                                outputChannels: outputChannels ?? c, kernelHeight: kernel, kernelWidth: kernel,
                                strideHeight: stride, strideWidth: stride, padding: .same, groups: groups))))
                        } catch let error as ConvLabError {
                            result.append((label, .failure(error)))
                        } catch {
                            result.append((label, .failure(.invalidArgument(name: label, reason: "\(error)"))))
                        }
                    }
                }
            }
        }
        return result
    }

    /// The valid descriptors of `gridPoints()`, in sweep order.
    public func descriptors() -> [ConvolutionDescriptor] {
        gridPoints().compactMap { try? $0.result.get() }
    }

    /// Shard `index` (1-based) of `count`: shapes index−1, index−1+count, … . The shards partition the shapes.
    public static func shard<T>(_ items: [T], index: Int, count: Int) throws -> [T] {
        guard count >= 1, index >= 1, index <= count else {
            throw ConvLabError.invalidArgument(name: "shard", reason: "need 1 ≤ i ≤ n in i/n (got \(index)/\(count))")
        }
        return items.enumerated().filter { $0.offset % count == index - 1 }.map(\.element)
    }
}
