import QsentJSON

extension JSONWriter {
    /// One answer object: `{"id":…, <body>}`, the id (raw JSON) first and omitted when nil.
    public static func object(idJSON: String?, _ body: (inout JSONWriter) -> Void) -> String {
        var w = JSONWriter()
        w.raw("{")
        if let idJSON { w.key(ProtocolKey.id); w.raw(idJSON) }
        body(&w)
        w.raw("}")
        return w.text
    }
}
/// Every answer the daemon sends, as values. Each type writes its line (`line(idJSON:)`) and
/// reads it back (`init(json:)`), with its keys spelled once, here.

/// An answer that does not have the shape its request asks for.
public struct AnswerDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The missing or malformed key.
    public var key: String
    public var expected: String
    public init(key: String, expected: String) {
        self.key = key
        self.expected = expected
    }
    public var description: String { "answer field \"\(key)\" missing or not \(expected)" }
}

extension JSONValue {
    func string(_ key: String) throws(AnswerDecodingError) -> String {
        guard case .string(let s)? = self[key]?.value else { throw AnswerDecodingError(key: key, expected: "a string") }
        return s
    }

    func int(_ key: String) throws(AnswerDecodingError) -> Int {
        guard case .number(let s)? = self[key]?.value, let n = Int(s) else { throw AnswerDecodingError(key: key, expected: "an integer") }
        return n
    }

    func float(_ key: String) throws(AnswerDecodingError) -> Float {
        guard case .number(let s)? = self[key]?.value, let x = Float(s) else { throw AnswerDecodingError(key: key, expected: "a number") }
        return x
    }

    func bool(_ key: String) throws(AnswerDecodingError) -> Bool {
        guard case .bool(let b)? = self[key]?.value else { throw AnswerDecodingError(key: key, expected: "a boolean") }
        return b
    }

    func array(_ key: String) throws(AnswerDecodingError) -> [JSONValue] {
        guard case .array(let a)? = self[key]?.value else { throw AnswerDecodingError(key: key, expected: "an array") }
        return a
    }

    func strings(_ key: String) throws(AnswerDecodingError) -> [String] {
        var out: [String] = []
        for v in try array(key) {
            guard case .string(let s) = v else { throw AnswerDecodingError(key: key, expected: "an array of strings") }
            out.append(s)
        }
        return out
    }
}

/// One classified text: `{"label":…,"label_id":N,"score":x,"logits":[…],"tokens":N,"truncated":b}`.
public struct ClassificationResult: Equatable, Sendable {
    public var label: String
    public var labelId: Int
    /// Softmax probability of the winning label.
    public var score: Float
    public var logits: [Float]
    /// Token count before truncation, special tokens included.
    public var tokens: Int
    public var truncated: Bool

    public init(label: String, labelId: Int, score: Float, logits: [Float], tokens: Int, truncated: Bool) {
        self.label = label
        self.labelId = labelId
        self.score = score
        self.logits = logits
        self.tokens = tokens
        self.truncated = truncated
    }

    enum Key {
        static let label = "label", labelId = "label_id", score = "score", logits = "logits"
        static let tokens = "tokens", truncated = "truncated"
    }

    /// The answer to `{"text":…}`.
    public func line(idJSON: String?) -> String {
        JSONWriter.object(idJSON: idJSON) { write(to: &$0) }
    }

    func write(to w: inout JSONWriter) {
        w.key(Key.label); w.string(label)
        w.key(Key.labelId); w.number(labelId)
        w.key(Key.score); w.number(score)
        w.key(Key.logits); w.numberArray(logits)
        w.key(Key.tokens); w.number(tokens)
        w.key(Key.truncated); w.bool(truncated)
    }

    public init(json v: JSONValue) throws(AnswerDecodingError) {
        var logits: [Float] = []
        for x in try v.array(Key.logits) {
            guard case .number(let s) = x, let f = Float(s) else { throw AnswerDecodingError(key: Key.logits, expected: "an array of numbers") }
            logits.append(f)
        }
        self.init(label: try v.string(Key.label), labelId: try v.int(Key.labelId), score: try v.float(Key.score),
                  logits: logits, tokens: try v.int(Key.tokens), truncated: try v.bool(Key.truncated))
    }
}

/// The answer to `{"texts":[…]}`: `{"results":[{…},…]}`, each result without an id.
public enum BatchAnswer {
    public static func line(_ results: [ClassificationResult], idJSON: String?) -> String {
        JSONWriter.object(idJSON: idJSON) { w in
            w.key(ProtocolKey.results); w.raw("[")
            for (i, r) in results.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{")
                r.write(to: &w)
                w.raw("}")
            }
            w.raw("]")
        }
    }

    public static func decode(_ v: JSONValue) throws(AnswerDecodingError) -> [ClassificationResult] {
        var out: [ClassificationResult] = []
        for r in try v.array(ProtocolKey.results) { out.append(try ClassificationResult(json: r)) }
        return out
    }
}

