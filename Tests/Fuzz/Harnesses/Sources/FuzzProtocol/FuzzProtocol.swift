import FuzzSupport
import QsentJSON
import QsentProtocol

/// One request line, exactly as the daemon receives it (without the newline).
/// Invariants checked besides "no crash":
/// - a parsed request round-trips: `Request.line` parses back to the same request (same id text,
///   same body), so what the client library writes is what the daemon reads;
/// - a batch never exceeds maxBatch;
/// - every error is a typed ProtocolError whose answer line is JSON that decodes back
///   (ErrorAnswer) to the same code and message, with the id echoed byte for byte;
/// - a parsed text survives the writer's escaping and the parser unchanged (answers quote it back).
private let maxBatch = 64

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocol(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let line = fuzzBytes(data, size)
    do throws(ProtocolError) {
        let r = try Request.parse(line: line, maxBatch: maxBatch)
        let again = try? Request.parse(line: Array(r.line.utf8), maxBatch: maxBatch)
        fuzzCheck(again == r, "request does not round-trip: \(r) -> \(r.line) -> \(again.map { "\($0)" } ?? "error")")
        if let id = r.idJSON {
            fuzzCheck((try? JSONParser.parse(id)) != nil, "id is not valid JSON: \(id)")
        }
        switch r.body {
        case .classify(let t): roundTrip(t)
        case .batch(let ts): fuzzCheck(ts.count <= maxBatch, "batch of \(ts.count) > \(maxBatch)"); ts.forEach(roundTrip)
        case .op: break
        }
    } catch {
        let reply = error.line
        guard let v = try? JSONParser.parse(reply) else { fuzzCheck(false, "error answer is not valid JSON: \(reply)"); return 0 }
        fuzzCheck(ErrorAnswer(json: v) == ErrorAnswer(code: error.code.rawValue, message: error.message),
                  "error answer does not decode to its code and message: \(reply)")
        fuzzCheck(v[ProtocolKey.id]?.raw == error.idJSON, "error answer echoes id \(v[ProtocolKey.id]?.raw ?? "none"), expected \(error.idJSON ?? "none")")
    }
    return 0
}

private func roundTrip(_ text: String) {
    var w = JSONWriter()
    w.string(text)
    guard case .string(let back)? = try? JSONParser.parse(w.text) else {
        fuzzCheck(false, "written string does not parse: \(w.text)")
        return
    }
    fuzzCheck(Array(back.utf8) == Array(text.utf8), "string changed through writer + parser: \(Array(text.utf8)) -> \(Array(back.utf8))")
}
