import Foundation
import QsentProtocol
import XCTest

/// NumberFormat against glibc's printf (through Foundation's String(format:), tests only).
final class NumberFormatTests: XCTestCase {
    /// SplitMix64: seeded, so a failure reproduces.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let edges: [Double] = [
        0, -0.0, 0.5, 1.5, 2.5, -2.5, 0.125, 0.375, 2.675, 1.005, 9.9995, 99.95, 0.05, 0.00005, 1e-5, 123456.789,
        0.99995, 9.5, 10.5, 1e15, 1e21, 1.7976931348623157e308, Double.leastNonzeroMagnitude, 2.2250738585072014e-308,
        0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 1e-300, 6.02214076e23, 4.9999999999999996e-5,
    ]

    func values() -> [Double] {
        var rng = Seeded(state: 42)
        var xs = Self.edges
        for _ in 0..<3000 {
            // Any finite double, and numbers of everyday size (scores, latencies, sizes).
            let bits = rng.next()
            let any = Double(bitPattern: bits)
            if any.isFinite { xs.append(any) }
            xs.append(Double.random(in: -1000...1000, using: &rng) * Double(sign: .plus, exponent: Int.random(in: -30...30, using: &rng), significand: 1))
            // Exact ties at 4 decimals: k/20000 (binary-exact only when the denominator is 2^n).
            xs.append(Double(Int.random(in: 0...20000, using: &rng)) / 20000)
            xs.append(Double(Int.random(in: 0...4096, using: &rng)) / 4096)
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