/// The answer to `{"op":"ping"}`: `{"ok":true}`.
public enum PingAnswer {
    public static func line(idJSON: String?) -> String {
        JSONWriter.object(idJSON: idJSON) { w in w.key(ProtocolKey.ok); w.bool(true) }
    }

    public static func decode(_ v: JSONValue) throws(AnswerDecodingError) {
        guard try v.bool(ProtocolKey.ok) else { throw AnswerDecodingError(key: ProtocolKey.ok, expected: "true") }
    }
}

/// An error answer's body: `{"error":{"code":…,"message":…}}`.
public struct ErrorAnswer: Equatable, Sendable, CustomStringConvertible {
    /// The code as sent (see `ErrorCode` for the known ones; a newer daemon may send others).
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var knownCode: ErrorCode? { ErrorCode(rawValue: code) }

    public func line(idJSON: String?) -> String {
        JSONWriter.object(idJSON: idJSON) { w in
            w.key(ProtocolKey.error); w.raw("{")
            w.key(ProtocolKey.code); w.string(code)
            w.key(ProtocolKey.message); w.string(message)
            w.raw("}")
        }
    }

    /// The error of an answer object, or nil if it is not an error answer. A malformed error
    /// object keeps code "error" and its raw JSON as the message.
    public init?(json v: JSONValue) {
        guard let e = v[ProtocolKey.error] else { return nil }
        code = (try? e.value.string(ProtocolKey.code)) ?? "error"
        message = (try? e.value.string(ProtocolKey.message)) ?? e.raw
    }

    public var description: String { "\(code): \(message)" }
}

/// The answer to `{"op":"info"}`: what model is served and the request limits.
public struct InfoAnswer: Equatable, Sendable {
    public var model: String
    public var architecture: String
    public var labels: [String]
    public var maxTokens: Int
    public var isa: String
    /// "int8" or "fp32".
    public var precision: String
    public var checksum: String
    public var path: String
    /// qsentd's version.
    public var version: String
    public var maxBatch: Int
    public var maxLineBytes: Int
    /// Set while the file at `path` is not the model being served (changed on disk and not
    /// loadable: half-written, truncated, invalid, missing): what is wrong with it. `checksum`
    /// and the rest still describe the model answering. Absent from the line when nil.
    public var modelProblem: String?

    public init(model: String, architecture: String, labels: [String], maxTokens: Int, isa: String, precision: String,
                checksum: String, path: String, version: String, maxBatch: Int, maxLineBytes: Int,
                modelProblem: String? = nil) {
        self.model = model
        self.architecture = architecture
        self.labels = labels
        self.maxTokens = maxTokens
        self.isa = isa
        self.precision = precision
        self.checksum = checksum
        self.path = path
        self.version = version
        self.maxBatch = maxBatch
        self.maxLineBytes = maxLineBytes
        self.modelProblem = modelProblem
    }

    enum Key {
        static let model = "model", architecture = "architecture", labels = "labels", maxTokens = "max_tokens"
        static let isa = "isa", precision = "precision", checksum = "checksum", path = "path", version = "version"
        static let maxBatch = "max_batch", maxLineBytes = "max_line_bytes", modelProblem = "model_problem"
    }

    public func line(idJSON: String?) -> String {
        JSONWriter.object(idJSON: idJSON) { w in
            w.key(Key.model); w.string(model)
            w.key(Key.architecture); w.string(architecture)
            w.key(Key.labels); w.stringArray(labels)
            w.key(Key.maxTokens); w.number(maxTokens)
            w.key(Key.isa); w.string(isa)
            w.key(Key.precision); w.string(precision)
            w.key(Key.checksum); w.string(checksum)
            w.key(Key.path); w.string(path)
            w.key(Key.version); w.string(version)
            w.key(Key.maxBatch); w.number(maxBatch)
            w.key(Key.maxLineBytes); w.number(maxLineBytes)
            if let modelProblem { w.key(Key.modelProblem); w.string(modelProblem) }
        }
    }

    public init(json v: JSONValue) throws(AnswerDecodingError) {
        self.init(model: try v.string(Key.model), architecture: try v.string(Key.architecture), labels: try v.strings(Key.labels),
                  maxTokens: try v.int(Key.maxTokens), isa: try v.string(Key.isa), precision: try v.string(Key.precision),
                  checksum: try v.string(Key.checksum), path: try v.string(Key.path), version: try v.string(Key.version),
                  maxBatch: try v.int(Key.maxBatch), maxLineBytes: try v.int(Key.maxLineBytes),
                  modelProblem: v[Key.modelProblem] == nil ? nil : try v.string(Key.modelProblem))
    }
}

/// The answer to `{"op":"reload"}` when it succeeded: `{"ok":true,"reloaded":NAME,"checksum":…}`.
public struct ReloadAnswer: Equatable, Sendable {
    /// Name of the model now served.
    public var reloaded: String
    public var checksum: String

    public init(reloaded: String, checksum: String) {
        self.reloaded = reloaded
        self.checksum = checksum
    }

    enum Key { static let reloaded = "reloaded", checksum = "checksum" }

