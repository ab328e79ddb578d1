import Foundation
import FuzzSupport
import QsentCore

private let scratch = ScratchFile(suffix: ".qsent")

/// A .qsent blob (the reader maps a path, so the input goes to a scratch file), as the daemon
/// opens it on start and on reload: Blob, its vocabulary, then the engine's model load and one
/// classification.
/// Every iteration opens the input twice: as it is (so the checksum checks themselves are
/// fuzzed), then with every checksum repaired (header, section table, each section in range;
/// layout in docs/FORMAT.md), so mutations reach the table, meta JSON, vocabulary and weights.
/// Loads the committed seed blob once before the first input, so one-time tables (normalizer
/// maps, kernels) are built outside libFuzzer's per-input -timeout.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    let seed = packageRoot.appendingPathComponent("Tests/Fuzz/corpus/blob/tiny.qsent").path
    if let b = FileManager.default.contents(atPath: seed) { load([UInt8](b)) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBlob(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let raw = fuzzBytes(data, size)
    load(raw)
    let fixed = repairChecksums(raw)
    if fixed != raw { load(fixed) }
    return 0
}

private func load(_ bytes: [UInt8]) {
    scratch.write(bytes)
    guard let blob = try? Blob(path: scratch.path) else { return }
    _ = try? blob.tokenizer()
    guard let engine = try? Engine(path: scratch.path, options: EngineOptions(threads: 1)) else { return }
    let r = engine.classify(["a fuzzed blob"])
    fuzzCheck(r.count == 1 && r[0].logits.count == engine.info.labels.count,
              "classify gave \(r.count) results / \(r.first?.logits.count ?? -1) logits for \(engine.info.labels.count) labels")
}

/// Header: [40] XXH64(table), [48] XXH64(header[0..<48]); table at [32] with [24] entries of
/// 128 bytes, each with offset [88], size [96] and XXH64(section) [104].
private func repairChecksums(_ input: [UInt8]) -> [UInt8] {
    var b = input
    let header = 64, entry = 128
    guard b.count >= header else { return b }
    let count = Int(min(loadLE32(b, 24), 100_000))
    let tableAt = loadLE64(b, 32)
    guard tableAt == UInt64(header), header + count * entry <= b.count else { return b }
    for i in 0..<count {
        let at = header + i * entry
        let off = loadLE64(b, at + 88), size = loadLE64(b, at + 96)
        guard off <= UInt64(b.count), size <= UInt64(b.count) - off else { continue }
        storeLE64(&b, at + 104, XXH64.hash(Array(b[Int(off)..<Int(off + size)])))
    }
    storeLE64(&b, 40, XXH64.hash(Array(b[header..<(header + count * entry)])))
    storeLE64(&b, 48, XXH64.hash(Array(b[0..<48])))
    return b
}
