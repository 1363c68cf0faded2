import ConvLabCore
import Foundation

/// NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), so NumPy and PyTorch users can feed convlab and
/// cross-check its results.
///
/// Reading accepts little- and big-endian floats (f2, f4, f8), integers (i1–i8, u1–u8) and booleans, in C or
/// Fortran order, and converts them to float64 values in C order. It refuses anything else (complex, strings,
/// objects, structured dtypes) and any malformed file with a `ConvLabError.invalidFile` that says what is wrong:
/// bad magic, truncated header or data, unparsable header, negative or overflowing shape, trailing bytes.
/// Writing produces version 1.0, C order, little-endian `<f4` or `<f8`.
public struct NumpyArray: Sendable, Equatable {
    public var shape: [Int]
    /// Elements in C (row-major) order.
    public var values: [Double]
    /// The dtype string found in the file, e.g. `<f4`.
    public var sourceType: String

    public init(shape: [Int], values: [Double], sourceType: String = "<f8") {
        self.shape = shape
        self.values = values
        self.sourceType = sourceType
    }

    public init<Scalar>(_ tensor: Tensor<Scalar>) {
        self.init(shape: tensor.shape, values: tensor.scalars.map { Double($0) },
                  sourceType: Scalar.self == Float.self ? "<f4" : "<f8")
    }

    public var count: Int { values.count }

    /// The values as a float32 tensor (float64 data is rounded to nearest).
    public func float32Tensor() throws -> Tensor<Float> {
        try Tensor(shape: shape, scalars: values.map { Float($0) })
    }

    // MARK: Files

    public static func read(contentsOf path: String, limits: ResourceLimits = .default) throws -> NumpyArray {
        // The file holds the array once; decoding converts it to float64 (≤ 8 bytes per element): the header check
        // below bounds that, this one bounds the read.
        let data = try FileInput.data(at: path, limit: limits.maxTensorBytes, what: "a .npy file")
        return try NumpyArray(decoding: [UInt8](data), source: path, limits: limits)
    }

    /// Writes the array as `<f4` (float32: true) or `<f8`.
    public func write(to path: String, float32: Bool = true) throws {
        do {
            try Data(encoded(float32: float32)).write(to: URL(fileURLWithPath: path))
        } catch {
            throw ConvLabError.invalidFile(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    // MARK: Encoding

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    public func encoded(float32: Bool = true) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(float32 ? "<f4" : "<f8")', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad with spaces so that magic (6) + version (2) + length (2) + header + "\n" is a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes = Self.magic + [1, 0]
        let length = UInt16(header.utf8.count)
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        bytes.reserveCapacity(bytes.count + values.count * (float32 ? 4 : 8))
        for value in values {
            if float32 {
                withUnsafeBytes(of: Float(value).bitPattern.littleEndian) { bytes += $0 }
            } else {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
            }
        }
        return bytes
    }

    // MARK: Decoding

    public init(decoding bytes: [UInt8], source: String = "<memory>", limits: ResourceLimits = .default) throws {
        func fail(_ reason: String) -> ConvLabError { .invalidFile(path: source, reason: reason) }

        guard bytes.count >= 10, Array(bytes[0..<6]) == Self.magic else {
            throw fail("not a .npy file (missing the \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header length") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major).\(bytes[7])")
        }
        guard headerLength <= bytes.count - headerStart else {
            throw fail("header claims \(headerLength) bytes but the file has only \(bytes.count - headerStart) left")
        }
        guard let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8) else {
            throw fail("header is not valid text")
        }
        let fields = try NumpyHeader(parsing: header, fail: fail)
        let dtype = try NumpyType(fields.descr, fail: fail)

        guard let count = CheckedArithmetic.product(fields.shape),
              let byteCount = CheckedArithmetic.product(count, dtype.size) else {
            throw fail("shape \(fields.shape) has more elements than fit in memory")
        }
        try ResourceLimits.check("\(source) (\(fields.shape) as float64)",
                                 bytes: CheckedArithmetic.product(count, 8) ?? .max,
                                 limit: limits.maxTensorBytes)
        let dataStart = headerStart + headerLength
        let available = bytes.count - dataStart
        if available < byteCount {
            throw fail("data truncated: shape \(fields.shape) of \(fields.descr) needs \(byteCount) bytes, "
                       + "found \(available)")
        }
        if available > byteCount {
            throw fail("\(available - byteCount) unexpected bytes after the data of shape \(fields.shape)")
        }
        var values = [Double](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let data = UnsafeRawBufferPointer(rebasing: raw[dataStart...])
            for i in 0..<count { values[i] = dtype.value(in: data, at: i) }
        }
        if fields.fortranOrder {
            values = Self.fortranToC(values, shape: fields.shape)
        }
        self.init(shape: fields.shape, values: values, sourceType: fields.descr)
    }

    /// Reorders column-major (first index fastest) values into row-major order.
    static func fortranToC(_ values: [Double], shape: [Int]) -> [Double] {
        guard shape.count > 1 else { return values }
        var result = [Double](repeating: 0, count: values.count)
        var index = [Int](repeating: 0, count: shape.count)
        for cOffset in 0..<values.count {
            var fortranOffset = 0
            for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                fortranOffset = fortranOffset * shape[axis] + index[axis]
            }
            result[cOffset] = values[fortranOffset]
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }
}

