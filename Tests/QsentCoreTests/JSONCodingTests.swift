import Foundation
import QsentCore
import QsentTokenizer
import XCTest

/// JSONCoding (no Foundation) against Foundation's JSONEncoder/JSONDecoder, which wrote and
/// read the blob's meta section before: same bytes out, same values in.
final class JSONCodingTests: XCTestCase {
    func foundationBytes<T: Encodable>(_ v: T) throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Array(try enc.encode(v))
    }

    func metas() -> [BlobMeta] {
        let distil = ModelConfig(architecture: .distilbert, dim: 384, layers: 6, heads: 12, hidden: 1536, vocabSize: 30522,
                                 maxPositions: 512, typeVocabSize: 0, activation: .gelu, layerNormEps: 1e-12,
                                 labels: ["NEGATIVE", "POSITIVE"])
        let bert = ModelConfig(architecture: .bert, dim: 64, layers: 2, heads: 4, hidden: 37, vocabSize: 99,
                               maxPositions: 40, typeVocabSize: 2, activation: .relu, layerNormEps: 1.25e-5,
                               labels: ["a/b", "ünï \"q\"", "tab\there", "nl\n\u{01}", "😀", "2.0"])
        var odd = TokenizerSettings(lowercase: false, stripAccents: nil, unkToken: "<unk>", maskToken: nil)
        odd.maxInputCharsPerWord = 7
        return [
            BlobMeta(modelName: "distilbert-h384-imdb", config: distil, maxTokens: 384, tokenizer: TokenizerSettings(),
                     quantization: ["scheme": "int8 / per-row", "quantizer": "qsent-quantize 0.1.0"]),
            BlobMeta(modelName: "x/y \\ z", config: bert, maxTokens: 2, tokenizer: odd, quantization: [:]),
        ]
    }

    func testEncodeIsFoundationsSortedKeysOutput() throws {
        for m in metas() {
            XCTAssertEqual(String(decoding: try JSONCoding.encode(m), as: UTF8.self),
                           String(decoding: try foundationBytes(m), as: UTF8.self))
        }
        for eps: Float in [1e-12, 1e-5, 0.1, 2, 1e30, 3.4028235e38, Float.leastNonzeroMagnitude] {
            var c = metas()[0].config
            c.layerNormEps = eps
            XCTAssertEqual(try JSONCoding.encode(c), try foundationBytes(c), "eps \(eps)")
        }
    }

    func testDecodeRoundTripsAndAgreesWithFoundation() throws {
        for m in metas() {
            let bytes = try foundationBytes(m)
            XCTAssertEqual(try JSONCoding.decode(BlobMeta.self, from: bytes), m)
            XCTAssertEqual(try JSONCoding.decode(BlobMeta.self, from: bytes), try JSONDecoder().decode(BlobMeta.self, from: Data(bytes)))
        }
        // Missing tokenizer keys take their defaults, as with JSONDecoder.
        let s = try JSONCoding.decode(TokenizerSettings.self, from: Array(#"{"lowercase":false}"#.utf8))
        XCTAssertEqual(s, try JSONDecoder().decode(TokenizerSettings.self, from: Data(#"{"lowercase":false}"#.utf8)))
    }

    func testDecodeErrorsNameThePath() {
        let good = String(decoding: try! foundationBytes(metas()[0]), as: UTF8.self)
        let cases: [(String, String)] = [
            (good.replacingOccurrences(of: #""dim":384"#, with: #""dim":"384""#), "config.dim"),
            (good.replacingOccurrences(of: #""dim":384,"#, with: ""), "config.dim"),
            (good.replacingOccurrences(of: #""maxTokens":384"#, with: #""maxTokens":3.5"#), "maxTokens"),
            (good.replacingOccurrences(of: #""architecture":"DistilBertForSequenceClassification""#, with: #""architecture":"GPT""#), "config.architecture"),
            (good.replacingOccurrences(of: #""labels":["NEGATIVE""#, with: #""labels":[7"#), "config.labels.[0]"),
            ("{\"config\":", ""),
        ]
        for (text, path) in cases {
            XCTAssertThrowsError(try JSONCoding.decode(BlobMeta.self, from: Array(text.utf8)), text) { e in
                guard let f = e as? JSONCoding.Failure else { return XCTFail("\(e)") }
                XCTAssertEqual(f.path, path, "\(f)")
            }
        }
    }
}
