import ArgumentParser
import QsentCore
import QsentIO
import QsentJSON
import QsentProtocol
import RealModule
import SystemPackage

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on labelled JSONL {\"id\",\"label\",\"text\"}: accuracy, cross-entropy, speed.",
        discussion: """
            Texts run one at a time (batch 1), as a latency-bound client would send them. \
            With --reference FILE (JSONL {"id","logits"}), also reports the largest absolute logit \
            difference and the argmax agreement against those logits, matched by id.
            """
    )

    @Option(name: .long, help: "A .qsent blob or an HF model folder.")
    var model: String

    @Option(name: .long, help: "Labelled JSONL: {\"id\",\"label\",\"text\"} per line.")
    var data: String

    @Option(name: .long, help: "Use only the first N selected reviews.")
    var limit: Int?

    @Option(name: .long, help: "Select every K-th line (0-based index % K == 0); 25 gives the 1,000-review benchmark subset of the IMDB test split.")
    var stride: Int = 1

    @Option(name: .customLong("max-tokens"), help: "Token limit including [CLS] and [SEP] (default: the model's).")
    var maxTokens: Int?

    @Option(name: .long, help: "Reference logits JSONL {\"id\",\"logits\"} to compare against.")
    var reference: String?

    @Option(name: .customLong("dump-logits"), help: "Write {\"id\",\"logits\"} per review to FILE.")
    var dumpLogits: String?

    @Flag(name: .long, help: "Print the summary as one JSON object.")
    var json = false

    @OptionGroup var engineFlags: EngineFlags

    func validate() throws {
        guard stride >= 1 else { throw ValidationError("--stride must be >= 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be >= 1") }
    }

    func run() throws {
        let engine = loadEngine(model, engineFlags, maxTokens: maxTokens)
        var refs: [String: [Float]] = [:]
        if let reference {
            var n = 0
            for line in try LineReader(path: reference) {
                n += 1
                guard let o = try? JSONParser.parse(bytes: [UInt8](line)), let id = o["id"],
                      case .array(let values)? = o["logits"]?.value else {
                    fail("\(reference) line \(n): expected {\"id\",\"logits\"}")
                }
                let logits = values.compactMap { v -> Float? in
                    if case .number(let s) = v { return Float(s) }
                    return nil
                }
                guard logits.count == values.count else { fail("\(reference) line \(n): logits must be numbers") }
                refs[id.raw] = logits
            }
        }
        // Read the selected records first so that timing covers only tokenization + inference.
        var records: [InputRecord] = []
        var lineNo = 0
        var index = 0
        for line in try LineReader(path: data) {
            lineNo += 1
            let rec: InputRecord?
            do { rec = try InputRecord.parse(line, lineNumber: lineNo) } catch { fail("\(data): \(error)") }
            guard let rec else { continue }
            defer { index += 1 }
            guard index % stride == 0 else { continue }
            guard let label = rec.label, label >= 0, label < engine.info.labels.count else {
                fail("\(data) line \(lineNo): needs an integer \"label\" in 0..<\(engine.info.labels.count)")
            }
            records.append(rec)
            if let limit, records.count >= limit { break }
        }
        guard !records.isEmpty else { fail("\(data): no records selected") }
        // The lines read and dropped above leave free heap behind; qsentd returns such memory
        // when idle (MemoryTrim), so do the same before measuring, as a long-running engine would be.
        ProcessControl.releaseFreeMemory()

        var correct = 0, tokens = 0, ce = 0.0
        var maxDiff: Float = 0, sumDiff = 0.0, diffs = 0, agree = 0, compared = 0, missingRefs = 0
        var dump: [UInt8] = []
        let start = Clock.monotonicNanos()
        for rec in records {
            let enc = engine.encode(rec.text)
            let c = engine.classify(encodings: [enc])[0]
            tokens += enc.ids.count
            let label = rec.label!
            if c.labelId == label { correct += 1 }
            let mx = c.logits.max()!
            let lse = Double(mx) + .log(c.logits.reduce(0.0) { $0 + .exp(Double($1 - mx)) })
            ce += lse - Double(c.logits[label])
            if reference != nil {
                if let id = rec.idJSON, let r = refs[id], r.count == c.logits.count {
                    compared += 1
                    for (a, b) in zip(r, c.logits) { maxDiff = max(maxDiff, abs(a - b)); sumDiff += Double(abs(a - b)); diffs += 1 }
                    if r.indices.max(by: { r[$0] < r[$1] }) == c.labelId { agree += 1 }
                } else {
                    missingRefs += 1
                }
            }
            if dumpLogits != nil {
                var w = JSONWriter()
                w.raw("{"); w.key("id"); w.raw(rec.idJSON ?? "null"); w.key("logits"); w.raw("[")
                for (i, l) in c.logits.enumerated() { if i > 0 { w.raw(",") }; w.number(l) }
                w.raw("]}\n")
                dump.append(contentsOf: w.text.utf8)
            }
        }
        let seconds = Double(Clock.monotonicNanos() - start) / 1e9
        if let dumpLogits {
            do {
                let fd = try FileDescriptor.open(FilePath(dumpLogits), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                                 permissions: [.ownerReadWrite, .groupRead, .otherRead])
                try fd.closeAfter { _ = try fd.writeAll(dump[...]) }
            } catch {
                fail("cannot write \(dumpLogits): \(error)")
            }
        }
        let n = records.count
        let meanDiff = diffs > 0 ? sumDiff / Double(diffs) : 0
        var w = JSONWriter()
        w.raw("{")
        w.key("model"); w.string(engine.info.name)
        w.key("precision"); w.string(engine.info.precision)
        w.key("isa"); w.string(engine.info.isa)
        w.key("attention"); w.string(engine.info.attention)
        w.key("weight_bits"); w.number(engine.info.weightBits)
        w.key("threads"); w.number(engineFlags.threads)
        w.key("reviews"); w.number(n)
        w.key("accuracy"); w.number(Double(correct) / Double(n))
        w.key("cross_entropy"); w.number(ce / Double(n))
        w.key("seconds"); w.number(seconds)
        w.key("reviews_per_s"); w.number(Double(n) / seconds)
        w.key("tokens_per_s"); w.number(Double(tokens) / seconds)
        if reference != nil {
            w.key("compared"); w.number(compared)
            w.key("missing_reference"); w.number(missingRefs)
            w.key("max_abs_logit_diff"); w.number(maxDiff)
            w.key("mean_abs_logit_diff"); w.number(meanDiff)
            w.key("argmax_agreement"); w.number(compared > 0 ? Double(agree) / Double(compared) : 0)
        }
        w.raw("}")
        if json {
            print(w.text)
        } else {
            print("model      \(engine.info.name) (\(engine.info.precision)\(engine.info.weightBits == 7 ? ", 7-bit weights" : ""), \(engine.info.attention) attention, \(engine.info.isa), \(engineFlags.threads) threads)")
            print("reviews    \(n)")
            print("accuracy   " + NumberFormat.fixed(Double(correct) / Double(n), 4))
            print("x-entropy  " + NumberFormat.fixed(ce / Double(n), 4))
            print("speed      \(NumberFormat.fixed(Double(n) / seconds, 1)) reviews/s, \(NumberFormat.fixed(Double(tokens) / seconds, 0)) tokens/s (\(NumberFormat.fixed(seconds, 1)) s)")
            if reference != nil {
                let agreement = NumberFormat.fixed(compared > 0 ? Double(agree) / Double(compared) : 0, 4)
                print("reference  max |Δlogit| \(NumberFormat.general(Double(maxDiff), 3)), mean \(NumberFormat.general(meanDiff, 3)), argmax agreement \(agreement) over \(compared) (\(missingRefs) without a reference)")
            }
        }
        if reference != nil && missingRefs > 0 && compared == 0 { throw ExitCode(1) }
    }
}
