/// libFuzzer entry point for the .npy reader, compiled together with the ConvLab sources by
/// `Fuzz/run-npy-fuzzer.sh` (bounds and overflow checks on, AddressSanitizer on). Any crash, trap or sanitizer report
/// is a bug; a `ConvLabError` is the expected answer to a bad file, and a read must be self-consistent.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumpyReader(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    // A small tensor limit: huge declared shapes must be refused before allocating, not exhaust the fuzzer's memory.
    let limits = ResourceLimits(maxTensorBytes: 16 << 20, maxWorkspaceBytes: 16 << 20)
    do {
        let array = try NumpyArray(decoding: bytes, source: "fuzz.npy", limits: limits)
        let elements = array.shape.reduce(1) { $0 * $1 }
        if array.values.count != elements { fatalError("read \(array.values.count) values for shape \(array.shape)") }
        // What we write we must read back identically.
        let again = try NumpyArray(decoding: array.encoded(float32: false), source: "again.npy", limits: limits)
        if again.shape != array.shape || !zip(again.values, array.values).allSatisfy({ $0 == $1 || ($0.isNaN && $1.isNaN) }) {
            fatalError("round trip changed \(array.shape)")
        }
    } catch is ConvLabError {
        return 0
    } catch {
        fatalError("untyped error \(error)")
    }
    return 0
}
