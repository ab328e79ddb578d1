// Random-weight Hugging Face models for parity tests, generated bit for bit identically to
// Tests/Fixtures/make_random_models.py, whose PyTorch FP32 logits are stored in
// Tests/Fixtures/random_models.json.
//
// THE GENERATOR (identical in make_random_models.py; keep the two in step)
// All integer arithmetic is on UInt64 modulo 2^64.
//   fnv1a64(name)  FNV-1a 64 over the UTF-8 bytes of the tensor name:
//                  h = 0xCBF29CE484222325; for each byte b: h = (h ^ b) &* 0x100000001B3.
//   mix64(z)       the SplitMix64 output function:
//                  z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
//                  z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
//                  return z ^ (z >> 31)
//   G              0x9E3779B97F4A7C15.
// For tensor `name` (n elements, row-major as PyTorch flattens) of a model with `modelSeed`:
//   seed = fnv1a64(name) ^ modelSeed
//   x_i  = mix64(seed &+ (i + 1) &* G)     i = 0 ..< n  (standard SplitMix64 stream from `seed`)
//   u_i  = Float(x_i >> 40) * 0x1p-24      exact in Float, u in [0, 1)
//   w_i  = (2 * u_i - 1) * scale           Float ops, one rounding (the multiply)
//   w_i  = w_i + offset                    only if offset != 0 (LayerNorm weights: offset 1)
// Scales and offsets are dyadic rationals (exact in Float). No fused multiply-add.
// Stored as F32 (w_i) or BF16 (round to nearest even, as torch casts float32 -> bfloat16):
//   bf16 = (b + 0x7FFF + ((b >> 16) & 1)) >> 16, b = w_i.bitPattern.
// Check values: checksum = sum_i mix64(UInt64(i) << 32 | stored_bits_i) (mod 2^64, hex),
// sum = Double sum of the stored values (diagnostic), first = first 4 stored bit patterns.
//
// Models:
//   distilbert768  DistilBertForSequenceClassification, dim 768, FFN 3072, 12 heads, 6 layers,
//                  vocab 30522, 512 positions, labels NEGATIVE/POSITIVE; model.safetensors, F32.
//   bert_small     BertForSequenceClassification, hidden 128, FFN 512, 4 heads, 2 layers,
//                  vocab 30522, 2 token types, pooler, labels anger/joy/neutral; sharded
//                  (model.safetensors.index.json + model-0000{1,2}-of-00002.safetensors), BF16.
//
// Usage in a test:
//   let dir = FileManager.default.temporaryDirectory.appendingPathComponent("m-\(UUID())")
//   try RandomModels.write("distilbert768", to: dir)         // dir is the HF folder itself
//   let fx = try RandomModels.fixture().model("distilbert768")
//   for c in fx.cases { /* run c.ids, compare with c.logits */ }

import Foundation
import QsentTokenizer

enum RandomModels {
    static let names = ["distilbert768", "bert_small"]

    struct ModelSpec {
        let name: String
        let arch: String  // "distilbert" | "bert"
        let seed: UInt64
        let dtype: String  // "F32" | "BF16"
        let dim: Int
        let hidden: Int
        let heads: Int
        let layers: Int
        let vocab: Int
        let maxPositions: Int
        let typeVocab: Int  // 0 for DistilBERT
        let labels: [String]
        /// Half-widths of the uniform distributions (see make_random_models.py MODELS).
        let scales: [String: Float]
        var sharded: Bool { dtype != "F32" }
    }

    struct TensorSpec: Equatable {
        let name: String
        let shape: [Int]
        let scale: Float
        let offset: Float
        let shard: Int
        var count: Int { shape.reduce(1, *) }
    }

    struct TensorCheck: Equatable {
        let name: String
        let checksum: String
        let sum: Double
        let first: [UInt32]
    }

    enum Failure: Error, CustomStringConvertible {
        case unknownModel(String)
        case fixtureMissing(String)
        case io(String)
        var description: String {
            switch self {
            case .unknownModel(let n):
                return "unknown random model '\(n)'; known: \(RandomModels.names.joined(separator: ", "))"
            case .fixtureMissing(let p):
                return "random-model fixture not found at \(p); regenerate it with "
                    + "Tests/Fixtures/make_random_models.py"
            case .io(let m): return m
            }
        }
    }

    // MARK: Specs (mirror MODELS / tensor_specs in make_random_models.py)

