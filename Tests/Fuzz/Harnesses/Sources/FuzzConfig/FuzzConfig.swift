import Foundation
import FuzzSupport
import QsentCore

/// A Hugging Face config.json, parsed as `qsent-quantize` and the HF-folder loader do
/// (ModelConfig.parse over HFJSON).
/// Invariants: a refusal is a ConfigError naming the file; an accepted config has no `problem`
/// (the rule both loaders share: sizes within ModelConfig.Limits, heads dividing dim, a
/// non-empty label per class), and survives the Codable round trip the blob's meta section
/// stores it with.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    let c: ModelConfig
    do { c = try ModelConfig.parse(Data(bytes), file: "config.json") } catch {
        fuzzCheck((error as? ConfigError)?.file == "config.json", "untyped refusal \(type(of: error)): \(error)")
        return 0
    }
    fuzzCheck(c.problem == nil, "accepted a config with a problem (\(c.problem ?? "")): \(c)")
    fuzzCheck(c.dim % c.heads == 0 && c.headDim > 0, "accepted heads \(c.heads) for dim \(c.dim)")
    let back = (try? JSONEncoder().encode(c)).flatMap { try? JSONDecoder().decode(ModelConfig.self, from: $0) }
    fuzzCheck(back == c, "config does not survive the Codable round trip: \(c) -> \(back.map { "\($0)" } ?? "error")")
    return 0
}
