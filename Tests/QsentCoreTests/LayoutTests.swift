import CKernels
import QsentCore
import XCTest

/// The Swift statements of the layouts agree with the C kernels and with docs/FORMAT.md.
final class LayoutTests: XCTestCase {
    /// PackedS8's padding rule is the one qk_pack_s8 packs with.
    func testPackedShapeMatchesTheKernels() {
        for n in [1, 2, 15, 16, 17, 31, 32, 33, 384, 1152, 1536] {
            for k in [1, 2, 3, 4, 5, 7, 8, 384, 1536] {
                XCTAssertEqual(PackedS8.shape(n: n, k: k).reduce(1, *), qk_packed_s8_size(Int32(n), Int32(k)), "n \(n) k \(k)")
            }
        }
        XCTAssertEqual(PackedS8.shape(n: 2, k: 5), [16, 8])
    }

    /// The layer table gives docs/FORMAT.md's shapes and section names.
    func testLayerTableMatchesTheFormat() throws {
        let c = ModelConfig(architecture: .distilbert, dim: 384, layers: 6, heads: 12, hidden: 1536, vocabSize: 30522,
                            maxPositions: 512, typeVocabSize: 0, activation: .gelu, layerNormEps: 1e-12, labels: ["a", "b"])
        XCTAssertEqual(LayerTensor.allCases.map { $0.section(layer: 3) },
                       ["layer.3.qkv", "layer.3.out", "layer.3.attn_norm", "layer.3.ffn1", "layer.3.ffn2", "layer.3.out_norm"])
        XCTAssertEqual(LayerTensor.allCases.map { $0.shape(c) },
                       [.linear(n: 1152, k: 384), .linear(n: 384, k: 384), .norm(dim: 384),
                        .linear(n: 1536, k: 384), .linear(n: 384, k: 1536), .norm(dim: 384)])
        // A layer built from the table and mapped keeps every role in place.
        let layer = LayerTensors<String, String>(config: c, linear: { role, n, k in "\(role)\(n)x\(k)" }, norm: { role, d in "\(role)\(d)" })
        XCTAssertEqual([layer.qkv, layer.out, layer.attnNorm, layer.ffn1, layer.ffn2, layer.outNorm],
                       ["qkv1152x384", "out384x384", "attnNorm384", "ffn11536x384", "ffn2384x1536", "outNorm384"])
        var visited: [String] = []
        layer.map(linear: { "L:\($1)" }, norm: { "N:\($1)" }).forEach(linear: { visited.append("\($0)=\($1)") }, norm: { visited.append("\($0)=\($1)") })
        XCTAssertEqual(visited, ["qkv=L:qkv1152x384", "out=L:out384x384", "attnNorm=N:attnNorm384",
                                 "ffn1=L:ffn11536x384", "ffn2=L:ffn2384x1536", "outNorm=N:outNorm384"])
    }
}
