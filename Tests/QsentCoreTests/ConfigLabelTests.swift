import Foundation
import QsentCore
import XCTest

/// Issue 8 finding 6, labels: the HF config loader refuses label sets the engine cannot answer
/// with (none, too many, unnamed, or a count that disagrees with the names), naming the file.
/// (ModelConfigTests covers the geometry; BlobTests the blob loader's copy of these rules.)
final class ConfigLabelTests: XCTestCase {
    static let base = """
        {"architectures":["DistilBertForSequenceClassification"],"model_type":"distilbert","dim":384,"n_layers":6,
         "n_heads":12,"hidden_dim":1536,"vocab_size":30522,"max_position_embeddings":512,"activation":"gelu",
         LABELS}
        """

    func refusal(_ labels: String) -> String? {
        let json = Self.base.replacingOccurrences(of: "LABELS", with: labels)
        do {
            _ = try ModelConfig.parse(Data(json.utf8), file: "/x/config.json")
            return nil
        } catch let e as ConfigError {
            XCTAssertEqual(e.file, "/x/config.json")
            return e.description
        } catch {
            return "not a ConfigError: \(error)"
        }
    }

    func testNonsenseLabelsAreRefused() {
        let cases: [(String, String)] = [
            (#""num_labels":0"#, "'num_labels' must be a positive integer"),
            (#""num_labels":-2"#, "'num_labels' must be a positive integer"),
            (#""num_labels":100000"#, "labels is 100000, outside 1…65536"),
            (#""id2label":{}"#, "'id2label' must be a non-empty object"),
            (#""id2label":[]"#, "'id2label' must be a non-empty object"),
            (#""id2label":{"0":"NEGATIVE","1":""}"#, "id2label[1] must be a non-empty string"),
            (#""id2label":{"0":"NEGATIVE","1":7}"#, "id2label[1] must be a non-empty string"),
            (#""id2label":{"0":"NEGATIVE","-1":"POSITIVE"}"#, "id2label keys must be the ids 0..<2"),
            (#""id2label":{"0":"NEGATIVE","1":"POSITIVE"},"num_labels":3"#, "num_labels 3 disagrees with id2label's 2 labels"),
        ]
        for (labels, needle) in cases {
            let message = refusal(labels)
            XCTAssertTrue(message?.contains(needle) == true, "\(labels): '\(message ?? "accepted")' lacks '\(needle)'")
        }
        // The same config with sane labels parses.
        XCTAssertNil(refusal(#""id2label":{"0":"NEGATIVE","1":"POSITIVE"},"num_labels":2"#))
        XCTAssertNil(refusal(#""num_labels":3"#))
    }
}
