import ArgumentParser
import QsentCore
import QsentProtocol
import QsentServer

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify texts given as arguments, or JSONL {\"id\",\"text\"} from a file or stdin.",
        discussion: """
            With --model the engine runs in this process; without it the texts go to qsentd. \
            Default output is one human line per text: LABEL score text. --json prints one protocol \
            line per input: {"id":…,"label":…,"label_id":…,"score":…,"logits":[…],"tokens":N,"truncated":…}; \
            "id" is copied from the input, or is the 0-based position for positional texts.
            """
    )

    @Option(name: .long, help: "Run in-process with this .qsent blob or HF model folder.")
    var model: String?

    @Flag(name: .long, help: "Print protocol JSON lines instead of human lines.")
    var json = false

    @Option(name: .long, help: "Read JSONL {\"id\",\"text\"} from FILE, or - for stdin.")
    var jsonl: String?

    @Option(name: .customLong("max-tokens"), help: "Token limit including [CLS] and [SEP] (in-process only; default: the model's).")
    var maxTokens: Int?

    @OptionGroup var engineFlags: EngineFlags

    @Option(name: .long, help: "qsentd socket when no --model is given. [QSENT_SOCKET] (default: \(QsentDefaults.socketPath))")
    var socket: String?

    @Argument(help: "Texts to classify.")
    var texts: [String] = []

    func validate() throws {
        if texts.isEmpty && jsonl == nil { throw ValidationError("give texts as arguments, or --jsonl FILE|-") }
        if !texts.isEmpty && jsonl != nil { throw ValidationError("give texts as arguments or --jsonl, not both") }
    }

    func run() throws {
        guard let model else {
            let code = try DaemonClassify.run(texts: texts, jsonlPath: jsonl, json: json, socket: socket)
            if code != 0 { throw ExitCode(code) }
            return
        }
        let engine = loadEngine(model, engineFlags, maxTokens: maxTokens)
        var out: [UInt8] = []
        func emit(_ c: Classification, idJSON: String, text: String) {
            if json {
                out.append(contentsOf: (ClassificationResult(c).line(idJSON: idJSON) + "\n").utf8)
            } else {
                out.append(contentsOf: "\(c.label)\t\(NumberFormat.fixed(Double(c.score), 4))\t\(Self.preview(text))\n".utf8)
            }
            if out.count > 1 << 16 { writeOut(out); out.removeAll(keepingCapacity: true) }
        }
        if let jsonl {
            var lineNo = 0
            var index = 0
            for line in try LineReader(path: jsonl) {
                lineNo += 1
                let rec: InputRecord?
                do { rec = try InputRecord.parse(line, lineNumber: lineNo) } catch { fail("\(error)") }
                guard let rec else { continue }
                let c = engine.classify([rec.text])[0]
                emit(c, idJSON: rec.idJSON ?? String(index), text: rec.text)
                index += 1
            }
        } else {
            for (i, t) in texts.enumerated() {
                emit(engine.classify([t])[0], idJSON: String(i), text: t)
            }
        }
        writeOut(out)
    }

    /// First 60 characters on one line, for the human output.
    static func preview(_ text: String) -> String {
        let flat = text.map { $0.isNewline || $0 == "\t" ? " " : $0 }
        return flat.count > 60 ? String(flat.prefix(57)) + "..." : String(flat)
    }
}