    static func spec(_ name: String) throws -> ModelSpec {
        switch name {
        case "distilbert768":
            return ModelSpec(
                name: name, arch: "distilbert", seed: 0x5153_454E_5400_0770, dtype: "F32",
                dim: 768, hidden: 3072, heads: 12, layers: 6, vocab: 30522, maxPositions: 512,
                typeVocab: 0, labels: ["NEGATIVE", "POSITIVE"],
                scales: [
                    "embedding": 0.125, "linear": 0.09375, "linear_wide": 0.046875,
                    "bias": 0.03125, "ln_weight": 0.125, "ln_bias": 0.0625,
                    "head_linear": 0.09375, "head_out": 0.25, "head_bias": 0.0625,
                ])
        case "bert_small":
            return ModelSpec(
                name: name, arch: "bert", seed: 0x5153_454E_5400_0128, dtype: "BF16",
                dim: 128, hidden: 512, heads: 4, layers: 2, vocab: 30522, maxPositions: 512,
                typeVocab: 2, labels: ["anger", "joy", "neutral"],
                scales: [
                    "embedding": 0.125, "linear": 0.21875, "linear_wide": 0.109375,
                    "bias": 0.03125, "ln_weight": 0.125, "ln_bias": 0.0625,
                    "head_linear": 0.21875, "head_out": 0.5, "head_bias": 0.0625,
                ])
        default:
            throw Failure.unknownModel(name)
        }
    }

    static func tensorSpecs(_ m: ModelSpec) -> [TensorSpec] {
        let sc = m.scales
        let D = m.dim, H = m.hidden, V = m.vocab, P = m.maxPositions, L = m.labels.count
        var specs: [TensorSpec] = []
        func lin(_ prefix: String, _ o: Int, _ i: Int, _ ws: Float, _ bs: Float, _ shard: Int = 1) {
            specs.append(TensorSpec(name: prefix + ".weight", shape: [o, i], scale: ws, offset: 0, shard: shard))
            specs.append(TensorSpec(name: prefix + ".bias", shape: [o], scale: bs, offset: 0, shard: shard))
        }
        func ln(_ prefix: String, _ shard: Int = 1) {
            specs.append(TensorSpec(name: prefix + ".weight", shape: [D], scale: sc["ln_weight"]!, offset: 1, shard: shard))
            specs.append(TensorSpec(name: prefix + ".bias", shape: [D], scale: sc["ln_bias"]!, offset: 0, shard: shard))
        }
        let emb = sc["embedding"]!, linear = sc["linear"]!, wide = sc["linear_wide"]!, bias = sc["bias"]!
        if m.arch == "distilbert" {
            let e = "distilbert.embeddings."
            specs.append(TensorSpec(name: e + "word_embeddings.weight", shape: [V, D], scale: emb, offset: 0, shard: 1))
            specs.append(TensorSpec(name: e + "position_embeddings.weight", shape: [P, D], scale: emb, offset: 0, shard: 1))
            ln(e + "LayerNorm")
            for l in 0..<m.layers {
                let p = "distilbert.transformer.layer.\(l)."
                for q in ["q_lin", "k_lin", "v_lin", "out_lin"] {
                    lin(p + "attention." + q, D, D, linear, bias)
                }
                ln(p + "sa_layer_norm")
                lin(p + "ffn.lin1", H, D, linear, bias)
                lin(p + "ffn.lin2", D, H, wide, bias)
                ln(p + "output_layer_norm")
            }
            lin("pre_classifier", D, D, sc["head_linear"]!, bias)
            lin("classifier", L, D, sc["head_out"]!, sc["head_bias"]!)
        } else {
            let e = "bert.embeddings."
            specs.append(TensorSpec(name: e + "word_embeddings.weight", shape: [V, D], scale: emb, offset: 0, shard: 1))
            specs.append(TensorSpec(name: e + "position_embeddings.weight", shape: [P, D], scale: emb, offset: 0, shard: 1))
            specs.append(TensorSpec(name: e + "token_type_embeddings.weight", shape: [m.typeVocab, D], scale: emb, offset: 0, shard: 1))
            ln(e + "LayerNorm")
            for l in 0..<m.layers {
                let shard = l < m.layers / 2 ? 1 : 2
                let p = "bert.encoder.layer.\(l)."
                for q in ["query", "key", "value"] {
                    lin(p + "attention.self." + q, D, D, linear, bias, shard)
                }
                lin(p + "attention.output.dense", D, D, linear, bias, shard)
                ln(p + "attention.output.LayerNorm", shard)
                lin(p + "intermediate.dense", H, D, linear, bias, shard)
                lin(p + "output.dense", D, H, wide, bias, shard)
                ln(p + "output.LayerNorm", shard)
            }
            lin("bert.pooler.dense", D, D, sc["head_linear"]!, bias, 2)
            lin("classifier", L, D, sc["head_out"]!, sc["head_bias"]!, 2)
        }
        return specs
    }

