import ConvLab
import Foundation
import Testing

/// Seeded fuzzing of the .npy reader. Every case must end in one of two ways: a `ConvLabError`, or a read whose
/// shape and values are right. Generated files know their own answer (valid ones are decoded by an encoder written
/// here, independently of the reader); mutated files are checked for consistency. Inputs found by the coverage-guided
/// fuzzer (`Fuzz/`) are replayed from `Fuzz/regressions/`.
@Suite struct NumpyFuzzTests {
    /// One generated file and, when every choice that built it was valid, the array it must decode to.
    struct Case {
        var bytes: [UInt8]
        var expected: NumpyArray?
        var summary: String
    }

    /// A dtype the generator can write. `encode` is nil for dtypes the reader must refuse.
    struct DType: Sendable {
        var descr: String
        var encode: (@Sendable (Double) -> [UInt8])?
        /// Draws a value exactly representable in the dtype, so the expected read is exact.
        var draw: @Sendable (inout SeededGenerator) -> Double
    }

    static func bytes<T: FixedWidthInteger>(_ value: T, bigEndian: Bool) -> [UInt8] {
        withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian, Array.init)
    }

    static let dtypes: [DType] = {
        func int(_ range: ClosedRange<Int64>) -> @Sendable (inout SeededGenerator) -> Double {
            { Double(Int64.random(in: range, using: &$0)) }
        }
        let float32: @Sendable (inout SeededGenerator) -> Double = { Double(Float($0.nextNormal() * 100)) }
        var list: [DType] = []
        for big in [false, true] {
            let o = big ? ">" : "<"
            list += [
                DType(descr: o + "f2", encode: { bytes(Float16($0).bitPattern, bigEndian: big) },
                      draw: { Double(Int.random(in: -2000...2000, using: &$0)) / 4 }),
                DType(descr: o + "f4", encode: { bytes(Float($0).bitPattern, bigEndian: big) }, draw: float32),
                DType(descr: o + "f8", encode: { bytes($0.bitPattern, bigEndian: big) },
                      draw: { $0.nextNormal() * 1e10 }),
                DType(descr: o + "i2", encode: { bytes(Int16($0), bigEndian: big) }, draw: int(-32768...32767)),
                DType(descr: o + "i4", encode: { bytes(Int32($0), bigEndian: big) }, draw: int(-2_000_000_000...2_000_000_000)),
                DType(descr: o + "i8", encode: { bytes(Int64($0), bigEndian: big) }, draw: int(-(1 << 53)...(1 << 53))),
                DType(descr: o + "u2", encode: { bytes(UInt16($0), bigEndian: big) }, draw: int(0...65535)),
                DType(descr: o + "u4", encode: { bytes(UInt32($0), bigEndian: big) }, draw: int(0...4_000_000_000)),
                DType(descr: o + "u8", encode: { bytes(UInt64($0), bigEndian: big) }, draw: int(0...(1 << 53))),
            ]
        }
        list += [
            DType(descr: "|i1", encode: { [UInt8(bitPattern: Int8($0))] }, draw: int(-128...127)),
            DType(descr: "|u1", encode: { [UInt8($0)] }, draw: int(0...255)),
            DType(descr: "|b1", encode: { [$0 == 0 ? 0 : 1] }, draw: int(0...1)),
            DType(descr: "=f4", encode: { bytes(Float($0).bitPattern, bigEndian: false) }, draw: float32),
        ]
        // Dtypes the reader must refuse.
        for descr in ["<c8", "<c16", "|O", "|S3", "<U2", "<f16", "<f3", "<i3", "|b2", "f4", "<f", "", "<f-4", "<x4",
                      "<M8[ns]", "<f99999999999999999999", "<V8"] {
            list.append(DType(descr: descr, encode: nil, draw: { _ in 0 }))
        }
        return list
    }()

    /// A random file: every header field, the version, the lengths and the data are either valid or broken in one
    /// of the ways real files break.
    static func generate(_ g: inout SeededGenerator) -> Case {
        func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &g) < p }
        var valid = true
        var notes: [String] = []
        func broken(_ note: String) { valid = false; notes.append(note) }

        let dtype = dtypes[Int.random(in: 0..<dtypes.count, using: &g)]
        if dtype.encode == nil { broken("dtype \(dtype.descr)") }
        let rank = Int.random(in: 0...4, using: &g)
        var shape = (0..<rank).map { _ in Int.random(in: chance(0.1) ? 0...1 : 1...5, using: &g) }
        var shapeItems = shape.map(String.init)
        if chance(0.06), rank > 0 {
            let i = Int.random(in: 0..<rank, using: &g)
            let bad = ["-1", "-7", "2.5", "a", "1e3", "99999999999999999999", "0x10", "--1"][Int.random(in: 0..<8, using: &g)]
            shapeItems[i] = bad
            broken("shape entry \(bad)")
        }
        if chance(0.03), rank >= 2 {  // a shape too large for memory, which must be refused before allocating
            shapeItems[0] = "4294967296"; shapeItems[1] = "4294967296"
            broken("overflowing shape")
        }
        let shapeText = rank == 1 ? "(\(shapeItems[0]),)" : "(" + shapeItems.joined(separator: ", ") + ")"
        let fortran = rank >= 2 && chance(0.4)
        var fortranText = fortran ? "True" : "False"
        if chance(0.04) { fortranText = ["maybe", "1", "true", "", "Tru"][Int.random(in: 0..<5, using: &g)]; broken("fortran_order \(fortranText)") }

        let quote = chance(0.2) ? "\"" : "'"
        func q(_ s: String) -> String { quote + s + quote }
        var entries = [
            q("descr") + ": " + q(dtype.descr),
            q("fortran_order") + ": " + fortranText,
            q("shape") + ": " + shapeText,
        ]
        entries.shuffle(using: &g)
        if chance(0.04) { entries.remove(at: Int.random(in: 0..<3, using: &g)); broken("missing key") }
        if chance(0.04) { entries.append(q("extra") + ": 1"); broken("unknown key") }
        var header = "{" + entries.joined(separator: chance(0.5) ? ", " : ",") + (chance(0.5) ? ", }" : "}")
        if chance(0.03) { header = String(header.dropFirst()); broken("no opening brace") }
        if chance(0.03) { header = String(header.dropLast()); broken("no closing brace") }
        if chance(0.02) { header = "[" + header + "]"; broken("not a dict") }

        var major: UInt8 = [1, 1, 1, 2, 3][Int.random(in: 0..<5, using: &g)]
        if chance(0.03) { major = [0, 4, 9, 255][Int.random(in: 0..<4, using: &g)]; broken("version \(major)") }
        let prefix = major == 1 ? 10 : 12
        if chance(0.8) {
            header += String(repeating: " ", count: (64 - (prefix + header.utf8.count + 1) % 64) % 64)
        }
        header += "\n"
        var length = header.utf8.count
        if chance(0.04) {
            length += [-3, -1, 1, 7, 60000][Int.random(in: 0..<5, using: &g)]
            length = max(0, length)
            broken("header length field \(length)")
        }

        // Data: logical C-order values, written in the file's order.
        let count = valid ? shape.reduce(1, *) : min(shape.reduce(1, *), 200)
        let values = (0..<count).map { _ in dtype.draw(&g) }
        var data: [UInt8] = []
        if let encode = dtype.encode {
            let fileOrder = fortran && values.count == shape.reduce(1, *) ? Self.cToFortran(values, shape: shape) : values
            for v in fileOrder { data += encode(v) }
        } else {
            data = (0..<(count * 4)).map { _ in UInt8.random(in: 0...255, using: &g) }
        }
        if chance(0.05), !data.isEmpty {
            data.removeLast(Int.random(in: 1...data.count, using: &g)); broken("data truncated")
        }
        if chance(0.05) { data += (0..<Int.random(in: 1...9, using: &g)).map { _ in 0xAB }; broken("trailing bytes") }

        var file: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
        if chance(0.02) { file[Int.random(in: 0..<6, using: &g)] ^= 0x20; broken("bad magic") }
        file += major == 1 || major > 3 || major == 0
            ? [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF)]
            : [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), 0]
        file += Array(header.utf8) + data
        if chance(0.02) { file = Array(file.prefix(Int.random(in: 0...12, using: &g))); broken("cut in the preamble") }

        if valid, shape.isEmpty { shape = [] }
        return Case(bytes: file, expected: valid ? NumpyArray(shape: shape, values: values, sourceType: dtype.descr) : nil,
                    summary: "\(dtype.descr) \(shapeText) fortran \(fortranText) v\(major) \(notes)")
    }

    /// Row-major values written column-major (first index fastest), as NumPy does for fortran_order True.
    static func cToFortran(_ values: [Double], shape: [Int]) -> [Double] {
        guard shape.count > 1, !values.isEmpty else { return values }
        var strides = [Int](repeating: 1, count: shape.count)
        for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
        var result = [Double](repeating: 0, count: values.count)
        for f in 0..<values.count {
            var rest = f, c = 0
            for axis in 0..<shape.count {
                c += (rest % shape[axis]) * strides[axis]
                rest /= shape[axis]
            }
            result[f] = values[c]
        }
        return result
    }

    /// What the reader did with `bytes`: a read, or a typed error. Any other error is a failure of the test.
    enum Outcome { case read(NumpyArray), error(ConvLabError), foreign(Error) }

    static func decode(_ bytes: [UInt8]) -> Outcome {
        // A small tensor limit keeps "huge shape" cases cheap: they must be refused before any allocation.
        let limits = ResourceLimits(maxTensorBytes: 64 << 20, maxWorkspaceBytes: 64 << 20)
        do { return .read(try NumpyArray(decoding: bytes, source: "fuzz.npy", limits: limits)) }
        catch let error as ConvLabError { return .error(error) }
        catch { return .foreign(error) }
    }

    static func same(_ a: NumpyArray, _ b: NumpyArray) -> Bool {
        a.shape == b.shape && a.values.count == b.values.count
            && zip(a.values, b.values).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    }

    /// 6,000 generated files: valid ones decode to exactly the values written, broken ones give a ConvLabError
    /// whose message names the file.
    @Test func generatedFilesReadCorrectlyOrFailCleanly() {
        var g = SeededGenerator(seed: 0x4E50_5946)
        var failures: [String] = []
        var (reads, errors) = (0, 0)
        for index in 0..<6000 {
            let c = Self.generate(&g)
            switch (Self.decode(c.bytes), c.expected) {
            case let (.read(array), expected?):
                if Self.same(array, expected) { reads += 1 } else { failures.append("#\(index) wrong values: \(c.summary)") }
            case let (.read(array), nil):
                failures.append("#\(index) accepted a broken file as \(array.shape): \(c.summary)")
            case let (.error(error), nil):
                if case .invalidFile(let path, let reason) = error, path == "fuzz.npy", !reason.isEmpty {
                    errors += 1
                } else if case .memoryLimitExceeded = error {
                    errors += 1
                } else {
                    failures.append("#\(index) unexpected error kind \(error): \(c.summary)")
                }
            case let (.error(error), _?):
                failures.append("#\(index) refused a valid file (\(error)): \(c.summary)")
            case let (.foreign(error), _):
                failures.append("#\(index) untyped error \(error): \(c.summary)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(5))")
        // Not vacuous: both outcomes are exercised in bulk.
        #expect(reads > 1500 && errors > 2500, "reads \(reads), errors \(errors)")
    }

    /// 6,000 valid files with 1–4 random byte edits (flip, overwrite, insert, delete, truncate, splice). Each
    /// either fails with a ConvLabError or reads consistently; edits inside the data region keep the shape.
    @Test func mutatedFilesNeverCrashAndReadConsistently() {
        var g = SeededGenerator(seed: 0xF022)
        var failures: [String] = []
        var (reads, errors, made) = (0, 0, 0)
        while made < 6000 {
            let source = Self.generate(&g)
            guard let expected = source.expected else { continue }
            made += 1
            var bytes = source.bytes
            let headerEnd = bytes.count - expected.values.count * Self.elementSize(expected.sourceType)
            var dataOnly = true
            // Half the files get value edits only (bit flips and overwrites in the data), which must read.
            let valueEditsOnly = Bool.random(using: &g) && headerEnd < bytes.count
            for _ in 0..<Int.random(in: 1...4, using: &g) {
                let at = valueEditsOnly ? Int.random(in: headerEnd..<bytes.count, using: &g)
                                        : Int.random(in: 0...max(0, bytes.count - 1), using: &g)
                switch valueEditsOnly ? Int.random(in: 0..<2, using: &g) : Int.random(in: 0..<6, using: &g) {
                case 0 where !bytes.isEmpty: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &g))
                case 1 where !bytes.isEmpty: bytes[at] = UInt8.random(in: 0...255, using: &g)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &g), at: min(at, bytes.count)); dataOnly = false
                case 3 where !bytes.isEmpty: bytes.remove(at: at); dataOnly = false
                case 4: bytes = Array(bytes.prefix(at)); dataOnly = false
                default:
                    let from = Int.random(in: 0...max(0, bytes.count - 1), using: &g)
                    bytes.insert(contentsOf: bytes[from..<min(bytes.count, from + 8)], at: min(at, bytes.count))
                    dataOnly = false
                }
                if at < headerEnd { dataOnly = false }
            }
            switch Self.decode(bytes) {
            case .read(let array):
                reads += 1
                if array.values.count != array.shape.reduce(1, *) {
                    failures.append("count \(array.values.count) ≠ shape \(array.shape)")
                }
                if dataOnly && array.shape != expected.shape {
                    failures.append("data-only edit changed shape \(expected.shape) → \(array.shape)")
                }
            case .error:
                errors += 1
                if dataOnly { failures.append("data-only edit refused: \(source.summary)") }
            case .foreign(let error):
                failures.append("untyped error \(error)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(5))")
        #expect(reads > 2000 && errors > 2000, "reads \(reads), errors \(errors)")
    }

    /// Inputs of the coverage-guided fuzzer (Fuzz/run-npy-fuzzer.sh): its minimised corpus (one file per code path
    /// it found) and any input that ever crashed it. Each must still give a clean outcome.
    @Test func fuzzerCorpusAndRegressionsStayClean() throws {
        let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz")
            .standardized
        var replayed = 0
        for directory in ["corpus", "regressions"] {
            let folder = fuzz.appendingPathComponent(directory)
            for file in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
                let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(file)))
                replayed += 1
                switch Self.decode(bytes) {
                case .foreign(let error): Issue.record("\(directory)/\(file): untyped error \(error)")
                case .read(let array) where array.values.count != array.shape.reduce(1, *):
                    Issue.record("\(directory)/\(file): \(array.values.count) values for shape \(array.shape)")
                default: break
                }
            }
        }
        #expect(replayed >= 100, "only \(replayed) fuzzer inputs found under \(fuzz.path)")
    }

    static func elementSize(_ descr: String) -> Int { Int(descr.dropFirst(2)) ?? 1 }
}
