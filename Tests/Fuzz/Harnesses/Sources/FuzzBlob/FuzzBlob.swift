import Foundation
import FuzzSupport
import QsentCore
import QsentTokenizer

private let scratch = ScratchFile(suffix: ".qsent")

/// A .qsent blob (the reader maps a path, so the input goes to a scratch file), as the daemon
/// opens it on start and on reload: Blob, its vocabulary, then the engine's model load and one
/// classification.
/// Every iteration opens the input twice: as it is (so the checksum checks themselves are
/// fuzzed), then with every checksum repaired (layout from BlobFormat.Header/Entry), so
/// mutations reach the table, meta JSON (the config), vocabulary and weights.
/// Invariants: every failure is a typed error of the loaders (BlobError, TokenizerError,
/// EngineError); an accepted blob's sections lie inside the file after the table, do not
/// overlap, have the size their shape says, and its config has no `problem`; a loaded engine
/// answers with one label per class and at most maxTokens tokens.
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

private func typed(_ error: any Error, _ step: String) {
    fuzzCheck(error is BlobError || error is TokenizerError || error is EngineError,
              "\(step) threw an untyped \(type(of: error)): \(error)")
}

private func load(_ bytes: [UInt8]) {
    scratch.write(bytes)
    let blob: Blob
    do { blob = try Blob(path: scratch.path) } catch { return typed(error, "Blob(path:)") }
    let table = blob.sectionTable
    let dataStart = BlobFormat.entryOffset(table.count)
    var end = dataStart
    for s in table {
        let width = s.dtype == .f32 || s.dtype == .i32 ? 4 : 1
        fuzzCheck(s.offset >= end && s.size <= bytes.count - s.offset,
                  "section \(s.name) at \(s.offset)+\(s.size) overlaps the table or its predecessor (ends \(end)) or leaves the \(bytes.count)-byte file")
        fuzzCheck(s.size == s.shape.reduce(1, *) * width, "section \(s.name): \(s.size) bytes for shape \(s.shape)")
        end = s.offset + s.size
    }
    fuzzCheck(blob.meta.config.problem == nil, "accepted a blob whose config has a problem: \(blob.meta.config)")
    do { _ = try blob.tokenizer() } catch { return typed(error, "Blob.tokenizer()") }
    let engine: Engine
    do { engine = try Engine(path: scratch.path, options: EngineOptions(threads: 1)) } catch { return typed(error, "Engine(path:)") }
    let r = engine.classify(["a fuzzed blob"])
    let labels = engine.info.labels.count
    fuzzCheck(r.count == 1 && r[0].logits.count == labels && (0..<labels).contains(r[0].labelId)
              && r[0].tokens <= engine.info.maxTokens,
              "classify gave \(r.count) results / \(r.first.map { "\($0)" } ?? "none") for \(labels) labels")
}

/// The input with every checksum recomputed: each in-range section's, the table's, the header's.
private func repairChecksums(_ input: [UInt8]) -> [UInt8] {
    typealias H = BlobFormat.Header
    typealias E = BlobFormat.Entry
    var b = input
    guard b.count >= BlobFormat.headerSize else { return b }
    let count = Int(min(loadLE32(b, H.sectionCount.offset), 100_000))
    guard loadLE64(b, H.tableOffset.offset) == UInt64(BlobFormat.headerSize), BlobFormat.entryOffset(count) <= b.count else { return b }
    for i in 0..<count {
        let at = BlobFormat.entryOffset(i)
        let off = loadLE64(b, at + E.offset.offset), size = loadLE64(b, at + E.size.offset)
        guard off <= UInt64(b.count), size <= UInt64(b.count) - off else { continue }
        storeLE64(&b, at + E.checksum.offset, XXH64.hash(Array(b[Int(off)..<Int(off + size)])))
    }
    storeLE64(&b, H.tableChecksum.offset, XXH64.hash(Array(b[BlobFormat.headerSize..<BlobFormat.entryOffset(count)])))
    storeLE64(&b, H.headerChecksum.offset, XXH64.hash(Array(b[H.checksummed])))
    return b
}
