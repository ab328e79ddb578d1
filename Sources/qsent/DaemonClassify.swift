import QsentClient
import QsentIO
import QsentProtocol

/// `qsent classify` without --model: the texts go to qsentd. Output matches the in-process
/// path: one human line per text (LABEL score text), or with --json the daemon's protocol line
/// (id = the input's id, or the 0-based position). Exit 0 if every text was classified, 1 if the
/// daemon answered any error (reported on stderr, processing continues), 2 if it is unreachable.
enum DaemonClassify {
    static func run(texts: [String], jsonlPath: String?, json: Bool, socket: String?) throws -> Int32 {
        let client = QsentClient(path: QsentClient.resolveSocket(socket, environment: ProcessControl.environment()))
        defer { client.close() }
        var out: [UInt8] = []
        var failures = 0
        func flush() { writeOut(out); out.removeAll(keepingCapacity: true) }
        func emit(_ answer: String, text: String, what: String) {
            do {
                let a = try Answer(line: answer)
                if json {
                    out.append(contentsOf: (answer + "\n").utf8)
                } else {
                    let c = try a.decode(ClassificationResult.init(json:))
                    out.append(contentsOf: "\(c.label)\t\(NumberFormat.fixed(Double(c.score), 4))\t\(Classify.preview(text))\n".utf8)
                }
            } catch {
                failures += 1
                flush()
                StandardStream.error.writeQuietly("qsent: \(what): \(error)\n")
            }
            if out.count > 1 << 16 { flush() }
        }
        func requestLine(idJSON: String, text: String) -> String {
            Request(idJSON: idJSON, body: .classify(text)).line
        }
        do {
            if let jsonlPath {
                var reader = try LineReader(path: jsonlPath)
                var lineNo = 0
                var index = 0
                var pendingTexts: [String] = []  // texts of unanswered requests, in order
                var head = 0
                try client.stream(next: {
                    while let line = reader.next() {
                        lineNo += 1
                        guard let rec = try InputRecord.parse(line, lineNumber: lineNo) else { continue }
                        let l = requestLine(idJSON: rec.idJSON ?? String(index), text: rec.text)
                        index += 1
                        pendingTexts.append(rec.text)
                        return l
                    }
                    return nil
                }, onAnswer: { answer in
                    emit(answer, text: pendingTexts[head], what: "record \(head + 1)")
                    head += 1
                    if head > 4096 { pendingTexts.removeFirst(head); head = 0 }
                })
            } else {
                let lines = texts.enumerated().map { requestLine(idJSON: String($0.offset), text: $0.element) }
                try client.exchange(lines) { i, answer in emit(answer, text: texts[i], what: "text \(i)") }
            }
        } catch let e as InputError {
            flush()
            StandardStream.error.writeQuietly("qsent: \(e)\n")
            return 1
        } catch {
            flush()
            return reportDaemonError(error)
        }
        flush()
        if failures > 0 {
            StandardStream.error.writeQuietly("qsent: \(failures) text(s) failed\n")
            return 1
        }
        return 0
    }
}
