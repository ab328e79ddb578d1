import ArgumentParser
import QsentCore
import QsentProtocol
import QsentTokenizer

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize JSONL {\"id\",\"text\"} from stdin exactly as the engine does.",
        discussion: """
            Writes one line per input: {"id":…,"ids":[…],"n_tokens":N}. "ids" are truncated to \
            --max-tokens with [CLS] and [SEP] included; "n_tokens" is the untruncated count.
            """
    )

    @Option(name: .long, help: "A .qsent blob or an HF model folder (only its tokenizer is loaded).")
    var model: String

    @Option(name: .customLong("max-tokens"), help: "Token limit including [CLS] and [SEP] (default: the model's, 384).")
    var maxTokens: Int?

    func run() throws {
        let tokenizer: WordPieceTokenizer
        let limit: Int
        do {
            let (t, modelMax) = try Engine.tokenizer(path: model)
            tokenizer = t
            limit = maxTokens ?? modelMax
        } catch {
            fail("\(error)")
        }
        guard limit >= 2 else { fail("--max-tokens must be at least 2 ([CLS] and [SEP])") }
        var out: [UInt8] = []
        var lineNo = 0
        for line in try LineReader(path: "-") {
            lineNo += 1
            guard let rec = try InputRecord.parse(line, lineNumber: lineNo) else { continue }
            let enc = tokenizer.encode(rec.text, maxTokens: limit)
            var w = JSONWriter()
            w.raw("{")
            if let id = rec.idJSON { w.key("id"); w.raw(id) }
            w.key("ids"); w.raw("[" + enc.ids.map(String.init).joined(separator: ",") + "]")
            w.key("n_tokens"); w.number(enc.nTokens)
            w.raw("}\n")
            out.append(contentsOf: w.text.utf8)
            if out.count > 1 << 16 { writeOut(out); out.removeAll(keepingCapacity: true) }
        }
        writeOut(out)
    }
}
