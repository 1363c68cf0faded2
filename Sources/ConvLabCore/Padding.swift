/// Zero padding added around each input plane, in pixels, per side.
public struct Padding: Hashable, Codable, Sendable, CustomStringConvertible {
    public var top: Int
    public var bottom: Int
    public var left: Int
    public var right: Int

    public init(top: Int, bottom: Int, left: Int, right: Int) {
        self.top = top
        self.bottom = bottom
        self.left = left
        self.right = right
    }

    /// The same padding on every side.
    public init(_ all: Int) {
        self.init(top: all, bottom: all, left: all, right: all)
    }

    /// Symmetric padding: `height` above and below, `width` left and right.
    public init(height: Int, width: Int) {
        self.init(top: height, bottom: height, left: width, right: width)
    }

    public static let zero = Padding(0)

    public var isZero: Bool { self == .zero }

    public var description: String {
        if top == bottom && left == right {
            return top == left ? "\(top)" : "\(top),\(left)"
        }
        return "\(top),\(bottom),\(left),\(right)"
    }
}

/// How a descriptor chooses its padding.
public enum PaddingRule: Hashable, Sendable {
    /// No padding: the output shrinks by the (dilated) kernel extent minus one.
    case valid
    /// TensorFlow's "same": output size = ceil(input / stride); the total padding is split with the extra pixel
    /// at the bottom/right. With stride 1 and an odd kernel this is the familiar (k - 1) / 2 on each side.
    case same
    case explicit(Padding)

    /// The padding this rule gives along one axis.
    static func sameAxis(input: Int, kernel: Int, stride: Int, dilation: Int) -> (before: Int, after: Int) {
        let extent = (kernel - 1) * dilation + 1
        let output = (input + stride - 1) / stride
        let total = max((output - 1) * stride + extent - input, 0)
        return (total / 2, total - total / 2)
    }
}
