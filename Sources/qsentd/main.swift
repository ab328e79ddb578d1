import ArgumentParser
import Logging
import QsentIO
import QsentProtocol
import QsentServer

/// `qsentd`: serves a model over a Unix socket (newline-delimited JSON, docs/PROTOCOL.md).
/// Every option also reads an environment variable; a flag on the command line wins.
struct Qsentd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qsentd",
        abstract: "Serve a qsent model over a Unix socket (newline-delimited JSON).",
        discussion: """
        Each option has an environment variable (shown in brackets); a command-line flag wins \
        over the environment. Under systemd socket activation (LISTEN_FDS) the inherited socket \
        is used and --socket is ignored. Protocol: docs/PROTOCOL.md.
        """
    )

    @Option(help: "Model: a .qsent blob or a Hugging Face folder. [QSENT_MODEL]")
    var model: String?

    @Option(help: "Socket path to bind when not socket-activated. [QSENT_SOCKET] (default: \(QsentDefaults.socketPath))")
    var socket: String?

    @Option(help: "Inference threads. [QSENT_THREADS] (default: 2)")
    var threads: Int?

    @Option(name: .customLong("idle-exit"), help: "Exit after this many seconds with no connections; 0 = never. [QSENT_IDLE_EXIT] (default: 0)")
    var idleExit: Double?

    @Option(name: .customLong("max-tokens"), help: "Token limit per text, special tokens included; longer texts are truncated. [QSENT_MAX_TOKENS] (default: the model's)")
    var maxTokens: Int?

    @Option(name: .customLong("max-batch"), help: "Most texts in one request and in one inference batch. [QSENT_MAX_BATCH] (default: 32)")
    var maxBatch: Int?

    @Option(name: .customLong("max-batch-tokens"), help: "Token budget of one inference batch (estimated). [QSENT_MAX_BATCH_TOKENS] (default: 4096)")
    var maxBatchTokens: Int?

    @Option(name: .customLong("max-queue"), help: "Most texts waiting for inference; more gets 'busy'. [QSENT_MAX_QUEUE] (default: 1024)")
    var maxQueue: Int?

    @Option(name: .customLong("max-line-bytes"), help: "Longest request line; longer gets 'line_too_long' and the connection is closed. [QSENT_MAX_LINE_BYTES] (default: 1048576)")
    var maxLineBytes: Int?

    @Option(name: .customLong("max-clients"), help: "Most simultaneous connections; more get 'busy' and are closed. [QSENT_MAX_CLIENTS] (default: 256)")
    var maxClients: Int?

    @Option(name: .customLong("max-pipeline"), help: "Most unanswered requests per connection before the daemon stops reading from it. [QSENT_MAX_PIPELINE] (default: 128)")
    var maxPipeline: Int?

    @Option(name: .customLong("max-pipeline-bytes"), help: "Most bytes of unanswered requests and unwritten answers per connection before the daemon stops reading from it. [QSENT_MAX_PIPELINE_BYTES] (default: 4194304)")
    var maxPipelineBytes: Int?

    @Option(name: .customLong("idle-timeout"), help: "Close a connection that sent nothing and awaits nothing for this many seconds. [QSENT_IDLE_TIMEOUT] (default: 300)")
    var idleTimeout: Double?

    @Option(name: .customLong("io-timeout"), help: "Close a connection whose partial line or pending answer makes no progress for this many seconds. [QSENT_IO_TIMEOUT] (default: 30)")
    var ioTimeout: Double?

    @Option(name: .customLong("allow-uid"), help: "Comma-separated uids allowed to connect (peer credentials); default: everyone who can open the socket. [QSENT_ALLOW_UID]")
    var allowUID: String?

    @Option(name: .customLong("allow-gid"), help: "Comma-separated primary gids allowed to connect. [QSENT_ALLOW_GID]")
    var allowGID: String?

    @Flag(inversion: .prefixedNo, help: "Lock the model and heap in RAM (mlockall); failure is fatal. [QSENT_MLOCK=1]")
    var mlock: Bool?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical. [QSENT_LOG_LEVEL] (default: info)")
    var logLevel: String?

    var flags: DaemonFlags {
        DaemonFlags(model: model, socket: socket, threads: threads, idleExit: idleExit, maxTokens: maxTokens,
                    maxBatch: maxBatch, maxBatchTokens: maxBatchTokens, maxQueue: maxQueue, maxLineBytes: maxLineBytes,
                    maxClients: maxClients, maxPipeline: maxPipeline, maxPipelineBytes: maxPipelineBytes, idleTimeout: idleTimeout, ioTimeout: ioTimeout,
                    allowUID: allowUID, allowGID: allowGID, mlock: mlock, logLevel: logLevel)
    }

    func run() throws {
        let config: DaemonConfig
        do {
            config = try DaemonConfig.resolve(flags, env: ProcessControl.environment())
        } catch {
            throw ValidationError(error.message)
        }
        StderrLineHandler.bootstrap(level: config.logLevel)
        let logger = Logger(label: "qsentd")
        let code: Int32
        do {
            code = try Server(config: config, logger: logger).run()
        } catch {
            logger.critical("qsentd: \(error)")
            Server.notifyFailure("\(error)")
            code = 1
        }
        throw ExitCode(code)
    }
}

Qsentd.main()
