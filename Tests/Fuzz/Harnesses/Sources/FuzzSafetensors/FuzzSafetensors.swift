import FuzzSupport
import QsentCore

private let scratch = ScratchFile(suffix: ".safetensors")

/// A .safetensors file (the reader maps a path, so the input is written to a scratch file).
/// Every accepted tensor is then decoded to floats, which reads its whole byte range: an
/// accepted header must describe data that lies inside the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    scratch.write(fuzzBytes(data, size))
    guard let f = try? SafetensorsFile(path: scratch.path) else { return 0 }
    for t in f.tensors.values {
        fuzzCheck(t.range.lowerBound >= 8 && t.range.upperBound <= f.file.count, "tensor \(t.name) range \(t.range) outside the file")
        if t.dtype.isFloatWeight, let v = try? t.floats() {
            fuzzCheck(v.count == t.elementCount, "tensor \(t.name): \(v.count) floats for \(t.elementCount) elements")
        }
    }
    _ = try? Checkpoint(files: [f])
    return 0
}
