/// Size arithmetic that reports overflow instead of trapping or wrapping. Every byte or element count convlab
/// computes from user input (tensor sizes, workspaces, transform sizes) goes through these before anything is
/// allocated; under `-Ounchecked` a wrapped product would otherwise become a small allocation and a heap overflow.
package enum CheckedArithmetic {
    /// The product of `values`, or nil when it does not fit in an `Int`.
    package static func product(_ values: Int...) -> Int? { product(values) }

    package static func product(_ values: [Int]) -> Int? {
        var result = 1
        for value in values {
            let (next, overflow) = result.multipliedReportingOverflow(by: value)
            if overflow { return nil }
            result = next
        }
        return result
    }

    /// The sum of `values`, or nil when it does not fit in an `Int`.
    package static func sum(_ values: Int...) -> Int? { sum(values) }

    package static func sum(_ values: [Int]) -> Int? {
        var result = 0
        for value in values {
            let (next, overflow) = result.addingReportingOverflow(value)
            if overflow { return nil }
            result = next
        }
        return result
    }

    /// The product, or `.sizeOverflow(what:)`.
    package static func product(_ values: [Int], what: String) throws -> Int {
        guard let result = product(values) else { throw ConvLabError.sizeOverflow(what: what) }
        return result
    }

    /// The sum, or `.sizeOverflow(what:)`.
    package static func sum(_ values: [Int], what: String) throws -> Int {
        guard let result = sum(values) else { throw ConvLabError.sizeOverflow(what: what) }
        return result
    }
}