    public func line(idJSON: String?) -> String {
        JSONWriter.object(idJSON: idJSON) { w in
            w.key(ProtocolKey.ok); w.bool(true)
            w.key(Key.reloaded); w.string(reloaded)
            w.key(Key.checksum); w.string(checksum)
        }
    }

    public init(json v: JSONValue) throws(AnswerDecodingError) {
        try PingAnswer.decode(v)
        self.init(reloaded: try v.string(Key.reloaded), checksum: try v.string(Key.checksum))
    }
}

/// The answer to `{"op":"stats"}`: counters, latency, queue and memory, in `Field` order.
public struct StatsAnswer: Equatable, Sendable {
    /// Every stats key, in the order the daemon writes them (docs/PROTOCOL.md explains each).
    public enum Field: String, CaseIterable, Sendable {
        case requests, texts, errors, batches
        case batchedTexts = "batched_texts"
        case connections
        case connectionsTotal = "connections_total"
        case connectionsRejected = "connections_rejected"
        case reloads
        case reloadFailures = "reload_failures"
        case latencyP50Ms = "latency_p50_ms"
        case latencyP99Ms = "latency_p99_ms"
        case latencySamples = "latency_samples"
        case queueDepth = "queue_depth"
        case uptimeS = "uptime_s"
        case rssAnonBytes = "rss_anon_bytes"
        case rssFileBytes = "rss_file_bytes"
        case rssShmemBytes = "rss_shmem_bytes"
        case heapArenas = "heap_arenas"
        case heapBytes = "heap_bytes"
        case heapFreeBytes = "heap_free_bytes"
        case activationBytes = "activation_bytes"
    }

    /// A stats value: an integer, a fraction, or null (a percentile before the first sample).
    public enum Number: Equatable, Sendable, CustomStringConvertible {
        case int(Int)
        case double(Double)
        case null

        /// Its JSON text (Swift's shortest round-trip form for doubles).
        public var description: String {
            var w = JSONWriter()
            switch self {
            case .int(let n): w.number(n)
            case .double(let x): w.number(x)
            case .null: w.raw("null")
            }
            return w.text
        }

        public var doubleValue: Double? {
            switch self {
            case .int(let n): return Double(n)
            case .double(let x): return x
            case .null: return nil
            }
        }
    }

    /// The values present (a daemon of another version may send fewer or more).
    public private(set) var values: [Field: Number]

    public subscript(_ f: Field) -> Number? { values[f] }

    public init(requests: Int, texts: Int, errors: Int, batches: Int, batchedTexts: Int, connections: Int,
                connectionsTotal: Int, connectionsRejected: Int, reloads: Int, reloadFailures: Int,
                latencyP50Ms: Double?, latencyP99Ms: Double?, latencySamples: Int, queueDepth: Int, uptimeS: Double,
                rssAnonBytes: Int, rssFileBytes: Int, rssShmemBytes: Int,
                heapArenas: Int?, heapBytes: Int?, heapFreeBytes: Int?, activationBytes: Int) {
        func opt(_ x: Double?) -> Number { x.map { .double($0) } ?? .null }
        func opt(_ n: Int?) -> Number { n.map { .int($0) } ?? .null }
        values = [
            .requests: .int(requests), .texts: .int(texts), .errors: .int(errors), .batches: .int(batches),
            .batchedTexts: .int(batchedTexts), .connections: .int(connections), .connectionsTotal: .int(connectionsTotal),
            .connectionsRejected: .int(connectionsRejected), .reloads: .int(reloads), .reloadFailures: .int(reloadFailures),
            .latencyP50Ms: opt(latencyP50Ms), .latencyP99Ms: opt(latencyP99Ms), .latencySamples: .int(latencySamples),
            .queueDepth: .int(queueDepth), .uptimeS: .double(uptimeS), .rssAnonBytes: .int(rssAnonBytes),
            .rssFileBytes: .int(rssFileBytes), .rssShmemBytes: .int(rssShmemBytes),
            .heapArenas: opt(heapArenas), .heapBytes: opt(heapBytes), .heapFreeBytes: opt(heapFreeBytes),
            .activationBytes: .int(activationBytes),
        ]
    }

    public func line(idJSON: String?) -> String {
        JSONWriter.object(idJSON: idJSON) { w in
            for f in Field.allCases {
                guard let v = values[f] else { continue }
                w.key(f.rawValue); w.raw(v.description)
            }
        }
    }

    /// Reads the known fields present in an answer; a known field of the wrong type is an error.
    public init(json v: JSONValue) throws(AnswerDecodingError) {
        values = [:]
        for f in Field.allCases {
            guard let m = v[f.rawValue] else { continue }
            switch m.value {
            case .null: values[f] = .null
            case .number(let s):
                if let n = Int(s) { values[f] = .int(n) }
                else if let x = Double(s) { values[f] = .double(x) }
                else { throw AnswerDecodingError(key: f.rawValue, expected: "a number") }
            default: throw AnswerDecodingError(key: f.rawValue, expected: "a number or null")
            }
        }
    }
}
