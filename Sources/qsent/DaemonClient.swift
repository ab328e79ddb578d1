import ArgumentParser
import QsentClient
import QsentIO
import QsentProtocol

/// `--socket PATH` shared by every daemon-facing command.
struct DaemonOptions: ParsableArguments {
    @Option(name: .long, help: "qsentd socket. [QSENT_SOCKET] (default: \(QsentDefaults.socketPath))")
    var socket: String?

    var path: String { QsentClient.resolveSocket(socket, environment: ProcessControl.environment()) }

    /// Sends one `{"op":…}` request and returns its answer; any failure is reported on stderr
    /// and becomes the CLI's exit code.
    func ask(_ op: QsentProtocol.Operation) throws -> Answer {
        do {
            return try QsentClient(path: path).ask(Request(idJSON: nil, body: .op(op)))
        } catch {
            throw ExitCode(reportDaemonError(error))
        }
    }
}

extension QsentClientError {
    /// 1 = the daemon answered with an error, 2 = cannot talk to the daemon.
    var exitCode: Int32 {
        switch self {
        case .answer, .badAnswer: return 1
        case .unreachable, .connectionLost: return 2
        }
    }
}

/// Prints a daemon failure as one line and returns its exit code.
func reportDaemonError(_ error: Error) -> Int32 {
    let code = (error as? QsentClientError)?.exitCode ?? 2
    StandardStream.error.writeQuietly("qsent: \(error)\n")
    return code
}
