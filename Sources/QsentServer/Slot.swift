import QsentCore
import QsentProtocol
import QsentTokenizer

/// One answer owed to a connection, in request order. A `texts` request is one slot with
/// several results.
///
/// `@unchecked Sendable`: the reader thread creates it, the inference worker fills it and the
/// writer thread sends it; every mutable field is read and written only under its
/// connection's condition lock (`Connection.cond`).
final class Slot: @unchecked Sendable {
    let idJSON: String?
    let start: UInt64
    let isBatch: Bool
    var results: [ClassificationResult?]
    var failure: String?
    var remaining: Int
    /// The response line, once complete.
    var line: String?

    init(idJSON: String?, count: Int, isBatch: Bool, start: UInt64) {
        self.idJSON = idJSON
        self.isBatch = isBatch
        self.start = start
        self.results = [ClassificationResult?](repeating: nil, count: count)
        self.remaining = count
    }

    /// An already-answered slot (errors, ping, info, stats).
    init(line: String, idJSON: String?) {
        self.idJSON = idJSON
        self.isBatch = false
        self.start = 0
        self.results = []
        self.remaining = 0
        self.line = line
    }
}

/// One text waiting for inference.
struct WorkItem: SchedulerItem {
    let text: String
    /// Tokenized by the connection's reader thread (tokenization runs in parallel across clients).
    let encoding: TokenEncoding
    /// The engine whose tokenizer made `encoding`; after a reload the worker re-encodes.
    let encodedBy: ObjectIdentifier
    var tokens: Int { encoding.ids.count }
    let bytes: Int
    let slot: Slot
    let index: Int
    let connection: Connection
}
