import QsentCore
import QsentProtocol
import QsentTokenizer

/// Why a queued text got no result.
struct TextFailure: Error, CustomStringConvertible {
    var code: ErrorCode
    var message: String
    var description: String { message }
}

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
    /// The request's `deadline_ms`, for the error message.
    let deadlineMs: Int?
    var results: [ClassificationResult?]
    var failure: TextFailure?
    var remaining: Int
    /// The response line, once complete.
    var line: String?
    /// Bytes this slot holds for its connection's pipeline bound: the request line until it is
    /// answered, then the answer line.
    var cost: Int

    init(idJSON: String?, count: Int, isBatch: Bool, start: UInt64, requestBytes: Int, deadlineMs: Int?) {
        self.idJSON = idJSON
        self.isBatch = isBatch
        self.deadlineMs = deadlineMs
        self.start = start
        self.results = [ClassificationResult?](repeating: nil, count: count)
        self.remaining = count
        self.cost = requestBytes
    }

    /// An already-answered slot (errors, ping, info, stats).
    init(line: String, idJSON: String?) {
        self.idJSON = idJSON
        self.isBatch = false
        self.deadlineMs = nil
        self.start = 0
        self.results = []
        self.remaining = 0
        self.line = line
        self.cost = line.utf8.count + 1
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
    var client: Int { connection.id }
    let deadline: UInt64?
}