    // MARK: Generator

    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3
        }
        return h
    }

    @inline(__always)
    static func mix64(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The float32 values of one tensor, before any BF16 rounding.
    static func generate(_ name: String, count n: Int, modelSeed: UInt64, scale: Float, offset: Float) -> [Float] {
        var out = [Float](repeating: 0, count: n)
        var state = fnv1a64(name) ^ modelSeed
        let two: Float = 2, one: Float = 1, ulp: Float = 0x1p-24
        if offset == 0 {
            for i in 0..<n {
                state = state &+ golden
                let u = Float(mix64(state) >> 40) * ulp
                let a = two * u - one
                out[i] = a * scale
            }
        } else {
            for i in 0..<n {
                state = state &+ golden
                let u = Float(mix64(state) >> 40) * ulp
                let a = two * u - one
                let w = a * scale
                out[i] = w + offset
            }
        }
        return out
    }

    @inline(__always)
    static func bf16Bits(_ w: Float) -> UInt16 {
        let b = w.bitPattern
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// The stored bit patterns of one tensor (UInt32 for F32, zero-extended UInt16 for BF16).
    static func storedBits(_ t: TensorSpec, of m: ModelSpec) -> [UInt32] {
        let w = generate(t.name, count: t.count, modelSeed: m.seed, scale: t.scale, offset: t.offset)
        if m.dtype == "F32" {
            return w.map { $0.bitPattern }
        }
        return w.map { UInt32(bf16Bits($0)) }
    }

    static func check(name: String, bits: [UInt32], dtype: String) -> TensorCheck {
        var total: UInt64 = 0
        var sum: Double = 0
        let bf16 = dtype == "BF16"
        for i in 0..<bits.count {
            let s = bits[i]
            total = total &+ mix64(UInt64(i) << 32 | UInt64(s))
            sum += Double(Float(bitPattern: bf16 ? s << 16 : s))
        }
        let hex = String(total, radix: 16)
        return TensorCheck(
            name: name, checksum: String(repeating: "0", count: 16 - hex.count) + hex, sum: sum,
            first: Array(bits.prefix(4)))
    }

    /// Check values of every tensor, computed in memory (no files).
    static func tensorChecks(_ name: String) throws -> [TensorCheck] {
        let m = try spec(name)
        return tensorSpecs(m).map { t in check(name: t.name, bits: storedBits(t, of: m), dtype: m.dtype) }
    }

    // MARK: Writing the HF folder

    /// Writes the HF model folder into `directory` itself (created if needed): config.json,
    /// tokenizer_config.json, vocab.txt and model.safetensors (F32) or
    /// model.safetensors.index.json + model-0000{1,2}-of-00002.safetensors (BF16).
    static func write(_ name: String, to directory: URL) throws {
        let m = try spec(name)
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        try writeText(HFJSON.render(config(m)), to: directory.appendingPathComponent("config.json"))
        try writeText(HFJSON.render(tokenizerConfig(m)), to: directory.appendingPathComponent("tokenizer_config.json"))
        try writeText(vocabLines(m.vocab).joined(separator: "\n") + "\n", to: directory.appendingPathComponent("vocab.txt"))

        let specs = tensorSpecs(m)
        let shards = Array(Set(specs.map(\.shard))).sorted()
        let fileName: (Int) -> String = { s in
            m.sharded ? String(format: "model-%05d-of-%05d.safetensors", s, shards.count) : "model.safetensors"
        }
        let elementSize = m.dtype == "F32" ? 4 : 2
        var total = 0
        for s in shards {
            let group = specs.filter { $0.shard == s }
            let url = directory.appendingPathComponent(fileName(s))
            guard fm.createFile(atPath: url.path, contents: nil) else {
                throw Failure.io("cannot create \(url.path)")
            }
            let handle = try FileHandle(forWritingTo: url)
            defer { try? handle.close() }
            try handle.write(contentsOf: safetensorsHeader(group, dtype: m.dtype, elementSize: elementSize))
            for t in group {
                let w = generate(t.name, count: t.count, modelSeed: m.seed, scale: t.scale, offset: t.offset)
                var bytes = [UInt8](repeating: 0, count: w.count * elementSize)
                if elementSize == 4 {
                    for i in 0..<w.count {
                        let b = w[i].bitPattern
                        bytes[4 * i] = UInt8(truncatingIfNeeded: b)
                        bytes[4 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
                        bytes[4 * i + 2] = UInt8(truncatingIfNeeded: b >> 16)
                        bytes[4 * i + 3] = UInt8(truncatingIfNeeded: b >> 24)
                    }
                } else {
                    for i in 0..<w.count {
                        let b = bf16Bits(w[i])
                        bytes[2 * i] = UInt8(truncatingIfNeeded: b)
                        bytes[2 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
                    }
                }
                try handle.write(contentsOf: bytes)
                total += bytes.count
            }
        }
        if m.sharded {
            var map: [String: HFJSON] = [:]
            for t in specs { map[t.name] = .string(fileName(t.shard)) }
            let index: HFJSON = .object([
                "metadata": .object(["total_size": .int(total)]),
                "weight_map": .object(map),
            ])
            try writeText(HFJSON.render(index), to: directory.appendingPathComponent("model.safetensors.index.json"))
        }
    }

    /// 8-byte little-endian length + compact JSON header padded with spaces to a multiple of 8.
    static func safetensorsHeader(_ group: [TensorSpec], dtype: String, elementSize: Int) -> [UInt8] {
        var parts = ["\"__metadata__\":{\"format\":\"pt\"}"]
        var offset = 0
        for t in group {
            let n = t.count * elementSize
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\"\(t.name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + n)]}")
            offset += n
        }
        var json = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        let len = UInt64(json.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: len >> (8 * $0)) } + json
    }

    static func config(_ m: ModelSpec) -> HFJSON {
        var id2label: [String: HFJSON] = [:]
        var label2id: [String: HFJSON] = [:]
        for (i, l) in m.labels.enumerated() {
            id2label[String(i)] = .string(l)
            label2id[l] = .int(i)
        }
        if m.arch == "distilbert" {
            return .object([
                "activation": .string("gelu"),
                "architectures": .array([.string("DistilBertForSequenceClassification")]),
                "attention_dropout": .double(0.1),
                "dim": .int(m.dim),
                "dropout": .double(0.1),
                "hidden_dim": .int(m.hidden),
                "id2label": .object(id2label),
                "initializer_range": .double(0.02),
                "label2id": .object(label2id),
                "max_position_embeddings": .int(m.maxPositions),
                "model_type": .string("distilbert"),
                "n_heads": .int(m.heads),
                "n_layers": .int(m.layers),
                "pad_token_id": .int(0),
                "qa_dropout": .double(0.1),
                "seq_classif_dropout": .double(0.2),
                "sinusoidal_pos_embds": .bool(false),
                "tie_word_embeddings": .bool(true),
                "torch_dtype": .string("float32"),
                "vocab_size": .int(m.vocab),
            ])
        }
        return .object([
            "architectures": .array([.string("BertForSequenceClassification")]),
            "attention_probs_dropout_prob": .double(0.1),
            "classifier_dropout": .null,
            "hidden_act": .string("gelu"),
            "hidden_dropout_prob": .double(0.1),
            "hidden_size": .int(m.dim),
            "id2label": .object(id2label),
            "initializer_range": .double(0.02),
            "intermediate_size": .int(m.hidden),
            "label2id": .object(label2id),
            "layer_norm_eps": .double(1e-12),
            "max_position_embeddings": .int(m.maxPositions),
            "model_type": .string("bert"),
            "num_attention_heads": .int(m.heads),
            "num_hidden_layers": .int(m.layers),
            "pad_token_id": .int(0),
            "position_embedding_type": .string("absolute"),
            "problem_type": .string("single_label_classification"),
            "torch_dtype": .string("bfloat16"),
            "type_vocab_size": .int(m.typeVocab),
            "vocab_size": .int(m.vocab),
        ])
    }

    static func tokenizerConfig(_ m: ModelSpec) -> HFJSON {
        .object([
            "clean_up_tokenization_spaces": .bool(true),
            "cls_token": .string("[CLS]"),
            "do_lower_case": .bool(true),
            "mask_token": .string("[MASK]"),
            "model_max_length": .int(512),
            "pad_token": .string("[PAD]"),
            "sep_token": .string("[SEP]"),
            "strip_accents": .null,
            "tokenize_chinese_chars": .bool(true),
            "tokenizer_class": .string(m.arch == "distilbert" ? "DistilBertTokenizer" : "BertTokenizer"),
            "unk_token": .string("[UNK]"),
        ])
    }

    /// [PAD]=0, [unused0]..[unused98]=1...99, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103,
    /// then "tok%05d" of the line index.
    static func vocabLines(_ n: Int) -> [String] {
        var out = ["[PAD]"] + (0..<99).map { "[unused\($0)]" } + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        out.reserveCapacity(n)
        for i in out.count..<n { out.append(String(format: "tok%05d", i)) }
        return out
    }

    private static func writeText(_ s: String, to url: URL) throws {
        try Data(s.utf8).write(to: url)
    }

    // MARK: Fixture

    /// Decodes Tests/Fixtures/random_models.json (located relative to this source file).
    static func fixture() throws -> RandomModelFixture {
        let url = fixtureURL()
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw Failure.fixtureMissing(url.path)
        }
        return try JSONDecoder().decode(RandomModelFixture.self, from: Data(contentsOf: url))
    }

    static func fixtureURL() -> URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // QsentCoreTests
            .deletingLastPathComponent()  // Tests
            .appendingPathComponent("Fixtures")
            .appendingPathComponent("random_models.json")
    }
}

