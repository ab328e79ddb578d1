import ArgumentParser
import Foundation
import QsentProtocol

/// Reads newline-delimited input from a file or stdin ("-") in chunks, yielding lines without
/// the terminator (a trailing "\r" is kept: JSON parsing ignores it as whitespace).
struct LineReader: Sequence, IteratorProtocol {
    private let handle: FileHandle
    private var buffer = Data()
    private var eof = false

    init(path: String) throws {
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let h = FileHandle(forReadingAtPath: path) else {
                throw ValidationError("cannot open \(path): check the path and permissions")
            }
            handle = h
        }
    }

    mutating func next() -> Data? {
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<nl]
                buffer.removeSubrange(buffer.startIndex...nl)
                return Data(line)
            }
            if eof {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return buffer
            }
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { eof = true } else { buffer.append(chunk) }
        }
    }
}

/// One JSONL input record: {"id": any, "text": "...", "label": int?}.
struct InputRecord {
    var idJSON: String?
    var text: String
    var label: Int?
}

enum InputError: Error, CustomStringConvertible {
    case badLine(Int, String)
    var description: String {
        switch self { case .badLine(let n, let why): return "input line \(n): \(why)" }
    }
}

extension InputRecord {
    /// Parses one line; `lineNumber` is 1-based, for messages.
    static func parse(_ line: Data, lineNumber: Int) throws -> InputRecord? {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }  // blank line
        guard let obj = (try? JSONSerialization.jsonObject(with: line, options: [.fragmentsAllowed])) as? [String: Any] else {
            throw InputError.badLine(lineNumber, "not a JSON object")
        }
        guard let text = obj["text"] as? String else {
            throw InputError.badLine(lineNumber, "missing string field \"text\"")
        }
        var label: Int?
        if let l = obj["label"] {
            guard let n = l as? NSNumber, !(l is Bool), let i = Int(exactly: n.doubleValue) else {
                throw InputError.badLine(lineNumber, "\"label\" must be an integer")
            }
            label = i
        }
        return InputRecord(idJSON: obj["id"].map(jsonText), text: text, label: label)
    }
}

/// Serializes a JSONSerialization value back to JSON text (for echoing ids).
func jsonText(_ v: Any) -> String {
    if let s = v as? String {
        var w = JSONWriter()
        w.string(s)
        return w.text
    }
    if v is NSNull { return "null" }
    if let data = try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed, .sortedKeys]),
       let s = String(data: data, encoding: .utf8) {
        return s
    }
    return "null"
}