/// The three fields of a .npy header dict: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
private struct NumpyHeader {
    var descr = ""
    var fortranOrder = false
    var shape: [Int] = []

    init(parsing text: String, fail: (String) -> ConvLabError) throws {
        var scanner = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        guard scanner.first == "{", scanner.last == "}" else { throw fail("header is not a {...} dictionary") }
        scanner = scanner.dropFirst().dropLast()
        var seen = Set<String>()
        while true {
            scanner = scanner.drop(while: { $0 == " " || $0 == "," || $0 == "\n" })
            if scanner.isEmpty { break }
            guard let quote = scanner.first, quote == "'" || quote == "\"" else {
                throw fail("header key is not a quoted string near '\(scanner.prefix(20))'")
            }
            scanner = scanner.dropFirst()
            guard let keyEnd = scanner.firstIndex(of: quote) else { throw fail("unterminated header key") }
            let key = String(scanner[..<keyEnd])
            scanner = scanner[keyEnd...].dropFirst().drop(while: { $0 == " " })
            guard scanner.first == ":" else { throw fail("missing ':' after header key '\(key)'") }
            scanner = scanner.dropFirst().drop(while: { $0 == " " })
            switch key {
            case "descr":
                guard let q = scanner.first, q == "'" || q == "\"" else {
                    throw fail("'descr' is not a string (structured dtypes are not supported)")
                }
                scanner = scanner.dropFirst()
                guard let end = scanner.firstIndex(of: q) else { throw fail("unterminated 'descr' string") }
                descr = String(scanner[..<end])
                scanner = scanner[end...].dropFirst()
            case "fortran_order":
                if scanner.hasPrefix("True") {
                    fortranOrder = true
                    scanner = scanner.dropFirst(4)
                } else if scanner.hasPrefix("False") {
                    fortranOrder = false
                    scanner = scanner.dropFirst(5)
                } else {
                    throw fail("'fortran_order' must be True or False")
                }
            case "shape":
                guard scanner.first == "(", let end = scanner.firstIndex(of: ")") else {
                    throw fail("'shape' is not a tuple")
                }
                let items = scanner[scanner.index(after: scanner.startIndex)..<end]
                    .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                shape = try items.map { item in
                    let digits = item.hasSuffix("L") ? String(item.dropLast()) : item
                    guard let value = Int(digits) else { throw fail("shape entry '\(item)' is not an integer") }
                    guard value >= 0 else { throw fail("shape entry \(value) is negative") }
                    return value
                }
                scanner = scanner[end...].dropFirst()
            default:
                throw fail("unexpected header key '\(key)'")
            }
            seen.insert(key)
        }
        for required in ["descr", "fortran_order", "shape"] where !seen.contains(required) {
            throw fail("header has no '\(required)'")
        }
    }
}

/// A numeric .npy dtype: byte order, kind and size.
private struct NumpyType {
    enum Kind { case float, signed, unsigned, boolean }
    let kind: Kind
    let size: Int
    let bigEndian: Bool

    init(_ descr: String, fail: (String) -> ConvLabError) throws {
        let letters = Array(descr)
        guard letters.count >= 3, "<>|=".contains(letters[0]), let size = Int(String(letters[2...])) else {
            throw fail("unsupported dtype '\(descr)'")
        }
        let (order, kindLetter) = (letters[0], letters[1])
        switch (kindLetter, size) {
        case ("f", 2), ("f", 4), ("f", 8): kind = .float
        case ("i", 1), ("i", 2), ("i", 4), ("i", 8): kind = .signed
        case ("u", 1), ("u", 2), ("u", 4), ("u", 8): kind = .unsigned
        case ("b", 1): kind = .boolean
        default:
            throw fail("unsupported dtype '\(descr)': convlab reads float16/32/64, integers and booleans")
        }
        self.size = size
        bigEndian = order == ">"
    }

    func value(in data: UnsafeRawBufferPointer, at index: Int) -> Double {
        let offset = index * size
        var bits: UInt64 = 0
        for byte in 0..<size {
            let b = UInt64(data[offset + (bigEndian ? size - 1 - byte : byte)])
            bits |= b << (8 * UInt64(byte))
        }
        switch (kind, size) {
        case (.float, 2): return Double(float16ToFloat(UInt16(bits)))
        case (.float, 4): return Double(Float(bitPattern: UInt32(bits)))
        case (.float, _): return Double(bitPattern: bits)
        case (.signed, _):
            let shift = UInt64(64 - 8 * size)
            return Double(Int64(bitPattern: bits << shift) >> Int64(shift))
        case (.unsigned, _): return Double(bits)
        case (.boolean, _): return bits == 0 ? 0 : 1
        }
    }

    /// IEEE half → single without relying on the platform's Float16 support.
    private func float16ToFloat(_ h: UInt16) -> Float {
        let sign: Float = h & 0x8000 != 0 ? -1 : 1
        let exponent = Int((h >> 10) & 0x1F)
        let fraction = Float(h & 0x3FF)
        switch exponent {
        case 0: return sign * fraction * 0x1p-24
        case 31: return fraction == 0 ? sign * .infinity : .nan
        default: return sign * (1 + fraction / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
        }
    }
}