/// The contents of Tests/Fixtures/random_models.json.
struct RandomModelFixture: Decodable {
    struct Tensor: Decodable {
        let name: String
        let shape: [Int]
        let scale: Double
        let offset: Double
        let shard: Int
        let checksum: String
        let sum: Double
        let first: [UInt32]
    }

    struct Case: Decodable {
        /// Token ids, starting with [CLS] = 101 and ending with [SEP] = 102.
        let ids: [Int]
        /// PyTorch FP32 logits (float32 values), one per label.
        let logits: [Float]
    }

    struct Stats: Decodable {
        let logit_min: Double
        let logit_max: Double
        let per_class_std: [Double]
        let wins_per_class: [Int]
        let margin_min: Double
        let margin_median: Double
    }

    struct Model: Decodable {
        let arch: String
        /// Model seed as 16 hex digits.
        let seed: String
        let dtype: String
        let sharded: Bool
        let scales: [String: Double]
        /// The HF config.json contents.
        let config: HFJSON
        let tensors: [Tensor]
        let stats: Stats
        let cases: [Case]

        /// Labels in class order, from config.id2label.
        var labels: [String] {
            guard case .object(let cfg) = config, case .object(let m)? = cfg["id2label"] else { return [] }
            return (0..<m.count).compactMap { i in
                if case .string(let s)? = m[String(i)] { return s }
                return nil
            }
        }
    }

