import ArgumentParser
import Foundation
import QsentProtocol

/// Reads newline-delimited input from a file or stdin ("-") in chunks, yielding lines without
/// the terminator (a trailing "\r" is kept: JSON parsing ignores it as whitespace).
struct LineReader: Sequence, IteratorProtocol {
    private let handle: FileHandle
    private var buffer = Data()
    private var start = 0  // index in `buffer` of the next unread byte
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
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                let line = Data(buffer[start..<nl])
                start = nl + 1
                return line
            }
            if eof {
                guard start < buffer.endIndex else { return nil }
                defer { buffer.removeAll(); start = 0 }
                return Data(buffer[start...])
            }
            // Drop what has been consumed, then read more.
            buffer = Data(buffer[start...])
            start = 0
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
    /// Parses one line with the protocol's strict JSON parser; `lineNumber` is 1-based, for
    /// messages. The id is kept as its raw JSON text, so it is echoed byte for byte.
    static func parse(_ line: Data, lineNumber: Int) throws -> InputRecord? {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }  // blank line
        let value: JSONValue
        do { value = try JSONParser.parse(bytes: [UInt8](line)) } catch {
            throw InputError.badLine(lineNumber, "\(error)")
        }
        guard case .object = value else { throw InputError.badLine(lineNumber, "not a JSON object") }
        guard case .string(let text)? = value["text"]?.value else {
            throw InputError.badLine(lineNumber, "missing string field \"text\"")
        }
        var label: Int?
        if let l = value["label"] {
            guard case .number(let literal) = l.value, let i = Int(literal) else {
                throw InputError.badLine(lineNumber, "\"label\" must be an integer")
            }
            label = i
        }
        return InputRecord(idJSON: value["id"]?.raw, text: text, label: label)
    }
}
