import Foundation
import FuzzSupport
import QsentCore
import QsentTokenizer

/// The committed model's vocabulary under four normalizer settings (the blob's own, cased,
/// lowercase without accent stripping, and no clean-text / CJK handling). Built once per process.
/// $QSENT_FUZZ_MODEL overrides the blob.
private let tokenizers: [WordPieceTokenizer] = {
    let path = ProcessInfo.processInfo.environment["QSENT_FUZZ_MODEL"]
        ?? packageRoot.appendingPathComponent("Quantizer/Models/distilbert-h384-imdb.qsent").path
    do {
        let base = try Blob(path: path).tokenizer()
        let v = base.vocabulary
        return [
            base,
            try WordPieceTokenizer(vocabulary: v, settings: TokenizerSettings(lowercase: false)),
            try WordPieceTokenizer(vocabulary: v, settings: TokenizerSettings(lowercase: true, stripAccents: false)),
            try WordPieceTokenizer(vocabulary: v, settings: TokenizerSettings(cleanText: false, handleChineseChars: false,
                                                                              maxInputCharsPerWord: 8)),
        ]
    } catch {
        fatalError("cannot load the fuzz tokenizer from \(path): \(error)")
    }
}()

/// Builds the tokenizers before the first input (libFuzzer's -timeout does not cover this).
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    _ = tokenizers.count
    return 0
}

/// Byte 0 picks the settings, byte 1 the token limit (2...257); the rest is the text, decoded
/// as the daemon would after its UTF-8 check (invalid sequences become U+FFFD here).
/// Invariants: ids are in the vocabulary, framed by [CLS] ... [SEP], and a truncated encoding
/// is the untruncated one cut to the limit (same pieces, same untruncated count).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    guard bytes.count >= 2 else { return 0 }
    let tok = tokenizers[Int(bytes[0]) % tokenizers.count]
    let limit = Int(bytes[1]) + 2
    let text = String(decoding: bytes[2...], as: UTF8.self)
    let full = tok.encode(text, maxTokens: Int.max)
    let cut = tok.encode(text, maxTokens: limit)
    let n = Int32(tok.vocabulary.count)
    fuzzCheck(full.ids.count == full.nTokens, "untruncated encoding has \(full.ids.count) ids, nTokens \(full.nTokens)")
    fuzzCheck(full.ids.allSatisfy { $0 >= 0 && $0 < n }, "id out of vocabulary")
    fuzzCheck(full.ids.first == tok.clsId && full.ids.last == tok.sepId, "encoding is not [CLS] ... [SEP]")
    fuzzCheck(cut.nTokens == full.nTokens, "truncation changed nTokens \(full.nTokens) -> \(cut.nTokens)")
    fuzzCheck(cut.ids.count == min(full.nTokens, limit), "truncated to \(cut.ids.count), limit \(limit), total \(full.nTokens)")
    fuzzCheck(Array(cut.ids.dropLast()) == Array(full.ids.prefix(cut.ids.count - 1)) && cut.ids.last == tok.sepId,
              "truncated encoding is not a prefix of the full one + [SEP]")
    return 0
}
