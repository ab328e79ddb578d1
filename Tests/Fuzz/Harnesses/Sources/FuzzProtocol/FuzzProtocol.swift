import FuzzSupport
import QsentProtocol

/// One request line, exactly as the daemon receives it (without the newline).
/// Invariants checked besides "no crash":
/// - every error is a typed ProtocolError whose response line is itself valid JSON;
/// - an `id` is echoed as raw JSON text that parses again;
/// - a parsed text survives the writer's escaping and the parser unchanged (answers quote it back).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocol(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let line = fuzzBytes(data, size)
    do {
        let r = try Request.parse(line: line, maxBatch: 64)
        if let id = r.idJSON {
            fuzzCheck((try? JSONParser.parse(id)) != nil, "id is not valid JSON: \(id)")
        }
        switch r.body {
        case .classify(let t): roundTrip(t)
        case .batch(let ts): ts.forEach(roundTrip)
        case .op: break
        }
    } catch {
        let reply = error.line
        fuzzCheck((try? JSONParser.parse(reply)) != nil, "error reply is not valid JSON: \(reply)")
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
