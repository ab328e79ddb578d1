import ArgumentParser
import QsentCore
import QsentIO
import QsentServer

@main
struct Qsent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qsent",
        abstract: "Classify text with a qsent model, in-process or through the qsentd daemon.",
        discussion: """
            MODEL is a .qsent blob (int8, made by qsent-quantize) or a Hugging Face model folder \
            (config.json + model.safetensors + tokenizer.json or vocab.txt), which runs the FP32 \
            reference path. Without --model, classify talks to qsentd over its Unix socket \
            (--socket, $QSENT_SOCKET, default /run/qsentd/qsentd.sock).

            Environment: QSENT_ISA forces a kernel ISA (scalar, avx2, avxvnni, avx512vnni, neon, neon-dotprod).
            """,
        version: QsentVersion.string,
        subcommands: [Classify.self, Tokenize.self, Eval.self, Ping.self, Info.self, Stats.self]
    )
}

/// Options shared by the in-process commands.
struct EngineFlags: ParsableArguments {
    @Option(name: .long, help: "Threads for one inference.")
    var threads: Int = 2

    @Option(name: .long, help: "Force a kernel ISA (scalar, avx2, avxvnni, avx512vnni, neon, neon-dotprod); default: $QSENT_ISA, else the best this CPU supports.")
    var isa: String?

    @Option(name: .long, help: "Attention arithmetic (fp32, int16); default: the model's (int16 for a .qsent blob, fp32 for an HF folder).")
    var attention: AttentionArithmetic?

    func options(maxTokens: Int?) -> EngineOptions {
        EngineOptions(threads: threads, maxTokens: maxTokens, isa: isa, attention: attention)
    }
}

/// Prints a one-line reason to stderr and exits non-zero: the CLI's answer to every failure.
func fail(_ message: String, code: Int32 = 1) -> Never {
    StandardStream.error.writeQuietly("qsent: \(message)\n")
    ProcessControl.exit(code)
}

/// Writes to stdout; a closed pipe or a full disk ends the command with a one-line reason.
func writeOut(_ bytes: [UInt8]) {
    do { try StandardStream.output.write(bytes) } catch { fail("cannot write the output: \(error)") }
}

/// The in-process engine (`classify --model`, `eval`), with qsentd's allocator policy set before
/// its threads start (`Server.configureAllocator`: one malloc arena, mmap and trim thresholds
/// pinned at 32 MiB), so activations are reused between texts instead of being mapped and
/// faulted in anew: left dynamic, page faults in the GEMMs' output buffers were 5-6 % of `eval`'s
/// time, and `eval` would not measure what the daemon runs.
func loadEngine(_ path: String, _ flags: EngineFlags, maxTokens: Int?) -> Engine {
    Server.configureAllocator()
    do {
        return try Engine(path: path, options: flags.options(maxTokens: maxTokens))
    } catch {
        fail("\(error)")
    }
}
extension AttentionArithmetic: ExpressibleByArgument {}
