import ConvLabCore

/// An exact fraction p/q (q > 0, gcd(p, q) = 1) with overflow-checked 64-bit arithmetic. Enough for Cook–Toom
/// transforms of the sizes CNNs use (F(8,3) with points like ±1/4 stays far from 2⁶³); an overflow is reported as an
/// error rather than producing a wrong transform.
public struct Rational: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let numerator: Int
    public let denominator: Int

    public init(integerLiteral value: Int) {
        numerator = value
        denominator = 1
    }

    public init(_ numerator: Int, _ denominator: Int = 1) throws {
        guard denominator != 0 else {
            throw ConvLabError.invalidArgument(name: "fraction", reason: "\(numerator)/0 has a zero denominator")
        }
        guard numerator != .min && denominator != .min else { throw Rational.overflow }
        let divisor = Rational.gcd(abs(numerator), abs(denominator))
        let sign = denominator < 0 ? -1 : 1
        self.numerator = sign * numerator / max(divisor, 1)
        self.denominator = sign * denominator / max(divisor, 1)
    }

    /// Parses "3", "-1/2", "0.5" (decimals become exact fractions).
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 2, let p = Int(parts[0]), let q = Int(parts[1]) {
            try self.init(p, q)
        } else if parts.count == 1, let p = Int(trimmed) {
            try self.init(p)
        } else if parts.count == 1, trimmed.contains("."), let value = Double(trimmed), value.isFinite {
            let decimals = trimmed.split(separator: ".").last.map { $0.count } ?? 0
            guard decimals <= 12 else { throw ConvLabError.invalidArgument(name: "point", reason: "'\(text)' has too many decimals") }
            var scale = 1
            for _ in 0..<decimals { scale *= 10 }
            try self.init(Int((value * Double(scale)).rounded()), scale)
        } else {
            throw ConvLabError.invalidArgument(name: "point", reason: "'\(text)' is not an integer, p/q or decimal")
        }
    }

    static let overflow = ConvLabError.invalidArgument(
        name: "interpolation points", reason: "exact arithmetic overflowed 64 bits; use smaller points")

    public static let zero: Rational = 0
    public static let one: Rational = 1

    public var isZero: Bool { numerator == 0 }
    public var doubleValue: Double { Double(numerator) / Double(denominator) }

    public var description: String { denominator == 1 ? "\(numerator)" : "\(numerator)/\(denominator)" }

    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    private static func checked(_ result: (partialValue: Int, overflow: Bool)) throws -> Int {
        if result.overflow { throw overflow }
        return result.partialValue
    }

    public func adding(_ other: Rational) throws -> Rational {
        let divisor = Rational.gcd(denominator, other.denominator)
        let left = try Rational.checked(numerator.multipliedReportingOverflow(by: other.denominator / divisor))
        let right = try Rational.checked(other.numerator.multipliedReportingOverflow(by: denominator / divisor))
        let sum = try Rational.checked(left.addingReportingOverflow(right))
        let common = try Rational.checked(denominator.multipliedReportingOverflow(by: other.denominator / divisor))
        return try Rational(sum, common)
    }

    public func subtracting(_ other: Rational) throws -> Rational { try adding(other.negated()) }

    public func multiplied(by other: Rational) throws -> Rational {
        // Cross-reduce first so intermediate products stay small.
        let g1 = max(Rational.gcd(abs(numerator), other.denominator), 1)
        let g2 = max(Rational.gcd(abs(other.numerator), denominator), 1)
        let p = try Rational.checked((numerator / g1).multipliedReportingOverflow(by: other.numerator / g2))
        let q = try Rational.checked((denominator / g2).multipliedReportingOverflow(by: other.denominator / g1))
        return try Rational(p, q)
    }

    public func divided(by other: Rational) throws -> Rational {
        guard !other.isZero else { throw ConvLabError.invalidArgument(name: "fraction", reason: "division by zero") }
        return try multiplied(by: Rational(other.denominator, other.numerator))
    }

    public func negated() -> Rational { Rational(unchecked: -numerator, denominator) }

    public func power(_ exponent: Int) throws -> Rational {
        var result = Rational.one
        for _ in 0..<exponent { result = try result.multiplied(by: self) }
        return result
    }

    private init(unchecked numerator: Int, _ denominator: Int) {
        self.numerator = numerator
        self.denominator = denominator
    }

    public static func < (lhs: Rational, rhs: Rational) -> Bool { lhs.doubleValue < rhs.doubleValue }
}

import Foundation
