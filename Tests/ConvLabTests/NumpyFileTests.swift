import ConvLab
import Foundation
import Testing

@Suite struct NumpyFileTests {
    /// A .npy file built by hand: version 1.0 header with the given dict text, then raw data bytes.
    static func npy(_ header: String, _ data: [UInt8], major: UInt8 = 1) -> [UInt8] {
        var text = header
        let prefix = major == 1 ? 10 : 12
        text += String(repeating: " ", count: (64 - (prefix + text.utf8.count + 1) % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
        let length = text.utf8.count
        bytes += major == 1 ? [UInt8(length & 0xFF), UInt8(length >> 8)]
                            : [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), 0, 0]
        return bytes + Array(text.utf8) + data
    }

    static func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
    }

    @Test func float32AndFloat64RoundTrip() throws {
        let tensor = try Tensor<Float>.random(shape: [2, 3, 4, 5], seed: 1)
        let array = NumpyArray(tensor)
        let decoded = try NumpyArray(decoding: array.encoded(float32: true))
        #expect(decoded.shape == [2, 3, 4, 5])
        #expect(decoded.sourceType == "<f4")
        #expect(try decoded.float32Tensor() == tensor)
        let wide = NumpyArray(shape: [3], values: [1.0 / 3.0, -2.5e300, 0])
        let decodedWide = try NumpyArray(decoding: wide.encoded(float32: false))
        #expect(decodedWide.values == wide.values)
        #expect(decodedWide.sourceType == "<f8")
    }

    @Test func headerIsPaddedTo64Bytes() {
        let bytes = NumpyArray(shape: [7], values: Array(repeating: 1, count: 7)).encoded()
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        #expect(bytes.count == 10 + headerLength + 7 * 4)
    }

    @Test func scalarAndEmptyShapes() throws {
        let scalar = try NumpyArray(decoding: Self.npy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                                                       Self.littleEndian([Double(2.5).bitPattern])))
        #expect(scalar.shape == [] && scalar.values == [2.5])
        let empty = try NumpyArray(decoding: Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", []))
        #expect(empty.shape == [0, 3] && empty.values.isEmpty)
    }

    @Test func convertsOtherDtypes() throws {
        let int16 = try NumpyArray(decoding: Self.npy("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }",
                                                      Self.littleEndian([Int16(-7), 300, 0])))
        #expect(int16.values == [-7, 300, 0])
        let uint8 = try NumpyArray(decoding: Self.npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }",
                                                      [255, 1]))
        #expect(uint8.values == [255, 1])
        let bigEndian = try NumpyArray(decoding: Self.npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                                                          withUnsafeBytes(of: Float(1.5).bitPattern.bigEndian, Array.init)))
        #expect(bigEndian.values == [1.5])
        let half = try NumpyArray(decoding: Self.npy("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }",
                                                     Self.littleEndian([UInt16(0x3C00), 0xC000, 0x3555])))
        #expect(half.values[0] == 1 && half.values[1] == -2)
        #expect(abs(half.values[2] - 1.0 / 3.0) < 1e-3)
        let int64 = try NumpyArray(decoding: Self.npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                                                      Self.littleEndian([Int64(-123456789)])))
        #expect(int64.values == [-123456789])
        let bools = try NumpyArray(decoding: Self.npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
                                                      [1, 0]))
        #expect(bools.values == [1, 0])
    }

    @Test func fortranOrderIsTransposedToCOrder() throws {
        // C-order [[1,2,3],[4,5,6]] stored column-major is 1,4,2,5,3,6.
        let values: [Float] = [1, 4, 2, 5, 3, 6]
        let array = try NumpyArray(decoding: Self.npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                                                      Self.littleEndian(values.map(\.bitPattern))))
        #expect(array.values == [1, 2, 3, 4, 5, 6])
    }

    @Test func versionTwoHeaders() throws {
        let array = try NumpyArray(decoding: Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                                                      Self.littleEndian([Float(3).bitPattern]), major: 2))
        #expect(array.values == [3])
    }

    static let malformed: [(String, [UInt8])] = [
        ("empty file", []),
        ("wrong magic", Array("NUMPY\u{1}\u{0}".utf8) + [0, 0, 0, 0]),
        ("version 9", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 9, 0, 0, 0]),
        ("header longer than file", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 0xFF, 0x7F] + Array("{".utf8)),
        ("not a dict", npy("['descr', '<f4']", [])),
        ("missing shape", npy("{'descr': '<f4', 'fortran_order': False, }", [])),
        ("negative shape", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }", [])),
        ("non-integer shape", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", [])),
        ("complex dtype", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", Array(repeating: 0, count: 8))),
        ("object dtype", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", Array(repeating: 0, count: 8))),
        ("structured dtype", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0])),
        ("bad fortran flag", npy("{'descr': '<f4', 'fortran_order': maybe, 'shape': (1,), }", [0, 0, 0, 0])),
        ("unknown key", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1, }", [0, 0, 0, 0])),
        ("truncated data", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", [0, 0, 0, 0])),
        ("trailing bytes", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0, 9])),
        ("overflowing shape", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", [])),
        ("huge shape", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", [])),
    ]

    @Test(arguments: malformed.indices)
    func malformedFilesGiveAClearError(index: Int) {
        let (name, bytes) = Self.malformed[index]
        #expect(throws: ConvLabError.self, "\(name)") { try NumpyArray(decoding: bytes, source: "case.npy") }
    }

    @Test func fileRoundTripAndMissingFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("convlab-\(UUID()).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let array = NumpyArray(shape: [2, 2], values: [1, 2, 3, 4])
        try array.write(to: path)
        #expect(try NumpyArray.read(contentsOf: path).values == [1, 2, 3, 4])
        #expect(throws: ConvLabError.self) { try NumpyArray.read(contentsOf: path + ".missing") }
    }
}
