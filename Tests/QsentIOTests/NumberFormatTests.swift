import Foundation
import QsentIO
import XCTest

/// NumberFormat (the C library's snprintf through CQsentIO) against Foundation's String(format:)
/// (tests only), and the exact-rounding cases that printf gets right.
final class NumberFormatTests: XCTestCase {
    static let edges: [Double] = [
        0, -0.0, 0.5, 1.5, 2.5, -2.5, 0.125, 0.375, 2.675, 1.005, 9.9995, 99.95, 0.05, 0.00005, 1e-5, 123456.789,
        0.99995, 9.5, 10.5, 1e15, 1e21, 1.7976931348623157e308, Double.leastNonzeroMagnitude, 2.2250738585072014e-308,
        0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 1e-300, 6.02214076e23, 4.9999999999999996e-5,
    ]

    /// The edges, exact ties at 4 decimals (k/20000 is binary-exact only for k a multiple of
    /// 625) and numbers of everyday size (scores, latencies, sizes) across 60 binary octaves.
    func values() -> [Double] {
        var xs = Self.edges
        for k in stride(from: 0, through: 20000, by: 37) { xs.append(Double(k) / 20000) }
        for e in -30...30 {
            for m in [1.0, 1.1, 1.25, 1.5, 1.7, 1.999] {
                xs.append(Double(sign: .plus, exponent: e, significand: m))
                xs.append(-Double(sign: .plus, exponent: e, significand: m) * 3)
            }
        }
        return xs
    }

    func testFixedMatchesPrintf() {
        for x in values() {
            for d in [0, 1, 2, 4, 6] {
                XCTAssertEqual(NumberFormat.fixed(x, d), String(format: "%.\(d)f", x), "%.\(d)f of \(x)")
            }
        }
        XCTAssertEqual(NumberFormat.fixed(0.125, 2), "0.12")
        XCTAssertEqual(NumberFormat.fixed(2.675, 2), "2.67")
        XCTAssertEqual(NumberFormat.fixed(-0.001, 2), "-0.00")
    }

    func testScientificMatchesPrintf() {
        for x in values() {
            for d in [0, 2, 5] {
                XCTAssertEqual(NumberFormat.scientific(x, d), String(format: "%.\(d)e", x), "%.\(d)e of \(x)")
            }
        }
    }

    func testGeneralMatchesPrintf() {
        for x in values() {
            for p in [0, 1, 3, 6] {
                XCTAssertEqual(NumberFormat.general(x, p), String(format: "%.\(p)g", x), "%.\(p)g of \(x)")
            }
        }
    }

    func testNonFiniteAndPadding() {
        XCTAssertEqual(NumberFormat.fixed(.infinity, 2), "inf")
        XCTAssertEqual(NumberFormat.fixed(-.infinity, 2), "-inf")
        XCTAssertEqual(NumberFormat.general(.nan, 3), "nan")
        XCTAssertEqual(NumberFormat.padded("ab", to: 5), "ab   ")
        XCTAssertEqual(NumberFormat.padded("ab", to: 5, left: false), "   ab")
        XCTAssertEqual(NumberFormat.padded("abcdef", to: 3), "abcdef")
    }
}
