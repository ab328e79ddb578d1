import Foundation
import QsentCore
import XCTest

final class ModelConfigTests: XCTestCase {
    let distil = """
        {"architectures":["DistilBertForSequenceClassification"],"model_type":"distilbert","dim":384,"n_layers":6,
         "n_heads":12,"hidden_dim":1536,"vocab_size":30522,"max_position_embeddings":512,"activation":"gelu",
         "sinusoidal_pos_embds":false,"id2label":{"0":"NEGATIVE","1":"POSITIVE"},"label2id":{"NEGATIVE":0,"POSITIVE":1}}
        """

    func parse(_ s: String) throws -> ModelConfig { try ModelConfig.parse(Data(s.utf8), file: "/x/config.json") }

    func expectError(_ s: String, containing needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(s), file: file, line: line) { e in
            guard let c = e as? ConfigError else { return XCTFail("\(e)", file: file, line: line) }
            XCTAssertEqual(c.file, "/x/config.json", file: file, line: line)
            XCTAssertTrue(c.description.contains(needle), "'\(c)' lacks '\(needle)'", file: file, line: line)
        }
    }

    func testDistilBert() throws {
        let c = try parse(distil)
        XCTAssertEqual(c.architecture, .distilbert)
        XCTAssertEqual([c.dim, c.layers, c.heads, c.hidden, c.headDim], [384, 6, 12, 1536, 32])
        XCTAssertEqual(c.labels, ["NEGATIVE", "POSITIVE"])
    }

    func testSharedModelConfig() throws {
        let m = try SharedData.requireModel()
        let c = try ModelConfig.load(directory: m.path)
        XCTAssertEqual(c.dim, 384)
        XCTAssertEqual(c.labels, ["NEGATIVE", "POSITIVE"])
    }

    func testBert() throws {
        let c = try parse("""
            {"architectures":["BertForSequenceClassification"],"hidden_size":128,"num_hidden_layers":2,
             "num_attention_heads":4,"intermediate_size":512,"vocab_size":1000,"max_position_embeddings":64,
             "type_vocab_size":2,"hidden_act":"gelu","layer_norm_eps":1e-12,"num_labels":3}
            """)
        XCTAssertEqual(c.architecture, .bert)
        XCTAssertEqual(c.labels, ["LABEL_0", "LABEL_1", "LABEL_2"])
        XCTAssertEqual(c.typeVocabSize, 2)
    }

    func testRefusals() {
        expectError(distil.replacingOccurrences(of: "\"sinusoidal_pos_embds\":false", with: "\"sinusoidal_pos_embds\":true"), containing: "sinusoidal_pos_embds")
        expectError(distil.replacingOccurrences(of: "DistilBertForSequenceClassification", with: "DistilBertForMaskedLM"), containing: "not supported")
        expectError(distil.replacingOccurrences(of: "\"activation\":\"gelu\"", with: "\"activation\":\"swish\""), containing: "activation")
        expectError(distil.replacingOccurrences(of: "\"n_heads\":12", with: "\"n_heads\":7"), containing: "divisible")
        expectError(distil.replacingOccurrences(of: "\"dim\":384,", with: ""), containing: "missing 'dim'")
        expectError(distil.replacingOccurrences(of: "\"dim\":384", with: "\"dim\":\"384\""), containing: "'dim'")
        expectError(distil.replacingOccurrences(of: "\"dim\":384", with: "\"dim\":-384"), containing: "'dim'")
        expectError(distil.replacingOccurrences(of: "{\"0\":\"NEGATIVE\",\"1\":\"POSITIVE\"}", with: "{\"0\":\"NEGATIVE\",\"2\":\"POSITIVE\"}"), containing: "id2label")
        expectError(distil.replacingOccurrences(of: "\"POSITIVE\":1}", with: "\"POSITIVE\":0}"), containing: "label2id")
        expectError("{\"model_type\":\"gpt2\"}", containing: "qsent runs")
        expectError("[1,2,3]", containing: "JSON object")
        expectError("{\"dim\":", containing: "JSON object")
        expectError("""
            {"architectures":["BertForSequenceClassification"],"hidden_size":128,"num_hidden_layers":2,
             "num_attention_heads":4,"intermediate_size":512,"vocab_size":1000,"max_position_embeddings":64,
             "hidden_act":"gelu_new"}
            """, containing: "gelu_new")
        expectError("""
            {"architectures":["BertForSequenceClassification"],"hidden_size":128,"num_hidden_layers":2,
             "num_attention_heads":4,"intermediate_size":512,"vocab_size":1000,"max_position_embeddings":64,
             "position_embedding_type":"relative_key"}
            """, containing: "relative_key")
    }

    func testMissingConfigFile() {
        XCTAssertThrowsError(try ModelConfig.load(directory: "/nonexistent-qsent")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent-qsent/config.json"), "\(e)")
        }
    }

    /// Issue 8 item 6: the HF config loader refuses nonsense and absurd sizes, with the file
    /// named and an upper bound stated.
    func testNonsenseAndAbsurdSizesAreRefused() {
        func with(_ from: String, _ to: String) -> String {
            XCTAssertTrue(distil.contains(from))
            return distil.replacingOccurrences(of: from, with: to)
        }
        expectError(with("\"n_layers\":6", "\"n_layers\":1000000000"), containing: "layers is 1000000000, outside 1…256")
        expectError(with("\"n_layers\":6", "\"n_layers\":-1"), containing: "'n_layers' must be a positive integer")
        expectError(with("\"n_heads\":12", "\"n_heads\":0"), containing: "'n_heads' must be a positive integer")
        expectError(with("\"n_heads\":12", "\"n_heads\":-12"), containing: "'n_heads' must be a positive integer")
        expectError(with("\"n_heads\":12", "\"n_heads\":7"), containing: "dim 384 is not divisible by 7 heads")
        expectError(with("\"n_heads\":12", "\"n_heads\":768"), containing: "heads is 768, outside 1…384")
        expectError(with("\"dim\":384", "\"dim\":1073741824"), containing: "dim is 1073741824, outside 1…16384")
        expectError(with("\"vocab_size\":30522", "\"vocab_size\":4000000000"), containing: "vocab size is 4000000000")
        expectError(with("\"hidden_dim\":1536", "\"hidden_dim\":100000000"), containing: "hidden (FFN size) is 100000000")
        expectError(with("\"max_position_embeddings\":512", "\"max_position_embeddings\":1"), containing: "max positions is 1")
        expectError(with("\"n_layers\":6", "\"n_layers\":true"), containing: "'n_layers' must be a positive integer")
    }

    /// Found by Tests/Fuzz (config harness, corpus/config/crash-num-labels.json): a huge
    /// num_labels without id2label made the parser build 21.7e9 label names (ASan: out of memory)
    /// before the label limit was checked.
    func testHugeNumLabelsIsRefusedBeforeAllocating() {
        let s = """
            {"model_type":"distilbert","dim":64,"n_heads":4,"n_layers":1,"hidden_dim":128,"vocab_size":100,
             "max_position_embeddings":64,"num_labels":21716655373}
            """
        expectError(s, containing: "num_labels is 21716655373, outside 1…65536")
    }
}
