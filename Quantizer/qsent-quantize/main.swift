import ArgumentParser
import Foundation
import QsentCore
import QsentQuantizer

struct QsentQuantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qsent-quantize",
        abstract: "Quantize a Hugging Face sequence classifier into one int8 .qsent blob.",
        discussion: """
            HF_DIR holds config.json (DistilBertForSequenceClassification or \
            BertForSequenceClassification), model.safetensors or a sharded \
            model.safetensors.index.json (F32, F16 or BF16), and tokenizer.json or vocab.txt.

            Linear layers become int8 with one scale per output channel; word embeddings int8 with \
            one scale per row; LayerNorm, biases, position embeddings and the classifier stay FP32. \
            The output is written atomically (temporary file, fsync, rename) and is deterministic. \
            See docs/FORMAT.md.
            """,
        version: QsentVersion.string
    )

    @Argument(help: "Hugging Face model folder.")
    var hfDir: String

    @Option(name: .shortAndLong, help: "Output .qsent file.")
    var output: String

    @Option(name: .customLong("max-tokens"), help: "Default token limit recorded in the blob (special tokens included).")
    var maxTokens: Int = 384

    @Option(name: .long, help: "Model name recorded in the blob (default: the folder's name).")
    var name: String?

    @Flag(name: .long, help: "Replace OUTPUT if it exists.")
    var force = false

    @Flag(name: .shortAndLong, help: "Print every tensor in the summary.")
    var verbose = false

    func run() throws {
        if FileManager.default.fileExists(atPath: output) && !force {
            die("\(output) already exists; pass --force to replace it")
        }
        let tty = isatty(STDERR_FILENO) == 1
        let start = Date()
        let model: QuantizedModel, report: QuantizeReport
        do {
            (model, report) = try Quantizer.quantize(directory: hfDir, maxTokens: maxTokens, modelName: name) { done, total, what in
                guard tty else { return }
                let width = 30
                let filled = width * done / total
                let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
                FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) \(what)\u{1B}[K".utf8))
            }
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            let bytes = try model.blobBytes()
            try AtomicFile.write(bytes, to: output, force: force)
            // Read back through the engine's own loader: what we wrote must load.
            _ = try Blob(path: output)
            summarize(report, blobBytes: bytes.count, seconds: Date().timeIntervalSince(start), model: model)
        } catch {
            die("\(error)")
        }
    }

    func summarize(_ r: QuantizeReport, blobBytes: Int, seconds: Double, model: QuantizedModel) {
        func mb(_ b: Int) -> String { String(format: "%.1f MB", Double(b) / 1e6) }
        let c = model.meta.config
        print("model      \(model.meta.modelName): \(c.architecture.rawValue), dim \(c.dim), \(c.layers) layers, \(c.heads) heads, FFN \(c.hidden), \(c.labels.count) labels")
        print("tensors    \(r.tensors.count) groups (\(r.tensors.filter { $0.storage.hasPrefix("int8") }.count) int8, \(r.tensors.filter { $0.storage == "fp32" }.count) fp32 besides LayerNorm/bias)")
        if verbose {
            for t in r.tensors {
                print(String(format: "  %-22@ %-14@ %-13@ %9@  rms rel err %.2e  max rel err %.2e", t.name as NSString,
                             "\(t.shape)" as NSString, t.storage as NSString, mb(t.bytes) as NSString, t.rmsRelError, t.maxRelError))
            }
        }
        if let w = r.worst {
            print(String(format: "worst      %@: ||W - Ŵ|| / ||W|| = %.2e (max |W - Ŵ| / max |W| = %.2e)", w.name, w.rmsRelError, w.maxRelError))
        }
        print("size       \(mb(blobBytes)) from \(mb(r.sourceBytes)) safetensors (\(String(format: "%.1f", 100 * Double(blobBytes) / Double(r.sourceBytes))) %)")
        print("wrote      \(output) in \(String(format: "%.1f", seconds)) s")
    }

    func die(_ message: String) -> Never {
        FileHandle.standardError.write(Data("qsent-quantize: \(message)\n".utf8))
        Foundation.exit(1)
    }
}

QsentQuantize.main()
