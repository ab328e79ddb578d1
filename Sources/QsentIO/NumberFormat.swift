import CQsentIO

/// printf's `%.Nf`, `%.Ne` and `%.Ng` for the command-line tools' human output, from the C
/// library's snprintf (Foundation's `String(format:)` would bring ICU into the static binaries).
/// JSON numbers are written elsewhere, in the shortest round-trip form (`JSONWriter.number`).
public enum NumberFormat {
    /// `%.{decimals}f`
    public static func fixed(_ x: Double, _ decimals: Int) -> String { format("f", decimals, x) }
    /// `%.{decimals}e`
    public static func scientific(_ x: Double, _ decimals: Int) -> String { format("e", decimals, x) }
    /// `%.{significant}g`
    public static func general(_ x: Double, _ significant: Int) -> String { format("g", significant, x) }

    /// `%-{width}s` (left) or `%{width}s`: pads with spaces to `width` characters.
    public static func padded(_ s: String, to width: Int, left: Bool = true) -> String {
        let pad = String(repeating: " ", count: max(0, width - s.count))
        return left ? s + pad : pad + s
    }

    private static func format(_ conversion: Unicode.Scalar, _ precision: Int, _ x: Double) -> String {
        precondition(precision >= 0 && precision <= 400, "precision \(precision) out of 0...400")
        let c = CChar(truncatingIfNeeded: conversion.value)
        // %.400f of the largest double is 309 + 1 + 400 characters; 1 KiB always suffices.
        return String(unsafeUninitializedCapacity: 1024) { buf in
            buf.withMemoryRebound(to: CChar.self) { cbuf in
                let n = cqsentio_format_double(cbuf.baseAddress, cbuf.count, c, Int32(precision), x)
                precondition(n >= 0 && n < cbuf.count, "snprintf failed")
                return Int(n)
            }
        }
    }
}