    let models: [String: Model]

    func model(_ name: String) throws -> Model {
        guard let m = models[name] else { throw RandomModels.Failure.unknownModel(name) }
        return m
    }
}

/// Renders a JSON value like Python's json.dumps(obj, indent=2, sort_keys=True) + "\n", so the
/// generated config files are byte-identical to make_random_models.py's.
extension HFJSON {
    static func render(_ v: HFJSON) -> String {
        var out = ""
        v.render(into: &out, indent: 0)
        return out + "\n"
    }

    private func render(into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent + 2)
        let closePad = String(repeating: " ", count: indent)
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += "\(d)"
        case .string(let s): out += HFJSON.quote(s)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "[\n"
            for (k, e) in a.enumerated() {
                out += pad
                e.render(into: &out, indent: indent + 2)
                out += k + 1 < a.count ? ",\n" : "\n"
            }
            out += closePad + "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{\n"
            let keys = o.keys.sorted { Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }
            for (k, key) in keys.enumerated() {
                out += pad + HFJSON.quote(key) + ": "
                o[key]!.render(into: &out, indent: indent + 2)
                out += k + 1 < keys.count ? ",\n" : "\n"
            }
            out += closePad + "}"
        }
    }

    private static func quote(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\t": r += "\\t"
            default:
                if u.value < 0x20 || u.value > 0x7E {
                    r += String(format: "\\u%04x", u.value)
                } else {
                    r.unicodeScalars.append(u)
                }
            }
        }
        return r + "\""
    }
}
