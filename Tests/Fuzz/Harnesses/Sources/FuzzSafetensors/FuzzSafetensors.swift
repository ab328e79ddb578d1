import FuzzSupport
import QsentCore

private let scratch = ScratchFile(suffix: ".safetensors")

/// A .safetensors file (the reader maps a path, so the input is written to a scratch file).
/// Invariants: a refusal is a SafetensorsError; an accepted file's tensors lie inside the file
/// after the 8-byte length and the header, do not overlap, and hold exactly shape × dtype-size
/// bytes; every float tensor decodes to elementCount floats (which reads its whole range);
/// Checkpoint(files:) refuses only with a SafetensorsError.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    scratch.write(fuzzBytes(data, size))
    let f: SafetensorsFile
    do { f = try SafetensorsFile(path: scratch.path) } catch {
        fuzzCheck(error is SafetensorsError, "untyped refusal \(type(of: error)): \(error)")
        return 0
    }
    var end = 8
    for t in f.tensors.values.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
        fuzzCheck(t.range.lowerBound >= end && t.range.upperBound <= f.file.count,
                  "tensor \(t.name) range \(t.range) overlaps [0, \(end)) or leaves the \(f.file.count)-byte file")
        fuzzCheck(t.range.count == t.elementCount * t.dtype.size, "tensor \(t.name): \(t.range.count) bytes for \(t.shape) \(t.dtype)")
        if !t.range.isEmpty { end = t.range.upperBound }
        if t.dtype.isFloatWeight {
            do {
                let v = try t.floats()
                fuzzCheck(v.count == t.elementCount, "tensor \(t.name): \(v.count) floats for \(t.elementCount) elements")
            } catch {
                fuzzCheck(error is SafetensorsError, "floats() threw an untyped \(type(of: error)): \(error)")
            }
        }
    }
    do { _ = try Checkpoint(files: [f]) } catch {
        fuzzCheck(error is SafetensorsError, "Checkpoint(files:) threw an untyped \(type(of: error)): \(error)")
    }
    return 0
}
