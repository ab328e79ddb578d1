import Foundation
import FuzzSupport
import QsentCore

/// A Hugging Face config.json, parsed as `qsent-quantize` and the HF-folder loader do.
/// Invariant: an accepted config has positive sizes and a label per class.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    guard let c = try? ModelConfig.parse(Data(bytes), file: "config.json") else { return 0 }
    fuzzCheck(c.dim > 0 && c.layers > 0 && c.heads > 0 && c.hidden > 0 && c.vocabSize > 0 && c.maxPositions > 0,
              "accepted non-positive sizes: \(c)")
    fuzzCheck(!c.labels.isEmpty, "accepted a config without labels: \(c)")
    return 0
}
