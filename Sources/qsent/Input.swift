import ArgumentParser
import QsentIO
import QsentProtocol
import SystemPackage

/// Reads newline-delimited input from a file or stdin ("-") in chunks, yielding lines without
/// the terminator (a trailing "\r" is kept: JSON parsing ignores it as whitespace).
struct LineReader: Sequence, IteratorProtocol {
    private let fd: FileDescriptor
    private let path: String
    private var buffer: [UInt8] = []
    private var start = 0  // index in `buffer` of the next unread byte
    private var eof = false
    private var chunk = [UInt8](repeating: 0, count: 1 << 20)

    init(path: String) throws {
        self.path = path
        if path == "-" {
            fd = .standardInput
        } else {
            do {
                fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            } catch {
                throw ValidationError("cannot open \(path): \(error); check the path and permissions")
            }
        }
    }

    mutating func next() -> [UInt8]? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<nl])
                start = nl + 1
                return line
            }
            if eof {
                guard start < buffer.endIndex else { return nil }
                defer { buffer.removeAll(); start = 0 }
                return Array(buffer[start...])
            }
            // Drop what has been consumed, then read more.
            buffer.removeFirst(start)
            start = 0
            var n: Int?
            do {
                // nil: a non-blocking stdin has nothing yet; wait for it.
                while true {
                    n = try fd.readSome(into: &chunk, context: path)
                    if n != nil { break }
                    _ = try Poll.wait(fd, for: .readable, timeoutMs: -1)
                }
            } catch {
                fail("cannot read \(path == "-" ? "stdin" : path): \(error)")
            }
            if n == 0 {
                eof = true
                if path != "-" { try? fd.close() }
            } else {
                buffer.append(contentsOf: chunk[..<n!])
            }
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
    static func parse(_ line: [UInt8], lineNumber: Int) throws -> InputRecord? {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }  // blank line
        let value: JSONValue
        do { value = try JSONParser.parse(bytes: line) } catch {
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
